"""``skavae affinity``: the class-level matrix of a folder, and its refusals."""

import numpy as np
import pandas as pd
import pytest

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, read_affinity_csv
from skavae.cli import main
from skavae.datasets import load_mrc_folder


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """A folder of small tetraminos, more members per class than are sampled."""
    root = tmp_path_factory.mktemp("affinity") / "tetra"
    args = ["simulate", "tetraminos", str(root), "--n-samples", "150", "--size", "8"]
    assert main([*args, "--seed", "2"]) == 0
    return root


def test_affinity_matches_fit_sampling(volumes, tmp_path):
    """One seed gives one matrix: ``skavae affinity`` samples the members as
    ``fit(affinity=FSCAffinity())`` does (same order, same generator)."""
    out = tmp_path / "a.csv"
    args = ["affinity", str(volumes), "--metric", "fsc", "-o", str(out)]
    assert main([*args, "--n-per-class", "16", "--seed", "3", "-q"]) == 0
    cli = read_affinity_csv(out)
    X, y = load_mrc_folder(volumes)
    assert pd.Series(y).value_counts().min() > 16  # the sampling matters
    vae = AffinityVAE(
        affinity=FSCAffinity(), latent_dims=2, filters=(2,), max_epochs=1,
        batch_size=32, random_state=3,
    ).fit(X, y)  # fmt: skip
    fitted = vae.affinity_matrix_
    assert list(cli.index) == list(fitted.index)
    np.testing.assert_allclose(cli.to_numpy(), fitted.to_numpy(), atol=1e-6)
    other = tmp_path / "b.csv"
    args = ["affinity", str(volumes), "--metric", "fsc", "-o", str(other)]
    assert main([*args, "--seed", "4", "-q"]) == 0
    assert not np.allclose(read_affinity_csv(other).to_numpy(), cli.to_numpy())


@pytest.mark.parametrize("where", ["folder", "inside"])
def test_affinity_output_is_not_the_data_folder(volumes, where, capsys):
    """``skavae affinity D -o D`` (or a .mrc inside D) is refused clearly."""
    out = volumes if where == "folder" else volumes / "x.mrc"
    assert main(["affinity", str(volumes), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "-o" in err and str(volumes) in err
    assert not (volumes / "x.mrc").exists()


def test_affinity_bad_seed(volumes, tmp_path, capsys):
    out = tmp_path / "a.csv"
    assert main(["affinity", str(volumes), "-o", str(out), "--seed", "-1"]) == 2
    assert "--seed" in capsys.readouterr().err
