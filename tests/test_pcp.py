"""Per-CPU hot/cold page lists (2.6.12 mm/page_alloc.c: per_cpu_pageset,
buffered_rmqueue, rmqueue_bulk, free_hot_cold_page, free_pages_bulk, __drain_pages).

Expected pfns are worked out by hand from the kernel's rules in the comments. After a
2.6.12 boot of the default machine (tests/test_boot.py: mm/bootmem.c
free_all_bootmem_core), ZONE_NORMAL's CPU 0 hot list holds 6175, 6174, ..., 6145 (31
frames, head 6175: the free frames of the bitmap word 6144..6175, freed one by one) and
its buddy lists hold 6176 (o5), 6208 (o6), 6272 (o7), 6400 (o8), 6656 (o9), then 217
order-10 blocks from 7168 (head of free_area[10]: 228352). __rmqueue takes the smallest
order that has a block, and expand hands the upper halves back, so a refill's order-0
takes walk up from 6176 in pfn order. Normal's batch is 16 (hot low 32, high 96; cold
low 0, high 32), see tests/test_zones.py.
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
    # count 31 <= low 32: rmqueue_bulk first takes 16 frames with __rmqueue(zone, 0):
    # the o5 block 6176 (expand hands back 6192 o4, 6184 o3, 6180 o2, 6178 o1, 6177
    # o0), then 6177, 6178 (6179 back to o0), 6179, ... 6191, each added at the tail;
    # the head (6175, from boot) is handed out, 46 stay
    assert page.pfn == 6175
    assert list(hot(m).list) == list(range(6174, 6144, -1)) + list(range(6176, 6192))
    assert hot(m).count == 46
    # left: o4 6192, no o0..o3 or o5, o6..o9 and 217 o10 as at boot
    assert pa.buddyinfo(m)["Normal"] == [0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 217]
    # less mem_map, the 31 boot frames on the list and the batch
    assert m.zones[1].free_pages == 225280 - 2049 - 31 - 16
    # 46 > 32: the next call takes the head without a refill
    assert pa.alloc_pages(m, GFP_KERNEL, 0).pfn == 6174
    assert hot(m).count == 45 and pa.buddyinfo(m)["Normal"][4] == 1


def test_freed_page_goes_on_the_hot_head_and_comes_back_first():
    m = boot()
    a = pa.alloc_pages(m, GFP_KERNEL, 0)               # 6175, after the refill
    pa.alloc_pages(m, GFP_KERNEL, 0)                   # 6174
    pa.__free_pages(m, a, 0)
    assert hot(m).list[0] == 6175 and hot(m).count == 46
    # not back in the buddy lists: the refill used up every order-0 block expand made
    assert pa.free_list(m.mem_map, m.zones[1].free_area[0]) == []
    assert pa.alloc_pages(m, GFP_KERNEL, 0).pfn == 6175     # LIFO: hot


def test_gfp_cold_uses_the_cold_list():
    m = boot()
    pa.alloc_pages(m, GFP_KERNEL, 0)                  # hot refill takes 6176..6191
    page = pa.alloc_pages(m, GFP_KERNEL | __GFP_COLD, 0)
    # cold count 0 <= low 0: refill 16 from the o4 block 6192: 6192..6207
    assert page.pfn == 6192 and cold(m).count == 15 and hot(m).count == 46


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
    # start from empty lists: boot left frames on CPU 0's hot lists, which this drain
    # returns too (the point here is that a drain returns everything)
    pa.drain_local_pages(m, 0)
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
    # CPU 0's list (31 boot frames <= low 32) refills 6176..6191 and hands out its
    # head 6175; CPU 1's empty list refills the next 16 from the o4 block 6192
    assert (p0.pfn, p1.pfn) == (6175, 6192)
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
    # 16 frames left the buddy lists for the hot list, which already held 31 from boot;
    # the 46 listed frames are not counted (Normal's free frames at boot: 225280 less
    # mem_map's 2049)
    normal = pa.buddyinfo(m)["Normal"]
    assert sum(n << o for o, n in enumerate(normal)) == 225280 - 2049 - 31 - 16


# --- the invariants catch broken per-CPU state ------------------------------------

def _fresh_with_pcp():
    m = boot(phys_pages=64, highmem_pages=0, max_dma_pfn=16)
    pa.__free_pages(m, pa.alloc_pages(m, GFP_KERNEL, 0), 0)
    # boot left 63..58 on Normal's hot list (tests/test_watermarks.py); 63 goes and
    # comes back
    assert hot(m).count == 6 and not any(catalogue.check_all(m).values())
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
    # any buddy block's head (after boot Normal has no order-0 block: 16..57 merged)
    buddy_head = next(a.head for a in normal.free_area if a.head >= 0)
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
    in this module's docstring): CPU 0's list holds boot's 31 frames (<= low 32), so
    its first request refills 6176..6191 at the tail (the o5 block, 6192 o4 goes back)
    and returns the head 6175; the second returns 6174 (45 left, no refill). CPU 1's
    empty list refills 6192..6207 (the o4 block) and returns 6192. Freeing 6175 puts it
    on the hot head; the next request returns it (46 > 32: no refill). The cold list's
    first refill takes 6208..6223 (splitting the o6 block: 6240 o5 .. 6209 o0 go back)
    and returns 6208."""
    run = _run_example("pcp_hot_cold.jsonl")
    assert not run.failed and not any(run.invariants.values())
    assert all(e.get("as_expected", True) for e in run.results)
    assert run.machine.pcp_pages == {}                 # both CPUs drained
    # still allocated: 6174, 6175, 6192, 6208; the rest of [6145, 7168) merges back
    # into maximal aligned blocks: o0 6145 6193 6209; o1 6146 6172 6194 6210; o2 6148
    # 6168 6196 6212; o3 6152 6160 6200 6216; o4 6176 6224; o5 6240; o7 6272; o8 6400;
    # o9 6656 (3 + 8 + 16 + 32 + 32 + 32 + 128 + 256 + 512 = 1019 = 1023 - 4 frames)
    assert pa.buddyinfo(run.machine)["Normal"] == [3, 4, 4, 4, 2, 1, 0, 1, 1, 1, 217]


def test_watermarks_example():
    """examples/scenarios/watermarks.jsonl: 22 GFP_KERNEL frames then NULL
    (would_reclaim), 24 GFP_ATOMIC then NULL, 16 more with PF_MEMALLOC then NULL --
    the counts of tests/test_watermarks.py, worked out there (boot's hot lists
    included)."""
    run = _run_example("watermarks.jsonl")
    assert not run.failed and not any(run.invariants.values())
    nulls = [(e["step"], e["why"]) for e in run.results if e.get("ret", 0) is None
             and "why" in e]
    assert nulls == [(23, "would_reclaim"), (48, "nopage_atomic"), (66, "nopage_memalloc")]
