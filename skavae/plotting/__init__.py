"""Figures of a latent map; every function returns a matplotlib Figure.

None of them calls ``plt.show``: display the figure in a notebook, save it with
``fig.savefig`` or close it with ``plt.close(fig)``. Figures are created through
pyplot (so notebooks and sphinx-gallery pick them up); functions drawing a
single panel accept ``ax=`` to draw into an existing figure (e.g. the paper's
Figure 8: two embeddings over two proximity matrices).

Maps
    :func:`plot_embedding` (UMAP / t-SNE / PCA, seen/unseen, split, thumbnails),
    :func:`plot_confusion_matrix`, :func:`plot_proximity_matrix`.
Decoded latents (one batched ``inverse_transform`` call per figure)
    :func:`plot_traversals`, :func:`plot_interpolation_grid`,
    :func:`plot_pose_sweep`, :func:`plot_reconstructions`.
Training
    :func:`plot_history`.

Volumes (3D objects) are shown as their central slice along the first axis or
as a maximum / mean projection (``projection=``).
"""

from skavae._plotting._decoding import (
    plot_interpolation_grid,
    plot_pose_sweep,
    plot_reconstructions,
    plot_traversals,
)
from skavae._plotting._embedding import plot_embedding
from skavae._plotting._explorer_html import write_latent_map
from skavae._plotting._history import plot_history
from skavae._plotting._latent_map import plot_latent_map
from skavae._plotting._matrices import plot_confusion_matrix, plot_proximity_matrix

__all__ = [
    "plot_confusion_matrix",
    "plot_embedding",
    "plot_history",
    "plot_interpolation_grid",
    "plot_latent_map",
    "plot_pose_sweep",
    "plot_proximity_matrix",
    "plot_reconstructions",
    "plot_traversals",
    "write_latent_map",
]
