"""Run a written scenario against an implementation, beside the model (`conform --replay`).

The scenario is in the flat-machine form `kmemspec conform` writes (a boot line made by
adapter.flat_boot_line, then page-allocator calls): its boot line gives the number of
frames (phys_pages - FLAT_BASE), `alloc_pages` / `__get_free_pages` lines give orders
and names, `__free_pages` / `free_pages` lines free a named block. Each call goes to the
implementation and to the model through the same PageChecker the search uses, so the
verdict at each step is the mode's; the rows show both answers side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .adapter import FLAT_BASE, flat_boot_line
from .check import ConformanceFailure, replay
from .isolate import AdapterFault, run_prefix

__all__ = ["ScenarioError", "ReplayResult", "load_flat_scenario", "load_prefix",
           "replay_scenario"]

_ALLOCS = ("alloc_pages", "__get_free_pages", "alloc_page", "__get_free_page")
_FREES = ("__free_pages", "free_pages", "__free_page", "free_page")


class ScenarioError(ValueError):
    """The scenario is not a flat-machine page-allocator scenario (says where)."""


def load_flat_scenario(text: str, where: str = "scenario", *, with_policy: bool = False):
    """(nr_pages, profile, ops) of a flat-machine scenario -- with `with_policy`,
    (nr_pages, profile, ops, page_policy); ScenarioError if not one."""
    nr_pages = profile = None
    policy = "buddy"
    ops: list[tuple] = []
    names = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            step = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{where}:{number}: not JSON ({exc.msg})") from None
        op = step.get("op") if isinstance(step, dict) else None
        if nr_pages is None:
            if op != "boot":
                raise ScenarioError(f"{where}:{number}: the first step must boot the machine")
            profile = step.get("profile", "linux-2.6-i386")
            nr_pages = step.get("phys_pages", 0) - FLAT_BASE
            policy = step.get("page_policy", "buddy")
            try:
                flat = flat_boot_line(nr_pages, profile, policy)
            except (ValueError, KeyError):
                flat = None
            if flat is None or any(step.get(k, flat[k]) != flat[k] for k in flat):
                raise ScenarioError(f"{where}:{number}: not the flat machine kmemspec conform "
                                    "writes (its boot line has phys_pages = "
                                    f"{FLAT_BASE} + frames and the matching reserved ranges)")
            continue
        if op in _ALLOCS:
            order = step.get("order", 0)
            if type(order) is not int or order < 0:
                raise ScenarioError(f"{where}:{number}: order {order!r} is not an order")
            names += 1
            ops.append(("alloc", "alloc_pages", order, step.get("as") or f"_{names}"))
        elif op in _FREES:
            ref = step.get("page", step.get("addr"))
            if not (isinstance(ref, str) and ref.startswith("$")):
                raise ScenarioError(f"{where}:{number}: {op} must name a block bound with "
                                    f"\"as\" (\"$name\"), not {ref!r}")
            ops.append(("free", "free_pages", ref[1:]))
        else:
            raise ScenarioError(f"{where}:{number}: {op!r} is not a page-allocator call "
                                "(replay against an implementation takes alloc_pages and "
                                "__free_pages)")
    if nr_pages is None:
        raise ScenarioError(f"{where}: empty scenario (no boot line)")
    if with_policy:
        return nr_pages, profile, ops, policy
    return nr_pages, profile, ops


@dataclass
class ReplayResult:
    calls: list[dict]
    failure: ConformanceFailure | None
    remaining: int = 0             # calls of the scenario after the failing one

    def rows(self) -> list[str]:
        """One line per call: the implementation's answer, the model's, the verdict."""
        failing = None if self.failure is None else self.failure.divergence.step
        out = [f"  {'step':>4}  {'call':<34} {'implementation':>14} {'model (Linux)':>14}"]
        for index, call in enumerate(self.calls):
            if call["op"] == "init":
                text, mine, model = f"init(nr_pages={call['nr_pages']})", "ok", "ok"
            elif call["op"] == "alloc_pages":
                text = f"{call['as']} = alloc_pages(order={call['order']})"
                mine, model = _pfn(call.get("ret", "?")), _pfn(call.get("model_ret", "?"))
            else:
                text = f"free_pages({call['block']}, order={call['order']})"
                mine = model = "ok"
            if index == failing:
                verdict = f"  <-- {self.failure.divergence.reason}"
            else:
                verdict = ""
            out.append(f"  {index:>4}  {text:<34} {mine:>14} {model:>14}{verdict}")
        if self.failure is not None and self.remaining:
            out.append(f"  (stopped at step {failing}: {self.remaining} later calls not run)")
        return out


def _pfn(value) -> str:
    return "NULL" if value is None else str(value)


def load_prefix(text: str, where: str = "prefix") -> list[list[tuple]]:
    """The earlier sequences of a prefix file (Report.prefix_lines)."""
    sequences: list[list[tuple]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{where}:{number}: not JSON ({exc.msg})") from None
        if entry == {"op": "new"}:
            sequences.append([])
        elif (isinstance(entry, dict) and isinstance(entry.get("call"), str)
              and isinstance(entry.get("args"), list) and sequences):
            sequences[-1].append((entry["call"], tuple(entry["args"])))
        else:
            raise ScenarioError(f"{where}:{number}: expected {{\"op\": \"new\"}} or "
                                "{\"call\": NAME, \"args\": [...]} after a \"new\"")
    return sequences


def replay_scenario(driver, mode: str, nr_pages: int, profile: str, ops: list[tuple],
                    *, check_free_counts: bool = True, checker_class=None,
                    prefix=()) -> ReplayResult:
    """Run the ops on a fresh implementation and on the model; every call, both answers.

    `prefix`: earlier sequences (adapter calls) made first in the same process.
    """
    seen: list[dict] = []
    if prefix:
        try:
            run_prefix(driver, prefix)
        except AdapterFault as exc:
            raise ScenarioError(f"the prefix alone makes the implementation fail: {exc}")

    class Recording(checker_class or _page_checker()):
        def start(self, n):
            seen.append(self)
            return super().start(n)

    failure = replay(driver, mode, profile, nr_pages, ops, check_free_counts, Recording)
    calls = failure.calls if failure is not None else seen[-1].calls
    remaining = 0 if failure is None else max(0, len(ops) - failure.divergence.step)
    return ReplayResult([dict(c) for c in calls], failure, remaining)


def _page_checker():
    from .check import PageChecker
    return PageChecker
