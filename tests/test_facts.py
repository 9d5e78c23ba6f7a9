"""The kernel-facts rows of `verify`: all hold on the model, and each group fails on a
model broken the way it is meant to catch (the expected values are computed in
kmemspec/facts.py from 2.6.12 formulas, never read back from the model)."""

import json

import pytest
from click.testing import CliRunner

from buddy_bugs import expand_keeps_upper, no_merge
from campaigns import must_fail
from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules
from kmemspec.cli import main
from kmemspec.facts import check_facts, k_cache_estimate
from kmemspec.model import gfp, page_alloc as pa, slab, vmalloc as vm
from kmemspec.verify import verify


def broken(**_):
    return {r.name for r in check_facts() if not r.ok}


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
    assert any(n.startswith("slab geometry") for n in broken())


def test_off_slab_threshold_moved_by_one_is_caught(monkeypatch):
    real = slab.cache_geometry

    def shifted(profile, size, *args, **kwargs):
        # the off-slab test as "size > PAGE_SIZE >> 3": 512-byte objects stay on-slab
        geo = real(profile, size, *args, **kwargs)
        if size == profile.PAGE_SIZE >> 3 and geo["off_slab"]:
            geo = dict(geo, off_slab=False)
        return geo
    monkeypatch.setattr(slab, "cache_geometry", shifted)
    names = broken()
    assert "slab geometry size-512" in names or "slab geometry c512 (512 B, align 0, " \
        "flags 0x0)" in names


def test_wrong_batch_limit_breaks_the_hand_out_order(monkeypatch):
    monkeypatch.setattr(slab, "BATCHREFILL_LIMIT", 8)
    assert any(n.startswith("hand-out order") for n in broken())


def test_shrink_without_draining_is_caught(monkeypatch):
    monkeypatch.setattr(slab, "drain_cpu_caches", lambda machine, cachep, cpu=0: None)
    assert "shrink with one partial slab, none free" in broken()


def test_expand_keeping_the_upper_half_breaks_the_seed_example(monkeypatch):
    monkeypatch.setattr(pa, "expand", expand_keeps_upper)
    assert "seed example: 256 frames from a 1024-frame block" in broken()


def test_highmem_winning_over_dma_is_caught(monkeypatch):
    monkeypatch.setattr(gfp, "gfp_zone", lambda mask: gfp.ZONE_HIGHMEM if mask & 2
                        else gfp.ZONE_DMA if mask & 1 else gfp.ZONE_NORMAL)
    assert "zonelist per zone modifier (DMA wins over HIGHMEM)" in broken()


def test_vmalloc_to_page_rounding_up_is_caught(monkeypatch):
    real = vm.vmalloc_to_page
    monkeypatch.setattr(vm, "vmalloc_to_page",
                        lambda machine, addr: real(machine, (addr + 4095) & ~4095))
    assert "vmalloc_to_page at unaligned addresses" in broken()


def test_encoding_agreement_row_fails_on_a_model_that_never_merges(monkeypatch):
    monkeypatch.setattr(pa, "__free_pages_bulk", no_merge)
    rows = {r.invariant: r for r in verify("quick", ["facts"])}
    row = rows["encoding agreement (buddy, fixed workload)"]
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


def test_method_accepts_comma_lists_and_rejects_unknown_names():
    result = CliRunner().invoke(main, ["verify", "--method", "facts", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {r["method"] for r in data["rows"]} == {"facts"}
    bad = CliRunner().invoke(main, ["verify", "--method", "facts,nope"])
    assert bad.exit_code == 2 and "nope" in bad.output


@pytest.mark.parametrize("methods", [["facts,facts"]])
def test_comma_list_runs_each_method_once(methods):
    result = CliRunner().invoke(main, ["verify", "--method", *methods, "--json"])
    rows = json.loads(result.output)["rows"]
    assert len(rows) == len({r["invariant"] for r in rows})


def _top_machine():
    from kmemspec.model import boot
    return boot(phys_pages=600 + 2400, highmem_pages=1024, max_dma_pfn=600)


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
    assert "vfree(NULL) and vfree(0) do nothing" in broken()
