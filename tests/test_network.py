"""The dimension-generic network: shapes, padding, pose head."""

import pytest
import torch

from skavae._network import _CONV_T, AffinityVAENetwork, padded_shape


@pytest.mark.parametrize(
    "shape, conv",
    [
        ((3,), torch.nn.Conv1d),
        ((13, 17), torch.nn.Conv2d),
        ((9, 8, 11), torch.nn.Conv3d),
    ],
)
def test_any_spatial_size_round_trips(shape, conv):
    net = AffinityVAENetwork(shape, latent_dims=3, pose_dims=2, filters=(4, 8))
    assert isinstance(net.encoder[0], conv)
    x = torch.randn(5, 1, *shape)
    x_hat, mu, log_var, pose = net(x)
    assert x_hat.shape == x.shape
    assert mu.shape == log_var.shape == (5, 3)
    assert pose.shape == (5, 2)
    assert net.padded_shape == padded_shape(shape, 2)
    assert all(p % 4 == 0 and p >= s for p, s in zip(net.padded_shape, shape))


def test_pose_dims_zero_removes_head_and_decoder_input():
    net = AffinityVAENetwork((8, 8), latent_dims=4, pose_dims=0, filters=(4,))
    assert net.pose is None
    assert net.decoder_input[0].in_features == 4
    _, _, _, pose = net(torch.randn(2, 1, 8, 8))
    assert pose is None


def test_pose_feeds_decoder():
    torch.manual_seed(0)
    net = AffinityVAENetwork((8, 8), latent_dims=2, pose_dims=1, filters=(4, 8)).eval()
    assert net.decoder_input[0].in_features == 3
    z = torch.zeros(1, 2)
    a = net.decode(z, torch.tensor([[0.0]]))
    b = net.decode(z, torch.tensor([[3.0]]))
    assert not torch.allclose(a, b)


def test_gradients_reach_every_parameter():
    net = AffinityVAENetwork((6, 6, 6), latent_dims=2, pose_dims=1, filters=(2, 4))
    x_hat, mu, log_var, pose = net(torch.randn(3, 1, 6, 6, 6))
    (x_hat.sum() + mu.sum() + log_var.sum() + pose.sum()).backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters()
    )


def test_sample_false_is_deterministic():
    net = AffinityVAENetwork((8,), latent_dims=2, pose_dims=1, filters=(4,)).eval()
    x = torch.randn(3, 1, 8)
    assert torch.equal(net(x, sample=False)[0], net(x, sample=False)[0])


def test_rejects_4d_objects():
    with pytest.raises(ValueError, match="1D, 2D or 3D"):
        AffinityVAENetwork((2, 2, 2, 2), 2, 1, (4,))


def test_pixel_shuffle_matches_torch_in_2d_and_the_index_rule_in_1d_3d():
    from skavae._network import PixelShuffle

    x = torch.randn(2, 12, 3, 5)
    assert torch.equal(PixelShuffle(2)(x), torch.nn.PixelShuffle(2)(x))
    x = torch.randn(2, 16, 3, 4, 5)
    out = PixelShuffle(3)(x)
    assert out.shape == (2, 2, 6, 8, 10)
    for c, i, j, k, a, b, d in [(1, 2, 3, 4, 1, 0, 1), (0, 0, 1, 2, 0, 1, 1)]:
        channel = c * 8 + a * 4 + b * 2 + d
        assert out[1, c, 2 * i + a, 2 * j + b, 2 * k + d] == x[1, channel, i, j, k]
    x = torch.randn(3, 4, 7)
    out = PixelShuffle(1)(x)
    assert out.shape == (3, 2, 14)
    assert out[2, 1, 2 * 5 + 1] == x[2, 1 * 2 + 1, 5]


@pytest.mark.parametrize(
    "upsampling", ["transpose", "transpose2", "nearest", "shuffle"]
)
@pytest.mark.parametrize("shape", [(5,), (13, 17), (9, 8, 11)])
def test_every_upsampling_round_trips_any_shape(upsampling, shape):
    torch.manual_seed(0)
    net = AffinityVAENetwork(shape, 3, 1, (4, 8), upsampling=upsampling)
    x = torch.randn(4, 1, *shape)
    x_hat, *_ = net(x)
    assert x_hat.shape == x.shape
    x_hat.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_default_upsampling_keeps_the_saved_layout():
    """Model files written before ``upsampling`` existed load unchanged."""
    net = AffinityVAENetwork((16, 16), 2, 1, (4, 8, 16))
    keys = [k for k in net.state_dict() if k.startswith("decoder.")]
    assert keys[:2] == ["decoder.0.weight", "decoder.1.weight"]
    assert keys[-2:] == ["decoder.6.weight", "decoder.6.bias"]
    assert isinstance(net.decoder[6], torch.nn.ConvTranspose2d)
    assert net.decoder[6].kernel_size == (4, 4) and net.decoder[0].bias is None
    assert len(net.decoder) == 7


def test_unknown_upsampling_is_refused():
    with pytest.raises(ValueError, match="upsampling"):
        AffinityVAENetwork((8, 8), 2, 1, (4,), upsampling="bicubic")


@pytest.mark.parametrize(
    "ndim, channels_last", [(1, False), (2, False), (3, False), (2, True), (3, True)]
)
def test_subpixel_form_is_the_transposed_convolution(ndim, channels_last):
    """Forward and gradients equal torch's kernel-4 stride-2 transposed conv,
    from contiguous and from channels-last activations (the network's)."""
    from skavae._network import subpixel_conv_transpose

    torch.manual_seed(ndim)
    native = _CONV_T[ndim](5, 3, 4, stride=2, padding=1)
    x = torch.randn(2, 5, *range(5, 5 + ndim))
    if channels_last:
        fmt = {2: torch.channels_last, 3: torch.channels_last_3d}[ndim]
        x = x.contiguous(memory_format=fmt)
    x.requires_grad_(True)
    expected = native(x)
    gx, gw, gb = torch.autograd.grad(
        expected.square().sum(), (x, native.weight, native.bias)
    )
    got = subpixel_conv_transpose(x, native.weight, native.bias)
    assert got.shape == expected.shape == (2, 3, *(2 * s for s in range(5, 5 + ndim)))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    hx, hw, hb = torch.autograd.grad(
        got.square().sum(), (x, native.weight, native.bias)
    )
    for a, b in ((hx, gx), (hw, gw), (hb, gb)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_network_with_subpixel_last_stage_equals_the_native_network():
    torch.manual_seed(0)
    fast = AffinityVAENetwork((12, 10, 9), 3, 1, (4, 8)).eval()
    native = AffinityVAENetwork(
        (12, 10, 9), 3, 1, (4, 8), upsampling="transpose-native"
    )
    native.load_state_dict(fast.state_dict())
    native.eval()
    z, pose = torch.randn(4, 3), torch.randn(4, 1)
    torch.testing.assert_close(
        fast.decode(z, pose), native.decode(z, pose), atol=1e-5, rtol=1e-5
    )
