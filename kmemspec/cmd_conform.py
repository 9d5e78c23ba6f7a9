"""`kmemspec conform TARGET`: check another allocator implementation against the spec."""

from __future__ import annotations

import json
import os
import sys

import click

from .conform.adapter import TargetError, load_target
from .conform.check import MODES
from .conform.ctypes_adapter import ABIError
from .conform.isolate import AdapterFault, make_driver
from .conform.stateful import check_conformance


def _fail_usage(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": message}))
    else:
        click.echo(f"kmemspec conform: {message}", err=True)
    sys.exit(2)


@click.command("conform")
@click.argument("target")
@click.option("--mode", type=click.Choice(MODES), default="refine", show_default=True,
              help="strict: the model's Linux choices; refine: any answer the spec allows.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--examples", type=click.IntRange(1, 100000), default=200, show_default=True,
              help="Hypothesis examples (call sequences) to try.")
@click.option("--seed", type=int, default=None, help="Random seed (default: derandomized).")
@click.option("--steps", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Calls per sequence at most.")
@click.option("--timeout", type=click.FloatRange(0.01, 600), default=2.0, show_default=True,
              help="Seconds a single call may take before it counts as a hang.")
@click.option("--no-isolate", is_flag=True,
              help="Run a Python target in this process (faster; a crash or hang "
                   "then stops the checker).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="kmemspec-conform",
              show_default=True, help="Where a divergence's scenario and picture go.")
def command(target: str, mode: str, as_json: bool, examples: int, seed: int | None,
            steps: int, timeout: float, no_isolate: bool, out_dir: str) -> None:
    """Check TARGET (module:factory, file.py:factory, or a kms.h shared library .so)
    against the page allocator spec. Exit 0 if it conforms, 1 on a divergence (the
    minimal call sequence is written as a scenario with an SVG of the model state),
    2 on bad input."""
    try:
        loaded = load_target(target)
    except (TargetError, ABIError) as exc:
        _fail_usage(str(exc), as_json)
    isolate = not no_isolate or loaded.spec.endswith(".so")
    probe = make_driver(loaded.factory, isolate=isolate, timeout=max(timeout, 10.0))
    try:
        info = probe.reset()
    except AdapterFault as exc:
        _fail_usage(f"{target}: making the adapter failed: {exc}", as_json)
    finally:
        probe.close()
    parts = info["parts"]
    pending = [p for p in parts if p != "page"]
    if "page" not in parts:
        _fail_usage(f"{target}: implements no page allocator (init, alloc_pages, "
                    f"free_pages); parts found: {', '.join(parts) or 'none'} -- the "
                    "object and vmalloc checks are pending (model layers not yet in)", as_json)
    report = check_conformance(loaded.factory, mode=mode, max_examples=examples, seed=seed,
                               isolate=isolate, timeout=timeout, name=loaded.name,
                               step_count=steps)
    summary = {"target": target, "mode": mode, "parts": parts,
               "introspection": "free_counts" in info["optional"],
               "examples": examples, "seed": seed,
               "pending_parts": pending}
    if report is None:
        if as_json:
            click.echo(json.dumps({**summary, "result": "conforms"}, indent=1))
        else:
            intro = ("with free_counts introspection" if summary["introspection"]
                     else "answers only (no free_counts introspection)")
            click.echo(f"{target}: conforms ({mode} mode, {examples} examples, {intro})")
            if pending:
                click.echo(f"  parts not checked yet: {', '.join(pending)} (model layers pending)")
        sys.exit(0)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in loaded.name)
    try:
        os.makedirs(out_dir, exist_ok=True)
        scenario_path = os.path.join(out_dir, f"{safe}-{mode}.jsonl")
        svg_path = os.path.join(out_dir, f"{safe}-{mode}.svg")
        with open(scenario_path, "w", encoding="utf-8") as handle:
            handle.write(report.scenario())
        with open(svg_path, "w", encoding="utf-8") as handle:
            handle.write(report.svg())
        report.files = {"scenario": scenario_path, "picture": svg_path}
    except OSError as exc:
        click.echo(f"kmemspec conform: cannot write the report to {out_dir}: {exc}", err=True)
    if as_json:
        click.echo(json.dumps({**summary, **report.to_json()}, indent=1))
    else:
        click.echo(report.text())
        if report.files:
            click.echo(f"  replay:   kmemspec run {report.files['scenario']}")
    sys.exit(1)
