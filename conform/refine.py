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

With page policy 2.6.12 (`conform --page-policy 2.6.12`) the shadow knows the
flat machine's `pcp_high` (frames CPU 0's hot list may hold) and `pages_min`, and two
rules allow what 2.6.12's per-CPU lists and watermarks explain (spec/conformance.md
section 3a): R5 allows NULL also where some parking of at most `pcp_high` free order-0
frames on the list would make zone_watermark_ok(order, pages_min) fail; R8 allows
free counts that leave out at most `pcp_high` parked frames, completely merged
otherwise.

Each check is a plain function returning a reason (str) when the answer is not
allowed, or None.
"""

from __future__ import annotations

__all__ = ["Shadow", "check_alloc", "check_counts", "canonical_counts", "fits_somewhere",
           "watermark_could_fail", "frames_at_or_above"]


class Shadow:
    """The live blocks of an implementation, as the checker has seen them."""

    def __init__(self, nr_pages: int, max_order: int):
        self.nr_pages = nr_pages
        self.max_order = max_order
        self.live: dict[int, int] = {}          # head pfn -> order
        self.used = bytearray(nr_pages)         # 1 where a live block holds the frame
        # page policy 2.6.12 (0, 0 otherwise): the hot list's `high` and pages_min
        self.pcp_high = 0
        self.pages_min = 0

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
        if where is not None and shadow.pcp_high:
            # page policy 2.6.12: a NULL the watermark could explain is allowed
            if watermark_could_fail(shadow, order) is not None:
                return None
            return (f"R5: returned NULL but frames {where}..{where + (1 << order) - 1} "
                    f"form a free aligned run of 2^{order} frames, and even with "
                    f"{shadow.pcp_high} free frames parked on a per-CPU list the zone "
                    f"would stay above its watermark (pages_min {shadow.pages_min})")
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


def frames_at_or_above(counts, order: int) -> int:
    """Frames held in blocks of `order` or larger, by nr_free per order."""
    return sum(c << o for o, c in enumerate(counts) if o >= order)


def watermark_could_fail(shadow: Shadow, order: int) -> int | None:
    """Page policy 2.6.12: could zone_watermark_ok(zone, order, pages_min, ...) fail for
    GFP_KERNEL (can_try_harder 0, gfp_high 0, lowmem_reserve 0 in ZONE_NORMAL) when up to
    `pcp_high` of the free frames sit on the per-CPU list, outside zone->free_pages?

    2.6.12 mm/page_alloc.c zone_watermark_ok fails when, for some j in 0..order, the
    frames in free blocks of order >= j, less 2^order - 1, are at most pages_min >> j.
    The buddy lists hold the free frames less the parked ones, completely merged; one
    parked frame takes at most 2^j frames out of the blocks of order >= j (its block
    splits into one block of each lower order). So the least count the kernel can see
    is A_j - pcp_high * 2^j, A_j of the completely merged free frames. Returns the j
    at which it can fail, or None.
    """
    merged = canonical_counts(shadow)
    for j in range(order + 1):
        least = frames_at_or_above(merged, j) - shadow.pcp_high * (1 << j)
        if least - (1 << order) + 1 <= shadow.pages_min >> j:
            return j
    return None


def check_counts(shadow: Shadow, counts) -> str | None:
    """R8: the implementation's nr_free per order against the merged free set."""
    want = canonical_counts(shadow)
    if not isinstance(counts, (list, tuple)) or not all(type(c) is int for c in counts):
        return f"R8: free_counts() returned {counts!r}, not a list of integers"
    if len(counts) != len(want):
        return (f"R8: free_counts() reports {len(counts)} orders {list(counts)}; the spec "
                f"has orders 0..{len(want) - 1} (max_order {len(want)}), completely merged "
                f"{want}")
    if shadow.pcp_high and list(counts) != want:
        return _check_parked_counts(shadow, list(counts), want)
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


# --- the cache allocator (kmem_cache_*) ------------------------------------------------------
#
# C1 kmem_cache_create returns NULL or an integer handle; NULL only when the spec's
#    geometry holds no object (`cache_geometry` num 0) or memory may be exhausted (as C3);
# C2 kmem_cache_alloc returns NULL or an integer address;
# C3 NULL only when memory may really be exhausted: the slabs the live objects need
#    (ceil(live / num) slabs per cache) plus one more exceed half the managed memory;
# C4 an object [addr, addr + objsize) lies inside the frames and is aligned to the
#    cache's alignment (`cache_geometry` align: word, cache line halved while the
#    object fits in half of it for SLAB_HWCACHE_ALIGN, or the caller's if larger);
# C5 it shares no byte with another live object of any cache (`no_overlap`);
# C6 kmem_cache_free of a live object, and kmem_cache_destroy of a cache with no live
#    objects, are accepted;
# C7 if slab_layout() is offered, every slab has the spec's geometry (`cache_estimate`):
#    num objects, management on-slab exactly when the spec puts it there, of the
#    spec's slab_size (struct slab + num bufctls, aligned) when on-slab and at least
#    struct slab + num bufctls when off-slab; slabs are page aligned, inside the
#    frames and disjoint; and offset + on-slab management + num x objsize fits the
#    2^gfporder pages of a slab (`slab_accounting`);
# C8 if slab_layout() is offered, each slab's colour offset is k x colour_off with
#    0 <= k < max(colour, 1), colour = left_over // colour_off (`colour_within_slack`;
#    2.6.12 cache_grow cycles colour_next through 0 .. colour-1), and every live object
#    is object i < num of a slab of its cache: base + offset + management + i x objsize.

def cache_geometry_of(profile, size: int, align: int, flags: int, *, offslab_limit: int,
                      slab_break_gfp_order: int) -> dict:
    """The spec's geometry of a cache (model/slab.py cache_geometry, 2.6.12)."""
    from ..model.slab import cache_geometry
    return cache_geometry(profile, size, align, flags, offslab_limit=offslab_limit,
                          slab_break_gfp_order=slab_break_gfp_order)


class CacheShadow:
    """Live caches and objects of an implementation."""

    def __init__(self, nr_pages: int, profile):
        self.profile = profile
        self.nr_bytes = nr_pages * profile.PAGE_SIZE
        self.geometry: dict[int, dict] = {}           # handle -> geometry
        self.objects: dict[int, int] = {}             # addr -> handle

    def slab_bytes(self, handle: int) -> int:
        return self.profile.PAGE_SIZE << self.geometry[handle]["gfporder"]

    def live_of(self, handle: int) -> int:
        return sum(1 for h in self.objects.values() if h == handle)

    def needed_bytes(self) -> int:
        """Bytes of the slabs the live objects need, at best packed."""
        total = 0
        for handle, geo in self.geometry.items():
            live = self.live_of(handle)
            total += -(-live // geo["num"]) * self.slab_bytes(handle) if geo["num"] else 0
        return total

    def overlapping(self, addr: int, length: int) -> int | None:
        for other, handle in self.objects.items():
            if other < addr + length and addr < other + self.geometry[handle]["objsize"]:
                return other
        return None


def check_cache_create(shadow: CacheShadow, geo: dict, ret) -> str | None:
    if ret is not None and type(ret) is not int:
        return f"C1: kmem_cache_create returned {ret!r}, not a handle or NULL"
    if ret is None and geo["num"] and \
            shadow.needed_bytes() + (shadow.profile.PAGE_SIZE << geo["gfporder"]) \
            <= shadow.nr_bytes // 2:
        return (f"C1: returned NULL for a cache whose geometry holds {geo['num']} objects "
                f"per slab, with memory to spare")
    if ret is not None and ret in shadow.geometry:
        return f"C1: handle {ret} is already the handle of a live cache"
    return None


def check_cache_alloc(shadow: CacheShadow, handle: int, ret) -> str | None:
    geo = shadow.geometry[handle]
    if ret is not None and type(ret) is not int:
        return f"C2: kmem_cache_alloc returned {ret!r}, not an address or NULL"
    if ret is None:
        if shadow.needed_bytes() + shadow.slab_bytes(handle) <= shadow.nr_bytes // 2:
            return (f"C3: returned NULL with the live objects needing only "
                    f"{shadow.needed_bytes()} of {shadow.nr_bytes} bytes of slabs")
        return None
    size = geo["objsize"]
    if ret < 0 or ret + size > shadow.nr_bytes:
        return f"C4: object {ret}..{ret + size - 1} is outside the {shadow.nr_bytes} managed bytes"
    if ret % geo["align"]:
        return f"C4: object at {ret} (objsize {size}) is not aligned to {geo['align']}"
    other = shadow.overlapping(ret, size)
    if other is not None:
        return (f"C5: object {ret}..{ret + size - 1} overlaps the live object at {other} "
                f"(cache {shadow.objects[other]})")
    return None


def check_slab_layout(shadow: CacheShadow, handle: int, layout, others: dict) -> str | None:
    """C7/C8 for one cache's slab_layout(); `others`: base -> (handle, bytes) of other caches."""
    geo = shadow.geometry[handle]
    prof = shadow.profile
    page, slab_bytes, size, num = prof.PAGE_SIZE, shadow.slab_bytes(handle), \
        geo["objsize"], geo["num"]
    if not isinstance(layout, (list, tuple)):
        return f"C7: slab_layout() returned {layout!r}, not a list of slabs"
    min_mgmt = prof.STRUCT_SLAB_SIZE + num * prof.BUFCTL_SIZE
    areas = []
    for entry in layout:
        if not isinstance(entry, (list, tuple)) or len(entry) != 5 or \
                not all(type(x) is int for x in entry):
            return f"C7: slab entry {entry!r} is not [base, colour, mgmt, on_slab, num]"
        base, colour, mgmt, on_slab, got_num = entry
        where = f"slab at {base}"
        if base % page or base < 0 or base + slab_bytes > shadow.nr_bytes:
            return (f"C7: {where} ({slab_bytes} bytes) is not page aligned inside the "
                    f"{shadow.nr_bytes} managed bytes")
        if got_num != num:
            return f"C7: {where} holds {got_num} objects; the spec's cache_estimate gives {num}"
        if bool(on_slab) == geo["off_slab"]:
            return (f"C7: {where} keeps its management {'on' if on_slab else 'off'} the "
                    f"slab; the spec puts it {'off' if geo['off_slab'] else 'on'} "
                    f"(objsize {size})")
        if on_slab and mgmt != geo["slab_size"]:
            return (f"C7: {where} has {mgmt} bytes of on-slab management; struct slab "
                    f"({prof.STRUCT_SLAB_SIZE}) + {num} bufctls ({prof.BUFCTL_SIZE} each), "
                    f"aligned to {geo['align']}, take {geo['slab_size']}")
        if not on_slab and mgmt < min_mgmt:
            return (f"C7: {where} has {mgmt} bytes of off-slab management, less than "
                    f"struct slab + {num} bufctls = {min_mgmt}")
        used = colour + (mgmt if on_slab else 0) + num * size
        if colour < 0 or used > slab_bytes:
            return (f"C7: {where}: colour {colour} + management "
                    f"{mgmt if on_slab else 0} + {num} x {size} = {used} bytes overflow the "
                    f"slab's {slab_bytes}")
        step, ncolour = geo["colour_off"], max(geo["colour"], 1)
        if colour % step or colour // step >= ncolour:
            return (f"C8: {where} has colour offset {colour}; the spec allows "
                    f"k x colour_off {step} for 0 <= k < {ncolour} (left_over "
                    f"{geo['left_over']}, colour {geo['colour']})")
        areas.append((base, base + colour + (mgmt if on_slab else 0)))
    spans = sorted([(b, b + slab_bytes, handle) for b, _ in areas]
                   + [(b, b + n, h) for b, (h, n) in others.items()])
    for (s1, e1, h1), (s2, e2, h2) in zip(spans, spans[1:]):
        if s2 < e1:
            return f"C7: slabs at {s1} (cache {h1}) and {s2} (cache {h2}) share memory"
    for addr, owner in shadow.objects.items():
        if owner != handle:
            continue
        for base, first in areas:
            if base <= addr < base + slab_bytes:
                index, rest = divmod(addr - first, size)
                if rest or not 0 <= index < num:
                    return (f"C8: object at {addr} is not object 0..{num - 1} of its slab "
                            f"(objects from {first}, {size} bytes each)")
                break
        else:
            return f"C8: object at {addr} lies in no slab of its cache"
    return None


# --- highmem (kmap / kunmap) ---------------------------------------------------------------
#
# H1 kmap returns NULL or an integer address; NULL only when every one of the
#    LAST_PKMAP slots has users (2.6.12 map_new_virtual sleeps until a kunmap; a slot
#    with no users is free now or after flush_all_zero_pkmaps);
# H2 the address is page aligned inside the PKMAP area: 0 <= vaddr < LAST_PKMAP pages;
# H3 kmap of a page that has users returns the address it already has
#    (page_address_htable);
# H4 pages with users have distinct addresses;
# H5 kunmap of a page with users is accepted;
# H6 if pkmap_count() is offered: LAST_PKMAP counts; the slot of a page with n users
#    counts n + 1, every other slot 0 (free) or 1 (unused, awaiting a flush)
#    (`pkmap_consistency`; 2.6.12 kunmap_high drops the count to 1 at the last user).

class PkmapShadow:
    """Pages with kmap users: pfn -> (address, users)."""

    def __init__(self, nr_pages: int, profile):
        from ..model.pgtable import LAST_PKMAP
        self.nr_pages = nr_pages
        self.page_size = profile.PAGE_SIZE
        self.last_pkmap = LAST_PKMAP
        self.maps: dict[int, list[int]] = {}          # pfn -> [vaddr, users]


def check_kmap(shadow: PkmapShadow, pfn: int, ret) -> str | None:
    if ret is not None and type(ret) is not int:
        return f"H1: kmap returned {ret!r}, not an address or NULL"
    if ret is None:
        if pfn in shadow.maps or len(shadow.maps) < shadow.last_pkmap:
            return (f"H1: kmap returned NULL with {len(shadow.maps)} of {shadow.last_pkmap} "
                    f"pkmap slots in use")
        return None
    area = shadow.last_pkmap * shadow.page_size
    if ret % shadow.page_size or not 0 <= ret < area:
        return f"H2: address {ret} is not a page of the PKMAP area (0..{area - 1})"
    if pfn in shadow.maps:
        if ret != shadow.maps[pfn][0]:
            return (f"H3: page {pfn} is kmapped at {shadow.maps[pfn][0]}; kmap returned {ret}")
        return None
    for other, (vaddr, _) in shadow.maps.items():
        if vaddr == ret:
            return f"H4: address {ret} is already the mapping of page {other}"
    return None


def check_pkmap_count(shadow: PkmapShadow, counts) -> str | None:
    if not isinstance(counts, (list, tuple)) or not all(type(c) is int for c in counts) \
            or len(counts) != shadow.last_pkmap:
        return f"H6: pkmap_count() is not a list of LAST_PKMAP = {shadow.last_pkmap} integers"
    used = {vaddr // shadow.page_size: (pfn, users)
            for pfn, (vaddr, users) in shadow.maps.items()}
    for slot, count in enumerate(counts):
        if slot in used:
            pfn, users = used[slot]
            if count != users + 1:
                return (f"H6: pkmap_count[{slot}] is {count}; page {pfn} mapped there has "
                        f"{users} users, so the count is {users + 1}")
        elif count not in (0, 1):
            return (f"H6: pkmap_count[{slot}] is {count} but no page mapped there has users: "
                    f"it must be 0 (free) or 1 (unused, awaiting a flush)")
    return None


def _check_parked_counts(shadow: Shadow, counts: list[int], want: list[int]) -> str | None:
    """R8 under page policy 2.6.12: the counts are the buddy lists', which leave out
    the p <= pcp_high frames parked on the per-CPU list and are completely merged
    otherwise: so for every order j, A_j(merged) - p * 2^j <= A_j(counts) <= A_j(merged)
    (necessary conditions: see watermark_could_fail). p = 0 means nothing is parked,
    and then the counts must be the merged ones exactly."""
    free = frames_at_or_above(want, 0)
    parked = free - frames_at_or_above(counts, 0)
    if parked == 0:
        return (f"R8: nr_free per order is {counts}; no frame is parked on a per-CPU "
                f"list, so the free frames, completely merged, make {want}")
    if not 0 < parked <= shadow.pcp_high:
        return (f"R8: nr_free per order is {counts}: {free - parked} frames; the free "
                f"frames are {free}, completely merged {want}, and at most "
                f"{shadow.pcp_high} of them may sit on a per-CPU list")
    for j in range(1, len(want)):
        have, most = frames_at_or_above(counts, j), frames_at_or_above(want, j)
        if not most - parked * (1 << j) <= have <= most:
            return (f"R8: nr_free per order is {counts}: {have} frames in blocks of order "
                    f">= {j}; the free frames, completely merged ({want}), less {parked} "
                    f"parked on a per-CPU list, leave {max(0, most - parked * (1 << j))}.."
                    f"{most}")
    return None
