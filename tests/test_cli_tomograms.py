"""Tomograms on the command line: ``simulate tomogram``, ``extract``,
``fit --particles`` and ``evaluate --particles`` end to end, and bad input."""

import json
import os

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile

from skavae.cli import main
from skavae.datasets import load_mrc_folder

TINY = ["--shape", "64,128,128", "--n-particles", "30"]
FIT = ["--epochs", "2", "--latent-dims", "4", "--filters", "4,8", "-q"]


@pytest.fixture(scope="module")
def tomos(tmp_path_factory):
    """Two tiny simulated tomograms (64 x 128 x 128 at 10 Å, 30 molecules)."""
    root = tmp_path_factory.mktemp("tomos")
    out = root / "tomos"
    code = main(["simulate", "tomogram", str(out), "--n-tomograms", "2", *TINY, "-q"])
    assert code == 0
    return root, out


@pytest.fixture(scope="module")
def model(tomos):
    root, out = tomos
    path = root / "run" / "model.skavae"
    code = main(
        [
            "fit",
            "--particles",
            str(out / "tomo_000.star"),
            "--tomograms",
            str(out),
            "--affinity",
            str(out / "affinity.csv"),
            "-o",
            str(path),
            *FIT,
        ]
    )
    assert code == 0
    return path


def _star(path):
    """The particles block of a STAR file (skavae writes an optics block too)."""
    return starfile.read(path, always_dict=True)["particles"]


def _error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error message"
    return err[-1]


def test_simulate_tomogram_writes_tomograms_and_ground_truth(tomos):
    _, out = tomos
    names = sorted(os.listdir(out))
    for name in (
        "tomo_000.mrc",
        "tomo_000.star",
        "tomo_001.mrc",
        "tomo_001.star",
        "particles.star",
        "affinity.csv",
        "templates",
        "README.txt",
    ):
        assert name in names
    with mrcfile.open(out / "tomo_001.mrc", permissive=False) as mrc:
        assert mrc.data.shape == (64, 128, 128)
        assert float(mrc.voxel_size.x) == pytest.approx(10.0)
    truth = _star(out / "tomo_000.star")
    assert len(truth) == 30
    for column in (
        "rlnTomoName",
        "rlnCoordinateX",
        "rlnAngleRot",
        "rlnAngleTilt",
        "rlnAnglePsi",
        "rlnClassNumber",
        "skavaeClassName",
        "skavaeTiltMin",
        "rlnOpticsGroup",
    ):
        assert column in truth.columns
    optics = starfile.read(out / "tomo_000.star", always_dict=True)["optics"]
    assert optics["rlnTomoTiltSeriesPixelSize"].tolist() == [10.0]
    assert optics["rlnImagePixelSize"].tolist() == [10.0]
    assert truth["rlnOpticsGroup"].eq(1).all()
    assert set(truth["rlnTomoName"]) == {"tomo_000"}
    assert len(_star(out / "particles.star")) == 60
    _, labels = load_mrc_folder(out / "templates")
    assert len(labels) == 6


def test_extract_to_a_folder(tomos, tmp_path):
    _, out = tomos
    dest = tmp_path / "subtomos"
    code = main(
        [
            "extract",
            str(out / "tomo_000.mrc"),
            str(out / "tomo_000.star"),
            "--box",
            "32",
            "-o",
            str(dest),
            "-q",
        ]
    )
    assert code == 0
    X, y, info = load_mrc_folder(dest, return_info=True)
    truth = _star(out / "tomo_000.star")
    assert X.shape == (30, 32, 32, 32)
    assert sorted(y.tolist()) == sorted(truth["skavaeClassName"].tolist())
    assert (info["voxel_size_x"] == 10.0).all()
    written = _star(dest / "particles.star")
    assert sorted(written["skavaeSubtomogram"]) == sorted(
        os.path.basename(p) for p in info["path"]
    )
    # the files are the boxes of the stack
    from skavae.io import extract_subtomograms

    stack = extract_subtomograms(out / "tomo_000.mrc", out / "tomo_000.star", box=32)
    first = written["skavaeSubtomogram"].iloc[0]
    np.testing.assert_array_equal(
        X[list(info["path"]).index(str(dest / first))], stack[0]
    )


def _extract(out, star, dest, *extra):
    return main(
        ["extract", str(out / "tomo_000.mrc"), str(star), "--box", "8",
         "-o", str(dest), "-q", *extra]
    )  # fmt: skip


def test_extract_refuses_a_full_folder_and_overwrite_leaves_no_stale_file(
    tomos, tmp_path, capsys
):
    _, out = tomos
    dest = tmp_path / "ex"
    assert _extract(out, out / "tomo_000.star", dest) == 0
    first = sorted(p.name for p in dest.iterdir())
    assert len(first) == 31 and "particles.star" in first
    before = (dest / "particles.star").read_bytes()
    capsys.readouterr()
    assert _extract(out, out / "tomo_000.star", dest) == 1  # no --overwrite
    assert "already exists and is not empty; pass --overwrite" in _error(capsys)
    assert (dest / "particles.star").read_bytes() == before
    assert sorted(p.name for p in dest.iterdir()) == first
    # --overwrite with 5 of the rows: only their files remain
    few = tmp_path / "few.star"
    _write_star(few, _star(out / "tomo_000.star").iloc[:5])
    assert _extract(out, few, dest, "--overwrite") == 0
    names = sorted(p.name for p in dest.iterdir())
    written = _star(dest / "particles.star")
    assert len(written) == 5
    assert names == sorted([*written["skavaeSubtomogram"], "particles.star"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # a folder holding other files is never replaced
    (dest / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert _extract(out, few, dest, "--overwrite") == 1
    assert "holds 'notes.txt', which this command does not write" in _error(capsys)
    assert (dest / "notes.txt").read_text() == "mine"
    # nor one holding an input (--overwrite would delete it)
    (dest / "notes.txt").unlink()
    inside = dest / "list.star"
    inside.write_bytes(few.read_bytes())
    capsys.readouterr()
    assert _extract(out, inside, dest, "--overwrite") == 2
    assert "PARTICLES" in _error(capsys) and inside.exists()


@pytest.fixture(scope="module")
def relion_list(tomos):
    """tomo_000.star as RELION writes it: no skavaeTiltMin/Max columns."""
    root, out = tomos
    path = root / "relion.star"
    truth = _star(out / "tomo_000.star")
    _write_star(path, truth.drop(columns=["skavaeTiltMin", "skavaeTiltMax"]))
    return path


@pytest.mark.parametrize("command", ["extract", "fit", "evaluate"])
def test_tilt_range_reaches_the_stack(
    tomos, model, relion_list, tmp_path, capsys, monkeypatch, command
):
    import skavae.io

    _, out = tomos
    stacks = []

    def spy(*args, **kwargs):  # keep the stack, stop before any training
        stacks.append(real(*args, **kwargs))
        raise ValueError("stopped by the test")

    real = skavae.io.extract_subtomograms
    monkeypatch.setattr(skavae.io, "extract_subtomograms", spy)
    dest = tmp_path / "dest"
    particles = ["--particles", str(relion_list), "--tomograms", str(out)]
    argv = {
        "extract": ["extract", str(out), str(relion_list), "-o", str(dest), "-q"],
        "fit": ["fit", *particles, "-o", str(dest / "m.skavae"), *FIT],
        "evaluate": ["evaluate", str(model), *particles, "--out", str(dest), "-q"],
    }[command]
    for tilt, expected in (
        (["--tilt-range", "-45", "50.5"], [-45.0, 50.5]),
        ([], None),
    ):
        capsys.readouterr()
        assert main([*argv, *tilt]) == 1
        assert "stopped by the test" in _error(capsys)
        got = stacks[-1].tilt_ranges
        if expected is None:
            assert got is None  # no columns and no option: unknown
        else:
            np.testing.assert_array_equal(got, np.tile(expected, (30, 1)))


def test_extract_tilt_range_replaces_the_columns(tomos, tmp_path, capsys):
    _, out = tomos
    dest = tmp_path / "ex"
    assert _extract(out, out / "tomo_000.star", dest, "--tilt-range", "-50", "55") == 0
    written = _star(dest / "particles.star")
    assert written["skavaeTiltMin"].eq(-50.0).all()
    assert written["skavaeTiltMax"].eq(55.0).all()
    capsys.readouterr()
    assert (
        _extract(
            out, out / "tomo_000.star", tmp_path / "x", "--tilt-range", "60", "-60"
        )
        == 2
    )
    assert "--tilt-range is reversed: min 60 > max -60" in _error(capsys)
    assert not (tmp_path / "x").exists()


def test_extract_target_pixel_size(tomos, tmp_path):
    _, out = tomos
    dest = tmp_path / "ex"
    assert _extract(out, out / "tomo_000.star", dest, "--target-pixel-size", "20") == 0
    X, _, info = load_mrc_folder(dest, return_info=True)
    assert X.shape == (30, 8, 8, 8) and (info["voxel_size_x"] == 20.0).all()
    from skavae.io import extract_subtomograms

    stack = extract_subtomograms(
        out / "tomo_000.mrc", out / "tomo_000.star", box=8, target_pixel_size=20.0
    )
    first = _star(dest / "particles.star")["skavaeSubtomogram"].iloc[0]
    np.testing.assert_allclose(
        X[list(info["path"]).index(str(dest / first))], stack[0], rtol=1e-6
    )


def test_extract_label_column(tomos, tmp_path, capsys):
    _, out = tomos
    dest = tmp_path / "ex"
    assert (
        _extract(out, out / "tomo_000.star", dest, "--label-column", "rlnClassNumber")
        == 0
    )
    truth = _star(out / "tomo_000.star")
    _, y = load_mrc_folder(dest)
    assert sorted(y.tolist()) == sorted(truth["rlnClassNumber"].astype(str).tolist())
    written = _star(dest / "particles.star")
    assert [n.split("_")[0] for n in written["skavaeSubtomogram"]] == truth[
        "rlnClassNumber"
    ].astype(str).tolist()
    capsys.readouterr()
    code = _extract(
        out, out / "tomo_000.star", tmp_path / "x", "--label-column", "rlnNope"
    )
    assert code == 1
    line = _error(capsys)
    assert "has no column 'rlnNope' for the labels" in line
    assert line.startswith("skavae extract: error:") and "tomo_000.star" in line
    assert not (tmp_path / "x").exists()


def test_fit_and_evaluate_particles_end_to_end(tomos, model, tmp_path, capsys):
    """Fit on one tomogram, classify the other, score against ground truth."""
    _, out = tomos
    toml = model.with_suffix(".toml").read_text()
    assert "tomo_000.star" in toml
    latents = pd.read_csv(str(model).replace(".skavae", ".latents.csv"))
    assert len(latents) == 30 and latents["path"].str.contains("tomo_000.star#").all()
    star = tmp_path / "classified.star"
    capsys.readouterr()
    code = main(
        [
            "evaluate",
            str(model),
            "--particles",
            str(out / "tomo_001.star"),
            "--tomograms",
            str(out),
            "--out",
            str(star),
            "--split-by-class",
            "-q",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Hard KNN (k=5) accuracy on held-out seen classes" in printed
    result = _star(star)
    truth = _star(out / "tomo_001.star")
    assert len(result) == len(truth) == 30
    # the input's columns are untouched; the truth is kept next to the result
    for column in ("rlnCoordinateX", "rlnAngleRot", "skavaeTiltMin"):
        pd.testing.assert_series_equal(result[column], truth[column])
    assert (result["skavaeInputClassName"] == truth["skavaeClassName"]).all()
    accuracy = float((result["skavaeClassName"] == truth["skavaeClassName"]).mean())
    metrics = json.loads((tmp_path / "classified.metrics.json").read_text())
    assert metrics["knn_accuracy_seen"] == pytest.approx(accuracy)
    assert 0.0 <= accuracy <= 1.0
    classes = sorted(truth["skavaeClassName"].unique())
    number = {c: i + 1 for i, c in enumerate(classes)}
    assert (result["rlnClassNumber"] == result["skavaeClassName"].map(number)).all()
    assert result["skavaeProbability"].between(0, 1).all()
    assert set(result["skavaeUnknown"]) <= {0, 1}
    assert [c for c in result.columns if c.startswith("skavaeLatent")] == [
        f"skavaeLatent{d:02d}" for d in range(1, 5)
    ]
    split = sorted(p.name for p in tmp_path.glob("classified_*.star"))
    assert split == [
        f"classified_{c}.star" for c in sorted(result["skavaeClassName"].unique())
    ]
    print(f"end-to-end (tiny, 2 epochs): accuracy {accuracy:.3f} on 30 particles")


def test_evaluate_particles_into_a_folder(tomos, model, tmp_path):
    _, out = tomos
    dest = tmp_path / "results"
    code = main(
        [
            "evaluate",
            str(model),
            "--particles",
            str(out / "tomo_001.star"),
            "--tomograms",
            str(out),
            "--out",
            str(dest),
            "--no-figures",
            "-q",
        ]
    )
    assert code == 0
    for name in ("particles.star", "latents.csv", "metrics.json", "soft_knn.csv"):
        assert (dest / name).exists(), name


def test_evaluate_unlabelled_coordinates_from_a_csv(tomos, model, tmp_path):
    """A plain coordinate table without classes still gets classified."""
    _, out = tomos
    truth = _star(out / "tomo_001.star")
    csv = tmp_path / "picks.csv"
    pd.DataFrame(
        {
            "x": truth["rlnCoordinateX"],
            "y": truth["rlnCoordinateY"],
            "z": truth["rlnCoordinateZ"],
            "score": np.linspace(0, 1, len(truth)),
        }
    ).to_csv(csv, index=False)
    star = tmp_path / "picks.star"
    code = main(
        ["evaluate", str(model), "--particles", str(csv), "--tomograms",
         str(out / "tomo_001.mrc"), "--out", str(star), "-q"]
    )  # fmt: skip
    assert code == 0
    result = _star(star)
    assert len(result) == len(truth)
    np.testing.assert_allclose(result["rlnCoordinateX"], truth["rlnCoordinateX"])
    np.testing.assert_allclose(
        result["score"], np.linspace(0, 1, len(truth)), atol=1e-6
    )
    assert result["skavaeClassName"].isin(truth["skavaeClassName"]).all()


# ---------------------------------------------------------------- bad input
def _write_star(path, frame):
    starfile.write({"particles": frame}, path)
    return str(path)


@pytest.fixture(scope="module")
def bad_lists(tomos):
    root, out = tomos
    folder = root / "bad"
    folder.mkdir()
    good = _star(out / "tomo_000.star")
    lists = {}
    lists["no_coordinates"] = _write_star(
        folder / "nocoords.star",
        good.drop(columns=["rlnCoordinateX"]).drop(
            columns=["rlnCoordinateY", "rlnCoordinateZ"]
        ),
    )
    outside = good.copy()
    outside.loc[3, "rlnCoordinateX"] = 5000.0
    lists["outside"] = _write_star(folder / "outside.star", outside)
    other = good.copy()
    other["rlnTomoName"] = "TS_99"
    lists["no_file"] = _write_star(folder / "nofile.star", other)
    angst = good[["rlnTomoName"]].copy()
    for axis in "XYZ":
        angst[f"rlnCenteredCoordinate{axis}Angst"] = 0.0
    lists["no_pixel_size"] = _write_star(folder / "angst.star", angst)
    tbl = folder / "bad.tbl"
    tbl.write_text("1 " * 35 + "\n" + "1 " * 30 + "\n")
    lists["tbl"] = str(tbl)
    junk = folder / "junk.star"
    junk.write_text("this is not a star file\n")
    lists["junk"] = str(junk)
    return out, lists


@pytest.mark.parametrize(
    "key, message",
    [
        ("no_coordinates", "no coordinate columns"),
        ("outside", "particle row 4 at x, y, z = 5000"),
        ("no_file", "tomogram 'TS_99' of particle rows 1, 2, 3"),
        ("no_pixel_size", "'rlnCenteredCoordinateXAngst' is in Å"),
        ("tbl", "bad.tbl: row 2 has 30 columns"),
        ("junk", "junk.star: not a STAR file"),
    ],
)
@pytest.mark.parametrize("command", ["extract", "fit", "evaluate"])
def test_bad_particle_lists_exit_1(
    bad_lists, model, tmp_path, capsys, key, message, command
):
    out, lists = bad_lists
    star = lists[key]
    dest = tmp_path / "dest"
    if command == "extract":
        argv = ["extract", str(out), star, "-o", str(dest), "-q"]
    elif command == "fit":
        argv = [
            "fit",
            "--particles",
            star,
            "--tomograms",
            str(out),
            "-o",
            str(dest / "m.skavae"),
            *FIT,
        ]
    else:
        argv = [
            "evaluate",
            str(model),
            "--particles",
            star,
            "--tomograms",
            str(out),
            "--out",
            str(dest / "o.star"),
            "-q",
        ]
    capsys.readouterr()
    assert main(argv) == 1
    line = _error(capsys)
    assert message in line and line.startswith(f"skavae {command}: error:"), line
    assert not dest.exists() or not any(dest.iterdir())  # nothing written


@pytest.mark.filterwarnings("ignore:Data array contains NaN")
@pytest.mark.parametrize("command", ["extract", "fit"])
def test_nan_voxels_exit_1_naming_the_tomogram_and_row(tmp_path, capsys, command):
    data = np.zeros((16, 16, 16), np.float32)
    data[8, 8, 8] = np.nan
    tomo = tmp_path / "TS_01.mrc"
    with mrcfile.new(tomo) as mrc:
        mrc.set_data(data)
    picks = tmp_path / "picks.csv"
    picked = {"x": [4.0, 8.0, 4.0, 11.0], "y": [4.0, 8.0, 11.0, 4.0],
              "z": [4.0, 8.0, 4.0, 4.0], "class": ["a", "b", "a", "b"]}  # fmt: skip
    pd.DataFrame(picked).to_csv(picks, index=False)
    dest = tmp_path / "out"
    if command == "extract":
        argv = ["extract", str(tomo), str(picks), "--box", "8", "-o", str(dest)]
    else:
        argv = ["fit", "--particles", str(picks), "--tomograms", str(tomo),
                "--box", "8", "-o", str(dest / "m.skavae"), *FIT]  # fmt: skip
    capsys.readouterr()
    assert main([*argv, "-q"] if command == "extract" else argv) == 1
    line = _error(capsys)
    assert "TS_01.mrc: the box of particle row 2 holds 1 NaN or infinite" in line
    assert not dest.exists() or not any(dest.iterdir())


def test_box_larger_than_the_tomogram(tomos, tmp_path, capsys):
    _, out = tomos
    code = main(
        [
            "extract",
            str(out / "tomo_000.mrc"),
            str(out / "tomo_000.star"),
            "--box",
            "80",
            "-o",
            str(tmp_path / "x"),
            "-q",
        ]
    )
    assert code == 1
    assert "box 80 is larger than the tomogram" in _error(capsys)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "--particles", "{star}", "-o", "m.skavae"], "--particles needs "),
        (
            ["fit", "{out}", "--particles", "{star}", "--tomograms", "{out}"],
            "either DATA_DIR or --particles",
        ),
        (["fit", "--tomograms", "{out}"], "--tomograms needs --particles"),
        (["fit"], "give DATA_DIR"),
        (
            ["fit", "--particles", "{star}", "--tomograms", "{out}", "-o", "{star}"],
            "is the same file as --particles",
        ),
        (
            [
                "evaluate",
                "{model}",
                "--particles",
                "{star}",
                "--tomograms",
                "{out}",
                "--out",
                "{star}",
            ],
            "is the same file as --particles",
        ),
        (["extract", "{out}", "{star}", "-o", "{star}"], "is the same file as"),
        (
            ["simulate", "proteins", "x", "--n-particles", "3"],
            "--n-particles applies to `simulate tomogram` only",
        ),
    ],
)
def test_bad_options_exit_2(tomos, model, capsys, argv, message):
    _, out = tomos
    star = out / "tomo_001.star"
    before = star.read_bytes()
    values = {"star": str(star), "out": str(out), "model": str(model)}
    argv = [a.format(**values) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    assert message in _error(capsys)
    assert star.read_bytes() == before


def test_extract_help_has_examples(capsys):
    assert main(["extract", "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "skavae extract " in text


@pytest.mark.slow
def test_end_to_end_default_tomograms(tmp_path, capsys):
    """Two default tomograms (128 x 256 x 256 at 10 Å, 100 molecules each) to
    train, a third to classify: seen-class accuracy against ground truth
    (measured 0.78 on 100 particles, chance 1/6; about 2 minutes on 2 busy
    CPU cores)."""
    train, test = tmp_path / "train", tmp_path / "test"
    assert main(["simulate", "tomogram", str(train), "--n-tomograms", "2", "-q"]) == 0
    assert main(["simulate", "tomogram", str(test), "--seed", "2", "-q"]) == 0
    model = tmp_path / "run" / "model.skavae"
    code = main(
        [
            "fit",
            "--particles",
            str(train / "particles.star"),
            "--tomograms",
            str(train),
            "--affinity",
            str(train / "affinity.csv"),
            "--epochs",
            "40",
            "--latent-dims",
            "8",
            "-o",
            str(model),
            "-q",
        ]
    )
    assert code == 0
    star = tmp_path / "classified.star"
    code = main(
        [
            "evaluate",
            str(model),
            "--particles",
            str(test / "tomo_000.star"),
            "--tomograms",
            str(test),
            "--out",
            str(star),
            "-q",
        ]
    )
    assert code == 0
    result = _star(star)
    accuracy = float(
        (result["skavaeClassName"] == result["skavaeInputClassName"]).mean()
    )
    with capsys.disabled():
        print(
            f"\nend-to-end, default tomograms: seen-class accuracy {accuracy:.3f} "
            f"on {len(result)} particles of a held-out tomogram (chance 1/6)"
        )
    assert accuracy > 0.5


def test_simulate_tomogram_with_distractors(tmp_path, capsys):
    out = tmp_path / "d"
    args = ["simulate", "tomogram", str(out), "--shape", "48,96,96", "-q",
            "--n-particles", "6", "--fiducials", "2", "--vesicles", "1"]  # fmt: skip
    assert main(args) == 0
    assert len(_star(out / "tomo_000.star")) == 6  # beads and vesicles are no rows
    assert (
        "2 gold beads of 100 Å, 1 membrane vesicles" in (out / "README.txt").read_text()
    )
    bad = ["simulate", "tetraminos", str(tmp_path / "t"), "--fiducials", "1"]
    assert main(bad) == 2
    assert "--fiducials applies to `simulate tomogram` only" in _error(capsys)
