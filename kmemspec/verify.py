"""`kmemspec verify`: every check that exists, as a table invariant x method.

Methods, each a function `(budget) -> list[Row]`:
- Hypothesis: the whole-model stateful campaign (every layer's rules, valid and
  invalid calls, the whole catalogue after every step, page_policy "buddy"), then the
  2.6.12 page-policy campaign (its own column, "Hypothesis 2.6.12": watermark passes,
  per-CPU lists, compound pages, drains, PF_MEMALLOC on 1-3 CPUs, each call against an
  independent oracle). Finds bugs; proves nothing.
- Z3: the inductive proof obligations, one per (invariant, operation). "proved".
- CrossHair: contracts on the small pure functions. Finds bugs; proves nothing.
- facts: the model's numbers against independent computations from the kernel's
  formulas (kmemspec/facts.py, spec/facts.md), and the buddy, slab and vmalloc Z3
  encodings against the model on fixed call sequences. Checks these inputs; proves
  nothing.

With jobs > 1 the work goes out in pieces (each method; Z3 by layer, the buddy layer by
invariant) to spawned processes, largest first; the table is the same.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

BUDGETS = ("quick", "standard", "thorough")

# Hypothesis campaign sizes: (examples, steps per example)
CAMPAIGN = {"quick": (60, 25), "standard": (400, 40), "thorough": (3000, 80)}
# the 2.6.12 page-policy campaign (kmemspec/campaign/pcp.py): its own column
PCP_CAMPAIGN = {"quick": (50, 30), "standard": (300, 40), "thorough": (2000, 60)}
PCP_METHOD = "Hypothesis 2.6.12"
PCP_ORACLE_ROW = "(2.6.12 __alloc_pages / per-CPU list oracle)"


@dataclass
class Row:
    invariant: str          # catalogue name or fact name; "*" when a method covers all
    method: str             # "Z3", "Hypothesis", "Hypothesis 2.6.12", "CrossHair", "facts"
    status: str             # "proved" / "held" / "no counterexample" / "refuted" / "broken" / "error"
    seconds: float
    scope: str = ""         # what was covered: proof scope, examples x steps, contracts
    detail: str = ""        # counterexample or error text when not ok

    @property
    def ok(self) -> bool:
        return self.status in ("proved", "held", "no counterexample")

    def to_json(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _run_campaign(machine_cls, examples: int, steps: int, shrink: bool,
                  deterministic: bool) -> tuple[str, float, int]:
    """Run one stateful campaign: (failure text or "", seconds, catalogue checks)."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    from .campaign.base import ModelMachine

    start = time.perf_counter()
    checks_before = ModelMachine.checks_run
    failure = ""
    try:
        run_state_machine_as_test(machine_cls, settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
            suppress_health_check=list(HealthCheck), print_blob=False,
            phases=list(Phase) if shrink else [Phase.explicit, Phase.generate],
            derandomize=deterministic))
    except Exception as exc:     # the campaign's verdict: any failure is a finding
        failure = f"{type(exc).__name__}: {exc}"
    return failure, time.perf_counter() - start, ModelMachine.checks_run - checks_before


def _campaign_cells(method: str, names: list[str], failure: str, seconds: float,
                    scope: str, oracle_row: str = "") -> list[Row]:
    """One row per invariant in `names` (and any other the failure names); a failure no
    invariant explains belongs to the rules' own checks: the oracle row, or "*"."""
    from .spec import invariant_names

    rows = []
    for name in invariant_names():
        broken = bool(failure) and f"'{name}'" in failure
        if name in names or broken:
            rows.append(Row(name, method, "broken" if broken else "held", seconds, scope,
                            failure if broken else ""))
    unexplained = failure and not any(r.status == "broken" for r in rows)
    if oracle_row:
        rows.append(Row(oracle_row, method, "broken" if unexplained else "held", seconds,
                        scope, failure if unexplained else ""))
    elif unexplained:
        # a rule's own check failed (policy, misuse detection, state unchanged)
        rows.append(Row("*", method, "broken", seconds, scope, failure))
    return rows


def campaign_rows(budget: str, shrink: bool = True, deterministic: bool = False,
                  fail_fast: bool = False) -> list[Row]:
    """Run the stateful campaigns: the whole-model one (page_policy "buddy", every
    layer), then the 2.6.12 page-policy one (watermarks, per-CPU lists, 1-3 CPUs).
    One row per invariant each checked after every step; with `fail_fast`, the second
    does not run when the first failed."""
    from .campaign import pcp
    from .campaign.whole import WholeModelMachine
    from .spec import catalogue, invariant_names

    examples, steps = CAMPAIGN[budget]
    failure, seconds, checks = _run_campaign(WholeModelMachine, examples, steps, shrink,
                                             deterministic)
    scope = f"{examples} runs of up to {steps} steps, catalogue checked {checks} times"
    rows = _campaign_cells("Hypothesis", invariant_names(), failure, seconds, scope)
    if fail_fast and failure:
        return rows
    # the 2.6.12 campaign calls only the page allocator: its cells are the invariants
    # with a page-allocator part (every invariant is still checked after every step)
    examples, steps = PCP_CAMPAIGN[budget]
    calls_before = pcp.PcpRules.oracle_checks
    failure, seconds, checks = _run_campaign(pcp.PcpMachine, examples, steps, shrink,
                                             deterministic)
    calls = pcp.PcpRules.oracle_checks - calls_before
    buddy = [n for n in invariant_names()
             if any(part.layer == "buddy" for part in catalogue.parts(n))]
    scope = (f"page_policy 2.6.12, 1-3 CPUs: {examples} runs of up to {steps} steps, "
             f"catalogue checked {checks} times, {calls} calls against the 2.6.12 "
             "oracle (kmemspec/campaign/alloc_oracle.py)")
    rows += _campaign_cells(PCP_METHOD, buddy, failure, seconds, scope, PCP_ORACLE_ROW)
    return rows


# The catalogue layers whose parts each Z3 encoding covers.
Z3_COVERS = {"buddy": {"buddy"}, "pcp": {"buddy"}, "slab": {"slab"}, "vmalloc": {"vmalloc", "highmem"}}


def z3_rows(budget: str, **_) -> list[Row]:
    """The inductive obligations, one cell per invariant (all its operations, in every
    layer that encodes it), and the parameter lemmas as one more row. The scope names
    the parts of the invariant no encoding covers. A proof does not depend on the
    budget."""
    from .proofs import layers
    from .proofs.lemmas import prove_lemmas

    return z3_cells(layers.prove_layers(), prove_lemmas())


def z3_cells(obligation_rows: list, lemmas: list) -> list[Row]:
    """The Z3 rows of verify's table from the obligation rows (in prove_layers' order)
    and the lemma rows."""
    from .spec import catalogue

    by_invariant: dict[str, list] = {}
    for row in obligation_rows:
        by_invariant.setdefault(row.invariant, []).append(row)
    rows = []
    for name, obligations in by_invariant.items():
        bad = [o for o in obligations if o.status != "proved"]
        status = "proved" if not bad else ("refuted" if any(o.status == "refuted" for o in bad)
                                           else "unknown")
        scopes = []
        for layer in dict.fromkeys(o.layer for o in obligations):
            mine = [o.scope for o in obligations if o.layer == layer]
            common = max(set(mine), key=mine.count)
            plural = "s" if len(mine) != 1 else ""
            scopes.append(f"{layer}: {len(mine)} operation{plural}; {common}")
        covered = set().union(*(Z3_COVERS[o.layer] for o in obligations))
        missing = sorted({part.layer for part in catalogue.parts(name)} - covered)
        if missing:
            scopes.append(f"not encoded: the {', '.join(missing)} part"
                          f"{'s' if len(missing) > 1 else ''} (checked by Hypothesis only)")
        detail = "; ".join(f"{o.layer} {o.operation}: {o.status} {o.detail}" for o in bad)
        rows.append(Row(name, "Z3", status, sum(o.seconds for o in obligations),
                        " | ".join(scopes), detail))
    bad = [lemma for lemma in lemmas if lemma.status not in ("proved", "checked")]
    rows.append(Row("(parameter lemmas)", "Z3", "proved" if not bad else "refuted",
                    sum(lemma.seconds for lemma in lemmas),
                    f"{len(lemmas)} lemmas (buddy arithmetic, expand, __pa/__va, ptes, kmalloc "
                    "index, colouring, zone_watermark_ok; see kmemspec prove)",
                    "; ".join(f"{lemma.lemma}: {lemma.status}" for lemma in bad)))
    return rows


# Which invariant each CrossHair-checked function stands behind.
CONTRACT_INVARIANT = {
    "buddy_index": "merge_completeness", "combined_index": "buddy_alignment",
    "expand_parts": "buddy_alignment", "get_order": "size_class",
    "kmalloc_class": "size_class", "slab_estimate": "colour_within_slack",
    "colour_offset": "colour_within_slack", "pa_of_va": "page_table_consistency",
    "pte_roundtrip": "page_table_consistency",
}
CROSSHAIR_TIMEOUT = {"quick": 1.0, "standard": 3.0, "thorough": 10.0}


def crosshair_rows(budget: str, **_) -> list[Row]:
    """CrossHair over the contracts; one cell per invariant the functions stand behind."""
    from .proofs.contracts import run_crosshair

    timeout = CROSSHAIR_TIMEOUT[budget]
    grouped: dict[str, list] = {}
    for row in run_crosshair(per_condition_timeout=timeout):
        grouped.setdefault(CONTRACT_INVARIANT[row.function.rsplit(".", 1)[1]], []).append(row)
    rows = []
    for name, contracts in grouped.items():
        bad = [c for c in contracts if c.status != "no counterexample"]
        rows.append(Row(name, "CrossHair", bad[0].status if bad else "no counterexample",
                        sum(c.seconds for c in contracts),
                        f"{', '.join(c.function.rsplit('.', 1)[1] for c in contracts)} "
                        f"({timeout:g} s per condition)",
                        "; ".join(f"{c.function}: {c.detail}" for c in bad)))
    return rows


def _buddy_agreement():
    from .spec.z3_agreement import FIXED, fixed_machine, run_and_check
    return run_and_check(fixed_machine(), FIXED), len(FIXED), "spec/z3_agreement.py"


def _slab_agreement():
    from .spec.z3_agreement_slab import FIXED, fresh_machine, run_and_check
    machine, caches = fresh_machine()
    return run_and_check(machine, caches, FIXED), len(FIXED), "spec/z3_agreement_slab.py"


def _vmalloc_agreement():
    from .spec.z3_agreement_vmalloc import FIXED, Workload, small_machine
    return Workload(small_machine()).run(FIXED), len(FIXED), "spec/z3_agreement_vmalloc.py"


# (name, encoding, check): each check drives the model through a fixed call sequence
# and returns (the first disagreement with the Z3 encoding or None, calls, where)
AGREEMENTS = [("buddy", "buddy", _buddy_agreement), ("slab", "slab", _slab_agreement),
              ("vmalloc", "vmalloc/pkmap", _vmalloc_agreement)]


def facts_rows(budget: str, fail_fast: bool = False, **_) -> list[Row]:
    """One row per kernel fact (kmemspec/facts.py), then one encoding agreement row per
    Z3 encoding (buddy, slab, vmalloc)."""
    from .facts import check_facts

    rows = [Row(r.name, "facts", "held" if r.ok else "broken", r.seconds, r.source, r.detail)
            for r in check_facts(fail_fast=fail_fast)]
    if fail_fast and any(not r.ok for r in rows):
        return rows
    for name, _, _ in AGREEMENTS:
        rows.append(agreement_row(name))
        if fail_fast and not rows[-1].ok:
            break
    return rows


def agreement_row(name: str) -> Row:
    """The facts row of one encoding's fixed-workload agreement check."""
    _, encoding, check = next(a for a in AGREEMENTS if a[0] == name)
    start = time.perf_counter()
    calls, where = "?", ""
    try:
        found, calls, where = check()
    except Exception as exc:  # the check itself broke: a failing row, not a crash
        found = f"{type(exc).__name__}: {exc}"
    return Row(f"encoding agreement ({name}, fixed workload)", "facts",
               "held" if found is None else "broken", time.perf_counter() - start,
               f"Z3 {encoding} encoding vs model on {calls} calls ({where})", found or "")


METHODS: dict[str, Callable[..., list[Row]]] = {
    "facts": facts_rows,
    "Z3": z3_rows,
    "Hypothesis": campaign_rows,
    "CrossHair": crosshair_rows,
}


# verify with jobs > 1: the work shared out over processes, largest pieces first. The
# buddy layer's obligations take most of Z3's time (about 65 of 95 s, 2026-12-06), so
# they go out one invariant at a time; the other layers go whole. Seconds per piece in
# a quiet `kmemspec verify` with 2 processes, 2026-12-06 (they set the order only).
PIECE_SECONDS = {"Z3 buddy merge_completeness": 30, "Z3 buddy no_overlap": 20,
                 "CrossHair": 20, "facts": 14, "Z3 pcp": 14, "Z3 buddy buddy_alignment": 14,
                 "Z3 buddy conservation": 14, "Z3 vmalloc": 11, "Z3 slab": 8,
                 "Hypothesis": 5, "Z3 buddy page_state": 4, "Z3 lemmas": 2}


def z3_pieces() -> list[str]:
    """Z3's work in pieces, in prove_layers' order: one per buddy invariant, then each
    other layer whole, then the lemmas."""
    from .proofs import layers

    buddy = [f"Z3 buddy {name}" for name in layers.layers()["buddy"].invariants]
    return buddy + [f"Z3 {name}" for name in layers.LAYER_NAMES if name != "buddy"] \
        + ["Z3 lemmas"]


def pieces(chosen: list[str]) -> list[str]:
    """The pieces of work for the `chosen` methods, largest first."""
    out = [m for m in chosen if m != "Z3"] + (z3_pieces() if "Z3" in chosen else [])
    return sorted(out, key=lambda piece: -PIECE_SECONDS.get(piece, 5))


def run_piece(task: str, budget: str, shrink: bool, deterministic: bool):
    """One piece of verify's work, in a worker process: (result, seconds). A Z3 piece
    returns obligation or lemma rows (z3_cells makes the table's cells); a method
    returns its table rows."""
    start = time.perf_counter()
    if task == "Z3 lemmas":
        from .proofs.lemmas import prove_lemmas
        result = prove_lemmas()
    elif task.startswith("Z3 "):
        from .proofs import layers
        _, layer, *invariant = task.split()
        result = layers.prove_layers([layer], invariants=invariant or None)
    else:
        result = METHODS[task](budget, shrink=shrink, deterministic=deterministic)
    return result, time.perf_counter() - start


def _piece(args: tuple):
    """run_piece for a pool's map: (task, result, seconds)."""
    return (args[0], *run_piece(*args))


def _spawned_pool(jobs: int):
    """A pool of fresh processes; leaving its `with` block (Ctrl-C included) kills them
    at once rather than waiting for a proof in progress."""
    import multiprocessing
    return multiprocessing.get_context("spawn").Pool(jobs)


def _verify_in_processes(chosen: list[str], budget: str, jobs: int, progress,
                         shrink: bool, deterministic: bool, pool=_spawned_pool) -> list[Row]:
    """The methods' work shared out over `jobs` fresh processes (spawned: each imports
    the model from disk, so a model patched in this process is not seen there)."""
    tasks = pieces(chosen)
    if progress:
        progress(f"running {', '.join(chosen)} as {len(tasks)} pieces in {jobs} processes ...")
    results = {}
    with pool(jobs) as workers:
        work = [(task, budget, shrink, deterministic) for task in tasks]
        for task, result, seconds in workers.imap_unordered(_piece, work):
            results[task] = result
            if progress:
                progress(f"  {task}: done in {seconds:.1f} s")
    rows: list[Row] = []
    for name in chosen:
        if name != "Z3":
            rows += results[name]
            continue
        # the obligation rows in prove_layers' order, as the sequential run has them
        obligation_rows = [r for t in z3_pieces()[:-1] for r in results[t]]
        rows += z3_cells(obligation_rows, results["Z3 lemmas"])
    return rows


def verify(budget: str = "quick", methods: list[str] | None = None,
           progress: Callable[[str], None] | None = None, shrink: bool = True,
           deterministic: bool = False, fail_fast: bool = False, jobs: int = 1,
           pool=_spawned_pool) -> list[Row]:
    """Run the methods in order (facts first: seconds); with `fail_fast`, stop after the
    first method that has a failing row (the facts also stop at their first failure),
    and run Z3 last: the proofs take most of the time and reach the model only through
    kmalloc_index (the parameter lemmas), so a mutant the campaign kills is found
    without waiting for them. With jobs > 1 (and not `fail_fast`) the work is shared
    out over that many processes (no more than there are pieces); the rows come back
    in the same order."""
    chosen = [m for m in METHODS if not methods or m in methods]
    jobs = min(jobs, len(pieces(chosen)))
    if jobs > 1 and not fail_fast:
        return _verify_in_processes(chosen, budget, jobs, progress, shrink, deterministic,
                                    pool)
    rows: list[Row] = []
    if fail_fast:
        chosen = [m for m in chosen if m != "Z3"] + [m for m in chosen if m == "Z3"]
    for name in chosen:
        method = METHODS[name]
        if progress:
            progress(f"running {name} ...")
        kwargs = {"fail_fast": True} if fail_fast and name in ("facts", "Hypothesis") else {}
        rows.extend(method(budget, shrink=shrink, deterministic=deterministic, **kwargs))
        if fail_fast and any(not r.ok for r in rows):
            break
    return rows
