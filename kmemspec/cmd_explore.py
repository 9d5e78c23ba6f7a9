"""`kmemspec explore QUERY`: the shortest call sequence reaching a condition."""

from __future__ import annotations

import json
import sys

import click


@click.command("explore")
@click.argument("query", required=False)
@click.option("--predicate", metavar="MODULE:FUNCTION",
              help="Custom query: function(machine) -> bool.")
@click.option("--order", type=click.IntRange(0, 10), default=2, show_default=True,
              help="fragmentation: the order that must fail.")
@click.option("--free-percent", type=click.IntRange(0, 100), default=50, show_default=True,
              help="fragmentation: at least this share of frames free.")
@click.option("--min-colour", type=click.IntRange(0, 64), default=2, show_default=True,
              help="colour-reuse: only caches with at least this many colours.")
@click.option("--size", "vm_size", type=click.IntRange(1, 1 << 30), default=40 << 20,
              show_default=True, help="vmalloc-exhausted: the vmalloc size that must fail.")
@click.option("--frames", type=click.IntRange(4, 256), default=None,
              help="Low-memory frames of the explored machine [fragmentation: 16, "
                   "colour-reuse: 32; vmalloc-exhausted: fixed at 229376].")
@click.option("--max-calls", type=click.IntRange(1, 30), default=8, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the scenario here.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(query, predicate, order, free_percent, min_colour, vm_size, frames, max_calls,
            output, as_json):
    """Search call sequences on a small machine for QUERY (fragmentation,
    colour-reuse, vmalloc-exhausted) or --predicate; print the shortest as a scenario
    for `kmemspec run`. Exit 1 when found, 0 when not reachable within the bound, 2 on
    bad input."""
    from .proofs import explore as ex

    def bad(message):
        if as_json:
            click.echo(json.dumps({"error": message}))
        else:
            click.echo(f"kmemspec explore: {message}", err=True)
        sys.exit(2)

    if (query is None) == (predicate is None):
        bad("give a QUERY (fragmentation, colour-reuse, vmalloc-exhausted) or "
            "--predicate MODULE:FUNCTION")
    if query is not None:
        if query in ex.PENDING:
            bad(f"{query}: {ex.PENDING[query]}")
        if query not in ex.QUERIES:
            bad(f"unknown query {query!r} (known: {', '.join(ex.QUERIES)})")
        if query == "fragmentation":
            reached = ex.fragmentation(order, free_percent)
        elif query == "colour-reuse":
            reached = ex.colour_reuse(min_colour)
        else:
            if frames is not None:
                bad("vmalloc-exhausted runs on a fixed machine (896 MiB of low memory, "
                    "the most i386 allows, so that the vmalloc range is smallest: "
                    "112 MiB); drop --frames")
            reached = ex.vmalloc_exhausted(vm_size)
    else:
        try:
            reached = ex.load_predicate(predicate)
        except ValueError as exc:
            bad(str(exc))
    try:
        found = ex.explore(reached, phys_pages=frames, max_calls=max_calls)
    except Exception as exc:         # a custom predicate may raise anything
        bad(f"exploration failed: {exc}")
    if found is None:
        msg = f"not reachable within {max_calls} calls on {frames or 'the default'} frames"
        click.echo(json.dumps({"found": False, "message": msg}) if as_json else msg)
        sys.exit(0)
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(found.jsonl())
    if as_json:
        click.echo(json.dumps({"found": True, "calls": len(found.calls),
                               "explored": found.explored, "scenario": found.scenario}))
    else:
        click.echo(f"# shortest sequence: {len(found.calls)} calls "
                   f"({found.explored} states explored)")
        click.echo(found.jsonl(), nl=False)
    sys.exit(1)
