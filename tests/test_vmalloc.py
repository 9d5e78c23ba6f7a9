"""vmalloc: the seed's scenario by hand, first fit, failure without leaks, misuse."""

import pickle
from pathlib import Path

import pytest

from kmemspec.model import ConfigError, KernelBug, boot
from kmemspec.model import kmalloc as km
from kmemspec.model import page_alloc as pa
from kmemspec.model import vmalloc as vm
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.model.pgtable import lookup_pte, translate
from kmemspec.scenario import parse_file, run_scenario
from kmemspec.spec import check, check_all

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
PAGE = 4096
vmalloc_gfp = vm.__vmalloc


def broken(machine):
    return {k: v for k, v in check_all(machine).items() if v}


def warm_slab(machine, *sizes):
    """Let the slab caches vmalloc will use have a slab each, so that a later failure
    can be compared frame for frame (kfree keeps an emptied slab on slabs_free)."""
    for size in (vm.SIZEOF_VM_STRUCT, *sizes):
        km.kfree(machine, km.kmalloc(machine, size, GFP_KERNEL))


def frames(machine):
    return pa.nr_free_pages(machine), dict(machine.page_owner)


def test_seed_three_pages_by_hand():
    m = boot()           # 896 MiB low memory, 128 MiB highmem
    addr = vm.vmalloc(m, 3 * PAGE)
    # VMALLOC_START = ALIGN(0xF8000000 + 8 MiB, 8 MiB); the first area starts there
    assert addr == 0xF8800000
    area = m.vm_areas[addr]
    # three pages plus one guard page
    assert area.size == 4 * PAGE and area.nr_pages == 3 and area.flags == vm.VM_ALLOC
    # alloc_page(GFP_KERNEL | __GFP_HIGHMEM) one at a time: after a 2.6.12 boot CPU 0's
    # HighMem hot list holds 262143..262096, head 262143 = 0x3FFFF (arch/i386/mm/init.c
    # set_highmem_pages_init frees every highmem frame through it; tests/test_boot.py);
    # count 48 > low 16, so each request takes the head without a refill
    assert area.pages == [0x3FFFF, 0x3FFFE, 0x3FFFD]
    # three separate frames, contiguous in virtual space: pte = pfn << 12 | PAGE_KERNEL
    assert [lookup_pte(m, addr + i * PAGE) for i in range(4)] == \
        [0x3FFFF063, 0x3FFFE063, 0x3FFFD063, 0]
    assert [vm.vmalloc_to_pfn(m, addr + i * PAGE) for i in range(4)] == \
        [0x3FFFF, 0x3FFFE, 0x3FFFD, None]
    assert translate(m, addr + 2 * PAGE + 0x123) == (0x3FFFD << 12) + 0x123
    # highmem frames: mapped by vmalloc, yet no page_address of their own
    assert all(m.page_address_htable.get(p) is None for p in area.pages)
    # the pte table for pgd entry 0xF8800000 >> 22 = 0x3E2 is a low-memory frame
    # (pte_alloc_one_kernel: __get_free_page(GFP_KERNEL | __GFP_REPEAT))
    assert list(m.pte_table_pfns) == [0x3E2]
    assert m.pte_table_pfns[0x3E2] < m.max_low_pfn
    assert m.page_owner[m.pte_table_pfns[0x3E2]] == 0
    # the next area starts right after the guard page
    assert vm.vmalloc(m, 1) == 0xF8804000
    assert vm.vmallocinfo(m) == [
        {"start": 0xF8800000, "end": 0xF8804000, "size": 16384, "caller": "vmalloc", "pages": 3,
         "kind": "vmalloc"},
        {"start": 0xF8804000, "end": 0xF8806000, "size": 8192, "caller": "vmalloc", "pages": 1,
         "kind": "vmalloc"}]
    assert not broken(m)


def test_seed_scenario_file_and_json_state():
    run = run_scenario(parse_file(str(SCENARIOS / "vmalloc_seed.jsonl")))
    assert run.exit_code == 0, run.results
    data = run.to_json()
    assert data["state"]["vmallocinfo"] == [
        {"start": 0xF8800000, "end": 0xF8803000, "size": 12288, "caller": "vmalloc", "pages": 2,
         "kind": "vmalloc"},
        {"start": 0xF8804000, "end": 0xF8806000, "size": 8192, "caller": "vmalloc", "pages": 1,
         "kind": "vmalloc"}]
    assert all(v == "held" for v in data["invariants"].values())


def test_vmallocinfo_text():
    from kmemspec.ops_vmalloc import vmallocinfo_text
    m = boot()
    vm.vmalloc(m, 3 * PAGE)
    assert vmallocinfo_text(m) == "0xf8800000-0xf8804000   16384 vmalloc pages=3 vmalloc"


def test_first_fit_reuses_the_lowest_hole():
    m = boot()
    a = vm.vmalloc(m, 3 * PAGE)            # 0xF8800000, 4 pages with the guard
    b = vm.vmalloc(m, PAGE)                # 0xF8804000
    vm.vfree(m, a)
    c = vm.vmalloc(m, 2 * PAGE)            # 3 pages fit the 4-page hole at its start
    d = vm.vmalloc(m, PAGE)                # 2 pages: the 1-page rest is too small
    assert (a, b, c, d) == (0xF8800000, 0xF8804000, 0xF8800000, 0xF8806000)
    assert m.vmalloc_holes == {0xF8803000: 0xF8804000, 0xF8808000: 0xFF7FE000}
    assert not broken(m)


def test_vmalloc_32_and_gfp_choose_the_zone():
    m = boot()
    low = vm.vmalloc_32(m, 2 * PAGE)
    assert all(p < m.max_low_pfn for p in m.vm_areas[low].pages)
    high = vmalloc_gfp(m, 2 * PAGE, GFP_KERNEL | 0x02)
    assert all(p >= m.max_low_pfn for p in m.vm_areas[high].pages)
    assert not broken(m)


def test_vfree_gives_everything_back():
    m = boot()
    warm_slab(m, 6 * 4)
    vm.vfree(m, vm.vmalloc(m, PAGE))      # makes the pte table, which stays (as in 2.6.12)
    pa.drain_local_pages(m)               # count the per-CPU hot list's frames as free
    before = frames(m)
    addr = vm.vmalloc(m, 5 * PAGE + 1)
    assert m.vm_areas[addr].nr_pages == 6
    vm.vfree(m, addr)                     # __free_page each: onto CPU 0's hot list
    pa.drain_local_pages(m)
    assert frames(m) == before
    assert m.vmlist == [] and m.vmalloc_owner == {}
    assert all(lookup_pte(m, addr + i * PAGE) == 0 for i in range(7))
    assert m.vmalloc_holes == {0xF8800000: 0xFF7FE000}


def test_failure_part_way_through_the_pages_leaks_nothing():
    m = boot(phys_pages=80, highmem_pages=0, page_policy="buddy")   # no watermarks
    warm_slab(m, 78 * 4)
    before = frames(m)
    free = before[0]
    # more pages than are free, fewer than the machine has: alloc_page fails part-way
    assert free < 78 < m.nr_pages
    assert vm.vmalloc(m, 78 * PAGE) is None
    assert frames(m) == before
    assert m.vmlist == [] and m.vmalloc_owner == {}
    assert m.vmalloc_holes == {m.vmalloc_start: m.vmalloc_end}
    assert not broken(m)
    # the same request that fits succeeds afterwards
    assert vm.vmalloc(m, (free - 4) * PAGE) == m.vmalloc_start


def test_failure_for_want_of_a_pte_table_leaks_nothing():
    m = boot(phys_pages=80, highmem_pages=0, page_policy="buddy")   # no watermarks
    free = pa.nr_free_pages(m)
    warm_slab(m, 4 * (free - 8))
    before = frames(m)
    n = before[0]
    # n pages: every free frame; the pte table finds none left (map_vm_area: -ENOMEM)
    assert vm.vmalloc(m, n * PAGE) is None
    assert frames(m) == before and m.pte_table_pfns == {}
    assert m.vmlist == [] and not broken(m)
    addr = vm.vmalloc(m, (n - 1) * PAGE)
    assert addr == m.vmalloc_start and len(m.pte_table_pfns) == 1
    assert not broken(m)


def test_failure_for_want_of_a_hole_leaks_nothing():
    m = boot()
    warm_slab(m)
    before = frames(m)
    live = dict(m.slab.kmalloc_req)
    span = m.vmalloc_end - m.vmalloc_start            # 112 MiB - 8 KiB
    assert vm.vmalloc(m, span) is None                 # + guard page: one page too many
    assert frames(m) == before and m.slab.kmalloc_req == live
    # the area and its page array (28 pages + guard, __vmalloc'ed after it) fit
    addr = vm.vmalloc(m, span - 40 * PAGE)
    assert addr == m.vmalloc_start
    assert m.vm_areas[addr].pages_addr == addr + span - 39 * PAGE
    assert not broken(m)
    vm.vfree(m, addr)
    area = vm.get_vm_area(m, span - PAGE, vm.VM_ALLOC)   # exactly fills the range
    assert area.addr + area.size == m.vmalloc_end and m.vmalloc_holes == {}


def test_failure_of_the_page_array_leaks_nothing(monkeypatch):
    m = boot()
    warm_slab(m, 12)
    before = frames(m)
    calls = []

    def kmalloc_second_fails(machine, size, gfp):
        calls.append(size)
        return None if len(calls) == 2 else km.kmalloc(machine, size, gfp)

    monkeypatch.setattr(vm, "kmalloc", kmalloc_second_fails)
    assert vm.vmalloc(m, 3 * PAGE) is None
    assert calls == [vm.SIZEOF_VM_STRUCT, 12]           # descriptor, then 3 page pointers
    assert frames(m) == before and m.vmlist == []


def test_vm_struct_comes_from_kmalloc():
    m = boot()
    addr = vm.vmalloc(m, PAGE)
    area = m.vm_areas[addr]
    # 28 bytes (7 words on i386) -> size-32; the page array of 1 pointer too
    assert m.slab.kmalloc_req[area.kaddr] == vm.SIZEOF_VM_STRUCT
    assert m.slab.kmalloc_req[area.pages_addr] == 4
    vm.vfree(m, addr)
    assert area.kaddr not in m.slab.kmalloc_req


def test_big_area_vmallocs_its_page_array():
    m = boot()
    addr = vm.vmalloc(m, 1025 * PAGE)
    area = m.vm_areas[addr]
    # 1025 pointers = 4100 bytes > PAGE_SIZE: __vmalloc'ed, placed after the area
    assert area.pages_vmalloced and area.pages_addr == addr + 1026 * PAGE
    inner = m.vm_areas[area.pages_addr]
    assert inner.nr_pages == 2 and inner.parent == addr
    assert not broken(m)
    with pytest.raises(KernelBug) as bug:
        vm.vfree(m, inner.addr)
    assert bug.value.rule == "vfree_pages_array"
    vm.vfree(m, addr)
    assert m.vmlist == [] and not broken(m)


@pytest.mark.parametrize("offset,rule", [(1, "vfree_bad_address"),
                                         (PAGE, "vfree_nonexistent"),
                                         (8 * PAGE, "vfree_nonexistent"),
                                         (-PAGE, "vfree_nonexistent")])
def test_vfree_misuse_changes_nothing(offset, rule):
    m = boot()
    addr = vm.vmalloc(m, 3 * PAGE)
    before = pickle.dumps(m.__dict__)
    with pytest.raises(KernelBug) as bug:
        vm.vfree(m, addr + offset)
    assert bug.value.rule == rule
    assert pickle.dumps(m.__dict__) == before


def test_double_vfree_and_null():
    m = boot()
    addr = vm.vmalloc(m, PAGE)
    vm.vfree(m, addr)
    before = pickle.dumps(m.__dict__)
    vm.vfree(m, None)
    vm.vfree(m, 0)
    with pytest.raises(KernelBug) as bug:
        vm.vfree(m, addr)
    assert bug.value.rule == "vfree_nonexistent"
    assert pickle.dumps(m.__dict__) == before


def test_sizes_that_return_null():
    m = boot(phys_pages=64, highmem_pages=0)
    assert vm.vmalloc(m, 0) is None
    assert vm.vmalloc(m, -5) is None
    assert vm.vmalloc(m, (m.nr_pages + 1) * PAGE) is None     # > num_physpages
    assert m.vmlist == []


def test_vmalloc_to_page_outside_the_vmalloc_area():
    m = boot()
    with pytest.raises(KernelBug) as bug:
        vm.vmalloc_to_page(m, 0xC0001000)          # the direct map's large pages
    assert bug.value.rule == "not_vmalloc_address"
    assert vm.vmalloc_to_page(m, m.vmalloc_start - PAGE) is None     # the 8 MiB gap
    assert vm.vmalloc_to_page(m, 0xFFFFE000) is None                 # the fixmap


def test_kernel_quirk_area_past_vmalloc_end():
    """2.6.12 __get_vm_area checks VMALLOC_END only inside its loop, right after stepping
    past an area: with an empty vmlist an oversized area is placed anyway. The spec
    (vm_area_bounds) forbids it."""
    m = boot()
    span = m.vmalloc_end - m.vmalloc_start
    assert vm.get_vm_area(m, span, vm.VM_ALLOC) is None
    area = vm.get_vm_area(m, span, vm.VM_ALLOC, check_end=False)
    assert area.addr == m.vmalloc_start and area.addr + area.size > m.vmalloc_end
    assert check(m, "vm_area_bounds")


def test_the_end_check_runs_after_the_last_area():
    """With one area in vmlist the loop steps past it and checks addr > end - size: an
    area that would cross VMALLOC_END after the last one is refused even by the kernel."""
    m = boot()
    first = vm.get_vm_area(m, PAGE, vm.VM_ALLOC)            # 1 page + guard
    rest = m.vmalloc_end - (first.addr + first.size)
    assert vm.get_vm_area(m, rest, vm.VM_ALLOC, check_end=False) is None   # + guard
    assert vm.get_vm_area(m, rest - PAGE, vm.VM_ALLOC, check_end=False) is not None


def test_other_profile_has_no_vmalloc():
    m = boot(profile="linux-6.x-x86_64", phys_pages=4096, highmem_pages=0)
    with pytest.raises(ConfigError):
        vm.vmalloc(m, PAGE)


def test_vmap_maps_the_callers_pages_and_vunmap_keeps_them():
    m = boot()
    pages = [pa.alloc_page(m, GFP_KERNEL | 0x02) for _ in range(3)]
    warm_slab(m)
    table = vm.vmalloc(m, PAGE)           # the pte table stays after vfree
    vm.vfree(m, table)
    before = frames(m)
    addr = vm.vmap(m, pages)
    assert addr == 0xF8800000
    assert [vm.vmalloc_to_pfn(m, addr + i * PAGE) for i in range(4)] == \
        [p.pfn for p in pages] + [None]
    assert m.vm_areas[addr].nr_pages == 0 and m.vmalloc_owner == {}   # as 2.6.12
    from kmemspec.ops_vmalloc import vmallocinfo_text
    assert vmallocinfo_text(m) == "0xf8800000-0xf8804000   16384 vmap vmap"
    assert not broken(m)
    vm.vunmap(m, addr)
    assert m.vmlist == [] and frames(m) == before
    assert all(p.pfn in m.page_owner for p in pages)
    assert not broken(m)
    # 2.6.12 vfree of a vmap area: __vunmap(addr, 1) loops over nr_pages = 0 and
    # kfrees a NULL page array -- the same clean unmap, the pages stay the caller's
    addr = vm.vmap(m, pages)
    vm.vfree(m, addr)
    assert m.vmlist == [] and frames(m) == before
    assert all(p.pfn in m.page_owner for p in pages)
    assert not broken(m)


def test_vmap_misuse():
    m = boot()
    addr = vm.vmalloc(m, PAGE)
    page = pa.alloc_page(m, GFP_KERNEL)
    free = pa.alloc_page(m, GFP_KERNEL)
    pa.__free_page(m, free)
    before = pickle.dumps(m.__dict__)
    with pytest.raises(KernelBug) as bug:
        vm.vmap(m, [page, free])
    assert bug.value.rule == "vmap_unallocated"
    with pytest.raises(KernelBug) as bug:
        vm.vunmap(m, addr)
    assert bug.value.rule == "vunmap_vmalloc"
    assert pickle.dumps(m.__dict__) == before
    assert vm.vmap(m, []) is None


def test_vmap_scenario_vfree_is_a_clean_unmap():
    """examples/scenarios/vmalloc_vmap.jsonl: vmap maps p then q at 0xf8800000 and
    0xf8801000; vfree unmaps them and leaves both pages allocated to the caller."""
    run = run_scenario(parse_file(str(SCENARIOS / "vmalloc_vmap.jsonl")))
    assert run.exit_code == 0, run.results
    assert all(e.get("as_expected", True) for e in run.results)
    got = [e["ret"] for e in run.results if e["op"] == "vmalloc_to_page"]
    # p and q: the head of CPU 0's HighMem hot list after boot, 262143 then 262142
    assert got == [262143, 262142, None]
    assert [e["ret"] for e in run.results if e["op"] == "vmap"] == [0xF8800000]
