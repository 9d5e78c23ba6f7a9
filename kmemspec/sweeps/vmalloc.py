"""Sweep rows for model/vmalloc.py: every function's inputs, boundaries and misuse rules.

Expected values come from Linux 2.6.12 (torvalds/linux 1da177e4c3f4) mm/vmalloc.c
(__get_vm_area, get_vm_area, remove_vm_area, map_vm_area, unmap_vm_area, __vunmap,
vfree, vunmap, vmap, __vmalloc_area, __vmalloc, vmalloc, vmalloc_32), mm/memory.c
(vmalloc_to_page, vmalloc_to_pfn), include/asm-i386/pgtable.h (VMALLOC_OFFSET,
VMALLOC_START, VMALLOC_END, PAGE_KERNEL) and include/asm-i386/pgtable-2level-defs.h
(PGDIR_SHIFT 22, PTRS_PER_PTE 1024), computed here by hand or by `KVmlist`, a few-line
transcription of 2.6.12's walk of the address-sorted vmlist. The model's first fit over
its holes must give the same addresses; the holes themselves must be the gaps between
the live areas (model/vmalloc.py's documented state). Where the spec is stricter than
2.6.12 (spec/vmalloc.md: an area must end by VMALLOC_END; misuse is a KernelBug with
the state unchanged) the rows follow the spec and say so.

The machines: S = boot(phys_pages=8192, highmem_pages=2048): 32 MiB of low memory
(high_memory = 0xc0000000 + 32 MiB = 0xc2000000), so VMALLOC_START = ALIGN(high_memory
+ 8 MiB, 8 MiB) = 0xc2800000 (8 MiB aligned: a pte table starts there), VMALLOC_END =
PKMAP_BASE - 2 pages = 0xff800000 - 0x2000 = 0xff7fe000; HighMem is pfns 8192..10239.
F = boot(phys_pages=80, highmem_pages=0, page_policy="buddy"): a few dozen free frames
and no watermarks, for the failure paths.
"""

from __future__ import annotations

import hashlib
import pickle
import random

from ..facts import Fact

PAGE = 4096
K_PAGE_OFFSET = 0xC0000000
K_VMALLOC_OFFSET = 8 << 20                      # include/asm-i386/pgtable.h
K_VMALLOC_END = 0xFF800000 - 2 * PAGE           # PKMAP_BASE - 2*PAGE_SIZE (CONFIG_HIGHMEM)
K_PAGE_KERNEL = 0x063                           # present | rw | accessed | dirty
K_PTRS_PER_PTE = 1024
K_SIZEOF_VM_STRUCT = 28                         # 7 words on i386
K_GFP_KERNEL = 0x10 | 0x40 | 0x80              # __GFP_WAIT | __GFP_IO | __GFP_FS
K_GFP_HIGHMEM = 0x02
VM_IOREMAP, VM_ALLOC, VM_MAP = 0x1, 0x2, 0x4    # include/linux/vmalloc.h


def k_vmalloc_start(low_pages: int) -> int:
    """include/asm-i386/pgtable.h VMALLOC_START: (high_memory + 2*VMALLOC_OFFSET - 1)
    & ~(VMALLOC_OFFSET - 1), high_memory = PAGE_OFFSET + low memory (no EFI reserve)."""
    high = K_PAGE_OFFSET + low_pages * PAGE
    return (high + 2 * K_VMALLOC_OFFSET - 1) & ~(K_VMALLOC_OFFSET - 1)


class KVmlist:
    """2.6.12 mm/vmalloc.c __get_vm_area / remove_vm_area over a sorted list of
    (addr, size), sizes with the guard page. `check_end`: the spec's end check after
    the walk (2.6.12 checks `addr > end - size` only after stepping past an area)."""

    def __init__(self, start: int, end: int):
        self.start, self.end, self.areas = start, end, []

    def get(self, size: int, start: int | None = None, end: int | None = None,
            check_end: bool = True) -> int | None:
        start = self.start if start is None else start
        end = self.end if end is None else end
        size = (size + PAGE - 1) // PAGE * PAGE if size > 0 else 0
        if not size:
            return None                         # kfree(area); return NULL
        size += PAGE                            # the guard page
        addr = start
        for a, sz in self.areas:
            if a < addr:
                if a + sz >= addr:
                    addr = a + sz
                continue
            if addr + size <= a:
                break
            addr = a + sz
            if addr > end - size:
                return None
        if check_end and addr + size > end:
            return None
        if addr + size > 1 << 32:
            return None                         # past 4 GiB (2.6.12's unsigned long wraps)
        self.areas.append((addr, size))
        self.areas.sort()
        return addr

    def remove(self, addr: int) -> int | None:
        """The removed area's size without its guard page, or None."""
        for a, sz in self.areas:
            if a == addr:
                self.areas.remove((a, sz))
                return sz - PAGE
        return None

    def gaps(self) -> list[tuple[int, int]]:
        """The free ranges of [start, end) between the live areas."""
        out, prev = [], self.start
        for a, sz in self.areas:
            if a > prev:
                out.append((prev, min(a, self.end)))
            prev = max(prev, a + sz)
        if prev < self.end:
            out.append((prev, self.end))
        return out


def _s_machine():
    from ..model.boot import boot
    return boot(phys_pages=8192, highmem_pages=2048)


def _f_machine():
    from ..model.boot import boot
    return boot(phys_pages=80, highmem_pages=0, page_policy="buddy")


def _digest(m) -> str:
    return hashlib.sha256(pickle.dumps(m.__dict__)).hexdigest()


def _rule(call):
    from ..model.errors import KernelBug
    try:
        out = call()
    except KernelBug as exc:
        return exc.rule
    return ("ok", out)


def _model_layout(m, base: int) -> tuple:
    """(vmlist as (offset, pages), holes as (offset, offset)) in pages from `base`."""
    areas = [((a.addr - base) // PAGE, a.size // PAGE) for a in m.vmlist]
    holes = [((s - base) // PAGE, (e - base) // PAGE) for s, e in sorted(m.vmalloc_holes.items())]
    return areas, holes


def _k_layout(k: KVmlist, base: int) -> tuple:
    return ([((a - base) // PAGE, sz // PAGE) for a, sz in k.areas],
            [((s - base) // PAGE, (e - base) // PAGE) for s, e in k.gaps()])


# --- get_vm_area, __get_vm_area, _take_hole, _carve, _release, remove_vm_area ----------

def _script_release_middle():
    """Eight 1-page areas (2 pages each with the guard); frees in the middle of the
    list with three or more holes before them, then allocations that must take the
    merged holes first fit."""
    ops = [("g", PAGE)] * 8
    ops += [("r", 1), ("r", 3), ("r", 5), ("r", 6), ("r", 4), ("g", 5 * PAGE),
            ("g", 1), ("g", 2 * PAGE), ("r", 7), ("r", 2), ("g", 3 * PAGE + 1),
            ("r", 0), ("g", 4095), ("g", 4096), ("g", 4097), ("r", 8), ("r", 10),
            ("g", 2 * PAGE - 1), ("g", 8193)]
    return ops


def _script_random(seed: int, n: int):
    """A fixed pseudo-random mix of get_vm_area sizes (0, 1, PAGE-1, PAGE, PAGE+1, ...)
    and removals of any live area (first, middle, last), of non-start addresses too."""
    rnd = random.Random(seed)
    sizes = [0, 1, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE, 3 * PAGE, 3 * PAGE + 1, 5 * PAGE, -1,
             -PAGE, -(1 << 40)]
    ops, live = [], []
    for _ in range(n):
        if live and rnd.random() < 0.42:
            ops.append(("r", live.pop(rnd.randrange(len(live)))))
        elif rnd.random() < 0.08:
            ops.append(("x", rnd.choice([1, 4096, -4096])))     # not an area start
        else:
            ops.append(("g", rnd.choice(sizes)))
            live.append(sum(1 for op in ops if op[0] == "g") - 1)
    return ops


def _script_range(span: int):
    """The whole range: exactly (span - guard), one page more, the 2.6.12 quirk of an
    empty vmlist (check_end=False), and a last area that fits exactly behind another."""
    top = (1 << 32) - k_vmalloc_start(8192)     # VMALLOC_START to 4 GiB
    # gets, numbered for the removes: 0 span unchecked (fresh machine), 1 up to 4 GiB
    # exactly, 2 one page past 4 GiB, 3 __get_vm_area past a custom end, 4 span - guard,
    # 5 one more, 6 span, 7 span unchecked, 8 span - 2 pages, 9 one more, 10 a page,
    # 11 exactly the rest, 12 one more, 13 a page in 10's hole, 14 unchecked after an
    # area (checked), 15 exactly the rest, 16 unchecked: full, 17 full
    return [("G", span, False), ("r", 0), ("G", top - PAGE, False), ("r", 1),
            ("G", top, False), ("c", 3 * PAGE, 0, 2),
            ("g", span - PAGE), ("g", 1), ("r", 4), ("g", span), ("G", span, False),
            ("r", 7), ("g", span - 2 * PAGE), ("g", 1), ("r", 8), ("g", PAGE),
            ("g", span - 3 * PAGE), ("g", 1), ("r", 10), ("g", PAGE), ("r", 11),
            ("G", PAGE, False), ("g", span - 5 * PAGE), ("G", PAGE, False), ("g", 1)]


def _run_get_script(m, k: KVmlist | None, ops):
    """Drive either the model (m) or the reference (k); per step the result and, for
    the model, the layout. ("g", size), ("G", size, check_end), ("r", n-th get),
    ("x", offset from an area start: remove_vm_area of a non-start), ("c", size,
    start offset, end offset in pages: __get_vm_area over [start, end))."""
    from ..model import vmalloc as vm
    base = m.vmalloc_start if m is not None else k.start
    gets: list = []
    out = []
    for op in ops:
        kind = op[0]
        if kind in ("g", "G", "c"):
            size = op[1]
            if m is not None:
                if kind == "c":
                    area = vm.__get_vm_area(m, size, VM_ALLOC, base + op[2] * PAGE,
                                            base + op[3] * PAGE)
                elif kind == "G":
                    area = vm.get_vm_area(m, size, VM_ALLOC, check_end=op[2])
                else:
                    area = vm.get_vm_area(m, size, VM_ALLOC)
                addr = None if area is None else area.addr
                if area is not None:
                    fields = (area.flags, area.pages, area.nr_pages, area.phys_addr,
                              area.pages_addr, area.pages_vmalloced, area.parent,
                              m.slab.kmalloc_req.get(area.kaddr))
                    if fields != (VM_ALLOC, [], 0, 0, 0, False, 0, K_SIZEOF_VM_STRUCT):
                        addr = ("fields", fields)
            else:
                if kind == "c":
                    addr = k.get(size, base + op[2] * PAGE, base + op[3] * PAGE)
                else:
                    addr = k.get(size, check_end=op[2] if kind == "G" else True)
            gets.append(addr)
            res = None if addr is None else (addr - base) // PAGE \
                if isinstance(addr, int) else addr
        elif kind == "r":
            addr = gets[op[1]]
            if m is not None:
                live = len(m.slab.kmalloc_req)
                area = vm.remove_vm_area(m, addr) if addr is not None else None
                res = None if area is None else (area.size, area.addr == addr,
                                                 len(m.slab.kmalloc_req) == live)
                if area is not None:
                    vm.kfree(m, area.kaddr)
            else:
                size = k.remove(addr) if addr is not None else None
                res = None if size is None else (size, True, True)
        else:                                   # "x": not the start of an area
            target = (gets[-1] if gets and gets[-1] is not None else base) + op[1]
            if m is not None:
                before = _model_layout(m, base)
                area = vm.remove_vm_area(m, target)
                res = (area is None, _model_layout(m, base) == before)
            else:
                res = (True, True)
        out.append((res, _model_layout(m, base) if m is not None else _k_layout(k, base)))
    return out


def _many_holes_model():
    """600 one-page areas (2 pages each with the guard), one filling the rest of the
    range exactly, every other small one removed (300 holes), then the last one; a
    3-page area (4 with the guard) then fits only at the freed tail."""
    from ..model import vmalloc as vm
    m = _s_machine()
    base = m.vmalloc_start
    small = [vm.get_vm_area(m, PAGE, VM_ALLOC).addr for _ in range(600)]
    last = vm.get_vm_area(m, m.vmalloc_end - base - 1201 * PAGE, VM_ALLOC)
    full = dict(m.vmalloc_holes)
    for addr in small[::2]:
        vm.remove_vm_area(m, addr)
    area = vm.remove_vm_area(m, last.addr)
    new = vm.get_vm_area(m, 3 * PAGE, VM_ALLOC)
    return full, area.size // PAGE, (new.addr - base) // PAGE, _model_layout(m, base)


def _many_holes_expected():
    span = (K_VMALLOC_END - k_vmalloc_start(8192)) // PAGE
    areas = [(4 * k + 2, 2) for k in range(300)] + [(1200, 4)]
    holes = [(4 * k, 4 * k + 2) for k in range(300)] + [(1204, span)]
    return {}, span - 1201, 1200, (areas, holes)


def _sweep_first_fit_facts() -> list[Fact]:
    """get_vm_area / __get_vm_area / remove_vm_area against KVmlist (2.6.12
    mm/vmalloc.c): sizes 0 (NULL: the descriptor is kfree'd), 1, PAGE-1, PAGE, PAGE+1
    (PAGE_ALIGN, then one guard page), negative (an unsigned long that fits nowhere:
    NULL), frees of the first, middle and last areas with up to seven holes before
    them, holes merging on both sides, allocations exactly filling a hole, the whole
    range and one page more, 2.6.12's unchecked area in an empty vmlist
    (check_end=False) and its release, custom [start, end) ranges; each fresh area's
    fields (flags, pages NULL, nr_pages 0, phys_addr 0; a 28-byte kmalloc'd
    descriptor); remove_vm_area returns the struct with the guard page taken off its
    size and leaves the descriptor to the caller; remove_vm_area of an address that
    starts no area returns NULL and changes nothing."""
    span = K_VMALLOC_END - k_vmalloc_start(8192)
    scripts = [("release in the middle of 8 areas", _script_release_middle()),
               ("fixed pseudo-random gets and removes (seed 4101)", _script_random(4101, 70)),
               ("fixed pseudo-random gets and removes (seed 4102)", _script_random(4102, 70)),
               ("the whole range, one page more, the empty-vmlist quirk", _script_range(span)),
               ("__get_vm_area over a [start, end) inside the range",
                [("g", PAGE), ("g", PAGE), ("c", PAGE, 1, 10), ("c", PAGE, 3, 5),
                 ("c", PAGE, 10, 12), ("c", PAGE, 12, 13), ("c", 3 * PAGE, 14, 30),
                 ("r", 0), ("c", PAGE, 0, 2), ("c", 1, 0, 40), ("c", 2 * PAGE, 0, 40),
                 ("r", 2), ("c", PAGE, 7, 9), ("c", 2 * PAGE, 2, 7), ("c", 0, 0, 40),
                 ("c", PAGE, 40, 44)])]
    facts = [Fact("sweep vmalloc: release after 300 holes, the range full (a big index)",
                  "mm/vmalloc.c __get_vm_area, remove_vm_area", _many_holes_expected,
                  _many_holes_model)]
    for label, ops in scripts:
        def model(ops=ops):
            return _run_get_script(_s_machine(), None, ops)

        def expected(ops=ops):
            return _run_get_script(None, KVmlist(k_vmalloc_start(8192), K_VMALLOC_END), ops)
        facts.append(Fact(f"sweep vmalloc: first fit, {label}",
                          "mm/vmalloc.c __get_vm_area, get_vm_area, remove_vm_area",
                          expected, model))
    return facts


# --- __vmalloc, vmalloc, vmalloc_32: sizes, the page array, zones ----------------------

def _sweep_vmalloc_sizes_facts() -> list[Fact]:
    """__vmalloc (2.6.12 mm/vmalloc.c): size = PAGE_ALIGN(size); 0 or more pages than
    num_physpages is NULL; the area is PAGE_ALIGN(size) + a guard page, first fit.
    The page pointer array (4 bytes a page) is kmalloc'ed up to PAGE_SIZE (1024 pages)
    and __vmalloc'ed above (1025 pages: a 4100-byte array, 2 pages + guard placed
    after the area, caller "vmalloc (pages)"); vmalloc takes GFP_KERNEL |
    __GFP_HIGHMEM (highmem first: pfns >= 8192 on S), vmalloc_32 GFP_KERNEL (low
    memory only). Sizes that are no integer, or a gfp with undefined bits, are misuse
    (bad_size, bad_gfp: the model's rules, spec/vmalloc.md) with the state unchanged;
    a negative size (an unsigned long near 4 GiB) is NULL."""
    from ..model import vmalloc as vm

    start = k_vmalloc_start(8192)

    def sizes_model():
        m = _s_machine()
        out = []
        for size in (1, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE, 2 * PAGE + 1):
            before = dict(m.slab.kmalloc_req)
            addr = vm.vmalloc(m, size)
            area = m.vm_areas[addr]
            new = sorted(v for a, v in m.slab.kmalloc_req.items() if a not in before)
            out.append(((addr - start) // PAGE, area.size // PAGE, area.nr_pages,
                        len(area.pages), area.flags, area.caller, new,
                        all(p >= 8192 for p in area.pages)))
        return out

    def sizes_expected():
        out, off = [], 0
        for size in (1, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE, 2 * PAGE + 1):
            n = -(-size // PAGE)
            # the 28-byte descriptor and the n * 4-byte page array, both kmalloc'ed
            out.append((off, n + 1, n, n, VM_ALLOC, "vmalloc", sorted([28, 4 * n]), True))
            off += n + 1
        return out

    def null_model():
        m = _s_machine()
        before = _digest(m)
        out = [vm.vmalloc(m, s) for s in (0, -1, -PAGE, -(1 << 40))]
        out.append(vm.vmalloc(m, (m.nr_pages + 1) * PAGE))      # more than num_physpages
        out.append(_digest(m) == before)
        calls = [lambda: vm.vmalloc(m, 4096.0), lambda: vm.vmalloc(m, "4096"),
                 lambda: vm.vmalloc(m, None), lambda: vm.vmalloc_32(m, 1.5),
                 lambda: vm.__vmalloc(m, PAGE, K_GFP_KERNEL | 1 << 20),
                 lambda: vm.__vmalloc(m, PAGE, -1),
                 lambda: vm.get_vm_area(m, 1.0, VM_ALLOC)]
        out += [_rule(c) for c in calls]
        out.append(_digest(m) == before)
        return out

    def num_physpages_model():
        # exactly num_physpages pages passes the check: the area (10241 pages) and its
        # 40 KiB page array (10 pages + guard, __vmalloc'ed, mapped: one new pte table
        # at offset 10241 pages) are made, the page loop then runs out of frames and
        # everything but the pte table (2.6.12 never frees one) is given back
        m = _s_machine()
        tables, live = len(m.pte_table_pfns), dict(m.slab.kmalloc_req)
        addr = vm.vmalloc(m, m.nr_pages * PAGE)
        return (addr, len(m.pte_table_pfns) - tables, m.slab.kmalloc_req == live,
                m.vmlist, m.vmalloc_owner, len(m.vmalloc_holes))

    def arrays_model():
        m = _s_machine()
        out = []
        for n in (1024, 1025):
            before = dict(m.slab.kmalloc_req)
            addr = vm.vmalloc(m, n * PAGE)
            new = sorted(v for a, v in m.slab.kmalloc_req.items() if a not in before)
            out.append([((a["start"] - start) // PAGE, a["size"] // PAGE, a["caller"],
                         a["pages"], a["kind"]) for a in vm.vmallocinfo(m)])
            out.append(new)
            inner = [a.addr for a in m.vmlist if a.parent == addr]
            out.append(_rule(lambda: vm.vfree(m, inner[0])) if inner else None)
            vm.vfree(m, addr)
            out.append((len(m.vmlist), m.slab.kmalloc_req == before, m.vmalloc_owner))
        return out

    def arrays_expected():
        return [
            # 1024 pages: a 4096-byte array, kmalloc'ed (array_size > PAGE_SIZE is false)
            [(0, 1025, "vmalloc", 1024, "vmalloc")], [28, 4096], None,
            (0, True, {}),
            # 1025 pages: a 4100-byte array, __vmalloc'ed: 2 pages + guard after the
            # area, its own descriptor and 8-byte page array kmalloc'ed
            [(0, 1026, "vmalloc", 1025, "vmalloc"),
             (1026, 3, "vmalloc (pages)", 2, "vmalloc")], [8, 28, 28], "vfree_pages_array",
            (0, True, {})]

    def zones_model():
        m = _s_machine()
        high = m.vm_areas[vm.vmalloc(m, 4 * PAGE)]
        low = m.vm_areas[vm.vmalloc_32(m, 4 * PAGE)]
        return ([p >= 8192 for p in high.pages], [p < 8192 for p in low.pages],
                len(set(high.pages + low.pages)), low.caller, (low.addr - start) // PAGE)
    return [
        Fact("sweep vmalloc: sizes 1, PAGE-1, PAGE, PAGE+1, 2 PAGE, 2 PAGE+1",
             "mm/vmalloc.c __vmalloc (PAGE_ALIGN), __get_vm_area, __vmalloc_area",
             sizes_expected, sizes_model),
        Fact("sweep vmalloc: NULL for 0, negative, > num_physpages; misuse bad_size/bad_gfp",
             "mm/vmalloc.c __vmalloc (!size, num_physpages); include/linux/gfp.h",
             lambda: [None] * 5 + [True] + ["bad_size"] * 4 + ["bad_gfp"] * 2
             + ["bad_size", True], null_model),
        Fact("sweep vmalloc: exactly num_physpages pages passes the check, then fails",
             "mm/vmalloc.c __vmalloc, __vmalloc_area (fail: vfree), map_vm_area",
             lambda: (None, 1, True, [], {}, 1), num_physpages_model),
        Fact("sweep vmalloc: page array kmalloc'ed at 1024 pages, vmalloc'ed at 1025",
             "mm/vmalloc.c __vmalloc_area (array_size > PAGE_SIZE), __vunmap",
             arrays_expected, arrays_model),
        Fact("sweep vmalloc: vmalloc pages from highmem, vmalloc_32 from low memory",
             "mm/vmalloc.c vmalloc, vmalloc_32; mm/page_alloc.c __alloc_pages",
             lambda: ([True] * 4, [True] * 4, 8, "vmalloc_32", 5), zones_model),
    ]


# --- failure paths: frames, pte tables, the hole ---------------------------------------

def _frames(m):
    from ..model import page_alloc as pa
    return pa.nr_free_pages(m), dict(m.page_owner)


def _warm(m, *sizes):
    from ..model.kmalloc import kfree, kmalloc
    for size in (K_SIZEOF_VM_STRUCT, *sizes):
        kfree(m, kmalloc(m, size, K_GFP_KERNEL))


def _sweep_vmalloc_failure_facts() -> list[Fact]:
    """__vmalloc's failure paths give back everything (2.6.12 mm/vmalloc.c
    __vmalloc_area: a NULL alloc_page sets nr_pages = i and vfree()s; a failed
    map_vm_area vfree()s; __get_vm_area without a hole kfree()s the descriptor): on F
    (a buddy-only machine of 80 frames) a vmalloc of more pages than are free and fewer
    than the machine has fails part-way, with the free counts, the allocated frames,
    the live kmalloc objects, vmlist and holes as before; one of exactly the free
    frames gets them all and then finds no frame for its pte table (map_vm_area:
    -ENOMEM); one page fewer succeeds at VMALLOC_START with one pte table. vmap of
    every page there is fails on the pte table too and leaves the pages allocated."""
    from ..model import page_alloc as pa
    from ..model import vmalloc as vm

    def model():
        m = _f_machine()
        free = pa.nr_free_pages(m)
        _warm(m, 4 * 78, 256, 128)           # size-512, -256, -128: no slab grows below
        before, live = _frames(m), dict(m.slab.kmalloc_req)
        out = [vm.vmalloc(m, 78 * PAGE), _frames(m) == before, m.slab.kmalloc_req == live]
        n = pa.nr_free_pages(m)
        out += [vm.vmalloc(m, n * PAGE), _frames(m) == before, m.slab.kmalloc_req == live,
                list(m.vmlist), dict(m.vmalloc_owner), dict(m.pte_table_pfns),
                [(s - m.vmalloc_start, e - m.vmalloc_end) for s, e in m.vmalloc_holes.items()]]
        pages = [pa.alloc_pages(m, K_GFP_KERNEL, 0) for _ in range(n)]
        mid = _frames(m)
        out += [vm.vmap(m, pages), _frames(m) == mid, list(m.vmlist),
                m.slab.kmalloc_req == live]
        for p in pages:
            pa.__free_pages(m, p, 0)
        addr = vm.vmalloc(m, (n - 1) * PAGE)
        out += [addr - m.vmalloc_start, len(m.pte_table_pfns), m.vm_areas[addr].nr_pages == n - 1]
        # 78 pages: more than are free (n), fewer than num_physpages (80): part-way
        return out, n < free == 78 < m.nr_pages

    return [Fact("sweep vmalloc: out of frames part-way / for the pte table: nothing leaks",
                 "mm/vmalloc.c __vmalloc_area (fail: vfree), map_vm_area, vmap, __vunmap",
                 lambda: ([None, True, True, None, True, True, [], {}, {}, [(0, 0)],
                           None, True, [], True, 0, 1, True], True), model)]


# --- map_vm_area / unmap_vm_area across page tables --------------------------------------

def _sweep_page_table_facts() -> list[Fact]:
    """map_vm_area writes page i's pte = mk_pte(pages[i], PAGE_KERNEL) = pfn << 12 |
    0x063 at addr + i pages, table by table (PTRS_PER_PTE 1024, VMALLOC_START 8 MiB
    aligned so offset 1024k pages starts a table), the guard page's pte stays 0;
    unmap_vm_area (from vfree) clears every pte of its own area, and no other. Areas on
    S: A 1 page (offsets 0-1), B 1500 pages (2-1502: crosses the table boundary at
    1024; its 6000-byte page array __vmalloc'ed at 1503-1505), C 2100 pages
    (1506-3606: crosses 2048 and 3072; its array at 3607-3610), D 1 page (3611-3612);
    then vfree B and C. A get_vm_area area over a range that has no pte table yet is removed
    without touching the tables (unmap skips an absent table)."""
    from ..model import vmalloc as vm
    from ..model.pgtable import lookup_pte

    start = k_vmalloc_start(8192)

    def ptes(m, off, n):
        return [lookup_pte(m, start + (off + i) * PAGE) for i in range(n)]

    def model():
        m = _s_machine()
        addrs = [vm.vmalloc(m, n * PAGE) for n in (1, 1500, 2100, 1)]

        def want():
            # every pte of [0, 3614) pages: area page i at its offset + i, else 0
            out = [0] * 3614
            for a in m.vmlist:
                off = (a.addr - start) // PAGE
                out[off:off + len(a.pages)] = [(p << 12) | K_PAGE_KERNEL for p in a.pages]
            return out
        out = [[((a.addr - start) // PAGE, a.size // PAGE, a.nr_pages) for a in m.vmlist]]
        out.append(ptes(m, 0, 3614) == want())
        out.append(len({p for a in m.vmlist for p in a.pages}) == 3607)
        vm.vfree(m, addrs[1])
        vm.vfree(m, addrs[2])
        out.append([(a.addr - start) // PAGE for a in m.vmlist])
        out.append(ptes(m, 0, 3614) == want())
        # 100 pages at 2, 1 page at 103, free the first: 3 pages at 2 are mapped in
        # front of a live area of the same table
        x = vm.vmalloc(m, 100 * PAGE)
        vm.vmalloc(m, PAGE)
        vm.vfree(m, x)
        vm.vmalloc(m, 3 * PAGE)
        out.append([(a.addr - start) // PAGE for a in m.vmlist])
        out.append(ptes(m, 0, 3614) == want())
        # a get_vm_area area 64 MiB in (a table never made) removed: tables unchanged
        far = vm.__get_vm_area(m, PAGE, VM_ALLOC, start + (16 << 20), K_VMALLOC_END)
        tables = dict(m.pte_table_pfns)
        area = vm.remove_vm_area(m, far.addr)
        out += [(far.addr - start) // PAGE, area is far, area.size, m.pte_table_pfns == tables]
        return out

    def expected():
        # B's 6000-byte and C's 8400-byte page arrays are __vmalloc'ed (2 and 3 pages
        # + guard) right after them
        return [[(0, 2, 1), (2, 1501, 1500), (1503, 3, 2), (1506, 2101, 2100), (3607, 4, 3),
                 (3611, 2, 1)], True, True, [0, 3611], True, [0, 2, 103, 3611], True,
                4096, True, PAGE, True]
    return [Fact("sweep vmalloc: ptes across pte tables, unmap clears only its area",
                 "mm/vmalloc.c map_vm_area, unmap_vm_area; include/asm-i386/pgtable.h",
                 expected, model)]


# --- vfree / vunmap / vmap misuse and vmap itself --------------------------------------------

def _sweep_free_misuse_facts() -> list[Fact]:
    """vfree and vunmap (2.6.12 mm/vmalloc.c __vunmap): NULL (None or 0) returns at
    once; an address that is not page aligned is a "bad address" (vfree_bad_address /
    vunmap_bad_address), one that starts no area (inside one, its guard page, below,
    above, freed twice) "nonexistent" (vfree_nonexistent / vunmap_nonexistent);
    the model adds: a non-integer is a bad address, vfree of an area holding another's
    page array is vfree_pages_array, vunmap of a vmalloc area vunmap_vmalloc (2.6.12
    leaks its pages), vfree of a page still kmapped free_kmapped (spec/vmalloc.md).
    Every misuse leaves the state unchanged. A 6.x machine has no vmlist: NULL is still
    a no-op, anything else a ConfigError."""
    from ..model import highmem as hm
    from ..model import vmalloc as vm
    from ..model.boot import boot
    from ..model.errors import ConfigError

    def model():
        m = _s_machine()
        a = vm.vmalloc(m, 2 * PAGE)
        big = vm.vmalloc(m, 1025 * PAGE)
        inner = m.vm_areas[big].pages_addr
        gone = vm.vmalloc(m, PAGE)
        vm.vfree(m, gone)
        before = _digest(m)
        out = []
        for fn, what in ((vm.vfree, "vfree"), (vm.vunmap, "vunmap")):
            for addr in (None, 0):
                out.append(_rule(lambda: fn(m, addr)))
            for addr in (1, a + 1, a + PAGE - 1, -1, 2.0 * PAGE, "x", a + PAGE, a + 2 * PAGE,
                         a - PAGE, gone, K_VMALLOC_END, 1 << 32):
                out.append(_rule(lambda: fn(m, addr)))
        out += [_rule(lambda: vm.vfree(m, inner)), _rule(lambda: vm.vunmap(m, a)),
                _digest(m) == before]
        page = m.mem_map + m.vm_areas[a].pages[1]
        hm.kmap(m, page)
        kmapped = _digest(m)
        out.append(_rule(lambda: vm.vfree(m, a)))
        out.append(_digest(m) == kmapped)
        hm.kunmap(m, page)
        out.append(_rule(lambda: vm.vfree(m, a)))
        out.append(_digest(m) == before)
        six = boot(profile="linux-6.x-x86_64", phys_pages=4096, highmem_pages=0)
        out += [vm.vfree(six, None), vm.vunmap(six, 0), vm.vmallocinfo(six)]
        for call in (lambda: vm.vfree(six, PAGE), lambda: vm.vunmap(six, PAGE),
                     lambda: vm.vmalloc(six, PAGE), lambda: vm.get_vm_area(six, PAGE, 2),
                     lambda: vm.vmalloc_to_page(six, 0xF0000000)):
            try:
                call()
                out.append("accepted")
            except ConfigError as exc:
                out.append(exc.field)
        return out

    def expected():
        out = []
        for what in ("vfree", "vunmap"):
            out += [("ok", None)] * 2
            out += [f"{what}_bad_address"] * 6 + [f"{what}_nonexistent"] * 6
        # the second vfree of `a` (after the kunmap) is accepted: its digest differs
        return out + ["vfree_pages_array", "vunmap_vmalloc", True, "free_kmapped", True,
                      ("ok", None), False, None, None, [], *["profile"] * 5]
    return [Fact("sweep vmalloc: vfree/vunmap of NULL, bad, nonexistent, foreign areas",
                 "mm/vmalloc.c __vunmap, vfree, vunmap", expected, model)]


def _sweep_vmap_facts() -> list[Fact]:
    """vmap (2.6.12 mm/vmalloc.c): count > num_physpages is NULL (count 0: the model
    returns NULL, 2.6.12 would BUG_ON in map_vm_area); get_vm_area(count pages, flags)
    then map_vm_area: page i of the caller's list (in the caller's order) at addr + i
    pages; the area keeps flags (VM_MAP), no pages of its own (nr_pages 0). vunmap
    removes the area and kfrees the descriptor; the pages stay allocated. vfree of a
    vmap area does the same (nr_pages 0: nothing to free). Misuse (the model's rules):
    a frame that is not allocated (free, or reserved pfn 0) is vmap_unallocated; flags
    with VM_ALLOC vmap_vm_alloc; the state unchanged. Exactly num_physpages pages (one
    page repeated) is mapped; one more is NULL."""
    from ..model import page_alloc as pa
    from ..model import vmalloc as vm

    start = k_vmalloc_start(8192)

    def model():
        m = _s_machine()
        pages = [pa.alloc_pages(m, K_GFP_KERNEL | K_GFP_HIGHMEM, 0) for _ in range(3)]
        order = [pages[2], pages[0], pages[1], pages[0]]
        live = dict(m.slab.kmalloc_req)
        addr = vm.vmap(m, order)
        area = m.vm_areas[addr]
        out = [(addr - start) // PAGE, [vm.vmalloc_to_pfn(m, addr + i * PAGE) for i in range(5)],
               area.flags, area.nr_pages, area.size // PAGE,
               [(a["caller"], a["pages"], a["kind"]) for a in vm.vmallocinfo(m)]]
        # a frame still in the buddy lists (the input, chosen by looking)
        free_page = m.mem_map + next(p for p in range(4096, 8192)
                                     if (pa.find_block(m, p) or ("",))[0] == "free")
        before = _digest(m)
        out += [_rule(lambda: vm.vmap(m, [])), _rule(lambda: vm.vmap(m, [pages[0], free_page])),
                _rule(lambda: vm.vmap(m, [m.mem_map + 0])),
                _rule(lambda: vm.vmap(m, pages, VM_ALLOC)),
                _rule(lambda: vm.vmap(m, pages, VM_ALLOC | VM_MAP)),
                _rule(lambda: vm.vmap(m, [pages[0]] * (m.nr_pages + 1))),
                _digest(m) == before]
        vm.vunmap(m, addr)
        out += [vm.vmalloc_to_pfn(m, addr), list(m.vmlist), m.slab.kmalloc_req == live,
                [pa.find_block(m, p.pfn)[0] for p in pages]]
        other = vm.vmap(m, pages[:2], 0)
        out += [(other - start) // PAGE, m.vm_areas[other].flags, vm.vfree(m, other),
                list(m.vmlist), [pa.find_block(m, p.pfn)[0] for p in pages]]
        third = vm.vmap(m, pages)                # VM_MAP
        out += [vm.vfree(m, third), list(m.vmlist), [pa.find_block(m, p.pfn)[0] for p in pages]]
        whole = vm.vmap(m, [pages[0]] * m.nr_pages)
        out += [(whole - start) // PAGE, vm.vmalloc_to_pfn(m, whole + (m.nr_pages - 1) * PAGE)
                == pages[0].pfn, vm.vmalloc_to_pfn(m, whole + m.nr_pages * PAGE)]
        return out, [p.pfn for p in order]

    def expected(pfns):
        return [0, pfns + [None], VM_MAP, 0, 5, [("vmap", 0, "vmap")],
                ("ok", None), "vmap_unallocated", "vmap_unallocated", "vmap_vm_alloc",
                "vmap_vm_alloc", ("ok", None), True,
                None, [], True, ["allocated"] * 3,
                0, 0, None, [], ["allocated"] * 3,
                None, [], ["allocated"] * 3,
                0, True, None]

    state = {}

    def run():
        out, pfns = model()
        state["pfns"] = pfns
        return out
    return [Fact("sweep vmalloc: vmap order, counts 0 / num_physpages / one more, misuse",
                 "mm/vmalloc.c vmap, vunmap, __vunmap, get_vm_area, map_vm_area",
                 lambda: expected(state["pfns"]), run)]


# --- lookups: find_vm_area, vmalloc_to_page, vmalloc_to_pfn, vmallocinfo ------------------

def _sweep_lookup_facts() -> list[Fact]:
    """find_vm_area (the model's helper, model/vmalloc.py: the live area whose range,
    guard page included, holds the address) at each area's first byte, last byte,
    guard page, between and around areas; vmalloc_to_page / vmalloc_to_pfn (2.6.12
    mm/memory.c: walk pgd -> pte, the page of a present pte, else NULL) at the first
    and last byte of each page, the guard page, a range without a pte table, the
    direct map's last large page past high_memory (34 MiB of low memory: the 4 MiB
    page at 32 MiB reaches 36 MiB, i386 kernel_physical_mapping_init) and a pkmap
    slot; the misuse rules (not_vmalloc_address below high_memory, bad_address for a
    non-address); vmallocinfo's entries (start, end, size, caller, pages, kind) and
    the VmStruct repr for a known state."""
    from ..model import highmem as hm
    from ..model import page_alloc as pa
    from ..model import vmalloc as vm
    from ..model.boot import boot

    start = k_vmalloc_start(8192)

    def find_model():
        m = _s_machine()
        a = vm.vmalloc(m, 2 * PAGE)            # 0..3 with the guard
        b = vm.vmalloc(m, PAGE)                # 3..5
        c = vm.vmalloc(m, 3 * PAGE)            # 5..9
        vm.vfree(m, b)                          # hole 3..5
        probes = [start - 1, start, start + 1, start + 2 * PAGE - 1, start + 2 * PAGE,
                  start + 3 * PAGE - 1, start + 3 * PAGE, start + 5 * PAGE - 1,
                  start + 5 * PAGE, start + 9 * PAGE - 1, start + 9 * PAGE, K_VMALLOC_END, 0]
        hits = [vm.find_vm_area(m, p) for p in probes]
        return [None if h is None else (h.addr - start) // PAGE for h in hits], a, c

    def page_model():
        m = _s_machine()
        a = vm.vmalloc(m, 3 * PAGE)
        pfns = m.vm_areas[a].pages
        offs = [0, 1, PAGE - 1, PAGE, 2 * PAGE + PAGE - 1, 3 * PAGE, 4 * PAGE - 1, 4 * PAGE]
        got = [vm.vmalloc_to_pfn(m, a + o) for o in offs]
        got2 = [None if p is None else p.pfn for p in (vm.vmalloc_to_page(m, a + o) for o in offs)]
        want = [pfns[0], pfns[0], pfns[0], pfns[1], pfns[2], None, None, None]
        out = [got == want, got2 == want]
        before = _digest(m)
        out += [vm.vmalloc_to_pfn(m, K_VMALLOC_END - 1), vm.vmalloc_to_pfn(m, 0xFFFFFFFF),
                vm.vmalloc_to_pfn(m, 0xC2000000), vm.vmalloc_to_pfn(m, start - 1)]
        out += [_rule(lambda: vm.vmalloc_to_page(m, x)) for x in
                (0xC2000000 - 1, K_PAGE_OFFSET, K_PAGE_OFFSET - 1, 0, 1 << 32, (1 << 32) + PAGE,
                 1 << 33, -1, 1.0 * a, str(a), None, True)]
        out.append(_digest(m) == before)        # a lookup makes no pte table
        hp = pa.alloc_pages(m, K_GFP_KERNEL | K_GFP_HIGHMEM, 0)
        vaddr = hm.kmap(m, hp)
        out += [vm.vmalloc_to_pfn(m, vaddr) == hp.pfn, vm.vmalloc_to_pfn(m, vaddr + PAGE)]
        big = boot(phys_pages=8192 + 512, highmem_pages=0)      # high_memory 0xc2200000
        out += [vm.vmalloc_to_pfn(big, 0xC2200000), vm.vmalloc_to_pfn(big, 0xC23FFFFF),
                vm.vmalloc_to_pfn(big, 0xC2400000),
                _rule(lambda: vm.vmalloc_to_page(big, 0xC21FFFFF))]
        return out

    def info_model():
        m = _s_machine()
        a = vm.vmalloc(m, 3 * PAGE)
        b = vm.vmalloc_32(m, 1)
        p = [pa.alloc_pages(m, K_GFP_KERNEL, 0) for _ in range(2)]
        c = vm.vmap(m, p)
        d = vm.get_vm_area(m, 2 * PAGE + 1, VM_MAP)
        vm.vfree(m, b)
        return vm.vmallocinfo(m), repr(m.vm_areas[a]), repr(m.vm_areas[c]), repr(d)

    def info_expected():
        def e(off, pages, caller, nr, kind):
            return {"start": start + off * PAGE, "end": start + (off + pages) * PAGE,
                    "size": pages * PAGE, "caller": caller, "pages": nr, "kind": kind}
        # vmalloc 3 pages: 0..4; vmalloc_32 1 page: 4..6 (freed); vmap 2: 6..9;
        # get_vm_area 2 pages + 1 byte -> 3 pages + guard: 9..13
        return ([e(0, 4, "vmalloc", 3, "vmalloc"), e(6, 3, "vmap", 0, "vmap"),
                 e(9, 4, "get_vm_area", 0, "vmap")],
                f"VmStruct({start:#x}-{start + 4 * PAGE:#x}, nr_pages=3, vmalloc)",
                f"VmStruct({start + 6 * PAGE:#x}-{start + 9 * PAGE:#x}, nr_pages=0, vmap)",
                f"VmStruct({start + 9 * PAGE:#x}-{start + 13 * PAGE:#x}, nr_pages=0, get_vm_area)")

    def init_model():
        out = []
        for low, high in ((8192, 2048), (8192 + 512, 0), (1024, 0), (229376, 32768)):
            m = boot(phys_pages=low, highmem_pages=high)
            out.append((m.vmalloc_start, m.vmalloc_end, dict(m.vmalloc_holes), len(m.vmlist),
                        vm.vmalloc(m, PAGE), vm.vmallocinfo(m)[0]["end"]))
        return out

    def init_expected():
        out = []
        for low in (8192, 8192 + 512, 1024, 229376):
            s = k_vmalloc_start(low)
            out.append((s, K_VMALLOC_END, {s: K_VMALLOC_END}, 0, s, s + 2 * PAGE))
        return out
    return [
        Fact("sweep vmalloc: find_vm_area at first/last byte, guard page, holes, outside",
             "model/vmalloc.py find_vm_area (areas of mm/vmalloc.c __get_vm_area)",
             lambda: [None, 0, 0, 0, 0, 0, None, None, 5, 5, None, None, None],
             lambda: find_model()[0]),
        Fact("sweep vmalloc: vmalloc_to_page/pfn at page edges, guard, no table, misuse",
             "mm/memory.c vmalloc_to_page, vmalloc_to_pfn; arch/i386/mm/init.c",
             lambda: [True, True, None, None, None, None]
             + ["not_vmalloc_address"] * 4 + ["bad_address"] * 8 + [True, True, None]
             + [None, None, None, "not_vmalloc_address"], page_model),
        Fact("sweep vmalloc: vmallocinfo and repr of vmalloc, vmap and get_vm_area areas",
             "mm/vmalloc.c __get_vm_area, vmap, vfree (/proc/vmallocinfo's fields)",
             info_expected, info_model),
        Fact("sweep vmalloc: VMALLOC_START/END and the empty vmlist of four machines",
             "include/asm-i386/pgtable.h VMALLOC_START, VMALLOC_END; mm/vmalloc.c",
             init_expected, init_model),
    ]


FACT_GROUPS = [_sweep_first_fit_facts, _sweep_vmalloc_sizes_facts, _sweep_vmalloc_failure_facts,
               _sweep_page_table_facts, _sweep_free_misuse_facts, _sweep_vmap_facts,
               _sweep_lookup_facts]
