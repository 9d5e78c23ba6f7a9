"""The slab example scenarios run clean, with their hand-computed expectations met."""

import glob
import json
import os

import pytest

from kmemspec.scenario import format_text, parse_file, run_scenario

HERE = os.path.dirname(__file__)
SCENARIOS = sorted(glob.glob(os.path.join(HERE, "..", "examples", "scenarios", "slab_*.jsonl")))


@pytest.mark.parametrize("path", SCENARIOS, ids=os.path.basename)
def test_slab_scenario(path):
    run = run_scenario(parse_file(path))
    assert run.exit_code == 0, format_text(run)
    assert all(e.get("as_expected", True) for e in run.results)


def test_colour_scenario_expectations_are_checked():
    path = os.path.join(HERE, "..", "examples", "scenarios", "slab_colour.jsonl")
    run = run_scenario(parse_file(path))
    checked = [e for e in run.results if e["op"] == "kmem_cache_alloc" and "expect" in e]
    assert len(checked) == 19 and all(e["as_expected"] for e in checked)


def test_slabinfo_view_text_and_json():
    path = os.path.join(HERE, "..", "examples", "scenarios", "slab_colour.jsonl")
    run = run_scenario(parse_file(path))
    text = format_text(run)
    assert "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> " \
           "<objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : " \
           "slabdata <active_slabs> <num_slabs> <sharedavail>" in text
    # 16 objects live in 6 slabs of 3: shrink gave back the emptied sixth slab and the
    # next allocation grew a new one (the seventh colour step)
    line = next(t for t in text.splitlines() if t.startswith("colour_demo "))
    assert line.split()[:6] == ["colour_demo", "16", "18", "1100", "3", "1"]
    info = json.loads(json.dumps(run.to_json()))["state"]["slabinfo"]
    demo = next(c for c in info if c["name"] == "colour_demo")
    assert {k: demo[k] for k in ("active_objs", "num_objs", "objsize", "objperslab",
                                 "pagesperslab", "active_slabs", "num_slabs")} == \
        {"active_objs": 16, "num_objs": 18, "objsize": 1100, "objperslab": 3,
         "pagesperslab": 1, "active_slabs": 6, "num_slabs": 6}
    assert demo["colour"] == {"colour": 5, "colour_off": 128, "colour_next": 2,
                              "left_over": 764}
    assert info[-1]["name"] == "kmem_cache"
