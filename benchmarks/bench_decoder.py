"""The conv decoder's upsampling, by step speed and by accuracy per second.

Four ways for a decoder stage to double the spatial size
(``AffinityVAE(upsampling=...)``): ``transpose`` (transposed convolution,
kernel 4, stride 2: the default), ``transpose2`` (kernel 2, stride 2),
``nearest`` (nearest-neighbour upsampling, then a kernel-3 convolution) and
``shuffle`` (a kernel-3 convolution to 2**ndim times the channels at the low
resolution, then sub-pixel rearrangement).

Part 1, step speed: whole optimiser steps (forward, loss with the affinity
term, backward, Adam) of the default network (filters 8-16-32-64, batch norm,
8 latent dimensions, 1 pose) with each upsampling, on 64² images (batch 128)
and 32³ volumes (batch 32); the options' steps are interleaved, median of
``--repeats``. The FLOPs of one step are counted with torch's
FlopCounterMode and the achieved rate is reported as a share of the float32
GEMM rate (2048² matmul) measured in the same run, with the same threads. Also
the share of the step spent in the decoder's convolutions (torch profiler).

Part 2, accuracy per second (``--accuracy``): rotated tetraminos 32³ (1600
train / 400 held out, FSC class matrix), one fit per option of ``--epochs``
epochs at the defaults, epochs interleaved across the options (warm start, one
epoch per call); after each epoch the held-out hard-KNN (k=5) accuracy; the
clock is the process CPU time of the training calls at one thread. Reported:
the best accuracy, the CPU seconds to reach ``--target`` and the ratio to the
default's.

Run: python benchmarks/bench_decoder.py [--threads 1] [--repeats 7]
     [--accuracy] [--epochs 20] [--seeds 0]
"""

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from skavae import AffinityVAE
from skavae._losses import vae_loss
from skavae._network import AffinityVAENetwork
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import make_tetraminos

OPTIONS = ("transpose", "transpose2", "nearest", "shuffle")
FILTERS = (8, 16, 32, 64)


def gemm_rate(n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times)


def make_step(shape, batch, upsampling):
    net = AffinityVAENetwork(shape, 8, 1, FILTERS, upsampling=upsampling)
    net = net.to(memory_format=net.memory_format)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(batch, 1, *shape)
    A = torch.rand(batch, batch)

    def step():
        net.train()
        x_hat, mu, log_var, _ = net(x)
        loss, _ = vae_loss(x, x_hat, mu, log_var, 1.0, 2.0, A)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return net, step


def decoder_share(step):
    """Share of the step's CPU time in convolution ops of any kind."""
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(
        e.self_cpu_time_total
        for e in events
        if "convolution" in e.key or "conv" in e.key.split("::")[-1]
    )
    return conv / total


def speed(args):
    gemm = gemm_rate()
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); float32 GEMM "
        f"(2048² matmul): {gemm / 1e9:.1f} GFLOP/s"
    )
    for shape, batch in (((64, 64), 128), ((32, 32, 32), 32)):
        steps, flops, params = {}, {}, {}
        for option in OPTIONS:
            net, step = make_step(shape, batch, option)
            params[option] = sum(p.numel() for p in net.parameters())
            step()  # one-off primitive creation
            with FlopCounterMode(display=False) as counter:
                step()
            flops[option] = counter.get_total_flops()
            steps[option] = step
        times = {o: [] for o in OPTIONS}
        for _ in range(args.repeats):
            for option in OPTIONS:
                t = time.perf_counter()
                steps[option]()
                times[option].append(time.perf_counter() - t)
        print(f"\n{'x'.join(map(str, shape))}, batch {batch}")
        print(
            f"{'upsampling':>11s} {'params':>8s} {'MFLOP/sample':>12s} "
            f"{'samples/s':>9s} {'vs default':>10s} {'GFLOP/s':>8s} {'of GEMM':>7s}"
        )
        base = statistics.median(times["transpose"])
        for option in OPTIONS:
            t = statistics.median(times[option])
            rate = flops[option] / t
            print(
                f"{option:>11s} {params[option]:8d} "
                f"{flops[option] / batch / 1e6:12.1f} {batch / t:9.0f} "
                f"{base / t:9.2f}x {rate / 1e9:8.1f} {rate / gemm:7.1%}"
            )


def accuracy(args):
    clock = time.process_time
    for seed in args.seeds:
        X, y, _, templ = make_tetraminos(
            n_samples=2000, random_state=seed, return_info=True
        )
        A = class_affinity_matrix(metric=FSCAffinity(), templates=templ)
        Xtr, Xte, ytr, yte = train_test_split(
            X, y, test_size=0.2, stratify=y, random_state=seed
        )
        models = {
            o: AffinityVAE(
                affinity=A,
                upsampling=o,
                warm_start=True,
                validation_fraction=0.0,
                max_epochs=1,
            )
            for o in OPTIONS
        }
        for o in OPTIONS:  # warm up: one-off primitive creation
            AffinityVAE(affinity=A, upsampling=o, max_epochs=1).fit(Xtr[:64], ytr[:64])
        curves = {o: [(0.0, 0.0)] for o in OPTIONS}
        spent = dict.fromkeys(OPTIONS, 0.0)
        for epoch in range(1, args.epochs + 1):
            for o in OPTIONS:
                t = clock()
                models[o].set_params(random_state=1000 * seed + epoch).fit(Xtr, ytr)
                spent[o] += clock() - t
                m = models[o]
                acc = float(
                    KNeighborsClassifier(5)
                    .fit(m.transform(Xtr), ytr)
                    .score(m.transform(Xte), yte)
                )
                curves[o].append((spent[o], acc))
                print(
                    f"  seed {seed} {o:10s} epoch {epoch:3d} "
                    f"cpu={spent[o]:7.1f}s acc={acc:.3f}",
                    flush=True,
                )
        print(f"\ntetraminos 32³, seed {seed}, {args.epochs} epochs, 1 thread")
        print(
            f"{'upsampling':>11s} {'best':>6s} {'final':>6s} {'CPU s/epoch':>11s} "
            f"{'to ' + str(args.target):>8s} {'sooner':>7s}"
        )

        def time_to(curve):
            return min((t for t, a in curve if a >= args.target), default=np.nan)

        base = time_to(curves["transpose"])
        for o in OPTIONS:
            t = time_to(curves[o])
            print(
                f"{o:>11s} {max(a for _, a in curves[o]):6.3f} {curves[o][-1][1]:6.3f} "
                f"{spent[o] / args.epochs:11.2f} "
                f"{'never' if np.isnan(t) else f'{t:.1f}s':>8s} {base / t:6.2f}x"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--target", type=float, default=0.9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.accuracy:
        accuracy(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
