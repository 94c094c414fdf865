"""The training loop: batching, optimiser steps, validation, history, early stop.

Data is streamed to the network in batches: an in-memory array is viewed as one
float32 tensor (copied only when it is not float32 already), anything else
(memory maps, lazily loaded folders) is read batch by batch, so a data set larger
than memory can be trained on.
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

from skavae._augment import augment_batch
from skavae._losses import lookup_affinity, vae_loss

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
    """The loss became NaN or infinite; the model keeps its last good weights.

    ``result`` holds what ``train`` would have returned for the complete epochs.
    """

    result = None


def resolve_device(device):
    """``"auto"`` → CUDA when available, else CPU; anything else as given."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device: {exc}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return dev


class BatchSource:
    """Serves standardised float32 batches of shape (B, 1, *input_shape).

    Parameters
    ----------
    X : ndarray, memmap or indexable array-like of shape (n, ...)
        The objects; row ``i`` is reshaped to ``input_shape``.
    input_shape : tuple of int
        Spatial shape of one object.
    mean, scale : float
        Standardisation: the network sees ``(x - mean) / scale``.
    wedge : tuple (masks, index), default=None
        Measured Fourier coefficients of each sample: ``masks`` (U, *half)
        boolean rfftn half spectra, ``index[i]`` the mask of sample ``i``.
        None means every coefficient is measured.
    """

    def __init__(self, X, input_shape, mean, scale, wedge=None):
        self.X = X
        self.input_shape = tuple(input_shape)
        self.mean = float(mean)
        self.scale = float(scale)
        self._tensor = None
        self._masks = self._mask_index = None
        if wedge is not None:
            self._masks = torch.as_tensor(np.asarray(wedge[0]), dtype=torch.bool)
            self._mask_index = torch.as_tensor(np.asarray(wedge[1]), dtype=torch.long)
        if type(X) is np.ndarray:  # in memory (a np.memmap is streamed instead)
            data = np.ascontiguousarray(X, dtype=np.float32)
            with warnings.catch_warnings():
                # read-only arrays (e.g. views of read-only memory maps) are only
                # ever read here
                warnings.filterwarnings("ignore", message="The given NumPy array")
                self._tensor = torch.from_numpy(data)

    def __len__(self):
        return len(self.X)

    def raw(self, idx):
        """The objects ``idx`` (in that order) as a numpy array, unstandardised."""
        idx = np.asarray(idx)
        if self._tensor is not None:
            return self.X[idx]
        order = np.argsort(idx)  # memory maps read fastest in file order
        rows = np.asarray(self.X[idx[order]])
        return rows[np.argsort(order)]

    def support(self, idx, device):
        """Measured-coefficient masks of the batch ``idx``, or None (all)."""
        if self._masks is None:
            return None
        return self._masks[self._mask_index[torch.as_tensor(idx)]].to(device)

    def get(self, idx, device):
        """Standardised batch ``idx`` on ``device``."""
        if self._tensor is not None:
            batch = self._tensor[torch.as_tensor(idx)]
        else:
            batch = torch.from_numpy(np.asarray(self.raw(idx), dtype=np.float32))
            if not torch.isfinite(batch).all():
                raise ValueError(
                    "Input contains NaN or infinity (one of samples "
                    f"{np.sort(idx)[:8].tolist()}{'...' if len(idx) > 8 else ''})."
                )
        batch = batch.reshape(len(idx), 1, *self.input_shape).to(device)
        return (batch - self.mean) / self.scale


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def standardisation(X, chunk_bytes=2**19):
    """Mean and standard deviation of all values of ``X``, streamed in chunks.

    Chunks hold about ``chunk_bytes`` of float64 values whatever the object
    size, and per-chunk statistics are merged (Chan et al.), so memory stays
    bounded and large values do not lose precision or overflow. Raises a
    ValueError naming the first sample with NaN/inf or with values that do not
    fit in float32 (the network's precision).
    """
    row_bytes = 8 * max(1, int(np.prod(X.shape[1:])))
    chunk = max(1, int(chunk_bytes // row_bytes))
    mean, m2, count = 0.0, 0.0, 0
    for start in range(0, len(X), chunk):
        block = np.asarray(X[start : start + chunk], dtype=np.float64)
        flat = block.reshape(len(block), -1)
        bad = ~np.isfinite(flat).all(1)
        if bad.any():
            raise ValueError(
                "Input contains NaN or infinity "
                f"(sample {start + int(np.flatnonzero(bad)[0])})."
            )
        big = np.maximum(flat.max(1), -flat.min(1)) > _FLOAT32_MAX
        if big.any():
            raise ValueError(
                f"Input has values beyond the float32 range (±{_FLOAT32_MAX:.3g}) "
                f"in sample {start + int(np.flatnonzero(big)[0])}; rescale the data."
            )
        values = flat.ravel()
        n = values.size
        block_mean = float(values.mean())
        if not np.shares_memory(values, X if isinstance(X, np.ndarray) else values[:0]):
            values -= block_mean  # our own float64 copy: centre in place
            block_m2 = float(np.dot(values, values))
        else:
            block_m2 = float(np.dot(values, values)) - n * block_mean**2
        delta = block_mean - mean
        total = count + n
        mean += delta * n / total
        m2 += block_m2 + delta * delta * count * n / total
        count = total
        del block, flat, values  # free before the next chunk is read
    std = math.sqrt(max(m2 / count, 0.0))
    return mean, (std if std > 1e-12 * max(1.0, abs(mean)) else 1.0)


def make_batches(indices, batch_size, generator=None):
    """Split ``indices`` (shuffled when a generator is given) into batches.

    Batches have nearly equal sizes and at least 2 members (batch norm and the
    pairwise affinity loss need pairs) whenever ``len(indices) >= 2``.
    """
    indices = np.asarray(indices)
    n = len(indices)
    if n == 0:
        return []
    if generator is not None:
        indices = indices[torch.randperm(n, generator=generator).numpy()]
    n_batches = max(1, math.ceil(n / batch_size))
    if n // n_batches < 2:
        n_batches = max(1, n // 2)
    return np.array_split(indices, n_batches)


class AffinityTarget:
    """Builds the (B, B) affinity matrix of a batch.

    Either a class-level lookup (``codes`` per sample into ``class_matrix``) or a
    sample-level metric evaluated on the batch's raw objects.
    """

    def __init__(self, codes=None, class_matrix=None, metric=None, source=None):
        self.codes = None if codes is None else torch.as_tensor(codes, dtype=torch.long)
        self.class_matrix = class_matrix
        self.metric = metric
        self.source = source

    def __call__(self, idx, device):
        if self.class_matrix is not None:
            codes = self.codes[torch.as_tensor(idx)].to(device)
            return lookup_affinity(codes, self.class_matrix.to(device))
        raw = self.source.raw(idx).reshape(len(idx), *self.source.input_shape)
        values = np.asarray(self.metric(raw), dtype=np.float32)
        return torch.from_numpy(values).to(device)


def _mean_terms(sums, count):
    return {k: v / max(count, 1) for k, v in sums.items()}


def evaluate_loss(module, source, indices, beta, gamma, target, batch_size, device):
    """Deterministic loss (decoder fed with mu, eval mode) averaged over ``indices``."""
    module.eval()
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "affinity": 0.0}
    count = 0
    with torch.no_grad():
        for idx in make_batches(indices, batch_size):
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
):
    """One pass over ``batches``; returns (mean terms, pose sum, pose sq, count).

    Loss terms are accumulated on the device and read once per epoch, so a GPU
    is never synchronised per step.
    """
    module.train()
    sums = None
    pose_sum = pose_sq = None
    count = 0
    if config.verbose >= 2:  # a bar per epoch, for long epochs on large data
        batches = tqdm(batches, desc="batches", unit="batch", leave=False)
    for idx in batches:
        x = source.get(idx, device)
        if config.augment:
            x = augment_batch(x, config.augment, shuffle)
        aff = target(idx, device) if target is not None else None
        with _autocast(device, config.precision):
            x_hat, mu, log_var, pose = module(x, generator=noise)
            total, terms = vae_loss(
                x,
                x_hat.float(),
                mu.float(),
                log_var.float(),
                beta,
                gamma,
                aff,
                source.support(idx, device),
            )
        optimizer.zero_grad(set_to_none=True)
        total.backward()
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
):
    """Run up to ``config.max_epochs`` epochs; return a dict with the history rows.

    ``callback(rows, pose_stats)``, when given, is called after every complete
    epoch (e.g. to write a checkpoint).

    Returns
    -------
    result : dict
        ``rows`` (list of history dicts), ``interrupted`` (bool),
        ``stopped_early`` (bool), ``pose_mean`` / ``pose_std`` (ndarrays or None,
        from the last complete epoch).

    Raises
    ------
    TrainingDiverged
        When the loss of an epoch is not finite; the module's weights and the
        optimiser's state are restored to those at the end of the last good
        epoch before raising.
    """
    n_iter_no_change, tol, verbose = config.n_iter_no_change, config.tol, config.verbose
    max_epochs, batch_size = config.max_epochs, config.batch_size
    rows = []
    diverged = None
    good_state = _snapshot(module, optimizer)
    best_state, best_score, since_best = None, math.inf, 0
    interrupted = stopped_early = False
    pose_stats = None
    epochs = range(first_epoch, first_epoch + max_epochs)
    bar = tqdm(
        epochs, desc="AffinityVAE", unit="epoch", disable=verbose < 1, leave=True
    )
    try:
        for epoch in bar:
            start = time.perf_counter()
            batches = make_batches(train_idx, batch_size, generator)
            beta, gamma = config.weights(epoch)
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
            )
            if not all(math.isfinite(v) for v in terms.values()):
                _restore(module, optimizer, good_state)
                diverged = TrainingDiverged(
                    f"Training diverged at epoch {epoch}: the loss became "
                    f"{terms['loss']} (recon={terms['recon']:.4g}, "
                    f"kl={terms['kl']:.4g}, affinity={terms['affinity']:.4g}). "
                    f"The model keeps the weights of epoch {epoch - 1}. Lower "
                    "learning_rate or beta, or check the input scaling."
                )
                break
            row = {"epoch": epoch, **terms, "beta": beta, "gamma": gamma}
            if len(val_idx):
                val = evaluate_loss(
                    module, source, val_idx, beta, gamma, target, batch_size, device
                )
                row.update({f"val_{k}": v for k, v in val.items()})
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            good_state = _snapshot(module, optimizer)
            if pose_sum is not None:
                pose_stats = (pose_sum, pose_sq, count)
            if callback is not None:
                callback(rows, pose_stats)
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
                        stopped_early = True
                        module.load_state_dict(best_state[0])
                        if verbose:
                            bar.write(
                                f"Early stop at epoch {epoch}: no improvement over "
                                f"{best_score:.5g} for {n_iter_no_change} epochs."
                            )
                        break
    except KeyboardInterrupt:
        interrupted = True
        _restore(module, optimizer, good_state)
        warnings.warn(
            f"Training interrupted after {len(rows)} complete epoch(s); the model "
            "keeps the weights of the last complete epoch and is usable.",
            RuntimeWarning,
            stacklevel=3,
        )
    finally:
        bar.close()
        module.eval()
    pose_mean = pose_std = None
    if pose_stats is not None:
        pose_sum, pose_sq, count = pose_stats
        mean = pose_sum / count
        pose_mean = mean.cpu().numpy()
        pose_std = torch.sqrt((pose_sq / count - mean**2).clamp_min(0)).cpu().numpy()
    result = {
        "rows": rows,
        "interrupted": interrupted,
        "stopped_early": stopped_early,
        "pose_mean": pose_mean,
        "pose_std": pose_std,
    }
    if diverged is not None:
        diverged.result = result
        raise diverged
    return result
