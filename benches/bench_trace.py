"""Benchmark (not a test): `kmemspec trace` speed on a >= 1M-event real trace.

Builds /tmp/kmemspec-bench-trace.txt (not committed) by concatenating the recorded
fixtures in tests/data/traces, each copy relocated to its own pfn and address range
(pfn + k * 2^22, addresses + k * 2^34) so that copies do not meet in the state
(vmap events are kept from the first copy only).
Prints events/s of the checker and the ratio of `kmemspec trace FILE` (a process)
to a bare Python loop that reads and splits the lines of the same file (a process),
by wall time (what the user waits for) and by CPU time (user + sys of all processes:
the work done), each the best of --repeat runs; for --jobs 2 (two processes, the
default on this machine) and --jobs 1.

The bare loop reads the file the way `kmemspec trace` did (text, UTF-8, errors
replaced: trace/parse.py, open_trace) and does nothing but split each line. Every
figure reads the same uncompressed file (from the page cache after the first run):
no decompression is timed on either side. The in-process line also gives the bare
loop over bytes (`open(FILE, "rb")`, as the engines read), the cheaper of the two.
Each line of figures carries the 1-minute load average seen during its runs (the
machine is shared: CPU times rise with the load, as the caches are shared too).
--fixtures also prints, per fixture, the checker's events/s in this process (the
fixture decompressed into memory first, so xz decoding is not counted) and its ratio
to the same bare loop over the same text.

    python benches/bench_trace.py [--events 1200000] [--repeat 3] [--fixtures]
                                  [--vm linux-6.1-686pae.txt.xz]

--vm NAME replays one fixture of tests/data/traces/vm (another kernel, recorded with
benches/record_vm.sh) instead, into its own file. 32-bit pointers cannot be moved to
a fresh range, so on i386 only the pfns are relocated: later copies re-allocate the
addresses of earlier ones, which the checker reports as untraced_object_free
warnings (and some overlaps) — more work for the checker, not less.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import resource
import subprocess
import sys
import time

from kmemspec.trace.parse import open_trace

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "traces"
OUT = pathlib.Path(os.environ.get('BENCH_TRACE', '/tmp/kmemspec-bench-trace.txt'))
# Only traces recorded with the global clock and without lost events are replayed.
SOURCES = ("tar-gzip.txt.xz", "ls-usr-share.txt.xz", "python-alloc.txt.xz",
           "python-threads.txt.xz", "gcc-hello.txt.xz")
BARE = ("import sys\n"
        "with open(sys.argv[1], encoding='utf-8', errors='replace') as f:\n"
        "    for line in f:\n"
        "        line.split()\n")

_PFN = re.compile(r"pfn=0x([0-9a-f]+)")
_PTR = re.compile(r"ptr=(ffff[0-9a-f]{12})")
VM_DATA = DATA / "vm"


def relocate(line: str, k: int) -> str:
    if not k or line.startswith("#"):
        return line
    if "vmap_area" in line:
        return ""           # vmap addresses are not relocated: keep one copy's
    line = _PFN.sub(lambda m: f"pfn={int(m.group(1), 16) + (k << 22):#x}", line)
    return _PTR.sub(lambda m: f"ptr={int(m.group(1), 16) + (k << 34):016x}", line)


def build(target_events: int, sources=SOURCES, data=DATA, out_path=None) -> int:
    n = 0
    k = 0
    with open(out_path or OUT, "w") as out:
        while n < target_events:
            for name in sources:
                stream, _ = open_trace(str(data / name))
                for line in stream:
                    if not line.startswith("#") or (k == 0 and n == 0):
                        line = relocate(line, k)
                        out.write(line)
                        n += bool(line) and not line.startswith("#")
                k += 1
                if n >= target_events:
                    break
    return n


def cpu_of(cmd: list[str]) -> tuple[float, float, float]:
    """(cpu seconds, wall seconds, peak RSS in MiB) of a child process (its own peak:
    it runs under a fresh python that reports it, see RSS)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", RSS] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = float(p.stderr.strip().rsplit("rss=", 1)[-1]) if "rss=" in p.stderr else 0.0
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime), wall, rss


# Runs a command in a child and prints the child's own peak RSS (ru_maxrss of its
# children: the command's process tree's largest process).
RSS = ("import resource, subprocess, sys\n"
       "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
       "print(f'rss={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f}',"
       " file=sys.stderr)\n")


def warm_up() -> tuple[float, float]:
    """(seconds to compile the compiled engine with an empty numba cache, seconds to
    load it from the cache), each in a fresh process on a 2-line trace."""
    import tempfile
    tiny = ("x-1 [000] ..... 1.0: kmalloc: call_site=f ptr=ffff888000001000 "
            "bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false\n")
    out = []
    with tempfile.TemporaryDirectory() as cache, tempfile.NamedTemporaryFile(
            "w", suffix=".txt") as f:
        f.write(tiny)
        f.flush()
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = ("import io, time; t = time.perf_counter(); "
                "from kmemspec.trace.check import check_stream; "
                f"check_stream(open({f.name!r}), engine='compiled'); "
                "print(time.perf_counter() - t)")
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, check=True)
            out.append(float(r.stdout))
    return out[0], out[1]


def fixtures(repeat: int) -> None:
    """Per fixture, in this process: checker events/s and ratio to the bare loop."""
    import io

    from kmemspec.trace.check import check_stream

    for path in sorted(DATA.glob("*.txt.xz")):
        text = open_trace(str(path))[0].read()
        best_c = best_b = float("inf")
        for _ in range(repeat):
            t = time.process_time()
            c = check_stream(io.StringIO(text))
            best_c = min(best_c, time.process_time() - t)
            t = time.process_time()
            for line in io.StringIO(text):
                line.split()
            best_b = min(best_b, time.process_time() - t)
        print(f"  {path.name:34} {c.events:>8} events  {c.events / best_c / 1e3:5.0f}k "
              f"events/s  ratio {best_c / best_b:.2f}x")


INPROC = """
import os, resource, sys, time
from kmemspec.trace.check import check_stream
check_stream(open(sys.argv[1], "rb"), engine="compiled")   # warm-up: load the cache
best_w = best_c = best_b = best_bb = float("inf")
loads = []
for _ in range(int(sys.argv[3])):
    w, c = time.perf_counter(), time.process_time()
    check_stream(open(sys.argv[2], "rb"), engine="compiled")
    best_w = min(best_w, time.perf_counter() - w)
    best_c = min(best_c, time.process_time() - c)
    loads.append(os.getloadavg()[0])
    c = time.process_time()
    with open(sys.argv[2], encoding="utf-8", errors="replace") as f:
        for line in f:
            line.split()
    best_b = min(best_b, time.process_time() - c)
    c = time.process_time()
    with open(sys.argv[2], "rb") as f:
        for line in f:
            line.split()
    best_bb = min(best_bb, time.process_time() - c)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(best_w, best_c, best_b, best_bb, rss, min(loads), max(loads))
"""


def in_process(repeat: int) -> tuple[float, ...]:
    """(wall, CPU) of the compiled engine checking OUT in one process after its
    warm-up, the bare loop's CPU in the same process (text, as BARE; and bytes,
    as the engine reads), the process's peak RSS, and the lowest and highest
    1-minute load average seen after its runs."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("# warm-up\n")
        f.flush()
        r = subprocess.run([sys.executable, "-c", INPROC, f.name, str(OUT), str(repeat)],
                           capture_output=True, text=True, check=True)
    return tuple(map(float, r.stdout.split()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fixtures", action="store_true",
                    help="also time each fixture in this process")
    ap.add_argument("--compiled-only", action="store_true",
                    help="time the bare loop and the compiled engine only")
    ap.add_argument("--vm", default=None,
                    help="replay this fixture of tests/data/traces/vm instead")
    args = ap.parse_args()
    global OUT
    if args.vm:
        OUT = OUT.with_name(f"kmemspec-bench-{args.vm.removesuffix('.txt.xz')}.txt")
        if not OUT.exists():
            print(f"building {OUT} ...", file=sys.stderr)
            build(args.events, (args.vm,), VM_DATA, OUT)
    elif not OUT.exists() or OUT.stat().st_size < args.events * 150:
        print(f"building {OUT} ...", file=sys.stderr)
        build(args.events)
    lines = sum(1 for _ in open(OUT, encoding="utf-8", errors="replace"))
    size = OUT.stat().st_size
    # the console script a user runs, from this interpreter's environment
    kmemspec = [os.path.join(os.path.dirname(sys.executable), "kmemspec"), "trace",
                str(OUT), "--json"]
    bare = [sys.executable, "-c", BARE, str(OUT)]
    runs = {"bare": bare, "engine compiled": kmemspec + ["--engine", "compiled"],
            "engine python --jobs 2": kmemspec + ["--engine", "python", "--jobs", "2"],
            "engine python --jobs 1": kmemspec + ["--engine", "python", "--jobs", "1"]}
    if args.compiled_only:
        del runs["engine python --jobs 2"], runs["engine python --jobs 1"]
    wall = dict.fromkeys(runs, float("inf"))
    cpu = dict.fromkeys(runs, float("inf"))
    rss = dict.fromkeys(runs, 0.0)
    first, cached = warm_up()
    inproc = in_process(args.repeat)
    loads = []
    for _ in range(args.repeat):
        loads.append(os.getloadavg()[0])
        for name, cmd in runs.items():
            c, w, r = cpu_of(cmd)
            cpu[name], wall[name] = min(cpu[name], c), min(wall[name], w)
            rss[name] = max(rss[name], r)
    print(f"trace: {OUT} ({lines} lines, {size / 1e6:.0f} MB); machine: "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"compiled engine warm-up: {first:.1f} s with an empty numba cache (once per "
          f"installation), {cached:.2f} s to load it from the cache (included below)")
    w, c, b, bb, inrss, lo, hi = inproc
    print(f"compiled engine in one process after its warm-up (check_stream on the file, "
          f"best of {args.repeat}; load average {lo:.2f}-{hi:.2f}): {w:.2f} s wall, "
          f"{c:.2f} s CPU: {lines / w / 1e6:.2f}M events/s wall, "
          f"{lines / c / 1e6:.2f}M per CPU second; the bare loop in the same process "
          f"over the same uncompressed file: text {b:.2f} s CPU (ratio {c / b:.2f}x), "
          f"bytes {bb:.2f} s CPU (ratio {c / bb:.2f}x); peak RSS of that process "
          f"{inrss:.0f} MiB")
    loads.append(os.getloadavg()[0])
    print(f"processes (best of {args.repeat}; load average {min(loads):.2f}-{max(loads):.2f}):")
    print(f"bare read+split loop: {wall['bare']:.2f} s wall, {cpu['bare']:.2f} s CPU, "
          f"peak RSS {rss['bare']:.0f} MiB")
    for name in runs:
        if name == "bare":
            continue
        print(f"kmemspec trace --{name}: {wall[name]:.2f} s wall "
              f"({lines / wall[name] / 1e3:.0f}k lines/s, ratio "
              f"{wall[name] / wall['bare']:.2f}x), {cpu[name]:.2f} s CPU "
              f"({lines / cpu[name] / 1e3:.0f}k lines/s, ratio "
              f"{cpu[name] / cpu['bare']:.2f}x), peak RSS {rss[name]:.0f} MiB")
    from kmemspec import cmd_trace
    auto = cmd_trace._jobs("auto", 1 << 30, object())
    print("targets: compiled >= 3,000,000 events/s in one process, ratio < 1; "
          "python >= 500k events/s, ratio <= 2.5x")
    print(f"`kmemspec trace FILE --engine python` uses --jobs {auto} here now (auto: 2 "
          f"CPUs, input >= 1 MiB, load average {cmd_trace._load():.2f} <= CPUs - 0.5 "
          f"for two)")
    if args.fixtures:
        print("fixtures (in-process CPU time, best of --repeat):")
        fixtures(args.repeat)


if __name__ == "__main__":
    main()
