"""``skavae evaluate``: latents, KNN results and figures of a folder."""

from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np
import pandas as pd

import skavae
from skavae._cli._args import (
    add_folder_options,
    add_particle_options,
    fraction,
    positive_int,
)
from skavae._cli._common import (
    CLIError,
    UsageError,
    encode_all,
    latent_columns,
    latents_frame,
    load_folder,
    make_dir,
    sidecar,
    use_agg_backend,
    write_json,
    write_text,
)
from skavae._cli._config import folder_options
from skavae._cli._folders import output_folder
from skavae._cli._report import (
    evaluate_map,
    print_summary,
    unseen_placement,
    write_figures,
    write_tables,
)
from skavae._cli._volumes import FOLDER as VOLUMES
from skavae._cli._volumes import class_centres, write_volumes
from skavae._cli._volumes import summarise as _summarise

HELP = (
    "latents, KNN results and figures of a .mrc folder",
    "Encode a labelled .mrc folder with a model from `skavae fit`; classify "
    "seen classes by KNN against the training latents and place unseen ones.",
)

EXAMPLES = """examples:
  skavae evaluate model.skavae test/ --out results/
  skavae evaluate model.skavae test/ --embedding pca --no-figures
  skavae evaluate model.skavae shrec/ --label-regex '^([^_]+)_' --resample
  skavae evaluate model.skavae particles/ --unlabelled --n-clusters 5
  skavae evaluate run/model.skavae --particles tomos/tomo_001.star \
      --tomograms tomos/ --out results/classified.star --split-by-class

writes latents.csv (file, label, seen, latents, pose, KNN prediction),
soft_knn.csv, metrics.csv (per class), confusion.csv, metrics.json and the
figures embedding.png, confusion_matrix.png, traversals.png, history.png;
for volumes also volumes/<class>_centre.mrc (the decoded mean latent of each
seen class of the reference map) and volumes/<class>_average.mrc (the mean
input volume of each class), with the data's voxel size (--no-figures skips
figures and volumes).
with --unlabelled there is no accuracy: the latents are clustered (k-means,
--n-clusters, default the model's number of classes) into latents.csv (column
cluster), clusters.csv, metrics.json, the figures and, for volumes,
volumes/cluster<k>_centre.mrc and volumes/cluster<k>_average.mrc.
Classes the model was not trained on are reported as unseen (the seen class
they are placed next to), not as errors.
with --particles, --out may be a .star file: the input rows with the predicted
rlnClassNumber (1-based, in the model's class order), skavaeClassName,
skavaeProbability (soft KNN), skavaeUnknown (1: farther from the training map
than --unknown-quantile of its own spacing) and skavaeLatent01.., next to it
<stem>.metrics.json; with a folder, DIR/particles.star and the usual files."""


def add_arguments(p):
    """The options of ``skavae evaluate``."""
    from skavae._cli._report import EMBEDDINGS

    p.add_argument("model", metavar="MODEL")
    p.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        nargs="?",
        help="folder of .mrc files (or give --particles and --tomograms)",
    )
    p.add_argument(
        "--out",
        default="skavae-evaluation",
        metavar="DIR",
        help="folder of the results; with --particles also a .star file",
    )
    p.add_argument(
        "--reference",
        metavar="CSV",
        help="reference latents (default: MODEL-stem.latents.csv from `fit`; "
        "without it, the seen-class files of DATA_DIR, cross-validated)",
    )
    p.add_argument("--n-neighbors", type=positive_int, default=5, metavar="K")
    p.add_argument("--soft-neighbors", type=positive_int, default=100, metavar="K")
    p.add_argument(
        "--embedding",
        choices=EMBEDDINGS,
        default="auto",
        help="auto: UMAP for images, t-SNE for volumes",
    )
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the results in --out"
    )
    add_folder_options(
        p,
        unlabelled_help="read DATA_DIR without labels: cluster the latents "
        "(k-means) instead of measuring a KNN accuracy",
    )
    p.add_argument(
        "--n-clusters",
        type=positive_int,
        metavar="K",
        help="with --unlabelled: clusters of k-means (default: the number of "
        "classes the model was trained on)",
    )
    add_particle_options(p, box_default=None)
    p.add_argument(
        "--split-by-class",
        action="store_true",
        help="with --particles, also one .star per predicted class",
    )
    p.add_argument(
        "--unknown-quantile",
        type=fraction,
        default=0.99,
        metavar="Q",
        help="flag particles farther from the training map than this quantile "
        "of its nearest-neighbour distances (default 0.99)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="encode on a dask cluster (e.g. tcp://host:8786; needs "
        "dask[distributed]): the model goes once to each worker, the files are "
        "read there; results as on this machine",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _encode(args, model, X):
    """Latent means and poses, here or (``--scheduler``) on a dask cluster."""
    if args.scheduler is None:
        return encode_all(model, X, quiet=args.quiet)
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(
            "--scheduler needs dask's distributed scheduler: pip install "
            "'dask[distributed]'."
        ) from None
    from skavae.distributed import transform

    if not args.quiet:
        print(f"encoding {len(X)} objects on the dask cluster at {args.scheduler}")
    try:
        mu, pose = transform(model, X, client_or_scheduler=args.scheduler, pose=True)
    except ConnectionError as exc:
        raise CLIError(f"--scheduler: {exc}") from None
    return mu, pose


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


def _check_folder_options(args, on_particles):
    """Folder options (but --follow-symlinks) do not apply to --particles."""
    if args.n_clusters is not None and not args.unlabelled:
        raise UsageError("--n-clusters applies to --unlabelled.")
    from skavae._cli import _tomo

    _tomo.refuse_folder_options(args, on_particles)


def _read_reference(path, latent_dims):
    try:
        frame = pd.read_csv(path, dtype={"label": str})
    except Exception as exc:
        raise CLIError(f"{path!r} is not a readable latents CSV: {exc}") from None
    z_cols = latent_columns(latent_dims)
    if z_cols[0] not in frame.columns and "z0" in frame.columns:
        z_cols = [f"z{d}" for d in range(latent_dims)]  # written by older versions
    missing = [c for c in ["path", "label", *z_cols] if c not in frame.columns]
    if missing:
        raise CLIError(f"{path!r} lacks the columns {missing} of a reference map.")
    if frame["label"].isna().all():  # from `skavae fit --unlabelled`: no map
        return None
    Z = frame[z_cols].to_numpy(dtype=np.float64)
    if not np.isfinite(Z).all():
        raise CLIError(f"{path!r} holds non-finite latents.")
    return Z, frame["label"].to_numpy().astype(str), frame["path"].tolist()


def _reference(args, model, paths, y, mu, source=None):
    """Reference map (Z_ref, y_ref), each file's row in it, and a description."""
    ref_path = args.reference or sidecar(args.model, "latents.csv")
    ref = None
    if args.reference or os.path.isfile(ref_path):
        ref = _read_reference(ref_path, mu.shape[1])
    if ref is not None:
        Z_ref, y_ref, ref_paths = ref
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


def run(args):
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
    _check_folder_options(args, on_particles)
    star_out = on_particles and args.out.lower().endswith(".star")
    if on_particles:
        star_path = args.out if star_out else os.path.join(args.out, "particles.star")
        _tomo.check_not_input(
            star_path,
            "--out",
            [("--particles", args.particles), ("MODEL", args.model),
             ("--tomograms", args.tomograms), ("--reference", args.reference)],
        )  # fmt: skip
    if os.path.exists(args.out) and not args.overwrite:
        if star_out or not os.path.isdir(args.out) or os.listdir(args.out):
            raise CLIError(
                f"{args.out!r} (--out) already exists; pass --overwrite to replace it."
            )
    model = load_model(args.model)
    if on_particles:
        X, y = _tomo.load_model_particles(args, model)
        if y is None:
            y = np.full(len(X), "(unlabelled)")
        paths, source = X.ids, args.particles
        names = [os.path.basename(p) for p in paths]
    else:
        X, y, names = load_folder(args.data_dir, **folder_options(args))
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
        report_dir = args.out
    mu, pose = _encode(args, model, X)
    if y is None:  # --unlabelled: clusters, no accuracy
        from skavae._cli._unlabelled import evaluate_unlabelled

        ref_path = args.reference or sidecar(args.model, "latents.csv")
        reference = None
        if args.reference or os.path.isfile(ref_path):
            reference = _read_reference(ref_path, mu.shape[1])
        if reference is not None:
            reference = (*reference[:2], f"training latents from {ref_path}")
        return evaluate_unlabelled(
            args, model, X, paths, mu, pose,
            source=source, reference=reference, start=start,
            owned=_owned, readme=README,
        )  # fmt: skip
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
    with contextlib.ExitStack() as stack:
        if report_dir is not None:  # written whole, then renamed into place
            report_dir = stack.enter_context(
                output_folder(args.out, overwrite=True, option="--out", owned=_owned)
            )
            if on_particles:
                star_path = os.path.join(report_dir, "particles.star")
        if report_dir is not None:
            written = write_tables(
                report_dir, res["report"], confusion, latents, soft, fmt
            )

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
            metrics["star"] = [
                os.path.abspath(s).replace(
                    os.path.abspath(report_dir), os.path.abspath(args.out)
                )
                if report_dir is not None
                else os.path.abspath(s)
                for s in stars
            ]
        if not args.no_figures and report_dir is not None:
            use_agg_backend()
            new = ~(ref_row >= 0)
            in_data = np.flatnonzero(seen)
            pick = in_data[0] if len(in_data) else 0
            if not args.quiet:
                print(
                    "Drawing the figures (2D embedding of the latent map, "
                    "traversals): this can take a minute...",
                    file=sys.stderr,
                )
            written += write_figures(
                report_dir,
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
            if len(model.input_shape_) == 3:
                written += _summarise(
                    write_volumes(
                        report_dir,
                        model,
                        X,
                        y,
                        class_centres(Z_ref, y_ref),
                        voxel_size=getattr(X, "voxel_size", None),
                        quiet=args.quiet,
                    )
                )
        metrics["wall_seconds"] = round(time.perf_counter() - start, 2)
        if report_dir is not None:
            write_json(os.path.join(report_dir, "metrics.json"), metrics)
            write_text(os.path.join(report_dir, "README.txt"), README)
            written += ["metrics.json", "README.txt"]
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


def _final(path, tmp, out):
    """Where ``path``, written under the temporary folder ``tmp``, ends up."""
    path = os.path.abspath(path)
    if tmp is None:
        return path
    return os.path.join(os.path.abspath(out), os.path.relpath(path, tmp))


def _owned(name, is_dir):
    """Whether an entry of --out is one `evaluate` writes (--overwrite)."""
    if is_dir:
        return name == VOLUMES
    suffixes = (".csv", ".parquet", ".json", ".png", ".star", ".txt")
    return name.lower().endswith(suffixes)


#: README.txt written next to the results of ``skavae evaluate``.
README = """Results of `skavae evaluate` (see `skavae evaluate --help`).

metrics.csv: one row per class (seen classes first), columns
  seen                   whether the model was trained on the class
  n_samples              files of the class evaluated
  accuracy               hard-KNN accuracy (empty for unseen classes)
  cluster_accuracy       fraction the cluster-mean rule assigns to the class
  unknown_fraction       fraction the cluster-mean rule calls unknown (high is
                         good for unseen classes)
  predicted_class        most frequent hard-KNN prediction
  predicted_fraction     its frequency (unseen: the seen class it is read as)
  soft_probability       mean soft-KNN probability of predicted_class
  nearest_seen_class     the seen class whose centre is nearest this class's
  nearest_seen_distance  the Euclidean distance between the two centres
confusion.csv: counts of true (rows) and predicted (columns) classes.
latents.csv: one row per file: path, file, label, seen, in_reference, the
  latent means affinityvae0.. (the names of transform with
  set_output(transform="pandas")), pose0.., knn_prediction, knn_correct.
soft_knn.csv: per file, the fraction of its soft neighbours in each class.
metrics.json: the settings, the accuracy and where unseen classes land.
volumes/ (3D data): <class>_centre.mrc, the decoder's volume at the mean
  latent of each class of the reference map; <class>_average.mrc, the mean
  input volume of each class; the voxel size is in their headers.
"""
