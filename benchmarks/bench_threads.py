"""Torch threads of a small fit: n_threads=1 vs None (torch's default) vs 2.

Times ``AffinityVAE(max_epochs=2).fit`` on 900 images of 28×28 (rotated
characters, ``make_alphanumeric(size=28)``) with ``n_threads`` 1, None and 2,
each fit in a fresh process (so None means torch's default at start-up, one
thread per core), after a warm-up fit on 64 images in that process (one-off
primitive creation excluded). The three settings are interleaved (1, None, 2,
1, None, 2, ...) so that they see the same machine load, under three
conditions:

* ``as is``: the machine as it is (other jobs may run; the load average is
  printed);
* ``busy``: two competing processes spin on the CPU (one per core of a 2-core
  machine; ``--busy`` sets how many) for the whole measurement;
* ``2 fits``: two fits of the same setting at once, as ``GridSearchCV(n_jobs=2)``
  runs them; the time is the slower of the two.

Reports, per condition and setting, the median, min and max wall seconds of
the fit and its process CPU seconds (all threads), and the median wall time
over that of ``n_threads=1``.

Run: python benchmarks/bench_threads.py [--repeats 3] [--quick]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import torch
from skavae import AffinityVAE
from skavae.datasets import make_alphanumeric
n, size, epochs, setting = (int(a) if a != "None" else None for a in sys.argv[1:5])
X, y = make_alphanumeric(n_samples=n, size=size, random_state=0)
kw = dict(max_epochs=epochs, validation_fraction=0.0, random_state=0)
AffinityVAE(**{**kw, "max_epochs": 1}, n_threads=setting).fit(X[:64], y[:64])
wall, cpu = time.perf_counter(), time.process_time()
AffinityVAE(**kw, n_threads=setting).fit(X, y)
print(json.dumps({"wall": time.perf_counter() - wall,
                  "cpu": time.process_time() - cpu,
                  "torch_default": torch.get_num_threads()}))
"""

SPIN = "while True: pass"
SETTINGS = (1, None, 2)


def _launch(args, setting):
    cmd = [sys.executable, "-W", "ignore", "-c", CHILD]
    cmd += [str(v) for v in (args.n, args.size, args.epochs, setting)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _result(proc):
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"a benchmark fit failed (exit status {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def measure(args, setting, fits=1):
    procs = [_launch(args, setting) for _ in range(fits)]
    results = [_result(p) for p in procs]
    return max(results, key=lambda r: r["wall"])


def condition(args, name):
    spinners = []
    if name == "busy":
        spinners = [
            subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)
        ]
    fits = 2 if name == "2 fits" else 1
    runs = {s: [] for s in SETTINGS}
    try:
        for _ in range(args.repeats):
            for setting in SETTINGS:
                r = measure(args, setting, fits)
                runs[setting].append(r)
                print(
                    f"  {name:7s} n_threads={str(setting):4s} "
                    f"wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s",
                    flush=True,
                )
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    return runs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=900)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--conditions", default="as is,busy,2 fits", help="comma-separated"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.n, args.size, args.epochs = 1, 128, 16, 1
    print(
        f"{os.cpu_count()} CPUs; fit of {args.n} images {args.size}x{args.size}, "
        f"{args.epochs} epochs; load average before: {os.getloadavg()[0]:.1f}"
    )
    table = []
    for name in args.conditions.split(","):
        start = time.perf_counter()
        runs = condition(args, name)
        base = statistics.median(r["wall"] for r in runs[1])
        for setting, rs in runs.items():
            walls = [r["wall"] for r in rs]
            table.append(
                (
                    name,
                    setting,
                    statistics.median(walls),
                    min(walls),
                    max(walls),
                    statistics.median(r["cpu"] for r in rs),
                    statistics.median(walls) / base,
                )
            )
        print(
            f"  ({name}: {time.perf_counter() - start:.0f} s; "
            f"load average {os.getloadavg()[0]:.1f})"
        )
    print(
        f"\n{'condition':9s} {'n_threads':>9s} {'median s':>8s} {'min s':>6s} "
        f"{'max s':>6s} {'CPU s':>6s} {'vs 1':>6s}"
    )
    for name, setting, med, lo, hi, cpu, ratio in table:
        print(
            f"{name:9s} {str(setting):>9s} {med:8.2f} {lo:6.2f} {hi:6.2f} "
            f"{cpu:6.2f} {ratio:5.2f}x"
        )


if __name__ == "__main__":
    main()
