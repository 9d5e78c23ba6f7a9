"""The slab example scenarios run clean, with their hand-computed expectations met."""

import glob
import json
import os

import pytest

from kmemspec.scenario import format_text, parse_file, run_scenario

HERE = os.path.dirname(__file__)
SCENARIOS = sorted(glob.glob(os.path.join(HERE, "..", "examples", "scenarios", "slab_*.jsonl")))


@pytest.mark.parametrize("path", SCENARIOS, ids=os.path.basename)
def test_slab_scenario(path):
    run = run_scenario(parse_file(path))
    assert run.exit_code == 0, format_text(run)
    assert all(e.get("as_expected", True) for e in run.results)


def test_colour_scenario_expectations_are_checked():
    path = os.path.join(HERE, "..", "examples", "scenarios", "slab_colour.jsonl")
    run = run_scenario(parse_file(path))
    checked = [e for e in run.results if e["op"] == "kmem_cache_alloc" and "expect" in e]
    assert len(checked) == 19 and all(e["as_expected"] for e in checked)
    # the file's numbers, derived here independently from 2.6.12 mm/slab.c: slabs at pfn
    # 48..53 (after mem_map 1..33 -- (4096 + 1) * 32 bytes, mm/page_alloc.c
    # alloc_node_mem_map, first fit from pfn 0 as the 16 MiB goal is not in this machine's
    # low memory -- and the bootstrap's 14 slabs: kmem_cache 2, array_cache memory 12,
    # tests/test_slab_arraycache_memory.py; after a 2.6.12 boot they are 63..58 from CPU
    # 0's DMA hot list, then one-frame refills 56, 57, 34..39, and the next refills split
    # the o3 block 48, the head of its list: slab_colour.jsonl's header) with colour
    # offsets 0,128,256,384,512,0
    # (colour 5), object i at offset + 32 (struct slab + 3 bufctls) + i*1100; each refill
    # takes one new slab's 3 objects and __cache_alloc pops them 2, 1, 0; after shrink,
    # pfn 53 at offset 128
    want = [0xC0000000 + pfn * 4096 + off + 32 + i * 1100
            for pfn, off in zip(range(48, 54), (0, 128, 256, 384, 512, 0)) for i in (2, 1, 0)]
    want.append(0xC0000000 + 53 * 4096 + 128 + 32 + 2 * 1100)
    assert [e["expect"]["ret"] for e in checked] == want


def test_slabinfo_view_text_and_json():
    path = os.path.join(HERE, "..", "examples", "scenarios", "slab_colour.jsonl")
    run = run_scenario(parse_file(path))
    text = format_text(run)
    assert "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> " \
           "<objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : " \
           "slabdata <active_slabs> <num_slabs> <sharedavail>" in text
    # 16 objects held by the caller and 2 parked in CPU 0's array (s_show counts them
    # active: they are off their slab's free list) in 6 slabs of 3: shrink gave back
    # the emptied sixth slab and the next allocation grew a new one (the seventh colour
    # step) and took all its 3 objects
    line = next(t for t in text.splitlines() if t.startswith("colour_demo "))
    assert line.split()[:6] == ["colour_demo", "18", "18", "1100", "3", "1"]
    # tunables: objsize 1100 > 1024 -> limit 24, batchcount 12, shared 8 (CONFIG_SMP);
    # slabdata: sharedavail 0
    assert line.split()[6:] == [":", "tunables", "24", "12", "8", ":", "slabdata", "6", "6",
                                "0"]
    info = json.loads(json.dumps(run.to_json()))["state"]["slabinfo"]
    demo = next(c for c in info if c["name"] == "colour_demo")
    assert {k: demo[k] for k in ("active_objs", "num_objs", "objsize", "objperslab",
                                 "pagesperslab", "active_slabs", "num_slabs")} == \
        {"active_objs": 18, "num_objs": 18, "objsize": 1100, "objperslab": 3,
         "pagesperslab": 1, "active_slabs": 6, "num_slabs": 6}
    assert demo["colour"] == {"colour": 5, "colour_off": 128, "colour_next": 2,
                              "left_over": 764}
    # one CPU: its array holds objects 1 and 0 of the last slab, touched by the pops
    assert demo["arrays"] == [{"cpu": 0, "avail": 2, "limit": 24, "batchcount": 12,
                               "touched": 1}]
    assert demo["shared"] == {"avail": 0, "limit": 96, "touched": 0}
    assert demo["sharedavail"] == 0 and demo["free_limit"] == 2 * 12 + 3
    assert info[-1]["name"] == "kmem_cache"


def _expected(name):
    path = os.path.join(HERE, "..", "examples", "scenarios", name)
    run = run_scenario(parse_file(path))
    assert run.exit_code == 0, format_text(run)
    return run, [e["expect"]["ret"] for e in run.results
                 if e["op"] in ("kmem_cache_alloc", "kmalloc") and "expect" in e]


def test_arrays_scenario_is_cache_alloc_refills_order():
    """Independently of the file: 64-byte objects at 0xC0030000 + 148 + 64*i (pfn 48,
    after mem_map 1..33 and the bootstrap's 14 slabs 34..47, once the scenario has drained
    boot's hot list into the buddy lists); the first refill takes 16
    (BATCHREFILL_LIMIT), popped 15..0; the second takes the other 45 and pops 60; a
    freed 15 comes back first, then 59; kmalloc(20) pops the object the bootstrap left
    parked in size-32's array: size-32's own head array of kmem_cache_init step 4, the
    27th size-32 object handed out (25 head arrays, then cache_cache's and size-32's),
    object 26 of its slab at pfn 35 (objects after 288 bytes of management), kfree'd
    when enable_cpucache replaced it (tests/test_slab_arraycache_memory.py)."""
    _, got = _expected("slab_arrays.jsonl")
    o = lambda i: 0xC0030000 + 148 + 64 * i
    assert got == [o(i) for i in range(15, -1, -1)] + [o(60), o(15), o(59),
                                                        0xC0023000 + 288 + 26 * 32]


def test_smp_scenario_hand_values():
    """Slab k of the 2000-byte cache is pfn 48 + k (mem_map 1..33, 15 bootstrap slabs
    34..48 on 2 CPUs, after the scenario's drain of boot's hot list), object i at + 28 + 2000*i; CPU 0
    gets objects 1, 0 of each new slab; CPU 1's refill from the shared array pops a10
    (slab 6, object 1); CPU 0 pops a24 (slab 13, object 1); the object CPU 1 got, freed
    on CPU 0, is CPU 0's next."""
    _, got = _expected("slab_smp.jsonl")
    o = lambda k, i: 0xC0000000 + (48 + k) * 4096 + 28 + 2000 * i
    cpu0 = [o(n // 2 + 1, 1 - n % 2) for n in range(25)]
    assert got == cpu0 + [cpu0[10], cpu0[24], cpu0[10]]


def test_reap_scenario_final_slabinfo():
    """After the two reaps (derivation in the file and tests/test_slab_arrays.py):
    20 slabs less 11, 14, 13 and 10 = 16; active: full 12 and 16..20, partial 15 = 7;
    active objects 6*2 + 1 = 13 (the parked ones count, as s_show counts them); the
    shared array keeps a22, a23; then one allocation pops a39 (slab 20, object 0)."""
    run, got = _expected("slab_reap.jsonl")
    assert got == [0xC0000000 + (47 + 20) * 4096 + 28]     # mem_map 1..33, 14 bootstrap slabs
    info = next(c for c in run.to_json()["state"]["slabinfo"] if c["name"] == "reapme")
    assert (info["num_slabs"], info["active_slabs"], info["active_objs"],
            info["sharedavail"]) == (16, 7, 13, 2)
    assert info["arrays"][0]["avail"] == 40 - 24 - 5 - 1
