"""Starting a process group: under torchrun, or spawned from a notebook."""

from __future__ import annotations

import datetime
import os
import pickle
import socket
import tempfile
from dataclasses import dataclass

import torch
from sklearn.base import clone
from torch import distributed as dist
from torch import multiprocessing as mp

from skavae._checks import check_int

#: the variables torchrun sets that :func:`init_from_env` needs
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands in a data-parallel run.

    Attributes
    ----------
    rank, world_size, local_rank : int
        This process's rank, the number of processes, its rank on its node.
    backend : str or None
        ``"gloo"`` or ``"nccl"``; None for a single process (no group).
    device : str
        The device this rank trains on: ``"cuda:<local_rank>"`` with nccl,
        else ``"cpu"``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: str = "cpu"

    @property
    def is_main(self):
        """True on rank 0, the rank that writes checkpoints, models and files."""
        return self.rank == 0

    def close(self):
        """Leave the process group :func:`init_from_env` joined (if any)."""
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _int_variable(name, value):
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={value!r} is not an integer."
        ) from None


def init_from_env(backend=None, *, timeout=300):
    """Initialise the process group from torchrun's environment variables.

    Without any of ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
    and ``MASTER_PORT`` (a plain ``python`` or ``skavae`` run) nothing is
    initialised and a single-process :class:`ProcessGroup` is returned, so the
    same script runs alone and under ``torchrun``.

    Parameters
    ----------
    backend : {"gloo", "nccl"} or None, default=None
        None: ``"nccl"`` when CUDA is available, else ``"gloo"``.
    timeout : float, default=300
        Seconds a collective waits for the other ranks before failing.

    Returns
    -------
    group : ProcessGroup
        Rank, world size, local rank, backend and the device for this rank.

    Raises
    ------
    ValueError
        When only some of the variables are set (naming the missing ones),
        or they are inconsistent.

    Examples
    --------
    >>> from skavae.distributed import init_from_env
    >>> init_from_env().world_size  # not under torchrun
    1
    """
    present = {k: os.environ[k] for k in TORCHRUN_VARIABLES if k in os.environ}
    if not present:
        return ProcessGroup()
    missing = [k for k in TORCHRUN_VARIABLES if k not in present]
    if missing:
        raise ValueError(
            "incomplete torchrun environment: "
            f"{', '.join(f'{k}={v}' for k, v in present.items())} set but "
            f"{', '.join(missing)} missing; launch with `torchrun "
            "--nproc-per-node N ...` (or unset them to run in one process)."
        )
    rank, world, local = (
        _int_variable(k, present[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    )
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(
            f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}, "
            f"LOCAL_RANK={local}."
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl'; got {backend!r}.")
    device = "cpu"
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ValueError("backend='nccl' needs CUDA, which is not available.")
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend,
            init_method="env://",
            timeout=datetime.timedelta(seconds=timeout),
        )
    return ProcessGroup(rank, world, local, backend, device)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, backend, estimator, X, y, fit_params, folder, extra):
    threads, timeout = extra
    if threads is not None:
        torch.set_num_threads(threads)
    device = "cpu"
    if backend == "nccl":
        torch.cuda.set_device(rank)
        device = f"cuda:{rank}"
    dist.init_process_group(
        backend,
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=timeout),
    )
    try:
        if estimator.device == "auto" or backend == "nccl":
            estimator.set_params(device=device)
        estimator.fit(X, y, **fit_params)
        if rank == 0:
            with open(os.path.join(folder, "model.pkl"), "wb") as fh:
                pickle.dump(estimator, fh)
    except BaseException as exc:
        try:
            with open(os.path.join(folder, f"error-{rank}.pkl"), "wb") as fh:
                pickle.dump(exc, fh)
        except Exception:  # an exception that does not pickle: the text only
            pass
        raise
    finally:
        dist.destroy_process_group()


def fit(estimator, X, y=None, *, n_procs=2, backend="gloo", timeout=300, **fit_params):
    """Fit ``estimator`` data-parallel on ``n_procs`` local processes.

    Spawns ``n_procs`` workers (``torch.multiprocessing``) joined in a process
    group on a free loopback port; each gets a copy of ``estimator``, ``X`` and
    ``y``, trains on its slice of every global batch of ``batch_size`` and
    all-reduces the gradients. Rank 0's fitted estimator comes back: an
    ordinary, picklable :class:`~skavae.AffinityVAE` (``estimator`` itself is
    not modified). With ``checkpoint_dir``, rank 0 writes the checkpoints and
    a later call resumes from them, as a fit in one process does.

    Parameters
    ----------
    estimator : AffinityVAE
        The (unfitted) estimator; cloned for the workers.
    X : array-like or out-of-core array-like
        Must be picklable (arrays, memory maps, the lazy stacks of
        :mod:`skavae.io`): every worker receives it, and reads only its rows
        of each batch.
    y : array-like of shape (n_samples,), default=None
    n_procs : int, default=2
        Number of processes (one per GPU with ``backend="nccl"``).
    backend : {"gloo", "nccl"}, default="gloo"
        ``"gloo"`` trains on the CPU, ``"nccl"`` on GPUs ``0 .. n_procs-1``.
    timeout : float, default=300
        Seconds a collective waits for the other ranks before failing.
    **fit_params
        Passed to ``fit`` (e.g. ``tilt_ranges``).

    Returns
    -------
    estimator : AffinityVAE
        Rank 0's fitted estimator.

    Raises
    ------
    ValueError
        Bad ``n_procs`` or ``backend``; a worker's ValueError (e.g. more
        processes than samples) is raised again here.
    RuntimeError
        When a worker dies or fails otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae import AffinityVAE
    >>> from skavae.distributed import fit
    >>> X = np.random.RandomState(0).rand(32, 8, 8).astype(np.float32)
    >>> vae = AffinityVAE(latent_dims=2, filters=(4,), max_epochs=1,
    ...                   batch_size=16, n_threads=1, random_state=0)
    >>> fit(vae, X, n_procs=2).n_iter_  # doctest: +SKIP
    1
    """
    n_procs = check_int(n_procs, "n_procs")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl'; got {backend!r}.")
    if backend == "nccl" and torch.cuda.device_count() < n_procs:
        raise ValueError(
            f"backend='nccl' with n_procs={n_procs} needs {n_procs} GPUs; "
            f"{torch.cuda.device_count()} are available."
        )
    worker_estimator = clone(estimator)
    extra = (estimator.n_threads, timeout)
    with tempfile.TemporaryDirectory(prefix="skavae-ddp-") as folder:
        args = (n_procs, _free_port(), backend, worker_estimator, X, y)
        try:
            mp.spawn(
                _worker,
                args=(*args, fit_params, folder, extra),
                nprocs=n_procs,
                join=True,
            )
        except Exception as exc:
            raise _worker_error(folder, n_procs, exc) from None
        with open(os.path.join(folder, "model.pkl"), "rb") as fh:
            fitted = pickle.load(fh)  # written by our own worker just now
    fitted.set_params(device=estimator.device)
    return fitted


def _worker_error(folder, n_procs, exc):
    """The first worker's own exception if it was a ValueError, else a RuntimeError."""
    for rank in range(n_procs):
        path = os.path.join(folder, f"error-{rank}.pkl")
        if os.path.exists(path):
            with open(path, "rb") as fh:
                error = pickle.load(fh)  # written by our own worker
            if isinstance(error, ValueError):
                return error
            return RuntimeError(f"rank {rank} failed: {error!r}")
    return RuntimeError(f"data-parallel fit failed: {exc}")
