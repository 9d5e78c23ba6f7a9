"""The invariant catalogue: stable names, and the checks that make them up.

An invariant is one stable name (it appears in JSON output) with one or more *parts*,
one per layer that contributes to it: `no_overlap` has a buddy part (page blocks), a
slab part (objects) and a vmalloc part (virtual areas), for example. A part is a
function `check(machine) -> list[str]` returning the violations it found (empty: the
invariant holds for that layer); it must not change the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# Stable catalogue order (DESIGN.md section 3). Layers may add names after these.
CATALOGUE_ORDER = [
    "no_overlap", "buddy_alignment", "merge_completeness", "conservation", "page_state",
    "colour_within_slack", "slab_accounting", "size_class",
    "page_table_consistency", "vm_area_bounds", "pkmap_consistency",
]


@dataclass(frozen=True)
class Part:
    name: str
    layer: str
    check: Callable[[object], list[str]]
    summary: str


_PARTS: dict[str, list[Part]] = {}

MAX_REPORT = 20   # violations listed per check; the rest are counted


class Report(list):
    """A list of violations that stops growing after MAX_REPORT, counting the rest."""

    def __init__(self):
        super().__init__()
        self.hidden = 0

    def add(self, message: str) -> None:
        if len(self) < MAX_REPORT:
            self.append(message)
        else:
            self.hidden += 1

    def done(self) -> list[str]:
        if self.hidden:
            self.append(f"... and {self.hidden} more")
        return list(self)


def invariant(name: str, layer: str, summary: str):
    """Register `check(machine) -> list[str]` as the `layer` part of invariant `name`."""
    def register(check):
        parts = _PARTS.setdefault(name, [])
        if any(p.layer == layer for p in parts):
            raise ValueError(f"invariant {name} already has a {layer} part")
        parts.append(Part(name, layer, check, summary))
        return check
    return register


def invariant_names() -> list[str]:
    """Every registered invariant, catalogue order first."""
    known = [n for n in CATALOGUE_ORDER if n in _PARTS]
    return known + sorted(n for n in _PARTS if n not in CATALOGUE_ORDER)


def parts(name: str) -> list[Part]:
    return list(_PARTS[name])


def check(machine, name: str) -> list[str]:
    """All violations of one invariant on a machine (empty list: it holds)."""
    found: list[str] = []
    for part in _PARTS[name]:
        found.extend(part.check(machine))
    return found


def check_all(machine) -> dict[str, list[str]]:
    """{invariant name: violations} for the whole catalogue."""
    return {name: check(machine, name) for name in invariant_names()}


def status(results: dict[str, list[str]]) -> dict[str, str]:
    return {name: ("broken" if v else "held") for name, v in results.items()}
