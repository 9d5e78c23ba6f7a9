"""vmalloc: virtually contiguous kernel memory built from single page frames.

After Linux 2.6.12 mm/vmalloc.c (__get_vm_area, get_vm_area, remove_vm_area,
map_vm_area, __vunmap, vfree, __vmalloc, vmalloc) and mm/memory.c (vmalloc_to_page),
in the seed's words: vmalloc takes a `struct vm_struct` from the slab allocator
(kmalloc), finds a free range of the vmalloc area for its `addr`, takes the pages one
at a time from the buddy allocator (alloc_page, so they may be highmem and need not be
contiguous), and maps each one: pfn = page - mem_map, physical address = pfn <<
PAGE_SHIFT, written into the kernel page tables (model/pgtable.py).

State on the machine (set up by vmalloc_init at boot):
- `vmlist`: the live areas sorted by address (the kernel's singly linked vmlist), with
  `vmlist_starts` (their addresses, for bisect) and `vm_areas` (address -> area);
- `vmalloc_holes`: the free ranges of [VMALLOC_START, VMALLOC_END) as {start: end},
  with `vmalloc_hole_starts` sorted. First fit over the holes in address order gives
  the same address as the kernel's walk of vmlist, without walking every area;
- `vmalloc_owner`: pfn -> address of the area whose page it is. The kernel keeps no
  such mark in struct page; the model records it so that page_table_consistency can
  check that mem_map agrees with the areas (spec/vmalloc.md).

Spec over kernel (spec/vmalloc.md): an area placed after the last one must end by
VMALLOC_END (2.6.12 only checks inside its loop); pass `check_end=False` to
__get_vm_area to see the kernel's behaviour. Misuse raises KernelBug before any change.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort

from .addr import virt_addr_valid
from .errors import ConfigError, KernelBug
from .gfp import GFP_KERNEL, __GFP_HIGHMEM, check_gfp
from .kmalloc import kfree, kmalloc
from .mem_map import Page
from .page_alloc import (_check_not_kmapped, _page_pfn, alloc_pages_bulk, find_block,
                         free_pages_bulk)
from .pgtable import (PAGE_KERNEL, PGDIR_SHIFT, PTRS_PER_PTE, VMALLOC_END, VMALLOC_START,
                      lookup_pte, new_pte_table, pte_alloc_kernel, pte_table)

__all__ = ["VmStruct", "vmalloc_init", "__get_vm_area", "get_vm_area", "remove_vm_area",
           "map_vm_area", "unmap_vm_area", "vmalloc", "__vmalloc", "vfree", "vmap", "vunmap",
           "vmalloc_to_page", "vmalloc_to_pfn", "find_vm_area", "vmallocinfo"]

# include/linux/vmalloc.h (2.6.12)
VM_IOREMAP = 0x1
VM_ALLOC = 0x2
VM_MAP = 0x4
# i386: struct vm_struct {next, addr, size, flags, pages, nr_pages, phys_addr}, 4 bytes each
SIZEOF_VM_STRUCT = 28
SIZEOF_PAGE_POINTER = 4


class VmStruct:
    """struct vm_struct: one area of the vmalloc range; `size` includes the guard page."""

    __slots__ = ("addr", "size", "flags", "pages", "nr_pages", "phys_addr", "caller",
                 "kaddr", "pages_addr", "pages_vmalloced", "parent")

    def __init__(self, kaddr: int, caller: str):
        self.kaddr = kaddr              # where kmalloc put this descriptor
        self.caller = caller            # /proc/vmallocinfo's caller column
        self.addr = 0
        self.size = 0
        self.flags = 0
        self.pages: list[int] = []      # area->pages[i], as pfns
        self.nr_pages = 0
        self.phys_addr = 0
        self.pages_addr = 0             # where the pages array lives (kmalloc or vmalloc)
        self.pages_vmalloced = False    # array larger than a page: __vmalloc'ed
        self.parent = 0                 # for a pages array: the area it belongs to

    def __repr__(self):
        return (f"VmStruct({self.addr:#x}-{self.addr + self.size:#x}, "
                f"nr_pages={self.nr_pages}, {self.caller})")


def _require(machine) -> None:
    if not hasattr(machine, "vmlist"):
        raise ConfigError("profile", f"{machine.profile.name}: vmalloc and kernel page "
                                     "tables are modelled for linux-2.6-i386 only")


def vmalloc_init(machine) -> None:
    """An empty vmlist; the whole vmalloc range is one hole."""
    start, end = VMALLOC_START(machine), VMALLOC_END(machine)
    machine.vmalloc_start, machine.vmalloc_end = start, end
    machine.vmlist = []
    machine.vmlist_starts = []
    machine.vm_areas = {}
    machine.vmalloc_holes = {start: end} if end > start else {}
    machine.vmalloc_hole_starts = [start] if end > start else []
    machine.vmalloc_owner = {}


# --- the range: __get_vm_area / remove_vm_area ----------------------------------

def _take_hole(machine, size: int, start: int, end: int,
               check_end: bool) -> tuple[int, int] | None:
    """(hole, address): the lowest free `size` bytes in [start, end), or None."""
    holes = machine.vmalloc_holes
    tail = machine.vmalloc_end
    for hole in machine.vmalloc_hole_starts:
        hole_end = holes[hole]
        if hole_end == tail and not check_end and not machine.vmlist:
            # 2.6.12 checks addr > end - size only after stepping past an area, so
            # only an empty vmlist places an area without the end check
            hole_end = 1 << 32
        elif hole_end > end:
            hole_end = end
        addr = max(hole, start)
        if addr + size <= hole_end:
            return hole, addr
    return None


def _carve(machine, hole: int, addr: int, size: int) -> None:
    """Take [addr, addr + size) out of the hole starting at `hole`."""
    holes, starts = machine.vmalloc_holes, machine.vmalloc_hole_starts
    hole_end = holes[hole]
    if addr > hole:
        holes[hole] = addr
    else:
        del holes[hole]
        del starts[bisect_left(starts, hole)]
    if addr + size < hole_end:
        holes[addr + size] = hole_end
        insort(starts, addr + size)


def _release(machine, addr: int, size: int) -> None:
    """Give [addr, addr + size) back, merging with the holes on either side."""
    holes, starts = machine.vmalloc_holes, machine.vmalloc_hole_starts
    start, end = addr, addr + size
    i = bisect_left(starts, addr)
    if i > 0 and holes[starts[i - 1]] == addr:
        start = starts[i - 1]
    else:
        insort(starts, start)
        i += 1
    if i < len(starts) and starts[i] == end:
        end = holes.pop(end)
        del starts[i]
    # an area past VMALLOC_END (check_end=False) gives back only what the range holds
    holes[start] = min(end, max(machine.vmalloc_end, start))
    if holes[start] <= start:
        del holes[start]
        del starts[bisect_left(starts, start)]


def __get_vm_area(machine, size: int, flags: int, start: int, end: int, *,
                  caller: str = "get_vm_area", check_end: bool = True) -> VmStruct | None:
    """Reserve `size` bytes plus a guard page of the range [start, end); None if full.

    Linux 2.6.12 mm/vmalloc.c: __get_vm_area -- kmalloc the descriptor first; a size
    of 0 after PAGE_ALIGN gives it back (NULL); add the guard page, take the first hole
    that fits, insert the area in address order. A negative size, an unsigned long
    within a page of 4 GiB in the kernel, fits nowhere: NULL (2.6.12's size + PAGE_SIZE
    wraps there).
    """
    # CHECK
    if type(size) is not int:
        raise KernelBug("bad_size", f"size {size!r} is not an integer")
    page_size = machine.profile.PAGE_SIZE
    size = -(-size // page_size) * page_size if size > 0 else 0
    # FIND: the descriptor comes from the slab allocator (the seed)
    kaddr = kmalloc(machine, SIZEOF_VM_STRUCT, GFP_KERNEL)
    if kaddr is None:
        return None
    if not size:
        kfree(machine, kaddr)
        return None
    size += page_size                   # the guard page
    found = _take_hole(machine, size, start, end, check_end)
    if found is None:
        kfree(machine, kaddr)
        return None
    # ACCOUNT
    hole, addr = found
    _carve(machine, hole, addr, size)
    area = VmStruct(kaddr, caller)
    area.addr, area.size, area.flags = addr, size, flags
    i = bisect_left(machine.vmlist_starts, addr)
    machine.vmlist_starts.insert(i, addr)
    machine.vmlist.insert(i, area)
    machine.vm_areas[addr] = area
    return area


def get_vm_area(machine, size: int, flags: int, *, caller: str = "get_vm_area",
                check_end: bool = True) -> VmStruct | None:
    _require(machine)
    return __get_vm_area(machine, size, flags, machine.vmalloc_start, machine.vmalloc_end,
                         caller=caller, check_end=check_end)


def unmap_vm_area(machine, area: VmStruct) -> None:
    """Clear every pte of the area (its pages and the guard page)."""
    pgd = machine.swapper_pg_dir
    addr, end = area.addr, area.addr + area.size
    while addr < end:
        table = pgd[addr >> PGDIR_SHIFT]
        first = (addr >> 12) & (PTRS_PER_PTE - 1)
        last = min(PTRS_PER_PTE, first + ((end - addr) >> 12))
        if isinstance(table, array):
            table[first:last] = _ZEROS[:last - first]
        addr += (last - first) << 12


def remove_vm_area(machine, addr: int) -> VmStruct | None:
    """Unlink the area starting at `addr` and unmap it; None if no area starts there.

    Linux 2.6.12 mm/vmalloc.c: remove_vm_area returns the descriptor (for the caller to
    kfree) with the guard page taken off its size.
    """
    area = machine.vm_areas.pop(addr, None)
    if area is None:
        return None
    unmap_vm_area(machine, area)
    i = bisect_left(machine.vmlist_starts, addr)
    del machine.vmlist_starts[i]
    del machine.vmlist[i]
    _release(machine, area.addr, area.size)
    area.size -= machine.profile.PAGE_SIZE
    return area


def map_vm_area(machine, area: VmStruct, prot: int = PAGE_KERNEL) -> bool:
    """Write one pte per page of the area, in order: page i at addr + i * PAGE_SIZE.

    False (2.6.12: -ENOMEM) when a pte table is needed and no frame is free; the ptes
    written so far stay, for the caller's vfree to clear.
    """
    addr = area.addr
    pages = area.pages
    i, n = 0, len(pages)
    while i < n:
        table = pte_alloc_kernel(machine, addr)
        if table is None:
            return False
        first = (addr >> 12) & (PTRS_PER_PTE - 1)
        count = min(PTRS_PER_PTE - first, n - i)
        table[first:first + count] = array("I", [(pfn << 12) | prot
                                                  for pfn in pages[i:i + count]])
        i += count
        addr += count << 12
    return True


_ZEROS = new_pte_table()


# --- vmalloc / vfree -------------------------------------------------------------

def __vmalloc(machine, size: int, gfp_mask: int, *, caller: str = "__vmalloc",
              check_end: bool = True) -> int | None:
    """Allocate size bytes of virtually contiguous memory with pages from gfp_mask.

    Linux 2.6.12 mm/vmalloc.c: __vmalloc. Returns the area's address or None (NULL);
    whatever was taken before a failure is given back. The prot argument of the
    kernel is always PAGE_KERNEL here.
    """
    # CHECK
    _require(machine)
    check_gfp(gfp_mask)
    if type(size) is not int:
        raise KernelBug("bad_size", f"size {size!r} is not an integer")
    page_size = machine.profile.PAGE_SIZE
    size = -(-size // page_size) * page_size if size > 0 else 0
    if not size or size // page_size > machine.nr_pages:     # num_physpages
        return None
    # FIND: the virtual range
    area = get_vm_area(machine, size, VM_ALLOC, caller=caller, check_end=check_end)
    if area is None:
        return None
    nr_pages = size // page_size
    # the page pointer array: kmalloc up to a page, else vmalloc (a bounded recursion)
    array_size = nr_pages * SIZEOF_PAGE_POINTER
    if array_size > page_size:
        pages_addr = __vmalloc(machine, array_size, gfp_mask, caller=caller + " (pages)",
                               check_end=check_end)
        if pages_addr is not None:
            machine.vm_areas[pages_addr].parent = area.addr
        area.pages_vmalloced = True
    else:
        pages_addr = kmalloc(machine, array_size, gfp_mask & ~__GFP_HIGHMEM)
    if pages_addr is None:
        remove_vm_area(machine, area.addr)
        kfree(machine, area.kaddr)
        return None
    area.pages_addr = pages_addr
    # FIND: the frames, one alloc_page at a time (the seed), so they may come from any
    # zone of the zonelist and need not be contiguous. alloc_pages_bulk computes that
    # loop's outcome -- the same frames, the same buddy state -- in one pass.
    pages = alloc_pages_bulk(machine, gfp_mask, nr_pages)
    area.pages = pages
    machine.vmalloc_owner.update(dict.fromkeys(pages, area.addr))
    area.nr_pages = len(pages)
    if len(pages) < nr_pages:
        _vunmap(machine, area)          # fail: give back everything taken so far
        return None
    # MAP: pfn << PAGE_SHIFT into one pte per page
    if not map_vm_area(machine, area):
        _vunmap(machine, area)
        return None
    return area.addr


def vmalloc(machine, size: int, *, check_end: bool = True) -> int | None:
    """__vmalloc(size, GFP_KERNEL | __GFP_HIGHMEM): pages may come from highmem."""
    return __vmalloc(machine, size, GFP_KERNEL | __GFP_HIGHMEM, caller="vmalloc",
                     check_end=check_end)


def vmalloc_32(machine, size: int) -> int | None:
    """__vmalloc(size, GFP_KERNEL): low-memory pages only."""
    return __vmalloc(machine, size, GFP_KERNEL, caller="vmalloc_32")


def _vunmap(machine, area: VmStruct) -> None:
    """Free a (possibly partly built) VM_ALLOC area: ptes, pages, array, descriptor.

    Linux 2.6.12 mm/vmalloc.c: __vunmap(addr, 1). 2.6.12 decides between vfree and
    kfree for the array from nr_pages, which a failed __vmalloc has lowered to the
    pages actually taken; the model frees the array the way it was allocated.
    """
    remove_vm_area(machine, area.addr)
    owner = machine.vmalloc_owner
    for pfn in area.pages:
        del owner[pfn]
    free_pages_bulk(machine, area.pages)    # __free_page on each, in order
    if area.pages_addr:
        if area.pages_vmalloced:
            _vunmap(machine, machine.vm_areas[area.pages_addr])
        else:
            kfree(machine, area.pages_addr)
    kfree(machine, area.kaddr)


def _area_to_free(machine, addr, what: str) -> VmStruct | None:
    """The area `addr` starts for vfree/vunmap; None for NULL; KernelBug otherwise."""
    if addr is None or addr == 0:
        return None
    _require(machine)
    if type(addr) is not int:
        raise KernelBug(f"{what}_bad_address", f"{addr!r} is not an address")
    if addr & (machine.profile.PAGE_SIZE - 1):
        # 2.6.12 __vunmap: "Trying to vfree() bad address" + WARN_ON
        raise KernelBug(f"{what}_bad_address", "address is not page aligned", addr=addr)
    area = machine.vm_areas.get(addr)
    if area is None:
        # 2.6.12 __vunmap: "Trying to vfree() nonexistent vm area" + WARN_ON
        containing = find_vm_area(machine, addr)
        where = (f"inside the area at {containing.addr:#x}" if containing is not None
                 else "no area starts there")
        raise KernelBug(f"{what}_nonexistent", f"not the start of a vm area ({where})",
                        addr=addr)
    if area.parent:
        raise KernelBug(f"{what}_pages_array", f"the area holds the page array of the area "
                        f"at {area.parent:#x}; vfree that area", addr=addr)
    return area


def vfree(machine, addr: int | None) -> None:
    """Free an area made by vmalloc; NULL is ignored. Misuse raises before any change."""
    # CHECK
    area = _area_to_free(machine, addr, "vfree")
    if area is None:
        return
    if not area.flags & VM_ALLOC:
        # 2.6.12 __vunmap(addr, 1) frees area->nr_pages pages, 0 in a vmap area, and
        # kfree(NULL) for its page array: the same clean unmap as vunmap
        remove_vm_area(machine, area.addr)
        kfree(machine, area.kaddr)
        return
    for pfn in area.pages:
        _check_not_kmapped(machine, pfn)
    # FREE
    _vunmap(machine, area)


def vmap(machine, pages: list[Page], flags: int = VM_MAP) -> int | None:
    """Map the caller's pages contiguously in the vmalloc area; the address or None.

    Linux 2.6.12 mm/vmalloc.c: vmap. The pages stay the caller's: vunmap removes the
    mapping and frees only the descriptor.
    """
    # CHECK
    _require(machine)
    pfns = [_page_pfn(machine, page) for page in pages]
    for pfn in pfns:
        where = find_block(machine, pfn)
        if where is None or where[0] != "allocated":
            # 2.6.12 maps whatever it is given; a free or reserved frame would be
            # reachable through the mapping after the buddy allocator hands it out
            raise KernelBug("vmap_unallocated", "page is not an allocated frame", pfn=pfn)
    if flags & VM_ALLOC:
        raise KernelBug("vmap_vm_alloc", "a vmap area must not claim VM_ALLOC")
    if not pfns or len(pfns) > machine.nr_pages:
        return None
    # FIND
    area = get_vm_area(machine, len(pfns) << machine.profile.PAGE_SHIFT, flags,
                       caller="vmap")
    if area is None:
        return None
    # MAP: the model keeps the pfns to check the ptes; 2.6.12 leaves pages NULL and
    # nr_pages 0 in a vmap area (so /proc/vmallocinfo shows no pages= for it)
    area.pages = pfns
    if not map_vm_area(machine, area):
        vunmap(machine, area.addr)
        return None
    return area.addr


def vunmap(machine, addr: int | None) -> None:
    """Remove a vmap() mapping; the pages stay allocated (2.6.12 __vunmap(addr, 0))."""
    # CHECK
    area = _area_to_free(machine, addr, "vunmap")
    if area is None:
        return
    if area.flags & VM_ALLOC:
        # stricter than the kernel: 2.6.12 __vunmap(addr, 0) removes the area and leaks
        # its pages and page array; the spec names the leak
        raise KernelBug("vunmap_vmalloc", "area was made by vmalloc: vfree it", addr=addr)
    # FREE
    remove_vm_area(machine, area.addr)
    kfree(machine, area.kaddr)


# --- lookups ---------------------------------------------------------------------

def find_vm_area(machine, addr: int) -> VmStruct | None:
    """The live area whose range (guard page included) holds `addr`, or None."""
    i = bisect_right(machine.vmlist_starts, addr) - 1
    if i >= 0:
        area = machine.vmlist[i]
        if addr < area.addr + area.size:
            return area
    return None


def vmalloc_to_page(machine, addr: int) -> Page | None:
    """The page a vmalloc address is mapped to, by walking the page tables; None if unmapped.

    Linux 2.6.12 mm/memory.c: vmalloc_to_page. The kernel walks the tables for any
    address; on the direct map's large pages that walk reads garbage, so the spec
    limits it to addresses above the direct map.
    """
    _require(machine)
    if type(addr) is not int or not 0 <= addr < 1 << 32:
        raise KernelBug("bad_address", f"{addr!r} is not a 32-bit address")
    if virt_addr_valid(machine, addr) or addr < machine.profile.PAGE_OFFSET:
        raise KernelBug("not_vmalloc_address", "address is not above the direct map",
                        addr=addr)
    table = pte_table(machine, addr, create=False) if not _is_large(machine, addr) else None
    if table is None:
        return None
    pte = lookup_pte(machine, addr)
    if not pte & 1:
        return None
    return Page(machine.mem_map, pte >> 12)


def _is_large(machine, addr: int) -> bool:
    entry = machine.swapper_pg_dir[addr >> PGDIR_SHIFT]
    return isinstance(entry, int) and entry != 0


def vmalloc_to_pfn(machine, addr: int) -> int | None:
    page = vmalloc_to_page(machine, addr)
    return None if page is None else page.pfn


def vmallocinfo(machine) -> list[dict]:
    """One entry per live area in address order, as /proc/vmallocinfo lists them."""
    return [{"start": a.addr, "end": a.addr + a.size, "size": a.size, "caller": a.caller,
             "pages": a.nr_pages, "kind": "vmalloc" if a.flags & VM_ALLOC else "vmap"}
            for a in getattr(machine, "vmlist", ())]
