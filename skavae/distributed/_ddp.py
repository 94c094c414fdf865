"""What a training loop needs to know about a torch.distributed process group.

:func:`context` returns a :class:`Shard` when a process group of more than one
process is initialised (by :func:`skavae.distributed.init_from_env` under
torchrun, or by :func:`skavae.distributed.fit`), else None, and the training
loop then runs exactly as in one process. A :class:`Shard` says which
contiguous slice of each *global* batch this rank trains on, sums epoch
statistics over the ranks, and wraps the network in
:class:`~torch.nn.parallel.DistributedDataParallel` for the gradients.

Every rank draws the same global batch order, the same reparametrisation noise
and the same augmentation codes (for the whole global batch) from generators
seeded alike, and keeps its slice of them, so the generators stay in step on
all ranks and a run on N processes with a global batch B follows the same
trajectory as a run in one process with batch B (up to float rounding), except
for the affinity term, whose pairs are those within a rank's slice, and, on
the CPU, batch-norm statistics, which are per rank (torch's SyncBatchNorm
runs on GPUs only); see the user guide's "Training on a cluster" page.
"""

from __future__ import annotations

import torch
from torch import distributed as dist
from torch import nn

from skavae._augment import rotate_by_codes


def context():
    """The :class:`Shard` of this process, or None outside a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    if dist.get_world_size() < 2:
        return None
    return Shard(dist.get_rank(), dist.get_world_size())


class _ExplicitNoise(nn.Module):
    """The network's training forward with the noise ``eps`` given (for DDP)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, eps):
        mu, log_var, pose = self.net.encode(x)
        z = mu + eps.to(mu.dtype) * torch.exp(0.5 * log_var)
        return self.net.decode(z, pose), mu, log_var, pose


class Shard:
    """This rank's part of a data-parallel run of ``world_size`` processes."""

    def __init__(self, rank, world_size):
        self.rank = int(rank)
        self.world_size = int(world_size)
        self._bn = []

    @property
    def is_main(self):
        return self.rank == 0

    def bounds(self, n):
        """``(lo, hi)`` of this rank's contiguous slice of a global batch of ``n``."""
        base, extra = divmod(int(n), self.world_size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (self.rank < extra)

    def check(self, source, n_train, batch_size):
        """Same data on every rank, and enough samples for every rank."""
        mine = [len(source), *source.input_shape, source.mean, source.scale]
        mine = torch.tensor([len(mine), *mine], dtype=torch.float64)
        size = torch.tensor([len(mine)], dtype=torch.float64)
        sizes = [torch.zeros_like(size) for _ in range(self.world_size)]
        dist.all_gather(sizes, size)
        width = int(max(s.item() for s in sizes))
        padded = torch.full((width,), float("nan"), dtype=torch.float64)
        padded[: len(mine)] = mine
        every = [torch.zeros_like(padded) for _ in range(self.world_size)]
        dist.all_gather(every, padded)
        for rank, other in enumerate(every):
            if not torch.equal(other.nan_to_num(-1.0), padded.nan_to_num(-1.0)):
                raise ValueError(
                    f"ranks see different data: rank {self.rank} has "
                    f"{_describe(mine)}, rank {rank} has {_describe(other)}; "
                    "every rank must be given the same X (it reads only its "
                    "shard of each batch)."
                )
        if n_train < self.world_size:
            raise ValueError(
                f"world size {self.world_size} is larger than the number of "
                f"training samples ({n_train}); use at most {n_train} processes."
            )
        n_batches = max(1, -(-n_train // batch_size))
        if n_train // n_batches < 2:
            n_batches = max(1, n_train // 2)
        smallest = n_train // n_batches
        if smallest < self.world_size:
            raise ValueError(
                f"world size {self.world_size} is larger than the smallest global "
                f"batch ({smallest} samples of {n_train} in batches of "
                f"batch_size={batch_size}); every rank needs a sample of every "
                "batch: raise batch_size or use fewer processes."
            )

    def wrap(self, module, device):
        """``module`` for DDP: SyncBatchNorm on GPUs, the noise made explicit."""
        if device.type != "cpu":
            self._bn = _sync_batch_norm(module)
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            _ExplicitNoise(module), device_ids=ids
        )

    def unwrap(self):
        """Put the plain batch-norm layers back (the fitted model is ordinary)."""
        for parent, name, original in reversed(self._bn):
            setattr(parent, name, original)
        self._bn = []

    def noise(self, shape, generator, device, n):
        """This rank's rows of the noise drawn for the whole global batch."""
        lo, hi = self.bounds(n)
        eps = torch.randn((n, *shape), generator=generator, device=device)
        return eps[lo:hi]

    def sum(self, *tensors):
        """Sum of each tensor over the ranks (None stays None)."""
        out = []
        for t in tensors:
            if t is not None:
                t = t.clone()
                dist.all_reduce(t)
            out.append(t)
        return out


def _describe(values):
    values = [v for v in values.tolist()[1:] if v == v]
    n, *rest = values
    shape, (mean, scale) = rest[:-2], rest[-2:]
    return (
        f"{int(n)} samples of shape {tuple(int(s) for s in shape)} "
        f"(mean {mean:.6g}, scale {scale:.6g})"
    )


def _sync_batch_norm(module):
    """Swap batch-norm layers for SyncBatchNorm in place; return what to undo.

    The new layers share the parameters and running statistics of the old
    ones, so the optimiser and the fitted model see the same tensors.
    """
    swapped = []
    for parent in module.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, nn.SyncBatchNorm
            ):
                setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
                swapped.append((parent, name, child))
    return swapped


def augment_shard(x, group, generator, n, bounds):
    """:func:`~skavae._augment.augment_batch` of this rank's slice ``x``.

    The codes are drawn for the whole global batch of ``n`` (as one process
    would) and this rank's ``bounds`` kept.
    """
    if len(group) < 2:
        return x, None
    lo, hi = bounds
    codes = torch.randint(len(group), (n,), generator=generator)[lo:hi]
    return rotate_by_codes(x, group, codes)
