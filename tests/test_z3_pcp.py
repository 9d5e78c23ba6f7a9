"""The per-CPU page list layer of the proofs (spec/z3_pcp.py, proofs/pcp_obligations.py):
seeded bugs are refuted at the obligation they break, the zone_watermark_ok lemmas hold
and wrong versions fail them, the watermark encodings agree with the model, and on a
fixed workload the encoded per-CPU steps reproduce the model's states (and a broken
model or state is caught)."""

from __future__ import annotations

import pytest
import z3
from fresh_z3 import prove_in_fresh_process
from hypothesis import given, settings, strategies as st

from kmemspec.model import page_alloc as pa
from kmemspec.model.boot import boot
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.proofs import pcp_obligations as po
from kmemspec.proofs.lemmas import _valid, watermark_lemmas
from kmemspec.spec import buddy as pybuddy
from kmemspec.spec import z3_buddy as zb
from kmemspec.spec import z3_concrete as zc
from kmemspec.spec import z3_pcp as zp

# bug -> (invariant, operation, conjuncts the counterexample may show)
EXPECTED = {
    "pcp_refill_wrong_zone": ("pcp_lists", "pcp_refill_add",
                              {"on_list_zone", "count", "count_bound", "roles"}),
    "pcp_free_no_count": ("pcp_lists", "pcp_free", {"count"}),
    "pcp_free_no_drain_at_high": ("pcp_lists", "pcp_free", {"count_bound"}),
    "pcp_refill_above_low": ("pcp_lists", "pcp_refill_start", {"count_bound"}),
    "pcp_drain_no_merge": ("merge_completeness", "pcp_drain_step", {"no_free_buddy_pair"}),
    "pcp_hot_high_2_batch": ("pcp_lists", "boot", {"pageset"}),
    "pcp_alloc_stays_listed": ("pcp_lists", "pcp_alloc", {"on_list_free", "count", "roles"}),
    "pcp_alloc_no_count": ("page_state", "pcp_alloc", {"alloc_head"}),
    "pcp_refill_stays_in_flight": ("pcp_lists", "pcp_refill_add",
                                   {"on_list_free", "outside_blocks", "roles"}),
    "pcp_drain_inside_refill": ("pcp_lists", "pcp_drain_start", {"loops"}),
    # 2.6.12 boot, a single frame released for free_hot_page (mm/bootmem.c
    # free_all_bootmem_core, arch/i386/mm/init.c one_highpage_init)
    "pcp_bootmem_hot_no_count": ("page_state", "free_bootmem_hot", {"alloc_head"}),
    "pcp_bootmem_hot_any_frame": ("pcp_lists", "free_bootmem_hot", {"on_list_free", "roles"}),
    "pcp_bootmem_hot_no_zone": ("buddy_alignment", "free_bootmem_hot", {"in_zone"}),
    "pcp_bootmem_hot_counts_free": ("conservation", "free_bootmem_hot", {"free_pages"}),
    "pcp_bootmem_hot_to_buddy": ("merge_completeness", "free_bootmem_hot",
                                 {"no_free_buddy_pair"}),
}

# the buddy encoding's seeded bugs on the rows this layer adds for a buddy operation,
# and a per-CPU bug on a second row: (bug, layer of the bug, invariant, operation,
# conjuncts)
ALSO = [
    ("bootmem_block_partial_word", "buddy", "pcp_lists", "free_bootmem_block",
     {"on_list_free", "outside_blocks", "roles"}),
    # the frame released without the reserved check is either already a block head
    # (one_role) or inside another block (disjoint); which one Z3's model shows depends on
    # what the solver saw earlier in the process (in isolation: disjoint)
    ("pcp_bootmem_hot_any_frame", "pcp", "no_overlap", "free_bootmem_hot",
     {"one_role", "disjoint"}),
]


def test_every_seeded_bug_has_an_expectation():
    assert set(EXPECTED) == set(zp.SEEDED_BUGS)


CORRECT = [
    ("pcp_lists", "boot"), ("pcp_lists", "pcp_free"), ("pcp_lists", "pcp_refill_start"),
    ("page_state", "pcp_alloc"), ("merge_completeness", "pcp_drain_step"),
    ("pcp_lists", "pcp_drain_start"), ("pcp_lists", "free_finish"),
    ("pcp_lists", "free_bootmem_hot"), ("page_state", "free_bootmem_hot"),
    ("pcp_lists", "free_bootmem_block"),
]


@pytest.fixture(scope="module")
def rows():
    """Every row the three tests below read, proved in one fresh process
    (tests/fresh_z3.py: the same time every run)."""
    jobs = ([("pcp", bug, "pcp", inv, op) for bug, (inv, op, _) in sorted(EXPECTED.items())]
            + [("pcp", bug, layer, inv, op) for bug, layer, inv, op, _ in ALSO]
            + [("pcp", None, "", inv, op) for inv, op in CORRECT])
    return prove_in_fresh_process(jobs, timeout_ms=30000)


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_seeded_bug_is_refuted(rows, bug):
    invariant, operation, allowed = EXPECTED[bug]
    row = rows[bug, invariant, operation]
    assert row.status == "refuted", row
    assert allowed & set(row.detail["failing_conjuncts"]), row.detail["failing_conjuncts"]
    cx = row.detail["counterexample"]
    assert cx["frames"] and "list L*" in cx


@pytest.mark.parametrize("bug,layer,invariant,operation,allowed", ALSO)
def test_seeded_bug_is_refuted_on_another_row(rows, bug, layer, invariant, operation, allowed):
    row = rows[bug, invariant, operation]
    assert row.status == "refuted", row
    assert allowed & set(row.detail["failing_conjuncts"]), row.detail["failing_conjuncts"]


@pytest.mark.parametrize("invariant,operation", CORRECT)
def test_correct_encoding_proves_the_same_obligations(rows, invariant, operation):
    row = rows[None, invariant, operation]
    assert row.status == "proved", row
    assert row.scope.startswith("unbounded") and row.layer == "pcp"


def test_obligation_grid():
    """pcp_lists under every operation; the buddy invariants under the per-CPU ones."""
    pairs = po.obligations()
    assert len(pairs) == len(po.OPERATIONS) + 5 * len(po.PCP_OPS)
    assert ("pcp_lists", "merge_step") in pairs and ("no_overlap", "pcp_alloc") in pairs
    assert ("no_overlap", "merge_step") not in pairs     # the buddy layer's row


# --- zone_watermark_ok ---------------------------------------------------------------

def test_watermark_lemmas_proved():
    for name, _, formula in watermark_lemmas():
        assert _valid(formula) == "proved", name


# variant -> lemmas it must fail
WRONG = {
    "gfp_high_raises_min": {"watermark_flags_only_lower_the_mark",
                            "watermark_order0_free_above_mark_plus_reserve"},
    "no_plus_one": {"watermark_order0_free_above_mark_plus_reserve"},
    "loop_unsigned": {"watermark_first_test_sign"},
    "first_test_reversed": {"watermark_monotone_in_free_pages", "watermark_antitone_in_mark"},
}


@pytest.mark.parametrize("variant", sorted(WRONG))
def test_wrong_watermark_versions_fail_a_lemma(variant):
    refuted = {name for name, _, f in watermark_lemmas(variant) if _valid(f) == "refuted"}
    assert WRONG[variant] <= refuted, refuted


class _Zone:
    """What zone_watermark_ok reads of a zone."""

    def __init__(self, free_pages, nr_free, reserve):
        self.free_pages = free_pages
        self.free_area = [type("A", (), {"nr_free": n})() for n in nr_free]
        self.lowmem_reserve = [reserve]


def _encoded(free_pages, nr_free, order, mark, reserve, hard, high, which):
    if which == "bv":
        bv = lambda x: z3.BitVecVal(x, 32)     # noqa: E731
        f = zp.watermark_ok(bv(free_pages), [bv(n) for n in nr_free], order, bv(mark),
                            bv(reserve), z3.BoolVal(hard), z3.BoolVal(high))
    else:
        f = zp.watermark_ok_int(z3.IntVal(free_pages), [z3.IntVal(n) for n in nr_free],
                                order, z3.IntVal(mark), z3.IntVal(reserve),
                                z3.BoolVal(hard), z3.BoolVal(high))
    return z3.is_true(z3.simplify(f))


# 2.6.12 mm/page_alloc.c zone_watermark_ok written from the source, never calling the
# model: the 2.6.12 campaign's oracle
from kmemspec.campaign.alloc_oracle import watermark_ok as _kernel_formula  # noqa: E402


def _inputs():
    count = st.integers(0, 1 << 20)
    return st.integers(0, 10).flatmap(lambda order: st.tuples(
        count, st.lists(st.integers(0, 4096), min_size=11, max_size=11), st.just(order),
        st.integers(0, 4096), st.integers(0, 4096), st.booleans(), st.booleans()))


@settings(max_examples=150, deadline=None)
@given(_inputs())
def test_watermark_encodings_agree_with_the_model(args):
    free_pages, nr_free, order, mark, reserve, hard, high = args
    zone = _Zone(free_pages, nr_free, reserve)
    model = pa.zone_watermark_ok(zone, order, mark, 0, hard, high)
    assert model == _kernel_formula(*args)
    assert _encoded(*args, "bv") == model
    assert _encoded(*args, "int") == model


@pytest.mark.parametrize("args,expect", [
    # hand-computed from the 2.6.12 formula: order 0, 100 free, mark 99: 100 > 99 -> ok
    ((100, [0] * 11, 0, 99, 0, False, False), True),
    ((99, [0] * 11, 0, 99, 0, False, False), False),
    # reserve 10: 100 <= 99 + 10 -> fail
    ((100, [0] * 11, 0, 99, 10, False, False), False),
    # gfp_high halves 100 to 50 (100 - 50), 60 > 50 -> ok; without it 60 <= 100 fails
    ((60, [0] * 11, 0, 100, 0, False, True), True),
    ((60, [0] * 11, 0, 100, 0, False, False), False),
    # order 1: 20 free of which 15 single frames: 20 - 2 + 1 = 19 > 8; then
    # 19 - 15 = 4 <= 8 >> 1 = 4 -> fail; with 14 singles 5 > 4 -> ok
    ((20, [15] + [0] * 10, 1, 8, 0, False, False), False),
    ((20, [14] + [0] * 10, 1, 8, 0, False, False), True),
])
def test_watermark_hand_values(args, expect):
    zone = _Zone(args[0], args[1], args[4])
    assert pa.zone_watermark_ok(zone, args[2], args[3], 0, args[5], args[6]) is expect
    assert _encoded(*args, "bv") is expect and _encoded(*args, "int") is expect


def test_broken_model_watermark_disagrees():
    """The agreement check catches a model that forgets the per-order loop."""
    def no_loop(zone, order, mark, classzone_idx, can_try_harder, gfp_high):
        return zone.free_pages - (1 << order) + 1 > mark + zone.lowmem_reserve[classzone_idx]
    args = (20, [15] + [0] * 10, 1, 8, 0, False, False)
    zone = _Zone(20, args[1], 0)
    assert no_loop(zone, 1, 8, 0, False, False) != _encoded(*args, "bv")


# --- a fixed workload: the encoded per-CPU steps against the model ----------------------

def _machine():
    # zones DMA [0, 8) and Normal [8, 64); min_free_kbytes 0: no watermark in the way;
    # batch 1 (present/1024/4 rounded up to 1): hot low 2, high 6; cold low 0, high 2
    # (2.6.12 free_area_init_core)
    return boot(phys_pages=64, highmem_pages=0, max_dma_pfn=8, min_free_kbytes=0)


def _hot(m, zone=1):
    return m.zones[zone].pageset[0].pcp[0]


def _drain_frames(S, s, pfns, enc=zb.Encoding()):
    """(pcp_drain_step ; merge_step* ; free_finish) for each frame, as free_pages_bulk."""
    for q in pfns:
        ok, s = zp.apply(S, enc, "pcp_drain_step", s, q=z3.BitVecVal(q, S.W))
        assert ok, f"pcp_drain_step condition fails for {q:#x}"
        for _ in range(S.shape.max_order + 1):
            ok, nxt = zp.apply(S, enc, "merge_step", s)
            if not ok:
                break
            s = nxt
        ok, s = zp.apply(S, enc, "free_finish", s)
        assert ok
    return s


def _lkey(zone, lid=0):
    return z3.BitVecVal((zone << zp.LID_BITS) | lid, zp.LKEY_BITS)


def _check_state(S, m):
    s = zp.alpha(m, S)
    held = zp.pcp_lists_holds(S, s, m.mem_map.nr_pages)
    assert all(held.values()), held
    assert not pybuddy.inv_pcp_lists(m)           # the Python predicate agrees
    return s


def _encoded_alloc(S, m, pre, ret, penc, refilled):
    """buffered_rmqueue: refill (if count <= low: rmqueue_bulk took `refilled`, each
    the head of the first non-empty free list, which expand leaves as the frame
    handed out) then take `ret` from the list."""
    pcp = _hot(m)
    s = pre
    if z3.simplify(pre.pcnt[_lkey(1)]).as_long() <= pcp.low:
        ok, s = zp.apply(S, zb.Encoding(), "pcp_refill_start", s, penc, L=_lkey(1))
        assert ok
        for f in refilled:
            ok, s = zp.apply(S, zb.Encoding(), "rmqueue", s, penc,
                             h0=z3.BitVecVal(f, S.W), order=zb.ordv(0))
            assert ok, f"rmqueue {f:#x}"
            for _ in range(S.shape.max_order + 1):
                ok, nxt = zp.apply(S, zb.Encoding(), "expand_step", s, penc)
                if not ok:
                    break
                s = nxt
            ok, s = zp.apply(S, zb.Encoding(), "pcp_refill_add", s, penc)
            assert ok
        ok, s = zp.apply(S, zb.Encoding(), "pcp_refill_end", s, penc)
        assert ok
    ok, s = zp.apply(S, zb.Encoding(), "pcp_alloc", s, penc, q=z3.BitVecVal(ret, S.W))
    assert ok, "pcp_alloc condition fails"
    return s


def _run_workload(m, S, penc=zp.PcpEncoding(), check=True):
    """Allocate 4 frames (from the 6 boot left on the hot list), 3 more (refills), free
    the 7 (the 5th..7th find the hot list at high: a drain of batch first), allocate 1
    (count above low: no refill), drain_local_pages; after each
    call the encoded steps from alpha(pre) must give alpha(post)."""
    mismatches = []

    def compare(op, want, got):
        diff = zp.states_differ(S, want, got)
        if diff:
            mismatches.append((op, diff))

    pages = []
    for _ in range(4):
        pre = zp.alpha(m, S)
        before = list(_hot(m).list)
        pg = pa.alloc_page(m, GFP_KERNEL)
        # refill order: the list's new tail; the frame taken is the list's head, so a
        # new frame only if the list was empty before the refill
        added = [f for f in _hot(m).list if f not in before]
        if pg.pfn not in before:
            added.insert(0, pg.pfn)
        compare("alloc_page", zp.alpha(m, S), _encoded_alloc(S, m, pre, pg.pfn, penc, added))
        pages.append(pg)
        if check:
            _check_state(S, m)
    extra = [pa.alloc_page(m, GFP_KERNEL) for _ in range(3)]
    for pg in pages + extra:
        pre = zp.alpha(m, S)
        hot = _hot(m)
        at_high = hot.count >= hot.high
        tail = list(hot.list)[-hot.batch:][::-1]
        pa.__free_page(m, pg)
        h = z3.BitVecVal(pg.pfn, S.W)
        lid = z3.BitVecVal(0, zp.LID_BITS)
        if not at_high:
            ok, s = zp.apply(S, zb.Encoding(), "pcp_free", pre, penc, h=h, lid=lid)
            assert ok, "pcp_free condition fails"
        else:
            ok, s = zp.apply(S, zb.Encoding(), "pcp_free_drain", pre, penc, h=h, lid=lid)
            assert ok
            s = _drain_frames(S, s, tail)
            ok, s = zp.apply(S, zb.Encoding(), "pcp_free_finish", s, penc)
            assert ok, "pcp_free_finish condition fails"
        compare("__free_page" + (" at high" if at_high else ""), zp.alpha(m, S), s)
        if check:
            _check_state(S, m)
    # drain_local_pages: each non-empty list of CPU 0, tail first
    pre = zp.alpha(m, S)
    s = pre
    lists = [(z.index, lid, list(p.list)[::-1]) for z in m.zones
             for lid, p in enumerate(z.pageset[0].pcp)]
    pa.drain_local_pages(m, 0)
    for zone, lid, frames in lists:
        ok, s = zp.apply(S, zb.Encoding(), "pcp_drain_start", s, penc, L=_lkey(zone, lid))
        assert ok
        s = _drain_frames(S, s, frames)
        ok, s = zp.apply(S, zb.Encoding(), "pcp_drain_end", s, penc)
        assert ok
    compare("drain_local_pages", zp.alpha(m, S), s)
    if check:
        _check_state(S, m)
    return mismatches


def test_fixed_workload_encoding_matches_the_model():
    m = _machine()
    S = zb.Sorts(zc.shape_of(m))
    _check_state(S, m)
    assert _run_workload(m, S) == []
    assert not m.pcp_pages and all(p.count == 0 for z in m.zones for p in z.pageset[0].pcp)


def test_fixed_workload_catches_a_broken_model(monkeypatch):
    """A model whose free_hot_cold_page forgets count++ no longer matches pcp_free."""
    real = pa.free_hot_cold_page

    def broken(machine, pfn, cold=0, cpu=0):
        real(machine, pfn, cold, cpu)
        machine.zones[machine.mem_map.zone_id[pfn]].pageset[cpu].pcp[cold].count -= 1
    m = _machine()
    S = zb.Sorts(zc.shape_of(m))
    monkeypatch.setattr(pa, "free_hot_cold_page", broken)
    try:
        mismatches = _run_workload(m, S, check=False)
    except AssertionError:
        mismatches = ["a step's condition failed"]
    assert mismatches


def test_fixed_workload_catches_a_broken_encoding():
    m = _machine()
    S = zb.Sorts(zc.shape_of(m))
    try:
        mismatches = _run_workload(m, S, zp.seeded("pcp_free_no_count"), check=False)
    except AssertionError:
        mismatches = ["a step's condition failed"]
    assert mismatches


def test_pcp_invariant_formula_catches_broken_states():
    m = _machine()
    S = zb.Sorts(zc.shape_of(m))
    pa.__free_page(m, pa.alloc_page(m, GFP_KERNEL))
    hot = _hot(m)
    # boot (mm/bootmem.c free_all_bootmem_core, 2.6.12) freed Normal's 8..63 one by one
    # onto CPU 0's hot list (each 32-frame word holds a reserved frame or is not aligned
    # inside the zone), draining 1 from the tail at count 6: it ends 63..58, count 6;
    # the allocation takes 63 (count 5 > low 2), the free puts it back: 6
    assert hot.count == 6 and list(hot.list) == list(range(63, 57, -1))
    hot.count += 1                                   # count no longer the list length
    held = zp.pcp_lists_holds(S, zp.alpha(m, S), m.mem_map.nr_pages)
    assert not held["count"] and pybuddy.inv_pcp_lists(m)
    hot.count -= 1
    pfn = hot.list[0]
    m.mem_map.count[pfn] = 1                         # a listed frame with a reference
    held = zp.pcp_lists_holds(S, zp.alpha(m, S), m.mem_map.nr_pages)
    assert not held["on_list_free"] and pybuddy.inv_pcp_lists(m)
