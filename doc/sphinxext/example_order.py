"""Reading (and run) order of the examples in the gallery."""

import os

ORDER = [
    "plot_quickstart.py",
    "plot_pose.py",
    "plot_splat_decoder.py",
    "plot_beta_gamma.py",
    "plot_soap_vs_fsc.py",
    "plot_tetraminos_affinities.py",
    "plot_proteins.py",
    "plot_grid_search.py",
    "plot_mrc_folders.py",
    "plot_realistic_subtomograms.py",
    "plot_discovery.py",
    "plot_tomogram_round_trip.py",
    # UMAP last: see the comment in conf.py.
    "plot_alphanumeric_latent_map.py",
]


class ExampleOrder:
    """Sort key of sphinx-gallery: the position in ``ORDER``, unknown files last."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self):
        return f"<{type(self).__name__}>"


def tight_matplotlib_scraper(block, block_vars, gallery_conf, **kwargs):
    """sphinx-gallery's matplotlib scraper, saving figures with a tight box.

    Legends placed outside the axes (as ``plot_embedding`` does) are kept
    whole instead of being cut at the figure's edge.
    """
    from sphinx_gallery.scrapers import matplotlib_scraper

    kwargs.setdefault("bbox_inches", "tight")
    return matplotlib_scraper(block, block_vars, gallery_conf, **kwargs)
