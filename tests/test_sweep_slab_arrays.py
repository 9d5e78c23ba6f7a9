"""The sweep rows of kmemspec/sweeps/slab_arrays.py: every row holds on the model, the
independent 2.6.12 cache (_KCache) agrees with hand-worked numbers, and each group
fails on mutants of the functions it sweeps (applied with tests/mutants.py)."""

from __future__ import annotations

import pytest

from kmemspec import sweeps
from kmemspec.model import slab
from kmemspec.sweeps import slab_arrays as sa
from mutants import failing as _failing, mutate


class _Hung(Exception):
    pass


def failing(group, seconds: int = 20, first: bool = True) -> list[str]:
    """tests/mutants.py failing(), with an alarm: a mutant that makes the model loop
    forever (verify's driver counts its timeout as a kill) fails the group here; by
    default it stops at the first failing row."""
    import signal

    def alarm(signum, frame):
        raise _Hung(group.__name__)
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        if not first:
            return _failing(group)
        for fact in group():            # the first failing row is enough
            if _failing(lambda fact=fact: [fact]):
                return [fact.name]
        return []
    except _Hung:
        return ["(timed out)"]
    except Exception as exc:        # the group's set-up raised: check_facts fails it
        return [f"(set-up raised {type(exc).__name__})"]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_every_row_holds_and_the_groups_are_collected():
    collected = sweeps.fact_groups()
    for group in sa.FACT_GROUPS:
        assert group in collected
        assert failing(group, first=False) == [], group.__name__


def test_kcache_reproduces_the_hand_worked_reap():
    # kmemspec/facts.py _mutation_reap_facts, worked by hand from 2.6.12 mm/slab.c: a
    # 5000-byte cache (num 1, limit 8, batchcount 4, free_limit 9) after 20 allocations
    # and 20 frees has 9 free slabs, 17 in all, array avail 8; then four reaps
    k = sa._KCache(1, 8, 4, 0, [0], 1)
    objs = [k.alloc(0) for _ in range(20)]
    for o in objs:
        k.free(0, o)
    out = [(len(k.lists[2]), len(k.chain), len(k.ac[0][0]))]
    for _ in range(4):
        k.reap(0)
        out.append((len(k.lists[2]), len(k.chain), len(k.ac[0][0])))
    assert out == [(9, 17, 8), (9, 17, 8), (7, 13, 6), (7, 11, 4), (7, 9, 2)]


def test_kcache_reproduces_the_hand_worked_shared_drain():
    # the same file's 1000-byte case: limit 54, batchcount 27, shared 216, num 4
    k = sa._KCache(4, 54, 27, 216, [0], 1)
    objs = [k.alloc(0) for _ in range(60)]
    for o in objs:
        k.free(0, o)
    out = [(len(k.ac[0][0]), len(k.shared[0]))]
    for _ in range(3):
        k.reap(0)
        out.append((len(k.ac[0][0]), len(k.shared[0])))
    assert out == [(33, 27), (33, 13), (22, 6), (11, 3)]


def test_kcache_untouched_refill_takes_sixteen():
    # cache_alloc_refill: an untouched array refills at most BATCHREFILL_LIMIT (16)
    k = sa._KCache(39, 40, 20, 20, [0], 1)
    first = k.alloc(0)
    assert first == (0, 15) and len(k.ac[0][0]) == 15
    for _ in range(15):
        k.alloc(0)
    assert k.alloc(0) == (0, 35)          # touched now: 20 more, 16..35, LIFO


WORKLOAD_MUTANTS = [
    ("cache_flusharray", "batchcount = min(batchcount, room)",
     "batchcount = min(batchcount, room + 1)"),
    ("cache_flusharray", "if room:", "if room > 1:"),
    ("free_block", "cachep.free_objects > cachep.free_limit",
     "cachep.free_objects >= cachep.free_limit"),
    ("free_block", "_list_move(cachep, slab, PARTIAL, True)",
     "_list_move(cachep, slab, PARTIAL, False)"),
    ("drain_array_locked", "(ac.limit + 4) // 5", "(ac.limit + 3) // 5"),
    ("drain_array_locked", "tofree = (avail + 1) // 2", "tofree = avail // 2"),
    ("cache_alloc_refill", "batchcount > BATCHREFILL_LIMIT:\n",
     "batchcount > BATCHREFILL_LIMIT + 1:\n"),
    ("cache_alloc_refill", "cachep.free_touched = 1", "cachep.free_touched = 0"),
    ("cache_alloc_refill", "ac.entry.extend(shared.entry[-batchcount:])",
     "ac.entry.extend(shared.entry[:batchcount])"),
    ("_cache_free", "len(ac.entry) >= ac.limit", "len(ac.entry) > ac.limit"),
    ("cache_reap", "(cachep.free_limit + 5 * cachep.num - 1)",
     "(cachep.free_limit + 5 * cachep.num)"),
    # probe seed 4103 #2
    ("cache_reap", "(cachep.free_limit + 5 * cachep.num - 1)",
     "(cachep.free_limit + 5 * cachep.num - 2)"),
    # probe seed 4101 #89
    ("cache_reap", "(cachep.free_limit + 5 * cachep.num - 1)",
     "(cachep.free_limit + 5 / cachep.num - 1)"),
    ("do_tune_cpucache", "(1 + len(online)) * batchcount", "(2 + len(online)) * batchcount"),
]


@pytest.mark.parametrize("name,old,new", WORKLOAD_MUTANTS)
def test_workloads_fail_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_array_workload_facts)


@pytest.mark.parametrize("old,new", [
    ("cachep.free_limit -= cachep.batchcount", "cachep.free_limit += cachep.batchcount"),
    ("objs, nc.entry = nc.entry, []", "objs, nc.entry = nc.entry[1:], []"),
    ("(1 + online) * cachep.batchcount", "online * cachep.batchcount"),
])
def test_hotplug_fails_on_mutants(monkeypatch, old, new):
    mutate(monkeypatch, slab, "cpuup_callback", old, new)
    assert failing(sa._sweep_hotplug_facts)


@pytest.mark.parametrize("name,old,new", [
    # spec/mutants.md fourth sample #15
    ("_arraycache_fits", "1 << machine.profile.VIRT_BITS", "1 & machine.profile.VIRT_BITS"),
    ("_arraycache_fits", "SIZEOF_ARRAY_CACHE + word * entries <",
     "SIZEOF_ARRAY_CACHE + word * entries <="),
    ("slabinfo_write", "batchcount < 1 or batchcount > limit",
     "batchcount < 1 or batchcount >= limit"),
    ("slabinfo_write", "count > MAX_SLABINFO_WRITE", "count >= MAX_SLABINFO_WRITE"),
    ("slabinfo_write", "count = len(buffer.encode())", "count = len(buffer)"),
    ("slabinfo_write", "or shared < 0:", "or shared <= 0:"),
    ("_scan_int", '" \\t\\n\\v\\f\\r"', '" \\t\\n"'),
    ("_scan_int", "value - (1 << 32) if value > _INT_MAX",
     "value - (1 << 32) if value >= _INT_MAX"),
    ("_scan_int", "value = -value % (1 << 32)", "value = -value"),
    # probe seed 4103 #8
    ("slabinfo_write", 'if machine.profile.slab_flavour != "slab":',
     'if machine.profile.slab_flavour < "slab":'),
    # probe seed 4102 #58
    ("_scan_int", "value = int(text[start:end]) % (1 << 32)",
     "value = int(text[start:end]) % (1 << 33)"),
    ("alloc_arraycache", "if addr is None:\n        addr = _kmalloc_internal",
     "if addr is not None:\n        addr = _kmalloc_internal"),
    ("do_tune_cpucache", "cachep.shared_array = new_shared", "cachep.shared_array = old_shared"),
])
def test_slabinfo_write_fails_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_slabinfo_write_facts)


@pytest.mark.parametrize("name,old,new", [
    ("enable_cpucache", "size > 1024", "size >= 1024"),
    ("enable_cpucache", "size > 256", "size >= 256"),
    ("enable_cpucache", "shared = 8 if size <= profile.PAGE_SIZE",
     "shared = 8 if size < profile.PAGE_SIZE"),
    ("_arraycache_bytes", "entries * (machine.profile.VIRT_BITS // 8)",
     "entries * (machine.profile.VIRT_BITS // 4)"),
])
def test_enable_cpucache_fails_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_enable_cpucache_facts)


def test_reap_chain_fails_on_mutants_flags(monkeypatch):
    # probe seed 4104 #30: any flag taken for SLAB_NO_REAP
    mutate(monkeypatch, slab, "cache_reap", "cachep.flags & SLAB_NO_REAP",
           "cachep.flags << SLAB_NO_REAP")
    assert failing(sa._sweep_reap_chain_facts)


@pytest.mark.parametrize("old,new", [
    # spec/mutants.md fourth sample #12, both of cache_reap's skips
    ("cachep.array is None:\n            continue", "cachep.array is None:\n            break"),
    ("cachep.free_touched = 0\n            continue", "cachep.free_touched = 0\n            break"),
])
def test_reap_chain_fails_on_mutants(monkeypatch, old, new):
    mutate(monkeypatch, slab, "cache_reap", old, new)
    assert failing(sa._sweep_reap_chain_facts)


@pytest.mark.parametrize("name,old,new", [
    ("_lookup_object", "not 0 <= objnr < cachep.num", "not 0 <= objnr <= cachep.num"),
    ("_lookup_object", "or addr in machine.slab.parked", "and addr in machine.slab.parked"),
    ("_lookup_object", "if type(addr) is not int", "if type(addr) is float"),
    ("kmem_cache_free", "if slab.cache is not cachep", "if slab.cache is cachep"),
    ("kmem_cache_free", "if addr in machine.slab.internal", "if addr is None"),
    ("check_cpu", "0 <= cpu < machine.cpus", "0 <= cpu <= machine.cpus"),
    # probe seed 4102 #32: an identity test on a number above CPython's small ints
    ("_lookup_object", "not 0 <= objnr < cachep.num", "not 0 <= objnr is not cachep.num"),
    # probe seed 4101 #12: an identity test that a restored (unpickled) machine breaks
    ("_lookup_object", "slab.bufctl[objnr] != cachep.BUFCTL_FREE",
     "slab.bufctl[objnr] is not cachep.BUFCTL_FREE"),
])
def test_free_misuse_fails_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_free_misuse_facts)


@pytest.mark.parametrize("name,old,new", [
    ("_must_grow", "if cachep.array[cpu].entry:", "if not cachep.array[cpu].entry:"),
    ("_must_grow", "cachep.shared_array.entry:", "cachep.shared_array.entry is None:"),
    ("_must_grow", "cachep.slabs_partial.nr == 0 and", "cachep.slabs_partial.nr == 0 or"),
    ("_check_alloc", "flags & ~SLAB_GROW_FLAGS", "flags & SLAB_GROW_FLAGS"),
    ("kmem_cache_alloc", "if cachep is machine.slab.cache_cache",
     "if cachep is not machine.slab.cache_cache"),
])
def test_alloc_misuse_fails_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_alloc_misuse_facts)


def test_dma_mismatch_message_fails_on_the_seventh_samples_survivor(monkeypatch):
    # benches/mutation.py --sample 24 --seed 7353, #8: "set" for any non-zero mask
    mutate(monkeypatch, slab, "_check_alloc", "'set' if flags & __GFP_DMA else",
           "'set' if flags ** __GFP_DMA else")
    assert failing(sa._sweep_alloc_misuse_facts) == [
        "kmem_cache_alloc dma_flag_mismatch names the caller's GFP_DMA: set on a normal "
        "cache, clear on a SLAB_CACHE_DMA one"]


@pytest.mark.parametrize("name,old,new", [
    ("__cache_shrink", "slab = cachep.slabs[free.tail]", "slab = cachep.slabs[free.head]"),
    ("__cache_shrink", "int(cachep.slabs_full.nr > 0 or", "int(cachep.slabs_full.nr > 1 or"),
])
def test_shrink_fails_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_shrink_facts)


@pytest.mark.parametrize("name,old,new", [
    ("_slub_alloc", "sid = cachep.slabs_free.head\n        if",
     "sid = cachep.slabs_free.tail\n        if"),
    ("_free_obj", "_list_move(cachep, slab, PARTIAL, True)",
     "_list_move(cachep, slab, PARTIAL, False)"),
    ("_free_obj", "cachep.free_objects += 1", "cachep.free_objects += 2"),
    # probe seed 4101 #30
    ("_free_obj", "cachep.slabs_partial.tail != slab.id",
     "cachep.slabs_partial.tail >= slab.id"),
    # probe seed 4101 #10
    ("_check_alloc", 'if cachep.flavour == "slab" and bool(',
     'if cachep.flavour >= "slab" and bool('),
])
def test_slub_fails_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_slub_facts)


@pytest.mark.parametrize("name,old,new", [
    ("slabinfo_write", "if not state.ready and not _bootstrap(machine):",
     "if state.ready and not _bootstrap(machine):"),
    ("kmem_cache_shrink", "if not machine.slab.ready and not _bootstrap(machine):",
     "if not machine.slab.ready and _bootstrap(machine):"),
    ("cache_reap", "if not state.ready and not _bootstrap(machine):",
     "if not state.ready:"),
    # probe seed 4101 #29
    ("kmem_cache_shrink", "return int(cachep.slabs_full.nr > 0 or cachep.slabs_partial.nr > 0)",
     "return int(cachep.slabs_full.nr > 0 or cachep.slabs_partial.nr == 0)"),
])
def test_first_call_fails_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_first_call_facts)


def test_importing_this_module_first_still_registers_its_groups():
    # facts.py collects the sweep modules at its end; a process that imports this module
    # before facts.py must still see its groups in facts.FACT_GROUPS
    import subprocess
    import sys
    code = ("import kmemspec.sweeps.slab_arrays as sa, kmemspec.facts as f; "
            "print(all(g in f.FACT_GROUPS for g in sa.FACT_GROUPS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("name,old,new", [
    ("do_tune_cpucache", "_kfree_internal(machine, ac.addr, cpu)\n            return False",
     "return False"),
    # probe seed 4102 #29
    ("cpuup_callback", "cachep.array is None or cachep.array[cpu] is None:",
     "cachep.array is None and cachep.array[cpu] is None:"),
    ("cpuup_callback", "if nc is None:\n                return False",
     "if nc is None:\n                continue"),
    ("alloc_arraycache", "if addr is None:\n            return None",
     "if addr is None:\n            return ArrayCache(entries, batchcount, 0)"),
])
def test_nomem_fails_on_mutants(monkeypatch, name, old, new):
    mutate(monkeypatch, slab, name, old, new)
    assert failing(sa._sweep_nomem_facts)
