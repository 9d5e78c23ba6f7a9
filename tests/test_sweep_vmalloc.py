"""The vmalloc sweep rows (kmemspec/sweeps/vmalloc.py): each holds on the model, and
each group fails on mutants of the functions it sweeps (tests/mutants.py)."""

import pytest

from kmemspec.model import vmalloc as vm
from kmemspec.model.boot import boot
from kmemspec.sweeps import vmalloc as sv
from tests.mutants import failing, mutate

PAGE = 4096


@pytest.mark.parametrize("group", sv.FACT_GROUPS, ids=lambda g: g.__name__)
def test_every_row_holds(group):
    assert failing(group) == []


def test_kvmlist_reference_by_hand():
    # 2.6.12 __get_vm_area by hand: 1 page + guard at 0, 2 pages + guard at 2; freeing
    # the first leaves a 2-page hole that a 1-page area fills exactly
    k = sv.KVmlist(0, 100 * PAGE)
    assert [k.get(PAGE), k.get(2 * PAGE), k.get(0), k.get(-5)] == [0, 2 * PAGE, None, None]
    assert k.remove(0) == PAGE and k.remove(PAGE) is None
    assert k.gaps() == [(0, 2 * PAGE), (5 * PAGE, 100 * PAGE)]
    assert k.get(1) == 0 and k.get(PAGE) == 5 * PAGE
    assert k.get(93 * PAGE) is None and k.get(92 * PAGE) == 7 * PAGE


def test_get_vm_area_of_size_0_is_null_and_gives_the_descriptor_back():
    # 2.6.12 __get_vm_area: kmalloc the descriptor, then `if (!size) { kfree; NULL }`
    m = boot(phys_pages=8192, highmem_pages=0)
    live = dict(m.slab.kmalloc_req)
    assert vm.get_vm_area(m, 0, vm.VM_ALLOC) is None
    assert vm.get_vm_area(m, -PAGE, vm.VM_ALLOC) is None
    assert m.slab.kmalloc_req == live and m.vmlist == []
    with pytest.raises(vm.KernelBug) as exc:
        vm.get_vm_area(m, "1", vm.VM_ALLOC)
    assert exc.value.rule == "bad_size"


def test_remove_vm_area_returns_the_size_without_the_guard_page():
    # 2.6.12 remove_vm_area: `tmp->size -= PAGE_SIZE` before returning the struct
    m = boot(phys_pages=8192, highmem_pages=0)
    area = vm.get_vm_area(m, 3 * PAGE, vm.VM_ALLOC)
    assert area.size == 4 * PAGE
    assert vm.remove_vm_area(m, area.addr) is area and area.size == 3 * PAGE
    assert vm.remove_vm_area(m, area.addr) is None


# --- each group against mutants of its functions -------------------------------------------

@pytest.mark.parametrize("name, old, new", [
    # the fourth sample's #24: the hole before is at i - 1, not i >> 1
    ("_release", "start = starts[i - 1]", "start = starts[i >> 1]"),
    ("_release", "if i < len(starts) and starts[i] == end:",
     "if i < len(starts) and starts[i] == end + 4096:"),
    ("_take_hole", "if addr + size <= hole_end:", "if addr + size < hole_end:"),
    ("_take_hole", "addr = max(hole, start)", "addr = hole"),
    ("_take_hole", "elif hole_end > end:", "elif hole_end > end + 4096:"),
    ("_carve", "if addr + size < hole_end:", "if addr + size <= hole_end:"),
    ("_carve", "if addr > hole:", "if addr >= hole:"),
    ("__get_vm_area", "if not size:", "if size < 0:"),
    ("__get_vm_area", "check_end: bool = True) -> VmStruct",
     "check_end: bool = False) -> VmStruct"),
    ("__get_vm_area", "if size > 0 else 0", "if size != 0 else 0"),
    ("get_vm_area", "check_end: bool = True) -> VmStruct", "check_end: bool = False) -> VmStruct"),
    ("_take_hole", "hole_end = 1 << 32", "hole_end = 2 << 32"),
    ("_take_hole", "if hole_end == tail and", "if hole_end is tail and"),
    # i is past 256 there: `is not` compares int objects
    ("_release", "if i < len(starts) and", "if i is not len(starts) and"),
    ("remove_vm_area", "area.size -= machine.profile.PAGE_SIZE", "pass"),
    ("VmStruct", "self.nr_pages = 0", "self.nr_pages = 1"),
])
def test_first_fit_rows_catch(monkeypatch, name, old, new):
    if name == "VmStruct":
        source = vm.VmStruct.__init__
        import inspect
        import textwrap
        code = textwrap.dedent(inspect.getsource(source)).replace(old, new)
        space = {}
        exec(compile(code, vm.__file__, "exec"), vm.__dict__, space)
        monkeypatch.setattr(vm.VmStruct, "__init__", space["__init__"])
    else:
        mutate(monkeypatch, vm, name, old, new)
    assert failing(sv._sweep_first_fit_facts)


@pytest.mark.parametrize("name, old, new", [
    ("__vmalloc", "size // page_size > machine.nr_pages", "size // page_size >= machine.nr_pages"),
    ("__vmalloc", "if array_size > page_size:", "if array_size >= page_size:"),
    ("__vmalloc", "size = -(-size // page_size) * page_size if size > 0 else 0",
     "size = size // page_size * page_size if size > 0 else 0"),
    ("__vmalloc", "if type(size) is not int:", "if type(size) is float:"),
    ("vmalloc_32", "GFP_KERNEL, caller", "GFP_KERNEL | __GFP_HIGHMEM, caller"),
])
def test_vmalloc_size_rows_catch(monkeypatch, name, old, new):
    mutate(monkeypatch, vm, name, old, new)
    assert failing(sv._sweep_vmalloc_sizes_facts)


@pytest.mark.parametrize("name, old, new", [
    ("_vunmap", "free_pages_bulk(machine, area.pages)", "free_pages_bulk(machine, area.pages[1:])"),
    ("map_vm_area", "if table is None:\n            return False",
     "if table is None:\n            break"),
    ("vmap", "vunmap(machine, area.addr)\n        return None", "return None"),
])
def test_failure_rows_catch(monkeypatch, name, old, new):
    mutate(monkeypatch, vm, name, old, new)
    assert failing(sv._sweep_vmalloc_failure_facts)


@pytest.mark.parametrize("name, old, new", [
    ("unmap_vm_area", "last = min(PTRS_PER_PTE, first + ((end - addr) >> 12))",
     "last = PTRS_PER_PTE"),
    ("unmap_vm_area", "if isinstance(table, array):", "if True:"),
    ("map_vm_area", "(pfn << 12) | prot", "(pfn << 12) | 1"),
    ("map_vm_area", "table[first:first + count]", "table[first:first | count]"),
])
def test_page_table_rows_catch(monkeypatch, name, old, new):
    mutate(monkeypatch, vm, name, old, new)
    assert failing(sv._sweep_page_table_facts)


@pytest.mark.parametrize("name, old, new", [
    ("_area_to_free", "if addr is None or addr == 0:", "if addr is None:"),
    ("_area_to_free", "addr & (machine.profile.PAGE_SIZE - 1)",
     "addr & (machine.profile.PAGE_SIZE - 2)"),
    ("_area_to_free", "if area.parent:", "if not area:"),
    ("vfree", "_check_not_kmapped(machine, pfn)", "pass"),
    ("vunmap", "if area.flags & VM_ALLOC:", "if area.flags & VM_MAP:"),
])
def test_free_misuse_rows_catch(monkeypatch, name, old, new):
    mutate(monkeypatch, vm, name, old, new)
    assert failing(sv._sweep_free_misuse_facts)


@pytest.mark.parametrize("name, old, new", [
    ("vmap", "len(pfns) > machine.nr_pages", "len(pfns) >= machine.nr_pages"),
    ("vmap", 'if where is None or where[0]', 'if where is not None and where[0]'),
    ("vfree", "if not area.flags & VM_ALLOC:", "if area.flags & VM_IOREMAP:"),
    ("vfree", "if not area.flags & VM_ALLOC:", "if not area.flags * VM_ALLOC:"),
])
def test_vmap_rows_catch(monkeypatch, name, old, new):
    mutate(monkeypatch, vm, name, old, new)
    assert failing(sv._sweep_vmap_facts)


@pytest.mark.parametrize("name, old, new", [
    ("find_vm_area", "if addr < area.addr + area.size:", "if addr <= area.addr + area.size:"),
    ("_is_large", "entry != 0", "entry == 0"),
    ("vmalloc_to_page", "if not pte & 1:", "if pte & 1:"),
    ("vmalloc_to_page", "not 0 <= addr < 1 << 32", "not 0 <= addr <= 1 << 32"),
    ("vmalloc_to_page", "not 0 <= addr < 1 << 32", "not 0 <= addr != 1 << 32"),
    ("vmalloc_to_page", "create=False", "create=True"),
    ("vmallocinfo", '"end": a.addr + a.size', '"end": a.addr + a.size - 4096'),
    ("vmalloc_init", "machine.vmalloc_holes = {start: end} if end > start else {}",
     "machine.vmalloc_holes = {start: end - 4096} if end > start else {}"),
])
def test_lookup_rows_catch(monkeypatch, name, old, new):
    mutate(monkeypatch, vm, name, old, new)
    assert failing(sv._sweep_lookup_facts)
