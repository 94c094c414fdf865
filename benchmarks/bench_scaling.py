"""Samples per second of a data-parallel fit: 1 vs N processes (gloo, CPU).

Run: ``python benchmarks/bench_scaling.py [--n N] [--epochs E] [--procs P]``.
Each process uses one torch thread; the timing includes spawning the workers,
so it is measured over several epochs and the first (warm-up) epoch is left
out using the per-epoch ``history_["seconds"]`` of rank 0.
"""

import argparse

import numpy as np

from skavae import AffinityVAE
from skavae.distributed import fit


def samples_per_second(model, n_train):
    seconds = model.history_["seconds"].to_numpy()[1:]  # skip the warm-up epoch
    return n_train * len(seconds) / seconds.sum()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--procs", type=int, default=2)
    args = parser.parse_args()
    X = np.random.RandomState(0).rand(args.n, args.size, args.size)
    X = X.astype(np.float32)
    vae = AffinityVAE(
        latent_dims=4,
        max_epochs=args.epochs,
        batch_size=64,
        validation_fraction=0.0,
        batch_norm=False,
        n_threads=1,
        device="cpu",
        random_state=0,
    )
    one = samples_per_second(vae.fit(X), args.n)
    many = samples_per_second(fit(vae, X, n_procs=args.procs), args.n)
    print(f"1 process: {one:.0f} samples/s")
    print(f"{args.procs} processes: {many:.0f} samples/s")
    print(f"ratio: {many / one:.2f}")


if __name__ == "__main__":
    main()
