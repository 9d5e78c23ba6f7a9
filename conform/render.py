"""SVG pictures of a machine state: frames coloured by role, blocks, vm areas.

`render_svg(machine)` draws the picture model (conform/picture.py, which `kmemspec
view` also draws, step by step, in the browser): mem_map as a grid (one cell per frame, or per 2^k frames on
a large machine: the cell shows the role most of its frames have), with free blocks
shaded by order and outlined, allocated blocks outlined, and a legend with
/proc/buddyinfo per zone. Below it, when the machine has them: each cache's slabs with
their colour offset, management and objects (model/slab.py), and the vmalloc range
with each area and its guard page (model/vmalloc.py). Plain SVG 1.1,
no dependency; <title> elements give pfn ranges on hover.

Used by `kmemspec render`, `kmemspec run --svg` and the conformance reports.
"""

from __future__ import annotations

from html import escape

from . import picture as pic
from .picture import FREE_SHADES, ROLE_NAMES

__all__ = ["render_svg", "svg_from_picture", "ROLE_COLOURS"]

# the picture model's roles (conform/picture.py), by code as frame_roles gives them
ROLE_COLOURS = {pic.ROLES.index(r): c for r, c in pic.ROLE_COLOURS.items()}
SLAB = pic.ROLES.index("slab")
VMALLOC = pic.ROLES.index("vmalloc")
FREE = pic.ROLES.index("free")

COLS = 64
CELL = 11
MAX_CELLS = 64 * 64
MARGIN = 10


def _free_shade(order: int) -> str:
    return FREE_SHADES[min(order, len(FREE_SHADES) - 1)]


def _cell_colour(roles, orders, a: int, b: int) -> tuple[str, str]:
    """The colour and a description of a cell covering frames [a, b) of the window."""
    span = roles[a:b]
    if b - a == 1:
        role = span[0]
    else:
        role = max(set(span), key=span.count)
    if role == FREE:
        order = orders[a + span.index(FREE)]
        return _free_shade(order), f"free (order {order} block)"
    return ROLE_COLOURS[role], ROLE_NAMES[pic.ROLES[role]]


def render_svg(machine, *, start: int | None = None, end: int | None = None,
               title: str | None = None, highlights=()) -> str:
    """An SVG document of the machine's frames [start, end) (default: all of mem_map).

    `highlights`: (first pfn, number of frames, colour, label) outlines drawn on top,
    e.g. the block an implementation returned and the one the model would.
    """
    return svg_from_picture(pic.picture(machine), start=start, end=end,
                            title=title or f"{machine.profile.name}: {machine.nr_pages} frames",
                            highlights=highlights)


def svg_from_picture(picture: dict, *, start: int | None = None, end: int | None = None,
                     title: str = "", highlights=()) -> str:
    """The SVG of a picture model (conform/picture.py); see render_svg."""
    nr_pages = picture["meta"]["nr_pages"]
    start = 0 if start is None else max(0, start)
    end = nr_pages if end is None else min(end, nr_pages)
    if end <= start:
        raise ValueError(f"empty pfn window [{start}, {end})")
    n = end - start
    per_cell = 1
    while -(-n // per_cell) > MAX_CELLS:
        per_cell *= 2
    cells = -(-n // per_cell)
    rows = -(-cells // COLS)
    roles, orders = pic.frame_roles(picture, start, end)

    width = MARGIN * 2 + COLS * CELL + 260
    grid_top = MARGIN + 34
    out: list[str] = []
    add = out.append

    def xy(pfn: int) -> tuple[int, int]:
        cell = (pfn - start) // per_cell
        return MARGIN + (cell % COLS) * CELL, grid_top + (cell // COLS) * CELL

    def outline(first: int, count: int, colour: str, width_px: float, label: str) -> None:
        """Rectangles around frames [first, first+count), one per grid row they cross."""
        a, b = max(first, start), min(first + count, end)
        if a >= b:
            return
        c0, c1 = (a - start) // per_cell, (b - 1 - start) // per_cell
        row = c0 // COLS
        while row <= c1 // COLS:
            lo, hi = max(c0, row * COLS), min(c1, row * COLS + COLS - 1)
            x = MARGIN + (lo % COLS) * CELL
            y = grid_top + row * CELL
            add(f'<rect x="{x + 0.5}" y="{y + 0.5}" width="{(hi - lo + 1) * CELL - 1}" '
                f'height="{CELL - 1}" fill="none" stroke="{colour}" '
                f'stroke-width="{width_px}"><title>{escape(label)}</title></rect>')
            row += 1

    # cells, merged into runs of one colour per row
    for row in range(rows):
        col = 0
        while col < COLS and row * COLS + col < cells:
            cell = row * COLS + col
            colour, what = _cell_colour(roles, orders, cell * per_cell,
                                        min((cell + 1) * per_cell, n))
            run = 1
            while col + run < COLS and row * COLS + col + run < cells:
                nxt = row * COLS + col + run
                if _cell_colour(roles, orders, nxt * per_cell,
                                min((nxt + 1) * per_cell, n))[0] != colour:
                    break
                run += 1
            first = start + cell * per_cell
            last = min(start + (cell + run) * per_cell, end) - 1
            add(f'<rect x="{MARGIN + col * CELL}" y="{grid_top + row * CELL}" '
                f'width="{run * CELL}" height="{CELL}" fill="{colour}">'
                f'<title>pfn {first:#x}-{last:#x}: {escape(what)}</title></rect>')
            col += run
    # grid lines between cells when cells are single frames
    if per_cell == 1:
        for row in range(rows):
            add(f'<line x1="{MARGIN}" y1="{grid_top + row * CELL}" x2="{MARGIN + COLS * CELL}" '
                f'y2="{grid_top + row * CELL}" stroke="#ffffff" stroke-width="0.4"/>')
    # block outlines (only where a block spans at least a cell)
    for head, (order, role) in sorted(picture["blocks"].items(), key=lambda b: int(b[0])):
        if (1 << order) >= per_cell and role in ("free", "alloc", "slab", "vmalloc"):
            free = role == "free"
            outline(int(head), 1 << order, "#0b3d06" if free else "#7a4a00", 1.0,
                    f"{'free' if free else 'allocated'} block pfn {int(head):#x}, order {order}")
    for first, count, colour, label in highlights:
        outline(first, count, colour, 2.5, label)

    grid_bottom = grid_top + rows * CELL
    # legend and /proc/buddyinfo on the right
    lx = MARGIN * 2 + COLS * CELL
    ly = grid_top
    legend = [(pic.ROLE_COLOURS[r], ROLE_NAMES[r])
              for r in ("reserved", "alloc", "slab", "vmalloc", "nozone")]
    legend += [(_free_shade(0), "free, order 0"), (_free_shade(5), "free, order 5"),
               (_free_shade(10), "free, order 10")]
    legend += [(colour, label) for _, _, colour, label in highlights]
    for colour, label in legend:
        add(f'<rect x="{lx}" y="{ly}" width="{CELL}" height="{CELL}" fill="{colour}" '
            f'stroke="#333" stroke-width="0.5"/>')
        add(f'<text x="{lx + CELL + 4}" y="{ly + CELL - 2}">{escape(label)}</text>')
        ly += CELL + 4
    ly += 8
    add(f'<text x="{lx}" y="{ly}" font-weight="bold">/proc/buddyinfo</text>')
    for name, counts in picture["buddyinfo"].items():
        ly += 14
        add(f'<text x="{lx}" y="{ly}">{escape(name)}: {" ".join(map(str, counts))}</text>')
    bottom = max(grid_bottom, ly) + MARGIN

    # slabs: colour offset, management and objects of each
    if picture["slabs"]:
        bottom = _slab_strips(add, picture, bottom + 10, COLS * CELL)

    # the vmalloc range: areas and their guard pages
    if picture["vm"] and "vmalloc" in picture["meta"]:
        bottom = _vmalloc_strip(add, picture, bottom + 10, COLS * CELL)

    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bottom + MARGIN}" '
            f'viewBox="0 0 {width} {bottom + MARGIN}" font-family="monospace" font-size="10">')
    caption = title or f"{picture['meta']['profile']}: {nr_pages} frames"
    scale = (f"pfn {start:#x}-{end - 1:#x}, one cell = {per_cell} frame"
             f"{'s' if per_cell > 1 else ''}, {COLS} cells a row")
    top = [head, '<rect width="100%" height="100%" fill="#ffffff"/>',
           f'<text x="{MARGIN}" y="{MARGIN + 10}" font-size="12" font-weight="bold">'
           f'{escape(caption)}</text>',
           f'<text x="{MARGIN}" y="{MARGIN + 24}">{escape(scale)}</text>']
    return "\n".join(top + out + ["</svg>"]) + "\n"


SLAB_CACHES_SHOWN = 12
SLABS_SHOWN = 8


def _slab_strips(add, picture, y: int, width: int) -> int:
    """One row per cache with slabs: each slab as a bar of its bytes -- the colour
    offset (hatched yellow), on-slab management (dark), objects (purple in use, light
    free) -- so colour_within_slack and slab_accounting can be seen."""
    by_cache: dict[str, list] = {}
    for slab in picture["slabs"].values():
        by_cache.setdefault(slab["cache"], []).append(slab)
    add(f'<text x="{MARGIN}" y="{y + 10}" font-weight="bold">slabs (yellow: colour offset, '
        f'dark: on-slab management, purple: objects in use)</text>')
    y += 16
    label_w = 150
    bar_w = (width - label_w) / SLABS_SHOWN
    for name in [c for c in picture["caches"] if c in by_cache][:SLAB_CACHES_SHOWN]:
        slabs = sorted(by_cache[name], key=lambda s: s["pfn"])
        add(f'<text x="{MARGIN}" y="{y + 10}">{escape(name)} ({len(slabs)})</text>')
        for i, slab in enumerate(slabs[:SLABS_SHOWN]):
            x0 = MARGIN + label_w + i * bar_w
            scale = (bar_w - 4) / slab["bytes"]
            colour, first = slab["colour"], slab["first"]
            add(f'<rect x="{x0:.1f}" y="{y}" width="{bar_w - 4:.1f}" height="12" '
                f'fill="#f4f4f4" stroke="#999" stroke-width="0.5"><title>slab pfn '
                f'{slab["pfn"]:#x}: colour offset {colour}, s_mem {slab["s_mem"]:#x}, inuse '
                f'{slab["inuse"]}/{slab["num"]}</title></rect>')
            add(f'<rect x="{x0:.1f}" y="{y}" width="{colour * scale:.1f}" height="12" '
                f'fill="#f2d43d"/>')
            if slab["mgmt"]:
                add(f'<rect x="{x0 + colour * scale:.1f}" y="{y}" '
                    f'width="{slab["mgmt"] * scale:.1f}" height="12" fill="#444"/>')
            free_idx = {i for a, n in slab["free"] for i in range(a, a + n)}
            for obj in range(slab["num"]):
                fill = "#e6dcf5" if obj in free_idx else ROLE_COLOURS[SLAB]
                add(f'<rect x="{x0 + (first + obj * slab["objsize"]) * scale:.1f}" '
                    f'y="{y + 1}" width="{max(slab["objsize"] * scale - 0.3, 0.3):.2f}" '
                    f'height="10" fill="{fill}"/>')
        y += 16
    return y + MARGIN


def _vmalloc_strip(add, picture, y: int, width: int) -> int:
    """Draw [VMALLOC_START, VMALLOC_END) as a bar; each area with its guard page."""
    vstart, vend = picture["meta"]["vmalloc"]
    page = picture["meta"]["page_size"]
    areas = sorted((int(addr), v) for addr, v in picture["vm"].items())
    span = max(vend - vstart, 1)
    last = max(addr + v[0] for addr, v in areas)
    span = max(span, last - vstart)               # an area past VMALLOC_END still shows
    add(f'<text x="{MARGIN}" y="{y + 10}" font-weight="bold">vmalloc range '
        f'{vstart:#x}-{vend:#x} ({len(areas)} areas; grey: guard page)</text>')
    y += 16
    height = 18
    add(f'<rect x="{MARGIN}" y="{y}" width="{width}" height="{height}" fill="#f4f4f4" '
        f'stroke="#999" stroke-width="0.5"/>')
    for addr, (size, nr_pages, caller, _ptes) in areas:
        x0 = MARGIN + (addr - vstart) * width / span
        body = max(size - page, 0)
        w_body = max(body * width / span, 1.0)
        w_guard = max(page * width / span, 1.0)
        add(f'<rect x="{x0:.2f}" y="{y}" width="{w_body:.2f}" height="{height}" '
            f'fill="{ROLE_COLOURS[VMALLOC]}"><title>{escape(caller)} '
            f'{addr:#x}-{addr + body:#x} pages={nr_pages}</title></rect>')
        add(f'<rect x="{x0 + w_body:.2f}" y="{y}" width="{w_guard:.2f}" height="{height}" '
            f'fill="#9e9e9e"><title>guard page {addr + body:#x}</title></rect>')
    return y + height + MARGIN


def parse_window(machine, window: str | None) -> tuple[int | None, int | None]:
    """(start, end) pfns from "START:END" (either side may be empty) or a zone name."""
    if window is None:
        return None, None
    for zone in machine.zones:
        if zone.name.lower() == window.lower():
            if not zone.spanned_pages:
                raise ValueError(f"zone {zone.name} is empty on this machine")
            return zone.zone_start_pfn, zone.zone_end_pfn
    lo, sep, hi = window.partition(":")
    if not sep:
        names = ", ".join(z.name for z in machine.zones if z.spanned_pages)
        raise ValueError(f"window {window!r} is neither START:END nor a zone ({names})")
    try:
        start = int(lo, 0) if lo.strip() else None
        end = int(hi, 0) if hi.strip() else None
    except ValueError:
        raise ValueError(f"window {window!r}: START and END must be integers") from None
    return start, end
