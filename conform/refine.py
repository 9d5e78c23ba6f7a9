"""Refinement: is this answer one the specification allows? (prose: spec/conformance.md)

Refine mode judges a page allocator on what the buddy specification requires, not on
the model's choices. The checker keeps a *shadow* of the blocks the implementation
has handed out (live blocks) and asks, for every answer:

* R1 an allocation returns NULL or an integer pfn;
* R2 the block lies inside the managed frames: 0 <= pfn, pfn + 2^order <= nr_pages;
* R3 the block is aligned to its size: pfn % 2^order == 0 (buddy_alignment);
* R4 the block shares no frame with a live block (no_overlap);
* R5 NULL is allowed only when order > top order or no aligned run of 2^order frames
  is free given the live blocks -- so freed space must be reusable, and a buddy
  allocator must coalesce (merge_completeness) to find it;
* R6 a request above the top order (order >= max_order) returns NULL
  (2.6.12 __alloc_pages: `if (order >= MAX_ORDER) return NULL`);
* R7 free_pages of a live block is accepted;
* R8 when the implementation offers free_counts(), nr_free per order equals the
  unique completely-merged decomposition of the free frames (merge_completeness and
  conservation, observed through /proc/buddyinfo-style counts).

Each check is a plain function returning a reason (str) when the answer is not
allowed, or None.
"""

from __future__ import annotations

__all__ = ["Shadow", "check_alloc", "check_counts", "canonical_counts", "fits_somewhere"]


class Shadow:
    """The live blocks of an implementation, as the checker has seen them."""

    def __init__(self, nr_pages: int, max_order: int):
        self.nr_pages = nr_pages
        self.max_order = max_order
        self.live: dict[int, int] = {}          # head pfn -> order
        self.used = bytearray(nr_pages)         # 1 where a live block holds the frame

    def add(self, pfn: int, order: int) -> None:
        size = 1 << order
        self.live[pfn] = order
        self.used[pfn:pfn + size] = b"\x01" * size

    def remove(self, pfn: int) -> int:
        order = self.live.pop(pfn)
        size = 1 << order
        self.used[pfn:pfn + size] = bytes(size)
        return order

    def owner_of(self, pfn: int) -> tuple[int, int] | None:
        """The live block (head, order) holding frame `pfn`."""
        for order in range(self.max_order):
            head = pfn & ~((1 << order) - 1)
            if self.live.get(head, -1) >= order and head + (1 << self.live[head]) > pfn:
                return head, self.live[head]
        for head, order in self.live.items():      # misaligned blocks of a faulty impl
            if head <= pfn < head + (1 << order):
                return head, order
        return None


def fits_somewhere(shadow: Shadow, order: int) -> int | None:
    """The lowest aligned free run of 2^order frames, or None (drives R5)."""
    size = 1 << order
    used = shadow.used
    for start in range(0, shadow.nr_pages - size + 1, size):
        if used.find(1, start, start + size) < 0:
            return start
    return None


def check_alloc(shadow: Shadow, order: int, ret) -> str | None:
    """Is `ret` an allowed answer to alloc_pages(order) in this shadow state?"""
    if ret is not None and (type(ret) is not int):
        return f"R1: returned {ret!r}, not a pfn or NULL"
    if order >= shadow.max_order:
        if ret is not None:
            return (f"R6: order {order} is above the top order {shadow.max_order - 1}; "
                    f"the only allowed answer is NULL, got pfn {ret}")
        return None
    if ret is None:
        where = fits_somewhere(shadow, order)
        if where is not None:
            return (f"R5: returned NULL but frames {where}..{where + (1 << order) - 1} "
                    f"form a free aligned run of 2^{order} frames")
        return None
    size = 1 << order
    if ret < 0 or ret + size > shadow.nr_pages:
        return (f"R2: block {ret}..{ret + size - 1} (order {order}) is outside the "
                f"{shadow.nr_pages} managed frames")
    if ret % size:
        return f"R3: pfn {ret} is not aligned to 2^{order} = {size} frames"
    clash = shadow.used.find(1, ret, ret + size)
    if clash >= 0:
        head, o = shadow.owner_of(clash)
        return (f"R4: block {ret}..{ret + size - 1} overlaps the live order-{o} block "
                f"at pfn {head} (frame {clash})")
    return None


def canonical_counts(shadow: Shadow) -> list[int]:
    """nr_free per order of the completely merged free frames (unique for a free set).

    Walking up from pfn 0, each free frame starts the largest aligned, wholly free
    run of at most top order that fits below nr_pages -- exactly the blocks left by
    __free_pages_bulk when every buddy that can merge has merged.
    """
    counts = [0] * shadow.max_order
    used, n, top = shadow.used, shadow.nr_pages, shadow.max_order - 1
    pfn = 0
    while pfn < n:
        if used[pfn]:
            pfn += 1
            continue
        order = 0
        while order < top:
            bigger = 1 << (order + 1)
            if pfn % bigger or pfn + bigger > n or used.find(1, pfn, pfn + bigger) >= 0:
                break
            order += 1
        counts[order] += 1
        pfn += 1 << order
    return counts


def check_counts(shadow: Shadow, counts) -> str | None:
    """R8: the implementation's nr_free per order against the merged free set."""
    want = canonical_counts(shadow)
    if not isinstance(counts, (list, tuple)) or not all(type(c) is int for c in counts):
        return f"R8: free_counts() returned {counts!r}, not a list of integers"
    if len(counts) != len(want):
        return (f"R8: free_counts() reports {len(counts)} orders {list(counts)}; the spec "
                f"has orders 0..{len(want) - 1} (max_order {len(want)}), completely merged "
                f"{want}")
    if list(counts) != want:
        return (f"R8: nr_free per order is {list(counts)}; the free frames, completely "
                f"merged, make {want}")
    return None


# --- the object allocator (kmalloc / kfree) -----------------------------------------------
#
# K1 kmalloc returns NULL or an integer byte address;
# K2 a request above the largest general class (131072 on 2.6 i386) returns NULL
#    (2.6.12 __kmalloc: no cache in malloc_sizes holds it);
# K3 any other request succeeds while the live objects' class bytes plus the request
#    stay within half the managed memory (the rest is slack for slab management and
#    partly used slabs) -- NULL only when memory may really be exhausted;
# K4 the object [addr, addr + class) lies inside the frames;
# K5 it is aligned to min(class, L1_CACHE_BYTES): 2.6.12 kmem_cache_init creates the
#    general caches with SLAB_HWCACHE_ALIGN, halving the line while the object fits;
# K6 its extent, the smallest general class holding the request (`size_class`,
#    kmalloc_sizes.h), shares no byte with another live object (`no_overlap`);
# K7 kfree of a live object is accepted;
# K8 if ksize() is offered, it returns that class (2.6.12 ksize: the cache's objsize).

def kmalloc_class(profile, size: int) -> int | None:
    """The smallest general cache size holding `size` bytes (kmalloc(0) gets the first)."""
    for cls in profile.kmalloc_sizes:
        if size <= cls:
            return cls
    return None


class ObjectShadow:
    """Live objects of an implementation: address -> (requested size, class)."""

    def __init__(self, nr_pages: int, profile):
        self.profile = profile
        self.nr_bytes = nr_pages * profile.PAGE_SIZE
        self.live: dict[int, tuple[int, int]] = {}

    def live_bytes(self) -> int:
        return sum(cls for _, cls in self.live.values())

    def overlapping(self, addr: int, length: int) -> int | None:
        for other, (_, cls) in self.live.items():
            if other < addr + length and addr < other + cls:
                return other
        return None


def check_kmalloc(shadow: ObjectShadow, size: int, ret) -> str | None:
    """Is `ret` an allowed answer to kmalloc(size)?"""
    if ret is not None and type(ret) is not int:
        return f"K1: returned {ret!r}, not an address or NULL"
    cls = kmalloc_class(shadow.profile, size)
    if cls is None:
        if ret is not None:
            return (f"K2: {size} bytes is above the largest general class "
                    f"{shadow.profile.kmalloc_sizes[-1]}; the only answer is NULL, got {ret}")
        return None
    if ret is None:
        if shadow.live_bytes() + cls <= shadow.nr_bytes // 2:
            return (f"K3: returned NULL for {size} bytes with only {shadow.live_bytes()} "
                    f"of {shadow.nr_bytes} bytes in live objects")
        return None
    if ret < 0 or ret + cls > shadow.nr_bytes:
        return f"K4: object {ret}..{ret + cls - 1} is outside the {shadow.nr_bytes} managed bytes"
    align = min(cls, shadow.profile.L1_CACHE_BYTES)
    if ret % align:
        return f"K5: object at {ret} ({size} bytes, class {cls}) is not aligned to {align}"
    other = shadow.overlapping(ret, cls)
    if other is not None:
        osize, ocls = shadow.live[other]
        return (f"K6: object {ret}..{ret + cls - 1} (kmalloc({size}), class size-{cls}) "
                f"overlaps the live object at {other} (kmalloc({osize}), size-{ocls})")
    return None


# --- the virtual area allocator (vmalloc / vfree) ------------------------------------------
#
# V1 vmalloc returns NULL or an integer address;
# V2 vmalloc(0), and a request for more pages than the machine has, return NULL
#    (2.6.12 __vmalloc: `if (!size || (size >> PAGE_SHIFT) > num_physpages) return NULL`);
# V3 an area is page aligned and, with its guard page, inside the range:
#    [addr, addr + PAGE_ALIGN(size) + PAGE_SIZE) within [0, vsize) (`vm_area_bounds`;
#    2.6.12 __get_vm_area adds the guard page to every area);
# V4 areas, guard pages included, are disjoint (`no_overlap` of vm areas);
# V5 NULL otherwise only when frames may really run out: the live areas' pages plus
#    the request exceed nr_pages - VMALLOC_SLACK (descriptors and page arrays come
#    from kmalloc, whose slabs take frames too), or no hole of the range fits;
# V6 vfree of a live area is accepted;
# V7 if vmalloc_to_pfn() is offered: every page of a new area maps to a frame in
#    0 .. nr_pages-1 used by no other live area, the guard page maps nothing, and after
#    vfree none of the area's pages maps anything (`page_table_consistency`;
#    2.6.12 vfree -> remove_vm_area -> unmap_vm_area clears the ptes).

VMALLOC_SLACK = 32


def page_align(size: int, page_size: int) -> int:
    return -(-size // page_size) * page_size


class AreaShadow:
    """Live vm areas of an implementation: address -> (requested size, span with guard)."""

    def __init__(self, nr_pages: int, vsize: int, profile):
        self.nr_pages = nr_pages
        self.vsize = vsize
        self.page_size = profile.PAGE_SIZE
        self.live: dict[int, tuple[int, int]] = {}
        self.pfns: dict[int, int] = {}          # frame -> area address (from V7 lookups)

    def span(self, size: int) -> int:
        return page_align(size, self.page_size) + self.page_size

    def live_pages(self) -> int:
        return sum(span // self.page_size - 1 for _, span in self.live.values())

    def hole_for(self, span: int) -> int | None:
        """The lowest address where `span` bytes fit between live areas."""
        cursor = 0
        for addr in sorted(self.live):
            if addr - cursor >= span:
                return cursor
            cursor = max(cursor, addr + self.live[addr][1])
        return cursor if self.vsize - cursor >= span else None


def check_vmalloc(shadow: AreaShadow, size: int, ret) -> str | None:
    """Is `ret` an allowed answer to vmalloc(size)?"""
    if ret is not None and type(ret) is not int:
        return f"V1: returned {ret!r}, not an address or NULL"
    pages = page_align(size, shadow.page_size) // shadow.page_size
    if size <= 0 or pages > shadow.nr_pages:
        if ret is not None:
            return (f"V2: vmalloc({size}) must return NULL (empty, or more pages than the "
                    f"{shadow.nr_pages} the machine has), got {ret}")
        return None
    span = shadow.span(size)
    if ret is None:
        if (shadow.live_pages() + pages <= shadow.nr_pages - VMALLOC_SLACK
                and shadow.hole_for(span) is not None):
            return (f"V5: returned NULL for {pages} pages with {shadow.live_pages()} of "
                    f"{shadow.nr_pages} frames in live areas and a free range at "
                    f"{shadow.hole_for(span)}")
        return None
    if ret % shadow.page_size:
        return f"V3: area at {ret} is not page aligned"
    if ret < 0 or ret + span > shadow.vsize:
        return (f"V3: area {ret}..{ret + span - 1} (with its guard page) is outside the "
                f"range of {shadow.vsize} bytes")
    for other, (osize, ospan) in shadow.live.items():
        if other < ret + span and ret < other + ospan:
            return (f"V4: area {ret}..{ret + span - 1} (vmalloc({size}) and its guard "
                    f"page) overlaps the live area {other}..{other + ospan - 1} "
                    f"(vmalloc({osize}) and its guard page)")
    return None
