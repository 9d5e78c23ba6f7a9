"""Z3 encoding of the buddy allocator: abstract state, operations, invariants.

Hyperkernel style (hv6/spec/kernel): the state is a set of maps over bit-vector pfns
with the real width (20 bits: the 2^20 frames of a 4 GiB i386 machine); every
operation returns `(cond, new_state)`; every catalogue invariant is a list of
conjuncts, each with a one-line English description. Prose: spec/proofs.md.

Abstraction of a concrete machine (`alpha` in spec/z3_concrete.py):

  buddy[p]     PG_buddy on p: p heads a block on a free list (the lists themselves are
               abstracted as "heads with PG_buddy and that order")
  order[p]     page->private (the free block's order)
  alloc[p]     p heads an allocated block (machine.page_owner), of order aorder[p]
  reserved[p]  PG_reserved
  count[p]     page->_count as page_count() (0 when free)
  zone[p]      the zone id in page->flags (255 = NO_ZONE)
  zstart/zend  each zone's pfn span [zone_start_pfn, zone_start_pfn + spanned_pages)
  nr_free      free_area[order].nr_free per (zone, order);  free_pages per zone
  fl, fl_pfn, fl_order, fl_alloc, fl_target
               a block in flight inside a kernel loop, on no list and owned by nobody:
               either being split for an allocation (fl_alloc; expand() is at order
               fl_order and will stop at fl_target) or being freed (the merge loop of
               __free_pages_bulk is at order fl_order). Both loops are sequences of
               transitions -- rmqueue, expand_step*, alloc_finish and free_start,
               merge_step*, free_finish -- so each iteration is proved like any other
               operation, with the invariant as loop invariant. Between kernel calls
               fl is false.

Ranges are compared in W+1 bits so that a zone may end at 2^20 (4 GiB) without
wrapping. Orders and zone ids are 8-bit, counters 32-bit: one sort per quantity, no
int2bv/bv2int (z3 #1481).

Seeded bugs: `Encoding` describes the operations with a few switches; each switch off
reproduces a known way to get the buddy allocator wrong, so tests can watch `prove`
refute the right obligation (tests/test_z3_seeded.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Callable

import z3

NO_ZONE = 255          # model/mem_map.py NO_ZONE
ORD_BITS = 8
ZID_BITS = 8
CNT_BITS = 32


@dataclass(frozen=True)
class Shape:
    """Widths and sizes: 2^pfn_bits frames, orders 0..max_order-1, nr_zones zones."""

    pfn_bits: int = 20          # 4 GiB of 4 KiB frames (i386 without PAE)
    max_order: int = 11         # include/linux/mmzone.h MAX_ORDER (2.6.12)
    nr_zones: int = 3           # DMA, Normal, HighMem


@dataclass(frozen=True)
class Encoding:
    """How the operations behave. Every field True is Linux 2.6.12; False seeds a bug."""

    # expand(): the upper half of each split goes on the free list (else the lower
    # half is listed while the caller keeps it too)
    expand_lists_upper: bool = True
    # expand(): free_area[high].nr_free++ for each listed half
    expand_counts: bool = True
    # prep_new_page(): set_page_count(page, 1) for the caller's reference
    alloc_sets_count: bool = True
    # __free_pages_bulk: the buddy is page_idx ^ (1 << order) (else page_idx + (1 << order))
    buddy_xor: bool = True
    # page_is_buddy(): page->private == order
    merge_checks_order: bool = True
    # bad_range(): the buddy is in the same zone (page_zone(buddy) == zone)
    merge_checks_zone: bool = True
    # __free_pages_bulk: zone->free_pages += 1 << order
    free_counts_pages: bool = True
    # free_all_bootmem_core: a whole bitmap word goes to __free_pages as one order-5
    # block only if it is aligned to its size within its zone (__free_pages_bulk's
    # BUG_ON(page_idx & (order_size - 1)); 2.6.12's zone boundaries guarantee it)
    bootmem_block_aligned: bool = True
    # ... and only if all its frames are in the head's zone (the model's test; 2.6.12's
    # zone boundaries guarantee it)
    bootmem_block_one_zone: bool = True
    # ... and only if every frame of the word is free, i.e. reserved until now (else
    # the head's bit is skipped: an off-by-one in the word test)
    bootmem_block_whole_word: bool = True
    # the tail frames end with _count 0 like the head (else they keep boot's count)
    bootmem_block_tail_counts: bool = True

    @classmethod
    def seeded(cls, bug: str) -> "Encoding":
        return seeded_encoding(cls, SEEDED_BUGS, bug)


def seeded_encoding(cls, switches: dict, bug: str):
    """An encoding (a frozen dataclass of switches, all True for the kernel) with the
    switch of seeded bug `bug` off; `switches` maps bug -> switch or (switch, text)."""
    if bug not in switches:
        raise ValueError(f"unknown seeded bug {bug!r} (known: {', '.join(switches)})")
    switch = switches[bug]
    return replace(cls(), **{switch if isinstance(switch, str) else switch[0]: False})


# bug name -> the Encoding switch it turns off
SEEDED_BUGS = {
    "expand_lists_lower": "expand_lists_upper",
    "expand_nr_free_not_updated": "expand_counts",
    "alloc_no_count": "alloc_sets_count",
    "wrong_buddy_index": "buddy_xor",
    "merge_without_order_check": "merge_checks_order",
    "merge_across_zones": "merge_checks_zone",
    "free_pages_not_updated": "free_counts_pages",
    "bootmem_block_unaligned": "bootmem_block_aligned",
    "bootmem_block_across_zones": "bootmem_block_one_zone",
    "bootmem_block_partial_word": "bootmem_block_whole_word",
    "bootmem_block_tails_keep_count": "bootmem_block_tail_counts",
}


# --- maps --------------------------------------------------------------------------

class Map:
    """A map over a bit-vector domain: a base function and the writes made since.

    Reading is an If chain over the writes, most recent first, then the base (an
    uninterpreted function for a symbolic state, a constant for the initial state, a
    table for a concrete one). Keeping Z3 arrays out of the queries makes them
    QF_UFBV, which Z3 solves by Ackermann reduction and bit-blasting much faster than
    with the array theory's store/select axioms.
    """

    __slots__ = ("base", "writes", "fn")

    def __init__(self, base, writes=(), fn=None):
        self.base = base
        self.writes = tuple(writes)
        self.fn = fn      # the uninterpreted function behind a symbolic map

    def __getitem__(self, q):
        value = self.base(q)
        for index, new in self.writes:
            value = z3.If(q == index, new, value)
        return value

    def store(self, index, value) -> "Map":
        return Map(self.base, self.writes + ((index, value),), self.fn)


def fn_map(name: str, dom, rng) -> Map:
    """A symbolic map. Boolean maps are 1-bit functions so that every function is
    bit-vector valued and the ackermannize_bv tactic can eliminate them all."""
    if rng == z3.BoolSort():
        f = z3.Function(name, dom, z3.BitVecSort(1))
        return Map(lambda q: f(q) == z3.BitVecVal(1, 1), fn=f)
    f = z3.Function(name, dom, rng)
    return Map(lambda q: f(q), fn=f)


def const_map(value) -> Map:
    return Map(lambda q: value)


def table_map(table: dict, default, width: int) -> Map:
    """A concrete map: {int: value}, `default` elsewhere (index width in bits)."""
    def base(q):
        value = default
        for i, v in table.items():
            value = z3.If(q == z3.BitVecVal(i, width), v, value)
        return value
    return Map(base)


# --- sorts and state ---------------------------------------------------------------

class Sorts:
    def __init__(self, shape: Shape):
        self.shape = shape
        self.W = shape.pfn_bits
        self.PFN = z3.BitVecSort(shape.pfn_bits)
        self.RNG = z3.BitVecSort(shape.pfn_bits + 1)     # pfn ranges, may reach 2^W
        self.ORD = z3.BitVecSort(ORD_BITS)
        self.ZID = z3.BitVecSort(ZID_BITS)
        self.CNT = z3.BitVecSort(CNT_BITS)
        self.KEY = z3.BitVecSort(ZID_BITS + ORD_BITS)     # (zone, order) for nr_free


STATE_FIELDS = ("buddy", "order", "alloc", "aorder", "reserved", "count", "zone",
                "zstart", "zend", "nr_pages", "nr_free", "free_pages",
                "fl", "fl_pfn", "fl_order", "fl_alloc", "fl_target")
# fields no operation writes: the machine's layout
STATIC_FIELDS = ("zone", "zstart", "zend", "nr_pages")


@dataclass(frozen=True)
class State:
    buddy: Map
    order: Map
    alloc: Map
    aorder: Map
    reserved: Map
    count: Map
    zone: Map
    zstart: Map
    zend: Map
    nr_pages: z3.BitVecRef
    nr_free: Map
    free_pages: Map
    fl: z3.BoolRef
    fl_pfn: z3.BitVecRef
    fl_order: z3.BitVecRef
    fl_alloc: z3.BoolRef
    fl_target: z3.BitVecRef

    def but(self, **changes) -> "State":
        return replace(self, **changes)

    def items(self):
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


def fresh_state(S: Sorts, prefix: str) -> State:
    """A fully symbolic state; names prefixed so two states can coexist."""
    A = lambda n, d, r: fn_map(f"{prefix}{n}", d, r)   # noqa: E731
    return State(
        buddy=A("buddy", S.PFN, z3.BoolSort()), order=A("order", S.PFN, S.ORD),
        alloc=A("alloc", S.PFN, z3.BoolSort()), aorder=A("aorder", S.PFN, S.ORD),
        reserved=A("reserved", S.PFN, z3.BoolSort()), count=A("count", S.PFN, S.CNT),
        zone=A("zone", S.PFN, S.ZID), zstart=A("zstart", S.ZID, S.RNG),
        zend=A("zend", S.ZID, S.RNG), nr_pages=z3.Const(f"{prefix}nr_pages", S.RNG),
        nr_free=A("nr_free", S.KEY, S.CNT), free_pages=A("free_pages", S.ZID, S.CNT),
        fl=z3.Bool(f"{prefix}fl"), fl_pfn=z3.Const(f"{prefix}fl_pfn", S.PFN),
        fl_order=z3.Const(f"{prefix}fl_order", S.ORD), fl_alloc=z3.Bool(f"{prefix}fl_alloc"),
        fl_target=z3.Const(f"{prefix}fl_target", S.ORD))


# --- arithmetic helpers (all bit-vector; shared by invariants and operations) -------

def ordv(k: int) -> z3.BitVecRef:
    return z3.BitVecVal(k, ORD_BITS)


def cntv(n: int) -> z3.BitVecRef:
    return z3.BitVecVal(n, CNT_BITS)


def zidv(z: int) -> z3.BitVecRef:
    return z3.BitVecVal(z, ZID_BITS)


def ext(S: Sorts, p):
    """A pfn widened to range width."""
    return z3.ZeroExt(1, p)


def size_rng(S: Sorts, o):
    """1 << o frames, in range width (0 when o is absurdly large)."""
    return z3.BitVecVal(1, S.W + 1) << z3.ZeroExt(S.W + 1 - ORD_BITS, o)


def size_pfn(S: Sorts, o):
    return z3.BitVecVal(1, S.W) << z3.ZeroExt(S.W - ORD_BITS, o)


def size_cnt(o):
    return cntv(1) << z3.ZeroExt(CNT_BITS - ORD_BITS, o)


def zbase(S: Sorts, s: State, z):
    """zone_start_pfn of zone z, as a pfn."""
    return z3.Extract(S.W - 1, 0, s.zstart[z])


def key(z, o):
    return z3.Concat(z, o)


def blocksize(S: Sorts, s: State, h):
    """Frames in the block headed by h (in range width)."""
    return size_rng(S, border(s, h))


def isblock(s: State, h):
    return z3.Or(s.buddy[h], s.alloc[h], z3.And(s.fl, s.fl_pfn == h))


def border(s: State, h):
    return z3.If(s.buddy[h], s.order[h], z3.If(s.alloc[h], s.aorder[h], s.fl_order))


def inside(S: Sorts, s: State, h, q):
    """Frame q lies in the block headed by h."""
    return z3.And(isblock(s, h), z3.ULE(h, q), z3.ULT(ext(S, q), ext(S, h) + blocksize(S, s, h)))


def buddy_index(S: Sorts, enc: Encoding, idx, o):
    """__free_pages_bulk: buddy_idx = page_idx ^ (1 << order)."""
    bit = size_pfn(S, o)
    return idx ^ bit if enc.buddy_xor else idx + bit


# --- invariants ------------------------------------------------------------------

@dataclass(frozen=True)
class Conjunct:
    """One conjunct of an invariant. kind "pfn": body(S, s, p) must hold for every
    pfn p (a ForAll over BitVec(20)); "pair": body(S, s, h, q) for every two pfns;
    "count": a counting relation (nr_free, free_pages, the frame total), proved by
    delta equations."""

    invariant: str
    label: str
    english: str
    kind: str
    body: Callable | None = None


def _one_role(S, s, p):
    f = z3.And(s.fl, s.fl_pfn == p)
    return z3.And(z3.Not(z3.And(s.buddy[p], s.alloc[p])), z3.Not(z3.And(s.buddy[p], f)),
                  z3.Not(z3.And(s.alloc[p], f)))


def _disjoint(S, s, h, q):
    return z3.Implies(z3.And(inside(S, s, h, q), h != q), z3.Not(isblock(s, q)))


def _reserved_uncovered(S, s, h, q):
    return z3.Implies(inside(S, s, h, q), z3.Not(s.reserved[q]))


def _in_zone(S, s, p):
    return z3.Implies(isblock(s, p), s.zone[p] != zidv(NO_ZONE))


def _order_valid(S, s, p):
    return z3.Implies(isblock(s, p), z3.ULT(border(s, p), ordv(S.shape.max_order)))


def _aligned(S, s, p):
    base = zbase(S, s, s.zone[p])
    mask = size_pfn(S, border(s, p)) - 1
    return z3.Implies(isblock(s, p), (p - base) & mask == 0)


def _inside_zone(S, s, p):
    z = s.zone[p]
    return z3.Implies(isblock(s, p), z3.And(
        z3.ULE(s.zstart[z], ext(S, p)),
        z3.ULE(ext(S, p) + size_rng(S, border(s, p)), s.zend[z])))


def _no_free_buddy_pair(S, s, p):
    o = s.order[p]
    z = s.zone[p]
    base = zbase(S, s, z)
    b = base + ((p - base) ^ size_pfn(S, o))
    return z3.Implies(
        z3.And(s.buddy[p], z3.ULT(o, ordv(S.shape.max_order - 1))),
        z3.Not(z3.And(z3.ULT(ext(S, b), s.zend[z]), s.zone[b] == z,
                      s.buddy[b], s.order[b] == o)))


def _free_head_state(S, s, p):
    return z3.Implies(s.buddy[p], z3.And(z3.Not(s.reserved[p]), s.count[p] == cntv(0)))


def _alloc_head_state(S, s, p):
    return z3.Implies(s.alloc[p], z3.And(z3.Not(s.reserved[p]), s.count[p] > cntv(0)))


def _referenced(S, s, p):
    return z3.Implies(s.count[p] != cntv(0), z3.Or(s.reserved[p], s.alloc[p]))


CONJUNCTS: list[Conjunct] = [
    Conjunct("no_overlap", "one_role", "a frame heads at most one block (free, allocated "
             "or being freed)", "pfn", _one_role),
    Conjunct("no_overlap", "disjoint", "no block head lies inside another block",
             "pair", _disjoint),
    Conjunct("no_overlap", "reserved_uncovered", "no block contains a reserved frame",
             "pair", _reserved_uncovered),
    Conjunct("buddy_alignment", "in_zone", "every block head is in a zone", "pfn", _in_zone),
    Conjunct("buddy_alignment", "order_valid", "every block has an order below MAX_ORDER",
             "pfn", _order_valid),
    Conjunct("buddy_alignment", "aligned", "every block is aligned to its size from its "
             "zone's start", "pfn", _aligned),
    Conjunct("buddy_alignment", "inside_zone", "every block lies inside its zone's span",
             "pfn", _inside_zone),
    Conjunct("merge_completeness", "no_free_buddy_pair", "no free block has a free buddy "
             "of its order in its zone (below the top order)", "pfn", _no_free_buddy_pair),
    Conjunct("conservation", "roles", "reserved frames + frames in blocks = nr_pages (with "
             "no_overlap: every frame has exactly one role)", "count"),
    Conjunct("conservation", "nr_free", "free_area[k].nr_free = number of free heads of "
             "order k in the zone", "count"),
    Conjunct("conservation", "free_pages", "zone->free_pages = frames in the zone's free "
             "blocks (and the block being freed)", "count"),
    Conjunct("page_state", "free_head", "a free head is unreserved with _count 0", "pfn",
             _free_head_state),
    Conjunct("page_state", "alloc_head", "an allocated head is unreserved with _count > 0",
             "pfn", _alloc_head_state),
    Conjunct("page_state", "referenced", "only reserved frames and allocated heads are "
             "referenced", "pfn", _referenced),
]

INVARIANTS = ["no_overlap", "buddy_alignment", "merge_completeness", "conservation",
              "page_state"]


def conjuncts(name: str | None = None) -> list[Conjunct]:
    return [c for c in CONJUNCTS if name is None or c.invariant == name]


# --- the machine's static layout (an axiom of every state) -------------------------

def layout_pfn(S: Sorts, s: State, p):
    """Zones are disjoint pfn spans, recorded in every frame's zone id."""
    z = s.zone[p]
    own = z3.Implies(z != zidv(NO_ZONE), z3.And(
        z3.ULT(z, zidv(S.shape.nr_zones)),
        z3.ULE(s.zstart[z], ext(S, p)), z3.ULT(ext(S, p), s.zend[z])))
    spans = [z3.Implies(z3.And(z3.ULE(s.zstart[zidv(i)], ext(S, p)),
                               z3.ULT(ext(S, p), s.zend[zidv(i)])), z == zidv(i))
             for i in range(S.shape.nr_zones)]
    return z3.And(own, *spans)


def layout_ground(S: Sorts, s: State):
    top = z3.BitVecVal(1 << S.W, S.W + 1)
    parts = [z3.ULE(s.nr_pages, top)]
    for i in range(S.shape.nr_zones):
        parts += [z3.ULE(s.zstart[zidv(i)], s.zend[zidv(i)]),
                  z3.ULE(s.zend[zidv(i)], s.nr_pages)]
        for j in range(i):       # spans are disjoint (empty spans trivially so)
            parts.append(z3.Or(z3.ULE(s.zend[zidv(i)], s.zstart[zidv(j)]),
                               z3.ULE(s.zend[zidv(j)], s.zstart[zidv(i)]),
                               s.zstart[zidv(i)] == s.zend[zidv(i)],
                               s.zstart[zidv(j)] == s.zend[zidv(j)]))
    return z3.And(*parts)


# --- operations ------------------------------------------------------------------

@dataclass
class Step:
    """An operation applied to a state: its condition, the new state, the pfns whose
    per-frame fields it may change (for the counting deltas and the frame condition),
    and the terms worth instantiating the hypothesis at."""

    op: str
    cond: z3.BoolRef
    post: State
    changed: list
    params: dict = field(default_factory=dict)
    terms: list = field(default_factory=list)


def _set(m: Map, index, value) -> Map:
    return m.store(index, value)


def _add(arr, idx, delta, guard=True):
    if guard is True or z3.is_true(guard):
        return _set(arr, idx, arr[idx] + delta)
    return _set(arr, idx, z3.If(guard, arr[idx] + delta, arr[idx]))


def op_rmqueue(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """__rmqueue: take a free head of order j >= order off its list (list_del,
    rmv_page_order, nr_free--, free_pages -= 1 << order); expand() then splits it.

    Linux 2.6.12 mm/page_alloc.c: __rmqueue. The condition allows *any* free head of a
    large enough order, so the proof covers the kernel's choice (the head of the
    first non-empty list) and every other one.
    """
    h0 = z3.Const("h0", S.PFN)
    order = ordv(case["order"]) if case and type(case.get("order")) is int \
        else z3.Const("order", S.ORD)
    z, j = s.zone[h0], s.order[h0]
    cond = z3.And(z3.Not(s.fl), s.buddy[h0], z3.ULE(order, j),
                  z3.ULT(j, ordv(S.shape.max_order)))
    post = s.but(buddy=_set(s.buddy, h0, False), order=_set(s.order, h0, ordv(0)),
                 nr_free=_add(s.nr_free, key(z, j), cntv(-1)),
                 free_pages=_add(s.free_pages, z, -size_cnt(order)),
                 fl=z3.BoolVal(True), fl_alloc=z3.BoolVal(True), fl_pfn=h0, fl_order=j,
                 fl_target=order)
    return Step("rmqueue", cond, post, [h0], {"h0": h0, "order": order}, [h0])


def op_expand_step(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """One iteration of expand(): high--, the upper half goes at the head of
    free_area[high] with its order set (Linux 2.6.12 mm/page_alloc.c: expand)."""
    h0, high = s.fl_pfn, s.fl_order - 1
    z = s.zone[h0]
    half = h0 + size_pfn(S, high) if enc.expand_lists_upper else h0
    cond = z3.And(s.fl, s.fl_alloc, z3.UGT(s.fl_order, s.fl_target))
    nr_free = _add(s.nr_free, key(z, high), cntv(1)) if enc.expand_counts else s.nr_free
    post = s.but(buddy=_set(s.buddy, half, True), order=_set(s.order, half, high),
                 nr_free=nr_free, fl_order=high)
    return Step("expand_step", cond, post, [half], {"half": half}, [half, h0])


def op_alloc_finish(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """expand() is done: prep_new_page gives the caller one reference and page_owner
    records the order (Linux 2.6.12 mm/page_alloc.c: buffered_rmqueue)."""
    h0 = s.fl_pfn
    cond = z3.And(s.fl, s.fl_alloc, s.fl_order == s.fl_target)
    count = _set(s.count, h0, cntv(1)) if enc.alloc_sets_count else s.count
    post = s.but(count=count, alloc=_set(s.alloc, h0, True),
                 aorder=_set(s.aorder, h0, s.fl_target), fl=z3.BoolVal(False))
    return Step("alloc_finish", cond, post, [h0], {}, [h0])


def op_get_page(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """get_page: one more reference on an allocated block (include/linux/mm.h)."""
    h = z3.Const("h", S.PFN)
    cond = z3.And(z3.Not(s.fl), s.alloc[h], s.count[h] < cntv(0x7FFFFFFF))
    post = s.but(count=_set(s.count, h, s.count[h] + 1))
    return Step("get_page", cond, post, [h], {"h": h}, [h])


def op_put_page(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """__free_pages when others still hold references: put_page_testzero is false."""
    h = z3.Const("h", S.PFN)
    k = z3.Const("k", S.ORD)
    cond = z3.And(z3.Not(s.fl), s.alloc[h], s.aorder[h] == k, s.count[h] > cntv(1))
    post = s.but(count=_set(s.count, h, s.count[h] - 1))
    return Step("put_page", cond, post, [h], {"h": h, "k": k}, [h])


def op_free_start(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """__free_pages dropping the last reference: the block leaves page_owner and enters
    __free_pages_bulk (zone->free_pages += 1 << order) with the merge loop to run."""
    h = z3.Const("h", S.PFN)
    k = ordv(case["k"]) if case and type(case.get("k")) is int else z3.Const("k", S.ORD)
    cond = z3.And(z3.Not(s.fl), s.alloc[h], s.aorder[h] == k, s.count[h] == cntv(1))
    free_pages = s.free_pages
    if enc.free_counts_pages:
        free_pages = _add(free_pages, s.zone[h], size_cnt(k))
    post = s.but(count=_set(s.count, h, cntv(0)), alloc=_set(s.alloc, h, False),
                 aorder=_set(s.aorder, h, ordv(0)), free_pages=free_pages,
                 fl=z3.BoolVal(True), fl_alloc=z3.BoolVal(False), fl_pfn=h, fl_order=k)
    return Step("free_start", cond, post, [h], {"h": h, "k": k}, [h])


def _merge_parts(S: Sorts, enc: Encoding, s: State):
    """The buddy of the block being freed and whether __free_pages_bulk merges it."""
    cur, o = s.fl_pfn, s.fl_order
    z = s.zone[cur]
    base = zbase(S, s, z)
    idx = cur - base
    bidx = buddy_index(S, enc, idx, o)
    b = base + bidx
    checks = [z3.ULT(o, ordv(S.shape.max_order - 1)),
              z3.ULT(ext(S, b), s.zend[z]),                      # bad_range: span
              s.buddy[b], z3.Not(s.reserved[b]), s.count[b] == cntv(0)]   # page_is_buddy
    if enc.merge_checks_zone:
        checks.append(s.zone[b] == z)                            # bad_range: zone
    if enc.merge_checks_order:
        checks.append(s.order[b] == o)                           # page_is_buddy: order
    return z, base, idx, bidx, b, z3.And(*checks)


def op_merge_step(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """One iteration of __free_pages_bulk's loop: unlink the free buddy, nr_free--,
    page_idx &= buddy_idx, order++ (Linux 2.6.12 mm/page_alloc.c)."""
    z, base, idx, bidx, b, merge = _merge_parts(S, enc, s)
    o = s.fl_order
    post = s.but(buddy=_set(s.buddy, b, False), order=_set(s.order, b, ordv(0)),
                 nr_free=_add(s.nr_free, key(z, o), cntv(-1)),
                 fl_pfn=base + (idx & bidx), fl_order=o + 1)
    return Step("merge_step", z3.And(s.fl, z3.Not(s.fl_alloc), merge), post, [b], {"buddy": b},
                [b, s.fl_pfn, base + (idx & bidx)])


def op_free_finish(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """The loop has stopped: set_page_order on the coalesced head, list_add, nr_free++."""
    z, base, idx, bidx, b, merge = _merge_parts(S, enc, s)
    cur, o = s.fl_pfn, s.fl_order
    post = s.but(buddy=_set(s.buddy, cur, True), order=_set(s.order, cur, o),
                 nr_free=_add(s.nr_free, key(z, o), cntv(1)), fl=z3.BoolVal(False))
    return Step("free_finish", z3.And(s.fl, z3.Not(s.fl_alloc), z3.Not(merge)), post, [cur], {"buddy": b},
                [cur, b])


def op_free_bootmem_page(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """free_all_bootmem: a reserved frame of a zone is released as an order-0 free
    (mm/bootmem.c free_all_bootmem_core -> __free_pages(page, 0)); the merge loop
    follows as for any free. With the initial state this is how boot is proved."""
    p = z3.Const("p", S.PFN)
    cond = z3.And(z3.Not(s.fl), s.reserved[p], s.zone[p] != zidv(NO_ZONE))
    free_pages = s.free_pages
    if enc.free_counts_pages:
        free_pages = _add(free_pages, s.zone[p], cntv(1))
    post = s.but(reserved=_set(s.reserved, p, False), count=_set(s.count, p, cntv(0)),
                 free_pages=free_pages, fl=z3.BoolVal(True), fl_alloc=z3.BoolVal(False),
                 fl_pfn=p, fl_order=ordv(0))
    return Step("free_bootmem_page", cond, post, [p], {"p": p}, [p])


BOOTMEM_BLOCK_ORDER = 5     # ffs(BITS_PER_LONG) - 1 with BITS_PER_LONG = 32 (i386)


def op_free_bootmem_block(S: Sorts, enc: Encoding, s: State, case: dict | None = None) -> Step:
    """free_all_bootmem_core, a bitmap word whose 32 frames are all free: each frame
    loses PG_reserved and the head goes to __free_pages(page, 5) as its last reference
    (set_page_refs then put_page_testzero), so __free_pages_ok / __free_pages_bulk
    (free_pages += 32) starts the merge loop with the order-5 block in flight
    (Linux 2.6.12 mm/bootmem.c free_all_bootmem_core). The tail frames end with _count
    0, as the model leaves them. Precondition, as model/boot.py tests it: the 32
    frames are reserved, the head is aligned to 32 from its zone's start and every
    frame is in the head's zone."""
    p = z3.Const("p", S.PFN)
    n = 1 << BOOTMEM_BLOCK_ORDER
    frames = [p] + [p + i for i in range(1, n)]
    z = s.zone[p]
    tested = frames if enc.bootmem_block_whole_word else frames[1:]
    cond = [z3.Not(s.fl), z != zidv(NO_ZONE)] + [s.reserved[f] for f in tested]
    if enc.bootmem_block_aligned:
        cond.append((p - zbase(S, s, z)) & (n - 1) == 0)
    if enc.bootmem_block_one_zone:
        cond += [s.zone[f] == z for f in frames[1:]]
    reserved, count = s.reserved, s.count
    for f in frames:
        reserved = _set(reserved, f, False)
        if enc.bootmem_block_tail_counts or f is p:
            count = _set(count, f, cntv(0))
    free_pages = s.free_pages
    if enc.free_counts_pages:
        free_pages = _add(free_pages, z, cntv(n))
    post = s.but(reserved=reserved, count=count, free_pages=free_pages,
                 fl=z3.BoolVal(True), fl_alloc=z3.BoolVal(False), fl_pfn=p,
                 fl_order=ordv(BOOTMEM_BLOCK_ORDER))
    return Step("free_bootmem_block", z3.And(*cond), post, frames, {"p": p}, [p])


def cases(shape: Shape, op: str) -> list[dict]:
    """Concrete values of an operation's order parameters, one query each.

    Fixing the orders turns every shift into a constant, which is what lets the
    bit-vector solver finish in well under a second; the pfns stay fully symbolic, so
    each case is still a proof over all 2^20 frames. The cases cover every value: for
    the steps of the merge loop "rest" is the block being freed with an order of
    MAX_ORDER or more (excluded by buddy_alignment, but proved, not assumed).
    """
    top = shape.max_order
    if op in ("expand_step", "merge_step", "free_finish"):
        return [{"o": o} for o in range(top)] + [{"o": "rest"}]
    return [{}]


OPERATIONS: dict[str, Callable[..., Step]] = {
    "rmqueue": op_rmqueue,
    "expand_step": op_expand_step,
    "alloc_finish": op_alloc_finish,
    "get_page": op_get_page,
    "put_page": op_put_page,
    "free_start": op_free_start,
    "merge_step": op_merge_step,
    "free_finish": op_free_finish,
    "free_bootmem_page": op_free_bootmem_page,
    "free_bootmem_block": op_free_bootmem_block,
}


def initial_state(S: Sorts, s: State) -> State:
    """memmap_init_zone: every frame Reserved with _count 1, no block, empty lists.
    The layout (zone, zstart, zend, nr_pages) stays symbolic."""
    return s.but(buddy=const_map(z3.BoolVal(False)), order=const_map(ordv(0)),
                 alloc=const_map(z3.BoolVal(False)), aorder=const_map(ordv(0)),
                 reserved=const_map(z3.BoolVal(True)), count=const_map(cntv(1)),
                 nr_free=const_map(cntv(0)), free_pages=const_map(cntv(0)),
                 fl=z3.BoolVal(False))


# --- counting ---------------------------------------------------------------------

def head_weight(S: Sorts, s: State, p, zz, kk):
    """(1 if p is a free head of order kk in zone zz, frames it adds to zone zz)."""
    is_k = z3.And(s.buddy[p], s.zone[p] == zz, s.order[p] == kk)
    frames = z3.If(z3.And(s.buddy[p], s.zone[p] == zz), size_cnt(s.order[p]), cntv(0))
    return z3.If(is_k, cntv(1), cntv(0)), frames


def role_frames(S: Sorts, s: State, p):
    """Frames p accounts for: its block(s) if it heads any, plus itself if reserved."""
    return (z3.If(s.buddy[p], size_cnt(s.order[p]), cntv(0))
            + z3.If(s.alloc[p], size_cnt(s.aorder[p]), cntv(0))
            + z3.If(s.reserved[p], cntv(1), cntv(0)))


def inflight_frames(S: Sorts, s: State, zz=None):
    """Frames of the block in flight: all of them for the frame total (zz None); for
    zone->free_pages, those counted free: the whole block while it is being freed
    (__free_pages_bulk adds 1 << order first), and while it is being split the part
    expand() has still to hand back (__rmqueue subtracted 1 << order up front)."""
    if zz is None:
        return z3.If(s.fl, size_cnt(s.fl_order), cntv(0))
    free = z3.If(s.fl_alloc, size_cnt(s.fl_order) - size_cnt(s.fl_target),
                 size_cnt(s.fl_order))
    return z3.If(z3.And(s.fl, s.zone[s.fl_pfn] == zz), free, cntv(0))


def count_bounded(S: Sorts, s: State, frames: int):
    """The counting conjuncts as state formulas over pfns 0..frames-1 (for concrete
    states: the agreement tests; a proof uses delta equations instead)."""
    nr, fp = [], []
    roles = inflight_frames(S, s)
    for q in range(frames):
        roles = roles + role_frames(S, s, z3.BitVecVal(q, S.W))
    for zi in range(S.shape.nr_zones):
        zz = zidv(zi)
        total = inflight_frames(S, s, zz)
        per_k = [cntv(0)] * S.shape.max_order
        for q in range(frames):
            # head_weight(S, s, q, zz, k) for every k, with q's entries read once
            qv = z3.BitVecVal(q, S.W)
            order = s.order[qv]
            head = z3.And(s.buddy[qv], s.zone[qv] == zz)
            for ki in range(S.shape.max_order):
                per_k[ki] = per_k[ki] + z3.If(z3.And(head, order == ordv(ki)), cntv(1),
                                              cntv(0))
            total = total + z3.If(head, size_cnt(order), cntv(0))
        for ki in range(S.shape.max_order):
            nr.append(s.nr_free[key(zz, ordv(ki))] == per_k[ki])
        fp.append(s.free_pages[zz] == total)
    return {"nr_free": z3.And(*nr), "free_pages": z3.And(*fp),
            "roles": z3.Extract(S.W, 0, roles) == s.nr_pages}
