"""The vmalloc / page-table / pkmap Z3 encoding: proofs, seeded bugs, and agreement
with the running model.

(1) every obligation of proofs/vmalloc_obligations.py is proved; (2) every seeded
encoding bug is refuted at the obligation it breaks, with a counterexample; (3) on
machines reached by real call sequences, each Z3 invariant on the abstract image
(spec/z3_vmalloc.py `alpha`) gives the Python predicate's verdict, and each call's
(pre, post) is related by the encoded transitions; (4) a broken encoding, predicate
or model makes that agreement check fail.
"""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings, strategies as st

from kmemspec.model import KernelBug, boot
from kmemspec.model import highmem as hm
from kmemspec.model import page_alloc as pa
from kmemspec.model import vmalloc as vm
from kmemspec.model.gfp import GFP_HIGHUSER, GFP_KERNEL
from kmemspec.model.pgtable import PAGE_KERNEL, mk_pte, set_pte
from kmemspec.proofs.vmalloc_obligations import (INVARIANTS, OPERATIONS, SEEDED_BUGS,
                                                 VmProver, _Terms, prove_vmalloc)
from kmemspec.spec import buddy as _buddy  # noqa: F401  (registers the buddy parts)
from kmemspec.spec import catalogue
from kmemspec.spec import highmem as spec_highmem  # noqa: F401
from kmemspec.spec import vmalloc as spec_vm  # noqa: F401
from kmemspec.spec import z3_vmalloc as zv

PAGE = 4096
free_page = pa.__free_page


# --- (1) and (2): the obligations ------------------------------------------------

@pytest.fixture(scope="module")
def rows():
    return prove_vmalloc(timeout_ms=30000)


def test_every_obligation_is_proved(rows):
    assert {(r.invariant, r.operation) for r in rows} == \
        {(i, o) for i in INVARIANTS for o in OPERATIONS}
    assert set(INVARIANTS) >= {"page_table_consistency", "vm_area_bounds",
                               "pkmap_consistency"}
    bad = [(r.invariant, r.operation, r.status, r.detail) for r in rows
           if r.status != "proved"]
    assert not bad
    assert all(r.scope.startswith("unbounded: all 2^20 vpns and pfns") for r in rows)


# bug -> (invariant, operation, conjuncts the counterexample may violate)
EXPECTED = {
    "no_guard_page": ("vm_area_bounds", "get_vm_area", {"range_owned", "in_range"}),
    "vmalloc_end_unchecked": ("vm_area_bounds", "get_vm_area", {"in_range"}),
    "free_kmapped_page": ("pkmap_consistency", "page_free", {"slot_users"}),
    "map_wrong_index": ("page_table_consistency", "map_step",
                        {"pte_in_area", "area_mapped", "pte_frame"}),
    "unmap_leaves_pte": ("page_table_consistency", "unmap_step",
                         {"pte_in_area", "pte_frame"}),
    "unmap_keeps_owner": ("conservation", "unmap_step", {"frame_in_area", "owned_single"}),
    "flush_keeps_htable": ("pkmap_consistency", "flush_all_zero_pkmaps", {"htable_slot"}),
    "kmap_reuses_unflushed_slot": ("pkmap_consistency", "kmap_new",
                                   {"htable_slot", "slot_page"}),
}


def test_every_seeded_bug_has_an_expectation():
    assert set(EXPECTED) == set(SEEDED_BUGS) and len(SEEDED_BUGS) >= 4
    assert all(isinstance(v, str) and v for v in SEEDED_BUGS.values())


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_seeded_bug_is_refuted(bug):
    invariant, operation, allowed = EXPECTED[bug]
    row, = prove_vmalloc([invariant], [operation], seed_bug=bug, timeout_ms=20000)
    assert row.status == "refuted", row
    assert allowed & set(row.detail["failing_conjuncts"]), row.detail["failing_conjuncts"]
    assert row.detail["smallest_failing_conjunct"] in row.detail["failing_conjuncts"]
    lines = row.detail["counterexample"]["lines"]
    assert lines and all(isinstance(x, str) for x in lines)
    assert any("before" in x for x in lines) and any("after" in x for x in lines)


def test_freeing_a_kmapped_vmalloc_page_is_refuted_too():
    row, = prove_vmalloc(["pkmap_consistency"], ["unmap_step"],
                         seed_bug="free_kmapped_page", timeout_ms=20000)
    assert row.status == "refuted" and "slot_users" in row.detail["failing_conjuncts"]


def test_a_spurious_model_is_not_a_refutation():
    # With the hypothesis instantiated at the skolem constants only, the query has
    # models that no state satisfying the invariants gives; lifting rejects them and
    # the row goes to MBQI instead of being reported refuted.
    class Weak(VmProver):
        def terms(self, step):
            t = _Terms()
            for sort, ts in self.skolem.items():
                for x in ts:
                    t.add(sort, x)
            return t, t
    row = Weak(timeout_ms=1000).prove("page_table_consistency", "unmap_step")
    assert row.detail["engine"] == "quantified" and row.status in ("proved", "unknown")


def test_progress_is_called_per_row():
    seen = []
    out = prove_vmalloc(["vm_area_bounds"], ["boot", "map_finish"], progress=seen.append)
    assert seen == out and [r.status for r in out] == ["proved", "proved"]


# --- (3): agreement with the running model ------------------------------------------

def python_verdict(machine, name: str) -> bool:
    """The Python predicate of the parts the encoding covers: the vmalloc/highmem
    part, and for no_overlap also the buddy part (frame_roles is its view)."""
    layers = {"no_overlap": ("vmalloc", "buddy")}.get(name, ("vmalloc", "highmem"))
    return not any(part.check(machine) for part in catalogue.parts(name)
                   if part.layer in layers)


def frame_steps(pre: zv.Concrete, post: zv.Concrete, skip=()):
    """Steps of the other users of the page allocator (slab growth for descriptors and
    page arrays, pte tables, the test's own pages) that explain a frame's change."""
    steps = []
    for p in sorted(set(pre.frames) | set(post.frames)):
        if p in skip:
            continue
        a, b = pre.frames.get(p, zv.Frame()), post.frames.get(p, zv.Frame())
        if (a.free, a.alloc, a.single) == (b.free, b.alloc, b.single):
            continue
        if a.free and b.alloc:
            steps.append(("page_alloc", {"p": p, "single": b.single}))
        elif a.alloc and b.free:
            steps.append(("page_free", {"p": p}))
        else:
            steps.append(("unexplained", {"p": p}))
    return steps


def run_steps(enc, s: zv.State, steps):
    """Apply encoded steps; (state, None) or (None, why)."""
    for op, params in steps:
        if op == "unexplained":
            return None, f"frame {params['p']:#x} changed in a way no operation allows"
        ok, s, _ = zv.apply(enc, op, s, **params)
        if not ok:
            return None, f"{op}({params}) condition fails"
    return s, None


def encoded_call(enc, call, pre: zv.Concrete, post: zv.Concrete, ret):
    """The encoded steps for one model call, from the states around it."""
    s = pre.state()
    kind = call[0]
    if kind == "vmalloc" and ret is not None:
        new = [a for a in post.areas if a not in pre.areas]
        if len(new) != 1:
            return None, f"vmalloc made {len(new)} areas"
        a = new[0]
        start, np, nr = post.areas[a]
        pages = [post.ptes.get(start + k) for k in range(nr)]
        env = frame_steps(pre, post, skip=set(pages))
        steps = env + [("get_vm_area", {"a": a, "start": start, "npages": np})]
        steps += [("map_step", {"p": p}) for p in pages] + [("map_finish", {})]
        return run_steps(enc, s, steps)
    if kind == "vfree":
        a = call[1]
        nr = pre.areas[a][2]
        pages = {pre.ptes[pre.areas[a][0] + k] for k in range(nr)}
        steps = [("vfree_start", {"a": a})] + [("unmap_step", {})] * nr
        steps += [("remove_vm_area", {})] + frame_steps(pre, post, skip=pages)
        return run_steps(enc, s, steps)
    if kind == "kmap":
        p = call[1]
        if p in pre.htable:
            return run_steps(enc, s, [("kmap_again", {"p": p})])
        new = ("kmap_new", {"p": p, "slot": post.htable[p]})
        got, why = run_steps(enc, s, [new])
        if got is not None and not zv.states_differ(got, post.state()):
            return got, None
        # the scan wrapped: map_new_virtual flushed first
        return run_steps(enc, s, [("flush_all_zero_pkmaps", {}), new])
    if kind == "kunmap":
        return run_steps(enc, s, [("kunmap", {"p": call[1]})])
    if kind == "flush":
        return run_steps(enc, s, [("flush_all_zero_pkmaps", {})])
    # vmalloc returning NULL gives everything back; other users' allocations and frees
    return run_steps(enc, s, frame_steps(pre, post))


class Workload:
    """Drives the model with symbolic call choices and checks every call."""

    def __init__(self, machine, enc=zv.Encoding(), check_invariants=True):
        self.m, self.enc, self.check_invariants = machine, enc, check_invariants
        self.areas = []       # vmalloc addresses
        self.high = []        # highmem pages we hold (pfns)
        self.low = []         # low pages we hold
        self.users = {}       # pfn -> our kmap count

    def model_call(self, call):
        """Run one call on the model; (the call with concrete arguments, return) or None
        when the call does not apply."""
        m, kind = self.m, call[0]
        if kind == "vmalloc":
            addr = vm.vmalloc(m, call[1] * PAGE)
            if addr is not None:
                self.areas.append(addr)
            return call, addr
        if kind == "vfree" and self.areas:
            addr = self.areas.pop(call[1] % len(self.areas))
            kaddr = m.vm_areas[addr].kaddr
            vm.vfree(m, addr)
            return ("vfree", kaddr), None
        if kind == "alloc":
            page = pa.alloc_page(m, GFP_HIGHUSER if call[1] else GFP_KERNEL)
            if page is not None:
                (self.high if page.pfn >= m.max_low_pfn else self.low).append(page.pfn)
            return call, page
        if kind == "free":
            idle = [p for p in self.high + self.low if not self.users.get(p)]
            if not idle:
                return None
            p = idle[call[1] % len(idle)]
            (self.high if p in self.high else self.low).remove(p)
            free_page(m, m.mem_map[p])
            return ("free", p), None
        if kind == "kmap" and self.high:
            p = self.high[call[1] % len(self.high)]
            if p not in m.page_address_htable and min(m.pkmap_count) > 1:
                return None
            hm.kmap(m, m.mem_map[p])
            self.users[p] = self.users.get(p, 0) + 1
            return ("kmap", p), None
        if kind == "kunmap":
            used = [p for p, n in self.users.items() if n]
            if not used:
                return None
            p = used[call[1] % len(used)]
            hm.kunmap(m, m.mem_map[p])
            self.users[p] -= 1
            return ("kunmap", p), None
        if kind == "flush":
            hm.flush_all_zero_pkmaps(m)
            return call, None
        return None

    def step(self, call):
        """One call; the first disagreement with the encoding, or None."""
        pre = zv.alpha(self.m)
        done = self.model_call(call)
        if done is None:
            return None
        call, ret = done
        post = zv.alpha(self.m)
        want, why = encoded_call(self.enc, call, pre, post, ret)
        if why:
            return f"{call}: {why}"
        diff = zv.states_differ(want, post.state())
        if diff:
            return f"{call}: model and encoding differ in {diff}"
        if self.check_invariants:
            s = post.state()
            for name in INVARIANTS:
                py, z = python_verdict(self.m, name), zv.invariant_holds(s, name)
                if py != z:
                    return f"{call}: {name} is {py} in Python, {z} in Z3"
        return None

    def run(self, calls):
        for call in calls:
            found = self.step(call)
            if found:
                return found
        return None


def small_machine():
    return boot(phys_pages=48, highmem_pages=12, page_policy="buddy")


calls = st.lists(st.one_of(
    st.tuples(st.just("vmalloc"), st.integers(1, 4)),
    st.tuples(st.just("vfree"), st.integers(0, 7)),
    st.tuples(st.just("alloc"), st.booleans()),
    st.tuples(st.just("free"), st.integers(0, 7)),
    st.tuples(st.just("kmap"), st.integers(0, 7)),
    st.tuples(st.just("kunmap"), st.integers(0, 7)),
    st.just(("flush",))), min_size=1, max_size=7)


# 5 examples in the ci profile, 125 in the thorough one (tests/conftest.py)
@settings(max_examples=max(5, settings.default.max_examples // 8), deadline=None)
@given(st.sampled_from([(48, 12), (32, 0), (64, 8)]), calls)
def test_model_calls_agree_with_the_encoding(size, seq):
    machine = boot(phys_pages=size[0], highmem_pages=size[1], page_policy="buddy")
    s = zv.alpha(machine).state()
    for name in INVARIANTS:
        assert zv.invariant_holds(s, name) == python_verdict(machine, name) is True, name
    assert Workload(machine).run(seq) is None


# Every kind of call, a vmalloc that fails for want of frames, a kmap reusing an
# unflushed slot and a flush with work to do.
FIXED = [("vmalloc", 3), ("alloc", True), ("alloc", True), ("kmap", 0), ("kmap", 1),
         ("kmap", 0), ("vmalloc", 1), ("kunmap", 0), ("kunmap", 0), ("vfree", 0),
         ("kunmap", 0), ("kmap", 1), ("flush",), ("vmalloc", 60), ("free", 0),
         ("vmalloc", 2), ("vfree", 1)]


def test_fixed_workload_agrees():
    w = Workload(small_machine())
    assert w.run(FIXED) is None
    # the workload did reach the interesting states
    assert w.m.vmlist and w.m.page_address_htable


def test_vmalloc_failure_rolls_back():
    """The encoded fail path -- get_vm_area, map_step*, vmalloc_fail, unmap_step*,
    remove_vm_area -- leaves the state as it found it, as the model's NULL return does."""
    m = small_machine()
    vm.vmalloc(m, PAGE)
    pre = zv.alpha(m)
    free = sorted(p for p, f in pre.frames.items() if f.free)[:2]
    steps = [("get_vm_area", {"a": 0x1234, "start": pre.vstart + 100, "npages": 3})]
    steps += [("map_step", {"p": p}) for p in free] + [("vmalloc_fail", {})]
    steps += [("unmap_step", {})] * 2 + [("remove_vm_area", {})]
    got, why = run_steps(zv.Encoding(), pre.state(), steps)
    assert why is None and zv.states_differ(got, pre.state()) == []


# --- (4): broken encodings, predicates and models are caught ------------------------

@pytest.mark.parametrize("bug", ["no_guard_page", "map_wrong_index", "unmap_leaves_pte",
                                 "unmap_keeps_owner", "flush_keeps_htable"])
def test_broken_encoding_disagrees_with_model(bug):
    found = Workload(small_machine(), zv.Encoding.seeded(bug), check_invariants=False) \
        .run(FIXED)
    assert found is not None and ("differ" in found or "fails" in found), found


def test_broken_predicate_disagrees(monkeypatch):
    # pte_in_area forgetting that the pkmap ptes are not vmalloc's: a kmap breaks it
    def broken(s, v):
        return zv.z3.Implies(s.pte_p[v], zv.is_mapped_page(s, v))
    patched = [zv.Conjunct(c.invariant, c.label, "broken", c.over, broken)
               if c.label == "pte_in_area" else c for c in zv.CONJUNCTS]
    monkeypatch.setattr(zv, "CONJUNCTS", patched)
    found = Workload(small_machine()).run([("alloc", True), ("kmap", 0)])
    assert found is not None and "page_table_consistency" in found, found


def test_seeded_model_bug_disagrees_with_encoding(monkeypatch):
    # unmap_vm_area forgetting the area's last page: vfree leaves a pte behind
    real = vm.unmap_vm_area

    def short_unmap(machine, area):
        class Short:
            addr, size = area.addr, area.size - 2 * PAGE
        real(machine, Short)
    monkeypatch.setattr(vm, "unmap_vm_area", short_unmap)
    found = Workload(small_machine(), check_invariants=False).run(
        [("vmalloc", 2), ("vfree", 0)])
    assert found is not None and "vfree" in found, found


def test_the_model_refuses_to_free_a_kmapped_page_as_the_encoding_requires():
    # The encoding makes "no kmap users" a condition of freeing (seeded bug
    # free_kmapped_page drops it and pkmap_consistency is refuted); the model agrees:
    # vfree of an area whose page is still kmapped is misuse, and changes nothing.
    m = small_machine()
    addr = vm.vmalloc(m, 2 * PAGE)
    page = m.vm_areas[addr].pages[0]
    assert page >= m.max_low_pfn          # vmalloc pages may be highmem: kmap works
    hm.kmap(m, m.mem_map[page])
    before = pickle.dumps(m.__dict__)
    with pytest.raises(KernelBug) as err:
        vm.vfree(m, addr)
    assert err.value.rule == "free_kmapped"
    assert pickle.dumps(m.__dict__) == before
    assert python_verdict(m, "pkmap_consistency")


def corrupt_guard(m):
    area = m.vm_areas[m.vmlist[0].addr]
    page = pa.alloc_page(m, GFP_KERNEL)
    set_pte(m, area.addr + area.size - PAGE, mk_pte(page.pfn, PAGE_KERNEL))


def corrupt_htable(m):
    p = next(iter(m.page_address_htable))
    m.page_address_htable[p] += PAGE          # the entry names the neighbouring slot


def corrupt_owner(m):
    del m.vmalloc_owner[m.vmlist[0].pages[0]]


def corrupt_count(m):
    nr = (m.page_address_htable[next(iter(m.page_address_htable))] - m.pkmap_base) >> 12
    m.pkmap_count[nr] = 0                      # pte still present


def corrupt_free_page(m):
    # a vmalloc frame handed back to the buddy allocator behind vmalloc's back
    pfn = m.vmlist[0].pages[1]
    del m.page_owner[pfn]
    m.mem_map.count[pfn] = 0
    zone = m.zones[m.mem_map.zone_id[pfn]]
    pa.list_add(m.mem_map, zone.free_area[0], pfn)
    zone.free_area[0].nr_free += 1
    pa.set_page_order(m.mem_map, pfn, 0)


@pytest.mark.parametrize("mutate", [corrupt_guard, corrupt_htable, corrupt_owner,
                                    corrupt_count, corrupt_free_page])
def test_corrupted_states_agree(mutate):
    m = small_machine()
    vm.vmalloc(m, 3 * PAGE)
    page = pa.alloc_page(m, GFP_HIGHUSER)
    hm.kmap(m, m.mem_map[page.pfn])
    mutate(m)
    s = zv.alpha(m).state()
    verdicts = {name: (python_verdict(m, name), zv.invariant_holds(s, name))
                for name in INVARIANTS}
    assert any(not py for py, _ in verdicts.values()), "the mutation broke nothing"
    assert all(py == z for py, z in verdicts.values()), verdicts
