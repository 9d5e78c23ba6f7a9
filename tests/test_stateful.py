"""The whole-model stateful campaign: every layer's rules, all invariants every step."""

from kms_rules.base import ModelMachine
from kms_rules.buddy import BuddyRules


class WholeModelMachine(BuddyRules, ModelMachine):
    pass


TestWholeModel = WholeModelMachine.TestCase
