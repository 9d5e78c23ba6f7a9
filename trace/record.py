"""Record a Linux ftrace trace of the kmem and vmalloc events while a command runs.

The recording uses its own tracefs instance (instances/<name>): its buffer, event
selection, clock and options are private, so the system's main trace buffer and
whatever another tool traces there are left alone, and removing the instance
restores everything. Linux 6.x kernel/trace/trace.c: instance_mkdir / instance_rmdir.
"""

from __future__ import annotations

import errno
import os
import select
import shlex
import subprocess
import threading
import time

# The events the checker models (spec/trace.md, "Events").
DEFAULT_EVENTS = (
    "kmem:mm_page_alloc",
    "kmem:mm_page_free",
    "kmem:mm_page_free_batched",
    "kmem:mm_page_alloc_zone_locked",
    "kmem:mm_page_pcpu_drain",
    "kmem:kmalloc",
    "kmem:kfree",
    "kmem:kmem_cache_alloc",
    "kmem:kmem_cache_free",
    "vmalloc:alloc_vmap_area",
    "vmalloc:free_vmap_area_noflush",
    "vmalloc:purge_vmap_area_lazy",
)

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
# Per-CPU buffer size for the instance; the reader drains it while the command runs,
# so this only has to absorb bursts. Overruns appear as [LOST n EVENTS] lines.
BUFFER_KB = 32768


class RecordError(Exception):
    """Tracing is unavailable, not permitted, or the kernel refused a setting."""


def find_tracefs(mount: bool = True) -> str:
    """Return the tracefs mount point, mounting it on /sys/kernel/tracing if needed."""
    for path in TRACEFS_CANDIDATES:
        if os.path.exists(os.path.join(path, "instances")):
            return path
    if not mount:
        raise RecordError("tracefs is not mounted (looked in "
                          + ", ".join(TRACEFS_CANDIDATES) + ")")
    target = TRACEFS_CANDIDATES[0]
    if not os.path.isdir(target):
        raise RecordError(f"{target} does not exist: this kernel has no tracefs "
                          "(CONFIG_TRACING) or /sys is not mounted")
    try:
        subprocess.run(["mount", "-t", "tracefs", "nodev", target],
                       check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise RecordError("tracefs is not mounted and the mount command is missing") from None
    except subprocess.CalledProcessError as exc:
        why = exc.stderr.strip() or f"exit status {exc.returncode}"
        raise RecordError(f"cannot mount tracefs on {target}: {why} "
                          "(recording needs root)") from None
    if not os.path.exists(os.path.join(target, "instances")):
        raise RecordError(f"mounted tracefs on {target} but it has no instances/ directory")
    return target


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except PermissionError:
        raise RecordError(f"not permitted to write {path} (recording needs root)") from None
    except OSError as exc:
        raise RecordError(f"the kernel refused {value.strip()!r} in {path}: "
                          f"{exc.strerror}") from None


def _drain(fd: int, out, stop: threading.Event) -> None:
    """Copy trace_pipe to `out` until `stop` is set and the pipe is empty."""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.1)
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            chunk = None
        if chunk:
            out.write(chunk)
        elif stop.is_set():
            return
        elif not ready:
            continue
        else:
            # select says readable but nothing came: trace_pipe wakes readers on any
            # buffer activity; do not spin.
            time.sleep(0.01)


def _one_line(text: str) -> str:
    """text with its control characters written as escapes (\\n, \\t, \\x1b, ...):
    a header line must stay one line, or `trace` reads the rest as broken events."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def record_header(command: list[str], events) -> bytes:
    """The comment lines a recording begins with; the command as a shell would quote
    it, on one line."""
    return ("# tracer: nop\n"
            f"# kmemspec record: clock=global events={','.join(events)}\n"
            f"# command: {_one_line(shlex.join(command))}\n"
            ).encode("utf-8", "surrogateescape")


def record(command: list[str], out, events=DEFAULT_EVENTS,
           buffer_kb: int = BUFFER_KB) -> tuple[int, int]:
    """Trace `events` system-wide while `command` runs; write the text trace to `out`
    (a binary file). Return (the command's exit status, bytes written)."""
    # CHECK
    if not command:
        raise RecordError("no command given (usage: kmemspec record -- COMMAND ...)")
    if os.geteuid() != 0:
        raise RecordError("recording needs root (tracefs is writable by root only)")
    root = find_tracefs()
    inst = os.path.join(root, "instances", f"kmemspec-{os.getpid()}")
    for ev in events:
        system, _, name = ev.partition(":")
        if not os.path.isdir(os.path.join(root, "events", system, name)):
            raise RecordError(f"this kernel has no trace event {ev}")
    try:
        os.mkdir(inst)
    except PermissionError:
        raise RecordError(f"not permitted to create {inst} (recording needs root)") from None
    except OSError as exc:
        raise RecordError(f"cannot create tracefs instance {inst}: {exc.strerror}") from None
    fd = -1
    try:
        # SET UP: real pointers (hash-ptr off, or every address is a hash and nothing
        # can be checked); one clock for all CPUs, so that the merged order of a free
        # on one CPU and a reuse on another is the real one (trace_clock_local is not
        # monotonic across CPUs: Linux 6.x kernel/trace/trace_clock.c).
        # A new instance traces at once: stop it while the events are enabled one
        # by one, or the trace begins with allocations whose frees are not yet on.
        _write(os.path.join(inst, "tracing_on"), "0")
        _write(os.path.join(inst, "options", "hash-ptr"), "0")
        _write(os.path.join(inst, "trace_clock"), "global")
        _write(os.path.join(inst, "buffer_size_kb"), str(buffer_kb))
        _write(os.path.join(inst, "set_event"), "\n".join(events) + "\n")
        fd = os.open(os.path.join(inst, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
        start = out.tell() if out.seekable() else 0
        out.write(record_header(command, events))
        stop = threading.Event()
        reader = threading.Thread(target=_drain, args=(fd, out, stop), daemon=True)
        reader.start()
        _write(os.path.join(inst, "tracing_on"), "1")
        # RUN
        try:
            status = subprocess.call(command)
        except FileNotFoundError:
            raise RecordError(f"command not found: {command[0]}") from None
        finally:
            _write(os.path.join(inst, "tracing_on"), "0")
            stop.set()
            reader.join()
        size = (out.tell() - start) if out.seekable() else 0
        return status, size
    finally:
        # RESTORE: removing the instance drops its buffer, events and options.
        if fd >= 0:
            os.close(fd)
        for _ in range(50):
            try:
                os.rmdir(inst)
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    break
                time.sleep(0.1)
