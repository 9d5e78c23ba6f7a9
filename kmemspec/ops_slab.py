"""Scenario operations and the /proc/slabinfo state view of the slab layer.

A cache argument is the cache's name ("size-32", or the name kmem_cache_create
returned, bound with "as"); an object is its address. Flags are integers or
expressions such as "SLAB_HWCACHE_ALIGN | SLAB_CACHE_DMA".
"""

from __future__ import annotations

from .model import kmalloc as km
from .model import slab
from .model.errors import KernelBug
from .model.gfp import parse_gfp
from .scenario import as_int, op, state_view


def _cache(machine, name):
    if not isinstance(name, str):
        raise ValueError(f"cache must be a cache name, not {name!r}")
    cachep = slab.find_cache(machine, name)
    if cachep is None:
        # a stale or made-up kmem_cache_t pointer: the kernel would oops
        raise KernelBug("bad_cache", f"no cache named {name!r} is on cache_chain")
    return cachep


def parse_slab_flags(text) -> int:
    """"SLAB_HWCACHE_ALIGN | SLAB_CACHE_DMA" (or an int, or 0) -> flags."""
    if isinstance(text, bool):
        raise ValueError(f"flags must be an integer or SLAB_* names, not {text!r}")
    if isinstance(text, int):
        return text
    if not isinstance(text, str):
        raise ValueError(f"flags must be an integer or SLAB_* names, not {text!r}")
    flags = 0
    for part in text.split("|"):
        name = part.strip()
        if name in slab.SLAB_FLAG_NAMES:
            flags |= slab.SLAB_FLAG_NAMES[name]
        else:
            try:
                flags |= int(name, 0)
            except ValueError:
                raise ValueError(f"unknown slab flag {name!r} (known: "
                                 f"{', '.join(slab.SLAB_FLAG_NAMES)})") from None
    return flags


def _addr(value):
    return None if value is None else as_int(value, "addr")


def _cpu(machine, value) -> int:
    """The optional "cpu" argument: a CPU of the booted machine (default 0)."""
    return slab.check_cpu(machine, as_int(value, "cpu"))


@op("kmem_cache_create", "name", "size", "align", "flags", "ctor", "cpu",
    optional=("align", "flags", "ctor", "cpu"))
def _kmem_cache_create(machine, name, size, align=0, flags=0, ctor=None, cpu=0):
    if ctor is not None and not isinstance(ctor, str):
        raise ValueError("ctor is named by a string")
    cpu = _cpu(machine, cpu)
    cachep = slab.kmem_cache_create(machine, name, as_int(size, "size"),
                                    as_int(align, "align"), parse_slab_flags(flags), ctor,
                                    cpu)
    return None if cachep is None else cachep.name


@op("kmem_cache_alloc", "cache", "gfp", "cpu", optional=("cpu",))
def _kmem_cache_alloc(machine, cache, gfp, cpu=0):
    cpu = _cpu(machine, cpu)
    return slab.kmem_cache_alloc(machine, _cache(machine, cache), parse_gfp(gfp), cpu)


@op("kmem_cache_free", "cache", "addr", "cpu", optional=("cpu",), void=True)
def _kmem_cache_free(machine, cache, addr, cpu=0):
    cpu = _cpu(machine, cpu)
    slab.kmem_cache_free(machine, _cache(machine, cache), _addr(addr), cpu)


@op("kmem_cache_shrink", "cache", "cpu", optional=("cpu",))
def _kmem_cache_shrink(machine, cache, cpu=0):
    cpu = _cpu(machine, cpu)
    return slab.kmem_cache_shrink(machine, _cache(machine, cache), cpu)


@op("kmem_cache_destroy", "cache", "cpu", optional=("cpu",))
def _kmem_cache_destroy(machine, cache, cpu=0):
    cpu = _cpu(machine, cpu)
    return slab.kmem_cache_destroy(machine, _cache(machine, cache), cpu)


@op("cache_reap", "cpu", optional=("cpu",), void=True)
def _cache_reap(machine, cpu=0):
    slab.cache_reap(machine, _cpu(machine, cpu))


@op("slabinfo_write", "name", "limit", "batchcount", "shared", "cpu", optional=("cpu",))
def _slabinfo_write(machine, name, limit, batchcount, shared, cpu=0):
    """`echo "name limit batchcount shared" > /proc/slabinfo` (2.6.12 slabinfo_write):
    the byte count written, or -EINVAL / -ENOMEM."""
    if not isinstance(name, str):
        raise ValueError(f"name must be a cache name, not {name!r}")
    line = (f"{name} {as_int(limit, 'limit')} {as_int(batchcount, 'batchcount')} "
            f"{as_int(shared, 'shared')}\n")
    return slab.slabinfo_write(machine, line, _cpu(machine, cpu))


@op("kmalloc", "size", "gfp", "cpu", optional=("cpu",))
def _kmalloc(machine, size, gfp, cpu=0):
    cpu = _cpu(machine, cpu)
    return km.kmalloc(machine, as_int(size, "size"), parse_gfp(gfp), cpu)


@op("kfree", "addr", "cpu", optional=("cpu",), void=True)
def _kfree(machine, addr, cpu=0):
    cpu = _cpu(machine, cpu)
    km.kfree(machine, _addr(addr), cpu)


@op("ksize", "addr")
def _ksize(machine, addr):
    return km.ksize(machine, _addr(addr))


# mm/slab.c (2.6.12) s_start / s_show: the 2.1 header, then one line per cache
SLABINFO_HEADER = (
    "slabinfo - version: 2.1\n"
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
    " : tunables <limit> <batchcount> <sharedfactor>"
    " : slabdata <active_slabs> <num_slabs> <sharedavail>")


def slabinfo_text(machine) -> str:
    if getattr(machine, "slab", None) is None:
        return ""
    lines = [SLABINFO_HEADER]
    for c in slab.slabinfo(machine):
        t = c["tunables"]
        lines.append(f"{c['name']:<17} {c['active_objs']:6d} {c['num_objs']:6d} "
                     f"{c['objsize']:6d} {c['objperslab']:4d} {c['pagesperslab']:4d}"
                     f" : tunables {t['limit']:4d} {t['batchcount']:4d} "
                     f"{t['sharedfactor']:4d}"
                     f" : slabdata {c['active_slabs']:6d} {c['num_slabs']:6d} "
                     f"{c['sharedavail']:6d}")
    return "\n".join(lines)


def _slabinfo_json(machine):
    return slab.slabinfo(machine) if getattr(machine, "slab", None) is not None else []


state_view("slabinfo", slabinfo_text)(_slabinfo_json)
