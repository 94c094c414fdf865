"""Resolve "a fitted model and objects, or a latent array" into arrays."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array, check_is_fitted


def _check_model(model, method):
    """Check that ``model`` is fitted and has ``method``."""
    if not callable(getattr(model, method, None)):
        raise ValueError(
            f"model must be a fitted estimator with a {method!r} method (e.g. an "
            f"AffinityVAE, a PCA) or None; got {type(model).__name__}."
        )
    check_is_fitted(model)


def latents_of(X, model=None, *, name="X"):
    """Latent array of ``X``: ``model.transform(X)``, or ``X`` itself.

    Parameters
    ----------
    X : array-like
        Objects accepted by ``model.transform`` when ``model`` is given,
        otherwise latents of shape (n_samples, n_dims).
    model : fitted transformer or None
        Any fitted object with a ``transform`` method.
    name : str
        Name of ``X`` in error messages.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_dims), float
    """
    if model is not None:
        _check_model(model, "transform")
        X = model.transform(X)
    Z = check_array(X, dtype=[np.float64, np.float32], input_name=name)
    return Z


def pose_of(X, model=None, *, name="pose"):
    """Pose array: ``model.encode(X)[2]``, or ``X`` itself (1D or 2D)."""
    if model is not None:
        _check_model(model, "encode")
        X = model.encode(X)[2]
        if X.shape[1] == 0:
            raise ValueError(
                "The model has no pose channel (pose_dims=0); there is no pose "
                "to analyse."
            )
    pose = np.asarray(X)
    if pose.ndim == 1:
        pose = pose[:, None]
    pose = check_array(pose, dtype=np.float64, input_name=name)
    return pose


def check_labels(y, n_samples, *, name="y"):
    """1D label array of length ``n_samples``."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1D; got an array of shape {y.shape}.")
    if len(y) != n_samples:
        raise ValueError(
            f"{name} has {len(y)} labels but there are {n_samples} samples."
        )
    if y.dtype == object:
        kinds = {
            "number" if isinstance(v, (int, float, np.number)) else type(v).__name__
            for v in y
        }
        if len(kinds) > 1:
            raise ValueError(
                f"{name} mixes labels of different types ({', '.join(sorted(kinds))}); "
                "use one type, e.g. all strings."
            )
    return y
