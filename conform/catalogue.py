"""A catalogue of faulty allocators, each modelled on a real bug class.

`ReferenceBuddy` is a small, independent buddy allocator written the way 2.6.12
mm/page_alloc.c is (LIFO free lists, `expand` handing back the upper halves,
`__free_pages_bulk` merging with `page_idx ^ (1 << order)`); it passes both modes.
Every bug below is `ReferenceBuddy` with one kernel step done wrong, so each
counterexample points at exactly one mistake. Two *legal variants* make different but
allowed choices: refine mode must accept them and strict mode must not.

BUGS maps a name to (factory, layer, summary, modes that must catch it). The table of
results is in spec/conformance.md (figures from benches/bench_conform.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["ReferenceBuddy", "BUGS", "VARIANTS", "Entry"]


class ReferenceBuddy:
    """A correct buddy allocator with the Linux 2.6.12 policy, frames 0 .. nr_pages-1."""

    name = "reference-buddy"

    def init(self, nr_pages: int, max_order: int) -> None:
        self.nr_pages = nr_pages
        self.max_order = max_order
        # free_area[order]: dict used as a list -- the last key is the list head
        # (list_add puts a block at the head; list_del unlinks from anywhere in O(1)).
        self.free_area: list[dict[int, None]] = [{} for _ in range(self.nr_areas())]
        self.nr_free = [0] * self.nr_areas()
        self.private: dict[int, int] = {}      # PG_buddy heads -> order
        self.free_all_bootmem()

    def nr_areas(self) -> int:
        return self.max_order

    def top_order(self) -> int:
        return self.max_order - 1

    def free_all_bootmem(self) -> None:
        """Every frame free, as maximal aligned blocks in increasing pfn order.

        The state frame-by-frame __free_pages in pfn order produces (model/boot.py).
        """
        pfn = 0
        while pfn < self.nr_pages:
            order = self.top_order()
            while order > 0 and (pfn % (1 << order) or pfn + (1 << order) > self.nr_pages):
                order -= 1
            self.list_add(pfn, order)
            pfn += 1 << order

    # free lists, nr_free and the PG_buddy/private marks
    def list_add(self, pfn: int, order: int) -> None:
        self.free_area[order][pfn] = None
        self.nr_free[order] += 1
        self.private[pfn] = order

    def list_del(self, pfn: int, order: int) -> None:
        del self.free_area[order][pfn]
        self.nr_free[order] -= 1
        self.rmv_page_order(pfn)

    def rmv_page_order(self, pfn: int) -> None:
        del self.private[pfn]

    # mm/page_alloc.c: __alloc_pages, __rmqueue, expand
    def order_too_big(self, order: int) -> bool:
        # 2.6.12 __alloc_pages: "if (order >= MAX_ORDER) return NULL"
        return order >= self.max_order

    def alloc_pages(self, order: int) -> int | None:
        if self.order_too_big(order):
            return None
        for current in range(order, self.nr_areas()):
            area = self.free_area[current]
            if area:
                pfn = self.list_head(area)
                self.list_del(pfn, current)
                return self.expand(pfn, order, current)
        return None

    def list_head(self, area: dict) -> int:
        return next(reversed(area))

    def expand(self, pfn: int, low: int, high: int) -> int:
        while high > low:
            high -= 1
            self.list_add(pfn + (1 << high), high)
        return pfn

    # mm/page_alloc.c: __free_pages_bulk, page_is_buddy, bad_range
    def free_pages(self, pfn: int, order: int) -> None:
        while order < self.top_order():
            buddy = self.buddy_index(pfn, order)
            if not self.page_is_buddy(buddy, order):
                break
            self.merge_unlink(buddy, order)
            pfn = pfn & ~(1 << order)
            order += 1
        self.list_add(pfn, order)

    def buddy_index(self, page_idx: int, order: int) -> int:
        return page_idx ^ (1 << order)

    def page_is_buddy(self, buddy: int, order: int) -> bool:
        return 0 <= buddy < self.nr_pages and self.private.get(buddy) == order

    def merge_unlink(self, buddy: int, order: int) -> None:
        self.list_del(buddy, self.private[buddy])

    def free_counts(self) -> list[int]:
        return list(self.nr_free)


# --- page allocator bugs --------------------------------------------------------------

class MergeAcrossZoneBoundary(ReferenceBuddy):
    """page_is_buddy without bad_range / page_zone_id: merges with the next zone.

    Frames past nr_pages belong to a neighbouring zone whose free frames carry
    PG_buddy too; before 2.6.19 ("check the zone of the buddy") a zone not aligned to
    MAX_ORDER could merge across its end.
    """

    name = "merge_across_zone_boundary"

    def page_is_buddy(self, buddy, order):
        if buddy >= self.nr_pages:
            return True          # the neighbouring zone's free block looks like a buddy
        return super().page_is_buddy(buddy, order)

    def merge_unlink(self, buddy, order):
        if buddy < self.nr_pages:
            super().merge_unlink(buddy, order)


class MergeWithoutOrderCheck(ReferenceBuddy):
    """page_is_buddy tests PG_buddy but not `page_private(buddy) == order`."""

    name = "merge_without_order_check"

    def page_is_buddy(self, buddy, order):
        return 0 <= buddy < self.nr_pages and buddy in self.private


class WrongBuddyIndex(ReferenceBuddy):
    """The buddy taken as the next block, `page_idx + (1 << order)`, not `^`."""

    name = "wrong_buddy_index"

    def buddy_index(self, page_idx, order):
        return page_idx + (1 << order)


class ExpandReturnsLowerHalf(ReferenceBuddy):
    """expand() puts the lower half on the free list and hands out the lower half too."""

    name = "expand_returns_lower_half"

    def expand(self, pfn, low, high):
        while high > low:
            high -= 1
            self.list_add(pfn, high)
        return pfn


class MissingNrFreeUpdate(ReferenceBuddy):
    """A buddy unlinked while merging without `zone->free_area[order].nr_free--`."""

    name = "missing_nr_free_update"

    def merge_unlink(self, buddy, order):
        del self.free_area[order][buddy]
        self.rmv_page_order(buddy)


class OffByOneTopOrder(ReferenceBuddy):
    """MAX_ORDER taken as the top order (`<=` for `<`): blocks of 2^MAX_ORDER frames."""

    name = "off_by_one_top_order"

    def nr_areas(self):
        return self.max_order + 1

    def top_order(self):
        return self.max_order

    def order_too_big(self, order):
        return order > self.max_order


class NoCoalescing(ReferenceBuddy):
    """Frees never merge (a per-CPU list that is never drained back to the buddy)."""

    name = "no_coalescing"

    def free_pages(self, pfn, order):
        self.list_add(pfn, order)


class RmqueueWithoutListDel(ReferenceBuddy):
    """__rmqueue takes the head block but leaves it linked on the free list."""

    name = "rmqueue_without_list_del"

    def alloc_pages(self, order):
        if order >= self.max_order:
            return None
        for current in range(order, self.nr_areas()):
            area = self.free_area[current]
            if area:
                pfn = self.list_head(area)
                if current == order:
                    return pfn        # forgot list_del when no split is needed
                self.list_del(pfn, current)
                return self.expand(pfn, order, current)
        return None


class RmqueueNoFallback(ReferenceBuddy):
    """__rmqueue looks only at free_area[order], never at the larger lists."""

    name = "rmqueue_no_fallback"

    def alloc_pages(self, order):
        if order >= self.max_order:
            return None
        area = self.free_area[order]
        if not area:
            return None
        pfn = self.list_head(area)
        self.list_del(pfn, order)
        return pfn


class NrFreeCountsFrames(ReferenceBuddy):
    """nr_free counted in frames, not blocks (free_area[order].nr_free += 1 << order)."""

    name = "nr_free_counts_frames"

    def free_counts(self):
        return [n << order for order, n in enumerate(self.nr_free)]


class MergeStopsOneEarly(ReferenceBuddy):
    """The merge loop ends at MAX_ORDER - 2: two top-order halves never merge."""

    name = "merge_stops_one_early"

    def free_pages(self, pfn, order):
        saved, self.max_order = self.max_order, self.max_order - 1
        try:
            super().free_pages(pfn, order)
        finally:
            self.max_order = saved


class SplitWrongOrder(ReferenceBuddy):
    """expand() records the upper half with the order before halving (`high + 1`)."""

    name = "split_wrong_order"

    def expand(self, pfn, low, high):
        while high > low:
            high -= 1
            size = 1 << high
            self.free_area[high][pfn + size] = None
            self.nr_free[high] += 1
            self.private[pfn + size] = high + 1
        return pfn


# --- object allocator bugs -------------------------------------------------------------

from .adapter import ModelAllocator  # noqa: E402  (the model's kmalloc, then one bug)


class KmallocClassOffByOne(ModelAllocator):
    """kmalloc's class index from `size >> 3`, not `(size + 7) >> 3`: one class too small.

    Requests just above a class boundary (33..39 bytes, 65..71...) get the class below
    (2.6.12 __kmalloc walks malloc_sizes with `size > csizep->cs_size`; an index table
    built with the wrong rounding is the classic slip).
    """

    name = "kmalloc_class_off_by_one"

    def kmalloc(self, size):
        return super().kmalloc((size >> 3) << 3)


# --- cache (kmem_cache_*) and highmem bugs: the model with one step done wrong -----------

class SlabColourOverflow(ModelAllocator):
    """cache_grow wraps colour_next one step too late (`>` for `>=`): colour index = colour.

    2.6.12 cache_grow: `colour_next++; if (colour_next >= colour) colour_next = 0`.
    With `>` every (colour+1)-th slab starts its objects at colour x colour_off, a
    colour the cache does not have (colour_within_slack). Done here by giving the
    model's descriptor one colour more than its geometry after kmem_cache_create.
    """

    name = "slab_colour_overflow"

    def kmem_cache_create(self, name, size, align, flags):
        handle = super().kmem_cache_create(name, size, align, flags)
        if handle is not None:
            self.caches[handle].colour += 1
        return handle


class OffslabMgmtMiscount(ModelAllocator):
    """On-slab management sized without the bufctl array: objects overlap it.

    2.6.12 kmem_cache_create: `slab_size = ALIGN(cachep->num * sizeof(kmem_bufctl_t) +
    sizeof(struct slab), align)`; dropping the bufctl term puts object 0 where the
    bufctls of the slab live (slab_accounting / no_overlap with the management).
    """

    name = "offslab_mgmt_miscount"

    def kmem_cache_create(self, name, size, align, flags):
        handle = super().kmem_cache_create(name, size, align, flags)
        if handle is not None:
            cachep = self.caches[handle]
            if not cachep.off_slab:
                from ..model.slab import ALIGN
                cachep.slab_size = ALIGN(self.machine.profile.STRUCT_SLAB_SIZE, cachep.align)
        return handle


class PkmapCountLeak(ModelAllocator):
    """kunmap forgets to drop pkmap_count: a slot never returns to "unused".

    2.6.12 kunmap_high: `switch (--pkmap_count[nr])`; without the decrement the slot
    of every page ever kmapped stays in use until kmap runs out of slots
    (pkmap_consistency).
    """

    name = "pkmap_count_leak"

    def kunmap(self, pfn):
        self._highmem()               # the page stays mapped with its count unchanged


# --- vmalloc bugs --------------------------------------------------------------------------

class ReferenceVmalloc(ReferenceBuddy):
    """vmalloc after 2.6.12 mm/vmalloc.c over the reference buddy allocator.

    __get_vm_area: size = PAGE_ALIGN(size) + PAGE_SIZE (the guard page), first fit in
    address order; __vmalloc_area: one alloc_page per page, all given back on failure;
    map_vm_area: one pte per page; vfree: unmap, then __free_page each page.
    """

    name = "reference-vmalloc"
    PAGE_SIZE = 4096

    def vmalloc_init(self, vsize: int) -> None:
        self.vsize = vsize
        self.areas: dict[int, tuple[int, list[int]]] = {}   # addr -> (span, pfns)
        self.ptes: dict[int, int] = {}                       # page address -> pfn

    def guard_size(self) -> int:
        return self.PAGE_SIZE

    def vmalloc(self, size: int) -> int | None:
        page = self.PAGE_SIZE
        pages = -(-size // page)
        if size <= 0 or pages > self.nr_pages:
            return None
        span = pages * page + self.guard_size()
        addr, cursor = None, 0
        for start in sorted(self.areas):
            if start - cursor >= span:
                addr = cursor
                break
            cursor = start + self.areas[start][0]
        if addr is None and self.vsize - cursor >= span:
            addr = cursor
        if addr is None:
            return None
        pfns = []
        for _ in range(pages):
            pfn = self.alloc_pages(0)
            if pfn is None:
                for taken in pfns:
                    self.free_pages(taken, 0)
                return None
            pfns.append(pfn)
        self.areas[addr] = (span, pfns)
        for i, pfn in enumerate(pfns):
            self.ptes[addr + i * page] = pfn
        return addr

    def unmap_vm_area(self, addr: int, nr_pages: int) -> None:
        for i in range(nr_pages):
            del self.ptes[addr + i * self.PAGE_SIZE]

    def vfree(self, addr: int) -> None:
        span, pfns = self.areas.pop(addr)
        self.unmap_vm_area(addr, len(pfns))
        for pfn in pfns:
            self.free_pages(pfn, 0)

    def vmalloc_to_pfn(self, addr: int) -> int | None:
        return self.ptes.get(addr - addr % self.PAGE_SIZE)


class VmallocWithoutGuard(ReferenceVmalloc):
    """__get_vm_area without `size += PAGE_SIZE`: areas abut, no guard page between them."""

    name = "vmalloc_without_guard"

    def guard_size(self):
        return 0


class VfreeLeavesPtes(ReferenceVmalloc):
    """vfree frees the pages but skips unmap_vm_area: stale ptes to freed frames."""

    name = "vfree_leaves_ptes"

    def unmap_vm_area(self, addr, nr_pages):
        pass


# --- legal variants: refine must accept, strict must reject ---------------------------

class UpperHalfPolicy(ReferenceBuddy):
    """expand() hands out the upper part and keeps the lower halves free: allowed."""

    name = "variant_upper_half"

    def expand(self, pfn, low, high):
        while high > low:
            high -= 1
            self.list_add(pfn, high)
            pfn += 1 << high
        return pfn


class FifoFreeLists(ReferenceBuddy):
    """Free lists used first-in first-out (the tail, not the head): allowed."""

    name = "variant_fifo_lists"

    def list_head(self, area):
        return next(iter(area))


class NoIntrospection(ReferenceBuddy):
    """The reference without free_counts(): only answers are observable."""

    name = "reference-no-introspection"
    free_counts = None


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[[], object]
    layer: str                      # the part checked: page, object, vmalloc, cache, highmem
    summary: str
    modes: tuple[str, ...]          # the modes that must catch it


def _entry(cls, modes=("refine", "strict"), layer="page") -> Entry:
    return Entry(cls.name, cls, layer, (cls.__doc__ or "").strip().splitlines()[0], modes)


BUGS: dict[str, Entry] = {e.name: e for e in (
    _entry(MergeAcrossZoneBoundary),
    _entry(MergeWithoutOrderCheck),
    _entry(WrongBuddyIndex),
    _entry(ExpandReturnsLowerHalf),
    _entry(MissingNrFreeUpdate),
    _entry(OffByOneTopOrder),
    _entry(NoCoalescing),
    _entry(RmqueueWithoutListDel),
    _entry(RmqueueNoFallback),
    _entry(NrFreeCountsFrames),
    _entry(MergeStopsOneEarly),
    _entry(SplitWrongOrder),
    _entry(KmallocClassOffByOne, layer="object"),
    _entry(VmallocWithoutGuard, layer="vmalloc"),
    _entry(VfreeLeavesPtes, layer="vmalloc"),
    _entry(SlabColourOverflow, layer="cache"),
    _entry(OffslabMgmtMiscount, layer="cache"),
    _entry(PkmapCountLeak, layer="highmem"),
)}

VARIANTS: dict[str, Entry] = {e.name: e for e in (
    _entry(UpperHalfPolicy, modes=("strict",)),
    _entry(FifoFreeLists, modes=("strict",)),
)}


def reference() -> ReferenceBuddy:
    return ReferenceBuddy()


def reference_no_introspection() -> ReferenceBuddy:
    return NoIntrospection()


def reference_vmalloc() -> ReferenceVmalloc:
    return ReferenceVmalloc()


def _factories():
    # `kmemspec conform kmemspec.conform.catalogue:<name>` for every entry
    out = {}
    for entry in (*BUGS.values(), *VARIANTS.values()):
        out[entry.name] = entry.factory
    return out


globals().update(_factories())
