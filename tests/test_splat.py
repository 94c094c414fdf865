"""Gaussian-splat decoder: rotations, rendering, chunking, gradients, shapes."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from skavae._splat import (
    SplatDecoder,
    grid_coordinates,
    render_splats,
    rotation_matrices,
)


def _random_splats(b, k, ndim, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(b, k, ndim, generator=g, dtype=dtype) * 1.4 - 0.7).to(dtype)
    widths = torch.rand(b, k, generator=g, dtype=dtype) * 0.15 + 0.05
    weights = torch.randn(b, k, generator=g, dtype=dtype)
    return centres, widths, weights


def _dense_render(centres, widths, weights, shape):
    """The direct formula, B x voxels x K at once (small grids only)."""
    coords = grid_coordinates(shape, dtype=centres.dtype)
    grid = torch.stack(torch.meshgrid(*coords, indexing="ij"), -1)
    grid = grid.reshape(-1, len(shape))  # (V, ndim)
    d2 = ((grid[None, :, None, :] - centres[:, None, :, :]) ** 2).sum(-1)
    vals = weights[:, None, :] * torch.exp(-d2 / (2 * widths[:, None, :] ** 2))
    return vals.sum(-1).reshape(centres.shape[0], *shape)


# --- rotations ---------------------------------------------------------------


def test_2d_rotation_matrices_known_and_orthonormal():
    pose = torch.tensor([[0.0], [math.pi / 2], [math.pi], [0.3]], dtype=torch.float64)
    R = rotation_matrices(pose, 2)
    torch.testing.assert_close(R[0], torch.eye(2, dtype=torch.float64))
    expected = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(R[1], expected, atol=1e-15, rtol=0)
    torch.testing.assert_close(
        R[2], -torch.eye(2, dtype=torch.float64), atol=1e-15, rtol=0
    )
    c, s = math.cos(0.3), math.sin(0.3)
    expected = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    torch.testing.assert_close(R[3], expected)
    eye = torch.eye(2, dtype=torch.float64).expand(4, 2, 2)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye)


def test_rodrigues_matches_scipy_orthonormal_det_one():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(20, 3, generator=g, dtype=torch.float64) * 2
    v[0] = 0.0
    v[1] = torch.tensor([1e-9, -2e-9, 3e-9])
    v[2] = torch.tensor([3e-3, 4e-3, 0.0])  # just below the series threshold
    v[3] = torch.tensor([0.0, 0.0, math.pi])
    R = rotation_matrices(v, 3)
    expected = Rotation.from_rotvec(v.numpy()).as_matrix()
    np.testing.assert_allclose(R.numpy(), expected, atol=1e-12)
    eye = np.broadcast_to(np.eye(3), (20, 3, 3))
    np.testing.assert_allclose((R @ R.transpose(1, 2)).numpy(), eye, atol=1e-12)
    np.testing.assert_allclose(torch.linalg.det(R).numpy(), 1.0, atol=1e-12)


def test_rodrigues_known_rotations():
    q = math.pi / 2
    pose = torch.tensor([[0.0, 0.0, q], [q, 0.0, 0.0], [0.0, q, 0.0]])
    R = rotation_matrices(pose, 3)
    e = torch.eye(3)
    # right-handed: about x_2, e_0 -> e_1; about x_0, e_1 -> e_2; about x_1, e_2 -> e_0
    torch.testing.assert_close(R[0] @ e[0], e[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(R[1] @ e[1], e[2], atol=1e-6, rtol=0)
    torch.testing.assert_close(R[2] @ e[2], e[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "v", [[0.0, 0.0, 0.0], [1e-3, -2e-3, 5e-4], [0.7, -1.2, 2.0]], ids=str
)
def test_rodrigues_gradients_finite_and_correct(v):
    pose = torch.tensor([v], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: rotation_matrices(p, 3), (pose,))


def test_rotation_needs_enough_pose_columns():
    with pytest.raises(ValueError, match="3D rotation needs pose of shape"):
        rotation_matrices(torch.zeros(2, 2), 3)
    with pytest.raises(ValueError, match="2D rotation needs"):
        rotation_matrices(torch.zeros(2, 0), 2)
    with pytest.raises(ValueError, match="ndim must be 1, 2 or 3"):
        rotation_matrices(torch.zeros(2, 3), 4)


# --- rendering ---------------------------------------------------------------


def test_grid_is_centred_with_one_spacing():
    c0, c1, c2 = grid_coordinates((3, 4, 8))
    assert c0.tolist() == [-0.25, 0.0, 0.25]
    assert c1.tolist() == [-0.375, -0.125, 0.125, 0.375]
    assert c2[0].item() == -0.875 and c2[-1].item() == 0.875


@pytest.mark.parametrize("shape", [(13, 17), (9, 8, 11)])
def test_separable_render_equals_direct_formula(shape):
    c, w, a = _random_splats(3, 5, len(shape), dtype=torch.float64)
    torch.testing.assert_close(
        render_splats(c, w, a, shape), _dense_render(c, w, a, shape)
    )


@pytest.mark.parametrize("shape", [(12, 9), (7, 6, 5)])
@pytest.mark.parametrize("checkpoint", [None, True, False])
def test_chunked_render_equals_unchunked_with_gradients(shape, checkpoint):
    c, w, a = _random_splats(5, 4, len(shape), dtype=torch.float64)
    g = torch.randn(5, *shape, dtype=torch.float64, generator=torch.Generator())
    results = []
    for max_elements in (10**9, 1):  # one chunk; one sample per chunk
        inputs = [t.clone().requires_grad_() for t in (c, w, a)]
        out = render_splats(
            *inputs, shape, max_chunk_elements=max_elements, checkpoint=checkpoint
        )
        (out * g).sum().backward()
        results.append((out.detach(), *(t.grad for t in inputs)))
    for one, chunked in zip(*results):
        torch.testing.assert_close(one, chunked, rtol=1e-12, atol=1e-12)


def test_render_validates_shapes():
    c, w, a = _random_splats(2, 3, 2)
    with pytest.raises(ValueError, match="1D, 2D or 3D grids"):
        render_splats(c, w, a, (5, 5, 5, 5))
    with pytest.raises(ValueError, match="centres must have shape"):
        render_splats(c, w, a, (5, 5, 5))
    with pytest.raises(ValueError, match="widths and weights"):
        render_splats(c, w[:, :2], a, (5, 5))


def test_render_64_cubed_batch_32_with_64_splats():
    # the size: 32 x 64^3 x 64 splats. The direct formula would hold
    # 32 * 262144 * 64 floats (2 GiB); the chunked separable render holds at most
    # 2**22 elements of intermediate per chunk (benchmarks/splat_pose.py
    # --render measures the peak).
    shape = (64, 64, 64)
    c, w, a = (t.requires_grad_() for t in _random_splats(32, 64, 3, seed=3))
    out = render_splats(c, w, a, shape)
    assert out.shape == (32, *shape)
    out.square().mean().backward()
    assert all(
        torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0 for t in (c, w, a)
    )
    # spot-check two samples against the direct formula on a sub-grid
    coords = grid_coordinates(shape)
    sub = (slice(0, 64, 9), slice(5, 64, 11), slice(2, 64, 7))
    for b in (0, 31):
        grid = torch.stack(
            torch.meshgrid(*(x[s] for x, s in zip(coords, sub)), indexing="ij"), -1
        )
        d2 = ((grid[..., None, :] - c[b].detach()) ** 2).sum(-1)
        direct = (a[b].detach() * torch.exp(-d2 / (2 * w[b].detach() ** 2))).sum(-1)
        torch.testing.assert_close(out[b].detach()[sub], direct, atol=1e-5, rtol=1e-5)


# --- the decoder -------------------------------------------------------------


def _decoder(shape, pose_dims, seed=0, **kwargs):
    torch.manual_seed(seed)
    return SplatDecoder(
        shape, latent_dims=3, pose_dims=pose_dims, n_splats=6, hidden=16, **kwargs
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_pose_rotation_equals_rendering_rotated_centres(ndim):
    shape = (13, 17) if ndim == 2 else (9, 8, 11)
    pose_dims = 1 if ndim == 2 else 3
    dec = _decoder(shape, pose_dims, refine=False)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 3, generator=g)
    pose = torch.randn(4, pose_dims, generator=g) * 2
    with torch.no_grad():
        out = dec(z, pose)
        centres, widths, weights, offset = dec.splats(z)
    # the rotation computed independently (float64 numpy/scipy)
    if ndim == 2:
        t = pose[:, 0].double().numpy()
        R = np.stack([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]).transpose(
            2, 0, 1
        )
    else:
        R = Rotation.from_rotvec(pose.double().numpy()).as_matrix()
    rotated = np.einsum("bij,bkj->bki", R, centres.double().numpy())
    expected = render_splats(
        torch.from_numpy(rotated), widths.double(), weights.double(), shape
    ) + offset.double().view(-1, *[1] * ndim)
    assert out.shape == (4, 1, *shape)
    torch.testing.assert_close(out[:, 0].double(), expected, atol=1e-5, rtol=0)


def test_pose_translation_shifts_after_rotation():
    dec = _decoder((10, 12), 3, refine=False)
    z = torch.randn(2, 3)
    pose = torch.tensor([[0.4, 0.1, -0.2], [-1.0, 0.0, 0.3]])
    with torch.no_grad():
        out = dec(z, pose)
        centres, widths, weights, offset = dec.splats(z)
        moved = centres @ rotation_matrices(pose, 2).transpose(1, 2) + pose[:, None, 1:]
        expected = (
            render_splats(moved, widths, weights, (10, 12)) + offset[:, None, None]
        )
    torch.testing.assert_close(out[:, 0], expected, atol=1e-6, rtol=0)


def test_quarter_turn_2d_equals_rot90():
    # on a square grid a quarter turn about the centre maps voxels onto voxels
    dec = _decoder((15, 15), 1, refine=False)
    z = torch.randn(3, 3)
    with torch.no_grad():
        upright = dec(z, torch.zeros(3, 1))
        turned = dec(z, torch.full((3, 1), math.pi / 2))
    torch.testing.assert_close(
        turned, torch.rot90(upright, 1, dims=(-2, -1)), atol=1e-5, rtol=0
    )
    assert not torch.allclose(turned, upright, atol=1e-2)


@pytest.mark.parametrize(
    "rotvec, dims", [((1.0, 0.0, 0.0), (-2, -1)), ((0.0, 1.0, 0.0), (-1, -3))]
)
def test_quarter_turn_3d_equals_rot90(rotvec, dims):
    # about x_0 the turn is in the (x_1, x_2) plane, from x_1 towards x_2;
    # about x_1 it goes from x_2 towards x_0
    dec = _decoder((9, 9, 9), 3, refine=False)
    z = torch.randn(2, 3)
    pose = torch.tensor([rotvec] * 2) * (math.pi / 2)
    with torch.no_grad():
        upright = dec(z, torch.zeros(2, 3))
        turned = dec(z, pose)
    torch.testing.assert_close(
        turned, torch.rot90(upright, 1, dims=dims), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize(
    "shape, pose_dims", [((13, 17), 1), ((13, 17), 3), ((9, 8, 11), 3), ((9, 8, 11), 6)]
)
@pytest.mark.parametrize("refine", [True, False])
def test_output_shapes_odd_sizes(shape, pose_dims, refine):
    dec = _decoder(shape, pose_dims, refine=refine)
    out = dec(torch.randn(5, 3), torch.randn(5, pose_dims))
    assert out.shape == (5, 1, *shape)
    assert (dec.refinement is not None) == refine
    _, widths, _, _ = dec.splats(torch.randn(5, 3))
    assert widths.min() >= 0.5 * 2 / max(shape)  # half-voxel floor


@pytest.mark.parametrize("shape, pose_dims", [((11, 10), 3), ((7, 6, 8), 6)])
def test_gradients_reach_z_pose_and_every_parameter(shape, pose_dims):
    # a tiny chunk bound: the 3D case goes through the checkpointed chunks
    dec = _decoder(shape, pose_dims, max_chunk_elements=64)
    z = torch.randn(3, 3, requires_grad=True)
    pose = (torch.randn(3, pose_dims) * 0.5).requires_grad_()
    out = dec(z, pose)
    (out * torch.randn_like(out)).sum().backward()
    for name, t in [("z", z), ("pose", pose), *dec.named_parameters()]:
        assert t.grad is not None, name
        assert torch.isfinite(t.grad).all(), name
        assert t.grad.abs().sum() > 0, name


def test_gradient_to_pose_at_identity_3d():
    dec = _decoder((6, 6, 6), 3, refine=False)
    pose = torch.zeros(2, 3, requires_grad=True)
    dec(torch.randn(2, 3), pose).square().sum().backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0


def test_no_pose_is_identity_pose():
    dec = _decoder((8, 9), 1)
    z = torch.randn(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(dec(z), dec(z, torch.zeros(2, 1)))


@pytest.mark.parametrize(
    "shape, pose_dims, match",
    [
        ((8, 8, 8), 1, "3D splat decoder needs pose_dims = 3 .* or 6"),
        ((8, 8, 8), 4, "pose_dims=4"),
        ((8, 8), 2, "2D splat decoder needs pose_dims = 1 .* or 3"),
        ((8, 8), 0, "pose_dims=0"),
        ((8,), 2, "1D splat decoder needs pose_dims = 0 .* or 1"),
        ((2, 2, 2, 2), 1, "1D signals, 2D images or 3D volumes"),
    ],
)
def test_bad_pose_dims_and_shapes(shape, pose_dims, match):
    with pytest.raises(ValueError, match=match):
        SplatDecoder(shape, latent_dims=2, pose_dims=pose_dims)


def test_bad_sizes_and_inputs():
    with pytest.raises(ValueError, match="n_splats must be a positive integer"):
        SplatDecoder((8, 8), 2, 1, n_splats=0)
    dec = _decoder((8, 8), 1)
    with pytest.raises(ValueError, match="z must have shape"):
        dec(torch.zeros(2, 4), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="pose must have shape \\(2, 1\\)"):
        dec(torch.zeros(2, 3), torch.zeros(2, 2))


def test_1d_signals_only_shift():
    """In 1D the pose is a translation: shifting the pose shifts the signal."""
    torch.manual_seed(0)
    dec = SplatDecoder((16,), latent_dims=2, pose_dims=1, n_splats=4, refine=False)
    z = torch.randn(1, 2)
    h = 2.0 / 16  # one voxel in grid units
    a = dec(z, torch.zeros(1, 1))[0, 0]
    b = dec(z, torch.full((1, 1), 2 * h))[0, 0]
    torch.testing.assert_close(b[2:], a[:-2], rtol=1e-5, atol=1e-6)
    assert SplatDecoder((16,), 2, 0)(z).shape == (1, 1, 16)
