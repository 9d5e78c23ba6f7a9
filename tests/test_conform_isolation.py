"""Crashes and hangs of an implementation are findings, not checker failures."""

import os
import signal
import time

from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.conform.catalogue import ReferenceBuddy
from kmemspec.conform.isolate import AdapterCrashed, AdapterHung, IsolatedDriver
from kmemspec.conform.stateful import check_conformance


class Crashes(ReferenceBuddy):
    def alloc_pages(self, order):
        if order == 2:
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().alloc_pages(order)


class Hangs(ReferenceBuddy):
    def free_pages(self, pfn, order):
        while True:
            time.sleep(0.01)


def test_crash_is_reported_with_its_signal():
    report = check_conformance(Crashes, max_examples=50, timeout=1.0, name="crashes")
    assert report is not None
    assert "crashed (signal 11, SIGSEGV)" in report.divergence.reason
    assert report.nr_calls <= 3


def test_hang_is_reported_and_the_child_killed():
    report = check_conformance(Hangs, max_examples=10, timeout=0.2, name="hangs")
    assert report is not None
    assert "hung (> 0.2 s)" in report.divergence.reason


def test_driver_restarts_after_a_crash():
    driver = IsolatedDriver(Crashes, timeout=1.0)
    try:
        driver.reset()
        driver.call("init", 16, 11)
        try:
            driver.call("alloc_pages", 2)
        except AdapterCrashed as exc:
            assert exc.exitcode == -signal.SIGSEGV
        else:
            raise AssertionError("no crash")
        driver.reset()
        driver.call("init", 16, 11)
        assert driver.call("alloc_pages", 0) == 0
    finally:
        driver.close()
    assert AdapterHung(1.5).args[0] == "hung (> 1.5 s)"


def test_cli_exit_codes(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(main, ["conform", "kmemspec.conform.catalogue:reference",
                              "--examples", "20", "--out", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(main, ["conform", "kmemspec.conform.catalogue:no_coalescing",
                               "--examples", "50", "--out", str(tmp_path), "--json"])
    assert bad.exit_code == 1, bad.output
    assert '"result": "diverges"' in bad.output
    assert any(p.suffix == ".svg" for p in tmp_path.iterdir())
    assert runner.invoke(main, ["conform", "no.such.module:f"]).exit_code == 2
    assert runner.invoke(main, ["conform", str(tmp_path / "missing.so")]).exit_code == 2
    assert runner.invoke(main, ["conform", "kmemspec.conform.catalogue"]).exit_code == 2
