"""The public reference affinity-VAE's default model ("a"), layer for layer.

Used by the benchmarks only, as the side-by-side baseline. As in the reference
``model_a`` at its defaults (capacity 64, depth 3, no batch norm): three
stride-2 convolutions of 64/128/256 channels (kernel 3, padding 1, each
followed by ReLU), fully connected mu / log-variance / pose heads (latent 8,
pose 1), and a decoder of a fully connected layer from ``[pose, z]`` (pose
concatenated first) to the bottom feature map, then transposed convolutions
256->128 (kernel 3, stride 2, padding 0) and 128->64 (kernel 3, stride 2,
padding 1), each followed by ReLU, and a final 64->1 transposed convolution
(kernel 2, stride 2, padding 1) with a linear output: 8 -> 17 -> 33 -> 64 at
64². Batch norm after every ReLU is optional (``batch_norm=True``), as the
reference's ``bnorm`` flag. Adam at 1e-3 and the reference loss: MSE
mean-reduced, KL mean-reduced, affinity loss (L1 between the pair affinities
and the latent cosine similarities) mean over pairs. Parameter counts
(latent 8, pose 1): 1 181 138 at 64², 2 657 106 at 32³
(``tests/test_baseline.py``).
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONVT = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BN = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class ReferenceVAE(nn.Module):
    def __init__(
        self,
        shape,
        latent_dims=8,
        pose_dims=1,
        filters=(64, 128, 256),
        batch_norm=False,
    ):
        super().__init__()
        nd = len(shape)
        conv, convt, bn = _CONV[nd], _CONVT[nd], _BN[nd]
        self.bottom = tuple(s // 2 ** len(filters) for s in shape)
        enc, c = [], 1
        for f in filters:
            enc += [conv(c, f, 3, stride=2, padding=1), nn.ReLU()]
            if batch_norm:
                enc.append(bn(f))
            c = f
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        flat = filters[-1] * math.prod(self.bottom)
        self.mu = nn.Linear(flat, latent_dims)
        self.log_var = nn.Linear(flat, latent_dims)
        self.pose = nn.Linear(flat, pose_dims)
        self.fc = nn.Linear(latent_dims + pose_dims, flat)
        dec = []
        for d in reversed(range(1, len(filters))):
            padding = 0 if d == len(filters) - 1 else 1
            dec += [
                convt(filters[d], filters[d - 1], 3, stride=2, padding=padding),
                nn.ReLU(),
            ]
            if batch_norm:
                dec.append(bn(filters[d - 1]))
        dec.append(convt(filters[0], 1, 2, stride=2, padding=1))
        self.decoder = nn.Sequential(*dec)
        self.filters = filters

    def encode(self, x):
        h = self.encoder(x)
        return self.mu(h), self.log_var(h), self.pose(h)

    def forward(self, x):
        mu, log_var, pose = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        h = self.fc(torch.cat([pose, z], 1))
        h = h.view(len(x), self.filters[-1], *self.bottom)
        return self.decoder(h), mu, log_var, pose


def reference_loss(x, x_hat, mu, log_var, A, beta=1.0, gamma=2.0):
    recon = F.mse_loss(x_hat, x)
    kl = -0.5 * torch.mean(1 + log_var - mu.pow(2) - log_var.exp())
    i, j = torch.triu_indices(len(mu), len(mu), 1)
    cos = F.cosine_similarity(mu[i], mu[j], dim=-1)
    aff = F.l1_loss(cos, A[i, j])
    return recon + beta * kl + gamma * aff


class ReferenceTrainer:
    """Trains the reference model epoch by epoch on in-memory data."""

    def __init__(self, X, codes, class_matrix, batch_size, seed=0):
        torch.manual_seed(seed)
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))[:, None]
        self.codes = torch.as_tensor(codes)
        self.A = torch.tensor(class_matrix, dtype=torch.float32)
        self.model = ReferenceVAE(tuple(X.shape[1:]))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self):
        self.model.train()
        perm = torch.randperm(len(self.X), generator=self.gen)
        for start in range(0, len(perm), self.batch_size):
            idx = perm[start : start + self.batch_size]
            if len(idx) < 2:
                continue
            x = self.X[idx]
            x_hat, mu, log_var, _ = self.model(x)
            c = self.codes[idx]
            loss = reference_loss(x, x_hat, mu, log_var, self.A[c][:, c])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    @torch.no_grad()
    def transform(self, X, batch=256):
        self.model.eval()
        out = []
        for s in range(0, len(X), batch):
            x = torch.from_numpy(np.ascontiguousarray(X[s : s + batch], np.float32))
            out.append(self.model.encode(x[:, None])[0])
        return torch.cat(out).numpy()
