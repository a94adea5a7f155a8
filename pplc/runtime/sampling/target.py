"""The sampler's target: the log density on the unconstrained scale, the map back, and the padding term."""
from __future__ import annotations

import jax.numpy as jnp
from tensorflow_probability.substrates.jax.internal import distribute_lib


def target_fn(make_pinned, padding=None):
    """The log density on the unconstrained scale (TFP's default event-space bijectors, Jacobian added),
    the map from unconstrained parts to constrained values, and the padding term (see `padding_term`).

    `make_pinned()` builds the pinned joint distribution afresh at every call, from fresh copies of the data:
    TFP caches bijector results (for all instances alike) keyed by the input, so a model shared by two JAX
    sub-traces (NUTS's while loop, the step-size heuristic's `cond`) would hand the second the first's
    tracers (a log-normal's log of the observed data, say)."""

    def parts_of(parts):
        pinned = make_pinned()
        return pinned, pinned.experimental_default_event_space_bijector(), type(pinned.dtype)(*parts)

    def target(*parts):
        pinned, bijector, z = parts_of(parts)
        lp = pinned.unnormalized_log_prob(bijector.forward(z)) + bijector.forward_log_det_jacobian(z)
        if padding is not None:
            lp = lp + padding(parts)
        return lp

    def constrain(parts):
        _, bijector, z = parts_of(parts)
        return list(bijector.forward(z))

    return target, constrain


def padding_term(latents, masks, shard_axes):
    """A standard normal log density (on the unconstrained scale) for the padded items of sharded latents, or
    None when nothing is padded. The model gives padded items log density 0, an improper flat direction in
    which NUTS would never turn and the mass matrix would grow without bound; a proper density of their own
    keeps them independent of everything else, so the real items' posterior is unchanged."""
    sharded = [(k, v) for k, v in enumerate(latents) if v.sharded_dim is not None]
    if not sharded or not masks:
        return None

    def term(parts):
        total = 0.0
        for k, v in sharded:
            x = parts[k]
            m = masks[v.sharded_dim]
            after = len(v.phys) - v.phys.index(v.sharded_dim) - 1
            pad = ~jnp.reshape(m, m.shape + (1,) * after)
            sq = jnp.where(pad, -0.5 * x * x, 0.0)
            total = total + jnp.sum(jnp.reshape(sq, (x.shape[0], -1)), axis=-1)
        return distribute_lib.psum(total, shard_axes)

    return term

