"""The helpers a generated module may need, as real Python: codegen copies the source of those it uses."""

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_probability.substrates.jax as tfp
from tensorflow_probability.substrates.jax.internal import distribute_lib

from . import prelude_dists
from .prelude_mix import MIX_HELPERS
from .prelude_linalg import LINALG_HELPERS
from .prelude_ode import ODE_HELPERS

tfd = tfp.distributions


def real(x):
    """A literal parameter as an array of the run's real dtype: float32, or float64 under jax_enable_x64 (TFP
    would make a distribution of Python numbers float32 either way)."""
    return jnp.asarray(x, jnp.result_type(float))


def widen(x, shape):
    """`x`, lined up with [..., plates, item], broadcast to the [plates, item] `shape` (leading dims kept)."""
    x = jnp.asarray(x)
    return jnp.broadcast_to(x, jnp.broadcast_shapes(x.shape, tuple(shape)))


def recurrence(step, first, xs, length, shapes, axes):
    """The sequences of a `recur` block: `jax.lax.scan` of `step` over the `length` items after the first ones.

    first: each sequence's first items, oldest first, in one flat tuple (as many per sequence): the carry of
    `step`, which returns the next carry (its last item per sequence the new one); xs: the scan inputs (their
    leading axis the items); shapes: each sequence's [plates, item] shape; axes: where each sequence's items go
    (from the end). The carry is widened first to what one step returns (leading dims of latents, the dtype), so
    that it keeps one shape; each sequence's items are stacked along its axis: [..., plates, items, item]."""
    k = len(first) // len(shapes)
    carry = [widen(x, shapes[i // k]) for i, x in enumerate(first)]
    x_1 = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), xs)
    for _ in range(4):
        after = jax.eval_shape(step, tuple(carry), x_1)
        groups = [[*carry[i * k:(i + 1) * k], *after[i * k:(i + 1) * k]] for i in range(len(shapes))]
        wanted = [(jnp.broadcast_shapes(*(x.shape for x in g)), jnp.result_type(*(x.dtype for x in g)))
                  for g in groups for _ in range(k)]  # one shape and dtype for all the items of a sequence
        if all(c.shape == s and c.dtype == d for c, (s, d) in zip(carry, wanted)):
            break
        carry = [jnp.broadcast_to(c, s).astype(d) for c, (s, d) in zip(carry, wanted)]

    def scan_step(c, x_t):
        c = tuple(jnp.broadcast_to(a, b.shape).astype(b.dtype) for a, b in zip(step(c, x_t), c))
        return c, c[k - 1::k]

    _, items = jax.lax.scan(scan_step, tuple(carry), xs, length=length)
    return [jnp.moveaxis(jnp.concatenate([jnp.stack(carry[i * k:(i + 1) * k]), items[i]]), 0, axes[i])
            for i in range(len(shapes))]


# What tfd.Masked puts in place of padded items (its `safe_sample_fn`): a fixed point of the site's support, where
# the log density is finite (`supports.SUPPORTS[...].pad_value` names the one of each support). TFP's default
# draws a fresh sample of the whole site instead, a random draw at every log-density evaluation (every leapfrog
# step) that cost a third of MNIST's gradient time on 8 CPU devices.
def pad_value_zero(d):
    """What tfd.Masked puts at padded items: 0, in the support (TFP's default draws a sample at every call)."""
    return jnp.zeros([], d.dtype)


def pad_value_one(d):
    """What tfd.Masked puts at padded items: 1, in the support (TFP's default draws a sample at every call)."""
    return jnp.ones([], d.dtype)


def pad_value_half(d):
    """What tfd.Masked puts at padded items: 0.5, in (0, 1) (TFP's default draws a sample at every call)."""
    return jnp.full([], 0.5, d.dtype)


def pad_value_mean(d):
    """What tfd.Masked puts at padded items: the mean (TFP's default draws a sample at every call)."""
    return d.mean()


# A mask that is a NumPy array while tracing is known: all true where nothing is padded (one device, or a plate
# that splits evenly; the runtime passes those as constants). Its items need no select: one at every gradient,
# where the program could not see through it, doubled the time of a small model's NUTS step.
def masked(distribution, mask, safe_sample_fn):
    """`tfd.Masked`: the padded items (mask false) left out of the log density; the distribution itself when
    `mask` is known to be all true."""
    if isinstance(mask, np.ndarray) and mask.all():
        return distribution
    return tfd.Masked(distribution, mask, safe_sample_fn=safe_sample_fn)


def real_items(x, mask, fill):
    """`x` with its padded items (mask false) replaced by `fill`; `x` itself when `mask` is known to be all true."""
    if isinstance(mask, np.ndarray) and mask.all():
        return x
    return jnp.where(mask, x, fill)


def sharded_sum(x, mask, axis, shard_axes):
    """Sum over a dim split across devices: this device's real (unpadded) items, then over devices."""
    return distribute_lib.psum(jnp.sum(real_items(x, mask, 0), axis=axis), shard_axes)


def sharded_mean(x, mask, axis, shard_axes, n_other=1):
    """Mean over a dim split across devices (and `n_other` items of the other dims reduced)."""
    total = distribute_lib.psum(jnp.sum(real_items(x, mask, 0), axis=axis), shard_axes)
    return total / distribute_lib.psum(jnp.sum(mask) * n_other, shard_axes)


def sharded_max(x, mask, axis, shard_axes):
    """Max over a dim split across devices, padded items left out."""
    return distribute_lib.pmax(jnp.max(real_items(x, mask, -jnp.inf), axis=axis), shard_axes)


def sharded_min(x, mask, axis, shard_axes):
    """Min over a dim split across devices, padded items left out."""
    return distribute_lib.pmin(jnp.min(real_items(x, mask, jnp.inf), axis=axis), shard_axes)


def rep(x, n):
    """`x` repeated `n` times along a new last axis (Stan's rep_vector), as a real array."""
    x = jnp.asarray(x, jnp.result_type(float))
    return jnp.broadcast_to(x[..., None], (*x.shape, n))


def diag(v):
    """The diagonal matrix [..., k, k] with `v` ([..., k]) on its diagonal."""
    return v[..., :, None] * jnp.eye(v.shape[-1], dtype=v.dtype)


def log_mix(theta, lp1, lp2):
    """log(theta * exp(lp1) + (1 - theta) * exp(lp2)), stably (Stan's log_mix)."""
    return jnp.logaddexp(jnp.log(theta) + lp1, jnp.log1p(-theta) + lp2)


def gp_exp_quad_cov(x, alpha, rho, point_rank=1):
    """The exponentiated quadratic covariance alpha^2 exp(-|x_i - x_j|^2 / (2 rho^2)) of points `x` ([..., n] with
    `point_rank` 1, [..., n, d] with 2), as Stan's gp_exp_quad_cov: [..., n, n]."""
    if point_rank == 1:
        d2 = jnp.square(x[..., :, None] - x[..., None, :])
    else:
        d2 = jnp.sum(jnp.square(x[..., :, None, :] - x[..., None, :, :]), axis=-1)
    return jnp.square(alpha) * jnp.exp(-0.5 * d2 / jnp.square(rho))


class BernoulliLogits(tfd.Bernoulli):
    """tfd.Bernoulli given logits, whose log_prob costs one exp and one log1p per element, and its gradient no
    more: -softplus(-logits) at 1, -softplus(logits) at 0 (TFP's computes two softplus and two multiply_no_nan, and
    jax.nn.softplus's gradient a third transcendental: 1.8x NumPyro's gradient time on matrix factorisation)."""

    def _log_prob(self, event):
        logits = self._logits_parameter_no_checks()
        return -BernoulliLogits.softplus((1 - 2 * jnp.asarray(event, logits.dtype)) * logits)

    @jax.custom_jvp
    def softplus(x):  # noqa: N805 - a function kept in the class, which generated programs copy whole
        """log(1 + exp(x)), stably, with one exp and one log1p; its derivative sigmoid(x) from the same exp."""
        return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))

    @softplus.defjvp
    def _softplus_jvp(primals, tangents):  # noqa: N805
        (x,), (t,) = primals, tangents
        e = jnp.exp(-jnp.abs(x))
        return jnp.maximum(x, 0) + jnp.log1p(e), jnp.where(x >= 0, 1, e) / (1 + e) * t


class Flat(tfd.Normal):
    """The improper flat prior on the real line (log-density 0); draws are Normal(0, 1) placeholders."""

    def __init__(self, loc=0.0, scale=1.0, validate_args=False, allow_nan_stats=True, name="Flat"):
        super().__init__(real(loc), real(scale), validate_args, allow_nan_stats, name)

    # Normal's (loc, scale): the same parameters
    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return tfd.Normal._parameter_properties(dtype, num_classes=num_classes)

    def _log_prob(self, x):
        return jnp.zeros_like(x)


class HalfFlat(tfd.HalfNormal):
    """The improper flat prior on the positive half-line (log-density 0); draws are HalfNormal(1) placeholders."""

    def __init__(self, scale=1.0, validate_args=False, allow_nan_stats=True, name="HalfFlat"):
        super().__init__(real(scale), validate_args, allow_nan_stats, name)

    # HalfNormal's (scale): the same parameter
    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return tfd.HalfNormal._parameter_properties(dtype, num_classes=num_classes)

    def _log_prob(self, x):
        return jnp.where(x >= 0, jnp.zeros_like(x), -jnp.inf)


class LogDensityTerm(tfd.Normal):
    """The site of a `target += term` statement: its log density is the term (`loc`) whatever its value (the
    model pins it to 0); draws are zeros."""

    def __init__(self, loc, scale=1.0, validate_args=False, allow_nan_stats=True, name="LogDensityTerm"):
        super().__init__(loc, real(scale), validate_args, allow_nan_stats, name)

    # Normal's (loc, scale): the same parameters
    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return tfd.Normal._parameter_properties(dtype, num_classes=num_classes)

    def _log_prob(self, x):
        return self.loc + jnp.zeros_like(x)

    def _sample_n(self, n, seed=None):
        return jnp.zeros([n, *self.batch_shape], self.dtype)


class Bounded(tfd.AutoCompositeTensorDistribution):
    """`distribution` restricted to [low, high] (either may be None), as Stan's `real<lower=..., upper=...>`:
    sampled on the unconstrained scale through Stan's transforms (low + exp(z), high - exp(z),
    low + (high - low) * sigmoid(z)); with `normalize`, its log density is renormalised over the bounds (the
    distribution truncated). Its `mean()` is a point inside the bounds (what padded items hold), not the mean."""

    def __init__(self, distribution, low=None, high=None, normalize=False, validate_args=False,
                 allow_nan_stats=True, name=None):
        parameters = dict(locals())
        self._distribution = distribution
        self._low = None if low is None else jnp.asarray(low, distribution.dtype)
        self._high = None if high is None else jnp.asarray(high, distribution.dtype)
        self._normalize = normalize
        super().__init__(dtype=distribution.dtype, reparameterization_type=distribution.reparameterization_type,
                         validate_args=validate_args, allow_nan_stats=allow_nan_stats, parameters=parameters,
                         name=name or "Bounded")

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        props = tfp.internal.parameter_properties
        return dict(distribution=props.BatchedComponentProperties(), low=props.ParameterProperties(),
                    high=props.ParameterProperties())

    @property
    def distribution(self):
        return self._distribution

    @property
    def low(self):
        return self._low

    @property
    def high(self):
        return self._high

    def _batch_shape(self):
        shapes = [self._distribution.batch_shape] + [jnp.shape(b) for b in (self._low, self._high) if b is not None]
        return tuple(jnp.broadcast_shapes(*[tuple(s) for s in shapes]))

    def _event_shape(self):
        return self._distribution.event_shape

    def _log_normalizer(self):
        d, low, high = self._distribution, self._low, self._high
        if low is not None and high is not None:
            return tfp.math.log_sub_exp(d.log_cdf(high), d.log_cdf(low))
        return d.log_survival_function(low) if low is not None else d.log_cdf(high)

    def _log_prob(self, x):
        lp = self._distribution.log_prob(x)
        inside = jnp.ones(jnp.shape(lp), bool)
        if self._low is not None:
            inside &= x >= self._low
        if self._high is not None:
            inside &= x <= self._high
        lp = jnp.where(inside, lp, -jnp.inf)
        return lp - self._log_normalizer() if self._normalize else lp

    def _sample_n(self, n, seed=None):
        shape = [n, *self.batch_shape]
        d = self._distribution
        if self._normalize:  # inverse-CDF draws between the bounds, where the distribution has a quantile
            lo = 0.0 if self._low is None else d.cdf(self._low)
            hi = 1.0 if self._high is None else d.cdf(self._high)
            u = jax.random.uniform(seed, shape, self.dtype)
            try:
                return d.quantile(lo + u * (hi - lo))
            except NotImplementedError:
                pass
        # otherwise a placeholder: a standard normal draw through the bounds' transform
        return self._default_event_space_bijector().forward(jax.random.normal(seed, shape, self.dtype))

    def _mean(self):
        low, high = self._low, self._high
        if low is not None and high is not None:
            point = (low + high) / 2
        elif low is not None:
            point = low + 1
        elif high is not None:
            point = high - 1
        else:
            point = jnp.zeros([], self.dtype)
        return jnp.broadcast_to(point, self.batch_shape)

    def _default_event_space_bijector(self):
        tfb = tfp.bijectors
        low, high = self._low, self._high
        if low is not None and high is not None:
            return tfb.Chain([tfb.Shift(low), tfb.Scale(high - low), tfb.Sigmoid()])
        if low is not None:
            return tfb.Chain([tfb.Shift(low), tfb.Exp()])
        if high is not None:
            return tfb.Chain([tfb.Shift(high), tfb.Scale(-jnp.ones_like(high)), tfb.Exp()])
        return tfb.Identity()


class Ordered(tfd.AutoCompositeTensorDistribution):
    """`distribution` (an event over [..., K]) restricted to values increasing along the last dim, as Stan's
    `ordered[K]` (`positive`: `positive_ordered[K]`): the same log density (unnormalised, as Stan), on the
    unconstrained scale through Stan's transform (the first element, then the logs of the increments; positive:
    the exp of such a vector)."""

    def __init__(self, distribution, positive=False, validate_args=False, allow_nan_stats=True, name=None):
        parameters = dict(locals())
        self._distribution = distribution
        self._positive = positive
        super().__init__(dtype=distribution.dtype, reparameterization_type=distribution.reparameterization_type,
                         validate_args=validate_args, allow_nan_stats=allow_nan_stats, parameters=parameters,
                         name=name or "Ordered")

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(distribution=tfp.internal.parameter_properties.BatchedComponentProperties())

    def _batch_shape(self):
        return self._distribution.batch_shape

    def _event_shape(self):
        return self._distribution.event_shape

    def _log_prob(self, x):
        return self._distribution.log_prob(x)

    def _sample_n(self, n, seed=None):
        x = jnp.sort(self._distribution.sample(n, seed=seed), axis=-1)
        return jnp.abs(x) if self._positive else x

    def _mean(self):
        k = self.event_shape[-1]
        return jnp.broadcast_to(jnp.arange(1, k + 1, dtype=self.dtype), [*self.batch_shape, *self.event_shape])

    def _default_event_space_bijector(self):
        tfb = tfp.bijectors
        return tfb.Chain([tfb.Exp(), tfb.Ascending()]) if self._positive else tfb.Ascending()


# The helpers in the order they are written into a generated module, each with the helpers it calls.
HELPERS = {
    "real": (real, ()),
    "widen": (widen, ()),
    "recurrence": (recurrence, ("widen",)),
    "pad_value_zero": (pad_value_zero, ()),
    "pad_value_one": (pad_value_one, ()),
    "pad_value_half": (pad_value_half, ()),
    "pad_value_mean": (pad_value_mean, ()),
    "masked": (masked, ()),
    "real_items": (real_items, ()),
    "sharded_sum": (sharded_sum, ("real_items",)),
    "sharded_mean": (sharded_mean, ("real_items",)),
    "sharded_max": (sharded_max, ("real_items",)),
    "sharded_min": (sharded_min, ("real_items",)),
    "rep": (rep, ()),
    "log_mix": (log_mix, ()),
    "diag": (diag, ()),
    "gp_exp_quad_cov": (gp_exp_quad_cov, ()),
    **LINALG_HELPERS,
    **MIX_HELPERS,
    **ODE_HELPERS,
    "BernoulliLogits": (BernoulliLogits, ()),
    "Flat": (Flat, ("real",)),
    "HalfFlat": (HalfFlat, ("real",)),
    "LogDensityTerm": (LogDensityTerm, ("real",)),
    "Bounded": (Bounded, ()),
    "Ordered": (Ordered, ()),
}
HELPERS.update(prelude_dists.HELPERS)  # SkewNormal, OrderedLogistic and the pad values they and others need
