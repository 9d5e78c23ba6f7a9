"""Proof obligations for the buddy allocator: boot => Inv and, for every invariant and
operation, Inv(s) and cond and Op(s, s') => Inv(s').

Each obligation is one Z3 query over the symbolic states of spec/z3_buddy.py. The
invariants are conjunctions of ForAll-over-pfn conjuncts; the negated goal makes the
quantified pfn a fresh constant p*, and the hypothesis Inv(s) is instantiated at p*,
at the operation's own pfns (the block taken, the buddy, the halves of expand...) and
at the block being freed. Instantiating a universally quantified hypothesis is sound,
so `unsat` proves the obligation for *every* pfn of the 2^20-frame machine: the proof
is unbounded although the query is quantifier-free (QF_UFBV), which is why it is fast.

If that query is satisfiable, the instantiation may simply have been too weak, so the
obligation is re-checked with the hypothesis as real ForAll quantifiers (Z3's MBQI):
`sat` there is a genuine counterexample -- a state satisfying every invariant from
which the operation breaks one -- and is reported as `refuted` with the smallest
failing conjunct and a readable state; `unknown` is reported as such.

The counting conjuncts of `conservation` (nr_free and free_pages against the free
heads) are cardinalities, which Z3 cannot take over 2^20 frames; they are proved as
delta equations: the counters change by exactly the sum of the changes of the per-head
indicators over the finite set of pfns the operation writes, those pfns are distinct,
and no other pfn changes. Together with the elementary counting fact (two maps that
agree outside a finite set differ in cardinality by the sum over that set) this is the
inductive step for `nr_free == |heads|`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import z3

from ..spec import z3_buddy as zb
from ..spec.z3_buddy import Encoding, Shape, Sorts

STATUS_PROVED, STATUS_REFUTED, STATUS_UNKNOWN = "proved", "refuted", "unknown"


@dataclass
class Row:
    invariant: str
    operation: str
    status: str
    scope: str
    seconds: float
    detail: dict = field(default_factory=dict)
    layer: str = "buddy"        # whose encoding: buddy, slab or vmalloc (proofs/layers.py)

    def to_json(self) -> dict:
        return {"layer": self.layer, "invariant": self.invariant, "operation": self.operation,
                "status": self.status, "scope": self.scope,
                "seconds": round(self.seconds, 3), "detail": self.detail}


OPERATIONS = ["boot", *zb.OPERATIONS]


def _scope(shape: Shape, how: str) -> str:
    frames = 1 << shape.pfn_bits
    return (f"unbounded: all {frames} pfns (BitVec({shape.pfn_bits})), orders "
            f"0..{shape.max_order - 1}, {shape.nr_zones} symbolic zones; {how}")


class Prover:
    """Builds the states once and discharges obligations on demand."""

    def __init__(self, shape: Shape = Shape(), enc: Encoding = Encoding(),
                 timeout_ms: int = 30000):
        self.shape, self.enc, self.timeout_ms = shape, enc, timeout_ms
        self.S = Sorts(shape)
        self.pre = zb.fresh_state(self.S, "s.")
        self.pstar = z3.Const("p*", self.S.PFN)       # the skolem pfns of the negated goal
        self.qstar = z3.Const("q*", self.S.PFN)
        self.zz = z3.Const("zone*", self.S.ZID)       # skolem zone / order of the
        self.kk = z3.Const("order*", self.S.ORD)      # counting conjuncts

    # -- formulas ------------------------------------------------------------------

    def _hyp_inst(self, s, terms, layout_terms=()):
        """Inv(s) instantiated at the given pfns (pair conjuncts at every pair)."""
        S = self.S
        parts = [zb.layout_ground(S, s)]
        for t in terms:
            parts.append(zb.layout_pfn(S, s, t))
            parts += [c.body(S, s, t) for c in zb.CONJUNCTS if c.kind == "pfn"]
            for u in terms:
                parts += [c.body(S, s, t, u) for c in zb.CONJUNCTS if c.kind == "pair"]
        for t in layout_terms:
            parts.append(zb.layout_pfn(S, s, t))
        return z3.And(*parts)

    def _hyp_quant(self, s):
        S = self.S
        p, h, q = (z3.Const(n, S.PFN) for n in ("p", "h", "q"))
        single = z3.And(zb.layout_pfn(S, s, p),
                        *[c.body(S, s, p) for c in zb.CONJUNCTS if c.kind == "pfn"])
        pair = z3.And(*[c.body(S, s, h, q) for c in zb.CONJUNCTS if c.kind == "pair"])
        return z3.And(zb.layout_ground(S, s), z3.ForAll([p], single),
                      z3.ForAll([h, q], pair))

    def _goal_parts(self, invariant: str, pre, post, step):
        """[(conjunct label, formula that must hold)] at the skolem constants."""
        S, p, q = self.S, self.pstar, self.qstar
        out = []
        for c in zb.conjuncts(invariant):
            if c.kind == "pfn":
                out.append((c.label, c.body(S, post, p)))
            elif c.kind == "pair":
                out.append((c.label, c.body(S, post, p, q)))
            elif step is None:
                # boot: no block, every frame reserved, every counter zero -- so each
                # counter equals its (empty) count and reserved frames = nr_pages
                nothing = z3.And(z3.Not(zb.isblock(post, p)), post.reserved[p])
                counter = {"nr_free": post.nr_free[zb.key(self.zz, self.kk)],
                           "free_pages": post.free_pages[self.zz]}.get(c.label, zb.cntv(0))
                out.append((c.label, z3.And(nothing, counter == zb.cntv(0))))
            else:
                out.append((c.label, self._delta(c.label, pre, post, step)))
        if invariant == "conservation" and step is not None:
            out.append(("frame", self._frame(pre, post, step)))
        return out

    def _delta(self, label, pre, post, step):
        S, zz, kk = self.S, self.zz, self.kk
        d_one, d_frames = zb.cntv(0), zb.cntv(0)
        for q in step.changed:
            one1, fr1 = zb.head_weight(S, post, q, zz, kk)
            one0, fr0 = zb.head_weight(S, pre, q, zz, kk)
            d_one = d_one + one1 - one0
            d_frames = d_frames + fr1 - fr0
        d_frames = d_frames + zb.inflight_frames(S, post, zz) - zb.inflight_frames(S, pre, zz)
        distinct = z3.Distinct(*step.changed) if len(step.changed) > 1 else z3.BoolVal(True)
        if label == "roles":
            d_roles = zb.inflight_frames(S, post) - zb.inflight_frames(S, pre)
            for q in step.changed:
                d_roles = d_roles + zb.role_frames(S, post, q) - zb.role_frames(S, pre, q)
            return z3.And(distinct, d_roles == zb.cntv(0))
        if label == "nr_free":
            k = zb.key(zz, kk)
            return z3.And(distinct, post.nr_free[k] - pre.nr_free[k] == d_one)
        return z3.And(distinct, post.free_pages[zz] - pre.free_pages[zz] == d_frames)

    def _frame(self, pre, post, step):
        """Outside the written pfns the per-frame fields the counts read are unchanged."""
        q = self.pstar
        outside = z3.And(*[q != c for c in step.changed])
        return z3.Implies(outside, z3.And(*[getattr(post, f)[q] == getattr(pre, f)[q] for f in
                                            ("buddy", "order", "alloc", "aorder", "reserved")]))

    def _setup(self, operation, case):
        """(pre, post, step, cond, terms) for one case of an operation."""
        if operation == "boot":
            post = zb.initial_state(self.S, self.pre)
            return self.pre, post, None, z3.BoolVal(True), [self.pstar, self.qstar]
        pre, extra = self.pre, z3.BoolVal(True)
        top = zb.ordv(self.shape.max_order)
        if type(case.get("o")) is int:
            pre = pre.but(fl_order=zb.ordv(case["o"]))
        elif case.get("o") == "rest":
            extra = z3.UGE(pre.fl_order, top)
        step = zb.OPERATIONS[operation](self.S, self.enc, pre, case)
        if case.get("k") == "rest":
            extra = z3.UGE(step.params["k"], top)
        terms = [self.pstar, self.qstar, *step.terms]
        return pre, step.post, step, z3.And(step.cond, extra), terms

    # -- solving -------------------------------------------------------------------

    def _solve(self, hyp, cond, goal, quantified=False):
        solver = z3.Solver()
        solver.add(hyp, cond, z3.Not(goal))
        return check_patiently(solver, self.timeout_ms), solver

    def prove(self, invariant: str, operation: str) -> Row:
        """All cases of one obligation; the first refuted case is reported."""
        start = time.perf_counter()
        cases = [{}] if operation == "boot" else zb.cases(self.shape, operation)
        engines, unknown = set(), None
        for case in cases:
            status, engine, info = self._prove_case(invariant, operation, case)
            engines.add(engine)
            if status == STATUS_REFUTED:
                info["case"] = case
                return Row(invariant, operation, status,
                           self._scope(invariant, operation, engines, len(cases)),
                           time.perf_counter() - start, info)
            if status == STATUS_UNKNOWN and unknown is None:
                unknown = dict(info, case=case)
        seconds = time.perf_counter() - start
        scope = self._scope(invariant, operation, engines, len(cases))
        if unknown is not None:
            return Row(invariant, operation, STATUS_UNKNOWN, scope, seconds, unknown)
        return Row(invariant, operation, STATUS_PROVED, scope, seconds,
                   {"engine": "+".join(sorted(engines)), "cases": len(cases)})

    def _scope(self, invariant, operation, engines, ncases):
        if operation == "boot":
            how = ("initial state (the boot frees are the free_bootmem_page and "
                   "free_bootmem_block rows)")
        elif "quantified" in engines:
            how = "hypothesis as ForAll over pfn (MBQI)"
        else:
            how = "hypothesis instantiated at the operation's pfns (quantifier-free, QF_UFBV)"
        if ncases > 1:
            how += f"; {ncases} order cases"
        if invariant == "conservation":
            how += "; counters by delta equations over the written pfns"
        return _scope(self.shape, how)

    def _prove_case(self, invariant, operation, case):
        pre, post, step, cond, terms = self._setup(operation, case)
        parts = self._goal_parts(invariant, pre, post, step)
        goal = z3.And(*[f for _, f in parts])
        if step is None:
            hyp = z3.And(zb.layout_ground(self.S, post),
                         *[zb.layout_pfn(self.S, post, t) for t in terms])
        else:
            hyp = self._hyp_inst(pre, terms, step.changed)
        result, solver = self._solve(hyp, cond, goal)
        engine = "instantiation"
        if result == z3.sat and step is not None \
                and self._lifts(solver.model(), pre, operation, case, invariant):
            engine = "instantiation (model lifted to a state satisfying Inv at every pfn)"
        elif result != z3.unsat and step is not None:
            # perhaps a spurious model of a too-weak instantiation: ask MBQI, whose
            # models satisfy the quantified invariants themselves
            result, solver = self._solve(self._hyp_quant(pre), cond, goal, True)
            engine = "quantified"
        if result == z3.unsat:
            return STATUS_PROVED, engine, {}
        if result == z3.unknown:
            return STATUS_UNKNOWN, engine, {"engine": engine,
                                            "reason": solver.reason_unknown()}
        model = solver.model()
        failing = [label for label, f in parts if z3.is_false(model.eval(f, True))]
        return STATUS_REFUTED, engine, {
            "engine": engine, "failing_conjuncts": failing,
            "smallest_failing_conjunct": _smallest(parts, failing),
            "counterexample": self.counterexample(model, pre, step, post)}

    # The default a frame gets outside the pfns a model names: nothing at all.
    _NOTHING = {"buddy": 0, "order": 0, "alloc": 0, "aorder": 0, "reserved": 0, "count": 0}

    def _lifts(self, model, pre, operation, case, invariant) -> bool:
        """Is the model of an instantiated query a real counterexample?

        Keep the values the model gives at the pfns it names and make every other
        frame empty (no block, unreserved, count 0). Two exceptions: every frame's
        zone is the span it lies in (the layout forces that, and the model's zone at a
        pfn the query never instantiated can be anything), and the frames the
        operation writes keep the model's reserved bit (the bootmem frees require
        reserved frames). Such a state is checked against the quantified invariants --
        at all 2^20 pfns -- and the operation is replayed on it; if both hold the
        refutation is genuine without asking MBQI, whose time on these queries
        varies widely (wrong_buddy_index: 1-120 s before both exceptions, 0.3 s now,
        2026-12-06)."""
        S = self.S
        ev = lambda e: model.eval(e, True)    # noqa: E731
        declared = {d.name(): d for d in model.decls()}
        conc = {}
        spans = [(ev(pre.zstart[zb.zidv(i)]), ev(pre.zend[zb.zidv(i)]))
                 for i in range(self.shape.nr_zones)]
        written = [ev(t) for t in zb.OPERATIONS[operation](S, self.enc, pre, case).changed]
        for name, m in pre.items():
            if not isinstance(m, zb.Map):
                conc[name] = ev(m)
                continue
            f = m.fn
            dom = f.domain(0)
            if name in self._NOTHING:
                default = z3.BitVecVal(self._NOTHING[name], f.range().size())
                arr = z3.K(dom, default)
            elif name == "zone":
                arr = None
            else:
                arr = z3.K(dom, ev(f(z3.BitVecVal(0, dom.size()))))
            entries = []
            if f.name() in declared:
                interp = model[declared[f.name()]]
                if isinstance(interp, z3.FuncInterp):
                    entries = [(interp.entry(i).arg_value(0), interp.entry(i).value())
                               for i in range(interp.num_entries())]
            if name == "reserved":
                entries += [(t, ev(f(t))) for t in written]
            if name in ("zstart", "zend", "nr_free", "free_pages"):
                entries += [(zb.zidv(i), ev(f(zb.zidv(i)))) for i in range(self.shape.nr_zones)
                            if name in ("zstart", "zend", "free_pages")]
            if arr is None:
                def zone_of(q):
                    v = zb.zidv(zb.NO_ZONE)
                    for i, (lo, hi) in enumerate(spans):
                        v = z3.If(z3.And(z3.ULE(lo, z3.ZeroExt(1, q)),
                                         z3.ULT(z3.ZeroExt(1, q), hi)), zb.zidv(i), v)
                    return v
                base = zone_of
            else:
                for a, val in entries:
                    arr = z3.Store(arr, a, val)
                base = (lambda q, a=arr: a[q])
            if f.range() == z3.BitVecSort(1) and name in ("buddy", "alloc", "reserved"):
                conc[name] = zb.Map(lambda q, b=base: b(q) == z3.BitVecVal(1, 1))
            else:
                conc[name] = zb.Map(base)
        cpre = zb.State(**conc)
        p, h, q = (z3.Const(n, S.PFN) for n in ("p", "h", "q"))
        inv = z3.And(zb.layout_ground(S, cpre), z3.ForAll([p], z3.And(
            zb.layout_pfn(S, cpre, p),
            *[c.body(S, cpre, p) for c in zb.CONJUNCTS if c.kind == "pfn"])),
            z3.ForAll([h, q], z3.And(*[c.body(S, cpre, h, q) for c in zb.CONJUNCTS
                                       if c.kind == "pair"])))
        step = zb.OPERATIONS[operation](S, self.enc, cpre, case)
        subs = [(c, ev(c)) for c in (self.pstar, self.qstar, self.zz, self.kk)]
        subs += [(v, ev(v)) for v in step.params.values() if z3.is_const(v)
                 and v.decl().kind() == z3.Z3_OP_UNINTERPRETED]
        top = zb.ordv(self.shape.max_order)
        extra = z3.UGE(step.params["k"], top) if case.get("k") == "rest" else z3.BoolVal(True)
        goal = z3.And(*[f for _, f in self._goal_parts(invariant, cpre, step.post, step)])
        broken = z3.substitute(z3.And(step.cond, extra, z3.Not(goal)), *subs)
        return _valid(inv, self.timeout_ms) and _valid(broken, self.timeout_ms)

    # -- counterexamples -------------------------------------------------------------

    def counterexample(self, model, pre, step, post) -> dict:
        """The Z3 model as a readable dict: the pfns that matter, before and after."""
        S = self.S
        ev = lambda e: model.eval(e, True)    # noqa: E731
        names = {"p*": self.pstar, "q*": self.qstar}
        if step is not None:
            names.update(step.params)
            for i, q in enumerate(step.changed):
                names.setdefault(f"written[{i}]", q)
            if pre.fl is not None:
                names["freeing(before)"] = pre.fl_pfn
        pfns: dict[int, list[str]] = {}
        for label, term in names.items():
            if z3.is_bv(term) and term.size() == S.W:
                pfns.setdefault(ev(term).as_long(), []).append(label)
        frames = {}
        for pfn in sorted(pfns):
            v = z3.BitVecVal(pfn, S.W)
            frames[pfn] = {"names": pfns[pfn], "before": _frame_state(ev, pre, v),
                           "after": _frame_state(ev, post, v)}
        zones = {}
        for i in range(self.shape.nr_zones):
            zid = zb.zidv(i)
            zones[i] = {"start": ev(pre.zstart[zid]).as_long(),
                        "end": ev(pre.zend[zid]).as_long()}
        out = {"frames": frames, "zones": zones,
               "nr_pages": ev(pre.nr_pages).as_long()}
        if step is not None:
            out["params"] = {k: ev(v).as_long() for k, v in step.params.items()}
            out["freeing"] = _inflight(ev, pre), _inflight(ev, post)
            zz, kk = ev(self.zz).as_long(), ev(self.kk).as_long()
            k = zb.key(zb.zidv(zz), zb.ordv(kk))
            out["counters"] = {"zone*": zz, "order*": kk,
                               "nr_free": [ev(pre.nr_free[k]).as_long(),
                                           ev(post.nr_free[k]).as_long()],
                               "free_pages": [ev(pre.free_pages[zb.zidv(zz)]).as_long(),
                                              ev(post.free_pages[zb.zidv(zz)]).as_long()]}
        return out


RETRY_FACTOR = 4
# A query's budget is Z3's resource limit (`rlimit`: units of solver work, counted the
# same on any machine at any load), timeout_ms * RLIMIT_PER_MS units. 5000 units per ms is
# about what the queries of tests/ spend per ms on the 2-core development machine
# (measured 2026-12-06: 2-10 M units/s, median about 3 M with other jobs running).
RLIMIT_PER_MS = 5000
# Wall time is only a safety net, WALL_FACTOR times the budget's nominal time.
WALL_FACTOR = 10


def check_patiently(solver, timeout_ms: int):
    """solver.check() within a budget of Z3 work (timeout_ms * RLIMIT_PER_MS resource
    units); when it runs out, once more with RETRY_FACTOR times the budget. The budget is
    work, not wall time, so whether a query is decided does not depend on the machine's
    load: with a wall-clock timeout, a heavily loaded machine (load 9 on 2 cores,
    2026-12-05) made a query that takes seconds come back `unknown`. How much work a query
    takes still depends on what the process asked Z3 before (tests/conftest.py)."""
    for factor in (1, RETRY_FACTOR):
        solver.set("rlimit", timeout_ms * factor * RLIMIT_PER_MS)
        solver.set("timeout", timeout_ms * factor * WALL_FACTOR)
        result = solver.check()
        if result != z3.unknown or solver.reason_unknown() not in ("timeout", "canceled"):
            break
    return result


def _valid(formula, timeout_ms) -> bool:
    solver = z3.Solver()
    solver.add(z3.Not(formula))
    return check_patiently(solver, timeout_ms) == z3.unsat


def _inflight(ev, s):
    if not z3.is_true(ev(s.fl)):
        return None
    return {"pfn": ev(s.fl_pfn).as_long(), "order": ev(s.fl_order).as_long()}


def _frame_state(ev, s, v) -> str:
    bits = []
    if z3.is_true(ev(s.buddy[v])):
        bits.append(f"free head order {ev(s.order[v]).as_long()}")
    if z3.is_true(ev(s.alloc[v])):
        bits.append(f"allocated head order {ev(s.aorder[v]).as_long()}")
    if z3.is_true(ev(s.reserved[v])):
        bits.append("reserved")
    bits.append(f"count {ev(s.count[v]).as_signed_long()}")
    zone = ev(s.zone[v]).as_long()
    bits.append("no zone" if zone == zb.NO_ZONE else f"zone {zone}")
    return ", ".join(bits)


def _smallest(parts, failing):
    sizes = {label: len(f.sexpr()) for label, f in parts if label in failing}
    return min(sizes, key=sizes.get) if sizes else None


def prove_all(shape: Shape = Shape(), enc: Encoding = Encoding(), *, invariants=None,
              operations=None, timeout_ms: int = 30000, progress=None) -> list[Row]:
    """Every (invariant, operation) obligation; rows in catalogue x operation order."""
    return prove_grid(Prover(shape, enc, timeout_ms), invariants or zb.INVARIANTS,
                      operations or OPERATIONS, progress)


def prove_grid(prover, invariants, operations, progress=None) -> list[Row]:
    """prover.prove(inv, op) for every pair, in invariant x operation order;
    progress(row) after each (every layer's prover has this shape)."""
    rows = []
    for inv in invariants:
        for op in operations:
            row = prover.prove(inv, op)
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows
