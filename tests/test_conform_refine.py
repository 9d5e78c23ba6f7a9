"""The refinement checks (conform/refine.py) against the model, and on broken answers."""

import random

import pytest

from kmemspec.conform.adapter import FLAT_BASE, ModelPageAllocator, flat_config
from kmemspec.conform.refine import (Shadow, canonical_counts, check_alloc, check_counts,
                                     fits_somewhere)

MAX_ORDER = 11


def _random_run(nr_pages, seed, steps=60):
    """A model and the shadow of its live blocks after random valid calls."""
    rng = random.Random(seed)
    model = ModelPageAllocator()
    model.init(nr_pages, MAX_ORDER)
    shadow = Shadow(nr_pages, MAX_ORDER)
    for _ in range(steps):
        if shadow.live and rng.random() < 0.45:
            pfn = rng.choice(sorted(shadow.live))
            model.free_pages(pfn, shadow.remove(pfn))
        else:
            order = rng.choice([0, 0, 0, 1, 1, 2, 3, 5])
            ret = model.alloc_pages(order)
            assert check_alloc(shadow, order, ret) is None
            if ret is not None:
                shadow.add(ret, order)
    return model, shadow


@pytest.mark.parametrize("nr_pages", [2, 7, 16, 40, 1536, 2051])
@pytest.mark.parametrize("seed", range(4))
def test_canonical_counts_are_the_models_buddyinfo(nr_pages, seed):
    # complete merging makes the decomposition unique: the model's lists must equal it
    model, shadow = _random_run(nr_pages, seed)
    assert canonical_counts(shadow) == model.free_counts()
    assert check_counts(shadow, model.free_counts()) is None


def test_flat_machine_is_one_free_zone():
    model = ModelPageAllocator()
    model.init(2051, MAX_ORDER)
    assert model.zone.zone_start_pfn == FLAT_BASE
    assert model.free_counts() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert flat_config(2051).max_dma_pfn == FLAT_BASE


def test_each_rule_rejects_its_broken_answer():
    shadow = Shadow(16, MAX_ORDER)
    shadow.add(0, 2)
    assert check_alloc(shadow, 0, "x").startswith("R1")
    assert check_alloc(shadow, 2, 14).startswith("R2")      # 14..17 runs past 16
    assert check_alloc(shadow, 1, 5).startswith("R3")
    assert check_alloc(shadow, 0, 3).startswith("R4")
    assert check_alloc(shadow, 2, None).startswith("R5")    # 4..7 is free
    assert check_alloc(shadow, 11, 0).startswith("R6")
    assert check_alloc(shadow, 11, None) is None
    assert check_alloc(shadow, 2, 4) is None
    assert check_counts(shadow, [0, 0, 1, 1] + [0] * 7) is None
    assert check_counts(shadow, [0, 0, 0, 0, 1] + [0] * 6).startswith("R8")
    assert check_counts(shadow, [0, 0, 1, 1] + [0] * 8).startswith("R8: free_counts() reports 12")


def test_null_allowed_only_without_an_aligned_run():
    shadow = Shadow(8, MAX_ORDER)
    for pfn in (1, 3, 5, 7):
        shadow.add(pfn, 0)
    assert fits_somewhere(shadow, 1) is None               # 4 free frames, no aligned pair
    assert check_alloc(shadow, 1, None) is None
    assert fits_somewhere(shadow, 0) == 0
