"""The slab layer's Z3 obligations (proofs/slab_obligations.py) and their tie to the model.

(1) every obligation is proved, non-vacuously; (2) every seeded bug is refuted at its
obligation with a counterexample; (3) on caches reached by real call sequences each Z3
invariant on the abstraction equals the Python predicate and every call's (pre, post)
is the encoded transition; (4) broken encodings, predicates and models make (3) fail.
"""

from __future__ import annotations

import copy
import functools
import os

import pytest
import z3
from hypothesis import Phase, given, settings, strategies as st

from kmemspec.model import boot, kmalloc as kmalloc_mod, slab as slab_mod
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.model.mem_map import PG_slab
from kmemspec.proofs import slab_obligations as so
from kmemspec.spec import z3_agreement_slab as agree
from kmemspec.spec import z3_slab as zs
# the agreement check itself lives in the package: `kmemspec verify` runs FIXED too
from kmemspec.spec.z3_agreement_slab import (FIXED, abstractions, checked_caches,
                                             fresh_machine, run_and_check, slab_violations,
                                             z3_verdict)

EXAMPLES = 5 if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else 60


# --- (1) the obligations ----------------------------------------------------------------

@pytest.fixture(scope="module")
def rows():
    return so.prove_slab(timeout_ms=20000)


def test_every_obligation_is_proved(rows):
    assert {(r.invariant, r.operation) for r in rows} == \
        {(i, o) for i in so.INVARIANTS for o in so.OPERATIONS}
    assert {"colour_within_slack", "slab_accounting", "size_class", "no_overlap",
            "page_state"} <= set(so.INVARIANTS)
    assert "boot" in so.OPERATIONS
    bad = [(r.invariant, r.operation, r.status, r.detail) for r in rows if r.status != "proved"]
    assert not bad, bad
    for r in rows:
        assert r.scope.startswith("unbounded: all 2^20 slab ids"), r.scope
        assert "geometry axiom assumed" in r.scope


@pytest.mark.parametrize("operation", so.OPERATIONS)
def test_obligations_are_not_vacuous(operation):
    """Inv(s) and cond are satisfiable together (a proof is not won by an empty premise)."""
    prover = so.SlabProver()
    _, _, _, cond, hyp = prover._setup(operation)
    solver = z3.Solver()
    solver.set("timeout", 20000)
    solver.add(hyp, cond)
    assert solver.check() == z3.sat


def test_progress_is_called_per_row():
    seen = []
    out = so.prove_slab(invariants=["size_class"], operations=["boot", "kfree"],
                        progress=seen.append)
    assert seen == out and [r.operation for r in out] == ["boot", "kfree"]
    with pytest.raises(ValueError):
        so.prove_slab(invariants=["no_such_invariant"])


@pytest.mark.parametrize("operation", ["free_block", "slab_destroy"])
def test_spurious_model_is_unknown_not_refuted(monkeypatch, operation):
    """Without the counting fact the instantiated query has models with an object in use
    in a slab whose inuse is 0: no cache has that state, so lifting fails and the row
    is unknown -- neither proved nor refuted."""
    def weaker(self, s, slab_terms, idx_terms, frame_terms=()):
        parts = [zs.geometry_axiom(s)] + [c.body(s) for c in zs.CONJUNCTS if c.kind == "cache"]
        for t in slab_terms:
            parts += [c.body(s, t) for c in zs.CONJUNCTS if c.kind == "slab"]
            for i in idx_terms:
                parts += [c.body(s, t, i) for c in zs.CONJUNCTS if c.kind == "object"]
        if frame_terms:
            parts.append(self._wide(s, slab_terms, frame_terms))
        return z3.And(*parts)
    monkeypatch.setattr(so.SlabProver, "_hyp", weaker)
    row = so.SlabProver().prove("slab_accounting", operation)
    assert row.status == "unknown", row
    assert "no set of objects" in row.detail["reason"]


# --- (2) seeded bugs ----------------------------------------------------------------------

# bug -> (invariant, operation, conjuncts its counterexample may show)
EXPECTED = {
    "colour_next_not_wrapped": ("colour_within_slack", "cache_grow", {"colour_next"}),
    "colouroff_without_mgmt": ("colour_within_slack", "cache_grow",
                               {"offset_in_slack", "offset_on_grid", "offset_colour"}),
    "inuse_not_incremented": ("slab_accounting", "cache_alloc_refill",
                              {"inuse_count", "free_objects", "list_by_inuse"}),
    "free_not_moved_to_partial": ("slab_accounting", "free_block", {"list_by_inuse"}),
    "free_block_of_a_held_object": ("size_class", "free_block", {"kmalloc_live"}),
    "pop_leaves_it_parked": ("slab_accounting", "kmalloc", {"parked_not_held"}),
    "kmalloc_class_below": ("size_class", "kmalloc", {"smallest_class", "fits"}),
    "destroy_partial_slab": ("slab_accounting", "slab_destroy",
                             {"free_objects", "object_of_live_slab", "list_nr"}),
    "grow_free_objects_not_updated": ("slab_accounting", "cache_grow", {"free_objects"}),
    "s_mem_over_mgmt": ("no_overlap", "cache_grow", {"objects_after_mgmt"}),
    "grow_marks_first_page_only": ("page_state", "cache_grow", {"slab_frames"}),
    "destroy_keeps_pg_slab": ("page_state", "slab_destroy", {"marked_frames"}),
}


def test_every_seeded_bug_has_an_expectation():
    assert set(EXPECTED) == set(so.SEEDED_BUGS) and len(EXPECTED) >= 4
    assert all(isinstance(v, str) and v for v in so.SEEDED_BUGS.values())


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_seeded_bug_is_refuted(bug):
    invariant, operation, allowed = EXPECTED[bug]
    [row] = so.prove_slab(invariants=[invariant], operations=[operation], seed_bug=bug,
                          timeout_ms=20000)
    assert row.status == "refuted", row
    d = row.detail
    assert allowed & set(d["failing_conjuncts"]), d["failing_conjuncts"]
    assert d["smallest_failing_conjunct"] in d["failing_conjuncts"]
    lines = d["counterexample"]["lines"]
    assert lines and all(isinstance(x, str) for x in lines)
    assert lines[0].startswith("geometry:") and any("before" in x for x in lines)


# --- (3) agreement with the running model ---------------------------------------------------

calls = st.lists(st.one_of(
    st.tuples(st.just("alloc"), st.integers(0, 1)),
    st.tuples(st.just("kmalloc"), st.sampled_from([1, 32, 33, 100, 128, 129, 700, 3000, 5000]),
              st.booleans()),
    st.tuples(st.just("free"), st.integers(0, 63)),
    st.tuples(st.just("shrink"), st.integers(0, 1)),
    st.tuples(st.just("reap"), st.integers(0, 1))), min_size=1, max_size=8)


# no shrinking: each example costs about a second of Z3, so shrinking a failure could
# run for many minutes; the fixed workload (also a `verify` facts row) pins it down
@settings(max_examples=EXAMPLES, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(calls)
def test_model_transitions_and_invariants_agree_with_z3(seq):
    machine, caches = fresh_machine()
    for name in zs.INVARIANTS:
        assert z3_verdict(machine, name, checked_caches(machine, *caches)), name
    assert run_and_check(machine, caches, seq) is None


def is_encoded_boot(cachep, machine, size) -> list[str]:
    """A fresh cache is the encoded kmem_cache_create of `size` bytes: the geometry
    axiom and the create-time definitions hold, and the state is the initial one."""
    s = zs.to_state(zs.alpha(machine, cachep))
    problems = [] if zs.valid(zs.geometry_axiom(s)) else ["geometry axiom"]
    cond, post = zs.initial_state(s)
    size_v = z3.Const("create_size", zs.BYTES)
    if not zs.valid(z3.substitute(cond, (size_v, z3.BitVecVal(size, zs.BYTE_BITS)))):
        problems.append("create-time definitions")
    return problems + zs.states_equal(post, s)


def test_boot_caches_are_the_encoded_boot():
    machine, _ = fresh_machine()
    state = machine.slab
    for k, size in enumerate(machine.profile.kmalloc_sizes):
        for cachep in (state.malloc_sizes[k], state.malloc_sizes_dma[k]):
            if not cachep.slabs:
                assert is_encoded_boot(cachep, machine, size) == [], cachep.name


@settings(max_examples=4 * EXAMPLES, deadline=None)
@given(st.integers(4, 131072) | st.sampled_from([4, 32, 100, 511, 512, 1100, 4096]),
       st.sampled_from([0, 4, 8, 64, 128, 512, 4096]),
       st.sampled_from([0, slab_mod.SLAB_HWCACHE_ALIGN, slab_mod.SLAB_RECLAIM_ACCOUNT]))
def test_kmem_cache_create_is_the_encoded_boot(size, align, flags):
    """The assumed geometry axiom holds for every geometry the model computes."""
    machine = boot(phys_pages=256, highmem_pages=0)
    cachep = slab_mod.kmem_cache_create(machine, "t", size, align, flags)
    if cachep is not None:
        assert is_encoded_boot(cachep, machine, size) == []


def test_fixed_workload_agrees():
    machine, caches = fresh_machine()
    assert run_and_check(machine, caches, FIXED) is None
    small = caches[0]
    assert small.colour_next == 4 and len(small.slabs) == 3
    assert sorted(s.colouroff for s in small.slabs.values()) == [32, 160, 416]


def test_other_caches_steps_are_encoded_steps(monkeypatch):
    """"big" is off-slab: its cache_grow takes a struct slab from slabp_cache, which
    grows too; that growth is checked as the encoded other_cache_grow."""
    seen = []
    real = agree.environment

    def counting(*args):
        out = real(*args)
        seen.extend(op for op, _ in out)
        return out
    monkeypatch.setattr(agree, "environment", counting)
    machine, caches = fresh_machine()
    # the bootstrap leaves size-32 with free objects (it holds array_caches and struct
    # slabs, spec/slab.md): use them up so that big's first struct slab makes it grow
    s32 = machine.slab.malloc_sizes[0]
    while s32.array[0].entry or s32.shared_array.entry or s32.slabs_partial.nr \
            or s32.slabs_free.nr:
        kmalloc_mod.kmalloc(machine, 32, GFP_KERNEL)
    assert run_and_check(machine, caches, [("alloc", 1)] * 6, check_invariants=False) is None
    assert "other_cache_grow" in seen


# --- (4) the agreement check can fail --------------------------------------------------------

@pytest.mark.parametrize("bug", ["colour_next_not_wrapped", "colouroff_without_mgmt",
                                 "inuse_not_incremented", "free_not_moved_to_partial",
                                 "kmalloc_class_below", "grow_free_objects_not_updated",
                                 "s_mem_over_mgmt", "grow_marks_first_page_only",
                                 "destroy_keeps_pg_slab"])
def test_broken_encoding_disagrees_with_model(bug):
    machine, caches = fresh_machine()
    found = run_and_check(machine, caches, FIXED, enc=zs.Encoding.seeded(bug),
                          check_invariants=False)
    assert found is not None, bug


def test_broken_predicate_disagrees(monkeypatch):
    # a smallest_class that compares the request with the object's own class instead of
    # the class below: kmalloc(33) from size-64 is correct, the broken formula says no
    def broken(s, sid, i):
        k = zs.okey(sid, i)
        return z3.Implies(s.km[k], z3.ULT(zs.size_of_class(s.kclass), s.req[k]))
    patched = [zs.Conjunct(c.invariant, c.label, "broken", c.kind, broken)
               if c.label == "smallest_class" else c for c in zs.CONJUNCTS]
    monkeypatch.setattr(zs, "CONJUNCTS", patched)
    machine, caches = fresh_machine()
    found = run_and_check(machine, caches, [("kmalloc", 33, False)])
    assert found is not None and "size_class" in found


def _patched(monkeypatch, label, body):
    patched = [zs.Conjunct(c.invariant, c.label, "broken", c.kind, body)
               if c.label == label else c for c in zs.CONJUNCTS]
    monkeypatch.setattr(zs, "CONJUNCTS", patched)


def test_broken_frame_predicate_disagrees(monkeypatch):
    # slab_frames reading the block one frame too far: the frame after a slab is no
    # page of it, so Z3 rejects a correct state
    def broken(s, sid, p):
        inside = z3.And(z3.ULE(sid, p), z3.ULE(p - sid, zs.block_pages(s)))
        return z3.Implies(z3.And(s.live[sid], inside),
                          z3.And(s.pg_slab[p], s.mine[p], s.pslab[p] == sid))
    _patched(monkeypatch, "slab_frames", broken)
    machine, caches = fresh_machine()
    found = run_and_check(machine, caches, [("alloc", 0)])
    assert found is not None and "page_state is True in Python, False in Z3" in found


def test_broken_overlap_predicate_disagrees(monkeypatch):
    # objects_after_mgmt counting the on-slab management twice (colouroff has it)
    def broken(s, sid):
        return z3.Implies(s.live[sid], z3.ULE(zs.slab_base(sid) + s.coff[sid] + s.mgmt,
                                              s.s_mem[sid]))
    _patched(monkeypatch, "objects_after_mgmt", broken)
    machine, caches = fresh_machine()
    found = run_and_check(machine, caches, [("alloc", 0)])
    assert found is not None and "no_overlap is True in Python, False in Z3" in found


def test_seeded_model_pg_slab_bug_disagrees(monkeypatch):
    # kmem_freepages forgetting ClearPageSlab: the model keeps PG_slab on freed pages
    real = slab_mod.slab_destroy

    def destroy(machine, cachep, slab, cpu=0):
        kept = [p for p in range(slab.id, slab.id + (1 << cachep.gfporder))]
        real(machine, cachep, slab, cpu)
        for p in kept:
            machine.mem_map.flags[p] |= PG_slab
    monkeypatch.setattr(slab_mod, "slab_destroy", destroy)
    machine, caches = fresh_machine()
    found = run_and_check(machine, caches, [("alloc", 0), ("free", 0), ("shrink", 0)],
                          check_invariants=False)
    assert found is not None and "pg_slab" in found


def test_seeded_model_bug_disagrees_with_encoding(monkeypatch):
    # free_block forgetting to move a full slab back to slabs_partial
    def free_block(machine, cachep, objs, cpu=0):
        for addr in objs:
            machine.slab.parked.discard(addr)
            slab = machine.slab.page_slab[(addr - 0xC0000000) >> 12]
            objnr = (addr - slab.s_mem) // cachep.objsize
            slab.bufctl[objnr] = slab.free
            slab.free = objnr
            slab.inuse -= 1
            cachep.free_objects += 1
            if slab.inuse == 0:
                slab_mod._list_move(cachep, slab, slab_mod.FREE, False)
    monkeypatch.setattr(slab_mod, "free_block", free_block)
    machine, caches = fresh_machine()
    # the shrink drains the array: the full slab's objects go back through free_block
    found = run_and_check(machine, caches, [("alloc", 0)] * 3 + [("free", 0), ("shrink", 0)],
                          check_invariants=False)
    assert found is not None and "differ" in found


def test_seeded_model_colour_bug_disagrees(monkeypatch):
    # cache_grow that never wraps colour_next: the model's slab leaves the slack
    real = slab_mod.cache_grow

    def grow(machine, cachep, flags, cpu=0):
        nxt = cachep.colour_next
        ok = real(machine, cachep, flags, cpu)
        cachep.colour_next = nxt + 1
        return ok
    monkeypatch.setattr(slab_mod, "cache_grow", grow)
    machine, caches = fresh_machine()
    # colour 5: the fifth cache_grow (objects 13..15) leaves colour_next at 5, not 0
    found = run_and_check(machine, caches, [("alloc", 0)] * 16, check_invariants=False)
    assert found is not None and "colour_next" in found


def _a_slab(cachep):
    return next(iter(cachep.slabs.values()))


def _park_a_free_object(machine):
    """Push the head of some slab's free list onto its cache's CPU 0 array: an object
    both parked and free."""
    cachep, slab = next((c, s) for c in machine.slab.cache_chain for s in c.slabs.values()
                        if s.free != c.BUFCTL_END)
    cachep.array[0].entry.append(slab.s_mem + slab.free * cachep.objsize)


def _a_free_frame(machine):
    return next(p for p, f in enumerate(machine.mem_map.flags)
                if not f & PG_slab and p not in machine.page_owner)


@functools.lru_cache(maxsize=1)
def _busy_once():
    machine, caches = fresh_machine()
    assert run_and_check(machine, caches, FIXED[:11], check_invariants=False) is None
    return machine, caches


def _busy():
    """A copy of the machine after the first 11 calls of FIXED (mutated by the caller)."""
    return copy.deepcopy(_busy_once())


@pytest.mark.parametrize("name,mutate", [
    ("colour_within_slack", lambda m, c: setattr(c[0], "colour", c[0].colour + 1)),
    ("colour_within_slack", lambda m, c: setattr(c[0], "colour_next", c[0].colour)),
    ("slab_accounting", lambda m, c: setattr(c[0], "free_objects", c[0].free_objects - 1)),
    ("slab_accounting", lambda m, c: setattr(_a_slab(c[0]), "inuse",
                                             _a_slab(c[0]).inuse + 1)),
    # an object parked in an array that is also back on its slab's free list
    ("slab_accounting", lambda m, c: _park_a_free_object(m)),
    ("slab_accounting", lambda m, c: setattr(c[0].slabs_full, "nr", c[0].slabs_full.nr + 1)),
    ("size_class", lambda m, c: m.slab.kmalloc_req.update(
        {a: 20 for a, r in m.slab.kmalloc_req.items() if r == 100})),
    # object 0 of a "small" slab (no kmalloc objects) moved back over its struct slab
    ("no_overlap", lambda m, c: setattr(_a_slab(c[0]), "s_mem", _a_slab(c[0]).s_mem - 8)),
    ("page_state", lambda m, c: m.mem_map.flags.__setitem__(
        _a_slab(c[0]).id, m.mem_map.flags[_a_slab(c[0]).id] & ~PG_slab)),
    ("page_state", lambda m, c: m.mem_map.flags.__setitem__(
        _a_free_frame(m), m.mem_map.flags[_a_free_frame(m)] | PG_slab)),
    # a frame of a "small" slab pointing to a slab of another cache
    ("page_state", lambda m, c: m.slab.page_slab.__setitem__(
        _a_slab(c[0]).id, next(s for x in m.slab.cache_chain if x is not c[0] and x.slabs
                                for s in x.slabs.values()))),
])
def test_corrupted_states_agree(name, mutate):
    machine, caches = _busy()
    mutate(machine, caches)
    states = abstractions(machine, checked_caches(machine, *caches))
    assert slab_violations(machine, name), "the mutation broke nothing"
    for inv in zs.INVARIANTS:
        assert (not slab_violations(machine, inv)) == z3_verdict(machine, inv, None, states), inv
