"""Benchmark (not a test): the whole `kmemspec prove` -- every (invariant, operation)
obligation of the buddy, slab and vmalloc/pkmap encodings plus the parameter lemmas --
with the time of each and per layer.

Target (issue 5): all proved, total <= 120 s on a 2-core machine.
Run: python benches/bench_prove.py [--json]
"""

from __future__ import annotations

import json
import sys
import time

from kmemspec.proofs.lemmas import prove_lemmas
from kmemspec.proofs.layers import prove_layers


def main() -> int:
    start = time.perf_counter()
    rows = prove_layers()
    lemmas = prove_lemmas()
    total = time.perf_counter() - start
    proved = sum(r.status == "proved" for r in rows)
    if "--json" in sys.argv:
        print(json.dumps({"obligations": [r.to_json() for r in rows],
                          "lemmas": [r.to_json() for r in lemmas],
                          "total_seconds": round(total, 1)}, indent=1))
    else:
        for r in rows:
            print(f"{r.layer:8s} {r.invariant:23s} {r.operation:21s} {r.status:8s} "
                  f"{r.seconds:7.2f}s")
        for layer in dict.fromkeys(r.layer for r in rows):
            mine = [r for r in rows if r.layer == layer]
            print(f"{layer}: {sum(r.status == 'proved' for r in mine)}/{len(mine)} proved in "
                  f"{sum(r.seconds for r in mine):.1f}s")
        print(f"{proved}/{len(rows)} obligations proved, "
              f"{sum(r.status in ('proved', 'checked') for r in lemmas)}/{len(lemmas)} lemmas, "
              f"total {total:.1f}s (target <= 120 s)")
    return 0 if proved == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
