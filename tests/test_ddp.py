"""Data-parallel training on torch.distributed (gloo on the CPU).

A 2-process fit with a global batch B walks the same batches, noise and
augmentations as a 1-process fit with batch B, so the weights agree to float
rounding (without batch norm: on the CPU its statistics are per rank, and
without an affinity term, whose pairs are within a rank's slice).
"""

import os
import pickle
import signal

import numpy as np
import pytest
import torch

from skavae import AffinityVAE
from skavae.distributed import fit, init_from_env

RNG = np.random.RandomState(0)
X = RNG.rand(40, 8, 8).astype(np.float32)


def small(**kw):
    params = dict(
        latent_dims=2,
        filters=(4, 8),
        batch_norm=False,
        max_epochs=2,
        batch_size=16,
        validation_fraction=0.2,
        n_threads=1,
        random_state=0,
        device="cpu",
    )
    params.update(kw)
    return AffinityVAE(**params)


@pytest.mark.slow  # spawns 2 workers: ~30 s on a shared 2-core machine
def test_two_processes_equal_one_process():
    alone = small(augment=True).fit(X)
    parallel = fit(small(augment=True), X, n_procs=2)
    assert isinstance(parallel, AffinityVAE)
    a, b = alone.module_.state_dict(), parallel.module_.state_dict()
    assert a.keys() == b.keys()
    moved = max(
        (a[k] - alone._new_network((8, 8), (4, 8), 0).state_dict()[k])
        .abs()
        .max()
        .item()
        for k in a
        if a[k].is_floating_point()
    )
    assert moved > 1e-3  # training changed the weights: the comparison is real
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=1e-4, msg=k)
    cols = ["loss", "recon", "kl", "val_loss"]
    np.testing.assert_allclose(
        parallel.history_[cols].to_numpy(),
        alone.history_[cols].to_numpy(),
        rtol=1e-4,
    )
    again = pickle.loads(pickle.dumps(parallel))
    np.testing.assert_array_equal(again.transform(X), parallel.transform(X))


@pytest.mark.slow
def test_world_larger_than_samples():
    with pytest.raises(ValueError, match="world size 3 is larger"):
        fit(small(batch_size=2, validation_fraction=0.0), X[:4], n_procs=3)


def test_bad_n_procs_and_backend():
    with pytest.raises(ValueError, match="n_procs"):
        fit(small(), X, n_procs=0)
    with pytest.raises(ValueError, match="backend"):
        fit(small(), X, backend="mpi")


def test_init_from_env_half_set(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    assert init_from_env().world_size == 1
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="LOCAL_RANK, MASTER_ADDR, MASTER_PORT"):
        init_from_env()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match="inconsistent"):
        init_from_env()


def beta_kill_rank1(epoch):
    """A named schedule that kills rank 1 at the start of the third epoch."""
    if (
        epoch == 2
        and os.environ.get("SKAVAE_TEST_KILL") == "1"
        and torch.distributed.is_initialized()
        and torch.distributed.get_rank() == 1
    ):
        os.kill(os.getpid(), signal.SIGKILL)
    return 1.0


@pytest.mark.slow
def test_killed_rank_fails_cleanly_and_resume_completes(tmp_path, monkeypatch):
    params = dict(max_epochs=4, beta_schedule=beta_kill_rank1)
    monkeypatch.setenv("SKAVAE_TEST_KILL", "1")
    with pytest.raises(RuntimeError):
        fit(small(checkpoint_dir=tmp_path, **params), X, n_procs=2, timeout=30)
    names = sorted(os.listdir(tmp_path))
    assert names == ["checkpoint-000001.pt", "checkpoint-000002.pt"]
    payload = torch.load(tmp_path / names[-1], weights_only=True)
    assert payload["epoch"] == 2
    monkeypatch.setenv("SKAVAE_TEST_KILL", "0")
    resumed = fit(small(checkpoint_dir=tmp_path, **params), X, n_procs=2)
    whole = fit(small(**params), X, n_procs=2)
    assert resumed.n_iter_ == 4
    for k, v in whole.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[k], v, msg=k)
