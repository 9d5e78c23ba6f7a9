"""A reusable Hypothesis state machine that checks a page allocator against the spec.

After zarr-python's `zarr.testing.stateful`: the machine takes the implementation as a
parameter, so a user's test file is a few lines::

    from kmemspec.conform.stateful import PageAllocatorMachine

    class MyAllocatorMachine(PageAllocatorMachine):
        factory = MyAllocator          # a callable returning a fresh adapter
        mode = "refine"                # or "strict"

    TestMyAllocator = MyAllocatorMachine.TestCase

`check_conformance()` runs the same machine outside pytest (the `kmemspec conform`
command uses it) and returns a `Report` with the shrunk call sequence, or None.
"""

from __future__ import annotations

import time

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, consumes, initialize,
                                 multiple, rule, run_state_machine_as_test)

from ..model.profiles import DEFAULT_PROFILE, get_profile
from ..model.slab import SLAB_HWCACHE_ALIGN
from .check import (CacheChecker, ConformanceFailure, HighmemChecker, ObjectChecker,
                    drive_bytes,
                    PageChecker, Report, VmallocChecker, _ops_of, minimise, replay)
from .isolate import AdapterFault, make_driver, run_prefix, sequences_before_last

__all__ = ["PageAllocatorMachine", "ObjectAllocatorMachine", "VmallocMachine",
           "CacheAllocatorMachine", "HighmemMachine", "NR_PAGES", "MAX_NR_PAGES",
           "NR_PAGES_2612", "default_sizes", "machine_sizes", "prologue_ops", "run_prologue",
           "check_conformance", "machine_for", "PARTS"]

# Machine sizes: small ones first (Hypothesis shrinks towards the first), then sizes
# that reach the top order (1024 frames) and one beyond it (2048), and sizes that are
# not a power of two so that the end of the zone cuts a buddy pair. No 1: the
# model's boot needs two free low-memory frames for the slab bootstrap (model/slab.py).
NR_PAGES = (16, 12, 4, 2, 7, 40, 1024, 1536, 2048, 2051)
MAX_NR_PAGES = 65536          # kms.h: nr_pages is at most 65536
# Under page policy 2.6.12 the flat machine has whole bootmem words of 32 frames
# (adapter.check_flat_size): 32, 64 and 96 frames have pages_min 1, 3, 5 in ZONE_NORMAL
# (watermarks reached in a few calls), 8192 has per-CPU batch 2 (high 12).
NR_PAGES_2612 = (32, 64, 96, 1024, 1536, 2048, 8192)


def default_sizes(page_policy: str = "buddy") -> tuple[int, ...]:
    """The page part's default machine sizes for a page policy."""
    return NR_PAGES_2612 if page_policy == "2.6.12" else NR_PAGES


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def machine_sizes(pages=None, pages_range=None, power_of_two: bool = False,
                  supported=None, page_policy: str = "buddy") -> tuple[int, ...]:
    """The machine sizes the page strategy and the prologue use, small ones first.

    `pages`: exactly these sizes (`conform --pages N,N`). `pages_range`: (lo, hi),
    the sizes of NR_PAGES in it plus lo and hi (and, with power_of_two, every power of
    two in it). `power_of_two`: keep only powers of two. `supported`: a predicate the
    implementation declared (kms_supported_pages / supported_pages). `page_policy`
    "2.6.12": whole bootmem words only (a size of `pages` that is not one is an
    error; a range keeps its multiples of the word). Raises ValueError, naming the
    constraint, when no size is left.
    """
    from .adapter import bootmem_word
    word = bootmem_word() if page_policy == "2.6.12" else 1
    defaults = default_sizes(page_policy)
    if pages:
        sizes = list(dict.fromkeys(pages))
        for n in sizes:
            if n % word:
                raise ValueError(f"machine size {n} is not a multiple of {word}: with page "
                                 f"policy 2.6.12 the flat machine has whole bootmem words")
    elif pages_range is not None:
        lo, hi = pages_range
        sizes = [n for n in defaults if lo <= n <= hi] + [lo, hi]
        if power_of_two:
            sizes += [1 << k for k in range(1, 17) if lo <= 1 << k <= hi]
        sizes = list(dict.fromkeys(n for n in sizes if n % word == 0))
    else:
        sizes = list(defaults)
    for n in sizes:
        if not 2 <= n <= MAX_NR_PAGES:
            # no 1: the model's boot needs two low-memory frames (see NR_PAGES)
            raise ValueError(f"machine size {n} is outside 2..{MAX_NR_PAGES}")
    if power_of_two:
        sizes = [n for n in sizes if _is_power_of_two(n)]
    if supported is not None:
        sizes = [n for n in sizes if supported(n)]
    if not sizes:
        raise ValueError("no machine size is left to check: the sizes asked "
                         f"({', '.join(map(str, pages or pages_range or defaults))}), "
                         f"{'whole bootmem words only, ' if word > 1 else ''}"
                         f"{'powers of two only, ' if power_of_two else ''}"
                         f"{'and what the implementation supports ' if supported else ''}"
                         "have nothing in common")
    return tuple(sizes)


def prologue_ops(max_order: int) -> list[tuple]:
    """The fixed calls run on every machine size before the random search.

    One allocation of every order 0 .. max_order-1 (the first answers strict mode
    compares with the Linux policy), one beyond the top (must be NULL), every block
    freed again (the frames must merge back), then two order-0 blocks, freed in
    turn: buddies that must merge (checked through free counts when offered).
    """
    ops = [("alloc", "alloc_pages", order, f"p{order}") for order in range(max_order + 1)]
    ops += [("free", "free_pages", f"p{order}") for order in reversed(range(max_order + 1))]
    ops += [("alloc", "alloc_pages", 0, "q1"), ("alloc", "alloc_pages", 0, "q2"),
            ("free", "free_pages", "q1"), ("free", "free_pages", "q2")]
    return ops


def run_prologue(driver, mode: str, sizes, *, checker_class=PageChecker,
                 check_free_counts: bool = True, profile: str = DEFAULT_PROFILE):
    """Run the prologue on each size in turn: the first ConformanceFailure, or None."""
    max_order = checker_class(driver, mode, profile=profile).max_order
    for nr_pages in sizes:
        failure = replay(driver, mode, profile, nr_pages, prologue_ops(max_order),
                         check_free_counts, checker_class)
        if failure is not None:
            return failure
    return None


class ConformanceMachine(RuleBasedStateMachine):
    """What the three machines share: the implementation, the mode, the checker.

    Class attributes a subclass sets: `factory` (required), `mode` ("refine" or
    "strict"), `isolate` (run the implementation in a child process, default True),
    `timeout` (seconds per call), `nr_pages` (a strategy), `profile`, `page_policy`
    ("buddy" or "2.6.12": the flat machine's; with "2.6.12" the page machine's default
    sizes are NR_PAGES_2612).
    """

    factory = None
    mode = "refine"
    page_policy = "buddy"
    isolate = True
    timeout = 2.0
    profile = DEFAULT_PROFILE
    check_free_counts = True
    checker_class = PageChecker
    # Set by a failing run: the last (after shrinking, the minimal) failure, and the
    # calls the driver's process had answered when it was seen.
    last_failure: ConformanceFailure | None = None
    failure_log: list = []

    # called with no argument as each sequence starts (the command's progress bar)
    on_sequence = None

    def __init__(self):
        super().__init__()
        cls = type(self)
        if cls.on_sequence is not None:
            cls.on_sequence()
        if cls.factory is None:
            raise TypeError(f"{cls.__name__}.factory is not set: give the adapter factory")
        driver = cls.__dict__.get("_driver")
        if driver is None:
            # One child process per machine class, reused across examples: each
            # example makes a fresh adapter in it (a crash or hang restarts it).
            driver = make_driver(cls.factory, isolate=cls.isolate, timeout=cls.timeout)
            cls._driver = driver
        checker_class = cls.checker_class
        if checker_class.page_policy != cls.page_policy:
            checker_class = type(checker_class.__name__, (checker_class,),
                                 {"page_policy": cls.page_policy})
        self.checker = checker_class(driver, cls.mode, profile=cls.profile,
                                     check_free_counts=cls.check_free_counts)

    def _checked(self, call, *args):
        try:
            return call(*args)
        except ConformanceFailure as failure:
            type(self).last_failure = failure
            type(self).failure_log = list(getattr(self.checker.driver, "log", []))
            raise

    @initialize(data=st.data())
    def init(self, data):
        strategy = type(self).nr_pages
        if strategy is PageAllocatorMachine.nr_pages and self.checker.page_policy != "buddy":
            strategy = _SIZES_2612          # whole bootmem words (adapter.check_flat_size)
        nr_pages = data.draw(strategy, label="nr_pages")
        self._checked(self.checker.start, nr_pages)

    @classmethod
    def close(cls) -> None:
        driver = cls.__dict__.get("_driver")
        if driver is not None:
            driver.close()
            cls._driver = None


_SIZES_2612 = st.sampled_from(NR_PAGES_2612)


class PageAllocatorMachine(ConformanceMachine):
    """alloc_pages / free_pages on an implementation, checked at every step."""

    nr_pages = st.sampled_from(NR_PAGES)
    blocks = Bundle("blocks")

    @rule(target=blocks, order=st.integers(0, get_profile(DEFAULT_PROFILE).MAX_ORDER))
    def alloc_pages(self, order):
        # a declared --max-order: orders 0 .. cap (one beyond the top must be NULL)
        order %= self.checker.max_order + 1
        handle = self._checked(self.checker.alloc, order)
        return multiple() if handle is None else handle

    @rule(block=consumes(blocks))
    def free_pages(self, block):
        self._checked(self.checker.free, block)


# Sizes at and just above each general class boundary find class off-by-ones; 0 and
# one above the largest class (131072) probe K2; the rest are arbitrary.
KMALLOC_BOUNDARIES = (1, 33, 32, 65, 64, 129, 128, 257, 513, 0, 1025, 4097, 131072, 131073)
KMALLOC_SIZES = st.one_of(st.sampled_from(KMALLOC_BOUNDARIES), st.integers(0, 140000))


class ObjectAllocatorMachine(ConformanceMachine):
    """kmalloc / kfree on an implementation, checked at every step."""

    checker_class = ObjectChecker
    nr_pages = st.just(1024)
    objects = Bundle("objects")

    # `conform --sizes`: a narrower strategy (restricted_sizes)
    kmalloc_sizes = KMALLOC_SIZES

    @rule(target=objects, data=st.data())
    def kmalloc(self, data):
        size = data.draw(type(self).kmalloc_sizes, label="size")
        handle = self._checked(self.checker.kmalloc, size)
        return multiple() if handle is None else handle

    @rule(obj=consumes(objects))
    def kfree(self, obj):
        self._checked(self.checker.kfree, obj)


VMALLOC_SIZES = st.one_of(st.sampled_from([1, 4096, 4097, 0, 8192, 12288, (1 << 20) + 1]),
                          st.integers(0, 16 * 4096))


class VmallocMachine(ConformanceMachine):
    """vmalloc / vfree on an implementation, checked at every step."""

    checker_class = VmallocChecker
    nr_pages = st.just(256)
    areas = Bundle("areas")

    @rule(target=areas, size=VMALLOC_SIZES)
    def vmalloc(self, size):
        handle = self._checked(self.checker.vmalloc, size)
        return multiple() if handle is None else handle

    @rule(area=consumes(areas))
    def vfree(self, area):
        self._checked(self.checker.vfree, area)


# Object sizes whose slabs hold few objects and have slack to colour come first, so a
# colouring or management bug shows after two or three allocations (geometries on
# linux-2.6-i386, flags 0): 3900 -> num 1, colour 1; 1800 -> num 2, colour 3;
# 1300 -> num 3, colour 1; 4096 -> off-slab, num 1; 32 -> num 119, no colour.
CACHE_BOUNDARIES = (3900, 1800, 1300, 4096, 600, 32, 2000, 8192, 1100)
CACHE_SIZES = st.one_of(st.sampled_from(CACHE_BOUNDARIES), st.integers(4, 20000))


class CacheAllocatorMachine(ConformanceMachine):
    """kmem_cache_create / alloc / free / destroy on an implementation, checked at every step."""

    checker_class = CacheChecker
    nr_pages = st.just(256)
    caches = Bundle("caches")
    objects = Bundle("cache_objects")

    # `conform --sizes/--align/--flags`: narrower strategies (machine_for)
    cache_sizes = CACHE_SIZES
    cache_aligns = st.sampled_from([0, 64])
    cache_flags = st.sampled_from([0, SLAB_HWCACHE_ALIGN])

    @rule(target=caches, data=st.data())
    def kmem_cache_create(self, data):
        cls = type(self)
        size = data.draw(cls.cache_sizes, label="size")
        align = data.draw(cls.cache_aligns, label="align")
        flags = data.draw(cls.cache_flags, label="flags")
        handle = self._checked(self.checker.cache_create, size, align, flags)
        return multiple() if handle is None else handle

    @rule(target=objects, cache=caches)
    def kmem_cache_alloc(self, cache):
        if cache.pfn not in self.checker.cshadow.geometry:
            return multiple()             # destroyed in this run
        handle = self._checked(self.checker.cache_alloc, cache)
        return multiple() if handle is None else handle

    @rule(obj=consumes(objects))
    def kmem_cache_free(self, obj):
        self._checked(self.checker.cache_free, obj)

    @rule(cache=consumes(caches))
    def kmem_cache_destroy(self, cache):
        # only an empty cache may be destroyed (2.6.12: "Can't free all objects")
        if cache.pfn in self.checker.cshadow.geometry and not self.checker.live_objects(cache):
            self._checked(self.checker.cache_destroy, cache)


class HighmemMachine(ConformanceMachine):
    """kmap / kunmap of 16 highmem frames on an implementation, checked at every step."""

    checker_class = HighmemChecker
    nr_pages = st.just(16)
    maps = Bundle("kmaps")

    @rule(target=maps, pfn=st.integers(0, 15))
    def kmap(self, pfn):
        handle = self._checked(self.checker.kmap, pfn)
        return multiple() if handle is None else handle

    @rule(mapping=consumes(maps))
    def kunmap(self, mapping):
        self._checked(self.checker.kunmap, mapping)


PARTS = {"page": PageAllocatorMachine, "object": ObjectAllocatorMachine,
         "vmalloc": VmallocMachine, "cache": CacheAllocatorMachine,
         "highmem": HighmemMachine}


for _machine in PARTS.values():
    _machine.TestCase.settings = settings(
        max_examples=100, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def restricted_sizes(lo: int, hi: int, boundaries) -> st.SearchStrategy:
    """Object sizes in lo..hi: the boundary sizes inside it, its ends, any in between."""
    inside = [n for n in boundaries if lo <= n <= hi]
    return st.one_of(st.sampled_from(list(dict.fromkeys(inside + [lo, hi]))),
                     st.integers(lo, hi))


def machine_for(factory, *, mode: str = "refine", isolate: bool = True,
                timeout: float = 2.0, name: str = "Target",
                introspect: bool = True, part: str = "page", sizes=None,
                max_order: int | None = None, allow=(),
                object_sizes=None, aligns=None, flags=None,
                page_policy: str = "buddy") -> type[ConformanceMachine]:
    """A fresh machine subclass (of PARTS[part]) for one implementation.

    `sizes` (page part): the machine sizes to draw (see machine_sizes);
    `max_order`: the implementation's declared MAX_ORDER, if below the profile's.
    `object_sizes` (lo, hi): the kmalloc and kmem_cache_create sizes asked; `aligns`,
    `flags`: the kmem_cache_create alignments and flag sets asked (`conform --sizes
    --align --flags`). `page_policy`: the flat machine's ("buddy" or "2.6.12").
    """
    base = PARTS[part]
    attrs = {"factory": staticmethod(factory) if not isinstance(factory, type) else factory,
             "mode": mode, "isolate": isolate, "timeout": timeout, "last_failure": None,
             "_driver": None, "check_free_counts": introspect, "page_policy": page_policy}
    if part == "page" and (sizes or page_policy != "buddy"):
        attrs["nr_pages"] = st.sampled_from(tuple(sizes or default_sizes(page_policy)))
    if max_order is not None or allow or page_policy != "buddy":
        attrs["checker_class"] = type(f"Constrained{base.checker_class.__name__}",
                                      (base.checker_class,),
                                      {"max_order_cap": max_order, "waived": {},
                                       "allowed": frozenset(allow or ()),
                                       "page_policy": page_policy})
    if object_sizes is not None:
        lo, hi = object_sizes
        attrs["kmalloc_sizes"] = restricted_sizes(lo, hi, KMALLOC_BOUNDARIES)
        attrs["cache_sizes"] = restricted_sizes(max(lo, 4), hi, CACHE_BOUNDARIES)
    if aligns:
        attrs["cache_aligns"] = st.sampled_from(list(aligns))
    if flags:
        attrs["cache_flags"] = st.sampled_from(list(flags))
    safe = "".join(c if c.isalnum() else "_" for c in name)
    return type(f"{safe}Machine", (base,), attrs)


def supported_sizes(driver, sizes) -> tuple[int, ...]:
    """The sizes the implementation accepts, when it declares supported_pages(n)."""
    info = driver.reset()
    if "supported_pages" not in info["optional"]:
        return tuple(sizes)
    return machine_sizes(sizes, supported=lambda n: bool(driver.call("supported_pages", n)))


def check_conformance(factory, *, mode: str = "refine", max_examples: int = 200,
                      seed: int | None = None, isolate: bool = True, timeout: float = 2.0,
                      name: str = "target", step_count: int = 20,
                      introspect: bool = True, part: str = "page", sizes=None,
                      max_order: int | None = None, fresh: bool = False, allow=(),
                      waived: dict | None = None, on_sequence=None,
                      stats: dict | None = None, object_sizes=None, aligns=None,
                      flags=None, page_policy: str = "buddy") -> Report | None:
    """Run the machine on one implementation: a Report of the minimal divergence, or None.

    `part` is "page", "object", "vmalloc", "cache" or "highmem". `introspect=False`
    ignores the optional introspection (free_counts, ksize, vmalloc_to_pfn,
    slab_layout, pkmap_count): only the answers are judged. `fresh`: a new child
    process for every sequence (leaky targets). `allow`: rules waived (e.g. {"C4"}):
    each deviation from them is counted into `waived` (rule -> times) and checking
    goes on past it. `on_sequence`: called as each random sequence starts (progress).
    `stats` (page part, isolated): filled with the sequences run and the calls made
    (alloc/free/init; "queries": free_counts). `sizes` and `max_order`
    are machine constraints (page part; machine_sizes builds `sizes`); sizes the
    implementation declares unsupported (supported_pages) are left out.
    `page_policy`: the flat machine's page policy, "buddy" (default: 2.6.12's buddy
    core) or "2.6.12" (GFP_KERNEL with watermarks and CPU 0's per-CPU lists; the
    page part's sizes are then whole bootmem words, NR_PAGES_2612 by default).

    The page part first runs a fixed prologue on every machine size (run_prologue),
    so what it finds does not depend on the seed or on the target's name; then the
    Hypothesis search.
    """
    machine = machine_for(factory, mode=mode, isolate=isolate, timeout=timeout, name=name,
                          introspect=introspect, part=part, sizes=sizes,
                          max_order=max_order, allow=allow, object_sizes=object_sizes,
                          aligns=aligns, flags=flags, page_policy=page_policy)
    machine.object_sizes = object_sizes
    if on_sequence is not None:
        machine.on_sequence = staticmethod(on_sequence)
    machine.stats = stats if stats is not None else {}
    try:
        return _check(machine, factory, mode, max_examples, seed, isolate, timeout, name,
                      step_count, introspect, part, sizes, fresh)
    finally:
        if waived is not None:
            seen = getattr(machine, "waived_seen", machine.checker_class.waived)
            for code, times in seen.items():
                waived[code] = waived.get(code, 0) + times


def _check(machine, factory, mode, max_examples, seed, isolate, timeout, name, step_count,
           introspect, part, sizes, fresh) -> Report | None:
    started = time.perf_counter()
    failure = None
    if fresh or part == "page":
        machine._driver = make_driver(factory, isolate=isolate, timeout=timeout, fresh=fresh)
    if part == "page":
        driver = machine._driver
        sizes = supported_sizes(driver, sizes or default_sizes(
            machine.checker_class.page_policy))
        machine.nr_pages = st.sampled_from(sizes)
        failure = run_prologue(driver, mode, sizes, checker_class=machine.checker_class,
                               check_free_counts=introspect)
        machine.failure_log = list(getattr(driver, "log", []))
    if failure is None and part == "page" and getattr(machine._driver, "isolated", False):
        failure = _batched_search(machine, machine._driver, sizes, max_examples, seed,
                                  step_count, mode, introspect)
    elif failure is None:
        failure = _search(machine, max_examples, seed, step_count)
    # waivers met by the prologue and the search (not by shrinking's re-runs)
    machine.waived_seen = dict(machine.checker_class.waived)
    if failure is None:
        machine.close()
        return None
    found, log = failure, machine.failure_log
    rerun = {"factory": factory, "isolate": isolate, "timeout": timeout, "mode": mode,
             "check_free_counts": introspect, "checker_class": machine.checker_class}
    alone, output = reproduces(found, **rerun)
    try:
        driver = machine._driver
        if driver is not None and (not alone or _program_fault(found)):
            # a crash, hang or leaked state: shrink with a fresh process per candidate
            driver.fresh = getattr(driver, "isolated", False)
        failure = minimise(found, driver, mode,
                           sizes=tuple(sizes) if part == "page" else (),
                           check_free_counts=introspect,
                           checker_class=machine.checker_class,
                           object_sizes=getattr(machine, "object_sizes", None))
    finally:
        machine.close()
    report = Report(name, mode, failure)
    if failure is not found:
        alone, output = reproduces(failure, **rerun)
    report.reproduced_alone = alone
    if not alone:
        # report what was seen, with every sequence the process ran before it
        report.failure = found
        report.prefix = sequences_before_last(log)
        report.prefix_reproduces, output = reproduces(found, prefix=report.prefix, **rerun)
    report.output = output
    report.seconds = time.perf_counter() - started
    return report


def _program_fault(failure: ConformanceFailure) -> bool:
    reason = failure.divergence.reason
    return " crashed (" in reason or " hung (" in reason


def reproduces(failure: ConformanceFailure, *, factory, isolate: bool, timeout: float,
               mode: str, check_free_counts: bool, checker_class,
               prefix=()) -> tuple[bool, str]:
    """Does the failing sequence fail again in a fresh process (after `prefix`, if any)?

    Also returns what the implementation printed during that sequence (truncated).
    """
    driver = make_driver(factory, isolate=isolate, timeout=timeout)
    try:
        if prefix:
            try:
                run_prefix(driver, prefix)
            except AdapterFault:
                # the earlier sequences already crash or hang it
                return True, driver.output()
        again = replay(driver, mode, failure.profile, failure.nr_pages,
                       _ops_of(failure.calls, failure.divergence.step), check_free_counts,
                       checker_class)
        return again is not None, driver.output()
    finally:
        driver.close()


def _batched_search(machine, driver, sizes, max_examples: int, seed: int | None,
                    step_count: int, mode: str, introspect: bool):
    """The page part's Hypothesis search with one message per sequence to the child.

    Each example is a machine size and a call sequence (check.drive_bytes), run and checked
    next to the implementation (isolate.run_batch); a failing one is raised so that
    Hypothesis shrinks it. A batch that crashes or hangs is run again call by call in
    a fresh process after the same earlier sequences, to find the failing step.
    """
    from hypothesis import given

    checker_class = machine.checker_class
    cap = checker_class.max_order_cap
    sizes = tuple(sizes or default_sizes(checker_class.page_policy))
    faults: list = []

    def payload(nr_pages, data):
        return {"mode": mode, "profile": machine.profile, "nr_pages": nr_pages,
                "data": data, "check_free_counts": introspect, "part": "page",
                "max_order_cap": cap, "allowed": sorted(checker_class.allowed),
                "page_policy": checker_class.page_policy}

    @settings(max_examples=max_examples, deadline=None, database=None,
              derandomize=seed is None, phases=[Phase.generate, Phase.shrink],
              print_blob=False, suppress_health_check=list(HealthCheck))
    # every sequence has step_count calls; a failure ends it (what follows is never
    # run), and minimise() drops the calls that do not matter
    @given(nr_pages=st.sampled_from(sizes),
           data=st.binary(min_size=2 * step_count, max_size=2 * step_count))
    def run(nr_pages, data):
        if faults:
            # a crash or hang was found: Hypothesis' shrinking would pay a time limit
            # per candidate; minimise() shrinks it instead, a fresh process per try
            raise faults[0]
        if machine.on_sequence is not None:
            machine.on_sequence()
        try:
            result = driver.batch(payload(nr_pages, data))
        except AdapterFault:
            failure = _rerun_calls(driver, mode, machine.profile, nr_pages, data,
                                   introspect, checker_class)
            if failure is not None and _program_fault(failure):
                faults.append(failure)
        else:
            stats = machine.stats
            stats["sequences"] = stats.get("sequences", 0) + 1
            stats["calls"] = stats.get("calls", 0) + sum(
                1 for method, _ in result["calls"] if method != "free_counts")
            stats["queries"] = stats.get("queries", 0) + sum(
                1 for method, _ in result["calls"] if method == "free_counts")
            for rule, times in result["waived"].items():
                checker_class.waived[rule] = checker_class.waived.get(rule, 0) + times
            failure = (None if result["failure"] is None
                       else ConformanceFailure(*result["failure"]))
        if failure is not None:
            machine.last_failure = failure
            machine.failure_log = list(driver.log)
            raise failure

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    try:
        run()
    except ConformanceFailure:
        pass
    except Exception:       # Hypothesis wraps a flaky failure; keep what we saw
        if machine.last_failure is None:
            raise
    else:
        return None
    return machine.last_failure


def _rerun_calls(driver, mode, profile, nr_pages, data, introspect, checker_class):
    """A batch crashed or hung: the same sequence call by call, in a fresh process that
    first ran the sequences the crashed one had run (so leaked state is there too)."""
    earlier = sequences_before_last(list(driver.log) + [("new",)])
    driver._kill()
    try:
        run_prefix(driver, earlier)
    except AdapterFault:
        earlier = []          # the earlier sequences alone kill it: try the sequence alone
        driver._kill()
    checker = checker_class(driver, mode, profile=profile, check_free_counts=introspect)
    return drive_bytes(checker, nr_pages, data)


def _search(machine, max_examples: int, seed: int | None, step_count: int):
    """The Hypothesis exploration: the last (shrunk) failure, or None."""
    if seed is not None:
        hypothesis_seed(seed)(machine)
    config = settings(max_examples=max_examples, stateful_step_count=step_count,
                      deadline=None, database=None, derandomize=seed is None,
                      phases=[Phase.generate, Phase.shrink], print_blob=False,
                      suppress_health_check=list(HealthCheck))
    try:
        run_state_machine_as_test(machine, settings=config)
    except ConformanceFailure:
        pass
    except Exception:       # Hypothesis wraps a flaky failure; keep what we saw
        if machine.last_failure is None:
            raise
    else:
        return None
    return machine.last_failure
