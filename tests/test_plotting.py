"""Tests of skavae.plotting: every function returns a Figure with its axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from skavae import AffinityVAE  # noqa: E402
from skavae.evaluation import proximity_matrix  # noqa: E402
from skavae.plotting import (  # noqa: E402
    plot_confusion_matrix,
    plot_embedding,
    plot_history,
    plot_interpolation_grid,
    plot_pose_sweep,
    plot_proximity_matrix,
    plot_reconstructions,
    plot_traversals,
)

LATENT_DIMS = 3


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def images():
    """A tiny fitted 2D model: two classes of 16x16 images."""
    rng = np.random.RandomState(0)
    X = rng.rand(40, 16, 16).astype(np.float32)
    X[20:, 4:12, 4:12] += 1.0
    y = np.repeat(["a", "b"], 20)
    model = AffinityVAE(
        latent_dims=LATENT_DIMS, max_epochs=2, filters=(8, 16), random_state=0
    ).fit(X, y)
    return model, X, y


@pytest.fixture(scope="module")
def volumes():
    """A tiny fitted 3D model: 8x8x8 volumes, no pose channel."""
    rng = np.random.RandomState(0)
    X = rng.rand(16, 8, 8, 8).astype(np.float32)
    y = np.repeat(["p", "q"], 8)
    model = AffinityVAE(
        latent_dims=2, pose_dims=0, max_epochs=1, filters=(4, 8), random_state=0
    ).fit(X, y)
    return model, X, y


class CountingModel:
    """Wraps a fitted model and counts its inverse_transform calls."""

    def __init__(self, model):
        self.model = model
        self.calls = []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __sklearn_is_fitted__(self):
        return True

    def inverse_transform(self, Z, pose=None):
        self.calls.append(len(Z))
        return self.model.inverse_transform(Z, pose=pose)


# ------------------------------------------------------------- embedding


def test_plot_embedding_seen_unseen_split_thumbnails(images):
    model, X, y = images
    labels = y.copy()
    labels[-5:] = "2"  # an "unseen" class
    split = np.where(np.arange(40) % 4 == 0, "test", "train")
    fig = plot_embedding(
        X,
        labels,
        model=model,
        method="pca",
        seen_classes=["a", "b"],
        split=split,
        thumbnails=True,
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # seen dots, unseen stars
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["a", "b", "2 (unseen)", "train", "test"]
    assert len(ax.artists) == 3  # one thumbnail per class
    fig.canvas.draw()


def test_plot_embedding_methods_and_ax(images, volumes):
    model, X, y = images
    Z = model.transform(X)
    fig, axes = plt.subplots(1, 2)
    out = plot_embedding(Z, y, method="tsne", ax=axes[0])
    assert out is fig and len(fig.axes) == 2
    assert len(plot_embedding(Z[:, :2], y).axes) == 1  # auto: latents as they are
    vol_model, V, yv = volumes
    fig = plot_embedding(
        V, yv, model=vol_model, thumbnails=True, projection="max", method="none"
    )
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="method"):
        plot_embedding(Z, y, method="mds")
    with pytest.raises(ValueError, match="needs model"):
        plot_embedding(Z, y, method="pca", thumbnails=True)


@pytest.mark.slow
def test_plot_embedding_umap_and_auto_tsne_for_volumes(images, volumes):
    model, X, y = images
    assert plot_embedding(X, y, model=model).axes[0].get_xlabel() == "UMAP 1"
    vol_model, V, yv = volumes
    Zv = np.random.RandomState(0).normal(size=(len(V), 3))
    fig = plot_embedding(Zv, yv, thumbnails=V)  # 3D thumbnails: t-SNE
    assert fig.axes[0].get_xlabel() == "t-SNE 1"


# -------------------------------------------------------------- matrices


def test_plot_confusion_matrix():
    y_true = ["a", "a", "b", "b", "2", "2", "x"]
    y_pred = ["a", "a", "b", "a", "b", "b", "unknown"]
    fig = plot_confusion_matrix(y_true, y_pred, seen_classes=["a", "b"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # matrix + colour bar
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "2", "x"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "unknown"]
    assert len(ax.texts) == 12
    assert len(ax.lines) == 1  # seen/unseen separator
    counts = plot_confusion_matrix(y_true, y_pred, normalize=False)
    assert "2" in [t.get_text() for t in counts.axes[0].texts]


def test_confusion_matrix_long_class_names_do_not_collide():
    names = [f"a very long protein class name {i}" for i in range(6)]
    y = np.repeat(names, 2)
    fig = plot_confusion_matrix(y, y[::-1])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for labels in (fig.axes[0].get_xticklabels(), fig.axes[0].get_yticklabels()):
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert len(boxes) == 6
        for a, b in zip(boxes, boxes[1:]):
            assert not a.overlaps(b)
    plt.close(fig)


def test_plot_proximity_matrix(images):
    model, X, y = images
    fig = plot_proximity_matrix(X, y, model=model)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0", "0", "100", "100"]
    table = proximity_matrix(model.transform(X), y)
    assert len(plot_proximity_matrix(table).axes) == 2
    with pytest.raises(ValueError, match="Pass y"):
        plot_proximity_matrix(model.transform(X))


# ------------------------------------------------------- decoded figures


def test_plot_traversals_one_batched_decode(images):
    model, X, _ = images
    counting = CountingModel(model)
    fig = plot_traversals(counting, X, index=3, n_steps=5)
    assert isinstance(fig, Figure) and len(fig.axes) == LATENT_DIMS * 5
    assert counting.calls == [LATENT_DIMS * 5]
    # the centre column is the decoded encoding of the input itself
    centre = fig.axes[2].images[0].get_array()
    mu, _, pose = model.encode(X[3:4])
    np.testing.assert_allclose(
        centre, model.inverse_transform(mu, pose=pose)[0], rtol=1e-5, atol=1e-5
    )
    assert len(plot_traversals(model, X[0], dims=[1], n_steps=3).axes) == 3
    with pytest.raises(ValueError, match="odd"):
        plot_traversals(model, X, n_steps=4)
    with pytest.raises(ValueError, match="dims"):
        plot_traversals(model, X, dims=[LATENT_DIMS])


def test_plot_traversals_volumes(volumes):
    model, V, _ = volumes
    for projection in ("slice", "max"):
        fig = plot_traversals(model, V[0], n_steps=3, projection=projection)
        assert len(fig.axes) == 2 * 3
        assert fig.axes[0].images[0].get_array().shape == (8, 8)
    with pytest.raises(ValueError, match="projection"):
        plot_traversals(model, V[0], n_steps=3, projection="sum")


def test_plot_interpolation_grid_one_batched_decode(images, volumes):
    model, X, _ = images
    counting = CountingModel(model)
    fig = plot_interpolation_grid(counting, X[[0, 1, 20, 21]], n_steps=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 16
    assert counting.calls == [16]
    # corners are the decoded encodings of the four inputs
    mu, _, pose = model.encode(X[[21]])
    np.testing.assert_allclose(
        fig.axes[-1].images[0].get_array(),
        model.inverse_transform(mu, pose=pose)[0],
        rtol=1e-5,
        atol=1e-5,
    )
    vol_model, V, _ = volumes
    assert len(plot_interpolation_grid(vol_model, V[:4], n_steps=2).axes) == 4
    with pytest.raises(ValueError, match="exactly 4"):
        plot_interpolation_grid(model, X[:3])


def test_plot_pose_sweep(images, volumes):
    model, X, _ = images
    angles = np.linspace(-45, 45, len(X))
    counting = CountingModel(model)
    fig = plot_pose_sweep(counting, X, angles, n_steps=5)
    assert isinstance(fig, Figure) and len(fig.axes) == 1 + 5
    assert counting.calls == [5]
    assert "R²" in fig.axes[0].get_legend().get_texts()[0].get_text()
    assert [a.get_title() for a in fig.axes[1:]][0] == "-45°"
    assert len(plot_pose_sweep(model, X, n_steps=4).axes) == 4
    vol_model, V, _ = volumes
    with pytest.raises(ValueError, match="no pose channel"):
        plot_pose_sweep(vol_model, V)


def test_plot_reconstructions(images, volumes):
    model, X, _ = images
    counting = CountingModel(model)
    fig = plot_reconstructions(counting, X, n_samples=6)
    assert isinstance(fig, Figure) and len(fig.axes) == 12
    assert counting.calls == [6]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), X[0])
    vol_model, V, _ = volumes
    assert len(plot_reconstructions(vol_model, V, n_samples=20).axes) == 2 * len(V)


# --------------------------------------------------------------- history


def test_plot_history(images):
    model, _, _ = images
    fig = plot_history(model)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == ["loss", "recon", "kl", "affinity"]
    n_val = sum(model.history_["val_loss"].notna().any() for _ in [0])
    assert len(fig.axes[0].lines) == 1 + n_val
    table = pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0]})
    assert len(plot_history(table, terms=["loss"]).axes) == 1
    with pytest.raises(ValueError, match="not columns"):
        plot_history(table)


def test_no_function_calls_show(images, monkeypatch):
    model, X, y = images
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show called"))
    plot_embedding(X, y, model=model, method="pca")
    plot_traversals(model, X, n_steps=3)
    plot_history(model)


def test_plot_embedding_layout_keeps_legend_and_title_clear(images, tmp_path):
    model, X, y = images
    labels = np.array([f"a long class name {v}" for v in y])
    fig = plot_embedding(X, labels, model=model, method="pca", thumbnails=True)
    fig.savefig(tmp_path / "map.png")  # plain savefig, no bbox_inches="tight"
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    figure_box = fig.bbox
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert figure_box.x0 <= legend_box.x0 and legend_box.x1 <= figure_box.x1
    title_box = ax.title.get_window_extent(renderer)
    axes_box = ax.get_window_extent(renderer)
    for artist in ax.artists:
        box = artist.get_window_extent(renderer)
        assert not box.overlaps(title_box)
        assert not box.overlaps(legend_box)
        assert box.y1 <= axes_box.y1 + 1 and box.x1 <= axes_box.x1 + 1
    plt.close(fig)


@pytest.mark.parametrize("bad", [6, 2.5, "yes"])
def test_plot_embedding_scalar_thumbnails_is_a_clear_error(images, bad):
    model, X, y = images
    with pytest.raises(ValueError, match="thumbnails must be True .* got"):
        plot_embedding(X, y, model=model, method="pca", thumbnails=bad)


def test_decoding_figures_validate_their_arguments_with_sklearn():
    from sklearn.utils._param_validation import InvalidParameterError

    from skavae.plotting import (
        plot_interpolation_grid,
        plot_reconstructions,
        plot_traversals,
    )

    X = np.random.RandomState(0).rand(12, 8, 8).astype(np.float32)
    model = AffinityVAE(latent_dims=2, max_epochs=1, filters=(4,), random_state=0)
    model.fit(X)
    cases = [
        (plot_traversals, {"n_steps": True}, "'n_steps' parameter of plot_traversals"),
        (plot_traversals, {"span": -1.0}, "'span' parameter"),
        (plot_interpolation_grid, {"n_steps": 1}, r"range \[2, inf\)"),
        (plot_reconstructions, {"n_samples": 0}, "'n_samples' parameter"),
    ]
    for func, kwargs, words in cases:
        with pytest.raises(InvalidParameterError, match=words):
            func(model, X[:4], **kwargs)
    with pytest.raises(ValueError, match="n_steps must be odd"):
        plot_traversals(model, X[0], n_steps=4)


def test_embedding_threads_are_bounded_and_checked(monkeypatch):
    """One native thread by default (as AffinityVAE); None leaves the default."""
    from threadpoolctl import threadpool_info

    from skavae._plotting import _embedding

    seen = []

    def fake(Z, method, random_state):
        seen.append({p["user_api"]: p["num_threads"] for p in threadpool_info()})
        return np.zeros((len(Z), 2))

    monkeypatch.setattr(_embedding, "_embed_2d", fake)
    Z = np.random.RandomState(0).rand(10, 3)
    y = np.repeat(["a", "b"], 5)
    plot_embedding(Z, y, method="pca")
    assert seen[-1] and set(seen[-1].values()) == {1}
    plot_embedding(Z, y, method="pca", n_threads=None)
    assert seen[-1] == {p["user_api"]: p["num_threads"] for p in threadpool_info()}
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        plot_embedding(Z, y, method="pca", n_threads=0)
    plt.close("all")
