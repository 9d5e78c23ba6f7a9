"""The slab allocator: caches of same-size objects carved out of buddy pages, with colouring.

After Linux 2.6.12 mm/slab.c (profile linux-2.6-i386; checked against the 2.6.11 copy,
which has the same cache_estimate / kmem_cache_create / cache_grow). A cache
(`kmem_cache_t`, here `KmemCache`) hands out objects of one size. Its memory comes in
*slabs*: 2^gfporder contiguous low-memory frames from the buddy allocator, holding `num`
objects, the slab's management data (`struct slab` + one `kmem_bufctl_t` per object,
on the slab itself or in a general cache), and some left-over bytes. The left-over
bytes are used for *colouring*: successive slabs start their objects at 0, colour_off,
2*colour_off, ... so that same-index objects of different slabs fall on different
cache lines (the seed's 着色).

Model choices (each stated in spec/slab.md):
- every cache has one `array_cache` per CPU and a shared one (2.6.12, CONFIG_SMP):
  allocations pop the CPU's array (LIFO) and refill it in batches (cache_alloc_refill),
  frees push onto it and flush a batch to the shared array or the slabs when it is full
  (__cache_free, cache_flusharray, free_block); cache_reap is an explicit operation;
- the array_cache structures are real objects of the general caches, as 2.6.12
  allocates them (alloc_arraycache, do_tune_cpucache, the boot head arrays of
  kmem_cache_init / kmem_cache_create, kfree in kmem_cache_destroy); the slab layer
  marks them internal;
- objects handed out *or parked in an array* carry the DEBUG build's BUFCTL_FREE mark;
  the model also remembers which objects are parked, so a double free is seen at once;
- kmem_cache_init is split: boot() builds cache_cache and every general cache (their
  geometry) as the kernel does; the first slab call replays the memory side of
  kmem_cache_init in the kernel's order (each descriptor from cache_cache, each
  kmalloc'ed head array of BOOT_CPUCACHE_ENTRIES, step 4's two replacement head
  arrays, step 5's enable_cpucache on the whole chain, then CPU_UP_PREPARE of every
  further CPU), which makes g_cpucache_up FULL; it is all or nothing.

The linux-6.x-x86_64 profile (SLUB) reuses this code without colouring, without slab
management in the slab (SLUB keeps it in struct page) and with SLUB's order choice.

Name table (kernel -> model): kmem_cache_t -> KmemCache, struct slab -> Slab,
cachep->lists.slabs_full/partial/free -> cache.slabs_full/partial/free,
cachep->objsize (2.6.20+ buffer_size) -> objsize, cache_chain -> state.cache_chain,
malloc_sizes[i].cs_cachep / cs_dmacachep -> state.malloc_sizes[i] / malloc_sizes_dma[i],
page->lru.next/prev (SET_PAGE_CACHE/SET_PAGE_SLAB) -> state.page_slab[pfn] (slab.cache).
"""

from __future__ import annotations

from .errors import ConfigError, KernelBug
from .gfp import (GFP_DMA, GFP_KERNEL, __GFP_COLD, __GFP_COMP, __GFP_DMA, __GFP_FS, __GFP_HIGH,
                  __GFP_HIGHMEM, __GFP_IO, __GFP_NO_GROW, __GFP_NOFAIL, __GFP_NORETRY,
                  __GFP_NOWARN, __GFP_REPEAT, __GFP_WAIT, check_gfp)
from .mem_map import PG_slab
from .page_alloc import __free_pages, alloc_pages
from . import cpu as _cpu

__all__ = [
    "KmemCache", "Slab", "SlabState", "cache_estimate", "cache_geometry", "kmem_cache_init",
    "kmem_cache_create", "kmem_cache_alloc", "kmem_cache_free", "kmem_cache_shrink",
    "kmem_cache_destroy", "kmem_cache_size", "cache_reap", "ArrayCache", "BATCHREFILL_LIMIT",
    "BOOT_CPUCACHE_ENTRIES", "SIZEOF_ARRAY_CACHE", "alloc_arraycache", "do_tune_cpucache",
    "enable_cpucache", "kmem_find_general_cachep", "find_cache", "cpuup_callback",
    "slabinfo_write", "MAX_SLABINFO_WRITE",
    "slabinfo", "SLAB_HWCACHE_ALIGN", "SLAB_CACHE_DMA", "SLAB_NO_REAP",
    "SLAB_MUST_HWCACHE_ALIGN", "SLAB_RECLAIM_ACCOUNT", "SLAB_PANIC", "SLAB_DESTROY_BY_RCU",
    "CFLGS_OFF_SLAB", "SLAB_FLAG_NAMES",
]

# include/linux/slab.h (2.6.12; same bit values in 6.x)
SLAB_NO_REAP = 0x00001000
SLAB_HWCACHE_ALIGN = 0x00002000
SLAB_CACHE_DMA = 0x00004000
SLAB_MUST_HWCACHE_ALIGN = 0x00008000
SLAB_RECLAIM_ACCOUNT = 0x00020000
SLAB_PANIC = 0x00040000
SLAB_DESTROY_BY_RCU = 0x00080000
# mm/slab.c (2.6.12): CREATE_MASK without DEBUG; CFLGS_OFF_SLAB is internal
CREATE_MASK = (SLAB_HWCACHE_ALIGN | SLAB_NO_REAP | SLAB_CACHE_DMA | SLAB_MUST_HWCACHE_ALIGN
               | SLAB_RECLAIM_ACCOUNT | SLAB_PANIC | SLAB_DESTROY_BY_RCU)
CFLGS_OFF_SLAB = 0x80000000
SLAB_FLAG_NAMES = {
    "SLAB_NO_REAP": SLAB_NO_REAP, "SLAB_HWCACHE_ALIGN": SLAB_HWCACHE_ALIGN,
    "SLAB_CACHE_DMA": SLAB_CACHE_DMA, "SLAB_MUST_HWCACHE_ALIGN": SLAB_MUST_HWCACHE_ALIGN,
    "SLAB_RECLAIM_ACCOUNT": SLAB_RECLAIM_ACCOUNT, "SLAB_PANIC": SLAB_PANIC,
    "SLAB_DESTROY_BY_RCU": SLAB_DESTROY_BY_RCU,
}

# mm/slab.c (2.6.12, CONFIG_MMU): MAX_OBJ_ORDER = MAX_GFP_ORDER = 5 (32 pages)
MAX_OBJ_ORDER = 5
MAX_GFP_ORDER = 5
# mm/slab.c: slab_break_gfp_order is BREAK_GFP_ORDER_HI above 32 MiB of memory
BREAK_GFP_ORDER_LO, BREAK_GFP_ORDER_HI = 0, 1
# sizeof(kmem_cache_t): 2.6.12 i386, CONFIG_SMP, NR_CPUS 8, no DEBUG/STATS = 152 bytes
# (array[8] 32, batchcount+limit 8, kmem_list3 40, objsize..free_limit 16, spinlock 4,
# gfporder+gfpflags 8, colour..colour_next 12, slabp_cache..dflags 12, ctor+dtor 8,
# name+next 12); kmem_cache_init rounds it up to the cache line (256 with L1 = 128).
# 6.x: struct kmem_cache is rounded to 256 bytes on x86_64 (slabinfo's kmem_cache line).
SIZEOF_KMEM_CACHE = {"slab": 152, "slub": 256}
# 6.x mm/slub.c: slub_max_order = PAGE_ALLOC_COSTLY_ORDER, MAX_OBJS_PER_PAGE; the
# model's machine has 8 CPUs, so min_objects = 4 * (fls(8) + 1) = 20 (calculate_order)
SLUB_MAX_ORDER = 3
SLUB_MAX_OBJS_PER_PAGE = 32767
SLUB_NR_CPUS = 8

# mm/slab.c (2.6.12): the boot-time head arrays hold one object; refills of an array
# that saw no recent use take at most BATCHREFILL_LIMIT objects
BOOT_CPUCACHE_ENTRIES = 1
BATCHREFILL_LIMIT = 16
# sizeof(struct array_cache): avail, limit, batchcount, touched, four unsigned ints
# (2.6.12 i386: 16 bytes); the entries follow it (ac_entry), one pointer each.
# sizeof(struct arraycache_init) = 16 + BOOT_CPUCACHE_ENTRIES pointers.
SIZEOF_ARRAY_CACHE = 16
# include/linux/gfp.h (2.6.12) GFP_LEVEL_MASK; cache_grow BUG()s on any flag outside
# SLAB_DMA | SLAB_LEVEL_MASK | SLAB_NO_GROW
GFP_LEVEL_MASK = (__GFP_WAIT | __GFP_HIGH | __GFP_IO | __GFP_FS | __GFP_COLD | __GFP_NOWARN
                  | __GFP_REPEAT | __GFP_NOFAIL | __GFP_NORETRY | __GFP_NO_GROW | __GFP_COMP)
SLAB_GROW_FLAGS = GFP_DMA | GFP_LEVEL_MASK | __GFP_NO_GROW

# list identifiers (which of the three lists a slab is on)
FULL, PARTIAL, FREE = 0, 1, 2
LIST_NAMES = ("slabs_full", "slabs_partial", "slabs_free")


def ALIGN(x: int, a: int) -> int:
    """include/linux/kernel.h ALIGN for a power-of-two a (written with // for CrossHair)."""
    return -(-x // a) * a if a > 0 else x


class SlabList:
    """A struct list_head of slabs, linked by slab id (the slab's first pfn)."""

    __slots__ = ("head", "tail", "nr")

    def __init__(self):
        self.head = -1
        self.tail = -1
        self.nr = 0


class ArrayCache:
    """struct array_cache: a LIFO of object addresses (ac_entry(ac)[0 .. avail-1])."""

    __slots__ = ("entry", "limit", "batchcount", "touched", "addr")

    def __init__(self, limit: int, batchcount: int, addr: int | None = None):
        self.entry: list[int] = []
        self.limit = limit
        self.batchcount = batchcount
        self.touched = 0
        # the general-cache object holding the structure; None for the static boot
        # head arrays initarray_cache / initarray_generic
        self.addr = addr

    @property
    def avail(self) -> int:
        return len(self.entry)

    def __repr__(self):
        return (f"ArrayCache(avail={len(self.entry)}, limit={self.limit}, "
                f"batchcount={self.batchcount}, touched={self.touched})")


class Slab:
    """struct slab: one slab's management data (include in the slab or off it)."""

    __slots__ = ("id", "cache", "colouroff", "s_mem", "inuse", "free", "bufctl",
                 "next", "prev", "list", "mgmt")

    def __init__(self, pfn: int, cache: "KmemCache", colouroff: int, s_mem: int, num: int,
                 mgmt: int | None):
        self.id = pfn                 # first frame of the slab; also the list linkage key
        self.cache = cache
        # 2.6.12 alloc_slabmgmt: colouroff = colour offset (+ slab_size when on-slab),
        # i.e. the distance from the slab's first byte to its first object
        self.colouroff = colouroff
        self.s_mem = s_mem            # address of object 0
        self.inuse = 0
        self.free = 0                 # index of the first free object, BUFCTL_END if none
        # cache_init_objs: bufctl[i] = i + 1, the last one BUFCTL_END
        self.bufctl = list(range(1, num)) + [cache.BUFCTL_END]
        self.next = -1
        self.prev = -1
        self.list = FREE
        self.mgmt = mgmt              # address of an off-slab struct slab, None if on-slab

    def __repr__(self):
        return (f"Slab(pfn={self.id:#x}, cache={self.cache.name}, s_mem={self.s_mem:#x}, "
                f"inuse={self.inuse})")


class KmemCache:
    """kmem_cache_t: a cache descriptor (fields named as in 2.6.12 mm/slab.c)."""

    __slots__ = ("name", "objsize", "align", "flags", "num", "gfporder", "gfpflags",
                 "colour", "colour_off", "colour_next", "left_over", "slab_size",
                 "slabp_cache", "ctor", "slabs_full", "slabs_partial", "slabs_free",
                 "lists", "free_objects", "slabs", "addr", "dead", "limit", "batchcount",
                 "shared", "BUFCTL_END", "BUFCTL_FREE", "general", "flavour", "array",
                 "shared_array", "free_limit", "free_touched")

    def __repr__(self):
        return f"KmemCache({self.name!r}, objsize={self.objsize}, num={self.num})"

    @property
    def off_slab(self) -> bool:
        return bool(self.flags & CFLGS_OFF_SLAB)

    def slab_list(self, which: int) -> list[Slab]:
        """The slabs on one list, head first (for invariants and /proc/slabinfo)."""
        lst = self.lists[which]
        out, sid, slabs = [], lst.head, self.slabs
        while sid != -1 and len(out) <= len(slabs):
            slab = slabs.get(sid)
            if slab is None:
                break
            out.append(slab)
            sid = slab.next
        return out


class SlabState:
    """The slab layer of one machine (mm/slab.c's globals)."""

    def __init__(self):
        self.cache_chain: list[KmemCache] = []     # newest first (list_add at the head)
        self.cache_cache: KmemCache | None = None
        self.malloc_sizes: list[KmemCache] = []      # cs_cachep per general size
        self.malloc_sizes_dma: list[KmemCache] = []  # cs_dmacachep
        self.page_slab: dict[int, Slab] = {}          # pfn -> slab (page->lru.prev)
        self.internal: dict[int, str] = {}            # addr -> what the slab layer keeps there
        self.kmalloc_req: dict[int, int] = {}         # live kmalloc object -> requested size
        self.kmalloc_large: dict[int, int] = {}       # SLUB: pfn -> order of a large kmalloc
        self.parked: set[int] = set()                 # objects in a per-CPU/shared array
        self.offslab_limit = 0
        self.slab_break_gfp_order = BREAK_GFP_ORDER_LO
        # mm/slab.c g_cpucache_up: NONE, PARTIAL (first general cache made), FULL
        self.g_cpucache_up = "NONE"

    @property
    def ready(self) -> bool:
        """kmem_cache_init has finished: descriptors placed, real arrays in place."""
        return self.g_cpucache_up == "FULL"


# --- geometry ------------------------------------------------------------------------

def cache_estimate(gfporder: int, size: int, align: int, off_slab: bool, page_size: int,
                   struct_slab: int, bufctl: int, slab_limit: int) -> tuple[int, int]:
    """(num, left_over): objects per slab and unused bytes for one slab order.

    Linux 2.6.12 mm/slab.c: cache_estimate counts objects up while
    `i*size + ALIGN(sizeof(struct slab) + i*sizeof(kmem_bufctl_t), align)` fits. The
    model starts from 2.6.15's closed-form guess and steps down, which gives the same
    answer for every input (tests/test_slab.py) without counting to thousands.
    """
    slab_bytes = page_size << gfporder
    if off_slab:
        num = slab_bytes // size
        mgmt = 0
    else:
        # an upper bound (no padding), then down to the largest count that fits
        num = max((slab_bytes - struct_slab) // (size + bufctl), 0)
        while num > 0 and ALIGN(struct_slab + num * bufctl, align) + num * size > slab_bytes:
            num -= 1
    num = min(num, slab_limit)
    if not off_slab:
        mgmt = ALIGN(struct_slab + num * bufctl, align)
    return num, slab_bytes - num * size - mgmt


def _fls(x: int) -> int:
    return x.bit_length()


def get_order(size: int, page_shift: int) -> int:
    """include/asm-generic/getorder.h: the smallest order whose block holds size bytes."""
    order = 0
    size = (size - 1) >> page_shift
    while size:
        order += 1
        size >>= 1
    return order


def _slub_order(size: int, page_size: int, page_shift: int) -> int:
    """6.x mm/slub.c calculate_order / calc_slab_order (min_objects from 8 CPUs)."""
    def order_objects(order):
        return (page_size << order) // size
    min_objects = 4 * (_fls(SLUB_NR_CPUS) + 1)
    max_objects = max(order_objects(SLUB_MAX_ORDER), 1)
    min_objects = min(min_objects, max_objects)
    min_order = get_order(min_objects * size, page_shift)
    if order_objects(min_order) > SLUB_MAX_OBJS_PER_PAGE:
        return get_order(size * SLUB_MAX_OBJS_PER_PAGE, page_shift) - 1
    fraction = 16
    while fraction > 1:
        order = min_order
        while order <= SLUB_MAX_ORDER:
            slab_bytes = page_size << order
            if slab_bytes % size <= slab_bytes // fraction:
                break
            order += 1
        if order <= SLUB_MAX_ORDER:
            return order
        fraction //= 2
    return get_order(size, page_shift)


def cache_geometry(profile, size: int, align: int, flags: int, *, offslab_limit: int,
                   slab_break_gfp_order: int) -> dict:
    """Object size, alignment, gfporder, num, left-over, management and colour of a cache.

    Linux 2.6.12 mm/slab.c: kmem_cache_create (SLAB); 6.x mm/slub.c: calculate_sizes,
    calculate_order (SLUB). Pure: no state is read or changed.
    """
    word = profile.VIRT_BITS // 8
    page_size = profile.PAGE_SIZE
    line = profile.L1_CACHE_BYTES
    # size in words (2.6.12: BYTES_PER_WORD; SLUB: sizeof(void *))
    size = ALIGN(size, word)
    # 1) SLAB_HWCACHE_ALIGN: the cache line, halved while the object fits in half of it
    if flags & SLAB_HWCACHE_ALIGN:
        ralign = line
        while size <= ralign // 2:
            ralign //= 2
    else:
        ralign = word
    # 3) the caller's alignment wins when larger
    ralign = max(ralign, align)
    if profile.slab_flavour == "slub":
        objsize = ALIGN(size, ralign)
        order = _slub_order(objsize, page_size, profile.PAGE_SHIFT)
        # calculate_order gives -ENOSYS when even one object needs an order above the
        # largest (an alignment can push a legal size there): calculate_sizes fails and
        # kmem_cache_create returns NULL (num 0 here, as SLAB's "couldn't create cache")
        num = (page_size << order) // objsize if order <= profile.top_order else 0
        return {"objsize": objsize, "align": ralign, "gfporder": order, "num": num,
                "left_over": (page_size << order) - num * objsize, "slab_size": 0,
                "off_slab": True, "colour_off": 0, "colour": 0}
    struct_slab, bufctl = profile.STRUCT_SLAB_SIZE, profile.BUFCTL_SIZE
    slab_limit = (1 << (8 * bufctl)) - 3
    # management off-slab for large objects: "size >= (PAGE_SIZE >> 3)"
    off_slab = size >= page_size >> 3
    objsize = ALIGN(size, ralign)
    gfporder = 0
    if flags & SLAB_RECLAIM_ACCOUNT and objsize <= page_size:
        num, left_over = cache_estimate(0, objsize, ralign, off_slab, page_size,
                                        struct_slab, bufctl, slab_limit)
    else:
        while True:
            num, left_over = cache_estimate(gfporder, objsize, ralign, off_slab, page_size,
                                            struct_slab, bufctl, slab_limit)
            if gfporder >= MAX_GFP_ORDER:
                break
            if num:
                if off_slab and num > offslab_limit and gfporder > 0:
                    # too many bufctls for the general cache holding them: one order less
                    gfporder -= 1
                    num, left_over = cache_estimate(gfporder, objsize, ralign, off_slab,
                                                    page_size, struct_slab, bufctl,
                                                    slab_limit)
                    break
                if gfporder >= slab_break_gfp_order:
                    break
                if left_over * 8 <= page_size << gfporder:
                    break      # acceptable internal fragmentation
            gfporder += 1
    slab_size = ALIGN(num * bufctl + struct_slab, ralign)
    # back on-slab if the management fits in the left-over (at the expense of colour)
    if off_slab and left_over >= slab_size:
        off_slab = False
        left_over -= slab_size
    if off_slab:
        slab_size = num * bufctl + struct_slab
    colour_off = max(line, ralign)
    return {"objsize": objsize, "align": ralign, "gfporder": gfporder, "num": num,
            "left_over": left_over, "slab_size": slab_size, "off_slab": off_slab,
            "colour_off": colour_off, "colour": left_over // colour_off}


# --- cache set-up --------------------------------------------------------------------

def _new_cache(profile, name: str, geo: dict, flags: int, ctor: str | None) -> KmemCache:
    c = KmemCache()
    c.name = name
    c.objsize = geo["objsize"]
    c.align = geo["align"]
    c.flags = flags | (CFLGS_OFF_SLAB if geo["off_slab"] and profile.slab_flavour == "slab"
                       else 0)
    c.num = geo["num"]
    c.gfporder = geo["gfporder"]
    c.gfpflags = GFP_DMA if flags & SLAB_CACHE_DMA else 0
    c.colour = geo["colour"]
    c.colour_off = geo["colour_off"]
    c.colour_next = 0
    c.left_over = geo["left_over"]
    c.slab_size = geo["slab_size"]
    c.slabp_cache = None
    c.ctor = ctor
    c.slabs_full, c.slabs_partial, c.slabs_free = SlabList(), SlabList(), SlabList()
    c.lists = (c.slabs_full, c.slabs_partial, c.slabs_free)
    c.free_objects = 0
    c.slabs = {}
    c.addr = None
    c.dead = False
    c.general = False
    c.flavour = profile.slab_flavour
    bits = 8 * profile.BUFCTL_SIZE
    c.BUFCTL_END = (1 << bits) - 1          # mm/slab.c: ((kmem_bufctl_t)(~0U)) - 0
    c.BUFCTL_FREE = (1 << bits) - 2         # ... - 1 (DEBUG: object handed out)
    c.free_touched = 0
    if profile.slab_flavour == "slub":
        # SLUB has no array caches; slabinfo shows zero tunables
        c.limit = c.batchcount = c.shared = c.free_limit = 0
        c.array = c.shared_array = None
    else:
        # kmem_cache_create before g_cpucache_up is FULL: a head array of
        # BOOT_CPUCACHE_ENTRIES for the boot CPU, batchcount 1, no shared array
        c.limit, c.batchcount, c.shared = BOOT_CPUCACHE_ENTRIES, 1, 0
        c.array = [ArrayCache(BOOT_CPUCACHE_ENTRIES, 1)]
        c.shared_array = None
        c.free_limit = 2 * c.batchcount + c.num      # (1 + num_online_cpus) at boot: 1
    return c


def _arraycache_bytes(machine, entries: int) -> int:
    """alloc_arraycache's memsize: the struct array_cache and one pointer per entry."""
    return SIZEOF_ARRAY_CACHE + entries * (machine.profile.VIRT_BITS // 8)


def _kmalloc_internal(machine, size: int, cpu: int, what: str) -> int | None:
    """kmalloc(size, GFP_KERNEL) on `cpu` for the slab layer's own use (2.6.12
    __kmalloc: __cache_alloc on the first general cache holding size); marked internal."""
    cachep = kmem_find_general_cachep(machine, size, 0)
    if cachep is None:
        return None
    addr = _cache_alloc(machine, cachep, GFP_KERNEL, cpu)
    if addr is not None:
        machine.slab.internal[addr] = what
    return addr


def _kfree_internal(machine, addr: int | None, cpu: int) -> None:
    """kfree of one of the slab layer's own objects (NULL does nothing): __cache_free on
    the object's cache (GET_PAGE_CACHE), on `cpu`."""
    if addr is None:
        return
    del machine.slab.internal[addr]
    profile = machine.profile
    slab = machine.slab.page_slab[(addr - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT]
    _cache_free(machine, slab.cache, addr, cpu)


def alloc_arraycache(machine, node_cpu: int, entries: int, batchcount: int, cpu: int,
                     what: str) -> ArrayCache | None:
    """A new, empty array of `entries` (2.6.12 mm/slab.c: alloc_arraycache).

    Its 16 + 4*entries bytes come from the general cache that holds them: for a CPU's
    array through kmem_cache_alloc_node (without CONFIG_NUMA simply kmem_cache_alloc),
    falling back to kmalloc; for the shared array (node_cpu -1) through kmalloc. Either
    runs on the calling CPU `cpu`. None if no memory.
    """
    memsize = _arraycache_bytes(machine, entries)
    addr = None
    if node_cpu != -1:
        cachep = kmem_find_general_cachep(machine, memsize, 0)
        if cachep is not None:
            addr = _cache_alloc(machine, cachep, GFP_KERNEL, cpu)
            if addr is not None:
                machine.slab.internal[addr] = what
    if addr is None:
        addr = _kmalloc_internal(machine, memsize, cpu, what)
        if addr is None:
            return None
    return ArrayCache(entries, batchcount, addr)


def do_tune_cpucache(machine, cachep: KmemCache, limit: int, batchcount: int, shared: int,
                     online: list[int], cpu: int) -> bool:
    """Replace a cache's per-CPU arrays and shared array (2.6.12 mm/slab.c:
    do_tune_cpucache); False (-ENOMEM) if a CPU's new array cannot be allocated.

    New arrays for the `online` CPUs (cpu_online_map, increasing) first; the swap
    (do_ccupdate_local on each online CPU; an offline CPU keeps no array); the
    tunables, free_limit from num_online_cpus(); each old array's objects back to the
    slabs and the old array kfree'd, CPU by CPU; then the new shared array (kmalloc),
    swapped in, the old one's objects freed and the old one kfree'd. Every allocation
    and free runs on the calling CPU `cpu`.
    """
    name = cachep.name
    new = []
    for i in online:
        nc = alloc_arraycache(machine, i, limit, batchcount, cpu,
                              f"array_cache of cache {name} (CPU {i})")
        if nc is None:
            for ac in reversed(new):
                _kfree_internal(machine, ac.addr, cpu)
            return False
        new.append(nc)
    old = cachep.array
    array = list(old)
    for i, nc in zip(online, new):
        array[i] = nc
    cachep.array = array
    cachep.limit, cachep.batchcount = limit, batchcount
    cachep.free_limit = (1 + len(online)) * batchcount + cachep.num
    for i in online:
        ac = old[i]
        if ac is None:
            continue            # kmem_cache_create: no array yet (kfree(NULL))
        objs, ac.entry = ac.entry, []
        free_block(machine, cachep, objs, cpu)
        _kfree_internal(machine, ac.addr, cpu)
    # the shared array holds batchcount * shared entries (0 for large objects: a
    # shared array that holds none, still a 16-byte kmalloc object)
    new_shared = alloc_arraycache(machine, -1, batchcount * shared, 0xbaadf00d, cpu,
                                  f"shared array_cache of cache {name}")
    if new_shared is not None:
        old_shared = cachep.shared_array
        cachep.shared_array = new_shared
        cachep.shared = shared
        if old_shared is not None:
            objs, old_shared.entry = old_shared.entry, []
            free_block(machine, cachep, objs, cpu)
            _kfree_internal(machine, old_shared.addr, cpu)
    return True


def enable_cpucache(machine, cachep: KmemCache, online: list[int], cpu: int = 0) -> bool:
    """Give a cache its real per-CPU and shared arrays (2.6.12 mm/slab.c: enable_cpucache):
    the tunables from the object size, then do_tune_cpucache. `online` is
    cpu_online_map; `cpu` the calling CPU. False if do_tune_cpucache fails."""
    profile = machine.profile
    size = cachep.objsize
    limit = (1 if size > 131072 else 8 if size > profile.PAGE_SIZE else
             24 if size > 1024 else 54 if size > 256 else 120)
    # CONFIG_SMP (both profiles' kernels are SMP builds): a shared array for small objects
    shared = 8 if size <= profile.PAGE_SIZE else 0
    return do_tune_cpucache(machine, cachep, limit, (limit + 1) // 2, shared, online, cpu)


def cpuup_callback(machine, action: str, cpu: int, this_cpu: int) -> bool:
    """The slab's CPU notifier (2.6.12 mm/slab.c: cpuup_callback), run on `this_cpu`
    for `cpu`; False is NOTIFY_BAD (CPU_UP_PREPARE could not allocate an array).

    CPU_UP_PREPARE: for every cache in cache_chain order, a new array for `cpu` of the
    cache's current limit and batchcount (alloc_arraycache), and free_limit set from
    num_online_cpus(), which does not count `cpu` yet. CPU_DEAD and CPU_UP_CANCELED:
    for every cache, the CPU's array leaves the cache, free_limit drops by batchcount,
    the array's objects go back through free_block (in array order), and the array is
    kfree'd. A cache without an array for `cpu` is skipped: in CPU_UP_CANCELED after a
    failed CPU_UP_PREPARE, 2.6.12 dereferences the missing array (an oops) instead.
    """
    state = machine.slab
    if action == "CPU_UP_PREPARE":
        online = _cpu.num_online_cpus(machine)
        for cachep in list(state.cache_chain):
            if cachep.array is None:
                continue
            nc = alloc_arraycache(machine, cpu, cachep.limit, cachep.batchcount, this_cpu,
                                  f"array_cache of cache {cachep.name} (CPU {cpu})")
            if nc is None:
                return False
            cachep.array[cpu] = nc
            cachep.free_limit = (1 + online) * cachep.batchcount + cachep.num
        return True
    if action not in ("CPU_DEAD", "CPU_UP_CANCELED"):
        raise ValueError(f"cpuup_callback: unknown action {action!r}")
    for cachep in list(state.cache_chain):
        if cachep.array is None or cachep.array[cpu] is None:
            continue
        nc = cachep.array[cpu]
        cachep.array[cpu] = None
        cachep.free_limit -= cachep.batchcount
        objs, nc.entry = nc.entry, []
        free_block(machine, cachep, objs, this_cpu)
        _kfree_internal(machine, nc.addr, this_cpu)
    return True


# mm/slab.c (2.6.12): the longest line slabinfo_write takes
MAX_SLABINFO_WRITE = 128
EINVAL, ENOMEM = 22, 12
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


def _scan_int(text: str, pos: int) -> tuple[int, int] | None:
    """One %d of the kernel's vsscanf (2.6.12 lib/vsprintf.c): spaces skipped, an
    optional '-', decimal digits read by simple_strtol (wrapping in 32 bits, no
    overflow check), stored in an int. (value, next position) or None."""
    while pos < len(text) and text[pos] in " \t\n\v\f\r":
        pos += 1
    neg = text.startswith("-", pos)
    start = pos + 1 if neg else pos
    end = start
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    if end == start:
        return None
    value = int(text[start:end]) % (1 << 32)
    if neg:
        value = -value % (1 << 32)
    return (value - (1 << 32) if value > _INT_MAX else value), end


def _arraycache_fits(machine, entries: int) -> bool:
    """alloc_arraycache's memsize = sizeof(void *) * entries + 16 does not wrap around
    the machine's size_t (and entries itself is a C int)."""
    word = machine.profile.VIRT_BITS // 8
    return (entries <= _INT_MAX
            and SIZEOF_ARRAY_CACHE + word * entries < 1 << machine.profile.VIRT_BITS)


def slabinfo_write(machine, buffer: str, cpu: int = 0) -> int:
    """A write of `buffer` to /proc/slabinfo (2.6.12 mm/slab.c: slabinfo_write) on
    `cpu`: "name limit batchcount shared" retunes that cache through do_tune_cpucache.

    Returns the byte count written, or -EINVAL: a line longer than MAX_SLABINFO_WRITE,
    no space after the name, fewer than three integers (vsscanf " %d %d %d"), no cache
    of that name on cache_chain, limit < 1, batchcount < 1, batchcount > limit or
    shared < 0; -ENOMEM when a CPU's new array cannot be allocated (the arrays made so
    far are kfree'd and the cache keeps its old arrays and tunables).
    """
    # CHECK
    if machine.profile.slab_flavour != "slab":
        raise ValueError("slabinfo_write is 2.6.12 SLAB's tuning interface; SLUB has none")
    if not isinstance(buffer, str):
        raise ValueError(f"slabinfo_write takes the text written, not {buffer!r}")
    check_cpu(machine, cpu)
    count = len(buffer.encode())
    if count > MAX_SLABINFO_WRITE:
        return -EINVAL
    name, sep, rest = buffer.partition(" ")
    if not sep:
        return -EINVAL
    values, pos = [], 0
    for _ in range(3):
        scanned = _scan_int(rest, pos)
        if scanned is None:
            return -EINVAL
        value, pos = scanned
        values.append(value)
    limit, batchcount, shared = values
    # FIND: the first cache of that name on cache_chain
    cachep = find_cache(machine, name)
    if cachep is None or limit < 1 or batchcount < 1 or batchcount > limit or shared < 0:
        return -EINVAL
    if not _arraycache_fits(machine, limit) or not _arraycache_fits(machine,
                                                                     batchcount * shared):
        # the kernel's int/size_t arithmetic wraps and it allocates an array too small
        # for its limit, which later overruns it; the model refuses (stricter than the
        # kernel)
        raise KernelBug("arraycache_size_overflow", f"limit {limit}, batchcount "
                        f"{batchcount}, shared {shared}: an array_cache size wraps around",
                        addr=cachep.addr)
    # OPERATION
    state = machine.slab
    if not state.ready and not _bootstrap(machine):
        return -ENOMEM
    if not do_tune_cpucache(machine, cachep, limit, batchcount, shared,
                            _cpu.cpu_online_map(machine), cpu):
        return -ENOMEM
    return count


def _general_names(profile, size: int) -> tuple[str, str]:
    if profile.slab_flavour == "slub":
        # 6.x mm/slab_common.c kmalloc_info: "kmalloc-1k" style names above 512
        label = f"{size // 1024}k" if size >= 1024 else str(size)
        return f"kmalloc-{label}", f"dma-kmalloc-{label}"
    return f"size-{size}", f"size-{size}(DMA)"


def kmem_cache_init(machine) -> None:
    """Set up cache_cache and the general caches (Linux 2.6.12 mm/slab.c: kmem_cache_init).

    The descriptors' cache_cache objects are placed at the first slab call
    (`_bootstrap`); this checks now that the machine can hold them.
    """
    profile = machine.profile
    state = SlabState()
    machine.slab = state
    # fragmentation resistance: bigger slab orders only above 32 MiB of memory
    if machine.nr_pages > (32 << 20) >> profile.PAGE_SHIFT:
        state.slab_break_gfp_order = BREAK_GFP_ORDER_HI
    line = profile.L1_CACHE_BYTES
    # 1) cache_cache: static descriptor, objects of ALIGN(sizeof(kmem_cache_t), line)
    cc_size = ALIGN(SIZEOF_KMEM_CACHE[profile.slab_flavour], line)
    if profile.slab_flavour == "slab":
        num, left_over = cache_estimate(0, cc_size, line, False, profile.PAGE_SIZE,
                                        profile.STRUCT_SLAB_SIZE, profile.BUFCTL_SIZE,
                                        (1 << (8 * profile.BUFCTL_SIZE)) - 3)
        geo = {"objsize": cc_size, "align": line, "gfporder": 0, "num": num,
               "left_over": left_over, "off_slab": False, "colour_off": line,
               "colour": left_over // line,
               "slab_size": ALIGN(num * profile.BUFCTL_SIZE + profile.STRUCT_SLAB_SIZE, line)}
    else:
        geo = cache_geometry(profile, cc_size, line, SLAB_HWCACHE_ALIGN, offslab_limit=0,
                             slab_break_gfp_order=0)
    state.cache_cache = _new_cache(profile, "kmem_cache", geo, SLAB_NO_REAP, None)
    state.cache_chain.insert(0, state.cache_cache)
    # the first general cache gets the static head array: g_cpucache_up PARTIAL
    state.g_cpucache_up = "PARTIAL"
    # 2+3) the general caches, each with its DMA twin, all cache-line aligned
    # 2.6.12: ARCH_KMALLOC_FLAGS = SLAB_HWCACHE_ALIGN; 6.x create_kmalloc_caches: no
    # cache-line alignment, power-of-two sizes naturally aligned (create_boot_cache)
    slub = profile.slab_flavour == "slub"
    base_flags = SLAB_PANIC | (0 if slub else SLAB_HWCACHE_ALIGN)
    for size in profile.kmalloc_sizes:
        name, name_dma = _general_names(profile, size)
        align = size if slub and size & (size - 1) == 0 else 0
        cachep = _create(machine, name, _geometry(machine, size, align, base_flags),
                         base_flags, None)
        if not cachep.off_slab:
            # off-slab bufctl limit: what the largest on-slab general cache can hold
            state.offslab_limit = ((size - profile.STRUCT_SLAB_SIZE)
                                   // max(profile.BUFCTL_SIZE, 1))
        dma_flags = base_flags | SLAB_CACHE_DMA
        dma = _create(machine, name_dma, _geometry(machine, size, align, dma_flags),
                      dma_flags, None)
        cachep.general = dma.general = True
        state.malloc_sizes.append(cachep)
        state.malloc_sizes_dma.append(dma)
    # the descriptors need this many cache_cache slabs; a machine without them is no machine
    cc = state.cache_cache
    needed = -(-(len(state.cache_chain) - 1) // cc.num) << cc.gfporder
    low_free = sum(z.free_pages for z in machine.zonelists[1])
    if low_free < needed:
        raise ConfigError("phys_pages", f"the slab bootstrap needs {needed} free low-memory "
                                        f"frames for {len(state.cache_chain) - 1} cache "
                                        f"descriptors; only {low_free} are free")


def _geometry(machine, size, align, flags) -> dict:
    state = machine.slab
    return cache_geometry(machine.profile, size, align, flags,
                          offslab_limit=state.offslab_limit,
                          slab_break_gfp_order=state.slab_break_gfp_order)


def _create(machine, name, geo, flags, ctor) -> KmemCache:
    """A descriptor for a computed geometry, linked at the head of cache_chain."""
    cachep = _new_cache(machine.profile, name, geo, flags, ctor)
    if cachep.off_slab:
        # the struct slab + bufctls of each slab live in a general cache
        cachep.slabp_cache = kmem_find_general_cachep(machine, geo["slab_size"], 0)
    machine.slab.cache_chain.insert(0, cachep)
    return cachep


def _bootstrap(machine) -> bool:
    """Finish kmem_cache_init at the first slab call, in the kernel's order; all or nothing.

    2.6.12 mm/slab.c: kmem_cache_create of each general cache takes its descriptor from
    cache_cache and, once g_cpucache_up is PARTIAL (every cache after size-32), kmallocs
    its head array (sizeof(struct arraycache_init)); kmem_cache_init step 4 kmallocs
    replacements for the static head arrays of cache_cache and size-32; step 5 runs
    enable_cpucache on the whole chain (head first) with one CPU online; then
    cpuup_callback (CPU_UP_PREPARE) of each further CPU c allocates c's array for every
    cache and sets free_limit with c CPUs online. All on the boot CPU 0.
    """
    state = machine.slab
    slab_flavour = machine.profile.slab_flavour == "slab"
    cc = state.cache_cache
    first = state.malloc_sizes[0] if state.malloc_sizes else None
    init_bytes = _arraycache_bytes(machine, BOOT_CPUCACHE_ENTRIES)
    for cachep in reversed(state.cache_chain):       # creation order
        if cachep is cc:
            continue
        addr = _cache_alloc(machine, cc, GFP_KERNEL, 0)
        if addr is None:
            return _bootstrap_undo(machine)
        cachep.addr = addr
        state.internal[addr] = f"descriptor of cache {cachep.name}"
        if slab_flavour and cachep is not first:
            head = _kmalloc_internal(machine, init_bytes, 0,
                                     f"array_cache of cache {cachep.name} (CPU 0)")
            if head is None:
                return _bootstrap_undo(machine)
            cachep.array[0].addr = head
    if slab_flavour:
        # 4) the static head arrays of cache_cache and the first general cache are
        # copied into kmalloc'ed ones
        for cachep in (cc, first):
            head = _kmalloc_internal(machine, init_bytes, 0,
                                     f"array_cache of cache {cachep.name} (CPU 0)")
            if head is None:
                return _bootstrap_undo(machine)
            cachep.array[0].addr = head
        # 5) the real arrays, one CPU online (kmem_cache_init runs before smp_init)
        for cachep in list(state.cache_chain):
            if not enable_cpucache(machine, cachep, [0], 0):
                return _bootstrap_undo(machine)
        # CPU_UP_PREPARE of CPU c: an array for c in every cache, c CPUs online
        for c in range(1, machine.cpus):
            for cachep in list(state.cache_chain):
                nc = alloc_arraycache(machine, c, cachep.limit, cachep.batchcount, 0,
                                      f"array_cache of cache {cachep.name} (CPU {c})")
                if nc is None:
                    return _bootstrap_undo(machine)
                cachep.array.append(nc)
                cachep.free_limit = (1 + c) * cachep.batchcount + cachep.num
    state.g_cpucache_up = "FULL"
    return True


def _bootstrap_undo(machine) -> bool:
    """A bootstrap that ran out of memory (the kernel would panic): every slab page goes
    back and every cache is as boot() left it, with its head array. Returns False."""
    state = machine.slab
    flags_arr = machine.mem_map.flags
    for cachep in reversed(state.cache_chain):
        for pfn in list(cachep.slabs):
            for p in range(pfn, pfn + (1 << cachep.gfporder)):
                flags_arr[p] &= ~PG_slab
                del state.page_slab[p]
            __free_pages(machine, machine.mem_map + pfn, cachep.gfporder, 0)
        cachep.slabs = {}
        cachep.slabs_full, cachep.slabs_partial, cachep.slabs_free = \
            SlabList(), SlabList(), SlabList()
        cachep.lists = (cachep.slabs_full, cachep.slabs_partial, cachep.slabs_free)
        cachep.free_objects = 0
        cachep.colour_next = 0
        cachep.free_touched = 0
        cachep.addr = None
        if cachep.array is not None:
            cachep.limit, cachep.batchcount, cachep.shared = BOOT_CPUCACHE_ENTRIES, 1, 0
            cachep.array = [ArrayCache(BOOT_CPUCACHE_ENTRIES, 1)]
            cachep.shared_array = None
            cachep.free_limit = 2 * cachep.batchcount + cachep.num
    state.internal.clear()
    state.parked.clear()
    return False


def kmem_find_general_cachep(machine, size: int, gfpflags: int) -> KmemCache | None:
    """The first general cache whose objects hold `size` bytes (mm/slab.c, 2.6.12)."""
    state = machine.slab
    for i, cs_size in enumerate(machine.profile.kmalloc_sizes):
        if size <= cs_size:
            return (state.malloc_sizes_dma if gfpflags & GFP_DMA else state.malloc_sizes)[i]
    return None


def find_cache(machine, name: str) -> KmemCache | None:
    for cachep in machine.slab.cache_chain:
        if cachep.name == name:
            return cachep
    return None


def _bug_if_not_cache(machine, cachep) -> None:
    if not isinstance(cachep, KmemCache):
        raise KernelBug("bad_cache", f"{cachep!r} is not a kmem_cache")
    if cachep.dead:
        raise KernelBug("destroyed_cache", f"cache {cachep.name} was destroyed",
                        addr=cachep.addr)
    if not machine.slab.cache_chain or cachep not in machine.slab.cache_chain:
        raise KernelBug("bad_cache", f"cache {cachep.name} is not on this machine's "
                                     "cache_chain")


def kmem_cache_create(machine, name: str, size: int, align: int, flags: int,
                      ctor: str | None = None, cpu: int = 0) -> KmemCache | None:
    """Create a cache (2.6.12 mm/slab.c kmem_cache_create); None (NULL) when no
    descriptor can be had from cache_cache, when no slab order holds an object ("couldn't
    create cache") or, stricter than 2.6.12, when its arrays cannot be allocated."""
    # CHECK: 2.6.12 kmem_cache_create BUG()s on all of these
    profile = machine.profile
    word = profile.VIRT_BITS // 8
    if not isinstance(name, str) or not name:
        # 2.6.12 BUG()s on a NULL name only; the model names caches by a non-empty
        # string (stricter than the kernel). A space is only a DEBUG WARN_ON: allowed.
        raise KernelBug("bad_cache_name", f"cache name {name!r} must be a non-empty string")
    max_size = (1 << MAX_OBJ_ORDER) * profile.PAGE_SIZE
    if profile.slab_flavour == "slub":
        max_size = profile.PAGE_SIZE << profile.top_order
    if type(size) is not int or size < (word if profile.slab_flavour == "slab" else 1) \
            or size > max_size:
        raise KernelBug("bad_cache_size", f"object size {size!r} is not in "
                        f"{word if profile.slab_flavour == 'slab' else 1}..{max_size}")
    if type(align) is not int or align < 0 or (align & (align - 1)):
        raise KernelBug("bad_align", f"alignment {align!r} is not 0 or a power of two")
    if type(flags) is not int or flags & ~CREATE_MASK:
        raise KernelBug("bad_slab_flags", f"flags {flags!r} outside CREATE_MASK "
                                          f"{CREATE_MASK:#x}")
    if ctor is not None and not isinstance(ctor, str):
        raise KernelBug("bad_ctor", "the model names a constructor by a string")
    if find_cache(machine, name) is not None:
        raise KernelBug("duplicate_cache", f"a cache named {name} already exists")
    check_cpu(machine, cpu)
    # FIND: the descriptor comes from cache_cache (after the boot descriptors)
    state = machine.slab
    if not state.ready and not _bootstrap(machine):
        return None
    # 2.6.12 takes the descriptor from cache_cache before it sizes the slab: NULL here
    # leaves only what the failed refill/grow of cache_cache left (free_touched,
    # colour_next)
    addr = _cache_alloc(machine, state.cache_cache, GFP_KERNEL, cpu)
    if addr is None:
        return None
    geo = _geometry(machine, size, align, flags)
    if not geo["num"]:
        # "couldn't create cache": the descriptor goes back to cache_cache (a slab it
        # grew or the batch its refill took stays, as in the kernel)
        _cache_free(machine, state.cache_cache, addr, cpu)
        return None
    # ACCOUNT: link it at the head of the chain with its real arrays (g_cpucache_up FULL:
    # enable_cpucache allocates them on the calling CPU)
    cachep = _create(machine, name, geo, flags, ctor)
    cachep.addr = addr
    state.internal[addr] = f"descriptor of cache {name}"
    if profile.slab_flavour == "slab":
        # memset: no arrays yet, one slot per CPU
        cachep.array, cachep.shared_array = [None] * machine.cpus, None
        if not enable_cpucache(machine, cachep, _cpu.cpu_online_map(machine), cpu):
            # 2.6.12 prints "enable_cpucache failed" and returns a cache without arrays
            # (its first use dereferences NULL); the model fails the create instead
            state.cache_chain.remove(cachep)
            del state.internal[addr]
            _cache_free(machine, state.cache_cache, addr, cpu)
            cachep.dead = True
            return None
    return cachep


# --- growing and shrinking -------------------------------------------------------------

def _list_del(cachep: KmemCache, slab: Slab) -> None:
    lst = cachep.lists[slab.list]
    slabs = cachep.slabs
    if slab.prev != -1:
        slabs[slab.prev].next = slab.next
    else:
        lst.head = slab.next
    if slab.next != -1:
        slabs[slab.next].prev = slab.prev
    else:
        lst.tail = slab.prev
    lst.nr -= 1
    slab.next = slab.prev = -1


def _list_add_tail(cachep: KmemCache, slab: Slab, which: int) -> None:
    lst = cachep.lists[which]
    slab.list = which
    slab.next = -1
    slab.prev = lst.tail
    if lst.tail != -1:
        cachep.slabs[lst.tail].next = slab.id
    else:
        lst.head = slab.id
    lst.tail = slab.id
    lst.nr += 1


def _list_move(cachep: KmemCache, slab: Slab, which: int, tail: bool) -> None:
    """list_move / list_move_tail: unlink, then add at the head or the tail (hot path)."""
    slabs = cachep.slabs
    lst = cachep.lists[slab.list]
    prev, nxt = slab.prev, slab.next
    if prev != -1:
        slabs[prev].next = nxt
    else:
        lst.head = nxt
    if nxt != -1:
        slabs[nxt].prev = prev
    else:
        lst.tail = prev
    lst.nr -= 1
    lst = cachep.lists[which]
    slab.list = which
    sid = slab.id
    if tail:
        slab.next = -1
        slab.prev = lst.tail
        if lst.tail != -1:
            slabs[lst.tail].next = sid
        else:
            lst.head = sid
        lst.tail = sid
    else:
        slab.prev = -1
        slab.next = lst.head
        if lst.head != -1:
            slabs[lst.head].prev = sid
        else:
            lst.tail = sid
        lst.head = sid
    lst.nr += 1


def cache_grow(machine, cachep: KmemCache, flags: int, cpu: int = 0) -> bool:
    """Add one slab to slabs_free (Linux 2.6.12 mm/slab.c: cache_grow)."""
    if flags & __GFP_NO_GROW:
        return False
    profile = machine.profile
    # colour for this slab, and the next one (advanced even if the growth fails)
    offset = cachep.colour_next
    cachep.colour_next += 1
    if cachep.colour_next >= cachep.colour:
        cachep.colour_next = 0
    offset *= cachep.colour_off
    # kmem_getpages: low memory only -- a slab needs a permanent kernel address
    page = alloc_pages(machine, (flags & ~(__GFP_HIGHMEM | __GFP_DMA)) | cachep.gfpflags,
                       cachep.gfporder, cpu)
    if page is None:
        return False
    pfn = page.pfn
    base = profile.PAGE_OFFSET + (pfn << profile.PAGE_SHIFT)
    # alloc_slabmgmt: off-slab management from the general cache, else at the colour
    mgmt = None
    colouroff = offset
    if cachep.flags & CFLGS_OFF_SLAB:
        mgmt = _cache_alloc(machine, cachep.slabp_cache,
                            flags & ~(__GFP_HIGHMEM | __GFP_DMA), cpu)
        if mgmt is None:
            __free_pages(machine, page, cachep.gfporder, cpu)  # opps1: kmem_freepages
            return False
        machine.slab.internal[mgmt] = f"struct slab of cache {cachep.name}"
    else:
        colouroff += cachep.slab_size
    slab = Slab(pfn, cachep, colouroff, base + colouroff, cachep.num, mgmt)
    # SetPageSlab + set_slab_attr on every page of the slab
    flags_arr = machine.mem_map.flags
    page_slab = machine.slab.page_slab
    for p in range(pfn, pfn + (1 << cachep.gfporder)):
        flags_arr[p] |= PG_slab
        page_slab[p] = slab
    cachep.slabs[pfn] = slab
    _list_add_tail(cachep, slab, FREE)
    cachep.free_objects += cachep.num
    return True


def slab_destroy(machine, cachep: KmemCache, slab: Slab, cpu: int = 0) -> None:
    """Give a slab's pages back to the buddy allocator (mm/slab.c: slab_destroy)."""
    pfn = slab.id
    flags_arr = machine.mem_map.flags
    page_slab = machine.slab.page_slab
    for p in range(pfn, pfn + (1 << cachep.gfporder)):
        flags_arr[p] &= ~PG_slab            # kmem_freepages: TestClearPageSlab
        del page_slab[p]
    del cachep.slabs[pfn]
    __free_pages(machine, machine.mem_map + pfn, cachep.gfporder, cpu)
    if slab.mgmt is not None:
        # an off-slab struct slab goes back through kmem_cache_free on this CPU
        del machine.slab.internal[slab.mgmt]
        _cache_free(machine, cachep.slabp_cache, slab.mgmt, cpu)


def drain_array_locked(machine, cachep: KmemCache, ac: ArrayCache, force: bool,
                       cpu: int = 0) -> None:
    """Give back part (or, forced, all) of an array's objects (2.6.12: drain_array_locked).

    An array used since the last reap only loses its touched mark; otherwise the oldest
    (limit + 4) / 5 objects go, or half of them (rounded up) if it holds fewer.
    """
    if ac.touched and not force:
        ac.touched = 0
    elif ac.entry:
        avail = len(ac.entry)
        tofree = avail if force else (ac.limit + 4) // 5
        if tofree > avail:
            tofree = (avail + 1) // 2
        objs = ac.entry[:tofree]
        del ac.entry[:tofree]
        free_block(machine, cachep, objs, cpu)


def drain_cpu_caches(machine, cachep: KmemCache, cpu: int = 0) -> None:
    """Empty every CPU's array, then the shared one (2.6.12: drain_cpu_caches, do_drain).

    smp_call_function_all_cpus runs do_drain on the calling CPU first; the model then
    drains the other online CPUs in increasing order (an offline CPU has no array).
    """
    if cachep.array is None:
        return
    for c in [cpu] + [c for c in range(len(cachep.array)) if c != cpu]:
        ac = cachep.array[c]
        if ac is None:
            continue
        objs, ac.entry = ac.entry, []
        free_block(machine, cachep, objs, cpu)
    if cachep.shared_array is not None:
        drain_array_locked(machine, cachep, cachep.shared_array, True, cpu)


def __cache_shrink(machine, cachep: KmemCache, cpu: int = 0) -> int:
    """Drain the arrays, destroy every free slab, last first; 1 if slabs stay in use."""
    drain_cpu_caches(machine, cachep, cpu)
    free = cachep.slabs_free
    while free.tail != -1:
        slab = cachep.slabs[free.tail]
        _list_del(cachep, slab)
        cachep.free_objects -= cachep.num
        slab_destroy(machine, cachep, slab, cpu)
    return int(cachep.slabs_full.nr > 0 or cachep.slabs_partial.nr > 0)


def kmem_cache_shrink(machine, cachep: KmemCache, cpu: int = 0) -> int:
    """Release the free slabs of a cache; 0 when no slab is left (2.6.12 return value)."""
    _bug_if_not_cache(machine, cachep)
    check_cpu(machine, cpu)
    if not machine.slab.ready and not _bootstrap(machine):
        return int(cachep.slabs_full.nr > 0 or cachep.slabs_partial.nr > 0)
    return __cache_shrink(machine, cachep, cpu)


def kmem_cache_destroy(machine, cachep: KmemCache, cpu: int = 0) -> int:
    """Remove a cache and free its descriptor: 0; 1 if objects are still in use.

    2.6.12: the cache leaves cache_chain, __cache_shrink drains its arrays and frees its
    free slabs; if slabs stay in use it prints "Can't free all objects", puts the cache
    back at the head of cache_chain and returns 1.
    """
    # CHECK
    _bug_if_not_cache(machine, cachep)
    state = machine.slab
    if cachep is state.cache_cache:
        raise KernelBug("destroy_cache_cache", "cache_cache holds every descriptor and is "
                                               "never destroyed")
    if cachep.general:
        raise KernelBug("destroy_general_cache", f"{cachep.name} is a kmalloc cache",
                        addr=cachep.addr)
    check_cpu(machine, cpu)
    if not state.ready and not _bootstrap(machine):
        return 1
    # FIND: off the chain, then shrink
    state.cache_chain.remove(cachep)
    if __cache_shrink(machine, cachep, cpu):
        state.cache_chain.insert(0, cachep)
        return 1
    # ACCOUNT: every CPU's array, then the shared one, kfree'd; the descriptor freed
    if cachep.array is not None:
        for ac in cachep.array:
            if ac is not None:          # kfree(NULL) for an offline CPU
                _kfree_internal(machine, ac.addr, cpu)
        if cachep.shared_array is not None:
            _kfree_internal(machine, cachep.shared_array.addr, cpu)
        cachep.shared_array = None
    del state.internal[cachep.addr]
    _cache_free(machine, state.cache_cache, cachep.addr, cpu)
    cachep.dead = True
    return 0


# --- objects ---------------------------------------------------------------------------

def _take_object(cachep: KmemCache, slab: Slab) -> int:
    """The slab's next bufctl object, marked handed out (inuse++; free_objects untouched)."""
    idx = slab.free
    bufctl = slab.bufctl
    slab.free = bufctl[idx]
    bufctl[idx] = cachep.BUFCTL_FREE
    slab.inuse += 1
    return slab.s_mem + idx * cachep.objsize


def _slub_alloc(machine, cachep: KmemCache, flags: int) -> int | None:
    """SLUB (no arrays): the next object of the first partial (else free) slab."""
    sid = cachep.slabs_partial.head
    if sid == -1:
        sid = cachep.slabs_free.head
        if sid == -1:
            if not cache_grow(machine, cachep, flags):
                return None
            sid = cachep.slabs_free.head
    slab = cachep.slabs[sid]
    addr = _take_object(cachep, slab)
    cachep.free_objects -= 1
    if slab.free == cachep.BUFCTL_END:
        _list_move(cachep, slab, FULL, False)
    elif slab.list != PARTIAL or cachep.slabs_partial.head != sid:
        _list_move(cachep, slab, PARTIAL, False)
    return addr


def cache_alloc_refill(machine, cachep: KmemCache, flags: int, cpu: int) -> int | None:
    """Refill an empty CPU array and pop one object (2.6.12 mm/slab.c: cache_alloc_refill).

    A batch comes from the top of the shared array if it holds any, else from the first
    partial slab (then the first free slab), slab after slab, each moved to the head of
    slabs_full or slabs_partial; an array not touched since the last reap takes at most
    BATCHREFILL_LIMIT. Only when nothing was found does the cache grow, then retry.
    """
    ac = cachep.array[cpu]
    parked = machine.slab.parked
    while True:
        batchcount = ac.batchcount
        if not ac.touched and batchcount > BATCHREFILL_LIMIT:
            batchcount = BATCHREFILL_LIMIT
        shared = cachep.shared_array
        if shared is not None and shared.entry:
            # the top batchcount entries, in their order (memcpy)
            batchcount = min(batchcount, len(shared.entry))
            ac.entry.extend(shared.entry[-batchcount:])
            del shared.entry[-batchcount:]
            shared.touched = 1
        else:
            while batchcount > 0:
                sid = cachep.slabs_partial.head
                if sid == -1:
                    cachep.free_touched = 1
                    sid = cachep.slabs_free.head
                    if sid == -1:
                        break
                slab = cachep.slabs[sid]
                while slab.inuse < cachep.num and batchcount > 0:
                    batchcount -= 1
                    addr = _take_object(cachep, slab)
                    ac.entry.append(addr)
                    parked.add(addr)
                _list_move(cachep, slab, FULL if slab.free == cachep.BUFCTL_END else PARTIAL,
                           False)
            cachep.free_objects -= len(ac.entry)
        if not ac.entry:
            if not cache_grow(machine, cachep, flags, cpu):
                return None
            continue
        ac.touched = 1
        addr = ac.entry.pop()
        parked.discard(addr)
        return addr


def _must_grow(cachep: KmemCache, cpu: int) -> bool:
    """An allocation on `cpu` now reaches cache_grow: nothing in the arrays or slabs."""
    if cachep.array is not None:
        if cachep.array[cpu].entry:
            return False
        if cachep.shared_array is not None and cachep.shared_array.entry:
            return False
    return cachep.slabs_partial.nr == 0 and cachep.slabs_free.nr == 0


def _cache_alloc(machine, cachep: KmemCache, flags: int, cpu: int = 0) -> int | None:
    """One object for `cpu` (2.6.12 mm/slab.c: __cache_alloc): pop the CPU's array,
    refilling it when empty; no checks."""
    if cachep.array is None:
        return _slub_alloc(machine, cachep, flags)
    ac = cachep.array[cpu]
    if ac.entry:
        ac.touched = 1
        addr = ac.entry.pop()
        machine.slab.parked.discard(addr)
        return addr
    return cache_alloc_refill(machine, cachep, flags, cpu)


def _check_alloc(cachep: KmemCache, flags: int, cpu: int) -> None:
    check_gfp(flags)
    if flags & __GFP_HIGHMEM:
        # stricter than the kernel: 2.6.12 cache_grow BUG()s on __GFP_HIGHMEM only when
        # the cache must grow; slab memory needs a permanent kernel address (the seed)
        raise KernelBug("highmem_slab", "slab objects cannot come from highmem",
                        addr=cachep.addr)
    if cachep.flavour == "slab" and bool(flags & __GFP_DMA) != bool(cachep.gfpflags & GFP_DMA):
        # kmem_flagcheck: SLAB_DMA must match the cache's memory type (stricter than the
        # kernel, which checks it in cache_grow only)
        raise KernelBug("dma_flag_mismatch", f"GFP_DMA {'set' if flags & __GFP_DMA else 'clear'}"
                        f" for cache {cachep.name}", addr=cachep.addr)
    if cachep.flavour == "slab" and flags & ~SLAB_GROW_FLAGS and _must_grow(cachep, cpu):
        # 2.6.12 cache_grow: BUG() on a flag outside SLAB_DMA | SLAB_LEVEL_MASK |
        # SLAB_NO_GROW (e.g. __GFP_ZERO), reached only when the cache must grow
        raise KernelBug("bad_slab_gfp", f"gfp {flags:#x} has flags outside SLAB_DMA | "
                        f"SLAB_LEVEL_MASK | SLAB_NO_GROW and cache {cachep.name} must grow",
                        addr=cachep.addr)


def check_cpu(machine, cpu) -> int:
    """An online CPU of this machine: ValueError (bad input, not a kernel event) for a
    number that is no CPU of it; KernelBug `cpu_offline` for a CPU that is down."""
    if type(cpu) is not int or not 0 <= cpu < machine.cpus:
        raise ValueError(f"cpu {cpu!r} is not a CPU of this machine (0..{machine.cpus - 1})")
    _cpu.check_cpu_online(machine, cpu)
    return cpu


def kmem_cache_alloc(machine, cachep: KmemCache, flags: int, cpu: int = 0) -> int | None:
    """Allocate one object of a cache on `cpu`; its address, or None (NULL)."""
    # CHECK
    _bug_if_not_cache(machine, cachep)
    if cachep is machine.slab.cache_cache:
        raise KernelBug("cache_cache_private", "kmem_cache objects are descriptors; use "
                                               "kmem_cache_create")
    check_cpu(machine, cpu)
    _check_alloc(cachep, flags, cpu)
    if not machine.slab.ready and not _bootstrap(machine):
        return None
    return _cache_alloc(machine, cachep, flags, cpu)


def _lookup_object(machine, addr) -> tuple[Slab, int]:
    """The slab and index of a live object at `addr`; KernelBug for anything else."""
    profile = machine.profile
    if type(addr) is not int:
        raise KernelBug("not_slab_object", f"{addr!r} is not an address")
    slab = machine.slab.page_slab.get((addr - profile.PAGE_OFFSET) >> profile.PAGE_SHIFT) \
        if profile.PAGE_OFFSET <= addr < machine.high_memory else None
    if slab is None:
        raise KernelBug("not_slab_object", "address is not in a slab page", addr=addr)
    cachep = slab.cache
    objnr, rest = divmod(addr - slab.s_mem, cachep.objsize)
    if rest or not 0 <= objnr < cachep.num:
        raise KernelBug("not_object_start", f"address is not the start of an object of "
                                            f"cache {cachep.name}", addr=addr)
    if slab.bufctl[objnr] != cachep.BUFCTL_FREE or addr in machine.slab.parked:
        # on the slab's free list, or parked in an array after an earlier free
        raise KernelBug("double_free", f"object of cache {cachep.name} is already free",
                        addr=addr)
    return slab, objnr


def free_block(machine, cachep: KmemCache, objs: list[int], cpu: int = 0) -> None:
    """Put objects back on their slabs (2.6.12 mm/slab.c: free_block).

    free_objects counts them all first; a slab that empties is destroyed at once while
    the cache holds more than free_limit free objects, else goes to the head of
    slabs_free; a slab still in use goes to the tail of slabs_partial.
    """
    if not objs:
        return
    parked = machine.slab.parked
    page_slab = machine.slab.page_slab
    offset, shift = machine.profile.PAGE_OFFSET, machine.profile.PAGE_SHIFT
    cachep.free_objects += len(objs)
    for addr in objs:
        parked.discard(addr)
        slab = page_slab[(addr - offset) >> shift]
        objnr = (addr - slab.s_mem) // cachep.objsize
        slab.bufctl[objnr] = slab.free
        slab.free = objnr
        slab.inuse -= 1
        if slab.inuse == 0:
            if cachep.array is not None and cachep.free_objects > cachep.free_limit:
                _list_del(cachep, slab)
                cachep.free_objects -= cachep.num
                slab_destroy(machine, cachep, slab, cpu)
            else:
                _list_move(cachep, slab, FREE, False)
        elif slab.list != PARTIAL or cachep.slabs_partial.tail != slab.id:
            # "maximum time for the other objects to be freed, too": to the partial tail
            _list_move(cachep, slab, PARTIAL, True)


def cache_flusharray(machine, cachep: KmemCache, ac: ArrayCache, cpu: int) -> None:
    """Move the oldest batchcount objects of a full array on (2.6.12: cache_flusharray):
    into the shared array while it has room (as many as fit), else back to the slabs."""
    batchcount = ac.batchcount
    shared = cachep.shared_array
    room = shared.limit - len(shared.entry) if shared is not None else 0
    if room:
        batchcount = min(batchcount, room)
        shared.entry.extend(ac.entry[:batchcount])
        del ac.entry[:batchcount]
        return
    objs = ac.entry[:batchcount]
    del ac.entry[:batchcount]
    free_block(machine, cachep, objs, cpu)


def _cache_free(machine, cachep: KmemCache, addr: int, cpu: int = 0) -> None:
    """Free an object on `cpu` (2.6.12 mm/slab.c: __cache_free); no checks."""
    if cachep.array is None:
        slab = machine.slab.page_slab[(addr - machine.profile.PAGE_OFFSET)
                                      >> machine.profile.PAGE_SHIFT]
        _free_obj(cachep, slab, (addr - slab.s_mem) // cachep.objsize)
        return
    ac = cachep.array[cpu]
    if len(ac.entry) >= ac.limit:
        cache_flusharray(machine, cachep, ac, cpu)
    ac.entry.append(addr)
    machine.slab.parked.add(addr)


def _free_obj(cachep: KmemCache, slab: Slab, objnr: int) -> None:
    """SLUB (no arrays): the object goes straight back on its slab."""
    slab.bufctl[objnr] = slab.free
    slab.free = objnr
    slab.inuse -= 1
    cachep.free_objects += 1
    if slab.inuse == 0:
        _list_move(cachep, slab, FREE, False)
    elif slab.list != PARTIAL or cachep.slabs_partial.tail != slab.id:
        _list_move(cachep, slab, PARTIAL, True)


def kmem_cache_free(machine, cachep: KmemCache, addr: int, cpu: int = 0) -> None:
    """Free an object back to the cache it came from, on `cpu`."""
    # CHECK
    _bug_if_not_cache(machine, cachep)
    check_cpu(machine, cpu)
    slab, _ = _lookup_object(machine, addr)
    if slab.cache is not cachep:
        raise KernelBug("wrong_cache", f"object belongs to cache {slab.cache.name}, freed "
                                       f"to {cachep.name}", addr=addr)
    if addr in machine.slab.internal:
        raise KernelBug("slab_internal_object", f"object is the slab layer's own "
                        f"({machine.slab.internal[addr]})", addr=addr)
    # a kmalloc'd object may go back through kmem_cache_free of its general cache
    # (2.6.12 kfree is __cache_free on the same cache): it is no kmalloc object now
    machine.slab.kmalloc_req.pop(addr, None)
    _cache_free(machine, cachep, addr, cpu)


def cache_reap(machine, cpu: int = 0) -> None:
    """One run of the periodic reaper on `cpu` (2.6.12 mm/slab.c: cache_reap).

    For every cache but SLAB_NO_REAP ones: drain part of this CPU's array; then, the
    list3 timer taken as expired (the model has no jiffies), part of the shared array;
    then, unless a refill found no partial slab since the last reap (free_touched),
    destroy up to (free_limit + 5*num - 1) / (5*num) slabs from the head of slabs_free.
    """
    check_cpu(machine, cpu)
    state = machine.slab
    if not state.ready and not _bootstrap(machine):
        return
    for cachep in list(state.cache_chain):
        if cachep.flags & SLAB_NO_REAP or cachep.array is None:
            continue
        drain_array_locked(machine, cachep, cachep.array[cpu], False, cpu)
        if cachep.shared_array is not None:
            drain_array_locked(machine, cachep, cachep.shared_array, False, cpu)
        if cachep.free_touched:
            cachep.free_touched = 0
            continue
        tofree = (cachep.free_limit + 5 * cachep.num - 1) // (5 * cachep.num)
        while True:
            sid = cachep.slabs_free.head
            if sid == -1:
                break
            slab = cachep.slabs[sid]
            _list_del(cachep, slab)
            cachep.free_objects -= cachep.num
            slab_destroy(machine, cachep, slab, cpu)
            tofree -= 1
            if tofree <= 0:
                break


def kmem_cache_size(cachep: KmemCache) -> int:
    return cachep.objsize


# --- /proc/slabinfo --------------------------------------------------------------------

def slabinfo(machine) -> list[dict]:
    """One entry per cache in cache_chain order (mm/slab.c: s_show), with colour data."""
    out = []
    for c in machine.slab.cache_chain:
        active_objs = c.slabs_full.nr * c.num + sum(s.inuse for s in c.slab_list(PARTIAL))
        active_slabs = c.slabs_full.nr + c.slabs_partial.nr
        num_slabs = active_slabs + c.slabs_free.nr
        out.append({
            "name": c.name, "active_objs": active_objs, "num_objs": num_slabs * c.num,
            "objsize": c.objsize, "objperslab": c.num, "pagesperslab": 1 << c.gfporder,
            "active_slabs": active_slabs, "num_slabs": num_slabs,
            # s_show: sharedfactor is shared->limit / batchcount, sharedavail its avail
            "tunables": {"limit": c.limit, "batchcount": c.batchcount,
                         "sharedfactor": (c.shared_array.limit // c.batchcount
                                          if c.shared_array is not None else c.shared)},
            "sharedavail": len(c.shared_array.entry) if c.shared_array is not None else 0,
            "free_limit": c.free_limit,
            "arrays": ([{"cpu": i, "avail": len(ac.entry), "limit": ac.limit,
                         "batchcount": ac.batchcount, "touched": ac.touched}
                        for i, ac in enumerate(c.array) if ac is not None]
                       if c.array is not None else []),
            "shared": ({"avail": len(c.shared_array.entry), "limit": c.shared_array.limit,
                        "touched": c.shared_array.touched}
                       if c.shared_array is not None else None),
            "colour": {"colour": c.colour, "colour_off": c.colour_off,
                       "colour_next": c.colour_next, "left_over": c.left_over},
            "gfporder": c.gfporder, "off_slab": c.off_slab, "slab_size": c.slab_size,
            "align": c.align,
        })
    return out
