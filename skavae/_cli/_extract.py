"""``skavae extract``: cut the particles of a list out of tomograms into .mrc files."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from skavae._cli._args import add_cutting_options
from skavae._cli._common import CLIError, UsageError, progress, write_table
from skavae._cli._folders import output_folder
from skavae._cli._tomo import (
    add_extraction_options,
    check_not_input,
    load_particles,
    particle_labels,
)

HELP = (
    "cut the particles of a list out of tomograms into .mrc files",
    "Cut one subtomogram per particle of a RELION/Warp .star, Dynamo .tbl or "
    "CSV list out of memory-mapped tomograms and write them as .mrc files "
    "with the particle list.",
)

EXAMPLES = """examples:
  skavae extract tomos/tomo_000.mrc tomos/tomo_000.star --box 32 -o subtomos/
  skavae extract tomograms/ particles.star --binning 4 --edge drop -o subtomos/

writes OUT_DIR/<label>_<row>.mrc (one subtomogram per particle, the voxel size
in the header; `skavae fit subtomos/` reads them), OUT_DIR/particles.star (the
rows with skavaeSubtomogram, the file name) and, with --edge drop,
OUT_DIR/dropped.csv. TOMOGRAMS is one .mrc/.rec file or a folder (matched to
rlnTomoName by file name). An existing, non-empty OUT_DIR is refused unless
--overwrite is given; it is then replaced as a whole (the files are written into
a temporary sibling folder renamed into place), so no .mrc file of an earlier
run stays next to the new particles.star."""


def add_arguments(p):
    """The options of ``skavae extract``."""
    p.add_argument("tomograms", metavar="TOMOGRAMS", help="tomogram or folder")
    p.add_argument("particles", metavar="PARTICLES", help="particle list")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    add_cutting_options(p, box_default=32)
    add_extraction_options(p)
    p.add_argument(
        "--label-column",
        metavar="COLUMN",
        help="column naming the files (default: skavaeClassName, else "
        "rlnClassNumber; without one: particle_<row>.mrc)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing, non-empty OUT_DIR of an earlier extract as a whole",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args):
    """Cut the particles of a list out of tomograms into a folder of .mrc files."""
    start = time.perf_counter()
    out = args.output
    inputs = [("PARTICLES", args.particles), ("TOMOGRAMS", args.tomograms)]
    check_not_input(out, "-o", inputs)
    _check_not_inside(out, inputs)
    with output_folder(out, overwrite=args.overwrite, option="-o", owned=_owned) as tmp:
        stack = load_particles(args, args.box)
        labels = particle_labels(stack, args.label_column, required=False)
        with progress(
            desc="extracting", total=len(stack), unit="particle", quiet=args.quiet
        ) as bar:
            names = _write(tmp, stack, labels, bar.update)
    voxel = stack.voxel_size
    print(
        f"Wrote {len(names)} subtomograms ({args.box}^3 voxels"
        f"{f' at {voxel:g} Å' if np.isfinite(voxel) else ''}) of {args.particles} "
        f"to {os.path.join(out, '')} with particles.star"
        f"{' and dropped.csv' if len(stack.dropped) else ''} in "
        f"{time.perf_counter() - start:.1f} s.",
        file=sys.stdout,
    )
    return 0


def _write(folder, stack, labels, update):
    """The subtomograms, particles.star and dropped.csv, written into ``folder``."""
    from skavae.io import write_particles
    from skavae.io._extract import write_subtomograms

    try:
        paths = write_subtomograms(stack, folder, labels=labels, progress=update)
        names = [os.path.basename(p) for p in paths]
        write_particles(
            os.path.join(folder, "particles.star"),
            stack.particles,
            columns={"skavaeSubtomogram": names, **_tilt_columns(stack)},
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if len(stack.dropped):
        dropped = stack.dropped.copy()
        dropped.insert(0, "row", [int(i) + 1 for i in dropped.index])
        write_table(os.path.join(folder, "dropped.csv"), dropped)
    return names


def _tilt_columns(stack):
    """``skavaeTiltMin/Max`` of the stack (``--tilt-range`` or the list's), if known."""
    if stack.tilt_ranges is None:
        return {}
    lo, hi = stack.tilt_ranges.T
    return {"skavaeTiltMin": lo, "skavaeTiltMax": hi}


def _owned(name, is_dir):
    """Whether an entry of OUT_DIR is one `extract` writes (--overwrite)."""
    if is_dir:
        return False
    return name.lower().endswith(".mrc") or name in ("particles.star", "dropped.csv")


def _check_not_inside(out, inputs):
    """UsageError when an input lies in OUT_DIR, which --overwrite replaces."""
    folder = os.path.join(os.path.realpath(out), "")
    for name, path in inputs:
        if os.path.realpath(path).startswith(folder):
            raise UsageError(
                f"{name} {path!r} lies in -o {out!r}, whose files --overwrite "
                "replaces; give another output folder."
            )
