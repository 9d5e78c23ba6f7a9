"""`kmemspec explore`: shortest scenarios that `kmemspec run` replays."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.model import page_alloc
from kmemspec.proofs.explore import explore, fragmentation


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
                 ["explore", "colour-reuse"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
