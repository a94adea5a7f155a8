"""Pointwise log-likelihood of the observed sites at each posterior draw (ArviZ's log_likelihood group: LOO, WAIC)."""
from __future__ import annotations

import numpy as np

from ..dsl.diagnostics import Diagnostic, PPLError
from . import data as data_lib
from .program import Program

# Draws x pointwise values per jitted call are kept under this; a fit with more pointwise values than
# MAX_ELEMENTS in all (chains x draws x observations) gets no log_likelihood group (too large to keep).
CHUNK_ELEMENTS = 1 << 22
MAX_ELEMENTS = 1 << 27


def layer_types() -> tuple:
    """The TFP wrappers that lower.py puts around a site's elementwise distribution (tfd.Sample, BatchBroadcast,
    Masked, Independent, tfed.Sharded): the log density inside them is per element."""
    import tensorflow_probability.substrates.jax as tfp
    from tensorflow_probability.substrates.jax.experimental import distribute as tfed

    tfd = tfp.distributions
    return (tfd.Sample, tfd.BatchBroadcast, tfd.Masked, tfd.Independent, tfed.Sharded)


def elementwise(dist, layers: tuple | None = None):
    """The elementwise distribution of a site: `dist` with the wrappers of `layer_types` taken off (and no
    other: a LogNormal, a TransformedDistribution, is kept as it is)."""
    layers = layers or layer_types()
    while isinstance(dist, layers):
        dist = dist.distribution
    return dist


def batch_shape(program: Program, name: str, sizes: dict) -> tuple:
    """The shape of observed site `name`'s pointwise log-likelihood: its dims less the distribution's event
    dims (a Dirichlet's last dim)."""
    v = next(v for v in program.observed if v.name == name)
    rank = len(v.phys) - (v.dist.spec.event_rank if v.dist is not None else 0)
    return tuple(sizes[d] for d in v.phys[:rank])


def pointwise_log_likelihood(program: Program, draws: dict, data, chunk: int | None = None) -> dict:
    """log p(y_i | draw) for every observed site y and element i (per plate item; per element of the observed
    array), at every posterior draw: name -> [chains, draws, *shape] (float64). `draws`: name -> [chains,
    draws, *shape] (as in a Fit), with every latent; `data`: the data the model was fitted to (observed
    arrays included). Evaluated in float64 on one device with the unsharded model, one draw at a time under
    `jax.vmap` (so that each site's batch is its declared shape), `chunk` draws per call."""
    import jax
    import jax.numpy as jnp

    latents = program.latents
    missing = [v.name for v in latents if v.name not in draws]
    if missing:
        raise PPLError(Diagnostic(f"the draws have no `{missing[0]}`, a latent of {program.ir.filename}"))
    with jax.enable_x64(True):
        bound = data_lib.bind_program(program, data)
        sizes, arrays = bound.sizes, dict(bound.arrays)
        observed = [v for v in program.observed if v.name in arrays]
        if not latents or not observed:
            return {}
        lead = tuple(np.shape(draws[latents[0].name])[:2])
        n = int(np.prod(lead))
        flat = {v.name: np.asarray(draws[v.name], np.float64).reshape((n,) + tuple(sizes[d] for d in v.phys))
                for v in latents}
        shapes = {v.name: batch_shape(program, v.name, sizes) for v in observed}
        per_draw = max(1, sum(int(np.prod(s)) for s in shapes.values()))
        if chunk is None:
            chunk = max(1, min(n, CHUNK_ELEMENTS // per_draw))
        layers = layer_types()

        def one(values, arrays):
            jd = program.unsharded_model(arrays, sizes)
            names = list(program.by_name({site: None for site in jd.dtype._fields}))  # .ppl names, in site order
            ys = program.by_name(program.module.observed(arrays))
            value = [values[k] if k in values else ys.get(k, arrays.get(k)) for k in names]
            dists, _ = jd.sample_distributions(seed=jax.random.PRNGKey(0), value=value)
            dists = dict(zip(names, dists))
            return {v.name: jnp.broadcast_to(elementwise(dists[v.name], layers).log_prob(ys[v.name]),
                                             shapes[v.name]) for v in observed}

        step = jax.jit(jax.vmap(one, in_axes=(0, None)))
        parts = []
        for start in range(0, n, chunk):
            idx = np.minimum(np.arange(start, start + chunk), n - 1)  # the last chunk repeats its last draw
            keep = min(chunk, n - start)
            out = step({k: x[idx] for k, x in flat.items()}, arrays)
            parts.append({k: np.asarray(x, np.float64)[:keep] for k, x in out.items()})
    return {v.name: np.concatenate([p[v.name] for p in parts]).reshape(lead + shapes[v.name]) for v in observed}


__all__ = ["pointwise_log_likelihood", "elementwise", "layer_types", "batch_shape", "MAX_ELEMENTS"]
