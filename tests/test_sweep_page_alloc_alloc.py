"""The sweep rows of kmemspec/sweeps/page_alloc_alloc.py: each holds on the model, and
each group fails on mutants of the functions it sweeps (the mutation driver's kind of
change, applied by tests/mutants.py's `mutate`)."""

from __future__ import annotations

import pytest

from kmemspec import facts  # noqa: F401 - first: facts collects the sweep modules
from kmemspec.model import gfp as gfp_mod
from kmemspec.model import page_alloc as pa
from kmemspec.model.errors import KernelBug
from kmemspec.sweeps import page_alloc_alloc as sw
from mutants import failing, mutate


def test_every_row_holds_and_is_collected():
    for group in sw.FACT_GROUPS:
        assert failing(group) == [], group.__name__
        assert group in facts.FACT_GROUPS


MUTANTS = [
    # (group, function, old, new)
    (sw._zone_struct_facts, "Zone", "self.lowmem_reserve = [0] * nr_zones",
     "self.lowmem_reserve = [1] * nr_zones"),
    (sw._zone_struct_facts, "Zone", "self.free_area = [FreeArea() for _ in range(max_order)]",
     "self.free_area = [FreeArea()] * max_order"),
    (sw._zone_struct_facts, "PerCpuPageset", "PerCpuPages(0, 2 * batch, batch)",
     "PerCpuPages(0, 2 * batch, 1)"),
    (sw._sqrt_batch_facts, "zone_batchsize", "batch //= 4", "batch //= 3"),
    (sw._sqrt_batch_facts, "zone_batchsize", "return max(batch, 1)", "return max(batch, 0)"),
    (sw._sqrt_batch_facts, "int_sqrt", "return isqrt(x)", "return isqrt(x + 1)"),
    (sw._marks_facts, "setup_per_zone_pages_min", "SWAP_CLUSTER_MAX), 128)",
     "SWAP_CLUSTER_MAX), 127)"),
    (sw._marks_facts, "setup_per_zone_pages_min", "zone.pages_high = zone.pages_min * 6 // 4",
     "zone.pages_high = zone.pages_min * 6 >> 1"),
    (sw._marks_facts, "setup_per_zone_lowmem_reserve", "present += zones[idx].present_pages",
     "present = zones[idx].present_pages"),
    (sw._marks_facts, "setup_per_zone_lowmem_reserve", "zone.lowmem_reserve[j] = 0",
     "zone.lowmem_reserve[j] = zone.lowmem_reserve[j]"),
    (sw._marks_facts, "init_per_zone_pages_min", "128), 65536)", "128), 65535)"),
    (sw._marks_facts, "init_per_zone_pages_min", "max(int_sqrt(lowmem_kbytes * 16), 128)",
     "max(int_sqrt(lowmem_kbytes * 16), 129)"),
    (sw._watermark_sweep_facts, "zone_watermark_ok", "low >>= 1", "low >>= 2"),
    (sw._watermark_sweep_facts, "zone_watermark_ok", "low -= low // 4", "low -= low // 3"),
    (sw._watermark_sweep_facts, "zone_watermark_ok", "if free_pages <= low:",
     "if free_pages < low:"),
    (sw._alloc_run_facts, "alloc_pages", "if free <= mark + zone.lowmem_reserve[classzone_idx]:",
     "if free < mark + zone.lowmem_reserve[classzone_idx]:"),
    (sw._alloc_run_facts, "alloc_pages", "can_try_harder = not wait", "can_try_harder = False"),
    (sw._alloc_run_facts, "alloc_pages", "                mark >>= 1\n",
     "                mark >>= 2\n"),
    (sw._alloc_run_facts, "buffered_rmqueue", "if pcp.count <= pcp.low:",
     "if pcp.count < pcp.low:"),
    (sw._alloc_run_facts, "__rmqueue", "zone.free_pages -= 1 << order",
     "zone.free_pages -= 1 << current_order"),
    (sw._alloc_run_facts, "expand", "list_add(mem_map, areas[high], pfn + size)",
     "list_add(mem_map, areas[high], pfn)"),
    # spec/mutants.md fourth sample #8: __GFP_HIGH halving the mark on the bulk path
    (sw._bulk_facts, "_order0_passes", "mark -= mark // 2", "mark -= mark + 2"),
    (sw._bulk_facts, "rmqueue_bulk", "while count > 0:", "while count != 0:"),
    (sw._alloc_run_facts, "_nopage_reason", "if machine.current_flags & PF_MEMALLOC:",
     "if machine.current_flags * PF_MEMALLOC:"),
    (sw._alloc_run_facts, "alloc_pages", "if machine.current_flags & PF_MEMALLOC:",
     "if machine.current_flags ** PF_MEMALLOC:"),
    (sw._alloc_run_facts, "buffered_rmqueue", "    if pfn >= 0:\n        # ACCOUNT",
     "    if pfn >= 1:\n        # ACCOUNT"),
    (sw._misuse_facts, "_check_cpu", "(0..{machine.cpus - 1})", "(0..{machine.cpus + 1})"),
    (sw._misuse_facts, "alloc_pages", "not 0 <= cpu < machine.cpus",
     "not -1 <= cpu < machine.cpus"),
    (sw._misuse_facts, "alloc_pages", "not 0 <= cpu < machine.cpus",
     "not 0 <= cpu != machine.cpus"),
    (sw._misuse_facts, "alloc_pages_bulk", "    _check_cpu(machine, cpu)\n", "\n"),
    # probe survivors (seed 4101): pass 1's per-order verdict, pfn 0 from pass 1
    (sw._alloc_run_facts, "alloc_pages", "if free <= mark:                  # the per-order",
     "if not free <= mark:                  # the per-order"),
    (sw._alloc_run_facts, "alloc_pages", "if pfn >= 0:\n                machine.mem_map.count",
     "if pfn >= 1:\n                machine.mem_map.count"),
    (sw._alloc_run_facts, "alloc_pages", "classzone_idx = zonelist[0].index",
     "classzone_idx = zonelist[-1].index"),
    (sw._bulk_facts, "_order0_passes", "classzone_idx = zonelist[0].index",
     "classzone_idx = zonelist[-1].index"),
    # probe survivors (seed 4202): prev link of pfn 0, pfn 0 from passes 2 and 3, a free
    # with an order past MAX_ORDER
    (sw._script_facts, "__rmqueue", "if nxt >= 0:", "if nxt != 0:"),
    (sw._alloc_run_facts, "alloc_pages",
     "            if pfn >= 0:\n                return Page(machine.mem_map, pfn)\n    if",
     "            if pfn > 0:\n                return Page(machine.mem_map, pfn)\n    if"),
    (sw._alloc_run_facts, "alloc_pages",
     "            if pfn >= 0:\n                return Page(machine.mem_map, pfn)\n    machine",
     "            if pfn > 0:\n                return Page(machine.mem_map, pfn)\n    machine"),
    (sw._misuse_facts, "_check_order", "order >= max_order", "order is max_order"),
    (sw._misuse_facts, "_check_order", "0..{max_order - 1}", "0..{max_order | 1}"),
    (sw._script_facts, "rmqueue_bulk", "if nxt >= 0:", "if nxt >= -1:"),
    (sw._script_facts, "__rmqueue", "if nxt >= 0:", "if nxt >= -1:"),
    (sw._alloc_run_facts, "alloc_pages", "free -= areas[o].nr_free << o",
     "free -= areas[o].nr_free >> o"),
    (sw._bulk_facts, "_order0_passes", "mark -= mark // 4", "mark -= mark // 3"),
    (sw._bulk_facts, "_pcp_take", "k = pcp.count - pcp.low", "k = pcp.count - pcp.low + 1"),
    (sw._bulk_facts, "rmqueue_bulk", "private[head] = order", "private[head] = 0"),
    (sw._bulk_facts, "rmqueue_bulk", "order = piece.bit_length() - 1",
     "order = piece.bit_length()"),
    (sw._bulk_facts, "rmqueue_bulk", "count_[block:end] = _ones(m)",
     "count_[block:end] = _zeros(m)"),
    (sw._bulk_facts, "alloc_pages_bulk", "if len(taken) < nr_pages:",
     "if len(taken) <= nr_pages:"),
    (sw._misuse_facts, "alloc_pages_bulk", "nr_pages < 0", "nr_pages < -1"),
    (sw._misuse_facts, "get_zeroed_page", "if gfp_mask & __GFP_HIGHMEM:",
     "if gfp_mask == __GFP_HIGHMEM:"),
    (sw._misuse_facts, "_check_cpu", "0 <= cpu < machine.cpus", "0 <= cpu <= machine.cpus"),
    (sw._misuse_facts, "alloc_pages", "if order >= machine.profile.MAX_ORDER:",
     "if order > machine.profile.MAX_ORDER:"),
    (sw._address_facts, "__get_free_pages", "return 0 if addr is None else addr",
     "return None if addr is None else addr"),
    (sw._address_facts, "get_zeroed_page", "gfp_mask | __GFP_ZERO, 0, cpu",
     "gfp_mask | __GFP_ZERO, 1, cpu"),
    (sw._address_facts, "alloc_page", "alloc_pages(machine, gfp_mask, 0, cpu)",
     "alloc_pages(machine, gfp_mask, 0, 0)"),
    (sw._address_facts, "__get_free_page", "__get_free_pages(machine, gfp_mask, 0, cpu)",
     "__get_free_pages(machine, gfp_mask, 0)"),
    (sw._proc_facts, "buddyinfo", "for z in machine.zones if z.spanned_pages",
     "for z in machine.zones"),
    (sw._proc_facts, "nr_free_pages", "sum(z.free_pages for z in machine.zones)",
     "sum(z.free_pages for z in machine.zones[:2])"),
    (sw._proc_facts, "zoneinfo", '"count": p.count', '"count": p.low'),
]


@pytest.mark.parametrize("group,name,old,new", MUTANTS,
                         ids=[f"{m[1]}:{m[2][:30]}" for m in MUTANTS])
def test_group_fails_on_mutant(monkeypatch, group, name, old, new):
    mutate(monkeypatch, pa, name, old, new)
    assert failing(group), (name, old, new)


def test_check_gfp_refuses_a_non_integer_mask():
    # model fix made with these rows: a float / None / bool mask was a TypeError
    for bad in (2.0, None, True, "0xd0"):
        with pytest.raises(KernelBug) as exc:
            gfp_mod.check_gfp(bad)
        assert exc.value.rule == "bad_gfp"
    gfp_mod.check_gfp(0xD0)


def test_lowmem_reserve_mutant_5_is_equivalent_on_three_zones(monkeypatch):
    # spec/mutants.md fourth sample #5: `idx < len(ratios)` -> `idx is not len(ratios)`.
    # idx runs over 0..len(zones)-2 and len(ratios) is 2: with at most three zones (every
    # profile's boot) idx <= 1, where both tests are true; they differ only at idx > 2,
    # i.e. five zones or more, which no profile has.
    assert pa.LOWMEM_RESERVE_RATIO == (256, 32)
    mutant = mutate(monkeypatch, pa, "setup_per_zone_lowmem_reserve", "idx < len(ratios)",
                    "idx is not len(ratios)")
    for sizes in ((4096, 12288, 8192), (128, 384, 256), (100, 7000), (5,), (1, 0, 3)):
        zones = [pa.Zone(i, "z", 0, s, 11, len(sizes)) for i, s in enumerate(sizes)]
        mutant(zones)
        assert [z.lowmem_reserve for z in zones] == \
            sw.k_lowmem_reserve(sizes, [[0] * len(sizes) for _ in sizes])
