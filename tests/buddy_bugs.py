"""Seeded bugs in the buddy allocator, shared by the tests that must catch them.

Each is a drop-in replacement for a function of kmemspec.model.page_alloc, with one
real bug class (see the catalogue in spec/conformance.md).
"""

from kmemspec.model import page_alloc as pa


def expand_keeps_upper(mem_map, zone, pfn, low, high):
    """Bug: hands the caller the upper part and frees the lower halves."""
    areas = zone.free_area
    size = 1 << high
    while high > low:
        high -= 1
        size >>= 1
        pa.list_add(mem_map, areas[high], pfn)
        areas[high].nr_free += 1
        pa.set_page_order(mem_map, pfn, high)
        pfn += size
    return pfn


def no_merge(mem_map, zone, pfn, order, max_order):
    """Bug: never coalesces."""
    zone.free_pages += 1 << order
    pa.set_page_order(mem_map, pfn, order)
    pa.list_add(mem_map, zone.free_area[order], pfn)
    zone.free_area[order].nr_free += 1


def expand_forgets_nr_free(mem_map, zone, pfn, low, high):
    """Bug: expand puts halves on the lists without counting them."""
    areas = zone.free_area
    size = 1 << high
    while high > low:
        high -= 1
        size >>= 1
        pa.list_add(mem_map, areas[high], pfn + size)
        pa.set_page_order(mem_map, pfn + size, high)
    return pfn


def merge_ignores_order(mem_map, zone, pfn, order, max_order):
    """Bug: merges with any free head, whatever its order."""
    base = zone.zone_start_pfn
    page_idx = pfn - base
    zone.free_pages += 1 << order
    while order < max_order - 1:
        buddy_idx = page_idx ^ (1 << order)
        buddy = base + buddy_idx
        if buddy >= zone.zone_end_pfn or mem_map.zone_id[buddy] != zone.index:
            break
        if not mem_map.flags[buddy] & pa.PG_buddy:
            break
        pa.list_del(mem_map, zone.free_area[mem_map.private[buddy]], buddy)
        zone.free_area[mem_map.private[buddy]].nr_free -= 1
        pa.rmv_page_order(mem_map, buddy)
        page_idx &= buddy_idx
        order += 1
    pa.set_page_order(mem_map, base + page_idx, order)
    pa.list_add(mem_map, zone.free_area[order], base + page_idx)
    zone.free_area[order].nr_free += 1


BUGS = {
    "expand_keeps_upper": ("expand", expand_keeps_upper),
    "no_merge": ("__free_pages_bulk", no_merge),
    "expandexpand_forgets_nr_free": ("expand", expand_forgets_nr_free),
    "merge_ignores_order": ("__free_pages_bulk", merge_ignores_order),
}
