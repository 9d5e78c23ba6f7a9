"""Proof obligations for the slab layer: boot => Inv and, for every invariant and
operation, Inv(s) and cond and Op(s, s') => Inv(s') (spec/z3_slab.py; prose:
spec/proofs_slab.md).

As in proofs/obligations.py the quantified conjuncts are negated at fresh constants (a
slab s*, an object index i*, a list L*) and the hypothesis Inv(s) is instantiated at
those and at the operation's own slab and object, which keeps every query
quantifier-free (QF_UFBV): `unsat` proves the step for all 2^20 slab ids and all 2^16
object indices of every geometry the axiom allows.

The counting conjuncts (inuse = |objects in use|, free_objects, the list lengths) are
proved as delta equations over the written slabs and objects, with a frame condition;
the hypothesis also contains, at each instantiated object, the counting fact "a slab
with an object in use has inuse != 0" (a set with an element is not empty), the one
consequence of `inuse = |objects in use|` the steps need besides the delta.

For no_overlap and page_state the state also has maps over frames (PG_slab, the
page->lru back pointers, the other caches' frames): their frame conjuncts are negated
at a fresh frame p*, their slab-pair conjunct at (s*, t*), and the hypothesis and
cache_grow's per-frame condition are instantiated at p*, at the named slabs' first
frames and at the frame of cache_grow's off-slab struct slab. The other invariants'
obligations leave the frame terms out (a weaker hypothesis is still sound), which keeps
them as fast as before.

A satisfiable query is checked before it is reported as `refuted`: its model is
*lifted* to a finite concrete cache (the values at the named slabs and objects, every
other slab dead, and inuse - |named objects in use| more objects in use per live slab,
the live slabs' blocks as this cache's frames and the named frames of other caches),
Z3 checks that this state satisfies every invariant at every slab id and object key,
that the operation's condition holds on it and that the post state breaks the
invariant. If lifting fails the row is `unknown`.
"""

from __future__ import annotations

import time

import z3

from ..spec import z3_slab as zs
from ..spec.z3_slab import Encoding
from .obligations import (STATUS_PROVED, STATUS_REFUTED, STATUS_UNKNOWN, Row, check_patiently,
                          prove_grid)

INVARIANTS = list(zs.INVARIANTS)
OPERATIONS = ["boot", *zs.OPERATIONS]
SEEDED_BUGS = {name: text for name, (_, text) in zs.SEEDED_BUGS.items()}

_SCOPE = (f"unbounded: all 2^{zs.SLAB_BITS} slab ids, all 2^{zs.IDX_BITS} object indices, "
          f"any geometry with objsize {zs.MIN_OBJ_SIZE}..{zs.MAX_OBJ_SIZE}, colour_off "
          f"2^{zs.L1_SHIFT}..2^{zs.MAX_ALIGN_SHIFT}, gfporder 0..{zs.MAX_GFP_ORDER}, num "
          f"1..{zs.SLAB_LIMIT}, management on/off-slab, any kmalloc class "
          f"(linux-2.6-i386 table); geometry axiom assumed (num objects + management fit "
          f"the slab)")


def _scope(invariant: str, operation: str) -> str:
    if operation == "boot":
        how = "initial state of kmem_cache_create"
    else:
        how = ("hypothesis instantiated at s*, i* and the operation's slab and object "
               "(quantifier-free, QF_UFBV)")
        if invariant == "slab_accounting":
            how += ("; counters by delta equations over the written slabs/objects plus "
                    "the counting fact 'an object in use => inuse != 0'")
    if SlabProver.is_wide(invariant):
        how += (f"; all 2^{zs.SLAB_BITS} frames, hypothesis also at a frame p*, a second "
                "slab t* and the named slabs' first frames; cache_grow assumes the page "
                "allocator's contract (an aligned block with no PG_slab frame: "
                "buddy_alignment and bad_page's checks) and an off-slab struct slab in "
                "another cache's slab")
    return f"{_SCOPE}; {how}"


class SlabProver:
    """Builds the states once and discharges obligations on demand."""

    def __init__(self, enc: Encoding = Encoding(), timeout_ms: int = 30000):
        self.enc, self.timeout_ms = enc, timeout_ms
        self.pre = zs.fresh_state("s.")
        self.sstar = z3.Const("s*", zs.SLAB)
        self.tstar = z3.Const("t*", zs.SLAB)
        self.istar = z3.Const("i*", zs.IDX)
        self.pstar = z3.Const("p*", zs.PFN)
        self.lstar = z3.Const("list*", zs.LST)

    # -- formulas --------------------------------------------------------------------

    def _hyp(self, s, slab_terms, idx_terms, frame_terms=()):
        """Inv(s) instantiated at the given slabs and at every (slab, index) pair; with
        frame terms also the frame conjuncts at them, the slab-frame conjuncts at every
        (slab, frame) pair and the pair conjuncts at every two slabs."""
        # without frame terms the frame invariants' other conjuncts are left out too
        wide = {c.invariant for c in zs.CONJUNCTS if c.kind in zs.WIDE_KINDS}
        used = [c for c in zs.CONJUNCTS if frame_terms or c.invariant not in wide]
        parts = [zs.geometry_axiom(s)]
        parts += [c.body(s) for c in used if c.kind == "cache"]
        for t in slab_terms:
            parts += [c.body(s, t) for c in used if c.kind == "slab"]
            for i in idx_terms:
                parts += [c.body(s, t, i) for c in used if c.kind == "object"]
                # counting fact of inuse = |objects in use|: an element => not empty
                parts.append(z3.Implies(z3.And(s.live[t], s.alloc[zs.okey(t, i)]),
                                        s.inuse[t] != zs.cntv(0)))
        if frame_terms:
            parts.append(self._wide(s, slab_terms, frame_terms))
        return z3.And(*parts)

    @staticmethod
    def _wide(s, slab_terms, frame_terms):
        parts = []
        for p in frame_terms:
            parts += [c.body(s, p) for c in zs.CONJUNCTS if c.kind == "frame"]
            for t in slab_terms:
                parts += [c.body(s, t, p) for c in zs.CONJUNCTS if c.kind == "slab_frame"]
        for a in slab_terms:
            for b in slab_terms:
                parts += [c.body(s, a, b) for c in zs.CONJUNCTS if c.kind == "pair"]
        return z3.And(*parts)

    def _terms(self, step, wide):
        """(slab terms, index terms, frame terms) of an obligation: the skolem constants
        and the operation's own; the frames only for an invariant with frame or pair
        conjuncts (the slab terms are frames too: a slab id is its first pfn)."""
        op_slabs = step.slab_terms if step else []
        slabs = [self.sstar, *([self.tstar] if wide else []), *op_slabs]
        idxs = [self.istar, *(step.idx_terms if step else [])]
        frames = [self.pstar, *slabs, *(step.frame_terms if step else [])] if wide else []
        return slabs, idxs, frames

    def _named_terms(self, step):
        """The terms a lifted counterexample is built from: the obligation's, and for a
        narrow invariant also the named slabs' first frames and the operation's frames
        (the lifted state must satisfy the frame conjuncts too)."""
        slabs, idxs, frames = self._terms(step, self.wide)
        return slabs, idxs, frames or [*slabs, *(step.frame_terms if step else [])]

    def _goal_parts(self, invariant, pre, post, step):
        """[(conjunct label, formula that must hold)] at the skolem constants."""
        sx, ix, lx = self.sstar, self.istar, self.lstar
        out = []
        for c in zs.conjuncts(invariant):
            if c.kind == "cache":
                out.append((c.label, c.body(post)))
            elif c.kind == "slab":
                out.append((c.label, c.body(post, sx)))
            elif c.kind == "object":
                out.append((c.label, c.body(post, sx, ix)))
            elif c.kind == "frame":
                out.append((c.label, c.body(post, self.pstar)))
            elif c.kind == "slab_frame":
                out.append((c.label, c.body(post, sx, self.pstar)))
            elif c.kind == "pair":
                out.append((c.label, c.body(post, sx, self.tstar)))
            elif step is None:
                # boot: no slab, no object in use, every counter zero
                empty = z3.And(z3.Not(post.live[sx]), z3.Not(post.alloc[zs.okey(sx, ix)]))
                counter = {"free_objects": post.free_objects,
                           "list_nr": post.nr[lx]}.get(c.label, zs.cntv(0))
                out.append((c.label, z3.And(empty, counter == zs.cntv(0))))
            else:
                out.append((c.label, self._delta(c.label, pre, post, step)))
        if invariant == "slab_accounting" and step is not None:
            out.append(("frame", self._frame(pre, post, step)))
        return out

    def _delta(self, label, pre, post, step):
        sx, lx = self.sstar, self.lstar
        keys = [zs.okey(a, b) for a, b in step.objects]
        if label == "inuse_count":
            d = zs.cntv(0)
            for (ws, _), k in zip(step.objects, keys):
                d = d + z3.If(ws == sx, zs.ind(post.alloc[k]) - zs.ind(pre.alloc[k]),
                              zs.cntv(0))
            before = z3.If(pre.live[sx], pre.inuse[sx], zs.cntv(0))
            return z3.And(_distinct(keys),
                          z3.Implies(post.live[sx], post.inuse[sx] == before + d))
        d = zs.cntv(0)
        for w in step.slabs:
            if label == "free_objects":
                d = d + zs.slab_weight(post, w) - zs.slab_weight(pre, w)
            else:
                d = d + zs.ind(z3.And(post.live[w], post.lst[w] == lx)) \
                    - zs.ind(z3.And(pre.live[w], pre.lst[w] == lx))
        if label == "free_objects":
            return z3.And(_distinct(step.slabs), post.free_objects - pre.free_objects == d)
        return z3.And(_distinct(step.slabs), post.nr[lx] - pre.nr[lx] == d)

    def _frame(self, pre, post, step):
        """Outside the written slabs and objects the fields the counts read are unchanged."""
        sx, k = self.sstar, zs.okey(self.sstar, self.istar)
        out_s = z3.And(*[sx != w for w in step.slabs])
        out_o = z3.And(*[k != zs.okey(a, b) for a, b in step.objects])
        return z3.And(
            z3.Implies(out_s, z3.And(*[getattr(post, f)[sx] == getattr(pre, f)[sx]
                                       for f in ("live", "lst", "inuse")])),
            z3.Implies(out_o, post.alloc[k] == pre.alloc[k]))

    @staticmethod
    def is_wide(invariant):
        """Whether an invariant needs the frame terms (None: every invariant)."""
        return invariant is None or any(c.kind in zs.WIDE_KINDS
                                        for c in zs.conjuncts(invariant))

    def _setup(self, operation, invariant=None):
        """(pre, post, step, cond, hyp) for one obligation (invariant None: the
        hypothesis every invariant's obligation may use)."""
        self.wide = self.is_wide(invariant)
        if operation == "boot":
            cond, post = zs.initial_state(self.pre)
            return self.pre, post, None, z3.And(cond, zs.geometry_axiom(post)), z3.BoolVal(True)
        step = zs.OPERATIONS[operation](self.enc, self.pre)
        slabs, idxs, frames = self._terms(step, self.wide)
        hyp = self._hyp(self.pre, slabs, idxs, frames)
        cond = step.cond
        if frames:
            cond = z3.And(cond, *self._page_conds(step, frames))
        return self.pre, step.post, step, cond, hyp

    @staticmethod
    def _page_conds(step, frames):
        """The page allocator's part of the condition, its per-frame part at `frames`."""
        out = [] if step.page_cond is None else [step.page_cond]
        if step.frame_cond is not None:
            out += [step.frame_cond(p) for p in frames]
        return out

    # -- solving -----------------------------------------------------------------------

    def prove(self, invariant: str, operation: str) -> Row:
        start = time.perf_counter()
        pre, post, step, cond, hyp = self._setup(operation, invariant)
        parts = self._goal_parts(invariant, pre, post, step)
        goal = z3.And(*[f for _, f in parts])
        solver = z3.Solver()
        solver.add(hyp, cond, z3.Not(goal))
        result = check_patiently(solver, self.timeout_ms)
        scope = _scope(invariant, operation)
        if result == z3.unsat:
            return Row(invariant, operation, STATUS_PROVED, scope,
                       time.perf_counter() - start, {"engine": "instantiation"})
        if result == z3.unknown:
            return Row(invariant, operation, STATUS_UNKNOWN, scope, time.perf_counter() - start,
                       {"engine": "instantiation", "reason": solver.reason_unknown()})
        model, lifted, why = self._refutation(solver, step, operation, invariant)
        failing = [label for label, f in parts if z3.is_false(model.eval(f, True))]
        detail = {"engine": "instantiation", "failing_conjuncts": failing,
                  "smallest_failing_conjunct": _smallest(parts, failing),
                  "counterexample": self.counterexample(model, pre, post, step)}
        if lifted:
            detail["lifted"] = ("a finite cache satisfying every invariant at every slab "
                                "and object from which the operation breaks it")
            return Row(invariant, operation, STATUS_REFUTED, scope,
                       time.perf_counter() - start, detail)
        detail["reason"] = f"the instantiated query is satisfiable but its model {why}"
        return Row(invariant, operation, STATUS_UNKNOWN, scope, time.perf_counter() - start,
                   detail)

    def _refutation(self, solver, step, operation, invariant):
        """(model, genuine?, why not) for a satisfiable query."""
        if step is None:
            # the initial state is exact at every slab and object: nothing was
            # instantiated, so any model is a genuine counterexample
            return solver.model(), True, ""
        first, why = solver.model(), "was not tried"
        for extra in self._closures(step):
            solver.push()
            solver.add(extra)
            if solver.check() == z3.sat:
                model = solver.model()
                lifted, why = self._lift(model, step, operation, invariant)
                if lifted:
                    return model, True, ""
            solver.pop()
        return first, False, why

    def _closures(self, step):
        """Extra constraints that make a model liftable, tried in turn: the counters are
        what the named slabs alone give (the lifted state has no other slab), first
        with s* the operation's slab, a small num (few objects to fill in) and a
        general cache's object size as kmem_cache_init makes it, for a readable
        counterexample."""
        if step is None:
            return []
        s = self.pre
        terms, idx, frames = self._named_terms(step)
        firsts = [z3.And(*[t != u for u in terms[:j]]) for j, t in enumerate(terms)]
        free = zs.cntv(0)
        per_list = [zs.cntv(0)] * 3
        for t, first in zip(terms, firsts):
            free = free + z3.If(first, zs.slab_weight(s, t), zs.cntv(0))
            per_list = [c + z3.If(first, zs.ind(z3.And(s.live[t], s.lst[t] == zs.lstv(L))),
                                  zs.cntv(0)) for L, c in enumerate(per_list)]
        closed = [s.free_objects == free,
                  *[s.nr[zs.lstv(L)] == c for L, c in enumerate(per_list)]]
        # every invariant holds at the named slabs, objects and frames (a narrow
        # obligation's hypothesis leaves out the frame invariants; the lifted state is
        # checked against all of them everywhere)
        closed.append(self._hyp(s, terms, idx, frames))
        closed += self._page_conds(step, frames)
        # the named objects of each live slab fit its inuse: as many in use as at most
        # inuse, as many free as at most num - inuse (so the rest can be filled in)
        ifirsts = [z3.And(*[i != j for j in idx[:n]]) for n, i in enumerate(idx)]
        for t in terms:
            used, free_named = zs.cntv(0), zs.cntv(0)
            for i, first in zip(idx, ifirsts):
                below = z3.And(first, z3.ULT(zs.idx_ext(i), s.num))
                used = used + zs.ind(z3.And(below, s.alloc[zs.okey(t, i)]))
                free_named = free_named + zs.ind(z3.And(below, z3.Not(s.alloc[zs.okey(t, i)])))
            closed.append(z3.Implies(s.live[t], z3.And(
                z3.ULE(used, s.inuse[t]), z3.ULE(free_named, s.num - s.inuse[t]))))
        closed = z3.And(*closed)
        # a general cache's objects are its class size rounded up to the alignment
        real = z3.Implies(z3.ULT(s.kclass, zs.clsv(zs.NCLASS)),
                          z3.ULT(s.objsize, zs.size_of_class(s.kclass) + s.align))
        small = z3.And(closed, real, z3.ULE(s.num, zs.cntv(64)))
        # first with s* on the operation's slab: the counterexample then shows it
        on_op = [z3.And(small, self.sstar == step.slab_terms[0])] if step.slab_terms else []
        return [*on_op, small, closed, z3.BoolVal(True)]

    # -- lifting a model to a concrete counterexample ------------------------------------

    def _named(self, model, step):
        ev = lambda e: model.eval(e, True)    # noqa: E731
        slab_terms, idx_terms, frame_terms = self._named_terms(step)
        slabs = sorted({ev(t).as_long() for t in slab_terms})
        idxs = sorted({ev(t).as_long() for t in idx_terms})
        frames = sorted({ev(t).as_long() for t in frame_terms})
        return slabs, idxs, frames

    def _lift(self, model, step, operation, invariant):
        """(True, "") if the model gives a genuine counterexample, else (False, why)."""
        if step is None:
            return False, "is of the initial state"
        pre = self.pre
        ev = lambda e: model.eval(e, True)    # noqa: E731
        geometry = {}
        for name in zs.GEOMETRY:
            v = ev(getattr(pre, name))
            geometry[name] = z3.is_true(v) if z3.is_bool(v) else v.as_long()
        num = geometry["num"]
        slabs, idxs, named_frames = self._named(model, step)
        live, objects = {}, {}
        for sid in slabs:
            sv = z3.BitVecVal(sid, zs.SLAB_BITS)
            for i in idxs:
                k = zs.okey(sv, z3.BitVecVal(i, zs.IDX_BITS))
                o = {"alloc": z3.is_true(ev(pre.alloc[k])), "km": z3.is_true(ev(pre.km[k])),
                     "req": ev(pre.req[k]).as_long(),
                     "parked": z3.is_true(ev(pre.parked[k]))}
                if o["alloc"] or o["km"] or o["parked"]:
                    objects[(sid, i)] = o
            if z3.is_true(ev(pre.live[sv])):
                live[sid] = {f: ev(getattr(pre, f)[sv]).as_long()
                             for f in ("lst", "inuse", "coff", "s_mem", "mg")}
                used = sum(1 for (s2, _), o in objects.items() if s2 == sid and o["alloc"])
                more = live[sid]["inuse"] - used
                if more < 0 or live[sid]["inuse"] > num:
                    return False, f"gives slab {sid:#x} inuse {live[sid]['inuse']} that " \
                                  "no set of objects has"
                fill = [i for i in range(num) if i not in idxs][:more]
                if len(fill) < more:
                    return False, f"needs more objects in use in slab {sid:#x} than it has"
                for i in fill:
                    objects[(sid, i)] = {"alloc": True, "km": False, "req": 0,
                                         "parked": False}
        # frames: the live slabs' blocks, and the named frames of other caches' slabs
        frames = {}
        for sid in live:
            for p in range(sid, min(sid + (1 << geometry["gfporder"]), 1 << zs.SLAB_BITS)):
                frames[p] = {"pg_slab": True, "mine": True, "pslab": sid, "other": False}
        for p in named_frames:
            if p not in frames and z3.is_true(ev(pre.other[z3.BitVecVal(p, zs.SLAB_BITS)])):
                frames[p] = {"pg_slab": True, "mine": False, "pslab": 0, "other": True}
        conc = zs.Concrete(geometry, ev(pre.colour_next).as_long(),
                           ev(pre.free_objects).as_long(),
                           tuple(ev(pre.nr[zs.lstv(L)]).as_long() for L in range(3)),
                           live, objects, frames)
        cpre = zs.to_state(conc)
        if not zs.valid(zs.geometry_axiom(cpre)):
            return False, "breaks the geometry axiom"
        support = conc.support()
        for name in zs.INVARIANTS:
            if not zs.invariant_holds(cpre, name, support):
                return False, f"does not lift to a state satisfying {name} everywhere"
        params = {k: ev(v) for k, v in step.params.items()}
        ok, cpost = zs.apply(self.enc, operation, cpre, **params)
        if not ok:
            return False, "does not satisfy the condition on the lifted state"
        # the operation writes alloc only at the named objects
        post_support = {sid: sorted(set(support.get(sid, [])) | set(idxs))
                        for sid in set(support) | set(slabs)}
        if zs.invariant_holds(cpost, invariant, post_support):
            return False, "lifts to a state the operation does not break"
        return True, ""

    # -- counterexamples ------------------------------------------------------------------

    def counterexample(self, model, pre, post, step) -> dict:
        """The model as a readable dict; "lines" is what `kmemspec prove` prints."""
        ev = lambda e: model.eval(e, True)    # noqa: E731
        num = lambda e: ev(e).as_long()      # noqa: E731
        geo = {name: (z3.is_true(ev(getattr(pre, name))) if name in ("off_slab", "dma")
                      else num(getattr(pre, name))) for name in zs.GEOMETRY}
        kclass = geo["kclass"]
        klabel = (f"size-{zs.SIZES[kclass]}{'(DMA)' if geo['dma'] else ''}"
                  if kclass < zs.NCLASS else "not a kmalloc cache")
        lines = [f"geometry: objsize {geo['objsize']}, align {geo['align']}, gfporder "
                 f"{geo['gfporder']}, num {geo['num']}, num x objsize {geo['objs']}, "
                 f"management {geo['mgmt']} ({'off' if geo['off_slab'] else 'on'}-slab), "
                 f"left_over {geo['left_over']}, colour {geo['colour']}, colour_off "
                 f"{geo['colour_off']}; {klabel}"]
        # boot has no state before: its pre state only carries the geometry
        states = (("initial", post),) if step is None else (("before", pre), ("after", post))
        cache = {}
        for label, st in states:
            cache[label] = {"colour_next": num(st.colour_next),
                            "free_objects": num(st.free_objects),
                            "nr": [num(st.nr[zs.lstv(L)]) for L in range(3)]}
            c = cache[label]
            lines.append(f"cache {label}: colour_next {c['colour_next']}, free_objects "
                         f"{c['free_objects']}, slabs full/partial/free {c['nr']}")
        names = {"s*": self.sstar}
        idx_names = {"i*": self.istar}
        params = {}
        if step is not None:
            for k, v in step.params.items():
                params[k] = z3.is_true(ev(v)) if z3.is_bool(v) else num(v)
            names.update({k: v for k, v in step.params.items() if k.startswith("s")
                          and v.sort() == zs.SLAB})
            idx_names.update({k: v for k, v in step.params.items() if v.sort() == zs.IDX})
            lines.append("params: " + ", ".join(
                f"{k}={v:#x}" if type(v) is int else f"{k}={v}" for k, v in params.items()))
        slabs: dict[int, list[str]] = {}
        for label, t in names.items():
            slabs.setdefault(num(t), []).append(label)
        idxs: dict[int, list[str]] = {}
        for label, t in idx_names.items():
            idxs.setdefault(num(t), []).append(label)
        out_slabs = {}
        for sid, labels in sorted(slabs.items()):
            sv = z3.BitVecVal(sid, zs.SLAB_BITS)
            entry = {"names": labels}
            lines.append(f"slab {sid:#07x} ({', '.join(labels)})")
            for label, st in states:
                entry[label] = _slab_state(ev, st, sv, geo)
                lines.append(f"    {label + ':':7s} {entry[label]}")
            for i, ilabels in sorted(idxs.items()):
                k = zs.okey(sv, z3.BitVecVal(i, zs.IDX_BITS))
                objs = [_obj_state(ev, st, k) for st in (pre if step else post, post)]
                if objs[0] != "free" or objs[1] != "free":
                    lines.append(f"    object {i} ({', '.join(ilabels)}): {objs[0]} -> {objs[1]}")
                    entry[f"object {i}"] = objs
            out_slabs[sid] = entry
        out_frames = {}
        if self.wide:
            frame_names = {"p*": self.pstar}
            if step is not None:
                frame_names.update({f"frame of {k}": zs.pfn_of(v) for k, v in step.params.items()
                                    if k.startswith("mg")})
            for label, t in frame_names.items():
                pv = ev(t)
                states_f = [_frame_state(ev, st, pv) for _, st in states]
                out_frames[pv.as_long()] = states_f
                lines.append(f"frame {pv.as_long():#07x} ({label}): " + " -> ".join(states_f))
        return {"lines": lines, "geometry": geo, "cache": cache, "params": params,
                "slabs": out_slabs, "frames": out_frames}


def _slab_state(ev, s, sv, geo) -> str:
    if not z3.is_true(ev(s.live[sv])):
        return "not a slab of the cache"
    lst = ev(s.lst[sv]).as_long()
    coff = ev(s.coff[sv]).as_long()
    offset = coff - geo["mgmt"]
    colour = offset >> geo["cshift"] if offset >= 0 else None
    mg = f", off-slab struct slab {ev(s.mg[sv]).as_long():#x}" if geo["off_slab"] else ""
    return (f"on slabs_{zs.LIST_NAMES[lst] if lst < 3 else lst}, inuse "
            f"{ev(s.inuse[sv]).as_long()}, colouroff {coff} (colour offset {offset}, index "
            f"{colour}), s_mem {ev(s.s_mem[sv]).as_long():#x}{mg}")


def _frame_state(ev, s, pv) -> str:
    mark = "PG_slab" if z3.is_true(ev(s.pg_slab[pv])) else "no PG_slab"
    if z3.is_true(ev(s.mine[pv])):
        return f"{mark}, page of slab {ev(s.pslab[pv]).as_long():#07x} of this cache"
    return f"{mark}, {'page of another cache' if z3.is_true(ev(s.other[pv])) else 'no slab page'}"


def _obj_state(ev, s, k) -> str:
    if not z3.is_true(ev(s.alloc[k])):
        return "free" if not z3.is_true(ev(s.km[k])) else \
            f"free but kmalloc({ev(s.req[k]).as_long()})"
    if z3.is_true(ev(s.km[k])):
        return f"kmalloc({ev(s.req[k]).as_long()})"
    return "in use"


def _distinct(terms):
    return z3.Distinct(*terms) if len(terms) > 1 else z3.BoolVal(True)


def _smallest(parts, failing):
    sizes = {label: len(f.sexpr()) for label, f in parts if label in failing}
    return min(sizes, key=sizes.get) if sizes else None


def prove_slab(invariants=None, operations=None, seed_bug=None, timeout_ms=30000,
               progress=None) -> list[Row]:
    """Every (invariant, operation) obligation of the slab layer, in INVARIANTS x
    OPERATIONS order; `seed_bug` names an entry of SEEDED_BUGS to prove instead."""
    for name in invariants or ():
        if name not in INVARIANTS:
            raise ValueError(f"unknown slab invariant {name!r} (known: {', '.join(INVARIANTS)})")
    for name in operations or ():
        if name not in OPERATIONS:
            raise ValueError(f"unknown slab operation {name!r} (known: {', '.join(OPERATIONS)})")
    enc = Encoding.seeded(seed_bug) if seed_bug else Encoding()
    return prove_grid(SlabProver(enc, timeout_ms), invariants or INVARIANTS,
                      operations or OPERATIONS, progress)
