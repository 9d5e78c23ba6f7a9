"""The slab creation sweep (kmemspec/sweeps/slab_create.py): every row holds on the
model, each group is collected into the facts method, and each group fails on mutants
of the functions it sweeps (the mutation driver's kind of change, applied with
tests/mutants.py)."""

from __future__ import annotations

import importlib

import pytest

from kmemspec import facts
from kmemspec.model import slab
from kmemspec.sweeps import slab_create as sc
from mutants import failing, mutate

boot_mod = importlib.import_module("kmemspec.model.boot")


def test_every_row_holds_and_is_collected():
    for group in sc.FACT_GROUPS:
        assert group in facts.FACT_GROUPS, group.__name__
        assert failing(group) == [], group.__name__


def test_independent_geometry_by_hand():
    # spec/slab.md worked example (2.6.12 kmem_cache_create on 16 MiB): 1100 bytes,
    # order 0, 3 objects, on-slab management of 32 bytes, left_over 764, 5 colours
    g = sc.k_geo(1100, 0, 0, line=128, offslab_limit=116, break_order=0)
    assert (g["gfporder"], g["num"], g["slab_size"], g["left_over"], g["colour"],
            g["off_slab"]) == (0, 3, 32, 764, 5, False)
    # the same cache on the 1 GiB seed machine: order 1, 7 objects, 40 B, 452, 3
    g = sc.k_geo(1100, 0, 0, line=128, offslab_limit=116, break_order=1)
    assert (g["gfporder"], g["num"], g["slab_size"], g["left_over"], g["colour"]) == \
        (1, 7, 40, 452, 3)
    # cache_cache: 256-byte objects, 15 a page, 128 left over (spec/slab.md Boot)
    assert sc.k_estimate(0, 256, 128, False) == (15, 128)
    # 6.1 /proc/slabinfo on 8 CPUs: kmalloc-256 order 1, kmalloc-512 order 2, -1k 3
    assert [sc.k_slub_order(s) for s in (192, 256, 512, 1024, 8192)] == [0, 1, 2, 3, 3]


MUTANTS = [
    # (group, function, old, new) -- each must make its group fail
    (sc._create_accept_facts, "kmem_cache_create", "profile.PAGE_SIZE << profile.top_order",
     "profile.PAGE_SIZE | profile.top_order"),                      # fourth sample #16
    (sc._create_misuse_facts, "kmem_cache_create", "(align & (align - 1))",
     "(align & (align % 1))"),
    (sc._create_misuse_facts, "kmem_cache_create", "flags & ~CREATE_MASK",
     "flags & CREATE_MASK"),
    (sc._create_accept_facts, "_new_cache", "GFP_DMA if flags & SLAB_CACHE_DMA else 0",
     "GFP_DMA if flags | SLAB_CACHE_DMA else 0"),
    (sc._create_accept_facts, "kmem_cache_create", "or size > max_size", "or size >= max_size"),
    (sc._create_accept_facts, "kmem_cache_create", "state.cache_chain.remove(cachep)",
     "pass"),
    (sc._geometry_sweep_facts, "cache_geometry", "off_slab = size >= page_size >> 3",
     "off_slab = size > page_size >> 3"),
    (sc._geometry_sweep_facts, "cache_geometry", "if left_over * 8 <= page_size << gfporder",
     "if left_over * 8 < page_size << gfporder"),
    (sc._helpers_facts, "cache_estimate", "(slab_bytes - struct_slab) // (size + bufctl)",
     "(slab_bytes - struct_slab) - (size + bufctl)"),
    (sc._helpers_facts, "get_order", "size = (size - 1) >> page_shift",
     "size = (size - 0) >> page_shift"),
    (sc._init_facts, "kmem_cache_init",
     "ALIGN(num * profile.BUFCTL_SIZE + profile.STRUCT_SLAB_SIZE, line)",
     "ALIGN(num * profile.BUFCTL_SIZE - profile.STRUCT_SLAB_SIZE, line)"),  # fourth #14
    (sc._init_facts, "kmem_cache_init", "machine.nr_pages > (32 << 20)",
     "machine.nr_pages >= (32 << 20)"),
    (sc._init_facts, "kmem_cache_init", "-(-(len(state.cache_chain) - 1) // cc.num)",
     "-(-(len(state.cache_chain) - 1) >> cc.num)"),
    (sc._bootstrap_facts, "_bootstrap_undo", "range(pfn, pfn + (1 << cachep.gfporder))",
     "range(pfn, pfn & (1 << cachep.gfporder))"),
    (sc._bootstrap_facts, "_bootstrap", "(1 + c) * cachep.batchcount",
     "(2 + c) * cachep.batchcount"),
    (sc._create_null_facts, "kmem_cache_create", 'if not geo["num"]:',
     'if geo["num"] < 0:'),
    (sc._grow_facts, "cache_grow", "if cachep.colour_next >= cachep.colour:",
     "if cachep.colour_next > cachep.colour:"),
    (sc._grow_facts, "_list_move", "slab.prev = -1\n        slab.next = lst.head",
     "slab.prev = -1\n        slab.next = lst.tail"),
    (sc._grow_facts, "slab_destroy", "if slab.mgmt is not None:", "if slab.mgmt is None:"),
    (sc._destroy_facts, "kmem_cache_destroy",
     "state.cache_chain.insert(0, cachep)\n        return 1",
     "state.cache_chain.insert(0, cachep)\n        return 0"),
    (sc._lookup_facts, "kmem_find_general_cachep", "if size <= cs_size:",
     "if size < cs_size:"),
    (sc._slabinfo_facts, "slabinfo", "c.slabs_full.nr * c.num", "c.slabs_full.nr // c.num"),
]


@pytest.mark.parametrize("group,name,old,new", MUTANTS,
                         ids=[f"{m[0].__name__}-{m[1]}-{i}" for i, m in enumerate(MUTANTS)])
def test_group_fails_on_mutant(monkeypatch, group, name, old, new):
    fn = mutate(monkeypatch, slab, name, old, new)
    if name == "kmem_cache_init":
        # boot() holds its own reference (from .slab import kmem_cache_init)
        monkeypatch.setattr(boot_mod, "kmem_cache_init", fn)
    assert failing(group)


ROW_NO_DESCRIPTOR = "kmem_cache_create NULL: no descriptor"
ROW_ARRAYS_FAIL = "kmem_cache_create NULL after the descriptor"
ROW_NUM0 = "kmem_cache_create num 0 (\"couldn't create cache\")"
ROW_NUM0_CC = "kmem_cache_create num 0: the descriptor back"
GROW_OLD_ORDER = (
    "addr = _cache_alloc(machine, state.cache_cache, GFP_KERNEL, cpu)\n"
    "    if addr is None:\n        return None\n"
    "    geo = _geometry(machine, size, align, flags)\n    if not geo[\"num\"]:")
NULL_MUTANTS = [
    # (row, function, old, new) -- kmem_cache_create's NULL paths (issue 17): each
    # must make its own row of _create_null_facts fail
    (ROW_NO_DESCRIPTOR, "kmem_cache_create",             # a cache instead of NULL
     "if addr is None:\n        return None",
     "if addr is None:\n        return state.cache_cache"),
    (ROW_NO_DESCRIPTOR, "cache_grow",                    # the colour not taken on failure
     "if cachep.colour_next >= cachep.colour:", "if cachep.colour_next > cachep.colour:"),
    (ROW_ARRAYS_FAIL, "kmem_cache_create",               # descriptor not freed back
     "_cache_free(machine, state.cache_cache, addr, cpu)\n            cachep.dead = True",
     "cachep.dead = True"),
    (ROW_NUM0, "kmem_cache_create",                      # a cache of 0 objects
     'if not geo["num"]:', 'if geo["num"] < 0:'),
    (ROW_NUM0, "kmem_cache_create",                      # listed before the failing step
     'if not geo["num"]:\n',
     'if not geo["num"]:\n        _create(machine, name, geo, flags, ctor)\n'),
    (ROW_NUM0_CC, "kmem_cache_create",                   # descriptor not freed back
     "_cache_free(machine, state.cache_cache, addr, cpu)\n        return None",
     "return None"),
    (ROW_NUM0_CC, "kmem_cache_create",                   # the model before issue 17: the
     GROW_OLD_ORDER,                                     # geometry checked first
     "geo = _geometry(machine, size, align, flags)\n    if not geo[\"num\"]:\n"
     "        return None\n"
     "    addr = _cache_alloc(machine, state.cache_cache, GFP_KERNEL, cpu)\n"
     "    if addr is None:\n        return None\n    if not geo[\"num\"]:"),
]


@pytest.mark.parametrize("row,name,old,new", NULL_MUTANTS,
                         ids=[f"{m[1]}-{i}" for i, m in enumerate(NULL_MUTANTS)])
def test_null_row_fails_on_mutant(monkeypatch, row, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert any(f.startswith(row) for f in failing(sc._create_null_facts)), row


def test_every_null_row_has_a_mutant():
    names = [f.name for f in sc._create_null_facts()]
    rows = {m[0] for m in NULL_MUTANTS}
    assert len(names) == len(rows) == 4
    assert all(any(n.startswith(r) for n in names) for r in rows)


def test_num0_cases_by_hand():
    # 2.6.12 kmem_cache_create on 16 MiB: 100 bytes aligned to 128 KiB stay on-slab
    # (100 < PAGE_SIZE / 8) and 131072 + ALIGN(24 + 2, 131072) > 32 pages: no object
    # at order 5; 600 bytes are off-slab but round to 256 KiB; SLAB_RECLAIM_ACCOUNT
    # stops at order 0, where a 4096-aligned on-slab object leaves no room for the
    # management; aligned to 64 KiB one object and its management fill order 5
    def num(size, align, flags):
        return sc.k_geo(size, align, flags, line=128, offslab_limit=116, break_order=0)["num"]
    assert [num(100, 131072, 0), num(600, 262144, 0), num(100, 4096, sc.K_RECLAIM),
            num(100, 65536, 0), num(512, 4096, sc.K_RECLAIM)] == [0, 0, 0, 1, 1]


def test_every_group_has_a_mutant():
    assert {m[0] for m in MUTANTS} == set(sc.FACT_GROUPS)


def test_slub_order_11_by_hand():
    # Linux 6.8 mm/slub.c: 100 bytes aligned to 8 MiB is one 8 MiB object, get_order 11
    # (8 MiB = 2^11 pages of 4 KiB) > MAX_PAGE_ORDER 10: calculate_order -ENOSYS; 4 MiB
    # alignment is order 10, one object a slab
    assert sc.k_slub_geo(100, 1 << 23, 0)["num"] == 0
    assert (sc.k_slub_geo(100, 1 << 22, 0)["gfporder"], sc.k_slub_geo(100, 1 << 22, 0)["num"]) \
        == (10, 1)


def test_slub_order_11_row_fails_when_the_model_builds_the_cache(monkeypatch):
    # the model before 2026-12-06: an order-11 SLUB cache with one object
    mutate(monkeypatch, slab, "cache_geometry", "if order <= profile.top_order else 0",
           "if order <= profile.top_order + 1 else 0")
    assert failing(sc._create_accept_facts) == [
        "SLUB kmem_cache_create: order 10 is created; an alignment that needs order 11 gives "
        "NULL, nothing listed, the descriptor given back"]
