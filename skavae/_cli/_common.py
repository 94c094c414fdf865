"""Helpers shared by the sub-commands: errors, atomic files, data, metrics."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from skavae._files import atomic_path

METRICS = ("fsc", "soap", "mean-difference")
DATA_SUFFIXES = (".mrc", ".map")  # what a data folder is read as (load_mrc_folder)
SEED_MAX = 2**32 - 1  # numpy's RandomState accepts seeds in [0, 2**32 - 1]


class CLIError(Exception):
    """A data or runtime problem: one-line message, exit code 1."""


class UsageError(Exception):
    """A bad option or setting: one-line message, exit code 2."""


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json(path, obj):
    """Write ``obj`` as indented JSON (numpy scalars converted), atomically."""
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_table(path, frame, *, index=False, float_format="%.6g"):
    """Write a DataFrame as CSV (or Parquet for a ``.parquet`` path), atomically."""
    if str(path).endswith(".parquet"):
        with atomic_path(path, suffix=".parquet") as tmp:
            frame.to_parquet(tmp, index=index)
    else:
        with atomic_path(path, suffix=".csv") as tmp:
            frame.to_csv(tmp, index=index, float_format=float_format)


def save_figure(path, fig):
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def write_templates(out, templates, voxel_size, *, overwrite=False):
    """Write the class templates as ``out/templates/<label>.mrc``; their labels."""
    from skavae.datasets import save_mrc_folder

    labels = list(templates)
    save_mrc_folder(
        np.stack([templates[k] for k in labels]),
        labels,
        os.path.join(out, "templates"),
        voxel_size=voxel_size,
        overwrite=overwrite,
    )
    return labels


def make_dir(path, option="--out"):
    """Create the output folder ``path`` (and parents); a clear error if impossible."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"{path!r} ({option}) exists and is not a folder.")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create the folder {path!r} ({option}): {exc}") from None


def check_outside_data(output, option, data_dir):
    """Refuse an output that is the data folder or would be read as its data.

    A folder output equal to ``data_dir``, or a file with a data suffix
    (``.mrc``, ``.map``) directly inside it, would break every later read of
    the folder; both are usage errors naming the option.
    """
    if data_dir is None or not os.path.isdir(data_dir):
        return
    out = os.path.realpath(output)
    data = os.path.realpath(data_dir)
    if out == data:
        raise UsageError(
            f"{option} {output!r} is the data folder {data_dir!r}; write elsewhere."
        )
    if os.path.dirname(out) == data and out.lower().endswith(DATA_SUFFIXES):
        raise UsageError(
            f"{option} {output!r} is inside the data folder {data_dir!r} with a "
            "data suffix: every later read of the folder would take it as data; "
            "write elsewhere."
        )


def use_agg_backend():
    """Draw figures off-screen (the CLI never opens windows)."""
    import matplotlib

    matplotlib.use("Agg")


def make_metric(name, *, resolution=None, voxel_size=None):
    """The affinity metric object of a ``--metric`` name.

    ``resolution`` (Å, FSC only) needs ``voxel_size`` (Å); both are checked
    here so that a bad pair is a usage error naming the options.
    """
    from skavae.affinity import FSCAffinity, MeanDifference, SOAPAffinity

    metrics = {
        "fsc": FSCAffinity,
        "soap": SOAPAffinity,
        "mean-difference": MeanDifference,
    }
    if name not in metrics:
        raise UsageError(
            f"unknown metric {name!r}; choose one of {', '.join(METRICS)}."
        )
    if resolution is None:
        return metrics[name]()
    if name != "fsc":
        raise UsageError(f"--resolution applies to --metric fsc, not {name!r}.")
    if voxel_size is None:
        raise UsageError(
            "--resolution needs the voxel size, which the data's headers do not "
            "record (0 Å); give --voxel-size A."
        )
    if resolution < 2 * voxel_size:
        raise UsageError(
            f"--resolution {resolution:g} Å is finer than Nyquist (2 x the voxel "
            f"size {voxel_size:g} Å = {2 * voxel_size:g} Å)."
        )
    return FSCAffinity(resolution=resolution, voxel_size=voxel_size)


def scalar_voxel_size(X, *, cubic=False):
    """The voxel size (Å, along x) of a stack, or None when unknown (0 or none).

    With ``cubic`` (a resolution in Å is asked for, whose FSC shells are
    spheres only on a cubic grid) voxels of different sizes along x, y and z
    are refused, rather than cut at the x size's resolution.
    """
    size = getattr(X, "voxel_size", None)
    if size is None:
        return None
    sizes = np.ravel(size).astype(float)
    if cubic and sizes.size > 1 and np.ptp(sizes) > 1e-3 * abs(sizes[0]):
        shown = ", ".join(f"{v:g}" for v in sizes)
        raise CLIError(
            f"the files' voxels are not cubic ({shown} Å along x, y, z), so FSC "
            "shells in Å (--resolution) are not spheres on their grid; resample "
            "the data to cubic voxels, or give --voxel-size to state one size."
        )
    size = float(sizes[0])
    return size if size > 0 else None


#: the library's words for its options, and the command line's
_CLI_WORDS = (
    ("pass unlisted='skip'", "pass --skip-unlisted"),
    ("pass resample=True (command line: --resample)", "pass --resample"),
    ("pass follow_symlinks=True (command line: --follow-symlinks)",
     "pass --follow-symlinks"),
    ("label_regex (a regular expression with one group)",
     "--label-regex REGEX (a regular expression with one group)"),
    ("classes (a CSV table file,label)", "--classes CSV (a table file,label)"),
    ("label_func, or load without labels (unlabelled=True)",
     "or read the folder without labels (--unlabelled)"),
    ("label_regex ", "--label-regex "),
)  # fmt: skip


def _cli_words(text):
    for api, cli in _CLI_WORDS:
        text = text.replace(api, cli)
    return text


def label_pattern(regex):
    """``--label-regex`` for :func:`load_mrc_folder`: a group around a bare match.

    A regular expression with a group gives its group ``label`` or first
    group; one without a group gives its whole match (wrapped in a group
    after any leading global flags such as ``(?i)``).
    """
    import re

    if regex is None or re.compile(regex).groups:
        return regex
    flags = re.match(r"(?:\(\?[aiLmsux]+\))*", regex).group(0)
    return f"{flags}(?P<label>{regex[len(flags) :]})"


def load_folder(
    path,
    *,
    follow_symlinks=False,
    label_regex=None,
    classes=None,
    skip_unlisted=False,
    unlabelled=False,
    resample=False,
    voxel_size=None,
):
    """A .mrc folder: (X as a lazy MRCStack, y or None, file names).

    The keywords are the folder options of the commands
    (:func:`skavae._cli._args.add_folder_options`, the settings of
    :data:`skavae._cli._config.FOLDER_SETTINGS`); ``voxel_size`` replaces the
    headers'. Warnings of the reader (one class per file, ...) are shown, in
    the command line's words, once per call.
    """
    import warnings

    from skavae.datasets import load_mrc_folder

    given = [
        option
        for option, value in (
            ("--label-regex", label_regex),
            ("--classes", classes),
            ("--unlabelled", unlabelled or None),
        )
        if value is not None
    ]
    if len(given) > 1:
        both = " and ".join(given)
        raise UsageError(f"give at most one source of labels; got {both}.")
    if skip_unlisted and classes is None:
        raise UsageError("--skip-unlisted needs --classes CSV.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            X, y, info = load_mrc_folder(
                path,
                mmap=True,
                return_info=True,
                follow_symlinks=bool(follow_symlinks),
                label_regex=label_pattern(label_regex),
                classes=classes,
                unlabelled=bool(unlabelled),
                unlisted="skip" if skip_unlisted else "error",
                resample=bool(resample),
            )
        except ValueError as exc:
            text = _cli_words(str(exc))
            if label_regex is not None:  # the user's pattern, not the wrapped one
                text = text.replace(repr(label_pattern(label_regex)), repr(label_regex))
            raise CLIError(text) from None
    for w in caught:
        message = _cli_words(str(w.message))
        warnings.showwarning(w.category(message), w.category, w.filename, w.lineno)
    if voxel_size is not None:
        X.voxel_size = (float(voxel_size),) * 3
    names = [os.path.basename(p) for p in info["path"]]
    return X, y, names


def progress(iterable=None, *, desc, total=None, unit="it", quiet=False):
    """A tqdm progress bar on stderr (disabled when ``quiet``)."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        disable=quiet,
        file=sys.stderr,
        leave=False,
    )


def read_all(X, *, quiet=False, chunk=64, desc="reading"):
    """Read a lazy stack into one float32 array, with a progress bar."""
    n = len(X)
    out = np.empty(tuple(X.shape), dtype=np.float32)
    with progress(desc=desc, total=n, unit="file", quiet=quiet) as bar:
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            out[start:stop] = X[start:stop]
            bar.update(stop - start)
    return out


def fit_seed(seed):
    """The member-sampling seed ``AffinityVAE(random_state=seed).fit`` uses.

    The estimator draws one int32 from ``check_random_state(random_state)``
    and passes it to :func:`skavae.affinity.class_affinity_matrix`; the CLI
    does the same, so ``skavae affinity --seed S`` and
    ``fit(affinity=metric)`` with ``random_state=S`` give one matrix.
    """
    from sklearn.utils import check_random_state

    return int(check_random_state(seed).randint(np.iinfo(np.int32).max))


def folder_affinity(
    X, y, metric_name, *, n_per_class=16, seed=0, quiet=False, resolution=None
):
    """Class-level affinity matrix of a folder from sampled class members.

    Up to ``n_per_class`` files per class are compared by the metric
    (:func:`skavae.affinity.class_affinity_matrix`, the code and sampling
    ``AffinityVAE.fit`` uses for an ``Affinity`` metric); a folder of one
    template per class gives the template affinities.
    """
    import time

    from skavae.affinity import check_affinity_matrix, class_affinity_matrix

    metric = make_metric(
        metric_name,
        resolution=resolution,
        voxel_size=scalar_voxel_size(X, cubic=resolution is not None),
    )
    if not quiet:
        counts = np.unique(np.asarray(y), return_counts=True)[1]
        n = int(np.minimum(counts, n_per_class).sum())
        print(
            f"Computing {metric_name} similarities between {n} objects "
            f"({len(counts)} classes)...",
            file=sys.stderr,
        )
    start = time.perf_counter()
    matrix = class_affinity_matrix(
        X, y, metric, n_per_class=n_per_class, random_state=fit_seed(seed)
    )
    seconds = time.perf_counter() - start
    return check_affinity_matrix(matrix), seconds


def read_affinity(path, labels):
    """Read a class-level affinity CSV and check it covers ``labels``."""
    from skavae.affinity import check_affinity_matrix, read_affinity_csv

    if not os.path.isfile(path):
        raise CLIError(f"affinity file {path!r} does not exist.")
    try:
        matrix = read_affinity_csv(path)
        return check_affinity_matrix(matrix, labels=labels)
    except (ValueError, TypeError, OSError) as exc:
        raise CLIError(f"{path!r}: {exc}") from None
    except Exception as exc:  # pandas parser errors and the like
        raise CLIError(f"{path!r} is not a readable affinity CSV: {exc}") from None


def sidecar(model_path, what):
    """Path of a file written next to the model: ``<stem>.<what>``."""
    stem = os.path.splitext(os.fspath(model_path))[0]
    return f"{stem}.{what}"


def encode_all(model, X, *, quiet=False, chunk=256, desc="encoding"):
    """Latent means and poses of a (lazy) stack, chunk by chunk, with progress."""
    n = len(X)
    mus, poses = [], []
    with progress(desc=desc, total=n, unit="file", quiet=quiet) as bar:
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            mu, _, pose = model.encode(np.asarray(X[start:stop], dtype=np.float32))
            mus.append(np.asarray(mu))
            poses.append(np.asarray(pose))
            bar.update(stop - start)
    return np.concatenate(mus), np.concatenate(poses)


def latent_columns(n):
    """Names of the latent columns, as ``set_output(transform="pandas")`` gives.

    ``AffinityVAE`` names its ``transform`` outputs ``affinityvae0``,
    ``affinityvae1``, ... (scikit-learn's class-name prefix); the CLI's CSVs
    use the same names so a table read back matches ``transform``'s frame.
    """
    from skavae import AffinityVAE

    return [f"{AffinityVAE.__name__.lower()}{d}" for d in range(n)]


def latents_frame(paths, y, mu, pose):
    """One row per file: path, file, label, affinityvae0.., pose0.."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "path": [os.path.abspath(p) for p in paths],
            "file": [os.path.basename(p) for p in paths],
            "label": np.asarray(y).astype(str) if y is not None else "",
        }
    )
    for d, name in enumerate(latent_columns(mu.shape[1])):
        frame[name] = mu[:, d]
    for d in range(pose.shape[1]):
        frame[f"pose{d}"] = pose[:, d]
    return frame
