"""The picture model: what a drawing of a machine state shows, as plain JSON data.

One picture model, two outputs: `conform/render.py` draws it as a static SVG
(`kmemspec render`, conformance reports) and `kmemspec view` (kmemspec/cmd_view.py)
inlines one picture per step, as diffs, into an HTML page whose script draws it.

A picture is a dict of sections; every section but "meta" is a dict keyed by a string,
so the picture after a step is the one before it with some keys set or dropped
(`diff`, `apply`):

- "zones": name -> [first pfn, end pfn]
- "reserved": first pfn -> number of frames (runs of PG_reserved frames)
- "blocks": head pfn -> [order, role]; role "free" (on a free list), "alloc", "slab",
  "vmalloc" (page_owner blocks by what uses them), "pcp" (on a per-CPU list, when the
  model has them)
- "buddyinfo": zone -> nr_free per order
- "caches": name -> {objsize, num, gfporder, colour, colour_off, colour_next, off_slab,
  active_objs, num_slabs, [array: {cpu: [avail, limit, batchcount, [objects]]}]}
- "slabs": "cache:pfn" -> {cache, pfn, colour (bytes), mgmt (bytes), first (bytes
  before object 0), s_mem, inuse, num, objsize, free: the free list as [start, length]
  runs of object indexes, in list order}
- "vm": address -> [size incl. guard page, nr_pages, caller, pte runs [pfn, count]]
- "kmap": slot -> [pkmap_count, pfn]
- "pcp": "zone:cpu:hot|cold" -> [count, low, high, batch, pfn runs], per-CPU page lists

Optional state (per-CPU lists, array caches) is read with getattr: a model without
it gives a picture without it.
"""

from __future__ import annotations

from ..model import page_alloc
from ..model.mem_map import PG_reserved, PG_slab
from ..spec.buddy import free_blocks

__all__ = ["picture", "diff", "apply", "runs"]

_RESERVED_ONLY = bytes((1 if b & PG_reserved else 0) for b in range(256))


def runs(values) -> list[list[int]]:
    """[start, length] runs of consecutive integers, in order: [3,4,5,9] -> [[3,3],[9,1]]."""
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][0] + out[-1][1] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def _reserved(machine) -> dict[str, int]:
    marks = bytes(machine.mem_map.flags).translate(_RESERVED_ONLY)
    out, pos, n = {}, marks.find(1), len(marks)
    while pos >= 0:
        stop = marks.find(0, pos)
        stop = n if stop < 0 else stop
        out[str(pos)] = stop - pos
        pos = marks.find(1, stop)
    return out


def _pcp(machine) -> tuple[list[int], dict[str, list]]:
    """Frames on per-CPU page lists and each list, if the model keeps them
    (struct per_cpu_pages: zone.pageset[cpu] = [hot, cold], each with count, low,
    high, batch and the list of pfns)."""
    frames = list(getattr(machine, "pcp_pages", {}) or ())
    lists: dict[str, list] = {}
    for zone in machine.zones:
        for cpu, pair in enumerate(getattr(zone, "pageset", None) or ()):
            for temp, pcp in zip(("hot", "cold"), getattr(pair, "pcp", pair)):
                pfns = list(getattr(pcp, "list", ()) or ())
                lists[f"{zone.name}:{cpu}:{temp}"] = [
                    getattr(pcp, "count", len(pfns)), getattr(pcp, "low", 0),
                    getattr(pcp, "high", 0), getattr(pcp, "batch", 0), runs(pfns)]
                if not frames:
                    frames.extend(pfns)
    return frames, lists


def _blocks(machine) -> dict[str, list]:
    flags = machine.mem_map.flags
    vm_owner = getattr(machine, "vmalloc_owner", {})
    blocks: dict[str, list] = {}
    for head, order in machine.page_owner.items():
        role = ("slab" if flags[head] & PG_slab else
                "vmalloc" if head in vm_owner else "alloc")
        blocks[str(head)] = [order, role]
    for pfn in _pcp(machine)[0]:
        blocks[str(pfn)] = [0, "pcp"]
    for _, head, order in free_blocks(machine):
        blocks[str(head)] = [order, "free"]
    return blocks


def _free_list(cache, slab) -> list[int]:
    order, seen, idx = [], set(), slab.free
    while 0 <= idx < cache.num and idx not in seen:
        seen.add(idx)
        order.append(idx)
        idx = slab.bufctl[idx]
    return order


def _array_caches(cache) -> dict | None:
    """Per-CPU array caches (struct array_cache), if the model keeps them."""
    arrays = getattr(cache, "array", None)
    if not arrays:
        return None
    items = arrays.items() if isinstance(arrays, dict) else enumerate(arrays)
    out = {}
    for cpu, ac in items:
        if ac is None:
            continue
        entries = list(getattr(ac, "entry", ()) or ())
        avail = getattr(ac, "avail", len(entries))
        out[str(cpu)] = [avail, getattr(ac, "limit", 0), getattr(ac, "batchcount", 0),
                         entries[:avail]]
    return out


def _slabs(machine) -> tuple[dict, dict]:
    state = getattr(machine, "slab", None)
    caches: dict[str, dict] = {}
    slabs: dict[str, dict] = {}
    if state is None:
        return caches, slabs
    profile = machine.profile
    for cache in getattr(state, "cache_chain", ()):
        cache_slabs = getattr(cache, "slabs", None) or {}
        active = 0
        for slab in cache_slabs.values():
            base = profile.PAGE_OFFSET + (slab.id << profile.PAGE_SHIFT)
            first = slab.s_mem - base
            colour = first if cache.off_slab else max(first - cache.slab_size, 0)
            active += slab.inuse
            slabs[f"{cache.name}:{slab.id}"] = {
                "cache": cache.name, "pfn": slab.id, "colour": colour,
                "mgmt": 0 if cache.off_slab else max(first - colour, 0), "first": first,
                "s_mem": slab.s_mem, "inuse": slab.inuse, "num": cache.num,
                "objsize": cache.objsize, "bytes": profile.PAGE_SIZE << cache.gfporder,
                "free": runs(_free_list(cache, slab))}
        entry = {"objsize": cache.objsize, "num": cache.num, "gfporder": cache.gfporder,
                 "colour": getattr(cache, "colour", 0),
                 "colour_off": getattr(cache, "colour_off", 0),
                 "colour_next": getattr(cache, "colour_next", 0),
                 "off_slab": bool(cache.off_slab), "active_objs": active,
                 "num_slabs": len(cache_slabs)}
        arrays = _array_caches(cache)
        if arrays is not None:
            entry["array"] = arrays
        caches[cache.name] = entry
    return caches, slabs


# the pte runs of an area are computed once per area object (an area's mapping is set
# by vmalloc/vmap before it is returned and only torn down with the area)
_PTE_CACHE: dict[int, tuple[object, list]] = {}


def _vm(machine) -> dict[str, list]:
    from ..model import pgtable
    out: dict[str, list] = {}
    page = machine.profile.PAGE_SIZE
    for area in getattr(machine, "vmlist", ()):
        cached = _PTE_CACHE.get(id(area))
        if cached is None or cached[0] is not area:
            pfns = []
            for i in range((area.size - page) // page):
                phys = pgtable.translate(machine, area.addr + i * page)
                pfns.append(-1 if phys is None else phys >> machine.profile.PAGE_SHIFT)
            cached = (area, runs(pfns))
            if len(_PTE_CACHE) > 4096:           # freed areas' entries are dropped
                _PTE_CACHE.clear()
            _PTE_CACHE[id(area)] = cached
        out[str(area.addr)] = [area.size, area.nr_pages, area.caller, cached[1]]
    return out


def _kmap(machine) -> dict[str, list]:
    counts = getattr(machine, "pkmap_count", None)
    if counts is None:
        return {}
    table = machine.pkmap_page_table
    out = {}
    for nr, count in enumerate(counts):
        if count:
            pte = table[nr]
            out[str(nr)] = [count, pte >> machine.profile.PAGE_SHIFT if pte & 1 else -1]
    return out


def picture(machine) -> dict:
    """The picture model of `machine`'s state (see the module docstring)."""
    caches, slabs = _slabs(machine)
    meta = {"profile": machine.profile.name, "nr_pages": machine.nr_pages,
            "page_size": machine.profile.PAGE_SIZE,
            "page_offset": machine.profile.PAGE_OFFSET}
    if hasattr(machine, "vmalloc_start"):
        meta["vmalloc"] = [machine.vmalloc_start, machine.vmalloc_end]
    return {
        "meta": meta,
        "zones": {z.name: [z.zone_start_pfn, z.zone_end_pfn] for z in machine.zones
                  if z.zone_end_pfn > z.zone_start_pfn},
        "reserved": _reserved(machine),
        "blocks": _blocks(machine),
        "buddyinfo": page_alloc.buddyinfo(machine),
        "caches": caches,
        "slabs": slabs,
        "vm": _vm(machine),
        "kmap": _kmap(machine),
        "pcp": _pcp(machine)[1],
    }


SECTIONS = ("zones", "reserved", "blocks", "buddyinfo", "caches", "slabs", "vm", "kmap",
            "pcp")


def diff(before: dict, after: dict) -> dict:
    """{section: {key: new value, or None if dropped}} for the keys that differ."""
    out = {}
    for section in SECTIONS:
        old, new = before.get(section, {}), after.get(section, {})
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        changed.update({k: None for k in old if k not in new})
        if changed:
            out[section] = changed
    return out


def apply(pic: dict, changes: dict) -> dict:
    """The picture `pic` with `changes` (from `diff`) applied, in place; returns it."""
    for section, changed in changes.items():
        target = pic.setdefault(section, {})
        for key, value in changed.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    return pic


def frame_roles(pic: dict, start: int, end: int) -> tuple[bytearray, bytearray]:
    """Per-frame role codes (ROLES index) and free-block orders for frames [start, end)."""
    n = end - start
    roles = bytearray(n)                                   # 0: in no zone
    orders = bytearray(n)

    def fill(first, count, code, order=0):
        a, b = max(first, start), min(first + count, end)
        if a < b:
            roles[a - start:b - start] = bytes([code]) * (b - a)
            if order:
                orders[a - start:b - start] = bytes([order]) * (b - a)

    for first, last in pic["zones"].values():
        fill(first, last - first, ROLES.index("alloc"))      # in use until a block says more
    for first, count in pic["reserved"].items():
        fill(int(first), count, ROLES.index("reserved"))
    for head, (order, role) in pic["blocks"].items():
        fill(int(head), 1 << order, ROLES.index(role), order if role == "free" else 0)
    return roles, orders


ROLES = ("nozone", "reserved", "free", "alloc", "slab", "vmalloc", "pcp")
ROLE_NAMES = {"nozone": "in no zone (iomem)", "reserved": "reserved", "free": "free",
              "alloc": "allocated", "slab": "slab", "vmalloc": "vmalloc page",
              "pcp": "on a per-CPU list"}
ROLE_COLOURS = {"nozone": "#e0e0e0", "reserved": "#555555", "alloc": "#e8a33d",
                "slab": "#8e6bbf", "vmalloc": "#3d8fe8", "pcp": "#e85d8f"}
# free blocks: light (order 0) to dark (top order) green
FREE_SHADES = ["#d9f2d0", "#c4eab6", "#ace09a", "#93d47e", "#7ac764", "#62b94c",
               "#4daa39", "#3c9a2b", "#2e8720", "#237318", "#1a5f12", "#134c0d"]
