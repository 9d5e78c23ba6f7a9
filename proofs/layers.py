"""Every layer's proof obligations behind one call: the buddy allocator
(proofs/obligations.py), 2.6.12's per-CPU page lists on top of it
(proofs/pcp_obligations.py), the slab layer (proofs/slab_obligations.py) and vmalloc
with the page tables and pkmap (proofs/vmalloc_obligations.py).

Each layer has its own encoding, invariants (catalogue names; `no_overlap` and
`conservation` have a buddy part and a vmalloc part), operations and seeded bugs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .obligations import Row


@dataclass(frozen=True)
class Layer:
    name: str
    invariants: list[str]
    operations: list[str]
    seeded_bugs: dict[str, str]          # name -> what is broken
    prove: Callable[..., list[Row]]      # (invariants, operations, seed_bug, timeout_ms, progress)


def _buddy() -> Layer:
    from ..spec import z3_buddy as zb
    from .obligations import OPERATIONS, prove_all

    def prove(invariants, operations, seed_bug, timeout_ms, progress):
        enc = zb.Encoding.seeded(seed_bug) if seed_bug else zb.Encoding()
        return prove_all(enc=enc, invariants=invariants, operations=operations,
                         timeout_ms=timeout_ms, progress=progress)
    bugs = {name: f"Encoding.{switch} = False" for name, switch in zb.SEEDED_BUGS.items()}
    return Layer("buddy", list(zb.INVARIANTS), list(OPERATIONS), bugs, prove)


def _pcp() -> Layer:
    from . import pcp_obligations as po

    def prove(invariants, operations, seed_bug, timeout_ms, progress):
        return po.prove_pcp(invariants, operations, seed_bug, timeout_ms, progress)
    return Layer("pcp", list(po.INVARIANTS), list(po.OPERATIONS), dict(po.SEEDED_BUGS), prove)


def _slab() -> Layer:
    from . import slab_obligations as so

    def prove(invariants, operations, seed_bug, timeout_ms, progress):
        return so.prove_slab(invariants, operations, seed_bug, timeout_ms, progress)
    return Layer("slab", list(so.INVARIANTS), list(so.OPERATIONS), dict(so.SEEDED_BUGS), prove)


def _vmalloc() -> Layer:
    from . import vmalloc_obligations as vo

    def prove(invariants, operations, seed_bug, timeout_ms, progress):
        return vo.prove_vmalloc(invariants, operations, seed_bug, timeout_ms, progress)
    return Layer("vmalloc", list(vo.INVARIANTS), list(vo.OPERATIONS), dict(vo.SEEDED_BUGS),
                 prove)


LAYER_NAMES = ("buddy", "pcp", "slab", "vmalloc")


def layers() -> dict[str, Layer]:
    return {"buddy": _buddy(), "pcp": _pcp(), "slab": _slab(), "vmalloc": _vmalloc()}


def prove_layers(names=None, invariants=None, operations=None, seed_bug=None,
                 timeout_ms: int = 30000, progress=None) -> list[Row]:
    """The obligations of the named layers (all by default), restricted to the given
    invariants/operations where a layer has them; with `seed_bug`, only the layer the
    bug belongs to, proved against that broken encoding."""
    rows: list[Row] = []
    for layer in layers().values():
        if names and layer.name not in names:
            continue
        if seed_bug and seed_bug not in layer.seeded_bugs:
            continue
        invs = [i for i in invariants if i in layer.invariants] if invariants else None
        ops = [o for o in operations if o in layer.operations] if operations else None
        if (invariants and not invs) or (operations and not ops):
            continue

        def tagged(row, layer=layer):
            row.layer = layer.name
            if progress is not None:
                progress(row)
        for row in layer.prove(invs, ops, seed_bug, timeout_ms, tagged):
            row.layer = layer.name
            rows.append(row)
    return rows
