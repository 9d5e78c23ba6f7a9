"""Streaming parser for the ftrace text format of the kmem and vmalloc events.

A line of the `trace` (or `trace_pipe`) file, as Linux 6.x kernel/trace/trace_output.c
prints it with the default options, is

    <comm>-<pid> [<cpu>] <irq-info flags> <secs>.<usecs>: <event>: <fields>

and <fields> follow the event's print fmt (events/<system>/<event>/format; Linux 6.18
include/trace/events/kmem.h and include/trace/events/vmalloc.h). The hot path splits a
line on white space once and reads the fields at fixed token positions; a line whose
tokens are not where the default layout puts them (a comm with spaces, irq-info off,
a call_site in a module printed as `sym+off/len [mod]`) takes the slow path, which
finds the event by its `<timestamp>: <event>:` anchor and the fields by name.

Each `fields_<event>(tokens)` returns the event's numbers as a tuple or raises
MalformedLine saying what is wrong.
"""

from __future__ import annotations

import gzip
import io
import lzma
import re
import sys

# Token index of the event name in the default layout (comm-pid, [cpu], flags, ts).
EVENT_TOKEN = 4
NULL_PTRS = (0, 0x10)          # kfree(NULL), kfree(ZERO_SIZE_PTR): traced, no object


class MalformedLine(ValueError):
    """A line that looks like an event of a known type but cannot be read."""


def open_trace(path: str):
    """Open a trace for reading text: plain, gzip or xz (by content), or '-' (stdin).
    Returns (text stream, raw binary stream) — the raw stream's position is the
    progress through the input."""
    if path == "-":
        raw = sys.stdin.buffer
        return io.TextIOWrapper(raw, encoding="utf-8", errors="replace"), None
    raw = open(path, "rb")
    magic = raw.peek(6)[:6]
    if magic[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif magic == b"\xfd7zXZ\x00":
        stream = lzma.LZMAFile(raw, mode="rb")
    else:
        stream = raw
    # comm names are arbitrary bytes; a bad byte must not stop the check.
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace"), raw


# How many lines of a trace's start detect_profile reads.
DETECT_LINES = 2000
_PTR_FIELD = re.compile(r"\b(?:ptr|page)=([0-9a-f]+)\b")


def detect_profile(lines) -> tuple[str, str]:
    """(profile name, why) for the kernel that wrote a trace, from its first lines:
    the `# kmemspec record-vm:` header's machine=, else the width of the first %p
    pointer (lib/vsprintf.c pads %p to 2 * sizeof(void *) hex digits: 8 on i386, 16
    on x86_64). linux-6.x-x86_64 when nothing tells."""
    for n, line in enumerate(lines):
        if n >= DETECT_LINES:
            break
        if line.startswith("# kmemspec record-vm:"):
            m = re.search(r"machine=(\S+)", line)
            if m:
                machine = m.group(1)
                if re.fullmatch(r"i[3-6]86", machine):
                    return "linux-6.x-i386", f"header machine={machine}"
                if machine == "x86_64":
                    return "linux-6.x-x86_64", "header machine=x86_64"
            continue
        if line.startswith("#"):
            continue
        m = _PTR_FIELD.search(line)
        if m:
            width = len(m.group(1))
            if width == 8:
                return "linux-6.x-i386", f"8-hex-digit pointers (line {n + 1})"
            if width == 16:
                return "linux-6.x-x86_64", f"16-hex-digit pointers (line {n + 1})"
    return "linux-6.x-x86_64", "default (nothing in the first lines tells)"


# The slow path: `<secs>.<usecs>: <event>: ` after the `[cpu]` field.
_ANCHOR = re.compile(r"\[(\d+)\]\s+(?:\S+\s+)?\d+\.\d+:\s+(\w+):(?:\s|$)")


def normalize(line: str):
    """Tokens of an event line laid out as the hot path expects, or None when the
    line is not an event line (the slow path)."""
    m = _ANCHOR.search(line)
    if m is None:
        return None
    return ["-", f"[{m.group(1)}]", ".", "0:", m.group(2) + ":"] + line[m.end():].split()


def _kv(t) -> dict:
    """The name=value fields of an event line, by name."""
    out = {}
    for tok in t[EVENT_TOKEN + 1:]:
        k, eq, v = tok.partition("=")
        if eq:
            out[k] = v
    return out


def _field(kv: dict, name: str, base: int) -> int:
    try:
        return int(kv[name], base)
    except KeyError:
        raise MalformedLine(f"no {name}= field") from None
    except ValueError:
        raise MalformedLine(f"{name}={kv[name]!r} is not a number") from None


def _page(t, order_tok: int = 7):
    """(pfn, order) of mm_page_* events: `page=%p pfn=0x%lx order=%d ...`."""
    p, o = t[6], t[order_tok]
    if p[:6] == "pfn=0x" and o[:6] == "order=":
        try:
            return int(p[6:], 16), int(o[6:])
        except ValueError:
            pass
    kv = _kv(t)
    # base 0: Linux 5.10 prints `pfn=%lu` (decimal), 6.x `pfn=0x%lx`
    return _field(kv, "pfn", 0), _field(kv, "order", 10)


def fields_mm_page_alloc(t):
    """(pfn, order), or None for a failed allocation (page=NULL)."""
    if len(t) < 8:
        raise MalformedLine("truncated mm_page_alloc line")
    if t[5] in ("page=0000000000000000", "page=(null)"):
        return None
    return _page(t)


def fields_mm_page(t):
    """(pfn, order) of mm_page_free, mm_page_alloc_zone_locked, mm_page_pcpu_drain."""
    if len(t) < 8:
        raise MalformedLine(f"truncated {t[EVENT_TOKEN][:-1]} line")
    return _page(t)


def fields_mm_page_free_batched(t):
    """(pfn, 0): `page=%p pfn=0x%lx order=0`."""
    if len(t) < 8:
        raise MalformedLine("truncated mm_page_free_batched line")
    return _page(t)


def _ptr(tok: str) -> int:
    # %p with hash-ptr off: the address in hex without 0x
    return int(tok, 16)


def fields_kmalloc(t):
    """(ptr, bytes_req, bytes_alloc) of `call_site=%pS ptr=%p bytes_req=%zu
    bytes_alloc=%zu ...`."""
    if len(t) >= 9:
        p, r, a = t[6], t[7], t[8]
        if p[:4] == "ptr=" and r[:10] == "bytes_req=" and a[:12] == "bytes_alloc=":
            try:
                return int(p[4:], 16), int(r[10:]), int(a[12:])
            except ValueError:
                pass
    kv = _kv(t)
    return _field(kv, "ptr", 16), _field(kv, "bytes_req", 10), _field(kv, "bytes_alloc", 10)


def fields_kmem_cache_alloc(t):
    """(ptr, name, bytes_req, bytes_alloc) of `call_site=%pS ptr=%p name=%s
    bytes_req=%zu bytes_alloc=%zu ...`."""
    if len(t) >= 10:
        p, n, r, a = t[6], t[7], t[8], t[9]
        if (p[:4] == "ptr=" and n[:5] == "name=" and r[:10] == "bytes_req="
                and a[:12] == "bytes_alloc="):
            try:
                return int(p[4:], 16), n[5:], int(r[10:]), int(a[12:])
            except ValueError:
                pass
    kv = _kv(t)
    # Linux 6.1 prints no name= (include/trace/events/kmem.h: kmem_cache_alloc gained
    # it in 6.2); the cache is then unnamed in messages.
    return (_field(kv, "ptr", 16), kv.get("name", "?"), _field(kv, "bytes_req", 10),
            _field(kv, "bytes_alloc", 10))


def fields_free(t):
    """ptr of kfree (`call_site=%pS ptr=%p`) and kmem_cache_free (`... name=%s`)."""
    if len(t) >= 7:
        p = t[6]
        if p[:4] == "ptr=":
            try:
                return int(p[4:], 16)
            except ValueError:
                pass
    return _field(_kv(t), "ptr", 16)


def fields_alloc_vmap_area(t):
    """(addr, size, align, vstart, vend, failed) of `va_start: %lu size=%lu align=%lu
    vstart=0x%lx vend=0x%lx failed=%d` (va_start is printed in decimal)."""
    if len(t) < 11 or t[5] != "va_start:":
        raise MalformedLine("alloc_vmap_area line without 'va_start: <n>'")
    try:
        addr = int(t[6])
    except ValueError:
        raise MalformedLine(f"va_start {t[6]!r} is not a number") from None
    kv = _kv(t)
    return (addr, _field(kv, "size", 10), _field(kv, "align", 10),
            _field(kv, "vstart", 16), _field(kv, "vend", 16), _field(kv, "failed", 10))


def fields_free_vmap_area_noflush(t):
    """va_start of `va_start=0x%lx nr_lazy=%lu nr_lazy_max=%lu`."""
    return _field(_kv(t), "va_start", 16)


def fields_purge_vmap_area_lazy(t):
    """(start, end, npurged) of `start=0x%lx end=0x%lx num_purged=%u`."""
    kv = _kv(t)
    return _field(kv, "start", 16), _field(kv, "end", 16), _field(kv, "num_purged", 10)


def parse_header(line: str):
    """#P (number of CPUs) and whether the ring buffer overwrote events, from the
    `# entries-in-buffer/entries-written: A/B   #P:N` header line; None otherwise."""
    if "entries-in-buffer/entries-written:" not in line:
        return None
    m = re.search(r"entries-written:\s*(\d+)/(\d+)\s+#P:(\d+)", line)
    if m is None:
        return None
    return int(m.group(3)), int(m.group(2)) > int(m.group(1))


# Linux 6.x kernel/trace/trace.c: print_trace_line prints `CPU:%d [LOST %lu EVENTS]`,
# or `CPU:%d [LOST EVENTS]` when the ring buffer could not count what it dropped.
_LOST = re.compile(r"^CPU:\d+ \[LOST (?:(\d+) )?EVENTS\]")
UNCOUNTED = 0


def parse_lost(line: str):
    """n of a `CPU:c [LOST n EVENTS]` marker, UNCOUNTED (0) for `CPU:c [LOST EVENTS]`,
    or None when the line is no such marker."""
    m = _LOST.search(line)
    if m is None:
        return None
    return int(m.group(1)) if m.group(1) else UNCOUNTED
