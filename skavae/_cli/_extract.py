"""``skavae extract``: cut the particles of a list out of tomograms into .mrc files."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from skavae._cli._args import add_cutting_options
from skavae._cli._common import CLIError, make_dir, progress, write_table
from skavae._cli._tomo import check_not_input, load_particles, particle_labels

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
rlnTomoName by file name)."""


def add_arguments(p):
    """The options of ``skavae extract``."""
    p.add_argument("tomograms", metavar="TOMOGRAMS", help="tomogram or folder")
    p.add_argument("particles", metavar="PARTICLES", help="particle list")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    add_cutting_options(p, box_default=32)
    p.add_argument(
        "--label-column",
        metavar="COLUMN",
        help="column naming the files (default: skavaeClassName, else "
        "rlnClassNumber; without one: particle_<row>.mrc)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args):
    """Cut the particles of a list out of tomograms into a folder of .mrc files."""
    from skavae.io import write_particles
    from skavae.io._extract import write_subtomograms

    start = time.perf_counter()
    out = args.output
    check_not_input(
        out, "-o", [("PARTICLES", args.particles), ("TOMOGRAMS", args.tomograms)]
    )
    stack = load_particles(args, args.box)
    labels = particle_labels(stack, args.label_column, required=False)
    make_dir(out, "-o")
    star = os.path.join(out, "particles.star")
    check_not_input(star, "-o", [("PARTICLES", args.particles)])
    with progress(
        desc="extracting", total=len(stack), unit="particle", quiet=args.quiet
    ) as bar:
        try:
            paths = write_subtomograms(
                stack, out, labels=labels, overwrite=args.overwrite, progress=bar.update
            )
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    try:
        write_particles(
            star,
            stack.particles,
            columns={"skavaeSubtomogram": [os.path.basename(p) for p in paths]},
            overwrite=True,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if len(stack.dropped):
        dropped = stack.dropped.drop(columns=[], errors="ignore").copy()
        dropped.insert(0, "row", [int(i) + 1 for i in dropped.index])
        write_table(os.path.join(out, "dropped.csv"), dropped)
    voxel = stack.voxel_size
    print(
        f"Wrote {len(paths)} subtomograms ({args.box}^3 voxels"
        f"{f' at {voxel:g} Å' if np.isfinite(voxel) else ''}) of {args.particles} "
        f"to {os.path.join(out, '')} with particles.star"
        f"{' and dropped.csv' if len(stack.dropped) else ''} in "
        f"{time.perf_counter() - start:.1f} s.",
        file=sys.stdout,
    )
    return 0
