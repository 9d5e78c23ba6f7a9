"""Hypothesis profiles: "ci" (default, fast) and "thorough" (on demand).

Select with HYPOTHESIS_PROFILE=thorough or pytest --hypothesis-profile=thorough.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=40, stateful_step_count=25, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=1000, stateful_step_count=80, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Slow modules run last (with -x, a fast failure is reported before minutes of proofs
# and campaigns); the rest keep their order.
SLOW_MODULES = ("test_z3_", "test_crosshair", "test_conform_stateful", "test_view_browser",
                "test_trace_kernels", "_catches_bugs", "test_verify", "test_explore",
                "test_prove_cli", "test_trace_watch", "test_pcp_stateful")

# Under pytest-xdist (pyproject: -n auto --dist loadgroup) the modules that drive Z3 run
# as two groups, each in one worker in a fixed order. How long Z3 takes on a query
# depends on what the process asked Z3 before (one seeded-bug row: 1.2 s alone, 206 s
# in a worker that had run other Z3 modules before it in an order set by timing), so
# what precedes each group must not depend on which worker is free: group A runs first
# in its worker; group B after the fast modules (which do not use Z3), then the other
# slow modules. A fast failure under -x is still reported early (from the other
# worker), and group A, the longest chain, starts at once.
Z3_GROUP_A = ("test_facts", "test_prove_cli", "test_z3_agreement", "test_z3_slab")
Z3_GROUP_B = ("test_verify", "test_z3_lemmas", "test_z3_pcp", "test_z3_seeded",
              "test_z3_vmalloc")


def _in(item, parts):
    return any(part in item.path.name for part in parts)


def _module_fixture(item) -> bool:
    """Whether the item uses a fixture of module (or class) scope: such modules stay in
    one worker, so their fixture (a browser, a compiled library, a booted machine) is
    set up once."""
    info = getattr(item, "_fixtureinfo", None)
    for name in item.fixturenames:
        defs = info.name2fixturedefs.get(name) if info is not None else None
        if defs and defs[-1].scope in ("module", "class", "package"):
            return True
    return False


@pytest.hookimpl(tryfirst=True)       # the xdist_group marks before xdist reads them
def pytest_collection_modifyitems(session, config, items):
    if not hasattr(config, "workerinput"):        # one process: fast, then slow
        items[:] = ([i for i in items if not _in(i, SLOW_MODULES)]
                    + [i for i in items if _in(i, SLOW_MODULES)])
        return
    for item in items:
        if _in(item, Z3_GROUP_A):
            item.add_marker(pytest.mark.xdist_group("z3-a"))
        elif _in(item, Z3_GROUP_B):
            item.add_marker(pytest.mark.xdist_group("z3-b"))
        elif _module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    z3 = Z3_GROUP_A + Z3_GROUP_B
    items[:] = ([i for i in items if _in(i, Z3_GROUP_A)]
                + [i for i in items if not _in(i, z3 + SLOW_MODULES)]
                + [i for i in items if _in(i, Z3_GROUP_B)]
                + [i for i in items if _in(i, SLOW_MODULES) and not _in(i, z3)])


def pytest_configure(config):
    """Workers start with PYTHONHASHSEED=0 (unless it is set), so that whatever the
    Z3 encodings build by iterating over sets of names comes out the same in every
    run (one process run by hand keeps Python's random hash seed)."""
    if config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput"):
        os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_sessionstart(session):
    """Under pytest-xdist, the controller compiles the numba trace engine into numba's
    on-disk cache before the workers start (a cold cache costs about 24 s of CPU; each
    worker would otherwise compile it again); on a warm cache this loads it (~1 s)."""
    config = session.config
    if hasattr(config, "workerinput") or config.getoption("dist", "no") == "no":
        return
    import io
    from kmemspec.trace.check import check_stream, compiled_available
    if compiled_available():
        check_stream(io.StringIO(
            "x-1 [000] ..... 1.0: kmalloc: call_site=f ptr=ffff888000001000 bytes_req=8 "
            "bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false\n"), engine="compiled")
