"""Compound pages (2.6.12 mm/page_alloc.c prep_compound_page, destroy_compound_page;
mm/swap.c put_page with CONFIG_HUGETLB_PAGE): __GFP_COMP blocks, their frees, and the
misuse bad_page() catches. Expected frames are worked out by hand: the default
machine's first order-2 GFP_KERNEL block is pfn 6176: after a 2.6.12 boot Normal's
frames 6145..6175 wait on CPU 0's hot list and its smallest buddy block is the order-5
block 6176 (mm/bootmem.c free_all_bootmem_core; __rmqueue takes the smallest order with
a block, expand hands back 6192 o4, 6184 o3, 6180 o2; see tests/test_boot.py and
tests/test_pcp.py)."""

import pytest

from kmemspec.model import page_alloc as pa
from kmemspec.model.boot import boot
from kmemspec.model.errors import KernelBug
from kmemspec.model.gfp import GFP_KERNEL, __GFP_COMP
from kmemspec.model.mem_map import PG_compound
from kmemspec.spec import buddy as inv
from kmemspec.spec import catalogue
from misuse import misuse

HEAD = 6176


def compound(order=2):
    m = boot()
    page = pa.alloc_pages(m, GFP_KERNEL | __GFP_COMP, order)
    assert page.pfn == HEAD
    return m, page


def test_prep_compound_page_marks_every_frame():
    m, page = compound()
    flags, private = m.mem_map.flags, m.mem_map.private
    assert all(flags[HEAD + i] & PG_compound for i in range(4))
    assert [private[HEAD + i] for i in range(4)] == [HEAD] * 4    # page->private = head
    assert m.page_index == {HEAD + 1: 2}                          # page[1].index = order
    assert not flags[HEAD + 4] & PG_compound
    assert not any(catalogue.check_all(m).values())


def test_order0_and_non_comp_requests_are_not_compound():
    m = boot()
    pa.alloc_pages(m, GFP_KERNEL | __GFP_COMP, 0)                 # order 0: never compound
    pa.alloc_pages(m, GFP_KERNEL, 3)
    assert m.page_index == {}
    assert not any(f & PG_compound for f in m.mem_map.flags)


def test_free_destroys_the_compound_page():
    m, page = compound()
    info = pa.buddyinfo(m)["Normal"]
    pa.__free_pages(m, page, 2)
    assert m.page_index == {} and not any(f & PG_compound for f in m.mem_map.flags)
    # merges with 6180 (o2), 6184 (o3), 6192 (o4) back into the o5 block 6176, whose
    # buddy 6208 is an o6 block: boot's Normal layout
    assert pa.buddyinfo(m)["Normal"] == [0] * 5 + [1] * 5 + [217] != info
    assert not any(catalogue.check_all(m).values())


def test_get_and_put_page_on_a_tail_use_the_head():
    m, page = compound()
    pa.get_page(m, m.mem_map + (HEAD + 3))                        # tail -> head's count
    assert m.mem_map.count[HEAD] == 2
    pa.put_page(m, m.mem_map + (HEAD + 1))
    assert m.mem_map.count[HEAD] == 1


def test_last_put_page_of_a_compound_page_has_no_destructor():
    m, page = compound()
    err = misuse(m, "compound_no_dtor", pa.put_page, m.mem_map + (HEAD + 2))
    assert err.pfn == HEAD


def test_freeing_with_another_order_is_bad_page():
    m, page = compound()
    misuse(m, "bad_compound", pa.__free_pages, page, 1)           # page[1].index is 2
    misuse(m, "bad_compound", pa.__free_pages, page, 0)


def test_a_corrupted_tail_is_bad_page():
    m, page = compound()
    m.mem_map.private[HEAD + 3] = 0
    misuse(m, "bad_compound", pa.__free_pages, page, 2)


def test_put_page_of_a_plain_order0_page_frees_it():
    m = boot()
    page = pa.alloc_pages(m, GFP_KERNEL, 0)
    pa.put_page(m, page)
    assert page.pfn not in m.page_owner and page.pfn in m.pcp_pages
    big = pa.alloc_pages(m, GFP_KERNEL, 1)
    misuse(m, "put_page_high_order", pa.put_page, big)


def test_compound_invariant_catches_a_stray_mark_and_a_wrong_index():
    m, page = compound()
    m.mem_map.flags[HEAD + 5] |= PG_compound
    assert inv.inv_compound_pages(m)
    m.mem_map.flags[HEAD + 5] &= ~PG_compound
    assert not inv.inv_compound_pages(m)
    m.page_index[HEAD + 1] = 3
    assert inv.inv_compound_pages(m)


def test_compound_example_scenario():
    """examples/scenarios/compound.jsonl: the expectations above, as a scenario."""
    import os
    from kmemspec.scenario import parse_file, run_scenario
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "scenarios",
                        "compound.jsonl")
    run = run_scenario(parse_file(path))
    assert not run.failed and not any(run.invariants.values())
    assert [e.get("as_expected") for e in run.results if "expect" in e] == [True] * 3
    assert run.machine.page_index == {}
