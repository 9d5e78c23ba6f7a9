"""`kmemspec view SCENARIO -o view.html`: the scenario step by step, in one HTML file.

The file is self-contained (no network): the picture model (conform/picture.py) of
the state after boot and, for each step, the call, its result, the invariants' status
and the picture's diff to the step before, inlined as JSON; the page's script keeps the
current picture, applies a diff to step forward and undoes it to step back.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from importlib import resources

import click

from .conform import picture as pic
from .conform.render import parse_window
from .scenario import ScenarioError, parse_file, run_scenario


def view_data(path: str, *, window: str | None = None, check_every_step: bool = True,
              start_step: int = 0) -> dict:
    """Run the scenario at `path` and collect what the page shows (see module doc)."""
    scenario = parse_file(path)
    data: dict = {"title": path, "boot": dataclasses.asdict(scenario.config), "steps": [], "start": start_step,
                  "colours": {"roles": pic.ROLE_COLOURS, "free": pic.FREE_SHADES,
                              "names": pic.ROLE_NAMES, "order": list(pic.ROLES)}}
    last: dict = {}

    def on_step(machine, entry, invariants):
        nonlocal last
        now = pic.picture(machine)
        if entry is None:
            data["initial"] = now
            data["boot_inv"] = None
            start, end = parse_window(machine, window)
            if window is not None:
                data["window"] = [start or 0, end if end is not None else machine.nr_pages]
        else:
            step = {k: entry[k] for k in ("line", "op", "args", "ret", "error", "as_expected")
                    if k in entry}
            step["inv"] = (None if invariants is None else
                           {name: "broken" if found else "held"
                            for name, found in invariants.items()})
            step["d"] = pic.diff(last, now)
            data["steps"].append(step)
        last = now

    run_scenario(scenario, check_every_step=check_every_step, on_step=on_step)
    return data


def view_html(data: dict) -> str:
    """The page: kmemspec/view.html with the data inlined (no '</' can end the script)."""
    template = resources.files("kmemspec").joinpath("view.html").read_text(encoding="utf-8")
    payload = json.dumps(data, separators=(",", ":"), default=str).replace("</", "<\\/")
    title = str(data["title"]).replace("&", "&amp;").replace("<", "&lt;")
    return template.replace("__TITLE__", title).replace("__DATA__", payload)


@click.command("view")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Where to write the HTML page.")
@click.option("--window", default=None, metavar="START:END|ZONE",
              help="Show these pfns (or one zone) in the frames picture at first.")
@click.option("--check", type=click.Choice(["every-step", "end"]), default="every-step",
              show_default=True, help="When to check the invariant catalogue.")
@click.option("--step", "start_step", type=int, default=0,
              help="The step the page opens at.")
def command(scenario: str, output: str, window: str | None, check: str,
            start_step: int) -> None:
    """Write SCENARIO as one self-contained HTML page to step through: each call with
    its result and the invariants, the frames by role, buddyinfo and the blocks split
    or merged, each cache's slabs, vmalloc areas and kmap slots. Exit 2 on bad input."""
    try:
        data = view_data(scenario, window=window, check_every_step=check == "every-step",
                         start_step=start_step)
    except ScenarioError as exc:
        message = f"{scenario}: {exc}" if exc.line else str(exc)
        click.echo(f"kmemspec view: {message}", err=True)
        sys.exit(2)
    except ValueError as exc:
        click.echo(f"kmemspec view: {exc}", err=True)
        sys.exit(2)
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(view_html(data))
    except OSError as exc:
        click.echo(f"kmemspec view: cannot write {output}: {exc.strerror}", err=True)
        sys.exit(2)
    click.echo(f"wrote {output} ({len(data['steps'])} steps)", err=True)
