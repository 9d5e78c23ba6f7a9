"""Scenario operations and state view of the page allocator."""

from __future__ import annotations

from .model import page_alloc
from .model.addr import pfn_to_page
from .model.gfp import parse_gfp
from .scenario import as_int, op, state_view


def _page(machine, value):
    """A page argument is its pfn."""
    return pfn_to_page(machine, as_int(value, "page (a pfn)"))


def _pfn(page):
    return None if page is None else page.pfn


@op("alloc_pages", "gfp", "order")
def _alloc_pages(machine, gfp, order):
    return _pfn(page_alloc.alloc_pages(machine, parse_gfp(gfp), as_int(order, "order")))


@op("alloc_page", "gfp")
def _alloc_page(machine, gfp):
    return _pfn(page_alloc.alloc_page(machine, parse_gfp(gfp)))


@op("__get_free_pages", "gfp", "order")
def _get_free_pages(machine, gfp, order):
    return page_alloc.__get_free_pages(machine, parse_gfp(gfp), as_int(order, "order"))


@op("__get_free_page", "gfp")
def _get_free_page(machine, gfp):
    return page_alloc.__get_free_page(machine, parse_gfp(gfp))


@op("get_zeroed_page", "gfp")
def _get_zeroed_page(machine, gfp):
    return page_alloc.get_zeroed_page(machine, parse_gfp(gfp))


@op("__free_pages", "page", "order", void=True)
def _free_pages_page(machine, page, order):
    page_alloc.__free_pages(machine, _page(machine, page), as_int(order, "order"))


@op("__free_page", "page", void=True)
def _free_page_page(machine, page):
    page_alloc.__free_page(machine, _page(machine, page))


@op("free_pages", "addr", "order", void=True)
def _free_pages_addr(machine, addr, order):
    page_alloc.free_pages(machine, 0 if addr is None else as_int(addr, "addr"),
                          as_int(order, "order"))


@op("free_page", "addr", void=True)
def _free_page_addr(machine, addr):
    page_alloc.free_page(machine, 0 if addr is None else as_int(addr, "addr"))


@op("get_page", "page", void=True)
def _get_page(machine, page):
    page_alloc.get_page(machine, _page(machine, page))


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
