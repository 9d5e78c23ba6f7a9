"""How fast and how small: every catalogue bug under `kmemspec conform` conditions.

Runs each faulty implementation in both modes exactly as the command does (isolated
child process, 200 examples, derandomized) and prints the table recorded in
spec/conformance.md: caught?, calls in the minimal counterexample (init not
counted), seconds to find and shrink it. Not run by the tests (no timing asserts).

    python benches/bench_conform.py [--examples N] [--no-isolate]
    python benches/bench_conform.py --throughput [--examples 5000] [--steps 200]

`--throughput` times `kmemspec conform` on the C page allocator (examples/c_buddy,
built with the system compiler) in refine mode: the issue-18 target is 5000 examples
of 200 steps in 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

from kmemspec.conform.catalogue import BUGS, VARIANTS
from kmemspec.conform.stateful import check_conformance


def throughput(examples: int, steps: int) -> None:
    """Seconds for `conform --part page` on the C example allocator."""
    stats: dict = {}
    import os
    import shutil
    import subprocess
    import tempfile

    from kmemspec.conform.adapter import load_target
    from kmemspec.conform.ctypes_adapter import HEADER_PATH

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("no C compiler: cannot build examples/c_buddy")
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "libbuddy.so")
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-I", os.path.dirname(HEADER_PATH),
                        "-o", lib, os.path.join(here, "..", "examples", "c_buddy", "buddy.c")],
                       check=True)
        target = load_target(lib)
        started = time.perf_counter()
        cpu = os.times()
        report = check_conformance(target.factory, mode="refine", max_examples=examples,
                                   step_count=steps, name="libbuddy.so", part="page",
                                   stats=stats)
        seconds = time.perf_counter() - started
        after = os.times()
    # CPU time of this process and of the child processes it waited for
    parent_cpu = (after.user - cpu.user) + (after.system - cpu.system)
    child_cpu = (after.children_user - cpu.children_user) + \
        (after.children_system - cpu.children_system)
    verdict = "conforms" if report is None else f"diverges: {report.divergence.reason}"
    sequences = max(stats.get("sequences", 0), 1)
    print(f"C page allocator, refine, {examples} examples x {steps} steps: {seconds:.1f} s "
          f"wall ({examples / seconds:.1f} sequences/s; {stats.get('sequences', 0)} "
          f"sequences run, {stats.get('calls', 0) / sequences:.0f} calls each on average, "
          f"{stats.get('calls', 0) / seconds:.0f} calls/s); CPU {parent_cpu:.1f} s checker "
          f"+ {child_cpu:.1f} s child -- {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--no-isolate", action="store_true")
    parser.add_argument("--throughput", action="store_true")
    args = parser.parse_args()
    if args.throughput:
        throughput(args.examples, args.steps)
        return
    print("| bug | layer | mode | caught? | calls | seconds | rule | answers only (no introspection) |")
    print("|---|---|---|---|---|---|---|---|")
    worst_calls, worst_seconds = 0, 0.0
    for entry in (*BUGS.values(), *VARIANTS.values()):
        for mode in ("refine", "strict"):
            started = time.perf_counter()
            report = check_conformance(entry.factory, mode=mode, max_examples=args.examples,
                                       isolate=not args.no_isolate, name=entry.name,
                                       part=entry.layer)
            seconds = time.perf_counter() - started
            expected = mode in entry.modes
            if report is None:
                caught, calls, rule = "no", "-", "-"
            else:
                caught = "yes"
                calls = report.nr_calls - 1
                rule = report.divergence.reason.split(":")[0]
                worst_calls = max(worst_calls, calls) if expected else worst_calls
            if expected:
                worst_seconds = max(worst_seconds, seconds)
            mark = "" if (report is not None) == expected else " (UNEXPECTED)"
            started = time.perf_counter()
            blind = check_conformance(entry.factory, mode=mode, max_examples=args.examples,
                                      isolate=not args.no_isolate, name=entry.name,
                                      introspect=False, part=entry.layer)
            blind_s = time.perf_counter() - started
            answers = (f"not found in {args.examples} examples" if blind is None else
                       f"{blind.nr_calls - 1} calls, {blind_s:.2f} s, "
                       f"{blind.divergence.reason.split(':')[0]}")
            print(f"| {entry.name} | {entry.layer} | {mode} | {caught}{mark} | {calls} | "
                  f"{seconds:.2f} | {rule} | {answers} |")
    print(f"\nworst over the bugs: {worst_calls} calls, {worst_seconds:.2f} s")


if __name__ == "__main__":
    main()
