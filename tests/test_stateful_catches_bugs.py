"""The stateful campaign must fail on a broken model: seeded bugs, one per rule class.

Each bug is patched into the model's buddy code; the campaign (with a fixed seed and
a modest budget) must report a failure.
"""

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from kmemspec.model import page_alloc as pa
from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules


class Campaign(BuddyRules, ModelMachine):
    pass


def _expand_keeps_upper(mem_map, zone, pfn, low, high):
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


def _no_merge(mem_map, zone, pfn, order, max_order):
    """Bug: never coalesces."""
    zone.free_pages += 1 << order
    pa.set_page_order(mem_map, pfn, order)
    pa.list_add(mem_map, zone.free_area[order], pfn)
    zone.free_area[order].nr_free += 1


def _forgets_nr_free(mem_map, zone, pfn, low, high):
    """Bug: expand puts halves on the lists without counting them."""
    areas = zone.free_area
    size = 1 << high
    while high > low:
        high -= 1
        size >>= 1
        pa.list_add(mem_map, areas[high], pfn + size)
        pa.set_page_order(mem_map, pfn + size, high)
    return pfn


def _merge_ignores_order(mem_map, zone, pfn, order, max_order):
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
    "expand_keeps_upper": ("expand", _expand_keeps_upper),
    "no_merge": ("__free_pages_bulk", _no_merge),
    "expand_forgets_nr_free": ("expand", _forgets_nr_free),
    "merge_ignores_order": ("__free_pages_bulk", _merge_ignores_order),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_campaign_catches(bug, monkeypatch):
    name, broken = BUGS[bug]
    monkeypatch.setattr(pa, name, broken)
    with pytest.raises(Exception):
        run_state_machine_as_test(
            Campaign, settings=settings(max_examples=200, stateful_step_count=30,
                                        deadline=None, database=None, derandomize=True,
                                        phases=[Phase.explicit, Phase.generate]))


def test_campaign_passes_on_the_real_model():
    run_state_machine_as_test(
        Campaign, settings=settings(max_examples=30, stateful_step_count=30, deadline=None,
                                    database=None, derandomize=True))
