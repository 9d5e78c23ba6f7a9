"""Differential checking of a page allocator against the spec (prose: spec/conformance.md).

`PageChecker` drives an implementation (through a driver from isolate.py) and the
model side by side, one call at a time, and raises `ConformanceFailure` at the first
answer the mode does not allow:

* **refine** -- the checks R1..R8 of refine.py against a shadow of the
  implementation's live blocks: any answer the spec allows is accepted.
* **strict** -- everything refine requires, and then S1: the same answer as the
  model's Linux policy (same pfn, NULL at the same calls), S2: free counts equal to
  the model's /proc/buddyinfo for the zone, after init and after every call.

The calls made so far are kept in `calls`, in the adapter's terms, and turn into a
model scenario (`scenario_lines`) that replays them with `kmemspec run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..model.profiles import DEFAULT_PROFILE, get_profile
from .adapter import FLAT_BASE, ModelAllocator, ModelPageAllocator, flat_boot_line
from .isolate import AdapterFault, AdapterRaised
from .refine import (AreaShadow, CacheShadow, ObjectShadow, PkmapShadow, Shadow,
                     cache_geometry_of, canonical_counts, check_alloc, check_cache_alloc,
                     check_cache_create, check_counts, check_kmalloc, check_kmap,
                     check_pkmap_count, check_slab_layout, check_vmalloc, kmalloc_class)

__all__ = ["MODES", "Handle", "Divergence", "ConformanceFailure", "PageChecker",
           "ObjectChecker", "VmallocChecker", "CacheChecker", "HighmemChecker"]

MODES = ("strict", "refine")


@dataclass(eq=False)
class Handle:
    """A block handed out by the implementation (and the model's answer to the same call)."""

    name: str
    order: int                    # page blocks: the order; objects and areas: the size
    pfn: int                      # the implementation's pfn (or address)
    model_pfn: int | None         # the model's answer to the same call (None: NULL there)

    def __repr__(self):
        return self.name


@dataclass
class Divergence:
    step: int                     # index into calls (0 is init)
    op: str
    args: dict
    reason: str                   # which rule, in words
    expected: object              # what the mode allows (text or value)
    actual: object                # what the implementation did
    mode: str

    def to_json(self) -> dict:
        return {"step": self.step, "op": self.op, "args": self.args, "rule": self.reason,
                "expected": self.expected, "actual": self.actual, "mode": self.mode}


class ConformanceFailure(AssertionError):
    """The implementation's answer is not allowed; carries the divergence and the calls."""

    def __init__(self, divergence: Divergence, calls: list[dict], nr_pages: int,
                 profile: str, part: str = "page", page_policy: str = "buddy"):
        self.divergence = divergence
        self.part = part
        self.page_policy = page_policy          # the flat machine's (conform --page-policy)
        self.calls = [dict(c) for c in calls]
        self.nr_pages = nr_pages
        self.profile = profile
        super().__init__(f"step {divergence.step} {divergence.op}: {divergence.reason}")


def _show(value) -> str:
    return "NULL" if value is None else str(value)


class PageChecker:
    """One run: init, then alloc/free calls, each checked as it happens."""

    part = "page"
    model_class = ModelPageAllocator
    # A declared MAX_ORDER below the profile's (`conform --max-order`): the
    # implementation manages orders 0 .. max_order_cap-1 and its free counts have that
    # many orders; the model keeps the profile's and is asked only those orders.
    max_order_cap: int | None = None
    # rules waived by `conform --allow` (e.g. "C4"), and how often each was met; a
    # subclass per run holds its own dict (stateful.machine_for)
    allowed: frozenset = frozenset()
    waived: dict = {}
    # the flat machine's page policy (`conform --page-policy`): "buddy" or "2.6.12"
    page_policy: str = "buddy"

    def __init__(self, driver, mode: str = "refine", *, profile: str = DEFAULT_PROFILE,
                 check_free_counts: bool = True):
        # check_free_counts: use the part's optional introspection (free_counts, ksize,
        # vmalloc_to_pfn) when the implementation offers it
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.driver = driver
        self.mode = mode
        self.profile = profile
        self.model_max_order = get_profile(profile).MAX_ORDER
        self.max_order = (self.model_max_order if self.max_order_cap is None
                          else min(self.max_order_cap, self.model_max_order))
        self.check_free_counts = check_free_counts
        if self.part == "highmem":
            # kmap runs on the highmem machine, which boots "buddy" whatever the policy
            # (spec/conformance.md section 3); its flat machine only stands by
            self.page_policy = "buddy"
        self.model = self.model_class(profile, page_policy=self.page_policy)
        self.calls: list[dict] = []
        self.nr_pages = 0
        self.shadow: Shadow | None = None
        self.counts = False
        self._names = 0

    # --- helpers -----------------------------------------------------------------
    def _fail(self, op: str, args: dict, reason: str, expected, actual):
        rule = reason.split(":", 1)[0]
        if rule in self.allowed:
            # a known deviation the user waived (`conform --allow`): count it, go on
            self.waived[rule] = self.waived.get(rule, 0) + 1
            return
        div = Divergence(len(self.calls) - 1, op, args, reason, expected, actual, self.mode)
        raise ConformanceFailure(div, self.calls, self.nr_pages, self.profile, self.part,
                                 self.page_policy)

    def _call(self, op: str, args: dict, method: str, *argv):
        try:
            return self.driver.call(method, *argv)
        except AdapterRaised as exc:
            self._fail(op, args, f"the implementation {exc}", "an answer", str(exc))
        except AdapterFault as exc:
            self._fail(op, args, f"the implementation {exc}", "an answer", str(exc))

    def _check_counts(self, op: str, args: dict) -> None:
        if not self.counts:
            return
        got = self._call(op, args, "free_counts")
        reason = check_counts(self.shadow, got)
        if reason is None and self.mode == "strict":
            want = self.model.free_counts()
            if list(got) != want:
                reason = f"S2: nr_free per order is {list(got)}; the model has {want}"
        if reason is not None:
            want = (self.model.free_counts() if self.mode == "strict"
                    else canonical_counts(self.shadow))
            self._fail(op, args, reason, {"free_counts": want}, {"free_counts": got})

    # --- the calls -----------------------------------------------------------------
    def start(self, nr_pages: int) -> None:
        """Make a fresh implementation and init it with nr_pages frames."""
        self.nr_pages = nr_pages
        self.shadow = Shadow(nr_pages, self.max_order)
        self.calls = [{"op": "init", "nr_pages": nr_pages, "max_order": self.max_order}]
        self._names = 0
        args = {"nr_pages": nr_pages, "max_order": self.max_order}
        try:
            info = self.driver.reset()
        except AdapterFault as exc:
            self._fail("init", args, f"the implementation {exc} while being created",
                       "an adapter", str(exc))
        if self.part not in info["parts"]:
            raise ValueError(f"{info['name']} implements no {self.part} part "
                             f"(parts: {', '.join(info['parts']) or 'none'})")
        self.info = info
        self.counts = (self.part == "page" and self.check_free_counts
                       and "free_counts" in info["optional"])
        self.block_orders = (self.part == "page" and self.check_free_counts
                             and "block_order" in info["optional"])
        self.model.init(nr_pages, self.model_max_order)
        # page policy 2.6.12: frames a per-CPU list may hold, and the zone's pages_min
        # (refine's R5 and R8 allow what they explain; spec/conformance.md section 3a)
        self.shadow.pcp_high, self.shadow.pages_min = self.model.watermark_limits()
        self._call("init", args, "init", nr_pages, self.max_order)
        self._started(args)
        self._check_counts("init", args)

    def _started(self, args: dict) -> None:
        """Part-specific set-up after init."""

    def alloc(self, order: int) -> Handle | None:
        self._names += 1
        name = f"b{self._names}"
        args = {"order": order}
        self.calls.append({"op": "alloc_pages", "order": order, "as": name})
        ret = self._call("alloc_pages", args, "alloc_pages", order)
        want = self.model.alloc_pages(order)
        self.calls[-1]["ret"] = ret
        self.calls[-1]["model_ret"] = want
        reason = check_alloc(self.shadow, order, ret)
        if reason is not None:
            expected = ("NULL" if order >= self.max_order else
                        "an aligned free block inside the frames, or NULL only if none exists")
            if self.mode == "strict":
                expected = want
            self._fail("alloc_pages", args, reason, expected, ret)
        if self.mode == "strict" and ret != want:
            self._fail("alloc_pages", args, f"S1: the Linux policy (model) returns "
                       f"{_show(want)}, the implementation {_show(ret)}", want, ret)
        if ret is None:
            # refine: the model may have got a block here; it keeps it, exactly as a
            # replay of the scenario on the model does
            return None
        self.shadow.add(ret, order)
        self._check_block_order("alloc_pages", args, ret, order)
        self._check_counts("alloc_pages", args)
        return Handle(name, order, ret, want)

    def _check_block_order(self, op: str, args: dict, pfn: int, order: int | None) -> None:
        """R9: the order the implementation records for the block at pfn (None: no
        handed-out block starts there), when it offers block_order()."""
        if not getattr(self, "block_orders", False):
            return
        got = self._call(op, args, "block_order", pfn)
        if got != order:
            what = "no handed-out block" if order is None else f"a block of order {order}"
            self._fail(op, args, f"R9: block_order({pfn}) is {_show(got)}; pfn {pfn} is "
                       f"the start of {what}", {"block_order": order},
                       {"block_order": got})

    def free(self, handle: Handle) -> None:
        args = {"pfn": handle.pfn, "order": handle.order}
        self.calls.append({"op": "free_pages", "block": handle.name, "pfn": handle.pfn,
                           "order": handle.order})
        self._call("free_pages", args, "free_pages", handle.pfn, handle.order)
        self.shadow.remove(handle.pfn)
        if handle.model_pfn is not None:
            self.model.free_pages(handle.model_pfn, handle.order)
        self._check_block_order("free_pages", args, handle.pfn, None)
        self._check_counts("free_pages", args)


class ObjectChecker(PageChecker):
    """kmalloc/kfree on an implementation, checked against K1..K8 (refine.py).

    strict adds S1: the same address as the model's kmalloc on the flat machine --
    only an implementation that reproduces 2.6.12 SLAB exactly (its bootstrap, cache
    geometry, colouring and slab order) passes; the model itself does.
    """

    part = "object"
    model_class = ModelAllocator

    def _started(self, args: dict) -> None:
        from ..model.profiles import get_profile as _get
        self.oshadow = ObjectShadow(self.nr_pages, _get(self.profile))
        self.has_ksize = self.check_free_counts and "ksize" in self.info["optional"]

    def kmalloc(self, size: int) -> Handle | None:
        self._names += 1
        name = f"o{self._names}"
        args = {"size": size}
        self.calls.append({"op": "kmalloc", "size": size, "as": name})
        ret = self._call("kmalloc", args, "kmalloc", size)
        want = self.model.kmalloc(size)
        self.calls[-1]["ret"] = ret
        self.calls[-1]["model_ret"] = want
        reason = check_kmalloc(self.oshadow, size, ret)
        if reason is None and self.mode == "strict" and ret != want:
            reason = (f"S1: the model's kmalloc returns {_show(want)}, the implementation "
                      f"{_show(ret)}")
        if reason is None and ret is not None and self.has_ksize:
            got = self._call("kmalloc", args, "ksize", ret)
            cls = kmalloc_class(self.oshadow.profile, size)
            if got != cls:
                reason = f"K8: ksize of kmalloc({size}) is {got}, the class is size-{cls}"
        if reason is not None:
            self._fail("kmalloc", args, reason, want if self.mode == "strict" else
                       "an aligned object of its class, apart from every live one", ret)
        if ret is None:
            return None
        self.oshadow.live[ret] = (size, kmalloc_class(self.oshadow.profile, size))
        return Handle(name, size, ret, want)

    def kfree(self, handle: Handle) -> None:
        args = {"addr": handle.pfn}
        self.calls.append({"op": "kfree", "block": handle.name, "addr": handle.pfn,
                           "size": handle.order})
        self._call("kfree", args, "kfree", handle.pfn)
        del self.oshadow.live[handle.pfn]
        if handle.model_pfn is not None:
            self.model.kfree(handle.model_pfn)


class VmallocChecker(PageChecker):
    """vmalloc/vfree on an implementation, checked against V1..V7 (refine.py).

    strict adds S1: the same address as the model's vmalloc (first fit over the range,
    2.6.12 __get_vm_area), NULL at the same calls.
    """

    part = "vmalloc"
    model_class = ModelAllocator

    def _started(self, args: dict) -> None:
        from ..model.profiles import get_profile as _get
        vsize = self.model.vmalloc_size()
        self.calls[0]["vsize"] = vsize
        self._call("init", args, "vmalloc_init", vsize)
        self.ashadow = AreaShadow(self.nr_pages, vsize, _get(self.profile))
        self.has_lookup = self.check_free_counts and "vmalloc_to_pfn" in self.info["optional"]

    def _lookup(self, op: str, args: dict, addr: int):
        return self._call(op, args, "vmalloc_to_pfn", addr)

    def vmalloc(self, size: int) -> Handle | None:
        self._names += 1
        name = f"v{self._names}"
        args = {"size": size}
        self.calls.append({"op": "vmalloc", "size": size, "as": name})
        ret = self._call("vmalloc", args, "vmalloc", size)
        want = self.model.vmalloc(size)
        self.calls[-1]["ret"] = ret
        self.calls[-1]["model_ret"] = want
        reason = check_vmalloc(self.ashadow, size, ret)
        if reason is None and self.mode == "strict" and ret != want:
            reason = (f"S1: the model's vmalloc returns {_show(want)}, the implementation "
                      f"{_show(ret)}")
        if reason is None and ret is not None and self.has_lookup:
            reason = self._check_mapped(args, ret, size)
        if reason is not None:
            self._fail("vmalloc", args, reason, want if self.mode == "strict" else
                       "a page-aligned area with its guard page, apart from every live one",
                       ret)
        if ret is None:
            return None
        self.ashadow.live[ret] = (size, self.ashadow.span(size))
        return Handle(name, size, ret, want)

    def _check_mapped(self, args: dict, addr: int, size: int) -> str | None:
        """V7 for a new area: its pages map to fresh frames, its guard page to none."""
        page = self.ashadow.page_size
        span = self.ashadow.span(size)
        seen = set()
        for offset in range(0, span - page, page):
            pfn = self._lookup("vmalloc", args, addr + offset)
            if type(pfn) is not int or not 0 <= pfn < self.nr_pages:
                return (f"V7: page {offset // page} of the area at {addr} maps to "
                        f"{_show(pfn)}, not a frame 0..{self.nr_pages - 1}")
            if pfn in seen or pfn in self.ashadow.pfns:
                return f"V7: frame {pfn} is mapped twice (page {offset // page} of {addr})"
            seen.add(pfn)
        guard = self._lookup("vmalloc", args, addr + span - page)
        if guard is not None:
            return f"V7: the guard page at {addr + span - page} maps frame {guard}"
        for pfn in seen:
            self.ashadow.pfns[pfn] = addr
        return None

    def vfree(self, handle: Handle) -> None:
        args = {"addr": handle.pfn}
        self.calls.append({"op": "vfree", "block": handle.name, "addr": handle.pfn,
                           "size": handle.order})
        self._call("vfree", args, "vfree", handle.pfn)
        size, span = self.ashadow.live.pop(handle.pfn)
        for pfn in [p for p, a in self.ashadow.pfns.items() if a == handle.pfn]:
            del self.ashadow.pfns[pfn]
        if handle.model_pfn is not None:
            self.model.vfree(handle.model_pfn)
        if self.has_lookup:
            page = self.ashadow.page_size
            for offset in range(0, span, page):
                pfn = self._lookup("vfree", args, handle.pfn + offset)
                if pfn is not None:
                    self._fail("vfree", args, f"V7: after vfree, page {offset // page} of "
                               f"the area at {handle.pfn} still maps frame {pfn}",
                               "no mapping", pfn)


class CacheChecker(PageChecker):
    """kmem_cache_create/alloc/free/destroy on an implementation, checked against C1..C8.

    strict adds S1: the same handle-NULLness and object addresses as the model's
    kmem_cache_* on the flat machine (2.6.12 geometry, slab order and colour_next
    cycling), and S2: slab_layout() equal to the model's after every call.
    """

    part = "cache"
    model_class = ModelAllocator

    def _started(self, args: dict) -> None:
        self.cshadow = CacheShadow(self.nr_pages, get_profile(self.profile))
        self.has_layout = self.check_free_counts and "slab_layout" in self.info["optional"]
        self.slab_state = self.model.machine.slab
        self.model_handles: dict[int, int | None] = {}

    def _check_layouts(self, op: str, args: dict) -> None:
        if not self.has_layout:
            return
        got = {h: self._call(op, args, "slab_layout", h) for h in self.cshadow.geometry}
        for handle, layout in got.items():
            others = {}
            for h, lay in got.items():
                if h != handle and isinstance(lay, (list, tuple)):
                    for entry in lay:
                        if isinstance(entry, (list, tuple)) and entry and type(entry[0]) is int:
                            others[entry[0]] = (h, self.cshadow.slab_bytes(h))
            reason = check_slab_layout(self.cshadow, handle, layout, others)
            if reason is None and self.mode == "strict":
                want = self.model.slab_layout(self.model_handles[handle])
                if sorted(list(e) for e in layout) != want:
                    reason = (f"S2: slab_layout of cache {handle} is "
                              f"{sorted(list(e) for e in layout)}; the model's (2.6.12 "
                              f"colour_next cycling) is {want}")
            if reason is not None:
                self._fail(op, args, reason, "the spec's slab geometry" if self.mode ==
                           "refine" else {"slab_layout": self.model.slab_layout(
                               self.model_handles[handle])}, {"slab_layout": layout})

    def cache_create(self, size: int, align: int, flags: int) -> Handle | None:
        self._names += 1
        name = f"c{self._names}"
        args = {"name": name, "size": size, "align": align, "flags": flags}
        self.calls.append({"op": "kmem_cache_create", "size": size, "align": align,
                           "flags": flags, "as": name})
        geo = cache_geometry_of(self.cshadow.profile, size, align, flags,
                                offslab_limit=self.slab_state.offslab_limit,
                                slab_break_gfp_order=self.slab_state.slab_break_gfp_order)
        ret = self._call("kmem_cache_create", args, "kmem_cache_create", name, size, align,
                         flags)
        want = self.model.kmem_cache_create(name, size, align, flags)
        self.calls[-1]["ret"] = ret
        self.calls[-1]["model_ret"] = want
        reason = check_cache_create(self.cshadow, geo, ret)
        if reason is None and self.mode == "strict" and (ret is None) != (want is None):
            reason = (f"S1: the model's kmem_cache_create returns "
                      f"{'NULL' if want is None else 'a cache'}, the implementation "
                      f"{_show(ret)}")
        if reason is not None:
            self._fail("kmem_cache_create", args, reason, "a handle", ret)
        if ret is None:
            return None
        self.cshadow.geometry[ret] = geo
        self.model_handles[ret] = want
        return Handle(name, size, ret, want)

    def cache_alloc(self, cache: Handle) -> Handle | None:
        self._names += 1
        name = f"o{self._names}"
        args = {"cache": cache.name}
        self.calls.append({"op": "kmem_cache_alloc", "cache": cache.name, "as": name})
        ret = self._call("kmem_cache_alloc", args, "kmem_cache_alloc", cache.pfn)
        want = (self.model.kmem_cache_alloc(cache.model_pfn)
                if cache.model_pfn is not None else None)
        self.calls[-1]["ret"] = ret
        self.calls[-1]["model_ret"] = want
        reason = check_cache_alloc(self.cshadow, cache.pfn, ret)
        if reason is None and self.mode == "strict" and ret != want:
            reason = (f"S1: the model's kmem_cache_alloc returns {_show(want)}, the "
                      f"implementation {_show(ret)}")
        if reason is not None:
            self._fail("kmem_cache_alloc", args, reason, want if self.mode == "strict" else
                       "an aligned object apart from every live one", ret)
        if ret is None:
            return None
        self.cshadow.objects[ret] = cache.pfn
        self._check_layouts("kmem_cache_alloc", args)
        handle = Handle(name, cache.order, ret, want)
        handle.cache = cache
        return handle

    def cache_free(self, obj: Handle) -> None:
        cache = obj.cache
        args = {"cache": cache.name, "addr": obj.pfn}
        self.calls.append({"op": "kmem_cache_free", "cache": cache.name, "block": obj.name,
                           "addr": obj.pfn})
        self._call("kmem_cache_free", args, "kmem_cache_free", cache.pfn, obj.pfn)
        del self.cshadow.objects[obj.pfn]
        if obj.model_pfn is not None and cache.model_pfn is not None:
            self.model.kmem_cache_free(cache.model_pfn, obj.model_pfn)
        self._check_layouts("kmem_cache_free", args)

    def live_objects(self, cache: Handle) -> int:
        return self.cshadow.live_of(cache.pfn)

    def cache_destroy(self, cache: Handle) -> None:
        args = {"cache": cache.name}
        self.calls.append({"op": "kmem_cache_destroy", "block": cache.name})
        self._call("kmem_cache_destroy", args, "kmem_cache_destroy", cache.pfn)
        del self.cshadow.geometry[cache.pfn]
        if cache.model_pfn is not None:
            self.model.kmem_cache_destroy(cache.model_pfn)
        self._check_layouts("kmem_cache_destroy", args)


class HighmemChecker(PageChecker):
    """kmap/kunmap on an implementation, checked against H1..H6.

    strict adds S1: the same address as the model's kmap (2.6.12 map_new_virtual: the
    next free slot after last_pkmap_nr, flushing on wrap), and S2: pkmap_count() equal
    to the model's after every call.
    """

    part = "highmem"
    model_class = ModelAllocator

    def _started(self, args: dict) -> None:
        self.pshadow = PkmapShadow(self.nr_pages, get_profile(self.profile))
        self.has_counts = self.check_free_counts and "pkmap_count" in self.info["optional"]

    def _check_pkmap(self, op: str, args: dict) -> None:
        if not self.has_counts:
            return
        got = self._call(op, args, "pkmap_count")
        reason = check_pkmap_count(self.pshadow, got)
        want = self.model.pkmap_count()
        if reason is None and self.mode == "strict" and list(got) != want:
            slot = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            reason = (f"S2: pkmap_count[{slot}] is {got[slot]}; the model's is {want[slot]}")
        if reason is not None:
            used = {i: c for i, c in enumerate(want) if c}
            actual = ({i: c for i, c in enumerate(got) if c}
                      if isinstance(got, (list, tuple)) else got)
            self._fail(op, args, reason, {"pkmap_count (non-zero, model)": used},
                       {"pkmap_count (non-zero)": actual})

    def kmap(self, pfn: int) -> Handle | None:
        self._names += 1
        name = f"k{self._names}"
        args = {"pfn": pfn}
        self.calls.append({"op": "kmap", "pfn": pfn, "as": name})
        ret = self._call("kmap", args, "kmap", pfn)
        want = self.model.kmap(pfn)
        self.calls[-1]["ret"] = ret
        self.calls[-1]["model_ret"] = want
        reason = check_kmap(self.pshadow, pfn, ret)
        if reason is None and self.mode == "strict" and ret != want:
            reason = (f"S1: the model's kmap returns {_show(want)}, the implementation "
                      f"{_show(ret)}")
        if reason is not None:
            self._fail("kmap", args, reason, want if self.mode == "strict" else
                       "the page's address, or a free PKMAP page", ret)
        if ret is None:
            return None
        entry = self.pshadow.maps.setdefault(pfn, [ret, 0])
        entry[1] += 1
        self._check_pkmap("kmap", args)
        return Handle(name, pfn, pfn, want)

    def kunmap(self, handle: Handle) -> None:
        pfn = handle.pfn
        args = {"pfn": pfn}
        self.calls.append({"op": "kunmap", "block": handle.name, "pfn": pfn})
        self._call("kunmap", args, "kunmap", pfn)
        entry = self.pshadow.maps[pfn]
        entry[1] -= 1
        if not entry[1]:
            del self.pshadow.maps[pfn]
        if handle.model_pfn is not None:
            self.model.kunmap(pfn)
        self._check_pkmap("kunmap", args)


# --- turning a run into a scenario -----------------------------------------------------

def _flat_bases(nr_pages: int, profile: str, need_vmalloc: bool) -> tuple[int, int]:
    """(__va of implementation frame 0, VMALLOC_START) on the flat machine."""
    prof = get_profile(profile)
    kbase = prof.PAGE_OFFSET + FLAT_BASE * prof.PAGE_SIZE
    vstart = 0
    if need_vmalloc:
        model = ModelAllocator(profile)
        model.init(nr_pages, prof.MAX_ORDER)
        vstart = model.machine.vmalloc_start
    return kbase, vstart


def scenario_lines(calls: list[dict], *, profile: str = DEFAULT_PROFILE,
                   failing_step: int | None = None, actual=None,
                   page_policy: str = "buddy") -> list[str]:
    """The calls as a model scenario (JSON Lines), replayable with `kmemspec run`.

    Each allocation expects the model's answer; the failing step carries a comment
    with what the implementation did. Implementation frame p is model pfn
    FLAT_BASE + p; an object at byte b is at kernel address __va(FLAT_BASE * PAGE_SIZE
    + b); a vm area at offset a is at VMALLOC_START + a.
    """
    init = calls[0]
    if any(c["op"] == "kmap" for c in calls):
        return _highmem_scenario_lines(calls, profile, failing_step, actual)
    lines = [f"# kmemspec conform: flat machine ({page_policy} page policy), implementation "
             f"frame p = model pfn {FLAT_BASE} + p",
             json.dumps(flat_boot_line(init["nr_pages"], profile, page_policy))]
    kbase, vstart = _flat_bases(init["nr_pages"], profile,
                                any(c["op"] == "vmalloc" for c in calls))
    alloc_ops = {"alloc_pages": (FLAT_BASE, {"gfp": "GFP_KERNEL"}, "order"),
                 "kmalloc": (kbase, {"gfp": "GFP_KERNEL"}, "size"),
                 "vmalloc": (vstart, {}, "size")}
    free_ops = {"free_pages": ("__free_pages", "page"), "kfree": ("kfree", "addr"),
                "vfree": ("vfree", "addr")}
    model_of: dict[str, int | None] = {}
    cache_ops = {"kmem_cache_create", "kmem_cache_alloc", "kmem_cache_free",
                 "kmem_cache_destroy"}
    for index, call in enumerate(calls[1:], start=1):
        if index == failing_step:
            lines.append(f"# step {index}: the implementation diverges here: "
                         f"{json.dumps(actual)}")
        op = call["op"]
        if op in cache_ops:
            lines.extend(_cache_scenario_line(call, model_of, kbase))
        elif op in alloc_ops:
            base, extra, key = alloc_ops[op]
            want = call.get("model_ret")
            model_of[call["as"]] = want
            line = {"op": op, key: call[key], **extra, "as": call["as"]}
            if "model_ret" in call:
                line["expect"] = {"ret": None if want is None else base + want}
            lines.append(json.dumps(line))
        elif op in free_ops:
            name = call["block"]
            if model_of.get(name) is None:
                lines.append(f"# {op}({name}): the model returned NULL for {name}; "
                             "nothing to free there")
                continue
            kernel_op, key = free_ops[op]
            line = {"op": kernel_op, key: f"${name}"}
            if op == "free_pages":
                line["order"] = call["order"]
            lines.append(json.dumps(line))
    return lines


def _cache_scenario_line(call: dict, model_of: dict, kbase: int) -> list[str]:
    """A kmem_cache_* call as scenario lines (caches named by the checker: c1, c2...)."""
    op = call["op"]
    if op == "kmem_cache_create":
        model_of[call["as"]] = call.get("model_ret")
        line = {"op": op, "name": call["as"], "size": call["size"], "align": call["align"],
                "flags": call["flags"], "as": call["as"]}
        if "model_ret" in call:
            line["expect"] = {"ret": None if call["model_ret"] is None else call["as"]}
        return [json.dumps(line)]
    if op == "kmem_cache_alloc":
        want = call.get("model_ret")
        model_of[call["as"]] = want
        if model_of.get(call["cache"]) is None:
            return [f"# {op}({call['cache']}): the model has no such cache"]
        line = {"op": op, "cache": call["cache"], "gfp": "GFP_KERNEL", "as": call["as"]}
        if "model_ret" in call:
            line["expect"] = {"ret": None if want is None else kbase + want}
        return [json.dumps(line)]
    name = call["block"]
    if model_of.get(name) is None:
        return [f"# {op}({name}): the model returned NULL for {name}; nothing to free"]
    if op == "kmem_cache_free":
        return [json.dumps({"op": op, "cache": call["cache"], "addr": f"${name}"})]
    return [json.dumps({"op": op, "cache": name})]


def _highmem_scenario_lines(calls: list[dict], profile: str, failing_step, actual) -> list[str]:
    """kmap/kunmap on the highmem machine: frame p is the p-th highmem page allocated."""
    from ..model.pgtable import PKMAP_BASE
    from .adapter import highmem_config
    init = calls[0]
    cfg = highmem_config(init["nr_pages"], profile)
    lines = [f"# kmemspec conform: highmem machine, implementation frame p = the p-th "
             f"GFP_HIGHUSER page (h<p>); addresses are PKMAP_BASE + the offsets shown",
             json.dumps({"op": "boot", "profile": cfg.profile, "phys_pages": cfg.phys_pages,
                         "highmem_pages": cfg.highmem_pages, "max_dma_pfn": cfg.max_dma_pfn})]
    for p in range(init["nr_pages"]):
        lines.append(json.dumps({"op": "alloc_pages", "order": 0, "gfp": "GFP_HIGHUSER",
                                 "as": f"h{p}"}))
    for index, call in enumerate(calls[1:], start=1):
        if index == failing_step:
            lines.append(f"# step {index}: the implementation diverges here: "
                         f"{json.dumps(actual)}")
        if call["op"] == "kmap":
            line = {"op": "kmap", "page": f"$h{call['pfn']}", "as": call["as"]}
            if "model_ret" in call:
                want = call["model_ret"]
                line["expect"] = {"ret": None if want is None else PKMAP_BASE() + want}
            lines.append(json.dumps(line))
        elif call["op"] == "kunmap":
            lines.append(json.dumps({"op": "kunmap", "page": f"$h{call['pfn']}"}))
    return lines


@dataclass
class Report:
    """A divergence with everything needed to look at it again."""

    target: str
    mode: str
    failure: ConformanceFailure
    seconds: float = 0.0
    files: dict = field(default_factory=dict)
    # re-run alone in a fresh process before being reported (None: not re-run)
    reproduced_alone: bool | None = None
    # when it does not reproduce alone: the earlier sequences the same process ran,
    # in the adapter's terms, and whether they plus this one reproduce it
    prefix: list = field(default_factory=list)
    prefix_reproduces: bool | None = None
    # what the implementation printed (stdout and stderr) while the failing sequence
    # ran again, truncated; "" if nothing (or run in this process)
    output: str = ""
    # the bytes of one of the implementation's frames when not the profile's page
    # (`conform --page-size` / kms_page_size): pfn p is bytes p*unit .. p*unit+unit-1
    unit: int | None = None

    @property
    def divergence(self) -> Divergence:
        return self.failure.divergence

    @property
    def nr_calls(self) -> int:
        """Calls made to the implementation, init included."""
        return self.divergence.step + 1

    def scenario(self) -> str:
        div = self.divergence
        return "\n".join(scenario_lines(self.failure.calls, profile=self.failure.profile,
                                        failing_step=div.step, actual=div.actual,
                                        page_policy=self.failure.page_policy)) + "\n"

    def prefix_scenario(self) -> str:
        """The scenario up to (not including) the failing call: the state there."""
        calls = self.failure.calls[:max(1, self.divergence.step)]
        return "\n".join(scenario_lines(calls, profile=self.failure.profile,
                                        page_policy=self.failure.page_policy)) + "\n"

    def calls_text(self) -> list[str]:
        out = []
        for index, call in enumerate(self.failure.calls):
            if call["op"] == "init":
                text = f"init(nr_pages={call['nr_pages']}, max_order={call['max_order']})"
            elif call["op"] == "alloc_pages":
                text = f"{call['as']} = alloc_pages(order={call['order']})"
                if "ret" in call:
                    text += f"  -> {_show(call['ret'])}"
                    if self.unit and type(call["ret"]) is int:
                        first = call["ret"] * self.unit
                        text += (f" (bytes {first}..{first + (self.unit << call['order']) - 1}"
                                 f" of {self.unit}-byte units)")
            elif call["op"] in ("kmalloc", "vmalloc"):
                text = f"{call['as']} = {call['op']}(size={call['size']})"
                if "ret" in call:
                    text += f"  -> {_show(call['ret'])}"
            elif call["op"] == "free_pages":
                text = f"free_pages({call['block']}: pfn={call['pfn']}, order={call['order']})"
            elif call["op"] == "kmem_cache_create":
                text = (f"{call['as']} = kmem_cache_create(size={call['size']}, "
                        f"align={call['align']}, flags={call['flags']:#x})")
                if "ret" in call:
                    text += f"  -> {_show(call['ret'])}"
            elif call["op"] == "kmem_cache_alloc":
                text = f"{call['as']} = kmem_cache_alloc({call['cache']})"
                if "ret" in call:
                    text += f"  -> {_show(call['ret'])}"
            elif call["op"] == "kmem_cache_free":
                text = f"kmem_cache_free({call['cache']}, {call['block']}: addr={call['addr']})"
            elif call["op"] == "kmem_cache_destroy":
                text = f"kmem_cache_destroy({call['block']})"
            elif call["op"] == "kmap":
                text = f"{call['as']} = kmap(pfn={call['pfn']})"
                if "ret" in call:
                    text += f"  -> {_show(call['ret'])}"
            elif call["op"] == "kunmap":
                text = f"kunmap({call['block']}: pfn={call['pfn']})"
            else:
                text = f"{call['op']}({call['block']}: addr={call['addr']})"
            mark = "  <-- diverges" if index == self.divergence.step else ""
            out.append(f"  [{index}] {text}{mark}")
        return out

    def text(self) -> str:
        div = self.divergence
        lines = [f"{self.target}: DIVERGES from the spec ({self.failure.part} part, "
                 f"{self.mode} mode) after {self.nr_calls} calls",
                 *self.calls_text(),
                 *([f"  unit:     {self.unit} bytes per frame (pfn p = bytes p*{self.unit} "
                    f".. p*{self.unit}+{self.unit - 1}; the model's frame p is its pfn "
                    f"{FLAT_BASE}+p)"] if self.unit else []),
                 f"  rule:     {div.reason}",
                 f"  expected: {_show(div.expected)}",
                 f"  actual:   {_show(div.actual)}"]
        if self.reproduced_alone is not None:
            lines.append("  reproduced alone: " + ("yes (in a fresh process)"
                                                   if self.reproduced_alone else "no"))
        if self.reproduced_alone is False:
            calls = sum(len(seq) for seq in self.prefix)
            lines.append(f"  it needs the {len(self.prefix)} earlier sequences ({calls} calls) "
                         "run before it in the same process: "
                         + ("with them it reproduces" if self.prefix_reproduces else
                            "even with them it did not reproduce (flaky?)"))
        if self.output:
            lines.append("  output of the implementation (stdout+stderr):")
            lines.extend(f"    | {line}" for line in self.output.rstrip("\n").splitlines())
        for kind, path in self.files.items():
            lines.append(f"  {kind}: {path}")
        return "\n".join(lines)

    def model_machine(self):
        """The model's machine after the calls up to and including the failing one."""
        return self._model_after().machine

    def _model_after(self) -> ModelAllocator:
        model = ModelAllocator(self.failure.profile, page_policy=self.failure.page_policy)
        model.init(self.failure.nr_pages, get_profile(self.failure.profile).MAX_ORDER)
        live: dict[str, int | None] = {}
        for call in self.failure.calls[1:self.divergence.step + 1]:
            op = call["op"]
            if op == "kmem_cache_create":
                live[call["as"]] = model.kmem_cache_create(call["as"], call["size"],
                                                           call["align"], call["flags"])
            elif op == "kmem_cache_alloc":
                cache = live.get(call["cache"])
                live[call["as"]] = None if cache is None else model.kmem_cache_alloc(cache)
            elif op == "kmem_cache_free":
                if live.get(call["block"]) is not None and live.get(call["cache"]) is not None:
                    model.kmem_cache_free(live[call["cache"]], live.pop(call["block"]))
            elif op == "kmem_cache_destroy":
                if live.get(call["block"]) is not None:
                    model.kmem_cache_destroy(live.pop(call["block"]))
            elif op == "kmap":
                live[call["as"]] = model.kmap(call["pfn"])
            elif op == "kunmap":
                if live.pop(call["block"], None) is not None:
                    model.kunmap(call["pfn"])
            elif op == "alloc_pages":
                live[call["as"]] = model.alloc_pages(call["order"])
            elif op in ("kmalloc", "vmalloc"):
                live[call["as"]] = getattr(model, op)(call["size"])
            elif live.get(call["block"]) is not None:
                answer = live.pop(call["block"])
                if op == "free_pages":
                    model.free_pages(answer, call["order"])
                else:
                    getattr(model, op)(answer)
        return model

    def svg(self) -> str:
        """The model state at the failing step, the implementation's answer outlined."""
        from .render import render_svg
        div = self.divergence
        call = self.failure.calls[div.step]
        highlights = []
        if call["op"] == "alloc_pages":
            size = 1 << call["order"]
            if call.get("model_ret") is not None:
                highlights.append((FLAT_BASE + call["model_ret"], size, "#00a000",
                                   f"model: pfn {call['model_ret']}"))
            if type(call.get("ret")) is int:
                highlights.append((FLAT_BASE + call["ret"], size, "#d00000",
                                   f"implementation: pfn {call['ret']}"))
        elif call["op"] == "free_pages":
            highlights.append((FLAT_BASE + call["pfn"], 1 << call["order"], "#d00000",
                               f"freed: pfn {call['pfn']} order {call['order']}"))
        elif call["op"] == "kmalloc":
            page = get_profile(self.failure.profile).PAGE_SIZE
            for who, colour, key in (("model", "#00a000", "model_ret"),
                                     ("implementation", "#d00000", "ret")):
                if type(call.get(key)) is int and call[key] >= 0:
                    highlights.append((FLAT_BASE + call[key] // page, 1, colour,
                                       f"{who}: object at byte {call[key]} "
                                       f"(frame {call[key] // page})"))
        elif call["op"] == "kmem_cache_alloc":
            page = get_profile(self.failure.profile).PAGE_SIZE
            for who, colour, key in (("model", "#00a000", "model_ret"),
                                     ("implementation", "#d00000", "ret")):
                if type(call.get(key)) is int and call[key] >= 0:
                    highlights.append((FLAT_BASE + call[key] // page, 1, colour,
                                       f"{who}: object at byte {call[key]}"))
        if self.failure.part == "highmem":
            return render_svg(self._model_after()._highmem(),
                              title=f"{self.target} ({self.mode}): the highmem machine at "
                                    f"step {div.step}")
        title = (f"{self.target} ({self.mode}): model state at step {div.step} "
                 f"(implementation frame p = pfn {FLAT_BASE} + p)")
        return render_svg(self.model_machine(), start=FLAT_BASE,
                          end=FLAT_BASE + self.failure.nr_pages, title=title,
                          highlights=highlights)

    def to_json(self) -> dict:
        return {"target": self.target, "part": self.failure.part, "mode": self.mode,
                "result": "diverges",
                "calls": self.failure.calls, "nr_calls": self.nr_calls,
                "divergence": self.divergence.to_json(), "seconds": round(self.seconds, 3),
                "reproduced_alone": self.reproduced_alone,
                "prefix_sequences": len(self.prefix),
                "prefix_reproduces": self.prefix_reproduces, "output": self.output,
                "page_size": self.unit,
                "files": self.files}

    def prefix_lines(self) -> str:
        """The earlier sequences as JSON Lines (`conform --replay S --after FILE`)."""
        lines = []
        for sequence in self.prefix:
            lines.append(json.dumps({"op": "new"}))
            for method, args in sequence:
                lines.append(json.dumps({"call": method, "args": list(args)}))
        return "\n".join(lines) + "\n"


# --- minimising a counterexample --------------------------------------------------------

_ALLOC_CALLS = {"alloc_pages": ("alloc", "order"), "kmalloc": ("kmalloc", "size"),
                "vmalloc": ("vmalloc", "size"), "kmap": ("kmap", "pfn"),
                "kmem_cache_create": ("cache_create", ("size", "align", "flags")),
                "kmem_cache_alloc": ("cache_alloc", "cache")}
_FREE_CALLS = {"free_pages": "free", "kfree": "kfree", "vfree": "vfree", "kunmap": "kunmap",
               "kmem_cache_free": "cache_free", "kmem_cache_destroy": "cache_destroy"}


def _ops_of(calls: list[dict], upto: int) -> list[tuple]:
    """("alloc", op, argument, name) and ("free", op, name) for calls 1..upto."""
    ops = []
    for call in calls[1:upto + 1]:
        op = call["op"]
        if op in _ALLOC_CALLS:
            key = _ALLOC_CALLS[op][1]
            arg = tuple(call[k] for k in key) if isinstance(key, tuple) else call[key]
            ops.append(("alloc", op, arg, call["as"]))
        elif op in _FREE_CALLS:
            ops.append(("free", op, call["block"]))
    return ops


def replay(driver, mode: str, profile: str, nr_pages: int, ops: list[tuple],
           check_free_counts: bool = True, checker_class=None) -> ConformanceFailure | None:
    """Run a call sequence again on a fresh implementation; the failure, or None.

    A free whose block was not handed out this time (NULL, or its alloc removed) is
    skipped, so any subsequence of a run is itself a valid run.
    """
    checker = (checker_class or PageChecker)(driver, mode, profile=profile,
                                             check_free_counts=check_free_counts)
    handles: dict[str, Handle | None] = {}
    try:
        checker.start(nr_pages)
        for op in ops:
            method = getattr(checker, (_ALLOC_CALLS[op[1]][0] if op[0] == "alloc"
                                       else _FREE_CALLS[op[1]]))
            if op[1] == "kmem_cache_create":
                handles[op[3]] = method(*op[2])
            elif op[1] == "kmem_cache_alloc":
                # the cache's create may have been dropped, or have returned NULL
                cache = handles.get(op[2])
                handles[op[3]] = None if cache is None else method(cache)
            elif op[0] == "alloc":
                handles[op[3]] = method(op[2])
            else:
                handle = handles.get(op[2])
                if handle is None or (op[1] == "kmem_cache_destroy"
                                      and checker.live_objects(handle)):
                    continue
                del handles[op[2]]
                method(handle)
    except ConformanceFailure as failure:
        return failure
    return None


def _smaller(op: tuple) -> list[tuple]:
    """Simpler versions of one allocation: lower order, or smaller size."""
    kind, name, arg, bind = op
    if type(arg) is not int or arg <= 0:
        return []
    if name == "alloc_pages":
        return [(kind, name, arg - 1, bind)]
    return [(kind, name, value, bind) for value in sorted({arg // 2, arg - 1}) if value >= 0]


def minimise(failure: ConformanceFailure, driver, mode: str, *, sizes=(),
             check_free_counts: bool = True, budget: int = 400,
             checker_class=None, object_sizes=None) -> ConformanceFailure:
    """Shrink a failing run further, greedily: drop calls, smaller machines, smaller args.

    Hypothesis' stateful shrinking can stop early on long runs (hypothesis #3825);
    this deterministic pass makes the reported sequence small whatever it found.
    """
    best = failure
    tries = 0

    def attempt(nr_pages, ops):
        nonlocal tries
        tries += 1
        found = replay(driver, mode, best.profile, nr_pages, ops, check_free_counts,
                       checker_class)
        if found is not None and found.divergence.step <= best.divergence.step:
            return found
        return None

    changed = True
    while changed and tries < budget:
        changed = False
        ops = _ops_of(best.calls, best.divergence.step)
        # fewer calls: drop one call (an allocation together with its frees)
        for i in reversed(range(len(ops))):
            if tries >= budget:
                break
            victim = ops[i]
            candidate = [op for j, op in enumerate(ops) if j != i and not (
                victim[0] == "alloc" and op[0] == "free" and op[2] == victim[3])]
            found = attempt(best.nr_pages, candidate)
            if found is not None:
                best, changed = found, True
                break
        if changed:
            continue
        # a smaller machine
        for size in sorted(s for s in sizes if s < best.nr_pages):
            found = attempt(size, ops)
            if found is not None:
                best, changed = found, True
                break
        if changed:
            continue
        # smaller arguments
        for i, op in enumerate(ops):
            if op[0] != "alloc":
                continue
            for simpler in _smaller(op):
                if (object_sizes is not None and simpler[1] == "kmalloc"
                        and not object_sizes[0] <= simpler[2] <= object_sizes[1]):
                    continue            # `conform --sizes`: never ask outside the range
                found = attempt(best.nr_pages, ops[:i] + [simpler] + ops[i + 1:])
                if found is not None:
                    best, changed = found, True
                    break
            if changed or tries >= budget:
                break
    return best


def drive_bytes(checker, nr_pages: int, data: bytes) -> ConformanceFailure | None:
    """Run a page call sequence encoded in bytes, two per call, on a checker.

    First byte below 160 (or no live block): alloc_pages of order (second byte) mod
    (max_order + 1), one beyond the top included; else free_pages of the live block
    chosen by the second byte among the blocks handed out (not NULL) and not freed --
    as the stateful machine's rules do. Bytes shrink towards zeros: fewer frees, order
    0. The failure, or None.
    """
    live: list = []
    try:
        checker.start(nr_pages)
        for i in range(0, len(data) - 1, 2):
            kind, arg = data[i], data[i + 1]
            if kind < 160 or not live:
                handle = checker.alloc(arg % (checker.max_order + 1))
                if handle is not None:
                    live.append(handle)
            else:
                checker.free(live.pop(arg % len(live)))
    except ConformanceFailure as failure:
        return failure
    return None


# the checker of each part (isolate.run_batch builds its batch checker from these)
CHECKERS = {"page": PageChecker, "object": ObjectChecker, "vmalloc": VmallocChecker,
            "cache": CacheChecker, "highmem": HighmemChecker}
