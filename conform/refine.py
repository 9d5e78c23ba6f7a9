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
