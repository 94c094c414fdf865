"""Figures that decode latent codes: traversals, grids, pose sweeps, recons.

Every figure decodes all its codes with ONE batched ``inverse_transform`` call.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import validate_params

from skavae._checks import Count, positive_real
from skavae._evaluation._metrics import pose_angle_fit
from skavae._plotting._utils import (
    as_batch,
    as_images,
    check_decoder,
    decode,
    encode,
    frame,
    image_grid,
    new_figure,
)


def _pick(X, index):
    if not isinstance(index, Integral) or not -len(X) <= index < len(X):
        raise ValueError(f"index must be an integer in [0, {len(X)}); got {index!r}.")
    return X[[index]]


@validate_params(
    {"n_steps": [Count(1)], "span": [positive_real()]},
    prefer_skip_nested_validation=True,
)
def plot_traversals(
    model,
    X,
    *,
    index=0,
    dims=None,
    n_steps=7,
    span=2.0,
    projection="slice",
    cmap="gray",
):
    """Latent traversals: decode an encoded input while sweeping one dimension.

    The paper's Figure 7 (left): row ``d`` shows the decoding of ``z`` with its
    ``d``-th coordinate replaced by ``z_d + t``, ``t`` running from ``-span`` to
    ``+span`` (units of the prior's standard deviation, 1); the centre column
    (``t = 0``, framed) is the decoded encoding of the input itself. The pose
    is kept at the input's encoded pose.

    Parameters
    ----------
    model : fitted AffinityVAE
        Model with ``encode`` and ``inverse_transform``.
    X : array-like
        One object, or a batch from which ``X[index]`` is used.
    index : int, default=0
        Object of the batch to traverse from.
    dims : iterable of int or None, default=None
        Latent dimensions (rows); None: all.
    n_steps : int, default=7
        Columns; must be odd so that the input sits in the centre.
    span : float, default=2.0
        Largest offset from the encoded value.
    projection : {"slice", "max", "mean"}, default="slice"
        How volumes are shown: central slice or projection along the first axis.
    cmap : str or Colormap, default="gray"
        Colour map of the images (one intensity scale for the whole figure).

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(dims) * n_steps`` image axes.

    See Also
    --------
    plot_interpolation_grid : Interpolation between four encoded objects.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae import AffinityVAE
    >>> from skavae.plotting import plot_traversals
    >>> X = np.random.RandomState(0).rand(20, 16, 16).astype(np.float32)
    >>> model = AffinityVAE(latent_dims=2, max_epochs=1, filters=(8, 16),
    ...                     random_state=0).fit(X)
    >>> fig = plot_traversals(model, X[0], n_steps=5)
    >>> len(fig.axes)
    10
    """
    shape = check_decoder(model)
    if n_steps % 2 == 0:
        raise ValueError(f"n_steps must be odd (input in the centre); got {n_steps}.")
    x = _pick(as_batch(model, X), index)
    mu, pose = encode(model, x)
    latent_dims = mu.shape[1]
    dims = np.arange(latent_dims) if dims is None else np.asarray(list(dims))
    if (
        dims.size == 0
        or dims.dtype.kind not in "iu"
        or not ((dims >= 0) & (dims < latent_dims)).all()
    ):
        raise ValueError(
            f"dims must be latent dimensions in [0, {latent_dims}); "
            f"got {dims.tolist()}."
        )
    offsets = np.linspace(-span, span, n_steps)
    offsets[n_steps // 2] = 0.0
    n_rows = len(dims)
    Z = np.repeat(mu, n_rows * n_steps, axis=0)
    rows = np.arange(n_rows * n_steps)
    Z[rows, np.repeat(dims, n_steps)] += np.tile(offsets, n_rows)
    P = None if pose is None else np.repeat(pose, len(Z), axis=0)
    images = as_images(decode(model, Z, P), shape, projection)

    fig = new_figure((1.1 * n_steps + 0.6, 1.1 * n_rows + 0.4))
    axes = image_grid(fig, images, n_rows, n_steps, cmap=cmap)
    for r, d in enumerate(dims):
        axes[r, 0].set_ylabel(f"z{d}", rotation=0, ha="right", va="center")
        frame(axes[r, n_steps // 2])
    for c, t in enumerate(offsets):
        axes[0, c].set_title(
            "encoded (0)" if c == n_steps // 2 else f"{t:+.2g}", fontsize="small"
        )
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


@validate_params({"n_steps": [Count(2)]}, prefer_skip_nested_validation=True)
def plot_interpolation_grid(model, X, *, n_steps=5, projection="slice", cmap="gray"):
    """Decodings bilinearly interpolated between four encoded objects.

    The paper's Figure 7 (right): the four objects of ``X`` are encoded (latent
    means and poses) and placed at the corners - top-left, top-right,
    bottom-left, bottom-right - of an ``n_steps x n_steps`` grid; every cell
    decodes the bilinear interpolation of the four codes at its position.

    Parameters
    ----------
    model : fitted AffinityVAE
        Model with ``encode`` and ``inverse_transform``.
    X : array-like of 4 objects
        Corners in the order top-left, top-right, bottom-left, bottom-right.
    n_steps : int, default=5
        Rows and columns of the grid (at least 2).
    projection : {"slice", "max", "mean"}, default="slice"
        How volumes are shown.
    cmap : str or Colormap, default="gray"
        Colour map of the images.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``n_steps ** 2`` image axes; the corners are framed.

    See Also
    --------
    plot_traversals : One dimension at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae import AffinityVAE
    >>> from skavae.plotting import plot_interpolation_grid
    >>> X = np.random.RandomState(0).rand(20, 16, 16).astype(np.float32)
    >>> model = AffinityVAE(latent_dims=2, max_epochs=1, filters=(8, 16),
    ...                     random_state=0).fit(X)
    >>> len(plot_interpolation_grid(model, X[:4], n_steps=3).axes)
    9
    """
    shape = check_decoder(model)
    X = as_batch(model, X)
    if len(X) != 4:
        raise ValueError(f"X must hold exactly 4 objects (the corners); got {len(X)}.")
    mu, pose = encode(model, X)
    t = np.linspace(0.0, 1.0, n_steps)
    v, u = np.meshgrid(t, t, indexing="ij")  # v: down the rows, u: across
    v, u = v.ravel(), u.ravel()
    W = np.column_stack([(1 - v) * (1 - u), (1 - v) * u, v * (1 - u), v * u])
    Z = W @ mu
    P = None if pose is None else W @ pose
    images = as_images(decode(model, Z, P), shape, projection)

    fig = new_figure((1.1 * n_steps, 1.1 * n_steps))
    axes = image_grid(fig, images, n_steps, n_steps, cmap=cmap)
    for r, c in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        frame(axes[r, c])
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


@validate_params({"n_steps": [Count(2)]}, prefer_skip_nested_validation=True)
def plot_pose_sweep(
    model,
    X,
    angles=None,
    *,
    index=0,
    n_steps=7,
    dimension=None,
    projection="slice",
    cmap="gray",
):
    """Encoded pose against the known angle, and decodings sweeping the pose.

    The paper's Figure 6. With ``angles``, the top panel shows the encoded pose
    of every object of ``X`` against its angle with the least-squares line
    (:func:`~skavae.evaluation.pose_angle_fit`), and the bottom row decodes the
    latent code of ``X[index]`` with the pose set to the fitted pose of
    ``n_steps`` evenly spaced angles (titles in degrees). Without ``angles``
    only the row is drawn, sweeping the pose over the range of the encoded
    poses.

    Parameters
    ----------
    model : fitted AffinityVAE
        Model with a pose channel (``pose_dims >= 1``).
    X : array-like
        Objects (one or a batch).
    angles : array-like of shape (n_samples,) or None, default=None
        Known rotation angle of each object, in degrees.
    index : int, default=0
        Object whose latent code is decoded along the sweep.
    n_steps : int, default=7
        Decoded images.
    dimension : int or None, default=None
        Pose dimension to sweep; None: the one best correlated with ``angles``
        (0 without angles). Other pose dimensions keep the object's value.
    projection : {"slice", "max", "mean"}, default="slice"
        How volumes are shown.
    cmap : str or Colormap, default="gray"
        Colour map of the images.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``1 + n_steps`` axes with angles, ``n_steps`` without.

    See Also
    --------
    skavae.evaluation.pose_angle_fit : The fitted line.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae import AffinityVAE
    >>> from skavae.plotting import plot_pose_sweep
    >>> X = np.random.RandomState(0).rand(20, 16, 16).astype(np.float32)
    >>> model = AffinityVAE(latent_dims=2, max_epochs=1, filters=(8, 16),
    ...                     random_state=0).fit(X)
    >>> fig = plot_pose_sweep(model, X, angles=np.linspace(-45, 45, 20), n_steps=5)
    >>> len(fig.axes)
    6
    """
    shape = check_decoder(model)
    X = as_batch(model, X)
    mu, pose = encode(model, X)
    if pose is None:
        raise ValueError(
            "The model has no pose channel (pose_dims=0); nothing to sweep."
        )
    x_pose = _pick(pose, index)
    z = _pick(mu, index)
    if dimension is not None and (
        not isinstance(dimension, Integral) or not 0 <= dimension < pose.shape[1]
    ):
        raise ValueError(
            f"dimension must be a pose dimension in [0, {pose.shape[1]}); "
            f"got {dimension!r}."
        )
    fit = None
    if angles is not None:
        if dimension is None:
            fit = pose_angle_fit(pose, angles)
            dimension = fit.dimension
        else:
            fit = pose_angle_fit(pose[:, dimension], angles)
            fit.dimension = dimension
        a = np.asarray(angles, dtype=np.float64)
        sweep_angles = np.linspace(a.min(), a.max(), n_steps)
        values = fit.slope * sweep_angles + fit.intercept
        titles = [f"{s:.0f}°" for s in sweep_angles]
    else:
        dimension = 0 if dimension is None else dimension
        values = np.linspace(
            pose[:, dimension].min(), pose[:, dimension].max(), n_steps
        )
        titles = [f"{s:.2g}" for s in values]
    P = np.repeat(x_pose, n_steps, axis=0)
    P[:, dimension] = values
    images = as_images(
        decode(model, np.repeat(z, n_steps, axis=0), P), shape, projection
    )

    fig = new_figure((max(1.1 * n_steps, 5.0), 5.5 if fit is not None else 1.6))
    if fit is not None:
        top, bottom = fig.subfigures(2, 1, height_ratios=[3.2, 1.0])
        ax = top.add_subplot()
        ax.scatter(a, pose[:, dimension], s=8, alpha=0.6, linewidths=0)
        line = np.array([a.min(), a.max()])
        ax.plot(
            line,
            fit.slope * line + fit.intercept,
            color="tab:red",
            label=f"slope {fit.slope:.3g}, R² = {fit.r2:.3f}",
        )
        ax.scatter(sweep_angles, values, color="tab:red", marker="|", s=80)
        ax.set_xlabel("angle (degrees)")
        ax.set_ylabel(f"encoded pose {dimension}")
        ax.legend(loc="best", fontsize="small")
    else:
        bottom = fig
    axes = image_grid(bottom, images, 1, n_steps, cmap=cmap)
    for ax_img, title in zip(axes[0], titles):
        ax_img.set_title(title, fontsize="small")
    return fig


@validate_params({"n_samples": [Count(1)]}, prefer_skip_nested_validation=True)
def plot_reconstructions(model, X, *, n_samples=8, projection="slice", cmap="gray"):
    """Inputs (top row) next to their reconstructions (bottom row).

    Objects are encoded (latent means and poses) and decoded in one batched
    call; each column shares one intensity scale.

    Parameters
    ----------
    model : fitted AffinityVAE
        Model with ``encode`` and ``inverse_transform``.
    X : array-like
        Objects; the first ``n_samples`` are drawn.
    n_samples : int, default=8
        Columns.
    projection : {"slice", "max", "mean"}, default="slice"
        How volumes are shown.
    cmap : str or Colormap, default="gray"
        Colour map of the images.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``2 * min(n_samples, len(X))`` image axes.

    See Also
    --------
    plot_traversals, plot_interpolation_grid

    Examples
    --------
    >>> import numpy as np
    >>> from skavae import AffinityVAE
    >>> from skavae.plotting import plot_reconstructions
    >>> X = np.random.RandomState(0).rand(20, 16, 16).astype(np.float32)
    >>> model = AffinityVAE(latent_dims=2, max_epochs=1, filters=(8, 16),
    ...                     random_state=0).fit(X)
    >>> len(plot_reconstructions(model, X, n_samples=4).axes)
    8
    """
    shape = check_decoder(model)
    X = as_batch(model, X)[:n_samples]
    n = len(X)
    mu, pose = encode(model, X)
    inputs = as_images(X, shape, projection)
    recons = as_images(decode(model, mu, pose), shape, projection)
    fig = new_figure((1.2 * n + 0.8, 2.6))
    axes = fig.subplots(2, n, squeeze=False)
    for c in range(n):
        vmin = min(inputs[c].min(), recons[c].min())
        vmax = max(inputs[c].max(), recons[c].max())
        for r, img in enumerate((inputs[c], recons[c])):
            axes[r, c].imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("reconstruction")
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig
