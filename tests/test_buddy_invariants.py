"""Each buddy invariant holds on real states and fails on a deliberately broken one.

Pattern of the kernel's slub_kunit.c: corrupt one thing, expect exactly that check
to complain (and name the pfn).
"""

from kmemspec.model import boot
from kmemspec.model import page_alloc as pa
from kmemspec.model.gfp import GFP_HIGHUSER, GFP_KERNEL
from kmemspec.model.mem_map import PG_buddy, PG_reserved
from kmemspec.spec import check, check_all, invariant_names

BUDDY = ["no_overlap", "buddy_alignment", "merge_completeness", "conservation", "page_state"]


def machine():
    m = boot(phys_pages=64, highmem_pages=32, reserved=((0, 1),), max_dma_pfn=16)
    a = pa.alloc_pages(m, GFP_KERNEL, 2)
    b = pa.alloc_pages(m, GFP_HIGHUSER, 0)
    return m, a, b


def test_catalogue_has_the_buddy_invariants():
    assert set(BUDDY) <= set(invariant_names())


def test_all_hold_on_a_real_state():
    m, _, _ = machine()
    assert {n: v for n, v in check_all(m).items() if v} == {}


def broken(name, m):
    found = check(m, name)
    assert found, f"{name} did not notice the corruption"
    return " ".join(found)


def test_no_overlap_fails_when_a_free_block_covers_an_allocated_one():
    m, a, _ = machine()
    # claim the allocated block's frames are also a free order-2 block
    zone = m.zone_of(a.pfn)
    pa.list_add(m.mem_map, zone.free_area[2], a.pfn)
    assert f"{a.pfn:#x}" in broken("no_overlap", m)


def test_buddy_alignment_fails_on_a_misaligned_free_block():
    m, _, _ = machine()
    zone = m.zones[1]                       # Normal [16, 64)
    head = zone.free_area[5].head           # the order-5 block at pfn 16
    assert head == 16
    pa.list_del(m.mem_map, zone.free_area[5], head)
    pa.list_add(m.mem_map, zone.free_area[5], head + 2)
    assert "not aligned" in broken("buddy_alignment", m)


def test_buddy_alignment_fails_on_a_block_leaving_its_zone():
    m, a, _ = machine()
    m.page_owner[a.pfn] = 7                 # 128 frames from pfn a: past Normal's end
    assert "leaves zone" in broken("buddy_alignment", m)


def test_merge_completeness_fails_on_two_free_unmerged_buddies():
    m = boot(phys_pages=128, highmem_pages=0, reserved=(), max_dma_pfn=128)
    zone = m.zones[0]
    # mem_map takes pfn 0; the order-6 block at 64 is split by hand into two free
    # order-5 buddies, 64 and 96, that nobody merged
    assert zone.free_area[6].head == 64
    pa.list_del(m.mem_map, zone.free_area[6], 64)
    zone.free_area[6].nr_free -= 1
    for pfn in (64, 96):
        pa.set_page_order(m.mem_map, pfn, 5)
        pa.list_add(m.mem_map, zone.free_area[5], pfn)
        zone.free_area[5].nr_free += 1
    assert "should have merged" in broken("merge_completeness", m)
    assert check(m, "no_overlap") == [] and check(m, "conservation") == []


def test_conservation_fails_on_a_wrong_nr_free():
    m, _, _ = machine()
    m.zones[1].free_area[3].nr_free += 1
    assert "nr_free" in broken("conservation", m)


def test_conservation_fails_on_a_wrong_free_pages():
    m, _, _ = machine()
    m.zones[2].free_pages -= 1
    assert "free_pages" in broken("conservation", m)


def test_conservation_fails_on_a_leaked_frame():
    m, _, b = machine()
    del m.page_owner[b.pfn]                 # allocated, but nobody knows any more
    assert "do not add up" in broken("conservation", m)


def test_page_state_fails_on_a_referenced_free_frame():
    m, _, _ = machine()
    head = m.zones[1].free_area[5].head
    m.mem_map.count[head + 3] = 1
    assert f"{head:#x}" in broken("page_state", m)


def test_page_state_fails_on_a_stray_buddy_mark():
    m, a, _ = machine()
    m.mem_map.flags[a.pfn + 1] |= PG_buddy
    assert "PG_buddy" in broken("page_state", m)


def test_page_state_fails_on_a_wrong_private_order():
    m, _, _ = machine()
    head = m.zones[1].free_area[5].head
    m.mem_map.private[head] = 3
    assert "private=3" in broken("page_state", m)


def test_page_state_fails_on_a_reserved_allocated_frame():
    m, a, _ = machine()
    m.mem_map.flags[a.pfn] |= PG_reserved
    assert "reserved" in broken("page_state", m)


def test_page_state_fails_on_a_wrong_zone_id():
    m, _, _ = machine()
    m.mem_map.zone_id[40] = 0
    assert "another zone" in broken("page_state", m)
