"""Scenarios: JSON Lines files of kernel calls, run on the model (DESIGN.md section 6).

The first line boots a machine: `{"op": "boot", "profile": ..., "phys_pages": ...}`;
every other line is one kernel call named as in the kernel, with its arguments.
`"as": "a"` binds the call's result to `a`; `"$a"` in a later argument refers to it.
A step may say what it expects: `"expect": {"ret": 4096}`, `{"ret": null}` or
`{"error": "double_free"}`; a step expecting an error is a *rejected* call: the run
goes on, and the state must be unchanged.

Results are JSON values: a page is its pfn, an address an integer, NULL is null.

Operations are registered by layer modules (kmemspec/ops_*.py) with `op()`; the
state views shown after a run (buddyinfo, slabinfo, ...) with `state_view()`.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from .model import ConfigError, KernelBug, MachineConfig, boot
from .model.boot import validate_config
from .spec import catalogue


class ScenarioError(Exception):
    """Bad scenario input: which line, and what is wrong with it."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(f"line {line}: {message}")


# --- registries -------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    name: str
    params: tuple[str, ...]               # argument names, in call order
    run: Callable[..., Any]               # run(machine, **args) -> JSON-able result
    optional: tuple[str, ...] = ()         # params that may be omitted
    void: bool = False                     # returns nothing (shown as "ok", not NULL)


OPS: dict[str, Op] = {}


def op(name: str, *params: str, optional: tuple[str, ...] = (), void: bool = False):
    """Register `run(machine, **args)` as scenario operation `name`."""
    def register(run):
        OPS[name] = Op(name, tuple(params), run, tuple(optional), void)
        return run
    return register


@dataclass(frozen=True)
class StateView:
    name: str
    to_json: Callable[[Any], Any]
    to_text: Callable[[Any], str]


STATE_VIEWS: dict[str, StateView] = {}


def state_view(name: str, to_text: Callable[[Any], str]):
    """Register `to_json(machine)` as the state view `name` (with a text rendering)."""
    def register(to_json):
        STATE_VIEWS[name] = StateView(name, to_json, to_text)
        return to_json
    return register


# Argument converters: raise ValueError with a readable reason.
def as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise ValueError(f"{what} must be an integer (or a 0x... string), not {value!r}")


# --- parsing ----------------------------------------------------------------------

@dataclass
class Step:
    line: int
    op: str
    args: dict[str, Any]
    bind: str | None = None
    expect: dict[str, Any] | None = None


@dataclass
class Scenario:
    config: MachineConfig
    steps: list[Step] = field(default_factory=list)
    boot_line: int = 1


def parse_scenario(text: str) -> Scenario:
    """Parse and validate a whole scenario before anything runs."""
    scenario: Scenario | None = None
    names: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ScenarioError(number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict) or "op" not in obj:
            raise ScenarioError(number, 'each line must be a JSON object with an "op"')
        name = obj["op"]
        if scenario is None:
            if name != "boot":
                raise ScenarioError(number, f'the first line must be {{"op": "boot", ...}}, '
                                            f'not {name!r}')
            config = dict(obj)
            del config["op"]
            try:
                scenario = Scenario(MachineConfig.from_dict(config), boot_line=number)
                validate_config(scenario.config)
            except (ConfigError, TypeError) as exc:
                raise ScenarioError(number, f"bad boot configuration: {exc}") from None
            continue
        if name == "boot":
            raise ScenarioError(number, "a scenario boots one machine, on its first line")
        if name not in OPS:
            raise ScenarioError(number, f"unknown op {name!r} (known: {', '.join(sorted(OPS))})")
        spec = OPS[name]
        bind = obj.get("as")
        expect = obj.get("expect")
        args = {k: v for k, v in obj.items() if k not in ("op", "as", "expect")}
        for key in args:
            if key not in spec.params:
                raise ScenarioError(number, f"{name} takes ({', '.join(spec.params)}); "
                                            f"unexpected argument {key!r}")
        for key in spec.params:
            if key not in args and key not in spec.optional:
                raise ScenarioError(number, f"{name} needs argument {key!r}")
        for key, value in args.items():
            if isinstance(value, str) and value.startswith("$"):
                if value[1:] not in names:
                    raise ScenarioError(number, f"{key}: {value} is not bound by an earlier "
                                                f'"as" (bound: {", ".join(sorted(names)) or "none"})')
        if bind is not None:
            if not isinstance(bind, str) or not bind.isidentifier():
                raise ScenarioError(number, f'"as" must be a name, not {bind!r}')
            names.add(bind)
        if expect is not None:
            if not isinstance(expect, dict) or not set(expect) <= {"ret", "error"} or not expect:
                raise ScenarioError(number, '"expect" must be {"ret": value} or {"error": rule}')
        scenario.steps.append(Step(number, name, args, bind, expect))
    if scenario is None:
        raise ScenarioError(1, 'empty scenario: the first line must be {"op": "boot", ...}')
    return scenario


def parse_file(path: str) -> Scenario:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ScenarioError(0, f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ScenarioError(0, f"{path} is not UTF-8 text") from None
    return parse_scenario(text)


# --- running ----------------------------------------------------------------------

@dataclass
class RunResult:
    machine: Any
    results: list[dict] = field(default_factory=list)
    invariants: dict[str, list[str]] = field(default_factory=dict)
    broken_at: int | None = None        # first step after which an invariant broke
    failed: bool = False                 # an unexpected error or a failed expectation

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or any(self.invariants.values()) else 0

    def to_json(self) -> dict:
        return {
            "results": self.results,
            "state": {name: view.to_json(self.machine) for name, view in STATE_VIEWS.items()},
            "invariants": catalogue.status(self.invariants),
            "violations": {k: v for k, v in self.invariants.items() if v},
            **({"broken_at_step": self.broken_at} if self.broken_at is not None else {}),
        }


def _resolve(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return env[value[1:]]
    return value


def run_scenario(scenario: Scenario, *, check_every_step: bool = True,
                 on_step: Callable[[Any, dict, dict | None], None] | None = None) -> RunResult:
    """Boot and run every step; invariants after every step (or only at the end).

    `on_step(machine, entry, invariants)` is called after each step (invariants None
    where they were not checked); `on_step(machine, None, None)` once after boot.
    """
    try:
        machine = boot(scenario.config)
    except ConfigError as exc:
        raise ScenarioError(scenario.boot_line, f"bad boot configuration: {exc}") from None
    run = RunResult(machine)
    if on_step is not None:
        on_step(machine, None, None)
    env: dict[str, Any] = {}
    for index, step in enumerate(scenario.steps, start=1):
        spec = OPS[step.op]
        entry: dict[str, Any] = {"step": index, "line": step.line, "op": step.op,
                                 "args": step.args}
        try:
            args = {k: _resolve(v, env) for k, v in step.args.items()}
            machine.alloc_failure = None
            ret = spec.run(machine, **args)
        except KernelBug as bug:
            entry["error"] = bug.to_json()
            ret = None
        except ValueError as exc:
            raise ScenarioError(step.line, f"{step.op}: {exc}") from None
        else:
            entry["ret"] = ret
            if ret is None and not spec.void and machine.alloc_failure is not None:
                entry["why"] = machine.alloc_failure    # the page allocator's NULL
        if step.bind is not None:
            env[step.bind] = ret
        if step.expect is not None:
            entry["expect"] = step.expect
            if "error" in step.expect:
                ok = "error" in entry and entry["error"]["rule"] == step.expect["error"]
            else:
                ok = "error" not in entry and entry.get("ret") == step.expect["ret"]
            entry["as_expected"] = ok
            if not ok:
                run.failed = True
        elif "error" in entry:
            run.failed = True
        run.results.append(entry)
        found = None
        if check_every_step or index == len(scenario.steps):
            found = catalogue.check_all(machine)
        if on_step is not None:
            on_step(machine, entry, found)
        if found is not None:
            if any(found.values()):
                run.invariants = found
                run.broken_at = index
                return run
        if run.failed:
            break
    run.invariants = catalogue.check_all(machine)
    return run


def _show(ret: Any) -> str:
    if ret is None:
        return "NULL"
    if isinstance(ret, int) and not isinstance(ret, bool) and ret >= 1 << 16:
        return f"{ret:#x}"      # addresses in hex, pfns and sizes in decimal
    return json.dumps(ret)


def format_text(run: RunResult) -> str:
    """The human-readable report: one line per call, then /proc views, then invariants."""
    lines = []
    for entry in run.results:
        args = ", ".join(f"{k}={_show(v) if not isinstance(v, str) else v}"
                         for k, v in entry["args"].items())
        head = f"[{entry['step']:>3}] {entry['op']}({args})"
        if "error" in entry:
            lines.append(f"{head} -> error {entry['error']['message']}")
        elif OPS[entry["op"]].void:
            lines.append(f"{head} -> ok")
        else:
            why = f" ({entry['why']})" if "why" in entry else ""
            lines.append(f"{head} -> {_show(entry['ret'])}{why}")
        if "as_expected" in entry and not entry["as_expected"]:
            lines.append(f"      expected {json.dumps(entry['expect'])}")
    for view in STATE_VIEWS.values():
        text = view.to_text(run.machine)
        if text:
            lines.append("")
            lines.append(text)
    lines.append("")
    for name, found in run.invariants.items():
        lines.append(f"invariant {name}: {'broken' if found else 'held'}")
        for message in found:
            lines.append(f"    {message}")
    if run.broken_at is not None:
        lines.append(f"invariants broke after step {run.broken_at}")
    return "\n".join(lines)


# Layer modules register their ops and state views on import.
OP_MODULES = ("ops_buddy", "ops_slab", "ops_vmalloc", "ops_cpu")
for _name in OP_MODULES:
    importlib.import_module(f".{_name}", __package__)
