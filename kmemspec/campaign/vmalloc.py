"""Rules over vmalloc/vfree/vmalloc_to_page and kmap/kunmap, valid and invalid calls.

vmalloc's descriptors come from kmalloc (model/kmalloc.py, the SLAB layer), which must
be importable when these rules run.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, consumes, precondition, rule

from kmemspec.model import highmem as hm
from kmemspec.model import page_alloc as pa
from kmemspec.model import vmalloc as vm
from kmemspec.model.addr import page_address
from kmemspec.model.gfp import GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, __GFP_HIGHMEM, format_gfp
from kmemspec.model.mem_map import PG_highmem, PG_slab

# Python mangles `__name` inside a class body, so the rules call these aliases.
vmalloc_gfp = vm.__vmalloc
free_page = pa.__free_page
GFP_HIGHMEM_BIT = __GFP_HIGHMEM

VMALLOC_GFPS = st.sampled_from([GFP_KERNEL | __GFP_HIGHMEM, GFP_KERNEL, GFP_DMA])


def linux_vmalloc_addr(machine, size: int) -> int | None:
    """Where 2.6.12 __get_vm_area puts `size` bytes (guard page included): walk the
    address-sorted vmlist from VMALLOC_START and take the first gap that fits; the spec
    adds that the area must end by VMALLOC_END."""
    addr, end = machine.vmalloc_start, machine.vmalloc_end
    for area in machine.vmlist:
        if addr + size <= area.addr:
            break
        addr = max(addr, area.addr + area.size)
    return addr if addr + size <= end else None


def _not_slab_blocks(machine) -> dict[int, int]:
    """Allocated blocks other than slab pages and pte tables (both kept by the kernel
    once made): what a failed vmalloc must give back."""
    flags = machine.mem_map.flags
    tables = set(machine.pte_table_pfns.values())
    return {pfn: o for pfn, o in machine.page_owner.items()
            if not flags[pfn] & PG_slab and pfn not in tables}


class VmallocRules:
    vareas = Bundle("vareas")

    @rule(target=vareas, pages=st.integers(0, 6), less=st.sampled_from([0, 0, 1, 4095]),
          gfp=VMALLOC_GFPS)
    def vmalloc(self, pages, less, gfp):
        machine = self.machine
        page = machine.profile.PAGE_SIZE
        size = max(0, pages * page - less)
        nr = -(-size // page)
        expected = linux_vmalloc_addr(machine, (nr + 1) * page) if nr else None
        before = (list(machine.vmlist_starts), _not_slab_blocks(machine))
        self.call({"op": "__vmalloc", "size": size, "gfp": format_gfp(gfp)})
        addr = vmalloc_gfp(machine, size, gfp)
        if addr is None:
            # NULL: nothing may be kept -- no area, no frame (slab caches may keep
            # their own empty slabs)
            assert (machine.vmlist_starts, _not_slab_blocks(machine)) == before, \
                "a failed vmalloc kept an area or a frame"
            return None
        assert addr == expected, f"vmalloc gave {addr:#x}, first fit gives {expected!r}"
        area = machine.vm_areas[addr]
        assert area.size == (nr + 1) * page and area.nr_pages == nr
        for i, pfn in enumerate(area.pages):
            assert vm.vmalloc_to_pfn(machine, addr + i * page) == pfn
            zone = machine.zone_of(pfn)
            assert gfp & GFP_HIGHMEM_BIT or zone.name != "HighMem"
        assert vm.vmalloc_to_page(machine, addr + nr * page) is None, "guard page mapped"
        return addr

    @rule(addr=consumes(vareas))
    def vfree(self, addr):
        self.call({"op": "vfree", "addr": addr})
        vm.vfree(self.machine, addr)

    @rule(addr=consumes(vareas))
    def vfree_twice(self, addr):
        if addr is None:
            return
        vm.vfree(self.machine, addr)
        self.call({"op": "vfree", "addr": addr, "expect": {"error": "vfree_nonexistent"}})
        self.expect_misuse({"vfree_nonexistent"}, vm.vfree, addr)

    @rule(addr=vareas, offset=st.sampled_from([1, 4096, 4097, -4096]))
    def vfree_not_an_area_start(self, addr, offset):
        if addr is None:
            return
        bad = addr + offset
        self.call({"op": "vfree", "addr": bad, "expect": "error"})
        self.expect_misuse({"vfree_bad_address", "vfree_nonexistent"}, vm.vfree, bad)

    @precondition(lambda self: self.machine is not None)
    @rule(data=st.data())
    def vmalloc_to_page_anywhere(self, data):
        machine = self.machine
        span = machine.vmalloc_end - machine.vmalloc_start
        offset = data.draw(st.integers(0, min(span, 1 << 20) - 1)) & ~0xFFF
        addr = machine.vmalloc_start + offset
        page = vm.vmalloc_to_page(machine, addr)
        area = vm.find_vm_area(machine, addr)
        if area is None or (addr - area.addr) >> 12 >= len(area.pages):
            assert page is None, f"{addr:#x} is in no area's pages but maps {page}"
        else:
            assert page is not None and page.pfn == area.pages[(addr - area.addr) >> 12]

    vmaps = Bundle("vmaps")

    @precondition(lambda self: self.machine is not None)
    @rule(target=vmaps, n=st.integers(1, 3))
    def vmap(self, n):
        """vmap pages of our own (kept allocated until vunmap), then read them back."""
        machine = self.machine
        pages = [pa.alloc_page(machine, GFP_HIGHUSER) for _ in range(n)]
        got = [p for p in pages if p is not None]
        self.call({"op": "vmap", "pages": [p.pfn for p in got]})
        addr = vm.vmap(machine, got)
        if addr is None:
            for page in got:
                free_page(machine, page)
            return None
        for i, page in enumerate(got):
            assert vm.vmalloc_to_pfn(machine, addr + i * 4096) == page.pfn
        return addr, got

    @rule(mapping=consumes(vmaps))
    def vunmap(self, mapping):
        if mapping is None:
            return
        addr, pages = mapping
        # 2.6.12: vfree of a vmap area unmaps it as vunmap does (nr_pages is 0)
        use_vfree = addr % 8192 == 0
        self.call({"op": "vfree" if use_vfree else "vunmap", "addr": addr})
        (vm.vfree if use_vfree else vm.vunmap)(self.machine, addr)
        assert vm.vmalloc_to_page(self.machine, addr) is None
        for page in pages:
            assert page.pfn in self.machine.page_owner
            free_page(self.machine, page)

    @precondition(lambda self: self.machine is not None)
    @rule()
    def vmalloc_too_big_is_null(self):
        self.call({"op": "vmalloc", "size": (self.machine.nr_pages + 1) * 4096})
        before = (list(self.machine.vmlist_starts), dict(self.machine.page_owner))
        assert vm.vmalloc(self.machine, (self.machine.nr_pages + 1) * 4096) is None
        assert vm.vmalloc(self.machine, 0) is None
        assert (self.machine.vmlist_starts, self.machine.page_owner) == before


class KmapRules:
    kpages = Bundle("kpages")

    @precondition(lambda self: self.machine is not None)
    @rule(target=kpages, gfp=st.sampled_from([GFP_HIGHUSER, GFP_HIGHUSER, GFP_KERNEL]))
    def alloc_for_kmap(self, gfp):
        page = pa.alloc_page(self.machine, gfp)
        self.call({"op": "alloc_page", "gfp": format_gfp(gfp)})
        if page is None:
            return None
        self.__dict__.setdefault("kmap_users", {})[page.pfn] = 0
        return page

    @rule(page=kpages)
    def kmap(self, page):
        if page is None:
            return
        machine = self.machine
        self.call({"op": "kmap", "page": page.pfn})
        vaddr = hm.kmap(machine, page)
        self.kmap_users[page.pfn] += 1
        assert page_address(machine, page) == vaddr
        if machine.mem_map.flags[page.pfn] & PG_highmem:
            assert machine.pkmap_base <= vaddr < machine.pkmap_base + (1024 << 12)
            assert vm.vmalloc_to_pfn(machine, vaddr) == page.pfn     # the pkmap pte
        else:
            assert vaddr == machine.profile.PAGE_OFFSET + (page.pfn << 12)

    @rule(page=kpages)
    def kunmap(self, page):
        if page is None:
            return
        self.call({"op": "kunmap", "page": page.pfn})
        if self.kmap_users[page.pfn] == 0 and self.machine.mem_map.flags[page.pfn] & PG_highmem:
            self.expect_misuse({"kunmap_unmapped", "kunmap_unbalanced"}, hm.kunmap, page)
            return
        hm.kunmap(self.machine, page)
        self.kmap_users[page.pfn] = max(0, self.kmap_users[page.pfn] - 1)

    @precondition(lambda self: self.machine is not None
                  and 1 in getattr(self.machine, "pkmap_count", ()))
    @rule()
    def flush_unused_kmaps(self):
        # 2.6.12 flushes only when the slot search wraps (after 1024 new mappings, far
        # beyond a short run); calling it directly (2.6.21 exports it as
        # kmap_flush_unused) lets the campaign reach the flush path.
        hm.flush_all_zero_pkmaps(self.machine)
        assert not any(c == 1 for c in self.machine.pkmap_count)

    @rule(page=kpages)
    def free_while_kmapped(self, page):
        # a highmem page with kmap users must not be freed (spec: free_kmapped)
        if page is None or not (self.kmap_users[page.pfn]
                                and self.machine.mem_map.flags[page.pfn] & PG_highmem):
            return
        self.call({"op": "__free_page", "page": page.pfn})
        self.expect_misuse({"free_kmapped"}, free_page, page)

    @rule(page=consumes(kpages))
    def free_when_unmapped(self, page):
        if page is None:
            return
        while self.kmap_users[page.pfn]:
            hm.kunmap(self.machine, page)
            self.kmap_users[page.pfn] -= 1
        self.call({"op": "__free_page", "page": page.pfn})
        free_page(self.machine, page)
        del self.kmap_users[page.pfn]
