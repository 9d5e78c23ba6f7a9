"""`kmemspec record -- COMMAND`: trace kmem/vmalloc events while COMMAND runs."""

from __future__ import annotations

import gzip
import lzma
import sys

import click

from kmemspec.trace.record import DEFAULT_EVENTS, RecordError, record


def _open_out(path: str):
    if path == "-":
        return sys.stdout.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "wb")
    if path.endswith(".xz"):
        return lzma.open(path, "wb")
    return open(path, "wb")


@click.command("record", context_settings={"ignore_unknown_options": True})
@click.option("--events", default=",".join(DEFAULT_EVENTS), show_default=True,
              help="Comma-separated trace events (system:name).")
@click.option("-o", "--output", default="trace.txt", show_default=True,
              help="Output file (.gz/.xz compress; - for stdout).")
@click.option("--buffer-kb", default=32768, show_default=True,
              help="Per-CPU ring buffer size of the tracing instance.")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def command(events: str, output: str, buffer_kb: int, cmd: tuple[str, ...]) -> None:
    """Record the kernel's kmem and vmalloc trace events (system-wide) while
    COMMAND runs, as root, into a text trace that `kmemspec trace` checks.

    Uses a private tracefs instance (hash-ptr off, global clock) and removes it
    afterwards, so the system's tracing settings are left as they were."""
    selected = tuple(e.strip() for e in events.split(",") if e.strip())
    try:
        out = _open_out(output)
    except OSError as exc:
        click.echo(f"kmemspec record: cannot open {output}: {exc.strerror}", err=True)
        sys.exit(2)
    try:
        with out if output != "-" else open("/dev/null", "rb"):
            status, _ = record(list(cmd), out, selected, buffer_kb)
    except RecordError as exc:
        click.echo(f"kmemspec record: {exc}", err=True)
        sys.exit(2)
    if output != "-":
        click.echo(f"kmemspec record: trace saved to {output}"
                   + (f" (command exited with status {status})" if status else ""),
                   err=True)
