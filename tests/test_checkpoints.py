"""Checkpoints: atomic, resumable after a crash, robust to corrupted files.

A checkpoint is resumed only by the same run (content fingerprint); SIGTERM
stops a fit like Ctrl-C, keeping the last complete epoch.
"""

import os
import signal
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
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


def test_checkpoint_of_another_run_is_refused(tmp_path):
    AffinityVAE(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    model = AffinityVAE(**PARAMS, beta=3.0, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError) as info:
        model.fit(X)
    message = str(info.value)
    assert f"checkpoint_dir {str(tmp_path)!r}" in message
    assert "differs in beta)" in message
    assert "Use another checkpoint_dir, or delete this one" in message
    assert not hasattr(model, "module_")  # refused before training
    # the other run's checkpoints are left as they were
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    payload = torch.load(tmp_path / "checkpoint-000006.pt", weights_only=True)
    assert payload["fingerprint"]["beta"] == 1.0
    # another folder works
    other = AffinityVAE(**PARAMS, beta=3.0, checkpoint_dir=tmp_path / "b").fit(X)
    assert other.n_iter_ == 6


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


# ------------------------------------------- checkpoints of another run (#16)
CLASSES = pd.DataFrame(
    [[1.0, 0.2, -0.3], [0.2, 1.0, 0.4], [-0.3, 0.4, 1.0]],
    index=["a", "b", "c"],
    columns=["a", "b", "c"],
)


def _fit_twice(tmp_path, first, second, **params):
    """Fit ``first`` = (X, y), then ``second`` with one checkpoint folder."""
    run = {**PARAMS, "max_epochs": 2, **params}
    AffinityVAE(**run, checkpoint_dir=tmp_path).fit(*first)
    return AffinityVAE(**run, checkpoint_dir=tmp_path).fit(*second)


@pytest.mark.parametrize(
    "second, differ",
    [
        ((X, np.repeat(["b", "a", "c"], 20)), "labels"),  # other labels
        ((X[:, ::-1].copy(), np.repeat(["a", "b", "c"], 20)), "data"),  # mirrored
        ((X[::-1].copy(), np.repeat(["a", "b", "c"], 20)), "data"),  # reordered
    ],
    ids=["labels", "mirrored", "reordered"],
)
def test_resume_with_other_labels_or_data_is_refused(tmp_path, second, differ):
    first = (X, np.repeat(["a", "b", "c"], 20))
    # same n, mean and std: only the content tells the runs apart
    assert np.isclose(second[0].mean(), X.mean())
    assert np.isclose(second[0].std(), X.std())
    with pytest.raises(ValueError, match=f"another run .*differs in [^)]*{differ}"):
        _fit_twice(tmp_path, first, second, affinity=CLASSES)


def test_resume_with_another_lambda_affinity_is_refused(tmp_path):
    def near(A, B=None):
        return np.full((len(A), len(A if B is None else B)), 0.5)

    def far(A, B=None):
        return np.full((len(A), len(A if B is None else B)), -0.5)

    AffinityVAE(**PARAMS, affinity=near, checkpoint_dir=tmp_path).fit(X)
    with pytest.raises(ValueError, match=r"another run .*differs in affinity\)"):
        AffinityVAE(**PARAMS, affinity=far, checkpoint_dir=tmp_path).fit(X)
    # the same affinity resumes
    again = AffinityVAE(**PARAMS, affinity=near, checkpoint_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert again.fit(X).n_iter_ == 6


def test_array_schedule_and_filters_round_trip(tmp_path):
    params = {**PARAMS, "filters": np.array([4, 8])}
    params["beta_schedule"] = np.linspace(0.1, 1.0, 6)
    a = AffinityVAE(**params, checkpoint_dir=tmp_path).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither corrupted nor of another run
        b = AffinityVAE(**params, checkpoint_dir=tmp_path).fit(X)
    assert b.n_iter_ == 6
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_lambda_schedule_with_checkpoints_is_refused_before_training(tmp_path):
    model = AffinityVAE(**PARAMS, beta_schedule=lambda e: 1.0, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="beta_schedule is a lambda"):
        model.fit(X)
    assert not hasattr(model, "module_") and not list(tmp_path.iterdir())
    assert AffinityVAE(**PARAMS, beta_schedule=lambda e: 1.0).fit(X).n_iter_ == 6


def test_checkpoints_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        AffinityVAE(**{**PARAMS, "max_epochs": 1}, checkpoint_dir=tmp_path).fit(X)
    finally:
        os.umask(previous)
    (path,) = tmp_path.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ----------------------------------------------------------------- SIGTERM
SIGTERM_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, numpy as np, torch
    torch.set_num_threads(1)
    import skavae._training as training
    from skavae import AffinityVAE

    original, calls = training._train_epoch, {"n": 0}

    def epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # SIGTERM arrives in the middle of epoch 3
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    training._train_epoch = epoch
    if sys.argv[1] == "api":
        X = np.random.RandomState(0).rand(60, 12, 12).astype(np.float32)
        m = AffinityVAE(latent_dims=3, filters=(4, 8), max_epochs=6,
                        batch_size=16, random_state=0).fit(X)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        print(m.stopped_reason_, m.n_iter_, np.isfinite(m.transform(X)).all())
    else:
        from skavae.cli import main
        sys.exit(main(["fit", sys.argv[2], "-o", sys.argv[3], "--epochs", "5",
                       "--latent-dims", "2", "--filters", "4", "-q"]))
    """
)


def _run_sigterm_script(*args):
    return subprocess.run(
        [sys.executable, "-c", SIGTERM_SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def test_sigterm_keeps_the_last_complete_epoch():
    proc = _run_sigterm_script("api")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["terminated", "2", "True"]
    assert "stopped by SIGTERM after 2 complete epoch" in proc.stderr


def test_sigterm_during_cli_fit_saves_the_model_and_exits_143(tmp_path):
    import skavae
    from skavae.datasets import save_mrc_folder

    save_mrc_folder(X[:24], np.repeat(["a", "b"], 12), tmp_path / "data")
    out = tmp_path / "model.skavae"
    proc = _run_sigterm_script("cli", str(tmp_path / "data"), str(out))
    assert proc.returncode == 143, proc.stderr
    assert "stopped by SIGTERM after 2 complete epoch" in proc.stderr
    assert skavae.load(out).n_iter_ == 2


def test_fit_restores_the_sigterm_handler():
    def handler(signum, frame):  # pragma: no cover - never called
        pass

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        AffinityVAE(**{**PARAMS, "max_epochs": 1}).fit(X)
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_resumed_cosine_schedule_continues_where_it_stopped(tmp_path):
    params = {**PARAMS, "learning_rate_schedule": "cosine", "checkpoint_every": 1}
    reference = AffinityVAE(**params).fit(X)
    AffinityVAE(**params, checkpoint_dir=tmp_path).fit(X)
    # as if killed after epoch 5: the newest checkpoint is gone
    (tmp_path / "checkpoint-000006.pt").unlink()
    resumed = AffinityVAE(**params, checkpoint_dir=tmp_path).fit(X)
    assert resumed.n_iter_ == 6
    for k, v in reference.module_.state_dict().items():
        assert torch.equal(resumed.module_.state_dict()[k], v), k
