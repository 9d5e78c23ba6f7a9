"""An adapter over a shared library implementing the C ABI of conform/kms.h.

`CtypesAdapter(path)` loads the library (in the child process, when isolated) and
exposes the parts whose symbols it finds. Return conventions are kms.h's: a pfn or -1
for NULL; 0 for success of init/free; addresses 0 for NULL.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["CtypesAdapter", "check_library", "HEADER_PATH", "ABIError"]

HEADER_PATH = os.path.join(os.path.dirname(__file__), "kms.h")
ABI_VERSION = 1
REQUIRED = ("kms_init", "kms_alloc_pages", "kms_free_pages")
# a generous upper bound on the orders an implementation may report
_COUNTS_CAPACITY = 64
_CACHE = ("kms_kmem_cache_create", "kms_kmem_cache_alloc", "kms_kmem_cache_free",
          "kms_kmem_cache_destroy")
_HIGHMEM = ("kms_kmap", "kms_kunmap")
# slabs per cache slab_layout reports at most; LAST_PKMAP slots (2.6 i386)
_LAYOUT_CAPACITY = 4096
_PKMAP_CAPACITY = 1024


class ABIError(Exception):
    """The library does not implement the ABI (missing symbol, wrong version)."""


def _symbols(lib) -> set[str]:
    names = set()
    for name in (*REQUIRED, "kms_abi_version", "kms_free_counts", "kms_kmalloc",
                 "kms_kfree", "kms_ksize", "kms_vmalloc_init", "kms_vmalloc", "kms_vfree",
                 "kms_vmalloc_to_pfn", *_CACHE, "kms_slab_layout", *_HIGHMEM,
                 "kms_pkmap_count", "kms_supported_pages", "kms_detects_misuse",
                 "kms_page_size", "kms_block_order"):
        try:
            getattr(lib, name)
        except AttributeError:
            continue
        names.add(name)
    return names


def check_library(path: str) -> set[str]:
    """Load the library in a throw-away child and list its kms symbols (ABIError if unusable).

    Loading runs the library's constructors; a child keeps a crashing one away from us.
    """
    import multiprocessing
    ctx = multiprocessing.get_context("fork" if "fork" in
                                      multiprocessing.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_probe, args=(child, path), daemon=True)
    proc.start()
    child.close()
    if not parent.poll(10):
        proc.kill()
        proc.join()
        raise ABIError(f"{path}: loading the library hung (> 10 s)")
    try:
        status, value = parent.recv()
    except EOFError:
        proc.join()
        raise ABIError(f"{path}: loading the library crashed (exit {proc.exitcode})") from None
    proc.join()
    if status != "ok":
        raise ABIError(value)
    return set(value)


def _probe(conn, path):
    try:
        lib = ctypes.CDLL(path)
        names = _symbols(lib)
        missing = [n for n in REQUIRED if n not in names]
        if missing:
            conn.send(("error", f"{path}: missing required symbol(s) {', '.join(missing)} "
                                f"(see {HEADER_PATH})"))
            return
        if "kms_abi_version" in names:
            lib.kms_abi_version.restype = ctypes.c_int
            version = lib.kms_abi_version()
            if version != ABI_VERSION:
                conn.send(("error", f"{path}: ABI version {version}, this kmemspec "
                                    f"speaks {ABI_VERSION}"))
                return
        conn.send(("ok", sorted(names)))
    except OSError as exc:
        conn.send(("error", f"{path}: cannot load ({exc})"))


class CtypesAdapter:
    """A page allocator (and optional object/vmalloc parts) from a kms.h library."""

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path)
        lib = ctypes.CDLL(path)
        self.lib = lib
        names = _symbols(lib)
        lib.kms_init.argtypes = [ctypes.c_ulong, ctypes.c_uint]
        lib.kms_init.restype = ctypes.c_int
        lib.kms_alloc_pages.argtypes = [ctypes.c_uint]
        lib.kms_alloc_pages.restype = ctypes.c_long
        lib.kms_free_pages.argtypes = [ctypes.c_ulong, ctypes.c_uint]
        lib.kms_free_pages.restype = ctypes.c_int
        if "kms_free_counts" in names:
            lib.kms_free_counts.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_uint]
            lib.kms_free_counts.restype = ctypes.c_int
        else:
            self.free_counts = None
        signatures = {
            "kms_kmalloc": ([ctypes.c_ulong], ctypes.c_long),
            "kms_kfree": ([ctypes.c_ulong], ctypes.c_int),
            "kms_ksize": ([ctypes.c_ulong], ctypes.c_ulong),
            "kms_vmalloc_init": ([ctypes.c_ulong], ctypes.c_int),
            "kms_vmalloc": ([ctypes.c_ulong], ctypes.c_long),
            "kms_vfree": ([ctypes.c_ulong], ctypes.c_int),
            "kms_vmalloc_to_pfn": ([ctypes.c_ulong], ctypes.c_long),
            "kms_kmem_cache_create": ([ctypes.c_char_p, ctypes.c_ulong, ctypes.c_ulong,
                                       ctypes.c_ulong], ctypes.c_long),
            "kms_kmem_cache_alloc": ([ctypes.c_long], ctypes.c_long),
            "kms_kmem_cache_free": ([ctypes.c_long, ctypes.c_ulong], ctypes.c_int),
            "kms_kmem_cache_destroy": ([ctypes.c_long], ctypes.c_int),
            "kms_slab_layout": ([ctypes.c_long, ctypes.POINTER(ctypes.c_long), ctypes.c_uint],
                                ctypes.c_int),
            "kms_kmap": ([ctypes.c_ulong], ctypes.c_long),
            "kms_kunmap": ([ctypes.c_ulong], ctypes.c_int),
            "kms_pkmap_count": ([ctypes.POINTER(ctypes.c_int), ctypes.c_uint], ctypes.c_int),
            "kms_supported_pages": ([ctypes.c_ulong], ctypes.c_int),
            "kms_detects_misuse": ([], ctypes.c_int),
            "kms_page_size": ([], ctypes.c_ulong),
            "kms_block_order": ([ctypes.c_ulong], ctypes.c_int),
        }
        for symbol, (argtypes, restype) in signatures.items():
            if symbol in names:
                getattr(lib, symbol).argtypes = argtypes
                getattr(lib, symbol).restype = restype
        # a part is offered only when all its symbols are there
        if not {"kms_kmalloc", "kms_kfree"} <= names:
            self.kmalloc = self.kfree = None
        if "kms_ksize" not in names:
            self.ksize = None
        if not {"kms_vmalloc_init", "kms_vmalloc", "kms_vfree"} <= names:
            self.vmalloc_init = self.vmalloc = self.vfree = None
        if "kms_vmalloc_to_pfn" not in names:
            self.vmalloc_to_pfn = None
        if not set(_CACHE) <= names:
            self.kmem_cache_create = self.kmem_cache_alloc = None
            self.kmem_cache_free = self.kmem_cache_destroy = None
        if "kms_slab_layout" not in names:
            self.slab_layout = None
        if not set(_HIGHMEM) <= names:
            self.kmap = self.kunmap = None
        if "kms_pkmap_count" not in names:
            self.pkmap_count = None
        if "kms_supported_pages" not in names:
            self.supported_pages = None
        if "kms_block_order" not in names:
            self.block_order = None
        # kms_page_size: the bytes of one unit (a "frame"); 4096 when absent
        if "kms_page_size" in names:
            self.page_size = int(lib.kms_page_size())
        # kms_detects_misuse: the misuse vectors are run only on a library that says so
        self.detects_misuse = ("kms_detects_misuse" in names
                               and lib.kms_detects_misuse() != 0)

    def supported_pages(self, nr_pages: int) -> bool:
        return self.lib.kms_supported_pages(nr_pages) != 0

    def block_order(self, pfn: int) -> int | None:
        order = self.lib.kms_block_order(pfn)
        return None if order == -1 else order

    def init(self, nr_pages: int, max_order: int) -> None:
        status = self.lib.kms_init(nr_pages, max_order)
        if status != 0:
            raise RuntimeError(f"kms_init({nr_pages}, {max_order}) returned {status}")

    def alloc_pages(self, order: int) -> int | None:
        pfn = self.lib.kms_alloc_pages(order)
        return None if pfn == -1 else pfn

    def free_pages(self, pfn: int, order: int) -> None:
        status = self.lib.kms_free_pages(pfn, order)
        if status != 0:
            raise RuntimeError(f"kms_free_pages({pfn}, {order}) returned {status}")

    def free_counts(self) -> list[int]:
        buf = (ctypes.c_ulong * _COUNTS_CAPACITY)()
        n = self.lib.kms_free_counts(buf, _COUNTS_CAPACITY)
        if n < 0:
            raise RuntimeError(f"kms_free_counts returned {n}")
        return [int(buf[i]) for i in range(min(n, _COUNTS_CAPACITY))]

    def kmalloc(self, size: int) -> int | None:
        addr = self.lib.kms_kmalloc(size)
        return None if addr == -1 else addr

    def kfree(self, addr: int) -> None:
        status = self.lib.kms_kfree(addr)
        if status != 0:
            raise RuntimeError(f"kms_kfree({addr}) returned {status}")

    def ksize(self, addr: int) -> int:
        return self.lib.kms_ksize(addr)

    def vmalloc_init(self, vsize: int) -> None:
        status = self.lib.kms_vmalloc_init(vsize)
        if status != 0:
            raise RuntimeError(f"kms_vmalloc_init({vsize}) returned {status}")

    def vmalloc(self, size: int) -> int | None:
        addr = self.lib.kms_vmalloc(size)
        return None if addr == -1 else addr

    def vfree(self, addr: int) -> None:
        status = self.lib.kms_vfree(addr)
        if status != 0:
            raise RuntimeError(f"kms_vfree({addr}) returned {status}")

    def vmalloc_to_pfn(self, addr: int) -> int | None:
        pfn = self.lib.kms_vmalloc_to_pfn(addr)
        return None if pfn == -1 else pfn

    def kmem_cache_create(self, name: str, size: int, align: int, flags: int) -> int | None:
        handle = self.lib.kms_kmem_cache_create(name.encode(), size, align, flags)
        return None if handle == -1 else handle

    def kmem_cache_alloc(self, handle: int) -> int | None:
        addr = self.lib.kms_kmem_cache_alloc(handle)
        return None if addr == -1 else addr

    def kmem_cache_free(self, handle: int, addr: int) -> None:
        status = self.lib.kms_kmem_cache_free(handle, addr)
        if status != 0:
            raise RuntimeError(f"kms_kmem_cache_free({handle}, {addr}) returned {status}")

    def kmem_cache_destroy(self, handle: int) -> None:
        status = self.lib.kms_kmem_cache_destroy(handle)
        if status != 0:
            raise RuntimeError(f"kms_kmem_cache_destroy({handle}) returned {status}")

    def slab_layout(self, handle: int) -> list[list[int]]:
        buf = (ctypes.c_long * (5 * _LAYOUT_CAPACITY))()
        n = self.lib.kms_slab_layout(handle, buf, _LAYOUT_CAPACITY)
        if n < 0:
            raise RuntimeError(f"kms_slab_layout({handle}) returned {n}")
        return [[int(buf[5 * i + j]) for j in range(5)] for i in range(min(n, _LAYOUT_CAPACITY))]

    def kmap(self, pfn: int) -> int | None:
        vaddr = self.lib.kms_kmap(pfn)
        return None if vaddr == -1 else vaddr

    def kunmap(self, pfn: int) -> None:
        status = self.lib.kms_kunmap(pfn)
        if status != 0:
            raise RuntimeError(f"kms_kunmap({pfn}) returned {status}")

    def pkmap_count(self) -> list[int]:
        buf = (ctypes.c_int * _PKMAP_CAPACITY)()
        n = self.lib.kms_pkmap_count(buf, _PKMAP_CAPACITY)
        if n < 0:
            raise RuntimeError(f"kms_pkmap_count returned {n}")
        return [int(buf[i]) for i in range(min(n, _PKMAP_CAPACITY))]
