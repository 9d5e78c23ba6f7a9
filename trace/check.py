"""Check a real kernel's kmem/vmalloc trace against the spec (spec/trace.md).

The trace drives an abstract state — live page blocks, live slab/kmalloc objects,
vmap areas (live or lazily freed) — and every event is checked against the rules of
spec/trace.md. A trace starts in the middle of a running kernel and some kernel paths
allocate or free without an event, so a conflict that a documented untraced path can
explain is a *warning* (with that path as its cause); only what no such path explains
is a *violation*. `strict=True` makes every warning a violation.

The hot loop (TraceChecker._loop) reads 1 MiB of raw lines at a time (bytes: decoding
would cost a tenth of the run) and, per line, does one bytes.split (at most 8 tokens:
the seven before the fields' tail, and the tail), one dict lookup to dispatch on the
event token, and for the common events in the default layout the state change
inline, with a local counter per event. What a ptr=/pfn= token or a tail means is
worked out once per distinct token and cached. Anything the loop does not handle
inline goes to the event's full handler (on the line's tokens, decoded), so the
inline code only ever takes a shortcut to the same result -- tests/test_trace_check.py
compares it with the full handlers alone. About 630k-750k events/s in one process on a
2-core machine (benches/bench_trace.py).

With jobs=2 the checker forks an object process (ObjectProcess): this process checks
the page and vmap events and forwards the object events, the page frees and large
blocks, and the tracing gaps, in order; the other checks the objects (role_pages,
role_objects). The merged report is the one-process report; about 770k events/s.
"""

from __future__ import annotations

import gc
import io
import multiprocessing
import os
import pickle
import select
import struct
import sys
import traceback
from array import array
from bisect import bisect_left, insort
from collections import Counter, deque

from kmemspec.model.profiles import LINUX_6X_X86_64, Profile

from kmemspec.trace import parse as tp
from kmemspec.trace.layout import AddressLayout, layout_of

# Findings kept per (kind, invariant, cause); beyond that they are only counted, so
# memory stays bounded by the live state, not by the size of the trace.
KEEP_PER_GROUP = 200
# Input errors kept (all are counted): a file of junk must not fill memory.
MAX_ERRORS = 1000
# Slab objects are at most KMALLOC_MAX_CACHE_SIZE (2 pages) long, so an object
# overlapping page P starts at most this many pages before P.
LOOKBEHIND_PAGES = 2
INF = float("inf")
# Live-frame chunks: 2^12 frames (16 MiB of 4 KiB pages), a multiple of any block
# (TraceChecker checks top_order <= CHUNK_SHIFT), small so that events on sparse pfns
# cost little memory.
CHUNK_SHIFT = 12
CHUNK = 1 << CHUNK_SHIFT
ONES = [b"\x01" * (1 << k) for k in range(16)]
ZEROS = [bytes(1 << k) for k in range(16)]
# A live object is stored as (line << SIZE_BITS) | size: sizes up to a top-order block.
SIZE_BITS = 23
SIZE_MASK = (1 << SIZE_BITS) - 1
# Event tokens of the inline fast path in TraceChecker._loop, by code (most frequent
# first: the loop tests the codes in this order).
FAST_EVENTS = (
    "kmem_cache_alloc:", "mm_page_alloc:", "mm_page_free:", "mm_page_alloc_zone_locked:",
    "kfree:", "kmem_cache_free:", "mm_page_free_batched:", "kmalloc:",
    "mm_page_pcpu_drain:", "alloc_vmap_area:", "free_vmap_area_noflush:",
    "purge_vmap_area_lazy:",
)
FAST_CODES = {name: code for code, name in enumerate(FAST_EVENTS)}
# Distinct tokens remembered per token cache of the loop before it starts afresh.
TOKEN_CACHE = 1 << 17
# The loop works on the raw bytes of each line (decoding costs a tenth of the run).
FAST_CODES_B = {name.encode(): code for name, code in FAST_CODES.items()}
# Codes from FORWARD up take the loop's rare branch (TraceChecker._steer). UNSYNCED:
# every event until all CPUs appear after a buffer overrun. The others are those of
# a two-process check (TraceChecker.role_pages, role_objects): the page process
# forwards the object events (FORWARD), and checks and forwards the page frees
# (FREE_AND_FORWARD) and page allocations (ALLOC_AND_FORWARD: those of order > 1);
# the object process remembers a block of order > 1 (LARGE_ALLOC) and takes the
# tracing gaps the page process found (GAP). It reads mm_page_free as one process
# does (code 2): with no live page blocks in its state, that only forgets the
# objects of the freed pages.
FORWARD, FREE_AND_FORWARD, ALLOC_AND_FORWARD, LARGE_ALLOC, GAP = range(12, 17)
UNSYNCED = 99
SLOW_CODES_B = dict.fromkeys(FAST_CODES_B, UNSYNCED)
OBJECT_EVENTS = ("kmem_cache_alloc:", "kfree:", "kmem_cache_free:", "kmalloc:")
FORWARDED_EVENTS = OBJECT_EVENTS + ("mm_page_free:", "mm_page_alloc:")
PAGE_CODES_B = {**FAST_CODES_B, **dict.fromkeys((e.encode() for e in OBJECT_EVENTS), FORWARD),
                b"mm_page_free:": FREE_AND_FORWARD, b"mm_page_alloc:": ALLOC_AND_FORWARD}
OBJECT_PREFIXES = tuple(b": %s " % e.encode() for e in OBJECT_EVENTS)
SMALL_ORDERS = (b"order=0 ", b"order=1 ")     # not a large kmalloc's block
GAP_TOKEN = b"\x00gap:"
OBJECT_CODES_B = {**{e.encode(): FAST_CODES[e] for e in OBJECT_EVENTS},
                  b"mm_page_free:": FAST_CODES["mm_page_free:"], b"mm_page_alloc:": LARGE_ALLOC,
                  GAP_TOKEN: GAP}

# Causes of warnings: each is a documented untraced kernel path or a tracing gap
# (spec/trace.md, "Partial observability").
CAUSE_LOST = "lost_events"
CAUSE_OVERRUN = "buffer_overrun"
CAUSE_BULK_FREE = "untraced_object_free"
CAUSE_PAGE_FREE = "untraced_page_free"
CAUSE_VMAP_FREE = "untraced_vmap_free"
CAUSE_LAZY_RACE = "lazy_free_traced_late"
CAUSE_DIRECT_MAP = "direct_map_unknown"
# A vmap area's lazy state: freed lazily, and (the race) freed lazily within the range
# of the purge traced last, which may already have taken it.
LAZY, LAZY_PURGED_FIRST = 1, 2


def kmalloc_class_table(profile: Profile) -> list[int]:
    """table[n] = the kmalloc class (bytes) a request of n bytes gets, for
    1 <= n <= KMALLOC_MAX_CACHE_SIZE. Linux 6.x mm/slab_common.c: kmalloc_size_index."""
    table = [0] * (profile.KMALLOC_MAX_CACHE_SIZE + 1)
    sizes = sorted(profile.kmalloc_sizes)
    i = 0
    for n in range(1, len(table)):
        while sizes[i] < n:
            i += 1
        table[n] = sizes[i]
    return table


def get_order(size: int, page_shift: int) -> int:
    """The smallest order whose block holds size bytes (include/asm-generic/getorder.h)."""
    return max(0, (size - 1) >> page_shift).bit_length()


class Finding:
    __slots__ = ("line", "invariant", "event", "message", "cause")

    def __init__(self, line, invariant, event, message, cause=None):
        self.line, self.invariant, self.event = line, invariant, event
        self.message, self.cause = message, cause

    def to_json(self) -> dict:
        d = {"line": self.line, "invariant": self.invariant, "event": self.event,
             "message": self.message}
        if self.cause is not None:
            d["cause"] = self.cause
        return d


class TraceChecker:
    """The abstract state a trace drives, and the rules checked on each event."""

    def __init__(self, profile: Profile = LINUX_6X_X86_64, strict: bool = False,
                 max_errors: int = MAX_ERRORS):
        self.profile = profile
        self.strict = strict
        self.page_shift = profile.PAGE_SHIFT
        self.top_order = profile.top_order
        if self.top_order > CHUNK_SHIFT:
            raise ValueError(f"{profile.name}: blocks of order {self.top_order} do not "
                             f"fit the live-frame chunks of 2^{CHUNK_SHIFT} frames")
        self.kmalloc_max = profile.KMALLOC_MAX_CACHE_SIZE
        self.geo = 2 * self.kmalloc_max         # (see _place)
        self.layout: AddressLayout = layout_of(profile)
        self.max_block = 1 << (self.top_order + self.page_shift)
        self.class_of = kmalloc_class_table(profile)
        # virtual page number of pfn 0 in the direct map: KASLR and 5-level paging
        # move it, so it is learnt from the trace (_learn_page_offset,
        # _vote_page_offset); until then object conflicts are only warnings
        self.vp0 = self.layout.page_offset >> self.page_shift
        self.vp0_learnt = self.layout.direct_map_fixed
        self.vp0_votes: dict[int, set] = {}
        self.first_object_line = 0
        # STATE: live page blocks  head pfn -> (order, line), and one byte per frame
        # (1: in a live block) in chunks of CHUNK frames, so that a block's frames
        # are checked with one bytearray.find
        self.blocks: dict[int, tuple[int, int]] = {}
        self.frames: dict[int, bytearray] = {}
        # STATE: live objects by page: for every (virtual) page a live object
        # touches, [the slab geometry of the page (see _place), {start of a live
        # object that starts in the page: (line << SIZE_BITS) | size}]. One lookup
        # finds an object and its page's geometry; a page free drops its record.
        self.pages: dict[int, list] = {}
        # STATE: vmap areas  start -> [end, lazy, line]; starts sorted
        self.areas: dict[int, list] = {}
        self.area_starts: list[int] = []
        self.last_purge = (0, 0)        # [start, end) of the last purge_vmap_area_lazy
        # tracing gaps: state made before trust_line may miss events
        self.trust_line = 0
        self.gap_cause = CAUSE_LOST
        self.sync_cpus = 0            # CPUs still to appear after a buffer overrun
        self.cpus_seen: set = set()
        self.last_page_alloc: dict[str, tuple[int, int]] = {}
        self.last_large_kmalloc: dict[str, tuple] = {}
        self.hashed = False
        # ROLE: how the loop dispatches event tokens, and where it forwards lines
        # (a two-process check: role_pages, role_objects)
        self.codes = FAST_CODES_B
        self.forward = None
        self.uncounted: tuple = ()       # event names another process counts
        self.seen = [0] * len(FAST_EVENTS)
        # REPORT
        self.events = 0
        self.by_event: dict[str, int] = {}
        self.violations: list[Finding] = []
        self.warnings: list[Finding] = []
        self.errors: list[dict] = []
        self.n_errors = 0
        self.max_errors = max_errors
        self.counts: dict[tuple, int] = {}
        self.lost = 0
        self.malformed: Counter = Counter()
        self.handlers = {
            "mm_page_alloc:": self.on_mm_page_alloc,
            "mm_page_free:": self.on_mm_page_free,
            "mm_page_free_batched:": self.on_mm_page_free_batched,
            "mm_page_alloc_zone_locked:": self.on_mm_page_alloc_zone_locked,
            "mm_page_pcpu_drain:": self.on_mm_page_pcpu_drain,
            "kmalloc:": self.on_kmalloc,
            "kfree:": self.on_free,
            "kmem_cache_alloc:": self.on_kmem_cache_alloc,
            "kmem_cache_free:": self.on_free,
            "alloc_vmap_area:": self.on_alloc_vmap_area,
            "free_vmap_area_noflush:": self.on_free_vmap_area_noflush,
            "purge_vmap_area_lazy:": self.on_purge_vmap_area_lazy,
        }

    # ------------------------------------------------------------------ reporting
    def violation(self, line, invariant, event, message):
        """Report a broken rule. `message` is a string, or a function making it
        (called only for the findings that are kept)."""
        self._add("violation", line, invariant, event, message, None)

    def warning(self, line, invariant, event, message, cause):
        """Report a conflict that the untraced path or tracing gap `cause` explains;
        a violation in strict mode."""
        self._add("warning", line, invariant, event, message, cause)

    def _add(self, kind, line, invariant, event, message, cause):
        if cause is not None and self.strict:
            kind = "violation"
        key = (kind, invariant, cause)
        n = self.counts.get(key, 0)
        self.counts[key] = n + 1
        if n >= KEEP_PER_GROUP:
            return
        if callable(message):
            message = message()
        if kind == "violation":
            if cause is not None:
                message = f"{message} [strict: a warning by default, explained by {cause}]"
            self.violations.append(Finding(line, invariant, event, message, cause))
        else:
            self.warnings.append(Finding(line, invariant, event, message, cause))

    def error(self, line, message):
        """An input error: all are counted, the first max_errors kept."""
        self.n_errors += 1
        if len(self.errors) < self.max_errors:
            self.errors.append({"line": line, "message": message})

    def _gap_cause(self, made_at: int):
        """The tracing gap that can explain a conflict with state made at line
        made_at, or None when the trace was complete since then."""
        return self.gap_cause if made_at < self.trust_line else None

    def tracing_gap(self, line: int, cause: str) -> None:
        """Events may be missing before `line`: conflicts with older state become
        warnings; objects, too many to tag one by one, are forgotten."""
        self.trust_line = line
        self.gap_cause = cause
        self.pages.clear()
        if self.forward is not None:        # to the object process, in order
            self.forward(b"- - - - %s %d %s\n" % (GAP_TOKEN, -1 if line == INF else line,
                                                  cause.encode()), 0)

    # ------------------------------------------------------------------ the loop
    def run(self, stream, progress=None, jobs: int = 1) -> None:
        """Check every line of a text stream; progress(n_lines) is called after
        each chunk when given. With jobs=2 (and fork available), a second process
        checks the object events (see ObjectProcess); the report is the same.

        The loop reads the common events in the default layout inline: a fast path
        that only handles the case where nothing is to be reported and the state
        changes trivially. Anything else (another layout, an unaligned block, a
        conflict, a fresh slab page) goes to the event's full handler, which parses
        the line again with trace_parse and applies every rule; a readable
        kmem_cache_alloc line goes straight to _place, which is all its handler
        would do with it."""
        if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
            objects = ObjectProcess(self.profile, self.strict, self.max_errors)
            try:
                self.role_pages(objects.send)
                self._run(_numbered_chunks(_binary(stream)), progress)
                self.merge(objects.result())
            finally:
                objects.close()
        else:
            self._run(_numbered_chunks(_binary(stream)), progress)

    def _run(self, chunks, progress) -> None:
        by_event = Counter()
        # The state holds no reference cycles; the cyclic collector would only
        # rescan the ever larger live state (a third of the run time).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._loop(chunks, progress, by_event)
        finally:
            if gc_was_enabled:
                gc.enable()
        if self.first_object_line and not self.vp0_learnt:
            self.warning(self.first_object_line, "no_overlap", "objects",
                         "the direct map base (KASLR, 4- or 5-level paging) could not be "
                         "learnt from the trace (no large kmalloc, no new slab seen after "
                         "its page allocation): page frees may not have ended the objects "
                         "of their pages, so object conflicts are only warnings",
                         CAUSE_DIRECT_MAP)
            self.warnings.sort(key=lambda f: f.line)     # (as merge() has them)
        by_event.update(self.by_event)
        by_event.subtract(self.malformed)
        self.events = sum(by_event.values())
        self.by_event = {k.rstrip(":"): v for k, v in sorted(by_event.items()) if v}

    def _loop(self, chunks, progress, by_event):
        """chunks: iterables of (line number, raw line) pairs."""
        codes, full = self.codes, self._full_line
        slow_codes = SLOW_CODES_B
        pages = self.pages
        blocks, frames = self.blocks, self.frames
        forward = self.forward
        if forward is not None:             # the page process: see role_pages
            fwd_line, fwd_no = self._fwd_lines.append, self._fwd_nos.append
        # The page process forwards an object event without splitting it when its
        # line has `: <event>: ` where this trace's lines have their event token
        # (`at`, learned from the last object line it split; 0: not known, and not
        # used while the trace is not synchronised). No other event's line has such
        # a text, and a line in another layout is handled all the same by the
        # object process (its slow path).
        at = 0
        NULL_PAGES = (b"page=0000000000000000", b"page=(null)")    # a failed allocation
        # the page size and kernel space of the traced kernel (trace_layout)
        ps, psize, kspace, geo = (self.page_shift, self.layout.page_size,
                                  self.layout.kernel_space, self.geo)
        pmask = psize - 1
        # What a token means, worked out once per distinct token: pointers and pfns
        # recur (objects and frames are reused), and the tail of an event line (all
        # after its ptr=/pfn= token) takes few values. See the _*_token functions.
        ptrs: dict[bytes, int] = {}
        pfns: dict[bytes, int] = {}
        orders: dict[bytes, int] = {}
        cache_tails: dict[bytes, tuple[int, int]] = {}
        kmalloc_tails: dict[bytes, int] = {}
        cache_tail = self._cache_tail
        kmalloc_tail = self._kmalloc_tail
        # Lines per event token: fast-path hits in n0..n8 (by code), the rest in seen.
        n0 = n1 = n2 = n3 = n4 = n5 = n6 = n7 = n8 = 0
        seen = self.seen
        lineno = 0
        for chunk in chunks:
            # After a buffer overrun, until every CPU has appeared, every event takes
            # the full handler (code UNSYNCED).
            cmap = slow_codes if self.sync_cpus else codes
            for cache in (ptrs, pfns, orders, cache_tails, kmalloc_tails):
                if len(cache) > TOKEN_CACHE:
                    cache.clear()
            for lineno, line in chunk:
                if at and line.startswith(OBJECT_PREFIXES, at):
                    fwd_line(line)
                    fwd_no(lineno)
                    continue
                # Tokens 0..6 as line.split() has them; the rest of the line in t[7].
                t = line.split(None, 7)
                try:
                    code = cmap[t[4]]
                except (KeyError, IndexError):
                    self._slow_line(line.decode("utf-8", "replace"), lineno)
                    cmap = slow_codes if self.sync_cpus else codes
                    if self.sync_cpus:
                        at = 0
                    continue
                if code >= FORWARD:                       # two processes; unsynced
                    if code == FORWARD:
                        fwd_line(line)
                        fwd_no(lineno)
                        at = line.find(b": " + t[4])
                        continue
                    if code == FREE_AND_FORWARD:
                        fwd_line(line)
                        fwd_no(lineno)
                        code = 2
                    elif code == ALLOC_AND_FORWARD:
                        # the object process needs the blocks a large kmalloc may be
                        if len(t) < 8 or t[7][:8] not in SMALL_ORDERS:
                            fwd_line(line)
                            fwd_no(lineno)
                        code = 1
                    else:
                        code = self._steer(code, t, line, lineno)
                        cmap = slow_codes if self.sync_cpus else codes
                        if code < 0:
                            continue
                try:
                    if code == 0 or code == 7:
                        a = ptrs.get(t[6])
                        if a is None:                     # ptr=%p: hex without 0x
                            p = t[6]
                            a = ptrs[p] = int(p[4:], 16) if p[:4] == b"ptr=" else -1
                        if code == 0:                     # kmem_cache_alloc
                            k = cache_tails.get(t[7])
                            if k is None:
                                k = cache_tail(cache_tails, t[7])
                            n = k[0]
                            r = pages.get(a >> ps)
                            if (r is not None and n > 0 and r[0] == n * geo + a % n
                                    and (a & pmask) + n <= psize and a >= kspace
                                    and a not in r[1]):
                                r[1][a] = (lineno << SIZE_BITS) | n
                                n0 += 1
                                continue
                            if a > 0 and k[1] > 0:
                                # all that on_kmem_cache_alloc does with this line
                                self._place(a, k[1], lineno, "kmem_cache_alloc", t[1])
                                n0 += 1
                                continue
                        else:                             # kmalloc
                            n = kmalloc_tails.get(t[7])
                            if n is None:
                                n = kmalloc_tail(kmalloc_tails, t[7])
                            r = pages.get(a >> ps)
                            if (r is not None and n > 0 and r[0] == n * geo + a % n
                                    and (n & (n - 1) or not a & (n - 1))
                                    and (a & pmask) + n <= psize and a >= kspace
                                    and a not in r[1]):
                                r[1][a] = (lineno << SIZE_BITS) | n
                                n7 += 1
                                continue
                    elif code == 4 or code == 5:          # kfree, kmem_cache_free
                        a = ptrs.get(t[6])
                        if a is None:                     # ptr=%p: hex without 0x
                            p = t[6]
                            a = ptrs[p] = int(p[4:], 16) if p[:4] == b"ptr=" else -1
                        if a >= 0:
                            r = pages.get(a >> ps)
                            if r is not None:
                                r[1].pop(a, None)
                            if code == 4:
                                n4 += 1
                            else:
                                n5 += 1
                            continue
                    else:                                 # the page events
                        pfn = pfns.get(t[6])
                        if pfn is None:                   # pfn=0x%lx (5.10: pfn=%lu)
                            p = t[6]
                            pfn = pfns[p] = (int(p[6:], 16) if p[:6] == b"pfn=0x" else
                                             int(p[4:]) if p[:4] == b"pfn=" and p[4:].isdigit()
                                             else -1)
                        order = orders.get(t[7])
                        if order is None:
                            order = _order_token(orders, t[7])
                        if pfn < 0 or order < 0:
                            pass                          # the full handler reports it
                        elif order:
                            if self._page_fast(code, pfn, order, t, lineno):
                                if code == 1:
                                    n1 += 1
                                elif code == 2:
                                    n2 += 1
                                elif code == 3:
                                    n3 += 1
                                elif code == 6:
                                    n6 += 1
                                else:
                                    n8 += 1
                                continue
                        elif code == 1:                   # mm_page_alloc
                            c = frames.get(pfn >> CHUNK_SHIFT)
                            if c is not None:
                                off = pfn & (CHUNK - 1)
                                if not c[off] and t[5] not in NULL_PAGES:
                                    c[off] = 1
                                    blocks[pfn] = (0, lineno)
                                    n1 += 1
                                    continue
                        elif code == 2:                   # mm_page_free
                            c = frames.get(pfn >> CHUNK_SHIFT)
                            if c is not None:
                                off = pfn & (CHUNK - 1)
                                if c[off]:
                                    b = blocks.get(pfn)
                                    if b is None or b[0]:
                                        seen[2] += 1
                                        full(2, line, lineno)
                                        continue
                                    del blocks[pfn]
                                    c[off] = 0
                            pages.pop(self.vp0 + pfn, None)     # its objects end
                            n2 += 1
                            continue
                        elif code == 6:                   # mm_page_free_batched
                            n6 += 1
                            continue
                        else:                             # zone_locked, pcpu_drain
                            c = frames.get(pfn >> CHUNK_SHIFT)
                            if c is None or not c[pfn & (CHUNK - 1)]:
                                if code == 3:
                                    n3 += 1
                                else:
                                    n8 += 1
                                continue
                except (ValueError, IndexError):          # unreadable: the full
                    pass                                  # handler reports it
                seen[code] += 1
                full(code, line, lineno)
            if progress is not None:
                progress(lineno)
            if forward is not None:
                self.flush()
        for code, n in enumerate((n0, n1, n2, n3, n4, n5, n6, n7, n8)):
            seen[code] += n
        by_event.update({name: n for name, n in zip(FAST_EVENTS, seen) if n})

    def _steer(self, code, t, line, lineno) -> int:
        """The rare codes of the loop: an event while the trace is not yet
        synchronised (UNSYNCED); in the object process, a block of order > 1
        (LARGE_ALLOC) or a tracing gap (GAP). Returns the code the loop goes on with
        (-1: the line is done)."""
        if code == UNSYNCED:
            code = self.codes[t[4]]
            if code < FORWARD:
                self.seen[code] += 1
            self._see_cpu(t[1].decode("utf-8", "replace"), lineno)
            if code == FORWARD:
                self.forward(line, lineno)
                return -1
            if code == FREE_AND_FORWARD or code == ALLOC_AND_FORWARD:
                self.forward(line, lineno)
                code = 2 if code == FREE_AND_FORWARD else 1
                self.seen[code] += 1
            self._full_line(code, line, lineno)
            return -1
        if code == GAP:
            trust = int(t[5])
            self.tracing_gap(INF if trust < 0 else trust, t[6].decode())
            return -1
        # LARGE_ALLOC
        self._large_alloc_seen([tok.decode("utf-8", "replace") for tok in line.split()],
                               lineno)
        return -1

    # ------------------------------------------------------------------ two processes
    def role_pages(self, send) -> None:
        """Make this checker the page process of a two-process check: it checks the
        page and vmap events and passes the object events, the page frees, the
        blocks of order > 1 and the tracing gaps on, in order, through
        send(line numbers as array('q') bytes, lines joined)."""
        self.codes = PAGE_CODES_B
        self._send = send
        self._fwd_lines: list[bytes] = []
        self._fwd_nos = array("q")
        self.forward = self._forward
        self.uncounted = OBJECT_EVENTS
        for name in OBJECT_EVENTS:
            del self.handlers[name]

    def _forward(self, line: bytes, lineno: int) -> None:
        self._fwd_lines.append(line)
        self._fwd_nos.append(lineno)

    def flush(self) -> None:
        """Send what was forwarded since the last flush."""
        if self._fwd_lines:
            self._send(self._fwd_nos.tobytes(), b"".join(self._fwd_lines))
            self._fwd_lines.clear()
            del self._fwd_nos[:]

    def role_objects(self) -> None:
        """Make this checker the object process of a two-process check: it checks
        the object events, and of a page event does only what the object state
        needs (a freed page ends its objects; a block of order > 1 may be a large
        kmalloc). The page process reports everything about page events."""
        self.codes = OBJECT_CODES_B
        self.uncounted = ("mm_page_free:", "mm_page_alloc:")
        self.handlers = {name: self.handlers[name] for name in OBJECT_EVENTS}
        self.handlers["mm_page_free:"] = self._objects_of_free
        self.handlers["mm_page_alloc:"] = self._large_alloc_seen

    def _objects_of_free(self, t, line):
        """What on_mm_page_free does to the objects: the pages of a freed block
        that _check_block accepts end their objects."""
        try:
            pfn, order = tp.fields_mm_page(t)
        except ValueError:
            return                      # the page process reports it
        if 0 <= order <= self.top_order and not pfn & ((1 << order) - 1):
            self._evict(self.vp0 + pfn, 1 << order)

    def _large_alloc_seen(self, t, line):
        try:
            f = tp.fields_mm_page_alloc(t)
        except ValueError:
            return                      # the page process reports it
        if f is not None and f[1] > 1:
            self.last_page_alloc[t[1]] = f

    def report(self) -> dict:
        """What merge() takes from the object process (which counts only the object
        events: the page process counts the page events it forwards)."""
        by_event = {k: v for k, v in self.by_event.items() if k + ":" in OBJECT_EVENTS}
        return {"by_event": by_event, "counts": self.counts, "errors": self.errors,
                "n_errors": self.n_errors,
                "violations": self.violations, "warnings": self.warnings}

    def merge(self, r: dict) -> None:
        """Add the report of the object process: the result is the report one
        process checking the whole trace gives (findings in line order, at most
        KEEP_PER_GROUP kept per group)."""
        by_event = Counter(self.by_event)
        by_event.update(r["by_event"])
        self.events = sum(by_event.values())
        self.by_event = {k: v for k, v in sorted(by_event.items()) if v}
        for key, n in r["counts"].items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.violations = _first_per_group(self.violations + r["violations"])
        self.warnings = _first_per_group(self.warnings + r["warnings"])
        self.errors = sorted(self.errors + r["errors"],
                             key=lambda e: e["line"])[:self.max_errors]
        self.n_errors += r["n_errors"]

    def _cache_tail(self, cache: dict, tail: bytes) -> tuple[int, int]:
        """kmem_cache_alloc after ptr=: `name=%s bytes_req=%zu bytes_alloc=%zu ...`.
        (n, n) when the fast path may take it with bytes_alloc n (req <= n <= the
        largest kmalloc class), (-1, n) when only _place may (a larger n), (-1, -1)
        when the full handler must."""
        u = tail.split(None, 3)
        if u and u[0][:10] == b"bytes_req=":   # Linux 6.1: no name= field
            u = [b"name="] + u
        k = (-1, -1)
        if (len(u) >= 3 and u[0][:5] == b"name=" and u[1][:10] == b"bytes_req="
                and u[2][:12] == b"bytes_alloc="):
            try:
                req, n = int(u[1][10:]), int(u[2][12:])
            except ValueError:
                pass
            else:
                if 0 < n <= self.max_block and req <= n:
                    k = (n if n <= self.kmalloc_max else -1, n)
        cache[tail] = k
        return k

    def _kmalloc_tail(self, cache: dict, tail: bytes) -> int:
        """kmalloc after ptr=: `bytes_req=%zu bytes_alloc=%zu ...`: bytes_alloc when it
        is the class of bytes_req (so the fast path may take the line), else -1."""
        u = tail.split(None, 2)
        n = -1
        if len(u) >= 2 and u[0][:10] == b"bytes_req=" and u[1][:12] == b"bytes_alloc=":
            try:
                req, alloc = int(u[0][10:]), int(u[1][12:])
            except ValueError:
                pass
            else:
                if 0 < req <= self.kmalloc_max and self.class_of[req] == alloc:
                    n = alloc
        cache[tail] = n
        return n

    def _page_fast(self, code, pfn, order, t, lineno) -> bool:
        """The fast path of a page event of order > 0 (code: FAST_EVENTS): True when
        it applied the event, False when the full handler must."""
        if order > self.top_order or pfn & ((1 << order) - 1) or code == 6:
            return False
        c = self.frames.get(pfn >> CHUNK_SHIFT)
        off = pfn & (CHUNK - 1)
        n = 1 << order
        if code == 2:                                 # mm_page_free
            if c is not None and c.find(1, off, off + n) >= 0:
                b = self.blocks.get(pfn)
                if b is None or b[0] != order:
                    return False
                del self.blocks[pfn]
                c[off:off + n] = ZEROS[order]
            self._evict(self.vp0 + pfn, n)
            return True
        if code != 1:                                 # zone_locked, pcpu_drain
            return c is None or c.find(1, off, off + n) < 0
        if (c is not None and c.find(1, off, off + n) < 0
                and t[5] not in (b"page=0000000000000000", b"page=(null)")):
            c[off:off + n] = ONES[order]              # mm_page_alloc
            self.blocks[pfn] = (order, lineno)
            if order > 1:
                self.last_page_alloc[t[1].decode("utf-8", "replace")] = (pfn, order)
            return True
        return False

    def _full_line(self, code, line: bytes, lineno):
        """The full handler of a fast-path event (by code) on its raw line; the
        tokens are the line's bytes tokens, decoded, so that they are the ones the
        fast path saw."""
        t = [tok.decode("utf-8", "replace") for tok in line.split()]
        self._full(self.handlers[FAST_EVENTS[code]], t, lineno)

    def _full(self, h, t, lineno):
        """Run an event's full handler; a line it cannot read is an input error."""
        try:
            h(t, lineno)
        except (ValueError, IndexError) as exc:
            self.malformed[t[4]] += 1
            what = str(exc) if isinstance(exc, tp.MalformedLine) else f"unreadable field ({exc})"
            self.error(lineno, f"malformed {t[4][:-1]} line: {what}")

    def _slow_line(self, line: str, lineno: int) -> None:
        s = line.strip()
        if not s:
            return
        if s[0] == "#":
            hdr = tp.parse_header(s)
            if hdr is not None and hdr[1]:
                # The ring buffer overwrote its oldest events: each CPU's part of
                # the trace begins at a different time, and the trace is complete
                # only from the line where the last CPU appears.
                self.sync_cpus = hdr[0]
                self.tracing_gap(INF, CAUSE_OVERRUN)
            return
        lost = tp.parse_lost(s)
        if lost is not None:
            self.lost += lost
            self.tracing_gap(lineno, CAUSE_LOST)
            n = f"{lost} events" if lost != tp.UNCOUNTED else "an unknown number of events"
            self.warning(lineno, "trace_complete", "LOST",
                         f"the ring buffer dropped {n} here; conflicts with "
                         "earlier state are reported as warnings", CAUSE_LOST)
            return
        t = tp.normalize(line)
        if t is None:
            self.error(lineno, "not an ftrace event line (expected "
                       "'<task>-<pid> [<cpu>] ... <secs>.<usecs>: <event>: <fields>')")
            return
        name = t[4]
        if name not in self.uncounted:  # (each process counts its own events)
            self.by_event[name] = self.by_event.get(name, 0) + 1
        if self.forward is not None and name in FORWARDED_EVENTS:
            self.forward(line.encode("utf-8", "surrogateescape"), lineno)
        h = self.handlers.get(name)
        if h is None:
            return                      # another event: counted, not checked here
        if self.sync_cpus:
            self._see_cpu(t[1], lineno)
        self._full(h, t, lineno)

    def _see_cpu(self, cpu: str, lineno: int) -> None:
        self.cpus_seen.add(cpu)
        if len(self.cpus_seen) >= self.sync_cpus:
            self.sync_cpus = 0
            self.tracing_gap(lineno, CAUSE_OVERRUN)

    # ------------------------------------------------------------------ pages
    def _check_block(self, pfn, order, line, event) -> bool:
        """buddy_alignment: a block is 2^order frames at a pfn aligned to 2^order,
        order <= the top order. Linux 6.x mm/page_alloc.c: __rmqueue_smallest/expand."""
        if order > self.top_order or order < 0:
            self.violation(line, "buddy_alignment", event,
                           f"order {order} above the top order {self.top_order} (pfn {pfn:#x})")
            return False
        if pfn & ((1 << order) - 1):
            self.violation(line, "buddy_alignment", event,
                           f"pfn {pfn:#x} is not aligned to its order {order} "
                           f"(2^{order} = {1 << order} frames)")
            return False
        return True

    def _frames(self, pfn):
        """The live-frame bytes of pfn's chunk, and pfn's offset in it."""
        c = self.frames.get(pfn >> CHUNK_SHIFT)
        if c is None:
            c = self.frames[pfn >> CHUNK_SHIFT] = bytearray(CHUNK)
        return c, pfn & (CHUNK - 1)

    def _blocks_overlapping(self, pfn, order):
        """Live blocks overlapping [pfn, pfn + 2^order) (slow path: only called when
        some frame there is live). Aligned blocks overlap only by containment."""
        blocks = self.blocks
        found = {}
        for k in range(order, self.top_order + 1):
            head = pfn & ~((1 << k) - 1)
            b = blocks.get(head)
            if b is not None and head + (1 << b[0]) > pfn:
                found[head] = b
        for p in range(pfn + 1, pfn + (1 << order)):
            b = blocks.get(p)
            if b is not None:
                found[p] = b
        return found.items()

    def _take(self, pfn, order):
        """Forget the live blocks overlapping [pfn, pfn + 2^order) entirely."""
        for head, (o, _) in list(self._blocks_overlapping(pfn, order)):
            del self.blocks[head]
            c, off = self._frames(head)
            c[off:off + (1 << o)] = bytes(1 << o)

    def _page_conflict(self, pfn, order, line, event, what):
        c, off = self._frames(pfn)
        if c.find(1, off, off + (1 << order)) < 0:
            return
        for head, (o, made) in list(self._blocks_overlapping(pfn, order)):
            cause = self._gap_cause(made) or CAUSE_PAGE_FREE
            self.warning(line, "no_overlap", event,
                         f"{what} pfn {pfn:#x} order {order} overlaps the live block "
                         f"pfn {head:#x} order {o} allocated at line {made} and not "
                         "freed since", cause)
        self._take(pfn, order)

    def on_mm_page_alloc(self, t, line):
        f = tp.fields_mm_page_alloc(t)
        if f is None:
            return                      # failed allocation: page=NULL
        pfn, order = f
        if order > 1:                   # as the fast path: only a block past the
            self.last_page_alloc[t[1]] = f      # kmalloc caches can be a large kmalloc
        if not self._check_block(pfn, order, line, "mm_page_alloc"):
            return
        c, off = self._frames(pfn)
        if order:
            if c.find(1, off, off + (1 << order)) >= 0:
                self._page_conflict(pfn, order, line, "mm_page_alloc", "allocated block")
            c[off:off + (1 << order)] = ONES[order]
        else:
            if c[off]:
                self._page_conflict(pfn, 0, line, "mm_page_alloc", "allocated block")
            c[off] = 1
        self.blocks[pfn] = (order, line)

    def on_mm_page_free(self, t, line):
        pfn, order = tp.fields_mm_page(t)
        if not self._check_block(pfn, order, line, "mm_page_free"):
            return
        c, off = self._frames(pfn)
        b = self.blocks.pop(pfn, None)
        if b is not None and b[0] == order:
            c[off:off + (1 << order)] = bytes(1 << order)
        else:
            if b is not None:
                self.blocks[pfn] = b
            if c.find(1, off, off + (1 << order)) >= 0:
                self._free_part(pfn, order)
        # Objects still live in a freed page were freed without an event (a bulk
        # free): the page free ends them. Linux 6.x mm/slub.c: __free_slab.
        self._evict(self.vp0 + pfn, 1 << order)

    def _evict(self, vp, n):
        """Forget the objects in the n pages from virtual page vp (their page is
        freed)."""
        pages = self.pages
        for v in range(vp, vp + n):
            pages.pop(v, None)

    def _free_part(self, pfn, order):
        """A free that is not exactly a live block: it frees part of a larger live
        block (split_page, a split folio, the tail of a non-compound block: Linux 6.x
        mm/page_alloc.c: split_page, ___free_pages) or covers smaller live blocks."""
        blocks = self.blocks
        for head, (o, made) in list(self._blocks_overlapping(pfn, order)):
            del blocks[head]
            # keep what remains of a containing block as aligned buddies, the way
            # expand() halves a block (Linux 6.x mm/page_alloc.c: expand)
            while o > order:
                o -= 1
                half = head + (1 << o)
                if pfn >= half:
                    blocks[head] = (o, made)
                    head = half
                else:
                    blocks[half] = (o, made)
        c, off = self._frames(pfn)
        c[off:off + (1 << order)] = bytes(1 << order)

    def on_mm_page_free_batched(self, t, line):
        # Traced after mm_page_free for the same page (Linux 6.x mm/page_alloc.c:
        # free_unref_folios): not a second free.
        pfn, order = tp.fields_mm_page_free_batched(t)
        self._check_block(pfn, order, line, "mm_page_free_batched")

    def on_mm_page_alloc_zone_locked(self, t, line):
        # A block leaves the buddy free lists (to the caller or to a per-cpu list):
        # it cannot be part of a live block. Linux 6.x mm/page_alloc.c:
        # __rmqueue_smallest.
        pfn, order = tp.fields_mm_page(t)
        if self._check_block(pfn, order, line, "mm_page_alloc_zone_locked"):
            if self.blocks:
                self._page_conflict(pfn, order, line, "mm_page_alloc_zone_locked",
                                    "block taken from the buddy lists:")

    def on_mm_page_pcpu_drain(self, t, line):
        # A free block moves from a per-cpu list to the buddy lists.
        # Linux 6.x mm/page_alloc.c: free_pcppages_bulk.
        pfn, order = tp.fields_mm_page(t)
        if self._check_block(pfn, order, line, "mm_page_pcpu_drain"):
            if self.blocks:
                self._page_conflict(pfn, order, line, "mm_page_pcpu_drain",
                                    "block drained from a per-cpu list:")

    # ------------------------------------------------------------------ objects
    def on_kmalloc(self, t, line):
        ptr, req, alloc = tp.fields_kmalloc(t)
        if ptr == 0:
            return                      # failed allocation
        if not self.layout.is_kernel_pointer(ptr):
            self._place(ptr, alloc, line, "kmalloc", t[1])     # reports hashed pointers
            return
        if self._too_large(line, "kmalloc", ptr, alloc) or self._traced_twice(t[1], ptr, req,
                                                                           alloc, line):
            return
        # size_class: bytes_alloc is the class kmalloc picks for bytes_req.
        # Linux 6.x mm/slab_common.c: kmalloc_slab / __kmalloc_large_node.
        if req <= self.kmalloc_max:
            want = self.class_of[req] if req > 0 else None
        else:
            want = 1 << (get_order(req, self.page_shift) + self.page_shift)
        if alloc < req:
            self.violation(line, "size_class", "kmalloc",
                           f"bytes_alloc {alloc} < bytes_req {req} at {ptr:#x}")
        elif alloc != want:
            self.violation(line, "size_class", "kmalloc",
                           f"bytes_alloc {alloc} is not the class for bytes_req {req} "
                           f"(the {self.profile.name} class is {want})")
        # natural_alignment: power-of-two kmalloc objects are aligned to their size.
        # Linux 6.x mm/slab_common.c: create_kmalloc_cache (align = size, 5.4+).
        if alloc > 0 and not alloc & (alloc - 1) and ptr & (alloc - 1):
            self.violation(line, "natural_alignment", "kmalloc",
                           f"object {ptr:#x} of the power-of-two class {alloc} is not "
                           f"aligned to {alloc}")
        if alloc > self.kmalloc_max:
            self._learn_page_offset(t[1], ptr, alloc)
        self._place(ptr, alloc, line, "kmalloc", t[1])

    def on_kmem_cache_alloc(self, t, line):
        ptr, name, req, alloc = tp.fields_kmem_cache_alloc(t)
        if ptr == 0 or self._too_large(line, "kmem_cache_alloc", ptr, alloc):
            return
        # An object is never smaller than the cache's object size.
        # Linux 6.x mm/slub.c: slab_alloc_node traces s->object_size, s->size.
        if alloc < req:
            self.violation(line, "size_class", "kmem_cache_alloc",
                           f"bytes_alloc {alloc} < bytes_req {req} in cache {name} "
                           f"at {ptr:#x}")
        elif alloc <= 0:
            # SLUB objects are never empty: calculate_sizes leaves room for at least
            # the free pointer. Linux 6.x mm/slub.c.
            self.violation(line, "size_class", "kmem_cache_alloc",
                           f"bytes_alloc {alloc} in cache {name} at {ptr:#x}: a slab "
                           "object is never empty")
        self._place(ptr, alloc, line, "kmem_cache_alloc", t[1])

    def _traced_twice(self, cpu, ptr, req, alloc, line) -> bool:
        """A large kmalloc is traced twice, as one object: __kmalloc_large_node_noprof
        traces it (call site: its caller, e.g. __kvmalloc_node_noprof or
        __kmalloc_noprof), then __do_kmalloc_node traces it again for its own caller
        (Linux 6.18 mm/slub.c). So a large kmalloc with the ptr and sizes of the
        previous large kmalloc on the same CPU, that object still live, is the same
        object."""
        if alloc <= self.kmalloc_max:
            return False
        prev = self.last_large_kmalloc.get(cpu)
        self.last_large_kmalloc[cpu] = (ptr, req, alloc, line)
        if prev is None or prev[:3] != (ptr, req, alloc):
            return False
        r = self.pages.get(ptr >> self.page_shift)
        made = r[1].get(ptr) if r is not None else None
        return made is not None and made >> SIZE_BITS == prev[3]

    def _too_large(self, line, event, ptr, alloc) -> bool:
        """size_class: no object is larger than a top-order block (a large kmalloc is
        one block, a slab's objects lie in one slab). Checked before the object is
        placed, so that a huge number costs nothing. Linux 6.x mm/slub.c:
        __kmalloc_large_node (order <= MAX_PAGE_ORDER), calculate_order."""
        if alloc <= self.max_block:
            return False
        self.violation(line, "size_class", event,
                       f"bytes_alloc {alloc} at {ptr:#x} is larger than the largest "
                       f"block ({self.max_block} bytes: order {self.top_order})")
        return True

    def on_free(self, t, line):
        ptr = tp.fields_free(t)
        r = self.pages.get(ptr >> self.page_shift)
        if r is not None:
            r[1].pop(ptr, None)

    def _learn_page_offset(self, cpu, ptr, alloc):
        """A large kmalloc is a page block traced just before on the same CPU
        (Linux 6.x mm/slub.c: ___kmalloc_large_node): its address minus its pfn
        is the direct map base, which KASLR moves (CONFIG_RANDOMIZE_MEMORY)."""
        pa = self.last_page_alloc.get(cpu)
        if (not self.vp0_learnt and pa is not None
                and alloc == 1 << (pa[1] + self.page_shift)):
            vp0 = (ptr >> self.page_shift) - pa[0]
            if self._is_direct_map_base(vp0):
                self._set_page_offset(vp0)

    def _vote_page_offset(self, a, line, cpu):
        """The first object in a page never seen before, on the CPU that has just
        allocated a block of order > 1, is most likely in that block: a new slab
        (Linux 6.x mm/slub.c: allocate_slab, then the first object of the slab). The
        base it implies counts as learnt once blocks of two different slabs agree
        (an unrelated block gives a base on the KASLR grid by chance only once in
        2^16 or more)."""
        if not self.first_object_line:
            self.first_object_line = line
        if cpu is None:
            return
        if isinstance(cpu, bytes):
            cpu = cpu.decode("utf-8", "replace")
        pa = self.last_page_alloc.get(cpu)
        if pa is None:
            return
        pfn, order = pa
        d = (a >> self.page_shift) - pfn
        base = d - d % self.layout.kaslr_align_pages
        if d - base >= 1 << order or not self._is_direct_map_base(base):
            return
        votes = self.vp0_votes
        if len(votes) > 64:             # chance votes only: start afresh
            votes.clear()
        slabs = votes.setdefault(base, set())
        slabs.add(pfn)
        if len(slabs) >= 2:
            self._set_page_offset(base)

    def _is_direct_map_base(self, vp0) -> bool:
        return (self.layout.is_kernel_pointer(vp0 << self.page_shift)
                and not vp0 % self.layout.kaslr_align_pages)

    def _set_page_offset(self, vp0):
        """The direct map base is known: objects placed so far may have missed the
        page frees that ended them (computed with a guessed base), so they are
        forgotten, whatever the base (the same report for every layout)."""
        self.vp0 = vp0
        self.vp0_learnt = True
        self.vp0_votes.clear()
        self.pages.clear()

    def _object_conflict(self, line, event, message):
        """A conflict between live objects: a violation once the direct map base is
        learnt (page frees end objects), a warning before."""
        if self.vp0_learnt:
            self.violation(line, "no_overlap", event, message)
        else:
            self.warning(line, "no_overlap", event, message, CAUSE_DIRECT_MAP)

    def _place(self, a, n, line, event, cpu=None):
        """no_overlap of live objects. Objects of one slab are at the slab's start
        plus multiples of its object size; a page keeps its slab until the page is
        freed (Linux 6.x mm/slub.c: allocate_slab, __free_slab). So the record of
        every page a live object touches holds the object size and phase (size *
        geo + start % size, geo = 2 * KMALLOC_MAX_CACHE_SIZE; for a larger object -(start + 1), the page's owner);
        a new object with the same geometry can only meet an old one at the same
        start. Anything else takes the slow path and compares address ranges."""
        if n <= 0:
            return                      # occupies nothing (the handler reported it)
        layout = self.layout
        if not layout.is_kernel_pointer(a):
            if a >= 1 << layout.pointer_bits:
                self.error(line, f"object address {a:#x} is wider than "
                           f"{layout.pointer_bits} bits")
            elif not self.hashed:
                self.hashed = True
                self.error(line, f"object address {a:#x} is not a kernel address: the "
                           "trace was recorded with hashed pointers (options/hash-ptr); "
                           "object checks are skipped")
            return
        if not self.vp0_learnt:
            self._vote_page_offset(a, line, cpu)
        ps = self.page_shift
        P = a >> ps
        r = self.pages.get(P)
        old = r[1].get(a) if r is not None else None
        if old is not None:
            made = old >> SIZE_BITS
            old &= SIZE_MASK
            if old == n:
                # kmem_cache_free_bulk / kfree_bulk (and kvfree_rcu batches through
                # them) free without per-object events. Linux 6.x mm/slub.c.
                self.warning(line, "no_overlap", event,
                             lambda: f"object {a:#x} ({n} bytes) allocated again while "
                             f"live (allocated at line {made})", CAUSE_BULK_FREE)
            else:
                self._object_conflict(line, event,
                               f"object {a:#x} ({n} bytes) starts where the live object "
                               f"of {old} bytes allocated at line {made} starts, with no "
                               "free of its page in between")
            del r[1][a]
        else:
            g = n * self.geo + a % n if n <= self.kmalloc_max else -(a + 1)
            if r is None or r[0] != g or (a & ((1 << ps) - 1)) + n > 1 << ps:
                r = self._place_slow(a, n, g, line, event)
        r[1][a] = (line << SIZE_BITS) | n

    def _place_slow(self, a, n, g, line, event) -> list:
        """Compare [a, a + n) with the live objects that may overlap it; give the
        pages it touches its geometry g. Returns the record of a's page."""
        pages = self.pages
        ps = self.page_shift
        P, Q = a >> ps, (a + n - 1) >> ps
        for pg in range(P - LOOKBEHIND_PAGES, Q + 1):
            r = pages.get(pg)
            if r is None:
                continue
            starts = list(r[1])
            if r[0] < 0:
                starts.append(-r[0] - 1)
            for b in starts:
                rb = pages.get(b >> ps)
                s = rb[1].get(b) if rb is not None else None
                if s is None or b == a:
                    continue
                made = s >> SIZE_BITS
                s &= SIZE_MASK
                if b < a + n and a < b + s:
                    self._object_conflict(line, event,
                                   f"object [{a:#x}, {a + n:#x}) overlaps the live object "
                                   f"[{b:#x}, {b + s:#x}) allocated at line {made}, with "
                                   "no free of its page in between")
                    del rb[1][b]
        for pg in range(P, Q + 1):
            r = pages.get(pg)
            if r is None:
                pages[pg] = [g, {}]
            else:
                r[0] = g
        return pages[P]

    # ------------------------------------------------------------------ vmap areas
    def on_alloc_vmap_area(self, t, line):
        addr, size, align, vstart, vend, failed = tp.fields_alloc_vmap_area(t)
        if failed:
            return
        end = addr + size
        # vm_area_bounds: inside [vstart, vend), aligned to align.
        # Linux 6.x mm/vmalloc.c: alloc_vmap_area / __alloc_vmap_area.
        if addr < vstart or end > vend:
            self.violation(line, "vm_area_bounds", "alloc_vmap_area",
                           f"area [{addr:#x}, {end:#x}) is outside [{vstart:#x}, {vend:#x})")
        if align and addr % align:
            self.violation(line, "vm_area_bounds", "alloc_vmap_area",
                           f"area start {addr:#x} is not aligned to {align:#x}")
        starts, areas = self.area_starts, self.areas
        i = bisect_left(starts, addr)
        if i and areas[starts[i - 1]][0] > addr:
            i -= 1
        while i < len(starts) and starts[i] < end:
            s = starts[i]
            e, lazy, made = areas[s]
            if e <= addr:
                i += 1
                continue
            gap = self._gap_cause(made)
            if lazy:
                # free_vmap_area_noflush traces after the area joined the purge
                # list, so a purge on another CPU may take it first: its event then
                # comes before the free's (LAZY_PURGED_FIRST; spec/trace.md).
                if gap or lazy == LAZY_PURGED_FIRST:
                    self.warning(line, "no_overlap", "alloc_vmap_area",
                                 f"area [{addr:#x}, {end:#x}) overlaps [{s:#x}, {e:#x}) "
                                 f"lazily freed at line {made}", gap or CAUSE_LAZY_RACE)
                else:
                    self.violation(line, "no_overlap", "alloc_vmap_area",
                                   f"area [{addr:#x}, {end:#x}) overlaps [{s:#x}, {e:#x}) "
                                   f"lazily freed at line {made} and not purged since")
            else:
                self.warning(line, "no_overlap", "alloc_vmap_area",
                             f"area [{addr:#x}, {end:#x}) overlaps the live area "
                             f"[{s:#x}, {e:#x}) allocated at line {made}",
                             gap or CAUSE_VMAP_FREE)
            del starts[i]
            del areas[s]
        insort(starts, addr)
        areas[addr] = [end, False, line]

    def on_free_vmap_area_noflush(self, t, line):
        va = tp.fields_free_vmap_area_noflush(t)
        a = self.areas.get(va)
        if a is not None:
            p = self.last_purge
            a[1] = LAZY_PURGED_FIRST if p[0] <= va and a[0] <= p[1] else LAZY
            a[2] = line

    def on_purge_vmap_area_lazy(self, t, line):
        start, end, _ = tp.fields_purge_vmap_area_lazy(t)
        self.last_purge = (start, end)
        starts, areas = self.area_starts, self.areas
        i = bisect_left(starts, start)
        while i < len(starts) and starts[i] < end:
            s = starts[i]
            a = areas[s]
            if a[1] and a[0] <= end:
                del starts[i]
                del areas[s]
            else:
                i += 1

    # ------------------------------------------------------------------ result
    @property
    def exit_code(self) -> int:
        if self.n_errors:
            return 2
        return 1 if self.counts_of("violation") else 0

    def counts_of(self, kind: str) -> int:
        return sum(n for (k, _, _), n in self.counts.items() if k == kind)

    def to_json(self) -> dict:
        return {
            "events": self.events,
            "by_event": self.by_event,
            "violations": [f.to_json() for f in self.violations],
            "warnings": [f.to_json() for f in self.warnings],
            "errors": self.errors,
            "error_count": self.n_errors,
            "counts": {f"{k}:{inv}" + (f":{c}" if c else ""): n
                       for (k, inv, c), n in sorted(self.counts.items(),
                                                    key=lambda kv: str(kv[0]))},
        }


def _order_token(cache: dict, tail: bytes) -> int:
    """The order of a page event's tail `order=%d ...`, -1 when it does not start so."""
    o = tail.split(None, 1)[0] if tail.strip() else b""
    order = -1
    if o[:6] == b"order=":
        try:
            order = int(o[6:])
        except ValueError:
            pass
    cache[tail] = order if order >= 0 else -1
    return cache[tail]


def _first_per_group(findings: list) -> list:
    """Findings in line order, the first KEEP_PER_GROUP of each (invariant, cause)."""
    kept, n = [], Counter()
    for f in sorted(findings, key=lambda f: f.line):
        n[f.invariant, f.cause] += 1
        if n[f.invariant, f.cause] <= KEEP_PER_GROUP:
            kept.append(f)
    return kept


def _numbered_chunks(stream):
    """(line number, raw line) pairs of a binary stream, about 1 MiB at a time."""
    readlines = stream.readlines
    n = 0
    while True:
        chunk = readlines(1 << 20)
        if not chunk:
            return
        yield enumerate(chunk, n + 1)
        n += len(chunk)


class ObjectProcess:
    """The object process of a two-process check (TraceChecker.role_objects), forked
    from the page process, which sends it lines through a pipe and takes its report
    at the end.

    The page process writes without blocking, as much as the pipe takes, after each
    chunk; it waits for the pipe only when more than QUEUED chunks are pending. (A
    writer thread would wait for the page process's hot loop to let go of the GIL
    at every partial write, and the object process would starve.)"""

    QUEUED = 16
    PIPE_BYTES = 1 << 20

    def __init__(self, profile: Profile, strict: bool, max_errors: int):
        import fcntl                    # (Unix: fork is too)

        ctx = multiprocessing.get_context("fork")
        lines_in, self.lines_out = os.pipe()
        self.report_in, report_out = os.pipe()
        try:                            # room for a chunk's lines (Linux; else 64 KiB)
            fcntl.fcntl(self.lines_out, fcntl.F_SETPIPE_SZ, self.PIPE_BYTES)
        except (OSError, AttributeError):
            pass
        for std in (sys.stdout, sys.stderr):  # else the child flushes a copy too
            if std is not None:
                std.flush()
        self.proc = ctx.Process(target=_object_process_main, daemon=True,
                                args=(lines_in, report_out, (self.lines_out, self.report_in),
                                      profile, strict, max_errors))
        self.proc.start()
        os.close(lines_in)
        os.close(report_out)
        os.set_blocking(self.lines_out, False)
        self.pending: deque = deque()   # chunks, or what is left of them, to write

    def send(self, nos: bytes, lines: bytes) -> None:
        self.pending.append(memoryview(struct.pack("qq", len(nos), len(lines)) + nos + lines))
        self._pump(self.QUEUED)

    def _pump(self, queued: int) -> None:
        """Write what the pipe takes now; wait for it while more than `queued` chunks
        are pending."""
        pending = self.pending
        while pending:
            try:
                n = os.write(self.lines_out, pending[0])
            except BlockingIOError:
                if len(pending) <= queued:
                    return
                select.select([], [self.lines_out], [])
                continue
            except OSError as exc:          # the object process is gone
                raise RuntimeError(self._why(f"it stopped ({exc})")) from None
            if n < len(pending[0]):
                pending[0] = pending[0][n:]
            else:
                pending.popleft()

    def result(self) -> dict:
        """Write the rest, close the pipe, and read the object process's report."""
        self._pump(0)
        os.close(self.lines_out)
        self.lines_out = -1
        kind, value = self._read_report()
        if kind != "ok":
            raise RuntimeError(f"the object process of the trace check failed: {value}")
        return value

    def _read_report(self):
        with os.fdopen(self.report_in, "rb", closefd=False) as f:
            try:
                return pickle.load(f)
            except (EOFError, pickle.UnpicklingError):
                return "error", "it stopped without a report"

    def _why(self, what: str) -> str:
        kind, value = self._read_report()
        why = value if kind == "error" else what
        return f"the object process of the trace check failed: {why}"

    def close(self) -> None:
        if self.lines_out >= 0:             # the check stopped early: so does this
            self.proc.terminate()
            os.close(self.lines_out)
        os.close(self.report_in)
        self.proc.join()


def _received_chunks(lines_in: int):
    with os.fdopen(lines_in, "rb", buffering=1 << 20) as f:
        while True:
            head = f.read(16)
            if len(head) < 16:
                return
            n_nos, n_lines = struct.unpack("qq", head)
            numbers = array("q")
            numbers.frombytes(f.read(n_nos))
            yield zip(numbers, f.read(n_lines).split(b"\n"))


def _object_process_main(lines_in: int, report_out: int, parent_ends: tuple,
                         profile: Profile, strict: bool, max_errors: int) -> None:
    for fd in parent_ends:              # else the lines pipe never ends
        os.close(fd)
    with os.fdopen(report_out, "wb") as out:
        try:
            checker = TraceChecker(profile, strict, max_errors)
            checker.role_objects()
            checker._run(_received_chunks(lines_in), None)
            pickle.dump(("ok", checker.report()), out)
        except BaseException:
            pickle.dump(("error", traceback.format_exc()), out)


def _binary(stream):
    """The bytes behind a text stream (the loop reads raw lines, split at b"\\n")."""
    if isinstance(stream, io.TextIOWrapper):
        return stream.buffer
    if isinstance(stream, io.TextIOBase):
        return io.BytesIO(stream.read().encode("utf-8", "surrogateescape"))
    return stream


def compiled_available() -> bool:
    """Whether the compiled engine (trace/compiled.py: numba) can be imported."""
    try:
        import kmemspec.trace.compiled  # noqa: F401
    except ImportError:
        return False
    return True


def check_stream(stream, strict: bool = False, profile: Profile = LINUX_6X_X86_64,
                 progress=None, jobs: int = 1, max_errors: int = MAX_ERRORS,
                 engine: str = "python") -> TraceChecker:
    """Check a whole text stream (jobs=2: in two processes; engine="compiled": the
    numba engine, one process); return the checker with its findings."""
    if engine == "compiled":
        from kmemspec.trace.compiled import CompiledChecker
        checker = CompiledChecker(profile, strict, max_errors)
        checker.run(stream, progress)
        return checker
    checker = TraceChecker(profile, strict, max_errors)
    checker.run(stream, progress, jobs)
    return checker
