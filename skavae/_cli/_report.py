"""Latent-map evaluation and figures shared by ``skavae evaluate`` and ``demo``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from skavae._cli._common import CLIError, save_figure, write_table

EMBEDDINGS = ("auto", "umap", "tsne", "pca")
MAX_EMBEDDED = 5000  # points drawn in the embedding figure (UMAP/t-SNE cost)


def evaluate_map(Z_ref, y_ref, Z, y, ref_row, *, n_neighbors=5, n_soft_neighbors=100):
    """Hard/soft KNN of every object and the per-class report.

    Parameters
    ----------
    Z_ref, y_ref : reference map (training latents and labels).
    Z, y : latents and labels of the objects evaluated.
    ref_row : int array, the row of ``Z_ref`` holding each object (-1 if none):
        objects of the reference get out-of-fold predictions.

    Returns
    -------
    dict with ``hard`` (labels), ``soft`` (DataFrame of class fractions),
    ``seen`` (mask), ``counted`` (mask of the objects behind the accuracy and
    the confusion matrix), ``mode`` ("held-out" or "cross-validation"),
    ``accuracy`` (hard KNN on seen objects, None without any) and ``report``.
    """
    from skavae.evaluation import knn_predictions, latent_map_report

    y = np.asarray(y).astype(str)
    y_ref = np.asarray(y_ref).astype(str)
    classes = np.unique(y_ref)
    seen = np.isin(y, classes)
    in_ref = ref_row >= 0
    if in_ref.any() and pd.Series(y_ref).value_counts().min() < 2:
        raise CLIError(
            "evaluating training files needs at least 2 files per class for "
            "cross-validation; give a folder of held-out files."
        )
    hard, soft = knn_predictions(
        Z_ref,
        y_ref,
        Z,
        reference_rows=np.asarray(ref_row, dtype=np.int64),
        n_neighbors=n_neighbors,
        n_soft_neighbors=n_soft_neighbors,
    )
    held_out = seen & ~in_ref
    mode = "held-out" if held_out.any() else "cross-validation"
    counted = (held_out if held_out.any() else seen & in_ref) | ~seen
    unseen = ~seen
    report = latent_map_report(
        None,
        Z_ref,
        y_ref,
        Z[unseen] if unseen.any() else None,
        y[unseen] if unseen.any() else None,
        X_test=Z[held_out] if held_out.any() else None,
        y_test=y[held_out] if held_out.any() else None,
        n_neighbors=n_neighbors,
        n_soft_neighbors=n_soft_neighbors,
    )
    scored = counted & seen
    accuracy = float(np.mean(hard[scored] == y[scored])) if scored.any() else None
    return {
        "hard": hard.astype(str),
        "soft": soft,
        "seen": seen,
        "counted": counted,
        "mode": mode,
        "accuracy": accuracy,
        "report": report,
        "classes": classes,
    }


def unseen_placement(report):
    """``{class: {nearest_centre, knn_majority, knn_fraction}}`` of unseen rows."""
    rows = report[~report["seen"].astype(bool)]
    return {
        str(label): {
            "nearest_centre": str(r["nearest_seen_class"]),
            "knn_majority": str(r["predicted_class"]),
            "knn_fraction": float(r["predicted_fraction"]),
        }
        for label, r in rows.iterrows()
    }


def print_summary(accuracy, placement, *, what="seen", mode="held-out", n=None, k=5):
    """Hard-KNN accuracy and unseen placement, in the README's format."""
    if accuracy is not None:
        where = "held-out" if mode == "held-out" else "cross-validated"
        count = f" ({n} files)" if n is not None else ""
        print(f"Hard KNN (k={k}) accuracy on {where} {what}{count}: {accuracy:.3f}")
    if placement:
        print(
            f"Unseen {'characters' if what.endswith('characters') else 'classes'}"
            " on the latent map (nearest seen class):"
        )
        for c, r in placement.items():
            print(
                f"  {c}: nearest centre {r['nearest_centre']}, KNN majority "
                f"{r['knn_majority']} ({100 * r['knn_fraction']:.0f}% of its images)"
            )


def write_figures(
    out,
    *,
    model,
    Z_map,
    y_map,
    split,
    seen_classes,
    y_true,
    y_pred,
    x_traverse,
    embedding="auto",
    random_state=0,
):
    """embedding.png, confusion_matrix.png, traversals.png, history.png in ``out``."""
    from skavae.plotting import (
        plot_confusion_matrix,
        plot_embedding,
        plot_history,
        plot_traversals,
    )

    written = []
    n = len(Z_map)
    keep = np.arange(n)
    if n > MAX_EMBEDDED:
        keep = np.sort(
            np.random.RandomState(random_state).choice(n, MAX_EMBEDDED, replace=False)
        )
    if embedding == "auto":  # the paper's choice: t-SNE for volumes, UMAP for images
        embedding = "tsne" if len(model.input_shape_) == 3 else "umap"
    fig = plot_embedding(
        Z_map[keep],
        np.asarray(y_map)[keep],
        method=embedding,
        seen_classes=list(seen_classes),
        split=None if split is None else np.asarray(split)[keep],
        random_state=random_state,
    )
    written.append(_save(out, "embedding.png", fig))
    if len(y_true):
        fig = plot_confusion_matrix(y_true, y_pred, seen_classes=list(seen_classes))
        written.append(_save(out, "confusion_matrix.png", fig))
    fig = plot_traversals(model, x_traverse, n_steps=7)
    written.append(_save(out, "traversals.png", fig))
    if len(model.history_):
        written.append(_save(out, "history.png", plot_history(model)))
    return written


def _save(out, name, fig):
    path = os.path.join(out, name)
    save_figure(path, fig)
    return name


def write_tables(out, report, confusion, latents, soft, fmt="csv"):
    """metrics.csv, confusion.csv, latents.<fmt>, soft_knn.<fmt> in ``out``."""
    write_table(os.path.join(out, "metrics.csv"), report, index=True)
    write_table(os.path.join(out, "confusion.csv"), confusion, index=True)
    write_table(os.path.join(out, f"latents.{fmt}"), latents)
    write_table(os.path.join(out, f"soft_knn.{fmt}"), soft)
    return ["metrics.csv", "confusion.csv", f"latents.{fmt}", f"soft_knn.{fmt}"]
