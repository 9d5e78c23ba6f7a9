"""`kmemspec conform --page-policy 2.6.12`: strict and refine against 2.6.12's per-CPU
lists and watermarks (spec/conformance.md section 3a).

Expected values are worked out by hand from Linux 2.6.12 mm/page_alloc.c
(torvalds/linux 1da177e4c3f4: init_per_zone_pages_min, setup_per_zone_pages_min,
zone_batchsize, free_area_init_core, zone_watermark_ok, __alloc_pages,
buffered_rmqueue, rmqueue_bulk, __rmqueue, expand, free_hot_cold_page,
free_pages_bulk) and mm/bootmem.c free_all_bootmem_core, never read back from the
model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.conform import catalogue
from kmemspec.conform.adapter import (FLAT_BASE, ModelPageAllocator, check_flat_size,
                                      flat_boot_line, flat_config, load_target)
from kmemspec.conform.check import PageChecker, replay
from kmemspec.conform.isolate import make_driver
from kmemspec.conform.refine import Shadow, check_alloc, check_counts, watermark_could_fail
from kmemspec.conform.stateful import (NR_PAGES_2612, PageAllocatorMachine,
                                       check_conformance, machine_sizes)
from kmemspec.model.profiles import DEFAULT_PROFILE

MAX_ORDER = 11
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "conform" / "pcp_buddy.py"


def pcp_buddy():
    return load_target(f"{EXAMPLE}:PcpBuddy").factory


def fifo_pcp_buddy():
    return load_target(f"{EXAMPLE}:with_fifo_hot_list").factory


class Checker2612(PageChecker):
    page_policy = "2.6.12"


def _replay(factory, mode, nr_pages, ops, introspect=True, checker=Checker2612):
    driver = make_driver(factory, isolate=False)
    try:
        return replay(driver, mode, DEFAULT_PROFILE, nr_pages, ops, introspect, checker)
    finally:
        driver.close()


A = lambda order, name: ("alloc", "alloc_pages", order, name)      # noqa: E731
F = lambda name: ("free", "free_pages", name)                       # noqa: E731


# --- the flat machine's boot state under 2.6.12 -------------------------------------

@pytest.mark.parametrize("nr_pages", NR_PAGES_2612 + (65536,))
def test_flat_2612_boot_frees_whole_words_and_leaves_the_lists_empty(nr_pages):
    # free_all_bootmem_core frees a wholly free 32-frame word as one order-5 block
    # (__free_pages(page, 5): the buddy lists) and a partly free word frame by frame
    # (__free_page: CPU 0's hot list). The flat machine's DMA zone [0, 1024) is mem_map
    # plus a reserved range, and its frames [1024, 1024 + n) are whole words when
    # 32 | n: every free word is wholly free, so nothing starts on a per-CPU list.
    cfg = flat_config(nr_pages, page_policy="2.6.12")
    assert FLAT_BASE % 32 == 0 and cfg.phys_pages % 32 == 0
    assert [list(r) for r in cfg.reserved] == [[-(-cfg.phys_pages * 32 // 4096), FLAT_BASE]]
    model = ModelPageAllocator(page_policy="2.6.12")
    model.init(nr_pages, MAX_ORDER)
    machine = model.machine
    for zone in machine.zones:
        for pageset in zone.pageset:
            assert [pcp.count for pcp in pageset.pcp] == [0, 0]
            assert all(not pcp.list for pcp in pageset.pcp)
    assert machine.pcp_pages == {}
    assert machine.zones[0].free_pages == 0               # DMA: nothing free
    assert model.zone.free_pages == nr_pages
    # the maximal aligned blocks of n frames: n // 1024 of order 10, then n's bits
    want = [0] * MAX_ORDER
    want[10] = nr_pages // 1024
    for order in range(10):
        want[order] = (nr_pages >> order) & 1
    assert model.free_counts() == want


@pytest.mark.parametrize("nr_pages", [2, 16, 40, 1025, 2051])
def test_flat_2612_sizes_must_be_whole_words(nr_pages):
    with pytest.raises(ValueError, match="multiple of 32"):
        check_flat_size(nr_pages, page_policy="2.6.12")
    with pytest.raises(ValueError, match="multiple of 32"):
        ModelPageAllocator(page_policy="2.6.12").init(nr_pages, MAX_ORDER)
    flat_config(nr_pages)                                 # "buddy" takes any size
    with pytest.raises(ValueError, match="multiple of 32"):
        machine_sizes([32, nr_pages], page_policy="2.6.12")
    assert machine_sizes(pages_range=(30, 100), page_policy="2.6.12") == (32, 64, 96)


def test_init_refuses_a_boot_that_leaves_frames_on_a_list(monkeypatch):
    # the rule the test above states, checked at every init: a boot that parks a
    # frame on the hot list (as the partly free word of a 40-frame machine would)
    # makes init fail instead of handing a target a surprise
    from kmemspec.conform import adapter
    from kmemspec.model import page_alloc
    from kmemspec.model.gfp import GFP_KERNEL

    real_boot = adapter.boot

    def parking_boot(config):
        machine = real_boot(config)
        page = page_alloc.alloc_pages(machine, GFP_KERNEL, 0)
        page_alloc.__dict__["__free_pages"](machine, page, 0)   # onto the hot list
        return machine

    monkeypatch.setattr(adapter, "boot", parking_boot)
    with pytest.raises(RuntimeError, match="frames"):
        ModelPageAllocator(page_policy="2.6.12").init(32, MAX_ORDER)


@pytest.mark.parametrize("nr_pages, pages_min, pages_low, batch", [
    # lowmem = 1024 + n frames (DMA + Normal, GFP_USER's zonelist), x4 KiB;
    # min_free_kbytes = int_sqrt(kbytes * 16) in 128..65536; pages = that >> 2;
    # Normal's pages_min = pages * n // (1024 + n); pages_low = 5/4 of it;
    # batch = max(1, min(n // 1024, 64) // 4), hot list low 2 batch, high 6 batch
    (32, 1, 1, 1),       # 4224 KiB: int_sqrt(67584) = 259 -> 64 pages; 64*32//1056 = 1
    (96, 5, 6, 1),       # 4480 KiB: int_sqrt(71680) = 267 -> 66; 66*96//1120 = 5
    (2048, 73, 91, 1),   # 12288 KiB: int_sqrt(196608) = 443 -> 110; 110*2048//3072 = 73
    (8192, 170, 212, 2),  # 36864 KiB: int_sqrt(589824) = 768 -> 192; 192*8192//9216 = 170
])
def test_watermarks_and_batch_of_the_flat_machine(nr_pages, pages_min, pages_low, batch):
    model = ModelPageAllocator(page_policy="2.6.12")
    model.init(nr_pages, MAX_ORDER)
    assert (model.zone.pages_min, model.zone.pages_low) == (pages_min, pages_low)
    hot = model.zone.pageset[0].pcp[0]
    assert (hot.batch, hot.low, hot.high) == (batch, 2 * batch, 6 * batch)
    assert model.watermark_limits() == (6 * batch, pages_min)
    ref = pcp_buddy()()
    ref.init(nr_pages, MAX_ORDER)
    assert (ref.pages_min, ref.pages_low, ref.batch, ref.high) == (
        pages_min, pages_low, batch, 6 * batch)


# --- the reference that implements 2.6.12's policy passes; the buddy-only one fails -----

def test_pcp_reference_passes_strict_and_refine_under_2612():
    for mode in ("strict", "refine"):
        assert check_conformance(pcp_buddy(), mode=mode, max_examples=150, isolate=False,
                                 name="PcpBuddy", page_policy="2.6.12",
                                 step_count=60) is None


def test_buddy_reference_fails_strict_2612_at_the_first_parked_frame():
    # 32 frames boot as one order-5 block. alloc_pages(0): the hot list is empty
    # (count 0 <= low 2), rmqueue_bulk takes batch = 1 frame: __rmqueue(0) splits the
    # block, listing 16 (order 4), 8, 4, 2 and 1 (order 0), and frame 0 goes on the
    # list, whose head is taken: pfn 0 (the buddy reference: 0 too). free_pages(0):
    # count 0 < high 6, so frame 0 goes on the hot list unmerged: the buddy lists hold
    # one block of each order 0..4 -> nr_free [1, 1, 1, 1, 1, 0, ...]; the buddy-only
    # reference merges frame 0 back into the order-5 block -> [0, 0, 0, 0, 0, 1, ...].
    failure = _replay(catalogue.ReferenceBuddy, "strict", 32, [A(0, "b1"), F("b1")])
    assert failure is not None
    div = failure.divergence
    assert (div.step, div.op) == (2, "free_pages")
    assert div.reason.startswith("S2")
    assert div.expected == {"free_counts": [1, 1, 1, 1, 1] + [0] * 6}
    assert div.actual == {"free_counts": [0, 0, 0, 0, 0, 1] + [0] * 5}


def test_buddy_reference_fails_strict_2612_by_answers_alone():
    # as above, then alloc_pages(1): zone_watermark_ok(order 1, pages_low 1):
    # free_pages = 31 (frame 0 is on the hot list, outside it), 31 - 2 + 1 = 30 > 1;
    # o = 0: 30 - 1 (frame 1) = 29 > 1 >> 1 = 0: ok. __rmqueue(1): the head of the
    # order-1 list, pfn 2. The buddy-only reference splits its order-5 block: pfn 0.
    failure = _replay(catalogue.ReferenceBuddy, "strict", 32,
                      [A(0, "b1"), F("b1"), A(1, "b2")], introspect=False)
    div = failure.divergence
    assert (div.step, div.op, div.args) == (3, "alloc_pages", {"order": 1})
    assert div.reason.startswith("S1")
    assert (div.expected, div.actual) == (2, 0)
    # the same calls under the default policy: the model merges too, no divergence
    assert _replay(catalogue.ReferenceBuddy, "strict", 32, [A(0, "b1"), F("b1"), A(1, "b2")],
                   checker=PageChecker) is None


def test_buddy_reference_search_finds_it_and_passes_the_default():
    report = check_conformance(catalogue.ReferenceBuddy, mode="strict", max_examples=50,
                               isolate=False, name="ReferenceBuddy", page_policy="2.6.12")
    assert report is not None
    assert report.failure.page_policy == "2.6.12"
    assert (report.divergence.step, report.divergence.reason[:2]) == (2, "S2")
    assert '"page_policy": "2.6.12"' in report.scenario()
    assert check_conformance(catalogue.ReferenceBuddy, mode="strict", max_examples=50,
                             isolate=False, name="ReferenceBuddy") is None


def test_fifo_hot_list_is_a_variant_refine_accepts_and_strict_rejects():
    # alloc(0) -> 0, free -> hot list [0]; alloc(0): count 1 <= low 2, rmqueue_bulk
    # adds the order-0 list's head, frame 1, at the tail: [0, 1]; the head is 0. A
    # FIFO list hands out 1.
    failure = _replay(fifo_pcp_buddy(), "strict", 32, [A(0, "b1"), F("b1"), A(0, "b2")])
    assert (failure.divergence.step, failure.divergence.expected,
            failure.divergence.actual) == (3, 0, 1)
    assert check_conformance(fifo_pcp_buddy(), mode="refine", max_examples=100,
                             isolate=False, name="fifo", page_policy="2.6.12") is None


def test_pcp_reference_fails_the_default_buddy_policy():
    # the other way round: a target that parks frames does not merge completely (R8)
    failure = _replay(pcp_buddy(), "refine", 32, [A(0, "b1"), F("b1")], checker=PageChecker)
    assert (failure.divergence.step, failure.divergence.reason[:2]) == (2, "R8")


def test_a_wrong_null_is_still_caught_under_2612():
    # __rmqueue looking only at free_area[order]: NULL for order 0 on a fresh machine,
    # where 32 frames are free and even 6 parked leave 26 > pages_min 1
    report = check_conformance(catalogue.RmqueueNoFallback, mode="refine", max_examples=20,
                               isolate=False, name="nofallback", page_policy="2.6.12")
    assert report is not None and report.divergence.reason.startswith("R5")


def test_model_target_is_its_own_strict_reference_under_2612():
    factory = load_target("model", "2.6.12").factory
    assert check_conformance(factory, mode="strict", max_examples=40, isolate=False,
                             name="model", page_policy="2.6.12") is None


# --- refine's R5 and R8 under 2.6.12 --------------------------------------------------

def _shadow(nr_pages, high, pages_min, live=()):
    shadow = Shadow(nr_pages, MAX_ORDER)
    shadow.pcp_high, shadow.pages_min = high, pages_min
    for pfn, order in live:
        shadow.add(pfn, order)
    return shadow


def test_r5_allows_only_nulls_a_watermark_can_explain():
    shadow = _shadow(32, 6, 1)
    # order 0: 32 free, at most 6 parked: 26 - 1 + 1 = 26 > 1
    assert check_alloc(shadow, 0, None).startswith("R5")
    assert watermark_could_fail(shadow, 0) is None
    # order 4: one parked frame in each half leaves no order-4 block (j = 2: 32
    # frames in blocks >= 4, less 6 * 4 = 8; 8 - 16 + 1 <= 1 >> 2 = 0)
    assert watermark_could_fail(shadow, 4) == 2
    assert check_alloc(shadow, 4, None) is None
    # 31 frames live (one block each of order 0..4 from 1 up): free 1 frame = the
    # kernel's free_pages at most 1 <= pages_min 1 -> NULL allowed at order 0
    busy = _shadow(32, 6, 1, [(1, 0), (2, 1), (4, 2), (8, 3), (16, 4)])
    assert check_alloc(busy, 0, None) is None
    # and under "buddy" (no list, no watermark) the same NULL is R5
    plain = _shadow(32, 0, 0, [(1, 0), (2, 1), (4, 2), (8, 3), (16, 4)])
    assert check_alloc(plain, 0, None).startswith("R5")


def test_r8_allows_parked_frames_and_nothing_else():
    shadow = _shadow(32, 6, 1)
    zeros = [0] * 6
    assert check_counts(shadow, [0, 0, 0, 0, 0, 1] + zeros[1:]) is None     # nothing parked
    assert check_counts(shadow, [1, 1, 1, 1, 1, 0] + zeros[1:]) is None     # frame 0 parked
    assert check_counts(shadow, [2, 0, 1, 1, 1, 0] + zeros[1:]) is None     # 0 and 2 parked
    # nothing parked but not merged (32 frames counted)
    assert check_counts(shadow, [2, 1, 1, 1, 1, 0] + zeros[1:]).startswith("R8")
    # 16 frames missing: more than the hot list's high (6) can hold
    assert check_counts(shadow, [0, 0, 0, 0, 1, 0] + zeros[1:]).startswith("R8")
    # one parked frame splits the order-5 block into one block of each order 0..4;
    # three order-3 blocks and no order-4 block is no such split
    assert check_counts(shadow, [1, 1, 1, 3, 0, 0] + zeros[1:]).startswith("R8")


@pytest.mark.parametrize("nr_pages", [32, 96, 1024, 8192])
@pytest.mark.parametrize("seed", range(3))
def test_the_models_2612_answers_pass_the_relaxed_rules(nr_pages, seed):
    # the rules must accept what 2.6.12 does: random runs with many order-0 frees
    # (hot-list drains at high) and allocations down to the watermark
    rng = random.Random(seed)
    model = ModelPageAllocator(page_policy="2.6.12")
    model.init(nr_pages, MAX_ORDER)
    high, pages_min = model.watermark_limits()
    shadow = _shadow(nr_pages, high, pages_min)
    nulls = parked_seen = 0
    for _ in range(400):
        if shadow.live and rng.random() < 0.4:
            pfn = rng.choice(sorted(shadow.live))
            model.free_pages(pfn, shadow.remove(pfn))
        else:
            order = rng.choice([0, 0, 0, 0, 1, 2, 3, 5])
            ret = model.alloc_pages(order)
            assert check_alloc(shadow, order, ret) is None
            nulls += ret is None
            if ret is not None:
                shadow.add(ret, order)
        assert check_counts(shadow, model.free_counts()) is None
        parked_seen = max(parked_seen, model.pcp_count())
    assert parked_seen > 0
    if nr_pages <= 96:
        assert nulls > 0                  # small machines reach the watermark


# --- the command line and the pytest plugin ------------------------------------------

def _cli(*args):
    return CliRunner().invoke(main, ["conform", *args])


def test_unknown_page_policy_is_a_usage_error():
    result = _cli("model", "--page-policy", "2.6.99")
    assert result.exit_code == 2
    assert "--page-policy: '2.6.99' is not a page policy (known: buddy, 2.6.12)" in result.output
    assert "Traceback" not in result.output
    result = _cli("model", "--page-policy", "2.6.99", "--json")
    assert result.exit_code == 2 and "error" in json.loads(result.output)


def test_a_size_that_is_not_whole_words_is_a_usage_error():
    result = _cli("model", "--page-policy", "2.6.12", "--pages", "32,40")
    assert result.exit_code == 2
    assert "machine size 40 is not a multiple of 32" in result.output


def test_cli_strict_2612_passes_the_pcp_reference_and_fails_the_buddy_one(tmp_path):
    ok = _cli(f"{EXAMPLE}:PcpBuddy", "--page-policy", "2.6.12", "--mode", "strict",
              "--examples", "40", "--no-isolate", "--out", str(tmp_path))
    assert ok.exit_code == 0, ok.output
    assert "strict mode, 2.6.12 page policy" in ok.output
    bad = _cli("kmemspec.conform.catalogue:ReferenceBuddy", "--page-policy", "2.6.12",
               "--mode", "strict", "--examples", "20", "--no-isolate", "--json",
               "--out", str(tmp_path))
    assert bad.exit_code == 1
    out = json.loads(bad.output)
    assert out["page_policy"] == "2.6.12"
    div = out["checks"][0]["divergence"]
    assert (div["step"], div["rule"][:2]) == (2, "S2")
    scenario = out["checks"][0]["files"]["scenario"]
    assert scenario.endswith("-page-strict-2.6.12.jsonl")
    # --replay takes the scenario's policy; naming another one is a usage error
    again = _cli("kmemspec.conform.catalogue:ReferenceBuddy", "--replay", scenario,
                 "--mode", "strict", "--no-isolate")
    assert again.exit_code == 1 and "diverges at step 2" in again.output
    clash = _cli("kmemspec.conform.catalogue:ReferenceBuddy", "--replay", scenario,
                 "--page-policy", "buddy", "--no-isolate")
    assert clash.exit_code == 2 and "boots page policy 2.6.12" in clash.output
    # `kmemspec run` replays it on the model
    run = CliRunner().invoke(main, ["run", scenario])
    assert run.exit_code == 0, run.output


def test_pytest_plugin_takes_the_page_policy(kmemspec_conform):
    kmemspec_conform(pcp_buddy(), mode="strict", examples=30, isolate=False,
                     page_policy="2.6.12")
    with pytest.raises(ValueError, match="page_policy"):
        kmemspec_conform(pcp_buddy(), page_policy="2.6.99")


def test_stateful_machine_takes_the_page_policy():
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test

    class PcpMachine(PageAllocatorMachine):
        factory = pcp_buddy()
        mode = "strict"
        isolate = False
        page_policy = "2.6.12"

    try:
        run_state_machine_as_test(PcpMachine, settings=settings(
            max_examples=15, stateful_step_count=15, deadline=None, database=None))
    finally:
        PcpMachine.close()


def test_flat_boot_line_names_the_policy():
    assert flat_boot_line(32, page_policy="2.6.12")["page_policy"] == "2.6.12"
    assert flat_boot_line(32)["page_policy"] == "buddy"


def test_the_batch_payload_carries_the_policy():
    # the isolated search sends each sequence in one message (isolate.run_batch): its
    # checker must be the 2.6.12 one -- bytes (0, 0): alloc_pages(0); (200, 0): free
    from kmemspec.conform.isolate import run_batch
    payload = {"mode": "strict", "profile": DEFAULT_PROFILE, "nr_pages": 32,
               "data": bytes([0, 0, 200, 0]), "check_free_counts": True, "part": "page",
               "max_order_cap": None, "allowed": []}
    assert run_batch(catalogue.ReferenceBuddy, payload)["failure"] is None   # "buddy"
    parts = run_batch(catalogue.ReferenceBuddy, {**payload, "page_policy": "2.6.12"})["failure"]
    assert parts is not None and parts[0].step == 2 and parts[5] == "2.6.12"
    # and a whole isolated run of the 2.6.12 reference conforms
    assert check_conformance(pcp_buddy(), mode="strict", max_examples=40, isolate=True,
                             name="PcpBuddy", page_policy="2.6.12") is None


@pytest.mark.parametrize("make", [lambda: ModelPageAllocator(page_policy="2.6.12"),
                                  lambda: pcp_buddy()()])
def test_the_watermark_refuses_the_last_frames(make):
    # 32 frames, batch 1: each order-0 request refills the hot list with the head of
    # the order-0 list (expand leaves the next frame there), so frames 0, 1, 2, ...
    # come out in turn. Before request k (1-based) the buddy lists hold 33 - k frames;
    # zone_watermark_ok(order 0, pages_min 1) needs 33 - k > 1: k = 32 is refused.
    alloc = make()
    alloc.init(32, MAX_ORDER)
    assert [alloc.alloc_pages(0) for _ in range(32)] == list(range(31)) + [None]
    # 1024 frames: order 10 needs 1024 - 1024 + 1 = 1 > pages_min 45: refused;
    # order 9: 1024 - 512 + 1 = 513 > 45, and o = 0..8 subtract nothing: pfn 0
    alloc.init(1024, MAX_ORDER)
    assert (alloc.alloc_pages(10), alloc.alloc_pages(9)) == (None, 0)


# --- the C example built with -DKMS_PCP_2612 ---------------------------------------

def _build_c(tmp_path_factory, *defines):
    import os
    import shutil
    import subprocess

    from kmemspec.conform.ctypes_adapter import HEADER_PATH
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH: the C example cannot be built")
    source = Path(__file__).resolve().parents[1] / "examples" / "c_buddy" / "buddy.c"
    out = tmp_path_factory.mktemp("c_buddy_2612") / "libbuddy.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror",
                    "-I", os.path.dirname(HEADER_PATH), *defines, "-o", str(out),
                    str(source)], check=True, capture_output=True)
    return str(out)


def test_c_example_with_the_pcp_policy_passes_strict_2612(tmp_path_factory):
    lib = _build_c(tmp_path_factory, "-DKMS_PCP_2612")
    factory = load_target(lib).factory
    for mode in ("strict", "refine"):
        assert check_conformance(factory, mode=mode, max_examples=60, isolate=True,
                                 name="libbuddy2612", page_policy="2.6.12",
                                 step_count=60) is None
    # under the default policy it parks frame 0 where complete merging is asked (R8)
    failure = _replay(factory, "strict", 32, [A(0, "b1"), F("b1"), A(1, "b2")],
                      checker=PageChecker)
    assert failure is not None and failure.divergence.reason.startswith("R8")


def test_c_example_without_it_fails_strict_2612_and_passes_the_default(tmp_path_factory):
    factory = load_target(_build_c(tmp_path_factory)).factory
    failure = _replay(factory, "strict", 32, [A(0, "b1"), F("b1"), A(1, "b2")],
                      introspect=False)
    assert (failure.divergence.step, failure.divergence.expected,
            failure.divergence.actual) == (3, 2, 0)
    assert _replay(factory, "strict", 32, [A(0, "b1"), F("b1"), A(1, "b2")],
                   checker=PageChecker) is None


@pytest.mark.parametrize("bug", [
    "MergeAcrossZoneBoundary", "MergeWithoutOrderCheck", "WrongBuddyIndex",
    "ExpandReturnsLowerHalf", "MissingNrFreeUpdate", "OffByOneTopOrder", "NoCoalescing",
    "RmqueueWithoutListDel", "RmqueueNoFallback", "NrFreeCountsFrames",
    "MergeStopsOneEarly", "SplitWrongOrder"])
def test_relaxed_refine_still_catches_every_catalogue_page_bug(bug):
    # the 2.6.12 relaxations allow parked frames and watermark NULLs, nothing more:
    # each faulty buddy of the catalogue still fails refine under --page-policy 2.6.12
    report = check_conformance(getattr(catalogue, bug), mode="refine", max_examples=200,
                               isolate=False, name=bug, page_policy="2.6.12")
    assert report is not None, bug


@pytest.mark.parametrize("variant", ["UpperHalfPolicy", "FifoFreeLists"])
def test_relaxed_refine_accepts_the_legal_variants(variant):
    assert check_conformance(getattr(catalogue, variant), mode="refine", max_examples=100,
                             isolate=False, name=variant, page_policy="2.6.12") is None


@pytest.mark.parametrize("which", ["model", "python", "c"])
def test_the_hot_list_drains_batch_from_its_tail_at_high(which, tmp_path_factory):
    # 32 frames: batch 1, high 6. Seven order-0 allocations give 0..6 (each refill
    # takes the order-0 list's head; expand leaves 1, 3, 5 and 7 there in turn); the
    # buddy lists then hold 7 (order 0), 8 (order 3), 16 (order 4). Freeing 0..5 puts
    # them on the hot list's head: [5, 4, 3, 2, 1, 0], count 6. Freeing 6: count >= high,
    # so free_pages_bulk gives batch = 1 frame back from the tail, frame 0 (its buddy 1
    # is on the list: no merge), and 6 goes on the head: [6, 5, 4, 3, 2, 1]. nr_free
    # [2, 0, 0, 1, 1, 0, ...]; the next alloc_pages(0) (count 6 > low 2: no refill)
    # takes the head, 6.
    if which == "model":
        alloc = ModelPageAllocator(page_policy="2.6.12")
    elif which == "python":
        alloc = pcp_buddy()()
    else:
        alloc = load_target(_build_c(tmp_path_factory, "-DKMS_PCP_2612")).factory()
    alloc.init(32, MAX_ORDER)
    assert [alloc.alloc_pages(0) for _ in range(7)] == list(range(7))
    for pfn in range(7):
        alloc.free_pages(pfn, 0)
    assert list(alloc.free_counts()) == [2, 0, 0, 1, 1] + [0] * 6
    assert alloc.alloc_pages(0) == 6
