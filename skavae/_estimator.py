"""AffinityVAE: the scikit-learn estimator."""

from __future__ import annotations

import contextlib
import copy
import os
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from skavae._augment import rotation_group
from skavae._checkpoint import (
    affinity_key,
    clear_checkpoints,
    load_checkpoint,
    resumed_result,
    save_checkpoint,
    state_to_cpu,
)
from skavae._network import AffinityVAENetwork
from skavae._schedules import make_schedule
from skavae._training import (
    HISTORY_COLUMNS,
    AffinityTarget,
    BatchSource,
    TrainConfig,
    TrainingDiverged,
    evaluate_loss,
    make_batches,
    resolve_device,
    standardisation,
    train,
)
from skavae._validation import (
    FLOAT_DTYPES,
    check_finite,
    checked_metric,
    class_labels,
    is_lazy_array,
    output_dtype,
)
from skavae._wedge import MissingWedge, as_missing_wedge, check_tilt_ranges
from skavae.affinity import check_affinity_matrix, class_affinity_matrix


@contextlib.contextmanager
def _torch_threads(n_threads):
    """Limit torch's intra-op threads for the duration of a call."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class AffinityVAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Affinity-VAE: a β-VAE whose latent space is organised by object similarity.

    The loss (Mirecka et al., eqs. 2-3) is::

        L = MSE(x, x̂) + beta * KL + gamma * mean_{i<j} |A_ij - cos(mu_i, mu_j)|

    where ``A_ij`` is the affinity (similarity in [-1, 1]) of the objects ``i``
    and ``j`` of a batch. With labels ``y``, ``A`` is a class-level matrix
    (diagonal 1: an object is identical to itself in any pose), so every pose of
    an object is pulled into one cluster and similar objects into neighbouring
    clusters. A *pose* code (``pose_dims``) is fed to the decoder next to ``z`` and
    learns what the affinity term forbids ``z`` to hold: the orientation.

    ``transform`` returns the latent means, so the estimator sits in a
    :class:`~sklearn.pipeline.Pipeline` before any classifier (the paper uses
    k-nearest neighbours on the "latent map").

    Parameters
    ----------
    latent_dims : int, default=8
        Size of the latent code.
    pose_dims : int, default=1
        Size of the pose code fed to the decoder; 0 removes the pose head.
        ``pose_dims=0`` with ``gamma=0`` is a plain β-VAE.
    beta : float, default=1.0
        Weight of the KL term (the paper's useful range is 1-5).
    gamma : float, default=2.0
        Weight of the affinity term (useful range 2-10). Ignored when
        ``affinity`` is None.
    affinity : Affinity, callable, pandas.DataFrame or None, default=None
        Similarity that organises the latent space.

        - an :class:`~skavae.affinity.Affinity` or any callable
          ``f(X, Y=None) -> (n_x, n_y)`` with values in [-1, 1]: with ``y``, a
          class-level matrix is built from it once per fit (see
          :func:`~skavae.affinity.class_affinity_matrix`); without ``y`` it is
          evaluated on the objects of every batch (sample-level affinity);
        - a class × class :class:`pandas.DataFrame` (index = columns = labels,
          as the paper's CSV files): requires ``y``;
        - None: no affinity term.
    filters : tuple of int, default=(8, 16, 32, 64)
        Channels of the encoder stages (mirrored in the decoder). Each stage
        halves the spatial size; inputs are padded to a multiple of
        ``2 ** len(filters)`` internally and outputs cropped back.
    batch_norm : bool, default=True
        Batch normalisation after each convolution.
    decoder : {"conv", "splat"}, default="conv"
        ``"conv"``: transposed convolutions mirroring the encoder; the pose is a
        free code. ``"splat"``: the latent code predicts ``n_splats`` isotropic
        Gaussians (centres, widths, signed weights) in the object's frame, which
        are rotated by the pose — an explicit rotation: an angle in radians in
        2D (``pose_dims`` 1, or 3 with two shifts), an axis-angle vector in 3D
        (``pose_dims`` 3, or 6 with three shifts); 1D signals only shift
        (``pose_dims`` 0 or 1) — rendered on the voxel grid
        (separably, in chunks of bounded memory) and refined by a small residual
        convolution block.
    n_splats : int, default=32
        Number of Gaussians of the splat decoder.
    max_epochs : int, default=30
        Epochs per call to ``fit``.
    batch_size : int, default=64
        Samples per optimiser step. Batches have nearly equal sizes, at least 2.
    learning_rate : float, default=1e-3
        Adam learning rate.
    max_grad_norm : float or None, default=None
        Clip the global gradient norm of every step to this value (a guard
        against rare exploding steps); None does not clip.
    precision : {"float32", "bf16"}, default="float32"
        ``"bf16"`` trains with bfloat16 autocast (forward pass and loss; weights,
        gradients and optimiser state stay float32). Mainly for GPUs with
        bfloat16 units; ``transform`` and ``score`` always run in float32.
    validation_fraction : float, default=0.1
        Fraction of the training data held out to compute ``val_*`` losses each
        epoch (skipped when it would hold fewer than 2 samples).
    n_iter_no_change : int or None, default=None
        Stop when the validation loss (training loss without validation) has not
        improved by ``tol`` for this many epochs, and restore the best weights.
        None trains for ``max_epochs``.
    tol : float, default=1e-4
        Improvement threshold for early stopping.
    beta_schedule, gamma_schedule : str, callable or array-like, default="constant"
        Per-epoch factor applied to ``beta`` / ``gamma`` (annealing). Names:
        ``"constant"`` (1), cyclical ``"linear"``, ``"cosine"``, ``"sigmoid"``
        (Fu et al. 2019: ``schedule_cycles`` cycles over ``max_epochs``; each
        rises from ``schedule_min`` to 1 over the first ``schedule_ratio`` of the
        cycle, then holds 1) and ``"ramp"`` (one linear rise over the first
        ``schedule_ratio`` of ``max_epochs``). A callable gets the 0-based epoch
        index (counted over warm starts and ``partial_fit`` calls); an array
        gives one factor per epoch, its last value held. Applied per epoch (as
        the paper's reference implementation); the effective values are in
        ``history_["beta"]`` and ``history_["gamma"]``.
    schedule_cycles : int, default=4
        Cycles of the cyclical schedules.
    schedule_ratio : float, default=0.5
        Fraction of a cycle (or of the ramp) spent rising.
    schedule_min : float, default=0.0
        Factor at the start of each rise.
    input_shape : tuple of int or None, default=None
        Spatial shape ``(H, W)`` or ``(D, H, W)`` of flat ``(n, features)``
        input. None: 2D input is read as 1D signals, 3D/4D input as images/volumes.
    standardize : bool, default=True
        Train on ``(X - mean) / std`` with the mean and standard deviation of all
        training values, so that ``beta`` and ``gamma`` mean the same whatever the
        units of the data. Outputs of ``inverse_transform`` are in input units.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, otherwise the CPU.
    n_threads : int or None, default=None
        Torch CPU threads during fit/transform (None leaves torch's setting,
        which inside joblib workers is already limited to avoid
        oversubscription).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the validation split and the
        reparametrisation noise. Two fits with the same int seed give identical
        models on the CPU.
    verbose : int, default=0
        1 shows a progress bar with the loss terms per epoch; 2 adds a bar over
        the batches of each epoch.
    warm_start : bool, default=False
        Continue training the existing network on the next call to ``fit``.
    checkpoint_dir : str, path-like or None, default=None
        Folder for training checkpoints (weights, optimiser state, epoch,
        history, random-generator states), written atomically every
        ``checkpoint_every`` epochs; the newest two are kept. A cold ``fit``
        resumes from the newest readable checkpoint of the same run (same
        hyper-parameters, data size and standardisation), so after a crash the
        final model equals an uninterrupted run's on the CPU. Checkpoints of
        another run are replaced; a corrupted file is reported and the previous
        one used. Not used by ``partial_fit``. Early-stopping patience restarts
        on resume.
    checkpoint_every : int, default=1
        Epochs between checkpoints.
    missing_wedge : None, (float, float) or MissingWedge, default=None
        The missing wedge of the data (3D only): a tilt range in degrees such
        as ``(-60, 60)`` (beam along array axis 0, tilt axis along axis 1), or a
        :class:`~skavae.datasets.MissingWedge` (tilt axis, increment). The
        reconstruction loss then compares only the measured Fourier
        coefficients (a mean over them, so it equals the plain MSE when nothing
        is missing), and the decoder is not taught to paint the wedge's
        artefacts. Per-sample ranges go to ``fit(..., tilt_ranges=...)``.
    augment : bool, default=False
        Rotate each training sample by a random exact rotation that keeps the
        missing wedge in place: 180° about the array axes in 3D (about the
        tilt axis only for an asymmetric tilt range), multiples of 90° for
        square 2D images (see :mod:`skavae._augment`). Never mirrors.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (encoder, heads and decoder).
    input_shape_ : tuple of int
        Spatial shape of one object.
    n_features_in_ : int
        Number of features (``X.shape[1]``) seen during fit.
    classes_ : ndarray
        Class labels seen during fit (only when ``y`` was given).
    affinity_matrix_ : pandas.DataFrame or None
        The class-level affinity matrix used in training.
    history_ : pandas.DataFrame
        One row per epoch: ``epoch, loss, recon, kl, affinity, val_loss,
        val_recon, val_kl, val_affinity, beta, gamma, seconds`` (``beta`` and
        ``gamma`` are the effective weights of the epoch, after schedules).
    n_iter_ : int
        Number of epochs trained (accumulated over warm starts and partial_fit).
    input_mean_, input_scale_ : float
        Standardisation applied to the inputs.
    pose_mean_, pose_std_ : ndarray of shape (pose_dims,)
        Statistics of the pose code on the training data (last epoch), used as
        the default pose of ``inverse_transform`` and the pose prior of ``sample``.

    See Also
    --------
    skavae.affinity.FSCAffinity : Fourier shell correlation affinity.
    skavae.affinity.SOAPAffinity : Rotation-invariant shape affinity.
    skavae.affinity.MeanDifference : Real-space affinity.
    skavae.affinity.class_affinity_matrix : Class-level matrix from templates.
    skavae.evaluation.latent_map_report : Evaluate a latent map.

    Notes
    -----
    Loss reductions follow the public reference implementation (MSE averaged
    over voxels, KL over latent dimensions, affinity over pairs), which is what
    gives the paper's ranges of ``beta`` and ``gamma`` their meaning.

    Save a fitted model with :meth:`save` and read it with :func:`skavae.load`
    (loading never runs code from the file). Pickle and joblib files also
    work, for scikit-learn's tools, but execute code when loaded: load them
    only from sources you trust.

    For subtomograms see the user guide's "Real subtomograms" page:
    ``missing_wedge``, wedge-compensated FSC affinities from clean templates and
    band-pass preprocessing (:class:`skavae.preprocessing.BandPassFilter`).

    References
    ----------
    J. Mirecka et al., "Affinity-VAE for disentanglement, clustering and
    classification of objects in multidimensional image data".

    Examples
    --------
    >>> import numpy as np
    >>> from skavae import AffinityVAE
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 16, 16).astype(np.float32)
    >>> y = np.repeat(["a", "b"], 20)
    >>> model = AffinityVAE(latent_dims=4, max_epochs=2, random_state=0).fit(X, y)
    >>> model.transform(X).shape
    (40, 4)
    >>> model.history_.shape[0]
    2
    """

    _parameter_constraints: dict = {
        "latent_dims": [Interval(Integral, 1, None, closed="left")],
        "pose_dims": [Interval(Integral, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "affinity": [None, callable, pd.DataFrame],
        "filters": ["array-like"],
        "batch_norm": ["boolean"],
        "decoder": [StrOptions({"conv", "splat"})],
        "n_splats": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_grad_norm": [None, Interval(Real, 0, None, closed="neither")],
        "precision": [StrOptions({"float32", "bf16"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [None, Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "beta_schedule": [str, callable, "array-like"],
        "gamma_schedule": [str, callable, "array-like"],
        "schedule_cycles": [Interval(Integral, 1, None, closed="left")],
        "schedule_ratio": [Interval(Real, 0, 1, closed="right")],
        "schedule_min": [Interval(Real, 0, 1, closed="both")],
        "input_shape": [None, "array-like"],
        "standardize": ["boolean"],
        "device": [str, torch.device],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "checkpoint_dir": [None, str, os.PathLike],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
        "missing_wedge": [None, "array-like", MissingWedge],
        "augment": ["boolean"],
    }

    def __init__(
        self,
        latent_dims=8,
        pose_dims=1,
        beta=1.0,
        gamma=2.0,
        affinity=None,
        filters=(8, 16, 32, 64),
        batch_norm=True,
        decoder="conv",
        n_splats=32,
        max_epochs=30,
        batch_size=64,
        learning_rate=1e-3,
        max_grad_norm=None,
        precision="float32",
        validation_fraction=0.1,
        n_iter_no_change=None,
        tol=1e-4,
        beta_schedule="constant",
        gamma_schedule="constant",
        schedule_cycles=4,
        schedule_ratio=0.5,
        schedule_min=0.0,
        input_shape=None,
        standardize=True,
        device="auto",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        checkpoint_dir=None,
        checkpoint_every=1,
        missing_wedge=None,
        augment=False,
    ):
        self.latent_dims = latent_dims
        self.pose_dims = pose_dims
        self.beta = beta
        self.gamma = gamma
        self.affinity = affinity
        self.filters = filters
        self.batch_norm = batch_norm
        self.decoder = decoder
        self.n_splats = n_splats
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.precision = precision
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.beta_schedule = beta_schedule
        self.gamma_schedule = gamma_schedule
        self.schedule_cycles = schedule_cycles
        self.schedule_ratio = schedule_ratio
        self.schedule_min = schedule_min
        self.input_shape = input_shape
        self.standardize = standardize
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.missing_wedge = missing_wedge
        self.augment = augment

    # ------------------------------------------------------------------ input
    def _check_filters(self):
        filters = tuple(self.filters)
        if not filters or not all(
            isinstance(f, Integral) and not isinstance(f, bool) and f > 0
            for f in filters
        ):
            raise ValueError(
                "filters must be a non-empty sequence of positive integers; "
                f"got {self.filters!r}."
            )
        return filters

    def _spatial_shape(self, X_shape):
        """Spatial shape of one object of an array of shape ``X_shape``."""
        if len(X_shape) > 4:
            raise ValueError(
                "X must be (n_samples, n_features), (n_samples, H, W) or "
                f"(n_samples, D, H, W); got an array with {len(X_shape)} dimensions, "
                f"shape {tuple(X_shape)}."
            )
        if self.input_shape is None:
            return tuple(int(s) for s in X_shape[1:])
        shape = tuple(self.input_shape)
        if not 1 <= len(shape) <= 3 or not all(
            isinstance(s, Integral) and s > 0 for s in shape
        ):
            raise ValueError(
                "input_shape must be a tuple of 1 to 3 positive integers; "
                f"got {self.input_shape!r}."
            )
        if len(X_shape) == 2:
            if int(np.prod(shape)) != X_shape[1]:
                raise ValueError(
                    f"input_shape={shape} holds {int(np.prod(shape))} values but X "
                    f"has {X_shape[1]} features per sample."
                )
            return shape
        if tuple(X_shape[1:]) != shape:
            raise ValueError(
                f"X holds objects of shape {tuple(X_shape[1:])} but "
                f"input_shape={shape}."
            )
        return shape

    def _check_X(self, X, y=None, *, reset):
        """Validate ``X`` (and ``y``); return them and the spatial shape."""
        fitted = hasattr(self, "input_shape_")
        shape = getattr(X, "shape", None)
        if (
            not reset
            and fitted
            and shape is not None
            and len(shape) > 2
            and tuple(shape[1:]) != self.input_shape_
        ):
            raise ValueError(
                f"X holds objects of shape {tuple(shape[1:])}, but this "
                f"AffinityVAE was fitted on objects of shape {self.input_shape_}."
            )
        if is_lazy_array(X):
            X, y = self._check_lazy(X, y, reset=reset)
        else:
            kwargs = dict(
                reset=reset,
                dtype=FLOAT_DTYPES,
                allow_nd=True,
                ensure_min_samples=2 if reset else 1,
                ensure_all_finite=False,
            )
            if y is None:
                X = validate_data(self, X, **kwargs)
            else:
                X, y = validate_data(self, X, y, **kwargs)
            check_finite(X)
        spatial = self._spatial_shape(X.shape)
        if not reset and spatial != self.input_shape_:
            raise ValueError(
                f"X holds objects of shape {spatial}, but this AffinityVAE was "
                f"fitted on objects of shape {self.input_shape_}."
            )
        return X, y, spatial

    def _check_lazy(self, X, y, *, reset):
        """Validate an out-of-core array-like without reading it whole.

        Values are checked for NaN/inf as batches are read.
        """
        shape = tuple(X.shape)
        if np.dtype(X.dtype).kind not in "fiu":
            raise ValueError(f"X must hold real numbers; got dtype {X.dtype}.")
        if len(shape) < 2:
            raise ValueError(
                f"Expected an array of objects with ndim >= 2; got shape {shape}."
            )
        minimum = 2 if reset else 1
        if shape[0] < minimum:
            raise ValueError(
                f"Found array with {shape[0]} sample(s) (shape={shape}) while a "
                f"minimum of {minimum} is required."
            )
        validate_data(self, X, skip_check_array=True, reset=reset)
        if y is not None:
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
        return X, y

    # ---------------------------------------------------------------- fitting
    def _new_network(self, input_shape, filters, seed):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = AffinityVAENetwork(
                input_shape,
                self.latent_dims,
                self.pose_dims,
                filters,
                batch_norm=self.batch_norm,
                decoder=self.decoder,
                n_splats=self.n_splats,
            )
        if network.memory_format is not None:
            network = network.to(memory_format=network.memory_format)
        return network

    def _affinity_target(self, X, y, source, seed, first):
        """Set ``affinity_matrix_`` and return the batch affinity target."""
        if self.affinity is None or self.gamma == 0:
            if first:
                self.affinity_matrix_ = None
            return None
        if isinstance(self.affinity, pd.DataFrame):
            if y is None:
                raise ValueError(
                    "affinity is a class-level DataFrame, which needs the class "
                    "labels: call fit(X, y)."
                )
            self.affinity_matrix_ = check_affinity_matrix(self.affinity, labels=y)
        elif y is None:
            self.affinity_matrix_ = None
            return AffinityTarget(metric=checked_metric(self.affinity), source=source)
        elif first or getattr(self, "affinity_matrix_", None) is None:
            self.affinity_matrix_ = check_affinity_matrix(
                class_affinity_matrix(
                    X, y, checked_metric(self.affinity), random_state=seed
                )
            )
        else:
            check_affinity_matrix(self.affinity_matrix_, labels=y)
        return self._class_target(y)

    def _class_target(self, y):
        """Batch affinities looked up in ``affinity_matrix_`` by the labels ``y``."""
        codes = pd.Index(self.affinity_matrix_.index).get_indexer(
            pd.Index(np.asarray(y))
        )
        matrix = torch.as_tensor(
            self.affinity_matrix_.to_numpy(copy=True), dtype=torch.float32
        )
        return AffinityTarget(codes=codes, class_matrix=matrix)

    def _schedule(self, spec, name):
        try:
            return make_schedule(
                spec,
                n_epochs=self.max_epochs,
                n_cycles=self.schedule_cycles,
                ratio=self.schedule_ratio,
                min_value=self.schedule_min,
            )
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    def _check_decoder(self, spatial):
        if self.decoder != "splat":
            return
        allowed = {1: (0, 1), 2: (1, 3), 3: (3, 6)}[len(spatial)]
        if self.pose_dims not in allowed:
            raise ValueError(
                f"decoder='splat' on {len(spatial)}D data needs pose_dims in "
                f"{allowed} (1D: [a shift]; 2D: an angle [+ 2 shifts]; 3D: an "
                f"axis-angle vector [+ 3 shifts]); got pose_dims={self.pose_dims}."
            )

    def _fingerprint(self, X, filters):
        """What a checkpoint must agree on to be resumed by this fit."""
        ignored = {"max_epochs", "verbose", "n_threads", "device", "warm_start"}
        ignored |= {"checkpoint_dir", "checkpoint_every", "random_state", "affinity"}
        params = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in self.get_params(deep=False).items()
            if k not in ignored
        }
        seed = self.random_state
        return {
            **params,
            "random_state": int(seed) if isinstance(seed, Integral) else None,
            "affinity": affinity_key(self.affinity),
            "n_samples": int(len(X)),
            "input_shape": list(self.input_shape_),
            "standardisation": [float(self.input_mean_), float(self.input_scale_)],
        }

    def _checkpoint_callback(self, fingerprint, seed, gen, noise, module, optimizer):
        every = self.checkpoint_every
        start_rows = self.history_.to_dict("list")

        def save(rows, pose_stats):
            epoch = self.n_iter_ + len(rows)
            if epoch % every:
                return
            history = {k: [float(x) for x in v] for k, v in start_rows.items()}
            for row in rows:
                for k in HISTORY_COLUMNS:
                    history.setdefault(k, []).append(float(row.get(k, np.nan)))
            pose = None
            if pose_stats is not None:
                pose = [t.detach().cpu() for t in pose_stats[:2]] + [pose_stats[2]]
            save_checkpoint(
                self.checkpoint_dir,
                epoch,
                {
                    "fingerprint": fingerprint,
                    "seed": seed,
                    "module": state_to_cpu(module.state_dict()),
                    "optimizer": state_to_cpu(optimizer.state_dict()),
                    "shuffle_rng": gen.get_state(),
                    "noise_rng": noise.get_state().cpu(),
                    "history": history,
                    "pose_stats": pose,
                },
            )

        return save

    def _wedge(self, spatial, n, tilt_ranges=None):
        """Per-sample measured-coefficient masks ``(masks, index)``, or None."""
        wedge = as_missing_wedge(self.missing_wedge)
        if wedge is None and tilt_ranges is None:
            return None
        if len(spatial) != 3:
            raise ValueError(
                f"missing_wedge applies to 3D volumes; the data are {len(spatial)}D "
                f"objects of shape {spatial}, where a tilt wedge has no meaning."
            )
        wedge = wedge if wedge is not None else MissingWedge()
        if tilt_ranges is None:
            return wedge.mask(spatial)[None], np.zeros(n, dtype=np.int64)
        return wedge.masks(spatial, check_tilt_ranges(tilt_ranges, n, "tilt_ranges"))

    def _fit(self, X, y, *, partial, tilt_ranges=None):
        filters = self._check_filters()
        first = not hasattr(self, "module_") or not (partial or self.warm_start)
        X, y, spatial = self._check_X(X, y, reset=first)
        wedge = self._wedge(spatial, len(X), tilt_ranges)
        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        device = resolve_device(self.device)
        checkpoints = self.checkpoint_dir is not None and not partial
        self._check_decoder(spatial)

        resume = None
        if first:
            self.input_shape_ = spatial
            self._flat_input = len(X.shape) == 2 and self.input_shape is not None
            if self.standardize:
                self.input_mean_, self.input_scale_ = standardisation(X)
            else:
                self.input_mean_, self.input_scale_ = 0.0, 1.0
            if checkpoints:
                resume = load_checkpoint(
                    self.checkpoint_dir, self._fingerprint(X, filters)
                )
                if resume is None:
                    clear_checkpoints(self.checkpoint_dir)
                else:
                    seed = int(resume["seed"])
            self.module_ = self._new_network(spatial, filters, seed)
            self._optimizer_state = None
            self.history_ = pd.DataFrame(columns=HISTORY_COLUMNS)
            self.n_iter_ = 0
            self.pose_mean_ = np.zeros(self.pose_dims)
            self.pose_std_ = np.ones(self.pose_dims)
            if hasattr(self, "classes_"):
                del self.classes_
        if y is not None:
            labels = class_labels(y)
            if partial and hasattr(self, "classes_"):
                labels = class_labels(np.concatenate([self.classes_, labels]))
            self.classes_ = labels

        module = self.module_.to(device)
        if resume is not None:
            module.load_state_dict(resume["module"])
            self._optimizer_state = resume["optimizer"]
        optimizer = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        if self._optimizer_state is not None:
            optimizer.load_state_dict(self._optimizer_state)
            for group in optimizer.param_groups:
                group["lr"] = self.learning_rate

        source = BatchSource(
            X, spatial, self.input_mean_, self.input_scale_, wedge=wedge
        )
        target = self._affinity_target(X, y, source, seed, first)

        gen = torch.Generator().manual_seed(seed)
        noise = torch.Generator(device=device).manual_seed(seed + 1)
        n = len(X)
        order = torch.randperm(n, generator=gen).numpy()
        n_val = 0 if partial else int(self.validation_fraction * n)
        if n_val < 2 or n - n_val < 2:
            n_val = 0
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

        epochs = 1 if partial else self.max_epochs
        if resume is not None:
            gen.set_state(resume["shuffle_rng"])
            noise.set_state(resume["noise_rng"].to(noise.device))
            self._record(resumed_result(resume))
            epochs = max(0, epochs - self.n_iter_)
        callback = None
        if checkpoints:
            callback = self._checkpoint_callback(
                self._fingerprint(X, filters), seed, gen, noise, module, optimizer
            )

        config = TrainConfig(
            beta=self.beta,
            gamma=self.gamma,
            batch_size=self.batch_size,
            max_epochs=epochs,
            n_iter_no_change=None if partial else self.n_iter_no_change,
            tol=self.tol,
            max_grad_norm=self.max_grad_norm,
            precision=self.precision,
            beta_factor=self._schedule(self.beta_schedule, "beta_schedule"),
            gamma_factor=self._schedule(self.gamma_schedule, "gamma_schedule"),
            verbose=self.verbose,
            augment=(
                rotation_group(spatial, as_missing_wedge(self.missing_wedge))
                if self.augment
                else []
            ),
        )
        diverged = None
        with _torch_threads(self.n_threads):
            try:
                result = train(
                    module,
                    optimizer,
                    source,
                    train_idx,
                    val_idx,
                    config,
                    target=target,
                    generator=gen,
                    noise_generator=noise,
                    device=device,
                    first_epoch=self.n_iter_ + 1,
                    callback=callback,
                )
            except TrainingDiverged as exc:
                diverged, result = exc, exc.result
        self._optimizer_state = optimizer.state_dict()
        self._record(result)
        if diverged is not None:
            raise diverged
        return self

    def _record(self, result):
        rows = pd.DataFrame(result["rows"], columns=HISTORY_COLUMNS)
        if len(self.history_) == 0:
            self.history_ = rows.astype(float).astype({"epoch": int})
        elif len(rows):
            self.history_ = pd.concat([self.history_, rows], ignore_index=True)
        self.n_iter_ = len(self.history_)
        if result["pose_mean"] is not None:
            self.pose_mean_ = result["pose_mean"]
            self.pose_std_ = result["pose_std"]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, tilt_ranges=None):
        """Train the network on ``X`` (and the class labels ``y``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, H, W) or \
(n_samples, D, H, W)
            Objects: 1D signals, 2D images or 3D volumes (or flat rows with
            ``input_shape``). numpy arrays, memory maps and lists of arrays.
        y : array-like of shape (n_samples,), default=None
            Class labels. With an ``affinity``, they select the entries of the
            class-level affinity matrix; without one they are not used.
        tilt_ranges : array-like of shape (n_samples, 2), default=None
            Tilt range (degrees) of each sample's tomogram, for data from
            tomograms with different tilt ranges: the reconstruction loss of
            sample ``i`` compares only the Fourier coefficients measured within
            ``tilt_ranges[i]`` (axis and increment from ``missing_wedge``, which
            defaults to ``MissingWedge()`` here). 3D only.

        Returns
        -------
        self : AffinityVAE
            The fitted estimator.

        Raises
        ------
        FloatingPointError
            If the loss becomes NaN or infinite; the model keeps the weights of
            the last good epoch.

        See Also
        --------
        partial_fit : Train one epoch on a chunk.
        transform : Latent means of new objects.

        Examples
        --------
        >>> import numpy as np
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(30, 8, 8)
        >>> model = AffinityVAE(latent_dims=2, max_epochs=3, random_state=0).fit(X)
        >>> model.n_iter_, list(model.history_.columns[:3])
        (3, ['epoch', 'loss', 'recon'])
        """
        return self._fit(X, y, partial=False, tilt_ranges=tilt_ranges)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train one epoch on ``X``, continuing from the current state.

        The first call fixes the input shape, the standardisation and (with an
        affinity metric and ``y``) the class-level affinity matrix; labels of later
        calls must be in that matrix (pass a precomputed DataFrame as
        ``affinity`` when chunks do not all hold every class).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            A chunk of objects.
        y : array-like of shape (n_samples,), default=None
            Class labels of the chunk.

        Returns
        -------
        self : AffinityVAE
            The updated estimator.

        See Also
        --------
        fit : Train for ``max_epochs`` epochs.

        Examples
        --------
        >>> import numpy as np
        >>> from skavae import AffinityVAE
        >>> X = np.random.RandomState(0).rand(60, 8, 8)
        >>> model = AffinityVAE(latent_dims=2, random_state=0)
        >>> for chunk in np.array_split(X, 3):
        ...     model = model.partial_fit(chunk)
        >>> model.n_iter_
        3
        """
        return self._fit(X, y, partial=True)

    # -------------------------------------------------------------- inference
    def _device_module(self):
        check_is_fitted(self, "module_")
        device = resolve_device(self.device)
        self.module_.to(device).eval()
        return self.module_, device

    def _batched(self, X, fn):
        """Apply ``fn(batch_tensor)`` over ``X`` in batches; concatenate outputs."""
        module, device = self._device_module()
        source = BatchSource(X, self.input_shape_, self.input_mean_, self.input_scale_)
        outputs = []
        with torch.no_grad(), _torch_threads(self.n_threads):
            # streamed data: batches of batch_size bound memory; in memory,
            # larger batches are faster
            size = (
                self.batch_size if source._tensor is None else max(self.batch_size, 256)
            )
            for idx in make_batches(np.arange(len(X)), size):
                outputs.append(fn(module, source.get(np.sort(idx), device)))
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
        X, _, _ = self._check_X(X, reset=False)

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
        X, _, _ = self._check_X(X, reset=False)
        (mu,) = self._batched(X, lambda module, x: (module.encode(x)[0],))
        return mu.astype(output_dtype(X), copy=False)

    def _output_shape(self, n):
        if getattr(self, "_flat_input", False):
            return (n, int(np.prod(self.input_shape_)))
        return (n, *self.input_shape_)

    def _decode(self, Z, pose, dtype):
        module, device = self._device_module()
        out = []
        with torch.no_grad(), _torch_threads(self.n_threads):
            for idx in make_batches(np.arange(len(Z)), 256):
                z = torch.as_tensor(Z[idx], dtype=torch.float32, device=device)
                p = None
                if self.pose_dims:
                    p = torch.as_tensor(pose[idx], dtype=torch.float32, device=device)
                out.append(module.decode(z, p).cpu())
        images = torch.cat(out).numpy() * self.input_scale_ + self.input_mean_
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
        check_is_fitted(self, "module_")
        Z = np.asarray(Z)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dims:
            raise ValueError(
                f"Z must have shape (n_samples, {self.latent_dims}); got {Z.shape}."
            )
        if len(Z) == 0:
            raise ValueError("Z is empty (0 samples).")
        if Z.dtype.kind not in "fiu" or not np.isfinite(Z).all():
            raise ValueError("Z must hold finite real numbers.")
        dtype = Z.dtype if Z.dtype.kind == "f" else np.float64
        pose = self._check_pose(pose, len(Z))
        return self._decode(Z, pose, dtype)

    def _check_pose(self, pose, n):
        if self.pose_dims == 0:
            if pose is not None and np.size(pose):
                raise ValueError("This model has no pose channel (pose_dims=0).")
            return None
        if pose is None:
            return np.tile(np.asarray(self.pose_mean_, dtype=np.float32), (n, 1))
        pose = np.asarray(pose, dtype=np.float64)
        if pose.ndim == 1 and pose.shape[0] == self.pose_dims:
            pose = np.tile(pose, (n, 1))
        if pose.shape != (n, self.pose_dims):
            raise ValueError(
                f"pose must have shape ({n}, {self.pose_dims}) or "
                f"({self.pose_dims},); got {pose.shape}."
            )
        if not np.isfinite(pose).all():
            raise ValueError("pose must hold finite numbers.")
        return pose

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
        return self._decode(mu, pose if self.pose_dims else None, mu.dtype)

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
        check_is_fitted(self, "module_")
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(
                f"n_samples must be a positive integer; got {n_samples!r}."
            )
        rng = check_random_state(random_state)
        Z = rng.standard_normal((n_samples, self.latent_dims))
        pose = None
        if self.pose_dims:
            pose = self.pose_mean_ + self.pose_std_ * rng.standard_normal(
                (n_samples, self.pose_dims)
            )
        return self._decode(Z, pose, np.float64)

    def score(self, X, y=None):
        """Negative mean loss on ``X`` (higher is better).

        The loss is computed deterministically (the decoder receives the latent
        means, batch norm in eval mode). The affinity term is included when the
        model has an affinity and ``y`` is given (or the affinity is a sample-level
        metric).

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
        check_is_fitted(self, "module_")
        X, y, _ = self._check_X(X, y, reset=False)
        source = BatchSource(
            X,
            self.input_shape_,
            self.input_mean_,
            self.input_scale_,
            wedge=self._wedge(self.input_shape_, len(X)),
        )
        target = None
        if self.affinity is not None and self.gamma > 0:
            if self.affinity_matrix_ is not None and y is not None:
                check_affinity_matrix(self.affinity_matrix_, labels=y)
                target = self._class_target(y)
            elif self.affinity_matrix_ is None and callable(self.affinity):
                target = AffinityTarget(
                    metric=checked_metric(self.affinity), source=source
                )
        module, device = self._device_module()
        with _torch_threads(self.n_threads):
            terms = evaluate_loss(
                module,
                source,
                np.arange(len(X)),
                self.beta,
                self.gamma,
                target,
                max(self.batch_size, 2),
                device,
            )
        return -float(terms["loss"])

    # ----------------------------------------------------------- sklearn glue
    @property
    def _n_features_out(self):
        return self.latent_dims

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        return tags

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

    def __getstate__(self):
        state = super().__getstate__()
        if "module_" in state:
            module = state["module_"]
            if any(p.device.type != "cpu" for p in module.parameters()):
                state["module_"] = copy.deepcopy(module).to("cpu")
        if state.get("_optimizer_state") is not None:
            state["_optimizer_state"] = state_to_cpu(state["_optimizer_state"])
        return state
