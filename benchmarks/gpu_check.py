"""One prepared GPU check: throughput, autocast, time to accuracy, GPU vs CPU.

On a CUDA machine, measures in one run and prints one table:

* **training throughput** (samples/s of whole optimiser steps: forward, loss
  with the affinity term, backward, Adam) of ``AffinityVAENetwork`` at its
  default filters, 2D 64² (batch 128) and 3D 32³ (batch 32 and 128), in float32,
  bf16 autocast and fp16 autocast (with a gradient scaler), on the GPU and, in
  float32 on all CPU threads, on the CPU of the same machine;
* **time to hard-KNN 0.90** (k=5, 20 % held out) on rotated tetraminos 32³ with
  the class-level FSC affinity of the templates: ``AffinityVAE`` defaults
  trained one epoch at a time (``warm_start``), training seconds counted, on
  the GPU (``precision="float32"`` and ``"bf16"``) and on the CPU;
* the GPU-vs-CPU ratio of each.

Without CUDA it says so and exits with status 0 (nothing measured).
``--dry-run`` runs every step on the CPU with tiny sizes, to check that the
script works before it is run on a GPU machine; its figures mean nothing.

Run: python benchmarks/gpu_check.py [--budget 60] [--steps 20] [--dry-run]
"""

import argparse
import contextlib
import statistics
import sys
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skavae import AffinityVAE
from skavae._losses import vae_loss
from skavae._network import AffinityVAENetwork
from skavae._training import make_optimizer
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import make_tetraminos

PRECISIONS = ("fp32", "bf16", "fp16")
FILTERS = (8, 16, 32, 64)  # AffinityVAE's default
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(shape, batch, device, precision, steps, filters, warmup=3):
    """Median samples/s of ``steps`` training steps (after ``warmup`` steps)."""
    torch.manual_seed(0)
    net = AffinityVAENetwork(shape, 8, 1, filters).to(device)
    opt = make_optimizer(net.parameters(), 1e-3)  # AffinityVAE's Adam
    x = torch.randn(batch, 1, *shape, device=device)
    A = torch.rand(batch, batch, device=device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    cast = (
        torch.autocast(device.type, dtype=_AUTOCAST[precision])
        if precision in _AUTOCAST
        else contextlib.nullcontext()
    )
    net.train()

    def step():
        with cast:
            x_hat, mu, log_var, _ = net(x)
            loss, _ = vae_loss(
                x, x_hat.float(), mu.float(), log_var.float(), 1.0, 2.0, A
            )
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def time_to_accuracy(data, device, precision, target, budget, filters):
    """Training seconds until hard-KNN accuracy >= target (nan if not reached)."""
    Xtr, Xte, ytr, yte, A = data
    model = AffinityVAE(
        affinity=A,
        warm_start=True,
        validation_fraction=0.0,
        max_epochs=1,
        filters=filters,
        device=device.type,
        precision=precision,
        random_state=0,
    )
    model.fit(Xtr[:64], ytr[:64])  # warm-up: one-off kernel selection, not timed
    model = AffinityVAE(**model.get_params())
    spent, epoch, best = 0.0, 0, 0.0
    while spent < budget:
        epoch += 1
        _sync(device)
        t = time.perf_counter()
        model.set_params(random_state=epoch).fit(Xtr, ytr)
        _sync(device)
        spent += time.perf_counter() - t
        knn = KNeighborsClassifier(5).fit(model.transform(Xtr), ytr)
        best = max(best, float(knn.score(model.transform(Xte), yte)))
        if best >= target:
            return spent, epoch, best
    return float("nan"), epoch, best


def tetraminos(n, size=32):
    X, y, _, templates = make_tetraminos(
        n_samples=n, size=size, random_state=0, return_info=True
    )
    A = class_affinity_matrix(metric=FSCAffinity(), templates=templates)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    return Xtr, Xte, ytr, yte, A


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--budget", type=float, default=60.0, help="s per run")
    parser.add_argument("--target", type=float, default=0.90, help="KNN accuracy")
    parser.add_argument("--n", type=int, default=2000, help="tetraminos")
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny sizes on the CPU (a smoke test)"
    )
    args = parser.parse_args(argv)
    filters = FILTERS
    cases = [((64, 64), 128), ((32, 32, 32), 32), ((32, 32, 32), 128)]
    if args.dry_run:
        gpu = torch.device("cpu")
        filters = (4, 8)
        cases = [((16, 16), 8), ((8, 8, 8), 4)]
        args.steps, args.budget, args.n, args.target = 2, 2.0, 120, 0.0
        print("dry run: tiny sizes, the 'GPU' columns run on the CPU")
    elif not torch.cuda.is_available():
        print(
            "No CUDA device: nothing measured. Run this on a machine with a GPU "
            "(or with --dry-run to check the script on the CPU)."
        )
        return 0
    else:
        gpu = torch.device("cuda")
        print(f"GPU: {torch.cuda.get_device_name(gpu)}")
    cpu = torch.device("cpu")
    print(
        f"torch {torch.__version__}; CPU: {torch.get_num_threads()} threads; "
        f"{args.steps} timed steps per case (median)"
    )
    rows = []
    for shape, batch in cases:
        name = "x".join(map(str, shape))
        cpu_rate = throughput(
            shape, batch, cpu, "fp32", max(2, args.steps // 4), filters
        )
        for precision in PRECISIONS:
            if precision == "bf16" and gpu.type == "cuda":
                if not torch.cuda.is_bf16_supported():
                    rows.append((f"train {name} b{batch}", precision, "-", "-", "-"))
                    continue
            rate = throughput(shape, batch, gpu, precision, args.steps, filters)
            rows.append(
                (
                    f"train {name} b{batch}",
                    precision,
                    f"{rate:.0f} samples/s",
                    f"{cpu_rate:.0f} samples/s" if precision == "fp32" else "",
                    f"{rate / cpu_rate:.1f}x",
                )
            )
            print("  " + " | ".join(rows[-1]), flush=True)
    data = tetraminos(args.n, 16 if args.dry_run else 32)
    cpu_t, cpu_epochs, cpu_best = time_to_accuracy(
        data, cpu, "float32", args.target, args.budget, filters
    )
    for precision in ("float32", "bf16"):
        t, epochs, best = time_to_accuracy(
            data, gpu, precision, args.target, args.budget, filters
        )
        rows.append(
            (
                f"s to KNN {args.target:.2f}, tetraminos 32^3",
                "fp32" if precision == "float32" else precision,
                f"{t:.1f} s ({epochs} ep, best {best:.3f})",
                f"{cpu_t:.1f} s ({cpu_epochs} ep, best {cpu_best:.3f})",
                f"{cpu_t / t:.1f}x" if np.isfinite(t) and np.isfinite(cpu_t) else "-",
            )
        )
        print("  " + " | ".join(rows[-1]), flush=True)
    head = ("measure", "precision", "GPU", "CPU (fp32)", "GPU vs CPU")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    print()
    for r in [head, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(f"{c:{w}s}" for c, w in zip(r, widths)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
