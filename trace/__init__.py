"""Checking real kernels' kmem/vmalloc ftrace traces against the spec (spec/trace.md):
the text format (parse), the address layout (layout), the state and rules (check),
the end-of-trace snapshot (snapshot) and recording with tracefs (record).

Layering: kmemspec.model <- kmemspec.spec <- kmemspec.trace <- kmemspec (the CLI);
imports across packages are absolute.
"""
