"""An independent oracle for 2.6.12's page policy: __alloc_pages' watermark passes, the
per-CPU hot and cold lists, and the buddy lists they move frames to and from.

Nothing here calls the model's allocator: a `Shadow` copies the state the kernel keeps
(each zone's free lists in list order, free_pages, each CPU's hot and cold lists), the
functions below apply a call to the copy as Linux 2.6.12 mm/page_alloc.c does, and the
campaign compares the copy with the model's state after the model ran the same call.
Written from torvalds/linux 1da177e4c3f41524e886b7f1b8a0c1fc7321cac2:

- zone_watermark_ok: free = free_pages - 2^order + 1; min = mark, halved (rounding up
  what stays) for __GFP_HIGH, less a quarter for can_try_harder; fail if free <= min +
  lowmem_reserve[classzone]; then for each order o below the request, drop the frames
  in blocks of order o, halve min, fail if free <= min.
- __alloc_pages: classzone = the first zone of the zonelist; pass 1 at pages_low with
  neither easing; pass 2 at pages_min with can_try_harder = !__GFP_WAIT (the model's
  task is never realtime) and __GFP_HIGH; pass 3 for a PF_MEMALLOC task with no
  watermark; then NULL (a sleeping caller would reclaim: the model stops there).
- buffered_rmqueue: order 0 uses pageset[cpu].pcp[cold]; when count <= low,
  rmqueue_bulk adds up to `batch` frames from __rmqueue at the list's tail
  (list_add_tail); the frame handed out is the list's head (pcp->list.next). If the list
  is still empty, or order > 0, __rmqueue answers.
- __rmqueue / expand: the head of the first non-empty free list at or above the order;
  expand puts the upper half at the head (list_add) of each lower order's list.
- free_hot_cold_page: at count >= high, free_pages_bulk(zone, batch, list) takes up to
  `batch` frames from the list's tail (list->prev) back to the buddy lists; then the
  frame goes on the head (list_add). __free_pages sends order 0 to the hot list
  (free_hot_page), larger orders to __free_pages_ok -> __free_pages_bulk.
- __free_pages_bulk: page_idx relative to the zone's first frame; while the buddy
  (page_idx ^ 2^order) lies in the zone and is a free block of that order, take it off
  its list and go up an order; the result goes on the head of its list.
- __drain_pages(cpu): for every zone, hot then cold list, free_pages_bulk of all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .oracle import zonelist

# include/linux/gfp.h (2.6.12): the action modifiers the passes read
GFP_WAIT, GFP_HIGH, GFP_COLD = 0x10, 0x20, 0x100
# include/linux/sched.h (2.6.12)
PF_MEMALLOC = 0x00000800

# the names __alloc_pages' NULL gets in the model's alloc_failure (spec/buddy.md)
ORDER_TOO_LARGE, ATOMIC, MEMALLOC, RECLAIM = ("order_too_large", "nopage_atomic",
                                              "nopage_memalloc", "would_reclaim")


def watermark_ok(free_pages: int, nr_free: list[int], order: int, mark: int, reserve: int,
                 can_try_harder: bool, gfp_high: bool) -> bool:
    """zone_watermark_ok (2.6.12), from its formula; nr_free[o] = blocks of order o."""
    low = mark
    free = free_pages - (1 << order) + 1
    if gfp_high:
        low -= low // 2
    if can_try_harder:
        low -= low // 4
    if free <= low + reserve:
        return False
    for o in range(order):
        free -= nr_free[o] << o
        low >>= 1
        if free <= low:
            return False
    return True


@dataclass
class ZoneCopy:
    index: int
    start: int                  # zone_start_pfn: page_idx counts from here
    end: int                    # one past the zone's last frame (bad_range)
    free_pages: int
    lists: list[list[int]]      # free_area[order]'s blocks, list head first
    pcp: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (cpu, cold)


class Shadow:
    """The kernel-visible allocator state of a machine, copied; `apply` the calls."""

    def __init__(self, machine):
        nxt = machine.mem_map.lru_next
        self.zones: dict[int, ZoneCopy] = {}
        for zone in machine.zones:
            lists = []
            for area in zone.free_area:
                pfns, pfn = [], area.head
                while pfn >= 0:
                    pfns.append(pfn)
                    pfn = nxt[pfn]
                lists.append(pfns)
            copy = ZoneCopy(zone.index, zone.zone_start_pfn,
                            zone.zone_start_pfn + zone.spanned_pages, zone.free_pages, lists)
            for cpu, pset in enumerate(zone.pageset):
                for cold, pcp in enumerate(pset.pcp):
                    copy.pcp[cpu, cold] = list(pcp.list)
            self.zones[zone.index] = copy

    def __eq__(self, other):
        return self.zones == other.zones

    def differences(self, other: "Shadow") -> list[str]:
        """What differs, zone by zone, as short text (self: expected, other: model)."""
        out = []
        for i, want in self.zones.items():
            got = other.zones[i]
            if want.free_pages != got.free_pages:
                out.append(f"zone {i} free_pages: expected {want.free_pages}, "
                           f"model {got.free_pages}")
            for order, (a, b) in enumerate(zip(want.lists, got.lists)):
                if a != b:
                    out.append(f"zone {i} free_area[{order}]: expected {a}, model {b}")
            for key, lst in want.pcp.items():
                if lst != got.pcp.get(key):
                    out.append(f"zone {i} CPU {key[0]} {'cold' if key[1] else 'hot'} list: "
                               f"expected {lst}, model {got.pcp.get(key)}")
        return out


def zone_of(shadow: Shadow, pfn: int) -> ZoneCopy:
    return next(z for z in shadow.zones.values() if z.start <= pfn < z.end)


def rmqueue(zone: ZoneCopy, order: int) -> int | None:
    """__rmqueue and expand on the copy."""
    for current in range(order, len(zone.lists)):
        if zone.lists[current]:
            pfn = zone.lists[current].pop(0)
            zone.free_pages -= 1 << order
            while current > order:
                current -= 1
                zone.lists[current].insert(0, pfn + (1 << current))
            return pfn
    return None


def free_bulk(zone: ZoneCopy, pfn: int, order: int) -> None:
    """__free_pages_bulk on the copy: merge with free buddies, head of the list."""
    idx = pfn - zone.start
    zone.free_pages += 1 << order
    while order < len(zone.lists) - 1:
        buddy = zone.start + (idx ^ (1 << order))
        if not zone.start <= buddy < zone.end or buddy not in zone.lists[order]:
            break
        zone.lists[order].remove(buddy)
        idx &= ~(1 << order)
        order += 1
    zone.lists[order].insert(0, zone.start + idx)


def free_pcp_bulk(zone: ZoneCopy, lst: list[int], count: int) -> None:
    """free_pages_bulk(zone, count, list, 0): from the list's tail."""
    while lst and count:
        free_bulk(zone, lst.pop(), 0)
        count -= 1


def buffered_rmqueue(zone: ZoneCopy, pcp, order: int, gfp: int, cpu: int) -> int | None:
    """`pcp` is the model zone's PerCpuPages for (cpu, cold): its low and batch only."""
    if order == 0:
        lst = zone.pcp[cpu, 1 if gfp & GFP_COLD else 0]
        if len(lst) <= pcp.low:
            for _ in range(pcp.batch):
                pfn = rmqueue(zone, 0)
                if pfn is None:
                    break
                lst.append(pfn)
        if lst:
            return lst.pop(0)
    return rmqueue(zone, order)


def alloc_pages(shadow: Shadow, machine, gfp: int, order: int, cpu: int):
    """__alloc_pages on the copy: (pfn or None, the NULL reason or None, which pass
    answered: 1, 2, 3 or None)."""
    if order >= machine.profile.MAX_ORDER:
        return None, ORDER_TOO_LARGE, None
    zones = zonelist(machine, gfp)               # build_zonelists, from the table
    wait = bool(gfp & GFP_WAIT)
    reason = MEMALLOC if machine.current_flags & PF_MEMALLOC else (
        RECLAIM if wait else ATOMIC)
    if not zones:
        return None, reason, None
    classzone = zones[0].index
    passes = [(1, "pages_low", False, False),
              (2, "pages_min", not wait, bool(gfp & GFP_HIGH))]
    for number, mark, harder, high in passes:
        for zone in zones:
            copy = shadow.zones[zone.index]
            if not watermark_ok(copy.free_pages, [len(x) for x in copy.lists], order,
                                getattr(zone, mark), zone.lowmem_reserve[classzone],
                                harder, high):
                continue
            pfn = buffered_rmqueue(copy, _pcp(zone, cpu, gfp), order, gfp, cpu)
            if pfn is not None:
                return pfn, None, number
    if machine.current_flags & PF_MEMALLOC:
        for zone in zones:
            pfn = buffered_rmqueue(shadow.zones[zone.index], _pcp(zone, cpu, gfp), order,
                                   gfp, cpu)
            if pfn is not None:
                return pfn, None, 3
    return None, reason, None


def _pcp(zone, cpu: int, gfp: int):
    return zone.pageset[cpu].pcp[1 if gfp & GFP_COLD else 0]


def free_pages(shadow: Shadow, machine, pfn: int, order: int, cpu: int) -> None:
    """The last reference of a block went: __free_pages on the copy."""
    zone = zone_of(shadow, pfn)
    if order:
        free_bulk(zone, pfn, order)              # __free_pages_ok
        return
    pcp = machine.zones[zone.index].pageset[cpu].pcp[0]     # free_hot_page
    lst = zone.pcp[cpu, 0]
    if len(lst) >= pcp.high:
        free_pcp_bulk(zone, lst, pcp.batch)
    lst.insert(0, pfn)


def drain_pages(shadow: Shadow, cpu: int) -> None:
    """__drain_pages(cpu) on the copy."""
    for zone in shadow.zones.values():
        for cold in (0, 1):
            lst = zone.pcp.get((cpu, cold))
            if lst is not None:
                free_pcp_bulk(zone, lst, len(lst))
