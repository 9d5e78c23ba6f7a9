"""Per-CPU hot/cold page lists (2.6.12 mm/page_alloc.c: per_cpu_pageset,
buffered_rmqueue, rmqueue_bulk, free_hot_cold_page, free_pages_bulk, __drain_pages).

Expected pfns are worked out by hand from the kernel's rules in the comments: after boot
the default machine's ZONE_NORMAL holds one free block of each order 0..9 right after
mem_map (pfns 4096..6144, tests/test_boot.py): o0 6145, o1 6146, o2 6148, o3 6152,
o4 6160, o5 6176, o6 6208, o7 6272, o8 6400, o9 6656, then 217 order-10 blocks from 7168
(head of free_area[10]: 228352, the model's boot order, spec/buddy.md). __rmqueue takes
the smallest order that has a block, and expand hands the upper halves back, so
successive order-0 takes walk up from 6145 in pfn order. Normal's batch is 16 (hot low
32, high 96; cold low 0, high 32), see tests/test_zones.py.
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
    # count 0 <= low 32: rmqueue_bulk takes 16 frames with __rmqueue(zone, 0): 6145 (o0),
    # 6146 (o1, 6147 back to o0), 6147, 6148 (o2), ... 6159, then 6160 (the o4 block:
    # expand hands back 6168 o3, 6164 o2, 6162 o1, 6161 o0), adding each at the tail;
    # the head (6145) is handed out, 15 stay
    assert page.pfn == 6145
    assert list(hot(m).list) == list(range(6146, 6161)) and hot(m).count == 15
    # left: o0 6161, o1 6162, o2 6164, o3 6168, none of o4, o5..o9 and 217 o10 as at boot
    assert pa.buddyinfo(m)["Normal"] == [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 217]
    assert m.zones[1].free_pages == 225280 - 2049 - 16       # less mem_map and the batch
    # 15 <= 32: the next call refills again: 6161..6175, then 6176 from the o5 block
    assert pa.alloc_pages(m, GFP_KERNEL, 0).pfn == 6146
    assert hot(m).count == 30 and list(hot(m).list)[-16:] == list(range(6161, 6177))


def test_freed_page_goes_on_the_hot_head_and_comes_back_first():
    m = boot()
    a = pa.alloc_pages(m, GFP_KERNEL, 0)
    pa.alloc_pages(m, GFP_KERNEL, 0)
    pa.__free_pages(m, a, 0)
    assert hot(m).list[0] == 6145 and hot(m).count == 31
    # not back in the buddy lists: free_area[0] holds only 6177 (expand's from 6176)
    assert pa.free_list(m.mem_map, m.zones[1].free_area[0]) == [6177]
    assert pa.alloc_pages(m, GFP_KERNEL, 0).pfn == 6145     # LIFO: hot


def test_gfp_cold_uses_the_cold_list():
    m = boot()
    pa.alloc_pages(m, GFP_KERNEL, 0)                  # hot takes 6145..6160
    page = pa.alloc_pages(m, GFP_KERNEL | __GFP_COLD, 0)
    # cold count 0 <= low 0: refill 16, 6161..6176, on the cold list
    assert page.pfn == 6161 and cold(m).count == 15 and hot(m).count == 15


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
    # CPU 0's refill took 6145..6160; CPU 1's refill the next 16 from 6161
    assert (p0.pfn, p1.pfn) == (6145, 6161)
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
    # (Normal's free frames at boot: 225280 less mem_map's 2049)
    normal = pa.buddyinfo(m)["Normal"]
    assert sum(n << o for o, n in enumerate(normal)) == 225280 - 2049 - 16


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
    """examples/scenarios/pcp_hot_cold.jsonl, its expectations by hand (the boot layout
    in this module's docstring): CPU 0's first refill takes 6145..6160 (ascending, the
    smallest blocks first), its second (count 15 <= low 32) 6161..6176 (6176 splits the
    o5 block: 6177 o0 .. 6192 o4 go back); CPU 1's first refill 6177..6192 (6192 splits
    the o4 block: 6193 o0 .. 6200 o3). Freeing 6145 puts it on the hot head (count 31);
    the next alloc refills first (31 <= 32: 6193..6208 at the tail, 6208 splitting the o6
    block) and returns 6145. The cold list's first refill then takes 6209..6224 and
    returns 6209."""
    run = _run_example("pcp_hot_cold.jsonl")
    assert not run.failed and not any(run.invariants.values())
    assert all(e.get("as_expected", True) for e in run.results)
    assert run.machine.pcp_pages == {}                 # both CPUs drained
    # still allocated: 6145, 6146, 6177, 6209; the rest of [6145, 7168) merges back into
    # maximal aligned blocks: o0 6147 6176 6208; o1 6178 6210; o2 6148 6180 6212;
    # o3 6152 6184 6216; o4 6160 6192 6224; o5 6240; o7 6272; o8 6400; o9 6656
    # (3 + 4 + 12 + 24 + 48 + 32 + 128 + 256 + 512 = 1019 = 1023 - 4 frames)
    assert pa.buddyinfo(run.machine)["Normal"] == [3, 2, 3, 3, 3, 1, 0, 1, 1, 1, 217]


def test_watermarks_example():
    """examples/scenarios/watermarks.jsonl: 30 GFP_KERNEL frames then NULL
    (would_reclaim), 20 GFP_ATOMIC then NULL, 12 more with PF_MEMALLOC then NULL --
    the counts of tests/test_watermarks.py, worked out there."""
    run = _run_example("watermarks.jsonl")
    assert not run.failed and not any(run.invariants.values())
    nulls = [(e["step"], e["why"]) for e in run.results if e.get("ret", 0) is None
             and "why" in e]
    assert nulls == [(31, "would_reclaim"), (52, "nopage_atomic"), (66, "nopage_memalloc")]
