"""The stateful campaign must fail on a broken model: seeded bugs, one per rule class.

Each bug is patched into the model's buddy code; the campaign (with a fixed seed and
a modest budget) must report a failure.
"""

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

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
    with pytest.raises(Exception):
        run_state_machine_as_test(
            Campaign, settings=settings(max_examples=200, stateful_step_count=30,
                                        deadline=None, database=None, derandomize=True,
                                        phases=[Phase.explicit, Phase.generate]))


def test_campaign_passes_on_the_real_model():
    run_state_machine_as_test(
        Campaign, settings=settings(max_examples=30, stateful_step_count=30, deadline=None,
                                    database=None, derandomize=True))
