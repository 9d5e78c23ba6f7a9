"""Benchmark: mixed-size kmalloc/kfree pairs per second on a 4 GiB machine.

Not a test. Run: /tmp/venv/bin/python benches/bench_slab.py [--pairs N] [--profile P]
A pool of live objects is kept (so slabs are partly full, as in a running kernel);
each pair kmallocs a size drawn from a fixed mix and kfrees a random live object.
"""

from __future__ import annotations

import argparse
import random
import time

from kmemspec.model import boot
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.model.kmalloc import kfree, kmalloc

# mostly small objects, some medium, a few large (as in kernels' kmalloc traces)
SIZES = [8, 16, 24, 32, 40, 64, 96, 100, 128, 192, 200, 256, 300, 512, 700, 1024,
         1500, 2048, 4000, 8192]


def run(pairs: int, pool: int, profile: str, seed: int) -> float:
    if profile == "linux-6.x-x86_64":
        machine = boot(profile=profile, phys_pages=1048576, highmem_pages=0)
    else:
        # the seed's 4 GiB: 896 MiB low memory + 3200 MiB highmem
        machine = boot(phys_pages=229376, highmem_pages=819200)
    rng = random.Random(seed)
    sizes = [rng.choice(SIZES) for _ in range(pairs)]
    victims = [rng.randrange(pool) for _ in range(pairs)]
    live = [kmalloc(machine, rng.choice(SIZES), GFP_KERNEL) for _ in range(pool)]
    # CPU time of this process: on a shared machine, wall time also counts others' work
    start = time.process_time()
    for size, victim in zip(sizes, victims):
        addr = kmalloc(machine, size, GFP_KERNEL)
        kfree(machine, live[victim])
        live[victim] = addr
    elapsed = time.process_time() - start
    return pairs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500_000)
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--profile", default="linux-2.6-i386",
                        choices=["linux-2.6-i386", "linux-6.x-x86_64"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs on fresh machines; the best is reported")
    args = parser.parse_args()
    rates = sorted(run(args.pairs, args.pool, args.profile, args.seed)
                   for _ in range(args.repeat))
    print(f"{args.profile}: {rates[-1]:,.0f} kmalloc/kfree pairs per second, best of "
          f"{args.repeat} (median {rates[len(rates) // 2]:,.0f}; {args.pairs:,} pairs, "
          f"{args.pool:,} live objects; target >= 200,000)")


if __name__ == "__main__":
    main()
