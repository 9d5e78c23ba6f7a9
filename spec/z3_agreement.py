"""A fixed-workload agreement check of the buddy Z3 encoding against the running model.

Drive the model through a known call sequence; after each call the abstract image of
the state must be the post state the encoded transitions allow, and every Z3 invariant
must evaluate as the Python predicate does. `kmemspec verify` runs FIXED as a facts row
(an encoding that drifts consistently from the model is caught by the main job);
tests/test_z3_agreement.py also runs it on random sequences.
"""

from __future__ import annotations

from ..model import boot, page_alloc
from ..model.gfp import GFP_DMA, GFP_KERNEL, gfp_zone
from . import buddy as pybuddy  # noqa: F401  (registers the predicates)
from . import catalogue
from . import z3_buddy as zb
from . import z3_concrete as zc


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


# A fixed workload that exercises split, merge, a zone boundary and get_page.
FIXED = [("alloc", GFP_KERNEL, 0), ("alloc", GFP_KERNEL, 0), ("free", 0), ("free", 0),
         ("alloc", GFP_KERNEL, 1), ("alloc", GFP_DMA, 0), ("get", 0), ("free", 0),
         ("free", 0), ("free", 0), ("alloc", GFP_KERNEL, 2), ("free", 0)]


def fixed_machine():
    return boot(phys_pages=24, highmem_pages=0, max_dma_pfn=6, page_policy="buddy")
