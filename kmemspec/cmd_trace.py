"""`kmemspec trace FILE`: check a Linux ftrace kmem/vmalloc trace against the spec."""

from __future__ import annotations

import json
import lzma
import os
import sys
import zlib

import click

from kmemspec.trace.check import MAX_ERRORS, check_stream, compiled_available
from kmemspec.trace.parse import detect_profile, open_trace
from kmemspec.trace.snapshot import (SnapshotError, compare, parse_buddyinfo,
                                             parse_zoneinfo)
from kmemspec.model.profiles import LINUX_6X_I386, LINUX_6X_X86_64

# The profiles a trace may be checked under (spec/trace.md, "Other kernels").
TRACE_PROFILES = {p.name: p for p in (LINUX_6X_X86_64, LINUX_6X_I386)}
VMALLOC_EVENTS = ("alloc_vmap_area", "free_vmap_area_noflush", "purge_vmap_area_lazy")

# Show at most this many findings of each group in the text summary.
SHOW_PER_GROUP = 5
# A progress bar is drawn for inputs at least this large, on a terminal, without --json.
PROGRESS_MIN_BYTES = 8 << 20
# --jobs auto checks inputs at least this large (or stdin) in two processes when the
# machine has two CPUs: below it, starting the second process costs more than it saves.
TWO_PROCESS_MIN_BYTES = 1 << 20
# --engine auto checks inputs at least this large (or stdin) with the compiled engine.
COMPILED_MIN_BYTES = 32 << 20


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _jobs(jobs: str, total: int, raw) -> int:
    if jobs != "auto":
        return int(jobs)
    cpus = os.cpu_count() or 1
    if cpus < 2:
        return 1
    # A second process only helps with a CPU mostly idle for it: at a 1-minute load
    # average of 1.5-1.9 on 2 CPUs two processes measured 1.5-1.7x slower than one, at
    # 1.0-1.1 (the bench itself counted) 0.83-0.95x (benches/bench_trace.py --vm).
    if _load() > cpus - 0.5:
        return 1
    return 2 if raw is None or total >= TWO_PROCESS_MIN_BYTES else 1


def _terminal() -> bool:
    return sys.stderr.isatty()


def limitations(c) -> list[str]:
    """What the trace's format (or event selection) does not let the checker see."""
    out = []
    if c.events and not any(c.by_event.get(e) for e in VMALLOC_EVENTS):
        out.append("no vmalloc events (Linux 6.1 has no events/vmalloc; or they were "
                   "not enabled): no_overlap (vmap) and vm_area_bounds not checked")
    return out


def _summary(path: str, c, profile_line: str = "", extra_limits=()) -> str:
    out = [f"{path}: {c.events} events"]
    if profile_line:
        out.append(profile_line)
    for lim in limitations(c) + list(extra_limits):
        out.append(f"limitation: {lim}")
    for name, n in c.by_event.items():
        out.append(f"  {name:28} {n:>10}")
    if c.lost:
        out.append(f"  ring buffer dropped {c.lost} events ([LOST n EVENTS] markers)")
    nviol = c.counts_of("violation")
    out.append(f"violations: {nviol}")
    for (kind, inv, cause), n in sorted(c.counts.items(), key=lambda kv: str(kv[0])):
        if kind != "violation":
            continue
        out.append(f"  {inv}" + (f" ({cause})" if cause else "") + f": {n}")
        shown = [f for f in c.violations if f.invariant == inv and f.cause == cause]
        for f in shown[:SHOW_PER_GROUP]:
            out.append(f"    line {f.line}: {f.event}: {f.message}")
    out.append(f"warnings: {c.counts_of('warning')} (explained by untraced kernel paths "
               "or tracing gaps; see spec/trace.md)")
    for (kind, inv, cause), n in sorted(c.counts.items(), key=lambda kv: str(kv[0])):
        if kind != "warning":
            continue
        out.append(f"  {cause}: {n} ({inv})")
        shown = [f for f in c.warnings if f.invariant == inv and f.cause == cause]
        for f in shown[:SHOW_PER_GROUP]:
            out.append(f"    line {f.line}: {f.event}: {f.message}")
    out.append(f"errors: {c.n_errors}" + (f" (the first {len(c.errors)} kept)"
                                            if c.n_errors > len(c.errors) else ""))
    for e in c.errors[:20]:
        out.append(f"  line {e['line']}: {e['message']}")
    return "\n".join(out)


@click.command("trace")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--strict", is_flag=True,
              help="Report what an untraced kernel path could explain as violations too.")
@click.option("--jobs", type=click.Choice(["auto", "1", "2"]), default="auto",
              show_default=True,
              help="Processes: 2 checks the object events in a second process (same "
                   "report); auto uses 2 for inputs of 1 MiB or more on 2+ CPUs "
                   "with half a CPU idle (by the 1-minute load average).")
@click.option("--engine", type=click.Choice(["auto", "python", "compiled"]), default="auto",
              show_default=True,
              help="compiled: the numba engine (one process; same report); python: the "
                   "reference engine; auto: compiled for inputs of 32 MiB or more (or "
                   "stdin) when numba imports.")
@click.option("--max-errors", type=click.IntRange(min=1), default=MAX_ERRORS,
              show_default=True,
              help="Input errors kept in the report (all are counted).")
@click.option("--profile", type=click.Choice(sorted(TRACE_PROFILES)), default=None,
              help="The traced kernel's profile (default: detected from the trace's "
                   "header or pointer width).")
@click.option("--buddyinfo-after", type=click.Path(dir_okay=False, exists=True),
              default=None, help="The kernel's /proc/buddyinfo at the trace's end: "
                                 "check the trace's live blocks against it.")
@click.option("--zoneinfo-after", type=click.Path(dir_okay=False, exists=True),
              default=None, help="The kernel's /proc/zoneinfo at the end (the zones' "
                                 "pfn ranges and managed pages, for --buddyinfo-after).")
def command(file: str, as_json: bool, strict: bool, jobs: str, engine: str, max_errors: int,
            profile: str | None, buddyinfo_after: str | None,
            zoneinfo_after: str | None) -> None:
    """Check an ftrace text trace FILE (plain, .gz, .xz, or - for stdin) of the kmem
    and vmalloc events against the linux-6.x-x86_64 or linux-6.x-i386 spec; exit 1 on violations, 2 on
    input errors (with line numbers)."""
    try:
        if profile is not None:
            why = "--profile"
        elif file == "-":
            profile, why = "linux-6.x-x86_64", "default (stdin is not probed)"
        else:
            head, _ = open_trace(file)
            try:
                with head:
                    profile, why = detect_profile(head)
            except (EOFError, UnicodeError, lzma.LZMAError, zlib.error, OSError):
                # a corrupt start: the check below reports it (exit 2)
                profile, why = "linux-6.x-x86_64", "default (the start is unreadable)"
        stream, raw = open_trace(file)
    except OSError as exc:
        click.echo(f"kmemspec trace: cannot open {file}: {exc.strerror}", err=True)
        sys.exit(2)
    bar = None
    progress = None
    total = os.fstat(raw.fileno()).st_size if raw is not None else 0
    if not as_json and raw is not None and total >= PROGRESS_MIN_BYTES and _terminal():
        bar = click.progressbar(length=total, label="checking", file=sys.stderr)
        bar.__enter__()
        done = [0]

        def progress(_lines):
            pos = raw.tell()
            bar.update(pos - done[0])
            done[0] = pos
    if engine == "auto":
        # the compiled engine for inputs where it pays: loading numba and its cache
        # costs ~0.7 s a run (and compiling, the first run after installing, ~25 s)
        big = raw is None or total >= COMPILED_MIN_BYTES
        engine = "compiled" if big and compiled_available() else "python"
    elif engine == "compiled" and not compiled_available():
        click.echo("kmemspec trace: the compiled engine needs numba (pip install numba)",
                   err=True)
        sys.exit(2)
    try:
        try:
            checker = check_stream(stream, strict=strict, profile=TRACE_PROFILES[profile],
                                   progress=progress, jobs=_jobs(jobs, total, raw),
                                   max_errors=max_errors, engine=engine)
        except Exception as exc:
            if type(exc).__name__ != "Unsupported":
                raise
            # a value the compiled state cannot hold: the reference checks the file
            if raw is None:
                click.echo(f"kmemspec trace: {exc}; check it with --engine python",
                           err=True)
                sys.exit(2)
            stream, raw = open_trace(file)
            checker = check_stream(stream, strict=strict, profile=TRACE_PROFILES[profile],
                                   progress=None, jobs=_jobs(jobs, total, raw),
                                   max_errors=max_errors, engine="python")
    except (OSError, EOFError, UnicodeError, lzma.LZMAError, zlib.error) as exc:
        # a truncated or corrupt compressed file (gzip.BadGzipFile is an OSError)
        click.echo(f"kmemspec trace: cannot read {file}: {exc}", err=True)
        sys.exit(2)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    snapshot_limits = []
    if buddyinfo_after is not None:
        try:
            with open(buddyinfo_after) as f:
                buddy = parse_buddyinfo(f.read(), TRACE_PROFILES[profile].MAX_ORDER)
            zones = None
            if zoneinfo_after is not None:
                with open(zoneinfo_after) as f:
                    zones = parse_zoneinfo(f.read())
        except (OSError, UnicodeError, SnapshotError) as exc:
            click.echo(f"kmemspec trace: {exc}", err=True)
            sys.exit(2)
        # (line 0: the state at the end of the trace)
        snapshot_limits = compare(checker, buddy, zones, 0)
    if as_json:
        report = checker.to_json()
        report["profile"] = {"name": profile, "from": why}
        report["limitations"] = limitations(checker) + snapshot_limits
        click.echo(json.dumps(report, indent=1))
    else:
        click.echo(_summary(file, checker, f"profile: {profile} ({why})",
                            snapshot_limits))
    sys.exit(checker.exit_code)
