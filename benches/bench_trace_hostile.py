"""Benchmark (not a test): `kmemspec trace` on hostile inputs, time and peak memory.

Runs `kmemspec trace FILE --json --jobs 1` as a child process on each input and
prints its wall time and peak RSS (ru_maxrss of the child):

- 2,000,000 junk lines (no event line: every one an input error; 1000 kept),
- 20 MB of random bytes,
- 2,000 mm_page_alloc events on pfns 2^20 apart (sparse page state),
- one kmalloc of bytes_alloc=68719476736 (64 GiB: a size_class violation).

    python benches/bench_trace_hostile.py
"""

from __future__ import annotations

import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

# `kmemspec` in this process, printing its own peak RSS (KiB) to stderr at exit
CHILD = ("import atexit, resource, sys\n"
         "atexit.register(lambda: sys.stderr.write("
         "'RSS %d' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
         "from kmemspec.cli import main\n"
         "sys.argv[0] = 'kmemspec'\n"
         "main()\n")
HEAD = "  bash-1 [000] .....   1.000000: "


def inputs(d: pathlib.Path):
    p = d / "junk.txt"
    with open(p, "w") as f:
        for i in range(0, 2_000_000, 10_000):
            f.write("".join(f"junk line {j} not an event\n" for j in range(i, i + 10_000)))
    yield "2M junk lines", p
    p = d / "random.bin"
    p.write_bytes(os.urandom(20 << 20))
    yield "20 MB random bytes", p
    p = d / "sparse.txt"
    p.write_text("".join(f"{HEAD}mm_page_alloc: page=ffffea0000000000 pfn={k << 20:#x} "
                         "order=0 migratetype=0 gfp_flags=GFP_KERNEL\n" for k in range(2000)))
    yield "2,000 sparse pfns", p
    p = d / "huge.txt"
    p.write_text(f"{HEAD}kmalloc: call_site=f+0x1/0x2 ptr=ffff888123400000 "
                 "bytes_req=68719476736 bytes_alloc=68719476736 gfp_flags=GFP_KERNEL "
                 "node=-1 accounted=false\n")
    yield "64 GiB kmalloc", p


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in inputs(pathlib.Path(tmp)):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", CHILD, "trace", str(path),
                                "--json", "--jobs", "1"], capture_output=True, text=True)
            wall = time.perf_counter() - t
            rss = int(r.stderr.rsplit("RSS ", 1)[1])
            print(f"{name:22} exit {r.returncode}  {wall:6.2f} s  peak RSS "
                  f"{rss / 1024:6.1f} MiB  report {len(r.stdout) / 1024:.0f} KiB",
                  flush=True)


if __name__ == "__main__":
    main()
