"""Scenario operations for CPU hotplug (2.6.12 kernel/cpu.c cpu_down / cpu_up, model/cpu.py).

cpu_down runs the CPU_DEAD notifier chain (page_alloc_cpu_notify, then the slab's
cpuup_callback); cpu_up runs CPU_UP_PREPARE. Both are 2.6.12 (SLAB) operations.
"""

from __future__ import annotations

from .model import cpu as hotplug
from .ops_buddy import _cpu
from .scenario import op


def _hotplug_cpu(machine, value, what):
    if machine.profile.slab_flavour != "slab":
        raise ValueError(f"{what} models 2.6.12 CPU hotplug (SLAB arrays); the "
                         f"{machine.profile.name} profile has none")
    return _cpu(machine, value, online=False)


@op("cpu_down", "cpu", "this_cpu", optional=("this_cpu",))
def _cpu_down(machine, cpu, this_cpu=None):
    """2.6.12 kernel/cpu.c cpu_down: 0, -EBUSY or -EINVAL; CPU_DEAD runs
    page_alloc_cpu_notify, then the slab's cpuup_callback, on this_cpu."""
    cpu = _hotplug_cpu(machine, cpu, "cpu_down")
    return hotplug.cpu_down(machine, cpu, None if this_cpu is None
                            else _cpu(machine, this_cpu, online=False))


@op("cpu_up", "cpu", "this_cpu", optional=("this_cpu",))
def _cpu_up(machine, cpu, this_cpu=None):
    """2.6.12 kernel/cpu.c cpu_up: 0 or -EINVAL; CPU_UP_PREPARE gives the CPU new
    slab arrays (allocated on this_cpu)."""
    cpu = _hotplug_cpu(machine, cpu, "cpu_up")
    return hotplug.cpu_up(machine, cpu, None if this_cpu is None
                          else _cpu(machine, this_cpu, online=False))

