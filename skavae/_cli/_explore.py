"""``skavae explore``: the latent map of a folder as one interactive HTML page."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from skavae._cli._args import (
    add_folder_options,
    add_particle_options,
    fraction,
    positive_int,
    seed,
)
from skavae._cli._common import CLIError, UsageError, encode_all, load_folder, make_dir
from skavae._cli._config import folder_options

#: Embeddings of the map; auto: UMAP for images, t-SNE for volumes.
EMBEDDINGS = ("auto", "umap", "tsne", "pca", "none")

HELP = (
    "interactive latent map of a .mrc folder (one HTML file)",
    "Encode a .mrc folder (or a particle list) with a model from `skavae fit` "
    "and write its latent map, placed on the training map, as one "
    "self-contained HTML page: colour by class, KNN prediction or unknown, "
    "a thumbnail on hover, the decoded object on click, and a lasso that "
    "exports the selected rows as CSV or STAR from the browser (no server, "
    "works offline). Needs plotly: pip install skavae[explore].",
)

EXAMPLES = """examples:
  skavae explore run/model.skavae test/ --out map.html
  skavae explore run/model.skavae test/ --out map.html --embedding pca \
      --max-thumbnails 500
  skavae explore run/model.skavae --particles tomos/tomo_001.star \
      --tomograms tomos/ --out tomo_001.html

the training map is MODEL-stem.latents.csv (written by `skavae fit`), or
--reference; without it the seen-class objects of the data are the map.
Predictions are `skavae evaluate`'s hard KNN against the training map;
unknown: farther from it than --unknown-quantile of its own spacing (as
evaluate --particles's skavaeUnknown). Each object with pictures costs about
1-3 kB of the page, on top of plotly.js (about 4.6 MB); with more objects than
--max-thumbnails, a random subset gets pictures (a warning names the numbers)
and every object is still drawn and exported."""


def add_arguments(p):
    """The options of ``skavae explore``."""
    from skavae._plotting._latent_map import MAX_THUMBNAILS

    p.add_argument("model", metavar="MODEL")
    p.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        nargs="?",
        help="folder of .mrc files (or give --particles and --tomograms)",
    )
    p.add_argument(
        "--out",
        default="skavae-map.html",
        metavar="HTML",
        help="the page to write (default skavae-map.html)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out file"
    )
    p.add_argument(
        "--reference",
        metavar="CSV",
        help="training latents (default: MODEL-stem.latents.csv from `fit`)",
    )
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="do not draw the training map (it still gives the predictions)",
    )
    p.add_argument(
        "--embedding",
        choices=EMBEDDINGS,
        default="auto",
        help="2D embedding: auto (UMAP for images, t-SNE for volumes), umap, "
        "tsne, pca, or none (latents of at most 2 dimensions as they are)",
    )
    p.add_argument(
        "--max-thumbnails",
        type=positive_int,
        default=MAX_THUMBNAILS,
        metavar="N",
        help=f"most objects carrying pictures (default {MAX_THUMBNAILS}); more "
        "objects: a random N of them, with a warning",
    )
    p.add_argument(
        "--thumbnail-size",
        type=positive_int,
        default=64,
        metavar="PX",
        help="largest side of the pictures in pixels (default 64)",
    )
    p.add_argument(
        "--projection",
        choices=("slice", "max", "mean"),
        default="slice",
        help="how volumes are pictured: central slice (default), max or mean "
        "projection along the first axis",
    )
    p.add_argument(
        "--no-decoded",
        action="store_true",
        help="no decoded objects (a smaller page)",
    )
    p.add_argument(
        "--n-neighbors",
        type=positive_int,
        default=5,
        metavar="K",
        help="neighbours of the KNN prediction (default 5, as evaluate)",
    )
    p.add_argument(
        "--unknown-quantile",
        type=fraction,
        default=0.99,
        metavar="Q",
        help="unknown: farther from the training map than this quantile of its "
        "nearest-neighbour distances (default 0.99)",
    )
    p.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="seed of the embedding and of the thumbnail subsample (default 0)",
    )
    p.add_argument("--title", metavar="TEXT", help="title of the page")
    add_folder_options(
        p,
        unlabelled_help="read DATA_DIR without labels: the map is coloured by "
        "prediction only",
    )
    add_particle_options(p, box_default=None)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _check_plotly():
    try:
        from skavae._plotting._latent_map import import_plotly

        import_plotly()
    except ImportError:
        raise CLIError(
            "explore needs plotly, an optional extra: pip install skavae[explore]"
        ) from None


def _check_out(args):
    from skavae._cli import _tomo

    out = args.out
    if not out.lower().endswith((".html", ".htm")):
        raise UsageError(f"--out {out!r} must be an .html file.")
    _tomo.check_not_input(
        out,
        "--out",
        [("MODEL", args.model), ("--particles", args.particles),
         ("--reference", args.reference), ("--tomograms", args.tomograms)],
    )  # fmt: skip
    if os.path.isdir(out):
        raise CLIError(f"--out {out!r} is a folder; give an .html file name.")
    if os.path.exists(out) and not args.overwrite:
        raise CLIError(
            f"{out!r} (--out) already exists; pass --overwrite to replace it."
        )
    make_dir(os.path.dirname(os.path.abspath(out)), option="--out")


def _load(args, model, on_particles):
    """``(X, y or None, paths, source, particles or None)`` of the data."""
    from skavae._cli import _tomo

    if on_particles:
        X, y = _tomo.load_model_particles(args, model)
        return X, y, list(X.ids), args.particles, X.particles
    X, y, _ = load_folder(args.data_dir, **folder_options(args))
    return X, y, list(X.paths), args.data_dir, None


def run(args):
    """Encode the data, place it on the training map, write the HTML page."""
    from skavae._cli import _tomo
    from skavae._cli._evaluate import _reference, load_model
    from skavae._cli._report import evaluate_map

    start = time.perf_counter()
    _check_plotly()
    on_particles = _tomo.check_particle_options(args)
    _tomo.refuse_folder_options(args, on_particles)
    _check_out(args)
    model = load_model(args.model)
    X, y, paths, source, particles = _load(args, model, on_particles)
    if tuple(X.shape[1:]) != tuple(model.input_shape_):
        raise CLIError(
            f"{source!r} holds objects of shape {tuple(X.shape[1:])} but "
            f"{args.model!r} was trained on {tuple(model.input_shape_)}."
        )
    mu, _ = encode_all(model, X, quiet=args.quiet)
    Z = mu.astype(np.float64)
    y_eval = np.full(len(Z), "(unlabelled)") if y is None else np.asarray(y)
    Z_ref, y_ref, ref_row, ref_text = _reference(args, model, paths, y_eval, Z, source)
    res = evaluate_map(Z_ref, y_ref, Z, y_eval, ref_row, n_neighbors=args.n_neighbors)
    unknown = _tomo.unknown_flags(Z_ref, Z, ref_row, args.unknown_quantile)
    reference = None
    from_file = ref_text.startswith("training latents")
    if from_file and not args.no_reference:  # the training rows not in the data
        keep = np.setdiff1d(np.arange(len(Z_ref)), ref_row[ref_row >= 0])
        if len(keep):  # none when the data is the training folder itself
            reference = (Z_ref[keep], y_ref[keep])
    method = args.embedding
    if method == "auto":
        method = "tsne" if len(model.input_shape_) == 3 else "umap"
    n_ref = 0 if reference is None else len(reference[0])
    if method in ("umap", "tsne") and len(Z) + n_ref < 4:
        raise CLIError(
            f"--embedding {method} needs at least 4 points; {source!r} gives "
            f"{len(Z)}: use --embedding pca."
        )
    from skavae._plotting._explorer_html import write_latent_map

    try:
        with warnings.catch_warnings():
            # umap-learn's note that a seed makes it single-threaded: not ours
            warnings.filterwarnings("ignore", message="n_jobs value", module="umap")
            write_latent_map(
                args.out,
                model,
                X,
                None if y is None else np.asarray(y).astype(str),
                latents=Z,
                reference=reference,
                method=method,
                predictions=np.asarray(res["hard"]).astype(str),
                unknown=unknown,
                decoded=not args.no_decoded,
                particles=particles,
                projection=args.projection,
                thumbnail_size=args.thumbnail_size,
                max_thumbnails=args.max_thumbnails,
                random_state=args.seed,
                title=args.title
                or f"skavae latent map of {os.path.basename(os.path.normpath(source))}",
            )
    except ValueError as exc:
        raise CLIError(f"{source}: {exc}") from None
    size = os.path.getsize(args.out) / 1e6
    seconds = time.perf_counter() - start
    pictured = min(len(Z), args.max_thumbnails)
    print(
        f"Wrote {args.out}: {len(Z)} points ({pictured} with pictures, "
        f"{int(unknown.sum())} unknown) against {ref_text}, {n_ref} of them "
        f"drawn; {method}, {size:.2f} MB, {seconds:.1f} s."
    )
    return 0
