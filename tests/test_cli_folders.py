"""How the CLI reads a data folder: labels (regex, classes CSV, none), voxel
sizes (mixed, resampled, given), the ``.mrc`` outputs of ``evaluate`` for
volumes, and the atomic tomograms of ``simulate tomogram``."""

import json
import os
import subprocess
import sys

import mrcfile
import numpy as np
import pandas as pd
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import skavae
from skavae.cli import main

FIT = ["--epochs", "2", "--latent-dims", "2", "--filters", "4", "-q"]
REGEX = ["--label-regex", "^([^_]+)_"]
NAMES = ("1BXN", "5MRC")  # the reference implementation's <pdb>_m<k>_<id>_Th0 names


def _write(path, volume, voxel):
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.asarray(volume, dtype=np.float32))
        mrc.voxel_size = voxel


def _shrec(folder, n=6, voxel=5.0, seed=0):
    """2 classes x n volumes of 8³, named like SHREC: every name is its own class."""
    folder.mkdir(parents=True)
    rng = np.random.RandomState(seed)
    for c, name in enumerate(NAMES):
        for i in range(n):
            volume = rng.rand(8, 8, 8) + 2 * c
            _write(folder / f"{name}_m{i}_{100 + i}_Th0.mrc", volume, voxel)
    return folder


@pytest.fixture(scope="module")
def shrec(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    data = _shrec(root / "shrec")
    model = root / "run" / "model.skavae"
    argv = ["fit", str(data), *REGEX, "--metric", "mean-difference", "-o", str(model)]
    assert main([*argv, *FIT]) == 0
    return root, data, model


def _err(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "no error message"
    return lines[-1]


# ---------------------------------------------------------------------- labels
def test_label_regex_gives_the_classes_and_the_toml_reruns_it(shrec, tmp_path):
    root, data, model = shrec
    vae = skavae.load(model)
    assert vae.classes_.tolist() == list(NAMES)
    config = tomllib.loads((root / "run" / "model.toml").read_text())
    assert config["label_regex"] == "^([^_]+)_" and config["unlabelled"] is False
    assert config["run"]["classes"] == list(NAMES)
    again = tmp_path / "again.skavae"
    argv = ["fit", str(data), "-c", str(root / "run" / "model.toml"), "-o", str(again)]
    assert main([*argv, "-q"]) == 0
    assert skavae.load(again).classes_.tolist() == list(NAMES)
    first = pd.read_csv(root / "run" / "model.latents.csv")
    second = pd.read_csv(tmp_path / "again.latents.csv")
    assert np.allclose(first["affinityvae0"], second["affinityvae0"], atol=1e-5)


def test_a_regex_without_group_takes_the_whole_match(shrec, tmp_path):
    _, data, _ = shrec
    out = tmp_path / "m.skavae"
    argv = ["fit", str(data), "--label-regex", "^[0-9][A-Z]+", "--metric", "none"]
    assert main([*argv, "-o", str(out), *FIT]) == 0
    assert skavae.load(out).classes_.tolist() == list(NAMES)


def test_one_class_per_file_warns_in_one_cli_line(shrec, tmp_path):
    _, data, _ = shrec
    argv = ["affinity", str(data), "--metric", "mean-difference", "-q"]
    out = subprocess.run(
        [sys.executable, "-m", "skavae.cli", *argv, "-o", str(tmp_path / "a.csv")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    warned = [line for line in out.stderr.splitlines() if "Warning" in line]
    assert len(warned) == 1 and warned[0].startswith("skavae: UserWarning: 12 of 12")
    assert "--label-regex" in warned[0] and "--unlabelled" in warned[0]
    assert "label_func" not in warned[0]


def test_classes_csv_with_and_without_skip_unlisted(shrec, tmp_path, capsys):
    _, data, _ = shrec
    files = sorted(os.listdir(data))
    table = pd.DataFrame({"file": files, "label": ["big" if "5MRC" in f else "small"
                                                   for f in files]})  # fmt: skip
    table = table.drop(index=[0, 11])  # two files not listed
    table.loc[1, "file"] = table.loc[1, "file"][: -len(".mrc")]  # a stem is fine
    csv = tmp_path / "classes.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "m.skavae"
    argv = ["fit", str(data), "--classes", str(csv), "--metric", "mean-difference"]
    assert main([*argv, "-o", str(out), *FIT]) == 1
    line = _err(capsys)
    assert files[0] in line and "--skip-unlisted" in line and "2 of 12" in line
    assert not out.exists()
    assert main([*argv, "--skip-unlisted", "-o", str(out), *FIT]) == 0
    assert skavae.load(out).classes_.tolist() == ["big", "small"]
    config = tomllib.loads((tmp_path / "m.toml").read_text())
    assert config["classes"] == str(csv) and config["skip_unlisted"] is True
    assert config["run"]["n_files"] == 10
    latents = pd.read_csv(tmp_path / "m.latents.csv")
    assert files[0] not in set(latents["file"]) and len(latents) == 10


# ------------------------------------------------------------------ unlabelled
def test_unlabelled_fit_and_evaluate_by_clustering(shrec, tmp_path, capsys):
    _, data, labelled = shrec
    out = tmp_path / "u.skavae"
    assert main(["fit", str(data), "--unlabelled", "-o", str(out), *FIT]) == 0
    assert "no labels" in capsys.readouterr().err
    vae = skavae.load(out)
    assert getattr(vae, "classes_", None) is None and vae.affinity_matrix_ is None
    config = tomllib.loads((tmp_path / "u.toml").read_text())
    assert config["unlabelled"] is True and config["metric"] == "none"
    # without labels nor --n-clusters the number of clusters is unknown
    res = tmp_path / "res"
    argv = ["evaluate", str(out), str(data), "--unlabelled", "--out", str(res), "-q"]
    assert main(argv) == 2 and "--n-clusters" in _err(capsys)
    assert main([*argv, "--n-clusters", "3", "--embedding", "pca"]) == 0
    assert "no accuracy" in capsys.readouterr().out
    latents = pd.read_csv(res / "latents.csv")
    assert "label" not in latents and set(latents["cluster"]) <= {
        "cluster0", "cluster1", "cluster2"}  # fmt: skip
    clusters = pd.read_csv(res / "clusters.csv")
    assert clusters["n_files"].sum() == 12 and len(clusters) == 3
    metrics = json.loads((res / "metrics.json").read_text())
    assert metrics["evaluation"] == "clustering (unlabelled)"
    assert metrics["knn_accuracy_seen"] is None and metrics["n_clusters"] == 3
    assert sum(metrics["cluster_sizes"].values()) == 12
    assert not (res / "metrics.csv").exists()
    for k in range(3):
        with mrcfile.open(res / "volumes" / f"cluster{k}_average.mrc") as mrc:
            assert mrc.data.shape == (8, 8, 8)
    # a labelled model: as many clusters as classes, read as the seen classes
    res2 = tmp_path / "res2"
    argv = ["evaluate", str(labelled), str(data), "--unlabelled", "--out", str(res2)]
    assert main([*argv, "--no-figures", "-q"]) == 0
    clusters = pd.read_csv(res2 / "clusters.csv")
    assert len(clusters) == 2 and set(clusters["knn_majority"]) <= set(NAMES)
    assert not (res2 / "volumes").exists()


# ------------------------------------------------------------------- voxel size
@pytest.fixture
def mixed(tmp_path):
    data = _shrec(tmp_path / "mixed", n=3)
    fine = np.random.RandomState(1).rand(16, 16, 16)
    _write(data / "5MRC_m9_999_Th0.mrc", fine, 2.5)
    return data


def test_mixed_voxel_sizes_are_refused_unless_resampled(mixed, tmp_path, capsys):
    argv = ["affinity", str(mixed), *REGEX, "--metric", "mean-difference", "-q"]
    argv += ["-o", str(tmp_path / "a.csv")]
    assert main(argv) == 1
    line = _err(capsys)
    assert "5MRC_m9_999_Th0.mrc" in line and "2.5" in line and " 5 " in line
    assert "--resample" in line and "resample=True" not in line
    assert main([*argv, "--resample"]) == 0
    out = tmp_path / "m.skavae"
    fit = ["fit", str(mixed), *REGEX, "--resample", "--metric", "none"]
    assert main([*fit, "-o", str(out), *FIT]) == 0
    assert skavae.load(out).input_shape_ == (8, 8, 8)
    assert tomllib.loads((tmp_path / "m.toml").read_text())["resample"] is True


def test_resolution_needs_fsc_and_a_voxel_size_above_nyquist(shrec, tmp_path, capsys):
    _, data, _ = shrec
    argv = ["affinity", str(data), *REGEX, "-o", str(tmp_path / "a.csv"), "-q"]
    assert main([*argv, "--resolution", "20"]) == 0
    assert main([*argv, "--resolution", "8"]) == 2  # 2 x 5 Å = 10 Å
    assert "Nyquist" in _err(capsys)
    assert main([*argv, "--resolution", "8", "--voxel-size", "2"]) == 0
    assert main([*argv, "--resolution", "20", "--metric", "soap"]) == 2
    assert "--metric fsc" in _err(capsys)


def test_resolution_refuses_voxels_that_are_not_cubic(tmp_path, capsys):
    data = _shrec(tmp_path / "d")
    for path in data.iterdir():
        with mrcfile.open(path, "r+") as mrc:
            mrc.voxel_size = (5.0, 5.0, 7.5)  # x, y, z
    argv = ["affinity", str(data), *REGEX, "-o", str(tmp_path / "a.csv"), "-q"]
    assert main([*argv, "--resolution", "20"]) == 1
    line = _err(capsys)
    assert "5, 5, 7.5" in line and "not cubic" in line and "--voxel-size" in line
    assert main(argv) == 0  # no resolution in Å: shells in voxel units
    assert main([*argv, "--resolution", "20", "--voxel-size", "5"]) == 0


# ---------------------------------------------------------------- .mrc outputs
def test_evaluate_writes_class_centres_and_averages(shrec, tmp_path):
    _, data, model = shrec
    res = tmp_path / "res"
    argv = ["evaluate", str(model), str(data), *REGEX, "--out", str(res)]
    assert main([*argv, "--embedding", "pca", "-q"]) == 0
    assert (res / "embedding.png").exists()
    vae = skavae.load(model)
    for name in NAMES:
        files = sorted(data.glob(f"{name}_*.mrc"))
        expected = np.mean([mrcfile.read(f) for f in files], axis=0)
        with mrcfile.open(res / "volumes" / f"{name}_average.mrc") as mrc:
            assert mrc.data.shape == (8, 8, 8) and float(mrc.voxel_size.x) == 5.0
            assert np.allclose(mrc.data, expected, atol=1e-5)
        with mrcfile.open(res / "volumes" / f"{name}_centre.mrc") as mrc:
            assert mrc.data.shape == (8, 8, 8) and float(mrc.voxel_size.z) == 5.0
            centre = mrc.data.copy()
        latents = pd.read_csv(data.parent / "run" / "model.latents.csv")
        z = latents.loc[latents["label"] == name, ["affinityvae0", "affinityvae1"]]
        decoded = vae.inverse_transform(z.to_numpy().mean(axis=0, keepdims=True))
        assert np.allclose(centre, decoded[0], atol=1e-4)
    # --voxel-size replaces the headers'; --no-figures skips the volumes
    res2 = tmp_path / "res2"
    assert main([*argv[:-1], str(res2), "--voxel-size", "7", "--embedding", "pca",
                 "-q"]) == 0  # fmt: skip
    with mrcfile.open(res2 / "volumes" / "1BXN_centre.mrc") as mrc:
        assert float(mrc.voxel_size.y) == 7.0
    assert main([*argv[:-1], str(res2), "--overwrite", "--no-figures", "-q"]) == 0
    assert not (res2 / "volumes").exists() and (res2 / "latents.csv").exists()


# ---------------------------------------------------------------- usage errors
@pytest.mark.parametrize(
    "extra, words",
    [
        (["--skip-unlisted"], "--skip-unlisted needs --classes"),
        ([*REGEX, "--unlabelled"], "at most one source of labels"),
        (["--label-regex", "("], "not a regular expression"),
        (["--unlabelled", "--metric", "fsc"], "drop it"),
        (["--unlabelled", "--affinity", "a.csv"], "drop --affinity"),
        (["--resolution", "20", "--metric", "none"], "--metric fsc"),
        (["--voxel-size", "-1"], "--voxel-size: -1.0 must be > 0"),
    ],
)
def test_fit_folder_option_usage_errors(shrec, tmp_path, capsys, extra, words):
    _, data, _ = shrec
    assert main(["fit", str(data), *extra, "-o", str(tmp_path / "m"), *FIT]) == 2
    assert words in _err(capsys)


def test_other_commands_folder_option_usage_errors(shrec, tmp_path, capsys):
    _, data, model = shrec
    argv = ["affinity", str(data), "--unlabelled", "-o", str(tmp_path / "a.csv")]
    assert main(argv) == 2 and "needs labels" in _err(capsys)
    argv = ["evaluate", str(model), str(data), "--n-clusters", "2"]
    assert main(argv) == 2 and "--unlabelled" in _err(capsys)
    argv = ["fit", "--particles", "p.star", "--tomograms", "t/", *REGEX]
    assert main(argv) == 2 and "not to --particles" in _err(capsys)


# ------------------------------------------------------------ simulate tomogram
def test_simulate_tomogram_writes_each_tomogram_atomically(tmp_path, monkeypatch):
    import skavae.datasets as datasets

    real, calls = datasets.make_tomogram, []

    class DiskFull:
        """A tomogram whose data fail half-way through being written."""

        shape = (32, 64, 64)

        def __array__(self, dtype=None, copy=None):
            raise OSError("No space left on device")

    def second_fails(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        return (DiskFull(), *result[1:]) if len(calls) == 2 else result

    monkeypatch.setattr(datasets, "make_tomogram", second_fails)
    out = tmp_path / "tomos"
    argv = ["simulate", "tomogram", str(out), "--n-tomograms", "2", "--shape",
            "32,64,64", "--n-particles", "4", "--size", "16", "-q"]  # fmt: skip
    assert main(argv) == 1
    assert sorted(os.listdir(out)) == ["tomo_000.mrc", "tomo_000.star"]
    with mrcfile.open(out / "tomo_000.mrc") as mrc:
        assert mrc.data.shape == (32, 64, 64)
