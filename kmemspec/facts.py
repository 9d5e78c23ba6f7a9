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

    def buddy_machine():
        # __rmqueue and expand themselves: with 2.6.12's per-CPU lists an order-0 request
        # is served from the hot list, refilled 16 frames at a time, so "take every
        # order-0 block" below would not empty the order-0 list (an odd count stays odd)
        from .model.boot import boot
        return boot(page_policy="buddy")

    def prepare():
        machine = buddy_machine()
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
        machine = buddy_machine()
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


# --- watermarks, lowmem_reserve and per-CPU pagesets (mm/page_alloc.c) ------------------
# Written from 2.6.12 arch/i386/mm/init.c zone_sizes_init, mm/page_alloc.c
# free_area_init_core, init_per_zone_pages_min, setup_per_zone_pages_min,
# setup_per_zone_lowmem_reserve, zone_watermark_ok and __alloc_pages. The i386 zones
# have no holes (zholes_size NULL), so present_pages is the zone's size.

K_MAX_DMA_PFN = (16 << 20) >> 12          # include/asm-i386/dma.h MAX_DMA_ADDRESS: 16 MiB
K_SWAP_CLUSTER_MAX = 32                   # include/linux/swap.h
K_LOWMEM_RESERVE_RATIO = (256, 32)        # mm/page_alloc.c sysctl_lowmem_reserve_ratio
K_ZONE_NAMES = ("DMA", "Normal", "HighMem")
K_GFP_WAIT, K_GFP_HIGH = 0x10, 0x20       # include/linux/gfp.h


def k_zone_sizes(phys_pages: int, highmem_pages: int, max_dma_pfn: int = K_MAX_DMA_PFN):
    """zone_sizes_init: DMA is low memory below 16 MiB; Normal the rest of low memory;
    HighMem the frames above max_low_pfn (none if low memory ends below 16 MiB)."""
    if phys_pages < max_dma_pfn:
        return [phys_pages, 0, 0]
    return [max_dma_pfn, phys_pages - max_dma_pfn, highmem_pages]


def k_isqrt(x: int) -> int:
    """lib/int_sqrt.c, by bisection here (the model uses math.isqrt)."""
    lo, hi = 0, x + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if mid * mid <= x else (lo, mid)
    return lo


def k_min_free_kbytes(sizes, page_size: int) -> int:
    """init_per_zone_pages_min: lowmem_kbytes = nr_free_buffer_pages() (present less
    pages_high, still 0, over the GFP_USER zonelist: Normal and DMA) in KiB;
    int_sqrt(lowmem_kbytes * 16) clamped to 128..65536."""
    lowmem_kbytes = (sizes[0] + sizes[1]) * (page_size >> 10)
    return min(max(k_isqrt(lowmem_kbytes * 16), 128), 65536)


def k_watermarks(sizes, min_free_kbytes: int, page_shift: int):
    """setup_per_zone_pages_min, for every zone (for_each_zone: empty ones too):
    (pages_min, pages_low, pages_high)."""
    pages_min = min_free_kbytes >> (page_shift - 10)
    lowmem = sizes[0] + sizes[1]
    out = []
    for j, present in enumerate(sizes):
        if j == 2:                                      # is_highmem
            m = min(max(present // 1024, K_SWAP_CLUSTER_MAX), 128)
        else:
            m = pages_min * present // lowmem
        out.append((m, m * 5 // 4, m * 6 // 4))
    return out


def k_lowmem_reserve(sizes):
    """setup_per_zone_lowmem_reserve: zone idx below j keeps back the present pages of
    zones idx+1..j divided by the ratio of idx; its own entry is 0."""
    reserve = [[0, 0, 0] for _ in sizes]
    for j in range(len(sizes)):
        present = sizes[j]
        for idx in range(j - 1, -1, -1):
            reserve[idx][j] = present // K_LOWMEM_RESERVE_RATIO[idx]
            present += sizes[idx]
    return reserve


def k_pageset(present: int, page_size: int):
    """free_area_init_core: batch = present/1024, at most 256 KiB worth, /4, at least 1;
    hot (low 2b, high 6b, batch b), cold (low 0, high 2b, batch b)."""
    batch = present // 1024
    if batch * page_size > 256 * 1024:
        batch = 256 * 1024 // page_size
    batch = max(batch // 4, 1)
    return ((2 * batch, 6 * batch, batch), (0, 2 * batch, batch))


# zone_watermark_ok from its 2.6.12 formula: the campaign's oracle (written from
# mm/page_alloc.c, never calling the model) serves the facts rows too
from .campaign.alloc_oracle import watermark_ok as k_zone_watermark_ok  # noqa: E402


# machines: (label, boot keywords) -- the seed, 64 MiB, 512 MiB + 256 MiB and + 1 GiB
# of highmem (the highmem clamp at 128), 256 KiB (the 128 KiB clamp), two CPUs
WM_MACHINES = [
    ("seed 896+128 MiB", {}),
    ("64 MiB", {"phys_pages": 16384, "highmem_pages": 0}),
    ("512+256 MiB, 2 CPUs", {"phys_pages": 131072, "highmem_pages": 65536, "cpus": 2}),
    ("512 MiB+1 GiB", {"phys_pages": 131072, "highmem_pages": 262144}),
    ("256 KiB", {"phys_pages": 64, "highmem_pages": 0}),
]


# Frames each zone's boot frees one by one through CPU 0's hot list (DMA, Normal,
# HighMem), by hand from 2.6.12 (torvalds/linux 1da177e4): mm/bootmem.c
# free_all_bootmem_core frees a 32-frame bitmap word with every frame free as one
# order-5 block (no hot list) and each free frame of a word with reserved ones by
# __free_page; arch/i386/mm/init.c set_highmem_pages_init frees every highmem frame by
# __free_page. Reserved: pfn 0, and mem_map = ceil((frames + 1) * 32 / 4096) frames
# from pfn 4096 (mm/page_alloc.c alloc_node_mem_map, goal 16 MiB), or from pfn 1 when
# low memory ends below the goal:
#   seed: mem_map 4096..6144 -> DMA word 0: 1..31 (31); Normal word 192: 6145..6175
#     (31); HighMem 32768.
#   64 MiB: 16385 * 32 B -> 129 frames 4096..4224 -> Normal word 132: 4225..4255 (31).
#   512+256 MiB: 196609 * 32 B -> 1537 frames 4096..5632 -> word 176: 5633..5663 (31);
#     HighMem 65536.
#   512 MiB+1 GiB: 393217 * 32 B -> 3073 frames 4096..7168 -> word 224: 31; HighMem
#     262144.
#   256 KiB: all DMA; 65 * 32 B -> 1 frame at pfn 1 -> word 0: 2..31 (30); word 1 whole.
K_BOOT_SINGLES = {
    "seed 896+128 MiB": (31, 31, 32768),
    "64 MiB": (31, 31, 0),
    "512+256 MiB, 2 CPUs": (31, 31, 65536),
    "512 MiB+1 GiB": (31, 31, 262144),
    "256 KiB": (30, 0, 0),
}


def _wm_expected(kw):
    from .model.boot import DEFAULT_HIGHMEM_PAGES, DEFAULT_PHYS_PAGES
    sizes = k_zone_sizes(kw.get("phys_pages", DEFAULT_PHYS_PAGES),
                         kw.get("highmem_pages", DEFAULT_HIGHMEM_PAGES))
    mfk = k_min_free_kbytes(sizes, 4096)
    return sizes, mfk, k_watermarks(sizes, mfk, 12), k_lowmem_reserve(sizes)


def _watermark_facts() -> list[Fact]:
    """min_free_kbytes, pages_min/low/high, lowmem_reserve and the per-CPU pagesets of
    every zone (empty ones included) on five i386 machine sizes."""
    from .model.boot import boot
    facts = []
    for label, kw in WM_MACHINES:
        box = {}

        def machine(kw=kw, box=box):
            if "m" not in box:
                box["m"] = boot(**kw)
            return box["m"]

        def marks_model(machine=machine):
            m = machine()
            return [m.min_free_kbytes] + [(z.name, z.present_pages, z.pages_min, z.pages_low,
                                           z.pages_high) for z in m.zones]

        def marks_expected(kw=kw):
            sizes, mfk, wm, _ = _wm_expected(kw)
            return [mfk] + [(n, s, *w) for n, s, w in zip(K_ZONE_NAMES, sizes, wm)]

        def reserve_model(machine=machine):
            return [list(z.lowmem_reserve) for z in machine().zones]

        def pageset_model(machine=machine):
            return [[tuple((p.count, p.low, p.high, p.batch) for p in pset.pcp)
                     for pset in z.pageset] for z in machine().zones]

        def pageset_expected(kw=kw, label=label):
            sizes = _wm_expected(kw)[0]
            out = []
            for singles, size in zip(K_BOOT_SINGLES[label], sizes):
                hot, cold = k_pageset(size, 4096)
                # boot frees `singles` frames one by one onto CPU 0's empty hot list
                count = k_pcp_counts("f" * singles, *hot)[-1] if singles else 0
                cpu0 = ((count, *hot), (0, *cold))
                out.append([cpu0] + [((0, *hot), (0, *cold))] * (kw.get("cpus", 1) - 1))
            return out
        facts += [
            Fact(f"min_free_kbytes, pages_min/low/high: {label}",
                 "arch/i386/mm/init.c zone_sizes_init; mm/page_alloc.c "
                 "init_per_zone_pages_min, setup_per_zone_pages_min", marks_expected,
                 marks_model),
            Fact(f"lowmem_reserve (ratios 256, 32): {label}",
                 "mm/page_alloc.c setup_per_zone_lowmem_reserve",
                 lambda kw=kw: _wm_expected(kw)[3], reserve_model),
            Fact(f"per-CPU pagesets hot/cold (count, low, high, batch): {label}",
                 "mm/page_alloc.c free_area_init_core", pageset_expected, pageset_model),
        ]
    return facts


# zone_watermark_ok probes on one made-up zone: 116 free frames as 20 order-0, 30
# order-1, 5 order-2 and 2 order-3 blocks; lowmem_reserve [0, 10, 40]
WMOK_NR_FREE = [20, 30, 5, 2, 0, 0, 0, 0, 0, 0, 0]
WMOK_RESERVE = [0, 10, 40]
WMOK_POINTS = [(order, mark, cz, ctr, high)
               for order in (0, 2, 3) for mark in (90, 105, 150, 200) for cz in (0, 1, 2)
               for ctr in (False, True) for high in (False, True)]


def _wmok_free() -> int:
    return sum(n << o for o, n in enumerate(WMOK_NR_FREE))


def _watermark_ok_facts() -> list[Fact]:
    """zone_watermark_ok at 144 points (order 0/2/3, four marks, each classzone,
    can_try_harder and __GFP_HIGH on and off; 80 of them ok); one character per
    point, 1 = ok."""
    from .model import page_alloc as pa

    def model():
        zone = pa.Zone(0, "DMA", 0, 4096, len(WMOK_NR_FREE))
        zone.free_pages = _wmok_free()
        for o, n in enumerate(WMOK_NR_FREE):
            zone.free_area[o].nr_free = n
        zone.lowmem_reserve = list(WMOK_RESERVE)
        return "".join("1" if pa.zone_watermark_ok(zone, order, mark, cz, ctr, high)
                       else "0" for order, mark, cz, ctr, high in WMOK_POINTS)

    def expected():
        return "".join("1" if k_zone_watermark_ok(_wmok_free(), WMOK_NR_FREE, order, mark,
                                                  WMOK_RESERVE[cz], ctr, high)
                       else "0" for order, mark, cz, ctr, high in WMOK_POINTS)
    return [Fact(f"zone_watermark_ok at {len(WMOK_POINTS)} points", "mm/page_alloc.c "
                 "zone_watermark_ok", expected, model)]


# __alloc_pages on a 32 MiB machine (DMA and Normal 4096 frames each, batch 1) driven
# to given free counts. Each scenario: (label, {zone: target}, requests); a target is
# a function of the zone's expected marks (min, low) and reserve of DMA for Normal.
# A request is (name, gfp mask, PF_MEMALLOC).
K_GFP_KERNEL, K_GFP_ATOMIC, K_GFP_DMA = 0xD0, 0x20, 0x01     # include/linux/gfp.h
K_PF_MEMALLOC = 0x00000800                                    # include/linux/sched.h


def _atomic_floor(m):
    m -= m // 2                  # __GFP_HIGH
    return m - m // 4            # can_try_harder (no __GFP_WAIT)


ALLOC_SCENARIOS = [
    ("Normal at pages_low", {"Normal": lambda mn, lo, r: lo},
     [("GFP_KERNEL", K_GFP_KERNEL, False), ("GFP_ATOMIC", K_GFP_ATOMIC, False)]),
    ("Normal at pages_low, DMA at low+reserve",
     {"Normal": lambda mn, lo, r: lo, "DMA": lambda mn, lo, r: lo + r},
     [("GFP_KERNEL", K_GFP_KERNEL, False), ("GFP_KERNEL|__GFP_DMA", K_GFP_KERNEL | K_GFP_DMA,
                                            False)]),
    ("Normal at pages_min, DMA at min+reserve",
     {"Normal": lambda mn, lo, r: mn, "DMA": lambda mn, lo, r: mn + r},
     [("GFP_KERNEL", K_GFP_KERNEL, False), ("GFP_ATOMIC", K_GFP_ATOMIC, False),
      ("GFP_KERNEL|__GFP_HIGH", K_GFP_KERNEL | K_GFP_HIGH, False),
      ("GFP_KERNEL|__GFP_DMA", K_GFP_KERNEL | K_GFP_DMA, False)]),
    ("Normal at atomic floor+1, DMA at floor+reserve",
     {"Normal": lambda mn, lo, r: _atomic_floor(mn) + 1,
      "DMA": lambda mn, lo, r: _atomic_floor(mn) + r},
     [("GFP_ATOMIC", K_GFP_ATOMIC, False), ("no flags (can_try_harder only)", 0, False)]),
    ("Normal at atomic floor, DMA at floor+reserve",
     {"Normal": lambda mn, lo, r: _atomic_floor(mn),
      "DMA": lambda mn, lo, r: _atomic_floor(mn) + r},
     [("GFP_ATOMIC", K_GFP_ATOMIC, False), ("GFP_ATOMIC|__GFP_DMA", K_GFP_ATOMIC | K_GFP_DMA,
                                            False),
      ("GFP_KERNEL, PF_MEMALLOC", K_GFP_KERNEL, True)]),
]
ALLOC_MACHINE = {"phys_pages": 8192, "highmem_pages": 0}


def k_alloc_outcome(free, marks, reserve, gfp, memalloc):
    """__alloc_pages at order 0: the zone the page comes from, or why NULL. Pass 1 at
    pages_low (no easing), pass 2 at pages_min eased for __GFP_HIGH and for callers
    without __GFP_WAIT (can_try_harder), pass 3 for PF_MEMALLOC ignoring the marks; then
    NULL: "nopage_memalloc" after pass 3, "nopage_atomic" without __GFP_WAIT, else the
    kernel would reclaim ("would_reclaim": the model has no reclaim)."""
    zonelist = ["DMA"] if gfp & K_GFP_DMA else ["Normal", "DMA"]   # build_zonelists
    classzone = K_ZONE_NAMES.index(zonelist[0])
    can_try_harder = not gfp & K_GFP_WAIT
    for name in zonelist:
        if k_zone_watermark_ok(free[name], [], 0, marks[name][1],
                               reserve[name][classzone], False, False):
            return name
    for name in zonelist:
        if k_zone_watermark_ok(free[name], [], 0, marks[name][0], reserve[name][classzone],
                               can_try_harder, bool(gfp & K_GFP_HIGH)):
            return name
    if memalloc:
        return next((n for n in zonelist if free[n]), "nopage_memalloc")
    return "nopage_atomic" if can_try_harder else "would_reclaim"


def _alloc_targets(targets):
    sizes = k_zone_sizes(ALLOC_MACHINE["phys_pages"], ALLOC_MACHINE["highmem_pages"])
    wm = k_watermarks(sizes, k_min_free_kbytes(sizes, 4096), 12)
    reserve = k_lowmem_reserve(sizes)
    marks = {n: wm[i][:2] for i, n in enumerate(K_ZONE_NAMES)}
    res = {n: reserve[i] for i, n in enumerate(K_ZONE_NAMES)}
    want = {n: f(marks[n][0], marks[n][1], reserve[0][1]) for n, f in targets.items()}
    return marks, res, want


def _alloc_outcome_facts() -> list[Fact]:
    """__alloc_pages' answer (zone of the page, or the NULL reason) for order-0 requests
    on a machine whose zones were driven to free counts around pages_low, pages_min and
    the floor of an atomic request. The free counts the machine boots with are read
    from it (they depend on where boot put mem_map); the targets are the kernel marks."""
    import copy

    from .model import page_alloc as pa
    from .model.boot import boot

    def drive(targets):
        m = boot(**ALLOC_MACHINE)
        want = _alloc_targets(targets)[2]
        for zone in m.zones:
            target = want.get(zone.name)
            steps = 0
            while target is not None and zone.free_pages > target and steps < 10 ** 5:
                if pa.buffered_rmqueue(m, zone, 0, 0) < 0:
                    break
                steps += 1
        return m

    def model(targets, requests):
        m = drive(targets)
        out = [{z.name: z.free_pages for z in m.zones if z.name in targets}]
        for _, gfp, memalloc in requests:
            c = copy.deepcopy(m)
            c.current_flags = K_PF_MEMALLOC if memalloc else 0
            page = pa.alloc_pages(c, gfp, 0)
            out.append(c.alloc_failure if page is None else c.zone_of(page.pfn).name)
        return out

    def expected(targets, requests):
        m = boot(**ALLOC_MACHINE)     # only for the untouched zones' boot free counts
        marks, res, want = _alloc_targets(targets)
        free = {z.name: want.get(z.name, z.free_pages) for z in m.zones}
        return [want] + [k_alloc_outcome(free, marks, res, gfp, memalloc)
                         for _, gfp, memalloc in requests]
    return [Fact(f"__alloc_pages order 0, {label}",
                 "mm/page_alloc.c __alloc_pages, zone_watermark_ok, buffered_rmqueue; "
                 "requests: " + ", ".join(r[0] for r in requests),
                 lambda t=targets, r=requests: expected(t, r),
                 lambda t=targets, r=requests: model(t, r))
            for label, targets, requests in ALLOC_SCENARIOS]


FACT_GROUPS: list[Callable[[], list[Fact]]] = [
    _geometry_facts, _kmalloc_facts, _handout_facts, _shrink_facts, _buddy_facts,
    _zone_facts, _vmalloc_facts, _vector_facts,
    # watermarks, reserves, pagesets, __alloc_pages outcomes (issue 17, facts part 2)
    _watermark_facts, _watermark_ok_facts, _alloc_outcome_facts,
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


# --- issue 17 (mutation testing): facts the mutant sample showed missing -----------------
# Kept together at the end of the file and registered below, apart from FACT_GROUPS'
# own list, so that other facts can be added above without touching these.

def _mutation_min_free_kbytes_facts() -> list[Fact]:
    """2.6.12 mm/page_alloc.c init_per_zone_pages_min: min_free_kbytes =
    int_sqrt(lowmem_kbytes * 16) clamped to 128..65536, lowmem_kbytes being
    nr_free_buffer_pages() * (PAGE_SIZE >> 10); nr_free_buffer_pages sums, over the
    GFP_USER zonelist (no zone modifier: Normal then DMA), present_pages - pages_high,
    and pages_high is still 0 at that point. HighMem is not in that zonelist. (The
    kernel's comment there: 16 MB -> 512k, 64 MB -> 1024k.)"""
    from math import isqrt

    from .model.boot import boot
    configs = [{}, {"phys_pages": 16384, "highmem_pages": 4096, "max_dma_pfn": 4096},
               {"phys_pages": 200, "highmem_pages": 100, "max_dma_pfn": 24},
               {"phys_pages": 4096, "highmem_pages": 0}]
    machines = [boot(**c) for c in configs]

    def expected():
        out = []
        for m in machines:
            # zone sizes as free_area_init_core sets them (present = spanned, no holes)
            low = sum(z.spanned_pages for z in m.zones if z.name in ("DMA", "Normal"))
            kbytes = low * (m.profile.PAGE_SIZE >> 10)
            out.append(min(max(isqrt(kbytes * 16), 128), 65536))
        return out
    return [Fact("min_free_kbytes from the GFP_USER zonelist (4 machines)",
                 "mm/page_alloc.c init_per_zone_pages_min, nr_free_buffer_pages",
                 expected, lambda: [m.min_free_kbytes for m in machines])]


def k_pcp_counts(ops: str, low: int, high: int, batch: int, start: int = 0) -> list[int]:
    """pcp->count after each order-0 call on one CPU list (2.6.12 mm/page_alloc.c):
    'a' buffered_rmqueue -- refill `batch` frames (rmqueue_bulk) when count <= low,
    then take one; 'f' free_hot_cold_page -- give `batch` back (free_pages_bulk) when
    count >= high, then add one. The zone is assumed to have frames to spare. The list
    holds `start` frames before the first call."""
    count, out = start, []
    for op in ops:
        if op == "a":
            if count <= low:
                count += batch
            count -= 1
        else:
            if count >= high:
                count -= batch
            count += 1
        out.append(count)
    return out


def _mutation_pcp_facts() -> list[Fact]:
    """The per-CPU hot list of the Normal zone on the default machine (page_policy
    "2.6.12"): its batch from free_area_init_core (present/1024, at most 256 KiB,
    divided by 4, at least 1; low 2*batch, high 6*batch), its count through 130
    alloc_page and 130 frees -- the first 65 by __free_page, the rest by one
    free_pages_bulk, which stands for __free_page on each frame in order -- and the
    LIFO hand-out: list_add puts a freed frame at the head and buffered_rmqueue takes
    the head, so after frees without a drain the frames come back newest first."""
    from .model import page_alloc as pa
    from .model.boot import boot
    from .model.gfp import GFP_KERNEL
    machine = boot()
    zone = next(z for z in machine.zones if z.name == "Normal")
    page_size = machine.profile.PAGE_SIZE
    batch = max(min(zone.spanned_pages // 1024, (256 * 1024) // page_size) // 4, 1)
    ops = "a" * 130 + "f" * 65 + "F" * 65
    state: dict = {}

    def run():
        m = boot()
        z = next(z for z in m.zones if z.name == "Normal")
        pcp = z.pageset[0].pcp[0]
        marks = [pcp.low, pcp.high, pcp.batch]
        counts, pfns = [], []
        for _ in range(130):
            pfns.append(pa.alloc_page(m, GFP_KERNEL).pfn)
            counts.append(pcp.count)
        for pfn in pfns[:65]:
            pa.__free_page(m, m.mem_map + pfn)
            counts.append(pcp.count)
        pa.free_pages_bulk(m, pfns[65:])
        final = pcp.count
        # LIFO: free four more after taking them, get them back newest first
        took = [pa.alloc_page(m, GFP_KERNEL).pfn for _ in range(4)]
        for pfn in took:
            pa.__free_page(m, m.mem_map + pfn)
        back = [pa.alloc_page(m, GFP_KERNEL).pfn for _ in range(4)]
        state["took"] = took
        return [marks, counts, final, back]

    def expected():
        # boot left 31 frames on this hot list (6145..6175, the free frames of the bitmap
        # word holding mem_map's last frame 6144, freed one by one by 2.6.12 mm/bootmem.c
        # free_all_bootmem_core; K_BOOT_SINGLES), and 31 < high: count 31 to start
        counts = k_pcp_counts(ops, 2 * batch, 6 * batch, batch, start=31)
        return [[2 * batch, 6 * batch, batch], counts[:195], counts[-1],
                list(reversed(state["took"]))]
    return [Fact("per-CPU hot list: batch, counts through 130 allocs and frees, LIFO",
                 "mm/page_alloc.c free_area_init_core, buffered_rmqueue, "
                 "free_hot_cold_page", expected, run)]


def _mutation_bulk_facts() -> list[Fact]:
    """alloc_pages_bulk and free_pages_bulk are the model's shorthand for 2.6.12's
    loops (alloc_page until NULL; __free_page on each frame in order: model/
    page_alloc.py); vmalloc uses them. Agreement row: on a fixed workload, under both
    page policies, the bulk call and the loop return the same frames and leave the
    same whole machine state (what tests/test_page_bulk.py checks on random ones)."""
    import copy
    import hashlib
    import pickle

    from .model import page_alloc as pa
    from .model.boot import boot
    from .model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL

    def digest(m) -> str:
        return hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()[:16]

    def machine(policy, size):
        if size == "default":
            # the default machine: per-CPU batch 16 in Normal, so one pass takes many
            return boot(page_policy=policy)
        # zones DMA [0, 24), Normal [24, 360) (not 16-aligned), HighMem [360, 460):
        # large enough for one bulk call of more than 256 frames under the watermarks
        m = boot(phys_pages=360, highmem_pages=100, reserved=(), max_dma_pfn=24,
                 page_policy=policy)
        held = []
        for i, order in enumerate((0, 3, 1, 0, 2, 0, 4, 0, 1)):   # a used machine
            page = pa.alloc_pages(m, (GFP_KERNEL, GFP_HIGHUSER, GFP_DMA)[i % 3], order)
            held.append((page.pfn, order))
        for pfn, order in held[::2]:
            pa.__free_pages(m, m.mem_map + pfn, order)
        return m

    def arrange(pfns, how):
        if how == "reversed":
            return pfns[::-1]
        if how == "interleaved":
            return pfns[::2] + pfns[1::2]
        return list(pfns)

    cases = [(policy, size, gfp, n, how) for policy in ("2.6.12", "buddy")
             for size, gfp, n, how in (
                 ("small", GFP_KERNEL, 40, "ascending"), ("small", GFP_HIGHUSER, 150, "reversed"),
                 ("small", GFP_KERNEL, 300, "interleaved"), ("small", GFP_DMA, 30, "ascending"),
                 ("small", GFP_HIGHUSER, 290, "ascending"),
                 # more than the first pass gives: it ends at each zone's pages_low +
                 # lowmem_reserve[classzone] (DMA +1 under Normal; Normal +3 under
                 # HighMem), the later passes at the lowered pages_min (+ reserve)
                 ("small", GFP_KERNEL, 340, "ascending"),
                 ("small", GFP_HIGHUSER, 460, "interleaved"),
                 ("default", GFP_KERNEL, 37, "ascending"),
                 ("default", GFP_KERNEL, 100, "reversed"))]

    def side(bulk: bool):
        out = []
        for policy, size, gfp, n, how in cases:
            m = machine(policy, size)
            if bulk:
                got = pa.alloc_pages_bulk(m, gfp, n)
            else:
                got = []
                while len(got) < n:
                    page = pa.alloc_page(m, gfp)
                    if page is None:
                        break
                    got.append(page.pfn)
            after_alloc = digest(m)
            order = arrange(got, how)
            for pfn in order[::7]:                     # some keep a second reference
                pa.get_page(m, m.mem_map + pfn)
            if bulk:
                pa.free_pages_bulk(m, order)
            else:
                for pfn in order:
                    pa.__free_page(m, m.mem_map + pfn)
            out.append((policy, len(got), got[:3], after_alloc, digest(m)))
        return out
    return [Fact("alloc_pages_bulk / free_pages_bulk = the one-frame loops (18 workloads)",
                 "mm/page_alloc.c alloc_page loop, __free_page loop (model shorthand)",
                 lambda: side(False), lambda: side(True))]


def _mutation_compound_facts() -> list[Fact]:
    """Compound pages only on request (2.6.12 mm/page_alloc.c prep_new_page calls
    prep_compound_page only for __GFP_COMP): an order-2 GFP_KERNEL block has no
    PG_compound frame; with __GFP_COMP (0x4000, include/linux/gfp.h) all four frames
    are PG_compound with page->private = the head and page[1].index = 2; get_page on a
    tail frame takes a reference on the head (include/linux/mm.h get_page); freeing
    the block with its order clears PG_compound (destroy_compound_page)."""
    from .model import page_alloc as pa
    from .model.boot import boot
    from .model.gfp import GFP_KERNEL
    from .model.mem_map import PG_compound
    m = boot()

    def model():
        plain = pa.alloc_pages(m, GFP_KERNEL, 2)
        comp = pa.alloc_pages(m, GFP_KERNEL | 0x4000, 2)
        flags, private = m.mem_map.flags, m.mem_map.private
        out = [[bool(flags[plain.pfn + i] & PG_compound) for i in range(4)],
               [bool(flags[comp.pfn + i] & PG_compound) for i in range(4)],
               [private[comp.pfn + i] - comp.pfn for i in range(4)],
               m.page_index.get(comp.pfn + 1)]
        pa.get_page(m, m.mem_map + (comp.pfn + 3))
        out.append(m.mem_map.count[comp.pfn])
        # two __free_pages(order 2): the first drops the extra reference, the second
        # frees the block (destroy_compound_page clears PG_compound on every frame)
        for _ in range(2):
            pa.__free_pages(m, comp, 2)
        out.append([bool(flags[comp.pfn + i] & PG_compound) for i in range(4)])
        return out
    return [Fact("compound pages only with __GFP_COMP; get_page on a tail; free",
                 "mm/page_alloc.c prep_new_page, prep_compound_page, "
                 "destroy_compound_page; include/linux/mm.h get_page",
                 lambda: [[False] * 4, [True] * 4, [0] * 4, 2, 2, [False] * 4], model)]


def _mutation_slub_facts() -> list[Fact]:
    """The SLUB profile (linux-6.x-x86_64; Linux 6.1 sources, not 2.6.12): the
    general caches are named from mm/slab_common.c kmalloc_info ("kmalloc-96",
    "kmalloc-1k", ..., "dma-kmalloc-8k" for the DMA type), and every cache's slab holds
    (PAGE_SIZE << order) / size objects (mm/slub.c order_objects: no struct slab or
    bufctl array in the slab, unlike SLAB's cache_estimate)."""
    from .model.boot import boot
    machine = boot(profile="linux-6.x-x86_64", highmem_pages=0)
    page_size = machine.profile.PAGE_SIZE
    sizes = list(machine.profile.kmalloc_sizes)
    # kmalloc_info's short names, as written in the 6.1 table
    short = {8: "8", 16: "16", 32: "32", 64: "64", 96: "96", 128: "128", 192: "192",
             256: "256", 512: "512", 1024: "1k", 2048: "2k", 4096: "4k", 8192: "8k",
             16384: "16k", 32768: "32k", 65536: "64k"}

    def names_model():
        chain = {c.name for c in machine.slab.cache_chain}
        label = {size: short.get(size, "?") for size in sizes}
        return [(n, n in chain) for size in sizes
                for n in (f"kmalloc-{label[size]}", f"dma-kmalloc-{label[size]}")]

    def num_model():
        return {c.name: c.num for c in machine.slab.cache_chain}

    def num_expected():
        return {c.name: (page_size << c.gfporder) // c.objsize
                for c in machine.slab.cache_chain}
    def large():
        # above KMALLOC_MAX_CACHE_SIZE (8 KiB here) kmalloc takes whole pages from the
        # page allocator, order get_order(size), and kfree gives them back (6.1
        # mm/slab_common.c kmalloc_large, free_large_kmalloc)
        from .model import kmalloc as km, page_alloc as pa
        from .model.gfp import GFP_KERNEL
        m = boot(profile="linux-6.x-x86_64", highmem_pages=0)
        free0 = pa.nr_free_pages(m)
        out = []
        for size in (8193, 16384, 40000):
            addr = km.kmalloc(m, size, GFP_KERNEL)
            taken = free0 - pa.nr_free_pages(m)
            km.kfree(m, addr)
            out.append((taken, free0 - pa.nr_free_pages(m)))
        return out
    return [Fact("SLUB profile: kmalloc above 8 KiB takes whole pages, kfree returns them",
                 "Linux 6.1 mm/slab_common.c kmalloc_large, free_large_kmalloc",
                 lambda: [(4, 0), (4, 0), (16, 0)], large),
            Fact("SLUB profile: kmalloc cache names (kmalloc_info)",
                 "Linux 6.1 mm/slab_common.c kmalloc_info, create_kmalloc_caches",
                 lambda: [(f"{p}kmalloc-{short[size]}", True) for size in sizes
                          for p in ("", "dma-")], names_model),
            Fact("SLUB profile: objects per slab = (PAGE_SIZE << order) / size",
                 "Linux 6.1 mm/slub.c order_objects, calculate_sizes",
                 num_expected, num_model)]


def k_cpucache(objsize: int, page_size: int) -> tuple[int, int, int]:
    """2.6.12 mm/slab.c enable_cpucache: (limit, batchcount, shared array limit) --
    limit 1 above 128 KiB, 8 above a page, 24 above 1 KiB, 54 above 256 B, else 120;
    batchcount (limit + 1) / 2; shared 8 (SMP) for objects of at most a page, and the
    shared array holds batchcount * shared (do_tune_cpucache, alloc_arraycache)."""
    limit = (1 if objsize > 131072 else 8 if objsize > page_size else 24 if objsize > 1024
             else 54 if objsize > 256 else 120)
    batch = (limit + 1) // 2
    return limit, batch, batch * (8 if objsize <= page_size else 0)


def _mutation_cpucache_facts() -> list[Fact]:
    """Per-CPU array sizes and free_limit (2.6.12 mm/slab.c). Before the first slab
    call every cache has the boot head array (BOOT_CPUCACHE_ENTRIES 1, batch 1) and
    free_limit = (1 + num_online_cpus()) * batchcount + num with one CPU online. Then
    enable_cpucache gives each cache k_cpucache's sizes (one CPU online: free_limit
    2 * batchcount + num); cpuup_callback CPU_UP_PREPARE of CPU i sets it again with i
    CPUs online, so a boot cache ends with (1 + max(1, cpus - 1)) * batchcount + num; a
    cache created later gets (1 + cpus) * batchcount + num."""
    from .model import slab
    from .model.boot import boot

    def snap(cachep):
        shared = cachep.shared_array.limit if cachep.shared_array is not None else None
        return ([(a.limit, a.batchcount) for a in cachep.array], cachep.free_limit, shared)

    machines = {cpus: boot(cpus=cpus) for cpus in (1, 2, 3)}
    before = {cpus: {c.name: snap(c) for c in m.slab.cache_chain}
              for cpus, m in machines.items()}
    late = {cpus: slab.kmem_cache_create(m, "late3000", 3000, 0, 0)
            for cpus, m in machines.items()}

    def model():
        return {cpus: {c.name: snap(c) for c in m.slab.cache_chain}
                for cpus, m in machines.items()}

    def expected():
        out = {}
        for cpus, m in machines.items():
            page_size = m.profile.PAGE_SIZE
            row = {}
            for c in m.slab.cache_chain:
                limit, batch, shared = k_cpucache(c.objsize, page_size)
                online = cpus if c is late[cpus] else max(1, cpus - 1)
                row[c.name] = ([(limit, batch)] * cpus, (1 + online) * batch + c.num, shared)
            out[cpus] = row
        return out

    def boot_expected():
        return {cpus: {c.name: ([(1, 1)], 2 + c.num, None) for c in m.slab.cache_chain
                       if c is not late[cpus]}
                for cpus, m in machines.items()}
    return [Fact("slab boot head arrays: limit 1, batch 1, free_limit 2 + num (1, 2, 3 CPUs)",
                 "mm/slab.c kmem_cache_init (BOOT_CPUCACHE_ENTRIES), kmem_cache_create",
                 boot_expected, lambda: before),
            Fact("slab per-CPU arrays, shared array and free_limit (1, 2, 3 CPUs)",
                 "mm/slab.c enable_cpucache, do_tune_cpucache, cpuup_callback",
                 expected, model)]


def k_first_fit(script: list, page_size: int) -> list[int]:
    """2.6.12 mm/vmalloc.c __get_vm_area: each area gets size + one guard page and goes
    at the lowest address from VMALLOC_START that fits before the next area in the
    address-sorted vmlist; vfree (remove_vm_area) unlinks it. `script`: ("a", pages)
    or ("f", index of an earlier "a"); returns each "a"'s offset from VMALLOC_START in
    pages."""
    live: dict[int, tuple[int, int]] = {}          # index -> (addr, size) in bytes
    out: list[int] = []
    for i, (op, arg) in enumerate(script):
        if op == "f":
            del live[arg]
            out.append(-1)
            continue
        size, addr = (arg + 1) * page_size, 0
        for a, sz in sorted(live.values()):
            if a < addr:
                if a + sz >= addr:
                    addr = a + sz
                continue
            if addr + size <= a:
                break
            addr = a + sz
        live[i] = (addr, size)
        out.append(addr // page_size)
    return out


def _mutation_vmalloc_facts() -> list[Fact]:
    """vmalloc's address choice after frees (k_first_fit): frees in both orders must
    merge the holes so that a later, larger area reuses the lowest range."""
    from .model import vmalloc as vm
    from .model.boot import boot
    scripts = [
        [("a", 1), ("a", 2), ("a", 1), ("f", 0), ("f", 1), ("a", 4), ("a", 1)],
        [("a", 1), ("a", 2), ("a", 1), ("f", 1), ("f", 0), ("a", 4), ("a", 1)],
        [("a", 3), ("a", 1), ("a", 2), ("a", 1), ("f", 1), ("f", 2), ("a", 3), ("f", 0),
         ("a", 6), ("a", 1), ("a", 1)],
    ]

    def model():
        out = []
        for script in scripts:
            m = boot()
            page_size, start = m.profile.PAGE_SIZE, m.vmalloc_start
            addrs: list[int] = []
            for op, arg in script:
                if op == "a":
                    addrs.append(vm.vmalloc(m, arg * page_size))
                else:
                    vm.vfree(m, addrs[arg])
                    addrs.append(-1)
            out.append([a if a == -1 else (a - start) // page_size for a in addrs])
        return out
    return [Fact("vmalloc first fit after vfree in either order (3 scripts)",
                 "mm/vmalloc.c __get_vm_area, remove_vm_area",
                 lambda: [k_first_fit(s, 4096) for s in scripts], model)]


def _mutation_kmap_facts() -> list[Fact]:
    """The pkmap wrap (2.6.12 mm/highmem.c map_new_virtual, flush_all_zero_pkmaps):
    slots are taken from last_pkmap_nr + 1 on (the first kmap gets slot 1); kunmap only
    drops the count to 1 and the page keeps its address (lazy unmapping) until the scan
    wraps to slot 0, when every count-1 slot is flushed (count 0, pte cleared,
    page_address NULL). So after kmap + kunmap of 1023 highmem pages the first still has
    its address; the 1024th kmap wraps, flushes them all and takes slot 0."""
    from .model import highmem as hm
    from .model.boot import boot

    def model():
        from .model import page_alloc as pa
        from .model.gfp import GFP_HIGHUSER
        m = boot()
        pfns = pa.alloc_pages_bulk(m, GFP_HIGHUSER, 1024)      # 1024 highmem frames
        base, page_size = m.pkmap_base, m.profile.PAGE_SIZE
        slots = []
        for pfn in pfns[:1023]:
            slots.append((hm.kmap(m, m.mem_map + pfn) - base) // page_size)
            hm.kunmap(m, m.mem_map + pfn)
        p0 = m.mem_map + pfns[0]
        lazy = hm.page_address(m, p0) is not None
        wrap = (hm.kmap(m, m.mem_map + pfns[1023]) - base) // page_size
        flushed = [hm.page_address(m, m.mem_map + pfns[k]) is None for k in (0, 511, 1022)]
        again = (hm.kmap(m, p0) - base) // page_size
        return [slots[:3], slots[-1], lazy, wrap, flushed, again]
    return [Fact("kmap: lazy unmap until the slot scan wraps, then flush (1024 kmaps)",
                 "mm/highmem.c kmap_high, map_new_virtual, flush_all_zero_pkmaps",
                 lambda: [[1, 2, 3], 1023, True, 0, [True, True, True], 1], model)]


FACT_GROUPS.extend([_mutation_min_free_kbytes_facts, _mutation_pcp_facts,
                    _mutation_bulk_facts, _mutation_compound_facts, _mutation_slub_facts,
                    _mutation_cpucache_facts, _mutation_vmalloc_facts, _mutation_kmap_facts])


# --- issue 17, second sample: the three survivors of the first one ------------------------

def _mutation_reap_facts() -> list[Fact]:
    """How many free slabs a cache_reap destroys (2.6.12 mm/slab.c cache_reap,
    drain_array_locked, free_block). One CPU, a cache of 5000-byte objects created
    after boot: objects above a page give limit 8, batchcount 4 and no shared array
    (enable_cpucache), one object per order-1 slab (kmem_cache_create), so free_limit
    (1 + 1) * 4 + 1 = 9. 20 allocations grow 20 slabs (every refill finds no partial
    slab: free_touched set; the array is touched). 20 frees: frees 9, 13 and 17 find
    the array full and flush its first 4 (cache_flusharray): objects 1..12 go back;
    the slabs of 1..9 stay on slabs_free (free_objects 9 <= 9), those of 10..12 are
    destroyed (free_objects 10 > 9); the array keeps 13..20. So 9 free slabs, 17 in
    all, array avail 8.
    Reap 1: the array was touched: only the mark goes; free_touched: cleared, nothing
    destroyed. Reap 2: (8 + 4) / 5 = 2 objects leave the array (13, 14: free_objects
    would pass 9, both slabs destroyed), then tofree = (9 + 5*1 - 1) / (5*1) = 2 slabs
    from slabs_free: 7 free, 13 in all, avail 6. Reap 3: objects 15, 16 refill
    slabs_free to 9, then 2 go: 7 free, 11 in all, avail 4. Reap 4: 7 free, 9, avail 2."""
    from .model import slab
    from .model.boot import boot
    from .model.gfp import GFP_KERNEL

    def model():
        m = boot(cpus=1)
        c = slab.kmem_cache_create(m, "reap5000", 5000, 0, 0)
        objs = [slab.kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(20)]
        for addr in objs:
            slab.kmem_cache_free(m, c, addr)
        out = [(c.slabs_free.nr, len(c.slabs), c.array[0].avail)]
        for _ in range(4):
            slab.cache_reap(m)
            out.append((c.slabs_free.nr, len(c.slabs), c.array[0].avail))
        return out
    def arrays():
        # a 1000-byte cache: limit 54, batchcount 27, shared array 27 * 8 = 216, 4
        # objects per slab. 60 allocations: every refill finds the slabs used up and
        # grows one, so the array ends empty. 60 frees: the 55th finds it full (54) and
        # moves 27 to the shared array: (CPU array, shared) = (33, 27). Reap 1: the CPU
        # array was touched (mark cleared); the shared one gives (216 + 4) / 5 = 44 >
        # 27, so (27 + 1) / 2 = 14: (33, 13). Reap 2: (54 + 4) / 5 = 11 from the CPU
        # array, (13 + 1) / 2 = 7 from the shared: (22, 6). Reap 3: (11, 3).
        m = boot(cpus=1)
        c = slab.kmem_cache_create(m, "reap1000", 1000, 0, 0)
        objs = [slab.kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(60)]
        for addr in objs:
            slab.kmem_cache_free(m, c, addr)
        out = [(c.array[0].avail, c.shared_array.avail)]
        for _ in range(3):
            slab.cache_reap(m)
            out.append((c.array[0].avail, c.shared_array.avail))
        return out
    return [Fact("cache_reap destroys (free_limit + 5*num - 1) / (5*num) free slabs (4 reaps)",
                 "mm/slab.c cache_reap, drain_array_locked, free_block, cache_flusharray",
                 lambda: [(9, 17, 8), (9, 17, 8), (7, 13, 6), (7, 11, 4), (7, 9, 2)],
                 model),
            Fact("cache_reap drains (limit + 4) / 5 per array, half of a shorter one (3 reaps)",
                 "mm/slab.c cache_reap, drain_array_locked, cache_flusharray",
                 lambda: [(33, 27), (33, 13), (22, 6), (11, 3)], arrays)]


def k_slub_order(size: int, page_size: int, nr_cpus: int = 8, max_order: int = 3) -> int:
    """Linux 6.1 mm/slub.c calculate_order with slub_min_objects, slub_min_order 0 and
    slub_max_order PAGE_ALLOC_COSTLY_ORDER (3): min_objects 4 * (fls(nr_cpus) + 1),
    capped by the objects of an order-max_order slab; for each min_objects from there
    down to 2, accept the smallest order from get_order(min_objects * size) whose
    left-over is at most 1/16, then 1/8, then 1/4 of the slab; else one object per slab
    (calc_slab_order with fraction 1)."""
    def get_order(n):
        order = 0
        while page_size << order < n:
            order += 1
        return order

    def calc(min_objects, fract):
        order = get_order(min_objects * size)
        while order <= max_order and (page_size << order) % size > (page_size << order) // fract:
            order += 1
        return order
    min_objects = min(4 * (nr_cpus.bit_length() + 1), (page_size << max_order) // size)
    while min_objects > 1:
        for fract in (16, 8, 4):
            if calc(min_objects, fract) <= max_order:
                return calc(min_objects, fract)
        min_objects -= 1
    return calc(1, 1)


def _mutation_slub_order_facts() -> list[Fact]:
    """The SLUB profile's slab order for the kmalloc caches (8 CPUs, x86_64 4 KiB
    pages; Linux 6.1 mm/slub.c calculate_order, k_slub_order): min_objects 20, so
    kmalloc-8 .. -192 take order 0, -256 order 1, -512 order 2, -1k .. -8k order 3 (the
    objects-per-slab figures 512 .. 4 of /proc/slabinfo on such a machine). The 6.1
    rule and the later one (6.7: one pass of fractions down to 1/2 from the min_objects
    order) agree on these sizes; the model follows the later one."""
    from .model.boot import boot
    machine = boot(profile="linux-6.x-x86_64", highmem_pages=0)
    page_size = machine.profile.PAGE_SIZE
    caches = [c for c in machine.slab.cache_chain if "kmalloc-" in c.name]
    return [Fact("SLUB profile: kmalloc caches' slab order (calculate_order, 8 CPUs)",
                 "Linux 6.1 mm/slub.c calculate_order, calc_slab_order",
                 lambda: {c.name: k_slub_order(c.objsize, page_size) for c in caches},
                 lambda: {c.name: c.gfporder for c in caches})]


def _mutation_vmalloc_to_page_facts() -> list[Fact]:
    """vmalloc_to_page's misuse rules (2.6.12 mm/memory.c vmalloc_to_page takes an
    unsigned long, an i386 virtual address, meant for the vmalloc area): NULL and other
    addresses below or in the direct map are addresses, outside the vmalloc area
    (not_vmalloc_address); only non-integers and values outside 0..2^32-1 are not
    addresses at all (bad_address). A page-aligned vmalloc address that is mapped gives
    its page, the guard page after it gives NULL."""
    from .model import vmalloc as vm
    from .model.boot import boot
    from .model.errors import KernelBug

    def rule(m, addr):
        try:
            page = vm.vmalloc_to_page(m, addr)
        except KernelBug as exc:
            return exc.rule
        return "page" if page is not None else None

    def model():
        m = boot()
        size = m.profile.PAGE_SIZE
        addr = vm.vmalloc(m, size)
        return [rule(m, a) for a in (0, 1, m.profile.PAGE_OFFSET - 1, m.profile.PAGE_OFFSET,
                                     -1, 1 << 32, addr, addr + size)]
    return [Fact("vmalloc_to_page: NULL and the direct map are not_vmalloc_address",
                 "mm/memory.c vmalloc_to_page (an unsigned long vmalloc address)",
                 lambda: ["not_vmalloc_address"] * 4 + ["bad_address"] * 2 + ["page", None],
                 model)]


def _mutation_consecutive_facts() -> list[Fact]:
    """free_pages_bulk of a whole zone's frames in ascending order (the model's
    consecutive-run path: blocks of at most order MAX_ORDER - 1, 2.6.12
    __free_pages_bulk) leaves the state of __free_page on each frame. A machine
    without reserved frames, DMA zone [0, 4096): GFP_DMA takes all 4096 frames, so the
    run holds two 2048-aligned halves, each at most one order-10 block."""
    import hashlib
    import pickle

    from .model import page_alloc as pa
    from .model.boot import boot
    from .model.gfp import GFP_DMA

    def side(bulk: bool):
        out = []
        for policy in ("buddy", "2.6.12"):
            m = boot(phys_pages=12288, highmem_pages=0, reserved=(), max_dma_pfn=4096,
                     page_policy=policy)
            pfns = sorted(pa.alloc_pages_bulk(m, GFP_DMA, 4096))
            if bulk:
                pa.free_pages_bulk(m, pfns)
            else:
                for pfn in pfns:
                    pa.__free_page(m, m.mem_map + pfn)
            out.append((policy, len(pfns), [z.free_area[10].nr_free for z in m.zones[:1]],
                        hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()[:16]))
        return out
    return [Fact("free_pages_bulk of a whole 4096-frame zone = the __free_page loop",
                 "mm/page_alloc.c __free_pages_bulk (MAX_ORDER 11), __free_page loop",
                 lambda: side(False), lambda: side(True))]


def _mutation_bad_cpu_facts() -> list[Fact]:
    """A CPU number is an index of this machine's CPUs, 0..cpus-1 (2.6.12 mm/slab.c
    reaches its per-CPU arrays as cachep->array[smp_processor_id()], an online CPU):
    the model refuses any other value as bad input (ValueError, the state unchanged)
    in the slab calls that take one; -1 must not reach the last CPU's array."""
    import hashlib
    import pickle

    from .model import slab
    from .model.boot import boot
    from .model.gfp import GFP_KERNEL

    def model():
        m = boot(cpus=2)
        c = slab.kmem_cache_create(m, "cpu100", 100, 0, 0)
        addr = slab.kmem_cache_alloc(m, c, GFP_KERNEL, 1)
        before = hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()
        out = []
        for cpu in (-1, 2, 7, True, "0", None):
            for call in (lambda: slab.kmem_cache_alloc(m, c, GFP_KERNEL, cpu),
                         lambda: slab.kmem_cache_free(m, c, addr, cpu),
                         lambda: slab.cache_reap(m, cpu)):
                try:
                    call()
                    out.append("accepted")
                except ValueError:
                    out.append("ValueError")
                except Exception as exc:       # anything else is not the bad-input error
                    out.append(type(exc).__name__)
        unchanged = hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest() == before
        return out, unchanged
    return [Fact("slab calls refuse a CPU outside 0..cpus-1 (-1, 2, 7, True, '0', None)",
                 "mm/slab.c cachep->array[smp_processor_id()] (an online CPU)",
                 lambda: (["ValueError"] * 18, True), model)]


def _mutation_vmalloc_large_facts() -> list[Fact]:
    """A vmalloc of more than 1024 pages (i386: its struct page pointer array, 4 bytes
    each, passes a page) vmallocs that array too (2.6.12 mm/vmalloc.c __vmalloc:
    array_size > PAGE_SIZE), and vfree frees both (__vunmap). vmalloc(1025 pages) takes
    offset 0 and 1025 + 1 guard pages; its 2-page array the next 2 + 1 pages, so a
    1-page vmalloc goes to 1029. After vfree of the first, a 1-page vmalloc reuses 0
    and the next one 2 (first fit, mm/vmalloc.c __get_vm_area)."""
    from .model import vmalloc as vm
    from .model.boot import boot

    def model():
        m = boot()
        page_size, start = m.profile.PAGE_SIZE, m.vmalloc_start
        big = vm.vmalloc(m, 1025 * page_size)
        addrs = [big, vm.vmalloc(m, page_size)]
        vm.vfree(m, big)
        addrs += [vm.vmalloc(m, page_size), vm.vmalloc(m, page_size)]
        return [(a - start) // page_size for a in addrs]
    return [Fact("vmalloc of 1025 pages vmallocs its page array; vfree frees both",
                 "mm/vmalloc.c __vmalloc (array_size > PAGE_SIZE), __vunmap",
                 lambda: [0, 1029, 0, 2], model)]


def _mutation_slub_free_facts() -> list[Fact]:
    """SLUB frees (Linux 6.1 mm/slub.c do_slab_free: an object freed on the CPU whose
    slab it is in goes to the head of that slab's freelist, and slab_alloc_node takes
    the head): kmalloc(100) three times (kmalloc-128), kfree the second, and kmalloc
    returns it; kfree the first and the third, and kmalloc returns the third, then the
    first (without CONFIG_SLAB_FREELIST_RANDOM, which only shuffles a new slab)."""
    from .model import kmalloc as km
    from .model.boot import boot
    from .model.gfp import GFP_KERNEL

    def model():
        m = boot(profile="linux-6.x-x86_64", highmem_pages=0)
        a = [km.kmalloc(m, 100, GFP_KERNEL) for _ in range(3)]
        km.kfree(m, a[1])
        out = [a.index(km.kmalloc(m, 100, GFP_KERNEL))]
        km.kfree(m, a[0])
        km.kfree(m, a[2])
        out += [a.index(km.kmalloc(m, 100, GFP_KERNEL)), a.index(km.kmalloc(m, 100, GFP_KERNEL))]
        return out
    return [Fact("SLUB profile: kfree then kmalloc returns the freed object (LIFO)",
                 "Linux 6.1 mm/slub.c do_slab_free, slab_alloc_node",
                 lambda: [1, 2, 0], model)]


def _mutation_kunmap_low_facts() -> list[Fact]:
    """kmap of a low page is its direct-map address and kunmap of it does nothing
    (2.6.12 include/linux/highmem.h kmap / mm/highmem.c: `if (!PageHighMem(page))`),
    whatever its other flags: an order-0 page, and the head and a tail of a __GFP_COMP
    order-2 block (PG_compound), leave the whole state unchanged."""
    import hashlib
    import pickle

    from .model import highmem as hm, page_alloc as pa
    from .model.boot import boot
    from .model.gfp import GFP_KERNEL, __GFP_COMP

    def model():
        m = boot()
        plain = pa.alloc_pages(m, GFP_KERNEL, 0)
        head = pa.alloc_pages(m, GFP_KERNEL | __GFP_COMP, 2)
        before = hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()
        out = []
        for pfn in (plain.pfn, head.pfn, head.pfn + 3):
            addr = hm.kmap(m, m.mem_map + pfn)
            hm.kunmap(m, m.mem_map + pfn)
            out.append(addr == m.profile.PAGE_OFFSET + (pfn << m.profile.PAGE_SHIFT))
        return out, hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest() == before
    return [Fact("kmap / kunmap of low pages (order 0, a compound head and tail) change nothing",
                 "include/linux/highmem.h kmap, mm/highmem.c kunmap (PageHighMem)",
                 lambda: ([True, True, True], True), model)]


FACT_GROUPS.extend([_mutation_reap_facts, _mutation_slub_order_facts,
                    _mutation_vmalloc_to_page_facts, _mutation_consecutive_facts,
                    _mutation_bad_cpu_facts, _mutation_vmalloc_large_facts,
                    _mutation_slub_free_facts, _mutation_kunmap_low_facts])


# --- issue 17, third sample (seed 2512): verify's non-equivalent survivors ---------------

def _mutation_misuse_order_gfp_facts() -> list[Fact]:
    """Two misuse rules of the spec (spec/buddy.md, spec/slab.md), each in both
    directions: a block freed with another order than it was allocated with is
    wrong_order whether the order is smaller or LARGER (2.6.12 mm/page_alloc.c
    __free_pages_bulk would merge a buddy that is not free: the kernel trusts the
    caller), and kmalloc with a gfp mask holding a bit no 2.6.12 flag defines
    (include/linux/gfp.h: all flags below 0x10000) is bad_gfp, for a positive mask as
    for a negative one, also for a size past the largest cache (where a good mask
    gets NULL). And only NULL is a vfree that does nothing (2.6.12 mm/vmalloc.c
    __vunmap: `if (!addr) return`); -1, as an unsigned long 0xffffffff, is a misaligned
    "bad address" and -4096 starts no area. Each misuse leaves the state unchanged."""
    import hashlib
    import pickle

    from .model import kmalloc as km, page_alloc as pa, vmalloc as vm
    from .model.boot import boot
    from .model.errors import KernelBug
    from .model.gfp import GFP_KERNEL

    def model():
        m = boot()
        one = pa.alloc_pages(m, GFP_KERNEL, 1)
        # an order-0 frame whose pfn is 4-aligned, so that a free with order 1 or 2
        # is not misaligned_free first
        zero = next(p for p in (pa.alloc_pages(m, GFP_KERNEL, 0) for _ in range(4))
                    if p.pfn % 4 == 0)
        before = hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()
        calls = [lambda: pa.__free_pages(m, m.mem_map + one.pfn, 0),
                 lambda: pa.__free_pages(m, m.mem_map + zero.pfn, 1),
                 lambda: pa.__free_pages(m, m.mem_map + zero.pfn, 2),
                 lambda: km.kmalloc(m, 32, GFP_KERNEL | 0x10000),
                 lambda: km.kmalloc(m, 32, GFP_KERNEL | 1 << 20),
                 lambda: km.kmalloc(m, 32, -1),
                 lambda: km.kmalloc(m, 1 << 20, GFP_KERNEL | 0x10000),
                 lambda: vm.vfree(m, -1), lambda: vm.vfree(m, -4096)]
        out = []
        for call in calls:
            try:
                call()
                out.append("accepted")
            except KernelBug as exc:
                out.append(exc.rule)
        return out, hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest() == before
    return [Fact("misuse: free with a smaller or larger order; undefined gfp bits; vfree(-1)",
                 "mm/page_alloc.c __free_pages; include/linux/gfp.h; mm/vmalloc.c __vunmap",
                 lambda: (["wrong_order"] * 3 + ["bad_gfp"] * 4
                         + ["vfree_bad_address", "vfree_nonexistent"], True), model)]


def _mutation_vmalloc_cross_facts() -> list[Fact]:
    """An area that starts inside a page table and crosses into the next (2.6.12
    mm/vmalloc.c map_area_pte fills one pte table up to its end, PTRS_PER_PTE = 1024
    on i386 without PAE, then map_area_pmd moves to the next table): vmalloc of one
    page takes offsets 0-1 (with its guard page; VMALLOC_START is 8 MiB aligned), a
    1023-page vmalloc offsets 2..1024, so its last page is the first pte of the next
    table. Every one of its pages maps a distinct frame, the guard page after it none."""
    from .model import vmalloc as vm
    from .model.boot import boot

    def model():
        m = boot()
        page_size = m.profile.PAGE_SIZE
        vm.vmalloc(m, page_size)
        addr = vm.vmalloc(m, 1023 * page_size)
        pages = [vm.vmalloc_to_page(m, addr + i * page_size) for i in range(1023)]
        mapped = [p.pfn for p in pages if p is not None]
        return [(addr - m.vmalloc_start) // page_size, len(mapped), len(set(mapped)),
                vm.vmalloc_to_page(m, addr + 1023 * page_size) is None]
    return [Fact("vmalloc area across a page-table boundary maps every page (1023 pages)",
                 "mm/vmalloc.c map_vm_area, map_area_pmd, map_area_pte",
                 lambda: [2, 1023, 1023, True], model)]


def _mutation_kmap_reserved_facts() -> list[Fact]:
    """kmap of a low page that is in no buddy block (a reserved frame: pfn 0, the BIOS
    page the i386 boot keeps out of the allocator) is its direct-map address (2.6.12
    arch/i386/mm/highmem.c kmap: !PageHighMem -> page_address), like any low page."""
    from .model import highmem as hm
    from .model.boot import boot

    def model():
        from .model import page_alloc as pa
        from .model.gfp import GFP_KERNEL
        m = boot()
        low = pa.alloc_pages(m, GFP_KERNEL, 0).pfn
        return [hm.kmap(m, m.mem_map + pfn) - m.profile.PAGE_OFFSET - (pfn << 12)
                for pfn in (0, low)]
    def slots():
        m = boot()
        return [hm.PKMAP_NR(m, m.pkmap_base + k * 4096 + off)
                for k, off in ((0, 0), (1, 0), (5, 123), (1023, 4095))]
    # PKMAP_NR(virt) = (virt - PKMAP_BASE) >> PAGE_SHIFT (include/asm-i386/highmem.h)
    return [Fact("kmap of a reserved low frame (pfn 0) is its direct-map address",
                 "arch/i386/mm/highmem.c kmap (PageHighMem), page_address",
                 lambda: [0, 0], model),
            Fact("PKMAP_NR: the pkmap slot of an address (slots 0, 1, 5, 1023)",
                 "include/asm-i386/highmem.h PKMAP_NR",
                 lambda: [0, 1, 5, 1023], slots)]


FACT_GROUPS.extend([_mutation_misuse_order_gfp_facts, _mutation_vmalloc_cross_facts,
                    _mutation_kmap_reserved_facts])


# --- sweeps: each model function's boundaries and misuse rules (kmemspec/sweeps/) -------
from .sweeps import fact_groups as _sweep_groups  # noqa: E402  (after Fact is defined)

FACT_GROUPS.extend(_sweep_groups())
