"""The executable model: plain Python, standard library only.

One module per kernel subsystem: `mem_map` (struct page), `addr` (translations),
`gfp`, `page_alloc` (the buddy allocator), `boot` (machine set-up), and the layers
built on them. The model never imports the checkers.
"""

from .boot import Machine, MachineConfig, boot
from .errors import ConfigError, KernelBug
from .mem_map import MemMap, Page
from .profiles import PROFILES, Profile, get_profile

__all__ = ["Machine", "MachineConfig", "boot", "ConfigError", "KernelBug", "MemMap", "Page",
           "PROFILES", "Profile", "get_profile"]
