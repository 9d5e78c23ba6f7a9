"""`kmemspec conform TARGET`: check another allocator implementation against the spec."""

from __future__ import annotations

import json
import os
import sys

import click

from .conform.adapter import FLAT_PAGE_POLICIES, TargetError, load_target
from .conform.check import MODES, PageChecker
from .conform.ctypes_adapter import ABIError
from .conform.isolate import AdapterFault, make_driver
from .conform.replay import (ScenarioError, load_flat_scenario, load_prefix,
                             replay_scenario)
from .conform.stateful import check_conformance, machine_sizes


def _fail_usage(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": message}))
    else:
        click.echo(f"kmemspec conform: {message}", err=True)
    sys.exit(2)


PARTS = ("page", "object", "vmalloc", "cache", "highmem")


@click.command("conform")
@click.argument("target")
@click.option("--mode", type=click.Choice(MODES), default="refine", show_default=True,
              help="strict: the model's Linux choices; refine: any answer the spec allows.")
@click.option("--part", "only", type=click.Choice(("all",) + PARTS), default="all",
              show_default=True, help="Check only this part of the implementation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--examples", type=click.IntRange(1, 100000), default=200, show_default=True,
              help="Hypothesis examples (call sequences) to try, per part.")
@click.option("--seed", type=int, default=None, help="Random seed (default: derandomized).")
@click.option("--steps", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Calls per sequence at most.")
@click.option("--timeout", type=click.FloatRange(0.01, 600), default=2.0, show_default=True,
              help="Seconds a single call may take before it counts as a hang.")
@click.option("--no-isolate", is_flag=True,
              help="Run a Python target in this process (faster; a crash or hang "
                   "then stops the checker).")
@click.option("--pages", "pages_spec", default=None, metavar="N[,N...]|MIN..MAX",
              help="Machine sizes (frames) to check: a list, or a range (its ends and "
                   "the default sizes inside it). Default: "
                   "16,12,4,2,7,40,1024,1536,2048,2051.")
@click.option("--power-of-two", is_flag=True,
              help="Only machine sizes that are powers of two.")
@click.option("--max-order", type=click.IntRange(1, 11), default=None,
              help="The implementation's MAX_ORDER if below the profile's (11): orders "
                   "0..MAX_ORDER-1 are asked, MAX_ORDER must be NULL, free counts have "
                   "MAX_ORDER entries.")
@click.option("--replay", "replay_path", type=click.Path(dir_okay=False), default=None,
              help="Run this flat-machine scenario (one `conform` wrote) against TARGET "
                   "and the model, and show both answers step by step.")
@click.option("--after", "after_path", type=click.Path(dir_okay=False), default=None,
              help="With --replay: first run the earlier sequences of this prefix file "
                   "(written when a failure does not reproduce alone) in the same process.")
@click.option("--fresh-process-per-sequence", "fresh", is_flag=True,
              help="A new child process for every call sequence (for targets whose "
                   "state leaks from one sequence into the next; slower).")
@click.option("--allow", "allow_spec", default=None, metavar="RULE[,RULE...]",
              help="Known deviations to waive (rule names such as C4, R8, S1): each one "
                   "met is counted and checking goes on past it.")
@click.option("--sizes", "sizes_spec", default=None, metavar="MIN..MAX",
              help="Object sizes (bytes) asked of kmalloc and kmem_cache_create, e.g. "
                   "8..4096 for a target that serves no others.")
@click.option("--align", "align_spec", default=None, metavar="A[,A...]",
              help="Alignments asked of kmem_cache_create (0 or powers of two), e.g. 0,8.")
@click.option("--flags", "flags_spec", default=None, metavar="F[,F...]",
              help="Flag sets asked of kmem_cache_create (0 or 0x2000 = "
                   "SLAB_HWCACHE_ALIGN), e.g. 0.")
@click.option("--page-size", "page_size", type=int, default=None, metavar="BYTES",
              help="The bytes of one of the implementation's frames (its smallest "
                   "block; a power of two), if not 4096; also declarable by the target "
                   "(kms_page_size / page_size). Only the page part is checked then.")
@click.option("--page-policy", "page_policy", default=None, metavar="buddy|2.6.12",
              help="The flat machine's page policy: buddy (default: 2.6.12's buddy core) "
                   "or 2.6.12 (GFP_KERNEL with watermarks and CPU 0's per-CPU hot list; "
                   "machine sizes are multiples of 32 frames). With --replay, default: "
                   "the scenario's. See spec/conformance.md.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="kmemspec-conform",
              show_default=True, help="Where a divergence's scenario and picture go.")
def command(target: str, mode: str, only: str, as_json: bool, examples: int,
            seed: int | None, steps: int, timeout: float, no_isolate: bool,
            pages_spec: str | None, power_of_two: bool, max_order: int | None,
            replay_path: str | None, after_path: str | None, fresh: bool,
            allow_spec: str | None, sizes_spec: str | None, align_spec: str | None,
            flags_spec: str | None, page_size: int | None, page_policy: str | None,
            out_dir: str) -> None:
    """Check TARGET (module:factory, file.py:factory, a kms.h shared library .so, or
    `model`) against the spec: every part it implements (page allocator, kmalloc,
    vmalloc, kmem_cache_*, kmap/kunmap). Exit 0 if it conforms, 1 on a divergence (the minimal call sequence is
    written as a scenario with an SVG of the model state), 2 on bad input."""
    asked_policy = page_policy
    page_policy = page_policy or "buddy"
    if page_policy not in FLAT_PAGE_POLICIES:
        _fail_usage(f"--page-policy: {page_policy!r} is not a page policy (known: "
                    f"{', '.join(FLAT_PAGE_POLICIES)})", as_json)
    if replay_path is not None and asked_policy is None:
        page_policy = _scenario_policy(replay_path)
    try:
        loaded = load_target(target, page_policy)
    except (TargetError, ABIError) as exc:
        _fail_usage(str(exc), as_json)
    try:
        sizes = _parse_pages(pages_spec, power_of_two, page_policy)
    except ValueError as exc:
        _fail_usage(f"--pages: {exc}", as_json)
    allow = _parse_allow(allow_spec, as_json)
    asked = _parse_asked(sizes_spec, align_spec, flags_spec, as_json)
    isolate = not no_isolate or loaded.spec.endswith(".so")
    probe = make_driver(loaded.factory, isolate=isolate, timeout=max(timeout, 10.0))
    try:
        info = probe.reset()
    except AdapterFault as exc:
        _fail_usage(f"{target}: making the adapter failed: {exc}", as_json)
    finally:
        probe.close()
    unit = _unit(page_size, info.get("page_size"), target, as_json)
    if replay_path is not None:
        _replay(loaded, replay_path, after_path, mode, isolate, timeout, max_order, as_json,
                page_policy)
    parts = [p for p in PARTS if p in info["parts"] and only in ("all", p)]
    unchecked = []
    if unit is not None:
        # the other parts are defined over 4096-byte pages (spec/conformance.md)
        unchecked = [p for p in parts if p != "page"]
        parts = [p for p in parts if p == "page"]
    if not parts:
        wanted = "any part" if only == "all" else f"the {only} part"
        _fail_usage(f"{target}: does not implement {wanted} (page: init, alloc_pages, "
                    "free_pages; object: kmalloc, kfree; vmalloc: vmalloc_init, vmalloc, "
                    "vfree; cache: kmem_cache_create, kmem_cache_alloc, kmem_cache_free, "
                    f"kmem_cache_destroy; highmem: kmap, kunmap); found: {', '.join(info['parts']) or 'nothing'}", as_json)
    results = []
    reports = []
    misuse_failed: list[str] = []
    for part in parts:
        waived: dict = {}
        bar = _progress(part, examples, as_json)
        try:
            report = check_conformance(loaded.factory, mode=mode, max_examples=examples,
                                       seed=seed, isolate=isolate, timeout=timeout,
                                       name=loaded.name, step_count=steps, part=part,
                                       sizes=sizes, max_order=max_order, fresh=fresh,
                                   allow=allow, waived=waived, **asked,
                                   page_policy=page_policy,
                                   on_sequence=None if bar is None else bar.step)
        except ValueError as exc:          # no machine size left to check
            _fail_usage(f"{target}: {exc}", as_json)
        finally:
            if bar is not None:
                bar.close()
        if report is not None:
            report.unit = unit
            _write_files(report, loaded.name, part, mode, out_dir,
                         "" if page_policy == "buddy" else f"-{page_policy}")
            reports.append(report)
        misuse = (_misuse(loaded, part, isolate, timeout, max_order, asked["object_sizes"])
                  if info.get("detects_misuse") else None)
        if misuse is not None and misuse["failures"]:
            misuse_failed.append(part)
        ok = report is None and not (misuse is not None and misuse["failures"])
        results.append({"part": part, "result": "conforms" if ok else "diverges",
                        "waived": waived, **({} if misuse is None else {"misuse": misuse}),
                        **({} if report is None else report.to_json())})
    summary = {"target": target, "mode": mode, "page_policy": page_policy, "parts": parts,
               "introspection": [m for m in info["optional"]], "examples": examples,
               "seed": seed, "page_size": unit or 4096, "unchecked_parts": unchecked,
               "asked": {"sizes": asked["object_sizes"], "align": asked["aligns"],
                         "flags": asked["flags"]},
               "result": "diverges" if reports or misuse_failed else "conforms",
               "checks": results}
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    else:
        restricted = _asked_text(asked)
        if restricted:
            click.echo(f"{target}: asked only {restricted}")
        for entry, part in zip(results, parts):
            if entry["result"] == "conforms":
                policy = "" if page_policy == "buddy" else f", {page_policy} page policy"
                click.echo(f"{target}: {part} part conforms ({mode} mode{policy}, "
                           f"{examples} examples"
                           f"{_introspection(part, info)}"
                           f"{'' if unit is None else f', {unit}-byte frames'})")
            if "misuse" in entry:
                m = entry["misuse"]
                if m["failures"] and entry["result"] == "diverges" and "divergence" not in entry:
                    click.echo(f"{target}: {part} part DIVERGES from the spec: it declares "
                               "that it detects misuse and fails a misuse vector")
                click.echo(f"  misuse vectors ({part} part, detects_misuse declared): "
                           f"{len(m['vectors'])} run, {m['passed']} steps passed, "
                           f"{m['skipped']} skipped"
                           + ("" if not m["failures"] else
                              ", FAILED:"))
                for failure in m["failures"]:
                    click.echo(f"    {failure}")
            if entry["waived"]:
                click.echo(f"  waived ({part} part): " + ", ".join(
                    f"{rule} x{times}" for rule, times in sorted(entry["waived"].items())))
        for part in unchecked:
            click.echo(f"{target}: {part} part not checked: its contract is in 4096-byte "
                       f"pages and the frames are {unit} bytes")
        for report in reports:
            click.echo(report.text())
            if report.files:
                click.echo(f"  replay:   kmemspec run {report.files['scenario']}  (the model)")
                after = (f" --after {report.files['prefix']}" if "prefix" in report.files
                         else "")
                click.echo(f"  against the target: kmemspec conform {target} --replay "
                           f"{report.files['scenario']}{after}")
    sys.exit(1 if reports or misuse_failed else 0)


def _scenario_policy(path: str) -> str:
    """The page policy a scenario's boot line names ("buddy" if it names none or the
    file cannot be read: _replay reports that)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for raw in handle:
                line = raw.strip()
                if line and not line.startswith("#"):
                    step = json.loads(line)
                    policy = step.get("page_policy") if isinstance(step, dict) else None
                    return policy if policy in FLAT_PAGE_POLICIES else "buddy"
    except (OSError, ValueError):
        pass
    return "buddy"


def _unit(option: int | None, declared: int | None, target: str, as_json: bool):
    """The frame size in bytes if not 4096 (None for 4096): --page-size, or what the
    target declares; exit 2 if they disagree or it is not a power of two."""
    for name, value in (("--page-size", option), ("the declared page size", declared)):
        if value is not None and (value < 1 or value & (value - 1)):
            _fail_usage(f"{target}: {name} {value} is not a power of two", as_json)
    if option is not None and declared is not None and option != declared:
        _fail_usage(f"{target}: --page-size {option} but the target declares {declared} "
                    "(kms_page_size / page_size)", as_json)
    unit = option if option is not None else declared
    return None if unit in (None, 4096) else unit


def _parse_asked(sizes: str | None, align: str | None, flags: str | None,
                 as_json: bool) -> dict:
    """`--sizes MIN..MAX`, `--align A,..`, `--flags F,..` (exit 2 on anything else)."""
    asked = {"object_sizes": None, "aligns": None, "flags": None}
    if sizes is not None:
        try:
            lo, hi = (int(x, 0) for x in sizes.split("..", 1))
        except ValueError:
            _fail_usage(f"--sizes: {sizes!r} is not MIN..MAX (bytes)", as_json)
        if not 0 <= lo <= hi:
            _fail_usage(f"--sizes: {sizes!r} is empty or negative", as_json)
        asked["object_sizes"] = (lo, hi)
    for key, spec, name in (("aligns", align, "--align"), ("flags", flags, "--flags")):
        if spec is None:
            continue
        try:
            values = [int(x, 0) for x in spec.split(",") if x.strip()]
        except ValueError:
            _fail_usage(f"{name}: {spec!r} is not a list of integers", as_json)
        for v in values:
            if key == "aligns" and (v < 0 or v & (v - 1)):
                _fail_usage(f"--align: {v} is not 0 or a power of two", as_json)
            if key == "flags" and v & ~0x2000:
                _fail_usage(f"--flags: {v:#x} is not a subset of SLAB_HWCACHE_ALIGN "
                            "(0x2000)", as_json)
        if not values:
            _fail_usage(f"{name}: no value given", as_json)
        asked[key] = tuple(dict.fromkeys(values))
    return asked


def _asked_text(asked: dict) -> str:
    parts = []
    if asked["object_sizes"] is not None:
        parts.append("object sizes {}..{}".format(*asked["object_sizes"]))
    if asked["aligns"] is not None:
        parts.append("align " + ",".join(map(str, asked["aligns"])))
    if asked["flags"] is not None:
        parts.append("flags " + ",".join(f"{f:#x}" for f in asked["flags"]))
    return "; ".join(parts)


def _misuse(loaded, part: str, isolate: bool, timeout: float, max_order: int | None,
            object_sizes=None):
    """The part's misuse vectors on a target that says it detects misuse: a summary
    (passed misuse steps, skipped steps, failures naming vector and step), or None if
    the part has no misuse vector."""
    from .conform.vectors import misuse_vectors, run_misuse_vectors
    if not misuse_vectors(part):
        return None
    driver = make_driver(loaded.factory, isolate=isolate, timeout=timeout)
    try:
        info = driver.reset()
        supported = (None if "supported_pages" not in info["optional"]
                     else lambda n: bool(driver.call("supported_pages", n)))
        results = run_misuse_vectors(driver, part, max_order=max_order, supported=supported,
                                     object_sizes=object_sizes)
    finally:
        driver.close()
    return {"vectors": [r.name for r in results],
            "passed": sum(r.passed for r in results),
            "skipped": sum(r.skipped for r in results),
            "failures": [f"{r.name}: {f}" for r in results for f in r.failures]}


def _replay(loaded, path: str, after: str | None, mode: str, isolate: bool, timeout: float,
            max_order: int | None, as_json: bool, page_policy: str = "buddy") -> None:
    """`--replay`: the scenario's calls on the target and the model; exit 0/1/2. The
    scenario's boot line names its page policy; --page-policy must agree with it."""
    prefix = []
    try:
        with open(path, encoding="utf-8") as handle:
            nr_pages, profile, ops, policy = load_flat_scenario(handle.read(), path,
                                                                with_policy=True)
        if after is not None:
            with open(after, encoding="utf-8") as handle:
                prefix = load_prefix(handle.read(), after)
    except OSError as exc:
        _fail_usage(f"cannot read {exc.filename}: {exc.strerror}", as_json)
    except ScenarioError as exc:
        _fail_usage(str(exc), as_json)
    if policy != page_policy:
        _fail_usage(f"{path}: the scenario boots page policy {policy}, --page-policy is "
                    f"{page_policy} (give --page-policy {policy})", as_json)
    checker = type("ReplayPageChecker", (PageChecker,),
                   {"max_order_cap": max_order, "page_policy": policy})
    driver = make_driver(loaded.factory, isolate=isolate, timeout=timeout)
    try:
        result = replay_scenario(driver, mode, nr_pages, profile, ops, checker_class=checker,
                                 prefix=prefix)
    finally:
        driver.close()
    failure = result.failure
    if as_json:
        click.echo(json.dumps({"target": loaded.spec, "mode": mode, "page_policy": policy,
                               "scenario": path,
                               "result": "conforms" if failure is None else "diverges",
                               "calls": result.calls, **({} if failure is None else
                               {"divergence": failure.divergence.to_json()})}, indent=1))
    else:
        click.echo(f"{loaded.name}: replaying {path} ({mode} mode, {nr_pages} frames)")
        for row in result.rows():
            click.echo(row)
        click.echo("result: " + ("every answer allowed" if failure is None else
                                 f"diverges at step {failure.divergence.step}"))
    sys.exit(0 if failure is None else 1)


class _Progress:
    """A progress bar on stderr, for a terminal only (click's; no extra dependency)."""

    def __init__(self, part: str, examples: int):
        self.examples = examples
        self.done = 0
        self.bar = click.progressbar(length=examples, label=f"checking the {part} part",
                                     file=sys.stderr, show_pos=True, show_eta=True)
        self.bar.__enter__()

    def step(self) -> None:
        # Hypothesis may start more sequences than asked (shrinking): stay at the end
        if self.done < self.examples:
            self.done += 1
            self.bar.update(1)

    def close(self) -> None:
        self.bar.__exit__(None, None, None)


def _progress(part: str, examples: int, as_json: bool):
    if as_json or examples < 100 or not sys.stderr.isatty():
        return None
    return _Progress(part, examples)


def _parse_allow(spec: str | None, as_json: bool) -> frozenset:
    """`--allow C4,R8` as a set of rule names (exit 2 on anything else)."""
    if spec is None:
        return frozenset()
    rules = [part.strip().upper() for part in spec.split(",") if part.strip()]
    for rule in rules:
        if len(rule) < 2 or rule[0] not in "RSKVCH" or not rule[1:].isdigit():
            _fail_usage(f"--allow: {rule!r} is not a rule name (R1..R8, S1, S2, K1..K8, "
                        "V1..V7, C1..C8, H1..H6: spec/conformance.md)", as_json)
    return frozenset(rules)


def _parse_pages(spec: str | None, power_of_two: bool, page_policy: str = "buddy"):
    """`--pages` and `--power-of-two` as the machine sizes to draw (machine_sizes)."""
    if spec is None:
        return (machine_sizes(power_of_two=power_of_two, page_policy=page_policy)
                if power_of_two else None)
    spec = spec.strip()
    try:
        if ".." in spec:
            lo, hi = (int(part) for part in spec.split("..", 1))
            if lo > hi:
                raise ValueError(f"the range {spec!r} is empty")
            return machine_sizes(pages_range=(lo, hi), power_of_two=power_of_two,
                                 page_policy=page_policy)
        return machine_sizes([int(part) for part in spec.split(",")],
                             power_of_two=power_of_two, page_policy=page_policy)
    except ValueError as exc:
        if "invalid literal" in str(exc):
            raise ValueError(f"{spec!r} is not N[,N...] or MIN..MAX (frame counts)") from None
        raise


def _introspection(part: str, info: dict) -> str:
    wanted = {"page": "free_counts", "object": "ksize", "vmalloc": "vmalloc_to_pfn",
              "cache": "slab_layout", "highmem": "pkmap_count"}[part]
    return (f", with {wanted} introspection" if wanted in info["optional"]
            else f", answers only: no {wanted}")


def _write_files(report, name: str, part: str, mode: str, out_dir: str,
                 suffix: str = "") -> None:
    # the file's own name, without the directories it was given with (no "../" parts)
    safe = "".join(c if c.isalnum() or c in "-_." else "_"
                   for c in name.replace("\\", "/").rsplit("/", 1)[-1])
    try:
        os.makedirs(out_dir, exist_ok=True)
        scenario_path = os.path.join(out_dir, f"{safe}-{part}-{mode}{suffix}.jsonl")
        svg_path = os.path.join(out_dir, f"{safe}-{part}-{mode}{suffix}.svg")
        with open(scenario_path, "w", encoding="utf-8") as handle:
            handle.write(report.scenario())
        with open(svg_path, "w", encoding="utf-8") as handle:
            handle.write(report.svg())
        report.files = {"scenario": scenario_path, "picture": svg_path}
        if report.prefix:
            prefix_path = os.path.join(out_dir, f"{safe}-{part}-{mode}{suffix}-prefix.jsonl")
            with open(prefix_path, "w", encoding="utf-8") as handle:
                handle.write(report.prefix_lines())
            report.files["prefix"] = prefix_path
    except OSError as exc:
        click.echo(f"kmemspec conform: cannot write the report to {out_dir}: {exc}", err=True)
