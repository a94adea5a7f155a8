"""Replicated data: each observed site drawn anew given each posterior draw (ArviZ's posterior_predictive group)."""
from __future__ import annotations

import warnings

import numpy as np

from . import data as data_lib
from .predict import flat_draws
from .program import Program

# What TFP's samplers say when they ask for float64 without jax_enable_x64 (JAX truncates to float32, as wanted):
# raised inside TFP, once per sampler op, not the user's business.
TFP_FLOAT64 = "Explicitly requested dtype float64"

# Work per jitted call: draws x replicated elements kept under this.
CHUNK_ELEMENTS = 1 << 24


def replicate(program: Program, draws: dict, data, seed: int = 0, chunk: int | None = None) -> dict:
    """y_rep for every observed site y: name -> [chains, draws, *shape], one replicate per posterior draw
    (`draws`: name -> [chains, draws, *shape], as in a Fit), drawn from the unsharded model on one device with
    every latent set to the draw's value. The data may leave out the observed arrays (their sizes must be known)."""
    import jax

    observed = program.observed
    if not observed or not program.latents:
        return {}
    bound = data_lib.bind_program(program, data, allow_missing=True)
    sizes = bound.sizes
    lead, flat = flat_draws(program.latents, draws, sizes)
    n_draws = int(np.prod(lead))
    arrays = bound.with_placeholders(observed)  # their sizes only matter
    wanted = [v.name for v in observed]
    per_draw = max(1, sum(int(np.prod([sizes[d] for d in v.phys])) for v in observed))
    chunk = chunk or max(1, min(n_draws, CHUNK_ELEMENTS // per_draw))

    def draw_chunk(values, keys, data):
        jd = program.unsharded_model(data, sizes)
        names = list(program.by_name({site: None for site in jd.dtype._fields}))  # .ppl names, in site order

        def one(vals, key):
            x = jd.sample(seed=key, value=[vals.get(n) for n in names])
            return {n: x[i] for i, n in enumerate(names) if n in wanted}

        return jax.vmap(one)(values, keys)

    step = jax.jit(draw_chunk)
    keys = jax.random.split(jax.random.PRNGKey(seed), n_draws)
    parts = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TFP_FLOAT64, category=UserWarning)
        for start in range(0, n_draws, chunk):
            idx = np.minimum(np.arange(start, start + chunk), n_draws - 1)  # the last chunk repeats its last draw
            out = step({k: x[idx] for k, x in flat.items()}, keys[idx], arrays)
            keep = min(chunk, n_draws - start)
            parts.append({k: np.asarray(x)[:keep] for k, x in out.items()})
    out = {n: np.concatenate([p[n] for p in parts]).reshape(lead + parts[0][n].shape[1:]) for n in wanted}
    for v in observed:  # counts, classes and 0/1 as the data hold them
        if v.dist.spec.discrete:
            out[v.name] = out[v.name].astype(data_lib.DTYPES[v.dtype])
    return out


def prior_draws(program: Program, data, chains: int, draws: int, seed: int = 0) -> tuple[dict, dict]:
    """Joint draws from the prior (CmdStan's fixed_param run of a model, NumPyro's Predictive without samples):
    (latents, deterministics and tracked values; the observed sites' prior predictive draws), each name ->
    [chains, draws, *shape], from the unsharded model on one device. The data may leave out the observed arrays."""
    import jax

    bound = data_lib.bind_program(program, data, allow_missing=True)
    sizes = bound.sizes
    arrays = bound.with_placeholders(program.ir.inputs)  # observed arrays not given: the prior draws them
    latents = program.latent_names
    observed = [v.name for v in program.observed]
    masks = program.all_true_masks(sizes)

    def draw(keys, arrays):
        def one(key):
            x = program.by_name(program.unsharded_model(arrays, sizes).sample(seed=key))
            values = {n: x[n] for n in latents}
            values.update(program.module.derived(values, arrays, sizes, masks, []))
            return values, {n: x[n] for n in observed}

        return jax.vmap(one)(keys)

    keys = jax.random.split(jax.random.PRNGKey(seed), chains * draws)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TFP_FLOAT64, category=UserWarning)
        values, predictive = jax.jit(draw)(keys, arrays)

    def shaped(d):
        return {k: np.asarray(x).reshape((chains, draws) + np.shape(x)[1:]) for k, x in d.items()}

    predictive = shaped(predictive)
    for v in program.observed:
        if v.dist.spec.discrete:
            predictive[v.name] = predictive[v.name].astype(data_lib.DTYPES[v.dtype])
    return shaped(values), predictive
