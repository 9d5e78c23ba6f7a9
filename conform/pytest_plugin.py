"""pytest plugin: the `kmemspec_conform` fixture checks an allocator in one line.

    def test_my_allocator(kmemspec_conform):
        kmemspec_conform(MyAllocator, mode="refine")

On a divergence the test fails with the minimal call sequence, the rule broken,
expected vs. actual, and the sequence as a model scenario (for `kmemspec run`).
Registered as the `kmemspec` pytest11 entry point; importing it does nothing else
(heavy imports happen only when the fixture is used), so it cannot disturb other
test suites.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def kmemspec_conform(tmp_path):
    """A function `check(factory, mode="refine", examples=100, seed=None, isolate=True,
    timeout=2.0, part="page", page_policy="buddy")` that fails the test on a divergence;
    returns None when it conforms. `part`: page, object, vmalloc, cache or highmem;
    `page_policy`: the flat machine's, "buddy" or "2.6.12" (spec/conformance.md)."""

    def check(factory, mode: str = "refine", examples: int = 100, seed: int | None = None,
              isolate: bool = True, timeout: float = 2.0, part: str = "page",
              page_policy: str = "buddy") -> None:
        from .adapter import FLAT_PAGE_POLICIES
        from .stateful import check_conformance
        if page_policy not in FLAT_PAGE_POLICIES:
            raise ValueError(f"page_policy must be one of {', '.join(FLAT_PAGE_POLICIES)}, "
                             f"not {page_policy!r}")
        name = getattr(factory, "__name__", type(factory).__name__)
        report = check_conformance(factory, mode=mode, max_examples=examples, seed=seed,
                                   isolate=isolate, timeout=timeout, name=name, part=part,
                                   page_policy=page_policy)
        if report is None:
            return None
        scenario = tmp_path / f"{name}-{part}-{mode}.jsonl"
        scenario.write_text(report.scenario(), encoding="utf-8")
        picture = tmp_path / f"{name}-{part}-{mode}.svg"
        picture.write_text(report.svg(), encoding="utf-8")
        report.files = {"scenario": str(scenario), "picture": str(picture)}
        pytest.fail(report.text() + "\n\n" + report.scenario(), pytrace=False)

    return check
