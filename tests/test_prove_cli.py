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
    assert data["total"] == 10 and data["proved"] == 10
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
