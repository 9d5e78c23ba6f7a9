"""`kmemspec explore`: shortest scenarios that `kmemspec run` replays."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.model import page_alloc
from kmemspec.proofs.explore import (colour_reuse, explore, fragmentation, vmalloc_exhausted,
                                     vmalloc_fits, vmalloc_frames_needed)
from kmemspec.scenario import parse_file, run_scenario


def nothing_free_above_order0(machine):
    """Custom query for the test: every free block is a single frame, some are free."""
    free = page_alloc.buddyinfo(machine)
    counts = [sum(c) for c in zip(*free.values())]
    return counts[0] > 0 and not any(counts[1:])


def test_fragmentation_scenario_replays_to_the_same_failure(tmp_path):
    out = tmp_path / "frag.jsonl"
    runner = CliRunner()
    result = runner.invoke(main, ["explore", "fragmentation", "--frames", "8", "--order", "1",
                                  "-o", str(out)])
    assert result.exit_code == 1, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["op"] == "boot" and lines[-1]["expect"] == {"ret": None}
    replay = runner.invoke(main, ["run", "--json", str(out)])
    assert replay.exit_code == 0, replay.output        # every expectation met
    assert json.loads(replay.output)["results"][-1]["ret"] is None


def test_shortest_is_minimal():
    found = explore(fragmentation(1, 50), phys_pages=8, max_calls=8)
    assert found is not None
    for shorter in range(len(found.calls)):
        assert explore(fragmentation(1, 50), phys_pages=8, max_calls=shorter) is None


def test_custom_predicate(tmp_path):
    result = CliRunner().invoke(main, ["explore", "--predicate",
                                       f"{__name__}:nothing_free_above_order0",
                                       "--frames", "8", "--json"])
    assert result.exit_code in (0, 1), result.output
    assert "found" in json.loads(result.output)


def test_bad_input_exits_2():
    runner = CliRunner()
    for args in (["explore"], ["explore", "nope"], ["explore", "--predicate", "nomodule"],
                 ["explore", "vmalloc-exhausted", "--frames", "16"],
                 ["explore", "fragmentation", "--predicate", f"{__name__}:nothing"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def _explore_and_replay(tmp_path, args):
    out = tmp_path / "found.jsonl"
    runner = CliRunner()
    result = runner.invoke(main, ["explore", *args, "-o", str(out)])
    assert result.exit_code == 1, result.output
    replay = runner.invoke(main, ["run", "--json", str(out)])
    assert replay.exit_code == 0, replay.output        # expectations met, invariants hold
    return result.output, run_scenario(parse_file(str(out)))


def test_colour_reuse_scenario_replays_to_two_slabs_at_one_offset(tmp_path):
    output, run = _explore_and_replay(tmp_path, ["colour-reuse"])
    assert output.startswith("# shortest sequence: 4 calls")
    cachep = next(c for c in run.machine.slab.cache_chain if c.name == "explored")
    assert cachep.colour >= 2
    offsets = [s.colouroff for s in cachep.slabs.values()]
    assert len(offsets) == 3 and len(set(offsets)) == 2     # colour 0, 1, then 0 again
    assert colour_reuse(2)(run.machine)


def test_colour_reuse_shortest_is_minimal():
    found = explore(colour_reuse(2), max_calls=8)
    assert found is not None and len(found.calls) == 4
    assert explore(colour_reuse(2), max_calls=3) is None
    # any cache (colour 0 or 1 allowed): create and two allocations of a one-object slab
    assert len(explore(colour_reuse(0), max_calls=8).calls) == 3


def test_vmalloc_exhausted_scenario_replays_to_null_with_free_frames(tmp_path):
    output, run = _explore_and_replay(tmp_path, ["vmalloc-exhausted"])
    assert output.startswith("# shortest sequence: 2 calls")
    last = run.results[-1]
    assert last["op"] == "vmalloc" and last["ret"] is None and last["as_expected"]
    size = last["args"]["size"]
    machine = run.machine
    assert not vmalloc_fits(machine, size)
    assert page_alloc.nr_free_pages(machine) >= vmalloc_frames_needed(machine, size)
    assert vmalloc_fits(explore.__globals__["boot"](**explore.__globals__["VMALLOC_MACHINE"]),
                        size)                       # it fits an empty range


def test_vmalloc_exhausted_shortest_is_minimal():
    assert explore(vmalloc_exhausted(), max_calls=1) is None
    # a size above the whole range fails at once
    assert len(explore(vmalloc_exhausted(120 << 20), max_calls=3).calls) == 0
