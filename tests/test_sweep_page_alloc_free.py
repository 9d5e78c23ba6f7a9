"""The free-path sweep rows (kmemspec/sweeps/page_alloc_free.py): every row holds on
the model, and each group fails when a small bug is put into the function it sweeps
(the mutation driver's kind of change, applied with tests/mutants.py)."""

from __future__ import annotations

import pytest

from kmemspec.model import page_alloc as pa
from kmemspec.model.boot import boot
from kmemspec.model.errors import KernelBug
from kmemspec.sweeps import page_alloc_free as sweep

from mutants import failing, mutate


@pytest.fixture(autouse=True)
def fresh_bases(monkeypatch):
    # the emptied machines are cached per process: build them again under each mutant
    monkeypatch.setattr(sweep, "_BASES", {})


@pytest.mark.parametrize("group", sweep.FACT_GROUPS, ids=lambda g: g.__name__)
def test_rows_hold(group):
    assert failing(group) == []


# (group, function, old source, new source): each mutant must fail a row of the group
MUTANTS = [
    (sweep._merge_facts, "__free_pages_bulk", "and private[buddy] == order",
     "and private[buddy] <= order"),
    (sweep._merge_facts, "__free_pages_bulk", "page_idx &= buddy_idx", "page_idx |= buddy_idx"),
    (sweep._cascade_and_edges_facts, "__free_pages_bulk", "if buddy >= end or",
     "if buddy > end or"),
    (sweep._cascade_and_edges_facts, "__free_pages_bulk", "while order < max_order - 1:",
     "while order < max_order:"),
    (sweep._list_helper_facts, "list_del", "if nxt >= 0:", "if nxt > 0:"),
    (sweep._cascade_and_edges_facts, "__free_pages_bulk", "if nxt >= 0:", "if nxt > 0:"),
    (sweep._cascade_and_edges_facts, "__free_pages_bulk", "if prv >= 0:", "if prv > 0:"),
    (sweep._cascade_and_edges_facts, "__free_pages_bulk", "if head >= 0:", "if head > 0:"),
    (sweep._bulk_facts, "free_pages_bulk", "if (q != pfn + k - i or", "if (q != pfn % k - i or"),
    (sweep._bulk_facts, "free_pages_bulk", "if (q != pfn + k - i or", "if (q != pfn ^ k - i or"),
    (sweep._bulk_facts, "free_pages_bulk", "if (q != pfn + k - i or", "if (q != pfn + k ^ i or"),
    (sweep._bulk_facts, "free_pages_bulk", "or i + 2 * half > n:", "or i ** 2 * half > n:"),
    (sweep._list_helper_facts, "list_del", "if prv >= 0:", "if prv >= 1:"),
    (sweep._list_helper_facts, "list_del", "if nxt >= 0:", "if nxt >= -1:"),
    (sweep._bulk_facts, "_free_consecutive", "and pfn + (2 << order) <= end):",
     "and pfn << (2 << order) <= end):"),
    (sweep._list_helper_facts, "page_is_buddy", "mem_map.count[pfn] == 0",
     "mem_map.count[pfn] <= 0"),
    (sweep._list_helper_facts, "bad_range",
     "pfn >= zone.zone_start_pfn + zone.spanned_pages",
     "pfn > zone.zone_start_pfn + zone.spanned_pages"),
    (sweep._list_helper_facts, "rmv_page_order", "&= ~PG_buddy", "&= PG_buddy"),
    (sweep._pcp_facts, "free_hot_cold_page", "if pcp.count >= pcp.high:",
     "if pcp.count > pcp.high:"),
    (sweep._pcp_facts, "_pcp_free_bulk", "pfn = lst.pop()", "pfn = lst.popleft()"),
    (sweep._pcp_facts, "_pcp_free_bulk", "del pcp_pages[pfn]", "pcp_pages.get(pfn)"),
    (sweep._pcp_facts, "_pcp_refill", "if gfp_mask & __GFP_COLD else 0)",
     "if gfp_mask | __GFP_COLD else 0)"),
    (sweep._pcp_facts, "_pcp_refill", "pcp.list.extend(got)", "pcp.list.extendleft(got)"),
    (sweep._drain_empty_facts, "__drain_pages", "_check_cpu(machine, cpu)", "cpu = cpu"),
    (sweep._bulk_facts, "_free_consecutive", "idx, order = pfn - base, 0",
     "idx, order = pfn + base, 0"),
    (sweep._bulk_facts, "free_pages_bulk", "if count[pfn] > 1:", "if count[pfn] >= 1:"),
    (sweep._compound_facts, "destroy_compound_page", "flags[p] &= ~PG_compound",
     "flags[p] &= PG_compound"),
    (sweep._compound_facts, "_check_compound", "if order == 0 or recorded != order:",
     "if order == 0 and recorded != order:"),
    (sweep._compound_facts, "prep_compound_page", "private[p] = pfn", "private[p] = p"),
    (sweep._find_block_facts, "find_block", "mem_map.private[head] >= order",
     "mem_map.private[head] > order"),
    (sweep._misuse_facts, "put_page", "0 if order is None else order",
     "-1 if order is None else order"),
    (sweep._misuse_facts, "_check_free", "if owned != order:", "if owned > order:"),
    (sweep._misuse_facts, "_pcp_refill", "(1 if gfp_mask & __GFP_COLD else 0)",
     "(0 if gfp_mask & __GFP_COLD else 0)"),
    (sweep._misuse_facts, "_check_not_kmapped",
     "if vaddr is not None and machine.pkmap_count[(vaddr - machine.pkmap_base) >> 12] > 1:",
     "if vaddr is not None and machine.pkmap_count[(vaddr // machine.pkmap_base) >> 12] > 1:"),
    # the model bug this sweep found: a non-int address formatted as hex (ValueError)
    (sweep._misuse_facts, "free_pages", "if type(addr) is int:", "if True:"),
    (sweep._misuse_facts, "get_page", "if pfn not in machine.page_owner:",
     "if pfn in machine.pcp_pages:"),
    (sweep._bulk_misuse_facts, "free_pages_bulk",
     "for pfn in pfns:                                  # CHECK",
     "for pfn in []:                                  # CHECK"),
    (sweep._bulk_misuse_facts, "_free_hot_pages", "if len(set(pfns)) != len(pfns):",
     "if len(set(pfns)) > len(pfns):"),
    (sweep._bulk_misuse_facts, "free_pages_bulk", "if owner.get(pfn, -1) != 0 or",
     "if owner.get(pfn, -1) <= 0 or"),
    (sweep._bulk_misuse_facts, "_free_hot_pages", "if owner.get(pfn, -1) != 0 or",
     "if owner.get(pfn, -1) <= 0 or"),
    (sweep._compound_facts, "__free_pages", "compound = 0 <= pfn", "compound = -1 <= pfn"),
    (sweep._compound_facts, "__free_pages", "if compound and type(order) is int:",
     "if compound:"),
    (sweep._bulk_misuse_facts, "_free_hot_pages", "flags[pfn] & PG_slab or",
     "flags[pfn] ^ PG_slab or"),
    (sweep._misuse_facts, "_free_hot_pages", "where = 2 * cpu", "where = 2 + cpu"),
    (sweep._misuse_facts, "__free_pages", "or type(order) is not int", "or False"),
    (sweep._misuse_facts, "_check_free", 'f"at pfn {where[1]:#x})"', 'f"at pfn {where[ 2]:#x})"'),
    (sweep._compound_facts, "_check_compound", "for p in range(pfn, pfn + (1 << order)):",
     "for p in range(pfn + 1, pfn + (1 << order)):"),
    (sweep._free_pages_addr_facts, "__free_pages", "if mem_map.count[pfn] > 1:",
     "if mem_map.count[pfn] > 2:"),
    (sweep._bulk_misuse_facts, "_free_consecutive",
     "or mem_map.flags[first:end].translate(None, _FREEABLE_FLAGS)", "or False"),
    (sweep._misuse_facts, "free_hot_cold_page", "machine.pcp_pages[pfn] = 2 * cpu + cold",
     "machine.pcp_pages[pfn] = 2 + cpu + cold"),
    (sweep._find_block_facts, "find_block", "if zid == NO_ZONE:", "if zid == NO_ZONE - 1:"),
    (sweep._free_pages_addr_facts, "put_page", "order > 0 and mem_map.count[pfn] <= 1",
     "order > 0 and mem_map.count[pfn] < 1"),
    (sweep._free_pages_addr_facts, "free_pages",
     "__free_pages(machine, virt_to_page(machine, addr), order, cpu)",
     "__free_pages(machine, virt_to_page(machine, addr), 0, cpu)"),
    (sweep._kmap_free_facts, "_check_not_kmapped", ">> 12] > 1:", ">> 12] >= 1:"),
]


@pytest.mark.parametrize("group,name,old,new", MUTANTS,
                         ids=[f"{g.__name__}-{n}-{i}" for i, (g, n, _o, _w) in enumerate(MUTANTS)])
def test_mutant_fails_a_row(monkeypatch, group, name, old, new):
    mutate(monkeypatch, pa, name, old, new)
    assert failing(group), f"{name}: {old!r} -> {new!r} survives {group.__name__}"


@pytest.mark.parametrize("addr", [1.5, "addr", [4096]])
def test_free_pages_of_a_non_integer_is_bad_address(addr):
    """2.6.12 free_pages: BUG_ON(!virt_addr_valid(addr)); before the fix a float or a
    string address raised ValueError while the KernelBug formatted it as hex."""
    m = boot(phys_pages=360, highmem_pages=100, reserved=(), max_dma_pfn=24)
    with pytest.raises(KernelBug) as exc:
        pa.free_pages(m, addr, 0)
    assert exc.value.rule == "bad_address" and exc.value.addr is None


def test_emptied_machines_follow_the_model_functions(monkeypatch):
    """The cached starting machines are built again when a model function is replaced
    (a mutant monkeypatched by a test must not leave its machine to the next test)."""
    full = sweep.emptied("A")
    assert sum(z.free_pages for z in full.zones) == 0
    monkeypatch.setattr(pa, "alloc_pages_bulk", lambda machine, gfp, n, cpu=0: [])
    assert sum(z.free_pages for z in sweep.emptied("A").zones) > 0
    monkeypatch.undo()
    assert sum(z.free_pages for z in sweep.emptied("A").zones) == 0
