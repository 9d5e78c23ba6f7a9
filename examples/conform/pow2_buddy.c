/*
 * pow2_buddy.c -- a small buddy allocator over a power-of-two number of frames,
 * written for kmemspec's guide (spec/conformance.md, "Checking your allocator").
 *
 * Not Linux: the top order is 5 (MAX_ORDER 6), among free blocks of an order it takes
 * the one with the highest pfn, and it manages only 2^k frames. The kms.h shim is the
 * last part of this file. Check it with:
 *
 *     cc -O2 -shared -fPIC -I../../conform -o libpow2.so pow2_buddy.c
 *     kmemspec conform ./libpow2.so --max-order 6
 *
 * Built with -DSEEDED_BUG, a freed block never merges with its buddy; built with
 * -DSEEDED_DOUBLE_FREE, freeing a block a second time is accepted (although it
 * declares kms_detects_misuse), which the misuse vectors must catch.
 */
#include "kms.h"

#define MAX_FRAMES 65536
#define TOP_ORDER 5

static unsigned long nr_frames;
static unsigned int max_order;            /* orders 0 .. max_order-1 */
static signed char free_order[MAX_FRAMES];  /* order of the free block starting here, or -1 */
static signed char used_order[MAX_FRAMES];  /* order of the handed-out block here, or -1 */
#ifdef SEEDED_DOUBLE_FREE
static signed char ever_order[MAX_FRAMES];  /* order it was last handed out with, or -1 */
#endif

static int is_power_of_two(unsigned long n) { return n && !(n & (n - 1)); }

static void put_free(unsigned long pfn, unsigned int order) {
#ifndef SEEDED_BUG
    while (order + 1 < max_order) {
        unsigned long buddy = pfn ^ (1UL << order);
        if (buddy >= nr_frames || free_order[buddy] != (signed char)order)
            break;
        free_order[buddy] = -1;
        if (buddy < pfn)
            pfn = buddy;
        order++;
    }
#endif
    free_order[pfn] = (signed char)order;
}

/* ---- the kms.h shim ---- */

int kms_supported_pages(unsigned long nr_pages) {
    return is_power_of_two(nr_pages) && nr_pages <= MAX_FRAMES;
}

int kms_detects_misuse(void) { return 1; }

int kms_init(unsigned long nr_pages, unsigned int order_limit) {
    if (!kms_supported_pages(nr_pages))
        return -1;
    nr_frames = nr_pages;
    max_order = order_limit < TOP_ORDER + 1 ? order_limit : TOP_ORDER + 1;
    for (unsigned long pfn = 0; pfn < MAX_FRAMES; pfn++)
        free_order[pfn] = used_order[pfn] = -1;
#ifdef SEEDED_DOUBLE_FREE
    for (unsigned long pfn = 0; pfn < MAX_FRAMES; pfn++)
        ever_order[pfn] = -1;
#endif
    unsigned int top = 0;
    while (top + 1 < max_order && (2UL << top) <= nr_pages)
        top++;
    for (unsigned long pfn = 0; pfn < nr_pages; pfn += 1UL << top)
        free_order[pfn] = (signed char)top;
    return 0;
}

long kms_alloc_pages(unsigned int order) {
    for (unsigned int found = order; found < max_order; found++) {
        for (unsigned long pfn = nr_frames; pfn-- > 0;) {      /* the highest first */
            if (free_order[pfn] != (signed char)found)
                continue;
            free_order[pfn] = -1;
            while (found > order) {                           /* keep the upper halves */
                found--;
                free_order[pfn + (1UL << found)] = (signed char)found;
            }
            used_order[pfn] = (signed char)order;
#ifdef SEEDED_DOUBLE_FREE
            ever_order[pfn] = (signed char)order;
#endif
            return (long)pfn;
        }
    }
    return -1;
}

int kms_free_pages(unsigned long pfn, unsigned int order) {
#ifdef SEEDED_DOUBLE_FREE
    /* the bug: a block handed out once may be freed again */
    if (pfn >= nr_frames || (used_order[pfn] != (signed char)order
                             && ever_order[pfn] != (signed char)order))
        return -1;
    if (used_order[pfn] != (signed char)order)
        return 0;                                            /* accepted, state unchanged */
#else
    if (pfn >= nr_frames || used_order[pfn] != (signed char)order)
        return -1;                                           /* misuse: never handed out */
#endif
    used_order[pfn] = -1;
    put_free(pfn, order);
    return 0;
}

int kms_free_counts(unsigned long *counts, unsigned int capacity) {
    for (unsigned int order = 0; order < max_order && order < capacity; order++)
        counts[order] = 0;
    for (unsigned long pfn = 0; pfn < nr_frames; pfn++)
        if (free_order[pfn] >= 0 && (unsigned int)free_order[pfn] < capacity)
            counts[free_order[pfn]]++;
    return (int)max_order;
}
