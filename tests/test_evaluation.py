"""Tests of skavae.evaluation: latent-map metrics with known answers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skavae import AffinityVAE
from skavae.evaluation import (
    ClusterMeanClassifier,
    hard_knn_predict,
    latent_map_report,
    pose_angle_fit,
    proximity_matrix,
    seen_unseen_confusion,
    separation_score,
    soft_knn_proba,
)


def _blobs(n=60, dims=3, distance=20.0, seed=0):
    """Two well-separated unit Gaussian blobs."""
    rng = np.random.RandomState(seed)
    Z = np.vstack([rng.normal(0, 1, (n, dims)), rng.normal(distance, 1, (n, dims))])
    y = np.repeat(["a", "b"], n)
    return Z, y


@pytest.fixture(scope="module")
def tiny_model():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 16, 16).astype(np.float32)
    X[20:, 4:12, 4:12] += 1.0
    y = np.repeat(["a", "b"], 20)
    model = AffinityVAE(latent_dims=4, max_epochs=2, filters=(8, 16), random_state=0)
    return model.fit(X, y), X, y


# ----------------------------------------------------------------- KNN


def test_knn_on_separated_blobs_is_perfect():
    Z, y = _blobs()
    Z_test, y_test = _blobs(seed=1)
    assert np.mean(hard_knn_predict(Z, y, Z_test) == y_test) == 1.0
    proba = soft_knn_proba(Z, y, Z_test)
    assert list(proba.columns) == ["a", "b"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # k=100 > 60 per class: every sample sees 60 of its own class and 40 others
    np.testing.assert_allclose(proba.max(axis=1), 0.6)
    assert (proba.idxmax(axis=1).to_numpy() == y_test).all()


def test_knn_caps_neighbours_and_validates():
    Z, y = _blobs(n=3)
    proba = soft_knn_proba(Z, y, Z[:2])  # k=100 capped at 6 reference samples
    np.testing.assert_allclose(proba.to_numpy(), 0.5)
    with pytest.raises(ValueError, match="n_neighbors"):
        hard_knn_predict(Z, y, Z, n_neighbors=0)
    with pytest.raises(ValueError, match="labels but there are"):
        hard_knn_predict(Z, y[:-1], Z)


# ------------------------------------------------- ClusterMeanClassifier


def test_cluster_rule_marks_outliers_unknown():
    Z, y = _blobs(n=200, dims=2)
    clf = ClusterMeanClassifier().fit(Z, y)
    np.testing.assert_allclose(clf.means_, [[0, 0], [20, 20]], atol=0.2)
    np.testing.assert_allclose(clf.stds_, 1.0, atol=0.15)
    std = clf.stds_[0]
    mean = clf.means_[0]
    points = np.array(
        [
            mean,  # centre
            mean + 1.9 * std,  # just inside ±2σ in both dimensions
            mean + [2.1 * std[0], 0],  # just outside in one dimension
            [10.0, 10.0],  # between the blobs
            [-50.0, 3.0],  # far away
        ]
    )
    np.testing.assert_array_equal(
        clf.predict(points), ["a", "a", "unknown", "unknown", "unknown"]
    )
    wider = ClusterMeanClassifier(n_sigma=3.0).fit(Z, y)
    assert wider.predict(points[2:3])[0] == "a"
    # most of each blob is inside its box: 0.954 ** 2 ≈ 0.91 expected
    assert 0.85 < np.mean(clf.predict(Z) == y) < 0.97


def test_cluster_rule_overlap_goes_to_smaller_standardised_distance():
    rng = np.random.RandomState(0)
    Z = np.vstack([rng.normal(0, 1, (500, 1)), rng.normal(1, 1, (500, 1))])
    y = np.repeat([0, 1], 500)
    clf = ClusterMeanClassifier().fit(Z, y)
    pred = clf.predict([[0.1], [0.9], [50.0]])
    np.testing.assert_array_equal(pred, [0, 1, -1])
    assert pred.dtype.kind == "i"


def test_cluster_rule_validates_and_works_in_pipeline():
    Z, y = _blobs()
    with pytest.raises(ValueError, match="unknown_label"):
        ClusterMeanClassifier(unknown_label="a").fit(Z, y)
    with pytest.raises(ValueError, match="n_sigma"):
        ClusterMeanClassifier(n_sigma=-1).fit(Z, y)
    pipe = make_pipeline(PCA(n_components=2), ClusterMeanClassifier(n_sigma=4))
    assert pipe.fit(Z, y).score(Z, y) == 1.0
    # integer labels: -1 by default; a string unknown label gives object output
    labels = (y == "b").astype(int)
    clf = ClusterMeanClassifier().fit(Z, labels)
    assert clf.unknown_label_ == -1
    assert clf.predict([[100.0, 0, 0]]).tolist() == [-1]
    clf = ClusterMeanClassifier(unknown_label="unknown").fit(Z, labels)
    assert clf.predict([[100.0, 0, 0]]).dtype == object
    assert ClusterMeanClassifier().fit(Z, labels - 1).unknown_label_ == -2


def _expected_failed_checks(estimator):
    return {
        "check_classifiers_one_label": (
            "with a single class the check expects every test point to get that "
            "class, but points outside the class's ±2σ box are 'unknown' by "
            "design (the rule abstains instead of always answering)."
        ),
    }


@parametrize_with_checks(
    [ClusterMeanClassifier()], expected_failed_checks=_expected_failed_checks
)
def test_sklearn_compatible_cluster_classifier(estimator, check):
    check(estimator)


# ------------------------------------------------ proximity / separation


def test_proximity_matrix_symmetric_zero_diagonal_0_100():
    rng = np.random.RandomState(0)
    Z = np.vstack([rng.normal(c, 1, (30, 4)) for c in (0, 5, 20)])
    y = np.repeat(["x", "y", "z"], 30)
    P = proximity_matrix(Z, y)
    assert list(P.index) == list(P.columns) == ["x", "y", "z"]
    np.testing.assert_allclose(P.to_numpy(), P.to_numpy().T)
    np.testing.assert_array_equal(np.diag(P), 0.0)
    assert P.to_numpy().max() == pytest.approx(100.0)
    assert P.loc["x", "y"] < P.loc["y", "z"] < P.loc["x", "z"]
    raw = proximity_matrix(Z, y, normalize=False)
    assert raw.loc["x", "z"] == pytest.approx(40.0, rel=0.1)  # |20 - 0| * sqrt(4)


def test_separation_score_scale_invariant_and_ordered():
    near, y = _blobs(distance=2.0)
    far, _ = _blobs(distance=20.0)
    assert separation_score(far, y) > 5 * separation_score(near, y)
    assert separation_score(3.0 * far, y) == pytest.approx(separation_score(far, y))
    with pytest.raises(ValueError, match="two classes"):
        separation_score(far[:60], y[:60])


# ------------------------------------------------------------- pose fit


def test_pose_fit_recovers_known_slope_and_picks_best_dimension():
    rng = np.random.RandomState(0)
    angles = rng.uniform(-45, 45, 500)
    pose = np.column_stack(
        [rng.normal(size=500), 0.03 * angles - 0.5 + rng.normal(0, 0.05, 500)]
    )
    fit = pose_angle_fit(pose, angles)
    assert fit.dimension == 1
    assert fit.slope == pytest.approx(0.03, rel=0.02)
    assert fit.intercept == pytest.approx(-0.5, abs=0.02)
    assert fit.r2 > 0.98
    assert fit.r2_per_dimension.shape == (2,)
    with pytest.raises(ValueError, match="all equal"):
        pose_angle_fit(pose, np.zeros(500))
    with pytest.raises(ValueError, match="one angle per sample"):
        pose_angle_fit(pose, angles[:10])


def test_pose_fit_from_model(tiny_model):
    model, X, _ = tiny_model
    angles = np.linspace(-45, 45, len(X))
    fit = pose_angle_fit(X, angles, model=model)
    assert 0.0 <= fit.r2 <= 1.0 and fit.dimension == 0
    no_pose = AffinityVAE(
        latent_dims=2, pose_dims=0, max_epochs=1, filters=(8, 16), random_state=0
    ).fit(X)
    with pytest.raises(ValueError, match="no pose channel"):
        pose_angle_fit(X, angles, model=no_pose)


# ------------------------------------------------- confusion and report


def test_seen_unseen_confusion_orders_rows_and_columns():
    y_true = ["a", "b", "b", "2", "2", "2"]
    y_pred = ["a", "b", "unknown", "b", "b", "a"]
    table = seen_unseen_confusion(y_true, y_pred, seen_classes=["b", "a"])
    assert list(table.index) == ["b", "a", "2"]
    assert list(table.columns) == ["b", "a", "unknown"]
    assert table.attrs["n_seen"] == 2
    np.testing.assert_allclose(table.sum(axis=1), 1.0)
    assert table.loc["2", "b"] == pytest.approx(2 / 3)
    default = seen_unseen_confusion(y_true, y_pred, normalize=False)
    assert list(default.index) == ["a", "b", "2"]
    assert default.to_numpy().sum() == 6


def test_latent_map_report_on_latents():
    rng = np.random.RandomState(0)
    centres = {"a": [0, 0], "b": [30, 0], "2": [25, 3]}
    Z = {k: rng.normal(c, 1.0, (40, 2)) for k, c in centres.items()}
    Z_test = {k: rng.normal(c, 1.0, (10, 2)) for k, c in centres.items()}
    report = latent_map_report(
        None,
        np.vstack([Z["a"], Z["b"]]),
        np.repeat(["a", "b"], 40),
        Z["2"],
        np.repeat("2", 40),
        X_test=np.vstack([Z_test["a"], Z_test["b"]]),
        y_test=np.repeat(["a", "b"], 10),
    )
    assert list(report.index) == ["a", "b", "2"]
    assert report["seen"].tolist() == [True, True, False]
    assert report["n_samples"].tolist() == [10, 10, 40]
    assert report.loc[["a", "b"], "accuracy"].tolist() == [1.0, 1.0]
    assert np.isnan(report.loc["2", "accuracy"])
    assert report.loc["2", "predicted_class"] == "b"
    assert report.loc["2", "nearest_seen_class"] == "b"
    assert report.loc["2", "unknown_fraction"] > 0.9  # 5σ away from b
    assert report.loc["a", "unknown_fraction"] < 0.3
    assert report.attrs["accuracy"] == 1.0
    assert report.attrs["separation_score"] > 10
    with pytest.raises(ValueError, match="in y_seen"):
        latent_map_report(None, Z["a"], np.repeat(["a", "b"], 20), Z["b"], ["a"] * 40)


def test_latent_map_report_with_model_and_cross_validation(tiny_model):
    model, X, y = tiny_model
    report = latent_map_report(model, X, y)
    assert list(report.index) == ["a", "b"]
    assert report["n_samples"].sum() == len(X)
    assert report["accuracy"].between(0, 1).all()
    # any fitted transformer works as the encoder
    flat = X.reshape(len(X), -1)
    pca_report = latent_map_report(PCA(n_components=3).fit(flat), flat, y)
    assert pca_report.loc["a", "accuracy"] == 1.0
    assert isinstance(pca_report, pd.DataFrame)


def test_knn_predictions_classify_reference_objects_out_of_fold():
    from sklearn.neighbors import KNeighborsClassifier

    from skavae._evaluation._knn import out_of_fold_knn
    from skavae.evaluation import knn_predictions

    rng = np.random.RandomState(0)
    Z_ref = np.vstack([rng.normal(0, 1, (20, 2)), rng.normal(1.5, 1, (20, 2))])
    y_ref = np.repeat(["a", "b"], 20)
    rows = np.array([3, -1, 25, 39])
    X = Z_ref[np.maximum(rows, 0)] + np.array([[0], [0.01], [0], [0]])
    hard, soft = knn_predictions(
        Z_ref, y_ref, X, reference_rows=rows, n_neighbors=5, n_soft_neighbors=10
    )
    oof_hard, oof_soft, _ = out_of_fold_knn(Z_ref, y_ref, 5, 10)
    full = KNeighborsClassifier(5).fit(Z_ref, y_ref)
    inside = rows >= 0
    np.testing.assert_array_equal(hard[inside], oof_hard[rows[inside]])
    np.testing.assert_allclose(soft.to_numpy()[inside], oof_soft[rows[inside]])
    assert hard[1] == full.predict(X[1:2])[0]
    assert list(soft.columns) == ["a", "b"]
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
    # every reference object out of fold: not its own neighbour, so not perfect
    all_hard, _ = knn_predictions(
        Z_ref, y_ref, Z_ref, reference_rows=np.arange(40), n_neighbors=1
    )
    in_sample = KNeighborsClassifier(1).fit(Z_ref, y_ref).predict(Z_ref)
    assert (in_sample == y_ref).all() and (all_hard != y_ref).any()
    with pytest.raises(ValueError, match="reference_rows must lie"):
        knn_predictions(Z_ref, y_ref, X, reference_rows=np.array([0, 1, 2, 40]))
    with pytest.raises(ValueError, match="4 integers"):
        knn_predictions(Z_ref, y_ref, X, reference_rows=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_predictions(Z_ref, y_ref, X, n_neighbors=0)
    with pytest.raises(ValueError, match="latent dimensions"):
        knn_predictions(Z_ref, y_ref, X[:, :1])
