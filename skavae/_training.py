"""The training loop: optimiser steps, validation, history, early stop, stops.

``train`` runs the epochs over the batches of a :class:`~skavae._data.BatchSource`
and fills a :class:`TrainResult` as epochs complete, so its caller knows the
complete epochs however training ends: all epochs run, early stopping, Ctrl-C
or SIGTERM (the weights of the last complete epoch are kept and a
:class:`TrainingInterrupted` warning is issued), a non-finite loss
(:class:`TrainingDiverged`) or any other exception (the weights of the last
complete epoch are restored before it propagates).

The affinity target of a batch comes from :mod:`skavae._targets`.

Under an initialised ``torch.distributed`` process group of several processes
(torchrun, :func:`skavae.distributed.fit`) the same loop trains data-parallel:
see :mod:`skavae.distributed._ddp`. Every rank walks the same global batches
and trains on its contiguous slice of each (DistributedDataParallel
all-reduces the gradients; each rank's loss is weighted by its share of the
global batch so that the step is the step of the global mean), the epoch and
validation terms are summed over the ranks, and only rank 0 calls the
checkpoint callback.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from skavae._augment import augment_batch, rotation_group
from skavae._data import make_batches
from skavae._losses import vae_loss
from skavae._process import Terminated
from skavae._schedules import make_schedule
from skavae._wedge import as_missing_wedge
from skavae.distributed import _ddp

HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "recon",
    "kl",
    "affinity",
    "val_loss",
    "val_recon",
    "val_kl",
    "val_affinity",
    "beta",
    "gamma",
    "seconds",
]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the model keeps its last good weights."""


class TrainingInterrupted(RuntimeWarning):
    """Ctrl-C or SIGTERM stopped training; the last complete epoch is kept."""


@dataclass
class TrainResult:
    """What :func:`train` did, filled in as epochs complete.

    ``stopped`` is None when every epoch ran, else ``"early_stopping"``,
    ``"interrupted"`` (Ctrl-C), ``"terminated"`` (SIGTERM), ``"diverged"`` or
    ``"error"``; ``pose_mean`` / ``pose_std`` are the pose code's statistics
    over the last complete epoch (None without a pose head).
    """

    rows: list = field(default_factory=list)
    stopped: str | None = None
    pose_mean: np.ndarray | None = None
    pose_std: np.ndarray | None = None


def make_optimizer(parameters, learning_rate):
    """Adam over ``parameters``, as one fused kernel where torch has it.

    The fused step (CPU and CUDA) updates every parameter in one pass instead
    of a dozen small operations per tensor: 1-2 % of a training step of the
    default network on one CPU thread, measured when it was adopted
    (``benchmarks/README.md``, "Decoder upsampling and precision"); the update
    is Adam's to rounding. Other devices use the per-tensor implementation.
    """
    parameters = list(parameters)
    fused = all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters
    )
    return torch.optim.Adam(parameters, lr=learning_rate, fused=fused or None)


def split_validation(n, fraction, generator):
    """``(train, validation)`` indices (sorted) of ``n`` samples.

    A random ``fraction`` of the samples, drawn from ``generator``, is held
    out for validation; none when either part would have fewer than two
    samples. The permutation is drawn whatever ``fraction`` is, so that the
    generator's stream does not depend on it.
    """
    order = torch.randperm(n, generator=generator).numpy()
    n_val = int(fraction * n)
    if n_val < 2 or n - n_val < 2:
        n_val = 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _pose_spread(pose_sum, pose_sq, count):
    """Mean and standard deviation of the pose code from its running sums."""
    mean = pose_sum / count
    std = torch.sqrt((pose_sq / count - mean**2).clamp_min(0))
    return mean.cpu().numpy(), std.cpu().numpy()


def _mean_terms(sums, count):
    return {k: v / max(count, 1) for k, v in sums.items()}


def evaluate_loss(
    module, source, indices, beta, gamma, target, batch_size, device, shard=None
):
    """Deterministic loss (decoder fed with mu, eval mode) averaged over ``indices``.

    With a :class:`~skavae.distributed._ddp.Shard`, each rank evaluates its
    slice of every batch and the sums are added over the ranks.
    """
    module.eval()
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "affinity": 0.0}
    count = 0
    with torch.no_grad():
        for idx in make_batches(indices, batch_size):
            if shard is not None:
                lo, hi = shard.bounds(len(idx))
                idx = idx[lo:hi]
            x = source.get(idx, device)
            x_hat, mu, log_var, _ = module(x, sample=False)
            aff = target(idx, device) if target is not None else None
            total, terms = vae_loss(
                x, x_hat, mu, log_var, beta, gamma, aff, source.support(idx, device)
            )
            w = len(idx)
            sums["loss"] += total.item() * w
            for k, v in terms.items():
                sums[k] += v.item() * w
            count += w
    if shard is not None:
        keys = list(sums)
        (total,) = shard.sum(torch.tensor([sums[k] for k in keys] + [count]))
        sums, count = dict(zip(keys, total[:-1].tolist())), int(total[-1])
    return _mean_terms(sums, count)


def _snapshot(module, optimizer):
    """Copies of the module's and the optimiser's state (to roll back to)."""
    return (
        {k: v.detach().clone() for k, v in module.state_dict().items()},
        copy.deepcopy(optimizer.state_dict()),
    )


def _restore(module, optimizer, state):
    module.load_state_dict(state[0])
    optimizer.load_state_dict(state[1])


@dataclass
class TrainConfig:
    """The knobs of one call to :func:`train`.

    ``beta_factor`` and ``gamma_factor`` map the 0-based index of an epoch (over
    the whole training, warm starts included) to a factor of ``beta`` and
    ``gamma``: annealing schedules. ``precision="bf16"`` runs the forward pass and
    the loss under bfloat16 autocast (weights and optimiser stay float32).
    """

    beta: float
    gamma: float
    batch_size: int
    max_epochs: int
    n_iter_no_change: int | None = None
    tol: float = 1e-4
    max_grad_norm: float | None = None
    precision: str = "float32"
    beta_factor: Callable[[int], float] = field(default=lambda epoch: 1.0)
    gamma_factor: Callable[[int], float] = field(default=lambda epoch: 1.0)
    verbose: int = 0
    augment: list = field(default_factory=list)
    learning_rate: float = 1e-3
    cosine_epochs: int | None = None
    cosine_offset: int = 0

    @classmethod
    def from_params(cls, params, spatial, *, partial, tilt_ranges=None):
        """The config of a ``fit`` (``partial``: one ``partial_fit`` epoch).

        ``params`` are the estimator's ``get_params()``; the schedules are
        built (and checked) here, before training starts. ``tilt_ranges``
        (per sample) restrict the augmentation to the rotations that keep
        every sample's wedge.
        """
        schedules = {}
        for name in ("beta_schedule", "gamma_schedule"):
            try:
                schedules[name] = make_schedule(
                    params[name],
                    n_epochs=params["max_epochs"],
                    n_cycles=params["schedule_cycles"],
                    ratio=params["schedule_ratio"],
                    min_value=params["schedule_min"],
                )
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        augment = []
        if params["augment"]:
            wedge = as_missing_wedge(params["missing_wedge"])
            augment = rotation_group(
                spatial,
                wedge,
                tilt_ranges=tilt_ranges,
                turns=params["augment"] == "d4",
            )
        return cls(
            beta=params["beta"],
            gamma=params["gamma"],
            batch_size=params["batch_size"],
            max_epochs=1 if partial else params["max_epochs"],
            n_iter_no_change=None if partial else params["n_iter_no_change"],
            tol=params["tol"],
            max_grad_norm=params["max_grad_norm"],
            precision=params["precision"],
            beta_factor=schedules["beta_schedule"],
            gamma_factor=schedules["gamma_schedule"],
            verbose=params["verbose"],
            augment=augment,
            learning_rate=params["learning_rate"],
            cosine_epochs=(
                params["max_epochs"]
                if params["learning_rate_schedule"] == "cosine" and not partial
                else None
            ),
        )

    def step_size(self, epoch):
        """Learning rate of the 1-based ``epoch``: constant, or a cosine from
        ``learning_rate`` towards 0 over the ``cosine_epochs`` epochs that
        follow ``cosine_offset`` (the epochs before this fit)."""
        if self.cosine_epochs is None:
            return self.learning_rate
        n = self.cosine_epochs
        k = min(max(epoch - 1 - self.cosine_offset, 0), n)
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * k / n))

    def weights(self, epoch):
        """Effective (beta, gamma) of the 1-based ``epoch``."""
        return (
            self.beta * float(self.beta_factor(epoch - 1)),
            self.gamma * float(self.gamma_factor(epoch - 1)),
        )


def _autocast(device, precision):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _train_epoch(
    module,
    optimizer,
    source,
    batches,
    config,
    beta,
    gamma,
    target,
    device,
    noise,
    shuffle=None,
    shard=None,
    ddp=None,
):
    """One pass over ``batches``; returns (mean terms, pose sum, pose sq, count).

    Loss terms are accumulated on the device and read once per epoch, so a GPU
    is never synchronised per step. With a ``shard`` (and its DDP-wrapped
    module ``ddp``) the batches are global and this rank trains on its slice.
    """
    module.train()
    sums = None
    pose_sum = pose_sq = None
    count = 0
    if config.verbose >= 2:  # a bar per epoch, for long epochs on large data
        batches = tqdm(batches, desc="batches", unit="batch", leave=False)
    for idx in batches:
        n_global, weight = len(idx), 1.0
        if shard is not None:
            bounds = shard.bounds(n_global)
            idx = idx[bounds[0] : bounds[1]]
            weight = len(idx) * shard.world_size / n_global
        x = source.get(idx, device)
        swapped = None
        if config.augment and shard is not None:
            x, swapped = _ddp.augment_shard(
                x, config.augment, shuffle, n_global, bounds
            )
        elif config.augment:
            x, swapped = augment_batch(x, config.augment, shuffle)
        aff = target(idx, device) if target is not None else None
        with _autocast(device, config.precision):
            if shard is None:
                x_hat, mu, log_var, pose = module(x, generator=noise)
            else:
                eps = shard.noise((module.latent_dims,), noise, device, n_global)
                x_hat, mu, log_var, pose = ddp(x, eps)
            total, terms = vae_loss(
                x,
                x_hat.float(),
                mu.float(),
                log_var.float(),
                beta,
                gamma,
                aff,
                source.support(idx, device, swapped),
            )
        optimizer.zero_grad(set_to_none=True)
        (total * weight if shard is not None else total).backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm)
        optimizer.step()
        w = len(idx)
        batch = torch.stack([total.detach(), *(t.detach() for t in terms.values())]) * w
        sums = batch if sums is None else sums + batch
        count += w
        if pose is not None:
            p = pose.detach().double()
            ps, pq = p.sum(0), p.pow(2).sum(0)
            pose_sum = ps if pose_sum is None else pose_sum + ps
            pose_sq = pq if pose_sq is None else pose_sq + pq
    if shard is not None:
        counted = torch.tensor(float(count), dtype=torch.float64, device=device)
        sums, counted, pose_sum, pose_sq = shard.sum(sums, counted, pose_sum, pose_sq)
        count = int(counted.item())
    values = (sums / max(count, 1)).tolist() if sums is not None else [0.0] * 4
    return (
        dict(zip(("loss", "recon", "kl", "affinity"), values)),
        pose_sum,
        pose_sq,
        count,
    )


def train(
    module,
    optimizer,
    source,
    train_idx,
    val_idx,
    config,
    *,
    target,
    generator,
    noise_generator,
    device,
    first_epoch=1,
    callback=None,
    result=None,
):
    """Run up to ``config.max_epochs`` epochs; return the :class:`TrainResult`.

    ``callback(rows, pose)``, when given, is called after every complete epoch
    (to write a checkpoint) with the history rows so far and the pose
    statistics ``(mean, std)`` (None without a pose head). ``result``, when
    given, is the TrainResult to fill in, so the caller reads the complete
    epochs even when ``train`` raises. Ctrl-C (and SIGTERM, within
    :func:`sigterm_as_interrupt`) stops training after restoring the last
    complete epoch, with a :class:`TrainingInterrupted` warning.

    Raises
    ------
    TrainingDiverged
        When the loss of an epoch is not finite; the module's weights and the
        optimiser's state are restored to those at the end of the last good
        epoch before raising.
    Exception
        Any other error, after the same restoration.
    """
    result = TrainResult() if result is None else result
    shard = _ddp.context()
    ddp = None
    if shard is not None:
        shard.check(source, len(train_idx), config.batch_size)
        ddp = shard.wrap(module, device)
        if not shard.is_main:
            callback, config.verbose = None, 0
    rows = result.rows
    n_iter_no_change, tol, verbose = config.n_iter_no_change, config.tol, config.verbose
    max_epochs, batch_size = config.max_epochs, config.batch_size
    good_state = _snapshot(module, optimizer)
    best_state, best_score, since_best = None, math.inf, 0
    epochs = range(first_epoch, first_epoch + max_epochs)
    bar = tqdm(
        epochs, desc="AffinityVAE", unit="epoch", disable=verbose < 1, leave=True
    )
    try:
        for epoch in bar:
            start = time.perf_counter()
            batches = make_batches(train_idx, batch_size, generator)
            beta, gamma = config.weights(epoch)
            for group in optimizer.param_groups:
                group["lr"] = config.step_size(epoch)
            terms, pose_sum, pose_sq, count = _train_epoch(
                module,
                optimizer,
                source,
                batches,
                config,
                beta,
                gamma,
                target,
                device,
                noise_generator,
                generator,
                shard,
                ddp,
            )
            if not all(math.isfinite(v) for v in terms.values()):
                raise TrainingDiverged(
                    f"Training diverged at epoch {epoch}: the loss became "
                    f"{terms['loss']} (recon={terms['recon']:.4g}, "
                    f"kl={terms['kl']:.4g}, affinity={terms['affinity']:.4g}). "
                    f"The model keeps the weights of epoch {epoch - 1}. Lower "
                    "learning_rate or beta, or check the input scaling."
                )
            row = {"epoch": epoch, **terms, "beta": beta, "gamma": gamma}
            if len(val_idx):
                val = evaluate_loss(
                    module,
                    source,
                    val_idx,
                    beta,
                    gamma,
                    target,
                    batch_size,
                    device,
                    shard,
                )
                row.update({f"val_{k}": v for k, v in val.items()})
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            good_state = _snapshot(module, optimizer)
            pose = None
            if pose_sum is not None:
                pose = _pose_spread(pose_sum, pose_sq, count)
                result.pose_mean, result.pose_std = pose
            if callback is not None:
                callback(rows, pose)
            if verbose:
                shown = ("loss", "recon", "kl", "affinity", "val_loss")
                bar.set_postfix({k: f"{row[k]:.4g}" for k in shown if k in row})
            if n_iter_no_change is not None:
                score = row.get("val_loss", row["loss"])
                if score < best_score - tol:
                    best_score, since_best = score, 0
                    best_state = good_state
                else:
                    since_best += 1
                    if since_best >= n_iter_no_change:
                        result.stopped = "early_stopping"
                        module.load_state_dict(best_state[0])
                        if verbose:
                            bar.write(
                                f"Early stop at epoch {epoch}: no improvement over "
                                f"{best_score:.5g} for {n_iter_no_change} epochs."
                            )
                        break
    except KeyboardInterrupt as exc:
        _restore(module, optimizer, good_state)
        terminated = isinstance(exc, Terminated)
        result.stopped = "terminated" if terminated else "interrupted"
        warnings.warn(
            f"Training {'stopped by SIGTERM' if terminated else 'interrupted'} "
            f"after {len(rows)} complete epoch(s); the model keeps the weights of "
            "the last complete epoch and is usable.",
            TrainingInterrupted,
            stacklevel=3,
        )
    except BaseException as exc:
        _restore(module, optimizer, good_state)
        result.stopped = "diverged" if isinstance(exc, TrainingDiverged) else "error"
        raise
    finally:
        bar.close()
        if shard is not None:
            shard.unwrap()
        module.eval()
    return result
