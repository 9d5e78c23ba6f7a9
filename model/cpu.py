"""CPU hotplug: a CPU going down and coming back (Linux 2.6.12 kernel/cpu.c).

cpu_online_map is every CPU of the machine until a CPU goes down; the model keeps it
as `machine.cpu_online_map` (a sorted list), created by the first hotplug event, so
a machine that never saw one has all its CPUs online.

The CPU notifier chain of 2.6.12 (kernel/sys.c notifier_chain_register: a new block
goes after every block of equal or higher priority) holds, among the blocks the model
knows, page_alloc_cpu_notify (priority 0, registered by page_alloc_init) before
cpucache_notifier (priority 0, registered at the end of kmem_cache_init), because
start_kernel calls page_alloc_init before kmem_cache_init (init/main.c). So CPU_DEAD
drains the dead CPU's per-CPU page lists first, then the slab's arrays.
"""

from __future__ import annotations

from . import page_alloc, slab
from .errors import KernelBug

__all__ = ["EBUSY", "EINVAL", "cpu_online_map", "cpu_online", "num_online_cpus",
           "check_cpu_online", "cpu_down", "cpu_up"]

# include/asm-generic/errno-base.h
EBUSY = 16
EINVAL = 22


def cpu_online_map(machine) -> list[int]:
    """The online CPUs, in increasing order."""
    online = machine.__dict__.get("cpu_online_map")
    return list(range(machine.cpus)) if online is None else list(online)


def cpu_online(machine, cpu: int) -> bool:
    online = machine.__dict__.get("cpu_online_map")
    return 0 <= cpu < machine.cpus if online is None else cpu in online


def num_online_cpus(machine) -> int:
    online = machine.__dict__.get("cpu_online_map")
    return machine.cpus if online is None else len(online)


def check_cpu_online(machine, cpu: int) -> None:
    """KernelBug `cpu_offline` for a call said to run on a CPU that is down.

    The kernel never runs code on a dead CPU, so it has no such check; the model
    rejects the call (stricter than the kernel) and changes nothing."""
    if not cpu_online(machine, cpu):
        raise KernelBug("cpu_offline", f"CPU {cpu} is offline (cpu_down): no code runs "
                                       "there until cpu_up")


def _this_cpu(machine, cpu: int, this_cpu) -> int:
    """The CPU running the hotplug call: the one named, else the lowest online CPU
    other than `cpu` (cpu_down moves the caller off the dying CPU)."""
    if this_cpu is None:
        others = [c for c in cpu_online_map(machine) if c != cpu]
        return others[0] if others else cpu
    slab.check_cpu(machine, this_cpu)
    if this_cpu == cpu:
        # cpu_down: set_cpus_allowed(current, all but cpu); cpu_up: cpu is not online
        raise KernelBug("hotplug_self", f"CPU {cpu} cannot run its own hotplug call")
    return this_cpu


def _set_online(machine, online: list[int]) -> None:
    machine.cpu_online_map = sorted(online)


def cpu_down(machine, cpu: int, this_cpu: int | None = None) -> int:
    """Take a CPU offline (2.6.12 kernel/cpu.c: cpu_down): 0, -EBUSY or -EINVAL.

    -EBUSY if it is the last online CPU; -EINVAL if it is not online; -EBUSY for CPU 0,
    which i386 __cpu_disable refuses (interrupts only the boot CPU can take), reported
    after CPU_DOWN_FAILED, which changes nothing the model keeps. Otherwise the CPU
    leaves cpu_online_map and the CPU_DEAD chain runs on `this_cpu`:
    page_alloc_cpu_notify (__drain_pages of the dead CPU's page lists), then
    cpuup_callback (each cache's array of the dead CPU back to the slabs, kfree'd).
    """
    # CHECK
    if type(cpu) is not int or not 0 <= cpu < machine.cpus:
        raise ValueError(f"cpu {cpu!r} is not a CPU of this machine (0..{machine.cpus - 1})")
    if num_online_cpus(machine) == 1:
        return -EBUSY
    if not cpu_online(machine, cpu):
        return -EINVAL
    this_cpu = _this_cpu(machine, cpu, this_cpu)
    if cpu == 0:
        return -EBUSY
    # the slab's arrays must exist before a CPU can lose them (kmem_cache_init runs
    # long before any hotplug); a machine whose slab bootstrap cannot finish would
    # have panicked at boot: every CPU stays online (_bootstrap_undo gives the pages back)
    state = machine.slab
    if not state.ready and not slab._bootstrap(machine):
        return -EBUSY
    # OPERATION: take_cpu_down clears the bit; then CPU_DEAD in registration order
    _set_online(machine, [c for c in cpu_online_map(machine) if c != cpu])
    getattr(page_alloc, "__drain_pages")(machine, cpu)
    slab.cpuup_callback(machine, "CPU_DEAD", cpu, this_cpu)
    return 0


def cpu_up(machine, cpu: int, this_cpu: int | None = None) -> int:
    """Bring an offline CPU back (2.6.12 kernel/cpu.c: cpu_up): 0 or -EINVAL.

    -EINVAL if it is online. CPU_UP_PREPARE runs on `this_cpu`: the slab gives the CPU
    a new array in every cache (kmalloc'ed, the cache's current limit and batchcount;
    free_limit from the CPUs online *before* this one). If an array cannot be
    allocated, the chain answers NOTIFY_BAD, cpu_up returns -EINVAL and CPU_UP_CANCELED
    takes back the arrays made so far; the CPU stays offline. Otherwise the CPU joins
    cpu_online_map (__cpu_up); CPU_ONLINE only starts the reap timer.
    """
    # CHECK
    if type(cpu) is not int or not 0 <= cpu < machine.cpus:
        raise ValueError(f"cpu {cpu!r} is not a CPU of this machine (0..{machine.cpus - 1})")
    if cpu_online(machine, cpu):
        return -EINVAL
    this_cpu = _this_cpu(machine, cpu, this_cpu)
    # OPERATION (the slab is ready: a CPU went down since boot)
    if not slab.cpuup_callback(machine, "CPU_UP_PREPARE", cpu, this_cpu):
        slab.cpuup_callback(machine, "CPU_UP_CANCELED", cpu, this_cpu)
        return -EINVAL
    _set_online(machine, cpu_online_map(machine) + [cpu])
    return 0
