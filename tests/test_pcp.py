"""Per-CPU hot/cold page lists (2.6.12 mm/page_alloc.c: per_cpu_pageset,
buffered_rmqueue, rmqueue_bulk, free_hot_cold_page, free_pages_bulk, __drain_pages).

Expected pfns are worked out by hand from the kernel's rules in the comments: the
default machine's ZONE_NORMAL is 220 order-10 blocks with pfn 228352 at the head of
free_area[10] (the model's boot order, spec/buddy.md); Normal's batch is 16 (hot low 32,
high 96; cold low 0, high 32), see tests/test_zones.py.
"""

import pytest

from kmemspec.model import page_alloc as pa
from kmemspec.model.boot import boot
from kmemspec.model.errors import KernelBug
from kmemspec.model.gfp import GFP_KERNEL, __GFP_COLD
from kmemspec.spec import buddy as inv
from kmemspec.spec import catalogue


def hot(m, zone=1, cpu=0):
    return m.zones[zone].pageset[cpu].pcp[0]


def cold(m, zone=1, cpu=0):
    return m.zones[zone].pageset[cpu].pcp[1]


def test_first_order0_allocation_refills_the_hot_list():
    m = boot()
    page = pa.alloc_pages(m, GFP_KERNEL, 0)
    # count 0 <= low 32: rmqueue_bulk takes 16 frames, 228352..228367, from the head
    # order-10 block (expand hands back 228368 o4, 228384 o5, ... 228864 o9) and adds
    # them at the tail; the head (228352) is handed out, 15 stay
    assert page.pfn == 228352
    assert list(hot(m).list) == list(range(228353, 228368)) and hot(m).count == 15
    assert pa.buddyinfo(m)["Normal"] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 219]
    assert m.zones[1].free_pages == 225280 - 16
    # 15 <= 32: the next call refills again, from the order-4 block at 228368
    assert pa.alloc_pages(m, GFP_KERNEL, 0).pfn == 228353
    assert hot(m).count == 30 and list(hot(m).list)[-16:] == list(range(228368, 228384))


def test_freed_page_goes_on_the_hot_head_and_comes_back_first():
    m = boot()
    a = pa.alloc_pages(m, GFP_KERNEL, 0)
    pa.alloc_pages(m, GFP_KERNEL, 0)
    pa.__free_pages(m, a, 0)
    assert hot(m).list[0] == 228352 and hot(m).count == 31
    assert pa.buddyinfo(m)["Normal"][0] == 0          # not back in the buddy lists
    assert pa.alloc_pages(m, GFP_KERNEL, 0).pfn == 228352   # LIFO: hot


def test_gfp_cold_uses_the_cold_list():
    m = boot()
    pa.alloc_pages(m, GFP_KERNEL, 0)                  # hot takes 228352..228367
    page = pa.alloc_pages(m, GFP_KERNEL | __GFP_COLD, 0)
    # cold count 0 <= low 0: refill 16 from the order-4 block at 228368
    assert page.pfn == 228368 and cold(m).count == 15 and hot(m).count == 15


def test_a_free_at_high_drains_a_batch_from_the_tail():
    m = boot(highmem_pages=0, phys_pages=8192)         # Normal 4096 frames: batch 1
    # Normal present 4096: batch 4096/1024 = 4 -> /4 = 1: hot low 2, high 6
    assert (hot(m).low, hot(m).high, hot(m).batch) == (2, 6, 1)
    pages = [pa.alloc_pages(m, GFP_KERNEL, 0) for _ in range(7)]
    for p in pages[:6]:
        pa.__free_pages(m, p, 0)
    assert hot(m).count == 6                          # at high
    tail = hot(m).list[-1]
    pa.__free_pages(m, pages[6], 0)
    # count 6 >= high 6: free_pages_bulk(batch 1) from the tail, then list_add
    assert hot(m).count == 6 and tail not in hot(m).list
    assert hot(m).list[0] == pages[6].pfn


def test_drain_local_pages_and_cpu_down_drain_return_everything():
    m = boot(cpus=2)
    boot_info = pa.buddyinfo(m)
    a = [pa.alloc_pages(m, GFP_KERNEL, 0, cpu=0) for _ in range(40)]
    b = [pa.alloc_pages(m, GFP_KERNEL, 0, cpu=1) for _ in range(40)]
    for p in a + b:
        pa.__free_pages(m, p, 0, cpu=0 if p in a else 1)
    assert hot(m, cpu=0).count and hot(m, cpu=1).count
    pa.drain_local_pages(m, 0)
    assert hot(m, cpu=0).count == 0 and hot(m, cpu=1).count
    getattr(pa, "__drain_pages")(m, 1)                 # CPU_DEAD notifier
    assert pa.buddyinfo(m) == boot_info and m.pcp_pages == {}
    assert not any(catalogue.check_all(m).values())


def test_each_cpu_has_its_own_lists():
    m = boot(cpus=2)
    p0 = pa.alloc_pages(m, GFP_KERNEL, 0, cpu=0)
    p1 = pa.alloc_pages(m, GFP_KERNEL, 0, cpu=1)
    # CPU 0's refill took 228352..228367; CPU 1's refill the next 16 from 228368
    assert (p0.pfn, p1.pfn) == (228352, 228368)
    with pytest.raises(ValueError, match="cpu 2"):
        pa.drain_local_pages(m, 2)


def test_freeing_a_frame_on_a_per_cpu_list_is_a_double_free():
    m = boot()
    page = pa.alloc_pages(m, GFP_KERNEL, 0)
    pa.__free_pages(m, page, 0)
    before = (list(hot(m).list), hot(m).count, bytes(m.mem_map.flags))
    with pytest.raises(KernelBug) as exc:
        pa.__free_pages(m, page, 0)
    assert exc.value.rule == "double_free" and "hot list" in str(exc.value)
    assert (list(hot(m).list), hot(m).count, bytes(m.mem_map.flags)) == before


def test_buddyinfo_leaves_out_per_cpu_frames():
    m = boot()
    pa.alloc_pages(m, GFP_KERNEL, 0)
    # 16 frames left the buddy lists; 15 wait on the hot list and are not counted
    normal = pa.buddyinfo(m)["Normal"]
    assert sum(n << o for o, n in enumerate(normal)) == 225280 - 16


# --- the invariants catch broken per-CPU state ------------------------------------

def _fresh_with_pcp():
    m = boot(phys_pages=64, highmem_pages=0, max_dma_pfn=16)
    pa.__free_pages(m, pa.alloc_pages(m, GFP_KERNEL, 0), 0)
    assert hot(m).count == 1 and not any(catalogue.check_all(m).values())
    return m


def test_pcp_lists_catches_a_wrong_count():
    m = _fresh_with_pcp()
    hot(m).count += 1
    assert inv.inv_pcp_lists(m)


def test_pcp_lists_catches_count_above_high():
    m = _fresh_with_pcp()
    h = hot(m)
    h.high = 0
    assert any("above high" in v for v in inv.inv_pcp_lists(m))


def test_no_overlap_catches_a_pcp_frame_also_on_a_buddy_list():
    m = _fresh_with_pcp()
    normal = m.zones[1]
    buddy_head = next(pfn for pfn in pa.free_list(m.mem_map, normal.free_area[0]))
    hot(m).list.append(buddy_head)
    hot(m).count += 1
    m.pcp_pages[buddy_head] = 0
    assert inv.inv_no_overlap(m)
    assert inv.inv_pcp_lists(m)                        # PG_buddy set on a pcp frame


def test_pcp_lists_catches_a_frame_on_two_lists():
    m = _fresh_with_pcp()
    pfn = hot(m).list[0]
    cold(m).list.append(pfn)
    cold(m).count += 1
    assert any("and on" in v for v in inv.inv_pcp_lists(m))


def test_conservation_counts_pcp_frames():
    m = _fresh_with_pcp()
    hot(m).list.clear()
    hot(m).count = 0
    m.pcp_pages.clear()                                # a frame vanished
    assert inv.inv_conservation(m)


# --- the example scenarios ---------------------------------------------------------

def _run_example(name):
    import os
    from kmemspec.scenario import parse_file, run_scenario
    here = os.path.dirname(__file__)
    return run_scenario(parse_file(os.path.join(here, "..", "examples", "scenarios", name)))


def test_pcp_hot_cold_example():
    """examples/scenarios/pcp_hot_cold.jsonl, its expectations by hand: CPU 0's first
    refill takes 228352..228367 (the head order-10 block, ascending), its second (count
    15 <= low 32) the order-4 block 228368..228383; CPU 1's first refill the order-5
    block's lower half 228384..228399 (228400 o4 stays). Freeing 228352 puts it on the
    hot head (count 31); the next alloc refills first (31 <= 32: 228400..228415 at the
    tail) and returns 228352. The cold list's first refill then starts at the order-6
    block 228416."""
    run = _run_example("pcp_hot_cold.jsonl")
    assert not run.failed and not any(run.invariants.values())
    assert all(e.get("as_expected", True) for e in run.results)
    assert run.machine.pcp_pages == {}                 # both CPUs drained
    # still allocated: 228352, 228353, 228384, 228416; the rest of the block at 228352
    # merges back: o0 228385 228417; o1 228354 228386 228418; o2 228356 228388 228420;
    # o3 228360 228392 228424; o4 228368 228400 228432; o5 228448; o7 228480;
    # o8 228608; o9 228864
    assert pa.buddyinfo(run.machine)["Normal"] == [2, 3, 3, 3, 3, 1, 0, 1, 1, 1, 219]


def test_watermarks_example():
    """examples/scenarios/watermarks.jsonl: 30 GFP_KERNEL frames then NULL
    (would_reclaim), 20 GFP_ATOMIC then NULL, 12 more with PF_MEMALLOC then NULL --
    the counts of tests/test_watermarks.py, worked out there."""
    run = _run_example("watermarks.jsonl")
    assert not run.failed and not any(run.invariants.values())
    nulls = [(e["step"], e["why"]) for e in run.results if e.get("ret", 0) is None
             and "why" in e]
    assert nulls == [(31, "would_reclaim"), (52, "nopage_atomic"), (66, "nopage_memalloc")]
