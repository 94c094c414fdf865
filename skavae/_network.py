"""The affinity-VAE network: one conv encoder/decoder for 1D, 2D and 3D inputs.

The architecture follows Figure 1 of the paper: a convolutional encoder, three
fully connected heads for the latent mean ``mu``, the log-variance ``log_var``
and the *pose* (a free code of ``pose_dims`` values that the decoder receives
together with ``z``), and a decoder that mirrors the encoder.

Every encoder stage halves the spatial size (stride-2 convolution), every decoder
stage doubles it (by default a stride-2 transposed convolution of kernel 4, the
last one run in its equivalent sub-pixel form; see ``upsampling``). Inputs of
any spatial size are zero-padded up to a multiple of ``2 ** len(filters)`` and
outputs are cropped back, so a 1D signal of length 3 and a 61³ subtomogram both
work.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from skavae._splat import CONV, SplatDecoder

# layers by spatial rank (the convolutions are shared with the splat decoder)
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}


def padded_shape(input_shape, depth):
    """Smallest shape >= ``input_shape`` divisible by ``2 ** depth`` per axis."""
    m = 2**depth
    return tuple(int(math.ceil(s / m) * m) for s in input_shape)


def _activation():
    """LeakyReLU(0.1), in place: it follows a convolution, batch norm or linear
    layer, none of which keeps its output for the backward pass, so the
    activation saves one tensor write and read per stage (with the fused
    Adam and the one-copy shuffle, 1.03-1.08x per training step:
    ``benchmarks/README.md``, "Decoder upsampling and precision")."""
    return nn.LeakyReLU(0.1, inplace=True)


def _down_stage(conv, norm, c_in, c_out, batch_norm):
    """One encoder stage: kernel-3 stride-2 convolution, [batch norm], LeakyReLU."""
    layers = [conv(c_in, c_out, 3, stride=2, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(norm(c_out))
    layers.append(_activation())
    return layers


class PixelShuffle(nn.Module):
    """Sub-pixel upsampling by 2 per axis in 1D, 2D or 3D.

    ``(B, C * 2**ndim, *S)`` -> ``(B, C, *(2 * S))`` (torch's own
    ``nn.PixelShuffle`` is 2D only).
    """

    def __init__(self, ndim):
        super().__init__()
        self.ndim = ndim

    def forward(self, x):
        b, c, *size = x.shape
        n = self.ndim
        x = x.reshape(b, c // 2**n, *([2] * n), *size)
        # (b, c, r1..rn, s1..sn) -> (b, c, s1, r1, ..., sn, rn)
        order = [0, 1] + [i for k in range(n) for i in (2 + n + k, 2 + k)]
        x = x.permute(*order)
        return x.reshape(b, c // 2**n, *(2 * s for s in size))


_CONV_F = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def subpixel_conv_transpose(x, weight, bias):
    """``conv_transpose(x, weight, bias, stride=2, padding=1)``, kernel 4, as a
    kernel-2 convolution to ``2**ndim`` times the channels and a sub-pixel
    shuffle.

    The two are the same function (Shi et al. 2016, "Is the deconvolution
    layer the same as a convolutional layer?"): output voxel ``2i + r`` of the
    transposed convolution reads inputs ``i - 1 + r`` and ``i + r`` per axis
    with kernel taps ``r + 2`` and ``r``. Written as a convolution it runs on
    the fast (oneDNN / cuDNN) convolution kernels. ``weight`` keeps the
    transposed layout ``(c_in, c_out, 4, ...)``, so parameters, their
    initialisation and saved models are those of ``nn.ConvTranspose``. The
    result is channels-last in memory.
    """
    n = weight.dim() - 2
    c_in, c_out = weight.shape[:2]
    # tap k = 2a + r  ->  axes (a, r); the convolution's tap t = 1 - a;
    # output channels ordered (r_1, ..., r_n, c_out)
    v = weight.reshape(c_in, c_out, *([2, 2] * n)).flip([2 + 2 * i for i in range(n)])
    order = [*(3 + 2 * i for i in range(n)), 1, 0, *(2 + 2 * i for i in range(n))]
    v = v.permute(*order).reshape(c_out * 2**n, c_in, *([2] * n))
    b = None if bias is None else bias.repeat(2**n)
    u = _CONV_F[n](x, v, b, padding=1)  # (B, (r..., c), S_1 + 1, ...)
    return _ShuffleCrop.apply(u, c_out)


def _shuffle_crop_geometry(u, c_out):
    """Sizes, strides and offset of the sub-pixel shuffle and crop as a view.

    Output voxel ``2m + q`` along an axis (after the one-voxel crop) is
    voxel ``m + q`` of phase ``r = 1 - q`` of the convolution's output ``u``:
    an affine function of ``(m, q)``, so the shuffled, cropped result is one
    strided view of ``u`` with dimensions ``(B, m_1, q_1, ..., m_n, q_n, c)``.
    """
    n = u.dim() - 2
    cs = u.stride(1)
    size, stride, offset = [u.shape[0]], [u.stride(0)], 0
    for k in range(n):
        rs = cs * c_out * 2 ** (n - 1 - k)  # stride of phase r_k in u
        size += [u.shape[2 + k] - 1, 2]
        stride += [u.stride(2 + k), u.stride(2 + k) - rs]
        offset += rs
    return size + [c_out], stride + [cs], offset


class _ShuffleCrop(torch.autograd.Function):
    """``u`` (B, (r_1..r_n, c), S_1 + 1, ...) -> (B, c, 2 S_1, ...), channels
    last: the sub-pixel shuffle and one-voxel crop, one copy each way."""

    @staticmethod
    def forward(ctx, u, c_out):
        size, stride, offset = _shuffle_crop_geometry(u, c_out)
        if min(stride) < 0:  # channels not innermost (1D, or a contiguous u)
            u = u.movedim(1, -1).contiguous().movedim(-1, 1)
            size, stride, offset = _shuffle_crop_geometry(u, c_out)
        ctx.geometry = (u.shape, u.stride(), size, stride, offset)
        n = u.dim() - 2
        y = u.as_strided(size, stride, u.storage_offset() + offset)
        y = y.reshape(u.shape[0], *(2 * m for m in size[1:-1:2]), c_out)
        return y.permute(0, n + 1, *range(1, n + 1))

    @staticmethod
    def backward(ctx, grad):
        shape, u_stride, size, stride, offset = ctx.geometry
        n = len(shape) - 2
        g = torch.empty_strided(shape, u_stride, dtype=grad.dtype, device=grad.device)
        # the one-voxel border the crop dropped gets no gradient; the copy
        # below fills every other entry
        for axis in range(2, n + 2):
            g.select(axis, 0).zero_()
            g.select(axis, -1).zero_()
        g.as_strided(size, stride, g.storage_offset() + offset).copy_(
            grad.permute(0, *range(2, n + 2), 1).reshape(size)
        )
        return g, None


class _SubPixel:
    """Mixin: a kernel-4 stride-2 transposed convolution run by
    :func:`subpixel_conv_transpose` (same parameters, same function).

    Used for the decoder's last stage (to one channel at full resolution),
    where torch's CPU transposed convolution is slowest: about 2x slower than
    this form at 32³ (``benchmarks/bench_decoder.py``); for the inner stages
    the native kernel is as fast or faster.
    """

    def forward(self, x):
        return subpixel_conv_transpose(x, self.weight, self.bias)


class SubPixelConvTranspose1d(_SubPixel, nn.ConvTranspose1d):
    pass


class SubPixelConvTranspose2d(_SubPixel, nn.ConvTranspose2d):
    pass


class SubPixelConvTranspose3d(_SubPixel, nn.ConvTranspose3d):
    pass


_SUBPIXEL = {1: SubPixelConvTranspose1d, 2: SubPixelConvTranspose2d,
             3: SubPixelConvTranspose3d}  # fmt: skip


def _up_stage(kind, ndim, c_in, c_out, batch_norm, last=False):
    """One decoder stage that doubles the spatial size, by ``kind``.

    ``"transpose"``: transposed convolution, kernel 4, stride 2 (the default);
    ``"transpose2"``: kernel 2, stride 2 (each input voxel paints one 2**ndim
    block); ``"nearest"``: nearest-neighbour upsampling then a kernel-3
    convolution; ``"shuffle"``: a kernel-3 convolution to ``c_out * 2**ndim``
    channels at the low resolution, then sub-pixel rearrangement.
    """
    conv, conv_t, norm = CONV[ndim], _CONV_T[ndim], _BATCH_NORM[ndim]
    bias = last or not batch_norm
    if kind == "transpose" and last:
        layers = [_SUBPIXEL[ndim](c_in, c_out, 4, stride=2, padding=1, bias=bias)]
    elif kind in ("transpose", "transpose-native"):  # -native: benchmarks, tests
        layers = [conv_t(c_in, c_out, 4, stride=2, padding=1, bias=bias)]
    elif kind == "transpose2":
        layers = [conv_t(c_in, c_out, 2, stride=2, bias=bias)]
    elif kind == "nearest":
        layers = [
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(c_in, c_out, 3, padding=1, bias=bias),
        ]
    elif kind == "shuffle":
        layers = [
            conv(c_in, c_out * 2**ndim, 3, padding=1, bias=bias),
            PixelShuffle(ndim),
        ]
    else:
        raise ValueError(f"Unknown upsampling {kind!r}.")
    if last:
        return layers
    if batch_norm:
        layers.append(norm(c_out))
    layers.append(_activation())
    return layers


class AffinityVAENetwork(nn.Module):
    """Encoder, latent/pose heads and decoder of the affinity-VAE.

    Parameters
    ----------
    input_shape : tuple of int
        Spatial shape of one object: ``(L,)``, ``(H, W)`` or ``(D, H, W)``.
    latent_dims : int
        Size of the latent code ``z``.
    pose_dims : int
        Size of the pose code; 0 removes the pose head.
    filters : sequence of int
        Channels of the encoder stages (reversed in the decoder); its length is
        the depth of the network.
    batch_norm : bool
        Whether each stage has batch normalisation.
    decoder : {"conv", "splat"}, default="conv"
        ``"conv"``: transposed convolutions mirroring the encoder, the pose a free
        code. ``"splat"``: :class:`~skavae._splat.SplatDecoder`, Gaussians
        predicted from ``z`` and rotated by the pose as an explicit rotation
        (2D: ``pose_dims`` 1 or 3; 3D: 3 or 6).
    n_splats : int, default=32
        Number of Gaussians of the splat decoder.
    upsampling : {"transpose", "transpose2", "nearest", "shuffle"}, \
default="transpose"
        How each stage of the conv decoder doubles the spatial size (see
        :func:`_up_stage`).
    """

    def __init__(
        self,
        input_shape,
        latent_dims,
        pose_dims,
        filters,
        batch_norm=True,
        decoder="conv",
        n_splats=32,
        upsampling="transpose",
    ):
        super().__init__()
        ndim = len(input_shape)
        if ndim not in CONV:
            raise ValueError(f"Objects must be 1D, 2D or 3D; got shape {input_shape}.")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.latent_dims = int(latent_dims)
        self.pose_dims = int(pose_dims)
        filters = [int(f) for f in filters]
        depth = len(filters)
        self.padded_shape = padded_shape(self.input_shape, depth)
        self.bottom_shape = tuple(s // 2**depth for s in self.padded_shape)
        conv, norm = CONV[ndim], _BATCH_NORM[ndim]
        # channels-last activations run the oneDNN convolutions ~1.2-1.3x faster
        # on CPU (measured in benchmarks/bench_training.py) and suit GPUs too
        self.memory_format = _CHANNELS_LAST.get(ndim)

        enc, c_in = [], 1
        for c_out in filters:
            enc += _down_stage(conv, norm, c_in, c_out, batch_norm)
            c_in = c_out
        self.encoder = nn.Sequential(*enc)
        flat = filters[-1] * math.prod(self.bottom_shape)
        self.mu = nn.Linear(flat, latent_dims)
        self.log_var = nn.Linear(flat, latent_dims)
        self.pose = nn.Linear(flat, pose_dims) if pose_dims > 0 else None

        self.splat = None
        if decoder == "splat":
            # rendered on the true grid: its centre is the centre of rotation
            self.splat = SplatDecoder(
                self.input_shape, latent_dims, pose_dims, n_splats=n_splats
            )
            return
        self.decoder_input = nn.Sequential(
            nn.Linear(latent_dims + pose_dims, flat), _activation()
        )
        dec = []
        rev = filters[::-1]
        for c_in, c_out in zip(rev[:-1], rev[1:]):
            dec += _up_stage(upsampling, ndim, c_in, c_out, batch_norm)
        dec += _up_stage(upsampling, ndim, rev[-1], 1, batch_norm, last=True)
        self.decoder = nn.Sequential(*dec)
        self._bottom_channels = filters[-1]

    def _pad(self, x):
        pads = []
        for s, p in zip(reversed(self.input_shape), reversed(self.padded_shape)):
            pads += [0, p - s]
        return F.pad(x, pads) if any(pads) else x

    def encode(self, x):
        """Map ``x`` of shape (B, 1, *input_shape) to ``(mu, log_var, pose)``.

        ``pose`` is ``None`` when the network has no pose head.
        """
        x = self._pad(x)
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        h = self.encoder(x).flatten(1)
        pose = self.pose(h) if self.pose is not None else None
        return self.mu(h), self.log_var(h), pose

    def decode(self, z, pose=None):
        """Map latents (B, latent_dims) and pose (B, pose_dims) to (B, 1, *shape)."""
        if self.splat is not None:
            return self.splat(z, pose)
        if self.pose is not None:
            if pose is None:
                pose = z.new_zeros((z.shape[0], self.pose_dims))
            z = torch.cat([z, pose], dim=1)
        h = self.decoder_input(z)
        h = h.view(h.shape[0], self._bottom_channels, *self.bottom_shape)
        if self.memory_format is not None:
            h = h.contiguous(memory_format=self.memory_format)
        out = self.decoder(h)
        crop = (slice(None), slice(None)) + tuple(slice(0, s) for s in self.input_shape)
        return out[crop]

    def forward(self, x, generator=None, sample=True):
        """Encode, sample ``z`` by the reparametrisation trick, decode.

        Returns ``(reconstruction, mu, log_var, pose)``. With ``sample=False``
        the decoder receives ``mu`` (deterministic).
        """
        mu, log_var, pose = self.encode(x)
        if sample:
            eps = torch.randn(
                mu.shape, generator=generator, device=mu.device, dtype=mu.dtype
            )
            z = mu + eps * torch.exp(0.5 * log_var)
        else:
            z = mu
        return self.decode(z, pose), mu, log_var, pose
