"""Hyper-parameter searches on distributed engines (dask.distributed, Ray).

The same ``GridSearchCV``/``RandomizedSearchCV`` code runs under
``joblib.parallel_backend("dask")`` on a two-process ``LocalCluster`` (loopback
only) and gives ``cv_results_`` scores identical to the local run; models fitted
on a worker come back to the client picklable and usable; torch in a worker runs
on the worker's share of the cores (no oversubscription) and ``n_threads``
overrides it for the duration of a fit. The Ray case is skipped when Ray is not
installed (``pip install skavae[ray]``).
"""

import pickle
import sys

import joblib
import numpy as np
import pytest
import torch
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skavae import AffinityVAE
from skavae.affinity import MeanDifference
from skavae.datasets import make_alphanumeric

X, Y = make_alphanumeric(96, characters="abz", size=16, random_state=0)
GRID = {"affinityvae__beta": [0.5, 2.0], "affinityvae__latent_dims": [2, 4]}
DISTRIBUTIONS = {
    "affinityvae__beta": loguniform(0.1, 10.0),
    "affinityvae__latent_dims": [2, 3, 4],
    "kneighborsclassifier__n_neighbors": [1, 3, 5],
}


def small_pipeline():
    vae = AffinityVAE(
        latent_dims=2,
        filters=(4, 8),
        max_epochs=2,
        batch_size=16,
        random_state=0,
    )
    return make_pipeline(vae, KNeighborsClassifier(n_neighbors=3))


def score_columns(results):
    return sorted(k for k in results if k.startswith(("split", "mean_test", "rank")))


def assert_same_results(distributed, local):
    assert distributed.cv_results_["params"] == local.cv_results_["params"]
    for key in score_columns(local.cv_results_):
        np.testing.assert_array_equal(
            distributed.cv_results_[key], local.cv_results_[key], err_msg=key
        )
    # the scores are not all equal, so identical columns are a real check
    assert np.ptp(local.cv_results_["mean_test_score"]) > 0
    assert distributed.best_params_ == local.best_params_


def assert_usable_on_client(model, reference):
    """``model`` survives pickling and predicts/encodes as ``reference`` does."""
    restored = pickle.loads(pickle.dumps(model))
    for m in (model, restored):
        vae = m.named_steps["affinityvae"]
        assert all(p.device.type == "cpu" for p in vae.module_.parameters())
        np.testing.assert_array_equal(m.predict(X), reference.predict(X))
        np.testing.assert_array_equal(m[:-1].transform(X), reference[:-1].transform(X))


def fit_reporting_threads(X, n_threads):
    """Fit in the calling process; report torch's thread count during and after.

    A sample-level affinity (no labels) is evaluated on every training batch,
    inside the estimator's thread setting, so it sees the count training uses.
    """
    seen = []

    def metric(A, B=None):
        seen.append(torch.get_num_threads())
        return MeanDifference()(A, B)

    before = torch.get_num_threads()
    AffinityVAE(
        latent_dims=2,
        filters=(4,),
        max_epochs=1,
        batch_size=32,
        affinity=metric,
        n_threads=n_threads,
        random_state=0,
    ).fit(X)
    return {
        "before": before,
        "during": sorted(set(seen)),
        "after": torch.get_num_threads(),
    }


def fit_pipeline(X, y):
    return small_pipeline().fit(X, y)


# --------------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def local_grid():
    return GridSearchCV(small_pipeline(), GRID, cv=2, n_jobs=1).fit(X, Y)


def test_grid_search_on_dask_matches_local(dask_client, local_grid):
    with joblib.parallel_backend("dask"):
        search = GridSearchCV(small_pipeline(), GRID, cv=2, n_jobs=-1).fit(X, Y)
    assert_same_results(search, local_grid)
    # both the scheduler's workers ran tasks: the search really was distributed
    assert len(dask_client.scheduler_info()["workers"]) == 2
    assert_usable_on_client(search.best_estimator_, local_grid.best_estimator_)


def test_randomized_search_on_dask_matches_local(dask_client):
    def search():
        return RandomizedSearchCV(
            small_pipeline(), DISTRIBUTIONS, n_iter=3, cv=2, random_state=0, n_jobs=-1
        )

    local = search().set_params(n_jobs=1).fit(X, Y)
    with joblib.parallel_backend("dask"):
        distributed = search().fit(X, Y)
    assert_same_results(distributed, local)


def test_model_fitted_on_a_worker_is_usable_on_the_client(dask_client):
    local = fit_pipeline(X, Y)
    future = dask_client.submit(fit_pipeline, X, Y, pure=False)
    remote = future.result()
    del future
    assert_usable_on_client(remote, local)
    # joblib under the dask backend returns worker-fitted models the same way
    with joblib.parallel_backend("dask"):
        models = joblib.Parallel(n_jobs=2)(
            joblib.delayed(clone(small_pipeline()).fit)(X, Y) for _ in range(2)
        )
    for model in models:
        assert_usable_on_client(model, local)


def test_torch_threads_in_dask_workers(dask_client):
    # threads_per_worker=1: the nanny starts workers with OMP_NUM_THREADS=1, so
    # torch uses one thread per worker process (2 workers on 2 cores).
    reports = {
        n: dask_client.submit(fit_reporting_threads, X, n, pure=False).result()
        for n in (None, 2)
    }
    default = reports[None]
    assert default["before"] == default["after"] == 1
    assert default["during"] == [1]
    # n_threads applies during the fit only, then the worker's setting returns
    assert reports[2]["during"] == [2]
    assert reports[2]["after"] == reports[2]["before"] == 1


def test_torch_threads_in_loky_workers():
    # joblib's default backend gives each of n_jobs workers cpu_count // n_jobs
    # threads; the same probe shows what a fit there runs on.
    n_jobs = 2
    expected = max(1, joblib.cpu_count() // n_jobs)
    reports = joblib.Parallel(n_jobs=n_jobs)(
        joblib.delayed(fit_reporting_threads)(X, None) for _ in range(n_jobs)
    )
    for report in reports:
        assert report["during"] == [expected]


# ---------------------------------------------------------------------- ray
@pytest.fixture(scope="module")
def ray_backend():
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    register_ray()
    # Ray's workers do not have tests/ on sys.path: ship this module's functions
    # by value rather than by reference.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


def test_grid_search_on_ray_matches_local(ray_backend, local_grid):
    with joblib.parallel_backend("ray"):
        search = GridSearchCV(small_pipeline(), GRID, cv=2, n_jobs=-1).fit(X, Y)
    assert_same_results(search, local_grid)
    assert_usable_on_client(search.best_estimator_, local_grid.best_estimator_)
    # Ray starts its workers with OMP_NUM_THREADS=1 (one CPU per task)
    remote = ray_backend.remote(fit_reporting_threads)
    report = ray_backend.get(remote.remote(X, None))
    assert report["during"] == [1]
