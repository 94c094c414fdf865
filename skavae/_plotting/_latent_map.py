"""Interactive latent map (plotly): the figure and the data the explorer needs.

:func:`plot_latent_map` returns a plotly Figure; the thumbnails, decoded
images and export tables travel in ``fig.layout.meta["skavae"]`` so that
:func:`skavae._plotting._explorer_html.write_latent_map` can turn the same
figure into one self-contained HTML page.
"""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pandas as pd

from skavae._checks import check_seed
from skavae._evaluation._latents import check_labels, latents_of
from skavae._plotting._embedding import embed_2d
from skavae._plotting._map_export import export_data
from skavae._plotting._utils import PROJECTIONS, as_images

#: Default most objects carrying a hover thumbnail and a decoded image. Each
#: costs about 1-3 kB of base64 PNG (two images of at most 64 pixels), so the
#: default keeps the page below ~10 MB on top of plotly.js (~4.5 MB).
MAX_THUMBNAILS = 2000
METHODS = ("umap", "tsne", "pca", "none")
#: tab10 as hex; unknown samples are grey.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
)
UNKNOWN_COLOUR = "#7f7f7f"


def import_plotly():
    """``plotly.graph_objects``, or an ImportError naming the extra."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ImportError(
            "the interactive latent map needs plotly: pip install skavae[explore] "
            "(or pip install plotly)."
        ) from None
    return go


def png_base64(images, size):
    """Each 2D image as a grey PNG (own min-max scale, at most ``size`` px)."""
    from PIL import Image

    out = []
    for img in np.asarray(images, dtype=np.float64):
        img = np.nan_to_num(img)
        lo, hi = float(img.min()), float(img.max())
        grey = np.zeros(img.shape, np.uint8)
        if hi > lo:
            grey = np.round(255 * (img - lo) / (hi - lo)).astype(np.uint8)
        pic = Image.fromarray(grey, mode="L")
        if max(pic.size) > size:
            scale = size / max(pic.size)
            new = (
                max(1, round(pic.size[0] * scale)),
                max(1, round(pic.size[1] * scale)),
            )
            pic = pic.resize(new, Image.BILINEAR)
        buf = io.BytesIO()
        pic.save(buf, format="PNG", optimize=True)
        out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def _categories(values):
    found = list(pd.unique(pd.Series(values)))
    try:
        return sorted(found)
    except TypeError:
        return found


def _colourings(y, predictions, unknown, unknown_label):
    """``[(name, labels, categories)]`` of the colourings that can be shown."""
    out = []
    if y is not None:
        out.append(("class", y, _categories(y)))
    if predictions is not None:
        out.append(("prediction", predictions, _categories(predictions)))
    if unknown is not None:
        flags = np.where(unknown, unknown_label, "known")
        cats = [c for c in ("known", unknown_label) if c in set(flags.tolist())]
        out.append(("unknown", flags, cats))
    if not out:
        out.append(("all", np.full(len(y if y is not None else unknown), "all"), []))
    return out


def _colour_map(label_sets, unknown_label):
    """One colour per category name, shared by every colouring and the
    training map (class ``a`` and the prediction ``a`` look alike)."""
    names = [str(v) for s in label_sets if s is not None for v in np.asarray(s)]
    unknowns = (str(unknown_label), "unknown")
    names = [c for c in _categories(names) if c not in unknowns]
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(names)}
    colours.update({u: UNKNOWN_COLOUR for u in unknowns})
    colours.setdefault("known", PALETTE[0])
    return colours


def _check_reference(reference, n_dims):
    """``(Z_ref, y_ref)`` of the training map, or ``(None, None)``."""
    if reference is None:
        return None, None
    if not isinstance(reference, (tuple, list)) or len(reference) != 2:
        raise ValueError(
            "reference must be a pair (Z_ref, y_ref) of training latents and "
            f"labels; got {type(reference).__name__}."
        )
    Z_ref = latents_of(reference[0], None, name="reference latents")
    if Z_ref.shape[1] != n_dims:
        raise ValueError(
            f"reference latents have {Z_ref.shape[1]} dimensions but the map has "
            f"{n_dims}."
        )
    return Z_ref, np.asarray(check_labels(np.asarray(reference[1]), len(Z_ref)))


def _add_reference(fig, go, E_ref, y_ref, colours, marker_size):
    """The training map: one faded, unselectable trace per class."""
    labels = np.asarray(y_ref).astype(str)
    for cat in _categories(labels):
        mask = labels == cat
        fig.add_trace(
            go.Scatter(
                x=E_ref[mask, 0],
                y=E_ref[mask, 1],
                mode="markers",
                name=f"{cat} (training)",
                legendgroup="training",
                marker={
                    "size": max(3.0, 0.7 * marker_size),
                    "color": colours.get(cat, PALETTE[0]),
                    "opacity": 0.45,
                },
                hoverinfo="skip",
            )
        )


def _check_per_row(values, n, name):
    if values is None:
        return None
    return check_labels(np.asarray(values), n, name=name)


def plot_latent_map(
    model,
    X,
    y=None,
    *,
    method="umap",
    predictions=None,
    unknown=None,
    thumbnails=True,
    decoded=True,
    particles=None,
    latents=None,
    reference=None,
    projection="slice",
    thumbnail_size=64,
    max_thumbnails=MAX_THUMBNAILS,
    unknown_label="unknown",
    marker_size=7,
    random_state=None,
    n_threads=1,
):
    """Interactive 2D latent map: a plotly Figure for notebooks and the explorer.

    The latents are embedded in 2D (UMAP, t-SNE, PCA or as they are) and drawn
    as one scatter trace per category of each *colouring*: class labels
    ``y``, ``predictions`` and ``unknown`` flags; buttons above the map switch
    between the colourings. Each point's ``customdata`` is its row in ``X``.
    Thumbnails of the objects (central slice or projection of volumes) and
    the objects decoded from their latents are stored as base64 PNGs in
    ``fig.layout.meta["skavae"]``, with the CSV and STAR rows of every
    object; :func:`write_latent_map` turns the figure into a self-contained
    HTML page that shows them on hover and click and exports a lasso
    selection.

    Parameters
    ----------
    model : fitted AffinityVAE or None
        Encoder and decoder of ``X``; None: ``X`` are latents already (no
        decoded images then, and ``thumbnails`` must be an array or False).
    X : array-like
        Objects (n_samples, ...) of the model's input shape, or latents.
    y : array-like of shape (n_samples,) or None, default=None
        Class labels.
    method : {"umap", "tsne", "pca", "none"}, default="umap"
        2D embedding of the latents; ``"none"`` plots 1-2 latent dimensions.
    predictions : array-like of shape (n_samples,) or None, default=None
        Predicted labels (e.g. of
        :class:`~skavae.evaluation.ConformalOpenSetClassifier`).
    unknown : array-like of bool, shape (n_samples,) or None, default=None
        Samples flagged as unknown; default with ``predictions``: those
        predicted ``unknown_label``.
    thumbnails : bool or array-like, default=True
        True: pictures of ``X`` (needs ``model``); an array: one image
        (n, H, W) or volume (n, D, H, W) per sample; False: none.
    decoded : bool, default=True
        Store the object decoded from each shown latent (one batched
        ``model.inverse_transform`` call), shown on click.
    particles : pandas.DataFrame or None, default=None
        The particle rows of ``X`` (:func:`skavae.io.read_particles`); the
        STAR export then writes the selected original rows with the results
        (:func:`skavae.io.write_particles`). Otherwise: index, label,
        prediction, unknown and latent columns.
    latents : array-like of shape (n_samples, n_dims) or None, default=None
        The latents of ``X`` when already computed (e.g. by ``model.encode``);
        ``model`` then only pictures and decodes.
    reference : (Z_ref, y_ref) or None, default=None
        The training map: latents of shape (n_ref, n_dims) and their labels,
        embedded together with ``X`` and drawn under its points as faded
        markers coloured by class in every colouring (``"<label> (training)"``
        in the legend); they are not hovered, selected or exported.
    projection : {"slice", "max", "mean"}, default="slice"
        How volumes are pictured.
    thumbnail_size : int, default=64
        Largest side of the stored pictures, in pixels.
    max_thumbnails : int, default=2000
        Most samples carrying pictures; with more samples a random subset of
        this size (seeded by ``random_state``) gets them and a warning names
        the numbers. All samples are drawn and exported.
    unknown_label : str, default="unknown"
        Name of the unknown category.
    marker_size : float, default=7
    random_state : int, RandomState instance or None, default=None
        Seed of the embedding and of the thumbnail subsample.
    n_threads : int or None, default=1
        Threads of the embedding (see :func:`plot_embedding`); None: one per
        core.

    Returns
    -------
    fig : plotly.graph_objects.Figure

    Raises
    ------
    ImportError
        When plotly is not installed (``pip install skavae[explore]``).

    See Also
    --------
    write_latent_map : The figure as one HTML file.
    plot_embedding : The static (matplotlib) map.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.plotting import plot_latent_map
    >>> rng = np.random.RandomState(0)
    >>> Z = np.vstack([rng.normal(0, 1, (10, 3)), rng.normal(4, 1, (10, 3))])
    >>> fig = plot_latent_map(None, Z, np.repeat(["a", "b"], 10), method="pca",
    ...                       thumbnails=False)
    >>> [t.name for t in fig.data]
    ['a', 'b']
    """
    go = import_plotly()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if projection not in PROJECTIONS:
        raise ValueError(
            f"projection must be one of {PROJECTIONS}; got {projection!r}."
        )
    if isinstance(max_thumbnails, bool) or not isinstance(
        max_thumbnails, (int, np.integer)
    ):
        raise ValueError(f"max_thumbnails must be an int; got {max_thumbnails!r}.")
    if max_thumbnails < 0:
        raise ValueError(f"max_thumbnails must be >= 0; got {max_thumbnails}.")
    rng = check_seed(random_state)
    Z = latents_of(
        X if latents is None else latents, model if latents is None else None
    )
    n = len(Z)
    if latents is not None and hasattr(X, "__len__") and len(X) != n:
        raise ValueError(f"latents has {n} rows but X has {len(X)} objects.")
    Z_ref, y_ref = _check_reference(reference, Z.shape[1])
    y = _check_per_row(y, n, "y")
    predictions = _check_per_row(predictions, n, "predictions")
    if unknown is None and predictions is not None:
        unknown = np.asarray([str(p) == str(unknown_label) for p in predictions])
    if unknown is not None:
        unknown = np.asarray(_check_per_row(unknown, n, "unknown"), dtype=bool)
    if particles is not None:
        if not isinstance(particles, pd.DataFrame) or len(particles) != n:
            raise ValueError(
                f"particles must be a DataFrame of one row per sample ({n}); got "
                f"{len(particles) if hasattr(particles, '__len__') else particles!r}."
            )
    if Z_ref is None:
        E = embed_2d(Z, method, rng, n_threads)
    else:  # one embedding of the training map and the objects together
        E_all = embed_2d(np.vstack([Z_ref, Z]), method, rng, n_threads)
        E_ref, E = E_all[: len(Z_ref)], E_all[len(Z_ref) :]

    shown = np.zeros(0, dtype=int)
    has_pictures = thumbnails is not False and thumbnails is not None
    if has_pictures or (decoded and model is not None):
        shown = np.arange(n)
        if n > max_thumbnails:
            warnings.warn(
                f"{n} objects are more than max_thumbnails={max_thumbnails} fit in "
                f"one page: pictures of a random {max_thumbnails} only (every "
                "object is still drawn and exported).",
                UserWarning,
                stacklevel=2,
            )
            shown = np.sort(rng.choice(n, max_thumbnails, replace=False))
    thumbs, decodes = [], []
    shape = tuple(getattr(model, "input_shape_", ()) or ())
    if has_pictures and len(shown):
        if thumbnails is True:
            if model is None:
                raise ValueError(
                    "thumbnails=True pictures the objects X, which needs model=...; "
                    "pass the images as thumbnails=array or thumbnails=False."
                )
            objs = np.asarray(X[shown] if hasattr(X, "__getitem__") else X)
        else:
            objs = np.asarray(thumbnails)
            if len(objs) != n:
                raise ValueError(
                    f"thumbnails must hold one object per sample ({n}); got "
                    f"{len(objs)}."
                )
            objs = objs[shown]
        pic_shape = shape or objs.shape[1:]
        if len(pic_shape) not in (1, 2, 3):
            raise ValueError(
                f"thumbnails must be images or volumes; got objects of shape "
                f"{pic_shape}."
            )
        thumbs = png_base64(as_images(objs, pic_shape, projection), thumbnail_size)
    if decoded and model is not None and len(shown):
        out = model.inverse_transform(Z[shown])
        decodes = png_base64(as_images(out, shape, projection), thumbnail_size)

    colourings = _colourings(y, predictions, unknown, unknown_label)
    hover = [f"#{i}" for i in range(n)]
    for name, labels, _ in colourings:
        if name != "all":
            hover = [f"{h}<br>{name}: {v}" for h, v in zip(hover, labels)]
    colours = _colour_map([y, predictions, y_ref], unknown_label)
    fig = go.Figure()
    if Z_ref is not None:  # under the objects, in every colouring
        _add_reference(fig, go, E_ref, y_ref, colours, marker_size)
    n_base = len(fig.data)
    groups = []
    for g, (name, labels, cats) in enumerate(colourings):
        start = len(fig.data)
        labels = np.asarray(labels).astype(str)
        for cat in cats or ["all"]:
            mask = np.flatnonzero(labels == str(cat)) if cats else np.arange(n)
            fig.add_trace(
                go.Scatter(
                    x=E[mask, 0],
                    y=E[mask, 1],
                    mode="markers",
                    name=str(cat),
                    legendgroup=name,
                    visible=g == 0,
                    marker={
                        "size": marker_size,
                        "color": colours.get(str(cat), PALETTE[0]),
                    },
                    customdata=mask,
                    hovertext=[hover[k] for k in mask],
                    hoverinfo="text",
                )
            )
        groups.append((name, start, len(fig.data)))
    buttons = []
    for name, a, b in groups:
        visible = [t < n_base or a <= t < b for t in range(len(fig.data))]
        buttons.append(
            {
                "label": f"colour by {name}",
                "method": "update",
                "args": [{"visible": visible}, {"legend.title.text": name}],
            }
        )
    names = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PC", "none": "z"}
    on = "" if Z_ref is None else f" on a training map of {len(Z_ref)}"
    fig.update_layout(
        title={
            "text": f"Latent map ({n} objects{on}, {names[method]})",
            "y": 0.98,
            "yanchor": "top",
        },
        xaxis_title=f"{names[method]} 1",
        yaxis_title=f"{names[method]} 2",
        dragmode="lasso",
        hovermode="closest",
        template="plotly_white",
        legend={"title": {"text": groups[0][0]}, "itemsizing": "constant"},
        margin={"l": 50, "r": 20, "t": 100, "b": 50},
        updatemenus=(
            [
                {
                    "type": "buttons",
                    "direction": "right",
                    "buttons": buttons,
                    "x": 0.0,
                    "y": 1.02,
                    "xanchor": "left",
                    "yanchor": "bottom",
                    "showactive": True,
                }
            ]
            if len(buttons) > 1
            else []
        ),
    )
    fig.layout.meta = {
        "skavae": export_data(
            E,
            Z,
            y,
            predictions,
            unknown,
            particles,
            shown,
            thumbs,
            decodes,
            getattr(model, "classes_", None),
        )
    }
    return fig
