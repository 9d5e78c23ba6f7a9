"""Every slab invariant holds on real states and fails on a state corrupted its way."""

import pytest

from kmemspec.model import boot
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.model.kmalloc import kmalloc
from kmemspec.model.mem_map import PG_slab
from kmemspec.model.slab import (FREE, FULL, PARTIAL, drain_cpu_caches, kmem_cache_alloc,
                                 kmem_cache_create, kmem_cache_free)
from kmemspec.spec import catalogue, check_all


def build():
    """A machine with full, partial and free slabs, on- and off-slab, and kmalloc objects."""
    m = boot(phys_pages=8192, highmem_pages=64, cpus=2)
    c = kmem_cache_create(m, "colour_demo", 1100, 0, 0)       # 7 a slab, colour 3
    # each refill takes a whole new slab into CPU 0's array (batchcount 12 >= 7), so the
    # 15 objects are slab A's 6..0, B's 6..0 and C's 6; C's 0..5 stay parked
    objs = [kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(15)]
    kmem_cache_free(m, c, objs[14])                             # C's 6: parked
    kmem_cache_free(m, c, objs[13])                             # B's 0: parked
    drain_cpu_caches(m, c)                     # free_block: C empties, B goes partial
    assert (c.slabs_full.nr, c.slabs_partial.nr, c.slabs_free.nr) == (1, 1, 1)
    kmem_cache_free(m, c, objs[0], 1)                           # parked on CPU 1
    big = kmem_cache_create(m, "big", 4096, 0, 0)               # off-slab management
    b = kmem_cache_alloc(m, big, GFP_KERNEL)
    k = [kmalloc(m, s, GFP_KERNEL) for s in (1, 40, 100, 300, 5000)]
    broken = {n: v for n, v in check_all(m).items() if v}
    assert not broken, broken
    return m, c, objs, big, b, k


def broken(machine, name):
    return catalogue.check(machine, name)


def test_all_hold_on_a_busy_machine():
    build()


def test_slab_parts_are_registered():
    layers = {(p.name, p.layer) for n in catalogue.invariant_names() for p in catalogue.parts(n)}
    for name in ("colour_within_slack", "slab_accounting", "size_class", "no_overlap",
                 "page_state"):
        assert (name, "slab") in layers


# --- colour_within_slack --------------------------------------------------------------

def test_colour_offset_beyond_the_slack():
    m, c, *_ = build()
    slab = next(iter(c.slabs.values()))
    slab.colouroff += (c.colour + 1) * c.colour_off          # past left_over
    slab.s_mem += (c.colour + 1) * c.colour_off
    assert broken(m, "colour_within_slack")


def test_colour_offset_off_the_colour_grid():
    m, c, *_ = build()
    slab = next(iter(c.slabs.values()))
    slab.colouroff += 4
    slab.s_mem += 4
    assert any("multiple of colour_off" in v for v in broken(m, "colour_within_slack"))


def test_colour_not_left_over_over_colour_off():
    m, c, *_ = build()
    c.colour += 1
    assert any("colour" in v for v in broken(m, "colour_within_slack"))


def test_colour_next_out_of_range():
    m, c, *_ = build()
    c.colour_next = c.colour
    assert broken(m, "colour_within_slack")


def test_objects_past_the_slab_end():
    m, c, *_ = build()
    c.num += 1
    assert broken(m, "colour_within_slack")


# --- slab_accounting --------------------------------------------------------------------

def test_inuse_miscounted():
    m, c, *_ = build()
    slab = c.slab_list(PARTIAL)[0]
    slab.inuse += 1
    assert any("inuse" in v for v in broken(m, "slab_accounting"))


def test_free_list_cycle():
    m, c, *_ = build()
    slab = c.slab_list(PARTIAL)[0]
    slab.bufctl[slab.free] = slab.free
    assert any("cycle" in v for v in broken(m, "slab_accounting"))


def test_free_list_off_the_objects():
    m, c, *_ = build()
    slab = c.slab_list(PARTIAL)[0]
    slab.free = c.num + 3
    assert any("outside" in v for v in broken(m, "slab_accounting"))


def test_slab_on_the_wrong_list():
    m, c, *_ = build()
    slab = c.slab_list(FULL)[0]
    slab.list = PARTIAL
    assert broken(m, "slab_accounting")


def test_full_slab_left_on_partial_list():
    m, c, *_ = build()
    from kmemspec.model.slab import _list_move
    slab = c.slab_list(FULL)[0]
    _list_move(c, slab, PARTIAL, False)
    assert any("slabs_full" in v for v in broken(m, "slab_accounting"))


def test_free_objects_counter():
    m, c, *_ = build()
    c.free_objects -= 1
    assert any("free_objects" in v for v in broken(m, "slab_accounting"))


def test_list_length_mismatch():
    m, c, *_ = build()
    c.slabs_free.nr += 1
    assert broken(m, "slab_accounting")


def test_objects_outside_their_slab_pages():
    m, c, *_ = build()
    slab = c.slab_list(FULL)[0]
    slab.s_mem += 8192
    assert any("leave the slab pages" in v for v in broken(m, "slab_accounting"))


def test_off_slab_management_not_live():
    m, _, _, big, *_ = build()
    slab = next(iter(big.slabs.values()))
    slab.mgmt += 1
    assert any("off-slab" in v for v in broken(m, "slab_accounting"))


# --- no_overlap (slab part) --------------------------------------------------------------

def test_two_slabs_share_pages():
    m, c, *_ = build()
    a, b = sorted(c.slabs.values(), key=lambda s: s.id)[:2]
    del c.slabs[b.id]
    b.id = a.id + 0      # b now claims a's frames
    c.slabs[b.id + 100000] = b
    assert any("share memory" in v for v in broken(m, "no_overlap"))


def test_object_zero_over_the_struct_slab():
    m, c, *_ = build()
    slab = c.slab_list(FULL)[0]
    slab.s_mem -= 8
    assert any("overlaps" in v for v in broken(m, "no_overlap"))


def test_zero_object_size():
    m, c, *_ = build()
    c.objsize = 0
    assert broken(m, "no_overlap")


# --- page_state (slab part) ---------------------------------------------------------------

def test_slab_page_without_pg_slab():
    m, c, *_ = build()
    slab = next(iter(c.slabs.values()))
    m.mem_map.flags[slab.id] &= ~PG_slab
    assert any("PG_slab" in v for v in broken(m, "page_state"))


def test_stray_pg_slab():
    m, *_ = build()
    free_pfn = next(p for p in range(m.nr_pages) if m.mem_map.flags[p] == 0)
    m.mem_map.flags[free_pfn] |= PG_slab
    assert any("PG_slab" in v for v in broken(m, "page_state"))


def test_back_pointer_to_the_wrong_slab():
    m, c, *_ = build()
    a, b = list(c.slabs.values())[:2]
    m.slab.page_slab[a.id] = b
    assert any("point back" in v for v in broken(m, "page_state"))


def test_slab_pages_not_allocated_in_the_buddy():
    m, c, *_ = build()
    slab = next(iter(c.slabs.values()))
    del m.page_owner[slab.id]
    assert any("buddy" in v for v in broken(m, "page_state"))


# --- size_class --------------------------------------------------------------------------

def test_object_from_a_larger_class_than_needed():
    m, *_, k = build()
    m.slab.kmalloc_req[k[2]] = 60            # 60 bytes fit size-64, the object is size-128
    assert any("smallest class" in v for v in broken(m, "size_class"))


def test_kmalloc_record_of_a_freed_object():
    m, *_, k = build()
    from kmemspec.model.slab import _cache_free
    slab = m.slab.page_slab[(k[1] - 0xC0000000) >> 12]
    _cache_free(m, slab.cache, k[1])         # freed behind kfree's back
    assert any("not a live object" in v for v in broken(m, "size_class"))


def test_large_kmalloc_with_the_wrong_order():
    m = boot(profile="linux-6.x-x86_64", phys_pages=8192, highmem_pages=0)
    big = kmalloc(m, 20000, GFP_KERNEL)       # get_order(20000) = 3
    assert not broken(m, "size_class")
    m.slab.kmalloc_req[big] = 3000             # 3000 bytes belong in kmalloc-4k
    assert any("bypassed" in v for v in broken(m, "size_class"))


def test_general_cache_smaller_than_its_class():
    m, *_ = build()
    m.slab.malloc_sizes[3].objsize = 128
    assert broken(m, "size_class")


@pytest.mark.parametrize("which", [FULL, PARTIAL, FREE])
def test_list_views_walk_every_list(which):
    m, c, *_ = build()
    assert all(s.list == which for s in c.slab_list(which))
