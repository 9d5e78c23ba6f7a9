"""The base state machine: boot, invariants after every step, misuse checking."""

from __future__ import annotations

import json
import pickle

from hypothesis import note, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant

from kmemspec.model import KernelBug, MachineConfig, boot
from kmemspec.spec import check_all


@st.composite
def small_configs(draw, *, highmem: bool = True) -> MachineConfig:
    """Small i386 machines with all three zones possible and odd boundaries; one in
    five is a top-order machine whose Normal zone holds order-10 blocks."""
    if draw(st.integers(0, 4)) == 0:
        return draw(top_order_configs(highmem=highmem))
    phys = draw(st.integers(16, 160))
    max_dma = draw(st.integers(4, phys))
    high = draw(st.sampled_from([0, 0, 8, 37, 64])) if highmem else 0
    iomem = draw(st.sampled_from([0, 0, 3])) if high else 0
    start = draw(st.integers(0, phys // 4))
    length = draw(st.integers(0, 3))
    reserved = ((start, start + length),) if length else ()
    cpus = draw(st.sampled_from([1, 1, 2, 3]))
    # the bare buddy core: the campaigns' oracles (linux_choice) predict __rmqueue's
    # answer without watermarks or per-CPU lists (spec/buddy.md, page_policy)
    return MachineConfig(phys_pages=phys, highmem_pages=high, iomem_pages=iomem,
                         reserved=reserved, max_dma_pfn=max_dma, cpus=cpus,
                         page_policy="buddy")


@st.composite
def top_order_configs(draw, *, highmem: bool = True) -> MachineConfig:
    """Machines large enough for the top order (MAX_ORDER-1 = 10, 1024 frames) in the
    Normal zone, and in HighMem when it has 1024 aligned frames; the prefix below runs on
    them. The invariants are the same; only the sizes grow (spec/facts.md)."""
    max_dma = draw(st.integers(16, 1100))
    phys = max_dma + draw(st.integers(2048, 2600))
    high = draw(st.sampled_from([0, 1024, 1100])) if highmem else 0
    return MachineConfig(phys_pages=phys, highmem_pages=high, max_dma_pfn=max_dma,
                         cpus=draw(st.sampled_from([1, 2])), page_policy="buddy")


TOP_PREFIX_RUNS = [0]      # how many prefixes ran to the end (tests and reports read it)


def top_order_prefix(machine, call) -> None:
    """A generated prefix that reaches every order on a top-order machine.

    Page allocator (2.6.12 mm/page_alloc.c __rmqueue, expand, __free_pages_bulk): take
    every Normal block below order 10, so an order-0 request must split an order-10
    block -- its lowest frame is handed out and one block of every order 0..9 goes back
    (head + 2^k) -- then free it: everything merges into order 10 again. An order-10
    request gets an aligned block; order 11 (MAX_ORDER) fails. Slab: kmalloc(131072)
    grows an order-5 slab (MAX_GFP_ORDER); kmalloc(131073) fails. vmalloc: 1024 pages
    (order-0 frames, from highmem first) map and unmap.
    """
    from kmemspec.model import kmalloc as km, page_alloc as pa, slab, vmalloc as vm
    from kmemspec.model.gfp import GFP_KERNEL

    from .oracle import zonelist
    zone = zonelist(machine, GFP_KERNEL)[0]
    if zone.name != "Normal" or not zone.free_area[10].nr_free:
        return
    held: list = []
    for order in range(10):
        while zone.free_area[order].nr_free:
            call({"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": order})
            held.append((pa.alloc_pages(machine, GFP_KERNEL, order), order))
    tops = zone.free_area[10].nr_free
    head = zone.free_area[10].head
    call({"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 0})
    page = pa.alloc_pages(machine, GFP_KERNEL, 0)
    assert page.pfn == head, f"order 0 split from order 10 gave {page.pfn}, kernel {head}"
    for k in range(10):
        area = zone.free_area[k]
        assert area.nr_free == 1 and area.head == head + (1 << k), \
            f"after splitting order 10: order {k} list {area.nr_free} x {area.head}"
    assert zone.free_area[10].nr_free == tops - 1
    call({"op": "__free_pages", "page": page.pfn, "order": 0})
    pa.__free_pages(machine, page, 0)
    assert zone.free_area[10].nr_free == tops and all(
        not zone.free_area[k].nr_free for k in range(10)), "did not merge back into order 10"
    call({"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 10})
    top = pa.alloc_pages(machine, GFP_KERNEL, 10)
    # 2.6.12 aligns blocks relative to the zone's mem_map (page - zone->zone_mem_map)
    assert top is not None and (top.pfn - zone.zone_start_pfn) % 1024 == 0
    call({"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 11})
    assert pa.alloc_pages(machine, GFP_KERNEL, 11) is None, "order MAX_ORDER succeeded"
    held.append((top, 10))
    for page, order in held:
        call({"op": "__free_pages", "page": page.pfn, "order": order})
        pa.__free_pages(machine, page, order)
    # slab growth at MAX_GFP_ORDER
    call({"op": "kmalloc", "size": 131072, "gfp": "GFP_KERNEL"})
    addr = km.kmalloc(machine, 131072, GFP_KERNEL)
    assert addr is not None
    assert slab._lookup_object(machine, addr)[0].cache.gfporder == 5
    call({"op": "kmalloc", "size": 131073, "gfp": "GFP_KERNEL"})
    assert km.kmalloc(machine, 131073, GFP_KERNEL) is None
    call({"op": "kfree", "addr": addr})
    km.kfree(machine, addr)
    # vmalloc of a top-order-sized area
    call({"op": "vmalloc", "size": 1024 * machine.profile.PAGE_SIZE})
    area = vm.vmalloc(machine, 1024 * machine.profile.PAGE_SIZE)
    assert area is not None
    call({"op": "vfree", "addr": area})
    vm.vfree(machine, area)
    TOP_PREFIX_RUNS[0] += 1


def snapshot(machine) -> bytes:
    """The whole machine state as bytes: misuse must leave it identical."""
    return pickle.dumps(machine.__dict__)


def boot_line(config: MachineConfig, **extra) -> str:
    """The boot step of a failure report, as a scenario line `kmemspec run` replays."""
    return json.dumps({"op": "boot", "phys_pages": config.phys_pages,
                       "highmem_pages": config.highmem_pages,
                       "iomem_pages": config.iomem_pages,
                       "reserved": [list(r) for r in config.reserved],
                       "max_dma_pfn": config.max_dma_pfn, "cpus": config.cpus,
                       **extra, "page_policy": config.page_policy})


class ModelMachine(RuleBasedStateMachine):
    """Boot a small machine; check every invariant after every step."""

    checks_run = 0      # catalogue checks done by all instances (for campaign reports)

    def __init__(self):
        super().__init__()
        self.machine = None

    @initialize(config=small_configs())
    def boot_machine(self, config):
        note(boot_line(config))
        self.machine = boot(config)
        top_order_prefix(self.machine, self.call)

    def call(self, step: dict) -> None:
        """Record a call as a scenario line for the failure report."""
        note(json.dumps(step))

    def expect_misuse(self, rules: set[str], fn, *args) -> str:
        """fn(*args) must raise KernelBug with one of `rules` and change nothing."""
        before = snapshot(self.machine)
        try:
            fn(self.machine, *args)
        except KernelBug as bug:
            assert bug.rule in rules, f"expected one of {sorted(rules)}, got {bug}"
            assert snapshot(self.machine) == before, f"{bug.rule} changed the state"
            return bug.rule
        raise AssertionError(f"misuse not detected (expected {sorted(rules)})")

    @invariant()
    def catalogue_holds(self):
        if self.machine is None:
            return
        found = check_all(self.machine)
        ModelMachine.checks_run += 1
        broken = {name: v for name, v in found.items() if v}
        assert not broken, broken
