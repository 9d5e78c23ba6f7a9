"""Helpers for tests that apply a mutant by hand and see a facts row fail."""

from __future__ import annotations


def failing(group) -> list[str]:
    """The names of the group's facts that do not hold (a raising model side fails)."""
    out = []
    for fact in group():
        try:
            ok = fact.model() == fact.expected()
        except Exception:             # the model side raising is a failure of the row
            ok = False
        if not ok:
            out.append(fact.name)
    return out


def mutate(monkeypatch, module, name: str, old: str, new: str):
    """Replace `module.name` by a copy whose source has `old` changed to `new` (the
    mutation driver's change, applied to one function for the test's duration)."""
    import __future__
    import inspect
    import textwrap
    import warnings
    source = textwrap.dedent(inspect.getsource(getattr(module, name)))
    assert source.count(old) == 1, (name, old)
    with warnings.catch_warnings():   # a mutant like `x is not "slub"` is meant to be odd
        warnings.simplefilter("ignore", SyntaxWarning)
        code = compile(source.replace(old, new), module.__file__, "exec",
                       flags=__future__.annotations.compiler_flag, dont_inherit=True)
    space: dict = {}
    exec(code, module.__dict__, space)
    monkeypatch.setattr(module, name, space[name])
    return space[name]
