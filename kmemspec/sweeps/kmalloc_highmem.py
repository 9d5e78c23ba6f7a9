"""Sweep rows for model/kmalloc.py and model/highmem.py (spec/sweeps.md, "kmalloc.py and
highmem.py").

kmalloc / kfree / ksize are swept on both boot profiles: linux-2.6-i386 (Linux 2.6.12
mm/slab.c __kmalloc, kfree, ksize; include/linux/kmalloc_sizes.h) and linux-6.x-x86_64
(SLUB: 6.1 mm/slab_common.c kmalloc_info, kmalloc_slab, kmalloc_large, __ksize, kfree;
include/linux/slab.h ZERO_SIZE_PTR). The permanent kmaps are swept on linux-2.6-i386
(2.6.12 mm/highmem.c kmap_high, map_new_virtual, flush_all_zero_pkmaps, kunmap_high,
page_address, set_page_address; arch/i386/mm/highmem.c kmap, kunmap;
include/asm-i386/highmem.h PKMAP_BASE, PKMAP_NR, PKMAP_ADDR, LAST_PKMAP 1024).

Every expected value below is computed here from the kernel's rule (the class table,
get_order, PKMAP_ADDR, the slot scan), never by calling the model; a misuse row expects
the spec's KernelBug rule (spec/slab.md "Misuse", spec/vmalloc.md section 3) and a
state that pickles to the same bytes as before the calls. A wrong exception type
(TypeError, IndexError, KeyError...) propagates and fails the row.
"""

from __future__ import annotations

import copy
import hashlib
import pickle

from ..facts import Fact

SLAB, SLUB = "linux-2.6-i386", "linux-6.x-x86_64"
# include/linux/kmalloc_sizes.h (2.6.12, L1_CACHE_BYTES 128 on the P4 build the profile
# takes: no 96, no 192) and 6.1 mm/slab_common.c kmalloc_info (KMALLOC_MIN_SIZE 8,
# KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1: up to 8k)
K_SIZES = {SLAB: [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
                  131072],
           SLUB: [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192]}
PAGE_SIZE = 4096
PAGE_OFFSET = {SLAB: 0xC0000000, SLUB: 0xFFFF888000000000}   # i386 3G/1G; x86_64 4-level
ZERO_SIZE_PTR = 16                   # include/linux/slab.h (2.6.22+): ((void *)16)
PKMAP_BASE = 0xFF800000              # include/asm-i386/highmem.h, 4 MiB aligned below the fixmap
LAST_PKMAP = 1024                    # include/asm-i386/highmem.h, no PAE
KMAP_PROT = 0x063                    # PAGE_KERNEL: PRESENT | RW | ACCESSED | DIRTY
# include/linux/gfp.h (2.6.12)
GFP_KERNEL, GFP_DMA, GFP_HIGHUSER, GFP_ZERO, GFP_HIGHMEM = 0xD0, 0x01, 0xD2, 0x8000, 0x02
GFP_COMP = 0x4000


def _boot(profile: str, **kw):
    from ..model.boot import boot
    if profile == SLUB:
        kw.setdefault("highmem_pages", 0)
    kw.setdefault("phys_pages", 8192)
    return boot(profile=profile, **kw)


def _digest(machine) -> str:
    return hashlib.sha256(pickle.dumps(machine.__dict__)).hexdigest()


def _try(call):
    """("ok", value), the KernelBug's rule, "ValueError" (bad input to the model, as for a
    CPU number) or "ConfigError <field>"; any other exception propagates (fails the row)."""
    from ..model.errors import ConfigError, KernelBug
    try:
        return ("ok", call())
    except KernelBug as exc:
        return exc.rule
    except ConfigError as exc:
        return f"ConfigError {exc.field}"
    except ValueError as exc:
        if type(exc) is not ValueError:
            raise
        return "ValueError"


def _misuse(machine, calls) -> tuple[list, bool]:
    """Each call's outcome and whether the state is unchanged by all of them."""
    before = _digest(machine)
    out = [_try(call) for call in calls]
    return out, _digest(machine) == before


def k_class(profile: str, n: int) -> int | None:
    """The smallest class holding n bytes (2.6.12 __find_general_cachep: `while (size >
    cs_size) csizep++`; 6.x kmalloc_slab via size_index / fls(size - 1)); None past the
    largest."""
    return next((s for s in K_SIZES[profile] if s >= n), None)


def k_name(profile: str, size: int, dma: bool) -> str:
    """Cache names: 2.6.12 kmem_cache_init "size-N" / "size-N(DMA)"; 6.1 kmalloc_info
    "kmalloc-N" (1k, 2k, ... from 1024 up) / "dma-kmalloc-N"."""
    if profile == SLAB:
        return f"size-{size}(DMA)" if dma else f"size-{size}"
    short = f"{size >> 10}k" if size >= 1024 else str(size)
    return f"dma-kmalloc-{short}" if dma else f"kmalloc-{short}"


def k_align(profile: str, size: int) -> int:
    """Guaranteed alignment of a kmalloc object: 2.6.12 SLAB_HWCACHE_ALIGN halves the
    128-byte line while the object fits in half (kmem_cache_create); 6.x: power-of-two
    classes naturally aligned (since 5.4), else ARCH_KMALLOC_MINALIGN 8."""
    if profile == SLAB:
        return min(size, 128)
    return size if size & (size - 1) == 0 else 8


def k_get_order(size: int) -> int:
    """include/asm-generic/getorder.h: the smallest order with PAGE_SIZE << order >= size."""
    order = 0
    while PAGE_SIZE << order < size:
        order += 1
    return order


def _cache_name(machine, addr) -> str:
    p = machine.profile
    return machine.slab.page_slab[(addr - p.PAGE_OFFSET) >> p.PAGE_SHIFT].cache.name


def _nr_free(machine) -> list[list[int]]:
    return [[a.nr_free for a in z.free_area] for z in machine.zones]


# --- kmalloc_index / _index_table --------------------------------------------------------

def _index_facts() -> list[Fact]:
    """kmalloc_index(profile, n) for EVERY n from 0 to the largest class + 1 on both
    profiles (and 2^40): the position of the smallest class >= n, None past the last
    (2.6.12 mm/slab.c __find_general_cachep / the CACHE(ULONG_MAX) sentinel; 6.x
    mm/slab_common.c kmalloc_slab, which also maps 0 to the first class's slot)."""
    from ..model import kmalloc as km
    from ..model.profiles import PROFILES

    facts = []
    for name in (SLAB, SLUB):
        sizes = K_SIZES[name]

        def expected(sizes=sizes):
            out = []
            for i, s in enumerate(sizes):
                out.extend([i] * (s + 1 - len(out)))
            return out + [None, None]

        def model(name=name, sizes=sizes):
            profile = PROFILES[name]
            return [km.kmalloc_index(profile, n) for n in range(sizes[-1] + 2)] \
                + [km.kmalloc_index(profile, 1 << 40)]
        facts.append(Fact(f"sweep kmalloc_index: every size 0..{sizes[-1] + 1} ({name})",
                          "mm/slab.c __find_general_cachep; 6.x mm/slab_common.c kmalloc_slab",
                          expected, model))
    return facts


# --- kmalloc: every class boundary, both profiles, GFP_DMA or not ------------------------

def _probe_sizes(profile: str) -> list[int]:
    sizes = K_SIZES[profile]
    probes = {1, sizes[-1]}
    if profile == SLAB:
        probes.add(0)                 # 2.6.12: a size-32 object (no ZERO_SIZE_PTR yet)
    for s in sizes:
        probes.update((s - 1, s, s + 1))
    return sorted(n for n in probes if 0 <= n <= sizes[-1])


def _class_facts() -> list[Fact]:
    """kmalloc(n) for n = 0 (2.6.12), 1, each class - 1, class, class + 1 up to the
    largest class, with GFP_KERNEL and with GFP_DMA: the object's cache (the class's
    size-N / kmalloc-N cache or its DMA twin), ksize = the class size, the object's
    alignment, its address inside the direct map, and the request recorded
    (kmalloc_req). Then each object kfree'd: ksize of it is double_free, the record
    gone, and the next kmalloc of that size on that CPU returns it again (2.6.12
    __cache_free / __cache_alloc: the per-CPU array is a stack; 6.x do_slab_free /
    slab_alloc_node: the freelist head)."""
    facts = []
    for name in (SLAB, SLUB):
        base = _boot(name)

        def expected(name=name):
            out = []
            for dma in (False, True):
                for n in _probe_sizes(name):
                    c = k_class(name, n)
                    out.append((n, dma, k_name(name, c, dma), c, 0, True, n,
                                "double_free", True, True))
            return out

        def model(name=name, base=base):
            from ..model import kmalloc as km
            m = copy.deepcopy(base)
            out = []
            for dma in (False, True):
                for n in _probe_sizes(name):
                    gfp = GFP_KERNEL | (GFP_DMA if dma else 0)
                    addr = km.kmalloc(m, n, gfp)
                    cache, size = _cache_name(m, addr), km.ksize(m, addr)
                    align = k_align(name, k_class(name, n))
                    direct = m.profile.PAGE_OFFSET <= addr < m.high_memory
                    req = m.slab.kmalloc_req.get(addr)
                    km.kfree(m, addr)
                    after = _try(lambda: km.ksize(m, addr))
                    gone = addr not in m.slab.kmalloc_req
                    again = km.kmalloc(m, n, gfp)
                    out.append((n, dma, cache, size, addr % align, direct, req, after,
                                gone, again == addr))
            return out
        facts.append(Fact(f"sweep kmalloc: every class boundary, GFP_KERNEL and GFP_DMA ({name})",
                          "mm/slab.c __kmalloc, kfree, ksize; 6.x mm/slab_common.c kmalloc_info",
                          expected, model))
    return facts


def _edge_facts() -> list[Fact]:
    """The edges of kmalloc. 2.6.12: kmalloc(0) is a size-32 object, kmalloc(131072) a
    size-131072 one, and anything larger (131073, 2^31, 2^40) finds only the
    CACHE(ULONG_MAX) sentinel: NULL with nothing changed -- not even the slab layer's
    first-use set-up. 6.x: kmalloc(0) is ZERO_SIZE_PTR (16) with nothing changed, and
    ksize / kfree of it do nothing (slab.h ZERO_OR_NULL_PTR); kfree(NULL) and
    ksize(NULL) are no-ops / 0 on both (2.6.12 kfree `if (!objp) return`, ksize
    returns 0 for NULL)."""
    from ..model import kmalloc as km

    def slab_model():
        m = _boot(SLAB)
        before = _digest(m)
        big = [km.kmalloc(m, n, GFP_KERNEL) for n in (131073, 1 << 31, 1 << 40)]
        big += [km.kmalloc(m, 131073, GFP_DMA)]
        untouched = _digest(m) == before and not m.slab.ready
        nulls, same = _misuse(m, [lambda: km.kfree(m, None), lambda: km.kfree(m, 0),
                                  lambda: km.ksize(m, None), lambda: km.ksize(m, 0)])
        a = km.kmalloc(m, 0, GFP_KERNEL)
        b = km.kmalloc(m, 131072, GFP_KERNEL)
        return [big, untouched, nulls, same, _cache_name(m, a), km.ksize(m, a),
                _cache_name(m, b), km.ksize(m, b)]

    def slub_model():
        m = _boot(SLUB)
        km.kmalloc(m, 8, GFP_KERNEL)              # the slab layer in use
        zero, same = _misuse(m, [lambda: km.kmalloc(m, 0, GFP_KERNEL),
                                 lambda: km.kmalloc(m, 0, GFP_DMA),
                                 lambda: km.ksize(m, ZERO_SIZE_PTR),
                                 lambda: km.kfree(m, ZERO_SIZE_PTR),
                                 lambda: km.kfree(m, None), lambda: km.kfree(m, 0),
                                 lambda: km.ksize(m, None), lambda: km.ksize(m, 0)])
        return [zero, same]
    ok_none = ("ok", None)
    return [Fact("sweep kmalloc edges (2.6.12): 0, 131072, past the sentinel, NULL",
                 "mm/slab.c __kmalloc, kfree, ksize; include/linux/kmalloc_sizes.h",
                 lambda: [[None] * 4, True, [ok_none, ok_none, ("ok", 0), ("ok", 0)], True,
                          "size-32", 32, "size-131072", 131072],
                 slab_model),
            Fact("sweep kmalloc edges (6.x): kmalloc(0) is ZERO_SIZE_PTR; kfree/ksize of it, NULL",
                 "6.1 include/linux/slab.h ZERO_SIZE_PTR; mm/slab_common.c kfree, __ksize",
                 lambda: [[("ok", ZERO_SIZE_PTR)] * 2 + [("ok", 0), ok_none, ok_none, ok_none,
                                                        ("ok", 0), ("ok", 0)], True],
                 slub_model)]


def _large_facts() -> list[Fact]:
    """6.x kmalloc above KMALLOC_MAX_CACHE_SIZE (8192): whole pages of order get_order(n)
    from the page allocator (mm/slab_common.c kmalloc_large; 6.8+ __kmalloc_large_node),
    page-aligned, ksize = PAGE_SIZE << order (__ksize: folio_size), kfree gives them
    back (free_large_kmalloc) so every free_area count is as before. n = 8193, 12288,
    16384, 16385, 4 MiB (order 10, the top order) and 4 MiB + 1 (order 11 > MAX_ORDER -
    1: alloc_pages warns and returns NULL, nothing changed but the model's
    alloc_failure note, order_too_large). Misuse (the spec's
    not_slab_object, stricter than 6.x which would free the folio of any address in
    it): kfree / ksize of the block's second page or of its start + 8 (kfree also + 1
    and + PAGE_SIZE - 1), and a second
    kfree of it; state unchanged."""
    from ..model import kmalloc as km
    sizes = [8193, 12288, 16384, 16385, 1 << 22]

    def expected():
        rows = [(n, k_get_order(n), 0, PAGE_SIZE << k_get_order(n), n, 1 << k_get_order(n),
                 True, True) for n in sizes]
        return rows, [None, "order_too_large", True], ["not_slab_object"] * 7 + [True]

    def model():
        m = _boot(SLUB)
        km.kmalloc(m, 8, GFP_KERNEL)
        rows = []
        for n in sizes:
            before = _nr_free(m)
            free_before = sum(z.free_pages for z in m.zones)
            addr = km.kmalloc(m, n, GFP_KERNEL)
            pfn = (addr - m.profile.PAGE_OFFSET) >> m.profile.PAGE_SHIFT
            rows.append((n, m.slab.kmalloc_large.get(pfn), addr % PAGE_SIZE, km.ksize(m, addr),
                         m.slab.kmalloc_req.get(addr),
                         free_before - sum(z.free_pages for z in m.zones), None, None))
            km.kfree(m, addr)
            rows[-1] = rows[-1][:6] + (_nr_free(m) == before, addr not in m.slab.kmalloc_req)
        before, note = _digest(m), m.alloc_failure
        huge = [km.kmalloc(m, (1 << 22) + 1, GFP_KERNEL), m.alloc_failure]
        m.alloc_failure = note            # the model's note of why (spec/buddy.md), not state
        huge.append(_digest(m) == before)
        addr = km.kmalloc(m, 20000, GFP_KERNEL)
        km.kmalloc(m, 20000, GFP_KERNEL)            # a neighbour, so the pages stay apart
        km.kfree(m, km.kmalloc(m, 20000, GFP_KERNEL))
        out, same = _misuse(m, [lambda: km.kfree(m, addr + PAGE_SIZE),
                                lambda: km.kfree(m, addr + 8), lambda: km.kfree(m, addr + 1),
                                lambda: km.kfree(m, addr + PAGE_SIZE - 1),
                                lambda: km.ksize(m, addr + PAGE_SIZE),
                                lambda: km.ksize(m, addr + 8)])
        km.kfree(m, addr)
        again, same2 = _misuse(m, [lambda: km.kfree(m, addr)])
        return rows, huge, out + again + [same and same2]
    return [Fact("sweep kmalloc large (6.x): get_order pages, ksize, kfree, misuse",
                 "6.1 mm/slab_common.c kmalloc_large, free_large_kmalloc, __ksize",
                 expected, model)]


def _kmalloc_misuse_facts() -> list[Fact]:
    """kmalloc misuse on both profiles, on a machine whose slab layer is not yet set up
    and on one where it is: a size that is no size_t (negative, a float, a string,
    None, a bool) is bad_size before any gfp check; a gfp mask with a bit no flag
    defines (negative, 0x10000, 2^20, a string) is bad_gfp (include/linux/gfp.h: all
    2.6.12 flags below 0x10000), also for size 0 and past the largest class;
    __GFP_HIGHMEM is highmem_slab (2.6.12 cache_grow BUG()s on it; 6.x strips it with a
    warning: the spec refuses it), checked before the CPU; a CPU that is not one of the
    machine's is bad input (ValueError). 2.6.12 only: __GFP_ZERO when the cache must
    grow is bad_slab_gfp (cache_grow BUG_ON(flags & ~(SLAB_DMA | SLAB_LEVEL_MASK |
    SLAB_NO_GROW))), but accepted when the CPU's array has an object. Nothing changes."""
    from ..model import kmalloc as km

    def calls(m, name):
        top = K_SIZES[name][-1]
        return [lambda: km.kmalloc(m, -1, GFP_KERNEL),
                lambda: km.kmalloc(m, -(1 << 40), GFP_KERNEL),
                lambda: km.kmalloc(m, 32.0, GFP_KERNEL),
                lambda: km.kmalloc(m, "32", GFP_KERNEL),
                lambda: km.kmalloc(m, None, GFP_KERNEL),
                lambda: km.kmalloc(m, True, GFP_KERNEL),
                lambda: km.kmalloc(m, -1, -1),
                lambda: km.kmalloc(m, -1, GFP_HIGHUSER),
                lambda: km.kmalloc(m, 32, -1),
                lambda: km.kmalloc(m, 32, GFP_KERNEL | 0x10000),
                lambda: km.kmalloc(m, 32, 1 << 20),
                lambda: km.kmalloc(m, 32, "GFP_KERNEL"),
                lambda: km.kmalloc(m, 32, None),
                lambda: km.kmalloc(m, 0, -1),
                lambda: km.kmalloc(m, top + 1, 1 << 16),
                lambda: km.kmalloc(m, 32, GFP_HIGHUSER),
                lambda: km.kmalloc(m, 32, GFP_HIGHMEM),
                lambda: km.kmalloc(m, 0, GFP_HIGHUSER),
                lambda: km.kmalloc(m, top + 1, GFP_HIGHUSER),
                lambda: km.kmalloc(m, 32, GFP_HIGHUSER, cpu=7),
                lambda: km.kmalloc(m, 32, GFP_KERNEL, cpu=1),
                lambda: km.kmalloc(m, 32, GFP_KERNEL, cpu=-1),
                lambda: km.kmalloc(m, 32, 0x10000, cpu=1)]
    want = ["bad_size"] * 8 + ["bad_gfp"] * 7 + ["highmem_slab"] * 5 + ["ValueError"] * 2 \
        + ["bad_gfp"]

    def model(name):
        fresh = _boot(name)
        out = [_misuse(fresh, calls(fresh, name))]
        used = _boot(name)
        km.kmalloc(used, 64, GFP_KERNEL)
        out.append(_misuse(used, calls(used, name)))
        return out

    def zero_model():
        out = []
        m = _boot(SLAB)
        out.append(_misuse(m, [lambda: km.kmalloc(m, 32, GFP_KERNEL | GFP_ZERO)]))
        km.kmalloc(m, 4096, GFP_KERNEL)
        out.append(_misuse(m, [lambda: km.kmalloc(m, 8192, GFP_KERNEL | GFP_ZERO)]))
        km.kfree(m, km.kmalloc(m, 4096, GFP_KERNEL))     # one object in the CPU array
        addr = _try(lambda: km.kmalloc(m, 4096, GFP_KERNEL | GFP_ZERO))
        out.append((addr[0], _cache_name(m, addr[1])))
        return out
    return [Fact(f"sweep kmalloc misuse: size, gfp, highmem, cpu ({name})",
                 "mm/slab.c __kmalloc, cache_grow; include/linux/gfp.h",
                 lambda: [(want, True), (want, True)], lambda name=name: model(name))
            for name in (SLAB, SLUB)] + [
            Fact("sweep kmalloc __GFP_ZERO (2.6.12): bad_slab_gfp only when the cache grows",
                 "mm/slab.c cache_grow, __cache_alloc",
                 lambda: [(["bad_slab_gfp"], True), (["bad_slab_gfp"], True), ("ok", "size-4096")],
                 zero_model)]


def _free_misuse_facts() -> list[Fact]:
    """kfree and ksize of everything that is not a live kmalloc object, both profiles:
    an object already freed (double_free), an address inside an object (+8 and
    + size - 1: not_object_start), a page from the page allocator, a vmalloc address
    and page_addr + 8
    (vmalloc: 2.6.12 only), an address below PAGE_OFFSET (ZERO_SIZE_PTR under 2.6.12, which
    has none: 16 is a plain bad pointer; -1, -4096, PAGE_OFFSET - 1), high_memory,
    PAGE_OFFSET itself (a reserved frame), and a non-int
    (a string, a float -- 16.0 too --, a bytes, True, False), a small int that is not
    ZERO_SIZE_PTR (8, 15, 17), the object's physical address (__pa): not_slab_object; the slab layer's own objects
    (a cache descriptor): slab_internal_object. kfree(NULL, cpu) on a CPU that is not
    one of the machine's is bad input even for NULL (the CPU is checked first).
    Nothing changes."""
    from ..model import kmalloc as km, page_alloc as pa

    def model(name):
        m = _boot(name)
        p = m.profile
        a = km.kmalloc(m, 64, GFP_KERNEL)
        freed = km.kmalloc(m, 64, GFP_KERNEL)
        km.kmalloc(m, 64, GFP_KERNEL)
        km.kfree(m, freed)
        page = pa.alloc_pages(m, GFP_KERNEL, 0)
        page_addr = p.PAGE_OFFSET + (page.pfn << p.PAGE_SHIFT)
        internal = next(iter(m.slab.internal))
        bad = [freed, a + 8, a + 63, page_addr, page_addr + 8, -1, -4096, p.PAGE_OFFSET - 1,
               p.PAGE_OFFSET, m.high_memory, a - p.PAGE_OFFSET, "0x10", 1.5, 16.0, b"\x10",
               True, False, 8, 15, 17]
        if name == SLAB:
            from ..model import vmalloc as vm
            bad += [vm.vmalloc(m, PAGE_SIZE), ZERO_SIZE_PTR]
        bad.append(internal)
        calls = [lambda x=x: km.kfree(m, x) for x in bad] \
            + [lambda x=x: km.ksize(m, x) for x in bad] \
            + [lambda: km.kfree(m, None, cpu=1), lambda: km.kfree(m, a, cpu=1),
               lambda: km.kfree(m, 0, cpu="0")]
        return _misuse(m, calls)

    def want(name):
        rules = ["double_free", "not_object_start", "not_object_start"] \
            + ["not_slab_object"] * (17 + (2 if name == SLAB else 0)) + ["slab_internal_object"]
        return rules + rules + ["ValueError"] * 3, True
    return [Fact(f"sweep kfree / ksize misuse: every kind of bad address ({name})",
                 "mm/slab.c kfree, ksize, __cache_free; 6.x mm/slab_common.c kfree",
                 lambda name=name: want(name), lambda name=name: model(name))
            for name in (SLAB, SLUB)]


def _cpu_facts() -> list[Fact]:
    """kmalloc and kfree on a named CPU (2.6.12 __cache_alloc / __cache_free use the
    calling CPU's array, a stack): on a 2-CPU machine an object kfree'd on
    CPU 1 is what the next kmalloc of its class on CPU 1 returns, while CPU 0's next
    kmalloc returns another object; kmalloc on CPU 1 after a CPU-0 kfree likewise."""
    from ..model import kmalloc as km

    def model(name):
        m = _boot(name, cpus=2)
        a = km.kmalloc(m, 100, GFP_KERNEL, cpu=0)
        b = km.kmalloc(m, 100, GFP_KERNEL, cpu=1)
        km.kfree(m, a, cpu=1)
        on0 = km.kmalloc(m, 100, GFP_KERNEL, cpu=0)
        on1 = km.kmalloc(m, 100, GFP_KERNEL, cpu=1)
        km.kfree(m, b, cpu=0)
        b1 = km.kmalloc(m, 100, GFP_KERNEL, cpu=1)
        b0 = km.kmalloc(m, 100, GFP_KERNEL, cpu=0)
        return [on0 != a, on1 == a, b1 != b, b0 == b]
    return [Fact("sweep kmalloc / kfree on CPU 1 of 2 (2.6.12)",
                 "mm/slab.c __cache_alloc, __cache_free (ac_data of the calling CPU)",
                 lambda: [True] * 4, lambda: model(SLAB))]


# --- highmem -----------------------------------------------------------------------------

def _hm_machine(**kw):
    from ..model import page_alloc as pa
    m = _boot(SLAB, highmem_pages=2048, **kw)
    return m, pa


def _kmap_boot_facts() -> list[Fact]:
    """After boot (2.6.12 mm/highmem.c: pkmap_count[] and last_pkmap_nr are zeroed
    statics; arch/i386/mm/init.c permanent_kmaps_init makes the pkmap pte table):
    1024 counts all 0, last_pkmap_nr 0, pkmap_base PKMAP_BASE (0xff800000), the pkmap
    pte table is the one in pgd entry PKMAP_BASE >> 22 and is empty; PKMAP_NR at every
    slot boundary (slot k's first and last byte, k = 0, 1, 2, 511, 1022, 1023) is k
    (include/asm-i386/highmem.h: (virt - PKMAP_BASE) >> PAGE_SHIFT)."""
    from ..model import highmem as hm

    def model():
        m, _ = _hm_machine()
        counts = m.pkmap_count
        table = m.pkmap_page_table
        nr = [hm.PKMAP_NR(m, PKMAP_BASE + (k << 12) + off)
              for k in (0, 1, 2, 511, 1022, 1023) for off in (0, 1, 4095)]
        return [len(counts), sum(counts), max(counts), m.last_pkmap_nr, m.pkmap_base,
                table is m.swapper_pg_dir[PKMAP_BASE >> 22], len(table), sum(table), nr]
    return [Fact("sweep kmap boot state and PKMAP_NR at every slot boundary",
                 "mm/highmem.c pkmap_count, last_pkmap_nr; include/asm-i386/highmem.h PKMAP_NR",
                 lambda: [LAST_PKMAP, 0, 0, 0, PKMAP_BASE, True, LAST_PKMAP, 0,
                          [k for k in (0, 1, 2, 511, 1022, 1023) for _ in range(3)]],
                 model)]


def _slot_state(m, pfns):
    """(slot, count, pte, htable address) of each pfn's mapping, page_address None -> None."""
    out = []
    for pfn in pfns:
        vaddr = m.page_address_htable.get(pfn)
        if vaddr is None:
            out.append(None)
            continue
        nr = (vaddr - PKMAP_BASE) >> 12
        out.append((nr, m.pkmap_count[nr], m.pkmap_page_table[nr]))
    return out


def _kmap_order_facts() -> list[Fact]:
    """The slot scan and the counts (2.6.12 mm/highmem.c): kmap of three highmem pages
    A, B, C takes slots 1, 2, 3 (last_pkmap_nr starts at 0), each pte (pfn << 12) |
    kmap_prot, count 2 (map_new_virtual sets 1, kmap_high adds the user), and the
    address PKMAP_ADDR(slot); kmap of A again returns the same address, count 3;
    kunmap of A twice brings it to 1 and the page keeps its address (no flush before
    the scan wraps); a third kunmap is kunmap_unbalanced (kunmap_high BUG()s when the
    count would reach 0), state unchanged; kmap of A now reuses its unflushed slot
    (count 2, last_pkmap_nr still 3); D then takes slot 4. kmap_high and kunmap_high
    called directly count the same way (E takes slot 5, and D, kunmapped to count 1,
    keeps its slot: only a wrap to slot 0 flushes)."""
    from ..model import highmem as hm

    def model():
        m, pa = _hm_machine()
        A, B, C, D, E = pa.alloc_pages_bulk(m, GFP_HIGHUSER, 5)
        page = lambda pfn: m.mem_map + pfn          # noqa: E731
        addrs = [hm.kmap(m, page(p)) for p in (A, B, C)]
        first = [addrs, _slot_state(m, [A, B, C]), m.last_pkmap_nr,
                 [hm.page_address(m, page(p)) for p in (A, B, C)]]
        again = hm.kmap(m, page(A))
        third = _slot_state(m, [A])
        hm.kunmap(m, page(A))
        hm.kunmap(m, page(A))
        lazy = [_slot_state(m, [A]), hm.page_address(m, page(A))]
        bug = _misuse(m, [lambda: hm.kunmap(m, page(A))])
        reuse = [hm.kmap(m, page(A)), _slot_state(m, [A]), m.last_pkmap_nr]
        d = [hm.kmap(m, page(D)), m.last_pkmap_nr]
        hm.kunmap(m, page(D))
        direct = [hm.kmap_high(m, E), hm.kmap_high(m, E), _slot_state(m, [E, D])]
        hm.kunmap_high(m, E)
        direct.append(_slot_state(m, [E]))
        return [first, again, third, lazy, bug, reuse, d, direct]

    def expected():
        m, pa = _hm_machine()
        A, B, C, D, E = pa.alloc_pages_bulk(m, GFP_HIGHUSER, 5)   # the frames, not answers
        addr = lambda nr: PKMAP_BASE + (nr << 12)    # noqa: E731 (PKMAP_ADDR)
        pte = lambda pfn: (pfn << 12) | KMAP_PROT    # noqa: E731
        return [[[addr(1), addr(2), addr(3)],
                 [(1, 2, pte(A)), (2, 2, pte(B)), (3, 2, pte(C))], 3,
                 [addr(1), addr(2), addr(3)]],
                addr(1), [(1, 3, pte(A))], [[(1, 1, pte(A))], addr(1)],
                (["kunmap_unbalanced"], True),
                [addr(1), [(1, 2, pte(A))], 3], [addr(4), 4],
                [addr(5), addr(5), [(5, 3, pte(E)), (4, 1, pte(D))], [(5, 2, pte(E))]]]
    return [Fact("sweep kmap slot order, counts, lazy unmap, reuse of an unflushed slot",
                 "mm/highmem.c kmap_high, map_new_virtual, kunmap_high; arch/i386/mm/highmem.c kmap",
                 expected, model)]


def _kmap_wrap_facts() -> list[Fact]:
    """The wrap (2.6.12 mm/highmem.c map_new_virtual, flush_all_zero_pkmaps): kmap of
    1023 pages P1..P1023 takes slots 1..1023; kunmap of all but P5 and P1023 leaves
    count 1 on the others. The next kmap (R0) wraps to slot 0, which first flushes
    every count-1 slot (count 0, pte cleared, page_address NULL) but not P5 / P1023
    (count 2), and takes slot 0; R1..R5 then take 1, 2, 3, 4 and 6 (5 is in use). A
    direct flush_all_zero_pkmaps now clears exactly the count-1 slots: after kunmap of
    R1 (slot 1) and P1023 (slot 1023) those two, and leaves slot 0 (count 2), slot 5
    and the free slots as they were; last_pkmap_nr is unchanged by it."""
    from ..model import highmem as hm

    def run(m, pa, P, R):
        page = lambda pfn: m.mem_map + pfn          # noqa: E731
        slots = [(hm.kmap(m, page(p)) - PKMAP_BASE) >> 12 for p in P]
        for i, p in enumerate(P):
            if i not in (4, 1022):
                hm.kunmap(m, page(p))
        pre = [hm.page_address(m, page(P[0])) is not None, m.pkmap_count[1]]
        r = [(hm.kmap(m, page(R[0])) - PKMAP_BASE) >> 12]
        mid = [hm.page_address(m, page(P[0])), m.pkmap_count[1], m.pkmap_page_table[1],
               m.pkmap_count[1022], m.last_pkmap_nr]
        r += [(hm.kmap(m, page(p)) - PKMAP_BASE) >> 12 for p in R[1:]]
        after = [[hm.page_address(m, page(P[i])) for i in (0, 1, 511, 1021)],
                 _slot_state(m, [P[4], P[1022]]), m.pkmap_page_table[1000], m.pkmap_count[1000],
                 m.last_pkmap_nr]
        hm.kunmap(m, page(R[1]))
        hm.kunmap(m, page(P[1022]))
        last = m.last_pkmap_nr
        hm.flush_all_zero_pkmaps(m)
        flush = [_slot_state(m, [R[1], P[1022], R[0], P[4], R[5]]), m.last_pkmap_nr == last,
                 m.pkmap_count[1], m.pkmap_page_table[1], m.pkmap_count[1023],
                 m.pkmap_page_table[1023], sum(1 for c in m.pkmap_count if c)]
        return [slots[0], slots[-1], slots == list(range(1, 1024)), pre, mid, r, after, flush]

    def model():
        m, pa = _hm_machine()
        frames = pa.alloc_pages_bulk(m, GFP_HIGHUSER, 1029)
        return run(m, pa, frames[:1023], frames[1023:])

    def expected():
        m, pa = _hm_machine()
        frames = pa.alloc_pages_bulk(m, GFP_HIGHUSER, 1029)       # the frames only
        P, R = frames[:1023], frames[1023:]
        pte = lambda pfn: (pfn << 12) | KMAP_PROT    # noqa: E731
        return [1, 1023, True, [True, 1], [None, 0, 0, 0, 0], [0, 1, 2, 3, 4, 6],
                [[None] * 4, [(5, 2, pte(P[4])), (1023, 2, pte(P[1022]))], 0, 0, 6],
                [[None, None, (0, 2, pte(R[0])), (5, 2, pte(P[4])), (6, 2, pte(R[5]))],
                 True, 0, 0, 0, 0, 6]]
    return [Fact("sweep kmap wrap: flush of count-1 slots, skip of used slots, direct flush",
                 "mm/highmem.c map_new_virtual, flush_all_zero_pkmaps",
                 expected, model)]


def _kmap_full_facts() -> list[Fact]:
    """All 1024 slots with a user (2.6.12 map_new_virtual would sleep; the spec:
    kmap_exhausted before any change): the 1024th kmap after boot takes slot 0 (the
    scan wraps from 1023; nothing to flush), then kmap of a 1025th page is
    kmap_exhausted with the state unchanged, while kmap of a mapped page still works
    (count 3) and kunmap brings it back. After kunmap of the page in slot 7 (count
    1), the 1025th kmap succeeds: the scan runs 1..1023, wraps to 0, flushes slot 7
    and takes it (last_pkmap_nr 7); the page that had slot 7 has no address."""
    from ..model import highmem as hm

    def model():
        m, pa = _hm_machine()
        frames = pa.alloc_pages_bulk(m, GFP_HIGHUSER, 1025)
        page = lambda pfn: m.mem_map + pfn          # noqa: E731
        slots = [(hm.kmap(m, page(p)) - PKMAP_BASE) >> 12 for p in frames[:1024]]
        full = _misuse(m, [lambda: hm.kmap(m, page(frames[1024]))])
        again = [hm.kmap(m, page(frames[0])), m.pkmap_count[1]]
        hm.kunmap(m, page(frames[0]))
        hm.kunmap(m, page(frames[6]))
        got = hm.kmap(m, page(frames[1024]))
        return [slots[:2], slots[1022:], full, again, m.pkmap_count[1], got,
                m.last_pkmap_nr, m.pkmap_count[7], hm.page_address(m, page(frames[6]))]
    return [Fact("sweep kmap with every slot in use: kmap_exhausted, then a freed slot",
                 "mm/highmem.c map_new_virtual, kmap_high",
                 lambda: [[1, 2], [1023, 0], (["kmap_exhausted"], True),
                          [PKMAP_BASE + (1 << 12), 3], 2, PKMAP_BASE + (7 << 12), 7, 2, None],
                 model)]


def _kmap_misuse_facts() -> list[Fact]:
    """kmap / kunmap of every page that is not an allocated highmem page, on a machine
    with 16 frames of I/O memory: a free highmem frame in a buddy block and one on
    CPU 0's hot list (boot frees highmem through it), a free low frame, both
    kmap_free_page (spec/vmalloc.md: 2.6.12 does not check; the spec does); an I/O
    frame: kmap_not_ram (kunmap too); not a struct page: bad_page; a page of another
    machine: foreign_page; kunmap of an allocated highmem page never kmapped:
    kunmap_unmapped; kmap / kunmap on the 6.x profile (no pkmap area): ConfigError.
    Nothing changes. And the pages kmap maps as their direct address (2.6.12
    arch/i386/mm/highmem.c kmap: !PageHighMem -> page_address = PAGE_OFFSET + (pfn <<
    12)): the reserved pfn 0, the first and last allocated low frames, a tail of an
    allocated order-2 block; a slab page and the head and a tail of a __GFP_COMP block
    (kmap gives their direct address, kunmap does nothing, nothing changes);
    page_address of an allocated highmem page not mapped is NULL."""
    from ..model import highmem as hm

    def model():
        m, pa = _hm_machine(iomem_pages=16)
        other, _ = _hm_machine()
        page = lambda pfn: m.mem_map + pfn          # noqa: E731
        high = m.zones[2]
        used = pa.alloc_pages(m, GFP_HIGHUSER, 0).pfn
        hot = m.zones[2].pageset[0].pcp[0].list[0]
        buddy = next(h for h in range(high.zone_start_pfn, high.zone_start_pfn
                                      + high.spanned_pages)
                     if pa.find_block(m, h) and pa.find_block(m, h)[0] == "free")
        low_free = next(h for h in range(8191, 4096, -1)
                        if pa.find_block(m, h) and pa.find_block(m, h)[0] == "free")
        block = pa.alloc_pages(m, GFP_KERNEL, 2).pfn
        low = pa.alloc_pages(m, GFP_KERNEL, 0).pfn
        calls = [lambda: hm.kmap(m, page(buddy)), lambda: hm.kmap(m, page(hot)),
                 lambda: hm.kmap(m, page(low_free)), lambda: hm.kmap(m, page(8192 + 3)),
                 lambda: hm.kunmap(m, page(8192 + 15)), lambda: hm.kmap(m, hot),
                 lambda: hm.kunmap(m, None), lambda: hm.kmap(m, other.mem_map + used),
                 lambda: hm.kunmap(m, page(used)), lambda: hm.kunmap(m, page(buddy))]
        out = _misuse(m, calls)
        s = _boot(SLUB)
        slub = _misuse(s, [lambda: hm.kmap(s, s.mem_map + 100),
                           lambda: hm.kunmap(s, s.mem_map + 100)])
        direct = [hm.kmap(m, page(pfn)) - PAGE_OFFSET[SLAB] for pfn in (0, block + 3, low)]
        # low pages with other flags: a slab page (PG_slab), a __GFP_COMP head and tail
        from ..model import kmalloc as km
        slab_pfn = (km.kmalloc(m, 4096, GFP_KERNEL) - PAGE_OFFSET[SLAB]) >> 12
        comp = pa.alloc_pages(m, GFP_KERNEL | GFP_COMP, 2).pfn
        lows = [slab_pfn, comp, comp + 3]
        flagged = _misuse(m, [lambda p=p: hm.kmap(m, page(p)) for p in lows]
                          + [lambda p=p: hm.kunmap(m, page(p)) for p in lows])
        # the rule, from the pfns: __va(pfn << PAGE_SHIFT) from kmap, nothing from kunmap
        rule = ([("ok", PAGE_OFFSET[SLAB] + (p << 12)) for p in lows] + [("ok", None)] * 3, True)
        return [out, slub, direct, [block + 3, low], hm.page_address(m, page(used)),
                hm.page_address(m, page(low)) - PAGE_OFFSET[SLAB], flagged == rule]

    def expected():
        # the frames are inputs; the answers follow from the rules
        m, pa = _hm_machine(iomem_pages=16)
        pa.alloc_pages(m, GFP_HIGHUSER, 0)
        block = pa.alloc_pages(m, GFP_KERNEL, 2).pfn
        low = pa.alloc_pages(m, GFP_KERNEL, 0).pfn
        return [(["kmap_free_page"] * 3 + ["kmap_not_ram"] * 2 + ["bad_page"] * 2
                 + ["foreign_page", "kunmap_unmapped", "kunmap_unmapped"], True),
                (["ConfigError profile"] * 2, True),
                [0, (block + 3) << 12, low << 12], [block + 3, low], None, low << 12, True]
    return [Fact("sweep kmap / kunmap misuse and low pages",
                 "arch/i386/mm/highmem.c kmap, kunmap; mm/highmem.c kunmap_high",
                 expected, model)]


def _page_address_facts() -> list[Fact]:
    """page_address (2.6.12 mm/highmem.c page_address: a low page's is __va(pfn <<
    PAGE_SHIFT); a highmem page's is looked up in page_address_htable, NULL if absent)
    and set_page_address (adds the entry, or removes it for NULL; removing an absent
    entry is harmless)."""
    from ..model import highmem as hm

    def model():
        m, pa = _hm_machine()
        h = pa.alloc_pages(m, GFP_HIGHUSER, 0).pfn
        low = [hm.page_address(m, m.mem_map + pfn) - PAGE_OFFSET[SLAB] for pfn in (0, 1, 8191)]
        out = [low, hm.page_address(m, m.mem_map + h)]
        hm.set_page_address(m, h, PKMAP_BASE + 0x5000)
        out.append(hm.page_address(m, m.mem_map + h))
        hm.set_page_address(m, h, None)
        out.append(hm.page_address(m, m.mem_map + h))
        hm.set_page_address(m, h, None)
        out.append(len(m.page_address_htable))
        return out
    return [Fact("sweep page_address / set_page_address: low, high, set, removed",
                 "mm/highmem.c page_address, set_page_address",
                 lambda: [[0, 4096, 8191 << 12], None, PKMAP_BASE + 0x5000, None, 0], model)]


FACT_GROUPS = [_index_facts, _class_facts, _edge_facts, _large_facts, _kmalloc_misuse_facts,
               _free_misuse_facts, _cpu_facts, _kmap_boot_facts, _kmap_order_facts,
               _kmap_wrap_facts, _kmap_full_facts, _kmap_misuse_facts, _page_address_facts]
