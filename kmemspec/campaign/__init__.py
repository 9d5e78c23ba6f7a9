"""Stateful Hypothesis campaigns over the model, one rule mixin per layer.

`ModelMachine` boots a small machine and checks the whole invariant catalogue after
every step; each layer adds a mixin of rules (`BuddyRules`, ...), valid and invalid
calls alike. Every rule `note()`s its call as a scenario line, so a shrunk failure
prints a runnable scenario. `kmemspec verify` and the tests run the same machine.
`pcp.PcpMachine` is the 2.6.12 page-policy campaign (watermarks, per-CPU lists), each
call compared with the independent oracle in `alloc_oracle`.
"""
