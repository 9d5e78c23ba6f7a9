"""The C example allocator, built with the system compiler, checked in both modes."""

import os
import shutil
import subprocess

import pytest

from kmemspec.conform.adapter import load_target
from kmemspec.conform.ctypes_adapter import HEADER_PATH
from kmemspec.conform.stateful import check_conformance

SOURCE = os.path.join(os.path.dirname(__file__), "..", "examples", "c_buddy", "buddy.c")
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) on PATH: "
                                                   "the C example cannot be built")


def _build(tmp_path_factory, *defines):
    out = tmp_path_factory.mktemp("c_buddy") / "libbuddy.so"
    subprocess.run([CC, "-shared", "-fPIC", "-O1", "-Wall", "-Werror",
                    "-I", os.path.dirname(HEADER_PATH), *defines, "-o", str(out), SOURCE],
                   check=True, capture_output=True)
    return str(out)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return _build(tmp_path_factory)


@pytest.fixture(scope="module")
def buggy_library(tmp_path_factory):
    return _build(tmp_path_factory, "-DKMS_BUG_NO_ORDER_CHECK", "-DKMS_BUG_NO_GUARD",
                  "-DKMS_BUG_PKMAP_LEAK")


@pytest.mark.parametrize("part", ["page", "vmalloc", "highmem"])
@pytest.mark.parametrize("mode", ["strict", "refine"])
def test_c_buddy_conforms(library, mode, part):
    target = load_target(library)
    assert check_conformance(target.factory, mode=mode, max_examples=60, part=part,
                             name=target.name) is None


@pytest.mark.parametrize("part", ["page", "vmalloc", "highmem"])
@pytest.mark.parametrize("mode", ["strict", "refine"])
def test_c_buddy_with_a_bug_is_caught(buggy_library, mode, part):
    target = load_target(buggy_library)
    report = check_conformance(target.factory, mode=mode, max_examples=150, part=part,
                               name=target.name)
    assert report is not None and report.nr_calls - 1 <= 8


def test_c_buddy_replays_the_vectors(library):
    from kmemspec.conform.isolate import make_driver
    from kmemspec.conform.vectors import build_all, replay_page_vector
    driver = make_driver(load_target(library).factory)
    try:
        for vector in build_all().values():
            # vmalloc pfns depend on the model's slab pages: judged in refine mode
            mode = {"page_alloc": "strict", "vmalloc": "refine",
                    "highmem": "strict"}.get(vector["runner"])
            if mode is not None:
                result = replay_page_vector(vector, driver, mode=mode)
                assert result.ok, (result.name, result.failures)
    finally:
        driver.close()
