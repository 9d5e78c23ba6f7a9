"""Check the kernel's kmem/vmalloc events live, while a command runs (`kmemspec watch`).

The events are read from `trace_pipe` of a tracefs instance of our own (set up as
`kmemspec record` sets it up: trace/record.py) and fed, as they arrive, to the same
checker `kmemspec trace` uses: its state is bounded by the live blocks, objects and
areas, and its findings by KEEP_PER_GROUP per group, so memory does not grow with
the length of the run. Violations are printed as they are found; the end is the
report of `trace`.

Drops are counted on both sides of the pipe: the kernel's ring buffer (per-CPU
`overrun` and `dropped events` in instances/NAME/per_cpu/cpuN/stats: events lost
because the buffer was full before we read them; they also appear in the stream as
`[LOST n EVENTS]`, which the checker reports as tracing gaps), and ours: every byte
read from the pipe is given to the checker (bytes read == bytes checked), so the
checker's side drops nothing by construction, and the report says so with the counts.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import subprocess
import time

from kmemspec.trace.record import (BUFFER_KB, DEFAULT_EVENTS, RecordError, _write,
                                   find_tracefs)


class PipeStream:
    """A binary stream over a non-blocking trace_pipe: read() and readlines() return
    what has arrived (waiting for some), and b"" / [] once `done()` says the command
    has ended and the pipe is empty. Counts the bytes it hands out."""

    def __init__(self, fd: int, done, poll: float = 0.1):
        self.fd, self.done, self.poll = fd, done, poll
        self.bytes = 0
        self._carry = b""
        self._closing = False

    def _chunk(self, n: int) -> bytes:
        while True:
            try:
                data = os.read(self.fd, n)
            except BlockingIOError:
                data = None
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    data = None
                else:
                    raise
            if data:
                self.bytes += len(data)
                return data
            if self._closing:
                return b""
            if self.done():
                self._closing = True        # drain what is left, then end
                continue
            select.select([self.fd], [], [], self.poll)

    def read(self, n: int = -1) -> bytes:
        return self._chunk(1 << 20 if n is None or n < 0 else min(n, 1 << 20))

    def readlines(self, hint: int = -1) -> list[bytes]:
        while True:
            data = self._chunk(1 << 20)
            if not data:
                if self._carry:
                    last, self._carry = self._carry, b""
                    return [last]
                return []
            data = self._carry + data
            cut = data.rfind(b"\n") + 1
            if cut:
                self._carry = data[cut:]
                return data[:cut].splitlines(keepends=True)
            self._carry = data


def ring_buffer_stats(inst: str) -> dict[str, int]:
    """Sums over the CPUs of the instance's per_cpu/cpuN/stats: overrun, dropped
    events, entries (still in the buffer) and read events."""
    out = {"overrun": 0, "dropped events": 0, "entries": 0, "read events": 0}
    base = os.path.join(inst, "per_cpu")
    for cpu in sorted(os.listdir(base)):
        try:
            with open(os.path.join(base, cpu, "stats")) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k.strip() in out:
                        out[k.strip()] += int(v.split()[0])
        except (OSError, ValueError):
            continue
    return out


def watch(command: list[str], checker, events=DEFAULT_EVENTS, buffer_kb: int = BUFFER_KB,
          on_chunk=None, nice: int = 0) -> dict:
    """Run `command` while checking the kernel's events with `checker` (a
    TraceChecker or CompiledChecker, not yet run). on_chunk(checker, lines) is
    called after each chunk checked. Returns {status, seconds (wall), cpu_seconds
    (this process: reading and checking; system time is mostly the kernel formatting
    the events as text for trace_pipe), user_seconds, system_seconds, bytes,
    ring_buffer}. nice: this process's priority while the command runs (the command
    keeps its own)."""
    if not command:
        raise RecordError("no command given (usage: kmemspec watch -- COMMAND ...)")
    if os.geteuid() != 0:
        raise RecordError("watching needs root (tracefs is writable by root only)")
    root = find_tracefs()
    inst = os.path.join(root, "instances", f"kmemspec-{os.getpid()}")
    for ev in events:
        system, _, name = ev.partition(":")
        if not os.path.isdir(os.path.join(root, "events", system, name)):
            raise RecordError(f"this kernel has no trace event {ev}")
    try:
        os.mkdir(inst)
    except OSError as exc:
        raise RecordError(f"cannot create tracefs instance {inst}: {exc.strerror}") from None
    fd = -1
    try:
        # as trace/record.py: stopped while set up, real pointers, one clock
        _write(os.path.join(inst, "tracing_on"), "0")
        _write(os.path.join(inst, "options", "hash-ptr"), "0")
        _write(os.path.join(inst, "trace_clock"), "global")
        _write(os.path.join(inst, "buffer_size_kb"), str(buffer_kb))
        _write(os.path.join(inst, "set_event"), "\n".join(events) + "\n")
        fd = os.open(os.path.join(inst, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
        _write(os.path.join(inst, "tracing_on"), "1")
        t0 = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        try:
            proc = subprocess.Popen(command)
        except FileNotFoundError:
            raise RecordError(f"command not found: {command[0]}") from None
        if nice:
            # the reader before the command: on a loaded machine it must keep up
            # with the kernel's ring buffer (the command keeps its own priority)
            try:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
            except OSError:
                pass
        state = {"stopped": False}

        def done() -> bool:
            if not state["stopped"] and proc.poll() is not None:
                _write(os.path.join(inst, "tracing_on"), "0")
                state["stopped"] = True
                return False            # one more pass for what came before the stop
            return state["stopped"]

        stream = PipeStream(fd, done)
        try:
            progress = (lambda n: on_chunk(checker, n)) if on_chunk else None
            checker.run(stream, progress)
        finally:
            if proc.poll() is None:
                proc.kill()
            status = proc.wait()
        seconds = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
        stats = ring_buffer_stats(inst)
        return {"status": status, "seconds": seconds, "cpu_seconds": user + system,
                "user_seconds": user, "system_seconds": system,
                "bytes": stream.bytes, "ring_buffer": stats}
    finally:
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
