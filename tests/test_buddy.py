"""The buddy allocator: policy, split and merge, zone fallback, and every misuse."""

from kmemspec.model import boot
from kmemspec.model import page_alloc as pa
from kmemspec.model.addr import page_address
from kmemspec.model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL
from kmemspec.spec import check_all
from misuse import misuse

free_pages_page = pa.__free_pages


def tiny(**kw):
    """32 low frames, DMA below pfn 8, 16 highmem frames, nothing reserved."""
    kw.setdefault("phys_pages", 32)
    kw.setdefault("highmem_pages", 16)
    kw.setdefault("reserved", ())
    kw.setdefault("max_dma_pfn", 8)
    # the bare buddy core: these tests are about __rmqueue / expand / __free_pages_bulk
    # (watermarks and per-CPU lists: tests/test_watermarks.py, tests/test_pcp.py)
    kw.setdefault("page_policy", "buddy")
    return boot(**kw)


def test_tiny_layout():
    m = tiny()
    # 32 + 16 frames * 32 bytes = 1536 bytes: mem_map takes pfn 0
    assert m.mem_map_pfns == range(0, 1)
    assert pa.buddyinfo(m) == {"DMA": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                               "Normal": [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0],
                               "HighMem": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]}


def test_expand_hands_back_upper_halves():
    m = tiny()
    page = pa.alloc_pages(m, GFP_KERNEL, 0)
    # Normal is [8, 32); 2.6.12 aligns blocks from the zone's first frame, so boot
    # left an order-4 block at pfn 8 and an order-3 block at pfn 24. The smallest
    # order with a block is 3: the caller gets pfn 24, and 25 (o0), 26 (o1), 28 (o2)
    # go back to the lists.
    assert page.pfn == 24
    assert pa.buddyinfo(m)["Normal"][:5] == [1, 1, 1, 0, 1]
    assert [m.mem_map.private[p] for p in (25, 26, 28)] == [0, 1, 2]


def test_free_merges_back_to_the_top():
    m = tiny()
    pages = [pa.alloc_pages(m, GFP_KERNEL, 0) for _ in range(8)]
    assert sorted(p.pfn for p in pages) == list(range(24, 32))
    for p in pages:
        pa.__free_pages(m, p, 0)
    assert pa.buddyinfo(m)["Normal"][:5] == [0, 0, 0, 1, 1]
    assert not any(check_all(m).values())


def test_merge_stops_at_zone_boundary():
    # DMA is [0, 8) and Normal [8, 32): pfn 7 and 8 are never buddies, even when free
    m = tiny()
    assert m.zone_of(7).name == "DMA" and m.zone_of(8).name == "Normal"
    assert pa.buddyinfo(m)["DMA"][3] == 0   # no order-3 block spans the boundary


def test_zone_fallback_order():
    m = tiny()
    got = [pa.alloc_pages(m, GFP_HIGHUSER, 4), pa.alloc_pages(m, GFP_HIGHUSER, 4),
           pa.alloc_pages(m, GFP_HIGHUSER, 3), pa.alloc_pages(m, GFP_HIGHUSER, 2)]
    # HighMem first, then Normal, then DMA (2.6.12 build_zonelists)
    assert [m.zone_of(p.pfn).name for p in got] == ["HighMem", "Normal", "Normal", "DMA"]
    assert [p.pfn for p in got] == [32, 8, 24, 4]
    assert pa.alloc_pages(m, GFP_DMA, 3) is None     # GFP_DMA: DMA only
    assert pa.alloc_pages(m, GFP_DMA, 1).pfn == 2


def test_gfp_dma_never_leaves_dma():
    m = tiny()
    taken = []
    while (p := pa.alloc_pages(m, GFP_DMA, 0)) is not None:
        taken.append(p.pfn)
    # DMA is [0, 8) and pfn 0 holds mem_map: frames 1..7, and nothing from Normal
    assert sorted(taken) == list(range(1, 8))


def test_order_above_top_fails_with_null():
    m = boot()
    assert pa.alloc_pages(m, GFP_KERNEL, 11) is None     # more than 4 MiB: NULL
    assert pa.alloc_pages(m, GFP_KERNEL, 10) is not None


def test_get_free_pages_returns_direct_map_address():
    m = tiny()
    addr = pa.__get_free_pages(m, GFP_KERNEL, 1)
    # order 1 from Normal's order-3 block at pfn 24 (see test_expand_hands_back_upper_halves)
    assert addr == 0xC0000000 + 24 * 4096
    pa.free_pages(m, addr, 1)
    pa.free_pages(m, 0, 3)            # NULL is ignored, as in the kernel
    assert not any(check_all(m).values())


def test_reference_counting():
    m = tiny()
    page = pa.alloc_pages(m, GFP_KERNEL, 1)
    pa.get_page(m, page)
    pa.__free_pages(m, page, 1)
    assert page.pfn in m.page_owner     # still referenced once
    pa.__free_pages(m, page, 1)
    assert page.pfn not in m.page_owner




def test_double_free():
    m = tiny()
    page = pa.alloc_pages(m, GFP_KERNEL, 2)
    pa.__free_pages(m, page, 2)
    bug = misuse(m, "double_free", free_pages_page, page, 2)
    assert bug.pfn == page.pfn and f"{page.pfn:#x}" in str(bug)


def test_wrong_order():
    m = tiny()
    page = pa.alloc_pages(m, GFP_KERNEL, 2)
    misuse(m, "wrong_order", free_pages_page, page, 1)


def test_misaligned_free():
    m = tiny()
    page = pa.alloc_pages(m, GFP_KERNEL, 0)      # pfn 8
    misuse(m, "misaligned_free", free_pages_page, m.mem_map + (page.pfn + 1), 1)


def test_free_reserved_frame():
    m = boot(phys_pages=64, highmem_pages=0, page_policy="buddy")
    misuse(m, "free_reserved", free_pages_page, m.mem_map + 0, 0)       # pfn 0, the BIOS page
    misuse(m, "free_reserved", free_pages_page, m.mem_map + 1, 0)       # mem_map itself


def test_free_never_allocated_frame():
    m = tiny()
    misuse(m, "double_free", free_pages_page, m.mem_map + 20, 0)        # inside a free block


def test_free_tail_of_allocated_block():
    m = tiny()
    page = pa.alloc_pages(m, GFP_KERNEL, 2)
    misuse(m, "not_block_head", free_pages_page, m.mem_map + (page.pfn + 1), 0)


def test_bad_order_and_gfp_and_pfn():
    m = tiny()
    misuse(m, "bad_order", pa.alloc_pages, GFP_KERNEL, -1)
    misuse(m, "bad_gfp", pa.alloc_pages, 1 << 20, 0)
    page = pa.alloc_pages(m, GFP_KERNEL, 0)
    misuse(m, "bad_order", free_pages_page, page, 11)
    misuse(m, "bad_pfn", free_pages_page, m.mem_map + 10_000, 0)
    misuse(m, "foreign_page", free_pages_page, tiny().mem_map + page.pfn, 0)
    misuse(m, "bad_address", pa.free_pages, 0x1234, 0)
    misuse(m, "highmem_get_free_pages", pa.get_zeroed_page, GFP_HIGHUSER)


def test_get_free_pages_of_highmem_returns_0_and_keeps_the_block():
    """2.6.12 __get_free_pages: no BUG_ON, page_address() of an unmapped highmem page
    is NULL, so the caller gets 0 and the frame stays allocated."""
    m = tiny()
    assert pa.__get_free_pages(m, GFP_HIGHUSER, 0) == 0
    highmem = m.zones[2]
    assert highmem.free_pages == 15 and len(m.page_owner) == 1


def test_page_address_of_allocated_lowmem():
    m = tiny()
    page = pa.alloc_pages(m, GFP_KERNEL, 0)
    assert page_address(m, page) == 0xC0000000 + page.pfn * 4096


def test_free_of_a_slab_page_through_the_page_allocator():
    from kmemspec.model.kmalloc import kmalloc
    from kmemspec.model.addr import virt_to_page
    m = boot(phys_pages=256, highmem_pages=0, page_policy="buddy")
    addr = kmalloc(m, 100, GFP_KERNEL)
    page = virt_to_page(m, addr)
    # 2.6.12 free_pages_check: PG_slab set -> bad_page()
    misuse(m, "free_slab_page", free_pages_page, page, 0)
