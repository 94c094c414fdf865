"""The methods of a fitted AffinityVAE: encode, decode, sample, score, save.

:class:`FittedVAEMixin` holds what uses the trained network: ``encode``,
``transform``, ``inverse_transform``, ``reconstruct``, ``sample``, ``score``,
``reconstruction_score`` and ``save``. The estimator (:mod:`skavae._estimator`) holds
the parameters and the fitting. Sizes come from the fitted network, so a
parameter changed by ``set_params`` after fitting cannot make them disagree.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skavae._checks import check_seed
from skavae._data import (
    BatchSource,
    check_X,
    is_lazy_array,
    make_batches,
    measured_support,
    output_dtype,
    resolve_device,
)
from skavae._process import torch_threads, trim_heap
from skavae._targets import affinity_target
from skavae._training import evaluate_loss
from skavae._validation import Count

_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: batches between two returns of the C heap's free pages (trim_heap)
_TRIM_EVERY = 16


def _check_codes(values, name):
    """Codes fed to the decoder: finite reals within the float32 range."""
    if values.dtype.kind not in "fiu" or not np.isfinite(values).all():
        raise ValueError(f"{name} must hold finite real numbers.")
    if values.size and np.abs(values).max() > _FLOAT32_MAX:
        raise ValueError(
            f"{name} has values beyond the float32 range (±{_FLOAT32_MAX:.3g}); "
            "the network computes in float32."
        )
    return values


class FittedVAEMixin(TransformerMixin):
    """Encoding, decoding, sampling and scoring with the fitted ``module_``.

    A :class:`~sklearn.base.TransformerMixin`, so that ``set_output`` wraps
    ``transform``.
    """

    def _device_module(self):
        check_is_fitted(self, "module_")
        device = resolve_device(self.device)
        self.module_.to(device).eval()
        return self.module_, device

    def _sizes(self):
        """``(latent_dims, pose_dims)`` of the fitted network."""
        check_is_fitted(self, "module_")
        return self.module_.latent_dims, self.module_.pose_dims

    def _source(self, X, wedge=None):
        """Batches of validated ``X`` (in-memory values are checked already)."""
        return BatchSource(
            X,
            self.input_shape_,
            self.input_mean_,
            self.input_scale_,
            wedge=wedge,
            checked=not is_lazy_array(X),
        )

    def _batched(self, X, fn):
        """Apply ``fn(module, batch)`` over ``X`` in batches; concatenate outputs."""
        module, device = self._device_module()
        source = self._source(X)
        outputs = []
        with torch.no_grad(), torch_threads(self.n_threads):
            # streamed data: batches of batch_size bound memory; in memory,
            # larger batches are faster
            size = max(self.batch_size, 256) if source.in_memory else self.batch_size
            for i, idx in enumerate(make_batches(np.arange(len(X)), size)):
                outputs.append(fn(module, source.get(np.sort(idx), device)))
                if i % _TRIM_EVERY == _TRIM_EVERY - 1:
                    trim_heap()  # batches freed as fragments stay resident
        trim_heap()
        return [
            torch.cat([o[k] for o in outputs]).cpu().numpy()
            for k in range(len(outputs[0]))
        ]

    def encode(self, X):
        """Latent means, log-variances and pose codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Objects of the fitted shape.

        Returns
        -------
        mu : ndarray of shape (n_samples, latent_dims)
            Latent means (what ``transform`` returns).
        log_var : ndarray of shape (n_samples, latent_dims)
            Log-variances of the approximate posterior.
        pose : ndarray of shape (n_samples, pose_dims)
            Pose codes (an empty second axis when ``pose_dims=0``).

        See Also
        --------
        transform : The latent means only.
        inverse_transform : Decode latents and poses.

        Examples
        --------
        >>> import numpy as np
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(30, 8, 8)
        >>> model = AffinityVAE(latent_dims=2, pose_dims=1, max_epochs=1,
        ...                     random_state=0).fit(X)
        >>> [a.shape for a in model.encode(X[:4])]
        [(4, 2), (4, 2), (4, 1)]
        """
        check_is_fitted(self, "module_")
        X, _, _ = check_X(self, X, reset=False)

        def fn(module, x):
            mu, log_var, pose = module.encode(x)
            if pose is None:
                pose = mu.new_zeros((mu.shape[0], 0))
            return mu, log_var, pose

        dtype = output_dtype(X)
        return tuple(a.astype(dtype, copy=False) for a in self._batched(X, fn))

    def transform(self, X):
        """Latent means of ``X`` (deterministic).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Objects of the fitted shape.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dims)
            Latent means, in the float dtype of ``X``.

        See Also
        --------
        encode : Means, log-variances and poses.

        Examples
        --------
        >>> import numpy as np
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(30, 8, 8).astype(np.float32)
        >>> model = AffinityVAE(latent_dims=2, max_epochs=1, random_state=0).fit(X)
        >>> Z = model.transform(X)
        >>> Z.shape, Z.dtype
        ((30, 2), dtype('float32'))
        """
        check_is_fitted(self, "module_")
        X, _, _ = check_X(self, X, reset=False)
        (mu,) = self._batched(X, lambda module, x: (module.encode(x)[0],))
        return mu.astype(output_dtype(X), copy=False)

    def _output_shape(self, n):
        if getattr(self, "_flat_input", False):
            return (n, int(np.prod(self.input_shape_)))
        return (n, *self.input_shape_)

    def _decode(self, Z, pose, dtype):
        module, device = self._device_module()
        out = []
        with torch.no_grad(), torch_threads(self.n_threads):
            for idx in make_batches(np.arange(len(Z)), 256):
                z = torch.as_tensor(Z[idx], dtype=torch.float32, device=device)
                p = None
                if pose is not None:
                    p = torch.as_tensor(pose[idx], dtype=torch.float32, device=device)
                out.append(module.decode(z, p).cpu())
        images = torch.cat(out).numpy().astype(np.float64)
        images = images * self.input_scale_ + self.input_mean_
        if not np.isfinite(images).all():
            raise ValueError(
                "Decoding gave NaN or infinite values: the latent codes (largest "
                f"|value| {np.abs(Z).max():.3g}) lie far outside the prior N(0, 1)."
            )
        return images.reshape(self._output_shape(len(Z))).astype(dtype, copy=False)

    def inverse_transform(self, Z, pose=None):
        """Decode latent codes into objects.

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dims)
            Latent codes.
        pose : array-like of shape (n_samples, pose_dims) or (pose_dims,), \
default=None
            Pose codes; None uses ``pose_mean_`` for every sample.

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
            Decoded objects in input units, in the input's layout.

        Raises
        ------
        ValueError
            If ``Z`` or ``pose`` have the wrong shape, are empty or not finite.

        See Also
        --------
        reconstruct : Encode and decode objects.
        sample : Decode draws from the prior.

        Examples
        --------
        >>> import numpy as np
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(30, 8, 8)
        >>> model = AffinityVAE(latent_dims=2, max_epochs=1, random_state=0).fit(X)
        >>> model.inverse_transform(np.zeros((3, 2)), pose=[0.5]).shape
        (3, 8, 8)
        """
        latent_dims, _ = self._sizes()
        Z = np.asarray(Z)
        if Z.ndim != 2 or Z.shape[1] != latent_dims:
            changed = ""
            if self.latent_dims != latent_dims:
                changed = (
                    f" (the fitted network's latent_dims; the parameter was set to "
                    f"{self.latent_dims} after fitting: refit to apply it)"
                )
            raise ValueError(
                f"Z must have shape (n_samples, {latent_dims}){changed}; got {Z.shape}."
            )
        if len(Z) == 0:
            raise ValueError("Z is empty (0 samples).")
        _check_codes(Z, "Z")
        dtype = Z.dtype if Z.dtype.kind == "f" else np.float64
        pose = self._check_pose(pose, len(Z))
        return self._decode(Z, pose, dtype)

    def _check_pose(self, pose, n):
        _, pose_dims = self._sizes()
        if pose_dims == 0:
            if pose is not None and np.size(pose):
                raise ValueError("This model has no pose channel (pose_dims=0).")
            return None
        if pose is None:
            return np.tile(np.asarray(self.pose_mean_, dtype=np.float32), (n, 1))
        pose = np.asarray(pose)
        if pose.ndim == 1 and pose.shape[0] == pose_dims:
            pose = np.tile(pose, (n, 1))
        if pose.shape != (n, pose_dims):
            raise ValueError(
                f"pose must have shape ({n}, {pose_dims}) or ({pose_dims},); got "
                f"{pose.shape}."
            )
        return _check_codes(pose, "pose")

    def reconstruct(self, X):
        """Encode ``X`` (latent means and pose) and decode it.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Objects of the fitted shape.

        Returns
        -------
        X_hat : ndarray of the shape of ``X``
            Reconstructions in input units.

        See Also
        --------
        inverse_transform : Decode given latents and poses.

        Examples
        --------
        >>> import numpy as np
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(30, 8, 8)
        >>> model = AffinityVAE(latent_dims=2, max_epochs=1, random_state=0).fit(X)
        >>> model.reconstruct(X[:5]).shape
        (5, 8, 8)
        """
        mu, _, pose = self.encode(X)
        return self._decode(mu, pose if pose.shape[1] else None, mu.dtype)

    def sample(self, n_samples=1, random_state=None):
        """Generate objects from the prior ``z ~ N(0, I)``.

        The pose is drawn from a normal with the training statistics of the pose
        code (``pose_mean_``, ``pose_std_``).

        Parameters
        ----------
        n_samples : int, default=1
            Number of objects.
        random_state : int, RandomState instance or None, default=None
            Seed of the draw.

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
            Generated objects in input units.

        Raises
        ------
        ValueError
            If ``n_samples`` is not a positive integer.

        See Also
        --------
        inverse_transform : Decode chosen latents.

        Examples
        --------
        >>> import numpy as np
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(30, 8, 8)
        >>> model = AffinityVAE(latent_dims=2, max_epochs=1, random_state=0).fit(X)
        >>> model.sample(4, random_state=0).shape
        (4, 8, 8)
        """
        latent_dims, pose_dims = self._sizes()
        if not Count(1).is_satisfied_by(n_samples):
            raise ValueError(
                f"n_samples must be a positive integer; got {n_samples!r}."
            )
        rng = check_seed(random_state)
        Z = rng.standard_normal((n_samples, latent_dims))
        pose = None
        if pose_dims:
            pose = self.pose_mean_ + self.pose_std_ * rng.standard_normal(
                (n_samples, pose_dims)
            )
        return self._decode(Z, pose, np.float64)

    def _loss_terms(self, X, y, *, affinity):
        """Deterministic loss terms on ``X`` (decoder fed the latent means)."""
        check_is_fitted(self, "module_")
        X, y, _ = check_X(self, X, y, reset=False)
        wedge = measured_support(self.missing_wedge, self.input_shape_, len(X))
        source = self._source(X, wedge)
        target = None
        if affinity:
            matrix = getattr(self, "affinity_matrix_", None)
            _, target = affinity_target(self.affinity, self.gamma, X, y, source, matrix)
        module, device = self._device_module()
        with torch_threads(self.n_threads):
            return evaluate_loss(
                module,
                source,
                np.arange(len(X)),
                self.beta,
                self.gamma,
                target,
                max(self.batch_size, 2),
                device,
            )

    def score(self, X, y=None):
        """Negative mean loss on ``X`` (higher is better).

        The loss is computed deterministically (the decoder receives the latent
        means, batch norm in eval mode), on standardised data, with the same
        affinity target as in ``fit``: the affinity term is included when the
        model has an affinity and ``y`` is given (or the affinity is a
        sample-level metric). Because the loss weighs its KL and affinity terms
        by ``beta`` and ``gamma``, scores of models with different ``beta`` or
        ``gamma`` are not comparable: to search those, use
        :meth:`reconstruction_score` as the scorer or a pipeline with a
        classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Objects of the fitted shape.
        y : array-like of shape (n_samples,), default=None
            Class labels, for the affinity term.

        Returns
        -------
        score : float
            ``-(recon + beta * kl + gamma * affinity)``.

        See Also
        --------
        reconstruction_score : Comparable across ``beta`` and ``gamma``.
        sklearn.model_selection.GridSearchCV : Uses ``score`` when no scorer
            is given and the estimator is used on its own.

        Examples
        --------
        >>> import numpy as np
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(30, 8, 8)
        >>> model = AffinityVAE(latent_dims=2, max_epochs=1, random_state=0).fit(X)
        >>> model.score(X) < 0
        True
        """
        return -float(self._loss_terms(X, y, affinity=True)["loss"])

    def reconstruction_score(self, X, y=None):
        """Negative mean squared reconstruction error on ``X``, in input units.

        The decoder receives the latent means (deterministic, batch norm in
        eval mode); with a ``missing_wedge`` only the measured Fourier
        coefficients count, as in training. Unlike :meth:`score` it holds no
        ``beta``- or ``gamma``-weighted term, so models with different
        ``beta``, ``gamma`` or standardisation compare on equal terms. It is a
        scorer as it stands: ``GridSearchCV(AffinityVAE(), grid,
        scoring=AffinityVAE.reconstruction_score)``. Reconstruction alone
        favours a small ``beta``; to choose ``beta`` and ``gamma`` for a
        latent map, score a pipeline with a classifier (held-out accuracy).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Objects of the fitted shape.
        y : None
            Ignored (a scorer's signature).

        Returns
        -------
        score : float
            ``-mean((x - x_hat) ** 2)`` in the units of ``X``.

        See Also
        --------
        score : The negative training loss.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.model_selection import GridSearchCV
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(40, 8, 8)
        >>> search = GridSearchCV(
        ...     AffinityVAE(latent_dims=2, max_epochs=1, random_state=0),
        ...     {"beta": [1.0, 4.0]}, cv=2, scoring=AffinityVAE.reconstruction_score,
        ... ).fit(X)
        >>> bool((search.cv_results_["mean_test_score"] < 0).all())
        True
        """
        recon = self._loss_terms(X, None, affinity=False)["recon"]
        return -float(recon) * self.input_scale_**2

    def save(self, path):
        """Save the model to a safe model file, read back by :func:`skavae.load`.

        The file (suggested suffix ``.skavae``) is a zip archive of a JSON
        description and the network's tensors; loading it never runs code from
        the file. Pickle and ``joblib`` files, which scikit-learn tools use
        (``clone``, ``GridSearchCV`` workers, caching), also work, but loading
        them can execute code: load those only from sources you trust. The file
        is written atomically. A callable parameter (a lambda affinity or
        schedule) cannot be stored and is saved as None, with a warning.

        Parameters
        ----------
        path : str or path-like
            The file to write; an existing file is replaced.

        Raises
        ------
        OSError
            If the file cannot be written (the message names it).

        See Also
        --------
        skavae.load : Read a saved model.

        Examples
        --------
        >>> import os, tempfile, numpy as np
        >>> import skavae
        >>> X = np.random.RandomState(0).rand(20, 8, 8)
        >>> model = skavae.AffinityVAE(latent_dims=2, max_epochs=1, random_state=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.skavae")
        >>> model.fit(X).save(path)
        >>> bool(np.array_equal(skavae.load(path).transform(X), model.transform(X)))
        True
        """
        from skavae._persistence import save_model

        save_model(self, path)
