"""Per-epoch schedules for the loss weights β and γ (cyclical annealing).

A schedule is a callable ``epoch_index -> factor``; the loss of epoch ``e``
(counted from 0) uses ``beta * schedule(e)``. The shapes follow Fu et al. 2019,
"Cyclical Annealing Schedule: A Simple Approach to Mitigating KL Vanishing":
``n_cycles`` cycles over ``n_epochs`` epochs; within each cycle the factor rises
from ``min_value`` to 1 over the first ``ratio`` fraction of the cycle, then
stays at 1.

Why per epoch and not per optimiser step: the paper and the public reference
implementation of affinity-VAE anneal once per epoch, so their ``n_cycles`` and
``ratio`` keep their meaning here; a per-epoch value is also one number per row
of the training history, so what was applied can be recorded and plotted exactly,
and it does not depend on the batch size or the data set size (a per-step
schedule would change shape when either changes).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

from skavae._validation import Count

SCHEDULE_NAMES = ("constant", "linear", "cosine", "sigmoid", "ramp")

# Steepness of the sigmoid rise, from the reference implementation of Fu et al.
# (``1 / (1 + exp(-(12 v - 6)))`` for v in [0, 1]); rescaled here so that the
# rise starts exactly at ``min_value`` and ends exactly at 1.
_SIGMOID_STEEPNESS = 12.0


def _check_epoch(epoch_index):
    # called once per epoch by the training loop, so a plain check rather than
    # validate_params; the message keeps "epochs count from 0"
    if not Count(0).is_satisfied_by(epoch_index):
        raise ValueError(
            f"epoch_index must be an integer >= 0 (epochs count from 0); "
            f"got {epoch_index!r}."
        )
    return int(epoch_index)


def _rise(shape, r):
    """Rise profile on ``r`` in [0, 1]: 0 at r = 0, 1 at r = 1, monotone."""
    if shape in ("linear", "ramp"):
        return r
    if shape == "cosine":
        return 0.5 - 0.5 * math.cos(math.pi * r)
    # sigmoid, rescaled to hit both end points exactly
    k = _SIGMOID_STEEPNESS

    def sig(t):
        return 1.0 / (1.0 + math.exp(-(k * t - k / 2)))

    lo, hi = sig(0.0), sig(1.0)
    return (sig(r) - lo) / (hi - lo)


class Schedule:
    """A per-epoch factor schedule: call it with an epoch index (from 0).

    Build one with :func:`make_schedule`; instances are picklable.
    """

    def __init__(self, kind, *, n_epochs, n_cycles, ratio, min_value, values, func):
        self.kind = kind
        self.n_epochs = n_epochs
        self.n_cycles = n_cycles
        self.ratio = ratio
        self.min_value = min_value
        self.values = values
        self.func = func

    def __call__(self, epoch_index):
        e = _check_epoch(epoch_index)
        if self.kind == "constant":
            return 1.0
        if self.kind == "array":
            return float(self.values[min(e, len(self.values) - 1)])
        if self.kind == "callable":
            raw = self.func(e)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ValueError(
                    f"The schedule callable returned {raw!r} for epoch {e}; "
                    "it must return a finite number >= 0."
                ) from None
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"The schedule callable returned {value!r} for epoch {e}; "
                    "it must return a finite number >= 0."
                )
            return value
        if self.kind == "ramp":
            # a single rise; after the ramp the factor stays at 1 for good
            position = e / self.n_epochs
        else:
            # exact rational position within the current cycle, in [0, 1);
            # the pattern repeats every n_epochs epochs
            position = ((e % self.n_epochs) * self.n_cycles % self.n_epochs) / (
                self.n_epochs
            )
        r = min(position / self.ratio, 1.0)
        return self.min_value + (1.0 - self.min_value) * _rise(self.kind, r)

    def __repr__(self):
        if self.kind == "array":
            return f"Schedule(array of {len(self.values)} values)"
        if self.kind == "callable":
            return f"Schedule({self.func!r})"
        if self.kind == "constant":
            return "Schedule('constant')"
        return (
            f"Schedule({self.kind!r}, n_epochs={self.n_epochs}, "
            f"n_cycles={self.n_cycles}, ratio={self.ratio}, "
            f"min_value={self.min_value})"
        )


@validate_params(
    {
        "spec": [str, callable, "array-like"],
        "n_epochs": [Count(1)],
        "n_cycles": [Count(1)],
        "ratio": [Interval(Real, 0, 1, closed="right")],
        "min_value": [Interval(Real, 0, 1, closed="both")],
    },
    prefer_skip_nested_validation=True,
)
def make_schedule(spec, *, n_epochs, n_cycles=4, ratio=0.5, min_value=0.0):
    """Build a per-epoch factor schedule for β or γ.

    The loss of epoch ``e`` (counted from 0) multiplies its weight by
    ``schedule(e)``. Values are applied per *epoch*, not per optimiser step: the
    paper and the public reference implementation anneal per epoch, and one
    value per epoch is what the training history records.

    Parameters
    ----------
    spec : str, callable or array-like of float
        The shape:

        - ``"constant"``: always 1.
        - ``"linear"``, ``"cosine"``, ``"sigmoid"``: cyclical annealing (Fu et
          al. 2019). ``n_cycles`` cycles over ``n_epochs`` epochs; within each
          cycle the factor rises from ``min_value`` to 1 over the first
          ``ratio`` fraction of the cycle (linearly; as ``(1 - cos(pi r)) / 2``;
          or as a logistic curve of steepness 12 rescaled to start at exactly
          ``min_value`` and end at exactly 1), then stays at 1. The pattern
          repeats every ``n_epochs`` epochs, so warm starts and ``partial_fit``
          calls that continue the epoch count keep cycling.
        - ``"ramp"``: a single linear rise from ``min_value`` over the first
          ``ratio * n_epochs`` epochs, then 1 for good (a ramp does not repeat;
          a repeating single rise is ``"linear"`` with ``n_cycles=1``).
        - a callable ``epoch_index -> factor``: used as is (it receives the
          epoch index from 0, not wrapped by ``n_epochs``); each value it returns
          is checked when evaluated and must be a finite number >= 0.
        - an array-like of per-epoch factors (finite, >= 0): epoch ``e`` uses
          ``values[e]``; past the end of the array the last value is held (so an
          array shorter than the training run works, and ``n_epochs`` is not
          used).
    n_epochs : int
        Epochs spanned by the cyclical shapes and the ramp (usually the
        estimator's ``max_epochs``); >= 1.
    n_cycles : int, default=4
        Number of cycles within ``n_epochs`` for ``"linear"``, ``"cosine"`` and
        ``"sigmoid"``; >= 1, and each cycle must span at least 2 epochs
        (``n_epochs >= 2 * n_cycles``), otherwise every epoch would start a cycle
        and the factor would never leave ``min_value``.
    ratio : float, default=0.5
        Fraction of each cycle (or of ``n_epochs`` for the ramp) spent rising;
        in (0, 1].
    min_value : float, default=0.0
        Factor at the start of each rise; in [0, 1].

    Returns
    -------
    schedule : Schedule
        A picklable callable ``epoch_index -> float`` (``epoch_index`` an integer
        >= 0).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones), ``ratio``
        outside (0, 1], ``n_cycles`` < 1 or cycles shorter than 2 epochs,
        ``min_value`` outside [0, 1], ``n_epochs`` < 1, or an empty, non-1D,
        negative or non-finite array.

    Examples
    --------
    >>> from skavae._schedules import make_schedule, schedule_values
    >>> s = make_schedule("linear", n_epochs=8, n_cycles=2, ratio=0.5)
    >>> schedule_values(s, 10).tolist()
    [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
    >>> schedule_values(make_schedule("ramp", n_epochs=4, ratio=0.5), 6).tolist()
    [0.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    >>> schedule_values(make_schedule([0.1, 0.2], n_epochs=4), 4).tolist()
    [0.1, 0.2, 0.2, 0.2]
    """
    n_epochs, n_cycles = int(n_epochs), int(n_cycles)
    ratio, min_value = float(ratio), float(min_value)
    common = dict(
        n_epochs=n_epochs,
        n_cycles=n_cycles,
        ratio=ratio,
        min_value=min_value,
        values=None,
        func=None,
    )
    if isinstance(spec, str):
        if spec not in SCHEDULE_NAMES:
            raise ValueError(
                f"Unknown schedule {spec!r}; valid names are "
                f"{', '.join(repr(n) for n in SCHEDULE_NAMES)}, or pass a callable "
                "epoch_index -> factor or an array of per-epoch factors."
            )
        if spec in ("linear", "cosine", "sigmoid") and n_epochs < 2 * n_cycles:
            raise ValueError(
                f"A {spec!r} schedule with n_cycles={n_cycles} over "
                f"n_epochs={n_epochs} has cycles shorter than 2 epochs, so the "
                "factor would never rise above min_value; lower n_cycles (at most "
                f"{max(n_epochs // 2, 1)}) or use 'ramp' or 'constant'."
            )
        return Schedule(spec, **common)
    if callable(spec):
        return Schedule("callable", **{**common, "func": spec})
    try:
        values = np.asarray(spec, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"A schedule must be one of {', '.join(SCHEDULE_NAMES)}, a callable "
            f"or an array of per-epoch factors; got {spec!r}."
        ) from None
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            "A schedule array must be a non-empty 1D array of per-epoch factors; "
            f"got shape {values.shape}."
        )
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            "Schedule values must be finite and >= 0; "
            f"got {float(values[i])!r} at epoch {i}."
        )
    values = values.copy()
    values.setflags(write=False)
    return Schedule("array", **{**common, "values": values})


@validate_params(
    {"schedule": [callable], "n": [Count(0)]},
    prefer_skip_nested_validation=True,
)
def schedule_values(schedule, n):
    """Factors of the first ``n`` epochs of ``schedule`` (for plots and tests).

    Parameters
    ----------
    schedule : callable
        A :class:`Schedule` from :func:`make_schedule` (or any callable
        ``epoch_index -> factor``).
    n : int
        Number of epochs, >= 0.

    Returns
    -------
    values : ndarray of shape (n,), dtype float64
        ``schedule(0), ..., schedule(n - 1)``.

    Examples
    --------
    >>> from skavae._schedules import make_schedule, schedule_values
    >>> schedule_values(make_schedule("constant", n_epochs=3), 3).tolist()
    [1.0, 1.0, 1.0]
    """
    return np.array([schedule(e) for e in range(n)], dtype=np.float64)
