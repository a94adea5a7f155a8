"""Starting the chains: initial values (uniform, zeros, prior, Pathfinder), Stan's redraws of a non-finite start."""
from __future__ import annotations

import numpy as np

from ...compiler.supports import unconstrained_shape
from ...dsl.diagnostics import Diagnostic, PPLError
from ..data.bind import BoundData
from ..data.layout import Layout
from ..program import Program
from . import keys as keys_lib
from .carry import to_host
from .config import INIT_TRIES, SamplerConfig, float_dtype
from .pathfinder import pathfinder_sampler

FLAT = ("Flat", "HalfFlat")  # improper priors: nothing to draw an initial value from


def initial_values(latents, sizes, cfg: SamplerConfig, key, prior=None) -> list[np.ndarray]:
    """Initial unconstrained values, [chains, *shape] at the true (unpadded) sizes: uniform in (-2, 2) as
    Stan, zeros (`--init 0`), a prior draw (`--init prior`: `prior(key, chains)` gives unconstrained parts;
    latents with an improper Flat/HalfFlat prior fall back to uniform), or a Pathfinder draw per chain
    (`--init pathfinder`: `prior` is then `pathfinder.pathfinder_sampler`'s, for every latent)."""
    chains = cfg.chains
    dtype = float_dtype()
    shapes = tuple((chains,) + tuple(unconstrained_shape(v.support, [sizes[d] for d in v.phys])) for v in latents)
    if str(cfg.init) == "0":
        return [np.zeros(shape, dtype) for shape in shapes]
    k_prior, uniform = uniform_draws(key, shapes, np.dtype(dtype))
    drawn = prior(k_prior, chains) if (cfg.init in ("prior", "pathfinder") and prior is not None) else None
    out = []
    for j, (v, shape) in enumerate(zip(latents, shapes)):
        if drawn is not None and (cfg.init == "pathfinder" or not is_flat(v)):
            out.append(np.asarray(drawn[j], dtype).reshape(shape))
        else:
            out.append(np.asarray(uniform[j]))
    return out


def uniform_draws(key, shapes, dtype):
    """The prior's key, and a uniform draw in (-2, 2) of each shape from its own key: jax.random's bits computed
    on the host (keys.py: no XLA program to compile)."""
    k_prior, k_unif = keys_lib.split(key)
    keys = keys_lib.split(k_unif, max(1, len(shapes)))
    return k_prior, [keys_lib.uniform(keys[j], shape, dtype, -2.0, 2.0) for j, shape in enumerate(shapes)]


def is_flat(var) -> bool:
    """Whether a latent has an improper prior (nothing to draw from)."""
    return var.dist is not None and var.dist.spec.name in FLAT


def start_sampler(program: Program, bound: BoundData, cfg: SamplerConfig):
    """What `initial_values` draws from (its `prior`): prior draws for `--init prior`, Pathfinder's for
    `--init pathfinder` (a user error if BlackJAX is not installed), None otherwise."""
    if cfg.init == "prior":
        return prior_sampler(program, bound)
    if cfg.init == "pathfinder":
        return pathfinder_sampler(program, bound)
    return None


def prior_sampler(program: Program, bound: BoundData):
    """`--init prior`: draws of the latents from the (unsharded) model, on the unconstrained scale."""
    real = float_dtype()
    arrays = {k: (np.asarray(a, real) if a.dtype.kind == "f" else a) for k, a in bound.arrays.items()}

    def draw(key, n):
        pinned = program.pinned(arrays, bound.sizes, program.all_true_masks(bound.sizes), [])
        x = pinned.sample_unpinned(n, seed=key)
        z = pinned.experimental_default_event_space_bijector().inverse(x)
        return [np.asarray(p) for p in z]

    return draw


def init_chains(progs, program: Program, bound: BoundData, layout: Layout, cfg: SamplerConfig, lowered=None):
    """Start the chains: initial values whose log density and gradient are finite, redrawn (for the chains
    that need it) up to INIT_TRIES times as Stan does; then Stan's step-size heuristic. `progs` are the run's
    `programs.Programs`. `lowered(out_info, store)`, when given, is called once the init program is lowered
    (traced, or read from `progs.store`'s stored programs), before it compiles, with the shapes and shardings of
    its outputs and the store (`run.sample` then starts compiling the block program, which takes the carried
    state, alongside). Returns the carried state and the initial log densities."""
    z = progs.z0
    tries = 1 if str(cfg.init) == "0" else INIT_TRIES
    init = progs.init
    if lowered is not None and hasattr(init, "lower"):  # (under pmap, compiled by its first call)
        args = (progs.place_z(z), progs.data, progs.masks)
        store = progs.store(args) if progs.store is not None else None
        if store is not None:
            store.load(("init", "block"))
        traced = store.lower(init, args, "init") if store is not None else init.lower(*args)
        lowered(traced.out_info, store)
        init = traced.compile()  # the program a call would compile: the same executable, the same values
    for attempt in range(tries):
        carry, init_lp, ok, values = init(progs.place_z(z), progs.data, progs.masks)
        ok = to_host(ok)  # (every process: the chains of all groups, a collective when the mesh spans several)
        if ok.all():
            return carry, to_host(init_lp)
        if attempt + 1 < tries:
            fresh = progs.redraw(attempt + 1)
            z = [np.where(ok.reshape((-1,) + (1,) * (np.ndim(a) - 1)), np.asarray(a), b) for a, b in zip(z, fresh)]
    values = [to_host(v) for v in values]  # in every process (a collective when the mesh spans several)
    raise PPLError(nonfinite_report(program, bound, layout, values, np.flatnonzero(~ok), tries))


def nonfinite_report(program: Program, bound: BoundData, layout: Layout, values, bad_chains, tries: int):
    """The error for a start that stays non-finite: which chains, and which log-density terms."""
    c = int(bad_chains[0])
    params = {v.name: layout.unpad(np.asarray(x)[c], v.phys) for v, x in zip(program.latents, values)}
    try:
        terms = nonfinite_terms(program, bound, params)
    except Exception:  # noqa: BLE001 - the report must not hide the error it reports
        terms = [k for k, x in params.items() if not np.all(np.isfinite(x))]
    which = f"chain{'s' if len(bad_chains) > 1 else ''} {', '.join(str(int(i)) for i in bad_chains)}"
    msg = (f"the log density or its gradient is not finite at the initial values of {which}"
           + (f" ({tries} draws of initial values tried)" if tries > 1 else ""))
    if terms:
        msg += "; non-finite: " + ", ".join(terms)
    other = "--init uniform or --init prior" if tries == 1 else "--init 0 or --init prior"
    return Diagnostic(msg, filename=program.filename,
                      hint=f"check the data for values outside the support and the priors, or try {other}")


def nonfinite_terms(program: Program, bound: BoundData, params: dict) -> list[str]:
    """The sites (latent or observed, in model order) whose log-density term is not finite at `params`.

    `params` are the latents' constrained values by name, each with a leading chains dim (a value without one,
    shaped as the latent itself, is one chain). A term counts as not finite if it is NaN or infinite in any
    chain. The terms come from the unsharded model (all the data, no padding), so a sharded run names the same
    sites as a run on one device."""
    values = {}
    for v in program.latents:
        x = np.asarray(params[v.name])
        values[v.name] = x[None] if x.ndim == len(v.phys) else x
    values = program.by_site(values)
    values.update(program.module.observed(bound.arrays))  # (by site name)
    parts = program.by_name(program.unsharded_model(bound.arrays, bound.sizes).log_prob_parts(**values))
    order = [v.name for v in program.ir.variables if v.kind in ("latent", "observed")]
    return [name for name in order if name in parts and not np.all(np.isfinite(np.asarray(parts[name])))]
