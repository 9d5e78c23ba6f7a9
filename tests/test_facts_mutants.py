"""The facts rows added for issue 17's mutation sample (kmemspec/facts.py, the
`_mutation_*` groups): each holds on the model and fails on the mutant that showed it
missing (spec/mutants.md), reproduced here by a monkeypatch of the same change."""

from __future__ import annotations

import importlib
import importlib.util
from math import isqrt
from pathlib import Path

import pytest

from kmemspec import facts
from kmemspec.facts import check_facts, k_pcp_counts
from kmemspec.model import page_alloc as pa
from kmemspec.verify import METHODS, Row, verify
from mutants import failing, mutate

boot_mod = importlib.import_module("kmemspec.model.boot")

GROUPS = {
    "min_free": facts._mutation_min_free_kbytes_facts,
    "pcp": facts._mutation_pcp_facts,
    "bulk": facts._mutation_bulk_facts,
    "compound": facts._mutation_compound_facts,
    "slub": facts._mutation_slub_facts,
    "cpucache": facts._mutation_cpucache_facts,
    "vmalloc": facts._mutation_vmalloc_facts,
    "kmap": facts._mutation_kmap_facts,
}


def test_the_new_groups_are_registered_and_hold():
    assert all(g in facts.FACT_GROUPS for g in GROUPS.values())
    for name, group in GROUPS.items():
        assert failing(group) == [], name
    names = {r.name for r in check_facts()}
    assert any(n.startswith("min_free_kbytes") for n in names)


def test_min_free_kbytes_by_hand():
    # 2.6.12 init_per_zone_pages_min's own comment: 16 MB -> 512k, 64 MB -> 1024k
    assert isqrt(16 * 1024 * 16) == 512 and isqrt(64 * 1024 * 16) == 1024
    assert facts._mutation_min_free_kbytes_facts()[0].expected()[1:] == [1024, 128, 512]


def test_min_free_kbytes_fails_when_lowmem_is_the_dma_zonelist(monkeypatch):
    # mutant page_alloc.py init_per_zone_pages_min: zonelists[1] -> zonelists[0]
    def dma_only(machine, min_free_kbytes=None):
        low = sum(z.present_pages for z in machine.zonelists[0])
        value = min(max(isqrt(low * 4 * 16), 128), 65536)
        machine.min_free_kbytes = value
        pa.setup_per_zone_pages_min(machine.zones, value, machine.profile.PAGE_SHIFT)
        pa.setup_per_zone_lowmem_reserve(machine.zones)
        return value
    monkeypatch.setattr(boot_mod, "init_per_zone_pages_min", dma_only)
    assert failing(GROUPS["min_free"])


def test_pcp_counts_by_hand():
    # batch 2: low 4, high 12. Allocs: 0 <= 4 refill 2 -> 1; 1 -> 2; 2 -> 3; 3 -> 4;
    # 4 <= 4 -> 5; 5 > 4 -> 4. Frees up to 12, then a drain of 2 before the add.
    assert k_pcp_counts("aaaaaa", 4, 12, 2) == [1, 2, 3, 4, 5, 4]
    counts = k_pcp_counts("a" * 6 + "f" * 9, 4, 12, 2)
    assert counts[6:] == [5, 6, 7, 8, 9, 10, 11, 12, 11]


def test_pcp_fails_on_a_wrong_batch(monkeypatch):
    real = boot_mod.zone_batchsize
    monkeypatch.setattr(boot_mod, "zone_batchsize", lambda zone, size: real(zone, size) + 1)
    assert failing(GROUPS["pcp"])


def test_pcp_fails_when_the_drain_gives_back_one_frame_too_few(monkeypatch):
    real = pa._pcp_free_bulk
    monkeypatch.setattr(pa, "_pcp_free_bulk",
                        lambda m, zone, pcp, count: real(m, zone, pcp, max(count - 1, 0)))
    assert failing(GROUPS["pcp"])


def test_bulk_fails_when_a_pass_takes_more_than_asked(monkeypatch):
    # mutant page_alloc.py _pcp_take: nr_pages - len(taken) -> nr_pages + len(taken)
    real = pa._pcp_take
    monkeypatch.setattr(pa, "_pcp_take", lambda m, zone, floor, gfp, cpu, n, taken:
                        real(m, zone, floor, gfp, cpu, n + 1, taken))
    assert failing(GROUPS["bulk"])


def test_bulk_fails_when_the_hot_free_goes_in_the_wrong_order(monkeypatch):
    real = pa._free_hot_pages
    monkeypatch.setattr(pa, "_free_hot_pages",
                        lambda m, pfns, cpu: real(m, list(reversed(pfns)), cpu))
    assert failing(GROUPS["bulk"])


def test_compound_fails_when_every_high_order_block_is_compound(monkeypatch):
    # mutant page_alloc.py alloc_pages: gfp_mask & __GFP_COMP -> gfp_mask + __GFP_COMP
    real = pa.alloc_pages
    monkeypatch.setattr(pa, "alloc_pages", lambda m, gfp, order, cpu=0:
                        real(m, gfp | 0x4000 if order else gfp, order, cpu))
    assert failing(GROUPS["compound"])


def test_compound_fails_when_no_compound_block_can_be_freed(monkeypatch):
    # mutant page_alloc.py _check_compound: order == 0 -> order >= 0 (always bad)
    def always_bad(machine, pfn, order):
        raise pa.KernelBug("bad_compound", "seeded", pfn=pfn)
    monkeypatch.setattr(pa, "_check_compound", always_bad)
    assert failing(GROUPS["compound"])


def test_fail_fast_runs_z3_last_and_stops_before_it(monkeypatch):
    ran = []

    def fake(name, ok=True):
        def method(budget, **_):
            ran.append(name)
            return [Row("x", name, "held" if ok else "broken", 0.0)]
        return method
    fakes = {name: fake(name) for name in METHODS}
    monkeypatch.setattr("kmemspec.verify.METHODS", fakes)
    verify("quick", fail_fast=True)
    assert ran == ["facts", "Hypothesis", "CrossHair", "Z3"]
    ran.clear()
    verify("quick")
    assert ran == list(METHODS)              # the table's own order without --fail-fast
    ran.clear()
    fakes["Hypothesis"] = fake("Hypothesis", ok=False)
    rows = verify("quick", fail_fast=True)
    assert ran == ["facts", "Hypothesis"] and not rows[-1].ok


@pytest.fixture
def driver():
    path = Path(__file__).resolve().parent.parent / "benches" / "mutation.py"
    spec = importlib.util.spec_from_file_location("mutation_driver", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_driver_shares_the_sample_by_size_with_a_floor(driver):
    counts = {"a": 3406, "b": 3100, "c": 419, "d": 1030, "e": 326}
    share = driver.allocate(counts, 64, 4)
    assert sum(share.values()) == 64
    assert min(share.values()) >= 4
    assert share["a"] > share["b"] > share["d"] > share["c"] >= share["e"]
    assert driver.allocate({"a": 2, "b": 100}, 10, 4) == {"a": 2, "b": 8}


def test_slub_names_fail_with_a_fractional_label(monkeypatch):
    # mutant slab.py _general_names: size // 1024 -> size / 1024 ("kmalloc-1.0k")
    from kmemspec.model import slab
    real = slab._general_names

    def fractional(profile, size):
        if profile.slab_flavour == "slub" and size >= 1024:
            return f"kmalloc-{size / 1024}k", f"dma-kmalloc-{size / 1024}k"
        return real(profile, size)
    monkeypatch.setattr(slab, "_general_names", fractional)
    assert failing(facts._mutation_slub_facts) == [
        "SLUB profile: kmalloc cache names (kmalloc_info)"]


def test_slub_objects_per_slab_fail_with_slab_management_in_the_slab(monkeypatch):
    # mutant slab.py kmem_cache_init: the SLAB cache_estimate branch on SLUB too
    from kmemspec.model import slab
    real = slab._new_cache

    def with_management(profile, name, geo, flags, ctor):
        if profile.slab_flavour == "slub" and geo["num"] > 1:
            geo = dict(geo, num=geo["num"] - 1)
        return real(profile, name, geo, flags, ctor)
    monkeypatch.setattr(slab, "_new_cache", with_management)
    assert "SLUB profile: objects per slab = (PAGE_SIZE << order) / size" in failing(
        facts._mutation_slub_facts)


def test_cpucache_by_hand():
    # 2.6.12 enable_cpucache on 4 KiB pages: 64 B -> 120/60, shared 480; 3000 B -> 24/12,
    # shared 96; 8192 B -> 8/4, no shared array entries; 200000 B -> 1/1
    assert facts.k_cpucache(64, 4096) == (120, 60, 480)
    assert facts.k_cpucache(3000, 4096) == (24, 12, 96)
    assert facts.k_cpucache(8192, 4096) == (8, 4, 0)
    assert facts.k_cpucache(200000, 4096) == (1, 1, 0)


def test_cpucache_fails_when_free_limit_ignores_the_online_cpus(monkeypatch):
    # mutant slab.py enable_cpucache: (1 + online) -> (1 // online)
    from kmemspec.model import slab
    real = slab.enable_cpucache

    def one_batch(machine, cachep, online, *rest):
        ok = real(machine, cachep, online, *rest)
        cachep.free_limit = cachep.batchcount + cachep.num
        return ok
    monkeypatch.setattr(slab, "enable_cpucache", one_batch)
    assert "slab per-CPU arrays, shared array and free_limit (1, 2, 3 CPUs)" in failing(
        facts._mutation_cpucache_facts)


def test_cpucache_fails_on_a_wrong_boot_free_limit(monkeypatch):
    # mutant slab.py _new_cache: 2 * batchcount + num -> 2 << batchcount + num
    from kmemspec.model import slab
    real = slab._new_cache

    def shifted(profile, name, geo, flags, ctor):
        c = real(profile, name, geo, flags, ctor)
        c.free_limit = 2 << c.batchcount + c.num
        return c
    monkeypatch.setattr(slab, "_new_cache", shifted)
    assert "slab boot head arrays: limit 1, batch 1, free_limit 2 + num (1, 2, 3 CPUs)" in \
        failing(facts._mutation_cpucache_facts)


def test_slub_large_kmalloc_fails_when_kfree_keeps_the_pages(monkeypatch):
    # mutant kmalloc.py _find: addr & (PAGE_SIZE - 1) -> addr & (PAGE_SIZE / 1) (kfree
    # of a large kmalloc breaks); here kfree of a large block forgets to free it
    from kmemspec.model import kmalloc as km
    real = km.kfree

    def keeps_large(machine, addr, cpu=0):
        pfn = (addr - machine.profile.PAGE_OFFSET) >> machine.profile.PAGE_SHIFT
        if pfn in machine.slab.kmalloc_large:
            return None
        return real(machine, addr, cpu)
    monkeypatch.setattr(km, "kfree", keeps_large)
    assert failing(facts._mutation_slub_facts) == [
        "SLUB profile: kmalloc above 8 KiB takes whole pages, kfree returns them"]


def test_first_fit_by_hand():
    # three areas of 1, 2, 1 pages (+ a guard page each) at 0, 2, 5; freeing the first
    # two leaves a 5-page hole at 0, where a 4-page area (5 with its guard) fits
    script = [("a", 1), ("a", 2), ("a", 1), ("f", 0), ("f", 1), ("a", 4), ("a", 1)]
    assert facts.k_first_fit(script, 4096) == [0, 2, 5, -1, -1, 0, 7]


def test_vmalloc_first_fit_fails_when_vfree_leaks_the_guard_page(monkeypatch):
    # like mutant vmalloc.py _release (starts[i - 1] -> starts[i]): holes stop merging
    from kmemspec.model import vmalloc as vm
    real = vm._release
    monkeypatch.setattr(vm, "_release", lambda m, addr, size: real(
        m, addr, size - m.profile.PAGE_SIZE))
    assert failing(facts._mutation_vmalloc_facts)


def test_kmap_wrap_fails_when_the_flush_forgets_the_page_address(monkeypatch):
    # mutant highmem.py flush_all_zero_pkmaps: the flushed page's frame `pte >> 12` ->
    # `pte * 12` (the flush now deletes the htable entry itself, as set_page_address did)
    from kmemspec.model import highmem as hm
    mutate(monkeypatch, hm, "flush_all_zero_pkmaps", "page_address_htable[pte >> 12]",
           "page_address_htable[pte * 12]")
    assert failing(facts._mutation_kmap_facts)


def test_vmalloc_to_page_of_null_is_below_the_direct_map():
    # mutant vmalloc.py vmalloc_to_page: 0 <= addr -> 0 < addr (NULL became bad_address).
    # The spec limits vmalloc_to_page to addresses above the direct map (spec/vmalloc.md):
    # 0 is a 32-bit address below PAGE_OFFSET, so the misuse is not_vmalloc_address.
    from misuse import misuse
    from kmemspec.model import boot, vmalloc as vm
    m = boot()
    misuse(m, "not_vmalloc_address", vm.vmalloc_to_page, 0)
    misuse(m, "bad_address", vm.vmalloc_to_page, 1 << 32)


# --- the second sample (spec/mutants.md): the first sample's three verify survivors ------

SECOND = {"reap": facts._mutation_reap_facts,
          "slub_order": facts._mutation_slub_order_facts,
          "vmalloc_to_page": facts._mutation_vmalloc_to_page_facts,
          "consecutive": facts._mutation_consecutive_facts,
          "bad_cpu": facts._mutation_bad_cpu_facts,
          "vmalloc_large": facts._mutation_vmalloc_large_facts,
          "slub_free": facts._mutation_slub_free_facts,
          "kunmap_low": facts._mutation_kunmap_low_facts}


def test_the_second_sample_groups_are_registered_and_hold():
    assert all(g in facts.FACT_GROUPS for g in SECOND.values())
    for name, group in SECOND.items():
        assert failing(group) == [], name


def test_reap_fails_when_tofree_drops_the_rounding(monkeypatch):
    # first sample's #25, slab.py cache_reap: free_limit + 5 * num - 1 -> free_limit - 5 * ...
    from kmemspec.model import slab
    mutate(monkeypatch, slab, "cache_reap", "(cachep.free_limit + 5 * cachep.num - 1)",
           "(cachep.free_limit - 5 * cachep.num - 1)")
    assert failing(SECOND["reap"])


def test_reap_fails_when_every_free_slab_goes(monkeypatch):
    from kmemspec.model import slab
    mutate(monkeypatch, slab, "cache_reap", "if tofree <= 0:", "if tofree < -1000:")
    assert failing(SECOND["reap"])


def test_slub_order_by_hand():
    # 6.1 calculate_order, 8 CPUs: min_objects 4 * (fls(8) + 1) = 20. 2048 B: 8 pages
    # hold 16 < 20, so min_objects 16, get_order(16 * 2048) = 3, no waste: order 3.
    # 192 B: get_order(20 * 192 = 3840) = 0, 4096 % 192 = 64 <= 4096/16: order 0.
    # 11000 B: min_objects 2, order 3 wastes 10768 > 1/4 of 32 KiB; with 1 object,
    # order 2 (fraction 1).
    assert facts.k_slub_order(2048, 4096) == 3 and facts.k_slub_order(192, 4096) == 0
    assert facts.k_slub_order(256, 4096) == 1 and facts.k_slub_order(11000, 4096) == 2


def test_slub_order_fails_when_order_objects_multiplies(monkeypatch):
    # first sample's #38, slab.py _slub_order's order_objects: page_size << order -> *
    from kmemspec.model import slab
    mutate(monkeypatch, slab, "_slub_order", "return (page_size << order) // size",
           "return (page_size * order) // size")
    assert failing(SECOND["slub_order"])


def test_vmalloc_to_page_row_fails_when_null_is_a_bad_address(monkeypatch):
    # first sample's #54, vmalloc.py vmalloc_to_page: 0 <= addr -> 0 < addr
    from kmemspec.model import vmalloc as vm
    mutate(monkeypatch, vm, "vmalloc_to_page", "not 0 <= addr < 1 << 32",
           "not 0 < addr < 1 << 32")
    assert failing(SECOND["vmalloc_to_page"])


def test_bulk_fails_when_the_first_pass_ignores_the_lowmem_reserve(monkeypatch):
    # second sample's #6, page_alloc.py _order0_passes: pages_low + lowmem_reserve ->
    # pages_low >> lowmem_reserve (a fall-back zone is drained below its first-pass mark)
    mutate(monkeypatch, pa, "_order0_passes", "z.pages_low + z.lowmem_reserve[classzone_idx]",
           "z.pages_low >> z.lowmem_reserve[classzone_idx]")
    assert failing(GROUPS["bulk"])


def test_consecutive_fails_when_a_run_merges_to_order_max_order(monkeypatch):
    # second sample's #7, page_alloc.py _free_consecutive: order < top - 1 -> order < top * 1
    mutate(monkeypatch, pa, "_free_consecutive", "order < top - 1 and", "order < top * 1 and")
    assert failing(SECOND["consecutive"])



def test_bad_cpu_fails_when_an_int_cpu_is_not_range_checked(monkeypatch):
    # second sample's #28, slab.py check_cpu: `type(cpu) is not int or not 0 <= cpu < ...`
    # -> `and` (an int CPU passes unchecked: -1 reaches the last CPU's array)
    from kmemspec.model import slab
    mutate(monkeypatch, slab, "check_cpu", "type(cpu) is not int or not",
           "type(cpu) is not int and not")
    assert failing(SECOND["bad_cpu"])


def test_bad_cpu_fails_when_bool_is_a_cpu(monkeypatch):
    from kmemspec.model import slab
    mutate(monkeypatch, slab, "check_cpu", "type(cpu) is not int", "not isinstance(cpu, int)")
    assert failing(SECOND["bad_cpu"])


def test_vmalloc_large_fails_when_the_page_array_call_breaks(monkeypatch):
    # second sample's #38, vmalloc.py __vmalloc: caller + " (pages)" -> caller % " (pages)"
    # (a TypeError on every vmalloc of more than 1024 pages)
    from kmemspec.model import vmalloc as vm
    mutate(monkeypatch, vm, "__vmalloc", 'caller + " (pages)"', 'caller % " (pages)"')
    assert failing(SECOND["vmalloc_large"])


def test_vmalloc_large_fails_when_the_page_array_is_kmalloced(monkeypatch):
    from kmemspec.model import vmalloc as vm
    mutate(monkeypatch, vm, "__vmalloc", "if array_size > page_size:",
           "if array_size > 2 * page_size:")
    assert failing(SECOND["vmalloc_large"])


def test_reap_fails_when_the_array_drain_is_limit_or_4(monkeypatch):
    # second sample's #23, slab.py drain_array_locked: (ac.limit + 4) // 5 -> (ac.limit | 4)
    # // 5 (differs only for limit 54: 10 instead of 11)
    from kmemspec.model import slab
    mutate(monkeypatch, slab, "drain_array_locked", "(ac.limit + 4) // 5", "(ac.limit | 4) // 5")
    assert failing(SECOND["reap"])


def test_slub_free_fails_when_the_object_index_is_wrong(monkeypatch):
    # second sample's #21, slab.py _cache_free (SLUB, no arrays): addr - s_mem -> addr * s_mem
    from kmemspec.model import kmalloc as km, slab
    broken = mutate(monkeypatch, slab, "_cache_free", "(addr - slab.s_mem) // cachep.objsize",
                    "(addr * slab.s_mem) // cachep.objsize")
    monkeypatch.setattr(km, "_cache_free", broken)     # kmalloc.py's own import of it
    assert failing(SECOND["slub_free"])


def test_kunmap_low_fails_when_any_higher_flag_means_highmem(monkeypatch):
    # second sample's #47, highmem.py kunmap: flags & PG_highmem -> flags // PG_highmem
    # (PG_compound, above PG_highmem, made a low compound page "high")
    from kmemspec.model import highmem as hm
    mutate(monkeypatch, hm, "kunmap", "flags[pfn] & PG_highmem", "flags[pfn] // PG_highmem")
    assert failing(SECOND["kunmap_low"])


# --- the third sample (seed 2512, spec/mutants.md): verify's non-equivalent survivors -----

THIRD = {"misuse": facts._mutation_misuse_order_gfp_facts,
         "vmalloc_cross": facts._mutation_vmalloc_cross_facts,
         "kmap_reserved": facts._mutation_kmap_reserved_facts}


def test_the_third_sample_groups_are_registered_and_hold():
    assert all(g in facts.FACT_GROUPS for g in THIRD.values())
    for name, group in THIRD.items():
        assert failing(group) == [], name


def test_misuse_fails_when_a_larger_free_order_is_accepted(monkeypatch):
    # third sample's #4, page_alloc.py _check_free: owned != order -> owned >= order
    mutate(monkeypatch, pa, "_check_free", "if owned != order:", "if owned >= order:")
    assert failing(THIRD["misuse"])


def test_misuse_fails_when_positive_bad_gfp_bits_pass_kmalloc(monkeypatch):
    # third sample's #20, kmalloc.py kmalloc: `gfp_mask < 0 or gfp_mask & _NOT_GFP` -> `and`
    # (the check is now `type(gfp_mask) is not int or gfp_mask & _NOT_GFP`; same change)
    from kmemspec.model import kmalloc as km
    mutate(monkeypatch, km, "kmalloc", "type(gfp_mask) is not int or gfp_mask & _NOT_GFP",
           "type(gfp_mask) is not int and gfp_mask & _NOT_GFP")
    assert failing(THIRD["misuse"])


def test_vmalloc_cross_fails_when_the_pte_count_overruns_the_table(monkeypatch):
    # third sample's #25, vmalloc.py map_vm_area: PTRS_PER_PTE - first -> PTRS_PER_PTE | first
    from kmemspec.model import vmalloc as vm
    mutate(monkeypatch, vm, "map_vm_area", "min(PTRS_PER_PTE - first, n - i)",
           "min(PTRS_PER_PTE | first, n - i)")
    assert failing(THIRD["vmalloc_cross"])


def test_kmap_reserved_fails_when_a_frame_in_no_block_breaks_kmap(monkeypatch):
    # third sample's #29, highmem.py kmap: `where is not None and` -> `where is None and`
    from kmemspec.model import highmem as hm
    mutate(monkeypatch, hm, "kmap", 'if where is not None and where[0] == "free" or',
           'if where is None and where[0] == "free" or')
    assert failing(THIRD["kmap_reserved"])


def test_third_sample_equivalents_by_enumeration():
    # #14, slab.py _slub_order: `while order <= SLUB_MAX_ORDER` -> `==` returns the same
    # order for every size 1..39999 on 4, 16 and 64 KiB pages (spec/mutants.md argues why);
    # #18, kmalloc.py kmalloc: `gfp & _NOT_GFP` -> `gfp / _NOT_GFP` decides the same masks
    import inspect
    import textwrap
    from kmemspec.model import slab
    from kmemspec.model.gfp import GFP_VALID_MASK, check_gfp
    from kmemspec.model.errors import KernelBug
    src = textwrap.dedent(inspect.getsource(slab._slub_order))
    space: dict = {}
    exec(src.replace("while order <= SLUB_MAX_ORDER:", "while order == SLUB_MAX_ORDER:"),
         slab.__dict__, space)
    for page_size, shift in ((4096, 12), (16384, 14), (65536, 16)):
        for size in range(1, 40000, 7):
            assert space["_slub_order"](size, page_size, shift) == \
                slab._slub_order(size, page_size, shift)
    not_gfp = ~GFP_VALID_MASK

    def rejects(gfp, guard):
        try:
            if guard(gfp):
                check_gfp(gfp)
        except KernelBug:
            return True
        return False
    for gfp in [0, 1, 0xD0, 0xFFFF, 0x10000, 1 << 40, -1, -0x10000]:
        assert rejects(gfp, lambda g: g < 0 or g & not_gfp) == \
            rejects(gfp, lambda g: g < 0 or g / not_gfp)


def test_misuse_fails_when_a_negative_vfree_is_ignored(monkeypatch):
    # third sample's #24, vmalloc.py _area_to_free: addr == 0 -> addr <= 0
    from kmemspec.model import vmalloc as vm
    mutate(monkeypatch, vm, "_area_to_free", "if addr is None or addr == 0:",
           "if addr is None or addr <= 0:")
    assert failing(THIRD["misuse"])


def test_pkmap_nr_row_fails_on_a_power(monkeypatch):
    # third sample's #30, highmem.py PKMAP_NR: (vaddr - pkmap_base) >> 12 -> ** 12
    # (PKMAP_NR is public but no model call uses it, so only a direct row can see it)
    from kmemspec.model import highmem as hm
    mutate(monkeypatch, hm, "PKMAP_NR", "(vaddr - machine.pkmap_base) >> 12",
           "(vaddr - machine.pkmap_base) ** 12")
    assert failing(THIRD["kmap_reserved"])
