"""Sweep rows for model/page_alloc.py: zones, watermarks and the allocation path.

Every function of the allocation side of the buddy allocator, with its arguments swept
over their boundaries and misuse rules, and __alloc_pages driven down through each of
its passes to the exact frame where each pass stops. Expected values come from Linux
2.6.12 (torvalds/linux 1da177e4c3f4) mm/page_alloc.c, include/linux/mmzone.h,
include/linux/gfp.h and lib/int_sqrt.c, computed here by a few lines written from the
kernel's formula, or by the campaign's independent oracle
(kmemspec/campaign/alloc_oracle.py: a copy of the free lists and per-CPU lists that
applies __alloc_pages / buffered_rmqueue / rmqueue_bulk / __rmqueue / expand as 2.6.12
does, never calling the model's allocator). The model's functions are always looked up
through the module (`pa.f`), so a test's monkeypatched mutant is the one called.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
from types import SimpleNamespace

from ..facts import Fact

# include/linux/gfp.h (2.6.12)
K_DMA, K_HIGHMEM, K_WAIT, K_HIGH, K_IO, K_FS = 0x01, 0x02, 0x10, 0x20, 0x40, 0x80
K_COLD, K_COMP, K_ZERO = 0x100, 0x4000, 0x8000
K_GFP_KERNEL = K_WAIT | K_IO | K_FS
K_GFP_ATOMIC = K_HIGH
K_PF_MEMALLOC = 0x00000800                 # include/linux/sched.h
K_MAX_ORDER = 11                           # include/linux/mmzone.h (i386)
K_PAGE_OFFSET = 0xC0000000                 # include/asm-i386/page.h __PAGE_OFFSET
K_SWAP_CLUSTER_MAX = 32                    # include/linux/swap.h
K_RATIO = (256, 32)                        # mm/page_alloc.c sysctl_lowmem_reserve_ratio

# A small machine with all three i386 zones (DMA 128, Normal 384, HighMem 256 frames):
# every pass of __alloc_pages is reached in a few hundred allocations.
TINY = {"phys_pages": 512, "highmem_pages": 256, "max_dma_pfn": 128}
# Larger zones, so that the per-CPU `batch` is above 1 (Normal 3, HighMem 2); the
# min_free_kbytes sysctl puts pages_low a few hundred frames below the boot free count.
WIDE = {"phys_pages": 16384, "highmem_pages": 8192, "min_free_kbytes": 50000}


def _pa():
    from ..model import page_alloc
    return page_alloc


def _boot(**kw):
    from ..model.boot import boot
    return boot(**kw)


def _cached(kw):
    """A function giving a freshly booted machine each call (a boot of these small
    machines costs less than a deepcopy of a booted one)."""
    def get():
        return _boot(**kw)
    return get


def _digest(m) -> str:
    return hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()


def _outcome(call):
    """The call's result, or the KernelBug rule / exception type it raised (a wrong
    exception type then fails the row)."""
    from ..model.errors import KernelBug
    try:
        return ("ok", call())
    except KernelBug as exc:
        return ("KernelBug", exc.rule)
    except Exception as exc:                  # noqa: BLE001 - the type is the answer
        return (type(exc).__name__,)


# --- struct zone, free_area, per_cpu_pageset ------------------------------------------

def _zone_struct_facts() -> list[Fact]:
    """include/linux/mmzone.h (2.6.12) struct zone / free_area / per_cpu_pageset as
    free_area_init_core leaves them: every free_area list empty with nr_free 0 (one
    list per order, MAX_ORDER of them, each its own), present_pages = spanned (no
    holes), free_pages and the watermarks 0, lowmem_reserve[] one 0 per zone;
    is_highmem() is ZONE_HIGHMEM only; zone_end_pfn = start + spanned. The per-CPU
    pageset: hot low 2*batch high 6*batch, cold low 0 high 2*batch, count 0."""
    pa = _pa()

    def fields():
        out = []
        for idx, name, start, span, orders, nz in ((2, "HighMem", 0x100, 0x40, 11, 3),
                                                   (0, "DMA", 0, 4096, 11, 3),
                                                   (1, "Normal", 7, 0, 4, 4)):
            z = pa.Zone(idx, name, start, span, orders, nz)
            z.free_area[0].nr_free = 5              # one list changed, the others not
            z.free_area[-1].head = 9
            out.append((z.index, z.name, z.zone_start_pfn, z.spanned_pages, z.present_pages,
                        z.freed_at_boot, z.free_pages, z.pages_min, z.pages_low,
                        z.pages_high, list(z.lowmem_reserve), list(z.pageset),
                        [(a.head, a.nr_free) for a in z.free_area],
                        z.is_highmem, z.zone_end_pfn, repr(z)))
        z = pa.Zone(1, "Normal", 0, 8, 11)
        out.append(list(z.lowmem_reserve))          # nr_zones defaults to 3
        area = pa.FreeArea()
        out.append((area.head, area.nr_free))
        out.append([pa.Zone(0, n, 0, 1, 1).is_highmem
                    for n in ("HighMem", "Normal", "DMA", "DMA32", "highmem", "HIGHMEM")])
        return out

    def fields_expected():
        return [(2, "HighMem", 0x100, 0x40, 0x40, 0, 0, 0, 0, 0, [0, 0, 0], [],
                 [(-1, 5)] + [(-1, 0)] * 9 + [(9, 0)], True, 0x140,
                 "Zone(HighMem, pfn 0x100-0x140, free_pages=0)"),
                (0, "DMA", 0, 4096, 4096, 0, 0, 0, 0, 0, [0, 0, 0], [],
                 [(-1, 5)] + [(-1, 0)] * 9 + [(9, 0)], False, 4096,
                 "Zone(DMA, pfn 0x0-0x1000, free_pages=0)"),
                (1, "Normal", 7, 0, 0, 0, 0, 0, 0, 0, [0, 0, 0, 0], [],
                 [(-1, 5), (-1, 0), (-1, 0), (9, 0)], False, 7,
                 "Zone(Normal, pfn 0x7-0x7, free_pages=0)"),
                [0, 0, 0], (-1, 0), [True, False, False, False, False, False]]

    def pagesets():
        out = []
        for batch in (1, 3, 16):
            pset = pa.PerCpuPageset(batch)
            out.append([(p.count, p.low, p.high, p.batch, list(p.list)) for p in pset])
            out.append([repr(p) for p in pset])
        return out

    def pagesets_expected():
        out = []
        for b in (1, 3, 16):
            out.append([(0, 2 * b, 6 * b, b, []), (0, 0, 2 * b, b, [])])
            out.append([f"PerCpuPages(count=0, low={2 * b}, high={6 * b}, batch={b})",
                        f"PerCpuPages(count=0, low=0, high={2 * b}, batch={b})"])
        return out
    return [Fact("struct zone / free_area as free_area_init_core leaves them, is_highmem, "
                 "zone_end_pfn, repr", "include/linux/mmzone.h struct zone, is_highmem; "
                 "mm/page_alloc.c free_area_init_core", fields_expected, fields),
            Fact("per_cpu_pageset hot/cold (count, low, high, batch) for batch 1, 3, 16",
                 "mm/page_alloc.c free_area_init_core (2.6.12)", pagesets_expected,
                 pagesets)]


# --- int_sqrt, zone_batchsize ---------------------------------------------------------

def k_int_sqrt(x: int) -> int:
    """lib/int_sqrt.c: the largest r with r*r <= x, by bisection here."""
    lo, hi = 0, x + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if mid * mid <= x else (lo, mid)
    return lo


def k_batchsize(present: int, page_size: int) -> int:
    """2.6.12 free_area_init_core: batch = present/1024; if batch*PAGE_SIZE > 256 KiB,
    batch = 256 KiB / PAGE_SIZE; batch /= 4; if batch < 1, batch = 1."""
    batch = present // 1024
    if batch * page_size > 256 * 1024:
        batch = 256 * 1024 // page_size
    batch //= 4
    return batch if batch >= 1 else 1


INT_SQRT_POINTS = sorted(set(list(range(0, 300)) + [n * n + d for n in
                                                    (17, 128, 1000, 65535, 65536, 1 << 20)
                                                    for d in (-1, 0, 1)]
                             + [(1 << 32) - 64, 1 << 32, (1 << 40) + 12345]))
BATCH_PRESENT = [0, 1, 1023, 1024, 2047, 4095, 4096, 4097, 5119, 8191, 8192, 12288,
                 16383, 16384, 20480, 32768, 65535, 65536, 66560, 67584, 131072,
                 229376 - 4096, 1 << 20]


def _sqrt_batch_facts() -> list[Fact]:
    """int_sqrt at 0..299, at n*n-1, n*n, n*n+1 for n up to 2^20 and past 2^32
    (lib/int_sqrt.c, by bisection); zone_batchsize for 23 zone sizes across each
    rounding step and the 256 KiB clamp, at PAGE_SIZE 4096, 8192 and 65536."""
    pa = _pa()

    def batch_model():
        return [pa.zone_batchsize(pa.Zone(0, "Normal", 0, p, 11), ps)
                for ps in (4096, 8192, 65536) for p in BATCH_PRESENT]
    return [Fact(f"int_sqrt at {len(INT_SQRT_POINTS)} points", "lib/int_sqrt.c int_sqrt",
                 lambda: [k_int_sqrt(x) for x in INT_SQRT_POINTS],
                 lambda: [pa.int_sqrt(x) for x in INT_SQRT_POINTS]),
            Fact(f"zone_batchsize at {3 * len(BATCH_PRESENT)} (present, PAGE_SIZE) points",
                 "mm/page_alloc.c free_area_init_core (batch)",
                 lambda: [k_batchsize(p, ps) for ps in (4096, 8192, 65536)
                          for p in BATCH_PRESENT], batch_model)]


# --- watermarks and reserves ----------------------------------------------------------

def k_pages_min(zones, min_free_kbytes: int, page_shift: int):
    """2.6.12 setup_per_zone_pages_min: zones = [(present, is_highmem)]; lowmem zones
    share min_free_kbytes >> (PAGE_SHIFT - 10) pages by present_pages; a highmem
    zone: present/1024 clamped to SWAP_CLUSTER_MAX..128; low = min + min/4, high =
    min + min/2 (i.e. min*5/4, min*6/4 rounded down)."""
    pages_min = min_free_kbytes >> (page_shift - 10)
    lowmem = sum(p for p, high in zones if not high)
    out = []
    for present, high in zones:
        if high:
            m = present // 1024
            m = K_SWAP_CLUSTER_MAX if m < K_SWAP_CLUSTER_MAX else 128 if m > 128 else m
        else:
            m = pages_min * present // lowmem if lowmem else 0
        out.append((m, m + m // 4, m + m // 2))
    return out


def k_lowmem_reserve(sizes, before):
    """2.6.12 setup_per_zone_lowmem_reserve: for each zone j, its own entry 0 and, for
    each lower zone idx, the present pages of zones idx+1..j over ratio[idx]; entries
    above the diagonal's other side (a higher zone's reserve for a lower class) are
    not written."""
    out = [list(row) for row in before]
    for j in range(len(sizes)):
        present = sizes[j]
        out[j][j] = 0
        for idx in range(j - 1, -1, -1):
            out[idx][j] = present // K_RATIO[idx]
            present += sizes[idx]
    return out


# (zones as (name, present), min_free_kbytes, page_shift)
PAGES_MIN_CASES = [
    ((("DMA", 4096), ("Normal", 12288), ("HighMem", 8192)), 1024, 12),
    ((("DMA", 4096), ("Normal", 225280), ("HighMem", 32768)), 3831, 12),
    ((("DMA", 4096), ("Normal", 12287), ("HighMem", 32767)), 1027, 12),
    ((("DMA", 4096), ("Normal", 0), ("HighMem", 32768)), 1023, 12),
    ((("DMA", 4096), ("Normal", 4096), ("HighMem", 33792)), 4, 12),
    ((("DMA", 4096), ("Normal", 4096), ("HighMem", 131072)), 128, 12),
    ((("DMA", 4096), ("Normal", 4096), ("HighMem", 132095)), 129, 12),
    ((("DMA", 4096), ("Normal", 4096), ("HighMem", 132096)), 130, 12),
    ((("DMA", 4096), ("Normal", 4096), ("HighMem", 1 << 20)), 131, 12),
    ((("DMA", 3000), ("Normal", 7000), ("HighMem", 0)), 1000, 13),
    ((("DMA", 3000), ("Normal", 7000), ("HighMem", 100)), 65536, 16),
    ((("DMA", 0), ("Normal", 0), ("HighMem", 8192)), 512, 12),
    ((("DMA", 1), ("Normal", 0), ("HighMem", 0)), 0, 12),
] + [((("DMA", 1),), 4 * m + r, 12) for m in range(10) for r in (0, 3)]

# lowmem_reserve: (sizes, initial matrix)
RESERVE_CASES = [
    ((4096, 12288, 8192), [[7] * 3 for _ in range(3)]),
    ((4096, 225280, 32768), [[0] * 3 for _ in range(3)]),
    ((4096, 255, 31), [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
    ((4096, 256, 32), [[0] * 3 for _ in range(3)]),
    ((4096, 0, 65536), [[0] * 3 for _ in range(3)]),
    ((128, 384, 256), [[5] * 3 for _ in range(3)]),
    ((100, 7000), [[3, 3], [3, 3]]),
    ((100,), [[9]]),
]


def _marks_facts() -> list[Fact]:
    """setup_per_zone_pages_min on made-up zones: the highmem clamp below 32 and above
    128 and each step between, a highmem zone with no low memory, no zones of low
    memory at all, PAGE_SHIFT 12, 13 and 16, uneven shares, and min 0..9 (low and high
    rounding); setup_per_zone_lowmem_reserve on 1, 2 and 3 zones, each ratio's
    rounding step, an empty middle zone, and entries it must not write.
    init_per_zone_pages_min on made-up machines (2.6.12: min_free_kbytes = int_sqrt(
    lowmem_kbytes * 16) clamped to 128..65536, lowmem counted over the GFP_USER
    zonelist, i.e. without HighMem; the sysctl value used as given): the 128 clamp at
    255/256/257 frames, the 65536 clamp at 2^26 - 1 / 2^26 / 2^26 + 1 frames, 8 KiB
    pages, and the sysctl values 0, 5, 1000."""
    pa = _pa()

    def zones_of(spec):
        return [pa.Zone(i, name, 0, present, 11, len(spec))
                for i, (name, present) in enumerate(spec)]

    def pages_min_model():
        out = []
        for spec, mfk, shift in PAGES_MIN_CASES:
            zones = zones_of(spec)
            pa.setup_per_zone_pages_min(zones, mfk, shift)
            out.append([(z.pages_min, z.pages_low, z.pages_high) for z in zones])
        return out

    def pages_min_expected():
        return [k_pages_min([(p, n == "HighMem") for n, p in spec], mfk, shift)
                for spec, mfk, shift in PAGES_MIN_CASES]

    def reserve_model():
        out = []
        names = ("DMA", "Normal", "HighMem")
        for sizes, before in RESERVE_CASES:
            zones = zones_of(list(zip(names, sizes)))
            for z, row in zip(zones, before):
                z.lowmem_reserve = list(row)
            pa.setup_per_zone_lowmem_reserve(zones)
            out.append([list(z.lowmem_reserve) for z in zones])
        return out

    def fake(sizes, page_shift=12):
        zones = zones_of(list(zip(("DMA", "Normal", "HighMem"), sizes)))
        # build_zonelists: GFP_USER (no zone bits) is Normal, DMA; empty zones left out
        user = [z for z in reversed(zones[:2]) if z.present_pages]
        return SimpleNamespace(zones=zones, zonelists=[zones[:1], user, user],
                               profile=SimpleNamespace(PAGE_SIZE=1 << page_shift,
                                                       PAGE_SHIFT=page_shift),
                               min_free_kbytes=None)

    init_cases = [((4096, 12288, 8192), 12, None), ((255, 0, 100000), 12, None),
                  ((200, 56, 0), 12, None), ((256, 1, 0), 12, None),
                  ((4096, (1 << 26) - 4097, 0), 12, None), ((4096, (1 << 26) - 4096, 0), 12,
                                                            None),
                  ((4096, (1 << 26) - 4095, 0), 12, None), ((4096, 1 << 30, 0), 12, None),
                  ((4096, 12288, 8192), 13, None), ((4096, 12288, 8192), 12, 0),
                  ((4096, 12288, 8192), 12, 5), ((64, 0, 0), 12, 1000)]

    def init_model():
        out = []
        for sizes, shift, given in init_cases:
            m = fake(sizes, shift)
            got = pa.init_per_zone_pages_min(m, given)
            out.append((got, m.min_free_kbytes,
                        [(z.pages_min, z.pages_low, z.pages_high, list(z.lowmem_reserve))
                         for z in m.zones]))
        return out

    def init_expected():
        out = []
        for sizes, shift, given in init_cases:
            if given is None:
                kbytes = (sizes[0] + sizes[1]) * ((1 << shift) >> 10)
                mfk = min(max(k_int_sqrt(kbytes * 16), 128), 65536)
            else:
                mfk = given
            marks = k_pages_min([(sizes[0], False), (sizes[1], False), (sizes[2], True)],
                                mfk, shift)
            res = k_lowmem_reserve(sizes, [[0] * 3 for _ in range(3)])
            out.append((mfk, mfk, [(*mk, r) for mk, r in zip(marks, res)]))
        return out
    return [Fact(f"setup_per_zone_pages_min: {len(PAGES_MIN_CASES)} zone sets",
                 "mm/page_alloc.c setup_per_zone_pages_min", pages_min_expected,
                 pages_min_model),
            Fact(f"setup_per_zone_lowmem_reserve: {len(RESERVE_CASES)} zone sets",
                 "mm/page_alloc.c setup_per_zone_lowmem_reserve",
                 lambda: [k_lowmem_reserve(s, b) for s, b in RESERVE_CASES], reserve_model),
            Fact(f"init_per_zone_pages_min: {len(init_cases)} machines (clamps, sysctl)",
                 "mm/page_alloc.c init_per_zone_pages_min, nr_free_buffer_pages",
                 init_expected, init_model)]


# --- zone_watermark_ok ----------------------------------------------------------------

def k_watermark_ok(free_pages, nr_free, order, mark, reserve, harder, high) -> bool:
    """2.6.12 zone_watermark_ok: free = free_pages - 2^order + 1 (may go negative);
    min = mark, less min/2 for __GFP_HIGH, then less min/4 for can_try_harder; no
    if free <= min + reserve; then for each order o below the request: free -= the
    frames in order-o blocks, min /= 2, no if free <= min."""
    low = mark
    free = free_pages - (1 << order) + 1
    if high:
        low = low - low // 2
    if harder:
        low = low - low // 4
    if free <= low + reserve:
        return False
    for o in range(order):
        free -= nr_free[o] << o
        low //= 2
        if free <= low:
            return False
    return True


WM_ZONES = [[3, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 1],
            [40, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]]
WM_RESERVE = [0, 3, 17]


def _watermark_sweep_facts() -> list[Fact]:
    """zone_watermark_ok over three zones (19 free frames in small blocks; 1056 in
    order-3 and order-10 blocks; 52 in order 0 and 2), marks 0..60 (odd and even, so
    each halving's rounding shows), orders 0..4 and 10 (free going negative), each
    classzone of lowmem_reserve [0, 3, 17], and the four __GFP_HIGH / can_try_harder
    combinations: one character per point, 1 = ok."""
    pa = _pa()
    points = [(zi, order, mark, cz, harder, high)
              for zi in range(len(WM_ZONES)) for order in (0, 1, 2, 3, 4, 10)
              for mark in range(0, 61) for cz in range(3)
              for harder in (False, True) for high in (False, True)]

    def total(nr_free):
        return sum(n << o for o, n in enumerate(nr_free))

    def model():
        zones = []
        for nr_free in WM_ZONES:
            z = pa.Zone(0, "DMA", 0, 4096, 11)
            z.free_pages = total(nr_free)
            for o, n in enumerate(nr_free):
                z.free_area[o].nr_free = n
            z.lowmem_reserve = list(WM_RESERVE)
            zones.append(z)
        return "".join("1" if pa.zone_watermark_ok(zones[zi], order, mark, cz, harder, high)
                       else "0" for zi, order, mark, cz, harder, high in points)

    def expected():
        return "".join("1" if k_watermark_ok(total(WM_ZONES[zi]), WM_ZONES[zi], order, mark,
                                             WM_RESERVE[cz], harder, high)
                       else "0" for zi, order, mark, cz, harder, high in points)
    return [Fact(f"zone_watermark_ok sweep: {len(points)} points", "mm/page_alloc.c "
                 "zone_watermark_ok", expected, model)]


# --- __alloc_pages, driven through its passes -----------------------------------------

def _oracle():
    from ..campaign import alloc_oracle
    return alloc_oracle


def _task_flags(memalloc) -> int:
    """current->flags for a row: True is PF_MEMALLOC alone, an int is given as is."""
    return K_PF_MEMALLOC if memalloc is True else int(memalloc)


# include/linux/sched.h (2.6.12): every task flag below 0x10000 except PF_MEMALLOC
# (PF_ALIGNWARN 0x1 ... PF_FLUSHER 0x1000 ...): none of them changes __alloc_pages
K_OTHER_TASK_FLAGS = 0xFFFF & ~K_PF_MEMALLOC


def _run(machine, calls, memalloc=False):
    """Model side: each (gfp, order, cpu) call of alloc_pages; the pfn or the NULL
    reason, then every returned block's reference count / recorded order / compound
    marks, and the allocator state as the oracle's Shadow copies it."""
    pa = _pa()
    from ..model.mem_map import PG_compound
    machine.current_flags = _task_flags(memalloc)
    out, blocks = [], []
    for gfp, order, cpu in calls:
        page = pa.alloc_pages(machine, gfp, order, cpu)
        if page is None:
            out.append(machine.alloc_failure)
        else:
            out.append(page.pfn)
            blocks.append((page.pfn, order, gfp))
    mm = machine.mem_map
    bad = [p for p, order, gfp in blocks
           if mm.count[p] != 1 or machine.page_owner.get(p) != order
           or (order and gfp & K_COMP and not (
               machine.page_index.get(p + 1) == order
               and all(mm.flags[q] & PG_compound and mm.private[q] == p
                       for q in range(p, p + (1 << order)))))]
    return out, bad + _buddy_marks(machine), _oracle().Shadow(machine)


def _run_expected(machine, calls, memalloc=False):
    """Oracle side: the same calls applied by the campaign oracle to a Shadow copy of
    the same starting machine (2.6.12 __alloc_pages / buffered_rmqueue / __rmqueue)."""
    ao = _oracle()
    machine.current_flags = _task_flags(memalloc)
    shadow = ao.Shadow(machine)
    out = []
    for gfp, order, cpu in calls:
        if machine.watermarks:
            pfn, reason, _ = ao.alloc_pages(shadow, machine, gfp, order, cpu)
        else:
            pfn, reason = k_first_fit_block(shadow, machine, gfp, order)
        out.append(reason if pfn is None else pfn)
    return out, [], shadow


def k_first_fit_block(shadow, machine, gfp: int, order: int):
    """page_policy "buddy" (spec/buddy.md: the bare buddy core): __rmqueue of the first
    zone of the zonelist with a block of the order or larger; NULL as no_free_block,
    or order_too_large at MAX_ORDER and above (alloc_pages_node)."""
    from ..campaign.oracle import zonelist
    if order >= K_MAX_ORDER:
        return None, "order_too_large"
    for zone in zonelist(machine, gfp):
        pfn = _oracle().rmqueue(shadow.zones[zone.index], order)
        if pfn is not None:
            return pfn, None
    return None, "no_free_block"


# (label, machine, gfp, orders cycled, calls, PF_MEMALLOC, cpu)
ALLOC_RUNS = [
    ("no flags (can_try_harder only), order 0", "tiny", 0, (0,), 485, False, 0),
    ("GFP_KERNEL, order 0", "tiny", K_GFP_KERNEL, (0,), 475, False, 0),
    ("GFP_ATOMIC, order 0", "tiny", K_GFP_ATOMIC, (0,), 500, False, 0),
    ("__GFP_WAIT|__GFP_HIGH, order 0", "tiny", K_WAIT | K_HIGH, (0,), 495, False, 0),
    ("GFP_KERNEL|__GFP_DMA, order 0", "tiny", K_GFP_KERNEL | K_DMA, (0,), 125, False, 0),
    ("GFP_ATOMIC|__GFP_DMA, order 0", "tiny", K_GFP_ATOMIC | K_DMA, (0,), 130, False, 0),
    ("GFP_HIGHUSER, order 0", "tiny", K_GFP_KERNEL | K_HIGHMEM, (0,), 690, False, 0),
    ("__GFP_HIGHMEM|__GFP_HIGH, order 0", "tiny", K_HIGHMEM | K_HIGH, (0,), 735, False, 0),
    ("__GFP_DMA|__GFP_HIGHMEM (DMA wins), order 0", "tiny",
     K_GFP_KERNEL | K_DMA | K_HIGHMEM, (0,), 125, False, 0),
    ("GFP_KERNEL|__GFP_COLD, order 0", "tiny", K_GFP_KERNEL | K_COLD, (0,), 470, False, 0),
    ("GFP_KERNEL, PF_MEMALLOC, order 0", "tiny", K_GFP_KERNEL, (0,), 520, True, 0),
    ("GFP_ATOMIC|__GFP_HIGHMEM, PF_MEMALLOC, orders 0,2", "tiny", K_GFP_ATOMIC | K_HIGHMEM,
     (0, 2), 330, True, 0),
    ("GFP_KERNEL, orders 1,0,2,0,3", "tiny", K_GFP_KERNEL, (1, 0, 2, 0, 3), 170, False, 0),
    ("GFP_ATOMIC, orders 3,1,4,0", "tiny", K_GFP_ATOMIC, (3, 1, 4, 0), 110, False, 0),
    ("no flags, orders 2,5,1", "tiny", 0, (2, 5, 1), 80, False, 0),
    ("GFP_HIGHUSER|__GFP_COMP, orders 1,3,0,2", "tiny",
     K_GFP_KERNEL | K_HIGHMEM | K_COMP, (1, 3, 0, 2), 200, False, 0),
    ("GFP_KERNEL, orders 10,9,8,10 then 0", "64m", K_GFP_KERNEL, (10, 9, 8, 10, 0), 60,
     False, 0),
    ("GFP_ATOMIC, task flags other than PF_MEMALLOC", "tiny", K_GFP_ATOMIC, (0, 1), 340,
     K_OTHER_TASK_FLAGS, 0),
    ("GFP_KERNEL, task flags other than PF_MEMALLOC", "tiny", K_GFP_KERNEL, (0,), 480,
     K_OTHER_TASK_FLAGS, 0),
    ("GFP_KERNEL, PF_MEMALLOC with other task flags", "tiny", K_GFP_KERNEL, (0,), 520,
     0xFFFF, 0),
    ("page_policy buddy, pfn 0 free: GFP_DMA, orders 0,2,1", "tiny-lowfree-buddy", K_DMA,
     (0, 2, 1), 90, False, 0),
    ("page_policy buddy: GFP_HIGHUSER, orders 3,0", "tiny-buddy", K_GFP_KERNEL | K_HIGHMEM,
     (3, 0), 150, False, 0),
    ("pfn 0 free: GFP_ATOMIC|__GFP_DMA, PF_MEMALLOC, orders 2,0,1", "tiny-lowfree",
     K_GFP_ATOMIC | K_DMA, (2, 0, 1), 90, True, 0),
    ("x86_64 profile: GFP_KERNEL, order 0", "x64", K_GFP_KERNEL, (0,), 955, False, 0),
    ("x86_64 profile: GFP_ATOMIC|__GFP_HIGHMEM (Normal: no highmem), orders 0,1", "x64",
     K_GFP_ATOMIC | K_HIGHMEM, (0, 1), 670, False, 0),
    ("x86_64 profile: __GFP_DMA|__GFP_HIGHMEM, order 2", "x64", K_DMA | K_HIGHMEM, (2,), 30,
     False, 0),
    ("pfn 0 from pass 2: GFP_ATOMIC|__GFP_DMA, orders 2,0,1", "tiny-lowfree-tight",
     K_GFP_ATOMIC | K_DMA, (2, 0, 1), 60, False, 0),
    ("pfn 0 from pass 3: GFP_KERNEL|__GFP_DMA, PF_MEMALLOC, orders 2,0,1",
     "tiny-lowfree-memalloc", K_GFP_KERNEL | K_DMA, (2, 0, 1), 60, True, 0),
    ("GFP_KERNEL, orders 2,3,2,4", "tiny-pairs", K_GFP_KERNEL, (2, 3, 2, 4), 40, False, 0),
    ("GFP_ATOMIC, orders 2,1,3", "tiny-pairs", K_GFP_ATOMIC, (2, 1, 3), 40, False, 0),
    ("GFP_KERNEL, orders 3,2,1,4,1,2", "tiny-frag", K_GFP_KERNEL, (3, 2, 1, 4, 1, 2), 60,
     False, 0),
    ("GFP_ATOMIC, orders 1,2,3", "tiny-frag", K_GFP_ATOMIC, (1, 2, 3), 60, False, 0),
    ("__GFP_DMA, orders 2,1,3,1", "tiny-frag", K_DMA, (2, 1, 3, 1), 40, False, 0),
    ("GFP_KERNEL, CPU 1 of 2, order 0", "tiny2", K_GFP_KERNEL, (0,), 470, False, 1),
    ("GFP_ATOMIC|__GFP_COLD, CPU 1 of 2, order 0", "tiny2", K_GFP_ATOMIC | K_COLD, (0,),
     495, False, 1),
    ("GFP_KERNEL, batch 3/2, order 0", "wide", K_GFP_KERNEL, (0,), 500, False, 0),
    ("GFP_ATOMIC|__GFP_HIGHMEM, batch 2, order 0", "wide", K_GFP_ATOMIC | K_HIGHMEM, (0,),
     400, False, 0),
]

MACHINES = {"tiny": TINY, "tiny2": dict(TINY, cpus=2), "wide": WIDE,
            "64m": {"phys_pages": 16384, "highmem_pages": 0},
            "tiny-buddy": dict(TINY, page_policy="buddy"),
            # the 6.x x86_64 profile: DMA 128 frames, DMA32 896, Normal empty
            "x64": {"profile": "linux-6.x-x86_64", "phys_pages": 1024, "highmem_pages": 0,
                    "max_dma_pfn": 128},
            # reserving pfn 5 before mem_map is placed leaves pfns 0..4 free (mem_map
            # goes to 6..): the frame numbered 0 is handed out like any other
            "tiny-lowfree": dict(TINY, reserved=((5, 6),)),
            "tiny-lowfree-buddy": dict(TINY, reserved=((5, 6),), page_policy="buddy"),
            # the min_free_kbytes sysctl puts DMA's pages_low (125) above its free count
            # (114), so pass 2 answers; at 60000 pages_min too, so only PF_MEMALLOC's
            # pass 3 does
            "tiny-lowfree-tight": dict(TINY, reserved=((5, 6),), min_free_kbytes=1600),
            "tiny-lowfree-memalloc": dict(TINY, reserved=((5, 6),), min_free_kbytes=60000)}


def _fragmented():
    """The small machine with its zones cut into single frames: every frame pass 1 of
    GFP_KERNEL and of __GFP_DMA gives (Normal, then DMA, down to pages_low), then every
    second one freed again, so that the order-0 lists are long and the higher ones
    short (the state in which zone_watermark_ok's per-order loop decides)."""
    pa = _pa()
    m = _boot(**TINY)
    for gfp in (K_GFP_KERNEL, K_DMA):
        got = []
        while True:
            page = pa.alloc_pages(m, gfp, 0)
            if page is None:
                break
            got.append(page)
        for page in got[::2]:
            pa.__free_pages(m, page, 0)
    return m


def _paired():
    """The small machine with Normal cut into order-1 pieces and DMA left free: every
    frame GFP_KERNEL gives (Normal, then DMA), then in Normal the aligned pairs 4k, 4k+1
    freed (they merge into order-1 blocks; the last few wait on the hot list), and every
    DMA frame freed. An order-2 request then fails Normal's per-order test only
    because of the order-1 frames, and pass 1 goes on to DMA."""
    pa = _pa()
    m = _boot(**TINY)
    got = []
    while True:
        page = pa.alloc_pages(m, K_GFP_KERNEL, 0)
        if page is None:
            break
        got.append(page)
    normal = m.zones[1]
    for page in got:
        in_normal = normal.zone_start_pfn <= page.pfn < normal.zone_end_pfn
        if not in_normal or page.pfn % 4 < 2:
            pa.__free_pages(m, page, 0)
    return m


def _alloc_run_facts() -> list[Fact]:
    """__alloc_pages, a fixed sequence of calls per row on a fresh machine, run past
    the point where every pass has stopped: the pfn of each block (or the NULL
    reason), each block's count / page_owner / compound marks (prep_new_page,
    prep_compound_page), and the free lists and per-CPU lists after, against the
    campaign oracle (2.6.12 mm/page_alloc.c __alloc_pages: pass 1 at pages_low, pass
    2 at pages_min eased by __GFP_HIGH and !__GFP_WAIT, pass 3 for PF_MEMALLOC; the
    zonelist from build_zonelists' table, __GFP_DMA winning over __GFP_HIGHMEM;
    buffered_rmqueue's per-CPU refill of `batch` at count <= low, hot or cold, on the
    calling CPU). Orders 0..5 mixed, and 8..10 on a 64 MiB machine."""
    machines = {k: _cached(v) for k, v in MACHINES.items()}
    frag = {}

    def fragmented():
        if "m" not in frag:
            frag["m"] = _fragmented()
        return copy.deepcopy(frag["m"])
    machines["tiny-frag"] = fragmented
    pairs = {}

    def paired():
        if "m" not in pairs:
            pairs["m"] = _paired()
        return copy.deepcopy(pairs["m"])
    machines["tiny-pairs"] = paired
    facts = []
    for label, mk, gfp, orders, n, memalloc, cpu in ALLOC_RUNS:
        calls = [(gfp, orders[i % len(orders)], cpu) for i in range(n)]

        def model(mk=mk, calls=calls, memalloc=memalloc):
            out, bad, shadow = _run(machines[mk](), calls, memalloc)
            return out, bad, shadow.zones

        def expected(mk=mk, calls=calls, memalloc=memalloc):
            out, bad, shadow = _run_expected(machines[mk](), calls, memalloc)
            return out, bad, shadow.zones
        facts.append(Fact(f"__alloc_pages run: {label} ({n} calls, {mk})",
                          "mm/page_alloc.c __alloc_pages, zone_watermark_ok, "
                          "buffered_rmqueue, rmqueue_bulk, __rmqueue, expand", expected, model))
    return facts


# (machine, script): ("a", gfp, order) allocates, ("f", k, order) frees the k-th block
# allocated so far. Order-2 blocks 0, Y, Y+4 taken, 0 and Y freed (Y's buddy Y+4 is
# still allocated, 0's buddy holds the reserved pfn 5): the order-2 list is [Y, 0], and
# the next order-2 request takes Y, leaving 0 the list's first block.
SCRIPTS = [
    ("tiny-lowfree-buddy", [("a", K_DMA, 2)] * 3 + [("f", 0, 2), ("f", 1, 2)]
     + [("a", K_DMA, 2), ("a", K_DMA, 1)]),
    ("tiny-lowfree", [("a", K_GFP_ATOMIC | K_DMA, 2)] * 3 + [("f", 0, 2), ("f", 1, 2)]
     + [("a", K_GFP_ATOMIC | K_DMA, 2), ("a", K_GFP_ATOMIC | K_DMA, 1)]),
    # the machine's last frame (767, the first one boot's hot list hands out) freed
    # with every second of nine more: the hot list drains it first, so it waits on
    # HighMem's order-0 list behind the frames drained after it (its prev link is the
    # last entry of lru_prev, the one a list index of -1 reaches)
    ("tiny", [("a", K_GFP_KERNEL | K_HIGHMEM, 0)] * 20
     + [("f", k, 0) for k in range(0, 20, 2)]
     + [("a", K_GFP_KERNEL, 0)] * 12 + [("a", K_GFP_KERNEL | K_HIGHMEM, 1)] * 4
     + [("a", K_GFP_KERNEL, 3)] * 2),
    ("tiny-lowfree", [("a", K_GFP_ATOMIC | K_DMA, 2)] * 3 + [("f", 0, 2), ("f", 1, 2)]
     + [("a", K_GFP_ATOMIC | K_DMA, 2)] * 3 + [("a", K_GFP_ATOMIC | K_DMA, 1)] * 6
     + [("f", 3, 2), ("a", K_GFP_ATOMIC | K_DMA, 3), ("a", K_GFP_ATOMIC | K_DMA, 2)]),
]


def _script_facts() -> list[Fact]:
    """Allocations between frees (order 2: __free_pages_ok -> __free_pages_bulk; order
    0: through the hot list, which drains its tail at `high`), so that __rmqueue and
    rmqueue_bulk take a list's first block while another waits behind it -- pfn 0,
    whose number is the edge of the "no next block" test, and the machine's last
    frame, whose prev link a list index of -1 would reach: each pfn or NULL reason,
    the free lists after with
    their prev links and PG_buddy/private, against the oracle (mm/page_alloc.c
    __rmqueue, expand, __free_pages_bulk)."""
    pa = _pa()
    ao = _oracle()
    machines = {k: _cached(MACHINES[k]) for k, _ in SCRIPTS}
    facts = []
    for i, (mk, script) in enumerate(SCRIPTS):
        def model(mk=mk, script=script):
            m = machines[mk]()
            out, blocks = [], []
            for op, a, order in script:
                if op == "a":
                    page = pa.alloc_pages(m, a, order)
                    out.append(m.alloc_failure if page is None else page.pfn)
                    if page is not None:
                        blocks.append(page.pfn)
                else:
                    pa.__free_pages(m, m.mem_map + blocks[a], order)
            return out, _buddy_marks(m), ao.Shadow(m).zones

        def expected(mk=mk, script=script):
            m = machines[mk]()
            shadow = ao.Shadow(m)
            out, blocks = [], []
            for op, a, order in script:
                if op == "a":
                    if m.watermarks:
                        pfn, reason, _ = ao.alloc_pages(shadow, m, a, order, 0)
                    else:
                        pfn, reason = k_first_fit_block(shadow, m, a, order)
                    out.append(reason if pfn is None else pfn)
                    if pfn is not None:
                        blocks.append(pfn)
                else:
                    ao.free_pages(shadow, m, blocks[a], order, 0)
            return out, [], shadow.zones
        facts.append(Fact(f"alloc_pages between frees, a block waiting behind a list's "
                          f"first: script {i} ({len(script)} calls, {mk})",
                          "mm/page_alloc.c __rmqueue, expand, "
                          "__free_pages_bulk", expected, model))
    return facts


# --- alloc_pages_bulk, rmqueue_bulk ---------------------------------------------------

def _buddy_marks(m) -> list[int]:
    """Heads on a free list without PG_buddy or with another order in private (each
    free block's head carries both: 2.6.12 set_page_order), or whose prev link is not
    the block before it (-1 for the list's first: include/linux/list.h keeps both
    directions, and list_del of a block in the middle follows prev)."""
    from ..model.mem_map import PG_buddy
    mm, bad = m.mem_map, []
    for zone in m.zones:
        for order, area in enumerate(zone.free_area):
            pfn, prev = area.head, -1
            while pfn >= 0:
                if (not mm.flags[pfn] & PG_buddy or mm.private[pfn] != order
                        or mm.lru_prev[pfn] != prev):
                    bad.append(pfn)
                pfn, prev = mm.lru_next[pfn], pfn
    return bad


def k_first_fit(shadow, machine, gfp: int, n: int):
    """page_policy "buddy" (spec/buddy.md: the bare buddy core, no watermarks, no
    per-CPU lists): each order-0 request takes __rmqueue of the first zone of the
    zonelist that has a frame."""
    ao = _oracle()
    from ..campaign.oracle import zonelist
    out = []
    for zone in zonelist(machine, gfp):
        copy_ = shadow.zones[zone.index]
        while len(out) < n:
            pfn = ao.rmqueue(copy_, 0)
            if pfn is None:
                break
            out.append(pfn)
    return out


# (label, machine, gfp, nr_pages or "avail" / "avail+1", PF_MEMALLOC, cpu)
BULK_CASES = [
    ("GFP_KERNEL, 0 pages", "tiny", K_GFP_KERNEL, 0, False, 0),
    ("GFP_KERNEL, 1 page", "tiny", K_GFP_KERNEL, 1, False, 0),
    ("GFP_KERNEL, 4 pages (hot count 6 down to low 2)", "tiny", K_GFP_KERNEL, 4, False, 0),
    ("GFP_KERNEL, 5 pages (one refill)", "tiny", K_GFP_KERNEL, 5, False, 0),
    ("GFP_KERNEL, 9 pages", "tiny", K_GFP_KERNEL, 9, False, 0),
    ("GFP_KERNEL, all it gives", "tiny", K_GFP_KERNEL, "avail", False, 0),
    ("GFP_KERNEL, one more than it gives", "tiny", K_GFP_KERNEL, "avail+1", False, 0),
    ("GFP_ATOMIC (mark halved, then less a quarter)", "tiny", K_GFP_ATOMIC, 1000, False, 0),
    ("GFP_ATOMIC, all it gives", "tiny", K_GFP_ATOMIC, "avail", False, 0),
    ("__GFP_WAIT|__GFP_HIGH (mark halved only)", "tiny", K_WAIT | K_HIGH, 1000, False, 0),
    ("no flags (less a quarter only)", "tiny", 0, 1000, False, 0),
    ("GFP_ATOMIC|__GFP_DMA", "tiny", K_GFP_ATOMIC | K_DMA, 1000, False, 0),
    ("GFP_KERNEL|__GFP_DMA|__GFP_HIGHMEM (DMA wins)", "tiny", K_GFP_KERNEL | K_DMA | K_HIGHMEM,
     1000, False, 0),
    ("__GFP_HIGHMEM|__GFP_HIGH", "tiny", K_HIGHMEM | K_HIGH, 1000, False, 0),
    ("GFP_HIGHUSER|__GFP_COLD", "tiny", K_GFP_KERNEL | K_HIGHMEM | K_COLD, 1000, False, 0),
    ("GFP_KERNEL, PF_MEMALLOC (every zone to empty)", "tiny", K_GFP_KERNEL, 1000, True, 0),
    ("GFP_ATOMIC|__GFP_HIGHMEM, PF_MEMALLOC, all it gives", "tiny", K_GFP_ATOMIC | K_HIGHMEM,
     "avail", True, 0),
    ("GFP_ATOMIC|__GFP_COLD on CPU 1 of 2", "tiny2", K_GFP_ATOMIC | K_COLD, 1000, False, 1),
    ("GFP_KERNEL, batch 3", "wide", K_GFP_KERNEL, 700, False, 0),
    ("GFP_KERNEL, batch 3, 17 pages", "wide", K_GFP_KERNEL, 17, False, 0),
    ("GFP_HIGHUSER|__GFP_COLD, batch 2, 11 pages", "wide", K_GFP_KERNEL | K_HIGHMEM | K_COLD,
     11, False, 0),
    ("page_policy buddy: GFP_KERNEL", "tiny-buddy", K_GFP_KERNEL, 1000, False, 0),
    ("page_policy buddy: GFP_DMA, 30 pages", "tiny-buddy", K_DMA, 30, False, 0),
    ("page_policy buddy: GFP_HIGHUSER, all it gives", "tiny-buddy", K_GFP_KERNEL | K_HIGHMEM,
     "avail", False, 0),
]



def _bulk_facts() -> list[Fact]:
    """alloc_pages_bulk(gfp, n) is what n calls of alloc_page would do, stopping at the
    first NULL (its docstring; 2.6.12 mm/page_alloc.c __alloc_pages at order 0 for
    each, applied by the campaign oracle, or the first-fit __rmqueue of page_policy
    "buddy"): the pfns in order, the NULL reason only when it fell short, every
    frame's count 1 and order 0, the free and per-CPU lists after. n = 0, 1, the
    per-CPU low/refill boundaries, exactly what the passes give and one more, and
    past every floor for each __GFP_HIGH / __GFP_WAIT combination, both zone bits,
    PF_MEMALLOC, __GFP_COLD, a second CPU, batch 2 and 3."""
    machines = {k: _cached(v) for k, v in MACHINES.items()}
    ao = _oracle()

    def oracle_loop(m, gfp, n, cpu, memalloc):
        m.current_flags = K_PF_MEMALLOC if memalloc else 0
        shadow = ao.Shadow(m)
        if not m.watermarks:
            got = k_first_fit(shadow, m, gfp, n)
            return got, (None if len(got) == n else "no_free_block"), shadow
        got, reason = [], None
        while len(got) < n:
            pfn, reason, _ = ao.alloc_pages(shadow, m, gfp, 0, cpu)
            if pfn is None:
                break
            got.append(pfn)
        return got, (None if len(got) == n else reason), shadow

    avail: dict = {}

    def count_of(mk, gfp, n, cpu, memalloc):
        if isinstance(n, int):
            return n
        key = (mk, gfp, cpu, memalloc)
        if key not in avail:       # what the oracle's alloc_page loop gives in all
            avail[key] = len(oracle_loop(machines[mk](), gfp, 10 ** 4, cpu, memalloc)[0])
        return avail[key] + (1 if n == "avail+1" else 0)

    facts = []
    for label, mk, gfp, n, memalloc, cpu in BULK_CASES:
        def model(mk=mk, gfp=gfp, n=n, memalloc=memalloc, cpu=cpu):
            count = count_of(mk, gfp, n, cpu, memalloc)
            m = machines[mk]()
            m.current_flags = K_PF_MEMALLOC if memalloc else 0
            got = _pa().alloc_pages_bulk(m, gfp, count, cpu)
            bad = [p for p in got if m.mem_map.count[p] != 1 or m.page_owner.get(p) != 0]
            return (got, m.alloc_failure, bad, _buddy_marks(m), _oracle().Shadow(m).zones)

        def expected(mk=mk, gfp=gfp, n=n, memalloc=memalloc, cpu=cpu):
            count = count_of(mk, gfp, n, cpu, memalloc)
            got, reason, shadow = oracle_loop(machines[mk](), gfp, count, cpu, memalloc)
            return (got, reason, [], [], shadow.zones)
        facts.append(Fact(f"alloc_pages_bulk: {label} ({mk})", "mm/page_alloc.c "
                          "__alloc_pages (order 0, repeated), buffered_rmqueue, rmqueue_bulk",
                          expected, model))

    counts = [-5, -1, 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000]

    def bulk_model():
        out = []
        for i, count in enumerate(counts):
            m = machines["tiny-buddy"]()
            zone = m.zones[i % 3]
            prep = bool(i % 2)
            taken = [-7]
            _pa().rmqueue_bulk(m, zone, count, taken, prep)
            mm = m.mem_map
            marks = [(mm.flags[p] & 0x02, mm.private[p], mm.lru_next[p], mm.lru_prev[p],
                      mm.count[p], m.page_owner.get(p)) for p in taken[1:]]
            out.append((taken, sorted(set(marks)), _buddy_marks(m),
                        _oracle().Shadow(m).zones))
        return out

    def bulk_expected():
        # rmqueue_bulk(zone, 0, count, list): count __rmqueue(zone, 0) calls (none for a
        # negative count: `for (i = 0; i < count; ++i)`), each
        # frame added at the list's tail, stopping when the zone is empty; the frames
        # as __rmqueue leaves them (PG_buddy clear, private 0, off every list), with
        # prep_new_page's reference and order when asked
        out = []
        for i, count in enumerate(counts):
            m = machines["tiny-buddy"]()
            shadow = ao.Shadow(m)
            zone = shadow.zones[i % 3]
            prep = bool(i % 2)
            taken = [-7]
            for _ in range(count):
                pfn = ao.rmqueue(zone, 0)
                if pfn is None:
                    break
                taken.append(pfn)
            marks = [(0, 0, -1, -1, 1 if prep else 0, 0 if prep else None)] if taken[1:] \
                else []
            out.append((taken, marks, [], shadow.zones))
        return out
    facts.append(Fact(f"rmqueue_bulk: {len(counts)} counts 0..1000 over three zones, "
                      "prep on and off", "mm/page_alloc.c rmqueue_bulk, __rmqueue, expand, "
                      "prep_new_page", bulk_expected, bulk_model))
    return facts


# --- misuse, the address-returning wrappers, _check_cpu -------------------------------

def _misuse_facts() -> list[Fact]:
    """The allocation API's misuse rules (spec/buddy.md): an order that is not a
    non-negative integer is bad_order; a gfp mask that is not an integer or has bits no
    2.6.12 flag defines (include/linux/gfp.h: all below 0x10000) is bad_gfp; a count
    that is not a non-negative integer is bad_count; get_zeroed_page with
    __GFP_HIGHMEM is highmem_get_free_pages (2.6.12 BUG_ON); each leaves the whole state
    unchanged. An order >= MAX_ORDER is no misuse: 2.6.12 alloc_pages_node returns
    NULL (reason order_too_large), nothing else changes; MAX_ORDER - 1 succeeds on a
    machine with such a block. A CPU outside 0..cpus-1 is refused (ValueError)."""
    pa = _pa()
    from ..model.errors import KernelBug
    get = _cached(TINY)
    get64 = _cached({"phys_pages": 16384, "highmem_pages": 0})

    def model():
        m = get()
        held = pa.alloc_pages(m, K_GFP_KERNEL, 0).pfn
        before = _digest(m)
        out = []
        calls = ([lambda o=o: pa.alloc_pages(m, K_GFP_KERNEL, o)
                  for o in (-1, -11, 1.0, "0", None, True)]
                 + [lambda g=g: pa.alloc_pages(m, g, 0)
                    for g in (-1, 0x10000, 1 << 40, 2.0, None, True, -0x10000)]
                 + [lambda g=g: pa.alloc_page(m, g) for g in (-1, 0x10000)]
                 + [lambda c=c: pa.alloc_pages_bulk(m, K_GFP_KERNEL, c)
                    for c in (-1, 1.5, None, True, "3")]
                 + [lambda g=g: pa.alloc_pages_bulk(m, g, 3) for g in (-1, 0x10000, 1.0)]
                 + [lambda g=g: pa.__get_free_pages(m, g, 0) for g in (-1, 0x10000, None)]
                 + [lambda o=o: pa.__free_pages(m, m.mem_map + held, o)
                    for o in (11, 12, 1 << 20, -1, 1.0)]
                 + [lambda: pa.__get_free_pages(m, K_GFP_KERNEL, -1),
                    lambda: pa.__get_free_page(m, 0x20000)]
                 + [lambda g=g: pa.get_zeroed_page(m, g)
                    for g in (K_HIGHMEM, K_GFP_KERNEL | K_HIGHMEM, K_DMA | K_HIGHMEM,
                              K_GFP_ATOMIC | K_HIGHMEM, -1, 0x10000)])
        for call in calls:
            out.append(_outcome(call))
        # the bad_order message names the order and the valid range 0..MAX_ORDER-1
        # (and, for a free, the frame: KernelBug.pfn)
        msgs = []
        for call, pfn in ((lambda: pa.alloc_pages(m, K_GFP_KERNEL, -3), None),
                          (lambda: pa.__free_pages(m, m.mem_map + held, 12), held)):
            try:
                call()
            except KernelBug as exc:
                text = str(exc)
                msgs.append(("-3" in text or "12" in text,
                             "0..10)" in text or "0..10 " in text or text.endswith("0..10"),
                             exc.pfn == pfn))
        out.append(msgs)
        out.append(_digest(m) == before)
        # order >= MAX_ORDER: NULL, and only the failure reason changes
        for order in (11, 12, 1 << 20):
            m.alloc_failure = None
            before = _digest(m)
            got = pa.alloc_pages(m, K_GFP_KERNEL, order)
            reason = m.alloc_failure
            m.alloc_failure = None
            out.append((got, reason, _digest(m) == before))
        m.alloc_failure = None
        out.append(pa.__get_free_pages(m, K_GFP_KERNEL, 11))
        m.alloc_failure = "untouched"          # a bulk of 0 pages falls short of nothing
        out.append(pa.alloc_pages_bulk(m, K_GFP_KERNEL, 0))
        out.append(m.alloc_failure)
        big = get64()
        page = pa.alloc_pages(big, K_GFP_KERNEL, 10)
        out.append(None if page is None else (page.pfn % 1024, big.page_owner[page.pfn]))
        return out

    def expected():
        return ([("KernelBug", "bad_order")] * 6 + [("KernelBug", "bad_gfp")] * 9
                + [("KernelBug", "bad_count")] * 5 + [("KernelBug", "bad_gfp")] * 3
                + [("KernelBug", "bad_gfp")] * 3
                + [("KernelBug", "bad_order")] * 5              # a free of order >= 11
                + [("KernelBug", "bad_order"), ("KernelBug", "bad_gfp")]
                + [("KernelBug", "highmem_get_free_pages")] * 4
                + [("KernelBug", "bad_gfp")] * 2
                + [[(True, True, True)] * 2]
                + [True] + [(None, "order_too_large", True)] * 3 + [None, [], "untouched", (0, 10)])

    def cpus():
        m = _boot(**dict(TINY, cpus=2))
        before = _digest(m)
        out = []
        calls = [(c, lambda c=c: pa._check_cpu(m, c))
                 for c in (-1, 0, 1, 2, 7, True, "0", None, 1.0)]
        # alloc_pages / alloc_pages_bulk / __get_free_pages on a CPU that is not there
        calls += [(c, lambda c=c: pa.alloc_pages(m, K_GFP_KERNEL, 0, c))
                  for c in (-1, 2, 7, True)]
        calls += [(c, lambda c=c: pa.alloc_pages(m, K_GFP_KERNEL, 3, c)) for c in (-1, 2, 7)]
        calls += [(c, lambda c=c: pa.alloc_pages_bulk(m, K_GFP_KERNEL, 5, c))
                  for c in (-1, 2, 7)]
        calls += [(2, lambda: pa.__get_free_pages(m, K_GFP_KERNEL, 0, 2))]
        for c, call in calls:
            try:
                out.append(("ok", call()))
            except ValueError as exc:               # the message names the value and range
                out.append(("ValueError", repr(c) in str(exc) and "0..1" in str(exc)))
            except Exception as exc:               # noqa: BLE001 - a wrong type fails
                out.append((type(exc).__name__,))
        return out, _digest(m) == before
    return [Fact("alloc misuse: bad order / gfp / count, get_zeroed_page(__GFP_HIGHMEM), "
                 "order >= MAX_ORDER; state unchanged",
                 "mm/page_alloc.c alloc_pages_node (order >= MAX_ORDER), get_zeroed_page "
                 "BUG_ON; include/linux/gfp.h", expected, model),
            Fact("_check_cpu: 0..cpus-1 accepted, -1, 2, 7, True, '0', None, 1.0 refused; "
                 "alloc_pages, alloc_pages_bulk, __get_free_pages refuse CPU -1, 2, 7, True",
                 "the CPU numbers of the machine (cpu_online_map)",
                 lambda: ([("ValueError", True), ("ok", 0), ("ok", 1)]
                          + [("ValueError", True)] * 17,
                          True), cpus)]


def _address_facts() -> list[Fact]:
    """__get_free_pages / __get_free_page / get_zeroed_page return page_address of the
    block alloc_pages gives (2.6.12 mm/page_alloc.c; include/asm-i386/page.h __va =
    pfn << 12 + PAGE_OFFSET 0xC0000000): a low block's direct-map address, 0 for a
    highmem page nobody has kmapped (the block stays allocated), NULL (None) when
    __alloc_pages fails; alloc_page is alloc_pages at order 0. The blocks are the ones
    the campaign oracle's __alloc_pages picks."""
    pa = _pa()
    get = _cached(TINY)
    script = [("__get_free_pages", K_GFP_KERNEL, 0), ("__get_free_pages", K_GFP_KERNEL, 3),
              ("__get_free_page", K_GFP_ATOMIC | K_DMA, 0), ("get_zeroed_page", K_GFP_KERNEL, 0),
              ("get_zeroed_page", K_DMA | K_COLD, 0),
              ("__get_free_pages", K_GFP_KERNEL | K_HIGHMEM, 2),
              ("__get_free_page", K_GFP_KERNEL | K_HIGHMEM, 0), ("alloc_page", K_GFP_KERNEL, 0),
              ("alloc_page", K_GFP_KERNEL | K_HIGHMEM | K_COLD, 0),
              ("__get_free_pages", K_GFP_KERNEL, 7), ("__get_free_pages", K_GFP_KERNEL, 6)]

    def model():
        m = get()
        out = []
        for name, gfp, order in script:
            fn = getattr(pa, name)
            if name == "__get_free_pages":
                r = fn(m, gfp, order)
            elif name == "alloc_page":
                page = fn(m, gfp)
                r = None if page is None else ("page", page.pfn)
            else:
                r = fn(m, gfp)
            out.append(r)
        return out, _oracle().Shadow(m).zones

    def expected():
        m = get()
        ao = _oracle()
        shadow = ao.Shadow(m)
        out = []
        for name, gfp, order in script:
            if name == "get_zeroed_page":
                gfp |= K_ZERO
            pfn, _, _ = ao.alloc_pages(shadow, m, gfp, order, 0)
            if pfn is None:
                out.append(None)
            elif name == "alloc_page":
                out.append(("page", pfn))
            elif pfn >= m.max_low_pfn:              # a highmem frame, not kmapped
                out.append(0)
            else:
                out.append(K_PAGE_OFFSET + (pfn << 12))
        return out, shadow.zones
    get2 = _cached(dict(TINY, cpus=2))
    # each wrapper on CPU 1 of 2 (its own hot list, empty, where CPU 0's holds boot's
    # single DMA frames), alternating with CPU 0
    cpu_script = [("alloc_page", 1), ("__get_free_page", 1), ("get_zeroed_page", 1),
                  ("__get_free_pages", 1), ("alloc_page", 0), ("__get_free_page", 1),
                  ("get_zeroed_page", 0), ("alloc_page", 1)]

    def cpu_model():
        m = get2()
        out = []
        for name, cpu in cpu_script:
            fn = getattr(pa, name)
            if name == "__get_free_pages":
                out.append(fn(m, K_GFP_KERNEL | K_DMA, 0, cpu))
            elif name == "alloc_page":
                out.append(fn(m, K_GFP_KERNEL | K_DMA, cpu).pfn)
            else:
                out.append(fn(m, K_GFP_KERNEL | K_DMA, cpu))
        return out, _oracle().Shadow(m).zones

    def cpu_expected():
        m = get2()
        ao = _oracle()
        shadow = ao.Shadow(m)
        out = []
        for name, cpu in cpu_script:
            pfn, _, _ = ao.alloc_pages(shadow, m, K_GFP_KERNEL | K_DMA, 0, cpu)
            out.append(pfn if name == "alloc_page" else K_PAGE_OFFSET + (pfn << 12))
        return out, shadow.zones
    return [Fact("__get_free_pages / __get_free_page / get_zeroed_page / alloc_page: "
                 "addresses, 0 for highmem, NULL", "mm/page_alloc.c __get_free_pages, "
                 "get_zeroed_page; include/asm-i386/page.h __va", expected, model),
            Fact("alloc_page / __get_free_page(s) / get_zeroed_page on CPU 1 of 2 (DMA)",
                 "mm/page_alloc.c buffered_rmqueue (the calling CPU's pageset)",
                 cpu_expected, cpu_model)]


# --- nr_free_pages, buddyinfo, zoneinfo -----------------------------------------------

def _proc_facts() -> list[Fact]:
    """nr_free_pages (2.6.12: the sum of every zone's free_pages), /proc/buddyinfo
    (nr_free of each order per populated zone) and the /proc/zoneinfo numbers (free,
    present, spanned, start pfn, pages_min/low/high, lowmem_reserve, each CPU's hot and
    cold count/low/high/batch), after boot and after a known sequence of allocations,
    on the three-zone machine and on one whose HighMem zone is empty (left out). The
    expected numbers: the zone layout (arch/i386/mm/init.c zone_sizes_init, the
    max_dma_pfn preset), the marks and batch from the kernel formulas above, the
    counts from the campaign oracle's copy."""
    pa = _pa()
    ao = _oracle()
    cases = [("tiny", TINY, 2), ("tiny, 2 CPUs", dict(TINY, cpus=2), 2),
             ("32 MiB, no HighMem", {"phys_pages": 8192, "highmem_pages": 0}, 1)]
    script = [(K_GFP_KERNEL, 0)] * 40 + [(K_GFP_KERNEL | K_HIGHMEM, 2)] * 10 + \
        [(K_DMA, 1)] * 5 + [(K_GFP_ATOMIC | K_COLD, 0)] * 9

    def layout(kw):
        phys, high = kw["phys_pages"], kw["highmem_pages"]
        dma = min(kw.get("max_dma_pfn", 4096), phys)
        return [("DMA", 0, dma), ("Normal", dma, phys - dma), ("HighMem", phys, high)]

    facts = []
    for label, kw, cpus_ in cases:
        get = _cached(kw)

        def model(get=get):
            m = get()
            out = [(pa.nr_free_pages(m), pa.buddyinfo(m), pa.zoneinfo(m))]
            for gfp, order in script:
                pa.alloc_pages(m, gfp, order)
            out.append((pa.nr_free_pages(m), pa.buddyinfo(m), pa.zoneinfo(m)))
            return out

        def expected(get=get, kw=kw, cpus_=cpus_):
            m = get()
            shadow = ao.Shadow(m)
            zones = layout(kw)
            sizes = [z[2] for z in zones]
            low_kb = (sizes[0] + sizes[1]) * 4
            mfk = min(max(k_int_sqrt(low_kb * 16), 128), 65536)
            marks = k_pages_min([(s, n == "HighMem") for n, _, s in zones], mfk, 12)
            res = k_lowmem_reserve(sizes, [[0] * 3 for _ in range(3)])

            def snap():
                free = {i: z.free_pages for i, z in shadow.zones.items()}
                buddy = {n: [len(lst) for lst in shadow.zones[i].lists]
                         for i, (n, _, s) in enumerate(zones) if s}
                info = {}
                for i, (n, start, size) in enumerate(zones):
                    if not size:
                        continue
                    b = k_batchsize(size, 4096)
                    info[n] = {"free_pages": free[i], "present_pages": size,
                               "spanned_pages": size, "start_pfn": start,
                               "pages_min": marks[i][0], "pages_low": marks[i][1],
                               "pages_high": marks[i][2], "lowmem_reserve": res[i],
                               "pagesets": [{"cpu": c,
                                             "hot": {"count": len(shadow.zones[i].pcp[c, 0]),
                                                     "low": 2 * b, "high": 6 * b, "batch": b},
                                             "cold": {"count": len(shadow.zones[i].pcp[c, 1]),
                                                      "low": 0, "high": 2 * b, "batch": b}}
                                            for c in range(kw.get("cpus", 1))]}
                return sum(free.values()), buddy, info
            out = [snap()]
            for gfp, order in script:
                ao.alloc_pages(shadow, m, gfp, order, 0)
            out.append(snap())
            return out
        facts.append(Fact(f"nr_free_pages, buddyinfo, zoneinfo after boot and 64 "
                          f"allocations: {label}", "mm/page_alloc.c nr_free_pages; "
                          "/proc/buddyinfo (frag_show), /proc/zoneinfo (2.6.13 zoneinfo_show)",
                          expected, model))
    return facts


FACT_GROUPS = [_zone_struct_facts, _sqrt_batch_facts, _marks_facts, _watermark_sweep_facts,
               _alloc_run_facts, _script_facts, _bulk_facts, _misuse_facts, _address_facts,
               _proc_facts]
