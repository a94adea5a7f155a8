"""The SPMD entry: the one module that runs a per-device function over the mesh (jax.shard_map or jax.pmap).

Specs are PartitionSpecs naming the mesh axis on the dim that is split (every other dim is replicated); like
shard_map's, a spec may stand for a whole subtree of arguments or results.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from .mesh import DATA_AXIS

MODES = ("shard_map", "pmap")


def _is_spec(x) -> bool:
    return isinstance(x, P)


def _split_axis(spec: P) -> int | None:
    return next((i for i, a in enumerate(spec) if a == DATA_AXIS), None)


def _per_leaf(fn, specs, tree):
    """Apply fn(spec, leaf) to every leaf, a spec standing for its whole subtree."""
    return jax.tree.map(lambda s, sub: jax.tree.map(lambda x: fn(s, x), sub), specs, tree, is_leaf=_is_spec)


def place(tree, specs, mesh):
    """Put host arrays on the mesh, split as their specs say. In a run of several processes, each process puts
    only the parts of split arrays that its own devices hold (`jax.make_array_from_callback`, which asks for
    just those index ranges: a memory-mapped array reads no other rows)."""
    return _per_leaf(lambda s, x: _put(x, NamedSharding(mesh, s)), specs, tree)


def _put(x, sharding):
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array):
        if not x.is_fully_addressable:  # already a global array
            return jax.device_put(x, sharding)
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):  # typed keys: their key data, placed, wrapped again
            return jax.random.wrap_key_data(_put(np.asarray(jax.random.key_data(x)), sharding),
                                            impl=jax.random.key_impl(x))
        x = np.asarray(x)  # on this process's devices only: from the host, as any other host array
    return jax.make_array_from_callback(np.shape(x), sharding, lambda index: np.asarray(x[index]))


def spmd(fn, mesh, in_specs, out_specs, mode: str = "shard_map"):
    """`fn` (written for one device's part of the data) as a function of global arrays."""
    if mode == "shard_map":
        # check_vma=False: TFP's custom gradients (Sharded, psum) do not carry JAX's varying-axis types.
        return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False))
    if mode == "pmap":
        return _pmapped(fn, mesh, in_specs, out_specs)
    raise ValueError(f"unknown SPMD mode {mode!r}; use one of {MODES}")


def _pmapped(fn, mesh, in_specs, out_specs):
    """The same program through jax.pmap: split dims become a mapped device axis and back (a one-axis mesh)."""
    if mesh.devices.ndim != 1:
        raise ValueError("--spmd pmap runs on a one-axis mesh (no --chain-groups); use --spmd shard_map")
    ndev = mesh.devices.size
    in_axes = tuple(jax.tree.map(_split_axis, in_specs, is_leaf=_is_spec))
    out_axes = jax.tree.map(lambda s: _split_axis(s) or 0, out_specs, is_leaf=_is_spec)
    lead = ()
    if not jax.tree.leaves(in_axes):  # nothing is split (no sharded plate), but pmap needs a mapped argument
        inner, fn = fn, lambda _device, *args: inner(*args)
        in_axes, lead = (0,) + in_axes, (np.arange(ndev),)
    mapped = jax.pmap(fn, axis_name=DATA_AXIS, in_axes=in_axes, out_axes=out_axes,
                      devices=list(mesh.devices.flat))

    def split(spec, x):
        a = _split_axis(spec)
        if a is None:
            return x
        s = np.shape(x)
        return x.reshape(s[:a] + (ndev, s[a] // ndev) + s[a + 1:])

    def merge(spec, y):
        a = _split_axis(spec)
        if a is None:
            return y[0]  # replicated: every device holds the same value
        s = y.shape
        return y.reshape(s[:a] + (s[a] * s[a + 1],) + s[a + 2:])

    def call(*args):
        outs = mapped(*lead, *_per_leaf(split, tuple(in_specs), args))
        return _per_leaf(merge, out_specs, outs)

    return call
