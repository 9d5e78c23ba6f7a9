"""Proof obligations for vmalloc, the kernel page tables and the permanent kmaps:
boot => Inv and, for every invariant and operation, Inv(s) and cond and Op(s, s') =>
Inv_i(s'), over the symbolic states of spec/z3_vmalloc.py.

As in proofs/obligations.py the invariants are conjunctions of universally
quantified conjuncts (over virtual pages, frames, area ids, pkmap slots); the negated
goal turns each quantified variable into a fresh constant (v*, w*, p*, a*, i*), and the
hypothesis Inv(s) -- and any universally quantified part of the operation's
condition (get_vm_area's "the range is a hole") -- is instantiated at a finite set of
terms: the skolem constants, the operation's own terms, and the terms one read of the
pre state away from them (the frame a pte maps, the area owning a page, the page an
owned frame is mapped at, the slot of an htable entry, the pte of a slot). An instance
of a universal hypothesis is implied by it, so `unsat` proves the obligation for every
value of every quantified variable: unbounded, although the query is quantifier-free.

A satisfiable instantiated query may be spurious (too few instances), so the
obligation is then re-checked with the hypothesis as real ForAll quantifiers (MBQI);
only a `sat` there -- a state satisfying every invariant from which the operation
breaks one -- is reported as `refuted`, with the failing conjuncts and a readable
state; anything else is `unknown`.
"""

from __future__ import annotations

import itertools
import time

import z3

from .obligations import (STATUS_PROVED, STATUS_REFUTED, STATUS_UNKNOWN, Row, check_patiently,
                          prove_grid)
from ..spec import z3_vmalloc as zv
from ..spec.z3_vmalloc import Encoding

INVARIANTS = list(zv.INVARIANTS)
OPERATIONS = ["boot", *zv.OPERATIONS]
SEEDED_BUGS = {name: what for name, (_, what) in zv.SEEDED_BUGS.items()}

VPN_MASK = (1 << zv.VPN_BITS) - 1
LIFT_PAGES = 16          # largest mapped area a counterexample is lifted with
LIFT_TRIES = 6           # models tried for a liftable counterexample before MBQI

SCOPE = ("unbounded: all 2^20 vpns and pfns (BitVec(20)), 2^32 area ids, 1024 pkmap "
         "slots (BitVec(10)), symbolic VMALLOC_START/VMALLOC_END/PKMAP_BASE; ")


class _Terms:
    """Terms by sort, deduplicated (Z3 hash-conses expressions, so ids identify them)."""

    def __init__(self):
        self.by_sort = {k: {} for k in zv.SORTS}

    def add(self, sort, term):
        term = z3.simplify(term)
        self.by_sort[sort].setdefault(term.get_id(), term)

    def __getitem__(self, sort):
        return list(self.by_sort[sort].values())

    def count(self):
        return sum(len(v) for v in self.by_sort.values())


def _derive(s: zv.State, terms: _Terms):
    """One read of the pre state away from the current terms."""
    out = _Terms()
    for sort in zv.SORTS:
        for t in terms[sort]:
            out.add(sort, t)
    for v in terms["vpn"]:
        out.add("pfn", s.pte_pfn[v])
        out.add("aid", s.vown[v])
        out.add("slot", zv.pk_slot(s, v))
    for p in terms["pfn"]:
        a = s.farea[p]
        out.add("aid", a)
        out.add("vpn", s.astart[a] + s.fidx[p])
        out.add("slot", s.ht_idx[p])
    for i in terms["slot"]:
        out.add("vpn", zv.pk_vpn(s, i))
    return out


class VmProver:
    """Builds the pre state once and discharges obligations on demand."""

    def __init__(self, enc: Encoding = Encoding(), timeout_ms: int = 30000):
        self.enc, self.timeout_ms = enc, timeout_ms
        self.pre = zv.fresh_state("s.")
        self.skolem = {"vpn": [z3.Const("v*", zv.VPN), z3.Const("w*", zv.VPN)],
                       "pfn": [z3.Const("p*", zv.PFN)], "aid": [z3.Const("a*", zv.AID)],
                       "slot": [z3.Const("i*", zv.SLOT)]}
        self._steps = {}
        self._hyps = {}
        self._solvers = {}

    # -- formulas ------------------------------------------------------------------

    def step(self, operation):
        if operation not in self._steps:
            if operation == "boot":
                self._steps[operation] = None
            else:
                self._steps[operation] = zv.OPERATIONS[operation](self.enc, self.pre)
        return self._steps[operation]

    def terms(self, step) -> tuple[_Terms, _Terms]:
        """(near, far): the base terms one read away, and two reads away."""
        terms = _Terms()
        for sort, ts in self.skolem.items():
            for t in ts:
                terms.add(sort, t)
        if step is not None:
            for sort, ts in step.terms.items():
                for t in ts:
                    terms.add(sort, t)
        near = _derive(self.pre, terms)
        return near, _derive(self.pre, near)

    def hyp_inst(self, step, near, far):
        """Single-variable conjuncts at the far terms, two-variable ones at every pair
        of near terms."""
        s = self.pre
        parts = [zv.layout(s)]
        for c in zv.CONJUNCTS:
            if not c.over:
                parts.append(c.body(s))
                continue
            terms = far if len(c.over) == 1 else near
            parts += [c.body(s, *args)
                      for args in itertools.product(*[terms[k] for k in c.over])]
        for sort, body in (step.forall if step else []):
            parts += [body(t) for t in far[sort]]
        return z3.And(*parts)

    def hyp_quant(self, step):
        s = self.pre
        parts = [zv.layout(s)]
        for c in zv.CONJUNCTS:
            xs = [z3.Const(f"x{j}", zv.SORTS[k]) for j, k in enumerate(c.over)]
            parts.append(z3.ForAll(xs, c.body(s, *xs)) if xs else c.body(s))
        for sort, body in (step.forall if step else []):
            x = z3.Const("y", zv.SORTS[sort])
            parts.append(z3.ForAll([x], body(x)))
        return z3.And(*parts)

    def goal_parts(self, invariant, post):
        out = []
        for c in zv.conjuncts(invariant):
            counters = {k: 0 for k in zv.SORTS}
            args = []
            for k in c.over:
                args.append(self.skolem[k][counters[k]])
                counters[k] += 1
            out.append((c.label, c.body(post, *args)))
        return out

    def _post(self, operation):
        step = self.step(operation)
        if step is None:
            return zv.initial_state(self.pre), z3.BoolVal(True)
        return step.post, step.cond

    # -- solving -------------------------------------------------------------------

    def _check(self, hyp, cond, goal):
        solver = z3.Solver()
        solver.add(hyp, cond, z3.Not(goal))
        return check_patiently(solver, self.timeout_ms), solver

    def _check_split(self, operation, hyp, cond, parts):
        """One conjunct of the goal at a time, on one solver per operation that holds
        the hypothesis and the condition: many small queries are much faster here than
        one query for the whole conjunction. unsat only if every conjunct is."""
        if operation not in self._solvers:
            solver = z3.Solver()
            solver.set("timeout", self.timeout_ms)
            solver.add(hyp, cond)
            self._solvers[operation] = solver
        solver = self._solvers[operation]
        for _, f in parts:
            solver.push()
            solver.add(z3.Not(f))
            result = check_patiently(solver, self.timeout_ms)
            solver.pop()
            if result != z3.unsat:
                return result, solver
        return z3.unsat, solver

    def prove(self, invariant: str, operation: str) -> Row:
        start = time.perf_counter()
        step = self.step(operation)
        post, cond = self._post(operation)
        parts = self.goal_parts(invariant, post)
        goal = z3.And(*[f for _, f in parts])
        if step is None:
            # the initial state is ground: the query has no hypothesis to instantiate,
            # so its models are genuine counterexamples
            hyp, how = zv.layout(post), "initial state (boot's frees are the bootmem_free row)"
        else:
            if operation not in self._hyps:
                near, far = self.terms(step)
                self._hyps[operation] = (far, self.hyp_inst(step, near, far))
            far, hyp = self._hyps[operation]
            how = (f"hypothesis instantiated at {far.count()} terms (skolem constants, "
                   "the operation's terms and two reads of the pre state from them; "
                   "quantifier-free)")
        result, solver = self._check_split(operation, hyp, cond, parts)
        if result == z3.sat:
            result, solver = self._check(hyp, cond, goal)   # a model of the whole goal
        engine = "instantiation"
        cex = None
        if result == z3.sat and step is not None:
            cex = self._lift(solver.model(), step, invariant, far)
            if cex is None:
                # a model with small areas is easier to lift; if that one does not
                # lift either, ask for models that differ in the constants of the
                # query (which model Z3 gives first depends on the whole context)
                extra = z3.And(*[z3.Implies(self.pre.live[a], z3.ULE(self.pre.anr[a],
                                                                     zv.vpnv(LIFT_PAGES)))
                                 for a in far["aid"]])
                keys = [c for ts in self.skolem.values() for c in ts]
                keys += [v for v in step.params.values()
                         if z3.is_const(v) and v.decl().kind() == z3.Z3_OP_UNINTERPRETED]
                for _ in range(LIFT_TRIES):
                    again, solver2 = self._check(z3.And(hyp, extra), cond, goal)
                    if again != z3.sat:
                        break
                    model = solver2.model()
                    cex = self._lift(model, step, invariant, far)
                    if cex is not None:
                        break
                    extra = z3.And(extra, z3.Or(*[k != model.eval(k, True) for k in keys]))
            if cex is not None:
                engine = "instantiation, model lifted to a concrete state checked at every point"
            else:
                result, solver = self._check(self.hyp_quant(step), cond, goal)
                engine = "quantified"
                how = "hypothesis as ForAll (MBQI)"
        seconds = time.perf_counter() - start
        scope = SCOPE + how
        if result == z3.unsat:
            return Row(invariant, operation, STATUS_PROVED, scope, seconds,
                       {"engine": engine})
        if result == z3.unknown:
            return Row(invariant, operation, STATUS_UNKNOWN, scope, seconds,
                       {"engine": engine, "reason": solver.reason_unknown()})
        if cex is None:
            model = solver.model()
            ev = lambda e: model.eval(e, True)    # noqa: E731
            cex = (ev, self.pre, step, post, parts)
        ev, cpre, cstep, cpost, cparts = cex
        failing = [label for label, f in cparts if z3.is_false(ev(f))]
        return Row(invariant, operation, STATUS_REFUTED, scope, seconds, {
            "engine": engine, "failing_conjuncts": failing,
            "smallest_failing_conjunct": _smallest(cparts, failing),
            "counterexample": self.counterexample(ev, cpre, cstep, cpost)})

    def _lift(self, model, step, invariant, far):
        """A model of an instantiated query, made a concrete state and checked.

        The values the model gives at the terms of the query are kept; the areas it
        names get their ranges, the mapped pages it does not name get fresh frames,
        and everything else is empty. If that state satisfies every invariant at all
        2^20 pages and frames, 2^32 area ids and 1024 slots, and the operation breaks
        the goal on it, the refutation is genuine. Returns (evaluator, pre, step,
        post, goal parts) or None."""
        pre = self.pre
        ev = lambda e: model.eval(e, True)    # noqa: E731
        num = lambda e: ev(e).as_long()       # noqa: E731
        yes = lambda e: z3.is_true(ev(e))     # noqa: E731
        vals = {k: sorted({num(t) for t in far[k]}) for k in zv.SORTS}
        conc = zv.Concrete(vstart=num(pre.vstart), vend=num(pre.vend), pkbase=num(pre.pkbase))
        if yes(pre.busy):
            conc.busy = (num(pre.busy_area), yes(pre.tearing))
            vals["aid"] = sorted(set(vals["aid"]) | {conc.busy[0]})
        named_pfns = set(vals["pfn"])
        fresh = (p for p in range((1 << zv.PFN_BITS) - 1, -1, -1) if p not in named_pfns)
        for p in vals["pfn"]:
            pv = z3.BitVecVal(p, zv.PFN_BITS)
            owner = (num(pre.farea[pv]), num(pre.fidx[pv])) if yes(pre.fown[pv]) else None
            conc.frames[p] = zv.Frame(free=yes(pre.ffree[pv]), alloc=yes(pre.falloc[pv]),
                                      single=yes(pre.fsingle[pv]), high=yes(pre.fhigh[pv]),
                                      owner=owner)
            if yes(pre.ht_p[pv]):
                conc.htable[p] = num(pre.ht_idx[pv])
        # the pages of the live areas the model names: the frames it records for
        # them (from either side), fresh frames for the rest
        live = {}
        for a in vals["aid"]:
            av = z3.BitVecVal(a, zv.AID_BITS)
            if yes(pre.live[av]):
                live[a] = (num(pre.astart[av]), num(pre.anp[av]), num(pre.anr[av]))
                if live[a][2] > LIFT_PAGES:
                    return None
        conc.areas = live
        pages = {}
        for p, f in conc.frames.items():
            if f.owner is not None and f.owner[0] in live and f.owner[1] < live[f.owner[0]][2]:
                pages.setdefault(f.owner, p)
        for v in vals["vpn"]:
            vv = z3.BitVecVal(v, zv.VPN_BITS)
            if yes(pre.pte_p[vv]) and yes(pre.vowned[vv]):
                a = num(pre.vown[vv])
                if a in live:
                    pages.setdefault((a, (v - live[a][0]) & VPN_MASK), num(pre.pte_pfn[vv]))
        for a, (first, _, nr) in live.items():
            for k in range(nr):
                p = pages.get((a, k))
                if p is None:
                    p = next(fresh)
                if p not in conc.frames:
                    conc.frames[p] = zv.Frame(alloc=True, single=True, owner=(a, k))
                conc.ptes[(first + k) & VPN_MASK] = p
        # the pkmap slots the model names, or that a named frame's htable entry names
        slots = {i: ev(pre.pk_count[z3.BitVecVal(i, zv.SLOT_BITS)]).as_signed_long()
                 for i in vals["slot"]}
        for p, i in conc.htable.items():
            if slots.get(i, 0) < 1:
                slots[i] = max(1, ev(pre.pk_count[z3.BitVecVal(i, zv.SLOT_BITS)])
                               .as_signed_long())
        users = {i: p for p, i in conc.htable.items()}
        for i, c in slots.items():
            if not c:
                continue
            conc.pk_count[i] = c
            p = users.get(i)
            if p is None:
                p = num(pre.pte_pfn[zv.pk_vpn(pre, z3.BitVecVal(i, zv.SLOT_BITS))])
                if p not in conc.frames:
                    conc.frames[p] = zv.Frame(alloc=True, high=True)
                    conc.htable[p] = i
            conc.ptes[(conc.pkbase + i) & VPN_MASK] = p
        lifted = conc.state()
        try:
            if not all(zv.invariant_holds(lifted, name) for name in zv.INVARIANTS):
                return None
            lstep = zv.OPERATIONS[step.op](self.enc, lifted)
            subs = [(c, ev(c)) for ts in self.skolem.values() for c in ts]
            subs += [(v, ev(v)) for v in step.params.values()
                     if z3.is_const(v) and v.decl().kind() == z3.Z3_OP_UNINTERPRETED]
            lparts = self.goal_parts(invariant, lstep.post)
            conds = [lstep.cond] + [z3.ForAll([y], body(y)) for sort, body in lstep.forall
                                    for y in [z3.Const("y", zv.SORTS[sort])]]
            broken = z3.substitute(z3.And(*conds, z3.Not(z3.And(*[f for _, f in lparts]))),
                                   *subs)
            if not zv.valid(broken, self.timeout_ms):
                return None
        except RuntimeError:
            return None
        lev = lambda e: z3.simplify(z3.substitute(e, *subs))    # noqa: E731
        return lev, lifted, lstep, lstep.post, lparts

    # -- counterexamples -------------------------------------------------------------

    def counterexample(self, ev, pre, step, post) -> dict:
        """A short readable state: the areas, pages, frames and slots the obligation
        names, before and after. `ev` evaluates a term to a value."""
        num = lambda e: ev(e).as_long()       # noqa: E731
        yes = lambda e: z3.is_true(ev(e))     # noqa: E731
        names = {"vpn": {}, "pfn": {}, "aid": {}, "slot": {}}
        for sort, ts in self.skolem.items():
            for t in ts:
                names[sort].setdefault(num(t), []).append(str(t))
        if step is not None:
            for name, t in step.params.items():
                if z3.is_bv(t) and name != "npages":
                    sort = {zv.AID_BITS: "aid", zv.SLOT_BITS: "slot"}.get(t.size())
                    sort = sort or ("vpn" if name in ("vpn", "start") else "pfn")
                    names[sort].setdefault(num(t), []).append(name)
            if yes(pre.busy):
                names["aid"].setdefault(num(pre.busy_area), []).append("busy_area")
        # one step further, in the pre state: what the named pages, frames and
        # slots point at
        for v in list(names["vpn"]):
            vv = z3.BitVecVal(v, zv.VPN_BITS)
            if yes(pre.pte_p[vv]):
                names["pfn"].setdefault(num(pre.pte_pfn[vv]), []).append(f"pte of {v:#x}")
            if yes(pre.vowned[vv]):
                names["aid"].setdefault(num(pre.vown[vv]), []).append(f"owner of {v:#x}")
        for p in list(names["pfn"]):
            pv = z3.BitVecVal(p, zv.PFN_BITS)
            if yes(pre.ht_p[pv]):
                names["slot"].setdefault(num(pre.ht_idx[pv]), []).append(f"kmap of {p:#x}")
        for i in list(names["slot"]):
            v = zv.pk_vpn(pre, z3.BitVecVal(i, zv.SLOT_BITS))
            if yes(pre.pte_p[v]):
                names["pfn"].setdefault(num(pre.pte_pfn[v]), []).append(f"pte of slot {i}")
        lines = [f"layout: VMALLOC_START vpn {num(pre.vstart):#x}, VMALLOC_END vpn "
                 f"{num(pre.vend):#x}, PKMAP_BASE vpn {num(pre.pkbase):#x}"]
        if step is not None:
            params = ", ".join(f"{k}={_show(ev(v))}" for k, v in step.params.items())
            lines.append(f"operation {step.op}({params})")
        for s, when in ((pre, "before"), (post, "after")):
            busy = (f"busy with area {num(s.busy_area):#x} "
                    f"({'tearing down' if yes(s.tearing) else 'building'})"
                    if yes(s.busy) else "no vmalloc in progress")
            lines.append(f"{when}: {busy}")
        for a, labels in sorted(names["aid"].items()):
            av = z3.BitVecVal(a, zv.AID_BITS)
            for s, when in ((pre, "before"), (post, "after")):
                if yes(s.live[av]):
                    lines.append(f"area {a:#x} ({', '.join(labels)}) {when}: live, pages "
                                 f"{num(s.astart[av]):#x}..+{num(s.anp[av])} + guard, "
                                 f"{num(s.anr[av])} mapped")
                else:
                    lines.append(f"area {a:#x} ({', '.join(labels)}) {when}: not live")
        for v, labels in sorted(names["vpn"].items()):
            vv = z3.BitVecVal(v, zv.VPN_BITS)
            for s, when in ((pre, "before"), (post, "after")):
                pte = (f"pte -> pfn {num(s.pte_pfn[vv]):#x}" if yes(s.pte_p[vv])
                       else "pte clear")
                own = (f"owned by area {num(s.vown[vv]):#x}" if yes(s.vowned[vv])
                       else "in no area")
                lines.append(f"vpn {v:#x} ({', '.join(labels)}) {when}: {pte}, {own}")
        for p, labels in sorted(names["pfn"].items()):
            pv = z3.BitVecVal(p, zv.PFN_BITS)
            for s, when in ((pre, "before"), (post, "after")):
                bits = ["free" if yes(s.ffree[pv]) else
                        "allocated" + (" single" if yes(s.fsingle[pv]) else "")
                        if yes(s.falloc[pv]) else "reserved"]
                if yes(s.fown[pv]):
                    bits.append(f"page {num(s.fidx[pv])} of area {num(s.farea[pv]):#x}")
                if yes(s.fhigh[pv]):
                    bits.append("highmem")
                if yes(s.ht_p[pv]):
                    bits.append(f"htable -> slot {num(s.ht_idx[pv])}")
                lines.append(f"pfn {p:#x} ({', '.join(labels)}) {when}: {', '.join(bits)}")
        for i, labels in sorted(names["slot"].items()):
            iv = z3.BitVecVal(i, zv.SLOT_BITS)
            for s, when in ((pre, "before"), (post, "after")):
                v = zv.pk_vpn(s, iv)
                pte = (f"pte -> pfn {num(s.pte_pfn[v]):#x}" if yes(s.pte_p[v])
                       else "pte clear")
                lines.append(f"pkmap slot {i} ({', '.join(labels)}) {when}: count "
                             f"{ev(s.pk_count[iv]).as_signed_long()}, {pte}")
        return {"lines": lines}


def _show(value):
    if z3.is_bv_value(value):
        return hex(value.as_long())
    return str(value)


def _smallest(parts, failing):
    sizes = {label: len(f.sexpr()) for label, f in parts if label in failing}
    return min(sizes, key=sizes.get) if sizes else None


def prove_vmalloc(invariants=None, operations=None, seed_bug=None, timeout_ms=30000,
                  progress=None) -> list[Row]:
    """Every (invariant, operation) obligation of the vmalloc/highmem layers, in
    INVARIANTS x OPERATIONS order; `seed_bug` proves against a broken encoding."""
    enc = Encoding.seeded(seed_bug) if seed_bug else Encoding()
    return prove_grid(VmProver(enc, timeout_ms), invariants or INVARIANTS,
                      operations or OPERATIONS, progress)
