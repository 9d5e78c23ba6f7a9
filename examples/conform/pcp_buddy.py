"""A page allocator with Linux 2.6.12's per-CPU hot list and zone watermarks.

Written for kmemspec's guide (spec/conformance.md, section 3a) as an independent
re-implementation of what `kmemspec conform --page-policy 2.6.12` holds a target to:
2.6.12 mm/page_alloc.c `__alloc_pages` for GFP_KERNEL on CPU 0 of the flat machine,
from the kernel's rules, without importing anything from kmemspec:

* buddy core: `__rmqueue` takes the head of the first non-empty list at or above the
  order, `expand` lists the upper halves at the heads of the lower lists,
  `__free_pages_bulk` merges with `page_idx ^ (1 << order)` and lists the merged
  block at the head; boot lists the maximal aligned blocks in increasing pfn order;
* order 0 goes through the hot list (`buffered_rmqueue`: refill with `rmqueue_bulk`,
  `batch` frames at the tail, when `count <= low`; take the head); an order-0 free
  goes on its head (`free_hot_cold_page`), after `free_pages_bulk` gave `batch`
  frames from its tail back when `count >= high`;
* `zone_watermark_ok` at pages_low, then at pages_min (GFP_KERNEL: may sleep, not
  __GFP_HIGH: no easing); ZONE_DMA, the fallback, has nothing free; frames on the hot
  list are not in zone->free_pages.

The numbers are the flat machine's (nr_pages frames in ZONE_NORMAL after a 1024-frame
ZONE_DMA, 4096-byte pages): min_free_kbytes = int_sqrt(lowmem_kbytes * 16) clamped to
128..65536 (init_per_zone_pages_min), ZONE_NORMAL's share of min_free_kbytes / 4 pages
(setup_per_zone_pages_min), batch = max(1, min(nr_pages / 1024, 64) / 4)
(zone_batchsize) with low = 2 batch, high = 6 batch (free_area_init_core).

    kmemspec conform examples/conform/pcp_buddy.py:PcpBuddy --page-policy 2.6.12 --mode strict

`PcpBuddy(bug="fifo_hot_list")` takes frames from the hot list's tail (FIFO) instead
of its head: a legal variant that refine accepts and strict rejects.
"""

from __future__ import annotations

from collections import deque
from math import isqrt

DMA_PAGES = 1024                 # the flat machine's ZONE_DMA: reserved, nothing free
PAGE_KB = 4                      # 4096-byte pages
WORD = 32                        # bootmem bitmap word on i386 (BITS_PER_LONG)


class PcpBuddy:
    name = "pcp_buddy"

    def __init__(self, bug: str | None = None):
        self.bug = bug

    @staticmethod
    def supported_pages(nr_pages: int) -> bool:
        # whole bootmem words: boot frees order-5 blocks only, the hot list starts empty
        return nr_pages > 0 and nr_pages % WORD == 0

    # --- set-up (free_area_init_core, init_per_zone_pages_min, free_all_bootmem) ---
    def init(self, nr_pages: int, max_order: int) -> None:
        if not self.supported_pages(nr_pages):
            raise ValueError(f"{nr_pages} frames: a multiple of {WORD} is needed")
        self.nr_pages = nr_pages
        self.max_order = max_order
        # free_area[order]: dict used as a list, its last key the list head
        self.free_area: list[dict[int, None]] = [{} for _ in range(max_order)]
        self.order_of: dict[int, int] = {}        # free block heads (PG_buddy, private)
        self.zone_free = 0                       # zone->free_pages: buddy lists only
        lowmem_kbytes = (DMA_PAGES + nr_pages) * PAGE_KB
        min_free_kbytes = min(max(isqrt(lowmem_kbytes * 16), 128), 65536)
        all_min = min_free_kbytes // PAGE_KB
        self.pages_min = all_min * nr_pages // (DMA_PAGES + nr_pages)
        self.pages_low = self.pages_min * 5 // 4
        batch = min(nr_pages // 1024, (256 * 1024) // (PAGE_KB * 1024)) // 4
        self.batch = max(batch, 1)
        self.low, self.high = 2 * self.batch, 6 * self.batch
        self.hot: deque[int] = deque()            # CPU 0's hot list, head at the left
        pfn = 0
        while pfn < nr_pages:
            order = max_order - 1
            while order and (pfn % (1 << order) or pfn + (1 << order) > nr_pages):
                order -= 1
            self._list_add(pfn, order)
            self.zone_free += 1 << order
            pfn += 1 << order

    def _list_add(self, pfn: int, order: int) -> None:
        self.free_area[order][pfn] = None
        self.order_of[pfn] = order

    def _list_del(self, pfn: int, order: int) -> None:
        del self.free_area[order][pfn]
        del self.order_of[pfn]

    # --- the buddy core ---------------------------------------------------------
    def _rmqueue(self, order: int) -> int | None:
        for current in range(order, self.max_order):
            area = self.free_area[current]
            if not area:
                continue
            pfn = next(reversed(area))            # the list head
            self._list_del(pfn, current)
            self.zone_free -= 1 << order
            while current > order:                # expand: upper halves listed
                current -= 1
                self._list_add(pfn + (1 << current), current)
            return pfn
        return None

    def _free_bulk(self, pfn: int, order: int) -> None:
        self.zone_free += 1 << order
        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            if buddy + (1 << order) > self.nr_pages or self.order_of.get(buddy) != order:
                break
            self._list_del(buddy, order)
            pfn &= buddy
            order += 1
        self._list_add(pfn, order)

    # --- __alloc_pages(GFP_KERNEL) ----------------------------------------------
    def _watermark_ok(self, order: int, mark: int) -> bool:
        free = self.zone_free - (1 << order) + 1
        if free <= mark:                          # lowmem_reserve[NORMAL] of NORMAL: 0
            return False
        for o in range(order):
            free -= len(self.free_area[o]) << o
            mark >>= 1
            if free <= mark:
                return False
        return True

    def _buffered_rmqueue(self, order: int) -> int | None:
        if order == 0:
            if len(self.hot) <= self.low:
                for _ in range(self.batch):       # rmqueue_bulk: list_add_tail
                    pfn = self._rmqueue(0)
                    if pfn is None:
                        break
                    self.hot.append(pfn)
            if self.hot:
                return self.hot.pop() if self.bug == "fifo_hot_list" else self.hot.popleft()
        return self._rmqueue(order)

    def alloc_pages(self, order: int) -> int | None:
        if order >= self.max_order:
            return None
        for mark in (self.pages_low, self.pages_min):
            if self._watermark_ok(order, mark):
                pfn = self._buffered_rmqueue(order)
                if pfn is not None:
                    return pfn
        return None                               # the kernel would reclaim here

    def free_pages(self, pfn: int, order: int) -> None:
        if order:
            self._free_bulk(pfn, order)           # __free_pages_ok
            return
        if len(self.hot) >= self.high:            # free_pages_bulk from the tail
            for _ in range(self.batch):
                if not self.hot:
                    break
                self._free_bulk(self.hot.pop(), 0)
        self.hot.appendleft(pfn)

    def free_counts(self) -> list[int]:
        return [len(area) for area in self.free_area]


def with_fifo_hot_list() -> PcpBuddy:
    return PcpBuddy(bug="fifo_hot_list")
