"""Peak memory of fit on a memory-mapped .mrc folder larger than what it keeps.

Writes N tetramino volumes of 32³ as .mrc files (default 20 000: 2.6 GB of
float32 data), then, in fresh subprocesses, measures the peak resident memory
(``VmHWM`` of /proc/self/status) of:

* ``import`` only (torch, skavae) — the baseline of every process;
* ``load_mrc_folder`` + ``AffinityVAE.fit`` (1 epoch) + ``transform`` streaming
  the folder from disk;
* ``class_affinity_matrix`` with ``FSCAffinity`` on 16 sampled members per class
  (the class-level matrix ``fit`` builds from a metric);

and reports each peak above the import baseline next to the size of the data.

Run: python benchmarks/bench_memory.py [--n 20000] [--keep]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(2)
from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import load_mrc_folder
mode, folder = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if mode == "fit":
    X, y = load_mrc_folder(folder)
    model = AffinityVAE(max_epochs=1, validation_fraction=0.0, random_state=0)
    model.fit(X, y)
    Z = model.transform(X)
elif mode == "affinity":
    X, y = load_mrc_folder(folder)
    A = class_affinity_matrix(X, y, FSCAffinity(), n_per_class=16, random_state=0)
# VmHWM: this process's peak resident set (ru_maxrss would keep the parent's
# peak across fork/exec)
with open("/proc/self/status") as fh:
    peak = next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmHWM"))
print(json.dumps({"peak": peak, "seconds": time.perf_counter() - t}))
"""


def child(mode, folder):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, folder],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--keep", action="store_true", help="keep the folder")
    args = parser.parse_args()
    from skavae.datasets import make_tetraminos, save_mrc_folder

    folder = tempfile.mkdtemp(prefix="skavae-bench-memory-")
    try:
        t = time.perf_counter()
        for start in range(0, args.n, 2000):  # generate and write in chunks
            n = min(2000, args.n - start)
            X, y = make_tetraminos(n_samples=n, random_state=start)
            chunk = os.path.join(folder, "chunk")
            paths = save_mrc_folder(X, y, chunk)
            for i, (path, label) in enumerate(zip(paths, y)):
                os.replace(path, os.path.join(folder, f"{label}_{start + i:06d}.mrc"))
            os.rmdir(chunk)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(
            f"{args.n} volumes of 32^3 written in {time.perf_counter() - t:.0f} s; "
            f"{size / 2**30:.2f} GiB on disk"
        )
        base = child("import", folder)["peak"]
        print(f"{'step':34s} {'peak RSS above import':>22s} {'of data':>8s} {'s':>6s}")
        for mode, name in (
            ("fit", "fit (1 epoch) + transform"),
            ("affinity", "class_affinity_matrix (FSC)"),
        ):
            r = child(mode, folder)
            extra = r["peak"] - base
            print(
                f"{name:34s} {extra / 2**20:19.0f} MiB {extra / size:8.1%} "
                f"{r['seconds']:6.0f}"
            )
        print(f"(import alone: {base / 2**20:.0f} MiB)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
