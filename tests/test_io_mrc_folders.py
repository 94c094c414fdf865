"""Folder labels, voxel sizes, .mrcs stacks and safe saves (issues 16 and 17)."""

import os
import warnings

import mrcfile
import numpy as np
import pytest

from skavae.datasets import MRCStack, load_mrc_folder, save_mrc_folder, save_mrcs
from skavae.io import write_volume


def _write(path, data, voxel=1.0):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, dtype=np.float32))
        mrc.voxel_size = voxel


@pytest.fixture
def reference_names(tmp_path):
    """The reference implementation's names: one class per file by the rule."""
    names = ["1BXN_m0_156_Th0", "1BXN_m1_157_Th0", "5MRC_m0_12_Th1", "5MRC_m2_3_Th0"]
    rng = np.random.RandomState(0)
    for name in names:
        _write(tmp_path / f"{name}.mrc", rng.rand(4, 4, 4))
    return tmp_path, names


# ------------------------------------------------------------------- labels
def test_label_regex_group_and_named_group(reference_names):
    folder, _ = reference_names
    _, y = load_mrc_folder(folder, label_regex=r"^([^_]+)_")
    assert y.tolist() == ["1BXN", "1BXN", "5MRC", "5MRC"]
    _, y = load_mrc_folder(folder, label_regex=r"_(?P<label>Th\d)$")
    assert y.tolist() == ["Th0", "Th0", "Th1", "Th0"]


def test_label_regex_errors_name_the_file(reference_names):
    folder, _ = reference_names
    _write(folder / "particle0001.mrc", np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="'particle0001.mrc'.*does not match"):
        load_mrc_folder(folder, label_regex=r"^(\d[A-Z0-9]{3})_")
    with pytest.raises(ValueError, match="has no group"):
        load_mrc_folder(folder, label_regex=r"^\w+")
    with pytest.raises(ValueError, match="not a regular expression"):
        load_mrc_folder(folder, label_regex="(")


def test_one_class_per_file_warns_with_the_fix(reference_names):
    folder, _ = reference_names
    with pytest.warns(UserWarning, match="4 of 4 files.*label_regex"):
        _, y = load_mrc_folder(folder)
    assert len(set(y)) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_mrc_folder(folder, label_regex=r"^([^_]+)_")  # no warning


def test_classes_table(reference_names):
    folder, names = reference_names
    table = folder.parent / "classes.csv"
    table.write_text(
        f"file,label\n{names[0]}.mrc,ribo\n{names[1]},ribo\n{names[2]}.mrc,proteasome\n"
    )
    with pytest.raises(ValueError, match=f"'{names[3]}.mrc' is not in the classes"):
        load_mrc_folder(folder, classes=table)
    X, y, info = load_mrc_folder(
        folder, classes=str(table), unlisted="skip", return_info=True
    )
    assert y.tolist() == ["ribo", "ribo", "proteasome"]
    assert len(X) == 3 and not info["path"].str.contains(names[3]).any()
    _, y = load_mrc_folder(folder, classes={n: n[:2] for n in names})
    assert y.tolist() == ["1B", "1B", "5M", "5M"]
    table.write_text("name,class\na,b\n")
    with pytest.raises(ValueError, match="classes.csv.*'file' and 'label'"):
        load_mrc_folder(folder, classes=table)


def test_unlabelled_and_conflicting_sources(reference_names):
    folder, _ = reference_names
    X, y, info = load_mrc_folder(folder, unlabelled=True, return_info=True)
    assert y is None and len(X) == 4 and info["label"].isna().all()
    with pytest.raises(ValueError, match="at most one source of labels"):
        load_mrc_folder(folder, unlabelled=True, label_regex="(.)")
    _, y = load_mrc_folder(folder, label_func=lambda name: name[0])
    assert y.tolist() == ["1", "1", "5", "5"]


# -------------------------------------------------------------- voxel sizes
def test_voxel_size_is_read_kept_and_written(tmp_path):
    X = np.random.RandomState(1).rand(3, 4, 4, 4).astype(np.float32)
    save_mrc_folder(X, ["a", "b", "a"], tmp_path / "in", voxel_size=(2.0, 2.0, 3.0))
    stack, y = load_mrc_folder(tmp_path / "in")
    assert stack.voxel_size == (2.0, 2.0, 3.0)
    paths = save_mrc_folder(stack, y, tmp_path / "out")  # carried, not 1 Å
    with mrcfile.open(paths[0]) as mrc:
        assert (float(mrc.voxel_size.x), float(mrc.voxel_size.z)) == (2.0, 3.0)


def test_mixed_voxel_sizes_refused_or_resampled(tmp_path):
    z = np.arange(8, dtype=np.float32)
    fine = np.broadcast_to(z[:, None, None], (8, 8, 8))  # a ramp along z
    coarse = fine[::2, ::2, ::2] + 0.5  # same physical ramp, 2 Å voxels
    _write(tmp_path / "a_0.mrc", fine, voxel=1.0)
    _write(tmp_path / "a_1.mrc", fine, voxel=1.0)
    _write(tmp_path / "b_0.mrc", coarse, voxel=2.0)
    with pytest.raises(ValueError, match="b_0.mrc.*voxel size 2 × 2 × 2 Å.*a_0.mrc"):
        load_mrc_folder(tmp_path)
    stack, y = load_mrc_folder(tmp_path, resample=True)
    assert stack.shape == (3, 8, 8, 8) and stack.voxel_size == (1.0, 1.0, 1.0)
    resampled = stack[2]
    assert resampled.shape == (8, 8, 8)
    # linear interpolation of a linear ramp: exact inside, clamped at the ends
    np.testing.assert_allclose(resampled[2:6, 4, 4], z[2:6], atol=1e-5)
    np.testing.assert_array_equal(stack[0], fine)


# --------------------------------------------------------------- .mrcs stacks
def test_mrcs_stack_round_trip(tmp_path):
    X = np.random.RandomState(2).rand(7, 6, 5).astype(np.float32)
    save_mrcs(X, tmp_path / "ribo_a.mrcs", voxel_size=3.5)
    save_mrcs(X[:2] + 1, tmp_path / "prot_b.mrcs", voxel_size=3.5)
    stack, y = load_mrc_folder(tmp_path, suffixes=(".mrcs",))
    assert isinstance(stack, MRCStack) and stack.shape == (9, 6, 5)
    assert y.tolist() == ["prot"] * 2 + ["ribo"] * 7
    np.testing.assert_array_equal(stack[2:], X)
    np.testing.assert_array_equal(stack[[1, 0]], X[[1, 0]] + 1)
    assert stack.voxel_size == (3.5, 3.5, 3.5)
    with mrcfile.open(tmp_path / "ribo_a.mrcs") as mrc:
        assert mrc.is_image_stack()
    with pytest.raises(ValueError, match="already exists"):
        save_mrcs(X, tmp_path / "ribo_a.mrcs")
    with pytest.raises(ValueError, match="ends in .mrcs"):
        save_mrcs(X, tmp_path / ".hidden.mrcs")


# ------------------------------------------------------ issue 16, MRC items
def test_complex_files_are_refused(tmp_path):
    _write(tmp_path / "a_0.mrc", np.zeros((4, 4, 4)))
    with mrcfile.new(tmp_path / "c_0.mrc") as mrc:
        mrc.set_data(np.ones((4, 4, 4), dtype=np.complex64))
    with pytest.raises(ValueError, match=r"c_0.mrc.*complex \(mode 4\)"):
        load_mrc_folder(tmp_path)


def test_failed_save_leaves_no_file(tmp_path):
    X = [np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), np.zeros((2, 2, 2, 2))]
    with pytest.raises(ValueError, match="Object 2 has shape"):
        save_mrc_folder(X, ["a", "b", "c"], tmp_path)
    assert os.listdir(tmp_path) == []

    class Failing:  # a lazy input whose third item fails while writing
        def __init__(self):
            self.reads = 0

        def __len__(self):
            return 3

        def __getitem__(self, i):
            self.reads += 1
            if self.reads > 3:  # validated fine; fails in the write pass
                raise OSError("disk full")
            return np.zeros((4, 4, 4))

    with pytest.raises(OSError, match="disk full"):
        save_mrc_folder(Failing(), ["a", "b", "c"], tmp_path / "f")
    assert os.listdir(tmp_path / "f") == []


def test_hidden_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="hidden file"):
        save_mrc_folder(np.zeros((1, 4, 4)), [".x"], tmp_path)
    with pytest.raises(ValueError, match="not start with"):
        write_volume(tmp_path / ".x.mrc", np.zeros((4, 4)))


def test_part_files_of_a_killed_save_are_not_read_and_are_removed(tmp_path):
    save_mrc_folder(np.zeros((2, 4, 4)), ["a", "b"], tmp_path)
    stale = tmp_path / ".tmp-killed.mrc.part"
    stale.write_bytes(b"half a file")
    assert len(load_mrc_folder(tmp_path)[0]) == 2  # not read
    save_mrc_folder(np.zeros((1, 4, 4)), ["c"], tmp_path, overwrite=True)
    assert not stale.exists()
    assert sorted(os.listdir(tmp_path)) == ["a_00000.mrc", "b_00001.mrc", "c_00000.mrc"]


def test_a_file_that_shrank_after_loading_is_named(tmp_path):
    save_mrc_folder(np.ones((2, 4, 4, 4)), ["a", "b"], tmp_path)
    stack, _ = load_mrc_folder(tmp_path)
    path = tmp_path / "b_00001.mrc"
    os.truncate(path, os.path.getsize(path) - 10)
    np.testing.assert_array_equal(stack[0], 1.0)
    with pytest.raises(ValueError, match="b_00001.mrc.*shorter than when it was"):
        stack[1]
    path.unlink()
    with pytest.raises(ValueError, match="b_00001.mrc.*can no longer be read"):
        stack[[0, 1]]


def test_nan_in_one_file_names_that_file(tmp_path):
    from skavae._data import check_finite

    X = np.ones((3, 4, 4, 4), dtype=np.float32)
    X[2, 1, 1, 1] = np.nan
    save_mrc_folder(X, ["a", "b", "c"], tmp_path)
    stack, _ = load_mrc_folder(tmp_path)
    assert np.isnan(stack[2]).sum() == 1  # read as stored
    with pytest.raises(ValueError, match="sample 2, file '.*c_00002.mrc'"):
        check_finite(stack)  # what fit runs on a lazy stack


# ------------------------------------------------------------- write_volume
def test_write_volume(tmp_path):
    vol = np.random.RandomState(3).rand(5, 6, 7)
    path = write_volume(tmp_path / "centre_0.mrc", vol, voxel_size=(4.0, 4.0, 8.0))
    with mrcfile.open(path) as mrc:
        np.testing.assert_allclose(mrc.data, vol.astype(np.float32))
        assert float(mrc.voxel_size.z) == 8.0
    with pytest.raises(ValueError, match="already exists"):
        write_volume(path, vol, overwrite=False)
    with pytest.raises(ValueError, match="NaN"):
        write_volume(tmp_path / "n.mrc", np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="real 2D or 3D"):
        write_volume(tmp_path / "c.mrc", np.ones((2, 2), dtype=complex))
    with pytest.raises(ValueError, match="folder does not exist"):
        write_volume(tmp_path / "missing" / "v.mrc", vol)
    assert sorted(os.listdir(tmp_path)) == ["centre_0.mrc"]


def test_a_full_disk_names_the_target(tmp_path, monkeypatch):
    import mrcfile

    from skavae._files import atomic_path
    from skavae.datasets import save_mrc_folder

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mrcfile, "new", full)
    X = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(OSError, match=r"cannot write '.*a_00000\.mrc': No space"):
        save_mrc_folder(X, ["a", "a"], tmp_path / "d")
    assert not list((tmp_path / "d").iterdir())
    with pytest.raises(OSError, match=r"cannot write '.*notes\.txt': No space") as e:
        with atomic_path(tmp_path / "notes.txt"):
            full()
    assert e.value.errno == 28
    assert not list(tmp_path.glob(".tmp-*"))
