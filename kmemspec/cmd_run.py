"""`kmemspec run FILE`: run a scenario on the model and show results and state."""

from __future__ import annotations

import json
import sys

import click

from .scenario import ScenarioError, format_text, parse_file, run_scenario


@click.command("run")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", type=click.Choice(["every-step", "end"]), default="every-step",
              show_default=True, help="When to check the invariants.")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False), default=None,
              help="Also write an SVG picture of the final state.")
def command(file: str, as_json: bool, check: str, svg_path: str | None) -> None:
    """Run a JSON Lines scenario FILE; exit 1 if a call misuses the API or an
    invariant breaks, 2 on bad input."""
    try:
        scenario = parse_file(file)
        result = run_scenario(scenario, check_every_step=(check == "every-step"))
    except ScenarioError as exc:
        message = f"{file}: {exc}" if exc.line else str(exc)
        if as_json:
            click.echo(json.dumps({"error": {"line": exc.line, "message": message}}))
        else:
            click.echo(f"kmemspec run: {message}", err=True)
        sys.exit(2)
    if svg_path:
        from .conform.render import render_svg
        try:
            with open(svg_path, "w", encoding="utf-8") as handle:
                handle.write(render_svg(result.machine))
        except OSError as exc:
            click.echo(f"kmemspec run: cannot write {svg_path}: {exc.strerror}", err=True)
            sys.exit(2)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        click.echo(format_text(result))
    sys.exit(result.exit_code)
