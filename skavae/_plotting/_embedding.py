"""2D embeddings of latent maps (UMAP, t-SNE, PCA) coloured by class."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skavae._checks import check_int, check_seed
from skavae._evaluation._latents import check_labels, latents_of
from skavae._plotting._utils import PROJECTIONS, as_images, figure_and_ax
from skavae._process import native_threads

METHODS = ("auto", "umap", "tsne", "pca", "none")


def _auto_method(model, thumbnails, n_dims):
    if n_dims <= 2:
        return "none"
    shape = getattr(model, "input_shape_", None)
    if shape is None and thumbnails is not None and not isinstance(thumbnails, bool):
        shape = np.shape(thumbnails)[1:]
    return "tsne" if shape is not None and len(shape) == 3 else "umap"


def embed_2d(Z, method, random_state, n_threads=1):
    """Coordinates of shape (n_samples, 2) of the latents ``Z``.

    ``n_threads`` bounds the native thread pools (OpenMP, BLAS) of the
    embedding; None leaves the libraries' defaults (one thread per core).
    """
    if n_threads is not None:
        check_int(n_threads, "n_threads")
    with native_threads(n_threads):
        return _embed_2d(Z, method, random_state)


def _embed_2d(Z, method, random_state):
    n, d = Z.shape
    if method == "none":
        if d > 2:
            raise ValueError(
                f"method='none' needs latents of at most 2 dimensions; got {d}."
            )
        return np.column_stack([Z, np.zeros((n, 2 - d))]) if d < 2 else Z
    if method == "pca":
        from sklearn.decomposition import PCA

        E = PCA(n_components=min(2, d, n), random_state=random_state).fit_transform(Z)
        return np.column_stack([E, np.zeros((n, 2 - E.shape[1]))])
    if n < 4:
        raise ValueError(f"method={method!r} needs at least 4 samples; got {n}.")
    seed = check_seed(random_state).randint(np.iinfo(np.int32).max)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (n - 1) / 3.0)
        tsne = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed
        )
        return tsne.fit_transform(Z)
    import umap  # slow to import (numba): only when asked for

    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed)
    return reducer.fit_transform(Z)


def _colours(classes):
    """Distinct colours: tab10, or tab20's dark shades before its light ones."""
    from matplotlib import colormaps

    if len(classes) <= 10:
        palette = [colormaps["tab10"](i) for i in range(10)]
    else:
        tab20 = [colormaps["tab20"](i) for i in range(20)]
        palette = tab20[0::2] + tab20[1::2]
    return {c: palette[i % len(palette)] for i, c in enumerate(classes)}


def _thumbnail_images(thumbnails, X, model, n, projection):
    if isinstance(thumbnails, bool | np.bool_) and not thumbnails:
        return None
    if not isinstance(thumbnails, bool | np.bool_) and np.ndim(thumbnails) == 0:
        raise ValueError(
            "thumbnails must be True (draw X), False / None (no thumbnails) or an "
            f"array of one image or volume per sample; got {thumbnails!r}."
        )
    if thumbnails is True or isinstance(thumbnails, np.bool_):
        if model is None:
            raise ValueError(
                "thumbnails=True draws the objects X, which needs model=...; "
                "pass the images as thumbnails=array instead."
            )
        thumbnails = X
    objs = np.asarray(thumbnails)
    if len(objs) != n:
        raise ValueError(
            f"thumbnails must hold one object per sample ({n}); got {len(objs)}."
        )
    shape = (
        tuple(model.input_shape_) if hasattr(model, "input_shape_") else objs.shape[1:]
    )
    if len(shape) not in (2, 3):
        raise ValueError(
            "thumbnails must be images (n, H, W) or volumes (n, D, H, W); got "
            f"objects of shape {shape}."
        )
    return as_images(objs, shape, projection)


def plot_embedding(
    X,
    y,
    *,
    model=None,
    method="auto",
    seen_classes=None,
    split=None,
    thumbnails=None,
    projection="slice",
    thumbnail_size=36,
    random_state=0,
    marker_size=12.0,
    n_threads=1,
    ax=None,
):
    """2D embedding of a latent map, coloured by class.

    The paper's Figures 3-5 and 8: latents are embedded in 2D by UMAP (2D data)
    or t-SNE (3D data) and drawn as points coloured by class. Unseen classes
    are drawn as stars (seen classes as dots), the data split (train /
    validation / test) as opacity, and optionally a thumbnail of each class is
    placed at its location on the map.

    Parameters
    ----------
    X : array-like
        Latents (n_samples, n_dims), or objects encoded with ``model``.
    y : array-like of shape (n_samples,)
        Class labels.
    model : fitted transformer or None, default=None
        Encoder of ``X``; an :class:`~skavae.AffinityVAE` also tells the
        ``"auto"`` method whether the data are 2D or 3D.
    method : {"auto", "umap", "tsne", "pca", "none"}, default="auto"
        ``"auto"``: the latents themselves when they have at most 2
        dimensions, t-SNE for 3D objects (known from ``model.input_shape_`` or
        the thumbnails), UMAP otherwise. ``"none"`` plots 1-2 latent dimensions
        directly. UMAP (umap-learn) is imported only when used.
    seen_classes : array-like or None, default=None
        Classes seen in training; others are drawn as unseen. None: all seen.
    split : array-like of shape (n_samples,) or None, default=None
        Data split of each sample, drawn as opacity: faint for "train", then
        "val" / "validation", opaque for "test"; other values follow in the
        order met.
    thumbnails : bool, array-like or None, default=None
        True draws the objects ``X`` (needs ``model``); an array gives one
        image (n, H, W) or volume (n, D, H, W) per sample. For each class, the
        sample nearest the class's median position is drawn there.
    projection : {"slice", "max", "mean"}, default="slice"
        How volumes are shown as thumbnails: central slice or projection.
    thumbnail_size : float, default=36
        Thumbnail width in points.
    random_state : int, RandomState instance or None, default=0
        Seed of the UMAP / t-SNE embedding.
    marker_size : float, default=12.0
        Size of the seen-class dots.
    n_threads : int or None, default=1
        Threads of the embedding (t-SNE's OpenMP loops, BLAS); None: the
        libraries' default, one per core. One by default, as for
        :class:`~skavae.AffinityVAE`: on 2 CPU cores shared with two other
        jobs, t-SNE of 1200 latents took 7.4-28 s with the default threads
        and 5.3 s with one.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; None creates a figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure (one axes with a legend).

    See Also
    --------
    plot_proximity_matrix : Distances between the class centres.

    Notes
    -----
    Embedding 10 000 eight-dimensional latents took 50 s with t-SNE
    (scikit-learn, Barnes-Hut) and 49 s with UMAP, including the ~10 s import of
    umap-learn, on 2 shared CPU cores (with the libraries' default threads,
    ``n_threads=None``).

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.plotting import plot_embedding
    >>> rng = np.random.RandomState(0)
    >>> Z = np.vstack([rng.normal(0, 1, (20, 4)), rng.normal(5, 1, (20, 4))])
    >>> y = np.repeat(["a", "2"], 20)
    >>> fig = plot_embedding(Z, y, method="pca", seen_classes=["a"])
    >>> len(fig.axes)
    1
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if projection not in PROJECTIONS:
        raise ValueError(
            f"projection must be one of {PROJECTIONS}; got {projection!r}."
        )
    Z = latents_of(X, model)
    y = check_labels(y, len(Z))
    n = len(Z)
    if method == "auto":
        method = _auto_method(model, thumbnails, Z.shape[1])
    E = embed_2d(Z, method, random_state, n_threads)

    seen = np.ones(n, dtype=bool)
    if seen_classes is not None:
        seen = np.isin(y, np.asarray(list(seen_classes)))
    seen_labels = list(pd.unique(pd.Series(y[seen])))
    unseen_labels = list(pd.unique(pd.Series(y[~seen])))
    try:
        seen_labels, unseen_labels = sorted(seen_labels), sorted(unseen_labels)
    except TypeError:
        pass
    classes = seen_labels + unseen_labels
    colours = _colours(classes)
    codes = pd.Index(classes).get_indexer(y)
    rgba = np.array([colours[c] for c in classes])[codes]

    if split is None:
        split_codes, split_values = np.zeros(n, dtype=int), [None]
    else:
        split = check_labels(split, n, name="split")
        order = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1}
        order["test"] = 2
        found = list(pd.unique(pd.Series(split)))
        split_values = sorted(
            found, key=lambda v: (order.get(str(v), 3), found.index(v))
        )
        split_codes = pd.Index(split_values).get_indexer(split)
    alphas = (
        np.linspace(0.25, 1.0, len(split_values)) if len(split_values) > 1 else [0.8]
    )
    rgba[:, 3] = np.asarray(alphas)[split_codes]

    own_figure = ax is None
    fig, ax = figure_and_ax(ax, (7.5, 6.0))
    if own_figure:
        # the legend sits outside the axes: constrained layout keeps it (and
        # the title) inside the figure on a plain savefig
        fig.set_layout_engine("constrained")
    for is_seen, marker, size in (
        (True, "o", marker_size),
        (False, "*", 4 * marker_size),
    ):
        mask = seen == is_seen
        if mask.any():
            ax.scatter(
                E[mask, 0],
                E[mask, 1],
                c=rgba[mask],
                s=size,
                marker=marker,
                linewidths=0,
            )

    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            linestyle="",
            marker="o" if c in seen_labels else "*",
            markersize=7 if c in seen_labels else 11,
            color=colours[c],
            label=f"{c}" + ("" if c in seen_labels else " (unseen)"),
        )
        for c in classes
    ]
    if len(split_values) > 1:
        handles += [
            Line2D(
                [],
                [],
                linestyle="",
                marker="s",
                markersize=7,
                color="black",
                alpha=a,
                label=str(v),
            )
            for v, a in zip(split_values, alphas)
        ]
    ax.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize="small",
        frameon=False,
    )

    images = None
    if thumbnails is not None:
        images = _thumbnail_images(thumbnails, X, model, n, projection)
    if images is not None:
        _draw_thumbnails(ax, E, codes, images, classes, colours, thumbnail_size)

    names = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PC", "none": "z"}
    ax.set_xlabel(f"{names[method]} 1")
    ax.set_ylabel(f"{names[method]} 2")
    ax.set_title(f"Latent map ({names[method] if method != 'none' else 'latents'})")
    return fig


def _draw_thumbnails(ax, E, codes, images, classes, colours, size):
    """One image per class, set off from its cluster with a leader line.

    The image of the sample nearest the class's median position is drawn
    ``size`` points away from that position, in the direction pointing away
    from the median of all samples, so that it does not hide the cluster.
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    ax.autoscale_view()
    to_axes = ax.transData + ax.transAxes.inverted()
    width, height = ax.get_window_extent().size
    table = pd.DataFrame({"code": codes, "x": E[:, 0], "y": E[:, 1]})
    medians = table.groupby("code")[["x", "y"]].median()
    centre = np.median(E, axis=0)
    spread = np.maximum(E.std(axis=0), np.finfo(np.float64).tiny)
    for code, (mx, my) in medians.iterrows():
        members = np.flatnonzero(codes == code)
        nearest = members[
            np.argmin((E[members, 0] - mx) ** 2 + (E[members, 1] - my) ** 2)
        ]
        img = images[nearest]
        zoom = size / max(img.shape) * ax.figure.dpi / 72.0
        direction = (np.array([mx, my]) - centre) / spread
        norm = np.hypot(*direction)
        direction = direction / norm if norm > 0 else np.array([0.0, 1.0])
        # the box centre, in axes fraction, kept inside the axes so that a
        # thumbnail never covers the title or the legend outside
        pixels = size * ax.figure.dpi / 72.0
        half = np.array([pixels / width, pixels / height]) * 0.6
        offset = 1.1 * pixels * direction / np.array([width, height])
        centre_box = np.clip(
            to_axes.transform((mx, my)) + offset, half + 0.01, 1 - half - 0.01
        )
        box = AnnotationBbox(
            OffsetImage(img, cmap="gray", zoom=zoom),
            (mx, my),
            xybox=tuple(centre_box),
            boxcoords="axes fraction",
            frameon=True,
            bboxprops={"edgecolor": colours[classes[code]], "linewidth": 2},
            arrowprops={"arrowstyle": "-", "color": colours[classes[code]]},
            pad=0.1,
        )
        ax.add_artist(box)
