"""Z3 encoding of 2.6.12's per-CPU page lists on top of the buddy encoding.

The state is spec/z3_buddy.py's `State` plus the per-CPU lists (`PState`); the buddy
operations are reused unchanged (they write no per-CPU field) and the per-CPU
operations are added, each kernel loop one step at a time as in the buddy encoding.
Prose: spec/proofs_pcp.md. Kernel: Linux 2.6.12 mm/page_alloc.c (`buffered_rmqueue`,
`rmqueue_bulk`, `free_hot_cold_page`, `free_pages_bulk`, `__drain_pages`,
`drain_local_pages`, `free_area_init_core`'s pageset values, `zone_watermark_ok`).

Added state:

  pcp[p]             p is on a per-CPU list (the lists are abstracted, as the free
                     lists are, as "frames marked with their list")
  pcp_zone[p], pcp_lid[p]
                     which list: the zone whose pageset holds it and 2*cpu + cold
                     (NR_CPUS = 8: 16 lists per zone, a 4-bit id)
  pcnt[L]            per_cpu_pages.count of list L = (zone, lid)
  plow, phigh, pbatch[L]
                     its low, high and batch (static: free_area_init_core)
  rf, rf_key, rf_left
                     rmqueue_bulk is refilling list rf_key; rf_left more __rmqueue
                     calls may still run (the loop's `count - i`)
  dr, dr_key, dr_left
                     free_pages_bulk is emptying list dr_key from its tail with at
                     most dr_left more frames to move (its `count` argument)
  pend, pend_pfn     free_hot_cold_page found its list at `high` and is draining
                     `batch` frames first; pend_pfn goes on the list afterwards

Kernel loops as steps (each an operation, with the invariant as loop invariant):

  buffered_rmqueue, order 0:  [pcp_refill_start ; (rmqueue(order 0) ;
                               pcp_refill_add)* ; pcp_refill_end] ; pcp_alloc
  free_hot_cold_page:         pcp_free                       (count < high), or
                              pcp_free_drain ; (pcp_drain_step ; merge_step* ;
                              free_finish)* ; pcp_free_finish  (count >= high)
  __drain_pages / drain_local_pages, per list:
                              pcp_drain_start ; (pcp_drain_step ; merge_step* ;
                              free_finish)* ; pcp_drain_end

The kernel runs a list's loop with interrupts off (free_pages_bulk and rmqueue_bulk
under zone->lock), so the per-CPU operations require that no other per-CPU loop is
running; the buddy operations may interleave anywhere (an over-approximation).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import z3

from . import z3_buddy as zb
from .z3_buddy import (CNT_BITS, ZID_BITS, Conjunct, Sorts, State, Step, cntv, const_map,
                       fn_map, ordv, zidv)

LID_BITS = 4              # 2 * cpu + cold, cpu < NR_CPUS = 8 (include/linux/threads.h)
LKEY_BITS = ZID_BITS + LID_BITS
LID = z3.BitVecSort(LID_BITS)
LKEY = z3.BitVecSort(LKEY_BITS)
HIGH_CAP = 1 << 30        # axiom: high < 2^30 (2.6.12: high = 6 * batch, batch <= 16)


@dataclass(frozen=True)
class PcpEncoding:
    """How the per-CPU operations behave. Every field True is Linux 2.6.12; False seeds
    a bug (tests/test_z3_pcp.py watches `prove` refute the obligation it breaks)."""

    # rmqueue_bulk: the refilled frame goes on the list being refilled, of its own
    # zone's pageset (else on zone 0's)
    refill_own_zone: bool = True
    # free_hot_cold_page: pcp->count++ after list_add
    free_counts: bool = True
    # free_hot_cold_page: drain `batch` first when count >= high (else add anyway)
    free_drains_at_high: bool = True
    # buffered_rmqueue: refill only when count <= low (else at any count)
    refill_only_at_low: bool = True
    # free_pages_bulk: the frame goes back through __free_pages_bulk, i.e. the merge
    # loop (else it is listed as a free order-0 block at once, without merging)
    drain_merges: bool = True
    # free_area_init_core: hot list low 2*batch, high 6*batch (else high 2*batch:
    # a refill at low could overshoot high)
    hot_high_6_batch: bool = True
    # buffered_rmqueue: list_del of the frame it takes (else it stays listed)
    alloc_unlists: bool = True
    # buffered_rmqueue -> prep_new_page: set_page_count(page, 1)
    alloc_sets_count: bool = True
    # rmqueue_bulk: the frame __rmqueue handed out is on the list and nowhere else
    # (else it is also left as the block in flight)
    refill_ends_flight: bool = True
    # list loops do not nest: __drain_pages runs with interrupts off, not inside a
    # refill (else a drain may start while rmqueue_bulk is still filling a list)
    loops_exclusive: bool = True
    # free_all_bootmem_core / one_highpage_init: set_page_refs(page, 0) gives the
    # released frame _count 1 before __free_page drops it (else it keeps its count)
    bootmem_hot_sets_count: bool = True
    # ... and releases only a frame the bootmem bitmap had free, i.e. reserved until now
    # (else any frame)
    bootmem_hot_checks_reserved: bool = True
    # ... of a zone (the node's frames all are; else a frame in no zone, a hole)
    bootmem_hot_checks_zone: bool = True
    # the release leaves zone->free_pages alone: per-CPU frames are not counted free
    # (else it counts the frame free at release)
    bootmem_hot_leaves_free_pages: bool = True
    # __free_page goes through free_hot_cold_page (else the frame is listed on the
    # buddy lists as a free order-0 block at once, without merging)
    bootmem_hot_via_pcp: bool = True


SEEDED_BUGS = {
    "pcp_refill_wrong_zone": ("refill_own_zone", "rmqueue_bulk lists the frame on zone "
                              "0's list whatever its zone"),
    "pcp_free_no_count": ("free_counts", "free_hot_cold_page does not count the frame"),
    "pcp_free_no_drain_at_high": ("free_drains_at_high", "free_hot_cold_page adds at "
                                  "count >= high without draining batch first"),
    "pcp_refill_above_low": ("refill_only_at_low", "buffered_rmqueue refills at any "
                             "count, not only at count <= low"),
    "pcp_drain_no_merge": ("drain_merges", "free_pages_bulk lists the drained frame as a "
                           "free order-0 block without the merge loop"),
    "pcp_hot_high_2_batch": ("hot_high_6_batch", "the hot list's high is 2*batch, as low"),
    "pcp_alloc_stays_listed": ("alloc_unlists", "buffered_rmqueue hands out the frame but "
                               "leaves it on the per-CPU list"),
    "pcp_alloc_no_count": ("alloc_sets_count", "buffered_rmqueue's frame gets no reference"),
    "pcp_refill_stays_in_flight": ("refill_ends_flight", "rmqueue_bulk lists the frame but "
                                   "leaves it as the block in flight too"),
    "pcp_drain_inside_refill": ("loops_exclusive", "__drain_pages may start while "
                                "rmqueue_bulk is filling a list"),
    "pcp_bootmem_hot_no_count": ("bootmem_hot_sets_count", "a frame released at boot "
                                 "for free_hot_page keeps its count (no set_page_refs)"),
    "pcp_bootmem_hot_any_frame": ("bootmem_hot_checks_reserved", "boot releases a frame "
                                  "that was not reserved"),
    "pcp_bootmem_hot_no_zone": ("bootmem_hot_checks_zone", "boot releases a frame in no "
                                "zone"),
    "pcp_bootmem_hot_counts_free": ("bootmem_hot_leaves_free_pages", "boot's release "
                                    "counts the frame in zone->free_pages"),
    "pcp_bootmem_hot_to_buddy": ("bootmem_hot_via_pcp", "boot lists the released frame "
                                 "on the buddy lists at order 0 without merging"),
}


def seeded(bug: str) -> PcpEncoding:
    return zb.seeded_encoding(PcpEncoding, SEEDED_BUGS, bug)


# --- state -------------------------------------------------------------------------

PCP_FIELDS = ("pcp", "pcp_zone", "pcp_lid", "pcnt", "plow", "phigh", "pbatch",
              "rf", "rf_key", "rf_left", "dr", "dr_key", "dr_left", "pend", "pend_pfn")


@dataclass(frozen=True)
class PState(State):
    pcp: zb.Map = None
    pcp_zone: zb.Map = None
    pcp_lid: zb.Map = None
    pcnt: zb.Map = None
    plow: zb.Map = None
    phigh: zb.Map = None
    pbatch: zb.Map = None
    rf: z3.BoolRef = None
    rf_key: z3.BitVecRef = None
    rf_left: z3.BitVecRef = None
    dr: z3.BoolRef = None
    dr_key: z3.BitVecRef = None
    dr_left: z3.BitVecRef = None
    pend: z3.BoolRef = None
    pend_pfn: z3.BitVecRef = None


def fresh_state(S: Sorts, prefix: str) -> PState:
    base = zb.fresh_state(S, prefix)
    A = lambda n, d, r: fn_map(f"{prefix}{n}", d, r)   # noqa: E731
    C = lambda n, srt: z3.Const(f"{prefix}{n}", srt)   # noqa: E731
    return PState(**{f.name: getattr(base, f.name) for f in fields(State)},
                  pcp=A("pcp", S.PFN, z3.BoolSort()), pcp_zone=A("pcp_zone", S.PFN, S.ZID),
                  pcp_lid=A("pcp_lid", S.PFN, LID), pcnt=A("pcnt", LKEY, S.CNT),
                  plow=A("plow", LKEY, S.CNT), phigh=A("phigh", LKEY, S.CNT),
                  pbatch=A("pbatch", LKEY, S.CNT),
                  rf=z3.Bool(f"{prefix}rf"), rf_key=C("rf_key", LKEY),
                  rf_left=C("rf_left", S.CNT), dr=z3.Bool(f"{prefix}dr"),
                  dr_key=C("dr_key", LKEY), dr_left=C("dr_left", S.CNT),
                  pend=z3.Bool(f"{prefix}pend"), pend_pfn=C("pend_pfn", S.PFN))


ZONE_BATCH = z3.Function("zone_batch", z3.BitVecSort(ZID_BITS), z3.BitVecSort(CNT_BITS))
BATCH_CAP = 1 << 20       # boot assumption: a zone's batch is 1..2^20 (2.6.12: <= 16)


def initial_state(S: Sorts, s: PState, enc: "PcpEncoding | None" = None) -> PState:
    """The buddy boot state with every list empty (free_area_init_core: count 0), no
    loop running, and each list's low/high/batch from its zone's batch (symbolic,
    ZONE_BATCH) as free_area_init_core sets them."""
    enc = enc or PcpEncoding()
    b = zb.initial_state(S, s)

    def param(i):
        def base(L):
            batch = ZONE_BATCH(lzone(L))
            cold = z3.Extract(0, 0, llid(L)) == z3.BitVecVal(1, 1)
            hot = pageset_values(batch, True, enc)
            cool = pageset_values(batch, False, enc)
            return z3.If(cold, cool[i], hot[i])
        return zb.Map(base)
    return replace(b, pcp=const_map(z3.BoolVal(False)), pcnt=const_map(cntv(0)),
                   plow=param(0), phigh=param(1), pbatch=param(2),
                   rf=z3.BoolVal(False), dr=z3.BoolVal(False), pend=z3.BoolVal(False))


def boot_assumption(L):
    b = ZONE_BATCH(lzone(L))
    return z3.And(z3.UGE(b, cntv(1)), z3.ULE(b, cntv(BATCH_CAP)))


def lkey(z, lid):
    return z3.Concat(z, lid)


def lzone(L):
    return z3.Extract(LKEY_BITS - 1, LID_BITS, L)


def llid(L):
    return z3.Extract(LID_BITS - 1, 0, L)


def key_of(s: PState, p):
    """The list frame p is on (meaningful when pcp[p])."""
    return lkey(s.pcp_zone[p], s.pcp_lid[p])


def wide(x):
    return z3.ZeroExt(2, x)


# --- the pageset parameters (static once booted) --------------------------------------

def _pageset(S, s: PState, L):
    """What free_area_init_core's values give every list (proved at boot, kept because
    no operation writes them): batch >= 1, low + batch <= high (a refill at low cannot
    pass high), high below 2^30."""
    return z3.And(z3.UGE(s.pbatch[L], cntv(1)),
                  z3.ULT(s.phigh[L], cntv(HIGH_CAP)),
                  z3.ULE(wide(s.plow[L]) + wide(s.pbatch[L]), wide(s.phigh[L])))


def pageset_values(batch, hot: bool, enc: PcpEncoding = PcpEncoding()):
    """(low, high, batch) of a hot or cold list for a zone batch (2.6.12
    free_area_init_core): hot 2b, 6b, b; cold 0, 2b, b."""
    if hot:
        high = 6 * batch if enc.hot_high_6_batch else 2 * batch
        return 2 * batch, high, batch
    return 0 * batch, 2 * batch, batch


# --- invariant conjuncts -------------------------------------------------------------

def _on_list_free(S, s, p):
    return z3.Implies(s.pcp[p], z3.And(
        z3.Not(s.buddy[p]), z3.Not(s.alloc[p]), z3.Not(z3.And(s.fl, s.fl_pfn == p)),
        z3.Not(s.reserved[p]), s.count[p] == cntv(0)))


def _on_list_zone(S, s, p):
    return z3.Implies(s.pcp[p], z3.And(s.zone[p] != zidv(zb.NO_ZONE),
                                       s.pcp_zone[p] == s.zone[p]))


def _outside_blocks(S, s, h, q):
    return z3.Implies(zb.inside(S, s, h, q), z3.Not(s.pcp[q]))


def _count_bound(S, s, L):
    """count <= high, counting what a running refill may still add."""
    pending = z3.If(z3.And(s.rf, s.rf_key == L), wide(s.rf_left), wide(cntv(0)))
    return z3.ULE(wide(s.pcnt[L]) + pending, wide(s.phigh[L]))


def _loops(S, s):
    """At most one list loop runs; a free waiting on its drain will find room."""
    room = z3.Or(z3.ULT(s.pcnt[s.dr_key], s.phigh[s.dr_key]),
                 z3.And(s.pcnt[s.dr_key] == s.phigh[s.dr_key], z3.UGE(s.dr_left, cntv(1))))
    return z3.And(z3.Not(z3.And(s.rf, s.dr)), z3.Implies(s.pend, z3.And(s.dr, room)))


# kinds: "pfn", "pair" as in z3_buddy; "list": body(S, s, L) for every list key;
# "ground": body(S, s); "count": by delta equations
CONJUNCTS: list[Conjunct] = [
    Conjunct("pcp_lists", "pageset", "every list has batch >= 1 and low + batch <= high "
             "(free_area_init_core's values)", "list", _pageset),
    Conjunct("pcp_lists", "on_list_free", "a frame on a per-CPU list is on no buddy list, "
             "heads no allocated or in-flight block, is unreserved with _count 0", "pfn",
             _on_list_free),
    Conjunct("pcp_lists", "on_list_zone", "a frame on a per-CPU list is in a zone, and on "
             "that zone's pageset", "pfn", _on_list_zone),
    Conjunct("pcp_lists", "outside_blocks", "no block (free, allocated or in flight) "
             "contains a frame on a per-CPU list: listed frames are order 0 and overlap "
             "nothing", "pair", _outside_blocks),
    Conjunct("pcp_lists", "count_bound", "every list's count (plus what a running refill "
             "may still add) is at most its high", "list", _count_bound),
    Conjunct("pcp_lists", "loops", "at most one list loop runs; a free waiting for its "
             "drain will find count < high", "ground", _loops),
    Conjunct("pcp_lists", "count", "every list's count = the number of frames on it",
             "count"),
    Conjunct("pcp_lists", "roles", "reserved frames + frames in blocks + frames on per-CPU "
             "lists = nr_pages (replaces the buddy layer's conservation.roles)", "count"),
]

INVARIANTS = ["pcp_lists"]

# The buddy invariants whose formulas the per-CPU operations must keep; in this
# encoding conservation's `roles` is replaced by pcp_lists.roles.
BUDDY_INVARIANTS = ["no_overlap", "buddy_alignment", "merge_completeness", "conservation",
                    "page_state"]


def buddy_conjuncts(invariant: str) -> list[Conjunct]:
    return [c for c in zb.conjuncts(invariant)
            if not (c.invariant == "conservation" and c.label == "roles")]


# --- operations ----------------------------------------------------------------------

def _idle(s):
    return z3.And(z3.Not(s.fl), z3.Not(s.rf), z3.Not(s.dr))


def _set(m, i, v):
    return m.store(i, v)


def op_pcp_refill_start(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """buffered_rmqueue: count <= low, so rmqueue_bulk(zone, 0, batch, &pcp->list)."""
    L = z3.Const("L", LKEY)
    cond = _idle(s)
    if enc.refill_only_at_low:
        cond = z3.And(cond, z3.ULE(s.pcnt[L], s.plow[L]))
    post = s.but(rf=z3.BoolVal(True), rf_key=L, rf_left=s.pbatch[L])
    return Step("pcp_refill_start", cond, post, [], {"L": L}, [])


def op_pcp_refill_add(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """rmqueue_bulk: the order-0 frame __rmqueue just handed out (rmqueue ; expand_step*
    in the buddy encoding) goes on the tail of the list; count grows (the kernel adds
    the total at the end: the same count when the loop ends)."""
    h0 = s.fl_pfn
    z = s.zone[h0]
    L = s.rf_key
    cond = z3.And(s.fl, s.fl_alloc, s.fl_order == ordv(0), s.fl_target == ordv(0), s.rf,
                  z3.UGT(s.rf_left, cntv(0)), lzone(L) == z)
    pz = z if enc.refill_own_zone else zidv(0)
    post = s.but(pcp=_set(s.pcp, h0, z3.BoolVal(True)), pcp_zone=_set(s.pcp_zone, h0, pz),
                 pcp_lid=_set(s.pcp_lid, h0, llid(L)),
                 pcnt=_set(s.pcnt, lkey(pz, llid(L)), s.pcnt[lkey(pz, llid(L))] + 1),
                 rf_left=s.rf_left - 1, fl=z3.BoolVal(not enc.refill_ends_flight))
    return Step("pcp_refill_add", cond, post, [h0], {}, [h0])


def op_pcp_refill_end(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """rmqueue_bulk returns: after `batch` frames or when __rmqueue finds nothing (any
    time, so both are covered)."""
    cond = z3.And(s.rf, z3.Not(s.fl))
    return Step("pcp_refill_end", cond, s.but(rf=z3.BoolVal(False)), [], {}, [])


def op_pcp_alloc(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """buffered_rmqueue: pcp->count is not 0, so a frame is taken off the list (any
    frame: the kernel's list head is one) and prep_new_page gives it one reference.
    (count > 0 is the kernel's test; with pcp_lists.count it is "the list is not
    empty".)"""
    q = z3.Const("q", S.PFN)
    L = key_of(s, q)
    cond = z3.And(_idle(s), s.pcp[q], z3.UGT(s.pcnt[L], cntv(0)))
    post = s.but(pcp=_set(s.pcp, q, z3.BoolVal(not enc.alloc_unlists)),
                 pcnt=_set(s.pcnt, L, s.pcnt[L] - 1),
                 alloc=_set(s.alloc, q, z3.BoolVal(True)), aorder=_set(s.aorder, q, ordv(0)),
                 count=_set(s.count, q, cntv(1)) if enc.alloc_sets_count else s.count)
    return Step("pcp_alloc", cond, post, [q], {"q": q}, [q])


def _free_args(S, s):
    h = z3.Const("h", S.PFN)
    lid = z3.Const("lid", LID)
    return h, lid, lkey(s.zone[h], lid)


def _freeable(s, h):
    """__free_pages(page, 0) dropping the last reference of an order-0 block."""
    return z3.And(s.alloc[h], s.aorder[h] == ordv(0), s.count[h] == cntv(1))


def _list_add(enc, s, h, L, **more):
    pcnt = _set(s.pcnt, L, s.pcnt[L] + 1) if enc.free_counts else s.pcnt
    return s.but(pcp=_set(s.pcp, h, z3.BoolVal(True)), pcp_zone=_set(s.pcp_zone, h, lzone(L)),
                 pcp_lid=_set(s.pcp_lid, h, llid(L)), pcnt=pcnt,
                 alloc=_set(s.alloc, h, z3.BoolVal(False)), aorder=_set(s.aorder, h, ordv(0)),
                 count=_set(s.count, h, cntv(0)), **more)


def op_pcp_free(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """free_hot_cold_page with count < high: list_add at the head, count++."""
    h, lid, L = _free_args(S, s)
    cond = z3.And(_idle(s), _freeable(s, h))
    if enc.free_drains_at_high:
        cond = z3.And(cond, z3.ULT(s.pcnt[L], s.phigh[L]))
    return Step("pcp_free", cond, _list_add(enc, s, h, L), [h], {"h": h, "lid": lid}, [h])


def op_pcp_free_drain(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """free_hot_cold_page with count >= high: free_pages_bulk(zone, batch, list) first."""
    h, lid, L = _free_args(S, s)
    cond = z3.And(_idle(s), _freeable(s, h), z3.UGE(s.pcnt[L], s.phigh[L]))
    post = s.but(dr=z3.BoolVal(True), dr_key=L, dr_left=s.pbatch[L], pend=z3.BoolVal(True),
                 pend_pfn=h)
    return Step("pcp_free_drain", cond, post, [], {"h": h, "lid": lid}, [h])


def op_pcp_free_finish(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """free_hot_cold_page after its drain (batch frames moved or the list empty):
    list_add, count++."""
    h, L = s.pend_pfn, s.dr_key
    cond = z3.And(z3.Not(s.fl), s.dr, s.pend,
                  z3.Or(s.dr_left == cntv(0), s.pcnt[L] == cntv(0)),
                  _freeable(s, h), s.zone[h] == lzone(L))
    post = _list_add(enc, s, h, L, dr=z3.BoolVal(False), pend=z3.BoolVal(False))
    return Step("pcp_free_finish", cond, post, [h], {}, [h])


def op_pcp_drain_start(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """__drain_pages (drain_local_pages, or a CPU going down): for each list,
    free_pages_bulk(zone, pcp->count, list); one list per step."""
    L = z3.Const("L", LKEY)
    post = s.but(dr=z3.BoolVal(True), dr_key=L, dr_left=s.pcnt[L], pend=z3.BoolVal(False))
    cond = _idle(s) if enc.loops_exclusive else z3.And(z3.Not(s.fl), z3.Not(s.dr))
    return Step("pcp_drain_start", cond, post, [], {"L": L}, [])


def op_pcp_drain_step(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """One iteration of free_pages_bulk: a frame leaves the list (any frame: the
    kernel's tail is one) and enters __free_pages_bulk at order 0 (free_pages += 1;
    merge_step* ; free_finish follow). The kernel lowers count by the total at the
    end; here one at a time (the same count when the loop ends)."""
    q = z3.Const("q", S.PFN)
    L = s.dr_key
    cond = z3.And(z3.Not(s.fl), s.dr, z3.UGT(s.dr_left, cntv(0)), z3.UGT(s.pcnt[L], cntv(0)),
                  s.pcp[q], key_of(s, q) == L)
    z = s.zone[q]
    common = dict(pcp=_set(s.pcp, q, z3.BoolVal(False)), pcnt=_set(s.pcnt, L, s.pcnt[L] - 1),
                  dr_left=s.dr_left - 1, free_pages=zb._add(s.free_pages, z, cntv(1)))
    if enc.drain_merges:
        post = s.but(fl=z3.BoolVal(True), fl_alloc=z3.BoolVal(False), fl_pfn=q,
                     fl_order=ordv(0), **common)
    else:
        post = s.but(buddy=_set(s.buddy, q, z3.BoolVal(True)), order=_set(s.order, q, ordv(0)),
                     nr_free=zb._add(s.nr_free, zb.key(z, ordv(0)), cntv(1)), **common)
    return Step("pcp_drain_step", cond, post, [q], {"q": q}, [q])


def op_pcp_drain_end(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """free_pages_bulk returns for __drain_pages: its count reached or the list empty."""
    cond = z3.And(z3.Not(s.fl), s.dr, z3.Not(s.pend),
                  z3.Or(s.dr_left == cntv(0), s.pcnt[s.dr_key] == cntv(0)))
    return Step("pcp_drain_end", cond, s.but(dr=z3.BoolVal(False)), [], {}, [])


def op_free_bootmem_hot(S, enc: PcpEncoding, s: PState, case=None) -> Step:
    """Boot's single-frame release (2.6.12 mm/bootmem.c free_all_bootmem_core for a
    frame of a partly free bitmap word, arch/i386/mm/init.c one_highpage_init for a
    high frame): __ClearPageReserved and set_page_refs(page, 0), i.e. _count 1. The
    frame is then an order-0 block holding one reference, which __free_page drops:
    free_hot_cold_page, i.e. pcp_free (count < high) or pcp_free_drain ; ... ;
    pcp_free_finish, already proved for every list, CPU 0's hot list (lid 0)
    included. This step records the frame as allocated at order 0 (the abstraction's
    name for "not reserved, _count > 0, on no list") so those steps apply to it."""
    p = z3.Const("p", S.PFN)
    z = s.zone[p]
    cond = [z3.Not(s.fl)]
    if enc.bootmem_hot_checks_reserved:
        cond.append(s.reserved[p])
    if enc.bootmem_hot_checks_zone:
        cond.append(z != zidv(zb.NO_ZONE))
    common = dict(reserved=_set(s.reserved, p, z3.BoolVal(False)))
    if not enc.bootmem_hot_leaves_free_pages:
        common["free_pages"] = zb._add(s.free_pages, z, cntv(1))
    if enc.bootmem_hot_via_pcp:
        post = s.but(count=_set(s.count, p, cntv(1)) if enc.bootmem_hot_sets_count
                     else s.count, alloc=_set(s.alloc, p, z3.BoolVal(True)),
                     aorder=_set(s.aorder, p, ordv(0)), **common)
    else:
        common["free_pages"] = zb._add(common.get("free_pages", s.free_pages), z, cntv(1))
        post = s.but(count=_set(s.count, p, cntv(0)), buddy=_set(s.buddy, p, z3.BoolVal(True)),
                     order=_set(s.order, p, ordv(0)),
                     nr_free=zb._add(s.nr_free, zb.key(z, ordv(0)), cntv(1)), **common)
    cond = z3.And(*cond)
    return Step("free_bootmem_hot", cond, post, [p], {"p": p}, [p])


OPERATIONS = {
    "pcp_refill_start": op_pcp_refill_start,
    "pcp_refill_add": op_pcp_refill_add,
    "pcp_refill_end": op_pcp_refill_end,
    "pcp_alloc": op_pcp_alloc,
    "pcp_free": op_pcp_free,
    "pcp_free_drain": op_pcp_free_drain,
    "pcp_free_finish": op_pcp_free_finish,
    "pcp_drain_start": op_pcp_drain_start,
    "pcp_drain_step": op_pcp_drain_step,
    "pcp_drain_end": op_pcp_drain_end,
    "free_bootmem_hot": op_free_bootmem_hot,
}


# --- counting -----------------------------------------------------------------------

def list_weight(s: PState, p, L):
    """1 if p is on list L."""
    return z3.If(z3.And(s.pcp[p], key_of(s, p) == L), cntv(1), cntv(0))


def role_frames(S, s: PState, p):
    return zb.role_frames(S, s, p) + z3.If(s.pcp[p], cntv(1), cntv(0))


# --- zone_watermark_ok as a function ---------------------------------------------------

WM_BITS = 32              # i386 long


def sdiv_pow2(x, k: int):
    """C's long division by 2^k (truncating toward zero) without a divider circuit:
    equal to z3's bvsdiv by 2^k for every x (lemma sdiv_pow2_is_division)."""
    return (x + z3.If(x < 0, z3.BitVecVal((1 << k) - 1, x.size()),
                      z3.BitVecVal(0, x.size()))) >> k


WM_VARIANTS = ("kernel", "gfp_high_raises_min", "no_plus_one", "loop_unsigned",
               "first_test_reversed")


def watermark_ok(free_pages, nr_free: list, order: int, mark, reserve, can_try_harder,
                 gfp_high, kernel_types: bool = True, variant: str = "kernel"):
    """2.6.12 zone_watermark_ok for a fixed order over i386's 32-bit longs: the
    arguments are BitVec(32) terms (nr_free[o] for o < order), the flags Bools.

    `free_pages` and `min` are signed longs (the kernel's comment: free_pages may go
    negative), min halves by arithmetic shift, and `min + z->lowmem_reserve[...]` is
    an unsigned long, so C compares the first test unsigned (kernel_types); the loop's
    tests are signed. kernel_types False compares the first test signed too, as the
    model's Python integers do (lemma watermark_first_test_sign: the same answer for
    every value a 4 GiB machine can have). `variant` other than "kernel" is a wrong
    version for the tests (WM_VARIANTS)."""
    one = z3.BitVecVal(1, WM_BITS)
    m = mark
    fp = free_pages - (one << order) + (0 if variant == "no_plus_one" else 1)
    half = sdiv_pow2(m, 1)
    m = z3.If(gfp_high, m + half if variant == "gfp_high_raises_min" else m - half, m)
    m = z3.If(can_try_harder, m - sdiv_pow2(m, 2), m)
    first = z3.ULE(fp, m + reserve) if kernel_types else fp <= m + reserve
    ok = first if variant == "first_test_reversed" else z3.Not(first)
    for o in range(order):
        fp = fp - (nr_free[o] << o)
        m = m >> 1                                  # arithmetic shift of a long
        test = z3.ULE(fp, m) if variant == "loop_unsigned" and kernel_types else fp <= m
        ok = z3.And(ok, z3.Not(test))
    return ok


def watermark_ok_int(free_pages, nr_free: list, order: int, mark, reserve, can_try_harder,
                     gfp_high, variant: str = "kernel"):
    """The same loop over mathematical integers (z3 Int terms), for mark >= 0 (the
    kernel's marks are unsigned page counts): C's truncating division and arithmetic
    shift of a non-negative long are floor division. No width, so no overflow: the
    lemmas about it hold for every size of machine; it agrees with watermark_ok on
    i386 longs wherever no value overflows (tests/test_z3_pcp.py checks both against
    the model on sampled values)."""
    m = mark
    fp = free_pages - 2 ** order + (0 if variant == "no_plus_one" else 1)
    m = z3.If(gfp_high, m + m / 2 if variant == "gfp_high_raises_min" else m - m / 2, m)
    m = z3.If(can_try_harder, m - m / 4, m)
    ok = z3.Not(fp <= m + reserve)
    if variant == "first_test_reversed":
        ok = fp <= m + reserve
    for o in range(order):
        fp = fp - nr_free[o] * 2 ** o
        m = m / 2
        ok = z3.And(ok, z3.Not(fp <= m))
    return ok


# --- concrete machines (tests/test_z3_pcp.py: the encoding against the model) --------

def alpha(machine, S: Sorts | None = None) -> PState:
    """A machine between kernel calls as a PState: spec/z3_concrete.py's buddy image
    plus every CPU's lists (which list holds each frame, counts, low/high/batch)."""
    from . import z3_concrete as zc
    S = S or Sorts(zc.shape_of(machine))
    base = zc.alpha(machine, S)
    T, F = z3.BoolVal(True), z3.BoolVal(False)
    on, pzone, plid, cnt, low, high, batch = {}, {}, {}, {}, {}, {}, {}
    for zone in machine.zones:
        for cpu, pset in enumerate(zone.pageset or ()):
            for cold, pcp in enumerate(pset.pcp):
                lid = 2 * cpu + cold
                k = (zone.index << LID_BITS) | lid
                cnt[k], low[k], high[k], batch[k] = (cntv(pcp.count), cntv(pcp.low),
                                                     cntv(pcp.high), cntv(pcp.batch))
                for pfn in pcp.list:
                    on[pfn], pzone[pfn] = T, zidv(zone.index)
                    plid[pfn] = z3.BitVecVal(lid, LID_BITS)
    arr = lambda dom, default, table: zc._amap(zc._array(S, dom, None, default, table))  # noqa: E731
    return PState(**{f.name: getattr(base, f.name) for f in fields(State)},
                  pcp=arr(S.PFN, F, on), pcp_zone=arr(S.PFN, zidv(0), pzone),
                  pcp_lid=arr(S.PFN, z3.BitVecVal(0, LID_BITS), plid),
                  # a list key no CPU or zone of this machine has: an empty list
                  # with the values free_area_init_core gives a cold list of batch 1
                  pcnt=arr(LKEY, cntv(0), cnt), plow=arr(LKEY, cntv(0), low),
                  phigh=arr(LKEY, cntv(2), high), pbatch=arr(LKEY, cntv(1), batch),
                  rf=F, rf_key=z3.BitVecVal(0, LKEY_BITS), rf_left=cntv(0), dr=F,
                  dr_key=z3.BitVecVal(0, LKEY_BITS), dr_left=cntv(0), pend=F,
                  pend_pfn=z3.BitVecVal(0, S.W))


def apply(S, enc, op: str, s: PState, penc: PcpEncoding = PcpEncoding(),
          **params) -> tuple[bool, PState]:
    """(cond holds, post state) of one encoded step (buddy or per-CPU) on a concrete
    state, with concrete values for the step's parameters."""
    from . import z3_concrete as zc
    if op in OPERATIONS:
        step = OPERATIONS[op](S, penc, s, {})
    else:
        step = zb.OPERATIONS[op](S, enc, s, {})
    subs = [(step.params[k], v) for k, v in params.items()]
    cond = z3.simplify(z3.substitute(step.cond, *subs)) if subs else z3.simplify(step.cond)
    if not (z3.is_true(cond) or z3.is_false(cond)):
        cond = z3.BoolVal(zc._valid(cond))
    post = step.post
    if subs:
        out = {}
        for name, value in post.items():
            if isinstance(value, zb.Map):
                # substitute in the map's own expression, at a fresh index, so that a
                # later read at a term naming the same parameter is not captured
                def read(q, m=value):
                    x = z3.FreshConst(q.sort(), "x")
                    return z3.substitute(z3.substitute(m[x], *subs), (x, q))
                out[name] = zb.Map(read)
            else:
                out[name] = z3.substitute(value, *subs)
        post = PState(**out)
    return z3.is_true(cond), post


LOOP_FIELDS = ("fl_pfn", "fl_order", "fl_alloc", "fl_target", "rf_key", "rf_left",
               "dr_key", "dr_left", "pend_pfn")


def states_differ(S, a: PState, b: PState) -> list[str]:
    """The fields in which two concrete states differ (maps compared everywhere; a
    loop's own fields only matter while it runs, and the flags are compared)."""
    from . import z3_concrete as zc
    doms = {"zstart": S.ZID, "zend": S.ZID, "free_pages": S.ZID, "nr_free": S.KEY,
            "pcnt": LKEY, "plow": LKEY, "phigh": LKEY, "pbatch": LKEY}
    checks = {}
    for name, va in a.items():
        vb = getattr(b, name)
        if isinstance(va, zb.Map):
            x = z3.Const(f"x.{name}", doms.get(name, S.PFN))
            same = va[x] == vb[x]
            if name in ("pcp_zone", "pcp_lid"):        # meaningful on listed frames only
                same = z3.Implies(z3.Or(a.pcp[x], b.pcp[x]), same)
            checks[name] = z3.ForAll([x], same)
        elif name not in LOOP_FIELDS:
            checks[name] = va == vb
    if zc._valid(z3.And(*checks.values())):
        return []
    return [name for name, same in checks.items() if not zc._valid(same)]


def pcp_lists_holds(S, s: PState, frames: int) -> dict[str, bool]:
    """Every pcp_lists conjunct on a concrete state: quantified ones over all 2^20
    pfns / 2^12 list keys (decided by Z3), the counts as bounded sums over the frames."""
    from . import z3_concrete as zc
    out = {}
    for c in CONJUNCTS:
        if c.kind == "pfn":
            p = z3.Const("p", S.PFN)
            f = z3.ForAll([p], c.body(S, s, p))
        elif c.kind == "pair":
            h, q = z3.Const("h", S.PFN), z3.Const("q", S.PFN)
            f = z3.ForAll([h, q], c.body(S, s, h, q))
        elif c.kind == "list":
            L = z3.Const("L", LKEY)
            f = z3.ForAll([L], c.body(S, s, L))
        elif c.kind == "ground":
            f = c.body(S, s)
        elif c.label == "count":
            L = z3.Const("L", LKEY)
            total = cntv(0)
            for q in range(frames):
                total = total + list_weight(s, z3.BitVecVal(q, S.W), L)
            f = z3.ForAll([L], s.pcnt[L] == total)
        else:
            total = zb.inflight_frames(S, s)
            for q in range(frames):
                total = total + role_frames(S, s, z3.BitVecVal(q, S.W))
            f = z3.Extract(S.W, 0, total) == s.nr_pages
        out[c.label] = zc._valid(f)
    return out
