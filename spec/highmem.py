"""The permanent kmap invariant over a concrete machine (prose: spec/vmalloc.md).

`pkmap_consistency`: page_address_htable, the pkmap ptes and pkmap_count describe the
same mappings.
"""

from __future__ import annotations

from ..model.mem_map import PG_highmem
from ..model.page_alloc import find_block
from ..model.pgtable import LAST_PKMAP, _PAGE_PRESENT
from .catalogue import Report, invariant


@invariant("pkmap_consistency", "highmem",
           "page_address_htable, the pkmap ptes and pkmap_count agree slot by slot")
def inv_pkmap_consistency(machine) -> list[str]:
    if not hasattr(machine, "pkmap_count"):
        if machine.page_address_htable:
            return ["page_address_htable has entries but the machine has no pkmap area"]
        return []
    report = Report()
    counts, table = machine.pkmap_count, machine.pkmap_page_table
    htable = machine.page_address_htable
    base = machine.pkmap_base
    flags = machine.mem_map.flags
    n = machine.nr_pages
    if machine.swapper_pg_dir[base >> 22] is not table:
        report.add("swapper_pg_dir does not point at the pkmap page table")
    if len(counts) != LAST_PKMAP:
        report.add(f"pkmap_count has {len(counts)} slots, not LAST_PKMAP {LAST_PKMAP}")
    if not 0 <= machine.last_pkmap_nr < LAST_PKMAP:
        report.add(f"last_pkmap_nr {machine.last_pkmap_nr} is not a slot")
    # slot by slot: count 0 <=> pte none; a used slot maps a highmem page whose
    # htable entry is this slot's address
    for nr in range(LAST_PKMAP):
        c, pte = counts[nr], table[nr]
        vaddr = base + (nr << 12)
        if c < 0:
            report.add(f"pkmap_count[{nr}] is {c}")
        if c == 0:
            if pte:
                report.add(f"pkmap slot {nr} has count 0 but its pte maps pfn {pte >> 12:#x}")
            continue
        if not pte & _PAGE_PRESENT:
            report.add(f"pkmap slot {nr} has count {c} but no pte")
            continue
        pfn = pte >> 12
        if not 0 <= pfn < n or not flags[pfn] & PG_highmem:
            report.add(f"pkmap slot {nr} maps pfn {pfn:#x}, which is not a highmem page")
        if htable.get(pfn) != vaddr:
            report.add(f"pkmap slot {nr} maps pfn {pfn:#x} but page_address_htable gives "
                       f"{htable.get(pfn)!r} for it, not {vaddr:#x}")
        if c > 1:
            found = find_block(machine, pfn) if 0 <= pfn < n else None
            if found is None or found[0] != "allocated":
                report.add(f"pfn {pfn:#x} has {c - 1} kmap users but is not allocated")
    # every htable entry is a used slot mapping that very page
    for pfn, vaddr in htable.items():
        nr = (vaddr - base) >> 12
        if vaddr & 0xFFF or not 0 <= nr < LAST_PKMAP:
            report.add(f"page_address_htable gives pfn {pfn:#x} the address {vaddr:#x}, "
                       "outside the pkmap area")
            continue
        if counts[nr] < 1 or table[nr] >> 12 != pfn or not table[nr] & _PAGE_PRESENT:
            report.add(f"page_address_htable maps pfn {pfn:#x} at slot {nr}, whose pte and "
                       "count do not")
    return report.done()
