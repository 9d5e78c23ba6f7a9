"""Seeded bugs: each broken encoding makes `prove` refute the obligation it breaks,
with a counterexample; the correct encoding proves the same obligation."""

from __future__ import annotations

import pytest
from fresh_z3 import prove_in_fresh_process

from kmemspec.proofs.obligations import Prover
from kmemspec.spec.z3_buddy import SEEDED_BUGS, Encoding

# bug -> (invariant, operation, the conjunct(s) the counterexample may violate: where a
# bug breaks several conjuncts, Z3's model decides which one the counterexample shows)
EXPECTED = {
    "expand_lists_lower": ("no_overlap", "expand_step", "one_role"),
    "expand_nr_free_not_updated": ("conservation", "expand_step", "nr_free"),
    "alloc_no_count": ("page_state", "alloc_finish", "alloc_head"),
    # page_idx + (1 << order) merges an upper half with the block above it: the merged
    # block can overlap another (disjoint), or a frame heads two blocks (one_role)
    "wrong_buddy_index": ("no_overlap", "merge_step",
                          {"one_role", "reserved_uncovered", "disjoint"}),
    "merge_without_order_check": ("conservation", "merge_step", {"nr_free", "roles"}),
    "merge_across_zones": ("buddy_alignment", "merge_step", "inside_zone"),
    "free_pages_not_updated": ("conservation", "free_start", "free_pages"),
    # 2.6.12 boot, a wholly free bitmap word as one order-5 block (mm/bootmem.c
    # free_all_bootmem_core): each bug breaks one invariant of the new row
    "bootmem_block_unaligned": ("buddy_alignment", "free_bootmem_block", "aligned"),
    "bootmem_block_across_zones": ("buddy_alignment", "free_bootmem_block", "inside_zone"),
    "bootmem_block_partial_word": ("no_overlap", "free_bootmem_block", "one_role"),
    "bootmem_block_tails_keep_count": ("page_state", "free_bootmem_block", "referenced"),
}

# further (bug, invariant, operation, conjuncts): an existing switch that also governs a
# new row (__free_pages_bulk's free_pages += 1 << order, order 5 at boot)
ALSO = [
    ("free_pages_not_updated", "conservation", "free_bootmem_block", {"free_pages"}),
]


def test_every_seeded_bug_has_an_expectation():
    assert set(EXPECTED) == set(SEEDED_BUGS)


CORRECT = [
    ("page_state", "alloc_finish"), ("conservation", "free_start"),
    ("no_overlap", "rmqueue"), ("merge_completeness", "free_bootmem_page"),
    ("no_overlap", "free_bootmem_block"), ("buddy_alignment", "free_bootmem_block"),
    ("page_state", "free_bootmem_block"),
]


@pytest.fixture(scope="module")
def rows():
    """Every row these tests read, proved in one fresh process (tests/fresh_z3.py: the
    same time every run)."""
    jobs = ([("buddy", bug, "buddy", inv, op) for bug, (inv, op, _) in sorted(EXPECTED.items())]
            + [("buddy", bug, "buddy", inv, op) for bug, inv, op, _ in ALSO]
            + [("buddy", None, "", inv, op) for inv, op in CORRECT])
    return prove_in_fresh_process(jobs, timeout_ms=20000)


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_seeded_bug_is_refuted(rows, bug):
    invariant, operation, conjunct = EXPECTED[bug]
    row = rows[bug, invariant, operation]
    assert row.status == "refuted", row
    allowed = conjunct if isinstance(conjunct, set) else {conjunct}
    assert allowed & set(row.detail["failing_conjuncts"]), row.detail["failing_conjuncts"]
    cx = row.detail["counterexample"]
    assert cx["frames"], "a counterexample names the frames involved"
    assert all("before" in f and "after" in f for f in cx["frames"].values())


@pytest.mark.parametrize("bug,invariant,operation,allowed", ALSO)
def test_seeded_bug_is_refuted_on_another_row(rows, bug, invariant, operation, allowed):
    row = rows[bug, invariant, operation]
    assert row.status == "refuted", row
    assert allowed & set(row.detail["failing_conjuncts"]), row.detail["failing_conjuncts"]


@pytest.mark.parametrize("invariant,operation", CORRECT)
def test_correct_encoding_proves_the_same_obligation(rows, invariant, operation):
    row = rows[None, invariant, operation]
    assert row.status == "proved", row
    assert row.scope.startswith("unbounded")


def test_lifting_keeps_a_real_counterexample_and_rejects_a_spurious_one(rows):
    """A model of the instantiated query is reported without MBQI only if it lifts to a
    whole state that satisfies Inv at every pfn and still breaks the goal."""
    import z3

    from kmemspec.spec import z3_buddy as zb

    lifted = rows["wrong_buddy_index", "no_overlap", "merge_step"]
    assert lifted.detail["engine"].startswith("instantiation (model lifted"), lifted.detail
    # partial_word's query, with frame p forced to head an allocated order-8 block: its
    # 31 tail frames must be reserved (the bootmem precondition), so the block covers
    # reserved frames, which no state satisfying Inv has; the instantiated hypothesis
    # does not see that (it is not instantiated at the tails), lifting must
    prover = Prover(enc=Encoding.seeded("bootmem_block_partial_word"), timeout_ms=20000)
    pre, post, step, cond, terms = prover._setup("free_bootmem_block", {})
    goal = z3.And(*[f for _, f in prover._goal_parts("no_overlap", pre, post, step)])
    p = step.params["p"]
    spurious = z3.And(cond, pre.alloc[p], pre.aorder[p] == zb.ordv(8))
    result, solver = prover._solve(prover._hyp_inst(pre, terms, step.changed), spurious, goal)
    assert result == z3.sat
    assert not prover._lifts(solver.model(), pre, "free_bootmem_block", {}, "no_overlap")
