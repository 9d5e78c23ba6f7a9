"""Scenario operations and state view of the page allocator."""

from __future__ import annotations

from .model import cpu as hotplug
from .model import page_alloc
from .model.addr import pfn_to_page
from .model.gfp import parse_gfp
from .scenario import as_int, op, state_view


def _page(machine, value):
    """A page argument is its pfn."""
    return pfn_to_page(machine, as_int(value, "page (a pfn)"))


def _cpu(machine, value, online: bool = True) -> int:
    """The optional "cpu" argument: a CPU of the booted machine (default 0); one that
    is down (cpu_down) is KernelBug `cpu_offline` unless `online` is False."""
    cpu = as_int(value, "cpu")
    if not 0 <= cpu < machine.cpus:
        raise ValueError(f"cpu {cpu} is not a CPU of this machine (0..{machine.cpus - 1})")
    if online:
        hotplug.check_cpu_online(machine, cpu)
    return cpu


def _pfn(page):
    return None if page is None else page.pfn


@op("alloc_pages", "gfp", "order", "cpu", optional=("cpu",))
def _alloc_pages(machine, gfp, order, cpu=0):
    return _pfn(page_alloc.alloc_pages(machine, parse_gfp(gfp), as_int(order, "order"),
                                       _cpu(machine, cpu)))


@op("alloc_page", "gfp", "cpu", optional=("cpu",))
def _alloc_page(machine, gfp, cpu=0):
    return _pfn(page_alloc.alloc_page(machine, parse_gfp(gfp), _cpu(machine, cpu)))


@op("__get_free_pages", "gfp", "order", "cpu", optional=("cpu",))
def _get_free_pages(machine, gfp, order, cpu=0):
    return page_alloc.__get_free_pages(machine, parse_gfp(gfp), as_int(order, "order"),
                                       _cpu(machine, cpu))


@op("__get_free_page", "gfp", "cpu", optional=("cpu",))
def _get_free_page(machine, gfp, cpu=0):
    return page_alloc.__get_free_page(machine, parse_gfp(gfp), _cpu(machine, cpu))


@op("get_zeroed_page", "gfp", "cpu", optional=("cpu",))
def _get_zeroed_page(machine, gfp, cpu=0):
    return page_alloc.get_zeroed_page(machine, parse_gfp(gfp), _cpu(machine, cpu))


@op("__free_pages", "page", "order", "cpu", optional=("cpu",), void=True)
def _free_pages_page(machine, page, order, cpu=0):
    page_alloc.__free_pages(machine, _page(machine, page), as_int(order, "order"),
                            _cpu(machine, cpu))


@op("__free_page", "page", "cpu", optional=("cpu",), void=True)
def _free_page_page(machine, page, cpu=0):
    page_alloc.__free_page(machine, _page(machine, page), _cpu(machine, cpu))


@op("free_pages", "addr", "order", "cpu", optional=("cpu",), void=True)
def _free_pages_addr(machine, addr, order, cpu=0):
    page_alloc.free_pages(machine, 0 if addr is None else as_int(addr, "addr"),
                          as_int(order, "order"), _cpu(machine, cpu))


@op("free_page", "addr", "cpu", optional=("cpu",), void=True)
def _free_page_addr(machine, addr, cpu=0):
    page_alloc.free_page(machine, 0 if addr is None else as_int(addr, "addr"),
                         _cpu(machine, cpu))


@op("put_page", "page", "cpu", optional=("cpu",), void=True)
def _put_page(machine, page, cpu=0):
    page_alloc.put_page(machine, _page(machine, page), _cpu(machine, cpu))


@op("drain_local_pages", "cpu", optional=("cpu",), void=True)
def _drain_local_pages(machine, cpu=0):
    page_alloc.drain_local_pages(machine, _cpu(machine, cpu))


@op("__drain_pages", "cpu", void=True)
def _drain_pages(machine, cpu):
    """What page_alloc_cpu_notify does for a CPU going down (CPU_DEAD); the CPU may
    be offline (its lists are empty then)."""
    getattr(page_alloc, "__drain_pages")(machine, _cpu(machine, cpu, online=False))


@op("get_page", "page", void=True)
def _get_page(machine, page):
    page_alloc.get_page(machine, _page(machine, page))


def _task_flags(value) -> int:
    """"PF_MEMALLOC", "0", 0x800 or "PF_MEMALLOC | 0" -> current->flags."""
    if isinstance(value, bool):
        raise ValueError(f"flags must be a PF_ expression or an integer, not {value!r}")
    if isinstance(value, int):
        mask = value
    elif isinstance(value, str):
        mask = 0
        for part in value.split("|"):
            name = part.strip()
            if name in page_alloc.TASK_FLAG_NAMES:
                mask |= page_alloc.TASK_FLAG_NAMES[name]
            else:
                try:
                    mask |= int(name, 0)
                except ValueError:
                    raise ValueError(f"unknown task flag {name!r} (known: "
                                     f"{', '.join(page_alloc.TASK_FLAG_NAMES)})") from None
    else:
        raise ValueError(f"flags must be a PF_ expression or an integer, not {value!r}")
    if mask & ~page_alloc.PF_MEMALLOC:
        raise ValueError(f"task flags {mask:#x}: only PF_MEMALLOC ({page_alloc.PF_MEMALLOC:#x}) "
                         "is modelled")
    return mask


@op("set_current_flags", "flags", void=True)
def _set_current_flags(machine, flags):
    """current->flags of the task making the following calls (PF_MEMALLOC: the
    task is freeing memory; __alloc_pages lets it ignore the watermarks)."""
    machine.current_flags = _task_flags(flags)


def _buddyinfo_text(machine) -> str:
    # mm/vmstat.c (2.6.12 mm/page_alloc.c frag_show): "Node %d, zone %8s " + "%6lu "
    return "\n".join(f"Node 0, zone {name:>8} " + "".join(f"{n:6d} " for n in counts)
                     for name, counts in page_alloc.buddyinfo(machine).items())


state_view("buddyinfo", _buddyinfo_text)(page_alloc.buddyinfo)


def _zoneinfo_text(machine) -> str:
    # in the layout of /proc/zoneinfo (2.6.13 mm/page_alloc.c zoneinfo_show), limited
    # to the fields the model keeps
    lines = []
    for name, z in page_alloc.zoneinfo(machine).items():
        lines.append(f"Node 0, zone {name:>8}")
        lines.append(f"  pages free     {z['free_pages']}")
        for key in ("min", "low", "high"):
            lines.append(f"        {key:<8} {z['pages_' + key]}")
        lines.append(f"        spanned  {z['spanned_pages']}")
        lines.append(f"        present  {z['present_pages']}")
        lines.append("        protection: (" + ", ".join(map(str, z["lowmem_reserve"])) + ")")
        lines.append("  pagesets")
        for pset in z["pagesets"]:
            for i, temp in enumerate(("hot", "cold")):
                pcp = pset[temp]
                lines.append(f"    cpu: {pset['cpu']} pcp: {i}")
                for key in ("count", "low", "high", "batch"):
                    lines.append(f"              {key + ':':<6} {pcp[key]}")
        lines.append(f"  start_pfn:         {z['start_pfn']}")
    return "\n".join(lines)


state_view("zoneinfo", _zoneinfo_text)(page_alloc.zoneinfo)
