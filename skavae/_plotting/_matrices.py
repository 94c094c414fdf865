"""Heat maps: seen/unseen confusion matrix and class-centre proximity."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from skavae._evaluation._metrics import proximity_matrix, seen_unseen_confusion
from skavae._plotting._utils import figure_and_ax


def _heatmap(fig, ax, table, *, cmap, fmt, colorbar_label):
    values = table.to_numpy(dtype=np.float64)
    im = ax.imshow(values, cmap=cmap, aspect="auto")
    # long class names are wrapped (at most 24 characters a line) and the
    # column names rotated, so that neighbouring tick labels do not collide
    columns = [textwrap.fill(str(c), 24) for c in table.columns]
    ax.set_xticks(np.arange(table.shape[1]), columns)
    ax.set_yticks(
        np.arange(table.shape[0]), [textwrap.fill(str(c), 24) for c in table.index]
    )
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
    if max((len(str(c)) for c in table.columns), default=0) > 3:
        for label in ax.get_xticklabels():
            label.set(rotation=90, ha="center", va="bottom", fontsize="small")
    rgb = im.cmap(im.norm(values))[..., :3]
    dark = rgb @ np.array([0.299, 0.587, 0.114]) < 0.5  # text colour by luminance
    rows, cols = np.indices(values.shape)
    for r, c in zip(rows.ravel(), cols.ravel()):
        ax.text(
            c,
            r,
            format(values[r, c], fmt),
            ha="center",
            va="center",
            fontsize="small",
            color="white" if dark[r, c] else "black",
        )
    fig.colorbar(im, ax=ax, label=colorbar_label)
    return im


def plot_confusion_matrix(
    y_true,
    y_pred,
    *,
    seen_classes=None,
    normalize=True,
    cmap="Blues",
    ax=None,
):
    """Confusion matrix of seen and unseen classes against predicted classes.

    The paper's Figure 3 (right): rows are the true classes - seen classes
    first, then unseen classes below a separating line - and columns are the
    predicted (seen) classes, plus any other predicted label such as
    ``"unknown"``. An unseen row shows which seen classes the unseen class is
    read as (e.g. the numeral 2 as the letter z).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, seen and unseen.
    y_pred : array-like of shape (n_samples,)
        Predictions of a classifier trained on the seen classes
        (e.g. :func:`~skavae.evaluation.hard_knn_predict`).
    seen_classes : array-like or None, default=None
        Training classes in display order; None takes the true labels that
        occur among the predictions.
    normalize : bool, default=True
        Show row fractions instead of counts.
    cmap : str or Colormap, default="Blues"
        Colour map.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; None creates a figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure (the matrix axes and its colour bar).

    See Also
    --------
    skavae.evaluation.seen_unseen_confusion : The table drawn here.

    Examples
    --------
    >>> from skavae.plotting import plot_confusion_matrix
    >>> fig = plot_confusion_matrix(["a", "b", "2", "2"], ["a", "b", "b", "a"])
    >>> len(fig.axes)
    2
    """
    table = seen_unseen_confusion(
        y_true, y_pred, seen_classes=seen_classes, normalize=normalize
    )
    n_rows, n_cols = table.shape
    fig, ax = figure_and_ax(ax, (1.5 + 0.5 * n_cols, 1.0 + 0.45 * n_rows))
    _heatmap(
        fig,
        ax,
        table,
        cmap=cmap,
        fmt=".2f" if normalize else ".0f",
        colorbar_label="fraction of true class" if normalize else "count",
    )
    n_seen = table.attrs["n_seen"]
    if 0 < n_seen < n_rows:
        ax.axhline(n_seen - 0.5, color="tab:red", linewidth=2)
    ax.set_xlabel("predicted class")
    ax.xaxis.set_label_position("top")
    ax.set_ylabel("true class (seen above the line, unseen below)")
    return fig


def plot_proximity_matrix(
    X, y=None, *, model=None, normalize=True, cmap="viridis", fmt=".0f", ax=None
):
    """Heat map of the distances between class centres, with the numbers.

    The paper's Figure 8 (bottom row): distances between the centres of the
    class clusters in latent space, normalised to 0-100; the colours guide the
    eye to the largest and smallest values.

    Parameters
    ----------
    X : array-like or pandas.DataFrame
        Latents (n_samples, n_dims), objects encoded with ``model``, or a matrix
        returned by :func:`~skavae.evaluation.proximity_matrix` (then ``y`` is
        None).
    y : array-like of shape (n_samples,) or None, default=None
        Class labels.
    model : fitted transformer or None, default=None
        Encoder of ``X``.
    normalize : bool, default=True
        Scale so that the largest distance is 100.
    cmap : str or Colormap, default="viridis"
        Colour map.
    fmt : str, default=".0f"
        Format of the numbers.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; None creates a figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure (the matrix axes and its colour bar).

    See Also
    --------
    skavae.evaluation.proximity_matrix : The matrix drawn here.

    Examples
    --------
    >>> from skavae.plotting import plot_proximity_matrix
    >>> fig = plot_proximity_matrix([[0.0], [1.0], [5.0]], ["a", "b", "c"])
    >>> len(fig.axes)
    2
    """
    if isinstance(X, pd.DataFrame) and y is None:
        table = X
        if table.shape[0] != table.shape[1]:
            raise ValueError(
                f"A precomputed proximity matrix must be square; got {table.shape}."
            )
    elif y is None:
        raise ValueError("Pass y (the class labels) unless X is a proximity matrix.")
    else:
        table = proximity_matrix(X, y, model=model, normalize=normalize)
    n = table.shape[0]
    fig, ax = figure_and_ax(ax, (1.5 + 0.5 * n, 1.0 + 0.45 * n))
    _heatmap(
        fig,
        ax,
        table,
        cmap=cmap,
        fmt=fmt,
        colorbar_label="distance between centres" + (" (0-100)" if normalize else ""),
    )
    return fig
