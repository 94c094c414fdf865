"""``skavae simulate`` and ``skavae affinity``: labelled folders, affinities."""

from __future__ import annotations

import os
import time

import numpy as np

from skavae._cli._common import (
    CLIError,
    UsageError,
    make_metric,
    write_table,
)
from skavae._cli._folders import output_folder

#: Default affinity metric of each generated data set (mean-difference suits
#: the clean binary-like character images, FSC the volumes).
DEFAULT_METRIC = {
    "alphanumeric": "mean-difference",
    "tetraminos": "fsc",
    "proteins": "fsc",
}


def _classes(text):
    if text is None:
        return None
    if text in ("seen", "unseen", "all"):
        return text
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise UsageError(f"--classes {text!r} names no class.")
    return values


def _generate(args):
    from skavae.datasets import make_alphanumeric, make_proteins, make_tetraminos

    classes = _classes(args.classes)
    common = dict(n_samples=args.n_samples, random_state=args.seed, return_info=True)
    if args.size is not None:
        common["size"] = args.size
    if args.dataset == "alphanumeric":
        return make_alphanumeric(characters=classes, **common)
    if args.dataset == "tetraminos":
        return make_tetraminos(shapes=classes, **common)
    if classes in ("seen", "unseen"):
        raise UsageError(
            "proteins have no seen/unseen sets; give --classes all or PDB ids "
            "(e.g. --classes 1ake,4ake,1hvr)."
        )
    structures = None if classes in (None, "all") else classes
    if args.voxel_size is not None:
        common["voxel_size"] = args.voxel_size
    return make_proteins(structures=structures, **common)


def simulate(args):
    """Write a labelled .mrc folder, its templates, info and class affinities."""
    start = time.perf_counter()
    try:
        X, y, info, templates = _generate(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = args.out_dir
    with output_folder(
        out, overwrite=args.overwrite, option="OUT_DIR", owned=_owned
    ) as tmp:
        paths, labels, metric_name = _write(args, tmp, X, y, info, templates)
    shape = "x".join(str(s) for s in X.shape[1:])
    print(
        f"Wrote {len(paths)} {args.dataset} objects ({shape}, classes "
        f"{' '.join(labels)}) to {os.path.join(out, '')}, with templates/, "
        f"info.csv and affinity.csv ({metric_name} on the templates) in "
        f"{time.perf_counter() - start:.1f} s."
    )
    return 0


def _owned(name, is_dir):
    """Whether an entry of OUT_DIR is one `simulate` writes (--overwrite)."""
    if is_dir:
        return name == "templates"
    return name.lower().endswith((".mrc", ".star")) or name in (
        "info.csv",
        "affinity.csv",
        "README.txt",
    )


def _write(args, out, X, y, info, templates):
    """The files of a simulated folder, written into ``out``."""
    from skavae.affinity import class_affinity_matrix, write_affinity_csv
    from skavae.datasets import save_mrc_folder

    voxel = args.voxel_size if args.voxel_size is not None else 1.0
    if args.dataset == "proteins" and args.voxel_size is None:
        voxel = 2.5  # make_proteins' default grid spacing
    try:
        paths = save_mrc_folder(X, y, out, voxel_size=voxel)
        labels = list(templates)
        save_mrc_folder(
            np.stack([templates[k] for k in labels]),
            labels,
            os.path.join(out, "templates"),
            voxel_size=voxel,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    info = info.drop(columns=["label"], errors="ignore")
    info.insert(0, "file", [os.path.basename(p) for p in paths])
    info.insert(1, "label", y)
    write_table(os.path.join(out, "info.csv"), info)

    metric_name = args.metric or DEFAULT_METRIC[args.dataset]
    matrix = class_affinity_matrix(metric=make_metric(metric_name), templates=templates)
    write_affinity_csv(matrix, os.path.join(out, "affinity.csv"))
    return paths, labels, metric_name
