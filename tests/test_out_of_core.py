"""Out-of-core data: memory-mapped arrays and lazily loaded .mrc folders.

``fit``, ``transform`` and ``partial_fit`` take a ``np.load(..., mmap_mode="r")``
array or the :class:`~skavae.datasets.MRCStack` of ``load_mrc_folder`` and give
the model they give on the same data in memory; the numpy memory ``fit`` needs
on a memory-mapped folder does not grow with the number of files; ``partial_fit``
over chunks gives a latent map about as good as ``fit`` on the whole.
"""

import gc
import hashlib
import tracemalloc

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from skavae import AffinityVAE
from skavae.affinity import MeanDifference
from skavae.datasets import (
    MRCStack,
    load_mrc_folder,
    make_alphanumeric,
    make_tetraminos,
    save_mrc_folder,
)

SMALL = dict(latent_dims=3, filters=(4, 8), max_epochs=2, batch_size=16)


def file_digests(paths):
    return {str(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def volumes():
    X, y = make_tetraminos(60, shapes=["I", "L", "T"], size=16, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def npy_files(volumes, tmp_path_factory):
    X, _ = volumes
    root = tmp_path_factory.mktemp("npy")
    np.save(root / "x32.npy", X)
    np.save(root / "x64.npy", X.astype(np.float64))
    return root / "x32.npy", root / "x64.npy"


@pytest.fixture(scope="module")
def mrc_folder(volumes, tmp_path_factory):
    X, y = volumes
    path = tmp_path_factory.mktemp("mrc")
    save_mrc_folder(X, y, path, voxel_size=2.0)
    return path


# ------------------------------------------------------------ memory maps
@pytest.mark.parametrize("dtype", ["x32", "x64"])
def test_fit_transform_on_a_memory_map_equal_in_memory(volumes, npy_files, dtype):
    X, y = volumes
    path = npy_files[0] if dtype == "x32" else npy_files[1]
    before = file_digests([path])
    mm = np.load(path, mmap_mode="r")
    assert isinstance(mm, np.memmap)
    in_memory = np.asarray(mm).copy()

    model = AffinityVAE(**SMALL, affinity=MeanDifference(), random_state=0)
    model.fit(mm, y)
    reference = AffinityVAE(**SMALL, affinity=MeanDifference(), random_state=0)
    reference.fit(in_memory, y)

    Z = model.transform(mm)
    assert Z.shape == (len(X), 3)
    assert Z.dtype == in_memory.dtype
    # same weights, same batches; float32 convolution kernels may round in a
    # different order for buffers of different alignment (a few ulp)
    np.testing.assert_allclose(Z, reference.transform(in_memory), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        model.history_["loss"].to_numpy(), reference.history_["loss"].to_numpy()
    )
    decoded = model.inverse_transform(Z[:4])
    assert decoded.shape == (4, *X.shape[1:])
    assert file_digests([path]) == before


def test_partial_fit_on_memory_mapped_chunks(volumes, npy_files):
    X, y = volumes
    mm = np.load(npy_files[0], mmap_mode="r")
    model = AffinityVAE(**SMALL, random_state=0)
    reference = AffinityVAE(**SMALL, random_state=0)
    for start in range(0, len(X), 20):
        chunk = slice(start, start + 20)
        model.partial_fit(mm[chunk], y[chunk])
        reference.partial_fit(np.array(mm[chunk]), y[chunk])
    assert model.n_iter_ == 3
    np.testing.assert_array_equal(
        model.history_["loss"].to_numpy(), reference.history_["loss"].to_numpy()
    )
    # streamed and in-memory transforms run batches of different sizes, which
    # float32 kernels may round differently (a few ulp)
    np.testing.assert_allclose(
        model.transform(mm), reference.transform(X), rtol=1e-5, atol=1e-6
    )


# ------------------------------------------------------------ mrc folders
def test_fit_transform_on_a_lazy_mrc_folder(volumes, mrc_folder):
    X, y = volumes
    files = sorted(mrc_folder.glob("*.mrc"))
    before = file_digests(files)
    stack, labels = load_mrc_folder(mrc_folder)
    assert isinstance(stack, MRCStack)
    in_memory = np.asarray(stack)
    # files are read back in name order: the same objects as X, reordered
    order = [int(p.stem.rsplit("_", 1)[1]) for p in files]
    np.testing.assert_array_equal(in_memory, X[order])
    np.testing.assert_array_equal(labels, y[order])

    model = AffinityVAE(**SMALL, affinity=MeanDifference(), random_state=0)
    model.fit(stack, labels)
    reference = AffinityVAE(**SMALL, affinity=MeanDifference(), random_state=0)
    reference.fit(in_memory, labels)
    Z = model.transform(stack)
    assert Z.shape == (len(X), 3) and Z.dtype == np.float32
    np.testing.assert_allclose(Z, reference.transform(in_memory), rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        model.history_["loss"].to_numpy(),
        reference.history_["loss"].to_numpy(),
        rtol=1e-5,
    )
    assert model.score(stack, labels) == pytest.approx(
        reference.score(in_memory, labels), rel=1e-5
    )
    assert model.reconstruct(stack[:3]).shape == (3, *X.shape[1:])
    assert file_digests(files) == before


def test_partial_fit_on_mrc_folders_of_chunks(volumes, tmp_path):
    X, y = volumes
    model = AffinityVAE(**SMALL, random_state=0)
    reference = AffinityVAE(**SMALL, random_state=0)
    for k, start in enumerate(range(0, len(X), 30)):
        chunk = slice(start, start + 30)
        folder = tmp_path / f"chunk{k}"
        save_mrc_folder(X[chunk], y[chunk], folder)
        stack, labels = load_mrc_folder(folder)
        assert isinstance(stack, MRCStack)
        model.partial_fit(stack, labels)
        reference.partial_fit(np.asarray(stack), labels)
    assert model.n_iter_ == 2
    np.testing.assert_allclose(
        model.transform(X), reference.transform(X), rtol=0, atol=1e-5
    )


# ------------------------------------------------------------ peak memory
def traced_peak(func):
    """Peak of the numpy/Python allocations (tracemalloc) made by ``func()``."""
    gc.collect()
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fit_and_transform(X):
    def run():
        data = X() if callable(X) else X
        model = AffinityVAE(
            latent_dims=2, filters=(4,), max_epochs=1, batch_size=16, random_state=0
        )
        model.fit(data).transform(data)

    return run


@pytest.fixture(scope="module")
def big_folders(tmp_path_factory):
    """Folders of 1100 and 2200 volumes of 8^3 voxels (2.3 and 4.5 MB)."""
    rng = np.random.RandomState(0)
    root = tmp_path_factory.mktemp("big")
    folders = {}
    for n in (1100, 2200):
        X = rng.rand(n, 8, 8, 8).astype(np.float32)
        save_mrc_folder(X, np.arange(n) % 3, root / str(n))
        folders[n] = (root / str(n), X.nbytes)
    return folders


def test_fit_peak_memory_on_an_mrc_folder_does_not_grow_with_its_size(big_folders):
    (small_path, small_bytes), (large_path, large_bytes) = (
        big_folders[1100],
        big_folders[2200],
    )
    small_stack, _ = load_mrc_folder(small_path)
    large_stack, _ = load_mrc_folder(large_path)
    fit_and_transform(small_stack)()  # warm up: a first fit allocates caches
    small = traced_peak(fit_and_transform(small_stack))
    large = traced_peak(fit_and_transform(large_stack))
    eager = traced_peak(fit_and_transform(lambda: np.asarray(large_stack)))
    grown = large_bytes - small_bytes
    # Streamed, doubling the folder adds under a tenth of the added data (the
    # shuffled indices and latents); read into memory, it adds all of it.
    assert large - small < 0.1 * grown, (small, large)
    assert eager - small > 0.9 * grown, (small, eager)


def test_fit_peak_memory_is_a_few_batches(tmp_path):
    X, y = make_tetraminos(256, shapes=["I", "L"], size=16, random_state=0)
    save_mrc_folder(X, y, tmp_path, voxel_size=2.0)  # 4 MB of float32
    stack, _ = load_mrc_folder(tmp_path)
    fit_and_transform(stack)()
    assert traced_peak(fit_and_transform(stack)) < 0.5 * X.nbytes


def test_float64_memory_map_is_not_copied_whole(tmp_path):
    X = np.random.RandomState(0).rand(1200, 8, 8, 8)  # float64, 4.9 MB
    np.save(tmp_path / "x.npy", X)
    model = AffinityVAE(
        latent_dims=2, filters=(4,), max_epochs=1, batch_size=16, random_state=0
    )
    model.fit(np.load(tmp_path / "x.npy", mmap_mode="r")[:40])  # warm up
    peak = traced_peak(
        lambda: model.transform(np.load(tmp_path / "x.npy", mmap_mode="r"))
    )
    assert peak < 0.25 * X.nbytes


# ---------------------------------------------- partial_fit versus fit
def test_partial_fit_over_chunks_is_comparable_to_fit():
    X, y = make_alphanumeric(480, characters="seen", size=16, random_state=0)
    X_test, y_test = make_alphanumeric(160, characters="seen", size=16, random_state=1)
    params = dict(
        latent_dims=4,
        filters=(8, 16),
        batch_size=32,
        affinity=MeanDifference(),
        random_state=0,
    )

    def knn_accuracy(model):
        knn = KNeighborsClassifier(n_neighbors=5).fit(model.transform(X), y)
        return knn.score(model.transform(X_test), y_test)

    epochs = 3
    whole = AffinityVAE(max_epochs=epochs, validation_fraction=0.0, **params)
    whole.fit(X, y)
    chunked = AffinityVAE(**params)
    for _ in range(epochs):  # the same number of passes over the data
        for start in range(0, len(X), 120):
            chunked.partial_fit(X[start : start + 120], y[start : start + 120])
    assert chunked.n_iter_ == 4 * epochs
    assert np.isfinite(chunked.history_["loss"]).all()
    fit_accuracy, partial_accuracy = knn_accuracy(whole), knn_accuracy(chunked)
    chance = 1 / len(np.unique(y))
    assert fit_accuracy > 3 * chance and partial_accuracy > 3 * chance
    assert abs(partial_accuracy - fit_accuracy) <= 0.1, (
        partial_accuracy,
        fit_accuracy,
    )
