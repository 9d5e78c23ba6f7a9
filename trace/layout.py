"""What the trace checker must know of the traced kernel's address layout, in one place:
pointer width, page size, where kernel space begins, and where the direct map may be.

A trace's format detection (other kernel versions, 32-bit kernels) plugs in here by
building another AddressLayout; the checker reads nothing of the layout elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from kmemspec.model.profiles import Profile

# Linux 6.x Documentation/arch/x86/x86_64/mm.rst: with 5-level paging kernel space
# begins at ff00000000000000 (the direct map at ff11000000000000); with 4-level at
# ffff800000000000 (the direct map at ffff888000000000). The lower bound serves both:
# no kernel pointer lies below it, and a hashed %p (options/hash-ptr: a 32-bit hash,
# lib/vsprintf.c: ptr_to_id) always does.
KERNEL_SPACE_X86_64 = 0xFF00_0000_0000_0000
# Linux 6.x arch/x86/mm/kaslr.c: kernel_randomize_memory moves the direct map by a
# multiple of PUD_SIZE (1 GiB).
KASLR_ALIGN_BYTES_X86_64 = 1 << 30


@dataclass(frozen=True)
class AddressLayout:
    pointer_bits: int
    page_shift: int
    kernel_space: int           # the lowest kernel address
    page_offset: int            # the direct map's base without KASLR (a first guess)
    kaslr_align: int            # the direct map base is a multiple of this (bytes)
    direct_map_fixed: bool = False   # page_offset is the base (no KASLR moves it)

    @property
    def page_size(self) -> int:
        return 1 << self.page_shift

    @property
    def kaslr_align_pages(self) -> int:
        return self.kaslr_align >> self.page_shift

    def is_kernel_pointer(self, a: int) -> bool:
        return self.kernel_space <= a < 1 << self.pointer_bits


def layout_of(profile: Profile) -> AddressLayout:
    """The layout of the kernels a profile describes (x86_64, 4- or 5-level; or i386)."""
    if profile.VIRT_BITS == 32:
        # i386: %p prints 8 hex digits; kernel space begins at PAGE_OFFSET (the direct
        # map, then vmalloc, pkmap and fixmap above it); the direct map is not moved by
        # KASLR (arch/x86/Kconfig: RANDOMIZE_MEMORY is X86_64 only), so learning it
        # can only confirm PAGE_OFFSET; a VMSPLIT other than 3G is still 1 GiB aligned.
        return AddressLayout(pointer_bits=32, page_shift=profile.PAGE_SHIFT,
                             kernel_space=profile.PAGE_OFFSET,
                             page_offset=profile.PAGE_OFFSET,
                             kaslr_align=KASLR_ALIGN_BYTES_X86_64,
                             direct_map_fixed=True)
    return AddressLayout(pointer_bits=64, page_shift=profile.PAGE_SHIFT,
                         kernel_space=KERNEL_SPACE_X86_64, page_offset=profile.PAGE_OFFSET,
                         kaslr_align=KASLR_ALIGN_BYTES_X86_64)
