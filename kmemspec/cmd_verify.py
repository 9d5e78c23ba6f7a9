"""`kmemspec verify`: the main job -- run every check, print invariant x method."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from .verify import BUDGETS, METHODS, verify


def _table(rows) -> str:
    methods = list(dict.fromkeys(r.method for r in rows))
    names = list(dict.fromkeys(r.invariant for r in rows))
    cell = {(r.invariant, r.method): r for r in rows}
    width = max(len(n) for n in names) + 2
    head = "invariant".ljust(width) + "".join(m.ljust(24) for m in methods)
    lines = [head, "-" * len(head)]
    for name in names:
        parts = []
        for m in methods:
            r = cell.get((name, m))
            parts.append((f"{r.status} ({r.seconds:.1f}s)" if r else "-").ljust(24))
        lines.append(name.ljust(width) + "".join(parts))
    # each distinct scope once, with the invariants it is the scope of
    scopes: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        if r.scope:
            scopes.setdefault(r.method, {}).setdefault(r.scope, []).append(r.invariant)
    lines.append("")
    for m, by_scope in scopes.items():
        lines.append(f"{m}:")
        for scope, invs in by_scope.items():
            who = ", ".join(i for i in invs if i != "*")
            lines.append(f"  - {who + ': ' if who else ''}{scope}")
    return "\n".join(lines)


@click.command("verify")
@click.option("--budget", type=click.Choice(BUDGETS), default="quick", show_default=True,
              help="How hard to look: quick (CI; about a minute on 2 cores), standard, thorough.")
@click.option("--method", "methods", multiple=True, metavar="METHOD[,METHOD...]",
              help=f"Run only these methods (repeatable or comma-separated): "
                   f"{', '.join(METHODS)}.")
@click.option("--fail-fast", is_flag=True,
              help="Stop at the first failing row (the mutation-testing driver uses it).")
@click.option("--no-shrink", is_flag=True,
              help="Report the first counterexample found, without minimising it.")
@click.option("--deterministic", is_flag=True,
              help="Derandomise the campaigns: the same inputs on every run.")
@click.option("--jobs", default="auto", show_default=True, metavar="N|auto",
              help="Processes to share the work over: auto is the CPUs, at most 4. "
                   "With --fail-fast, one.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(budget: str, methods: tuple[str, ...], fail_fast: bool, no_shrink: bool,
            deterministic: bool, jobs: str, as_json: bool) -> None:
    """Run kernel facts, proofs, contracts and stateful campaigns; exit 0 only if
    everything holds."""
    start = time.perf_counter()
    chosen = [m.strip() for group in methods for m in group.split(",") if m.strip()]
    known = {m.lower(): m for m in METHODS}
    unknown = [m for m in chosen if m.lower() not in known]
    if unknown:
        click.echo(f"error: --method {unknown[0]!r} is not one of {', '.join(METHODS)}",
                   err=True)
        sys.exit(2)
    chosen = [known[m.lower()] for m in chosen]
    show = None if as_json else (lambda message: click.echo(message, err=True))
    if jobs != "auto" and not (jobs.isdigit() and int(jobs) >= 1):
        click.echo(f"error: --jobs {jobs!r} is not a positive number or auto", err=True)
        sys.exit(2)
    processes = min(os.cpu_count() or 1, 4) if jobs == "auto" else int(jobs)
    rows = verify(budget, chosen or None, progress=show, shrink=not no_shrink,
                  deterministic=deterministic, fail_fast=fail_fast, jobs=processes)
    ok = all(r.ok for r in rows)
    if as_json:
        click.echo(json.dumps({"budget": budget, "ok": ok,
                               "seconds": round(time.perf_counter() - start, 2),
                               "rows": [r.to_json() for r in rows]}, indent=1))
    else:
        click.echo(_table(rows))
        for r in rows:
            if not r.ok:
                click.echo(f"\n{r.method} {r.invariant}: {r.status}\n{r.detail}")
        click.echo(f"\n{'ALL HOLD' if ok else 'FAILED'} in {time.perf_counter() - start:.1f} s "
                   f"(budget {budget})")
    sys.exit(0 if ok else 1)
