"""Prove a list of obligations in one fresh process.

How much work Z3 spends on a query depends on everything the process asked Z3 before
(its terms are numbered in creation order, and the search follows that numbering). In a
pytest worker that history is whatever the worker ran first, so the same seeded-bug row
took 0.3 s alone and 28 s in a whole run (wrong_buddy_index, 2026-12-06). A spawned
process that proves a fixed list in a fixed order, with PYTHONHASHSEED=0, has the same
history every run (under `pytest -n0` too), so the rows take the same time.
"""

from __future__ import annotations

import multiprocessing
import os

# (layer of the prover, seeded bug or None, layer of the bug, invariant, operation)
Job = tuple[str, "str | None", str, str, str]


def prove_in_fresh_process(jobs: list[Job], timeout_ms: int) -> dict[tuple, object]:
    """{(bug, invariant, operation): obligations.Row} for every job, proved in order in
    one spawned process."""
    saved = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = "0"          # the spawned child starts with it
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            rows = pool.apply(_prove, (jobs, timeout_ms))
    finally:
        if saved is None:
            del os.environ["PYTHONHASHSEED"]
        else:
            os.environ["PYTHONHASHSEED"] = saved
    return {(bug, inv, op): row for (_, bug, _, inv, op), row in zip(jobs, rows)}


def _prove(jobs: list[Job], timeout_ms: int) -> list:
    from kmemspec.proofs import pcp_obligations as po
    from kmemspec.proofs.obligations import Prover
    from kmemspec.spec import z3_buddy as zb
    from kmemspec.spec import z3_pcp as zp

    rows = []
    for layer, bug, bug_layer, invariant, operation in jobs:
        if layer == "buddy":
            prover = Prover(enc=zb.Encoding.seeded(bug) if bug else zb.Encoding(),
                            timeout_ms=timeout_ms)
        else:
            prover = po.PcpProver(enc=zp.seeded(bug) if bug and bug_layer == "pcp"
                                  else zp.PcpEncoding(), timeout_ms=timeout_ms)
            if bug and bug_layer == "buddy":
                prover.enc = zb.Encoding.seeded(bug)
        rows.append(prover.prove(invariant, operation))
    return rows
