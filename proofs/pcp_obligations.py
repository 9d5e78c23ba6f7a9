"""Proof obligations for 2.6.12's per-CPU page lists (spec/z3_pcp.py): boot => Inv and
Inv(s) and cond and Op(s, s') => Inv_i(s'), as in proofs/obligations.py.

Which obligations this layer proves (the rest are the buddy layer's, unchanged):

* `pcp_lists` for boot and for *every* operation, the buddy operations included (they
  may run while frames sit on per-CPU lists, e.g. the merge loop of a drain).
* every buddy invariant (no_overlap, buddy_alignment, merge_completeness, conservation,
  page_state) for every per-CPU operation, against the extended state.

A buddy invariant under a buddy operation is not re-proved here: its formula reads no
per-CPU field and the operation writes none, so the buddy layer's proof (whose
hypothesis is a subset of this layer's) is that obligation. The one buddy conjunct
that does change meaning, conservation.roles (every frame has one role), is replaced
by pcp_lists.roles, which counts the per-CPU frames and is proved here for every
operation.

Method as in the buddy layer: the negated goal's skolem constants (p*, q*, the list
key L*, zone*, order*), the hypothesis instantiated at the operation's pfns and list
keys (quantifier-free, QF_UFBV: unbounded), counting conjuncts by delta equations over
the written pfns; a satisfiable instantiated query is re-checked with the hypothesis as
ForAll (MBQI) before it is called refuted.
"""

from __future__ import annotations

import time

import z3

from ..spec import z3_buddy as zb
from ..spec import z3_pcp as zp
from ..spec.z3_buddy import Shape
from .obligations import (STATUS_PROVED, STATUS_REFUTED, STATUS_UNKNOWN, Prover, Row,
                          _smallest)

INVARIANTS = ["pcp_lists", *zp.BUDDY_INVARIANTS]
BUDDY_OPS = list(zb.OPERATIONS)
PCP_OPS = list(zp.OPERATIONS)
OPERATIONS = ["boot", *BUDDY_OPS, *PCP_OPS]
SEEDED_BUGS = {name: what for name, (_, what) in zp.SEEDED_BUGS.items()}

SCOPE = ("unbounded: all 2^20 pfns (BitVec(20)), all 2^12 list keys (zone id x 16 "
         "lists = 8 CPUs x hot/cold), 32-bit counts, every order (symbolic, one query), "
         "3 symbolic zones, each zone's batch symbolic in 1..2^20; ")


def obligations(invariants=None, operations=None) -> list[tuple[str, str]]:
    """The (invariant, operation) pairs this layer proves, in catalogue x operation
    order."""
    out = []
    for inv in invariants or INVARIANTS:
        for op in operations or OPERATIONS:
            if inv == "pcp_lists" or op in PCP_OPS:
                out.append((inv, op))
    return out


class PcpProver(Prover):
    def __init__(self, shape: Shape = Shape(), enc: zp.PcpEncoding = zp.PcpEncoding(),
                 timeout_ms: int = 30000):
        super().__init__(shape, zb.Encoding(), timeout_ms)
        self.penc = enc
        self.pre = zp.fresh_state(self.S, "s.")
        self.lstar = z3.Const("L*", zp.LKEY)

    # -- formulas ------------------------------------------------------------------

    def _pcp_parts(self, s, pfns, lists, pairs=True):
        S = self.S
        parts = [c.body(S, s) for c in zp.CONJUNCTS if c.kind == "ground"]
        for t in pfns:
            parts += [c.body(S, s, t) for c in zp.CONJUNCTS if c.kind == "pfn"]
            if pairs:
                for u in pfns:
                    parts += [c.body(S, s, t, u) for c in zp.CONJUNCTS if c.kind == "pair"]
        for L in lists:
            parts += [c.body(S, s, L) for c in zp.CONJUNCTS if c.kind == "list"]
        return parts

    def _lists(self, s, pfns, step):
        if step is not None and step.op in zb.OPERATIONS:
            # a buddy operation writes no per-CPU count, parameter or loop field: the
            # list conjuncts of the goal are the hypothesis' at L*
            return [self.lstar]
        lists = [self.lstar, s.rf_key, s.dr_key] + [zp.key_of(s, t) for t in pfns]
        if step is not None:
            if "L" in step.params:
                lists.append(step.params["L"])
            if "lid" in step.params:
                lists.append(zp.lkey(s.zone[step.params["h"]], step.params["lid"]))
            if step.op == "pcp_refill_add":
                lists.append(zp.lkey(zb.zidv(0), zp.llid(s.rf_key)))
        return _dedup(lists)

    def _goal(self, invariant, pre, post, step):
        S, p, q, L = self.S, self.pstar, self.qstar, self.lstar
        out = []
        if invariant != "pcp_lists":
            for c in zp.buddy_conjuncts(invariant):
                if c.kind == "pfn":
                    out.append((c.label, c.body(S, post, p)))
                elif c.kind == "pair":
                    out.append((c.label, c.body(S, post, p, q)))
                else:
                    out.append((c.label, self._delta(c.label, pre, post, step)))
            if invariant == "conservation":
                out.append(("frame", self._frame(pre, post, step)))
            return out
        for c in zp.CONJUNCTS:
            if c.kind == "pfn":
                out.append((c.label, c.body(S, post, p)))
            elif c.kind == "pair":
                out.append((c.label, c.body(S, post, p, q)))
            elif c.kind == "list":
                out.append((c.label, c.body(S, post, L)))
            elif c.kind == "ground":
                out.append((c.label, c.body(S, post)))
            elif step is None:
                nothing = z3.And(z3.Not(zb.isblock(post, p)), post.reserved[p],
                                 z3.Not(post.pcp[p]))
                extra = post.pcnt[L] == zb.cntv(0) if c.label == "count" else True
                out.append((c.label, z3.And(nothing, extra)))
            else:
                out.append((c.label, self._pdelta(c.label, pre, post, step)))
        if step is not None:
            out.append(("frame", self._frame(pre, post, step)))
        return out

    def _pdelta(self, label, pre, post, step):
        S, L = self.S, self.lstar
        changed = step.changed
        distinct = z3.Distinct(*changed) if len(changed) > 1 else z3.BoolVal(True)
        if label == "count":
            d = zb.cntv(0)
            for q in changed:
                d = d + zp.list_weight(post, q, L) - zp.list_weight(pre, q, L)
            return z3.And(distinct, post.pcnt[L] - pre.pcnt[L] == d)
        d = zb.inflight_frames(S, post) - zb.inflight_frames(S, pre)
        for q in changed:
            d = d + zp.role_frames(S, post, q) - zp.role_frames(S, pre, q)
        return z3.And(distinct, d == zb.cntv(0))

    def _frame(self, pre, post, step):
        q = self.pstar
        outside = z3.And(*[q != c for c in step.changed]) if step.changed else True
        names = ("buddy", "order", "alloc", "aorder", "reserved", "pcp", "pcp_zone",
                 "pcp_lid")
        return z3.Implies(outside, z3.And(*[getattr(post, f)[q] == getattr(pre, f)[q]
                                            for f in names]))

    def _step(self, operation, pre, case):
        if operation in zp.OPERATIONS:
            return zp.OPERATIONS[operation](self.S, self.penc, pre, case)
        return zb.OPERATIONS[operation](self.S, self.enc, pre, case)

    def _setup_pcp(self, operation, case):
        if operation == "boot":
            post = zp.initial_state(self.S, self.pre, self.penc)
            return self.pre, post, None, zp.boot_assumption(self.lstar), \
                [self.pstar, self.qstar]
        pre, extra = self.pre, z3.BoolVal(True)
        top = zb.ordv(self.shape.max_order)
        if type(case.get("o")) is int:
            pre = pre.but(fl_order=zb.ordv(case["o"]))
        elif case.get("o") == "rest":
            extra = z3.UGE(pre.fl_order, top)
        step = self._step(operation, pre, case)
        terms = _dedup([self.pstar, self.qstar, *step.terms])
        return pre, step.post, step, z3.And(step.cond, extra), terms

    def _hyp(self, pre, terms, step, buddy_pairs=True):
        """Inv(pre) instantiated at the terms. Without buddy_pairs the buddy layer's
        pair conjuncts are left out (a weaker hypothesis: still a proof when unsat)."""
        S = self.S
        parts = [zb.layout_ground(S, pre)]
        for t in terms:
            parts.append(zb.layout_pfn(S, pre, t))
            parts += [c.body(S, pre, t) for c in zb.CONJUNCTS if c.kind == "pfn"]
            if not buddy_pairs:
                continue
            for u in terms:
                parts += [c.body(S, pre, t, u) for c in zb.CONJUNCTS if c.kind == "pair"]
        parts += self._pcp_parts(pre, terms, self._lists(pre, terms, step))
        return z3.And(*parts)

    def _hyp_quant_pcp(self, pre):
        S = self.S
        p, h, q = (z3.Const(n, S.PFN) for n in ("p", "h", "q"))
        L = z3.Const("L", zp.LKEY)
        single = z3.And(zb.layout_pfn(S, pre, p),
                        *[c.body(S, pre, p) for c in zb.CONJUNCTS if c.kind == "pfn"],
                        *[c.body(S, pre, p) for c in zp.CONJUNCTS if c.kind == "pfn"])
        pair = z3.And(*[c.body(S, pre, h, q) for c in zb.CONJUNCTS if c.kind == "pair"],
                      *[c.body(S, pre, h, q) for c in zp.CONJUNCTS if c.kind == "pair"])
        lists = z3.And(*[c.body(S, pre, L) for c in zp.CONJUNCTS if c.kind == "list"])
        ground = [c.body(S, pre) for c in zp.CONJUNCTS if c.kind == "ground"]
        return z3.And(zb.layout_ground(S, pre), *ground, z3.ForAll([p], single),
                      z3.ForAll([h, q], pair), z3.ForAll([L], lists))

    # -- proving ---------------------------------------------------------------------

    def _cases(self, operation):
        """One query per obligation: the buddy layer splits its loop steps by order so
        that shifts are constants, but the per-CPU conjuncts are cheaper with the
        order left symbolic (every 8-bit order at once)."""
        return [{}]

    def prove(self, invariant: str, operation: str) -> Row:
        start = time.perf_counter()
        cases = self._cases(operation)
        engines, unknown = set(), None
        for case in cases:
            status, engine, info = self._prove_pcp_case(invariant, operation, case)
            engines.add(engine)
            if status == STATUS_REFUTED:
                info["case"] = case
                return Row(invariant, operation, status, self._pscope(invariant, operation,
                                                                      engines, len(cases)),
                           time.perf_counter() - start, info, layer="pcp")
            if status == STATUS_UNKNOWN and unknown is None:
                unknown = dict(info, case=case)
        seconds = time.perf_counter() - start
        scope = self._pscope(invariant, operation, engines, len(cases))
        if unknown is not None:
            return Row(invariant, operation, STATUS_UNKNOWN, scope, seconds, unknown, "pcp")
        return Row(invariant, operation, STATUS_PROVED, scope, seconds,
                   {"engine": "+".join(sorted(engines)), "cases": len(cases)}, "pcp")

    def _pscope(self, invariant, operation, engines, ncases):
        if operation == "boot":
            how = "initial state (free_area_init_core's lists and parameters)"
        elif "quantified" in engines:
            how = "hypothesis as ForAll over pfn and list key (MBQI)"
        else:
            how = ("hypothesis instantiated at the operation's pfns and list keys "
                   "(quantifier-free, QF_UFBV)")
        if ncases > 1:
            how += f"; {ncases} order cases"
        if invariant in ("conservation", "pcp_lists") and operation != "boot":
            how += "; counters by delta equations over the written pfns"
        return SCOPE + how

    def _prove_pcp_case(self, invariant, operation, case):
        pre, post, step, cond, terms = self._setup_pcp(operation, case)
        parts = self._goal(invariant, pre, post, step)
        goal = z3.And(*[f for _, f in parts])
        if step is None:
            hyp = z3.And(zb.layout_ground(self.S, post),
                         *[zb.layout_pfn(self.S, post, t) for t in terms])
        else:
            hyp = self._hyp(pre, terms, step)
        result, solver = self._solve(hyp, cond, goal)
        engine = "instantiation"
        if result != z3.unsat and step is not None:
            result, solver = self._solve(self._hyp_quant_pcp(pre), cond, goal, True)
            engine = "quantified"
        if result == z3.unsat:
            return STATUS_PROVED, engine, {}
        if result == z3.unknown:
            return STATUS_UNKNOWN, engine, {"engine": engine,
                                            "reason": solver.reason_unknown()}
        model = solver.model()
        failing = [label for label, f in parts if z3.is_false(model.eval(f, True))]
        cx = self.counterexample(model, pre, step, post)
        ev = lambda e: model.eval(e, True)    # noqa: E731
        for pfn, frame in cx["frames"].items():
            v = z3.BitVecVal(pfn, self.S.W)
            for when, s in (("before", pre), ("after", post)):
                if z3.is_true(ev(s.pcp[v])):
                    frame[when] += (f", on per-CPU list {ev(zp.key_of(s, v)).as_long():#x}"
                                    " (zone << 4 | 2*cpu + cold)")
        L = self.lstar
        cx["list L*"] = {"key": ev(L).as_long(),
                         "count": [ev(pre.pcnt[L]).as_long(), ev(post.pcnt[L]).as_long()],
                         "low": ev(post.plow[L]).as_long(), "high": ev(post.phigh[L]).as_long(),
                         "batch": ev(post.pbatch[L]).as_long()}
        return STATUS_REFUTED, engine, {
            "engine": engine, "failing_conjuncts": failing,
            "smallest_failing_conjunct": _smallest(parts, failing), "counterexample": cx}


def _dedup(terms):
    seen = {}
    for t in terms:
        seen.setdefault(z3.simplify(t).get_id(), t)
    return list(seen.values())


def prove_pcp(invariants=None, operations=None, seed_bug=None, timeout_ms=30000,
              progress=None) -> list[Row]:
    enc = zp.seeded(seed_bug) if seed_bug else zp.PcpEncoding()
    prover = PcpProver(enc=enc, timeout_ms=timeout_ms)
    rows = []
    for inv, op in obligations(invariants, operations):
        row = prover.prove(inv, op)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows
