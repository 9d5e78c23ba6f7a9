"""The Z3 encoding agrees with the running model (issue 5, item 4).

On machines reached by real call sequences: every Z3 invariant evaluated on the
abstract image of the state equals the Python predicate, and every call's (pre, post)
is related by the encoded transitions. Broken encodings, predicates and models must
make these checks fail (the last tests).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from kmemspec.model import boot, page_alloc
from kmemspec.model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, gfp_zone
from kmemspec.spec import buddy as pybuddy  # noqa: F401  (registers the predicates)
from kmemspec.spec import catalogue
from kmemspec.spec import z3_buddy as zb
from kmemspec.spec import z3_concrete as zc

GFPS = [GFP_KERNEL, GFP_DMA, GFP_HIGHUSER]


def encoded_alloc(S, enc, pre, machine, gfp, order, ret):
    """The post state the encoding allows for alloc_pages returning `ret`, or why not."""
    if ret is None:
        allowed = {z.index for z in machine.zonelists[gfp_zone(gfp)]}
        import z3
        p = z3.Const("p", S.PFN)
        some = z3.Exists([p], z3.And(pre.buddy[p], z3.UGE(pre.order[p], zb.ordv(order)),
                                     z3.Or(*[pre.zone[p] == zb.zidv(i) for i in allowed])))
        if zc._valid(z3.Not(some)):
            return pre, None
        return None, "NULL although a large enough free block exists"
    import z3
    ok, s = zc.apply(S, enc, "rmqueue", pre, h0=z3.BitVecVal(ret, S.W), order=zb.ordv(order))
    if not ok:
        return None, "rmqueue condition fails"
    for _ in range(S.shape.max_order + 1):
        ok, nxt = zc.apply(S, enc, "expand_step", s)
        if not ok:
            break
        s = nxt
    ok, s = zc.apply(S, enc, "alloc_finish", s)
    return (s, None) if ok else (None, "alloc_finish condition fails")


def encoded_free(S, enc, pre, pfn, order, count):
    import z3
    h, k = z3.BitVecVal(pfn, S.W), zb.ordv(order)
    if count > 1:
        ok, s = zc.apply(S, enc, "put_page", pre, h=h, k=k)
        return (s, None) if ok else (None, "put_page condition fails")
    ok, s = zc.apply(S, enc, "free_start", pre, h=h, k=k)
    if not ok:
        return None, "free_start condition fails"
    for _ in range(S.shape.max_order + 1):
        ok, nxt = zc.apply(S, enc, "merge_step", s)
        if not ok:
            break
        s = nxt
    ok, s = zc.apply(S, enc, "free_finish", s)
    return (s, None) if ok else (None, "free_finish condition fails")


def run_and_check(machine, calls, enc=zb.Encoding(), check_invariants=True):
    """Drive the model; return the first disagreement with the encoding, or None."""
    S = zb.Sorts(zc.shape_of(machine))
    live = []          # (pfn, order)
    frames = machine.nr_pages
    for call in calls:
        pre = zc.alpha(machine, S)
        if call[0] == "alloc":
            _, gfp, order = call
            page = page_alloc.alloc_pages(machine, gfp, order)
            ret = None if page is None else page.pfn
            want, why = encoded_alloc(S, enc, pre, machine, gfp, order, ret)
            if page is not None:
                live.append((page.pfn, order))
        elif not live:
            continue
        elif call[0] == "get":
            pfn, order = live[call[1] % len(live)]
            page_alloc.get_page(machine, machine.mem_map[pfn])
            live.append((pfn, order))
            ok, want = zc.apply(S, enc, "get_page", pre, h=zc.z3.BitVecVal(pfn, S.W))
            why = None if ok else "get_page condition fails"
        else:
            pfn, order = live.pop(call[1] % len(live))
            count = machine.mem_map.count[pfn]
            page_alloc.__free_pages(machine, machine.mem_map[pfn], order)
            want, why = encoded_free(S, enc, pre, pfn, order, count)
        if why:
            return f"{call}: {why}"
        post = zc.alpha(machine, S)
        diff = zc.states_equal(S, want, post)
        if diff:
            return f"{call}: model and encoding differ in {diff}"
        if check_invariants:
            for name in zb.INVARIANTS:
                py = not catalogue.check(machine, name)
                z = zc.invariant_holds(S, post, name, frames)
                if py != z:
                    return f"{call}: {name} is {py} in Python, {z} in Z3"
    return None


machines = st.builds(
    lambda phys, dma, high: boot(phys_pages=phys, highmem_pages=high,
                                 max_dma_pfn=max(1, min(dma, phys)), page_policy="buddy"),
    st.integers(8, 40), st.integers(1, 40), st.sampled_from([0, 0, 8, 13]))
calls = st.lists(st.one_of(
    st.tuples(st.just("alloc"), st.sampled_from(GFPS), st.integers(0, 3)),
    st.tuples(st.just("free"), st.integers(0, 63)),
    st.tuples(st.just("get"), st.integers(0, 63))), min_size=1, max_size=6)


@settings(max_examples=8, deadline=None)
@given(machines, calls)
def test_model_transitions_and_invariants_agree_with_z3(machine, seq):
    S = zb.Sorts(zc.shape_of(machine))
    boot_state = zc.alpha(machine, S)
    assert zc.layout_holds(S, boot_state)
    for name in zb.INVARIANTS:
        assert zc.invariant_holds(S, boot_state, name, machine.nr_pages), name
    assert run_and_check(machine, seq) is None


# A fixed workload that exercises split, merge, a zone boundary and get_page.
FIXED = [("alloc", GFP_KERNEL, 0), ("alloc", GFP_KERNEL, 0), ("free", 0), ("free", 0),
         ("alloc", GFP_KERNEL, 1), ("alloc", GFP_DMA, 0), ("get", 0), ("free", 0),
         ("free", 0), ("free", 0), ("alloc", GFP_KERNEL, 2), ("free", 0)]


def fixed_machine():
    return boot(phys_pages=24, highmem_pages=0, max_dma_pfn=6, page_policy="buddy")


def test_fixed_workload_agrees():
    assert run_and_check(fixed_machine(), FIXED) is None


@pytest.mark.parametrize("bug", ["expand_lists_lower", "expand_nr_free_not_updated",
                                 "alloc_no_count", "wrong_buddy_index",
                                 "free_pages_not_updated"])
def test_broken_encoding_disagrees_with_model(bug):
    found = run_and_check(fixed_machine(), FIXED, enc=zb.Encoding.seeded(bug),
                          check_invariants=False)
    assert found is not None


def test_broken_predicate_disagrees(monkeypatch):
    # a merge_completeness that forgets the order comparison flags a healthy state
    def broken(S, s, p):
        import z3
        o, z = s.order[p], s.zone[p]
        base = zb.zbase(S, s, z)
        b = base + ((p - base) ^ zb.size_pfn(S, o))
        return z3.Implies(z3.And(s.buddy[p], z3.ULT(o, zb.ordv(S.shape.max_order - 1))),
                          z3.Not(z3.And(z3.ULT(zb.ext(S, b), s.zend[z]), s.buddy[b])))
    patched = [zb.Conjunct(c.invariant, c.label, "broken", c.kind, broken)
               if c.label == "no_free_buddy_pair" else c for c in zb.CONJUNCTS]
    monkeypatch.setattr(zb, "CONJUNCTS", patched)
    # after these calls the Normal zone of fixed_machine() holds a free order-3 block
    # whose buddy position heads a free order-0 block: only the order tells them apart
    found = run_and_check(fixed_machine(), [("alloc", GFP_KERNEL, 0), ("alloc", GFP_KERNEL, 0),
                                    ("free", 0)])
    assert found is not None and "merge_completeness" in found


def test_seeded_model_bug_disagrees_with_encoding(monkeypatch):
    # expand() listing the lower half: the model drifts from the (correct) encoding
    def expand_lower(mem_map, zone, pfn, low, high):
        areas = zone.free_area
        while high > low:
            high -= 1
            page_alloc.list_add(mem_map, areas[high], pfn)
            areas[high].nr_free += 1
            page_alloc.set_page_order(mem_map, pfn, high)
        return pfn
    monkeypatch.setattr(page_alloc, "expand", expand_lower)
    found = run_and_check(fixed_machine(), FIXED[:1], check_invariants=False)
    assert found is not None and "differ" in found


@pytest.mark.parametrize("field,mutate", [
    ("count", lambda m: m.mem_map.count.__setitem__(m.zones[1].free_area[0].head
                                                    if m.zones[1].free_area[0].head >= 0
                                                    else 23, 5)),
    ("nr_free", lambda m: setattr(m.zones[1].free_area[2], "nr_free", 7)),
    ("reserved", lambda m: m.mem_map.flags.__setitem__(23, m.mem_map.flags[23] | 1)),
])
def test_corrupted_states_agree(field, mutate):
    machine = fixed_machine()
    page_alloc.alloc_pages(machine, GFP_KERNEL, 0)
    mutate(machine)
    S = zb.Sorts(zc.shape_of(machine))
    s = zc.alpha(machine, S)
    verdicts = {name: (not catalogue.check(machine, name),
                       zc.invariant_holds(S, s, name, machine.nr_pages))
                for name in zb.INVARIANTS}
    assert any(not py for py, _ in verdicts.values()), "the mutation broke nothing"
    assert all(py == z for py, z in verdicts.values()), verdicts
