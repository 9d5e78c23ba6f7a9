"""The array_cache structures are kmalloc memory (Linux 2.6.12 mm/slab.c).

Every expected value below is worked out by hand from the 2.6.12 source
(torvalds/linux 1da177e4, mm/slab.c): struct array_cache is four unsigned ints (avail,
limit, batchcount, touched: 16 bytes on i386) followed by one 4-byte pointer per entry
(ac_entry); alloc_arraycache asks kmem_find_general_cachep(16 + 4*entries) and
kmem_cache_alloc (kmem_cache_alloc_node without CONFIG_NUMA, include/linux/slab.h) for a
CPU's array, kmalloc for the shared one (cpu -1); struct arraycache_init is 16 + 4*1 =
20 bytes (size-32).

Array sizes from enable_cpucache's tunables:
  limit 8   (objsize > PAGE_SIZE: size-8192 .. size-131072, 10 caches): CPU array 48 B
            -> size-64; shared 0 entries, 16 B -> size-32
  limit 24  (> 1024: size-2048, size-4096, 4 caches): CPU 112 B -> size-128;
            shared 12*8 = 96 entries, 400 B -> size-512
  limit 54  (> 256: size-512, size-1024, 4 caches): CPU 232 B -> size-256;
            shared 27*8 = 216 entries, 880 B -> size-1024
  limit 120 (size-32 .. size-256 and kmem_cache (256 B), 9 caches): CPU 496 B ->
            size-512; shared 60*8 = 480 entries, 1936 B -> size-2048
Geometry (i386, L1 128): size-32 119 a slab, size-64 61, size-128 31, size-256 15 (all
on-slab); size-512 8 a slab, off-slab management 24 + 2*8 = 40 B in size-64;
size-1024 4, management 32 B in size-32; size-2048 2, management 28 B in size-32;
kmem_cache 15 objects of 256 B.
"""

import pytest

from kmemspec.model import boot
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.model.kmalloc import kfree, kmalloc
from kmemspec.model.slab import (SIZEOF_ARRAY_CACHE, kmem_cache_create, kmem_cache_destroy,
                                 kmem_cache_free, slabinfo)
from kmemspec.spec import check_all
from misuse import misuse


def ok(machine):
    broken = {k: v for k, v in check_all(machine).items() if v}
    assert not broken, broken


def active(machine):
    return {e["name"]: e["active_objs"] for e in slabinfo(machine)}


@pytest.mark.parametrize("machine_kw", [dict(phys_pages=4096, highmem_pages=0), dict()])
def test_boot_and_one_create_active_objects_of_the_general_caches(machine_kw):
    """kmem_cache_init as 2.6.12 runs it, then kmem_cache_create("test", 100, 0, 0).

    Phase A (kmem_cache_create of the 26 general caches): 26 descriptors from
    kmem_cache (head array limit 1: one refill of one object each); 25 head arrays
    kmalloc(sizeof(struct arraycache_init)) -> size-32 (all but size-32's own, which is
    the static initarray_generic: the "g_cpucache_up == NONE" branch); step 4 kmallocs
    two more (cache_cache, size-32): size-32 has 27 live objects, its array empty.

    Phase B (step 5, enable_cpucache on cache_chain from the head: size-131072(DMA),
    size-131072, ..., size-32, kmem_cache), per cache do_tune_cpucache: CPU 0's array
    allocated, swapped, the old head array kfree'd into size-32 (head array of limit 1:
    pushed, or, if it already holds one, cache_flusharray's free_block of the older one
    first), then the shared array kmalloc'ed:
    * caches 1-10 (limit 8): size-64 +1 each (10); kfree'd head pushed on size-32's
      array and popped at once by the 16-byte shared kmalloc: size-32 stays 27.
    * 11-14 (size-4096(DMA) .. size-2048): size-128 +1 each (4); size-512 +1 each (4;
      its first slab's struct slab is a size-64 object: size-64 11); size-32: the first
      kfree is parked, each later one flushes the parked one back: 27 -> 24.
    * 15-18 (size-1024(DMA) .. size-512): size-256 +1 each (4); size-1024's first slab
      grows (management from size-32, which pops its parked object) and after its own
      retune (cache 16) the refill takes the slab's other 3: 4 objects, all live by
      cache 18; size-32 -> 21 (three more flushes).
    * 19-27 (size-256(DMA) .. kmem_cache): size-512 (retuned at 18: limit 54, bc 27,
      untouched: refill at most 16) takes slab 1's last 4, later grows slab 2 (cache 23;
      its struct slab is size-64's 12th object) and takes all 8: 16 objects, 9 + 4
      live, 3 parked at the end. size-2048 (retuned at 14: limit 24, bc 12) grows a slab
      at caches 19, 21, 23, 25, 27 (struct slab each from size-32, popping its parked
      object) taking both objects: 10 objects, 9 live, 1 parked. size-32 -> 17 (4 more
      flushes; retuned at cache 26, after which kfree pushes on the new array: 2 parked,
      one popped for size-2048's last struct slab).
    kmem_cache_create("test", 100): descriptor: kmem_cache's retuned array refills at
    most 16 and finds slab 2's last 4 (26 + 4 = 30, 3 parked); limit 120 (100 <= 256):
    its CPU array pops a parked size-512 object, its shared array (1936 B) pops the
    parked size-2048 object. Before this work the model gave every general cache 0.
    """
    m = boot(**machine_kw)
    c = kmem_cache_create(m, "test", 100, 0, 0)
    got = active(m)
    want = {"size-32": 17, "size-64": 12, "size-128": 4, "size-256": 4, "size-512": 16,
            "size-1024": 4, "size-2048": 10, "kmem_cache": 30, "test": 0}
    assert {k: got[k] for k in want} == want
    assert all(n == 0 for k, n in got.items() if k not in want)
    # live array_caches by class, an independent count (sizes in the module docstring)
    live = {}
    for addr, what in m.slab.internal.items():
        if "array_cache" in what:
            cache = m.slab.page_slab[(addr - 0xC0000000) >> 12].cache.name
            live[cache] = live.get(cache, 0) + 1
    assert live == {"size-32": 10, "size-64": 10, "size-128": 4, "size-256": 4,
                    "size-512": 9 + 4 + 1, "size-1024": 4, "size-2048": 9 + 1}
    assert c.array[0].addr in m.slab.internal and c.shared_array.addr in m.slab.internal
    ok(m)


@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_one_array_per_cpu_and_a_shared_one_each_a_live_general_object(cpus):
    """Every cache ends with `cpus` CPU arrays (step 5 for CPU 0, CPU_UP_PREPARE for the
    others) and one shared array, each a live object of the class of its 16 + 4*entries
    bytes: 27 caches after boot, 28 with "late" (2000 B: limit 24 -> size-128, shared
    96 entries -> size-512)."""
    m = boot(phys_pages=4096, highmem_pages=0, cpus=cpus)
    kmem_cache_create(m, "late", 2000, 0, 0)
    by_class = {}
    for addr, what in m.slab.internal.items():
        if "array_cache" in what:
            cache = m.slab.page_slab[(addr - 0xC0000000) >> 12].cache
            by_class[cache.name] = by_class.get(cache.name, 0) + 1
    want = {"size-32": 10, "size-64": 10 * cpus, "size-128": 5 * cpus,
            "size-256": 4 * cpus, "size-512": 9 * cpus + 5, "size-1024": 4,
            "size-2048": 9}
    assert by_class == want
    assert SIZEOF_ARRAY_CACHE == 16
    ok(m)


def test_destroy_kfrees_the_arrays_and_kmalloc_hands_them_out_again():
    """kmem_cache_destroy kfrees array[0] (496 B, size-512) and then the shared array
    (1936 B, size-2048) on the calling CPU: __cache_free pushes each on its cache's CPU
    array, so the next kmalloc of each class pops it (LIFO)."""
    m = boot(phys_pages=4096, highmem_pages=0)
    c = kmem_cache_create(m, "test", 100, 0, 0)
    cpu_arr, shared = c.array[0].addr, c.shared_array.addr
    assert kmem_cache_destroy(m, c) == 0
    assert cpu_arr not in m.slab.internal and shared not in m.slab.internal
    assert kmalloc(m, 496, GFP_KERNEL) == cpu_arr
    assert kmalloc(m, 1936, GFP_KERNEL) == shared
    ok(m)


def test_array_memory_is_the_slab_layers_own():
    """kfree / kmem_cache_free of an array_cache is misuse (the model's
    slab_internal_object rule; the kernel has no such check), state unchanged."""
    m = boot(phys_pages=4096, highmem_pages=0)
    c = kmem_cache_create(m, "test", 100, 0, 0)
    misuse(m, "slab_internal_object", kfree, c.array[0].addr)
    s512 = m.slab.malloc_sizes[4]
    misuse(m, "slab_internal_object", kmem_cache_free, s512, c.array[0].addr)


def test_invariant_catches_an_array_whose_memory_is_not_live():
    """slab_accounting: an array_cache whose object went back to its cache (a broken
    model: kmem_cache_destroy forgetting to unmark, or freeing too early) is reported."""
    m = boot(phys_pages=4096, highmem_pages=0)
    c = kmem_cache_create(m, "test", 100, 0, 0)
    ok(m)
    addr = c.shared_array.addr
    del m.slab.internal[addr]
    kfree(m, addr)                      # now parked in size-2048's array, yet in use
    assert any("array_cache" in v for v in check_all(m)["slab_accounting"])
    m2 = boot(phys_pages=4096, highmem_pages=0)
    c2 = kmem_cache_create(m2, "test", 100, 0, 0)
    c2.array[0].addr = None             # a static array after g_cpucache_up FULL
    assert any("array_cache" in v for v in check_all(m2)["slab_accounting"])
