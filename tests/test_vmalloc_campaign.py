"""The vmalloc/kmap campaign must fail on a broken model: one seeded bug per test."""

from array import array

import pytest

from campaigns import must_fail, must_pass

from kmemspec.campaign.base import ModelMachine
from kmemspec.model import highmem as hm
from kmemspec.model import vmalloc as vm
from kmemspec.campaign.vmalloc import KmapRules, VmallocRules


class Campaign(VmallocRules, KmapRules, ModelMachine):
    pass


class KmapCampaign(KmapRules, ModelMachine):
    pass


class VmallocCampaign(VmallocRules, ModelMachine):
    pass


def _map_shifted(machine, area, prot=vm.PAGE_KERNEL):
    """Bug: page i goes to index i + 1, so page 0 is unmapped and the guard page mapped."""
    for i, pfn in enumerate(area.pages):
        vaddr = area.addr + (i + 1) * 4096
        table = machine.swapper_pg_dir[vaddr >> 22]
        if not isinstance(table, array):
            table = machine.swapper_pg_dir[vaddr >> 22] = vm.new_pte_table()
        table[(vaddr >> 12) & 1023] = (pfn << 12) | prot


def _vunmap_keeps_pages(machine, area):
    """Bug: the area goes, its frames are never given back."""
    vm.remove_vm_area(machine, area.addr)
    if area.pages_addr and not area.pages_vmalloced:
        vm.kfree(machine, area.pages_addr)
    vm.kfree(machine, area.kaddr)


def _carve_keeps_hole(machine, hole, addr, size):
    """Bug: the hole index is not updated, so the next area lands on this one."""


def _flush_keeps_htable(machine):
    """Bug: unused slots are freed but page_address still finds the old address."""
    for i in range(hm.LAST_PKMAP):
        if machine.pkmap_count[i] == 1:
            machine.pkmap_count[i] = 0
            machine.pkmap_page_table[i] = 0


def _kunmap_forgets(machine, pfn):
    """Bug: kunmap_high does not drop the count (a slot is never freed)."""


BUGS = {
    "map_shifted": (vm, "map_vm_area", _map_shifted, VmallocCampaign),
    "vunmap_keeps_pages": (vm, "_vunmap", _vunmap_keeps_pages, VmallocCampaign),
    "carve_keeps_hole": (vm, "_carve", _carve_keeps_hole, VmallocCampaign),
    "flush_keeps_htable": (hm, "flush_all_zero_pkmaps", _flush_keeps_htable, KmapCampaign),
    "kunmap_forgets": (hm, "kunmap_high", _kunmap_forgets, KmapCampaign),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_campaign_catches(bug, monkeypatch):
    module, name, broken, campaign = BUGS[bug]
    monkeypatch.setattr(module, name, broken)
    must_fail(campaign, examples=300, steps=40)


def test_campaign_passes_on_the_real_model():
    must_pass(Campaign, examples=40, steps=30)
