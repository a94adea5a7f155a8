"""Sampling on the mesh: the per-device programs (init, a block of iterations) and the host loop over blocks."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from ..dsl.diagnostics import Diagnostic, PPLError
from . import checkpoint as checkpoint_lib
from . import hostloop, kernels
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
    redraw: object = None  # redraw(attempt) -> fresh initial values (host, padded), for a non-finite start
    place_z: object = None  # host initial values -> the init program's argument
    init_key: object = None  # the key of the step-size heuristic at the start
    place_data: object = None  # BoundData of the same shapes -> the programs' data argument (no recompilation)


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
    padded_any = any(layout.padded[d] != layout.sizes[d] for d in layout.padded)
    chains = cfg.chains
    data_vars = model.of_kind("data")
    block = block or default_block_size(cfg)
    stat_names = kernels.stat_names(cfg)
    treedef_box = {}  # the structure of the carried state, found when `init` is traced

    def setup(data, masks, z):
        def make_pinned():
            # Fresh copies of the data at every call: TFP caches bijector results globally, keyed by the input
            # (a log-normal's log of the observed data), and a hit from another JAX sub-trace leaks its tracer.
            d = {k: jnp.array(x, copy=True) for k, x in data.items()}
            return module.make_model(d, local, masks, axes).experimental_pin(**module.observed(d))

        padding = kernels.padding_term(latents, masks, axes) if padded_any else None
        target, constrain = kernels.target_fn(make_pinned, padding)
        kernel = kernels.make_kernel(target, cfg, list(z), latents, axes)
        return kernel, constrain, padding

    def init(z0, key, data, masks):
        z0 = list(z0)
        kernel, constrain, padding = setup(data, masks, z0)
        kr = kernel.bootstrap_results(z0)
        lp = kernels.initial_log_prob(kr, padding, z0)
        ok = jnp.isfinite(lp)
        for g in kernels.initial_grads(kr):
            ok = ok & jnp.all(jnp.isfinite(jnp.reshape(g, (g.shape[0], -1))), axis=-1)
        if axes:  # a sharded gradient is finite only if it is on every device
            ok = jax.lax.pmin(ok.astype(jnp.int32), tuple(axes)) > 0
        # Stan's step-size heuristic, once every chain starts finite.
        kr = jax.lax.cond(jnp.all(ok), lambda k: kernel.initialize(z0, k, key), lambda k: k, kr)
        return _stack((z0, kr), treedef_box), lp, ok, constrain(z0)

    def run_block(carry, keys, n_valid, data, masks):
        z_init, kr_init = _unstack(carry, treedef_box)
        kernel, constrain, padding = setup(data, masks, z_init)

        def body(state, i):
            # Iterations past n_valid are skipped, not computed and then masked: a conditional leaves the state as
            # it was, so the host can run any number of iterations up to the block size with this one program.
            state = jax.lax.cond(i < n_valid, lambda s: tuple(kernel.one_step(*s, seed=keys[i])), lambda s: s,
                                 state)
            z, kr = state
            st = kernels.stats(kr, cfg, padding, z)
            values = dict(zip(names, constrain(z)))
            extra = module.derived(values, data, local, masks, axes)
            for v in outputs:  # latent-free quantities still get a chain dim
                extra[v.name] = jnp.broadcast_to(extra[v.name], (chains,) + tuple(local[d] for d in v.phys))
            return state, ([values[n] for n in names], extra, st)

        state, out = jax.lax.scan(body, (z_init, kr_init), jnp.arange(keys.shape[0]))
        return _stack(state, treedef_box), out

    data_specs = {v.name: spec_of(v.phys, layout) for v in data_vars}
    mask_specs = {d: P(DATA_AXIS) for d in layout.padded}
    z_specs = [spec_of(v.phys, layout, lead=1) for v in latents]
    stat_specs = {k: P() for k in stat_names}
    draw_specs = ([spec_of(v.phys, layout, lead=2) for v in latents],
                  {v.name: spec_of(v.phys, layout, lead=2) for v in outputs}, stat_specs)
    init_fn = spmd_lib.spmd(init, mesh, (z_specs, P(), data_specs, mask_specs), (STACKED, P(), P(), z_specs), mode)
    # One program for warmup and sampling blocks (one compilation); warmup keeps only the statistics.
    block_fn = spmd_lib.spmd(run_block, mesh, (STACKED, P(), P(), data_specs, mask_specs),
                             (STACKED, draw_specs), mode)

    key = jax.random.PRNGKey(cfg.seed)
    init_key, run_key, step_key = jax.random.split(key, 3)
    real = kernels.float_dtype()

    def place_data(bound):
        data = {v.name: layout.pad(np.asarray(bound.arrays[v.name], real if v.dtype == "real" else None), v.phys)
                for v in data_vars}
        return spmd_lib.place(data, data_specs, mesh) if mode == "shard_map" else data

    data = place_data(bound)
    prior = _prior_sampler(compiled, bound, latents) if cfg.init == "prior" else None

    def redraw(attempt: int):
        """Initial values at the true sizes (so every device count starts alike), padded for the mesh."""
        k = init_key if attempt == 0 else jax.random.fold_in(init_key, attempt)
        z = kernels.initial_values(latents, bound.sizes, cfg, k, prior)
        return [layout.pad(x, v.phys, axis0=1) for x, v in zip(z, latents)]

    z0 = redraw(0)
    masks = layout.masks()

    def place_z(z):
        return spmd_lib.place(z, z_specs, mesh) if mode == "shard_map" else z

    if mode == "shard_map":
        masks = spmd_lib.place(masks, mask_specs, mesh)
    keys = np.asarray(jax.random.split(run_key, cfg.warmup + cfg.draws))
    return Programs(init_fn, block_fn, data, masks, z0, block, keys, names, redraw, place_z, np.asarray(step_key),
                    place_data)


def _prior_sampler(compiled, bound, latents):
    """`--init prior`: draws of the latents from the (unsharded) model, on the unconstrained scale."""
    module = compiled.module
    masks = {d: np.ones(bound.sizes[d], bool) for d in compiled.ir.sharded_dims}
    real = kernels.float_dtype()
    arrays = {k: (np.asarray(a, real) if a.dtype.kind == "f" else a) for k, a in bound.arrays.items()}

    def draw(key, n):
        jd = module.make_model(arrays, bound.sizes, masks, [])
        pinned = jd.experimental_pin(**module.observed(arrays))
        x = pinned.sample_unpinned(n, seed=key)
        z = pinned.experimental_default_event_space_bijector().inverse(x)
        return [np.asarray(p) for p in z]

    return draw


def _nonfinite_report(compiled, bound, layout, latents, values, bad_chains, tries):
    """The error for a start that stays non-finite: which chains, and which terms (initcheck, when present)."""
    c = int(bad_chains[0])
    params = {v.name: layout.unpad(np.asarray(x)[c], v.phys) for v, x in zip(latents, values)}
    terms = []
    try:
        from . import initcheck  # written alongside; names the non-finite log-density terms

        terms = list(initcheck.nonfinite_terms(compiled, bound, params))
    except ImportError:
        terms = _nonfinite_terms_fallback(compiled, bound, params)
    except Exception:  # noqa: BLE001 - the report must not hide the error it reports
        terms = _nonfinite_terms_fallback(compiled, bound, params)
    which = f"chain{'s' if len(bad_chains) > 1 else ''} {', '.join(str(int(i)) for i in bad_chains)}"
    msg = (f"the log density or its gradient is not finite at the initial values of {which}"
           + (f" ({tries} draws of initial values tried)" if tries > 1 else ""))
    if terms:
        msg += "; non-finite: " + ", ".join(terms)
    other = "--init uniform or --init prior" if tries == 1 else "--init 0 or --init prior"
    return Diagnostic(msg, filename=compiled.filename,
                      hint=f"check the data for values outside the support and the priors, or try {other}")


def _nonfinite_terms_fallback(compiled, bound, params) -> list[str]:
    """The sites whose log-density term is not finite at `params` (constrained values, one chain)."""
    try:
        module = compiled.module
        masks = {d: np.ones(bound.sizes[d], bool) for d in compiled.ir.sharded_dims}
        jd = module.make_model(bound.arrays, bound.sizes, masks, [])
        values = dict(params, **module.observed(bound.arrays))
        parts = jd.log_prob_parts(**values)._asdict()
        bad = [k for k, lp in parts.items() if not np.all(np.isfinite(np.asarray(lp)))]
        return [f"{k} (log density {float(np.sum(parts[k])):g})" for k in bad]
    except Exception:  # noqa: BLE001
        return [k for k, x in params.items() if not np.all(np.isfinite(x))]


def compiled_block_size(model, layout: Layout, cfg: SamplerConfig) -> int:
    """The block size compiled by default: a whole phase, or what fits `hostloop.MAX_BLOCK_BYTES` of outputs; the
    host loop runs blocks of adaptive length up to it (see `hostloop.BlockSizer`)."""
    per_chain = sum(int(np.prod([layout.local[d] for d in v.phys]))
                    for v in model.of_kind("latent", "deterministic", "track")) + 16  # + the statistics
    return hostloop.max_block(cfg.warmup, cfg.draws, cfg.chains * per_chain * 8)


def sample(compiled, bound, layout: Layout, mesh, cfg: SamplerConfig, mode: str = "shard_map", log=None,
           block: int | None = None, on_block=None, progress=None, checkpoint: str | None = None,
           checkpoint_every: int | None = None, resume: bool = False):
    """Run the sampler block by block; returns host arrays (padding removed, [chains, draws, ...]),
    the trace and timings. `on_block(phase, done, total, stats)` is called after every block; `progress` (a
    `progress.Progress`) shows the run. With `checkpoint` (a path) the whole sampler state is saved every
    `checkpoint_every` iterations (default: a tenth of the run), and `resume` goes on from it with exactly the
    draws of an uninterrupted run. Ctrl-C raises `hostloop.Interrupted`, its `result` what was sampled."""
    model = compiled.ir
    latents = model.of_kind("latent")
    outputs = model.of_kind("deterministic", "track")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise PPLError(Diagnostic(f"--checkpoint-every must be at least 1 (got {checkpoint_every})"))
    if resume and not checkpoint:
        raise PPLError(Diagnostic("--resume needs --checkpoint PATH (the checkpoint to go on from)"))
    if block is not None and block < 1:
        raise PPLError(Diagnostic(f"--block must be at least 1 (got {block})"))
    compiled_block = block or compiled_block_size(model, layout, cfg)
    fp = saved = None
    if checkpoint:
        fp = checkpoint_lib.fingerprint(compiled, bound, layout.ndev, cfg)
        if resume and os.path.exists(checkpoint):
            saved = checkpoint_lib.load(checkpoint)
            checkpoint_lib.check(saved, checkpoint, fp)  # before any tracing: a mismatch is refused at once
    progs = build(compiled, bound, layout, mesh, cfg, mode, compiled_block)
    if log:
        log(f"sampling: {cfg.chains} chain{'s' if cfg.chains > 1 else ''} x ({cfg.warmup} warmup + {cfg.draws} "
            f"draws), {cfg.describe()}, {layout.ndev} device{'s' if layout.ndev > 1 else ''}"
            f"{', float64' if kernels.float_dtype() == jnp.float64 else ''}")
    t0 = time.time()
    carry, init_lp = init_chains(progs, compiled, bound, layout, cfg)
    startup_s = time.time() - t0
    if saved is not None:
        checkpoint_lib.check(saved, checkpoint, fp, progs.keys, carry)
        if log:
            log(f"resuming from {checkpoint} at iteration {saved.iteration} of {cfg.warmup + cfg.draws}")
    elif resume and log:
        log(f"no checkpoint at {checkpoint} yet: starting a new run")

    def place(leaves):
        return spmd_lib.place(leaves, [STACKED] * len(leaves), mesh) if mode == "shard_map" else leaves

    def assemble(res):
        out = {}
        if res.draws is not None:
            for v, x in zip(latents, res.draws):
                out[v.name] = layout.unpad(np.swapaxes(x, 0, 1), v.phys, axis0=2)
            for v in outputs:
                out[v.name] = layout.unpad(np.swapaxes(res.extra[v.name], 0, 1), v.phys, axis0=2)
        trace = {k: np.swapaxes(x, 0, 1) for k, x in (res.stats or {}).items()}
        if res.warm is not None:
            trace.update({f"warmup_{k}": np.swapaxes(x, 0, 1) for k, x in res.warm.items()})
        timing = dict(res.timing, total_s=time.time() - t0, startup_s=startup_s, devices=layout.ndev)
        return out, trace, timing

    try:
        res = hostloop.run(progs, carry, cfg, place=place, progress=progress, on_block=on_block,
                           checkpoint=checkpoint, checkpoint_every=checkpoint_every, fingerprint=fp, resume=saved,
                           info={"spmd": mode}, startup_s=startup_s, fixed_block=block)
    except hostloop.Interrupted as e:
        e.result = assemble(e.result)
        raise
    out, trace, timing = assemble(res)
    if log:
        log(f"done in {timing['total_s']:.1f} s: start-up and compilation {startup_s + timing['compile_s']:.1f} s, "
            f"sampling {timing['loop_s']:.1f} s ({timing['leapfrog_per_s']:,.0f} leapfrog steps/s per chain)")
    return out, trace, timing


def init_chains(progs: Programs, compiled, bound, layout: Layout, cfg: SamplerConfig):
    """Start the chains: initial values whose log density and gradient are finite, redrawn (for the chains
    that need it) up to INIT_TRIES times as Stan does; then Stan's step-size heuristic. Returns the carried
    state and the initial log densities."""
    latents = compiled.ir.of_kind("latent")
    z = progs.z0
    tries = 1 if str(cfg.init) == "0" else kernels.INIT_TRIES
    for attempt in range(tries):
        carry, init_lp, ok, values = progs.init(progs.place_z(z), progs.init_key, progs.data, progs.masks)
        ok = np.asarray(ok)
        if ok.all():
            return carry, np.asarray(init_lp)
        if attempt + 1 < tries:
            fresh = progs.redraw(attempt + 1)
            z = [np.where(ok.reshape((-1,) + (1,) * (np.ndim(a) - 1)), np.asarray(a), b) for a, b in zip(z, fresh)]
    raise PPLError(_nonfinite_report(compiled, bound, layout, latents, values, np.flatnonzero(~ok), tries))


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
