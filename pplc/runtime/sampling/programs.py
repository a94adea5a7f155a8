"""The per-device programs of a run: the init program and the block program (a scan of sampler iterations)."""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from ..data.bind import BoundData
from ..data.layout import Layout, Placement, is_small, spec_of
from ..devices import spmd as spmd_lib
from ..devices.mesh import CHAINS_AXIS, DATA_AXIS
from ..program import Program
from . import exported
from . import keys as keys_lib
from .hostloop import block_args
from . import init as init_lib
from . import stats as stats_lib
from .config import SamplerConfig
from .target import target_fn
from .warmup import make_kernel

# The sampler's carried state (positions and kernel results) leaves each SPMD call as a flat list of
# arrays stacked per device: every leaf gets a leading device axis, so sharded and replicated leaves
# alike round-trip exactly, and objects in the kernel results (a momentum distribution) are rebuilt
# only inside the per-device program.
STACKED = P(DATA_AXIS)


def stacked(mesh) -> P:
    """The spec of the carried state's leaves: a leading axis over every device of the mesh (both axes of a mesh
    of chain groups)."""
    return P(tuple(mesh.axis_names)) if len(mesh.axis_names) > 1 else STACKED


def group_keys(seed: int, groups: int) -> list:
    """One key per chain group: the seed's key for group 0 (so that a run of one group is the plain run), the
    seed's key folded with g for group g. Each group's initial values, momenta and every other random number
    come from its own key alone."""
    return _group_keys(keys_lib.prng_key(seed), groups)


def _group_keys(base, groups: int) -> list:
    return [base] + [keys_lib.fold_in(base, g) for g in range(1, groups)]


def run_keys(base, groups: int, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """From the seed's key, on the host (keys.py: jax.random's bits, nothing to compile): per group, the key of
    its initial values and one key per iteration ([iterations, groups, 2]), each group's split from its
    `group_keys` key into (initial values, iterations, a third key no longer used, kept so that the first two
    stay what they were)."""
    split = [keys_lib.split(k, 3) for k in _group_keys(base, groups)]
    return (np.stack([s[0] for s in split]), np.stack([keys_lib.split(s[1], iterations) for s in split], axis=1))


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
    redraw: object = None  # redraw(attempt) -> fresh initial values (host, padded), for a non-finite start
    place_z: object = None  # host initial values -> the init program's argument
    place_data: object = None  # BoundData of the same shapes -> the programs' data argument (no recompilation)
    store: object = None  # the init program's arguments -> an `exported.Store` of this run's programs, or None


def build(program: Program, bound: BoundData, layout: Layout, mesh, cfg: SamplerConfig, mode: str = "shard_map",
          block: int | None = None) -> Programs:
    """Trace the per-device programs for this model, data layout and sampler configuration."""
    cfg.validate()
    latents = program.latents
    outputs = program.outputs
    names = [v.name for v in latents]
    placement = Placement(program, layout, mesh, mode)
    local = layout.local
    axes = placement.shard_axes
    groups = placement.groups
    chains = cfg.group_chains  # the chains of one group: the batch of every device

    def group_index():
        """This device's chain group (traced: its place on the mesh's `chains` axis)."""
        return jax.lax.axis_index(CHAINS_AXIS) if groups > 1 else 0
    block = block or default_block_size(cfg)
    stat_names = stats_lib.stat_names(cfg)
    treedef_box = {}  # the structure of the carried state, found when `init` is traced
    # The masks of dims with nothing padded (every dim on one device) are constants of the programs, so the model
    # has no selects for them (as arguments they made a small plate model's NUTS step 2x dearer).
    known_masks = layout.known_masks()
    # On one device, small data are constants of the programs too (runtime/data/layout.py SMALL_DATA_BYTES); the
    # programs still take them as an argument (the same signature), which they then leave unused.
    fixed_data = placement.data(bound) if mesh.devices.size == 1 and is_small(bound.arrays) else None

    def known(data, masks):
        """The data and masks a program computes with: its arguments, or the constants that stand for them."""
        return (data if fixed_data is None else fixed_data), {**masks, **known_masks}

    def setup(data, masks, z):
        def make_pinned():
            # Fresh copies of the data at every call: TFP caches bijector results globally, keyed by the input
            # (a log-normal's log of the observed data), and a hit from another JAX sub-trace leaks its tracer.
            d = {k: jnp.array(x, copy=True) for k, x in data.items()}
            return program.pinned(d, local, masks, axes)

        # Padded items of sharded latents: log density 0 in the model, and no momentum (`momentum.Momentum`), so
        # they never move and add nothing to the Hamiltonian: the draws do not depend on the device count.
        padding = None
        target, constrain = target_fn(make_pinned, padding)
        kernel = make_kernel(target, cfg, list(z), latents, axes, layout.sizes)
        return kernel, constrain, padding

    def init(z0, data, masks):
        z0 = list(z0)
        data, masks = known(data, masks)
        kernel, constrain, padding = setup(data, masks, z0)
        kr = kernel.bootstrap_results(z0)
        lp = stats_lib.initial_log_prob(kr, padding, z0)
        ok = jnp.isfinite(lp)
        for g in stats_lib.initial_grads(kr):
            ok = ok & jnp.all(jnp.isfinite(jnp.reshape(g, (g.shape[0], -1))), axis=-1)
        if axes:  # a sharded gradient is finite only if it is on every device
            ok = jax.lax.pmin(ok.astype(jnp.int32), tuple(axes)) > 0
        # (Stan's step-size heuristic runs in the block program, before the first step: warmup.WindowedAdaptation.)
        return _stack((z0, kr), treedef_box), lp, ok, constrain(z0)

    def run_block(carry, keys, n_valid, data, masks):
        z_init, kr_init = _unstack(carry, treedef_box)
        keys = keys[:, group_index()]  # [iterations, groups, 2] -> this group's keys
        data, masks = known(data, masks)
        kernel, constrain, padding = setup(data, masks, z_init)

        def body(state, i):
            # Iterations past n_valid are skipped, not computed and then masked: a conditional leaves the state as
            # it was, so the host can run any number of iterations up to the block size with this one program.
            state = jax.lax.cond(i < n_valid, lambda s: tuple(kernel.one_step(*s, seed=keys[i])), lambda s: s,
                                 state)
            z, kr = state
            st = stats_lib.stats(kr, cfg, padding, z)
            values = dict(zip(names, constrain(z)))
            extra = program.module.derived(values, data, local, masks, axes)
            for v in outputs:  # latent-free quantities still get a chain dim
                extra[v.name] = jnp.broadcast_to(extra[v.name], (chains,) + tuple(local[d] for d in v.phys))
            return state, ([values[n] for n in names], extra, st)

        state, out = jax.lax.scan(body, (z_init, kr_init), jnp.arange(keys.shape[0]))
        return _stack(state, treedef_box), out

    data_specs, mask_specs = placement.data_specs, placement.mask_specs
    # Per-chain arrays are split over the chain groups (on a mesh of several), replicated over a group's devices;
    # the keys of every group go to every device, which takes its group's.
    z_specs = placement.latent_specs(1, chains_at=0)
    per_chain = placement.chains_spec(1, 0)
    stat_specs = {k: placement.chains_spec(2, 1) for k in stat_names}
    draw_specs = (placement.latent_specs(2, chains_at=1),
                  {v.name: spec_of(v.phys, layout, lead=2, chains_at=1 if groups > 1 else None) for v in outputs},
                  stat_specs)
    carry_spec = stacked(mesh)
    init_fn = spmd_lib.spmd(init, mesh, (z_specs, data_specs, mask_specs),
                            (carry_spec, per_chain, per_chain, z_specs), mode)
    # One program for warmup and sampling blocks (one compilation); warmup keeps only the statistics.
    block_fn = spmd_lib.spmd(run_block, mesh, (carry_spec, P(), P(), data_specs, mask_specs),
                             (carry_spec, draw_specs), mode)

    init_keys, keys = run_keys(keys_lib.prng_key(cfg.seed), groups, cfg.warmup + cfg.draws)
    data = placement.data(bound)
    prior = init_lib.start_sampler(program, bound, cfg)
    group_cfg = dataclasses.replace(cfg, chains=chains)

    def redraw(attempt: int):
        """Initial values at the true sizes (so every device count starts alike), padded for the mesh: each
        group's from its own key, chains of group 0 first."""
        z = []
        for init_key in init_keys:
            k = init_key if attempt == 0 else keys_lib.fold_in(init_key, attempt)
            z.append(init_lib.initial_values(latents, bound.sizes, group_cfg, k, prior))
        z = [np.concatenate(parts, axis=0) for parts in zip(*z)]
        return [layout.pad(x, v.phys, axis0=1) for x, v in zip(z, latents)]

    base = {}

    def store(args):
        """The stored programs (`exported.Store`) for the init program's `args`; None with the cache off, under
        pmap, or with several processes (each would key its own part of the data)."""
        if mode != "shard_map" or jax.process_count() > 1:
            return None
        if "key" not in base:
            base["key"] = exported.base_key(program, bound, cfg, mode, block)
        return None if base["key"] is None else exported.Store(base["key"], args)

    return Programs(init_fn, block_fn, data, placement.masks(), redraw(0), block, keys, redraw,
                    lambda z: placement.place(z, z_specs), placement.data, store)


def compile_alongside(progs):
    """The block program compiled in a thread while the init program compiles and runs (XLA releases the GIL
    while it compiles; tracing stays in this thread): `lowered(out_info, store)`, for `init_chains`, lowers the
    block program for the carried state's shapes (from `store`, an `exported.Store`, when given) and starts its
    compilation; `compiled()` waits for it (None when it was not started: `hostloop.run` then compiles it as
    before)."""
    box = {}

    def lowered(out_info, store=None):
        args = block_args(progs, out_info[0])
        traced = store.lower(progs.block_fn, args, "block") if store is not None else progs.block_fn.lower(*args)

        def compile_():
            try:
                box["fn"] = traced.compile()
            except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
                box["error"] = e

        box["thread"] = threading.Thread(target=compile_, name="pplc-compile-block", daemon=True)
        box["thread"].start()

    def compiled():
        if "thread" not in box:
            return None
        box["thread"].join()
        if "error" in box:
            raise box["error"]
        return box["fn"]

    if not hasattr(progs.block_fn, "lower"):  # pmap: compiled by its first call
        return None, lambda: None
    return lowered, compiled
