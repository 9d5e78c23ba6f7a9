"""The reusable machine as a user would use it: a few lines per implementation."""

import subprocess
import sys
import textwrap

from hypothesis import HealthCheck, settings

from kmemspec.conform.catalogue import ReferenceBuddy
from kmemspec.conform.pytest_plugin import kmemspec_conform  # noqa: F401 (fixture)
from kmemspec.conform.stateful import PageAllocatorMachine


class ReferenceBuddyMachine(PageAllocatorMachine):
    factory = ReferenceBuddy
    mode = "strict"
    isolate = False


ReferenceBuddyMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow])
TestReferenceBuddy = ReferenceBuddyMachine.TestCase


def test_fixture_passes_a_correct_allocator(kmemspec_conform):
    kmemspec_conform(ReferenceBuddy, mode="refine", examples=25, isolate=False)


def test_fixture_fails_with_a_scenario(tmp_path):
    # a user's test file, run by a separate pytest: the plugin comes from the
    # pytest11 entry point when installed, else from -p
    from importlib.metadata import entry_points
    test = tmp_path / "test_user.py"
    test.write_text(textwrap.dedent("""
        from kmemspec.conform.catalogue import NoCoalescing
        def test_it(kmemspec_conform):
            kmemspec_conform(NoCoalescing, examples=50, isolate=False)
    """))
    registered = any(e.name == "kmemspec" for e in entry_points(group="pytest11"))
    plugin = [] if registered else ["-p", "kmemspec.conform.pytest_plugin"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *plugin, str(test)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DIVERGES from the spec (page part, refine mode)" in proc.stdout
    assert '{"op": "boot"' in proc.stdout
