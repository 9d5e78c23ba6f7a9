"""The kernel-facts rows of `verify`: all hold on the model, and each group fails on a
model broken the way it is meant to catch (the expected values are computed in
kmemspec/facts.py from 2.6.12 formulas, never read back from the model)."""

import json

import pytest
from click.testing import CliRunner

from buddy_bugs import expand_keeps_upper, no_merge
from campaigns import must_fail
from kmemspec import facts
from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules
from kmemspec.cli import main
from kmemspec.facts import check_facts, k_cache_estimate
from kmemspec.model import gfp, page_alloc as pa, slab, vmalloc as vm
from kmemspec.verify import verify
from mutants import failing


def broken(group):
    """The failing rows of one registered group of check_facts (each group builds its
    own machines; the whole of check_facts costs about a second of CPU per call, and
    each test below is about one group's rows)."""
    assert group in facts.FACT_GROUPS, group.__name__
    return set(failing(group))


def test_every_fact_holds_on_the_model():
    results = check_facts()
    assert len(results) > 50
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results if not r.ok]
    assert all(r.source for r in results)


def test_cache_estimate_by_hand():
    # 2.6.12 cache_estimate, i386: 64-byte objects, struct slab 24, 2-byte bufctl:
    # 61*64 + ALIGN(24 + 61*2, 4) = 3904 + 148 = 4052 <= 4096; 62 objects need 4116
    assert k_cache_estimate(0, 64, 4, False, 4096, 24, 2) == (61, 44)
    assert k_cache_estimate(0, 512, 128, True, 4096, 24, 2) == (8, 0)


def _patch_geometry(monkeypatch, change):
    real = slab.cache_geometry

    def wrong(*args, **kwargs):
        geo = dict(real(*args, **kwargs))
        change(geo)
        return geo
    monkeypatch.setattr(slab, "cache_geometry", wrong)


def test_colour_off_ignoring_the_cache_line_is_caught(monkeypatch):
    def change(geo):
        geo["colour_off"] = geo["align"]
    _patch_geometry(monkeypatch, change)
    assert any(n.startswith("slab geometry") for n in broken(facts._geometry_facts))


def test_off_slab_threshold_moved_by_one_is_caught(monkeypatch):
    real = slab.cache_geometry

    def shifted(profile, size, *args, **kwargs):
        # the off-slab test as "size > PAGE_SIZE >> 3": 512-byte objects stay on-slab
        geo = real(profile, size, *args, **kwargs)
        if size == profile.PAGE_SIZE >> 3 and geo["off_slab"]:
            geo = dict(geo, off_slab=False)
        return geo
    monkeypatch.setattr(slab, "cache_geometry", shifted)
    names = broken(facts._geometry_facts)
    assert "slab geometry size-512" in names or "slab geometry c512 (512 B, align 0, " \
        "flags 0x0)" in names


def test_wrong_batch_limit_breaks_the_hand_out_order(monkeypatch):
    monkeypatch.setattr(slab, "BATCHREFILL_LIMIT", 8)
    assert any(n.startswith("hand-out order") for n in broken(facts._handout_facts))


def test_shrink_without_draining_is_caught(monkeypatch):
    monkeypatch.setattr(slab, "drain_cpu_caches", lambda machine, cachep, cpu=0: None)
    assert "shrink with one partial slab, none free" in broken(facts._shrink_facts)


def test_expand_keeping_the_upper_half_breaks_the_seed_example(monkeypatch):
    monkeypatch.setattr(pa, "expand", expand_keeps_upper)
    assert "seed example: 256 frames from a 1024-frame block" in broken(facts._buddy_facts)


def test_highmem_winning_over_dma_is_caught(monkeypatch):
    monkeypatch.setattr(gfp, "gfp_zone", lambda mask: gfp.ZONE_HIGHMEM if mask & 2
                        else gfp.ZONE_DMA if mask & 1 else gfp.ZONE_NORMAL)
    assert "zonelist per zone modifier (DMA wins over HIGHMEM)" in broken(facts._zone_facts)


def test_vmalloc_to_page_rounding_up_is_caught(monkeypatch):
    real = vm.vmalloc_to_page
    monkeypatch.setattr(vm, "vmalloc_to_page",
                        lambda machine, addr: real(machine, (addr + 4095) & ~4095))
    assert "vmalloc_to_page at unaligned addresses" in broken(facts._vmalloc_facts)


def test_encoding_agreement_row_fails_on_a_model_that_never_merges(monkeypatch):
    from kmemspec.verify import agreement_row
    monkeypatch.setattr(pa, "__free_pages_bulk", no_merge)
    row = agreement_row("buddy")
    assert row.invariant == "encoding agreement (buddy, fixed workload)"
    assert not row.ok and "differ" in row.detail


def test_campaign_oracle_catches_highmem_winning_over_dma(monkeypatch):
    """The campaign's zone table is its own: a model that sends __GFP_DMA|__GFP_HIGHMEM
    to the highmem zonelist disagrees with it (2.6.12: DMA wins)."""
    table = list(pa._ZONE_OF_MODIFIER)
    table[3] = gfp.ZONE_HIGHMEM
    monkeypatch.setattr(pa, "_ZONE_OF_MODIFIER", tuple(table))

    class Campaign(BuddyRules, ModelMachine):
        pass
    must_fail(Campaign, examples=200, steps=30)


def test_fail_fast_stops_at_the_first_failing_row(monkeypatch):
    monkeypatch.setattr(slab, "BATCHREFILL_LIMIT", 8)
    rows = verify("quick", ["facts", "Z3"], fail_fast=True)
    assert not rows[-1].ok and all(r.ok for r in rows[:-1])
    assert all(r.method == "facts" for r in rows)      # Z3 never ran


def _instant_agreements(monkeypatch):
    """The encoding agreement checks of `verify --method facts`, each answering "agrees"
    at once (each real one replays a fixed workload through Z3: seconds)."""
    from kmemspec import verify as verify_mod
    monkeypatch.setattr(verify_mod, "AGREEMENTS", [(name, enc, lambda: (None, 0, "stub"))
                                                   for name, enc, _ in verify_mod.AGREEMENTS])


def test_method_accepts_comma_lists_and_rejects_unknown_names(monkeypatch):
    # the agreement checks answer at once here: tests/test_verify.py's jobs test runs
    # them for real, with every facts row
    _instant_agreements(monkeypatch)
    result = CliRunner().invoke(main, ["verify", "--method", "facts", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {r["method"] for r in data["rows"]} == {"facts"}
    bad = CliRunner().invoke(main, ["verify", "--method", "facts,nope"])
    assert bad.exit_code == 2 and "nope" in bad.output


@pytest.mark.parametrize("methods", [["facts,facts"]])
def test_comma_list_runs_each_method_once(monkeypatch, methods):
    # the agreement checks answer at once here, as above
    _instant_agreements(monkeypatch)
    result = CliRunner().invoke(main, ["verify", "--method", *methods, "--json"])
    rows = json.loads(result.output)["rows"]
    assert len(rows) == len({r["invariant"] for r in rows})


def _top_machine():
    # page_policy "buddy", as the whole-model campaign that runs top_order_prefix boots
    # (kmemspec/campaign/base.py): the prefix is about the buddy core's orders
    from kmemspec.model import boot
    return boot(phys_pages=600 + 2400, highmem_pages=1024, max_dma_pfn=600,
                page_policy="buddy")


def test_top_order_prefix_runs_in_the_quick_campaign():
    from kmemspec.campaign import base
    before = base.TOP_PREFIX_RUNS[0]
    rows = verify("quick", ["Hypothesis"], deterministic=True)
    assert all(r.ok for r in rows), [r.detail for r in rows if not r.ok]
    assert base.TOP_PREFIX_RUNS[0] - before >= 3


@pytest.mark.parametrize("name,bug", [("expand", expand_keeps_upper),
                                      ("__free_pages_bulk", no_merge)])
def test_top_order_prefix_fails_on_a_broken_buddy(monkeypatch, name, bug):
    from kmemspec.campaign.base import top_order_prefix
    monkeypatch.setattr(pa, name, bug)
    with pytest.raises(AssertionError):
        top_order_prefix(_top_machine(), lambda step: None)


def test_top_order_prefix_fails_when_merging_stops_below_the_top(monkeypatch):
    """Merging that stops at order MAX_ORDER-2 (the bug class the issue names)."""
    from kmemspec.campaign.base import top_order_prefix
    real = pa.__free_pages_bulk

    def short(mem_map, zone, pfn, order, max_order):
        return real(mem_map, zone, pfn, order, max_order - 1)
    monkeypatch.setattr(pa, "__free_pages_bulk", short)
    with pytest.raises(AssertionError):
        top_order_prefix(_top_machine(), lambda step: None)


def test_vfree_of_zero_raising_is_caught(monkeypatch):
    """The surviving mutant of spec/mutants.md: `addr is None and addr == 0`."""
    real = vm.vfree

    def strict(machine, addr):
        if addr == 0:
            raise vm.KernelBug("not_vmalloc_address", "0")
        return real(machine, addr)
    monkeypatch.setattr(vm, "vfree", strict)
    assert "vfree(NULL) and vfree(0) do nothing" in broken(facts._vmalloc_facts)


# --- watermarks, reserves, pagesets, zone_watermark_ok, __alloc_pages (issue 17) ------

def test_watermark_rows_use_the_hand_worked_seed_numbers():
    """The independent formulas give tests/test_zones.py's hand-worked seed numbers
    (2.6.12 init_per_zone_pages_min etc.) and the kernel comment's 512 MiB value."""
    from kmemspec.facts import (k_lowmem_reserve, k_min_free_kbytes, k_pageset,
                                k_watermarks, k_zone_sizes)
    sizes = k_zone_sizes(229376, 32768)
    assert sizes == [4096, 225280, 32768] and k_min_free_kbytes(sizes, 4096) == 3831
    assert k_watermarks(sizes, 3831, 12) == [(17, 21, 25), (939, 1173, 1408), (32, 40, 48)]
    assert k_lowmem_reserve(sizes) == [[0, 880, 1008], [0, 0, 1024], [0, 0, 0]]
    assert k_pageset(225280, 4096) == ((32, 96, 16), (0, 32, 16))
    # mm/page_alloc.c's comment table: 512MB -> 2896k, 64MB -> 1024k
    assert k_min_free_kbytes(k_zone_sizes(131072, 0), 4096) == 2896
    assert k_min_free_kbytes(k_zone_sizes(16384, 0), 4096) == 1024


def test_highmem_floor_moved_is_caught(monkeypatch):
    # SWAP_CLUSTER_MAX 16: an empty or small highmem zone gets pages_min 16, not 32
    monkeypatch.setattr(pa, "SWAP_CLUSTER_MAX", 16)
    assert "min_free_kbytes, pages_min/low/high: 64 MiB" in broken(facts._watermark_facts)


def test_int_sqrt_off_by_one_is_caught(monkeypatch):
    monkeypatch.setattr(pa, "int_sqrt", lambda x: __import__("math").isqrt(x) + 1)
    assert "min_free_kbytes, pages_min/low/high: seed 896+128 MiB" \
        in broken(facts._watermark_facts)


def test_pages_high_as_five_quarters_is_caught(monkeypatch):
    real = pa.setup_per_zone_pages_min

    def wrong(zones, *args):
        real(zones, *args)
        for z in zones:
            z.pages_high = z.pages_low
    monkeypatch.setattr(pa, "setup_per_zone_pages_min", wrong)
    names = broken(facts._watermark_facts)
    assert all(f"min_free_kbytes, pages_min/low/high: {label}" in names
               for label in ("seed 896+128 MiB", "64 MiB", "256 KiB"))


def test_lowmem_reserve_ratio_changed_is_caught(monkeypatch):
    monkeypatch.setattr(pa, "LOWMEM_RESERVE_RATIO", (256, 256))
    assert "lowmem_reserve (ratios 256, 32): seed 896+128 MiB" \
        in broken(facts._watermark_facts)


def test_pageset_batch_without_the_quarter_is_caught(monkeypatch):
    import importlib
    boot_mod = importlib.import_module("kmemspec.model.boot")   # the module, not boot()

    def no_quarter(zone, page_size):
        return max(min(zone.present_pages // 1024, 256 * 1024 // page_size), 1)
    monkeypatch.setattr(boot_mod, "zone_batchsize", no_quarter)
    assert "per-CPU pagesets hot/cold (count, low, high, batch): seed 896+128 MiB" \
        in broken(facts._watermark_facts)


def test_cold_list_sized_like_the_hot_one_is_caught(monkeypatch):
    def init(self, batch):
        self.pcp = (pa.PerCpuPages(2 * batch, 6 * batch, batch),
                    pa.PerCpuPages(2 * batch, 6 * batch, batch))
    monkeypatch.setattr(pa.PerCpuPageset, "__init__", init)
    assert "per-CPU pagesets hot/cold (count, low, high, batch): 512+256 MiB, 2 CPUs" \
        in broken(facts._watermark_facts)


def _watermark_variant(**change):
    real = pa.zone_watermark_ok

    def wrong(zone, order, mark, classzone_idx, can_try_harder, gfp_high):
        if change.get("ignore_reserve"):
            saved = list(zone.lowmem_reserve)
            zone.lowmem_reserve = [0] * len(saved)
            try:
                return real(zone, order, mark, classzone_idx, can_try_harder, gfp_high)
            finally:
                zone.lowmem_reserve = saved
        if change.get("ignore_try_harder"):
            can_try_harder = False
        if change.get("swap_flags"):
            can_try_harder, gfp_high = gfp_high, can_try_harder
        if change.get("mark_plus_one"):
            mark += 1
        return real(zone, order, mark, classzone_idx, can_try_harder, gfp_high)
    return wrong


@pytest.mark.parametrize("change", ["ignore_reserve", "ignore_try_harder", "swap_flags",
                                    "mark_plus_one"])
def test_zone_watermark_ok_bugs_are_caught(monkeypatch, change):
    monkeypatch.setattr(pa, "zone_watermark_ok", _watermark_variant(**{change: True}))
    assert "zone_watermark_ok at 144 points" in broken(facts._watermark_ok_facts)


def test_zone_watermark_ok_without_the_order_loop_is_caught(monkeypatch):
    real = pa.zone_watermark_ok
    monkeypatch.setattr(pa, "zone_watermark_ok", lambda z, order, *a: real(z, 0, *a)
                        if order else real(z, order, *a))
    assert "zone_watermark_ok at 144 points" in broken(facts._watermark_ok_facts)


AT_FLOOR = "__alloc_pages order 0, Normal at atomic floor, DMA at floor+reserve"


def _alloc_rows(names):
    return {n for n in names if n.startswith("__alloc_pages order 0")}


def test_alloc_ignoring_can_try_harder_is_caught(monkeypatch):
    # the second pass without the quarter off for !__GFP_WAIT: GFP_ATOMIC one above its
    # floor gets NULL instead of a Normal page
    monkeypatch.setattr(pa, "zone_watermark_ok", _watermark_variant(ignore_try_harder=True))
    rows = _alloc_rows(broken(facts._alloc_outcome_facts))
    assert any("atomic floor+1" in n for n in rows)


def test_alloc_first_pass_ignoring_the_reserve_is_caught(monkeypatch):
    """lowmem_reserve 0 for every zone: GFP_KERNEL takes DMA at pages_low + reserve in
    the first pass instead of Normal in the second."""
    real = pa.setup_per_zone_lowmem_reserve

    def none(zones):
        real(zones)
        for z in zones:
            z.lowmem_reserve = [0] * len(z.lowmem_reserve)
    monkeypatch.setattr(pa, "setup_per_zone_lowmem_reserve", none)
    rows = _alloc_rows(broken(facts._alloc_outcome_facts))
    assert any("DMA at low+reserve" in n for n in rows)


def test_alloc_with_wrong_null_reason_is_caught(monkeypatch):
    # every NULL named as if the caller could sleep
    monkeypatch.setattr(pa, "_nopage_reason", lambda machine, gfp: pa.NOPAGE_RECLAIM)
    assert AT_FLOOR in _alloc_rows(broken(facts._alloc_outcome_facts))


def test_alloc_without_the_memalloc_pass_is_caught(monkeypatch):
    monkeypatch.setattr(pa, "PF_MEMALLOC", 0)
    assert AT_FLOOR in _alloc_rows(broken(facts._alloc_outcome_facts))


# --- encoding agreement rows: each fails on a drifted encoding (issue 17) --------------

def _agreement_row(name):
    from kmemspec.verify import agreement_row
    return agreement_row(name)


def _drift(monkeypatch, module, **switches):
    """Make `module.Encoding()` (the encoding the agreement row uses) a drifted one."""
    import dataclasses
    drifted = dataclasses.replace(module.Encoding(), **switches)
    monkeypatch.setattr(module, "Encoding", lambda: drifted)


@pytest.mark.parametrize("name,module,switch", [
    ("buddy", "z3_buddy", "expand_lists_upper"),
    ("slab", "z3_slab", "grow_wraps_colour"),
    ("slab", "z3_slab", "grow_adds_mgmt"),
    ("vmalloc", "z3_vmalloc", "guard_page"),
    ("vmalloc", "z3_vmalloc", "flush_clears_htable"),
])
def test_encoding_agreement_row_fails_on_a_drifted_encoding(monkeypatch, name, module,
                                                            switch):
    import importlib
    _drift(monkeypatch, importlib.import_module(f"kmemspec.spec.{module}"), **{switch: False})
    row = _agreement_row(name)
    assert row.invariant == f"encoding agreement ({name}, fixed workload)"
    assert not row.ok and ("differ" in row.detail or "fails" in row.detail), row.detail


def test_every_encoding_has_an_agreement_row_in_verify(monkeypatch):
    from kmemspec import facts
    from kmemspec.verify import AGREEMENTS, facts_rows
    monkeypatch.setattr(facts, "check_facts", lambda fail_fast=False: [])  # rows only
    assert [a[0] for a in AGREEMENTS] == ["buddy", "slab", "vmalloc"]
    _instant_agreements(monkeypatch)                                      # rows only
    names = [r.invariant for r in facts_rows("quick")]
    assert [n for n in names if n.startswith("encoding agreement")] == [
        f"encoding agreement ({a}, fixed workload)" for a in ("buddy", "slab", "vmalloc")]
