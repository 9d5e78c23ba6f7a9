"""Per-CPU and shared array caches (Linux 2.6.12 mm/slab.c), several CPUs, cache_reap.

Every expected value is worked out by hand from the 2.6.12 source in the docstrings
(enable_cpucache, cache_alloc_refill, __cache_free, cache_flusharray, free_block,
drain_array_locked, cache_reap), never read back from the model.

Geometry used below (i386, 4 KiB pages, 16 MiB machine so slab_break_gfp_order 0):
* size 64, no flags: align 4, on-slab; num 61 (61*64 + ALIGN(24 + 122, 4) = 4052 <=
  4096; 62 gives 4116), slab_size 148, left_over 44, colour 0; object i at
  page + 148 + 64*i. limit 120 (<= 256), batchcount 60, shared 8.
* size 2000, no flags: 2000 >= 512 so off-slab first; order 0: num 2, left 96, 96*8 <=
  4096 so order 0; slab_size 2*2 + 24 = 28 <= 96: back on-slab, left_over 68, colour 0;
  object i at page + 28 + 2000*i. limit 24 (> 1024), batchcount 12, shared limit 96.
Pages: mem_map is pfn 1..33 (2.6.12 mm/page_alloc.c alloc_node_mem_map: (4096 + 1) * 32
bytes = 33 frames; the 16 MiB bootmem goal is not inside this machine's low memory, so
mm/bootmem.c takes the first fit from pfn 0); the bootstrap's slabs follow it (BOOT_PAGES,
worked out in tests/test_slab_arraycache_memory.py from kmem_cache_init): on 1 CPU 14 --
kmem_cache 2, size-32 1, size-64 1, size-128 1, size-256 1, size-512 2, size-1024 1,
size-2048 5 (the array_cache memory); CPU_UP_PREPARE of CPU 1 needs 27 more arrays, of
which the 9 of 496 bytes take size-512's 3 parked objects and a third size-512 slab: 15
on 2 CPUs. After a 2.6.12 boot the first 14 order-0 frames are 63..58 (CPU 0's DMA hot
list), 56, 57, 34..39 (one-frame refills; slab_colour.jsonl's header), then the refills
walk up the o3 block 48..55 in pfn order. So a later cache's k-th slab (k = 1, 2, ...)
is pfn 33 + BOOT_PAGES + k while that is at most 55 and nothing else takes pages (its
descriptor and arrays come from objects already parked).
"""

import pickle

import pytest

from kmemspec.model import ConfigError, boot
from kmemspec.model.gfp import GFP_KERNEL, __GFP_ZERO
from kmemspec.model.kmalloc import kfree, kmalloc
from kmemspec.model.slab import (BATCHREFILL_LIMIT, BOOT_CPUCACHE_ENTRIES, cache_reap,
                                 kmem_cache_alloc, kmem_cache_create, kmem_cache_destroy,
                                 kmem_cache_free, kmem_cache_shrink)
from kmemspec.scenario import ScenarioError, parse_scenario, run_scenario
from kmemspec.spec import catalogue, check_all
from misuse import misuse

BASE = 0xC0000000


def ok(machine):
    broken = {k: v for k, v in check_all(machine).items() if v}
    assert not broken, broken


BOOT_PAGES = {1: 14, 2: 15}


def obj64(k, i, cpus=1):
    """Object i of the k-th slab of the 64-byte cache."""
    return BASE + (33 + BOOT_PAGES[cpus] + k) * 4096 + 148 + 64 * i


def obj2000(k, i, cpus=1):
    return BASE + (33 + BOOT_PAGES[cpus] + k) * 4096 + 28 + 2000 * i


def small(**kw):
    return boot(phys_pages=4096, highmem_pages=0, **kw)


# --- the example: the first objects of a fresh cache ---------------------------

def test_fresh_cache_hands_out_objects_in_cache_alloc_refill_order():
    """alloc 1: the new array is untouched and batchcount 60 > BATCHREFILL_LIMIT 16, so
    the refill takes 16: it grows slab 1 and takes objects 0..15; __cache_alloc pops the
    top: 15, then 14, ..., 0. alloc 17: touched, batchcount 60: slab 1 is partial with
    45 free (16..60): all taken, slab 1 full, no free slab left: no growth; pop 60."""
    m = small()
    c = kmem_cache_create(m, "c64", 64, 0, 0)
    assert (c.num, c.limit, c.batchcount, c.shared) == (61, 120, 60, 8)
    assert BATCHREFILL_LIMIT == 16
    got = [kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(18)]
    assert got == [obj64(1, i) for i in range(15, -1, -1)] + [obj64(1, 60), obj64(1, 59)]
    assert c.array[0].avail == 43 and c.array[0].touched == 1
    assert (c.slabs_full.nr, c.slabs_partial.nr, c.slabs_free.nr) == (1, 0, 0)
    ok(m)


def test_a_free_is_handed_out_again_first():
    """__cache_free pushes on the array, __cache_alloc pops it: LIFO."""
    m = small()
    c = kmem_cache_create(m, "c64", 64, 0, 0)
    a = kmem_cache_alloc(m, c, GFP_KERNEL)
    b = kmem_cache_alloc(m, c, GFP_KERNEL)
    kmem_cache_free(m, c, a)
    assert kmem_cache_alloc(m, c, GFP_KERNEL) == a
    assert kmem_cache_alloc(m, c, GFP_KERNEL) == b - 64      # object 13
    ok(m)


# --- the boot-time head arrays and the tunables ------------------------------------------

@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_head_arrays_until_kmem_cache_init_finishes(cpus):
    """Before the first slab call every cache has one head array of
    BOOT_CPUCACHE_ENTRIES (1) with batchcount 1 (g_cpucache_up PARTIAL). After it,
    enable_cpucache gives each cache an array per CPU and free_limit
    (1 + online) * batchcount + num: the boot caches with 1 online, then CPU_UP_PREPARE
    of CPU c with c online, so max(2, cpus); a later cache with all CPUs online.
    size-32: HWCACHE align 32 (128 halved twice), num 119 (119*32 + ALIGN(24+238, 32)
    = 4096), limit 120, batchcount 60."""
    m = boot(phys_pages=4096, highmem_pages=0, cpus=cpus)
    s32 = m.slab.malloc_sizes[0]
    assert m.slab.g_cpucache_up == "PARTIAL" and BOOT_CPUCACHE_ENTRIES == 1
    assert [(a.limit, a.batchcount) for a in s32.array] == [(1, 1)]
    assert (s32.limit, s32.batchcount, s32.shared_array) == (1, 1, None)
    kfree(m, kmalloc(m, 20, GFP_KERNEL))
    assert m.slab.g_cpucache_up == "FULL"
    assert [(a.limit, a.batchcount) for a in s32.array] == [(120, 60)] * cpus
    assert s32.num == 119 and s32.free_limit == max(2, cpus) * 60 + 119
    assert s32.shared_array.limit == 60 * 8
    c = kmem_cache_create(m, "late", 2000, 0, 0)
    assert c.free_limit == (1 + cpus) * 12 + 2 and len(c.array) == cpus
    ok(m)


def test_the_descriptors_come_one_at_a_time_through_the_head_array():
    """With limit 1 / batchcount 1 each boot descriptor is one refill of one object:
    kmem_cache objects 0, 1, 2, ... in creation order (objsize 256, 15 a slab)."""
    m = small()
    kmalloc(m, 1, GFP_KERNEL)
    creation = list(reversed(m.slab.cache_chain))[1:]
    first = creation[0].addr
    assert [c.addr - first for c in creation[:15]] == [256 * i for i in range(15)]


def test_tunables_by_object_size():
    """enable_cpucache: limit 1 (> 128 KiB), 8 (> PAGE_SIZE), 24 (> 1024), 54 (> 256),
    else 120; batchcount (limit + 1) / 2; shared 8 up to PAGE_SIZE, else 0 -- a shared
    array of limit 0, whose sharedfactor s_show prints as 0 / batchcount = 0."""
    m = small()
    kmalloc(m, 1, GFP_KERNEL)
    want = {32: (120, 60, 8), 256: (120, 60, 8), 512: (54, 27, 8), 1024: (54, 27, 8),
            2048: (24, 12, 8), 4096: (24, 12, 8), 8192: (8, 4, 0), 131072: (8, 4, 0)}
    got = {c.objsize: (c.limit, c.batchcount, c.shared_array.limit // c.batchcount)
           for c in m.slab.malloc_sizes}
    assert {k: got[k] for k in want} == want


# --- several CPUs and the shared array ---------------------------------------------------

def test_flush_to_the_shared_array_and_refill_from_it_on_another_cpu():
    """2 CPUs, size 2000 (num 2, limit 24, batchcount 12, shared limit 96).
    CPU 0 allocates 25: every refill grows a slab and takes its 2 objects; the 25th
    leaves slab 13's object 0 in the array. Freeing the 25 in order pushes them; the
    24th free finds avail 24 = limit: cache_flusharray moves the oldest 12 -- slab 13's
    object 0 and objs[0..10] -- to the shared array (room 96). CPU 1's first
    allocation: its array is empty, the shared array has 12 <= batchcount: all 12 move
    in order, CPU 1 pops the newest: objs[10], object 1 of slab 6."""
    m = small(cpus=2)
    c = kmem_cache_create(m, "c2000", 2000, 0, 0)
    objs = [kmem_cache_alloc(m, c, GFP_KERNEL, 0) for _ in range(25)]
    assert objs[:4] == [obj2000(1, 1, 2), obj2000(1, 0, 2), obj2000(2, 1, 2),
                        obj2000(2, 0, 2)]
    for a in objs:
        kmem_cache_free(m, c, a, 0)
    assert (c.array[0].avail, c.shared_array.avail, c.array[1].avail) == (14, 12, 0)
    assert kmem_cache_alloc(m, c, GFP_KERNEL, 1) == objs[10] == obj2000(6, 1, 2)
    assert (c.array[1].avail, c.shared_array.avail, c.shared_array.touched) == (11, 0, 1)
    ok(m)
    # an object freed on CPU 1 is parked there; CPU 0 does not see it
    kmem_cache_free(m, c, objs[10], 1)
    assert kmem_cache_alloc(m, c, GFP_KERNEL, 0) == objs[24]
    ok(m)


def test_each_cpu_refills_its_own_array():
    """CPU 1's first allocation refills CPU 1's array from the partial slab CPU 0 left:
    64-byte cache, CPU 0 took objects 0..15 of slab 1; CPU 1 takes 16..31, pops 31."""
    m = small(cpus=2)
    c = kmem_cache_create(m, "c64", 64, 0, 0)
    assert kmem_cache_alloc(m, c, GFP_KERNEL, 0) == obj64(1, 15, 2)
    assert kmem_cache_alloc(m, c, GFP_KERNEL, 1) == obj64(1, 31, 2)
    ok(m)


# --- free_block, free_limit, drain_array_locked, cache_reap -------------------------------

def test_cache_reap_drains_arrays_and_destroys_free_slabs():
    """1 CPU, size 2000: free_limit (1+1)*12 + 2 = 26. Slab k holds objs[2k-2] (object
    1) and objs[2k-1] (object 0). 40 allocations grow 20 slabs and empty the array.
    40 frees: the 25th and the 37th flush 12 each to the shared array: shared holds
    objs[0..23], CPU 0's array objs[24..39].
    Reap 1: CPU 0's array was touched: only the mark goes. The shared array is
    untouched: tofree (96+4)/5 = 20 <= 24: free_block(objs[0..19]): free_objects 20 <=
    26, so slabs 1..10 go to the head of slabs_free one by one (10 first). Refills found
    no partial slab (free_touched): cleared, no slab destroyed.
    Reap 2: CPU 0's array: tofree (24+4)/5 = 5: objs[24..28]: free_objects 25; slabs 13
    and 14 empty (to the head), slab 15 partial. Shared: 20 > avail 4, so (4+1)/2 = 2:
    objs[20], objs[21]: free_objects 27 > 26, so slab 11 is destroyed when it empties
    (free_objects 25). Then (26 + 5*2 - 1) / (5*2) = 3 slabs from the head of
    slabs_free: 14, 13, 10. Left: free 1..9, partial 15, full 12 and 16..20."""
    m = small()
    c = kmem_cache_create(m, "c2000", 2000, 0, 0)
    assert c.free_limit == 26
    objs = [kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(40)]
    slab_of = {k: (objs[2 * k - 2] - BASE) >> 12 for k in range(1, 21)}
    for a in objs:
        kmem_cache_free(m, c, a)
    assert c.shared_array.entry == objs[:24] and c.array[0].entry == objs[24:]
    cache_reap(m)
    assert c.array[0].avail == 16 and c.array[0].touched == 0
    assert c.shared_array.entry == objs[20:24]
    assert [s.id for s in c.slab_list(2)] == [slab_of[k] for k in range(10, 0, -1)]
    assert c.free_touched == 0 and len(c.slabs) == 20
    ok(m)
    cache_reap(m)
    assert c.array[0].entry == objs[29:] and c.shared_array.entry == objs[22:24]
    gone = {slab_of[k] for k in (11, 14, 13, 10)}
    assert set(c.slabs) == set(slab_of.values()) - gone
    assert [s.id for s in c.slab_list(2)] == [slab_of[k] for k in range(9, 0, -1)]
    assert [s.id for s in c.slab_list(1)] == [slab_of[15]]
    assert {s.id for s in c.slab_list(0)} == {slab_of[k] for k in (12, 16, 17, 18, 19, 20)}
    assert c.free_objects == 9 * 2 + 1
    ok(m)


def test_cache_reap_skips_slab_no_reap_caches():
    """kmem_cache (SLAB_NO_REAP) keeps its parked descriptors through any reap."""
    m = small()
    kmem_cache_create(m, "x", 100, 0, 0)           # leaves 3 objects in its array
    cc = m.slab.cache_cache
    before = list(cc.array[0].entry)
    cache_reap(m)
    cache_reap(m)
    assert cc.array[0].entry == before and len(before) == 3


def test_shrink_and_destroy_drain_every_cpu_first():
    m = small(cpus=3)
    c = kmem_cache_create(m, "c64", 64, 0, 0)
    objs = [kmem_cache_alloc(m, c, GFP_KERNEL, cpu) for cpu in (0, 1, 2)]
    for cpu, a in zip((2, 0, 1), objs):
        kmem_cache_free(m, c, a, cpu)
    assert kmem_cache_shrink(m, c, 1) == 0 and not c.slabs
    assert not any(ac.entry for ac in c.array) and not m.slab.parked - {
        a for cc in m.slab.cache_chain for ac in cc.array for a in ac.entry}
    assert kmem_cache_destroy(m, c, 2) == 0
    ok(m)


# --- flags that BUG() in cache_grow --------------------------------------------------------

def test_gfp_zero_bugs_only_when_the_cache_must_grow():
    """cache_grow BUG()s on flags outside SLAB_DMA | SLAB_LEVEL_MASK | SLAB_NO_GROW, but
    is reached only when the array, the shared array and the slabs are all empty."""
    m = small()
    c = kmem_cache_create(m, "c64", 64, 0, 0)
    misuse(m, "bad_slab_gfp", kmem_cache_alloc, c, GFP_KERNEL | __GFP_ZERO)
    a = kmem_cache_alloc(m, c, GFP_KERNEL)
    assert kmem_cache_alloc(m, c, GFP_KERNEL | __GFP_ZERO) == a - 64
    misuse(m, "bad_slab_gfp", kmalloc, 5000, GFP_KERNEL | __GFP_ZERO)   # size-8192 empty


# --- bad input: cpu numbers and the cpus boot key ------------------------------------------

def test_cpus_boot_key_is_validated():
    for bad in (0, 9, "2", True):
        with pytest.raises(ConfigError, match="cpus"):
            boot(phys_pages=4096, highmem_pages=0, cpus=bad)
    assert boot(phys_pages=4096, highmem_pages=0, cpus=8).cpus == 8


@pytest.mark.parametrize("line", [
    '{"op": "kmalloc", "size": 8, "gfp": "GFP_KERNEL", "cpu": 2}',
    '{"op": "kfree", "addr": null, "cpu": -1}',
    '{"op": "kmem_cache_alloc", "cache": "size-32", "gfp": "GFP_KERNEL", "cpu": "x"}',
    '{"op": "cache_reap", "cpu": 7}',
])
def test_a_bad_cpu_is_bad_input_with_its_step(line):
    """A cpu outside 0..cpus-1 (or not an integer) is bad input, its line named (the
    CLI's exit 2: tests/test_scenario.py)."""
    text = '{"op": "boot", "phys_pages": 4096, "highmem_pages": 0, "cpus": 2}\n' + line
    with pytest.raises(ScenarioError, match="line 2: .*cpu"):
        run_scenario(parse_scenario(text))


def test_a_bad_cpu_changes_nothing():
    m = small(cpus=2)
    c = kmem_cache_create(m, "c64", 64, 0, 0)
    a = kmem_cache_alloc(m, c, GFP_KERNEL)
    before = pickle.dumps(m.__dict__)
    for call in (lambda: kmem_cache_alloc(m, c, GFP_KERNEL, 2),
                 lambda: kmem_cache_free(m, c, a, 5), lambda: cache_reap(m, -1),
                 lambda: kfree(m, a, 3), lambda: kmalloc(m, 8, GFP_KERNEL, 2)):
        with pytest.raises(ValueError, match="cpu"):
            call()
    assert pickle.dumps(m.__dict__) == before


def test_double_free_of_a_parked_object_is_seen_at_once():
    m = small(cpus=2)
    c = kmem_cache_create(m, "c64", 64, 0, 0)
    a = kmem_cache_alloc(m, c, GFP_KERNEL)
    kmem_cache_free(m, c, a, 1)
    misuse(m, "double_free", kmem_cache_free, c, a, 0)
    misuse(m, "double_free", kfree, a)


# --- the array invariants fail on broken states --------------------------------------------

def busy():
    m = small(cpus=2)
    c = kmem_cache_create(m, "c64", 64, 0, 0)
    objs = [kmem_cache_alloc(m, c, GFP_KERNEL, 0) for _ in range(3)]
    kmem_cache_free(m, c, objs[0], 1)
    ok(m)
    return m, c, objs


def accounting(m):
    return catalogue.check(m, "slab_accounting")


def test_array_over_its_limit():
    m, c, _ = busy()
    c.array[1].limit = 0
    assert any("> limit" in v for v in accounting(m))


def test_object_in_two_arrays():
    m, c, objs = busy()
    c.shared_array.entry.append(objs[0])
    assert any("also in" in v for v in accounting(m))


def test_parked_object_also_on_the_free_list():
    m, c, _ = busy()
    slab = next(iter(c.slabs.values()))
    idx = slab.free                          # a free object, pushed as if parked
    addr = slab.s_mem + idx * c.objsize
    c.array[0].entry.append(addr)
    m.slab.parked.add(addr)
    assert any("free list" in v for v in accounting(m))


def test_parked_object_still_held():
    m, c, objs = busy()
    c.array[0].entry.append(objs[1])         # the caller still holds it
    m.slab.parked.add(objs[1])
    kmalloc_like = m.slab.kmalloc_req
    kmalloc_like[objs[1]] = 64
    assert any("still in use" in v for v in accounting(m))


def test_parked_record_disagrees_with_the_arrays():
    m, c, objs = busy()
    m.slab.parked.discard(objs[0])
    assert any("recorded as parked" in v for v in accounting(m))


def test_one_array_per_cpu():
    m, c, _ = busy()
    c.array.pop()
    assert any("per-CPU arrays" in v for v in accounting(m))
