"""The adapter protocol: what another allocator implementation provides to be checked.

An implementation provides any subset of three parts (prose: spec/conformance.md):

* **page allocator** -- `init(nr_pages, max_order)`, `alloc_pages(order) -> pfn | None`,
  `free_pages(pfn, order)`; optionally `free_counts() -> list[int]` (nr_free per
  order, as /proc/buddyinfo shows it) so that coalescing can be observed.
* **object allocator** -- `kmalloc(size) -> addr | None`, `kfree(addr)`; optionally
  `ksize(addr)`. Addresses are byte offsets into the frames 0 .. nr_pages-1.
* **cache allocator** -- `kmem_cache_create(name, size, align, flags) -> handle | None`
  (an int), `kmem_cache_alloc(handle) -> addr | None`, `kmem_cache_free(handle, addr)`,
  `kmem_cache_destroy(handle)`; optionally `slab_layout(handle)`: one
  `[base, colour_offset, mgmt_size, on_slab, num]` list per slab of the cache (byte
  offsets and sizes; on-slab management sits between the colour area and object 0).
* **highmem** -- `kmap(pfn) -> vaddr | None`, `kunmap(pfn)`; optionally
  `pkmap_count() -> list[int]` (the LAST_PKMAP slot counts). The frames 0 .. nr_pages-1
  are highmem pages the caller owns; vaddr is a byte offset into the PKMAP area of
  LAST_PKMAP pages; None only when every slot has users (the kernel would sleep).
* **virtual area allocator** -- `vmalloc_init(vsize)`, `vmalloc(size) -> addr | None`,
  `vfree(addr)`; optionally `vmalloc_to_pfn(addr) -> pfn | None` (the pte lookup).
  Addresses are byte offsets into a virtual range of `vsize` bytes.

The implementation manages frames `0 .. nr_pages-1`, all free after `init`, in one
zone. `init` may be called again on the same object and must discard all earlier
state. Misuse (double free...) is outside the contract: the checker never makes such
calls, except in test vectors for adapters that say `detects_misuse = True` -- those
reject a misuse by raising an exception (its `rule` attribute, if any, names it).

The reference for strict mode is the model itself, booted as a *flat machine*
(`flat_config`): the adapter's frame `p` is the model's pfn `FLAT_BASE + p`. Its page
policy is "buddy" by default; "2.6.12" (`conform --page-policy 2.6.12`) adds
GFP_KERNEL's watermarks and CPU 0's per-CPU hot list, on whole bootmem words of
frames so that the lists start empty (spec/conformance.md section 3a).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from ..model import KernelBug, MachineConfig, boot, page_alloc
from ..model.gfp import GFP_KERNEL
from ..model.profiles import DEFAULT_PROFILE, get_profile

__all__ = [
    "PageAllocator", "ObjectAllocator", "VmallocAllocator", "CacheAllocator",
    "HighmemMapper", "parts_of", "has_free_counts",
    "FLAT_BASE", "MAX_FLAT_PAGES", "FLAT_PAGE_POLICIES", "bootmem_word", "check_flat_size",
    "flat_config", "highmem_config", "ModelPageAllocator",
    "ModelAllocator",
    "Target",
    "load_target", "TargetError",
]


@runtime_checkable
class PageAllocator(Protocol):
    """A buddy-style page allocator over frames 0 .. nr_pages-1."""

    def init(self, nr_pages: int, max_order: int) -> None:
        """Start afresh with every frame free; orders 0 .. max_order-1 are valid."""

    def alloc_pages(self, order: int) -> int | None:
        """2^order contiguous frames: the first pfn, or None (NULL)."""

    def free_pages(self, pfn: int, order: int) -> None:
        """Give back a block returned by alloc_pages(order)."""


@runtime_checkable
class ObjectAllocator(Protocol):
    """kmalloc/kfree over the frames given to init (byte offsets into them)."""

    def init(self, nr_pages: int, max_order: int) -> None: ...
    def kmalloc(self, size: int) -> int | None: ...
    def kfree(self, addr: int) -> None: ...


@runtime_checkable
class VmallocAllocator(Protocol):
    """vmalloc/vfree: areas of a virtual range, backed by the frames given to init."""

    def init(self, nr_pages: int, max_order: int) -> None: ...
    def vmalloc_init(self, vsize: int) -> None: ...
    def vmalloc(self, size: int) -> int | None: ...
    def vfree(self, addr: int) -> None: ...


@runtime_checkable
class CacheAllocator(Protocol):
    """kmem_cache_*: caches of one object size over the frames given to init."""

    def init(self, nr_pages: int, max_order: int) -> None: ...
    def kmem_cache_create(self, name: str, size: int, align: int, flags: int) -> int | None: ...
    def kmem_cache_alloc(self, handle: int) -> int | None: ...
    def kmem_cache_free(self, handle: int, addr: int) -> None: ...
    def kmem_cache_destroy(self, handle: int) -> None: ...


@runtime_checkable
class HighmemMapper(Protocol):
    """kmap/kunmap of the frames given to init, taken as highmem pages."""

    def init(self, nr_pages: int, max_order: int) -> None: ...
    def kmap(self, pfn: int) -> int | None: ...
    def kunmap(self, pfn: int) -> None: ...


_PART_METHODS = {
    "page": ("init", "alloc_pages", "free_pages"),
    "object": ("init", "kmalloc", "kfree"),
    "vmalloc": ("init", "vmalloc_init", "vmalloc", "vfree"),
    "cache": ("init", "kmem_cache_create", "kmem_cache_alloc", "kmem_cache_free",
              "kmem_cache_destroy"),
    "highmem": ("init", "kmap", "kunmap"),
}


def parts_of(adapter) -> list[str]:
    """The parts ("page", "object", "vmalloc", "cache", "highmem") an adapter implements."""
    return [part for part, methods in _PART_METHODS.items()
            if all(callable(getattr(adapter, m, None)) for m in methods)]


def has_free_counts(adapter) -> bool:
    return callable(getattr(adapter, "free_counts", None))


# --- the flat reference machine ---------------------------------------------------

# The model keeps mem_map in boot memory (model/boot.py), so a machine whose frames are
# *all* free does not exist. The flat machine boots with the seed's arch/um rule
# (arch/um/kernel/physmem.c init_maps: alloc_bootmem_low_pages, goal 0 -- not i386's
# alloc_node_mem_map, whose 16 MiB goal would put mem_map among the adapter's frames
# once the machine passes 16 MiB) and puts mem_map (and padding, reserved) in
# ZONE_DMA = [0, FLAT_BASE) and the adapter's frames in ZONE_NORMAL = [FLAT_BASE,
# FLAT_BASE + nr_pages): one zone, every frame free. FLAT_BASE is 2^(MAX_ORDER-1), so
# buddy alignment within the zone is also alignment of the absolute pfn.
FLAT_BASE = 1024
MAX_FLAT_PAGES = 65536
# The page policies the flat machine can boot with (`conform --page-policy`): "buddy"
# (the default: 2.6.12's buddy core alone) or "2.6.12" (__alloc_pages with GFP_KERNEL:
# watermarks, and order-0 frames through CPU 0's per-CPU hot list).
FLAT_PAGE_POLICIES = ("buddy", "2.6.12")


def bootmem_word(profile: str = DEFAULT_PROFILE) -> int:
    """Frames per word of the bootmem bitmap: BITS_PER_LONG (32 on i386, 64 on x86_64)."""
    return get_profile(profile).VIRT_BITS


def check_flat_size(nr_pages: int, profile: str = DEFAULT_PROFILE,
                    page_policy: str = "buddy") -> None:
    """ValueError unless `nr_pages` frames make a flat machine of that page policy.

    With "2.6.12" the frames must fill whole bootmem words: 2.6.12 mm/bootmem.c
    free_all_bootmem_core frees a wholly free word of BITS_PER_LONG frames as one
    order-5 block (__free_pages(page, 5): straight to the buddy lists), but the frames
    of a partly free word one by one (__free_page: onto CPU 0's per-CPU hot list). The
    flat machine's DMA zone is reserved whole and FLAT_BASE is a multiple of the word,
    so with nr_pages a multiple of it boot frees only whole words and the per-CPU lists
    start empty -- the state the contract states (spec/conformance.md section 3a).
    """
    if page_policy not in FLAT_PAGE_POLICIES:
        raise ValueError(f"page policy must be one of {', '.join(FLAT_PAGE_POLICIES)}, "
                         f"not {page_policy!r}")
    if type(nr_pages) is not int or not 1 <= nr_pages <= MAX_FLAT_PAGES:
        raise ValueError(f"nr_pages must be an integer in 1..{MAX_FLAT_PAGES}, not {nr_pages!r}")
    word = bootmem_word(profile)
    if page_policy == "2.6.12" and nr_pages % word:
        raise ValueError(f"with page policy 2.6.12 the flat machine has a multiple of "
                         f"{word} frames (whole bootmem words, so that boot leaves the "
                         f"per-CPU lists empty), not {nr_pages}")


def flat_config(nr_pages: int, profile: str = DEFAULT_PROFILE,
                page_policy: str = "buddy") -> MachineConfig:
    """The boot configuration of the flat reference machine for `nr_pages` frames."""
    prof = get_profile(profile)
    check_flat_size(nr_pages, profile, page_policy)
    total = FLAT_BASE + nr_pages
    map_frames = -(-total * prof.STRUCT_PAGE_SIZE // prof.PAGE_SIZE)
    reserved = ((map_frames, FLAT_BASE),) if map_frames < FLAT_BASE else ()
    # page_policy "buddy" (default): the contract's single-zone page allocator has no gfp
    # flags, CPUs or watermarks, so the reference is 2.6.12's buddy core; "2.6.12"
    # (opt-in): GFP_KERNEL on CPU 0 with watermarks and per-CPU lists (spec/conformance.md)
    return MachineConfig(profile=profile, page_size=prof.PAGE_SIZE, phys_pages=total,
                         highmem_pages=0, iomem_pages=0, reserved=reserved,
                         max_dma_pfn=FLAT_BASE, page_policy=page_policy,
                         mem_map_alloc="init_maps")


def flat_boot_line(nr_pages: int, profile: str = DEFAULT_PROFILE,
                   page_policy: str = "buddy") -> dict:
    """The scenario boot line of the flat machine (JSON-able)."""
    cfg = flat_config(nr_pages, profile, page_policy)
    line = {"op": "boot", "profile": cfg.profile, "phys_pages": cfg.phys_pages,
            "highmem_pages": 0, "max_dma_pfn": cfg.max_dma_pfn,
            "reserved": [list(r) for r in cfg.reserved], "page_policy": cfg.page_policy,
            "mem_map_alloc": cfg.mem_map_alloc}
    return line


# `__free_pages` inside a class body would be name-mangled: bind it here.
_free_pages_model = getattr(page_alloc, "__free_pages")


class ModelPageAllocator:
    """The model's Linux policy as an adapter: the strict-mode reference.

    Misuse raises the model's KernelBug (with `.rule`), leaving the state unchanged.
    """

    name = "model"
    detects_misuse = True

    def __init__(self, profile: str = DEFAULT_PROFILE, page_policy: str = "buddy"):
        if page_policy not in FLAT_PAGE_POLICIES:
            raise ValueError(f"page policy must be one of {', '.join(FLAT_PAGE_POLICIES)}, "
                             f"not {page_policy!r}")
        self.profile = profile
        self.page_policy = page_policy
        self.machine = None
        self.nr_pages = 0

    def init(self, nr_pages: int, max_order: int) -> None:
        self.machine = boot(flat_config(nr_pages, self.profile, self.page_policy))
        if max_order != self.machine.profile.MAX_ORDER:
            raise ValueError(f"profile {self.profile} has MAX_ORDER "
                             f"{self.machine.profile.MAX_ORDER}, not {max_order}")
        self.nr_pages = nr_pages
        if self.zone.free_pages != nr_pages:
            # boot must leave the adapter's frames untouched (e.g. no eager slab pages)
            raise RuntimeError(f"the flat machine's boot left {self.zone.free_pages} of "
                               f"{nr_pages} frames free in ZONE_NORMAL")
        parked = self.pcp_count()
        if parked:
            # whole bootmem words only (check_flat_size): nothing may start on a list
            raise RuntimeError(f"the flat machine's boot left {parked} frames on the "
                               "per-CPU lists")

    def pcp_count(self) -> int:
        """Frames on the per-CPU lists of ZONE_NORMAL (0 under page policy "buddy")."""
        return sum(p.count for pset in self.zone.pageset for p in pset.pcp)

    def watermark_limits(self) -> tuple[int, int]:
        """(frames a per-CPU list may hold: the hot list's `high`, ZONE_NORMAL's
        pages_min) under page policy 2.6.12; (0, 0) under "buddy" (refine's R5/R8)."""
        if self.page_policy != "2.6.12":
            return 0, 0
        return self.zone.pageset[0].pcp[0].high, self.zone.pages_min

    @property
    def zone(self):
        return self.machine.zones[1]          # ZONE_NORMAL holds every adapter frame

    def alloc_pages(self, order: int) -> int | None:
        page = page_alloc.alloc_pages(self.machine, GFP_KERNEL, order)
        return None if page is None else page.pfn - FLAT_BASE

    def free_pages(self, pfn: int, order: int) -> None:
        if type(pfn) is not int or not 0 <= pfn < self.nr_pages:
            raise KernelBug("bad_pfn", f"pfn {pfn!r} is not one of the {self.nr_pages} frames")
        _free_pages_model(self.machine, self.machine.mem_map + (FLAT_BASE + pfn), order)

    def free_counts(self) -> list[int]:
        return [area.nr_free for area in self.zone.free_area]


class ModelAllocator(ModelPageAllocator):
    """The model's page, object (kmalloc, kmem_cache), vmalloc and kmap layers.

    Object addresses are byte offsets into the implementation's frames (frame p holds
    bytes p*PAGE_SIZE .. p*PAGE_SIZE + PAGE_SIZE-1); vmalloc addresses are byte
    offsets from the start of the vmalloc range (VMALLOC_START), whose size the
    checker gives with `vmalloc_init(vsize)`. The layers are imported when used, so
    the page part never depends on them. kmap needs highmem, which the flat machine
    has not: the highmem part runs on a second machine (`highmem_config`) booted at
    the first kmap, its highmem frames all allocated, frame p = the p-th of them.
    """

    def init(self, nr_pages: int, max_order: int) -> None:
        super().init(nr_pages, max_order)
        self.page_size = self.machine.profile.PAGE_SIZE
        # __va of the implementation's frame 0: PAGE_OFFSET + FLAT_BASE * PAGE_SIZE
        self.kbase = self.machine.profile.PAGE_OFFSET + FLAT_BASE * self.page_size
        self.caches: dict[int, object] = {}
        self.hmachine = None

    # kmalloc (model/kmalloc.py, 2.6.12 mm/slab.c)
    def kmalloc(self, size: int) -> int | None:
        from ..model import kmalloc as km
        addr = km.kmalloc(self.machine, size, GFP_KERNEL)
        return None if addr is None else addr - self.kbase

    def kfree(self, addr: int) -> None:
        from ..model import kmalloc as km
        km.kfree(self.machine, addr + self.kbase)

    def ksize(self, addr: int) -> int:
        from ..model import kmalloc as km
        return km.ksize(self.machine, addr + self.kbase)

    # vmalloc (model/vmalloc.py, 2.6.12 mm/vmalloc.c)
    def vmalloc_size(self) -> int:
        return self.machine.vmalloc_end - self.machine.vmalloc_start

    def vmalloc_init(self, vsize: int) -> None:
        if vsize != self.vmalloc_size():
            raise ValueError(f"the flat machine's vmalloc range has {self.vmalloc_size()} "
                             f"bytes, not {vsize}")

    def vmalloc(self, size: int) -> int | None:
        from ..model import vmalloc as vm
        addr = vm.vmalloc(self.machine, size)
        return None if addr is None else addr - self.machine.vmalloc_start

    def vfree(self, addr: int) -> None:
        from ..model import vmalloc as vm
        vm.vfree(self.machine, addr + self.machine.vmalloc_start)

    def vmalloc_to_pfn(self, addr: int) -> int | None:
        from ..model import vmalloc as vm
        pfn = vm.vmalloc_to_pfn(self.machine, addr + self.machine.vmalloc_start)
        return None if pfn is None else pfn - FLAT_BASE

    # kmem_cache_* (model/slab.py, 2.6.12 mm/slab.c); a handle is the creation number
    def kmem_cache_create(self, name: str, size: int, align: int, flags: int) -> int | None:
        from ..model import slab
        cachep = slab.kmem_cache_create(self.machine, name, size, align, flags)
        if cachep is None:
            return None
        handle = len(self.caches) + 1
        self.caches[handle] = cachep
        return handle

    def kmem_cache_alloc(self, handle: int) -> int | None:
        from ..model import slab
        addr = slab.kmem_cache_alloc(self.machine, self.caches[handle], GFP_KERNEL)
        return None if addr is None else addr - self.kbase

    def kmem_cache_free(self, handle: int, addr: int) -> None:
        from ..model import slab
        slab.kmem_cache_free(self.machine, self.caches[handle], addr + self.kbase)

    def kmem_cache_destroy(self, handle: int) -> None:
        from ..model import slab
        slab.kmem_cache_destroy(self.machine, self.caches[handle])

    def slab_layout(self, handle: int) -> list[list[int]]:
        """[base, colour offset, management bytes, on-slab, num] per slab, by base."""
        cachep = self.caches[handle]
        out = []
        for pfn in sorted(cachep.slabs):
            s = cachep.slabs[pfn]
            on_slab = s.mgmt is None
            colour = s.colouroff - (cachep.slab_size if on_slab else 0)
            out.append([(pfn - FLAT_BASE) * self.page_size, colour, cachep.slab_size,
                        int(on_slab), cachep.num])
        return out

    # kmap/kunmap (model/highmem.py, 2.6.12 mm/highmem.c) on the highmem machine
    def _highmem(self):
        if self.hmachine is None:
            from ..model import page_alloc as pa
            from ..model.gfp import GFP_HIGHUSER
            self.hmachine = boot(highmem_config(self.nr_pages, self.profile))
            pages = [pa.alloc_page(self.hmachine, GFP_HIGHUSER) for _ in range(self.nr_pages)]
            self.hpages = sorted(pages, key=lambda page: page.pfn)
        return self.hmachine

    def kmap(self, pfn: int) -> int | None:
        from ..model import highmem as hm
        machine = self._highmem()
        try:
            vaddr = hm.kmap(machine, self.hpages[pfn])
        except KernelBug as exc:
            if exc.rule == "kmap_exhausted":
                return None          # the kernel would sleep until a kunmap
            raise
        return vaddr - machine.pkmap_base

    def kunmap(self, pfn: int) -> None:
        from ..model import highmem as hm
        hm.kunmap(self._highmem(), self.hpages[pfn])

    def pkmap_count(self) -> list[int]:
        return list(self._highmem().pkmap_count)


# A small machine with ZONE_DMA, ZONE_NORMAL and nr_pages of ZONE_HIGHMEM for kmap.
HIGHMEM_LOW_PAGES = 64


def highmem_config(nr_pages: int, profile: str = DEFAULT_PROFILE) -> MachineConfig:
    prof = get_profile(profile)
    return MachineConfig(profile=profile, page_size=prof.PAGE_SIZE,
                         phys_pages=HIGHMEM_LOW_PAGES + nr_pages, highmem_pages=nr_pages,
                         max_dma_pfn=16, page_policy="buddy")


@dataclass(frozen=True)
class _ModelFactory:
    """ModelAllocator with a page policy; picklable for the isolated child."""

    page_policy: str

    def __call__(self):
        return _PolicyModelAllocator(page_policy=self.page_policy)


class _PolicyModelAllocator(ModelAllocator):
    """The `model` target under a page policy other than "buddy": it declares the
    machine sizes it can boot (whole bootmem words), so that misuse vectors on other
    sizes are skipped rather than failed."""

    def init(self, nr_pages: int, max_order: int) -> None:
        policy = self.page_policy
        if not self.supported_pages(nr_pages):
            # the highmem part's 16 frames: kmap runs on the highmem machine, which
            # boots "buddy" anyway; the flat machine only stands by
            self.page_policy = "buddy"
        try:
            super().init(nr_pages, max_order)
        finally:
            self.page_policy = policy

    def supported_pages(self, nr_pages: int) -> bool:
        try:
            check_flat_size(nr_pages, self.profile, self.page_policy)
        except ValueError:
            return False
        return True


# --- loading a target ---------------------------------------------------------------

class TargetError(Exception):
    """A TARGET that names no loadable adapter."""


@dataclass(frozen=True)
class Target:
    """A loadable implementation: `spec` re-creates it in another process."""

    spec: str
    factory: Callable[[], object]

    @property
    def name(self) -> str:
        return os.path.basename(self.spec) if self.spec.endswith(".so") else self.spec


def _module_from_path(path: str):
    name = "kmemspec_target_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_target(spec: str, page_policy: str = "buddy") -> Target:
    """`pkg.module:factory`, `path/file.py:factory`, `path/lib.so` or `model` (the model
    booted with `page_policy`, so that it is its own strict reference)."""
    if spec == "model":
        if page_policy == "buddy":
            return Target(spec, ModelAllocator)
        return Target(spec, _ModelFactory(page_policy))
    if spec.endswith(".so") or ".so." in os.path.basename(spec):
        if not os.path.isfile(spec):
            raise TargetError(f"{spec}: no such shared library")
        from .ctypes_adapter import CtypesAdapter, check_library
        path = os.path.abspath(spec)
        check_library(path)
        return Target(path, lambda: CtypesAdapter(path))
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"{spec}: expected module:factory, file.py:factory or a .so path")
    try:
        if module_name.endswith(".py"):
            if not os.path.isfile(module_name):
                raise TargetError(f"{module_name}: no such file")
            module = _module_from_path(module_name)
        else:
            module = importlib.import_module(module_name)
    except TargetError:
        raise
    except Exception as exc:    # the target's own import failing is bad input to us
        raise TargetError(f"{module_name}: cannot import ({type(exc).__name__}: {exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise TargetError(f"{spec}: {attr!r} is not a callable in {module_name}")
    return Target(spec, factory)
