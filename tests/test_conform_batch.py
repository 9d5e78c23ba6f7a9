"""The page part's search sends a whole call sequence to the child in one message
(issue 18, speed): crashes, hangs and divergences found that way are still pinned to
their call, reproduce alone, and the sequences have the asked number of calls."""

import os
import signal
import time

from kmemspec.conform.catalogue import ReferenceBuddy
from kmemspec.conform.check import PageChecker, drive_bytes
from kmemspec.conform.isolate import InProcessDriver
from kmemspec.conform.stateful import check_conformance


class _ThreeOrderOne(ReferenceBuddy):
    """Misbehaves once three order-1 blocks are live at once: the fixed prologue (one
    block of each order) never gets there, only the random search does."""

    def init(self, nr_pages, max_order):
        super().init(nr_pages, max_order)
        self.order1 = 0

    def alloc_pages(self, order):
        pfn = super().alloc_pages(order)
        if order == 1 and pfn is not None:
            self.order1 += 1
            if self.order1 == 3:
                self.misbehave()
        return pfn

    def free_pages(self, pfn, order):
        if order == 1:
            self.order1 -= 1
        super().free_pages(pfn, order)


class CrashesLate(_ThreeOrderOne):
    def misbehave(self):
        os.kill(os.getpid(), signal.SIGSEGV)


class HangsLate(_ThreeOrderOne):
    def misbehave(self):
        while True:
            time.sleep(0.01)


def test_a_crash_inside_a_batch_is_pinned_to_its_call():
    report = check_conformance(CrashesLate, max_examples=100, timeout=1.0, name="late",
                               step_count=50)
    assert report is not None
    assert "crashed (signal 11, SIGSEGV)" in report.divergence.reason
    # init and the three order-1 allocations, after shrinking
    assert report.nr_calls == 4, report.text()
    assert report.reproduced_alone is True


def test_a_hang_inside_a_batch_is_pinned_to_its_call():
    report = check_conformance(HangsLate, max_examples=100, timeout=0.3, name="late",
                               step_count=50)
    assert report is not None and "hung (> 0.3 s)" in report.divergence.reason
    assert report.divergence.op == "alloc_pages"


def test_sequences_have_the_asked_number_of_calls():
    stats = {}
    assert check_conformance(ReferenceBuddy, max_examples=40, step_count=30,
                             stats=stats, name="reference") is None
    # init plus one call per step, in each of the sequences Hypothesis ran
    assert stats["sequences"] >= 40
    assert stats["calls"] == stats["sequences"] * 31


def test_drive_bytes_decodes_as_the_rules_do():
    driver = InProcessDriver(ReferenceBuddy)
    checker = PageChecker(driver, "refine")
    # alloc order 2; alloc order 12 % 12 = 0... (max_order 11: orders 0..11); a free of
    # the block chosen by 1 % 2 among the live ones (the second, order 0); alloc 11 (NULL)
    assert drive_bytes(checker, 16, bytes([0, 2, 7, 12, 200, 1, 0, 11])) is None
    ops = [(c["op"], c.get("order")) for c in checker.calls]
    assert ops == [("init", None), ("alloc_pages", 2), ("alloc_pages", 0),
                   ("free_pages", 0), ("alloc_pages", 11)]
