"""Kernel facts: the model's numbers against independent computations from the kernel.

Each fact is a row: a name, the kernel source it is written from, the expected value
computed here by a few lines written from the kernel's formula (never by calling the
model's own function), and the model's value. `kmemspec verify` shows them as the
method "facts"; spec/facts.md lists what each checks and why.

All kernel citations are Linux 2.6.12 (torvalds/linux 1da177e4c3f4) unless noted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Fact:
    name: str
    source: str                       # kernel file + function
    expected: Callable[[], Any]       # independent computation from the kernel formula
    model: Callable[[], Any]          # what the model says


# --- independent 2.6.12 slab geometry (mm/slab.c) --------------------------------------

def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def k_cache_estimate(gfporder, size, align, off_slab, page_size, struct_slab, bufctl):
    """mm/slab.c cache_estimate: count objects up while they and the (aligned) slab
    management fit; SLAB_LIMIT caps the count."""
    slab_limit = (1 << (8 * bufctl)) - 3          # BUFCTL_END - 2 (kmem_bufctl_t)
    total = page_size << gfporder
    base, extra = (0, 0) if off_slab else (struct_slab, bufctl)
    i = 0
    while i * size + _align(base + i * extra, align) <= total:
        i += 1
    if i > 0:
        i -= 1
    i = min(i, slab_limit)
    return i, total - i * size - _align(base + i * extra, align)


def k_kmem_cache_create(size, align, flags, *, page_size, line, word, struct_slab, bufctl,
                        offslab_limit, break_order):
    """mm/slab.c kmem_cache_create (no DEBUG): word-round, alignment, off-slab choice,
    the gfporder loop (calculate the wastage; off-slab limit; slab_break_gfp_order;
    left_over*8 <= slab bytes), back on-slab if management fits, colour."""
    HWCACHE, RECLAIM = 0x2000, 0x20000           # include/linux/slab.h
    if size & (word - 1):
        size = (size + word - 1) & ~(word - 1)
    if flags & HWCACHE:
        ralign = line
        while size <= ralign // 2:
            ralign //= 2
    else:
        ralign = word
    if ralign < align:
        ralign = align
    align = ralign
    off = size >= (page_size >> 3)
    size = _align(size, align)
    order = 0
    if flags & RECLAIM and size <= page_size:
        num, left = k_cache_estimate(0, size, align, off, page_size, struct_slab, bufctl)
    else:
        while True:
            num, left = k_cache_estimate(order, size, align, off, page_size, struct_slab,
                                         bufctl)
            if order >= 5:                       # MAX_GFP_ORDER
                break
            if num:
                if off and num > offslab_limit:
                    order -= 1                   # cal_wastage again, then stop
                    num, left = k_cache_estimate(order, size, align, off, page_size,
                                                 struct_slab, bufctl)
                    break
                if order >= break_order or left * 8 <= page_size << order:
                    break
            order += 1
    slab_size = _align(num * bufctl + struct_slab, align)
    if off and left >= slab_size:
        off = False
        left -= slab_size
    colour_off = max(line, align)
    return {"objsize": size, "gfporder": order, "num": num, "off_slab": off,
            "colour_off": colour_off, "colour": left // colour_off}


def _model_geo(cachep) -> dict:
    return {"objsize": cachep.objsize, "gfporder": cachep.gfporder, "num": cachep.num,
            "off_slab": bool(cachep.off_slab), "colour_off": cachep.colour_off,
            "colour": cachep.colour}


def _kernel_params(machine) -> dict:
    p = machine.profile
    return {"page_size": p.PAGE_SIZE, "line": p.L1_CACHE_BYTES, "word": p.VIRT_BITS // 8,
            "struct_slab": p.STRUCT_SLAB_SIZE, "bufctl": p.BUFCTL_SIZE,
            # kmem_cache_init: BREAK_GFP_ORDER_HI (1) above 32 MiB, else _LO (0)
            "break_order": 1 if machine.nr_pages > (32 << 20) // p.PAGE_SIZE else 0}


def k_general_caches(machine) -> tuple[dict, int]:
    """kmem_cache_init: each size-N cache (SLAB_HWCACHE_ALIGN, ARCH_KMALLOC_MINALIGN 0)
    with the offslab_limit left by the previous on-slab one, then its DMA twin; the
    limit is (cs_size - sizeof(struct slab)) / sizeof(kmem_bufctl_t)."""
    params = _kernel_params(machine)
    limit, out = 0, {}
    for size in k_kmalloc_sizes(machine.profile.L1_CACHE_BYTES):
        geo = k_kmem_cache_create(size, 0, 0x2000, offslab_limit=limit, **params)
        out[f"size-{size}"] = geo
        if not geo["off_slab"]:
            limit = (size - params["struct_slab"]) // params["bufctl"]
        out[f"size-{size}(DMA)"] = k_kmem_cache_create(size, 0, 0x2000 | 0x4000,
                                                       offslab_limit=limit, **params)
    return out, limit


def k_kmalloc_sizes(line: int) -> list[int]:
    """include/linux/kmalloc_sizes.h: 96 only if L1_CACHE_BYTES < 64, 192 only if < 128,
    up to 131072 (the larger ones need NR_CPUS > 512, MAX_NUMNODES > 256 or no MMU)."""
    sizes = [32, 64] + ([96] if line < 64 else []) + [128] + ([192] if line < 128 else [])
    return sizes + [256 << i for i in range(10)]


# custom caches: (name, size, align, flags) -- a spread over on/off-slab, alignment,
# cache-line alignment, SLAB_RECLAIM_ACCOUNT and the high orders
CUSTOM = [("c8", 8, 0, 0), ("c24h", 24, 0, 0x2000), ("c100", 100, 0, 0),
          ("c100a64", 100, 64, 0), ("c200h", 200, 0, 0x2000), ("c300", 300, 0, 0),
          ("c511", 511, 0, 0), ("c512", 512, 0, 0), ("c1000r", 1000, 0, 0x20000),
          ("c1500", 1500, 0, 0), ("c3000", 3000, 0, 0), ("c5000", 5000, 0, 0),
          ("c20000", 20000, 0, 0), ("c65536", 65536, 0, 0), ("c100000", 100000, 0, 0),
          ("c131072h", 131072, 0, 0x2000), ("c33a256", 33, 256, 0x2000)]


# --- the facts -------------------------------------------------------------------------

def _slab_machine():
    from .model.boot import boot
    return boot()


def _geometry_facts() -> list[Fact]:
    from .model import slab
    machine = _slab_machine()
    expected, limit = k_general_caches(machine)
    facts = [Fact("slab: offslab_limit after the general caches", "mm/slab.c kmem_cache_init",
                  lambda: limit, lambda: machine.slab.offslab_limit)]
    for name, geo in expected.items():
        facts.append(Fact(f"slab geometry {name}", "mm/slab.c kmem_cache_init, "
                          "kmem_cache_create, cache_estimate",
                          lambda geo=geo: geo,
                          lambda name=name: _model_geo(slab.find_cache(machine, name))))
    params = _kernel_params(machine)
    for name, size, align, flags in CUSTOM:
        facts.append(Fact(f"slab geometry {name} ({size} B, align {align}, flags {flags:#x})",
                          "mm/slab.c kmem_cache_create, cache_estimate",
                          lambda s=size, a=align, f=flags: k_kmem_cache_create(
                              s, a, f, offslab_limit=limit, **params),
                          lambda n=name, s=size, a=align, f=flags: _model_geo(
                              slab.kmem_cache_create(machine, n, s, a, f))))
    facts.append(Fact("kmalloc sizes table", "include/linux/kmalloc_sizes.h",
                      lambda: k_kmalloc_sizes(machine.profile.L1_CACHE_BYTES),
                      lambda: list(machine.profile.kmalloc_sizes)))
    return facts


def _kmalloc_facts() -> list[Fact]:
    """kmalloc(n) uses the first general cache whose cs_size >= n (mm/slab.c
    __find_general_cachep); above the largest it fails (NULL)."""
    from .model import slab
    from .model.kmalloc import kmalloc
    from .model.gfp import GFP_KERNEL
    machine = _slab_machine()
    sizes = k_kmalloc_sizes(machine.profile.L1_CACHE_BYTES)
    probes = [1, 32, 33, 64, 65, 128, 129, 200, 256, 257, 1000, 4096, 4097, 131072, 131073]

    def expected():
        return [next((f"size-{s}" for s in sizes if s >= n), None) for n in probes]

    def model():
        out = []
        for n in probes:
            addr = kmalloc(machine, n, GFP_KERNEL)
            out.append(None if addr is None else _cache_of(machine, slab, addr))
        return out
    return [Fact("kmalloc size class of 15 sizes", "mm/slab.c __kmalloc, __find_general_cachep",
                 expected, model)]


def _cache_of(machine, slab, addr) -> str:
    return slab._lookup_object(machine, addr)[0].cache.name


def _handout_facts() -> list[Fact]:
    """Object hand-out order through the per-CPU arrays (mm/slab.c __cache_alloc,
    cache_alloc_refill): a fresh cache's untouched array refills at most
    BATCHREFILL_LIMIT (16) objects, taken in bufctl order 0, 1, ... from the new slab,
    and pops them LIFO: the first allocation gets object min(16, num) - 1. The next
    refill (array touched) takes batchcount = (limit + 1) / 2, limit from
    enable_cpucache (120 for objects <= 256 B) -- but only what is left in the slab."""
    from .model import slab

    def run(size, count):
        machine = _slab_machine()
        cachep = slab.kmem_cache_create(machine, f"order{size}", size, 0, 0)
        out = []
        for _ in range(count):
            addr = slab.kmem_cache_alloc(machine, cachep, 0)
            s, _idx = slab._lookup_object(machine, addr)
            out.append((addr - s.s_mem) // cachep.objsize)
        return out

    def expected(size, count):
        params = _kernel_params(_slab_machine())
        geo = k_kmem_cache_create(size, 0, 0, offslab_limit=10 ** 9, **params)
        num = geo["num"]
        limit = 120 if size <= 256 else 54 if size <= 1024 else 24
        order, left, nxt, batch = [], 0, 0, 16     # untouched: BATCHREFILL_LIMIT
        while len(order) < count:
            if left == 0:                          # no partial/free slab: cache_grow
                left, nxt = num, 0
            take = min(batch, left)
            order += list(range(nxt + take - 1, nxt - 1, -1))     # LIFO pops
            nxt, left = nxt + take, left - take
            batch = (limit + 1) // 2               # the array is touched now
        return order[:count]
    return [Fact(f"hand-out order, {size} B objects, first {count}",
                 "mm/slab.c __cache_alloc, cache_alloc_refill, enable_cpucache",
                 lambda s=size, c=count: expected(s, c), lambda s=size, c=count: run(s, c))
            for size, count in ((64, 20), (1000, 6))]


def _shrink_facts() -> list[Fact]:
    """kmem_cache_shrink (mm/slab.c __cache_shrink): drain the arrays back into the slabs
    (drain_cpu_caches), destroy only slabs on slabs_free, return 1 if full or partial
    slabs remain. One object held: its slab is partial, nothing is destroyed, 1. Then
    the object freed: the slab becomes free and is destroyed, 0."""
    from .model import slab

    def run():
        machine = _slab_machine()
        cachep = slab.kmem_cache_create(machine, "shrinkme", 64, 0, 0)
        addr = slab.kmem_cache_alloc(machine, cachep, 0)
        first = slab.kmem_cache_shrink(machine, cachep)
        after_first = (cachep.slabs_partial.nr, cachep.slabs_free.nr, cachep.slabs_full.nr)
        slab.kmem_cache_free(machine, cachep, addr)
        second = slab.kmem_cache_shrink(machine, cachep)
        return [first, after_first, second, len(cachep.slabs)]
    return [Fact("shrink with one partial slab, none free", "mm/slab.c __cache_shrink, "
                 "drain_cpu_caches", lambda: [1, (1, 0, 0), 0, 0], run)]


def _buddy_facts() -> list[Fact]:
    """The seed's worked example (/work/shared/seed: 'a 256-frame request from a
    1024-frame block returns 256 frames and puts 512 and 256 back'), as 2.6.12
    mm/page_alloc.c __rmqueue/expand do it: the low 256 frames are handed out, the
    upper halves go back (512 at head+512, 256 at head+256). Eleven free lists
    (MAX_ORDER 11): order 10 (4 MiB) is the largest request, order 11 fails."""
    from .model import page_alloc as pa
    from .model.gfp import GFP_KERNEL

    def prepare():
        machine = _slab_machine()
        zone = next(z for z in machine.zones if z.name == "Normal")
        # take every block below order 10 from the Normal zone (each list's own size)
        for order in range(10):
            while zone.free_area[order].nr_free:
                pa.alloc_pages(machine, GFP_KERNEL, order)
        return machine, zone

    def model():
        machine, zone = prepare()
        head = zone.free_area[10].head
        page = pa.alloc_pages(machine, GFP_KERNEL, 8)
        return [page.pfn - head, zone.free_area[9].head - head, zone.free_area[8].head - head,
                zone.free_area[9].nr_free, zone.free_area[8].nr_free]

    def limits():
        machine = _slab_machine()
        top = pa.alloc_pages(machine, GFP_KERNEL, 10)
        try:
            beyond = pa.alloc_pages(machine, GFP_KERNEL, 11)
        except Exception as exc:          # a KernelBug is also "no block"
            beyond = type(exc).__name__
        zone = machine.zone_of(top.pfn)
        # 2.6.12 aligns relative to the zone's mem_map (page - zone->zone_mem_map)
        return [len(zone.free_area), (top.pfn - zone.zone_start_pfn) % 1024 == 0,
                beyond]
    return [Fact("seed example: 256 frames from a 1024-frame block",
                 "mm/page_alloc.c __rmqueue, expand; seed notes", lambda: [0, 512, 256, 1, 1],
                 model),
            Fact("eleven free lists; order 10 aligned; order 11 fails",
                 "include/linux/mmzone.h MAX_ORDER; mm/page_alloc.c __alloc_pages",
                 lambda: [11, True, None], limits)]


def _zone_facts() -> list[Fact]:
    """Zone choice per gfp (mm/page_alloc.c build_zonelists; include/linux/gfp.h),
    from the campaign's fixed oracle table, against the model's machine.zonelists."""
    from .campaign.oracle import ZONELIST_BY_NAME
    from .model.gfp import gfp_zone
    machine = _slab_machine()

    def model():
        return {bits: tuple(z.name for z in machine.zonelists[gfp_zone(bits)])
                for bits in range(4)}
    return [Fact("zonelist per zone modifier (DMA wins over HIGHMEM)",
                 "mm/page_alloc.c build_zonelists",
                 lambda: ZONELIST_BY_NAME[machine.profile.name], model)]


def _vmalloc_facts() -> list[Fact]:
    """vmalloc_to_page at an unaligned address: the page of the frame mapped at the
    address's page (mm/memory.c vmalloc_to_page: pgd/pmd/pte walk, offset ignored)."""
    from .model import vmalloc as vm
    machine = _slab_machine()
    state = {}

    def model():
        addr = vm.vmalloc(machine, 3 * machine.profile.PAGE_SIZE)
        state["addr"] = addr
        pages = [vm.vmalloc_to_page(machine, addr + off) for off in
                 (0, 1, 4095, 4096, 4097, 3 * 4096 - 1)]
        return [p.pfn for p in pages]

    def expected():
        # area->pages[i] is mapped at addr + i*PAGE_SIZE (map_vm_area); the lookup
        # uses the pte of addr & PAGE_MASK, so the offset within the page is ignored
        pfn = machine.vm_areas[state["addr"]].pages
        return [pfn[0], pfn[0], pfn[0], pfn[1], pfn[1], pfn[2]]
    def null_free():
        # mm/vmalloc.c __vunmap: "if (!addr) return;" -- vfree(NULL) does nothing
        m = _slab_machine()
        before = m.nr_free_pages if hasattr(m, "nr_free_pages") else None
        out = [vm.vfree(m, None), vm.vfree(m, 0)]
        return out + [before == (m.nr_free_pages if before is not None else None)]
    return [Fact("vmalloc_to_page at unaligned addresses", "mm/memory.c vmalloc_to_page",
                 expected, model),
            Fact("vfree(NULL) and vfree(0) do nothing", "mm/vmalloc.c vfree, __vunmap",
                 lambda: [None, None, True], null_free)]


def _vector_facts() -> list[Fact]:
    """The exported conformance vectors: every case's expectations are written from the
    kernel by hand in kmemspec/conform/vectors.py; all must hold on the model."""
    from .conform.vectors import CASES, Recorder

    def model():
        bad = []
        for key in sorted(CASES):
            case = CASES[key]
            try:
                case.run(Recorder(case.runner))
            except AssertionError as exc:
                bad.append(f"{key}: {exc}")
        return bad
    return [Fact(f"test vectors ({len(CASES)} cases) hold", "kmemspec/conform/vectors.py "
                 "(each case cites its kernel source)", lambda: [], model)]


# Watermark / pageset facts (zone->pages_min/low/high from setup_per_zone_pages_min,
# pageset high/batch from zone_batchsize) belong here once the model has them
# (issue 15, page half): add a provider to FACT_GROUPS.
FACT_GROUPS: list[Callable[[], list[Fact]]] = [
    _geometry_facts, _kmalloc_facts, _handout_facts, _shrink_facts, _buddy_facts,
    _zone_facts, _vmalloc_facts, _vector_facts,
]


@dataclass
class FactResult:
    name: str
    source: str
    ok: bool
    seconds: float
    detail: str = ""


def check_facts(fail_fast: bool = False) -> list[FactResult]:
    """Evaluate every fact; a fact whose model side raises is a failure, not a crash."""
    results = []
    for group in FACT_GROUPS:
        start = time.perf_counter()
        try:
            facts = group()
        except Exception as exc:       # the set-up itself broke: one failing row
            results.append(FactResult(group.__name__.strip("_"), "", False,
                                      time.perf_counter() - start,
                                      f"{type(exc).__name__}: {exc}"))
            if fail_fast:
                return results
            continue
        for fact in facts:
            start = time.perf_counter()
            try:
                got = fact.model()
                want = fact.expected()
                ok, detail = got == want, "" if got == want else f"kernel {want!r}, model {got!r}"
            except Exception as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            results.append(FactResult(fact.name, fact.source, ok,
                                      time.perf_counter() - start, detail))
            if fail_fast and not ok:
                return results
    return results
