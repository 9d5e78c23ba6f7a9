"""Rules over the slab and kmalloc API, valid and invalid calls (model/slab.py, kmalloc.py).

Interleaved with the page-level rules in WholeModelMachine: caches are created and
destroyed, objects of random sizes (0 and too large included) come and go, shrink runs
while slabs are fragmented, CPUs go down and come back (cpu_down / cpu_up, 2.6.12
kernel/cpu.c) and caches are retuned (slabinfo_write); the base machine checks every
invariant after every step. Calls run on online CPUs only; calls naming an offline CPU
are checked as misuse.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, consumes, precondition, rule

from kmemspec.model import cpu as hotplug
from kmemspec.model import kmalloc as km
from kmemspec.model import slab
from kmemspec.model.gfp import (GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, __GFP_ZERO,
                                format_gfp)

from .base import snapshot

SIZES = st.one_of(st.sampled_from([4, 24, 100, 256, 600, 1100, 4096, 9000]),
                  st.integers(4, 20000))
KMALLOC_SIZES = st.one_of(st.sampled_from([0, 1, 32, 33, 100, 4096, 131072, 131073, 1 << 20]),
                          st.integers(0, 140000))
FLAGS = st.sampled_from([0, slab.SLAB_HWCACHE_ALIGN, slab.SLAB_CACHE_DMA,
                         slab.SLAB_HWCACHE_ALIGN | slab.SLAB_RECLAIM_ACCOUNT])


CPUS = st.integers(0, 7)
# a module-level name: inside a class body __GFP_ZERO would be name-mangled
GFP_KERNEL_ZERO = GFP_KERNEL | __GFP_ZERO


def _ready(self):
    return self.machine is not None


def _cpu(self, cpu: int) -> int:
    """A drawn CPU folded onto the machine's online CPUs."""
    online = hotplug.cpu_online_map(self.machine)
    return online[cpu % len(online)]


# slabinfo_write tunables: valid, invalid (0, negative, batchcount > limit) and too
# large for any general cache (40000: 16 + 4*40000 bytes > 131072)
LIMITS = st.sampled_from([0, 1, 2, 4, 8, 24, 120, 40000])
BATCHES = st.sampled_from([0, 1, 2, 3, 12, 60])
SHAREDS = st.sampled_from([-1, 0, 1, 2, 8])


class SlabRules:
    caches = Bundle("caches")
    objects = Bundle("objects")

    # bookkeeping the rules need (not machine state): name -> live objects, dead names
    def _slab_book(self):
        if not hasattr(self, "_slab_live"):
            self._slab_live = {}
            self._slab_dead = set()
            self._slab_n = 0
        return self._slab_live

    def _cache(self, name):
        return slab.find_cache(self.machine, name)

    @precondition(_ready)
    @rule(target=caches, size=SIZES, align=st.sampled_from([0, 0, 8, 64]), flags=FLAGS)
    def kmem_cache_create(self, size, align, flags):
        live = self._slab_book()
        name = f"cache{self._slab_n}"
        self._slab_n += 1
        self.call({"op": "kmem_cache_create", "name": name, "size": size, "align": align,
                   "flags": flags})
        cachep = slab.kmem_cache_create(self.machine, name, size, align, flags)
        if cachep is None:
            return None
        assert cachep.objsize >= size and cachep.num >= 1
        live[name] = 0
        return name

    @rule(target=objects, name=caches, atomic=st.booleans(), cpu=CPUS)
    def kmem_cache_alloc(self, name, atomic, cpu):
        live = self._slab_book()
        if name is None or name in self._slab_dead:
            return None
        cachep = self._cache(name)
        cpu = _cpu(self, cpu)
        gfp = (GFP_ATOMIC if atomic else GFP_KERNEL) | (GFP_DMA if cachep.gfpflags else 0)
        self.call({"op": "kmem_cache_alloc", "cache": name, "gfp": format_gfp(gfp),
                   "cpu": cpu})
        addr = slab.kmem_cache_alloc(self.machine, cachep, gfp, cpu)
        if addr is None:
            return None
        live[name] += 1
        return (name, addr, cachep.objsize)

    @precondition(_ready)
    @rule(target=objects, size=KMALLOC_SIZES, dma=st.booleans(), cpu=CPUS)
    def kmalloc(self, size, dma, cpu):
        self._slab_book()
        cpu = _cpu(self, cpu)
        gfp = GFP_KERNEL | (GFP_DMA if dma else 0)
        self.call({"op": "kmalloc", "size": size, "gfp": format_gfp(gfp), "cpu": cpu})
        addr = km.kmalloc(self.machine, size, gfp, cpu)
        sizes = self.machine.profile.kmalloc_sizes
        if size > sizes[-1]:
            assert addr is None, "2.6.12 kmalloc beyond size-131072 must be NULL"
        if addr is None:
            return None
        # the smallest class that holds the request (include/linux/kmalloc_sizes.h)
        want = min(s for s in sizes if s >= size)
        assert km.ksize(self.machine, addr) == want
        return (None, addr, want)

    def _free(self, obj, cpu=0):
        name, addr, _ = obj
        if name is None:
            self.call({"op": "kfree", "addr": addr, "cpu": cpu})
            km.kfree(self.machine, addr, cpu)
        else:
            self.call({"op": "kmem_cache_free", "cache": name, "addr": addr, "cpu": cpu})
            slab.kmem_cache_free(self.machine, self._cache(name), addr, cpu)
            self._slab_live[name] -= 1

    @rule(obj=consumes(objects), cpu=CPUS)
    def free_object(self, obj, cpu):
        if obj is not None:
            self._free(obj, _cpu(self, cpu))

    @rule(obj=consumes(objects), cpu=CPUS)
    def double_free(self, obj, cpu):
        if obj is None:
            return
        self._free(obj, _cpu(self, cpu))
        name, addr, _ = obj
        self.call({"op": "kfree", "addr": addr, "expect": {"error": "double_free"}})
        self.expect_misuse({"double_free"}, km.kfree, addr)

    @rule(obj=objects, name=caches)
    def free_to_the_wrong_cache(self, obj, name):
        if obj is None or name is None or name in self._slab_dead or obj[0] == name:
            return
        self.call({"op": "kmem_cache_free", "cache": name, "addr": obj[1],
                   "expect": {"error": "wrong_cache"}})
        self.expect_misuse({"wrong_cache"}, slab.kmem_cache_free, self._cache(name), obj[1])

    @rule(obj=objects, data=st.data())
    def free_inside_an_object(self, obj, data):
        if obj is None:
            return
        delta = data.draw(st.integers(1, obj[2] - 1))
        self.call({"op": "kfree", "addr": obj[1] + delta,
                   "expect": {"error": "not_object_start"}})
        self.expect_misuse({"not_object_start"}, km.kfree, obj[1] + delta)

    @rule(obj=objects)
    def ksize_is_the_object_size(self, obj):
        if obj is not None:
            assert km.ksize(self.machine, obj[1]) == obj[2]

    @rule(name=caches, cpu=CPUS)
    def kmem_cache_shrink(self, name, cpu):
        if name is None or name in self._slab_dead:
            return
        cachep = self._cache(name)
        cpu = _cpu(self, cpu)
        self.call({"op": "kmem_cache_shrink", "cache": name, "cpu": cpu})
        busy = slab.kmem_cache_shrink(self.machine, cachep, cpu)
        # every array is drained first, so only objects callers hold keep a slab
        assert busy == int(self._slab_live[name] > 0)
        assert cachep.slabs_free.nr == 0
        assert not any(ac.entry for ac in cachep.array if ac is not None)
        # (no shared array if do_tune_cpucache's kmalloc of it failed: ignored, as 2.6.12)
        assert cachep.shared_array is None or not cachep.shared_array.entry

    @precondition(_ready)
    @rule(cpu=CPUS)
    def cache_reap(self, cpu):
        self._slab_book()
        cpu = _cpu(self, cpu)
        self.call({"op": "cache_reap", "cpu": cpu})
        slab.cache_reap(self.machine, cpu)

    @rule(name=caches, cpu=CPUS)
    def alloc_with_gfp_zero(self, name, cpu):
        """__GFP_ZERO is fine until the cache must grow; then cache_grow BUG()s."""
        if name is None or name in self._slab_dead:
            return
        cachep = self._cache(name)
        cpu = _cpu(self, cpu)
        gfp = GFP_KERNEL_ZERO | (GFP_DMA if cachep.gfpflags else 0)
        if slab._must_grow(cachep, cpu):
            self.call({"op": "kmem_cache_alloc", "cache": name, "gfp": format_gfp(gfp),
                       "cpu": cpu, "expect": {"error": "bad_slab_gfp"}})
            self.expect_misuse({"bad_slab_gfp"}, slab.kmem_cache_alloc, cachep, gfp, cpu)
            return
        self.call({"op": "kmem_cache_alloc", "cache": name, "gfp": format_gfp(gfp),
                   "cpu": cpu})
        addr = slab.kmem_cache_alloc(self.machine, cachep, gfp, cpu)
        assert addr is not None
        self.call({"op": "kmem_cache_free", "cache": name, "addr": addr, "cpu": cpu})
        slab.kmem_cache_free(self.machine, cachep, addr, cpu)

    @rule(name=caches, cpu=CPUS)
    def kmem_cache_destroy(self, name, cpu):
        if name is None:
            return
        if name in self._slab_dead:
            self.call({"op": "kmem_cache_alloc", "cache": name, "gfp": "GFP_KERNEL",
                       "expect": {"error": "bad_cache"}})
            return
        cachep = self._cache(name)
        cpu = _cpu(self, cpu)
        self.call({"op": "kmem_cache_destroy", "cache": name, "cpu": cpu})
        ret = slab.kmem_cache_destroy(self.machine, cachep, cpu)
        # 2.6.12: 1 (cache kept, back at the head of cache_chain) while objects are held
        if self._slab_live[name]:
            assert ret == 1 and self.machine.slab.cache_chain[0] is cachep
            return
        assert ret == 0
        self._slab_dead.add(name)
        self.expect_misuse({"destroyed_cache"}, slab.kmem_cache_alloc, cachep, GFP_KERNEL)

    @precondition(_ready)
    @rule()
    def kmalloc_from_highmem_is_a_bug(self):
        self.expect_misuse({"highmem_slab"}, km.kmalloc, 64, GFP_HIGHUSER)

    # --- CPU hotplug and retuning (2.6.12 kernel/cpu.c, mm/slab.c) -----------------------

    @precondition(_ready)
    @rule(cpu=CPUS)
    def cpu_down(self, cpu):
        """Return codes as 2.6.12 cpu_down gives them; on success the CPU has no array
        in any cache and empty page lists, and calls on it are misuse."""
        self._slab_book()
        m = self.machine
        cpu %= m.cpus
        online = hotplug.cpu_online_map(m)
        was_ready = m.slab.ready
        self.call({"op": "cpu_down", "cpu": cpu})
        before = snapshot(m)
        ret = hotplug.cpu_down(m, cpu)
        if len(online) == 1 or cpu == 0:
            want = -hotplug.EBUSY
        elif cpu not in online:
            want = -hotplug.EINVAL
        elif not was_ready and not m.slab.ready:
            # the slab bootstrap could not finish: it gave its pages back (the kernel
            # would have panicked at boot), so the page lists may differ
            assert ret == -hotplug.EBUSY and hotplug.cpu_online_map(m) == online
            return
        else:
            want = 0
        assert ret == want, f"cpu_down({cpu}) = {ret}, 2.6.12 gives {want}"
        if ret:
            unchanged = snapshot(m) == before
            assert unchanged, "a failed cpu_down changed the state"
            return
        assert hotplug.cpu_online_map(m) == [c for c in online if c != cpu]
        assert all(c.array[cpu] is None for c in m.slab.cache_chain if c.array is not None)
        assert all(p.count == 0 for z in m.zones if z.pageset for p in z.pageset[cpu].pcp)
        self.call({"op": "kmalloc", "size": 32, "gfp": "GFP_KERNEL", "cpu": cpu,
                   "expect": {"error": "cpu_offline"}})
        self.expect_misuse({"cpu_offline"}, km.kmalloc, 32, GFP_KERNEL, cpu)

    @precondition(_ready)
    @rule(cpu=CPUS)
    def cpu_up(self, cpu):
        """-EINVAL for an online CPU; else CPU_UP_PREPARE gives it an array in every
        cache with the cache's limit and batchcount (or, short of memory, -EINVAL and
        the CPU stays offline without arrays)."""
        self._slab_book()
        m = self.machine
        cpu %= m.cpus
        online = hotplug.cpu_online_map(m)
        self.call({"op": "cpu_up", "cpu": cpu})
        before = snapshot(m)
        ret = hotplug.cpu_up(m, cpu)
        if cpu in online:
            unchanged = snapshot(m) == before
            assert ret == -hotplug.EINVAL and unchanged
            return
        arrays = [c for c in m.slab.cache_chain if c.array is not None]
        if ret:
            assert ret == -hotplug.EINVAL and hotplug.cpu_online_map(m) == online
            assert all(c.array[cpu] is None for c in arrays)
            return
        assert hotplug.cpu_online_map(m) == sorted(online + [cpu])
        for c in arrays:
            ac = c.array[cpu]
            assert (ac.avail, ac.limit, ac.batchcount) == (0, c.limit, c.batchcount)

    def _slabinfo_write(self, name, limit, batchcount, shared, cpu):
        m = self.machine
        cpu = _cpu(self, cpu)
        cachep = self._cache(name)
        self.call({"op": "slabinfo_write", "name": name, "limit": limit,
                   "batchcount": batchcount, "shared": shared, "cpu": cpu})
        line = f"{name} {limit} {batchcount} {shared}\n"
        before = snapshot(m)
        # before the slab bootstrap the tunables are the boot head arrays' (1, 1)
        tunables = (cachep.limit, cachep.batchcount) if m.slab.ready else None
        ret = slab.slabinfo_write(m, line, cpu)
        if limit < 1 or batchcount < 1 or batchcount > limit or shared < 0:
            unchanged = snapshot(m) == before
            assert ret == -slab.EINVAL and unchanged
            return
        if ret == -slab.ENOMEM:
            # a CPU's new array found no memory: the old arrays stay
            assert tunables is None or (cachep.limit, cachep.batchcount) == tunables
            return
        assert ret == len(line)
        online = hotplug.cpu_online_map(m)
        assert (cachep.limit, cachep.batchcount) == (limit, batchcount)
        assert cachep.free_limit == (1 + len(online)) * batchcount + cachep.num
        for c, ac in enumerate(cachep.array):
            if c in online:
                assert (ac.limit, ac.batchcount) == (limit, batchcount)
            else:
                assert ac is None

    @rule(name=caches, limit=LIMITS, batchcount=BATCHES, shared=SHAREDS, cpu=CPUS)
    def slabinfo_write(self, name, limit, batchcount, shared, cpu):
        """Retune a created cache: kernel return codes; the new tunables in place."""
        if name is None or name in self._slab_dead:
            return
        self._slabinfo_write(name, limit, batchcount, shared, cpu)

