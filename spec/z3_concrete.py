"""The abstraction function: a concrete model machine as a state of spec/z3_buddy.py.

This is what ties the proofs to the model that runs: tests/test_z3_agreement.py takes
machines reached by real call sequences, maps them here, and checks that (1) each Z3
invariant evaluated on the image agrees with the Python predicate of spec/buddy.py,
and (2) the model's (pre, post) states of every call are related by the encoded
transitions (rmqueue; expand_step*; alloc_finish for alloc_pages, and free_start;
merge_step*; free_finish for __free_pages).
"""

from __future__ import annotations

import z3

from ..model.mem_map import PG_buddy, PG_reserved
from . import z3_buddy as zb


def shape_of(machine) -> zb.Shape:
    return zb.Shape(pfn_bits=20, max_order=machine.profile.MAX_ORDER,
                    nr_zones=len(machine.zones))


def _array(S, dom, rng, default, table):
    arr = z3.K(dom, default)
    for i, v in table.items():
        arr = z3.Store(arr, z3.BitVecVal(i, dom.size()), v)
    return arr


def _amap(arr):
    return zb.Map(lambda q: arr[q])


def alpha(machine, S: zb.Sorts | None = None) -> zb.State:
    """The abstract state of a machine between kernel calls (nothing in flight).

    The values are copied now, so the machine may change afterwards.
    """
    S = S or zb.Sorts(shape_of(machine))
    mm = machine.mem_map
    n = mm.nr_pages
    T, F = z3.BoolVal(True), z3.BoolVal(False)
    flags = mm.flags
    owner = dict(machine.page_owner)
    buddy = {p: T for p in range(n) if flags[p] & PG_buddy}
    reserved = {p: T for p in range(n) if flags[p] & PG_reserved}
    order = {p: zb.ordv(mm.private[p] & 0xFF) for p in range(n) if mm.private[p]}
    count = {p: zb.cntv(mm.count[p]) for p in range(n) if mm.count[p]}
    zone = {p: zb.zidv(mm.zone_id[p]) for p in range(n) if mm.zone_id[p] != zb.NO_ZONE}
    zstart = {z.index: z3.BitVecVal(z.zone_start_pfn, S.W + 1) for z in machine.zones}
    zend = {z.index: z3.BitVecVal(z.zone_end_pfn, S.W + 1) for z in machine.zones}
    nr_free = {(z.index << 8) | k: zb.cntv(a.nr_free)
               for z in machine.zones for k, a in enumerate(z.free_area)}
    free_pages = {z.index: zb.cntv(z.free_pages) for z in machine.zones}
    rng0 = z3.BitVecVal(0, S.W + 1)
    return zb.State(
        buddy=_amap(_array(S, S.PFN, z3.BoolSort(), F, buddy)),
        order=_amap(_array(S, S.PFN, S.ORD, zb.ordv(0), order)),
        alloc=_amap(_array(S, S.PFN, z3.BoolSort(), F, {p: T for p in owner})),
        aorder=_amap(_array(S, S.PFN, S.ORD, zb.ordv(0),
                            {p: zb.ordv(o) for p, o in owner.items() if o})),
        reserved=_amap(_array(S, S.PFN, z3.BoolSort(), F, reserved)),
        count=_amap(_array(S, S.PFN, S.CNT, zb.cntv(0), count)),
        zone=_amap(_array(S, S.PFN, S.ZID, zb.zidv(zb.NO_ZONE), zone)),
        zstart=_amap(_array(S, S.ZID, S.RNG, rng0, zstart)),
        zend=_amap(_array(S, S.ZID, S.RNG, rng0, zend)),
        nr_pages=z3.BitVecVal(n, S.W + 1),
        nr_free=_amap(_array(S, S.KEY, S.CNT, zb.cntv(0), nr_free)),
        free_pages=_amap(_array(S, S.ZID, S.CNT, zb.cntv(0), free_pages)),
        fl=F, fl_pfn=z3.BitVecVal(0, S.W), fl_order=zb.ordv(0), fl_alloc=F,
        fl_target=zb.ordv(0))


# --- evaluating formulas on concrete states ----------------------------------------

def _valid(formula) -> bool:
    solver = z3.Solver()
    solver.add(z3.Not(formula))
    result = solver.check()
    if result == z3.unknown:
        raise RuntimeError(f"z3 could not decide a concrete formula: {solver.reason_unknown()}")
    return result == z3.unsat


def conjunct_holds(S: zb.Sorts, s: zb.State, c: zb.Conjunct, frames: int) -> bool:
    """The Z3 conjunct on a concrete state: ForAll over all 2^20 pfns (decided by Z3),
    or for counting conjuncts the bounded sum over the machine's frames."""
    if c.kind == "pfn":
        p = z3.Const("p", S.PFN)
        return _valid(z3.ForAll([p], c.body(S, s, p)))
    if c.kind == "pair":
        h, q = z3.Const("h", S.PFN), z3.Const("q", S.PFN)
        return _valid(z3.ForAll([h, q], c.body(S, s, h, q)))
    return _valid(zb.count_bounded(S, s, frames)[c.label])


def invariant_formula(S: zb.Sorts, s: zb.State, name: str, frames: int):
    p, h, q = (z3.Const(n, S.PFN) for n in ("p", "h", "q"))
    parts, counts = [], None
    for c in zb.conjuncts(name):
        if c.kind == "pfn":
            parts.append(z3.ForAll([p], c.body(S, s, p)))
        elif c.kind == "pair":
            parts.append(z3.ForAll([h, q], c.body(S, s, h, q)))
        else:
            counts = counts or zb.count_bounded(S, s, frames)     # built once for all
            parts.append(counts[c.label])
    return z3.And(*parts)


def invariant_holds(S: zb.Sorts, s: zb.State, name: str, frames: int) -> bool:
    """All conjuncts of one invariant on a concrete state, in one Z3 query."""
    return _valid(invariant_formula(S, s, name, frames))


def layout_holds(S: zb.Sorts, s: zb.State) -> bool:
    p = z3.Const("p", S.PFN)
    return _valid(z3.And(zb.layout_ground(S, s), z3.ForAll([p], zb.layout_pfn(S, s, p))))


# --- transitions --------------------------------------------------------------------

def _bind(s: zb.State, subs) -> zb.State:
    """Substitute concrete values for an operation's parameters in a state."""
    if not subs:
        return s
    out = {}
    for name, value in s.items():
        if isinstance(value, zb.Map):
            out[name] = zb.Map(lambda q, m=value: z3.substitute(m[q], *subs))
        else:
            out[name] = z3.substitute(value, *subs)
    return zb.State(**out)


def apply(S, enc, op: str, s: zb.State, **params) -> tuple[bool, zb.State]:
    """(cond holds, post state) of one encoded step on a concrete state."""
    step = zb.OPERATIONS[op](S, enc, s, {})
    subs = [(step.params[k], v) for k, v in params.items()]
    cond = z3.simplify(z3.substitute(step.cond, *subs)) if subs else z3.simplify(step.cond)
    if not (z3.is_true(cond) or z3.is_false(cond)):
        cond = z3.BoolVal(_valid(cond))
    return z3.is_true(cond), _bind(step.post, subs)


def states_equal(S, a: zb.State, b: zb.State) -> list[str]:
    """The fields in which two concrete states differ (maps compared at every pfn)."""
    doms = {"zstart": S.ZID, "zend": S.ZID, "free_pages": S.ZID, "nr_free": S.KEY}
    checks = {}
    for name, va in a.items():
        vb = getattr(b, name)
        if isinstance(va, zb.Map):
            x = z3.Const(f"x.{name}", doms.get(name, S.PFN))
            checks[name] = z3.ForAll([x], va[x] == vb[x])
        elif name not in ("fl_pfn", "fl_order", "fl_alloc", "fl_target"):
            # (the in-flight fields mean nothing while fl is false; fl is compared)
            checks[name] = va == vb
    if _valid(z3.And(*checks.values())):
        return []
    return [name for name, same in checks.items() if not _valid(same)]
