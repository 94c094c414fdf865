"""The class-level affinity matrix: validation, construction and CSV files.

The affinity-VAE loss (paper eq. 3) looks the affinity of each pair of a batch up
in a *class-level* matrix: :func:`class_affinity_matrix` builds it from a metric
(:mod:`skavae.affinity._base`) as a :class:`pandas.DataFrame` whose index and
columns are the class labels, as in the paper's CSV files
(:func:`write_affinity_csv`, :func:`read_affinity_csv`);
:func:`check_affinity_matrix` validates one.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from skavae._checks import check_int, check_seed
from skavae._files import atomic_path
from skavae.affinity._base import _as_objects

__all__ = [
    "check_affinity_matrix",
    "check_similarities",
    "class_affinity_matrix",
    "read_affinity_csv",
    "write_affinity_csv",
]


def check_similarities(values, source, *, atol=1e-6):
    """Refuse similarities that are not finite real numbers in [-1, 1].

    The one check of the [-1, 1] range, for matrices, metric results and
    callables given as ``affinity``.

    Parameters
    ----------
    values : ndarray
        The similarities.
    source : str
        What produced them, for the message (e.g. "The affinity matrix").
    atol : float, default=1e-6
        Tolerance on the range.

    Returns
    -------
    values : ndarray of float64
        The values clipped to [-1, 1].

    Raises
    ------
    ValueError
        If the values are not real numbers (complex, boolean, text), are NaN
        or infinite, or lie outside [-1, 1].
    """
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        kind = {"b": "booleans", "c": "complex numbers"}.get(
            values.dtype.kind, f"values of dtype {values.dtype}"
        )
        raise ValueError(
            f"{source} holds {kind}; similarities must be real numbers in [-1, 1]."
        )
    values = values.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        raise ValueError(f"{source} holds NaN or infinity.")
    if values.size and (values.min() < -1 - atol or values.max() > 1 + atol):
        raise ValueError(
            f"{source} holds values in [{values.min():.4g}, {values.max():.4g}]; "
            "similarities must lie in [-1, 1]."
        )
    return np.clip(values, -1.0, 1.0)


def check_metric(metric, name="metric"):
    """Refuse a metric that is not a callable, or an Affinity class."""
    if isinstance(metric, type):
        raise ValueError(
            f"{name} is the class {metric.__name__}, not a metric: pass an "
            f"instance, {metric.__name__}()."
        )
    if metric is None or not callable(metric):
        raise ValueError(f"{name} must be a callable similarity; got {metric!r}.")
    return metric


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
    values = check_similarities(values, "The affinity matrix", atol=atol)
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
    check_metric(metric)
    if templates is not None:
        if not hasattr(templates, "keys"):
            raise ValueError(
                "templates must be a mapping label -> object (a dict or a "
                f"pandas.Series); got a {type(templates).__name__}."
            )
        labels = list(templates.keys())
        if not labels:
            raise ValueError("templates is empty: give one object per class.")
        objs = _as_objects([np.asarray(templates[lab]) for lab in labels], "templates")
        values = check_similarities(
            metric(objs), f"The metric's result ({_name(metric)})"
        )
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
        _check_labels(y)
        n_per_class = check_int(n_per_class, "n_per_class")
        rng = check_seed(random_state)
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
        _check_finite_members(sample, picks, getattr(X, "paths", None))
        S = check_similarities(metric(sample), f"The metric's result ({_name(metric)})")
        onehot = np.zeros((len(labels), len(picks)))
        onehot[owner, np.arange(len(picks))] = 1.0
        onehot /= onehot.sum(axis=1, keepdims=True)
        values = onehot @ S @ onehot.T
        values = (values + values.T) / 2
    if not np.isfinite(values).all():  # a class none of whose members is finite
        raise ValueError("The metric returned NaN or infinite similarities.")
    np.fill_diagonal(values, 1.0)
    values = np.clip(values, -1.0, 1.0)
    _warn_if_uninformative(values, from_members=templates is None)
    return pd.DataFrame(values, index=labels, columns=labels)


def _check_finite_members(sample, rows, paths):
    """Name the row of ``X`` (and its file, for an MRCStack) holding NaN/inf."""
    finite = np.isfinite(sample.reshape(len(sample), -1)).all(axis=1)
    if finite.all():
        return
    row = int(rows[np.argmin(finite)])
    where = f" (file {paths[row]!r})" if paths is not None else ""
    raise ValueError(f"X[{row}]{where} contains NaN or infinity.")


def _name(metric):
    return getattr(metric, "__name__", type(metric).__name__)


def _check_labels(y):
    """Refuse missing (NaN/None) and boolean class labels, naming a row."""
    if y.dtype.kind == "b":
        raise ValueError(
            "y holds booleans, which pandas reads as a mask, not as labels; "
            "give the classes as integers or strings (e.g. y.astype(int))."
        )
    missing = pd.isna(y)
    if missing.any():
        raise ValueError(
            f"y holds missing labels (NaN or None), first at row "
            f"{int(np.argmax(missing))}; every object needs a class."
        )


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
    folder and renamed, so an interrupted write never leaves a partial file; the
    file has the permissions of the umask.

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
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise FileNotFoundError(f"cannot write {path!r}: its folder {folder!r} {what}.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path!r}: it is a folder.")
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        matrix.to_csv(fh, float_format="%.6f")


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
    path = os.fspath(path)
    try:
        frame = pd.read_csv(path, index_col=0, dtype={0: str})
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = "not a text file" if isinstance(exc, UnicodeDecodeError) else exc
        raise ValueError(
            f"{path!r} is not an affinity CSV file ({reason}); expected a header "
            "row of labels and one labelled row per class."
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{path!r} is empty; expected a header row of labels and one "
            "labelled row per class."
        ) from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path!r} is a folder, not a CSV file.") from None
    frame.index = frame.index.astype(str)
    frame.columns = frame.columns.astype(str)
    try:
        return check_affinity_matrix(frame)
    except ValueError as exc:
        raise ValueError(f"{path!r}: {exc}") from None
