"""Lemmas over parameters, proved by Z3 for every value of the stated width.

Buddy arithmetic on 20-bit page indices (all orders), the model's `//`/`%` forms
(model/buddy_math.py, checked by CrossHair) equal to the kernel's bitwise forms, and the
i386 address translations on 32-bit words. kmalloc's class lookup is checked
exhaustively (every size 1..131072) rather than by Z3: it is a table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import z3

from ..model import kmalloc
from ..model.profiles import LINUX_2_6_I386

W, MAX_ORDER = 20, 11


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


def kmalloc_index_exhaustive() -> bool:
    sizes = LINUX_2_6_I386.kmalloc_sizes
    for size in range(1, sizes[-1] + 1):
        i = kmalloc.kmalloc_index(LINUX_2_6_I386, size)
        if i is None or sizes[i] < size or (i and sizes[i - 1] >= size):
            return False
    return kmalloc.kmalloc_index(LINUX_2_6_I386, sizes[-1] + 1) is None


def prove_lemmas() -> list[LemmaRow]:
    rows = []
    for name, scope, formula in _lemmas():
        start = time.perf_counter()
        rows.append(LemmaRow(name, _valid(formula), f"unbounded: {scope}",
                             time.perf_counter() - start))
    start = time.perf_counter()
    ok = kmalloc_index_exhaustive()
    rows.append(LemmaRow("kmalloc_index_smallest_class", "checked" if ok else "refuted",
                         "exhaustive: every size 1..131072 and 131073 (not Z3)",
                         time.perf_counter() - start))
    return rows
