/*
 * arena64_buddy.c -- a buddy allocator over a byte arena whose smallest block is 64
 * bytes, written for kmemspec's guide (spec/conformance.md, "Checking your allocator").
 *
 * Not Linux: blocks are 64 << order bytes of a malloc'ed arena, and among free blocks
 * of the order it needs it takes the one at the lowest address (Linux takes the most
 * recently freed). The kms.h shim (last part of this file) maps a block to its unit
 * number: pfn = (block - arena) / 64, and declares the unit with kms_page_size().
 * Check it with:
 *
 *     cc -O2 -shared -fPIC -I../../conform -o libarena64.so arena64_buddy.c
 *     kmemspec conform ./libarena64.so
 *
 * Built with -DSEEDED_BUG, a freed block merges with a free buddy of any order; with
 * -DSEEDED_SIZE_BUG, a block split from a larger one is recorded with the larger
 * order (kms_block_order shows it at the allocation; the free is then refused).
 */
#include <stdlib.h>
#include "kms.h"

#define UNIT 64UL
#define MAX_UNITS 65536UL
#define NO_BLOCK (-1)

static char *arena;                 /* nr_units * UNIT bytes */
static unsigned long nr_units;
static unsigned int max_order;      /* orders 0 .. max_order-1 */
static signed char free_order[MAX_UNITS];  /* order of the free block at this unit, or -1 */
static signed char used_order[MAX_UNITS];  /* order of the handed-out block here, or -1 */

static unsigned long unit_of(const char *block) { return (unsigned long)(block - arena) / UNIT; }

static char *arena_alloc(unsigned int order) {
    for (unsigned int found = order; found < max_order; found++) {
        for (unsigned long u = 0; u < nr_units; u += 1UL << found) {   /* lowest address */
            if (free_order[u] != (signed char)found)
                continue;
            free_order[u] = NO_BLOCK;
#ifdef SEEDED_SIZE_BUG
            used_order[u] = (signed char)found;
#endif
            while (found > order) {                                    /* split */
                found--;
                free_order[u + (1UL << found)] = (signed char)found;
            }
#ifndef SEEDED_SIZE_BUG
            used_order[u] = (signed char)order;
#endif
            return arena + u * UNIT;
        }
    }
    return NULL;
}

static int arena_free(char *block, unsigned int order) {
    unsigned long u = unit_of(block);
    if (block < arena || u >= nr_units || used_order[u] != (signed char)order)
        return -1;
    used_order[u] = NO_BLOCK;
    while (order + 1 < max_order) {
        unsigned long buddy = u ^ (1UL << order);
        if (buddy + (1UL << order) > nr_units)
            break;
#ifdef SEEDED_BUG
        if (free_order[buddy] < 0)
            break;
#else
        if (free_order[buddy] != (signed char)order)
            break;
#endif
        free_order[buddy] = NO_BLOCK;
        if (buddy < u)
            u = buddy;
        order++;
    }
    free_order[u] = (signed char)order;
    return 0;
}

/* ---- the kms.h shim ---- */

unsigned long kms_page_size(void) { return UNIT; }

int kms_detects_misuse(void) { return 1; }

int kms_block_order(unsigned long pfn) { return pfn < nr_units ? used_order[pfn] : -1; }

int kms_init(unsigned long nr_pages, unsigned int order_limit) {
    if (nr_pages > MAX_UNITS)
        return -1;
    free(arena);
    arena = malloc(nr_pages * UNIT);
    if (arena == NULL)
        return -1;
    nr_units = nr_pages;
    max_order = order_limit;
    for (unsigned long u = 0; u < MAX_UNITS; u++)
        free_order[u] = used_order[u] = NO_BLOCK;
    /* the largest aligned blocks that fit, from the start of the arena */
    for (unsigned long u = 0; u < nr_units;) {
        unsigned int order = max_order - 1;
        while ((u & ((1UL << order) - 1)) || u + (1UL << order) > nr_units)
            order--;
        free_order[u] = (signed char)order;
        u += 1UL << order;
    }
    return 0;
}

long kms_alloc_pages(unsigned int order) {
    if (order >= max_order)
        return -1;
    char *block = arena_alloc(order);
    return block == NULL ? -1 : (long)unit_of(block);
}

int kms_free_pages(unsigned long pfn, unsigned int order) {
    if (pfn >= nr_units || order >= max_order)
        return -1;
    return arena_free(arena + pfn * UNIT, order);
}

int kms_free_counts(unsigned long *counts, unsigned int capacity) {
    for (unsigned int order = 0; order < max_order && order < capacity; order++)
        counts[order] = 0;
    for (unsigned long u = 0; u < nr_units; u++)
        if (free_order[u] >= 0 && (unsigned int)free_order[u] < capacity)
            counts[free_order[u]]++;
    return (int)max_order;
}
