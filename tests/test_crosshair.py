"""CrossHair: contracts on the small pure functions (proofs/contracts.py), a broken
contract that must be caught, and the hypothesis-crosshair backend on properties."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings, strategies as st

from kmemspec.model import buddy_math as bm
from kmemspec.proofs.contracts import run_crosshair

PER_CONDITION = 1.5      # seconds; the whole test stays well under a minute


def test_contracts_have_no_counterexample():
    rows = run_crosshair(PER_CONDITION)
    assert len(rows) == 9
    bad = [r for r in rows if r.status != "no counterexample"]
    assert not bad, [r.to_json() for r in bad]


BROKEN = '''
def buddy_index(page_idx: int, order: int) -> int:
    """Wrong buddy: always the block above (the kernel XORs).

    pre: 0 <= order < 11
    pre: 0 <= page_idx < 2 ** 20
    pre: page_idx % 2 ** order == 0
    post: __return__ // 2 ** (order + 1) == page_idx // 2 ** (order + 1)
    """
    return page_idx + 2 ** order
'''


def test_broken_contract_is_caught(tmp_path):
    path = tmp_path / "broken_buddy.py"
    path.write_text(BROKEN)
    proc = subprocess.run([sys.executable, "-m", "crosshair", "check",
                           f"--per_condition_timeout={PER_CONDITION}", str(path)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0
    assert "error: false when calling buddy_index" in proc.stdout, proc.stdout


try:
    import hypothesis_crosshair_provider  # noqa: F401
    BACKEND = {"backend": "crosshair"}
except ImportError:           # pragma: no cover - the test extra installs it
    BACKEND = {}


@settings(max_examples=30, deadline=None, **BACKEND)
@given(st.integers(0, 2 ** 20 - 1), st.integers(0, 10))
def test_buddy_of_buddy_is_self(idx, order):
    idx -= idx % 2 ** order
    assert bm.buddy_index(bm.buddy_index(idx, order), order) == idx
    assert bm.buddy_index(idx, order) == idx ^ (1 << order)


@settings(max_examples=30, deadline=None, **BACKEND)
@given(st.integers(0, 2 ** 20 - 1), st.integers(0, 9))
def test_combined_index_is_kernel_and(idx, order):
    idx -= idx % 2 ** order
    assert bm.combined_index(idx, order) == idx & ~(1 << order)
