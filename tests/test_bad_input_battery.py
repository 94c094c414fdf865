"""Bad-input battery: every public function, class and CLI command of skavae.

Each case feeds one bad input (NaN/inf, empty, object/complex/bool dtype, wrong
rank, mismatched shapes, zero variance, huge values, labels of mixed types,
broken affinity matrices, unreadable or truncated .mrc files, a file where a
folder is expected, ...) to one public entry point and expects either

- ``Raises``: a ValueError/TypeError (or OSError for paths) whose message names
  the problem (``match=``), raised by skavae or by scikit-learn's validation -
  not from inside torch, numpy, pandas, scipy or matplotlib, and not a torch
  RuntimeError; or
- ``Ok``: a documented, correct result, checked.

CLI commands must exit with code 1 or 2 and a one-line message. No input file
is modified by any case (the input folder is hashed before and after each).
Property-based tests (hypothesis) check the affinity metrics (symmetry, range,
identity) and the estimator's shape handling.

Cases marked ``xfail(strict=True)`` are bugs found by the battery, for the
owners of the code to fix (the reason says what happens).
"""

import hashlib
import os
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mrcfile
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.utils._param_validation import InvalidParameterError

from skavae import AffinityVAE
from skavae.affinity import (
    Affinity,
    FSCAffinity,
    MeanDifference,
    SOAPAffinity,
    check_affinity_matrix,
    class_affinity_matrix,
    read_affinity_csv,
    write_affinity_csv,
)
from skavae.cli import main
from skavae.datasets import (
    load_mrc_folder,
    make_alphanumeric,
    make_proteins,
    make_tetraminos,
    save_mrc_folder,
)
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
from skavae.plotting import (
    plot_confusion_matrix,
    plot_embedding,
    plot_history,
    plot_interpolation_grid,
    plot_pose_sweep,
    plot_proximity_matrix,
    plot_reconstructions,
    plot_traversals,
)

FAST = dict(latent_dims=2, filters=(4,), max_epochs=1, batch_size=8, random_state=0)
RNG = np.random.RandomState(0)
X = RNG.rand(20, 8, 8).astype(np.float32)
Y = np.repeat(["a", "b"], 10)
Z = np.vstack([RNG.normal(0, 1, (10, 2)), RNG.normal(6, 1, (10, 2))])
MIXED = np.array([1, "a"] * 10, dtype=object)  # ints and strings
GOOD = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=["a", "b"], columns=["a", "b"])
ASYMMETRIC = pd.DataFrame([[1, 0.5], [0.2, 1]], index=["a", "b"], columns=["a", "b"])
OUT_OF_RANGE = pd.DataFrame([[1, 2.0], [2.0, 1]], index=["a", "b"], columns=["a", "b"])
MISSING_B = pd.DataFrame([[1.0]], index=["a"], columns=["a"])
NAN_MATRIX = pd.DataFrame(
    [[1, np.nan], [np.nan, 1]], index=["a", "b"], columns=["a", "b"]
)
NOT_SQUARE = pd.DataFrame(
    [[1.0, 0.5, 0.1], [0.5, 1.0, 0.2]], index=["a", "b"], columns=["a", "b", "c"]
)
MISMATCHED = pd.DataFrame([[1, 0.5], [0.5, 1]], index=["a", "b"], columns=["a", "c"])
METRICS = {"mean-difference": MeanDifference(), "fsc": FSCAffinity(), "soap": None}
METRICS["soap"] = SOAPAffinity(n_max=2, l_max=2)

#: innermost frames of an error in these packages are an internal trace leaking
INTERNAL = tuple(
    os.sep + name + os.sep
    for name in ("torch", "numpy", "pandas", "scipy", "matplotlib", "mrcfile")
)


def with_value(A, value, where=(0, 3, 3)):
    A = np.array(A, dtype=np.float64)
    A[where] = value
    return A


# ---------------------------------------------------------------- case model
@dataclass
class Raises:
    types: tuple
    match: str


@dataclass
class Ok:
    check: object  # check(result, ctx) asserts the documented result


def raises(match, types=(ValueError,)):
    return Raises(types if isinstance(types, tuple) else (types,), match)


def ok(check=None):
    return Ok(check or (lambda result, ctx: None))


CASES = []


def case(name, expect, *, bug=None):
    """Register ``func(ctx)`` under ``name``; ``bug`` marks a strict xfail."""

    def register(func):
        marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
        CASES.append(pytest.param(func, expect, id=name, marks=marks))
        return func

    return register


def check_clean(exc):
    """The error comes from skavae's (or sklearn's) validation, not internals."""
    message = str(exc)
    assert message.strip(), "empty error message"
    # torch reports shape/dtype problems as bare RuntimeErrors
    assert type(exc) is not RuntimeError
    assert not type(exc).__module__.startswith("torch")
    assert "torch" not in message.lower() and "Tensor" not in message
    if isinstance(exc, OSError):
        return  # raised where the file is opened; the message names the path
    innermost = traceback.extract_tb(exc.__traceback__)[-1].filename
    assert not any(part in innermost for part in INTERNAL), (
        f"raised inside {innermost}: {type(exc).__name__}: {message}"
    )


# ------------------------------------------------------------------ fixtures
def digest_tree(root):
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


def write_mrc(path, data):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, dtype=np.float32))


@dataclass
class Context:
    root: Path
    model: AffinityVAE
    model_3d: AffinityVAE
    out: Path = None

    def __getitem__(self, name):
        return self.root / name


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    save_mrc_folder(X[:6], Y[[0, 1, 10, 11, 2, 12]], root / "good")
    good = sorted((root / "good").glob("*.mrc"))
    raw = good[0].read_bytes()
    for name, content in {
        "truncated": raw[: len(raw) // 2],
        "header-only": raw[:1024],
        "garbage": os.urandom(2048),
        "empty-file": b"",
    }.items():
        folder = root / name
        folder.mkdir()
        for p in good[1:]:
            (folder / p.name).write_bytes(p.read_bytes())
        (folder / f"a_{name}.mrc").write_bytes(content)
    (root / "mixed-shapes").mkdir()
    write_mrc(root / "mixed-shapes" / "a_0.mrc", X[0])
    write_mrc(root / "mixed-shapes" / "b_0.mrc", X[1, :6, :6])
    (root / "nan").mkdir()
    write_mrc(root / "nan" / "a_0.mrc", with_value(X[0], np.nan, (3, 3)))
    write_mrc(root / "nan" / "b_0.mrc", X[1])
    write_mrc(root / "nan" / "b_1.mrc", X[2])
    (root / "empty").mkdir()
    (root / "a-file.mrc").write_bytes(raw)
    (root / "notes.txt").write_text("not a folder\n")
    (root / "garbage.csv").write_bytes(os.urandom(256))
    (root / "garbage.skavae").write_bytes(os.urandom(256))
    for name, matrix in {
        "asymmetric": ASYMMETRIC,
        "out-of-range": OUT_OF_RANGE,
        "missing-b": MISSING_B,
    }.items():
        matrix.to_csv(root / f"{name}.csv")
    (root / "truncated.csv").write_text(",a,b\na,1,0.5\nb,0.5")
    (root / "empty.csv").write_bytes(b"")
    (root / "ragged.csv").write_text(",a,b\na,1\nb,0.5,1,7,8\n")
    # a dataset and model made with the CLI itself
    common = ["--n-samples", "24", "--size", "16"]
    assert main(["simulate", "alphanumeric", str(root / "train"), *common]) == 0
    tiny = ["--epochs", "1", "--latent-dims", "2", "--filters", "4", "-q"]
    model_path = root / "run" / "model.skavae"
    code = main(["fit", str(root / "train"), "-o", str(model_path), *tiny])
    assert code == 0
    model = AffinityVAE(**FAST).fit(X, Y)
    vols = RNG.rand(12, 8, 8, 8).astype(np.float32)
    model_3d = AffinityVAE(**FAST).fit(vols)
    return Context(root=root, model=model, model_3d=model_3d)


@pytest.fixture
def run_ctx(ctx, tmp_path):
    ctx.out = tmp_path
    before = digest_tree(ctx.root)
    yield ctx
    plt.close("all")
    assert digest_tree(ctx.root) == before, "an input file was modified"


@pytest.mark.parametrize("func, expect", CASES)
def test_bad_input(func, expect, run_ctx):
    if isinstance(expect, Raises):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(expect.types, match=expect.match) as info:
                func(run_ctx)
        check_clean(info.value)
    else:
        result = func(run_ctx)
        expect.check(result, run_ctx)


# ========================================================== AffinityVAE.fit
def fit(X_, y=None, **params):
    return AffinityVAE(**{**FAST, **params}).fit(X_, y)


def finite_latents(model, data=X):
    def check(result, ctx):
        Z_ = result.transform(data)
        assert Z_.shape == (len(data), result.latent_dims)
        assert np.isfinite(Z_).all()

    return check


case("fit-nan", raises("NaN"))(lambda c: fit(with_value(X, np.nan)))
case("fit-inf", raises("infinity"))(lambda c: fit(with_value(X, np.inf)))
case("fit-empty", raises("0 sample"))(lambda c: fit(np.empty((0, 8, 8))))
case("fit-one-sample", raises("1 sample"))(lambda c: fit(X[:1]))
case("fit-empty-objects", raises("0 feature|empty|shape"))(
    lambda c: fit(np.empty((5, 0)))
)
case("fit-object-strings", raises("could not convert|string"))(
    lambda c: fit(np.array([["a", "b"], ["c", "d"]], dtype=object))
)
case("fit-complex", raises("[Cc]omplex"))(lambda c: fit(X.astype(np.complex64)))
case("fit-bool-is-binary-image", ok(lambda m, c: finite_latents(m, X > 0.5)(m, c)))(
    lambda c: fit(X > 0.5)
)
case("fit-1d", raises("Expected 2D array"))(lambda c: fit(X[:, 0, 0]))
case("fit-0d", raises("Expected 2D array|scalar"))(lambda c: fit(np.float32(1.0)))
case("fit-5d", raises("5 dimensions"))(lambda c: fit(RNG.rand(4, 2, 3, 4, 5)))
case("fit-ragged-list", raises(r"object 1 has shape \(8, 9\)"))(
    lambda c: fit([np.zeros((8, 8)), np.zeros((8, 9))] * 3)
)
case("fit-X-y-lengths", raises("inconsistent numbers of samples"))(
    lambda c: fit(X, Y[:-1])
)
case("fit-y-2d", raises("1d array|1D|column"))(
    lambda c: fit(X, np.stack([Y, Y], axis=1))
)
case("fit-zero-variance", ok(finite_latents))(lambda c: fit(np.full((20, 8, 8), 3.0)))
case("fit-zero-variance-standardisation", ok())(
    lambda c: np.testing.assert_allclose(
        fit(np.full((20, 8, 8), 3.0)).inverse_transform(np.zeros((2, 2))),
        3.0,
        atol=3.0,
    )
)
case("fit-huge-values", ok(lambda m, c: finite_latents(m, X * 1e30)(m, c)))(
    lambda c: fit(X.astype(np.float64) * 1e30)
)
case(
    "fit-beyond-float32",
    raises("float32|too large|infinity"),
)(lambda c: fit(X.astype(np.float64) * 1e300))
case(
    "fit-mixed-labels",
    raises("[Mm]ix|type"),
)(lambda c: fit(X, MIXED))
case("fit-mixed-labels-listed", ok(lambda m, c: None))(
    # a list of mixed labels is turned into strings by numpy: documented result
    lambda c: np.testing.assert_array_equal(fit(X, [1, "a"] * 10).classes_, ["1", "a"])
)
case("fit-affinity-asymmetric", raises("not symmetric"))(
    lambda c: fit(X, Y, affinity=ASYMMETRIC)
)
case("fit-affinity-out-of-range", raises(r"\[-1, 1\]"))(
    lambda c: fit(X, Y, affinity=OUT_OF_RANGE)
)
case("fit-affinity-missing-label", raises(r"\['b'\] are not in the affinity"))(
    lambda c: fit(X, Y, affinity=MISSING_B)
)
case("fit-affinity-nan", raises("NaN"))(lambda c: fit(X, Y, affinity=NAN_MATRIX))
case("fit-affinity-without-labels", raises("needs the class labels"))(
    lambda c: fit(X, affinity=GOOD)
)
case("fit-affinity-metric-on-mixed-labels", ok())(
    lambda c: fit(X, np.array(["a", "b"] * 10), affinity=MeanDifference())
)
case("fit-metric-returns-nan", raises("NaN or infinity"))(
    lambda c: fit(X, affinity=lambda A, B=None: np.full((len(A), len(A)), np.nan))
)
case("fit-metric-out-of-range", raises(r"\[-1, 1\]"))(
    lambda c: fit(X, affinity=lambda A, B=None: np.full((len(A), len(A)), 5.0))
)
case("fit-metric-wrong-shape", raises("shape"))(
    lambda c: fit(X, affinity=lambda A, B=None: np.ones(3))
)
case("fit-input-shape-mismatch", raises("holds 12 values"))(
    lambda c: fit(X.reshape(20, -1), input_shape=(3, 4))
)
case("fit-filters-invalid", raises("filters must be"))(
    lambda c: fit(X, filters=(4, -1))
)
case("fit-nan-hyper-parameter", raises("'beta' parameter|beta"))(
    lambda c: fit(X, beta=np.nan)
)
case("fit-lazy-folder-with-nan", raises("NaN"))(
    lambda c: fit(load_mrc_folder(c["nan"])[0])
)


# the hyper-parameters, checked by scikit-learn's machinery (named in the error)
for param, value in {
    "beta": -1.0,
    "gamma": -0.5,
    "latent_dims": 0,
    "pose_dims": -1,
    "batch_size": 1,
    "learning_rate": 0.0,
    "validation_fraction": 1.0,
    "affinity": "fsc",
    "max_epochs": 0,
}.items():
    case(f"fit-{param}-invalid", raises(f"'{param}' parameter", InvalidParameterError))(
        lambda c, param=param, value=value: fit(X, **{param: value})
    )
for param in ("latent_dims", "max_epochs", "n_splats", "checkpoint_every"):
    case(
        f"fit-{param}-bool",
        raises(f"'{param}' parameter.*an int", InvalidParameterError),
    )(lambda c, param=param: fit(X, **{param: True}))
case("fit-filters-empty", raises("filters must be a non-empty sequence"))(
    lambda c: fit(X, filters=())
)
case("fit-filters-zero", raises("filters must be a non-empty sequence"))(
    lambda c: fit(X, filters=(4, 0))
)
case("fit-input-shape-4d", raises("input_shape must be a tuple of 1 to 3"))(
    lambda c: fit(X.reshape(20, -1), input_shape=(2, 2, 2, 8))
)
case("fit-input-shape-bool", raises("input_shape must be a tuple of 1 to 3"))(
    lambda c: fit(X.reshape(20, -1), input_shape=(True, 64))
)
case("fit-affinity-not-square", raises("not square"))(
    lambda c: fit(X, Y, affinity=NOT_SQUARE)
)
case("fit-affinity-labels-mismatch", raises("same labels"))(
    lambda c: fit(X, Y, affinity=MISMATCHED)
)
case("fit-class-metric-out-of-range", raises(r"\[-1, 1\]"))(
    lambda c: fit(
        X,
        Y,
        affinity=lambda A, B=None: np.full((len(A), len(A if B is None else B)), 3.0),
    )
)
case("fit-lambda-schedule-with-checkpoints", raises("beta_schedule is a lambda"))(
    lambda c: fit(X, beta_schedule=lambda e: 1.0, checkpoint_dir=c.out / "ckpt")
)

# issue 16: unclear errors made clear
BOOLS = np.repeat([False, True], 10)
case("fit-object-array-of-arrays", raises(r"object 0 has shape \(8, 8\), object 5"))(
    lambda c: fit(np.array([*X[:5], X[5, :4], *X[6:]], dtype=object))
)
for kind, values in {
    "complex": np.ones((2, 2), complex),
    "bool": np.ones((2, 2), bool),
    "str": np.full((2, 2), "x"),
}.items():
    word = {
        "complex": "complex numbers",
        "bool": "booleans",
        "str": "values of dtype <U1",
    }[kind]
    case(f"fit-metric-returns-{kind}", raises(f"holds {word}; similarities must be"))(
        lambda c, v=values: fit(
            X, Y, affinity=lambda A, B=None: np.resize(v, (len(A),) * 2)
        )
    )
case("fit-affinity-class-not-instance", raises(r"class FSCAffinity.*FSCAffinity\(\)"))(
    lambda c: fit(X, Y, affinity=FSCAffinity)
)
case(
    "fit-input-shape-overflow", raises(r"input_shape=.*holds \d+ values but X has 64")
)(lambda c: fit(X.reshape(20, -1), input_shape=(2**62, 2**62, 4)))
case("fit-bool-labels", raises("y holds booleans, which pandas reads as a mask"))(
    lambda c: fit(X, BOOLS, affinity=MeanDifference())
)
case(
    "fit-nan-labels", raises(r"y holds missing labels .* first at row 3 \(1 in all\)")
)(lambda c: fit(X, np.where(np.arange(len(X)) == 3, None, Y.astype(object))))
case("fit-bool-labels-frame", raises("y holds booleans"))(
    lambda c: fit(
        X,
        BOOLS,
        affinity=pd.DataFrame(np.eye(2), index=[False, True], columns=[False, True]),
    )
)
case("mean-difference-inf-scale", raises("'scale' parameter.*Got inf"))(
    lambda c: MeanDifference(scale=np.inf)(X[:2])
)
case("fit-list-of-two-shapes", raises(r"list of arrays.*object 5 has shape \(4, 8\)"))(
    lambda c: fit([*X[:5], X[5, :4], *X[6:]])
)
case("fsc-objects-of-different-shapes", raises(r"X holds objects of different shapes"))(
    lambda c: FSCAffinity()([X[0], X[1, :6, :6]])
)
case("class-matrix-nan-labels", raises("missing labels .*first at row 3"))(
    lambda c: class_affinity_matrix(
        X, np.where(np.arange(20) == 3, np.nan, np.arange(20) % 2), MeanDifference()
    )
)
case("class-matrix-bool-labels", raises("y holds booleans"))(
    lambda c: class_affinity_matrix(X, BOOLS, MeanDifference())
)
case("class-matrix-templates-list", raises("templates must be a mapping.*got a list"))(
    lambda c: class_affinity_matrix(templates=[X[0], X[1]], metric=MeanDifference())
)
case("class-matrix-metric-class", raises("metric is the class MeanDifference"))(
    lambda c: class_affinity_matrix(X, Y, MeanDifference)
)
for name, match in {
    "garbage": "garbage.csv' is not an affinity CSV file \\(not a text file",
    "empty": "empty.csv' is empty",
    "ragged": "ragged.csv' is not an affinity CSV file",
    "asymmetric": "asymmetric.csv': The affinity matrix is not symmetric",
}.items():
    case(f"read-csv-{name}-names-the-file", raises(match))(
        lambda c, name=name: read_affinity_csv(c[f"{name}.csv"])
    )
case(
    "write-csv-into-a-missing-folder",
    raises(r"cannot write '.*missing/a.csv': its folder .* does not exist", (OSError,)),
)(lambda c: write_affinity_csv(GOOD, c.out / "missing" / "a.csv"))


# ======================================== AffinityVAE fitted: other methods
case("transform-nan", raises("NaN"))(lambda c: c.model.transform(with_value(X, np.nan)))
case("transform-empty", raises("0 sample"))(
    lambda c: c.model.transform(np.empty((0, 8, 8)))
)
case("transform-other-shape", raises(r"fitted on objects of shape \(8, 8\)"))(
    lambda c: c.model.transform(RNG.rand(3, 8, 9))
)
case("transform-3d-into-2d-model", raises("fitted on objects of shape"))(
    lambda c: c.model.transform(RNG.rand(3, 8, 8, 8))
)
case("transform-flat", raises("fitted on objects of shape|features"))(
    lambda c: c.model.transform(RNG.rand(3, 64))
)
case("transform-complex", raises("[Cc]omplex"))(
    lambda c: c.model.transform(X.astype(np.complex128))
)
case("transform-object", raises("could not convert|string"))(
    lambda c: c.model.transform(np.full((2, 8, 8), "x", dtype=object))
)
case("transform-huge", ok(lambda Z_, c: np.isfinite(Z_).all() or pytest.fail()))(
    lambda c: c.model.transform(X.astype(np.float64) * 1e30)
)
case("transform-unfitted", raises("not fitted", types=(ValueError, AttributeError)))(
    lambda c: AffinityVAE().transform(X)
)
case("encode-nan", raises("NaN"))(lambda c: c.model.encode(with_value(X, np.nan)))
case("score-nan", raises("NaN"))(lambda c: c.model.score(with_value(X, np.nan)))
case("score-mixed-labels-without-affinity", ok())(
    lambda c: np.isfinite(c.model.score(X, MIXED)) or pytest.fail()
)
case("reconstruct-wrong-rank", raises("fitted on objects of shape|dimensions"))(
    lambda c: c.model.reconstruct(RNG.rand(2, 2, 8, 8, 8))
)
case("inverse-nan", raises("finite"))(
    lambda c: c.model.inverse_transform(np.full((2, 2), np.nan))
)
case("inverse-wrong-width", raises(r"shape \(n_samples, 2\)"))(
    lambda c: c.model.inverse_transform(np.zeros((2, 3)))
)
case("inverse-1d", raises(r"shape \(n_samples, 2\)"))(
    lambda c: c.model.inverse_transform(np.zeros(2))
)
case("inverse-complex", raises("real numbers"))(
    lambda c: c.model.inverse_transform(np.zeros((2, 2), dtype=complex))
)
case("inverse-object", raises("real numbers"))(
    lambda c: c.model.inverse_transform(np.array([["a", "b"]], dtype=object))
)
case(
    "inverse-empty",
    raises("Z is empty"),
)(lambda c: c.model.inverse_transform(np.zeros((0, 2))))
case("inverse-bad-pose", raises("pose must have shape"))(
    lambda c: c.model.inverse_transform(np.zeros((2, 2)), pose=np.zeros((3, 1)))
)
case("inverse-nan-pose", raises("pose must hold finite"))(
    lambda c: c.model.inverse_transform(np.zeros((2, 2)), pose=[np.nan])
)
case("sample-zero", raises("positive integer"))(lambda c: c.model.sample(0))
case("sample-float", raises("positive integer"))(lambda c: c.model.sample(2.5))
case("partial-fit-other-shape", raises("fitted on objects of shape"))(
    lambda c: AffinityVAE(**FAST).partial_fit(X).partial_fit(RNG.rand(4, 9, 9))
)
case("transform-signals-other-length", raises("expecting 8 features"))(
    lambda c: fit(RNG.rand(20, 8)).transform(RNG.rand(3, 5))
)
case("transform-flat-rows-of-images", raises(r"flat rows.*shape \(8, 8\)"))(
    lambda c: c.model.transform(X.reshape(20, -1))
)
case("inverse-beyond-float32", raises("beyond the float32 range"))(
    lambda c: c.model.inverse_transform(np.full((2, 2), 1e39))
)
case("inverse-pose-beyond-float32", raises("pose has values beyond the float32"))(
    lambda c: c.model.inverse_transform(np.zeros((2, 2)), pose=[1e39])
)
case("inverse-pose-without-pose-channel", raises("no pose channel"))(
    lambda c: fit(X, pose_dims=0).inverse_transform(np.zeros((1, 2)), pose=[1.0])
)
case("inverse-after-set-params", raises(r"shape \(n_samples, 2\).*set to 5 after"))(
    lambda c: fit(X).set_params(latent_dims=5).inverse_transform(np.zeros((2, 5)))
)
case("sample-after-set-params", ok(lambda S, c: S.shape == (2, 8, 8) or pytest.fail()))(
    lambda c: fit(X).set_params(latent_dims=5, pose_dims=0).sample(2)
)
case("sample-bool", raises("positive integer"))(lambda c: c.model.sample(True))
case("partial-fit-label-not-in-frame", raises(r"\['z'\] are not in the affinity"))(
    lambda c: (
        AffinityVAE(**FAST, affinity=GOOD)
        .partial_fit(X, Y)
        .partial_fit(X[:4], ["a", "z", "a", "b"])
    )
)
case("partial-fit-unknown-label", raises(r"\['c'\] are not in the affinity"))(
    lambda c: (
        AffinityVAE(**FAST, affinity=MeanDifference())
        .partial_fit(X, Y)
        .partial_fit(X[:4], ["c"] * 4)
    )
)


# =================================================================== affinity
def similarity_matrix(n):
    def check(S, ctx):
        assert S.shape == (n, n) and np.isfinite(S).all()
        assert S.min() >= -1 and S.max() <= 1
        np.testing.assert_allclose(S, S.T, atol=1e-12)
        np.testing.assert_array_equal(np.diag(S), 1.0)

    return check


for name, metric in METRICS.items():
    case(f"{name}-nan", raises("NaN or infinity"))(
        lambda c, m=metric: m(with_value(X[:4], np.nan))
    )
    case(f"{name}-inf-in-Y", raises(r"Y contains NaN or infinity"))(
        lambda c, m=metric: m(X[:4], with_value(X[:3], -np.inf))
    )
    case(f"{name}-empty", raises("empty"))(lambda c, m=metric: m(np.empty((0, 8, 8))))
    case(f"{name}-empty-list", raises("empty|stack of objects"))(
        lambda c, m=metric: m([])
    )
    for dtype in (object, complex, bool):
        case(f"{name}-{dtype.__name__}", raises("real numbers"))(
            lambda c, m=metric, d=dtype: m(X[:4].astype(d))
        )
    case(f"{name}-1d", raises("stack of objects"))(lambda c, m=metric: m(X[0, 0]))
    case(f"{name}-X-Y-shapes", raises("same shape"))(
        lambda c, m=metric: m(X[:3], RNG.rand(2, 8, 9))
    )
    case(f"{name}-zero-variance", ok(similarity_matrix(3)))(
        lambda c, m=metric: m(np.stack([np.zeros((8, 8)), np.ones((8, 8)), X[0]]))
    )
    case(f"{name}-huge", ok(similarity_matrix(4)))(
        lambda c, m=metric: m(X[:4].astype(np.float64) * 1e30)
    )
    case(
        f"{name}-4d-objects",
        ok(similarity_matrix(2))  # MeanDifference is documented for any rank
        if name == "mean-difference"
        else raises("works on objects of"),
    )(lambda c, m=metric: m(RNG.rand(2, 2, 2, 2, 2)))
case(
    "affinity-base-class",
    raises("abstract method _pairwise_block", types=(TypeError,)),
)(lambda c: Affinity()(X[:2]))
case("affinity-bad-chunk-size", raises("'chunk_size' parameter"))(
    lambda c: MeanDifference(chunk_size=0)(X[:2])
)
case("soap-1d-objects", raises("works on objects of 2D or 3D"))(
    lambda c: METRICS["soap"](RNG.rand(3, 8))
)
case("mean-difference-bad-scale", raises("'scale' parameter"))(
    lambda c: MeanDifference(scale=np.nan)(X[:2])
)
case("fsc-bad-resolution", raises("finer than Nyquist"))(
    lambda c: FSCAffinity(resolution=0.5)(X[:2])
)
case("check-matrix-asymmetric", raises("not symmetric"))(
    lambda c: check_affinity_matrix(ASYMMETRIC)
)
case("check-matrix-out-of-range", raises(r"\[-1, 1\]"))(
    lambda c: check_affinity_matrix(OUT_OF_RANGE)
)
case("check-matrix-missing-labels", raises(r"\['b'\] are not in"))(
    lambda c: check_affinity_matrix(MISSING_B, labels=Y)
)
case("check-matrix-nan", raises("NaN"))(lambda c: check_affinity_matrix(NAN_MATRIX))
case("check-matrix-inf", raises("NaN or infinity"))(
    lambda c: check_affinity_matrix(NAN_MATRIX.fillna(np.inf))
)
case("check-matrix-ndarray", raises("must be a pandas DataFrame"))(
    lambda c: check_affinity_matrix(np.eye(2))
)
case("check-matrix-empty", raises("empty"))(
    lambda c: check_affinity_matrix(pd.DataFrame())
)
case("check-matrix-not-square", raises("not square"))(
    lambda c: check_affinity_matrix(GOOD.iloc[:, :1])
)
case("check-matrix-strings", raises("non-numeric"))(
    lambda c: check_affinity_matrix(GOOD.astype(str).replace("0.5", "half"))
)
case(
    "check-matrix-complex",
    raises("non-numeric|real|[Cc]omplex"),
)(lambda c: check_affinity_matrix(GOOD.astype(complex) + 1j))
case("check-matrix-other-labels", raises("same labels"))(
    lambda c: check_affinity_matrix(GOOD.set_axis(["a", "c"], axis=1))
)
case(
    "check-matrix-mixed-labels",
    ok(lambda M, c: list(M.index) == [1, "a"] or pytest.fail()),
)(
    lambda c: check_affinity_matrix(
        pd.DataFrame(np.eye(2), index=[1, "a"], columns=[1, "a"]), labels=MIXED
    )
)
case("class-matrix-nan", raises(r"X\[0\] contains NaN"))(
    lambda c: class_affinity_matrix(with_value(X, np.nan), Y, MeanDifference())
)
case("class-matrix-lengths", raises("different lengths"))(
    lambda c: class_affinity_matrix(X, Y[:5], MeanDifference())
)
case("class-matrix-no-metric", raises("metric must be a callable"))(
    lambda c: class_affinity_matrix(X, Y, "fsc")
)
case(
    "class-matrix-empty",
    raises("empty"),
)(lambda c: class_affinity_matrix(np.empty((0, 8, 8)), [], MeanDifference()))
case(
    "class-matrix-mixed-labels",
    ok(lambda M, c: (M.shape == (2, 2) and set(M.index) == {1, "a"}) or pytest.fail()),
)(lambda c: class_affinity_matrix(X, MIXED, MeanDifference()))
case("class-matrix-zero-variance", ok(lambda M, c: np.isfinite(M.values).all()))(
    lambda c: class_affinity_matrix(np.zeros((4, 8, 8)), list("aabb"), FSCAffinity())
)
case("read-csv-asymmetric", raises("not symmetric"))(
    lambda c: read_affinity_csv(c["asymmetric.csv"])
)
case("read-csv-out-of-range", raises(r"\[-1, 1\]"))(
    lambda c: read_affinity_csv(c["out-of-range.csv"])
)
case("read-csv-truncated", raises("NaN|not square|labels"))(
    lambda c: read_affinity_csv(c["truncated.csv"])
)
case(
    "read-csv-garbage",
    raises("affinity|CSV|codec|decode|not square|labels", types=(ValueError,)),
)(lambda c: read_affinity_csv(c["garbage.csv"]))
case("read-csv-folder", raises("Is a directory|folder", types=(OSError, ValueError)))(
    lambda c: read_affinity_csv(c["good"])
)
case("write-csv-asymmetric", raises("not symmetric"))(
    lambda c: write_affinity_csv(ASYMMETRIC, c.out / "a.csv")
)
case("write-csv-onto-folder", raises("[Ii]s a directory|folder", types=(OSError,)))(
    lambda c: write_affinity_csv(GOOD, c["good"])
)
case("write-csv-into-a-file", raises("Not a directory|folder", types=(OSError,)))(
    lambda c: write_affinity_csv(GOOD, c["notes.txt"] / "a.csv")
)


# =================================================================== datasets
case("alphanumeric-zero-samples", raises("n_samples must be"))(
    lambda c: make_alphanumeric(0)
)
case("alphanumeric-nan-angle", raises("max_angle"))(
    lambda c: make_alphanumeric(4, size=8, max_angle=np.nan)
)
case("alphanumeric-small-size", raises("size must be"))(
    lambda c: make_alphanumeric(4, size=4)
)
case("alphanumeric-mixed-characters", raises("character"))(
    lambda c: make_alphanumeric(4, size=8, characters=[1, "a"])
)
case("alphanumeric-no-characters", raises("character|empty"))(
    lambda c: make_alphanumeric(4, size=8, characters=[])
)
case("tetraminos-unknown-shape", raises("shape"))(
    lambda c: make_tetraminos(4, shapes=["Q"], size=8)
)
case("tetraminos-no-shapes", raises("shape|empty"))(
    lambda c: make_tetraminos(4, shapes=[], size=8)
)
case("tetraminos-bad-step", raises("angle_step"))(
    lambda c: make_tetraminos(4, size=8, angle_step=7)
)
case("tetraminos-inf-shift", raises("max_shift"))(
    lambda c: make_tetraminos(4, size=8, max_shift=np.inf)
)
case("proteins-no-structures", raises("empty"))(
    lambda c: make_proteins(4, structures=[], size=8)
)
case("proteins-folder-as-structure", raises("structure|file|PDB"))(
    lambda c: make_proteins(4, structures=[str(c["good"])], size=8)
)
case("proteins-garbage-file", raises("structure|atoms|PDB|read"))(
    lambda c: make_proteins(4, structures=[str(c["garbage.csv"])], size=8)
)
case("load-file-as-folder", raises("is not a folder"))(
    lambda c: load_mrc_folder(c["notes.txt"])
)
case("load-mrc-file-as-folder", raises("is not a folder"))(
    lambda c: load_mrc_folder(c["a-file.mrc"])
)
case("load-missing-folder", raises("is not a folder"))(
    lambda c: load_mrc_folder(c["no-such-folder"])
)
case("load-empty-folder", raises("holds no"))(lambda c: load_mrc_folder(c["empty"]))
for broken in ("truncated", "header-only", "garbage", "empty-file"):
    case(f"load-{broken}-mrc", raises(f"a_{broken}.mrc' is not a readable MRC"))(
        lambda c, b=broken: load_mrc_folder(c[b])
    )
case("load-mixed-shapes", raises("must have one shape"))(
    lambda c: load_mrc_folder(c["mixed-shapes"])
)
case("load-bad-label-func", raises("label_func must be callable"))(
    lambda c: load_mrc_folder(c["good"], label_func="first")
)
case("stack-bad-index", raises("cannot index", types=(IndexError,)))(
    lambda c: load_mrc_folder(c["good"])[0]["a"]
)
case("save-into-a-file", raises("exists|not a folder|Not a directory", (OSError,)))(
    lambda c: save_mrc_folder(X[:2], ["a", "b"], c["notes.txt"])
)
case("save-empty", raises("empty"))(
    lambda c: save_mrc_folder(np.empty((0, 8, 8)), [], c.out / "s")
)
case("save-lengths", raises("labels"))(
    lambda c: save_mrc_folder(X[:3], ["a"], c.out / "s")
)
case("save-wrong-rank", raises("2D images or 3D volumes"))(
    lambda c: save_mrc_folder(RNG.rand(2, 2, 2, 2, 2), ["a", "b"], c.out / "s")
)
case("save-object", raises("could not convert|string|real"))(
    lambda c: save_mrc_folder(
        np.full((2, 4, 4), "x", dtype=object), ["a", "b"], c.out / "s"
    )
)
case(
    "save-complex",
    raises("[Cc]omplex|real"),
)(lambda c: save_mrc_folder(X[:2] + 1j, ["a", "b"], c.out / "s"))
case("save-bad-label", raises("cannot be part of a file name"))(
    lambda c: save_mrc_folder(X[:2], ["a/b", "c"], c.out / "s")
)
case(
    "save-nan-round-trip",
    ok(lambda out, c: np.isnan(out[0][3, 3]) or pytest.fail()),
)(
    lambda c: (
        save_mrc_folder(with_value(X[:2], np.nan), ["a", "b"], c.out / "s"),
        load_mrc_folder(c.out / "s")[0],
    )[1]
)
case(
    "save-huge-beyond-float32",
    raises("float32|range|large|finite"),
)(lambda c: save_mrc_folder(X[:2].astype(np.float64) * 1e300, ["a", "b"], c.out / "s"))


# ================================================================= evaluation
case("knn-nan", raises("NaN"))(
    lambda c: hard_knn_predict(with_value(Z, np.nan, (0, 0)), Y, Z)
)
case("knn-empty", raises("0 sample"))(
    lambda c: hard_knn_predict(Z, Y, np.empty((0, 2)))
)
case("knn-lengths", raises("y_ref has 19 labels"))(
    lambda c: hard_knn_predict(Z, Y[:-1], Z)
)
case("knn-complex", raises("[Cc]omplex"))(lambda c: hard_knn_predict(Z + 1j, Y, Z))
case("knn-3d-latents", raises("Expected 2D|dim"))(
    lambda c: hard_knn_predict(Z[:, :, None], Y, Z)
)
case("knn-width", raises("features"))(lambda c: hard_knn_predict(Z, Y, Z[:, :1]))
case("knn-mixed-labels", raises("[Mm]ix|[Uu]nknown label type"))(
    lambda c: hard_knn_predict(Z, MIXED, Z)
)
case("knn-huge", ok(lambda p, c: (p == Y).mean() > 0.9 or pytest.fail()))(
    lambda c: hard_knn_predict(Z * 1e30, Y, Z * 1e30)
)
case("knn-model-objects-nan", raises("NaN"))(
    lambda c: hard_knn_predict(X, Y, with_value(X, np.nan), model=c.model)
)
case("knn-model-unfitted", raises("not fitted", (ValueError, AttributeError)))(
    lambda c: hard_knn_predict(X, Y, X, model=AffinityVAE())
)
case("knn-zero-neighbors", raises("n_neighbors must be"))(
    lambda c: hard_knn_predict(Z, Y, Z, n_neighbors=0)
)
case("soft-knn-inf", raises("infinity"))(
    lambda c: soft_knn_proba(Z, Y, with_value(Z, np.inf, (0, 0)))
)
case("soft-knn-mixed-labels", raises("[Mm]ix|[Uu]nknown label type"))(
    lambda c: soft_knn_proba(Z, MIXED, Z)
)
case("cluster-nan", raises("NaN"))(
    lambda c: ClusterMeanClassifier().fit(with_value(Z, np.nan, (0, 0)), Y)
)
case("cluster-mixed-labels", raises("[Mm]ix|[Uu]nknown label type"))(
    lambda c: ClusterMeanClassifier().fit(Z, MIXED)
)
case("cluster-empty", raises("0 sample"))(
    lambda c: ClusterMeanClassifier().fit(np.empty((0, 2)), [])
)
case(
    "cluster-zero-variance",
    ok(lambda p, c: list(p) == ["a", "b", "unknown"] or pytest.fail()),
)(
    lambda c: (
        ClusterMeanClassifier()
        .fit(np.repeat([[0.0, 0.0], [1.0, 1.0]], 5, axis=0), np.repeat(["a", "b"], 5))
        .predict([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    )
)
case(
    "cluster-all-identical",
    ok(lambda p, c: list(p) == ["a", "unknown"] or pytest.fail()),
)(
    lambda c: (
        ClusterMeanClassifier()
        .fit(np.zeros((6, 2)), ["a"] * 6)
        .predict([[0.0, 0.0], [1.0, 0.0]])
    )
)
case("proximity-nan", raises("NaN"))(
    lambda c: proximity_matrix(with_value(Z, np.nan, (0, 0)), Y)
)
case("proximity-lengths", raises("y has 19 labels"))(
    lambda c: proximity_matrix(Z, Y[:-1])
)
case("proximity-2d-labels", raises("must be 1D"))(
    lambda c: proximity_matrix(Z, Y[:, None])
)
case(
    "proximity-mixed-labels",
    raises("[Mm]ix|type"),
)(lambda c: proximity_matrix(Z, MIXED))
case(
    "proximity-zero-variance", ok(lambda P, c: (P.values == 0).all() or pytest.fail())
)(lambda c: proximity_matrix(np.zeros((20, 2)), Y))
case("proximity-huge", ok(lambda P, c: np.isfinite(P.values).all() or pytest.fail()))(
    lambda c: proximity_matrix(Z * 1e30, Y)
)
case("separation-one-class", raises("at least two classes"))(
    lambda c: separation_score(Z, ["a"] * 20)
)
case("separation-zero-variance", ok(lambda s, c: np.isnan(s) or pytest.fail()))(
    # every latent identical: no spread and no distance - NaN, not a crash
    lambda c: separation_score(np.zeros((20, 2)), Y)
)
case("separation-complex", raises("[Cc]omplex"))(lambda c: separation_score(Z + 1j, Y))
case("pose-fit-nan-angles", raises("angles must be finite"))(
    lambda c: pose_angle_fit(Z[:, 0], with_value(np.arange(20.0), np.nan, 0))
)
case("pose-fit-constant-angles", raises("angles are all equal"))(
    lambda c: pose_angle_fit(Z[:, 0], np.zeros(20))
)
case("pose-fit-lengths", raises("one angle per sample"))(
    lambda c: pose_angle_fit(Z[:, 0], np.arange(5.0))
)
case("pose-fit-nan-pose", raises("NaN"))(
    lambda c: pose_angle_fit(with_value(Z[:, 0], np.nan, 0), np.arange(20.0))
)
case("pose-fit-object-angles", raises("could not convert|string"))(
    lambda c: pose_angle_fit(Z[:, 0], np.array(["x"] * 20, dtype=object))
)
case(
    "pose-fit-zero-variance-pose",
    ok(lambda f, c: (f.r2 == 0 and f.slope == 0) or pytest.fail()),
)(lambda c: pose_angle_fit(np.zeros(20), np.arange(20.0)))
case("pose-fit-3d-model-without-pose", raises("no pose channel"))(
    lambda c: pose_angle_fit(
        X, np.arange(20.0), model=AffinityVAE(**FAST, pose_dims=0).fit(X)
    )
)
case("confusion-lengths", raises("y_pred has 19 labels"))(
    lambda c: seen_unseen_confusion(Y, Y[:-1])
)
case(
    "confusion-mixed-labels",
    raises("[Mm]ix|type"),
)(lambda c: seen_unseen_confusion(MIXED, MIXED))
case("report-nan", raises("NaN"))(
    lambda c: latent_map_report(None, with_value(Z, np.nan, (0, 0)), Y)
)
case("report-one-class", raises("at least two classes"))(
    lambda c: latent_map_report(None, Z, ["a"] * 20)
)
case("report-unseen-lengths", raises("y_unseen has 3 labels"))(
    lambda c: latent_map_report(None, Z, Y, Z[:4], ["c"] * 3)
)
case("report-unseen-is-seen", raises("y_unseen holds classes that are in y_seen"))(
    lambda c: latent_map_report(None, Z, Y, Z[:4], ["a"] * 4)
)
case(
    "report-mixed-labels",
    raises("[Mm]ix|type"),
)(lambda c: latent_map_report(None, Z, MIXED))


# =================================================================== plotting
case("embedding-nan", raises("NaN"))(
    lambda c: plot_embedding(with_value(Z, np.nan, (0, 0)), Y, method="pca")
)
case("embedding-lengths", raises("19 labels"))(
    lambda c: plot_embedding(Z, Y[:-1], method="pca")
)
case("embedding-empty", raises("0 sample"))(
    lambda c: plot_embedding(np.empty((0, 2)), [], method="pca")
)
case("embedding-bad-method", raises("method"))(
    lambda c: plot_embedding(Z, Y, method="lda")
)
case("embedding-split-lengths", raises("split"))(
    lambda c: plot_embedding(Z, Y, method="pca", split=["train"] * 3)
)
case("embedding-zero-variance", ok(lambda f, c: len(f.axes) >= 1 or pytest.fail()))(
    lambda c: plot_embedding(np.zeros((20, 2)), Y, method="none")
)
case("embedding-mixed-labels", raises("mixes labels"))(
    lambda c: plot_embedding(Z, MIXED, method="none")
)
case("embedding-thumbnail-shapes", raises("thumbnails"))(
    lambda c: plot_embedding(Z, Y, method="none", thumbnails=RNG.rand(3, 8, 8))
)
case("confusion-plot-lengths", raises("y_pred has 19 labels"))(
    lambda c: plot_confusion_matrix(Y, Y[:-1])
)
case("proximity-plot-nan", raises("NaN"))(
    lambda c: plot_proximity_matrix(with_value(Z, np.nan, (0, 0)), Y)
)
case("proximity-plot-precomputed-asymmetric", ok())(
    # a precomputed matrix is drawn as given (only squareness is required)
    lambda c: plot_proximity_matrix(ASYMMETRIC)
)
case("proximity-plot-not-square", raises("must be square"))(
    lambda c: plot_proximity_matrix(GOOD.iloc[:, :1])
)
case("proximity-plot-no-labels", raises("Pass y"))(lambda c: plot_proximity_matrix(Z))
case("history-not-a-history", raises("history|epoch"))(
    lambda c: plot_history(pd.DataFrame({"x": [1, 2]}))
)
case("history-unknown-term", raises("term|column|loss2"))(
    lambda c: plot_history(c.model, terms=["loss2"])
)
case("history-string", raises("history|model|DataFrame"))(
    lambda c: plot_history("history.csv")
)
case("traversals-nan", raises("NaN"))(
    lambda c: plot_traversals(c.model, with_value(X, np.nan))
)
case("traversals-wrong-shape", raises("shape"))(
    lambda c: plot_traversals(c.model, RNG.rand(2, 9, 9))
)
case("traversals-no-model", raises("model"))(lambda c: plot_traversals(None, X))
case("traversals-even-steps", raises("must be odd"))(
    lambda c: plot_traversals(c.model, X, n_steps=4)
)
case("traversals-bad-dims", raises("dims must be latent dimensions"))(
    lambda c: plot_traversals(c.model, X, dims=[5])
)
case("traversals-index-out-of-range", raises("index"))(
    lambda c: plot_traversals(c.model, X, index=99)
)
case("interpolation-three-objects", raises("four|4"))(
    lambda c: plot_interpolation_grid(c.model, X[:3])
)
case("interpolation-nan", raises("NaN"))(
    lambda c: plot_interpolation_grid(c.model, with_value(X[:4], np.nan))
)
case("pose-sweep-nan-angles", raises("angles must be finite"))(
    lambda c: plot_pose_sweep(c.model, X, angles=with_value(np.arange(20.0), np.nan, 0))
)
case("pose-sweep-no-pose", raises("no pose channel"))(
    lambda c: plot_pose_sweep(AffinityVAE(**FAST, pose_dims=0).fit(X), X)
)
case("reconstructions-nan", raises("NaN"))(
    lambda c: plot_reconstructions(c.model, with_value(X, np.nan))
)
case("reconstructions-3d-into-2d", raises("fitted on objects of shape|shape"))(
    lambda c: plot_reconstructions(c.model, RNG.rand(4, 8, 8, 8))
)
case(
    "reconstructions-zero-variance",
    ok(lambda f, c: len(f.axes) > 0 or pytest.fail()),
)(lambda c: plot_reconstructions(c.model_3d, np.zeros((3, 8, 8, 8))))
case("reconstructions-bad-projection", raises("projection"))(
    lambda c: plot_reconstructions(c.model_3d, RNG.rand(3, 8, 8, 8), projection="sum")
)


# ======================================================================== CLI
def cli(ctx, *argv, code=(1, 2)):
    """Run ``skavae argv``; return the one-line error after checking the code."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main([str(a) for a in argv])
    text = err.getvalue()
    errors = [line for line in text.splitlines() if "error:" in line]
    assert status in code, (status, text)
    assert "Traceback" not in text
    assert len(errors) == 1 and text.strip().endswith(errors[0]), text
    return errors[0]


def cli_error(*argv, match, code=(1, 2)):
    def run(ctx):
        argv_ = [a(ctx) if callable(a) else a for a in argv]
        line = cli(ctx, *argv_, code=code)
        if not __import__("re").search(match, line):
            raise AssertionError(f"{line!r} does not match {match!r}")

    return run


def at(name):
    return lambda ctx: ctx.root / name


def out(name):
    return lambda ctx: ctx.out / name


MODEL = at("run/model.skavae")
TINY = ["--epochs", "1", "--latent-dims", "2", "--filters", "4", "-q"]
CLI_CASES = {
    "cli-no-command": ([], "required|command", (2,)),
    "cli-unknown-command": (["train"], "invalid choice", (2,)),
    "cli-demo-zero-samples": (["demo", "--n-samples", "0"], "positive integer", (2,)),
    "cli-demo-nan-beta": (
        ["demo", "--beta", "nan", "--n-samples", "40"],
        "beta",
        (1, 2),
    ),
    "cli-simulate-into-a-file": (
        ["simulate", "alphanumeric", at("notes.txt"), "--n-samples", "4"],
        "notes.txt",
        (1, 2),
    ),
    "cli-simulate-unknown-class": (
        ["simulate", "alphanumeric", out("s"), "--classes", "?!"],
        "classes|character",
        (2,),
    ),
    "cli-simulate-nan-voxel": (
        ["simulate", "tetraminos", out("s"), "--voxel-size", "nan"],
        "positive number",
        (2,),
    ),
    "cli-affinity-file-as-folder": (
        ["affinity", at("notes.txt"), "-o", out("a.csv")],
        "is not a folder",
        (1,),
    ),
    "cli-affinity-truncated-mrc": (
        ["affinity", at("truncated"), "-o", out("a.csv")],
        "a_truncated.mrc",
        (1,),
    ),
    "cli-affinity-garbage-mrc": (
        ["affinity", at("garbage"), "-o", out("a.csv")],
        "a_garbage.mrc",
        (1,),
    ),
    "cli-affinity-empty-folder": (
        ["affinity", at("empty"), "-o", out("a.csv")],
        "holds no",
        (1,),
    ),
    "cli-affinity-output-in-a-file": (
        ["affinity", at("good"), "-o", at("notes.txt/a.csv")],
        "notes.txt",
        (1, 2),
    ),
    "cli-affinity-nan-mrc": (
        ["affinity", at("nan"), "-o", out("a.csv"), "-q"],
        "NaN",
        (1,),
    ),
    "cli-fit-file-as-folder": (
        ["fit", at("a-file.mrc"), "-o", out("m.skavae"), *TINY],
        "is not a folder",
        (1,),
    ),
    "cli-fit-header-only-mrc": (
        ["fit", at("header-only"), "-o", out("m.skavae"), *TINY],
        "a_header-only.mrc",
        (1,),
    ),
    "cli-fit-mixed-shapes": (
        ["fit", at("mixed-shapes"), "-o", out("m.skavae"), *TINY],
        "one shape",
        (1,),
    ),
    "cli-fit-nan-mrc": (
        ["fit", at("nan"), "-o", out("m.skavae"), "--metric", "none", *TINY],
        "NaN",
        (1,),
    ),
    "cli-fit-asymmetric-affinity": (
        ["fit", at("good"), "--affinity", at("asymmetric.csv"), "-o", out("m"), *TINY],
        "not symmetric",
        (1, 2),
    ),
    "cli-fit-affinity-out-of-range": (
        ["fit", at("good"), "--affinity", at("out-of-range.csv"), "-o", out("m")],
        r"\[-1, 1\]",
        (1, 2),
    ),
    "cli-fit-affinity-missing-label": (
        ["fit", at("good"), "--affinity", at("missing-b.csv"), "-o", out("m"), *TINY],
        "not in the affinity matrix",
        (1, 2),
    ),
    "cli-fit-garbage-affinity": (
        ["fit", at("good"), "--affinity", at("garbage.csv"), "-o", out("m"), *TINY],
        "garbage.csv",
        (1, 2),
    ),
    "cli-fit-output-is-folder": (
        ["fit", at("good"), "-o", at("empty"), *TINY],
        "is a folder",
        (2,),
    ),
    "cli-fit-folder-with-a-nan-file": (
        ["fit", at("nan"), "-o", out("m"), *TINY],
        r"X\[0\] \(file '.*a_0\.mrc'\) contains NaN",
        (1,),
    ),
    "cli-fit-negative-epochs": (["fit", at("good"), "--epochs", "-1"], "epochs", (2,)),
    "cli-fit-nan-beta": (["fit", at("good"), "--beta", "nan"], "beta|finite", (2,)),
    "cli-fit-config-is-garbage": (
        ["fit", at("good"), "--config", at("garbage.csv"), "-o", out("m")],
        "garbage.csv",
        (1, 2),
    ),
    "cli-fit-config-is-folder": (
        ["fit", at("good"), "--config", at("good"), "-o", out("m")],
        "good",
        (1, 2),
    ),
    "cli-evaluate-garbage-model": (
        ["evaluate", at("garbage.skavae"), at("good"), "--out", out("e")],
        "garbage.skavae",
        (1,),
    ),
    "cli-evaluate-folder-as-model": (
        ["evaluate", at("good"), at("good"), "--out", out("e")],
        "good",
        (1,),
    ),
    "cli-evaluate-missing-model": (
        ["evaluate", at("no.skavae"), at("good"), "--out", out("e")],
        "does not exist",
        (1,),
    ),
    "cli-evaluate-file-as-folder": (
        ["evaluate", MODEL, at("notes.txt"), "--out", out("e"), "--no-figures"],
        "is not a folder",
        (1,),
    ),
    "cli-evaluate-other-shape": (
        ["evaluate", MODEL, at("good"), "--out", out("e"), "--no-figures", "-q"],
        "shape",
        (1,),
    ),
    "cli-evaluate-out-is-a-file": (
        ["evaluate", MODEL, at("train"), "--out", at("notes.txt"), "--no-figures"],
        "notes.txt",
        (1, 2),
    ),
    "cli-evaluate-garbage-reference": (
        [
            "evaluate",
            MODEL,
            at("train"),
            "--out",
            out("e"),
            "--no-figures",
            "-q",
            "--reference",
            at("garbage.csv"),
        ],  # fmt: skip
        "garbage.csv",
        (1,),
    ),
    "cli-evaluate-truncated-mrc": (
        ["evaluate", MODEL, at("truncated"), "--out", out("e"), "--no-figures"],
        "a_truncated.mrc",
        (1,),
    ),
    # how a data folder is read (issue 17 1b)
    "cli-fit-skip-unlisted-without-classes": (
        ["fit", at("good"), "--skip-unlisted", "-o", out("m"), *TINY],
        "--skip-unlisted needs --classes",
        (2,),
    ),
    "cli-fit-two-sources-of-labels": (
        ["fit", at("good"), "--label-regex", "(a)", "--unlabelled", "-o", out("m")],
        "at most one source of labels",
        (2,),
    ),
    "cli-fit-bad-label-regex": (
        ["fit", at("good"), "--label-regex", "(", "-o", out("m")],
        "--label-regex.*not a regular expression",
        (2,),
    ),
    "cli-fit-resolution-below-nyquist": (
        ["fit", at("good"), "--resolution", "1", "-o", out("m"), *TINY],
        "Nyquist",
        (2,),
    ),
    "cli-fit-unlabelled-with-affinity": (
        ["fit", at("good"), "--unlabelled", "--affinity", at("missing-b.csv")],
        "drop --affinity",
        (2,),
    ),
    "cli-affinity-label-regex-no-match": (
        ["affinity", at("good"), "--label-regex", "^(zzz)", "-o", out("a.csv")],
        "does not match",
        (1,),
    ),
    "cli-affinity-classes-garbage": (
        ["affinity", at("good"), "--classes", at("garbage.csv"), "-o", out("a.csv")],
        "garbage.csv",
        (1,),
    ),
    "cli-affinity-classes-missing": (
        ["affinity", at("good"), "--classes", at("no.csv"), "-o", out("a.csv")],
        "no.csv",
        (1,),
    ),
    "cli-affinity-unlabelled": (
        ["affinity", at("good"), "--unlabelled", "-o", out("a.csv")],
        "needs labels",
        (2,),
    ),
    "cli-evaluate-n-clusters-without-unlabelled": (
        ["evaluate", MODEL, at("train"), "--n-clusters", "2", "--out", out("e")],
        "--n-clusters applies to --unlabelled",
        (2,),
    ),
    "cli-evaluate-more-clusters-than-files": (
        [
            "evaluate",
            MODEL,
            at("train"),
            "--unlabelled",
            "--n-clusters",
            "999",
            "--out",
            out("e"),
            "--no-figures",
            "-q",
        ],
        "more than the 24 files",
        (2,),
    ),  # fmt: skip
}
for name, (argv, match, codes) in CLI_CASES.items():
    case(name, ok())(cli_error(*argv, match=match, code=codes))


# ======================================================== property-based tests
small_objects = st.tuples(
    st.integers(1, 4),  # number of objects
    st.sampled_from([(6,), (8,), (5, 7), (8, 8), (4, 4, 4), (5, 6, 4)]),
    st.integers(0, 2**16),  # seed
    st.floats(1e-3, 1e3),  # scale
    st.floats(-1e3, 1e3),  # offset
)


def metric_for(name, ndim):
    if name == "soap" and ndim == 1:
        return None
    return {"mean-difference": MeanDifference(), "fsc": FSCAffinity()}.get(
        name, SOAPAffinity(n_max=2, l_max=2)
    )


@pytest.mark.parametrize("name", list(METRICS))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=small_objects, data=st.data())
def test_affinity_properties(name, spec, data):
    n, shape, seed, scale, offset = spec
    metric = metric_for(name, len(shape))
    if metric is None:
        return
    rng = np.random.RandomState(seed)
    A = rng.normal(size=(n, *shape)) * scale + offset
    B = rng.normal(size=(data.draw(st.integers(1, 3)), *shape)) * scale + offset
    S = metric(A)
    assert S.shape == (n, n)
    assert np.isfinite(S).all() and S.min() >= -1 and S.max() <= 1
    np.testing.assert_allclose(S, S.T, atol=1e-12)  # symmetry
    np.testing.assert_array_equal(np.diag(S), 1.0)  # identity
    # an object compared with its own copy is identical (Y given explicitly)
    np.testing.assert_allclose(np.diag(metric(A, A.copy())), 1.0, atol=1e-6)
    # X against Y is the transpose of Y against X, and in range
    SAB = metric(A, B)
    np.testing.assert_allclose(SAB, metric(B, A).T, atol=1e-10)
    assert SAB.min() >= -1 and SAB.max() <= 1


@pytest.mark.parametrize("name", list(METRICS))
@settings(max_examples=10, deadline=None)
@given(
    A=hnp.arrays(
        np.float64,
        st.sampled_from([(3, 6, 6), (2, 4, 4, 4)]),
        elements=st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False),
    )
)
def test_affinity_range_on_arbitrary_values(name, A):
    """Any finite values - constants, spikes, huge - give a valid matrix."""
    metric = metric_for(name, A.ndim - 1)
    S = metric(A)
    assert np.isfinite(S).all() and S.min() >= -1 and S.max() <= 1
    np.testing.assert_allclose(S, S.T, atol=1e-12)
    np.testing.assert_array_equal(np.diag(S), 1.0)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spatial=st.one_of(
        st.tuples(st.integers(1, 12)),
        st.tuples(st.integers(1, 9), st.integers(1, 9)),
        st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
    ),
    n=st.integers(2, 6),
    latent_dims=st.integers(1, 3),
    pose_dims=st.integers(0, 1),
    flat=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_estimator_shape_handling(spatial, n, latent_dims, pose_dims, flat, dtype):
    data = np.random.RandomState(0).rand(n, *spatial).astype(dtype)
    params = dict(latent_dims=latent_dims, pose_dims=pose_dims, filters=(2, 4))
    params.update(max_epochs=1, batch_size=4, random_state=0)
    if flat and len(spatial) > 1:
        data = data.reshape(n, -1)
        params["input_shape"] = spatial
    model = AffinityVAE(**params).fit(data)
    assert model.input_shape_ == tuple(spatial)
    Z_ = model.transform(data)
    assert Z_.shape == (n, latent_dims) and Z_.dtype == dtype
    back = model.inverse_transform(Z_)
    assert back.shape == data.shape and back.dtype == dtype
    assert model.reconstruct(data).shape == data.shape
    assert model.sample(2).shape == (2, *data.shape[1:])
