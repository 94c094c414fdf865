"""Tests of the interactive latent map (plot_latent_map, write_latent_map)."""

import numpy as np
import pytest

pytest.importorskip("plotly")

from skavae.plotting import plot_latent_map, write_latent_map  # noqa: E402


@pytest.fixture(scope="module")
def latents():
    rng = np.random.RandomState(0)
    Z = np.vstack([rng.normal(0, 1, (12, 3)), rng.normal(5, 1, (12, 3))])
    y = np.repeat(["a", "b"], 12)
    pictures = rng.rand(24, 8, 8)
    return Z, y, pictures


def test_traces_and_colourings(latents):
    Z, y, pics = latents
    pred = np.where(np.arange(24) % 6 == 0, "unknown", y)
    fig = plot_latent_map(None, Z, y, method="pca", predictions=pred, thumbnails=pics)
    names = [t.name for t in fig.data]
    assert names == ["a", "b", "a", "b", "unknown", "known", "unknown"]
    assert [t.visible for t in fig.data] == [True, True] + [False] * 5
    assert sum(len(t.x) for t in fig.data[:2]) == 24
    assert len(fig.layout.updatemenus[0].buttons) == 3
    meta = fig.layout.meta["skavae"]
    assert len(meta["thumbs"]) == 24 and meta["decoded"] == []
    assert len(meta["csv_rows"]) == 24 and len(meta["star_rows"]) == 24


def test_html_is_one_self_contained_file(latents, tmp_path):
    Z, y, pics = latents
    path = write_latent_map(
        tmp_path / "map.html", None, Z, y, method="pca", thumbnails=pics
    )
    text = open(path, encoding="utf-8").read()
    assert [p.name for p in tmp_path.iterdir()] == ["map.html"]
    assert "plotly.js v" in text or "Plotly" in text
    assert "<script src=" not in text  # nothing fetched from a network
    for fn in ("function skavaeExport", "plotly_selected", "new Blob"):
        assert fn in text
    assert text.count('"iVBORw0KGgo') == 24  # one PNG string per object


def test_too_many_thumbnails_are_subsampled(latents):
    Z, y, pics = latents
    with pytest.warns(UserWarning, match="24 objects are more than max_thumbnails=5"):
        fig = plot_latent_map(
            None, Z, y, method="pca", thumbnails=pics, max_thumbnails=5, random_state=0
        )
    meta = fig.layout.meta["skavae"]
    assert len(meta["thumbs"]) == 5 and sum(k >= 0 for k in meta["pic_of"]) == 5


def test_bad_input(latents):
    Z, y, _ = latents
    with pytest.raises(ValueError, match="method must be one of"):
        plot_latent_map(None, Z, y, method="bogus")
    with pytest.raises(ValueError, match="needs model"):
        plot_latent_map(None, Z, y, method="pca")
    with pytest.raises(ValueError, match="y has 3 labels"):
        plot_latent_map(None, Z, y[:3], method="pca", thumbnails=False)


def test_star_rows_number_classes_in_the_model_order(latents):
    """rlnClassNumber of the lasso's .star export: the model's classes_ order
    (as skavae evaluate writes it), then the other predictions ("unknown")."""
    import pandas as pd

    from skavae._plotting._map_export import export_data

    Z, y, _ = latents
    particles = pd.DataFrame(
        {"tomo_name": ["t1"] * 24, "x": 1.0 * np.arange(24), "y": 2.0, "z": 3.0}
    )
    pred = np.where(np.arange(24) % 6 == 0, "unknown", y)
    meta = export_data(
        np.zeros((24, 2)), Z, y, pred, None, particles, [], [], [], ["b", "a"]
    )
    columns = [line.split()[0] for line in meta["star_head"].splitlines()
               if line.startswith("_rln") or line.startswith("_skavae")]  # fmt: skip
    number = columns.index("_rlnClassNumber")
    got = [int(row.split()[number]) for row in meta["star_rows"]]
    expected = [{"b": 1, "a": 2, "unknown": 3}[p] for p in pred]
    assert got == expected
