"""Output folders written whole: into a temporary sibling, renamed into place.

A command that writes a folder of results (``simulate``, ``evaluate``) writes
them into a hidden sibling ``.<name>.<random>.part`` and renames it to the
destination only once every file is written. A failure (disk full, read-only
target, Ctrl-C) leaves the destination as it was and removes the sibling; with
``--overwrite`` the old folder is replaced as a whole, so no stale file of an
earlier run stays next to the new ones. A folder holding files the command did
not write is never replaced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from skavae._cli._common import CLIError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def output_folder(path, *, overwrite, option, owned):
    """Yield a temporary folder that becomes ``path`` when the block succeeds.

    Parameters
    ----------
    path : str
        The destination folder.
    overwrite : bool
        Replace an existing, non-empty ``path`` (else refused).
    option : str
        The option naming ``path`` in error messages.
    owned : callable
        ``owned(entry_name, is_dir) -> bool``: whether an entry of an existing
        ``path`` is one this command writes; a folder holding anything else
        is not replaced.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"{path!r} ({option}) exists and is not a folder.")
    entries = sorted(os.listdir(path)) if os.path.isdir(path) else []
    if entries and not overwrite:
        raise CLIError(
            f"{path!r} ({option}) already exists and is not empty; pass "
            "--overwrite to replace it."
        )
    for entry in entries:
        if not owned(entry, os.path.isdir(os.path.join(path, entry))):
            raise CLIError(
                f"{path!r} ({option}) holds {entry!r}, which this command does "
                "not write; not replacing the folder (choose another one)."
            )
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(
            prefix=f".{os.path.basename(os.path.abspath(path))}.",
            suffix=".part",
            dir=parent,
        )
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
    except OSError as exc:
        raise CLIError(f"cannot write the folder {path!r} ({option}): {exc}") from None
    try:
        yield tmp
        _move_into_place(tmp, path, option)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_into_place(tmp, path, option):
    old = None
    try:
        if os.path.isdir(path):
            old = tmp[: -len(".part")] + ".old"
            os.rename(path, old)
        os.rename(tmp, path)
    except OSError as exc:
        if old is not None and not os.path.exists(path):
            os.rename(old, path)  # put the previous results back
        msg = f"cannot move the results into {path!r} ({option}): {exc}"
        raise CLIError(msg) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
