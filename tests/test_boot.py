"""Boot: zones, mem_map placement, and free_all_bootmem equivalence."""

import pytest

from kmemspec.model import ConfigError, MachineConfig, boot
from kmemspec.model import page_alloc as pa
from kmemspec.model.addr import __pa, __va, page_address, page_to_pfn, pfn_to_page, virt_to_page
from kmemspec.model.gfp import GFP_KERNEL
from kmemspec.model.mem_map import PG_buddy, PG_reserved
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
    # every other frame is free: 262144 - pfn 0 - 2049 frames of mem_map, on the buddy
    # lists (zone->free_pages, what nr_free_pages sums) or on CPU 0's hot lists
    hot = {z.name: list(z.pageset[0].pcp[0].list) for z in m.zones}
    assert pa.nr_free_pages(m) + sum(map(len, hot.values())) == 262144 - 1 - 2049
    assert pa.buddyinfo(m) == SEED_BUDDYINFO
    assert hot == SEED_HOT
    assert all(not z.pageset[0].pcp[1].list for z in m.zones)


# After a 2.6.12 boot of the seed machine, by hand from torvalds/linux 1da177e4:
# mm/bootmem.c free_all_bootmem_core walks the bootmem bitmap one 32-frame word
# (BITS_PER_LONG on i386) at a time from pfn 0: a word with every frame free goes to
# __free_pages(page, 5) -> __free_pages_ok -> the buddy lists; a word with some free
# frames frees each of them by __free_page -> free_hot_page -> free_hot_cold_page on
# CPU 0, which first (if count >= high) moves `batch` frames from the list's tail
# (free_pages_bulk takes list->prev) to the buddy lists, then adds the frame at the
# head. Then arch/i386/mm/init.c set_highmem_pages_init frees every highmem frame by
# __free_page, increasing pfn. Hot lists: DMA batch 1 high 6, Normal 16/96, HighMem
# 8/48 (tests/test_zones.py).
#   DMA: word 0 = pfns 0..31, pfn 0 reserved: singles 1..31. The list reaches 6 at
#   pfn 6, then each free drains one frame from the tail first: 25 drains send 1..25
#   to the buddy lists in that order; the list is 31..26. 1..25 freed one by one leave
#   1 (order 0), 2 (1), 4 (2), 8 (3), 16 (3), 24 (1). Words 1..127 are whole: order-5
#   blocks 32..4095 merge to 32 (5), 64 (6), 128 (7), 256 (8), 512 (9) and 1024,
#   2048, 3072 (10).
#   Normal: mem_map 4096..6144 fills words 128..191 and pfn 6144 of word 192, whose
#   6145..6175 (31 < high 96: no drain) go on the hot list, 6175 at the head. Words
#   193..7167 are whole: 6176 (5), 6208 (6), 6272 (7), 6400 (8), 6656 (9) and
#   (229376 - 7168) / 1024 = 217 order-10 blocks.
#   HighMem: 32768 singles from 229376. The list reaches 48 after 48 frees and is
#   drained by 8 before the 49th, 57th, ... free; 32768 = 48 + 8 * 4090, so it ends
#   at 48 frames, 262096..262143 (head 262143), and the buddy lists got 229376..262095
#   one by one: 32720 = 31 * 1024 + 512 + 256 + 128 + 64 + 16 frames, blocks of
#   orders 10 (x31), 9, 8, 7, 6, 4.
SEED_BUDDYINFO = {"DMA": [1, 2, 1, 2, 0, 1, 1, 1, 1, 1, 3],
                  "Normal": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 217],
                  "HighMem": [0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 31]}
SEED_HOT = {"DMA": list(range(31, 25, -1)), "Normal": list(range(6175, 6144, -1)),
            "HighMem": list(range(262143, 262095, -1))}


def test_seed_256_frames_from_a_1024_block():
    """The seed: 256 frames from a 1024 block leave one 512 and one 256 block free.

    After boot, ZONE_NORMAL holds one free block of each order 5..9 below pfn 7168 (the
    tail end of mem_map at 4096..6144), so an order-8 request would take the free order-8
    block 6400. The seed's split happens once orders 8 and 9 are empty: take the order-9
    block (6656) and the order-8 block (6400) first."""
    m = boot()
    assert pa.alloc_pages(m, GFP_KERNEL, 9).pfn == 6656
    assert pa.alloc_pages(m, GFP_KERNEL, 8).pfn == 6400
    # orders 0..4 of Normal are empty after a 2.6.12 boot (SEED_BUDDYINFO: the partial
    # word 6144..6175 waits on the hot list), orders 5..7 keep 6176, 6208, 6272
    assert pa.buddyinfo(m)["Normal"] == [0] * 5 + [1, 1, 1, 0, 0, 217]
    page = pa.alloc_pages(m, GFP_KERNEL, 8)
    assert page is not None
    assert pa.buddyinfo(m)["Normal"] == [0] * 5 + [1, 1, 1, 1, 1, 216]
    # the list head after boot is the highest block; the caller gets its lowest part
    assert page.pfn == 229376 - 1024
    assert m.mem_map.private[page.pfn + 512] == 9 and m.mem_map.private[page.pfn + 256] == 8


def _one_by_one(config):
    """Boot, then redo free_all_bootmem frame by frame with __free_pages (through the
    bare buddy core: this checks free_bootmem_range, the boot of page_policy "buddy")."""
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


# page_policy "buddy": this test is about the buddy core (free_bootmem_range against
# __free_pages frame by frame); the 2.6.12 boot is checked by the tests below it
@pytest.mark.parametrize("config", [
    MachineConfig(phys_pages=300, highmem_pages=77, iomem_pages=5, reserved=((10, 13),),
                  max_dma_pfn=100, page_policy="buddy"),
    MachineConfig(phys_pages=4096 + 1500, highmem_pages=3000, reserved=((0, 1), (2000, 2100)),
                  page_policy="buddy"),
    MachineConfig(phys_pages=64, highmem_pages=0, reserved=(), page_policy="buddy"),
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


def _kernel_boot_frees(config):
    """Boot, put every frame boot freed back to "allocated", then free them the way
    2.6.12 does, written from torvalds/linux 1da177e4 (not from model/boot.py) with the
    model's __free_pages: mm/bootmem.c free_all_bootmem_core (a BITS_PER_LONG word with
    every frame free: __free_pages(page, ffs(BITS_PER_LONG) - 1); else each free frame
    by __free_page), then arch/i386/mm/init.c set_highmem_pages_init (each highmem
    frame by __free_page, increasing pfn)."""
    m = boot(config)
    mm = m.mem_map
    freed = [p for p in range(m.nr_pages) if not mm.flags[p] & PG_reserved]
    on_lists = sum(z.free_pages for z in m.zones) + len(m.pcp_pages)
    assert on_lists == len(freed)          # boot allocated nothing it freed
    for zone in m.zones:
        for area in zone.free_area:
            area.head, area.nr_free = -1, 0
        zone.free_pages = 0
        for pcp in zone.pageset[0].pcp:
            pcp.list.clear()
            pcp.count = 0
    m.pcp_pages.clear()
    for p in freed:
        mm.flags[p] &= ~PG_buddy
        mm.private[p] = 0
        mm.lru_next[p] = mm.lru_prev[p] = -1
    bits = m.profile.VIRT_BITS                       # BITS_PER_LONG
    order = bits.bit_length() - 1                    # ffs(BITS_PER_LONG) - 1
    is_free = set(freed)
    low = m.config.phys_pages

    def free(p, o):
        mm.count[p] = 1
        m.page_owner[p] = o
        pa.__free_pages(m, mm + p, o)

    for word in range(0, low, bits):
        frames = [p for p in range(word, min(word + bits, low)) if p in is_free]
        if len(frames) == bits:
            free(word, order)
        else:
            for p in frames:
                free(p, 0)
    for p in freed:
        if p >= low:
            free(p, 0)
    return m


@pytest.mark.parametrize("config", [
    MachineConfig(),                                         # the seed machine
    MachineConfig(phys_pages=4096, highmem_pages=0),         # 16 MiB
    MachineConfig(phys_pages=4096 + 1500, highmem_pages=3000, reserved=((0, 1), (2000, 2100))),
    MachineConfig(phys_pages=8192 + 77, highmem_pages=61, iomem_pages=3,
                  reserved=((0, 1), (40, 45), (5000, 5003)), cpus=2),
    MachineConfig(profile="linux-6.x-x86_64", phys_pages=4096 + 3000, highmem_pages=0,
                  reserved=((0, 1), (100, 101))),            # 64-frame words, order 6
])
def test_boot_equals_the_kernel_free_loop(config):
    """The 2.6.12 boot (whole runs by free_bootmem_range, highmem in closed form) leaves
    the state of the kernel's frame-by-frame loop: free lists in order, hot lists in
    order, counts, flags; and every invariant holds after it."""
    fast, slow = boot(config), _kernel_boot_frees(config)
    for zone_f, zone_s in zip(fast.zones, slow.zones):
        for area_f, area_s in zip(zone_f.free_area, zone_s.free_area):
            assert pa.free_list(fast.mem_map, area_f) == pa.free_list(slow.mem_map, area_s)
            assert area_f.nr_free == area_s.nr_free
        assert zone_f.free_pages == zone_s.free_pages
        for cpu in range(config.cpus):
            for pcp_f, pcp_s in zip(zone_f.pageset[cpu].pcp, zone_s.pageset[cpu].pcp):
                assert list(pcp_f.list) == list(pcp_s.list) and pcp_f.count == pcp_s.count
    assert fast.pcp_pages == slow.pcp_pages
    assert bytes(fast.mem_map.flags) == bytes(slow.mem_map.flags)
    assert fast.mem_map.private == slow.mem_map.private
    assert fast.mem_map.count == slow.mem_map.count
    assert not any(check_all(fast).values())


def test_boot_hot_list_length_against_a_count_loop():
    """free_hot_cold_page's count rule (2.6.12: if count >= high, count -= batch; then
    count++), run n times from 0, against the closed form boot uses for highmem."""
    from kmemspec.model.boot import boot_hot_list_length
    for high, batch in ((6, 1), (48, 8), (96, 16), (12, 2)):
        count = 0
        for n in range(1, 400):
            if count >= high:
                count -= batch
            count += 1
            assert boot_hot_list_length(n, high, batch) == count, (n, high, batch)


def _sixteen_mib_problems(m):
    """What differs from a hand-derived 2.6.12 boot of a 16 MiB machine (all ZONE_DMA:
    batch 4096/1024/4 = 1, hot high 6), torvalds/linux 1da177e4:
      mem_map: (4096 + 1) * 32 bytes = 32.008 frames -> 33, goal 16 MiB is not below
      max_low_pfn so the scan starts at 0: pfns 1..33 (pfn 0 is reserved).
      Word 0 (0..31) has no free frame: skipped. Word 1 (32..63): 34..63 freed singly
      by free_hot_cold_page; the list reaches 6 at pfn 39, then each free first moves
      one frame from the TAIL to the buddy lists: 24 drains, 34..57 in that order. The
      hot list ends 63, 62, ..., 58. 34..57 one by one: 34 (order 1), 36 (2), 40 (3),
      48 (3), 56 (1); order 1 list 56 then 34, order 3 list 48 then 40.
      Words 2..127 whole, order-5 frees: 64 (6), 128 (7), 256 (8), 512 (9), 1024,
      2048, 3072 (10; list 3072, 2048, 1024)."""
    dma = m.zones[0]
    mm = m.mem_map
    got = {
        "mem_map": (m.mem_map_pfns.start, m.mem_map_pfns.stop),
        "buddyinfo": pa.buddyinfo(m)["DMA"],
        "hot": list(dma.pageset[0].pcp[0].list),
        "cold": list(dma.pageset[0].pcp[1].list),
        "order1": pa.free_list(mm, dma.free_area[1]),
        "order3": pa.free_list(mm, dma.free_area[3]),
        "order10": pa.free_list(mm, dma.free_area[10]),
        "free_pages": dma.free_pages,
    }
    want = {
        "mem_map": (1, 34),
        "buddyinfo": [0, 2, 1, 2, 0, 0, 1, 1, 1, 1, 3],
        "hot": [63, 62, 61, 60, 59, 58],
        "cold": [],
        "order1": [56, 34],
        "order3": [48, 40],
        "order10": [3072, 2048, 1024],
        "free_pages": 4096 - 34 - 6,
    }
    return {k: (got[k], want[k]) for k in want if got[k] != want[k]}


def test_sixteen_mib_machine_by_hand():
    assert _sixteen_mib_problems(boot(phys_pages=4096, highmem_pages=0)) == {}


def test_boot_checks_catch_the_old_boot_and_a_drain_from_the_head(monkeypatch):
    """The hand-derived expectations fail on the boot the model had before (every
    free frame straight to the buddy lists, hot lists empty) and on a hot list that
    drains from its head instead of its tail."""
    import sys
    boot_mod = sys.modules["kmemspec.model.boot"]

    def old_low(machine, ranges):
        for lo, hi in ranges:
            for zone in machine.zones:
                a, b = max(lo, zone.zone_start_pfn), min(hi, zone.zone_end_pfn)
                if a < b:
                    boot_mod.free_bootmem_range(machine, zone, a, b)

    def old_high(machine, zone):
        boot_mod.free_bootmem_range(machine, zone, zone.zone_start_pfn, zone.zone_end_pfn)

    with monkeypatch.context() as mp:
        mp.setattr(boot_mod, "free_all_bootmem_core", old_low)
        mp.setattr(boot_mod, "set_highmem_pages_init", old_high)
        problems = _sixteen_mib_problems(boot(phys_pages=4096, highmem_pages=0))
        assert {"hot", "buddyinfo", "order1"} <= set(problems)
        seed = boot()
        assert pa.buddyinfo(seed) != SEED_BUDDYINFO
        assert {z.name: list(z.pageset[0].pcp[0].list) for z in seed.zones} != SEED_HOT

    def drain_head(machine, zone, pcp, count):
        n = 0
        while pcp.list and n < count:
            pfn = pcp.list.popleft()
            del machine.pcp_pages[pfn]
            pa.__free_pages_bulk(machine.mem_map, zone, pfn, 0, machine.profile.MAX_ORDER)
            n += 1
        return n

    with monkeypatch.context() as mp:
        mp.setattr(pa, "_pcp_free_bulk", drain_head)
        problems = _sixteen_mib_problems(boot(phys_pages=4096, highmem_pages=0))
        # head drains: the list keeps 34..38 and the latest frame, 63 at the head
        assert problems["hot"] == ([63, 38, 37, 36, 35, 34], [63, 62, 61, 60, 59, 58])
        seed = boot()
        assert list(seed.zones[0].pageset[0].pcp[0].list) != SEED_HOT["DMA"]


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
    # 2.6.12 boot (mm/bootmem.c free_all_bootmem_core): word 64 (2048..2079) holds
    # mem_map's last frame, so 2049..2079 go one by one to CPU 0's DMA hot list (batch
    # 1, high 6): 2049..2073 drained in order -- 2049 o0, 2050 o1, 2052 o2, 2056 o3,
    # 2064 o3, 2072 o1 -- and 2079..2074 stay listed; words 65..127 are whole: 2080 o5,
    # 2112 o6, 2176 o7, 2304 o8, 2560 o9, 3072 o10
    assert pa.buddyinfo(m)["DMA"] == [1, 2, 1, 2, 0, 1, 1, 1, 1, 1, 1]
    assert list(m.zones[0].pageset[0].pcp[0].list) == list(range(2079, 2073, -1))
    # linux-6.x-x86_64 keeps the init_maps rule: 64-byte struct pages, goal 0
    m = boot(profile="linux-6.x-x86_64", phys_pages=65536, highmem_pages=0)
    assert m.mem_map_pfns == range(1, 1 + 65536 * 64 // 4096)
    with pytest.raises(ConfigError) as err:
        boot(mem_map_alloc="vmemmap")
    assert err.value.field == "mem_map_alloc"
