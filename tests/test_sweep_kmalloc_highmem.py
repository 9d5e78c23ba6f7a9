"""The kmalloc / highmem sweep rows (kmemspec/sweeps/kmalloc_highmem.py): every row holds
on the model, and each group fails on a model with one small bug (the mutation driver's
kind of change, applied by tests/mutants.py `mutate`)."""

from __future__ import annotations

import pytest

from kmemspec.model import highmem as hm, kmalloc as km
from kmemspec.model.errors import KernelBug
from kmemspec.sweeps import kmalloc_highmem as sw
from mutants import failing, mutate


@pytest.mark.parametrize("group", sw.FACT_GROUPS, ids=lambda g: g.__name__)
def test_every_row_holds(group):
    assert failing(group) == []


def test_rows_are_cheap():
    import time
    start = time.process_time()
    for group in sw.FACT_GROUPS:
        for fact in group():
            fact.model(), fact.expected()
    assert time.process_time() - start < 1.5


# (group, function, old, new): each change must make at least one row of the group fail
MUTANTS = [
    # kmalloc_index / _index_table (the table is cached per size tuple: emptied below)
    (sw._index_facts, km, "_index_table", "(size >> _GRAIN) + 1 - len(table)",
     "(size >> _GRAIN) - len(table)"),
    (sw._index_facts, km, "_index_table", "(size >> _GRAIN) + 1 - len(table)",
     "((size >> _GRAIN) | 1) - len(table)"),
    (sw._index_facts, km, "kmalloc_index", "if size > sizes[-1]", "if size >= sizes[-1]"),
    # the class sweep
    (sw._class_facts, km, "kmalloc", "state.malloc_sizes_dma if gfp_mask & __GFP_DMA else",
     "state.malloc_sizes_dma if gfp_mask & __GFP_HIGH else"),
    (sw._class_facts, km, "ksize", "return slab.cache.objsize", "return slab.cache.num"),
    (sw._class_facts, km, "kfree", "state.kmalloc_req.pop(addr, None)",
     "state.kmalloc_req.get(addr, None)"),
    (sw._class_facts, km, "kmalloc", "state.kmalloc_req[addr] = size",
     "state.kmalloc_req[addr] = size + 1"),
    # edges: the fourth sample's #22 (ksize(NULL) = 0) and the 2.6.12 sentinel
    (sw._edge_facts, km, "ksize", "return 0", "return -1"),
    (sw._edge_facts, km, "kmalloc", "if profile.KMALLOC_MAX_CACHE_SIZE is None:",
     "if profile.KMALLOC_MAX_CACHE_SIZE is not None:"),
    (sw._edge_facts, km, "kmalloc", "if not size and profile.slab_flavour",
     "if size == 1 and profile.slab_flavour"),
    (sw._edge_facts, km, "_ignored", "return not addr or", "return addr == 1 or"),
    # SLUB large kmalloc
    (sw._large_facts, km, "_kmalloc_large", "get_order(size, profile.PAGE_SHIFT)",
     "get_order(size - 1, profile.PAGE_SHIFT)"),
    (sw._large_facts, km, "_find", "not addr & (profile.PAGE_SIZE - 1)",
     "addr & (profile.PAGE_SIZE - 1) <= 8"),
    (sw._large_facts, km, "_find", "not addr & (profile.PAGE_SIZE - 1)",
     "not addr & (profile.PAGE_SIZE - 2)"),
    (sw._large_facts, km, "ksize", "PAGE_SIZE << machine.slab.kmalloc_large[where]",
     "PAGE_SIZE * machine.slab.kmalloc_large[where]"),
    # kmalloc misuse
    (sw._kmalloc_misuse_facts, km, "kmalloc", "size < 0", "size < -1"),
    (sw._kmalloc_misuse_facts, km, "kmalloc", "    check_cpu(machine, cpu)\n", "\n"),
    (sw._kmalloc_misuse_facts, km, "kmalloc", "_check_alloc(cachep, gfp_mask, cpu)",
     "_check_alloc(cachep, 0, cpu)"),
    # kfree / ksize misuse: the fourth sample's #20 and #21 (the ZERO_SIZE_PTR and
    # non-int checks are now in _ignored, shared by kfree and ksize)
    (sw._free_misuse_facts, km, "_ignored", 'machine.profile.slab_flavour == "slub"',
     'machine.profile.slab_flavour is not "slub"'),
    (sw._free_misuse_facts, km, "_ignored", "if type(addr) is not int:",
     "if type(addr) <= int:"),
    (sw._free_misuse_facts, km, "_ignored", "addr == ZERO_SIZE_PTR", "addr <= ZERO_SIZE_PTR"),
    (sw._free_misuse_facts, km, "_find", "if addr in state.internal:",
     "if addr + 1 in state.internal:"),
    # the CPU argument
    (sw._cpu_facts, km, "kfree", "_cache_free(machine, slab.cache, addr, cpu)",
     "_cache_free(machine, slab.cache, addr, 0)"),
    # highmem
    (sw._kmap_boot_facts, hm, "PKMAP_NR", ">> 12", ">> 11"),
    (sw._kmap_order_facts, hm, "kunmap_high", "-= 1", "-= 2"),
    (sw._kmap_order_facts, hm, "kmap_high", "+= 1", "+= 2"),
    (sw._kmap_order_facts, hm, "map_new_virtual", "(pfn << 12) | kmap_prot",
     "(pfn << 12) + kmap_prot + 1"),
    (sw._kmap_wrap_facts, hm, "flush_all_zero_pkmaps", "range(LAST_PKMAP)",
     "range(LAST_PKMAP - 1)"),
    (sw._kmap_wrap_facts, hm, "flush_all_zero_pkmaps", "if counts[i] != 1:",
     "if counts[i] > 1:"),
    (sw._kmap_wrap_facts, hm, "map_new_virtual", "if not nr:", "if nr == 1:"),
    (sw._kmap_order_facts, hm, "map_new_virtual", "if not nr:", "if nr >= 0:"),
    (sw._kmap_full_facts, hm, "map_new_virtual", "if not counts[nr]:", "if counts[nr] < 2:"),
    (sw._kmap_full_facts, hm, "map_new_virtual", "if min(counts) > 1:",
     "if min(counts) >= 1:"),
    (sw._kmap_full_facts, hm, "map_new_virtual", "range(2 * LAST_PKMAP)", "range(LAST_PKMAP)"),
    (sw._kmap_misuse_facts, hm, "kmap", "or pfn in machine.pcp_pages:",
     "or pfn in machine.page_owner:"),
    (sw._kmap_misuse_facts, hm, "kmap", "if not mem_map.flags[pfn] & PG_highmem:",
     "if not mem_map.flags[pfn] // PG_highmem:"),
    (sw._kmap_misuse_facts, hm, "kunmap", "if not machine.mem_map.flags[pfn] & PG_highmem:",
     "if not machine.mem_map.flags[pfn] + PG_highmem:"),
    (sw._kmap_misuse_facts, hm, "kunmap", "if vaddr is None:", "if vaddr is 0:"),
    (sw._kmap_order_facts, hm, "kunmap", "< 2:", "< 1:"),
    (sw._kmap_order_facts, hm, "kunmap", "< 2:", "!= 2:"),
    (sw._page_address_facts, hm, "set_page_address", "if vaddr is None:",
     "if vaddr is not None:"),
]


@pytest.mark.parametrize("group, module, name, old, new", MUTANTS,
                         ids=lambda x: x.__name__ if callable(x) else None)
def test_group_fails_on_mutant(monkeypatch, group, module, name, old, new):
    monkeypatch.setattr(km, "_INDEX_TABLES", {})
    mutate(monkeypatch, module, name, old, new)
    assert failing(group)


# --- the two model fixes this sweep found --------------------------------------------------

def test_kmalloc_with_a_non_int_gfp_is_bad_gfp_not_a_type_error():
    from kmemspec.model.boot import boot
    m = boot(phys_pages=8192, highmem_pages=0)
    for gfp in ("GFP_KERNEL", None, 1.0):
        with pytest.raises(KernelBug) as err:
            km.kmalloc(m, 32, gfp)
        assert err.value.rule == "bad_gfp"


def test_kmap_of_a_free_frame_on_a_per_cpu_list_is_kmap_free_page():
    """Boot frees highmem through CPU 0's hot list (2.6.12 set_highmem_pages_init), so
    frames wait there free; kmap of one used to map it."""
    from kmemspec.model.boot import boot
    m = boot(phys_pages=8192, highmem_pages=2048)
    pfn = m.zones[2].pageset[0].pcp[0].list[0]
    assert pfn in m.pcp_pages
    with pytest.raises(KernelBug) as err:
        hm.kmap(m, m.mem_map + pfn)
    assert err.value.rule == "kmap_free_page"
    assert pfn not in m.page_address_htable and sum(m.pkmap_count) == 0


def test_equivalent_mutants_by_enumeration():
    """The arithmetic mutants spec/sweeps.md argues equivalent give the same value on
    every input the model can reach: offsets from PKMAP_BASE (every byte of the 4 MiB
    pkmap area, sampled) and from PAGE_OFFSET (the direct map of either profile), and
    a pte of any 32-bit frame number with kmap_prot."""
    from kmemspec.model.pgtable import PKMAP_BASE, kmap_prot
    from kmemspec.model.profiles import PROFILES
    base = PKMAP_BASE()
    for v in range(base, base + (1024 << 12), 4093):
        assert (v - base) >> 12 == (v % base) >> 12 == (v ^ base) >> 12
    for profile in PROFILES.values():
        po = profile.PAGE_OFFSET
        for d in range(0, 896 << 20, 4099 * 37):
            a = po + d
            assert (a - po) >> 12 == (a ^ po) >> 12 == (a % po) >> 12
    for pfn in range(0, 1 << 20, 997):
        assert (pfn << 12) | kmap_prot == (pfn << 12) + kmap_prot == (pfn << 12) ^ kmap_prot
    # the flavour and block-kind strings: == agrees with >= on the values that exist
    for flavour in {p.slab_flavour for p in PROFILES.values()}:
        assert (flavour == "slub") == (flavour >= "slub")
    for kind in ("free", "allocated"):
        assert (kind == "free") == (kind >= "free")
