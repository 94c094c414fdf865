"""Training curves of every loss term."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skavae._plotting._utils import new_figure

TERMS = ("loss", "recon", "kl", "affinity")


def plot_history(model_or_history, *, terms=TERMS, logy=False):
    """Training and validation curves of every loss term, one panel per term.

    Parameters
    ----------
    model_or_history : fitted AffinityVAE or pandas.DataFrame
        A model (its ``history_``) or a history table with an ``epoch`` column,
        one column per term and optional ``val_<term>`` columns.
    terms : sequence of str, default=("loss", "recon", "kl", "affinity")
        Terms to draw (total loss, reconstruction, KL, affinity).
    logy : bool, default=False
        Logarithmic loss axes.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(terms)`` axes; validation curves are dashed and drawn when the
        history has them.

    See Also
    --------
    skavae.AffinityVAE : Its ``history_`` is what is drawn.

    Examples
    --------
    >>> import pandas as pd
    >>> from skavae.plotting import plot_history
    >>> history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.5],
    ...                         "val_loss": [3.2, 2.4, 2.0]})
    >>> len(plot_history(history, terms=["loss"]).axes)
    1
    """
    history = getattr(model_or_history, "history_", model_or_history)
    if not isinstance(history, pd.DataFrame):
        raise ValueError(
            "model_or_history must be a fitted model with history_ or a DataFrame; "
            f"got {type(model_or_history).__name__}."
        )
    terms = list(terms)
    missing = [t for t in terms if t not in history.columns]
    if not terms or missing:
        raise ValueError(
            f"terms {missing} are not columns of the history ({list(history.columns)})."
        )
    epochs = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
    fig = new_figure((3.2 * len(terms), 3.0))
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    for ax, term in zip(axes, terms):
        ax.plot(epochs, history[term], marker=".", label="train")
        val = f"val_{term}"
        if val in history and history[val].notna().any():
            ax.plot(
                epochs, history[val], marker=".", linestyle="--", label="validation"
            )
        ax.set_title(term)
        ax.set_xlabel("epoch")
        if logy:
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
