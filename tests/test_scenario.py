"""Scenario files and `kmemspec run`: results, state, invariants, exit codes, errors."""

import json
import os
import subprocess
import sys

import pytest
from buddy_bugs import no_merge
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.scenario import ScenarioError, parse_scenario, run_scenario

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples", "scenarios")
BOOT = ('{"op": "boot", "phys_pages": 64, "highmem_pages": 0, "reserved": [], "max_dma_pfn": 64, '
        '"page_policy": "buddy"}')


def run_cli(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def write(tmp_path, *lines):
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_seed_example_json(tmp_path):
    code, out = run_cli("run", os.path.join(EXAMPLES, "seed_256_from_1024.jsonl"), "--json")
    assert code == 0
    data = json.loads(out)
    # steps 1-2 take the order-9 and order-8 blocks left after mem_map (4096..6144):
    # 6656 and 6400 (tests/test_boot.py); step 3 splits the head 1024-frame block
    assert [r["ret"] for r in data["results"]] == [6656, 6400, 228352]
    # one 512-frame and one 256-frame block left over from the 1024-frame block; orders
    # 5..7 keep boot's one block each (6176, 6208, 6272; 6145..6175 wait on CPU 0's hot
    # list after a 2.6.12 boot, tests/test_boot.py), 217 - 1 order-10 blocks
    assert data["state"]["buddyinfo"]["Normal"] == [0] * 5 + [1] * 3 + [1, 1, 216]
    assert set(data["invariants"].values()) == {"held"}


def test_text_output_has_buddyinfo_lines():
    code, out = run_cli("run", os.path.join(EXAMPLES, "seed_split_and_merge.jsonl"))
    assert code == 0
    # everything merged back; orders 8 and 9 stay taken (steps 1-2): 6176 .. 6272 free
    # (orders 5..7), 6145..6175 on CPU 0's hot list since boot (tests/test_boot.py)
    assert ("Node 0, zone   Normal" + "      0" * 5 + "      1" * 3 + "      0      0    217"
            ) in out
    assert "invariant merge_completeness: held" in out


def test_bindings_and_expectations(tmp_path):
    path = write(tmp_path, BOOT,
                 '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 3, "as": "a"}',
                 '{"op": "__free_pages", "page": "$a", "order": 2, "expect": {"error": "wrong_order"}}',
                 '{"op": "__free_pages", "page": "$a", "order": 3}')
    code, out = run_cli("run", path, "--json")
    data = json.loads(out)
    assert code == 0, out
    assert data["results"][1]["error"]["rule"] == "wrong_order"
    assert data["results"][1]["as_expected"] is True


def test_unexpected_misuse_exits_1_with_its_step(tmp_path):
    path = write(tmp_path, BOOT,
                 '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 0, "as": "a"}',
                 '{"op": "__free_pages", "page": "$a", "order": 0}',
                 '{"op": "__free_pages", "page": "$a", "order": 0}')
    code, out = run_cli("run", path, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["results"][-1]["step"] == 3 and data["results"][-1]["error"]["rule"] == "double_free"


def test_failed_expectation_exits_1(tmp_path):
    path = write(tmp_path, BOOT, '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 11, "expect": {"ret": 5}}')
    code, _ = run_cli("run", path)
    assert code == 1


@pytest.mark.parametrize("lines, where, what", [
    (["{not json"], 1, "not valid JSON"),
    (['{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 0}'], 1, "first line must be"),
    ([BOOT, '{"op": "alloc_pagez", "gfp": "GFP_KERNEL"}'], 2, "unknown op"),
    ([BOOT, '{"op": "alloc_pages", "gfp": "GFP_KERNEL"}'], 2, "needs argument 'order'"),
    ([BOOT, '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 0, "size": 3}'], 2, "unexpected argument"),
    ([BOOT, '{"op": "__free_pages", "page": "$nope", "order": 0}'], 2, "not bound"),
    ([BOOT, '{"op": "alloc_pages", "gfp": "GFP_BOGUS", "order": 0}'], 2, "unknown gfp flag"),
    ([BOOT, '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": "x"}'], 2, "order must be an integer"),
    (['{"op": "boot", "phys_pages": 999999999}'], 1, "phys_pages"),
    (['{"op": "boot", "colour": 3}'], 1, "unknown boot key"),
    ([BOOT, BOOT], 2, "boots one machine"),
    ([BOOT, '{"op": "kmalloc", "size": 8, "gfp": "GFP_KERNEL", "cpu": 1}'], 2,
     "cpu 1 is not a CPU of this machine"),
    ([BOOT, '{"op": "cache_reap", "cpu": "two"}'], 2, "cpu must be an integer"),
    (['{"op": "boot", "cpus": 9}'], 1, "cpus: must be an integer in 1..8"),
    ([BOOT, '[1, 2]'], 2, "JSON object"),
])
def test_bad_input_names_line_and_exits_2(tmp_path, lines, where, what):
    path = write(tmp_path, *lines)
    code, out = run_cli("run", path, "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert error["line"] == where and what in error["message"], error
    code, out = run_cli("run", path)
    assert code == 2 and "Traceback" not in out


def test_missing_file_exits_2(tmp_path):
    code, out = run_cli("run", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "cannot read" in out


def test_broken_invariant_exits_1_and_names_the_step(monkeypatch):
    from kmemspec.model import page_alloc as pa

    monkeypatch.setattr(pa, "__free_pages_bulk", no_merge)
    scenario = parse_scenario("\n".join([
        BOOT, '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 0, "as": "a"}',
        '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 0, "as": "b"}',
        '{"op": "__free_pages", "page": "$b", "order": 0}']))
    run = run_scenario(scenario)
    # b is pfn 2, split from the order-1 block at 2; freeing it must merge with 3
    assert run.exit_code == 1 and run.broken_at == 3
    assert run.invariants["merge_completeness"]


def test_parse_error_type():
    with pytest.raises(ScenarioError) as err:
        parse_scenario("")
    assert err.value.line == 1


def test_console_script_runs_outside_the_checkout(tmp_path):
    """The installed `kmemspec` works from any directory (no repo on sys.path)."""
    exe = os.path.join(os.path.dirname(sys.executable), "kmemspec")
    path = write(tmp_path, BOOT, '{"op": "alloc_page", "gfp": "GFP_KERNEL"}')
    done = subprocess.run([exe, "run", path, "--json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # pfn 0 holds mem_map; the order-0 list holds pfn 1
    assert json.loads(done.stdout)["results"][0]["ret"] == 1


def test_run_writes_an_svg_picture(tmp_path):
    svg = tmp_path / "state.svg"
    code, _ = run_cli("run", os.path.join(EXAMPLES, "seed_split_and_merge.jsonl"),
                      "--svg", str(svg))
    assert code == 0
    text = svg.read_text()
    assert text.startswith("<svg") or text.startswith("<?xml")
    assert "</svg>" in text


def test_run_svg_to_an_unwritable_place_exits_2(tmp_path):
    code, out = run_cli("run", os.path.join(EXAMPLES, "seed_split_and_merge.jsonl"),
                        "--svg", str(tmp_path / "no" / "such" / "dir.svg"))
    assert code == 2 and "cannot write" in out
