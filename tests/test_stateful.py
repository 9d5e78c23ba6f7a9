"""The whole-model stateful campaign: every layer's rules, all invariants every step."""

from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules
from kms_rules.slab import SlabRules
from kms_rules.vmalloc import KmapRules, VmallocRules


class WholeModelMachine(BuddyRules, SlabRules, VmallocRules, KmapRules, ModelMachine):
    pass


TestWholeModel = WholeModelMachine.TestCase
