"""__alloc_pages as 2.6.12 writes it: the pages_low pass, the pages_min pass (lowered
for __GFP_HIGH and for callers that cannot sleep), the PF_MEMALLOC pass, and NULL with
a named reason where the kernel would reclaim (the model has no reclaim).

Expected counts are computed by hand from mm/page_alloc.c (2.6.12) formulas in the
comments, never read back from the model.
"""

import json

import pytest
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.model import page_alloc as pa
from kmemspec.model.boot import boot
from kmemspec.model.gfp import GFP_ATOMIC, GFP_KERNEL, __GFP_DMA

# phys_pages 64, max_dma_pfn 16: DMA [0, 16) with page 0 reserved and mem_map (64 * 32
# bytes = 1 frame) at pfn 1 -> 14 free; Normal [16, 64) -> 48 free.
# min_free_kbytes: int_sqrt(64 * 4 * 16) = 64 -> clamped to 128 KiB = 32 pages;
# DMA min 32*16/64 = 8, low 10; Normal min 32*48/64 = 24, low 30.
# lowmem_reserve: DMA[Normal] = 48/256 = 0.  batch: 16/1024 -> 1, 48/1024 -> 1, so
# the hot lists have low 2, high 6.
# Boot (2.6.12 mm/bootmem.c free_all_bootmem_core, mm/page_alloc.c free_hot_cold_page):
# word 0 (pfns 0..31) holds reserved frames, so 2..31 go one by one to CPU 0's hot
# lists; word 1 (32..63) is whole, but the test knob puts ZONE_NORMAL's start at 16,
# so its order-5 block is not aligned inside the zone and the model frees it one by
# one too (spec/buddy.md section 2). Each list drains 1 frame from its tail whenever
# it is at 6: DMA hot list 15..10, buddy 2..9 (free_pages 8); Normal hot list 63..58,
# buddy 16..57 (free_pages 42). zone_watermark_ok looks at free_pages only, which does
# not count the listed frames.
def tiny():
    return boot(phys_pages=64, highmem_pages=0, max_dma_pfn=16)


def drain(m, gfp, limit=100):
    got = []
    while len(got) < limit:
        page = pa.alloc_pages(m, gfp, 0)
        if page is None:
            break
        got.append(page.pfn)
    return got


def test_gfp_kernel_stops_at_pages_min_then_would_reclaim():
    m = tiny()
    # pass 1 (pages_low): Normal's hot list gives 63, 62, 61, 60 without a refill
    # (count 6..3 > low 2); from then on each request refills 1 frame from the buddy
    # lists (count 2 <= low) and takes the head: free_pages 42 -> 30 (12 more), where
    # 30 > 30 fails. DMA: 8 > 10 fails. Pass 2 (pages_min, no __GFP_HIGH, can sleep):
    # Normal 30 -> 24 (6); DMA 8 > 8 fails. 4 + 12 + 6 = 22 frames, all from Normal.
    got = drain(m, GFP_KERNEL)
    assert len(got) == 22
    assert got[:4] == [63, 62, 61, 60]
    assert [z.free_pages for z in m.zones[:2]] == [8, 24]
    assert m.alloc_failure == "would_reclaim"
    assert all(p >= 16 for p in got)
    # the DMA hot list is still full and Normal's is back at low
    assert [z.pageset[0].pcp[0].count for z in m.zones[:2]] == [6, 2]


def test_gfp_atomic_dips_deeper_then_returns_null():
    m = tiny()
    drain(m, GFP_KERNEL)
    # GFP_ATOMIC = __GFP_HIGH, no __GFP_WAIT (can_try_harder): Normal 24 - 12 = 12,
    # 12 - 3 = 9; DMA 8 - 4 = 4, 4 - 1 = 3. Normal (list at low 2, one refill per
    # request) 24 -> 9: 15 frames; DMA: its full hot list gives 15, 14, 13, 12 with no
    # refill, then one refill per request 8 -> 3: 4 + 5 = 9 frames. 24 in all.
    got = drain(m, GFP_ATOMIC)
    assert len(got) == 24
    assert got[15:19] == [15, 14, 13, 12]
    assert [z.free_pages for z in m.zones[:2]] == [3, 9]
    assert m.alloc_failure == "nopage_atomic"


def test_pf_memalloc_ignores_the_watermarks():
    m = tiny()
    drain(m, GFP_KERNEL)
    drain(m, GFP_ATOMIC)
    m.current_flags = pa.PF_MEMALLOC
    got = drain(m, GFP_KERNEL)
    # everything: Normal's 9 buddy frames through refills, then the 2 left on its hot
    # list; DMA's 3 buddy frames, then its 2 listed frames: 11 + 5
    assert len(got) == 16
    assert [z.free_pages for z in m.zones[:2]] == [0, 0]
    assert m.alloc_failure == "nopage_memalloc"


def test_lowmem_reserve_keeps_dma_for_dma_callers():
    """phys_pages 2048, max_dma_pfn 1024: DMA and Normal 1024 present frames each.
    min_free_kbytes = int_sqrt(2048 * 4 * 16) = 362 -> 90 pages; each zone min
    90 * 1024 / 2048 = 45, low 56; DMA lowmem_reserve[Normal] = 1024 / 256 = 4.
    GFP_KERNEL (class Normal): pass 1 Normal -> 56, DMA -> 56 + 4 = 60; pass 2
    Normal -> 45, DMA -> 45 + 4 = 49. A __GFP_DMA caller (class DMA, reserve 0) then
    still gets DMA from 49 down to 45."""
    m = boot(phys_pages=2048, highmem_pages=0, max_dma_pfn=1024)
    dma, normal = m.zones[0], m.zones[1]
    assert dma.lowmem_reserve == [0, 4, 4]     # HighMem empty: (0 + 1024) / 256 too
    drain(m, GFP_KERNEL, limit=5000)
    assert (dma.free_pages, normal.free_pages) == (49, 45)
    assert len(drain(m, GFP_KERNEL | __GFP_DMA)) == 4
    assert dma.free_pages == 45


def test_order_too_large_is_named():
    m = tiny()
    assert pa.alloc_pages(m, GFP_KERNEL, 11) is None
    assert m.alloc_failure == "order_too_large"


def test_buddy_policy_has_no_watermarks():
    m = boot(phys_pages=64, highmem_pages=0, max_dma_pfn=16, page_policy="buddy")
    assert len(drain(m, GFP_KERNEL)) == 62   # every free frame: 48 + 14
    assert m.alloc_failure == "no_free_block"
    assert m.pcp_pages == {} and all(p.count == 0 for z in m.zones for s in z.pageset
                                     for p in s.pcp)


def test_dma_zonelist_classzone():
    """__GFP_DMA: zonelist [DMA], classzone DMA: pass 1 stops at 10, pass 2 at 8.
    After boot DMA's free_pages is 8 (its other 6 free frames wait on the hot list,
    which zone_watermark_ok does not count): both passes fail before the list is
    looked at, so nothing is handed out."""
    m = tiny()
    assert len(drain(m, GFP_KERNEL | __GFP_DMA)) == 0
    assert m.alloc_failure == "would_reclaim"
    # drained to the buddy lists (drain_local_pages), the 6 frames count: 14 -> 8
    pa.drain_local_pages(m)
    assert len(drain(m, GFP_KERNEL | __GFP_DMA)) == 6


def test_scenario_shows_why_null_and_set_current_flags(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = ['{"op": "boot", "phys_pages": 64, "highmem_pages": 0, "max_dma_pfn": 16}']
    lines += ['{"op": "alloc_page", "gfp": "GFP_KERNEL"}'] * 31
    lines += ['{"op": "set_current_flags", "flags": "PF_MEMALLOC"}',
              '{"op": "alloc_page", "gfp": "GFP_KERNEL"}',
              '{"op": "set_current_flags", "flags": 0}']
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["run", str(path), "--json"])
    assert result.exit_code == 0, result.output
    steps = json.loads(result.output)["results"]
    # 22 GFP_KERNEL frames, then NULL (test_gfp_kernel_stops_at_pages_min...)
    assert steps[21]["ret"] is not None and "why" not in steps[21]
    assert steps[22]["ret"] is None and steps[22]["why"] == "would_reclaim"
    assert steps[32]["ret"] is not None                      # PF_MEMALLOC pass
    text = CliRunner().invoke(main, ["run", str(path)]).output
    assert "-> NULL (would_reclaim)" in text


def test_bad_task_flags_exit_2(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"op": "boot"}\n{"op": "set_current_flags", "flags": "PF_EXITING"}\n')
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and "PF_EXITING" in result.output


def test_bad_page_policy_is_a_config_error(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"op": "boot", "page_policy": "textbook"}\n')
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and "page_policy" in result.output
