"""The one registry of supports: their words, padding values, unconstrained shapes, predictions, value checks."""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Support(enum.StrEnum):
    """The set a distribution's values lie in. Its repr is its string's: generated code shows it as a string."""

    REAL = "real"
    POSITIVE = "positive"
    UNIT = "unit"
    INTERVAL = "interval"
    SIMPLEX = "simplex"
    BINARY = "binary"
    COUNT = "count"
    BOUNDED_COUNT = "bounded_count"
    CATEGORICAL = "categorical"
    BOUNDED = "bounded"  # a latent's declared bounds (`real<lower=0>`)
    ORDERED = "ordered"  # increasing along the last dim (`ordered[K]`, `positive_ordered[K]`)
    ANGLE = "angle"  # VonMises: an angle in [-pi, pi] (its density is periodic)
    EXTREME = "extreme"  # GeneralizedExtremeValue: where 1 + concentration (x - loc) / scale > 0
    COUNT_VECTOR = "count_vector"  # Multinomial: counts along the last dim summing to total_count
    ORDINAL = "ordinal"  # OrderedLogistic: 0, 1, ..., K-1 for K-1 cutpoints
    CHOLESKY_CORR = "cholesky_corr"  # CholeskyLKJ: lower Cholesky factors [K, K] of correlation matrices

    def __repr__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class SupportInfo:
    """What a support means to the code generator, the sampler and predictions."""

    words: str  # the support in words
    pad_value: str  # "zero" | "one" | "half" | "mean" | "mode" | "eye": the helper pad_value_<x> that tfd.Masked puts
    # at padded items, a fixed point of the support where the log density is finite
    unconstrained_drop: int = 0  # elements the event-space bijector drops from the last dim (simplex 1)
    predict_kind: str = "means"  # "class probabilities" | "probabilities" | "means": what a prediction averages


SUPPORTS: dict[Support, SupportInfo] = {
    Support.REAL: SupportInfo("the real line", "zero"),
    Support.POSITIVE: SupportInfo("positive reals", "one"),
    Support.UNIT: SupportInfo("the interval (0, 1)", "half"),
    Support.INTERVAL: SupportInfo("the interval (low, high)", "mean"),
    Support.SIMPLEX: SupportInfo("the simplex", "mean", unconstrained_drop=1),
    Support.BINARY: SupportInfo("0 or 1", "zero", predict_kind="probabilities"),
    Support.COUNT: SupportInfo("non-negative integers", "zero"),
    Support.BOUNDED_COUNT: SupportInfo("0, 1, ..., total_count", "zero"),
    Support.CATEGORICAL: SupportInfo("0, 1, ..., K-1", "zero", predict_kind="class probabilities"),
    Support.BOUNDED: SupportInfo("the declared bounds", "mean"),
    Support.ORDERED: SupportInfo("increasing vectors", "mean"),  # (a bounded distribution's mean: a point inside)
    Support.ANGLE: SupportInfo("angles in [-pi, pi]", "zero"),
    Support.EXTREME: SupportInfo("1 + concentration (x - loc) / scale > 0", "mode"),
    Support.COUNT_VECTOR: SupportInfo("count vectors summing to total_count", "mean"),
    Support.ORDINAL: SupportInfo("0, 1, ..., K-1 for K-1 cutpoints", "zero"),
    Support.CHOLESKY_CORR: SupportInfo("Cholesky factors of correlation matrices", "eye"),
}

@dataclass(frozen=True)
class SupportCheck:
    """What checking a site's values needs: its support and the bounds the model fixes (also `ir.SupportCheck`)."""

    support: Support
    low: float | None = None  # a literal or const bound: Uniform's low
    high: float | None = None  # Uniform's high, Binomial's total_count
    classes_dim: str | None = None  # a Categorical's classes dim (its size is known once the data are bound)
    strict: bool = False  # a positive support excludes 0 (LogNormal, Gamma, InverseGamma)


SIMPLEX_TOLERANCE = 1e-3  # how far a row of an observed simplex may sum from 1


def unconstrained_shape(support: Support | str, shape) -> tuple[int, ...]:
    """A value's shape on the unconstrained scale (a simplex loses one element of its last dim; a Cholesky factor
    [..., K, K] of a correlation matrix is K (K - 1) / 2 numbers, [..., 1, K (K - 1) / 2]: as many dims)."""
    shape = list(shape)
    if Support(support) == Support.CHOLESKY_CORR:
        k = shape[-1]
        return (*shape[:-2], 1, k * (k - 1) // 2)
    drop = SUPPORTS[Support(support)].unconstrained_drop
    if drop:
        shape[-1] -= drop
    return tuple(shape)


def outside(check: SupportCheck, values: np.ndarray, sizes: dict) -> tuple[np.ndarray, str] | None:
    """Which `values` lie outside the support `check` describes, and the support in words for a message; None
    when there is nothing to check. The mask has the shape of `values`, for a simplex that of `values[..., 0]`
    (one entry per row: a row is outside when it has a negative value or does not sum to 1)."""
    a = values
    s, lo, hi = check.support, check.low, check.high
    if s == Support.BINARY:
        return (a != 0) & (a != 1), "0 or 1"
    if s == Support.COUNT or (s == Support.BOUNDED_COUNT and hi is None):
        return a < 0, "counts 0, 1, 2, ..."
    if s == Support.BOUNDED_COUNT:
        return (a < 0) | (a > hi), f"0 to total_count = {hi:g}"
    if s == Support.CATEGORICAL:
        k = sizes.get(check.classes_dim)
        if k is None:
            return None
        return (a < 0) | (a >= k), f"0 to {k - 1}, as dim `{check.classes_dim}` is {k}"
    if s == Support.POSITIVE:
        return (a <= 0, "positive numbers") if check.strict else (a < 0, "numbers >= 0")
    if s == Support.UNIT:
        return (a <= 0) | (a >= 1), "numbers strictly between 0 and 1"
    if s == Support.INTERVAL:
        if lo is None or hi is None:
            return None
        return (a < lo) | (a > hi), f"numbers from {lo:g} to {hi:g}"
    if s == Support.SIMPLEX:
        if not a.ndim:
            return None
        rows = np.abs(np.sum(a, axis=-1) - 1) > SIMPLEX_TOLERANCE
        return rows | np.any(a < 0, axis=-1), "values >= 0 that sum to 1 along the last dim"
    return _outside_more(check, a, sizes)


def _outside_more(check: SupportCheck, a: np.ndarray, sizes: dict) -> tuple[np.ndarray, str] | None:
    """`outside` for the supports of the distributions added in issue 10 (VonMises' angles and the GEV's range
    depend on nothing or on parameters: not checked)."""
    s, hi = check.support, check.high
    if s == Support.COUNT_VECTOR:
        if not a.ndim:
            return None
        bad = a < 0
        if hi is not None:
            bad = bad | (np.sum(a, axis=-1, keepdims=True) != hi)
        return bad, "counts >= 0" + (f" summing to total_count = {hi:g} along the last dim" if hi is not None else "")
    if s == Support.ORDINAL:
        k = sizes.get(check.classes_dim)
        if k is None:
            return None
        return (a < 0) | (a > k), f"0 to {k}, as dim `{check.classes_dim}` of the cutpoints is {k}"
    if s == Support.CHOLESKY_CORR:
        if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
            return None
        upper = np.any(np.triu(a, 1) != 0, axis=(-2, -1))
        rows = np.any(np.abs(np.sum(a * a, axis=-1) - 1) > SIMPLEX_TOLERANCE, axis=-1)
        diagonal = np.any(np.diagonal(a, axis1=-2, axis2=-1) <= 0, axis=-1)
        bad = np.broadcast_to((upper | rows | diagonal)[..., None, None], a.shape)  # each element of a bad matrix
        return bad, "lower triangular, a positive diagonal and rows of length 1"
    return None
