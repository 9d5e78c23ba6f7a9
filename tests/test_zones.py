"""Zones as 2.6.12 sets them up: present_pages, min_free_kbytes, pages_min/low/high,
lowmem_reserve, the per-CPU list sizes, zone_watermark_ok and the zoneinfo view.

Every expected value is computed here by hand (or by a one-line formula written out
in the test) from Linux 2.6.12 mm/page_alloc.c: free_area_init_core,
init_per_zone_pages_min, setup_per_zone_pages_min, setup_per_zone_lowmem_reserve,
zone_watermark_ok. Never read back from the model.
"""

import json

import pytest
from click.testing import CliRunner

from kmemspec.cli import main
from kmemspec.model import page_alloc as pa
from kmemspec.model.boot import boot
from kmemspec.model.errors import ConfigError

# The default (seed) machine: 229376 low frames (896 MiB), 32768 high (128 MiB).
# DMA = pfn 0..4095 (16 MiB), Normal = 4096..229375 -> 225280 frames, HighMem 32768.
# lowmem_kbytes = (4096 + 225280) * 4 = 917504; int_sqrt(917504 * 16) =
# int_sqrt(14680064) = 3831 (3831^2 = 14676561 <= 14680064 < 3832^2 = 14684224).
# pages_min = 3831 >> 2 = 957 shared in proportion to present pages:
#   DMA    957 * 4096 / 229376   = 17   (17.09);  low 17*5/4 = 21, high 17*6/4 = 25
#   Normal 957 * 225280 / 229376 = 939  (939.9);  low 939*5/4 = 1173, high 939*6/4 = 1408
#   HighMem: 32768/1024 = 32, clamped to SWAP_CLUSTER_MAX(32)..128 -> 32; 40; 48
# lowmem_reserve (ratios 256, 32):
#   DMA[Normal]  = 225280/256 = 880;  DMA[HighMem] = (32768 + 225280)/256 = 1008
#   Normal[HighMem] = 32768/32 = 1024
# batch = present/1024, capped at 256 KiB / 4 KiB = 64 frames, then /4, at least 1:
#   DMA 4096/1024 = 4 -> 1;  Normal 220 -> 64 -> 16;  HighMem 32 -> 8
#   hot: low 2*batch, high 6*batch;  cold: low 0, high 2*batch
# hot count after boot (mm/bootmem.c free_all_bootmem_core, arch/i386/mm/init.c
# set_highmem_pages_init: single frames go through free_hot_cold_page on CPU 0, which
# drains batch frames when count >= high before adding one; tests/test_boot.py):
#   DMA 31 singles (pfns 1..31) -> stays at high 6;  Normal 31 singles (6145..6175)
#   < 96 -> 31;  HighMem 32768 singles = 48 + 8 * 4090 -> back at high 48
SEED = {
    "DMA": dict(present=4096, min=17, low=21, high=25, reserve=[0, 880, 1008], batch=1,
                hot=6),
    "Normal": dict(present=225280, min=939, low=1173, high=1408, reserve=[0, 0, 1024],
                   batch=16, hot=31),
    "HighMem": dict(present=32768, min=32, low=40, high=48, reserve=[0, 0, 0], batch=8,
                    hot=48),
}


@pytest.fixture(scope="module")
def seed():
    return boot()


def test_seed_min_free_kbytes(seed):
    assert seed.min_free_kbytes == 3831


@pytest.mark.parametrize("name", SEED)
def test_seed_watermarks_reserves_and_batches(seed, name):
    want = SEED[name]
    zone = next(z for z in seed.zones if z.name == name)
    assert zone.present_pages == want["present"]
    assert (zone.pages_min, zone.pages_low, zone.pages_high) == (
        want["min"], want["low"], want["high"])
    assert zone.lowmem_reserve == want["reserve"]
    b = want["batch"]
    hot, cold = zone.pageset[0].pcp
    assert (hot.count, hot.low, hot.high, hot.batch) == (want["hot"], 2 * b, 6 * b, b)
    assert (cold.count, cold.low, cold.high, cold.batch) == (0, 0, 2 * b, b)


def test_present_pages_counts_reserved_frames_too(seed):
    """present_pages is the zone size less holes, not the frames boot freed: DMA holds
    the reserved BIOS page 0, so fewer frames were freed than are present."""
    dma = seed.zones[0]
    assert dma.present_pages == 4096 and dma.freed_at_boot < 4096


def test_min_free_kbytes_clamps_at_128_on_a_small_machine():
    # 64 frames = 256 KiB: int_sqrt(256 * 16) = 64 < 128 -> 128 KiB = 32 pages,
    # DMA (16 frames) gets 32 * 16 / 64 = 8, Normal (48) 32 * 48 / 64 = 24
    m = boot(phys_pages=64, highmem_pages=0, max_dma_pfn=16)
    assert m.min_free_kbytes == 128
    assert [z.pages_min for z in m.zones[:2]] == [8, 24]
    assert [z.pages_low for z in m.zones[:2]] == [10, 30]      # 8*5/4, 24*5/4
    assert [z.pages_high for z in m.zones[:2]] == [12, 36]     # 8*6/4, 24*6/4


def test_min_free_kbytes_boot_key_overrides():
    # 1024 KiB -> 256 pages: DMA 256*4096/229376 = 4 (4.57), Normal 256*225280/229376
    # = 251 (251.4); highmem keeps its own rule (32)
    m = boot(min_free_kbytes=1024)
    assert m.min_free_kbytes == 1024
    assert [z.pages_min for z in m.zones] == [4, 251, 32]
    with pytest.raises(ConfigError, match="min_free_kbytes"):
        boot(min_free_kbytes=-1)


def test_highmem_pages_min_clamps_to_128():
    # 1 GiB of highmem: 262144 / 1024 = 256 -> clamped to 128; high 128*6/4 = 192
    m = boot(highmem_pages=262144)
    assert m.zones[2].pages_min == 128 and m.zones[2].pages_high == 192


def test_zone_watermark_ok_by_hand():
    """zone_watermark_ok on a made-up zone: free_pages 100, reserve 10 for class 1.
    Order 0: free_pages - 1 + 1 = 100 must exceed mark + lowmem_reserve[class]."""
    z = pa.Zone(0, "DMA", 0, 1024, 11)
    z.free_pages = 100
    z.lowmem_reserve = [0, 10, 0]
    assert pa.zone_watermark_ok(z, 0, 99, 0, False, False)        # 100 > 99
    assert not pa.zone_watermark_ok(z, 0, 100, 0, False, False)   # 100 <= 100
    assert pa.zone_watermark_ok(z, 0, 89, 1, False, False)        # 100 > 89 + 10
    assert not pa.zone_watermark_ok(z, 0, 90, 1, False, False)    # 100 <= 90 + 10
    # __GFP_HIGH: min -= min/2; can_try_harder: min -= min/4
    assert not pa.zone_watermark_ok(z, 0, 199, 0, False, True)    # 199 - 99 = 100
    assert pa.zone_watermark_ok(z, 0, 198, 0, False, True)        # 198 - 99 = 99
    assert pa.zone_watermark_ok(z, 0, 120, 0, True, False)        # 120 - 30 = 90
    assert not pa.zone_watermark_ok(z, 0, 134, 0, True, False)    # 134 - 33 = 101
    assert pa.zone_watermark_ok(z, 0, 250, 0, True, True)         # 125 - 31 = 94
    assert not pa.zone_watermark_ok(z, 0, 270, 0, True, True)     # 135 - 33 = 102


def test_zone_watermark_ok_per_order_loop():
    """Order 2, free_pages 100: 100 - 4 + 1 = 97 after the request. At each order o
    below 2 the frames in order-o blocks drop out and the mark halves."""
    z = pa.Zone(0, "DMA", 0, 1024, 11)
    z.free_pages = 100
    z.free_area[0].nr_free = 100           # all order-0: o=0 leaves -3 <= 8/2
    assert not pa.zone_watermark_ok(z, 2, 8, 0, False, False)
    z.free_area[0].nr_free, z.free_area[2].nr_free = 0, 25     # nothing drops out
    assert pa.zone_watermark_ok(z, 2, 8, 0, False, False)
    # 20 order-0 frames, 30 order-1 blocks (60 frames), 5 order-2 blocks (20 frames);
    # mark 160 with __GFP_HIGH -> 80: 97 > 80; o=0: 77 > 40; o=1: 17 <= 20 -> fails
    z.free_area[0].nr_free, z.free_area[1].nr_free, z.free_area[2].nr_free = 20, 30, 5
    assert not pa.zone_watermark_ok(z, 2, 160, 0, False, True)
    # mark 120 -> 60: 97 > 60; o=0: 77 > 30; o=1: 17 > 15 -> ok
    assert pa.zone_watermark_ok(z, 2, 120, 0, False, True)


def test_zoneinfo_json_and_text_from_run(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"op": "boot", "cpus": 2}\n')
    result = CliRunner().invoke(main, ["run", str(path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)["state"]["zoneinfo"]
    normal = info["Normal"]
    assert (normal["present_pages"], normal["pages_min"], normal["pages_low"],
            normal["pages_high"], normal["lowmem_reserve"]) == (225280, 939, 1173, 1408,
                                                                [0, 0, 1024])
    assert [p["cpu"] for p in normal["pagesets"]] == [0, 1]
    assert normal["pagesets"][1]["hot"] == {"count": 0, "low": 32, "high": 96, "batch": 16}
    assert normal["pagesets"][1]["cold"] == {"count": 0, "low": 0, "high": 32, "batch": 16}
    text = CliRunner().invoke(main, ["run", str(path)]).output
    assert "Node 0, zone   Normal\n" in text
    assert "        min      939\n        low      1173\n        high     1408\n" in text
    assert "        protection: (0, 880, 1008)" in text


def test_bad_min_free_kbytes_in_a_scenario_exits_2(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"op": "boot", "min_free_kbytes": "lots"}\n')
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and "min_free_kbytes" in result.output
    assert "Traceback" not in result.output
