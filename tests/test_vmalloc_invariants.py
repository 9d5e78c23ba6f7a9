"""Every vmalloc/kmap invariant part holds on real states and fails on broken ones.

Each test breaks one thing in a machine that holds the whole catalogue and checks that
the named part reports it (as lib/tests/slub_kunit.c corrupts a slab and counts errors).
"""

import pytest

from kmemspec.model import boot
from kmemspec.model import highmem as hm
from kmemspec.model import kmalloc as km
from kmemspec.model import page_alloc as pa
from kmemspec.model import vmalloc as vm
from kmemspec.model.gfp import GFP_HIGHUSER, GFP_KERNEL
from kmemspec.model.mem_map import PG_slab
from kmemspec.model.pgtable import PAGE_KERNEL, lookup_pte, mk_pte, pte_clear, set_pte
from kmemspec.spec import check_all
from kmemspec.spec import highmem as spec_highmem
from kmemspec.spec import vmalloc as spec_vm

PAGE = 4096
free_page = pa.__free_page


@pytest.fixture
def m():
    machine = boot(phys_pages=8192, highmem_pages=2048)
    machine.a = vm.vmalloc(machine, 3 * PAGE)
    machine.b = vm.vmalloc(machine, PAGE)
    machine.big = vm.vmalloc(machine, 1100 * PAGE)        # its page array is vmalloc'ed
    machine.hp = pa.alloc_page(machine, GFP_HIGHUSER)
    hm.kmap(machine, machine.hp)
    assert not any(check_all(machine).values())
    return machine


def area(m, addr):
    return m.vm_areas[addr]


def free_pfn(m):
    """Some frame the buddy allocator holds free."""
    page = pa.alloc_page(m, GFP_KERNEL)
    free_page(m, page)
    return page.pfn


# --- page_table_consistency ---------------------------------------------------

def ptc(m):
    return spec_vm.inv_page_table_consistency(m)


def test_ptc_guard_page_mapped(m):
    set_pte(m, m.a + 3 * PAGE, mk_pte(area(m, m.a).pages[0], PAGE_KERNEL))
    assert any("guard page" in v for v in ptc(m))


def test_ptc_pte_in_a_hole(m):
    set_pte(m, m.a - 5 * PAGE + 8 * 1024 * 1024, mk_pte(1234, PAGE_KERNEL))
    found = ptc(m)
    assert any("hole" in v for v in found), found


def test_ptc_pte_between_vmalloc_end_and_pkmap(m):
    set_pte(m, m.vmalloc_end, mk_pte(1234, PAGE_KERNEL))
    assert any("outside the vmalloc range" in v for v in ptc(m))


def test_ptc_wrong_frame_at_an_index(m):
    a = area(m, m.a)
    set_pte(m, m.a + PAGE, mk_pte(a.pages[2], PAGE_KERNEL))
    assert any("page 1 of the area" in v for v in ptc(m))


def test_ptc_page_not_mapped(m):
    pte_clear(m, m.b)
    assert any("is not mapped" in v for v in ptc(m))


def test_ptc_freed_area_leaves_ptes(m, monkeypatch):
    monkeypatch.setattr(vm, "unmap_vm_area", lambda machine, area: None)
    vm.vfree(m, m.a)
    assert lookup_pte(m, m.a)
    assert any("maps a hole" in v for v in ptc(m))


def test_ptc_frame_freed_behind_vmallocs_back(m):
    pfn = area(m, m.b).pages[0]
    free_page(m, m.mem_map + pfn)
    assert any("not an allocated single frame" in v for v in ptc(m))


def test_ptc_mem_map_owner_disagrees(m):
    m.vmalloc_owner[area(m, m.a).pages[1]] = m.b
    assert any("vmalloc owner" in v for v in ptc(m))


def test_ptc_owner_records_an_extra_frame(m):
    m.vmalloc_owner[free_pfn(m)] = m.a
    assert any("mem_map records" in v for v in ptc(m))


def test_ptc_direct_map_damaged(m):
    m.swapper_pg_dir[0x300] = 0
    assert any("direct map" in v for v in ptc(m))


# --- vm_area_bounds -----------------------------------------------------------

def vab(m):
    return spec_vm.inv_vm_area_bounds(m)


def test_vab_unaligned_area(m):
    area(m, m.b).size += 100
    assert any("not page aligned" in v for v in vab(m))


def test_vab_area_outside_the_range(m):
    # only an empty vmlist lets 2.6.12 place an area past VMALLOC_END (check_end=False)
    for a in [a for a in m.vmlist if not a.parent]:
        vm.vfree(m, a.addr) if a.flags & vm.VM_ALLOC else vm.vunmap(m, a.addr)
    big = vm.get_vm_area(m, m.vmalloc_end - m.vmalloc_start, vm.VM_ALLOC, check_end=False)
    assert big is not None
    assert any("leaves the vmalloc range" in v for v in vab(m))


def test_vab_overlap_including_guard_page(m):
    # a's guard page is its 4th page; make a one page longer so it runs into b
    a = area(m, m.a)
    a.size += PAGE
    found = vab(m)
    assert any("overlaps" in v for v in found), found


def test_vab_nr_pages_disagrees_with_size(m):
    area(m, m.a).nr_pages = 2
    assert any("nr_pages" in v for v in vab(m))


def test_vab_hole_index_wrong(m):
    m.vmalloc_holes[m.vmalloc_hole_starts[-1]] += PAGE
    assert any("hole index" in v for v in vab(m))


def test_vab_vmlist_out_of_order(m):
    m.vmlist.reverse()
    found = vab(m)
    assert any("vmlist_starts" in v for v in found)


def test_vab_area_index_wrong(m):
    del m.vm_areas[m.b]
    assert any("area index" in v for v in vab(m))


# --- no_overlap (vmalloc part) ---------------------------------------------------

def nov(m):
    return spec_vm.inv_no_overlap_vmalloc(m)


def test_nov_frame_in_two_areas(m):
    area(m, m.b).pages[0] = area(m, m.a).pages[0]
    assert any("backs the area" in v for v in nov(m))


def test_nov_frame_marked_slab(m):
    m.mem_map.flags[area(m, m.a).pages[2]] |= PG_slab
    assert any("free, reserved or slab" in v for v in nov(m))


def test_nov_descriptors_share_an_address(m):
    area(m, m.b).kaddr = area(m, m.a).kaddr
    assert any("shares address" in v for v in nov(m))


# --- conservation (vmalloc part) -------------------------------------------------

def cons(m):
    return spec_vm.inv_conservation_vmalloc(m)


def test_cons_descriptor_kfreed_behind_vmallocs_back(m):
    km.kfree(m, area(m, m.a).kaddr)
    assert any("vm_struct" in v for v in cons(m))


def test_cons_page_array_kfreed(m):
    km.kfree(m, area(m, m.b).pages_addr)
    assert any("page array" in v for v in cons(m))


def test_cons_vmalloced_page_array_lost(m):
    inner = area(m, m.big).pages_addr
    area(m, inner).parent = 0
    assert any("page array" in v and "vmalloc area" in v for v in cons(m))


def test_cons_owner_of_a_dead_area(m):
    m.vmalloc_owner[area(m, m.a).pages[0]] = 0xF0000000
    assert any("not live" in v for v in cons(m))


def test_cons_frame_not_allocated(m):
    pfn = area(m, m.a).pages[0]
    del m.page_owner[pfn]
    assert any("not an allocated single page" in v for v in cons(m))


# --- pkmap_consistency ------------------------------------------------------------

def pkc(m):
    return spec_highmem.inv_pkmap_consistency(m)


def test_pkc_count_without_pte(m):
    m.pkmap_count[7] = 2
    assert any("no pte" in v for v in pkc(m))


def test_pkc_pte_without_count(m):
    m.pkmap_page_table[9] = mk_pte(m.hp.pfn, PAGE_KERNEL)
    assert any("count 0" in v for v in pkc(m))


def test_pkc_htable_points_elsewhere(m):
    m.page_address_htable[m.hp.pfn] += PAGE
    found = pkc(m)
    assert any("page_address_htable" in v for v in found), found


def test_pkc_htable_entry_outside_the_area(m):
    m.page_address_htable[m.hp.pfn + 1] = 0xF9000000
    assert any("outside the pkmap area" in v for v in pkc(m))


def test_pkc_low_page_in_a_slot(m):
    m.pkmap_page_table[1] = mk_pte(100, PAGE_KERNEL)
    assert any("not a highmem page" in v for v in pkc(m))


def test_pkc_users_on_a_freed_page(m):
    # the API refuses (free_kmapped): free behind the htable's back, then restore it
    vaddr = m.page_address_htable.pop(m.hp.pfn)
    free_page(m, m.hp)
    m.page_address_htable[m.hp.pfn] = vaddr
    assert any("kmap users but is not allocated" in v for v in pkc(m))


def test_pkc_last_pkmap_nr_out_of_range(m):
    m.last_pkmap_nr = 1024
    assert any("last_pkmap_nr" in v for v in pkc(m))


def test_pkc_negative_count(m):
    m.pkmap_count[3] = -1
    assert any("is -1" in v for v in pkc(m))


# --- vmap areas -------------------------------------------------------------------

def test_ptc_vmap_of_a_frame_freed_by_its_owner(m):
    page = pa.alloc_page(m, GFP_KERNEL)
    addr = vm.vmap(m, [page])
    assert not ptc(m)
    free_page(m, page)               # the caller's bug: freed while still vmapped
    assert any("vmap area" in v and "not allocated" in v for v in ptc(m))
    vm.vunmap(m, addr)
    assert not ptc(m)


def test_vab_vmap_pages_disagree_with_size(m):
    pages = [pa.alloc_page(m, GFP_KERNEL) for _ in range(2)]
    addr = vm.vmap(m, pages)
    area(m, addr).pages.pop()
    assert any("vmap area" in v for v in vab(m))


# --- pte table frames ---------------------------------------------------------------

def test_ptc_pte_table_frame_freed(m):
    index, pfn = next(iter(m.pte_table_pfns.items()))
    free_page(m, m.mem_map + pfn)
    assert any("pte table" in v and "not an allocated page" in v for v in ptc(m))


def test_ptc_pte_table_without_frame(m):
    del m.pte_table_pfns[next(iter(m.pte_table_pfns))]
    assert any("has no frame" in v for v in ptc(m))


def test_ptc_frame_recorded_without_table(m):
    m.pte_table_pfns[0x3F0] = free_pfn(m)
    assert any("holds no vmalloc pte table" in v for v in ptc(m))


def test_nov_pte_table_frame_also_backs_a_page(m):
    index = next(iter(m.pte_table_pfns))
    m.pte_table_pfns[index] = area(m, m.a).pages[0]
    assert any("pte table" in v for v in nov(m))
