"""The whole-model campaign: every layer's rules on one machine."""

from .base import ModelMachine
from .buddy import BuddyRules


class WholeModelMachine(BuddyRules, ModelMachine):
    """Buddy calls (and every later layer's) interleaved; all invariants every step."""
