"""The worked examples of spec/conformance.md "Checking your allocator", built and checked.

examples/conform/pow2_buddy.c: a C buddy allocator over 2^k frames with top order 5,
declaring its sizes (kms_supported_pages) and that it detects misuse
(kms_detects_misuse). Expected facts come from its own definition: a valid buddy
allocator on the sizes and orders it declares, so refine mode must accept it; built
with -DSEEDED_BUG its frees never merge, so two free buddy frames stay two order-0
blocks instead of one order-1 block (2.6.12 __free_pages_bulk merges them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.conform.adapter import load_target
from kmemspec.conform.ctypes_adapter import HEADER_PATH
from kmemspec.conform.stateful import check_conformance

SOURCE = Path(__file__).resolve().parent.parent / "examples" / "conform" / "pow2_buddy.c"
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) on PATH: "
                                                   "the C worked example cannot be built")


def _build(tmp_path_factory, *defines) -> str:
    out = tmp_path_factory.mktemp("pow2") / "libpow2.so"
    subprocess.run([CC, "-shared", "-fPIC", "-O1", "-std=c99", "-Wall", "-Werror",
                    "-I", os.path.dirname(HEADER_PATH), *defines, "-o", str(out),
                    str(SOURCE)], check=True, capture_output=True)
    return str(out)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return _build(tmp_path_factory)


@pytest.fixture(scope="module")
def buggy_library(tmp_path_factory):
    return _build(tmp_path_factory, "-DSEEDED_BUG")


def test_c_abi_additions_are_seen(library):
    runner = CliRunner()
    result = runner.invoke(main, ["conform", library, "--max-order", "6", "--examples", "60",
                                  "--json"])
    assert result.exit_code == 0, result.output
    assert "supported_pages" in __import__("json").loads(result.output)["introspection"]
    target = load_target(library)
    adapter = target.factory()
    assert adapter.detects_misuse is True
    assert [n for n in (2, 7, 16, 2051, 2048) if adapter.supported_pages(n)] == [2, 16, 2048]


def test_without_max_order_the_shape_differs(library):
    report = check_conformance(load_target(library).factory, max_examples=5, name="pow2")
    assert report is not None and report.divergence.op == "init"
    assert "R8" in report.divergence.reason and report.reproduced_alone is True


def test_seeded_bug_is_found_and_reproduces_alone(buggy_library, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["conform", buggy_library, "--max-order", "6",
                                  "--examples", "60", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "R8: nr_free per order is [2, 0, 0, 0, 0, 0]" in result.output
    assert "reproduced alone: yes" in result.output
    [scenario] = out.glob("libpow2.so-page-refine.jsonl")
    again = runner.invoke(main, ["conform", buggy_library, "--max-order", "6",
                                 "--replay", str(scenario)])
    assert again.exit_code == 1 and "<-- R8" in again.output, again.output


# --- misuse vectors on a C target that declares kms_detects_misuse (issue 18) ----------
# The page_alloc/misuse vector (conform/vectors.py) ends by freeing a block twice; 2.6.12
# __free_pages_ok -> free_pages_check -> bad_page flags a page that is already free, and
# the model rejects it as double_free. A library declaring kms_detects_misuse() must
# return nonzero there.

@pytest.fixture(scope="module")
def double_free_library(tmp_path_factory):
    return _build(tmp_path_factory, "-DSEEDED_DOUBLE_FREE")


def test_misuse_vectors_run_on_a_c_target_that_detects_misuse(library):
    result = CliRunner().invoke(main, ["conform", library, "--max-order", "6",
                                       "--examples", "20", "--json"])
    assert result.exit_code == 0, result.output
    misuse = __import__("json").loads(result.output)["checks"][0]["misuse"]
    assert misuse["vectors"] == ["page_alloc/misuse"] and not misuse["failures"]
    # the vector's seven misuse frees (and the calls around them) were made, not skipped
    assert misuse["passed"] >= 7


def test_a_missed_double_free_is_reported(double_free_library):
    result = CliRunner().invoke(main, ["conform", double_free_library, "--max-order", "6",
                                       "--examples", "20"])
    assert result.exit_code == 1, result.output
    assert "accepted; expected rejection (double_free)" in result.output
    assert "DIVERGES" in result.output


def test_vectors_replay_runs_misuse_steps_on_a_c_target(double_free_library, library,
                                                        tmp_path):
    from kmemspec.conform.isolate import make_driver
    from kmemspec.conform.vectors import run_misuse_vectors
    for lib, ok in ((library, True), (double_free_library, False)):
        driver = make_driver(load_target(lib).factory)
        try:
            [res] = run_misuse_vectors(driver, "page", max_order=6)
        finally:
            driver.close()
        assert res.ok is ok and res.skipped == 0, res.failures


# --- a 64-byte unit: examples/conform/arena64_buddy.c (issue 18, other block sizes) ------
# A buddy over a byte arena whose smallest block is 64 bytes declares kms_page_size() = 64.
# Its unit p is bytes p*64 .. p*64+63, an order-k block 64 << k bytes: buddy structure in
# units is that of 4096-byte frames, so refine mode must accept it. With -DSEEDED_BUG a
# free merges with a free buddy of any order; 2.6.12 __free_pages_bulk merges only with
# a buddy of the same order (page_is_buddy checks page_order(buddy) == order).

ARENA64 = SOURCE.parent / "arena64_buddy.c"


def _build_arena(tmp_path_factory, *defines) -> str:
    out = tmp_path_factory.mktemp("arena64") / "libarena64.so"
    subprocess.run([CC, "-shared", "-fPIC", "-O1", "-std=c99", "-Wall", "-Werror",
                    "-I", os.path.dirname(HEADER_PATH), *defines, "-o", str(out),
                    str(ARENA64)], check=True, capture_output=True)
    return str(out)


@pytest.fixture(scope="module")
def arena64(tmp_path_factory):
    return _build_arena(tmp_path_factory)


def test_arena64_conforms_with_its_declared_unit(arena64):
    result = CliRunner().invoke(main, ["conform", arena64, "--examples", "60", "--json"])
    assert result.exit_code == 0, result.output
    summary = __import__("json").loads(result.output)
    assert summary["page_size"] == 64 and summary["result"] == "conforms"
    assert load_target(arena64).factory().page_size == 64


def test_arena64_seeded_bug_is_found_in_bytes(tmp_path_factory, tmp_path):
    buggy = _build_arena(tmp_path_factory, "-DSEEDED_BUG")
    result = CliRunner().invoke(main, ["conform", buggy, "--examples", "100",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "R8: nr_free per order" in result.output
    assert "reproduced alone: yes" in result.output
    # an order-0 answer p is shown as its 64 bytes of the arena
    assert "-> 0 (bytes 0..63 of 64-byte units)" in result.output
    assert "unit:     64 bytes per frame" in result.output


def test_page_size_option_must_agree_and_limits_the_parts(arena64):
    runner = CliRunner()
    clash = runner.invoke(main, ["conform", arena64, "--page-size", "128"])
    assert clash.exit_code == 2 and "declares 64" in clash.output
    assert runner.invoke(main, ["conform", arena64, "--page-size", "96"]).exit_code == 2
    # the model implements every part; with 64-byte frames only the page part is checked
    only = runner.invoke(main, ["conform", "model", "--page-size", "64", "--examples", "10",
                                "--json"])
    assert only.exit_code == 0, only.output
    summary = __import__("json").loads(only.output)
    assert summary["parts"] == ["page"]
    assert summary["unchecked_parts"] == ["object", "vmalloc", "cache", "highmem"]


# R9 (kms_block_order): arena64_buddy.c built with -DSEEDED_SIZE_BUG records a block split
# from a larger one with the larger order. On 2 frames the first order-0 allocation
# splits the order-1 block (2.6.12 expand() hands out the lower half, set_page_order
# only on the free upper half): the recorded order must be 0, and the checker must say
# so at that allocation, not later.

def test_block_order_query_catches_a_wrong_size_at_the_allocation(tmp_path_factory):
    buggy = _build_arena(tmp_path_factory, "-DSEEDED_SIZE_BUG")
    report = check_conformance(load_target(buggy).factory, max_examples=20, name="a64")
    assert report is not None
    assert report.divergence.reason.startswith("R9: block_order(")
    assert report.divergence.op == "alloc_pages" and report.nr_calls == 2
    # without the query (answers only) the same library is caught only later, at a free
    late = check_conformance(load_target(buggy).factory, max_examples=20, name="a64",
                             introspect=False)
    assert late is not None and not late.divergence.reason.startswith("R9")
    assert late.divergence.op == "free_pages"


def test_block_order_is_bound_and_agrees_on_the_correct_arena(arena64):
    adapter = load_target(arena64).factory()
    adapter.init(16, 11)
    pfn = adapter.alloc_pages(2)
    assert adapter.block_order(pfn) == 2
    adapter.free_pages(pfn, 2)
    assert adapter.block_order(pfn) is None
