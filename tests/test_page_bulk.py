"""alloc_pages_bulk and free_pages_bulk compute the one-at-a-time loops they replace.

vmalloc takes and gives back its frames through these two (model/vmalloc.py), so the
claim that they leave exactly the state of nr_pages alloc_page calls (or of __free_page
on each frame, in order) is what makes them a faithful model of 2.6.12's loops. Each
test forks one machine, runs the bulk call on one copy and the loop on the other, and
compares the whole state: every array of mem_map, the free lists, the owner records.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, strategies as st

from kmemspec.model import KernelBug, boot
from kmemspec.model import page_alloc as pa
from kmemspec.model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL
from kmemspec.spec import check_all
from misuse import snapshot as state

free_page = pa.__free_page
GFPS = [GFP_KERNEL, GFP_DMA, GFP_HIGHUSER]


POLICIES = ["2.6.12", "buddy"]


def small(policy="2.6.12"):
    """Zones DMA [0, 24), Normal [24, 200) -- not aligned to 16 -- and HighMem [200, 300).
    Policy "2.6.12": watermarks and per-CPU lists; "buddy": the bare buddy core."""
    return boot(phys_pages=200, highmem_pages=100, reserved=(), max_dma_pfn=24,
                page_policy=policy)




# A history: allocations of any order (with an extra reference sometimes) and frees.
history = st.lists(st.tuples(st.sampled_from(["alloc", "free", "get"]),
                             st.sampled_from(GFPS), st.integers(0, 4), st.integers(0, 10 ** 6)),
                   max_size=40)


def replay(steps, policy="2.6.12"):
    m = small(policy)
    live: list[tuple[int, int]] = []
    for what, gfp, order, pick in steps:
        if what == "alloc" or not live:
            page = pa.alloc_pages(m, gfp, order)
            if page is not None:
                live.append((page.pfn, order))
        elif what == "free":
            pfn, o = live.pop(pick % len(live))
            pa.__free_pages(m, m.mem_map + pfn, o)
            if m.mem_map.count[pfn]:
                live.append((pfn, o))
        else:
            pa.get_page(m, m.mem_map + live[pick % len(live)][0])
    return m


def loop_alloc(m, gfp, n):
    pfns = []
    for _ in range(n):
        page = pa.alloc_page(m, gfp)
        if page is None:
            break
        pfns.append(page.pfn)
    return pfns


@given(history, st.sampled_from(GFPS), st.integers(0, 320), st.sampled_from(POLICIES))
def test_alloc_pages_bulk_is_the_alloc_page_loop(steps, gfp, n, policy):
    bulk = replay(steps, policy)
    loop = copy.deepcopy(bulk)
    assert pa.alloc_pages_bulk(bulk, gfp, n) == loop_alloc(loop, gfp, n)
    assert state(bulk) == state(loop)
    assert not any(check_all(bulk).values())


@given(history, st.sampled_from(GFPS), st.integers(1, 64), st.randoms(use_true_random=False),
       st.sampled_from(["as allocated", "shuffled", "reversed"]), st.sampled_from(POLICIES))
def test_free_pages_bulk_is_the_free_page_loop(steps, gfp, n, rng, arrangement, policy):
    bulk = replay(steps, policy)
    pfns = pa.alloc_pages_bulk(bulk, gfp, n)
    if arrangement == "shuffled":
        rng.shuffle(pfns)
    elif arrangement == "reversed":
        pfns.reverse()
    for pfn in pfns[::5]:                   # some frames keep a second reference
        pa.get_page(bulk, bulk.mem_map + pfn)
    loop = copy.deepcopy(bulk)
    pa.free_pages_bulk(bulk, pfns)
    for pfn in pfns:
        free_page(loop, loop.mem_map + pfn)
    assert state(bulk) == state(loop)
    assert not any(check_all(bulk).values())


def test_bulk_takes_the_zonelist_in_order():
    m = small("buddy")
    highmem = m.zones[2].free_pages
    pfns = pa.alloc_pages_bulk(m, GFP_HIGHUSER, highmem + 3)
    assert len(pfns) == highmem + 3
    assert all(pfn >= 200 for pfn in pfns[:highmem])
    assert all(24 <= pfn < 200 for pfn in pfns[highmem:])      # then Normal


def test_bulk_stops_where_alloc_page_returns_null():
    m = small("buddy")
    total = pa.nr_free_pages(m)
    assert len(pa.alloc_pages_bulk(m, GFP_HIGHUSER, total + 10)) == total
    assert pa.alloc_pages_bulk(m, GFP_HIGHUSER, 5) == []


@pytest.mark.parametrize("bad,rule", [("free", "double_free"), ("twice", "double_free"),
                                      ("order1", "wrong_order"), ("slab", "free_slab_page")])
def test_free_pages_bulk_misuse_changes_nothing(bad, rule):
    from kmemspec.model.kmalloc import kmalloc
    from kmemspec.model.addr import virt_to_page
    m = small()
    pfns = pa.alloc_pages_bulk(m, GFP_KERNEL, 8)
    if bad == "free":
        free_page(m, m.mem_map + pfns[3])
    elif bad == "twice":
        pfns.append(pfns[2])
    elif bad == "order1":
        pfns.append(pa.alloc_pages(m, GFP_KERNEL, 1).pfn)
    else:
        pfns.append(virt_to_page(m, kmalloc(m, 32, GFP_KERNEL)).pfn)
    before = state(m)
    with pytest.raises(KernelBug) as err:
        pa.free_pages_bulk(m, pfns)
    assert err.value.rule == rule
    assert state(m) == before


# The comparison can fail: bulk paths with a seeded slip are told apart from the loop.

def test_a_bulk_alloc_that_takes_frames_top_down_is_caught(monkeypatch):
    real = pa.rmqueue_bulk

    def top_down(machine, zone, count, taken, prep=True):
        mine: list[int] = []
        real(machine, zone, count, mine, prep)
        taken.extend(sorted(mine, reverse=True))
    bulk = small("buddy")
    loop = copy.deepcopy(bulk)
    monkeypatch.setattr(pa, "rmqueue_bulk", top_down)
    assert pa.alloc_pages_bulk(bulk, GFP_KERNEL, 5) != loop_alloc(loop, GFP_KERNEL, 5)


def test_a_bulk_alloc_that_takes_the_list_tail_is_caught(monkeypatch):
    """With per-CPU lists: a bulk path handing frames out from the list's tail."""
    real = pa._pcp_take

    def from_tail(machine, zone, floor, gfp_mask, cpu, nr_pages, taken):
        start = len(taken)
        real(machine, zone, floor, gfp_mask, cpu, nr_pages, taken)
        taken[start:] = taken[start:][::-1]
    bulk = small()
    loop = copy.deepcopy(bulk)
    monkeypatch.setattr(pa, "_pcp_take", from_tail)
    assert pa.alloc_pages_bulk(bulk, GFP_HIGHUSER, 5) != loop_alloc(loop, GFP_HIGHUSER, 5)


def test_a_bulk_free_that_skips_the_merge_is_caught(monkeypatch):
    bulk = small("buddy")
    pfns = pa.alloc_pages_bulk(bulk, GFP_HIGHUSER, 16)
    loop = copy.deepcopy(bulk)
    max_order = bulk.profile.MAX_ORDER
    real = pa.__free_pages_bulk
    # merge only up to the run's own order: the block never joins its free buddies
    monkeypatch.setattr(pa, "__free_pages_bulk",
                        lambda mm, zone, pfn, order, top: real(mm, zone, pfn, order, order + 1))
    pa.free_pages_bulk(bulk, pfns)
    monkeypatch.undo()
    for pfn in pfns:
        free_page(loop, loop.mem_map + pfn)
    assert max_order > 5 and state(bulk) != state(loop)
