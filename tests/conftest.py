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

# Under pytest-xdist (pyproject: -n auto) the tests are shared out in units (GroupedLoad
# below): one test each, except the modules that drive Z3, which form two units, and a few
# modules whose module fixture is worth setting up once. How long Z3 takes on a query
# depends on everything the process asked Z3 before (Z3's terms are numbered in creation
# order, and the search follows that numbering): one seeded-bug row took 1 s alone, 5 s
# after its module's earlier rows, and 120 s in a whole run (2026-12-06) where its worker
# had first run a varying set of fast tests. So the two Z3 units are the first units of
# the two workers, each in a fixed order with its Hypothesis tests (random Z3 terms) last;
# the fast tests follow, then the slow modules. That removed the large swings, not all:
# the seeded-bug rows still took 1-61 s each over six whole runs (2026-12-06), and 28 s
# in a run where they take 0.3 s alone. So the seeded-bug and correct-encoding rows of
# test_z3_seeded and test_z3_pcp are proved in a fresh process of their own
# (tests/fresh_z3.py), whose history is the same every run. Two units, not one: a long
# serial chain cannot share an unlucky row's time with the other worker (one unit: a
# whole run of 6 min 39 s in CI, 2026-12-06).
Z3_GROUP_A = ("test_facts", "test_prove_cli", "test_z3_agreement", "test_z3_slab")
Z3_GROUP_B = ("test_verify", "test_z3_lemmas", "test_z3_pcp", "test_z3_seeded",
              "test_z3_vmalloc")
Z3_GROUP = Z3_GROUP_A + Z3_GROUP_B
WHOLE_MODULES = ("test_view_browser.py", "test_conform_c.py", "test_conform_examples.py")


def _named(name, parts):
    return any(part in name for part in parts)


def _in(item, parts):
    return _named(item.path.name, parts)


def pytest_collection_modifyitems(session, config, items):
    if not hasattr(config, "workerinput"):        # one process: fast, then slow
        items[:] = ([i for i in items if not _in(i, SLOW_MODULES)]
                    + [i for i in items if _in(i, SLOW_MODULES)])
        return
    def unit(group):     # file order within, Hypothesis tests (random Z3 terms) last
        return sorted((i for i in items if _in(i, group)),
                      key=lambda i: (i.get_closest_marker("hypothesis") is not None,
                                     next(n for n, m in enumerate(group) if m in i.path.name)))
    z3_items = unit(Z3_GROUP_A) + unit(Z3_GROUP_B)
    items[:] = (z3_items
                + [i for i in items if not _in(i, Z3_GROUP + SLOW_MODULES)]
                + [i for i in items if _in(i, SLOW_MODULES) and not _in(i, Z3_GROUP)])


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduler for whole units of tests, in the order collected (above)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupedLoad(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::", 1)[0]
            name = module.rsplit("/", 1)[-1]
            if _named(name, Z3_GROUP_A):
                return "z3-a"
            if _named(name, Z3_GROUP_B):
                return "z3-b"
            return module if name in WHOLE_MODULES else nodeid

    if config.getoption("dist") != "load":
        return None
    config.option.loadscopereorder = False       # units in collection order
    return GroupedLoad(config, log)


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
