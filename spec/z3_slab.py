"""Z3 encoding of one SLAB cache: abstract state, operations, invariants.

The slab-layer counterpart of spec/z3_buddy.py (prose: spec/proofs_slab.md). Linux
2.6.12 mm/slab.c, profile linux-2.6-i386 (the SLUB profile has no colouring and is not
encoded). The state of the slab layer is the product of its caches' states and every
operation below changes one cache (cache_grow's off-slab `struct slab` is a
kmem_cache_alloc on another cache), so one cache with a fully symbolic geometry stands
for every cache.

Abstraction of a concrete cache (`alpha` below):

  geometry     objsize, align, colour_off = 1 << cshift, gfporder, num, objs (the bytes
               num objects take: num * objsize, computed by alpha, never multiplied in
               a proof), mgmt (on-slab slab_size, 0 off-slab), off_slab, left_over,
               colour; kclass: the kmalloc class the cache serves (NCLASS: none), dma
               (it is the size-N(DMA) twin). No operation writes them.
  colour_next, free_objects, nr[list]   the cache's counters (nr: slabs on each list)
  live[s]      slab s (its first pfn, all 2^20) belongs to the cache
  lst[s]       the list it is on: FULL 0, PARTIAL 1, FREE 2 (model/slab.py numbering;
               the list links are abstracted as this field, as z3_buddy abstracts the
               free lists as PG_buddy heads)
  inuse[s], coff[s], s_mem[s]   struct slab: inuse, colouroff, s_mem
  alloc[s,i]   object i of slab s is handed out: i is not on the slab's bufctl chain
               (i: 16 bits, the width of kmem_bufctl_t)
  parked[s,i]  it sits in one of the cache's per-CPU or shared array caches (which
               one and the arrays' order are abstracted away)
  km[s,i], req[s,i]   it was handed out by kmalloc, for req bytes
  mg[s]        the address of an off-slab struct slab (meaningless on-slab)
  pg_slab[p]   frame p (all 2^20 pfns) carries PG_slab (mem_map flags)
  mine[p], pslab[p]   frame p belongs to a slab of this cache, and which one
               (page->lru.next / page->lru.prev: SET_PAGE_CACHE / SET_PAGE_SLAB)
  other[p]     frame p belongs to a slab of another cache: the rest of the slab layer,
               seen from this cache as the frames it holds (written only by
               other_cache_grow / other_slab_destroy, the other caches' steps)

Byte quantities and addresses are 40-bit (i386 addresses, sums of them and num x
objsize < 2^34 never wrap); counters 32-bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Callable

import z3

from ..model.profiles import LINUX_2_6_I386
from .z3_buddy import Map, const_map, fn_map, seeded_encoding
from .z3_concrete import _valid as valid  # noqa: F401  (tests and provers use zs.valid)

PROFILE = LINUX_2_6_I386
SLAB_BITS = 20                    # slab ids are first pfns: all 2^20 frames of i386
IDX_BITS = 16                     # kmem_bufctl_t is an unsigned short on i386 2.6.12
CNT_BITS = 32
BYTE_BITS = 40
LST_BITS = 2
CLS_BITS = 8

FULL, PARTIAL, FREE = 0, 1, 2     # model/slab.py FULL, PARTIAL, FREE
LIST_NAMES = ("full", "partial", "free")
SIZES = PROFILE.kmalloc_sizes     # include/linux/kmalloc_sizes.h: 32 .. 131072
NCLASS = len(SIZES)
# mm/slab.c 2.6.12: SLAB_LIMIT = BUFCTL_END - 2 with a 16-bit kmem_bufctl_t
SLAB_LIMIT = (1 << (8 * PROFILE.BUFCTL_SIZE)) - 3
MAX_GFP_ORDER = 5                 # mm/slab.c 2.6.12 (CONFIG_MMU)
MAX_OBJ_SIZE = SIZES[-1]          # kmem_cache_create: size <= (1 << MAX_OBJ_ORDER) pages
MIN_OBJ_SIZE = PROFILE.VIRT_BITS // 8        # BYTES_PER_WORD
L1_SHIFT = PROFILE.L1_CACHE_BYTES.bit_length() - 1
MAX_ALIGN_SHIFT = PROFILE.PAGE_SHIFT         # ralign <= PAGE_SIZE (lemma's range)

SLAB = z3.BitVecSort(SLAB_BITS)
PFN = SLAB                        # a slab id is its first pfn
IDX = z3.BitVecSort(IDX_BITS)
OBJ = z3.BitVecSort(SLAB_BITS + IDX_BITS)
CNT = z3.BitVecSort(CNT_BITS)
BYTES = z3.BitVecSort(BYTE_BITS)
LST = z3.BitVecSort(LST_BITS)
CLS = z3.BitVecSort(CLS_BITS)


def cntv(n):
    return z3.BitVecVal(n, CNT_BITS)


def bytev(n):
    return z3.BitVecVal(n, BYTE_BITS)


def lstv(n):
    return z3.BitVecVal(n, LST_BITS)


def clsv(n):
    return z3.BitVecVal(n, CLS_BITS)


def okey(sid, idx):
    """The object key (slab, index)."""
    return z3.Concat(sid, idx)


@dataclass(frozen=True)
class Encoding:
    """How the operations behave. Every field True is Linux 2.6.12; False seeds a bug."""

    # cache_grow: if (++colour_next >= colour) colour_next = 0
    grow_wraps_colour: bool = True
    # cache_grow/alloc_slabmgmt: on-slab, colouroff = offset + slab_size
    grow_adds_mgmt: bool = True
    # kmem_cache_alloc: slabp->inuse++
    alloc_counts_inuse: bool = True
    # free_block: a slab that is not empty afterwards goes (back) to slabs_partial
    free_moves_to_partial: bool = True
    # __kmalloc: the first general class with cs_size >= size (else the class below)
    kmalloc_smallest_class: bool = True
    # __cache_shrink: only slabs from slabs_free are destroyed (else any non-full one)
    destroy_only_free: bool = True
    # cache_grow: free_objects += num
    grow_counts_free_objects: bool = True
    # alloc_slabmgmt: on-slab, s_mem = slab start + colouroff (after the struct slab)
    grow_s_mem_after_mgmt: bool = True
    # cache_grow: SetPageSlab + SET_PAGE_SLAB on every page of the block (i < 1 << order)
    grow_marks_every_page: bool = True
    # kmem_freepages: ClearPageSlab on every page before free_pages
    destroy_clears_pg_slab: bool = True
    # free_block: only objects taken from an array go back to their slabs
    free_block_takes_parked: bool = True
    # __cache_alloc: the object popped leaves the array (avail--)
    pop_unparks: bool = True

    @classmethod
    def seeded(cls, bug: str) -> "Encoding":
        return seeded_encoding(cls, SEEDED_BUGS, bug)


# bug name -> (the Encoding switch it turns off, what goes wrong)
SEEDED_BUGS = {
    "colour_next_not_wrapped": ("grow_wraps_colour",
                                "cache_grow advances colour_next without wrapping it at colour"),
    "colouroff_without_mgmt": ("grow_adds_mgmt",
                               "cache_grow places object 0 at the colour offset, over the "
                               "on-slab struct slab"),
    "inuse_not_incremented": ("alloc_counts_inuse",
                              "kmem_cache_alloc hands out an object without inuse++"),
    "free_not_moved_to_partial": ("free_moves_to_partial",
                                  "kmem_cache_free leaves a no-longer-full slab on slabs_full"),
    "kmalloc_class_below": ("kmalloc_smallest_class",
                            "kmalloc takes its object from the class below the smallest "
                            "one that fits"),
    "destroy_partial_slab": ("destroy_only_free",
                             "slab shrinking destroys a partial slab with objects in use"),
    "grow_free_objects_not_updated": ("grow_counts_free_objects",
                                      "cache_grow does not add num to free_objects"),
    "s_mem_over_mgmt": ("grow_s_mem_after_mgmt",
                        "cache_grow puts object 0 at the colour offset, over the on-slab "
                        "struct slab, while colouroff counts the management"),
    "grow_marks_first_page_only": ("grow_marks_every_page",
                                   "cache_grow sets PG_slab and the back pointer on the "
                                   "block's first page only"),
    "destroy_keeps_pg_slab": ("destroy_clears_pg_slab",
                              "slab_destroy frees the pages with PG_slab still set"),
    "free_block_of_a_held_object": ("free_block_takes_parked",
                                    "free_block puts back an object no array holds (one "
                                    "a caller still has)"),
    "pop_leaves_it_parked": ("pop_unparks",
                             "__cache_alloc hands the top object out but leaves it in "
                             "the array"),
}


# --- state ---------------------------------------------------------------------------

GEOMETRY = ("objsize", "align", "colour_off", "cshift", "gfporder", "num", "objs", "mgmt",
            "off_slab", "left_over", "colour", "kclass", "dma")
SLAB_MAPS = ("live", "lst", "inuse", "coff", "s_mem", "mg")
OBJ_MAPS = ("alloc", "km", "req", "parked")
FRAME_MAPS = ("pg_slab", "mine", "pslab", "other")


@dataclass(frozen=True)
class State:
    objsize: z3.BitVecRef
    align: z3.BitVecRef
    colour_off: z3.BitVecRef
    cshift: z3.BitVecRef
    gfporder: z3.BitVecRef
    num: z3.BitVecRef
    objs: z3.BitVecRef
    mgmt: z3.BitVecRef
    off_slab: z3.BoolRef
    left_over: z3.BitVecRef
    colour: z3.BitVecRef
    kclass: z3.BitVecRef
    dma: z3.BoolRef
    colour_next: z3.BitVecRef
    free_objects: z3.BitVecRef
    nr: Map
    live: Map
    lst: Map
    inuse: Map
    coff: Map
    s_mem: Map
    alloc: Map
    km: Map
    req: Map
    parked: Map
    mg: Map
    pg_slab: Map
    mine: Map
    pslab: Map
    other: Map

    def but(self, **changes) -> "State":
        return replace(self, **changes)

    def items(self):
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


def fresh_state(prefix: str) -> State:
    """A fully symbolic state; names prefixed so two states can coexist."""
    C = lambda n, sort: z3.Const(f"{prefix}{n}", sort)      # noqa: E731
    A = lambda n, d, r: fn_map(f"{prefix}{n}", d, r)         # noqa: E731
    B = z3.BoolSort()
    return State(
        objsize=C("objsize", BYTES), align=C("align", BYTES), colour_off=C("colour_off", BYTES),
        cshift=C("cshift", BYTES), gfporder=C("gfporder", BYTES), num=C("num", CNT),
        objs=C("objs", BYTES), mgmt=C("mgmt", BYTES), off_slab=z3.Bool(f"{prefix}off_slab"),
        left_over=C("left_over", BYTES), colour=C("colour", BYTES), kclass=C("kclass", CLS),
        dma=z3.Bool(f"{prefix}dma"), colour_next=C("colour_next", BYTES),
        free_objects=C("free_objects", CNT), nr=A("nr", LST, CNT),
        live=A("live", SLAB, B), lst=A("lst", SLAB, LST), inuse=A("inuse", SLAB, CNT),
        coff=A("coff", SLAB, BYTES), s_mem=A("s_mem", SLAB, BYTES),
        alloc=A("alloc", OBJ, B), km=A("km", OBJ, B), req=A("req", OBJ, BYTES),
        parked=A("parked", OBJ, B), mg=A("mg", SLAB, BYTES), pg_slab=A("pg_slab", PFN, B), mine=A("mine", PFN, B),
        pslab=A("pslab", PFN, SLAB), other=A("other", PFN, B))


# --- derived quantities ---------------------------------------------------------------

def slab_bytes(s: State):
    """PAGE_SIZE << gfporder."""
    return bytev(PROFILE.PAGE_SIZE) << s.gfporder


def slab_base(sid):
    """The kernel address of a slab's first byte (lowmem: PAGE_OFFSET + pfn pages)."""
    return bytev(PROFILE.PAGE_OFFSET) + (z3.ZeroExt(BYTE_BITS - SLAB_BITS, sid)
                                         << PROFILE.PAGE_SHIFT)


def pages_of(order):
    """1 << order as a pfn count (order <= MAX_GFP_ORDER where it is read)."""
    return z3.BitVecVal(1, SLAB_BITS) << z3.Extract(SLAB_BITS - 1, 0, order)


def block_pages(s: State):
    """The frames of one slab of the cache: 1 << gfporder."""
    return pages_of(s.gfporder)


def in_pages(first, npages, p):
    """Frame p lies in the npages frames from pfn first."""
    return z3.And(z3.ULE(first, p), z3.ULT(p - first, npages))


def in_block(s: State, sid, p):
    """Frame p lies in the block of 1 << gfporder frames starting at pfn sid."""
    return in_pages(sid, block_pages(s), p)


def is_aligned(first, npages):
    return first & (npages - 1) == z3.BitVecVal(0, SLAB_BITS)


def pfn_of(addr):
    """The pfn of a lowmem kernel address (__pa >> PAGE_SHIFT); exact below
    PAGE_OFFSET + 2^32."""
    return z3.Extract(SLAB_BITS + PROFILE.PAGE_SHIFT - 1, PROFILE.PAGE_SHIFT,
                      addr - bytev(PROFILE.PAGE_OFFSET))


def is_lowmem_addr(addr):
    return z3.And(z3.ULE(bytev(PROFILE.PAGE_OFFSET), addr),
                  z3.ULT(addr - bytev(PROFILE.PAGE_OFFSET), bytev(1 << 32)))


def one_or(colour):
    """max(colour, 1): the number of colour indices cache_grow uses."""
    return z3.If(colour == bytev(0), bytev(1), colour)


def size_of_class(k):
    """SIZES[k] as bytes (SIZES[-1] past the table: only read under k < NCLASS)."""
    v = bytev(SIZES[-1])
    for i in reversed(range(NCLASS - 1)):
        v = z3.If(k == clsv(i), bytev(SIZES[i]), v)
    return v


def kmalloc_index(size, below: bool = False):
    """__kmalloc / kmem_find_general_cachep: walk malloc_sizes while size > cs_size;
    NCLASS when every class is too small (the CACHE(ULONG_MAX) sentinel). `below`: the
    seeded bug, one class lower when there is one."""
    v = clsv(NCLASS)
    for i in reversed(range(NCLASS)):
        pick = max(i - 1, 0) if below else i
        v = z3.If(z3.ULE(size, bytev(SIZES[i])), clsv(pick), v)
    return v


def want_list(s: State, inuse):
    """The list a slab with `inuse` objects in use belongs on."""
    return z3.If(inuse == s.num, lstv(FULL), z3.If(inuse == cntv(0), lstv(FREE), lstv(PARTIAL)))


def idx_ext(i):
    return z3.ZeroExt(CNT_BITS - IDX_BITS, i)


# --- invariants ------------------------------------------------------------------------

@dataclass(frozen=True)
class Conjunct:
    """One conjunct of an invariant. kind "cache": body(s); "slab": body(s, sid) for every
    slab id; "object": body(s, sid, idx) for every object key; "frame": body(s, pfn) for
    every frame; "slab_frame": body(s, sid, pfn); "pair": body(s, sid, sid2) for every
    two slab ids; "count": a counting relation, proved by delta equations (body None)."""

    invariant: str
    label: str
    english: str
    kind: str
    body: Callable | None = None


def _colour_grid(s):
    return z3.And(s.colour_off == bytev(1) << s.cshift, s.align != bytev(0),
                  s.align & (s.align - 1) == bytev(0), z3.ULE(s.align, s.colour_off))


def _colour_count(s):
    return s.colour == z3.LShR(s.left_over, s.cshift)


def _slab_fill(s):
    return s.objs + s.mgmt + s.left_over == slab_bytes(s)


def _colour_next(s):
    return z3.ULT(s.colour_next, one_or(s.colour))


def _offset(s, sid):
    return s.coff[sid] - s.mgmt


def _offset_in_slack(s, sid):
    return z3.Implies(s.live[sid], z3.And(z3.ULE(s.mgmt, s.coff[sid]),
                                          z3.ULE(_offset(s, sid), s.left_over)))


def _offset_on_grid(s, sid):
    return z3.Implies(s.live[sid], _offset(s, sid) & (s.colour_off - 1) == bytev(0))


def _offset_colour(s, sid):
    return z3.Implies(s.live[sid], z3.ULT(z3.LShR(_offset(s, sid), s.cshift), one_or(s.colour)))


def _objects_fit(s, sid):
    return z3.Implies(s.live[sid], z3.ULE(s.coff[sid] + s.objs, slab_bytes(s)))


def _inuse_bound(s, sid):
    return z3.Implies(s.live[sid], z3.ULE(s.inuse[sid], s.num))


def _list_by_inuse(s, sid):
    return z3.Implies(s.live[sid], s.lst[sid] == want_list(s, s.inuse[sid]))


def _s_mem(s, sid):
    return z3.Implies(s.live[sid], s.s_mem[sid] == slab_base(sid) + s.coff[sid])


def _objects_in_pages(s, sid):
    base = slab_base(sid)
    return z3.Implies(s.live[sid], z3.And(z3.ULE(base, s.s_mem[sid]),
                                          z3.ULE(s.s_mem[sid] + s.objs, base + slab_bytes(s))))


def _object_of_live_slab(s, sid, i):
    return z3.Implies(s.alloc[okey(sid, i)], z3.And(s.live[sid], z3.ULT(idx_ext(i), s.num)))


def _parked_handed_out(s, sid, i):
    k = okey(sid, i)
    return z3.Implies(s.parked[k], z3.And(s.alloc[k], s.live[sid]))


def _parked_not_held(s, sid, i):
    k = okey(sid, i)
    return z3.Implies(s.parked[k], z3.Not(s.km[k]))


def _class_size(s):
    return z3.Implies(z3.ULT(s.kclass, clsv(NCLASS)), z3.UGE(s.objsize, size_of_class(s.kclass)))


def _kmalloc_live(s, sid, i):
    k = okey(sid, i)
    return z3.Implies(s.km[k], s.alloc[k])


def _fits(s, sid, i):
    k = okey(sid, i)
    return z3.Implies(s.km[k], z3.ULE(s.req[k], s.objsize))


def _smallest_class(s, sid, i):
    k = okey(sid, i)
    below = z3.Or(s.kclass == clsv(0), z3.ULT(size_of_class(s.kclass - 1), s.req[k]))
    return z3.Implies(s.km[k], z3.And(z3.ULT(s.kclass, clsv(NCLASS)),
                                      z3.ULE(s.req[k], size_of_class(s.kclass)), below))


def _object_size(s):
    return s.objsize != bytev(0)


def _objects_after_mgmt(s, sid):
    return z3.Implies(s.live[sid], z3.ULE(slab_base(sid) + s.coff[sid], s.s_mem[sid]))


def _offslab_mgmt_outside(s, sid):
    return z3.Implies(z3.And(s.live[sid], s.off_slab),
                      z3.UGE(s.mg[sid] - slab_base(sid), slab_bytes(s)))


def _blocks_disjoint(s, a, b):
    return z3.Implies(z3.And(s.live[a], s.live[b], a != b), z3.Not(in_block(s, a, b)))


def _caches_disjoint(s, p):
    return z3.Not(z3.And(s.mine[p], s.other[p]))


def _block_aligned(s, sid):
    return z3.Implies(s.live[sid], is_aligned(sid, block_pages(s)))


def _slab_frames(s, sid, p):
    return z3.Implies(z3.And(s.live[sid], in_block(s, sid, p)),
                      z3.And(s.pg_slab[p], s.mine[p], s.pslab[p] == sid))


def _frame_owner(s, p):
    return z3.Implies(s.mine[p], z3.And(s.live[s.pslab[p]], in_block(s, s.pslab[p], p)))


def _marked_frames(s, p):
    return s.pg_slab[p] == z3.Or(s.mine[p], s.other[p])


CONJUNCTS: list[Conjunct] = [
    Conjunct("colour_within_slack", "colour_grid", "colour_off = 1 << cshift is a positive "
             "multiple of the (power-of-two) alignment", "cache", _colour_grid),
    Conjunct("colour_within_slack", "colour_count", "colour = left_over / colour_off",
             "cache", _colour_count),
    Conjunct("colour_within_slack", "slab_fill", "num x objsize + management + left_over = "
             "the slab's bytes", "cache", _slab_fill),
    Conjunct("colour_within_slack", "colour_next", "colour_next < max(colour, 1)", "cache",
             _colour_next),
    Conjunct("colour_within_slack", "offset_in_slack", "each slab's colour offset "
             "(colouroff - management) lies in 0..left_over", "slab", _offset_in_slack),
    Conjunct("colour_within_slack", "offset_on_grid", "each colour offset is a multiple of "
             "colour_off", "slab", _offset_on_grid),
    Conjunct("colour_within_slack", "offset_colour", "each colour offset / colour_off < "
             "max(colour, 1)", "slab", _offset_colour),
    Conjunct("colour_within_slack", "objects_fit", "offset + management + num x objsize "
             "fits the slab", "slab", _objects_fit),
    Conjunct("slab_accounting", "inuse_bound", "inuse <= num", "slab", _inuse_bound),
    Conjunct("slab_accounting", "list_by_inuse", "a slab is on slabs_full iff inuse = num, "
             "slabs_free iff inuse = 0, else slabs_partial", "slab", _list_by_inuse),
    Conjunct("slab_accounting", "s_mem", "s_mem = slab start + colouroff", "slab", _s_mem),
    Conjunct("slab_accounting", "objects_in_pages", "the objects [s_mem, s_mem + num x "
             "objsize) lie in the slab's pages", "slab", _objects_in_pages),
    Conjunct("slab_accounting", "object_of_live_slab", "an object in use belongs to a slab "
             "of the cache and has an index below num", "object", _object_of_live_slab),
    Conjunct("slab_accounting", "parked_handed_out", "an object parked in an array cache is "
             "off its slab's free list (counted in inuse) on a slab of the cache", "object",
             _parked_handed_out),
    Conjunct("slab_accounting", "parked_not_held", "an object parked in an array cache is "
             "no caller's kmalloc object", "object", _parked_not_held),
    Conjunct("slab_accounting", "inuse_count", "inuse = number of objects in use in the "
             "slab (inuse + free chain = num)", "count"),
    Conjunct("slab_accounting", "free_objects", "free_objects = sum over the slabs of "
             "num - inuse", "count"),
    Conjunct("slab_accounting", "list_nr", "each list's length = number of slabs on it",
             "count"),
    Conjunct("size_class", "class_size", "a general cache's objects hold its class size",
             "cache", _class_size),
    Conjunct("size_class", "kmalloc_live", "a kmalloc object is an object in use", "object",
             _kmalloc_live),
    Conjunct("size_class", "fits", "a kmalloc object's cache objects hold its requested "
             "size", "object", _fits),
    Conjunct("size_class", "smallest_class", "a kmalloc object comes from the smallest "
             "class that holds its requested size", "object", _smallest_class),
    Conjunct("no_overlap", "object_size", "objects have a positive size, so the num "
             "objects from s_mem are disjoint", "cache", _object_size),
    Conjunct("no_overlap", "objects_after_mgmt", "object 0 starts at or after slab start + "
             "colouroff, the end of the colour area and the on-slab struct slab", "slab",
             _objects_after_mgmt),
    Conjunct("no_overlap", "offslab_mgmt_outside", "an off-slab struct slab lies outside "
             "its slab's pages", "slab", _offslab_mgmt_outside),
    Conjunct("no_overlap", "blocks_disjoint", "two slabs of the cache do not share a frame",
             "pair", _blocks_disjoint),
    Conjunct("no_overlap", "caches_disjoint", "no frame belongs to a slab of this cache and "
             "to a slab of another cache", "frame", _caches_disjoint),
    Conjunct("page_state", "block_aligned", "a slab's first pfn is a multiple of "
             "1 << gfporder (a buddy block of that order)", "slab", _block_aligned),
    Conjunct("page_state", "slab_frames", "every frame of a slab's block carries PG_slab "
             "and points back to this cache and that slab", "slab_frame", _slab_frames),
    Conjunct("page_state", "frame_owner", "a frame pointing to a slab of this cache lies in "
             "the block of a live slab", "frame", _frame_owner),
    Conjunct("page_state", "marked_frames", "a frame carries PG_slab iff it belongs to a "
             "slab of this cache or of another", "frame", _marked_frames),
]

INVARIANTS = ["colour_within_slack", "slab_accounting", "size_class", "no_overlap",
              "page_state"]
# conjunct kinds whose instances range over frames or slab pairs
WIDE_KINDS = ("frame", "slab_frame", "pair")


def conjuncts(name: str | None = None) -> list[Conjunct]:
    return [c for c in CONJUNCTS if name is None or c.invariant == name]


def geometry_axiom(s: State):
    """What kmem_cache_create / cache_estimate guarantee of every cache (assumed).

    Ranges of mm/slab.c 2.6.12 on i386; objsize a multiple of the alignment
    (ALIGN(size, align)); colour_off = max(L1_CACHE_BYTES, align); objs = num *
    objsize; on-slab management an aligned size of at least sizeof(struct slab) +
    num * sizeof(kmem_bufctl_t); and that num objects and the
    management fit the slab -- the colouring lemma's conclusion at colour index 0
    (proofs/lemmas.py slab_colour_within_slack; cache_estimate chooses num so).
    Nothing here bounds the number of slabs or objects."""
    sb = slab_bytes(s)
    return z3.And(
        z3.ULE(bytev(MIN_OBJ_SIZE), s.objsize), z3.ULE(s.objsize, bytev(MAX_OBJ_SIZE)),
        z3.ULE(s.gfporder, bytev(MAX_GFP_ORDER)),
        z3.ULE(cntv(1), s.num), z3.ULE(s.num, cntv(SLAB_LIMIT)),
        z3.ULE(bytev(L1_SHIFT), s.cshift), z3.ULE(s.cshift, bytev(MAX_ALIGN_SHIFT)),
        z3.ULE(bytev(MIN_OBJ_SIZE), s.align), s.objsize & (s.align - 1) == bytev(0),
        # colour_off = cache_line_size(), raised to the alignment when larger
        s.colour_off == z3.If(z3.ULE(s.align, bytev(PROFILE.L1_CACHE_BYTES)),
                              bytev(PROFILE.L1_CACHE_BYTES), s.align),
        s.objs == z3.ZeroExt(BYTE_BITS - CNT_BITS, s.num) * s.objsize,
        z3.ULE(s.objs, sb), z3.ULE(s.mgmt, sb), z3.ULE(s.objs + s.mgmt, sb),
        z3.Implies(s.off_slab, s.mgmt == bytev(0)),
        # on-slab: struct slab and one kmem_bufctl_t per object
        z3.Implies(z3.Not(s.off_slab), z3.And(z3.ULE(
            bytev(PROFILE.STRUCT_SLAB_SIZE)
            + bytev(PROFILE.BUFCTL_SIZE) * z3.ZeroExt(BYTE_BITS - CNT_BITS, s.num), s.mgmt),
            s.mgmt & (s.align - 1) == bytev(0))),
        z3.ULE(s.kclass, clsv(NCLASS)))


# --- operations ------------------------------------------------------------------------

@dataclass
class Step:
    """An operation applied to a state: its condition, the new state, the slabs and
    objects (slab, index) whose per-slab / per-object fields it may write, its
    parameters, and the slab / index / frame terms worth instantiating the hypothesis
    at. page_cond and frame_cond(p) (for every frame p) are the rest of the condition:
    what the page allocator guarantees of cache_grow's block, which only the frame
    invariants need (the provers add page_cond and instances of frame_cond to those
    obligations, `apply` checks both, frame_cond for all frames)."""

    op: str
    cond: z3.BoolRef
    post: State
    slabs: list
    objects: list
    params: dict = field(default_factory=dict)
    slab_terms: list = field(default_factory=list)
    idx_terms: list = field(default_factory=list)
    page_cond: z3.BoolRef | None = None
    frame_cond: Callable | None = None
    frame_terms: list = field(default_factory=list)


def _add(m: Map, index, delta) -> Map:
    return m.store(index, m[index] + delta)


def _move(nr: Map, old, new) -> Map:
    """list_del from `old` and list_add to `new` (nr of both; a no-op when equal)."""
    return _add(_add(nr, old, cntv(-1)), new, cntv(1))


def _on_block(s: State, s0, m: Map, value, first_only=False, npages=None) -> Map:
    """m with every frame of the block at s0 (of npages frames, the cache's own block
    size by default; only s0 itself if first_only) set."""
    npages = block_pages(s) if npages is None else npages
    hit = (lambda q: q == s0) if first_only else (lambda q: in_pages(s0, npages, q))
    return Map(lambda q, m=m: z3.If(hit(q), value, m[q]))


def op_cache_grow(enc: Encoding, s: State) -> Step:
    """cache_grow: a new slab at colour index colour_next goes on slabs_free.

    Linux 2.6.12 mm/slab.c cache_grow (offset = colour_next; colour_next++, wrapped at
    colour; offset *= colour_off; SetPageSlab, SET_PAGE_CACHE and SET_PAGE_SLAB on
    each of the 1 << gfporder pages), alloc_slabmgmt (on-slab: colouroff = offset +
    slab_size, s_mem = slab start + colouroff; off-slab: the struct slab mg0 is a
    kmem_cache_alloc of slabp_cache, a step of another cache made before this one),
    list_add_tail(slabs_free), free_objects += num.

    s0 is the block kmem_getpages returned. The page allocator's contract is the
    page condition (assumed here): the block is aligned to its order (the buddy's
    buddy_alignment) and none of its frames carries PG_slab (free_pages_check and
    prep_new_page call bad_page on a PG_slab page). An off-slab mg0 lies in a frame of
    another cache's slab."""
    s0, mg0 = z3.Const("s0", SLAB), z3.Const("mg0", BYTES)
    offset = s.colour_next << s.cshift
    coff = offset + s.mgmt if enc.grow_adds_mgmt else offset
    s_mem = slab_base(s0) + (coff if enc.grow_s_mem_after_mgmt else offset)
    nxt = s.colour_next + 1
    colour_next = z3.If(z3.UGE(nxt, s.colour), bytev(0), nxt) if enc.grow_wraps_colour else nxt
    free_objects = s.free_objects + s.num if enc.grow_counts_free_objects else s.free_objects
    first = not enc.grow_marks_every_page
    T = z3.BoolVal(True)
    post = s.but(live=s.live.store(s0, T), lst=s.lst.store(s0, lstv(FREE)),
                 inuse=s.inuse.store(s0, cntv(0)), coff=s.coff.store(s0, coff),
                 s_mem=s.s_mem.store(s0, s_mem), mg=s.mg.store(s0, mg0),
                 colour_next=colour_next, free_objects=free_objects,
                 nr=_add(s.nr, lstv(FREE), cntv(1)),
                 pg_slab=_on_block(s, s0, s.pg_slab, T, first),
                 mine=_on_block(s, s0, s.mine, T, first),
                 pslab=_on_block(s, s0, s.pslab, s0, first))
    page_cond = z3.And(is_aligned(s0, block_pages(s)), z3.Implies(
        s.off_slab, z3.And(is_lowmem_addr(mg0), s.other[pfn_of(mg0)])))
    return Step("cache_grow", z3.Not(s.live[s0]), post, [s0], [], {"s0": s0, "mg0": mg0},
                [s0], [], page_cond=page_cond,
                frame_cond=lambda p: z3.Implies(in_block(s, s0, p), z3.Not(s.pg_slab[p])),
                frame_terms=[pfn_of(mg0)])


def op_cache_grow_nomem(enc: Encoding, s: State) -> Step:
    """cache_grow when kmem_getpages fails: colour_next has already advanced."""
    nxt = s.colour_next + 1
    colour_next = z3.If(z3.UGE(nxt, s.colour), bytev(0), nxt) if enc.grow_wraps_colour else nxt
    return Step("cache_grow_nomem", z3.BoolVal(True), s.but(colour_next=colour_next), [], [])


def _take(enc: Encoding, s: State, s0, i0, cond_extra=z3.BoolVal(True)):
    """(cond, post): object i0 of a slab on slabs_partial or slabs_free is handed out;
    the slab moves to slabs_full when it is now full, else to slabs_partial."""
    k = okey(s0, i0)
    cond = z3.And(s.live[s0], s.lst[s0] != lstv(FULL), z3.ULT(idx_ext(i0), s.num),
                  z3.Not(s.alloc[k]), cond_extra)
    inuse = s.inuse[s0] + 1 if enc.alloc_counts_inuse else s.inuse[s0]
    new = z3.If(s.inuse[s0] + 1 == s.num, lstv(FULL), lstv(PARTIAL))
    post = s.but(alloc=s.alloc.store(k, z3.BoolVal(True)), inuse=s.inuse.store(s0, inuse),
                 lst=s.lst.store(s0, new), nr=_move(s.nr, s.lst[s0], new),
                 free_objects=s.free_objects - 1)
    return cond, post


def op_cache_alloc_refill(enc: Encoding, s: State) -> Step:
    """One object of cache_alloc_refill's batch: the next bufctl object of a partial slab
    (else of a free one) goes into the CPU's array cache.

    Linux 2.6.12 mm/slab.c cache_alloc_refill (slabp->inuse++, slabp->free = next
    bufctl, ac_entry(ac)[ac->avail++] = objp; list_del + list_add to slabs_full or
    slabs_partial). The condition allows any free object of any non-full slab: the
    kernel's choice is one of them. A refill from the shared array moves parked objects
    between arrays, which this abstraction does not see."""
    s0, i0 = z3.Const("s0", SLAB), z3.Const("i0", IDX)
    cond, post = _take(enc, s, s0, i0)
    post = post.but(parked=post.parked.store(okey(s0, i0), z3.BoolVal(True)))
    return Step("cache_alloc_refill", cond, post, [s0], [(s0, i0)], {"s0": s0, "i0": i0},
                [s0], [i0])


def _pop(enc: Encoding, s: State, s0, i0, cond_extra=z3.BoolVal(True)):
    """(cond, post): __cache_alloc hands out the top object of the CPU's array."""
    k = okey(s0, i0)
    parked = s.parked.store(k, z3.BoolVal(False)) if enc.pop_unparks else s.parked
    return z3.And(s.parked[k], cond_extra), s.but(parked=parked)


def op_kmem_cache_alloc(enc: Encoding, s: State) -> Step:
    """kmem_cache_alloc: __cache_alloc pops a parked object (ac_entry(ac)[--ac->avail]);
    an empty array is first refilled (cache_alloc_refill steps, cache_grow)."""
    s0, i0 = z3.Const("s0", SLAB), z3.Const("i0", IDX)
    cond, post = _pop(enc, s, s0, i0)
    return Step("kmem_cache_alloc", cond, post, [s0], [(s0, i0)], {"s0": s0, "i0": i0},
                [s0], [i0])


def op_kmalloc(enc: Encoding, s: State) -> Step:
    """kmalloc(size, flags) served by this cache: the cache is malloc_sizes[index] (or its
    DMA twin for GFP_DMA) with index the first class holding size; then as
    kmem_cache_alloc, and the object records its requested size.

    Linux 2.6.12 mm/slab.c __kmalloc (kmem_find_general_cachep's walk of malloc_sizes,
    then __cache_alloc)."""
    s0, i0 = z3.Const("s0", SLAB), z3.Const("i0", IDX)
    size, want_dma = z3.Const("size", BYTES), z3.Bool("gfp_dma")
    index = kmalloc_index(size, below=not enc.kmalloc_smallest_class)
    serves = z3.And(z3.ULE(size, bytev(MAX_OBJ_SIZE)), s.kclass == index, s.dma == want_dma)
    cond, post = _pop(enc, s, s0, i0, serves)
    k = okey(s0, i0)
    post = post.but(km=post.km.store(k, z3.BoolVal(True)), req=post.req.store(k, size))
    return Step("kmalloc", cond, post, [s0], [(s0, i0)],
                {"s0": s0, "i0": i0, "size": size, "gfp_dma": want_dma}, [s0], [i0])


def _put(enc: Encoding, s: State, s0, i0, cond_extra):
    """(cond, post): an object in use goes back on its slab's bufctl chain; the slab goes
    to slabs_free if now empty, else (back) to slabs_partial (free_block)."""
    k = okey(s0, i0)
    cond = z3.And(s.live[s0], s.alloc[k], cond_extra)
    inuse = s.inuse[s0] - 1
    other = lstv(PARTIAL) if enc.free_moves_to_partial else s.lst[s0]
    new = z3.If(inuse == cntv(0), lstv(FREE), other)
    post = s.but(alloc=s.alloc.store(k, z3.BoolVal(False)), inuse=s.inuse.store(s0, inuse),
                 lst=s.lst.store(s0, new), nr=_move(s.nr, s.lst[s0], new),
                 free_objects=s.free_objects + 1, parked=s.parked.store(k, z3.BoolVal(False)))
    return cond, post


def op_free_block(enc: Encoding, s: State) -> Step:
    """free_block for one object taken from an array (cache_flusharray, drain_array_locked,
    drain_cpu_caches): back on its slab's bufctl chain.

    Linux 2.6.12 mm/slab.c free_block (bufctl back on the chain, inuse--, list_del; to
    slabs_free when inuse reaches 0, else list_add_tail to slabs_partial; a slab emptied
    above free_limit is then destroyed: a slab_destroy step)."""
    s0, i0 = z3.Const("s0", SLAB), z3.Const("i0", IDX)
    parked = s.parked[okey(s0, i0)] if enc.free_block_takes_parked else z3.BoolVal(True)
    cond, post = _put(enc, s, s0, i0, parked)
    return Step("free_block", cond, post, [s0], [(s0, i0)], {"s0": s0, "i0": i0},
                [s0], [i0])


def _push(s: State, s0, i0):
    """(cond, post): __cache_free puts an object in use on the CPU's array (after a
    cache_flusharray if it was full: free_block steps); a kmalloc record goes."""
    k = okey(s0, i0)
    cond = z3.And(s.live[s0], s.alloc[k], z3.Not(s.parked[k]))
    return cond, s.but(parked=s.parked.store(k, z3.BoolVal(True)),
                       km=s.km.store(k, z3.BoolVal(False)))


def op_kmem_cache_free(enc: Encoding, s: State) -> Step:
    """kmem_cache_free of an object in use; a kmalloc'd object (2.6.12 allows freeing
    it through its general cache) stops being a kmalloc object, as in kfree.
    Linux 2.6.12 mm/slab.c kmem_cache_free -> __cache_free."""
    s0, i0 = z3.Const("s0", SLAB), z3.Const("i0", IDX)
    cond, post = _push(s, s0, i0)
    return Step("kmem_cache_free", cond, post, [s0], [(s0, i0)], {"s0": s0, "i0": i0},
                [s0], [i0])


def op_kfree(enc: Encoding, s: State) -> Step:
    """kfree: any object in use (found from its page), through __cache_free; its kmalloc
    record goes."""
    s0, i0 = z3.Const("s0", SLAB), z3.Const("i0", IDX)
    cond, post = _push(s, s0, i0)
    return Step("kfree", cond, post, [s0], [(s0, i0)], {"s0": s0, "i0": i0}, [s0], [i0])


def op_slab_destroy(enc: Encoding, s: State) -> Step:
    """__cache_shrink: a slab of slabs_free is unlinked (free_objects -= num) and
    slab_destroy gives its pages back: kmem_freepages clears PG_slab on each of them
    before free_pages, and the pages stop being the cache's (Linux 2.6.12 mm/slab.c).
    An off-slab struct slab goes back to slabp_cache: a step of another cache."""
    s0 = z3.Const("s0", SLAB)
    which = s.lst[s0] == lstv(FREE) if enc.destroy_only_free else s.lst[s0] != lstv(FULL)
    F = z3.BoolVal(False)
    pg_slab = _on_block(s, s0, s.pg_slab, F) if enc.destroy_clears_pg_slab else s.pg_slab
    post = s.but(live=s.live.store(s0, F), free_objects=s.free_objects - s.num,
                 nr=_add(s.nr, s.lst[s0], cntv(-1)), pg_slab=pg_slab,
                 mine=_on_block(s, s0, s.mine, F))
    return Step("slab_destroy", z3.And(s.live[s0], which), post, [s0], [], {"s0": s0},
                [s0], [])


def op_other_cache_grow(enc: Encoding, s: State) -> Step:
    """Another cache's cache_grow, seen from this cache: a block of 1 << o0 frames
    (o0 <= MAX_GFP_ORDER) becomes another cache's slab, PG_slab set. Its condition is
    cache_grow's: an aligned block with no PG_slab frame (the page allocator's
    contract). This is also the growth of slabp_cache inside an off-slab cache_grow."""
    b0, o0 = z3.Const("b0", PFN), z3.Const("o0", BYTES)
    n, T = pages_of(o0), z3.BoolVal(True)
    post = s.but(other=_on_block(s, b0, s.other, T, npages=n),
                 pg_slab=_on_block(s, b0, s.pg_slab, T, npages=n))
    return Step("other_cache_grow", z3.And(z3.ULE(o0, bytev(MAX_GFP_ORDER)), is_aligned(b0, n)),
                post, [], [], {"b0": b0, "o0": o0},
                frame_cond=lambda p: z3.Implies(in_pages(b0, n, p), z3.Not(s.pg_slab[p])),
                frame_terms=[b0])


def op_other_slab_destroy(enc: Encoding, s: State) -> Step:
    """Another cache's slab_destroy, seen from this cache: the frames of one of its
    slabs (a block of 1 << o0 frames, all another cache's) lose PG_slab and stop being
    a slab's."""
    b0, o0 = z3.Const("b0", PFN), z3.Const("o0", BYTES)
    n, F = pages_of(o0), z3.BoolVal(False)
    post = s.but(other=_on_block(s, b0, s.other, F, npages=n),
                 pg_slab=_on_block(s, b0, s.pg_slab, F, npages=n))
    return Step("other_slab_destroy", z3.ULE(o0, bytev(MAX_GFP_ORDER)), post, [], [],
                {"b0": b0, "o0": o0},
                frame_cond=lambda p: z3.Implies(in_pages(b0, n, p), s.other[p]),
                frame_terms=[b0])


OPERATIONS: dict[str, Callable[..., Step]] = {
    "cache_grow": op_cache_grow,
    "cache_grow_nomem": op_cache_grow_nomem,
    "cache_alloc_refill": op_cache_alloc_refill,
    "kmem_cache_alloc": op_kmem_cache_alloc,
    "kmalloc": op_kmalloc,
    "kmem_cache_free": op_kmem_cache_free,
    "kfree": op_kfree,
    "free_block": op_free_block,
    "slab_destroy": op_slab_destroy,
    "other_cache_grow": op_other_cache_grow,
    "other_slab_destroy": op_other_slab_destroy,
}


def initial_state(s: State):
    """kmem_cache_create (kmem_cache_init for the general caches): (cond, state).

    The geometry stays symbolic within geometry_axiom; the create-time definitions are
    the condition: left_over is what num objects and the management leave,
    colour = left_over / colour_off with colour_off = max(L1_CACHE_BYTES, align)
    = 1 << cshift, objsize = ALIGN(size, align) >= size, and a general cache of class k
    is created with size SIZES[k]. No slab, colour_next 0, counters 0; the PG_slab
    frames are exactly the other caches' (the rest of the slab layer is any state)."""
    size = z3.Const("create_size", BYTES)
    l1 = bytev(PROFILE.L1_CACHE_BYTES)
    cond = z3.And(
        s.left_over == slab_bytes(s) - s.objs - s.mgmt,
        s.colour == z3.LShR(s.left_over, s.cshift),
        s.colour_off == bytev(1) << s.cshift,
        s.colour_off == z3.If(z3.ULE(s.align, l1), l1, s.align),
        s.align & (s.align - 1) == bytev(0), z3.ULE(bytev(MIN_OBJ_SIZE), s.align),
        z3.ULE(size, s.objsize),
        z3.Implies(z3.ULT(s.kclass, clsv(NCLASS)), size == size_of_class(s.kclass)))
    F = z3.BoolVal(False)
    post = s.but(colour_next=bytev(0), free_objects=cntv(0), nr=const_map(cntv(0)),
                 live=const_map(F), alloc=const_map(F), km=const_map(F),
                 parked=const_map(F), mine=const_map(F), pg_slab=Map(lambda q, o=s.other: o[q]))
    return cond, post


# --- counting ---------------------------------------------------------------------------

def ind(b):
    return z3.If(b, cntv(1), cntv(0))


def slab_weight(s: State, sid):
    """What slab sid adds to free_objects."""
    return z3.If(s.live[sid], s.num - s.inuse[sid], cntv(0))


def count_formulas(s: State, support: dict) -> dict:
    """The counting conjuncts on a concrete state as Z3 formulas: `support` maps every
    live slab id to the object indices at which alloc may be true (outside them the
    concrete map is false). Proofs use delta equations instead."""
    inuse, free, per_list = [], cntv(0), [cntv(0)] * 3
    for sid, idxs in support.items():
        sv = z3.BitVecVal(sid, SLAB_BITS)
        n = cntv(0)
        for i in idxs:
            n = n + ind(s.alloc[okey(sv, z3.BitVecVal(i, IDX_BITS))])
        inuse.append(z3.Implies(s.live[sv], s.inuse[sv] == n))
        free = free + slab_weight(s, sv)
        per_list = [c + ind(z3.And(s.live[sv], s.lst[sv] == lstv(L)))
                    for L, c in enumerate(per_list)]
    live = z3.Const("x.slab", SLAB)
    outside = z3.ForAll([live], z3.Implies(
        z3.And(*[live != z3.BitVecVal(sid, SLAB_BITS) for sid in support]),
        z3.Not(s.live[live])))
    return {"inuse_count": z3.And(outside, *inuse),
            "free_objects": z3.And(outside, s.free_objects == free),
            "list_nr": z3.And(outside, *[s.nr[lstv(L)] == per_list[L] for L in range(3)])}


# --- concrete states ----------------------------------------------------------------------

@dataclass
class Concrete:
    """A finite cache state: the abstraction of a running cache (`alpha`) or a lifted
    counterexample. Slabs and objects not listed are dead / not in use."""

    geometry: dict                 # GEOMETRY name -> int (bool for off_slab, dma)
    colour_next: int
    free_objects: int
    nr: tuple                      # slabs on (full, partial, free), as the counters say
    slabs: dict                    # live slab id -> {"lst", "inuse", "coff", "s_mem", "mg"}
    objects: dict                  # (slab id, index) -> {"alloc", "km", "req"}
    frames: dict = field(default_factory=dict)   # pfn -> FRAME_MAPS values (else all off)

    def support(self) -> dict:
        """Live slab id -> indices at which alloc may be true."""
        out = {sid: set() for sid in self.slabs}
        for (sid, i), o in self.objects.items():
            if o["alloc"]:
                out.setdefault(sid, set()).add(i)
        return {sid: sorted(v) for sid, v in out.items()}


_GEO_SORTS = {"num": CNT, "kclass": CLS}
_SLAB_DEFAULT = {"lst": 0, "inuse": 0, "coff": 0, "s_mem": 0, "mg": 0}
_OBJ_DEFAULT = {"alloc": False, "km": False, "req": 0, "parked": False}
_FRAME_DEFAULT = {"pg_slab": False, "mine": False, "pslab": 0, "other": False}


def _val(sort, v):
    if sort == z3.BoolSort():
        return z3.BoolVal(bool(v))
    return z3.BitVecVal(v, sort.size())


def _array_map(dom, rng, default, table: dict) -> Map:
    arr = z3.K(dom, _val(rng, default))
    for k, v in table.items():
        arr = z3.Store(arr, z3.BitVecVal(k, dom.size()), _val(rng, v))
    return Map(lambda q, a=arr: a[q])


def to_state(c: Concrete) -> State:
    """The Z3 state of a concrete cache (maps as constant arrays with stores)."""
    g = {}
    for name in GEOMETRY:
        if name in ("off_slab", "dma"):
            g[name] = z3.BoolVal(bool(c.geometry[name]))
        else:
            g[name] = _val(_GEO_SORTS.get(name, BYTES), c.geometry[name])
    B = z3.BoolSort()
    slab_sorts = {"live": B, "lst": LST, "inuse": CNT, "coff": BYTES, "s_mem": BYTES,
                  "mg": BYTES}
    maps = {"live": _array_map(SLAB, B, False, {sid: True for sid in c.slabs})}
    for name in SLAB_MAPS[1:]:
        maps[name] = _array_map(SLAB, slab_sorts[name], _SLAB_DEFAULT[name],
                                {sid: v[name] for sid, v in c.slabs.items()})
    frame_sorts = {"pg_slab": B, "mine": B, "pslab": SLAB, "other": B}
    for name in FRAME_MAPS:
        maps[name] = _array_map(PFN, frame_sorts[name], _FRAME_DEFAULT[name],
                                {p: v[name] for p, v in c.frames.items() if v[name]})
    obj_sorts = {"alloc": B, "km": B, "req": BYTES, "parked": B}
    for name in OBJ_MAPS:
        maps[name] = _array_map(OBJ, obj_sorts[name], _OBJ_DEFAULT[name],
                                {(sid << IDX_BITS) | i: v[name]
                                 for (sid, i), v in c.objects.items() if v[name]})
    return State(**g, colour_next=bytev(c.colour_next), free_objects=cntv(c.free_objects),
                 nr=_array_map(LST, CNT, 0, dict(enumerate(c.nr))), **maps)


def alpha(machine, cachep) -> Concrete:
    """The abstract state of one cache of a running machine (between kernel calls).

    alloc[s, i]: index i < num is not on slab s's bufctl free chain; km/req: the
    machine's kmalloc records of objects of this cache; frames: PG_slab from mem_map,
    mine/pslab/other from page_slab (the page->lru back pointers)."""
    from ..model.mem_map import PG_slab
    from ..model.slab import CFLGS_OFF_SLAB

    state = machine.slab
    off = bool(cachep.flags & CFLGS_OFF_SLAB)
    if cachep in state.malloc_sizes:
        kclass, dma = state.malloc_sizes.index(cachep), False
    elif cachep in state.malloc_sizes_dma:
        kclass, dma = state.malloc_sizes_dma.index(cachep), True
    else:
        kclass, dma = NCLASS, False
    co = cachep.colour_off
    geometry = {"objsize": cachep.objsize, "align": cachep.align, "colour_off": co,
                "cshift": max(co.bit_length() - 1, 0), "gfporder": cachep.gfporder,
                "num": cachep.num, "objs": cachep.num * cachep.objsize,
                "mgmt": 0 if off else cachep.slab_size, "off_slab": off,
                "left_over": cachep.left_over, "colour": cachep.colour,
                "kclass": kclass, "dma": dma}
    slabs, objects = {}, {}
    for sid, slab in cachep.slabs.items():
        slabs[sid] = {"lst": slab.list, "inuse": slab.inuse, "coff": slab.colouroff,
                      "s_mem": slab.s_mem, "mg": slab.mgmt or 0}
        chain, idx, seen = set(), slab.free, 0
        while idx != cachep.BUFCTL_END and seen <= cachep.num:
            chain.add(idx)
            idx = slab.bufctl[idx] if 0 <= idx < cachep.num else cachep.BUFCTL_END
            seen += 1
        for i in range(cachep.num):
            if i not in chain:
                objects[(sid, i)] = {"alloc": True, "km": False, "req": 0, "parked": False}
    profile = machine.profile
    # an offline CPU (cpu_down) has no array: None in its slot
    arrays = [ac for ac in [*(cachep.array or []), cachep.shared_array] if ac is not None]
    for ac in arrays:
        for addr in ac.entry:
            slab = state.page_slab.get((addr - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT)
            i = (addr - slab.s_mem) // cachep.objsize
            o = objects.setdefault((slab.id, i), {"alloc": False, "km": False, "req": 0,
                                                  "parked": False})
            o["parked"] = True
    for addr, req in state.kmalloc_req.items():
        slab = state.page_slab.get((addr - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT)
        if slab is None or slab.cache is not cachep:
            continue
        i = (addr - slab.s_mem) // cachep.objsize
        o = objects.setdefault((slab.id, i), {"alloc": False, "km": False, "req": 0,
                                              "parked": False})
        o["km"], o["req"] = True, req
    frames = {}
    for pfn, f in enumerate(machine.mem_map.flags):
        if f & PG_slab:
            frames[pfn] = dict(_FRAME_DEFAULT, pg_slab=True)
    for pfn, slab in state.page_slab.items():
        v = frames.setdefault(pfn, dict(_FRAME_DEFAULT))
        if slab.cache is cachep:
            v["mine"], v["pslab"] = True, slab.id
        else:
            v["other"] = True
    return Concrete(geometry, cachep.colour_next, cachep.free_objects,
                    tuple(lst.nr for lst in cachep.lists), slabs, objects, frames)


def invariant_formula(s: State, name: str, support: dict):
    """One invariant on a concrete state: ForAll over all slab ids, object keys, frames
    and slab pairs, the counting conjuncts as sums over `support` (Concrete.support())."""
    sid, key = z3.Const("x.s", SLAB), z3.Const("x.key", OBJ)
    sid2, pfn = z3.Const("x.s2", SLAB), z3.Const("x.p", PFN)
    parts = []
    counts = None
    for c in conjuncts(name):
        if c.kind == "cache":
            parts.append(c.body(s))
        elif c.kind == "slab":
            parts.append(z3.ForAll([sid], c.body(s, sid)))
        elif c.kind == "frame":
            parts.append(z3.ForAll([pfn], c.body(s, pfn)))
        elif c.kind == "slab_frame":
            parts.append(z3.ForAll([sid, pfn], c.body(s, sid, pfn)))
        elif c.kind == "pair":
            parts.append(z3.ForAll([sid, sid2], c.body(s, sid, sid2)))
        elif c.kind == "object":
            parts.append(z3.ForAll([key], c.body(s, z3.Extract(SLAB_BITS + IDX_BITS - 1,
                                                               IDX_BITS, key),
                                                 z3.Extract(IDX_BITS - 1, 0, key))))
        else:
            counts = counts or count_formulas(s, support)
            parts.append(counts[c.label])
    return z3.And(*parts)


def invariant_holds(s: State, name: str, support: dict) -> bool:
    return valid(invariant_formula(s, name, support))


def _domain(name: str):
    return {"nr": LST, **{n: SLAB for n in SLAB_MAPS}, **{n: OBJ for n in OBJ_MAPS},
            **{n: PFN for n in FRAME_MAPS}}[name]


def bind(s: State, subs) -> State:
    """Substitute concrete values for an operation's parameters in a state. A map's
    body is bound at a fresh index, so a later step's parameters of the same name
    (read through the index) are not captured."""
    if not subs:
        return s
    out = {}
    for name, value in s.items():
        if isinstance(value, Map):
            x = z3.FreshConst(_domain(name), "bind")
            body = z3.substitute(value[x], *subs)
            out[name] = Map(lambda q, x=x, body=body: z3.substitute(body, (x, q)))
        else:
            out[name] = z3.substitute(value, *subs)
    return State(**out)


def apply(enc: Encoding, op: str, s: State, **params) -> tuple[bool, State]:
    """(cond holds, post state) of one encoded operation on a concrete state."""
    step = OPERATIONS[op](enc, s)
    subs = [(step.params[k], v) for k, v in params.items()]
    cond = step.cond if step.page_cond is None else z3.And(step.cond, step.page_cond)
    if step.frame_cond is not None:
        p = z3.Const("x.p", PFN)
        cond = z3.And(cond, z3.ForAll([p], step.frame_cond(p)))
    cond = z3.simplify(z3.substitute(cond, *subs) if subs else cond)
    if not (z3.is_true(cond) or z3.is_false(cond)):
        cond = z3.BoolVal(valid(cond))
    return z3.is_true(cond), bind(step.post, subs)


def states_equal(a: State, b: State) -> list[str]:
    """The fields in which two concrete states differ (maps compared everywhere)."""
    doms = {name: _domain(name) for name, v in a.items() if isinstance(v, Map)}
    live_a, live_b = a.live, b.live
    checks = {}
    for name, va in a.items():
        vb = getattr(b, name)
        if isinstance(va, Map):
            x = z3.Const(f"x.{name}", doms[name])
            same = va[x] == vb[x]
            if name in SLAB_MAPS[1:]:
                # a dead slab's leftover fields mean nothing
                same = z3.Or(same, z3.And(z3.Not(live_a[x]), z3.Not(live_b[x])))
            if name == "req":
                same = z3.Or(same, z3.And(z3.Not(a.km[x]), z3.Not(b.km[x])))
            if name == "pslab":
                same = z3.Or(same, z3.And(z3.Not(a.mine[x]), z3.Not(b.mine[x])))
            checks[name] = z3.ForAll([x], same)
        else:
            checks[name] = va == vb
    if valid(z3.And(*checks.values())):
        return []
    return [name for name, same in checks.items() if not valid(same)]
