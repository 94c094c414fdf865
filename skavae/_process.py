"""The process around a fit: torch's thread count, SIGTERM as Ctrl-C and the
allocator's mmap threshold."""

from __future__ import annotations

import contextlib
import signal
import threading

import torch


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during training (handled like Ctrl-C)."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Raise :class:`Terminated` on SIGTERM (main thread only), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not allowed here (an embedded interpreter)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def torch_threads(n_threads):
    """Limit torch's intra-op threads for the duration of a call.

    Every fit and inference call passes here, so this is also where the
    process's memory allocator is set up once (:func:`fix_mmap_threshold`).
    """
    fix_mmap_threshold()
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


#: glibc's M_MMAP_THRESHOLD (malloc.h) and the value skavae fixes it at.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20
_malloc_state = {"done": False, "fixed": False}


def fix_mmap_threshold():
    """Fix glibc's mmap threshold at 1 MiB for this process, once.

    glibc serves an allocation above its *mmap threshold* with its own
    ``mmap`` and returns it to the system when freed; below, from the heap,
    which keeps freed memory for reuse. The threshold starts at 128 KiB and
    rises to the size of every mmap-served block freed, up to 32 MiB - so
    after the first few batches the multi-MiB batches and activations of a
    fit come from the heap, where they fragment it and stay resident:
    encoding 20 000 subtomograms of 32³ from a memory map held 650 MiB of
    anonymous memory above import, 113 MiB with the threshold fixed
    (``benchmarks/bench_memory.py --memmap``). Fixing it (``mallopt``, as
    the ``MALLOC_MMAP_THRESHOLD_`` environment variable does at start-up)
    stops the rise. It applies to the whole process; set the environment
    variable ``SKAVAE_MALLOC=default`` to leave glibc's behaviour alone. A
    no-op where the C library is not glibc. Returns whether it is fixed.
    """
    import os
    import sys

    if _malloc_state["done"]:
        return _malloc_state["fixed"]
    _malloc_state["done"] = True
    if not sys.platform.startswith("linux") or os.environ.get("SKAVAE_MALLOC") == (
        "default"
    ):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _malloc_state["fixed"] = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _malloc_state["fixed"]
