"""The slab rules must fail on a broken slab layer: seeded bugs, one per invariant class.

Each bug wraps a real model function; the campaign (fixed seed, modest budget) must fail.
"""

import pytest

from campaigns import must_fail, must_pass

from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules
from kmemspec.model import kmalloc as km
from kmemspec.model import slab
from kmemspec.model.mem_map import PG_slab
from kmemspec.campaign.slab import SlabRules


class Campaign(SlabRules, BuddyRules, ModelMachine):
    pass


_real_grow = slab.cache_grow
_real_free_block = slab.free_block
_real_index_table = km._index_table
_real_take = slab._take_object


def grow_colour_never_wraps(machine, cachep, flags, cpu=0):
    """Bug: colour_next keeps counting past colour (no wrap to 0)."""
    before = cachep.colour_next
    grown = _real_grow(machine, cachep, flags, cpu)
    cachep.colour_next = before + 1
    return grown


def grow_forgets_pg_slab(machine, cachep, flags, cpu=0):
    """Bug: the slab's first page is not marked PG_slab."""
    grown = _real_grow(machine, cachep, flags, cpu)
    if grown:
        machine.mem_map.flags[cachep.slabs_free.tail] &= ~PG_slab
    return grown


def free_forgets_inuse(machine, cachep, objs, cpu=0):
    """Bug: free_block puts the objects back on their free lists, but the first one's
    slab keeps its inuse count."""
    profile = machine.profile
    first = [machine.slab.page_slab.get((a - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT)
             for a in objs[:1]]
    _real_free_block(machine, cachep, objs, cpu)
    for s in first:
        if s is not None and s.id in cachep.slabs:
            s.inuse += 1


def take_leaves_it_on_the_free_list(cachep, s):
    """Bug: cache_alloc_refill takes an object into the array without unlinking it."""
    idx = s.free
    addr = _real_take(cachep, s)
    s.bufctl[idx] = s.free
    s.free = idx
    s.inuse -= 1
    return addr


def index_one_class_too_big(sizes):
    """Bug: kmalloc uses the next class up."""
    return [min(i + 1, len(sizes) - 1) for i in _real_index_table(sizes)]


BUGS = {
    "colour_never_wraps": [(slab, "cache_grow", grow_colour_never_wraps)],
    "forgets_pg_slab": [(slab, "cache_grow", grow_forgets_pg_slab)],
    "free_forgets_inuse": [(slab, "free_block", free_forgets_inuse)],
    "take_leaves_it_on_the_free_list": [(slab, "_take_object",
                                         take_leaves_it_on_the_free_list)],
    "kmalloc_class_too_big": [(km, "_index_table", index_one_class_too_big)],
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_campaign_catches(bug, monkeypatch):
    for module, name, broken in BUGS[bug]:
        monkeypatch.setattr(module, name, broken)
    must_fail(Campaign, examples=200, steps=30)


def test_campaign_passes_on_the_real_model():
    must_pass(Campaign, examples=30, steps=30)
