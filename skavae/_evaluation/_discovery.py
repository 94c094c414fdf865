"""``discover_clusters``: candidate new classes among the samples called unknown."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.cluster import HDBSCAN
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_array

from skavae._checks import Count, check_seed
from skavae._evaluation._latents import check_labels


def _reference_sample(codes, n_classes, n_per_class, random_state):
    """Indices of at most ``n_per_class`` random samples of every class."""
    rng = check_seed(random_state)
    picked = [
        rng.permutation(np.flatnonzero(codes == k))[:n_per_class]
        for k in range(n_classes)
    ]
    return np.sort(np.concatenate(picked))


@validate_params(
    {
        "min_cluster_size": [Count(2)],
        "min_samples": [None, Count(1)],
        "n_reference": [Count(0)],
        "n_nearest": [Count(1)],
    },
    prefer_skip_nested_validation=True,
)
def discover_clusters(
    Z_unknown,
    Z_seen,
    y_seen,
    *,
    min_cluster_size=15,
    min_samples=None,
    n_reference=30,
    n_nearest=2,
    return_labels=False,
    random_state=0,
):
    """Cluster the samples called unknown into candidate new classes.

    The latents of the samples an open-set classifier called unknown (e.g.
    :class:`ConformalOpenSetClassifier`) are clustered with
    :class:`~sklearn.cluster.HDBSCAN`, which chooses the number of clusters,
    finds clusters of any shape and density and leaves isolated samples out
    as noise. The clustering also sees a few (``n_reference``) latents of
    every seen class: they give the hierarchy of clusters more than one
    branch, so that a single new class can be selected (HDBSCAN never selects
    the root, the set of all samples), and they draw unknowns that are only
    outliers of a seen class into that class's cluster. A cluster is a
    *candidate new class* when it holds more unknowns than latents of any
    single seen class. Each candidate is reported with its size and its
    nearest seen classes (distance from its centre, the mean latent of its
    unknowns, to the seen class centres).

    Parameters
    ----------
    Z_unknown : array-like of shape (n_samples, n_dims)
        Latents of the samples called unknown.
    Z_seen : array-like of shape (n_seen, n_dims)
        Latents of the seen classes (e.g. the training latents); their class
        means are the seen centres.
    y_seen : array-like of shape (n_seen,)
        Labels of ``Z_seen``.
    min_cluster_size : int, default=15
        Smallest group of samples that counts as a cluster (HDBSCAN's
        parameter of the same name, at least 2).
    min_samples : int, default=None
        HDBSCAN's density parameter; None means ``min_cluster_size``. Larger
        values call more samples noise.
    n_reference : int, default=30
        Seen latents per class (drawn at random) clustered with the unknowns.
        Measured on the maps of ``benchmarks/bench_openset.py`` (tetraminos
        and proteins, three seeds each): 30 gave every unseen class as one
        candidate and no false one; 0 (the unknowns alone) lost the single
        new tetramino shape to noise or split it, 15 once let seen outliers
        pass as a candidate, and 100 once let a seen class absorb most of the
        new shape.
    n_nearest : int, default=2
        Number of nearest seen classes reported per candidate (capped at the
        number of seen classes).
    return_labels : bool, default=False
        Also return the candidate cluster of every unknown.
    random_state : int, RandomState instance or None, default=0
        Controls the choice of the seen latents.

    Returns
    -------
    clusters : pandas.DataFrame
        One row per candidate new class, largest first (index ``cluster``:
        0, 1, ...), with columns ``size`` (unknowns in it), ``fraction`` (of
        all unknowns), ``n_seen`` (seen latents in the same cluster: the new
        class is connected on the map to the seen classes listed in
        ``seen_in_cluster``), ``seen_in_cluster`` (those classes, most
        latents first, comma-separated), ``spread`` (root-mean-square distance
        of its unknowns to their centre), and ``nearest_1``, ``distance_1``,
        ``nearest_2``, ``distance_2``, ... (seen classes by increasing centre
        distance; compare with ``spread``). ``attrs`` holds ``n_noise``
        (unknowns in no cluster) and ``n_in_seen`` (unknowns in clusters of
        seen classes, i.e. in clusters that are not candidates).
    labels : ndarray of shape (n_samples,)
        Only if ``return_labels``: the candidate cluster of each unknown (the
        index of ``clusters``), or -1 (noise, or in a seen class's cluster).

    See Also
    --------
    ConformalOpenSetClassifier : Calls samples unknown at a chosen error rate.
    latent_map_report : Per-class summary of a latent map.

    Notes
    -----
    The rule for a candidate counts samples, so it relies on the unknowns
    that are outliers of seen classes being fewer than ``n_reference`` in any
    cluster: raise ``n_reference`` when many new objects of the seen classes
    are classified (the outliers of a class are about ``alpha`` times its new
    objects), and read ``n_seen`` and ``seen_in_cluster``: a candidate that
    shares its cluster with several seen classes and has few unknowns may be
    their outliers rather than a new class. With fewer than
    ``min_cluster_size`` unknowns no cluster can be found: the table is
    empty and every label is -1.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.evaluation import discover_clusters
    >>> rng = np.random.RandomState(0)
    >>> Z_seen = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(10, 1, (50, 2))])
    >>> y_seen = np.repeat(["a", "b"], 50)
    >>> Z_new = np.vstack([rng.normal([0, 10], 0.5, (30, 2)),
    ...                    rng.normal([20, 20], 0.5, (20, 2))])
    >>> clusters = discover_clusters(Z_new, Z_seen, y_seen)
    >>> clusters[["size", "n_seen", "nearest_1", "nearest_2"]]
    ... # doctest: +NORMALIZE_WHITESPACE
             size  n_seen nearest_1 nearest_2
    cluster
    0          30       0         a         b
    1          20       0         b         a
    """
    Z = check_array(
        Z_unknown, dtype=np.float64, ensure_min_samples=0, input_name="Z_unknown"
    )
    Z_seen = check_array(Z_seen, dtype=np.float64, input_name="Z_seen")
    y_seen = check_labels(y_seen, len(Z_seen), name="y_seen")
    if Z_seen.shape[1] != Z.shape[1]:
        raise ValueError(
            f"Z_unknown has {Z.shape[1]} dimensions but Z_seen has {Z_seen.shape[1]}."
        )
    classes, codes = np.unique(y_seen, return_inverse=True)
    centres = np.stack([Z_seen[codes == k].mean(axis=0) for k in range(len(classes))])
    n_nearest = min(n_nearest, len(classes))

    picked = _reference_sample(codes, len(classes), n_reference, random_state)
    data = np.concatenate([Z, Z_seen[picked]])
    if len(Z) >= min_cluster_size and len(data) >= 2:
        raw = HDBSCAN(
            min_cluster_size=min_cluster_size,
            min_samples=min(min_samples or min_cluster_size, len(data) - 1),
            copy=True,
        ).fit_predict(data)
    else:
        raw = np.full(len(data), -1)
    raw_unknown, raw_seen = raw[: len(Z)], raw[len(Z) :]
    seen_codes = codes[picked]

    candidates, sizes, n_in_seen = [], [], 0
    for c in np.unique(raw[raw >= 0]):
        n_unknown = int(np.sum(raw_unknown == c))
        per_class = np.bincount(seen_codes[raw_seen == c], minlength=len(classes))
        if n_unknown > per_class.max():
            candidates.append((c, per_class))
            sizes.append(n_unknown)
        else:
            n_in_seen += n_unknown
    order = np.argsort(-np.asarray(sizes, dtype=np.int64), kind="stable")
    labels = np.full(len(Z), -1)
    rows = []
    for new, i in enumerate(order):
        old, per_class = candidates[i]
        mine = raw_unknown == old
        labels[mine] = new
        members = Z[mine]
        centre = members.mean(axis=0)
        distances = cdist(centre[None, :], centres)[0]
        shared = [k for k in np.argsort(-per_class, kind="stable") if per_class[k]]
        row = {
            "size": len(members),
            "fraction": len(members) / len(Z),
            "n_seen": int(per_class.sum()),
            "seen_in_cluster": ", ".join(str(classes[k]) for k in shared),
            "spread": float(np.sqrt(((members - centre) ** 2).sum(axis=1).mean())),
        }
        nearest = np.argsort(distances, kind="stable")[:n_nearest]
        for rank, k in enumerate(nearest, start=1):
            row[f"nearest_{rank}"] = classes[k]
            row[f"distance_{rank}"] = float(distances[k])
        rows.append(row)
    columns = ["size", "fraction", "n_seen", "seen_in_cluster", "spread"]
    for rank in range(1, n_nearest + 1):
        columns += [f"nearest_{rank}", f"distance_{rank}"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.astype({"size": np.int64, "n_seen": np.int64})
    table = table.astype({"fraction": np.float64, "spread": np.float64})
    table.index.name = "cluster"
    table.attrs["n_noise"] = int(np.sum(raw_unknown < 0))
    table.attrs["n_in_seen"] = n_in_seen
    if return_labels:
        return table, labels
    return table
