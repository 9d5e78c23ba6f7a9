"""Sweep rows for model/page_alloc.py's free path: __free_pages_bulk's merges at every
order, the per-CPU hot and cold lists, the bulk frees, compound pages, find_block, the
list helpers and every misuse rule of the free path.

Expected values come from `KBuddy`, a few-line buddy written here from Linux 2.6.12
mm/page_alloc.c (__free_pages_bulk, __rmqueue / expand, free_hot_cold_page,
free_pages_bulk, __drain_pages, buffered_rmqueue), never from the model's functions:
each row runs the same calls on a booted model machine and on a KBuddy that starts
from the same input (every frame allocated, or the rows' own set-up) and compares the
whole outcome -- returned pfns, each zone's free_pages, nr_free and the order of every
free list (lru_next and lru_prev), PG_buddy / private / _count of every frame, the
per-CPU lists and page_owner. Block positions are counted from the zone's first frame,
the model's rule (spec/buddy.md section 4). Misuse rows check the rule name of
spec/buddy.md section 5 and that the whole machine pickles to the same bytes after.
"""

from __future__ import annotations

import copy
import hashlib
import pickle

from ..facts import Fact

MAX_ORDER = 11                  # include/linux/mmzone.h (2.6.12)
PAGE_SIZE = 4096
SOURCE = "mm/page_alloc.c (2.6.12) "

# --- the independent buddy ---------------------------------------------------------


def k_batch(present: int) -> int:
    """free_area_init_core (2.6.12): batch = present/1024, at most 256 KiB of pages,
    divided by 4, at least 1; the hot list has low 2*batch, high 6*batch, the cold
    list low 0, high 2*batch."""
    batch = present // 1024
    if batch * PAGE_SIZE > 256 * 1024:
        batch = 256 * 1024 // PAGE_SIZE
    return max(batch // 4, 1)


class KZone:
    def __init__(self, index: int, base: int, size: int, cpus: int):
        self.index, self.base, self.size = index, base, size
        self.lists: list[list[int]] = [[] for _ in range(MAX_ORDER)]   # head first
        self.free: dict[int, int] = {}                                 # head -> order
        b = k_batch(size)
        self.batch = b
        self.pcp_marks = ((2 * b, 6 * b), (0, 2 * b))                  # (low, high)
        self.pcp = [[[], []] for _ in range(cpus)]                    # [hot, cold], head first

    def free_pages(self) -> int:
        return sum(1 << o for o in self.free.values())


class KBuddy:
    """2.6.12's free-list arithmetic over zone-relative block indices."""

    def __init__(self, machine):
        self.zones = [KZone(z.index, z.zone_start_pfn, z.spanned_pages, machine.cpus)
                      for z in machine.zones]
        # the starting input: who holds which frame (the rows start from "every frame
        # allocated as an order-0 block" or a state they built with these same calls)
        self.owner = dict(machine.page_owner)
        self.count = list(machine.mem_map.count)
        # page->flags less the two bits the free path moves (PG_buddy on free heads,
        # PG_compound on __GFP_COMP frames); the others (reserved, highmem, slab) stay
        from ..model.mem_map import PG_buddy, PG_compound
        self.bits = (PG_buddy, PG_compound)
        self.flags0 = bytes(f & ~(PG_buddy | PG_compound) for f in machine.mem_map.flags)
        self.compound: dict[int, int] = {}          # frame -> head, for __GFP_COMP blocks
        self.index1: dict[int, int] = {}            # page[1].index of compound blocks

    def zone_of(self, pfn: int) -> KZone:
        return next(z for z in self.zones if z.base <= pfn < z.base + z.size)

    def free_block(self, pfn: int, order: int) -> None:
        """__free_pages_bulk: merge with the buddy idx ^ (1 << order) while it lies in
        the zone and is the head of a free block of the same order; the combined
        index is idx & ~(1 << order); the result goes on the head of its list."""
        z = self.zone_of(pfn)
        idx = pfn - z.base
        while order < MAX_ORDER - 1:
            b = idx ^ (1 << order)
            if b >= z.size or z.free.get(z.base + b) != order:
                break
            z.lists[order].remove(z.base + b)
            del z.free[z.base + b]
            idx &= ~(1 << order)
            order += 1
        z.free[z.base + idx] = order
        z.lists[order].insert(0, z.base + idx)

    def rmqueue(self, z: KZone, order: int) -> int | None:
        """__rmqueue + expand: the head of the first non-empty list at or above the
        order; the upper halves go on the heads of the lower lists."""
        for j in range(order, MAX_ORDER):
            if z.lists[j]:
                head = z.lists[j].pop(0)
                del z.free[head]
                while j > order:
                    j -= 1
                    z.lists[j].insert(0, head + (1 << j))
                    z.free[head + (1 << j)] = j
                return head
        return None

    def alloc(self, zone_index: int, order: int, comp: bool = False) -> int | None:
        """The bare buddy (page_policy "buddy", or a single-zone zonelist): prep_new_page
        sets one reference; __GFP_COMP marks the frames (prep_compound_page)."""
        pfn = self.rmqueue(self.zones[zone_index], order)
        if pfn is not None:
            self.owner[pfn] = order
            self.count[pfn] = 1
            if comp and order:
                for p in range(pfn, pfn + (1 << order)):
                    self.compound[p] = pfn
                self.index1[pfn + 1] = order
        return pfn

    def alloc_pcp(self, zone_index: int, cpu: int = 0, cold: int = 0) -> int | None:
        """buffered_rmqueue, order 0: refill `batch` frames at the tail when count <=
        low, take the head."""
        z = self.zones[zone_index]
        lst = z.pcp[cpu][cold]
        if len(lst) <= z.pcp_marks[cold][0]:
            for _ in range(z.batch):
                p = self.rmqueue(z, 0)
                if p is None:
                    break
                lst.append(p)
        if not lst:
            return self.alloc(zone_index, 0)
        pfn = lst.pop(0)
        self.owner[pfn] = 0
        self.count[pfn] = 1
        return pfn

    def put(self, pfn: int, order: int, pcp: bool, cpu: int = 0) -> None:
        """__free_pages: put_page_testzero, then free_hot_page (order 0 with per-CPU
        lists) or __free_pages_bulk (destroy_compound_page first)."""
        self.count[pfn] -= 1
        if self.count[pfn]:
            return
        del self.owner[pfn]
        if order == 0 and pcp:
            self.free_hot(pfn, cpu)
            return
        if pfn in self.compound:
            for p in range(pfn, pfn + (1 << order)):
                del self.compound[p]
            del self.index1[pfn + 1]
        self.free_block(pfn, order)

    def free_hot(self, pfn: int, cpu: int = 0, cold: int = 0) -> None:
        """free_hot_cold_page: at count >= high, free_pages_bulk(batch) from the tail,
        then the frame goes on the head."""
        z = self.zone_of(pfn)
        lst = z.pcp[cpu][cold]
        if len(lst) >= z.pcp_marks[cold][1]:
            for _ in range(z.batch):
                if lst:
                    self.free_block(lst.pop(), 0)
        lst.insert(0, pfn)

    def drain(self, cpu: int) -> None:
        """__drain_pages: every zone, hot then cold list, emptied from the tail."""
        for z in self.zones:
            for lst in z.pcp[cpu]:
                while lst:
                    self.free_block(lst.pop(), 0)

    def block_map(self, nr_pages: int) -> list:
        """For each frame the block that holds it, as find_block names it, or None
        (reserved frames, frames on a per-CPU list)."""
        out: list = [None] * nr_pages
        for z in self.zones:
            for head, order in z.free.items():
                out[head:head + (1 << order)] = [("free", head, order)] * (1 << order)
        for head, order in self.owner.items():
            out[head:head + (1 << order)] = [("allocated", head, order)] * (1 << order)
        return out

    def state(self, nr_pages: int) -> dict:
        private = {}
        for z in self.zones:
            private.update({h: o for h, o in z.free.items() if o})
        private.update({p: h for p, h in self.compound.items()})
        flags = bytearray(self.flags0)
        for z in self.zones:
            for h in z.free:
                flags[h] |= self.bits[0]
        for p in self.compound:
            flags[p] |= self.bits[1]
        return {
            "zones": [(z.free_pages(), [(len(lst), list(lst), ([-1] + lst[:-1]) if lst else [])
                                        for lst in z.lists],
                       [[(len(lst), list(lst)) for lst in cpu] for cpu in z.pcp])
                      for z in self.zones],
            "flags": bytes(flags),
            "private": private,
            "count": self.count[:nr_pages],
            "owner": dict(sorted(self.owner.items())),
            "index1": dict(sorted(self.index1.items())),
            # where each listed frame waits: 2 * cpu + cold (the diagnosis names it)
            "listed": dict(sorted((p, 2 * cpu + cold) for z in self.zones
                                  for cpu, lists in enumerate(z.pcp)
                                  for cold, lst in enumerate(lists) for p in lst)),
        }


# --- reading the model's state ----------------------------------------------------------

def m_state(m) -> dict:
    from ..model import page_alloc as pa
    mm = m.mem_map
    zones = []
    for z in m.zones:
        areas = []
        for area in z.free_area:
            lst = pa.free_list(mm, area)
            areas.append((area.nr_free, lst, [mm.lru_prev[p] for p in lst]))
        zones.append((z.free_pages, areas,
                      [[(p.count, list(p.list)) for p in pset.pcp] for pset in z.pageset]))
    return {
        "zones": zones,
        "flags": bytes(mm.flags),
        "private": {p: mm.private[p] for p in range(mm.nr_pages) if mm.private[p]},
        "count": list(mm.count),
        "owner": dict(sorted(m.page_owner.items())),
        "index1": dict(sorted(m.page_index.items())),
        "listed": dict(sorted(m.pcp_pages.items())),
    }


def digest(m) -> str:
    return hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()


def outcome(call) -> str:
    """The rule a call raises, "accepted", or the name of a wrong exception type."""
    from ..model.errors import KernelBug
    try:
        call()
        return "accepted"
    except KernelBug as exc:
        return exc.rule
    except Exception as exc:            # a crash is not the spec's rule: the row fails
        return type(exc).__name__


# --- machines -------------------------------------------------------------------------
# A: page_policy "buddy", zones DMA [0, 2072) (mem_map in frames 0..16, reserved),
#    Normal [2072, 2128) (56 frames: blocks of 32, 16, 8), HighMem [2128, 2168) (32, 8):
#    the last zone ends at the last frame; no zone start is a multiple of 64 frames.
# P: page_policy "2.6.12", 2 CPUs, DMA [0, 8200) (batch 2: low 4, high 12; mem_map at
#    4096..), Normal [8200, 8240) and HighMem [8240, 10288) (batch 1 each).
MACHINE_A = dict(phys_pages=2128, highmem_pages=40, reserved=(), max_dma_pfn=2072,
                 page_policy="buddy")
MACHINE_P = dict(phys_pages=8240, highmem_pages=2048, reserved=(), max_dma_pfn=8200, cpus=2)
# B: P's zones with page_policy "buddy": frame 0 is a frame like any other
MACHINE_B = dict(MACHINE_P, page_policy="buddy")
# I: A with 8 frames of I/O memory [2128, 2136) between Normal and HighMem (no zone)
MACHINE_I = dict(MACHINE_A, iomem_pages=8)

_BASES: dict = {}


def emptied(kind: str):
    """A booted machine with every free frame taken as an order-0 block (zone by zone,
    with PF_MEMALLOC so the watermarks do not stop it; per-CPU lists emptied too),
    and current->flags left with PF_MEMALLOC; a deep copy per call. The machine is
    built once per set of model functions (a test that monkeypatches one gets its own)."""
    import sys

    from ..model import page_alloc as pa
    from ..model.boot import boot
    boot_module = sys.modules[boot.__module__]
    key = (kind,) + tuple(id(v) for mod in (pa, boot_module) for v in vars(mod).values()
                          if callable(v))
    if key not in _BASES:
        from ..model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL
        m = boot_module.boot(**{"A": MACHINE_A, "P": MACHINE_P, "B": MACHINE_B, "I": MACHINE_I}[kind])
        m.current_flags |= pa.PF_MEMALLOC
        for gfp in (GFP_DMA, GFP_KERNEL, GFP_HIGHUSER):
            pa.alloc_pages_bulk(m, gfp, 1 << 20)
        _BASES.clear() if len(_BASES) > 8 else None
        _BASES[key] = m
    return copy.deepcopy(_BASES[key])


def _free_pages(m, page, order, cpu=0):
    from ..model import page_alloc as pa
    pa.__free_pages(m, page, order, cpu)


def _cold_comp(gfp: int) -> tuple[int, bool]:
    from ..model.gfp import __GFP_COLD, __GFP_COMP
    return (1 if gfp & __GFP_COLD else 0), bool(gfp & __GFP_COMP)


class Pair:
    """One model machine and its KBuddy, driven by the same calls."""

    def __init__(self, kind: str):
        from ..model import page_alloc as pa
        self.pa = pa
        self.m = emptied(kind)
        self.k = KBuddy(self.m)
        self.pcp = kind == "P"
        self.got: list = []           # (model, kernel) returned pfns

    def page(self, pfn):
        return self.m.mem_map + pfn

    def free(self, pfn: int, order: int = 0, cpu: int = 0) -> None:
        _free_pages(self.m, self.page(pfn), order, cpu)
        self.k.put(pfn, order, self.pcp, cpu)

    def free_run(self, pfns) -> None:
        for p in pfns:
            self.free(p)

    def bulk(self, pfns, cpu: int = 0) -> None:
        self.pa.free_pages_bulk(self.m, list(pfns), cpu)
        for p in pfns:
            self.k.put(p, 0, self.pcp, cpu)

    def alloc(self, gfp: int, zone_index: int, order: int, cpu: int = 0) -> int:
        page = self.pa.alloc_pages(self.m, gfp, order, cpu)
        cold, comp = _cold_comp(gfp)
        if order == 0 and self.pcp:
            want = self.k.alloc_pcp(zone_index, cpu, cold)
        else:
            want = self.k.alloc(zone_index, order, comp)
        got = None if page is None else page.pfn
        self.got.append((got, want))
        return got if got is not None else -1

    def note(self, model_value, kernel_value) -> None:
        self.got.append((model_value, kernel_value))

    def hot(self, zone_index: int, cpu: int = 0, cold: int = 0):
        """(count, list) of a per-CPU list: the model's and KBuddy's."""
        pcp = self.m.zones[zone_index].pageset[cpu].pcp[cold]
        lst = self.k.zones[zone_index].pcp[cpu][cold]
        return (pcp.count, list(pcp.list)), (len(lst), list(lst))

    def get(self, pfn: int) -> None:
        self.pa.get_page(self.m, self.page(pfn))
        self.k.count[self.k.compound.get(pfn, pfn)] += 1

    def drain(self, cpu: int) -> None:
        self.pa.drain_local_pages(self.m, cpu)
        self.k.drain(cpu)

    def model(self):
        return [g for g, _ in self.got], m_state(self.m)

    def expected(self):
        return [w for _, w in self.got], self.k.state(self.m.mem_map.nr_pages)


def pair_fact(name: str, source: str, kind: str, body) -> Fact:
    """A row: `body(pair)` on a fresh Pair; the model's outcome against KBuddy's."""
    held: dict = {}

    def model():
        pair = Pair(kind)
        held["pair"] = pair
        body(pair)
        return pair.model()

    def expected():
        return held["pair"].expected()
    return Fact(name, source, expected, model)


# --- groups ---------------------------------------------------------------------------

def _form(p: Pair, start: int, order: int, gfp: int, zone_index: int) -> int:
    """Free the frames [start, start + 2^order) one by one (their neighbours are held,
    so they merge into one order-`order` block at start) and allocate that block back
    with the given order: an allocated order-`order` block at start."""
    if order == 0:
        return start
    p.free_run(range(start, start + (1 << order)))
    return p.alloc(gfp, zone_index, order)


def _merge_facts() -> list[Fact]:
    """__free_pages_bulk (2.6.12) at every order 0..10, machine A's DMA zone: a block
    of order k at Y is freed while its buddy X = Y ^ 2^k (the lower or the higher
    neighbour) is a free block of order k (they merge into order k + 1 at min(X, Y),
    and no further: the next buddy is held), only half free (an order k - 1 block:
    page_is_buddy's private == order fails), or allocated (count 1). Order 10 is
    MAX_ORDER - 1: no merge is tried. Expected: KBuddy after the same calls."""
    from ..model.gfp import GFP_DMA
    facts = []
    for k in range(MAX_ORDER):
        for side in ("higher", "lower"):
            def body(p, k=k, side=side):
                base = 1024                       # zone-relative 1024-aligned region
                y = base if side == "higher" or k == 10 else base + (1 << k)
                x = y ^ (1 << k)
                variants = []
                for variant in ("free", "half", "busy"):
                    q = Pair("A") if variant != "free" else p
                    if variant != "free" and (k == 10 or k == 0 and variant == "half"):
                        continue
                    yy = _form(q, y, k, GFP_DMA, 0)
                    if variant == "free" and k < 10:
                        q.free_run(range(x, x + (1 << k)))
                    elif variant == "half" and k:
                        q.free_run(range(x, x + (1 << (k - 1))))
                    q.free(yy, k)
                    if q is not p:
                        variants.append((q.model(), q.expected()))
                p.note([v[0] for v in variants], [v[1] for v in variants])
            facts.append(pair_fact(f"free: order-{k} merge with the {side} buddy "
                                   "(free / half free / held)",
                                   SOURCE + "__free_pages_bulk, page_is_buddy", "A", body))
    return facts


def _cascade_and_edges_facts() -> list[Fact]:
    """__free_pages_bulk chains and edges (2.6.12): freeing the frames of a 1024-frame
    region one by one, the last one merges through every order 0..9 into an order-10
    block (held frame at the low end, then at the high end); freeing every frame of
    the zones' ragged ends stops at bad_range (DMA [2048, 2072): 2064's order-3 buddy
    2072 is Normal's; Normal's 56 frames: idx 48's order-3 buddy idx 56 is HighMem's;
    HighMem's 40: idx 32's buddy is one past the last frame of mem_map). Machine P's
    DMA zone: two order-10 buddies [0, 1024) and [1024, 2048) stay apart (the loop
    stops at MAX_ORDER - 1), through the hot list and a drain."""
    facts = []
    for last in (1024, 2047):
        def body(p, last=last):
            p.free_run(q for q in range(1024, 2048) if q != last)
            before = [z.free_area[o].nr_free for z in p.m.zones[:1] for o in range(MAX_ORDER)]
            p.note(before, [len(lst) for lst in p.k.zones[0].lists])
            p.free(last)
        facts.append(pair_fact(f"free: a chain of merges from order 0 to 10 (last frame {last})",
                               SOURCE + "__free_pages_bulk", "A", body))
    for name, lo, hi in (("DMA", 2048, 2072), ("Normal", 2072, 2128), ("HighMem", 2128, 2168)):
        for how in ("ascending", "descending"):
            def body(p, lo=lo, hi=hi, how=how):
                p.free_run(range(lo, hi) if how == "ascending" else range(hi - 1, lo - 1, -1))
            facts.append(pair_fact(f"free: every frame of {name} [{lo}, {hi}) {how} "
                                   "(no merge past the zone's end)",
                                   SOURCE + "__free_pages_bulk, bad_range", "A", body))

    def top(p):
        p.bulk(range(0, 2048))
        p.drain(0)
    for order in ((0, 10, 11), (10, 0, 11), (0, 2, 10, 3, 11)):
        def body(p, order=order):
            for pfn in order:
                p.free(pfn)
                p.note(m_state(p.m)["zones"][0], p.k.state(p.m.mem_map.nr_pages)["zones"][0])
        facts.append(pair_fact(f"free: frame 0 on the order-0 list next to merging blocks "
                               f"{order} (B)", SOURCE + "__free_pages_bulk; "
                               "include/linux/list.h list_add, list_del", "B", body))
    facts.append(pair_fact("free: two order-10 buddies stay apart (MAX_ORDER - 1)",
                           SOURCE + "__free_pages_bulk, free_hot_cold_page, __drain_pages",
                           "P", top))
    return facts


def _list_helper_facts() -> list[Fact]:
    """The free-list and page-order helpers (2.6.12 include/linux/list.h list_add at
    the head, list_del from anywhere; mm/page_alloc.c set_page_order / rmv_page_order
    touch only the order bit and private; page_is_buddy: PG_private (PG_buddy) set,
    private == order, not PG_reserved, count 0; bad_range: outside the zone's span or
    a frame of another zone), called directly on a 16-frame mem_map."""
    from ..model import page_alloc as pa
    from ..model.mem_map import PG_buddy, PG_highmem, PG_reserved, MemMap

    def lists():
        mm = MemMap(16)
        area = pa.FreeArea()
        out = []
        for pfn in (3, 7, 5):
            pa.list_add(mm, area, pfn)
        out.append((pa.free_list(mm, area), [mm.lru_prev[p] for p in (5, 7, 3)], area.head))
        pa.list_del(mm, area, 7)                     # the middle
        out.append((pa.free_list(mm, area), mm.lru_prev[3], mm.lru_next[7], mm.lru_prev[7]))
        pa.list_add(mm, area, 9)
        pa.list_del(mm, area, 9)                     # the head
        out.append((pa.free_list(mm, area), mm.lru_prev[5], area.head))
        pa.list_del(mm, area, 3)                     # the tail (no next: -1 is no frame)
        out.append((pa.free_list(mm, area), mm.lru_next[5], mm.lru_prev[15]))
        pa.list_del(mm, area, 5)                     # the last one
        out.append((pa.free_list(mm, area), area.head, mm.lru_next[5], mm.lru_prev[5]))
        for pfn in (0, 4, 15):                       # pfn 0 is a frame like any other
            pa.list_add(mm, area, pfn)
        out.append((pa.free_list(mm, area), mm.lru_prev[0], mm.lru_prev[4]))
        pa.list_del(mm, area, 4)
        out.append((pa.free_list(mm, area), mm.lru_prev[0], mm.lru_next[15]))
        pa.list_del(mm, area, 15)
        out.append((pa.free_list(mm, area), mm.lru_prev[0], area.head))
        pa.list_del(mm, area, 0)
        pa.list_add(mm, area, 7)
        pa.list_add(mm, area, 0)                     # [0, 7]
        pa.list_del(mm, area, 7)                     # its prev is frame 0
        out.append((pa.free_list(mm, area), mm.lru_next[0], area.head))
        return out

    def lists_expected():
        return [([5, 7, 3], [-1, 5, 7], 5), ([5, 3], 5, -1, -1), ([5, 3], -1, 5),
                ([5], -1, -1), ([], -1, -1, -1), ([15, 4, 0], 4, 15), ([15, 0], 15, 0),
                ([0], -1, 0), ([0], -1, 0)]

    def orders():
        mm = MemMap(4)
        mm.flags[1] = PG_highmem | PG_reserved
        pa.set_page_order(mm, 1, 3)
        a = (mm.flags[1], mm.private[1])
        pa.set_page_order(mm, 2, 0)
        b = (mm.flags[2], mm.private[2])
        pa.rmv_page_order(mm, 1)
        return [a, b, (mm.flags[1], mm.private[1])]

    combos = [(f, d, c) for f in (0, PG_buddy, PG_buddy | PG_reserved, PG_buddy | PG_highmem,
                                  PG_reserved) for d in (-1, 0, 1) for c in (0, 1, -1)]

    def buddies():
        out = []
        for f, d, c in combos:
            mm = MemMap(4)
            mm.flags[2], mm.private[2], mm.count[2] = f, 2 + d, c
            out.append(pa.page_is_buddy(mm, 2, 2))
        return out

    def ranges():
        mm = MemMap(16)
        mm.zone_id[0:8], mm.zone_id[8:12], mm.zone_id[12:16] = b"\0" * 8, b"\1" * 4, b"\2" * 4
        mm.zone_id[10] = 2                           # a frame of another zone in the span
        mm.zone_id[7] = mm.zone_id[12] = 1           # outside the span, yet zone 1's id
        zone = pa.Zone(1, "Normal", 8, 4, MAX_ORDER)
        return [pa.bad_range(mm, zone, p) for p in (0, 7, 8, 9, 10, 11, 12, 15)]
    return [Fact("list_add at the head, list_del of the middle, head, tail and last",
                 "include/linux/list.h list_add, list_del", lists_expected, lists),
            Fact("set_page_order / rmv_page_order keep the other flags",
                 SOURCE + "set_page_order, rmv_page_order",
                 lambda: [(PG_highmem | PG_reserved | PG_buddy, 3), (PG_reserved | PG_buddy, 0),
                          (PG_highmem | PG_reserved, 0)], orders),
            Fact("page_is_buddy over flags x private x count (45 cases)",
                 SOURCE + "page_is_buddy",
                 lambda: [bool(f & PG_buddy) and not f & PG_reserved and d == 0 and c == 0
                          for f, d, c in combos], buddies),
            Fact("bad_range: below, at, inside, past the zone, another zone's frame",
                 SOURCE + "bad_range",
                 lambda: [True, True, False, False, True, False, True, True], ranges)]


def _pcp_facts() -> list[Fact]:
    """The per-CPU lists (2.6.12 free_hot_cold_page, free_pages_bulk, __drain_pages,
    buffered_rmqueue), machine P (2 CPUs; DMA batch 2: hot low 4 high 12, cold high 4;
    Normal and HighMem batch 1: high 6), from every frame allocated: order-0 frees go
    on the head of the CPU's hot list; a free at count >= high first returns `batch`
    frames from the tail (the oldest) to __free_pages_bulk; a drain empties the hot
    then the cold list of every zone from the tail; a __GFP_COLD allocation refills
    the cold list with `batch` frames at its tail and takes the head. The count and
    list after every call, and the whole state, against KBuddy."""
    from ..model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, __GFP_COLD
    facts = []

    def through_high(p):
        for i, pfn in enumerate(range(100, 130)):         # 30 frees: high at 12, 14, ...
            p.free(pfn)
            p.note(*p.hot(0))
        for pfn in range(8200, 8215):                       # Normal: high 6, batch 1
            p.free(pfn)
            p.note(*p.hot(1))
    facts.append(pair_fact("hot list: 30 DMA and 15 Normal frees through high (drain batch "
                           "from the tail)", SOURCE + "free_hot_cold_page, free_pages_bulk",
                           "P", through_high))

    def two_cpus(p):
        p.free_run([200, 201, 202])
        for pfn in (300, 301, 302, 303, 8240, 8241):
            p.free(pfn, 0, 1)                             # CPU 1
        p.free_run(range(400, 420, 2))
        got = p.alloc(GFP_DMA | __GFP_COLD, 0, 0)          # cold list: refill, take head
        p.note(*p.hot(0, 0, 1))
        p.free(got)
        p.alloc(GFP_DMA | __GFP_COLD, 0, 1)
        p.note(*p.hot(0, 1, 1))
        p.alloc(GFP_KERNEL, 0, 1)                          # Normal is empty: from DMA
        p.drain(0)                                        # hot + cold lists of CPU 0
        p.note(*p.hot(0, 1))
        p.drain(1)
        p.drain(1)                                        # empty lists: nothing changes
    facts.append(pair_fact("two CPUs: hot and cold lists, drain of one CPU then the other",
                           SOURCE + "free_hot_cold_page, buffered_rmqueue, __drain_pages",
                           "P", two_cpus))

    def alloc_after_free(p):
        p.free_run(range(500, 540))                        # 40 frees: drains on the way
        got = [p.alloc(GFP_DMA, 0, 0) for _ in range(20)]  # LIFO off the head, refills
        p.free_run(got[::3])
        n = p.m.mem_map.nr_pages                            # refilled frames are hot ones
        p.note(m_state(p.m)["listed"], p.k.state(n)["listed"])
        p.drain(0)
    facts.append(pair_fact("hot list: allocations after frees take the newest first; refill "
                           "at low", SOURCE + "buffered_rmqueue, rmqueue_bulk, free_hot_cold_page",
                           "P", alloc_after_free))

    def bulk_zones(p):
        pfns = [q for trio in zip(range(600, 640), range(8200, 8240), range(8240, 8280))
                for q in trio]
        for q in pfns[::5]:
            p.get(q)                                      # a second reference: only dropped
        p.bulk(pfns)
        p.bulk(pfns[::5], 1)                              # the last references, on CPU 1
        p.note(*p.hot(2, 1))
    facts.append(pair_fact("free_pages_bulk through the hot lists: three zones interleaved, "
                           "second references, CPU 1", SOURCE + "free_hot_cold_page "
                           "(__free_page on each frame)", "P", bulk_zones))
    return facts


def _drain_empty_facts() -> list[Fact]:
    """drain_local_pages / __drain_pages of CPUs whose lists are empty change nothing
    (2.6.12 free_pages_bulk with an empty list frees none); a CPU number outside
    0..cpus-1 is bad input (ValueError), the state unchanged."""
    from ..model import page_alloc as pa

    def model():
        out = []
        for kind in ("A", "P"):
            m = emptied(kind)
            before = digest(m)
            for cpu in range(m.cpus):
                pa.drain_local_pages(m, cpu)
                pa.__drain_pages(m, cpu)
            out.append(digest(m) == before)
            out.append([outcome(lambda c=c: pa.drain_local_pages(m, c))
                        for c in (-1, m.cpus, True, "0", None)])
            out.append(digest(m) == before)
        return out
    return [Fact("drains of empty lists, and of CPUs that do not exist",
                 SOURCE + "drain_local_pages, __drain_pages",
                 lambda: [True, ["ValueError"] * 5, True] * 2, model)]


def _bulk_facts() -> list[Fact]:
    """free_pages_bulk (machine A, no per-CPU lists) is __free_page on each frame in
    order (spec/buddy.md section 4a): aligned runs of 2^k frames (k = 0..10), a run
    starting at an odd frame, runs crossing DMA's end into Normal and ending at the
    last frame, reversed and interleaved orders, frames with a second reference (they
    only lose it), an empty list. Expected: KBuddy's __free_pages_bulk per frame."""
    runs = [(f"aligned 2^{k} at 1024", list(range(1024, 1024 + (1 << k)))) for k in range(11)]
    runs += [("odd start 1025 + 37", list(range(1025, 1062))),
             ("crossing DMA into Normal 2060..2079", list(range(2060, 2080))),
             ("Normal into HighMem to the last frame", list(range(2100, 2168))),
             ("all of Normal [2072, 2128)", list(range(2072, 2128))),
             ("Normal's index 16..47 [2088, 2120)", list(range(2088, 2120))),
             ("HighMem [2136, 2168) to the last frame", list(range(2136, 2168))),
             ("DMA's ragged end [2048, 2072)", list(range(2048, 2072))),
             ("reversed 64 at 512", list(range(575, 511, -1))),
             ("interleaved 128 at 256", list(range(256, 384, 2)) + list(range(257, 384, 2))),
             ("empty", [])]
    facts = []
    for label, pfns in runs:
        def body(p, pfns=pfns):
            p.bulk(pfns)
        facts.append(pair_fact(f"free_pages_bulk: {label}", SOURCE + "__free_pages_bulk "
                               "(__free_page on each frame)", "A", body))

    def swapped(p):
        # Normal's index 32..39 then 24..31: the second half is not the first's buddy
        # half, so the two order-3 runs merge only through the buddy lists
        p.bulk(list(range(2104, 2112)) + list(range(2096, 2104)))
    facts.append(pair_fact("free_pages_bulk: two order-3 runs of Normal, upper one first",
                           SOURCE + "__free_pages_bulk (__free_page on each frame)", "A",
                           swapped))

    def tail_run(p):
        # a run that reaches the end of the list after a frame with a second reference
        p.get(40)
        p.bulk([40, 1024, 1025])
    facts.append(pair_fact("free_pages_bulk: a shared frame, then a run to the list's end",
                           SOURCE + "put_page_testzero, __free_pages_bulk", "A", tail_run))

    def shared(p):
        run = list(range(1024, 1088))
        for q in run[1::7]:
            p.get(q)
        p.bulk(run)
        p.bulk(run[1::7])
    for n in (1, 3, 5, 13):
        def body(p, n=n):
            p.bulk(range(0, n))
        facts.append(pair_fact(f"free_pages_bulk: {n} frames from pfn 0 (machine B)",
                               SOURCE + "__free_pages_bulk (__free_page on each frame)",
                               "B", body))
    for pfns in ([2, 0], [4, 0, 1, 6], [6, 7, 0, 2], [40, 1024, 1027]):
        def body(p, pfns=pfns):
            p.bulk(pfns)
        facts.append(pair_fact(f"free_pages_bulk: {pfns} (not consecutive; B)",
                               SOURCE + "__free_pages_bulk (__free_page on each frame)",
                               "B", body))
    facts.append(pair_fact("free_pages_bulk: a run with second references, then their last",
                           SOURCE + "put_page_testzero, __free_pages_bulk", "A", shared))
    return facts


def _compound_facts() -> list[Fact]:
    """__GFP_COMP blocks of orders 1..10 (2.6.12 prep_compound_page: every frame
    PG_compound with private = the head, page[1].index = order; get_page / put_page
    on a tail act on the head's count, include/linux/mm.h, mm/swap.c; the last
    put_page calls the NULL page[1].mapping: compound_no_dtor, nothing changed;
    destroy_compound_page clears the marks when the block is freed with its order).
    Wrong orders, a tail frame and corrupted tails are bad_compound, nothing changed."""
    from ..model import page_alloc as pa
    from ..model.gfp import GFP_DMA, __GFP_COMP
    from ..model.mem_map import PG_compound
    facts = []
    for k in range(1, MAX_ORDER):
        def body(p, k=k):
            head = _form(p, 1024, k, GFP_DMA | __GFP_COMP, 0)
            last = head + (1 << k) - 1
            p.note([q for q in range(1016, 2056) if p.m.mem_map.flags[q] & PG_compound],
                   sorted(p.k.compound))
            p.get(last)
            p.note(p.m.mem_map.count[head], 2)
            pa.put_page(p.m, p.page(head + 1))             # back to one reference
            p.k.count[head] -= 1
            before = digest(p.m)
            m = p.m
            rules = [outcome(lambda: pa.put_page(m, m.mem_map + last)),
                     outcome(lambda: pa.__free_pages(m, m.mem_map + head, k - 1)),
                     outcome(lambda: pa.__free_pages(m, m.mem_map + head, 0)),
                     outcome(lambda: pa.__free_pages(m, m.mem_map + (head + 1), 0)),
                     outcome(lambda: pa.__free_pages(m, m.mem_map + last, 0))]
            if k < 10:
                rules.append(outcome(lambda: pa.__free_pages(m, m.mem_map + head, k + 1)))
            orders = [outcome(lambda o=o: pa.__free_pages(m, m.mem_map + head, o))
                      for o in (float(k), None, str(k))]
            p.note((rules, orders, digest(m) == before),
                   (["compound_no_dtor"] + ["bad_compound"] * (len(rules) - 1),
                    ["bad_order"] * 3, True))
            p.free(head, k)
        facts.append(pair_fact(f"compound order {k}: marks, get/put on tails, misuse, free",
                               SOURCE + "prep_compound_page, destroy_compound_page; "
                               "mm/swap.c put_page", "A", body))

    def corrupted():
        out = []
        for how in ("flag", "private", "index", "head"):
            p = Pair("A")
            head = _form(p, 1024, 3, GFP_DMA | __GFP_COMP, 0)
            m = p.m
            if how == "flag":
                m.mem_map.flags[head + 7] &= ~PG_compound
            elif how == "private":
                m.mem_map.private[head + 5] = head + 1
            elif how == "index":
                m.page_index[head + 1] = 2
            else:
                m.mem_map.private[head] = head + 1
            before = digest(m)
            out.append((outcome(lambda: pa.__free_pages(m, m.mem_map + head, 3)),
                        digest(m) == before))
        return out
    def last_frame():
        # a compound block that ends at mem_map's last frame: a page handle with pfn -1
        # is still bad_pfn (pfn_valid), not a frame of that block
        from ..model.gfp import GFP_HIGHUSER
        from ..model.mem_map import Page
        p = Pair("A")
        n = p.m.mem_map.nr_pages
        head = _form(p, n - 8, 3, GFP_HIGHUSER | __GFP_COMP, 2)
        m = p.m
        before = digest(m)
        return ([head - n] + [outcome(lambda q=q, o=o: pa.__free_pages(m, Page(m.mem_map, q), o))
                              for q in (-1, -8, n) for o in (0, 3)], digest(m) == before)
    facts.append(Fact("compound block at the last frame: pfn -1, -8 and nr_pages are bad_pfn",
                      SOURCE + "__free_pages; include/linux/mmzone.h pfn_valid",
                      lambda: ([-8] + ["bad_pfn"] * 6, True), last_frame))
    facts.append(Fact("compound: a tail without PG_compound, with another head, a wrong "
                      "page[1].index, a head pointing elsewhere", SOURCE + "destroy_compound_page (bad_page)",
                      lambda: [("bad_compound", True)] * 4, corrupted))
    return facts


def _find_block_facts() -> list[Fact]:
    """find_block names the block that holds a frame (used for the misuse messages and
    vmalloc's checks): every frame of machine A after frees that leave free blocks of
    several orders and allocated blocks of orders 0..5 (reserved frames: None), and of
    machine P's DMA zone with frames on the per-CPU lists (None too)."""
    from ..model import page_alloc as pa
    from ..model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL

    def mixed(p):
        p.bulk(range(1024, 2048))
        for order in (5, 0, 3, 1, 4, 2):
            p.alloc(GFP_DMA, 0, order)
        p.free_run(range(40, 80))
        p.free_run(range(2080, 2100))
        p.free_run(range(2130, 2168, 3))
        p.alloc(GFP_KERNEL, 1, 2)
        p.alloc(GFP_HIGHUSER, 2, 0)
        n = p.m.mem_map.nr_pages
        p.note([pa.find_block(p.m, q) for q in range(n)], p.k.block_map(n))

    def listed(p):
        p.free_run(range(300, 340))
        p.free_run(range(8210, 8230))
        p.free(8250, 0, 1)
        p.note([pa.find_block(p.m, q) for q in range(200, 8280)],
               p.k.block_map(p.m.mem_map.nr_pages)[200:8280])
    def iomem(p):
        p.free_run(range(2072, 2128))                      # Normal: its end is iomem
        p.free_run(range(2136, 2176))                      # HighMem after the hole
        n = p.m.mem_map.nr_pages
        p.note([pa.find_block(p.m, q) for q in range(2060, n)], p.k.block_map(n)[2060:])
    return [pair_fact("find_block: frames of I/O memory (no zone) are in no block",
                      "mm/page_alloc.c (2.6.12) memmap_init_zone (no zone for iomem)",
                      "I", iomem),
            pair_fact("find_block: every frame of a mixed machine A", "mm/page_alloc.c "
                      "(2.6.12) free lists; the model's block lookup", "A", mixed),
            pair_fact("find_block: frames on the per-CPU lists are in no block",
                      "mm/page_alloc.c (2.6.12) per_cpu_pages", "P", listed)]


def _misuse_facts() -> list[Fact]:
    """Every misuse rule of the free path (spec/buddy.md section 5), each raised before
    anything changes: the whole machine pickles to the same bytes after every call.
    Machine P as booted (frames on the hot lists, free blocks), plus: an order-1 block,
    order-0 frames at zone-relative index 16 of Normal (which starts at 8200, so 16 is
    not an absolute multiple of 16: alignment is zone-relative), a slab page, a kmapped
    highmem frame, a frame left on the cold list by a __GFP_COLD refill (batch 2)."""
    from ..model import highmem as hm, page_alloc as pa, slab
    from ..model.boot import boot
    from ..model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, __GFP_COLD
    from ..model.mem_map import Page

    def model():
        m = boot(**MACHINE_P)
        other = boot(**MACHINE_A)
        one = pa.alloc_pages(m, GFP_KERNEL, 1).pfn
        zeros = {pa.alloc_pages(m, GFP_KERNEL, 0).pfn for _ in range(36)}
        # an order-0 frame at zone-relative index 16 (mod 32) whose next 8 are order-0
        z16 = next(q for q in sorted(zeros) if (q - 8200) % 32 == 16
                   and all(q + i in zeros for i in range(9)))
        zeros = sorted(zeros)
        cache = slab.kmem_cache_create(m, "sweep64", 64, 0, 0)
        obj = slab.kmem_cache_alloc(m, cache, GFP_KERNEL)
        slab_pfn = (obj - m.profile.PAGE_OFFSET) >> 12
        # kmapped twice before: their pkmap slots 0 and 1 are back at count 1
        for _ in range(2):
            other_high = pa.alloc_pages(m, GFP_HIGHUSER, 0)
            hm.kmap(m, other_high)
            hm.kunmap(m, other_high)
        high = pa.alloc_pages(m, GFP_HIGHUSER, 0)
        hm.kmap(m, high)
        cold = pa.alloc_pages(m, GFP_DMA | __GFP_COLD, 0).pfn
        cold_listed = m.zones[0].pageset[0].pcp[1].list[0]
        # CPU 1: a frame on its hot list, one left on its cold list by a refill
        spare, spare2 = [q for q in zeros if q not in range(z16, z16 + 9)
                         and q not in zeros[:2]][:2]
        pa.__free_pages(m, m.mem_map + spare, 0, 1)
        pa.free_pages_bulk(m, [spare2], 1)
        pa.alloc_pages(m, GFP_DMA | __GFP_COLD, 0, 1)
        cold1 = m.zones[0].pageset[1].pcp[1].list[0]
        hot_listed = m.zones[0].pageset[0].pcp[0].list[-1]
        dma = m.zones[0].free_area
        free_order, free_head = next((o, a.head) for o, a in enumerate(dma) if o >= 2
                                     and a.head >= 0)
        reserved = m.mem_map_pfns[0]
        top = m.high_memory
        before = digest(m)
        mm = m.mem_map

        def free(pfn, order):
            return lambda: pa.__free_pages(m, mm + pfn, order)
        calls = {
            # bool and float orders equal to the allocated one are still not ints
            "bad_order": [free(z16, o) for o in (-1, 11, 12, 1.0, "0", None, True, False)]
                         + [free(one, 1.0), free(one, True)],
            "bad_page": [lambda h=h: pa.__free_pages(m, h, 0) for h in (5, None, "page")]
                        + [lambda: pa.put_page(m, 7), lambda: pa.get_page(m, None)],
            "foreign_page": [lambda: pa.__free_pages(m, other.mem_map + 100, 0),
                             lambda: pa.get_page(m, other.mem_map + 100)],
            "bad_pfn": [lambda: pa.__free_pages(m, Page(mm, mm.nr_pages), 0),
                        lambda: pa.__free_pages(m, Page(mm, -1), 0),
                        lambda: pa.get_page(m, Page(mm, mm.nr_pages))],
            "free_reserved": [free(reserved, 0), free(reserved + 1, 0),
                              lambda: pa.put_page(m, mm + reserved)],
            "free_slab_page": [free(slab_pfn, 0)],
            "misaligned_free": [free(one + 1, 1), free(z16 + 1, 1), free(z16 + 2, 2),
                                free(z16, 5), free(z16 + 8, 4)],
            "free_kmapped": [free(high.pfn, 0), lambda: pa.put_page(m, high)],
            "double_free": [free(hot_listed, 0), free(cold_listed, 0), free(free_head, 0),
                            free(free_head + 1, 0), free(free_head, 2),
                            lambda: pa.put_page(m, mm + hot_listed),
                            lambda: pa.free_pages_bulk(m, [zeros[0], zeros[1], zeros[0]])],
            "not_block_head": [free(one + 1, 0)],
            "wrong_order": [free(one, 0), free(z16, 1), free(z16, 2), free(z16, 3),
                            free(z16, 4)],
            "put_page_high_order": [lambda: pa.put_page(m, mm + one)],
            "get_page_unallocated": [lambda q=q: pa.get_page(m, mm + q)
                                     for q in (hot_listed, free_head, free_head + 3,
                                               one + 1, reserved)],
            "bad_address": [lambda a=a: pa.free_pages(m, a, 0)
                            for a in (m.profile.PAGE_OFFSET - 1, top, top + 4096, -1,
                                      m.vmalloc_start, 1.5, "addr")]
                           + [lambda: pa.free_page(m, top)],
        }
        out = {rule: [outcome(c) for c in cs] for rule, cs in calls.items()}
        try:
            pa.__free_pages(m, mm + cold_listed, 0)
            text = ""
        except Exception as exc:                        # the diagnosis names the list
            text = str(exc)
        out["cold message"] = ["cold list" in text and "CPU 0" in text]
        try:
            pa.__free_pages(m, high, 0)
            text = ""
        except Exception as exc:                        # ... and the kmap's count
            text = str(exc)
        out["kmapped message"] = ["pkmap_count 2" in text]
        texts = []
        for q in (spare, cold1, spare2):
            try:
                pa.__free_pages(m, mm + q, 0)
                texts.append("")
            except Exception as exc:
                texts.append(str(exc))
        out["CPU 1 messages"] = ["CPU 1's hot list" in texts[0], "CPU 1's cold list" in texts[1],
                                 "CPU 1's hot list" in texts[2]]
        texts = []                                      # the block a frame is found in
        for q in (free_head + 1, one + 1):
            try:
                pa.__free_pages(m, mm + q, 0)
                texts.append("")
            except Exception as exc:
                texts.append(str(exc))
        out["block messages"] = [f"order {free_order} at pfn {free_head:#x}" in texts[0],
                                 f"order-1 block allocated at pfn {one:#x}" in texts[1]]
        out["null"] = [pa.free_pages(m, 0, 0), pa.free_pages(m, None, 3), pa.free_page(m, 0)]
        return out, digest(m) == before, cold

    def expected():
        want = {rule: [rule] * n for rule, n in (
            ("bad_order", 10), ("bad_page", 5), ("foreign_page", 2), ("bad_pfn", 3),
            ("free_reserved", 3), ("free_slab_page", 1), ("misaligned_free", 5),
            ("free_kmapped", 2), ("double_free", 7), ("not_block_head", 1),
            ("wrong_order", 5), ("put_page_high_order", 1), ("get_page_unallocated", 5),
            ("bad_address", 8))}
        want["cold message"] = want["kmapped message"] = [True]
        want["CPU 1 messages"] = [True, True, True]
        want["block messages"] = [True, True]
        want["null"] = [None, None, None]
        return want, True, held["cold"]
    held: dict = {}

    def run():
        got = model()
        held["cold"] = got[2]
        return got
    return [Fact("misuse of the free path: every rule, the state unchanged",
                 SOURCE + "__free_pages, free_pages, put_page, get_page; spec/buddy.md 5",
                 expected, run)]


def _bulk_misuse_facts() -> list[Fact]:
    """free_pages_bulk checks every frame before anything changes (spec/buddy.md 4a):
    a list with a frame twice, a reserved, a kmapped, a listed frame, or a frame of an
    order-1 block among good ones raises that frame's rule, in both page policies (machine A's
    consecutive-run and one-by-one paths, machine P's hot-list path)."""
    from ..model import highmem as hm, page_alloc as pa, slab

    def model():
        out = []
        for kind in ("A", "P"):
            m = emptied(kind)
            hi = m.zones[2].zone_start_pfn
            hm.kmap(m, m.mem_map + (hi + 1))
            reserved = m.mem_map_pfns[-1]
            # an order-1 block at 100: its frames freed (and drained), then allocated back
            for q in (100, 101):
                pa.__free_pages(m, m.mem_map + q, 0)
            pa.drain_local_pages(m, 0)
            one = pa.alloc_pages(m, 0x01, 1).pfn              # GFP_DMA, order 1
            # a slab page: frames 500..515 given back first, for the cache to grow into
            for q in range(500, 516):
                pa.__free_pages(m, m.mem_map + q, 0)
            pa.drain_local_pages(m, 0)
            cache = slab.kmem_cache_create(m, "sweep-bulk", 64, 0, 0)
            slab_pfn = (slab.kmem_cache_alloc(m, cache, 0) - m.profile.PAGE_OFFSET) >> 12
            pa.__free_pages(m, m.mem_map + 300, 0)
            before = digest(m)
            lists = [[40, 41, 42, 41], [40, 41, 41, 42, 43], [reserved - 1, reserved, reserved + 1],
                     [reserved + 1, reserved + 2, reserved], [hi, hi + 1, hi + 2, hi + 3],
                     [298, 299, 300, 301], [300], [40, 42, 40], [40, one], [one, one + 1],
                     [one + 1, one + 2], [slab_pfn]]
            out.append([outcome(lambda q=q: pa.free_pages_bulk(m, q)) for q in lists])
            out.append(digest(m) == before)
        return out
    # __free_page (order 0) of an order-1 block's head is wrong_order, of its second
    # frame not_block_head
    rules = ["double_free", "double_free", "free_reserved", "free_reserved", "free_kmapped",
             "double_free", "double_free", "double_free", "wrong_order", "wrong_order",
             "not_block_head", "free_slab_page"]
    return [Fact("free_pages_bulk misuse: duplicates, reserved, kmapped, already free",
                 SOURCE + "free_pages_bulk; spec/buddy.md 4a, 5",
                 lambda: [rules, True] * 2, model)]


def _free_pages_addr_facts() -> list[Fact]:
    """free_pages by address at the direct map's edges (2.6.12 mm/page_alloc.c
    free_pages: virt_to_page(addr), the offset within the page dropped): machine P with
    every frame allocated, PAGE_OFFSET (frame 0), an unaligned address in frame 5, the
    last low frame (high_memory - 1) and the order-2 block at 64 by address; then
    put_page of an order-0 frame and __free_page, which free one frame each."""
    def body(p):
        base = p.m.profile.PAGE_OFFSET
        for pfn, addr in ((0, base), (5, base + 5 * 4096 + 7),
                          (8279 - 40, p.m.high_memory - 1)):
            p.pa.free_pages(p.m, addr, 0)
            p.k.put(pfn, 0, True)
        p.free_run(range(64, 68))
        p.drain(0)
        blk = p.alloc(0x01 | 0x10, 0, 2)              # GFP_DMA | __GFP_WAIT: order 2
        p.pa.free_pages(p.m, base + blk * 4096, 2)
        p.k.put(blk, 2, True)
        p.pa.put_page(p.m, p.page(70))
        p.k.put(70, 0, True)
        p.pa.__free_page(p.m, p.page(71))
        p.k.put(71, 0, True)
        p.get(74)                                      # two references: the first
        p.free(74)                                     # __free_pages only drops one
        p.note(p.m.mem_map.count[74], 1)
        p.free(74)
        p.pa.free_page(p.m, base + 72 * 4096)
        p.k.put(72, 0, True)
        # an order-1 block with two references: put_page drops one, then the last
        # put_page would free one frame of two (put_page_high_order, nothing changed)
        p.free_run((80, 81))
        p.drain(0)
        two = p.alloc(0x01 | 0x10, 0, 1)
        p.get(two)
        p.pa.put_page(p.m, p.page(two))
        p.k.count[two] -= 1
        p.note(outcome(lambda: p.pa.put_page(p.m, p.page(two))), "put_page_high_order")
    return [pair_fact("free_pages / free_page / put_page / __free_page by address and page",
                      SOURCE + "free_pages, __free_pages; mm/swap.c put_page", "P", body)]


def _kmap_free_facts() -> list[Fact]:
    """A highmem frame kmapped and kunmapped again (pkmap_count back to 1, the slot not
    yet flushed) may be freed (only pkmap_count > 1 is free_kmapped, spec/buddy.md 5):
    machine A's HighMem frames 2128.. freed after kmap / kunmap, the state as KBuddy's."""
    from ..model import highmem as hm

    def body(p):
        for pfn in (2128, 2129, 2167):
            hm.kmap(p.m, p.page(pfn))
            hm.kunmap(p.m, p.page(pfn))
            p.free(pfn)
    return [pair_fact("free of a kmapped-then-kunmapped highmem frame is allowed",
                      "mm/highmem.c kmap_high, kunmap_high; " + SOURCE + "__free_pages",
                      "A", body)]


FACT_GROUPS = [_merge_facts, _cascade_and_edges_facts, _list_helper_facts, _pcp_facts,
               _drain_empty_facts, _bulk_facts, _compound_facts, _find_block_facts,
               _misuse_facts, _bulk_misuse_facts, _free_pages_addr_facts, _kmap_free_facts]
