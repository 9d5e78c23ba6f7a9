"""vmalloc's invariants over a concrete machine (prose and citations: spec/vmalloc.md).

`page_table_consistency` and `vm_area_bounds`, plus the vmalloc parts of `no_overlap`
and `conservation`. Machines without the i386 layout have no vmalloc state
and nothing to check.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

from ..model.mem_map import PG_buddy, PG_reserved, PG_slab
from ..model.page_alloc import find_block
from ..model.pgtable import (PGDIR_SHIFT, PTRS_PER_PGD, _PAGE_PRESENT, direct_map_entries,
                             pgd_index)
from ..model.vmalloc import SIZEOF_PAGE_POINTER, SIZEOF_VM_STRUCT, VM_ALLOC
from .catalogue import Report, invariant


def _has_vmalloc(machine) -> bool:
    return hasattr(machine, "vmlist")


def _area_at(machine, vaddr: int):
    starts = machine.vmlist_starts
    i = bisect_right(starts, vaddr) - 1
    if i >= 0:
        area = machine.vmlist[i]
        if vaddr < area.addr + area.size:
            return area
    return None


@invariant("page_table_consistency", "vmalloc",
           "vmalloc ptes, vm areas and allocated frames agree; guard pages and holes unmapped")
def inv_page_table_consistency(machine) -> list[str]:
    if not _has_vmalloc(machine):
        return []
    report = Report()
    pgd = machine.swapper_pg_dir
    owner = machine.vmalloc_owner
    page_owner = machine.page_owner
    count = machine.mem_map.count
    n = machine.nr_pages
    pkmap_index = machine.pkmap_base >> PGDIR_SHIFT
    # the direct map is untouched: one large page per 4 MiB of low memory, nothing else
    # below VMALLOC_START
    direct = direct_map_entries(machine)
    for index in range(machine.profile.PAGE_OFFSET >> PGDIR_SHIFT,
                       pgd_index(machine.vmalloc_start)):
        if pgd[index] != direct.get(index, 0):
            report.add(f"pgd entry {index:#x} below VMALLOC_START is not the direct map's")
    # every pte table above the direct map (but the pkmap one, from bootmem) lives in a
    # frame the page allocator handed out (pte_alloc_kernel), recorded in pte_table_pfns
    tables = machine.pte_table_pfns
    flags = machine.mem_map.flags
    for index, pfn in tables.items():
        if not isinstance(pgd[index], array) or index == pkmap_index:
            report.add(f"pte_table_pfns records pfn {pfn:#x} for pgd entry {index:#x}, "
                       "which holds no vmalloc pte table")
        elif not 0 <= pfn < n or page_owner.get(pfn) != 0 or \
                flags[pfn] & (PG_buddy | PG_reserved | PG_slab):
            report.add(f"the pte table of pgd entry {index:#x} is in pfn {pfn:#x}, which is "
                       "not an allocated page")
    # every present pte of the vmalloc range belongs to a live area, below its guard
    # page, and points at the area's frame for that index
    for index in range(pgd_index(machine.vmalloc_start), PTRS_PER_PGD):
        table = pgd[index]
        if index == pkmap_index:
            continue
        if isinstance(table, array) and index not in tables:
            report.add(f"the pte table of pgd entry {index:#x} has no frame")
        if not isinstance(table, array):
            if table:
                report.add(f"pgd entry {index:#x} above the direct map is a large page")
            continue
        base = index << PGDIR_SHIFT
        for j, pte in enumerate(table):
            if not pte & _PAGE_PRESENT:
                continue
            vaddr = base + (j << 12)
            pfn = pte >> 12
            if not machine.vmalloc_start <= vaddr < machine.vmalloc_end:
                report.add(f"pte for {vaddr:#x} (pfn {pfn:#x}) is outside the vmalloc range")
                continue
            area = _area_at(machine, vaddr)
            if area is None:
                report.add(f"pte for {vaddr:#x} (pfn {pfn:#x}) maps a hole of the vmalloc range")
                continue
            i = (vaddr - area.addr) >> 12
            if i >= len(area.pages):
                report.add(f"guard page {vaddr:#x} of the area at {area.addr:#x} is mapped "
                           f"(pfn {pfn:#x})")
                continue
            if area.pages[i] != pfn:
                report.add(f"pte for {vaddr:#x} maps pfn {pfn:#x}, but page {i} of the area "
                           f"at {area.addr:#x} is pfn {area.pages[i]:#x}")
            if not area.flags & VM_ALLOC:
                # vmap: the caller's frame, any allocated block's page
                found = find_block(machine, pfn) if 0 <= pfn < n else None
                if found is None or found[0] != "allocated":
                    report.add(f"pte for {vaddr:#x} (vmap area {area.addr:#x}) maps pfn "
                               f"{pfn:#x}, which is not allocated")
                continue
            if not 0 <= pfn < n or page_owner.get(pfn) != 0 or count[pfn] < 1:
                report.add(f"pte for {vaddr:#x} maps pfn {pfn:#x}, which is not an "
                           "allocated single frame")
            if owner.get(pfn) != area.addr:
                report.add(f"pfn {pfn:#x} mapped by the area at {area.addr:#x} is recorded "
                           f"for {owner.get(pfn)!r} in mem_map's vmalloc owner")
    # every page of every live area is mapped, at its index
    for area in machine.vmlist:
        for i, pfn in enumerate(area.pages):
            vaddr = area.addr + (i << 12)
            table = pgd[vaddr >> PGDIR_SHIFT]
            pte = table[(vaddr >> 12) & 1023] if isinstance(table, array) else 0
            if not pte & _PAGE_PRESENT:
                report.add(f"page {i} (pfn {pfn:#x}) of the area at {area.addr:#x} is not "
                           "mapped")
    total = sum(len(a.pages) for a in machine.vmlist if a.flags & VM_ALLOC)
    if len(owner) != total:
        report.add(f"mem_map records {len(owner)} vmalloc frames, the live areas hold {total}")
    return report.done()


@invariant("vm_area_bounds", "vmalloc",
           "vm areas are page-aligned, inside [VMALLOC_START, VMALLOC_END) and disjoint "
           "guard pages included")
def inv_vm_area_bounds(machine) -> list[str]:
    if not _has_vmalloc(machine):
        return []
    report = Report()
    page = machine.profile.PAGE_SIZE
    start, end = machine.vmalloc_start, machine.vmalloc_end
    prev_end, prev_addr = start, None
    if machine.vmlist_starts != [a.addr for a in machine.vmlist]:
        report.add("vmlist_starts does not list the vmlist's addresses in order")
    if set(machine.vm_areas) != set(machine.vmlist_starts) or any(
            machine.vm_areas[a.addr] is not a for a in machine.vmlist
            if a.addr in machine.vm_areas):
        report.add("the area index does not match the vmlist")
    holes = {}
    for area in machine.vmlist:
        a, size = area.addr, area.size
        if a % page or size % page:
            report.add(f"area {a:#x} size {size:#x} is not page aligned")
        if size < 2 * page:
            report.add(f"area {a:#x} is smaller than one page plus its guard page")
        if a < start or a + size > end:
            report.add(f"area {a:#x}-{a + size:#x} leaves the vmalloc range "
                       f"[{start:#x}, {end:#x})")
        if a < prev_end and prev_addr is not None:
            report.add(f"area {a:#x} overlaps the area at {prev_addr:#x} (which ends, guard "
                       f"page included, at {prev_end:#x})")
        elif a > prev_end:
            holes[prev_end] = a
        if area.flags & VM_ALLOC and (area.nr_pages != size // page - 1
                                      or len(area.pages) != area.nr_pages):
            report.add(f"area {a:#x}: nr_pages {area.nr_pages} and {len(area.pages)} pages "
                       f"for {size // page - 1} pages of address space")
        elif area.pages and len(area.pages) != size // page - 1:
            report.add(f"vmap area {a:#x}: {len(area.pages)} pages for {size // page - 1} "
                       "pages of address space")
        prev_end, prev_addr = max(prev_end, a + size), a
    if prev_end < end:
        holes[prev_end] = end
    if machine.vmalloc_holes != holes or machine.vmalloc_hole_starts != sorted(holes):
        report.add("the hole index does not match the gaps between areas")
    return report.done()


@invariant("no_overlap", "vmalloc",
           "no frame backs two vmalloc pages or pte tables, or is free, reserved or slab "
           "while it does")
def inv_no_overlap_vmalloc(machine) -> list[str]:
    if not _has_vmalloc(machine):
        return []
    report = Report()
    flags = machine.mem_map.flags
    n = machine.nr_pages
    seen: dict[int, int | str] = {}
    objects: dict[int, str] = {}
    for index, pfn in machine.pte_table_pfns.items():
        if pfn in seen:
            report.add(f"pfn {pfn:#x} holds two pte tables")
        seen[pfn] = f"pte table {index:#x}"
    for area in machine.vmlist:
        # a vmap area maps the caller's frames, which it does not own
        owned = area.pages if area.flags & VM_ALLOC else ()
        for pfn in owned:
            if pfn in seen:
                other = seen[pfn]
                other = other if isinstance(other, str) else f"the area at {other:#x}"
                report.add(f"pfn {pfn:#x} backs the area at {area.addr:#x} and {other}")
            seen[pfn] = area.addr
            if not 0 <= pfn < n:
                report.add(f"area {area.addr:#x} holds pfn {pfn:#x} beyond mem_map")
            elif flags[pfn] & (PG_buddy | PG_reserved | PG_slab):
                report.add(f"pfn {pfn:#x} of the area at {area.addr:#x} is marked free, "
                           "reserved or slab")
        for what, kaddr in (("vm_struct", area.kaddr), ("page array", area.pages_addr)):
            if kaddr and not (what == "page array" and area.pages_vmalloced):
                if kaddr in objects:
                    report.add(f"the {what} of the area at {area.addr:#x} shares address "
                               f"{kaddr:#x} with a {objects[kaddr]}")
                objects[kaddr] = what
    return report.done()


@invariant("conservation", "vmalloc",
           "every vmalloc frame is an allocated page of exactly one live area; descriptors "
           "and page arrays are live kmalloc objects")
def inv_conservation_vmalloc(machine) -> list[str]:
    if not _has_vmalloc(machine):
        return []
    report = Report()
    page_owner = machine.page_owner
    shift = machine.profile.PAGE_SHIFT
    owner = machine.vmalloc_owner
    held = 0
    for area in machine.vmlist:
        if not area.flags & VM_ALLOC:
            continue
        held += len(area.pages)
        for pfn in area.pages:
            if owner.get(pfn) != area.addr:
                report.add(f"pfn {pfn:#x} of the area at {area.addr:#x} is recorded for "
                           f"{owner.get(pfn)!r}")
    for pfn, addr in owner.items():
        if addr not in machine.vm_areas:
            report.add(f"pfn {pfn:#x} is recorded for the area at {addr:#x}, which is not live")
        if page_owner.get(pfn) != 0:
            report.add(f"vmalloc frame pfn {pfn:#x} is not an allocated single page")
    if held != len(owner):
        report.add(f"the live areas hold {held} frames, mem_map records {len(owner)}")

    live = machine.slab.kmalloc_req       # the slab layer's live kmalloc objects

    for area in machine.vmlist:
        if live.get(area.kaddr, -1) < SIZEOF_VM_STRUCT:
            report.add(f"the vm_struct of the area at {area.addr:#x} ({area.kaddr:#x}) is "
                       "not a live kmalloc object")
        if area.flags & VM_ALLOC:
            need = area.nr_pages * SIZEOF_PAGE_POINTER
            if area.pages_vmalloced:
                inner = machine.vm_areas.get(area.pages_addr)
                if inner is None or inner.parent != area.addr or \
                        inner.nr_pages << shift < need:
                    report.add(f"the page array of the area at {area.addr:#x} is not a live "
                               "vmalloc area of its own")
            elif live.get(area.pages_addr, -1) < need:
                report.add(f"the page array of the area at {area.addr:#x} "
                           f"({area.pages_addr:#x}) is not a live kmalloc object of "
                           f"{need} bytes")
    return report.done()
