"""The dimension-generic network: shapes, padding, pose head."""

import pytest
import torch

from skavae._network import AffinityVAENetwork, padded_shape


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
