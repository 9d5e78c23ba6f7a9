/*
 * kms.h -- the C ABI through which kmemspec checks an allocator (ABI version 1).
 *
 * Build your allocator (C, Rust with #[no_mangle] extern "C", ...) as a shared
 * library exporting these symbols, then:
 *
 *     kmemspec conform ./libmyalloc.so --mode refine
 *
 * The checker loads the library with ctypes in a child process: a crash is reported
 * as "crashed (signal N)", a call that does not return within the time limit as
 * "hung (> T s)"; neither stops the checker. What each mode requires of the answers
 * is spelled out in spec/conformance.md.
 *
 * Only the page allocator part is required. Symbols of the other parts (kmalloc,
 * vmalloc, kmem_cache, kmap) are looked up by name; a missing symbol means "this part
 * is not implemented". The ABI version stays 1: every addition is optional.
 */
#ifndef KMS_H
#define KMS_H

#ifdef __cplusplus
extern "C" {
#endif

#define KMS_ABI_VERSION 1

/* Optional. Returns KMS_ABI_VERSION; when absent, version 1 is assumed. */
int kms_abi_version(void);

/* ---- page allocator (required) -------------------------------------------------
 *
 * kms_init: discard all previous state and manage frames 0 .. nr_pages-1, all free,
 *   as one zone. Orders 0 .. max_order-1 are valid (max_order is the kernel's
 *   MAX_ORDER: 11 for Linux 2.6 i386, so the largest block is 1024 frames).
 *   Called again before every test sequence. Returns 0, or nonzero if it cannot
 *   manage that many frames (reported as a failure of init).
 *   nr_pages is at most 65536.
 *
 * kms_alloc_pages: 2^order contiguous frames; returns the first pfn, or -1 for NULL.
 *   Called with any order 0 .. max_order (one beyond the top: must return -1).
 *
 * kms_free_pages: give back the block at pfn returned by kms_alloc_pages(order).
 *   Returns 0. The checker only frees live blocks with their own order; an
 *   implementation that detects misuse (used by test vectors only) returns nonzero.
 */
int  kms_init(unsigned long nr_pages, unsigned int max_order);
long kms_alloc_pages(unsigned int order);
int  kms_free_pages(unsigned long pfn, unsigned int order);

/* ---- page allocator introspection (optional, recommended) ------------------------
 *
 * kms_free_counts: nr_free per order -- the number of free *blocks* (not frames) of
 *   each order, as /proc/buddyinfo shows. Fills counts[0 .. min(n, capacity)-1] and
 *   returns n, the number of orders the allocator has (normally max_order).
 *   When offered, refine mode checks that free frames are completely merged.
 */
int  kms_free_counts(unsigned long *counts, unsigned int capacity);

/* kms_block_order (optional): the order of the handed-out block whose first frame is
 *   pfn, as the allocator records it, or -1 if no handed-out block starts there. When
 *   offered, refine mode checks it after every alloc (the block's order) and free (-1)
 *   of the page part: rule R9 of spec/conformance.md.
 */
int  kms_block_order(unsigned long pfn);

/* ---- machine constraints and misuse detection (optional) -------------------------
 *
 * kms_supported_pages: nonzero if kms_init(nr_pages, ...) can manage nr_pages frames
 *   (e.g. only powers of two). The checker then draws only supported machine sizes
 *   (with `kmemspec conform --pages/--power-of-two`, the sizes in both lists).
 * kms_detects_misuse: nonzero if kms_free_pages (and the other frees) return nonzero
 *   on a double free, a wrong order or a pfn never handed out; the misuse test
 *   vectors are then run on the library (`kmemspec vectors`).
 */
int  kms_supported_pages(unsigned long nr_pages);
int  kms_detects_misuse(void);

/* ---- the unit (optional) -----------------------------------------------------------
 *
 * kms_page_size: the bytes of one frame (the allocator's smallest block), a power of
 *   two; 4096 when absent. A byte-arena buddy whose smallest block is 64 bytes returns
 *   64 and numbers its units: pfn p is bytes p*64 .. p*64+63 of its arena, an order-k
 *   block is 64 << k bytes. The page part is checked in units (buddy structure does
 *   not depend on the unit's size); reports show byte offsets as well. The object,
 *   vmalloc, cache and highmem parts are defined over 4096-byte pages and are checked
 *   only when the unit is 4096 (`kmemspec conform --page-size` says the same).
 */
unsigned long kms_page_size(void);

/* ---- object allocator (optional) -------------------------------------------------
 *
 * kmalloc over the frames given to kms_init: an object's address is its byte offset
 * into them (frame p holds bytes p*4096 .. p*4096+4095). Returns -1 for NULL.
 * Requests above the largest general class (131072 bytes on Linux 2.6 i386) must
 * return -1; others must succeed while memory is plentiful. Objects are aligned to
 * min(class, 128) and never overlap the extent of the smallest class that holds
 * their request (spec/conformance.md, K1-K8).
 * kms_ksize (optional): the usable size of a live object -- its class.
 */
long kms_kmalloc(unsigned long size);
int  kms_kfree(unsigned long addr);
unsigned long kms_ksize(unsigned long addr);

/* ---- virtual area allocator (optional) ----------------------------------------------
 *
 * kms_vmalloc_init: called after kms_init; the virtual range is vsize bytes, and an
 *   area's address is its byte offset into it.
 * kms_vmalloc: an area of PAGE_ALIGN(size) bytes followed by an unmapped guard page,
 *   backed by frames taken one at a time; -1 for NULL (size 0, more pages than the
 *   machine has, or no memory left).
 * kms_vmalloc_to_pfn (optional): the frame mapped at addr, -1 if none (the pte lookup;
 *   guard pages and freed areas map nothing).
 */
int  kms_vmalloc_init(unsigned long vsize);
long kms_vmalloc(unsigned long size);
int  kms_vfree(unsigned long addr);
long kms_vmalloc_to_pfn(unsigned long addr);

/* ---- cache allocator (optional) ---------------------------------------------------
 *
 * kmem_cache_* over the frames given to kms_init (addresses as for kms_kmalloc).
 * kms_kmem_cache_create: a cache of objects of `size` bytes (4 .. 131072), `align` 0
 *   or a power of two, `flags` a subset of SLAB_HWCACHE_ALIGN (0x2000); `name` is
 *   unique. Returns a handle >= 0, or -1 for NULL.
 * kms_kmem_cache_alloc: an object of the cache; -1 for NULL (only when memory is
 *   exhausted). Objects are aligned as 2.6.12 kmem_cache_create aligns them and never
 *   overlap (spec/conformance.md, C1-C8).
 * kms_kmem_cache_free: give back a live object of that cache. Returns 0.
 * kms_kmem_cache_destroy: destroy a cache with no live objects. Returns 0.
 * kms_slab_layout (optional, recommended): the slabs of a cache, 5 longs each --
 *   base (byte offset of the slab's first byte), colour offset (bytes), management
 *   bytes (struct slab + bufctls), 1 if the management is on the slab (between the
 *   colour area and object 0) else 0, number of objects. Fills at most `capacity`
 *   slabs of `out` and returns how many the cache has. When offered, refine mode
 *   checks the 2.6.12 geometry (num, management, colour within the slack).
 */
long kms_kmem_cache_create(const char *name, unsigned long size, unsigned long align,
                           unsigned long flags);
long kms_kmem_cache_alloc(long cache);
int  kms_kmem_cache_free(long cache, unsigned long addr);
int  kms_kmem_cache_destroy(long cache);
int  kms_slab_layout(long cache, long *out, unsigned int capacity);

/* ---- highmem permanent kmaps (optional) ---------------------------------------------
 *
 * The frames 0 .. nr_pages-1 given to kms_init are highmem pages the caller owns.
 * kms_kmap: the page's address as a byte offset into the PKMAP area of LAST_PKMAP
 *   (1024) pages: page aligned; the same address while the page has users; -1 only
 *   when every slot has users (the kernel would sleep).
 * kms_kunmap: drop one user of a kmapped page. Returns 0.
 * kms_pkmap_count (optional, recommended): pkmap_count[0 .. LAST_PKMAP-1] (0 free,
 *   1 unused but not yet flushed, n + 1 for n users); fills at most `capacity` ints
 *   and returns LAST_PKMAP.
 */
long kms_kmap(unsigned long pfn);
int  kms_kunmap(unsigned long pfn);
int  kms_pkmap_count(int *counts, unsigned int capacity);

#ifdef __cplusplus
}
#endif

#endif /* KMS_H */
