"""`kmemspec view` in a real browser (headless Chromium through selenium).

The expected states are worked out by hand from Linux 2.6.12, not read from the model:

- boot of the seed machine (229376 low + 32768 high frames, mem_map 262144 x 32 bytes =
  2048 frames after the BIOS page): ZONE_Normal [4096, 229376) is 220 free order-10
  blocks; the last one freed at boot, pfn 229376 - 1024 = 0x37c00, heads the list
  (mm/page_alloc.c __free_pages_bulk adds at the head; __rmqueue takes the head).
- alloc_pages(order 8) takes it; expand() puts the upper halves back: order 9 at
  +512, order 8 at +256 (mm/page_alloc.c expand).
- __free_pages merges a block with its buddy, pfn ^ (1 << order), while the buddy is
  free and of the same order (mm/page_alloc.c __free_pages_bulk).
- slab_colour.jsonl: the header comment works the geometry out from mm/slab.c
  (cache_grow: colour offset = colour_next * colour_off, s_mem after 32 bytes of
  on-slab management); vmalloc_seed.jsonl: three order-0 HighMem pages taken from the
  head of CPU 0's HighMem hot list after boot (0x3ffff, 0x3fffe, 0x3fffd) and one guard
  page (mm/vmalloc.c get_vm_area).

"No browser, no pass": under CI=true a missing Chromium fails these tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import open_browser
from kmemspec.cmd_view import view_data, view_html

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "examples" / "scenarios"
ARTIFACTS = ROOT / "out" / "test-artifacts"
NORMAL_END, TOP = 229376, 229376 - 1024          # 0x37c00


@pytest.fixture(scope="module")
def driver():
    browser = open_browser()
    yield browser
    browser.quit()


def _open(driver, tmp_path, name: str):
    page = tmp_path / f"{name}.html"
    page.write_text(view_html(view_data(str(SCENARIOS / f"{name}.jsonl"))))
    driver.get(page.as_uri())
    assert driver.get_log("browser") == [], "the page logged errors"


def _text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def _normal(driver, *orders):
    return tuple(int(_text(driver, f"bi-Normal-{o}")) for o in orders)


def _listed(driver, list_id: str) -> list[tuple[int, int]]:
    items = driver.find_elements("css selector", f"#{list_id} li")
    return [(int(i.get_attribute("data-pfn")), int(i.get_attribute("data-order"))) for i in items]


def test_split_and_merge_step_by_step(driver, tmp_path):
    _open(driver, tmp_path, "seed_split_and_merge")
    a, b, c = TOP, TOP + 256, TOP + 512
    # after boot Normal holds one block of each order 0..9 after mem_map (4096..6144;
    # the order-8 block 6400 and the order-9 block 6656) and 217 order-10 blocks
    # (tests/test_boot.py); steps 1-2 take 6656 and 6400
    assert _normal(driver, 8, 9, 10) == (1, 1, 217)
    # (nr_free of orders 8, 9, 10 in Normal; blocks onto / off the free lists), by hand
    expected = [
        ((1, 0, 217), [], [(6656, 9)]),                   # alloc 9: the free 512 at 6656
        ((0, 0, 217), [], [(6400, 8)]),                   # alloc 8: the free 256 at 6400
        ((1, 1, 216), [(b, 8), (c, 9)], [(a, 10)]),      # alloc 8: split 1024 -> 256+256+512
        ((0, 1, 216), [], [(b, 8)]),                      # alloc 8: the free 256
        ((0, 0, 216), [], [(c, 9)]),                      # alloc 9: the free 512
        ((1, 0, 216), [(b, 8)], []),                      # free b: buddy a in use, no merge
        ((0, 1, 216), [(a, 9)], [(b, 8)]),                # free a: a+b merge to 512 at a
        ((0, 0, 217), [(a, 10)], [(a, 9)]),               # free c: back to one 1024 block
        ((0, 0, 217), [], []),                            # double free rejected
    ]
    for step, (counts, joined, left) in enumerate(expected, start=1):
        driver.find_element("id", "next").click()
        assert _text(driver, "stepno") == f"step {step} of 9"
        assert _normal(driver, 8, 9, 10) == counts, step
        assert _listed(driver, "joined") == joined if joined or left else True, step
        assert _listed(driver, "left") == left if joined or left else True, step
    assert "double_free" in _text(driver, "ret")
    # back one step: the state after the last real free again, highlights recomputed
    driver.find_element("id", "prev").click()
    driver.find_element("id", "prev").click()
    assert _normal(driver, 8, 9, 10) == (0, 1, 216)
    assert _listed(driver, "joined") == [(a, 9)]
    changed = driver.find_elements("css selector", "#buddy td.changed")
    assert {e.get_attribute("id") for e in changed} == {"bi-Normal-8", "bi-Normal-9"}


def test_256_from_1024_keyboard_and_screenshot(driver, tmp_path):
    _open(driver, tmp_path, "seed_256_from_1024")
    body = driver.find_element("tag name", "body")
    for _ in range(3):                                              # steps 1-2 empty orders
        body.send_keys("\ue014")                                    # 9 and 8; arrow right
    assert _text(driver, "ret") == hex(TOP)
    assert _normal(driver, 8, 9, 10) == (1, 1, 216)
    outlined = {(int(r.get_attribute("data-pfn")), int(r.get_attribute("data-count")))
                for r in driver.find_elements("css selector", "#frames rect.changed-block")}
    assert outlined == {(TOP, 256), (TOP + 256, 256), (TOP + 512, 512)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "seed_256_from_1024.png"))
    for _ in range(3):
        body.send_keys("\ue012")                                    # arrow left, to boot
    assert _normal(driver, 8, 9, 10) == (1, 1, 217)
    assert driver.find_elements("css selector", "#frames rect.changed-block") == []


def test_slab_colour_and_vmalloc_pages(driver, tmp_path):
    _open(driver, tmp_path, "slab_colour")
    driver.execute_script("goTo(19)")                # create + 18 allocations: six full slabs
    rows = driver.find_elements("css selector", "#slabs [data-cache=colour_demo] tr.slab")
    got = [(int(r.get_attribute("data-slab")), r.find_element("class name", "colour-off").text,
            r.find_element("class name", "s_mem").text) for r in rows]
    want = [(pfn, str(128 * (k % 5)), hex(0xC0000000 + pfn * 4096 + 128 * (k % 5) + 32))
            for k, pfn in enumerate(range(48, 54))]     # mem_map 1..33, 14 bootstrap slabs
    assert got == want
    driver.find_element("id", "last").click()        # shrink, then a new slab at pfn 53
    row = driver.find_element("css selector", "#slabs tr.slab[data-slab='53']")
    assert row.find_element("class name", "colour-off").text == "128"
    assert "changed" in row.get_attribute("class")

    _open(driver, tmp_path, "vmalloc_seed")
    driver.find_element("id", "next").click()
    area = driver.find_element("css selector", "#vm .area[data-addr='4169138176']")
    ptes = [p.text for p in area.find_elements("class name", "pte")]
    assert ptes == [f"{0xf8800000 + i * 4096:#x}\u2192pfn {0x3ffff - i:#x}" for i in range(3)]
    assert area.find_element("class name", "guard").text.startswith("0xf8803000 guard page")
