"""Lemmas over parameters, proved by Z3 for every value of the stated width.

Buddy arithmetic on 20-bit page indices (all orders), the model's `//`/`%` forms
(model/buddy_math.py, checked by CrossHair) equal to the kernel's bitwise forms, and the
i386 address translations on 32-bit words, and slab colouring (mm/slab.c 2.6.12
kmem_cache_create / cache_estimate / cache_grow) for every cache geometry. kmalloc's
class lookup is checked exhaustively (every size 1..131072) rather than by Z3: it is a
table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import z3

from ..model import kmalloc
from ..model.profiles import LINUX_2_6_I386

W, MAX_ORDER = 20, 11
MAX_GFP_ORDER = 5                    # mm/slab.c 2.6.12 (CONFIG_MMU)


@dataclass
class LemmaRow:
    lemma: str
    status: str
    scope: str
    seconds: float

    def to_json(self) -> dict:
        return {"lemma": self.lemma, "status": self.status, "scope": self.scope,
                "seconds": round(self.seconds, 3)}


def _valid(formula) -> str:
    s = z3.Solver()
    s.add(z3.Not(formula))
    r = s.check()
    return "proved" if r == z3.unsat else "refuted" if r == z3.sat else "unknown"


def _lemmas():
    idx, o = z3.BitVec("idx", W), z3.BitVec("o", W)
    one = z3.BitVecVal(1, W)
    bit = one << o
    small = z3.ULT(o, MAX_ORDER)
    aligned = idx & (bit - 1) == 0
    buddy = idx ^ bit
    yield ("buddy_of_buddy", "all 2^20 indices, orders 0..10",
           z3.Implies(small, buddy ^ bit == idx))
    yield ("buddy_aligned_and_distinct", "all aligned indices, orders 0..10",
           z3.Implies(z3.And(small, aligned), z3.And(buddy & (bit - 1) == 0, buddy != idx)))
    yield ("merged_block_aligned", "all aligned indices, orders 0..9",
           z3.Implies(z3.And(z3.ULT(o, MAX_ORDER - 1), aligned),
                      (idx & ~bit) & ((bit << 1) - 1) == 0))
    yield ("merged_block_is_lower_of_pair", "all aligned indices, orders 0..10",
           z3.Implies(z3.And(small, aligned),
                      idx & ~bit == z3.If(z3.ULT(idx, buddy), idx, buddy)))
    # model/buddy_math.py's arithmetic forms are the kernel's bitwise ones
    arith_buddy = z3.If(z3.URem(z3.UDiv(idx, bit), 2) == 0, idx + bit, idx - bit)
    yield ("buddy_index_arith_eq_xor", "all aligned 20-bit indices, orders 0..10",
           z3.Implies(z3.And(small, aligned), arith_buddy == buddy))
    yield ("combined_index_arith_eq_and", "all aligned 20-bit indices, orders 0..9",
           z3.Implies(z3.And(z3.ULT(o, MAX_ORDER - 1), aligned),
                      idx - z3.URem(idx, bit << 1) == idx & ~bit))
    # expand(): the kept block and the listed halves partition the split block
    for high in range(MAX_ORDER):
        for low in range(high):
            halves = [(idx + (1 << h), h) for h in range(low, high)]
            parts = [(idx, low)] + halves
            alignedh = idx & ((1 << high) - 1) == 0
            ok = [z3.ULT(z3.ZeroExt(1, idx), 1 << W)]
            for a, oa in parts:
                ok.append(a & ((1 << oa) - 1) == 0)
            for i, (a, oa) in enumerate(parts):
                for b, ob in parts[i + 1:]:
                    ok.append(z3.Or(z3.ULE(z3.ZeroExt(1, a) + (1 << oa), z3.ZeroExt(1, b)),
                                    z3.ULE(z3.ZeroExt(1, b) + (1 << ob), z3.ZeroExt(1, a))))
            total = sum(1 << oo for _, oo in parts)
            yield (f"expand_partitions_{high}_to_{low}",
                   "all aligned 20-bit indices with the block inside 2^20",
                   z3.Implies(z3.And(alignedh, z3.ULE(z3.ZeroExt(1, idx) + (1 << high), 1 << W)),
                              z3.And(*ok[1:], z3.BoolVal(total == 1 << high))))
    # i386 translations on 32-bit words (include/asm-i386/page.h, pgtable-2level.h)
    p, prot = z3.BitVec("paddr", 32), z3.BitVec("prot", 32)
    off = z3.BitVecVal(LINUX_2_6_I386.PAGE_OFFSET, 32)
    yield ("pa_va_roundtrip", "every physical address below 896 MiB (32-bit)",
           z3.Implies(z3.ULT(p, 896 << 20), z3.And((p + off) - off == p, z3.UGE(p + off, off))))
    pfn = z3.BitVec("pfn", 32)
    yield ("pte_roundtrip", "every 20-bit pfn, every 12-bit protection (32-bit pte)",
           z3.Implies(z3.And(z3.ULT(pfn, 1 << 20), z3.ULT(prot, 4096)),
                      z3.And(z3.LShR((pfn << 12) | prot, 12) == pfn,
                             ((pfn << 12) | prot) & 4095 == prot)))


# --- slab colouring (mm/slab.c 2.6.12; model/slab.py cache_geometry, cache_grow) ---------

SLAB_ALIGNS = tuple(1 << e for e in range(2, 13))       # ralign: powers of two 4..PAGE_SIZE
COLOUR_VARIANTS = ("kernel", "plus_one", "plus_two", "before_mgmt_on_slab")


def colour_geometry(ralign: int, variant: str = "kernel"):
    """(hypothesis, goal, vars) for one alignment: every geometry of a 2.6.12 i386 SLAB
    cache with that (final) alignment, symbolic object size 1..131072, gfporder 0..5,
    management on- or off-slab, and every colour index cache_grow can use.

    num is not computed by a loop: it is characterised as the kernel defines it, the
    largest i <= SLAB_LIMIT with mgmt(i) + i*size <= PAGE_SIZE << gfporder, where
    mgmt(i) = ALIGN(sizeof(struct slab) + i*sizeof(kmem_bufctl_t), align) on-slab and 0
    off-slab. `variant` selects how colour is derived from the slack (tests use the
    wrong ones)."""
    p = LINUX_2_6_I386
    page, line = p.PAGE_SIZE, p.L1_CACHE_BYTES
    word = p.VIRT_BITS // 8
    struct_slab, bufctl = p.STRUCT_SLAB_SIZE, p.BUFCTL_SIZE
    slab_limit = (1 << (8 * bufctl)) - 3
    I = z3.Int
    raw, size, objsize, num, order = I("size_arg"), I("size"), I("objsize"), I("num"), I("gfporder")
    prod, m, m1, k = I("num_x_objsize"), I("mgmt_num"), I("mgmt_num_plus_1"), I("k")
    q = [I(f"q{i}") for i in range(4)]
    slab = z3.If(order == 0, page, page << 1)
    for o in range(2, MAX_GFP_ORDER + 1):
        slab = z3.If(order == o, page << o, slab)
    hyp = [1 <= raw, raw <= 131072,
           # size = ALIGN(size, BYTES_PER_WORD); objsize = ALIGN(size, align)
           size == word * q[0], raw <= size, size < raw + word,
           objsize == ralign * q[1], size <= objsize, objsize < size + ralign,
           0 <= order, order <= MAX_GFP_ORDER,
           0 <= num, num <= slab_limit, prod == num * objsize,
           # on-slab management for num and num + 1 objects (ALIGN(.., align))
           m == ralign * q[2], struct_slab + bufctl * num <= m,
           m < struct_slab + bufctl * num + ralign,
           m1 == ralign * q[3], struct_slab + bufctl * (num + 1) <= m1,
           m1 < struct_slab + bufctl * (num + 1) + ralign]
    off0 = size >= page // 8            # "size >= (PAGE_SIZE >> 3)": off-slab first
    # cache_estimate: num is the largest count that fits (or SLAB_LIMIT)
    fits_on = m + prod <= slab
    fits_on_next = m1 + prod + objsize <= slab
    fits_off, fits_off_next = prod <= slab, prod + objsize <= slab
    hyp.append(z3.If(off0,
                     z3.And(fits_off, z3.Or(num == slab_limit, z3.Not(fits_off_next))),
                     z3.And(fits_on, z3.Or(num == slab_limit, z3.Not(fits_on_next)))))
    lo0 = slab - prod - z3.If(off0, 0, m)
    # off-slab management moves on-slab when slab_size (= m) fits in the left-over
    back = z3.And(off0, lo0 >= m)
    mgmt = z3.If(z3.Or(z3.Not(off0), back), m, 0)
    lo = z3.If(back, lo0 - m, lo0)
    colour_off = max(line, ralign)
    colour = {"kernel": lo / colour_off, "plus_one": lo / colour_off + 1,
              "plus_two": lo / colour_off + 2,
              "before_mgmt_on_slab": lo0 / colour_off}[variant]
    # cache_grow: colour_next runs 0..colour-1 (0 only, when colour is 0)
    hyp += [0 <= k, k < z3.If(colour > 1, colour, 1)]
    offset = k * colour_off
    goal = z3.And(offset <= lo,                                  # within the slack
                  offset + mgmt + prod <= slab,                   # the objects fit the slab
                  (offset + mgmt) % ralign == 0)                  # s_mem stays aligned
    return z3.And(*hyp), goal, {"size_arg": raw, "objsize": objsize, "num": num,
                                "gfporder": order, "k": k, "left_over": lo,
                                "mgmt": mgmt, "off_slab_first": off0}


def colour_within_slack(variant: str = "kernel") -> str:
    """proved / refuted / unknown over every alignment (one query per alignment);
    "vacuous" if some alignment admits no geometry at all (the hypothesis is unsat)."""
    verdicts = []
    for a in SLAB_ALIGNS:
        hyp, goal, _ = colour_geometry(a, variant)
        s = z3.Solver()
        s.add(hyp)
        if s.check() != z3.sat:
            return "vacuous"
        verdicts.append(_valid(z3.Implies(hyp, goal)))
    for v in ("refuted", "unknown"):
        if v in verdicts:
            return v
    return "proved"


def kmalloc_index_exhaustive() -> bool:
    sizes = LINUX_2_6_I386.kmalloc_sizes
    for size in range(1, sizes[-1] + 1):
        i = kmalloc.kmalloc_index(LINUX_2_6_I386, size)
        if i is None or sizes[i] < size or (i and sizes[i - 1] >= size):
            return False
    return kmalloc.kmalloc_index(LINUX_2_6_I386, sizes[-1] + 1) is None


WM_CAP = 1 << 20          # every page count of a 4 GiB i386 machine


def watermark_lemmas(variant: str = "kernel"):
    """(name, scope, formula) about 2.6.12 zone_watermark_ok's per-order loop
    (spec/z3_pcp.py), each formula for all orders 0..10. Monotonicity and the flags
    over mathematical integers (watermark_ok_int: unbounded, linear arithmetic); the
    i386 32-bit version (watermark_ok) for the sign of C's first test. A `variant`
    from WM_VARIANTS is a wrong version, so tests can watch a lemma fail."""
    from ..spec.z3_pcp import sdiv_pow2, watermark_ok, watermark_ok_int

    def wm(*args):
        return watermark_ok_int(*args, variant=variant)

    hard, high = z3.Bool("can_try_harder"), z3.Bool("gfp_high")
    mono, anti, flags, sign = [], [], [], []
    fp, fp2, mark, mark2, res = (z3.Int(n) for n in ("free_pages", "free_pages'", "mark",
                                                     "mark'", "reserve"))
    bfp, bmark, bres = (z3.BitVec(n, 32) for n in ("free_pages", "mark", "reserve"))
    for order in range(MAX_ORDER):
        nr = [z3.Int(f"nr_free{o}") for o in range(order)]
        bnr = [z3.BitVec(f"nr_free{o}", 32) for o in range(order)]
        nonneg = z3.And(*[x >= 0 for x in (fp, fp2, mark, mark2, res, *nr)])
        ok = wm(fp, nr, order, mark, res, hard, high)
        mono.append(z3.Implies(z3.And(nonneg, fp <= fp2, ok),
                               wm(fp2, nr, order, mark, res, hard, high)))
        anti.append(z3.Implies(z3.And(nonneg, mark2 <= mark, ok),
                               wm(fp, nr, order, mark2, res, hard, high)))
        plain = wm(fp, nr, order, mark, res, False, False)
        flags.append(z3.Implies(z3.And(nonneg, plain),
                                z3.And(wm(fp, nr, order, mark, res, True, False),
                                       wm(fp, nr, order, mark, res, False, True))))
        small = z3.And(*[z3.ULE(x, WM_CAP) for x in (bfp, bmark, bres, *bnr)])
        kernel = watermark_ok(bfp, bnr, order, bmark, bres, hard, high, True, variant)
        signed = watermark_ok(bfp, bnr, order, bmark, bres, hard, high, False, variant)
        sign.append(z3.Implies(small, kernel == signed))
    order0 = z3.Implies(z3.And(fp >= 0, mark >= 0, res >= 0),
                        wm(fp, [], 0, mark, res, hard, high)
                        == (fp > z3.If(hard, z3.If(high, mark - mark / 2, mark)
                                       - z3.If(high, mark - mark / 2, mark) / 4,
                                       z3.If(high, mark - mark / 2, mark)) + res))
    ints = ("unbounded: every non-negative integer free_pages, nr_free[], mark, "
            "lowmem_reserve (no width), orders 0..10, both flags")
    x = z3.BitVec("x", 32)
    yield ("sdiv_pow2_is_division", "unbounded: every 32-bit long, divisors 2 and 4",
           z3.And(sdiv_pow2(x, 1) == x / 2, sdiv_pow2(x, 2) == x / 4))
    yield ("watermark_monotone_in_free_pages", ints, z3.And(*mono))
    yield ("watermark_antitone_in_mark", ints, z3.And(*anti))
    yield ("watermark_flags_only_lower_the_mark", ints, z3.And(*flags))
    yield ("watermark_order0_free_above_mark_plus_reserve", ints, order0)
    yield ("watermark_first_test_sign", "unbounded over i386 longs with free_pages, "
           "nr_free[], mark, lowmem_reserve each 0..2^20 (every page count of a 4 GiB "
           "machine), orders 0..10, both flags: C's unsigned first test = the model's "
           "signed one", z3.And(*sign))


def prove_lemmas() -> list[LemmaRow]:
    rows = []
    for name, scope, formula in [*_lemmas(), *watermark_lemmas()]:
        start = time.perf_counter()
        rows.append(LemmaRow(name, _valid(formula), f"unbounded: {scope}",
                             time.perf_counter() - start))
    start = time.perf_counter()
    rows.append(LemmaRow("slab_colour_within_slack", colour_within_slack(),
                         "unbounded: every 2.6.12 i386 SLAB geometry -- object size "
                         "1..131072 (word- and align-rounded), align 4..4096 (power of "
                         "two), gfporder 0..5, management on/off-slab (and moved back "
                         "on-slab); num characterised as maximal; every colour index "
                         "k < max(colour, 1): k*colour_off <= left_over, "
                         "offset + mgmt + num*size <= PAGE_SIZE << gfporder, s_mem aligned",
                         time.perf_counter() - start))
    start = time.perf_counter()
    ok = kmalloc_index_exhaustive()
    rows.append(LemmaRow("kmalloc_index_smallest_class", "checked" if ok else "refuted",
                         "exhaustive: every size 1..131072 and 131073 (not Z3)",
                         time.perf_counter() - start))
    return rows
