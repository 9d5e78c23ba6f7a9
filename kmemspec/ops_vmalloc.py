"""Scenario operations and state view of vmalloc and the permanent kmaps."""

from __future__ import annotations

from .model import highmem, vmalloc as vm
from .model.addr import pfn_to_page
from .model.gfp import parse_gfp
from .scenario import as_int, op, state_view


def _page(machine, value):
    """A page argument is its pfn."""
    return pfn_to_page(machine, as_int(value, "page (a pfn)"))


def _addr(value):
    return 0 if value is None else as_int(value, "addr")


@op("vmalloc", "size")
def _vmalloc(machine, size):
    return vm.vmalloc(machine, as_int(size, "size"))


@op("__vmalloc", "size", "gfp")
def __vmalloc_op(machine, size, gfp):
    return vm.__vmalloc(machine, as_int(size, "size"), parse_gfp(gfp))


@op("vmalloc_32", "size")
def _vmalloc_32(machine, size):
    return vm.vmalloc_32(machine, as_int(size, "size"))


@op("vfree", "addr", void=True)
def _vfree(machine, addr):
    vm.vfree(machine, _addr(addr))


@op("vmap", "pages")
def _vmap(machine, pages):
    if not isinstance(pages, list):
        raise ValueError(f"pages must be a list of pfns, not {pages!r}")
    return vm.vmap(machine, [_page(machine, p) for p in pages])


@op("vunmap", "addr", void=True)
def _vunmap(machine, addr):
    vm.vunmap(machine, _addr(addr))


@op("vmalloc_to_page", "addr")
def _vmalloc_to_page(machine, addr):
    return vm.vmalloc_to_pfn(machine, as_int(addr, "addr"))


@op("kmap", "page")
def _kmap(machine, page):
    return highmem.kmap(machine, _page(machine, page))


@op("kunmap", "page", void=True)
def _kunmap(machine, page):
    highmem.kunmap(machine, _page(machine, page))


@op("page_address", "page")
def _page_address(machine, page):
    pfn = as_int(page, "page (a pfn)")
    if not machine.mem_map.pfn_valid(pfn):
        raise ValueError(f"page: pfn {pfn} is beyond mem_map ({machine.nr_pages} frames)")
    return highmem.page_address(machine, pfn_to_page(machine, pfn))


def vmallocinfo_text(machine) -> str:
    # /proc/vmallocinfo (mm/vmalloc.c s_show, 2.6.24+): "0x%p-0x%p %7ld", the caller,
    # " pages=%d" when the area has pages of its own, then the kind of area
    return "\n".join(f"{a['start']:#010x}-{a['end']:#010x} {a['size']:7d} {a['caller']}"
                     + (f" pages={a['pages']}" if a["pages"] else "") + f" {a['kind']}"
                     for a in vm.vmallocinfo(machine))


state_view("vmallocinfo", vmallocinfo_text)(vm.vmallocinfo)
