"""HMC/NUTS momenta drawn per plate item (keys folded with the item's global index): the same on any device count."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from tensorflow_probability.substrates.jax.internal import distribute_lib


@jax.tree_util.register_pytree_node_class
class Momentum:
    """The momentum distribution of preconditioned HMC/NUTS: independent N(0, 1/var) per unconstrained element
    (`var`, shaped as the state parts [chains, ...], is the inverse mass matrix), as TFP's
    `make_momentum_distribution`, with what makes a run's draws independent of the device count:

    - a sharded part's draws come from one key per plate item, folded with the item's global index (this
      device's offset on the mesh plus the local index), never with the device index;
    - padded items (global index >= the plate's true size) get momentum 0 and add nothing to the kinetic energy
      (so they add nothing to the Hamiltonian, the NUTS U-turn sums or the acceptance, and never move);
    - a sharded part's log density is summed over the devices with TFP's `psum` (whose gradient stays local).

    `sharded[k]` is None for a replicated part, else (axis of the item dim in the part, the true size or None:
    nothing padded);
    `axes` are the mesh axes sharded parts are split over. A JAX pytree, so it can live in kernel results."""

    def __init__(self, var, sharded, axes=()):
        self.var = list(var)
        self.sharded = tuple(sharded)
        self.axes = tuple(axes)

    def tree_flatten(self):
        return (self.var,), (self.sharded, self.axes)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], *aux)

    @property
    def dtype(self):
        return [v.dtype for v in self.var]

    def with_variance(self, var) -> "Momentum":
        """The same distribution with a new inverse mass matrix (broadcast to the parts' shapes)."""
        return Momentum([jnp.broadcast_to(v, old.shape).astype(old.dtype) for v, old in zip(var, self.var)],
                        self.sharded, self.axes)

    def _items(self, k: int):
        """(axis, global indices of this device's items, validity mask) of sharded part k."""
        axis, size = self.sharded[k]
        local = self.var[k].shape[axis]
        offset = 0
        for name in self.axes:  # this device's position on the (row-major) mesh axes
            offset = offset * jax.lax.axis_size(name) + jax.lax.axis_index(name)
        idx = offset * local + jnp.arange(local)
        return axis, idx, (idx < size) if size is not None else jnp.ones(local, bool)

    def _mask(self, k: int):
        """Sharded part k's validity mask shaped to broadcast against the part, or None (replicated)."""
        if self.sharded[k] is None:
            return None
        axis, _, valid = self._items(k)
        v = self.var[k]
        return jnp.reshape(valid, (1,) * axis + (v.shape[axis],) + (1,) * (v.ndim - axis - 1))

    def sample(self, sample_shape=(), seed=None, **_):
        if tuple(sample_shape) != ():
            raise NotImplementedError("pplc's momentum distribution draws one momentum per chain")
        keys = jax.random.split(_as_key(seed), len(self.var))
        out = []
        for k, (v, key) in enumerate(zip(self.var, keys)):
            if self.sharded[k] is None:
                z = jax.random.normal(key, v.shape, v.dtype)
            else:
                axis, idx, valid = self._items(k)
                rest = v.shape[:axis] + v.shape[axis + 1:]
                z = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), rest, v.dtype))(idx)
                z = jnp.moveaxis(z, 0, axis)
                z = jnp.where(self._mask(k), z, 0.0)
            out.append(z / jnp.sqrt(v))
        return out

    def log_prob(self, *parts):
        if len(parts) == 1 and isinstance(parts[0], (list, tuple)):
            parts = parts[0]
        total = 0.0
        for k, (p, v) in enumerate(zip(parts, self.var)):
            terms = -0.5 * (p * p * v + math.log(2 * math.pi)) + 0.5 * jnp.log(v)
            mask = self._mask(k)
            if mask is not None:
                terms = jnp.where(mask, terms, 0.0)
            lp = jnp.sum(jnp.reshape(terms, terms.shape[:1] + (-1,)), axis=-1)
            total = total + (distribute_lib.psum(lp, self.axes) if mask is not None else lp)
        return total


def _as_key(seed):
    """A raw uint32[2] key from TFP's seeds (raw or typed)."""
    if jnp.issubdtype(getattr(seed, "dtype", jnp.uint32), jax.dtypes.prng_key):
        return jax.random.key_data(seed)
    return seed


def make(state, latents, axes, sizes) -> Momentum:
    """The unit momentum distribution for these state parts ([chains, ...] each) of these latents: sharded
    latents' parts split over `axes` (none: all replicated), their plates' true sizes in `sizes` (a plate not
    there has no padded items)."""
    sharded = []
    for x, v in zip(state, latents):
        if axes and v.sharded_dim is not None:
            size = sizes.get(v.sharded_dim)
            sharded.append((1 + list(v.phys).index(v.sharded_dim), None if size is None else int(size)))
        else:
            sharded.append(None)
    return Momentum([jnp.ones_like(x) for x in state], sharded, axes if any(sharded) else ())


def update(momentum: Momentum, var) -> Momentum:
    """The momentum distribution with the inverse mass matrix `var` (per state part)."""
    return momentum.with_variance(var)
