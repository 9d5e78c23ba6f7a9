"""The check every misuse test makes: the call raises the model's KernelBug with the
expected rule, and the whole machine state is unchanged (compared pickled)."""

from __future__ import annotations

import pickle

import pytest

from kmemspec.model import KernelBug


def snapshot(machine) -> bytes:
    """The whole machine state, for before/after comparisons."""
    return pickle.dumps(machine.__dict__)


def misuse(machine, rule, fn, *args):
    """fn(machine, *args) must raise KernelBug `rule` and change nothing; the error."""
    before = snapshot(machine)
    with pytest.raises(KernelBug) as info:
        fn(machine, *args)
    assert info.value.rule == rule, str(info.value)
    assert snapshot(machine) == before, f"{rule} changed the state"
    return info.value
