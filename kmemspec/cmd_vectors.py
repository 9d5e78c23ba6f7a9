"""`kmemspec vectors OUTDIR`: export the conformance test vectors; `--replay` them."""

from __future__ import annotations

import json
import os
import sys

import click

from . import __version__
from .conform.adapter import TargetError, load_target
from .conform.ctypes_adapter import ABIError
from .conform.isolate import make_driver
from .conform.vectors import ADAPTER_RUNNERS, export, replay_vector
from .scenario import ScenarioError, parse_file, run_scenario


def replay_corpus(directory: str, target: str | None, mode: str, isolate: bool) -> dict:
    """Replay every vector of a corpus: adapter vectors (page_alloc, object, vmalloc,
    cache, highmem)
    on the target (default the model) when it implements their part, scenario vectors
    on the model through the scenario runner."""
    with open(os.path.join(directory, "index.json"), encoding="utf-8") as handle:
        index = json.load(handle)
    if index.get("format") != "kmemspec-vectors":
        raise ValueError(f"{directory}/index.json is not a kmemspec vector index")
    loaded = load_target(target or "model")
    driver = make_driver(loaded.factory, isolate=isolate)
    parts = set(driver.reset()["parts"])
    needs = {"page_alloc": "page", "object": "object", "vmalloc": "vmalloc",
             "cache": "cache", "highmem": "highmem"}
    results = []
    try:
        for entry in index["vectors"]:
            if entry["runner"] in ADAPTER_RUNNERS:
                if needs[entry["runner"]] not in parts:
                    continue
                with open(os.path.join(directory, entry["json"]), encoding="utf-8") as handle:
                    vector = json.load(handle)
                res = replay_vector(vector, driver, mode=mode)
                results.append({"vector": res.name, "ok": res.ok, "passed": res.passed,
                                "skipped": res.skipped, "failures": res.failures})
            elif target is None:
                # scenario vectors exercise the model's kernel API: the model only
                run = run_scenario(parse_file(os.path.join(directory, entry["scenario"])))
                bad = [f"step {r['step']} {r['op']}: got {r.get('error', r.get('ret'))}"
                       for r in run.results if r.get("as_expected") is False]
                bad += [f"invariant {k}: {v[0]}" for k, v in run.invariants.items() if v]
                results.append({"vector": f"{entry['runner']}/{entry['name']}",
                                "ok": run.exit_code == 0 and not bad,
                                "passed": len(run.results), "skipped": 0, "failures": bad})
    finally:
        driver.close()
    agree = sum(r["ok"] for r in results)
    return {"target": target or "model", "mode": mode, "vectors": len(results),
            "agree": agree, "results": results}


@click.command("vectors")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--replay", is_flag=True,
              help="Replay the corpus in OUTDIR instead of writing it.")
@click.option("--target", default=None,
              help="With --replay: the implementation (module:factory or .so; default "
                   "the model). Scenario vectors are replayed on the model only.")
@click.option("--mode", type=click.Choice(["strict", "refine"]), default="strict",
              show_default=True, help="With --replay: how answers are compared.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(outdir: str, replay: bool, target: str | None, mode: str, as_json: bool) -> None:
    """Export the versioned test-vector corpus (scenarios with expected results, a
    FORMAT.md with one table per runner) to OUTDIR, or --replay it against the
    model or a --target. Exit 1 on any disagreement, 2 on bad input."""
    if not replay:
        try:
            index = export(outdir, version=__version__)
        except OSError as exc:
            click.echo(f"kmemspec vectors: cannot write {outdir}: {exc}", err=True)
            sys.exit(2)
        if as_json:
            click.echo(json.dumps(index, indent=1))
        else:
            click.echo(f"wrote {len(index['vectors'])} vectors (format version "
                       f"{index['version']}) to {outdir}")
        sys.exit(0)
    try:
        summary = replay_corpus(outdir, target, mode, isolate=True)
    except (OSError, ValueError, KeyError, TargetError, ABIError, ScenarioError) as exc:
        click.echo(f"kmemspec vectors: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    else:
        for res in summary["results"]:
            status = "ok" if res["ok"] else "DISAGREES"
            extra = f" ({res['skipped']} skipped)" if res["skipped"] else ""
            click.echo(f"{res['vector']}: {status}{extra}")
            for failure in res["failures"]:
                click.echo(f"    {failure}")
        pct = 100.0 * summary["agree"] / max(summary["vectors"], 1)
        click.echo(f"{summary['agree']}/{summary['vectors']} vectors agree ({pct:.0f}%) "
                   f"on {summary['target']} ({mode})")
    sys.exit(0 if summary["agree"] == summary["vectors"] else 1)
