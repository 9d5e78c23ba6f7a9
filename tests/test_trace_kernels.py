"""Traces from other kernels (issue 12): Debian's Linux 6.1 on x86_64 and on i386
(686-pae with 3 GiB, so highmem is used), recorded with benches/record_vm.sh (see
spec/trace.md, "Other kernels"). Each pristine fixture gives no finding; every fault
kind the 6.18 tests inject (tests/test_trace_check.py) is injected here in the
fixture's own event format and must be found at its line.

Expected values are the kernel's: kmalloc classes from mm/slab_common.c
(kmalloc_info, 6.1: 8, 16, 32, 64, 96, 128, 192, 256, ... 8192), MAX_ORDER 11 in 6.1
(orders 0..10, include/linux/mmzone.h), the i386 direct map at 0xc0000000
(arch/x86/Kconfig, VMSPLIT_3G), %p width 2 * sizeof(void *) (lib/vsprintf.c).
"""

from __future__ import annotations

import functools
import io
import json
import pathlib
import re

import pytest
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.trace.check import check_stream, compiled_available
from kmemspec.trace.parse import detect_profile, open_trace
from kmemspec.model.profiles import LINUX_6X_I386, LINUX_6X_X86_64

VM = pathlib.Path(__file__).parent / "data" / "traces" / "vm"
# fixture -> (profile, direct-map base, pointer hex digits)
KERNELS = {
    "linux-6.1-amd64.txt.xz": (LINUX_6X_X86_64, 0xFFFF888000000000, 16),
    "linux-6.1-686pae.txt.xz": (LINUX_6X_I386, 0xC0000000, 8),
    # Debian bookworm-backports 6.12.95 amd64 (no 6.12 i386 image is offered there)
    "linux-6.12-amd64.txt.xz": (LINUX_6X_X86_64, 0xFFFF888000000000, 16),
    # Debian bullseye 5.10.218 amd64: mm_page_* print pfn=%lu (decimal)
    "linux-5.10-amd64.txt.xz": (LINUX_6X_X86_64, 0xFFFF888000000000, 16),
}
KERNELS.update({p.name: (LINUX_6X_I386, 0xC0000000, 8)
                for p in VM.glob("linux-6.1-686.txt.xz")})
NAMES = sorted(KERNELS)
# fixture -> [(line, cause)] of its expected (explained) warnings
EXPECTED_WARNINGS = {"linux-6.12-amd64.txt.xz": [(25181, "untraced_object_free")]}


@functools.lru_cache(maxsize=None)
def lines_of(name: str) -> tuple[str, ...]:
    stream, _ = open_trace(str(VM / name))
    return tuple(stream.readlines())


def check(name, lines, strict=False):
    """The one-process report under the fixture's profile, after checking that two
    processes and the compiled engine give the same report."""
    profile = KERNELS[name][0]
    text = "".join(lines)
    one = check_stream(io.StringIO(text), strict=strict, profile=profile)
    two = check_stream(io.StringIO(text), strict=strict, profile=profile, jobs=2)
    assert two.to_json() == one.to_json()
    if compiled_available():
        comp = check_stream(io.StringIO(text), strict=strict, profile=profile,
                            engine="compiled")
        assert comp.to_json() == one.to_json(), "the compiled engine differs"
    return one


def first(lines, pattern, start=0):
    rx = re.compile(pattern)
    return next(i for i in range(start, len(lines)) if rx.search(lines[i]))


def event_line(template, event, fields):
    return f"{template[:template.index(': ') + 2]}{event}: {fields}\n"


def inject(lines, index, new_line):
    out = list(lines)
    out.insert(index, new_line)
    return out, index + 1


def _pfn_text(like: str, pfn: int) -> str:
    return f"{pfn:#x}" if like.startswith("0x") else str(pfn)


def ptr(name, a):
    return f"{a:0{KERNELS[name][2]}x}"


def in_lowmem(name, offset):
    """An address `offset` bytes into the direct map (below 16 MiB: always lowmem)."""
    return ptr(name, KERNELS[name][1] + offset)


# 6.1 object lines: kmem_cache_alloc has no name= (it came in 6.2)
TAIL = "gfp_flags=GFP_KERNEL node=-1 accounted=false"


@pytest.mark.parametrize("name", NAMES)
def test_pristine_fixture_gives_no_finding(name):
    c = check(name, lines_of(name))
    assert c.events > 30000
    assert (c.errors, c.violations) == ([], [])
    # Warnings, each explained: on 6.12 one maple_node (256 bytes, allocated by
    # lib/maple_tree.c: mas_alloc_nodes) is allocated again while live; the maple tree
    # frees its nodes with mt_free_bulk -> kmem_cache_free_bulk, which has no per-object
    # event (spec/trace.md, untraced_object_free).
    got = [(w.line, w.cause) for w in c.warnings]
    assert got == EXPECTED_WARNINGS.get(name, [])
    lines = lines_of(name)
    for w in c.warnings:
        assert "mas_alloc_nodes" in lines[w.line - 1] and "bytes_alloc=256" in lines[w.line - 1]


@pytest.mark.parametrize("name", NAMES)
def test_profile_is_detected_from_the_header_and_from_pointer_width(name):
    want = KERNELS[name][0].name
    lines = lines_of(name)
    assert detect_profile(lines)[0] == want
    # without the recorder's header line: from the first %p pointer's width
    assert detect_profile(lines[1:]) == (want, detect_profile(lines[1:])[1])
    assert "hex-digit pointers" in detect_profile(lines[1:])[1]


@pytest.mark.parametrize("name", NAMES)
def test_cli_reports_profile_and_the_missing_vmalloc_events(name):
    r = CliRunner().invoke(main, ["trace", "--json", str(VM / name)])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["profile"]["name"] == KERNELS[name][0].name
    # the vmalloc events came in 6.3 (include/trace/events/vmalloc.h): 5.10, 6.1 have none
    no_vmalloc = any("no vmalloc events" in x for x in report["limitations"])
    assert no_vmalloc == (not name.startswith("linux-6.12-"))
    if not no_vmalloc:
        assert report["by_event"]["alloc_vmap_area"] > 0


def test_explicit_profile_overrides_detection():
    name = "linux-6.1-686pae.txt.xz"
    r = CliRunner().invoke(main, ["trace", "--json", "--profile", "linux-6.x-x86_64",
                                  str(VM / name)])
    report = json.loads(r.output)
    assert report["profile"] == {"name": "linux-6.x-x86_64", "from": "--profile"}
    # 32-bit pointers are not x86_64 kernel addresses: the object checks say so
    assert any("not a kernel address" in e["message"] for e in report["errors"])


# ---------------------------------------------------------------- faults
@pytest.mark.parametrize("name", NAMES)
def test_misaligned_page_block(name):
    lines = lines_of(name)
    i = first(lines, r"mm_page_alloc: .* order=[1-3] ")
    # in the fixture's own format: pfn=%lu on 5.10, pfn=0x%lx on 6.x
    bad = re.sub(r"pfn=(0x[0-9a-f]+|[0-9]+)",
                 lambda m: f"pfn={_pfn_text(m.group(1), int(m.group(1), 0) + 1)}", lines[i])
    faulty, line = inject(lines, i + 1, bad)
    [v] = check(name, faulty).violations
    assert (v.line, v.invariant, v.event) == (line, "buddy_alignment", "mm_page_alloc")


@pytest.mark.parametrize("name", NAMES)
def test_order_above_the_top_order(name):
    lines = lines_of(name)
    i = first(lines, r"mm_page_alloc: ")
    bad = re.sub(r"order=\d+", "order=11",
                 re.sub(r"pfn=(0x[0-9a-f]+|[0-9]+)",
                        lambda m: f"pfn={_pfn_text(m.group(1), 0x100000)}", lines[i]))
    faulty, line = inject(lines, i, bad)
    [v] = check(name, faulty).violations
    assert (v.line, v.invariant) == (line, "buddy_alignment")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("req,alloc,message", [(100, 192, "class is 128"),
                                               (9000, 12288, "class is 16384"),
                                               (0, 0, "not the class")])
def test_kmalloc_bytes_alloc_not_the_class(name, req, alloc, message):
    lines = lines_of(name)
    i = first(lines, r" kmalloc: ")
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmalloc",
                          f"call_site=f+0x1/0x2 ptr={in_lowmem(name, 0x400000)} "
                          f"bytes_req={req} bytes_alloc={alloc} {TAIL}"))
    [v] = check(name, faulty).violations
    assert (v.line, v.invariant, v.event) == (line, "size_class", "kmalloc")
    assert message in v.message


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("req,alloc,message", [(300, 256, "< bytes_req"),
                                               (0, 0, "never empty")])
def test_kmem_cache_alloc_sizes(name, req, alloc, message):
    lines = lines_of(name)
    i = first(lines, r" kmem_cache_alloc: ")
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmem_cache_alloc",
                          f"call_site=f+0x1/0x2 ptr={in_lowmem(name, 0x400000)} "
                          f"bytes_req={req} bytes_alloc={alloc} {TAIL}"))
    [v] = check(name, faulty).violations
    assert (v.line, v.invariant, v.event) == (line, "size_class", "kmem_cache_alloc")
    assert message in v.message


@pytest.mark.parametrize("name", NAMES)
def test_power_of_two_object_not_naturally_aligned(name):
    lines = lines_of(name)
    i = first(lines, r" kmalloc: ")
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmalloc",
                          f"call_site=f+0x1/0x2 ptr={in_lowmem(name, 0x400020)} "
                          f"bytes_req=64 bytes_alloc=64 {TAIL}"))
    [v] = check(name, faulty).violations
    assert (v.line, v.invariant) == (line, "natural_alignment")


@pytest.mark.parametrize("name", NAMES)
def test_live_object_partly_overlapped(name):
    lines = lines_of(name)
    i = first(lines, r"kmem_cache_alloc: .* bytes_alloc=(1[0-9][0-9]|[2-9][0-9][0-9]) ",
              len(lines) // 2)      # (long after the direct map base is learnt)
    p = int(re.search(r"ptr=([0-9a-f]+)", lines[i]).group(1), 16)
    faulty, line = inject(lines, i + 1, event_line(lines[i], "kmalloc",
                          f"call_site=f+0x1/0x2 ptr={ptr(name, p + 32)} bytes_req=96 "
                          f"bytes_alloc=96 {TAIL}"))
    c = check(name, faulty)
    v = c.violations[0]
    assert (v.line, v.invariant, v.event) == (line, "no_overlap", "kmalloc")
    assert f"{p:#x}" in v.message and f"line {i + 1}" in v.message


@pytest.mark.parametrize("name", NAMES)
def test_page_block_taken_from_buddy_while_live(name):
    lines = lines_of(name)
    i = first(lines, r"mm_page_alloc: .* order=[1-3] ")
    pfn = re.search(r"pfn=(0x[0-9a-f]+|[0-9]+)", lines[i]).group(1)
    faulty, line = inject(lines, i + 1, event_line(lines[i], "mm_page_alloc_zone_locked",
                          f"page={ptr(name, 0x1000)} pfn={pfn} order=0 migratetype=0 "
                          "percpu_refill=1"))
    [w] = [w for w in check(name, faulty).warnings if w.line == line]
    assert w.invariant == "no_overlap"
    assert [v.line for v in check(name, faulty, strict=True).violations
            if v.cause == "untraced_page_free"] == [line]


@pytest.mark.parametrize("name", NAMES)
def test_live_page_block_allocated_again(name):
    lines = lines_of(name)
    i = first(lines, r"mm_page_alloc: .* order=[1-3] ")
    faulty, line = inject(lines, i + 1, lines[i])
    [w] = [w for w in check(name, faulty).warnings if w.line == line]
    assert (w.invariant, w.cause) == ("no_overlap", "untraced_page_free")


def test_highmem_pages_are_traced_with_pfns_above_low_memory():
    """The 686-pae fixture (3 GiB) allocates highmem pages: pfns above max_low_pfn
    (at most 896 MiB >> 12 = 0x38000), which have no direct-map address; they are
    checked as page blocks like any other."""
    name = "linux-6.1-686pae.txt.xz"
    pfns = [int(m.group(1), 16) for line in lines_of(name)
            for m in [re.search(r"mm_page_alloc: .*pfn=0x([0-9a-f]+)", line)] if m]
    assert max(pfns) > 0x38000
    # every object lies in low memory: below PAGE_OFFSET + 896 MiB
    ptrs = [int(m.group(1), 16) for line in lines_of(name)
            for m in [re.search(r" (?:kmalloc|kmem_cache_alloc): .*ptr=([0-9a-f]+)", line)]
            if m]
    assert all(0xC0000000 <= a < 0xC0000000 + (896 << 20) for a in ptrs)


# ---------------------------------------------------------------- buddyinfo at the end
def _buddy_run(name, buddy_text, tmp_path, strict=False):
    stem = name.removesuffix(".txt.xz")
    b = tmp_path / "buddyinfo"
    b.write_text(buddy_text)
    args = ["trace", "--json", str(VM / name), "--buddyinfo-after", str(b),
            "--zoneinfo-after", str(VM / f"{stem}.zoneinfo")] + (["--strict"] if strict else [])
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("name", NAMES)
def test_kernels_own_buddyinfo_is_consistent_with_the_trace(name, tmp_path):
    stem = name.removesuffix(".txt.xz")
    r = _buddy_run(name, (VM / f"{stem}.buddyinfo").read_text(), tmp_path)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["violations"] == []
    assert [(w["line"], w["cause"]) for w in report["warnings"]] == EXPECTED_WARNINGS.get(name, [])
    assert any("live + free <= managed" in x for x in report["limitations"])


@pytest.mark.parametrize("name", NAMES)
def test_buddyinfo_claiming_every_managed_page_free_meets_the_live_blocks(name, tmp_path):
    """The Normal zone (or DMA32 on x86_64) all free by buddyinfo, while the trace ends
    with blocks live in it: the class of its own, a warning, a violation if strict."""
    stem = name.removesuffix(".txt.xz")
    zone = "DMA32" if "amd64" in name else "Normal"
    zi = (VM / f"{stem}.zoneinfo").read_text()
    managed = int(re.search(rf"zone\s+{zone}\n(?:.*\n)*?\s+managed\s+(\d+)", zi).group(1))
    rows = []
    for row in (VM / f"{stem}.buddyinfo").read_text().splitlines():
        if re.search(rf"zone\s+{zone}\s", row):
            # managed pages as order-0 blocks: free == managed exactly
            row = re.sub(r"((?:\s+\d+){11})\s*$", " " + str(managed) + " 0" * 10, row)
        rows.append(row)
    r = _buddy_run(name, "\n".join(rows) + "\n", tmp_path)
    [w] = [w for w in json.loads(r.output)["warnings"] if w["invariant"] == "buddyinfo_after"]
    assert (w["invariant"], w["cause"]) == ("buddyinfo_after", "untraced_page_free")
    assert f"{managed} managed" in w["message"]
    assert r.exit_code == 0
    r = _buddy_run(name, "\n".join(rows) + "\n", tmp_path, strict=True)
    assert r.exit_code == 1


def test_buddyinfo_with_the_wrong_number_of_orders_is_bad_input(tmp_path):
    r = _buddy_run("linux-6.1-686pae.txt.xz", "Node 0, zone Normal 1 2 3\n", tmp_path)
    assert r.exit_code == 2
    assert "buddyinfo line 1: 3 orders" in r.output
