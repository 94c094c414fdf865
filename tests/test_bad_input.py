"""Bad input raises a ValueError whose message names the problem."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skavae import AffinityVAE

FAST = dict(latent_dims=2, filters=(4,), max_epochs=1, batch_size=8, random_state=0)
RNG = np.random.RandomState(0)
X = RNG.rand(20, 8, 8).astype(np.float32)
Y = np.repeat(["a", "b"], 10)
GOOD = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=["a", "b"], columns=["a", "b"])


def with_value(value, where=(0, 3, 3)):
    bad = X.copy()
    bad[where] = value
    return bad


@pytest.mark.parametrize(
    "X_bad, match",
    [
        (with_value(np.nan), "NaN"),
        (with_value(np.inf), "infinity"),
        (RNG.rand(20), "Expected 2D array"),
        (RNG.rand(4, 2, 3, 4, 5), "5 dimensions"),
        (np.empty((0, 8, 8)), "0 sample"),
        (X[:1], "1 sample"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), "could not convert|string"),
        (X.astype(np.complex64), "[Cc]omplex"),
    ],
    ids=["nan", "inf", "1d", "5d", "empty", "one-sample", "strings", "complex"],
)
def test_bad_X_in_fit(X_bad, match):
    with pytest.raises(ValueError, match=match):
        AffinityVAE(**FAST).fit(X_bad)


def test_X_y_length_mismatch():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AffinityVAE(**FAST).fit(X, Y[:-1])


def test_transform_with_another_image_shape():
    m = AffinityVAE(**FAST).fit(X)
    with pytest.raises(
        ValueError, match=r"shape \(8, 9\).*fitted on objects of shape \(8, 8\)"
    ):
        m.transform(RNG.rand(3, 8, 9))
    with pytest.raises(ValueError, match="NaN"):
        m.transform(with_value(np.nan))
    with pytest.raises(ValueError, match="expecting 8 features"):
        AffinityVAE(**FAST).fit(RNG.rand(20, 8)).transform(RNG.rand(3, 5))


def test_input_shape_mismatch():
    with pytest.raises(ValueError, match="holds 12 values but X has 64 features"):
        AffinityVAE(**FAST, input_shape=(3, 4)).fit(X.reshape(20, -1))
    with pytest.raises(ValueError, match="input_shape must be a tuple of 1 to 3"):
        AffinityVAE(**FAST, input_shape=(2, 2, 2, 8)).fit(X.reshape(20, -1))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"beta": -1.0}, "'beta' parameter"),
        ({"gamma": -0.5}, "'gamma' parameter"),
        ({"latent_dims": 0}, "'latent_dims' parameter"),
        ({"pose_dims": -1}, "'pose_dims' parameter"),
        ({"batch_size": 1}, "'batch_size' parameter"),
        ({"learning_rate": 0.0}, "'learning_rate' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"affinity": "fsc"}, "'affinity' parameter"),
        ({"max_epochs": 0}, "'max_epochs' parameter"),
    ],
)
def test_invalid_hyper_parameters(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        AffinityVAE(**{**FAST, **params}).fit(X)


def test_invalid_filters():
    with pytest.raises(ValueError, match="filters must be a non-empty sequence"):
        AffinityVAE(**{**FAST, "filters": (4, 0)}).fit(X)
    with pytest.raises(ValueError, match="filters must be a non-empty sequence"):
        AffinityVAE(**{**FAST, "filters": ()}).fit(X)


@pytest.mark.parametrize(
    "matrix, match",
    [
        (
            pd.DataFrame(
                [[1.0, 0.5, 0.1], [0.5, 1.0, 0.2]],
                index=["a", "b"],
                columns=["a", "b", "c"],
            ),
            "not square",
        ),
        (
            pd.DataFrame(
                [[1.0, 0.5], [0.2, 1.0]], index=["a", "b"], columns=["a", "b"]
            ),
            "not symmetric",
        ),
        (
            pd.DataFrame(
                [[1.0, 1.5], [1.5, 1.0]], index=["a", "b"], columns=["a", "b"]
            ),
            r"\[-1, 1\]",
        ),
        (
            pd.DataFrame(
                [[1.0, np.nan], [np.nan, 1.0]], index=["a", "b"], columns=["a", "b"]
            ),
            "NaN",
        ),
        (
            pd.DataFrame(
                [[1.0, 0.5], [0.5, 1.0]], index=["a", "c"], columns=["a", "c"]
            ),
            r"Labels \['b'\] are not in the affinity matrix",
        ),
        (
            pd.DataFrame(
                [[1.0, 0.5], [0.5, 1.0]], index=["a", "b"], columns=["a", "c"]
            ),
            "same labels",
        ),
    ],
    ids=[
        "not-square",
        "not-symmetric",
        "out-of-range",
        "nan",
        "missing-label",
        "mismatch",
    ],
)
def test_bad_affinity_matrix(matrix, match):
    with pytest.raises(ValueError, match=match):
        AffinityVAE(**FAST, affinity=matrix).fit(X, Y)


def test_affinity_dataframe_requires_labels():
    with pytest.raises(ValueError, match="needs the class labels"):
        AffinityVAE(**FAST, affinity=GOOD).fit(X)


def test_partial_fit_with_unknown_label():
    m = AffinityVAE(**FAST, affinity=GOOD).partial_fit(X, Y)
    with pytest.raises(
        ValueError, match=r"Labels \['z'\] are not in the affinity matrix"
    ):
        m.partial_fit(X[:4], ["a", "z", "a", "b"])


def test_metric_returning_garbage():
    def broken(A, B=None):
        return np.full((len(A), len(A if B is None else B)), 3.0)

    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        AffinityVAE(**FAST, affinity=broken).fit(X, Y)


def test_inverse_transform_and_sample_arguments():
    m = AffinityVAE(**FAST).fit(X)
    with pytest.raises(ValueError, match=r"Z must have shape \(n_samples, 2\)"):
        m.inverse_transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="finite"):
        m.inverse_transform(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match=r"pose must have shape \(3, 1\)"):
        m.inverse_transform(np.zeros((3, 2)), pose=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        m.sample(0)
    with pytest.raises(ValueError, match="no pose channel"):
        AffinityVAE(**FAST, pose_dims=0).fit(X).inverse_transform(
            np.zeros((1, 2)), pose=[1.0]
        )


def test_unfitted_model():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AffinityVAE().transform(X)
