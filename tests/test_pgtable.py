"""The i386 kernel address space and the two-level page tables as data."""

from kmemspec.model import boot
from kmemspec.model.pgtable import (LAST_PKMAP, PAGE_KERNEL, PKMAP_BASE, VMALLOC_END,
                                    VMALLOC_START, lookup_pte, mk_pte, pgd_index, pte_clear,
                                    pte_index, pte_pfn, pte_present, set_pte, translate)
from kmemspec.spec import check_all

MiB = 1 << 20


def test_seed_machine_layout_by_hand():
    m = boot()     # 896 MiB low + 128 MiB high
    # high_memory = PAGE_OFFSET + 229376 * 4096 = 0xC0000000 + 896 MiB
    assert m.high_memory == 0xF8000000
    # ALIGN(0xF8000000 + 8 MiB, 8 MiB) = 0xF8800000: an 8 MiB gap after low memory
    assert VMALLOC_START(m) == m.vmalloc_start == 0xF8800000
    # (FIXADDR_BOOT_START - 4 KiB * 1025) & PMD_MASK = 0xFF800000; two pages below it
    assert PKMAP_BASE() == m.pkmap_base == 0xFF800000
    assert VMALLOC_END(m) == m.vmalloc_end == 0xFF7FE000
    assert LAST_PKMAP == 1024


def test_small_machine_vmalloc_start():
    m = boot(phys_pages=5000, highmem_pages=0)
    # high_memory = 0xC0000000 + 5000 * 4096 = 0xC1388000 -> ALIGN(+8 MiB, 8 MiB)
    assert m.high_memory == 0xC1388000
    assert m.vmalloc_start == 0xC2000000


def test_pte_encoding_and_split():
    vaddr = 0xF8803123
    assert pgd_index(vaddr) == 0x3E2 and pte_index(vaddr) == 0x003
    pte = mk_pte(0x3FC02, PAGE_KERNEL)
    assert pte == 0x3FC02063 and pte_present(pte) and pte_pfn(pte) == 0x3FC02


def test_direct_map_translates_low_memory_with_large_pages():
    m = boot()
    for vaddr in (0xC0000000, 0xC0001234, 0xD2345678, 0xF7FFFFFF):
        assert translate(m, vaddr) == vaddr - 0xC0000000
    assert translate(m, 0x08048000) is None            # user space: nothing mapped
    assert translate(m, m.vmalloc_start) is None       # the vmalloc range starts empty


def test_set_and_clear_a_pte():
    m = boot()
    vaddr = m.vmalloc_start + 5 * 4096
    set_pte(m, vaddr, mk_pte(0x1234, PAGE_KERNEL))
    assert lookup_pte(m, vaddr) == 0x1234063
    assert translate(m, vaddr + 0x10) == 0x1234010
    pte_clear(m, vaddr)
    assert translate(m, vaddr) is None


def test_x86_64_profile_has_no_modelled_kernel_tables():
    m = boot(profile="linux-6.x-x86_64", phys_pages=4096, highmem_pages=0)
    assert not hasattr(m, "swapper_pg_dir") and not hasattr(m, "vmlist")
    assert not any(check_all(m).values())
