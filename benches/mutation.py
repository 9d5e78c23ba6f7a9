"""Mutation testing of the model: how many small bugs `verify --budget quick` and
`pytest` kill.

    pip install -e ".[test,mutation]"
    python benches/mutation.py --per-file 4 --seed 17 [--json out.json]

Mutants come from cosmic-ray's operators (PyPI `cosmic-ray`): every mutation point of
model/page_alloc.py, slab.py, kmalloc.py, vmalloc.py and highmem.py inside a function,
then a seeded sample of `--per-file` points per file (points on a `def` line,
annotations, are left out) (stratified: the files count
alike). Each mutant is written into the work tree (cosmic-ray's use_mutation restores
the file afterwards), then judged by
- verify: `kmemspec verify --budget quick --fail-fast --deterministic --no-shrink`
  (exit 1 = killed; --fail-fast stops at the first failing row, so kills are cheap);
- pytest: `CI=true pytest -x -q -p no:randomly` over the file's test modules (TESTS).
A mutant that times out is counted killed (it made the model hang). Do not run other
checks in this work tree while it runs: the mutant is on disk.
Budget: a survivor costs one full quick verify (~80 s on a quiet 2-core machine) plus its
test modules; 4 per file (20 mutants) fits in 30 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["model/page_alloc.py", "model/slab.py", "model/kmalloc.py", "model/vmalloc.py",
         "model/highmem.py"]
TESTS = {
    "model/page_alloc.py": ["tests/test_facts.py", "tests/test_buddy.py",
                            "tests/test_buddy_invariants.py", "tests/test_page_bulk.py",
                            "tests/test_stateful.py", "tests/test_z3_agreement.py"],
    "model/slab.py": ["tests/test_facts.py", "tests/test_slab.py", "tests/test_slab_arrays.py",
                      "tests/test_slab_invariants.py", "tests/test_slab_scenarios.py"],
    "model/kmalloc.py": ["tests/test_facts.py", "tests/test_kmalloc.py", "tests/test_slab.py"],
    "model/vmalloc.py": ["tests/test_facts.py", "tests/test_vmalloc.py",
                         "tests/test_vmalloc_invariants.py", "tests/test_vmalloc_campaign.py"],
    "model/highmem.py": ["tests/test_facts.py", "tests/test_highmem.py",
                         "tests/test_vmalloc_campaign.py"],
}
VERIFY = [str(Path(sys.executable).parent / "kmemspec"), "verify", "--budget", "quick", "--fail-fast",
          "--deterministic", "--no-shrink"]


def mutation_points(path: Path) -> list[tuple[str, int, int, str]]:
    """(operator name, occurrence, line, function) of every mutation inside a function."""
    from cosmic_ray.ast import ast_nodes, get_ast_from_path
    from cosmic_ray.ast.ast_query import ASTQuery
    from cosmic_ray.plugins import get_operator, operator_names
    tree = get_ast_from_path(path)
    lines = path.read_text().splitlines()
    points = []
    for name in operator_names():
        cls = get_operator(name)
        if cls.arguments():
            continue
        operator = cls()
        positions = ((node, start) for node in ast_nodes(tree)
                     for start, _end in operator.mutation_positions(node))
        for occurrence, (node, start) in enumerate(positions):
            where = ASTQuery(node).get_definition_name()
            # a `def` line's mutations are in its annotations (never evaluated under
            # `from __future__ import annotations`) or defaults: skipped
            if where and not lines[start[0] - 1].lstrip().startswith("def "):
                points.append((name, occurrence, start[0], where))
    return points


def run(cmd: list[str], timeout: float) -> tuple[bool, float]:
    """True if the command failed (the mutant is killed)."""
    start = time.perf_counter()
    env = dict(os.environ, CI="true")
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=timeout)
        killed = done.returncode != 0
    except subprocess.TimeoutExpired:
        killed = True
    return killed, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-file", type=int, default=4)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--timeout", type=float, default=400)
    parser.add_argument("--no-pytest", action="store_true")
    parser.add_argument("--json", dest="out")
    args = parser.parse_args()
    from cosmic_ray.mutating import use_mutation
    from cosmic_ray.plugins import get_operator
    rng = random.Random(args.seed)
    results = []
    for rel in FILES:
        path = ROOT / rel
        points = mutation_points(path)
        for name, occurrence, line, where in rng.sample(points, min(args.per_file,
                                                                    len(points))):
            with use_mutation(path, get_operator(name)(), occurrence) as (_orig, mutated):
                if mutated is None:
                    continue
                by_verify, t_verify = run(VERIFY, args.timeout)
                by_pytest, t_pytest = (None, 0.0) if args.no_pytest else run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly",
                     "-p", "no:cacheprovider", *TESTS[rel]], args.timeout)
            row = {"file": rel, "line": line, "function": where, "operator": name,
                   "occurrence": occurrence, "verify": by_verify, "pytest": by_pytest,
                   "seconds": round(t_verify + t_pytest, 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
    total = len(results)
    verify_kills = sum(r["verify"] for r in results)
    summary = {"mutants": total, "verify_killed": verify_kills,
               "pytest_killed": None if args.no_pytest else sum(r["pytest"] for r in results),
               "survivors": [r for r in results if not r["verify"] or r["pytest"] is False]}
    print(json.dumps({k: v for k, v in summary.items() if k != "survivors"}))
    if args.out:
        Path(args.out).write_text(json.dumps({"results": results, **summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
