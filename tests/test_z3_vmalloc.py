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
from hypothesis import Phase, given, settings, strategies as st

from kmemspec.model import KernelBug, boot
from kmemspec.model import highmem as hm
from kmemspec.model import page_alloc as pa
from kmemspec.model import vmalloc as vm
from kmemspec.model.gfp import GFP_HIGHUSER, GFP_KERNEL
from kmemspec.model.pgtable import PAGE_KERNEL, mk_pte, set_pte
from kmemspec.proofs.vmalloc_obligations import (INVARIANTS, OPERATIONS, SEEDED_BUGS,
                                                 VmProver, _Terms, prove_vmalloc)
from kmemspec.spec import z3_vmalloc as zv
# the agreement check itself lives in the package: `kmemspec verify` runs FIXED too
from kmemspec.spec.z3_agreement_vmalloc import (FIXED, Workload, python_verdict, run_steps,
                                                small_machine)

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

calls = st.lists(st.one_of(
    st.tuples(st.just("vmalloc"), st.integers(1, 4)),
    st.tuples(st.just("vfree"), st.integers(0, 7)),
    st.tuples(st.just("alloc"), st.booleans()),
    st.tuples(st.just("free"), st.integers(0, 7)),
    st.tuples(st.just("kmap"), st.integers(0, 7)),
    st.tuples(st.just("kunmap"), st.integers(0, 7)),
    st.just(("flush",))), min_size=1, max_size=7)


# 5 examples in the ci profile, 125 in the thorough one (tests/conftest.py); no
# shrinking (each example runs Z3 per call; the fixed workload pins a failure down)
@settings(max_examples=max(5, settings.default.max_examples // 8), deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(st.sampled_from([(48, 12), (32, 0), (64, 8)]), calls)
def test_model_calls_agree_with_the_encoding(size, seq):
    machine = boot(phys_pages=size[0], highmem_pages=size[1], page_policy="buddy")
    s = zv.alpha(machine).state()
    for name in INVARIANTS:
        assert zv.invariant_holds(s, name) == python_verdict(machine, name) is True, name
    assert Workload(machine).run(seq) is None


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
