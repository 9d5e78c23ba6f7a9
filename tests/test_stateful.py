"""The whole-model stateful campaign: every layer's rules, all invariants every step."""

from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules
from kms_rules.slab import SlabRules


class WholeModelMachine(BuddyRules, SlabRules, ModelMachine):
    pass


TestWholeModel = WholeModelMachine.TestCase
