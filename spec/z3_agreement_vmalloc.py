"""A fixed-workload agreement check of the vmalloc/pkmap Z3 encoding against the model.

Drive the model (vmalloc, vfree, page allocations, kmap, kunmap, flushes) through a
call sequence; after each call the abstract image (spec/z3_vmalloc.py `alpha`) must be
the post state of the encoded steps the call made, and every Z3 invariant must give
the Python predicate's verdict. `kmemspec verify` runs FIXED as a facts row
(spec/facts.md); tests/test_z3_vmalloc.py runs it, random sequences, and broken
encodings, predicates and models against it.
"""

from __future__ import annotations

from ..model import boot
from ..model import highmem as hm
from ..model import page_alloc as pa
from ..model import vmalloc as vm
from ..model.gfp import GFP_HIGHUSER, GFP_KERNEL
from . import buddy as _buddy  # noqa: F401  (registers the buddy parts)
from . import catalogue
from . import highmem as spec_highmem  # noqa: F401
from . import vmalloc as spec_vm  # noqa: F401
from . import z3_vmalloc as zv

PAGE = 4096
INVARIANTS = list(zv.INVARIANTS)
free_page = pa.__free_page


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

    def __init__(self, machine, enc=None, check_invariants=True):
        # the default is the kernel's encoding, `zv.Encoding()` looked up at call time
        self.m, self.check_invariants = machine, check_invariants
        self.enc = zv.Encoding() if enc is None else enc
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


# Every kind of call, a vmalloc that fails for want of frames, a kmap reusing an
# unflushed slot and a flush with work to do.
FIXED = [("vmalloc", 3), ("alloc", True), ("alloc", True), ("kmap", 0), ("kmap", 1),
         ("kmap", 0), ("vmalloc", 1), ("kunmap", 0), ("kunmap", 0), ("vfree", 0),
         ("kunmap", 0), ("kmap", 1), ("flush",), ("vmalloc", 60), ("free", 0),
         ("vmalloc", 2), ("vfree", 1)]
