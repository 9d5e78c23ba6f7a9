"""The vector cases are tests of the model; the exported corpus replays with 100% agreement."""

import json

import pytest
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.conform.catalogue import BUGS
from kmemspec.conform.isolate import make_driver
from kmemspec.conform.vectors import (CASES, PAGE_ERROR_RULES, SCENARIO_OPS, Recorder,
                                      build_all, replay_page_vector, scenario_text)
from kmemspec.scenario import OPS, parse_scenario, run_scenario


@pytest.mark.parametrize("key", sorted(CASES))
def test_case_holds_on_the_model(key):
    case = CASES[key]
    rec = Recorder(case.runner)
    case.run(rec)                      # the case's asserts are the model's test
    vector = rec.vector(case)
    run = run_scenario(parse_scenario(scenario_text(vector)))
    assert run.exit_code == 0, [r for r in run.results if r.get("as_expected") is False]


def test_vectors_cover_every_page_op_and_error():
    vectors = build_all().values()
    ops = {s["op"] for v in vectors if v["runner"] == "scenario" for s in v["steps"]}
    assert ops == set(SCENARIO_OPS)
    # every page-allocator scenario op the runner knows is covered
    buddy_ops = {name for name, op in OPS.items() if op.run.__module__.endswith("ops_buddy")}
    assert buddy_ops <= ops
    rules = {s["expect"]["error"] for v in vectors for s in v["steps"]
             if "error" in s.get("expect", {})}
    assert set(PAGE_ERROR_RULES) <= rules
    orders = {s["order"] for v in vectors if v["runner"] == "page_alloc" for s in v["steps"]
              if s["op"] == "alloc_pages"}
    assert orders == set(range(12))      # every order, and one beyond the top


def test_export_and_replay_on_the_model_agree_100_percent(tmp_path):
    runner = CliRunner()
    out = tmp_path / "vectors"
    result = runner.invoke(main, ["vectors", str(out)])
    assert result.exit_code == 0, result.output
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == "kmemspec-vectors" and index["version"] == 4
    assert (out / "FORMAT.md").read_text().count("| op |") == 6
    replay = runner.invoke(main, ["vectors", str(out), "--replay", "--json"])
    assert replay.exit_code == 0, replay.output
    summary = json.loads(replay.output)
    assert summary["agree"] == summary["vectors"] == len(index["vectors"]) == len(CASES)
    for entry in index["vectors"]:      # every vector is also a runnable scenario
        assert runner.invoke(main, ["run", str(out / entry["scenario"])]).exit_code == 0


RUNNER_OF_PART = {"page": "page_alloc", "object": "object", "vmalloc": "vmalloc",
                  "cache": "cache", "highmem": "highmem"}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_reference_runner_rejects_every_catalogue_bug(name):
    entry = BUGS[name]
    driver = make_driver(entry.factory, isolate=False)
    results = [replay_page_vector(v, driver, mode="refine") for v in build_all().values()
               if v["runner"] == RUNNER_OF_PART[entry.layer]]
    assert results and any(not r.ok for r in results)


def test_reference_runner_accepts_correct_adapters():
    from kmemspec.conform.adapter import ModelAllocator
    from kmemspec.conform.catalogue import ReferenceBuddy, ReferenceVmalloc
    vectors = build_all().values()
    for factory, runners, mode in ((ModelAllocator, {"page_alloc", "object", "vmalloc",
                                                     "cache", "highmem"}, "strict"),
                                   (ReferenceBuddy, {"page_alloc"}, "strict"),
                                   (ReferenceVmalloc, {"page_alloc", "vmalloc"}, "refine")):
        driver = make_driver(factory, isolate=False)
        for vector in vectors:
            if vector["runner"] in runners:
                result = replay_page_vector(vector, driver, mode=mode)
                assert result.ok, (factory, result.name, result.failures)


def test_replay_of_bad_input_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["vectors", str(tmp_path), "--replay"])
    assert result.exit_code == 2
