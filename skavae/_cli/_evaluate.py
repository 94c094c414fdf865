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


def _reference(args, model, paths, y, mu, source=None):
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
            f"{source or args.data_dir!r} has a class the model was trained on."
        )
    ref_row = np.full(len(y), -1)
    ref_row[mask] = np.arange(mask.sum())
    return (
        mu[mask],
        y[mask],
        ref_row,
        f"the seen-class files of {source or args.data_dir}",
    )


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
    from skavae._cli import _tomo

    on_particles = _tomo.check_particle_options(args)
    star_out = on_particles and args.out.lower().endswith(".star")
    if on_particles:
        star_path = args.out if star_out else os.path.join(args.out, "particles.star")
        _tomo.check_not_input(
            star_path,
            "--out",
            [("--particles", args.particles), ("MODEL", args.model),
             ("--tomograms", args.tomograms), ("--reference", args.reference)],
        )  # fmt: skip
    model = load_model(args.model)
    if on_particles:
        shape = tuple(int(v) for v in model.input_shape_)
        if len(shape) != 3 or len(set(shape)) != 1:
            raise CLIError(
                f"{args.model!r} was trained on objects of shape {shape}, not "
                "cubic subtomograms."
            )
        X = _tomo.load_particles(args, args.box or shape[0])
        y = _tomo.particle_labels(X, args.label_column, required=False)
        if y is None:
            y = np.full(len(X), "(unlabelled)")
        paths, source = X.ids, args.particles
        names = [os.path.basename(p) for p in paths]
    else:
        X, y, names = load_folder(args.data_dir, follow_symlinks=args.follow_symlinks)
        paths, source = X.paths, args.data_dir
    if tuple(X.shape[1:]) != tuple(model.input_shape_):
        raise CLIError(
            f"{source!r} holds objects of shape {tuple(X.shape[1:])} but "
            f"{args.model!r} was trained on {tuple(model.input_shape_)}."
        )
    if star_out:
        folder = os.path.dirname(os.path.abspath(args.out))
        make_dir(folder)
        report_dir = None
    else:
        make_dir(args.out)
        report_dir = args.out
    mu, pose = encode_all(model, X, quiet=args.quiet)
    Z_ref, y_ref, ref_row, ref_text = _reference(args, model, paths, y, mu, source)
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

    latents = latents_frame(paths, y, mu, pose)
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
    written = []
    if report_dir is not None:
        written = write_tables(report_dir, res["report"], confusion, latents, soft, fmt)

    placement = unseen_placement(res["report"])
    unseen_classes = sorted(set(y[~seen].tolist()))
    metrics = {
        "skavae_version": skavae.__version__,
        "model": os.path.abspath(args.model),
        "data_dir": os.path.abspath(source),
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
    if on_particles:
        stars = _tomo.write_star_results(
            args, X, model, res, mu, pose, ref_row, Z_ref, y_ref, star_path
        )
        written += [os.path.basename(s) for s in stars]
        metrics["particles"] = os.path.abspath(args.particles)
        metrics["tomograms"] = os.path.abspath(args.tomograms)
        metrics["star"] = [os.path.abspath(s) for s in stars]
    if not args.no_figures and report_dir is not None:
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
    if report_dir is not None:
        write_json(os.path.join(report_dir, "metrics.json"), metrics)
        written.append("metrics.json")
    else:
        metrics_path = sidecar(args.out, "metrics.json")
        write_json(metrics_path, metrics)
        written.append(os.path.basename(metrics_path))

    what = "particles" if on_particles else "files"
    print(
        f"Evaluated {len(y)} {what} of {source} ({len(classes)} seen "
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
    where = os.path.dirname(os.path.abspath(args.out)) if star_out else args.out
    print(f"Wrote {', '.join(written)} to {where}", file=sys.stdout)
    return 0
