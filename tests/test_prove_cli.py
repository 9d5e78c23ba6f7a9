"""`kmemspec prove`: JSON rows, exit codes, readable refutations, no tracebacks."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kmemspec.cli import main


def run(*args):
    return CliRunner().invoke(main, ["prove", *args])


def test_json_rows_for_a_fast_subset():
    result = run("--json", "--operation", "alloc_finish", "--operation", "get_page",
                 "--no-lemmas")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # buddy: 5 invariants x 2 operations; pcp: pcp_lists x 2 (proofs/pcp_obligations.py)
    assert data["total"] == 12 and data["proved"] == 12
    assert sum(row["layer"] == "pcp" for row in data["obligations"]) == 2
    for row in data["obligations"]:
        assert set(row) >= {"invariant", "operation", "status", "scope", "seconds"}
        assert row["status"] == "proved" and row["scope"].startswith("unbounded")


def test_seeded_bug_exits_1_with_counterexample():
    result = run("--seed-bug", "alloc_no_count", "--invariant", "page_state",
                 "--operation", "alloc_finish")
    assert result.exit_code == 1
    assert "refuted" in result.output
    assert "smallest failing conjunct: alloc_head" in result.output
    assert "before:" in result.output and "after:" in result.output


def test_bad_input_exits_2_without_traceback():
    for args in (["--invariant", "nope"], ["--operation", "nope"], ["--seed-bug", "nope"],
                 ["--json", "--operation", "nope"]):
        result = run(*args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output


def test_list_bugs():
    result = run("--list-bugs")
    assert result.exit_code == 0 and "merge_without_order_check" in result.output


def test_every_layer_is_listed_and_proved_in_json():
    result = run("--json", "--operation", "boot", "--no-lemmas")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    layers = {row["layer"] for row in data["obligations"]}
    assert layers == {"buddy", "pcp", "slab", "vmalloc"}
    invariants = {row["invariant"] for row in data["obligations"]}
    assert invariants >= {"pcp_lists", "colour_within_slack", "slab_accounting", "size_class",
                          "page_table_consistency", "vm_area_bounds", "pkmap_consistency"}
    assert data["proved"] == data["total"]


def test_slab_and_vmalloc_seeded_bugs_print_their_counterexamples():
    for bug, inv, op in [("colour_next_not_wrapped", "colour_within_slack", "cache_grow"),
                         ("no_guard_page", "vm_area_bounds", "get_vm_area")]:
        result = run("--seed-bug", bug, "--invariant", inv, "--operation", op, "--no-lemmas")
        assert result.exit_code == 1, result.output
        assert "refuted" in result.output and "smallest failing conjunct" in result.output
        assert "Traceback" not in result.output


def test_pcp_seeded_bug_prints_the_list_it_breaks():
    result = run("--layer", "pcp", "--seed-bug", "pcp_free_no_drain_at_high", "--invariant",
                 "pcp_lists", "--operation", "pcp_free", "--no-lemmas")
    assert result.exit_code == 1, result.output
    assert "smallest failing conjunct: count_bound" in result.output
    assert "per-CPU list" in result.output and "Traceback" not in result.output


def test_layer_option():
    # one operation that every layer has ("boot"; the test above sees all four layers'
    # rows for it), so a --layer that filtered nothing would show the other three: the
    # whole slab grid (about 30 s of Z3) is proved by tests/test_z3_slab.py's
    # test_every_obligation_is_proved
    result = run("--json", "--layer", "slab", "--operation", "boot", "--no-lemmas")
    assert result.exit_code == 0
    rows = json.loads(result.output)["obligations"]
    assert rows and {r["layer"] for r in rows} == {"slab"}
