"""kmalloc, kfree and ksize: byte-sized allocations from the general caches.

Linux 2.6.12 mm/slab.c (__kmalloc, kfree, ksize) with include/linux/kmalloc_sizes.h: the
general caches size-32 ... size-131072 (the seed's 13 geometric sizes with a 128-byte L1
line), each with a size-N(DMA) twin. kmalloc takes the first cache whose size holds the
request (GFP_DMA: the twin); a larger request finds no cache and gets NULL. kfree
finds the cache from the page (page->lru.next), so any slab object can be kfree'd.

linux-6.x-x86_64 (SLUB, mm/slab_common.c kmalloc_info / kmalloc_slab, mm/slub.c):
classes 8 ... 8k (96 and 192 included); kmalloc(0) returns ZERO_SIZE_PTR (16), which
kfree ignores; requests above KMALLOC_MAX_CACHE_SIZE (8 KiB) go to the page allocator
with order get_order(size) (kmalloc_large) and come back through kfree by their page.

The model remembers each live kmalloc object's requested size (`kmalloc_req`), as
CONFIG_SLUB_DEBUG's orig_size does, so that `size_class` can be checked.
"""

from __future__ import annotations

from .addr import page_address
from .errors import KernelBug
from .gfp import GFP_VALID_MASK, __GFP_DMA, __GFP_HIGHMEM
from .page_alloc import __free_pages, alloc_pages
from .slab import _bootstrap, _cache_alloc, _cache_free, _check_alloc, _lookup_object, check_cpu, \
    get_order

__all__ = ["kmalloc", "kfree", "ksize", "kmalloc_index", "ZERO_SIZE_PTR"]

# include/linux/slab.h (6.x): kmalloc(0) returns this; kfree and ksize ignore it
ZERO_SIZE_PTR = 16
_NOT_GFP = ~GFP_VALID_MASK

_INDEX_TABLES: dict[tuple[int, ...], list[int]] = {}
_GRAIN = 3       # the table is indexed by (size + 7) >> 3: every class is a multiple of 8


def _index_table(sizes: tuple[int, ...]) -> list[int]:
    """size >> 3 -> index of the smallest class that holds it (built once per profile)."""
    table = _INDEX_TABLES.get(sizes)
    if table is None:
        table = []
        for i, size in enumerate(sizes):
            # the slots up to size >> 3 not taken by a smaller class are class i's
            table += [i] * ((size >> _GRAIN) + 1 - len(table))
        _INDEX_TABLES[sizes] = table
    return table


def kmalloc_index(profile, size: int) -> int | None:
    """Index of the smallest general class holding `size` bytes; None if none does."""
    sizes = profile.kmalloc_sizes
    if size > sizes[-1]:
        return None
    return _index_table(sizes)[(size + 7) >> _GRAIN]


def kmalloc(machine, size: int, gfp_mask: int, cpu: int = 0) -> int | None:
    """Allocate `size` bytes on `cpu`; the object's kernel virtual address, or None (NULL)."""
    # CHECK
    if type(size) is not int or size < 0:
        raise KernelBug("bad_size", f"kmalloc size {size!r} is not a size_t")
    if type(gfp_mask) is not int or gfp_mask & _NOT_GFP:
        # a negative mask has every bit above GFP_VALID_MASK set
        raise KernelBug("bad_gfp", f"gfp mask {gfp_mask!r} is not a gfp_t of defined bits")
    if gfp_mask & __GFP_HIGHMEM:
        # 2.6.12: cache_grow BUG()s on __GFP_HIGHMEM; 6.x warns and strips it. The
        # slab's memory must keep a permanent address (the seed), so: misuse.
        raise KernelBug("highmem_slab", "kmalloc memory cannot come from highmem")
    check_cpu(machine, cpu)
    state = machine.slab
    profile = machine.profile
    sizes = profile.kmalloc_sizes
    # FIND
    if size > sizes[-1]:
        if profile.KMALLOC_MAX_CACHE_SIZE is None:
            return None            # 2.6.12: past the CACHE(ULONG_MAX) sentinel: NULL
        return _kmalloc_large(machine, size, gfp_mask)
    if not size and profile.slab_flavour == "slub":
        return ZERO_SIZE_PTR
    index = _index_table(sizes)[(size + 7) >> _GRAIN]
    cachep = (state.malloc_sizes_dma if gfp_mask & __GFP_DMA else state.malloc_sizes)[index]
    _check_alloc(cachep, gfp_mask, cpu)      # __GFP_ZERO and co. BUG() if it must grow
    if not state.ready and not _bootstrap(machine):
        return None
    addr = _cache_alloc(machine, cachep, gfp_mask, cpu)
    # ACCOUNT
    if addr is not None:
        state.kmalloc_req[addr] = size
    return addr


def _kmalloc_large(machine, size: int, gfp_mask: int) -> int | None:
    """6.x mm/slub.c: __kmalloc_large_node -- whole pages, order get_order(size)."""
    profile = machine.profile
    order = get_order(size, profile.PAGE_SHIFT)
    page = alloc_pages(machine, gfp_mask, order)
    if page is None:
        return None
    machine.slab.kmalloc_large[page.pfn] = order
    addr = page_address(machine, page)
    machine.slab.kmalloc_req[addr] = size
    return addr


def _ignored(machine, addr) -> bool:
    """NULL (None or 0) and, under SLUB, ZERO_SIZE_PTR: what kfree and ksize ignore
    (2.6.12 kfree `if (!objp)`, ksize `objp == NULL`; 6.x ZERO_OR_NULL_PTR). Anything
    else that is not an int is no address: not_slab_object."""
    if addr is None:
        return True
    if type(addr) is not int:
        raise KernelBug("not_slab_object", f"{addr!r} is not an address")
    return not addr or addr == ZERO_SIZE_PTR and machine.profile.slab_flavour == "slub"


def _find(machine, addr: int, what: str):
    """(slab, objnr) of a live object, or (None, pfn) of a large kmalloc; else KernelBug.

    Only the direct map's slab pages and large kmallocs answer: an address below
    PAGE_OFFSET or past high_memory has a pfn that is in neither."""
    profile = machine.profile
    state = machine.slab
    pfn = (addr - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT
    if pfn not in state.page_slab:
        if pfn in state.kmalloc_large and not addr & (profile.PAGE_SIZE - 1):
            return None, pfn
        raise KernelBug("not_slab_object", f"{what} of an address that no kmalloc returned "
                                           "(not in a slab page)", addr=addr)
    slab, objnr = _lookup_object(machine, addr)     # object start, not already free
    if addr in state.internal:
        raise KernelBug("slab_internal_object", f"{what} of the slab layer's own object "
                                                f"({state.internal[addr]})", addr=addr)
    return slab, objnr


def kfree(machine, addr: int | None, cpu: int = 0) -> None:
    """Free a kmalloc'd (or any slab) object on `cpu`; NULL (None or 0) is ignored."""
    # CHECK
    check_cpu(machine, cpu)
    if _ignored(machine, addr):
        return
    slab, where = _find(machine, addr, "kfree")
    state = machine.slab
    state.kmalloc_req.pop(addr, None)
    if slab is None:
        # 6.x free_large_kmalloc: the pages go straight back
        order = state.kmalloc_large.pop(where)
        __free_pages(machine, machine.mem_map + where, order)
        return
    # ACCOUNT: kfree -> __cache_free on the object's cache (GET_PAGE_CACHE), this CPU
    _cache_free(machine, slab.cache, addr, cpu)


def ksize(machine, addr) -> int:
    """The usable size of a live kmalloc object: its cache's object size (0 for NULL)."""
    if _ignored(machine, addr):
        return 0
    slab, where = _find(machine, addr, "ksize")
    if slab is None:
        return machine.profile.PAGE_SIZE << machine.slab.kmalloc_large[where]
    return slab.cache.objsize
