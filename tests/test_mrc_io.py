"""Tests of the .mrc folder I/O: naming rule, lazy stack, atomic writes, errors."""

import os

import mrcfile
import numpy as np
import pytest

from skavae.datasets import MRCStack, load_mrc_folder, save_mrc_folder


@pytest.fixture
def volumes():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((5, 6, 7, 8)).astype(np.float32)
    y = np.array(["ribosome", "screw_right", "ribosome", "1ake", "screw_right"])
    return X, y


def test_round_trip_preserves_data_labels_and_voxel_size(tmp_path, volumes):
    X, y = volumes
    paths = save_mrc_folder(X, y, tmp_path, voxel_size=3.5)
    assert [os.path.basename(p) for p in paths] == [
        "ribosome_00000.mrc",
        "screw_right_00001.mrc",
        "ribosome_00002.mrc",
        "1ake_00003.mrc",
        "screw_right_00004.mrc",
    ]
    X2, y2, info = load_mrc_folder(tmp_path, return_info=True)
    assert isinstance(X2, MRCStack)
    assert X2.shape == X.shape and X2.ndim == 4 and len(X2) == 5
    assert X2.dtype == np.float32
    # files come back in sorted name order
    order = np.argsort([os.path.basename(p) for p in paths])
    np.testing.assert_array_equal(y2, y[order])
    np.testing.assert_array_equal(np.asarray(X2), X[order])
    np.testing.assert_allclose(
        info[["voxel_size_x", "voxel_size_y", "voxel_size_z"]].to_numpy(), 3.5
    )
    assert info["label"].tolist() == y2.tolist()
    for p in info["path"]:
        with mrcfile.open(p) as mrc:
            assert float(mrc.voxel_size.z) == pytest.approx(3.5)


def test_round_trip_2d_anisotropic_voxels_and_in_memory(tmp_path):
    X = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    save_mrc_folder(X, ["a", "b", "c"], tmp_path, voxel_size=(1.0, 2.0, 3.0))
    X2, y2, info = load_mrc_folder(tmp_path, mmap=False, return_info=True)
    assert isinstance(X2, np.ndarray) and X2.dtype == np.float32
    np.testing.assert_array_equal(X2, X)
    assert y2.tolist() == ["a", "b", "c"]
    assert info.loc[0, ["voxel_size_x", "voxel_size_y", "voxel_size_z"]].tolist() == [
        1.0,
        2.0,
        3.0,
    ]


def test_stack_indexing(tmp_path, volumes):
    X, y = volumes
    save_mrc_folder(X, [f"c{i}" for i in range(5)], tmp_path)
    S, _ = load_mrc_folder(tmp_path)
    np.testing.assert_array_equal(S[2], X[2])
    np.testing.assert_array_equal(S[-1], X[-1])
    np.testing.assert_array_equal(S[1:4], X[1:4])
    np.testing.assert_array_equal(S[::2], X[::2])
    np.testing.assert_array_equal(S[[4, 0, 4]], X[[4, 0, 4]])
    np.testing.assert_array_equal(S[np.array([3, 1])], X[[3, 1]])
    mask = np.array([True, False, True, False, False])
    np.testing.assert_array_equal(S[mask], X[mask])
    np.testing.assert_array_equal(S[1, 2:4], X[1, 2:4])
    np.testing.assert_array_equal(S[[0, 1], :, 0], X[[0, 1], :, 0])
    np.testing.assert_array_equal(np.stack(list(S)), X)
    assert S[[]].shape == (0, 6, 7, 8)
    with pytest.raises(IndexError):
        S[5]
    with pytest.raises(IndexError):
        S[[0, 7]]
    with pytest.raises(IndexError):
        S[mask[:3]]
    # no file stays open: the stack survives deleting nothing and pickles
    import pickle

    S2 = pickle.loads(pickle.dumps(S))
    np.testing.assert_array_equal(S2[0], X[0])


def test_other_dtypes_are_read_as_float32(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    with mrcfile.new(tmp_path / "x_1.mrc") as mrc:
        mrc.set_data(data)
    with mrcfile.new(tmp_path / "x_2.mrc") as mrc:
        mrc.set_data(data.astype(np.uint8))
    X, y = load_mrc_folder(tmp_path)
    assert X[0].dtype == np.float32
    np.testing.assert_array_equal(X[:], np.stack([data, data]).astype(np.float32))
    assert y.tolist() == ["x", "x"]


def test_label_func_and_suffixes(tmp_path, volumes):
    X, _ = volumes
    save_mrc_folder(X[:2], ["p", "q"], tmp_path)
    os.rename(tmp_path / "p_00000.mrc", tmp_path / "p_00000.map")
    _, y = load_mrc_folder(tmp_path, label_func=lambda name: name[:1].upper())
    assert y.tolist() == ["P", "Q"]
    _, y = load_mrc_folder(tmp_path, suffixes=".map")
    assert y.tolist() == ["p"]
    (tmp_path / "noseparator.mrc").write_bytes((tmp_path / "q_00001.mrc").read_bytes())
    _, y = load_mrc_folder(tmp_path)
    assert y.tolist() == ["noseparator", "p", "q"]


def test_save_is_atomic_and_refuses_to_overwrite(tmp_path, volumes, monkeypatch):
    X, y = volumes
    save_mrc_folder(X[:1], y[:1], tmp_path)
    with pytest.raises(ValueError, match="already exists"):
        save_mrc_folder(X[:1], y[:1], tmp_path)
    save_mrc_folder(X[:1] + 1, y[:1], tmp_path, overwrite=True)
    S, _ = load_mrc_folder(tmp_path)
    np.testing.assert_array_equal(S[0], X[0] + 1)

    # an interruption while moving the second file into place leaves no file
    calls = {"n": 0}
    real_replace = os.replace

    def failing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    target = tmp_path / "new"
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        save_mrc_folder(X, y, target)
    assert os.listdir(target) == []  # no new file, no temporary file


def test_saved_files_get_the_permissions_of_the_umask(tmp_path, volumes):
    X, y = volumes
    previous = os.umask(0o022)
    try:
        paths = save_mrc_folder(X[:2], y[:2], tmp_path)
    finally:
        os.umask(previous)
    assert [os.stat(p).st_mode & 0o777 for p in paths] == [0o644, 0o644]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"y": ["a"]}, "5 objects but y has 1"),
        ({"y": ["a/b"] * 5}, "path separator"),
        ({"y": [""] * 5}, "cannot be part of a file name"),
        ({"y": [".x"] * 5}, "hidden file"),
        ({"voxel_size": 0}, "positive"),
        ({"voxel_size": (1, 2)}, "voxel_size"),
        ({"X": np.zeros((5, 2, 2, 2, 2))}, "2D images or 3D volumes"),
    ],
)
def test_save_bad_input(tmp_path, volumes, kwargs, match):
    X, y = volumes
    args = {"X": X, "y": y, "voxel_size": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        save_mrc_folder(args["X"], args["y"], tmp_path, voxel_size=args["voxel_size"])


def test_load_errors_name_the_file(tmp_path, volumes):
    X, y = volumes
    with pytest.raises(ValueError, match="holds no .mrc"):
        load_mrc_folder(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        load_mrc_folder(tmp_path / "missing")

    save_mrc_folder(X[:2], y[:2], tmp_path)
    bad = tmp_path / "junk_1.mrc"
    bad.write_bytes(b"this is not an MRC file" * 100)
    with pytest.raises(ValueError, match="junk_1.mrc.*not a readable MRC file"):
        load_mrc_folder(tmp_path)
    bad.unlink()

    with mrcfile.new(tmp_path / "small_1.mrc") as mrc:
        mrc.set_data(np.zeros((2, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"small_1.mrc.*shape \(2, 2, 2\)"):
        load_mrc_folder(tmp_path)


# ----------------------------------------------------------------- symlinks
def _folder_with_links(tmp_path, volumes):
    """data/ with a link to a file inside it and one to a file outside it."""
    X, y = volumes
    data, outside = tmp_path / "data", tmp_path / "outside"
    save_mrc_folder(X[:2], y[:2], data)
    save_mrc_folder(X[2:3], ["x"], outside)
    (data / "inner_9.mrc").symlink_to(data / "ribosome_00000.mrc")
    (data / "outer_9.mrc").symlink_to(outside / "x_00000.mrc")
    return data, outside


def test_symlinks_leading_outside_the_folder_are_refused(tmp_path, volumes):
    data, outside = _folder_with_links(tmp_path, volumes)
    target = os.path.realpath(outside / "x_00000.mrc")
    with pytest.raises(ValueError, match="symbolic link") as info:
        load_mrc_folder(data)
    message = str(info.value)
    assert "outer_9.mrc" in message and target in message
    assert "follow_symlinks=True" in message and "--follow-symlinks" in message
    # a link whose chain leaves the folder through a link inside it, too
    (data / "outer_9.mrc").unlink()
    (tmp_path / "hop.mrc").symlink_to(outside / "x_00000.mrc")
    (data / "outer_9.mrc").symlink_to(tmp_path / "hop.mrc")
    with pytest.raises(ValueError, match="outer_9.mrc"):
        load_mrc_folder(data)


def test_follow_symlinks_reads_them_and_inner_links_are_fine(tmp_path, volumes):
    X, _ = volumes
    data, _ = _folder_with_links(tmp_path, volumes)
    stack, y = load_mrc_folder(data, follow_symlinks=True)
    assert sorted(y) == ["inner", "outer", "ribosome", "screw_right"]
    np.testing.assert_array_equal(stack[list(y).index("outer")], X[2])
    (data / "outer_9.mrc").unlink()
    stack, y = load_mrc_folder(data)  # only a link inside the folder: no error
    np.testing.assert_array_equal(stack[0], stack[1])  # inner_9 -> ribosome_00000
    # a folder reached through a link is not "outside" itself
    (tmp_path / "alias").symlink_to(data, target_is_directory=True)
    assert len(load_mrc_folder(tmp_path / "alias")[1]) == 3
