"""Z3 encoding of vmalloc, the kernel page tables and the permanent kmaps.

The same style as spec/z3_buddy.py (Hyperkernel hv6/spec/kernel): the state is a set
of maps over bit-vectors of the real widths, every operation returns a `Step`
(condition, new state), every catalogue invariant is a list of conjuncts with a
one-line English description. Prose, scope and what is not proved:
spec/proofs_vmalloc.md.

Abstract state (`alpha` below builds it from a running machine):

  vstart, vend, pkbase  VMALLOC_START, VMALLOC_END and PKMAP_BASE as virtual page
                   numbers (symbolic, constrained by the layout axiom)
  pte_p[v], pte_pfn[v]
                   the kernel pte of virtual page v (BitVec(20): the 2^20 pages of the
                   32-bit address space): present bit and frame. A page whose pgd
                   entry holds no pte table (the direct map's large pages, unused
                   pgd entries) reads "not present".
  live[a], astart[a], anp[a], anr[a]
                   vm areas by id a (BitVec(32): the address of the area's
                   vm_struct, which is what identifies an area in the kernel): live,
                   first page, pages it maps (its size is anp + 1 pages: the guard
                   page), pages mapped so far (anp between kernel calls)
  vowned[v], vown[v]
                   the area whose range (guard page included) holds v: the vmlist
                   walk of find_vm_area as a map, so that "which area" needs no
                   existential quantifier
  fown[p], farea[p], fidx[p]
                   frame p is page fidx[p] of area farea[p] (area->pages[i] read
                   backwards; the model's vmalloc_owner)
  ffree[p], falloc[p], fsingle[p]
                   the buddy allocator's view of frame p: in a free block, in an
                   allocated block, an allocated single frame with a reference
                   (page_owner order 0 and page_count >= 1). The allocator's own
                   proofs are spec/z3_buddy.py's; here only how vmalloc and the
                   other users move frames between these states matters.
  fhigh[p]         PG_highmem (static)
  busy, busy_area, tearing
                   a vmalloc being built (tearing false) or torn down (tearing
                   true) inside a kernel call: the loops of __vmalloc and __vunmap
                   run as steps, one page each, like the buddy merge loop
  pk_count[i]      pkmap_count[i] for the LAST_PKMAP = 1024 slots (BitVec(10)),
                   signed 32-bit; slot i's pte is pte[pkbase + i]
  ht_p[p], ht_idx[p]
                   page_address_htable: highmem frame p is mapped at pkmap slot
                   ht_idx[p]

Seeded bugs: `Encoding` switches, each False reproduces a way to get these layers
wrong (tests/test_z3_vmalloc.py watches the prover refute the right obligation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Callable

import z3

from .z3_buddy import seeded_encoding

VPN_BITS = 20          # 32-bit virtual addresses, 4 KiB pages
PFN_BITS = 20          # 4 GiB of frames (i386 without PAE)
AID_BITS = 32          # an area is named by its vm_struct's address
SLOT_BITS = 10         # LAST_PKMAP 1024 (include/asm-i386/highmem.h, non-PAE)
CNT_BITS = 32          # pkmap_count is an int
LAST_PKMAP = 1 << SLOT_BITS
COUNT_MAX = 0x7FFFFFFF


@dataclass(frozen=True)
class Encoding:
    """How the operations behave. Every field True is Linux 2.6.12; False seeds a bug."""

    # __get_vm_area: size += PAGE_SIZE, the guard page is part of the area's range
    guard_page: bool = True
    # __get_vm_area: the area must end by VMALLOC_END wherever it is placed. 2.6.12
    # checks this only inside its vmlist walk, so an area after the last one is not
    # checked: False is the kernel's behaviour, which the spec rejects
    # (spec/vmalloc.md; the model's check_end=False)
    check_end: bool = True
    # map_vm_area: page i goes at addr + i * PAGE_SIZE (else at i + 1)
    map_at_index: bool = True
    # unmap_vm_area: every pte of the area is cleared before the frames go back
    unmap_clears_pte: bool = True
    # __vunmap: the frame stops being the area's page when it is freed
    unmap_clears_owner: bool = True
    # a frame is freed (by vfree or anyone else) only once nobody holds a kmap of it.
    # Neither the kernel nor the model checks this; it is the callers' duty
    free_needs_kunmap: bool = True
    # flush_all_zero_pkmaps: set_page_address(page, NULL) for every flushed slot
    flush_clears_htable: bool = True
    # map_new_virtual: only a slot with count 0 is taken (1 waits for the next flush)
    kmap_needs_flushed_slot: bool = True

    @classmethod
    def seeded(cls, bug: str) -> "Encoding":
        return seeded_encoding(cls, SEEDED_BUGS, bug)


# bug name -> (the Encoding switch it turns off, what goes wrong)
SEEDED_BUGS = {
    "no_guard_page": ("guard_page", "get_vm_area reserves no guard page after the area"),
    "vmalloc_end_unchecked": ("check_end", "2.6.12's __get_vm_area: an area placed "
                              "after the last one is not checked against VMALLOC_END"),
    "map_wrong_index": ("map_at_index", "map_vm_area writes page i's pte at index i + 1"),
    "unmap_leaves_pte": ("unmap_clears_pte", "vfree frees the frames but leaves their "
                         "ptes present"),
    "unmap_keeps_owner": ("unmap_clears_owner", "vfree frees a frame but mem_map still "
                          "records it as the area's page"),
    "free_kmapped_page": ("free_needs_kunmap", "a frame still kmapped by someone is "
                          "freed (the model's vfree and __free_page allow it)"),
    "flush_keeps_htable": ("flush_clears_htable", "flush_all_zero_pkmaps clears the ptes "
                           "but leaves the page_address_htable entries"),
    "kmap_reuses_unflushed_slot": ("kmap_needs_flushed_slot", "map_new_virtual takes a "
                                   "slot whose count is 1 without flushing it"),
}


# --- maps --------------------------------------------------------------------------

class Map:
    """A map over a bit-vector domain: a base and the updates made since.

    An update is a function (index, old value) -> new value, so a whole-range write
    (get_vm_area claiming its pages, flush_all_zero_pkmaps clearing every slot with
    count 1) is one update, read as an If over the index -- no arrays, no lambdas in
    the queries, which stay quantifier-free.
    """

    __slots__ = ("base", "updates")

    def __init__(self, base, updates=()):
        self.base = base
        self.updates = tuple(updates)

    def __getitem__(self, q):
        value = self.base(q)
        for update in self.updates:
            value = update(q, value)
        return value

    def update(self, f) -> "Map":
        return Map(self.base, self.updates + (f,))

    def store(self, index, value) -> "Map":
        return self.update(lambda q, old: z3.If(q == index, value, old))


def fn_map(name: str, dom, rng) -> Map:
    f = z3.Function(name, dom, rng)
    return Map(lambda q: f(q))


def const_map(value) -> Map:
    return Map(lambda q: value)


# --- sorts and state ---------------------------------------------------------------

VPN = z3.BitVecSort(VPN_BITS)
RNG = z3.BitVecSort(VPN_BITS + 1)      # page ranges that may end at 2^20
PFN = z3.BitVecSort(PFN_BITS)
AID = z3.BitVecSort(AID_BITS)
SLOT = z3.BitVecSort(SLOT_BITS)
CNT = z3.BitVecSort(CNT_BITS)
B = z3.BoolSort()
SORTS = {"vpn": VPN, "pfn": PFN, "aid": AID, "slot": SLOT}


@dataclass(frozen=True)
class State:
    vstart: z3.BitVecRef
    vend: z3.BitVecRef
    pkbase: z3.BitVecRef
    pte_p: Map
    pte_pfn: Map
    live: Map
    astart: Map
    anp: Map
    anr: Map
    vowned: Map
    vown: Map
    fown: Map
    farea: Map
    fidx: Map
    ffree: Map
    falloc: Map
    fsingle: Map
    fhigh: Map
    busy: z3.BoolRef
    busy_area: z3.BitVecRef
    tearing: z3.BoolRef
    pk_count: Map
    ht_p: Map
    ht_idx: Map

    def but(self, **changes) -> "State":
        return replace(self, **changes)

    def items(self):
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


# map name -> (domain, range)
MAPS = {"pte_p": (VPN, B), "pte_pfn": (VPN, PFN), "live": (AID, B), "astart": (AID, VPN),
        "anp": (AID, VPN), "anr": (AID, VPN), "vowned": (VPN, B), "vown": (VPN, AID),
        "fown": (PFN, B), "farea": (PFN, AID), "fidx": (PFN, VPN), "ffree": (PFN, B),
        "falloc": (PFN, B), "fsingle": (PFN, B), "fhigh": (PFN, B), "pk_count": (SLOT, CNT),
        "ht_p": (PFN, B), "ht_idx": (PFN, SLOT)}


def fresh_state(prefix: str) -> State:
    """A fully symbolic state; names prefixed so two states can coexist."""
    maps = {name: fn_map(prefix + name, d, r) for name, (d, r) in MAPS.items()}
    return State(vstart=z3.Const(prefix + "vstart", VPN), vend=z3.Const(prefix + "vend", VPN),
                 pkbase=z3.Const(prefix + "pkbase", VPN), busy=z3.Bool(prefix + "busy"),
                 busy_area=z3.Const(prefix + "busy_area", AID),
                 tearing=z3.Bool(prefix + "tearing"), **maps)


def initial_state(s: State) -> State:
    """After paging_init/vmalloc_init/kmap_init: no area, no pte, no kmap, no vmalloc
    frame, and every frame still reserved (neither free nor allocated: memmap_init_zone;
    boot's frees are the bootmem_free row). The layout stays symbolic."""
    F = z3.BoolVal(False)
    return s.but(pte_p=const_map(F), live=const_map(F), vowned=const_map(F),
                 fown=const_map(F), ffree=const_map(F), falloc=const_map(F),
                 fsingle=const_map(F), busy=F, tearing=F,
                 pk_count=const_map(z3.BitVecVal(0, CNT_BITS)), ht_p=const_map(F))


# --- helpers -----------------------------------------------------------------------

def rng(v):
    return z3.ZeroExt(1, v)


def vpnv(n: int):
    return z3.BitVecVal(n, VPN_BITS)


def cntv(n: int):
    return z3.BitVecVal(n, CNT_BITS)


def pk_vpn(s: State, i):
    """The virtual page of pkmap slot i: PKMAP_ADDR(i) >> PAGE_SHIFT."""
    return s.pkbase + z3.ZeroExt(VPN_BITS - SLOT_BITS, i)


def in_pkmap(s: State, v):
    return z3.And(z3.ULE(s.pkbase, v), z3.ULT(rng(v), rng(s.pkbase) + LAST_PKMAP))


def pk_slot(s: State, v):
    return z3.Extract(SLOT_BITS - 1, 0, v - s.pkbase)


def area_end(s: State, a):
    """One past the area's last page, guard page included (21-bit: no wrap)."""
    return rng(s.astart[a]) + rng(s.anp[a]) + 1


def in_area(s: State, a, v):
    """Page v lies in live area a's range, guard page included."""
    return z3.And(s.live[a], z3.ULE(s.astart[a], v), z3.ULT(rng(v), area_end(s, a)))


def index_of(s: State, v):
    """v's page index in the area that owns it."""
    return v - s.astart[s.vown[v]]


def is_mapped_page(s: State, v):
    """v is a page of its area that has been mapped (index below anr)."""
    return z3.And(s.vowned[v], z3.ULT(index_of(s, v), s.anr[s.vown[v]]))


def vm_pte(s: State, v):
    """A present pte outside the pkmap area (vmalloc's ptes)."""
    return z3.And(s.pte_p[v], z3.Not(in_pkmap(s, v)))


def kmap_users(s: State, p):
    """Frame p is kmapped with users (its slot count is above 1)."""
    return z3.And(s.ht_p[p], s.pk_count[s.ht_idx[p]] > cntv(1))


# --- invariants ------------------------------------------------------------------

@dataclass(frozen=True)
class Conjunct:
    """One conjunct: body(s, *args) must hold for every value of the quantified
    variables, whose sorts `over` names ("vpn", "pfn", "aid", "slot"); no variable
    for a ground conjunct."""

    invariant: str
    label: str
    english: str
    over: tuple
    body: Callable


def _area_in_range(s, a):
    return z3.Implies(s.live[a], z3.And(
        z3.ULE(s.vstart, s.astart[a]), z3.ULE(area_end(s, a), rng(s.vend)),
        s.anp[a] != vpnv(0)))


def _area_filled(s, a):
    return z3.Implies(s.live[a], z3.And(
        z3.ULE(s.anr[a], s.anp[a]),
        z3.Or(s.anr[a] == s.anp[a], z3.And(s.busy, s.busy_area == a))))


def _range_owned(s, a, v):
    return z3.Implies(in_area(s, a, v), z3.And(s.vowned[v], s.vown[v] == a))


def _owner_live(s, v):
    return z3.Implies(s.vowned[v], in_area(s, s.vown[v], v))


def _busy_live(s):
    return z3.Implies(s.busy, s.live[s.busy_area])


def _pte_in_area(s, v):
    return z3.Implies(vm_pte(s, v), is_mapped_page(s, v))


def _pte_frame(s, v):
    p = s.pte_pfn[v]
    return z3.Implies(vm_pte(s, v), z3.And(s.fown[p], s.farea[p] == s.vown[v],
                                           s.fidx[p] == index_of(s, v), s.fsingle[p]))


def _area_mapped(s, v):
    return z3.Implies(is_mapped_page(s, v), s.pte_p[v])


def _frame_in_area(s, p):
    a = s.farea[p]
    v = s.astart[a] + s.fidx[p]
    return z3.Implies(s.fown[p], z3.And(s.live[a], z3.ULT(s.fidx[p], s.anr[a]),
                                        s.pte_p[v], s.pte_pfn[v] == p))


def _page_recorded(s, v):
    p = s.pte_pfn[v]
    return z3.Implies(is_mapped_page(s, v), z3.And(s.fown[p], s.farea[p] == s.vown[v],
                                                   s.fidx[p] == index_of(s, v)))


def _owned_single(s, p):
    return z3.Implies(s.fown[p], s.fsingle[p])


def _frame_roles(s, p):
    return z3.And(z3.Not(z3.And(s.ffree[p], s.falloc[p])),
                  z3.Implies(s.fsingle[p], s.falloc[p]))


def _owned_not_free(s, p):
    return z3.Implies(s.fown[p], z3.Not(s.ffree[p]))


def _distinct_frames(s, v, w):
    return z3.Implies(z3.And(vm_pte(s, v), vm_pte(s, w), v != w),
                      s.pte_pfn[v] != s.pte_pfn[w])


def _count_sign(s, i):
    return s.pk_count[i] >= cntv(0)


def _slot_pte(s, i):
    return (s.pk_count[i] == cntv(0)) == z3.Not(s.pte_p[pk_vpn(s, i)])


def _slot_page(s, i):
    p = s.pte_pfn[pk_vpn(s, i)]
    return z3.Implies(s.pk_count[i] >= cntv(1),
                      z3.And(s.fhigh[p], s.ht_p[p], s.ht_idx[p] == i))


def _slot_users(s, i):
    return z3.Implies(s.pk_count[i] > cntv(1), s.falloc[s.pte_pfn[pk_vpn(s, i)]])


def _htable_slot(s, p):
    i = s.ht_idx[p]
    v = pk_vpn(s, i)
    return z3.Implies(s.ht_p[p], z3.And(s.pk_count[i] >= cntv(1), s.pte_p[v],
                                        s.pte_pfn[v] == p))


CONJUNCTS: list[Conjunct] = [
    Conjunct("page_table_consistency", "pte_in_area", "a present pte outside the pkmap "
             "area maps a page of a live area below the pages it has mapped: none in a "
             "hole, a guard page or outside [VMALLOC_START, VMALLOC_END)", ("vpn",),
             _pte_in_area),
    Conjunct("page_table_consistency", "pte_frame", "a present vmalloc pte maps the frame "
             "mem_map records as that area's page at that index, an allocated single "
             "frame", ("vpn",), _pte_frame),
    Conjunct("page_table_consistency", "area_mapped", "every mapped page of a live area "
             "has its pte present", ("vpn",), _area_mapped),
    Conjunct("vm_area_bounds", "in_range", "a live area has at least one page and lies, "
             "guard page included, inside [VMALLOC_START, VMALLOC_END)", ("aid",),
             _area_in_range),
    Conjunct("vm_area_bounds", "filled", "a live area has mapped at most its pages, and "
             "all of them unless it is being built or freed", ("aid",), _area_filled),
    Conjunct("vm_area_bounds", "range_owned", "every page of a live area's range, guard "
             "page included, is owned by that area (so areas are disjoint)",
             ("aid", "vpn"), _range_owned),
    Conjunct("vm_area_bounds", "owner_live", "a page owned by an area lies in that live "
             "area's range", ("vpn",), _owner_live),
    Conjunct("vm_area_bounds", "busy_live", "the area being built or freed is live", (),
             _busy_live),
    Conjunct("no_overlap", "frame_roles", "no frame is both free and allocated; an "
             "allocated single frame is allocated", ("pfn",), _frame_roles),
    Conjunct("no_overlap", "owned_not_free", "a vmalloc frame is not free", ("pfn",),
             _owned_not_free),
    Conjunct("no_overlap", "distinct_frames", "two vmalloc ptes never map the same frame",
             ("vpn", "vpn"), _distinct_frames),
    Conjunct("conservation", "frame_in_area", "every vmalloc frame is a mapped page of "
             "its live area, at its recorded index (owned frames and area pages are in "
             "bijection)", ("pfn",), _frame_in_area),
    Conjunct("conservation", "page_recorded", "every mapped page of a live area is a "
             "frame mem_map records as that area's page at that index", ("vpn",),
             _page_recorded),
    Conjunct("conservation", "owned_single", "every vmalloc frame is an allocated single "
             "frame", ("pfn",), _owned_single),
    Conjunct("pkmap_consistency", "count_sign", "no pkmap_count is negative", ("slot",),
             _count_sign),
    Conjunct("pkmap_consistency", "slot_pte", "a slot's count is 0 exactly when its pte "
             "is clear", ("slot",), _slot_pte),
    Conjunct("pkmap_consistency", "slot_page", "a used slot maps a highmem page whose "
             "page_address_htable entry is that slot", ("slot",), _slot_page),
    Conjunct("pkmap_consistency", "slot_users", "a slot with users maps an allocated "
             "page", ("slot",), _slot_users),
    Conjunct("pkmap_consistency", "htable_slot", "every page_address_htable entry is a "
             "used slot whose pte maps that page", ("pfn",), _htable_slot),
]

INVARIANTS = ["page_table_consistency", "vm_area_bounds", "pkmap_consistency",
              "no_overlap", "conservation"]


def conjuncts(name: str | None = None) -> list[Conjunct]:
    return [c for c in CONJUNCTS if name is None or c.invariant == name]


def layout(s: State):
    """The virtual layout (include/asm-i386/pgtable.h, highmem.h): VMALLOC_START <=
    VMALLOC_END <= PKMAP_BASE, and the LAST_PKMAP pkmap pages end by 4 GiB."""
    return z3.And(z3.ULE(s.vstart, s.vend), z3.ULE(s.vend, s.pkbase),
                  z3.ULE(rng(s.pkbase) + LAST_PKMAP, z3.BitVecVal(1 << VPN_BITS, VPN_BITS + 1)))


# --- operations ------------------------------------------------------------------

@dataclass
class Step:
    """An operation on a state: its condition, the new state, its parameters, the
    terms (by sort) worth instantiating the hypothesis at, and any universally
    quantified part of the condition as (sort, body) -- instantiated like the
    hypothesis (sound: it is an antecedent)."""

    op: str
    cond: z3.BoolRef
    post: State
    params: dict = field(default_factory=dict)
    terms: dict = field(default_factory=dict)
    forall: list = field(default_factory=list)


def op_get_vm_area(enc: Encoding, s: State) -> Step:
    """__get_vm_area: a new area of npages pages plus the guard page in a hole of
    [VMALLOC_START, VMALLOC_END), inserted into vmlist.

    Linux 2.6.12 mm/vmalloc.c: __get_vm_area. The condition allows *any* hole, so
    the first fit of the kernel's vmlist walk is covered; the descriptor is a fresh
    kmalloc object (an id no live area has)."""
    a, start, np = z3.Const("a", AID), z3.Const("start", VPN), z3.Const("npages", VPN)
    size = rng(np) + (1 if enc.guard_page else 0)
    end = rng(start) + size

    def claimed(v):
        return z3.And(z3.ULE(start, v), z3.ULT(rng(v), end))

    cond = z3.And(z3.Not(s.busy), z3.Not(s.live[a]), np != vpnv(0),
                  z3.ULE(s.vstart, start),
                  z3.ULE(end, rng(s.vend)) if enc.check_end else
                  z3.And(z3.ULT(start, s.vend),
                         z3.ULE(end, z3.BitVecVal(1 << VPN_BITS, VPN_BITS + 1))))
    post = s.but(live=s.live.store(a, z3.BoolVal(True)), astart=s.astart.store(a, start),
                 anp=s.anp.store(a, np), anr=s.anr.store(a, vpnv(0)),
                 vowned=s.vowned.update(lambda q, old: z3.Or(claimed(q), old)),
                 vown=s.vown.update(lambda q, old: z3.If(claimed(q), a, old)),
                 busy=z3.BoolVal(True), busy_area=a, tearing=z3.BoolVal(False))
    hole = ("vpn", lambda v: z3.Implies(claimed(v), z3.Not(s.vowned[v])))
    return Step("get_vm_area", cond, post, {"a": a, "start": start, "npages": np},
                {"aid": [a], "vpn": [start, z3.Extract(VPN_BITS - 1, 0, end - 1)]}, [hole])


def op_map_step(enc: Encoding, s: State) -> Step:
    """One page of __vmalloc's loop: alloc_page takes a free frame, recorded as page k
    of the area, and map_vm_area writes its pte at addr + k pages.

    Linux 2.6.12 mm/vmalloc.c: __vmalloc (alloc_page per page), map_vm_area /
    map_area_pte (set_pte(pte, mk_pte(page, prot)))."""
    p = z3.Const("p", PFN)
    a = s.busy_area
    k = s.anr[a]
    v = s.astart[a] + k + (0 if enc.map_at_index else 1)
    T = z3.BoolVal(True)
    cond = z3.And(s.busy, z3.Not(s.tearing), z3.ULT(k, s.anp[a]), s.ffree[p])
    post = s.but(pte_p=s.pte_p.store(v, T), pte_pfn=s.pte_pfn.store(v, p),
                 ffree=s.ffree.store(p, z3.BoolVal(False)), falloc=s.falloc.store(p, T),
                 fsingle=s.fsingle.store(p, T), fown=s.fown.store(p, T),
                 farea=s.farea.store(p, a), fidx=s.fidx.store(p, k), anr=s.anr.store(a, k + 1))
    return Step("map_step", cond, post, {"p": p, "vpn": v},
                {"pfn": [p], "vpn": [v, s.astart[a] + k], "aid": [a]})


def op_map_finish(enc: Encoding, s: State) -> Step:
    """__vmalloc returns: every page is mapped (Linux 2.6.12 mm/vmalloc.c: __vmalloc)."""
    a = s.busy_area
    cond = z3.And(s.busy, z3.Not(s.tearing), s.anr[a] == s.anp[a])
    return Step("map_finish", cond, s.but(busy=z3.BoolVal(False)), {}, {"aid": [a]})


def op_vmalloc_fail(enc: Encoding, s: State) -> Step:
    """alloc_page (or pte_alloc_kernel in map_vm_area) returned NULL: __vmalloc turns
    to giving back what it took (Linux 2.6.12 mm/vmalloc.c: __vmalloc's fail path,
    area->nr_pages = i; vfree(area->addr))."""
    a = s.busy_area
    cond = z3.And(s.busy, z3.Not(s.tearing))
    return Step("vmalloc_fail", cond, s.but(tearing=z3.BoolVal(True)), {}, {"aid": [a]})


def op_vfree_start(enc: Encoding, s: State) -> Step:
    """vfree of a live area: __vunmap begins (Linux 2.6.12 mm/vmalloc.c: vfree,
    __vunmap)."""
    a = z3.Const("a", AID)
    cond = z3.And(z3.Not(s.busy), s.live[a])
    post = s.but(busy=z3.BoolVal(True), busy_area=a, tearing=z3.BoolVal(True))
    return Step("vfree_start", cond, post, {"a": a}, {"aid": [a]})


def op_unmap_step(enc: Encoding, s: State) -> Step:
    """One page of the teardown: the last mapped page's pte is cleared
    (unmap_vm_area / unmap_area_pte: ptep_get_and_clear) and its frame goes back to
    the page allocator (__vunmap: __free_page). The caller must have kunmapped it.

    The kernel clears all the ptes, then frees all the frames; one page at a time
    reaches the same state."""
    a = s.busy_area
    k = s.anr[a] - 1
    v = s.astart[a] + k
    p = s.pte_pfn[v]
    F = z3.BoolVal(False)
    cond = z3.And(s.busy, s.tearing, s.anr[a] != vpnv(0),
                  z3.Not(kmap_users(s, p)) if enc.free_needs_kunmap else z3.BoolVal(True))
    post = s.but(ffree=s.ffree.store(p, z3.BoolVal(True)), falloc=s.falloc.store(p, F),
                 fsingle=s.fsingle.store(p, F), anr=s.anr.store(a, k))
    if enc.unmap_clears_pte:
        post = post.but(pte_p=s.pte_p.store(v, F))
    if enc.unmap_clears_owner:
        post = post.but(fown=s.fown.store(p, F))
    return Step("unmap_step", cond, post, {"vpn": v, "p": p},
                {"pfn": [p], "vpn": [v], "aid": [a]})


def op_remove_vm_area(enc: Encoding, s: State) -> Step:
    """The area, with no page left mapped, leaves vmlist and its range becomes a hole
    (Linux 2.6.12 mm/vmalloc.c: remove_vm_area; then kfree of the descriptor)."""
    a = s.busy_area
    start, end = s.astart[a], area_end(s, a)

    def released(v):
        return z3.And(z3.ULE(start, v), z3.ULT(rng(v), end))

    F = z3.BoolVal(False)
    cond = z3.And(s.busy, s.tearing, s.anr[a] == vpnv(0))
    post = s.but(live=s.live.store(a, F),
                 vowned=s.vowned.update(lambda q, old: z3.And(z3.Not(released(q)), old)),
                 busy=F, tearing=F)
    return Step("remove_vm_area", cond, post, {}, {"aid": [a], "vpn": [start]})


def op_kmap_new(enc: Encoding, s: State) -> Step:
    """kmap_high of an unmapped highmem page: map_new_virtual takes slot i (count 0),
    writes its pte and the htable entry, and kmap_high counts the user: 2.

    Linux 2.6.12 mm/highmem.c: kmap_high, map_new_virtual, set_page_address. Any
    free slot is allowed (the kernel's scan from last_pkmap_nr picks one of them);
    a scan that wraps calls flush_all_zero_pkmaps first -- its own row."""
    p, i = z3.Const("p", PFN), z3.Const("i", SLOT)
    c = s.pk_count[i]
    free_slot = c == cntv(0) if enc.kmap_needs_flushed_slot else \
        z3.And(c >= cntv(0), c <= cntv(1))
    cond = z3.And(z3.Not(s.ht_p[p]), s.fhigh[p], s.falloc[p], free_slot)
    v = pk_vpn(s, i)
    post = s.but(pk_count=s.pk_count.store(i, cntv(2)), pte_p=s.pte_p.store(v, z3.BoolVal(True)),
                 pte_pfn=s.pte_pfn.store(v, p), ht_p=s.ht_p.store(p, z3.BoolVal(True)),
                 ht_idx=s.ht_idx.store(p, i))
    return Step("kmap_new", cond, post, {"p": p, "slot": i},
                {"pfn": [p, s.pte_pfn[v]], "slot": [i], "vpn": [v]})


def op_kmap_again(enc: Encoding, s: State) -> Step:
    """kmap_high of a page already in page_address_htable: pkmap_count++ (even from 1:
    an unflushed mapping is reused). Linux 2.6.12 mm/highmem.c: kmap_high."""
    p = z3.Const("p", PFN)
    i = s.ht_idx[p]
    c = s.pk_count[i]
    cond = z3.And(s.ht_p[p], s.falloc[p], c >= cntv(1), c < cntv(COUNT_MAX))
    post = s.but(pk_count=s.pk_count.store(i, c + 1))
    return Step("kmap_again", cond, post, {"p": p}, {"pfn": [p], "slot": [i]})


def op_kunmap(enc: Encoding, s: State) -> Step:
    """kunmap_high: pkmap_count-- ; a count that would reach 0 is a BUG, so it stays
    at least 1 and the mapping stays until a flush. Linux 2.6.12 mm/highmem.c."""
    p = z3.Const("p", PFN)
    i = s.ht_idx[p]
    c = s.pk_count[i]
    cond = z3.And(s.ht_p[p], c > cntv(1))
    post = s.but(pk_count=s.pk_count.store(i, c - 1))
    return Step("kunmap", cond, post, {"p": p}, {"pfn": [p], "slot": [i]})


def op_flush_all_zero_pkmaps(enc: Encoding, s: State) -> Step:
    """Every slot with count 1 at once: count 0, pte cleared, the page's htable entry
    removed. Linux 2.6.12 mm/highmem.c: flush_all_zero_pkmaps.

    The kernel removes the entry of the page its pte maps; the encoding removes the
    entry q whose slot has count 1 and maps q -- the same entries wherever
    pkmap_consistency holds (each used slot's page has that slot as its entry)."""
    one = cntv(1)

    def flushed(v):
        return z3.And(in_pkmap(s, v), s.pk_count[pk_slot(s, v)] == one)

    def dropped(q):
        i = s.ht_idx[q]
        return z3.And(s.pk_count[i] == one, s.pte_pfn[pk_vpn(s, i)] == q)

    post = s.but(pk_count=s.pk_count.update(lambda i, old: z3.If(old == one, cntv(0), old)),
                 pte_p=s.pte_p.update(lambda v, old: z3.And(old, z3.Not(flushed(v)))))
    if enc.flush_clears_htable:
        post = post.but(ht_p=s.ht_p.update(lambda q, old: z3.And(old, z3.Not(dropped(q)))))
    return Step("flush_all_zero_pkmaps", z3.BoolVal(True), post, {}, {})


def op_page_alloc(enc: Encoding, s: State) -> Step:
    """Another user of the page allocator takes a free frame (slab growth, a pte
    table, kmalloc'd descriptors and page arrays, any alloc_pages): it becomes
    allocated, as a single frame or inside a larger block."""
    p, single = z3.Const("p", PFN), z3.Bool("single")
    cond = s.ffree[p]
    post = s.but(ffree=s.ffree.store(p, z3.BoolVal(False)),
                 falloc=s.falloc.store(p, z3.BoolVal(True)), fsingle=s.fsingle.store(p, single))
    return Step("page_alloc", cond, post, {"p": p, "single": single}, {"pfn": [p]})


def op_page_free(enc: Encoding, s: State) -> Step:
    """Another user frees a frame it holds: not a vmalloc page, no kmap users."""
    p = z3.Const("p", PFN)
    F = z3.BoolVal(False)
    cond = z3.And(s.falloc[p], z3.Not(s.fown[p]),
                  z3.Not(kmap_users(s, p)) if enc.free_needs_kunmap else z3.BoolVal(True))
    post = s.but(ffree=s.ffree.store(p, z3.BoolVal(True)), falloc=s.falloc.store(p, F),
                 fsingle=s.fsingle.store(p, F))
    return Step("page_free", cond, post, {"p": p}, {"pfn": [p]})


def op_bootmem_free(enc: Encoding, s: State) -> Step:
    """free_all_bootmem: a frame that is neither free nor allocated (reserved at
    boot) joins the free frames (mm/bootmem.c: free_all_bootmem_core)."""
    p = z3.Const("p", PFN)
    cond = z3.And(z3.Not(s.ffree[p]), z3.Not(s.falloc[p]))
    post = s.but(ffree=s.ffree.store(p, z3.BoolVal(True)))
    return Step("bootmem_free", cond, post, {"p": p}, {"pfn": [p]})


OPERATIONS: dict[str, Callable[[Encoding, State], Step]] = {
    "get_vm_area": op_get_vm_area,
    "map_step": op_map_step,
    "map_finish": op_map_finish,
    "vmalloc_fail": op_vmalloc_fail,
    "vfree_start": op_vfree_start,
    "unmap_step": op_unmap_step,
    "remove_vm_area": op_remove_vm_area,
    "kmap_new": op_kmap_new,
    "kmap_again": op_kmap_again,
    "kunmap": op_kunmap,
    "flush_all_zero_pkmaps": op_flush_all_zero_pkmaps,
    "page_alloc": op_page_alloc,
    "page_free": op_page_free,
    "bootmem_free": op_bootmem_free,
}


# --- concrete states -----------------------------------------------------------------

@dataclass
class Frame:
    """One frame of a concrete state; a frame not listed is reserved and unused."""

    free: bool = False
    alloc: bool = False
    single: bool = False
    high: bool = False
    owner: tuple | None = None        # (area id, page index) for a vmalloc page


@dataclass
class Concrete:
    """A concrete abstract state as Python data: what `alpha` reads off a machine and
    what a counterexample is lifted to. `state()` turns it into a `State`."""

    vstart: int
    vend: int
    pkbase: int
    areas: dict = field(default_factory=dict)      # live id -> (start vpn, npages, mapped)
    ptes: dict = field(default_factory=dict)       # vpn -> pfn, present ptes only
    frames: dict = field(default_factory=dict)     # pfn -> Frame
    pk_count: dict = field(default_factory=dict)   # slot -> count, nonzero only
    htable: dict = field(default_factory=dict)     # pfn -> slot
    busy: tuple | None = None                      # (area id, tearing) inside vmalloc/vfree

    def state(self) -> State:
        T, F = z3.BoolVal(True), z3.BoolVal(False)
        fr = self.frames
        ranges = [(z3.BitVecVal(a, AID_BITS), start, start + np + 1)
                  for a, (start, np, _) in sorted(self.areas.items())]

        def owned(q):
            return z3.Or(F, *[z3.And(z3.ULE(vpnv(lo), q), z3.ULT(rng(q), hi))
                             for _, lo, hi in ranges])

        def owner(q):
            value = z3.BitVecVal(0, AID_BITS)
            for a, lo, hi in ranges:
                value = z3.If(z3.And(z3.ULE(vpnv(lo), q), z3.ULT(rng(q), hi)), a, value)
            return value

        def table(dom, rng_sort, default, entries):
            arr = z3.K(dom, default)
            for k, v in entries.items():
                arr = z3.Store(arr, z3.BitVecVal(k, dom.size()), v)
            return Map(lambda q, arr=arr: arr[q])

        aid = {a: z3.BitVecVal(a, AID_BITS) for a in self.areas}
        own = {p: f.owner for p, f in fr.items() if f.owner is not None}
        busy_area, tearing = self.busy if self.busy else (0, False)
        return State(
            vstart=vpnv(self.vstart), vend=vpnv(self.vend), pkbase=vpnv(self.pkbase),
            pte_p=table(VPN, B, F, {v: T for v in self.ptes}),
            pte_pfn=table(VPN, PFN, z3.BitVecVal(0, PFN_BITS),
                          {v: z3.BitVecVal(p, PFN_BITS) for v, p in self.ptes.items()}),
            live=table(AID, B, F, {a: T for a in self.areas}),
            astart=table(AID, VPN, vpnv(0), {a: vpnv(x[0]) for a, x in self.areas.items()}),
            anp=table(AID, VPN, vpnv(0), {a: vpnv(x[1]) for a, x in self.areas.items()}),
            anr=table(AID, VPN, vpnv(0), {a: vpnv(x[2]) for a, x in self.areas.items()}),
            vowned=Map(owned), vown=Map(owner),
            fown=table(PFN, B, F, {p: T for p in own}),
            farea=table(PFN, AID, z3.BitVecVal(0, AID_BITS),
                        {p: z3.BitVecVal(o[0], AID_BITS) for p, o in own.items()}),
            fidx=table(PFN, VPN, vpnv(0), {p: vpnv(o[1]) for p, o in own.items()}),
            ffree=table(PFN, B, F, {p: T for p, f in fr.items() if f.free}),
            falloc=table(PFN, B, F, {p: T for p, f in fr.items() if f.alloc}),
            fsingle=table(PFN, B, F, {p: T for p, f in fr.items() if f.single}),
            fhigh=table(PFN, B, F, {p: T for p, f in fr.items() if f.high}),
            busy=z3.BoolVal(self.busy is not None),
            busy_area=aid.get(busy_area, z3.BitVecVal(busy_area, AID_BITS)),
            tearing=z3.BoolVal(bool(tearing)),
            pk_count=table(SLOT, CNT, cntv(0), {i: cntv(c) for i, c in self.pk_count.items()}),
            ht_p=table(PFN, B, F, {p: T for p in self.htable}),
            ht_idx=table(PFN, SLOT, z3.BitVecVal(0, SLOT_BITS),
                         {p: z3.BitVecVal(i, SLOT_BITS) for p, i in self.htable.items()}))


def alpha(machine) -> Concrete:
    """The abstract state of a machine between kernel calls (nothing in flight).

    Only VM_ALLOC areas (vmalloc) are abstracted; vmap areas are not in the encoding
    (spec/proofs_vmalloc.md). An area's id is the address of its vm_struct. The
    buddy view of each frame is read from the free lists (PG_buddy heads and their
    order) and from page_owner independently, so an overlap between them shows.
    """
    from ..model.mem_map import PG_buddy, PG_highmem
    from ..model.vmalloc import VM_ALLOC
    from ..model.pgtable import PTRS_PER_PGD, _PAGE_PRESENT
    from array import array

    mm = machine.mem_map
    n = mm.nr_pages
    frames = {p: Frame() for p in range(n)}
    for p in range(n):
        if mm.flags[p] & PG_buddy:
            for q in range(p, min(n, p + (1 << mm.private[p]))):
                frames[q].free = True
        if mm.flags[p] & PG_highmem:
            frames[p].high = True
    for head, order in machine.page_owner.items():
        for q in range(head, min(n, head + (1 << order))):
            frames[q].alloc = True
        if order == 0 and mm.count[head] >= 1:
            frames[head].single = True
    areas = {}
    for area in machine.vmlist:
        if area.flags & VM_ALLOC:
            areas[area.kaddr] = (area.addr >> 12, area.size // 4096 - 1, len(area.pages))
    for pfn, addr in machine.vmalloc_owner.items():
        area = machine.vm_areas.get(addr)
        kaddr = area.kaddr if area is not None else addr
        index = area.pages.index(pfn) if area is not None and pfn in area.pages \
            else (1 << VPN_BITS) - 1
        frames.setdefault(pfn, Frame()).owner = (kaddr, index)
    ptes = {}
    for index in range(PTRS_PER_PGD):
        table = machine.swapper_pg_dir[index]
        if isinstance(table, array):
            for j, pte in enumerate(table):
                if pte & _PAGE_PRESENT:
                    ptes[(index << 10) | j] = pte >> 12
    base = machine.pkmap_base
    return Concrete(
        vstart=machine.vmalloc_start >> 12, vend=machine.vmalloc_end >> 12,
        pkbase=base >> 12, areas=areas, ptes=ptes,
        frames={p: f for p, f in frames.items() if f != Frame()},
        pk_count={i: c for i, c in enumerate(machine.pkmap_count) if c},
        htable={p: ((v - base) >> 12) & (LAST_PKMAP - 1)
                for p, v in machine.page_address_htable.items()})


def valid(formula, timeout_ms: int = 0) -> bool:
    """Is a closed formula valid? (Concrete states: decided, or an error.)"""
    solver = z3.Solver()
    if timeout_ms:
        solver.set("timeout", timeout_ms)
    solver.add(z3.Not(formula))
    result = solver.check()
    if result == z3.unknown:
        raise RuntimeError(f"z3 could not decide a concrete formula: {solver.reason_unknown()}")
    return result == z3.unsat


def conjunct_formula(s: State, c: Conjunct):
    xs = [z3.Const(f"x{j}", SORTS[k]) for j, k in enumerate(c.over)]
    return z3.ForAll(xs, c.body(s, *xs)) if xs else c.body(s)


def invariant_formula(s: State, name: str):
    return z3.And(*[conjunct_formula(s, c) for c in conjuncts(name)])


def invariant_holds(s: State, name: str) -> bool:
    """One invariant on a concrete state, at every vpn, pfn, area id and slot."""
    return valid(invariant_formula(s, name))


def failing_conjuncts(s: State, name: str | None = None) -> list[str]:
    return [c.label for c in conjuncts(name) if not valid(conjunct_formula(s, c))]


def apply(enc: Encoding, op: str, s: State, **params) -> tuple[bool, State, Step]:
    """(cond holds, post state, step) of one encoded step on a concrete state, with
    the operation's parameters given concrete values (ints or Booleans)."""
    step = OPERATIONS[op](enc, s)
    subs = []
    for k, v in params.items():
        term = step.params[k]
        value = z3.BoolVal(v) if z3.is_bool(term) else z3.BitVecVal(v, term.size())
        subs.append((term, value))
    cond = z3.And(step.cond, *[z3.ForAll([y], body(y)) for sort, body in step.forall
                               for y in [z3.Const("y", SORTS[sort])]])
    cond = z3.substitute(cond, *subs) if subs else cond
    post = _bind(step.post, subs)
    return valid(cond), post, step


def _bind(s: State, subs) -> State:
    """Give an operation's parameters their values, in every update of every map.

    Each update is read once at placeholder index and old value, the parameters are
    substituted there, and the placeholders are replaced at each read: a later step's
    parameters, which have the same names, are then never captured."""
    if not subs:
        return s
    out = {}
    for name, value in s.items():
        if not isinstance(value, Map):
            out[name] = z3.substitute(value, *subs)
            continue
        dom, rng_sort = MAPS[name]
        q0, old0 = z3.Const("__index", dom), z3.Const("__old", rng_sort)
        updates = []
        for update in value.updates:
            body = z3.substitute(update(q0, old0), *subs)
            updates.append(lambda q, old, body=body, q0=q0, old0=old0:
                           z3.substitute(body, (q0, q), (old0, old)))
        out[name] = Map(value.base, updates)
    return State(**out)


# a field that only means something where another one holds (a dead area's start,
# the frame of a clear pte...): compared there only
MEANINGFUL_WHERE = {"pte_pfn": "pte_p", "astart": "live", "anp": "live", "anr": "live",
                    "vown": "vowned", "farea": "fown", "fidx": "fown", "ht_idx": "ht_p"}


def states_differ(a: State, b: State) -> list[str]:
    """The fields in which two concrete states differ, maps compared at every index
    (each field where it is meaningful; busy_area and tearing while busy)."""
    checks = {}
    for name, va in a.items():
        vb = getattr(b, name)
        if isinstance(va, Map):
            x = z3.Const(f"x.{name}", MAPS[name][0])
            same = va[x] == vb[x]
            if name in MEANINGFUL_WHERE:
                same = z3.Implies(getattr(a, MEANINGFUL_WHERE[name])[x], same)
            checks[name] = z3.ForAll([x], same)
        elif name not in ("busy_area", "tearing"):
            checks[name] = va == vb
    checks["in_flight"] = z3.Implies(a.busy, z3.And(a.busy_area == b.busy_area,
                                                    a.tearing == b.tearing))
    if valid(z3.And(*checks.values())):
        return []
    return [name for name, same in checks.items() if not valid(same)]
