"""The slab layer's invariants over a concrete machine (prose: spec/slab.md).

Each check reads the machine and returns its violations, naming the cache, slab (by
first pfn) and address. New catalogue names: colour_within_slack, slab_accounting,
size_class; slab parts of no_overlap and page_state.
"""

from __future__ import annotations

from bisect import bisect_left

from ..model.mem_map import PG_buddy, PG_highmem, PG_reserved, PG_slab
from ..model.slab import (CFLGS_OFF_SLAB, FREE, FULL, LIST_NAMES, PARTIAL, SIZEOF_ARRAY_CACHE,
                          kmem_find_general_cachep)
from ..model.cpu import cpu_online
from .catalogue import Report, invariant




def _state(machine):
    return getattr(machine, "slab", None)


def _caches(machine):
    state = _state(machine)
    return [] if state is None else state.cache_chain


def _slab_base(machine, slab) -> int:
    profile = machine.profile
    return profile.PAGE_OFFSET + (slab.id << profile.PAGE_SHIFT)


def _mgmt(cachep) -> int:
    """On-slab management bytes between the colour area and the objects."""
    return 0 if cachep.flags & CFLGS_OFF_SLAB else cachep.slab_size


def _free_chain(cachep, slab) -> tuple[list[int], str | None]:
    """Walk a slab's bufctl free list; (indices, problem or None)."""
    seen, out = set(), []
    idx = slab.free
    while idx != cachep.BUFCTL_END:
        if not 0 <= idx < cachep.num:
            return out, f"free list reaches index {idx} outside 0..{cachep.num - 1}"
        if idx in seen:
            return out, f"free list has a cycle at index {idx}"
        seen.add(idx)
        out.append(idx)
        idx = slab.bufctl[idx]
    return out, None


def _is_live(machine, cachep, addr) -> bool:
    """addr is a handed-out object of cachep."""
    if cachep is None or type(addr) is not int:
        return False
    profile = machine.profile
    slab = _state(machine).page_slab.get((addr - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT)
    if slab is None or slab.cache is not cachep:
        return False
    objnr, rest = divmod(addr - slab.s_mem, cachep.objsize)
    return (not rest and 0 <= objnr < cachep.num and slab.bufctl[objnr] == cachep.BUFCTL_FREE
            and addr not in _state(machine).parked)


def _check_arrays(machine, c, report, seen: dict) -> None:
    """The cache's per-CPU and shared arrays: each a live general-cache object of its
    size (once FULL), within their limits, holding objects of this cache that its slabs
    count as handed out, each in one array at most once."""
    profile = machine.profile
    state = _state(machine)
    arrays = [(f"CPU {i}", ac) for i, ac in enumerate(c.array) if ac is not None]
    if c.shared_array is not None:
        arrays.append(("shared", c.shared_array))
    if state.ready and len(c.array) != machine.cpus:
        report.add(f"cache {c.name}: {len(c.array)} per-CPU arrays on a {machine.cpus}-CPU "
                   "machine")
    elif state.ready:
        # an online CPU has its array, an offline one none (2.6.12 cpuup_callback:
        # CPU_UP_PREPARE allocates it, CPU_DEAD kfrees it and leaves NULL)
        for i, ac in enumerate(c.array):
            if (ac is None) == cpu_online(machine, i):
                report.add(f"cache {c.name}: CPU {i} is "
                           f"{'online without' if ac is None else 'offline with'} an array")
    word = profile.VIRT_BITS // 8
    for label, ac in arrays:
        where = f"cache {c.name} {label} array"
        # the structure itself is a live object of the general cache holding its
        # 16 + 4*limit bytes (2.6.12 alloc_arraycache); static only before FULL
        if ac.addr is None:
            if state.ready:
                report.add(f"{where}: array_cache has no memory after g_cpucache_up FULL")
        else:
            home = kmem_find_general_cachep(machine, SIZEOF_ARRAY_CACHE + word * ac.limit, 0)
            if not _is_live(machine, home, ac.addr):
                report.add(f"{where}: array_cache {ac.addr!r} is not a live object of "
                           f"{home.name if home else 'any general cache'}")
            elif "array_cache" not in state.internal.get(ac.addr, ""):
                report.add(f"{where}: array_cache {ac.addr:#x} is not marked as the slab "
                           "layer's own")
        if len(ac.entry) > ac.limit:
            report.add(f"{where}: avail {len(ac.entry)} > limit {ac.limit}")
        for addr in ac.entry:
            if addr in seen:
                report.add(f"{where}: object {addr:#x} is also in {seen[addr]}")
                continue
            seen[addr] = where
            slab = state.page_slab.get((addr - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT) \
                if type(addr) is int else None
            if slab is None or slab.cache is not c:
                report.add(f"{where}: {addr!r} is no object of this cache's slabs")
                continue
            objnr, rest = divmod(addr - slab.s_mem, c.objsize)
            if rest or not 0 <= objnr < c.num:
                report.add(f"{where}: {addr:#x} is not an object start")
            elif slab.bufctl[objnr] != c.BUFCTL_FREE:
                report.add(f"{where}: object {addr:#x} is also on its slab's free list")
            if addr in state.internal or addr in state.kmalloc_req:
                report.add(f"{where}: object {addr:#x} is parked but still in use")


@invariant("colour_within_slack", "slab",
           "every slab's colour offset is a multiple of colour_off within the left-over "
           "slack, and offset + management + num x size fits the slab")
def inv_colour_within_slack(machine) -> list[str]:
    report = Report()
    profile = machine.profile
    for c in _caches(machine):
        slab_bytes = profile.PAGE_SIZE << c.gfporder
        mgmt = _mgmt(c)
        # colour = left_over / colour_off (kmem_cache_create)
        if profile.slab_flavour == "slab":
            if c.colour_off <= 0 or c.colour_off % c.align:
                report.add(f"cache {c.name}: colour_off {c.colour_off} is not a positive "
                           f"multiple of the alignment {c.align}")
            elif c.colour != c.left_over // c.colour_off:
                report.add(f"cache {c.name}: colour {c.colour} != left_over {c.left_over} "
                           f"// colour_off {c.colour_off}")
        elif c.colour:
            report.add(f"cache {c.name}: SLUB has no colouring, colour is {c.colour}")
        if c.num * c.objsize + mgmt + c.left_over != slab_bytes:
            report.add(f"cache {c.name}: num {c.num} x {c.objsize} + management {mgmt} + "
                       f"left_over {c.left_over} != slab size {slab_bytes}")
        if not 0 <= c.colour_next < max(c.colour, 1):
            report.add(f"cache {c.name}: colour_next {c.colour_next} outside "
                       f"0..{max(c.colour, 1) - 1}")
        for slab in c.slabs.values():
            offset = slab.colouroff - mgmt
            where = f"cache {c.name} slab pfn {slab.id:#x}"
            if offset < 0 or offset > c.left_over:
                report.add(f"{where}: colour offset {offset} outside the slack "
                           f"0..{c.left_over}")
            elif c.colour_off and offset % c.colour_off:
                report.add(f"{where}: colour offset {offset} is not a multiple of "
                           f"colour_off {c.colour_off}")
            elif c.colour_off and offset // c.colour_off >= max(c.colour, 1):
                report.add(f"{where}: colour {offset // c.colour_off} >= colour {c.colour}")
            if offset + mgmt + c.num * c.objsize > slab_bytes:
                report.add(f"{where}: offset {offset} + management {mgmt} + "
                           f"{c.num} x {c.objsize} exceeds the slab's {slab_bytes} bytes")
    return report.done()


@invariant("slab_accounting", "slab",
           "inuse + free = num; free lists acyclic on object boundaries; list membership "
           "matches inuse; objects inside their slab pages; objects parked in per-CPU and "
           "shared arrays count as handed out, within each array's limit, in one array "
           "at most and not on a free list; an online CPU has an array in every cache, "
           "an offline one none; no array_cache memory outlives its array")
def inv_slab_accounting(machine) -> list[str]:
    report = Report()
    profile = machine.profile
    seen: dict[int, str] = {}
    for c in _caches(machine):
        if c.array is not None:
            _check_arrays(machine, c, report, seen)
        free_objects = 0
        on_lists = 0
        for which in (FULL, PARTIAL, FREE):
            lst = c.lists[which]
            walked = c.slab_list(which)
            prev = -1
            for slab in walked:
                if slab.list != which:
                    report.add(f"cache {c.name} slab pfn {slab.id:#x} is on "
                               f"{LIST_NAMES[which]} but records {LIST_NAMES[slab.list]}")
                if slab.prev != prev:
                    report.add(f"cache {c.name} {LIST_NAMES[which]}: broken prev link at "
                               f"slab pfn {slab.id:#x}")
                prev = slab.id
            if len(walked) != lst.nr or (walked and walked[-1].id != lst.tail) \
                    or (not walked and lst.tail != -1):
                report.add(f"cache {c.name} {LIST_NAMES[which]}: {len(walked)} slabs "
                           f"linked, nr says {lst.nr}")
            on_lists += len(walked)
        if on_lists != len(c.slabs):
            report.add(f"cache {c.name}: {len(c.slabs)} slabs but {on_lists} on its lists")
        for slab in c.slabs.values():
            where = f"cache {c.name} slab pfn {slab.id:#x}"
            chain, problem = _free_chain(c, slab)
            if problem:
                report.add(f"{where}: {problem}")
            if slab.inuse + len(chain) != c.num:
                report.add(f"{where}: inuse {slab.inuse} + free {len(chain)} != num {c.num}")
            on_chain = set(chain)
            handed = sum(1 for i, b in enumerate(slab.bufctl)
                         if b == c.BUFCTL_FREE and i not in on_chain)
            if handed != slab.inuse:
                report.add(f"{where}: {handed} objects marked in use, inuse says {slab.inuse}")
            want = FULL if slab.inuse == c.num else FREE if slab.inuse == 0 else PARTIAL
            if slab.list != want:
                report.add(f"{where}: inuse {slab.inuse}/{c.num} but on "
                           f"{LIST_NAMES[slab.list]}, not {LIST_NAMES[want]}")
            base = _slab_base(machine, slab)
            end = base + (profile.PAGE_SIZE << c.gfporder)
            if slab.s_mem != base + slab.colouroff:
                report.add(f"{where}: s_mem {slab.s_mem:#x} != slab start + colouroff "
                           f"{slab.colouroff}")
            if slab.s_mem < base or slab.s_mem + c.num * c.objsize > end:
                report.add(f"{where}: objects [{slab.s_mem:#x}, "
                           f"{slab.s_mem + c.num * c.objsize:#x}) leave the slab pages "
                           f"[{base:#x}, {end:#x})")
            free_objects += c.num - slab.inuse
        state = _state(machine)
        for slab in c.slabs.values():
            if bool(c.flags & CFLGS_OFF_SLAB) != (slab.mgmt is not None):
                report.add(f"cache {c.name} slab pfn {slab.id:#x}: management placement "
                           "does not match CFLGS_OFF_SLAB")
            elif slab.mgmt is not None and not _is_live(machine, c.slabp_cache, slab.mgmt):
                report.add(f"cache {c.name} slab pfn {slab.id:#x}: off-slab struct slab "
                           f"{slab.mgmt:#x} is not a live object of {c.slabp_cache.name}")
        if state.ready and c is not state.cache_cache and \
                not _is_live(machine, state.cache_cache, c.addr):
            report.add(f"cache {c.name}: descriptor {c.addr!r} is not a live kmem_cache object")
        if free_objects != c.free_objects:
            report.add(f"cache {c.name}: free_objects {c.free_objects}, slabs hold "
                       f"{free_objects} free objects")
    state = _state(machine)
    if state is not None and state.ready:
        # every kmalloc'ed array_cache is some cache's array: CPU_DEAD, do_tune_cpucache
        # and kmem_cache_destroy kfree the arrays they drop (2.6.12 mm/slab.c)
        held = {ac.addr for c in _caches(machine) if c.array is not None
                for ac in [*c.array, c.shared_array] if ac is not None}
        for addr, what in state.internal.items():
            if "array_cache" in what and addr not in held:
                report.add(f"{what} at {addr:#x} is no cache's array any more (leaked)")
    if state is not None and set(seen) != state.parked:
        report.add(f"{len(state.parked)} objects recorded as parked, the arrays hold "
                   f"{len(seen)} (differing: {sorted(set(seen) ^ state.parked)[:4]})")
    return report.done()


@invariant("no_overlap", "slab",
           "slab objects never overlap each other or the slab management, within and "
           "across slabs and caches; slab pages are disjoint")
def inv_no_overlap_slab(machine) -> list[str]:
    report = Report()
    profile = machine.profile
    spans = []
    for c in _caches(machine):
        if c.objsize <= 0:
            report.add(f"cache {c.name}: object size {c.objsize}")
            continue
        for slab in c.slabs.values():
            base = _slab_base(machine, slab)
            size = profile.PAGE_SIZE << c.gfporder
            spans.append((base, base + size, c.name, slab.id))
            # the colour area and the on-slab struct slab + bufctls end at colouroff;
            # object 0 must not start before that
            if slab.s_mem < base + slab.colouroff:
                report.add(f"cache {c.name} slab pfn {slab.id:#x}: object 0 at "
                           f"{slab.s_mem:#x} overlaps the colour area or the struct slab "
                           f"(ending at {base + slab.colouroff:#x})")
            if slab.mgmt is not None and base <= slab.mgmt < base + size:
                report.add(f"cache {c.name} slab pfn {slab.id:#x}: off-slab management "
                           f"{slab.mgmt:#x} lies inside the slab")
    spans.sort()
    for (s1, e1, n1, p1), (s2, e2, n2, p2) in zip(spans, spans[1:]):
        if s2 < e1:
            report.add(f"slab pfn {p1:#x} of {n1} and slab pfn {p2:#x} of {n2} share memory")
    state = _state(machine)
    if state is not None:
        # SLUB large kmallocs are plain page blocks: never inside a slab
        for pfn in state.kmalloc_large:
            if pfn in state.page_slab:
                report.add(f"large kmalloc pfn {pfn:#x} lies in a slab of "
                           f"{state.page_slab[pfn].cache.name}")
    return report.done()


@invariant("page_state", "slab",
           "every slab page is allocated in the buddy allocator, in low memory, flagged "
           "PG_slab and points back to its cache and slab; no other frame is PG_slab")
def inv_page_state_slab(machine) -> list[str]:
    report = Report()
    state = _state(machine)
    if state is None:
        return []
    flags = machine.mem_map.flags
    n = machine.mem_map.nr_pages
    expected = 0
    for c in state.cache_chain:
        for slab in c.slabs.values():
            where = f"cache {c.name} slab pfn {slab.id:#x}"
            if slab.cache is not c:
                report.add(f"{where}: slab records cache {slab.cache.name}")
            if machine.page_owner.get(slab.id) != c.gfporder:
                report.add(f"{where}: not an allocated order-{c.gfporder} block in the buddy "
                           f"allocator (page_owner says {machine.page_owner.get(slab.id)})")
            for pfn in range(slab.id, min(slab.id + (1 << c.gfporder), n)):
                f = flags[pfn]
                if not f & PG_slab:
                    report.add(f"{where}: frame {pfn:#x} lacks PG_slab")
                if f & (PG_buddy | PG_reserved | PG_highmem):
                    report.add(f"{where}: frame {pfn:#x} is free, reserved or highmem")
                if state.page_slab.get(pfn) is not slab:
                    report.add(f"{where}: frame {pfn:#x} does not point back to the slab")
            expected += 1 << c.gfporder
    if len(state.page_slab) != expected:
        report.add(f"{len(state.page_slab)} frames point to a slab, slabs own {expected}")
    marked = n - bytes(flags.translate(bytes(b & PG_slab for b in range(256)))).count(0)
    if marked != expected:
        report.add(f"{marked} frames carry PG_slab, slabs own {expected}")
    for pfn, order in state.kmalloc_large.items():
        if machine.page_owner.get(pfn) != order:
            report.add(f"large kmalloc pfn {pfn:#x} is not an allocated order-{order} block")
    return report.done()


@invariant("size_class", "slab",
           "every live kmalloc object comes from the smallest general class that holds "
           "its size (its DMA twin for GFP_DMA); larger SLUB requests are page blocks of "
           "order get_order(size)")
def inv_size_class(machine) -> list[str]:
    report = Report()
    state = _state(machine)
    if state is None:
        return []
    profile = machine.profile
    sizes = profile.kmalloc_sizes
    if list(sizes) != sorted(set(sizes)) or len(state.malloc_sizes) != len(sizes) \
            or len(state.malloc_sizes_dma) != len(sizes):
        report.add("the general classes are not one strictly increasing cache per size")
        return report.done()
    for i, size in enumerate(sizes):
        for cachep in (state.malloc_sizes[i], state.malloc_sizes_dma[i]):
            if cachep.objsize < size:
                report.add(f"general cache {cachep.name} holds {cachep.objsize} bytes, "
                           f"its class is {size}")
    for addr, req in state.kmalloc_req.items():
        pfn = (addr - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT
        slab = state.page_slab.get(pfn)
        if slab is None:
            order = state.kmalloc_large.get(pfn)
            if order is None:
                report.add(f"kmalloc object {addr:#x} ({req} bytes) is in no slab")
                continue
            cap = profile.KMALLOC_MAX_CACHE_SIZE
            if cap is None or req <= cap:
                report.add(f"kmalloc({req}) at {addr:#x} bypassed the general caches")
            if profile.PAGE_SIZE << order < req or (order and profile.PAGE_SIZE
                                                    << (order - 1) >= req):
                report.add(f"kmalloc({req}) at {addr:#x} got order {order}, not get_order")
            continue
        c = slab.cache
        index = bisect_left(sizes, req)
        if index == len(sizes):
            report.add(f"kmalloc({req}) at {addr:#x} is larger than every class")
            continue
        if c is not state.malloc_sizes[index] and c is not state.malloc_sizes_dma[index]:
            report.add(f"kmalloc({req}) at {addr:#x} came from {c.name}, the smallest class "
                       f"holding it is {state.malloc_sizes[index].name}")
        objnr, rest = divmod(addr - slab.s_mem, c.objsize)
        if rest or not 0 <= objnr < c.num or slab.bufctl[objnr] != c.BUFCTL_FREE \
                or addr in state.parked:
            report.add(f"kmalloc object {addr:#x} of {c.name} is not a live object")
    return report.done()
