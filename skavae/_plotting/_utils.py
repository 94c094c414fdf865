"""Shared helpers of the plotting functions: figures, images, models."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

PROJECTIONS = ("slice", "max", "mean")


def new_figure(figsize):
    """A pyplot-managed figure (shown by notebooks and sphinx-gallery)."""
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize)


def figure_and_ax(ax, figsize):
    """``(fig, ax)``: the given axes' figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def check_decoder(model):
    """``model`` must be a fitted model with encode and inverse_transform."""
    for method in ("encode", "inverse_transform"):
        if not callable(getattr(model, method, None)):
            raise ValueError(
                f"model must be a fitted AffinityVAE (with encode and "
                f"inverse_transform); got {type(model).__name__}."
            )
    check_is_fitted(model)
    return tuple(model.input_shape_)


def as_batch(model, X):
    """``X`` as a batch of objects: a single object gets a leading axis."""
    shape = tuple(model.input_shape_)
    X = np.asarray(X)
    if X.shape == shape or (len(shape) > 1 and X.ndim == 1):
        X = X[None]
    return X


def encode(model, X):
    """Latent means and poses (None when the model has no pose channel)."""
    mu, _, pose = model.encode(X)
    return np.asarray(mu), (None if pose.shape[1] == 0 else np.asarray(pose))


def decode(model, Z, pose):
    """ONE batched ``inverse_transform`` call."""
    return model.inverse_transform(Z, pose=pose)


def as_images(objects, shape, projection="slice"):
    """2D pictures of a batch of 1D, 2D or 3D objects.

    1D signals become one-row images; 3D volumes their central slice along the
    first axis (``"slice"``), or their maximum (``"max"``) or mean (``"mean"``)
    projection along it.
    """
    if projection not in PROJECTIONS:
        raise ValueError(
            f"projection must be one of {PROJECTIONS}; got {projection!r}."
        )
    A = np.asarray(objects)
    A = A.reshape(len(A), *shape)
    if len(shape) == 1:
        return A[:, None, :]
    if len(shape) == 2:
        return A
    if projection == "slice":
        return A[:, shape[0] // 2]
    if projection == "max":
        return A.max(axis=1)
    return A.mean(axis=1)


def image_grid(fig, images, nrows, ncols, *, cmap="gray", shared_scale=True):
    """Draw ``nrows * ncols`` images on a grid of bare axes; return the axes."""
    axes = fig.subplots(nrows, ncols, squeeze=False)
    vmin, vmax = (
        (float(images.min()), float(images.max())) if shared_scale else (None,) * 2
    )
    for ax, img in zip(axes.ravel(), images):
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def frame(ax, color="tab:red", width=2.0):
    """Colour the frame of an image axes."""
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(width)
