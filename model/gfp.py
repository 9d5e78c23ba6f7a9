"""GFP flags and the zone choice they imply.

Linux 2.6.12 include/linux/gfp.h: the zone modifiers are the low two bits
(GFP_ZONEMASK = 0x03); the rest are action modifiers. The page allocator acts on
__GFP_WAIT and __GFP_HIGH (watermark passes) and __GFP_COLD (the per-CPU cold list);
the others are accepted and not acted on (no reclaim, no I/O; see spec/buddy.md).
"""

from __future__ import annotations

from .errors import KernelBug

# include/linux/gfp.h (2.6.12)
__GFP_DMA = 0x01
__GFP_HIGHMEM = 0x02
__GFP_WAIT = 0x10
__GFP_HIGH = 0x20
__GFP_IO = 0x40
__GFP_FS = 0x80
__GFP_COLD = 0x100
__GFP_NOWARN = 0x200
__GFP_REPEAT = 0x400
__GFP_NOFAIL = 0x800
__GFP_NORETRY = 0x1000
__GFP_NO_GROW = 0x2000
__GFP_COMP = 0x4000
__GFP_ZERO = 0x8000

GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM
GFP_VALID_MASK = 0xFFFF

GFP_NOIO = __GFP_WAIT
GFP_NOFS = __GFP_WAIT | __GFP_IO
GFP_ATOMIC = __GFP_HIGH
GFP_KERNEL = __GFP_WAIT | __GFP_IO | __GFP_FS
GFP_USER = __GFP_WAIT | __GFP_IO | __GFP_FS
GFP_HIGHUSER = __GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_HIGHMEM
GFP_DMA = __GFP_DMA

GFP_NAMES: dict[str, int] = {
    name: value for name, value in globals().items()
    if name.startswith(("GFP_", "__GFP_")) and isinstance(value, int)
    and name not in ("GFP_ZONEMASK", "GFP_VALID_MASK")
}

# Zone indices as in include/linux/mmzone.h (2.6.12)
ZONE_DMA, ZONE_NORMAL, ZONE_HIGHMEM = 0, 1, 2


def parse_gfp(text: str | int) -> int:
    """Turn "GFP_KERNEL | __GFP_HIGHMEM" (or an int) into a mask; ValueError if unknown."""
    if isinstance(text, bool):
        raise ValueError(f"gfp must be a flag expression or an integer, not {text!r}")
    if isinstance(text, int):
        mask = text
    elif isinstance(text, str):
        mask = 0
        for part in text.split("|"):
            name = part.strip()
            if name in GFP_NAMES:
                mask |= GFP_NAMES[name]
            else:
                try:
                    mask |= int(name, 0)
                except ValueError:
                    raise ValueError(f"unknown gfp flag {name!r}") from None
    else:
        raise ValueError(f"gfp must be a flag expression or an integer, not {text!r}")
    check_gfp(mask)
    return mask


def check_gfp(gfp_mask: int) -> None:
    """Raise KernelBug for a mask with bits no 2.6.12 gfp flag defines, or one that is
    not an integer at all (gfp_t is an unsigned int: 2.0, None or True is no mask)."""
    if type(gfp_mask) is not int:
        raise KernelBug("bad_gfp", f"gfp mask {gfp_mask!r} is not an integer")
    if gfp_mask < 0 or gfp_mask & ~GFP_VALID_MASK:
        raise KernelBug("bad_gfp", f"gfp mask {gfp_mask:#x} has undefined bits")


def gfp_zone(gfp_mask: int) -> int:
    """The highest zone a request may use.

    Linux 2.6.12 mm/page_alloc.c: build_zonelists() picks ZONE_HIGHMEM for
    __GFP_HIGHMEM and then ZONE_DMA for __GFP_DMA, so __GFP_DMA wins when both are set.
    """
    if gfp_mask & __GFP_DMA:
        return ZONE_DMA
    if gfp_mask & __GFP_HIGHMEM:
        return ZONE_HIGHMEM
    return ZONE_NORMAL


def format_gfp(gfp_mask: int) -> str:
    """A readable name for a mask: the common composite first, then single flags."""
    for name in ("GFP_HIGHUSER", "GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "GFP_ATOMIC", "GFP_DMA"):
        if gfp_mask == GFP_NAMES[name]:
            return name
    parts = [n for n, v in GFP_NAMES.items() if n.startswith("__") and gfp_mask & v]
    return "|".join(parts) or "0"
