"""Boot: build mem_map, lay out the zones, and free boot memory into the buddy allocator.

The sequence the model follows (each step cites its kernel source):

1. `total_pages = phys_pages + iomem_pages + highmem_pages` (arch/um/kernel/physmem.c:
   init_maps, the seed). Frames [0, phys) are low memory, directly mapped at
   PAGE_OFFSET; [phys, phys + iomem) is I/O memory (in mem_map, in no zone, never
   freed); the rest is high memory.
2. Every `struct page` starts Reserved with one reference (mm/page_alloc.c:
   memmap_init_zone, 2.6.12).
3. Zones by the i386 layout (arch/i386/mm/init.c: zone_sizes_init): ZONE_DMA below
   16 MiB, ZONE_NORMAL up to the end of low memory (at most 896 MiB), ZONE_HIGHMEM
   after the iomem hole.
4. mem_map itself comes from boot memory, by the profile's rule (`MEM_MAP_ALLOCS`):
   on linux-2.6-i386, 2.6.12's mm/page_alloc.c alloc_node_mem_map --
   `(node_spanned_pages + 1) * sizeof(struct page)` bytes from alloc_bootmem_node,
   whose goal is `__pa(MAX_DMA_ADDRESS)` (16 MiB), so mem_map starts at pfn 4096 in
   ZONE_NORMAL when low memory reaches past the goal; the seed's arch/um rule
   (init_maps: `total_pages * sizeof(struct page)` from alloc_bootmem_low_pages,
   goal 0) for the other profile and the flat conformance machine. Both go through
   mm/bootmem.c __alloc_bootmem_core (`alloc_bootmem_core` below); those frames, and
   the configured reserved frames, stay Reserved.
5. Every other low frame is freed (mm/bootmem.c: free_all_bootmem_core, from
   arch/i386/mm/init.c mem_init) and then every high frame one by one
   (arch/i386/mm/init.c: set_highmem_pages_init), before kmem_cache_init (init/main.c
   start_kernel). Page policy "2.6.12": as 2.6.12 does, whole free bitmap words as
   order-5 (order-6 on a 64-bit profile) blocks straight to the buddy lists and single
   frames through CPU 0's hot lists, which drain `batch` frames from their tail at
   `high` -- so boot leaves frames on the hot lists (`free_all_bootmem_core`,
   `set_highmem_pages_init` below; spec/buddy.md section 2). Page policy "buddy":
   every frame straight to the buddy lists in increasing pfn order;
   `free_bootmem_range` produces, in O(blocks), exactly the state that frame-by-frame
   __free_pages calls in that order produce (tests/test_boot.py).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from .errors import ConfigError
from .mem_map import NO_ZONE, PG_highmem, PG_reserved, MemMap
from .page_alloc import (PerCpuPageset, Zone, free_hot_cold_page, init_per_zone_pages_min,
                         list_add, set_page_order, zone_batchsize)
from .pgtable import paging_init
from .profiles import DEFAULT_PROFILE, PROFILES, Profile, get_profile
from .slab import kmem_cache_init

# The seed's example machine: 896 MiB of low memory and 128 MiB of highmem (1 GiB).
DEFAULT_PHYS_PAGES = 229376
DEFAULT_HIGHMEM_PAGES = 32768
PAGE_POLICIES = ("2.6.12", "buddy")
# where mem_map comes from (profile default: Profile.MEM_MAP_ALLOC; boot key mem_map_alloc)
MEM_MAP_ALLOCS = ("alloc_node_mem_map", "init_maps")


@dataclass(frozen=True)
class MachineConfig:
    """What a machine is made of. Every field has a documented default (README)."""

    profile: str = DEFAULT_PROFILE
    page_size: int = 4096
    phys_pages: int = DEFAULT_PHYS_PAGES
    highmem_pages: int = DEFAULT_HIGHMEM_PAGES
    iomem_pages: int = 0
    # [start, end) pfn ranges of low memory reserved before mem_map is allocated.
    # i386 setup.c reserves physical page 0 (the BIOS page) -- hence the default.
    reserved: tuple[tuple[int, int], ...] = ((0, 1),)
    # Test preset knob: where ZONE_DMA ends (default: the profile's 16 MiB). A tiny
    # machine can then have DMA, Normal and HighMem zones in a few dozen frames. It
    # moves only the zone boundary; mem_map's bootmem goal stays the profile's
    # __pa(MAX_DMA_ADDRESS) (spec/buddy.md section 2).
    max_dma_pfn: int | None = None
    # CPUs online (1..the profile's NR_CPUS): per-CPU page lists and array caches
    cpus: int = 1
    # the vm.min_free_kbytes sysctl; None: init_per_zone_pages_min computes it
    min_free_kbytes: int | None = None
    # "2.6.12": __alloc_pages with watermarks and lowmem_reserve, order-0 pages through
    # the per-CPU lists; "buddy": the bare buddy (__rmqueue / __free_pages_bulk) the
    # conformance contract describes (spec/buddy.md, spec/conformance.md)
    page_policy: str = "2.6.12"
    # how mem_map is placed (MEM_MAP_ALLOCS); None: the profile's rule. The flat
    # conformance machine asks for "init_maps" (goal 0) to keep its frames all free.
    mem_map_alloc: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "MachineConfig":
        """Build a config from scenario JSON, naming the first bad key."""
        known = {f for f in cls.__dataclass_fields__}
        for key in data:
            if key not in known:
                raise ConfigError(key, f"unknown boot key (known: {', '.join(sorted(known))})")
        kwargs = dict(data)
        if "reserved" in kwargs:
            kwargs["reserved"] = _parse_ranges(kwargs["reserved"])
        return cls(**kwargs)


def _parse_ranges(value) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError("reserved", "must be a list of [start, end) pfn pairs")
    out = []
    for item in value:
        if (not isinstance(item, (list, tuple)) or len(item) != 2
                or not all(type(x) is int for x in item)):
            raise ConfigError("reserved", f"{item!r} is not a [start, end) pair of pfns")
        out.append((item[0], item[1]))
    return tuple(out)


def validate_config(config: MachineConfig) -> Profile:
    """Check a config describes a machine the profile allows; return the profile."""
    if config.profile not in PROFILES:
        raise ConfigError("profile", f"unknown profile {config.profile!r} "
                                     f"(known: {', '.join(sorted(PROFILES))})")
    profile = get_profile(config.profile)
    for name in ("page_size", "phys_pages", "highmem_pages", "iomem_pages"):
        value = getattr(config, name)
        if type(value) is not int or value < 0:
            raise ConfigError(name, f"must be a non-negative integer, got {value!r}")
    if config.page_size != profile.PAGE_SIZE:
        raise ConfigError("page_size", f"{config.profile} has PAGE_SIZE {profile.PAGE_SIZE}, "
                                       f"not {config.page_size}")
    if config.phys_pages < 1:
        raise ConfigError("phys_pages", "a machine needs some low memory")
    if profile.MAXMEM_PFN is not None and config.phys_pages > profile.MAXMEM_PFN:
        raise ConfigError("phys_pages", f"low memory is at most {profile.MAXMEM_PFN} frames "
                                        f"(896 MiB) on {profile.name}; put the rest in "
                                        "highmem_pages")
    if config.highmem_pages and not profile.has_highmem:
        raise ConfigError("highmem_pages", f"{profile.name} has no highmem")
    total = config.phys_pages + config.iomem_pages + config.highmem_pages
    if profile.VIRT_BITS == 32 and total > 1 << (32 - profile.PAGE_SHIFT):
        raise ConfigError("highmem_pages", f"{total} frames exceed the 4 GiB a non-PAE "
                                           "i386 can address")
    if config.max_dma_pfn is not None and (type(config.max_dma_pfn) is not int
                                           or config.max_dma_pfn < 1):
        raise ConfigError("max_dma_pfn", "must be a positive integer")
    if type(config.cpus) is not int or not 1 <= config.cpus <= profile.NR_CPUS:
        raise ConfigError("cpus", f"must be an integer in 1..{profile.NR_CPUS} (NR_CPUS of "
                                  f"{profile.name}), got {config.cpus!r}")
    if config.min_free_kbytes is not None and (type(config.min_free_kbytes) is not int
                                               or config.min_free_kbytes < 0):
        raise ConfigError("min_free_kbytes", "must be a non-negative integer (KiB), got "
                                             f"{config.min_free_kbytes!r}")
    if config.page_policy not in PAGE_POLICIES:
        raise ConfigError("page_policy", f"must be one of {', '.join(PAGE_POLICIES)}, got "
                                         f"{config.page_policy!r}")
    if config.mem_map_alloc is not None and config.mem_map_alloc not in MEM_MAP_ALLOCS:
        raise ConfigError("mem_map_alloc", f"must be one of {', '.join(MEM_MAP_ALLOCS)}, got "
                                           f"{config.mem_map_alloc!r}")
    for start, end in config.reserved:
        if not 0 <= start < end <= config.phys_pages:
            raise ConfigError("reserved", f"[{start}, {end}) is not a range of low memory "
                                          f"[0, {config.phys_pages})")
    return profile


class Machine:
    """One booted machine: mem_map, zones and the state of every allocator on it."""

    def __init__(self, config: MachineConfig, profile: Profile):
        self.config = config
        self.profile = profile
        self.cpus = config.cpus
        total = config.phys_pages + config.iomem_pages + config.highmem_pages
        self.mem_map = MemMap(total)
        self.max_low_pfn = config.phys_pages
        self.high_memory = profile.PAGE_OFFSET + (config.phys_pages << profile.PAGE_SHIFT)
        self.zones: list[Zone] = []
        # zonelists[gfp_zone]: the zones a request may use, preferred first
        self.zonelists: list[list[Zone]] = []
        # Model bookkeeping, as CONFIG_PAGE_OWNER records it (mm/page_owner.c, 2.6.x
        # kernels keep no order for non-compound pages): head pfn -> allocation order.
        self.page_owner: dict[int, int] = {}
        self.page_address_htable: dict[int, int] = {}   # mm/highmem.c, pfn -> vaddr
        self.mem_map_pfns = range(0)                     # frames holding mem_map itself
        self.reserved_pfns: list[tuple[int, int]] = list(config.reserved)
        self.min_free_kbytes = 0                          # set by init_per_zone_pages_min
        full = config.page_policy == "2.6.12"
        self.watermarks = full                            # __alloc_pages' watermark passes
        self.pcp = full                                   # order-0 through per-CPU lists
        self.pcp_pages: dict[int, int] = {}   # pfn on a per-CPU list -> 2 * cpu + cold
        self.page_index: dict[int, int] = {}   # page->index where set: page[1] of compound
        self.current_flags = 0                            # current->flags (PF_MEMALLOC)
        self.alloc_failure: str | None = None             # why the last NULL (page_alloc)

    @property
    def nr_pages(self) -> int:
        return self.mem_map.nr_pages

    def zone_of(self, pfn: int) -> Zone | None:
        zid = self.mem_map.zone_id[pfn]
        return None if zid == NO_ZONE else self.zones[zid]

    def __repr__(self):
        return (f"Machine({self.profile.name}, {self.nr_pages} frames, "
                f"zones={[z.name for z in self.zones if z.spanned_pages]})")


def zone_layout(config: MachineConfig, profile: Profile) -> list[tuple[str, int, int]]:
    """(name, start pfn, end pfn) for each of the profile's zones (possibly empty)."""
    phys = config.phys_pages
    dma_end = min(config.max_dma_pfn or profile.MAX_DMA_PFN, phys)
    if profile.has_highmem:
        high_start = phys + config.iomem_pages
        return [("DMA", 0, dma_end), ("Normal", dma_end, phys),
                ("HighMem", high_start, high_start + config.highmem_pages)]
    dma32_end = max(dma_end, min(profile.extra.get("MAX_DMA32_PFN", phys), phys))
    return [("DMA", 0, dma_end), ("DMA32", dma_end, dma32_end), ("Normal", dma32_end, phys)]


def boot(config: MachineConfig | None = None, **overrides) -> Machine:
    """Boot a machine: mem_map, zones, bootmem reservations, then free_all_bootmem."""
    if config is None:
        config = MachineConfig(**overrides)
    elif overrides:
        raise TypeError("give a MachineConfig or keyword overrides, not both")
    profile = validate_config(config)
    machine = Machine(config, profile)
    mem_map = machine.mem_map

    # zones and zone ids in page->flags; free_area_init_core sizes the per-CPU lists
    layout = zone_layout(config, profile)
    for index, (name, start, end) in enumerate(layout):
        zone = Zone(index, name, start, max(0, end - start), profile.MAX_ORDER, len(layout))
        batch = zone_batchsize(zone, profile.PAGE_SIZE)
        zone.pageset = [PerCpuPageset(batch) for _ in range(config.cpus)]
        machine.zones.append(zone)
        if end > start:
            mem_map.zone_id[start:end] = bytes([index]) * (end - start)
            if name == "HighMem":
                mem_map.flags[start:end] = bytes([PG_reserved | PG_highmem]) * (end - start)
    for top in range(3):
        highest = profile.gfp_zone_top[top]
        machine.zonelists.append([z for z in reversed(machine.zones[:highest + 1])
                                  if z.spanned_pages])

    # mem_map from boot memory, above the ranges setup_arch reserved
    rule = config.mem_map_alloc or profile.MEM_MAP_ALLOC
    if rule == "alloc_node_mem_map":
        # mm/page_alloc.c alloc_node_mem_map: one struct page more than the node spans,
        # from alloc_bootmem_node (include/linux/bootmem.h: SMP_CACHE_BYTES aligned, goal
        # __pa(MAX_DMA_ADDRESS); SMP_CACHE_BYTES = L1_CACHE_BYTES, include/linux/cache.h)
        size = (machine.nr_pages + 1) * profile.STRUCT_PAGE_SIZE
        align, goal = profile.L1_CACHE_BYTES, profile.MAX_DMA_PFN << profile.PAGE_SHIFT
    else:
        # arch/um/kernel/physmem.c init_maps: alloc_bootmem_low_pages(total_len)
        size = machine.nr_pages * profile.STRUCT_PAGE_SIZE
        align, goal = profile.PAGE_SIZE, 0
    start, map_frames = alloc_bootmem_core(config.reserved, config.phys_pages, size, align,
                                           goal, profile.PAGE_SHIFT)
    if start is None:
        raise ConfigError("phys_pages", f"low memory cannot hold mem_map ({map_frames} frames "
                                        f"for {machine.nr_pages} struct pages)")
    machine.mem_map_pfns = range(start, start + map_frames)
    machine.reserved_pfns.append((start, start + map_frames))

    # free_all_bootmem + set_highmem_pages_init
    keep = sorted(machine.reserved_pfns)
    free_ranges = []
    cursor = 0
    for r_start, r_end in keep:
        if r_start > cursor:
            free_ranges.append((cursor, r_start))
        cursor = max(cursor, r_end)
    if cursor < config.phys_pages:
        free_ranges.append((cursor, config.phys_pages))
    highmem = [z for z in machine.zones if z.name == "HighMem" and z.spanned_pages]
    if machine.pcp:
        # page_policy 2.6.12: mem_init -> free_all_bootmem, then set_highmem_pages_init,
        # with order-0 frees through CPU 0's hot lists
        free_all_bootmem_core(machine, free_ranges)
        for zone in highmem:
            set_highmem_pages_init(machine, zone)
    else:
        # page_policy buddy: every free frame straight into the buddy lists, pfn order
        for zone in highmem:
            free_ranges.append((zone.zone_start_pfn, zone.zone_end_pfn))
        for lo, hi in free_ranges:
            for zone in machine.zones:
                a, b = max(lo, zone.zone_start_pfn), min(hi, zone.zone_end_pfn)
                if a < b:
                    free_bootmem_range(machine, zone, a, b)
    # module_init(init_per_zone_pages_min): min_free_kbytes, watermarks, reserves
    init_per_zone_pages_min(machine, config.min_free_kbytes)
    # kernel page tables, vmalloc list, pkmap state (i386 layout only; model/pgtable.py)
    paging_init(machine)
    # start_kernel -> kmem_cache_init after mem_init (init/main.c, 2.6.12; model/slab.py)
    kmem_cache_init(machine)
    return machine


def alloc_bootmem_core(taken, node_low_pfn: int, size: int, align: int, goal: int,
                       page_shift: int) -> tuple[int | None, int]:
    """(first pfn or None, frames) of a `size`-byte boot allocation on a fresh bootmem map.

    mm/bootmem.c __alloc_bootmem_core (2.6.12) on node 0 (node_boot_start 0, covering
    low memory [0, node_low_pfn)), with `taken` the [start, end) pfn ranges reserved so
    far and no earlier allocation (so `last_success` and the partial-page merge with
    `last_pos`/`last_offset` play no part): the request takes ceil(size / PAGE_SIZE)
    whole frames; a goal inside low memory (rounded up to `align`) is where the first
    scan starts, and when nothing fits from there the scan restarts at pfn 0; each scan
    takes the lowest run of free frames that fits. Alignments up to PAGE_SIZE step the
    scan by one frame (`incr` 1); both callers' alignments are at most PAGE_SIZE.
    """
    page_size = 1 << page_shift
    if align > page_size:
        raise ValueError("alloc_bootmem_core models alignments up to PAGE_SIZE only")
    areasize = -(-size // page_size)
    preferred = 0
    if goal and (goal >> page_shift) < node_low_pfn:
        preferred = ((goal + align - 1) & ~(align - 1)) >> page_shift
    ranges = sorted(taken)
    for first in ((preferred, 0) if preferred else (0,)):
        pfn = first
        for r_start, r_end in ranges:
            if r_end <= pfn:
                continue
            if r_start - pfn >= areasize:
                break
            pfn = r_end
        if pfn + areasize <= node_low_pfn:
            return pfn, areasize
    return None, areasize


def free_bootmem_range(machine: Machine, zone: Zone, start: int, end: int) -> None:
    """Free frames [start, end) of one zone as if by __free_pages(page, 0) in pfn order.

    Frame-by-frame freeing with complete merging leaves the maximal buddy-aligned
    blocks, each put at the head of its list when its last frame is freed -- i.e. in
    increasing pfn order. This builds that state directly in O(blocks).
    """
    mem_map = machine.mem_map
    n = end - start
    mem_map.flags[start:end] = bytes([mem_map.flags[start] & PG_highmem]) * n
    mem_map.count[start:end] = array("i", bytes(4 * n))
    base = zone.zone_start_pfn
    top = machine.profile.MAX_ORDER - 1
    pfn = start
    while pfn < end:
        idx = pfn - base
        order = top
        while order > 0 and (idx & ((1 << order) - 1) or pfn + (1 << order) > end):
            order -= 1
        set_page_order(mem_map, pfn, order)
        list_add(mem_map, zone.free_area[order], pfn)
        zone.free_area[order].nr_free += 1
        pfn += 1 << order
    zone.free_pages += n
    zone.freed_at_boot += n


def free_all_bootmem_core(machine: Machine, free_ranges: list[tuple[int, int]]) -> None:
    """Free low memory the way 2.6.12 mm/bootmem.c free_all_bootmem_core does on node 0.

    The bootmem bitmap covers [0, max_low_pfn) from pfn 0, so its words are aligned
    (`gofast`). Word by word (BITS_PER_LONG frames: 32 on a 32-bit profile, 64 on a
    64-bit one): a word whose frames are all free goes to __free_pages as one block of
    order ffs(BITS_PER_LONG) - 1, which __free_pages_ok hands straight to the buddy
    lists; a word with some free frames has each of them, in pfn order, freed by
    __free_page, i.e. free_hot_page on the boot CPU (0): onto the head of its zone's
    hot list, `batch` frames going from the list's tail to the buddy lists first when
    the list is at `high` (mm/page_alloc.c free_hot_cold_page, free_pages_bulk); a
    word with no free frame is skipped. The bitmap's bits past max_low_pfn stay set
    (init_bootmem_core fills the map with ones), so a last, short word is freed frame
    by frame. The kernel then frees the bitmap's own pages, one by one; the model has
    no bootmem bitmap (spec/buddy.md section 2).

    Runs of whole free words are built by free_bootmem_range, which gives the state
    that freeing their order-5 (order-6) blocks in pfn order gives: a word holding a
    reserved frame never becomes a whole free block, so no block the hot-list drains
    make can merge across into such a run, and nothing is added to a list while a
    run is freed. A word that the max_dma_pfn test knob splits between two zones, or
    that is not aligned to its size within its zone, is freed frame by frame (2.6.12's
    zone boundaries are 16 MiB and max_low_pfn aligned: it never has one).
    """
    mem_map = machine.mem_map
    zone_id, flags, count = mem_map.zone_id, mem_map.flags, mem_map.count
    bits = machine.profile.VIRT_BITS                  # BITS_PER_LONG
    idx = machine.config.phys_pages                   # node_low_pfn - node_boot_start
    free = bytearray(idx)                             # 1: the bitmap bit is clear
    for lo, hi in free_ranges:
        free[lo:hi] = b"\x01" * (hi - lo)
    run_zone, run_start, run_end = None, 0, 0
    for word in range(0, idx, bits):
        end = min(word + bits, idx)
        nfree = free.count(1, word, end)
        if not nfree:
            continue
        zone = machine.zones[zone_id[word]]
        if (end - word == bits and nfree == bits and zone_id[end - 1] == zone.index
                and (word - zone.zone_start_pfn) % bits == 0):
            if run_zone is zone and run_end == word:
                run_end = end
            else:
                if run_zone is not None:
                    free_bootmem_range(machine, run_zone, run_start, run_end)
                run_zone, run_start, run_end = zone, word, end
            continue
        if run_zone is not None:
            free_bootmem_range(machine, run_zone, run_start, run_end)
            run_zone = None
        for pfn in range(word, end):
            if free[pfn]:
                # __ClearPageReserved, set_page_refs(page, 0), __free_page: the last
                # reference goes, free_hot_page
                flags[pfn] &= PG_highmem
                count[pfn] = 0
                machine.zones[zone_id[pfn]].freed_at_boot += 1
                free_hot_cold_page(machine, pfn, 0, 0)
    if run_zone is not None:
        free_bootmem_range(machine, run_zone, run_start, run_end)


def boot_hot_list_length(n: int, high: int, batch: int) -> int:
    """Frames left on an empty hot list after n frames are freed onto it one by one.

    free_hot_cold_page (2.6.12) drains `batch` frames when the list is at `high`
    before it adds a frame, so the list reaches `high` after `high` frees and every
    `batch` frees after that; in between it holds high - batch + 1 .. high frames.
    """
    if n <= high:
        return n
    return high - batch + (n - high - 1) % batch + 1


def set_highmem_pages_init(machine: Machine, zone: Zone) -> None:
    """2.6.12 arch/i386/mm/init.c set_highmem_pages_init: one_highpage_init frees every
    highmem frame, in increasing pfn order, by __free_page -> free_hot_page on CPU 0.

    The hot list drains from its tail, the oldest frames, so the buddy lists receive
    the frames in increasing pfn order, one at a time: they end as freeing the first
    n - c frames one by one leaves them (free_bootmem_range, list order included),
    and the hot list holds the last c frames (`boot_hot_list_length`), the highest
    pfn at its head. Built directly, so a 3 GiB highmem zone boots in O(blocks).
    """
    mem_map = machine.mem_map
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    pcp = zone.pageset[0].pcp[0]
    if pcp.count:
        raise AssertionError("set_highmem_pages_init expects an empty hot list")
    kept = boot_hot_list_length(end - start, pcp.high, pcp.batch)
    split = end - kept
    if split > start:
        free_bootmem_range(machine, zone, start, split)
    # ClearPageReserved, PG_highmem, set_page_count(page, 1), __free_page: count 0
    mem_map.flags[split:end] = bytes([PG_highmem]) * kept
    mem_map.count[split:end] = array("i", bytes(4 * kept))
    pcp.list.extendleft(range(split, end))
    pcp.count = kept
    machine.pcp_pages.update(dict.fromkeys(range(split, end), 0))
    zone.freed_at_boot += kept
