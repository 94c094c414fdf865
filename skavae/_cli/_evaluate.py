"""``skavae evaluate``: latents, KNN results and figures of a folder."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

import skavae
from skavae._cli._common import (
    CLIError,
    encode_all,
    latents_frame,
    load_folder,
    make_dir,
    sidecar,
    use_agg_backend,
    write_json,
)
from skavae._cli._report import (
    evaluate_map,
    print_summary,
    unseen_placement,
    write_figures,
    write_tables,
)


def load_model(path):
    """A fitted AffinityVAE from a skavae model file, or a one-line error.

    Only the safe format of :func:`skavae.load` is read: a pickle or joblib
    file (which could run code when loaded) is refused like any other file
    that is not a skavae model file.
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from skavae._persistence import load_model as load

    try:
        model = load(path)
    except FileNotFoundError:
        raise CLIError(f"model file {path!r} does not exist.") from None
    except (ValueError, OSError) as exc:  # the messages name the file
        raise CLIError(str(exc)) from None
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CLIError(f"{path!r} holds an AffinityVAE that is not fitted.") from None
    return model


def _read_reference(path, latent_dims):
    try:
        frame = pd.read_csv(path, dtype={"label": str})
    except Exception as exc:
        raise CLIError(f"{path!r} is not a readable latents CSV: {exc}") from None
    z_cols = [f"z{d}" for d in range(latent_dims)]
    missing = [c for c in ["path", "label", *z_cols] if c not in frame.columns]
    if missing:
        raise CLIError(f"{path!r} lacks the columns {missing} of a reference map.")
    Z = frame[z_cols].to_numpy(dtype=np.float64)
    if not np.isfinite(Z).all():
        raise CLIError(f"{path!r} holds non-finite latents.")
    return Z, frame["label"].to_numpy().astype(str), frame["path"].tolist()


def _reference(args, model, paths, y, mu):
    """Reference map (Z_ref, y_ref), each file's row in it, and a description."""
    ref_path = args.reference or sidecar(args.model, "latents.csv")
    if args.reference or os.path.isfile(ref_path):
        Z_ref, y_ref, ref_paths = _read_reference(ref_path, mu.shape[1])
        index = {os.path.realpath(p): i for i, p in enumerate(ref_paths)}
        ref_row = np.array([index.get(os.path.realpath(p), -1) for p in paths])
        return Z_ref, y_ref, ref_row, f"training latents from {ref_path}"
    seen = getattr(model, "classes_", None)
    mask = np.isin(y, seen.astype(str)) if seen is not None else np.ones(len(y), bool)
    if not mask.any():
        raise CLIError(
            f"no reference map: {ref_path!r} does not exist and no file of "
            f"{args.data_dir!r} has a class the model was trained on."
        )
    ref_row = np.full(len(y), -1)
    ref_row[mask] = np.arange(mask.sum())
    return mu[mask], y[mask], ref_row, f"the seen-class files of {args.data_dir}"


def evaluate(args):
    """Encode DATA_DIR with MODEL; write latents, KNN results, metrics, figures."""
    from skavae.evaluation import seen_unseen_confusion

    start = time.perf_counter()
    if args.format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CLIError(
                "--format parquet needs pyarrow (pip install pyarrow); "
                "use --format csv."
            ) from None
    model = load_model(args.model)
    X, y, names = load_folder(args.data_dir, follow_symlinks=args.follow_symlinks)
    if tuple(X.shape[1:]) != tuple(model.input_shape_):
        raise CLIError(
            f"{args.data_dir!r} holds objects of shape {tuple(X.shape[1:])} but "
            f"{args.model!r} was trained on {tuple(model.input_shape_)}."
        )
    make_dir(args.out)
    mu, pose = encode_all(model, X, quiet=args.quiet)
    Z_ref, y_ref, ref_row, ref_text = _reference(args, model, X.paths, y, mu)
    res = evaluate_map(
        Z_ref,
        y_ref,
        mu.astype(np.float64),
        y,
        ref_row,
        n_neighbors=args.n_neighbors,
        n_soft_neighbors=args.soft_neighbors,
    )
    seen, counted, hard = res["seen"], res["counted"], res["hard"]
    classes = list(res["classes"])

    latents = latents_frame(X.paths, y, mu, pose)
    latents.insert(3, "seen", seen)
    latents.insert(4, "in_reference", ref_row >= 0)
    latents["knn_prediction"] = hard
    latents["knn_correct"] = pd.Series(hard == y).where(seen)
    soft = res["soft"].copy()
    soft.insert(0, "file", names)
    soft.insert(1, "label", y)
    soft.insert(2, "seen", seen)
    confusion = seen_unseen_confusion(
        y[counted], hard[counted], seen_classes=classes, normalize=False
    )
    fmt = args.format
    written = write_tables(args.out, res["report"], confusion, latents, soft, fmt)

    placement = unseen_placement(res["report"])
    unseen_classes = sorted(set(y[~seen].tolist()))
    metrics = {
        "skavae_version": skavae.__version__,
        "model": os.path.abspath(args.model),
        "data_dir": os.path.abspath(args.data_dir),
        "n_files": len(y),
        "reference": ref_text,
        "seen_classes": classes,
        "unseen_classes": unseen_classes,
        "evaluation": res["mode"],
        "n_seen_evaluated": int((counted & seen).sum()),
        "n_unseen": int((~seen).sum()),
        "knn_accuracy_seen": res["accuracy"],
        "n_neighbors": args.n_neighbors,
        "soft_neighbors": args.soft_neighbors,
        "separation_score": res["report"].attrs.get("separation_score"),
        "unseen": placement,
    }
    if not args.no_figures:
        use_agg_backend()
        new = ~(ref_row >= 0)
        in_data = np.flatnonzero(seen)
        pick = in_data[0] if len(in_data) else 0
        written += write_figures(
            args.out,
            model=model,
            Z_map=np.vstack([Z_ref, mu[new]]),
            y_map=np.concatenate([y_ref, y[new]]),
            split=["train"] * len(Z_ref) + ["test"] * int(new.sum()),
            seen_classes=classes,
            y_true=y[counted],
            y_pred=hard[counted],
            x_traverse=X[[int(pick)]],
            embedding=args.embedding,
        )
    metrics["wall_seconds"] = round(time.perf_counter() - start, 2)
    write_json(os.path.join(args.out, "metrics.json"), metrics)
    written.append("metrics.json")

    print(
        f"Evaluated {len(y)} files of {args.data_dir} ({len(classes)} seen "
        f"classes, {len(unseen_classes)} unseen: {' '.join(unseen_classes) or '-'}) "
        f"against {ref_text}."
    )
    print_summary(
        res["accuracy"],
        placement,
        what="seen classes",
        mode=res["mode"],
        n=metrics["n_seen_evaluated"],
        k=args.n_neighbors,
    )
    print(f"Wrote {', '.join(written)} to {args.out}", file=sys.stdout)
    return 0
