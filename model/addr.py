"""Address translations between pages, pfns, physical and kernel virtual addresses.

Linux 2.6.12 include/asm-i386/page.h: `__pa(x) = x - PAGE_OFFSET`, `__va(p) = p +
PAGE_OFFSET`; include/linux/mm.h: `page_address()` of a low-memory page is
`__va(pfn << PAGE_SHIFT)`; mm/highmem.c: a highmem page has an address only while it
is kmapped, found in `page_address_htable` (here `machine.page_address_htable`, pfn ->
virtual address), otherwise NULL (None).
"""

from __future__ import annotations

from .mem_map import PG_highmem, Page


def page_to_pfn(page: Page) -> int:
    return page - page.mem_map


def pfn_to_page(machine, pfn: int) -> Page:
    return machine.mem_map + pfn


def __pa(machine, vaddr: int) -> int:
    return vaddr - machine.profile.PAGE_OFFSET


def __va(machine, paddr: int) -> int:
    return paddr + machine.profile.PAGE_OFFSET


def PageHighMem(machine, page: Page) -> bool:
    return bool(machine.mem_map.flags[page.pfn] & PG_highmem)


def page_address(machine, page: Page) -> int | None:
    """The kernel virtual address of a page, or None (NULL) for an unmapped highmem page."""
    pfn = page.pfn
    if machine.mem_map.flags[pfn] & PG_highmem:
        return machine.page_address_htable.get(pfn)
    return __va(machine, pfn << machine.profile.PAGE_SHIFT)


def virt_addr_valid(machine, vaddr: int) -> bool:
    """True for an address of the direct map of low memory, [PAGE_OFFSET, high_memory).

    2.6.12 i386 only tests pfn_valid(__pa(kaddr) >> PAGE_SHIFT), which a vmalloc address
    can pass by accident; the spec asks for the direct map itself.
    """
    return isinstance(vaddr, int) and machine.profile.PAGE_OFFSET <= vaddr < machine.high_memory


def virt_to_page(machine, vaddr: int) -> Page:
    return pfn_to_page(machine, __pa(machine, vaddr) >> machine.profile.PAGE_SHIFT)
