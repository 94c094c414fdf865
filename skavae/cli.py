"""The ``skavae`` command line.

Sub-commands: ``demo`` (generated characters, end to end), ``simulate`` (write a
labelled .mrc folder, or synthetic tomograms with their ground-truth particle
lists), ``affinity`` (class-level affinity CSV of a folder), ``extract`` (cut a
particle list out of tomograms), ``fit`` (train on a folder or a particle list,
save the model) and ``evaluate`` (latents, KNN results and figures of a folder;
the classified particle list as STAR). Their work lives in :mod:`skavae._cli`.

Exit codes: 0 on success, 2 on usage errors (bad options or settings), 1 on
data or runtime errors (missing folder, unreadable file, ...), 130 after Ctrl-C;
errors are one line naming the file or option (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys

import skavae
from skavae._cli import _affinity
from skavae._cli._args import (
    add_cutting_options,
    add_follow_symlinks,
    add_particle_options,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
    seed,
    setting,
    shape,
)

_EXAMPLES = {
    "demo": """examples:
  skavae demo                        # about 27 s on 2 CPU cores (README.rst)
  skavae demo --out skavae-demo      # also write figures and metrics
  skavae demo --epochs 5 --n-samples 1000 --size 32   # a quicker look""",
    "simulate": """examples:
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
affinity.csv.""",
    "affinity": """examples:
  skavae affinity train/ --metric fsc -o affinity.csv
  skavae affinity train/templates/ --metric soap -o affinity.csv

labels come from file names (<label>_<id>.mrc); up to --n-per-class files of
each class are compared, so a folder of one template per class gives the
template affinities.""",
    "fit": """examples:
  skavae fit train/ --affinity train/affinity.csv -o model.skavae
  skavae fit train/ --metric fsc --latent-dims 8 --beta 1 --gamma 2 --epochs 30
  skavae fit train/ --config settings.toml --epochs 50   # options override it
  skavae fit --particles tomos/tomo_000.star --tomograms tomos/ --box 32 \
      --affinity tomos/affinity.csv -o run/model.skavae

with --particles (RELION/Warp .star, Dynamo .tbl or CSV) the subtomograms are
cut from the tomograms on the fly, labels come from the class column
(skavaeClassName, else rlnClassNumber; --label-column to choose) and known
tilt ranges turn on the wedge-aware loss.
settings come from the command line, then --config (TOML: `epochs = 30`,
`filters = [8, 16, 32]`, ... named like the options), then the defaults.
Next to MODEL (e.g. run/model.skavae) it writes run/model.toml (the settings
used, reusable with --config), run/model.history.csv, run/model.affinity.csv
and run/model.latents.csv (the training latents: the reference map of
`skavae evaluate`). Ctrl-C stops training, saves the model of the last
complete epoch and exits with code 130.""",
    "evaluate": """examples:
  skavae evaluate model.skavae test/ --out results/
  skavae evaluate model.skavae test/ --embedding pca --no-figures
  skavae evaluate run/model.skavae --particles tomos/tomo_001.star \
      --tomograms tomos/ --out results/classified.star --split-by-class

writes latents.csv (file, label, seen, latents, pose, KNN prediction),
soft_knn.csv, metrics.csv (per class), confusion.csv, metrics.json and the
figures embedding.png, confusion_matrix.png, traversals.png, history.png.
Classes the model was not trained on are reported as unseen (the seen class
they are placed next to), not as errors.
with --particles, --out may be a .star file: the input rows with the predicted
rlnClassNumber (1-based, in the model's class order), skavaeClassName,
skavaeProbability (soft KNN), skavaeUnknown (1: farther from the training map
than --unknown-quantile of its own spacing) and skavaeLatent01.., next to it
<stem>.metrics.json; with a folder, DIR/particles.star and the usual files.""",
    "extract": """examples:
  skavae extract tomos/tomo_000.mrc tomos/tomo_000.star --box 32 -o subtomos/
  skavae extract tomograms/ particles.star --binning 4 --edge drop -o subtomos/

writes OUT_DIR/<label>_<row>.mrc (one subtomogram per particle, the voxel size
in the header; `skavae fit subtomos/` reads them), OUT_DIR/particles.star (the
rows with skavaeSubtomogram, the file name) and, with --edge drop,
OUT_DIR/dropped.csv. TOMOGRAMS is one .mrc/.rec file or a folder (matched to
rlnTomoName by file name).""",
}


def _sub(sub, name, help, description):
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=_EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback on errors",
    )
    return parser


def _add_demo(sub):
    from skavae._cli._report import EMBEDDINGS

    p = _sub(
        sub,
        "demo",
        "train on generated rotated characters and report accuracy",
        "Generate rotated characters (seen: a b d e i j z k; unseen: 2 x p), "
        "train an affinity-VAE with a KNN classifier on its latent space, report "
        "hard-KNN accuracy on held-out seen characters and where the unseen "
        "characters land; with --out, write figures and metrics.",
    )
    p.add_argument("--out", metavar="DIR", help="write figures and metrics here")
    p.add_argument("--n-samples", type=positive_int, default=4000, metavar="N")
    p.add_argument("--size", type=positive_int, default=64, help="image size")
    p.add_argument("--epochs", type=positive_int, default=15)
    p.add_argument("--beta", type=non_negative_float, default=1.0)
    p.add_argument("--gamma", type=non_negative_float, default=2.0)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--embedding",
        choices=EMBEDDINGS,
        default="pca",
        help="2D embedding of the latent map figure (default: pca, fast; umap "
        "and tsne take about a minute more)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch CPU threads (default 1: fastest for this small model, and "
        "unaffected by other processes on a busy machine)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="progress bar")
    p.set_defaults(func="demo")


def _add_simulate(sub):
    p = _sub(
        sub,
        "simulate",
        "write a labelled .mrc folder of generated objects",
        "Generate rotated characters (2D), tetraminos (3D) or density maps of "
        "protein structures (3D) and write one .mrc file per object.",
    )
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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func="simulate")


def _add_extract(sub):
    p = _sub(
        sub,
        "extract",
        "cut the particles of a list out of tomograms into .mrc files",
        "Cut one subtomogram per particle of a RELION/Warp .star, Dynamo .tbl or "
        "CSV list out of memory-mapped tomograms and write them as .mrc files "
        "with the particle list.",
    )
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
    p.set_defaults(func="extract")


def _add_fit(sub):
    from skavae._cli._config import SETTINGS

    p = _sub(
        sub,
        "fit",
        "train an affinity-VAE on a .mrc folder and save it",
        "Train an AffinityVAE on a folder of .mrc files (labels from file names), "
        "or on the subtomograms of a particle list (--particles, --tomograms), "
        "with a progress bar, and save it as a skavae model file (skavae.load "
        "reads it; it holds no pickle, so loading it never runs code).",
    )
    p.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        nargs="?",
        help="folder of .mrc files (or give --particles and --tomograms)",
    )
    p.add_argument("-c", "--config", metavar="TOML", help="settings file (TOML)")
    group = p.add_mutually_exclusive_group()
    for name, (_, default, text) in SETTINGS.items():
        flags = ["-o"] if name == "output" else []
        flags.append("--" + name.replace("_", "-"))
        target = group if name in ("affinity", "metric") else p
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        metavar = {"output": "MODEL", "affinity": "CSV"}.get(name, name.upper())
        if name == "metric":
            metavar = "{fsc,soap,mean-difference,none}"
        target.add_argument(
            *flags,
            dest=name,
            type=setting(name),
            default=None,
            metavar=metavar,
            help=text if default is None else f"{text} (default: {shown})",
        )
    p.add_argument("--overwrite", action="store_true", help="replace MODEL")
    add_follow_symlinks(p)
    add_particle_options(p, box_default=32)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func="fit")


def _add_evaluate(sub):
    from skavae._cli._report import EMBEDDINGS

    p = _sub(
        sub,
        "evaluate",
        "latents, KNN results and figures of a .mrc folder",
        "Encode a labelled .mrc folder with a model from `skavae fit`; classify "
        "seen classes by KNN against the training latents and place unseen ones.",
    )
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
    add_follow_symlinks(p)
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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func="evaluate")


def build_parser():
    """The argument parser of the ``skavae`` command."""
    parser = argparse.ArgumentParser(
        prog="skavae",
        description="Affinity-VAE: similarity-organised latent spaces for 2D images "
        "and 3D volumes.",
        epilog="run `skavae COMMAND --help` for the options and examples of each "
        "command.",
    )
    parser.add_argument("--version", action="version", version=skavae.__version__)
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_demo(sub)
    _add_simulate(sub)
    _affinity.add_arguments(_sub(sub, "affinity", *_affinity.HELP))
    _add_extract(sub)
    _add_fit(sub)
    _add_evaluate(sub)
    return parser


def _run(args):
    if args.func == "demo":
        from skavae._cli._demo import demo as func
    elif args.func == "simulate" and args.dataset == "tomogram":
        from skavae._cli._tomo import simulate_tomogram as func

        _tomogram_defaults(args)
    elif args.func == "simulate":
        from skavae._cli._simulate import simulate as func

        _tomogram_defaults(args)
    elif args.func == "extract":
        from skavae._cli._tomo import extract as func
    elif args.func == "affinity":
        from skavae._cli._affinity import run as func
    elif args.func == "fit":
        from skavae._cli._fit import fit as func
    else:
        from skavae._cli._evaluate import evaluate as func
    return func(args)


_TOMOGRAM_DEFAULTS = {
    "shape": (128, 256, 256),
    "n_particles": 100,
    "n_tomograms": 1,
    "snr": 0.5,
    "tilt_range": (-60.0, 60.0),
    "no_ctf": False,
}


def _tomogram_defaults(args):
    """Defaults of the tomogram options; a UsageError when given elsewhere."""
    from skavae._cli._common import UsageError

    for name, default in _TOMOGRAM_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
        elif args.dataset != "tomogram":
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} applies to `simulate tomogram` only.")


def _one_line(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (ValueError, OSError)) and type(exc).__module__ not in (
        "skavae._cli._common",
    ):
        text = f"{type(exc).__name__}: {text}"
    return text


def _format_warning(message, category, filename, lineno, line=None):
    return f"skavae: {category.__name__}: {' '.join(str(message).split())}\n"


def main(argv=None):
    """Entry point of the ``skavae`` console script; returns the exit code.

    Ctrl-C at any point of the command (building the parser, the imports of a
    command, reading data) exits 130 with one line and no traceback. Run as
    the console script (``argv`` None), further Ctrl-Cs are ignored once the
    command has ended, so exit handlers (torch, tqdm, ...) finish quietly and
    the exit code stays 130.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("skavae: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:
            _ignore_interrupts()


def _ignore_interrupts():
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect
        pass


def _main(argv):
    import warnings

    from skavae._cli._common import UsageError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 0
    previous_format = warnings.formatwarning
    warnings.formatwarning = _format_warning  # one line, no source excerpt
    try:
        return _run(args)
    except KeyboardInterrupt:
        if argv is None:
            _ignore_interrupts()  # a second Ctrl-C must not cut the message
        print(f"skavae {args.command}: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        if args.debug:
            raise
        print(f"skavae {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # one-line message unless --debug
        if args.debug:
            raise
        print(
            f"skavae {args.command}: error: {_one_line(exc)} "
            "(--debug shows the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.formatwarning = previous_format


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
