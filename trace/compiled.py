"""The compiled trace engine: the page and object rules of trace/check.py in numba.

`CompiledChecker` is a TraceChecker whose hot loop, and whose page and object state,
are numba-compiled (`cache=True`: the machine code is cached on disk, so the warm-up
is paid once per installation; no reference counting: see _jit). It reads the input
into one reused 8 MiB buffer (readinto), tokenises each line in place (no Python
object per line; line and token ends found 8 bytes a step), and keeps the live state
in compact arrays and int64 hash tables:

* live page blocks (head pfn -> line * 32 + order) and one byte per frame, in rows
  of 4096 frames;
* live objects: a table start -> slot, the slots in arrays (start, line << 23 | size,
  the previous and next object of its page), and per page a record (slab geometry,
  owner of a larger object, first and last object): the page lists keep the objects
  in the order the reference's per-page dicts have them, so that findings come out
  in the same order;
* the last block of order > 1 and the last large kmalloc per CPU token, and the
  direct-map-base votes.

What it decides alone: every page and object event of the default layout whose
stateless checks pass (alignment, order, size class, natural alignment, kernel
pointer), including every conflict, untraced-free warning, split block, page-free
eviction and direct-map learning. Its findings are records (group, line, numbers),
formatted into the reference's messages by `_drain` (at most KEEP_PER_GROUP per
group; the rest counted).

What it hands off, line by line, to the Python reference (TraceChecker's own code,
on the same state): lines that are not such an event (headers, comments, `[LOST]`
markers, unknown events), vmap events (their state lives in Python only), lines in
another layout or with numbers it does not read (the reference parses them with
trace/parse.py and applies them through the compiled state functions), lines whose
stateless checks fail (the reference reports them), and every line while the trace
is not synchronised after a buffer overrun. The hand-off handlers below are the
reference handlers with their state operations done on the compiled state; they
never re-decide what the compiled loop decided.

Values the compiled state cannot hold (a pfn beyond +-2^60 in a valid block, an
object reaching past the top of the 64-bit address space) raise Unsupported; the
command line then checks the file with the Python engine (spec/trace.md).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kmemspec.trace import parse as tp
from kmemspec.trace.check import (CAUSE_BULK_FREE, CAUSE_DIRECT_MAP, CAUSE_LOST,
                                  CAUSE_OVERRUN, CAUSE_PAGE_FREE, FAST_EVENTS, INF,
                                  KEEP_PER_GROUP, SIZE_BITS, TraceChecker, _binary,
                                  get_order)

BLOCK_BYTES = 8 << 20
ROW = 4096                      # frames per row (CHUNK of check.py)
ROW_SHIFT = 12
MIN64 = -(1 << 63)
MAX64 = (1 << 63) - 1
M64 = (1 << 64) - 1
PFN_LIMIT = 1 << 60
BIG_LINE = 1 << 62              # a trust line of INF
EVENTS_B = [e.encode() for e in FAST_EVENTS]

# scalars of the state (array S)
VP0, LEARNT, TRUST, GAPC, FIRST_OBJ, SYNC, NREC, ROWS, PG_NFREE, OB_NFREE = range(10)
EXTRA = 10                      # 6 groups: findings beyond KEEP_PER_GROUP, counted only
EMITTED = 16                    # 6 groups: findings recorded
COUNTS = 22                     # 12 event codes: lines the compiled loop handled
NSCAL = 48
# constants (array C)
C_PS, C_TOP, C_KMAX, C_GEO, C_MAXBLK, C_KSPACE, C_BITS, C_KPAGES, C_KSPG, C_LIMPG = range(10)
# finding groups (all no_overlap): (kind, cause)
G_PAGE_FREE, G_LOST, G_OVERRUN, G_BULK, G_VIOL, G_DMAP = range(6)
GROUPS = (("warning", CAUSE_PAGE_FREE), ("warning", CAUSE_LOST),
          ("warning", CAUSE_OVERRUN), ("warning", CAUSE_BULK_FREE),
          ("violation", None), ("warning", CAUSE_DIRECT_MAP))
REC_ROWS = 6 * KEEP_PER_GROUP + 8
# statuses of scan()
DONE, HANDOFF, GROW, UNSUPPORTED = range(4)
PG_MARGIN = 2100                # page records one line may create (a 4 MiB object)


def _jit(inline="never"):
    """numba's njit as the engine compiles everything: cached on disk, without the
    runtime's reference counting (`_nrt=False`: every array is made by Python and
    outlives the call, so nothing is freed here; with counting, each call passing the
    state tuple cost some 40 atomic increments and decrements), and numpy's error
    model for integers (no zero-division checks: no divisor here is zero)."""
    return njit(cache=True, _nrt=False, error_model="numpy", inline=inline)


class Unsupported(Exception):
    """A value the compiled state cannot hold; check with --engine python."""


def _bytes_array(b: bytes):
    return np.frombuffer(b, dtype=np.uint8).copy()


P_PTR = _bytes_array(b"ptr=")
P_PFN = _bytes_array(b"pfn=")
P_PFN_HEX = _bytes_array(b"pfn=0x")
P_ORDER = _bytes_array(b"order=")
P_NAME = _bytes_array(b"name=")
P_REQ = _bytes_array(b"bytes_req=")
P_ALLOC = _bytes_array(b"bytes_alloc=")
P_NULL1 = _bytes_array(b"page=0000000000000000")
P_NULL2 = _bytes_array(b"page=(null)")
# white space as bytes.split() has it (1), and the newline (2)
WS = np.zeros(256, dtype=np.uint8)
WS[[9, 11, 12, 13, 32]] = 1
WS[10] = 2
NAMES = np.zeros((len(EVENTS_B), 32), dtype=np.uint8)
NAME_LEN = np.array([len(e) for e in EVENTS_B], dtype=np.int64)
for _i, _e in enumerate(EVENTS_B):
    NAMES[_i, :len(_e)] = np.frombuffer(_e, dtype=np.uint8)


def cpu_key(tok: str) -> int:
    """FNV-1a (64-bit, as int64) of a CPU token's UTF-8 bytes: the compiled state's
    key for the reference's per-CPU dicts (keyed by the token text)."""
    h = 0xCBF29CE484222325
    for c in tok.encode("utf-8", "surrogateescape"):
        h = ((h ^ c) * 0x100000001B3) & M64
    return h - (1 << 64) if h >= 1 << 63 else h


def s64(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


# ---------------------------------------------------------------- compiled helpers
EMPTY = MIN64                   # the free slot of a table (no key is MIN64)
# entries in the tables: blocks, rows, pages, objects, last block of order > 1 per
# CPU (pfn, order), direct-map votes, last large kmalloc per CPU
CB, CR, CP, CO, CL1, CL2, CV, CK = 34, 35, 36, 37, 38, 39, 40, 41


@_jit(inline="always")
def _slot(k, mask):
    x = k * np.int64(-7046029254386353131)
    return (x ^ (x >> 31)) & mask


@_jit(inline="always")
def ht_get(tab, k, default):
    mask = tab.shape[0] - 1
    i = _slot(k, mask)
    while True:
        kk = tab[i, 0]
        if kk == k:
            return tab[i, 1]
        if kk == EMPTY:
            return default
        i = (i + 1) & mask


@_jit(inline="always")
def ht_put(tab, S, c, k, v):
    mask = tab.shape[0] - 1
    i = _slot(k, mask)
    while True:
        kk = tab[i, 0]
        if kk == k:
            tab[i, 1] = v
            return
        if kk == EMPTY:
            tab[i, 0] = k
            tab[i, 1] = v
            S[c] += 1
            return
        i = (i + 1) & mask


@_jit()
def ht_del(tab, S, c, k):
    """Remove k (linear probing, backward-shift deletion: no tombstones)."""
    mask = tab.shape[0] - 1
    i = _slot(k, mask)
    while True:
        kk = tab[i, 0]
        if kk == k:
            break
        if kk == EMPTY:
            return
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        kj = tab[j, 0]
        if kj == EMPTY:
            break
        h = _slot(kj, mask)
        if (j > i and (h <= i or h > j)) or (j < i and h <= i and h > j):
            tab[i, 0] = kj
            tab[i, 1] = tab[j, 1]
            i = j
    tab[i, 0] = EMPTY
    S[c] -= 1


@_jit()
def ht_rehash(tab, new, S, c):
    S[c] = 0
    for i in range(tab.shape[0]):
        if tab[i, 0] != EMPTY:
            ht_put(new, S, c, tab[i, 0], tab[i, 1])


@_jit(inline="always")
def _ult(x, y):
    return (x ^ MIN64) < (y ^ MIN64)


@_jit(inline="always")
def _is_kernel(C, a):
    if _ult(a, C[C_KSPACE]):
        return False
    return C[C_BITS] == 64 or (a >= 0 and a < (1 << 32))


@_jit(inline="always")
def _page_of(C, a):
    ps = C[C_PS]
    return (a >> ps) & ((1 << (64 - ps)) - 1)


@_jit(inline="always")
def _umod(a, n):
    if a >= 0:
        return a % n
    hi = (((1 << 62) % n) * 2) % n
    return ((a & MAX64) % n + hi) % n


@_jit(inline="always")
def _prefix(buf, s, e, p):
    if e - s < p.shape[0]:
        return False
    for i in range(p.shape[0]):
        if buf[s + i] != p[i]:
            return False
    return True


@_jit(inline="always")
def _equal(buf, s, e, p):
    return e - s == p.shape[0] and _prefix(buf, s, e, p)


@_jit(inline="always")
def _hex(buf, s, e, maxdig):
    """(ok, value) of [0-9a-fA-F]+ with at most maxdig significant digits."""
    if s >= e:
        return False, 0
    v = 0
    sig = 0
    for i in range(s, e):
        c = buf[i]
        if 48 <= c <= 57:
            d = c - 48
        elif 97 <= c <= 102:
            d = c - 87
        elif 65 <= c <= 70:
            d = c - 55
        else:
            return False, 0
        if sig or d:
            sig += 1
        v = (v << 4) | d
    return sig <= maxdig, v


@_jit(inline="always")
def _dec(buf, s, e):
    if s >= e or e - s > 18:
        return False, 0
    v = 0
    for i in range(s, e):
        c = buf[i]
        if c < 48 or c > 57:
            return False, 0
        v = v * 10 + (c - 48)
    return True, v


@_jit()
def _emit(S, rec, g, line, ev, sub, p1, p2, p3, p4, p5, p6):
    if S[EMITTED + g] >= KEEP_PER_GROUP:
        S[EXTRA + g] += 1
        return
    S[EMITTED + g] += 1
    r = S[NREC]
    S[NREC] = r + 1
    rec[r, 0] = g
    rec[r, 1] = line
    rec[r, 2] = ev
    rec[r, 3] = sub
    rec[r, 4] = p1
    rec[r, 5] = p2
    rec[r, 6] = p3
    rec[r, 7] = p4
    rec[r, 8] = p5
    rec[r, 9] = p6


# ---------------------------------------------------------------- pages
@_jit(inline="always")
def _row(S, rows, frames, pfn, create):
    k = pfn >> ROW_SHIFT
    r = ht_get(rows, k, -1)
    if r < 0 and create:
        r = S[ROWS]
        S[ROWS] = r + 1
        frames[r, :] = 0
        ht_put(rows, S, CR, k, r)
    return r


@_jit(inline="always")
def _any_live(S, rows, frames, pfn, order):
    r = _row(S, rows, frames, pfn, False)
    if r < 0:
        return False
    off = pfn & (ROW - 1)
    for i in range(off, off + (1 << order)):
        if frames[r, i]:
            return True
    return False


@_jit(inline="always")
def _set_frames(S, rows, frames, pfn, order, v):
    r = _row(S, rows, frames, pfn, True)
    off = pfn & (ROW - 1)
    frames[r, off:off + (1 << order)] = v


@_jit()
def _overlapping(C, blocks, pfn, order, out):
    """Live blocks overlapping [pfn, pfn + 2^order), in the reference's order
    (_blocks_overlapping): containing heads by rising order, then heads inside."""
    n = 0
    for k in range(order, C[C_TOP] + 1):
        head = pfn & ~((1 << k) - 1)
        b = ht_get(blocks, head, -1)
        if b >= 0 and head + (1 << (b & 31)) > pfn:
            dup = False
            for j in range(n):
                if out[j, 0] == head:
                    dup = True
            if not dup:
                out[n, 0] = head
                out[n, 1] = b
                n += 1
    for p in range(pfn + 1, pfn + (1 << order)):
        b = ht_get(blocks, p, -1)
        if b >= 0:
            out[n, 0] = p
            out[n, 1] = b
            n += 1
    return n


@_jit()
def _page_conflict(S, C, blocks, rows, frames, rec, out, pfn, order, line, ev):
    if not _any_live(S, rows, frames, pfn, order):
        return
    n = _overlapping(C, blocks, pfn, order, out)
    for j in range(n):
        head, b = out[j, 0], out[j, 1]
        made = b >> 5
        g = G_PAGE_FREE
        if made < S[TRUST]:
            g = G_LOST if S[GAPC] == 0 else G_OVERRUN
        _emit(S, rec, g, line, ev, 0, pfn, order, head, b & 31, made, 0)
    for j in range(n):                  # _take
        head, b = out[j, 0], out[j, 1]
        ht_del(blocks, S, CB, head)
        _set_frames(S, rows, frames, head, b & 31, 0)


@_jit()
def page_alloc(st, C, pfn, order, line):
    S, blocks, rows, frames, rec, out = st[0], st[1], st[2], st[3], st[12], st[13]
    if _any_live(S, rows, frames, pfn, order):
        _page_conflict(S, C, blocks, rows, frames, rec, out, pfn, order, line, 1)
    _set_frames(S, rows, frames, pfn, order, 1)
    ht_put(blocks, S, CB, pfn, line * 32 + order)


@_jit()
def page_buddy(st, C, pfn, order, line, ev):
    """mm_page_alloc_zone_locked (ev 3), mm_page_pcpu_drain (ev 8)."""
    S, blocks, rows, frames, rec, out = st[0], st[1], st[2], st[3], st[12], st[13]
    if S[CB]:
        _page_conflict(S, C, blocks, rows, frames, rec, out, pfn, order, line, ev)


@_jit()
def page_free(st, C, pfn, order):
    S, blocks, rows, frames, out = st[0], st[1], st[2], st[3], st[13]
    b = ht_get(blocks, pfn, -1)
    if b >= 0 and (b & 31) == order:
        ht_del(blocks, S, CB, pfn)
        _set_frames(S, rows, frames, pfn, order, 0)
    elif _any_live(S, rows, frames, pfn, order):
        n = _overlapping(C, blocks, pfn, order, out)       # _free_part
        for j in range(n):
            head, bb = out[j, 0], out[j, 1]
            o = bb & 31
            made = bb >> 5
            ht_del(blocks, S, CB, head)
            while o > order:
                o -= 1
                half = head + (1 << o)
                if pfn >= half:
                    ht_put(blocks, S, CB, head, made * 32 + o)
                    head = half
                else:
                    ht_put(blocks, S, CB, half, made * 32 + o)
        _set_frames(S, rows, frames, pfn, order, 0)
    _evict(st, S[VP0] + pfn, 1 << order)


# ---------------------------------------------------------------- objects
@_jit()
def _drop_page(st, vp):
    S, pages, pg, pg_free, objs, ob, ob_free = st[0], st[4], st[5], st[6], st[7], st[8], st[9]
    s = ht_get(pages, vp, -1)
    if s < 0:
        return
    i = pg[s, 2]
    while i >= 0:
        nx = ob[i, 3]
        ht_del(objs, S, CO, ob[i, 0])
        ob_free[S[OB_NFREE]] = i
        S[OB_NFREE] += 1
        i = nx
    ht_del(pages, S, CP, vp)
    pg_free[S[PG_NFREE]] = s
    S[PG_NFREE] += 1


@_jit()
def _evict(st, vp, n):
    pages = st[4]
    if not st[0][CP]:
        return
    for v in range(vp, vp + n):
        _drop_page(st, v)


@_jit()
def clear_objects(st):
    S, pages, pg_free, objs, ob_free = st[0], st[4], st[6], st[7], st[9]
    pages[:, 0] = EMPTY
    objs[:, 0] = EMPTY
    S[CP] = 0
    S[CO] = 0
    for i in range(pg_free.shape[0]):
        pg_free[i] = i
    S[PG_NFREE] = pg_free.shape[0]
    for i in range(ob_free.shape[0]):
        ob_free[i] = i
    S[OB_NFREE] = ob_free.shape[0]


@_jit(inline="always")
def _unlink(st, i):
    S, pg, objs, ob, ob_free = st[0], st[5], st[7], st[8], st[9]
    s = ob[i, 4]
    p, nx = ob[i, 2], ob[i, 3]
    if p >= 0:
        ob[p, 3] = nx
    else:
        pg[s, 2] = nx
    if nx >= 0:
        ob[nx, 2] = p
    else:
        pg[s, 3] = p
    ht_del(objs, S, CO, ob[i, 0])
    ob_free[S[OB_NFREE]] = i
    S[OB_NFREE] += 1


@_jit()
def _new_page(st, vp, g, owner):
    S, pages, pg, pg_free = st[0], st[4], st[5], st[6]
    S[PG_NFREE] -= 1
    s = pg_free[S[PG_NFREE]]
    pg[s, 0] = g
    pg[s, 1] = owner
    pg[s, 2] = -1
    pg[s, 3] = -1
    ht_put(pages, S, CP, vp, s)
    return s


@_jit(inline="always")
def _append(st, s, a, val):
    S, pg, objs, ob, ob_free = st[0], st[5], st[7], st[8], st[9]
    S[OB_NFREE] -= 1
    i = ob_free[S[OB_NFREE]]
    ob[i, 0] = a
    ob[i, 1] = val
    ob[i, 2] = pg[s, 3]
    ob[i, 3] = -1
    ob[i, 4] = s
    if pg[s, 3] >= 0:
        ob[pg[s, 3], 3] = i
    else:
        pg[s, 2] = i
    pg[s, 3] = i
    ht_put(objs, S, CO, a, i)


@_jit(inline="always")
def obj_free(st, a):
    i = ht_get(st[7], a, -1)
    if i >= 0:
        _unlink(st, i)


@_jit()
def _conflict_group(S):
    return G_VIOL if S[LEARNT] else G_DMAP


@_jit()
def _is_base(C, bp):
    return bp >= C[C_KSPG] and bp < C[C_LIMPG] and (bp & (C[C_KPAGES] - 1)) == 0


@_jit()
def _set_page_offset(st, vp0):
    S, votes = st[0], st[11]
    S[VP0] = vp0
    S[LEARNT] = 1
    votes[:, 0] = EMPTY
    S[CV] = 0
    clear_objects(st)


@_jit()
def _vote(st, C, a, line, cpu):
    S, lpa_pfn, lpa_order, votes = st[0], st[10], st[14], st[11]
    if not S[FIRST_OBJ]:
        S[FIRST_OBJ] = line
    pfn = ht_get(lpa_pfn, cpu, MIN64)
    if pfn == MIN64:
        return
    order = ht_get(lpa_order, cpu, 0)
    d = _page_of(C, a) - pfn
    base = d - (d & (C[C_KPAGES] - 1))
    if (order < 62 and d - base >= (1 << order)) or not _is_base(C, base):
        return
    if S[CV] > 64:
        votes[:, 0] = EMPTY
        S[CV] = 0
    first = ht_get(votes, base, MIN64)
    if first == MIN64:
        ht_put(votes, S, CV, base, pfn)
    elif first != pfn:
        _set_page_offset(st, base)


@_jit()
def fits(C, a, n):
    """The object [a, a + n) ends below 2^64 (else the state cannot hold it)."""
    return n <= 0 or (a ^ MIN64) <= MAX64 - n


@_jit()
def place(st, C, a, n, line, ev, cpu):
    """_place of check.py for a kernel pointer a (int64 bits) that fits."""
    if n <= 0:
        return
    S, pages, pg, objs, ob, rec = st[0], st[4], st[5], st[7], st[8], st[12]
    if not S[LEARNT]:
        _vote(st, C, a, line, cpu)
    ps = C[C_PS]
    P = _page_of(C, a)
    s = ht_get(pages, P, -1)
    i = ht_get(objs, a, -1) if s >= 0 else -1
    if i >= 0:
        old = ob[i, 1]
        made = old >> SIZE_BITS
        old &= (1 << SIZE_BITS) - 1
        if old == n:
            _emit(S, rec, G_BULK, line, ev, 0, a, n, made, 0, 0, 0)
        else:
            _emit(S, rec, _conflict_group(S), line, ev, 1, a, n, old, made, 0, 0)
        _unlink(st, i)
    else:
        small = n <= C[C_KMAX]
        g = n * C[C_GEO] + _umod(a, n) if small else -1
        owner = 0 if small else a
        if (s < 0 or pg[s, 0] != g or (not small and pg[s, 1] != owner)
                or (a & ((1 << ps) - 1)) + n > (1 << ps)):
            s = _place_slow(st, C, a, n, g, owner, line, ev)
    _append(st, s, a, (line << SIZE_BITS) | n)


@_jit()
def _check_overlap(st, C, a, n, b, line, ev):
    S, objs, ob, rec = st[0], st[7], st[8], st[12]
    j = ht_get(objs, b, -1)
    if j < 0 or b == a:
        return
    sv = ob[j, 1]
    made = sv >> SIZE_BITS
    sz = sv & ((1 << SIZE_BITS) - 1)
    A, B = a ^ MIN64, b ^ MIN64
    if B < A + n and A < B + sz:
        _emit(S, rec, _conflict_group(S), line, ev, 2, a, n, b, sz, made, 0)
        _unlink(st, j)


@_jit()
def _place_slow(st, C, a, n, g, owner, line, ev):
    pages, pg, ob = st[4], st[5], st[8]
    P = _page_of(C, a)
    Q = _page_of(C, a + n - 1)
    for vp in range(P - 2, Q + 1):
        s = ht_get(pages, vp, -1)
        if s < 0:
            continue
        # the starts of the page's objects (as list(r[1]) has them), then the owner;
        # distinct starts in one page: at most 1 << page_shift
        starts = st[17]
        k = 0
        i = pg[s, 2]
        while i >= 0:
            starts[k] = ob[i, 0]
            k += 1
            i = ob[i, 3]
        if pg[s, 0] < 0:
            starts[k] = pg[s, 1]
            k += 1
        for j in range(k):
            _check_overlap(st, C, a, n, starts[j], line, ev)
    for vp in range(P, Q + 1):
        s = ht_get(pages, vp, -1)
        if s < 0:
            _new_page(st, vp, g, owner)
        else:
            pg[s, 0] = g
            pg[s, 1] = owner
    return ht_get(pages, P, -1)


@_jit()
def set_last_page_alloc(st, cpu, pfn, order):
    ht_put(st[10], st[0], CL1, cpu, pfn)
    ht_put(st[14], st[0], CL2, cpu, order)


@_jit()
def traced_twice(st, C, cpu, ptr, req, alloc, line):
    if alloc <= C[C_KMAX]:
        return False
    lk = st[15]
    prev = ht_get(lk, cpu, -1)
    same = False
    if prev >= 0:
        same = (st[16][prev * 4] == ptr and st[16][prev * 4 + 1] == req
                and st[16][prev * 4 + 2] == alloc)
        k = prev
    else:
        k = st[0][CK]
        if 4 * k + 4 > st[16].shape[0]:
            return False                # (grown by the caller before: see _need)
        ht_put(lk, st[0], CK, cpu, k)
    pline = st[16][k * 4 + 3]
    st[16][k * 4] = ptr
    st[16][k * 4 + 1] = req
    st[16][k * 4 + 2] = alloc
    st[16][k * 4 + 3] = line
    if not same:
        return False
    i = ht_get(st[7], ptr, -1)
    return i >= 0 and (st[8][i, 1] >> SIZE_BITS) == pline


@_jit()
def learn(st, C, cpu, ptr, alloc):
    S = st[0]
    pfn = ht_get(st[10], cpu, MIN64)
    if S[LEARNT] or pfn == MIN64:
        return
    order = ht_get(st[14], cpu, 0)
    if order + C[C_PS] < 62 and alloc == 1 << (order + C[C_PS]):
        vp0 = _page_of(C, ptr) - pfn
        if _is_base(C, vp0):
            _set_page_offset(st, vp0)


# ---------------------------------------------------------------- the loop
# tokens each event's line needs read (kmem_cache_alloc: 10, then 13 when it is not
# in the default layout, to tell a 6.1 line's count)
NEED = np.array([10, 8, 8, 8, 7, 7, 8, 9, 8, 5, 5, 5], dtype=np.int64)


@_jit(inline="always")
def _tokens(buf, w, i, e, tok, nt, upto):
    """Tokens of buf[i:e] from the nt-th until there are `upto`; (count, position).
    Within a token, 8 bytes a step while the word (w: buf as int64 words) has no
    byte below 33 (x has one when (x - 0x21..) & ~x & 0x80.. is not 0): white space
    is 9-13 and 32."""
    while nt < upto:
        while i < e and WS[buf[i]] == 1:
            i += 1
        if i >= e:
            break
        tok[nt, 0] = i
        while i < e and i & 7 and WS[buf[i]] != 1:
            i += 1
        if not i & 7:
            k = i >> 3
            while (k << 3) + 8 <= e:
                x = w[k]
                if (x - np.int64(0x2121212121212121)) & ~x & np.int64(-0x7F7F7F7F7F7F7F80):
                    break
                k += 1
            i = k << 3
        while i < e and WS[buf[i]] != 1:
            i += 1
        tok[nt, 1] = i
        nt += 1
    return nt, i


@_jit()
def _names_a_field(buf, tok, nt):
    """Whether token 5 or a token from 9 on is ptr=, bytes_req= or bytes_alloc=."""
    for k in range(5, nt):
        if k < 9 and k != 5:
            continue
        s, e = tok[k, 0], tok[k, 1]
        if _prefix(buf, s, e, P_PTR) or _prefix(buf, s, e, P_REQ) or _prefix(buf, s, e,
                                                                              P_ALLOC):
            return True
    return False


@_jit(inline="always")
def _must_grow(st):
    """Whether a pool or table may overflow on the next line."""
    S = st[0]
    return (S[PG_NFREE] < PG_MARGIN or S[OB_NFREE] < 8 or S[ROWS] + 2 >= st[3].shape[0]
            or 4 * S[CK] + 8 > st[16].shape[0] or 2 * S[CK] + 8 > st[15].shape[0]
            or 2 * S[CL1] + 8 > st[10].shape[0] or 2 * S[CL2] + 8 > st[14].shape[0]
            or 2 * S[CV] + 8 > st[11].shape[0]
            or 2 * S[CB] + 64 > st[1].shape[0] or 2 * S[CR] + 8 > st[2].shape[0]
            or 2 * (S[CP] + PG_MARGIN) > st[4].shape[0]
            or 2 * S[CO] + 8 > st[7].shape[0])


@_jit()
def _last_newline(buf, s, e):
    """The position of the last newline in buf[s:e], or -1."""
    for i in range(e - 1, s - 1, -1):
        if buf[i] == 10:
            return i
    return -1


@_jit(inline="always")
def _line_end(buf, w, i):
    """The position of the first newline from i (there is one: the caller's block
    ends with one, or with a sentinel newline). w: buf viewed as int64 words; 8
    bytes a step (a word has a newline byte when (x - 0x01..) & ~x & 0x80.. is not 0,
    x its bytes xor 0x0a)."""
    while i & 7:
        if buf[i] == 10:
            return i
        i += 1
    k = i >> 3
    while True:
        x = w[k] ^ np.int64(0x0A0A0A0A0A0A0A0A)
        if (x - np.int64(0x0101010101010101)) & ~x & np.int64(-0x7F7F7F7F7F7F7F80):
            break
        k += 1
    i = k << 3
    while buf[i] != 10:
        i += 1
    return i


@_jit()
def scan(buf, w, pos, end, lineno, st, C, cls):
    """Check the lines of buf[pos:end] (buf[end - 1], or a sentinel buf[end], is a
    newline; w: buf as int64 words); return (status, position, line number, event
    code, start of the line) at the end, or at a line to hand off (its end), or
    before a line when the pools must grow."""
    S, blocks, rows, frames, pages, objs = st[0], st[1], st[2], st[3], st[4], st[7]
    tok = st[18]
    ps = C[C_PS]
    top = C[C_TOP]
    kmax = C[C_KMAX]
    maxblk = C[C_MAXBLK]
    while pos < end:
        if _must_grow(st):
            return GROW, pos, lineno, -1, pos
        ls = pos
        lineno += 1
        e = _line_end(buf, w, pos)
        pos = e + 1
        # tokens as bytes.split() has them (white space: 9-13 and 32): the first 5,
        # then as many as the event needs
        nt, i = _tokens(buf, w, ls, e, tok, 0, 5)
        if nt < 5:
            return HANDOFF, pos, lineno, -1, ls
        ts, te = tok[4, 0], tok[4, 1]
        code = -1
        for k in range(NAME_LEN.shape[0]):
            if te - ts == NAME_LEN[k]:
                same = True
                for j in range(NAME_LEN[k]):
                    if buf[ts + j] != NAMES[k, j]:
                        same = False
                        break
                if same:
                    code = k
                    break
        if code < 0 or code >= 9 or S[SYNC]:
            return HANDOFF, pos, lineno, code, ls
        nt, i = _tokens(buf, w, i, e, tok, nt, NEED[code])

        # the CPU token keys the per-CPU state: ASCII only (else the reference's
        # decoded text is the key)
        cpu = np.int64(-3750763034362895579)     # FNV-1a offset basis as int64
        for j in range(tok[1, 0], tok[1, 1]):
            c = buf[j]
            if c >= 128:
                cpu = 0
                break
            cpu = (cpu ^ c) * np.int64(1099511628211)
        if cpu == 0:
            return HANDOFF, pos, lineno, code, ls
        if code == 0 or code == 7 or code == 4 or code == 5:
            if nt < 7 or not _prefix(buf, tok[6, 0], tok[6, 1], P_PTR):
                return HANDOFF, pos, lineno, code, ls
            ok, a = _hex(buf, tok[6, 0] + 4, tok[6, 1], 16)
            if not ok:
                return HANDOFF, pos, lineno, code, ls
            if code == 4 or code == 5:
                obj_free(st, a)
                S[COUNTS + code] += 1
                continue
            if code == 0:
                default = (nt >= 10 and _prefix(buf, tok[7, 0], tok[7, 1], P_NAME)
                           and _prefix(buf, tok[8, 0], tok[8, 1], P_REQ)
                           and _prefix(buf, tok[9, 0], tok[9, 1], P_ALLOC))
                if not default:
                    nt, i = _tokens(buf, w, i, e, tok, nt, 13)
                if default:
                    ok1, req = _dec(buf, tok[8, 0] + 10, tok[8, 1])
                    ok2, n = _dec(buf, tok[9, 0] + 12, tok[9, 1])
                elif (nt >= 9 and nt <= 12 and (nt < 10 or not _prefix(buf, tok[7, 0],
                                                                         tok[7, 1], P_NAME))
                        and _prefix(buf, tok[7, 0], tok[7, 1], P_REQ)
                        and _prefix(buf, tok[8, 0], tok[8, 1], P_ALLOC)
                        and not _names_a_field(buf, tok, nt)):
                    # Linux 6.1: no name= (the reference reads the fields by name:
                    # taken only when no other token names one of them)
                    ok1, req = _dec(buf, tok[7, 0] + 10, tok[7, 1])
                    ok2, n = _dec(buf, tok[8, 0] + 12, tok[8, 1])
                else:
                    return HANDOFF, pos, lineno, code, ls
            else:
                if (nt < 9 or not _prefix(buf, tok[7, 0], tok[7, 1], P_REQ)
                        or not _prefix(buf, tok[8, 0], tok[8, 1], P_ALLOC)):
                    return HANDOFF, pos, lineno, code, ls
                ok1, req = _dec(buf, tok[7, 0] + 10, tok[7, 1])
                ok2, n = _dec(buf, tok[8, 0] + 12, tok[8, 1])
            if not (ok1 and ok2):
                return HANDOFF, pos, lineno, code, ls
            if a == 0:
                S[COUNTS + code] += 1
                continue
            if n > maxblk or not _is_kernel(C, a) or not fits(C, a, n):
                return HANDOFF, pos, lineno, code, ls
            if code == 0:
                if n < req or n <= 0:
                    return HANDOFF, pos, lineno, code, ls
            else:
                if req <= kmax:
                    if req <= 0 or cls[req] != n:
                        return HANDOFF, pos, lineno, code, ls
                else:
                    o = 0
                    x = (req - 1) >> ps
                    while x:
                        o += 1
                        x >>= 1
                    if n != (1 << (o + ps)):
                        return HANDOFF, pos, lineno, code, ls
                if n > 0 and not n & (n - 1) and a & (n - 1):
                    return HANDOFF, pos, lineno, code, ls
                if traced_twice(st, C, cpu, a, req, n, lineno):
                    S[COUNTS + code] += 1
                    continue
                if n > kmax:
                    learn(st, C, cpu, a, n)
            place(st, C, a, n, lineno, code, cpu)
            S[COUNTS + code] += 1
            continue
        # the page events: page=%p pfn=0x%lx order=%d (5.10: pfn=%lu)
        if (nt < 8 or not _prefix(buf, tok[6, 0], tok[6, 1], P_PFN)
                or not _prefix(buf, tok[7, 0], tok[7, 1], P_ORDER)):
            return HANDOFF, pos, lineno, code, ls
        if code == 1 and (_equal(buf, tok[5, 0], tok[5, 1], P_NULL1)
                          or _equal(buf, tok[5, 0], tok[5, 1], P_NULL2)):
            S[COUNTS + code] += 1                 # failed allocation
            continue
        if _prefix(buf, tok[6, 0], tok[6, 1], P_PFN_HEX):
            ok1, pfn = _hex(buf, tok[6, 0] + 6, tok[6, 1], 15)
        else:                                     # 5.10 prints pfn=%lu
            ok1, pfn = _dec(buf, tok[6, 0] + 4, tok[6, 1])
        ok2, order = _dec(buf, tok[7, 0] + 6, tok[7, 1])
        if not (ok1 and ok2) or order > top or pfn & ((1 << order) - 1):
            return HANDOFF, pos, lineno, code, ls      # unreadable, or buddy_alignment
        S[COUNTS + code] += 1
        if code == 1:
            if order > 1:
                set_last_page_alloc(st, cpu, pfn, order)
            page_alloc(st, C, pfn, order, lineno)
        elif code == 2:
            page_free(st, C, pfn, order)
        elif code == 3 or code == 8:
            page_buddy(st, C, pfn, order, lineno, code)
    return DONE, pos, lineno, -1, pos


# ---------------------------------------------------------------- the checker
class CompiledChecker(TraceChecker):
    """TraceChecker with the compiled loop and page/object state (module doc)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lay = self.layout
        ps = self.page_shift
        self.C = np.array([ps, self.top_order, self.kmalloc_max, self.geo, self.max_block,
                           s64(lay.kernel_space), lay.pointer_bits, lay.kaslr_align_pages,
                           lay.kernel_space >> ps, 1 << (lay.pointer_bits - ps)],
                          dtype=np.int64)
        self.cls = np.array(self.class_of, dtype=np.int64)
        S = np.zeros(NSCAL, dtype=np.int64)
        S[VP0] = self.vp0
        S[LEARNT] = int(self.vp0_learnt)

        def table(n):
            t = np.zeros((n, 2), dtype=np.int64)
            t[:, 0] = EMPTY
            return t

        self.st = (S, table(1 << 12), table(64),
                   np.zeros((16, ROW), dtype=np.uint8),
                   table(1 << 13), np.zeros((4096, 4), dtype=np.int64),
                   np.arange(4096, dtype=np.int64),
                   table(1 << 13), np.zeros((4096, 5), dtype=np.int64),
                   np.arange(4096, dtype=np.int64),
                   table(64), table(256),
                   np.zeros((REC_ROWS, 10), dtype=np.int64),
                   np.zeros((2200, 2), dtype=np.int64),
                   table(64), table(64),
                   np.zeros(64, dtype=np.int64),
                   np.zeros((1 << ps) + 2, dtype=np.int64),
                   np.zeros((13, 2), dtype=np.int64))
        S[PG_NFREE] = 4096
        S[OB_NFREE] = 4096
        self.S = S
        self.handlers.update({
            "mm_page_alloc:": self.h_mm_page_alloc,
            "mm_page_free:": self.h_mm_page_free,
            "mm_page_free_batched:": self.on_mm_page_free_batched,   # stateless
            "mm_page_alloc_zone_locked:": self.h_buddy,
            "mm_page_pcpu_drain:": self.h_buddy,
            "kmalloc:": self.h_kmalloc,
            "kfree:": self.h_free,
            "kmem_cache_alloc:": self.h_kmem_cache_alloc,
            "kmem_cache_free:": self.h_free,
        })

    # ----------------------------------------------------------- state plumbing
    @property
    def blocks(self):
        """The live page blocks as the reference keeps them: head pfn -> (order, line)."""
        if not hasattr(self, "st"):
            return self._init_blocks
        tab = self.st[1]
        live = tab[:, 0] != EMPTY
        return {int(p): (int(v) & 31, int(v) >> 5) for p, v in tab[live]}

    @blocks.setter
    def blocks(self, value):
        self._init_blocks = value

    def _grow(self):
        st = list(self.st)
        S = self.S
        if S[ROWS] + 2 >= st[3].shape[0]:
            f = np.zeros((st[3].shape[0] * 2, ROW), dtype=np.uint8)
            f[:st[3].shape[0]] = st[3]
            st[3] = f
        if S[PG_NFREE] < PG_MARGIN:
            n = st[5].shape[0]
            pg = np.zeros((2 * n, 4), dtype=np.int64)
            pg[:n] = st[5]
            free = np.empty(2 * n, dtype=np.int64)
            k = S[PG_NFREE]
            free[:k] = st[6][:k]
            free[k:k + n] = np.arange(n, 2 * n)
            S[PG_NFREE] = k + n
            st[5], st[6] = pg, free
        if S[OB_NFREE] < 8:
            n = st[8].shape[0]
            ob = np.zeros((2 * n, 5), dtype=np.int64)
            ob[:n] = st[8]
            free = np.empty(2 * n, dtype=np.int64)
            k = S[OB_NFREE]
            free[:k] = st[9][:k]
            free[k:k + n] = np.arange(n, 2 * n)
            S[OB_NFREE] = k + n
            st[8], st[9] = ob, free
        if 4 * S[CK] + 8 > st[16].shape[0]:
            a = np.zeros(2 * st[16].shape[0], dtype=np.int64)
            a[:st[16].shape[0]] = st[16]
            st[16] = a
        for k, c, margin in ((1, CB, 64), (2, CR, 8), (4, CP, 2 * PG_MARGIN), (7, CO, 8),
                             (10, CL1, 8), (14, CL2, 8), (11, CV, 8), (15, CK, 8)):
            tab = st[k]
            if 2 * S[c] + margin > tab.shape[0]:
                n = tab.shape[0]
                while 2 * S[c] + margin > n:
                    n *= 2
                new = np.zeros((2 * n, 2), dtype=np.int64)
                new[:, 0] = EMPTY
                ht_rehash(tab, new, S, c)
                st[k] = new
        self.st = tuple(st)

    def _need(self):
        if _must_grow(self.st):
            self._grow()

    def _drain(self):
        """Report the compiled state's findings with the reference's messages."""
        S, rec = self.S, self.st[12]
        for r in range(S[NREC]):
            g, line, ev, sub, p1, p2, p3, p4, p5, _ = (int(x) for x in rec[r])
            kind, cause = GROUPS[g]
            event = FAST_EVENTS[ev][:-1]
            if ev in (1, 3, 8):
                what = {1: "allocated block", 3: "block taken from the buddy lists:",
                        8: "block drained from a per-cpu list:"}[ev]
                msg = (f"{what} pfn {p1:#x} order {p2} overlaps the live block "
                       f"pfn {p3:#x} order {p4} allocated at line {p5} and not freed since")
            else:
                a = p1 & M64 if self.layout.pointer_bits == 64 else p1
                if sub == 0:
                    msg = (f"object {a:#x} ({p2} bytes) allocated again while live "
                           f"(allocated at line {p3})")
                elif sub == 1:
                    msg = (f"object {a:#x} ({p2} bytes) starts where the live object of "
                           f"{p3} bytes allocated at line {p4} starts, with no free of "
                           "its page in between")
                else:
                    b = p3 & M64 if self.layout.pointer_bits == 64 else p3
                    msg = (f"object [{a:#x}, {a + p2:#x}) overlaps the live object "
                           f"[{b:#x}, {b + p4:#x}) allocated at line {p5}, with no free "
                           "of its page in between")
            if kind == "violation":
                self.violation(line, "no_overlap", event, msg)
            else:
                self.warning(line, "no_overlap", event, msg, cause)
        S[NREC] = 0
        for g, (kind, cause) in enumerate(GROUPS):
            n = int(S[EXTRA + g])
            if n:
                if cause is not None and self.strict:
                    kind = "violation"
                key = (kind, "no_overlap", cause)
                self.counts[key] = self.counts.get(key, 0) + n
                S[EXTRA + g] = 0

    def tracing_gap(self, line, cause):
        super().tracing_gap(line, cause)
        if hasattr(self, "st"):
            self.S[TRUST] = BIG_LINE if line == INF else line
            self.S[GAPC] = 0 if cause == CAUSE_LOST else 1
            clear_objects(self.st)

    # ----------------------------------------------------------- the loop
    def run(self, stream, progress=None, jobs: int = 1) -> None:
        """One process whatever jobs says: the compiled loop needs no second one."""
        self._run(_binary(stream), progress)

    def _loop(self, raw, progress, by_event):
        # One buffer for the whole run, read into in place (no bytes object per
        # block): the lines cut at its end are moved to its start before the next read.
        buf = np.empty(BLOCK_BYTES + 8, dtype=np.uint8)
        readinto = getattr(raw, "readinto", None)
        lineno = have = 0
        while True:
            if have + 8 >= buf.shape[0]:           # one line longer than the buffer
                bigger = np.empty(2 * buf.shape[0], dtype=np.uint8)
                bigger[:have] = buf[:have]
                buf = bigger
            room = buf.shape[0] - 8 - have
            if readinto is not None:
                n = readinto(memoryview(buf)[have:have + room]) or 0
            else:
                data = raw.read(room)
                n = len(data)
                buf[have:have + n] = np.frombuffer(data, dtype=np.uint8)
            if n == 0:
                if have:                            # the last line, without a newline
                    buf[have] = 10                  # (a sentinel: see scan)
                    lineno = self._block(buf, have, lineno)
                break
            end = have + n
            cut = _last_newline(buf, have, end) + 1
            if cut == 0:
                have = end
                continue
            lineno = self._block(buf, cut, lineno)
            have = end - cut
            buf[:have] = buf[cut:end].copy()
            if progress is not None:
                progress(lineno)
        S = self.S
        for code in range(len(FAST_EVENTS)):
            self.seen[code] += int(S[COUNTS + code])
            S[COUNTS + code] = 0
        by_event.update({name: n for name, n in zip(FAST_EVENTS, self.seen) if n})
        self.vp0 = int(S[VP0])
        self.vp0_learnt = bool(S[LEARNT])
        self.first_object_line = int(S[FIRST_OBJ])

    def _block(self, buf, end: int, lineno: int) -> int:
        """Check the lines of buf[:end] (whole lines, or the last line of the input
        with a sentinel newline at buf[end])."""
        w = buf.view(np.int64)
        pos = 0
        while pos < end:
            status, pos2, lineno, code, ls = scan(buf, w, pos, end, lineno, self.st, self.C,
                                                  self.cls)
            self._drain()
            if status == GROW:
                self._grow()
            elif status == HANDOFF:
                self._handoff(code, buf[ls:min(pos2, end)].tobytes(), lineno)
            pos = pos2
        return lineno

    def _handoff(self, code: int, line: bytes, lineno: int) -> None:
        """The reference's own handling of a line the compiled loop does not take."""
        if code < 0:
            self._slow_line(line.decode("utf-8", "replace"), lineno)
        else:
            self.seen[code] += 1
            if self.sync_cpus:
                self._see_cpu(line.split(None, 2)[1].decode("utf-8", "replace"), lineno)
            self._full_line(code, line, lineno)
        self.S[SYNC] = 1 if self.sync_cpus else 0
        self._drain()

    # ----------------------------------------------------------- hand-off handlers
    # The reference handlers (check.py), their state operations on the compiled state.
    def _pfn_ok(self, pfn):
        if not -PFN_LIMIT < pfn < PFN_LIMIT:
            raise Unsupported(f"pfn {pfn:#x} is beyond the compiled engine's range")

    def h_mm_page_alloc(self, t, line):
        f = tp.fields_mm_page_alloc(t)
        if f is None:
            return
        pfn, order = f
        if order > 1:
            self._pfn_ok(pfn)
            set_last_page_alloc(self.st, cpu_key(t[1]), pfn, min(order, 1 << 40))
        if not self._check_block(pfn, order, line, "mm_page_alloc"):
            return
        self._pfn_ok(pfn)
        self._need()
        page_alloc(self.st, self.C, pfn, order, line)
        self._drain()

    def h_mm_page_free(self, t, line):
        pfn, order = tp.fields_mm_page(t)
        if not self._check_block(pfn, order, line, "mm_page_free"):
            return
        self._pfn_ok(pfn)
        self._need()
        page_free(self.st, self.C, pfn, order)

    def h_buddy(self, t, line):
        pfn, order = tp.fields_mm_page(t)
        event = t[4][:-1]
        if self._check_block(pfn, order, line, event):
            self._pfn_ok(pfn)
            self._need()
            page_buddy(self.st, self.C, pfn, order, line,
                       3 if event == "mm_page_alloc_zone_locked" else 8)
            self._drain()

    def h_free(self, t, line):
        ptr = tp.fields_free(t)
        if 0 <= ptr < 1 << 64:
            obj_free(self.st, s64(ptr))

    def _place_kernel(self, ptr, n, line, ev, cpu):
        if not self.layout.is_kernel_pointer(ptr):
            self._place(ptr, n, line, FAST_EVENTS[ev][:-1], cpu)   # errors only
            return
        if n > 0 and ptr + n > 1 << 64:
            raise Unsupported(f"object {ptr:#x} of {n} bytes ends beyond 2^64")
        self._need()
        place(self.st, self.C, s64(ptr), n, line, ev, cpu_key(cpu))
        self._drain()

    def h_kmalloc(self, t, line):
        ptr, req, alloc = tp.fields_kmalloc(t)
        if ptr == 0:
            return
        if not self.layout.is_kernel_pointer(ptr):
            self._place(ptr, alloc, line, "kmalloc", t[1])
            return
        if self._too_large(line, "kmalloc", ptr, alloc):
            return
        if alloc > self.kmalloc_max:
            if not MIN64 <= req <= MAX64:
                raise Unsupported(f"bytes_req {req} is beyond 64 bits")
            self._need()
            if traced_twice(self.st, self.C, cpu_key(t[1]), s64(ptr), req, alloc, line):
                return
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
        if alloc > 0 and not alloc & (alloc - 1) and ptr & (alloc - 1):
            self.violation(line, "natural_alignment", "kmalloc",
                           f"object {ptr:#x} of the power-of-two class {alloc} is not "
                           f"aligned to {alloc}")
        if alloc > self.kmalloc_max:
            learn(self.st, self.C, cpu_key(t[1]), s64(ptr), alloc)
        self._place_kernel(ptr, alloc, line, 7, t[1])

    def h_kmem_cache_alloc(self, t, line):
        ptr, name, req, alloc = tp.fields_kmem_cache_alloc(t)
        if ptr == 0 or self._too_large(line, "kmem_cache_alloc", ptr, alloc):
            return
        if alloc < req:
            self.violation(line, "size_class", "kmem_cache_alloc",
                           f"bytes_alloc {alloc} < bytes_req {req} in cache {name} "
                           f"at {ptr:#x}")
        elif alloc <= 0:
            self.violation(line, "size_class", "kmem_cache_alloc",
                           f"bytes_alloc {alloc} in cache {name} at {ptr:#x}: a slab "
                           "object is never empty")
        self._place_kernel(ptr, alloc, line, 0, t[1])
