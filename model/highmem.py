"""Permanent kernel mappings of highmem pages: kmap, kunmap and page_address_htable.

After Linux 2.6.12 mm/highmem.c (kmap_high, map_new_virtual, flush_all_zero_pkmaps,
kunmap_high, set_page_address, page_address) and arch/i386/mm/highmem.c (kmap,
kunmap). A highmem frame has no address in the direct map; kmap borrows one of the
LAST_PKMAP pages at PKMAP_BASE, writes its pte, and records page -> address in
`page_address_htable` (the seed: page_address() of a highmem page is found in that hash
table, of a low page it is __va(pfn << PAGE_SHIFT)). Here the table is
`machine.page_address_htable` (pfn -> address).

`pkmap_count[i]` (machine.pkmap_count): 0 -- slot free and flushed from the TLB;
1 -- no users but possibly still in a TLB, so not reusable until the next flush;
n > 1 -- n - 1 users. `last_pkmap_nr` is where the search for a free slot resumes;
passing slot 0 flushes every slot whose count is 1 (flush_all_zero_pkmaps).

The kernel sleeps in map_new_virtual when every slot is in use, until a kunmap wakes
it; a single-threaded model would never wake, so map_new_virtual reports that case as
misuse ("kmap_exhausted") before anything changes.
"""

from __future__ import annotations

from array import array

from .addr import page_address as _page_address
from .errors import ConfigError, KernelBug
from .mem_map import NO_ZONE, PG_highmem, Page
from .page_alloc import _page_pfn, find_block
from .pgtable import LAST_PKMAP, LAST_PKMAP_MASK, PKMAP_ADDR, PKMAP_BASE, kmap_prot

__all__ = ["kmap_init", "kmap", "kunmap", "kmap_high", "kunmap_high", "map_new_virtual",
           "flush_all_zero_pkmaps", "page_address", "set_page_address", "PKMAP_NR"]


def kmap_init(machine) -> None:
    """No slot used, the search starting after slot 0; the pkmap pte table is empty.

    Linux 2.6.12 mm/highmem.c: pkmap_count[] and last_pkmap_nr are zero-initialised
    statics, so the first kmap after boot takes slot 1.
    """
    machine.pkmap_count = array("i", bytes(4 * LAST_PKMAP))
    machine.last_pkmap_nr = 0
    machine.pkmap_base = PKMAP_BASE()
    machine.pkmap_page_table = machine.swapper_pg_dir[machine.pkmap_base >> 22]


def PKMAP_NR(machine, vaddr: int) -> int:
    return (vaddr - machine.pkmap_base) >> 12


def page_address(machine, page: Page) -> int | None:
    """The kernel address of a page: direct map, or the htable for highmem (None if unmapped)."""
    return _page_address(machine, page)


def set_page_address(machine, pfn: int, vaddr: int | None) -> None:
    """Add (vaddr) or remove (None) a highmem page's entry in page_address_htable."""
    if vaddr is None:
        machine.page_address_htable.pop(pfn, None)
    else:
        machine.page_address_htable[pfn] = vaddr


def flush_all_zero_pkmaps(machine) -> None:
    """Unmap every slot with no users (count 1): count 0, pte cleared, htable entry gone."""
    counts, table = machine.pkmap_count, machine.pkmap_page_table
    for i in range(LAST_PKMAP):
        if counts[i] != 1:
            continue
        counts[i] = 0
        # 2.6.12 BUG()s on an empty pte here; the invariant pkmap_consistency rules it out,
        # and gives every count-1 slot's page its htable entry: set_page_address(page, NULL)
        pte = table[i]
        table[i] = 0
        del machine.page_address_htable[pte >> 12]
    # flush_tlb_kernel_range(PKMAP_ADDR(0), PKMAP_ADDR(LAST_PKMAP)): no TLB in the model


def map_new_virtual(machine, pfn: int) -> int:
    """Take the next free slot after last_pkmap_nr, flushing when the scan wraps."""
    counts = machine.pkmap_count
    if min(counts) > 1:
        # 2.6.12 sleeps here until a kunmap frees a slot; one thread would never wake
        raise KernelBug("kmap_exhausted", f"all {LAST_PKMAP} pkmap slots are in use; "
                        "the kernel would sleep until a kunmap", pfn=pfn)
    nr = machine.last_pkmap_nr
    # a slot of count 0, or one of count 1 that the flush at slot 0 frees: found within
    # 2 * LAST_PKMAP - 1 steps (a count-1 slot just passed is freed by the wrap and
    # reached on the second round)
    for _ in range(2 * LAST_PKMAP):
        nr = (nr + 1) & LAST_PKMAP_MASK
        if not nr:
            flush_all_zero_pkmaps(machine)
        if not counts[nr]:
            break
    else:   # unreachable: checked above that a slot is free or flushable
        raise AssertionError("no pkmap slot although one was free or flushable")
    machine.last_pkmap_nr = nr
    vaddr = PKMAP_ADDR(nr)
    machine.pkmap_page_table[nr] = (pfn << 12) | kmap_prot
    counts[nr] = 1
    set_page_address(machine, pfn, vaddr)
    return vaddr


def _check_page(machine, page) -> int:
    pfn = _page_pfn(machine, page)
    if not hasattr(machine, "pkmap_count"):
        raise ConfigError("profile", f"{machine.profile.name}: kmap is modelled for "
                                     "linux-2.6-i386 only")
    if machine.mem_map.zone_id[pfn] == NO_ZONE:
        raise KernelBug("kmap_not_ram", "frame is in no zone (I/O memory)", pfn=pfn)
    return pfn


def kmap_high(machine, pfn: int) -> int:
    """Map a highmem page (or reuse its mapping) and count one more user."""
    vaddr = machine.page_address_htable.get(pfn)
    if vaddr is None:
        vaddr = map_new_virtual(machine, pfn)
    machine.pkmap_count[PKMAP_NR(machine, vaddr)] += 1
    return vaddr


def kmap(machine, page: Page) -> int:
    """A kernel address for any page: its direct address, or a pkmap slot for highmem.

    Linux 2.6.12 arch/i386/mm/highmem.c: kmap; mm/highmem.c: kmap_high.
    """
    # CHECK
    pfn = _check_page(machine, page)
    mem_map = machine.mem_map
    where = find_block(machine, pfn)
    if where is not None and where[0] == "free" or pfn in machine.pcp_pages:
        raise KernelBug("kmap_free_page", "frame is free (in a buddy block or on a "
                        "per-CPU list)", pfn=pfn)
    if not mem_map.flags[pfn] & PG_highmem:
        return _page_address(machine, page)
    # MAP
    return kmap_high(machine, pfn)


def kunmap_high(machine, pfn: int) -> None:
    machine.pkmap_count[PKMAP_NR(machine, machine.page_address_htable[pfn])] -= 1


def kunmap(machine, page: Page) -> None:
    """Drop one user of a page's permanent mapping; a low page has none (no-op).

    Linux 2.6.12 mm/highmem.c: kunmap_high BUG()s on a page with no mapping and on a
    count that would reach 0 (a slot must be flushed before it is reused).
    """
    # CHECK
    pfn = _check_page(machine, page)
    if not machine.mem_map.flags[pfn] & PG_highmem:
        return
    vaddr = machine.page_address_htable.get(pfn)
    if vaddr is None:
        raise KernelBug("kunmap_unmapped", "highmem page is not kmapped", pfn=pfn)
    if machine.pkmap_count[PKMAP_NR(machine, vaddr)] < 2:
        raise KernelBug("kunmap_unbalanced", "page is mapped but has no kmap users left "
                        "(more kunmaps than kmaps)", pfn=pfn, addr=vaddr)
    kunmap_high(machine, pfn)
