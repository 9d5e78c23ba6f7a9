"""A small buddy allocator that manages only a power-of-two number of frames.

Written for kmemspec's guide (spec/conformance.md, "Checking your allocator") as an
allocator that is *not* Linux: its top order is 6 (blocks of at most 64 frames, not
1024), it takes the highest free block of an order rather than the lowest, and it
cannot manage 7 or 2051 frames. Check it with its constraints declared:

    kmemspec conform examples/conform/pow2_buddy.py:Pow2Buddy --max-order 6

`supported_pages` tells the checker which machine sizes to draw; `--max-order 6`
tells it that orders 6 and up must be NULL and that the free counts have 6 orders.
`Pow2Buddy(bug="no_merge")` plants a bug (a freed block never merges with its buddy)
that refine mode must find.
"""

from __future__ import annotations

TOP_ORDER = 5                    # MAX_ORDER 6: orders 0..5


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class Pow2Buddy:
    name = "pow2_buddy"

    def __init__(self, bug: str | None = None):
        self.bug = bug
        self.free_lists: list[set[int]] = []
        self.max_order = TOP_ORDER + 1

    @staticmethod
    def supported_pages(nr_pages: int) -> bool:
        return is_power_of_two(nr_pages)

    def init(self, nr_pages: int, max_order: int) -> None:
        if not is_power_of_two(nr_pages):
            raise ValueError(f"{nr_pages} frames: only a power of two can be managed")
        self.max_order = min(max_order, TOP_ORDER + 1)
        self.free_lists = [set() for _ in range(self.max_order)]
        top = min(self.max_order - 1, nr_pages.bit_length() - 1)
        for pfn in range(0, nr_pages, 1 << top):
            self.free_lists[top].add(pfn)

    def alloc_pages(self, order: int) -> int | None:
        if order >= self.max_order:
            return None
        for found in range(order, self.max_order):
            if self.free_lists[found]:
                break
        else:
            return None
        pfn = max(self.free_lists[found])          # the highest block: not Linux's choice
        self.free_lists[found].remove(pfn)
        while found > order:                       # split, keep the upper half free
            found -= 1
            self.free_lists[found].add(pfn + (1 << found))
        return pfn

    def free_pages(self, pfn: int, order: int) -> None:
        while order < self.max_order - 1 and self.bug != "no_merge":
            buddy = pfn ^ (1 << order)
            if buddy not in self.free_lists[order]:
                break
            self.free_lists[order].remove(buddy)
            pfn = min(pfn, buddy)
            order += 1
        self.free_lists[order].add(pfn)

    def free_counts(self) -> list[int]:
        return [len(blocks) for blocks in self.free_lists]


def with_no_merge_bug() -> Pow2Buddy:
    """The seeded bug: frees never merge (found by R8 through free_counts)."""
    return Pow2Buddy(bug="no_merge")
