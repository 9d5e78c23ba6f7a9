"""The buddy page allocator: zones, free_area[], alloc_pages and __free_pages.

After Linux 2.6.12 mm/page_alloc.c (__rmqueue, expand, __free_pages_bulk,
page_is_buddy, bad_range, __alloc_pages, __free_pages). Each zone keeps MAX_ORDER free
lists; list i holds blocks of 2^i frames whose first frame has PG_buddy set and the
order in `private`. Allocation takes the head of the first non-empty list at or above
the requested order and splits it (`expand`), handing the upper halves back; freeing
merges a block with its buddy `page_idx ^ (1 << order)` (page_idx counted from the
zone's first frame) for as long as the buddy is a free block of the same order in the
same zone.

With page_policy "2.6.12" (the default) __alloc_pages applies the zone watermarks and
lowmem_reserve, and order-0 frames go through per-CPU hot/cold lists (per_cpu_pageset,
buffered_rmqueue, free_hot_cold_page); "buddy" is the bare buddy core. Not modelled
(see spec/buddy.md): reclaim (a __GFP_WAIT caller gets NULL where 2.6.12 would
reclaim), kswapd. Compound pages (__GFP_COMP) as with CONFIG_HUGETLB_PAGE. Each API function follows the same phases: CHECK (misuse raises
KernelBug before anything changes), FIND, SPLIT/MERGE, ACCOUNT, RETURN.
"""

from __future__ import annotations

from array import array
from collections import deque
from math import isqrt

from .addr import page_address, virt_addr_valid, virt_to_page
from .errors import KernelBug
from .gfp import (GFP_VALID_MASK, GFP_ZONEMASK, __GFP_COLD, __GFP_COMP, __GFP_HIGH, __GFP_HIGHMEM, __GFP_WAIT, __GFP_ZERO,
                  check_gfp, gfp_zone)
from .mem_map import NO_ZONE, PG_buddy, PG_compound, PG_reserved, PG_slab, Page

__all__ = [
    "FreeArea", "Zone", "alloc_pages", "alloc_page", "__get_free_pages",
    "__get_free_page", "get_zeroed_page", "__free_pages", "__free_page", "free_pages",
    "free_page", "get_page", "page_is_buddy", "find_block", "nr_free_pages", "buddyinfo",
    "alloc_pages_bulk", "free_pages_bulk", "rmqueue_bulk", "zone_batchsize",
    "setup_per_zone_pages_min", "setup_per_zone_lowmem_reserve", "init_per_zone_pages_min",
    "zone_watermark_ok", "int_sqrt", "zoneinfo", "put_page", "prep_compound_page",
    "drain_local_pages",
]

# include/linux/swap.h (2.6.12): the floor of a highmem zone's pages_min
SWAP_CLUSTER_MAX = 32
# mm/page_alloc.c (2.6.12): sysctl_lowmem_reserve_ratio, one per zone below the top
LOWMEM_RESERVE_RATIO = (256, 32)


class FreeArea:
    """zone->free_area[order]: a list of free blocks (by head pfn) and its length."""

    __slots__ = ("head", "nr_free")

    def __init__(self):
        self.head = -1      # pfn of the first block on free_list, -1 when empty
        self.nr_free = 0    # number of blocks (not frames) on free_list


class PerCpuPages:
    """struct per_cpu_pages (include/linux/mmzone.h, 2.6.12): one hot or cold list of
    order-0 frames of a zone, kept by one CPU. `list` holds pfns, list head first."""

    __slots__ = ("count", "low", "high", "batch", "list")

    def __init__(self, low: int, high: int, batch: int):
        self.count = 0
        self.low = low
        self.high = high
        self.batch = batch
        self.list: deque[int] = deque()

    def __repr__(self):
        return (f"PerCpuPages(count={self.count}, low={self.low}, high={self.high}, "
                f"batch={self.batch})")


class PerCpuPageset:
    """struct per_cpu_pageset: pcp[0] is the hot list, pcp[1] the cold one."""

    __slots__ = ("pcp",)

    def __init__(self, batch: int):
        # free_area_init_core (2.6.12 mm/page_alloc.c): hot low 2*batch, high
        # 6*batch; cold low 0, high 2*batch; both move `batch` frames at a time
        self.pcp = (PerCpuPages(2 * batch, 6 * batch, batch),
                    PerCpuPages(0, 2 * batch, batch))

    def __iter__(self):
        return iter(self.pcp)


class Zone:
    """struct zone: a pfn span with its own free lists (include/linux/mmzone.h)."""

    def __init__(self, index: int, name: str, zone_start_pfn: int, spanned_pages: int,
                 max_order: int, nr_zones: int = 3):
        self.index = index
        self.name = name
        self.zone_start_pfn = zone_start_pfn
        self.spanned_pages = spanned_pages
        # free_area_init_core: the zone size less its holes (the model's zones have no
        # holes: iomem lies between zones, in none), counted before boot frees anything
        self.present_pages = spanned_pages
        self.freed_at_boot = 0          # model bookkeeping: frames boot freed into the zone
        self.free_pages = 0             # frames currently on the free lists
        self.free_area = [FreeArea() for _ in range(max_order)]
        # watermarks and reserves (setup_per_zone_pages_min / _lowmem_reserve)
        self.pages_min = self.pages_low = self.pages_high = 0
        self.lowmem_reserve = [0] * nr_zones
        self.pageset: list[PerCpuPageset] = []

    @property
    def is_highmem(self) -> bool:
        return self.name == "HighMem"

    @property
    def zone_end_pfn(self) -> int:
        return self.zone_start_pfn + self.spanned_pages

    def __repr__(self):
        return (f"Zone({self.name}, pfn {self.zone_start_pfn:#x}-{self.zone_end_pfn:#x}, "
                f"free_pages={self.free_pages})")


# --- zone set-up: watermarks, reserves, per-CPU list sizes --------------------------

def int_sqrt(x: int) -> int:
    """lib/int_sqrt.c: the integer square root, rounded down."""
    return isqrt(x)


def zone_batchsize(zone: Zone, page_size: int) -> int:
    """The per-CPU `batch` free_area_init_core gives a zone (2.6.12 mm/page_alloc.c):
    about a thousandth of the zone, at most 256 KiB worth, divided by 4, at least 1."""
    batch = zone.present_pages // 1024
    if batch * page_size > 256 * 1024:
        batch = (256 * 1024) // page_size
    batch //= 4
    return max(batch, 1)


def setup_per_zone_pages_min(zones: list[Zone], min_free_kbytes: int, page_shift: int) -> None:
    """pages_min/low/high of each zone (2.6.12 mm/page_alloc.c setup_per_zone_pages_min):
    low memory zones share min_free_kbytes in proportion to present_pages; a highmem
    zone takes present/1024 clamped to SWAP_CLUSTER_MAX..128; low = 5/4 min, high = 6/4."""
    pages_min = min_free_kbytes >> (page_shift - 10)
    lowmem_pages = sum(z.present_pages for z in zones if not z.is_highmem)
    for zone in zones:
        if zone.is_highmem:
            zone.pages_min = min(max(zone.present_pages // 1024, SWAP_CLUSTER_MAX), 128)
        else:
            zone.pages_min = (pages_min * zone.present_pages) // lowmem_pages if lowmem_pages else 0
        zone.pages_low = zone.pages_min * 5 // 4
        zone.pages_high = zone.pages_min * 6 // 4


def setup_per_zone_lowmem_reserve(zones: list[Zone]) -> None:
    """lowmem_reserve[] (2.6.12 mm/page_alloc.c setup_per_zone_lowmem_reserve): a zone
    below zone j keeps back (present pages of the zones from it+1 up to j) / ratio."""
    ratios = LOWMEM_RESERVE_RATIO
    for j, zone in enumerate(zones):
        present = zone.present_pages
        zone.lowmem_reserve[j] = 0
        for idx in range(j - 1, -1, -1):
            ratio = max(ratios[idx] if idx < len(ratios) else ratios[-1], 1)
            zones[idx].lowmem_reserve[j] = present // ratio
            present += zones[idx].present_pages


def init_per_zone_pages_min(machine, min_free_kbytes: int | None = None) -> int:
    """2.6.12 mm/page_alloc.c init_per_zone_pages_min: min_free_kbytes = int_sqrt(
    lowmem_kbytes * 16) clamped to 128..65536, where lowmem_kbytes counts the present
    pages of the GFP_USER zonelist (nr_free_buffer_pages; pages_high is still 0 then).
    A value given at boot (the sysctl) replaces the computed one. Returns the value."""
    zones = machine.zones
    if min_free_kbytes is None:
        lowmem_pages = sum(z.present_pages for z in machine.zonelists[1])
        lowmem_kbytes = lowmem_pages * (machine.profile.PAGE_SIZE >> 10)
        min_free_kbytes = min(max(int_sqrt(lowmem_kbytes * 16), 128), 65536)
    machine.min_free_kbytes = min_free_kbytes
    setup_per_zone_pages_min(zones, min_free_kbytes, machine.profile.PAGE_SHIFT)
    setup_per_zone_lowmem_reserve(zones)
    return min_free_kbytes


def zone_watermark_ok(zone: Zone, order: int, mark: int, classzone_idx: int,
                      can_try_harder: bool, gfp_high: bool) -> bool:
    """2.6.12 mm/page_alloc.c zone_watermark_ok: would the zone keep more than `mark`
    (halved for __GFP_HIGH, less a quarter for can_try_harder) plus its lowmem_reserve
    for the requesting zone class free after this allocation, and at each lower order
    more than half the previous mark in blocks of that order or larger?"""
    low = mark
    free_pages = zone.free_pages - (1 << order) + 1
    if gfp_high:
        low -= low // 2
    if can_try_harder:
        low -= low // 4
    if free_pages <= low + zone.lowmem_reserve[classzone_idx]:
        return False
    for o in range(order):
        free_pages -= zone.free_area[o].nr_free << o
        low >>= 1
        if free_pages <= low:
            return False
    return True


def zoneinfo(machine) -> dict[str, dict]:
    """{zone name: watermarks, reserves and per-CPU lists} for each populated zone, as
    /proc/zoneinfo lists them (2.6.13 mm/page_alloc.c zoneinfo_show; 2.6.12 shows the
    same numbers only in the boot log and show_free_areas)."""
    out = {}
    for z in machine.zones:
        if not z.present_pages:
            continue
        out[z.name] = {
            "free_pages": z.free_pages, "present_pages": z.present_pages,
            "spanned_pages": z.spanned_pages, "start_pfn": z.zone_start_pfn,
            "pages_min": z.pages_min, "pages_low": z.pages_low, "pages_high": z.pages_high,
            "lowmem_reserve": list(z.lowmem_reserve),
            "pagesets": [{"cpu": cpu, **{temp: {"count": p.count, "low": p.low,
                                                "high": p.high, "batch": p.batch}
                                         for temp, p in zip(("hot", "cold"), pset.pcp)}}
                         for cpu, pset in enumerate(z.pageset)],
        }
    return out


# --- the free lists (include/linux/list.h on the lru field, by pfn) ---------------

def list_add(mem_map, area: FreeArea, pfn: int) -> None:
    """Put a block at the head of a free list (list_add: LIFO)."""
    head = area.head
    mem_map.lru_next[pfn] = head
    mem_map.lru_prev[pfn] = -1
    if head >= 0:
        mem_map.lru_prev[head] = pfn
    area.head = pfn


def list_del(mem_map, area: FreeArea, pfn: int) -> None:
    """Unlink a block from anywhere in its free list in O(1)."""
    nxt = mem_map.lru_next[pfn]
    prv = mem_map.lru_prev[pfn]
    if prv >= 0:
        mem_map.lru_next[prv] = nxt
    else:
        area.head = nxt
    if nxt >= 0:
        mem_map.lru_prev[nxt] = prv
    mem_map.lru_next[pfn] = -1
    mem_map.lru_prev[pfn] = -1


def free_list(mem_map, area: FreeArea) -> list[int]:
    """The head pfns on a free list, head first (for invariants and /proc output)."""
    out = []
    pfn = area.head
    limit = mem_map.nr_pages
    while pfn >= 0 and len(out) <= limit:
        out.append(pfn)
        pfn = mem_map.lru_next[pfn]
    return out


def set_page_order(mem_map, pfn: int, order: int) -> None:
    mem_map.private[pfn] = order
    mem_map.flags[pfn] |= PG_buddy


def rmv_page_order(mem_map, pfn: int) -> None:
    mem_map.flags[pfn] &= ~PG_buddy
    mem_map.private[pfn] = 0


def page_is_buddy(mem_map, pfn: int, order: int) -> bool:
    """2.6.12 page_is_buddy: head of a free block of this order, not reserved, count 0."""
    f = mem_map.flags[pfn]
    return (f & PG_buddy != 0 and mem_map.private[pfn] == order
            and f & PG_reserved == 0 and mem_map.count[pfn] == 0)


def bad_range(mem_map, zone: Zone, pfn: int) -> bool:
    """2.6.12 bad_range: pfn outside the zone's span, or a frame of another zone."""
    return (pfn < zone.zone_start_pfn or pfn >= zone.zone_start_pfn + zone.spanned_pages
            or mem_map.zone_id[pfn] != zone.index)


# --- allocation ------------------------------------------------------------------

def expand(mem_map, zone: Zone, pfn: int, low: int, high: int) -> int:
    """Split a block of order `high` down to `low`; upper halves go back to the lists."""
    areas = zone.free_area
    size = 1 << high
    while high > low:
        high -= 1
        size >>= 1
        # SPLIT: the upper half becomes a free block of the next lower order
        list_add(mem_map, areas[high], pfn + size)
        areas[high].nr_free += 1
        set_page_order(mem_map, pfn + size, high)
    return pfn


def __rmqueue(mem_map, zone: Zone, order: int) -> int:
    """Take a block of `order` from the zone; its pfn, or -1 if none is free."""
    areas = zone.free_area
    for current_order in range(order, len(areas)):
        area = areas[current_order]
        pfn = area.head
        if pfn < 0:
            continue
        # list_del of the list head and rmv_page_order, inlined: this is the hot path
        nxt = mem_map.lru_next[pfn]
        area.head = nxt
        if nxt >= 0:
            mem_map.lru_prev[nxt] = -1
        mem_map.lru_next[pfn] = -1
        mem_map.flags[pfn] &= ~PG_buddy
        mem_map.private[pfn] = 0
        area.nr_free -= 1
        zone.free_pages -= 1 << order
        if current_order > order:
            expand(mem_map, zone, pfn, order, current_order)
        return pfn
    return -1


def _check_order(order, max_order: int, *, pfn: int | None = None, allow_large: bool) -> None:
    if type(order) is not int or order < 0 or (not allow_large and order >= max_order):
        raise KernelBug("bad_order", f"order {order!r} is not in 0..{max_order - 1}", pfn=pfn)


# gfp_zone() for each value of the zone modifier bits (__GFP_DMA | __GFP_HIGHMEM)
_ZONE_OF_MODIFIER = tuple(gfp_zone(bits) for bits in range(GFP_ZONEMASK + 1))


# include/linux/sched.h (2.6.12): the calling task is freeing memory (reclaim itself)
PF_MEMALLOC = 0x00000800
TASK_FLAG_NAMES = {"PF_MEMALLOC": PF_MEMALLOC}

# Why alloc_pages returned NULL (machine.alloc_failure; spec/buddy.md section 3)
NOPAGE_ORDER = "order_too_large"        # order >= MAX_ORDER
NOPAGE_ATOMIC = "nopage_atomic"         # !__GFP_WAIT: below every watermark, no reclaim
NOPAGE_MEMALLOC = "nopage_memalloc"     # PF_MEMALLOC pass found no block either
NOPAGE_RECLAIM = "would_reclaim"        # __GFP_WAIT: 2.6.12 would reclaim; the model cannot
NOPAGE_EMPTY = "no_free_block"          # page_policy "buddy": no zone has a large block


def buffered_rmqueue(machine, zone: Zone, order: int, gfp_mask: int, cpu: int = 0) -> int:
    """Take a block from the zone for __alloc_pages; its pfn or -1 (2.6.12
    buffered_rmqueue, then prep_new_page). Order 0 comes from the CPU's hot list (cold
    for __GFP_COLD), refilled with `batch` frames from the buddy lists when its count
    is at or below `low`; the list's head is taken."""
    if order == 0 and machine.pcp:
        pcp = zone.pageset[cpu].pcp[1 if gfp_mask & __GFP_COLD else 0]
        if pcp.count <= pcp.low:
            _pcp_refill(machine, zone, pcp, cpu, gfp_mask)
        if pcp.count:
            pfn = pcp.list.popleft()
            pcp.count -= 1
            del machine.pcp_pages[pfn]
            machine.mem_map.count[pfn] = 1
            machine.page_owner[pfn] = 0
            return pfn
    pfn = __rmqueue(machine.mem_map, zone, order)
    if pfn >= 0:
        # ACCOUNT: prep_new_page -- a reference for the caller, order recorded
        machine.mem_map.count[pfn] = 1
        machine.page_owner[pfn] = order
        if order and gfp_mask & __GFP_COMP:
            prep_compound_page(machine, pfn, order)
    return pfn


def prep_compound_page(machine, pfn: int, order: int) -> None:
    """2.6.12 mm/page_alloc.c prep_compound_page (CONFIG_HUGETLB_PAGE): every frame of
    the block gets PG_compound and page->private = the head; page[1].index = order,
    page[1].mapping (the destructor put_page calls) = NULL."""
    flags, private = machine.mem_map.flags, machine.mem_map.private
    for p in range(pfn, pfn + (1 << order)):
        flags[p] |= PG_compound
        private[p] = pfn
    machine.page_index[pfn + 1] = order


def _check_compound(machine, pfn: int, order: int) -> None:
    """destroy_compound_page's checks (2.6.12), before anything changes: page[1].index
    must be the order being freed, and every frame must be PG_compound with its
    private pointing at the head; bad_page() otherwise. An order-0 free of a compound
    head is stricter than the kernel, which would put it on a per-CPU list with
    PG_compound still set."""
    flags, private = machine.mem_map.flags, machine.mem_map.private
    recorded = machine.page_index.get(pfn + 1)
    if order == 0 or recorded != order:
        raise KernelBug("bad_compound", f"destroy_compound_page: page[1].index is "
                        f"{recorded}, the block is freed with order {order}", pfn=pfn)
    for p in range(pfn, pfn + (1 << order)):
        if not flags[p] & PG_compound or private[p] != pfn:
            raise KernelBug("bad_compound", f"destroy_compound_page: frame {p:#x} is not "
                            "a tail of this compound page (PG_compound / private)", pfn=pfn)


def destroy_compound_page(machine, pfn: int, order: int) -> None:
    flags, private = machine.mem_map.flags, machine.mem_map.private
    for p in range(pfn, pfn + (1 << order)):
        flags[p] &= ~PG_compound
        private[p] = 0
    del machine.page_index[pfn + 1]


def _pcp_refill(machine, zone: Zone, pcp: PerCpuPages, cpu: int, gfp_mask: int) -> None:
    """rmqueue_bulk(zone, 0, pcp->batch, &pcp->list): `batch` frames (fewer if the
    zone runs dry) added at the tail of the list, in the order __rmqueue gives them."""
    got: list[int] = []
    rmqueue_bulk(machine, zone, pcp.batch, got, prep=False)
    pcp.list.extend(got)
    pcp.count += len(got)
    where = 2 * cpu + (1 if gfp_mask & __GFP_COLD else 0)
    machine.pcp_pages.update(dict.fromkeys(got, where))


def _pcp_free_bulk(machine, zone: Zone, pcp: PerCpuPages, count: int) -> int:
    """free_pages_bulk(zone, count, &pcp->list, 0) (2.6.12): up to `count` frames
    taken from the list's tail, each merged back by __free_pages_bulk. Returns how
    many; the caller lowers pcp->count."""
    mem_map, lst, pcp_pages = machine.mem_map, pcp.list, machine.pcp_pages
    max_order = machine.profile.MAX_ORDER
    n = 0
    while lst and n < count:
        pfn = lst.pop()
        del pcp_pages[pfn]
        __free_pages_bulk(mem_map, zone, pfn, 0, max_order)
        n += 1
    return n


def free_hot_cold_page(machine, pfn: int, cold: int = 0, cpu: int = 0) -> None:
    """2.6.12 free_hot_cold_page for a frame whose last reference is gone: when the
    CPU's list is at `high`, `batch` frames go back to the buddy lists from its tail
    first; the frame goes on the head of the list."""
    zone = machine.zones[machine.mem_map.zone_id[pfn]]
    pcp = zone.pageset[cpu].pcp[cold]
    if pcp.count >= pcp.high:
        pcp.count -= _pcp_free_bulk(machine, zone, pcp, pcp.batch)
    pcp.list.appendleft(pfn)
    pcp.count += 1
    machine.pcp_pages[pfn] = 2 * cpu + cold


def __drain_pages(machine, cpu: int) -> None:
    """2.6.12 __drain_pages: every frame on the CPU's hot and cold lists of every zone
    goes back to the buddy lists (tail first). Run by drain_local_pages and, for a
    CPU going down, by page_alloc_cpu_notify(CPU_DEAD)."""
    _check_cpu(machine, cpu)
    for zone in machine.zones:
        if not zone.pageset:
            continue
        for pcp in zone.pageset[cpu].pcp:
            pcp.count -= _pcp_free_bulk(machine, zone, pcp, pcp.count)


def drain_local_pages(machine, cpu: int = 0) -> None:
    """2.6.12 drain_local_pages: __drain_pages of the calling CPU."""
    __drain_pages(machine, cpu)


def _check_cpu(machine, cpu) -> int:
    if type(cpu) is not int or not 0 <= cpu < machine.cpus:
        raise ValueError(f"cpu {cpu!r} is not a CPU of this machine (0..{machine.cpus - 1})")
    return cpu


def alloc_pages(machine, gfp_mask: int, order: int, cpu: int = 0) -> Page | None:
    """Allocate 2^order contiguous frames; the first page, or None (NULL) on failure.

    2.6.12 mm/page_alloc.c __alloc_pages: a pass over the zonelist at each zone's
    pages_low, a second at pages_min (easier for __GFP_HIGH and for callers that cannot
    sleep), a third ignoring watermarks for a PF_MEMALLOC task; then an atomic caller
    gets NULL, and a sleeping one would reclaim -- which the model does not do: it
    returns NULL with machine.alloc_failure = "would_reclaim" (spec/buddy.md)."""
    # CHECK
    if type(order) is not int or order < 0:
        _check_order(order, machine.profile.MAX_ORDER, allow_large=True)
    if type(gfp_mask) is not int or gfp_mask < 0 or gfp_mask & ~GFP_VALID_MASK:
        check_gfp(gfp_mask)
    if type(cpu) is not int or not 0 <= cpu < machine.cpus:
        _check_cpu(machine, cpu)
    if order >= machine.profile.MAX_ORDER:
        # 2.6.12 alloc_pages_node: "if (unlikely(order >= MAX_ORDER)) return NULL"
        machine.alloc_failure = NOPAGE_ORDER
        return None
    zonelist = machine.zonelists[_ZONE_OF_MODIFIER[gfp_mask & GFP_ZONEMASK]]
    if not machine.watermarks:
        # page_policy "buddy": the first zone with a block answers (no watermarks)
        for zone in zonelist:
            pfn = buffered_rmqueue(machine, zone, order, gfp_mask, cpu)
            if pfn >= 0:
                return Page(machine.mem_map, pfn)
        machine.alloc_failure = NOPAGE_EMPTY
        return None
    if not zonelist:
        machine.alloc_failure = _nopage_reason(machine, gfp_mask)
        return None
    classzone_idx = zonelist[0].index
    # FIND: first pass at pages_low (zone_watermark_ok(z, order, pages_low, classzone,
    # 0, 0), inlined: this is the hot path)
    for zone in zonelist:
        free = zone.free_pages - (1 << order) + 1
        mark = zone.pages_low
        if free <= mark + zone.lowmem_reserve[classzone_idx]:
            continue
        if order:
            areas = zone.free_area
            for o in range(order):
                free -= areas[o].nr_free << o
                mark >>= 1
                if free <= mark:
                    break
            if free <= mark:                  # the per-order loop failed
                continue
        if order == 0 and machine.pcp:
            pfn = buffered_rmqueue(machine, zone, 0, gfp_mask, cpu)
        else:                                         # buffered_rmqueue, order > 0
            pfn = __rmqueue(machine.mem_map, zone, order)
            if pfn >= 0:
                machine.mem_map.count[pfn] = 1        # prep_new_page
                machine.page_owner[pfn] = order
                if order and gfp_mask & __GFP_COMP:
                    prep_compound_page(machine, pfn, order)
        if pfn >= 0:
            return Page(machine.mem_map, pfn)
    # (wakeup_kswapd: no kswapd in the model) second pass at pages_min
    wait = gfp_mask & __GFP_WAIT
    # the current task is never realtime and never in interrupt context in the model
    can_try_harder = not wait
    gfp_high = bool(gfp_mask & __GFP_HIGH)
    for zone in zonelist:
        if zone_watermark_ok(zone, order, zone.pages_min, classzone_idx, can_try_harder,
                             gfp_high):
            pfn = buffered_rmqueue(machine, zone, order, gfp_mask, cpu)
            if pfn >= 0:
                return Page(machine.mem_map, pfn)
    if machine.current_flags & PF_MEMALLOC:
        # the allocation frees memory: go through the zonelist ignoring the watermarks
        for zone in zonelist:
            pfn = buffered_rmqueue(machine, zone, order, gfp_mask, cpu)
            if pfn >= 0:
                return Page(machine.mem_map, pfn)
    machine.alloc_failure = _nopage_reason(machine, gfp_mask)
    return None


def alloc_page(machine, gfp_mask: int, cpu: int = 0) -> Page | None:
    return alloc_pages(machine, gfp_mask, 0, cpu)


_CLEAR_BUDDY = bytes(b & ~PG_buddy for b in range(256))   # flags byte -> without PG_buddy


def _zeros(n: int) -> array:
    return array("i", bytes(4 * n))


def _ones(n: int) -> array:
    return array("i", [1]) * n


def _minus_ones(n: int) -> array:
    return array("i", [-1]) * n


def rmqueue_bulk(machine, zone: Zone, count: int, taken, prep: bool = True) -> None:
    """Append up to `count` order-0 frames of the zone to `taken`, exactly as `count`
    calls of __rmqueue(zone, 0) followed by prep_new_page would hand them out
    (prep False: as __rmqueue leaves them -- unreferenced, for a per-CPU list).

    2.6.12 mm/page_alloc.c rmqueue_bulk (which refills the per-CPU lists) is that loop
    under one lock; the model computes its outcome in one pass per block, because the
    sequence is determined: __rmqueue takes the head B of the first non-empty list j,
    and the lists below j are empty, so the next 2^j - 1 calls take B+1, B+2, ... from
    the pieces `expand` handed back -- the frames of B in ascending order. If fewer than
    2^j are wanted, what stays free is [B + m, B + 2^j) cut into its aligned blocks,
    one per order below j, each alone on its list (tests/test_page_bulk.py checks the
    whole state against the one-at-a-time loop).
    """
    mem_map = machine.mem_map
    flags, private, count_ = mem_map.flags, mem_map.private, mem_map.count
    lru_next, lru_prev = mem_map.lru_next, mem_map.lru_prev
    owner = machine.page_owner
    areas = zone.free_area
    while count > 0:
        for j, area in enumerate(areas):
            if area.head >= 0:
                break
        else:
            return                               # the zone is empty
        block = area.head
        nxt = lru_next[block]
        area.head = nxt
        if nxt >= 0:
            lru_prev[nxt] = -1
        area.nr_free -= 1
        size = 1 << j
        m = size if size <= count else count
        # the frames as rmqueue + prep_new_page leave them, written a slice at a time
        end = block + m
        flags[block:end] = flags[block:end].translate(_CLEAR_BUDDY)
        private[block:end] = _zeros(m)
        lru_next[block:end] = lru_prev[block:end] = _minus_ones(m)
        frames = range(block, end)
        if prep:
            count_[block:end] = _ones(m)
            owner.update(dict.fromkeys(frames, 0))
        taken.extend(frames)
        zone.free_pages -= m
        count -= m
        rest = m
        while rest < size:                       # the pieces expand left free: each
            piece = rest & -rest                 # the largest aligned block at `rest`,
            order = piece.bit_length() - 1       # alone on its (empty) list
            head = block + rest
            private[head] = order
            flags[head] |= PG_buddy
            lru_next[head] = lru_prev[head] = -1
            areas[order].head = head
            areas[order].nr_free += 1
            rest += piece


def alloc_pages_bulk(machine, gfp_mask: int, nr_pages: int, cpu: int = 0) -> list[int]:
    """The pfns of up to nr_pages order-0 frames: what nr_pages calls of alloc_page
    would return (stopping at the first NULL), with the same resulting state.

    Named after Linux 5.13+ alloc_pages_bulk, which vmalloc uses from 5.13 on; here
    it is a faster way to compute 2.6.12's alloc_page loop. No frame is freed while
    the loop runs, so each zone's free count only falls: __alloc_pages' passes are
    used up in order -- every zone down to its pages_low mark, then every zone down to
    its (lowered) pages_min mark, then for a PF_MEMALLOC task every zone to empty --
    and a zone that returns NULL stays dry."""
    if type(gfp_mask) is not int or gfp_mask < 0 or gfp_mask & ~GFP_VALID_MASK:
        check_gfp(gfp_mask)
    if type(nr_pages) is not int or nr_pages < 0:
        raise KernelBug("bad_count", f"nr_pages {nr_pages!r} is not a count")
    _check_cpu(machine, cpu)
    taken: list[int] = []
    zonelist = machine.zonelists[_ZONE_OF_MODIFIER[gfp_mask & GFP_ZONEMASK]]
    for zone, floor in _order0_passes(machine, gfp_mask, zonelist):
        if len(taken) >= nr_pages:
            break
        if not machine.pcp:
            want = nr_pages - len(taken)
            if floor is not None:
                want = min(want, zone.free_pages - floor)
            if want > 0:
                rmqueue_bulk(machine, zone, want, taken)
            continue
        _pcp_take(machine, zone, floor, gfp_mask, cpu, nr_pages, taken)
    if len(taken) < nr_pages:
        machine.alloc_failure = _nopage_reason(machine, gfp_mask)
    return taken


def _pcp_take(machine, zone: Zone, floor: int | None, gfp_mask: int, cpu: int,
              nr_pages: int, taken: list[int]) -> None:
    """The alloc_page calls this zone answers in one pass of the loop: while its
    free_pages stays above `floor` (it only changes when the list is refilled) and
    buffered_rmqueue finds a frame, frames come off the head of the CPU's list."""
    pcp = zone.pageset[cpu].pcp[1 if gfp_mask & __GFP_COLD else 0]
    owner, count, pcp_pages = machine.page_owner, machine.mem_map.count, machine.pcp_pages
    lst = pcp.list
    while len(taken) < nr_pages and (floor is None or zone.free_pages > floor):
        if pcp.count <= pcp.low:
            _pcp_refill(machine, zone, pcp, cpu, gfp_mask)
            k = 1 if pcp.count else 0
        else:
            k = pcp.count - pcp.low
        k = min(k, nr_pages - len(taken))
        if k == 0:
            return                                    # the zone is dry
        for _ in range(k):
            pfn = lst.popleft()
            del pcp_pages[pfn]
            count[pfn] = 1
            owner[pfn] = 0
            taken.append(pfn)
        pcp.count -= k


def _order0_passes(machine, gfp_mask: int, zonelist: list[Zone]):
    """(zone, floor) in the order __alloc_pages tries them for an order-0 request: the
    zone serves while zone.free_pages > floor (zone_watermark_ok at order 0); floor
    None: no watermark (page_policy "buddy", or the PF_MEMALLOC pass)."""
    if not machine.watermarks:
        return [(zone, None) for zone in zonelist]
    if not zonelist:
        return []
    classzone_idx = zonelist[0].index
    can_try_harder = not gfp_mask & __GFP_WAIT
    gfp_high = bool(gfp_mask & __GFP_HIGH)
    out = [(z, z.pages_low + z.lowmem_reserve[classzone_idx]) for z in zonelist]
    for z in zonelist:
        mark = z.pages_min
        if gfp_high:
            mark -= mark // 2
        if can_try_harder:
            mark -= mark // 4
        out.append((z, mark + z.lowmem_reserve[classzone_idx]))
    if machine.current_flags & PF_MEMALLOC:
        out.extend((z, None) for z in zonelist)
    return out


def _nopage_reason(machine, gfp_mask: int) -> str:
    if not machine.watermarks:
        return NOPAGE_EMPTY
    if machine.current_flags & PF_MEMALLOC:
        return NOPAGE_MEMALLOC
    return NOPAGE_RECLAIM if gfp_mask & __GFP_WAIT else NOPAGE_ATOMIC


def __get_free_pages(machine, gfp_mask: int, order: int, cpu: int = 0) -> int | None:
    """alloc_pages, returning the block's kernel virtual address (None for NULL).

    2.6.12 mm/page_alloc.c __get_free_pages has no check for __GFP_HIGHMEM: it returns
    page_address(page), which is 0 for a highmem page nobody has kmapped -- the block
    stays allocated with no address to free it by (a leak the caller made)."""
    check_gfp(gfp_mask)
    page = alloc_pages(machine, gfp_mask, order, cpu)
    if page is None:
        return None
    addr = page_address(machine, page)
    return 0 if addr is None else addr


def __get_free_page(machine, gfp_mask: int, cpu: int = 0) -> int | None:
    return __get_free_pages(machine, gfp_mask, 0, cpu)


def get_zeroed_page(machine, gfp_mask: int, cpu: int = 0) -> int | None:
    """A zeroed low-memory page. Page contents are not modelled: as __get_free_page."""
    check_gfp(gfp_mask)
    if gfp_mask & __GFP_HIGHMEM:
        # 2.6.12 mm/page_alloc.c get_zeroed_page: BUG_ON(gfp_mask & __GFP_HIGHMEM) -- a
        # 32-bit address cannot name a highmem page
        raise KernelBug("highmem_get_free_pages",
                        "get_zeroed_page cannot return highmem (no permanent address)")
    return __get_free_pages(machine, gfp_mask | __GFP_ZERO, 0, cpu)


# --- freeing ---------------------------------------------------------------------

def find_block(machine, pfn: int) -> tuple[str, int, int] | None:
    """The block holding `pfn`: ("free"|"allocated", head pfn, order), or None.

    Used to explain misuse precisely; walks up the aligned heads, O(MAX_ORDER).
    """
    mem_map = machine.mem_map
    zid = mem_map.zone_id[pfn]
    if zid == NO_ZONE:
        return None
    base = machine.zones[zid].zone_start_pfn
    idx = pfn - base
    for order in range(machine.profile.MAX_ORDER):
        head = base + (idx & ~((1 << order) - 1))
        if mem_map.flags[head] & PG_buddy and mem_map.private[head] >= order \
                and head + (1 << mem_map.private[head]) > pfn:
            return ("free", head, mem_map.private[head])
        owned = machine.page_owner.get(head)
        if owned is not None and head + (1 << owned) > pfn:
            return ("allocated", head, owned)
    return None


def _page_pfn(machine, page) -> int:
    """The pfn of a page handle given to the kernel API, checking it is ours."""
    if not isinstance(page, Page):
        raise KernelBug("bad_page", f"{page!r} is not a struct page")
    if page.mem_map is not machine.mem_map:
        raise KernelBug("foreign_page", "page belongs to another machine's mem_map",
                        pfn=page.pfn)
    if not machine.mem_map.pfn_valid(page.pfn):
        raise KernelBug("bad_pfn", f"pfn beyond mem_map ({machine.mem_map.nr_pages} frames)",
                        pfn=page.pfn)
    return page.pfn


def _check_free(machine, pfn: int, order: int) -> None:
    """Every way a __free_pages call can be misuse; raises before any change."""
    mem_map = machine.mem_map
    _check_order(order, machine.profile.MAX_ORDER, pfn=pfn, allow_large=False)
    if mem_map.flags[pfn] & PG_reserved:
        # 2.6.12 __free_pages silently ignores reserved pages; the spec calls it misuse.
        raise KernelBug("free_reserved", "frame is reserved and was never allocated", pfn=pfn)
    if mem_map.flags[pfn] & PG_slab:
        # 2.6.12 free_pages_check: PG_slab still set -> bad_page(); slab pages go back
        # through the slab allocator (kmem_cache_shrink / slab_destroy).
        raise KernelBug("free_slab_page", "frame belongs to a slab; free its objects "
                        "through the slab allocator", pfn=pfn)
    zone = machine.zones[mem_map.zone_id[pfn]]
    if (pfn - zone.zone_start_pfn) & ((1 << order) - 1):
        # __free_pages_bulk: BUG_ON(page_idx & (order_size - 1))
        raise KernelBug("misaligned_free",
                        f"pfn is not aligned to order {order} within zone {zone.name}", pfn=pfn)
    _check_not_kmapped(machine, pfn)
    owned = machine.page_owner.get(pfn)
    if owned is None and pfn in machine.pcp_pages:
        cpu, cold = divmod(machine.pcp_pages[pfn], 2)
        raise KernelBug("double_free", f"frame is already free, on CPU {cpu}'s "
                        f"{'cold' if cold else 'hot'} list", pfn=pfn)
    if owned is None:
        where = find_block(machine, pfn)
        if where is not None and where[0] == "free":
            raise KernelBug("double_free",
                            f"frame is already free (in a free block of order {where[2]} "
                            f"at pfn {where[1]:#x})", pfn=pfn)
        if where is not None:
            raise KernelBug("not_block_head",
                            f"frame is inside the order-{where[2]} block allocated at pfn "
                            f"{where[1]:#x}, not its first page", pfn=pfn)
        raise KernelBug("not_allocated", "frame was never allocated", pfn=pfn)
    if owned != order:
        raise KernelBug("wrong_order",
                        f"block was allocated with order {owned}, freed with order {order}",
                        pfn=pfn)


def _check_not_kmapped(machine, pfn: int) -> None:
    """A highmem frame still kmapped by someone (pkmap_count > 1) must not be freed:
    the users' mapping would point at a frame the allocator hands out again. 2.6.12
    leaves this to the caller; the spec calls it misuse. A slot whose users are all
    gone (count 1, not yet flushed) is no obstacle: kmap_high reuses or flushes it."""
    vaddr = machine.page_address_htable.get(pfn)
    if vaddr is not None and machine.pkmap_count[(vaddr - machine.pkmap_base) >> 12] > 1:
        raise KernelBug("free_kmapped", f"frame is still kmapped at {vaddr:#x} "
                        f"(pkmap_count {machine.pkmap_count[(vaddr - machine.pkmap_base) >> 12]}); "
                        "kunmap it first", pfn=pfn)


def __free_pages_bulk(mem_map, zone: Zone, pfn: int, order: int, max_order: int) -> None:
    """Put a block back and merge it with its buddies (2.6.12 __free_pages_bulk)."""
    base = zone.zone_start_pfn
    end = base + zone.spanned_pages
    zone_index = zone.index
    areas = zone.free_area
    flags, private, count, zone_id = mem_map.flags, mem_map.private, mem_map.count, mem_map.zone_id
    lru_next, lru_prev = mem_map.lru_next, mem_map.lru_prev
    page_idx = pfn - base
    zone.free_pages += 1 << order
    # MERGE
    while order < max_order - 1:
        buddy_idx = page_idx ^ (1 << order)
        buddy = base + buddy_idx
        if buddy >= end or zone_id[buddy] != zone_index:       # bad_range
            break
        f = flags[buddy]
        if not (f & PG_buddy and private[buddy] == order        # page_is_buddy
                and not f & PG_reserved and count[buddy] == 0):
            break
        # list_del and rmv_page_order, inlined
        nxt, prv = lru_next[buddy], lru_prev[buddy]
        if prv >= 0:
            lru_next[prv] = nxt
        else:
            areas[order].head = nxt
        if nxt >= 0:
            lru_prev[nxt] = prv
        lru_next[buddy] = lru_prev[buddy] = -1
        areas[order].nr_free -= 1
        flags[buddy] = f & ~PG_buddy
        private[buddy] = 0
        page_idx &= buddy_idx
        order += 1
    # ACCOUNT: set_page_order and list_add, inlined for the hot path
    coalesced = base + page_idx
    private[coalesced] = order
    flags[coalesced] |= PG_buddy
    area = areas[order]
    head = area.head
    lru_next[coalesced] = head
    lru_prev[coalesced] = -1
    if head >= 0:
        lru_prev[head] = coalesced
    area.head = coalesced
    area.nr_free += 1


def __free_pages(machine, page: Page, order: int, cpu: int = 0) -> None:
    """Drop a reference to a block; free it into the buddy lists when it was the last."""
    # CHECK: a block handed out with this order is the only thing that may be freed;
    # anything else is diagnosed (and raised) by _check_free.
    if type(page) is not Page or page.mem_map is not machine.mem_map:
        _page_pfn(machine, page)
    pfn = page.pfn
    compound = 0 <= pfn < machine.mem_map.nr_pages and machine.mem_map.flags[pfn] & PG_compound
    if compound and type(order) is int:
        _check_compound(machine, pfn, order)
    if (machine.page_owner.get(pfn, -1) != order or type(order) is not int
            or machine.mem_map.flags[pfn] & PG_slab or pfn in machine.page_address_htable):
        _check_free(machine, _page_pfn(machine, page), order)
        if pfn not in machine.page_address_htable:
            raise AssertionError("_check_free let a misuse through")   # unreachable
    mem_map = machine.mem_map
    # put_page_testzero: only the last reference frees the block
    if mem_map.count[pfn] > 1:
        mem_map.count[pfn] -= 1
        return
    mem_map.count[pfn] = 0
    del machine.page_owner[pfn]
    if order == 0 and machine.pcp:
        free_hot_cold_page(machine, pfn, 0, cpu)          # free_hot_page
        return
    if compound:
        destroy_compound_page(machine, pfn, order)        # in __free_pages_bulk
    __free_pages_bulk(mem_map, machine.zones[mem_map.zone_id[pfn]], pfn, order,
                      machine.profile.MAX_ORDER)


def put_page(machine, page: Page, cpu: int = 0) -> None:
    """2.6.12 mm/swap.c put_page (CONFIG_HUGETLB_PAGE): for a frame of a compound page,
    drop a reference on the head; at zero it calls page[1].mapping as the destructor,
    which prep_compound_page left NULL (only hugetlb sets one) -- an oops, raised here
    as `compound_no_dtor` with nothing changed. Any other page: put_page_testzero and
    __page_cache_release -> free_hot_page, which frees one frame; the model requires
    an order-0 block there (stricter than the kernel, which would leak the rest)."""
    pfn = _page_pfn(machine, page)
    mem_map = machine.mem_map
    if mem_map.flags[pfn] & PG_compound:
        head = mem_map.private[pfn]
        if mem_map.count[head] <= 1:
            raise KernelBug("compound_no_dtor", "the last put_page of a compound page calls "
                            "page[1].mapping, which is NULL for a __GFP_COMP block; free it "
                            "with __free_pages", pfn=head)
        mem_map.count[head] -= 1
        return
    order = machine.page_owner.get(pfn)
    if order is not None and order > 0 and mem_map.count[pfn] <= 1:
        raise KernelBug("put_page_high_order", f"the last put_page frees one frame, the "
                        f"block has order {order}; free it with __free_pages", pfn=pfn)
    __free_pages(machine, page, 0 if order is None else order, cpu)


def __free_page(machine, page: Page, cpu: int = 0) -> None:
    __free_pages(machine, page, 0, cpu)


def free_pages_bulk(machine, pfns: list[int], cpu: int = 0) -> None:
    """__free_page on each frame of `pfns`, in that order, with the same resulting state.

    2.6.12 mm/page_alloc.c free_pages_bulk frees a list of blocks with
    __free_pages_bulk each. The model frees a run of frames B, B+1, ..., B+2^j-1
    (zone-aligned, each an order-0 block with one reference) as one order-j block:
    freeing them one by one in ascending order merges each with the sibling freed
    just before it, and every block pushed on a list on the way is taken off again
    before anything else is pushed there, so only the final merge from order j on
    leaves a trace (tests/test_page_bulk.py checks the whole state against the loop).
    All frames are checked before anything changes.
    """
    mem_map = machine.mem_map
    owner = machine.page_owner
    flags, count = mem_map.flags, mem_map.count
    n = len(pfns)
    if machine.pcp:
        _free_hot_pages(machine, pfns, cpu)
        return
    if n and _free_consecutive(machine, pfns):
        return
    busy = PG_slab | PG_reserved | PG_buddy
    htable = machine.page_address_htable
    for pfn in pfns:                                  # CHECK, as __free_page would
        if owner.get(pfn, -1) != 0 or flags[pfn] & PG_slab or pfn in htable:
            _check_free(machine, pfn, 0)
    if len(set(pfns)) != len(pfns):
        seen: set[int] = set()
        dup = next(p for p in pfns if p in seen or seen.add(p))
        raise KernelBug("double_free", "frame is listed twice in one bulk free", pfn=dup)
    zones, zone_id, max_order = machine.zones, mem_map.zone_id, machine.profile.MAX_ORDER
    i = 0
    while i < n:
        pfn = pfns[i]
        if count[pfn] > 1:                            # put_page_testzero: not the last
            count[pfn] -= 1
            i += 1
            continue
        zone = zones[zone_id[pfn]]
        idx = pfn - zone.zone_start_pfn
        order = 0
        # FIND the longest aligned run pfn, pfn+1, ... of single-reference frames
        while order < max_order - 1:
            half = 1 << order
            if idx & (2 * half - 1) or i + 2 * half > n:
                break
            for k in range(i + half, i + 2 * half):
                q = pfns[k]
                if (q != pfn + k - i or count[q] != 1 or flags[q] & busy
                        or zone_id[q] != zone.index):
                    break
            else:
                order += 1
                continue
            break
        size = 1 << order
        for q in range(pfn, pfn + size):
            count[q] = 0
            del owner[q]
        __free_pages_bulk(mem_map, zone, pfn, order, max_order)
        i += size


def _free_hot_pages(machine, pfns: list[int], cpu: int) -> None:
    """__free_page on each frame in order, with the per-CPU lists: every frame is
    checked first; a frame whose last reference goes is put on its zone's hot list by
    free_hot_cold_page, frames between two drains at a time."""
    owner, flags, count = machine.page_owner, machine.mem_map.flags, machine.mem_map.count
    htable = machine.page_address_htable
    for pfn in pfns:                                  # CHECK, as __free_page would
        if owner.get(pfn, -1) != 0 or flags[pfn] & PG_slab or pfn in htable:
            _check_free(machine, pfn, 0)
    if len(set(pfns)) != len(pfns):
        seen: set[int] = set()
        dup = next(p for p in pfns if p in seen or seen.add(p))
        raise KernelBug("double_free", "frame is listed twice in one bulk free", pfn=dup)
    zone_id, zones, pcp_pages = machine.mem_map.zone_id, machine.zones, machine.pcp_pages
    where = 2 * cpu
    i, n = 0, len(pfns)
    while i < n:
        pfn = pfns[i]
        if count[pfn] > 1:                            # put_page_testzero: not the last
            count[pfn] -= 1
            i += 1
            continue
        zid = zone_id[pfn]
        pcp = zones[zid].pageset[cpu].pcp[0]
        if pcp.count >= pcp.high:
            pcp.count -= _pcp_free_bulk(machine, zones[zid], pcp, pcp.batch)
        # the frames up to the list's high mark, while they stay in this zone and
        # are last references, go on the head one after the other
        j, room = i, pcp.high - pcp.count
        while j < n and j - i < max(room, 1) and zone_id[pfns[j]] == zid \
                and count[pfns[j]] == 1:
            j += 1
        run = pfns[i:j]
        for q in run:
            count[q] = 0
            del owner[q]
        pcp.list.extendleft(run)
        pcp.count += len(run)
        pcp_pages.update(dict.fromkeys(run, where))
        i = j


# flag bytes a single-reference allocated frame may carry
_FREEABLE_FLAGS = bytes(b for b in range(256) if not b & (PG_slab | PG_reserved | PG_buddy))


def _free_consecutive(machine, pfns: list[int]) -> bool:
    """free_pages_bulk's common case, checked with whole-slice operations: the frames
    are first, first+1, ..., all order-0 blocks with one reference in one zone. Frees
    them as the zone-aligned blocks that cover the run, lowest first; False (nothing
    changed) when the case does not apply."""
    mem_map = machine.mem_map
    first, n = pfns[0], len(pfns)
    end = first + n
    zone_index = mem_map.zone_id[first] if 0 <= first < mem_map.nr_pages else NO_ZONE
    if (zone_index == NO_ZONE or end > mem_map.nr_pages or pfns != list(range(first, end))
            or not machine.page_address_htable.keys().isdisjoint(pfns)
            or list(map(machine.page_owner.get, pfns)) != [0] * n
            or mem_map.flags[first:end].translate(None, _FREEABLE_FLAGS)
            or mem_map.count[first:end] != _ones(n)
            or mem_map.zone_id[first:end].count(zone_index) != n):
        return False
    owner = machine.page_owner
    for pfn in pfns:
        del owner[pfn]
    mem_map.count[first:end] = _zeros(n)
    zone = machine.zones[zone_index]
    base, top = zone.zone_start_pfn, machine.profile.MAX_ORDER
    pfn = first
    while pfn < end:
        idx, order = pfn - base, 0
        while (order < top - 1 and not idx & ((2 << order) - 1)
               and pfn + (2 << order) <= end):
            order += 1
        __free_pages_bulk(mem_map, zone, pfn, order, top)
        pfn += 1 << order
    return True


def free_pages(machine, addr: int, order: int, cpu: int = 0) -> None:
    """Free by kernel virtual address; address 0 (NULL) is ignored, as in the kernel."""
    if addr == 0 or addr is None:
        return
    if not virt_addr_valid(machine, addr):
        # 2.6.12 free_pages: BUG_ON(!virt_addr_valid(addr)); an address that is not an
        # integer is named in the message (KernelBug formats addr= as hex)
        if type(addr) is int:
            raise KernelBug("bad_address", "not a direct-mapped kernel address", addr=addr)
        raise KernelBug("bad_address", f"{addr!r} is not a direct-mapped kernel address")
    __free_pages(machine, virt_to_page(machine, addr), order, cpu)


def free_page(machine, addr: int, cpu: int = 0) -> None:
    free_pages(machine, addr, 0, cpu)


def get_page(machine, page: Page) -> None:
    """Take an extra reference on an allocated block (include/linux/mm.h get_page)."""
    pfn = _page_pfn(machine, page)
    if machine.mem_map.flags[pfn] & PG_compound:
        pfn = machine.mem_map.private[pfn]          # get_page: the head's count
    if pfn not in machine.page_owner:
        raise KernelBug("get_page_unallocated", "reference taken on a frame that is not "
                        "the first page of an allocated block", pfn=pfn)
    machine.mem_map.count[pfn] += 1


# --- statistics ------------------------------------------------------------------

def nr_free_pages(machine) -> int:
    return sum(z.free_pages for z in machine.zones)


def buddyinfo(machine) -> dict[str, list[int]]:
    """{zone name: nr_free per order}, for every populated zone (as /proc/buddyinfo)."""
    return {z.name: [a.nr_free for a in z.free_area] for z in machine.zones if z.spanned_pages}
