"""`kmemspec trace` output and exit codes; `kmemspec record` (needs root + tracefs)."""

from __future__ import annotations

import gzip
import re
import json
import os
import random
import pathlib

import pytest
from click.testing import CliRunner

from kmemspec.cmd_record import command as record_command
from kmemspec.cmd_trace import command as trace_command
from kmemspec.trace.parse import open_trace
from kmemspec.trace.record import RecordError, find_tracefs, record_header

DATA = pathlib.Path(__file__).parent / "data" / "traces"
SMALL = DATA / "gcc-hello.txt.xz"


def run(args, stdin=None):
    return CliRunner().invoke(trace_command, args, input=stdin)


def small_text() -> str:
    stream, _ = open_trace(str(SMALL))
    return stream.read()


def test_json_report_shape_and_exit_0():
    r = run([str(SMALL), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert set(d) >= {"events", "by_event", "violations", "warnings", "errors"}
    assert d["events"] == sum(d["by_event"].values()) > 30000
    assert d["violations"] == [] and d["errors"] == []
    w = d["warnings"][0]
    assert set(w) >= {"line", "invariant", "event", "message"} and w["cause"]


def test_text_summary_groups_warnings_by_cause():
    r = run([str(SMALL)])
    assert r.exit_code == 0
    assert "violations: 0" in r.output
    assert "untraced_object_free" in r.output and "kmem_cache_alloc" in r.output


def test_strict_exit_1():
    r = run([str(SMALL), "--strict", "--json"])
    assert r.exit_code == 1
    assert json.loads(r.output)["violations"]


def test_stdin_and_gzip(tmp_path):
    text = small_text()
    r = run(["-", "--json"], stdin=text)
    assert r.exit_code == 0
    gz = tmp_path / "t.txt.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    r2 = run([str(gz), "--json"])
    assert r2.exit_code == 0
    assert json.loads(r.output)["by_event"] == json.loads(r2.output)["by_event"]


def test_malformed_line_exit_2_with_line_number(tmp_path):
    lines = small_text().splitlines(keepends=True)
    i = next(k for k, ln in enumerate(lines) if " kmalloc: " in ln)
    lines[i] = lines[i].replace("bytes_req=", "bytes_req=x")
    p = tmp_path / "bad.txt"
    p.write_text("".join(lines))
    r = run([str(p), "--json"])
    assert r.exit_code == 2
    [e] = json.loads(r.output)["errors"]
    assert e["line"] == i + 1 and "bytes_req" in e["message"]
    r = run([str(p)])
    assert r.exit_code == 2 and f"line {i + 1}" in r.output
    assert "Traceback" not in r.output


def test_missing_file_exit_2():
    r = run(["/nonexistent/trace.txt"])
    assert r.exit_code == 2
    assert "Traceback" not in r.output


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_truncated_xz_exit_2(tmp_path, jobs):
    p = tmp_path / "cut.txt.xz"
    p.write_bytes(SMALL.read_bytes()[:20000])
    r = run([str(p), "--jobs", jobs])
    assert r.exit_code == 2
    assert "cannot read" in r.output and "Traceback" not in r.output


def test_jobs_1_and_2_give_the_same_report(tmp_path):
    """--jobs 2 (the object events in a second process) reports what --jobs 1 does:
    here a malformed line, a size_class violation and the real warnings."""
    lines = small_text().splitlines(keepends=True)
    k = [i for i, ln in enumerate(lines) if " kmalloc: " in ln]
    lines[k[0]] = lines[k[0]].replace("bytes_req=", "bytes_req=x")
    lines[k[1]] = lines[k[1]].replace("bytes_alloc=", "bytes_alloc=1")
    p = tmp_path / "t.txt"
    p.write_text("".join(lines))
    one, two = (run([str(p), "--json", "--jobs", j]) for j in ("1", "2"))
    assert one.exit_code == two.exit_code == 2
    assert one.output == two.output
    d = json.loads(one.output)
    assert [e["line"] for e in d["errors"]] == [k[0] + 1]
    assert [v["line"] for v in d["violations"]] == [k[1] + 1] and d["warnings"]


def test_hashed_pointers_are_an_input_error(tmp_path):
    line = ("  bash-1 [000] .....   1.000000: kmalloc: call_site=f+0x1/0x2 "
            "ptr=000000003f2a1b9c bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL "
            "node=-1 accounted=false\n")
    r = run(["-", "--json"], stdin=line)
    assert r.exit_code == 2
    assert "hash-ptr" in json.loads(r.output)["errors"][0]["message"]


def _tracefs_usable() -> str | None:
    if os.geteuid() != 0:
        return "recording needs root"
    try:
        find_tracefs()
    except RecordError as exc:
        return str(exc)
    return None


def test_record_ls(tmp_path):
    why = _tracefs_usable()
    if why:
        pytest.skip(f"no usable tracefs: {why}")
    out = tmp_path / "ls.txt"
    r = CliRunner().invoke(record_command, ["-o", str(out), "--", "ls", "/"])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "mm_page_alloc:" in text or "kmem_cache_alloc:" in text
    assert not any(p.name.startswith("kmemspec-")
                   for p in pathlib.Path(find_tracefs()).joinpath("instances").iterdir())
    c = run([str(out), "--json"])
    assert c.exit_code == 0, c.output


def test_record_without_command_is_a_usage_error():
    r = CliRunner().invoke(record_command, [])
    assert r.exit_code == 2


def _separate_streams() -> CliRunner:
    """A runner keeping stderr apart from stdout (click < 8.2 needs asking)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def test_progress_bar_on_a_terminal(monkeypatch):
    import kmemspec.cmd_trace as cmd
    bars = []

    class Bar:          # records what click's bar would draw
        def __init__(self, length, label, file):
            self.length, self.done, self.closed = length, 0, False
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.closed = True

        def update(self, n):
            self.done += n
    monkeypatch.setattr(cmd, "_terminal", lambda: True)
    monkeypatch.setattr(cmd, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(cmd.click, "progressbar", Bar)
    r = _separate_streams().invoke(trace_command, [str(SMALL)])
    assert r.exit_code == 0 and "violations: 0" in r.stdout
    [bar] = bars
    # the bar follows the compressed input to its end, and is closed
    assert bar.length == SMALL.stat().st_size and bar.done == bar.length and bar.closed


def test_progress_bar_label_goes_to_stderr(monkeypatch):
    import kmemspec.cmd_trace as cmd
    monkeypatch.setattr(cmd, "_terminal", lambda: True)
    monkeypatch.setattr(cmd, "PROGRESS_MIN_BYTES", 0)
    r = _separate_streams().invoke(trace_command, [str(SMALL)])
    assert r.exit_code == 0
    assert "checking" in r.stderr and "checking" not in r.stdout


@pytest.mark.parametrize("why", ["--json", "not a terminal", "small input"])
def test_no_progress_bar(monkeypatch, why):
    import kmemspec.cmd_trace as cmd
    monkeypatch.setattr(cmd, "_terminal", lambda: why != "not a terminal")
    if why != "small input":
        monkeypatch.setattr(cmd, "PROGRESS_MIN_BYTES", 0)
    args = [str(SMALL)] + (["--json"] if why == "--json" else [])
    r = _separate_streams().invoke(trace_command, args)
    assert r.exit_code == 0
    assert "checking" not in r.stderr


def test_jobs_auto_uses_two_processes_for_large_inputs_on_two_cpus(monkeypatch):
    from kmemspec import cmd_trace
    monkeypatch.setattr(cmd_trace.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cmd_trace, "_load", lambda: 0.3)
    raw = object()
    assert cmd_trace._jobs("auto", cmd_trace.TWO_PROCESS_MIN_BYTES, raw) == 2
    assert cmd_trace._jobs("auto", cmd_trace.TWO_PROCESS_MIN_BYTES - 1, raw) == 1
    assert cmd_trace._jobs("auto", 0, None) == 2            # stdin: size unknown
    assert cmd_trace._jobs("1", 1 << 30, raw) == 1
    monkeypatch.setattr(cmd_trace.os, "cpu_count", lambda: 1)
    assert cmd_trace._jobs("auto", 1 << 30, raw) == 1


def test_jobs_auto_uses_one_process_when_no_cpu_is_idle(monkeypatch):
    from kmemspec import cmd_trace
    monkeypatch.setattr(cmd_trace.os, "cpu_count", lambda: 2)
    raw = object()
    monkeypatch.setattr(cmd_trace, "_load", lambda: 1.6)    # the second CPU mostly busy
    assert cmd_trace._jobs("auto", 1 << 30, raw) == 1
    assert cmd_trace._jobs("auto", 0, None) == 1
    assert cmd_trace._jobs("2", 1 << 30, raw) == 2           # explicit --jobs wins
    monkeypatch.setattr(cmd_trace, "_load", lambda: 1.4)
    assert cmd_trace._jobs("auto", 1 << 30, raw) == 2


# ---------------------------------------------------------------- hostile input (issue 16)
@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("kind", ["xz", "gz"])
def test_corrupt_compressed_stream_exit_2_with_file_and_reason(tmp_path, jobs, kind):
    """A damaged .xz (LZMAError) or deflate stream in a .gz (zlib.error): exit 2,
    the file and the decoder's reason, no traceback."""
    text = small_text().encode()
    if kind == "xz":
        import lzma
        data = bytearray(lzma.compress(text))
    else:
        data = bytearray(gzip.compress(text))
    for i in range(len(data) // 3, len(data) // 3 + 64):      # flip bytes mid-stream
        data[i] ^= 0x5A
    p = tmp_path / f"bad.txt.{kind}"
    p.write_bytes(bytes(data))
    r = run([str(p), "--jobs", jobs])
    assert r.exit_code == 2, r.output
    assert f"cannot read {p}" in r.output and "Traceback" not in r.output
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit)


def test_errors_are_counted_and_the_first_max_errors_kept(tmp_path):
    p = tmp_path / "junk.txt"
    p.write_text("".join(f"junk line {i}\n" for i in range(50)))
    r = run([str(p), "--json", "--max-errors", "7"])
    assert r.exit_code == 2
    d = json.loads(r.output)
    assert d["error_count"] == 50
    assert [e["line"] for e in d["errors"]] == list(range(1, 8))
    r = run([str(p), "--max-errors", "7"])
    assert "errors: 50 (the first 7 kept)" in r.output


# ---------------------------------------------------------------- fuzz (issue 16)
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_HEAD = small_text().splitlines(keepends=True)[:1500]


def _mutate(lines, how, k, value):
    """One damage or crafted change to the trace."""
    if how == "truncate":
        return "".join(lines).encode()[:k % 60000]
    if how == "flip":
        b = bytearray("".join(lines).encode())
        for j in range(0, 40):
            b[(k + j * 997) % len(b)] ^= (value % 255) + 1
        return bytes(b)
    i = k % len(lines)
    ln = lines[i]
    if how == "huge":          # a huge number in every numeric field of one line
        ln = re.sub(r"=(0x)?[0-9a-f]+\b", lambda m: f"={'0x' if m.group(1) else ''}"
                    f"{value:x}" if m.group(1) else f"={value}", ln)
    elif how == "sparse":      # a page event on a far pfn
        ln = re.sub(r"pfn=0x[0-9a-f]+", f"pfn={value:#x}", ln)
    elif how == "shift":       # every pointer moved by a multiple of 1 GiB
        return "".join(re.sub(r"ptr=ffff888([0-9a-f]{9})",
                              lambda m: f"ptr={0xffff888000000000 + (value % 4096 << 30) + int(m.group(1), 16):016x}", x)
                       for x in lines).encode()
    return "".join(lines[:i] + [ln] + lines[i + 1:]).encode()


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(how=st.sampled_from(["truncate", "flip", "huge", "sparse", "shift"]),
       k=st.integers(0, 10**6), value=st.one_of(st.integers(0, 2**64), st.integers(0, 2**200)),
       compress=st.sampled_from(["", "gz", "xz"]))
def test_fuzz_damaged_and_crafted_traces(tmp_path_factory, how, k, value, compress):
    """Whatever the damage: no traceback, exit 0/1/2 as documented (2 iff an input
    error is reported), and a bounded heap."""
    import lzma
    import tracemalloc

    data = _mutate(_HEAD, how, k, value)
    if compress == "gz":
        data = gzip.compress(data)[: max(20, k % 50000)]
    elif compress == "xz":
        data = lzma.compress(data)[: max(20, k % 50000)]
    p = tmp_path_factory.mktemp("fz") / "t.txt"
    p.write_bytes(data)
    tracemalloc.start()
    try:
        r = run([str(p), "--json", "--jobs", "1"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.exit_code in (0, 1, 2), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    if r.exit_code != 2 or r.output.lstrip().startswith("{"):
        d = json.loads(r.output)
        assert (r.exit_code == 2) == (d["error_count"] > 0)
        assert (r.exit_code == 1) == (d["error_count"] == 0 and any(
            k.startswith("violation") for k in d["counts"]))
    else:
        assert "cannot read" in r.output
    assert peak < 96 << 20, peak


def test_random_bytes_exit_2_with_a_bounded_report(tmp_path):
    """Random bytes (was: a 10.8 MB report for 20 MB): exit 2, at most --max-errors
    errors listed, all counted."""
    p = tmp_path / "random.bin"
    p.write_bytes(random.Random(16).randbytes(1 << 20))
    r = run([str(p), "--json", "--jobs", "1", "--max-errors", "50"])
    assert r.exit_code == 2
    d = json.loads(r.output)
    assert len(d["errors"]) == 50 and d["error_count"] > 1000
    assert len(r.output) < 64 << 10


def test_record_header_of_a_multi_line_command_is_one_comment_line():
    # A command whose arguments hold newlines (sh -c 'a\nb') once made `record` write
    # a `# command:` header over several lines; `trace` counted the lines after the
    # first as input errors.
    cmd = ["sh", "-c", "for i in 1 2; do\n  ls / >/dev/null\ndone\r", "tab\there", "é"]
    text = record_header(cmd, ("kmem:kmalloc",)).decode()
    lines = text.splitlines(keepends=True)
    assert len(lines) == 3 and all(x.startswith("# ") for x in lines)
    assert lines[2] == ("# command: sh -c 'for i in 1 2; do\\n  ls / >/dev/null\\ndone\\r' "
                        "'tab\\there' 'é'\n")
    r = run(["-", "--json"], stdin=text)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["errors"] == []


def test_record_multi_line_command(tmp_path):
    why = _tracefs_usable()
    if why:
        pytest.skip(f"no usable tracefs: {why}")
    out = tmp_path / "sh.txt"
    r = CliRunner().invoke(record_command, ["-o", str(out), "--", "sh", "-c",
                                            "ls / >/dev/null\nls /usr >/dev/null"])
    assert r.exit_code == 0, r.output
    c = run([str(out), "--json"])
    assert c.exit_code == 0, c.output
    assert json.loads(c.output)["errors"] == []
