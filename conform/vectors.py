"""Test vectors: scenarios with expected results, generated from the model's own tests.

After ethereum/consensus-specs: each *case* below is a test of the model (its asserts
state what the spec says) and, by recording every call with the model's answer, a
conformance vector. tests/test_vectors.py runs every case as a test; `kmemspec
vectors OUTDIR` exports them; `replay_page_vector` is the reference runner that
replays them against any adapter.

Two runners (the format of each is in FORMAT.md, written next to the vectors):

* `page_alloc`, `object`, `vmalloc`, `cache`, `highmem` -- the adapter protocol's parts
  (conform/adapter.py, conform/kms.h): init, alloc_pages(order), free_pages(pfn,
  order), free_counts(); kmalloc...; kmem_cache_create...; kmap...; pfns are frames of
  the implementation. Each such vector is also exported as a model scenario (flat
  machine), replayable with `kmemspec run`.
* `scenario` -- the model's kernel API (alloc_pages with gfp, __get_free_pages,
  free_pages by address, get_page...) on machines with DMA/Normal/HighMem zones,
  including every misuse the model rejects. Files are JSON Lines scenarios.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Callable

from ..model import KernelBug, boot, page_alloc
from ..model.addr import pfn_to_page
from ..model.boot import MachineConfig
from ..model.gfp import parse_gfp
from .adapter import FLAT_BASE, ModelAllocator, flat_boot_line
from .isolate import AdapterFault, AdapterRaised
from .adapter import highmem_config
from .refine import (AreaShadow, CacheShadow, ObjectShadow, PkmapShadow, Shadow,
                     cache_geometry_of, check_alloc, check_cache_alloc, check_cache_create,
                     check_counts, check_kmalloc, check_kmap, check_pkmap_count,
                     check_slab_layout, check_vmalloc, kmalloc_class)

__all__ = ["CASES", "Case", "Recorder", "Ref", "build_all", "export", "replay_page_vector",
           "replay_vector", "FORMAT_VERSION", "PAGE_ERROR_RULES", "SCENARIO_OPS",
           "ADAPTER_RUNNERS", "PART_RUNNERS", "misuse_vectors", "run_misuse_vectors"]

# 2: boot lines carry page_policy (issue 15); 3: the flat machine's boot line carries
# mem_map_alloc "init_maps" (i386 boots now place mem_map by alloc_node_mem_map, issue 15);
# 4: a page_policy "2.6.12" boot leaves frames on CPU 0's hot lists, as 2.6.12's
# free_all_bootmem_core and set_highmem_pages_init do (issue 15), so the expected
# answers of the 2.6.12 vectors change (scenario/pcp_and_watermarks: first frame 63)
FORMAT_VERSION = 4
MAX_ORDER = 11          # linux-2.6-i386, the profile of every vector in this version


@dataclass(frozen=True)
class Ref:
    """A result bound with "as": written "$name" in the vector."""

    name: str


@dataclass
class Case:
    runner: str
    name: str
    run: Callable
    description: str


CASES: dict[str, Case] = {}


def case(runner: str, name: str):
    def register(run):
        CASES[f"{runner}/{name}"] = Case(runner, name, run,
                                         (run.__doc__ or "").strip().splitlines()[0])
        return run
    return register


# --- recording ----------------------------------------------------------------------

def _pfn(page):
    return None if page is None else page.pfn


# The scenario operations (as kmemspec/ops_buddy.py names them) on the model.
SCENARIO_OPS: dict[str, Callable] = {
    "alloc_pages": lambda m, gfp, order: _pfn(page_alloc.alloc_pages(m, parse_gfp(gfp), order)),
    "alloc_page": lambda m, gfp: _pfn(page_alloc.alloc_page(m, parse_gfp(gfp))),
    "__get_free_pages": lambda m, gfp, order: getattr(page_alloc, "__get_free_pages")(
        m, parse_gfp(gfp), order),
    "__get_free_page": lambda m, gfp: getattr(page_alloc, "__get_free_page")(m, parse_gfp(gfp)),
    "get_zeroed_page": lambda m, gfp: page_alloc.get_zeroed_page(m, parse_gfp(gfp)),
    "__free_pages": lambda m, page, order: getattr(page_alloc, "__free_pages")(
        m, pfn_to_page(m, page), order),
    "__free_page": lambda m, page: getattr(page_alloc, "__free_page")(m, pfn_to_page(m, page)),
    "free_pages": lambda m, addr, order: page_alloc.free_pages(m, 0 if addr is None else addr,
                                                               order),
    "free_page": lambda m, addr: page_alloc.free_page(m, 0 if addr is None else addr),
    "get_page": lambda m, page: page_alloc.get_page(m, pfn_to_page(m, page)),
    "put_page": lambda m, page: page_alloc.put_page(m, pfn_to_page(m, page)),
    "drain_local_pages": lambda m: page_alloc.drain_local_pages(m, 0),
    "__drain_pages": lambda m, cpu: getattr(page_alloc, "__drain_pages")(m, cpu),
    "set_current_flags": lambda m, flags: setattr(
        m, "current_flags", page_alloc.PF_MEMALLOC if flags == "PF_MEMALLOC" else int(flags)),
}
_VOID = {"__free_pages", "__free_page", "free_pages", "free_page", "get_page", "put_page",
         "drain_local_pages", "__drain_pages", "set_current_flags"}
# The adapter runners' calls and their inputs, in call order.
_PAGE_PARAMS = {"alloc_pages": ("order",), "free_pages": ("pfn", "order"), "free_counts": (),
                "kmalloc": ("size",), "kfree": ("addr",), "ksize": ("addr",),
                "vmalloc": ("size",), "vfree": ("addr",), "vmalloc_to_pfn": ("addr",),
                "kmem_cache_create": ("name", "size", "align", "flags"),
                "kmem_cache_alloc": ("cache",), "kmem_cache_free": ("cache", "addr"),
                "kmem_cache_destroy": ("cache",), "slab_layout": ("cache",),
                "kmap": ("pfn",), "kunmap": ("pfn",), "pkmap_count": ()}
ADAPTER_RUNNERS = ("page_alloc", "object", "vmalloc", "cache", "highmem")
# the parts' optional introspection: skipped on adapters that do not offer it
_OPTIONAL_OPS = ("free_counts", "ksize", "vmalloc_to_pfn", "slab_layout", "pkmap_count")


class Recorder:
    """Runs a case's calls on the model and records them, with the model's answers."""

    def __init__(self, runner: str):
        self.runner = runner
        self.boot_line: dict | None = None
        self.steps: list[dict] = []
        self.env: dict[str, object] = {}
        self.machine = None
        self.model: ModelAllocator | None = None
        self.nr_pages = 0
        self.vsize = None

    def _resolve(self, args: dict) -> tuple[dict, dict]:
        shown, real = {}, {}
        for key, value in args.items():
            if isinstance(value, Ref):
                shown[key] = f"${value.name}"
                real[key] = self.env[value.name]
            else:
                shown[key] = value
                real[key] = value
        return shown, real

    # the adapter runners: page_alloc, object, vmalloc
    def init(self, nr_pages: int) -> None:
        assert self.runner in ADAPTER_RUNNERS
        self.model = ModelAllocator()
        self.model.init(nr_pages, MAX_ORDER)
        self.machine = self.model.machine
        self.nr_pages = nr_pages
        if self.runner == "vmalloc":
            self.vsize = self.model.vmalloc_size()

    # scenario runner
    def boot(self, **config) -> None:
        assert self.runner == "scenario"
        self.machine = boot(MachineConfig.from_dict(config))
        self.boot_line = {"op": "boot", **config}

    def call(self, op: str, as_: str | None = None, **args):
        """Make one call; record it with its answer, or the rule of its rejection."""
        shown, real = self._resolve(args)
        step = {"op": op, **shown}
        if as_ is not None:
            step["as"] = as_
        try:
            if self.runner in ADAPTER_RUNNERS:
                ret = getattr(self.model, op)(*(real[k] for k in _PAGE_PARAMS[op]))
            else:
                ret = SCENARIO_OPS[op](self.machine, **real)
        except KernelBug as bug:
            step["expect"] = {"error": bug.rule}
            self.steps.append(step)
            if as_ is not None:
                self.env[as_] = None
            return bug
        if self.runner in ADAPTER_RUNNERS or op not in _VOID:
            step["expect"] = {"ret": ret}
        if as_ is not None:
            self.env[as_] = ret
        self.steps.append(step)
        return ret

    def error(self, op: str, **args) -> str:
        """A call the spec rejects: its rule (the case fails if it is accepted)."""
        bug = self.call(op, **args)
        assert isinstance(bug, KernelBug), f"{op}({args}) was accepted, expected a rejection"
        return bug.rule

    def counts(self) -> list[int]:
        return self.call("free_counts")

    def alloc(self, order: int, as_: str | None = None):
        return self.call("alloc_pages", as_, order=order)

    def free(self, pfn, order: int):
        return self.call("free_pages", pfn=pfn, order=order)

    # export
    def vector(self, c: Case) -> dict:
        out = {"format": "kmemspec-vector", "version": FORMAT_VERSION, "runner": c.runner,
               "name": c.name, "description": c.description,
               "profile": "linux-2.6-i386"}
        if c.runner in ADAPTER_RUNNERS:
            out["init"] = {"nr_pages": self.nr_pages, "max_order": MAX_ORDER}
            if self.vsize is not None:
                out["init"]["vsize"] = self.vsize
        else:
            out["boot"] = self.boot_line
        out["steps"] = self.steps
        return out


def page_vector_scenario(vector: dict) -> str:
    """An adapter-runner vector as a model scenario on the flat machine (JSON Lines).

    Frame p is model pfn FLAT_BASE + p; an object at byte b is kernel address
    PAGE_OFFSET + FLAT_BASE * PAGE_SIZE + b; a vm area at a is VMALLOC_START + a.
    """
    nr_pages = vector["init"]["nr_pages"]
    if vector["runner"] == "highmem":
        return _highmem_vector_scenario(vector)
    model = ModelAllocator()
    model.init(nr_pages, MAX_ORDER)
    kbase = model.kbase
    vstart = model.machine.vmalloc_start if hasattr(model.machine, "vmalloc_start") else 0
    base = {"alloc_pages": FLAT_BASE, "kmalloc": kbase, "vmalloc": vstart}
    lines = [f"# {vector['runner']}/{vector['name']}: {vector['description']}",
             f"# flat machine: implementation frame p = model pfn {FLAT_BASE} + p",
             json.dumps(flat_boot_line(nr_pages))]

    def shift(value, offset):
        if isinstance(value, str) or value is None:
            return value            # "$name" already means the model's own answer
        return offset + value

    for step in vector["steps"]:
        op = step["op"]
        expect = step.get("expect", {})
        line = None
        if op in ("alloc_pages", "kmalloc", "vmalloc"):
            key = "order" if op == "alloc_pages" else "size"
            line = {"op": op, key: step[key]}
            if op != "vmalloc":
                line["gfp"] = "GFP_KERNEL"
            if "as" in step:
                line["as"] = step["as"]
            if "ret" in expect:
                line["expect"] = {"ret": shift(expect["ret"], base[op])}
            else:
                line["expect"] = expect
        elif op == "free_pages":
            line = {"op": "__free_pages", "page": shift(step["pfn"], FLAT_BASE),
                    "order": step["order"]}
        elif op in ("kfree", "ksize"):
            line = {"op": op, "addr": shift(step["addr"], kbase)}
            if op == "ksize" and "ret" in expect:
                line["expect"] = expect
        elif op == "kmem_cache_create":
            line = {"op": op, "name": step["name"], "size": step["size"],
                    "align": step["align"], "flags": step["flags"], "as": step["as"]}
            if "ret" in expect:
                line["expect"] = {"ret": None if expect["ret"] is None else step["name"]}
        elif op == "kmem_cache_alloc":
            line = {"op": op, "cache": _cache_name(step["cache"]), "gfp": "GFP_KERNEL"}
            if "as" in step:
                line["as"] = step["as"]
            if "ret" in expect:
                line["expect"] = {"ret": shift(expect["ret"], kbase)}
        elif op in ("kmem_cache_free", "kmem_cache_destroy"):
            line = {"op": op, "cache": _cache_name(step["cache"])}
            if op == "kmem_cache_free":
                line["addr"] = shift(step["addr"], kbase)
        elif op in ("vfree", "vmalloc_to_pfn"):
            line = {"op": "vfree" if op == "vfree" else "vmalloc_to_page",
                    "addr": shift(step["addr"], vstart)}
            if op == "vmalloc_to_pfn" and "ret" in expect:
                line["expect"] = {"ret": shift(expect["ret"], FLAT_BASE)}
        if line is None:
            lines.append(f"# {op} -> {json.dumps(expect.get('ret'))}")
            continue
        if "error" in expect:
            line["expect"] = expect
        lines.append(json.dumps(line))
    return "\n".join(lines) + "\n"


def build_all() -> dict[str, dict]:
    """Run every case on the model (its asserts are the model's tests); the vectors."""
    out = {}
    for key, c in CASES.items():
        rec = Recorder(c.runner)
        c.run(rec)
        out[key] = rec.vector(c)
    return out


def scenario_text(vector: dict) -> str:
    if vector["runner"] in ADAPTER_RUNNERS:
        return page_vector_scenario(vector)
    lines = [f"# {vector['runner']}/{vector['name']}: {vector['description']}",
             json.dumps(vector["boot"])]
    lines += [json.dumps(step) for step in vector["steps"]]
    return "\n".join(lines) + "\n"


def export(outdir: str, *, version: str) -> dict:
    """Write the corpus: index.json, FORMAT.md, <runner>/<name>.json and .jsonl."""
    vectors = build_all()
    os.makedirs(outdir, exist_ok=True)
    index = {"format": "kmemspec-vectors", "version": FORMAT_VERSION, "kmemspec": version,
             "profile": "linux-2.6-i386", "runners": sorted({v["runner"] for v in
                                                            vectors.values()}),
             "vectors": []}
    for key, vector in sorted(vectors.items()):
        runner_dir = os.path.join(outdir, vector["runner"])
        os.makedirs(runner_dir, exist_ok=True)
        base = os.path.join(runner_dir, vector["name"])
        with open(base + ".json", "w", encoding="utf-8") as handle:
            json.dump(vector, handle, indent=1)
            handle.write("\n")
        with open(base + ".jsonl", "w", encoding="utf-8") as handle:
            handle.write(scenario_text(vector))
        index["vectors"].append({"runner": vector["runner"], "name": vector["name"],
                                 "description": vector["description"],
                                 "steps": len(vector["steps"]),
                                 "json": f"{vector['runner']}/{vector['name']}.json",
                                 "scenario": f"{vector['runner']}/{vector['name']}.jsonl"})
    with open(os.path.join(outdir, "index.json"), "w", encoding="utf-8") as handle:
        json.dump(index, handle, indent=1)
        handle.write("\n")
    with open(os.path.join(outdir, "FORMAT.md"), "w", encoding="utf-8") as handle:
        handle.write(FORMAT_DOC.format(version=FORMAT_VERSION, base=FLAT_BASE))
    return index


# --- the reference runner --------------------------------------------------------------

@dataclass
class VectorResult:
    name: str
    passed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def replay_page_vector(vector: dict, driver, *, mode: str = "strict") -> VectorResult:
    """Replay an adapter-runner vector (page_alloc, object, vmalloc) on an adapter.

    strict: every answer equals the expected one. refine: answers are judged by the
    refinement rules (spec/conformance.md), expected addresses are not compared.
    Misuse steps (expect error) are replayed only on adapters with `detects_misuse`;
    they pass when the call is rejected (and, if the adapter names a rule, it is the
    expected one). Optional introspection steps are skipped when not offered.
    """
    from ..model.profiles import get_profile
    result = VectorResult(f"{vector['runner']}/{vector['name']}")
    init = vector["init"]
    runner = vector["runner"]
    profile = get_profile(vector.get("profile", "linux-2.6-i386"))
    try:
        info = driver.reset()
        driver.call("init", init["nr_pages"], init["max_order"])
        if runner == "vmalloc":
            driver.call("vmalloc_init", init["vsize"])
    except AdapterFault as exc:
        result.failures.append(f"init: {exc}")
        return result
    pages = Shadow(init["nr_pages"], init["max_order"])
    caches = CacheShadow(init["nr_pages"], profile)
    pkmaps = PkmapShadow(init["nr_pages"], profile)
    slab_state = None
    if runner == "cache":
        reference = ModelAllocator()
        reference.init(init["nr_pages"], init["max_order"])
        slab_state = reference.machine.slab
    objects = ObjectShadow(init["nr_pages"], profile)
    areas = AreaShadow(init["nr_pages"], init.get("vsize", 0), profile)
    env: dict[str, object] = {}
    misuse = info.get("detects_misuse", False)
    optional = set(info.get("optional", ()))

    def value(x):
        return env.get(x[1:]) if isinstance(x, str) and x.startswith("$") else x

    for index, step in enumerate(vector["steps"], start=1):
        op = step["op"]
        expect = step.get("expect", {})
        where = f"step {index} {op}"
        if "error" in expect and not misuse:
            result.skipped += 1
            continue
        if ("error" in expect and op == "free_pages" and mode == "refine"
                and pages.live.get(value(step["pfn"])) == value(step["order"])):
            # the vector's literal pfn is Linux's layout: on this implementation it is
            # a live block of that order, so freeing it is no misuse here
            result.skipped += 1
            continue
        if op in _OPTIONAL_OPS and op not in optional:
            result.skipped += 1
            continue
        args = [value(step[k]) for k in _PAGE_PARAMS[op]]
        try:
            ret = driver.call(op, *args)
        except AdapterRaised as exc:
            if "error" in expect:
                if exc.rule is not None and exc.rule != expect["error"]:
                    result.failures.append(f"{where}: rejected as {exc.rule}, expected "
                                           f"{expect['error']}")
                else:
                    result.passed += 1
                continue
            result.failures.append(f"{where}: {exc}")
            return result
        except AdapterFault as exc:
            result.failures.append(f"{where}: {exc}")
            return result
        if "error" in expect:
            result.failures.append(f"{where}: accepted; expected rejection "
                                   f"({expect['error']})")
            return result
        want = expect.get("ret")
        problem = None
        if op == "alloc_pages":
            problem = check_alloc(pages, args[0], ret)
            if problem is None and ret is not None:
                pages.add(ret, args[0])
        elif op == "kmalloc":
            problem = check_kmalloc(objects, args[0], ret)
            if problem is None and ret is not None:
                objects.live[ret] = (args[0], kmalloc_class(profile, args[0]))
        elif op == "vmalloc":
            problem = check_vmalloc(areas, args[0], ret)
            if problem is None and ret is not None:
                areas.live[ret] = (args[0], areas.span(args[0]))
        elif op == "free_pages":
            if args[0] in pages.live:
                pages.remove(args[0])
        elif op == "kfree":
            objects.live.pop(args[0], None)
        elif op == "vfree":
            areas.live.pop(args[0], None)
        elif op == "free_counts":
            problem = check_counts(pages, ret)
        elif op == "ksize":
            live = objects.live.get(args[0])
            if live is not None and ret != live[1]:
                problem = f"K8: ksize is {ret}, the class is {live[1]}"
        elif op == "vmalloc_to_pfn" and (ret is None) != (want is None):
            problem = f"V7: maps {ret}, expected {'nothing' if want is None else 'a frame'}"
        elif op == "kmem_cache_create":
            geo = cache_geometry_of(profile, *args[1:], offslab_limit=slab_state.offslab_limit,
                                    slab_break_gfp_order=slab_state.slab_break_gfp_order)
            problem = check_cache_create(caches, geo, ret)
            if problem is None and ret is not None:
                caches.geometry[ret] = geo
            if problem is None and mode == "strict" and (ret is None) != (want is None):
                problem = f"returned {ret}, expected {'NULL' if want is None else 'a handle'}"
            want = ret                     # the handle itself is the implementation's choice
        elif op == "kmem_cache_alloc":
            problem = check_cache_alloc(caches, args[0], ret)
            if problem is None and ret is not None:
                caches.objects[ret] = args[0]
        elif op == "kmem_cache_free":
            caches.objects.pop(args[1], None)
        elif op == "kmem_cache_destroy":
            caches.geometry.pop(args[0], None)
        elif op == "slab_layout":
            problem = check_slab_layout(caches, args[0], ret, {})
            if isinstance(ret, (list, tuple)):
                ret = sorted(list(e) for e in ret)
        elif op == "kmap":
            problem = check_kmap(pkmaps, args[0], ret)
            if problem is None and ret is not None:
                pkmaps.maps.setdefault(args[0], [ret, 0])[1] += 1
        elif op == "kunmap":
            entry = pkmaps.maps.get(args[0])
            if entry is not None:
                entry[1] -= 1
                if not entry[1]:
                    del pkmaps.maps[args[0]]
        elif op == "pkmap_count":
            problem = check_pkmap_count(pkmaps, ret)
        if problem is None and mode == "strict" and op != "free_pages" and ret != want:
            problem = f"returned {ret}, expected {want}"
        if problem is not None:
            result.failures.append(f"{where}: {problem}")
            return result
        if "as" in step:
            env[step["as"]] = ret
        result.passed += 1
    return result


replay_vector = replay_page_vector

# the vector runner of each part of `kmemspec conform`
PART_RUNNERS = {"page": "page_alloc", "object": "object", "vmalloc": "vmalloc",
                "cache": "cache", "highmem": "highmem"}


def misuse_vectors(part: str) -> list[dict]:
    """The vectors of a part with misuse steps (expect an error): the ones that matter
    for an implementation declaring `detects_misuse` / kms_detects_misuse()."""
    runner = PART_RUNNERS[part]
    return [v for v in build_all().values() if v["runner"] == runner
            and any("error" in step.get("expect", {}) for step in v["steps"])]


def run_misuse_vectors(driver, part: str, *, max_order: int | None = None,
                       supported=None, object_sizes=None) -> list[VectorResult]:
    """Replay the part's misuse vectors on a driver (refine mode: the layout is the
    implementation's own). `max_order`: a declared MAX_ORDER below the vectors' (the
    init asks that one); `supported(nr_pages)`: vectors on other machine sizes are
    left out; `object_sizes` (lo, hi): vectors asking a kmalloc or cache size outside
    it are left out. An implementation that accepts a misuse fails its vector."""
    results = []
    for vector in misuse_vectors(part):
        if supported is not None and not supported(vector["init"]["nr_pages"]):
            continue
        if object_sizes is not None and any(
                step["op"] in ("kmalloc", "kmem_cache_create")
                and not object_sizes[0] <= step["size"] <= object_sizes[1]
                for step in vector["steps"]):
            continue
        if max_order is not None:
            vector = dict(vector, init=dict(vector["init"], max_order=max_order))
        results.append(replay_page_vector(vector, driver, mode="refine"))
    return results


def _cache_name(ref: str) -> str:
    """Vectors bind a cache handle with "as" equal to the cache's name: "$c" -> "c"."""
    return ref[1:] if isinstance(ref, str) and ref.startswith("$") else ref


def _highmem_vector_scenario(vector: dict) -> str:
    """A highmem vector on the model's highmem machine: frame p is the page bound h<p>."""
    nr_pages = vector["init"]["nr_pages"]
    cfg = highmem_config(nr_pages)
    model = ModelAllocator()
    model.init(2, MAX_ORDER)
    base = model._highmem().pkmap_base
    lines = [f"# {vector['runner']}/{vector['name']}: {vector['description']}",
             f"# highmem machine: frame p = the p-th GFP_HIGHUSER page (h<p>); "
             f"addresses are PKMAP_BASE ({base:#x}) + offset",
             json.dumps({"op": "boot", "profile": cfg.profile, "phys_pages": cfg.phys_pages,
                         "highmem_pages": cfg.highmem_pages, "max_dma_pfn": cfg.max_dma_pfn,
                         "page_policy": cfg.page_policy})]
    lines += [json.dumps({"op": "alloc_pages", "order": 0, "gfp": "GFP_HIGHUSER",
                          "as": f"h{p}"}) for p in range(nr_pages)]
    for step in vector["steps"]:
        op, expect = step["op"], step.get("expect", {})
        if op == "kmap":
            line = {"op": "kmap", "page": f"$h{step['pfn']}"}
            if "ret" in expect:
                line["expect"] = {"ret": None if expect["ret"] is None
                                  else base + expect["ret"]}
        elif op == "kunmap":
            line = {"op": "kunmap", "page": f"$h{step['pfn']}"}
        else:
            ret = expect.get("ret")
            if op == "pkmap_count" and isinstance(ret, list):
                ret = {i: c for i, c in enumerate(ret) if c}
            lines.append(f"# {op} -> {json.dumps(ret)}")
            continue
        if "error" in expect:
            line["expect"] = expect
        lines.append(json.dumps(line))
    return "\n".join(lines) + "\n"


FORMAT_DOC = """# kmemspec test vectors, format version {version}

Every vector is one JSON file `<runner>/<name>.json` (and the same calls as a model
scenario, `<runner>/<name>.jsonl`, replayable with `kmemspec run`). `index.json` lists
them. All vectors are for the profile `linux-2.6-i386` (MAX_ORDER 11: orders 0..10).

A step is `{{"op": ..., inputs..., "as": name?, "expect": {{"ret": value}} | {{"error": rule}}}}`.
`"as"` binds the result; an input `"$name"` is that result. A step expecting an error is
a misuse the spec rejects: the state must not change (runners for implementations
that do not detect misuse skip these steps). Results are JSON: a pfn is an integer,
NULL is `null`.

## Runner `page_alloc` (any adapter: conform/adapter.py, conform/kms.h)

`init`: `{{"nr_pages": N, "max_order": 11}}` -- call `init(N, 11)` (C: `kms_init`); frames
0..N-1 are all free. The model reference is the flat machine: frame p = model pfn {base} + p.

| op | inputs | the call | expected |
|---|---|---|---|
| `alloc_pages` | `order` | `alloc_pages(order)` / `kms_alloc_pages(order)` | `ret`: first pfn of the block, or `null` (C: -1). Strict runners compare it exactly; refine runners accept any answer the spec allows (spec/conformance.md R1-R6). |
| `free_pages` | `pfn` (usually `"$name"`), `order` | `free_pages(pfn, order)` / `kms_free_pages` | `ret: null` (accepted), or `error: rule` (misuse: must be rejected) |
| `free_counts` | -- | `free_counts()` / `kms_free_counts` (optional) | `ret`: nr_free (blocks) per order 0..10 |

## Runner `object` (adapters with kmalloc; conform/kms.h `kms_kmalloc`...)

`init` as for `page_alloc`. An object's address is its byte offset into the frames
(C: -1 for NULL). Model: address = PAGE_OFFSET + {base} * PAGE_SIZE + offset.

| op | inputs | expected |
|---|---|---|
| `kmalloc` | `size` | `ret`: the object's address, or `null`. Refine: K1-K7 of spec/conformance.md (class extent, alignment, no overlap, NULL only above 131072 or when memory is short). |
| `kfree` | `addr` | `ret: null`, or `error` (misuse) |
| `ksize` | `addr` (optional op) | `ret`: the object's class size |

## Runner `vmalloc` (adapters with vmalloc; `kms_vmalloc_init`, `kms_vmalloc`...)

`init` also has `vsize`: call `vmalloc_init(vsize)` after `init`. An area's address is
its byte offset into the range (C: -1 for NULL). Model: VMALLOC_START + offset.

| op | inputs | expected |
|---|---|---|
| `vmalloc` | `size` | `ret`: the area's address, or `null`. Refine: V1-V5 (page aligned, guard page, no overlap, NULL for size 0 or more pages than the machine, else only when frames run short). |
| `vfree` | `addr` | `ret: null`, or `error` (misuse) |
| `vmalloc_to_pfn` | `addr` (optional op) | `ret`: the frame mapped there, or `null` (guard pages, freed areas). Refine compares only mapped/unmapped. |

## Runner `cache` (adapters with kmem_cache_*; `kms_kmem_cache_create`...)

`init` as for `page_alloc`. Object addresses as for `object`. A cache is bound with
`"as"` equal to its name; `"$name"` is the implementation's handle for it.

| op | inputs | expected |
|---|---|---|
| `kmem_cache_create` | `name`, `size`, `align`, `flags` | `ret`: a handle (the model's: 1, 2, ...), or `null`. Strict compares only NULL or not. |
| `kmem_cache_alloc` | `cache` | `ret`: the object's address, or `null`. Refine: C1-C5 of spec/conformance.md. |
| `kmem_cache_free` | `cache`, `addr` | `ret: null` |
| `kmem_cache_destroy` | `cache` | `ret: null` (the cache has no live objects) |
| `slab_layout` | `cache` (optional op) | `ret`: `[base, colour offset, management bytes, on-slab, num]` per slab, by base. Refine: C7-C8; strict: equal. |

## Runner `highmem` (adapters with kmap; `kms_kmap`...)

`init` as for `page_alloc`; the frames are highmem pages the caller owns. An address is
a byte offset into the PKMAP area (model: PKMAP_BASE + offset).

| op | inputs | expected |
|---|---|---|
| `kmap` | `pfn` | `ret`: the page's address, or `null` (every slot has users). Refine: H1-H4. |
| `kunmap` | `pfn` | `ret: null` |
| `pkmap_count` | -- (optional op) | `ret`: the LAST_PKMAP (1024) slot counts. Refine: H6; strict: equal. |

## Runner `scenario` (the model's kernel API)

The first line of the `.jsonl` (and `boot` in the `.json`) is the machine
(`MachineConfig`: profile, phys_pages, highmem_pages, iomem_pages, reserved,
max_dma_pfn, page_policy, mem_map_alloc); then one kernel call per step. The `.jsonl` of
the `page_alloc` and `object` runners boots the flat machine with `mem_map_alloc:
"init_maps"` (mem_map at the bottom of low memory, below frame {base}). `gfp` is a flag expression
(`"GFP_KERNEL"`, `"GFP_DMA"`, `"GFP_HIGHUSER"`, `"GFP_KERNEL | __GFP_ZERO"`) or an integer.

| op | inputs | expected |
|---|---|---|
| `alloc_pages` | `gfp`, `order` | `ret`: pfn of the block's first page, or `null` |
| `alloc_page` | `gfp` | `ret`: pfn or `null` |
| `__get_free_pages` | `gfp`, `order` | `ret`: kernel virtual address (0 for a highmem page, which stays allocated), or `null` |
| `__get_free_page` | `gfp` | as `__get_free_pages` with order 0 |
| `get_zeroed_page` | `gfp` | as `__get_free_page`; error `highmem_get_free_pages` with `__GFP_HIGHMEM` |
| `__free_pages` | `page` (pfn), `order` | nothing, or `error`: `bad_order`, `bad_pfn`, `free_reserved`, `misaligned_free`, `double_free`, `not_block_head`, `not_allocated`, `wrong_order` |
| `__free_page` | `page` | as `__free_pages` with order 0 |
| `free_pages` | `addr`, `order` | nothing (`addr` 0/null: no-op), or `error`: `bad_address` and the `__free_pages` rules |
| `free_page` | `addr` | as `free_pages` with order 0 |
| `get_page` | `page` | nothing, or `error`: `get_page_unallocated`, `bad_pfn` |

Allocation errors: `bad_order` (negative or non-integer order), `bad_gfp` (undefined
gfp bits). An order >= MAX_ORDER is not an error: the answer is `null`.
"""


# --- the cases: runner page_alloc --------------------------------------------------------
# Counts are nr_free per order 0..10; `_c({4: 1})` is "one free block of order 4".

def _c(blocks: dict[int, int]) -> list[int]:
    return [blocks.get(order, 0) for order in range(MAX_ORDER)]


@case("page_alloc", "init_counts")
def init_counts(t):
    """After init every frame is free, in maximal aligned blocks."""
    t.init(16)
    assert t.counts() == _c({4: 1})


@case("page_alloc", "init_not_power_of_two")
def init_not_power_of_two(t):
    """Init with 13 frames: blocks of 8, 4 and 1, none past the end."""
    t.init(13)
    assert t.counts() == _c({3: 1, 2: 1, 0: 1})


@case("page_alloc", "split_gives_lowest_part")
def split_gives_lowest_part(t):
    """Splitting hands out the lowest part and puts the upper halves back (expand)."""
    t.init(16)
    assert t.alloc(0, "a") == 0
    assert t.counts() == _c({0: 1, 1: 1, 2: 1, 3: 1})
    assert t.alloc(0, "b") == 1
    assert t.alloc(1, "c") == 2


@case("page_alloc", "lifo_reuse")
def lifo_reuse(t):
    """A freed block is at the head of its list: the next request of its order gets it."""
    t.init(16)
    t.alloc(0, "a")
    assert t.alloc(0, "b") == 1
    t.alloc(0, "c")
    t.free(Ref("b"), 0)
    assert t.alloc(0, "d") == 1


@case("page_alloc", "merge_back_to_top")
def merge_back_to_top(t):
    """Freeing every block merges the frames back into one block (merge_completeness)."""
    t.init(16)
    t.alloc(0, "a")
    t.alloc(1, "b")
    t.alloc(2, "c")
    t.free(Ref("b"), 1)
    t.free(Ref("a"), 0)
    assert t.counts() == _c({2: 1, 3: 1})
    t.free(Ref("c"), 2)
    assert t.counts() == _c({4: 1})


@case("page_alloc", "no_merge_past_the_end")
def no_merge_past_the_end(t):
    """A block at the end of the frames has no buddy beyond them (bad_range)."""
    t.init(12)
    assert t.alloc(2, "a") == 8
    t.free(Ref("a"), 2)
    assert t.counts() == _c({3: 1, 2: 1})
    assert t.alloc(3, "b") == 0
    assert t.alloc(3, "c") is None


@case("page_alloc", "merge_needs_equal_orders")
def merge_needs_equal_orders(t):
    """A free block merges only with a buddy of its own order (page_is_buddy)."""
    t.init(7)
    assert t.counts() == _c({2: 1, 1: 1, 0: 1})
    assert t.alloc(1, "a") == 4
    t.free(Ref("a"), 1)
    assert t.counts() == _c({2: 1, 1: 1, 0: 1})


@case("page_alloc", "top_order")
def top_order(t):
    """The top order (10, 1024 frames) can be allocated; one above it never."""
    t.init(2048)
    assert t.alloc(10, "a") == 1024
    assert t.alloc(11, "too_big") is None
    assert t.alloc(10, "b") == 0
    assert t.alloc(10, "c") is None
    t.free(Ref("a"), 10)
    t.free(Ref("b"), 10)
    assert t.counts() == _c({10: 2})


@case("page_alloc", "every_order")
def every_order(t):
    """Allocate and free one block of every order 0..10 and one beyond."""
    t.init(2048)
    for order in range(MAX_ORDER + 1):
        ret = t.alloc(order, f"o{order}")
        assert (ret is None) == (order >= MAX_ORDER)
        if ret is not None:
            assert ret % (1 << order) == 0
            t.free(Ref(f"o{order}"), order)
    assert t.counts() == _c({10: 2})


@case("page_alloc", "exhaustion")
def exhaustion(t):
    """NULL once every frame is live; a free makes the space reusable."""
    t.init(4)
    for name in "abcd":
        t.alloc(0, name)
    assert t.alloc(0, "e") is None
    assert t.alloc(1, "f") is None
    t.free(Ref("c"), 0)
    assert t.alloc(0, "g") == 2


@case("page_alloc", "fragmentation")
def fragmentation(t):
    """Free frames that form no aligned pair cannot satisfy order 1: NULL is correct."""
    t.init(8)
    for i in range(8):
        t.alloc(0, f"p{i}")
    for i in (0, 2, 4, 6):
        t.free(Ref(f"p{i}"), 0)
    assert t.counts() == _c({0: 4})
    assert t.alloc(1, "pair") is None
    t.free(Ref("p1"), 0)
    assert t.alloc(1, "pair2") == 0


@case("page_alloc", "two_frames")
def two_frames(t):
    """A machine of two frames: one order-1 block, or two order-0 blocks."""
    t.init(2)
    assert t.alloc(2, "a") is None
    assert t.alloc(0, "b") == 0
    assert t.alloc(1, "c") is None
    assert t.alloc(0, "d") == 1
    assert t.alloc(0, "e") is None


@case("page_alloc", "misuse")
def misuse(t):
    """Every misuse of free_pages the spec rejects, state unchanged after each."""
    t.init(16)
    t.alloc(1, "a")
    t.alloc(0, "b")
    assert t.error("free_pages", pfn=Ref("a"), order=0) == "wrong_order"
    assert t.error("free_pages", pfn=1, order=0) == "not_block_head"
    assert t.error("free_pages", pfn=3, order=0) == "double_free"
    assert t.error("free_pages", pfn=3, order=1) == "misaligned_free"
    assert t.error("free_pages", pfn=0, order=11) == "bad_order"
    assert t.error("free_pages", pfn=16, order=0) == "bad_pfn"
    t.free(Ref("a"), 1)
    assert t.error("free_pages", pfn=Ref("a"), order=1) == "double_free"
    assert t.counts() == _c({0: 1, 1: 1, 2: 1, 3: 1})


# --- the cases: runner object (kmalloc) -----------------------------------------------------

KMALLOC_CLASSES = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


@case("object", "every_class_and_boundary")
def every_class_and_boundary(t):
    """kmalloc of every class size and one byte more: the smallest class that fits."""
    t.init(1024)
    for cls in KMALLOC_CLASSES:
        for size in (cls, cls + 1):
            addr = t.call("kmalloc", f"s{size}", size=size)
            want = next((c for c in KMALLOC_CLASSES if size <= c), None)
            assert (addr is None) == (want is None)
            if addr is not None:
                assert t.call("ksize", addr=Ref(f"s{size}")) == want
                assert addr % min(want, 128) == 0
    for cls in KMALLOC_CLASSES:
        for size in (cls, cls + 1):
            if t.env[f"s{size}"] is not None:
                t.call("kfree", addr=Ref(f"s{size}"))


@case("object", "zero_and_too_big")
def zero_and_too_big(t):
    """kmalloc(0) gets a size-32 object on 2.6; above 128 KiB there is no cache: NULL."""
    t.init(1024)
    assert t.call("kmalloc", "z", size=0) is not None
    assert t.call("ksize", addr=Ref("z")) == 32
    assert t.call("kmalloc", "big", size=131073) is None
    t.call("kfree", addr=Ref("z"))


@case("object", "reuse_after_kfree")
def reuse_after_kfree(t):
    """A freed object is handed out again first (2.6.12: the per-CPU array is LIFO)."""
    t.init(1024)
    a = t.call("kmalloc", "a", size=100)
    b = t.call("kmalloc", "b", size=100)
    # the first refill of size-128 takes objects 0..15 (BATCHREFILL_LIMIT); pops: 15, 14
    assert a - b == 128
    t.call("kfree", addr=Ref("a"))
    assert t.call("kmalloc", "c", size=120) == a


@case("object", "refill_batch_order")
def refill_batch_order(t):
    """2.6.12 per-CPU array caches: size-64 (61 objects a slab, batchcount 60) holds
    objects 0..11 of its first slab after the slab bootstrap (the 10 CPU array_caches of
    the limit-8 caches and size-512's two struct slabs, spec/slab.md); its retuned array
    refills BATCHREFILL_LIMIT = 16 objects (12..27) while untouched and pops them LIFO
    (27..12), then takes the slab's other 33 (28..60) and pops object 60."""
    t.init(1024)
    addrs = [t.call("kmalloc", f"k{i}", size=64) for i in range(17)]
    assert [addrs[i] - addrs[i + 1] for i in range(15)] == [64] * 15
    assert addrs[16] - addrs[15] == (60 - 12) * 64
    for i in range(17):
        t.call("kfree", addr=Ref(f"k{i}"))


@case("object", "misuse")
def object_misuse(t):
    """kfree of an address that is no live object is rejected."""
    t.init(1024)
    t.call("kmalloc", "a", size=64)
    t.call("kfree", addr=Ref("a"))
    t.error("kfree", addr=Ref("a"))


# --- the cases: runner vmalloc ---------------------------------------------------------------

PAGE = 4096


@case("vmalloc", "guard_pages")
def guard_pages(t):
    """Every area is followed by an unmapped guard page; areas are placed first fit."""
    t.init(256)
    assert t.call("vmalloc", "a", size=1) == 0
    assert t.call("vmalloc", "b", size=PAGE) == 2 * PAGE
    assert t.call("vmalloc", "c", size=PAGE + 1) == 4 * PAGE
    assert t.call("vmalloc_to_pfn", addr=0) is not None
    assert t.call("vmalloc_to_pfn", addr=PAGE) is None           # a's guard page
    assert t.call("vmalloc_to_pfn", addr=5 * PAGE) is not None   # c's second page
    assert t.call("vmalloc_to_pfn", addr=6 * PAGE) is None       # c's guard page
    t.call("vfree", addr=Ref("b"))
    assert t.call("vmalloc", "d", size=PAGE) == 2 * PAGE         # the hole again
    assert t.call("vmalloc", "e", size=2 * PAGE) == 7 * PAGE


@case("vmalloc", "sizes")
def vmalloc_sizes(t):
    """vmalloc(0) and more pages than the machine has fail; a free makes room again."""
    t.init(64)
    assert t.call("vmalloc", "zero", size=0) is None
    assert t.call("vmalloc", "huge", size=64 * PAGE + 1) is None
    big = t.call("vmalloc", "big", size=40 * PAGE)
    assert big == 0
    t.call("vfree", addr=Ref("big"))
    assert t.call("vmalloc", "again", size=40 * PAGE) == 0


@case("vmalloc", "vfree_unmaps")
def vfree_unmaps(t):
    """After vfree no page of the area maps a frame."""
    t.init(256)
    t.call("vmalloc", "a", size=3 * PAGE)
    for i in range(3):
        assert t.call("vmalloc_to_pfn", addr=i * PAGE) is not None
    t.call("vfree", addr=Ref("a"))
    for i in range(3):
        assert t.call("vmalloc_to_pfn", addr=i * PAGE) is None


@case("vmalloc", "misuse")
def vmalloc_misuse(t):
    """vfree of an address that starts no area is rejected; so is a second vfree."""
    t.init(256)
    t.call("vmalloc", "a", size=PAGE)
    t.error("vfree", addr=PAGE)
    t.call("vfree", addr=Ref("a"))
    t.error("vfree", addr=Ref("a"))


# --- the cases: runner cache (kmem_cache_*) ------------------------------------------------

def _objects(t, cache: str, n: int, prefix: str) -> list:
    return [t.call("kmem_cache_alloc", f"{prefix}{i}", cache=Ref(cache)) for i in range(n)]


@case("cache", "colour_cycling")
def colour_cycling(t):
    """1800-byte objects: 2 per slab, left_over 468, colour 3: offsets 0, 128, 256, 0."""
    t.init(256)
    assert t.call("kmem_cache_create", "c", name="c", size=1800, align=0, flags=0) == 1
    objs = _objects(t, "c", 8, "o")
    layout = t.call("slab_layout", cache=Ref("c"))
    assert [colour for _, colour, _, _, _ in layout] == [0, 128, 256, 0]
    assert all(mgmt == 28 and on_slab == 1 and num == 2 for _, _, mgmt, on_slab, num in layout)
    for base, colour, mgmt, _, _ in layout:          # object 0 right after the management
        assert base + colour + mgmt in objs
    for i in range(8):
        t.call("kmem_cache_free", cache=Ref("c"), addr=Ref(f"o{i}"))
    t.call("kmem_cache_destroy", cache=Ref("c"))


@case("cache", "on_slab_management")
def on_slab_management(t):
    """3900 bytes: one object per slab after struct slab + 1 bufctl (28 bytes); colour 1."""
    t.init(256)
    t.call("kmem_cache_create", "big", name="big", size=3900, align=0, flags=0)
    a, b = _objects(t, "big", 2, "o")
    layout = t.call("slab_layout", cache=Ref("big"))
    assert [(colour, mgmt, on_slab, num) for _, colour, mgmt, on_slab, num in layout] == \
        [(0, 28, 1, 1), (0, 28, 1, 1)]
    assert a - layout[0][0] == 28 and b - layout[1][0] == 28


@case("cache", "off_slab_management")
def off_slab_management(t):
    """4096 bytes with SLAB_HWCACHE_ALIGN: no slack, so struct slab lives off the slab."""
    t.init(256)
    t.call("kmem_cache_create", "page", name="page", size=4096, align=0, flags=0x2000)
    a = t.call("kmem_cache_alloc", "o", cache=Ref("page"))
    ((base, colour, mgmt, on_slab, num),) = t.call("slab_layout", cache=Ref("page"))
    assert (a, colour, on_slab, num) == (base, 0, 0, 1) and mgmt == 24 + 2
    t.call("kmem_cache_free", cache=Ref("page"), addr=Ref("o"))
    t.call("kmem_cache_destroy", cache=Ref("page"))


# --- the cases: runner highmem (kmap / kunmap) ------------------------------------------------

@case("highmem", "kmap_counts")
def kmap_counts(t):
    """A mapped page keeps its address; counts are users + 1, back to 1 after the last kunmap."""
    t.init(16)
    assert t.call("kmap", pfn=0) == PAGE                # slot 1: last_pkmap_nr starts at 0
    assert t.call("kmap", pfn=0) == PAGE
    assert t.call("kmap", pfn=1) == 2 * PAGE
    counts = t.call("pkmap_count")
    assert counts[1:3] == [3, 2] and sum(counts) == 5
    t.call("kunmap", pfn=0)
    t.call("kunmap", pfn=0)
    t.call("kunmap", pfn=1)
    counts = t.call("pkmap_count")
    assert counts[1:3] == [1, 1] and sum(counts) == 2     # unused, not yet flushed
    assert t.call("kmap", pfn=1) == 2 * PAGE             # still mapped: same address


@case("highmem", "distinct_pages")
def distinct_pages(t):
    """Sixteen pages get sixteen slots; balanced kunmaps leave every slot unused."""
    t.init(16)
    addrs = [t.call("kmap", pfn=p) for p in range(16)]
    assert len(set(addrs)) == 16
    for p in range(16):
        t.call("kunmap", pfn=p)
    assert sorted(set(t.call("pkmap_count"))) == [0, 1]


# --- the cases: runner scenario -----------------------------------------------------------

# A small machine with all three zones: DMA [0, 16), Normal [16, 64), HighMem [64, 80).
SMALL = {"profile": "linux-2.6-i386", "phys_pages": 64, "highmem_pages": 16,
         "iomem_pages": 0, "max_dma_pfn": 16, "reserved": [[0, 1]], "page_policy": "buddy"}


@case("scenario", "zones_by_gfp")
def zones_by_gfp(t):
    """gfp picks the zonelist: GFP_DMA from DMA, GFP_KERNEL Normal, GFP_HIGHUSER HighMem."""
    t.boot(**SMALL)
    assert 16 <= t.call("alloc_page", "k", gfp="GFP_KERNEL") < 64
    assert t.call("alloc_page", "d", gfp="GFP_DMA") < 16
    assert t.call("alloc_page", "h", gfp="GFP_HIGHUSER") >= 64
    assert t.call("alloc_pages", "hk", gfp="GFP_KERNEL | __GFP_HIGHMEM", order=1) >= 64
    t.call("__free_page", page=Ref("h"))
    t.call("__free_pages", page=Ref("hk"), order=1)


# the same small low memory with 2.6.12's watermarks and per-CPU lists
TINY_2_6_12 = {"profile": "linux-2.6-i386", "phys_pages": 64, "highmem_pages": 0,
               "iomem_pages": 0, "max_dma_pfn": 16, "reserved": [[0, 1]],
               "page_policy": "2.6.12"}


@case("scenario", "pcp_and_watermarks")
def pcp_and_watermarks(t):
    """page_policy "2.6.12": an order-0 frame comes through CPU 0's hot list and goes
    back on it; draining returns it to the buddy lists. GFP_KERNEL then stops at each
    zone's pages_min (30 frames: Normal 48 -> 24, DMA 14 -> 8; tests/test_watermarks.py
    works the marks out), GFP_ATOMIC dips 20 frames deeper, PF_MEMALLOC takes the
    last 12."""
    t.boot(**TINY_2_6_12)
    # boot (2.6.12 mm/bootmem.c free_all_bootmem_core; the model frees Normal's
    # unaligned word 32..63 frame by frame too, spec/buddy.md section 2) freed 16..63
    # one by one onto CPU 0's Normal hot list (batch 1, high 6), which drained 16..57
    # from its tail and holds 63..58: count 6 > low 2, no refill, the head 63 is
    # handed out. The free puts it back; the drains leave the lists empty and every
    # free frame in the buddy lists (Normal 48, DMA 14), where the counts below start.
    assert t.call("alloc_page", "p", gfp="GFP_KERNEL") == 63
    t.call("__free_page", page=Ref("p"))
    t.call("drain_local_pages")
    t.call("__drain_pages", cpu=0)
    for _ in range(30):
        assert t.call("alloc_page", gfp="GFP_KERNEL") is not None
    assert t.call("alloc_page", gfp="GFP_KERNEL") is None
    for _ in range(20):
        assert t.call("alloc_page", gfp="GFP_ATOMIC") is not None
    assert t.call("alloc_page", gfp="GFP_ATOMIC") is None
    t.call("set_current_flags", flags="PF_MEMALLOC")
    for _ in range(12):
        assert t.call("alloc_page", gfp="GFP_KERNEL") is not None
    assert t.call("alloc_page", gfp="GFP_KERNEL") is None
    t.call("set_current_flags", flags=0)


@case("scenario", "compound_pages")
def compound_pages(t):
    """__GFP_COMP: get_page/put_page on a tail act on the head; freeing with another
    order than page[1].index is bad_page; the last put_page has no destructor;
    put_page of a plain order-1 block would free one frame."""
    t.boot(**SMALL)
    # Normal [16, 64): order-5 block at 16 and order-4 at 48; order 2 splits the
    # order-4 block (the smallest that fits): 48
    assert t.call("alloc_pages", "c", gfp="GFP_KERNEL | __GFP_COMP", order=2) == 48
    t.call("get_page", page=51)
    t.call("put_page", page=49)
    assert t.error("__free_pages", page=Ref("c"), order=1) == "bad_compound"
    assert t.error("put_page", page=50) == "compound_no_dtor"
    t.call("__free_pages", page=Ref("c"), order=2)
    t.call("alloc_pages", "p", gfp="GFP_KERNEL", order=1)
    assert t.error("put_page", page=Ref("p")) == "put_page_high_order"
    t.call("alloc_page", "z", gfp="GFP_KERNEL")
    t.call("put_page", page=Ref("z"))


@case("scenario", "zone_fallback")
def zone_fallback(t):
    """When HighMem is exhausted a highmem request falls back to Normal, then DMA."""
    t.boot(**SMALL)
    assert t.call("alloc_pages", "h", gfp="GFP_HIGHUSER", order=4) == 64
    assert 16 <= t.call("alloc_page", "n", gfp="GFP_HIGHUSER") < 64
    assert t.call("alloc_pages", "big", gfp="GFP_KERNEL", order=6) is None
    assert t.call("alloc_pages", "top", gfp="GFP_KERNEL", order=11) is None


@case("scenario", "addresses")
def addresses(t):
    """__get_free_pages returns a direct-map address; free_pages takes it back."""
    t.boot(**SMALL)
    addr = t.call("__get_free_pages", "a", gfp="GFP_KERNEL", order=2)
    assert addr % (4 << 12) == 0 and addr >= 0xC0000000
    one = t.call("__get_free_page", "b", gfp="GFP_KERNEL")
    zero = t.call("get_zeroed_page", "z", gfp="GFP_KERNEL")
    assert one != zero
    t.call("free_pages", addr=Ref("a"), order=2)
    t.call("free_page", addr=Ref("b"))
    t.call("free_page", addr=Ref("z"))
    t.call("free_pages", addr=None, order=0)
    t.call("free_page", addr=0)


@case("scenario", "get_page_refcount")
def get_page_refcount(t):
    """get_page adds a reference: the block is free only after the last __free_pages."""
    t.boot(**SMALL)
    t.call("alloc_pages", "a", gfp="GFP_KERNEL", order=1)
    t.call("get_page", page=Ref("a"))
    t.call("__free_pages", page=Ref("a"), order=1)
    t.call("__free_pages", page=Ref("a"), order=1)
    assert t.error("__free_pages", page=Ref("a"), order=1) == "double_free"


@case("scenario", "errors")
def errors(t):
    """Every misuse the page allocator rejects, each leaving the state unchanged."""
    t.boot(**SMALL)
    t.call("alloc_pages", "a", gfp="GFP_KERNEL", order=1)
    assert t.error("alloc_pages", gfp="GFP_KERNEL", order=-1) == "bad_order"
    assert t.error("alloc_pages", gfp=0x10000, order=0) == "bad_gfp"
    assert t.error("get_zeroed_page", gfp="GFP_HIGHUSER") == "highmem_get_free_pages"
    assert t.error("__free_pages", page=100000, order=0) == "bad_pfn"
    assert t.error("__free_page", page=0) == "free_reserved"
    assert t.error("__free_pages", page=17, order=1) == "misaligned_free"
    assert t.error("__free_pages", page=Ref("a"), order=0) == "wrong_order"
    assert t.error("__free_pages", page=Ref("a"), order=11) == "bad_order"
    assert t.error("get_page", page=40) == "get_page_unallocated"
    assert t.error("free_pages", addr=0x1234, order=0) == "bad_address"
    t.call("__free_pages", page=Ref("a"), order=1)
    assert t.error("__free_pages", page=Ref("a"), order=1) == "double_free"
    b = t.call("alloc_pages", "b", gfp="GFP_KERNEL", order=2)
    assert t.error("__free_page", page=b + 1) == "not_block_head"


# The rules reachable through the scenario and adapter APIs. Not here: "bad_page" and
# "foreign_page" need a Python object that is not a page of this machine;
# "not_allocated" (a zone frame in no block) cannot happen in a state the API reaches.
PAGE_ERROR_RULES = ("bad_order", "bad_gfp", "highmem_get_free_pages", "bad_pfn",
                    "free_reserved", "misaligned_free", "double_free", "not_block_head",
                    "wrong_order", "bad_address", "get_page_unallocated", "bad_compound",
                    "compound_no_dtor", "put_page_high_order")
