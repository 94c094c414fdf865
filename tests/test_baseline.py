"""The benchmarks' baseline is the reference implementation's default model."""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from _baseline import ReferenceVAE  # noqa: E402


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_are_the_reference_defaults():
    assert _n_params(ReferenceVAE((64, 64))) == 1_181_138
    assert _n_params(ReferenceVAE((32, 32, 32))) == 2_657_106


def test_decoder_shapes_and_no_batch_norm_by_default():
    model = ReferenceVAE((64, 64))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x_hat, mu, log_var, pose = model(torch.zeros(2, 1, 64, 64))
    assert x_hat.shape == (2, 1, 64, 64) and mu.shape == (2, 8) and pose.shape == (2, 1)
    h = model.fc(torch.zeros(1, 9)).view(1, 256, 8, 8)
    sizes = []
    for layer in model.decoder:
        h = layer(h)
        if isinstance(layer, torch.nn.ConvTranspose2d):
            sizes.append(h.shape[-1])
    assert sizes == [17, 33, 64]
    assert ReferenceVAE((32, 32, 32))(torch.zeros(1, 1, 32, 32, 32))[0].shape[-1] == 32
    assert any(
        isinstance(m, torch.nn.BatchNorm2d)
        for m in ReferenceVAE((64, 64), batch_norm=True).modules()
    )
