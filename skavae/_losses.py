"""The affinity-VAE loss (paper eqs. 1-3).

``L = recon + beta * KL + gamma * S``, with the reductions of the public
reference implementation, which are what give the paper's hyper-parameter
ranges (beta 1-5, gamma 2-10) their meaning:

* ``recon`` — mean squared error, averaged over voxels and samples;
* ``KL`` — KL divergence of N(mu, sigma²) from N(0, 1), averaged over latent
  dimensions and samples;
* ``S`` — eq. 3: the L1 difference between the affinity ``A_ij`` of each pair
  ``i < j`` of the batch and the cosine similarity of their latent means,
  averaged over the ``B (B - 1) / 2`` pairs (so its weight does not depend on
  the batch size; the diagonal, where both are 1, is left out).

All three terms are then O(1) numbers on standardised data, so beta and gamma
trade them off directly. With per-sample *sums* instead (the textbook ELBO) the
reconstruction term of a 64×64 image is ~4000 times larger and gamma = 2 has no
visible effect.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def reconstruction_loss(x, x_hat):
    """Mean squared error over all voxels and samples."""
    return F.mse_loss(x_hat, x, reduction="mean")


def masked_reconstruction_loss(x, x_hat, support):
    """Mean squared error over the *measured* Fourier coefficients only.

    ``support`` (B, *half_spectrum) holds 1 where a coefficient of sample ``b``
    was measured (e.g. outside its missing wedge) and 0 elsewhere, on the
    half spectrum of :func:`torch.fft.rfftn`. By Parseval, the result is the
    mean over measured coefficients of ``|F(x_hat - x)|^2 / N``: with every
    coefficient measured it equals :func:`reconstruction_loss` (up to
    round-off), and the decoder is free to fill the wedge instead of painting
    its artefacts.
    """
    dims = tuple(range(2, x.ndim))
    residual = torch.fft.rfftn(x_hat - x, dim=dims)
    n_last = x.shape[-1]
    herm = torch.full((n_last // 2 + 1,), 2.0, device=x.device, dtype=x_hat.dtype)
    herm[0] = 1.0
    if n_last % 2 == 0:
        herm[-1] = 1.0
    weight = support.to(x_hat.dtype)[:, None] * herm
    n_voxels = float(torch.tensor(x.shape[2:]).prod())
    power = residual.real.square() + residual.imag.square()
    return (weight * power).sum() / (n_voxels * weight.sum().clamp_min(1.0))


def kl_divergence(mu, log_var):
    """KL(N(mu, exp(log_var)) || N(0, 1)), averaged over latent dims and samples."""
    return -0.5 * torch.mean(1.0 + log_var - mu.pow(2) - log_var.exp())


def cosine_similarity_matrix(z, eps=1e-8):
    """All-pairs cosine similarity of the rows of ``z``: one B×B matrix product."""
    zn = z / z.norm(dim=1, keepdim=True).clamp_min(eps)
    return zn @ zn.T


def affinity_loss(mu, affinity):
    """Paper eq. 3: mean over pairs i < j of ``|A_ij - cos(mu_i, mu_j)|``.

    Parameters
    ----------
    mu : tensor of shape (B, latent_dims)
        Latent means of the batch.
    affinity : tensor of shape (B, B)
        Target similarity of each pair of the batch, in [-1, 1].
    """
    b = mu.shape[0]
    if b < 2:
        return mu.new_zeros(())
    diff = (affinity.to(mu.dtype) - cosine_similarity_matrix(mu)).abs()
    upper = torch.triu(torch.ones(b, b, dtype=torch.bool, device=mu.device), 1)
    return diff[upper].mean()


def lookup_affinity(codes, class_matrix):
    """Batch affinity ``A[codes[i], codes[j]]`` from a class × class matrix."""
    return class_matrix[codes][:, codes]


def vae_loss(x, x_hat, mu, log_var, beta, gamma, affinity=None, support=None):
    """Total loss and its terms.

    With ``support`` (measured Fourier coefficients per sample, see
    :func:`masked_reconstruction_loss`) the reconstruction term is wedge-aware.

    Returns
    -------
    total : tensor
        ``recon + beta * kl + gamma * affinity`` (the affinity term is 0 when
        ``affinity`` is None or ``gamma`` is 0).
    terms : dict of str to tensor
        ``recon``, ``kl`` and ``affinity`` (unweighted).
    """
    if support is None:
        recon = reconstruction_loss(x, x_hat)
    else:
        recon = masked_reconstruction_loss(x, x_hat, support)
    kl = kl_divergence(mu, log_var)
    if affinity is not None and gamma > 0:
        aff = affinity_loss(mu, affinity)
    else:
        aff = mu.new_zeros(())
    total = recon + beta * kl + gamma * aff
    return total, {"recon": recon, "kl": kl, "affinity": aff}
