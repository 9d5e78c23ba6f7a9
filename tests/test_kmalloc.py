"""kmalloc / kfree / ksize on both profiles (2.6.12 mm/slab.c; 6.x mm/slab_common.c, slub.c)."""

import pickle

import pytest

from kmemspec.model import boot
from kmemspec.model import page_alloc as pa
from kmemspec.model import slab
from kmemspec.model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL
from kmemspec.model.kmalloc import ZERO_SIZE_PTR, kfree, kmalloc, kmalloc_index, ksize
from kmemspec.spec import check_all
from misuse import misuse


def ok(machine):
    broken = {k: v for k, v in check_all(machine).items() if v}
    assert not broken, broken




def cache_of(machine, addr):
    p = machine.profile
    return machine.slab.page_slab[(addr - p.PAGE_OFFSET) >> p.PAGE_SHIFT].cache.name


@pytest.fixture
def m26():
    return boot(phys_pages=8192, highmem_pages=512)


# the smallest class holding each size (include/linux/kmalloc_sizes.h, L1 = 128)
CLASSES_26 = [(0, "size-32"), (1, "size-32"), (32, "size-32"), (33, "size-64"),
              (64, "size-64"), (65, "size-128"), (100, "size-128"), (129, "size-256"),
              (256, "size-256"), (257, "size-512"), (1000, "size-1024"), (4097, "size-8192"),
              (65537, "size-131072"), (131072, "size-131072")]


@pytest.mark.parametrize("size,name", CLASSES_26)
def test_kmalloc_picks_the_smallest_general_cache(m26, size, name):
    addr = kmalloc(m26, size, GFP_KERNEL)
    assert cache_of(m26, addr) == name
    assert ksize(m26, addr) == int(name.split("-")[1])
    ok(m26)
    kfree(m26, addr)
    ok(m26)


def test_kmalloc_too_large_is_null_on_2_6(m26):
    assert kmalloc(m26, 131073, GFP_KERNEL) is None
    assert kmalloc(m26, 1 << 30, GFP_KERNEL) is None
    assert kmalloc_index(m26.profile, 131073) is None


def test_kfree_null_is_a_no_op_and_ksize_null_is_zero(m26):
    before = pickle.dumps(m26.__dict__)
    kfree(m26, None)
    kfree(m26, 0)
    assert ksize(m26, None) == 0
    assert pickle.dumps(m26.__dict__) == before


def test_gfp_dma_uses_the_dma_twin_and_dma_pages(m26):
    addr = kmalloc(m26, 200, GFP_KERNEL | GFP_DMA)
    assert cache_of(m26, addr) == "size-256(DMA)"
    assert (addr - 0xC0000000) >> 12 < 4096
    kfree(m26, addr)
    ok(m26)


def test_kfree_misuse(m26):
    a = kmalloc(m26, 100, GFP_KERNEL)
    misuse(m26, "not_object_start", kfree, a + 8)
    misuse(m26, "not_slab_object", kfree, pa.__get_free_page(m26, GFP_KERNEL))
    misuse(m26, "not_slab_object", kfree, 0x12345)
    misuse(m26, "not_slab_object", kfree, ZERO_SIZE_PTR)      # only SLUB has ZERO_SIZE_PTR
    kfree(m26, a)
    misuse(m26, "double_free", kfree, a)
    misuse(m26, "double_free", ksize, a)
    misuse(m26, "highmem_slab", kmalloc, 64, GFP_HIGHUSER)
    misuse(m26, "bad_size", kmalloc, -1, GFP_KERNEL)
    ok(m26)


def test_kfree_refuses_the_slab_layers_own_objects(m26):
    a = kmalloc(m26, 600, GFP_KERNEL)              # size-1024: off-slab struct slab
    slab = m26.slab.page_slab[(a - 0xC0000000) >> 12]
    misuse(m26, "slab_internal_object", kfree, slab.mgmt)
    misuse(m26, "slab_internal_object", kfree, m26.slab.malloc_sizes[0].addr)


def test_many_objects_fill_slabs_in_order(m26):
    addrs = [kmalloc(m26, 64, GFP_KERNEL) for _ in range(200)]
    assert len(set(addrs)) == 200
    c = m26.slab.malloc_sizes[1]
    # By hand (2.6.12 cache_alloc_refill; size-64: 61 a slab, limit 120, batchcount 60).
    # The bootstrap leaves size-64's first slab S0 with objects 0..11 in use (the 10
    # CPU arrays of the limit-8 caches and size-512's two struct slabs:
    # tests/test_slab_arraycache_memory.py). Refills take 16 (untouched:
    # BATCHREFILL_LIMIT) from S0, then S0's other 33, then 60 of new S1, S1's last 1,
    # 60 of S2, its last 1, 60 of S3: 16+33+60+1+60+1+60 = 231 taken from slabs after
    # 200 kmallocs; S0-S2 full, S3 partial, 31 parked
    assert (c.slabs_full.nr, c.slabs_partial.nr) == (3, 1)
    assert c.array[0].avail == 31 and c.free_objects == 1
    for a in addrs:
        kfree(m26, a)
    # kfree pushes onto the array; each time it is full (120) cache_flusharray moves its
    # oldest 60 to the shared array (limit 60*8 = 480): 31+200 = 231 = 2*60 shared + 111
    assert c.shared_array.avail == 120 and c.array[0].avail == 111
    assert (c.slabs_full.nr, c.slabs_partial.nr, c.slabs_free.nr) == (3, 1, 0)
    ok(m26)
    # kmem_cache_shrink drains both arrays, then every empty slab goes; S0 keeps its 12
    # array_cache / struct slab objects, so slabs stay in use: 1
    assert slab.kmem_cache_shrink(m26, c) == 1 and len(c.slabs) == 1
    assert c.free_objects == 61 - 12 and c.slabs_partial.nr == 1
    ok(m26)


# --- 6.x SLUB profile ----------------------------------------------------------------

@pytest.fixture
def m6():
    return boot(profile="linux-6.x-x86_64", phys_pages=16384, highmem_pages=0)


CLASSES_6 = [(1, "kmalloc-8"), (8, "kmalloc-8"), (9, "kmalloc-16"), (33, "kmalloc-64"),
             (65, "kmalloc-96"), (96, "kmalloc-96"), (97, "kmalloc-128"),
             (129, "kmalloc-192"), (193, "kmalloc-256"), (1025, "kmalloc-2k"),
             (8192, "kmalloc-8k")]


@pytest.mark.parametrize("size,name", CLASSES_6)
def test_slub_classes(m6, size, name):
    addr = kmalloc(m6, size, GFP_KERNEL)
    assert cache_of(m6, addr) == name
    ok(m6)


def test_slub_zero_size_and_large(m6):
    assert kmalloc(m6, 0, GFP_KERNEL) == ZERO_SIZE_PTR
    kfree(m6, ZERO_SIZE_PTR)
    assert ksize(m6, ZERO_SIZE_PTR) == 0
    # 8193 bytes: above KMALLOC_MAX_CACHE_SIZE -> pages, get_order(8193) = 2
    free = pa.nr_free_pages(m6)
    big = kmalloc(m6, 8193, GFP_KERNEL)
    assert big % 4096 == 0 and ksize(m6, big) == 16384
    pfn = (big - m6.profile.PAGE_OFFSET) >> 12
    assert m6.page_owner[pfn] == 2 and pa.nr_free_pages(m6) == free - 4
    ok(m6)
    misuse(m6, "not_slab_object", kfree, big + 64)
    kfree(m6, big)
    assert pa.nr_free_pages(m6) == free
    ok(m6)


def test_slub_power_of_two_objects_are_naturally_aligned(m6):
    for size in (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192):
        for _ in range(5):
            a = kmalloc(m6, size, GFP_KERNEL)
            assert a % size == 0, (size, hex(a))
    ok(m6)


def test_kmem_cache_free_of_a_kmalloc_object_ends_it():
    """2.6.12: kmalloc(100) comes from size-128; kmem_cache_free(size-128, p) is a
    legal way to free it, after which it is no longer a live kmalloc object."""
    from kmemspec.model import boot, slab
    from kmemspec.model.gfp import GFP_KERNEL
    from kmemspec.model.kmalloc import kmalloc
    from kmemspec.spec import check_all
    m = boot()
    p = kmalloc(m, 100, GFP_KERNEL)
    cache = next(c for c in m.slab.malloc_sizes if c.objsize == 128)
    slab.kmem_cache_free(m, cache, p)
    assert p not in m.slab.kmalloc_req
    assert not any(check_all(m).values())
