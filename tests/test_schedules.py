"""β/γ schedules against values computed by hand."""

import math
import pickle

import numpy as np
import pytest

from skavae._schedules import SCHEDULE_NAMES, make_schedule, schedule_values


def test_constant_is_one():
    s = make_schedule("constant", n_epochs=5)
    assert schedule_values(s, 12).tolist() == [1.0] * 12


def test_linear_two_cycles_hand_computed():
    s = make_schedule("linear", n_epochs=8, n_cycles=2, ratio=0.5)
    assert schedule_values(s, 8).tolist() == [0, 0.5, 1, 1, 0, 0.5, 1, 1]


def test_linear_with_min_value_and_full_ratio():
    # period 4, rise over the whole cycle: positions 0, 1/4, 1/2, 3/4
    s = make_schedule("linear", n_epochs=8, n_cycles=2, ratio=1.0, min_value=0.2)
    expected = [0.2 + 0.8 * p for p in (0, 0.25, 0.5, 0.75)] * 2
    np.testing.assert_allclose(schedule_values(s, 8), expected, rtol=0, atol=1e-15)


def test_linear_fractional_period():
    # n_epochs=10, n_cycles=4: period 2.5 epochs; positions e*4/10 mod 1
    s = make_schedule("linear", n_epochs=10, n_cycles=4, ratio=0.5)
    positions = [(e * 4 % 10) / 10 for e in range(10)]
    expected = [min(p / 0.5, 1.0) for p in positions]
    assert positions[:5] == [0.0, 0.4, 0.8, 0.2, 0.6]
    np.testing.assert_allclose(schedule_values(s, 10), expected, atol=1e-15)


def test_cyclical_repeats_after_n_epochs():
    for name in ("linear", "cosine", "sigmoid"):
        s = make_schedule(name, n_epochs=6, n_cycles=2, ratio=0.75)
        v = schedule_values(s, 18)
        np.testing.assert_array_equal(v[:6], v[6:12])
        np.testing.assert_array_equal(v[:6], v[12:])


def test_cosine_hand_computed():
    # period 4, ratio 0.5: r = 0, 0.5, 1, 1 -> (1 - cos(pi r)) / 2 = 0, .5, 1, 1
    s = make_schedule("cosine", n_epochs=8, n_cycles=2, ratio=0.5, min_value=0.1)
    expected = [0.1, 0.1 + 0.9 * 0.5, 1.0, 1.0] * 2
    np.testing.assert_allclose(schedule_values(s, 8), expected, atol=1e-12)
    # a finer rise: r = e / 5 for e in 0..5
    s = make_schedule("cosine", n_epochs=10, n_cycles=1, ratio=0.5)
    expected = [(1 - math.cos(math.pi * e / 5)) / 2 for e in range(6)] + [1.0] * 4
    np.testing.assert_allclose(schedule_values(s, 10), expected, atol=1e-12)


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_rise_endpoints_and_monotone(name):
    s = make_schedule(name, n_epochs=40, n_cycles=2, ratio=0.5, min_value=0.25)
    v = schedule_values(s, 40)
    # each cycle: 20 epochs, rising over epochs 0..10 (r = e / 10), 1 after
    for start in (0, 20):
        rise = v[start : start + 11]
        assert rise[0] == 0.25
        assert rise[-1] == pytest.approx(1.0, abs=1e-12)
        assert np.all(np.diff(rise) > 0)
        np.testing.assert_array_equal(v[start + 10 : start + 20], 1.0)


def test_sigmoid_midpoint_and_symmetry():
    s = make_schedule("sigmoid", n_epochs=10, n_cycles=1, ratio=1.0)
    v = schedule_values(s, 10)  # r = e / 10
    assert v[0] == 0.0
    assert v[5] == pytest.approx(0.5, abs=1e-12)
    # logistic rise is point-symmetric about r = 1/2: f(r) + f(1 - r) = 1
    np.testing.assert_allclose(v[1:5] + v[9:5:-1], 1.0, atol=1e-12)
    k = 12.0

    def sig(t):
        return 1 / (1 + math.exp(-(k * t - 6)))

    expected = (sig(0.3) - sig(0)) / (sig(1) - sig(0))
    assert v[3] == pytest.approx(expected, abs=1e-12)


def test_ramp_rises_once_then_holds():
    s = make_schedule("ramp", n_epochs=10, ratio=0.4, min_value=0.5)
    # rises over 4 epochs: 0.5 + 0.5 * e / 4
    expected = [0.5, 0.625, 0.75, 0.875] + [1.0] * 26
    np.testing.assert_allclose(schedule_values(s, 30), expected, atol=1e-15)


def test_ramp_single_epoch():
    s = make_schedule("ramp", n_epochs=1, ratio=1.0)
    assert schedule_values(s, 3).tolist() == [0.0, 1.0, 1.0]


def test_array_holds_last_value():
    s = make_schedule([0.0, 0.5, 2.0], n_epochs=10)
    assert schedule_values(s, 6).tolist() == [0.0, 0.5, 2.0, 2.0, 2.0, 2.0]
    s = make_schedule(np.arange(12) / 11, n_epochs=4)  # longer than n_epochs
    np.testing.assert_allclose(schedule_values(s, 12), np.arange(12) / 11)


def test_callable_used_as_is():
    s = make_schedule(lambda e: 0.1 * e, n_epochs=3)
    np.testing.assert_allclose(schedule_values(s, 5), [0, 0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "x", None])
def test_callable_bad_value_raises_when_evaluated(bad):
    s = make_schedule(lambda e: 1.0 if e == 0 else bad, n_epochs=3)
    assert s(0) == 1.0
    with pytest.raises(ValueError, match="epoch 1.*finite number >= 0"):
        s(1)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown schedule 'cosin'") as err:
        make_schedule("cosin", n_epochs=4)
    for name in SCHEDULE_NAMES:
        assert repr(name) in str(err.value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(ratio=0.0),
            "'ratio' parameter .* float in the range \\(0.0, 1.0\\]",
        ),
        (dict(ratio=1.5), "ratio"),
        (dict(ratio=float("nan")), "ratio"),
        (
            dict(n_cycles=0),
            "'n_cycles' parameter .* int in the range \\[1, inf\\)",
        ),
        (dict(n_cycles=2.0), "n_cycles"),
        (
            dict(min_value=-0.1),
            "'min_value' parameter .* float in the range \\[0.0, 1.0\\]",
        ),
        (dict(min_value=1.1), "min_value"),
        (
            dict(n_epochs=0),
            "'n_epochs' parameter .* int in the range \\[1, inf\\)",
        ),
        (dict(n_epochs=True), "n_epochs"),
    ],
)
def test_parameter_validation(kwargs, match):
    args = dict(n_epochs=8, n_cycles=2, ratio=0.5, min_value=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_schedule("linear", **args)


def test_cycles_shorter_than_two_epochs_raise():
    with pytest.raises(ValueError, match="shorter than 2 epochs.*at most 2"):
        make_schedule("cosine", n_epochs=5, n_cycles=4)
    make_schedule("cosine", n_epochs=8, n_cycles=4)  # exactly 2 epochs each
    make_schedule("constant", n_epochs=1, n_cycles=4)  # irrelevant for constant


@pytest.mark.parametrize(
    "values, match",
    [
        ([], "non-empty 1D"),
        ([[0.1, 0.2]], "non-empty 1D"),
        ([0.5, -0.1], "-0.1 at epoch 1"),
        ([0.5, float("nan")], "at epoch 1"),
        ([float("inf")], "at epoch 0"),
        (["a", "b"], "a callable or an array"),
    ],
)
def test_bad_arrays(values, match):
    with pytest.raises(ValueError, match=match):
        make_schedule(values, n_epochs=4)


@pytest.mark.parametrize("bad", [-1, 1.0, True])
def test_bad_epoch_index(bad):
    s = make_schedule("linear", n_epochs=8, n_cycles=2)
    with pytest.raises(ValueError, match="epoch_index must be an integer >= 0"):
        s(bad)


def test_numpy_integer_epoch_and_python_float_result():
    s = make_schedule("cosine", n_epochs=8, n_cycles=2)
    value = s(np.int64(1))
    assert type(value) is float and value == pytest.approx(0.5)


def test_pickle_roundtrip():
    for spec in ("constant", "linear", "cosine", "sigmoid", "ramp", [0.3, 1.0]):
        s = make_schedule(spec, n_epochs=8, n_cycles=2, ratio=0.75, min_value=0.1)
        s2 = pickle.loads(pickle.dumps(s))
        assert repr(s2) == repr(s)
        np.testing.assert_array_equal(schedule_values(s2, 20), schedule_values(s, 20))


def test_schedule_values_validates_n():
    s = make_schedule("constant", n_epochs=2)
    assert schedule_values(s, 0).shape == (0,)
    with pytest.raises(
        ValueError,
        match="'n' parameter .* int in the range \\[0, inf\\)",
    ):
        schedule_values(s, -1)
