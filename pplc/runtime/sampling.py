"""Sampling on the mesh: the per-device programs (init, a block of iterations) and the host loop over blocks."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from ..dsl.diagnostics import Diagnostic, PPLError
from . import kernels
from . import spmd as spmd_lib
from .data import Layout
from .kernels import SamplerConfig  # noqa: F401 - re-exported
from .mesh import DATA_AXIS

# The sampler's carried state (positions and kernel results) leaves each SPMD call as a flat list of
# arrays stacked per device: every leaf gets a leading device axis, so sharded and replicated leaves
# alike round-trip exactly, and objects in the kernel results (a momentum distribution) are rebuilt
# only inside the per-device program.
STACKED = P(DATA_AXIS)


def spec_of(dims, layout: Layout, lead: int = 0) -> P:
    """The PartitionSpec of an array whose dims (after `lead` leading ones) are `dims`."""
    return P(*([None] * lead + [DATA_AXIS if d in layout.padded else None for d in dims]))


def _stack(tree, treedef_box):
    leaves, treedef_box["treedef"] = jax.tree.flatten(tree)
    return [jnp.asarray(x)[None] for x in leaves]


def _unstack(leaves, treedef_box):
    return jax.tree.unflatten(treedef_box["treedef"], [x[0] for x in leaves])


def default_block_size(cfg: SamplerConfig) -> int:
    """Iterations per SPMD call: small enough for progress, large enough to keep host overhead small."""
    return max(1, min(100, (cfg.warmup + cfg.draws) // 20 or 1))


@dataclass
class Programs:
    """The compiled per-device programs of one run and the arrays they are called with."""

    init: object
    block_fn: object
    data: dict
    masks: dict
    z0: list
    block: int
    keys: np.ndarray  # one PRNG key per iteration, warmup then draws
    names: list


def build(compiled, bound, layout: Layout, mesh, cfg: SamplerConfig, mode: str = "shard_map",
          block: int | None = None) -> Programs:
    """Trace the per-device programs for this model, data layout and sampler configuration."""
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
    block = block or default_block_size(cfg)
    treedef_box = {}  # the structure of the carried state, found when `init` is traced

    def setup(data, masks):
        jd = module.make_model(data, local, masks, axes)
        pinned = jd.experimental_pin(**module.observed(data))
        target, constrain = kernels.target_fn(pinned)
        kernel = kernels.make_kernel(module, target, cfg, local, axes, sharded_latents)
        return kernel, constrain

    def init(z0, data, masks):
        kernel, constrain = setup(data, masks)
        kr = kernel.bootstrap_results(list(z0))
        return _stack((list(z0), kr), treedef_box), kernels.initial_log_prob(kr), constrain(list(z0))

    def run_block(carry, keys, n_valid, data, masks):
        kernel, constrain = setup(data, masks)

        def step(state, i):
            z, kr = state
            z, kr = kernel.one_step(z, kr, seed=keys[i])
            return (z, kr), kernels.stats(kr)

        def body(state, i):
            # Iterations past n_valid (the tail of the last block) leave the state as it was.
            new_state, st = step(state, i)
            keep = i < n_valid
            state = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new_state, state)
            values = dict(zip(names, constrain(state[0])))
            extra = module.derived(values, data, local, masks, axes)
            for v in outputs:  # latent-free quantities still get a chain dim
                extra[v.name] = jnp.broadcast_to(extra[v.name], (chains,) + tuple(local[d] for d in v.phys))
            return state, ([values[n] for n in names], extra, st)

        state, out = jax.lax.scan(body, _unstack(carry, treedef_box), jnp.arange(keys.shape[0]))
        return _stack(state, treedef_box), out

    data_specs = {v.name: spec_of(v.phys, layout) for v in data_vars}
    mask_specs = {d: P(DATA_AXIS) for d in layout.padded}
    z_specs = [spec_of(v.phys, layout, lead=1) for v in latents]
    stat_specs = {k: P() for k in kernels.STATS}
    draw_specs = ([spec_of(v.phys, layout, lead=2) for v in latents],
                  {v.name: spec_of(v.phys, layout, lead=2) for v in outputs}, stat_specs)
    init_fn = spmd_lib.spmd(init, mesh, (z_specs, data_specs, mask_specs), (STACKED, P(), z_specs), mode)
    # One program for warmup and sampling blocks (one compilation); warmup keeps only the statistics.
    block_fn = spmd_lib.spmd(run_block, mesh, (STACKED, P(), P(), data_specs, mask_specs),
                             (STACKED, draw_specs), mode)

    key = jax.random.PRNGKey(cfg.seed)
    init_key, run_key = jax.random.split(key)
    padded_sizes = dict(layout.sizes, **layout.padded)
    z0 = kernels.initial_values(latents, padded_sizes, cfg, init_key)
    data = {v.name: layout.pad(bound.arrays[v.name], v.phys) for v in data_vars}
    masks = layout.masks()
    if mode == "shard_map":
        data = spmd_lib.place(data, data_specs, mesh)
        z0 = spmd_lib.place(z0, z_specs, mesh)
        masks = spmd_lib.place(masks, mask_specs, mesh)
    keys = np.asarray(jax.random.split(run_key, cfg.warmup + cfg.draws))
    return Programs(init_fn, block_fn, data, masks, z0, block, keys, names)


def sample(compiled, bound, layout: Layout, mesh, cfg: SamplerConfig, mode: str = "shard_map", log=None,
           block: int | None = None, on_block=None):
    """Run the sampler block by block; returns host arrays (padding removed, [chains, draws, ...]),
    the trace and timings. `on_block(phase, done, total, stats)` is called after every block."""
    model = compiled.ir
    latents = model.of_kind("latent")
    outputs = model.of_kind("deterministic", "track")
    progs = build(compiled, bound, layout, mesh, cfg, mode, block)
    if log:
        log(f"sampling: {cfg.chains} chain{'s' if cfg.chains > 1 else ''} x ({cfg.warmup} warmup + {cfg.draws} "
            f"draws), {cfg.sampler}, {cfg.leapfrog} leapfrog steps, {layout.ndev} device"
            f"{'s' if layout.ndev > 1 else ''}")
    t0 = time.time()
    carry, init_lp, init_values = progs.init(progs.z0, progs.data, progs.masks)
    init_lp = np.asarray(init_lp)
    if not np.all(np.isfinite(init_lp)):
        raise PPLError(Diagnostic(
            "the log density is not finite at the initial values of chain"
            f"{'s' if np.sum(~np.isfinite(init_lp)) > 1 else ''} "
            f"{', '.join(str(i) for i in np.flatnonzero(~np.isfinite(init_lp)))}",
            hint="try --init 0, check the data for values outside the support, or check the priors"))
    warm_stats, draws, extra, stats = [], [], [], []
    first_call = {}
    B = progs.block
    for phase, total in (("warmup", cfg.warmup), ("sampling", cfg.draws)):
        done = 0
        offset = 0 if phase == "warmup" else cfg.warmup
        while done < total:
            n = min(B, total - done)
            keys = progs.keys[offset + done: offset + done + B]
            if keys.shape[0] < B:  # the last block: pad the keys, its extra iterations are not applied
                keys = np.concatenate([keys, np.repeat(keys[-1:], B - keys.shape[0], axis=0)])
            tb = time.time()
            carry, out = progs.block_fn(carry, keys, np.int32(n), progs.data, progs.masks)
            if phase == "warmup":
                st = jax.tree.map(lambda x: x[:n], jax.device_get(out[2]))
                warm_stats.append(st)
            else:
                vals, ext, st = jax.tree.map(lambda x: x[:n], jax.device_get(out))
                draws.append(vals), extra.append(ext), stats.append(st)
            if not first_call:
                first_call["s"] = time.time() - tb  # compilation and the first block
            done += n
            if on_block:
                on_block(phase, done, total, st)
    t2 = time.time()

    def cat(parts):
        return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *parts) if parts else None

    draws, extra, stats, warm = cat(draws), cat(extra), cat(stats), cat(warm_stats)
    out = {}
    for v, x in zip(latents, draws):
        out[v.name] = layout.unpad(np.swapaxes(x, 0, 1), v.phys, axis0=2)
    for v in outputs:
        out[v.name] = layout.unpad(np.swapaxes(extra[v.name], 0, 1), v.phys, axis0=2)
    trace = {k: np.swapaxes(x, 0, 1) for k, x in stats.items()}
    if warm is not None:
        trace.update({f"warmup_{k}": np.swapaxes(x, 0, 1) for k, x in warm.items()})
    run_s = t2 - t0
    timing = {"total_s": run_s, "first_blocks_s": sum(first_call.values()),
              "leapfrog_per_s": (cfg.warmup + cfg.draws) * cfg.leapfrog / max(run_s, 1e-9)}
    if log:
        log(f"done in {run_s:.1f} s (first blocks, with compilation: {timing['first_blocks_s']:.1f} s; "
            f"{timing['leapfrog_per_s']:.0f} leapfrog steps/s overall)")
    return out, trace, timing


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
