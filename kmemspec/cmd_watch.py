"""`kmemspec watch -- COMMAND`: check the kernel's kmem/vmalloc events live."""

from __future__ import annotations

import json
import sys

import click

from kmemspec.cmd_trace import TRACE_PROFILES, _summary, limitations
from kmemspec.trace.check import MAX_ERRORS, TraceChecker, compiled_available
from kmemspec.trace.record import BUFFER_KB, DEFAULT_EVENTS, RecordError


def make_checker(engine: str, profile, strict: bool, max_errors: int):
    if engine == "auto":
        engine = "compiled" if compiled_available() else "python"
    if engine == "compiled":
        from kmemspec.trace.compiled import CompiledChecker
        return CompiledChecker(profile, strict, max_errors), engine
    return TraceChecker(profile, strict, max_errors), engine


class LivePrinter:
    """Prints each violation (and input error) once, as soon as the checker has it."""

    def __init__(self, out):
        self.out, self.shown_v, self.shown_e, self.lines = out, 0, 0, 0

    def __call__(self, checker, lines: int) -> None:
        self.lines = lines
        if hasattr(checker, "_drain"):
            checker._drain()
        for f in checker.violations[self.shown_v:]:
            self.out(f"violation: line {f.line}: {f.invariant}: {f.event}: {f.message}")
        self.shown_v = len(checker.violations)
        for e in checker.errors[self.shown_e:]:
            self.out(f"error: line {e['line']}: {e['message']}")
        self.shown_e = len(checker.errors)


def report_lines(w: dict, checker, lines: int) -> list[str]:
    rb = w["ring_buffer"]
    secs = max(w["seconds"], 1e-9)
    return [
        f"watched {w['seconds']:.1f} s: {checker.events} events seen "
        f"({checker.events / secs:,.0f} events checked/s over the run; the checker used "
        f"{w['cpu_seconds']:.1f} s CPU ({w['system_seconds']:.1f} s of it in the kernel, "
        "formatting trace_pipe): "
        f"{checker.events / max(w['cpu_seconds'], 1e-9):,.0f} events per CPU second), "
        f"{lines} lines",
        f"kernel ring buffer: overrun {rb['overrun']}, dropped events "
        f"{rb['dropped events']} (events lost before they were read"
        + (f"; [LOST] markers: {checker.lost} events" if checker.lost else "") + ")",
        f"checker side: {w['bytes']} bytes read from trace_pipe, {w['bytes']} checked: "
        "0 dropped",
    ]


@click.command("watch", context_settings={"ignore_unknown_options": True})
@click.option("--events", default=",".join(DEFAULT_EVENTS), show_default=True,
              help="Comma-separated trace events (system:name).")
@click.option("--buffer-kb", default=4 * BUFFER_KB, show_default=True,
              help="Per-CPU ring buffer size of the tracing instance (larger than "
                   "record's: it absorbs the bursts the live checker falls behind on).")
@click.option("--engine", type=click.Choice(["auto", "python", "compiled"]), default="auto",
              show_default=True, help="The checker (see `kmemspec trace --engine`).")
@click.option("--nice", default=-10, show_default=True,
              help="Priority of the checking process while COMMAND runs (COMMAND keeps "
                   "its own): below 0 helps it keep up on a loaded machine.")
@click.option("--strict", is_flag=True, help="Warnings count as violations.")
@click.option("--json", "as_json", is_flag=True, help="The final report as JSON.")
@click.option("--profile", type=click.Choice(sorted(TRACE_PROFILES)),
              default="linux-6.x-x86_64", show_default=True)
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def command(events: str, buffer_kb: int, engine: str, nice: int, strict: bool, as_json: bool,
            profile: str, cmd: tuple[str, ...]) -> None:
    """Run COMMAND (as root) while checking the kernel's kmem and vmalloc trace
    events as they happen: violations are printed at once, the end is the report of
    `kmemspec trace`, with the events seen, events checked per second, and the
    events dropped by the kernel's ring buffer and (0) by the checker."""
    from kmemspec.trace.watch import watch

    selected = tuple(e.strip() for e in events.split(",") if e.strip())
    checker, engine = make_checker(engine, TRACE_PROFILES[profile], strict, MAX_ERRORS)
    printer = LivePrinter(lambda s: click.echo(s, err=True))
    try:
        w = watch(list(cmd), checker, selected, buffer_kb, on_chunk=printer, nice=nice)
    except RecordError as exc:
        click.echo(f"kmemspec watch: {exc}", err=True)
        sys.exit(2)
    printer(checker, printer.lines)
    extra = report_lines(w, checker, printer.lines)
    if as_json:
        report = checker.to_json()
        report["profile"] = {"name": profile, "from": "--profile"}
        report["limitations"] = limitations(checker)
        report["watch"] = {"seconds": w["seconds"], "cpu_seconds": w["cpu_seconds"],
                           "user_seconds": w["user_seconds"],
                           "system_seconds": w["system_seconds"],
                           "engine": engine,
                           "events_per_second": checker.events / max(w["seconds"], 1e-9),
                           "command_status": w["status"], "bytes_read": w["bytes"],
                           "bytes_checked": w["bytes"], "checker_dropped": 0,
                           "ring_buffer": w["ring_buffer"]}
        click.echo(json.dumps(report, indent=1))
    else:
        click.echo(_summary("watch", checker, f"profile: {profile} (--profile); engine: "
                            f"{engine}"))
        click.echo("\n".join(extra))
    sys.exit(checker.exit_code)
