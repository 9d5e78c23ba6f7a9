"""The whole-model stateful campaign: every layer's rules, all invariants every step."""

from kmemspec.campaign.whole import WholeModelMachine

TestWholeModel = WholeModelMachine.TestCase
