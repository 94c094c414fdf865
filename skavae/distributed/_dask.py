"""Latents of a large stack on a dask cluster, written to Parquet or returned."""

from __future__ import annotations

import os
import shutil
import uuid

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skavae._checks import check_int
from skavae._data import make_batches


def _client(client_or_scheduler, timeout):
    from dask.distributed import Client, default_client

    if client_or_scheduler is None:
        try:
            return default_client(), False
        except ValueError:
            raise ValueError(
                "no dask client: pass client_or_scheduler (a Client or a "
                "scheduler address such as 'tcp://host:8786')."
            ) from None
    if isinstance(client_or_scheduler, Client):
        return client_or_scheduler, False
    address = str(client_or_scheduler)
    try:
        return Client(address, timeout=timeout), True
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"no dask scheduler answered at {address!r} within {timeout} s "
            f"({type(exc).__name__}); start one with `dask scheduler` or check "
            "the address."
        ) from None


def _encode(model, X, batches, part, out, pose=False):
    """Latents (and poses) of the local batches ``batches``, each its own call."""
    if pose:
        codes = [model.encode(X[lo:hi]) for lo, hi in batches]
        z = np.concatenate([np.asarray(c[0]) for c in codes])
        p = np.concatenate([np.asarray(c[2]) for c in codes])
    else:
        z = np.concatenate([model.transform(X[lo:hi]) for lo, hi in batches])
    if out is None:
        return (z, p) if pose else z
    import pandas as pd

    from skavae._files import atomic_path

    lo = batches[0][0]
    frame = pd.DataFrame(z, columns=[f"z{i}" for i in range(z.shape[1])])
    if pose:
        for i in range(p.shape[1]):
            frame[f"pose{i}"] = p[:, i]
    frame.insert(0, "row", np.arange(lo, lo + len(z), dtype=np.int64))
    with atomic_path(os.path.join(out, f"part-{part:05d}.parquet")) as tmp:
        frame.to_parquet(tmp, index=False)
    return len(z)


def transform(
    model,
    X,
    *,
    client_or_scheduler=None,
    chunk_size=4096,
    out=None,
    timeout=10,
    pose=False,
):
    """Latent means of ``X`` computed on a dask cluster.

    The fitted model is sent once to every worker (``scatter(broadcast=True)``)
    and so is ``X`` (arrays, memory maps or the lazy stacks of :mod:`skavae.io`,
    which pickle as file names); each task encodes a chunk of consecutive rows
    in exactly the batches ``model.transform(X)`` uses, so on the CPU the
    result equals the local one bit for bit.

    Parameters
    ----------
    model : AffinityVAE
        A fitted estimator.
    X : array-like or out-of-core array-like
        The objects (picklable).
    client_or_scheduler : dask.distributed.Client, str or None, default=None
        A client, a scheduler address (``"tcp://host:8786"``) or None for the
        current default client.
    chunk_size : int, default=4096
        About how many rows one task encodes (whole batches of ``transform``).
    out : str, path-like or None, default=None
        A folder that does not exist yet: the latents are written there as
        Parquet partitions ``part-00000.parquet ...`` (columns ``row, z0,
        z1, ...``), one per task, and the folder appears only once all are
        written. None returns the latents.
    timeout : float, default=10
        Seconds to wait for a scheduler given by address.
    pose : bool, default=False
        Also return the pose codes (``model.encode(X)[2]``; Parquet columns
        ``pose0, pose1, ...``), as ``skavae evaluate --scheduler`` does.

    Returns
    -------
    Z : ndarray of shape (n_samples, latent_dims), or str
        The latents, or the folder ``out`` when given; with ``pose`` a pair
        ``(Z, P)`` of latents and poses.

    Raises
    ------
    ConnectionError
        When no scheduler answers at the address given.
    ValueError
        When ``out`` exists already or ``chunk_size`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from dask.distributed import Client, LocalCluster
    >>> from skavae import AffinityVAE
    >>> from skavae.distributed import transform
    >>> X = np.random.RandomState(0).rand(40, 8, 8).astype(np.float32)
    >>> model = AffinityVAE(latent_dims=2, max_epochs=1, random_state=0).fit(X)
    >>> with LocalCluster(n_workers=1, processes=False) as cluster, Client(
    ...     cluster) as client:  # doctest: +SKIP
    ...     transform(model, X, client_or_scheduler=client).shape
    (40, 2)
    """
    check_is_fitted(model, "module_")
    chunk_size = check_int(chunk_size, "chunk_size")
    if out is not None:
        out = os.fspath(out)
        if os.path.exists(out):
            raise ValueError(f"out={out!r} exists already; give a new folder.")
    n = len(X)
    # the batches of model.transform (see FittedVAEMixin._batched)
    in_memory = type(X) is np.ndarray
    size = max(model.batch_size, 256) if in_memory else model.batch_size
    bounds = [(int(b[0]), int(b[-1]) + 1) for b in make_batches(np.arange(n), size)]
    chunks, current = [], []
    for lo, hi in bounds:
        current.append((lo, hi))
        if current[-1][1] - current[0][0] >= chunk_size:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    client, owned = _client(client_or_scheduler, timeout)
    staging = None
    try:
        model_future = client.scatter(model, broadcast=True, hash=False)
        data_future = client.scatter(X, broadcast=True, hash=False)
        if out is not None:
            parent = os.path.dirname(os.path.abspath(out))
            staging = os.path.join(
                parent, f".{os.path.basename(out)}.{uuid.uuid4().hex}"
            )
            os.makedirs(staging)
        futures = [
            client.submit(
                _encode, model_future, data_future, c, i, staging, pose, pure=False
            )
            for i, c in enumerate(chunks)
        ]
        results = client.gather(futures)
        if out is None and pose:
            return tuple(np.concatenate(part) for part in zip(*results))
        if out is None:
            return np.concatenate(results)
        os.rename(staging, out)
        staging = None
        return out
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if owned:
            client.close()
