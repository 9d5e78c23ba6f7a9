"""kmemspec: an executable, formally checked specification of Linux physical memory
management. Public API re-exports; the command line is `kmemspec.cli`."""

from .model import ConfigError, KernelBug, Machine, MachineConfig, Page, boot

__version__ = "0.1.0"
__all__ = ["ConfigError", "KernelBug", "Machine", "MachineConfig", "Page", "boot", "__version__"]
