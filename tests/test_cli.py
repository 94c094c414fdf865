"""The ``skavae`` command line, driven in-process through ``skavae.cli.main``
(and once through the installed console script for the exit codes)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import skavae
from skavae import AffinityVAE
from skavae.affinity import read_affinity_csv
from skavae.cli import main
from skavae.datasets import (
    ALPHANUMERIC_CHARACTERS,
    ALPHANUMERIC_SEEN,
    ALPHANUMERIC_UNSEEN,
    load_mrc_folder,
)

NOT_TRAINED = sorted(set(ALPHANUMERIC_CHARACTERS) - set(ALPHANUMERIC_SEEN))

TINY_FIT = ["--epochs", "1", "--latent-dims", "3", "--filters", "4,8", "-q"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A training folder of seen characters and a test folder of all twelve."""
    root = tmp_path_factory.mktemp("cli")
    train, test = root / "train", root / "test"
    common = ["--n-samples", "40", "--size", "16"]
    assert main(["simulate", "alphanumeric", str(train), *common]) == 0
    assert main(["simulate", "alphanumeric", str(test), *common, "--classes", "all",
                 "--seed", "1"]) == 0  # fmt: skip
    return root, train, test


@pytest.fixture(scope="module")
def model(folders):
    root, train, _ = folders
    path = root / "run" / "model.skavae"
    code = main(["fit", str(train), "--affinity", str(train / "affinity.csv"),
                 "-o", str(path), *TINY_FIT])  # fmt: skip
    assert code == 0
    return path


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error message"
    return err[-1]


# ----------------------------------------------------------------- help, usage
def test_version_and_help_with_examples(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == skavae.__version__
    for command in ("demo", "simulate", "affinity", "fit", "evaluate"):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "examples:" in out and f"skavae {command} " in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["fit"],
        ["fit", "data", "--epochs", "0"],
        ["fit", "data", "--beta", "strong"],
        ["fit", "data", "--filters", "8,x"],
        ["fit", "data", "--metric", "fsc", "--affinity", "a.csv"],
        ["simulate", "mnist", "out"],
        ["affinity", "data", "--metric", "fsc"],  # -o is required
        ["evaluate", "model.skavae", "data", "--n-neighbors", "-1"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


# -------------------------------------------------------------------- simulate
def test_simulate_writes_labelled_folder_templates_and_affinity(folders):
    _, train, test = folders
    X, y = load_mrc_folder(train)
    assert X.shape == (40, 16, 16)
    assert set(y) == set(ALPHANUMERIC_SEEN)
    templates, t_labels = load_mrc_folder(train / "templates")
    assert sorted(t_labels) == sorted(ALPHANUMERIC_SEEN)
    A = read_affinity_csv(train / "affinity.csv")
    assert sorted(A.index) == sorted(ALPHANUMERIC_SEEN)
    assert np.allclose(np.diag(A), 1.0) and np.allclose(A, A.T)
    info = pd.read_csv(train / "info.csv", dtype={"label": str})
    assert set(info["file"]) == {p.name for p in train.glob("*.mrc")}
    assert (info["file"].str.split("_").str[0] == info["label"]).all()
    assert info["angle"].abs().max() <= 45
    _, y_test = load_mrc_folder(test)
    assert set(ALPHANUMERIC_UNSEEN) <= set(y_test)


def test_simulate_volumes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "tetra"
    args = ["simulate", "tetraminos", str(out), "--n-samples", "12", "--size", "8"]
    assert main(args) == 0
    X, y = load_mrc_folder(out)
    assert X.shape == (12, 8, 8, 8)
    assert main(args) == 1  # files exist
    assert "already exists" in _error_line(capsys)
    assert main([*args, "--overwrite"]) == 0
    assert main(["simulate", "proteins", str(tmp_path / "p"), "--classes", "seen"]) == 2


# -------------------------------------------------------------------- affinity
def test_affinity_command_writes_class_matrix(folders, tmp_path, capsys):
    _, train, _ = folders
    out = tmp_path / "aff.csv"
    code = main(["affinity", str(train), "--metric", "mean-difference", "-o", str(out),
                 "--n-per-class", "3", "-q"])  # fmt: skip
    assert code == 0
    A = read_affinity_csv(out)
    assert sorted(A.index) == sorted(ALPHANUMERIC_SEEN)
    assert np.allclose(np.diag(A), 1.0) and np.allclose(A, A.T)
    assert (A.to_numpy() < 1).sum() == len(A) * (len(A) - 1)
    assert "Written to" in capsys.readouterr().out


# ------------------------------------------------------------------------- fit
def test_fit_saves_a_skavae_model_file_and_the_settings_used(folders, model):
    _, train, _ = folders
    assert zipfile.is_zipfile(model)  # the safe format, not a pickle
    vae = skavae.load(model)
    assert isinstance(vae, AffinityVAE)
    assert vae.n_iter_ == 1 and vae.latent_dims == 3 and vae.filters == (4, 8)
    assert sorted(vae.classes_) == sorted(ALPHANUMERIC_SEEN)
    assert vae.transform(load_mrc_folder(train, mmap=False)[0]).shape == (40, 3)
    run = model.parent
    config = tomllib.loads((run / "model.toml").read_text())
    assert config["epochs"] == 1 and config["latent_dims"] == 3
    assert config["filters"] == [4, 8] and config["beta"] == 1.0
    assert config["affinity"] == str(train / "affinity.csv")
    assert config["run"]["n_files"] == 40 and config["run"]["interrupted"] is False
    history = pd.read_csv(run / "model.history.csv")
    assert list(history["epoch"]) == [1]
    latents = pd.read_csv(run / "model.latents.csv", dtype={"label": str})
    assert list(latents.columns[:3]) == ["path", "file", "label"]
    model = skavae.load(run / "model.skavae")
    names = list(model.set_output(transform="pandas").get_feature_names_out())
    assert names == ["affinityvae0", "affinityvae1", "affinityvae2"]
    assert [*names, "pose0"] == [
        c for c in latents.columns if c not in latents.columns[:3]
    ]
    assert set(latents["file"]) == {p.name for p in train.glob("*.mrc")}
    assert read_affinity_csv(run / "model.affinity.csv").shape == (8, 8)
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]


def test_fit_config_file_and_command_line_precedence(folders, tmp_path):
    _, train, _ = folders
    config = tmp_path / "settings.toml"
    config.write_text(
        'metric = "mean-difference"\nlatent_dims = 2\nepochs = 3\n'
        "filters = [4, 8]\nn_per_class = 2\n"
    )
    out = tmp_path / "m.skavae"
    assert main(["fit", str(train), "-c", str(config), "--epochs", "1", "-o",
                 str(out), "-q"]) == 0  # fmt: skip
    vae = skavae.load(out)
    assert vae.latent_dims == 2 and vae.n_iter_ == 1
    saved = (tmp_path / "m.toml").read_text()
    assert "epochs = 1  # command line" in saved
    assert "latent_dims = 2  # config" in saved
    assert "beta = 1.0  # default" in saved
    # the saved settings are a valid config ([run] is ignored)
    assert main(["fit", str(train), "-c", str(tmp_path / "m.toml"), "--overwrite",
                 "-q"]) == 0  # fmt: skip
    assert skavae.load(out).latent_dims == 2


@pytest.mark.parametrize(
    "text, code, words",
    [
        ("epochs = 0\n", 2, ["epochs"]),
        ("latent_dim = 4\n", 2, ["unknown setting", "latent_dim"]),
        ("beta = 'high'\n", 2, ["beta", "not a number"]),
        ("epochs = [1\n", 1, ["not valid TOML"]),
    ],
)
def test_fit_config_errors(folders, tmp_path, capsys, text, code, words):
    _, train, _ = folders
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["fit", str(train), "-c", str(config), "-o",
                 str(tmp_path / "m.skavae")]) == code  # fmt: skip
    line = _error_line(capsys)
    assert str(config) in line and all(w in line for w in words)


def test_fit_data_errors_name_the_file(folders, tmp_path, capsys):
    _, train, _ = folders
    out = str(tmp_path / "m.skavae")
    missing = str(tmp_path / "nowhere")
    assert main(["fit", missing, "-o", out]) == 1
    assert missing in _error_line(capsys)
    # affinity CSV missing a class
    partial = tmp_path / "partial.csv"
    A = read_affinity_csv(train / "affinity.csv").drop(index="z", columns="z")
    A.to_csv(partial)
    assert main(["fit", str(train), "--affinity", str(partial), "-o", out]) == 1
    line = _error_line(capsys)
    assert str(partial) in line and "'z'" in line
    assert main(["fit", str(train), "--affinity", str(tmp_path / "no.csv"),
                 "-o", out]) == 1  # fmt: skip
    assert "no.csv" in _error_line(capsys)
    assert main(["fit", str(train), "--device", "gpu0", "-o", out]) == 2
    assert "--device" in _error_line(capsys)
    Path(out).write_text("precious")
    assert main(["fit", str(train), "-o", out, *TINY_FIT]) == 1
    assert "--overwrite" in _error_line(capsys)
    assert Path(out).read_text() == "precious"


def test_fit_streams_large_folders_from_the_files(folders, tmp_path, monkeypatch):
    import skavae._cli._fit as fit_module
    from skavae.datasets import MRCStack

    _, train, _ = folders
    seen = []
    real_fit = AffinityVAE.fit

    def fit(self, X, y=None):
        seen.append(type(X))
        return real_fit(self, X, y)

    monkeypatch.setattr(fit_module, "IN_MEMORY_BYTES", 1000)
    monkeypatch.setattr(AffinityVAE, "fit", fit)
    out = tmp_path / "m.skavae"
    assert main(["fit", str(train), "-o", str(out), *TINY_FIT]) == 0
    assert seen == [MRCStack]
    assert skavae.load(out).n_iter_ == 1


def _interrupt_validation(monkeypatch, on_call):
    import skavae._training as training

    real, calls = training.evaluate_loss, []

    def evaluate_loss(*args, **kwargs):
        calls.append(1)
        if len(calls) == on_call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate_loss", evaluate_loss)


def test_ctrl_c_during_fit_saves_the_model_trained_so_far(
    folders, tmp_path, monkeypatch, capsys
):
    _, train, _ = folders
    _interrupt_validation(monkeypatch, on_call=2)  # during epoch 2
    out = tmp_path / "m.skavae"
    args = ["fit", str(train), "--metric", "none", "-o", str(out), *TINY_FIT]
    args[args.index("--epochs") + 1] = "5"
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted after 1 complete epoch" in err and str(out) in err
    vae = skavae.load(out)
    assert vae.n_iter_ == 1
    assert vae.transform(load_mrc_folder(train, mmap=False)[0][:4]).shape == (4, 3)
    config = tomllib.loads((tmp_path / "m.toml").read_text())
    assert config["run"]["interrupted"] is True
    assert config["run"]["epochs_trained"] == 1


def test_ctrl_c_before_the_first_epoch_saves_nothing(
    folders, tmp_path, monkeypatch, capsys
):
    _, train, _ = folders
    _interrupt_validation(monkeypatch, on_call=1)
    out = tmp_path / "m.skavae"
    assert main(["fit", str(train), "-o", str(out), *TINY_FIT]) == 130
    assert "no model saved" in capsys.readouterr().err
    assert not out.exists()
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------------- evaluate
def test_evaluate_writes_latents_knn_results_and_figures(folders, model, capsys):
    root, _, test = folders
    out = root / "results"
    assert main(["evaluate", str(model), str(test), "--out", str(out),
                 "--embedding", "pca", "-q"]) == 0  # fmt: skip
    stdout = capsys.readouterr().out
    assert "Hard KNN (k=5) accuracy on held-out seen classes" in stdout
    for name in ("embedding.png", "confusion_matrix.png", "traversals.png",
                 "history.png"):  # fmt: skip
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    latents = pd.read_csv(out / "latents.csv", dtype={"label": str})
    assert set(latents["file"]) == {p.name for p in test.glob("*.mrc")}
    assert (latents["file"].str.split("_").str[0] == latents["label"]).all()
    unseen = ~latents["label"].isin(ALPHANUMERIC_SEEN)
    assert (latents["seen"] == ~unseen).all()
    assert latents.loc[unseen, "knn_correct"].isna().all()
    assert latents.loc[~unseen, "knn_correct"].notna().all()
    assert latents["knn_prediction"].isin(ALPHANUMERIC_SEEN).all()
    assert not latents["in_reference"].any()
    soft = pd.read_csv(out / "soft_knn.csv", dtype={"label": str})
    assert np.allclose(soft[sorted(ALPHANUMERIC_SEEN)].sum(axis=1), 1.0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["unseen_classes"] == NOT_TRAINED  # 2 p u x
    assert set(metrics["unseen"]) == set(NOT_TRAINED)
    assert metrics["evaluation"] == "held-out"
    seen_rows = latents[~unseen]
    expected = (seen_rows["knn_prediction"] == seen_rows["label"]).mean()
    assert metrics["knn_accuracy_seen"] == pytest.approx(expected)
    report = pd.read_csv(out / "metrics.csv", dtype={"label": str}).set_index("label")
    assert not report.loc[NOT_TRAINED, "seen"].any()
    assert report.loc[NOT_TRAINED, "accuracy"].isna().all()


def test_evaluate_training_folder_is_cross_validated(folders, model, tmp_path):
    _, train, _ = folders
    out = tmp_path / "res"
    assert main(["evaluate", str(model), str(train), "--out", str(out),
                 "--no-figures", "-q"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluation"] == "cross-validation"
    assert metrics["unseen_classes"] == [] and metrics["n_seen_evaluated"] == 40
    assert pd.read_csv(out / "latents.csv")["in_reference"].all()
    assert not list(out.glob("*.png"))


def test_evaluate_errors_name_the_file(folders, model, tmp_path, capsys):
    _, train, _ = folders
    out = str(tmp_path / "res")
    bad_model = tmp_path / "bad.skavae"
    bad_model.write_bytes(b"not a pickle")
    assert main(["evaluate", str(bad_model), str(train), "--out", out]) == 1
    assert str(bad_model) in _error_line(capsys)
    assert main(["evaluate", str(tmp_path / "none.skavae"), str(train)]) == 1
    assert "none.skavae" in _error_line(capsys)
    # unreadable .mrc file
    broken = tmp_path / "broken"
    shutil.copytree(train, broken, ignore=shutil.ignore_patterns("templates"))
    (broken / "a_99999.mrc").write_bytes(b"\0" * 100)
    assert main(["evaluate", str(model), str(broken), "--out", out]) == 1
    assert "a_99999.mrc" in _error_line(capsys)
    # mixed shapes
    mixed = tmp_path / "mixed"
    main(["simulate", "alphanumeric", str(mixed), "--n-samples", "8", "--size", "16"])
    capsys.readouterr()
    main(["simulate", "alphanumeric", str(tmp_path / "big"), "--n-samples", "1",
          "--size", "20"])  # fmt: skip
    shutil.copy(next((tmp_path / "big").glob("*.mrc")), mixed / "z_99999.mrc")
    assert main(["evaluate", str(model), str(mixed), "--out", out]) == 1
    assert "z_99999.mrc" in _error_line(capsys)
    # objects of another shape than the model's
    assert main(["evaluate", str(model), str(tmp_path / "big"), "--out", out]) == 1
    assert "shape" in _error_line(capsys)


def test_evaluate_model_fitted_without_labels(folders, tmp_path):
    _, train, _ = folders
    X, _ = load_mrc_folder(train, mmap=False)
    vae = AffinityVAE(latent_dims=2, filters=(4, 8), max_epochs=1, random_state=0)
    vae.fit(X).save(tmp_path / "unsup.skavae")
    out = tmp_path / "res"
    assert main(["evaluate", str(tmp_path / "unsup.skavae"), str(train), "--out",
                 str(out), "--no-figures", "-q"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluation"] == "cross-validation"
    assert sorted(metrics["seen_classes"]) == sorted(ALPHANUMERIC_SEEN)
    assert "seen-class files" in metrics["reference"]


def test_evaluate_parquet_needs_pyarrow(folders, model, tmp_path, capsys):
    _, train, _ = folders
    argv = ["evaluate", str(model), str(train), "--out", str(tmp_path / "res"),
            "--format", "parquet", "--no-figures", "-q"]  # fmt: skip
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert main(argv) == 1
        assert "pyarrow" in _error_line(capsys)
    else:
        assert main(argv) == 0
        latents = pd.read_parquet(tmp_path / "res" / "latents.parquet")
        assert len(latents) == 40


def test_data_folder_symlinks_outside_need_follow_symlinks(
    folders, model, tmp_path, capsys
):
    _, train, _ = folders
    links = tmp_path / "links"
    links.mkdir()
    for f in sorted(train.glob("*.mrc")):
        (links / f.name).symlink_to(f)
    out = str(tmp_path / "res")
    for argv in (
        ["affinity", str(links), "--metric", "mean-difference", "-o",
         str(tmp_path / "a.csv"), "-q"],
        ["fit", str(links), "-o", str(tmp_path / "m.skavae"), *TINY_FIT],
        ["evaluate", str(model), str(links), "--out", out, "--no-figures", "-q"],
    ):  # fmt: skip
        assert main(argv) == 1
        line = _error_line(capsys)
        assert "symbolic link" in line and "--follow-symlinks" in line
        assert main([*argv, "--follow-symlinks"]) == 0


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="nowhere"):
        main(["--debug", "fit", str(tmp_path / "nowhere")])


def test_console_script_exit_codes(tmp_path):
    script = shutil.which("skavae", path=os.path.dirname(sys.executable))
    assert script is not None
    missing = str(tmp_path / "nowhere")
    run = subprocess.run([script, "fit", missing], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and missing in run.stderr
    assert "Traceback" not in run.stderr
    run = subprocess.run(
        [script, "fit", missing, "--epochs", "zero"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "--epochs" in run.stderr


# ------------------------------------------------------------------------ demo
def test_demo_tiny_writes_figures_and_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--n-samples", "160", "--size", "16", "--epochs", "1",
                 "--out", str(out)]) == 0  # fmt: skip
    stdout = capsys.readouterr().out
    assert "Hard KNN (k=5) accuracy on held-out seen characters:" in stdout
    assert "Unseen characters on the latent map (nearest seen class):" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["unseen"]) == set(ALPHANUMERIC_UNSEEN)
    assert 0 <= metrics["knn_accuracy_seen"] <= 1
    for name in ("embedding.png", "confusion_matrix.png", "traversals.png",
                 "history.png", "metrics.csv", "history.csv", "affinity.csv",
                 "latents.csv"):  # fmt: skip
        assert (out / name).stat().st_size > 0


@pytest.mark.slow
def test_demo_default_shows_the_method_working(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["knn_accuracy_seen"] >= 0.95
    assert metrics["unseen"]["2"]["nearest_centre"] == "z"
    assert "2: nearest centre z" in capsys.readouterr().out


def test_fit_splat_decoder_schedules_and_checkpoints(folders, tmp_path):
    _, train, _ = folders
    out = tmp_path / "splat" / "model.skavae"
    ckpt = tmp_path / "ckpt"
    code = main(["fit", str(train), "-o", str(out), "--epochs", "2", "-q",
                 "--latent-dims", "3", "--filters", "4,8", "--decoder", "splat",
                 "--n-splats", "4", "--beta-schedule", "cosine",
                 "--schedule-cycles", "1", "--checkpoint-dir", str(ckpt),
                 "--metric", "none"])  # fmt: skip
    assert code == 0
    vae = skavae.load(out)
    assert vae.decoder == "splat" and vae.beta_schedule == "cosine"
    assert list(vae.history_["beta"]) == [0.0, 1.0]
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "checkpoint-000001.pt",
        "checkpoint-000002.pt",
    ]
    config = tomllib.loads((out.parent / "model.toml").read_text())
    assert config["decoder"] == "splat" and config["schedule_cycles"] == 1


def test_fit_rejects_bad_schedule_settings(folders, tmp_path, capsys):
    _, train, _ = folders
    args = ["fit", str(train), "-o", str(tmp_path / "m.skavae"), "-q"]
    assert main([*args, "--beta-schedule", "wavy"]) == 2
    assert main([*args, "--schedule-ratio", "1.5"]) == 2
    assert main([*args, "--decoder", "splat", "--pose-dims", "2", "--epochs", "1",
                 "--metric", "none"]) == 1  # fmt: skip
    assert "pose_dims" in _error_line(capsys)


def test_fit_settings_follow_the_estimators_defaults_and_constraints():
    """Defaults, limits and choices of the estimator-backed settings are read
    from AffinityVAE, so a change there reaches `skavae fit` unedited."""
    from sklearn.utils._param_validation import InvalidParameterError

    from skavae._cli._config import ESTIMATOR_SETTINGS, SETTINGS
    from skavae._schedules import SCHEDULE_NAMES

    defaults = AffinityVAE().get_params()
    for name, param in ESTIMATOR_SETTINGS.items():
        default = defaults[param]
        assert SETTINGS[name][1] == (
            list(default) if isinstance(default, tuple) else default
        ), name
    probes = {
        "latent_dims": ["0", "1"],
        "pose_dims": ["-1", "0"],
        "beta": ["-0.5", "0"],
        "epochs": ["0", "2"],
        "batch_size": ["1", "2"],
        "learning_rate": ["0", "1e-4"],
        "validation_fraction": ["1", "0.99"],
        "schedule_ratio": ["0", "1"],
        "max_grad_norm": ["0", "none"],
        "precision": ["fp16", "bf16"],
        "decoder": ["gauss", "splat"],
        "threads": ["0", "none"],
    }
    for name, (bad, good) in probes.items():
        check, param = SETTINGS[name][0], ESTIMATOR_SETTINGS[name]
        with pytest.raises(ValueError):
            check(bad)
        value = check(good)
        AffinityVAE(**{param: value})._validate_params()  # the estimator agrees
        with pytest.raises(InvalidParameterError):
            AffinityVAE(
                **{param: type(value)(bad) if value is not None else -1}
            )._validate_params()
    for name in ("beta_schedule", "gamma_schedule"):
        for schedule in SCHEDULE_NAMES:
            assert SETTINGS[name][0](schedule) == schedule


def test_ctrl_c_while_the_console_script_imports_skavae_exits_130(tmp_path):
    """A Ctrl-C during ``import skavae`` (torch loads for seconds) gets one
    line and exit code 130, not the console-script wrapper's traceback. The
    interrupt is raised deterministically by an import hook on torch."""
    program = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            raise KeyboardInterrupt\n"
        "for name in [m for m in sys.modules if m.startswith(('torch', 'skavae'))]:\n"
        "    del sys.modules[name]\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "import _skavae_entry\n"
        "sys.exit(_skavae_entry.main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "skavae: interrupted"


def test_evaluate_on_a_dask_cluster_gives_the_local_results(folders, model, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    _, _, test = folders
    local, remote = tmp_path / "local", tmp_path / "remote"
    common = [str(model), str(test), "--no-figures", "-q"]
    assert main(["evaluate", *common, "--out", str(local)]) == 0
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address=None,
    ) as cluster:
        argv = ["evaluate", *common, "--out", str(remote)]
        assert main([*argv, "--scheduler", cluster.scheduler_address]) == 0
    a = pd.read_csv(local / "latents.csv")
    b = pd.read_csv(remote / "latents.csv")
    numbers = a.select_dtypes("number").columns
    np.testing.assert_allclose(b[numbers], a[numbers], rtol=1e-5, atol=1e-6)
    pd.testing.assert_series_equal(a["knn_prediction"], b["knn_prediction"])
    ma = json.loads((local / "metrics.json").read_text())
    mb = json.loads((remote / "metrics.json").read_text())
    assert ma["knn_accuracy_seen"] == mb["knn_accuracy_seen"]


def test_evaluate_scheduler_that_does_not_answer(folders, model, tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    _, _, test = folders
    argv = ["evaluate", str(model), str(test), "--out", str(tmp_path / "e"), "-q"]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:9"]) == 1
    line = _error_line(capsys)
    assert "--scheduler" in line and "tcp://127.0.0.1:9" in line
    assert not (tmp_path / "e").exists()


def test_settings_from_other_constraints_are_checked_by_sklearn():
    """Integer ranges with an upper bound, and constraints the CLI has no
    parser of its own for, are still checked (scikit-learn's own check)."""
    from numbers import Integral

    from sklearn.utils._param_validation import Interval, StrOptions

    from skavae._cli._config import _interval_check, _sklearn_check

    bounded = _interval_check(Interval(Integral, 1, 5, closed="left"))
    assert bounded("4") == 4
    with pytest.raises(ValueError, match="4"):
        bounded("5")
    mixed = _sklearn_check("x", [Interval(Integral, 1, None, closed="left"),
                                 StrOptions({"auto"}), "boolean"])  # fmt: skip
    assert mixed("3") == 3 and mixed("auto") == "auto" and mixed("false") is False
    with pytest.raises(ValueError, match="'x' parameter of AffinityVAE"):
        mixed("0")
    with pytest.raises(ValueError, match="'x' parameter of AffinityVAE"):
        mixed("sometimes")
