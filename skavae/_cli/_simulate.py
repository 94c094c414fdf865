"""``skavae simulate`` and ``skavae affinity``: labelled folders, affinities."""

from __future__ import annotations

import os
import time

from skavae._cli._args import (
    non_negative_int,
    positive_float,
    positive_int,
    seed,
    shape,
)
from skavae._cli._common import (
    CLIError,
    UsageError,
    make_metric,
    write_table,
    write_templates,
)
from skavae._cli._folders import output_folder

#: Default affinity metric of each generated data set (mean-difference suits
#: the clean binary-like character images, FSC the volumes).
HELP = (
    "write a labelled .mrc folder of generated objects",
    "Generate rotated characters (2D), tetraminos (3D) or density maps of "
    "protein structures (3D) and write one .mrc file per object.",
)

EXAMPLES = """examples:
  skavae simulate alphanumeric train/ --classes seen --n-samples 2000
  skavae simulate alphanumeric test/ --classes all --n-samples 600 --seed 1
  skavae simulate tetraminos tetra/ --n-samples 500 --size 32
  skavae simulate proteins maps/ --classes 1ake,4ake,1hvr --n-samples 90
  skavae simulate tomogram tomos/ --n-tomograms 2 --shape 64,128,128 --n-particles 30

writes OUT_DIR/<label>_<index>.mrc, OUT_DIR/templates/ (one object per class),
OUT_DIR/info.csv (angles, shifts, ... per file) and OUT_DIR/affinity.csv (the
class-level affinity of the templates). `simulate tomogram` writes
OUT_DIR/tomo_000.mrc, ... (molecules of the shipped structures at random
positions and orientations, CTF, missing wedge and noise; voxel size 10 Å by
default), the ground truth OUT_DIR/tomo_000.star, ... (RELION columns: position,
ZYZ angles, class) and OUT_DIR/particles.star (all), templates/ and
affinity.csv."""


def add_arguments(p):
    """The options of ``skavae simulate``."""
    p.add_argument(
        "dataset", choices=("alphanumeric", "tetraminos", "proteins", "tomogram")
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write")
    p.add_argument(
        "--n-samples",
        type=positive_int,
        default=1000,
        metavar="N",
        help="objects to write (not for tomogram: see --n-particles)",
    )
    p.add_argument(
        "--size",
        type=positive_int,
        help="image/volume side (voxels); tomogram: the box of the templates "
        "and of the SNR (default 32)",
    )
    p.add_argument(
        "--classes",
        metavar="SET",
        help="seen, unseen, all, or a comma-separated list (characters, shapes "
        "or PDB ids); default: the seen set (all 12 structures for proteins)",
    )
    p.add_argument(
        "--metric",
        choices=("fsc", "soap", "mean-difference"),
        help="affinity metric of affinity.csv (default: mean-difference for "
        "alphanumeric, fsc for volumes)",
    )
    p.add_argument(
        "--voxel-size",
        type=positive_float,
        metavar="A",
        help="voxel size in angstroms (default 1; proteins: 2.5; tomogram: 10)",
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    t = p.add_argument_group("tomogram (only with the dataset `tomogram`)")
    t.add_argument(
        "--shape",
        type=shape,
        default=None,
        metavar="NZ,NY,NX",
        help="tomogram size in voxels (default 128,256,256)",
    )
    t.add_argument(
        "--n-particles",
        type=positive_int,
        default=None,
        metavar="N",
        help="molecules per tomogram (default 100)",
    )
    t.add_argument(
        "--n-tomograms",
        type=positive_int,
        default=None,
        metavar="N",
        help="tomograms to write, seeds SEED, SEED+1, ... (default 1)",
    )
    t.add_argument(
        "--snr",
        type=positive_float,
        default=None,
        help="SNR of the SIZE-voxel subtomograms (default 0.5)",
    )
    t.add_argument(
        "--tilt-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("MIN", "MAX"),
        help="tilt range in degrees (default -60 60)",
    )
    t.add_argument("--no-ctf", action="store_true", default=None, help="no CTF")
    t.add_argument(
        "--fiducials",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="gold beads (10 nm) per tomogram, as distractors (default 0)",
    )
    t.add_argument(
        "--vesicles",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="membrane vesicles per tomogram, as distractors (default 0)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


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
        labels = write_templates(out, templates, voxel)
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


def run(args):
    """Write a labelled .mrc folder, or tomograms with their particle lists."""
    _tomogram_defaults(args)
    if args.dataset == "tomogram":
        from skavae._cli._tomo import simulate_tomogram

        return simulate_tomogram(args)
    return simulate(args)


_TOMOGRAM_DEFAULTS = {
    "shape": (128, 256, 256),
    "n_particles": 100,
    "n_tomograms": 1,
    "snr": 0.5,
    "tilt_range": (-60.0, 60.0),
    "no_ctf": False,
    "fiducials": 0,
    "vesicles": 0,
}


def _tomogram_defaults(args):
    """Defaults of the tomogram options; a UsageError when given elsewhere."""
    for name, default in _TOMOGRAM_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
        elif args.dataset != "tomogram":
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} applies to `simulate tomogram` only.")
