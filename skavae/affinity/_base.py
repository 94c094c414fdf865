"""The affinity protocol and the class-level affinity matrix.

An affinity metric is any callable ``metric(X, Y=None) -> (n_x, n_y)`` similarity
matrix with values in [-1, 1] where 1 means identical, in the manner of the
kernels in :mod:`sklearn.metrics.pairwise`. :class:`Affinity` is the base class
of the metrics shipped here; it adds input validation, chunking (so memory stays
bounded for any number of objects) and scikit-learn's ``get_params``/``set_params``
so a metric can be cloned and grid-searched as part of an estimator.

The affinity-VAE loss (paper eq. 3) looks the affinity of each pair of a batch up
in a *class-level* matrix: :func:`class_affinity_matrix` builds it as a
:class:`pandas.DataFrame` whose index and columns are the class labels, as in the
paper's CSV files (:func:`write_affinity_csv`, :func:`read_affinity_csv`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

__all__ = [
    "Affinity",
    "check_affinity_matrix",
    "class_affinity_matrix",
    "read_affinity_csv",
    "write_affinity_csv",
]


def _as_objects(X, name="X"):
    """Validate a stack of objects: finite, float, at least one object."""
    if isinstance(X, (list, tuple)):
        X = np.stack([np.asarray(x) for x in X]) if len(X) else np.empty((0,))
    X = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if X.dtype.kind not in "fiu":
        raise ValueError(
            f"{name} must hold real numbers; got an array of dtype {X.dtype}."
        )
    if X.ndim < 2:
        raise ValueError(
            f"{name} must be a stack of objects of shape (n, ...) with n >= 1; "
            f"got shape {X.shape}."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 objects).")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    return X


def _as_pair(X, Y):
    """``(X, Y, Y_is_X)`` as object stacks of one shape (``Y=None`` means X)."""
    X = _as_objects(X, "X")
    Y_is_X = Y is None
    Y = X if Y_is_X else _as_objects(Y, "Y")
    if X.shape[1:] != Y.shape[1:]:
        raise ValueError(
            f"X and Y must hold objects of the same shape; got {X.shape[1:]} "
            f"and {Y.shape[1:]}."
        )
    return X, Y, Y_is_X


class Affinity(BaseEstimator, metaclass=ABCMeta):
    """Base class of affinity (similarity) metrics.

    Subclasses implement :meth:`_pairwise_block`, which receives two blocks of
    at most ``chunk_size`` objects (or of their features) and returns the
    ``(a, b)`` similarity block. :meth:`__call__` validates the inputs, runs the
    optional per-object step :meth:`_embed` once per object (e.g. a Fourier
    transform or a descriptor), and assembles the full matrix block by block,
    computing only the upper triangle of blocks when ``Y`` is ``None``. Memory is
    the output plus the per-object features plus one block, whatever ``n``.

    Parameters
    ----------
    chunk_size : int, default=256
        Number of objects of ``X`` processed per block.

    See Also
    --------
    FSCAffinity, SOAPAffinity, MeanDifference : The metrics shipped.
    class_affinity_matrix : Class-level matrix built from a metric.

    Examples
    --------
    A metric whose per-object step is a flattening and normalisation, and whose
    pairwise step is a matrix product (the normalised cross-correlation):

    >>> import numpy as np
    >>> from skavae.affinity import Affinity
    >>> class NCC(Affinity):
    ...     def _embed(self, A, state):
    ...         A = A.reshape(len(A), -1)
    ...         A = A - A.mean(axis=1, keepdims=True)
    ...         return A / np.linalg.norm(A, axis=1, keepdims=True)
    ...     def _pairwise_block(self, A, B, state):
    ...         return A @ B.T
    >>> X = np.array([[0.0, 1.0, 2.0], [0.0, 2.0, 4.0], [2.0, 1.0, 0.0]])
    >>> NCC(chunk_size=2)(X)
    array([[ 1.,  1., -1.],
           [ 1.,  1., -1.],
           [-1., -1.,  1.]])
    """

    #: Spatial ranks (object ndim) a metric accepts; ``None`` means any.
    _supported_ndims: tuple[int, ...] | None = None

    def __init__(self, chunk_size=256):
        self.chunk_size = chunk_size

    def __call__(self, X, Y=None):
        """Similarity matrix between the objects of ``X`` and ``Y``.

        Parameters
        ----------
        X : array-like of shape (n_x, ...)
            Stack of objects (1D signals, 2D images or 3D volumes).
        Y : array-like of shape (n_y, ...), default=None
            Second stack; ``None`` means ``Y = X`` (the result is symmetric).

        Returns
        -------
        S : ndarray of shape (n_x, n_y)
            Similarities in [-1, 1]; 1 means identical.

        Raises
        ------
        ValueError
            If an input is empty, not numeric, holds NaN or infinity, has
            objects of an unsupported rank, or ``X`` and ``Y`` hold objects of
            different shapes.
        """
        X, Y, Y_is_X = _as_pair(X, Y)
        if (
            self._supported_ndims is not None
            and X.ndim - 1 not in self._supported_ndims
        ):
            raise ValueError(
                f"{type(self).__name__} works on objects of "
                f"{' or '.join(f'{d}D' for d in self._supported_ndims)}; got "
                f"objects of shape {X.shape[1:]} ({X.ndim - 1}D)."
            )
        if not isinstance(self.chunk_size, Integral) or self.chunk_size < 1:
            raise ValueError(
                f"chunk_size must be a positive integer; got {self.chunk_size!r}."
            )
        state = self._prepare(X, Y)
        FX = self._embed_all(X, "X", state)
        FY = FX if Y_is_X else self._embed_all(Y, "Y", state)
        n_x, n_y = X.shape[0], Y.shape[0]
        out = np.empty((n_x, n_y), dtype=np.float64)
        step = int(self.chunk_size)
        for i in range(0, n_x, step):
            for j in range(0, n_y, step):
                if Y_is_X and j + step <= i:
                    # symmetric: the lower block is the transpose of the upper one
                    out[i : i + step, j : j + step] = out[j : j + step, i : i + step].T
                    continue
                out[i : i + step, j : j + step] = self._pairwise_block(
                    FX[i : i + step], FY[j : j + step], state
                )
        np.clip(out, -1.0, 1.0, out=out)
        if Y_is_X:
            np.fill_diagonal(out, 1.0)
        return out

    def _embed_all(self, X, name, state):
        """Check ``X`` for non-finite values and embed it, ``chunk_size`` at a time.

        Reading block by block keeps memory bounded for memory-mapped inputs.
        Without an :meth:`_embed` override the objects themselves are returned
        (not copied).
        """
        step = int(self.chunk_size)
        identity = type(self)._embed is Affinity._embed
        out = None
        for i in range(0, X.shape[0], step):
            chunk = np.asarray(X[i : i + step])
            finite = np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
            if not finite.all():
                bad = i + int(np.argmin(finite))
                raise ValueError(f"{name} contains NaN or infinity (object {bad}).")
            if not identity:
                feats = self._embed(chunk, state)
                if out is None:  # filled in place: no second copy of the features
                    out = np.empty((X.shape[0], *feats.shape[1:]), dtype=feats.dtype)
                out[i : i + step] = feats
        return X if identity else out

    def _prepare(self, X, Y):
        """Return data-dependent state shared by all blocks (e.g. a scale)."""
        return None

    def _embed(self, A, state):
        """Map a block of objects to per-object features (default: the objects).

        Called once per block of ``chunk_size`` objects of ``X`` and of ``Y``;
        :meth:`_pairwise_block` then receives blocks of these features. Metrics
        with an expensive per-object step (a Fourier transform, a descriptor)
        override it so that the step runs once per object, not once per pair.
        """
        return A

    @abstractmethod
    def _pairwise_block(self, A, B, state):
        """The (a, b) similarity block of two blocks of features."""


def check_affinity_matrix(matrix, labels=None, *, atol=1e-6):
    """Validate a class-level affinity matrix and return it as a DataFrame.

    Parameters
    ----------
    matrix : pandas.DataFrame
        Square matrix; index and columns are the same class labels.
    labels : array-like, default=None
        Labels that must all be present in the matrix.
    atol : float, default=1e-6
        Tolerance of the symmetry check.

    Returns
    -------
    matrix : pandas.DataFrame of float64
        The matrix with its columns in the order of its index.

    Raises
    ------
    ValueError
        If the matrix is not a DataFrame, not square, has index and columns that
        differ, holds non-finite values or values outside [-1, 1], is not
        symmetric, or lacks one of ``labels``.

    See Also
    --------
    class_affinity_matrix : Build such a matrix from a metric.

    Examples
    --------
    >>> import pandas as pd
    >>> from skavae.affinity import check_affinity_matrix
    >>> A = pd.DataFrame([[0.5, 1], [1, 0.5]], index=["a", "b"], columns=["b", "a"])
    >>> check_affinity_matrix(A, labels=["a", "b", "a"])
         a    b
    a  1.0  0.5
    b  0.5  1.0
    >>> check_affinity_matrix(A, labels=["c"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Labels ['c'] are not in the affinity matrix, whose labels are ...
    """
    if not isinstance(matrix, pd.DataFrame):
        raise ValueError(
            "An affinity matrix must be a pandas DataFrame whose index and "
            f"columns are the class labels; got {type(matrix).__name__}."
        )
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"The affinity matrix is not square: shape {matrix.shape}.")
    if matrix.shape[0] == 0:
        raise ValueError("The affinity matrix is empty.")
    if not matrix.index.is_unique:
        raise ValueError("The affinity matrix has duplicated labels in its index.")
    if set(matrix.index) != set(matrix.columns):
        raise ValueError(
            "The affinity matrix's index and columns must hold the same labels; "
            f"got index {list(matrix.index)} and columns {list(matrix.columns)}."
        )
    matrix = matrix.loc[:, list(matrix.index)]
    try:
        if any(np.dtype(t).kind == "c" for t in matrix.dtypes):
            raise TypeError("complex values")
        values = matrix.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The affinity matrix holds non-numeric values: {exc}"
        ) from None
    if not np.isfinite(values).all():
        raise ValueError("The affinity matrix contains NaN or infinity.")
    if values.min() < -1 - atol or values.max() > 1 + atol:
        raise ValueError(
            "Affinity values must lie in [-1, 1]; the matrix holds values in "
            f"[{values.min():.4g}, {values.max():.4g}]."
        )
    if not np.allclose(values, values.T, atol=atol, rtol=0):
        i, j = np.unravel_index(np.abs(values - values.T).argmax(), values.shape)
        raise ValueError(
            "The affinity matrix is not symmetric: "
            f"A[{matrix.index[i]!r}, {matrix.index[j]!r}] = {values[i, j]:.4g} but "
            f"A[{matrix.index[j]!r}, {matrix.index[i]!r}] = {values[j, i]:.4g}."
        )
    if labels is not None:
        missing = [
            lab
            for lab in pd.unique(np.asarray(labels)).tolist()
            if lab not in matrix.index
        ]
        if missing:
            raise ValueError(
                f"Labels {missing[:10]} are not in the affinity matrix, whose "
                f"labels are {list(matrix.index)[:20]}."
            )
    return pd.DataFrame(
        np.clip(values, -1.0, 1.0),
        index=matrix.index.copy(),
        columns=matrix.index.copy(),
    )


def class_affinity_matrix(
    X=None, y=None, metric=None, *, n_per_class=16, templates=None, random_state=None
):
    """Class-level affinity matrix from a metric.

    Either from one *template* per class (one reference object in a common frame,
    as in the paper) or, without templates, from the mean affinity between up to
    ``n_per_class`` sampled members of each pair of classes. The diagonal is set
    to 1: every member of a class is the same object, whatever its pose.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...), default=None
        Objects; ignored when ``templates`` is given.
    y : array-like of shape (n_samples,), default=None
        Class label of each object; ignored when ``templates`` is given.
    metric : callable
        ``metric(A, B=None) -> (n_a, n_b)`` similarity in [-1, 1].
    n_per_class : int, default=16
        Members sampled per class when no templates are given.
    templates : dict or pandas.Series, default=None
        Mapping ``label -> object``.
    random_state : int, RandomState instance or None, default=None
        Controls the sampling of members.

    Returns
    -------
    matrix : pandas.DataFrame
        Symmetric, diagonal 1; index and columns are the class labels, sorted,
        or in the order of ``templates``.

    See Also
    --------
    write_affinity_csv, read_affinity_csv : The paper's CSV form.
    check_affinity_matrix : Validate a matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.affinity import MeanDifference, class_affinity_matrix
    >>> X = np.stack([np.zeros((4, 4)), np.zeros((4, 4)), np.ones((4, 4))])
    >>> class_affinity_matrix(X, ["a", "a", "b"], MeanDifference(scale=1.0))
         a    b
    a  1.0 -1.0
    b -1.0  1.0
    """
    if metric is None or not callable(metric):
        raise ValueError(f"metric must be a callable similarity; got {metric!r}.")
    if templates is not None:
        labels = list(templates.keys())
        if not labels:
            raise ValueError("templates is empty: give one object per class.")
        objs = _as_objects([np.asarray(templates[lab]) for lab in labels], "templates")
        values = np.asarray(metric(objs), dtype=np.float64)
        values = (values + values.T) / 2
    else:
        if X is None or y is None:
            raise ValueError("class_affinity_matrix needs X and y, or templates.")
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(
                f"X and y have different lengths: {len(X)} objects, {len(y)} labels."
            )
        if len(y) == 0:
            raise ValueError(
                "class_affinity_matrix needs at least one object; X is empty."
            )
        if not isinstance(n_per_class, Integral) or n_per_class < 1:
            raise ValueError(
                f"n_per_class must be a positive integer; got {n_per_class!r}."
            )
        rng = check_random_state(random_state)
        labels = sorted(pd.unique(y).tolist(), key=lambda v: (str(type(v)), v))
        picks, owner = [], []
        for k, lab in enumerate(labels):
            members = np.flatnonzero(y == lab)
            if len(members) > n_per_class:
                members = np.sort(rng.choice(members, n_per_class, replace=False))
            picks.append(members)
            owner.append(np.full(len(members), k))
        picks, owner = np.concatenate(picks), np.concatenate(owner)
        sample = _as_objects(
            np.asarray(X[picks]) if hasattr(X, "shape") else [X[i] for i in picks], "X"
        )
        S = np.asarray(metric(sample), dtype=np.float64)
        onehot = np.zeros((len(labels), len(picks)))
        onehot[owner, np.arange(len(picks))] = 1.0
        onehot /= onehot.sum(axis=1, keepdims=True)
        values = onehot @ S @ onehot.T
        values = (values + values.T) / 2
    if not np.isfinite(values).all():
        raise ValueError("The metric returned NaN or infinite similarities.")
    if values.min() < -1 - 1e-6 or values.max() > 1 + 1e-6:
        raise ValueError(
            f"The metric returned similarities in [{values.min():.4g}, "
            f"{values.max():.4g}]; an affinity metric must return values in [-1, 1]."
        )
    np.fill_diagonal(values, 1.0)
    values = np.clip(values, -1.0, 1.0)
    _warn_if_uninformative(values, from_members=templates is None)
    return pd.DataFrame(values, index=labels, columns=labels)


#: A class matrix whose off-diagonal values span less than this carries no
#: information on which classes are alike (only "same" vs "different").
UNINFORMATIVE_SPREAD = 0.15


def _warn_if_uninformative(values, *, from_members):
    """UserWarning when the off-diagonal entries barely differ from each other."""
    if len(values) < 3:
        return
    off = values[~np.eye(len(values), dtype=bool)]
    spread = float(off.max() - off.min())
    if spread >= UNINFORMATIVE_SPREAD:
        return
    hint = (
        " It was built from sampled class members: a metric that depends on "
        "orientation (FSCAffinity, MeanDifference) scores randomly rotated or "
        "noisy members near 0 whatever their shape. Give one clean template "
        "per class (templates=...), use a rotation-invariant metric "
        "(SOAPAffinity), or pass a precomputed matrix."
        if from_members
        else ""
    )
    warnings.warn(
        f"The class affinity matrix carries little information: its off-diagonal "
        f"values span only {off.min():.3f} to {off.max():.3f} (less than "
        f"{UNINFORMATIVE_SPREAD}).{hint}",
        UserWarning,
        stacklevel=3,
    )


def write_affinity_csv(matrix, path):
    """Write a class-level affinity matrix as CSV, atomically.

    The layout is the paper's: a header row of labels, then one row per class
    starting with its label. The file is written to a temporary file in the same
    folder and renamed, so an interrupted write never leaves a partial file.

    Parameters
    ----------
    matrix : pandas.DataFrame
        A valid affinity matrix (see :func:`check_affinity_matrix`).
    path : str or path-like
        Destination file.

    See Also
    --------
    read_affinity_csv : Read it back.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from skavae.affinity import read_affinity_csv, write_affinity_csv
    >>> A = pd.DataFrame([[1, -0.25], [-0.25, 1]], index=["a", "2"], columns=["a", "2"])
    >>> path = os.path.join(tempfile.mkdtemp(), "affinity.csv")
    >>> write_affinity_csv(A, path)
    >>> print(open(path).read().strip())
    ,a,2
    a,1.000000,-0.250000
    2,-0.250000,1.000000
    >>> read_affinity_csv(path).loc["2", "a"]
    np.float64(-0.25)
    """
    matrix = check_affinity_matrix(matrix)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=folder)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            matrix.to_csv(fh, float_format="%.6f")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_affinity_csv(path):
    """Read a class-level affinity matrix written in the paper's CSV layout.

    Labels are read as strings (labels in file names and CSV headers are text).

    Parameters
    ----------
    path : str or path-like
        CSV file with a header row of labels and one labelled row per class.

    Returns
    -------
    matrix : pandas.DataFrame
        The validated matrix.

    See Also
    --------
    write_affinity_csv : Write one.

    Examples
    --------
    >>> import os, tempfile
    >>> from skavae.affinity import read_affinity_csv
    >>> path = os.path.join(tempfile.mkdtemp(), "affinity.csv")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write(",a,b\\na,1,0.5\\nb,0.5,1\\n")
    >>> read_affinity_csv(path)
         a    b
    a  1.0  0.5
    b  0.5  1.0
    """
    frame = pd.read_csv(path, index_col=0, dtype={0: str})
    frame.index = frame.index.astype(str)
    frame.columns = frame.columns.astype(str)
    return check_affinity_matrix(frame)
