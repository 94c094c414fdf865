"""AffinityVAE behaviour: reproducibility, API, affinity plumbing, persistence."""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skavae import AffinityVAE
from skavae.affinity import MeanDifference

FAST = dict(latent_dims=3, filters=(4, 8), max_epochs=2, batch_size=16, random_state=0)


def shapes_dataset(n_per_class=20, size=12, seed=0):
    """Squares, crosses and bars at random offsets, with noise."""
    rng = np.random.RandomState(seed)
    X, y = [], []
    for label in ("square", "cross", "bar"):
        for _ in range(n_per_class):
            img = np.zeros((size, size), np.float32)
            r, c = rng.randint(2, size - 6, 2)
            if label == "square":
                img[r : r + 4, c : c + 4] = 1
            elif label == "cross":
                img[r + 1, c : c + 4] = 1
                img[r : r + 4, c + 1] = 1
            else:
                img[r : r + 4, c + 1] = 1
            X.append(img + 0.05 * rng.randn(size, size).astype(np.float32))
            y.append(label)
    return np.stack(X), np.array(y)


X2D, Y2D = shapes_dataset()
AFF = pd.DataFrame(
    [[1.0, 0.3, -0.5], [0.3, 1.0, 0.2], [-0.5, 0.2, 1.0]],
    index=["square", "cross", "bar"],
    columns=["square", "cross", "bar"],
)


def test_same_seed_same_latents_and_fit_transform_matches():
    a = AffinityVAE(**FAST, affinity=AFF).fit(X2D, Y2D)
    b = AffinityVAE(**FAST, affinity=AFF).fit(X2D, Y2D)
    np.testing.assert_array_equal(a.transform(X2D), b.transform(X2D))
    np.testing.assert_array_equal(
        AffinityVAE(**FAST).fit_transform(X2D),
        AffinityVAE(**FAST).fit(X2D).transform(X2D),
    )
    c = AffinityVAE(**{**FAST, "random_state": 1}).fit(X2D, Y2D)
    assert not np.allclose(a.transform(X2D), c.transform(X2D))


def test_fit_does_not_touch_global_torch_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AffinityVAE(**FAST).fit(X2D)
    assert torch.equal(torch.rand(3), expected)


def test_fitted_attributes_and_history():
    m = AffinityVAE(**{**FAST, "max_epochs": 3}, affinity=AFF).fit(X2D, Y2D)
    assert m.input_shape_ == (12, 12)
    assert m.n_features_in_ == 12
    assert m.n_iter_ == 3
    assert list(m.classes_) == ["bar", "cross", "square"]
    assert isinstance(m.module_, torch.nn.Module)
    h = m.history_
    assert list(h["epoch"]) == [1, 2, 3]
    assert {
        "loss",
        "recon",
        "kl",
        "affinity",
        "val_loss",
        "val_affinity",
        "seconds",
    } <= set(h.columns)
    assert h[["loss", "recon", "kl", "affinity", "val_loss"]].notna().all().all()
    np.testing.assert_allclose(
        h["loss"], h["recon"] + m.beta * h["kl"] + m.gamma * h["affinity"], rtol=1e-5
    )
    assert (h["affinity"] > 0).all()
    pd.testing.assert_frame_equal(m.affinity_matrix_, AFF.astype(float))


def test_no_validation_when_fraction_zero():
    m = AffinityVAE(**FAST, validation_fraction=0.0).fit(X2D)
    assert m.history_["val_loss"].isna().all()
    assert (m.history_["affinity"] == 0).all()  # no affinity given


def test_outputs_shapes_and_dtypes():
    m = AffinityVAE(**FAST, pose_dims=2).fit(X2D)
    Z = m.transform(X2D[:5])
    assert Z.shape == (5, 3) and Z.dtype == np.float32
    assert m.transform(X2D[:5].astype(np.float64)).dtype == np.float64
    mu, log_var, pose = m.encode(X2D[:5])
    np.testing.assert_allclose(mu, Z, rtol=1e-6)
    assert log_var.shape == (5, 3) and pose.shape == (5, 2)
    assert m.inverse_transform(Z).shape == (5, 12, 12)
    assert m.inverse_transform(Z, pose=[0.0, 1.0]).shape == (5, 12, 12)
    assert m.reconstruct(X2D[:5]).shape == (5, 12, 12)
    assert m.sample(4, random_state=0).shape == (4, 12, 12)
    np.testing.assert_array_equal(
        m.sample(2, random_state=3), m.sample(2, random_state=3)
    )
    assert m.pose_mean_.shape == (2,) and (m.pose_std_ >= 0).all()
    assert list(m.get_feature_names_out()) == [f"affinityvae{i}" for i in range(3)]


def test_reconstruct_uses_the_encoded_pose():
    m = AffinityVAE(**FAST).fit(X2D)
    mu, _, pose = m.encode(X2D[:4])
    np.testing.assert_allclose(
        m.reconstruct(X2D[:4]), m.inverse_transform(mu, pose), atol=1e-6
    )


def test_reconstruction_is_in_input_units():
    m = AffinityVAE(**{**FAST, "max_epochs": 8}).fit(X2D * 1000 + 50)
    rec = m.reconstruct(X2D[:20] * 1000 + 50)
    assert 0 < rec.mean() < 1000  # not in standardised units
    assert abs(rec.mean() - (X2D[:20] * 1000 + 50).mean()) < 100


def test_flat_input_with_input_shape_and_volumes():
    flat = X2D.reshape(len(X2D), -1)
    m = AffinityVAE(**FAST, input_shape=(12, 12)).fit(flat, Y2D)
    assert m.input_shape_ == (12, 12)
    assert m.inverse_transform(m.transform(flat)).shape == flat.shape
    vol = np.random.RandomState(0).rand(10, 5, 6, 7)
    mv = AffinityVAE(**FAST).fit(vol)
    assert mv.reconstruct(vol).shape == vol.shape
    sig = np.random.RandomState(0).rand(10, 3)  # flat without input_shape: 1D signals
    assert AffinityVAE(**FAST).fit(sig).input_shape_ == (3,)


def test_list_of_arrays_is_accepted():
    m = AffinityVAE(**FAST).fit(list(X2D))
    assert m.transform(list(X2D[:3])).shape == (3, 3)


def test_memmap_input(tmp_path):
    mm = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X2D.shape
    )
    mm[:] = X2D
    mm.flush()
    ro = np.load(tmp_path / "x.npy", mmap_mode="r")
    a = AffinityVAE(**FAST).fit(ro).transform(ro)
    b = AffinityVAE(**FAST).fit(X2D).transform(X2D)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_affinity_term_organises_latent_space():
    """gamma > 0 makes latent cosine similarities follow the affinity matrix."""
    X, y = shapes_dataset(n_per_class=30)
    base = dict(FAST, max_epochs=15, affinity=AFF, latent_dims=4)
    losses = {}
    for gamma in (0.0, 2.0):
        m = AffinityVAE(**base, gamma=gamma).fit(X, y)
        Z = m.transform(X)
        Zn = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        A = AFF.loc[y, y].to_numpy()
        iu = np.triu_indices(len(X), 1)
        losses[gamma] = np.abs(A - Zn @ Zn.T)[iu].mean()
    assert losses[2.0] < 0.5 * losses[0.0], losses


def test_callable_affinity_builds_class_matrix_and_sample_level_mode():
    m = AffinityVAE(**FAST, affinity=MeanDifference()).fit(X2D, Y2D)
    A = m.affinity_matrix_
    assert list(A.index) == ["bar", "cross", "square"]
    np.testing.assert_allclose(np.diag(A), 1.0)
    np.testing.assert_allclose(A, A.T)
    assert (A.to_numpy() < 1).sum() == 6
    u = AffinityVAE(**FAST, affinity=MeanDifference()).fit(X2D)  # no labels
    assert u.affinity_matrix_ is None
    assert (u.history_["affinity"] > 0).all()
    assert np.isfinite(u.score(X2D))


def test_gamma_zero_skips_affinity():
    m = AffinityVAE(**FAST, affinity=MeanDifference(), gamma=0).fit(X2D, Y2D)
    assert m.affinity_matrix_ is None
    assert (m.history_["affinity"] == 0).all()


def test_early_stopping_restores_and_stops():
    m = AffinityVAE(
        **{**FAST, "max_epochs": 20}, learning_rate=1e-12, n_iter_no_change=2, tol=1.0
    ).fit(X2D)
    assert m.n_iter_ == 3  # epoch 1 sets the best, two epochs without improvement


def test_warm_start_and_partial_fit_accumulate():
    m = AffinityVAE(**FAST, warm_start=True).fit(X2D)
    first = m.module_
    m.fit(X2D)
    assert m.module_ is first and m.n_iter_ == 4
    assert list(m.history_["epoch"]) == [1, 2, 3, 4]
    p = AffinityVAE(**FAST)
    for chunk in np.array_split(np.arange(len(X2D)), 3):
        p.partial_fit(X2D[chunk], Y2D[chunk])
    assert p.n_iter_ == 3
    assert p.transform(X2D).shape == (len(X2D), 3)
    with pytest.raises(ValueError, match="shape"):
        m.fit(np.zeros((10, 8, 8)))


def test_cold_fit_resets():
    m = AffinityVAE(**FAST).fit(X2D, Y2D)
    m.fit(X2D[:, :8, :8])
    assert m.input_shape_ == (8, 8) and m.n_iter_ == 2
    assert not hasattr(m, "classes_")


def test_pickle_and_joblib_round_trip(tmp_path):
    m = AffinityVAE(**FAST, affinity=AFF).fit(X2D, Y2D)
    Z = m.transform(X2D)
    for clone_ in (pickle.loads(pickle.dumps(m)),):
        np.testing.assert_array_equal(clone_.transform(X2D), Z)
    joblib.dump(m, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.transform(X2D), Z)
    loaded.set_params(warm_start=True).fit(X2D, Y2D)  # optimiser state survived
    assert loaded.n_iter_ == 4


def test_set_output_pandas():
    m = AffinityVAE(**FAST).set_output(transform="pandas").fit(X2D)
    out = m.transform(X2D[:4])
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["affinityvae0", "affinityvae1", "affinityvae2"]


def test_score_is_negative_loss():
    m = AffinityVAE(**{**FAST, "max_epochs": 40}, affinity=AFF).fit(X2D, Y2D)
    s_unlabelled, s_labelled = m.score(X2D), m.score(X2D, Y2D)
    assert s_unlabelled < 0 and s_labelled < s_unlabelled  # affinity term adds loss
    untrained = AffinityVAE(**{**FAST, "max_epochs": 1}, learning_rate=1e-12).fit(X2D)
    assert m.score(X2D) > untrained.score(X2D) + 0.1


def test_pipeline_with_knn_classifies():
    X, y = shapes_dataset(n_per_class=40, seed=1)
    Xt, yt = shapes_dataset(n_per_class=10, seed=2)
    pipe = make_pipeline(
        AffinityVAE(**{**FAST, "max_epochs": 30, "latent_dims": 4}, affinity=AFF),
        KNeighborsClassifier(n_neighbors=5),
    )
    pipe.fit(X, y)
    assert pipe.score(Xt, yt) >= 0.9


def test_grid_search_over_beta_gamma_latent_dims_in_parallel():
    pipe = make_pipeline(AffinityVAE(**FAST, affinity=AFF), KNeighborsClassifier(3))
    grid = {
        "affinityvae__beta": [1.0, 5.0],
        "affinityvae__gamma": [0.0, 2.0],
        "affinityvae__latent_dims": [2, 4],
    }
    search = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(X2D, Y2D)
    assert len(search.cv_results_["params"]) == 8
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_[0]
    assert best.latent_dims in (2, 4)
    assert clone(best).get_params()["affinity"].equals(AFF)


def test_unsupervised_grid_search_uses_score():
    search = GridSearchCV(AffinityVAE(**FAST), {"beta": [1.0, 4.0]}, cv=2).fit(X2D)
    assert (search.cv_results_["mean_test_score"] < 0).all()


def test_divergence_stops_with_clear_error_and_keeps_last_good_weights():
    m = AffinityVAE(**FAST, warm_start=True).fit(X2D)
    good = {k: v.clone() for k, v in m.module_.state_dict().items()}
    Z = m.transform(X2D)
    hook = m.module_.decoder.register_forward_hook(
        lambda mod, i, out: out * float("nan")
    )
    with pytest.raises(
        FloatingPointError, match="diverged at epoch 3.*weights of epoch 2"
    ):
        m.fit(X2D)
    hook.remove()
    for k, v in m.module_.state_dict().items():
        assert torch.equal(v, good[k]), k
    np.testing.assert_array_equal(m.transform(X2D), Z)
    assert m.n_iter_ == 2


def test_keyboard_interrupt_leaves_usable_model():
    m = AffinityVAE(**{**FAST, "max_epochs": 5})
    calls = {"n": 0}
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 10:  # during epoch 3 (4 batches of 13-14 per epoch)
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = step
    try:
        with pytest.warns(RuntimeWarning, match="interrupted after 2 complete epoch"):
            m.fit(X2D)
    finally:
        torch.optim.Adam.step = original
    assert m.n_iter_ == 2
    assert np.isfinite(m.transform(X2D)).all()


def test_device_option():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = AffinityVAE(**FAST, device="auto").fit(X2D)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(m.module_.parameters()).device.type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            AffinityVAE(**FAST, device="cuda").fit(X2D)
    with pytest.raises(ValueError, match="not a valid torch device"):
        AffinityVAE(**FAST, device="gpu-please").fit(X2D)


def test_n_threads_is_restored():
    before = torch.get_num_threads()
    AffinityVAE(**FAST, n_threads=2).fit(X2D)
    assert torch.get_num_threads() == before


def test_one_thread_by_default_none_keeps_torchs_count():
    """The measured default (benchmarks/bench_threads.py): one torch thread."""
    seen = []

    def metric(a, b=None):
        seen.append(torch.get_num_threads())
        b = a if b is None else b
        return np.ones((len(a), len(b)))

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        AffinityVAE(**FAST, affinity=metric).fit(X2D)
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        AffinityVAE(**FAST, affinity=metric, n_threads=None).fit(X2D)
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_fitted_on_cuda_loads_on_cpu(monkeypatch):
    m = AffinityVAE(**FAST, device="auto").fit(X2D)
    assert next(m.module_.parameters()).device.type == "cuda"
    blob = pickle.dumps(m)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(blob)
    Z = loaded.transform(X2D)
    assert next(loaded.module_.parameters()).device.type == "cpu"
    monkeypatch.undo()
    np.testing.assert_allclose(Z, m.transform(X2D), atol=1e-4)


def test_pickled_state_holds_cpu_tensors_only():
    m = AffinityVAE(**FAST).fit(X2D)
    state = m.__getstate__()
    assert all(p.device.type == "cpu" for p in state["module_"].parameters())


class LazyStack:
    """An out-of-core array-like: counts how many rows were read at once."""

    def __init__(self, data):
        self.data, self.max_rows = data, 0
        self.shape, self.dtype = data.shape, data.dtype

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        out = self.data[idx]
        self.max_rows = max(
            self.max_rows, len(out) if out.ndim == self.data.ndim else 1
        )
        return out


def test_out_of_core_array_like_is_streamed_in_batches():
    lazy = LazyStack(X2D)
    a = AffinityVAE(**FAST, affinity=AFF).fit(lazy, Y2D)
    assert lazy.max_rows <= 512  # never read whole (standardisation reads chunks)
    b = AffinityVAE(**FAST, affinity=AFF).fit(X2D, Y2D)
    np.testing.assert_allclose(
        a.transform(lazy), b.transform(X2D), rtol=1e-5, atol=1e-6
    )
    lazy.max_rows = 0
    big = LazyStack(np.concatenate([X2D] * 10))  # 600 rows
    a.transform(big)
    assert big.max_rows <= 256


def test_out_of_core_bad_values_are_caught():
    bad = X2D.copy()
    bad[7, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(sample 7\)"):
        AffinityVAE(**FAST).fit(LazyStack(bad))
    m = AffinityVAE(**FAST).fit(X2D)
    with pytest.raises(ValueError, match="NaN or infinity"):
        m.transform(LazyStack(bad))
    with pytest.raises(ValueError, match="real numbers"):
        AffinityVAE(**FAST).fit(LazyStack(X2D.astype(np.complex64)))


def test_fit_on_mrc_folder_streams_files(tmp_path):
    from skavae.datasets import load_mrc_folder, save_mrc_folder

    save_mrc_folder(X2D, Y2D, tmp_path / "maps", voxel_size=2.0)
    stack, labels = load_mrc_folder(tmp_path / "maps")
    assert not isinstance(stack, np.ndarray)
    m = AffinityVAE(**FAST, affinity=AFF).fit(stack, labels)
    Z = m.transform(stack)
    assert Z.shape == (len(X2D), 3) and Z.dtype == np.float32
    assert set(m.classes_) == set(Y2D)


def test_gradient_clipping_bounds_each_step(monkeypatch):
    norms = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        grads = [p.grad for g in self.param_groups for p in g["params"]]
        norms.append(
            float(
                torch.linalg.vector_norm(
                    torch.stack(
                        [torch.linalg.vector_norm(gr) for gr in grads if gr is not None]
                    )
                )
            )
        )
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    AffinityVAE(**FAST).fit(X2D)
    assert max(norms) > 0.05
    norms.clear()
    AffinityVAE(**FAST, max_grad_norm=0.05).fit(X2D)
    assert max(norms) <= 0.05 * (1 + 1e-5)


def test_bf16_precision_trains_in_float32_weights():
    m = AffinityVAE(**{**FAST, "max_epochs": 3}, precision="bf16", affinity=AFF)
    m.fit(X2D, Y2D)
    assert all(p.dtype == torch.float32 for p in m.module_.parameters())
    Z = m.transform(X2D)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    ref = AffinityVAE(**{**FAST, "max_epochs": 3}, affinity=AFF).fit(X2D, Y2D)
    # same trajectory up to bfloat16 rounding: losses agree to a few percent
    np.testing.assert_allclose(m.history_["loss"], ref.history_["loss"], rtol=0.1)
    assert not np.array_equal(Z, ref.transform(X2D))


def test_history_records_effective_weights():
    m = AffinityVAE(**FAST, beta=3.0, gamma=0.5, affinity=AFF).fit(X2D, Y2D)
    assert (m.history_["beta"] == 3.0).all() and (m.history_["gamma"] == 0.5).all()


def test_verbose_progress_bars(capsys):
    AffinityVAE(**FAST, verbose=2).fit(X2D)
    err = capsys.readouterr().err
    assert "AffinityVAE" in err and "epoch" in err and "batch" in err
    AffinityVAE(**FAST, verbose=0).fit(X2D)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------- numbers (#16)
class FloatViews(LazyStack):
    """An array-like whose slices are views of its float64 buffer."""

    def __getitem__(self, idx):
        return self.data[idx]  # a basic slice of an ndarray is a view


def test_fit_does_not_modify_the_callers_data():
    data = X2D.astype(np.float64) + 5.0
    before = data.copy()
    AffinityVAE(**FAST).fit(FloatViews(data))
    np.testing.assert_array_equal(data, before)
    AffinityVAE(**FAST).fit(data)
    np.testing.assert_array_equal(data, before)


@pytest.mark.parametrize("offset", [1e7, 1e8])
def test_large_offsets_keep_their_precision(offset):
    from skavae._data import standardisation

    noise = np.random.RandomState(0).rand(20, 8, 8)
    data = offset + noise
    mean, scale = standardisation(data)
    assert mean == pytest.approx(offset + noise.mean(), rel=1e-15)
    assert scale == pytest.approx(noise.std(), rel=1e-9)
    m = AffinityVAE(**FAST).fit(data)
    Z = m.transform(data)
    assert np.isfinite(Z).all() and np.ptp(Z, axis=0).min() > 0  # objects differ
    # the network saw standardised objects, not one float32 number
    batch = m._source(data).get(np.arange(4), torch.device("cpu"))
    np.testing.assert_allclose(
        batch.numpy().reshape(4, -1),
        ((noise[:4] - noise.mean()) / noise.std()).reshape(4, -1),
        atol=1e-5,
    )
    decoded = m.inverse_transform(Z[:2])
    assert decoded.dtype == np.float64 and np.abs(decoded - offset).max() < 10


def _failing_step_after(n_steps):
    original, calls = torch.optim.Adam.step, {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n_steps:
            raise RuntimeError("disk gone")
        return original(self, *args, **kwargs)

    return original, step


def test_an_error_mid_epoch_restores_the_last_complete_epoch(monkeypatch):
    reference = AffinityVAE(**FAST).fit(X2D)  # 2 epochs of 4 steps
    original, step = _failing_step_after(9)  # fails in epoch 3
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    m = AffinityVAE(**{**FAST, "max_epochs": 5})
    with pytest.raises(RuntimeError, match="disk gone"):
        m.fit(X2D)
    monkeypatch.setattr(torch.optim.Adam, "step", original)
    assert m.n_iter_ == 2 and m.stopped_reason_ == "error"
    for k, v in reference.module_.state_dict().items():
        assert torch.equal(m.module_.state_dict()[k], v), k
    np.testing.assert_array_equal(m.transform(X2D), reference.transform(X2D))


def test_an_error_in_the_first_epoch_leaves_the_model_unfitted(monkeypatch):
    from sklearn.exceptions import NotFittedError

    _, step = _failing_step_after(2)
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    m = AffinityVAE(**FAST)
    with pytest.raises(RuntimeError, match="disk gone"):
        m.fit(X2D)
    with pytest.raises(NotFittedError):
        m.transform(X2D)


def test_stopped_reason():
    assert AffinityVAE(**FAST).fit(X2D).stopped_reason_ is None
    early = AffinityVAE(
        **{**FAST, "max_epochs": 20}, learning_rate=1e-12, n_iter_no_change=2, tol=1.0
    ).fit(X2D)
    assert early.stopped_reason_ == "early_stopping"


def test_sizes_of_the_fitted_network_are_used_after_set_params():
    m = AffinityVAE(**FAST).fit(X2D)
    Z = m.transform(X2D[:3])
    expected = m.inverse_transform(Z)
    m.set_params(latent_dims=5, pose_dims=0)
    np.testing.assert_array_equal(m.inverse_transform(Z), expected)
    assert m.sample(2, random_state=0).shape == (2, 12, 12)
    assert m.transform(X2D[:3]).shape == (3, 3)
    assert list(m.get_feature_names_out()) == [f"affinityvae{i}" for i in range(3)]
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\).*set to 5 after"):
        m.inverse_transform(np.zeros((2, 5)))


def test_codes_beyond_float32_are_refused():
    m = AffinityVAE(**FAST).fit(X2D)
    with pytest.raises(ValueError, match="Z has values beyond the float32 range"):
        m.inverse_transform(np.full((2, 3), 1e39))
    with pytest.raises(ValueError, match="pose has values beyond the float32"):
        m.inverse_transform(np.zeros((2, 3)), pose=[1e39])


@pytest.mark.parametrize(
    "params", [{"latent_dims": True}, {"max_epochs": True}, {"n_splats": False}]
)
def test_booleans_are_not_integers(params):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="must be an int.*Got (True|False)"):
        AffinityVAE(**{**FAST, **params}).fit(X2D)


def test_sample_refuses_booleans():
    m = AffinityVAE(**FAST).fit(X2D)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        m.sample(True)
    with pytest.raises(ValueError, match="random_state must be None, an int seed"):
        m.sample(2, random_state=True)


def test_a_boolean_seed_is_refused():
    """random_state=True is a mistake, not seed 1 (scikit-learn takes it)."""
    from sklearn.utils._param_validation import InvalidParameterError

    from skavae.datasets import make_proteins, make_tetraminos
    from skavae.evaluation import ConformalOpenSetClassifier

    with pytest.raises(InvalidParameterError, match="random_state.*Got True"):
        AffinityVAE(**{**FAST, "random_state": True}).fit(X2D)
    with pytest.raises(InvalidParameterError, match="random_state.*Got False"):
        ConformalOpenSetClassifier(random_state=False).fit(X2D[:, :, 0], Y2D)
    for make in (make_tetraminos, make_proteins):
        with pytest.raises(ValueError, match="random_state must be None"):
            make(4, size=8, random_state=True)
    # numpy integers and RandomState instances stay seeds
    a = AffinityVAE(**{**FAST, "random_state": np.int64(0)}).fit(X2D).transform(X2D)
    b = AffinityVAE(**{**FAST, "random_state": 0}).fit(X2D).transform(X2D)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ a new user (#15)
def test_flat_rows_for_an_image_model_name_the_image_shape():
    m = AffinityVAE(**FAST).fit(X2D)
    with pytest.raises(ValueError, match=r"flat rows.*objects of shape \(12, 12\)"):
        m.transform(X2D.reshape(len(X2D), -1))


def test_unused_gamma_and_labels_warn():
    with pytest.warns(UserWarning, match="the labels y do not shape the latent"):
        AffinityVAE(**FAST).fit(X2D, Y2D)
    with pytest.warns(UserWarning, match="gamma is not used"):
        AffinityVAE(**FAST, gamma=5.0).fit(X2D)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AffinityVAE(**FAST).fit(X2D)
        AffinityVAE(**FAST, affinity=AFF, gamma=5.0).fit(X2D, Y2D)


def test_reconstruction_score_is_comparable_across_beta():
    m = AffinityVAE(**FAST).fit(X2D)
    score, recon = m.score(X2D), m.reconstruction_score(X2D)
    m.set_params(beta=4.0)
    assert m.score(X2D) != score  # the loss weighs KL by beta
    assert m.reconstruction_score(X2D) == recon
    reconstructed = m.reconstruct(X2D)
    mse = float(np.mean((reconstructed - X2D) ** 2))
    assert recon == pytest.approx(-mse, rel=1e-4)
    search = GridSearchCV(
        AffinityVAE(**FAST),
        {"beta": [0.5, 4.0]},
        cv=2,
        scoring=AffinityVAE.reconstruction_score,
    ).fit(X2D)
    assert (search.cv_results_["mean_test_score"] < 0).all()


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        AffinityVAE(4)


def _learning_rates(monkeypatch, fit, X):
    """The learning rate of every optimiser step of ``fit(X)``."""
    rates, original = [], torch.optim.Adam.step

    def step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch.optim.Adam, "step", step)
        fit(X)
    return np.array(rates)


def test_cosine_learning_rate_schedule_per_epoch(monkeypatch):
    params = {**FAST, "max_epochs": 4, "validation_fraction": 0.0}
    steps = -(-len(X2D) // FAST["batch_size"])  # optimiser steps per epoch
    constant = _learning_rates(monkeypatch, AffinityVAE(**params).fit, X2D)
    np.testing.assert_array_equal(constant, np.full(4 * steps, 1e-3))
    model = AffinityVAE(**params, learning_rate=2e-3, learning_rate_schedule="cosine")
    cosine = _learning_rates(monkeypatch, model.fit, X2D)
    per_epoch = 2e-3 * 0.5 * (1 + np.cos(np.pi * np.arange(4) / 4))
    np.testing.assert_allclose(cosine, np.repeat(per_epoch, steps), rtol=1e-12)
    # a warm-started fit anneals over its own max_epochs again, from the top
    model.set_params(warm_start=True, max_epochs=2)
    again = _learning_rates(monkeypatch, model.fit, X2D)
    np.testing.assert_allclose(again, np.repeat([2e-3, 1e-3], steps), rtol=1e-12)
    assert model.n_iter_ == 6
    # partial_fit keeps the learning rate constant
    model = AffinityVAE(**FAST, learning_rate_schedule="cosine")
    assert set(_learning_rates(monkeypatch, model.partial_fit, X2D)) == {1e-3}
