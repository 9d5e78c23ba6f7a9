"""Test vectors: scenarios with expected results, generated from the model's own tests.

After ethereum/consensus-specs: each *case* below is a test of the model (its asserts
state what the spec says) and, by recording every call with the model's answer, a
conformance vector. tests/test_vectors.py runs every case as a test; `kmemspec
vectors OUTDIR` exports them; `replay_page_vector` is the reference runner that
replays them against any adapter.

Two runners (the format of each is in FORMAT.md, written next to the vectors):

* `page_alloc` -- the adapter protocol (conform/adapter.py, conform/kms.h): init,
  alloc_pages(order), free_pages(pfn, order), free_counts(); pfns are frames of the
  implementation. Each such vector is also exported as a model scenario (flat
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
from .adapter import FLAT_BASE, ModelPageAllocator, flat_boot_line
from .isolate import AdapterFault, AdapterRaised
from .refine import Shadow, check_alloc, check_counts

__all__ = ["CASES", "Case", "Recorder", "Ref", "build_all", "export", "replay_page_vector",
           "FORMAT_VERSION", "PAGE_ERROR_RULES", "SCENARIO_OPS"]

FORMAT_VERSION = 1
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
}
_VOID = {"__free_pages", "__free_page", "free_pages", "free_page", "get_page"}
# The page_alloc runner's calls and their inputs, in call order.
_PAGE_PARAMS = {"alloc_pages": ("order",), "free_pages": ("pfn", "order"), "free_counts": ()}


class Recorder:
    """Runs a case's calls on the model and records them, with the model's answers."""

    def __init__(self, runner: str):
        self.runner = runner
        self.boot_line: dict | None = None
        self.steps: list[dict] = []
        self.env: dict[str, object] = {}
        self.machine = None
        self.model: ModelPageAllocator | None = None
        self.nr_pages = 0

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

    # page_alloc runner
    def init(self, nr_pages: int) -> None:
        assert self.runner == "page_alloc"
        self.model = ModelPageAllocator()
        self.model.init(nr_pages, MAX_ORDER)
        self.machine = self.model.machine
        self.nr_pages = nr_pages

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
            if self.runner == "page_alloc":
                ret = getattr(self.model, op)(*(real[k] for k in _PAGE_PARAMS[op]))
            else:
                ret = SCENARIO_OPS[op](self.machine, **real)
        except KernelBug as bug:
            step["expect"] = {"error": bug.rule}
            self.steps.append(step)
            if as_ is not None:
                self.env[as_] = None
            return bug
        if self.runner == "page_alloc" or op not in _VOID:
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
        if c.runner == "page_alloc":
            out["init"] = {"nr_pages": self.nr_pages, "max_order": MAX_ORDER}
        else:
            out["boot"] = self.boot_line
        out["steps"] = self.steps
        return out


def page_vector_scenario(vector: dict) -> str:
    """A page_alloc vector as a model scenario on the flat machine (JSON Lines)."""
    lines = [f"# {vector['runner']}/{vector['name']}: {vector['description']}",
             f"# flat machine: implementation frame p = model pfn {FLAT_BASE} + p",
             json.dumps(flat_boot_line(vector["init"]["nr_pages"]))]
    for step in vector["steps"]:
        op = step["op"]
        expect = step.get("expect", {})
        if op == "alloc_pages":
            line = {"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": step["order"]}
            if "as" in step:
                line["as"] = step["as"]
            if "ret" in expect:
                ret = expect["ret"]
                line["expect"] = {"ret": None if ret is None else FLAT_BASE + ret}
            else:
                line["expect"] = expect
        elif op == "free_pages":
            pfn = step["pfn"]
            page = pfn if isinstance(pfn, str) else FLAT_BASE + pfn
            line = {"op": "__free_pages", "page": page, "order": step["order"]}
            if "error" in expect:
                line["expect"] = expect
        else:
            lines.append(f"# {op} -> {json.dumps(expect.get('ret'))}")
            continue
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
    if vector["runner"] == "page_alloc":
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
    """Replay a page_alloc vector on an adapter (through a driver from isolate.py).

    strict: every answer equals the expected one. refine: answers are judged by the
    refinement checks (any allowed pfn), expected pfns are not compared. Misuse steps
    (expect error) are replayed only on adapters with `detects_misuse`; they pass when
    the call is rejected (and, if the adapter names a rule, it is the expected one).
    """
    result = VectorResult(f"{vector['runner']}/{vector['name']}")
    init = vector["init"]
    try:
        info = driver.reset()
        driver.call("init", init["nr_pages"], init["max_order"])
    except AdapterFault as exc:
        result.failures.append(f"init: {exc}")
        return result
    shadow = Shadow(init["nr_pages"], init["max_order"])
    env: dict[str, object] = {}
    misuse = info.get("detects_misuse", False)
    has_counts = "free_counts" in info.get("optional", ())
    for index, step in enumerate(vector["steps"], start=1):
        op = step["op"]
        expect = step.get("expect", {})
        where = f"step {index} {op}"
        if "error" in expect and not misuse:
            result.skipped += 1
            continue
        if op == "free_counts" and not has_counts:
            result.skipped += 1
            continue
        try:
            if op == "alloc_pages":
                ret = driver.call("alloc_pages", step["order"])
            elif op == "free_pages":
                pfn = step["pfn"]
                pfn = env.get(pfn[1:]) if isinstance(pfn, str) else pfn
                ret = driver.call("free_pages", pfn, step["order"])
            else:
                ret = driver.call("free_counts")
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
        problem = None
        if op == "alloc_pages":
            problem = check_alloc(shadow, step["order"], ret)
            if problem is None and mode == "strict" and ret != expect.get("ret"):
                problem = f"returned {ret}, expected {expect.get('ret')}"
            if problem is None and ret is not None:
                shadow.add(ret, step["order"])
            if "as" in step:
                env[step["as"]] = ret
        elif op == "free_pages":
            if pfn in shadow.live:
                shadow.remove(pfn)
        else:
            problem = check_counts(shadow, ret)
            if problem is None and mode == "strict" and list(ret) != expect.get("ret"):
                problem = f"free_counts {list(ret)}, expected {expect.get('ret')}"
        if problem is not None:
            result.failures.append(f"{where}: {problem}")
            return result
        result.passed += 1
    return result


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

## Runner `scenario` (the model's kernel API)

The first line of the `.jsonl` (and `boot` in the `.json`) is the machine
(`MachineConfig`: profile, phys_pages, highmem_pages, iomem_pages, reserved,
max_dma_pfn); then one kernel call per step. `gfp` is a flag expression
(`"GFP_KERNEL"`, `"GFP_DMA"`, `"GFP_HIGHUSER"`, `"GFP_KERNEL | __GFP_ZERO"`) or an integer.

| op | inputs | expected |
|---|---|---|
| `alloc_pages` | `gfp`, `order` | `ret`: pfn of the block's first page, or `null` |
| `alloc_page` | `gfp` | `ret`: pfn or `null` |
| `__get_free_pages` | `gfp`, `order` | `ret`: kernel virtual address, or `null`; error `highmem_get_free_pages` with `__GFP_HIGHMEM` |
| `__get_free_page` | `gfp` | as `__get_free_pages` with order 0 |
| `get_zeroed_page` | `gfp` | as `__get_free_page` |
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


# --- the cases: runner scenario -----------------------------------------------------------

# A small machine with all three zones: DMA [0, 16), Normal [16, 64), HighMem [64, 80).
SMALL = {"profile": "linux-2.6-i386", "phys_pages": 64, "highmem_pages": 16,
         "iomem_pages": 0, "max_dma_pfn": 16, "reserved": [[0, 1]]}


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
    assert t.error("__get_free_pages", gfp="GFP_HIGHUSER", order=0) == "highmem_get_free_pages"
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
                    "wrong_order", "bad_address", "get_page_unallocated")
