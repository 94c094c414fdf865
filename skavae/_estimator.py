"""AffinityVAE: the scikit-learn estimator.

The estimator holds the parameters and the fitted state and says what happens
in which order; the work is done one floor down: :mod:`skavae._data` checks
and serves the objects, :mod:`skavae._checkpoint` resumes and writes
checkpoints, :mod:`skavae._targets` builds the affinity target and
:mod:`skavae._training` trains. The methods of the fitted model (encode,
decode, sample, score, save) are in :mod:`skavae._inference`.
"""

from __future__ import annotations

import copy
import os
from numbers import Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from skavae._checkpoint import Checkpointer, run_fingerprint, state_to_cpu
from skavae._checks import SEED
from skavae._data import (
    BatchSource,
    check_finite,
    check_X,
    measured_support,
    resolve_device,
    standardisation,
)
from skavae._inference import FittedVAEMixin
from skavae._network import AffinityVAENetwork
from skavae._process import sigterm_as_interrupt, torch_threads
from skavae._targets import affinity_target
from skavae._training import (
    HISTORY_COLUMNS,
    TrainConfig,
    TrainResult,
    make_optimizer,
    split_validation,
    train,
)
from skavae._validation import Count, check_filters, check_options, class_labels
from skavae._wedge import MissingWedge


class AffinityVAE(ClassNamePrefixFeaturesOutMixin, FittedVAEMixin, BaseEstimator):
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
        Weight of the affinity term (useful range 2-10). Ignored, with a
        warning when it is not the default, when ``affinity`` is None.
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
    upsampling : {"transpose", "transpose2", "nearest", "shuffle"}, \
default="transpose"
        How each conv-decoder stage doubles the size: a transposed convolution
        of kernel 4 (its last stage run as the same function on faster
        kernels), of kernel 2, nearest-neighbour upsampling and a
        convolution, or a sub-pixel shuffle. Measured speed and accuracy per
        second: user guide, "Decoder upsampling and bfloat16".
    max_epochs : int, default=30
        Epochs per call to ``fit``.
    batch_size : int, default=64
        Samples per optimiser step. Batches have nearly equal sizes, at least 2.
    learning_rate : float, default=1e-3
        Adam learning rate.
    learning_rate_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` anneals it per epoch towards 0 over each ``fit``'s
        ``max_epochs`` (resumes continue it; ``partial_fit`` keeps it constant).
    max_grad_norm : float or None, default=None
        Clip the global gradient norm of every step to this value (a guard
        against rare exploding steps); None does not clip.
    precision : {"float32", "bf16"}, default="float32"
        ``"bf16"`` trains with bfloat16 autocast (forward pass and loss; weights,
        gradients and optimiser state stay float32), on GPUs with bfloat16
        units and on CPUs with native bf16 (measured 1.29× / 1.50× faster
        training steps at 64² / 32³, same accuracy; ``benchmarks/README.md``).
        Off by default so that a seed gives the same model on every machine.
        ``transform`` and ``score`` always run in float32.
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
    n_threads : int or None, default=1
        Torch CPU threads during fit/transform; None leaves torch's setting
        (one thread per core by default; inside joblib and Dask workers
        already limited to the worker's share). One is the default because it
        is the policy that never loses badly: measured on 2 cores
        (``benchmarks/bench_threads.py``), 2 epochs on 900 images of 28² took
        1.5-5.6 s with one thread and 4.0-46 s with torch's default while other
        jobs ran, 2.2-3.5 s against 6.7-32 s beside two busy processes;
        with the cores to itself, two threads train this small network
        1.2-1.4 times faster (``benchmarks/bench_training.py``). Pass None (or
        the core count) on a machine of your own. One thread also gives the
        same model for one seed on any machine.
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
        hyper-parameters, data, labels and affinity, compared by content), so
        after a crash the final model equals an uninterrupted run's on the CPU.
        Checkpoints of another run are refused (a ``ValueError`` naming the
        folder and what differs: use another folder or delete it); a
        corrupted file is reported and the previous one used. A
        lambda schedule cannot be identified and is refused with checkpoints.
        Not used by ``partial_fit``. Early-stopping patience restarts on
        resume.
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
    augment : bool or {"d2", "d4"}, default=False
        Rotate each training sample by a random exact rotation that keeps the
        missing wedge in place (see :mod:`skavae._augment`; never mirrors).
        ``True`` or ``"d2"``: 180° about the array axes in 3D (about the tilt
        axis only for an asymmetric tilt range), multiples of 90° for square
        2D images. ``"d4"``: in 3D, also the 90° turns about the beam axis
        (volumes square in y and x, symmetric wedge): a turn moves the wedge
        to the other tilt axis, and the wedge-aware loss follows it;
        otherwise as ``"d2"``.

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
    stopped_reason_ : str or None
        How the last call to ``fit``/``partial_fit`` ended: None (every epoch
        ran), ``"early_stopping"``, ``"interrupted"`` (Ctrl-C),
        ``"terminated"`` (SIGTERM), ``"diverged"`` (non-finite loss) or
        ``"error"`` (another exception; the last complete epoch is kept).

    See Also
    --------
    skavae.affinity.FSCAffinity : Fourier shell correlation affinity.
    skavae.affinity.SOAPAffinity : Rotation-invariant shape affinity.
    skavae.affinity.MeanDifference : Real-space affinity.
    skavae.affinity.class_affinity_matrix : Class-level matrix from templates.
    skavae.evaluation.latent_map_report : Evaluate a latent map.

    Notes
    -----
    Parameters are keyword-only: ``AffinityVAE(latent_dims=8)``.

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
        "latent_dims": [Count(1)],
        "pose_dims": [Count(0)],
        "beta": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "affinity": [None, callable, pd.DataFrame],
        "filters": ["array-like"],
        "batch_norm": ["boolean"],
        "decoder": [StrOptions({"conv", "splat"})],
        "n_splats": [Count(1)],
        "upsampling": [StrOptions({"transpose", "transpose2", "nearest", "shuffle"})],
        "max_epochs": [Count(1)],
        "batch_size": [Count(2)],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions({"constant", "cosine"})],
        "max_grad_norm": [None, Interval(Real, 0, None, closed="neither")],
        "precision": [StrOptions({"float32", "bf16"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [None, Count(1)],
        "tol": [Interval(Real, 0, None, closed="left")],
        "beta_schedule": [str, callable, "array-like"],
        "gamma_schedule": [str, callable, "array-like"],
        "schedule_cycles": [Count(1)],
        "schedule_ratio": [Interval(Real, 0, 1, closed="right")],
        "schedule_min": [Interval(Real, 0, 1, closed="both")],
        "input_shape": [None, "array-like"],
        "standardize": ["boolean"],
        "device": [str, torch.device],
        "n_threads": [None, Count(1)],
        "random_state": SEED,
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "checkpoint_dir": [None, str, os.PathLike],
        "checkpoint_every": [Count(1)],
        "missing_wedge": [None, "array-like", MissingWedge],
        "augment": ["boolean", StrOptions({"d2", "d4"})],
    }

    def __init__(
        self,
        *,
        latent_dims=8,
        pose_dims=1,
        beta=1.0,
        gamma=2.0,
        affinity=None,
        filters=(8, 16, 32, 64),
        batch_norm=True,
        decoder="conv",
        n_splats=32,
        upsampling="transpose",
        max_epochs=30,
        batch_size=64,
        learning_rate=1e-3,
        learning_rate_schedule="constant",
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
        n_threads=1,
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
        self.upsampling = upsampling
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
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
                upsampling=self.upsampling,
            )
        if network.memory_format is not None:
            network = network.to(memory_format=network.memory_format)
        return network

    def _fit(self, X, y, *, partial, tilt_ranges=None):
        filters = check_filters(self.filters)
        first = not hasattr(self, "module_") or not (partial or self.warm_start)
        # the data layer: the objects are checked (and read) once
        X, y, spatial = check_X(self, X, y, reset=first, values=False)
        check_options(self, len(spatial), y)
        wedge = measured_support(
            self.missing_wedge,
            spatial,
            len(X),
            tilt_ranges,
            turns=self.augment == "d4",
        )
        if first and self.standardize:
            mean, scale = standardisation(X)  # checks the values as it reads them
        else:
            check_finite(X)
            mean, scale = (0.0, 1.0) if first else (self.input_mean_, self.input_scale_)
        source = BatchSource(X, spatial, mean, scale, wedge=wedge, checked=True)
        config = TrainConfig.from_params(
            self.get_params(deep=False),
            spatial,
            partial=partial,
            tilt_ranges=tilt_ranges,
        )
        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        device = resolve_device(self.device)

        checkpointer = resume = None
        if self.checkpoint_dir is not None and not partial:
            checkpointer = Checkpointer(
                self.checkpoint_dir,
                self.checkpoint_every,
                run_fingerprint(self.get_params(deep=False), source, y, wedge),
            )
            resume = checkpointer.resume() if first else None
            seed = seed if resume is None else resume.seed
        matrix, target = affinity_target(
            self.affinity,
            self.gamma,
            X,
            y,
            source,
            None if first else getattr(self, "affinity_matrix_", None),
            seed=seed,
        )

        if first:  # what the data decided, and a new network
            self.input_shape_ = spatial
            self._flat_input = len(X.shape) == 2 and self.input_shape is not None
            self.input_mean_, self.input_scale_ = mean, scale
            self.module_ = self._new_network(spatial, filters, seed)
            self._optimizer_state = resume.optimizer if resume else None
            self.history_ = pd.DataFrame(columns=HISTORY_COLUMNS)
            self.n_iter_ = 0
            self.pose_mean_ = np.zeros(self.pose_dims)
            self.pose_std_ = np.ones(self.pose_dims)
            if hasattr(self, "classes_"):
                del self.classes_
        self.affinity_matrix_ = matrix
        if y is not None:
            labels = class_labels(y)
            if partial and hasattr(self, "classes_"):
                labels = class_labels(np.concatenate([self.classes_, labels]))
            self.classes_ = labels

        module = self.module_.to(device)
        if resume is not None:
            module.load_state_dict(resume.module)
        optimizer = make_optimizer(module.parameters(), self.learning_rate)
        if self._optimizer_state is not None:  # train() sets each epoch's lr
            optimizer.load_state_dict(self._optimizer_state)

        gen = torch.Generator().manual_seed(seed)
        noise = torch.Generator(device=device).manual_seed(seed + 1)
        train_idx, val_idx = split_validation(
            len(X), 0.0 if partial else self.validation_fraction, gen
        )
        config.cosine_offset = self.n_iter_
        if resume is not None:
            resume.restore_generators(gen, noise)
            self._record(
                TrainResult(
                    rows=resume.rows,
                    pose_mean=resume.pose_mean,
                    pose_std=resume.pose_std,
                )
            )
            config.max_epochs = max(0, config.max_epochs - self.n_iter_)
        if checkpointer is not None:
            checkpointer.track(
                seed=seed,
                module=module,
                optimizer=optimizer,
                generator=gen,
                noise_generator=noise,
                history=self.history_,
            )

        result = TrainResult()
        try:
            with torch_threads(self.n_threads), sigterm_as_interrupt():
                train(
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
                    callback=checkpointer,
                    result=result,
                )
        finally:  # the complete epochs, however training ended
            self._optimizer_state = optimizer.state_dict()
            self._record(result)
            if first and self.n_iter_ == 0 and result.stopped == "error":
                self._forget()
        return self

    def _record(self, result):
        rows = pd.DataFrame(result.rows, columns=HISTORY_COLUMNS)
        if len(self.history_) == 0:
            self.history_ = rows.astype(float).astype({"epoch": int})
        elif len(rows):
            self.history_ = pd.concat([self.history_, rows], ignore_index=True)
        self.n_iter_ = len(self.history_)
        self.stopped_reason_ = result.stopped
        if result.pose_mean is not None:
            self.pose_mean_ = result.pose_mean
            self.pose_std_ = result.pose_std

    def _forget(self):
        """Back to unfitted (a first fit that failed before an epoch completed)."""
        for name in list(vars(self)):
            if name.endswith("_") or name in ("_optimizer_state", "_flat_input"):
                delattr(self, name)

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

        Notes
        -----
        Ctrl-C, or SIGTERM (what batch schedulers send before killing a job;
        handled in the main thread while training), stops training after the
        last complete epoch, whose weights are kept, with a warning;
        ``stopped_reason_`` says how the call ended. Any other exception
        during training restores the last complete epoch before it propagates
        (a first fit that completed no epoch is left unfitted).

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

    # ----------------------------------------------------------- sklearn glue
    @property
    def _n_features_out(self):
        return self._sizes()[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        if "module_" in state:
            module = state["module_"]
            if any(p.device.type != "cpu" for p in module.parameters()):
                state["module_"] = copy.deepcopy(module).to("cpu")
        if state.get("_optimizer_state") is not None:
            state["_optimizer_state"] = state_to_cpu(state["_optimizer_state"])
        return state
