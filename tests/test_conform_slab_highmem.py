"""The cache (kmem_cache_*) and highmem (kmap/kunmap) parts: rules C1-C8 and H1-H6."""

import pytest

from kmemspec.conform.adapter import ModelAllocator, parts_of
from kmemspec.conform.check import CacheChecker, ConformanceFailure, HighmemChecker
from kmemspec.conform.isolate import make_driver
from kmemspec.conform.pytest_plugin import kmemspec_conform  # noqa: F401 (fixture)
from kmemspec.conform.refine import (CacheShadow, PkmapShadow, cache_geometry_of,
                                     check_kmap, check_pkmap_count, check_slab_layout)
from kmemspec.model.profiles import get_profile

PROFILE = get_profile("linux-2.6-i386")


def _geometry(size, flags=0):
    return cache_geometry_of(PROFILE, size, 0, flags, offslab_limit=116,
                             slab_break_gfp_order=0)


def test_model_offers_both_parts_and_their_introspection():
    adapter = ModelAllocator()
    assert {"cache", "highmem"} <= set(parts_of(adapter))
    assert callable(adapter.slab_layout) and callable(adapter.pkmap_count)


@pytest.mark.parametrize("colour,ok", [(0, True), (128, False), (64, False)])
def test_colour_offset_within_the_slack(colour, ok):
    # 3900 bytes: num 1, left_over 168, colour_off 128 -> one colour, offset 0 only
    shadow = CacheShadow(256, PROFILE)
    shadow.geometry[1] = _geometry(3900)
    layout = [[8192, colour, 28, 1, 1]]
    reason = check_slab_layout(shadow, 1, layout, {})
    assert (reason is None) == ok
    if not ok:
        assert reason.startswith("C8")


@pytest.mark.parametrize("entry,rule", [
    ([8192, 0, 24, 1, 1], "C7"),          # management without the bufctl array
    ([8192, 0, 28, 0, 1], "C7"),          # off-slab where the spec keeps it on
    ([8192, 0, 28, 1, 2], "C7"),          # more objects than cache_estimate
    ([8190, 0, 28, 1, 1], "C7"),          # not page aligned
])
def test_slab_geometry_is_the_specs(entry, rule):
    shadow = CacheShadow(256, PROFILE)
    shadow.geometry[1] = _geometry(3900)
    assert check_slab_layout(shadow, 1, [entry], {}).startswith(rule)


def test_object_must_be_an_object_slot_of_its_slab():
    shadow = CacheShadow(256, PROFILE)
    shadow.geometry[1] = _geometry(3900)
    shadow.objects[8192 + 24] = 1          # where the bufctl of object 0 lives
    assert check_slab_layout(shadow, 1, [[8192, 0, 28, 1, 1]], {}).startswith("C8")


def test_pkmap_rules():
    shadow = PkmapShadow(16, PROFILE)
    assert check_kmap(shadow, 0, 4096) is None
    shadow.maps[0] = [4096, 1]
    assert check_kmap(shadow, 0, 8192).startswith("H3")
    assert check_kmap(shadow, 1, 4096).startswith("H4")
    assert check_kmap(shadow, 1, 4097).startswith("H2")
    assert check_kmap(shadow, 1, None).startswith("H1")
    counts = [0] * 1024
    counts[1] = 2
    assert check_pkmap_count(shadow, counts) is None
    del shadow.maps[0]
    assert check_pkmap_count(shadow, counts).startswith("H6")
    counts[1] = 1
    assert check_pkmap_count(shadow, counts) is None


@pytest.mark.parametrize("mode", ["refine", "strict"])
def test_model_replays_a_kmap_wrap(mode):
    # distinct pages get distinct slots; balanced kunmaps leave count 1 (not yet flushed)
    checker = HighmemChecker(make_driver(ModelAllocator, isolate=False), mode)
    checker.start(16)
    handles = [checker.kmap(p) for p in range(16)]
    assert len({h.model_pfn for h in handles}) == 16
    for h in handles:
        checker.kunmap(h)
    assert sorted(set(checker.model.pkmap_count())) == [0, 1]


def test_destroy_then_create_again():
    checker = CacheChecker(make_driver(ModelAllocator, isolate=False), "strict")
    checker.start(256)
    cache = checker.cache_create(1800, 0, 0)
    objs = [checker.cache_alloc(cache) for _ in range(5)]
    for obj in objs:
        checker.cache_free(obj)
    checker.cache_destroy(cache)
    again = checker.cache_create(1800, 0, 0)
    assert checker.cache_alloc(again) is not None


def test_a_bad_answer_names_the_rule():
    class Overlapping(ModelAllocator):
        def kmem_cache_alloc(self, handle):
            return 8192 + 28                 # always the same object

    checker = CacheChecker(make_driver(Overlapping, isolate=False), "refine",
                           check_free_counts=False)
    checker.start(256)
    cache = checker.cache_create(3900, 0, 0)
    checker.cache_alloc(cache)
    with pytest.raises(ConformanceFailure, match="C5"):
        checker.cache_alloc(cache)


def test_fixture_checks_the_highmem_part(kmemspec_conform):
    kmemspec_conform(ModelAllocator, mode="strict", examples=15, isolate=False, part="highmem")
