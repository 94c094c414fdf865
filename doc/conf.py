"""Sphinx configuration of the skavae documentation.

Build with ``make -C doc html`` (or ``sphinx-build -W --keep-going -b html doc
doc/_build/html``). Building runs every example of ``examples/`` with
sphinx-gallery; an example that raises fails the build.
"""

import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "sphinxext"))

import skavae  # noqa: E402

project = "skavae"
author = "skavae developers"
copyright = "skavae developers, BSD-3-Clause"
version = release = skavae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "sg_execution_times.rst"]
root_doc = "index"

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- gallery -------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # Explicit reading order, which is also the run order. The Figure 3
    # example, the only one computing a UMAP embedding, runs last: UMAP's
    # numba threads were once observed to make a later torch fit in the same
    # process about 30 times slower.
    "within_subsection_order": "example_order.ExampleOrder",
    "doc_module": ("skavae",),
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 1,
    "image_scrapers": ("example_order.tight_matplotlib_scraper",),
}

# Third-party notices that are not about this documentation.
warnings.filterwarnings("ignore", category=UserWarning, module="umap")
warnings.filterwarnings(
    "ignore", message="Matplotlib is currently using agg", category=UserWarning
)

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skavae {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": [], "install": [], "changelog": []}


# -- API pages: leave out scikit-learn's metadata-routing setters ------------
def _skip_member(app, what, name, obj, skip, options):
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
