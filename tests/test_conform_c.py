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


# A C cache allocator whose answers conform (one object per page run, never reused) but
# whose slabs do not have the 2.6.12 geometry: the kms_kmem_cache_* and kms_slab_layout
# bindings carry both facts through.
BUMP_CACHE = r"""
#include "kms.h"
/* one object per page run, never reused: answers conform, the slab geometry does not */
static unsigned long npages, next_page;
static long ncaches;
static unsigned long pages_of[256];
static unsigned long base_of[4096];
static long owner[4096];
static int nbases;
int  kms_init(unsigned long nr_pages, unsigned int max_order)
{ (void)max_order; npages = nr_pages; next_page = 0; ncaches = 0; nbases = 0; return 0; }
long kms_alloc_pages(unsigned int order) { (void)order; return -1; }
int  kms_free_pages(unsigned long pfn, unsigned int order) { (void)pfn; (void)order; return 0; }
long kms_kmem_cache_create(const char *name, unsigned long size, unsigned long align,
                           unsigned long flags)
{ (void)name; (void)align; (void)flags; if (ncaches == 255) return -1;
  pages_of[ncaches] = (size + 4095) / 4096; return ncaches++; }
long kms_kmem_cache_alloc(long cache)
{ unsigned long base;
  if (next_page + pages_of[cache] > npages || nbases == 4096) return -1;
  base = next_page * 4096; next_page += pages_of[cache];
  base_of[nbases] = base; owner[nbases++] = cache; return (long)base; }
int  kms_kmem_cache_free(long cache, unsigned long addr) { (void)cache; (void)addr; return 0; }
int  kms_kmem_cache_destroy(long cache) { (void)cache; return 0; }
int  kms_slab_layout(long cache, long *out, unsigned int capacity)
{ int i, n = 0;
  for (i = 0; i < nbases; i++) if (owner[i] == cache) {
    if ((unsigned)n < capacity) { long *e = out + 5 * n;
      e[0] = (long)base_of[i]; e[1] = 0; e[2] = 0; e[3] = 0; e[4] = 1; }
    n++; }
  return n; }
"""


def test_c_cache_part_through_the_abi(tmp_path):
    source = tmp_path / "bump.c"
    source.write_text(BUMP_CACHE)
    out = tmp_path / "libbump.so"
    subprocess.run([CC, "-shared", "-fPIC", "-O1", "-Wall", "-Werror",
                    "-I", os.path.dirname(HEADER_PATH), "-o", str(out), str(source)],
                   check=True, capture_output=True)
    target = load_target(str(out))
    assert check_conformance(target.factory, mode="refine", part="cache", introspect=False,
                             max_examples=40, name=target.name) is None
    report = check_conformance(target.factory, mode="refine", part="cache", max_examples=40,
                               name=target.name)
    assert report is not None and report.divergence.reason.startswith("C7")
    assert report.nr_calls - 1 <= 8
