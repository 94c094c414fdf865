"""Atomic training checkpoints that a later ``fit`` resumes from.

One :class:`Checkpointer` per fit owns the folder, the format and the run's
fingerprint: :meth:`Checkpointer.resume` finds the newest checkpoint of the same
run, and the checkpointer, called after every complete epoch, writes one.

A checkpoint is one ``torch.save`` file per saved epoch,
``checkpoint-<epoch>.pt`` in the checkpoint folder, written to a temporary file
in the same folder and renamed into place (with the permissions of the umask),
so a crash never leaves a partial file under a checkpoint's name. It holds
only tensors, numbers, strings, lists and dicts, and is read with
``torch.load(weights_only=True)``: loading a checkpoint never runs code from
the file.

A checkpoint records a *fingerprint* of the run (:func:`run_fingerprint`):
every hyper-parameter that changes the model, the input shape, the number of
samples and the standardisation, and hashes of the content - a fixed sample
of the objects, all labels, the measured-coefficient masks and the affinity
(a DataFrame's values; a metric's parameters, or for a plain callable its
values on the sampled objects). A checkpoint whose fingerprint differs from
the current run's is never resumed nor overwritten: the fit is refused with a
``ValueError`` naming the folder and what differs, before any training (use
another folder, or delete this one to start afresh).
"""

from __future__ import annotations

import glob
import hashlib
import math
import os
import pickle  # to test that a schedule can be named; nothing is unpickled
import re
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch

from skavae._files import atomic_path
from skavae._validation import checked_metric

FORMAT = 2
_NAME = re.compile(r"checkpoint-(\d+)\.pt$")
_SAMPLED_ROWS = 64  # objects hashed into the fingerprint
#: parameters that do not change the model a run converges to
_NOT_FINGERPRINTED = {"max_epochs", "verbose", "n_threads", "device", "warm_start"}
_NOT_FINGERPRINTED |= {"checkpoint_dir", "checkpoint_every"}


# ----------------------------------------------------------------- the files
def _listing(folder):
    """Checkpoint files of ``folder``, newest epoch first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(folder), "checkpoint-*.pt")):
        match = _NAME.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(folder, epoch, payload, keep=2):
    """Write ``payload`` as the checkpoint of ``epoch``; keep the newest ``keep``.

    Parameters
    ----------
    folder : str or path-like
        Checkpoint folder (created if missing).
    epoch : int
        Epoch number, used in the file name.
    payload : dict
        Tensors, numbers, strings, lists and dicts only.
    keep : int, default=2
        Number of checkpoints kept (older ones are deleted after the new one is
        in place, so there is always a previous one to fall back to).

    Returns
    -------
    path : str
        The checkpoint written.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"checkpoint-{int(epoch):06d}.pt")
    with atomic_path(path, suffix=".pt") as tmp, open(tmp, "wb") as fh:
        torch.save({"format": FORMAT, "epoch": int(epoch), **payload}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    for old in _listing(folder)[keep:]:
        try:
            os.unlink(old)
        except OSError:
            pass
    return path


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def load_checkpoint(folder, fingerprint):
    """The newest readable checkpoint of ``folder`` matching ``fingerprint``.

    A corrupted or truncated file is reported with a warning naming it, and the
    previous checkpoint is tried.

    Parameters
    ----------
    folder : str or path-like
        Checkpoint folder; a missing folder means no checkpoint.
    fingerprint : dict
        Description of the run; must equal the checkpoint's.

    Returns
    -------
    payload : dict or None
        The checkpoint's content, or None when there is none to resume from.

    Raises
    ------
    ValueError
        If the newest readable checkpoint belongs to another run (its message
        names the folder and what differs).
    """
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"checkpoint_dir {folder!r} exists and is not a folder.")
    for path in _listing(folder):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict) or "format" not in payload:
                raise ValueError("not a skavae checkpoint")
        except Exception as exc:  # unreadable: fall back to the previous one
            warnings.warn(
                f"Checkpoint {path} is corrupted or truncated ({exc}); trying the "
                "previous checkpoint.",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        stored = payload.get("fingerprint", {})
        if payload["format"] != FORMAT:
            differ = [f"format (version {payload['format']}, not {FORMAT})"]
        else:
            differ = sorted(
                k
                for k in set(stored) | set(fingerprint)
                if not _same(stored.get(k), fingerprint.get(k))
            )
        if differ:
            raise ValueError(
                f"checkpoint_dir {folder!r} holds checkpoints of another run "
                f"({os.path.basename(path)} differs in {', '.join(differ)}); "
                "refusing to resume from or overwrite them. Use another "
                "checkpoint_dir, or delete this one to start afresh."
            )
        return payload
    return None


def clear_checkpoints(folder):
    """Delete the checkpoint files of ``folder`` (a fresh run replaces them)."""
    for path in _listing(os.fspath(folder)):
        try:
            os.unlink(path)
        except OSError:
            pass


def state_to_cpu(obj):
    """Recursively move the tensors of a (state) dict to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu")
    if isinstance(obj, dict):
        return {k: state_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [state_to_cpu(v) for v in obj]
    return obj


# ----------------------------------------------------------- the fingerprint
def _digest(*arrays):
    """A short, stable hash of arrays (their dtype kind, shape and bytes)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype.kind in "OUS":
            a = np.array([repr(v) for v in a.ravel().tolist()], dtype=str)
        h.update(f"{a.dtype.kind}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


def _callable_name(func):
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}"


def _plain(value):
    """A process-stable description of a parameter value (primitives only)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, pd.DataFrame):
        index = np.asarray(value.index, dtype=object)
        columns = np.asarray(value.columns, dtype=object)
        return {"frame": _digest(value.to_numpy(dtype=float), index, columns)}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "get_params"):  # an Affinity metric, a MissingWedge
        params = value.get_params(deep=False)
        return {
            "class": _callable_name(type(value)),
            "params": {k: _plain(v) for k, v in sorted(params.items())},
        }
    if callable(value) and hasattr(value, "__qualname__"):
        return _callable_name(value)
    return repr(value)


def _check_schedules(params):
    """Refuse callable schedules that a checkpoint cannot identify."""
    for name in ("beta_schedule", "gamma_schedule"):
        spec = params[name]
        if not callable(spec):
            continue
        try:
            pickle.dumps(spec)
        except Exception:
            raise ValueError(
                f"{name} is a lambda or a local function, which a checkpoint "
                "cannot identify (a resumed fit could continue with another "
                "schedule). With checkpoint_dir, give a schedule name, an array "
                "of per-epoch factors or a module-level function."
            ) from None


def run_fingerprint(params, source, y, wedge):
    """What a checkpoint must agree on to be resumed by this fit.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``.
    source : BatchSource
        The standardised training data (its shape, statistics and a fixed
        sample of its objects are hashed).
    y : array-like or None
        The labels (hashed whole).
    wedge : tuple (masks, index) or None
        The measured-coefficient masks of the samples.

    Raises
    ------
    ValueError
        If a schedule is a lambda or a local function.
    """
    _check_schedules(params)
    n = len(source)
    sample = np.unique(np.linspace(0, n - 1, min(n, _SAMPLED_ROWS)).astype(int))
    rows = np.asarray(source.raw(sample), dtype=np.float64)
    fingerprint = {
        k: _plain(v) for k, v in params.items() if k not in _NOT_FINGERPRINTED
    }
    seed = params["random_state"]
    fingerprint["random_state"] = int(seed) if isinstance(seed, Integral) else None
    affinity = params["affinity"]
    if callable(affinity) and not hasattr(affinity, "get_params"):
        objects = rows[:8].reshape(-1, *source.input_shape)
        values = checked_metric(affinity)(objects)
        fingerprint["affinity"] = [_callable_name(affinity), _digest(values)]
    fingerprint.update(
        n_samples=int(n),
        input_shape=list(source.input_shape),
        standardisation=[source.mean, source.scale],
        data=_digest(rows),
        labels=None if y is None else _digest(np.asarray(y)),
        wedge=None if wedge is None else _digest(*wedge),
    )
    return fingerprint


# ------------------------------------------------------------------ resuming
@dataclass
class Resume:
    """The state of a run at a checkpoint, to continue it from there."""

    epoch: int
    seed: int
    module: dict
    optimizer: dict
    shuffle_rng: torch.Tensor
    noise_rng: torch.Tensor
    rows: list
    pose_mean: np.ndarray | None
    pose_std: np.ndarray | None

    def restore_generators(self, generator, noise_generator):
        """Continue the shuffling and sampling streams where the run left them."""
        generator.set_state(self.shuffle_rng)
        noise_generator.set_state(self.noise_rng.to(noise_generator.device))


class Checkpointer:
    """The checkpoints of one fit: where, how often, and of which run.

    Parameters
    ----------
    folder : str or path-like
        The checkpoint folder.
    every : int
        Epochs between checkpoints (epoch numbers counted over the run).
    fingerprint : dict
        The run's :func:`run_fingerprint`.
    keep : int, default=2
        Checkpoints kept.

    Call :meth:`resume` once, then :meth:`track` with the live training state;
    the checkpointer is then the per-epoch ``callback(rows, pose)`` of
    :func:`~skavae._training.train`. The folder is created, and checked to be
    writable, when the checkpointer is made, before any training.
    """

    def __init__(self, folder, every, fingerprint, keep=2):
        self.folder = os.fspath(folder)
        self.every = int(every)
        self.fingerprint = fingerprint
        self.keep = keep
        self._live = None
        # before training: a run must not find out at its first checkpoint
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise ValueError(
                f"checkpoint_dir {self.folder!r} exists and is not a folder."
            )
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"cannot create checkpoint_dir {self.folder!r}: {exc.strerror or exc}"
            ) from None
        if not os.access(self.folder, os.W_OK | os.X_OK):
            raise PermissionError(f"checkpoint_dir {self.folder!r} is not writable.")

    def resume(self):
        """The newest checkpoint of this run as a :class:`Resume`, or None.

        Checkpoints of another run are refused with a ``ValueError`` naming
        the folder and what differs; corrupted files are skipped with a
        warning.
        """
        payload = load_checkpoint(self.folder, self.fingerprint)
        if payload is None:
            clear_checkpoints(self.folder)
            return None
        history = payload["history"]
        rows = [
            {k: history[k][i] for k in history} for i in range(len(history["epoch"]))
        ]
        pose = payload["pose"]
        return Resume(
            epoch=int(payload["epoch"]),
            seed=int(payload["seed"]),
            module=payload["module"],
            optimizer=payload["optimizer"],
            shuffle_rng=payload["shuffle_rng"],
            noise_rng=payload["noise_rng"],
            rows=rows,
            pose_mean=None if pose is None else pose[0].numpy(),
            pose_std=None if pose is None else pose[1].numpy(),
        )

    def track(self, *, seed, module, optimizer, generator, noise_generator, history):
        """Bind the state that every checkpoint saves.

        ``history`` (a DataFrame) holds the epochs before this call to
        ``train``; the epochs of ``train``'s rows follow it.
        """
        self._live = dict(
            seed=int(seed),
            module=module,
            optimizer=optimizer,
            generator=generator,
            noise_generator=noise_generator,
            history=history.to_dict("list"),
        )

    def __call__(self, rows, pose):
        """After a complete epoch: write a checkpoint every ``every`` epochs."""
        live = self._live
        epoch = len(live["history"].get("epoch", [])) + len(rows)
        if epoch % self.every:
            return
        history = {k: [float(x) for x in v] for k, v in live["history"].items()}
        for row in rows:
            for k in history.keys() | row.keys():
                history.setdefault(k, []).append(float(row.get(k, np.nan)))
        save_checkpoint(
            self.folder,
            epoch,
            {
                "fingerprint": self.fingerprint,
                "seed": live["seed"],
                "module": state_to_cpu(live["module"].state_dict()),
                "optimizer": state_to_cpu(live["optimizer"].state_dict()),
                "shuffle_rng": live["generator"].get_state(),
                "noise_rng": live["noise_generator"].get_state().cpu(),
                "history": history,
                "pose": None if pose is None else [torch.from_numpy(p) for p in pose],
            },
            keep=self.keep,
        )
