"""Real Linux 6.18 traces pass; every injected fault is reported at its line.

The fixtures in tests/data/traces were recorded with `kmemspec record` on a Linux
6.18 x86_64 machine (see spec/trace.md, "Fixtures"). Each fault test takes a real
trace, injects one faulty event line, and checks the report names the rule and line.
"""

from __future__ import annotations

import functools
import itertools
import io
import pathlib
import random
import re
from collections import Counter

import pytest

from kmemspec.trace.check import TraceChecker, check_stream, compiled_available
from kmemspec.trace.parse import open_trace

DATA = pathlib.Path(__file__).parent / "data" / "traces"
FIXTURES = sorted(p.name for p in DATA.glob("*.txt.xz"))
GCC = "gcc-hello.txt.xz"
THREADS = "python-threads.txt.xz"


@functools.lru_cache(maxsize=None)
def lines_of(name: str) -> tuple[str, ...]:
    stream, _ = open_trace(str(DATA / name))
    return tuple(stream.readlines())


def check(lines, strict=False):
    """The one-process report, after checking that the two-process check (jobs=2:
    page and object events in separate processes) and the compiled engine
    (trace/compiled.py; tests/test_trace_engines.py) give the same report."""
    text = "".join(lines)
    one = check_stream(io.StringIO(text), strict=strict)
    two = check_stream(io.StringIO(text), strict=strict, jobs=2)
    assert two.to_json() == one.to_json()
    if compiled_available():
        comp = check_stream(io.StringIO(text), strict=strict, engine="compiled")
        assert comp.to_json() == one.to_json(), "the compiled engine differs"
    return one


def first(lines, pattern, start=0):
    """Index of the first line from `start` matching the regex `pattern`."""
    rx = re.compile(pattern)
    for i in range(start, len(lines)):
        if rx.search(lines[i]):
            return i
    raise AssertionError(f"no line matches {pattern!r}")


def event_line(template: str, event: str, fields: str) -> str:
    """A line with the task, CPU and timestamp of `template` and the given event."""
    head = template[:template.index(": ") + 2]
    return f"{head}{event}: {fields}\n"


def inject(lines, index, new_line):
    """Insert new_line before lines[index]; return (lines, its 1-based number)."""
    out = list(lines)
    out.insert(index, new_line)
    return out, index + 1


def only(findings, line):
    return [f for f in findings if f.line == line]


# ---------------------------------------------------------------- pristine traces
@pytest.mark.parametrize("name", FIXTURES)
def test_real_trace_has_no_violation(name):
    c = check(lines_of(name))
    assert c.events > 30000
    assert c.errors == []
    assert c.violations == [], [f.to_json() for f in c.violations[:5]]


def test_real_traces_cover_every_modelled_event():
    seen = set()
    for name in FIXTURES:
        seen |= set(check(lines_of(name)).by_event)
    assert seen >= {"mm_page_alloc", "mm_page_free", "mm_page_free_batched",
                    "mm_page_alloc_zone_locked", "mm_page_pcpu_drain", "kmalloc",
                    "kfree", "kmem_cache_alloc", "kmem_cache_free", "alloc_vmap_area",
                    "free_vmap_area_noflush", "purge_vmap_area_lazy"}


def test_real_bulk_freed_maple_nodes_are_warnings_with_their_cause():
    lines = lines_of(GCC)
    c = check(lines)
    assert c.warnings
    for w in c.warnings:
        assert w.cause == "untraced_object_free"
        assert "name=maple_node" in lines[w.line - 1]


def test_lost_events_are_reported_and_make_page_reuse_lenient():
    c = check(lines_of("ls-lost-events.txt.xz"))
    lost = [w for w in c.warnings if w.invariant == "trace_complete"]
    assert lost and all("[LOST" in lines_of("ls-lost-events.txt.xz")[w.line - 1] for w in lost)
    assert c.lost > 0
    assert not c.violations


# ---------------------------------------------------------------- certain faults
def test_misaligned_page_block():
    lines = lines_of(GCC)
    i = first(lines, r"mm_page_alloc: .* order=3 ")
    bad = re.sub(r"pfn=0x([0-9a-f]+)", lambda m: f"pfn={int(m.group(1), 16) + 4:#x}", lines[i])
    faulty, line = inject(lines, i + 1, bad)
    c = check(faulty)
    [v] = c.violations
    assert (v.line, v.invariant, v.event) == (line, "buddy_alignment", "mm_page_alloc")


def test_order_above_the_top_order():
    lines = lines_of(GCC)
    i = first(lines, r"mm_page_alloc: ")
    faulty, line = inject(lines, i, event_line(lines[i], "mm_page_alloc",
                          "page=ffffea0000000000 pfn=0x800000 order=11 migratetype=0 "
                          "gfp_flags=GFP_KERNEL"))
    [v] = check(faulty).violations
    assert (v.line, v.invariant) == (line, "buddy_alignment")


def test_bytes_alloc_not_the_class():
    lines = lines_of(GCC)
    i = first(lines, r" kmalloc: ")
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmalloc",
                          "call_site=f+0x1/0x2 ptr=ffff888123456000 bytes_req=100 "
                          "bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false"))
    [v] = check(faulty).violations
    assert (v.line, v.invariant, v.event) == (line, "size_class", "kmalloc")
    assert "class is 128" in v.message


@pytest.mark.parametrize("event,fields,message", [
    ("kmem_cache_alloc", "name=foo bytes_req=0 bytes_alloc=0", "never empty"),
    ("kmalloc", "bytes_req=0 bytes_alloc=0", "not the class"),
])
def test_empty_object_is_a_violation_not_a_crash(event, fields, message):
    lines = lines_of(GCC)
    i = first(lines, r" kmem_cache_alloc: ")
    faulty, line = inject(lines, i + 1, event_line(
        lines[i], event, f"call_site=f+0x1/0x2 ptr=ffff888123456000 {fields} "
        "gfp_flags=GFP_KERNEL node=-1 accounted=false"))
    [v] = check(faulty).violations
    assert (v.line, v.invariant, v.event) == (line, "size_class", event)
    assert message in v.message


def test_bytes_alloc_smaller_than_bytes_req():
    lines = lines_of(GCC)
    i = first(lines, r" kmem_cache_alloc: ")
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmem_cache_alloc",
                          "call_site=f+0x1/0x2 ptr=ffff888123456000 name=foo "
                          "bytes_req=300 bytes_alloc=256 gfp_flags=GFP_KERNEL node=-1 "
                          "accounted=false"))
    [v] = check(faulty).violations
    assert (v.line, v.invariant, v.event) == (line, "size_class", "kmem_cache_alloc")


def test_large_kmalloc_class_is_a_page_block():
    lines = lines_of(GCC)
    i = first(lines, r" kmalloc: ")
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmalloc",
                          "call_site=f+0x1/0x2 ptr=ffff888123400000 bytes_req=9000 "
                          "bytes_alloc=12288 gfp_flags=GFP_KERNEL node=-1 accounted=false"))
    [v] = check(faulty).violations
    assert (v.line, v.invariant) == (line, "size_class")
    assert "class is 16384" in v.message


def test_power_of_two_object_not_naturally_aligned():
    lines = lines_of(GCC)
    i = first(lines, r" kmalloc: ")
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmalloc",
                          "call_site=f+0x1/0x2 ptr=ffff888123456020 bytes_req=64 "
                          "bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false"))
    [v] = check(faulty).violations
    assert (v.line, v.invariant) == (line, "natural_alignment")


def test_live_object_partly_overlapped():
    lines = lines_of(GCC)
    # (after line 29, where the checker has learnt the direct map base: object
    # conflicts before it are only warnings)
    i = first(lines, r"kmem_cache_alloc: .*name=filp bytes_req=\d+ bytes_alloc=(\d+)", 100)
    ptr = int(re.search(r"ptr=([0-9a-f]+)", lines[i]).group(1), 16)
    # a 96-byte kmalloc object starting 32 bytes into the live one, right after it
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmalloc",
                          f"call_site=f+0x1/0x2 ptr={ptr + 32:016x} bytes_req=96 "
                          "bytes_alloc=96 gfp_flags=GFP_KERNEL node=-1 accounted=false"))
    c = check(faulty)
    v = c.violations[0]
    assert (v.line, v.invariant, v.event) == (line, "no_overlap", "kmalloc")
    # any later one is a real object meeting the injected one
    assert all(f"{ptr + 32:#x}" in w.message for w in c.violations[1:])
    assert f"{ptr:#x}" in v.message and f"line {i + 1}" in v.message


def freed_page_reused():
    """An object, its page freed, then another object overlapping it (no conflict)."""
    lines = lines_of(GCC)
    i = first(lines, r"kmem_cache_alloc: .*name=filp ", 100)     # (base learnt)
    ptr = int(re.search(r"ptr=([0-9a-f]+)", lines[i]).group(1), 16)
    pfn = (ptr - 0xFFFF888000000000) >> 12
    faulty, _ = inject(lines, i + 1, event_line(lines[i], "mm_page_free",
                       f"page=ffffea0000000000 pfn={pfn:#x} order=0"))
    faulty, _ = inject(faulty, i + 2, event_line(lines[i], "kmalloc",
                       f"call_site=f+0x1/0x2 ptr={ptr + 32:016x} bytes_req=96 "
                       "bytes_alloc=96 gfp_flags=GFP_KERNEL node=-1 accounted=false"))
    # (freed again at once: the page was not really freed, later objects come there)
    faulty, _ = inject(faulty, i + 3, event_line(lines[i], "kfree",
                       f"call_site=f+0x1/0x2 ptr={ptr + 32:016x}"))
    return faulty


def test_object_in_a_freed_page_may_be_reused_by_another_cache():
    """The page free in between ends the old objects: no violation."""
    assert check(freed_page_reused()).violations == []


def vmap_prefix():
    """The python-threads trace up to and including its first alloc_vmap_area."""
    lines = lines_of(THREADS)
    return lines[:first(lines, r"alloc_vmap_area: va_start: \d+ .*failed=0") + 1]


def test_vmap_area_outside_its_range():
    lines = vmap_prefix()
    m = re.search(r"vstart=0x([0-9a-f]+)", lines[-1])
    vstart = int(m.group(1), 16)
    faulty, line = inject(lines, len(lines), event_line(lines[-1], "alloc_vmap_area",
                          f"va_start: {vstart - 8192} size=8192 align=4096 "
                          f"vstart={vstart:#x} vend=0xffffe8ffffffffff failed=0"))
    [v] = check(faulty).violations
    assert (v.line, v.invariant, v.event) == (line, "vm_area_bounds", "alloc_vmap_area")


def test_vmap_area_misaligned():
    lines = vmap_prefix()
    faulty, line = inject(lines, len(lines), event_line(lines[-1], "alloc_vmap_area",
                          f"va_start: {0xFFFFC90000001000} size=20480 align=16384 "
                          "vstart=0xffffc90000000000 vend=0xffffe8ffffffffff failed=0"))
    # page-aligned, not 16 KiB-aligned
    [v] = check(faulty).violations
    assert (v.line, v.invariant) == (line, "vm_area_bounds")


def test_lazily_freed_area_reused_before_a_purge():
    lines = vmap_prefix()
    alloc = lines[-1]
    va = int(re.search(r"va_start: (\d+)", alloc).group(1))
    faulty = list(lines) + [event_line(alloc, "free_vmap_area_noflush",
                                       f"va_start={va:#x} nr_lazy=5 nr_lazy_max=32768"),
                            alloc]
    [v] = check(faulty).violations
    assert (v.line, v.invariant) == (len(faulty), "no_overlap")
    # ... and after a purge of its range it may be reused
    purged = faulty[:-1] + [event_line(alloc, "purge_vmap_area_lazy",
                                       f"start={va:#x} end={va + (1 << 20):#x} "
                                       "num_purged=1"), alloc]
    assert check(purged).violations == []


def test_malformed_line_is_an_error_at_its_line_and_the_rest_is_checked():
    lines = lines_of(GCC)
    i = first(lines, r" kmalloc: ")
    bad = lines[i].replace("ptr=", "ptr=zz")
    j = first(lines, r"mm_page_alloc: .* order=3 ")
    misaligned = re.sub(r"pfn=0x([0-9a-f]+)",
                        lambda m: f"pfn={int(m.group(1), 16) + 1:#x}", lines[j])
    faulty = list(lines)
    faulty[i] = bad
    faulty[j] = misaligned
    c = check(faulty)
    assert [e["line"] for e in c.errors] == [i + 1]
    assert "kmalloc" in c.errors[0]["message"] and "ptr" in c.errors[0]["message"]
    assert [(v.line, v.invariant) for v in c.violations] == [(j + 1, "buddy_alignment")]


def test_garbage_line_is_an_error():
    lines = lines_of(GCC)
    faulty, line = inject(lines, 100, "this is not a trace line\n")
    c = check(faulty)
    assert [e["line"] for e in c.errors] == [line]


# ---------------------------------------------------------------- strict faults
def test_live_page_block_allocated_again_is_a_warning_and_strict_violation():
    lines = lines_of(GCC)
    i = first(lines, r"mm_page_alloc: .* order=3 ")
    faulty, line = inject(lines, i + 1, lines[i])
    c = check(faulty)
    assert c.violations == []
    [w] = only(c.warnings, line)
    assert (w.invariant, w.cause) == ("no_overlap", "untraced_page_free")
    s = check(faulty, strict=True)
    assert [(v.line, v.invariant) for v in s.violations if v.cause == "untraced_page_free"] \
        == [(line, "no_overlap")]


def test_live_vmap_area_allocated_again_is_a_warning_and_strict_violation():
    lines = vmap_prefix()
    faulty = list(lines) + [lines[-1]]
    c = check(faulty)
    assert c.violations == []
    [w] = only(c.warnings, len(faulty))
    assert (w.invariant, w.cause) == ("no_overlap", "untraced_vmap_free")
    s = check(faulty, strict=True)
    assert [(v.line, v.invariant) for v in s.violations] == [(len(faulty), "no_overlap")]


def test_strict_turns_every_real_warning_into_a_violation():
    c = check(lines_of(GCC), strict=True)
    assert c.warnings == []
    assert c.violations and all(v.cause == "untraced_object_free" for v in c.violations)


def test_page_block_taken_from_buddy_while_live():
    lines = lines_of(GCC)
    i = first(lines, r"mm_page_alloc: .* order=3 ")
    pfn = re.search(r"pfn=(0x[0-9a-f]+)", lines[i]).group(1)
    faulty, line = inject(lines, i + 1, event_line(lines[i], "mm_page_alloc_zone_locked",
                          f"page=ffffea0000000000 pfn={pfn} order=0 migratetype=0 "
                          "percpu_refill=1"))
    [w] = only(check(faulty).warnings, line)
    assert w.invariant == "no_overlap"
    assert [v.line for v in check(faulty, strict=True).violations
            if v.cause == "untraced_page_free"] == [line]


def test_split_block_freed_page_by_page_is_no_conflict():
    """split_page: an order-3 block freed as eight order-0 pages, then reused."""
    lines = lines_of(GCC)
    i = first(lines, r"mm_page_alloc: .* order=3 ")
    pfn = int(re.search(r"pfn=0x([0-9a-f]+)", lines[i]).group(1), 16)
    extra = [event_line(lines[i], "mm_page_free", f"page=ffffea0000000000 pfn={pfn + k:#x} "
                        "order=0") for k in range(8)]
    extra.append(event_line(lines[i], "mm_page_alloc", f"page=ffffea0000000000 "
                            f"pfn={pfn + 5:#x} order=0 migratetype=0 gfp_flags=GFP_KERNEL"))
    faulty = list(lines[:i + 1]) + extra + list(lines[i + 1:])
    c = check(faulty, strict=True)
    assert not [v for v in c.violations if v.cause == "untraced_page_free"]


# ---------------------------------------------------------------- the inline fast path
class _FullHandlersOnly(TraceChecker):
    """The reference for the inline fast path of TraceChecker._loop: every event line
    split whole and given to its full handler."""

    def _loop(self, chunks, progress, by_event):
        for lineno, raw in itertools.chain.from_iterable(chunks):   # raw bytes lines
            line = raw.decode("utf-8", "replace")
            t = [tok.decode("utf-8", "replace") for tok in raw.split()]
            h = self.handlers.get(t[4]) if len(t) > 4 else None
            if h is None:
                self._slow_line(line, lineno)
                continue
            by_event[t[4]] += 1
            if self.sync_cpus:
                self._see_cpu(t[1], lineno)
            self._full(h, t, lineno)


def _same_as_full_handlers(lines, strict=False):
    fast = check(lines, strict=strict).to_json()
    ref = _FullHandlersOnly(strict=strict)
    ref.run(io.StringIO("".join(lines)))
    assert fast == ref.to_json()
    return fast


@pytest.mark.parametrize("name", [GCC, THREADS, "ls-gcc-trace-file-overrun.txt.xz",
                                  "ls-lost-events.txt.xz"])
def test_fast_path_gives_the_full_handlers_results(name):
    _same_as_full_handlers(lines_of(name), strict=name == GCC)


def damaged(lines, seed, rate=0.03, kinds=7):
    """`lines` with `rate` of them damaged (a token dropped, cut or extended, an order,
    size or address changed, a failed-allocation page; kinds=8 also puts a space in
    the comm), some duplicated or moved to another CPU."""
    rnd = random.Random(seed)
    out = []
    for line in lines:
        r = rnd.random()
        if r < rate:
            t = line.split(" ")
            k, i = rnd.randrange(kinds), rnd.randrange(len(t))
            if k == 0:
                del t[i]
            elif k == 1:
                t[i] = t[i][:-1]
            elif k == 2:
                t[i] += "x"
            elif k == 3:
                t.insert(i, "foo=1")
            elif k == 4:
                t = [x.replace("order=0", f"order={rnd.randrange(12)}") for x in t]
            elif k == 5:
                t = [x.replace("bytes_alloc=", f"bytes_alloc={rnd.randrange(3)}") for x in t]
            elif k == 6:
                t = [x[:-1] + rnd.choice("0123456789abcdef")
                     if x.startswith(("pfn=", "ptr=")) else x for x in t]
            else:
                t.insert(0, "my prog")
            line = " ".join(t).rstrip("\n") + "\n"
        elif r < rate + 0.005:
            out.append(line)
        elif r < rate + 0.007:
            line = line.replace("[00", "[01")
        out.append(line)
    return out


def test_fast_path_gives_the_full_handlers_results_on_damaged_lines():
    report = _same_as_full_handlers(damaged(lines_of(GCC), seed=7))
    assert report["errors"] and report["violations"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_processes_agree_on_damaged_traces(seed):
    """5% of the lines damaged, comms with spaces among them (the page process then
    cannot forward an object line unsplit), and a buffer-overrun trace after: check()
    requires the two-process report to equal the one-process report."""
    lines = lines_of(GCC) + lines_of("ls-gcc-trace-file-overrun.txt.xz")[:20000]
    report = check(damaged(lines, seed, rate=0.05, kinds=8))
    assert report.errors and report.violations


@pytest.mark.parametrize("null", ["(null)", "0000000000000000"])
def test_failed_page_allocation_is_not_a_live_block(null):
    """page=NULL (pfn=0x0) is a failed allocation: a later block at pfn 0 is no clash."""
    lines = lines_of(GCC)
    i = first(lines, r"mm_page_alloc: ")
    failed = event_line(lines[i], "mm_page_alloc",
                        f"page={null} pfn=0x0 order=0 migratetype=0 gfp_flags=GFP_KERNEL")
    real = event_line(lines[i], "mm_page_alloc",
                      "page=ffffea0000000000 pfn=0x0 order=0 migratetype=0 gfp_flags=GFP_KERNEL")
    # a block near pfn 0 first, so the checker tracks that range (its fast path)
    near = event_line(lines[i], "mm_page_alloc",
                      "page=ffffea0000000040 pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL")
    faulty, _ = inject(lines, i + 1, near)
    faulty, _ = inject(faulty, i + 2, failed)
    faulty, _ = inject(faulty, i + 3, real)
    base, got = check(lines), check(faulty)
    assert got.violations == [] and len(got.warnings) == len(base.warnings)


# ---------------------------------------------------------------- two processes
def test_two_processes_differ_when_page_frees_do_not_reach_the_object_process(monkeypatch):
    """check() compares the two-process report with the one-process one; this shows
    the comparison can fail: an object process that ignores page frees reports the
    reuse of a freed page as an overlap."""
    from kmemspec.trace import check as trace_check
    monkeypatch.setitem(trace_check.PAGE_CODES_B, b"mm_page_free:", 2)    # not forwarded
    text = "".join(freed_page_reused())
    one = check_stream(io.StringIO(text))
    two = check_stream(io.StringIO(text), jobs=2)
    assert one.violations == [] and [v.invariant for v in two.violations] == ["no_overlap"]


def test_two_processes_differ_when_gaps_do_not_reach_the_object_process(monkeypatch):
    """The page process finds the tracing gaps; without them the object process
    reports as violations what a lost event explains."""
    lines = lines_of("ls-lost-events.txt.xz")
    text = "".join(lines)
    one = check_stream(io.StringIO(text)).to_json()
    role_objects = TraceChecker.role_objects

    def deaf(self):
        role_objects(self)
        self.tracing_gap = lambda line, cause: None
    monkeypatch.setattr(TraceChecker, "role_objects", deaf)
    two = check_stream(io.StringIO(text), jobs=2).to_json()
    assert two != one


def test_object_process_failure_is_an_error_not_a_hang(monkeypatch):
    def broken(self, *args):
        raise ZeroDivisionError("seeded")
    monkeypatch.setattr(TraceChecker, "_place", broken)
    with pytest.raises(RuntimeError, match="(?s)object process.*seeded"):
        check_stream(io.StringIO("".join(lines_of(GCC))), jobs=2)


def test_input_failure_stops_the_object_process(monkeypatch):
    """A read error in the page process ends the check; the object process is
    stopped, not left waiting."""
    import multiprocessing

    class Failing(io.BytesIO):
        def readlines(self, hint=-1):
            if self.tell() > 0:
                raise OSError("seeded read error")
            return super().readlines(hint)
    data = "".join(lines_of(GCC)).encode() * 2
    with pytest.raises(OSError, match="seeded"):
        check_stream(Failing(data), jobs=2)
    assert multiprocessing.active_children() == []


def test_page_process_notes_the_cpu_of_object_lines_it_forwards_unsplit():
    """After a buffer overrun the trace is complete only from the line where the
    last CPU appears. The page process forwards object lines without splitting them
    once it knows where the event token is, but not while it waits for CPUs: an
    object event on CPU 1 completes the set here."""
    lines = lines_of(GCC)
    k = first(lines, r"\[000\].* kmalloc: ")
    p = first(lines, r"\[000\].* mm_page_alloc: ")
    trace = [lines[k],                                    # teaches where events are
             "# entries-in-buffer/entries-written: 10/20   #P:2\n",
             lines[k].replace("[000]", "[001]"),          # CPU 1, an object event
             lines[p]]                                    # CPU 0: all CPUs seen
    sent = []
    c = TraceChecker()
    c.role_pages(lambda nos, text: sent.append(text))
    c.run(io.StringIO("".join(trace)))
    assert c.sync_cpus == 0 and c.trust_line == 4
    assert b"[001]" in sent[0]


def test_direct_map_base_moved_by_kaslr_is_learnt_from_a_large_kmalloc():
    """With CONFIG_RANDOMIZE_MEMORY the direct map does not start at PAGE_OFFSET; a
    page free must still end the objects of its page. The checker learns the base
    from a large kmalloc and the order > 1 block traced just before it on its CPU."""
    head = "  bash-1 [000] .....   1.000000: "
    pfn = 0x12340
    text = (f"{head}mm_page_alloc: page=ffffea0000000000 pfn={pfn:#x} order=2 "
            "migratetype=0 gfp_flags=GFP_KERNEL\n"
            f"{head}kmalloc: call_site=f+0x1/0x2 ptr={0xFFFF9A0000000000 + pfn * 4096:016x} "
            "bytes_req=16384 bytes_alloc=16384 gfp_flags=GFP_KERNEL node=-1 accounted=false\n")
    c = check([text])
    assert c.vp0_learnt and c.vp0 << 12 == 0xFFFF9A0000000000
    assert not c.violations and not c.warnings


def shifted(lines, to: str):
    """The trace with its direct map at `to` instead of ffff888000000000."""
    return [ln.replace("ptr=ffff888", "ptr=" + to) for ln in lines]


def shape(c):
    return (c.counts, [(f.line, f.invariant, f.cause) for f in c.violations + c.warnings])


@pytest.mark.parametrize("to", ["ffff9a0",         # KASLR (a multiple of 1 GiB)
                                "ff11000"])        # 5-level paging's direct map
@pytest.mark.parametrize("name", [GCC, "python-alloc.txt.xz"])
def test_kaslr_and_5_level_direct_maps_give_the_same_report(name, to):
    """The base is learnt from new slabs (order > 1 blocks, then the first object of
    a page never seen, on the same CPU): the report is the unshifted one."""
    plain = check(lines_of(name))
    c = check(shifted(lines_of(name), to))
    assert c.vp0_learnt and c.vp0 << 12 == int(to.ljust(16, "0"), 16)
    assert not c.errors and shape(c) == shape(plain)
    # the injected fault of test_live_object_partly_overlapped is still found
    assert check(shifted(freed_page_reused(), to)).violations == []


def test_direct_map_base_not_learnt_is_a_warning_not_false_violations():
    """Without order > 1 blocks and large kmallocs the base cannot be learnt: the
    frees land on the wrong pages, and the clashes that follow are warnings
    (direct_map_unknown), with one warning saying why; none is a violation."""
    moved = [ln for ln in shifted(freed_page_reused(), "ffff9a0")
             if not re.search(r"mm_page_alloc: .* order=([2-9]|10) ", ln)]
    c = check(moved)
    assert not c.vp0_learnt and c.violations == []
    causes = Counter(w.cause for w in c.warnings)
    assert causes["direct_map_unknown"] >= 2
    assert any("could not be learnt" in w.message for w in c.warnings)
    # broken on purpose: taking the guessed base as known makes the clash a violation
    c = TraceChecker()
    c.vp0_learnt = True
    c._vote_page_offset = lambda *a: None
    c.run(io.StringIO("".join(moved)))
    assert [v.invariant for v in c.violations] == ["no_overlap"]


# ---------------------------------------------------------------- hostile input (issue 16)
def _peak_bytes(fn):
    """Peak Python heap (tracemalloc) while fn() runs, and its result."""
    import tracemalloc
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def test_countless_lost_marker_is_a_tracing_gap():
    """`CPU:1 [LOST EVENTS]` (Linux 6.x kernel/trace/trace.c: print_trace_line, when
    the count is unknown) is a gap like `[LOST n EVENTS]`, not an input error."""
    lines = list(lines_of("ls-lost-events.txt.xz"))
    counted = [i for i, ln in enumerate(lines) if re.match(r"CPU:\d+ \[LOST \d+ EVENTS\]", ln)]
    plain = check(lines)
    for i in counted:
        lines[i] = re.sub(r"\[LOST \d+ EVENTS\]", "[LOST EVENTS]", lines[i])
    c = check(lines)
    assert c.errors == [] and c.violations == []
    gaps = [w.line for w in c.warnings if w.invariant == "trace_complete"]
    assert gaps == [i + 1 for i in counted]
    assert c.lost == 0 and plain.lost > 0
    # every other finding is the one of the counted markers
    assert c.counts == plain.counts


def test_junk_lines_are_counted_and_memory_stays_bounded():
    """Errors beyond max_errors are only counted: the heap does not grow with them
    (20,000 junk lines here; benches/bench_trace_hostile.py runs 2M)."""
    junk = "".join(f"junk {i} \x00\xff not an event\n" for i in range(20000))
    peak, c = _peak_bytes(lambda: check_stream(io.StringIO(junk), max_errors=100))
    assert c.n_errors == 20000 and len(c.errors) == 100 and c.exit_code == 2
    assert peak < 8 << 20, peak


def test_huge_bytes_alloc_is_a_size_class_violation_at_once():
    """bytes_alloc=68719476736 (64 GiB) is larger than any block (order 10: 4 MiB):
    a size_class violation, and the object is not placed page by page."""
    lines = lines_of(GCC)[:2000]     # the start of the real trace: its first kmalloc is line 5
    i = first(lines, r" kmalloc: ")
    for event, fields in (
            ("kmalloc", "call_site=f+0x1/0x2 ptr=ffff888123400000 bytes_req=68719476736 "
                        "bytes_alloc=68719476736 gfp_flags=GFP_KERNEL node=-1 accounted=false"),
            ("kmem_cache_alloc", "call_site=f+0x1/0x2 ptr=ffff888123400000 name=x "
                                 "bytes_req=8 bytes_alloc=68719476736 gfp_flags=GFP_KERNEL "
                                 "node=-1 accounted=false")):
        faulty, line = inject(lines, i + 1, event_line(lines[i], event, fields))
        peak, c = _peak_bytes(lambda: check(faulty))
        [v] = c.violations
        assert (v.line, v.invariant) == (line, "size_class")
        assert "4194304" in v.message            # 2^(10 + 12): the largest block
        assert peak < 64 << 20, peak


def test_sparse_page_events_cost_little_memory():
    """500 page blocks on pfns 2^20 apart: the live-frame state grows with the
    blocks, not with the pfn space (was 256 KiB per block)."""
    head = "  bash-1 [000] .....   1.000000: "
    text = "".join(f"{head}mm_page_alloc: page=ffffea0000000000 pfn={k << 20:#x} order=0 "
                   "migratetype=0 gfp_flags=GFP_KERNEL\n" for k in range(500))
    peak, c = _peak_bytes(lambda: check_stream(io.StringIO(text)))
    assert c.events == 500 and not c.errors and not c.violations
    assert peak < 16 << 20, peak


def test_large_kmalloc_traced_twice_is_one_object():
    """Linux 6.18: a large kvmalloc is traced by __kmalloc_large_node_noprof (call
    site __kvmalloc_node_noprof) and again by __do_kmalloc_node (call site the
    caller): one object, not an untraced free. On another CPU the same pair is two
    allocations of one live object (an untraced free explains it)."""
    lines = lines_of(GCC)
    i = first(lines, r" kmalloc: ", 200)
    pfn = 0x7654
    ptr = 0xFFFF888000000000 + pfn * 4096
    alloc = event_line(lines[i], "mm_page_alloc", f"page=ffffea0000000000 pfn={pfn:#x} "
                       "order=2 migratetype=0 gfp_flags=GFP_KERNEL")
    def km(site, cpu="[000]"):
        return event_line(lines[i], "kmalloc", f"call_site={site}+0x1/0x2 ptr={ptr:016x} "
                          "bytes_req=16000 bytes_alloc=16384 gfp_flags=GFP_KERNEL "
                          "node=-1 accounted=false").replace(lines[i].split()[1], cpu, 1)
    cpu = lines[i].split()[1]
    twice = list(lines[:i]) + [alloc, km("__kvmalloc_node_noprof", cpu),
                               km("alloc_fdtable", cpu)] + list(lines[i:])
    plain = check(lines)
    c = check(twice)
    assert shape(c)[0] == plain.counts and not c.violations
    other = "[007]" if cpu != "[007]" else "[006]"
    c = check(list(lines[:i]) + [alloc, km("__kvmalloc_node_noprof", cpu),
                                 km("alloc_fdtable", other)] + list(lines[i:]))
    assert [w.line for w in c.warnings if w.cause == "untraced_object_free"
            and w.line == i + 3] == [i + 3]


def test_lazy_free_traced_after_the_purge_that_took_it_is_a_race_warning():
    """free_vmap_area_noflush traces after the area joined the purge list (Linux
    6.18 mm/vmalloc.c), so a purge on another CPU may take the area and trace first:
    a free inside the range of the purge just traced, then the area reused, is the
    lazy_free_traced_late warning; with no such purge before it, a violation."""
    lines = vmap_prefix()
    alloc = lines[-1]
    va = int(re.search(r"va_start: (\d+)", alloc).group(1))
    purge = event_line(alloc, "purge_vmap_area_lazy",
                       f"start={va:#x} end={va + (1 << 20):#x} num_purged=1")
    free = event_line(alloc, "free_vmap_area_noflush",
                      f"va_start={va:#x} nr_lazy=5 nr_lazy_max=32768")
    c = check(list(lines) + [purge, free, alloc])
    assert not c.violations
    assert [w.cause for w in c.warnings if w.line == len(lines) + 3] == ["lazy_free_traced_late"]
    [v] = check(list(lines) + [free, purge.replace(f"start={va:#x}", f"start={va + 4096:#x}"),
                               alloc]).violations
    assert v.invariant == "no_overlap"
