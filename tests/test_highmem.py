"""Permanent kmaps: pkmap slots, page_address_htable, flushing on wrap, misuse."""

import pickle

import pytest

from kmemspec.model import KernelBug, boot
from kmemspec.model import highmem as hm
from kmemspec.model import page_alloc as pa
from kmemspec.model.gfp import GFP_HIGHUSER, GFP_KERNEL
from kmemspec.model.pgtable import LAST_PKMAP, lookup_pte, translate
from kmemspec.spec import check_all

PKMAP_BASE = 0xFF800000


def broken(machine):
    return {k: v for k, v in check_all(machine).items() if v}


def highmem_pages(machine, n):
    pages = [pa.alloc_page(machine, GFP_HIGHUSER) for _ in range(n)]
    assert all(p is not None and p.pfn >= machine.max_low_pfn for p in pages)
    return pages


def test_first_kmap_takes_slot_one():
    m = boot()
    page = pa.alloc_page(m, GFP_HIGHUSER)
    # after a 2.6.12 boot CPU 0's HighMem hot list holds 262143..262096 (48 > low 16:
    # no refill; arch/i386/mm/init.c set_highmem_pages_init, tests/test_boot.py): the
    # head 262143 = 0x3FFFF
    assert page.pfn == 0x3FFFF and hm.page_address(m, page) is None
    vaddr = hm.kmap(m, page)
    # last_pkmap_nr starts at 0 and is advanced before the first look: slot 1
    assert vaddr == PKMAP_BASE + 4096 and m.last_pkmap_nr == 1
    assert m.pkmap_count[1] == 2                         # mapped + one user
    assert m.page_address_htable == {0x3FFFF: vaddr}
    assert lookup_pte(m, vaddr) == 0x3FFFF063
    assert translate(m, vaddr + 8) == (0x3FFFF << 12) + 8
    assert hm.kmap(m, page) == vaddr and m.pkmap_count[1] == 3
    assert hm.page_address(m, page) == vaddr
    assert not broken(m)


def test_kunmap_keeps_the_mapping_until_a_flush():
    m = boot()
    page, other = highmem_pages(m, 2)
    vaddr = hm.kmap(m, page)
    hm.kunmap(m, page)
    # count 1: no users, but the slot is not reusable before a TLB flush
    assert m.pkmap_count[1] == 1 and hm.page_address(m, page) == vaddr
    assert hm.kmap(m, page) == vaddr and m.last_pkmap_nr == 1    # reused, no new slot
    hm.kunmap(m, page)
    assert hm.kmap(m, other) == PKMAP_BASE + 2 * 4096
    assert not broken(m)


def test_wrapping_flushes_unused_slots():
    m = boot(phys_pages=4096, highmem_pages=2048)
    pages = highmem_pages(m, LAST_PKMAP)
    for page in pages[:LAST_PKMAP - 1]:              # slots 1 .. 1023
        hm.kmap(m, page)
        hm.kunmap(m, page)
    assert m.last_pkmap_nr == LAST_PKMAP - 1
    assert all(c == 1 for c in m.pkmap_count[1:]) and m.pkmap_count[0] == 0
    busy = pages[5]
    hm.kmap(m, busy)                                 # slot 6 gets a user again
    # the next search wraps to slot 0: flush_all_zero_pkmaps clears every count-1 slot
    assert hm.kmap(m, pages[-1]) == PKMAP_BASE
    assert m.last_pkmap_nr == 0
    assert m.page_address_htable == {pages[-1].pfn: PKMAP_BASE, busy.pfn: PKMAP_BASE + 6 * 4096}
    assert sum(1 for c in m.pkmap_count if c) == 2
    assert hm.page_address(m, pages[0]) is None and lookup_pte(m, PKMAP_BASE + 4096) == 0
    # and the search goes on from slot 0: pages[0] now gets slot 1
    assert hm.kmap(m, pages[0]) == PKMAP_BASE + 4096
    assert not broken(m)


def test_all_slots_in_use_is_reported_not_slept_on():
    m = boot(phys_pages=4096, highmem_pages=2048)
    pages = highmem_pages(m, LAST_PKMAP + 1)
    for page in pages[:LAST_PKMAP]:
        hm.kmap(m, page)
    assert min(m.pkmap_count) == 2
    before = pickle.dumps(m.__dict__)
    with pytest.raises(KernelBug) as bug:
        hm.kmap(m, pages[-1])
    assert bug.value.rule == "kmap_exhausted"
    assert pickle.dumps(m.__dict__) == before
    hm.kunmap(m, pages[3])                   # one slot without users: flushable
    assert hm.kmap(m, pages[-1]) == PKMAP_BASE + 4 * 4096
    assert not broken(m)


def test_low_memory_pages_have_their_direct_address():
    m = boot()
    page = pa.alloc_page(m, GFP_KERNEL)
    assert hm.kmap(m, page) == 0xC0000000 + (page.pfn << 12)
    hm.kunmap(m, page)                       # a no-op for low memory
    hm.kunmap(m, page)
    assert m.page_address_htable == {} and not any(m.pkmap_count)


@pytest.mark.parametrize("case", ["never_mapped", "unbalanced", "after_flush"])
def test_kunmap_of_an_unmapped_page_is_a_bug(case):
    m = boot(phys_pages=4096, highmem_pages=2048)
    page = pa.alloc_page(m, GFP_HIGHUSER)
    rule = "kunmap_unmapped"
    if case == "unbalanced":
        hm.kmap(m, page)
        hm.kunmap(m, page)
        rule = "kunmap_unbalanced"
    elif case == "after_flush":
        hm.kmap(m, page)
        hm.kunmap(m, page)
        hm.flush_all_zero_pkmaps(m)
    before = pickle.dumps(m.__dict__)
    with pytest.raises(KernelBug) as bug:
        hm.kunmap(m, page)
    assert bug.value.rule == rule
    assert pickle.dumps(m.__dict__) == before


def test_kmap_of_a_free_frame_or_io_memory_is_a_bug():
    m = boot(phys_pages=4096, highmem_pages=64, iomem_pages=4)
    before = pickle.dumps(m.__dict__)
    with pytest.raises(KernelBug) as bug:
        hm.kmap(m, m.mem_map + (4096 + 4 + 10))          # a free highmem frame
    assert bug.value.rule == "kmap_free_page"
    with pytest.raises(KernelBug) as bug:
        hm.kmap(m, m.mem_map + 4097)                     # I/O memory, in no zone
    assert bug.value.rule == "kmap_not_ram"
    assert pickle.dumps(m.__dict__) == before


def test_scenario_file():
    from pathlib import Path

    from kmemspec.scenario import parse_file, run_scenario
    path = Path(__file__).resolve().parent.parent / "examples/scenarios/vmalloc_kmap.jsonl"
    run = run_scenario(parse_file(str(path)))
    assert run.exit_code == 0, run.results


def test_freeing_a_page_still_kmapped_is_misuse():
    """pkmap_count > 1: someone still uses the mapping; the frame must not be freed
    (by __free_page or by vfree's bulk free), and nothing changes."""
    from kmemspec.model import vmalloc as vm
    m = boot()
    page = pa.alloc_page(m, GFP_HIGHUSER)
    hm.kmap(m, page)
    before = pickle.dumps(m.__dict__)
    with pytest.raises(KernelBug) as err:
        pa.__free_page(m, page)
    assert err.value.rule == "free_kmapped" and err.value.pfn == page.pfn
    assert pickle.dumps(m.__dict__) == before
    hm.kunmap(m, page)              # count 1: no users, not yet flushed -- may be freed
    pa.__free_page(m, page)
    addr = vm.vmalloc(m, 3 * 4096)
    vpage = m.mem_map + m.vm_areas[addr].pages[1]
    hm.kmap(m, vpage)
    before = pickle.dumps(m.__dict__)
    with pytest.raises(KernelBug) as err:
        vm.vfree(m, addr)
    assert err.value.rule == "free_kmapped"
    assert pickle.dumps(m.__dict__) == before
