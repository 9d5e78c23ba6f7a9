"""Parameter lemmas: all proved; a wrong one is refuted by the same machinery."""

from __future__ import annotations

import z3

from kmemspec.proofs.lemmas import _valid, prove_lemmas


def test_all_lemmas_hold():
    rows = prove_lemmas()
    assert len(rows) > 60
    assert all(r.status in ("proved", "checked") for r in rows), [r for r in rows
                                                                  if r.status != "proved"]


def test_wrong_buddy_lemma_is_refuted():
    idx, o = z3.BitVec("idx", 20), z3.BitVec("o", 20)
    bit = z3.BitVecVal(1, 20) << o
    # "the buddy is always the block above" is false for an upper half
    wrong = z3.Implies(z3.And(z3.ULT(o, 11), idx & (bit - 1) == 0), idx + bit == idx ^ bit)
    assert _valid(wrong) == "refuted"
