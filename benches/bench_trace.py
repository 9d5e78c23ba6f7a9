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

The bare loop reads the file the way `kmemspec trace` does (text, UTF-8, errors
replaced: trace/parse.py, open_trace) and does nothing but split each line.
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


def cpu_of(cmd: list[str]) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime), wall


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fixtures", action="store_true",
                    help="also time each fixture in this process")
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
    runs = {"bare": bare, "jobs 2": kmemspec + ["--jobs", "2"],
            "jobs 1": kmemspec + ["--jobs", "1"]}
    wall = dict.fromkeys(runs, float("inf"))
    cpu = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeat):
        for name, cmd in runs.items():
            c, w = cpu_of(cmd)
            cpu[name], wall[name] = min(cpu[name], c), min(wall[name], w)
    print(f"trace: {OUT} ({lines} lines, {size / 1e6:.0f} MB); machine: "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"bare read+split loop: {wall['bare']:.2f} s wall, {cpu['bare']:.2f} s CPU")
    for name in ("jobs 2", "jobs 1"):
        print(f"kmemspec trace --{name.replace(' ', ' ')}: {wall[name]:.2f} s wall "
              f"({lines / wall[name] / 1e3:.0f}k events/s, ratio "
              f"{wall[name] / wall['bare']:.2f}x), {cpu[name]:.2f} s CPU (ratio "
              f"{cpu[name] / cpu['bare']:.2f}x)")
    print("target: >= 500k events/s, ratio <= 2.5x; `kmemspec trace FILE` uses "
          "--jobs 2 here (auto: 2 CPUs, input >= 1 MiB)")
    if args.fixtures:
        print("fixtures (in-process CPU time, best of --repeat):")
        fixtures(args.repeat)


if __name__ == "__main__":
    main()
