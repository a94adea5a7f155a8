"""ADVI: a Gaussian on the unconstrained scale (mean-field or full-rank) fitted by optax's Adam on the ELBO."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError
from ..data.bind import BoundData
from ..density import LogDensity
from ..output import Fit
from .common import Flat, as_host, draws_fit, quiet_summary, require_optax, start

ALGORITHMS = ("meanfield", "fullrank")
ITERATIONS = 10000  # CmdStan's default `iter` for variational
WINDOW = 100  # ELBO averaged over windows of this many iterations (CmdStan's eval_elbo) for the history
PARETO_K_OK = 0.7  # above: the Gaussian is a poor importance proposal for the posterior (Yao et al. 2018)


@dataclass
class VariationalResult:
    """An ADVI fit: `fit` (independent draws of the fitted Gaussian, constrained, as a `Fit`), the Gaussian on the
    unconstrained scale (`mean`, `scale`: the standard deviations for mean-field, the lower Cholesky factor of the
    covariance for full-rank, over the flattened latents), the ELBO's history (means over windows of WINDOW
    iterations) and its final estimate, and the Pareto k of importance weights of the draws."""

    fit: Fit
    algorithm: str
    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    elbo: float = float("nan")
    elbo_history: np.ndarray = field(default=None, repr=False)
    pareto_k: float = float("nan")

    @property
    def draws(self) -> dict:
        return self.fit.draws

    def to_arviz(self):
        return self.fit.to_arviz()

    def save(self, path: str) -> None:
        self.fit.save(path)

    def summary(self) -> str:
        return quiet_summary(self.fit)


def _gaussian(algorithm: str, n: int, dtype):
    """(initial parameters, params -> (mean, scale matrix or vector), log-determinant of the scale), mean at 0 and
    the identity scale as Stan's ADVI starts."""
    if algorithm == "meanfield":
        init = {"mean": jnp.zeros(n, dtype), "log_sd": jnp.zeros(n, dtype)}
        return init, lambda p: (p["mean"], jnp.exp(p["log_sd"])), lambda p: jnp.sum(p["log_sd"])
    init = {"mean": jnp.zeros(n, dtype), "raw": jnp.zeros((n, n), dtype)}

    def factor(p):
        raw = p["raw"]
        return p["mean"], jnp.tril(raw, -1) + jnp.diag(jnp.exp(jnp.diag(raw)))

    return init, factor, lambda p: jnp.sum(jnp.diag(p["raw"]))


def _apply(scale, eps):
    """x - mean for standard normal `eps` [k, n]: a vector of sds (mean-field) or a lower factor (full-rank)."""
    return eps * scale if scale.ndim == 1 else eps @ scale.T


def variational(ld: LogDensity, bound: BoundData, algorithm: str = "meanfield", draws: int = 1000,
                iterations: int = ITERATIONS, seed: int = 0, learning_rate: float = 0.05, grad_samples: int = 1,
                elbo_samples: int = 100, init: dict | None = None, model_name: str = "") -> VariationalResult:
    """ADVI (Kucukelbir et al. 2017) on the density of `ld` over the unconstrained latents (log-Jacobian added; one
    device or sharded): a Gaussian, mean-field (independent) or full-rank, fitted by maximising the ELBO with
    reparameterised Monte Carlo gradients (`grad_samples` draws per iteration) and optax's Adam (step size
    `learning_rate`, cosine-decayed to 1% over `iterations`), all iterations in one compiled loop. Starts at the
    mean `init` (constrained values; default 0 on the unconstrained scale) with unit scale. Then `draws`
    independent draws, constrained, as a `Fit`."""
    optax = require_optax()
    if algorithm not in ALGORITHMS:
        raise PPLError(Diagnostic(f"unknown variational algorithm `{algorithm}`; one of: {', '.join(ALGORITHMS)}"))
    for name, value, least in (("iterations", iterations, 1), ("draws", draws, 1), ("grad_samples", grad_samples, 1),
                               ("elbo_samples", elbo_samples, 1)):
        if value < least:
            raise PPLError(Diagnostic(f"--{name.replace('_', '-')} must be at least {least} (got {value})"))
    t0 = time.time()
    flat = Flat(ld, start(ld, seed, init))
    log_p = flat.log_density(ld, True)
    params0, gaussian, log_det = _gaussian(algorithm, flat.size, flat.x0.dtype)
    if init is not None:
        params0["mean"] = flat.x0

    def elbo(params, eps):
        mean, scale = gaussian(params)
        xs = mean + _apply(scale, eps)
        return jnp.mean(jax.vmap(log_p)(xs)) + log_det(params)  # + the entropy's constant

    schedule = optax.cosine_decay_schedule(learning_rate, iterations, alpha=0.01)
    opt = optax.adam(schedule)
    key_fit, key_elbo, key_draws = jax.random.split(jax.random.PRNGKey(seed), 3)

    def step(state, key):
        params, opt_state = state
        eps = jax.random.normal(key, (grad_samples, flat.size), flat.x0.dtype)
        value, grad = jax.value_and_grad(lambda p: -elbo(p, eps))(params)
        updates, opt_state = opt.update(grad, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), -value

    @jax.jit
    def fit(params, keys):
        (params, _), trace = jax.lax.scan(step, (params, opt.init(params)), keys)
        return params, trace

    params, trace = fit(params0, jax.random.split(key_fit, iterations))
    final = jax.jit(elbo)(params, jax.random.normal(key_elbo, (elbo_samples, flat.size), flat.x0.dtype))
    mean, scale = gaussian(params)
    eps = jax.random.normal(key_draws, (draws, flat.size), flat.x0.dtype)
    xs = mean + _apply(scale, eps)
    log_q = -0.5 * jnp.sum(eps ** 2, axis=-1) - log_det(params)  # up to the same constant as the ELBO's entropy
    lp = jax.jit(jax.vmap(log_p))(xs)
    constrained = as_host(jax.jit(jax.vmap(ld.constrain))(jax.vmap(flat.unravel)(xs)))
    trace = np.asarray(trace)
    windows = trace[: len(trace) // WINDOW * WINDOW].reshape(-1, WINDOW).mean(axis=1) if len(trace) >= WINDOW \
        else trace.mean(keepdims=True)
    k = pareto_k(np.asarray(lp) - np.asarray(log_q))
    notes = [f"ADVI ({algorithm}): {draws} independent draws of a Gaussian fitted on the unconstrained scale, not "
             f"MCMC; ELBO {float(final):.6g} after {iterations} iterations; Pareto k {k:.2f}"
             + (f" (above {PARETO_K_OK}: the approximation is poor, check the posterior by MCMC)"
                if k > PARETO_K_OK else "")]
    meta = {"method": "variational", "algorithm": algorithm, "iterations": iterations, "seed": seed,
            "elbo": float(final), "pareto_k": k, "notes": notes}
    out = draws_fit(ld.program, bound, constrained, {"log_prob": np.asarray(lp), "log_g": np.asarray(log_q)},
                    model_name, meta, timing={"total_s": time.time() - t0, "devices": ld.devices})
    return VariationalResult(out, algorithm, np.asarray(mean), np.asarray(scale), float(final), windows, k)


def pareto_k(log_ratios) -> float:
    """The Pareto k of importance ratios p/q (ArviZ's PSIS): how far the draws of q can stand in for p."""
    from ..output.az import arviz

    import warnings

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        _, k = arviz().psislw(np.asarray(log_ratios, np.float64))
    return float(np.asarray(k))
