"""`kmemspec verify`: the table, the JSON, and a failing verdict on a broken model."""

import json
import re

import pytest
from buddy_bugs import no_merge
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.model import page_alloc as pa
from kmemspec.verify import Row, verify


@pytest.fixture(scope="module")
def quick_json():
    """`verify --method Hypothesis --json` on the model, run once for the two tests that
    read it (each campaign of the quick budget costs seconds of CPU)."""
    result = CliRunner().invoke(main, ["verify", "--method", "Hypothesis", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_verify_quick_holds_and_reports_json(quick_json):
    data = quick_json
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


def test_z3_cells_aggregate_obligations_and_report_refutations(monkeypatch):
    """One Z3 cell per invariant: proved only if every operation's obligation is."""
    from kmemspec.proofs import layers, lemmas, obligations
    from kmemspec.verify import z3_rows

    rows = [obligations.Row("no_overlap", "rmqueue", "proved", "unbounded", 0.1),
            obligations.Row("no_overlap", "merge_step", "refuted", "unbounded", 0.2,
                            {"conjunct": "one_role"}),
            obligations.Row("no_overlap", "map_step", "proved", "unbounded v", 0.1,
                            layer="vmalloc"),
            obligations.Row("page_state", "rmqueue", "proved", "unbounded", 0.1)]
    monkeypatch.setattr(layers, "prove_layers", lambda: rows)
    monkeypatch.setattr(lemmas, "prove_lemmas", lambda: [])
    cells = {r.invariant: r for r in z3_rows("quick")}
    assert cells["no_overlap"].status == "refuted" and not cells["no_overlap"].ok
    assert "merge_step" in cells["no_overlap"].detail
    # the scope names each layer's proofs and the part no encoding covers
    scope = cells["no_overlap"].scope
    assert "buddy: 2 operations" in scope and "vmalloc: 1 operation;" in scope
    assert "not encoded: the slab part" in scope
    assert cells["page_state"].status == "proved" and cells["page_state"].ok


def test_verify_runs_the_2612_campaign_and_it_fails_on_a_pcp_bug(monkeypatch, quick_json):
    """The 2.6.12 page-policy campaign has its own column; a per-CPU bug (a free at
    count == high does not drain) breaks that column only -- the whole-model campaign
    boots page_policy "buddy", where no per-CPU list is used."""
    from pcp_bugs import drain_above_high

    from kmemspec.verify import PCP_METHOD, PCP_ORACLE_ROW
    # the model's own run: the JSON rows of the test above (the same quick campaigns)
    rows = quick_json["rows"]
    pcp = {r["invariant"]: r for r in rows if r["method"] == PCP_METHOD}
    assert {"pcp_lists", "compound_pages", "conservation", PCP_ORACLE_ROW} <= set(pcp)
    assert "slab_accounting" not in pcp and all(r["ok"] for r in rows)
    assert "calls against the 2.6.12 oracle" in pcp["pcp_lists"]["scope"]
    monkeypatch.setattr(pa, "free_hot_cold_page", drain_above_high)
    rows = verify("quick", ["Hypothesis"], shrink=False, deterministic=True)
    assert all(r.ok for r in rows if r.method == "Hypothesis")
    broken = [r for r in rows if r.method == PCP_METHOD and not r.ok]
    assert broken and broken[0].detail


class _InProcess:
    """A stand-in for verify's process pool that runs each piece at once, here (so a
    monkeypatched prover is seen)."""

    def __init__(self, jobs):
        self.jobs = jobs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap_unordered(self, fn, items):
        return map(fn, items)


def test_z3_pieces_cover_every_layer_and_reassemble_in_order(monkeypatch):
    """With jobs > 1, Z3's work goes out in pieces (one per buddy invariant, each other
    layer whole, the lemmas); put back together they give the one-process cells,
    refutation included."""
    from kmemspec.proofs import layers, lemmas, obligations
    from kmemspec.spec import z3_buddy
    from kmemspec.verify import pieces, z3_pieces

    assert z3_pieces() == ([f"Z3 buddy {name}" for name in z3_buddy.INVARIANTS]
                           + ["Z3 pcp", "Z3 slab", "Z3 vmalloc", "Z3 lemmas"])
    assert sorted(pieces(["facts", "Z3"])) == sorted(["facts", *z3_pieces()])
    assert pieces(["facts", "Z3"])[0] == "Z3 buddy merge_completeness"   # largest first
    every = [obligations.Row("no_overlap", "rmqueue", "proved", "unbounded", 0.1),
             obligations.Row("page_state", "rmqueue", "proved", "unbounded", 0.1),
             obligations.Row("no_overlap", "merge_step", "refuted", "unbounded", 0.2,
                             {"conjunct": "one_role"}),
             obligations.Row("no_overlap", "map_step", "proved", "unbounded v", 0.1,
                             layer="vmalloc"),
             obligations.Row("slab_accounting", "grow", "proved", "unbounded s", 0.1,
                             layer="slab")]
    for row in every:
        row.layer = row.layer or "buddy"

    def prove_layers(names=None, invariants=None, **_):
        return [r for r in every if (not names or r.layer in names)
                and (not invariants or r.invariant in invariants)]
    monkeypatch.setattr(layers, "prove_layers", prove_layers)
    monkeypatch.setattr(lemmas, "prove_lemmas", lambda: [])
    one = verify("quick", ["Z3"])
    shared = verify("quick", ["Z3"], jobs=2, pool=_InProcess)
    assert [(r.invariant, r.status, r.scope, r.detail) for r in shared] == \
        [(r.invariant, r.status, r.scope, r.detail) for r in one]
    assert [r.invariant for r in one][:3] == ["no_overlap", "page_state", "slab_accounting"]
    assert next(r for r in shared if r.invariant == "no_overlap").status == "refuted"


def test_jobs_share_the_work_over_processes_and_keep_the_rows(quick_json):
    """Two pieces (facts, the campaigns) in two spawned processes: the same rows, in
    the same order, as one process gives (quick_json: the campaigns in this one). The
    only test that runs verify's facts method with its real encoding agreement rows."""
    from kmemspec.facts import FACT_GROUPS
    from kmemspec.verify import AGREEMENTS

    messages = []
    shared = verify("quick", ["facts", "Hypothesis"], jobs=2, progress=messages.append)
    assert "2 pieces in 2 processes" in messages[0]
    one = [Row(**{k: v for k, v in r.items() if k != "ok"}) for r in quick_json["rows"]]
    facts = [r for r in shared if r.method == "facts"]
    assert shared[:len(facts)] == facts                      # facts first, as in one
    assert len(facts) == sum(len(group()) for group in FACT_GROUPS) + len(AGREEMENTS)
    assert all(r.ok for r in facts)
    # (the count of catalogue checks in the scope differs from run to run)
    def cells(rows):
        return [(r.invariant, r.method, r.status, re.sub(r"\d+", "N", r.scope))
                for r in rows]
    assert cells(shared[len(facts):]) == cells(one)


@pytest.mark.parametrize("jobs", ["0", "two", "-1"])
def test_jobs_must_be_a_positive_number_or_auto(jobs):
    result = CliRunner().invoke(main, ["verify", "--jobs", jobs])
    assert result.exit_code == 2 and f"--jobs {jobs!r}" in result.output
