"""Buddy index arithmetic as small pure functions with contracts.

The same arithmetic as Linux 2.6.12 mm/page_alloc.c (__free_pages_bulk, expand), but
written with `//`, `%` and `*` so that CrossHair can reason about it symbolically (it
concretises `^`, `|` and shifts; DESIGN.md section 4). The contracts (PEP 316
docstrings) are checked by `crosshair check` in tests/test_crosshair.py; the bitwise
forms the kernel uses are proved equal for all indices by Z3 in proofs/lemmas.py.
"""

from __future__ import annotations

MAX_ORDER = 11          # include/linux/mmzone.h (2.6.12)
INDEX_LIMIT = 1 << 20   # page indices of a 4 GiB machine


def buddy_index(page_idx: int, order: int) -> int:
    """The buddy of an aligned block: page_idx ^ (1 << order).

    pre: 0 <= order < MAX_ORDER
    pre: 0 <= page_idx < INDEX_LIMIT
    pre: page_idx % 2 ** order == 0
    post: 0 <= __return__ < INDEX_LIMIT
    post: __return__ != page_idx
    post: __return__ % 2 ** order == 0
    post: __return__ // 2 ** (order + 1) == page_idx // 2 ** (order + 1)
    """
    size = 2 ** order
    if (page_idx // size) % 2 == 0:
        return page_idx + size
    return page_idx - size


def combined_index(page_idx: int, order: int) -> int:
    """The head of the merged block: page_idx & ~(1 << order).

    pre: 0 <= order < MAX_ORDER
    pre: 0 <= page_idx < INDEX_LIMIT
    pre: page_idx % 2 ** order == 0
    post: __return__ % 2 ** (order + 1) == 0
    post: __return__ in (page_idx, buddy_index(page_idx, order))
    post: __return__ <= page_idx
    """
    return page_idx - page_idx % 2 ** (order + 1)


def expand_parts(page_idx: int, low: int, high: int) -> list[tuple[int, int]]:
    """expand(): the (index, order) of each upper half put back on the free lists.

    pre: 0 <= low <= high < MAX_ORDER
    pre: 0 <= page_idx < INDEX_LIMIT
    pre: page_idx % 2 ** high == 0
    post: len(__return__) == high - low
    post: all(i % 2 ** o == 0 for i, o in __return__)
    post: sum(2 ** o for _, o in __return__) + 2 ** low == 2 ** high
    post: all(page_idx + 2 ** low <= i and i + 2 ** o <= page_idx + 2 ** high for i, o in __return__)
    post: all(a + 2 ** oa <= b or b + 2 ** ob <= a for (a, oa) in __return__ for (b, ob) in __return__ if a != b)
    """
    parts = []
    while high > low:
        high -= 1
        parts.append((page_idx + 2 ** high, high))
    return parts


def get_order(size: int, page_size: int = 4096) -> int:
    """The smallest order whose block holds `size` bytes (include/asm-generic get_order).

    pre: 1 <= size <= page_size * 2 ** (MAX_ORDER - 1)
    pre: page_size in (4096,)
    post: 0 <= __return__ < MAX_ORDER
    post: page_size * 2 ** __return__ >= size
    post: __return__ == 0 or page_size * 2 ** (__return__ - 1) < size
    """
    order = 0
    while page_size * 2 ** order < size:
        order += 1
    return order
