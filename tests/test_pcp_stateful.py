"""A stateful Hypothesis campaign over 2.6.12's page policy: watermarks, per-CPU hot and
cold lists on several CPUs, compound pages, drains and PF_MEMALLOC. Every invariant is
checked after every step, with two oracles independent of the model's code: a NULL
under PF_MEMALLOC means no zone of the zonelist has a block of the order (nor, for
order 0, the CPU's list a frame), and a NULL for GFP_ATOMIC means every zone is at or
below its lowered pages_min (zone_watermark_ok's order-0 test written out here). It
must fail on a model with a seeded per-CPU bug."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kmemspec.model import page_alloc as pa
from kmemspec.model.boot import MachineConfig, boot
from kmemspec.model.gfp import (GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, __GFP_COLD,
                                __GFP_COMP, gfp_zone)
from kmemspec.spec import check_all

COLD, COMP = __GFP_COLD, __GFP_COMP      # (a class body would mangle the __ names)
free_pages_page = getattr(pa, "__free_pages")
GFPS = [GFP_KERNEL, GFP_ATOMIC, GFP_HIGHUSER, GFP_DMA, GFP_KERNEL | __GFP_COLD,
        GFP_HIGHUSER | __GFP_COMP, GFP_ATOMIC | __GFP_COLD]


class PcpCampaign(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.m = None
        self.live: list[tuple[int, int]] = []

    @initialize(phys=st.integers(48, 400), dma=st.integers(8, 64),
                high=st.sampled_from([0, 40, 100]), cpus=st.integers(1, 3))
    def boot(self, phys, dma, high, cpus):
        self.m = boot(MachineConfig(phys_pages=phys, highmem_pages=high, cpus=cpus,
                                    max_dma_pfn=min(dma, phys)))

    @rule(gfp=st.sampled_from(GFPS), order=st.integers(0, 3), cpu=st.integers(0, 2))
    def alloc(self, gfp, order, cpu):
        cpu %= self.m.cpus
        page = pa.alloc_pages(self.m, gfp, order, cpu)
        if page is not None:
            self.live.append((page.pfn, order))
            return
        zonelist = self.m.zonelists[gfp_zone(gfp)]
        if self.m.current_flags & pa.PF_MEMALLOC:
            for z in zonelist:
                assert not any(z.free_area[k].nr_free for k in range(order, 11)), z.name
                if order == 0:
                    assert z.pageset[cpu].pcp[1 if gfp & COLD else 0].count == 0
        elif gfp & ~COLD == GFP_ATOMIC and order == 0:
            classzone = zonelist[0].index
            for z in zonelist:
                mark = z.pages_min - z.pages_min // 2          # __GFP_HIGH
                mark -= mark // 4                              # can_try_harder
                assert z.free_pages <= mark + z.lowmem_reserve[classzone], z.name

    @rule(pick=st.integers(0, 10 ** 6), cpu=st.integers(0, 2), how=st.sampled_from(
        ["free", "put"]))
    def free(self, pick, cpu, how):
        if not self.live:
            return
        pfn, order = self.live.pop(pick % len(self.live))
        if how == "put" and (order == 0 or self.m.mem_map.flags[pfn] & 0x10):
            self.m.mem_map.count[pfn] += 1                     # so put_page is not last
            pa.put_page(self.m, self.m.mem_map + pfn, cpu % self.m.cpus)
        free_pages_page(self.m, self.m.mem_map + pfn, order, cpu % self.m.cpus)

    @rule(k=st.integers(1, 24), cpu=st.integers(0, 2), gfp=st.sampled_from(GFPS[:3]))
    def burst(self, k, cpu, gfp):
        """k order-0 frames taken and given back on one CPU (a vmalloc-like burst)."""
        cpu %= self.m.cpus
        pages = [p for p in (pa.alloc_pages(self.m, gfp, 0, cpu) for _ in range(k)) if p]
        for page in pages:
            free_pages_page(self.m, page, 0, cpu)

    @rule(cpu=st.integers(0, 2), down=st.booleans())
    def drain(self, cpu, down):
        cpu %= self.m.cpus
        (getattr(pa, "__drain_pages") if down else pa.drain_local_pages)(self.m, cpu)
        assert all(z.pageset[cpu].pcp[i].count == 0 for z in self.m.zones for i in (0, 1))

    @rule(on=st.booleans())
    def memalloc(self, on):
        self.m.current_flags = pa.PF_MEMALLOC if on else 0

    @invariant()
    def invariants_hold(self):
        if self.m is not None:
            broken = {k: v for k, v in check_all(self.m).items() if v}
            assert not broken, broken


PcpCampaign.TestCase.settings = settings(max_examples=25, stateful_step_count=40,
                                         deadline=None, report_multiple_bugs=False,
                                         suppress_health_check=list(HealthCheck))
TestPcpCampaign = PcpCampaign.TestCase


def _refill_without_removing(machine, zone, pcp, cpu, gfp_mask):
    """Seeded bug: the refill copies frames onto the list but leaves them free in the
    buddy lists too (rmqueue_bulk forgotten)."""
    head = next((a.head for a in zone.free_area if a.head >= 0), -1)
    if head < 0:
        return
    pcp.list.append(head)
    pcp.count += 1
    machine.pcp_pages[head] = 2 * cpu + (1 if gfp_mask & __GFP_COLD else 0)


def _free_without_drain(machine, pfn, cold=0, cpu=0):
    """Seeded bug: free_hot_cold_page never drains at high."""
    zone = machine.zones[machine.mem_map.zone_id[pfn]]
    pcp = zone.pageset[cpu].pcp[cold]
    pcp.list.appendleft(pfn)
    pcp.count += 1
    machine.pcp_pages[pfn] = 2 * cpu + cold


@pytest.mark.parametrize("name,bug", [("_pcp_refill", _refill_without_removing),
                                      ("free_hot_cold_page", _free_without_drain)])
def test_campaign_catches_a_seeded_pcp_bug(name, bug, monkeypatch):
    monkeypatch.setattr(pa, name, bug)
    with pytest.raises(AssertionError):
        TestPcpCampaign("runTest").runTest()
