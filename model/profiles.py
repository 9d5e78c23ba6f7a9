"""Kernel profiles: every constant the model uses, in one place per kernel.

Linux differs by configuration more than by version, so the model is one body of
code driven by a profile. Each constant names the kernel source it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Profile:
    name: str
    # include/asm-i386/page.h (2.6.12) / arch/x86/include/asm/page_types.h (6.x)
    PAGE_SHIFT: int
    # include/linux/mmzone.h: MAX_ORDER is the number of free_area lists, so the top
    # order is MAX_ORDER - 1 (6.4+ calls the top order MAX_PAGE_ORDER, inclusive).
    MAX_ORDER: int
    # include/asm-i386/page.h: __PAGE_OFFSET; arch/x86 page_64_types.h for x86_64
    PAGE_OFFSET: int
    # width of a virtual address (bits) for the Z3 encodings and range checks
    VIRT_BITS: int
    # zone names, lowest first, and the pfn at which each zone *ends* in the
    # architecture's layout (None: until the end of memory / lowmem)
    zone_names: tuple[str, ...]
    # include/asm-i386/dma.h: MAX_DMA_ADDRESS = PAGE_OFFSET + 16 MiB
    MAX_DMA_PFN: int
    # arch/i386/mm/init.c / include/asm-i386/page.h: MAXMEM = 1 GiB - 128 MiB vmalloc
    # reserve; lowmem beyond it is impossible (None: no limit, no highmem)
    MAXMEM_PFN: int | None
    has_highmem: bool
    # include/linux/mm.h (2.6.12): sizeof(struct page) on this arch
    STRUCT_PAGE_SIZE: int
    # include/asm-i386/cache.h: L1_CACHE_SHIFT 7 for CONFIG_MPENTIUM4
    L1_CACHE_BYTES: int
    # include/linux/kmalloc_sizes.h (2.6.12) / mm/slab_common.c kmalloc_info (6.x)
    kmalloc_sizes: tuple[int, ...]
    # slab allocator flavour: "slab" (2.6 mm/slab.c, colouring) or "slub" (no colour)
    slab_flavour: str
    # include/linux/slab.h (6.x): KMALLOC_MAX_CACHE_SIZE = 2 * PAGE_SIZE; larger
    # kmalloc goes to the page allocator. None: larger requests fail (2.6 SLAB).
    KMALLOC_MAX_CACHE_SIZE: int | None
    # i386 2.6.12 mm/slab.c: sizeof(kmem_bufctl_t) and sizeof(struct slab)
    # the highest zone a request may use, indexed by gfp_zone() (ZONE_DMA,
    # ZONE_NORMAL, ZONE_HIGHMEM of model/gfp.py); the zonelist falls back downwards
    gfp_zone_top: tuple[int, int, int] = (0, 1, 2)
    # the kernel's CONFIG_NR_CPUS (both profiles are CONFIG_SMP builds: slab's shared
    # arrays, sizeof(kmem_cache_t) with array[NR_CPUS]); a machine boots 1..NR_CPUS CPUs
    NR_CPUS: int = 8
    BUFCTL_SIZE: int = 2
    STRUCT_SLAB_SIZE: int = 24
    # how boot places mem_map (model/boot.py: MEM_MAP_ALLOCS): "alloc_node_mem_map"
    # (2.6.12 mm/page_alloc.c: (spanned + 1) struct pages from alloc_bootmem_node, goal
    # __pa(MAX_DMA_ADDRESS)) or "init_maps" (arch/um/kernel/physmem.c: total_pages struct
    # pages from alloc_bootmem_low_pages, goal 0 -- the seed's rule)
    MEM_MAP_ALLOC: str = "alloc_node_mem_map"
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def PAGE_SIZE(self) -> int:
        return 1 << self.PAGE_SHIFT

    @property
    def top_order(self) -> int:
        """The largest order a single request may ask for (MAX_ORDER - 1)."""
        return self.MAX_ORDER - 1


LINUX_2_6_I386 = Profile(
    name="linux-2.6-i386",
    PAGE_SHIFT=12,
    MAX_ORDER=11,
    PAGE_OFFSET=0xC0000000,
    VIRT_BITS=32,
    zone_names=("DMA", "Normal", "HighMem"),
    MAX_DMA_PFN=(16 * MiB) >> 12,
    MAXMEM_PFN=(896 * MiB) >> 12,
    has_highmem=True,
    STRUCT_PAGE_SIZE=32,
    L1_CACHE_BYTES=128,
    # 32 (PAGE_SIZE 4096), 64, no 96 (L1 >= 64), 128, no 192 (L1 >= 128), 256 .. 128 KiB:
    # the seed's 13 general caches.
    kmalloc_sizes=(32, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
                   16384, 32768, 65536, 131072),
    slab_flavour="slab",
    KMALLOC_MAX_CACHE_SIZE=None,
)

LINUX_6X_X86_64 = Profile(
    name="linux-6.x-x86_64",
    PAGE_SHIFT=12,
    MAX_ORDER=11,                      # MAX_PAGE_ORDER 10, inclusive (6.4+)
    PAGE_OFFSET=0xFFFF888000000000,    # __PAGE_OFFSET_BASE_L4 without KASLR
    VIRT_BITS=64,
    zone_names=("DMA", "DMA32", "Normal"),
    MAX_DMA_PFN=(16 * MiB) >> 12,
    MAXMEM_PFN=None,
    has_highmem=False,
    STRUCT_PAGE_SIZE=64,
    L1_CACHE_BYTES=64,
    kmalloc_sizes=(8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192),
    slab_flavour="slub",
    KMALLOC_MAX_CACHE_SIZE=8192,
    gfp_zone_top=(0, 2, 2),            # DMA; Normal; no highmem: Normal
    BUFCTL_SIZE=4,
    STRUCT_SLAB_SIZE=0,
    # 6.x x86_64 keeps struct pages in a sparse vmemmap, which the model does not have:
    # this profile keeps the seed's arch/um rule (one array at the bottom of low memory)
    MEM_MAP_ALLOC="init_maps",
    extra={"MAX_DMA32_PFN": (4 * GiB) >> 12},
)

# Linux 6.x on i386 (PAE, VMSPLIT_3G), as Debian's 686-pae kernels: the same SLUB
# kmalloc classes as x86_64 (mm/slab_common.c: kmalloc_info; KMALLOC_MIN_SIZE 8),
# the direct map at PAGE_OFFSET 0xc0000000 (arch/x86/Kconfig: PAGE_OFFSET for
# VMSPLIT_3G), low memory up to max_low_pfn (at most MAXMEM, 896 MiB less the vmalloc
# reserve: arch/x86/mm/init_32.c: find_low_pfn_range) and highmem above it, whose
# pages have no linear address. Used by `kmemspec trace` only (not a boot profile).
LINUX_6X_I386 = Profile(
    name="linux-6.x-i386",
    PAGE_SHIFT=12,
    MAX_ORDER=11,                      # orders 0..10 (6.1: MAX_ORDER 11, exclusive)
    PAGE_OFFSET=0xC0000000,
    VIRT_BITS=32,
    zone_names=("DMA", "Normal", "HighMem"),
    MAX_DMA_PFN=(16 * MiB) >> 12,
    MAXMEM_PFN=(896 * MiB) >> 12,
    has_highmem=True,
    STRUCT_PAGE_SIZE=40,
    L1_CACHE_BYTES=64,
    kmalloc_sizes=(8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192),
    slab_flavour="slub",
    KMALLOC_MAX_CACHE_SIZE=8192,
    BUFCTL_SIZE=4,
    STRUCT_SLAB_SIZE=0,
    MEM_MAP_ALLOC="init_maps",         # not a boot profile (trace only)
)

PROFILES: dict[str, Profile] = {p.name: p for p in (LINUX_2_6_I386, LINUX_6X_X86_64)}
DEFAULT_PROFILE = LINUX_2_6_I386.name


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown profile {name!r} (known: {known})") from None
