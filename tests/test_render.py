"""SVG rendering of machine states."""

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.conform.adapter import ModelPageAllocator
from kmemspec.conform.render import parse_window, render_svg
from kmemspec.model import boot

SVG = "{http://www.w3.org/2000/svg}"


def _titles(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text for t in root.iter(f"{SVG}title")]


def test_frames_blocks_and_highlights():
    model = ModelPageAllocator()
    model.init(16, 11)
    model.alloc_pages(0)
    model.alloc_pages(2)
    svg = render_svg(model.machine, start=1024, end=1040,
                     highlights=[(1028, 4, "#d00000", "implementation: pfn 4")])
    titles = _titles(svg)
    assert "allocated block pfn 0x400, order 0" in titles
    assert "allocated block pfn 0x404, order 2" in titles
    assert "free block pfn 0x401, order 0" in titles
    assert "free block pfn 0x408, order 3" in titles
    assert "implementation: pfn 4" in titles
    assert "Normal: 1 1 0 1 0 0 0 0 0 0 0" in svg


def test_a_large_machine_is_drawn_in_aggregated_cells():
    machine = boot()
    svg = render_svg(machine)
    ET.fromstring(svg)
    assert "one cell = 64 frames" in svg
    assert len(svg) < 200_000


def test_window_parsing():
    machine = boot(phys_pages=64, highmem_pages=16, max_dma_pfn=16)
    assert parse_window(machine, "Normal") == (16, 64)
    assert parse_window(machine, "8:24") == (8, 24)
    assert parse_window(machine, ":24") == (None, 24)
    with pytest.raises(ValueError):
        parse_window(machine, "Nowhere")


def test_vmalloc_areas_and_guard_pages_are_drawn():
    vmalloc = pytest.importorskip("kmemspec.model.vmalloc")
    machine = boot(phys_pages=1024, highmem_pages=64)
    try:
        addr = vmalloc.vmalloc(machine, 3 * 4096)
    except Exception as exc:      # the vmalloc layer needs kmalloc, which may not be in yet
        pytest.skip(f"vmalloc not usable yet: {exc}")
    svg = render_svg(machine)
    assert addr is not None and "guard page" in svg and "vmalloc range" in svg


def test_render_command(tmp_path):
    scenario = tmp_path / "s.jsonl"
    scenario.write_text('{"op": "boot", "phys_pages": 64, "highmem_pages": 0, "max_dma_pfn": 16}\n'
                        '{"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 3}\n')
    out = tmp_path / "s.svg"
    runner = CliRunner()
    result = runner.invoke(main, ["render", str(scenario), "-o", str(out), "--window", "Normal"])
    assert result.exit_code == 0, result.output
    ET.fromstring(out.read_text())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"op": "alloc_pages"}\n')
    assert runner.invoke(main, ["render", str(bad)]).exit_code == 2
    assert runner.invoke(main, ["render", str(scenario), "--window", "x"]).exit_code == 2


def test_slabs_are_drawn_with_their_colour_offset(tmp_path):
    pytest.importorskip("kmemspec.model.slab")
    scenario = tmp_path / "slab.jsonl"
    scenario.write_text(
        '{"op": "boot", "phys_pages": 2048, "highmem_pages": 0}\n'
        '{"op": "kmem_cache_create", "name": "foo", "size": 1500, "align": 0, "flags": 0,'
        ' "ctor": null, "as": "c"}\n'
        + '{"op": "kmem_cache_alloc", "cache": "$c", "gfp": "GFP_KERNEL"}\n' * 3)
    out = tmp_path / "slab.svg"
    result = CliRunner().invoke(main, ["render", str(scenario), "-o", str(out)])
    assert result.exit_code == 0, result.output
    titles = [t for t in _titles(out.read_text()) if t and t.startswith("slab pfn")]
    offsets = sorted(int(t.split("colour offset ")[1].split(",")[0]) for t in titles)
    assert 0 in offsets and 128 in offsets      # the second slab of foo is coloured
