"""Checkpoints: atomic, resumable after a crash, robust to corrupted files."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from skavae import AffinityVAE
from skavae._checkpoint import load_checkpoint, save_checkpoint

RNG = np.random.RandomState(0)
X = RNG.rand(60, 12, 12).astype(np.float32)
PARAMS = dict(
    latent_dims=3, filters=(4, 8), max_epochs=6, batch_size=16, random_state=0
)


def test_checkpoints_written_and_pruned(tmp_path):
    m = AffinityVAE(**PARAMS, checkpoint_dir=str(tmp_path), checkpoint_every=2).fit(X)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-000004.pt", "checkpoint-000006.pt"]
    payload = torch.load(tmp_path / names[-1], weights_only=True)
    assert payload["epoch"] == 6
    assert len(payload["history"]["epoch"]) == 6
    for k, v in m.module_.state_dict().items():
        assert torch.equal(payload["module"][k], v)


def test_refit_with_finished_checkpoint_resumes_instantly(tmp_path):
    a = AffinityVAE(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    b = AffinityVAE(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert b.n_iter_ == 6 and list(b.history_["epoch"]) == list(range(1, 7))
    np.testing.assert_allclose(a.history_["loss"], b.history_["loss"])
    c = AffinityVAE(**{**PARAMS, "max_epochs": 8}, checkpoint_dir=tmp_path).fit(X)
    assert c.n_iter_ == 8  # continues from epoch 6


def test_checkpoint_of_another_run_is_replaced(tmp_path):
    AffinityVAE(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    with pytest.warns(RuntimeWarning, match="belongs to another run.*beta"):
        m = AffinityVAE(**PARAMS, beta=3.0, checkpoint_dir=tmp_path).fit(X)
    assert m.n_iter_ == 6
    payload = torch.load(tmp_path / "checkpoint-000006.pt", weights_only=True)
    assert payload["fingerprint"]["beta"] == 3.0


def test_corrupted_checkpoint_falls_back_to_previous(tmp_path):
    ref = AffinityVAE(**PARAMS).fit(X)
    AffinityVAE(**{**PARAMS, "max_epochs": 4}, checkpoint_dir=tmp_path).fit(X)
    newest = tmp_path / "checkpoint-000004.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    with pytest.warns(RuntimeWarning, match="checkpoint-000004.pt is corrupted"):
        m = AffinityVAE(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    assert m.n_iter_ == 6
    np.testing.assert_array_equal(m.transform(X), ref.transform(X))


def test_checkpoint_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        AffinityVAE(**PARAMS, checkpoint_dir=f).fit(X)


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, {"fingerprint": {}, "x": torch.ones(2)})

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, {"fingerprint": {}, "x": torch.ones(2)})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-000001.pt"]
    assert load_checkpoint(tmp_path, {})["epoch"] == 1


SCRIPT = textwrap.dedent(
    """
    import sys, time, numpy as np, torch
    torch.set_num_threads(1)
    from skavae import AffinityVAE
    import skavae._training as training

    X = np.random.RandomState(0).rand(60, 12, 12).astype(np.float32)
    original = training._train_epoch
    calls = {"n": 0}

    def slow_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 4 hangs mid-way until the process is killed
            print("in epoch 4", flush=True)
            time.sleep(600)
        return original(*args, **kwargs)

    training._train_epoch = slow_epoch
    AffinityVAE(latent_dims=3, filters=(4, 8), max_epochs=6, batch_size=16,
                random_state=0, checkpoint_dir=sys.argv[1]).fit(X)
    """
)


def test_killed_fit_resumes_and_equals_uninterrupted_run(tmp_path):
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(ckpt)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        line = proc.stdout.readline()
        assert "in epoch 4" in line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "checkpoint-000002.pt",
        "checkpoint-000003.pt",
    ]
    resumed = AffinityVAE(**PARAMS, checkpoint_dir=ckpt).fit(X)
    reference = AffinityVAE(**PARAMS).fit(X)
    assert resumed.n_iter_ == 6
    np.testing.assert_array_equal(resumed.transform(X), reference.transform(X))
    np.testing.assert_allclose(
        resumed.history_["loss"], reference.history_["loss"], rtol=1e-6
    )
    for k, v in reference.module_.state_dict().items():
        assert torch.equal(resumed.module_.state_dict()[k], v), k
