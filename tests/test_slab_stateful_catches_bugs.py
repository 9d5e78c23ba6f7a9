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
_real_free_obj = slab._free_obj
_real_index_table = km._index_table


def grow_colour_never_wraps(machine, cachep, flags):
    """Bug: colour_next keeps counting past colour (no wrap to 0)."""
    before = cachep.colour_next
    grown = _real_grow(machine, cachep, flags)
    cachep.colour_next = before + 1
    return grown


def grow_forgets_pg_slab(machine, cachep, flags):
    """Bug: the slab's first page is not marked PG_slab."""
    grown = _real_grow(machine, cachep, flags)
    if grown:
        machine.mem_map.flags[cachep.slabs_free.tail] &= ~PG_slab
    return grown


def free_forgets_inuse(cachep, s, objnr):
    """Bug: the object goes back on the free list but inuse is not lowered."""
    _real_free_obj(cachep, s, objnr)
    s.inuse += 1


def index_one_class_too_big(sizes):
    """Bug: kmalloc uses the next class up."""
    return [min(i + 1, len(sizes) - 1) for i in _real_index_table(sizes)]


BUGS = {
    "colour_never_wraps": [(slab, "cache_grow", grow_colour_never_wraps)],
    "forgets_pg_slab": [(slab, "cache_grow", grow_forgets_pg_slab)],
    "free_forgets_inuse": [(slab, "_free_obj", free_forgets_inuse),
                           (km, "_free_obj", free_forgets_inuse)],
    "kmalloc_class_too_big": [(km, "_index_table", index_one_class_too_big)],
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_campaign_catches(bug, monkeypatch):
    for module, name, broken in BUGS[bug]:
        monkeypatch.setattr(module, name, broken)
    must_fail(Campaign, examples=200, steps=30)


def test_campaign_passes_on_the_real_model():
    must_pass(Campaign, examples=30, steps=30)
