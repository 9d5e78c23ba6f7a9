"""`kmemspec verify`: the table, the JSON, and a failing verdict on a broken model."""

import json

from buddy_bugs import no_merge
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.model import page_alloc as pa
from kmemspec.verify import verify


def test_verify_quick_holds_and_reports_json():
    result = CliRunner().invoke(main, ["verify", "--method", "Hypothesis", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    names = {r["invariant"] for r in data["rows"]}
    assert {"no_overlap", "merge_completeness", "conservation"} <= names
    scope = data["rows"][0]["scope"]
    checks = int(scope.split("checked ")[1].split()[0])
    assert checks > 100, scope      # the campaign really stepped


def test_verify_fails_on_a_model_that_never_merges(monkeypatch):
    monkeypatch.setattr(pa, "__free_pages_bulk", no_merge)
    rows = verify("quick", ["Hypothesis"], shrink=False, deterministic=True)
    broken = [r for r in rows if not r.ok]
    assert broken and broken[0].detail
    result = CliRunner().invoke(main, ["verify", "--method", "Hypothesis", "--no-shrink",
                                       "--deterministic"])
    assert result.exit_code == 1 and "FAILED" in result.output
