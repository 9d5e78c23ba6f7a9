"""Bounded model checking over call sequences: the shortest sequence of kernel calls
on a small machine that reaches a condition, as a runnable scenario (DESIGN.md section 6).

Breadth-first search over kernel calls on the model itself, with states deduplicated
by their mem_map and allocator contents; the first hit is a shortest sequence (fewest
calls) within the bound. The calls come from a *layer*: the buddy allocator
(alloc_pages / __free_pages), the slab allocator (kmem_cache_create once, then
kmem_cache_alloc / kmem_cache_free / kmem_cache_shrink) or vmalloc (vmalloc / vfree).
A query (a predicate on the machine) names its layer in `reached.layer`; the default
is the buddy layer.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections import deque
from dataclasses import dataclass
from typing import Callable

from ..model import boot, page_alloc
from ..model import slab as slab_mod
from ..model import vmalloc as vm
from ..model.gfp import GFP_KERNEL, gfp_zone


@dataclass
class Found:
    calls: list[tuple]                 # ("alloc", order) | ("free", index into live)
    scenario: list[dict]
    explored: int

    def jsonl(self) -> str:
        return "\n".join(json.dumps(line) for line in self.scenario) + "\n"


def _key(machine) -> tuple:
    mm = machine.mem_map
    return (bytes(mm.flags), mm.private.tobytes(), mm.count.tobytes(),
            tuple(sorted(machine.page_owner.items())))


def fits(machine, gfp: int, order: int) -> bool:
    """Would alloc_pages(gfp, order) succeed? (a free block of order >= it exists)"""
    return any(zone.free_area[k].nr_free
               for zone in machine.zonelists[gfp_zone(gfp)]
               for k in range(order, len(zone.free_area)))


def fragmentation(order: int = 2, free_percent: int = 50) -> Callable:
    """An order-`order` GFP_KERNEL allocation fails although at least `free_percent`
    percent of the frames the buddy allocator manages are free."""
    def reached(machine) -> bool:
        present = sum(z.freed_at_boot for z in machine.zones)
        free = page_alloc.nr_free_pages(machine)
        return (not fits(machine, GFP_KERNEL, order)
                and free * 100 >= free_percent * present)
    reached.final_call = ("alloc", order)      # the call that then fails
    return reached


def load_predicate(spec: str) -> Callable:
    """`module:function` -> function(machine) -> bool."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--predicate must be module:function, not {spec!r}")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load predicate {spec!r}: {exc}") from None
    if not callable(fn):
        raise ValueError(f"{spec!r} is not callable")
    return fn


_free_pages = page_alloc.__free_pages     # a class body would mangle the name


class BuddyLayer:
    """alloc_pages(GFP_KERNEL, order) for each order, __free_pages of a live block."""

    def __init__(self, phys_pages: int = 16, orders=(0, 1, 2)):
        self.config = dict(phys_pages=phys_pages, highmem_pages=0, page_policy="buddy")
        self.orders = tuple(orders)

    def moves(self, live):
        return [("alloc", k) for k in self.orders] + [("free", i) for i in range(len(live))]

    def apply(self, m, move, live):
        """The new live list, or None when the call returns NULL (not a move)."""
        new_live = list(live)
        if move[0] == "alloc":
            page = page_alloc.alloc_pages(m, GFP_KERNEL, move[1])
            if page is None:
                return None
            new_live.append((page.pfn, move[1]))
        else:
            pfn, k = new_live.pop(move[1])
            _free_pages(m, m.mem_map[pfn], k)
        return new_live

    def key(self, machine, live):
        return _key(machine)

    def scenario(self, calls, final) -> list[dict]:
        lines = [{"op": "boot", "profile": "linux-2.6-i386", **self.config}]
        names = []        # names of live blocks, in the same order as `live`
        orders = []
        for n, call in enumerate(calls):
            if call[0] == "alloc":
                name = f"p{n}"
                lines.append({"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": call[1],
                              "as": name})
                names.append(name)
                orders.append(call[1])
            else:
                name, order = names.pop(call[1]), orders.pop(call[1])
                lines.append({"op": "__free_pages", "page": f"${name}", "order": order})
        if final is not None:
            lines.append({"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": final[1],
                          "as": "fails", "expect": {"ret": None}})
        return lines


# cache shapes kmem_cache_create may be called with (size, SLAB_* flags): their
# 2.6.12 i386 geometries (num objects per slab / colour) are 256: 15/1, 600: 6/3,
# 1500: 2/8, 3700: 1/2, 4096: 1/0 (off-slab)
CACHE_SHAPES = ((256, 0), (600, 0), (1500, 0), (3700, 0), (4096, 0))
CACHE_NAME = "explored"


class SlabLayer:
    """kmem_cache_create (once, one of CACHE_SHAPES), then kmem_cache_alloc,
    kmem_cache_free of a live object, kmem_cache_shrink -- all on that cache."""

    def __init__(self, phys_pages: int = 32, shapes=CACHE_SHAPES):
        self.config = dict(phys_pages=phys_pages, highmem_pages=0, page_policy="buddy")
        self.shapes = tuple(shapes)

    def moves(self, live):
        if live is None:                      # no cache yet
            return [("create", i) for i in range(len(self.shapes))]
        return [("alloc",), ("shrink",)] + [("free", i) for i in range(len(live))]

    def apply(self, m, move, live):
        if move[0] == "create":
            size, flags = self.shapes[move[1]]
            if slab_mod.kmem_cache_create(m, CACHE_NAME, size, 0, flags) is None:
                return None
            return []
        cachep = slab_mod.find_cache(m, CACHE_NAME)
        new_live = list(live)
        if move[0] == "alloc":
            addr = slab_mod.kmem_cache_alloc(m, cachep, GFP_KERNEL)
            if addr is None:
                return None
            new_live.append(addr)
        elif move[0] == "free":
            slab_mod.kmem_cache_free(m, cachep, new_live.pop(move[1]))
        else:
            slab_mod.kmem_cache_shrink(m, cachep)
        return new_live

    def key(self, machine, live):
        cachep = slab_mod.find_cache(machine, CACHE_NAME)
        cache = None if cachep is None else (
            cachep.objsize, cachep.colour_next,
            tuple(sorted((s.id, s.colouroff, s.inuse, s.free) for s in cachep.slabs.values())),
            # the objects parked in its per-CPU and shared arrays, in order
            tuple(tuple(ac.entry) for ac in filter(None, [*(cachep.array or []),
                                                          cachep.shared_array])))
        return _key(machine), cache, None if live is None else tuple(live)

    def scenario(self, calls, final) -> list[dict]:
        lines = [{"op": "boot", "profile": "linux-2.6-i386", **self.config}]
        names = []
        for n, call in enumerate(calls):
            if call[0] == "create":
                size, flags = self.shapes[call[1]]
                lines.append({"op": "kmem_cache_create", "name": CACHE_NAME, "size": size,
                              "align": 0, "flags": flags, "as": "cache"})
            elif call[0] == "alloc":
                names.append(f"obj{n}")
                lines.append({"op": "kmem_cache_alloc", "cache": CACHE_NAME,
                              "gfp": "GFP_KERNEL", "as": names[-1]})
            elif call[0] == "free":
                lines.append({"op": "kmem_cache_free", "cache": CACHE_NAME,
                              "addr": f"${names.pop(call[1])}"})
            else:
                lines.append({"op": "kmem_cache_shrink", "cache": CACHE_NAME})
        return lines


# vmalloc's range is about 1 GiB - low memory, and vmalloc refuses more pages than
# num_physpages, so on a small machine frames always run out first. Low memory at its
# 896 MiB maximum puts VMALLOC_START at 0xf8800000: [VMALLOC_START, VMALLOC_END) is
# 112 MiB - 8 KiB (28670 pages) while 229376 frames are managed. Not small, but the
# search copies it cheaply (a few states; its key is the range's holes)
VMALLOC_MACHINE = dict(phys_pages=229376, highmem_pages=0)
VMALLOC_SIZE = 40 << 20


class VmallocLayer:
    """vmalloc(size) for each size, vfree of a live area."""

    def __init__(self, sizes=(VMALLOC_SIZE, 4096), config=None):
        self.config = dict(config or VMALLOC_MACHINE)
        self.sizes = tuple(sizes)

    def moves(self, live):
        return [("vmalloc", s) for s in self.sizes] + [("vfree", i) for i in range(len(live))]

    def apply(self, m, move, live):
        new_live = list(live)
        if move[0] == "vmalloc":
            addr = vm.vmalloc(m, move[1])
            if addr is None:
                return None
            new_live.append((addr, move[1]))
        else:
            vm.vfree(m, new_live.pop(move[1])[0])
        return new_live

    def key(self, machine, live):
        # the range's holes and the areas' sizes: frames are interchangeable here
        return (tuple(sorted(machine.vmalloc_holes.items())), tuple(sorted(live)))

    def scenario(self, calls, final) -> list[dict]:
        lines = [{"op": "boot", "profile": "linux-2.6-i386", **self.config}]
        names = []
        for n, call in enumerate(calls):
            if call[0] == "vmalloc":
                names.append(f"area{n}")
                lines.append({"op": "vmalloc", "size": call[1], "as": names[-1]})
            else:
                lines.append({"op": "vfree", "addr": f"${names.pop(call[1])}"})
        if final is not None:
            lines.append({"op": "vmalloc", "size": final[1], "as": "fails",
                          "expect": {"ret": None}})
        return lines


def colour_reuse(min_colour: int = 2) -> Callable:
    """Two live slabs of the explored cache start their objects at the same colour
    offset, in a cache whose colour is at least `min_colour` (0: any cache)."""
    def reached(machine) -> bool:
        cachep = slab_mod.find_cache(machine, CACHE_NAME)
        if cachep is None or cachep.colour < min_colour:
            return False
        offsets = [s.colouroff for s in cachep.slabs.values()]
        return len(set(offsets)) < len(offsets)
    reached.layer = SlabLayer()
    return reached


def vmalloc_fits(machine, size: int) -> bool:
    """Would the vmalloc range hold `size` bytes plus the guard page (first fit)?"""
    page = machine.profile.PAGE_SIZE
    need = -(-size // page) * page + page
    return any(end - start >= need for start, end in machine.vmalloc_holes.items())


def vmalloc_frames_needed(machine, size: int) -> int:
    """Frames vmalloc(size) takes: its pages, and its page array when that is itself
    vmalloced (more than a page of pointers), plus one page of slack for kmalloc."""
    page = machine.profile.PAGE_SIZE
    n = -(-size // page)
    array = n * vm.SIZEOF_PAGE_POINTER
    return n + (-(-array // page) if array > page else 0) + 1


def vmalloc_exhausted(size: int = VMALLOC_SIZE) -> Callable:
    """vmalloc(size) returns NULL because no hole of the vmalloc range holds it, although
    the free frames would suffice and size is within num_physpages."""
    def reached(machine) -> bool:
        page = machine.profile.PAGE_SIZE
        return (-(-size // page) <= machine.nr_pages and not vmalloc_fits(machine, size)
                and page_alloc.nr_free_pages(machine) >= vmalloc_frames_needed(machine, size))
    reached.final_call = ("vmalloc", size)
    reached.layer = VmallocLayer(sizes=tuple(dict.fromkeys((size, 4096))))
    return reached


def explore(reached: Callable, *, phys_pages: int | None = None, orders=(0, 1, 2),
            max_calls: int = 8, max_states: int = 200000, layer=None) -> Found | None:
    """The shortest call sequence (at most max_calls) after which reached(machine).

    The layer is `layer`, else `reached.layer`, else the buddy layer on `phys_pages`
    frames (16 when not given); `phys_pages` also resizes a slab layer's machine."""
    if layer is None:
        layer = getattr(reached, "layer", None)
        if layer is None:
            layer = BuddyLayer(16 if phys_pages is None else phys_pages, orders)
        elif phys_pages is not None and isinstance(layer, SlabLayer):
            layer = SlabLayer(phys_pages, layer.shapes)
    start = boot(**layer.config)
    live0 = None if isinstance(layer, SlabLayer) else []
    queue = deque([(start, [], live0)])
    seen = {layer.key(start, live0)}
    explored = 0
    while queue:
        machine, calls, live = queue.popleft()
        explored += 1
        if reached(machine):
            return Found(calls, layer.scenario(calls, getattr(reached, "final_call", None)),
                         explored)
        if len(calls) >= max_calls or len(seen) >= max_states:
            continue
        for move in layer.moves(live):
            m = copy.deepcopy(machine)
            new_live = layer.apply(m, move, live)
            if new_live is None:
                continue
            key = layer.key(m, new_live)
            if key in seen:
                continue
            seen.add(key)
            queue.append((m, calls + [move], new_live))
    return None


QUERIES = {"fragmentation": fragmentation, "colour-reuse": colour_reuse,
           "vmalloc-exhausted": vmalloc_exhausted}
PENDING: dict[str, str] = {}
