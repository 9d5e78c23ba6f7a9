"""Seeded bugs in 2.6.12's page policy (per-CPU lists, watermark passes), shared by the
tests that must catch them. Each is a drop-in replacement for a function of
kmemspec.model.page_alloc with one bug, named after what it gets wrong against 2.6.12
mm/page_alloc.c (buffered_rmqueue, rmqueue_bulk, free_hot_cold_page, zone_watermark_ok).
"""

from kmemspec.model import page_alloc as pa
from kmemspec.model.gfp import __GFP_COLD, __GFP_COMP

def rmqueue_from_tail(machine, zone, order, gfp_mask, cpu=0):
    """Bug: an order-0 allocation takes the list's tail (pcp->list.prev), not its head."""
    if order == 0 and machine.pcp:
        pcp = zone.pageset[cpu].pcp[1 if gfp_mask & __GFP_COLD else 0]
        if pcp.count <= pcp.low:
            pa._pcp_refill(machine, zone, pcp, cpu, gfp_mask)
        if pcp.count:
            pfn = pcp.list.pop()
            pcp.count -= 1
            del machine.pcp_pages[pfn]
            machine.mem_map.count[pfn] = 1
            machine.page_owner[pfn] = 0
            return pfn
    pfn = pa.__rmqueue(machine.mem_map, zone, order)
    if pfn >= 0:
        machine.mem_map.count[pfn] = 1
        machine.page_owner[pfn] = order
        if order and gfp_mask & __GFP_COMP:
            pa.prep_compound_page(machine, pfn, order)
    return pfn


def refill_one_more(machine, zone, pcp, cpu, gfp_mask):
    """Bug: rmqueue_bulk moves batch + 1 frames to the list."""
    got: list[int] = []
    pa.rmqueue_bulk(machine, zone, pcp.batch + 1, got, prep=False)
    pcp.list.extend(got)
    pcp.count += len(got)
    machine.pcp_pages.update(dict.fromkeys(got, 2 * cpu + (1 if gfp_mask & __GFP_COLD else 0)))


def drain_above_high(machine, pfn, cold=0, cpu=0):
    """Bug: free_hot_cold_page drains only when count > high (not >= high)."""
    zone = machine.zones[machine.mem_map.zone_id[pfn]]
    pcp = zone.pageset[cpu].pcp[cold]
    if pcp.count > pcp.high:
        pcp.count -= pa._pcp_free_bulk(machine, zone, pcp, pcp.batch)
    pcp.list.appendleft(pfn)
    pcp.count += 1
    machine.pcp_pages[pfn] = 2 * cpu + cold


def watermark_without_reserve(zone, order, mark, classzone_idx, can_try_harder, gfp_high):
    """Bug: the pages_min pass ignores lowmem_reserve[classzone]."""
    low = mark
    free_pages = zone.free_pages - (1 << order) + 1
    if gfp_high:
        low -= low // 2
    if can_try_harder:
        low -= low // 4
    if free_pages <= low:
        return False
    for o in range(order):
        free_pages -= zone.free_area[o].nr_free << o
        low >>= 1
        if free_pages <= low:
            return False
    return True


def watermark_ignores_gfp_high(zone, order, mark, classzone_idx, can_try_harder, gfp_high):
    """Bug: __GFP_HIGH does not lower pages_min."""
    low = mark
    free_pages = zone.free_pages - (1 << order) + 1
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


def free_to_tail(machine, pfn, cold=0, cpu=0):
    """Bug: free_hot_cold_page puts the frame at the list's tail (list_add_tail)."""
    zone = machine.zones[machine.mem_map.zone_id[pfn]]
    pcp = zone.pageset[cpu].pcp[cold]
    if pcp.count >= pcp.high:
        pcp.count -= pa._pcp_free_bulk(machine, zone, pcp, pcp.batch)
    pcp.list.append(pfn)
    pcp.count += 1
    machine.pcp_pages[pfn] = 2 * cpu + cold


BUGS = {
    "alloc takes the list's tail": ("buffered_rmqueue", rmqueue_from_tail),
    "free puts on the list's tail": ("free_hot_cold_page", free_to_tail),
    "refill moves batch + 1": ("_pcp_refill", refill_one_more),
    "drain at > high": ("free_hot_cold_page", drain_above_high),
    "pages_min pass ignores lowmem_reserve": ("zone_watermark_ok", watermark_without_reserve),
    "__GFP_HIGH does not lower pages_min": ("zone_watermark_ok", watermark_ignores_gfp_high),
}
