"""Distributed inference on a 2-worker dask LocalCluster (loopback only)."""

import numpy as np
import pandas as pd
import pytest
import torch

from skavae import AffinityVAE
from skavae.distributed import transform

distributed = pytest.importorskip("dask.distributed")
X = np.random.RandomState(0).rand(600, 8, 8).astype(np.float32)


@pytest.mark.slow
def test_dask_transform_equals_local_bit_for_bit(tmp_path):
    model = AffinityVAE(
        latent_dims=3, filters=(4, 8), max_epochs=1, n_threads=1, random_state=0
    ).fit(X[:64])
    with torch.random.fork_rng():
        local = model.transform(X)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        z = transform(model, X, client_or_scheduler=client, chunk_size=200)
        out = transform(
            model,
            X,
            client_or_scheduler=client,
            chunk_size=200,
            out=tmp_path / "latents",
        )
        with pytest.raises(ValueError, match="exists already"):
            transform(model, X, client_or_scheduler=client, out=out)
    np.testing.assert_array_equal(z, local)
    parts = sorted((tmp_path / "latents").iterdir())
    assert len(parts) == 3
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    np.testing.assert_array_equal(frame["row"].to_numpy(), np.arange(len(X)))
    np.testing.assert_array_equal(frame[["z0", "z1", "z2"]].to_numpy(), local)


def test_scheduler_that_does_not_answer():
    model = AffinityVAE(latent_dims=2, filters=(4,), max_epochs=1, random_state=0)
    model.fit(X[:16])
    with pytest.raises(ConnectionError, match="tcp://127.0.0.1:9"):
        transform(model, X[:4], client_or_scheduler="tcp://127.0.0.1:9", timeout=1)
