"""The documentation builds without warnings and runs every gallery example."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))


@pytest.mark.slow
def test_docs_build(tmp_path):
    """Build a copy of doc/ and examples/ (about 15 minutes on 2 CPU cores)."""
    for module in ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme"):
        pytest.importorskip(module)
    outputs = ("_build", "auto_examples", "generated", "sg_execution_times.rst")
    shutil.copytree(
        ROOT / "doc", tmp_path / "doc", ignore=shutil.ignore_patterns(*outputs)
    )
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    html = tmp_path / "html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(tmp_path / "doc"),
            str(html),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert EXAMPLES, "no examples found"
    for name in EXAMPLES:
        page = html / "auto_examples" / f"{name}.html"
        assert page.exists(), f"no page for example {name}"
        assert "sphx-glr-download" in page.read_text(), name  # a gallery page
    plotting = [
        n for n in EXAMPLES if n not in ("plot_grid_search", "plot_mrc_folders")
    ]
    for name in plotting:
        assert list((html / "_images").glob(f"sphx_glr_{name}_*.png")), name
    for page in ("index", "api", "changelog", "install", "user_guide/scaling"):
        assert (html / f"{page}.html").exists(), page
    assert (html / "generated" / "skavae.AffinityVAE.html").exists()
