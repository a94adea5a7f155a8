"""The Laplace approximation at a mode: a Gaussian on the unconstrained scale from the Hessian, its draws constrained."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError
from ..data.bind import BoundData
from ..density import LogDensity
from ..output import Fit
from .common import Flat, as_host, draws_fit, unsharded
from .optimize import OptimizeResult


def gaussian_at_mode(objective, x_mode):
    """The mean and the lower Cholesky factor of the covariance of the Gaussian whose log density has the curvature
    of `objective` (a log density of a flat vector, differentiable twice by JAX) at its maximum `x_mode`: the inverse
    of the negative Hessian. A Hessian that is not negative definite is an error (not a maximum: a saddle, a
    boundary, or an optimizer that did not converge)."""
    hessian = jax.jit(jax.hessian(objective))(x_mode)
    precision = -0.5 * (hessian + hessian.T)
    chol = jnp.linalg.cholesky(precision)
    if not bool(jnp.all(jnp.isfinite(chol))):
        raise PPLError(Diagnostic(
            "the Laplace approximation needs a negative definite Hessian at the mode, and this one is not: the "
            "optimizer stopped at a saddle point or on a ridge, or did not converge",
            hint="check that the optimizer converged (more --iterations, another --seed), and that the posterior "
                 "is proper (a Flat prior on a parameter the data do not determine)"))
    # covariance = precision^-1 = L^-T L^-1: the draws are mode + L^-T e
    eye = jnp.eye(chol.shape[0], dtype=chol.dtype)
    scale = jax.scipy.linalg.solve_triangular(chol, eye, lower=True).T  # L^-T (upper), scale @ scale.T = cov
    return x_mode, scale


def laplace(ld: LogDensity, bound: BoundData, mode: OptimizeResult, draws: int = 1000, seed: int = 0) -> Fit:
    """`draws` independent draws of the Laplace approximation at `mode` (an `optimize` result): a Gaussian on the
    unconstrained scale whose precision is the negative Hessian of the objective the mode maximised (with the
    log-Jacobian when `mode.jacobian`, as CmdStan's `laplace`), mapped back to the constrained scale. The Hessian is
    computed on one device (a sharded density gives first derivatives only). The Fit's trace holds `log_prob`, the
    objective at each draw, and `log_g`, the Gaussian's log density there (CmdStan's log_p__ and log_g__)."""
    if draws < 1:
        raise PPLError(Diagnostic(f"--laplace takes the number of draws, at least 1 (got {draws})"))
    t0 = time.time()
    one = unsharded(ld, bound)
    flat = Flat(one, mode.unconstrained)
    objective = flat.log_density(one, mode.jacobian)
    mean, scale = gaussian_at_mode(objective, flat.x0)
    eps = jax.random.normal(jax.random.PRNGKey(seed), (draws, flat.size), mean.dtype)
    xs = mean + eps @ scale.T
    log_g = -0.5 * jnp.sum(eps ** 2, axis=-1)  # up to a constant, as CmdStan's log_g__
    zs = jax.vmap(flat.unravel)(xs)
    log_p = jax.jit(jax.vmap(objective))(xs)
    params = as_host(jax.jit(jax.vmap(one.constrain))(zs))
    meta = {"method": "laplace", "jacobian": mode.jacobian, "seed": seed,
            "notes": [f"Laplace approximation at the mode ({'with' if mode.jacobian else 'no'} Jacobian): "
                      f"{draws} independent draws of a Gaussian on the unconstrained scale, not MCMC"]}
    return draws_fit(one.program, bound, params, {"log_prob": np.asarray(log_p), "log_g": np.asarray(log_g)},
                     mode.model_name, meta, timing={"total_s": time.time() - t0, "devices": ld.devices})
