"""``skavae explore``: the interactive latent map of a folder, end to end
(and once in headless Chromium, in the slow suite)."""

import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("plotly")

from skavae.cli import main  # noqa: E402

TINY_FIT = ["--epochs", "1", "--latent-dims", "3", "--filters", "4,8", "-q"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A model fitted on seen characters and a folder of all twelve."""
    root = tmp_path_factory.mktemp("explore")
    train, test = root / "train", root / "test"
    common = ["--n-samples", "40", "--size", "16"]
    assert main(["simulate", "alphanumeric", str(train), *common]) == 0
    assert main(["simulate", "alphanumeric", str(test), *common, "--classes", "all",
                 "--seed", "1"]) == 0  # fmt: skip
    model = root / "run" / "model.skavae"
    assert main(["fit", str(train), "--affinity", str(train / "affinity.csv"),
                 "-o", str(model), *TINY_FIT]) == 0  # fmt: skip
    return root, model, test


def _explore(model, data, out, *extra):
    return main(["explore", str(model), str(data), "--out", str(out),
                 "--embedding", "pca", "-q", *extra])  # fmt: skip


def _meta(path):
    """The explorer's data (fig.layout.meta["skavae"]) read back from the page."""
    text = path.read_text(encoding="utf-8")
    start = text.index('"skavae":{"n":') + len('"skavae":')
    return json.JSONDecoder().raw_decode(text[start:])[0], text


def _error(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_explore_writes_one_self_contained_page(run, capsys):
    root, model, test = run
    out = root / "maps" / "map.html"  # its folder is created
    old = os.umask(0o027)
    try:
        assert _explore(model, test, out) == 0
    finally:
        os.umask(old)
    assert sorted(p.name for p in out.parent.iterdir()) == ["map.html"]
    assert out.stat().st_mode & 0o777 == 0o640  # umask honoured
    meta, text = _meta(out)
    # nothing fetched from a network: no script or stylesheet by address
    assert re.search(r"<script[^>]*\bsrc\s*=", text) is None
    assert re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", text) is None
    assert "plotly.js v" in text and "function skavaeExport" in text
    assert meta["n"] == 40 and len(meta["csv_rows"]) == 40
    assert len(meta["star_rows"]) == 40
    assert len(meta["thumbs"]) == 40 and len(meta["decoded"]) == 40
    assert text.count('"iVBORw0KGgo') == 80  # a thumbnail and a decoded PNG each
    assert meta["csv_header"].split(",")[:6] == [
        "index", "map_x", "map_y", "label", "prediction", "unknown",
    ]  # fmt: skip
    labels = {row.split(",")[3] for row in meta["csv_rows"]}
    assert labels == set("abdeijzk2pux")  # all twelve classes of the folder
    # the training map (40 latents of model.latents.csv) drawn under the objects
    assert "a (training)" in text and "on a training map of 40" in text
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith(f"Wrote {out}: 40 points (40 with pictures, ")
    assert summary.endswith(" s.") and " MB, " in summary
    size = float(summary.split(" MB, ")[0].rsplit(" ", 1)[1])
    assert size == pytest.approx(out.stat().st_size / 1e6, abs=0.01)


def test_explore_without_training_map_and_decoded(run):
    root, model, test = run
    out = root / "bare.html"
    assert _explore(model, test, out, "--no-reference", "--no-decoded") == 0
    meta, text = _meta(out)
    assert meta["decoded"] == [] and len(meta["thumbs"]) == 40
    assert "(training)" not in text


def test_explore_on_the_training_folder_itself(run):
    """Every training row is in the data: no separate reference layer (it was
    an empty array and a raw scikit-learn error)."""
    root, model, _ = run
    out = root / "train.html"
    assert _explore(model, root / "train", out) == 0
    meta, text = _meta(out)
    assert len(meta["thumbs"]) == 40
    assert "(training)" not in text


def test_explore_too_many_thumbnails_warns_in_one_line(run, capsys, monkeypatch):
    root, model, test = run
    out = root / "few.html"

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))

    monkeypatch.setattr(warnings, "showwarning", show)  # as outside pytest
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert _explore(model, test, out, "--max-thumbnails", "10") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "skavae: UserWarning: 40 objects are more than max_thumbnails=10 fit in "
        "one page: pictures of a random 10 only (every object is still drawn "
        "and exported)."
    ]
    meta, _ = _meta(out)
    assert len(meta["thumbs"]) == 10 and len(meta["csv_rows"]) == 40
    assert sum(k >= 0 for k in meta["pic_of"]) == 10


def test_explore_refusals(run, capsys, tmp_path, monkeypatch):
    root, model, test = run
    out = tmp_path / "map.html"
    out.write_text("mine")
    assert _explore(model, test, out) == 1
    assert "already exists; pass --overwrite" in _error(capsys)
    assert out.read_text() == "mine"

    fake = tmp_path / "model.skavae"
    fake.write_text("not a model")
    assert _explore(fake, test, tmp_path / "new.html") == 1
    assert repr(str(fake)) in _error(capsys)

    assert _explore(model, test, tmp_path / "map.csv") == 2
    line = _error(capsys)
    assert "--out" in line and "must be an .html file" in line

    assert main(["explore", str(model), "--out", str(tmp_path / "x.html")]) == 2
    assert "give DATA_DIR" in _error(capsys)

    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    assert _explore(model, test, tmp_path / "new.html") == 1
    assert _error(capsys) == (
        "skavae explore: error: explore needs plotly, an optional extra: pip "
        "install skavae[explore] (--debug shows the traceback)"
    )
    assert not (tmp_path / "new.html").exists()


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
@pytest.mark.skipif(
    _browser() is None,
    reason="no chromium, chromium-browser or google-chrome binary on PATH "
    "(apt-get install chromium)",
)
def test_explore_page_is_drawn_in_headless_chromium(run, tmp_path):
    from PIL import Image

    root, model, test = run
    page = tmp_path / "map.html"
    assert _explore(model, test, page) == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [_browser(), "--headless", "--disable-gpu", "--no-sandbox",
         f"--screenshot={shot}", "--window-size=1200,900",
         "--virtual-time-budget=5000", page.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape == (900, 1200, 3)

    def region(x0, x1, y0, y1):
        part = img[int(y0 * 900) : int(y1 * 900), int(x0 * 1200) : int(x1 * 1200)]
        part = part.reshape(-1, 3)
        ink = (part < 235).any(axis=1)  # not white (nor the light grid)
        colours = {tuple(c) for c in part[ink] // 16}
        return ink.mean(), len(colours)

    # the plotting area (left of the legend, below the buttons): points of
    # many colours; the legend (right of the map, left of the side panel)
    ink, colours = region(0.05, 0.62, 0.12, 0.80)
    assert ink > 0.003 and colours >= 10, (ink, colours)
    ink, colours = region(0.66, 0.76, 0.12, 0.60)
    assert ink > 0.01 and colours >= 8, (ink, colours)
    ink, _ = region(0.78, 1.0, 0.0, 0.2)  # the side panel's text and buttons
    assert ink > 0.01


def test_explore_reads_data_dir_as_fit_and_evaluate_do(run, capsys, tmp_path):
    """The folder options of fit/evaluate (labels, units) apply to explore."""
    root, model, test = run
    out = tmp_path / "regex.html"
    # every file in one class by a regular expression that keeps one letter
    code = _explore(model, test, out, "--label-regex", r"^(\w)", "--no-decoded")
    assert code == 0, capsys.readouterr().err
    meta, _ = _meta(out)
    labels = {row.split(",")[3] for row in meta["csv_rows"]}
    assert all(len(label) == 1 for label in labels)
    out = tmp_path / "unlabelled.html"
    assert _explore(model, test, out, "--unlabelled", "--no-decoded") == 0
    assert len(_meta(out)[0]["csv_rows"]) == 40
    # with --particles the labels come from the particle list
    code = main(["explore", str(model), "--particles", str(tmp_path / "p.star"),
                 "--tomograms", str(tmp_path), "--unlabelled",
                 "--out", str(tmp_path / "p.html"), "-q"])  # fmt: skip
    assert code == 2
    assert "--unlabelled applies to a DATA_DIR folder" in _error(capsys)
