"""Sweep rows for model/slab.py: geometry, cache creation, the bootstrap, growth and
destruction of slabs and caches, the general-cache lookup and slabinfo.

Every expected value is computed here from the kernel's rules (Linux 2.6.12 mm/slab.c,
torvalds/linux 1da177e4c3f4, unless noted; SLUB parts from Linux 6.8+ mm/slub.c and
mm/slab_common.c), never by calling the model's function under test. spec/sweeps.md
("slab.py: geometry, cache creation and the bootstrap") lists what each group sweeps.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import pickle

from ..facts import Fact, k_kmalloc_sizes

# include/linux/slab.h (2.6.12; same bits in 6.x)
K_NO_REAP, K_HWCACHE, K_CACHE_DMA, K_MUST_HW = 0x1000, 0x2000, 0x4000, 0x8000
K_RECLAIM, K_PANIC, K_RCU = 0x20000, 0x40000, 0x80000
# mm/slab.c (2.6.12, no DEBUG): CREATE_MASK
K_CREATE_MASK = (K_NO_REAP | K_HWCACHE | K_CACHE_DMA | K_MUST_HW | K_RECLAIM | K_PANIC
                 | K_RCU)
K_GFP_DMA, K_GFP_KERNEL, K_GFP_NO_GROW = 0x01, 0xD0, 0x2000     # include/linux/gfp.h
K_PAGE = 4096                                   # i386 / x86_64 PAGE_SIZE
# i386 2.6.12: BYTES_PER_WORD 4, sizeof(struct slab) 24, sizeof(kmem_bufctl_t) 2
K_WORD, K_STRUCT_SLAB, K_BUFCTL = 4, 24, 2
K_SLAB_LIMIT = (1 << 16) - 3                    # BUFCTL_END - 2
K_MAX_GFP_ORDER = 5                             # mm/slab.c MAX_GFP_ORDER / MAX_OBJ_ORDER
K_SIZEOF_KMEM_CACHE = 152                       # kmem_cache_t, i386 SMP NR_CPUS 8


def _hash(m) -> str:
    return hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()


def _outcome(call):
    """'accepted', the KernelBug rule, or 'ValueError' (bad input); any other exception
    propagates and fails the row (a wrong exception type is a wrong answer)."""
    from ..model.errors import KernelBug
    try:
        call()
        return "accepted"
    except KernelBug as exc:
        return exc.rule
    except ValueError:
        return "ValueError"


def _boot(**kw):
    from ..model.boot import boot
    return boot(**kw)


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


# --- independent 2.6.12 geometry ----------------------------------------------------------

def k_estimate(order: int, size: int, align: int, off_slab: bool) -> tuple[int, int]:
    """mm/slab.c cache_estimate: the largest i with i*size + ALIGN(24 + 2i, align) <= slab
    bytes (off-slab: i*size <= slab bytes), capped at SLAB_LIMIT; found by bisection
    over the monotone condition (the kernel counts up)."""
    total = K_PAGE << order

    def mgmt(i):
        return 0 if off_slab else _align(K_STRUCT_SLAB + i * K_BUFCTL, align)
    lo, hi = 0, total // size + 1            # fits(lo); not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid * size + mgmt(mid) <= total:
            lo = mid
        else:
            hi = mid
    num = min(lo, K_SLAB_LIMIT)
    return num, total - num * size - mgmt(num)


def k_geo(size: int, align: int, flags: int, *, line: int, offslab_limit: int,
          break_order: int) -> dict:
    """mm/slab.c kmem_cache_create (no DEBUG), step by step, every field it sets."""
    if size & (K_WORD - 1):
        size = (size + K_WORD - 1) & ~(K_WORD - 1)
    ralign = K_WORD
    if flags & K_HWCACHE:
        ralign = line
        while size <= ralign // 2:
            ralign //= 2
    if ralign < align:
        ralign = align
    align = ralign
    off = size >= (K_PAGE >> 3)
    size = _align(size, align)
    order = 0
    if flags & K_RECLAIM and size <= K_PAGE:
        num, left = k_estimate(0, size, align, off)
    else:
        while True:
            num, left = k_estimate(order, size, align, off)
            if order >= K_MAX_GFP_ORDER:
                break
            if num:
                if off and num > offslab_limit:
                    order -= 1
                    num, left = k_estimate(order, size, align, off)
                    break
                if order >= break_order:
                    break
                if left * 8 <= K_PAGE << order:
                    break
            order += 1
    slab_size = _align(num * K_BUFCTL + K_STRUCT_SLAB, align)
    if off and left >= slab_size:
        off = False
        left -= slab_size
    if off:
        slab_size = num * K_BUFCTL + K_STRUCT_SLAB
    colour_off = max(line, align)
    return {"objsize": size, "align": align, "gfporder": order, "num": num,
            "left_over": left, "slab_size": slab_size, "off_slab": off,
            "colour_off": colour_off, "colour": left // colour_off}


def _model_geo(c) -> dict:
    return {"objsize": c.objsize, "align": c.align, "gfporder": c.gfporder, "num": c.num,
            "left_over": c.left_over, "slab_size": c.slab_size, "off_slab": c.off_slab,
            "colour_off": c.colour_off, "colour": c.colour}


def k_general_class(size: int, sizes) -> int | None:
    """__find_general_cachep: the first cs_size >= size (the ULONG_MAX sentinel: none)."""
    return next((s for s in sizes if size <= s), None)


def k_cpucache(objsize: int) -> tuple[int, int, int]:
    """enable_cpucache (SMP): limit, batchcount, shared factor."""
    limit = (1 if objsize > 131072 else 8 if objsize > K_PAGE else 24 if objsize > 1024
             else 54 if objsize > 256 else 120)
    return limit, (limit + 1) // 2, 8 if objsize <= K_PAGE else 0


def k_general_expected(line: int, break_order: int) -> tuple[list, int]:
    """kmem_cache_init 2+3: [(name, geometry, slabp_cache name)] in creation order, and
    the final offslab_limit ((cs_size - 24) / 2 of the last on-slab size-N)."""
    sizes = k_kmalloc_sizes(line)
    limit, out = 0, []
    for size in sizes:
        for dma in (False, True):
            geo = k_geo(size, 0, K_HWCACHE | K_PANIC | (K_CACHE_DMA if dma else 0),
                        line=line, offslab_limit=limit, break_order=break_order)
            slabp = k_general_class(geo["slab_size"], sizes) if geo["off_slab"] else None
            out.append((f"size-{size}" + ("(DMA)" if dma else ""), geo,
                        None if slabp is None else f"size-{slabp}"))
            if not dma and not geo["off_slab"]:
                limit = (size - K_STRUCT_SLAB) // K_BUFCTL
    return out, limit


# --- independent 6.8+ SLUB geometry (x86_64: word 8, L1 64, 8 CPUs) ------------------------

def k_slub_order(size: int) -> int:
    """Linux 6.8+ mm/slub.c calculate_order: min_objects 4 * (fls(8) + 1) = 20, capped by
    the objects of an order-3 (slub_max_order) slab, at least 1; min_order =
    get_order(min_objects * size); too many objects per page: get_order(size * 32767) -
    1; then, for waste fractions 1/16, 1/8, 1/4, 1/2, the smallest order from min_order
    to 3 whose remainder is at most slab/fraction; else get_order(size)."""
    def get_order(n):
        return max((n - 1).bit_length() - 12, 0)
    min_objects = max(min(20, (K_PAGE << 3) // size), 1)
    min_order = get_order(min_objects * size)
    if (K_PAGE << min_order) // size > 32767:
        return get_order(size * 32767) - 1
    for fraction in (16, 8, 4, 2):
        fits = [o for o in range(min_order, 4)
                if (K_PAGE << o) % size <= (K_PAGE << o) // fraction]
        if fits:
            return fits[0]
    return get_order(size)


def k_slub_geo(size: int, align: int, flags: int) -> dict:
    """6.x calculate_sizes/calculate_alignment: size to a word (8), alignment the cache
    line (64) halved while the object fits in half (SLAB_HWCACHE_ALIGN) else a word, the
    caller's if larger; no colouring, no in-slab management."""
    size = _align(size, 8)
    ralign = 8
    if flags & K_HWCACHE:
        ralign = 64
        while size <= ralign // 2:
            ralign //= 2
    ralign = max(ralign, align)
    size = _align(size, ralign)
    order = k_slub_order(size)
    # calculate_order: an order above MAX_PAGE_ORDER (10) is -ENOSYS, the create fails
    num = (K_PAGE << order) // size if order <= 10 else 0
    return {"objsize": size, "align": ralign, "gfporder": order, "num": num,
            "left_over": (K_PAGE << order) - num * size, "slab_size": 0,
            "off_slab": False, "colour_off": 0, "colour": 0}


# --- the groups ----------------------------------------------------------------------------

def _create_misuse_facts() -> list[Fact]:
    """kmem_cache_create's argument checks (spec/slab.md misuse table; 2.6.12 BUG()s on a
    NULL name, size < BYTES_PER_WORD, size > (1 << MAX_OBJ_ORDER) * PAGE_SIZE = 131072,
    flags outside CREATE_MASK and a duplicate name; the model is stricter on the name,
    the alignment (0 or a power of two) and the ctor). SLUB (6.x): 1 ..
    KMALLOC_MAX_SIZE = PAGE_SIZE << MAX_PAGE_ORDER (4 MiB). Checked in the order name,
    size, align, flags, ctor, duplicate, cpu; each refusal leaves the state unchanged."""
    from ..model import slab

    def calls(m, big):
        c = lambda *a, **k: (lambda: slab.kmem_cache_create(m, *a, **k))  # noqa: E731
        out = [c(None, 32, 0, 0), c("", 32, 0, 0), c(7, 32, 0, 0),
               c("x", 0, 0, 0), c("x", -4, 0, 0), c("x", big + 1, 0, 0),
               c("x", big + 4, 0, 0), c("x", big * 2, 0, 0), c("x", 32.0, 0, 0),
               c("x", True, 0, 0), c("x", "32", 0, 0), c("x", None, 0, 0),
               c("x", 32, 3, 0), c("x", 32, 6, 0), c("x", 32, 12, 0), c("x", 32, 96, 0),
               # no two adjacent bits: 5, 9, 10, 40 (align & (align << 1) is 0 for them)
               c("x", 32, 5, 0), c("x", 32, 9, 0), c("x", 32, 10, 0), c("x", 32, 40, 0),
               c("x", 32, -1, 0), c("x", 32, -8, 0), c("x", 32, 8.0, 0), c("x", 32, "8", 0),
               c("x", 32, None, 0),
               c("x", 32, 0, -1), c("x", 32, 0, 0x80000000), c("x", 32, 0, 1 << 32),
               c("x", 32, 0, float(K_HWCACHE)), c("x", 32, 0, None),
               c("x", 32, 0, 0, 5), c("x", 32, 0, 0, b"ctor"),
               c("size-32" if big < 1 << 20 else "kmalloc-32", 32, 0, 0),
               c("kmem_cache", 32, 0, 0), c("probe", 64, 0, 0),
               # the order of the checks
               c(None, 0, 3, -1), c("y", 0, 3, -1), c("y", 32, 3, -1),
               c("y", 32, 0, -1, 5), c("probe", 32, 0, 0, 5),
               c("probe", 32, 0, 0, None, 99),
               c("z", 32, 0, 0, None, 1), c("z", 32, 0, 0, None, -1)]
        # every bit outside CREATE_MASK, one at a time
        out += [c("x", 32, 0, 1 << b) for b in range(32) if not (1 << b) & K_CREATE_MASK]
        return out

    def expected(slub):
        small = "bad_cache_size"
        out = (["bad_cache_name"] * 3 + [small] * 9 + ["bad_align"] * 13
               + ["bad_slab_flags"] * 5 + ["bad_ctor"] * 2 + ["duplicate_cache"] * 3
               + ["bad_cache_name", "bad_cache_size", "bad_align", "bad_slab_flags",
                  "bad_ctor", "duplicate_cache", "ValueError", "ValueError"])
        return out + ["bad_slab_flags"] * (32 - bin(K_CREATE_MASK).count("1")), True

    def run(profile_kw, big):
        m = _boot(**profile_kw)
        slab.kmem_cache_create(m, "probe", 32, 0, 0)
        before = _hash(m)
        out = [_outcome(call) for call in calls(m, big)]
        return out, _hash(m) == before

    def word_sizes():
        # 2.6.12 size < BYTES_PER_WORD (4) is a BUG; SLUB takes 1 (6.x: no lower check)
        m = _boot(phys_pages=4096, highmem_pages=0)
        s = _boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
        return ([_outcome(lambda n=n: slab.kmem_cache_create(m, f"w{n}", n, 0, 0))
                 for n in (1, 2, 3, 4, 5)],
                [_outcome(lambda n=n: slab.kmem_cache_create(s, f"w{n}", n, 0, 0))
                 for n in (0, 1, 2)])
    def messages():
        # the refusals say what is wrong and the allowed range (BYTES_PER_WORD ..
        # 32 pages on SLAB, 1 .. 4 MiB on SLUB, CREATE_MASK)
        from ..model.errors import KernelBug
        out = []
        for kw, args in (({"phys_pages": 4096, "highmem_pages": 0}, ("x", 3, 0, 0)),
                         ({"profile": "linux-6.x-x86_64", "highmem_pages": 0,
                           "phys_pages": 65536}, ("x", 0, 0, 0)),
                         ({"phys_pages": 4096, "highmem_pages": 0}, ("x", 32, 0, 1)),
                         ({"phys_pages": 4096, "highmem_pages": 0}, ("x", 32, 3, 0))):
            m = _boot(**kw)
            try:
                slab.kmem_cache_create(m, *args)
                out.append(None)
            except KernelBug as exc:
                out.append(str(exc))
        return [f"{K_WORD}..{32 * K_PAGE}" in out[0], f"1..{K_PAGE << 10}" in out[1],
                f"{K_CREATE_MASK:#x}" in out[2], "3" in out[3] and "power of two" in out[3]]
    return [Fact("kmem_cache_create refusals name the allowed range",
                 "mm/slab.c kmem_cache_create (BYTES_PER_WORD, MAX_OBJ_ORDER, "
                 "CREATE_MASK); Linux 6.8 KMALLOC_MAX_SIZE", lambda: [True] * 4, messages),
            Fact("kmem_cache_create misuse: name, size, align, flags, ctor, duplicate, cpu "
                 "(2.6.12 SLAB; state unchanged)",
                 "mm/slab.c kmem_cache_create sanity checks, CREATE_MASK, duplicate scan",
                 lambda: expected(False),
                 lambda: run({"phys_pages": 4096, "highmem_pages": 0}, 131072)),
            Fact("kmem_cache_create misuse on SLUB: size past 4 MiB (KMALLOC_MAX_SIZE)",
                 "Linux 6.8 mm/slab_common.c kmem_cache_create, include/linux/slab.h "
                 "KMALLOC_MAX_SIZE",
                 lambda: expected(True),
                 lambda: run({"profile": "linux-6.x-x86_64", "highmem_pages": 0,
                              "phys_pages": 65536}, 4 << 20)),
            Fact("kmem_cache_create: sizes below a word (SLAB 4 B, SLUB 1 B)",
                 "mm/slab.c kmem_cache_create (size < BYTES_PER_WORD)",
                 lambda: (["bad_cache_size"] * 3 + ["accepted"] * 2,
                          ["bad_cache_size", "accepted", "accepted"]), word_sizes)]


# --- kmem_cache_create returning NULL ------------------------------------------------------

# (size, align, flags) around "couldn't create cache": 2.6.12 decides off-slab on the size
# before ALIGN, so a small object aligned to 128 KiB is on-slab and its management no
# longer fits the largest (order-5) slab; SLAB_RECLAIM_ACCOUNT stops at order 0 for
# objects up to a page; anything aligned past 128 KiB never fits
NUM0_CASES = [(100, 131072, 0), (100, 262144, 0), (600, 262144, 0), (4, 1 << 20, 0),
              (100, 131072, K_HWCACHE), (100, 4096, K_RECLAIM), (508, 4096, K_RECLAIM),
              (100, 131072, K_PANIC),
              # neighbours that fit one object
              (100, 65536, 0), (100, 2048, K_RECLAIM), (512, 4096, K_RECLAIM),
              (131072, 131072, 0), (100, 65536, K_RECLAIM), (4096, 4096, K_RECLAIM)]


def _exhaust(m) -> list:
    """Take every block GFP_KERNEL can still have, largest first (down to the watermark)."""
    from ..model import page_alloc as pa
    held = []
    for order in range(10, -1, -1):
        while True:
            page = pa.alloc_pages(m, K_GFP_KERNEL, order)
            if page is None:
                break
            held.append((page, order))
    return held


def _free_frames(m) -> int:
    """Frames in the buddy lists plus frames parked on the per-CPU page lists."""
    from ..model import page_alloc as pa
    return pa.nr_free_pages(m) + len(m.pcp_pages)


def _cc_state(m) -> tuple:
    """cache_cache as the rows compare it: the CPU 0 array (entries, touched), the
    shared array's entries, free_objects, the slab list lengths, the slab frames,
    colour_next, free_touched."""
    cc = m.slab.cache_cache
    return (list(cc.array[0].entry), cc.array[0].touched, list(cc.shared_array.entry),
            cc.free_objects, (cc.slabs_full.nr, cc.slabs_partial.nr, cc.slabs_free.nr),
            sorted(cc.slabs), cc.colour_next, cc.free_touched)


def _state_hash(m) -> str:
    """_hash with the parked set in sorted order (a set popped and refilled with the same
    address may pickle in another order)."""
    parked = m.slab.parked
    m.slab.parked = sorted(parked)
    try:
        return _hash(m)
    finally:
        m.slab.parked = parked


def _cc_empty(m) -> bool:
    """cache_cache has no object left for a descriptor: its arrays are empty and no slab
    of it is partial or free (the next descriptor needs cache_grow)."""
    cc = m.slab.cache_cache
    return not (cc.array[0].entry or cc.shared_array.entry or cc.slabs_partial.nr
                or cc.slabs_free.nr)


def _drain_cache_cache(m, prefix: str) -> int:
    """Create 64-byte caches until cache_cache has no free descriptor (at most one slab's
    worth, 15, after the first); how many were made."""
    from ..model import slab
    n = 0
    while not _cc_empty(m):
        assert slab.kmem_cache_create(m, f"{prefix}{n}", 64, 0, 0) is not None
        n += 1
    return n


def _create_null_facts() -> list[Fact]:
    """kmem_cache_create returning NULL (2.6.12 mm/slab.c kmem_cache_create). The kernel
    takes the descriptor from cache_cache (kmem_cache_alloc, SLAB_KERNEL) right after the
    alignment and before it sizes the slab: NULL there returns NULL at once, leaving
    only what the failed cache_alloc_refill and cache_grow of cache_cache changed
    (free_touched set, colour_next stepped modulo colour). When the slab holds no
    object at any order it tries (num 0: "couldn't create cache") the descriptor goes
    back (kmem_cache_free to cache_cache, i.e. onto the CPU's array) and NULL is
    returned; a slab the refill grew and the batch it took stay. No cache is listed in
    either case: list_add on cache_chain is the last step. SLAB_PANIC turns both NULLs
    into a panic in the kernel; the model returns NULL as for a failed bootstrap
    (spec/slab.md)."""
    from ..model import page_alloc as pa
    from ..model import slab
    cc_num = k_estimate(0, _align(K_SIZEOF_KMEM_CACHE, 128), 128, False)[0]     # 15
    cc_colour = k_estimate(0, _align(K_SIZEOF_KMEM_CACHE, 128), 128, False)[1] // 128

    def no_descriptor():
        # every cache_cache object taken, then memory gone: the descriptor cannot come
        # from the array, the shared array, a slab or a new slab
        m = _boot(phys_pages=4096, highmem_pages=0)
        slab.kmem_cache_create(m, "first", 32, 0, 0)
        _drain_cache_cache(m, "d")
        held = _exhaust(m)
        chain = [c.name for c in m.slab.cache_chain]
        before, frames, hash0 = _cc_state(m), _free_frames(m), _state_hash(m)
        got = slab.kmem_cache_create(m, "nd", 64, 0, 0)
        after = _cc_state(m)
        out = [got, [c.name for c in m.slab.cache_chain] == chain, slab.find_cache(m, "nd"),
               before[:-2] == after[:-2], (before[-2:], after[-2:]),
               _free_frames(m) - frames, _state_hash(m) == hash0]
        for page, order in held:
            pa.__free_pages(m, page, order)
        again = slab.kmem_cache_create(m, "nd", 64, 0, 0)
        return out + [again is not None and m.slab.cache_chain[0] is again]

    def no_descriptor_expected():
        # cache_alloc_refill: no partial slab -> free_touched = 1; cache_grow: colour_next
        # + 1, wrapped at colour (1 for 256-byte descriptors on a 128-byte line), then
        # kmem_getpages fails; nothing else moves. cache_cache is SLAB_NO_REAP, so
        # cache_reap never clears the free_touched an earlier refill set: it is 1 before
        # too, and the whole state is as before. (colour_next is 0 before: every value
        # is 0 modulo a colour of 1.)
        return [None, True, None, True, ((0, 1), (1 % cc_colour, 1)), 0, True, True]

    def arrays_fail():
        # the descriptor is found (cache_cache's array) but the arrays are not (spec/slab.md:
        # the model fails the create; 2.6.12 would return a cache without arrays)
        m = _boot(phys_pages=4096, highmem_pages=0)
        slab.kmem_cache_create(m, "first", 32, 0, 0)
        held = _exhaust(m)
        n = 0
        while slab.kmem_cache_create(m, f"x{n}", 64, 0, 0) is not None:
            n += 1
            held += _exhaust(m)
        chain = [c.name for c in m.slab.cache_chain]
        internal = dict(m.slab.internal)
        before, frames = _cc_state(m), _free_frames(m)
        got = slab.kmem_cache_create(m, "af", 64, 0, 0)
        after = _cc_state(m)
        out = [got, [c.name for c in m.slab.cache_chain] == chain, slab.find_cache(m, "af"),
               m.slab.internal == internal, bool(before[0]), after[0] == before[0],
               after[1],
               after[2:] == before[2:], _free_frames(m) - frames]
        for page, order in held:
            pa.__free_pages(m, page, order)
        return out

    def num0():
        m = _boot(phys_pages=4096, highmem_pages=0)
        slab.kmem_cache_create(m, "first", 32, 0, 0)
        out = []
        for i, (size, align, flags) in enumerate(NUM0_CASES):
            chain = [c.name for c in m.slab.cache_chain]
            got = slab.kmem_cache_create(m, f"n{i}", size, align, flags)
            out.append(None if got is None else
                       (got.num, got.gfporder, m.slab.cache_chain[0] is got))
            if got is None:
                out.append(([c.name for c in m.slab.cache_chain] == chain,
                            slab.find_cache(m, f"n{i}")))
        return out

    def num0_expected():
        out = []
        for size, align, flags in NUM0_CASES:
            g = k_geo(size, align, flags, line=128, offslab_limit=116, break_order=0)
            out.append(None if g["num"] == 0 else (g["num"], g["gfporder"], True))
            if g["num"] == 0:
                out.append((True, None))
        return out

    def num0_cache_cache():
        # (a) cache_cache's array holds objects: the descriptor is popped and pushed
        # back; (b) the array is empty and no slab
        # has a free object: the refill grows a slab, takes its objects, and the
        # descriptor goes back on top of them
        m = _boot(phys_pages=4096, highmem_pages=0)
        slab.kmem_cache_create(m, "first", 32, 0, 0)
        a0, frames, hash0 = _cc_state(m), _free_frames(m), _state_hash(m)
        got_a = slab.kmem_cache_create(m, "za", 100, 262144, 0)
        a1 = _cc_state(m)
        res_a = [got_a, bool(a0[0]), a1[0] == a0[0], (a0[1], a1[1]), a1[2:] == a0[2:],
                 _free_frames(m) - frames, _state_hash(m) == hash0]
        _drain_cache_cache(m, "e")
        chain = [c.name for c in m.slab.cache_chain]
        b0, frames = _cc_state(m), _free_frames(m)
        got_b = slab.kmem_cache_create(m, "zb", 100, 4096, K_RECLAIM)
        b1 = _cc_state(m)
        res_b = [got_b, [c.name for c in m.slab.cache_chain] == chain,
                 slab.find_cache(m, "zb"), (len(b0[0]), b0[1], b0[3], b0[4][1:], b0[7]),
                 (len(b1[0]), b1[1], b1[3], b1[4][1:], b1[4][0] - b0[4][0],
                  len(b1[5]) - len(b0[5]), b1[6], b1[7]),
                 _free_frames(m) - frames]
        return res_a, res_b

    def num0_cache_cache_expected():
        # (a) __cache_alloc pops (touched = 1; already 1: SLAB_NO_REAP, never reaped),
        # __cache_free pushes the same object back: the state is as before
        res_a = [None, True, True, (1, 1), True, 0, True]
        # (b) refill of a touched array: batchcount 60 (enable_cpucache, 256 bytes);
        # no partial slab (free_touched = 1), no free slab -> cache_grow (one order-0
        # frame, colour_next wraps at colour) -> the new slab's cc_num objects all
        # taken, the slab full; one popped, the descriptor pushed back
        taken = min(k_cpucache(256)[1], cc_num)
        res_b = [None, True, None, (0, 1, 0, (0, 0), 1),
                 (taken, 1, 0, (0, 0), 1, 1, 1 % cc_colour, 1), -1]
        return res_a, res_b
    return [Fact("kmem_cache_create NULL: no descriptor (cache_cache empty, no page); "
                 "only free_touched and colour_next move",
                 "mm/slab.c kmem_cache_create (kmem_cache_alloc(&cache_cache) NULL -> "
                 "opps), cache_alloc_refill, cache_grow",
                 no_descriptor_expected, no_descriptor),
            Fact("kmem_cache_create NULL after the descriptor (arrays fail): descriptor "
                 "back on cache_cache's array, nothing listed, no frame kept",
                 "spec/slab.md (stricter than 2.6.12 kmem_cache_create's "
                 "\"enable_cpucache failed\"); mm/slab.c __cache_free",
                 lambda: [None, True, None, True, True, True, 1, True, 0], arrays_fail),
            Fact("kmem_cache_create num 0 (\"couldn't create cache\"): NULL, nothing "
                 "listed, for the sizes no slab order holds; neighbours created",
                 "mm/slab.c kmem_cache_create (cal_wastage loop, !cachep->num), "
                 "cache_estimate", num0_expected, num0),
            Fact("kmem_cache_create num 0: the descriptor back on cache_cache's array; a "
                 "slab its refill grew stays",
                 "mm/slab.c kmem_cache_create (kmem_cache_free(&cache_cache) on !num), "
                 "__cache_alloc, cache_alloc_refill, cache_grow, __cache_free",
                 num0_cache_cache_expected, num0_cache_cache)]


# accepted boundary arguments: (size, align, flags)
CREATE_OK = [(4, 0, 0), (5, 0, 0), (131072, 0, 0), (131069, 0, 0), (32, 1, 0), (32, 2, 0),
             (32, 4096, 0), (100, 64, K_HWCACHE), (20, 0, K_HWCACHE), (65, 0, K_HWCACHE),
             (4096, 0, K_RECLAIM), (4097, 0, K_RECLAIM), (300, 0, K_CACHE_DMA),
             (64, 0, K_NO_REAP), (64, 0, K_MUST_HW), (64, 0, K_PANIC), (64, 0, K_RCU),
             (1100, 8, K_CREATE_MASK)]


def _create_accept_facts() -> list[Fact]:
    """kmem_cache_create with each boundary argument the checks accept (the smallest and
    largest sizes, align 1/2/4096, every CREATE_MASK flag alone and all together): the
    geometry of 2.6.12 kmem_cache_create, gfpflags GFP_DMA only for SLAB_CACHE_DMA, the
    off-slab management's general cache, the flags kept (CFLGS_OFF_SLAB added when
    off-slab), the tunables of enable_cpucache, and the new cache at the chain's head.
    On a 16 MiB machine (slab_break_gfp_order 0). SLUB: sizes 1, 8, 4106..4 MiB."""
    from ..model import slab
    line = 128

    def model():
        m = _boot(phys_pages=4096, highmem_pages=0)
        out = []
        for i, (size, align, flags) in enumerate(CREATE_OK):
            c = slab.kmem_cache_create(m, f"ok{i}", size, align, flags)
            out.append((_model_geo(c), c.gfpflags, c.flags,
                        None if c.slabp_cache is None else c.slabp_cache.name,
                        (c.limit, c.batchcount, c.shared), m.slab.cache_chain[0] is c,
                        slab.kmem_cache_size(c)))
        return out

    def expected():
        out = []
        sizes = k_kmalloc_sizes(line)
        for size, align, flags in CREATE_OK:
            g = k_geo(size, align, flags, line=line, offslab_limit=116, break_order=0)
            slabp = k_general_class(g["slab_size"], sizes) if g["off_slab"] else None
            out.append((g, K_GFP_DMA if flags & K_CACHE_DMA else 0,
                        flags | (0x80000000 if g["off_slab"] else 0),
                        None if slabp is None else f"size-{slabp}",
                        k_cpucache(g["objsize"]), True, g["objsize"]))
        return out

    slub_sizes = [(1, 0, 0), (8, 0, 0), (9, 0, K_HWCACHE), (4106, 0, 0), (4107, 0, 0),
                  (8192, 0, 0), (40000, 0, 0), (4 << 20, 0, 0), (100, 256, 0)]

    def slub_model():
        m = _boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
        return [_model_geo(slab.kmem_cache_create(m, f"s{i}", *args))
                for i, args in enumerate(slub_sizes)]
    def slub_too_big():
        m = _boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
        out = []
        for name, args in (("a22", (100, 1 << 22, 0)), ("s4m", (4 << 20, 0, 0))):
            c = slab.kmem_cache_create(m, name, *args)
            out.append(((c.gfporder, c.num), m.slab.cache_chain[0] is c))
        cc, chain = m.slab.cache_cache, list(m.slab.cache_chain)
        before = (_free_frames(m), cc.free_objects, len(cc.slabs))
        got = slab.kmem_cache_create(m, "big", 100, 1 << 23, 0)
        return out + [(got, m.slab.cache_chain == chain,
                       (_free_frames(m), cc.free_objects, len(cc.slabs)) == before)]

    def enomem():
        # memory taken down to the watermark after a first cache: the third 64-byte cache
        # finds its descriptor (cache_cache's array) but not its arrays
        from ..model import page_alloc as pa
        m = _boot(phys_pages=4096, highmem_pages=0)
        slab.kmem_cache_create(m, "first", 32, 0, 0)
        held = _exhaust(m)
        out = [slab.kmem_cache_create(m, f"x{i}", 64, 0, 0) is not None for i in range(2)]
        cc = m.slab.cache_cache
        chain, internal = list(m.slab.cache_chain), dict(m.slab.internal)
        cc_free = cc.free_objects + sum(len(a.entry) for a in cc.array if a is not None)
        got = slab.kmem_cache_create(m, "x2", 64, 0, 0)
        out += [got, m.slab.cache_chain == chain, m.slab.internal == internal,
                slab.find_cache(m, "x2"),
                cc.free_objects + sum(len(a.entry) for a in cc.array if a is not None)
                - cc_free]
        for page, order in held:
            pa.__free_pages(m, page, order)
        again = slab.kmem_cache_create(m, "x2", 64, 0, 0)
        return out + [again is not None and m.slab.cache_chain[0] is again]
    return [Fact("kmem_cache_create without memory for the arrays: NULL, nothing kept, "
                 "the name free again", "spec/slab.md (stricter than 2.6.12 "
                 "kmem_cache_create's \"enable_cpucache failed\")",
                 lambda: [True, True, None, True, True, None, 0, True], enomem),
            Fact("kmem_cache_create accepted boundaries: geometry, gfpflags, flags, "
                 "slabp_cache, tunables, chain head (18 caches)",
                 "mm/slab.c kmem_cache_create, cache_estimate, enable_cpucache",
                 expected, model),
            Fact("SLUB kmem_cache_create: sizes 1 .. 4 MiB (order, objects, alignment)",
                 "Linux 6.8 mm/slub.c calculate_sizes, calculate_order",
                 lambda: [k_slub_geo(*a) for a in slub_sizes], slub_model),
            # 100 bytes aligned to 8 MiB is one 8 MiB object: get_order 11 > MAX_PAGE_ORDER
            # 10, so calculate_order is -ENOSYS and the create NULL; 4 MiB alignment
            # (order 10) and a 4 MiB object are created with one object a slab
            Fact("SLUB kmem_cache_create: order 10 is created; an alignment that needs "
                 "order 11 gives NULL, nothing listed, the descriptor given back",
                 "Linux 6.8 mm/slub.c calculate_order (-ENOSYS), calculate_sizes; "
                 "mm/slab_common.c create_cache",
                 lambda: [((10, 1), True), ((10, 1), True), (None, True, True)],
                 slub_too_big)]


# sizes at every geometry boundary: word rounding, the HWCACHE halvings (16/32/64/128),
# the off-slab threshold (508/509/512), left_over*8 and order steps, MAX_GFP_ORDER
GEO_SIZES = [4, 8, 12, 16, 17, 31, 32, 33, 48, 60, 63, 64, 65, 96, 100, 127, 128, 129, 192,
             200, 252, 256, 257, 340, 384, 400, 500, 508, 509, 511, 512, 513, 600, 680, 700,
             800, 1000, 1024, 1025, 1100, 1360, 1500, 2000, 2048, 2049, 2730, 3000, 4000,
             4096, 4097, 5000, 6000, 8192, 8193, 10000, 16384, 20000, 32768, 40000, 65536,
             65537, 100000, 131072]
GEO_VARIANTS = [(0, 0), (0, K_HWCACHE), (0, K_RECLAIM), (64, 0), (1024, K_HWCACHE),
                (0, K_PANIC | K_RCU)]


def _geometry_sweep_facts() -> list[Fact]:
    """cache_geometry over 63 sizes x 6 (align, flags) variants on two machines (16 MiB:
    slab_break_gfp_order 0; the seed's 1 GiB: 1), offslab_limit 116 (size-256), against
    the step-by-step 2.6.12 kmem_cache_create above; and the SLUB geometry of the same
    sizes (6.8+ calculate_order)."""
    from ..model import slab
    facts = []
    for label, kw, brk in (("16 MiB", {"phys_pages": 4096, "highmem_pages": 0}, 0),
                           ("1 GiB", {}, 1)):
        def model(kw=kw):
            m = _boot(**kw)
            return ([m.slab.slab_break_gfp_order, m.slab.offslab_limit]
                    + [_model_geo_dict(slab._geometry(m, s, a, f))
                       for s in GEO_SIZES for a, f in GEO_VARIANTS])

        def expected(brk=brk):
            return [brk, 116] + [k_geo(s, a, f, line=128, offslab_limit=116,
                                       break_order=brk)
                                 for s in GEO_SIZES for a, f in GEO_VARIANTS]
        facts.append(Fact(f"cache geometry sweep, {label} (63 sizes x 6 variants)",
                          "mm/slab.c kmem_cache_create, cache_estimate, kmem_cache_init",
                          expected, model))
    slub_sizes = [s for s in GEO_SIZES if s <= 65536] + [1, 2, 7, 9, 24, 40, 72, 80, 136,
                                                         160, 176, 264, 520, 1040, 2100]

    def slub_model():
        m = _boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
        return [_model_geo_dict(slab._geometry(m, s, a, f)) | {"off_slab": False}
                for s in slub_sizes for a, f in ((0, 0), (0, K_HWCACHE), (256, 0))]
    facts.append(Fact("SLUB geometry sweep (78 sizes x 3 variants)",
                      "Linux 6.8 mm/slub.c calculate_sizes, calculate_order, calc_slab_order",
                      lambda: [k_slub_geo(s, a, f) for s in slub_sizes
                               for a, f in ((0, 0), (0, K_HWCACHE), (256, 0))],
                      slub_model))
    return facts


def _model_geo_dict(g: dict) -> dict:
    return {k: g[k] for k in ("objsize", "align", "gfporder", "num", "left_over",
                              "slab_size", "off_slab", "colour_off", "colour")}


def _helpers_facts() -> list[Fact]:
    """The pure helpers, directly: ALIGN (include/linux/kernel.h), get_order
    (include/asm-generic/getorder.h), fls, cache_estimate (2.6.12) on a grid of orders,
    sizes, alignments and on/off-slab, _slub_order (6.8+ calculate_order) on a grid,
    and the descriptors' printable forms and initial fields."""
    from ..model import slab

    def align_model():
        return [slab.ALIGN(x, a) for x in (0, 1, 3, 4, 5, 127, 128, 129, 4095, 4096, 4097)
                for a in (1, 2, 4, 8, 128, 4096)] + [slab.ALIGN(5, 0)]

    def align_expected():
        return [_align(x, a) for x in (0, 1, 3, 4, 5, 127, 128, 129, 4095, 4096, 4097)
                for a in (1, 2, 4, 8, 128, 4096)] + [5]
    order_sizes = [1, 2, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 16384, 16385, 1 << 20,
                   (1 << 22) + 1]

    def k_get_order(n):
        order = 0
        while K_PAGE << order < n:
            order += 1
        return order
    est_grid = [(o, s, a, off) for o in (0, 1, 2, 5) for s in (4, 8, 28, 32, 100, 256, 512,
                                                               1100, 4096, 8192, 40000)
                for a in (4, 32, 128) for off in (False, True)]

    def est_model():
        return [slab.cache_estimate(o, s, a, off, K_PAGE, K_STRUCT_SLAB, K_BUFCTL,
                                    K_SLAB_LIMIT) for o, s, a, off in est_grid]

    def est_limit():
        # SLAB_LIMIT caps the count: 2-byte objects off-slab in an order-5 slab (65536)
        return [slab.cache_estimate(5, 2, 2, True, K_PAGE, 24, 2, K_SLAB_LIMIT),
                slab.cache_estimate(0, 8, 4, False, K_PAGE, 0, 4, 100),
                # one object that fills the slab with its management exactly
                slab.cache_estimate(0, 4070, 2, False, K_PAGE, 24, 2, K_SLAB_LIMIT),
                slab.cache_estimate(1, 8166, 2, False, K_PAGE, 24, 2, K_SLAB_LIMIT),
                slab.cache_estimate(0, 4071, 1, False, K_PAGE, 24, 2, K_SLAB_LIMIT)]
    slub_grid = [8, 16, 24, 56, 96, 128, 192, 200, 256, 264, 512, 520, 700, 1024, 1100,
                 2048, 3000, 4096, 5000, 8192, 10000, 16384, 40000, 65536, 100000, 1 << 20]

    def reprs():
        m = _boot(phys_pages=4096, highmem_pages=0)
        c = slab.kmem_cache_create(m, "r", 1100, 0, 0)
        slab.cache_grow(m, c, K_GFP_KERNEL)
        s = c.slab_list(2)[0]
        lst, state = slab.SlabList(), slab.SlabState()
        ac = slab.ArrayCache(7, 3)
        ac.entry = [1, 2]
        out = [repr(c), repr(s) == (f"Slab(pfn={s.id:#x}, cache=r, s_mem="
                                     f"{s.s_mem:#x}, inuse=0)"), repr(ac), ac.avail,
                (lst.head, lst.tail, lst.nr),
                (state.cache_chain, state.offslab_limit, state.slab_break_gfp_order,
                 state.g_cpucache_up, state.ready, state.parked, state.internal),
                (s.inuse, s.free, list(s.bufctl), s.list, s.mgmt, s.next, s.prev)]
        fresh = slab.kmem_cache_create(m, "fresh", 64, 0, 0)
        out.append((fresh.colour_next, fresh.free_objects, fresh.free_touched, fresh.dead,
                    fresh.general, fresh.slabs, fresh.ctor, fresh.slabp_cache,
                    [sl.nr for sl in fresh.lists]))
        obj = slab.kmem_cache_alloc(m, c, K_GFP_KERNEL)
        return out + [(c.BUFCTL_END, c.BUFCTL_FREE,
                       s.bufctl[(obj - s.s_mem) // c.objsize], s.free)]
    def internal_kmalloc():
        # the slab layer's own kmalloc/kfree (2.6.12 __kmalloc / kfree): the first
        # general cache holding the size, NULL past size-131072; kfree(NULL) nothing
        m = _boot(phys_pages=4096, highmem_pages=0)
        slab.kmem_cache_create(m, "first", 32, 0, 0)
        before = _hash(m)
        out = [slab._kmalloc_internal(m, 131073, 0, "too big"),
               slab._kfree_internal(m, None, 0), _hash(m) == before]
        for size in (20, 33, 4096, 4097):
            addr = slab._kmalloc_internal(m, size, 0, f"mine {size}")
            holder = m.slab.page_slab[(addr - m.profile.PAGE_OFFSET) >> 12].cache.name
            out.append((holder, m.slab.internal.get(addr)))
            slab._kfree_internal(m, addr, 0)
            out.append((addr in m.slab.internal, addr in m.slab.parked))
        return out

    def internal_expected():
        out = [None, None, True]
        for size in (20, 33, 4096, 4097):
            out += [(f"size-{k_general_class(size, k_kmalloc_sizes(128))}",
                     f"mine {size}"), (False, True)]
        return out
    return [Fact("the slab layer's own kmalloc and kfree", "mm/slab.c __kmalloc, kfree, "
                 "__find_general_cachep", internal_expected, internal_kmalloc),
            Fact("ALIGN on a grid (x, power-of-two a)", "include/linux/kernel.h ALIGN",
                 align_expected, align_model),
            Fact("get_order and fls on boundary sizes", "include/asm-generic/getorder.h; "
                 "include/asm-generic/bitops/fls.h",
                 lambda: ([k_get_order(n) for n in order_sizes],
                          [0, 1, 2, 2, 4, 4, 8, 9, 33]),
                 lambda: ([slab.get_order(n, 12) for n in order_sizes],
                          [slab._fls(x) for x in (0, 1, 2, 3, 8, 9, 255, 256, 1 << 32)])),
            Fact("cache_estimate on a grid (132 cases) and SLAB_LIMIT",
                 "mm/slab.c cache_estimate",
                 lambda: ([k_estimate(o, s, a, off) for o, s, a, off in est_grid],
                          [(65533, 131072 - 2 * 65533), (100, 4096 - 800 - 400),
                           (1, 0), (1, 0), (0, 4096 - 24)]),
                 lambda: (est_model(), est_limit())),
            Fact("_slub_order on 26 sizes", "Linux 6.8 mm/slub.c calculate_order",
                 lambda: [k_slub_order(s) for s in slub_grid],
                 lambda: [slab._slub_order(s, K_PAGE, 12) for s in slub_grid]),
            Fact("descriptor reprs and initial fields", "mm/slab.c kmem_cache_t, struct "
                 "slab, struct array_cache; cache_init_objs",
                 lambda: ["KmemCache('r', objsize=1100, num=3)", True,
                          "ArrayCache(avail=2, limit=7, batchcount=3, touched=0)", 2,
                          (-1, -1, 0), ([], 0, 0, "NONE", False, set(), {}),
                          (0, 0, [1, 2, 0xFFFF], 2, None, -1, -1),
                          # kmem_cache_create memsets the descriptor
                          (0, 0, 0, False, False, {}, None, None, [0, 0, 0]),
                          # BUFCTL_END = (kmem_bufctl_t)~0U, BUFCTL_FREE = ~0U - 1 (the
                          # DEBUG mark of an object handed out or parked); the first
                          # refill took all 3 objects of the slab: free is BUFCTL_END
                          (0xFFFF, 0xFFFE, 0xFFFE, 0xFFFF)], reprs)]


def _init_facts() -> list[Fact]:
    """kmem_cache_init (2.6.12): cache_cache (objects ALIGN(152, L1), order 0, on-slab,
    num/left_over by cache_estimate, slab_size ALIGN(num*2 + 24, L1), colour_off L1,
    colour left_over / L1) and every general cache with its DMA twin (SLAB_HWCACHE_ALIGN
    | SLAB_PANIC, offslab_limit from the last on-slab one), newest first on cache_chain;
    for three i386 cache-line sizes (L1_CACHE_SHIFT 5, 6, 7: include/asm-i386/cache.h;
    96 and 192 exist below 64 / 128, include/linux/kmalloc_sizes.h) -- the profile
    with its line size replaced, as another i386 build. slab_break_gfp_order is 1 only
    above 32 MiB of memory (num_physpages counts highmem). g_cpucache_up PARTIAL."""
    from ..model import slab

    def model(line):
        m = _boot(phys_pages=4096, highmem_pages=0)
        p = m.profile
        m.profile = dataclasses.replace(p, L1_CACHE_BYTES=line,
                                        kmalloc_sizes=tuple(k_kmalloc_sizes(line)))
        slab.kmem_cache_init(m)
        st = m.slab
        cc = st.cache_cache
        gen = [(c.name, _model_geo(c), None if c.slabp_cache is None else c.slabp_cache.name)
               for c in reversed(st.cache_chain) if c is not cc]
        return [_model_geo(cc), cc.flags, st.cache_chain[-1] is cc, gen, st.offslab_limit,
                [c.name for c in st.malloc_sizes], [c.name for c in st.malloc_sizes_dma],
                [c.general for c in st.cache_chain], st.g_cpucache_up,
                [(c.limit, c.batchcount, c.free_limit, c.array[0].limit) for c in
                 st.cache_chain]]

    def expected(line):
        cc_size = _align(K_SIZEOF_KMEM_CACHE, line)
        num, left = k_estimate(0, cc_size, line, False)
        cc = {"objsize": cc_size, "align": line, "gfporder": 0, "num": num,
              "left_over": left, "slab_size": _align(num * K_BUFCTL + K_STRUCT_SLAB, line),
              "off_slab": False, "colour_off": line, "colour": left // line}
        gen, limit = k_general_expected(line, 0)
        sizes = k_kmalloc_sizes(line)
        chain_geo = [g for _, g, _ in reversed(gen)] + [cc]
        return [cc, K_NO_REAP, True, gen, limit, [f"size-{s}" for s in sizes],
                [f"size-{s}(DMA)" for s in sizes], [True] * len(gen) + [False], "PARTIAL",
                [(1, 1, 2 + g["num"], 1) for g in chain_geo]]

    def breaks():
        out = []
        for phys, high in ((8192, 0), (8193, 0), (8000, 193), (8000, 192), (4096, 0)):
            m = _boot(phys_pages=phys, highmem_pages=high)
            out.append(m.slab.slab_break_gfp_order)
        return out

    def too_small():
        # 26 descriptors in 15-object order-0 cache_cache slabs need 2 frames: a 40-frame
        # machine with frames 0..30 reserved has 2 free low frames and boots, with
        # 0..31 it has 1 and is refused (spec/slab.md Boot: ConfigError phys_pages)
        from ..model.errors import ConfigError
        out = []
        for prof, reserved, high in (("linux-2.6-i386", 31, 0), ("linux-2.6-i386", 32, 0),
                                     ("linux-6.x-x86_64", 31, 0),
                                     ("linux-6.x-x86_64", 32, 0),
                                     # free highmem frames do not count: a slab needs
                                     # a direct-map address
                                     ("linux-2.6-i386", 32, 64)):
            try:
                m = _boot(profile=prof, phys_pages=40, highmem_pages=high,
                          reserved=((0, reserved),))
                out.append(sum(z.free_pages for z in m.zonelists[1]))
            except ConfigError as exc:
                out.append((exc.field, "needs 2 free low-memory frames for 26 cache "
                            "descriptors; only 1 are free" in str(exc)))
        return out

    def slub():
        m = _boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
        cc = m.slab.cache_cache
        return ([(c.name, _model_geo(c)) for c in reversed(m.slab.cache_chain)],
                cc.name, [c.general for c in m.slab.cache_chain])

    def slub_expected():
        names = {1024: "1k", 2048: "2k", 4096: "4k", 8192: "8k"}
        out = [("kmem_cache", k_slub_geo(256, 64, K_HWCACHE))]
        sizes = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
        for s in sizes:
            # create_kmalloc_caches: power-of-two sizes naturally aligned
            a = s if s & (s - 1) == 0 else 0
            label = names.get(s, str(s))
            out += [(f"kmalloc-{label}", k_slub_geo(s, a, 0)),
                    (f"dma-kmalloc-{label}", k_slub_geo(s, a, 0))]
        return out, "kmem_cache", [True] * 26 + [False]
    return ([Fact(f"kmem_cache_init with L1 {line}: cache_cache, general caches, "
                  "offslab_limit, names, chain order, head arrays",
                  "mm/slab.c kmem_cache_init, kmem_cache_create, cache_estimate",
                  lambda line=line: expected(line), lambda line=line: model(line))
             for line in (32, 64, 128)]
            + [Fact("a machine whose free low memory cannot hold the 26 descriptors' "
                    "cache_cache slabs is refused", "mm/slab.c kmem_cache_init "
                    "(kmem_cache_create of the general caches, SLAB_PANIC)",
                    # SLAB: ceil(26 / 15) order-0 slabs; SLUB: one order-1 slab of 32
                    lambda: [-(-26 // k_estimate(0, 256, 128, False)[0]), ("phys_pages", True),
                             -(-26 // k_slub_geo(256, 64, K_HWCACHE)["num"])
                             << k_slub_geo(256, 64, K_HWCACHE)["gfporder"],
                             ("phys_pages", True), ("phys_pages", True)],
                    too_small),
               Fact("slab_break_gfp_order: 1 only above 32 MiB (highmem counted)",
                    "mm/slab.c kmem_cache_init (num_physpages)",
                    lambda: [0, 1, 1, 0, 0], breaks),
               Fact("SLUB kmem_cache_init: kmem_cache and the kmalloc caches' geometry",
                    "Linux 6.8 mm/slub.c kmem_cache_init, mm/slab_common.c "
                    "create_kmalloc_caches, kmalloc_info", slub_expected, slub)])


def _internal_by_cache(m) -> dict:
    from ..model import slab  # noqa: F401
    p = m.profile
    out: dict = {}
    for addr, what in m.slab.internal.items():
        if what.startswith("struct slab"):
            continue
        name = m.slab.page_slab[(addr - p.PAGE_OFFSET) >> p.PAGE_SHIFT].cache.name
        out[name] = out.get(name, 0) + 1
    return out


def _offslab_mgmt(m) -> dict:
    """Per off-slab cache with slabs: (slabs, the caches holding their struct slabs,
    how many internal objects say they are its struct slab)."""
    p = m.profile
    out = {}
    for c in m.slab.cache_chain:
        if not c.off_slab or not c.slabs:
            continue
        holders = {m.slab.page_slab[(s.mgmt - p.PAGE_OFFSET) >> p.PAGE_SHIFT].cache.name
                   for s in c.slabs.values()}
        named = sum(1 for w in m.slab.internal.values() if w == f"struct slab of cache {c.name}")
        out[c.name] = (len(c.slabs), holders, named)
    return out


def _offslab_expected(slabs: dict, line: int = 128) -> dict:
    """alloc_slabmgmt: one struct slab per slab of an off-slab general cache, an object
    of kmem_find_general_cachep(slab_size) (geometry from k_general_expected)."""
    gen, _ = k_general_expected(line, 0)
    out = {}
    for name, geo, slabp in gen:
        if geo["off_slab"] and slabs.get(name):
            out[name] = (slabs[name], {slabp}, slabs[name])
    return out


def k_bootstrap_internal(cpus: int, line: int = 128, extra=()) -> dict:
    """What kmem_cache_init leaves kmalloc'ed, per general cache: a descriptor in
    kmem_cache per cache but cache_cache (static); after enable_cpucache of each cache
    (cache_cache and every general cache, plus `extra` object sizes) one array per CPU
    of 16 + 4*limit bytes and one shared array of 16 + 4*batchcount*shared bytes; the
    boot head arrays are kfree'd by do_tune_cpucache."""
    sizes = k_kmalloc_sizes(line)
    objsizes = [_align(K_SIZEOF_KMEM_CACHE, line)]
    for s in sizes:
        objsizes += [s, s]
    objsizes += list(extra)
    out = {"kmem_cache": len(objsizes) - 1}
    for objsize in objsizes:
        limit, batch, shared = k_cpucache(objsize)
        for nbytes, count in ((16 + 4 * limit, cpus), (16 + 4 * batch * shared, 1)):
            name = f"size-{k_general_class(nbytes, sizes)}"
            out[name] = out.get(name, 0) + count
    return out


def _bootstrap_facts() -> list[Fact]:
    """The memory side of kmem_cache_init at the first slab call (2.6.12 mm/slab.c
    kmem_cache_init steps 2-5, enable_cpucache, cpuup_callback CPU_UP_PREPARE): every
    cache's descriptor, head arrays replaced, real arrays for each CPU and a shared one;
    the kmalloc'ed objects per general cache; the tunables and free_limit = (1 +
    online CPUs) * batchcount + num with max(1, cpus - 1) others online at the last
    CPU_UP_PREPARE; g_cpucache_up FULL. And a bootstrap that runs out of memory gives
    every page back and leaves each cache as boot made it (spec/slab.md: all or
    nothing), then succeeds once memory is back."""
    from ..model import page_alloc as pa, slab
    from ..model.mem_map import PG_slab

    def model(cpus):
        m = _boot(phys_pages=4096, highmem_pages=0, cpus=cpus)
        ok = slab._bootstrap(m)
        st = m.slab
        cc = st.cache_cache
        descs = [c.addr for c in st.cache_chain if c is not cc]
        in_cc = all(st.page_slab[(a - m.profile.PAGE_OFFSET) >> 12].cache is cc
                    for a in descs)
        return [ok, st.g_cpucache_up, st.ready, _internal_by_cache(m), cc.addr,
                len(set(descs)), in_cc,
                [(c.limit, c.batchcount, c.shared, c.free_limit, len(c.array),
                  [a.limit for a in c.array], c.shared_array.limit)
                 for c in st.cache_chain],
                st.internal.get(st.malloc_sizes[0].addr), _offslab_mgmt(m),
                # kmem_cache_init runs on the boot CPU before smp_init: no other CPU's
                # per-CPU page lists are touched
                [pcp.count for z in m.zones for ps in z.pageset[1:] for pcp in ps.pcp]]

    def expected(cpus):
        st = _boot(phys_pages=4096, highmem_pages=0).slab        # geometry only (num)
        rows = []
        for c in st.cache_chain:
            limit, batch, shared = k_cpucache(c.objsize)
            rows.append((limit, batch, shared, max(2, cpus) * batch + c.num, cpus,
                         [limit] * cpus, batch * shared))
        return [True, "FULL", True, k_bootstrap_internal(cpus), None, 26, True, rows,
                "descriptor of cache size-32", _offslab_expected(model_slabs(cpus)),
                [0] * (2 * 3 * (cpus - 1))]

    def model_slabs(cpus):
        m = _boot(phys_pages=4096, highmem_pages=0, cpus=cpus)
        slab._bootstrap(m)
        return {c.name: len(c.slabs) for c in m.slab.cache_chain if c.slabs}

    def undo():
        m = _boot(phys_pages=4096, highmem_pages=0)
        held = _exhaust(m)
        # one order-6 block back, taken again as order-1 blocks, two of them back: the
        # bootstrap then gets 8 slab pages and fails part-way (arrays, not descriptors)
        page, order = held.pop()
        pa.__free_pages(m, page, order)
        while True:
            page = pa.alloc_pages(m, K_GFP_KERNEL, 1)
            if page is None:
                break
            held.append((page, 1))
        for page, order in held[-2:]:
            pa.__free_pages(m, page, order)
        del held[-2:]
        free0 = pa.nr_free_pages(m)
        geo0 = [(c.name, _model_geo(c)) for c in m.slab.cache_chain]
        got = slab.kmem_cache_create(m, "late", 64, 0, 0)
        st = m.slab
        after = [got, pa.nr_free_pages(m) == free0, st.g_cpucache_up, dict(st.internal),
                 set(st.parked), sum(len(c.slabs) for c in st.cache_chain),
                 {c.addr for c in st.cache_chain},
                 {(c.limit, c.batchcount, c.shared, len(c.array), c.array[0].limit,
                   c.array[0].addr, c.shared_array, c.colour_next, c.free_objects,
                   c.free_limit - c.num) for c in st.cache_chain},
                 [(c.name, _model_geo(c)) for c in st.cache_chain] == geo0,
                 any(m.mem_map.flags[p] & PG_slab for p in range(m.nr_pages))]
        for page, order in held:
            pa.__free_pages(m, page, order)
        late = slab.kmem_cache_create(m, "late", 64, 0, 0)
        return after + [late is not None and m.slab.ready, _internal_by_cache(m)]
    return [Fact(f"bootstrap with {cpus} CPU(s): descriptors, arrays, tunables, "
                 "kmalloc'ed objects per cache", "mm/slab.c kmem_cache_init, "
                 "enable_cpucache, do_tune_cpucache, alloc_arraycache, cpuup_callback",
                 lambda cpus=cpus: expected(cpus), lambda cpus=cpus: model(cpus))
            for cpus in (1, 2, 3)] + [
            Fact("bootstrap out of memory: everything back, caches as boot left them",
                 "spec/slab.md (kmem_cache_init all or nothing; 2.6.12 would panic)",
                 lambda: [None, True, "PARTIAL", {}, set(), 0, {None},
                          {(1, 1, 0, 1, 1, None, None, 0, 0, 2)}, True, False, True,
                          k_bootstrap_internal(1, extra=[64])], undo)]


def _lists(c) -> list:
    """Each list forward (slab_list), backward (prev links from the tail), its count and
    its head/tail ids, and each listed slab's list tag."""
    out = []
    for which in range(3):
        lst = c.lists[which]
        back, sid = [], lst.tail
        while sid != -1 and len(back) <= len(c.slabs):
            back.append(sid)
            sid = c.slabs[sid].prev
        fwd = [s.id for s in c.slab_list(which)]
        out.append((fwd, back[::-1], lst.nr, lst.head, lst.tail,
                    [c.slabs[i].list for i in fwd]))
    return out


def _grow_facts() -> list[Fact]:
    """cache_grow (2.6.12): the colour is colour_next * colour_off, colour_next steps and
    wraps at colour (to 0 when colour is 0 or 1), taken even when __GFP_NO_GROW
    returns at once? no: NO_GROW returns before the colour step and changes nothing;
    alloc_slabmgmt puts on-slab management at the colour offset and the objects
    slab_size after it (s_mem = page + colour + slab_size), off-slab management in the
    slabp_cache (objects at the colour offset); every page of the slab gets PG_slab and
    points to it; the slab goes to the tail of slabs_free, free_objects += num. The list
    primitives (list_del, list_add_tail, list_move, list_move_tail) keep both directions
    and the counts. slab_destroy: PG_slab cleared on every page, the pages to the buddy
    allocator, an off-slab struct slab back to its general cache (kmem_cache_free on
    the CPU's array). SLUB: no colour, objects from the slab's first byte."""
    from ..model import page_alloc as pa, slab
    from ..model.mem_map import PG_slab

    def grow_run(m, c, n):
        out = []
        for _ in range(n):
            before = set(c.slabs)
            ok = slab.cache_grow(m, c, K_GFP_KERNEL)
            (pfn,) = set(c.slabs) - before
            s = c.slabs[pfn]
            base = m.profile.PAGE_OFFSET + (pfn << 12)
            pages = range(pfn, pfn + (1 << c.gfporder))
            mg = None
            if s.mgmt is not None:
                mg = (m.slab.page_slab[(s.mgmt - m.profile.PAGE_OFFSET) >> 12].cache.name,
                      m.slab.internal[s.mgmt])
            out.append((ok, s.s_mem - base, s.colouroff, c.colour_next, mg,
                        all(m.mem_map.flags[p] & PG_slab for p in pages),
                        all(m.slab.page_slab[p] is s for p in pages)))
        return out

    def k_grow(g, n, name, offslab_mgmt=None):
        out, nxt = [], 0
        for _ in range(n):
            offset = nxt * g["colour_off"]
            nxt += 1
            if nxt >= g["colour"]:
                nxt = 0
            if g["off_slab"]:
                out.append((True, offset, offset, nxt,
                            (offslab_mgmt, f"struct slab of cache {name}"), True, True))
            else:
                out.append((True, offset + g["slab_size"], offset + g["slab_size"], nxt,
                            None, True, True))
        return out
    small = {"phys_pages": 4096, "highmem_pages": 0}
    cases = [("cd", 1100, 0, small, 0, 7), ("c256", 256, K_HWCACHE, small, 0, 3),
             ("off", 4096, 0, small, 0, 3), ("c1100", 1100, 0, {}, 1, 5),
             ("c3000", 3000, 0, {}, 1, 3)]

    def model():
        out = []
        for name, size, flags, kw, _brk, n in cases:
            m = _boot(**kw)
            c = slab.kmem_cache_create(m, name, size, 0, flags)
            out.append(grow_run(m, c, n))
            before = _hash(m)
            out.append((slab.cache_grow(m, c, K_GFP_KERNEL | K_GFP_NO_GROW),
                        _hash(m) == before))
            out.append((c.free_objects, c.slabs_free.nr, len(c.slabs)))
        return out

    def expected():
        out = []
        for name, size, flags, _kw, brk, n in cases:
            g = k_geo(size, 0, flags, line=128, offslab_limit=116, break_order=brk)
            slabp = k_general_class(g["slab_size"], k_kmalloc_sizes(128))
            out.append(k_grow(g, n, name, f"size-{slabp}"))
            out.append((False, True))
            out.append((n * g["num"], n, n))
        return out

    def lists():
        m = _boot(phys_pages=4096, highmem_pages=0)
        c = slab.kmem_cache_create(m, "l", 1100, 0, 0)
        ids = []
        for _ in range(7):
            before = set(c.slabs)
            slab.cache_grow(m, c, K_GFP_KERNEL)
            ids += list(set(c.slabs) - before)
        a, b, cc, d, e, f, g = (c.slabs[i] for i in ids)
        steps = [lambda: None, lambda: slab._list_del(c, d), lambda: slab._list_del(c, a),
                 lambda: slab._list_del(c, g), lambda: slab._list_add_tail(c, a, 0),
                 lambda: slab._list_add_tail(c, g, 0), lambda: slab._list_move(c, e, 0, False),
                 lambda: slab._list_move(c, b, 0, True),
                 lambda: slab._list_move(c, f, 1, False),
                 lambda: slab._list_move(c, cc, 1, True),
                 lambda: slab._list_add_tail(c, d, 2),
                 lambda: slab._list_move(c, a, 2, True),
                 lambda: slab._list_move(c, g, 1, False)]
        out = []
        for step in steps:
            step()
            out.append(_lists(c))
        return ids, out

    def lists_expected():
        ids, _ = lists()
        a, b, cc, d, e, f, g = ids
        states = [([], [], [a, b, cc, d, e, f, g]), ([], [], [a, b, cc, e, f, g]),
                  ([], [], [b, cc, e, f, g]), ([], [], [b, cc, e, f]),
                  ([a], [], [b, cc, e, f]), ([a, g], [], [b, cc, e, f]),
                  ([e, a, g], [], [b, cc, f]), ([e, a, g, b], [], [cc, f]),
                  ([e, a, g, b], [f], [cc]), ([e, a, g, b], [f, cc], []),
                  ([e, a, g, b], [f, cc], [d]), ([e, g, b], [f, cc], [d, a]),
                  ([e, b], [g, f, cc], [d, a])]
        return ids, [[(ls, ls, len(ls), ls[0] if ls else -1, ls[-1] if ls else -1,
                       [w] * len(ls)) for w, ls in enumerate(st)] for st in states]

    def destroy():
        out = []
        for kw, size in (({"phys_pages": 4096, "highmem_pages": 0}, 4096), ({}, 1100),
                         ({"phys_pages": 4096, "highmem_pages": 0}, 1100)):
            m = _boot(**kw)
            c = slab.kmem_cache_create(m, "d", size, 0, 0)
            slab.cache_grow(m, c, K_GFP_KERNEL)
            (pfn,) = c.slabs
            s = c.slabs[pfn]
            mgmt = s.mgmt
            slab._list_del(c, s)
            free0 = pa.nr_free_pages(m)
            slab.slab_destroy(m, c, s)
            pages = range(pfn, pfn + (1 << c.gfporder))
            out.append((pfn in c.slabs, any(p in m.slab.page_slab for p in pages),
                        any(m.mem_map.flags[p] & PG_slab for p in pages),
                        pa.nr_free_pages(m) - free0 if c.gfporder else None,
                        None if mgmt is None else (mgmt in m.slab.internal,
                                                   mgmt in m.slab.parked)))
        return out

    def grow_fail():
        # no memory: cache_grow fails but the colour it took is gone (2.6.12 takes it
        # under the cache lock before kmem_getpages); the next slab gets the third
        m = _boot(phys_pages=4096, highmem_pages=0)
        c = slab.kmem_cache_create(m, "nomem", 1100, 0, 0)
        held = _exhaust(m)
        free0 = pa.nr_free_pages(m)
        out = [(slab.cache_grow(m, c, K_GFP_KERNEL), c.colour_next, len(c.slabs),
                c.free_objects, pa.nr_free_pages(m) == free0) for _ in range(2)]
        for page, order in held:
            pa.__free_pages(m, page, order)
        return out + grow_run(m, c, 1)

    def zones():
        # kmem_getpages: a slab needs a kernel (direct-map) address and the cache's
        # own memory type: __GFP_HIGHMEM and __GFP_DMA of the caller are not the
        # cache's (cachep->gfpflags decides); seed machine: DMA below pfn 4096,
        # low memory below 229376 (896 MiB)
        m = _boot()
        c = slab.kmem_cache_create(m, "z", 1100, 0, 0)
        d = slab.kmem_cache_create(m, "zd", 1100, 0, K_CACHE_DMA)
        out = []
        for cache, gfp in ((c, K_GFP_KERNEL | 0x02), (c, K_GFP_KERNEL | K_GFP_DMA),
                           (c, K_GFP_KERNEL | 0x03), (d, K_GFP_KERNEL),
                           (d, K_GFP_KERNEL | 0x02)):
            before = set(cache.slabs)
            slab.cache_grow(m, cache, gfp)
            (pfn,) = set(cache.slabs) - before
            out.append("DMA" if pfn < 4096 else "Normal" if pfn < 229376 else "HighMem")
        return out

    def offslab_refill():
        # the off-slab struct slab's general cache (size-32) has no object left: its
        # kmem_cache_alloc grows size-32 with the caller's flags less the zone bits
        # (2.6.12 alloc_slabmgmt with local_flags)
        from ..model.kmalloc import kmalloc
        m = _boot()
        c = slab.kmem_cache_create(m, "offr", 4096, 0, 0)
        s32 = m.slab.malloc_sizes[0]
        while s32.free_objects or s32.array[0].entry or s32.shared_array.entry:
            kmalloc(m, 32, K_GFP_KERNEL)
        slabs32 = len(s32.slabs)
        ok = slab.cache_grow(m, c, K_GFP_KERNEL | K_GFP_DMA)
        (pfn,) = c.slabs
        mg = c.slabs[pfn].mgmt
        holder = m.slab.page_slab[(mg - m.profile.PAGE_OFFSET) >> 12]
        return [ok, len(s32.slabs) - slabs32, holder.cache is s32,
                holder.id >= 4096, pfn >= 4096]

    def slub_grow():
        m = _boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
        c = slab.kmem_cache_create(m, "sg", 1100, 0, 0)
        return grow_run(m, c, 3), c.free_objects
    g1100 = k_geo(1100, 0, 0, line=128, offslab_limit=116, break_order=1)
    g1100s = k_geo(1100, 0, 0, line=128, offslab_limit=116, break_order=0)
    sg = k_slub_geo(1100, 0, 0)
    return [Fact("cache_grow: colour cycle, management, pages, lists (5 caches)",
                 "mm/slab.c cache_grow, alloc_slabmgmt, set_slab_attr, kmem_getpages",
                 expected, model),
            Fact("cache_grow: slab pages from the cache's own memory type, never highmem",
                 "mm/slab.c kmem_getpages (flags |= cachep->gfpflags, page_address)",
                 lambda: ["Normal", "Normal", "Normal", "DMA", "DMA"], zones),
            Fact("cache_grow of an off-slab cache whose struct-slab cache must grow",
                 "mm/slab.c cache_grow, alloc_slabmgmt (local_flags), kmem_getpages",
                 lambda: [True, 1, True, True, True], offslab_refill),
            Fact("cache_grow without memory: False, the colour still taken",
                 "mm/slab.c cache_grow (colour_next under the lock, then kmem_getpages)",
                 lambda: [(False, 1, 0, 0, True), (False, 2, 0, 0, True),
                          (True, g1100s["slab_size"] + 2 * g1100s["colour_off"],
                           g1100s["slab_size"] + 2 * g1100s["colour_off"], 3, None, True,
                           True)],
                 grow_fail),
            Fact("slab list primitives: del, add_tail, move to head and tail",
                 "include/linux/list.h list_del, list_add_tail, list_move, list_move_tail",
                 lists_expected, lists),
            Fact("slab_destroy: off-slab (order 0), on-slab order 1 and order 0",
                 "mm/slab.c slab_destroy, kmem_freepages",
                 lambda: [(False, False, False, None, (False, True)),
                          (False, False, False, 1 << g1100["gfporder"], None),
                          (False, False, False, None, None)], destroy),
            Fact("SLUB cache_grow: no colour, objects from the slab's first byte",
                 "Linux 6.8 mm/slub.c allocate_slab (no colouring)",
                 lambda: ([(True, 0, 0, 0, None, True, True)] * 3, 3 * sg["num"]),
                 slub_grow)]


def _destroy_facts() -> list[Fact]:
    """kmem_cache_destroy (2.6.12): the cache leaves cache_chain, __cache_shrink drains
    its arrays and frees its free slabs; objects still in use: "Can't free all objects",
    back at the HEAD of cache_chain, 1. Otherwise every CPU's array and the shared one
    kfree'd, the descriptor back to cache_cache, 0. Misuse (spec/slab.md): a destroyed
    cache, cache_cache, a general cache, a non-cache or another machine's cache, a CPU
    that is not one; each leaves the state unchanged. _bug_if_not_cache also guards
    kmem_cache_shrink."""
    from ..model import slab

    def model():
        m = _boot(phys_pages=4096, highmem_pages=0)
        b = slab.kmem_cache_create(m, "b", 100, 0, 0)
        internal0 = set(m.slab.internal)
        chain0 = list(m.slab.cache_chain)
        a = slab.kmem_cache_create(m, "a", 1100, 0, 0)
        obj = slab.kmem_cache_alloc(m, a, K_GFP_KERNEL)
        busy = slab.kmem_cache_destroy(m, a)
        busy_state = (m.slab.cache_chain[0] is a, m.slab.cache_chain[1] is b, a.dead,
                      slab.find_cache(m, "a") is a,
                      (a.slabs_full.nr, a.slabs_partial.nr))
        slab.kmem_cache_free(m, a, obj)
        done = slab.kmem_cache_destroy(m, a)
        done_state = (a.dead, a in m.slab.cache_chain, m.slab.cache_chain == chain0,
                      set(m.slab.internal) == internal0, len(a.slabs),
                      any(s.cache is a for s in m.slab.page_slab.values()),
                      slab.find_cache(m, "a"), a.shared_array)
        other = _boot(phys_pages=4096, highmem_pages=0)
        oc = slab.kmem_cache_create(other, "o", 64, 0, 0)
        before = _hash(m)
        misuse = [_outcome(call) for call in (
            lambda: slab.kmem_cache_destroy(m, a),
            lambda: slab.kmem_cache_destroy(m, m.slab.cache_cache),
            lambda: slab.kmem_cache_destroy(m, m.slab.malloc_sizes[0]),
            lambda: slab.kmem_cache_destroy(m, m.slab.malloc_sizes_dma[-1]),
            lambda: slab.kmem_cache_destroy(m, "b"),
            lambda: slab.kmem_cache_destroy(m, None),
            lambda: slab.kmem_cache_destroy(m, oc),
            lambda: slab.kmem_cache_destroy(m, b, 1),
            lambda: slab.kmem_cache_destroy(m, b, -1),
            lambda: slab.kmem_cache_shrink(m, a),
            lambda: slab.kmem_cache_shrink(m, "b"),
            lambda: slab.kmem_cache_shrink(m, oc))]
        unchanged = _hash(m) == before
        empty = slab.kmem_cache_destroy(m, b)
        return [busy, busy_state, done, done_state, misuse, unchanged, empty, b.dead,
                len(m.slab.cache_chain)]
    def slub():
        # 6.x kmem_cache_destroy: a cache that still has objects is kept ("Slab cache
        # still has objects"); an empty one is gone with its slabs (no arrays in SLUB)
        m = _boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
        slab.kmem_cache_create(m, "first", 64, 0, 0)
        internal0, chain0 = set(m.slab.internal), list(m.slab.cache_chain)
        c = slab.kmem_cache_create(m, "s", 100, 0, 0)
        obj = slab.kmem_cache_alloc(m, c, K_GFP_KERNEL)
        busy = (slab.kmem_cache_destroy(m, c), m.slab.cache_chain[0] is c, c.dead)
        slab.kmem_cache_free(m, c, obj)
        done = (slab.kmem_cache_destroy(m, c), c.dead, m.slab.cache_chain == chain0,
                set(m.slab.internal) == internal0, len(c.slabs))
        return busy, done
    return [Fact("SLUB kmem_cache_destroy: busy kept, empty gone",
                 "Linux 6.8 mm/slab_common.c kmem_cache_destroy, mm/slub.c "
                 "__kmem_cache_shutdown", lambda: ((1, True, False), (0, True, True, True, 0)),
                 slub),
            Fact("kmem_cache_destroy: busy (1, back at the head), empty (0, all freed), "
                 "misuse", "mm/slab.c kmem_cache_destroy, __cache_shrink",
                 lambda: [1, (True, True, False, True, (0, 1)), 0,
                          (True, False, True, True, 0, False, None, None),
                          ["destroyed_cache", "destroy_cache_cache",
                           "destroy_general_cache", "destroy_general_cache", "bad_cache",
                           "bad_cache", "bad_cache", "ValueError", "ValueError",
                           "destroyed_cache", "bad_cache", "bad_cache"], True, 0, True,
                          27], model)]


SLAB_PROBES = [0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513,
               1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, 8192, 8193, 16384, 16385,
               32768, 32769, 65536, 65537, 131071, 131072, 131073, 1 << 30]
SLUB_PROBES = [1, 7, 8, 9, 16, 17, 32, 33, 64, 65, 95, 96, 97, 128, 129, 191, 192, 193, 256,
               257, 512, 513, 1024, 1025, 2048, 2049, 4096, 4097, 8192, 8193]


def _lookup_facts() -> list[Fact]:
    """kmem_find_general_cachep (2.6.12 __find_general_cachep): the first malloc_sizes
    entry with cs_size >= size, its cs_dmacachep when GFP_DMA is set (other bits,
    __GFP_HIGHMEM included, do not matter), none past the last (the ULONG_MAX
    sentinel) -- at every class boundary, on SLAB and SLUB (6.x kmalloc_info names);
    find_cache by name (the first on cache_chain; None for a name no cache has)."""
    from ..model import slab
    gfps = [0, K_GFP_DMA, K_GFP_KERNEL, K_GFP_KERNEL | K_GFP_DMA, 0x02, 0x03]

    def names(m, probes):
        out = []
        for n in probes:
            for g in gfps:
                c = slab.kmem_find_general_cachep(m, n, g)
                out.append(None if c is None else c.name)
        return out

    def slab_expected():
        sizes = k_kmalloc_sizes(128)
        return [None if k_general_class(n, sizes) is None else
                f"size-{k_general_class(n, sizes)}" + ("(DMA)" if g & 1 else "")
                for n in SLAB_PROBES for g in gfps]

    def slub_expected():
        sizes = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192]
        label = {1024: "1k", 2048: "2k", 4096: "4k", 8192: "8k"}
        out = []
        for n in SLUB_PROBES:
            for g in gfps:
                s = k_general_class(n, sizes)
                out.append(None if s is None else ("dma-" if g & 1 else "")
                           + f"kmalloc-{label.get(s, s)}")
        return out
    find_names = ["kmem_cache", "size-32", "size-32(DMA)", "size-131072", "size-131072(DMA)",
                  "size-4096", "mine", "", "nope", "size-33", "SIZE-32", "size-32 ", None]

    def find_model():
        m = _boot(phys_pages=4096, highmem_pages=0)
        slab.kmem_cache_create(m, "mine", 72, 0, 0)
        out = []
        for n in find_names:
            c = slab.find_cache(m, n)
            out.append(None if c is None else (c.name, c.objsize))
        return out

    def find_expected():
        objsize = {"kmem_cache": 256, "mine": 72}
        out = []
        for n in find_names:
            if n in objsize:
                out.append((n, objsize[n]))
            elif n and n.startswith("size-") and n[5:].split("(")[0] in {
                    str(s) for s in k_kmalloc_sizes(128)}:
                out.append((n, int(n[5:].split("(")[0])))
            else:
                out.append(None)
        return out
    return [Fact("kmem_find_general_cachep at every class boundary x 6 gfp masks (SLAB)",
                 "mm/slab.c kmem_find_general_cachep, __find_general_cachep",
                 slab_expected, lambda: names(_boot(phys_pages=4096, highmem_pages=0),
                                              SLAB_PROBES)),
            Fact("kmem_find_general_cachep at every class boundary x 6 gfp masks (SLUB)",
                 "Linux 6.8 mm/slab_common.c kmalloc_slab, kmalloc_info",
                 slub_expected, lambda: names(_boot(profile="linux-6.x-x86_64",
                                                    highmem_pages=0, phys_pages=65536),
                                              SLUB_PROBES)),
            Fact("find_cache by name", "mm/slab.c cache_chain (list_for_each, strcmp)",
                 find_expected, find_model)]


def _slabinfo_facts() -> list[Fact]:
    """/proc/slabinfo (2.6.12 s_show) of known states, every column computed by hand:
    a 1100-byte cache after 16 allocations (limit 24, batchcount 12: each refill grows
    a slab of 3 and takes all 3; 6 full slabs, 2 objects parked, colour_next 6 mod 5),
    a 64-byte cache after 1 allocation (an untouched refill takes BATCHREFILL_LIMIT 16:
    one partial slab of 61, 15 parked), a cache grown once and unused (one free slab),
    an off-slab cache (4096 B, slab_size 26 unaligned), and a 64-byte cache after 62
    allocations (one full slab and one partial slab of 60) and two more grown."""
    from ..model import slab

    def model():
        m = _boot(phys_pages=4096, highmem_pages=0)
        c1 = slab.kmem_cache_create(m, "cd", 1100, 0, 0)
        for _ in range(16):
            slab.kmem_cache_alloc(m, c1, K_GFP_KERNEL)
        c2 = slab.kmem_cache_create(m, "p64", 64, 0, 0)
        slab.kmem_cache_alloc(m, c2, K_GFP_KERNEL)
        c3 = slab.kmem_cache_create(m, "g", 1100, 0, 0)
        slab.cache_grow(m, c3, K_GFP_KERNEL)
        slab.kmem_cache_create(m, "o4k", 4096, 0, 0)
        slab.kmem_cache_create(m, "o10k", 10000, 0, 0)
        c6 = slab.kmem_cache_create(m, "flush", 64, 0, 0)
        objs = [slab.kmem_cache_alloc(m, c6, K_GFP_KERNEL) for _ in range(121)]
        for obj in objs:
            slab.kmem_cache_free(m, c6, obj)
        c5 = slab.kmem_cache_create(m, "mix", 64, 0, 0)
        for _ in range(62):
            slab.kmem_cache_alloc(m, c5, K_GFP_KERNEL)
        for _ in range(2):
            slab.cache_grow(m, c5, K_GFP_KERNEL)
        info = {e["name"]: e for e in slab.slabinfo(m)}
        return [{k: info[n][k] for k in expected()[0]}
                for n in ("cd", "p64", "g", "o4k", "mix", "o10k", "flush")]

    def entry(name, g, active_objs, active_slabs, num_slabs, avail, touched, colour_next,
              sharedavail=0):
        limit, batch, shared = k_cpucache(g["objsize"])
        return {"name": name, "active_objs": active_objs, "num_objs": num_slabs * g["num"],
                "objsize": g["objsize"], "objperslab": g["num"],
                "pagesperslab": 1 << g["gfporder"], "active_slabs": active_slabs,
                "num_slabs": num_slabs,
                "tunables": {"limit": limit, "batchcount": batch,
                             "sharedfactor": batch * shared // batch},
                "sharedavail": sharedavail, "free_limit": 2 * batch + g["num"],
                "arrays": [{"cpu": 0, "avail": avail, "limit": limit, "batchcount": batch,
                            "touched": touched}],
                "shared": {"avail": sharedavail, "limit": batch * shared, "touched": 0},
                "colour": {"colour": g["colour"], "colour_off": g["colour_off"],
                           "colour_next": colour_next, "left_over": g["left_over"]},
                "gfporder": g["gfporder"], "off_slab": g["off_slab"],
                "slab_size": g["slab_size"], "align": g["align"]}

    def expected():
        def geo(size):
            return k_geo(size, 0, 0, line=128, offslab_limit=116, break_order=0)
        g1, g2, g4 = geo(1100), geo(64), geo(4096)
        return [entry("cd", g1, 18, 6, 6, 2, 1, 6 % g1["colour"]),
                entry("p64", g2, 16, 1, 1, 15, 1, 0),
                entry("g", g1, 0, 0, 1, 0, 0, 1),
                entry("o4k", g4, 0, 0, 0, 0, 0, 0),
                # 16 + 45 objects empty slab 1 (a refill that finds objects does not
                # grow); the 62nd allocation grows slab 2 and takes batchcount 60
                entry("mix", g2, g2["num"] + 60, 2, 4, 59, 1, 0),
                entry("o10k", geo(10000), 0, 0, 0, 0, 0, 0),
                # 121 allocations: 16 + 45 from slab 1, 60 from slab 2; 121 frees: the
                # 121st finds the array at its limit 120 and cache_flusharray moves the
                # oldest batchcount 60 to the shared array
                entry("flush", g2, g2["num"] + 60, 2, 2, 61, 1, 0, sharedavail=60)]
    def slub():
        m = _boot(profile="linux-6.x-x86_64", highmem_pages=0, phys_pages=65536)
        c = slab.kmem_cache_create(m, "su", 100, 0, 0)
        for _ in range(3):
            slab.kmem_cache_alloc(m, c, K_GFP_KERNEL)
        e = next(e for e in slab.slabinfo(m) if e["name"] == "su")
        return [e[k] for k in ("active_objs", "num_objs", "objsize", "objperslab",
                               "pagesperslab", "active_slabs", "num_slabs", "tunables",
                               "sharedavail", "arrays", "shared")]

    def slub_expected():
        g = k_slub_geo(100, 0, 0)
        # 6.x slabinfo of SLUB: tunables 0 0 0, no arrays; three objects from the
        # first (partial) slab
        return [3, g["num"], g["objsize"], g["num"], 1 << g["gfporder"], 1, 1,
                {"limit": 0, "batchcount": 0, "sharedfactor": 0}, 0, [], None]
    return [Fact("slabinfo columns of seven known caches", "mm/slab.c s_show, "
                 "cache_alloc_refill, cache_grow, cache_flusharray", expected, model),
            Fact("SLUB slabinfo: zero tunables, no arrays", "Linux 6.8 mm/slub.c "
                 "get_slabinfo, slabinfo_show_stats; mm/slab_common.c cache_show",
                 slub_expected, slub)]


FACT_GROUPS = [_create_misuse_facts, _create_accept_facts, _create_null_facts,
               _geometry_sweep_facts, _helpers_facts, _init_facts, _bootstrap_facts,
               _grow_facts, _destroy_facts, _lookup_facts, _slabinfo_facts]
