"""Reusable Hypothesis rule sets over the model, one mixin per layer.

`ModelMachine` boots a small machine and checks the whole invariant catalogue after
every step; each layer adds a mixin of rules (`BuddyRules`, ...). Every rule `note()`s
its call as a scenario line, so a shrunk failure prints a runnable scenario.
"""
