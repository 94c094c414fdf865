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


def naming(error, path):
    """``error`` (an OSError without a file name, e.g. a full disk) naming ``path``.

    Examples
    --------
    >>> from skavae._files import naming
    >>> str(naming(OSError(28, "No space left on device"), "out/info.csv"))
    "[Errno 28] cannot write 'out/info.csv': No space left on device"
    """
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno is None:
        return OSError(f"cannot write {os.fspath(path)!r}: {reason}")
    return OSError(error.errno, f"cannot write {os.fspath(path)!r}: {reason}")


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
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise naming(exc, path) from exc
        raise
