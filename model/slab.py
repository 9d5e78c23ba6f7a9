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
- no per-CPU `array_cache`: an allocation takes the next bufctl object of the first
  partial slab (or the first free slab), a free puts the object straight back on its
  slab's bufctl list; the slab list moves are those of cache_alloc_refill/free_block;
- emptied slabs stay on slabs_free until kmem_cache_shrink/destroy (no cache_reap);
- allocated objects carry the DEBUG build's BUFCTL_FREE mark, so a double free is seen;
- kmem_cache_init is split: boot() builds cache_cache and every general cache (their
  geometry) as the kernel does; the descriptors take their cache_cache objects at the
  first slab call, so page-level scenarios see the buddy state free_all_bootmem left.

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
from .gfp import GFP_DMA, GFP_KERNEL, __GFP_DMA, __GFP_HIGHMEM, __GFP_NO_GROW, check_gfp
from .mem_map import PG_slab
from .page_alloc import __free_pages, alloc_pages

__all__ = [
    "KmemCache", "Slab", "SlabState", "cache_estimate", "cache_geometry", "kmem_cache_init",
    "kmem_cache_create", "kmem_cache_alloc", "kmem_cache_free", "kmem_cache_shrink",
    "kmem_cache_destroy", "kmem_cache_size", "kmem_find_general_cachep", "find_cache",
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
                 "shared", "BUFCTL_END", "BUFCTL_FREE", "general", "flavour")

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
        self.offslab_limit = 0
        self.slab_break_gfp_order = BREAK_GFP_ORDER_LO
        self.ready = False                            # general descriptors placed


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
        num = (page_size << order) // objsize
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
    # enable_cpucache (2.6.12): the tunables /proc/slabinfo shows; SMP shared factor 8
    if profile.slab_flavour == "slub":
        c.limit = c.batchcount = c.shared = 0
    else:
        size = c.objsize
        c.limit = (1 if size > 131072 else 8 if size > profile.PAGE_SIZE else
                   24 if size > 1024 else 54 if size > 256 else 120)
        c.batchcount = (c.limit + 1) // 2
        c.shared = 8 if size <= profile.PAGE_SIZE else 0
    return c


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
    """Place every boot-time descriptor in cache_cache (kmem_cache_init's allocations)."""
    state = machine.slab
    placed = []
    for cachep in reversed(state.cache_chain):       # creation order
        if cachep is state.cache_cache:
            continue
        addr = _cache_alloc(machine, state.cache_cache, GFP_KERNEL)
        if addr is None:
            for done, a in placed:
                _cache_free(machine, state.cache_cache, a)
                done.addr = None
                del state.internal[a]
            __cache_shrink(machine, state.cache_cache)
            return False
        cachep.addr = addr
        state.internal[addr] = f"descriptor of cache {cachep.name}"
        placed.append((cachep, addr))
    state.ready = True
    return True


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
                      ctor: str | None = None) -> KmemCache | None:
    """Create a cache; None (NULL) if its descriptor cannot be allocated."""
    # CHECK: 2.6.12 kmem_cache_create BUG()s on all of these
    profile = machine.profile
    word = profile.VIRT_BITS // 8
    if not isinstance(name, str) or not name or " " in name:
        raise KernelBug("bad_cache_name", f"cache name {name!r} must be a non-empty word")
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
    # FIND: the descriptor comes from cache_cache (after the boot descriptors)
    state = machine.slab
    if not state.ready and not _bootstrap(machine):
        return None
    geo = _geometry(machine, size, align, flags)
    if not geo["num"]:
        return None         # "couldn't create cache"
    addr = _cache_alloc(machine, state.cache_cache, GFP_KERNEL)
    if addr is None:
        return None
    # ACCOUNT: link it at the head of the chain
    cachep = _create(machine, name, geo, flags, ctor)
    cachep.addr = addr
    state.internal[addr] = f"descriptor of cache {name}"
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


def cache_grow(machine, cachep: KmemCache, flags: int) -> bool:
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
                       cachep.gfporder)
    if page is None:
        return False
    pfn = page.pfn
    base = profile.PAGE_OFFSET + (pfn << profile.PAGE_SHIFT)
    # alloc_slabmgmt: off-slab management from the general cache, else at the colour
    mgmt = None
    colouroff = offset
    if cachep.flags & CFLGS_OFF_SLAB:
        mgmt = _cache_alloc(machine, cachep.slabp_cache, flags & ~(__GFP_HIGHMEM | __GFP_DMA))
        if mgmt is None:
            __free_pages(machine, page, cachep.gfporder)       # opps1: kmem_freepages
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


def slab_destroy(machine, cachep: KmemCache, slab: Slab) -> None:
    """Give a slab's pages back to the buddy allocator (mm/slab.c: slab_destroy)."""
    pfn = slab.id
    flags_arr = machine.mem_map.flags
    page_slab = machine.slab.page_slab
    for p in range(pfn, pfn + (1 << cachep.gfporder)):
        flags_arr[p] &= ~PG_slab            # kmem_freepages: TestClearPageSlab
        del page_slab[p]
    del cachep.slabs[pfn]
    __free_pages(machine, machine.mem_map + pfn, cachep.gfporder)
    if slab.mgmt is not None:
        del machine.slab.internal[slab.mgmt]
        _cache_free(machine, cachep.slabp_cache, slab.mgmt)


def __cache_shrink(machine, cachep: KmemCache) -> int:
    """Destroy every free slab, last first; 1 if full or partial slabs remain."""
    free = cachep.slabs_free
    while free.tail != -1:
        slab = cachep.slabs[free.tail]
        _list_del(cachep, slab)
        cachep.free_objects -= cachep.num
        slab_destroy(machine, cachep, slab)
    return int(cachep.slabs_full.nr > 0 or cachep.slabs_partial.nr > 0)


def kmem_cache_shrink(machine, cachep: KmemCache) -> int:
    """Release the free slabs of a cache; 0 when no slab is left (2.6.12 return value)."""
    _bug_if_not_cache(machine, cachep)
    return __cache_shrink(machine, cachep)


def kmem_cache_destroy(machine, cachep: KmemCache) -> None:
    """Remove an empty cache and free its descriptor; refused while objects are live."""
    # CHECK
    _bug_if_not_cache(machine, cachep)
    state = machine.slab
    if cachep is state.cache_cache:
        raise KernelBug("destroy_cache_cache", "cache_cache holds every descriptor and is "
                                               "never destroyed")
    if cachep.general:
        raise KernelBug("destroy_general_cache", f"{cachep.name} is a kmalloc cache",
                        addr=cachep.addr)
    if cachep.slabs_full.nr or cachep.slabs_partial.nr:
        live = cachep.num * cachep.slabs_full.nr + sum(s.inuse for s in
                                                       cachep.slab_list(PARTIAL))
        # 2.6.12 frees the free slabs first, then prints "Can't free all objects" and
        # returns 1; the spec refuses before touching anything.
        raise KernelBug("destroy_busy_cache", f"cache {cachep.name} still has {live} live "
                                              "objects", addr=cachep.addr)
    # remove it from the chain, release its slabs and its descriptor
    __cache_shrink(machine, cachep)
    state.cache_chain.remove(cachep)
    del state.internal[cachep.addr]
    _cache_free(machine, state.cache_cache, cachep.addr)
    cachep.dead = True


# --- objects ---------------------------------------------------------------------------

def _cache_alloc(machine, cachep: KmemCache, flags: int) -> int | None:
    """One object: next bufctl of the first partial (else free) slab; grow if none."""
    sid = cachep.slabs_partial.head
    if sid == -1:
        sid = cachep.slabs_free.head
        if sid == -1:
            if not cache_grow(machine, cachep, flags):
                return None
            sid = cachep.slabs_free.head
    slab = cachep.slabs[sid]
    idx = slab.free
    bufctl = slab.bufctl
    slab.free = bufctl[idx]
    bufctl[idx] = cachep.BUFCTL_FREE
    slab.inuse += 1
    cachep.free_objects -= 1
    # move the slab to the right list (cache_alloc_refill: list_del + list_add)
    if slab.free == cachep.BUFCTL_END:
        _list_move(cachep, slab, FULL, False)
    elif slab.list != PARTIAL or cachep.slabs_partial.head != sid:
        _list_move(cachep, slab, PARTIAL, False)
    return slab.s_mem + idx * cachep.objsize


def _check_alloc(cachep: KmemCache, flags: int) -> None:
    check_gfp(flags)
    if flags & __GFP_HIGHMEM:
        # 2.6.12 cache_grow BUG()s on flags outside SLAB_LEVEL_MASK: slab memory needs a
        # permanent kernel address (the seed); the spec refuses on every call
        raise KernelBug("highmem_slab", "slab objects cannot come from highmem",
                        addr=cachep.addr)
    if cachep.flavour == "slab" and bool(flags & __GFP_DMA) != bool(cachep.gfpflags & GFP_DMA):
        # kmem_flagcheck: SLAB_DMA must match the cache's memory type
        raise KernelBug("dma_flag_mismatch", f"GFP_DMA {'set' if flags & __GFP_DMA else 'clear'}"
                        f" for cache {cachep.name}", addr=cachep.addr)


def kmem_cache_alloc(machine, cachep: KmemCache, flags: int) -> int | None:
    """Allocate one object of a cache; its address, or None (NULL)."""
    # CHECK
    _bug_if_not_cache(machine, cachep)
    if cachep is machine.slab.cache_cache:
        raise KernelBug("cache_cache_private", "kmem_cache objects are descriptors; use "
                                               "kmem_cache_create")
    _check_alloc(cachep, flags)
    if not machine.slab.ready and not _bootstrap(machine):
        return None
    return _cache_alloc(machine, cachep, flags)


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
    if slab.bufctl[objnr] != cachep.BUFCTL_FREE:
        raise KernelBug("double_free", f"object of cache {cachep.name} is already free",
                        addr=addr)
    return slab, objnr


def _cache_free(machine, cachep: KmemCache, addr: int) -> None:
    """Put an object back (mm/slab.c: free_block for one object); no checks."""
    slab = machine.slab.page_slab[(addr - machine.profile.PAGE_OFFSET)
                                  >> machine.profile.PAGE_SHIFT]
    _free_obj(cachep, slab, (addr - slab.s_mem) // cachep.objsize)


def _free_obj(cachep: KmemCache, slab: Slab, objnr: int) -> None:
    slab.bufctl[objnr] = slab.free
    slab.free = objnr
    slab.inuse -= 1
    cachep.free_objects += 1
    if slab.inuse == 0:
        _list_move(cachep, slab, FREE, False)
    elif slab.list != PARTIAL or cachep.slabs_partial.tail != slab.id:
        # "maximum time for the other objects to be freed, too": to the partial tail
        _list_move(cachep, slab, PARTIAL, True)


def kmem_cache_free(machine, cachep: KmemCache, addr: int) -> None:
    """Free an object back to the cache it came from."""
    # CHECK
    _bug_if_not_cache(machine, cachep)
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
    _cache_free(machine, cachep, addr)


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
            "tunables": {"limit": c.limit, "batchcount": c.batchcount,
                         "sharedfactor": c.shared},
            "colour": {"colour": c.colour, "colour_off": c.colour_off,
                       "colour_next": c.colour_next, "left_over": c.left_over},
            "gfporder": c.gfporder, "off_slab": c.off_slab, "slab_size": c.slab_size,
            "align": c.align,
        })
    return out
