"""Mutation testing of the model: how many small bugs `verify --budget quick` and
`pytest` kill.

    pip install -e ".[test,mutation]"
    python benches/mutation.py --sample 64 --seed 1712 --by-reach --no-pytest \
        --jsonl mutants.jsonl

Mutants come from cosmic-ray's operators (PyPI `cosmic-ray`): every mutation point of
model/page_alloc.py, slab.py, kmalloc.py, vmalloc.py and highmem.py inside a function
(points on a `def` line, annotations and defaults, are left out; a signature's
continuation lines are not, so their annotation mutants are equivalent), then a seeded
random sample of `--sample` points, shared among the files in proportion to their
number of points with at least `--min-per-file` each (or `--per-file` points per file). Each
mutant is written into the work tree (cosmic-ray's use_mutation restores the file
afterwards), then judged by
- verify: `kmemspec verify --budget quick --fail-fast --deterministic --no-shrink
  --json` (exit 1 = killed; --fail-fast stops at the first failing row and runs Z3
  last, so kills are cheap); the method of the first failing row is recorded;
  `--methods` narrows verify to some methods; `--by-reach` runs only the methods that
  can execute the mutated function (reaching() below: same verdict, minutes sooner);
- pytest: `CI=true pytest -x -q -p no:randomly` over the file's test modules (TESTS),
  then, for a mutant those survive, over the wider set WIDER (`--no-pytest` skips both,
  `--no-wider` the second stage). With `--pytest-subset` the second stage is the whole
  suite (`pytest -x tests`): the pytest score. A mutant the file's modules kill is
  killed by pytest, so only their survivors pay for a whole-suite run (minutes each);
  `--suite-only` skips the modules (for mutants an earlier `--no-wider` run saw them
  let through), `--modules` replaces the file's modules by others, and the row names
  the suite's first failing test (`suite_failure`).
`--files` and `--functions` narrow the points (to probe one area while writing its
checks: `--files model/kmalloc.py --functions ksize,kfree --per-file 100000 --methods
facts` judges every mutant of those two functions; such a narrowed run is not a score).
`--table A.jsonl B.jsonl` prints judged mutants as a markdown table.
`--only I,J` judges only those sample indices, `--no-verify` only pytest, `--list`
prints the sample. A mutant that times out is counted killed (it made the model hang). Do not run other
checks in this work tree while it runs: the mutant is on disk (copy the tree and run
the copy). With `--jsonl` every judged mutant is appended as it finishes, and the
mutants already in the file are skipped, so a stopped run resumes.
Budget: a killed mutant costs seconds to a minute; a surviving one a full quick verify
(~100 s on a quiet 2-core machine; with --by-reach 40-120 s on the shared one) plus its
test modules. Results of seed 1712: spec/mutants.md.
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
FACTS_TESTS = ["tests/test_facts.py", "tests/test_facts_mutants.py"]
TESTS = {
    "model/page_alloc.py": FACTS_TESTS + [
        "tests/test_buddy.py", "tests/test_buddy_invariants.py", "tests/test_page_bulk.py",
        "tests/test_stateful.py", "tests/test_z3_agreement.py"],
    "model/slab.py": FACTS_TESTS + [
        "tests/test_slab.py", "tests/test_slab_arrays.py", "tests/test_slab_invariants.py",
        "tests/test_slab_scenarios.py"],
    "model/kmalloc.py": FACTS_TESTS + ["tests/test_kmalloc.py", "tests/test_slab.py"],
    "model/vmalloc.py": FACTS_TESTS + [
        "tests/test_vmalloc.py", "tests/test_vmalloc_invariants.py",
        "tests/test_vmalloc_campaign.py"],
    "model/highmem.py": FACTS_TESTS + ["tests/test_highmem.py", "tests/test_vmalloc_campaign.py"],
}
# every test module that exercises the model directly (no trace, view or C conformance)
WIDER = ["tests/test_facts_mutants.py", "tests/test_boot.py", "tests/test_buddy.py",
         "tests/test_buddy_invariants.py",
         "tests/test_compound.py", "tests/test_facts.py", "tests/test_highmem.py",
         "tests/test_kmalloc.py", "tests/test_page_bulk.py", "tests/test_pcp.py",
         "tests/test_pgtable.py", "tests/test_slab.py", "tests/test_slab_arrays.py",
         "tests/test_slab_invariants.py", "tests/test_slab_scenarios.py",
         "tests/test_vectors.py", "tests/test_vmalloc.py", "tests/test_vmalloc_invariants.py",
         "tests/test_watermarks.py", "tests/test_zones.py", "tests/test_z3_agreement.py",
         "tests/test_z3_slab.py", "tests/test_z3_vmalloc.py", "tests/test_scenario.py",
         "tests/test_stateful.py", "tests/test_vmalloc_campaign.py",
         "tests/test_pcp_stateful.py", "tests/test_conform_slab_highmem.py"]
# --pytest-subset's second stage: the whole suite, as CI runs it (`pytest -x`)
SUITE = ["tests"]
# The verify methods that can execute a mutated function, read from the call graph:
# the Z3 method reaches the model only through kmalloc_index (proofs/lemmas.py);
# CrossHair's targets (proofs/contracts.py) reach kmalloc_index and slab.cache_estimate
# / ALIGN (plus buddy_math, addr and pgtable, not sampled). facts and Hypothesis reach
# everything. A method that runs no line of the mutated function cannot kill its
# mutant, so `--by-reach` leaves it out (the verdict is the same, minutes sooner).
Z3_REACH = {("model/kmalloc.py", "kmalloc_index"), ("model/kmalloc.py", "_index_table")}
CROSSHAIR_REACH = Z3_REACH | {("model/slab.py", "cache_estimate"), ("model/slab.py", "ALIGN")}


def reaching(rel: str, function: str) -> str:
    """The verify methods that may run `function` of `rel` (the --method value)."""
    methods = ["facts", "Hypothesis"]
    if (rel, function) in CROSSHAIR_REACH:
        methods.append("CrossHair")
    if (rel, function) in Z3_REACH:
        methods.append("Z3")
    return ",".join(methods)


VERIFY = [str(Path(sys.executable).parent / "kmemspec"), "verify", "--budget", "quick",
          "--fail-fast", "--deterministic", "--no-shrink", "--json"]


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


def allocate(counts: dict[str, int], total: int, floor: int) -> dict[str, int]:
    """`total` draws shared in proportion to `counts` (largest remainder), each file
    getting at least min(floor, its count)."""
    share = {f: min(floor, n) for f, n in counts.items()}
    rest = total - sum(share.values())
    if rest > 0:
        size = sum(counts.values())
        exact = {f: rest * n / size for f, n in counts.items()}
        for f in counts:
            share[f] += int(exact[f])
        left = rest - sum(int(v) for v in exact.values())
        for f in sorted(counts, key=lambda f: exact[f] - int(exact[f]), reverse=True)[:left]:
            share[f] += 1
    return {f: min(share[f], counts[f]) for f in counts}


def draw(seed: int, sample: int | None, per_file: int | None, floor: int,
         files: list[str] | None = None, functions: set[str] | None = None) -> list[tuple]:
    """The seeded sample: (file, operator, occurrence, line, function) in file order.
    `files` / `functions` narrow the points first (for probing one area while writing
    checks; a score is only a score on the unnarrowed draw)."""
    rng = random.Random(seed)
    points = {rel: [p for p in mutation_points(ROOT / rel)
                    if functions is None or p[3] in functions]
              for rel in (files or FILES)}
    if sample is None:
        share = {rel: min(per_file or 4, len(p)) for rel, p in points.items()}
    else:
        share = allocate({rel: len(p) for rel, p in points.items()}, sample, floor)
    return [(rel, *point) for rel in points for point in rng.sample(points[rel], share[rel])]


def run(cmd: list[str], timeout: float, both: bool = False) -> tuple[bool | str, float, str]:
    """(killed, seconds, stdout): killed is "timeout" when the command did not end;
    `both`: stdout and stderr whatever the exit code."""
    start = time.perf_counter()
    env = dict(os.environ, CI="true")
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
        killed: bool | str = done.returncode != 0
        out = done.stdout if done.returncode != 1 or "{" in done.stdout else done.stderr
        if done.returncode not in (0, 1):
            out = (done.stdout + done.stderr)[-400:]
        if both:
            out = done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        killed, out = "timeout", ""
    return killed, time.perf_counter() - start, out


def killer(killed, out: str) -> str | None:
    """The method of verify's first failing row ("crash" if there was no table)."""
    if killed is False:
        return None
    if killed == "timeout":
        return "timeout"
    try:
        rows = json.loads(out)["rows"]
    except (ValueError, KeyError, TypeError):
        return "crash"
    bad = [r for r in rows if not r["ok"]]
    return f"{bad[0]['method']}: {bad[0]['invariant']}" if bad else "crash"


def changed_line(original: str, mutated: str, line: int) -> str:
    a, b = original.splitlines(), mutated.splitlines()
    for i in range(max(0, line - 3), min(len(a), len(b), line + 3)):
        if a[i] != b[i]:
            return f"{a[i].strip()}  ->  {b[i].strip()}"
    return ""


def pytest_cmd(modules: list[str]) -> list[str]:
    # -n0: one process per mutant (pyproject's addopts would start a worker per core;
    # parallel mutants, e.g. --only even/odd, already use the cores)
    return [sys.executable, "-m", "pytest", "-n0", "-x", "-q", "-p", "no:randomly",
            "-p", "no:cacheprovider", *modules]


def table(rows: list[dict]) -> str:
    """Markdown: one line per mutant (verify's verdict, its first failing row, seconds)."""
    out = ["| # | file:line, function | mutation | verify | s |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["index"]):
        change = r["change"].replace("|", "\\|")
        change = change if len(change) <= 110 else change[:107] + "..."
        verdict = ("survived" if r["verify"] is False else
                   f"killed: {r['killed_by']}" if r["verify"] else "not run")
        out.append(f"| {r['index']} | {Path(r['file']).name}:{r['line']} `{r['function']}` "
                   f"| `{change}` | {verdict} | {r['verify_seconds']} |")
    killed = sum(bool(r["verify"]) for r in rows)
    out.append(f"\nverify killed {killed} of {len(rows)}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, help="total mutants (weighted by points)")
    parser.add_argument("--min-per-file", type=int, default=4)
    parser.add_argument("--per-file", type=int, help="instead of --sample: N per file")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--files", help="comma-separated model files to draw from "
                        "(default: all five); for probing, not for the score")
    parser.add_argument("--functions", help="comma-separated function names: only "
                        "their points (with --per-file 100000: every one of them)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--methods", help="verify --method (default: all)")
    parser.add_argument("--by-reach", action="store_true",
                        help="run only the methods that can reach the mutated function")
    parser.add_argument("--no-pytest", action="store_true")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--no-wider", action="store_true",
                        help="no second pytest stage (WIDER, or the suite)")
    parser.add_argument("--pytest-subset", action="store_true",
                        help="pytest -x on the file's modules, then on the whole suite "
                             "(tests/) for a mutant they miss")
    parser.add_argument("--suite-timeout", type=float, default=1800,
                        help="seconds for the whole-suite stage")
    parser.add_argument("--modules", help="with --pytest-subset: comma-separated test "
                        "modules instead of the file's TESTS (a kill by any is a kill)")
    parser.add_argument("--suite-only", action="store_true",
                        help="with --pytest-subset: skip the file's modules (for mutants "
                             "an earlier run saw them let through)")
    parser.add_argument("--only", help="comma-separated indices of the sample to run")
    parser.add_argument("--list", action="store_true", help="print the sample and stop")
    parser.add_argument("--jsonl", help="append one line per mutant; resume from it")
    parser.add_argument("--table", nargs="+", metavar="JSONL",
                        help="print the judged mutants of these files as a markdown "
                        "table (index order) and stop")
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(text) for name in args.table
                     for text in Path(name).read_text().splitlines() if text.strip()]))
        return 0
    from cosmic_ray.mutating import use_mutation
    from cosmic_ray.plugins import get_operator
    sample = draw(args.seed, args.sample, args.per_file, args.min_per_file,
                  args.files.split(",") if args.files else None,
                  set(args.functions.split(",")) if args.functions else None)
    verify_cmd = VERIFY + (["--method", args.methods] if args.methods else [])
    done: dict[int, dict] = {}
    if args.jsonl and Path(args.jsonl).exists():
        for text in Path(args.jsonl).read_text().splitlines():
            row = json.loads(text)
            done[row["index"]] = row
    only = {int(i) for i in args.only.split(",")} if args.only else None
    results = []
    for index, (rel, name, occurrence, line, where) in enumerate(sample):
        if args.list:
            print(index, rel, line, where, name, occurrence)
            continue
        if only is not None and index not in only:
            continue
        if index in done:
            results.append(done[index])
            continue
        path = ROOT / rel
        with use_mutation(path, get_operator(name)(), occurrence) as (orig, mutated):
            if mutated is None:
                continue
            cmd = VERIFY + ["--method", reaching(rel, where)] if args.by_reach else verify_cmd
            by_verify, t_verify, out = (None, 0.0, "") if args.no_verify else run(
                cmd, args.timeout)
            by_pytest, t_pytest, wider, suite, first_failure = None, 0.0, None, None, None
            if not args.no_pytest and args.pytest_subset:
                # the file's modules first; the whole suite only for a mutant they miss
                modules = args.modules.split(",") if args.modules else TESTS[rel]
                by_pytest, t_pytest = (None, 0.0) if args.suite_only else run(
                    pytest_cmd(modules), args.timeout)[:2]
                if (by_pytest is False or args.suite_only) and not args.no_wider:
                    suite, t_suite, suite_out = run(pytest_cmd(SUITE), args.suite_timeout,
                                                    both=True)
                    t_pytest += t_suite
                    # the test that failed first (to tell a kill from a broken suite)
                    first_failure = next((ln for ln in suite_out.splitlines()
                                          if ln.startswith(("FAILED", "ERROR"))), None)
            elif not args.no_pytest:
                by_pytest, t_pytest, _ = run(pytest_cmd(TESTS[rel]), args.timeout)
                if by_pytest is False and not args.no_wider:
                    wider, t_wider, _ = run(pytest_cmd(WIDER), args.timeout)
                    t_pytest += t_wider
        row = {"index": index, "seed": args.seed, "file": rel, "line": line,
               "function": where, "operator": name, "occurrence": occurrence,
               "change": changed_line(orig, mutated, line),
               "verify": None if by_verify is None else bool(by_verify),
               "killed_by": None if by_verify is None else killer(by_verify, out),
               "pytest": None if by_pytest is None else bool(by_pytest),
               "pytest_wider": None if wider is None else bool(wider),
               "pytest_suite": None if suite is None else bool(suite),
               "suite_failure": first_failure,
               "verify_seconds": round(t_verify, 1), "pytest_seconds": round(t_pytest, 1)}
        results.append(row)
        print(json.dumps(row), flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    if args.list:
        return 0
    total = len(results)
    summary = {"mutants": total, "verify_killed": sum(bool(r["verify"]) for r in results),
               "pytest_killed": sum(bool(r["pytest"] or r.get("pytest_wider")
                                         or r.get("pytest_suite")) for r in results)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
