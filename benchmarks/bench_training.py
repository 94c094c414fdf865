"""Training and transform throughput: ours vs the reference default model.

For each shape (64² images, 32³ and 64³ volumes) and each model, times whole
optimiser steps (forward, loss with the affinity term, backward, Adam) and
``transform`` batches on the same random data, alternating the two models
step by step so both see the same machine load; reports the median samples/s
and the ratio. Both steps are the same loop (network forward, the model's own
loss, backward, Adam), each with its own network and loss.

Also counts the FLOPs of one training step of ours (torch's FlopCounterMode)
and reports the achieved FLOP/s as a fraction of the machine's float32 GEMM
rate, measured in the same run with torch.matmul of 2048² matrices.

Run: python benchmarks/bench_training.py [--threads 2] [--repeats 5]
"""

import argparse
import os
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(__file__))
from _baseline import ReferenceVAE, reference_loss  # noqa: E402

from skavae._losses import vae_loss  # noqa: E402
from skavae._network import AffinityVAENetwork  # noqa: E402
from skavae._training import make_optimizer  # noqa: E402

FILTERS = (8, 16, 32, 64)  # AffinityVAE's default


def gemm_rate(n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def ours_step(shape, batch):
    net = AffinityVAENetwork(shape, 8, 1, FILTERS)
    net = net.to(memory_format=net.memory_format)  # as AffinityVAE does
    opt = make_optimizer(net.parameters(), 1e-3)  # AffinityVAE's Adam
    x = torch.randn(batch, 1, *shape)
    A = torch.rand(batch, batch)

    def step():
        net.train()
        x_hat, mu, log_var, _ = net(x)
        loss, _ = vae_loss(x, x_hat, mu, log_var, 1.0, 2.0, A)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def encode():
        net.eval()
        net.encode(x)

    return step, encode


def base_step(shape, batch):
    net = ReferenceVAE(shape)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(batch, 1, *shape)
    A = torch.rand(batch, batch)

    def step():
        net.train()
        x_hat, mu, log_var, _ = net(x)
        loss = reference_loss(x, x_hat, mu, log_var, A)
        opt.zero_grad()
        loss.backward()
        opt.step()

    @torch.no_grad()
    def encode():
        net.eval()
        net.encode(x)

    return step, encode


def flops_of(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [((64, 64), 128), ((32, 32, 32), 32), ((64, 64, 64), 16)]
    if args.quick:
        cases = [((32, 32), 32), ((16, 16, 16), 8)]
    gemm = gemm_rate()
    print(
        f"torch {torch.__version__}, {args.threads} threads; float32 GEMM "
        f"(2048^2 matmul): {gemm / 1e9:.1f} GFLOP/s"
    )
    print(
        f"{'shape':10s} {'batch':>5s} {'train ours':>10s} {'train base':>10s} "
        f"{'ratio':>6s} {'transform ours':>14s} {'transform base':>14s} "
        f"{'ratio':>6s} {'GFLOP/step':>10s} {'of GEMM':>7s}"
    )
    for shape, batch in cases:
        o_step, o_enc = ours_step(shape, batch)
        b_step, b_enc = base_step(shape, batch)
        for fn in (o_step, b_step, o_enc, b_enc):
            fn()  # warm up (allocator, oneDNN primitives)
        times = {k: [] for k in ("o", "b", "oe", "be")}
        for _ in range(args.repeats):
            times["o"].append(_timed(o_step))
            times["b"].append(_timed(b_step))
            times["oe"].append(_timed(o_enc))
            times["be"].append(_timed(b_enc))
        rate = {k: batch / statistics.median(v) for k, v in times.items()}
        flops = flops_of(o_step)
        achieved = flops * rate["o"] / batch
        name = "x".join(map(str, shape))
        print(
            f"{name:10s} {batch:5d} {rate['o']:10.0f} {rate['b']:10.0f} "
            f"{rate['o'] / rate['b']:5.1f}x {rate['oe']:14.0f} {rate['be']:14.0f} "
            f"{rate['oe'] / rate['be']:5.1f}x {flops / 1e9:10.2f} "
            f"{achieved / gemm:7.1%}",
            flush=True,
        )


if __name__ == "__main__":
    main()
