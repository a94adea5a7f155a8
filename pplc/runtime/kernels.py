"""MCMC kernels from TFP, the unconstrained target, initial values, and per-iteration statistics."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_probability.substrates.jax as tfp

from ..dsl.diagnostics import Diagnostic, PPLError

SAMPLERS = ("hmc",)
STATS = ("log_prob", "accept_ratio", "is_accepted", "step_size")


@dataclass(frozen=True)
class SamplerConfig:
    """What `pplc run` and `Model.sample` take: the sampler and its settings."""

    sampler: str = "hmc"
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    step_size: float = 0.01
    leapfrog: int = 10
    target_accept: float = 0.75
    seed: int = 0
    init: str = "uniform"  # uniform (-2, 2) on the unconstrained scale, as Stan; or "0"

    def validate(self) -> None:
        def bad(msg):
            raise PPLError(Diagnostic(msg))
        if self.sampler not in SAMPLERS:
            bad(f"unknown sampler `{self.sampler}`; this version has: {', '.join(SAMPLERS)}")
        if self.chains < 1:
            bad(f"--chains must be at least 1 (got {self.chains})")
        if self.warmup < 0 or self.draws < 1:
            bad(f"--warmup must be >= 0 and --draws >= 1 (got {self.warmup} and {self.draws})")
        if not self.step_size > 0:
            bad(f"--step-size must be positive (got {self.step_size})")
        if self.leapfrog < 1:
            bad(f"--leapfrog must be at least 1 (got {self.leapfrog})")
        if not 0 < self.target_accept < 1:
            bad(f"--target-accept must lie in (0, 1) (got {self.target_accept})")
        if self.init not in ("uniform", "0"):
            bad(f"--init is `uniform` or `0` (got {self.init})")


def unconstrained_shape(var, sizes) -> tuple[int, ...]:
    """A latent's shape on the unconstrained scale (a simplex loses one element)."""
    shape = [sizes[d] for d in var.phys]
    if var.support == "simplex":
        shape[-1] -= 1
    return tuple(shape)


def initial_values(latents, sizes, cfg: SamplerConfig, key) -> list[np.ndarray]:
    """Initial unconstrained values, [chains, *shape]: uniform in (-2, 2) as Stan, or zeros."""
    out = []
    keys = jax.random.split(key, max(1, len(latents)))
    for v, k in zip(latents, keys):
        shape = (cfg.chains,) + unconstrained_shape(v, sizes)
        if cfg.init == "0":
            out.append(np.zeros(shape, np.float32))
        else:
            out.append(np.asarray(jax.random.uniform(k, shape, jnp.float32, -2.0, 2.0)))
    return out


def target_fn(pinned):
    """The log density on the unconstrained scale (TFP's default event-space bijectors, Jacobian added),
    and the map from unconstrained parts to constrained values."""
    bijector = pinned.experimental_default_event_space_bijector()
    struct = type(pinned.dtype)

    def target(*parts):
        z = struct(*parts)
        return pinned.unnormalized_log_prob(bijector.forward(z)) + bijector.forward_log_det_jacobian(z)

    def constrain(parts):
        return list(bijector.forward(struct(*parts)))

    return target, constrain


def make_kernel(module, target, cfg: SamplerConfig, local: dict, axes, sharded_latents: bool):
    """HMC with dual-averaging step size (adapting over 80% of warmup, as the seed); preconditioned HMC
    with the generated Sharded momentum distribution when latents are sharded."""
    if sharded_latents:
        kernel = tfp.experimental.mcmc.PreconditionedHamiltonianMonteCarlo(
            target, cfg.step_size, cfg.leapfrog,
            momentum_distribution=module.momentum_distribution(local, cfg.chains, axes))
    else:
        kernel = tfp.mcmc.HamiltonianMonteCarlo(target, cfg.step_size, cfg.leapfrog)
    return tfp.mcmc.DualAveragingStepSizeAdaptation(
        kernel, num_adaptation_steps=max(1, int(0.8 * cfg.warmup)), target_accept_prob=cfg.target_accept)


def stats(kr) -> dict:
    """Per-iteration sampler statistics, each [chains]."""
    inner = kr.inner_results
    log_prob = inner.accepted_results.target_log_prob
    return {
        "log_prob": log_prob,
        "accept_ratio": jnp.exp(jnp.minimum(inner.log_accept_ratio, 0.0)),
        "is_accepted": inner.is_accepted,
        "step_size": jnp.broadcast_to(jnp.asarray(kr.new_step_size, jnp.float32), log_prob.shape),
    }


def initial_log_prob(kr):
    return kr.inner_results.accepted_results.target_log_prob
