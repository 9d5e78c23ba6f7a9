"""mem_map: one `struct page` per page frame, and the address translations.

Linux 2.6.12 (FLATMEM) keeps one array of `struct page`, `mem_map`, with one entry per
physical frame: `page_to_pfn(page) = page - mem_map`, `pfn_to_page(pfn) = mem_map +
pfn`, physical address = `pfn << PAGE_SHIFT` (include/asm-i386/page.h,
include/linux/mm.h). A million Python objects would be too slow for a 4 GiB machine, so
the fields live in compact arrays indexed by pfn and `Page` is a light handle made on
demand; `page - mem_map` still gives the pfn, as in the seed.

Field names follow `struct page` (include/linux/mm.h, 2.6.12): `flags`, `_count`
(here `count`, holding page_count(), i.e. 0 when free), `private` (a free block's order
at its head), `lru` (free-list linkage: `lru_next`/`lru_prev` pfns, -1 for none). The
zone a frame belongs to is encoded in page->flags in the kernel (`page_zone()`); here
it is the `zone_id` array (NO_ZONE for frames outside every zone, such as iomem).
"""

from __future__ import annotations

from array import array

# Page flag bits (include/linux/page-flags.h). The model only needs those the
# allocators test. 2.6.12 marks a free block's head with PG_private; 2.6.19+ with
# PG_buddy. The model calls it PG_buddy (see the name table in spec/README.md).
PG_reserved = 0x01
PG_buddy = 0x02
PG_slab = 0x04
PG_highmem = 0x08      # page is in ZONE_HIGHMEM (PageHighMem(); computed from the zone in the kernel)

PG_compound = 0x10     # part of a compound (__GFP_COMP) block; page->private is its head
FLAG_NAMES = {PG_reserved: "PG_reserved", PG_buddy: "PG_buddy", PG_slab: "PG_slab",
              PG_highmem: "PG_highmem", PG_compound: "PG_compound"}

NO_ZONE = 255


class Page:
    """A handle on one `struct page`: (mem_map, pfn). Cheap; made on demand."""

    __slots__ = ("mem_map", "pfn")

    def __init__(self, mem_map: "MemMap", pfn: int):
        self.mem_map = mem_map
        self.pfn = pfn

    def __sub__(self, other):
        # page - mem_map == pfn: the seed's page_to_pfn
        if other is self.mem_map:
            return self.pfn
        return NotImplemented

    def __eq__(self, other):
        return isinstance(other, Page) and other.mem_map is self.mem_map and other.pfn == self.pfn

    def __hash__(self):
        return hash(self.pfn)

    def __repr__(self):
        return f"Page(pfn={self.pfn:#x})"

    # struct page fields, read through the arrays
    @property
    def flags(self) -> int:
        return self.mem_map.flags[self.pfn]

    @property
    def count(self) -> int:
        return self.mem_map.count[self.pfn]

    @property
    def private(self) -> int:
        return self.mem_map.private[self.pfn]

    def flag_names(self) -> list[str]:
        f = self.flags
        return [name for bit, name in FLAG_NAMES.items() if f & bit]


class MemMap:
    """The array of `struct page` for frames 0 .. nr_pages-1, as parallel arrays."""

    def __init__(self, nr_pages: int):
        self.nr_pages = nr_pages
        # memmap_init_zone (2.6.12 mm/page_alloc.c): every frame starts Reserved
        # and referenced, until free_all_bootmem() hands it to the buddy allocator.
        self.flags = bytearray([PG_reserved]) * nr_pages
        self.count = array("i", [1]) * nr_pages
        self.private = array("i", bytes(4 * nr_pages))
        self.lru_next = array("i", [-1]) * nr_pages
        self.lru_prev = array("i", [-1]) * nr_pages
        self.zone_id = bytearray([NO_ZONE]) * nr_pages

    def __add__(self, pfn: int) -> Page:
        # mem_map + pfn == the page: the seed's pfn_to_page
        return Page(self, pfn)

    def __getitem__(self, pfn: int) -> Page:
        return Page(self, pfn)

    def __len__(self) -> int:
        return self.nr_pages

    def pfn_valid(self, pfn: int) -> bool:
        return 0 <= pfn < self.nr_pages
