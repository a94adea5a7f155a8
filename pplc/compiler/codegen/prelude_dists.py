"""Prelude distributions TFP lacks or shapes otherwise (SkewNormal, OrderedLogistic, CholeskyLKJ), pad values."""

import jax
import jax.numpy as jnp
import tensorflow_probability.substrates.jax as tfp

tfd = tfp.distributions


def pad_value_mode(d):
    """What tfd.Masked puts at padded items: the mode, inside a support that depends on the parameters (GEV)."""
    return d.mode()


def pad_value_eye(d):
    """What tfd.Masked puts at padded items: the identity, the Cholesky factor of the identity correlation."""
    return jnp.eye(d.event_shape[-1], dtype=d.dtype)


class SkewNormal(tfd.AutoCompositeTensorDistribution):
    """Stan's skew_normal(xi, omega, alpha) as SkewNormal(loc, scale, skewness): the density
    2 / scale * phi(z) * Phi(skewness * z) at z = (x - loc) / scale; draws by Azzalini's construction
    loc + scale * (delta |u0| + sqrt(1 - delta^2) u1), delta = skewness / sqrt(1 + skewness^2); its CDF is
    Phi(z) - 2 T(z, skewness) with Owen's T."""

    def __init__(self, loc, scale, skewness, validate_args=False, allow_nan_stats=True, name="SkewNormal"):
        parameters = dict(locals())
        dtype = tfp.internal.dtype_util.common_dtype([loc, scale, skewness], dtype_hint=jnp.float32)
        self._loc, self._scale, self._skewness = (jnp.asarray(p, dtype) for p in (loc, scale, skewness))
        super().__init__(dtype=dtype, reparameterization_type=tfd.FULLY_REPARAMETERIZED,
                         validate_args=validate_args, allow_nan_stats=allow_nan_stats, parameters=parameters,
                         name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        props = tfp.internal.parameter_properties
        return dict(loc=props.ParameterProperties(),
                    scale=props.ParameterProperties(default_constraining_bijector_fn=tfp.bijectors.Softplus),
                    skewness=props.ParameterProperties())

    @property
    def loc(self):
        return self._loc

    @property
    def scale(self):
        return self._scale

    @property
    def skewness(self):
        return self._skewness

    def _event_shape(self):
        return ()

    def _z(self, x):
        return (x - self._loc) / self._scale

    def _log_prob(self, x):
        z = self._z(x)
        return (jnp.log(2.0) - jnp.log(self._scale) + jax.scipy.stats.norm.logpdf(z)
                + jax.scipy.special.log_ndtr(self._skewness * z))

    def _cdf(self, x):
        z = self._z(x)
        return jax.scipy.special.ndtr(z) - 2 * tfp.math.owens_t(z, self._skewness)

    def _survival_function(self, x):
        z = self._z(x)
        return jax.scipy.special.ndtr(-z) + 2 * tfp.math.owens_t(z, self._skewness)

    def _log_cdf(self, x):
        return jnp.log(self._cdf(x))

    def _log_survival_function(self, x):
        return jnp.log(self._survival_function(x))

    def _delta(self):
        return self._skewness / jnp.sqrt(1 + jnp.square(self._skewness))

    def _sample_n(self, n, seed=None):
        shape = [n, *self.batch_shape]
        u0, u1 = jax.random.normal(seed, [2, *shape], self.dtype)
        delta = self._delta()
        return self._loc + self._scale * (delta * jnp.abs(u0) + jnp.sqrt(1 - jnp.square(delta)) * u1)

    def _mean(self):
        mean = self._loc + self._scale * self._delta() * jnp.sqrt(2 / jnp.pi)
        return jnp.broadcast_to(mean, self.batch_shape)

    def _default_event_space_bijector(self):
        return tfp.bijectors.Identity()


class OrderedLogistic(tfd.OrderedLogistic):
    """tfd.OrderedLogistic(cutpoints, loc): outcomes 0, 1, ..., K-1 for K-1 increasing cutpoints (Stan's
    ordered_logistic(eta, c) counts from 1), with a mean (the expected outcome: what a prediction averages)."""

    def _mean(self):
        probs = self.categorical_probs()
        return jnp.sum(probs * jnp.arange(probs.shape[-1], dtype=probs.dtype), axis=-1)


class CholeskyLKJ(tfd.CholeskyLKJ):
    """tfd.CholeskyLKJ(dimension, concentration): Cholesky factors [K, K] of correlation matrices, whose
    unconstrained values are [1, K (K - 1) / 2] (TFP's CorrelationCholesky after a reshape): as many dims as its
    values, as pplc's runtime lays out every latent by the dims of its values."""

    def _default_event_space_bijector(self):
        tfb = tfp.bijectors
        m = self.dimension * (self.dimension - 1) // 2
        return tfb.Chain([tfb.CorrelationCholesky(), tfb.Reshape([m], [1, m])])


# Merged into prelude.HELPERS: each helper with the helpers it calls.
HELPERS = {
    "pad_value_mode": (pad_value_mode, ()),
    "pad_value_eye": (pad_value_eye, ()),
    "SkewNormal": (SkewNormal, ()),
    "OrderedLogistic": (OrderedLogistic, ()),
    "CholeskyLKJ": (CholeskyLKJ, ()),
}
