"""Run an implementation where its crashes and hangs cannot take the checker down.

`IsolatedDriver` keeps the adapter in a child process and talks to it over a pipe,
one call at a time, each with a time limit. A child that dies is reported as
`AdapterCrashed` (with the signal), one that does not answer in time is killed and
reported as `AdapterHung`; the next `reset()` starts a fresh child. `InProcessDriver`
has the same interface without the protection, for fast runs of trusted Python code.

Both turn an exception raised by the adapter into `AdapterRaised`, keeping its type,
message and `rule` (the model's KernelBug names the rule it enforced).
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import tempfile
import signal as _signal
from typing import Any, Callable

from .adapter import parts_of

__all__ = ["AdapterFault", "AdapterCrashed", "AdapterHung", "AdapterRaised",
           "InProcessDriver", "IsolatedDriver", "make_driver", "sequences_before_last",
           "run_prefix"]

_OPTIONAL = ("free_counts", "ksize", "vmalloc_to_pfn", "slab_layout", "pkmap_count",
             "supported_pages", "block_order")


class AdapterFault(Exception):
    """The implementation misbehaved as a program (not as an allocator)."""


class AdapterCrashed(AdapterFault):
    def __init__(self, exitcode: int | None):
        self.exitcode = exitcode
        if exitcode is not None and exitcode < 0:
            try:
                name = _signal.Signals(-exitcode).name
            except ValueError:
                name = "unknown"
            text = f"crashed (signal {-exitcode}, {name})"
        else:
            text = f"crashed (exit status {exitcode})"
        super().__init__(text)


class AdapterHung(AdapterFault):
    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"hung (> {seconds:g} s)")


class AdapterRaised(AdapterFault):
    def __init__(self, kind: str, message: str, rule: str | None):
        self.kind, self.message, self.rule = kind, message, rule
        super().__init__(f"raised {kind}: {message}")


def _describe(adapter) -> dict:
    return {"parts": parts_of(adapter),
            "optional": [m for m in _OPTIONAL if callable(getattr(adapter, m, None))],
            "detects_misuse": bool(getattr(adapter, "detects_misuse", False)),
            # the bytes of one of its frames (units), when it declares them
            "page_size": (adapter.page_size if type(getattr(adapter, "page_size", None))
                          is int else None),
            "name": getattr(adapter, "name", type(adapter).__name__)}


def _raised(exc: BaseException) -> tuple:
    rule = getattr(exc, "rule", None)
    return (type(exc).__name__, str(exc), rule if isinstance(rule, str) else None)


class InProcessDriver:
    """Call the adapter directly (no crash or hang protection)."""

    isolated = False

    def __init__(self, factory: Callable[[], Any], timeout: float = 0.0):
        self.factory = factory
        self.adapter = None
        self.info: dict = {}

    log: list[tuple] = []          # in-process: nothing is shared but module state
    fresh = False

    def output(self, limit: int = 2000) -> str:
        return ""                      # in-process output is not captured

    def reset(self) -> dict:
        try:
            self.adapter = self.factory()
        except Exception as exc:
            raise AdapterRaised(*_raised(exc)) from None
        self.info = _describe(self.adapter)
        return self.info

    def call(self, method: str, *args):
        try:
            return getattr(self.adapter, method)(*args)
        except Exception as exc:
            raise AdapterRaised(*_raised(exc)) from None

    def close(self) -> None:
        self.adapter = None


def _serve(conn, factory, output_fd: int | None = None) -> None:
    """The child's loop: make adapters and answer calls until told to stop."""
    # A crash of the implementation is a finding reported by the parent; a fault
    # handler inherited from the parent (pytest enables one) would only add noise.
    faulthandler.disable()
    if output_fd is not None:
        # the implementation's stdout/stderr (C and Python alike) go to the driver's
        # file, to be shown in a report, not onto the checker's terminal
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
    adapter = None
    while True:
        try:
            cmd, payload = conn.recv()
        except EOFError:
            return
        if cmd == "exit":
            return
        try:
            if cmd == "new":
                adapter = factory()
                conn.send(("ok", _describe(adapter)))
            elif cmd == "calls":
                # calls made for their effect on the state (a prefix), answers dropped
                for method, args in payload:
                    try:
                        getattr(adapter, method)(*args)
                    except Exception:
                        pass
                conn.send(("ok", None))
            elif cmd == "batch":
                # a whole call sequence checked here, next to the implementation: one
                # message each way instead of one round trip per call
                conn.send(("ok", run_batch(factory, payload)))
            else:
                method, args = payload
                conn.send(("ok", getattr(adapter, method)(*args)))
        except Exception as exc:
            conn.send(("raised", _raised(exc)))


class IsolatedDriver:
    """The adapter in a child process; every call has a time limit."""

    isolated = True

    def __init__(self, factory: Callable[[], Any], timeout: float = 2.0,
                 fresh: bool = False):
        self.factory = factory
        self.timeout = timeout
        # fresh: a new child for every sequence (reset), so no state leaks between them
        self.fresh = fresh
        # every call the current child has answered, ("new",) starting each sequence:
        # the prefix that may be needed to reproduce a failure caused by leaked state
        self.log: list[tuple] = []
        self._output = None            # the child's stdout/stderr, one file per driver
        self._output_mark = 0          # where the current sequence's output starts
        self.process = None
        self.conn = None
        self.info: dict = {}
        # fork keeps any callable usable as a factory (closures, lambdas); the child
        # only runs the adapter, so the parent's threads do not matter to it.
        methods = multiprocessing.get_all_start_methods()
        self._ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        if self._output is None:
            self._output = tempfile.TemporaryFile()
        self._output.seek(0)
        self._output.truncate()
        self._output_mark = 0
        self.process = self._ctx.Process(target=_serve, daemon=True,
                                         args=(child, self.factory, self._output.fileno()))
        self.process.start()
        child.close()
        self.conn = parent
        self.log = []

    def _kill(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            self.process = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _ask(self, cmd: str, payload, timeout: float):
        try:
            self.conn.send((cmd, payload))
            ready = self.conn.poll(timeout)
            if not ready:
                self._kill()
                raise AdapterHung(timeout)
            status, value = self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            proc = self.process
            if proc is not None:
                proc.join(5)
            code = proc.exitcode if proc is not None else None
            self._kill()
            raise AdapterCrashed(code) from None
        if status == "raised":
            raise AdapterRaised(*value)
        return value

    def reset(self) -> dict:
        if self.fresh or self.process is None or not self.process.is_alive():
            self._kill()
            self._start()
        self.log.append(("new",))
        self._output_mark = os.fstat(self._output.fileno()).st_size
        # Making the adapter may load a library: allow more than one call's time.
        self.info = self._ask("new", None, max(self.timeout, 10.0))
        return self.info

    def output(self, limit: int = 2000) -> str:
        """What the implementation printed during the current sequence (the last
        `limit` characters)."""
        if self._output is None:
            return ""
        fd = self._output.fileno()
        data = os.pread(fd, max(0, os.fstat(fd).st_size - self._output_mark),
                        self._output_mark)
        text = data.decode("utf-8", "replace")
        return text if len(text) <= limit else "[...]" + text[-limit:]

    def call(self, method: str, *args):
        if self.process is None:
            raise AdapterCrashed(None)
        self.log.append((method, args))
        return self._ask("call", (method, args), self.timeout)

    def batch(self, payload: dict) -> dict:
        """One whole sequence run and checked in the child (run_batch): its result.

        The sequence as a whole has a generous time limit; a crash or hang of the
        batch raises AdapterFault, and the caller re-runs the sequence call by call
        to find the step (check_conformance does)."""
        if self.fresh or self.process is None or not self.process.is_alive():
            self._kill()
            self._start()
        self._output_mark = os.fstat(self._output.fileno()).st_size
        # a hang costs this much before the call-by-call re-run finds it; a slow but
        # correct batch that exceeds it is only re-run call by call (same verdict)
        limit = self.timeout * (1 + len(payload["data"]) / 40)
        result = self._ask("batch", payload, limit)
        self.log.append(("new",))
        self.log.extend(result["calls"])
        return result

    def close(self) -> None:
        if self.conn is not None and self.process is not None and self.process.is_alive():
            try:
                self.conn.send(("exit", None))
                self.process.join(1)
            except OSError:
                pass
        self._kill()
        if self._output is not None:
            self._output.close()
            self._output = None

    def __del__(self):
        try:
            self._kill()
        except Exception:
            pass


class _RecordingDriver(InProcessDriver):
    """An in-process driver (in the child) that keeps the calls it made."""

    def __init__(self, factory):
        super().__init__(factory)
        self.made: list[tuple] = []

    def call(self, method: str, *args):
        self.made.append((method, args))
        return super().call(method, *args)


def run_batch(factory, payload: dict) -> dict:
    """Run one encoded page call sequence (check.drive_bytes) through a checker here.

    `payload`: mode, profile, nr_pages, data, check_free_counts, part, max_order_cap,
    allowed, page_policy. Returns the calls made (for the driver's log), the rules waived, and the
    failure's parts (divergence, calls, nr_pages, profile, part) or None.
    """
    from .check import CHECKERS, ConformanceFailure, drive_bytes
    base = CHECKERS[payload["part"]]
    waived: dict = {}
    checker = type("BatchChecker", (base,), {"max_order_cap": payload["max_order_cap"],
                                             "allowed": frozenset(payload["allowed"]),
                                             "waived": waived,
                                             "page_policy": payload.get("page_policy",
                                                                        "buddy")})
    driver = _RecordingDriver(factory)
    failure = drive_bytes(checker(driver, payload["mode"], profile=payload["profile"],
                                  check_free_counts=payload["check_free_counts"]),
                          payload["nr_pages"], payload["data"])
    parts = None
    if isinstance(failure, ConformanceFailure):
        parts = (failure.divergence, failure.calls, failure.nr_pages, failure.profile,
                 failure.part, failure.page_policy)
    return {"calls": driver.made, "waived": waived, "failure": parts}


def make_driver(factory, *, isolate: bool = True, timeout: float = 2.0,
                fresh: bool = False):
    """A driver for the factory's adapters; `fresh`: a new child process per sequence."""
    if isolate:
        return IsolatedDriver(factory, timeout, fresh=fresh)
    return InProcessDriver(factory, timeout)


def sequences_before_last(log: list[tuple]) -> list[list[tuple]]:
    """The sequences of a driver log before its last one (each without its ("new",))."""
    starts = [i for i, entry in enumerate(log) if entry == ("new",)]
    if len(starts) < 2:
        return []
    return [list(log[a + 1:b]) for a, b in zip(starts, starts[1:])]


def run_prefix(driver, sequences: list[list[tuple]]) -> None:
    """Make the calls of earlier sequences on the driver, ignoring what they answer."""
    for sequence in sequences:
        driver.reset()
        if getattr(driver, "isolated", False):
            # one message per sequence; a crash or hang still raises AdapterFault
            driver.log.extend(sequence)
            driver._ask("calls", list(sequence),
                        max(driver.timeout, 10.0) + driver.timeout * 0.1 * len(sequence))
            continue
        for method, args in sequence:
            try:
                driver.call(method, *args)
            except AdapterRaised:
                continue
