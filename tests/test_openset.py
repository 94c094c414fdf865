"""Open-set classification (split-conformal) and discovery of new clusters."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skavae import AffinityVAE
from skavae.evaluation import ConformalOpenSetClassifier, discover_clusters

SCORES = ["gaussian", "gaussian_shared", "knn", "knn_ratio", "sigma"]
CENTRES = np.array([[0, 0, 0, 0], [6, 0, 0, 0], [0, 6, 0, 0]], dtype=float)


def _seen(n_per_class, seed):
    """Three unit Gaussian classes in 4D, 6 standard deviations apart."""
    rng = np.random.RandomState(seed)
    Z = np.vstack([rng.normal(c, 1.0, (n_per_class, 4)) for c in CENTRES])
    y = np.repeat(["a", "b", "c"], n_per_class)
    return Z, y


def _unseen(n, seed):
    """A class the classifier never sees, far from the three seen ones."""
    return np.random.RandomState(seed).normal([0, 0, 9, 0], 1.0, (n, 4))


# --------------------------------------------------------------- guarantee


@pytest.mark.parametrize("nonconformity", SCORES)
@pytest.mark.parametrize("class_conditional", [True, False])
def test_error_on_fresh_seen_data_is_alpha(nonconformity, class_conditional):
    # reference, calibration and test sets are independent draws: the
    # conformal guarantee says the set misses the true class of a test sample
    # with probability in [alpha - 1 / (n + 1), alpha]
    Z, y = _seen(300, seed=0)
    Z_cal, y_cal = _seen(400, seed=1)
    Z_test, y_test = _seen(2000, seed=2)
    clf = ConformalOpenSetClassifier(
        nonconformity=nonconformity,
        alpha=0.1,
        calibration_fraction=0.0,
        class_conditional=class_conditional,
    )
    clf.fit(Z, y).calibrate(Z_cal, y_cal)
    sets = clf.predict_set(Z_test)
    miss = ~sets[np.arange(len(y_test)), np.searchsorted(clf.classes_, y_test)]
    # 6000 test samples: standard error of the rate about 0.004 (plus the
    # calibration's, about 0.015 per class with 400 samples)
    assert 0.06 < miss.mean() < 0.14
    for k in clf.classes_:
        assert 0.03 < miss[y_test == k].mean() < 0.17
    error = np.mean(clf.predict(Z_test) != y_test)
    assert 0.06 < error < 0.15
    # far-away unseen samples are all unknown
    assert np.all(clf.predict(_unseen(200, seed=3)) == "unknown")


def test_knn_ratio_sets_hold_at_most_one_class_and_predict_errs_at_alpha():
    Z, y = _seen(300, seed=0)
    clf = ConformalOpenSetClassifier(
        nonconformity="knn_ratio", alpha=0.05, random_state=0
    ).fit(Z, y)
    Z_test, y_test = _seen(2000, seed=2)
    sets = clf.predict_set(Z_test)
    assert sets.sum(axis=1).max() == 1
    pred = clf.predict(Z_test)
    miss = ~sets[np.arange(len(y_test)), np.searchsorted(clf.classes_, y_test)]
    np.testing.assert_array_equal(pred != y_test, miss)  # one and the same error
    assert 0.02 < np.mean(pred != y_test) < 0.08


def test_pvalues_sets_and_predict_are_consistent():
    Z, y = _seen(100, seed=0)
    clf = ConformalOpenSetClassifier(alpha=0.1, random_state=0).fit(Z, y)
    Z_new = np.vstack([_seen(50, seed=1)[0], _unseen(50, seed=2)])
    p = clf.predict_pvalues(Z_new)
    assert p.shape == (200, 3)
    n_cal = clf.n_calibration_
    np.testing.assert_array_equal(n_cal, [25, 25, 25])  # 0.25 of each class
    assert np.all(p >= 1 / (n_cal + 1) - 1e-12) and np.all(p <= 1)
    np.testing.assert_array_equal(clf.predict_set(Z_new), p > 0.1)
    pred = clf.predict(Z_new)
    empty = ~clf.predict_set(Z_new).any(axis=1)
    np.testing.assert_array_equal(pred == "unknown", empty)
    np.testing.assert_array_equal(
        pred[~empty], clf.classes_[np.argmax(p[~empty], axis=1)]
    )
    # alpha is read at prediction time: a larger alpha calls more unknown
    n_unknown = np.sum(pred == "unknown")
    clf.set_params(alpha=0.3)
    assert np.sum(clf.predict(Z_new) == "unknown") > n_unknown
    # the scores are the documented statistics (here: the ±nσ box statistic)
    sigma = ConformalOpenSetClassifier(nonconformity="sigma", random_state=0)
    sigma.fit(Z, y)
    s = sigma.nonconformity_scores(CENTRES)
    assert s.shape == (3, 3) and np.all(np.diag(s) < 0.5)
    assert np.all(s[~np.eye(3, dtype=bool)] > 4)


def test_fit_split_is_stratified_and_reproducible():
    Z, y = _seen(40, seed=0)
    y = y.astype(object)
    y[:20] = "rare"  # 20 of "rare", 20 of "a"
    kwargs = dict(alpha=0.2, calibration_fraction=0.5, random_state=0)
    a = ConformalOpenSetClassifier(**kwargs).fit(Z, y)
    np.testing.assert_array_equal(a.n_calibration_, [10, 20, 20, 10])
    np.testing.assert_array_equal(a.n_reference_, [10, 20, 20, 10])
    b = ConformalOpenSetClassifier(**kwargs).fit(Z, y)
    for x, z in zip(a.calibration_scores_, b.calibration_scores_):
        np.testing.assert_array_equal(x, z)


def test_labels_numeric_and_custom_unknown_and_dataframes():
    Z, y = _seen(100, seed=0)
    codes = np.searchsorted(["a", "b", "c"], y)
    clf = ConformalOpenSetClassifier(random_state=0).fit(Z, codes)
    assert clf.unknown_label_ == -1
    pred = clf.predict(_unseen(5, seed=1))
    assert pred.dtype.kind == "i" and pred.tolist() == [-1] * 5
    clf = ConformalOpenSetClassifier(unknown_label="new", random_state=0)
    assert clf.fit(Z, y).predict(_unseen(1, seed=1)).tolist() == ["new"]
    with pytest.raises(ValueError, match="unknown_label"):
        ConformalOpenSetClassifier(unknown_label="a").fit(Z, y)
    frame = pd.DataFrame(Z, columns=["z0", "z1", "z2", "z3"])
    clf = ConformalOpenSetClassifier(random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == ["z0", "z1", "z2", "z3"]
    assert clf.score(frame, y) > 0.9


def test_in_a_pipeline_calibrated_on_held_out_data():
    Z, y = _seen(200, seed=0)
    Z_cal, y_cal = _seen(100, seed=1)
    pipe = make_pipeline(
        PCA(n_components=4), ConformalOpenSetClassifier(calibration_fraction=0.0)
    )
    pipe.fit(Z, y)
    with pytest.raises(ValueError, match=r"not calibrated .*calibrate\(X_cal"):
        pipe.predict(Z)
    pipe[-1].calibrate(pipe[:-1].transform(Z_cal), y_cal)
    Z_test, y_test = _seen(300, seed=2)
    assert pipe.score(Z_test, y_test) > 0.9
    assert np.mean(pipe.predict(_unseen(50, seed=3)) == "unknown") > 0.9
    clone(pipe).fit(Z, y)  # unfitted clone refits


def test_after_an_affinity_vae_in_a_pipeline():
    rng = np.random.RandomState(0)
    X = rng.rand(80, 16, 16).astype(np.float32)
    X[40:, 4:12, 4:12] += 1.0
    y = np.repeat(["a", "b"], 40)
    pipe = make_pipeline(
        AffinityVAE(
            latent_dims=4,
            affinity=pd.DataFrame([[1, 0.2], [0.2, 1]], ["a", "b"], ["a", "b"]),
            max_epochs=2,
            filters=(8, 16),
            random_state=0,
        ),
        ConformalOpenSetClassifier(alpha=0.2, random_state=0),
    )
    pred = pipe.fit(X, y).predict(X)
    assert set(pred) <= {"a", "b", "unknown"}
    assert pipe[-1].predict_pvalues(pipe[0].transform(X)).shape == (80, 2)


# --------------------------------------------------------------- bad input


@pytest.mark.parametrize("alpha", [0, 1, -0.05, 1.5])
def test_alpha_outside_zero_one_is_refused(alpha):
    Z, y = _seen(30, seed=0)
    with pytest.raises(ValueError, match=rf"'alpha' .*\(0.0, 1.0\).*{alpha}"):
        ConformalOpenSetClassifier(alpha=alpha).fit(Z, y)
    clf = ConformalOpenSetClassifier(alpha=0.2, random_state=0).fit(Z, y)
    clf.set_params(alpha=alpha)
    with pytest.raises(
        ValueError, match=rf"alpha must be a float in \(0, 1\).*{alpha}"
    ):
        clf.predict(Z)


def test_calibration_set_must_hold_every_training_class_and_no_other():
    Z, y = _seen(30, seed=0)
    clf = ConformalOpenSetClassifier(calibration_fraction=0.0).fit(Z, y)
    Z_cal, y_cal = _seen(30, seed=1)
    with pytest.raises(ValueError, match=r"no sample of 1 of the 3 .*'c'"):
        clf.calibrate(Z_cal[y_cal != "c"], y_cal[y_cal != "c"])
    y_bad = y_cal.astype(object)
    y_bad[:2] = "zz"
    with pytest.raises(ValueError, match=r"1 label\(s\) that are not training .*'zz'"):
        clf.calibrate(Z_cal, y_bad)
    with pytest.raises(ValueError, match="y_cal has 5 labels but there are 90"):
        clf.calibrate(Z_cal, y_cal[:5])
    with pytest.raises(ValueError, match="4 features"):
        clf.calibrate(Z_cal[:, :3], y_cal)
    # with a split in fit, every class needs two samples
    with pytest.raises(ValueError, match=r"at least 2 training samples.*'d' \(1\)"):
        ConformalOpenSetClassifier().fit(np.vstack([Z, Z[:1]]), np.r_[y, ["d"]])


def test_too_small_calibration_set_for_alpha_warns_with_the_numbers():
    Z, y = _seen(40, seed=0)
    # 0.25 of 40 = 10 calibration samples per class; alpha=0.05 needs 19
    with pytest.warns(
        UserWarning, match=r"alpha=0.05 .*at least 19 .*3 class\(es\).*'a' \(10\)"
    ):
        clf = ConformalOpenSetClassifier(alpha=0.05, random_state=0).fit(Z, y)
    with pytest.warns(UserWarning, match="at least 19"):  # and again at prediction
        assert not np.any(clf.predict(_unseen(20, seed=1)) == "unknown")
    # alpha changed after calibration: predict and predict_set say so too
    clf = ConformalOpenSetClassifier(alpha=0.2, random_state=0).fit(Z, y)
    clf.set_params(alpha=0.02)
    for method in (clf.predict, clf.predict_set):
        with pytest.warns(UserWarning, match=r"alpha=0.02 .*at least 49"):
            method(Z[:3])
    with pytest.warns(
        UserWarning, match=r"at least 19 calibration samples .*there are 8"
    ):
        ConformalOpenSetClassifier(
            alpha=0.05, calibration_fraction=0.0, class_conditional=False
        ).fit(Z, y).calibrate(Z[::15], y[::15])
    # pooled calibration needs fewer samples per class: no warning here
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConformalOpenSetClassifier(
            alpha=0.05, class_conditional=False, random_state=0
        ).fit(Z, y)


# ----------------------------------------------------------- sklearn checks


# the checks' data sets are small: the too-small-calibration warning is expected
@pytest.mark.filterwarnings("ignore:With alpha=0.05:UserWarning")
@parametrize_with_checks(
    [ConformalOpenSetClassifier(nonconformity=s) for s in SCORES]
    + [ConformalOpenSetClassifier(class_conditional=False)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- discovery


def test_two_unseen_classes_come_out_as_two_clusters():
    Z, y = _seen(300, seed=0)
    clf = ConformalOpenSetClassifier(calibration_fraction=0.0).fit(Z, y)
    clf.calibrate(*_seen(200, seed=1))
    rng = np.random.RandomState(2)
    Z_new = np.vstack(
        [
            _seen(100, seed=3)[0],  # seen: about 5 % called unknown
            rng.normal([0, 0, 9, 0], 1.0, (150, 4)),  # new class next to "a"
            rng.normal([6, 6, 6, 6], 1.0, (100, 4)),  # another one, between "b", "c"
        ]
    )
    truth = np.repeat(["seen", "new1", "new2"], [300, 150, 100])
    unknown = clf.predict(Z_new) == "unknown"
    assert np.all(unknown[truth != "seen"])
    clusters, labels = discover_clusters(
        Z_new[unknown], Z, y, min_cluster_size=15, return_labels=True
    )
    assert len(clusters) == 2
    assert clusters["size"].tolist() == [
        np.sum(labels == 0),
        np.sum(labels == 1),
    ]
    for c, name in [(0, "new1"), (1, "new2")]:
        members = truth[unknown][labels == c]
        assert np.mean(members == name) == 1.0
        assert np.sum(members == name) >= 0.9 * np.sum(truth == name)
    assert clusters.loc[0, "nearest_1"] == "a"
    assert set(clusters.loc[1, ["nearest_1", "nearest_2"]]) == {"b", "c"}
    assert clusters["n_seen"].tolist() == [0, 0]
    assert clusters["seen_in_cluster"].tolist() == ["", ""]
    # the seen samples called unknown are no new class
    n_seen_unknown = np.sum(unknown & (truth == "seen"))
    assert n_seen_unknown > 0
    assert np.sum(labels[truth[unknown] == "seen"] >= 0) == 0
    assert clusters.attrs["n_noise"] + clusters.attrs["n_in_seen"] >= n_seen_unknown
    assert list(clusters.columns) == [
        "size",
        "fraction",
        "n_seen",
        "seen_in_cluster",
        "spread",
        "nearest_1",
        "distance_1",
        "nearest_2",
        "distance_2",
    ]


def test_discovery_of_a_single_new_class_and_of_too_few_unknowns():
    Z, y = _seen(100, seed=0)
    Z_new = _unseen(60, seed=1)
    clusters = discover_clusters(Z_new, Z, y, n_nearest=5)
    assert clusters["size"].tolist() == [60] or clusters["size"].iloc[0] >= 50
    assert [c for c in clusters.columns if c.startswith("nearest")] == [
        "nearest_1",
        "nearest_2",
        "nearest_3",
    ]  # capped at the three seen classes
    clusters, labels = discover_clusters(Z_new[:5], Z, y, return_labels=True)
    assert len(clusters) == 0 and labels.tolist() == [-1] * 5
    assert clusters.attrs["n_noise"] == 5
    clusters, labels = discover_clusters(np.empty((0, 4)), Z, y, return_labels=True)
    assert len(clusters) == 0 and len(labels) == 0  # nothing called unknown


def test_discovery_bad_input():
    Z, y = _seen(30, seed=0)
    with pytest.raises(ValueError, match="3 dimensions but Z_seen has 4"):
        discover_clusters(Z[:, :3], Z, y)
    with pytest.raises(
        ValueError, match=r"'min_cluster_size' parameter .* int in the range \[2, inf\)"
    ):
        discover_clusters(Z, Z, y, min_cluster_size=1)
    with pytest.raises(
        ValueError, match=r"'n_reference' parameter .* int in the range \[0, inf\)"
    ):
        discover_clusters(Z, Z, y, n_reference=-1)
    with pytest.raises(ValueError, match="y_seen has 3 labels but there are 90"):
        discover_clusters(Z, Z, y[:3])
