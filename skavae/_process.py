"""The process around a fit: torch's thread count and SIGTERM as Ctrl-C."""

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
