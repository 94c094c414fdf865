"""The affinity protocol: the :class:`Affinity` base class of the metrics.

An affinity metric is any callable ``metric(X, Y=None) -> (n_x, n_y)`` similarity
matrix with values in [-1, 1] where 1 means identical, in the manner of the
kernels in :mod:`sklearn.metrics.pairwise`. :class:`Affinity` is the base class
of the metrics shipped here; it adds input validation, chunking (so memory stays
bounded for any number of objects) and scikit-learn's ``get_params``/``set_params``
so a metric can be cloned and grid-searched as part of an estimator.

The class-level matrix built from a metric, and its CSV form, are in
:mod:`skavae.affinity._matrix`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator

from skavae._validation import Count

__all__ = ["Affinity"]


def _as_objects(X, name="X"):
    """Validate a stack of objects: finite, float, at least one object."""
    if isinstance(X, (list, tuple)) or (
        isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1
    ):
        items = [np.asarray(x) for x in X]
        shapes = [x.shape for x in items]
        if any(shape != shapes[0] for shape in shapes):
            k = next(i for i, shape in enumerate(shapes) if shape != shapes[0])
            raise ValueError(
                f"{name} holds objects of different shapes: {shapes[0]} (object 0) "
                f"and {shapes[k]} (object {k}); every object must have one shape."
            )
        X = np.stack(items) if items else np.empty((0,))
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

    #: scikit-learn's parameter constraints, checked by every call
    _parameter_constraints: dict = {"chunk_size": [Count(1)]}

    def __init__(self, *, chunk_size=256):
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
        self._validate_params()
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
