"""Gaussian-splat decoder: the pose is an explicit rotation of the object.

The latent code ``z`` is mapped by an MLP to ``n_splats`` isotropic Gaussians in
the object's *canonical* frame (centres, widths, signed weights) plus a constant
offset. The pose turns into a rotation matrix (an angle in 2D, an axis-angle
vector in 3D), the centres are rotated (and optionally shifted), and the
Gaussians are rendered on the voxel grid (:mod:`skavae._render`, whose
docstring gives the coordinates), optionally followed by a small residual
convolutional refinement. Because the decoder cannot rotate the object any other
way than through the pose, a model trained on rotated objects is pushed to put
the rotation into the pose and the identity of the object into ``z``.

Pose convention
---------------
2D: ``pose[:, 0]`` is an angle θ in radians; centres are mapped by
``[[cos θ, -sin θ], [sin θ, cos θ]]`` acting on ``(x_0, x_1)``, which is a
counter-clockwise rotation of an image shown with row 0 at the top (as
``matplotlib.pyplot.imshow`` shows it, and the sense of
``make_alphanumeric``'s ``angle``); θ = π/2 is ``torch.rot90(image, 1)``.
3D: ``pose[:, :3]`` is an axis-angle (rotation) vector in ``(x_0, x_1, x_2)``
coordinates: its direction is the axis, its norm the angle in radians
(right-handed), turned into a matrix by the Rodrigues formula.
Either may be followed by a translation of ``ndim`` values (in grid units,
applied after the rotation), so ``pose_dims`` is 1 or 3 in 2D and 3 or 6 in
3D (:func:`splat_pose_dims`); any other size raises a ``ValueError`` rather
than silently ignoring pose values (an ignored pose value gets no gradient and
would be noise).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from skavae._checks import check_int
from skavae._render import DEFAULT_CHUNK_ELEMENTS, grid_coordinates, render_splats

__all__ = [
    "CONV",
    "SplatDecoder",
    "grid_coordinates",
    "render_splats",
    "rotation_matrices",
    "splat_pose_dims",
]

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}  # by spatial rank
_ROTATION_DIMS = {1: 0, 2: 1, 3: 3}  # 1D signals have no rotation, only a shift
_POSE_WORDS = {
    1: "0 (none) or 1 (a shift)",
    2: "1 (an angle) or 3 (an angle and a 2D shift)",
    3: "3 (an axis-angle vector) or 6 (axis-angle and a 3D shift)",
}


def splat_pose_dims(ndim):
    """The pose sizes on ``ndim``-D objects, and what they mean.

    A rotation (none in 1D, an angle in 2D, an axis-angle vector in 3D),
    optionally followed by a shift of ``ndim`` values. Returns
    ``(sizes, words)``.

    Examples
    --------
    >>> from skavae._splat import splat_pose_dims
    >>> splat_pose_dims(2)
    ((1, 3), '1 (an angle) or 3 (an angle and a 2D shift)')
    """
    rot = _ROTATION_DIMS[ndim]
    return (rot, rot + ndim), _POSE_WORDS[ndim]


def _check_pose(pose, ndim):
    if ndim not in _ROTATION_DIMS:
        raise ValueError(f"ndim must be 1, 2 or 3; got {ndim!r}.")
    need = _ROTATION_DIMS[ndim]
    if pose.ndim != 2 or pose.shape[1] < need:
        what = "an angle" if ndim == 2 else "an axis-angle vector"
        raise ValueError(
            f"A {ndim}D rotation needs pose of shape (B, >= {need}) ({what}); "
            f"got shape {tuple(pose.shape)}."
        )


def rotation_matrices(pose, ndim):
    """Rotation matrices from pose codes (see the module's pose convention).

    Parameters
    ----------
    pose : tensor of shape (B, P)
        2D (``ndim=2``): ``pose[:, 0]`` is the angle in radians (P >= 1).
        3D (``ndim=3``): ``pose[:, :3]`` is an axis-angle vector (P >= 3),
        converted by the Rodrigues formula
        ``R = I + (sin θ / θ) K + ((1 - cos θ) / θ²) K²`` with ``K`` the
        cross-product matrix of the vector and θ its norm; near θ = 0 the two
        coefficients use their Taylor series, so values and gradients are finite
        at and around the identity. Further columns are not read here.
    ndim : {2, 3}
        Dimension of the rotation.

    Returns
    -------
    R : tensor of shape (B, ndim, ndim)
        Rotation matrices (orthonormal, determinant 1), acting on column vectors
        of array-axis coordinates: a centre ``c`` goes to ``R @ c``.

    Raises
    ------
    ValueError
        If ``ndim`` is not 2 or 3 or ``pose`` has too few columns.

    Examples
    --------
    >>> import math, torch
    >>> from skavae._splat import rotation_matrices
    >>> (rotation_matrices(torch.tensor([[math.pi / 2]]), 2).round() + 0.0).tolist()
    [[[0.0, -1.0], [1.0, 0.0]]]
    >>> R = rotation_matrices(torch.tensor([[0.0, 0.0, math.pi / 2]]), 3)
    >>> ((R @ torch.tensor([1.0, 0.0, 0.0])).round() + 0.0).tolist()
    [[0.0, 1.0, 0.0]]
    """
    _check_pose(pose, ndim)
    if ndim == 1:
        return pose.new_ones((pose.shape[0], 1, 1))
    if ndim == 2:
        theta = pose[:, 0]
        c, s = torch.cos(theta), torch.sin(theta)
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    v = pose[:, :3]
    theta2 = (v * v).sum(-1)
    small = theta2 < 1e-4  # θ < 0.01: the series below are exact to ~1e-12
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(safe2)
    a = torch.where(small, 1 - theta2 / 6 + theta2**2 / 120, torch.sin(theta) / theta)
    b = torch.where(
        small, 0.5 - theta2 / 24 + theta2**2 / 720, (1 - torch.cos(theta)) / safe2
    )
    zero = torch.zeros_like(v[:, 0])
    k = torch.stack(
        [
            torch.stack([zero, -v[:, 2], v[:, 1]], -1),
            torch.stack([v[:, 2], zero, -v[:, 0]], -1),
            torch.stack([-v[:, 1], v[:, 0], zero], -1),
        ],
        -2,
    )
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(k)
    return eye + a[:, None, None] * k + b[:, None, None] * (k @ k)


def _inverse_softplus(y):
    return y + math.log(-math.expm1(-y))


class SplatDecoder(nn.Module):
    """Decoder drawing the object as Gaussians rotated by an explicit pose.

    An MLP maps ``z`` (not the pose) to ``n_splats`` isotropic Gaussians in the
    object's canonical frame and a constant offset:

    - centres: ``tanh`` of the MLP output, so in [-1, 1] grid coordinates (see
      :func:`grid_coordinates`);
    - widths (standard deviations): ``softplus`` plus a floor of half a voxel,
      so no Gaussian is narrower than the grid can represent;
    - weights: *signed* (the raw MLP output). Inputs are standardised (zero mean,
      unit variance), so the decoder models deviations from the mean and must
      be able to lower values as well as raise them; negative weights also let
      a few splats carve holes instead of many tiling around them;
    - offset: one constant per sample added to the rendering (the background of
      standardised data is not 0).

    The centres are rotated by the pose (:func:`rotation_matrices`; then shifted
    if the pose carries a translation), rendered by :func:`render_splats`, and
    optionally refined by a residual block of three 3×3(×3) convolutions with
    ``refine_channels`` channels (``out = render + block(render)``; its last
    layer starts small, so the decoder starts close to the pure rendering).
    The refinement is translation- but not rotation-equivariant; keep it small
    so that the rotation stays in the pose.

    Parameters
    ----------
    input_shape : tuple of int
        Spatial shape of one object, ``(H, W)`` or ``(D, H, W)``: the *true*
        shape (no padding is needed; the grid centre is the centre of rotation).
    latent_dims : int
        Size of ``z``.
    pose_dims : int
        Size of the pose: 2D: 1 (angle) or 3 (angle, shift along axes 0 and 1);
        3D: 3 (axis-angle) or 6 (axis-angle, shift along axes 0, 1, 2).
        Shifts are in grid units (see :func:`grid_coordinates`).
    n_splats : int, default=32
        Number of Gaussians ``K``.
    hidden : int, default=128
        Width of the two hidden layers of the MLP.
    refine : bool, default=True
        Whether to apply the residual convolutional refinement.
    refine_channels : int, default=8
        Channels of the refinement's hidden layers.
    max_chunk_elements : int, default=2**22
        Memory bound of :func:`render_splats` (elements of its largest
        per-chunk intermediate).

    Raises
    ------
    ValueError
        For a shape that is not 2D or 3D, a ``pose_dims`` that does not fit
        the rank (e.g. < 3 in 3D), or non-positive sizes.

    Examples
    --------
    >>> import torch
    >>> from skavae._splat import SplatDecoder
    >>> dec = SplatDecoder((13, 17), latent_dims=4, pose_dims=1, n_splats=8)
    >>> dec(torch.zeros(2, 4), torch.zeros(2, 1)).shape
    torch.Size([2, 1, 13, 17])
    """

    def __init__(
        self,
        input_shape,
        latent_dims,
        pose_dims,
        n_splats=32,
        hidden=128,
        refine=True,
        refine_channels=8,
        max_chunk_elements=DEFAULT_CHUNK_ELEMENTS,
    ):
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        ndim = len(shape)
        if ndim not in (1, 2, 3) or min(shape) < 1:
            raise ValueError(
                "The splat decoder draws 1D signals, 2D images or 3D volumes; got "
                f"input shape {tuple(input_shape)}."
            )
        for name, value in (
            ("latent_dims", latent_dims),
            ("n_splats", n_splats),
            ("hidden", hidden),
            ("refine_channels", refine_channels),
            ("max_chunk_elements", max_chunk_elements),
        ):
            check_int(value, name)
        sizes, words = splat_pose_dims(ndim)
        if pose_dims not in sizes:
            raise ValueError(
                f"The {ndim}D splat decoder needs pose_dims = {words}; got "
                f"pose_dims={pose_dims!r}."
            )
        self.input_shape = shape
        self.ndim = ndim
        self.latent_dims = int(latent_dims)
        self.pose_dims = int(pose_dims)
        self.n_splats = int(n_splats)
        self.refine = bool(refine)
        self.max_chunk_elements = int(max_chunk_elements)
        self.min_width = 0.5 * 2.0 / max(shape)  # half a voxel
        k = self.n_splats
        self.mlp = nn.Sequential(
            nn.Linear(self.latent_dims, hidden),
            nn.LeakyReLU(0.1),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.1),
            nn.Linear(hidden, k * (ndim + 2) + 1),
        )
        last = self.mlp[-1]
        with torch.no_grad():
            # start with splats spread over the central part of the grid, a
            # few voxels wide, with small weights of both signs
            last.weight.mul_(0.1)
            bias = torch.zeros(k, ndim + 2)
            bias[:, :ndim] = torch.atanh(torch.rand(k, ndim) * 1.2 - 0.6)
            start_width = max(3 * self.min_width, 0.1)
            bias[:, ndim] = _inverse_softplus(start_width - self.min_width)
            last.bias.copy_(torch.cat([bias.flatten(), torch.zeros(1)]))
        if self.refine:
            conv = CONV[ndim]
            c = int(refine_channels)
            self.refinement = nn.Sequential(
                conv(1, c, 3, padding=1),
                nn.LeakyReLU(0.1),
                conv(c, c, 3, padding=1),
                nn.LeakyReLU(0.1),
                conv(c, 1, 3, padding=1),
            )
            with torch.no_grad():
                self.refinement[-1].weight.mul_(0.1)
                self.refinement[-1].bias.zero_()
        else:
            self.refinement = None

    def splats(self, z):
        """The Gaussians of ``z`` in the canonical (unrotated) frame.

        Parameters
        ----------
        z : tensor of shape (B, latent_dims)

        Returns
        -------
        centres : tensor of shape (B, n_splats, ndim)
            In [-1, 1] grid coordinates.
        widths : tensor of shape (B, n_splats)
            Standard deviations, at least half a voxel.
        weights : tensor of shape (B, n_splats)
            Signed amplitudes.
        offset : tensor of shape (B,)
            Constant added to the whole rendering.
        """
        if z.ndim != 2 or z.shape[1] != self.latent_dims:
            raise ValueError(
                f"z must have shape (B, {self.latent_dims}); got {tuple(z.shape)}."
            )
        out = self.mlp(z)
        params = out[:, :-1].reshape(z.shape[0], self.n_splats, self.ndim + 2)
        centres = torch.tanh(params[:, :, : self.ndim])
        widths = self.min_width + F.softplus(params[:, :, self.ndim])
        weights = params[:, :, self.ndim + 1]
        return centres, widths, weights, out[:, -1]

    def forward(self, z, pose=None):
        """Render ``z`` in the pose ``pose``.

        Parameters
        ----------
        z : tensor of shape (B, latent_dims)
        pose : tensor of shape (B, pose_dims), optional
            See the module's pose convention; None is the identity pose.

        Returns
        -------
        image : tensor of shape (B, 1, *input_shape)
        """
        centres, widths, weights, offset = self.splats(z)
        if pose is not None:
            if pose.shape != (z.shape[0], self.pose_dims):
                raise ValueError(
                    f"pose must have shape ({z.shape[0]}, {self.pose_dims}); got "
                    f"{tuple(pose.shape)}."
                )
            rot = rotation_matrices(pose, self.ndim)
            centres = centres @ rot.transpose(1, 2)
            n_rot = _ROTATION_DIMS[self.ndim]
            if self.pose_dims > n_rot:
                centres = centres + pose[:, None, n_rot:]
        image = render_splats(
            centres,
            widths,
            weights,
            self.input_shape,
            max_chunk_elements=self.max_chunk_elements,
        )
        image = (image + offset.view(-1, *([1] * self.ndim))).unsqueeze(1)
        if self.refinement is not None:
            image = image + self.refinement(image)
        return image
