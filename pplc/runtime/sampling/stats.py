"""Per-iteration sampler statistics (as Stan's sampler diagnostics) and the initial log density and gradients."""
from __future__ import annotations

import jax.numpy as jnp

from .config import DIVERGENCE, SamplerConfig
from .warmup import per_chain

STATS = ("log_prob", "accept_ratio", "is_accepted", "step_size", "n_leapfrog", "diverging", "energy")
NUTS_STATS = STATS + ("tree_depth",)


def stat_names(cfg: SamplerConfig):
    return NUTS_STATS if cfg.sampler == "nuts" else STATS


def _innermost(kr):
    """The proposal kernel's results (NUTS), or the Metropolis-Hastings results around HMC's."""
    return kr.inner_results.inner_results


def stats(kr, cfg: SamplerConfig, padding=None, state=None) -> dict:
    """Per-iteration sampler statistics, each [chains]: log density (unconstrained, Jacobian included, as
    Stan's lp__), acceptance statistic, step size, leapfrog steps (and NUTS tree depth), divergence, energy."""
    r = _innermost(kr)
    pad = padding(state) if padding is not None else 0.0
    if cfg.sampler == "nuts":
        lp = r.target_log_prob
        momentum = r.momentum_distribution
        # TFP's `energy` is lp - kinetic energy, with the kinetic energy's normalising constant.
        zeros = [jnp.zeros_like(x) for x in state]
        energy = -r.energy + momentum.log_prob(zeros) + pad
        n = r.leapfrogs_taken.astype(jnp.int32)
        depth = sum((n >= 2 ** k).astype(jnp.int32) for k in range(cfg.max_tree_depth + 1))
        out = {"accept_ratio": jnp.exp(jnp.minimum(r.log_accept_ratio, 0.0)), "is_accepted": r.is_accepted,
               "n_leapfrog": n, "tree_depth": depth, "diverging": r.has_divergence, "step": r.step_size}
    else:
        acc, prop = r.accepted_results, r.proposed_results
        lp = acc.target_log_prob
        momentum = acc.momentum_distribution
        p = [jnp.where(per_chain(r.is_accepted, f), f, m0) for f, m0 in zip(prop.final_momentum,
                                                                             prop.initial_momentum)]
        zeros = [jnp.zeros_like(x) for x in p]
        energy = -lp - momentum.log_prob(p) + momentum.log_prob(zeros) + pad
        lar = r.log_accept_ratio
        out = {"accept_ratio": jnp.exp(jnp.minimum(lar, 0.0)), "is_accepted": r.is_accepted,
               "n_leapfrog": jnp.full(lp.shape, cfg.leapfrog, jnp.int32),
               "diverging": ~(lar > -DIVERGENCE), "step": acc.step_size}
    step = out.pop("step")
    out["step_size"] = jnp.reshape(step[0], lp.shape)
    out["log_prob"] = lp - pad
    out["energy"] = energy
    return out


def initial_log_prob(kr, padding=None, state=None):
    r = _innermost(kr)
    lp = r.target_log_prob if hasattr(r, "target_log_prob") else r.accepted_results.target_log_prob
    return lp - (padding(state) if padding is not None else 0.0)


def initial_grads(kr):
    r = _innermost(kr)
    return r.grads_target_log_prob if hasattr(r, "grads_target_log_prob") else r.accepted_results.grads_target_log_prob

