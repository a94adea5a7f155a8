"""Hand-written TFP-on-JAX programs of the seed's two studies, written as TFP's distributed-inference tutorial does.

These are the references that pplc's generated programs are checked against (tests/test_seed_models.py) and
timed against (benchmarks/mnist_vs_handwritten.py). They use nothing from pplc: the model is a
`tfed.JointDistributionCoroutine` of the tutorial's shape, closed over this device's shard of the data;
replicated latents are plain parts, data-parallel likelihood terms (and the sharded latents of matrix
factorisation) are `tfed.Sharded` over the mesh axis "data"; the program runs under
`jax.shard_map(..., check_vma=False)` over a one-axis mesh. Latents carry a leading chain dim ("..." in the
einsums), as in the tutorial's MovieLens code.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_probability.substrates.jax as tfp
from jax.sharding import Mesh, PartitionSpec as P
from tensorflow_probability.substrates.jax.experimental import distribute as tfed

tfd = tfp.distributions
Root = tfed.JointDistributionCoroutine.Root
AXIS = "data"


def mesh(devices: int) -> Mesh:
    return Mesh(np.array(jax.devices()[:devices]), (AXIS,))


# ----------------------------------------------------------------------------------------------- Study 1: MNIST
def mnist_model(features, num_classes: int = 10):
    """Bayesian logistic regression on this device's examples: w [pixels, classes] and b [classes] replicated,
    the labels' Categorical likelihood Sharded over the data axis."""
    num_features = features.shape[-1]

    @tfed.JointDistributionCoroutine
    def model():
        w = yield Root(tfd.Sample(tfd.Normal(0., 1.), [num_features, num_classes], name="w"))
        b = yield Root(tfd.Sample(tfd.Normal(0., 1.), [num_classes], name="b"))
        logits = jnp.einsum("nf,...fc->...nc", features, w) + b[..., None, :]
        yield tfed.Sharded(tfd.Independent(tfd.Categorical(logits=logits), 1), shard_axis_name=AXIS, name="labels")

    return model


def mnist_log_prob(params, data):
    """The joint log density at params = (w, b), data = (features, labels) of this device."""
    features, labels = data
    w, b = params
    return mnist_model(features).log_prob((w, b, labels))


def mnist_accuracy(w, b, features, labels):
    """Training accuracy of (w, b): the local mean, then a pmean over devices (equal shards)."""
    logits = jnp.einsum("nf,...fc->...nc", features, w) + b[..., None, :]
    return jax.lax.pmean(jnp.mean(jnp.argmax(logits, axis=-1) == labels, axis=-1), AXIS)


def mnist_value_and_grad(devices: int):
    """log p(w, b, labels) and its gradient under shard_map, examples split over `devices`."""
    params_spec = (P(), P())
    data_spec = (P(AXIS), P(AXIS))

    def per_device(params, data):
        return jax.value_and_grad(mnist_log_prob)(params, data)

    return jax.jit(jax.shard_map(per_device, mesh=mesh(devices), in_specs=(params_spec, data_spec),
                                 out_specs=(P(), params_spec), check_vma=False))


def mnist_hmc(devices: int, num_results: int, num_burnin: int, step_size: float, leapfrog: int,
              adaptation_steps: int, target_accept: float = 0.75):
    """The tutorial's sampling program: HMC with a fixed number of leapfrog steps and dual-averaging step-size
    adaptation, TFP's `sample_chain`; traced: log density, training accuracy, step size. Returns the jitted
    shard_map'ed function of (seed, (w0, b0), features, labels); initial values carry a leading chain dim."""

    def run(seed, init, features, labels):
        model = mnist_model(features)

        def target_log_prob(w, b):
            return model.log_prob((w, b, labels))

        kernel = tfp.mcmc.HamiltonianMonteCarlo(target_log_prob, step_size=step_size, num_leapfrog_steps=leapfrog)
        kernel = tfp.mcmc.DualAveragingStepSizeAdaptation(kernel, num_adaptation_steps=adaptation_steps,
                                                          target_accept_prob=target_accept)

        def trace_fn(state, pkr):
            return (pkr.inner_results.accepted_results.target_log_prob,
                    mnist_accuracy(*state, features, labels), pkr.new_step_size)

        return tfp.mcmc.sample_chain(num_results, list(init), kernel=kernel, num_burnin_steps=num_burnin,
                                     trace_fn=trace_fn, seed=seed)

    return jax.jit(jax.shard_map(run, mesh=mesh(devices), in_specs=(P(), (P(), P()), P(AXIS), P(AXIS)),
                                 out_specs=P(), check_vma=False))


def mnist_closed_form(w, b, features, labels):
    """The same log density and gradient in float64 NumPy (log-softmax), independent of TFP."""
    w, b, x = (np.asarray(a, np.float64) for a in (w, b, features))
    logits = x @ w + b
    logz = np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1)) + logits.max(-1)
    onehot = np.eye(w.shape[-1])[labels]
    prior = -0.5 * (np.sum(w ** 2) + np.sum(b ** 2)) - 0.5 * np.log(2 * np.pi) * (w.size + b.size)
    lp = prior + np.sum(logits[np.arange(len(labels)), labels] - logz)
    resid = onehot - np.exp(logits - logz[:, None])
    return lp, (x.T @ resid - w, resid.sum(0) - b)


# ------------------------------------------------------------------------------------ Study 2: MovieLens
def movielens_model(watched, dim: int, num_movies: int):
    """Bayesian matrix factorisation on this device's users: user embeddings and biases Sharded over the data
    axis (each device holds its users'), movie embeddings and biases replicated, the watch matrix's Bernoulli
    likelihood Sharded."""
    num_users = watched.shape[0]  # this device's users

    @tfed.JointDistributionCoroutine
    def model():
        user_embeddings = yield Root(tfed.Sharded(tfd.Sample(tfd.Normal(0., 1.), [num_users, dim]),
                                                  shard_axis_name=AXIS, name="user_embeddings"))
        user_bias = yield Root(tfed.Sharded(tfd.Sample(tfd.Normal(0., 1.), [num_users]),
                                            shard_axis_name=AXIS, name="user_bias"))
        movie_embeddings = yield Root(tfd.Sample(tfd.Normal(0., 1.), [num_movies, dim], name="movie_embeddings"))
        movie_bias = yield Root(tfd.Sample(tfd.Normal(0., 1.), [num_movies], name="movie_bias"))
        logits = (jnp.einsum("...nd,...md->...nm", user_embeddings, movie_embeddings)
                  + user_bias[..., :, None] + movie_bias[..., None, :])
        yield tfed.Sharded(tfd.Independent(tfd.Bernoulli(logits=logits), 2), shard_axis_name=AXIS, name="watched")

    return model


def movielens_value_and_grad(devices: int, dim: int, num_movies: int):
    """log p(U, u, V, v, watched) and its gradient under shard_map, users split over `devices`.
    Params are (user_embeddings, user_bias, movie_embeddings, movie_bias)."""
    params_spec = (P(AXIS), P(AXIS), P(), P())

    def per_device(params, watched):
        def lp(params):
            return movielens_model(watched, dim, num_movies).log_prob((*params, watched))
        return jax.value_and_grad(lp)(params)

    return jax.jit(jax.shard_map(per_device, mesh=mesh(devices), in_specs=(params_spec, P(AXIS)),
                                 out_specs=(P(), params_spec), check_vma=False))


def movielens_closed_form(U, u, V, v, watched):
    """The same log density and gradient in float64 NumPy, independent of TFP."""
    U, u, V, v = (np.asarray(a, np.float64) for a in (U, u, V, v))
    y = np.asarray(watched, np.float64)
    logits = U @ V.T + u[:, None] + v[None, :]
    log_sig = -np.logaddexp(0, -logits)
    log_1m = -np.logaddexp(0, logits)
    params = (U, u, V, v)
    prior = sum(-0.5 * np.sum(a ** 2) - 0.5 * np.log(2 * np.pi) * a.size for a in params)
    lp = prior + np.sum(y * log_sig + (1 - y) * log_1m)
    g = y - 1 / (1 + np.exp(-logits))
    return lp, (g @ V - U, g.sum(1) - u, g.T @ U - V, g.sum(0) - v)


# ----------------------------------------------------------------------------------------------- comparing
def assert_close(actual, expected, what: str, rtol: float = 1e-5):
    """|actual - expected| <= rtol * |expected| + rtol * scale, scale = max(1, largest |expected|).

    float32 sums taken in another order (per-device partial sums, then a psum) differ by a few ulps of their
    terms, not of the result; where terms cancel (a gradient element near 0 made of large contributions) a
    purely relative bound would fail on rounding alone, so the absolute part is relative to the array's scale."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(expected)), f"{what}: the reference is not finite: {expected}"
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)
