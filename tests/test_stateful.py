"""The whole-model stateful campaign: every layer's rules, all invariants every step."""

from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules


class WholeModelMachine(BuddyRules, ModelMachine):
    pass


TestWholeModel = WholeModelMachine.TestCase
