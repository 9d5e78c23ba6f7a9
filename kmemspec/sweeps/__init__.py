"""Sweep rows for the kernel facts: each model function's inputs, swept.

A fact row written for one bug checks one input. The mutation samples (spec/mutants.md)
showed that new bugs hide in the inputs no row reaches: the boundaries of each
function's arguments (the first and last valid value, one past each), its misuse rules
(NULL, a wrong type, a negative or unaligned address, a wrong order), and the branches
only a rare state takes (a skipped cache, a third area, a mark halved by __GFP_HIGH).
The modules of this package sweep those inputs one model area at a time, with the
expected values computed from the kernel's rules (never by calling the model), and
`kmemspec verify` runs them as part of its facts method.

Each module defines FACT_GROUPS, a list of functions returning `Fact` rows (see
kmemspec/facts.py); this package collects them in module-name order, so a new area is a
new module and nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil


def fact_groups() -> list:
    """Every sweep module's FACT_GROUPS, in module-name order."""
    groups: list = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        groups.extend(getattr(module, "FACT_GROUPS", []))
    return groups
