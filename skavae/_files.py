"""Atomic file writes whose results honour the umask."""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["atomic_path", "file_mode"]


def file_mode():
    """Permissions of a new file under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path next to ``path``; move it into place on success.

    The temporary file lives in the destination folder, so ``os.replace`` is an
    atomic rename: readers see the old file or the complete new one, never a
    partial file, and an interrupted write leaves nothing behind. The final file
    has the permissions of a file created under the umask (``mkstemp`` makes
    0600 files).

    Parameters
    ----------
    path : str or path-like
        The file to write.
    suffix : str, default=""
        Suffix of the temporary file.

    Yields
    ------
    tmp : str
        The temporary file to write (it exists, empty).

    Examples
    --------
    >>> import os, tempfile
    >>> from skavae._files import atomic_path
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_path(path) as tmp, open(tmp, "w") as fh:
    ...     _ = fh.write("done")
    >>> open(path).read()
    'done'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
