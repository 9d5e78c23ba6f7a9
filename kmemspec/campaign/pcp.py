"""The 2.6.12 page-policy campaign: watermarks, per-CPU hot and cold lists, compound
pages, drains and PF_MEMALLOC, on machines booted with page_policy "2.6.12".

Every call is also applied to an independent copy of the allocator state
(`alloc_oracle.Shadow`, written from 2.6.12 mm/page_alloc.c); after it the model must
return what the copy returns (the pfn, or NULL with the same reason) and hold the same
free lists, free counts and per-CPU lists. The whole invariant catalogue is checked
after every step as well (`ModelMachine`). Each call is noted as a scenario line --
with its "cpu", its gfp flags (__GFP_HIGH, __GFP_COLD, __GFP_COMP) and
set_current_flags lines -- so a shrunk failure replays with `kmemspec run`.
"""

from __future__ import annotations


from hypothesis import note, strategies as st
from hypothesis.stateful import (Bundle, consumes, initialize, multiple, precondition,
                                 rule)

from kmemspec.model import MachineConfig, boot, page_alloc as pa
from kmemspec.model.addr import page_address
from kmemspec.model.gfp import (GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, __GFP_COLD,
                                __GFP_COMP, __GFP_HIGH, __GFP_HIGHMEM, format_gfp)

from . import alloc_oracle as oracle
from .base import ModelMachine, boot_line

# (a class body would mangle the __ names)
COLD, COMP, HIGH, HIGHMEM = __GFP_COLD, __GFP_COMP, __GFP_HIGH, __GFP_HIGHMEM
free_pages_page = pa.__free_pages
get_free_pages_addr = pa.__get_free_pages
drain_pages_cpu = pa.__drain_pages

GFPS = st.sampled_from([GFP_KERNEL, GFP_ATOMIC, GFP_HIGHUSER, GFP_DMA, GFP_KERNEL | HIGH,
                        GFP_KERNEL | COLD, GFP_ATOMIC | COLD, GFP_HIGHUSER | COLD,
                        GFP_HIGHUSER | COMP, GFP_KERNEL | COMP, GFP_ATOMIC | COMP])
ORDERS = st.sampled_from([0, 0, 0, 0, 1, 2, 3, 5, 11])


@st.composite
def pcp_configs(draw) -> MachineConfig:
    """Small i386 machines, 1 to 3 CPUs. Most are small enough that the watermarks (and
    highmem's pages_min floor of SWAP_CLUSTER_MAX) are reached in a few steps, with a
    ZONE_NORMAL of 256+ frames now and then so the DMA zone's lowmem_reserve is not 0;
    one in six has a ZONE_NORMAL of 8192+ frames, where `batch` is 2 (zone_batchsize).
    A tight vm.min_free_kbytes puts the marks just below the free counts."""
    if draw(st.integers(0, 5)) == 0:
        phys = draw(st.integers(8300, 8600))
    else:
        phys = draw(st.integers(40, 700))
    max_dma = draw(st.integers(8, min(64, phys)))
    high = draw(st.sampled_from([0, 64, 100, 300]))
    kbytes = None
    if draw(st.booleans()):
        lowmem_kb = (phys - max_dma) * 4
        kbytes = lowmem_kb * draw(st.integers(60, 95)) // 100
    return MachineConfig(phys_pages=phys, highmem_pages=high, max_dma_pfn=max_dma,
                         cpus=draw(st.integers(1, 3)), min_free_kbytes=kbytes,
                         page_policy="2.6.12")


class PcpRules:
    """Rules over the 2.6.12 page allocator API, each checked against the oracle."""

    pcp_blocks = Bundle("pcp_blocks")
    oracle_checks = 0       # calls compared with the oracle, all instances (verify reads it)

    def cpu_of(self, cpu: int) -> int:
        return cpu % self.machine.cpus

    def expect_same(self, want: oracle.Shadow, what: str) -> None:
        PcpRules.oracle_checks += 1
        got = oracle.Shadow(self.machine)
        diff = want.differences(got)
        assert not diff, f"{what}: the state differs from 2.6.12's: " + "; ".join(diff[:4])

    def checked_alloc(self, gfp: int, order: int, cpu: int, by_address: bool = False):
        """alloc_pages (or __get_free_pages) against the oracle; the block or None."""
        machine = self.machine
        want = oracle.Shadow(machine)
        pfn, reason, _ = oracle.alloc_pages(want, machine, gfp, order, cpu)
        if by_address:
            # a lowmem block's address: __va(pfn << PAGE_SHIFT), the direct map
            ret = None if pfn is None else (machine.profile.PAGE_OFFSET
                                            + (pfn << machine.profile.PAGE_SHIFT))
            self.call({"op": "__get_free_pages", "gfp": format_gfp(gfp), "order": order,
                       "cpu": cpu, "expect": {"ret": ret}})
            got = get_free_pages_addr(machine, gfp, order, cpu)
        else:
            ret = pfn
            self.call({"op": "alloc_pages", "gfp": format_gfp(gfp), "order": order,
                       "cpu": cpu, "expect": {"ret": ret}})
            page = pa.alloc_pages(machine, gfp, order, cpu)
            got = None if page is None else page.pfn
        call = (f"{'__get_free_pages' if by_address else 'alloc_pages'}({format_gfp(gfp)}, "
                f"order {order}, cpu {cpu})")
        assert got == ret, f"{call} gave {got}, 2.6.12 gives {ret} ({reason or 'a block'})"
        if pfn is None:
            assert machine.alloc_failure == reason, \
                f"{call}: NULL for {machine.alloc_failure!r}, 2.6.12: {reason!r}"
        self.expect_same(want, call)
        return None if pfn is None else (pfn, order)

    def checked_free(self, pfn: int, order: int, cpu: int, how: str = "page") -> None:
        machine = self.machine
        want = oracle.Shadow(machine)
        oracle.free_pages(want, machine, pfn, order, cpu)
        page = machine.mem_map + pfn
        addr = page_address(machine, page) if how == "addr" else None
        if addr:
            self.call({"op": "free_pages", "addr": addr, "order": order, "cpu": cpu})
            pa.free_pages(machine, addr, order, cpu)
        elif how == "put" and order == 0:
            self.call({"op": "put_page", "page": pfn, "cpu": cpu})
            pa.put_page(machine, page, cpu)
        else:
            self.call({"op": "__free_pages", "page": pfn, "order": order, "cpu": cpu})
            free_pages_page(machine, page, order, cpu)
        self.expect_same(want, f"freeing {pfn:#x} order {order} on CPU {cpu}")

    @precondition(lambda self: self.machine is not None)
    @rule(target=pcp_blocks, gfp=GFPS, order=ORDERS, cpu=st.integers(0, 2),
          by_address=st.booleans())
    def alloc(self, gfp, order, cpu, by_address):
        return self.checked_alloc(gfp, order, self.cpu_of(cpu),
                                  by_address and not gfp & HIGHMEM)

    @precondition(lambda self: self.machine is not None)
    @rule(target=pcp_blocks, gfp=st.sampled_from([GFP_KERNEL, GFP_HIGHUSER, GFP_ATOMIC,
                                                   GFP_KERNEL | HIGH, GFP_ATOMIC | COLD,
                                                   GFP_HIGHUSER | COLD]),
          cpu=st.integers(0, 2), large=st.sampled_from([2, 4]), cap=st.integers(4, 40))
    def fill(self, gfp, cpu, large, cap):
        """Bring the zones down to their marks: blocks of order `large` until NULL, then
        order-0 frames until NULL -- the zones of the zonelist pass through every free
        count on the way down, each call checked. On the 8192+ frame machines at most
        `cap` and 256 calls. The blocks stay allocated (in the bundle, for the free
        rules)."""
        cpu = self.cpu_of(cpu)
        small = self.machine.nr_pages < 2048
        got = []
        for order, most in ((large, cap), (0, 256)):
            for _ in range(self.machine.nr_pages if small else most):
                block = self.checked_alloc(gfp, order, cpu)
                if block is None:
                    break
                got.append(block)
        return multiple(*got)

    @rule(block=consumes(pcp_blocks), cpu=st.integers(0, 2),
          how=st.sampled_from(["page", "addr", "put"]))
    def free(self, block, cpu, how):
        if block is None:
            return
        pfn, order = block
        self.checked_free(pfn, order, self.cpu_of(cpu), how)

    @rule(block=pcp_blocks, frame=st.integers(0, 31), cpu=st.integers(0, 2))
    def get_then_put(self, block, frame, cpu):
        """get_page on the block, then put_page on one of its frames: a compound page's
        tail drops the head's reference (2.6.12 mm/swap.c put_page); either way the
        reference was not the last, so nothing moves (free lists, per-CPU lists)."""
        if block is None:
            return
        pfn, order = block
        machine = self.machine
        compound = machine.mem_map.flags[pfn] & pa.PG_compound
        target = pfn + (frame % (1 << order) if compound else 0)
        if order and not compound:
            return                  # put_page of a plain order > 0 block: 2.6.12 leaks
        want = oracle.Shadow(machine)
        self.call({"op": "get_page", "page": pfn})
        pa.get_page(machine, machine.mem_map + pfn)
        self.call({"op": "put_page", "page": target, "cpu": self.cpu_of(cpu)})
        pa.put_page(machine, machine.mem_map + target, self.cpu_of(cpu))
        assert machine.mem_map.count[pfn] == 1, "get_page + put_page left a reference"
        self.expect_same(want, f"get_page + put_page of {target:#x}")

    @precondition(lambda self: self.machine is not None)
    @rule(k=st.integers(1, 16), cpu=st.integers(0, 2),
          gfp=st.sampled_from([GFP_KERNEL, GFP_ATOMIC, GFP_HIGHUSER, GFP_KERNEL | COLD]))
    def burst(self, k, cpu, gfp):
        """k order-0 frames taken and given back on one CPU: the hot list fills to high
        and drains `batch` frames (free_hot_cold_page)."""
        cpu = self.cpu_of(cpu)
        got = [self.checked_alloc(gfp, 0, cpu) for _ in range(k)]
        for block in got:
            if block is not None:
                self.checked_free(block[0], 0, cpu)

    @precondition(lambda self: self.machine is not None)
    @rule(cpu=st.integers(0, 2), local=st.booleans())
    def drain(self, cpu, local):
        cpu = self.cpu_of(cpu)
        want = oracle.Shadow(self.machine)
        oracle.drain_pages(want, cpu)
        if local:
            self.call({"op": "drain_local_pages", "cpu": cpu})
            pa.drain_local_pages(self.machine, cpu)
        else:
            self.call({"op": "__drain_pages", "cpu": cpu})
            drain_pages_cpu(self.machine, cpu)
        self.expect_same(want, f"draining CPU {cpu}")

    @precondition(lambda self: self.machine is not None)
    @rule(memalloc=st.booleans())
    def set_current_flags(self, memalloc):
        self.call({"op": "set_current_flags", "flags": "PF_MEMALLOC" if memalloc else 0})
        self.machine.current_flags = oracle.PF_MEMALLOC if memalloc else 0


class PcpMachine(PcpRules, ModelMachine):
    """2.6.12 page policy on 1-3 CPUs: the oracle after every call, every invariant
    after every step."""

    @initialize(config=pcp_configs())
    def boot_machine(self, config):
        note(boot_line(config, min_free_kbytes=config.min_free_kbytes))
        self.machine = boot(config)
