"""Bounded model checking over call sequences: the shortest sequence of kernel calls
on a small machine that reaches a condition, as a runnable scenario (DESIGN.md section 6).

Breadth-first search over alloc_pages / __free_pages calls on the model itself, with
states deduplicated by their mem_map and allocator contents; the first hit is a
shortest sequence (fewest calls) within the bound.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections import deque
from dataclasses import dataclass
from typing import Callable

from ..model import boot, page_alloc
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
        present = sum(z.present_pages for z in machine.zones)
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


def explore(reached: Callable, *, phys_pages: int = 16, orders=(0, 1, 2),
            max_calls: int = 8, max_states: int = 200000) -> Found | None:
    """The shortest call sequence (at most max_calls) after which reached(machine)."""
    config = dict(phys_pages=phys_pages, highmem_pages=0)
    start = boot(**config)
    queue = deque([(start, [], [])])      # machine, calls, live blocks [(pfn, order)]
    seen = {_key(start)}
    explored = 0
    while queue:
        machine, calls, live = queue.popleft()
        explored += 1
        if reached(machine):
            return Found(calls, _scenario(config, calls, getattr(reached, "final_call", None)),
                         explored)
        if len(calls) >= max_calls or len(seen) >= max_states:
            continue
        moves = [("alloc", k) for k in orders] + [("free", i) for i in range(len(live))]
        for move in moves:
            m = copy.deepcopy(machine)
            new_live = list(live)
            if move[0] == "alloc":
                page = page_alloc.alloc_pages(m, GFP_KERNEL, move[1])
                if page is None:
                    continue
                new_live.append((page.pfn, move[1]))
            else:
                pfn, k = new_live.pop(move[1])
                page_alloc.__free_pages(m, m.mem_map[pfn], k)
            key = _key(m)
            if key in seen:
                continue
            seen.add(key)
            queue.append((m, calls + [move], new_live))
    return None


def _scenario(config: dict, calls: list[tuple], final) -> list[dict]:
    lines = [{"op": "boot", "profile": "linux-2.6-i386", **config}]
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


QUERIES = {"fragmentation": fragmentation}
PENDING = {"colour-reuse": "needs the slab layer's explore moves (kmem_cache_create/"
                           "kmem_cache_alloc); not implemented yet",
           "vmalloc-exhausted": "needs the vmalloc layer's explore moves; not implemented yet"}
