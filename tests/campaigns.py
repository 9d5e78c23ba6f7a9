"""Running a campaign in a seeded-bug test: fixed seed, no shrinking when it must fail."""

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test


def must_fail(machine, examples: int = 200, steps: int = 30) -> None:
    """The campaign finds a counterexample (a broken model is patched in)."""
    with pytest.raises(Exception):
        run_state_machine_as_test(machine, settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
            derandomize=True, phases=[Phase.explicit, Phase.generate]))


def must_pass(machine, examples: int = 30, steps: int = 30) -> None:
    """The same campaign holds on the real model."""
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
        derandomize=True))
