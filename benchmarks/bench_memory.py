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

``--memmap`` measures instead ``fit`` (1 epoch) + ``transform`` of an
``np.memmap`` (.npy) stack of N volumes, at each N given (default 5 000 and
20 000): the peak of *anonymous* resident memory (``RssAnon``, sampled every
2 ms by a thread; the file pages of the memory map are the kernel's page
cache, not the process's) above the same process's ``RssAnon`` right after
its imports, with skavae returning the C heap's free pages
(``skavae._process.trim_heap``, every 16 batches of inference) and
without, interleaved, medians of ``--repeats`` runs, and the ratio of their
times (fit + transform).

Run: python benchmarks/bench_memory.py [--n 20000] [--keep]
     python benchmarks/bench_memory.py --memmap [--sizes 5000 20000]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

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
    model = AffinityVAE(
        n_threads=None, max_epochs=1, validation_fraction=0.0, random_state=0
    )
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


MEMMAP_CHILD = r"""
import json, sys, threading, time
import numpy as np, torch
from skavae import AffinityVAE


def anon():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("RssAnon"))


path, threads, trim = sys.argv[1], sys.argv[2], sys.argv[3]
torch.set_num_threads(int(threads))
if trim == "off":  # as before skavae returned the C heap's free pages
    import skavae._inference

    skavae._inference.trim_heap = lambda: None
X = np.load(path, mmap_mode="r")
base = anon()
peak = [base]
stop = threading.Event()


def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], anon())
        time.sleep(0.002)


thread = threading.Thread(target=sample, daemon=True)
thread.start()
t = time.perf_counter()
model = AffinityVAE(
    n_threads=None, max_epochs=1, validation_fraction=0.0, random_state=0
)
model.fit(X)
fit_peak = peak[0]
Z = model.transform(X)
stop.set()
thread.join()
peak[0] = max(peak[0], anon())
print(json.dumps({"base": base, "fit_peak": fit_peak, "peak": peak[0],
                  "seconds": time.perf_counter() - t}))
"""


def memmap_main(sizes, threads, repeats):
    from skavae.datasets import make_tetraminos

    folder = tempfile.mkdtemp(prefix="skavae-bench-memmap-")
    try:
        print(
            f"{'N':>6s} {'data GiB':>9s} {'heap':>9s} "
            f"{'fit peak above import':>24s} {'fit + transform':>16s} {'s':>6s}"
        )
        for n in sizes:
            path = os.path.join(folder, f"x{n}.npy")
            X = np.lib.format.open_memmap(
                path, mode="w+", dtype=np.float32, shape=(n, 32, 32, 32)
            )
            for start in range(0, n, 2000):
                m = min(2000, n - start)
                X[start : start + m] = make_tetraminos(n_samples=m, random_state=start)[
                    0
                ]
            X.flush()
            del X
            runs = {}
            for _ in range(repeats):  # interleaved: trimmed, untrimmed, ...
                for setting in ("trim", "off"):
                    out = subprocess.run(
                        [sys.executable, "-c", MEMMAP_CHILD, path, str(threads),
                         setting],
                        capture_output=True,
                        text=True,
                        check=True,
                    )  # fmt: skip
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    runs.setdefault(setting, []).append(r)
            for setting, rs in runs.items():
                fit = np.median([r["fit_peak"] - r["base"] for r in rs]) / 2**20
                both = np.median([r["peak"] - r["base"] for r in rs]) / 2**20
                seconds = np.median([r["seconds"] for r in rs])
                print(
                    f"{n:6d} {os.path.getsize(path) / 2**30:9.2f} {setting:>9s} "
                    f"{fit:20.0f} MiB {both:12.0f} MiB {seconds:6.1f}"
                )
            ratio = np.median([r["seconds"] for r in runs["trim"]]) / np.median(
                [r["seconds"] for r in runs["off"]]
            )
            print(f"{'':6s} time, trimmed / untrimmed: {ratio:.2f}")
            os.remove(path)
        base = r["base"] / 2**20
        print(f"(torch threads: {threads}; RssAnon after import: {base:.0f} MiB)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    parser.add_argument("--memmap", action="store_true", help="np.memmap, RssAnon")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="--memmap runs each")
    args = parser.parse_args()
    if args.memmap:
        return memmap_main(args.sizes, args.threads, args.repeats)
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
