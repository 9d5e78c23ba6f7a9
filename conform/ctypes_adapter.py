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


class ABIError(Exception):
    """The library does not implement the ABI (missing symbol, wrong version)."""


def _symbols(lib) -> set[str]:
    names = set()
    for name in (*REQUIRED, "kms_abi_version", "kms_free_counts", "kms_kmalloc",
                 "kms_kfree", "kms_ksize", "kms_vmalloc_init", "kms_vmalloc", "kms_vfree",
                 "kms_vmalloc_to_pfn"):
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
