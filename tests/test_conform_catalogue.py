"""Every catalogue bug is caught, within the limits; correct adapters pass both modes."""

import pytest

from kmemspec.conform.adapter import ModelAllocator, ModelPageAllocator
from kmemspec.conform.catalogue import (BUGS, VARIANTS, NoIntrospection, ReferenceBuddy,
                                        ReferenceVmalloc)
from kmemspec.conform.stateful import check_conformance

MAX_CALLS = 8        # the limit, init not counted


def _run(factory, mode, examples=150, isolate=False, part="page"):
    return check_conformance(factory, mode=mode, max_examples=examples, isolate=isolate,
                             name=getattr(factory, "name", "t"), part=part)


@pytest.mark.parametrize("factory,part", [
    (ModelPageAllocator, "page"), (ReferenceBuddy, "page"), (NoIntrospection, "page"),
    (ModelAllocator, "object"), (ModelAllocator, "vmalloc"), (ReferenceVmalloc, "vmalloc"),
    (ModelAllocator, "cache"), (ModelAllocator, "highmem")],
    ids=["model", "reference", "reference-no-introspection", "model-kmalloc",
         "model-vmalloc", "reference-vmalloc", "model-kmem-cache", "model-kmap"])
@pytest.mark.parametrize("mode", ["refine", "strict"])
def test_correct_adapters_pass(factory, part, mode):
    assert _run(factory, mode, examples=50, part=part) is None


@pytest.mark.parametrize("name", sorted(BUGS))
@pytest.mark.parametrize("mode", ["refine", "strict"])
def test_bug_is_caught(name, mode):
    entry = BUGS[name]
    assert mode in entry.modes
    report = _run(entry.factory, mode, part=entry.layer)
    assert report is not None, f"{name} passed {mode} mode"
    assert report.nr_calls - 1 <= MAX_CALLS, report.text()
    # the counterexample replays on the model as a scenario and has a picture
    assert report.scenario().count('"op": "boot"') == 1
    assert report.svg().startswith("<svg")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_legal_variants_pass_refine_and_fail_strict(name):
    entry = VARIANTS[name]
    assert _run(entry.factory, "refine", examples=80) is None
    report = _run(entry.factory, "strict")
    assert report is not None and report.divergence.reason.startswith("S1")


def test_isolated_run_catches_a_bug_too():
    report = _run(BUGS["expand_returns_lower_half"].factory, "refine", isolate=True)
    assert report is not None and report.nr_calls - 1 <= MAX_CALLS
