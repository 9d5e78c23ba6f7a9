"""Boot: zones, mem_map placement, and free_all_bootmem equivalence."""

import pytest

from kmemspec.model import ConfigError, MachineConfig, boot
from kmemspec.model import page_alloc as pa
from kmemspec.model.addr import __pa, __va, page_address, page_to_pfn, pfn_to_page, virt_to_page
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.model.mem_map import PG_reserved
from kmemspec.spec import check_all


def test_seed_machine_layout():
    m = boot()   # the seed's machine: 229376 low + 32768 high frames
    assert m.nr_pages == 262144
    names = [(z.name, z.zone_start_pfn, z.spanned_pages) for z in m.zones]
    # arch/i386: DMA below 16 MiB (4096 frames), Normal to 896 MiB, HighMem above
    assert names == [("DMA", 0, 4096), ("Normal", 4096, 225280), ("HighMem", 229376, 32768)]
    # mem_map, by hand from 2.6.12 (torvalds/linux 1da177e4):
    # mm/page_alloc.c alloc_node_mem_map: size = (node_spanned_pages + 1) * sizeof(struct
    # page) = (262144 + 1) * 32 = 8388640 bytes (include/linux/mm.h: struct page is 8
    # 32-bit words on i386), from alloc_bootmem_node (include/linux/bootmem.h: align
    # SMP_CACHE_BYTES, goal __pa(MAX_DMA_ADDRESS) = 16 MiB, include/asm-i386/dma.h).
    # mm/bootmem.c __alloc_bootmem_core: areasize = ceil(8388640 / 4096) = 2049 frames,
    # first fit from the goal pfn 16 MiB >> 12 = 4096: frames 4096..6144 (ZONE_NORMAL).
    size = (262144 + 1) * 32
    frames = -(-size // 4096)
    assert frames == 2049
    assert m.mem_map_pfns == range(4096, 4096 + frames) == range(4096, 6145)
    assert all(m.mem_map.flags[p] & PG_reserved for p in (0, 4096, 6144))
    assert not m.mem_map.flags[1] & PG_reserved
    assert not m.mem_map.flags[6145] & PG_reserved
    # every other frame is free: 262144 - pfn 0 - 2049 frames of mem_map
    assert pa.nr_free_pages(m) == 262144 - 1 - 2049
    # DMA: pfns 1..4095 free = 1+2+4+...+512 (pfns 1..1023, each block aligned: 2/2, 4/4,
    # ... 512/512) then (4096 - 1024) / 1024 = 3 whole 1024-frame blocks
    assert 1 + sum(1 << o for o in range(10)) == 1024 and (4096 - 1024) // 1024 == 3
    dma = [1] * 10 + [3]
    # Normal: 6145..229375 free = 1+2+...+512 (6145..7167, each block aligned: 6146/2,
    # 6148/4, ... 6656/512) then (229376 - 7168) / 1024 = 217 whole 1024-frame blocks
    assert 6145 + sum(1 << o for o in range(10)) == 7168 and (229376 - 7168) // 1024 == 217
    normal = [1] * 10 + [217]
    assert pa.buddyinfo(m) == {"DMA": dma, "Normal": normal, "HighMem": [0] * 10 + [32]}


def test_seed_256_frames_from_a_1024_block():
    """The seed: 256 frames from a 1024 block leave one 512 and one 256 block free.

    After boot, ZONE_NORMAL holds one free block of each order 0..9 below pfn 7168 (the
    tail end of mem_map at 4096..6144), so an order-8 request would take the free order-8
    block 6400. The seed's split happens once orders 8 and 9 are empty: take the order-9
    block (6656) and the order-8 block (6400) first."""
    m = boot()
    assert pa.alloc_pages(m, GFP_KERNEL, 9).pfn == 6656
    assert pa.alloc_pages(m, GFP_KERNEL, 8).pfn == 6400
    assert pa.buddyinfo(m)["Normal"] == [1] * 8 + [0, 0, 217]
    page = pa.alloc_pages(m, GFP_KERNEL, 8)
    assert page is not None
    assert pa.buddyinfo(m)["Normal"] == [1] * 8 + [1, 1, 216]
    # the list head after boot is the highest block; the caller gets its lowest part
    assert page.pfn == 229376 - 1024
    assert m.mem_map.private[page.pfn + 512] == 9 and m.mem_map.private[page.pfn + 256] == 8


def _one_by_one(config):
    """Boot, then redo free_all_bootmem frame by frame with __free_pages (through the
    bare buddy core: the model's boot does not fill the per-CPU lists, spec/buddy.md)."""
    m = boot(config)
    m.pcp = False
    free = [p for p in range(m.nr_pages) if not m.mem_map.flags[p] & PG_reserved]
    # put every free frame back to "reserved, referenced" and rebuild lists
    for zone in m.zones:
        for area in zone.free_area:
            area.head, area.nr_free = -1, 0
        zone.free_pages = 0
    for p in free:
        m.mem_map.flags[p] &= ~0x02
        m.mem_map.private[p] = 0
        m.mem_map.lru_next[p] = m.mem_map.lru_prev[p] = -1
        m.mem_map.count[p] = 1
        m.page_owner[p] = 0
    for p in free:
        pa.__free_pages(m, m.mem_map + p, 0)
    return m


@pytest.mark.parametrize("config", [
    MachineConfig(phys_pages=300, highmem_pages=77, iomem_pages=5, reserved=((10, 13),),
                  max_dma_pfn=100),
    MachineConfig(phys_pages=4096 + 1500, highmem_pages=3000, reserved=((0, 1), (2000, 2100))),
    MachineConfig(phys_pages=64, highmem_pages=0, reserved=()),
])
def test_bulk_boot_equals_frame_by_frame_frees(config):
    bulk, slow = boot(config), _one_by_one(config)
    for zone_b, zone_s in zip(bulk.zones, slow.zones):
        for area_b, area_s in zip(zone_b.free_area, zone_s.free_area):
            assert pa.free_list(bulk.mem_map, area_b) == pa.free_list(slow.mem_map, area_s)
            assert area_b.nr_free == area_s.nr_free
        assert zone_b.free_pages == zone_s.free_pages
    assert bytes(bulk.mem_map.flags) == bytes(slow.mem_map.flags)
    assert bulk.mem_map.private == slow.mem_map.private
    assert bulk.mem_map.count == slow.mem_map.count
    assert not any(check_all(bulk).values())


def test_translations_round_trip():
    m = boot()
    page = pfn_to_page(m, 5000)
    assert page - m.mem_map == 5000 == page_to_pfn(page)
    vaddr = page_address(m, page)
    assert vaddr == 0xC0000000 + 5000 * 4096
    assert __pa(m, vaddr) == 5000 << 12 and __va(m, 5000 << 12) == vaddr
    assert virt_to_page(m, vaddr + 123) == page
    # highmem frames have no permanent address
    assert page_address(m, pfn_to_page(m, 229376 + 5)) is None


def test_four_gib_machine_boots():
    m = boot(phys_pages=229376, highmem_pages=1048576 - 229376)
    assert m.nr_pages == 1 << 20
    # (1M + 1) struct pages of 32 bytes = 32 MiB + 32 bytes: 8193 frames of mem_map from
    # the 16 MiB goal (mm/page_alloc.c alloc_node_mem_map, mm/bootmem.c)
    assert m.mem_map_pfns == range(4096, 4096 + 8193)
    assert not any(check_all(m).values())


@pytest.mark.parametrize("kwargs, field", [
    ({"phys_pages": 229377}, "phys_pages"),
    ({"phys_pages": 0}, "phys_pages"),
    ({"page_size": 8192}, "page_size"),
    ({"profile": "linux-9"}, "profile"),
    ({"highmem_pages": -1}, "highmem_pages"),
    ({"phys_pages": 229376, "highmem_pages": 900000}, "highmem_pages"),
    ({"phys_pages": 64, "reserved": ((60, 70),)}, "reserved"),
    ({"profile": "linux-6.x-x86_64", "highmem_pages": 8}, "highmem_pages"),
    ({"phys_pages": 4, "highmem_pages": 100000}, "phys_pages"),
])
def test_bad_configs_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        boot(**kwargs)
    assert err.value.field == field


def test_x86_64_profile_zones():
    m = boot(profile="linux-6.x-x86_64", phys_pages=(5 << 30) >> 12, highmem_pages=0)
    assert [(z.name, z.zone_start_pfn, z.spanned_pages) for z in m.zones] == [
        ("DMA", 0, 4096), ("DMA32", 4096, (1 << 20) - 4096), ("Normal", 1 << 20, 1 << 18)]
    # a plain request prefers Normal, then DMA32, then DMA
    assert [z.name for z in m.zonelists[1]] == ["Normal", "DMA32", "DMA"]


def test_mem_map_goal_falls_back_to_pfn_0():
    """mm/bootmem.c __alloc_bootmem_core (2.6.12): when nothing fits from the goal up,
    the scan restarts at pfn 0 (`preferred = offset; goto restart_scan`)."""
    # everything from 16 MiB to the end of low memory reserved: 8192 low frames, so
    # (8192 + 1) * 32 bytes = 65 frames (ceil(262176 / 4096)), first fit after pfn 0
    m = boot(phys_pages=8192, highmem_pages=0, reserved=((0, 1), (4096, 8192)))
    assert m.mem_map_pfns == range(1, 1 + 65)
    # a goal at or above the end of low memory is ignored (`goal >> PAGE_SHIFT <
    # node_low_pfn` fails): 4096 frames, (4096 + 1) * 32 bytes = 33 frames from pfn 1
    m = boot(phys_pages=4096, highmem_pages=0)
    assert m.mem_map_pfns == range(1, 1 + 33)
    # a reserved range in the way at the goal: the first fit above it
    m = boot(phys_pages=8192, highmem_pages=0, reserved=((0, 1), (4096, 4100)))
    assert m.mem_map_pfns == range(4100, 4100 + 65)


def test_mem_map_rule_per_profile_and_boot_key():
    # the seed's arch/um rule (init_maps: total_pages * 32 bytes, goal 0): 2048 frames
    # after pfn 0 on the seed machine
    m = boot(mem_map_alloc="init_maps")
    assert m.mem_map_pfns == range(1, 1 + 262144 * 32 // 4096)
    assert pa.buddyinfo(m)["DMA"] == [1] * 11        # 2049..4095 = 1 + 2 + ... + 1024
    # linux-6.x-x86_64 keeps the init_maps rule: 64-byte struct pages, goal 0
    m = boot(profile="linux-6.x-x86_64", phys_pages=65536, highmem_pages=0)
    assert m.mem_map_pfns == range(1, 1 + 65536 * 64 // 4096)
    with pytest.raises(ConfigError) as err:
        boot(mem_map_alloc="vmemmap")
    assert err.value.field == "mem_map_alloc"
