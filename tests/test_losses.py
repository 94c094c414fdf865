"""Each loss term against a value computed by hand."""

import math

import pytest
import torch

from skavae._losses import (
    affinity_loss,
    cosine_similarity_matrix,
    kl_divergence,
    lookup_affinity,
    reconstruction_loss,
    vae_loss,
)


def test_reconstruction_is_mean_squared_error_over_voxels_and_samples():
    x = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])  # (1, 2, 2)
    x_hat = torch.tensor([[[1.0, 1.0], [2.0, 1.0]]])
    # squared errors 1, 0, 0, 4 -> mean 5 / 4
    assert reconstruction_loss(x, x_hat).item() == pytest.approx(1.25)


def test_kl_is_mean_over_latent_dims_and_samples():
    mu = torch.tensor([[1.0, 0.0]])
    log_var = torch.tensor([[0.0, math.log(2.0)]])
    # dim 0: -0.5 (1 + 0 - 1 - 1) = 0.5 ; dim 1: -0.5 (1 + ln 2 - 0 - 2)
    expected = (0.5 + -0.5 * (1 + math.log(2.0) - 2.0)) / 2
    assert kl_divergence(mu, log_var).item() == pytest.approx(expected)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_affinity_loss_hand_computed():
    mu = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    A = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, -1.0], [0.0, -1.0, 1.0]])
    # cos(0,1) = 0, cos(0,2) = cos(1,2) = 1/sqrt(2); pairs i<j only
    r = 1 / math.sqrt(2)
    expected = (abs(1 - 0) + abs(0 - r) + abs(-1 - r)) / 3
    assert affinity_loss(mu, A).item() == pytest.approx(expected, rel=1e-6)


def test_affinity_loss_equals_loop_over_pairs():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 5, generator=g, dtype=torch.float64)
    A = torch.rand(7, 7, generator=g, dtype=torch.float64) * 2 - 1
    A = (A + A.T) / 2
    pairs = [
        abs(A[i, j] - torch.nn.functional.cosine_similarity(mu[i], mu[j], dim=0))
        for i in range(7)
        for j in range(i + 1, 7)
    ]
    assert affinity_loss(mu, A).item() == pytest.approx(
        torch.stack(pairs).mean().item()
    )


def test_affinity_loss_single_sample_is_zero():
    assert affinity_loss(torch.ones(1, 3), torch.ones(1, 1)).item() == 0.0


def test_cosine_matrix_and_lookup():
    z = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    assert torch.allclose(cosine_similarity_matrix(z), torch.eye(2))
    classes = torch.tensor([[1.0, 0.2], [0.2, 1.0]])
    A = lookup_affinity(torch.tensor([1, 0, 1]), classes)
    assert torch.equal(
        A, torch.tensor([[1.0, 0.2, 1.0], [0.2, 1.0, 0.2], [1.0, 0.2, 1.0]])
    )


def test_total_loss_weights_terms():
    g = torch.Generator().manual_seed(1)
    x, x_hat = torch.rand(4, 1, 3, 3, generator=g), torch.rand(4, 1, 3, 3, generator=g)
    mu, log_var = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g) * 0.1
    A = torch.eye(4)
    total, t = vae_loss(x, x_hat, mu, log_var, beta=3.0, gamma=5.0, affinity=A)
    assert total.item() == pytest.approx(
        (t["recon"] + 3.0 * t["kl"] + 5.0 * t["affinity"]).item()
    )
    assert t["affinity"].item() > 0
    _, t0 = vae_loss(x, x_hat, mu, log_var, beta=3.0, gamma=0.0, affinity=A)
    assert t0["affinity"].item() == 0.0
