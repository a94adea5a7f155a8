"""HMC on the mesh: the per-device sampling program, its kernel, initial values, and the host side."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_probability.substrates.jax as tfp
from jax.sharding import PartitionSpec as P

from ..dsl.diagnostics import Diagnostic, PPLError
from . import spmd as spmd_lib
from .data import Layout
from .mesh import DATA_AXIS

SAMPLERS = ("hmc",)


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
        if self.init not in ("uniform", "0"):
            bad(f"--init is `uniform` or `0` (got {self.init})")


def spec_of(dims, layout: Layout, lead: int = 0) -> P:
    """The PartitionSpec of an array whose dims (after `lead` leading ones) are `dims`."""
    return P(*([None] * lead + [DATA_AXIS if d in layout.padded else None for d in dims]))


def unconstrained_shape(var, sizes) -> tuple[int, ...]:
    shape = [sizes[d] for d in var.phys]
    if var.support == "simplex":
        shape[-1] -= 1
    return tuple(shape)


def initial_values(latents, layout: Layout, cfg: SamplerConfig, key) -> list[np.ndarray]:
    """Initial unconstrained values, [chains, *padded shape]: uniform in (-2, 2) as Stan, or zeros."""
    padded = dict(layout.sizes, **layout.padded)
    out = []
    keys = jax.random.split(key, max(1, len(latents)))
    for v, k in zip(latents, keys):
        shape = (cfg.chains,) + unconstrained_shape(v, padded)
        if cfg.init == "0":
            out.append(np.zeros(shape, np.float32))
        else:
            out.append(np.asarray(jax.random.uniform(k, shape, jnp.float32, -2.0, 2.0)))
    return out


def make_kernel(module, pinned_target, cfg: SamplerConfig, local, chains, axes, sharded_latents: bool,
                warmup: int):
    """HMC with dual-averaging step size; preconditioned HMC with Sharded momenta if latents are sharded."""
    if sharded_latents:
        kernel = tfp.experimental.mcmc.PreconditionedHamiltonianMonteCarlo(
            pinned_target, cfg.step_size, cfg.leapfrog,
            momentum_distribution=module.momentum_distribution(local, chains, axes))
    else:
        kernel = tfp.mcmc.HamiltonianMonteCarlo(pinned_target, cfg.step_size, cfg.leapfrog)
    return tfp.mcmc.DualAveragingStepSizeAdaptation(
        kernel, num_adaptation_steps=max(1, int(0.8 * warmup)), target_accept_prob=cfg.target_accept)


def _stats(kr):
    inner = kr.inner_results
    log_prob = inner.accepted_results.target_log_prob  # [chains]
    return {
        "log_prob": log_prob,
        "accept_ratio": jnp.exp(jnp.minimum(inner.log_accept_ratio, 0.0)),
        "is_accepted": inner.is_accepted,
        "step_size": jnp.broadcast_to(jnp.asarray(kr.new_step_size, jnp.float32), log_prob.shape),
    }


def target_fn(pinned):
    """The log-density on the unconstrained scale (TFP's default event-space bijectors, Jacobian added)."""
    bijector = pinned.experimental_default_event_space_bijector()
    struct = type(pinned.dtype)

    def target(*parts):
        z = struct(*parts)
        return pinned.unnormalized_log_prob(bijector.forward(z)) + bijector.forward_log_det_jacobian(z)

    def constrain(parts):
        return list(bijector.forward(struct(*parts)))

    return target, constrain


def sample(compiled, bound, layout: Layout, mesh, cfg: SamplerConfig, mode: str = "shard_map", log=None):
    """Run the sampler; returns host arrays (draws and trace) with padding removed, [chains, draws, ...]."""
    cfg.validate()
    module, model = compiled.module, compiled.ir
    latents = model.of_kind("latent")
    outputs = model.of_kind("deterministic", "track")
    names = [v.name for v in latents]
    local = layout.local
    axes = [DATA_AXIS] if layout.padded else []
    sharded_latents = any(v.sharded_dim for v in latents)
    chains = cfg.chains
    data_vars = model.of_kind("data")

    def per_device(seed, z0, data, masks):
        jd = module.make_model(data, local, masks, axes)
        pinned = jd.experimental_pin(**module.observed(data))
        target, constrain = target_fn(pinned)
        kernel = make_kernel(module, target, cfg, local, chains, axes, sharded_latents, cfg.warmup)
        warm_key, draw_key = jax.random.split(seed)

        def step(carry, key):
            z, kr = carry
            z, kr = kernel.one_step(z, kr, seed=key)
            return (z, kr), _stats(kr)

        def draw(carry, key):
            (z, kr), stats = step(carry, key)
            values = dict(zip(names, constrain(z)))
            extra = module.derived(values, data, local, masks, axes)
            for v in outputs:  # latent-free quantities still get a chain dim
                shape = (chains,) + tuple(local[d] for d in v.phys)
                extra[v.name] = jnp.broadcast_to(extra[v.name], shape)
            return (z, kr), ([values[n] for n in names], extra, stats)

        carry = (list(z0), kernel.bootstrap_results(list(z0)))
        init_lp = carry[1].inner_results.accepted_results.target_log_prob
        carry, warm_stats = jax.lax.scan(step, carry, jax.random.split(warm_key, cfg.warmup)) if cfg.warmup else (
            carry, {k: jnp.zeros((0,) + x.shape, x.dtype) for k, x in _stats(carry[1]).items()})
        _, (draws, extra, stats) = jax.lax.scan(draw, carry, jax.random.split(draw_key, cfg.draws))
        return init_lp, draws, extra, stats, warm_stats

    data_specs = {v.name: spec_of(v.phys, layout) for v in data_vars}
    mask_specs = {d: P(DATA_AXIS) for d in layout.padded}
    z_specs = [spec_of(v.phys, layout, lead=1) for v in latents]
    stat_specs = {k: P() for k in ("log_prob", "accept_ratio", "is_accepted", "step_size")}
    out_specs = (P(), [spec_of(v.phys, layout, lead=2) for v in latents],
                 {v.name: spec_of(v.phys, layout, lead=2) for v in outputs}, stat_specs, stat_specs)
    fn = spmd_lib.spmd(per_device, mesh, (P(), z_specs, data_specs, mask_specs), out_specs, mode)

    key = jax.random.PRNGKey(cfg.seed)
    init_key, run_key = jax.random.split(key)
    z0 = initial_values(latents, layout, cfg, init_key)
    data = {v.name: layout.pad(bound.arrays[v.name], v.phys) for v in data_vars}
    masks = layout.masks()
    if mode == "shard_map":
        data = spmd_lib.place(data, data_specs, mesh)
        z0 = spmd_lib.place(z0, z_specs, mesh)
        masks = spmd_lib.place(masks, mask_specs, mesh)
    t0 = time.time()
    if log:
        log(f"sampling: {cfg.chains} chain{'s' if cfg.chains > 1 else ''} x ({cfg.warmup} warmup + {cfg.draws} draws),"
            f" {cfg.sampler}, {cfg.leapfrog} leapfrog steps, {layout.ndev} device{'s' if layout.ndev > 1 else ''}")
    lowered = fn.lower(run_key, z0, data, masks) if hasattr(fn, "lower") else None
    compiled_fn = lowered.compile() if lowered is not None else fn
    t1 = time.time()
    init_lp, draws, extra, stats, warm_stats = compiled_fn(run_key, z0, data, masks)
    init_lp = np.asarray(init_lp)
    jax.block_until_ready(draws)
    t2 = time.time()
    if not np.all(np.isfinite(init_lp)):
        raise PPLError(Diagnostic(
            "the log density is not finite at the initial values of some chains",
            hint="try --init 0, check the data for values outside the support, or check the priors"))
    out = {}
    for v, x in zip(latents, draws):
        out[v.name] = layout.unpad(np.swapaxes(np.asarray(x), 0, 1), v.phys, axis0=2)
    for v in outputs:
        out[v.name] = layout.unpad(np.swapaxes(np.asarray(extra[v.name]), 0, 1), v.phys, axis0=2)
    trace = {k: np.swapaxes(np.asarray(x), 0, 1) for k, x in stats.items()}
    trace.update({f"warmup_{k}": np.swapaxes(np.asarray(x), 0, 1) for k, x in warm_stats.items()})
    timing = {"compile_s": t1 - t0, "run_s": t2 - t1,
              "leapfrog_per_s": cfg.chains * 0 + (cfg.warmup + cfg.draws) * cfg.leapfrog / max(t2 - t1, 1e-9)}
    if log:
        log(f"done: compile {timing['compile_s']:.1f} s, run {timing['run_s']:.1f} s "
            f"({timing['leapfrog_per_s']:.0f} leapfrog steps/s)")
    return out, trace, timing


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
