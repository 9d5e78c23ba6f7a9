"""The model's error types.

`KernelBug` is what the kernel reports with bad_page() or BUG(): the caller broke a
rule of the kernel API (double free, wrong order, foreign cache...). It names the rule
and where (pfn or address), and is raised before any state is touched, so the machine
is exactly as it was before the call.

`ConfigError` is bad input to the model itself (a boot configuration that describes no
real machine); it is not a kernel event.
"""

from __future__ import annotations


class KernelBug(Exception):
    """A misuse of the modelled kernel API, like the kernel's bad_page() / BUG()."""

    def __init__(self, rule: str, message: str, *, pfn: int | None = None,
                 addr: int | None = None):
        self.rule = rule
        self.pfn = pfn
        self.addr = addr
        where = []
        if pfn is not None:
            where.append(f"pfn {pfn:#x}")
        if addr is not None:
            where.append(f"address {addr:#x}")
        suffix = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{rule}: {message}{suffix}")

    def to_json(self) -> dict:
        out = {"rule": self.rule, "message": str(self)}
        if self.pfn is not None:
            out["pfn"] = self.pfn
        if self.addr is not None:
            out["addr"] = self.addr
        return out


class ConfigError(ValueError):
    """A boot configuration that describes no machine the profile allows."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")
