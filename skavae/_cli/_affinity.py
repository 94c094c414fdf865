"""``skavae affinity``: the class-level affinity CSV of a labelled folder."""

from __future__ import annotations

import os

from skavae._cli._args import add_folder_options, positive_int, seed, setting
from skavae._cli._common import (
    METRICS,
    CLIError,
    UsageError,
    check_outside_data,
    folder_affinity,
    load_folder,
)
from skavae._cli._config import SETTINGS, folder_options

HELP = (
    "class-level affinity matrix (CSV) of a .mrc folder",
    "Compute the class x class affinity matrix of a labelled .mrc folder "
    "from sampled class members (or templates).",
)

EXAMPLES = """examples:
  skavae affinity train/ --metric fsc -o affinity.csv
  skavae affinity train/templates/ --metric soap -o affinity.csv
  skavae affinity shrec/ --label-regex '^([^_]+)_' --resolution 20 -o aff.csv

labels come from file names (<label>_<id>.mrc), --label-regex or --classes;
--resolution (Å, with the voxel size of the headers or --voxel-size) limits
the FSC metric to the resolution of the data. Up to --n-per-class files of
each class are compared, so a folder of one template per class gives the
template affinities."""


def add_arguments(p):
    """The options of ``skavae affinity``."""
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--metric", choices=METRICS, default="fsc")
    p.add_argument("-o", "--output", required=True, metavar="CSV")
    p.add_argument("--n-per-class", type=positive_int, default=16, metavar="N")
    p.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="seed of the sampling; the same members as `skavae fit --seed` "
        "and AffinityVAE(random_state=SEED) sample",
    )
    p.add_argument(
        "--resolution",
        type=setting("resolution"),
        metavar="A",
        help=SETTINGS["resolution"][2],
    )
    add_folder_options(
        p, unlabelled_help="(refused: a class-level affinity needs labels)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args):
    """Class-level affinity matrix of a folder, written as CSV."""
    from skavae.affinity import write_affinity_csv

    check_outside_data(args.output, "-o", args.data_dir)
    options = folder_options(args)
    if options["unlabelled"]:
        raise UsageError("--unlabelled: a class-level affinity needs labels.")
    X, y, _ = load_folder(args.data_dir, **options)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise CLIError(f"the folder of -o {args.output!r} does not exist.")
    if os.path.isdir(args.output):
        raise CLIError(f"-o {args.output!r} is a folder; give a CSV file name.")
    try:
        matrix, seconds = folder_affinity(
            X,
            y,
            args.metric,
            n_per_class=args.n_per_class,
            seed=args.seed,
            quiet=args.quiet,
            resolution=args.resolution,
        )
    except ValueError as exc:
        raise CLIError(f"{args.data_dir}: {exc}") from None
    write_affinity_csv(matrix, args.output)
    print(
        f"Class-level {args.metric} affinity of {len(matrix)} classes "
        f"({len(y)} files, up to {args.n_per_class} per class) in {seconds:.1f} s:"
    )
    print(matrix.round(3).to_string())
    print(f"Written to {args.output}")
    return 0
