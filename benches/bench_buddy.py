"""Benchmarks for boot and the buddy allocator (not part of the tests).

    python benches/bench_buddy.py [--json]

Rates are CPU time of this process (robust to other load on the machine).
Targets (issue 2, 2-core machine): 4 GiB boot < 1 s and < 300 MB peak RSS;
>= 300,000 order-0 alloc+free pairs per second.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

from kmemspec.model import boot
from kmemspec.model import page_alloc as pa
from kmemspec.model.gfp import GFP_HIGHUSER, GFP_KERNEL
from kmemspec.spec import check_all

FOUR_GIB = dict(phys_pages=229376, highmem_pages=(1 << 20) - 229376)

BOOT_CHILD = """
import resource, sys, time
t0 = time.process_time()
from kmemspec.model import boot
t1 = time.process_time()
m = boot(phys_pages=229376, highmem_pages=(1 << 20) - 229376)
t2 = time.process_time()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(t2 - t1, rss, m.nr_pages)
"""


def bench_boot() -> dict:
    """Boot a 4 GiB machine in a fresh interpreter: seconds and peak RSS (MB)."""
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", BOOT_CHILD], capture_output=True,
                             text=True, check=True).stdout.split()
        runs.append((float(out[0]), float(out[1])))
    return {"boot_4gib_s": min(r[0] for r in runs), "boot_4gib_peak_rss_mb": max(r[1] for r in runs),
            "frames": int(out[2])}


def pairs_per_second(machine, orders, n: int, gfp=GFP_KERNEL) -> float:
    alloc, free = pa.alloc_pages, pa.__free_pages
    t = time.process_time()
    for order in orders[:n]:
        page = alloc(machine, gfp, order)
        free(machine, page, order)
    return n / (time.process_time() - t)


def bench_pairs() -> dict:
    m = boot(**FOUR_GIB)
    # steady state, 2.6.12 policy: order-0 pairs go through CPU 0's hot list -- the
    # freed frame goes on its head and the next allocation takes it back
    first = pa.alloc_pages(m, GFP_KERNEL, 0)
    pa.__free_pages(m, first, 0)
    hot = m.zone_of(first.pfn).pageset[0].pcp[0]
    assert hot.list[0] == first.pfn
    steady = pairs_per_second(m, [0] * 300_000, 300_000)
    assert hot.list[0] == first.pfn
    # the same on the bare buddy core (page_policy "buddy"): hold one frame of a split
    # pair and free the other: the free one sits on the order-0 list with an
    # allocated buddy, so a pair neither splits nor merges
    m = boot(**FOUR_GIB, page_policy="buddy")
    first, second = pa.alloc_pages(m, GFP_KERNEL, 0), pa.alloc_pages(m, GFP_KERNEL, 0)
    pa.__free_pages(m, first, 0)
    zone = m.zone_of(first.pfn)
    assert zone.free_area[0].head == first.pfn
    steady_buddy = pairs_per_second(m, [0] * 300_000, 300_000)
    assert zone.free_area[0].head == first.pfn and second.pfn in m.page_owner
    # cold (bare buddy): HighMem holds only 1024-frame blocks, so every pair splits one
    # down to a single frame and merges it all the way back
    cold = pairs_per_second(boot(**FOUR_GIB, page_policy="buddy"), [0] * 50_000, 50_000,
                            gfp=GFP_HIGHUSER)
    # mixed orders 0..3 with 2,000 live blocks of random orders, freed at random
    m = boot(**FOUR_GIB)
    rng = random.Random(1)
    live = [(pa.alloc_pages(m, GFP_HIGHUSER, o), o) for o in (rng.randrange(4) for _ in range(2000))]
    n = 200_000
    orders = [rng.randrange(4) for _ in range(n)]
    picks = [rng.randrange(2000) for _ in range(n)]
    t = time.process_time()
    for order, i in zip(orders, picks):
        page = pa.alloc_pages(m, GFP_HIGHUSER, order)
        old, old_order = live[i]
        pa.__free_pages(m, old, old_order)
        live[i] = (page, order)
    mixed = n / (time.process_time() - t)
    return {"order0_pairs_per_s_steady": steady, "order0_pairs_per_s_steady_buddy": steady_buddy,
            "order0_pairs_per_s_split_merge": cold,
            "mixed_order_pairs_per_s": mixed}


def bench_invariants() -> dict:
    out = {}
    for label, config in (("1gib", {}), ("4gib", FOUR_GIB)):
        m = boot(**config)
        rng = random.Random(2)
        for _ in range(5000):
            pa.alloc_pages(m, GFP_HIGHUSER, rng.randrange(4))
        t = time.process_time()
        for _ in range(5):
            assert not any(check_all(m).values())
        out[f"invariant_check_ms_{label}"] = (time.process_time() - t) / 5 * 1000
    return out


def main() -> None:
    results = {**bench_boot(), **bench_pairs(), **bench_invariants()}
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1))
        return
    print(f"4 GiB boot ({results['frames']} frames): {results['boot_4gib_s'] * 1000:.0f} ms, "
          f"peak RSS {results['boot_4gib_peak_rss_mb']:.0f} MB   (target < 1 s, < 300 MB)")
    print(f"order-0 alloc+free pairs/s, steady state: {results['order0_pairs_per_s_steady']:,.0f}"
          "   (target >= 300,000)")
    print(f"order-0 alloc+free pairs/s, steady state, page_policy buddy: "
          f"{results['order0_pairs_per_s_steady_buddy']:,.0f}")
    print(f"order-0 alloc+free pairs/s, split 1024 + merge back (buddy): "
          f"{results['order0_pairs_per_s_split_merge']:,.0f}")
    print(f"mixed-order (0..3) pairs/s, 2,000 live blocks: {results['mixed_order_pairs_per_s']:,.0f}")
    print(f"full invariant check: {results['invariant_check_ms_1gib']:.1f} ms (1 GiB), "
          f"{results['invariant_check_ms_4gib']:.1f} ms (4 GiB) per step")


if __name__ == "__main__":
    main()
