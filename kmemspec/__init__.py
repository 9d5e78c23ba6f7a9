"""kmemspec: an executable, formally checked specification of Linux physical memory
management. Public API re-exports; the command line is `kmemspec.cli`.

The re-exports are loaded on first use (PEP 562), so that a command that needs only
part of the package (`kmemspec trace`) does not pay for importing the whole model."""

__version__ = "0.1.0"
__all__ = ["ConfigError", "KernelBug", "Machine", "MachineConfig", "Page", "boot", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        from . import model
        return getattr(model, name)
    raise AttributeError(f"module 'kmemspec' has no attribute {name!r}")
