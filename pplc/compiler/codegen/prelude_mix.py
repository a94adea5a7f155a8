"""Prelude helpers of mixtures and hidden Markov models: TFP's classes as pplc needs them, hmm_marginal and friends."""

import jax
import jax.numpy as jnp
import tensorflow_probability.substrates.jax as tfp

tfd = tfp.distributions


class MixtureSameFamily(tfd.MixtureSameFamily):
    """TFP's MixtureSameFamily with an event-space bijector, so that a latent can have a mixture prior (TFP has
    none for mixtures): the components', which for real, positive and (0, 1) supports has no parameters."""

    def _default_event_space_bijector(self):
        return self.components_distribution.experimental_default_event_space_bijector()


class HiddenMarkovModel(tfd.HiddenMarkovModel, tfd.AutoCompositeTensorDistribution):
    """TFP's HiddenMarkovModel as a composite tensor, as `tfed.Sharded` needs (a plate of sequences split across
    devices)."""


def hmm_marginal(log_omega, gamma, rho):
    """log p(observations) of a hidden Markov model (Stan's hmm_marginal, pplc's layout): `log_omega`
    [..., T, K] the log density of each step's observation in each state, `gamma` [..., K, K] the transition
    probabilities (row j: from state j), `rho` [..., K] the initial state probabilities. The forward
    algorithm in log space, one `lax.scan` over T."""
    log_gamma = jnp.log(gamma)
    batch = jnp.broadcast_shapes(log_omega.shape[:-2], gamma.shape[:-2], rho.shape[:-1])
    alpha = jnp.broadcast_to(jnp.log(rho) + log_omega[..., 0, :], batch + log_omega.shape[-1:])

    def step(alpha, lo):
        return jax.scipy.special.logsumexp(alpha[..., :, None] + log_gamma, axis=-2) + lo, None

    alpha, _ = jax.lax.scan(step, alpha, jnp.moveaxis(log_omega[..., 1:, :], -2, 0))
    return jax.scipy.special.logsumexp(alpha, axis=-1)


def hmm_hidden_state_prob(log_omega, gamma, rho):
    """The posterior probability of each state at each step given all the observations, [..., T, K] (Stan's
    hmm_hidden_state_prob, transposed to pplc's layout): the forward-backward algorithm in log space."""
    log_gamma = jnp.log(gamma)
    batch = jnp.broadcast_shapes(log_omega.shape[:-2], gamma.shape[:-2], rho.shape[:-1])
    k = log_omega.shape[-1]
    los = jnp.moveaxis(jnp.broadcast_to(log_omega, batch + log_omega.shape[-2:]), -2, 0)  # [T, ..., K]
    log_gamma = jnp.broadcast_to(log_gamma, batch + (k, k))

    def forward(alpha, lo):
        alpha = jax.scipy.special.logsumexp(alpha[..., :, None] + log_gamma, axis=-2) + lo
        return alpha, alpha

    alpha0 = jnp.broadcast_to(jnp.log(rho), batch + (k,)) + los[0]
    _, alphas = jax.lax.scan(forward, alpha0, los[1:])
    alphas = jnp.concatenate([alpha0[None], alphas], axis=0)

    def backward(beta, lo):  # beta_t(j) = logsumexp_k(log_gamma[j, k] + lo_{t+1}(k) + beta_{t+1}(k))
        beta = jax.scipy.special.logsumexp(log_gamma + (lo + beta)[..., None, :], axis=-1)
        return beta, beta

    _, betas = jax.lax.scan(backward, jnp.zeros_like(alpha0), los[1:], reverse=True)
    betas = jnp.concatenate([betas, jnp.zeros_like(alpha0)[None]], axis=0)
    return jnp.moveaxis(jax.nn.softmax(alphas + betas, axis=-1), 0, -2)


MIX_HELPERS = {
    "MixtureSameFamily": (MixtureSameFamily, ()),
    "HiddenMarkovModel": (HiddenMarkovModel, ()),
    "hmm_marginal": (hmm_marginal, ()),
    "hmm_hidden_state_prob": (hmm_hidden_state_prob, ()),
}
