"""The end of a trace against the kernel's own /proc/buddyinfo (and /proc/zoneinfo).

A trace that starts in a running kernel knows only the blocks it saw allocated and
not freed again; the kernel's snapshot knows how many blocks of each order are free
in each zone's buddy lists. The two are consistent when, in every zone, the pages the
trace holds live plus the pages the buddy lists hold free fit in the pages the zone
manages (Linux 6.x mm/vmstat.c: frag_show_print prints zone->free_area[order].nr_free;
zoneinfo_show_print prints spanned, present, managed and start_pfn). Pages on per-cpu
lists are free for the trace but not in buddyinfo: that direction is not checked.
"""

from __future__ import annotations

import re

INVARIANT = "buddyinfo_after"
CAUSE = "untraced_page_free"

_BUDDY = re.compile(r"Node\s+(\d+),\s+zone\s+(\S+)((?:\s+\d+)+)\s*$")
_ZONE = re.compile(r"Node\s+(\d+),\s+zone\s+(\S+)\s*$")


class SnapshotError(ValueError):
    """A snapshot file that is not /proc/buddyinfo or /proc/zoneinfo text."""


def parse_buddyinfo(text: str, orders: int) -> dict[tuple[int, str], list[int]]:
    """(node, zone) -> nr_free per order; `orders` columns are expected."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _BUDDY.match(line)
        if not m:
            raise SnapshotError(f"buddyinfo line {n}: not 'Node N, zone NAME counts...'")
        counts = [int(x) for x in m.group(3).split()]
        if len(counts) != orders:
            raise SnapshotError(f"buddyinfo line {n}: {len(counts)} orders, the profile "
                                f"has {orders} (orders 0..{orders - 1})")
        out[(int(m.group(1)), m.group(2))] = counts
    if not out:
        raise SnapshotError("buddyinfo: no zone lines")
    return out


def parse_zoneinfo(text: str) -> dict[tuple[int, str], dict[str, int]]:
    """(node, zone) -> {start_pfn, spanned, managed}."""
    out: dict = {}
    zone = None
    for line in text.splitlines():
        m = _ZONE.match(line)
        if m:
            zone = out.setdefault((int(m.group(1)), m.group(2)), {})
            continue
        f = line.split()
        if zone is not None and len(f) == 2 and f[0].rstrip(":") in (
                "start_pfn", "spanned", "managed") and f[1].isdigit():
            zone[f[0].rstrip(":")] = int(f[1])
    out = {k: v for k, v in out.items() if len(v) == 3}
    if not out:
        raise SnapshotError("zoneinfo: no zone with start_pfn, spanned and managed")
    return out


def live_pages_in(blocks, start: int, end: int) -> int:
    """Pages of the live blocks (head pfn -> (order, line)) inside [start, end)."""
    n = 0
    for pfn, (order, _line) in blocks.items():
        lo, hi = max(pfn, start), min(pfn + (1 << order), end)
        if lo < hi:
            n += hi - lo
    return n


def compare(checker, buddy, zones, line: int) -> list[str]:
    """Report, as `buddyinfo_after` warnings at `line`, every zone where the trace's
    live pages and the kernel's free pages do not fit in the zone. Returns the
    limitations of the comparison."""
    limits = []
    for key, counts in buddy.items():
        free = sum(c << o for o, c in enumerate(counts))
        z = zones.get(key) if zones else None
        if z is None:
            limits.append(f"zone {key[1]} (node {key[0]}): no zoneinfo, not compared")
            continue
        start, end = z["start_pfn"], z["start_pfn"] + z["spanned"]
        live = live_pages_in(checker.blocks, start, end)
        if live + free > z["managed"]:
            checker.warning(line, INVARIANT, "buddyinfo",
                            f"zone {key[1]} (node {key[0]}, pfns {start:#x}-{end:#x}): "
                            f"{live} pages live in the trace + {free} free in buddyinfo "
                            f"> {z['managed']} managed: a traced block was freed "
                            "without an event, or the snapshot is not this trace's",
                            CAUSE)
    limits.append("buddyinfo: only 'live + free <= managed' per zone is checked (the "
                  "trace does not see blocks allocated before it, nor which free "
                  "pages sit on per-cpu lists)")
    return limits
