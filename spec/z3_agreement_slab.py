"""A fixed-workload agreement check of the slab Z3 encoding against the running model.

Drive the model through a call sequence on two user caches; after each call, the
abstract image of the cache it touched (spec/z3_slab.py `alpha`) must be the post state
of the encoded steps the call made (cache_grow, cache_alloc_refill, the caller's pop,
free_block, slab_destroy, the caller's push, and the other caches' growth as
other_cache_grow), and every Z3 invariant must give the Python predicate's verdict.
`kmemspec verify` runs FIXED as a facts row (spec/facts.md); tests/test_z3_slab.py runs
it, random sequences, and broken encodings, predicates and models against it.
"""

from __future__ import annotations

import z3

from ..model import boot, kmalloc as kmalloc_mod, slab as slab_mod
from ..model.gfp import GFP_DMA, GFP_KERNEL
from . import catalogue
from . import slab as pyslab  # noqa: F401  (registers the predicates)
from . import z3_slab as zs


def obj_of(machine, addr):
    """(cache, slab id, object index) of an object address."""
    p = machine.profile
    slab = machine.slab.page_slab[(addr - p.PAGE_OFFSET) >> p.PAGE_SHIFT]
    return slab.cache, slab.id, (addr - slab.s_mem) // slab.cache.objsize


def encode(enc, pre, steps):
    """Run encoded steps [(op, params)] from a concrete state; (post, None) or (None, why)."""
    s = pre
    for op, params in steps:
        ok, s = zs.apply(enc, op, s, **params)
        if not ok:
            return None, f"{op} condition fails"
    return s, None


def S(sid):
    return z3.BitVecVal(sid, zs.SLAB_BITS)


def I(i):
    return z3.BitVecVal(i, zs.IDX_BITS)


def derive_steps(pre, post, pop=None, push=None, nomem=False):
    """The encoded steps one model call made on a cache, from its abstractions before
    and after: cache_grow of a new slab, one cache_alloc_refill per object newly taken
    from a slab, the caller's pop, one free_block per object back on its slab (flushed,
    drained or reaped), slab_destroy of every slab gone, the caller's push.
    pop / push: (op, sid, index, extra params) of the call's own object."""
    steps = []
    new = [sid for sid in post.slabs if sid not in pre.slabs]
    assert len(new) <= 1, "one call grows a cache by one slab at most"
    for sid in new:
        steps.append(("cache_grow", {"s0": S(sid), "mg0": z3.BitVecVal(post.slabs[sid]["mg"],
                                                                       zs.BYTE_BITS)}))
    if nomem and not new and pre.colour_next != post.colour_next:
        steps.append(("cache_grow_nomem", {}))
    was = lambda c, key: c.objects.get(key, {}).get("alloc", False)   # noqa: E731
    keys = sorted(set(pre.objects) | set(post.objects))
    steps += [("cache_alloc_refill", {"s0": S(sid), "i0": I(i)}) for sid, i in keys
              if not was(pre, (sid, i)) and was(post, (sid, i))]
    if pop:
        op, sid, i, extra = pop
        steps.append((op, {"s0": S(sid), "i0": I(i), **extra}))
    steps += [("free_block", {"s0": S(sid), "i0": I(i)}) for sid, i in keys
              if was(pre, (sid, i)) and not was(post, (sid, i))]
    steps += [("slab_destroy", {"s0": S(sid)}) for sid in pre.slabs if sid not in post.slabs]
    if push:
        op, sid, i, extra = push
        steps.append((op, {"s0": S(sid), "i0": I(i), **extra}))
    return steps


def other_blocks(machine, cachep) -> dict:
    """First pfn -> order of every slab of the other caches."""
    return {s.id: s.cache.gfporder for s in machine.slab.page_slab.values()
            if s.cache is not cachep}


def environment(machine, cachep, before: dict) -> list:
    """The other caches' steps inside a call, as encoded steps of this cache: an
    off-slab cache_grow's struct slab is a kmem_cache_alloc of slabp_cache, which may
    grow that cache (and a shrink's may, in principle, shrink it)."""
    after = other_blocks(machine, cachep)
    B = lambda b, o: {"b0": S(b), "o0": z3.BitVecVal(o, zs.BYTE_BITS)}  # noqa: E731
    return ([("other_slab_destroy", B(b, o)) for b, o in before.items() if b not in after]
            + [("other_cache_grow", B(b, o)) for b, o in after.items() if b not in before])


def checked_caches(machine, *extra):
    """The caches whose abstraction the invariants are evaluated on: every cache with a
    slab, and the given ones."""
    out = [c for c in machine.slab.cache_chain if c.slabs]
    return out + [c for c in extra if c not in out]


def slab_violations(machine, name):
    """The Python predicate of the invariant's slab part (no_overlap and page_state
    also have buddy and vmalloc parts, which the slab encoding does not cover)."""
    parts = [p for p in catalogue.parts(name) if p.layer == "slab"]
    assert len(parts) == 1, name
    return parts[0].check(machine)


def abstractions(machine, caches):
    """[(Z3 state, support)] of the caches, built once for all invariants."""
    out = []
    for c in caches:
        conc = zs.alpha(machine, c)
        out.append((zs.to_state(conc), conc.support()))
    return out


def z3_verdict(machine, name, caches, states=None):
    for s, support in states or abstractions(machine, caches):
        if not zs.invariant_holds(s, name, support):
            return False
    return True


def run_and_check(machine, caches, calls, enc=None, check_invariants=True):
    """Drive the model; return the first disagreement with the encoding (default: the
    kernel's, `zs.Encoding()` looked up at call time), or None."""
    enc = zs.Encoding() if enc is None else enc
    live = []           # (addr, "cache" | "kmalloc")
    for call in calls:
        kind = call[0]
        pop = push = None
        if kind == "alloc":
            cachep = caches[call[1] % len(caches)]
            pre, blocks = zs.alpha(machine, cachep), other_blocks(machine, cachep)
            addr = slab_mod.kmem_cache_alloc(machine, cachep, GFP_KERNEL)
            if addr is not None:
                live.append((addr, "cache"))
                pop = ("kmem_cache_alloc", *obj_of(machine, addr)[1:], {})
        elif kind == "kmalloc":
            _, size, dma = call
            index = kmalloc_mod.kmalloc_index(machine.profile, size)
            cachep = (machine.slab.malloc_sizes_dma if dma else machine.slab.malloc_sizes)[index]
            pre, blocks = zs.alpha(machine, cachep), other_blocks(machine, cachep)
            addr = kmalloc_mod.kmalloc(machine, size, GFP_DMA if dma else GFP_KERNEL)
            if addr is not None:
                live.append((addr, "kmalloc"))
                pop = ("kmalloc", *obj_of(machine, addr)[1:],
                       {"size": z3.BitVecVal(size, zs.BYTE_BITS), "gfp_dma": z3.BoolVal(dma)})
        elif kind == "shrink":
            cachep = caches[call[1] % len(caches)]
            pre, blocks = zs.alpha(machine, cachep), other_blocks(machine, cachep)
            slab_mod.kmem_cache_shrink(machine, cachep)
        elif kind == "reap":
            cachep = caches[call[1] % len(caches)]
            pre, blocks = zs.alpha(machine, cachep), other_blocks(machine, cachep)
            slab_mod.cache_reap(machine)
        elif not live:
            continue
        else:
            addr, how = live.pop(call[1] % len(live))
            cachep, sid, i = obj_of(machine, addr)
            pre, blocks = zs.alpha(machine, cachep), other_blocks(machine, cachep)
            if how == "cache":
                slab_mod.kmem_cache_free(machine, cachep, addr)
                push = ("kmem_cache_free", sid, i, {})
            else:
                kmalloc_mod.kfree(machine, addr)
                push = ("kfree", sid, i, {})
        post = zs.alpha(machine, cachep)
        steps = environment(machine, cachep, blocks) + derive_steps(
            pre, post, pop, push, nomem=kind in ("alloc", "kmalloc") and pop is None)
        want, why = encode(enc, zs.to_state(pre), steps)
        if why:
            return f"{call}: {why}"
        diff = zs.states_equal(want, zs.to_state(post))
        if diff:
            return f"{call}: model and encoding differ in {diff}"
        if check_invariants:
            states = abstractions(machine, checked_caches(machine, cachep))
            for name in zs.INVARIANTS:
                py = not slab_violations(machine, name)
                z = z3_verdict(machine, name, None, states)
                if py != z:
                    return f"{call}: {name} is {py} in Python, {z} in Z3"
    return None


def fresh_machine():
    """Two user caches: "small" (1100 bytes, on-slab, 3 objects a slab, colour 5) and
    "big" (4096 bytes, off-slab management, 1 object a slab, colour 0)."""
    m = boot(phys_pages=1024, highmem_pages=0)
    small = slab_mod.kmem_cache_create(m, "small", 1100, 0, 0)
    big = slab_mod.kmem_cache_create(m, "big", 4096, 0, 0)
    assert (small.num, small.colour, small.off_slab, big.off_slab) == (3, 5, False, True)
    return m, [small, big]


# A fixed workload: three slabs of "small" (colour indices 0, 1, 2), one emptied to
# slabs_free and a full one freed back to slabs_partial, kmallocs of two classes and a
# DMA twin, a kfree, a shrink destroying the empty slab, a fourth slab (colour index 3)
# and an off-slab kmalloc class.
FIXED = ([("alloc", 0)] * 7 + [("free", 6), ("free", 0), ("kmalloc", 100, False),
                                 ("kmalloc", 33, True), ("alloc", 1), ("free", 5),
                                 ("shrink", 0), ("alloc", 0), ("alloc", 0),
                                 ("kmalloc", 5000, False), ("free", 0)])
