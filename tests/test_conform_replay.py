"""`kmemspec conform TARGET --replay SCENARIO` (issue 18): a written counterexample runs
against the implementation again, both answers side by side.

The seeded bug (frees never merge) must show at the free of the only block on a
2-frame machine: 2 free frames that are buddies merge into one order-1 block
(mm/page_alloc.c of 2.6.12, __free_pages_bulk), so the counts must read [0, 1, ...].
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.conform.adapter import flat_boot_line

POW2 = Path(__file__).resolve().parent.parent / "examples" / "conform" / "pow2_buddy.py"


def _conform(*args):
    return CliRunner().invoke(main, ["conform", *args])


def test_written_counterexample_replays_against_the_target(tmp_path):
    out = tmp_path / "out"
    found = _conform(f"{POW2}:with_no_merge_bug", "--max-order", "6", "--examples", "20",
                     "--out", str(out))
    assert found.exit_code == 1, found.output
    [scenario] = out.glob("*.jsonl")
    assert scenario.name.startswith("pow2_buddy.py_with_no_merge_bug")   # no directories
    again = _conform(f"{POW2}:with_no_merge_bug", "--max-order", "6", "--replay",
                     str(scenario))
    assert again.exit_code == 1, again.output
    assert "<-- R8: nr_free per order is [2, 0, 0, 0, 0, 0]" in again.output
    # the correct allocator answers every call of the same scenario as allowed
    fixed = _conform(f"{POW2}:Pow2Buddy", "--max-order", "6", "--replay", str(scenario),
                     "--json")
    assert fixed.exit_code == 0, fixed.output
    calls = json.loads(fixed.output)["calls"]
    assert [c["op"] for c in calls] == ["init", "alloc_pages", "free_pages"]
    # both split the 2-frame block and hand out its lower half (2.6.12 expand())
    assert calls[1]["ret"] == 0 and calls[1]["model_ret"] == 0


def test_replay_in_strict_mode_shows_the_policy_difference(tmp_path):
    # 128 frames: the allocator has four order-5 blocks and takes the highest (96);
    # Linux has one order-7 block, splits it and returns its lowest frame (0)
    scenario = tmp_path / "order5.jsonl"
    scenario.write_text(json.dumps(flat_boot_line(128)) + "\n"
                        '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 5, "as": "a"}\n'
                        '{"op": "__free_pages", "page": "$a", "order": 5}\n')
    refine = _conform(f"{POW2}:Pow2Buddy", "--max-order", "6", "--replay", str(scenario))
    assert refine.exit_code == 0, refine.output
    row = next(line for line in refine.output.splitlines() if "alloc_pages(order=5)" in line)
    assert row.split()[-2:] == ["96", "0"]            # both answers, side by side
    # strict mode stops at init already: four order-5 blocks are not Linux's one order-7
    strict = _conform(f"{POW2}:Pow2Buddy", "--max-order", "6", "--replay", str(scenario),
                      "--mode", "strict")
    assert strict.exit_code == 1, strict.output
    assert "<-- S2: nr_free per order is [0, 0, 0, 0, 0, 4]" in strict.output
    assert "(stopped at step 0: 2 later calls not run)" in strict.output


def test_replay_rejects_what_is_not_a_flat_scenario(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"op": "boot", "phys_pages": 229376}\n')
    result = _conform(f"{POW2}:Pow2Buddy", "--replay", str(bad))
    assert result.exit_code == 2 and "bad.jsonl:1: not the flat machine" in result.output
    bad.write_text(json.dumps(flat_boot_line(2)) + '\n{"op": "kmalloc"}\n')
    result = _conform(f"{POW2}:Pow2Buddy", "--replay", str(bad))
    assert result.exit_code == 2 and "bad.jsonl:2: 'kmalloc' is not a page" in result.output
