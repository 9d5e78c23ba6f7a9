"""CrossHair contracts on the model's small pure functions, and how to run them.

CrossHair searches for counterexamples to PEP 316 contracts; it does not prove (its
author says so), so a clean run is reported as "no counterexample", never "proved".
The buddy arithmetic carries its contracts in model/buddy_math.py; the wrappers here
put contracts on model functions that take a profile or machine (kmalloc class
lookup, cache_estimate, colour offsets, address translation, pte encoding).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

from ..model import addr, kmalloc, pgtable, slab
from ..model.profiles import LINUX_2_6_I386

SIZES = LINUX_2_6_I386.kmalloc_sizes
_MACHINE = SimpleNamespace(profile=LINUX_2_6_I386)
LOWMEM_BYTES = 896 * 1024 * 1024


def kmalloc_class(size: int) -> int:
    """kmalloc uses the smallest general cache that fits (2.6.12 __find_general_cachep).

    pre: 1 <= size <= 131072
    post: SIZES[__return__] >= size
    post: __return__ == 0 or SIZES[__return__ - 1] < size
    """
    return kmalloc.kmalloc_index(LINUX_2_6_I386, size)


def slab_estimate(gfporder: int, size: int, align: int) -> tuple[int, int]:
    """cache_estimate (2.6.12 mm/slab.c), on-slab management: the count fits and is
    the largest that does.

    pre: 0 <= gfporder <= 5
    pre: 4 <= size <= 4096 and size % 4 == 0
    pre: align in (4, 8, 16, 32, 64, 128)
    post: __return__[1] >= 0
    post: __return__[0] * size + slab.ALIGN(24 + __return__[0] * 2, align) <= 4096 * 2 ** gfporder or __return__[0] == 0
    post: (__return__[0] + 1) * size + slab.ALIGN(24 + (__return__[0] + 1) * 2, align) > 4096 * 2 ** gfporder or __return__[0] >= 1000
    """
    return slab.cache_estimate(gfporder, size, align, False, 4096, 24, 2, 1000)


def colour_offset(colour_next: int, left_over: int, colour_off: int) -> int:
    """cache_grow's colour offset stays within the slab's slack (colour_within_slack).

    pre: 1 <= colour_off <= 256
    pre: 0 <= left_over <= 4096 * 32
    pre: 0 <= colour_next < max(left_over // colour_off, 1)
    post: __return__ == 0 or __return__ + colour_off <= left_over
    """
    colour = left_over // colour_off      # kmem_cache_create: cachep->colour
    return 0 if colour == 0 else colour_next * colour_off


def pa_of_va(paddr: int) -> int:
    """__pa(__va(p)) == p on the i386 direct map (include/asm-i386/page.h).

    pre: 0 <= paddr < LOWMEM_BYTES
    post: __return__ == paddr
    """
    return addr.__pa(_MACHINE, addr.__va(_MACHINE, paddr))


def pte_roundtrip(pfn: int, prot: int) -> int:
    """pte_pfn(mk_pte(pfn, prot)) == pfn for a 20-bit pfn and 12-bit protection.

    pre: 0 <= pfn < 2 ** 20
    pre: 0 <= prot < 4096
    post: __return__ == pfn
    """
    return pgtable.pte_pfn(pgtable.mk_pte(pfn, prot))


# (module, function) pairs checked by run_crosshair
TARGETS = [
    ("kmemspec.model.buddy_math", "buddy_index"),
    ("kmemspec.model.buddy_math", "combined_index"),
    ("kmemspec.model.buddy_math", "expand_parts"),
    ("kmemspec.model.buddy_math", "get_order"),
    ("kmemspec.proofs.contracts", "kmalloc_class"),
    ("kmemspec.proofs.contracts", "slab_estimate"),
    ("kmemspec.proofs.contracts", "colour_offset"),
    ("kmemspec.proofs.contracts", "pa_of_va"),
    ("kmemspec.proofs.contracts", "pte_roundtrip"),
]


@dataclass
class ContractRow:
    function: str
    status: str          # "no counterexample" | "counterexample" | "error"
    seconds: float
    detail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"function": self.function, "status": self.status,
                "seconds": round(self.seconds, 2), "detail": self.detail}


_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<kind>error|info|warning): (?P<msg>.*)$")


def run_crosshair(per_condition_timeout: float = 2.0, targets=None,
                  max_iterations: int | None = None) -> list[ContractRow]:
    """`crosshair check` each target function; one row per function."""
    rows = []
    exe = [sys.executable, "-m", "crosshair", "check",
           f"--per_condition_timeout={per_condition_timeout}"]
    if max_iterations:
        exe.append(f"--max_uninteresting_iterations={max_iterations}")
    for module, function in targets or TARGETS:
        start = time.perf_counter()
        proc = subprocess.run(exe + [f"{module}.{function}"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        seconds = time.perf_counter() - start
        errors = [m.group("msg") for m in map(_LINE.match, proc.stdout.splitlines()) if m
                  and m.group("kind") == "error"]
        if proc.returncode == 0:
            status = "no counterexample"
        elif errors:
            status = "counterexample"
        else:
            status = "error"
        rows.append(ContractRow(f"{module}.{function}", status, seconds,
                                {"messages": errors or proc.stderr.strip().splitlines()[-3:],
                                 "per_condition_timeout": per_condition_timeout}))
    return rows
