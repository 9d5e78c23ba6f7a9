"""The compiled engine (trace/compiled.py) against the Python reference (trace/check.py).

Both must give the same JSON report -- violations, warnings, counts, line numbers,
errors -- on every committed fixture (tests/data/traces/**), on every injected-fault
trace (tests/test_trace_check.py and tests/test_trace_kernels.py compare them in their
check()), on damaged copies of the fixtures, and on Hypothesis-generated traces, valid
and damaged. Any difference is a bug in one of them. The reference never runs inside
the compiled engine's answer: the two are separate checkers over the same bytes.
"""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from kmemspec.model.profiles import LINUX_6X_I386, LINUX_6X_X86_64
from kmemspec.trace.check import check_stream, compiled_available
from kmemspec.trace.parse import detect_profile, open_trace
from test_trace_check import damaged, lines_of

pytestmark = pytest.mark.skipif(not compiled_available(), reason="numba not installed")

DATA = pathlib.Path(__file__).parent / "data" / "traces"
ALL = sorted(DATA.glob("**/*.txt.xz"))
PROFILES = {p.name: p for p in (LINUX_6X_X86_64, LINUX_6X_I386)}


def both(text: str, strict=False, profile=LINUX_6X_X86_64):
    ref = check_stream(io.StringIO(text), strict=strict, profile=profile).to_json()
    comp = check_stream(io.StringIO(text), strict=strict, profile=profile,
                        engine="compiled").to_json()
    return ref, comp


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_fixture_same_report(path):
    text = open_trace(str(path))[0].read()
    profile = PROFILES[detect_profile(io.StringIO(text))[0]]
    for strict in (False, True):
        ref, comp = both(text, strict, profile)
        assert comp == ref


@pytest.mark.parametrize("seed", [11, 12])
def test_damaged_fixtures_same_report(seed):
    lines = lines_of("gcc-hello.txt.xz") + lines_of("ls-gcc-trace-file-overrun.txt.xz")[:20000]
    ref, comp = both("".join(damaged(lines, seed, rate=0.05, kinds=8)))
    assert ref["errors"] and ref["violations"]
    assert comp == ref


def test_the_comparison_fails_on_a_broken_compiled_engine(monkeypatch):
    """A compiled engine that forgets object frees differs from the reference: the
    differential test can fail."""
    from kmemspec.trace import compiled

    monkeypatch.setattr(compiled.CompiledChecker, "h_free", lambda self, t, line: None)
    text = "".join(damaged(lines_of("gcc-hello.txt.xz"), 3, rate=0.05))
    ref, comp = both(text)
    assert comp != ref


# ---------------------------------------------------------------- generated traces
CPUS = ["[000]", "[001]", "[002]"]
BASE = 0xFFFF888000000000          # the direct map of 4-level x86_64 (no KASLR)
HEAD = "# tracer: nop\n"


def _line(cpu, event, fields):
    return f"           task-1     {cpu} .....   1.000000: {event}: {fields}\n"


@st.composite
def events(draw):
    """One event line over a small range of pfns and addresses, so that events meet:
    allocations, frees, reuse, splits, large kmallocs (with their block), vmap areas."""
    cpu = draw(st.sampled_from(CPUS))
    kind = draw(st.integers(0, 10))
    pfn = draw(st.integers(0x1000, 0x1040))
    order = draw(st.sampled_from([0, 0, 0, 1, 2, 3, 9, 10, 11]))
    slot = draw(st.integers(0, 63))
    size = draw(st.sampled_from([8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096,
                                 8192, 24, 200, 0]))
    if kind == 0:
        return _line(cpu, "mm_page_alloc", f"page=ffffea0000000000 pfn={pfn:#x} "
                     f"order={order} migratetype=0 gfp_flags=GFP_KERNEL")
    if kind == 1:
        return _line(cpu, "mm_page_free", f"page=ffffea0000000000 pfn={pfn:#x} order={order}")
    if kind == 2:
        ev = draw(st.sampled_from(["mm_page_alloc_zone_locked", "mm_page_pcpu_drain",
                                   "mm_page_free_batched"]))
        return _line(cpu, ev, f"page=ffffea0000000000 pfn={pfn:#x} order={order} "
                     "migratetype=0")
    ptr = BASE + (0x1000 << 12) + slot * 64 * draw(st.sampled_from([1, 1, 3]))
    if kind in (3, 4, 5):
        req = max(1, size - draw(st.integers(0, 7)))
        return _line(cpu, "kmalloc", f"call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req={req} "
                     f"bytes_alloc={size} gfp_flags=GFP_KERNEL node=-1 accounted=false")
    if kind == 6:
        # a large kmalloc: a block of its order just before, on the same CPU
        o = draw(st.integers(1, 3))
        p = (pfn >> o) << o
        big = BASE + (p << 12)
        return (_line(cpu, "mm_page_alloc", f"page=ffffea0000000000 pfn={p:#x} order={o} "
                      "migratetype=0 gfp_flags=GFP_KERNEL")
                + _line(cpu, "kmalloc", f"call_site=f+0x1/0x2 ptr={big:016x} "
                        f"bytes_req={(4096 << o) - 5} bytes_alloc={4096 << o} "
                        "gfp_flags=GFP_KERNEL node=-1 accounted=false") * draw(st.integers(1, 2)))
    if kind == 7:
        return _line(cpu, "kmem_cache_alloc", f"call_site=f+0x1/0x2 ptr={ptr:016x} "
                     f"name=c{size} bytes_req={max(0, size - 4)} bytes_alloc={size} "
                     "gfp_flags=GFP_KERNEL node=-1 accounted=false")
    if kind == 8:
        ev = draw(st.sampled_from(["kfree", "kmem_cache_free"]))
        return _line(cpu, ev, f"call_site=f+0x1/0x2 ptr={ptr:016x} name=x")
    if kind == 9:
        va = 0xFFFFC90000000000 + slot * 0x4000
        if draw(st.booleans()):
            return _line(cpu, "alloc_vmap_area", f"va_start: {va} size=8192 align=4096 "
                         "vstart=0xffffc90000000000 vend=0xffffe8ffffffffff failed=0")
        return _line(cpu, "free_vmap_area_noflush", f"va_start={va:#x} nr_lazy=1 "
                     "nr_lazy_max=2")
    return draw(st.sampled_from([
        "CPU:1 [LOST 12 EVENTS]\n", "CPU:0 [LOST EVENTS]\n", "# comment\n", "\n",
        _line(cpu, "purge_vmap_area_lazy", "start=0xffffc90000000000 "
              "end=0xffffc90000100000 num_purged=3"),
        _line(cpu, "sched_switch", "prev_comm=a next_comm=b")]))


def _damage(draw, line):
    t = line.split(" ")
    i = draw(st.integers(0, len(t) - 1))
    how = draw(st.integers(0, 5))
    if how == 0:
        del t[i]
    elif how == 1:
        t[i] = t[i][:-1]
    elif how == 2:
        t[i] += draw(st.sampled_from(["x", "0", "=", "é"]))
    elif how == 3:
        t.insert(i, draw(st.sampled_from(["foo=1", "ptr=10", "my prog", "-"])))
    elif how == 4:
        t[i] = t[i].replace("order=", "order=-").replace("bytes_req=", "bytes_req=+")
    else:
        t[i] = t[i].replace("ffff", "")
    return " ".join(t).rstrip("\n") + "\n"


@st.composite
def traces(draw, damage: bool):
    lines = [HEAD]
    for _ in range(draw(st.integers(1, 120))):
        line = draw(events())
        if damage and draw(st.integers(0, 5)) == 0:
            line = _damage(draw, line)
        lines.append(line)
    return "".join(lines)


@given(traces(damage=False), st.booleans())
def test_generated_valid_traces_same_report(text, strict):
    ref, comp = both(text, strict)
    assert comp == ref


@given(traces(damage=True))
def test_generated_damaged_traces_same_report(text):
    ref, comp = both(text)
    assert comp == ref


def test_unsupported_value_falls_back_to_the_reference(tmp_path):
    """A pfn the compiled state cannot hold: `kmemspec trace` checks the file with the
    Python engine and gives its report."""
    f = tmp_path / "huge.txt"
    f.write_text(HEAD + _line("[000]", "mm_page_alloc", f"page=ffffea0000000000 "
                              f"pfn={1 << 62:#x} order=0 migratetype=0 gfp_flags=G")
                 + _line("[000]", "mm_page_alloc", f"page=ffffea0000000000 "
                         f"pfn={1 << 62:#x} order=0 migratetype=0 gfp_flags=G"))
    out = {}
    for engine in ("python", "compiled"):
        r = subprocess.run([sys.executable, "-c", "from kmemspec.cli import main; main()",
                            "trace", str(f), "--json", "--engine", engine],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out[engine] = r.stdout
    assert out["compiled"] == out["python"]
    assert '"untraced_page_free"' in out["python"]


class _ReadOnly:
    """A binary stream with read() only (as watch's PipeStream), in uneven pieces."""

    def __init__(self, data: bytes):
        self.data, self.pos, self.k = data, 0, 0

    def read(self, n=-1):
        self.k += 1
        n = min(n, 1 + (self.k * 7919) % 300)
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


@pytest.mark.parametrize("block", [64, 1000, 1 << 16])
def test_block_boundaries_same_report(monkeypatch, block):
    """The compiled engine's buffer: lines cut at any block end, lines longer than the
    buffer (it grows), the last line without a newline, a stream without readinto."""
    from kmemspec.trace import compiled

    lines = lines_of("gcc-hello.txt.xz")[:3000]
    text = "".join(damaged(lines, 5, rate=0.05)).rstrip("\n")
    assert not text.endswith("\n")
    ref = check_stream(io.StringIO(text)).to_json()
    assert ref["errors"] and ref["events"] > 2000
    monkeypatch.setattr(compiled, "BLOCK_BYTES", block)
    comp = check_stream(io.StringIO(text), engine="compiled").to_json()
    assert comp == ref
    comp = check_stream(_ReadOnly(text.encode()), engine="compiled").to_json()
    assert comp == ref
