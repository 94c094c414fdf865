"""Checks of scalar arguments of public functions, with one wording everywhere.

Estimator-like classes declare ``_parameter_constraints`` and public
functions ``validate_params`` (scikit-learn's machinery), with :class:`Count`
for counts; checks that depend on other arguments (a shift below half the
box, ...) use :func:`check_int` and :func:`check_real`. Booleans are never
accepted as numbers.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval


def check_int(value, name, *, low=1, unit=""):
    """Return ``value`` as an int ``>= low``, or raise a ValueError naming ``name``.

    The message reads "``name`` must be a positive integer" for ``low=1``,
    "an integer >= low" otherwise; ``unit`` (e.g. ``"voxels"``) is added in
    parentheses.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        if unit:
            what += f" ({unit})"
        raise ValueError(f"{name} must be {what}; got {value!r}.")
    return int(value)


def check_real(value, name, *, low=None, high=None, low_inclusive=True):
    """Return ``value`` as a finite float in [low, high], or raise a ValueError."""
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}.")
    value = float(value)
    if low is not None and (value < low or (not low_inclusive and value == low)):
        bound = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {bound} {low}; got {value!r}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}; got {value!r}.")
    return value


class Count(Interval):
    """An ``Interval(Integral, ...)`` constraint that refuses booleans.

    ``True`` is an ``int`` to Python, but ``latent_dims=True`` is a mistake,
    not a size of 1.
    """

    def __init__(self, left, right=None, *, closed="left"):
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


def positive_real():
    """An ``Interval(Real, 0, None)`` open at 0: a strictly positive number."""
    return Interval(Real, 0, None, closed="neither")


#: ``_parameter_constraints`` entry of a seed: scikit-learn's "random_state"
#: without booleans (``random_state=True`` is a mistake, not seed 1).
SEED = [Count(0, 2**32 - 1, closed="both"), np.random.RandomState, None]


def check_seed(random_state, name="random_state"):
    """``check_random_state`` that refuses booleans, naming the parameter.

    Examples
    --------
    >>> from skavae._checks import check_seed
    >>> check_seed(0).randint(10) == check_seed(0).randint(10)
    True
    >>> check_seed(True)
    Traceback (most recent call last):
    ...
    ValueError: random_state must be None, an int seed or a numpy RandomState; got True.
    """
    from sklearn.utils import check_random_state

    if isinstance(random_state, (bool, np.bool_)):
        raise ValueError(
            f"{name} must be None, an int seed or a numpy RandomState; "
            f"got {random_state!r}."
        )
    return check_random_state(random_state)
