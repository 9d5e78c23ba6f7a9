"""Kernel page tables (i386, two levels, no PAE) and the kernel's virtual layout.

Linux 2.6.12 include/asm-i386/pgtable-2level-defs.h: a virtual address splits into a
10-bit pgd index (PGDIR_SHIFT 22), a 10-bit pte index and a 12-bit offset; the pmd
level is folded away. The kernel's tables hang off `swapper_pg_dir` (here
`machine.swapper_pg_dir`, a list of PTRS_PER_PGD entries), each entry being:

- 0 (pgd_none),
- a 4 MiB large-page entry, an int with _PAGE_PSE (the direct map of low memory:
  arch/i386/mm/init.c: kernel_physical_mapping_init uses PSE pages when the CPU has
  them, which the model assumes), or
- a pte table: an `array('I')` of PTRS_PER_PTE pte values, each
  `(pfn << PAGE_SHIFT) | protection bits` (include/asm-i386/pgtable.h: mk_pte), present
  when `_PAGE_PRESENT` is set. The kernel stores the table's physical address in the
  pgd entry; the model stores the table itself.

vmalloc's pte tables are frames from the page allocator, taken on first use
(pte_alloc_kernel) and never freed, as in 2.6.12; `machine.pte_table_pfns` records the
frame behind each (pgd index -> pfn). The pkmap table comes from bootmem in 2.6.12
(permanent_kmaps_init); the model gives it no frame (spec/vmalloc.md).

The layout, top down (include/asm-i386/highmem.h, pgtable.h, fixmap.h, 2.6.12):
FIXADDR_TOP, the fixmap, FIXADDR_BOOT_START, the pkmap area at PKMAP_BASE
(LAST_PKMAP pages), two unused pages, VMALLOC_END, the vmalloc area, VMALLOC_START,
an 8 MiB gap (VMALLOC_OFFSET), high_memory, the direct map, PAGE_OFFSET.
"""

from __future__ import annotations

from array import array

from .gfp import GFP_KERNEL, __GFP_REPEAT
from .page_alloc import alloc_page

# include/asm-i386/pgtable-2level-defs.h (2.6.12)
PGDIR_SHIFT = 22
PTRS_PER_PGD = 1024
PTRS_PER_PTE = 1024
PGDIR_SIZE = 1 << PGDIR_SHIFT
PMD_MASK = ~(PGDIR_SIZE - 1)          # the pmd is folded: PMD_SIZE == PGDIR_SIZE

# include/asm-i386/pgtable.h (2.6.12): pte bits
_PAGE_PRESENT = 0x001
_PAGE_RW = 0x002
_PAGE_ACCESSED = 0x020
_PAGE_DIRTY = 0x040
_PAGE_PSE = 0x080
PAGE_KERNEL = _PAGE_PRESENT | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED   # __PAGE_KERNEL
PAGE_KERNEL_LARGE = PAGE_KERNEL | _PAGE_PSE
kmap_prot = PAGE_KERNEL               # arch/i386/mm/init.c: kmap_init

# include/asm-i386/pgtable.h: "an 8 MiB hole after the physical memory"
VMALLOC_OFFSET = 8 << 20
# include/asm-i386/highmem.h: LAST_PKMAP 1024 without PAE (512 with)
LAST_PKMAP = 1024
LAST_PKMAP_MASK = LAST_PKMAP - 1
# include/asm-i386/fixmap.h (2.6.12): __FIXADDR_TOP 0xfffff000
FIXADDR_TOP = 0xFFFFF000
# The fixmap's page count depends on the configuration (NR_CPUS * KM_TYPE_NR kmap_atomic
# slots, APICs, ACPI, 16 boot-time slots...). The model takes a Pentium 4 SMP config
# with NR_CPUS 8: about 150 pages; PKMAP_BASE comes out 0xff800000 for any fixmap
# between 1 and 1023 pages, so the exact figure does not matter.
FIX_BOOT_PAGES = 150
# arch/i386/mm/init.c: vmalloc_earlyreserve is non-zero only for EFI boots
vmalloc_earlyreserve = 0

PTE_MASK = 0xFFFFF000


def pgd_index(vaddr: int) -> int:
    return vaddr >> PGDIR_SHIFT


def pte_index(vaddr: int) -> int:
    return (vaddr >> 12) & (PTRS_PER_PTE - 1)


def mk_pte(pfn: int, prot: int) -> int:
    """A pte mapping frame `pfn`: physical address pfn << PAGE_SHIFT, plus protection."""
    return (pfn << 12) | prot


def pte_present(pte: int) -> bool:
    return bool(pte & _PAGE_PRESENT)


def pte_pfn(pte: int) -> int:
    return pte >> 12


# --- the layout ------------------------------------------------------------------

def FIXADDR_BOOT_START() -> int:
    # include/asm-i386/fixmap.h: FIXADDR_BOOT_START = FIXADDR_TOP - __FIXADDR_BOOT_SIZE
    return FIXADDR_TOP - (FIX_BOOT_PAGES << 12)


def PKMAP_BASE() -> int:
    # include/asm-i386/highmem.h (2.6.12)
    return (FIXADDR_BOOT_START() - 4096 * (LAST_PKMAP + 1)) & PMD_MASK & 0xFFFFFFFF


def PKMAP_ADDR(nr: int) -> int:
    return PKMAP_BASE() + (nr << 12)


def VMALLOC_START(machine) -> int:
    # include/asm-i386/pgtable.h (2.6.12): (high_memory + vmalloc_earlyreserve +
    # 2*VMALLOC_OFFSET - 1) & ~(VMALLOC_OFFSET - 1), i.e. ALIGN(high_memory +
    # VMALLOC_OFFSET, VMALLOC_OFFSET) without EFI
    return ((machine.high_memory + vmalloc_earlyreserve + 2 * VMALLOC_OFFSET - 1)
            & ~(VMALLOC_OFFSET - 1))


def VMALLOC_END(machine) -> int:
    # include/asm-i386/pgtable.h (2.6.12), CONFIG_HIGHMEM: PKMAP_BASE - 2*PAGE_SIZE
    return PKMAP_BASE() - 2 * 4096


def has_kernel_page_tables(machine) -> bool:
    """Page tables, vmalloc and kmap are modelled for the 32-bit i386 layout only."""
    return machine.profile.VIRT_BITS == 32


# --- tables ----------------------------------------------------------------------

def new_pte_table() -> array:
    return array("I", bytes(4 * PTRS_PER_PTE))


def pte_table(machine, vaddr: int, *, create: bool) -> array | None:
    """The pte table covering `vaddr` (made on first use when `create`), or None."""
    pgd = machine.swapper_pg_dir
    index = vaddr >> PGDIR_SHIFT
    entry = pgd[index]
    if isinstance(entry, array):
        return entry
    if entry:
        raise ValueError(f"pgd entry {index:#x} is a large page, not a pte table")
    if not create:
        return None
    table = new_pte_table()
    pgd[index] = table
    return table


def pte_alloc_kernel(machine, vaddr: int) -> array | None:
    """The pte table covering `vaddr`, made on first use with a fresh frame; None (ENOMEM)
    when no frame is free.

    Linux 2.6.12 mm/memory.c: pte_alloc_kernel; arch/i386/mm/pgtable.c:
    pte_alloc_one_kernel takes __get_free_page(GFP_KERNEL | __GFP_REPEAT), cleared.
    """
    index = vaddr >> PGDIR_SHIFT
    entry = machine.swapper_pg_dir[index]
    if isinstance(entry, array):
        return entry
    if entry:
        raise ValueError(f"pgd entry {index:#x} is a large page, not a pte table")
    page = alloc_page(machine, GFP_KERNEL | __GFP_REPEAT)
    if page is None:
        return None
    table = new_pte_table()
    machine.swapper_pg_dir[index] = table
    machine.pte_table_pfns[index] = page.pfn
    return table


def set_pte(machine, vaddr: int, pte: int) -> None:
    """Write one pte, making a bare table if there is none (for tools and tests that
    build states by hand; vmalloc maps through pte_alloc_kernel)."""
    pte_table(machine, vaddr, create=True)[(vaddr >> 12) & (PTRS_PER_PTE - 1)] = pte


def pte_clear(machine, vaddr: int) -> None:
    table = pte_table(machine, vaddr, create=False)
    if table is not None:
        table[(vaddr >> 12) & (PTRS_PER_PTE - 1)] = 0


def lookup_pte(machine, vaddr: int) -> int:
    """The pte value for `vaddr` in a pte table (0 when there is none)."""
    entry = machine.swapper_pg_dir[vaddr >> PGDIR_SHIFT]
    if isinstance(entry, array):
        return entry[(vaddr >> 12) & (PTRS_PER_PTE - 1)]
    return 0


def translate(machine, vaddr: int) -> int | None:
    """The physical address `vaddr` maps to through swapper_pg_dir, or None (a fault)."""
    if not 0 <= vaddr < 1 << 32:
        return None
    entry = machine.swapper_pg_dir[vaddr >> PGDIR_SHIFT]
    if isinstance(entry, array):
        pte = entry[(vaddr >> 12) & (PTRS_PER_PTE - 1)]
        if pte & _PAGE_PRESENT:
            return (pte & PTE_MASK) | (vaddr & 0xFFF)
        return None
    if entry & _PAGE_PRESENT:      # a 4 MiB page
        return (entry & PMD_MASK & 0xFFFFFFFF) | (vaddr & (PGDIR_SIZE - 1))
    return None


def present_ptes(table: array):
    """(index, pte) for every present entry of a pte table."""
    return [(i, v) for i, v in enumerate(table) if v & _PAGE_PRESENT]


# --- boot ------------------------------------------------------------------------

def direct_map_entries(machine) -> dict[int, int]:
    """{pgd index: large-page entry} mapping [PAGE_OFFSET, high_memory) onto 0.."""
    offset = machine.profile.PAGE_OFFSET
    low_bytes = machine.max_low_pfn << machine.profile.PAGE_SHIFT
    first = offset >> PGDIR_SHIFT
    count = -(-low_bytes // PGDIR_SIZE)
    return {first + i: (i << PGDIR_SHIFT) | PAGE_KERNEL_LARGE for i in range(count)}


def pagetable_init(machine) -> None:
    """swapper_pg_dir with the direct map of low memory and an empty pkmap table.

    Linux 2.6.12 arch/i386/mm/init.c: pagetable_init -> kernel_physical_mapping_init
    (PSE pages from PAGE_OFFSET for every 4 MiB that holds low memory; the last one
    may extend past high_memory, as in the kernel) and permanent_kmaps_init (one pte
    table for the LAST_PKMAP pkmap pages).
    """
    pgd: list = [0] * PTRS_PER_PGD
    for index, entry in direct_map_entries(machine).items():
        pgd[index] = entry
    machine.swapper_pg_dir = pgd
    machine.pte_table_pfns = {}
    pgd[PKMAP_BASE() >> PGDIR_SHIFT] = new_pte_table()


def paging_init(machine) -> None:
    """Kernel page tables, the vmalloc list and the pkmap state of a booted machine.

    Linux 2.6.12 arch/i386/mm/init.c: paging_init -> pagetable_init, kmap_init; the
    vmalloc list starts empty (mm/vmalloc.c: vmlist). Called at the end of boot().
    Profiles without the 32-bit layout (linux-6.x-x86_64) get none of this: vmalloc
    and kmap are not modelled there (spec/vmalloc.md).
    """
    if not has_kernel_page_tables(machine):
        return
    from .highmem import kmap_init
    from .vmalloc import vmalloc_init
    pagetable_init(machine)
    vmalloc_init(machine)
    kmap_init(machine)
