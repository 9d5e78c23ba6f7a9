"""`kmemspec prove`: discharge every (invariant, operation) proof obligation with Z3."""

from __future__ import annotations

import json
import sys
import time

import click


def _format_counterexample(cx: dict) -> list[str]:
    if "lines" in cx:                     # the slab and vmalloc provers' own layout
        return [f"      {line}" for line in cx["lines"]]
    lines = ["      zones: " + ", ".join(f"{z}=[{v['start']:#x}, {v['end']:#x})"
                                        for z, v in cx["zones"].items())
             + f"; nr_pages {cx['nr_pages']:#x}"]
    if cx.get("params"):
        lines.append("      params: " + ", ".join(f"{k}={v:#x}" for k, v in cx["params"].items()))
    if "freeing" in cx:
        before, after = cx["freeing"]
        lines.append(f"      in flight: before {before}, after {after}")
    for pfn, frame in cx["frames"].items():
        lines.append(f"      pfn {pfn:#07x} ({', '.join(frame['names'])})")
        lines.append(f"          before: {frame['before']}")
        lines.append(f"          after:  {frame['after']}")
    if "list L*" in cx:
        c = cx["list L*"]
        lines.append(f"      per-CPU list {c['key']:#x}: count {c['count'][0]} -> {c['count'][1]}"
                     f", low {c['low']}, high {c['high']}, batch {c['batch']}")
    if "counters" in cx:
        c = cx["counters"]
        lines.append(f"      zone {c['zone*']} order {c['order*']}: nr_free {c['nr_free'][0]} -> "
                     f"{c['nr_free'][1]}, free_pages {c['free_pages'][0]} -> {c['free_pages'][1]}")
    return lines


@click.command("prove")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--layer", "layer_names", multiple=True, metavar="LAYER",
              type=click.Choice(["buddy", "pcp", "slab", "vmalloc"]),
              help="Only this layer's obligations (repeatable; default: all four).")
@click.option("--invariant", "invariants", multiple=True, metavar="NAME",
              help="Only this invariant (repeatable).")
@click.option("--operation", "operations", multiple=True, metavar="OP",
              help="Only this operation (repeatable).")
@click.option("--seed-bug", "seed_bug", metavar="BUG",
              help="Prove a deliberately broken encoding (see --list-bugs).")
@click.option("--list-bugs", is_flag=True, help="List the seeded bugs and exit.")
@click.option("--lemmas/--no-lemmas", default=True, show_default=True,
              help="Also prove the parameter lemmas (buddy arithmetic, colouring, "
                   "translations).")
@click.option("--timeout", "timeout_s", type=click.IntRange(1, 3600), default=60,
              show_default=True,
              help="Z3 budget per query, in seconds of a typical machine: a limit on Z3's "
                   "work (rlimit, 5 M units per second), the same at any load; wall time "
                   "is capped at 10 times it.")
def command(as_json, layer_names, invariants, operations, seed_bug, list_bugs, lemmas,
            timeout_s):
    """Prove boot => Inv and Inv(s) and cond and Op(s, s') => Inv(s') for every
    invariant and operation of the buddy, per-CPU list (pcp), slab and vmalloc/pkmap
    encodings; exit 1 if
    one is refuted or unknown."""
    from .proofs.layers import layers, prove_layers

    all_layers = layers()
    if list_bugs:
        for layer in all_layers.values():
            for name, what in layer.seeded_bugs.items():
                click.echo(f"{layer.name:8s} {name:30s} {what}")
        return
    chosen = [all_layers[n] for n in (layer_names or all_layers)]
    known_invs = [i for layer in chosen for i in layer.invariants]
    known_ops = [o for layer in chosen for o in layer.operations]
    for name in invariants:
        if name not in known_invs:
            _bad(as_json, f"unknown invariant {name!r} (known: "
                          f"{', '.join(dict.fromkeys(known_invs))})")
    for name in operations:
        if name not in known_ops:
            _bad(as_json, f"unknown operation {name!r} (known: "
                          f"{', '.join(dict.fromkeys(known_ops))})")
    if seed_bug and not any(seed_bug in layer.seeded_bugs for layer in chosen):
        _bad(as_json, f"unknown seeded bug {seed_bug!r} (see --list-bugs)")

    start = time.perf_counter()
    progress = None
    if not as_json:
        def progress(row):
            click.echo(f"{row.layer:8s} {row.invariant:23s} {row.operation:21s} "
                       f"{row.status:8s} {row.seconds:7.2f}s  {row.scope}")
            if row.status == "refuted":
                d = row.detail
                case = f"; case {d['case']}" if d.get("case") else ""
                click.echo(f"    smallest failing conjunct: {d['smallest_failing_conjunct']} "
                           f"(failing: {', '.join(d['failing_conjuncts'])}{case})")
                for line in _format_counterexample(d["counterexample"]):
                    click.echo(line)
            elif row.status == "unknown":
                click.echo(f"    {row.detail}")
    rows = prove_layers(list(layer_names) or None, list(invariants) or None,
                        list(operations) or None, seed_bug, timeout_s * 1000, progress)
    lemma_rows = []
    if lemmas:
        from .proofs.lemmas import prove_lemmas
        lemma_rows = prove_lemmas()
        if not as_json:
            for row in lemma_rows:
                if row.status not in ("proved", "checked"):
                    click.echo(f"lemma {row.lemma}: {row.status} ({row.scope})")
            ok = sum(r.status in ("proved", "checked") for r in lemma_rows)
            click.echo(f"{ok}/{len(lemma_rows)} parameter lemmas proved or checked")
    total = time.perf_counter() - start
    bad = [r for r in rows if r.status != "proved"]
    bad += [r for r in lemma_rows if r.status not in ("proved", "checked")]
    if as_json:
        click.echo(json.dumps({"obligations": [r.to_json() for r in rows],
                               "lemmas": [r.to_json() for r in lemma_rows],
                               "total_seconds": round(total, 2),
                               "seed_bug": seed_bug,
                               "proved": sum(r.status == "proved" for r in rows),
                               "total": len(rows)}, indent=1))
    else:
        click.echo(f"{sum(r.status == 'proved' for r in rows)}/{len(rows)} obligations "
                   f"proved in {total:.1f}s")
    sys.exit(1 if bad else 0)


def _bad(as_json: bool, message: str):
    if as_json:
        click.echo(json.dumps({"error": message}))
    else:
        click.echo(f"kmemspec prove: {message}", err=True)
    sys.exit(2)
