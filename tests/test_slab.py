"""The slab allocator: geometry, colouring, slab lifecycle and misuse (Linux 2.6.12 mm/slab.c).

Expected numbers are worked out by hand from the kernel formulas in the comments, never
read back from the model.
"""

import pytest

from kmemspec.model import ConfigError, boot
from kmemspec.model import page_alloc as pa
from kmemspec.model import slab
from kmemspec.model.gfp import GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, __GFP_NO_GROW
from kmemspec.model.mem_map import PG_slab
from kmemspec.model.slab import (PARTIAL, SLAB_CACHE_DMA, SLAB_HWCACHE_ALIGN, cache_estimate,
                                 kmem_cache_alloc, kmem_cache_create, kmem_cache_destroy,
                                 kmem_cache_free, kmem_cache_shrink)
from kmemspec.spec import check_all
from misuse import misuse

PAGE_OFFSET = 0xC0000000


def ok(machine):
    broken = {k: v for k, v in check_all(machine).items() if v}
    assert not broken, broken




def base_of(addr):
    return addr & ~0xFFF


# --- cache_estimate ----------------------------------------------------------------

def _counting_estimate(gfporder, size, align, off_slab):
    """2.6.12 mm/slab.c cache_estimate, as written there: count objects up (i386 sizes)."""
    def ALIGN(x, a):
        return (x + a - 1) // a * a
    wastage = 4096 << gfporder
    base, extra = (0, 0) if off_slab else (24, 2)
    i = 0
    while i * size + ALIGN(base + i * extra, align) <= wastage:
        i += 1
    if i > 0:
        i -= 1
    i = min(i, 65533)
    return i, wastage - i * size - ALIGN(base + i * extra, align)


@pytest.mark.parametrize("off_slab", [False, True])
@pytest.mark.parametrize("align", [4, 8, 32, 64, 128, 256])
def test_cache_estimate_equals_the_2_6_12_counting_loop(off_slab, align):
    for size in list(range(4, 600, 4)) + [1000, 1024, 1100, 2048, 4000, 4096, 8192, 40000]:
        for order in (0, 1, 3):
            got = cache_estimate(order, size, align, off_slab, 4096, 24, 2, 65533)
            assert got == _counting_estimate(order, size, align, off_slab), (size, order)


# --- the general caches ------------------------------------------------------------

def test_general_caches_are_the_seeds_thirteen_sizes_with_dma_twins():
    m = boot()
    names = [c.name for c in m.slab.cache_chain]
    # list_add at the head of cache_chain: newest first, kmem_cache (the first) last
    assert names[-1] == "kmem_cache" and names[0] == "size-131072(DMA)"
    sizes = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
    assert [c.objsize for c in m.slab.malloc_sizes] == sizes
    assert [c.name for c in m.slab.malloc_sizes] == [f"size-{s}" for s in sizes]
    assert [c.name for c in m.slab.malloc_sizes_dma] == [f"size-{s}(DMA)" for s in sizes]
    assert len(names) == 1 + 2 * 13


def test_general_cache_geometry_by_hand():
    m = boot()
    g = {c.name: c for c in m.slab.cache_chain}
    # size-32: HWCACHE_ALIGN halves 128 -> 64 -> 32 (32 <= 64, 32 <= 32); on-slab;
    # 119*32 + ALIGN(24 + 2*119 = 262, 32) = 3808 + 288 = 4096; 120 would need 4128
    c = g["size-32"]
    assert (c.num, c.gfporder, c.left_over, c.slab_size, c.off_slab) == (119, 0, 0, 288, False)
    # size-64: 61*64 + ALIGN(146, 64) = 3904 + 192 = 4096
    assert (g["size-64"].num, g["size-64"].left_over) == (61, 0)
    # size-128: 31*128 + ALIGN(86, 128) = 3968 + 128 = 4096
    assert (g["size-128"].num, g["size-128"].left_over) == (31, 0)
    # size-256: 15*256 + ALIGN(54, 128) = 3968; left 128; colour 128/128 = 1
    c = g["size-256"]
    assert (c.num, c.left_over, c.colour, c.colour_off) == (15, 128, 1, 128)
    # size-512: 512 >= 4096 >> 3 -> off-slab; 4096/512 = 8, left 0; slab_size
    # 8*2 + 24 = 40 bytes, held by the first general cache that fits: size-64
    c = g["size-512"]
    assert (c.num, c.left_over, c.off_slab, c.slab_size) == (8, 0, True, 40)
    assert c.slabp_cache is g["size-64"]
    # size-8192: order 1 (8192 << 0 holds none), one object
    assert (g["size-8192"].gfporder, g["size-8192"].num) == (1, 1)
    # size-131072: 32 pages = MAX_GFP_ORDER 5
    assert (g["size-131072"].gfporder, g["size-131072"].num) == (5, 1)
    # kmem_cache: ALIGN(sizeof(kmem_cache_t) = 152, 128) = 256 -> 15 per page, colour 1
    cc = m.slab.cache_cache
    assert (cc.objsize, cc.num, cc.colour, cc.slab_size) == (256, 15, 1, 128)
    # off-slab limit: the last on-slab general cache, size-256: (256 - 24) / 2 = 116
    assert m.slab.offslab_limit == 116


def test_slub_classes_on_the_6x_profile():
    m = boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
    got = [(c.name, c.objsize, c.num, 1 << c.gfporder, c.colour) for c in m.slab.malloc_sizes]
    # 6.x calculate_order with min_objects = 4 * (fls(8) + 1) = 20, max order 3:
    # 8: get_order(160) = 0 -> 512 objects; 256: get_order(5120) = 1 -> 32 objects in 2 pages;
    # 2k: 20 objects need order 4 > 3, so min_objects = 8 pages' 16 objects -> order 3
    assert got == [
        ("kmalloc-8", 8, 512, 1, 0), ("kmalloc-16", 16, 256, 1, 0),
        ("kmalloc-32", 32, 128, 1, 0), ("kmalloc-64", 64, 64, 1, 0),
        ("kmalloc-96", 96, 42, 1, 0), ("kmalloc-128", 128, 32, 1, 0),
        ("kmalloc-192", 192, 21, 1, 0), ("kmalloc-256", 256, 32, 2, 0),
        ("kmalloc-512", 512, 32, 4, 0), ("kmalloc-1k", 1024, 32, 8, 0),
        ("kmalloc-2k", 2048, 16, 8, 0), ("kmalloc-4k", 4096, 8, 8, 0),
        ("kmalloc-8k", 8192, 4, 8, 0)]
    assert m.slab.malloc_sizes_dma[0].name == "dma-kmalloc-8"


# --- colouring ---------------------------------------------------------------------

def test_colour_offsets_cycle_on_a_1_gib_machine():
    """A 1100-byte cache, no alignment request, on the seed's 1 GiB machine.

    By hand (2.6.12 kmem_cache_create):
      size 1100 (a multiple of 4), align = BYTES_PER_WORD = 4;
      1100 >= 4096 >> 3 -> CFLGS_OFF_SLAB;
      order 0: num = 4096 // 1100 = 3, left 796; order 0 < slab_break_gfp_order 1
               (more than 32 MiB) and 796 * 8 > 4096 -> try order 1;
      order 1: num = 8192 // 1100 = 7, left 8192 - 7700 = 492; order 1 >= 1 -> stop;
      slab_size = ALIGN(7*2 + 24, 4) = 40 <= 492 -> back on-slab, left_over = 452;
      colour_off = max(L1 128, 4) = 128; colour = 452 // 128 = 3.
    cache_grow: offsets colour_next * 128 with colour_next 0, 1, 2, 0, 1, ...;
    objects start after the 40-byte struct slab + bufctls.
    Order (cache_alloc_refill, limit 24 -> batchcount 12): every refill finds no slab,
    grows one and takes all its 7 objects in bufctl order into the CPU's array;
    __cache_alloc pops the top, so a slab's objects come out 6, 5, ..., 0.
    """
    m = boot()
    c = kmem_cache_create(m, "colour_demo", 1100, 0, 0)
    assert (c.gfporder, c.num, c.left_over, c.colour, c.colour_off, c.off_slab) == \
        (1, 7, 452, 3, 128, False)
    starts = []
    for _ in range(5):                          # five slabs, 7 objects each
        objs = [kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(7)]
        base = objs[-1] & ~(8192 - 1)
        starts.append(objs[-1] - base)
        assert objs == [objs[-1] + (6 - i) * 1100 for i in range(7)]
    assert starts == [0 + 40, 128 + 40, 256 + 40, 0 + 40, 128 + 40]
    # the seed's point: object 0 of successive slabs sits on different cache lines
    assert len({s // 128 for s in starts[:3]}) == 3
    ok(m)


def test_colour_offsets_cycle_on_a_small_machine():
    """Same cache on a 16 MiB machine: slab_break_gfp_order stays 0.

    order 0: 0 >= slab_break_gfp_order 0 -> stop at once: num 3, left 796;
    slab_size = ALIGN(3*2 + 24, 4) = 32 <= 796 -> on-slab, left_over 764;
    colour = 764 // 128 = 5: offsets 0, 128, 256, 384, 512, then 0 again.
    Each refill takes one new slab's 3 objects; they come out 2, 1, 0.
    """
    m = boot(phys_pages=4096, highmem_pages=0)
    c = kmem_cache_create(m, "colour_demo", 1100, 0, 0)
    assert (c.gfporder, c.num, c.left_over, c.colour) == (0, 3, 764, 5)
    starts = []
    for _ in range(6):
        objs = [kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(3)]
        assert objs == [objs[2] + 2200, objs[2] + 1100, objs[2]]
        starts.append(objs[2] - base_of(objs[2]))
    assert starts == [32, 160, 288, 416, 544, 32]
    ok(m)


def test_colour_next_advances_even_when_growth_fails():
    """cache_grow takes the colour before kmem_getpages and never gives it back."""
    m = boot(phys_pages=4096, highmem_pages=0)
    c = kmem_cache_create(m, "colour_demo", 1100, 0, 0)
    assert kmem_cache_alloc(m, c, GFP_KERNEL | __GFP_NO_GROW) is None
    assert c.colour_next == 0                    # SLAB_NO_GROW returns before the colour
    while pa.alloc_pages(m, GFP_KERNEL, 0) is not None:
        pass
    assert kmem_cache_alloc(m, c, GFP_KERNEL) is None
    assert c.colour_next == 1
    ok(m)


# --- slabs and the buddy allocator --------------------------------------------------

def test_grow_marks_pages_and_shrink_gives_them_back():
    m = boot(phys_pages=4096, highmem_pages=0)
    c = kmem_cache_create(m, "big", 8192, 0, SLAB_HWCACHE_ALIGN)   # order-1 slabs
    free_before = pa.nr_free_pages(m)
    a = kmem_cache_alloc(m, c, GFP_KERNEL)
    pfn = (a - PAGE_OFFSET) >> 12
    head = min(s.id for s in c.slabs.values())
    assert m.page_owner[head] == c.gfporder == 1
    for p in (head, head + 1):
        assert m.mem_map.flags[p] & PG_slab
        assert m.slab.page_slab[p].cache is c       # page -> cache / slab back-pointers
    assert head <= pfn <= head + 1
    # off-slab management (8192 >= 512, no left-over): a live size-32 object
    assert c.off_slab and c.slabs[head].mgmt in m.slab.internal
    kmem_cache_free(m, c, a)
    assert kmem_cache_shrink(m, c) == 0
    assert not m.mem_map.flags[head] & PG_slab and head not in m.slab.page_slab
    # the struct slab is a size-32 object; size-32 already has a slab with room from the
    # bootstrap (array_cache memory, tests/test_slab_arraycache_memory.py): no new page
    assert pa.nr_free_pages(m) == free_before
    ok(m)


def test_refill_batches_and_free_block_list_moves():
    """A 256-byte cache (15 a slab; limit 120, batchcount 60), by hand from 2.6.12.

    alloc 1: the array is untouched, so cache_alloc_refill takes min(60, 16) = 16 but
    the grown slab A holds 15: all of them, A full; it returns A#14, then A#13, ... A#0.
    alloc 16: touched now, batchcount 60: slab B grown, all 15 taken, B#14 returned.
    Frees push onto the array (limit 120, no flush): no slab list changes.
    kmem_cache_shrink: do_drain free_block()s the array in order -- B#0..B#13 (B goes to
    the partial tail), then A#14..A#0 (A empties: free_objects 29 <= free_limit
    2*60+15 = 135, so to the head of slabs_free) -- then destroys A: 1 (B in use).
    """
    m = boot(phys_pages=4096, highmem_pages=0)
    c = kmem_cache_create(m, "c256", 256, 0, SLAB_HWCACHE_ALIGN)
    assert (c.num, c.limit, c.batchcount, c.free_limit) == (15, 120, 60, 135)
    objs = [kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(16)]
    assert [objs[0] - objs[i] for i in range(15)] == [256 * i for i in range(15)]
    assert (c.slabs_full.nr, c.slabs_partial.nr, c.slabs_free.nr) == (2, 0, 0)
    assert c.array[0].avail == 14 and c.free_objects == 0
    for a in objs[:15]:
        kmem_cache_free(m, c, a)
    assert (c.slabs_full.nr, c.slabs_partial.nr, c.slabs_free.nr) == (2, 0, 0)
    assert c.array[0].avail == 29
    slab_a = m.slab.page_slab[(objs[0] - PAGE_OFFSET) >> 12]
    assert kmem_cache_shrink(m, c) == 1
    assert slab_a.id not in c.slabs and c.array[0].avail == 0
    assert (c.slabs_full.nr, c.slabs_partial.nr, c.slabs_free.nr) == (0, 1, 0)
    assert c.free_objects == 14
    ok(m)


def test_destroy_frees_descriptor_and_slabs():
    m = boot(phys_pages=4096, highmem_pages=0)
    c = kmem_cache_create(m, "tmp", 64, 0, 0)
    desc = c.addr
    a = kmem_cache_alloc(m, c, GFP_KERNEL)
    kmem_cache_free(m, c, a)
    kmem_cache_destroy(m, c)
    assert slab.find_cache(m, "tmp") is None and desc not in m.slab.internal
    assert not c.slabs
    misuse(m, "destroyed_cache", kmem_cache_alloc, c, GFP_KERNEL)
    ok(m)


def test_dma_cache_takes_dma_pages():
    m = boot(phys_pages=8192, highmem_pages=64)
    c = kmem_cache_create(m, "dmac", 128, 0, SLAB_CACHE_DMA)
    a = kmem_cache_alloc(m, c, GFP_KERNEL | GFP_DMA)
    assert (a - PAGE_OFFSET) >> 12 < 4096
    misuse(m, "dma_flag_mismatch", kmem_cache_alloc, c, GFP_KERNEL)
    ok(m)


def test_lazy_bootstrap_places_descriptors_at_the_first_slab_call():
    m = boot()
    assert not m.slab.ready and not m.slab.page_slab
    c = kmem_cache_create(m, "x", 100, 0, 0)
    assert m.slab.ready
    # the 26 general descriptors come one at a time through the boot head array
    # (BOOT_CPUCACHE_ENTRIES 1, batchcount 1): objects 0..14 of slab A, 0..10 of B.
    # Then x's descriptor: cache_cache's real array (limit 120, batchcount 60) is
    # untouched, so the refill asks 16 but B has 4 free (11..14): it takes them, B is
    # full, the cache does not grow; x gets B#14, and B#11..13 stay in the array
    cc = m.slab.cache_cache
    assert len(cc.slabs) == 2 and cc.free_objects == 0 and cc.array[0].avail == 3
    slab_b = m.slab.page_slab[(c.addr - PAGE_OFFSET) >> 12]
    assert c.addr == slab_b.s_mem + 14 * 256
    assert all(g.addr in m.slab.internal for g in m.slab.malloc_sizes)
    assert c.addr in m.slab.internal
    ok(m)


def test_a_machine_too_small_for_the_bootstrap_is_refused():
    # 3 frames: page 0 reserved, mem_map takes 1, one frame left for 2 cache_cache slabs
    with pytest.raises(ConfigError, match="slab bootstrap"):
        boot(phys_pages=3, highmem_pages=0)


# --- misuse ------------------------------------------------------------------------

@pytest.fixture
def m2():
    m = boot(phys_pages=4096, highmem_pages=0)
    a = kmem_cache_create(m, "a", 100, 0, 0)
    b = kmem_cache_create(m, "b", 100, 0, 0)
    return m, a, b


def test_free_to_the_wrong_cache(m2):
    m, a, b = m2
    x = kmem_cache_alloc(m, a, GFP_KERNEL)
    misuse(m, "wrong_cache", kmem_cache_free, b, x)


def test_double_free(m2):
    m, a, _ = m2
    x = kmem_cache_alloc(m, a, GFP_KERNEL)
    kmem_cache_free(m, a, x)
    misuse(m, "double_free", kmem_cache_free, a, x)


def test_free_of_an_address_inside_an_object(m2):
    m, a, _ = m2
    x = kmem_cache_alloc(m, a, GFP_KERNEL)
    misuse(m, "not_object_start", kmem_cache_free, a, x + 4)
    # the colour area / struct slab before object 0 starts no object either
    misuse(m, "not_object_start", kmem_cache_free, a, base_of(x))


def test_free_of_a_non_slab_address(m2):
    m, a, _ = m2
    page = pa.__get_free_page(m, GFP_KERNEL)
    misuse(m, "not_slab_object", kmem_cache_free, a, page)


def test_destroy_busy_cache_returns_1_and_keeps_the_cache(m2):
    """2.6.12 kmem_cache_destroy: __cache_shrink drains the arrays and frees the free
    slabs; with a slab still in use it re-adds the cache at the head of cache_chain and
    returns 1. Size 100 (num 39, batchcount 60 -> 16 at the first refill): the array
    held A#0..A#14 and the caller A#15, so A goes back partial with inuse 1."""
    m, a, b = m2
    x = kmem_cache_alloc(m, a, GFP_KERNEL)
    assert a.array[0].avail == 15
    m.slab.cache_chain.remove(a)
    m.slab.cache_chain.append(a)                 # not at the head before the call
    assert kmem_cache_destroy(m, a) == 1
    assert m.slab.cache_chain[0] is a and not a.dead and a.addr in m.slab.internal
    assert a.array[0].avail == 0 and a.slabs_partial.nr == 1
    assert a.slab_list(PARTIAL)[0].inuse == 1
    ok(m)
    kmem_cache_free(m, a, x)
    assert kmem_cache_destroy(m, a) == 0 and a.dead
    ok(m)


def test_create_misuse(m2):
    m, _, _ = m2
    misuse(m, "duplicate_cache", kmem_cache_create, "a", 64, 0, 0)
    misuse(m, "bad_cache_size", kmem_cache_create, "tiny", 2, 0, 0)
    misuse(m, "bad_cache_size", kmem_cache_create, "huge", 131073, 0, 0)
    misuse(m, "bad_slab_flags", kmem_cache_create, "f", 64, 0, 0x1)
    misuse(m, "bad_align", kmem_cache_create, "al", 64, 24, 0)
    misuse(m, "bad_cache_name", kmem_cache_create, "", 64, 0, 0)
    # a space is only a DEBUG WARN_ON in 2.6.12 kmem_cache_create: allowed
    assert kmem_cache_create(m, "with space", 64, 0, 0).name == "with space"


def test_internal_caches_and_objects_are_protected(m2):
    m, a, _ = m2
    misuse(m, "destroy_cache_cache", kmem_cache_destroy, m.slab.cache_cache)
    misuse(m, "destroy_general_cache", kmem_cache_destroy, m.slab.malloc_sizes[0])
    misuse(m, "cache_cache_private", kmem_cache_alloc, m.slab.cache_cache, GFP_KERNEL)
    misuse(m, "slab_internal_object", kmem_cache_free, m.slab.cache_cache, a.addr)


def test_highmem_and_bad_gfp(m2):
    m, a, _ = m2
    misuse(m, "highmem_slab", kmem_cache_alloc, a, GFP_HIGHUSER)
    misuse(m, "bad_gfp", kmem_cache_alloc, a, 0x10000)
    assert kmem_cache_alloc(m, a, GFP_ATOMIC) is not None


def test_bootstrap_that_finds_no_pages_fails_cleanly_and_retries():
    m = boot(phys_pages=64, highmem_pages=0, page_policy="buddy")    # every frame taken
    taken = []
    while (page := pa.alloc_pages(m, GFP_KERNEL, 0)) is not None:
        taken.append(page)
    # the first slab call cannot place the 26 descriptors: NULL, nothing half done
    from kmemspec.model.kmalloc import kmalloc
    assert kmalloc(m, 64, GFP_KERNEL) is None
    assert not m.slab.ready and not m.slab.internal and not m.slab.page_slab
    ok(m)
    # the bootstrap takes 14 pages (2 kmem_cache slabs and 12 for the array_cache
    # memory, in the order of tests/test_slab_arraycache_memory.py); the 11th is
    # size-512's second slab, needed for size-64(DMA)'s CPU array (step 5, cache 23):
    # with 10 pages do_tune_cpucache fails (-ENOMEM) and the model gives every page back
    for page in taken[:10]:
        pa.__free_pages(m, page, 0)
    free = pa.nr_free_pages(m)
    assert kmalloc(m, 64, GFP_KERNEL) is None
    assert not m.slab.ready and not m.slab.internal and not m.slab.page_slab
    assert pa.nr_free_pages(m) == free
    ok(m)
    # with 12 the 13th and 14th pages (size-2048's slabs 4 and 5) are missing: those are
    # shared arrays (size-32(DMA), size-32, kmem_cache), whose failed kmalloc
    # do_tune_cpucache ignores (the cache keeps its old shared array: none)
    for page in taken[10:12]:
        pa.__free_pages(m, page, 0)
    addr = kmalloc(m, 64, GFP_KERNEL)            # size-64 has room after the bootstrap
    assert {c.name for c in m.slab.cache_chain if c.shared_array is None} == \
        {"size-32(DMA)", "size-32", "kmem_cache"}
    assert addr is not None and m.slab.ready
    ok(m)
