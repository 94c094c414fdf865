"""Does the Gaussian-splat decoder put the rotation into the pose? And what does
rendering at 64³ cost?

``--pose`` (default): trains a small VAE on rotated characters
(``make_alphanumeric(n_samples=2000, size=32, random_state=0)``, angles uniform
in [-45, 45] degrees) with the encoder of ``AffinityVAENetwork`` and its own
mu / log_var / pose heads, decoded by either ``SplatDecoder`` (pose = an explicit
rotation angle) or the conv decoder of ``AffinityVAENetwork`` (pose = a free
code, for comparison), with ``skavae._losses.vae_loss`` (optionally with the
class-level affinity term, MeanDifference on the unrotated templates). It then
encodes every image deterministically and reports the R² of a linear fit of the
encoded pose against the true angle, on the training images and on a held-out
20 % (the fit is made on the training images). A pose defined only up to a
constant per class would lower the pooled R²; the per-class R² (mean over the
classes) is printed too.

``--render``: peak memory and time of ``render_splats`` forward + backward for
B=32 volumes of 64³ with K=64 splats, each configuration in a fresh process
(peak resident memory from ``getrusage`` minus the resident memory before the
call; CPU).

Run: python benchmarks/splat_pose.py [--pose] [--render] [--epochs 40]

Measured (2-core CPU shared with other jobs, torch 2.13 CPU, 1 thread; defaults:
40 epochs, latent_dims=8, 32 splats with refinement, beta=1, gamma=0, seed 0):

* splat: pose vs angle R² 0.569 train / 0.519 held-out with one line for all
  classes; 0.998 per class (mean), 0.997 held-out with a common slope and one
  offset per class; slope 1.02 pose units per radian, i.e. the pose *is* the
  rotation angle, up to an arbitrary offset per class (each class's canonical
  frame, often several whole turns: a 1015, e 610, i 4252 degrees). Held-out
  reconstruction MSE 0.113 (standardised units); 39 s.
* conv decoder (free pose code): R² 0.140 / 0.148; per class 0.915, with
  per-class offsets 0.963; reconstruction MSE 0.364; 20 s.
* with gamma=2 (MeanDifference affinity on the templates) the splat model's
  latent nearly collapses at beta=1 (KL ~0.06 per dim, reconstruction MSE 0.69)
  while the pose stays a rotation (per-class R² 0.999).

``--render`` (peak increase of resident memory, forward + backward of
``out.square().mean()``; output 32 MiB): K=64: default chunked + checkpointed
+162 MiB (0.09 s forward, 0.33 s backward), chunked without checkpointing
+216 MiB, whole batch at once +198 MiB; K=256: +206 / +314 / +441 MiB. The direct
B x voxels x K formula would need 2048 (K=64) or 8192 MiB (K=256) for one tensor.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

RENDER_CONFIGS = {
    "chunked + checkpoint (default)": dict(max_chunk_elements=2**22, checkpoint=None),
    "chunked, no checkpoint": dict(max_chunk_elements=2**22, checkpoint=False),
    "one chunk (whole batch)": dict(max_chunk_elements=2**40, checkpoint=False),
}


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def render_one(name, k):
    """Run one render configuration; print a JSON line (fresh process)."""
    from skavae._splat import render_splats

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    b, s = 32, 64
    c = (torch.rand(b, k, 3, generator=g) * 1.4 - 0.7).requires_grad_()
    w = (torch.rand(b, k, generator=g) * 0.1 + 0.03).requires_grad_()
    a = torch.randn(b, k, generator=g).requires_grad_()
    # warm-up (same chunking and checkpointing) on a tiny grid so that one-time
    # library initialisation is not counted
    warm = dict(RENDER_CONFIGS[name], max_chunk_elements=1)
    if RENDER_CONFIGS[name]["max_chunk_elements"] > 2**30:
        warm["max_chunk_elements"] = 2**40
    render_splats(c[:2], w[:2], a[:2], (4, 4, 4), **warm).sum().backward()
    for t in (c, w, a):
        t.grad = None
    base = _rss_mib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out = render_splats(c, w, a, (s, s, s), **RENDER_CONFIGS[name])
    t1 = time.perf_counter()
    out.square().mean().backward()
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "name": name,
                "forward_s": t1 - t0,
                "backward_s": t2 - t1,
                "peak_increase_mib": max(peak, peak_before) - base,
            }
        )
    )


def render_benchmark():
    b, s = 32, 64
    mib = 4 / 2**20
    print(f"render_splats forward + backward, B={b}, {s}^3, float32, 1 thread, CPU")
    for k in (64, 256):
        print(
            f" K={k}: output {b * s**3 * mib:.0f} MiB; the direct B x voxels x K "
            f"tensor would be {b * s**3 * k * mib:.0f} MiB; the (B, K, S0, S1) "
            f"intermediate {b * k * s * s * mib:.0f} MiB whole, at most "
            f"{2**22 * mib:.0f} MiB per chunk"
        )
        for name in RENDER_CONFIGS:
            res = subprocess.run(
                [sys.executable, __file__, "--render-one", name, "--k", str(k)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(
                f"  {name:32s} forward {r['forward_s']:.3f} s, backward "
                f"{r['backward_s']:.3f} s, peak memory "
                f"+{r['peak_increase_mib']:.0f} MiB"
            )


class PoseVAE(nn.Module):
    """Conv encoder of AffinityVAENetwork + own heads + splat or conv decoder."""

    def __init__(self, shape, latent_dims, decoder, n_splats, refine):
        super().__init__()
        from skavae._network import AffinityVAENetwork
        from skavae._splat import SplatDecoder

        net = AffinityVAENetwork(
            shape, latent_dims, pose_dims=1, filters=(16, 32, 64), batch_norm=True
        )
        self.net = net
        flat = 64 * int(np.prod(net.bottom_shape))
        self.mu = nn.Linear(flat, latent_dims)
        self.log_var = nn.Linear(flat, latent_dims)
        self.pose = nn.Linear(flat, 1)
        if decoder == "splat":
            self.decoder = SplatDecoder(
                shape, latent_dims, 1, n_splats=n_splats, hidden=128, refine=refine
            )
        else:
            self.decoder = None  # the network's own conv decoder

    def encode(self, x):
        h = self.net.encoder(self.net._pad(x)).flatten(1)
        return self.mu(h), self.log_var(h), self.pose(h)

    def forward(self, x, sample=True):
        mu, log_var, pose = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var) if sample else mu
        if self.decoder is not None:
            x_hat = self.decoder(z, pose)
        else:
            x_hat = self.net.decode(z, pose)
        return x_hat, mu, log_var, pose


def r2(x, y):
    """R² of the least-squares line y ~ a x + b (= squared correlation)."""
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def held_out_r2(pred, p, idx):
    """Out-of-sample R²: 1 - mean squared residual / variance of the pose."""
    return float(1 - np.mean((p[idx] - pred[idx]) ** 2) / p[idx].var())


def pose_benchmark(args):
    from sklearn.model_selection import train_test_split

    from skavae._losses import lookup_affinity, vae_loss
    from skavae.affinity import MeanDifference, class_affinity_matrix
    from skavae.datasets import make_alphanumeric

    torch.set_num_threads(1)
    X, y, info, templates = make_alphanumeric(
        n_samples=2000, size=32, random_state=0, return_info=True
    )
    angle = info["angle"].to_numpy(dtype=np.float64)
    labels = list(templates)
    codes = np.array([labels.index(v) for v in y])
    A = class_affinity_matrix(metric=MeanDifference(), templates=templates)
    A = torch.tensor(A.loc[labels, labels].to_numpy(), dtype=torch.float32)
    mean, std = float(X.mean()), float(X.std())
    Xt = torch.from_numpy((X - mean) / std).float().unsqueeze(1)
    idx_tr, idx_te = train_test_split(
        np.arange(len(X)), test_size=0.2, stratify=y, random_state=0
    )
    print(
        f"make_alphanumeric(2000, size=32, random_state=0): {len(idx_tr)} train / "
        f"{len(idx_te)} held-out, angles {angle.min():.0f}..{angle.max():.0f} deg; "
        f"latent_dims={args.latent_dims}, epochs={args.epochs}, batch 64, Adam "
        f"lr={args.lr}, beta={args.beta}, pose penalty {args.pose_penalty}, 1 thread"
    )
    decoders = args.decoders.split(",")
    gammas = [float(g) for g in args.gammas.split(",")]
    for decoder in decoders:
        for gamma in gammas:
            torch.manual_seed(0)
            model = PoseVAE(
                (32, 32), args.latent_dims, decoder, args.n_splats, not args.no_refine
            )
            opt = torch.optim.Adam(model.parameters(), lr=args.lr)
            gen = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            for epoch in range(args.epochs):
                model.train()
                sums = np.zeros(3)
                perm = idx_tr[torch.randperm(len(idx_tr), generator=gen).numpy()]
                for start in range(0, len(perm), 64):
                    b = perm[start : start + 64]
                    x = Xt[b]
                    x_hat, mu, log_var, pose = model(x)
                    aff = lookup_affinity(torch.from_numpy(codes[b]), A)
                    loss, terms = vae_loss(x, x_hat, mu, log_var, args.beta, gamma, aff)
                    if args.pose_penalty:
                        loss = loss + args.pose_penalty * pose.square().mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sums += [
                        terms[t].item() * len(b) for t in ("recon", "kl", "affinity")
                    ]
                if args.verbose:
                    r, kl, af = sums / len(perm)
                    print(f"    epoch {epoch}: recon {r:.3f} kl {kl:.3f} aff {af:.3f}")
            seconds = time.perf_counter() - t0
            model.eval()
            with torch.no_grad():
                x_hat, mu, log_var, pose = model(Xt, sample=False)
                recon = float(((x_hat - Xt) ** 2).mean(dim=(1, 2, 3))[idx_te].mean())
            p = pose[:, 0].numpy().astype(np.float64)
            slope, icpt = np.polyfit(angle[idx_tr], p[idx_tr], 1)
            r2_test = held_out_r2(slope * angle + icpt, p, idx_te)
            # common slope, one intercept per class (each class's canonical
            # frame, hence its pose offset, is arbitrary)
            design = np.column_stack([angle, codes[:, None] == np.arange(len(labels))])
            coef = np.linalg.lstsq(design[idx_tr], p[idx_tr], rcond=None)[0]
            r2_offsets = held_out_r2(design @ coef, p, idx_te)
            offsets = np.degrees(coef[1:] / coef[0])
            per_class = np.mean(
                [r2(angle[y == c], p[y == c]) for c in labels if (y == c).sum() > 2]
            )
            scale = ""
            if decoder == "splat":
                scale = f", slope {np.degrees(slope):.3f} rad/rad"
            print(
                f"  {decoder:5s} gamma={gamma:g}: pose-angle R² train "
                f"{r2(angle[idx_tr], p[idx_tr]):.3f}, held-out {r2_test:.3f}, "
                f"per-class mean {per_class:.3f}, held-out with per-class offsets "
                f"{r2_offsets:.3f}"
                f"{scale}; held-out recon MSE "
                f"{recon:.3f} (standardised); {seconds:.0f} s"
            )
            if decoder == "splat":
                wrapped = (offsets + 180) % 360 - 180
                print(
                    "    per-class pose offsets (deg; mod 360): "
                    + ", ".join(
                        f"{c} {o:.0f} ({w:.0f})"
                        for c, o, w in zip(labels, offsets, wrapped)
                    )
                )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pose", action="store_true")
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--render-one", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--latent-dims", type=int, default=8)
    parser.add_argument("--n-splats", type=int, default=32)
    parser.add_argument("--no-refine", action="store_true")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--gammas", default="0")
    parser.add_argument("--decoders", default="splat,conv")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--pose-penalty",
        type=float,
        default=0.0,
        help="add this times mean(pose^2) to the loss (a prior centring the pose)",
    )
    args = parser.parse_args()
    if args.render_one:
        render_one(args.render_one, args.k)
        return
    if args.render:
        render_benchmark()
    if args.pose or not args.render:
        pose_benchmark(args)


if __name__ == "__main__":
    main()
