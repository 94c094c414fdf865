"""Atomic training checkpoints that a later ``fit`` resumes from.

A checkpoint is one ``torch.save`` file per saved epoch,
``checkpoint-<epoch>.pt`` in the checkpoint folder, written to a temporary file
in the same folder and renamed into place, so a crash never leaves a partial
file under a checkpoint's name. It holds only tensors, numbers, strings, lists
and dicts, and is read with ``torch.load(weights_only=True)``: loading a
checkpoint never runs code from the file.

A checkpoint records a *fingerprint* of the run (hyper-parameters, input shape,
number of samples and the data's standardisation); a checkpoint whose
fingerprint differs from the current run's is ignored with a warning.
"""

from __future__ import annotations

import glob
import math
import os
import re
import tempfile
import warnings

import pandas as pd
import torch
from sklearn.base import BaseEstimator

from skavae._training import HISTORY_COLUMNS

FORMAT = 1
_NAME = re.compile(r"checkpoint-(\d+)\.pt$")


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
    fd, tmp = tempfile.mkstemp(prefix=".tmp-checkpoint-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, "epoch": int(epoch), **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
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
    """
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"checkpoint_dir {folder!r} exists and is not a folder.")
    for path in _listing(folder):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict) or payload.get("format") != FORMAT:
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
        if not _same(stored, fingerprint):
            differ = sorted(
                k
                for k in set(stored) | set(fingerprint)
                if not _same(stored.get(k), fingerprint.get(k))
            )
            warnings.warn(
                f"Checkpoint {path} belongs to another run (differs in "
                f"{', '.join(differ)}); training starts afresh and its checkpoints "
                "will be replaced.",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        return payload
    return None


def clear_checkpoints(folder):
    """Delete the checkpoint files of ``folder`` (a fresh run replaces them)."""
    for path in _listing(os.fspath(folder)):
        try:
            os.unlink(path)
        except OSError:
            pass


def affinity_key(affinity):
    """A description of ``affinity`` that is stable across processes."""
    if affinity is None:
        return None
    if isinstance(affinity, pd.DataFrame):
        return affinity.to_csv()
    if isinstance(affinity, BaseEstimator):
        return repr(affinity)
    name = getattr(affinity, "__qualname__", type(affinity).__qualname__)
    return f"{getattr(affinity, '__module__', '')}.{name}"


def resumed_result(payload):
    """A ``train`` result holding the history and pose statistics of a checkpoint."""
    history = payload["history"]
    rows = [
        {k: history[k][i] for k in HISTORY_COLUMNS if k in history}
        for i in range(len(history.get("epoch", [])))
    ]
    pose_mean = pose_std = None
    if payload.get("pose_stats") is not None:
        pose_sum, pose_sq, count = payload["pose_stats"]
        mean = pose_sum / count
        pose_mean = mean.numpy()
        pose_std = torch.sqrt((pose_sq / count - mean**2).clamp_min(0)).numpy()
    return {"rows": rows, "pose_mean": pose_mean, "pose_std": pose_std}


def state_to_cpu(obj):
    """Recursively move the tensors of a (state) dict to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu")
    if isinstance(obj, dict):
        return {k: state_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [state_to_cpu(v) for v in obj]
    return obj
