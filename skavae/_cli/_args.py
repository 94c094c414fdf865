"""Argument types and option groups shared by the sub-commands' parsers."""

from __future__ import annotations

import argparse


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


def seed(text):
    """A random seed: an integer in [0, 2**32 - 1] (numpy's range)."""
    from skavae._cli._common import SEED_MAX

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is not in [0, 2**32 - 1]")
    return value


def fraction(text):
    value = positive_float(text)
    if not value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


def shape(text):
    parts = [v.strip() for v in text.split(",")]
    try:
        values = [int(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != 3 or min(values) < 8:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NZ,NY,NX (three integers >= 8)"
        )
    return tuple(values)


def setting(name):
    """argparse type checking one ``skavae fit`` setting."""
    from skavae._cli._config import SETTINGS

    def check(text):
        try:
            return SETTINGS[name][0](text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    check.__name__ = name
    return check


def add_follow_symlinks(parser):
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        default=None,
        help="read .mrc files through symbolic links that lead outside DATA_DIR "
        "(refused by default)",
    )


def add_folder_options(parser, *, unlabelled_help=None):
    """Options of how DATA_DIR is read: labels, units, symbolic links.

    Every option defaults to None ("not given"), so that ``skavae fit`` can
    tell a command-line value from one of ``--config``; the values are
    settings of :data:`skavae._cli._config.SETTINGS` (``skavae fit`` records
    them in its TOML) and go to :func:`skavae._cli._common.load_folder`.
    """
    g = parser.add_argument_group(
        "data folder",
        "labels come from file names (<label>_<id>.mrc: the text before the "
        "last underscore) unless one of --label-regex, --classes, --unlabelled "
        "is given",
    )
    g.add_argument(
        "--label-regex",
        dest="label_regex",
        type=setting("label_regex"),
        metavar="REGEX",
        help="regular expression searched in each file name without suffix: "
        "its group 'label', else its first group, else the whole match is the "
        "label (e.g. '^([^_]+)_' for 1BXN_m0_156_Th0.mrc -> 1BXN); a file it "
        "does not match is an error naming it",
    )
    g.add_argument(
        "--classes",
        dest="classes",
        type=setting("classes"),
        metavar="CSV",
        help="table of labels: a CSV with a header and the columns 'file' (the "
        "file name, with or without .mrc) and 'label', one row per file; a "
        "file it does not list is an error naming it (see --skip-unlisted)",
    )
    g.add_argument(
        "--skip-unlisted",
        dest="skip_unlisted",
        action="store_true",
        default=None,
        help="with --classes: leave out the files the CSV does not list",
    )
    g.add_argument(
        "--unlabelled",
        dest="unlabelled",
        action="store_true",
        default=None,
        help=unlabelled_help or "read DATA_DIR without labels",
    )
    g.add_argument(
        "--resample",
        dest="resample",
        action="store_true",
        default=None,
        help="resample files of other voxel sizes, as they are read, to the "
        "most common voxel size of the folder (linear interpolation; mixed "
        "voxel sizes are refused by default)",
    )
    g.add_argument(
        "--voxel-size",
        dest="voxel_size",
        type=setting("voxel_size"),
        metavar="A",
        help="voxel size in Å of the files, replacing the one their headers "
        "give (for headers that record none); used by --resolution and written "
        "into the .mrc outputs",
    )
    add_follow_symlinks(g)


def add_particle_options(parser, *, box_default):
    g = parser.add_argument_group("particle lists")
    g.add_argument(
        "--particles",
        metavar="LIST",
        help="particle list: RELION/Warp .star, Dynamo .tbl or CSV/TSV (x, y, z)",
    )
    g.add_argument(
        "--tomograms",
        metavar="PATH",
        help="tomogram .mrc/.rec, or a folder of them (matched by rlnTomoName)",
    )
    add_cutting_options(g, box_default=box_default)
    from skavae._cli._tomo import add_extraction_options

    add_extraction_options(g)
    g.add_argument(
        "--label-column",
        metavar="COLUMN",
        help="column of the class labels (default: skavaeClassName, else "
        "rlnClassNumber)",
    )


def add_cutting_options(group, *, box_default):
    box_help = "subtomogram edge in voxels" + (
        f" (default {box_default})"
        if box_default
        else " (default: the model's input size)"
    )
    group.add_argument(
        "--box", type=positive_int, default=box_default, metavar="N", help=box_help
    )
    group.add_argument(
        "--edge",
        choices=("pad", "drop"),
        default="pad",
        help="particles whose box crosses the tomogram's edge: pad with the "
        "tomogram mean (default) or drop",
    )
    group.add_argument(
        "--normalize",
        action="store_true",
        help="scale each subtomogram to mean 0, standard deviation 1",
    )
    group.add_argument(
        "--pixel-size",
        type=positive_float,
        metavar="A",
        help="Å per pixel of the list's coordinates (default: from the file)",
    )
    group.add_argument(
        "--binning",
        type=positive_float,
        default=1.0,
        metavar="B",
        help="coordinate pixels per tomogram pixel (default 1)",
    )
