"""The CLI's files and interrupts: refusals, whole folders, Ctrl-C, configs."""

import os
import subprocess
import sys

import pytest

from skavae.cli import main

SMALL = ["--n-samples", "24", "--size", "16", "-q"]
TINY_FIT = ["--epochs", "1", "--latent-dims", "2", "--filters", "4", "-q"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("files") / "data"
    assert main(["simulate", "alphanumeric", str(root), *SMALL]) == 0
    return root


def _err(capsys):
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_ctrl_c_while_building_the_parser_exits_130(monkeypatch, capsys):
    import skavae.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["demo"]) == 130
    err = capsys.readouterr().err
    assert err == "skavae: interrupted\n" and "Traceback" not in err


def test_ctrl_c_in_exit_handlers_prints_no_traceback():
    """A Ctrl-C that lands in an exit handler after the command ended."""
    code = (
        "import atexit, os, signal, sys\n"
        "from skavae.cli import main\n"
        "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n"
        "sys.argv = ['skavae', '--version']\n"
        "sys.exit(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "Traceback" not in out.stderr


def test_simulate_overwrite_leaves_no_stale_files(tmp_path):
    out = tmp_path / "sim"
    big = ["--n-samples", "100", "--size", "16", "-q"]
    assert main(["simulate", "alphanumeric", str(out), *big]) == 0
    assert main(["simulate", "alphanumeric", str(out), *SMALL, "--overwrite"]) == 0
    assert len(list(out.glob("*.mrc"))) == 24
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_simulate_refuses_to_replace_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "notes.docx").write_text("mine")
    args = ["simulate", "alphanumeric", str(tmp_path), *SMALL, "--overwrite"]
    assert main(args) == 1
    assert "notes.docx" in _err(capsys)
    assert (tmp_path / "notes.docx").read_text() == "mine"


def test_fit_refuses_a_model_inside_the_data_folder(data, capsys):
    assert main(["fit", str(data), "-o", str(data / "model.mrc"), *TINY_FIT]) == 2
    assert "data folder" in _err(capsys)
    assert not (data / "model.mrc").exists()


def test_fit_checks_the_output_is_writable_before_training(
    data, tmp_path, monkeypatch, capsys
):
    import skavae._cli._fit as fit_module

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the output")

    monkeypatch.setattr(fit_module.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(fit_module, "_train", no_training)
    out = tmp_path / "ro" / "m.skavae"
    assert main(["fit", str(data), "-o", str(out), *TINY_FIT]) == 1
    assert str(out) in _err(capsys)


def test_config_folder_and_seed_range(data, tmp_path, capsys):
    assert main(["fit", str(data), "-c", str(tmp_path), *TINY_FIT]) == 2
    assert "is a folder" in _err(capsys)
    config = tmp_path / "c.toml"
    config.write_text("seed = 99999999999\n")
    assert main(["fit", str(data), "-c", str(config), *TINY_FIT]) == 2
    assert "seed" in _err(capsys)


def test_config_merges_top_level_keys_and_fit_table(data, tmp_path, capsys):
    from skavae._cli._config import load_config

    config = tmp_path / "c.toml"
    config.write_text("beta = 0.5\n[fit]\nepochs = 3\n")
    assert load_config(str(config)) == {"beta": 0.5, "epochs": 3}
    config.write_text("epochs = 2\n[fit]\nepochs = 3\n")
    assert main(["fit", str(data), "-c", str(config), *TINY_FIT]) == 2
    assert "'epochs' given both" in _err(capsys)


def test_evaluate_refuses_an_existing_out(data, tmp_path, capsys):
    model = tmp_path / "m.skavae"
    assert main(["fit", str(data), "-o", str(model), *TINY_FIT]) == 0
    out = tmp_path / "res"
    args = ["evaluate", str(model), str(data), "--out", str(out), "-q"]
    assert main([*args, "--no-figures"]) == 0
    assert {"metrics.csv", "README.txt", "metrics.json"} <= set(os.listdir(out))
    assert main([*args, "--no-figures"]) == 1
    assert "--overwrite" in _err(capsys)
    assert main([*args, "--no-figures", "--overwrite"]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_full_disk_names_the_file_and_leaves_nothing(
    data, tmp_path, capsys, monkeypatch
):
    """ENOSPC carries no file name: simulate and evaluate name the path."""
    import mrcfile
    import pandas as pd

    with monkeypatch.context() as m:
        m.setattr(mrcfile, "new", _disk_full)
        out = tmp_path / "sim"
        assert main(["simulate", "alphanumeric", str(out), *SMALL]) == 1
        err = _err(capsys)
        assert "No space left on device" in err and ".mrc'" in err, err
        assert not out.exists()
    model = tmp_path / "m.skavae"
    assert main(["fit", str(data), "-o", str(model), *TINY_FIT]) == 0
    with monkeypatch.context() as m:
        m.setattr(pd.DataFrame, "to_csv", _disk_full)
        res = tmp_path / "res"
        args = ["evaluate", str(model), str(data), "--out", str(res), "-q"]
        assert main([*args, "--no-figures"]) == 1
        err = _err(capsys)
        assert "No space left on device" in err and ".csv'" in err, err
        assert not res.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_config_reads_with_tomli_where_tomllib_is_missing(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: the tomli package (same API) is used."""
    import types

    from skavae._cli._config import load_config

    tomllib = pytest.importorskip("tomllib")  # the parser tomli stands in for

    calls = []
    tomli = types.ModuleType("tomli")

    def load(fh):
        calls.append(fh)
        return tomllib.load(fh)

    tomli.load, tomli.loads = load, tomllib.loads
    tomli.TOMLDecodeError = tomllib.TOMLDecodeError
    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib fails
    monkeypatch.setitem(sys.modules, "tomli", tomli)
    path = tmp_path / "c.toml"
    path.write_text("epochs = 3\n[fit]\nlatent-dims = 2\n")
    config = load_config(str(path))
    assert calls, "tomli was not used"
    assert config["epochs"] == 3 and config["latent_dims"] == 2, config


def test_fit_never_replaces_its_config_or_other_files(data, tmp_path, capsys):
    """-c q.toml -o q.skavae once replaced the user's settings with ours."""
    config = tmp_path / "q.toml"
    config.write_text("epochs = 1\nlatent-dims = 2\nfilters = [4]\n")
    model = tmp_path / "q.skavae"
    args = ["fit", str(data), "-c", str(config), "-o", str(model), "-q"]
    assert main(args) == 2
    assert "that is the --config file" in _err(capsys)
    assert config.read_text().startswith("epochs = 1")
    assert not model.exists()
    assert main([*args, "--overwrite"]) == 0  # asked: replaced by our settings
    assert "epochs = 1  # config" in config.read_text()
    # an existing sidecar of another run is refused without --overwrite
    other = tmp_path / "r.skavae"
    (tmp_path / "r.latents.csv").write_text("keep me\n")
    args = ["fit", str(data), "-c", str(config), "-o", str(other), "-q"]
    assert main(args) == 1
    err = _err(capsys)
    assert "r.latents.csv" in err and "--overwrite" in err, err
    assert (tmp_path / "r.latents.csv").read_text() == "keep me\n"
    assert main([*args, "--overwrite"]) == 0
