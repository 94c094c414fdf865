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
GEMM rate (2048² matmul) measured in the same run, with the same threads.
``transpose-native`` is the same network as ``transpose`` run by torch's own
transposed-convolution kernel; ``transpose`` runs the same function (same
weights) as a kernel-2 convolution and a sub-pixel shuffle, and its rate is
counted in the FLOPs of the native function.

Part 2, accuracy per second (``--accuracy``): one fit per option of
``--epochs`` epochs, epochs interleaved across the options (warm start, one
epoch per call); after each epoch the held-out hard-KNN (k=5) accuracy; the
clock is the process CPU time of the training calls at one thread. Data
(``--data``): ``tetraminos``, rotated tetraminos 32³ (1600 train / 400 held
out, FSC class matrix) at the defaults; ``realistic``, the protein set of
``bench_realistic.py`` (SNR 0.1, ±60° wedge, CTF; 2400 / 600) with its
recipe at a constant learning rate, as in ``bench_time_to_accuracy.py``.
Contenders: each upsampling, and ``transpose+bf16`` (the default with
``precision="bf16"``). Reported: the best and final accuracy, CPU seconds per
epoch, the CPU seconds to reach ``--target`` and how much sooner than the
first contender.

``--bf16`` adds the default network under bfloat16 autocast (forward and
loss; weights and Adam in float32, as ``precision="bf16"``), ``--compile``
the default network under ``torch.compile`` (its first step, compilation
included, is printed).

Run: python benchmarks/bench_decoder.py [--threads 1] [--repeats 7]
     [--bf16] [--compile]
     python benchmarks/bench_decoder.py --accuracy [--data realistic]
     [--epochs 20] [--seeds 0] [--options transpose transpose+bf16 shuffle]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bench_time_to_accuracy as tta  # noqa: E402
from bench_training import flops_of, gemm_rate  # noqa: E402

from skavae import AffinityVAE  # noqa: E402
from skavae._losses import vae_loss  # noqa: E402
from skavae._network import AffinityVAENetwork  # noqa: E402
from skavae._training import make_optimizer  # noqa: E402

OPTIONS = ("transpose", "transpose2", "nearest", "shuffle")
#: part 1 also times torch's own transposed convolution (the kernel "transpose"
#: ran on before it was rewritten as a convolution and a sub-pixel shuffle)
SPEED_OPTIONS = ("transpose-native", *OPTIONS)
#: part 2: AffinityVAE settings by name (each upsampling; the default under
#: bfloat16 autocast)
CONTENDERS = {o: {"upsampling": o} for o in OPTIONS}
CONTENDERS["transpose+bf16"] = {"upsampling": "transpose", "precision": "bf16"}
FILTERS = (8, 16, 32, 64)


def make_step(shape, batch, upsampling, bf16=False, compiled=False):
    net = AffinityVAENetwork(shape, 8, 1, FILTERS, upsampling=upsampling)
    net = net.to(memory_format=net.memory_format)
    forward = torch.compile(net, dynamic=False) if compiled else net
    opt = make_optimizer(net.parameters(), 1e-3)  # AffinityVAE's Adam
    x = torch.randn(batch, 1, *shape)
    A = torch.rand(batch, batch)

    def step():
        net.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            x_hat, mu, log_var, _ = forward(x)
            x_hat, mu, log_var = x_hat.float(), mu.float(), log_var.float()
            loss, _ = vae_loss(x, x_hat, mu, log_var, 1.0, 2.0, A)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return net, step


def speed(args):
    gemm = gemm_rate()
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); float32 GEMM "
        f"(2048² matmul): {gemm / 1e9:.1f} GFLOP/s"
    )
    for shape, batch in (((64, 64), 128), ((32, 32, 32), 32)):
        steps, flops, params = {}, {}, {}
        for option in SPEED_OPTIONS:
            net, step = make_step(shape, batch, option)
            params[option] = sum(p.numel() for p in net.parameters())
            step()  # one-off primitive creation
            flops[option] = flops_of(step)
            steps[option] = step
        # "transpose" computes the function of "transpose-native" (plus a
        # one-voxel border): its rate is counted in that function's FLOPs, so
        # that the share of GEMM is work done, not work spent
        flops["transpose"] = flops["transpose-native"]
        rows = list(SPEED_OPTIONS)
        extra = []
        if args.bf16:  # the default network under bfloat16 autocast
            extra.append(("transpose, bf16", dict(bf16=True)))
        if args.compile:  # torch.compile of the default network
            extra.append(("transpose, compiled", dict(compiled=True)))
        for name, kw in extra:
            start = time.perf_counter()
            _, steps[name] = make_step(shape, batch, "transpose", **kw)
            steps[name]()
            print(f"{name}: first step {time.perf_counter() - start:.1f} s")
            flops[name], params[name] = flops["transpose"], params["transpose"]
            rows.append(name)
        times = {o: [] for o in rows}
        for _ in range(args.repeats):
            for option in rows:
                t = time.perf_counter()
                steps[option]()
                times[option].append(time.perf_counter() - t)
        print(f"\n{'x'.join(map(str, shape))}, batch {batch}")
        print(
            f"{'upsampling':>19s} {'params':>8s} {'MFLOP/sample':>12s} "
            f"{'samples/s':>9s} {'vs default':>10s} {'GFLOP/s':>8s} {'of GEMM':>7s}"
        )
        base = statistics.median(times["transpose-native"])
        for option in rows:
            t = statistics.median(times[option])
            rate = flops[option] / t
            print(
                f"{option:>19s} {params[option]:8d} "
                f"{flops[option] / batch / 1e6:12.1f} {batch / t:9.0f} "
                f"{base / t:9.2f}x {rate / 1e9:8.1f} {rate / gemm:7.1%}"
            )


#: part 2's data sets: the builders of bench_time_to_accuracy.py, its sizes
DATASETS = {
    "tetraminos": lambda seed: tta.tetraminos(2000, seed),
    "realistic": lambda seed: tta.realistic(3000, seed),
}


def accuracy(args):
    clock = time.process_time
    options = args.options
    for seed in args.seeds:
        (Xtr, Xte, ytr, yte), A, params = DATASETS[args.data](seed)
        params = dict(affinity=A, validation_fraction=0.0, max_epochs=1, **params)
        models = {
            o: AffinityVAE(warm_start=True, **CONTENDERS[o], **params) for o in options
        }
        for o in options:  # warm up: one-off primitive creation
            AffinityVAE(**CONTENDERS[o], **params).fit(Xtr[:64], ytr[:64])
        curves = {o: [(0.0, 0.0)] for o in options}
        spent = dict.fromkeys(options, 0.0)
        for epoch in range(1, args.epochs + 1):
            for o in options:
                t = clock()
                models[o].set_params(random_state=1000 * seed + epoch).fit(Xtr, ytr)
                spent[o] += clock() - t
                m = models[o]
                acc = tta.knn_accuracy(m.transform(Xtr), ytr, m.transform(Xte), yte)
                curves[o].append((spent[o], acc))
                print(
                    f"  seed {seed} {o:14s} epoch {epoch:3d} "
                    f"cpu={spent[o]:7.1f}s acc={acc:.3f}",
                    flush=True,
                )
        print(f"\n{args.data} 32³, seed {seed}, {args.epochs} epochs, 1 thread")
        print(
            f"{'contender':>14s} {'best':>6s} {'final':>6s} {'CPU s/epoch':>11s} "
            f"{'to ' + str(args.target):>8s} {'sooner':>7s}"
        )

        base = tta.time_to(curves[options[0]], args.target)
        for o in options:
            t = tta.time_to(curves[o], args.target)
            print(
                f"{o:>14s} {max(a for _, a in curves[o]):6.3f} {curves[o][-1][1]:6.3f} "
                f"{spent[o] / args.epochs:11.2f} "
                f"{'never' if np.isnan(t) else f'{t:.1f}s':>8s} {base / t:6.2f}x"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument(
        "--bf16", action="store_true", help="part 1: also the default under bf16"
    )
    parser.add_argument(
        "--compile", action="store_true", help="part 1: also torch.compile of it"
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--data", choices=list(DATASETS), default="tetraminos")
    parser.add_argument(
        "--options",
        nargs="+",
        choices=list(CONTENDERS),
        default=list(CONTENDERS),
        help="part 2's contenders (the first is the reference of 'sooner')",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.accuracy:
        accuracy(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
