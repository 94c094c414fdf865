"""Speed and memory of the all-pairs affinity metrics.

For N = 200, 1000 and 2000 volumes of 32³ and 500 images of 64², times the
all-pairs ``FSCAffinity()(X)`` (default resolution cut, and all shells up to
Nyquist) and compares it with a per-pair reference loop: for each pair, the
full FFT of both objects and the shell sums (``np.bincount`` over precomputed
shell labels), as one would write FSC for two maps. The loop is timed (CPU
time, best of 5 batches) on a random sample of pairs and extrapolated to all
``N (N - 1) / 2`` pairs; its values on the sample are checked against the
all-pairs matrix. SOAP rows time
``SOAPAffinity()`` on the generated characters and tetraminos when
:mod:`skavae.datasets` provides them.

All-pairs times are the best of 3 runs, as wall-clock seconds and as CPU
seconds summed over threads (the latter is robust to other processes sharing
the cores); the speed-up compares CPU seconds, the per-pair loop being
single-threaded. Peak memory is the largest amount of
memory allocated through numpy (and Python) during one call, measured with
:mod:`tracemalloc` in a separate run; the input array is not included.

Run::

    python benchmarks/bench_affinity.py            # full table
    python benchmarks/bench_affinity.py --quick    # small sizes, a smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc

import numpy as np
import scipy
import scipy.fft

from skavae.affinity import FSCAffinity, SOAPAffinity


def reference_fsc_pair(x, y, shell, counts, max_shell):
    """Per-pair FSC: full FFTs, per-shell sums, count-weighted mean."""
    fx = scipy.fft.fftn(x).ravel()
    fy = scipy.fft.fftn(y).ravel()
    n_bins = max_shell + 1
    num = np.bincount(shell, weights=(fx * np.conj(fy)).real, minlength=n_bins)
    pxx = np.bincount(shell, weights=(fx * np.conj(fx)).real, minlength=n_bins)
    pyy = np.bincount(shell, weights=(fy * np.conj(fy)).real, minlength=n_bins)
    k = slice(1, max_shell + 1)
    fsc = num[k] / np.sqrt(pxx[k] * pyy[k])
    return float(np.sum(counts[k] * fsc) / np.sum(counts[k]))


def shell_labels(shape, max_shell):
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    radius = np.sqrt(sum(f**2 for f in freqs))
    shell = np.rint(radius * min(shape)).astype(np.int64).ravel()
    shell[shell > max_shell] = max_shell + 1  # dropped bin
    counts = np.bincount(shell, minlength=max_shell + 2).astype(float)
    return shell, counts


def time_call(fn, repeat=1):
    """Best wall-clock and best CPU (all threads) seconds over ``repeat`` runs."""
    best, best_cpu = np.inf, np.inf
    out = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu, out


def peak_mib(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def bench_fsc(X, label, metric, max_shell, n_pairs, rng):
    n = len(X)
    seconds, cpu, S = time_call(lambda: metric(X), repeat=3)
    mem = peak_mib(lambda: metric(X))
    # per-pair reference on a sample of distinct pairs
    shell, counts = shell_labels(X.shape[1:], max_shell)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n
    Xd = np.asarray(X, dtype=np.float64)
    reference_fsc_pair(Xd[0], Xd[1], shell, counts, max_shell)  # warm-up
    # CPU time, best of 5 batches of pairs (robust to processes sharing the cores)
    ref, per_pair = [], np.inf
    for batch in np.array_split(np.arange(n_pairs), 5):
        t0 = time.process_time()
        ref += [
            reference_fsc_pair(Xd[i[k]], Xd[j[k]], shell, counts, max_shell)
            for k in batch
        ]
        per_pair = min(per_pair, (time.process_time() - t0) / len(batch))
    ref = np.array(ref)
    loop_all = per_pair * n * (n - 1) / 2
    err = float(np.abs(ref - S[i, j]).max())
    return {
        "case": label,
        "metric": repr(metric),
        "seconds": seconds,
        "peak_mib": mem,
        "cpu": cpu,
        "loop_s": loop_all,
        "ratio": loop_all / cpu,
        "max_err": err,
    }


def bench_plain(X, label, metric):
    seconds, cpu, _ = time_call(lambda: metric(X), repeat=3)
    mem = peak_mib(lambda: metric(X))
    return {
        "case": label,
        "metric": repr(metric),
        "seconds": seconds,
        "peak_mib": mem,
        "cpu": cpu,
        "loop_s": np.nan,
        "ratio": np.nan,
        "max_err": np.nan,
    }


def smooth_random(n, shape, rng):
    """Random float32 objects (FSC's cost does not depend on the content)."""
    return rng.standard_normal((n, *shape), dtype=np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--pairs", type=int, default=200, help="sampled pairs")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    sizes = [50, 100] if args.quick else [200, 1000, 2000]
    n_images = 100 if args.quick else 500
    rows = []

    vols = smooth_random(max(sizes), (32, 32, 32), rng)
    for n in sizes:
        X = vols[:n]
        rows.append(bench_fsc(X, f"{n} x 32^3", FSCAffinity(), 8, args.pairs, rng))
        rows.append(
            bench_fsc(
                X, f"{n} x 32^3", FSCAffinity(resolution=2.0), 16, args.pairs, rng
            )
        )
    del vols
    imgs = smooth_random(n_images, (64, 64), rng)
    rows.append(
        bench_fsc(imgs, f"{n_images} x 64^2", FSCAffinity(), 16, args.pairs, rng)
    )
    rows.append(
        bench_fsc(
            imgs, f"{n_images} x 64^2", FSCAffinity(resolution=2.0), 32, args.pairs, rng
        )
    )

    try:
        from skavae.datasets import make_alphanumeric

        chars, _ = make_alphanumeric(
            n_images, characters="all", binarize=True, random_state=0
        )
        rows.append(bench_plain(chars, f"{n_images} chars 64^2", SOAPAffinity()))
    except ImportError:
        pass
    try:
        from skavae.datasets import make_tetraminos

        n_tet = 50 if args.quick else 200
        tets, _ = make_tetraminos(n_tet, random_state=0)
        rows.append(bench_plain(tets, f"{n_tet} tetraminos 32^3", SOAPAffinity()))
    except ImportError:
        pass

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, {os.cpu_count()} CPU cores, "
        f"{args.pairs} sampled pairs for the per-pair loop; 1-min load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    header = (
        f"| {'objects':<20} | {'metric':<28} | {'wall s':>6} | {'CPU s':>6} | "
        f"{'peak MiB':>8} | {'loop CPU s (extrap.)':>20} | {'speed-up':>8} | "
        f"{'max abs diff':>12} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        loop = "-" if np.isnan(r["loop_s"]) else f"{r['loop_s']:.1f}"
        ratio = "-" if np.isnan(r["ratio"]) else f"{r['ratio']:.0f}x"
        err = "-" if np.isnan(r["max_err"]) else f"{r['max_err']:.1e}"
        print(
            f"| {r['case']:<20} | {r['metric']:<28} | {r['seconds']:>6.2f} | "
            f"{r['cpu']:>6.2f} | {r['peak_mib']:>8.0f} | {loop:>20} | {ratio:>8} | "
            f"{err:>12} |"
        )
    return rows


if __name__ == "__main__":
    main()
