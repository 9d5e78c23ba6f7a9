"""Sweep rows for model/slab.py's per-CPU arrays, allocation, free, shrink and reap.

Expected values come from Linux 2.6.12 mm/slab.c (torvalds/linux 1da177e4c3f4):
enable_cpucache, do_tune_cpucache, alloc_arraycache, cpuup_callback, slabinfo_write
(and lib/vsprintf.c vsscanf for its " %d %d %d"), cache_alloc_refill, __cache_alloc,
__cache_free, cache_flusharray, free_block, drain_array_locked, drain_cpu_caches,
__cache_shrink and cache_reap. `_KCache` below is an independent few-dozen-line
re-statement of those functions for one cache (slabs as bufctl chains, arrays as
lists), written from the kernel source, never from the model; the workload rows run
the same script of allocations, frees, reaps, shrinks, retunes and CPU hotplug through
the model and through `_KCache` and compare every returned object and, after every
step, every array, the three slab lists (order and inuse), free_objects, free_limit
and the touched marks. Misuse rows check the rule name of spec/slab.md and that the
pickled state is unchanged. spec/sweeps.md lists what each group sweeps.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
import random



# kmemspec/facts.py imports this package at its end (to collect FACT_GROUPS), so its
# names are looked up when a row is built, not when this module is imported: importing
# this module first then still lets facts.py see FACT_GROUPS below.
def Fact(*args, **kwargs):
    from ..facts import Fact as _Fact
    return _Fact(*args, **kwargs)


def k_kmem_cache_create(*args, **kwargs):
    from ..facts import k_kmem_cache_create as _k
    return _k(*args, **kwargs)


def _kernel_params(machine):
    from ..facts import _kernel_params as _k
    return _k(machine)

# mm/slab.c (2.6.12)
_BATCHREFILL_LIMIT = 16
_EINVAL, _ENOMEM = -22, -12


def _k_limit(objsize: int, page_size: int) -> int:
    """2.6.12 enable_cpucache: the per-CPU array limit by object size."""
    if objsize > 131072:
        return 1
    if objsize > page_size:
        return 8
    if objsize > 1024:
        return 24
    if objsize > 256:
        return 54
    return 120


class _KCache:
    """One 2.6.12 SLAB cache, as mm/slab.c handles it (no colouring, no addresses).

    Slabs are numbered in creation order (cache_grow: list_add_tail on slabs_free);
    each keeps its bufctl chain as a list whose first element is slabp->free; objects
    are (slab number, index). Arrays are lists, ac_entry[0] first."""

    def __init__(self, num, limit, batch, shared_entries, cpus, online):
        self.num = num
        self.limit, self.batch = limit, batch
        self.ac = {c: [[], 0, limit, batch] for c in cpus}     # entries, touched, limit, batch
        self.shared = [[], 0, shared_entries] if shared_entries is not None else None
        self.free_limit = (1 + online) * batch + num
        self.lists = ([], [], [])                               # full, partial, free
        self.chain: dict[int, list[int]] = {}                   # slab -> bufctl chain
        self.free_objects = 0
        self.free_touched = 0
        self.grown = 0
        self.no_reap = False

    def _inuse(self, sid):
        return self.num - len(self.chain[sid])

    def _unlink(self, sid):
        for lst in self.lists:
            if sid in lst:
                lst.remove(sid)

    def grow(self):
        sid = self.grown
        self.grown += 1
        self.chain[sid] = list(range(self.num))
        self.lists[2].append(sid)
        self.free_objects += self.num

    def alloc(self, cpu):                                    # __cache_alloc
        ac = self.ac[cpu]
        if ac[0]:
            ac[1] = 1
            return ac[0].pop()
        while True:                                          # cache_alloc_refill
            batch = ac[3]
            if not ac[1] and batch > _BATCHREFILL_LIMIT:
                batch = _BATCHREFILL_LIMIT
            sh = self.shared
            if sh is not None and sh[0]:
                batch = min(batch, len(sh[0]))
                cut = len(sh[0]) - batch
                ac[0] = sh[0][cut:]
                del sh[0][cut:]
                sh[1] = 1
            else:
                while batch > 0:
                    if self.lists[1]:
                        sid = self.lists[1][0]
                    else:
                        self.free_touched = 1
                        if not self.lists[2]:
                            break
                        sid = self.lists[2][0]
                    chain = self.chain[sid]
                    while chain and batch > 0:
                        batch -= 1
                        ac[0].append((sid, chain.pop(0)))
                    self._unlink(sid)
                    self.lists[0 if not chain else 1].insert(0, sid)
                self.free_objects -= len(ac[0])
            if not ac[0]:
                self.grow()
                continue
            ac[1] = 1
            return ac[0].pop()

    def free_block(self, objs):
        self.free_objects += len(objs)
        for sid, idx in objs:
            self._unlink(sid)
            self.chain[sid].insert(0, idx)
            if self._inuse(sid) == 0:
                if self.free_objects > self.free_limit:
                    self.free_objects -= self.num
                    del self.chain[sid]
                else:
                    self.lists[2].insert(0, sid)
            else:
                self.lists[1].append(sid)

    def free(self, cpu, obj):                               # __cache_free
        ac = self.ac[cpu]
        if len(ac[0]) >= ac[2]:                              # cache_flusharray
            batch = ac[3]
            sh = self.shared
            room = sh[2] - len(sh[0]) if sh is not None else 0
            if room:
                batch = min(batch, room)
                sh[0].extend(ac[0][:batch])
            else:
                self.free_block(ac[0][:batch])
            del ac[0][:batch]
        ac[0].append(obj)

    def drain(self, ac, limit, force):                       # drain_array_locked
        if ac[1] and not force:
            ac[1] = 0
        elif ac[0]:
            tofree = len(ac[0]) if force else (limit + 4) // 5
            if tofree > len(ac[0]):
                tofree = (len(ac[0]) + 1) // 2
            objs = ac[0][:tofree]
            del ac[0][:tofree]
            self.free_block(objs)

    def reap(self, cpu):                                     # cache_reap, one cache
        if self.no_reap:
            return
        self.drain(self.ac[cpu], self.ac[cpu][2], False)
        if self.shared is not None:
            self.drain(self.shared, self.shared[2], False)
        if self.free_touched:
            self.free_touched = 0
            return
        tofree = (self.free_limit + 5 * self.num - 1) // (5 * self.num)
        while self.lists[2]:
            sid = self.lists[2].pop(0)
            self.free_objects -= self.num
            del self.chain[sid]
            tofree -= 1
            if tofree <= 0:
                break

    def shrink(self, cpu):                                   # __cache_shrink
        for c in [cpu] + sorted(c for c in self.ac if c != cpu):
            objs, self.ac[c][0] = self.ac[c][0], []
            self.free_block(objs)
        if self.shared is not None:
            self.drain(self.shared, self.shared[2], True)
        while self.lists[2]:
            sid = self.lists[2].pop()
            self.free_objects -= self.num
            del self.chain[sid]
        return int(bool(self.lists[0] or self.lists[1]))

    def retune(self, limit, batch, shared, online):          # do_tune_cpucache
        old = {c: self.ac[c] for c in online}
        for c in online:
            self.ac[c] = [[], 0, limit, batch]
        self.limit, self.batch = limit, batch
        self.free_limit = (1 + len(online)) * batch + self.num
        for c in online:
            self.free_block(old[c][0])
        old_shared, self.shared = self.shared, [[], 0, batch * shared]
        if old_shared is not None:
            self.free_block(old_shared[0])

    def cpu_dead(self, cpu):                                 # cpuup_callback CPU_DEAD
        ac = self.ac.pop(cpu)
        self.free_limit -= self.batch
        self.free_block(ac[0])

    def cpu_up_prepare(self, cpu, online_before):            # CPU_UP_PREPARE
        self.ac[cpu] = [[], 0, self.limit, self.batch]
        self.free_limit = (1 + online_before) * self.batch + self.num

    def snap(self):
        return ({c: (list(a[0]), a[1], a[2], a[3]) for c, a in sorted(self.ac.items())},
                (list(self.shared[0]), self.shared[1], self.shared[2])
                if self.shared is not None else None,
                [[(s, self._inuse(s)) for s in lst] for lst in self.lists],
                self.free_objects, self.free_limit, self.free_touched)


class _Watch:
    """The model's side of a workload: objects as (slab number, index), slabs numbered
    in the order the model created them (first seen after the step that grew them)."""

    def __init__(self, machine, cachep):
        self.m, self.c = machine, cachep
        self.seen: list = []           # Slab objects, kept alive so ids stay unique
        self.num: dict[int, int] = {}

    def register(self):
        for slab in sorted(self.c.slabs.values(), key=lambda s: s.id):
            if id(slab) not in self.num:
                self.num[id(slab)] = len(self.seen)
                self.seen.append(slab)

    def obj(self, addr):
        p = self.m.profile
        slab = self.m.slab.page_slab[(addr - p.PAGE_OFFSET) >> p.PAGE_SHIFT]
        return self.num[id(slab)], (addr - slab.s_mem) // self.c.objsize

    def snap(self):
        from ..model.slab import FREE, FULL, PARTIAL
        c = self.c
        arrays = {i: ([self.obj(a) for a in ac.entry], ac.touched, ac.limit, ac.batchcount)
                  for i, ac in enumerate(c.array) if ac is not None}
        sh = c.shared_array
        shared = ([self.obj(a) for a in sh.entry], sh.touched, sh.limit) if sh else None
        lists = [[(self.num[id(s)], s.inuse) for s in c.slab_list(w)]
                 for w in (FULL, PARTIAL, FREE)]
        return arrays, shared, lists, c.free_objects, c.free_limit, c.free_touched


def _run_model(machine, cachep, script):
    """Run a script on the model; each step's result and the state after it."""
    from ..model import cpu as mcpu, slab
    from ..model.gfp import GFP_KERNEL
    w = _Watch(machine, cachep)
    objs: list[int] = []
    out = []
    for op in script:
        kind = op[0]
        if kind == "a":
            addr = slab.kmem_cache_alloc(machine, cachep, GFP_KERNEL, op[1])
            w.register()
            objs.append(addr)
            res = w.obj(addr)
        elif kind == "f":
            res = w.obj(objs[op[2]])
            slab.kmem_cache_free(machine, cachep, objs[op[2]], op[1])
        elif kind == "r":
            res = slab.cache_reap(machine, op[1])
        elif kind == "s":
            res = slab.kmem_cache_shrink(machine, cachep, op[1])
        elif kind == "t":
            res = slab.slabinfo_write(machine, f"{cachep.name} {op[1]} {op[2]} {op[3]}\n",
                                      op[4])
        elif kind == "d":
            res = mcpu.cpu_down(machine, op[1], op[2])
        else:
            res = mcpu.cpu_up(machine, op[1], op[2])
        out.append((res, w.snap()))
    return out


def _run_kernel(k: _KCache, name: str, script, cpus: int):
    """The same script on _KCache (2.6.12 mm/slab.c); results as _run_model's."""
    objs: list = []
    online = list(range(cpus))
    out = []
    for op in script:
        kind = op[0]
        if kind == "a":
            res = k.alloc(op[1])
            objs.append(res)
        elif kind == "f":
            res = objs[op[2]]
            k.free(op[1], res)
        elif kind == "r":
            res = k.reap(op[1])
        elif kind == "s":
            res = k.shrink(op[1])
        elif kind == "t":
            k.retune(op[1], op[2], op[3], online)
            # slabinfo_write: the byte count of "name limit batch shared\n"
            res = len(f"{name} {op[1]} {op[2]} {op[3]}\n")
        elif kind == "d":
            online.remove(op[1])
            k.cpu_dead(op[1])
            res = 0
        else:
            k.cpu_up_prepare(op[1], len(online))
            online = sorted(online + [op[1]])
            res = 0
        out.append((res, k.snap()))
    return out


def _random_script(seed: int, cpus: int, steps: int, weights) -> list:
    """A fixed pseudo-random workload: allocations, frees of live objects (any CPU),
    reaps and a few shrinks; the same script drives the model and _KCache."""
    rng = random.Random(seed)
    live: list[int] = []
    n = 0
    script = []
    kinds = "afrs"
    for _ in range(steps):
        kind = rng.choices(kinds, weights)[0]
        cpu = rng.randrange(cpus)
        if kind == "f" and not live:
            kind = "a"
        if kind == "a":
            script.append(("a", cpu))
            live.append(n)
            n += 1
        elif kind == "f":
            script.append(("f", cpu, live.pop(rng.randrange(len(live)))))
        else:
            script.append((kind, cpu))
    return script


# --- the workload rows -----------------------------------------------------------------

def _workload(size, cpus, tune, script, *, fact, source):
    """A Fact comparing the model and _KCache on one cache of `size` bytes created after
    boot on `cpus` CPUs, retuned to `tune` (limit, batch, shared) first if given."""
    from ..model import slab
    from ..model.boot import boot

    def model():
        m = boot(cpus=cpus)
        c = slab.kmem_cache_create(m, f"sweep{size}", size, 0, 0)
        pre = []
        if tune is not None:
            pre = [("t",) + tuple(tune) + (0,)]
        return _run_model(m, c, pre + script)

    def expected():
        m = boot(cpus=cpus)
        geo = k_kmem_cache_create(size, 0, 0, offslab_limit=10 ** 9, **_kernel_params(m))
        limit = _k_limit(geo["objsize"], m.profile.PAGE_SIZE)
        batch = (limit + 1) // 2
        shared = 8 if geo["objsize"] <= m.profile.PAGE_SIZE else 0
        k = _KCache(geo["num"], limit, batch, batch * shared, range(cpus), cpus)
        pre = []
        if tune is not None:
            pre = [("t",) + tuple(tune) + (0,)]
        return _run_kernel(k, f"sweep{size}", pre + script, cpus)
    return Fact(fact, source, expected, model)


_SRC_ALL = ("mm/slab.c __cache_alloc, cache_alloc_refill, __cache_free, cache_flusharray, "
            "free_block, drain_array_locked, cache_reap, __cache_shrink, do_tune_cpucache")


def _sweep_array_workload_facts() -> list[Fact]:
    """Allocation and free through the arrays against _KCache (2.6.12 mm/slab.c): the
    refill taking batchcount (BATCHREFILL_LIMIT 16 while untouched; fewer when the
    partial and free slabs run short; from the shared array's top first; a grow only
    when nothing was found), a free at `limit` flushing the oldest batchcount into the
    shared array's room (or free_block when it has none), free_block putting emptied
    slabs on slabs_free up to free_limit and destroying them above it, slabs moving
    between the lists, drain_array_locked's (limit + 4) / 5 and half of a shorter
    array, cache_reap's free-slab count, __cache_shrink's 0 / 1. Tunables swept:
    the enable_cpucache defaults of 100- and 1000-byte objects, small retuned arrays
    (limit 1..7, batchcount 1..limit, shared 0..2) where every boundary is crossed
    many times, batchcount 17 / 20 above BATCHREFILL_LIMIT, 1 and 2 CPUs."""
    cases = [
        # (size, cpus, tune, seed, steps, weights a/f/r/s)
        (100, 1, None, 4101, 260, (6, 5, 1, 0.2)),
        (1000, 2, None, 4102, 200, (6, 5, 1, 0.2)),
        (1000, 1, (6, 3, 1), 4103, 160, (5, 5, 1, 0.2)),
        (1000, 2, (5, 2, 0), 4104, 160, (5, 5, 1, 0.2)),
        (256, 2, (7, 7, 2), 4105, 160, (5, 5, 1, 0.2)),
        (2000, 1, (1, 1, 0), 4106, 80, (5, 5, 1, 0.2)),
        (100, 1, (40, 20, 1), 4107, 160, (6, 4, 1, 0.2)),
        (100, 2, (34, 17, 0), 4108, 160, (6, 4, 1, 0.2)),
        (5000, 2, (3, 2, 1), 4109, 120, (5, 5, 1, 0.2)),
    ]
    facts = []
    for size, cpus, tune, seed, steps, weights in cases:
        script = _random_script(seed, cpus, steps, weights)
        facts.append(_workload(size, cpus, tune, script,
                               fact=f"arrays workload: {size} B, {cpus} CPU(s), tunables "
                                    f"{tune or 'enable_cpucache'}, {steps} steps",
                               source=_SRC_ALL))
    # deterministic edges: a refill of an untouched array (16 of batch 20), then a
    # touched one (20); a free that fills the array exactly to limit, the next flushes
    edge = ([("a", 0)] * 45 + [("f", 0, i) for i in range(45)] + [("r", 0)] * 3
            + [("a", 0)] * 5 + [("s", 0)] + [("r", 0)] + [("s", 0)])
    facts.append(_workload(100, 1, (40, 20, 1), edge,
                           fact="arrays: untouched refill 16, touched 20, flush at limit 40",
                           source=_SRC_ALL))
    # one object a slab, free_limit (1 + 1) * 4 + 1 = 9: the ninth emptied slab stays
    # (free_objects == free_limit), the tenth is destroyed; then 4 reaps
    reap = [("a", 0)] * 20 + [("f", 0, i) for i in range(20)] + [("r", 0)] * 4
    facts.append(_workload(5000, 1, None, reap, fact="arrays: free_block keeps a slab at "
                           "free_objects == free_limit, destroys above; 4 reaps",
                           source=_SRC_ALL))
    # free_limit (1 + 1) * 2 + 1 = 5, a multiple of 5 * num: cache_reap's tofree is
    # (5 + 5 - 1) / 5 = 1 slab a reap
    facts.append(_workload(5000, 1, (4, 2, 0), reap, fact="arrays: cache_reap's tofree "
                           "when free_limit is a multiple of 5 * num", source=_SRC_ALL))
    # one object a slab, free_limit 2 * 5 + 1 = 11 = 5 * 2 + 1: tofree (11 + 4) / 5 = 3
    facts.append(_workload(5000, 1, (10, 5, 0), reap + [("r", 0)] * 2,
                           fact="arrays: cache_reap's tofree when free_limit is 1 past a "
                                "multiple of 5 * num", source=_SRC_ALL))
    # four objects a slab, free_limit 2 * 10 + 4 = 24: tofree (24 + 19) / 20 = 2 slabs
    many = [("a", 0)] * 24 + [("f", 0, i) for i in range(24)] + [("r", 0)] * 5
    facts.append(_workload(1000, 1, (20, 10, 0), many, fact="arrays: cache_reap frees "
                           "(free_limit + 5*num - 1) / (5*num) = 2 slabs of 4 objects",
                           source=_SRC_ALL))
    # the shared array (2 * 3 = 6 entries) filled by CPU 0's flushes, emptied from its
    # top by CPU 1's refills (2 at a time)
    share = ([("a", 0)] * 12 + [("f", 0, i) for i in range(12)] + [("a", 1)] * 5
             + [("r", 1), ("r", 0), ("a", 1), ("r", 1), ("r", 0), ("s", 1)])
    facts.append(_workload(1000, 2, (4, 2, 3), share, fact="arrays: the shared array "
                           "filled by one CPU's flushes, refilled from its top by another",
                           source=_SRC_ALL))
    return facts


def _sweep_hotplug_facts() -> list[Fact]:
    """cpuup_callback through model/cpu.py with arrays holding objects (2.6.12
    mm/slab.c cpuup_callback: CPU_DEAD takes the array away, free_limit -= batchcount,
    free_block of its objects in array order; CPU_UP_PREPARE a new empty array of the
    cache's current limit and batchcount, free_limit = (1 + num_online_cpus()) *
    batchcount + num before the CPU counts), and a retune while a CPU is down
    (do_tune_cpucache gives arrays to online CPUs only), against _KCache."""
    a = [("a", c) for c in (1, 2, 2, 1, 0) for _ in range(6)]
    frees = [("f", 2, i) for i in range(0, 30, 2)] + [("f", 1, i) for i in range(1, 20, 2)]
    script = (a + frees + [("d", 2, 0), ("a", 1), ("f", 0, 21), ("d", 1, 0),
                           ("t", 4, 2, 1, 0), ("u", 2, 0), ("a", 2), ("a", 2), ("f", 2, 23),
                           ("u", 1, 2), ("r", 1), ("r", 0), ("s", 2)])
    script2 = ([("a", 1)] * 12 + [("f", 1, i) for i in range(12)] + [("d", 1, 0)]
               + [("a", 0)] * 3 + [("u", 1, 0), ("f", 1, 12), ("r", 1), ("r", 1)])
    return [_workload(1000, 3, (5, 3, 1), script, fact="hotplug: CPU 2 and 1 down with "
                      "parked objects, retune while down, back up", source=_SRC_ALL
                      + ", cpuup_callback; kernel/cpu.c cpu_down, cpu_up"),
            _workload(3000, 2, None, script2, fact="hotplug: CPU 1 down with its array "
                      "full (free_limit drops before free_block), back up", source=_SRC_ALL
                      + ", cpuup_callback; kernel/cpu.c cpu_down, cpu_up")]



# --- misuse and parse rules ------------------------------------------------------------

def _digest(m) -> str:
    return hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()


def _outcome(call):
    """A call's result: its return value, a KernelBug's rule, or another exception's type
    name (a ValueError is the model's bad-input error; anything else fails the row)."""
    from ..model.errors import KernelBug
    try:
        return ("ok", call())
    except KernelBug as exc:
        return ("bug", exc.rule)
    except Exception as exc:           # the row expects the exact type
        return ("raised", type(exc).__name__)


def _refusals(m, calls):
    """Each call's outcome, and whether the pickled state after them all is the state
    before them (every call here is one the model must refuse or answer with an error
    code without changing anything)."""
    before = _digest(m)
    out = [_outcome(call) for call in calls]
    return out, _digest(m) == before


def _sweep_slabinfo_write_facts() -> list[Fact]:
    """slabinfo_write's parse and range rules (2.6.12 mm/slab.c slabinfo_write; lib/
    vsprintf.c vsscanf " %d %d %d" with simple_strtol): count > MAX_SLABINFO_WRITE (128
    bytes, UTF-8 bytes not characters) -EINVAL, exactly 128 accepted; no space -EINVAL;
    fewer than three integers (a '+', a lone '-', letters) -EINVAL; trailing text after
    the third integer and any whitespace between them accepted; digits wrap in 32 bits
    and land in an int (4294967300 is 4, 4294967295 is -1, 2147483648 and 6442450944
    are INT_MIN, -4294967295 is 1); the name compared whole (strcmp) on cache_chain;
    limit < 1, batchcount < 1, batchcount > limit, shared < 0 -EINVAL, and 1 / batchcount == limit
    / shared 0 (-0) accepted. Refused writes change nothing. A CPU array of 16 + 4 *
    limit bytes above 131072 (the largest general cache) is -ENOMEM with nothing
    changed (limit 32765; 32764 fits size-131072), a shared array that cannot be
    allocated is ignored (do_tune_cpucache), and where 16 + 4 * entries wraps the
    32-bit size_t (limit or batchcount * shared from 2^30 - 4) the model's stricter
    rule arraycache_size_overflow (spec/slab.md) refuses it, state unchanged.
    Accepted writes: the byte count, then the tunables, per-CPU arrays, shared array
    limit (batchcount * shared), free_limit = (1 + num_online_cpus()) * batchcount +
    num and the parked objects back on the slabs."""
    from ..model import slab
    from ..model.boot import boot
    from ..model.gfp import GFP_KERNEL

    base = boot(cpus=2)
    c = slab.kmem_cache_create(base, "tw", 100, 0, 0)
    objs = [slab.kmem_cache_alloc(base, c, GFP_KERNEL, 0) for _ in range(5)]
    for addr in objs[:3]:
        slab.kmem_cache_free(base, c, addr, 0)
    geo = k_kmem_cache_create(100, 0, 0, offslab_limit=10 ** 9, **_kernel_params(base))
    num = geo["num"]
    pad128 = "tw" + " " * (128 - len("tw4 2 1\n")) + "4 2 1\n"
    bad = ["tw 0 1 0\n", "tw 1 0 0\n", "tw 4 5 0\n", "tw 4 4 -1\n", "tw -1 1 0\n",
           "tw -0 1 0\n", "tw 2147483648 1 0\n", "tw 6442450944 1 0\n", "tw 4294967295 1 0\n",
           "tw 4 1 4294967295\n",
           "tw 4 2147483649 1\n", "nosuch 4 2 1\n", "t 4 2 1\n", "tw2 4 2 1\n", "TW 4 2 1\n",
           "tw\n", "tw", "tw4,2,1\n", "tw 4 2\n", "tw 4\n", "tw \n", "tw a 2 1\n",
           "tw +4 2 1\n", "tw 4 +2 1\n", "tw 4 2 +1\n", "tw - 2 1\n", "tw 4 2 -\n",
           "tw 4 2 --1\n", " tw 4 2 1\n", pad128[:-1] + " \n",
           "tw" + " " * 117 + "4 2 1 " + "\u00e9\u00e9\n"]

    def refused():
        m = copy.deepcopy(base)
        return _refusals(m, [lambda b=b: slab.slabinfo_write(m, b, 0) for b in bad])

    def tunables(m, cachep):
        return ([(a.limit, a.batchcount, a.avail) for a in cachep.array if a is not None],
                cachep.limit, cachep.batchcount,
                cachep.shared_array.limit if cachep.shared_array is not None else None,
                cachep.free_limit)

    good = [("tw 12 5 2\n", 12, 5, 2), ("tw 1 1 0\n", 1, 1, 0), ("tw 8 8 0\n", 8, 8, 0),
            ("tw 4 1 -0\n", 4, 1, 0), ("tw 4294967300 2 1\n", 4, 2, 1),
            ("tw 4 4294967298 1\n", 4, 2, 1), ("tw 4 1 -4294967295\n", 4, 1, 1),
            ("tw 12 5 2 and more\n", 12, 5, 2), ("tw 12\t5\v2\n", 12, 5, 2),
            ("tw \t\n\f\r12 5 2", 12, 5, 2), ("tw 12 5\n2\n", 12, 5, 2), (pad128, 4, 2, 1),
            ("tw 32764 3 1\n", 32764, 3, 1), ("tw 7 3 8\n", 7, 3, 8)]

    def accepted_model():
        out = []
        for text, *_ in good:
            m = copy.deepcopy(base)
            cm = slab.find_cache(m, "tw")
            res = slab.slabinfo_write(m, text, 0)
            info = next(e for e in slab.slabinfo(m) if e["name"] == "tw")
            out.append((res, tunables(m, cm), cm.free_objects, info["tunables"]))
        return out

    def accepted_expected():
        out = []
        for text, limit, batch, shared in good:
            # every parked object is back on its slab: 2 live objects of one slab
            out.append((len(text.encode()), ([(limit, batch, 0)] * 2, limit, batch,
                                              batch * shared, 3 * batch + num),
                        num - 2, {"limit": limit, "batchcount": batch,
                                  "sharedfactor": shared}))
        return out

    big = [("tw 32765 1 0\n", ("ok", _ENOMEM)),
           ("tw 1073741819 1 0\n", ("ok", _ENOMEM)),
           ("tw 1073741820 1 0\n", ("bug", "arraycache_size_overflow")),
           ("tw 2147483647 1 0\n", ("bug", "arraycache_size_overflow")),
           ("tw 4 1 1073741820\n", ("bug", "arraycache_size_overflow")),
           ("tw 4 2 536870910\n", ("bug", "arraycache_size_overflow")),
           ("tw 4 2 1073741824\n", ("bug", "arraycache_size_overflow")),
           ("tw 4 4 1073741823\n", ("bug", "arraycache_size_overflow")),
           # simple_strtoul wraps: 99999999999999999999 mod 2^32 = 1661992959 >= 2^30 - 4
           ("tw 99999999999999999999 1 0\n", ("bug", "arraycache_size_overflow"))]

    def big_model():
        m = copy.deepcopy(base)
        return _refusals(m, [lambda b=b: slab.slabinfo_write(m, b, 0) for b, _ in big])

    def shared_fails():
        # the shared array of 2^30 - 5 (and 2 * 536870909) entries fits size_t but no
        # general cache: ignored, the old shared array (480 entries) stays
        out = []
        for text in ("tw 4 1 1073741819\n", "tw 4 2 536870909\n"):
            m = copy.deepcopy(base)
            cm = slab.find_cache(m, "tw")
            out.append((slab.slabinfo_write(m, text, 0), cm.limit, cm.batchcount,
                        cm.shared_array.limit, cm.free_limit))
        return out

    def slub():
        m = boot(profile="linux-6.x-x86_64", highmem_pages=0)
        slab.kmem_cache_create(m, "tw", 100, 0, 0)
        return _refusals(m, [lambda: slab.slabinfo_write(m, "tw 4 2 1\n", 0)])

    def offline():
        m = boot(cpus=3)
        slab.kmem_cache_create(m, "tw", 100, 0, 0)
        from ..model import cpu as mcpu
        mcpu.cpu_down(m, 2, 0)
        return _refusals(m, [lambda: slab.slabinfo_write(m, "tw 4 2 1\n", 2),
                             lambda: slab.slabinfo_write(m, "tw 4 2 1\n", 3),
                             lambda: slab.slabinfo_write(m, b"tw 4 2 1\n", 0)])
    src = "mm/slab.c slabinfo_write, do_tune_cpucache, alloc_arraycache; lib/vsprintf.c vsscanf"
    return [Fact(f"slabinfo_write refuses {len(bad)} malformed or out-of-range lines "
                 "(-EINVAL), state unchanged", src,
                 lambda: ([("ok", _EINVAL)] * len(bad), True), refused),
            Fact(f"slabinfo_write accepts {len(good)} lines: count, tunables, arrays, "
                 "free_limit", src, accepted_expected, accepted_model),
            Fact("slabinfo_write: arrays too large for any general cache (-ENOMEM) or "
                 "wrapping size_t (arraycache_size_overflow), state unchanged", src,
                 lambda: ([r for _, r in big], True), big_model),
            Fact("slabinfo_write: a shared array no general cache holds is ignored", src,
                 lambda: [(len("tw 4 1 1073741819\n"), 4, 1, 480, 3 * 1 + num),
                          (len("tw 4 2 536870909\n"), 4, 2, 480, 3 * 2 + num)],
                 shared_fails),
            Fact("slabinfo_write on the SLUB profile (6.x has no tunables to write)",
                 "Linux 6.1 mm/slab_common.c: /proc/slabinfo is read-only (0400) without "
                 "CONFIG_SLAB; the model refuses the write as bad input", lambda:
                 ([("raised", "ValueError")], True), slub),
            Fact("slabinfo_write on an offline CPU, a CPU past the last, bytes", src,
                 lambda: ([("bug", "cpu_offline"), ("raised", "ValueError"),
                           ("raised", "ValueError")], True), offline)]


def _k_general(entries_bytes: int, sizes) -> str | None:
    """kmem_find_general_cachep: the first general cache of at least that many bytes."""
    return next((f"size-{s}" for s in sizes if s >= entries_bytes), None)


def _sweep_enable_cpucache_facts() -> list[Fact]:
    """enable_cpucache at each object-size boundary (2.6.12 mm/slab.c: limit 120 up to
    256 bytes, 54 up to 1024, 24 up to PAGE_SIZE, 8 up to 131072; batchcount (limit +
    1) / 2; shared 8 for objects of at most a page, so a shared array of batchcount *
    8 entries, else one of 0), on 2 CPUs: both CPUs' arrays, the shared array,
    free_limit = (1 + 2) * batchcount + num, and where each array's memory lives:
    alloc_arraycache's 16 + 4 * entries bytes from the first general cache that holds
    them (kmem_find_general_cachep; i386 kmalloc sizes 32 .. 131072)."""
    from ..model import slab
    from ..model.boot import boot

    sizes = (8, 252, 256, 257, 1024, 1025, 4096, 4097, 131072)
    m = boot(cpus=2)
    params = _kernel_params(m)
    kmalloc_sizes = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
                     131072)

    def model():
        out = []
        for size in sizes:
            c = slab.kmem_cache_create(m, f"ec{size}", size, 0, 0)

            def home(ac):
                p = m.profile
                s = m.slab.page_slab[(ac.addr - p.PAGE_OFFSET) >> p.PAGE_SHIFT]
                return s.cache.name
            out.append(([(a.limit, a.batchcount, home(a)) for a in c.array],
                        (c.shared_array.limit, home(c.shared_array)), c.free_limit))
        return out

    def expected():
        out = []
        for size in sizes:
            geo = k_kmem_cache_create(size, 0, 0, offslab_limit=10 ** 9, **params)
            limit = _k_limit(geo["objsize"], 4096)
            batch = (limit + 1) // 2
            shared = batch * (8 if geo["objsize"] <= 4096 else 0)
            arr = (limit, batch, _k_general(16 + 4 * limit, kmalloc_sizes))
            out.append(([arr] * 2, (shared, _k_general(16 + 4 * shared, kmalloc_sizes)),
                        3 * batch + geo["num"]))
        return out
    return [Fact(f"enable_cpucache at object sizes {', '.join(map(str, sizes))} (2 CPUs)",
                 "mm/slab.c enable_cpucache, do_tune_cpucache, alloc_arraycache, "
                 "kmem_find_general_cachep", expected, model)]


def _sweep_reap_chain_facts() -> list[Fact]:
    """cache_reap over a chain of caches (2.6.12 mm/slab.c cache_reap walks cache_chain
    from its head, newest cache first; a SLAB_NO_REAP cache is skipped (`goto next`),
    a cache whose refill found no partial slab since the last reap (free_touched) only
    loses that mark after its arrays are drained (`goto next_unlock`); both go on with
    the next cache). Three 5000-byte caches (limit 8, batchcount 4, one object a
    slab): `work` (SLAB_RECLAIM_ACCOUNT: a flag, but not SLAB_NO_REAP) created first,
    then `noreap` (SLAB_NO_REAP), then `touchy` (chain
    head), each driven by the same frees; `touchy` refills again right before some
    reaps, so it is skipped early in the walk while `work` still has slabs to lose.
    Expected from _KCache, cache by cache."""
    from ..model import slab
    from ..model.boot import boot
    from ..model.gfp import GFP_KERNEL

    names = ("touchy", "noreap", "work")          # cache_chain order (newest first)
    steps = ([("a", n) for n in names for _ in range(20)]
             + [("f", n, i) for n in names for i in range(20)]
             + [("r",), ("a", "touchy"), ("a", "touchy"), ("r",), ("r",),
                ("a", "touchy"), ("a", "noreap"), ("r",), ("r",), ("f", "touchy", 20),
                ("r",), ("r",)])

    def model():
        m = boot(cpus=1)
        caches = {}
        for n in reversed(names):
            # `work` carries a flag that is not SLAB_NO_REAP (it must still be reaped)
            flags = {"noreap": slab.SLAB_NO_REAP, "work": slab.SLAB_RECLAIM_ACCOUNT}.get(n, 0)
            caches[n] = slab.kmem_cache_create(m, n, 5000, 0, flags)
        watch = {n: _Watch(m, c) for n, c in caches.items()}
        objs = {n: [] for n in names}
        out = []
        for op in steps:
            if op[0] == "a":
                addr = slab.kmem_cache_alloc(m, caches[op[1]], GFP_KERNEL)
                watch[op[1]].register()
                objs[op[1]].append(addr)
            elif op[0] == "f":
                slab.kmem_cache_free(m, caches[op[1]], objs[op[1]][op[2]])
            else:
                slab.cache_reap(m)
            out.append([watch[n].snap() for n in names])
        return out

    def expected():
        m = boot(cpus=1)
        nums = {n: k_kmem_cache_create(5000, 0, 0x20000 if n == "work" else 0,
                                       offslab_limit=10 ** 9, **_kernel_params(m))["num"]
                for n in names}
        ks = {n: _KCache(nums[n], 8, 4, 0, [0], 1) for n in names}
        ks["noreap"].no_reap = True
        objs = {n: [] for n in names}
        out = []
        for op in steps:
            if op[0] == "a":
                objs[op[1]].append(ks[op[1]].alloc(0))
            elif op[0] == "f":
                ks[op[1]].free(0, objs[op[1]][op[2]])
            else:
                for n in names:
                    ks[n].reap(0)
            out.append([ks[n].snap() for n in names])
        return out
    return [Fact("cache_reap walks the whole chain past a SLAB_NO_REAP and a "
                 "free_touched cache (3 caches, 7 reaps)",
                 "mm/slab.c cache_reap, drain_array_locked, free_block", expected, model)]



def _sweep_free_misuse_facts() -> list[Fact]:
    """kmem_cache_free misuse (spec/slab.md "Misuse"; the 2.6.12 DEBUG kernel's checks
    in __cache_free / kfree_debugcheck, the model's stricter ones marked there): an
    object of another cache is wrong_cache; an object parked in an array, or on its
    slab's free list (never handed out, or refilled into an array and not popped), is
    double_free; an address inside an object, one byte before object 0 (the struct
    slab), the first byte past the last object is not_object_start; NULL, a string,
    a float, True, an address below PAGE_OFFSET, at high_memory, negative, or in a
    page that is no slab is not_slab_object; an array_cache's own memory is
    slab_internal_object freed to its general cache, wrong_cache freed to ours; a
    destroyed cache is destroyed_cache; a CPU past the last (or -1, True) is bad input
    (ValueError), an offline CPU cpu_offline; the CPU is checked before the address,
    the address before the cache match; kmem_cache_shrink and cache_reap on an offline
    or a missing CPU, and shrink of a destroyed cache or None. Nothing changes. Then
    the good frees: the
    object goes on top of that CPU's array."""
    from ..model import cpu as mcpu, slab
    from ..model.boot import boot
    from ..model.gfp import GFP_KERNEL

    m = boot(cpus=3)
    c = slab.kmem_cache_create(m, "mf", 100, 0, 0)
    d = slab.kmem_cache_create(m, "mg", 100, 0, 0)
    gone = slab.kmem_cache_create(m, "gone", 100, 0, 0)
    a = [slab.kmem_cache_alloc(m, c, GFP_KERNEL, 0) for _ in range(4)]
    b = slab.kmem_cache_alloc(m, d, GFP_KERNEL, 1)
    slab.kmem_cache_free(m, c, a[3], 0)              # parked in CPU 0's array
    slab.kmem_cache_destroy(m, gone)
    mcpu.cpu_down(m, 2, 0)
    p = m.profile
    first = m.slab.page_slab[(a[0] - p.PAGE_OFFSET) >> p.PAGE_SHIFT]
    size = c.objsize
    geo = k_kmem_cache_create(100, 0, 0, offslab_limit=10 ** 9, **_kernel_params(m))
    num = geo["num"]
    # the first refill of an untouched array takes 16 objects (BATCHREFILL_LIMIT):
    # objects 4..15 are parked by the refill, 16.. are on the slab's free list
    in_array = first.s_mem + 10 * size
    on_slab = first.s_mem + 20 * size
    last_slab = first.s_mem + (num - 1) * size
    # 12-byte objects: 290 a slab (more than CPython's small ints), 12 bytes left over,
    # so the byte after the last object is still in the slab's page
    small = slab.kmem_cache_create(m, "mf12", 12, 0, 0)
    s12 = slab.kmem_cache_alloc(m, small, GFP_KERNEL, 0)
    num12 = k_kmem_cache_create(12, 0, 0, offslab_limit=10 ** 9, **_kernel_params(m))["num"]
    slab12 = m.slab.page_slab[(s12 - p.PAGE_OFFSET) >> p.PAGE_SHIFT]
    past12 = slab12.s_mem + num12 * 12
    home = c.array[0].addr
    home_cache = slab.find_cache(m, "size-512")
    page_no_slab = p.PAGE_OFFSET + 0x1000        # pfn 1: reserved by boot, no slab
    calls = [
        (lambda: slab.kmem_cache_free(m, d, a[0], 0), ("bug", "wrong_cache")),
        (lambda: slab.kmem_cache_free(m, c, b, 0), ("bug", "wrong_cache")),
        (lambda: slab.kmem_cache_free(m, c, a[3], 0), ("bug", "double_free")),
        (lambda: slab.kmem_cache_free(m, c, a[3], 1), ("bug", "double_free")),
        (lambda: slab.kmem_cache_free(m, c, in_array, 0), ("bug", "double_free")),
        (lambda: slab.kmem_cache_free(m, c, on_slab, 0), ("bug", "double_free")),
        (lambda: slab.kmem_cache_free(m, c, last_slab, 0), ("bug", "double_free")),
        (lambda: slab.kmem_cache_free(m, c, a[0] + 4, 0), ("bug", "not_object_start")),
        (lambda: slab.kmem_cache_free(m, c, a[0] + size - 1, 0), ("bug", "not_object_start")),
        (lambda: slab.kmem_cache_free(m, c, first.s_mem - 4, 0), ("bug", "not_object_start")),
        (lambda: slab.kmem_cache_free(m, c, first.s_mem + num * size, 0),
         ("bug", "not_object_start")),
        (lambda: slab.kmem_cache_free(m, small, past12, 0), ("bug", "not_object_start")),
        (lambda: slab.kmem_cache_free(m, small, past12 - 12 * 100, 0), ("bug", "double_free")),
        (lambda: slab.kmem_cache_free(m, c, None, 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, str(a[0]), 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, float(a[0]), 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, True, 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, 0, 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, -a[0], 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, p.PAGE_OFFSET - size, 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, m.high_memory, 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, a[0] - p.PAGE_OFFSET, 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, c, page_no_slab, 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_free(m, home_cache, home, 0), ("bug", "slab_internal_object")),
        (lambda: slab.kmem_cache_free(m, c, home, 0), ("bug", "wrong_cache")),
        (lambda: slab.kmem_cache_free(m, gone, a[0], 0), ("bug", "destroyed_cache")),
        (lambda: slab.kmem_cache_free(m, "mf", a[0], 0), ("bug", "bad_cache")),
        (lambda: slab.kmem_cache_free(m, c, a[0], 3), ("raised", "ValueError")),
        (lambda: slab.kmem_cache_free(m, c, a[0], -1), ("raised", "ValueError")),
        (lambda: slab.kmem_cache_free(m, c, a[0], True), ("raised", "ValueError")),
        (lambda: slab.kmem_cache_free(m, c, a[0], 2), ("bug", "cpu_offline")),
        (lambda: slab.kmem_cache_free(m, d, a[3], 2), ("bug", "cpu_offline")),
        (lambda: slab.kmem_cache_free(m, d, a[3], 0), ("bug", "double_free")),
        (lambda: slab.kmem_cache_free(m, d, None, 0), ("bug", "not_slab_object")),
        (lambda: slab.kmem_cache_shrink(m, c, 2), ("bug", "cpu_offline")),
        (lambda: slab.kmem_cache_shrink(m, c, 3), ("raised", "ValueError")),
        (lambda: slab.kmem_cache_shrink(m, gone, 0), ("bug", "destroyed_cache")),
        (lambda: slab.kmem_cache_shrink(m, None, 0), ("bug", "bad_cache")),
        (lambda: slab.cache_reap(m, 2), ("bug", "cpu_offline")),
        (lambda: slab.cache_reap(m, 3), ("raised", "ValueError")),
    ]

    def good():
        # a machine restored from its pickle (a saved scenario state): the handed-out
        # marks are equal numbers, not the same Python objects
        mm = pickle.loads(pickle.dumps(m))
        cm, dm = slab.find_cache(mm, "mf"), slab.find_cache(mm, "mg")
        slab.kmem_cache_free(mm, cm, a[0], 1)
        slab.kmem_cache_free(mm, cm, a[1], 0)
        slab.kmem_cache_free(mm, dm, b, 0)
        return ([x.entry[-1:] for x in cm.array if x is not None],
                dm.array[0].entry[-1:], sorted(mm.slab.parked & {a[0], a[1], b}))
    return [Fact(f"kmem_cache_free: {len(calls)} misuses, each its rule, state unchanged",
                 "mm/slab.c kmem_cache_free, __cache_free (DEBUG checks); spec/slab.md",
                 lambda: ([r for _, r in calls], True),
                 lambda: _refusals(m, [f for f, _ in calls])),
            Fact("kmem_cache_free: the object goes on top of the freeing CPU's array",
                 "mm/slab.c __cache_free", lambda: ([[a[1]], [a[0]]], [b],
                                                    sorted([a[0], a[1], b])), good)]


def _sweep_alloc_misuse_facts() -> list[Fact]:
    """kmem_cache_alloc's rules (spec/slab.md "Misuse"): cache_cache is
    cache_cache_private; __GFP_HIGHMEM highmem_slab; GFP_DMA on a normal cache or none
    on a SLAB_CACHE_DMA one dma_flag_mismatch; bits above 0xffff or a negative mask
    bad_gfp; a flag outside SLAB_DMA | SLAB_LEVEL_MASK | SLAB_NO_GROW (__GFP_ZERO)
    bad_slab_gfp exactly when the allocation must reach cache_grow (2.6.12 mm/slab.c
    cache_grow's BUG: the CPU's array, the shared array, slabs_partial and slabs_free
    all empty), accepted otherwise, from each of those four sources in turn; an
    offline CPU cpu_offline, a CPU past the last ValueError. Refusals change nothing;
    the accepted ones return the object 2.6.12 hands out (the top of the array, the
    refill's last object)."""
    from ..model import cpu as mcpu, slab
    from ..model.boot import boot
    from ..model.gfp import GFP_KERNEL, __GFP_DMA, __GFP_HIGH, __GFP_HIGHMEM, __GFP_ZERO

    m = boot(cpus=3)
    c = slab.kmem_cache_create(m, "am", 100, 0, 0)
    dma = slab.kmem_cache_create(m, "amdma", 100, 0, slab.SLAB_CACHE_DMA)
    big = slab.kmem_cache_create(m, "ambig", 5000, 0, 0)
    fresh = slab.kmem_cache_create(m, "amfresh", 100, 0, 0)
    mcpu.cpu_down(m, 2, 0)
    Z = GFP_KERNEL | __GFP_ZERO
    refused = [
        (lambda: slab.kmem_cache_alloc(m, m.slab.cache_cache, GFP_KERNEL, 0),
         ("bug", "cache_cache_private")),
        (lambda: slab.kmem_cache_alloc(m, c, GFP_KERNEL | __GFP_HIGHMEM, 0),
         ("bug", "highmem_slab")),
        (lambda: slab.kmem_cache_alloc(m, c, GFP_KERNEL | __GFP_DMA, 0),
         ("bug", "dma_flag_mismatch")),
        (lambda: slab.kmem_cache_alloc(m, dma, GFP_KERNEL, 0), ("bug", "dma_flag_mismatch")),
        (lambda: slab.kmem_cache_alloc(m, c, GFP_KERNEL | 0x10000, 0), ("bug", "bad_gfp")),
        (lambda: slab.kmem_cache_alloc(m, c, -1, 0), ("bug", "bad_gfp")),
        (lambda: slab.kmem_cache_alloc(m, fresh, Z, 0), ("bug", "bad_slab_gfp")),
        (lambda: slab.kmem_cache_alloc(m, fresh, GFP_KERNEL | 0x8000 | 0x4000, 1),
         ("bug", "bad_slab_gfp")),
        (lambda: slab.kmem_cache_alloc(m, c, GFP_KERNEL, 2), ("bug", "cpu_offline")),
        (lambda: slab.kmem_cache_alloc(m, c, GFP_KERNEL, 3), ("raised", "ValueError")),
        (lambda: slab.kmem_cache_alloc(m, c, GFP_KERNEL, -1), ("raised", "ValueError")),
        (lambda: slab.kmem_cache_alloc(m, c, GFP_KERNEL, 1.0), ("raised", "ValueError")),
    ]

    def sources():
        mm = copy.deepcopy(m)
        cm, bm = slab.find_cache(mm, "am"), slab.find_cache(mm, "ambig")
        out = []
        # a partial slab only: CPU 0 takes 16 of the slab, CPU 1 (empty array, empty
        # shared array) refills from the partial slab with __GFP_ZERO
        x0 = slab.kmem_cache_alloc(mm, cm, GFP_KERNEL, 0)
        s = slab._lookup_object(mm, x0)[0]
        out.append((x0 - s.s_mem) // cm.objsize)
        y = slab.kmem_cache_alloc(mm, cm, Z, 1)
        out.append((y - s.s_mem) // cm.objsize)
        # the CPU's own array: CPU 0 pops its next object with __GFP_ZERO
        z = slab.kmem_cache_alloc(mm, cm, Z, 0)
        out.append((z - s.s_mem) // cm.objsize)
        # one object a slab, retuned to limit 2, batchcount 1, a shared array of 1:
        # three objects; freeing them on CPU 0 flushes the oldest into the shared array
        slab.slabinfo_write(mm, "ambig 2 1 1\n", 0)
        objs = [slab.kmem_cache_alloc(mm, bm, GFP_KERNEL, 0) for _ in range(3)]
        for o in objs:
            slab.kmem_cache_free(mm, bm, o, 0)
        # CPU 1: its array empty, every slab full, the shared array holds objs[0]
        out.append(objs.index(slab.kmem_cache_alloc(mm, bm, Z, 1)))
        # CPU 1 again: nothing anywhere but CPU 0's array: bad_slab_gfp
        before = _digest(mm)
        out.append(_outcome(lambda: slab.kmem_cache_alloc(mm, bm, Z, 1)))
        out.append(_digest(mm) == before)
        # a retune sends both arrays' objects back: two free slabs, arrays empty
        slab.slabinfo_write(mm, "ambig 2 1 1\n", 0)
        out.append(objs.index(slab.kmem_cache_alloc(mm, bm, Z, 1)))
        return out

    def dma_messages():
        # the refusal says which way round the caller's GFP_DMA is (a surviving mutant of
        # the seventh sample wrote "set" for GFP_KERNEL on a DMA cache)
        from ..model.errors import KernelBug
        out = []
        for name, gfp in (("am", GFP_KERNEL | __GFP_DMA), ("amdma", GFP_KERNEL),
                          ("amdma", __GFP_HIGH)):
            mm = copy.deepcopy(m)
            try:
                slab.kmem_cache_alloc(mm, slab.find_cache(mm, name), gfp, 0)
                out.append(None)
            except KernelBug as exc:
                out.append(str(exc).split("GFP_DMA ", 1)[1].split(" ", 1)[0])
        return out
    return [Fact(f"kmem_cache_alloc: {len(refused)} misuses, each its rule, state unchanged",
                 "mm/slab.c kmem_cache_alloc, cache_grow (BUG on flags); spec/slab.md",
                 lambda: ([r for _, r in refused], True),
                 lambda: _refusals(m, [f for f, _ in refused])),
            Fact("kmem_cache_alloc dma_flag_mismatch names the caller's GFP_DMA: set on a "
                 "normal cache, clear on a SLAB_CACHE_DMA one", "spec/slab.md \"Misuse\" "
                 "(2.6.12 mm/slab.c kmem_flagcheck)",
                 lambda: ["set", "clear", "clear"], dma_messages),
            # CPU 0's untouched refill takes objects 0..15 and pops 15; CPU 1's refill
            # takes 16..31 from the partial slab and pops 31; CPU 0 pops 14; CPU 1 gets
            # the shared array's objs[0]; then nothing: refused; the retune's
            # free_block puts objs[1]'s slab, then objs[2]'s at the head of
            # slabs_free (free_objects 2 <= free_limit 3 * 1 + 1), so the refill takes
            # objs[2]
            Fact("kmem_cache_alloc with __GFP_ZERO from a partial slab, the CPU's array, "
                 "the shared array, a free slab; refused when it must grow",
                 "mm/slab.c __cache_alloc, cache_alloc_refill, cache_grow",
                 lambda: [15, 31, 14, 0, ("bug", "bad_slab_gfp"), True, 2], sources)]



class _KSlub:
    """The SLUB profile's rule (spec/slab.md: no array caches, objects straight from the
    first partial slab, else the first free slab, else a new one; each slab's freelist
    LIFO, as Linux 6.1 mm/slub.c do_slab_free / slab_alloc_node keep it): a slab that
    fills goes to the head of the full list, one that gives an object moves to the
    head of the partial list; a free puts an emptied slab at the head of the free list
    and a still-used one at the tail of the partial list; shrink destroys the free
    slabs (__cache_shrink: 0 when no slab is in use)."""

    def __init__(self, num):
        self.num = num
        self.lists = ([], [], [])
        self.chain: dict[int, list[int]] = {}
        self.free_objects = 0
        self.grown = 0

    def _unlink(self, sid):
        for lst in self.lists:
            if sid in lst:
                lst.remove(sid)

    def alloc(self):
        if self.lists[1]:
            sid = self.lists[1][0]
        else:
            if not self.lists[2]:
                self.chain[self.grown] = list(range(self.num))
                self.lists[2].append(self.grown)
                self.free_objects += self.num
                self.grown += 1
            sid = self.lists[2][0]
        chain = self.chain[sid]
        idx = chain.pop(0)
        self.free_objects -= 1
        if not chain:
            self._unlink(sid)
            self.lists[0].insert(0, sid)
        elif self.lists[1][:1] != [sid]:
            self._unlink(sid)
            self.lists[1].insert(0, sid)
        return sid, idx

    def free(self, obj):
        sid, idx = obj
        self.chain[sid].insert(0, idx)
        self.free_objects += 1
        if len(self.chain[sid]) == self.num:
            self._unlink(sid)
            self.lists[2].insert(0, sid)
        elif self.lists[1][-1:] != [sid]:
            self._unlink(sid)
            self.lists[1].append(sid)

    def shrink(self):
        while self.lists[2]:
            del self.chain[self.lists[2].pop()]
            self.free_objects -= self.num
        return int(bool(self.lists[0] or self.lists[1]))

    def snap(self):
        return ([[(s, self.num - len(self.chain[s])) for s in lst] for lst in self.lists],
                self.free_objects)


def _sweep_slub_facts() -> list[Fact]:
    """The SLUB profile (linux-6.x-x86_64) through kmem_cache_alloc / _free / _shrink /
    cache_reap against _KSlub: a 512-byte cache (order from Linux 6.1 calculate_order,
    facts.k_slub_order: 32 objects a slab), a fixed pseudo-random script of 300 steps;
    every returned object (slab number, index), the three lists and free_objects after
    every step; cache_reap leaves a cache without arrays alone. __GFP_ZERO and GFP_DMA
    are accepted (no array, no 2.6.12 cache_grow BUG)."""
    from ..facts import k_slub_order
    from ..model import slab
    from ..model.boot import boot
    from ..model.gfp import GFP_KERNEL, __GFP_DMA, __GFP_ZERO
    from ..model.slab import FREE, FULL, PARTIAL

    # 16 objects (two slabs of 8) freed in order: both slabs on slabs_free, the second
    # at its head; the next allocation takes the head
    two_free = [("a", 0)] * 16 + [("f", 0, i) for i in range(16)] + [("a", 0)] * 3
    cases = [(512, _random_script(4110, 1, 300, (6, 5, 1, 0.3))), (4096, two_free),
             (4096, _random_script(4111, 1, 200, (7, 5, 1, 0.2)))]

    def model(size, script):
        m = boot(profile="linux-6.x-x86_64", highmem_pages=0)
        c = slab.kmem_cache_create(m, f"su{size}", size, 0, 0)
        w = _Watch(m, c)
        objs, out = [], []
        flags = (GFP_KERNEL, GFP_KERNEL | __GFP_ZERO, GFP_KERNEL | __GFP_DMA)
        for op in script:
            if op[0] == "a":
                addr = slab.kmem_cache_alloc(m, c, flags[len(objs) % 3])
                w.register()
                objs.append(addr)
                res = w.obj(addr)
            elif op[0] == "f":
                res = w.obj(objs[op[2]])
                slab.kmem_cache_free(m, c, objs[op[2]])
            elif op[0] == "r":
                res = slab.cache_reap(m)
            else:
                res = slab.kmem_cache_shrink(m, c)
            lists = [[(w.num[id(s)], s.inuse) for s in c.slab_list(x)]
                     for x in (FULL, PARTIAL, FREE)]
            out.append((res, (lists, c.free_objects)))
        return out

    def expected(size, script):
        k = _KSlub((4096 << k_slub_order(size, 4096)) // size)
        objs, out = [], []
        for op in script:
            if op[0] == "a":
                res = k.alloc()
                objs.append(res)
            elif op[0] == "f":
                res = objs[op[2]]
                k.free(res)
            elif op[0] == "r":
                res = None
            else:
                res = k.shrink()
            out.append((res, k.snap()))
        return out
    return [Fact(f"SLUB profile: {len(script)} allocs/frees/shrinks/reaps of a {size}-byte "
                 "cache", "Linux 6.1 mm/slub.c slab_alloc_node, do_slab_free; spec/slab.md "
                 "(SLUB)", lambda s=size, sc=script: expected(s, sc),
                 lambda s=size, sc=script: model(s, sc)) for size, script in cases]



def _sweep_shrink_facts() -> list[Fact]:
    """kmem_cache_shrink (2.6.12 mm/slab.c __cache_shrink: drain_cpu_caches, then every
    slab of slabs_free destroyed from its tail, `slabs_free.prev`; 1 while full or
    partial slabs remain): an empty cache 0; one object held (a partial slab, the
    refill's other 15 objects drained back) 1 with that slab kept; the object freed 0
    and no slab; two full slabs' 78 objects held, then freed onto the array (limit
    120): the drain empties the first slab, then the second, so slabs_free is (second,
    first) and the shrink destroys the first, then the second; the next grow gets the
    second's frame back (2.6.12 free_hot_cold_page puts a freed frame at the head of
    the per-CPU hot list, buffered_rmqueue takes the head). Mixed: 80 objects, the
    first 50 freed: one slab destroyed, two partial, 1. One full slab alone: 1.
    100-byte objects: 39 a slab."""
    from ..model import slab
    from ..model.boot import boot
    from ..model.gfp import GFP_KERNEL

    def pfn_of(m, addr):
        p = m.profile
        return (addr - p.PAGE_OFFSET) >> p.PAGE_SHIFT

    def model():
        m = boot(cpus=1)
        c = slab.kmem_cache_create(m, "shr", 100, 0, 0)
        out = [slab.kmem_cache_shrink(m, c)]
        x = slab.kmem_cache_alloc(m, c, GFP_KERNEL)
        out.append((slab.kmem_cache_shrink(m, c), c.slabs_partial.nr, c.slabs_free.nr,
                    c.free_objects, c.array[0].avail))
        slab.kmem_cache_free(m, c, x)
        out.append((slab.kmem_cache_shrink(m, c), len(c.slabs), c.free_objects))
        objs = [slab.kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(78)]
        last = pfn_of(m, objs[-1])
        out.append((len(c.slabs), c.array[0].avail, len({pfn_of(m, o) for o in objs})))
        for o in objs:
            slab.kmem_cache_free(m, c, o)
        out.append((slab.kmem_cache_shrink(m, c), len(c.slabs)))
        y = slab.kmem_cache_alloc(m, c, GFP_KERNEL)
        out.append(pfn_of(m, y) == last)
        slab.kmem_cache_free(m, c, y)
        slab.kmem_cache_shrink(m, c)
        objs = [slab.kmem_cache_alloc(m, c, GFP_KERNEL) for _ in range(80)]
        for o in objs[:50]:
            slab.kmem_cache_free(m, c, o)
        out.append((slab.kmem_cache_shrink(m, c), c.slabs_full.nr, c.slabs_partial.nr,
                    c.slabs_free.nr, c.free_objects))
        # one object a slab: one object held is one full slab and no partial one: 1
        big = slab.kmem_cache_create(m, "shrbig", 5000, 0, 0)
        slab.kmem_cache_alloc(m, big, GFP_KERNEL)
        out.append((slab.kmem_cache_shrink(m, big), big.slabs_full.nr, big.slabs_partial.nr))
        return out
    # Worked by hand (cache_alloc_refill grows only when a refill found nothing, so
    # each refill of this touched array, batchcount 60, takes one new slab's 39). 78
    # allocations: slab A's 39, then B's 39, popped LIFO; the array ends empty. Freed
    # in hand-out order (A38..A0, B38..B0) they all park (78 < 120); the drain
    # empties A, then B: slabs_free (B, A); the shrink destroys A, then B, so B's frame
    # is reused first. 80 allocations on the empty cache: A, B, then C (two popped,
    # C0..C36 parked); the first 50 freed (A's 39, B38..B28) park too; the drain
    # (free_objects 87 <= free_limit 2 * 60 + 39) leaves A free, B 28 and C 2 live;
    # the shrink destroys A: two partial slabs, free_objects 78 - 30 = 48, answer 1.
    return [Fact("kmem_cache_shrink: empty, partial-only, free-only (the tail first), mixed",
                 "mm/slab.c kmem_cache_shrink, __cache_shrink, drain_cpu_caches; "
                 "mm/page_alloc.c free_hot_cold_page, buffered_rmqueue",
                 lambda: [0, (1, 1, 0, 38, 0), (0, 0, 0), (2, 0, 2), (0, 0), True,
                          (1, 0, 2, 0, 48), (1, 1, 0)], model)]



def _sweep_first_call_facts() -> list[Fact]:
    """The first slab call on a freshly booted machine runs the deferred kmem_cache_init
    bootstrap (spec/slab.md "Boot") before doing its own work, whichever call it is:
    slabinfo_write (retuning kmem_cache to 10 5 1: the byte count, limit 10,
    batchcount 5, a shared array of 5), kmem_cache_shrink of size-32 (1: the 16-byte
    shared arrays of the caches above a page live there; both its arrays drained and
    no free slab left), cache_reap, kmem_cache_alloc from size-64 (an object); each leaves
    g_cpucache_up FULL with every cache holding its enable_cpucache arrays (2.6.12
    enable_cpucache: size-64 has limit 120, batchcount 60)."""
    from ..model import slab
    from ..model.boot import boot
    from ..model.gfp import GFP_KERNEL

    def model():
        out = []
        for how in ("write", "shrink", "reap", "alloc"):
            m = boot(cpus=1)
            if how == "write":
                res = slab.slabinfo_write(m, "kmem_cache 10 5 1\n")
                kc = m.slab.cache_cache
                res = (res, kc.limit, kc.batchcount, kc.shared_array.limit)
            elif how == "shrink":
                c32 = slab.find_cache(m, "size-32")
                res = (slab.kmem_cache_shrink(m, c32), c32.array[0].avail,
                       c32.shared_array.avail, c32.slabs_free.nr)
            elif how == "reap":
                res = slab.cache_reap(m)
            else:
                res = slab.kmem_cache_alloc(m, slab.find_cache(m, "size-64"),
                                            GFP_KERNEL) is not None
            c64 = slab.find_cache(m, "size-64")
            out.append((res, m.slab.g_cpucache_up, c64.limit, c64.batchcount))
        return out
    def failed():
        # memory used up before the first slab call: the bootstrap cannot finish and is
        # undone (spec/slab.md "Boot": all or nothing); each call answers as for a
        # failure: shrink of the slab-less size-32 0, the write -ENOMEM, alloc NULL,
        # reap nothing; the slab layer stays as boot left it
        from ..model import page_alloc as pa
        m = boot(cpus=1)
        for order in range(10, -1, -1):
            while pa.alloc_pages(m, GFP_KERNEL, order) is not None:
                pass
        c32 = slab.find_cache(m, "size-32")
        before = pickle.dumps(m.slab)
        out = [slab.kmem_cache_shrink(m, c32), slab.slabinfo_write(m, "size-32 4 2 1\n"),
               slab.kmem_cache_alloc(m, c32, GFP_KERNEL), slab.cache_reap(m)]
        return out, pickle.dumps(m.slab) == before
    return [Fact("slab calls when the deferred bootstrap cannot finish (memory used up)",
                 "mm/slab.c kmem_cache_init (the model's deferred bootstrap, spec/slab.md)",
                 lambda: ([0, _ENOMEM, None, None], True), failed),
            Fact("the first slab call (slabinfo_write, shrink, reap, alloc) runs the "
                 "bootstrap first", "mm/slab.c kmem_cache_init, enable_cpucache, "
                 "slabinfo_write", lambda: [((len("kmem_cache 10 5 1\n"), 10, 5, 5),
                                             "FULL", 120, 60), ((1, 0, 0, 0), "FULL", 120, 60),
                                            (None, "FULL", 120, 60),
                                            (True, "FULL", 120, 60)], model)]



def _sweep_nomem_facts() -> list[Fact]:
    """The arrays' allocation failing (2.6.12 mm/slab.c). do_tune_cpucache: on 2 CPUs,
    every order-5 block taken and one size-131072 object parked, "tw 32764 1 0" gets
    CPU 0's 131072-byte array from the parked object and none for CPU 1 (no order-5
    slab, and the kmalloc fallback of alloc_arraycache finds the same cache): the
    arrays made so far are kfree'd (`for (i--; i >= 0; i--) kfree(new.new[i])`),
    -ENOMEM, the cache keeps its arrays and tunables, the parked object is back.
    cpuup_callback: CPU 1 down, memory and size-512 used up, cpu_up(1): CPU_UP_PREPARE
    gives arrays to the caches at the head of the chain (a 5000-byte cache, then the
    large general caches, whose arrays of 8 or 24 entries come from size-64 / size-128)
    until a cache needing a size-512 array fails: NOTIFY_BAD, CPU_UP_CANCELED takes the
    arrays made back (free_limit set by CPU_UP_PREPARE from one CPU online, lowered
    by batchcount again: as before for the boot caches, max(2, 2) * b + num -> b +
    num -> 2b + num -> b + num, but 5 for the 5000-byte cache made after boot, limit
    8, batchcount 4, num 1: 3 * 4 + 1 = 13 -> 9 -> 2 * 4 + 1 = 9 -> 5), the caches
    not reached are skipped (the model's kinder rule,
    spec/slab.md), cpu_up -EINVAL, CPU 1 stays offline with no array anywhere."""
    from ..model import cpu as mcpu, kmalloc as km, page_alloc as pa, slab
    from ..model.boot import boot
    from ..model.gfp import GFP_KERNEL

    def exhaust(m, low):
        for order in range(10, low - 1, -1):
            while pa.alloc_pages(m, GFP_KERNEL, order) is not None:
                pass

    def tune():
        m = boot(cpus=2)
        c = slab.kmem_cache_create(m, "tw", 100, 0, 0)
        km.kfree(m, km.kmalloc(m, 131072, GFP_KERNEL))
        exhaust(m, 5)
        big = slab.find_cache(m, "size-131072")
        old = list(c.array)
        parked = list(big.array[0].entry)
        res = slab.slabinfo_write(m, "tw 32764 1 0\n", 0)
        return (res, c.limit, c.batchcount, all(a is b for a, b in zip(c.array, old)),
                big.array[0].entry == parked, big.array[1].avail)

    def hotplug():
        m = boot(cpus=2)
        slab.kmem_cache_create(m, "tw5000", 5000, 0, 0)
        down = mcpu.cpu_down(m, 1, 0)
        before = [c.free_limit for c in m.slab.cache_chain]
        exhaust(m, 0)
        while km.kmalloc(m, 512, GFP_KERNEL) is not None:
            pass
        res = mcpu.cpu_up(m, 1, 0)
        return (down, res, mcpu.cpu_online_map(m),
                {c.name: c.free_limit for c, b in zip(m.slab.cache_chain, before)
                 if c.free_limit != b},
                [c.name for c in m.slab.cache_chain if c.array[1] is not None])
    return [Fact("do_tune_cpucache: CPU 1's array cannot be allocated: -ENOMEM, CPU 0's "
                 "new one kfree'd, old arrays kept", "mm/slab.c do_tune_cpucache, "
                 "alloc_arraycache, slabinfo_write",
                 lambda: (_ENOMEM, 120, 60, True, True, 0), tune),
            Fact("cpu_up: CPU_UP_PREPARE fails part-way; CPU_UP_CANCELED undoes it",
                 "mm/slab.c cpuup_callback; kernel/cpu.c cpu_up",
                 lambda: (0, -22, [0], {"tw5000": (1 + 1) * 4 + 1 - 4}, []), hotplug)]


FACT_GROUPS = [_sweep_array_workload_facts, _sweep_hotplug_facts,
               _sweep_slabinfo_write_facts, _sweep_enable_cpucache_facts,
               _sweep_reap_chain_facts, _sweep_free_misuse_facts,
               _sweep_alloc_misuse_facts, _sweep_slub_facts, _sweep_shrink_facts,
               _sweep_first_call_facts, _sweep_nomem_facts]
