"""Hypothesis profiles: "ci" (default, fast) and "thorough" (on demand).

Select with HYPOTHESIS_PROFILE=thorough or pytest --hypothesis-profile=thorough.
"""

import os

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
                "test_prove_cli")


def pytest_collection_modifyitems(session, config, items):
    def slow(item):
        name = item.path.name
        return any(part in name for part in SLOW_MODULES)
    items[:] = [i for i in items if not slow(i)] + [i for i in items if slow(i)]
