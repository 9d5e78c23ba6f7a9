"""Independent oracles for the campaigns: fixed tables written from the kernel source.

The campaign's expected answers must not come from the model's own functions (a wrong
`gfp_zone` or zonelist would agree with itself). These tables are written by hand from
Linux 2.6.12 mm/page_alloc.c `build_zonelists` and include/linux/gfp.h; the 6.x
x86_64 profile has no highmem, so `__GFP_HIGHMEM` there means ZONE_NORMAL.

2.6.12 build_zonelists, for each zone modifier i (gfp & GFP_ZONEMASK): start at
ZONE_NORMAL; if i has __GFP_HIGHMEM start at ZONE_HIGHMEM; then if i has __GFP_DMA
start at ZONE_DMA (so DMA wins when both bits are set); the list is that zone and every
lower zone below it, highest first (build_zonelists_node), empty zones left out.
"""

from __future__ import annotations

# zone modifier bits: __GFP_DMA 0x01, __GFP_HIGHMEM 0x02 (include/linux/gfp.h 2.6.12)
ZONELIST_BY_NAME = {
    "linux-2.6-i386": {
        0b00: ("Normal", "DMA"),
        0b01: ("DMA",),
        0b10: ("HighMem", "Normal", "DMA"),
        0b11: ("DMA",),                        # __GFP_DMA wins over __GFP_HIGHMEM
    },
    # 6.x: ZONE_DMA for __GFP_DMA; no highmem on x86_64, so plain and __GFP_HIGHMEM
    # requests both start at ZONE_NORMAL and fall back through DMA32 and DMA
    "linux-6.x-x86_64": {
        0b00: ("Normal", "DMA32", "DMA"),
        0b01: ("DMA",),
        0b10: ("Normal", "DMA32", "DMA"),
        0b11: ("DMA",),
    },
}


def zonelist(machine, gfp: int) -> list:
    """The zones a request may use, preferred first, from the table (empty zones
    dropped, as build_zonelists_node skips zones without present pages)."""
    names = ZONELIST_BY_NAME[machine.profile.name][gfp & 0b11]
    by_name = {z.name: z for z in machine.zones}
    return [by_name[n] for n in names if n in by_name and by_name[n].spanned_pages]


def linux_choice(machine, gfp: int, order: int) -> int | None:
    """The Linux policy's answer (2.6.12 __alloc_pages -> buffered_rmqueue -> __rmqueue):
    the head of the first non-empty free list at or above `order` (include/linux/mmzone.h
    MAX_ORDER lists, 0 .. MAX_ORDER-1) in the first zone of the table's zonelist that has
    one; None if no zone has a block that large."""
    max_order = machine.profile.MAX_ORDER
    if order >= max_order:
        return None
    for zone in zonelist(machine, gfp):
        for area in zone.free_area[order:max_order]:
            if area.nr_free:
                return area.head
    return None
