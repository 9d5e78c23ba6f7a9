"""The whole-model campaign: every layer's rules on one machine."""

from .base import ModelMachine
from .buddy import BuddyRules
from .slab import SlabRules
from .vmalloc import KmapRules, VmallocRules


class WholeModelMachine(BuddyRules, SlabRules, VmallocRules, KmapRules, ModelMachine):
    """Page, slab, kmalloc, vmalloc and kmap calls interleaved; all invariants every step."""
