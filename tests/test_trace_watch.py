"""`kmemspec watch`: live checking from trace_pipe (a fake pipe here; a real run when
tracefs and root are available)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading

import pytest

from kmemspec.cmd_watch import LivePrinter, make_checker
from kmemspec.model.profiles import LINUX_6X_X86_64
from kmemspec.trace.check import check_stream, compiled_available
from kmemspec.trace.watch import PipeStream, ring_buffer_stats
from test_trace_check import GCC, event_line, first, inject, lines_of

ENGINES = ["python"] + (["compiled"] if compiled_available() else [])


def fake_pipe(data: bytes, pieces: int = 37):
    """A non-blocking pipe fed with `data` in uneven pieces by a thread (lines cut
    anywhere), and done() telling when the writer has finished."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    finished = threading.Event()

    def writer():
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            os.write(w, data[i:i + step])
        os.close(w)
        finished.set()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    return r, finished.is_set, t


@pytest.mark.parametrize("engine", ENGINES)
def test_watching_a_pipe_gives_the_report_of_trace(engine):
    lines = list(lines_of(GCC))
    i = first(lines, r"kmalloc: .*bytes_alloc=64 ")
    lines, at = inject(lines, i + 1, event_line(lines[i], "kmalloc",
                       "call_site=x+0x1/0x2 ptr=ffff888100000041 bytes_req=64 "
                       "bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false"))
    data = "".join(lines).encode()
    fd, done, t = fake_pipe(data)
    checker, _ = make_checker(engine, LINUX_6X_X86_64, False, 1000)
    shown = []
    printer = LivePrinter(shown.append)
    stream = PipeStream(fd, done, poll=0.01)
    checker.run(stream, lambda n: printer(checker, n))
    t.join()
    os.close(fd)
    assert stream.bytes == len(data)          # every byte read was checked
    ref = check_stream(io.StringIO("".join(lines)))
    assert checker.to_json() == ref.to_json()
    assert any(f"line {at}: natural_alignment" in s for s in shown), shown


def test_pipe_stream_ends_only_when_done_and_drained():
    r, w = os.pipe()
    os.set_blocking(r, False)
    flag = []
    s = PipeStream(r, lambda: bool(flag), poll=0.01)
    os.write(w, b"a b\nc")
    assert s.readlines() == [b"a b\n"]
    os.write(w, b" d\n")
    flag.append(1)
    os.close(w)
    assert s.readlines() == [b"c d\n"]
    assert s.readlines() == []
    os.close(r)


def test_ring_buffer_stats_are_summed_over_cpus(tmp_path):
    for cpu, (over, drop) in enumerate([(3, 0), (4, 5)]):
        d = tmp_path / "per_cpu" / f"cpu{cpu}"
        d.mkdir(parents=True)
        (d / "stats").write_text(f"entries: 1\noverrun: {over}\ncommit overrun: 9\n"
                                 f"bytes: 10\ndropped events: {drop}\nread events: 7\n")
    s = ring_buffer_stats(str(tmp_path))
    assert s == {"overrun": 7, "dropped events": 5, "entries": 2, "read events": 14}


def _tracefs_usable() -> bool:
    return os.geteuid() == 0 and os.path.isdir("/sys/kernel/tracing/instances")


@pytest.mark.skipif(not _tracefs_usable(), reason="needs root and tracefs")
def test_real_watch_of_a_short_command():
    r = subprocess.run([sys.executable, "-c", "from kmemspec.cli import main; main()",
                        "watch", "--json", "--", "sh", "-c", "ls -R /usr/lib > /dev/null"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    rep = json.loads(r.stdout)
    assert rep["events"] > 1000 and rep["error_count"] == 0
    assert rep["watch"]["bytes_read"] == rep["watch"]["bytes_checked"]
    assert rep["watch"]["checker_dropped"] == 0
    assert not [n for n in os.listdir("/sys/kernel/tracing/instances")
                if n.startswith(f"kmemspec-")
                and not os.path.exists(f"/proc/{n.split('-')[-1]}")]


def test_watch_without_a_command_is_usage_error():
    r = subprocess.run([sys.executable, "-c", "from kmemspec.cli import main; main()",
                        "watch"], capture_output=True, text=True)
    assert r.returncode == 2
