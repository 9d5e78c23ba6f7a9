"""`kmemspec view` without a browser: the picture model's diffs, the command, the
committed example views. (The page itself is tested in tests/test_view_browser.py.)"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.cmd_view import view_data, view_html
from kmemspec.conform import picture as pic
from kmemspec.model import boot
from kmemspec.model.page_alloc import __free_pages, alloc_pages

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("seed_256_from_1024", "seed_split_and_merge", "slab_colour", "vmalloc_seed")


def test_diffs_replay_forward_to_each_picture():
    machine = boot(phys_pages=64, highmem_pages=0, max_dma_pfn=16)
    pictures = [pic.picture(machine)]
    page = alloc_pages(machine, 0xD0, 2)                 # GFP_KERNEL, order 2
    pictures.append(pic.picture(machine))
    __free_pages(machine, page, 2)
    pictures.append(pic.picture(machine))
    state = copy.deepcopy(pictures[0])
    for before, after in zip(pictures, pictures[1:]):
        changes = pic.diff(before, after)
        assert changes                                     # every step changed something
        assert pic.apply(state, json.loads(json.dumps(changes))) == after
    # the allocated block shows up as an allocated order-2 block at its head pfn
    assert pic.diff(pictures[0], pictures[1])["blocks"][str(page.pfn)] == [2, "alloc"]


def test_runs():
    assert pic.runs([3, 4, 5, 9, 1, 2]) == [[3, 3], [9, 1], [1, 2]]
    assert pic.runs([]) == []


def test_view_command_and_bad_input(tmp_path):
    runner = CliRunner()
    out = tmp_path / "v.html"
    result = runner.invoke(main, ["view", str(ROOT / "examples/scenarios/seed_256_from_1024.jsonl"),
                                  "-o", str(out), "--window", "Normal"])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")   # no network
    assert "https://" not in html and "<script src" not in html
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"op": "alloc_pages"}\n')
    result = runner.invoke(main, ["view", str(bad), "-o", str(out)])
    assert result.exit_code == 2 and "line 1" in result.output
    result = runner.invoke(main, ["view", str(ROOT / "examples/scenarios/seed_256_from_1024.jsonl"),
                                  "-o", str(out), "--window", "nowhere"])
    assert result.exit_code == 2


def test_committed_example_views_are_current(monkeypatch):
    monkeypatch.chdir(ROOT)
    for name in EXAMPLES:
        fresh = view_html(view_data(os.path.join("examples", "scenarios", f"{name}.jsonl")))
        committed = (ROOT / "examples" / "views" / f"{name}.html").read_text()
        assert fresh == committed, f"examples/views/{name}.html is stale: regenerate it (README)"


def test_no_browser_fails_under_ci_and_skips_locally(monkeypatch):
    """"No browser, no pass": tests/browser.py fails the test under CI=true."""
    import pytest

    import browser
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no headless Chromium"):
        browser.open_browser()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="chromium"):
        browser.open_browser()


def test_optional_per_cpu_lists_and_array_caches_are_pictured():
    """State another model version may add (2.6.12 struct per_cpu_pages, struct
    array_cache) is pictured when present, read with getattr: here put on by hand."""
    from types import SimpleNamespace as NS
    machine = boot(phys_pages=64, highmem_pages=0, max_dma_pfn=16)
    plain = pic.picture(machine)
    # the model's pagesets exist from boot (free_area_init_core; 48 frames: batch 1,
    # low 2, high 6); a 2.6.12 boot leaves 63..58 on Normal's hot list and 15..10 on
    # DMA's (free_all_bootmem_core frees 2..63 one by one, each list drains one frame
    # from its tail at 6; tests/test_watermarks.py), pictured one frame per run
    assert plain["pcp"]["Normal:0:hot"] == [6, 2, 6, 1, [[p, 1] for p in range(63, 57, -1)]]
    assert {int(p) for p, (_, r) in plain["blocks"].items() if r == "pcp"} == \
        set(range(58, 64)) | set(range(10, 16))
    machine.pcp_pages.clear()
    for zone in machine.zones:                       # empty lists for what follows
        for pcp in zone.pageset[0].pcp:
            pcp.list.clear()
            pcp.count = 0
    normal = machine.zones[1]
    saved = normal.pageset
    normal.pageset = [[NS(count=2, low=0, high=6, batch=1, list=[40, 41]),
                       NS(count=0, low=0, high=2, batch=1, list=[])]]
    cache = NS(array=[NS(entry=[0xC0001000, 0xC0001020], limit=120, batchcount=60)])
    assert pic._array_caches(cache) == {"0": [2, 120, 60, [0xC0001000, 0xC0001020]]}
    got = pic.picture(machine)
    assert got["pcp"]["Normal:0:hot"] == [2, 0, 6, 1, [[40, 2]]]
    assert got["blocks"]["40"] == [0, "pcp"] and got["blocks"]["41"] == [0, "pcp"]
    normal.pageset = saved


def test_site_links_kernel_names_outside_code_and_existing_links():
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "docs" / "build_site.py")
    build_site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_site)
    functions = build_site.model_functions()
    assert functions["expand"][0] == "page_alloc" and functions["cache_grow"][0] == "slab"
    text = ("`expand()` splits; see [`expand`](x.md); `not_a_model_name`\n"
            "```\n`expand`\n```\n")
    linked = build_site.link_names(text, functions, "")
    assert linked.splitlines()[0] == ("[`expand()`](model/page_alloc.md#fn-expand) splits; "
                                      "see [`expand`](x.md); `not_a_model_name`")
    assert linked.splitlines()[2] == "`expand`"                    # code block left alone
    covered = build_site.coverage()                # every listed operation exists
    assert covered["expand"][1] == ["expand_step"]
