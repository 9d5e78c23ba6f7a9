"""A CPU going down and coming back (2.6.12 kernel/cpu.c cpu_down / cpu_up, mm/slab.c
cpuup_callback) and retuning a cache (mm/slab.c slabinfo_write -> do_tune_cpucache).

Every expected value is worked out by hand from the 2.6.12 source in the comments,
never read back from the model. Geometry (tests/test_slab_arrays.py): a 2000-byte
cache on i386 has num 2, on-slab management of 28 bytes and colour 0, so object i of
the slab at pfn p is at 0xC0000000 + p*4096 + 28 + 2000*i; enable_cpucache gives it
limit 24, batchcount 12 and a shared array of 12*8 entries.
"""

import os

import pytest
from campaigns import must_fail, must_pass

from kmemspec.campaign.base import ModelMachine
from kmemspec.campaign.buddy import BuddyRules
from kmemspec.campaign.slab import SlabRules
from kmemspec.model import boot
from kmemspec.model import cpu as hotplug
from kmemspec.model import kmalloc as km
from kmemspec.model import page_alloc, slab
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.model.mem_map import PG_slab
from kmemspec.scenario import format_text, parse_file, parse_scenario, run_scenario
from kmemspec.spec import catalogue

from .misuse import misuse, snapshot

PAGE_OFFSET = 0xC0000000
EINVAL, ENOMEM, EBUSY = -22, -12, -16


def _machine(cpus=2):
    return boot(profile="linux-2.6-i386", phys_pages=4096, highmem_pages=0, cpus=cpus)


def _pfn(addr):
    return (addr - PAGE_OFFSET) >> 12


def _ids(cachep, which):
    return [s.id for s in cachep.slab_list(which)]


def _clean(m):
    bad = {k: v for k, v in catalogue.check_all(m).items() if v}
    assert not bad, bad


def _cpu1_state():
    """c2000 retuned to limit 4, batchcount 2, shared 0 (free_limit (1 + 2 CPUs) * 2 +
    num 2 = 8); ten allocations on CPU 1, then eight frees there.

    Each refill on CPU 1 (an untouched array takes min(batchcount, 16) = 2) finds no
    slab, grows one and takes both objects; the pops give object 1, then object 0: slab
    k holds a[2k] (object 1) and a[2k+1] (object 0); refills move each slab to the head
    of slabs_full. Frees (__cache_free, limit 4): a0..a3 fill the array; a4 flushes the
    oldest batchcount 2 (a0, a1; the shared array has no room) through free_block: slab
    0 empties with free_objects 2 <= free_limit 8, to slabs_free; a6 flushes a2, a3 the
    same way (free_objects 4). CPU 1's array then holds a4..a7 (slabs 2 and 3)."""
    m = _machine()
    c = slab.kmem_cache_create(m, "c2000", 2000, 0, 0)
    # "c2000 4 2 0\n" is 12 bytes: slabinfo_write returns the count written
    assert slab.slabinfo_write(m, "c2000 4 2 0\n", 0) == 12
    assert (c.limit, c.batchcount, c.free_limit) == (4, 2, 8)
    a = [slab.kmem_cache_alloc(m, c, GFP_KERNEL, 1) for _ in range(10)]
    s = [_pfn(a[2 * k]) for k in range(5)]
    for k in range(5):
        assert a[2 * k] == PAGE_OFFSET + s[k] * 4096 + 28 + 2000
        assert a[2 * k + 1] == PAGE_OFFSET + s[k] * 4096 + 28
    for x in a[:8]:
        slab.kmem_cache_free(m, c, x, 1)
    assert c.array[1].entry == a[4:8] and c.free_objects == 4
    assert _ids(c, slab.FREE) == [s[1], s[0]] and _ids(c, slab.FULL) == [s[4], s[3], s[2]]
    return m, c, a, s


def test_cpu_down_returns_the_dead_cpus_array_through_free_block():
    """CPU_DEAD (cpuup_callback): free_limit drops by batchcount to 6 *before*
    free_block(a4..a7), which counts all 4 first (free_objects 8): a4 leaves slab 2
    partial; a5 empties it with 8 > 6, so slab 2 is destroyed (free_objects 6); a6
    leaves slab 3 partial; a7 empties it with 6 > 6 false: to the head of slabs_free.
    Had free_limit stayed 8, slab 2 would have survived. The array itself (16 + 4*4 =
    32 bytes, a size-32 object) is kfree'd on CPU 0: on top of size-32's CPU 0 array."""
    m, c, a, s = _cpu1_state()
    arr = c.array[1].addr
    size32 = slab.find_cache(m, "size-32")
    # one frame freed on CPU 1 waits on its hot list (free_hot_cold_page; the 16 MiB
    # zone's pcp high is 6 * batch 1)
    page = page_alloc.alloc_pages(m, GFP_KERNEL, 0, 1)
    page_alloc.__free_pages(m, page, 0, 1)
    assert m.pcp_pages[page.pfn] == 2 * 1 + 0
    assert hotplug.cpu_down(m, 1) == 0
    assert hotplug.cpu_online_map(m) == [0]
    assert c.array[1] is None and c.free_limit == 6 and c.free_objects == 6
    assert s[2] not in c.slabs and s[2] not in m.slab.page_slab
    assert not m.mem_map.flags[s[2]] & PG_slab
    assert _ids(c, slab.FREE) == [s[3], s[1], s[0]]
    assert _ids(c, slab.PARTIAL) == [] and _ids(c, slab.FULL) == [s[4]]
    assert arr not in m.slab.internal and size32.array[0].entry[-1] == arr
    # page_alloc_cpu_notify: CPU 1's page lists are empty; slab 2's frame went back on
    # CPU 0 (free_hot_cold_page onto CPU 0's hot list: 2 * cpu + cold = 0)
    assert all(z.pageset[1].pcp[t].count == 0 for z in m.zones if z.pageset for t in (0, 1))
    assert 2 not in m.pcp_pages.values() and 3 not in m.pcp_pages.values()
    assert page.pfn not in m.pcp_pages and m.page_owner.get(page.pfn) is None
    assert m.pcp_pages.get(s[2]) == 0
    # every general cache lost its CPU 1 array, and free_limit one batchcount
    for g in m.slab.cache_chain:
        assert g.array[1] is None
    _clean(m)


def test_cpu_down_chain_runs_page_alloc_before_slab(monkeypatch):
    """kernel/sys.c notifier_chain_register puts an equal-priority block after the
    earlier ones; page_alloc_init (priority 0) runs before kmem_cache_init registers
    cpucache_notifier (priority 0) in start_kernel: the pcp drain comes first."""
    m = _machine()
    calls = []
    drain = getattr(page_alloc, "__drain_pages")
    callback = slab.cpuup_callback
    monkeypatch.setattr(page_alloc, "__drain_pages",
                        lambda mm, cpu: (calls.append(("drain", cpu)), drain(mm, cpu)))
    monkeypatch.setattr(slab, "cpuup_callback",
                        lambda mm, act, cpu, this: (calls.append((act, cpu, this)),
                                                    callback(mm, act, cpu, this))[1])
    assert hotplug.cpu_down(m, 1) == 0
    assert calls == [("drain", 1), ("CPU_DEAD", 1, 0)]


def test_cpu_down_return_codes_change_nothing():
    """cpu_down: -EBUSY with one CPU online; -EINVAL for an offline CPU; -EBUSY for CPU
    0 (i386 __cpu_disable refuses the boot CPU, then CPU_DOWN_FAILED)."""
    m = _machine(cpus=1)
    before = snapshot(m)
    assert hotplug.cpu_down(m, 0) == EBUSY and snapshot(m) == before
    m = _machine(cpus=3)
    slab.kmem_cache_create(m, "x", 100, 0, 0)      # the slab bootstrap has run
    before = snapshot(m)
    assert hotplug.cpu_down(m, 0) == EBUSY and snapshot(m) == before
    assert hotplug.cpu_down(m, 2) == 0
    before = snapshot(m)
    assert hotplug.cpu_down(m, 2) == EINVAL and snapshot(m) == before
    assert hotplug.cpu_up(m, 1) == EINVAL and snapshot(m) == before
    with pytest.raises(ValueError):
        hotplug.cpu_down(m, 3)
    _clean(m)


def test_calls_on_an_offline_cpu_are_misuse():
    """The kernel never runs code on a dead CPU; the model rejects calls naming one
    (stricter than the kernel) and changes nothing."""
    m, c, a, s = _cpu1_state()
    assert hotplug.cpu_down(m, 1) == 0
    misuse(m, "cpu_offline", slab.kmem_cache_alloc, c, GFP_KERNEL, 1)
    misuse(m, "cpu_offline", slab.kmem_cache_free, c, a[8], 1)
    misuse(m, "cpu_offline", km.kmalloc, 64, GFP_KERNEL, 1)
    misuse(m, "cpu_offline", slab.cache_reap, 1)
    misuse(m, "cpu_offline", slab.kmem_cache_create, "y", 64, 0, 0, None, 1)
    misuse(m, "cpu_offline", slab.kmem_cache_shrink, c, 1)
    misuse(m, "cpu_offline", slab.kmem_cache_destroy, c, 1)
    misuse(m, "cpu_offline", slab.slabinfo_write, "c2000 8 4 1", 1)
    misuse(m, "cpu_offline", hotplug.cpu_up, 1, 1)
    m3 = _machine(cpus=3)
    misuse(m3, "hotplug_self", hotplug.cpu_down, 2, 2)
    # the page allocator's ops, through the scenario layer
    run = run_scenario(parse_scenario("\n".join([
        '{"op": "boot", "profile": "linux-2.6-i386", "phys_pages": 4096, "cpus": 2}',
        '{"op": "cpu_down", "cpu": 1, "expect": {"ret": 0}}',
        '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 0, "cpu": 1, '
        '"expect": {"error": "cpu_offline"}}',
        '{"op": "drain_local_pages", "cpu": 1, "expect": {"error": "cpu_offline"}}',
        '{"op": "__drain_pages", "cpu": 1}',
        '{"op": "kmalloc", "size": 8, "gfp": "GFP_KERNEL", "cpu": 1, '
        '"expect": {"error": "cpu_offline"}}'])))
    assert run.exit_code == 0 and all(e.get("as_expected", True) for e in run.results)


def test_cpu_up_gives_new_arrays_with_current_tunables():
    """CPU_UP_PREPARE: each cache gets an empty array for the CPU of its current limit
    and batchcount (c2000: 4, 2 after the retune), and free_limit = (1 +
    num_online_cpus()) * batchcount + num with the CPU not yet counted: (1 + 1) * 2 +
    2 = 6 for c2000, 2 * batchcount + num for every cache. The CPU is online again."""
    m, c, a, s = _cpu1_state()
    assert hotplug.cpu_down(m, 1) == 0
    assert hotplug.cpu_up(m, 1) == 0
    assert hotplug.cpu_online_map(m) == [0, 1]
    ac = c.array[1]
    assert (ac.avail, ac.limit, ac.batchcount, ac.touched) == (0, 4, 2, 0)
    assert m.slab.internal[ac.addr] == "array_cache of cache c2000 (CPU 1)"
    for g in m.slab.cache_chain:
        assert g.array[1].limit == g.limit and g.free_limit == 2 * g.batchcount + g.num
    # and CPU 1 works again: a refill of 2 from slab 3 (the head of slabs_free after
    # the cpu_down), popping object 1
    assert slab.kmem_cache_alloc(m, c, GFP_KERNEL, 1) == PAGE_OFFSET + s[3] * 4096 + 2028
    _clean(m)


def test_cpu_up_that_cannot_allocate_is_cancelled(monkeypatch):
    """An array that cannot be allocated makes cpuup_callback answer NOTIFY_BAD: cpu_up
    returns -EINVAL and CPU_UP_CANCELED takes back the arrays made so far (free_limit
    one batchcount lower than before CPU_UP_PREPARE raised it); caches not reached
    are left as they were (2.6.12 would dereference their NULL array). The CPU stays
    offline."""
    m = _machine(cpus=3)
    slab.kmem_cache_create(m, "x", 100, 0, 0)
    assert hotplug.cpu_down(m, 2) == 0
    chain = m.slab.cache_chain
    limits = [g.free_limit for g in chain]
    real, n = slab.alloc_arraycache, []

    def third_fails(*args):
        n.append(1)
        return None if len(n) == 3 else real(*args)
    monkeypatch.setattr(slab, "alloc_arraycache", third_fails)
    assert hotplug.cpu_up(m, 2) == EINVAL
    monkeypatch.undo()
    assert hotplug.cpu_online_map(m) == [0, 1]
    assert all(g.array[2] is None for g in chain)
    # the first two caches: raised to (1 + 2) * b + num, then lowered by b
    assert [g.free_limit for g in chain[:2]] == [2 * g.batchcount + g.num for g in chain[:2]]
    assert [g.free_limit for g in chain[2:]] == limits[2:]
    _clean(m)


def test_retune_drains_old_arrays_and_shows_in_slabinfo():
    """do_tune_cpucache via slabinfo_write "c2000 4 2 0": three allocations on CPU 0
    leave slab 1 full (objects 1, 0 handed out) and slab 2's object 0 parked in CPU 0's
    array (its object 1 handed out). The retune sets free_limit (1 + 2) * 2 + 2 = 8,
    then free_block of the old CPU 0 array puts slab 2's object 0 back: slab 2 partial
    with inuse 1, free_objects 1. slabinfo: tunables 4 2 0 (sharedfactor = shared
    limit 2*0 / batchcount), every array empty with the new limit."""
    m = _machine()
    c = slab.kmem_cache_create(m, "c2000", 2000, 0, 0)
    a = [slab.kmem_cache_alloc(m, c, GFP_KERNEL, 0) for _ in range(3)]
    s1, s2 = _pfn(a[0]), _pfn(a[2])
    old = [c.array[0].addr, c.array[1].addr, c.shared_array.addr]
    assert c.array[0].entry == [PAGE_OFFSET + s2 * 4096 + 28]
    assert slab.slabinfo_write(m, "c2000 4 2 0\n", 0) == 12
    assert c.free_limit == 8 and c.free_objects == 1
    assert _ids(c, slab.PARTIAL) == [s2] and _ids(c, slab.FULL) == [s1]
    assert c.slabs[s2].inuse == 1
    assert all(x not in m.slab.internal for x in old)
    info = next(e for e in slab.slabinfo(m) if e["name"] == "c2000")
    assert info["tunables"] == {"limit": 4, "batchcount": 2, "sharedfactor": 0}
    assert [(e["cpu"], e["avail"], e["limit"], e["batchcount"]) for e in info["arrays"]] \
        == [(0, 0, 4, 2), (1, 0, 4, 2)]
    assert info["shared"] == {"avail": 0, "limit": 0, "touched": 0}
    assert info["active_objs"] == 3
    _clean(m)


def test_retune_after_cpu_down_skips_the_offline_cpu():
    """do_tune_cpucache allocates arrays for cpu_online_map only; free_limit counts
    the online CPUs: (1 + 2) * 5 + 2 = 17 with CPUs 0 and 2 of 3 online."""
    m = _machine(cpus=3)
    c = slab.kmem_cache_create(m, "c2000", 2000, 0, 0)
    assert hotplug.cpu_down(m, 1) == 0
    assert slab.slabinfo_write(m, "c2000 10 5 2", 2) == len("c2000 10 5 2")
    assert c.array[1] is None and c.array[0].limit == c.array[2].limit == 10
    assert c.free_limit == 17 and c.shared_array.limit == 10
    _clean(m)


def test_retune_a_general_cache():
    """2.6.12 lets any cache be retuned, size-32 included. size-32 on i386 (L1 128):
    num 119 (ALIGN(24 + 2*119, 32) + 119*32 = 288 + 3808 = 4096; 120 needs 4128);
    "size-32 30 15 2" on 2 CPUs: free_limit (1 + 2) * 15 + 119 = 164, a shared array
    of 15*2 = 30 entries (sharedfactor 30 / 15 = 2)."""
    m = _machine()
    s32 = slab.find_cache(m, "size-32")
    assert slab.slabinfo_write(m, "size-32 30 15 2", 0) == 15     # bytes written
    assert (s32.limit, s32.batchcount, s32.free_limit, s32.num) == (30, 15, 164, 119)
    assert s32.shared_array.limit == 30 and s32.array[0].limit == s32.array[1].limit == 30
    info = next(e for e in slab.slabinfo(m) if e["name"] == "size-32")
    assert info["tunables"] == {"limit": 30, "batchcount": 15, "sharedfactor": 2}
    _clean(m)


@pytest.mark.parametrize("line", [
    "c2000 0 1 1",          # limit < 1
    "c2000 4 0 1",          # batchcount < 1
    "c2000 4 5 1",          # batchcount > limit
    "c2000 4 2 -1",         # shared < 0
    "nosuch 4 2 1",         # no cache of that name on cache_chain
    "c2000",                # no space after the name
    "c2000 4 2",            # sscanf finds 2 integers, not 3
    "c2000 4 +2 1",         # the kernel's vsscanf takes no '+'
    "c2000 4 2 1 " + " " * 120,   # 133 bytes > MAX_SLABINFO_WRITE 128
])
def test_slabinfo_write_einval_changes_nothing(line):
    m = _machine()
    slab.kmem_cache_create(m, "c2000", 2000, 0, 0)
    before = snapshot(m)
    assert slab.slabinfo_write(m, line, 0) == EINVAL
    assert snapshot(m) == before


def test_slabinfo_write_enomem_and_wraparound():
    """limit 40000: a CPU array of 16 + 4*40000 bytes is larger than the largest
    general cache (131072), kmalloc returns NULL: -ENOMEM before anything is
    allocated. limit 2^30: 16 + 4*2^30 wraps the 32-bit size_t; the kernel would make
    a 16-byte array of limit 2^30; the model refuses (stricter than the kernel)."""
    m = _machine()
    c = slab.kmem_cache_create(m, "c2000", 2000, 0, 0)
    before = snapshot(m)
    assert slab.slabinfo_write(m, "c2000 40000 1 0", 0) == ENOMEM
    assert snapshot(m) == before and c.limit == 24
    misuse(m, "arraycache_size_overflow", slab.slabinfo_write,
           f"c2000 {1 << 30} 1 0", 0)
    # 2^31 wraps to INT_MIN in simple_strtol's 32 bits: limit < 1
    assert slab.slabinfo_write(m, f"c2000 {1 << 31} 1 0", 0) == EINVAL


# --- the invariants catch a broken hotplug ---------------------------------------------

def test_lost_array_objects_are_caught(monkeypatch):
    """A CPU_DEAD that drops the array without free_block: its objects stay marked
    parked, in no array."""
    m, c, a, s = _cpu1_state()
    monkeypatch.setattr(slab, "free_block", lambda *args, **kw: None)
    hotplug.cpu_down(m, 1)
    monkeypatch.undo()
    assert any("recorded as parked" in v for v in catalogue.check(m, "slab_accounting"))


def test_leaked_array_memory_is_caught(monkeypatch):
    """A CPU_DEAD (or a retune) that does not kfree the dropped array."""
    m, c, a, s = _cpu1_state()
    monkeypatch.setattr(slab, "_kfree_internal", lambda *args: None)
    hotplug.cpu_down(m, 1)
    monkeypatch.undo()
    assert any("leaked" in v for v in catalogue.check(m, "slab_accounting"))
    m = _machine()
    slab.kmem_cache_create(m, "c2000", 2000, 0, 0)
    monkeypatch.setattr(slab, "_kfree_internal", lambda *args: None)
    slab.slabinfo_write(m, "c2000 4 2 0", 0)
    monkeypatch.undo()
    assert any("leaked" in v for v in catalogue.check(m, "slab_accounting"))


def test_array_of_wrong_online_state_is_caught():
    """cpu_online_map and the arrays disagree: an offline CPU keeping its arrays (no
    CPU_DEAD), an online one without them (no CPU_UP_PREPARE)."""
    m = _machine()
    slab.kmem_cache_create(m, "x", 100, 0, 0)
    m.cpu_online_map = [0]
    assert any("offline with an array" in v for v in catalogue.check(m, "slab_accounting"))
    m = _machine()
    assert hotplug.cpu_down(m, 1) == 0
    m.cpu_online_map = [0, 1]
    assert any("online without an array" in v for v in catalogue.check(m, "slab_accounting"))



# --- the example scenarios ---------------------------------------------------------------

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples", "scenarios")


def _run(name):
    scenario = parse_file(os.path.join(EXAMPLES, name))
    run = run_scenario(scenario)
    assert run.exit_code == 0, format_text(run)
    assert all(e.get("as_expected", True) for e in run.results)
    names = {step.line: step.bind for step in scenario.steps if step.bind}
    return run, {names[e["line"]]: e.get("ret") for e in run.results if e["line"] in names}


def _c2000(run):
    return next(c for c in run.to_json()["state"]["slabinfo"] if c["name"] == "c2000")


def test_cpu_down_example_hand_values():
    """slab_cpu_down.jsonl: slab k holds a(2k) = object 1 and a(2k+1) = object 0 (each
    refill on CPU 1 grows a slab and takes both). After CPU_DEAD (derivation in
    test_cpu_down_returns_the_dead_cpus_array_through_free_block): slab 2 destroyed,
    slabs 3, 1, 0 free, slab 4 full. cpu_up, then one allocation on CPU 1 refills from
    slab 3 and pops its object 1, which a6 was: slabs 4 and 3 full (4 objects, one of
    them parked), 4 slabs in all; free_limit (1 + 1) * 2 + 2 = 6; tunables 4 2 0."""
    run, v = _run("slab_cpu_down.jsonl")
    for k in range(5):
        assert v[f"a{2 * k}"] - v[f"a{2 * k + 1}"] == 2000
        assert _pfn(v[f"a{2 * k}"]) == _pfn(v[f"a{2 * k + 1}"])
    assert v["b"] == v["a6"]
    info = _c2000(run)
    assert (info["active_objs"], info["num_objs"], info["active_slabs"], info["num_slabs"]) \
        == (4, 8, 2, 4)
    assert info["tunables"] == {"limit": 4, "batchcount": 2, "sharedfactor": 0}
    assert info["free_limit"] == 6
    assert [(e["cpu"], e["avail"], e["limit"]) for e in info["arrays"]] == [(0, 0, 4),
                                                                              (1, 1, 4)]


def test_retune_example_hand_values():
    """slab_retune.jsonl: a0, a1 = objects 1, 0 of slab 1; a2 = object 1 of slab 2,
    whose object 0 stays parked on CPU 0. The retunes drain it back (slab 2 partial);
    after "c2000 8 4 2" the refill takes slab 2's object 0 = a2 - 2000 (slabs_partial
    before slabs_free). slabinfo: tunables 8 4 2 (shared limit 4*2 = 8, / batchcount 4),
    free_limit (1 + 2) * 4 + 2 = 14, 2 slabs both full, 4 objects active."""
    run, v = _run("slab_retune.jsonl")
    assert v["a0"] - v["a1"] == 2000 and v["b"] == v["a2"] - 2000
    info = _c2000(run)
    assert info["tunables"] == {"limit": 8, "batchcount": 4, "sharedfactor": 2}
    assert info["free_limit"] == 14 and info["shared"]["limit"] == 8
    assert (info["active_objs"], info["num_objs"], info["active_slabs"], info["num_slabs"]) \
        == (4, 4, 2, 2)


# --- the campaign drives the new calls, and fails on a broken hotplug ------------------

class HotplugCampaign(SlabRules, BuddyRules, ModelMachine):
    pass


def test_campaign_holds_with_hotplug_and_retuning():
    must_pass(HotplugCampaign, examples=25, steps=30)


_real_callback = slab.cpuup_callback
_real_do_tune = slab.do_tune_cpucache


def dead_cpu_objects_vanish(machine, action, cpu, this_cpu):
    """Bug: CPU_DEAD forgets the dead CPU's objects (the array is emptied unfreed)."""
    if action == "CPU_DEAD":
        for c in machine.slab.cache_chain:
            if c.array is not None and c.array[cpu] is not None:
                c.array[cpu].entry = []
    return _real_callback(machine, action, cpu, this_cpu)


def retune_keeps_old_array_memory(machine, cachep, limit, batchcount, shared, online, cpu):
    """Bug: do_tune_cpucache forgets to kfree the old per-CPU arrays."""
    old = {ac.addr for ac in cachep.array if ac is not None}
    ok = _real_do_tune(machine, cachep, limit, batchcount, shared, online, cpu)
    for addr in old:
        if ok and addr not in machine.slab.internal:
            machine.slab.internal[addr] = "array_cache kept"
            # back out the kfree: the object is in some general cache's array again
            for c in machine.slab.cache_chain:
                for ac in c.array or []:
                    if ac is not None and addr in ac.entry:
                        ac.entry.remove(addr)
                        machine.slab.parked.discard(addr)
    return ok


@pytest.mark.parametrize("name, bug", [
    ("cpuup_callback", dead_cpu_objects_vanish),
    ("do_tune_cpucache", retune_keeps_old_array_memory),
])
def test_campaign_catches_a_broken_hotplug(monkeypatch, name, bug):
    monkeypatch.setattr(slab, name, bug)
    must_fail(HotplugCampaign, examples=150, steps=30)


# --- the Z3 encoding (parked flags) agrees on states after cpu_down and a retune ---------

def test_z3_abstraction_agrees_after_cpu_down_and_retune():
    """spec/z3_slab.py abstracts the arrays as parked flags; an offline CPU's empty
    slot is no array. After cpu_down, cpu_up and a retune the Python slab parts and
    the Z3 predicates give the same verdict (both hold) on every cache with a slab,
    and every parked flag of the abstraction is an object some array holds."""
    from kmemspec.spec import z3_agreement_slab as agree
    from kmemspec.spec import z3_slab as zs

    m, c, a, s = _cpu1_state()
    assert hotplug.cpu_down(m, 1) == 0
    conc = zs.alpha(m, c)
    parked = {k for k, o in conc.objects.items() if o["parked"]}
    assert parked == set()          # CPU 1's a4..a7 went back; CPU 0 holds none of c2000
    assert slab.slabinfo_write(m, "c2000 8 4 1", 0) == len("c2000 8 4 1")
    assert hotplug.cpu_up(m, 1) == 0
    slab.kmem_cache_alloc(m, c, GFP_KERNEL, 1)
    caches = agree.checked_caches(m, c)
    states = agree.abstractions(m, caches)
    for name in zs.INVARIANTS:
        assert not agree.slab_violations(m, name)
        assert agree.z3_verdict(m, name, caches, states), name
