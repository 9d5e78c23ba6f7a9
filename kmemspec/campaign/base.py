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
    """Small i386 machines with all three zones possible and odd boundaries."""
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


def snapshot(machine) -> bytes:
    """The whole machine state as bytes: misuse must leave it identical."""
    return pickle.dumps(machine.__dict__)


class ModelMachine(RuleBasedStateMachine):
    """Boot a small machine; check every invariant after every step."""

    checks_run = 0      # catalogue checks done by all instances (for campaign reports)

    def __init__(self):
        super().__init__()
        self.machine = None

    @initialize(config=small_configs())
    def boot_machine(self, config):
        note(json.dumps({"op": "boot", "phys_pages": config.phys_pages,
                         "highmem_pages": config.highmem_pages,
                         "iomem_pages": config.iomem_pages,
                         "reserved": [list(r) for r in config.reserved],
                         "max_dma_pfn": config.max_dma_pfn, "cpus": config.cpus,
                         "page_policy": config.page_policy}))
        self.machine = boot(config)

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
