"""Rules over the page allocator API, valid and invalid calls."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, consumes, precondition, rule

from kmemspec.model import page_alloc as pa
from kmemspec.model.addr import page_address
from kmemspec.model.mem_map import PG_reserved, PG_slab
from kmemspec.model.gfp import (GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, __GFP_DMA,
                                __GFP_HIGHMEM, format_gfp)

from .oracle import linux_choice, zonelist

# Python mangles `__name` inside a class body, so the rules call these aliases.
free_pages_page = pa.__free_pages
get_free_pages_addr = pa.__get_free_pages

# both zone bits together: 2.6.12 build_zonelists gives __GFP_DMA the win
GFPS = st.sampled_from([GFP_KERNEL, GFP_HIGHUSER, GFP_DMA, GFP_ATOMIC,
                        GFP_KERNEL | __GFP_DMA | __GFP_HIGHMEM])


class BuddyRules:
    blocks = Bundle("blocks")

    @rule(target=blocks, gfp=GFPS, order=st.integers(0, 11))
    def alloc_pages(self, gfp, order):
        expected = linux_choice(self.machine, gfp, order)
        page = pa.alloc_pages(self.machine, gfp, order)
        self.call({"op": "alloc_pages", "gfp": format_gfp(gfp), "order": order})
        got = None if page is None else page.pfn
        assert got == expected, f"alloc_pages gave {got}, the Linux policy gives {expected}"
        if page is None:
            return None
        zone = self.machine.zone_of(page.pfn)
        assert zone in zonelist(self.machine, gfp), "page from a zone gfp forbids"
        return (page, order)

    @rule(block=consumes(blocks))
    def free_pages(self, block):
        if block is None:
            return
        page, order = block
        self.call({"op": "__free_pages", "page": page.pfn, "order": order})
        free_pages_page(self.machine, page, order)

    @rule(block=consumes(blocks))
    def double_free(self, block):
        if block is None:
            return
        page, order = block
        free_pages_page(self.machine, page, order)
        self.call({"op": "__free_pages", "page": page.pfn, "order": order})
        self.expect_misuse({"double_free"}, free_pages_page, page, order)

    @rule(block=blocks, delta=st.sampled_from([-2, -1, 1, 2]))
    def free_with_wrong_order(self, block, delta):
        if block is None:
            return
        page, order = block
        wrong = order + delta
        self.call({"op": "__free_pages", "page": page.pfn, "order": wrong, "expect": "error"})
        self.expect_misuse({"wrong_order", "misaligned_free", "bad_order"},
                           free_pages_page, page, wrong)

    @rule(data=st.data())
    def free_a_frame_nobody_owns(self, data):
        machine = self.machine
        pfn = data.draw(st.integers(0, machine.nr_pages - 1))
        if pfn in machine.page_owner:
            return
        found = pa.find_block(machine, pfn)
        if machine.mem_map.flags[pfn] & PG_reserved:
            rules = {"free_reserved"}
        elif machine.mem_map.flags[pfn] & PG_slab:
            rules = {"free_slab_page"}
        elif found is None:
            rules = {"not_allocated"}
        elif found[0] == "free":
            rules = {"double_free", "misaligned_free"}
        else:
            rules = {"not_block_head", "misaligned_free"}
        self.call({"op": "__free_pages", "page": pfn, "order": 0, "expect": "error"})
        self.expect_misuse(rules, free_pages_page, machine.mem_map + pfn, 0)

    @rule(block=blocks)
    def extra_reference_then_put(self, block):
        if block is None:
            return
        page, order = block
        pa.get_page(self.machine, page)
        free_pages_page(self.machine, page, order)     # drops the extra reference only
        assert page.pfn in self.machine.page_owner and self.machine.mem_map.count[page.pfn] == 1

    @rule(block=consumes(blocks))
    def free_by_address(self, block):
        if block is None:
            return
        page, order = block
        addr = page_address(self.machine, page)
        if addr is None:      # highmem: no permanent address, free by page
            free_pages_page(self.machine, page, order)
            return
        self.call({"op": "free_pages", "addr": addr, "order": order})
        pa.free_pages(self.machine, addr, order)

    @rule(order=st.sampled_from([-1, -5]), gfp=GFPS)
    def bad_order(self, order, gfp):
        self.expect_misuse({"bad_order"}, pa.alloc_pages, gfp, order)

    @rule(gfp=st.sampled_from([0x10000, -1, 0x40000 | GFP_KERNEL]))
    def bad_gfp(self, gfp):
        self.expect_misuse({"bad_gfp"}, pa.alloc_pages, gfp, 0)

    @precondition(lambda self: self.machine is not None)
    @rule()
    def get_zeroed_page_highmem_is_a_bug(self):
        # 2.6.12: only get_zeroed_page has BUG_ON(gfp_mask & __GFP_HIGHMEM)
        self.expect_misuse({"highmem_get_free_pages"}, pa.get_zeroed_page, GFP_HIGHUSER)
