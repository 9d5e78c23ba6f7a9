"""The stateful campaign must fail on a broken model: seeded bugs, one per rule class.

Each bug is patched into the model's buddy code; the campaign (with a fixed seed and
a modest budget) must report a failure.
"""

import pytest

from campaigns import must_fail, must_pass

from buddy_bugs import BUGS
from kmemspec.model import page_alloc as pa
from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules


class Campaign(BuddyRules, ModelMachine):
    pass


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_campaign_catches(bug, monkeypatch):
    name, broken = BUGS[bug]
    monkeypatch.setattr(pa, name, broken)
    must_fail(Campaign, examples=200, steps=30)


def test_campaign_passes_on_the_real_model():
    must_pass(Campaign, examples=30, steps=30)
