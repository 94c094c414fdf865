"""``skavae fit``: train on a folder of .mrc files and save the model."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings

import numpy as np

import skavae
from skavae._cli._args import (
    add_folder_options,
    add_particle_options,
    setting,
)
from skavae._cli._common import (
    CLIError,
    UsageError,
    check_outside_data,
    encode_all,
    folder_affinity,
    latents_frame,
    load_folder,
    read_affinity,
    read_all,
    sidecar,
    write_table,
    write_text,
)
from skavae._cli._config import FOLDER_SETTINGS, resolve, to_toml
from skavae._persistence import save_model

HELP = (
    "train an affinity-VAE on a .mrc folder and save it",
    "Train an AffinityVAE on a folder of .mrc files (labels from file names), "
    "or on the subtomograms of a particle list (--particles, --tomograms), "
    "with a progress bar, and save it as a skavae model file (skavae.load "
    "reads it; it holds no pickle, so loading it never runs code).",
)

EXAMPLES = """examples:
  skavae fit train/ --affinity train/affinity.csv -o model.skavae
  skavae fit train/ --metric fsc --latent-dims 8 --beta 1 --gamma 2 --epochs 30
  skavae fit train/ --config settings.toml --epochs 50   # options override it
  skavae fit shrec/ --label-regex '^([^_]+)_' --resample --resolution 20
  skavae fit train/ --classes train/classes.csv --skip-unlisted
  skavae fit particles/ --unlabelled                # no labels: no affinity
  skavae fit --particles tomos/tomo_000.star --tomograms tomos/ --box 32 \
      --affinity tomos/affinity.csv -o run/model.skavae

with --particles (RELION/Warp .star, Dynamo .tbl or CSV) the subtomograms are
cut from the tomograms on the fly, labels come from the class column
(skavaeClassName, else rlnClassNumber; --label-column to choose) and known
tilt ranges (--tilt-range MIN MAX, else the list's skavaeTiltMin/Max) turn on
the wedge-aware loss.
a folder's labels come from the file names (<label>_<id>.mrc), --label-regex,
--classes or none (--unlabelled: a plain beta-VAE, no affinity); its voxel size
from the headers (mixed sizes refused unless --resample; --voxel-size replaces
it); --resolution (Å) limits the FSC metric.
settings come from the command line, then --config (TOML: `epochs = 30`,
`filters = [8, 16, 32]`, ... named like the options), then the defaults.
Next to MODEL (e.g. run/model.skavae) it writes run/model.toml (the settings
used, reusable with --config), run/model.history.csv, run/model.affinity.csv
and run/model.latents.csv (the training latents: the reference map of
`skavae evaluate`). Ctrl-C stops training, saves the model of the last
complete epoch and exits with code 130."""


def add_arguments(p):
    """The options of ``skavae fit``."""
    from skavae._cli._config import SETTINGS

    p.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        nargs="?",
        help="folder of .mrc files (or give --particles and --tomograms)",
    )
    p.add_argument("-c", "--config", metavar="TOML", help="settings file (TOML)")
    group = p.add_mutually_exclusive_group()
    for name, (_, default, text) in SETTINGS.items():
        if name in FOLDER_SETTINGS:  # add_folder_options, below
            continue
        flags = ["-o"] if name == "output" else []
        flags.append("--" + name.replace("_", "-"))
        target = group if name in ("affinity", "metric") else p
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        metavar = {"output": "MODEL", "affinity": "CSV", "resolution": "A"}.get(
            name, name.upper()
        )
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
    add_folder_options(
        p,
        unlabelled_help="train without labels: no class-level affinity (the "
        "beta-VAE term only) and no classes in the model",
    )
    add_particle_options(p, box_default=32)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


INTERRUPTED = 130  # exit code after Ctrl-C (128 + SIGINT), as shells use
TERMINATED = 143  # exit code after SIGTERM (128 + 15): saved, then stopped
_STOPPED = {"interrupted": ("interrupted", INTERRUPTED),
            "terminated": ("stopped by SIGTERM", TERMINATED)}  # fmt: skip
IN_MEMORY_BYTES = 2 * 2**30  # folders up to this size are read into memory


def _check_device(device):
    from skavae._data import resolve_device

    try:
        return str(resolve_device(device))
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def _check_output(output, overwrite):
    if os.path.isdir(output):
        raise UsageError(f"-o {output!r} is a folder; give a file name.")
    if os.path.exists(output) and not overwrite:
        raise CLIError(f"{output!r} already exists; pass --overwrite to replace it.")
    folder = os.path.dirname(os.path.abspath(output))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create the folder of {output!r}: {exc}") from None
    try:  # find out now, not after the whole training, that it cannot write
        fd, probe = tempfile.mkstemp(prefix=".skavae-probe-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise CLIError(
            f"cannot write the model {output!r} into {folder!r}: {exc}"
        ) from None


#: Files ``skavae fit`` writes next to the model, ``<stem>.<what>``.
SIDECARS = ("toml", "history.csv", "affinity.csv", "latents.csv")


def _check_sidecars(output, args, s):
    """Without ``--overwrite``, the files written next to the model replace
    no input and no existing file (``-c q.toml -o q.skavae`` once replaced
    the user's settings file with ours, silently)."""
    from skavae._cli._tomo import same_file

    inputs = [
        ("--config", getattr(args, "config", None)),
        ("--affinity", s.get("affinity")),
        ("--classes", s.get("classes")),
        ("--particles", getattr(args, "particles", None)),
    ]
    for what in SIDECARS:
        path = sidecar(output, what)
        if args.overwrite:
            continue  # replaced as asked (rerunning from m.toml rewrites it)
        for name, given in inputs:
            if given is not None and same_file(path, given):
                raise UsageError(
                    f"-o {output!r} would write {path!r} next to the model, but "
                    f"that is the {name} file; give another model name (or pass "
                    "--overwrite to replace it with this run's)."
                )
        if os.path.exists(path):
            raise CLIError(
                f"{path!r} (written next to the model) already exists; pass "
                "--overwrite to replace it."
            )


def _check_label_settings(s, origin, on_particles):
    """Usage errors of the folder settings against the other settings.

    ``--unlabelled`` trains without an affinity: an ``--affinity`` or a
    ``--metric`` given is refused, the default metric becomes ``none`` (so
    the saved TOML reruns the same fit). ``--resolution`` needs the FSC metric.
    Folder options other than ``--follow-symlinks`` do not apply to
    ``--particles``.
    """
    if on_particles:
        for name in FOLDER_SETTINGS:
            if name != "follow_symlinks" and s[name] not in (None, False):
                option = "--" + name.replace("_", "-")
                raise UsageError(
                    f"{option} applies to a DATA_DIR folder, not to --particles "
                    "(labels come from --label-column)."
                )
    if s["unlabelled"]:
        if s["affinity"] is not None:
            raise UsageError(
                "--unlabelled trains without labels, hence without a class-level "
                "affinity; drop --affinity."
            )
        if s["metric"] not in (None, "none") and origin["metric"] != "default":
            raise UsageError(
                f"--unlabelled trains without labels, hence without --metric "
                f"{s['metric']}; drop it (or give --metric none)."
            )
        s["metric"] = "none"
    if s["resolution"] is not None and (
        s["affinity"] is not None or s["metric"] != "fsc"
    ):
        raise UsageError(
            "--resolution limits the FSC metric computed by `skavae fit`; it "
            "needs --metric fsc and no --affinity."
        )


def _train(vae, data, y, **fit_params):
    """Fit; return how training stopped (``vae.stopped_reason_``).

    The warning of a stop by Ctrl-C or SIGTERM is not shown: the command says
    what it saved instead. Other warnings are shown.
    """
    from skavae._training import TrainingInterrupted

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingInterrupted)
        try:
            vae.fit(data, y, **fit_params)
        except ValueError as exc:
            raise CLIError(f"training failed: {exc}") from None
    return vae.stopped_reason_


def _join_group():
    """The torchrun process group this command runs in (one process without)."""
    from skavae.distributed import init_from_env

    try:
        return init_from_env()
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def run(args):
    """Train an AffinityVAE on DATA_DIR; write the model and its sidecars.

    Under ``torchrun --nproc-per-node N skavae fit ...`` every rank trains
    its slice of each global batch (``--batch-size`` is the global batch) and
    rank 0 alone writes the model and its sidecars, as in one process.
    """
    from skavae import AffinityVAE

    start = time.perf_counter()
    settings, origin = resolve(args)
    s = settings
    for name in ("output", "affinity", "classes"):  # saved settings work anywhere
        if s[name] is not None:
            s[name] = os.path.abspath(s[name])
    group = _join_group()
    if group.world_size > 1 and s["device"] == "auto":
        s["device"] = group.device  # cuda:<local rank> with nccl
    device = _check_device(s["device"])
    output = s["output"]
    from skavae._cli import _tomo

    if getattr(args, "particles", None) is not None:  # before any file is read
        _tomo.check_not_input(
            output,
            "-o",
            [("--particles", args.particles), ("--tomograms", args.tomograms)],
        )
    check_outside_data(output, "-o", args.data_dir)
    _check_output(output, args.overwrite)
    _check_sidecars(output, args, s)
    quiet = args.quiet or group.rank > 0  # under torchrun rank 0 speaks

    fit_params, what = {}, "files"
    on_particles = _tomo.check_particle_options(args)
    _check_label_settings(s, origin, on_particles)
    if on_particles:
        X = _tomo.load_particles(args, args.box)
        y = _tomo.particle_labels(X, args.label_column, required=True)
        paths, source, what = X.ids, args.particles, "particles"
        if X.tilt_ranges is not None:  # the wedge-aware loss, per particle
            fit_params["tilt_ranges"] = X.tilt_ranges
    else:
        X, y, names = load_folder(args.data_dir, **{k: s[k] for k in FOLDER_SETTINGS})
        paths, source = X.paths, args.data_dir
    classes = [] if y is None else sorted(set(y.tolist()))
    if len(X) < 2:
        raise CLIError(f"{source!r} holds {len(X)} {what}; training needs 2+.")
    if s["affinity"] is not None:
        matrix = read_affinity(s["affinity"], y)
        affinity_source = s["affinity"]
    elif s["metric"] not in (None, "none") and s["gamma"] > 0 and len(classes) > 1:
        matrix, seconds = folder_affinity(
            X,
            y,
            s["metric"],
            n_per_class=s["n_per_class"],
            seed=s["seed"],
            quiet=quiet,
            resolution=s["resolution"],
        )
        affinity_source = f"{s['metric']} on up to {s['n_per_class']} {what} per class"
    elif y is None:
        matrix, affinity_source = None, "none (unlabelled: no affinity term)"
    else:
        matrix, affinity_source = None, "none (no affinity term)"
    # streamed from the files batch by batch: folders larger than
    # IN_MEMORY_BYTES, and under torchrun (each rank reads only its slices);
    # else every file is read once, for fast epochs
    streamed = group.world_size > 1 or X.size * 4 > IN_MEMORY_BYTES
    data = X if streamed else read_all(X, quiet=quiet)
    if streamed and group.world_size == 1:
        print(
            f"{source}: {X.size * 4 / 2**30:.1f} GiB of data, streamed from "
            "the files each epoch.",
            file=sys.stderr,
        )
    shape = "x".join(str(v) for v in data.shape[1:])
    n_classes = f"{len(classes)} classes" if y is not None else "no labels"
    ranks = f" x {group.world_size} ranks" if group.world_size > 1 else ""
    if group.is_main:
        print(
            f"Training AffinityVAE on {len(data)} {what} ({shape}, {n_classes}"
            f") from {source} for {s['epochs']} epochs on {device}{ranks}; "
            f"affinity: {affinity_source}"
            + ("; wedge-aware loss (per-particle tilt ranges)." if fit_params else "."),
            file=sys.stderr,
        )
    vae = AffinityVAE(
        latent_dims=s["latent_dims"],
        pose_dims=s["pose_dims"],
        beta=s["beta"],
        gamma=s["gamma"],
        affinity=matrix,
        filters=tuple(s["filters"]),
        max_epochs=s["epochs"],
        batch_size=s["batch_size"],
        learning_rate=s["learning_rate"],
        learning_rate_schedule=s["learning_rate_schedule"],
        validation_fraction=s["validation_fraction"],
        n_iter_no_change=s["patience"],
        decoder=s["decoder"],
        n_splats=s["n_splats"],
        upsampling=s["upsampling"],
        beta_schedule=s["beta_schedule"],
        gamma_schedule=s["gamma_schedule"],
        schedule_cycles=s["schedule_cycles"],
        schedule_ratio=s["schedule_ratio"],
        max_grad_norm=s["max_grad_norm"],
        precision=s["precision"],
        checkpoint_dir=s["checkpoint_dir"],
        device=s["device"],
        n_threads=s["threads"],
        random_state=s["seed"],
        verbose=0 if quiet else 1,
    )
    try:
        stopped, code = _STOPPED.get(_train(vae, data, y, **fit_params), (None, 0))
    finally:
        group.close()
    if group.rank > 0:  # rank 0 writes the model and its sidecars
        return code
    interrupted = stopped is not None
    epochs = int(vae.n_iter_)
    if interrupted and epochs == 0:
        print(
            f"skavae fit: {stopped} before the first epoch completed; no model saved.",
            file=sys.stderr,
        )
        return code
    save_model(vae, output)  # atomic; a skavae model file, not a pickle
    seconds = time.perf_counter() - start
    written = [output]
    run = {
        "data_dir": os.path.abspath(source),
        "n_files": len(data),
        "object_shape": [int(v) for v in data.shape[1:]],
        "classes": classes,
        "epochs_trained": epochs,
        "interrupted": interrupted,
        "device": device,
        "ranks": group.world_size,
        "seconds": round(seconds, 2),
        "skavae_version": skavae.__version__,
        "final_loss": float(vae.history_["loss"].iloc[-1]),
    }
    if "val_loss" in vae.history_ and vae.history_["val_loss"].notna().any():
        run["final_val_loss"] = float(vae.history_["val_loss"].iloc[-1])
    config_path = sidecar(output, "toml")
    write_text(config_path, to_toml(settings, origin, run))
    history_path = sidecar(output, "history.csv")
    write_table(history_path, vae.history_)
    written += [config_path, history_path]
    if vae.affinity_matrix_ is not None:
        from skavae.affinity import write_affinity_csv

        affinity_path = sidecar(output, "affinity.csv")
        write_affinity_csv(vae.affinity_matrix_, affinity_path)
        written.append(affinity_path)
    if interrupted:
        print(
            f"skavae fit: training {stopped} after {epochs} complete epoch(s); "
            f"the model trained so far is saved to {output}.",
            file=sys.stderr,
        )
    mu, pose = encode_all(vae, data, quiet=quiet, desc="encoding (reference map)")
    latents_path = sidecar(output, "latents.csv")
    write_table(latents_path, latents_frame(paths, y, mu, pose))
    written.append(latents_path)
    last = vae.history_.iloc[-1]
    val = f", val_loss {last['val_loss']:.4g}" if np.isfinite(last["val_loss"]) else ""
    print(
        f"Trained {epochs} epoch(s) in {seconds:.1f} s: loss {last['loss']:.4g}{val}."
    )
    print("Wrote " + ", ".join(written))
    return code
