"""The process around a fit: torch's and the native libraries' thread counts,
SIGTERM as Ctrl-C and the C heap's free pages."""

from __future__ import annotations

import contextlib
import signal
import sys
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
    """Limit torch's intra-op threads for the duration of a call."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def native_threads(n_threads):
    """Limit the native thread pools (OpenMP, BLAS) for the duration of a call.

    The counterpart of :func:`torch_threads` for what torch does not run:
    scikit-learn's t-SNE loops and numpy's BLAS. None leaves them as they are.
    """
    if n_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n_threads)):
        yield


_libc = {}


def trim_heap():
    """Give the free pages of the C heap back to the system (glibc only).

    glibc serves allocations below its *mmap threshold* from the heap, and
    the threshold rises to the size of every large block freed (up to
    32 MiB), so after the first few batches the multi-MiB batches and
    activations of skavae come from the heap. Freed, they stay resident as
    fragments: fitting and encoding 20 000 subtomograms of 32³ from a memory
    map reached 835 MiB of anonymous memory above import in one run of
    ``benchmarks/bench_memory.py --memmap``. ``malloc_trim(0)`` returns
    those free pages (``MADV_DONTNEED``) without changing how memory is
    allocated; :meth:`~skavae.AffinityVAE.transform` and friends call it
    every 16 batches and at the end. Training does not: its peak stays below
    300 MiB above import without it (``benchmarks/README.md``, "Memory"),
    and pages given back must be faulted in again. A no-op where the C
    library is not glibc.
    """
    if "trim" not in _libc:
        _libc["trim"] = None
        if sys.platform.startswith("linux"):
            import ctypes
            import ctypes.util

            try:
                _libc["trim"] = ctypes.CDLL(
                    ctypes.util.find_library("c") or "libc.so.6"
                ).malloc_trim
            except (OSError, AttributeError):  # musl and other C libraries
                pass
    if _libc["trim"] is not None:
        _libc["trim"](0)
