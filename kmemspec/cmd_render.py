"""`kmemspec render SCENARIO -o OUT.svg`: a picture of the state a scenario ends in."""

from __future__ import annotations

import sys

import click

from .conform.render import parse_window, render_svg
from .scenario import ScenarioError, parse_file, run_scenario


def render_scenario_file(path: str, window: str | None = None) -> str:
    """Run the scenario at `path` on the model and return the SVG of its final state.

    A scenario stopped by a misuse or a broken invariant is drawn as it stood there.
    Raises ScenarioError for bad input, ValueError for a bad window.
    """
    run = run_scenario(parse_file(path), check_every_step=False)
    start, end = parse_window(run.machine, window)
    return render_svg(run.machine, start=start, end=end, title=f"{path}: final state")


@click.command("render")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="-",
              show_default=True, help="Where to write the SVG ('-' for stdout).")
@click.option("--window", default=None, metavar="START:END|ZONE",
              help="Draw only these pfns, or one zone (e.g. Normal).")
def command(scenario: str, output: str, window: str | None) -> None:
    """Draw the model state a SCENARIO ends in as SVG: frames coloured by role
    (reserved, free by order, allocated, slab, vmalloc), block outlines, buddyinfo,
    vm areas with their guard pages. Exit 2 on bad input."""
    try:
        svg = render_scenario_file(scenario, window)
    except ScenarioError as exc:
        message = f"{scenario}: {exc}" if exc.line else str(exc)
        click.echo(f"kmemspec render: {message}", err=True)
        sys.exit(2)
    except ValueError as exc:
        click.echo(f"kmemspec render: {exc}", err=True)
        sys.exit(2)
    if output == "-":
        click.echo(svg, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(svg)
    except OSError as exc:
        click.echo(f"kmemspec render: cannot write {output}: {exc.strerror}", err=True)
        sys.exit(2)
    click.echo(f"wrote {output}", err=True)
