"""The 2.6.12 page-policy campaign (kmemspec/campaign/pcp.py, run by `kmemspec verify`):
watermarks, per-CPU hot and cold lists on 1-3 CPUs, compound pages, drains and
PF_MEMALLOC, each call compared with the independent oracle in
kmemspec/campaign/alloc_oracle.py (written from 2.6.12 mm/page_alloc.c) and every
invariant checked after every step.

It must hold on the model and fail on each seeded bug (tests/pcp_bugs.py) within the
quick budget's number of examples and steps (kmemspec/verify.py PCP_CAMPAIGN)."""

from __future__ import annotations

import pytest
from campaigns import must_fail, must_pass
from pcp_bugs import BUGS

from kmemspec.model.page_alloc import drain_local_pages
from kmemspec.campaign import alloc_oracle as oracle
from kmemspec.campaign.pcp import PcpMachine
from kmemspec.model import page_alloc as pa
from kmemspec.model.boot import MachineConfig, boot
from kmemspec.model.gfp import GFP_ATOMIC, GFP_KERNEL, __GFP_COLD
from kmemspec.verify import PCP_CAMPAIGN

QUICK_EXAMPLES, QUICK_STEPS = PCP_CAMPAIGN["quick"]


def _refill_without_removing(machine, zone, pcp, cpu, gfp_mask):
    """Seeded bug: the refill copies frames onto the list but leaves them free in the
    buddy lists too (rmqueue_bulk forgotten)."""
    head = next((a.head for a in zone.free_area if a.head >= 0), -1)
    if head < 0:
        return
    pcp.list.append(head)
    pcp.count += 1
    machine.pcp_pages[head] = 2 * cpu + (1 if gfp_mask & __GFP_COLD else 0)


def _free_without_drain(machine, pfn, cold=0, cpu=0):
    """Seeded bug: free_hot_cold_page never drains at high."""
    zone = machine.zones[machine.mem_map.zone_id[pfn]]
    pcp = zone.pageset[cpu].pcp[cold]
    pcp.list.appendleft(pfn)
    pcp.count += 1
    machine.pcp_pages[pfn] = 2 * cpu + cold


ALL_BUGS = {**BUGS, "refill leaves the frames on the buddy lists":
            ("_pcp_refill", _refill_without_removing),
            "free never drains": ("free_hot_cold_page", _free_without_drain)}


def test_campaign_holds_on_the_model():
    must_pass(PcpMachine, examples=QUICK_EXAMPLES, steps=QUICK_STEPS)


@pytest.mark.parametrize("bug", sorted(ALL_BUGS))
def test_campaign_catches_a_seeded_bug_within_the_quick_budget(bug, monkeypatch):
    name, broken = ALL_BUGS[bug]
    monkeypatch.setattr(pa, name, broken)
    must_fail(PcpMachine, examples=QUICK_EXAMPLES, steps=QUICK_STEPS)


# --- the oracle itself, on hand-computed cases --------------------------------------

def test_watermark_formula_by_hand():
    # 2.6.12 zone_watermark_ok, by hand: order 0, mark 20, reserve 3: free 24 passes
    # (24 > 23), free 23 does not; __GFP_HIGH makes min 10, can_try_harder then 8
    assert oracle.watermark_ok(24, [0] * 11, 0, 20, 3, False, False)
    assert not oracle.watermark_ok(23, [0] * 11, 0, 20, 3, False, False)
    assert oracle.watermark_ok(12, [0] * 11, 0, 20, 0, True, True)       # 12 > 8
    assert not oracle.watermark_ok(8, [0] * 11, 0, 20, 0, True, True)
    # order 2 with 40 free of which 30 in order-0 blocks and 4 in order-1: free is
    # 40 - 4 + 1 = 37 > 20; minus 30 -> 7 > 10? no: fails at the order-0 step
    assert not oracle.watermark_ok(40, [30, 2] + [0] * 9, 2, 20, 0, False, False)
    assert oracle.watermark_ok(40, [4, 2] + [0] * 9, 2, 20, 0, False, False)


def _machine():
    return boot(MachineConfig(phys_pages=2000, max_dma_pfn=16, cpus=2))


def test_oracle_hot_list_head_and_refill_by_hand():
    """An empty hot list (count 0 <= low) is refilled with `batch` frames taken by
    __rmqueue (the zone's lowest free list head first) and the head is handed out."""
    machine = _machine()
    # boot leaves frames on CPU 0's hot lists (mm/bootmem.c free_all_bootmem_core);
    # this test is about a refill from an empty list: drain them first
    drain_local_pages(machine, 0)
    normal = machine.zones[1]
    shadow = oracle.Shadow(machine)
    pcp = normal.pageset[0].pcp[0]
    # zone_batchsize: 1984 frames // 1024 // 4 is 0, raised to at least 1
    assert pcp.batch == 1 and not pcp.list
    first = next(a.head for a in normal.free_area if a.head >= 0)
    pfn, reason, which = oracle.alloc_pages(shadow, machine, GFP_KERNEL, 0, 0)
    assert (pfn, reason, which) == (first, None, 1)
    assert shadow.zones[1].pcp[0, 0] == [] and shadow.zones[1].free_pages == \
        normal.free_pages - 1


def test_oracle_free_at_high_drains_batch_from_the_tail():
    machine = _machine()
    shadow = oracle.Shadow(machine)
    zone = shadow.zones[1]
    high = machine.zones[1].pageset[0].pcp[0].high
    zone.pcp[0, 0] = list(range(200, 200 + high))       # a full hot list (by hand)
    before = zone.free_pages
    oracle.free_pages(shadow, machine, 250, 0, 0)
    assert zone.pcp[0, 0] == [250] + list(range(200, 200 + high - 1))   # tail went
    assert zone.free_pages == before + 1


def test_oracle_atomic_null_below_lowered_min():
    """Every zone at or below its lowered pages_min: NULL, nopage_atomic."""
    machine = _machine()
    shadow = oracle.Shadow(machine)
    for copy in shadow.zones.values():
        copy.free_pages = 0
    assert oracle.alloc_pages(shadow, machine, GFP_ATOMIC, 0, 1)[:2] == \
        (None, "nopage_atomic")
    machine.current_flags = oracle.PF_MEMALLOC
    pfn, reason, which = oracle.alloc_pages(shadow, machine, GFP_KERNEL, 0, 1)
    assert which == 3 and pfn is not None


def _failing_lines(monkeypatch, bug: str) -> list[str]:
    """The scenario lines a failure of the campaign reports (its notes)."""
    from hypothesis import Phase, settings
    from hypothesis.stateful import run_state_machine_as_test
    name, broken = ALL_BUGS[bug]
    monkeypatch.setattr(pa, name, broken)
    with pytest.raises(Exception) as caught:
        run_state_machine_as_test(PcpMachine, settings=settings(
            max_examples=QUICK_EXAMPLES, stateful_step_count=QUICK_STEPS, deadline=None,
            database=None, derandomize=True, phases=[Phase.explicit, Phase.generate]))
    return [n for n in getattr(caught.value, "__notes__", []) if n.startswith("{")]


def test_a_failure_replays_with_kmemspec_run(monkeypatch, tmp_path):
    """The reported lines (boot with cpus/min_free_kbytes/page_policy, calls with "cpu",
    gfp flags and the oracle's expected return) form a scenario: on the broken model
    `kmemspec run` fails it, on the real model every expectation holds."""
    import json

    from click.testing import CliRunner

    from kmemspec.cli import main
    lines = _failing_lines(monkeypatch, "alloc takes the list's tail")
    boot_line = json.loads(lines[0])
    assert boot_line["op"] == "boot" and boot_line["page_policy"] == "2.6.12"
    assert all("cpu" in json.loads(x) for x in lines[1:] if "alloc" in x)
    path = tmp_path / "failure.jsonl"
    path.write_text("\n".join(lines) + "\n")
    broken = CliRunner().invoke(main, ["run", str(path)])
    assert broken.exit_code == 1, broken.output
    monkeypatch.undo()
    fixed = CliRunner().invoke(main, ["run", "--json", str(path)])
    assert fixed.exit_code == 0, fixed.output
    steps = json.loads(fixed.output)["results"]
    assert [s for s in steps if "expect" in s] and all(
        s["as_expected"] for s in steps if "expect" in s)


def test_oracle_list_above_low_hands_out_the_last_freed_frame_by_hand():
    """free_hot_cold_page puts a frame at the head (list_add) and buffered_rmqueue takes
    the head without touching the buddy lists when count > low: after freeing five
    frames on CPU 0 the next order-0 allocation there is the last one freed."""
    machine = _machine()
    pages = [pa.alloc_pages(machine, GFP_KERNEL, 0, 0) for _ in range(5)]
    for page in pages:
        getattr(pa, "__free_pages")(machine, page, 0, 0)
    shadow = oracle.Shadow(machine)
    lists_before = [list(x) for x in shadow.zones[1].lists]
    pfn, _, _ = oracle.alloc_pages(shadow, machine, GFP_KERNEL, 0, 0)
    assert pfn == pages[-1].pfn
    assert shadow.zones[1].lists == lists_before


def test_oracle_refill_takes_batch_frames_with_batch_two():
    """A Normal zone of 8984 frames: batch = 8984 // 1024 // 4 = 2 (zone_batchsize);
    an empty hot list gets 2 frames from __rmqueue, the first is handed out."""
    machine = boot(MachineConfig(phys_pages=9000, max_dma_pfn=16, cpus=1))
    assert machine.zones[1].pageset[0].pcp[0].batch == 2
    drain_local_pages(machine, 0)      # boot's hot-list frames: start from an empty list
    shadow = oracle.Shadow(machine)
    before = shadow.zones[1].free_pages
    pfn, _, _ = oracle.alloc_pages(shadow, machine, GFP_KERNEL, 0, 0)
    assert shadow.zones[1].free_pages == before - 2
    assert len(shadow.zones[1].pcp[0, 0]) == 1 and shadow.zones[1].pcp[0, 0][0] != pfn
