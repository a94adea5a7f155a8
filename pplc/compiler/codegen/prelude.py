"""The helpers a generated module may need, as real Python: codegen copies the source of those it uses."""

import jax.numpy as jnp
import tensorflow_probability.substrates.jax as tfp
from tensorflow_probability.substrates.jax.internal import distribute_lib

tfd = tfp.distributions


def real(x):
    """A literal parameter as an array of the run's real dtype: float32, or float64 under jax_enable_x64 (TFP
    would make a distribution of Python numbers float32 either way)."""
    return jnp.asarray(x, jnp.result_type(float))


def widen(x, shape):
    """`x`, lined up with [..., plates, item], broadcast to the [plates, item] `shape` (leading dims kept)."""
    x = jnp.asarray(x)
    return jnp.broadcast_to(x, jnp.broadcast_shapes(x.shape, tuple(shape)))


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


def sharded_sum(x, mask, axis, shard_axes):
    """Sum over a dim split across devices: this device's real (unpadded) items, then over devices."""
    return distribute_lib.psum(jnp.sum(jnp.where(mask, x, 0), axis=axis), shard_axes)


def sharded_mean(x, mask, axis, shard_axes, n_other=1):
    """Mean over a dim split across devices (and `n_other` items of the other dims reduced)."""
    total = distribute_lib.psum(jnp.sum(jnp.where(mask, x, 0), axis=axis), shard_axes)
    return total / distribute_lib.psum(jnp.sum(mask) * n_other, shard_axes)


def sharded_max(x, mask, axis, shard_axes):
    """Max over a dim split across devices, padded items left out."""
    return distribute_lib.pmax(jnp.max(jnp.where(mask, x, -jnp.inf), axis=axis), shard_axes)


def sharded_min(x, mask, axis, shard_axes):
    """Min over a dim split across devices, padded items left out."""
    return distribute_lib.pmin(jnp.min(jnp.where(mask, x, jnp.inf), axis=axis), shard_axes)


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


# The helpers in the order they are written into a generated module, each with the helpers it calls.
HELPERS = {
    "real": (real, ()),
    "widen": (widen, ()),
    "pad_value_zero": (pad_value_zero, ()),
    "pad_value_one": (pad_value_one, ()),
    "pad_value_half": (pad_value_half, ()),
    "pad_value_mean": (pad_value_mean, ()),
    "sharded_sum": (sharded_sum, ()),
    "sharded_mean": (sharded_mean, ()),
    "sharded_max": (sharded_max, ()),
    "sharded_min": (sharded_min, ()),
    "Flat": (Flat, ("real",)),
    "HalfFlat": (HalfFlat, ("real",)),
}
