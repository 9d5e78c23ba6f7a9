"""`kmemspec verify`: every check that exists, as a table invariant x method.

Methods, each a function `(budget) -> list[Row]`:
- Hypothesis: the whole-model stateful campaign (every layer's rules, valid and
  invalid calls, the whole catalogue after every step). Finds bugs; proves nothing.
- Z3: the inductive proof obligations, one per (invariant, operation). "proved".
- CrossHair: contracts on the small pure functions. Finds bugs; proves nothing.
- facts: the model's numbers against independent computations from the kernel's
  formulas (kmemspec/facts.py, spec/facts.md), and the buddy Z3 encoding against the
  model on a fixed call sequence. Checks these inputs; proves nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

BUDGETS = ("quick", "standard", "thorough")

# Hypothesis campaign sizes: (examples, steps per example)
CAMPAIGN = {"quick": (60, 25), "standard": (400, 40), "thorough": (3000, 80)}


@dataclass
class Row:
    invariant: str          # catalogue name or fact name; "*" when a method covers all
    method: str             # "Z3", "Hypothesis", "CrossHair", "facts"
    status: str             # "proved" / "held" / "no counterexample" / "refuted" / "broken" / "error"
    seconds: float
    scope: str = ""         # what was covered: proof scope, examples x steps, contracts
    detail: str = ""        # counterexample or error text when not ok

    @property
    def ok(self) -> bool:
        return self.status in ("proved", "held", "no counterexample")

    def to_json(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def campaign_rows(budget: str, shrink: bool = True, deterministic: bool = False) -> list[Row]:
    """Run the stateful campaign; one row per invariant it checked after every step."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    from .campaign.base import ModelMachine
    from .campaign.whole import WholeModelMachine
    from .spec import invariant_names

    examples, steps = CAMPAIGN[budget]
    start = time.perf_counter()
    checks_before = ModelMachine.checks_run
    failure = ""
    try:
        run_state_machine_as_test(WholeModelMachine, settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
            suppress_health_check=list(HealthCheck), print_blob=False,
            phases=list(Phase) if shrink else [Phase.explicit, Phase.generate],
            derandomize=deterministic))
    except Exception as exc:     # the campaign's verdict: any failure is a finding
        failure = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    checks = ModelMachine.checks_run - checks_before
    scope = f"{examples} runs of up to {steps} steps, catalogue checked {checks} times"
    rows = []
    for name in invariant_names():
        broken = failure and f"'{name}'" in failure
        rows.append(Row(name, "Hypothesis", "broken" if broken else "held", seconds, scope,
                        failure if broken else ""))
    if failure and not any(r.status == "broken" for r in rows):
        # a rule's own check failed (policy, misuse detection, state unchanged)
        rows.append(Row("*", "Hypothesis", "broken", seconds, scope, failure))
    return rows


# The catalogue layers whose parts each Z3 encoding covers.
Z3_COVERS = {"buddy": {"buddy"}, "slab": {"slab"}, "vmalloc": {"vmalloc", "highmem"}}


def z3_rows(budget: str, **_) -> list[Row]:
    """The inductive obligations, one cell per invariant (all its operations, in every
    layer that encodes it), and the parameter lemmas as one more row. The scope names
    the parts of the invariant no encoding covers. A proof does not depend on the
    budget."""
    from .proofs import layers
    from .proofs.lemmas import prove_lemmas
    from .spec import catalogue

    by_invariant: dict[str, list] = {}
    for row in layers.prove_layers():
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
    lemmas = prove_lemmas()
    bad = [lemma for lemma in lemmas if lemma.status not in ("proved", "checked")]
    rows.append(Row("(parameter lemmas)", "Z3", "proved" if not bad else "refuted",
                    sum(lemma.seconds for lemma in lemmas),
                    f"{len(lemmas)} lemmas (buddy arithmetic, expand, __pa/__va, ptes, kmalloc "
                    "index, colouring; see kmemspec prove)",
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


def facts_rows(budget: str, fail_fast: bool = False, **_) -> list[Row]:
    """One row per kernel fact (kmemspec/facts.py), then the encoding agreement row."""
    from .facts import check_facts

    rows = [Row(r.name, "facts", "held" if r.ok else "broken", r.seconds, r.source, r.detail)
            for r in check_facts(fail_fast=fail_fast)]
    if fail_fast and any(not r.ok for r in rows):
        return rows
    start = time.perf_counter()
    try:
        from .spec.z3_agreement import FIXED, fixed_machine, run_and_check
        found = run_and_check(fixed_machine(), FIXED)
    except Exception as exc:      # the check itself broke: a failing row, not a crash
        found = f"{type(exc).__name__}: {exc}"
    rows.append(Row("encoding agreement (buddy, fixed workload)", "facts",
                    "held" if found is None else "broken", time.perf_counter() - start,
                    f"Z3 buddy encoding vs model on {len(FIXED)} calls "
                    "(spec/z3_agreement.py)", found or ""))
    return rows


METHODS: dict[str, Callable[..., list[Row]]] = {
    "facts": facts_rows,
    "Z3": z3_rows,
    "Hypothesis": campaign_rows,
    "CrossHair": crosshair_rows,
}


def verify(budget: str = "quick", methods: list[str] | None = None,
           progress: Callable[[str], None] | None = None, shrink: bool = True,
           deterministic: bool = False, fail_fast: bool = False) -> list[Row]:
    """Run the methods in order (facts first: seconds); with `fail_fast`, stop after the
    first method that has a failing row (the facts also stop at their first failure)."""
    rows: list[Row] = []
    for name, method in METHODS.items():
        if methods and name not in methods:
            continue
        if progress:
            progress(name)
        kwargs = {"fail_fast": True} if fail_fast and name == "facts" else {}
        rows.extend(method(budget, shrink=shrink, deterministic=deterministic, **kwargs))
        if fail_fast and any(not r.ok for r in rows):
            break
    return rows
