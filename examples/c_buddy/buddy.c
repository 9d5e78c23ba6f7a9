/*
 * A small buddy page allocator implementing the kmemspec C ABI (conform/kms.h).
 *
 * Written the way Linux 2.6.12 mm/page_alloc.c is, so that it passes strict mode:
 * free lists are LIFO (list_add at the head), __rmqueue takes the head of the first
 * non-empty list at or above the order, expand() hands the upper halves back, and
 * __free_pages_bulk merges with the buddy page_idx ^ (1 << order) while the buddy is
 * the head of a free block of the same order inside the managed frames.
 *
 * Build: cc -shared -fPIC -O2 -I../../conform -o libbuddy.so buddy.c
 * Check: kmemspec conform ./libbuddy.so --mode strict
 *
 * It also implements the vmalloc part the 2.6.12 mm/vmalloc.c way: every area gets a
 * guard page (__get_vm_area: size += PAGE_SIZE), areas are placed first fit in address
 * order, pages are taken one at a time (alloc_page) and given back on failure.
 *
 * And the highmem part the 2.6.12 mm/highmem.c way: kmap takes the next slot after
 * last_pkmap_nr whose count is 0, flushing the count-1 slots when the scan wraps to
 * slot 0; the count is users + 1; kunmap drops it.
 *
 * Define KMS_PCP_2612 for the page policy `kmemspec conform --page-policy 2.6.12`
 * holds a target to (spec/conformance.md section 3a): 2.6.12 __alloc_pages for
 * GFP_KERNEL on CPU 0 of the flat machine -- order-0 frames through a hot list
 * (buffered_rmqueue: rmqueue_bulk adds `batch` frames at the tail when count <= low,
 * the head is taken; free_hot_cold_page: free_pages_bulk gives `batch` back from the
 * tail when count >= high, the frame goes on the head) and zone_watermark_ok at
 * pages_min, with the flat machine's numbers (1024 reserved DMA frames before ours).
 * It then manages only multiples of 32 frames (kms_supported_pages).
 *   cc -shared -fPIC -O2 -DKMS_PCP_2612 -I../../conform -o libbuddy2612.so buddy.c
 *   kmemspec conform ./libbuddy2612.so --part page --page-policy 2.6.12 --mode strict
 *
 * Define KMS_BUG_NO_ORDER_CHECK (merge without the order check), KMS_BUG_NO_GUARD
 * (vmalloc areas without a guard page) or KMS_BUG_PKMAP_LEAK (kunmap without the
 * decrement) to get a faulty variant, used by the tests to show that the checker
 * catches a C implementation too.
 */
#include <stdlib.h>
#include "kms.h"

#define MAX_ORDER_LIMIT 16
#define PAGE_SIZE 4096UL
#define MAX_AREAS 1024
#define NONE (-1L)

static unsigned long nr_pages;
static unsigned int max_order;
static long *next, *prev;          /* free-list links, by pfn */
static int *order_of;              /* order at a free block's head, -1 otherwise */
static long head[MAX_ORDER_LIMIT]; /* free_area[order].free_list head */
static unsigned long nr_free[MAX_ORDER_LIMIT];
static unsigned long zone_free;    /* zone->free_pages: frames on the buddy lists */
static void kmap_init(void);
#ifdef KMS_PCP_2612
static void pcp_init(unsigned long pages);
int kms_supported_pages(unsigned long pages) { return pages && pages % 32 == 0; }
#endif

int kms_abi_version(void) { return KMS_ABI_VERSION; }

static void list_add(long pfn, unsigned int order)
{
	next[pfn] = head[order];
	prev[pfn] = NONE;
	if (head[order] != NONE)
		prev[head[order]] = pfn;
	head[order] = pfn;
	order_of[pfn] = (int)order;
	nr_free[order]++;
}

static void list_del(long pfn, unsigned int order)
{
	if (prev[pfn] != NONE)
		next[prev[pfn]] = next[pfn];
	else
		head[order] = next[pfn];
	if (next[pfn] != NONE)
		prev[next[pfn]] = prev[pfn];
	order_of[pfn] = -1;
	nr_free[order]--;
}

int kms_init(unsigned long pages, unsigned int orders)
{
	unsigned long pfn;
	unsigned int o;

	if (orders == 0 || orders > MAX_ORDER_LIMIT || pages == 0)
		return 1;
#ifdef KMS_PCP_2612
	if (!kms_supported_pages(pages))
		return 1;
	pcp_init(pages);
#endif
	free(next); free(prev); free(order_of);
	next = malloc(pages * sizeof(*next));
	prev = malloc(pages * sizeof(*prev));
	order_of = malloc(pages * sizeof(*order_of));
	if (!next || !prev || !order_of)
		return 1;
	nr_pages = pages;
	max_order = orders;
	kmap_init();
	for (o = 0; o < MAX_ORDER_LIMIT; o++) {
		head[o] = NONE;
		nr_free[o] = 0;
	}
	for (pfn = 0; pfn < pages; pfn++)
		order_of[pfn] = -1;
	/* free_all_bootmem: maximal aligned blocks in increasing pfn order */
	pfn = 0;
	while (pfn < pages) {
		o = max_order - 1;
		while (o > 0 && ((pfn & ((1UL << o) - 1)) || pfn + (1UL << o) > pages))
			o--;
		list_add((long)pfn, o);
		pfn += 1UL << o;
	}
	zone_free = pages;
	return 0;
}

/* __rmqueue: the head of the first non-empty list at or above the order */
static long rmqueue(unsigned int order)
{
	unsigned int current;

	for (current = order; current < max_order; current++) {
		long pfn = head[current];
		if (pfn == NONE)
			continue;
		list_del(pfn, current);
		while (current > order) {  /* expand: the upper half goes back */
			current--;
			list_add(pfn + (1L << current), current);
		}
		zone_free -= 1UL << order;
		return pfn;
	}
	return -1;
}

#ifdef KMS_PCP_2612
#define HOT_MAX 96                 /* high = 6 * batch, batch at most 16 */
static long hot[HOT_MAX];          /* CPU 0's hot list, hot[0] the head */
static unsigned long hot_count, batch, hot_low, hot_high, pages_min;
static void free_bulk(unsigned long pfn, unsigned int order);

static unsigned long int_sqrt(unsigned long x)
{
	unsigned long r = 0;

	while ((r + 1) * (r + 1) <= x)
		r++;
	return r;
}

static void pcp_init(unsigned long pages)
{
	/* init_per_zone_pages_min: lowmem = 1024 DMA frames + ours, 4 KiB each */
	unsigned long kbytes = (1024 + pages) * 4, min_kb = int_sqrt(kbytes * 16);

	if (min_kb < 128)
		min_kb = 128;
	if (min_kb > 65536)
		min_kb = 65536;
	/* setup_per_zone_pages_min: ZONE_NORMAL's share of min_free_kbytes / 4 pages */
	pages_min = (min_kb / 4) * pages / (1024 + pages);
	/* zone_batchsize, free_area_init_core */
	batch = pages / 1024;
	if (batch > 64)
		batch = 64;
	batch /= 4;
	if (batch < 1)
		batch = 1;
	hot_low = 2 * batch;
	hot_high = 6 * batch;
	hot_count = 0;
}

/* zone_watermark_ok(zone, order, pages_min, NORMAL, 0, 0): GFP_KERNEL's second pass;
 * the first, at pages_low >= pages_min, succeeds only where this one does */
static int watermark_ok(unsigned int order)
{
	long free_pages = (long)zone_free - (1L << order) + 1, min = (long)pages_min;
	unsigned int o;

	if (free_pages <= min)
		return 0;
	for (o = 0; o < order; o++) {
		free_pages -= (long)(nr_free[o] << o);
		min >>= 1;
		if (free_pages <= min)
			return 0;
	}
	return 1;
}

long kms_alloc_pages(unsigned int order)
{
	unsigned long i;
	long pfn;

	if (order >= max_order || !watermark_ok(order))
		return -1;
	if (order == 0) {          /* buffered_rmqueue */
		if (hot_count <= hot_low)
			for (i = 0; i < batch && (pfn = rmqueue(0)) != -1; i++)
				hot[hot_count++] = pfn;      /* list_add_tail */
		if (hot_count) {
			pfn = hot[0];
			for (i = 1; i < hot_count; i++)
				hot[i - 1] = hot[i];
			hot_count--;
			return pfn;
		}
	}
	return rmqueue(order);
}

int kms_free_pages(unsigned long pfn, unsigned int order)
{
	unsigned long i;

	if (pfn >= nr_pages || order >= max_order)
		return 1;
	if (order) {
		free_bulk(pfn, order);
		return 0;
	}
	if (hot_count >= hot_high)         /* free_pages_bulk from the tail */
		for (i = 0; i < batch && hot_count; i++)
			free_bulk((unsigned long)hot[--hot_count], 0);
	for (i = hot_count; i > 0; i--)    /* list_add at the head */
		hot[i] = hot[i - 1];
	hot[0] = (long)pfn;
	hot_count++;
	return 0;
}
#else
long kms_alloc_pages(unsigned int order)
{
	if (order >= max_order)        /* __alloc_pages: order >= MAX_ORDER fails */
		return -1;
	return rmqueue(order);
}
#endif

static int page_is_buddy(unsigned long buddy, unsigned int order)
{
	if (buddy >= nr_pages)         /* bad_range */
		return 0;
#ifdef KMS_BUG_NO_ORDER_CHECK
	(void)order;
	return order_of[buddy] >= 0;
#else
	return order_of[buddy] == (int)order;
#endif
}

/* __free_pages_bulk: merge with the buddy while it is a free block of the order */
static void free_bulk(unsigned long pfn, unsigned int order)
{
	zone_free += 1UL << order;
	while (order < max_order - 1) {
		unsigned long buddy = pfn ^ (1UL << order);
		if (!page_is_buddy(buddy, order))
			break;
		list_del((long)buddy, (unsigned int)order_of[buddy]);
		pfn &= ~(1UL << order);
		order++;
	}
	list_add((long)pfn, order);
}

#ifndef KMS_PCP_2612
int kms_free_pages(unsigned long pfn, unsigned int order)
{
	if (pfn >= nr_pages || order >= max_order)
		return 1;
	free_bulk(pfn, order);
	return 0;
}
#endif

int kms_free_counts(unsigned long *counts, unsigned int capacity)
{
	unsigned int o;

	for (o = 0; o < max_order && o < capacity; o++)
		counts[o] = nr_free[o];
	return (int)max_order;
}

/* ---- vmalloc ------------------------------------------------------------------ */

struct area {
	unsigned long addr, span, nr_pages;
	long *pfns;
};

static struct area areas[MAX_AREAS];	/* sorted by address */
static int nr_areas;
static unsigned long vmalloc_size;

int kms_vmalloc_init(unsigned long vsize)
{
	int i;

	for (i = 0; i < nr_areas; i++)
		free(areas[i].pfns);
	nr_areas = 0;
	vmalloc_size = vsize;
	return 0;
}

long kms_vmalloc(unsigned long size)
{
	unsigned long pages = (size + PAGE_SIZE - 1) / PAGE_SIZE;
#ifdef KMS_BUG_NO_GUARD
	unsigned long span = pages * PAGE_SIZE;			/* forgot the guard page */
#else
	unsigned long span = pages * PAGE_SIZE + PAGE_SIZE;	/* the guard page */
#endif
	unsigned long addr = 0, i;
	int at;

	if (size == 0 || pages > nr_pages || nr_areas == MAX_AREAS)
		return -1;
	for (at = 0; at < nr_areas; at++) {	/* first hole that fits */
		if (areas[at].addr - addr >= span)
			break;
		addr = areas[at].addr + areas[at].span;
	}
	if (at == nr_areas && vmalloc_size - addr < span)
		return -1;
	long *pfns = malloc(pages * sizeof(*pfns));
	if (!pfns)
		return -1;
	for (i = 0; i < pages; i++) {
		pfns[i] = kms_alloc_pages(0);
		if (pfns[i] < 0) {
			while (i--)
				kms_free_pages((unsigned long)pfns[i], 0);
			free(pfns);
			return -1;
		}
	}
	for (int j = nr_areas; j > at; j--)
		areas[j] = areas[j - 1];
	areas[at] = (struct area){ addr, span, pages, pfns };
	nr_areas++;
	return (long)addr;
}

int kms_vfree(unsigned long addr)
{
	for (int at = 0; at < nr_areas; at++) {
		if (areas[at].addr != addr)
			continue;
		for (unsigned long i = 0; i < areas[at].nr_pages; i++)
			kms_free_pages((unsigned long)areas[at].pfns[i], 0);
		free(areas[at].pfns);
		for (int j = at; j < nr_areas - 1; j++)
			areas[j] = areas[j + 1];
		nr_areas--;
		return 0;
	}
	return 1;
}

long kms_vmalloc_to_pfn(unsigned long addr)
{
	for (int at = 0; at < nr_areas; at++) {
		struct area *a = &areas[at];
		if (addr >= a->addr && addr < a->addr + a->nr_pages * PAGE_SIZE)
			return a->pfns[(addr - a->addr) / PAGE_SIZE];
	}
	return -1;
}

/* ---- permanent kmaps ------------------------------------------------------------ */

#define LAST_PKMAP 1024
#define LAST_PKMAP_MASK (LAST_PKMAP - 1)

static int pkmap_count[LAST_PKMAP];
static long pkmap_page[LAST_PKMAP];	/* the pfn a slot maps, NONE if none */
static long *slot_of;			/* page_address_htable: pfn -> slot, NONE */
static int last_pkmap_nr;

static void kmap_init(void)
{
	unsigned long pfn;
	int nr;

	free(slot_of);
	slot_of = malloc(nr_pages * sizeof(*slot_of));
	for (pfn = 0; slot_of && pfn < nr_pages; pfn++)
		slot_of[pfn] = NONE;
	for (nr = 0; nr < LAST_PKMAP; nr++) {
		pkmap_count[nr] = 0;
		pkmap_page[nr] = NONE;
	}
	last_pkmap_nr = 0;
}

static void flush_all_zero_pkmaps(void)
{
	int nr;

	for (nr = 0; nr < LAST_PKMAP; nr++) {
		if (pkmap_count[nr] != 1)
			continue;
		pkmap_count[nr] = 0;
		slot_of[pkmap_page[nr]] = NONE;
		pkmap_page[nr] = NONE;
	}
}

long kms_kmap(unsigned long pfn)
{
	long nr;
	int i;

	if (!slot_of || pfn >= nr_pages)
		return -1;
	nr = slot_of[pfn];
	if (nr == NONE) {
		/* map_new_virtual: the kernel sleeps when every slot has users */
		for (i = 0; i < LAST_PKMAP && pkmap_count[i] > 1; i++)
			;
		if (i == LAST_PKMAP)
			return -1;
		nr = last_pkmap_nr;
		for (;;) {
			nr = (nr + 1) & LAST_PKMAP_MASK;
			if (nr == 0)
				flush_all_zero_pkmaps();
			if (pkmap_count[nr] == 0)
				break;
		}
		last_pkmap_nr = (int)nr;
		pkmap_count[nr] = 1;
		pkmap_page[nr] = (long)pfn;
		slot_of[pfn] = nr;
	}
	pkmap_count[nr]++;
	return nr * (long)PAGE_SIZE;
}

int kms_kunmap(unsigned long pfn)
{
	if (!slot_of || pfn >= nr_pages || slot_of[pfn] == NONE)
		return 1;
#ifndef KMS_BUG_PKMAP_LEAK
	pkmap_count[slot_of[pfn]]--;
#endif
	return 0;
}

int kms_pkmap_count(int *counts, unsigned int capacity)
{
	unsigned int nr;

	for (nr = 0; nr < capacity && nr < LAST_PKMAP; nr++)
		counts[nr] = pkmap_count[nr];
	return LAST_PKMAP;
}
