"""The buddy allocator's invariants over a concrete machine (prose: spec/buddy.md).

Each check reads the machine and returns its violations, naming the pfn. They are the
executable half of each invariant; the Z3 half lives in spec/z3_buddy.py.
"""

from __future__ import annotations

from ..model.mem_map import NO_ZONE, PG_buddy, PG_compound, PG_highmem, PG_reserved, PG_slab
from .catalogue import Report, invariant



def _table(mask: int) -> bytes:
    """A bytes.translate table keeping only the flag bits in `mask`."""
    return bytes(b & mask for b in range(256))


_KEEP_BUDDY = _table(PG_buddy)
_KEEP_BUDDY_RESERVED = _table(PG_buddy | PG_reserved)



def free_blocks(machine) -> list[tuple[int, int, int]]:
    """(zone index, head pfn, list order) for every block on a free list, in list order.

    A cycle or a dangling link would make a walk endless; each walk is cut at the
    machine's frame count (conservation then reports the mismatch).
    """
    mem_map = machine.mem_map
    out = []
    limit = mem_map.nr_pages
    nxt = mem_map.lru_next
    for zone in machine.zones:
        for order, area in enumerate(zone.free_area):
            pfn, steps = area.head, 0
            while 0 <= pfn < limit and steps <= limit:
                out.append((zone.index, pfn, order))
                pfn = nxt[pfn]
                steps += 1
    return out


def pcp_frames(machine) -> list[tuple[int, int, int, int]]:
    """(zone index, cpu, 0 hot | 1 cold, pfn) for every frame on a per-CPU list."""
    out = []
    for zone in machine.zones:
        for cpu, pset in enumerate(getattr(zone, "pageset", ()) or ()):
            for cold, pcp in enumerate(pset.pcp):
                out.extend((zone.index, cpu, cold, pfn) for pfn in pcp.list)
    return out


def allocated_blocks(machine) -> list[tuple[int, int]]:
    """(head pfn, order) for every block handed out by the page allocator."""
    return sorted(machine.page_owner.items())


@invariant("no_overlap", "buddy",
           "free blocks, frames on per-CPU lists, allocated blocks and reserved frames "
           "never share a frame")
def inv_no_overlap(machine) -> list[str]:
    mem_map = machine.mem_map
    n = mem_map.nr_pages
    owner = bytearray(n)          # 0 none, 1 reserved, 2 free, 3 allocated, 4 per-CPU
    report = Report()
    names = {1: "reserved", 2: "free", 3: "allocated", 4: "per-CPU list"}
    # reserved frames (PG_reserved set) first
    reserved = bytes(mem_map.flags.translate(_table(PG_reserved)))
    start = reserved.find(PG_reserved)
    while start >= 0:
        end = reserved.find(0, start)
        end = n if end < 0 else end
        owner[start:end] = b"\x01" * (end - start)
        start = reserved.find(PG_reserved, end)
    blocks = [(head, order, 2) for _, head, order in free_blocks(machine)]
    blocks += [(head, order, 3) for head, order in allocated_blocks(machine)]
    blocks += [(pfn, 0, 4) for _, _, _, pfn in pcp_frames(machine)]
    for head, order, role in blocks:
        size = 1 << order
        end = min(head + size, n)
        span = owner[head:end]
        if head < 0 or head + size > n:
            report.add(f"{names[role]} block pfn {head:#x} order {order} runs past the "
                       f"end of mem_map ({n} frames)")
        if span.count(0) != len(span):
            clash = next(i for i, b in enumerate(span) if b)
            report.add(f"{names[role]} block pfn {head:#x} order {order} overlaps a "
                       f"{names[span[clash]]} frame at pfn {head + clash:#x}")
        owner[head:end] = bytes([role]) * (end - head)
    return report.done()


@invariant("buddy_alignment", "buddy",
           "every block is aligned to its size within its zone and lies inside the zone")
def inv_buddy_alignment(machine) -> list[str]:
    report = Report()
    mem_map = machine.mem_map
    max_order = machine.profile.MAX_ORDER
    blocks = [(machine.zones[z], head, order, "free") for z, head, order in free_blocks(machine)]
    for head, order in allocated_blocks(machine):
        zid = mem_map.zone_id[head] if 0 <= head < mem_map.nr_pages else NO_ZONE
        zone = None if zid == NO_ZONE else machine.zones[zid]
        blocks.append((zone, head, order, "allocated"))
    for zone, head, order, role in blocks:
        if zone is None:
            report.add(f"{role} block pfn {head:#x} is in no zone")
            continue
        if not 0 <= order < max_order:
            report.add(f"{role} block pfn {head:#x} has order {order} outside 0..{max_order - 1}")
            continue
        if (head - zone.zone_start_pfn) % (1 << order):
            report.add(f"{role} block pfn {head:#x} order {order} is not aligned to "
                       f"{1 << order} frames from zone {zone.name} start {zone.zone_start_pfn:#x}")
        if head < zone.zone_start_pfn or head + (1 << order) > zone.zone_end_pfn:
            report.add(f"{role} block pfn {head:#x} order {order} leaves zone {zone.name} "
                       f"[{zone.zone_start_pfn:#x}, {zone.zone_end_pfn:#x})")
    return report.done()


@invariant("merge_completeness", "buddy",
           "no two free buddies of the same order in the same zone are left unmerged")
def inv_merge_completeness(machine) -> list[str]:
    report = Report()
    top = machine.profile.MAX_ORDER - 1
    free = {(z, head): order for z, head, order in free_blocks(machine)}
    for (z, head), order in free.items():
        if order >= top:
            continue
        zone = machine.zones[z]
        base = zone.zone_start_pfn
        buddy = base + ((head - base) ^ (1 << order))
        if not zone.zone_start_pfn <= buddy < zone.zone_end_pfn:
            continue
        if machine.mem_map.zone_id[buddy] != z:
            continue
        if free.get((z, buddy)) == order and head < buddy:
            report.add(f"free blocks pfn {head:#x} and its buddy {buddy:#x} (order {order}, "
                       f"zone {zone.name}) should have merged into order {order + 1}")
    return report.done()


@invariant("conservation", "buddy",
           "every frame has exactly one role; nr_free and free_pages match the lists")
def inv_conservation(machine) -> list[str]:
    report = Report()
    mem_map = machine.mem_map
    n = mem_map.nr_pages
    flags = mem_map.flags
    blocks = free_blocks(machine)
    frames_free = [0] * len(machine.zones)
    per_list: dict[tuple[int, int], int] = {}
    for z, head, order in blocks:
        frames_free[z] += 1 << order
        per_list[(z, order)] = per_list.get((z, order), 0) + 1
    for zone in machine.zones:
        for order, area in enumerate(zone.free_area):
            length = per_list.get((zone.index, order), 0)
            if area.nr_free != length:
                report.add(f"zone {zone.name} free_area[{order}].nr_free is {area.nr_free} "
                           f"but its free_list holds {length} blocks")
        if zone.free_pages != frames_free[zone.index]:
            report.add(f"zone {zone.name} free_pages is {zone.free_pages} but its free "
                       f"lists hold {frames_free[zone.index]} frames")
    allocated = sum(1 << order for _, order in allocated_blocks(machine))
    reserved = n - bytes(flags.translate(_table(PG_reserved))).count(0)
    on_pcp = len(pcp_frames(machine))
    total = reserved + sum(frames_free) + allocated + on_pcp
    if total != n:
        report.add(f"roles do not add up: {reserved} reserved + {sum(frames_free)} free + "
                   f"{on_pcp} on per-CPU lists + {allocated} allocated = {total} frames, "
                   f"mem_map has {n}")
    return report.done()


@invariant("page_state", "buddy",
           "mem_map agrees with the structure that owns each frame")
def inv_page_state(machine) -> list[str]:
    report = Report()
    mem_map = machine.mem_map
    n = mem_map.nr_pages
    flags, count, private = mem_map.flags, mem_map.count, mem_map.private
    nxt, prv = mem_map.lru_next, mem_map.lru_prev
    blocks = free_blocks(machine)
    # free blocks: head marked with its order, every frame unreferenced
    for z, head, order in blocks:
        f = flags[head]
        if not f & PG_buddy or private[head] != order:
            report.add(f"free block head pfn {head:#x} on free_area[{order}] has "
                       f"PG_buddy={bool(f & PG_buddy)} private={private[head]}")
        if f & (PG_reserved | PG_slab):
            report.add(f"free block head pfn {head:#x} is marked reserved or slab")
        end = min(head + (1 << order), n)
        if count[head:end].count(0) != end - head:
            report.add(f"free block pfn {head:#x} order {order} has a referenced frame")
        tail = bytes(flags[head + 1:end]).translate(_KEEP_BUDDY_RESERVED)
        if tail.count(0) != len(tail):
            bad = head + 1 + next(i for i, b in enumerate(tail) if b)
            report.add(f"frame pfn {bad:#x} inside free block {head:#x} is marked "
                       "PG_buddy or PG_reserved")
        if nxt[head] >= 0 and prv[nxt[head]] != head:
            report.add(f"free list link broken after pfn {head:#x}")
    # no stray PG_buddy marks outside the lists
    marked = n - bytes(flags.translate(_KEEP_BUDDY)).count(0)
    if marked != len(blocks):
        report.add(f"{marked} frames carry PG_buddy but the free lists hold {len(blocks)} blocks")
    # allocated blocks: head referenced, nothing marked free or reserved
    for head, order in allocated_blocks(machine):
        if not 0 <= head < n:
            report.add(f"allocated block pfn {head:#x} is outside mem_map")
            continue
        if count[head] < 1:
            report.add(f"allocated block head pfn {head:#x} has _count {count[head]}")
        end = min(head + (1 << order), n)
        span = bytes(flags[head:end]).translate(_KEEP_BUDDY_RESERVED)
        if span.count(0) != len(span):
            bad = head + next(i for i, b in enumerate(span) if b)
            report.add(f"frame pfn {bad:#x} of allocated block {head:#x} is marked "
                       "PG_buddy or PG_reserved")
    # zones recorded in page->flags, and PG_highmem exactly on ZONE_HIGHMEM
    zone_id = mem_map.zone_id
    for zone in machine.zones:
        s, e = zone.zone_start_pfn, zone.zone_end_pfn
        if e > s and zone_id[s:e].count(zone.index) != e - s:
            report.add(f"zone {zone.name} span has frames recorded in another zone")
        if e > s:
            want = PG_highmem if zone.name == "HighMem" else 0
            hm = bytes(flags[s:e]).translate(_table(PG_highmem))
            if hm.count(want) != e - s:
                report.add(f"zone {zone.name}: PG_highmem does not match the zone")
    return report.done()


@invariant("pcp_lists", "buddy",
           "per-CPU lists: count is the list length and within high; each frame is an "
           "unreferenced order-0 frame of the zone, on no buddy list, on one list once")
def inv_pcp_lists(machine) -> list[str]:
    """2.6.12 struct per_cpu_pages (buffered_rmqueue, free_hot_cold_page): a frame on a
    list was taken off the buddy lists by __rmqueue (PG_private/PG_buddy clear) or
    freed by its last reference (count 0); refills stop at low + batch <= high and a
    free at high drains `batch` first, so count <= high."""
    report = Report()
    mem_map = machine.mem_map
    n = mem_map.nr_pages
    flags, count = mem_map.flags, mem_map.count
    recorded = getattr(machine, "pcp_pages", {})
    seen: dict[int, str] = {}
    for zone in machine.zones:
        for cpu, pset in enumerate(getattr(zone, "pageset", ()) or ()):
            for cold, pcp in enumerate(pset.pcp):
                name = f"zone {zone.name} CPU {cpu} {'cold' if cold else 'hot'} list"
                if pcp.count != len(pcp.list):
                    report.add(f"{name}: count is {pcp.count} but the list holds "
                               f"{len(pcp.list)} frames")
                if pcp.count > pcp.high:
                    report.add(f"{name}: count {pcp.count} is above high {pcp.high}")
                for pfn in pcp.list:
                    if not 0 <= pfn < n:
                        report.add(f"{name}: pfn {pfn:#x} is outside mem_map")
                        continue
                    if pfn in seen:
                        report.add(f"pfn {pfn:#x} is on {name} and on {seen[pfn]}")
                    seen[pfn] = name
                    if mem_map.zone_id[pfn] != zone.index:
                        report.add(f"{name}: pfn {pfn:#x} belongs to another zone")
                    if flags[pfn] & (PG_buddy | PG_reserved | PG_slab) or count[pfn]:
                        report.add(f"{name}: pfn {pfn:#x} is not an unreferenced plain "
                                   f"frame (flags {flags[pfn]:#x}, _count {count[pfn]})")
                    if pfn in machine.page_owner:
                        report.add(f"{name}: pfn {pfn:#x} is also allocated")
                    if recorded.get(pfn) != 2 * cpu + cold:
                        report.add(f"{name}: pfn {pfn:#x} is recorded as "
                                   f"{recorded.get(pfn)!r} in pcp_pages")
    if len(recorded) != len(seen):
        report.add(f"pcp_pages records {len(recorded)} frames, the lists hold {len(seen)}")
    return report.done()


@invariant("compound_pages", "buddy",
           "PG_compound marks exactly the frames of __GFP_COMP blocks; each points at "
           "its head and page[1].index is the block's order")
def inv_compound_pages(machine) -> list[str]:
    """2.6.12 prep_compound_page / destroy_compound_page: a compound block of order k
    has PG_compound and page->private = head on each of its 2^k frames and
    page[1].index = k; nothing else carries PG_compound."""
    report = Report()
    mem_map = machine.mem_map
    n = mem_map.nr_pages
    flags, private = mem_map.flags, mem_map.private
    index = getattr(machine, "page_index", {})
    expected = 0
    for second, order in index.items():
        head = second - 1
        if machine.page_owner.get(head) != order:
            report.add(f"page[1].index {order} at pfn {second:#x}: pfn {head:#x} is not the "
                       f"head of an allocated order-{order} block")
            continue
        expected += 1 << order
        for p in range(head, min(head + (1 << order), n)):
            if not flags[p] & PG_compound or private[p] != head:
                report.add(f"frame {p:#x} of compound block {head:#x} has "
                           f"PG_compound={bool(flags[p] & PG_compound)} private={private[p]:#x}")
    marked = n - bytes(flags.translate(bytes(b & PG_compound for b in range(256)))).count(0)
    if marked != expected:
        report.add(f"{marked} frames carry PG_compound, the compound blocks hold {expected}")
    return report.done()
