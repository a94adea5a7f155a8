"""The SPMD entry: runs a per-device function over the mesh with jax.shard_map or jax.pmap.

This is the one module that calls `shard_map` or `pmap`. Specs are PartitionSpecs naming the mesh
axis on the dim that is split; every other dim is replicated.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from .mesh import DATA_AXIS

MODES = ("shard_map", "pmap")


def _is_spec(x) -> bool:
    return isinstance(x, P)


def _split_axis(spec: P) -> int | None:
    return next((i for i, a in enumerate(spec) if a == DATA_AXIS), None)


def place(tree, specs, mesh):
    """Put host arrays on the mesh, split as their specs say."""
    return jax.tree.map(lambda spec, x: jax.device_put(x, NamedSharding(mesh, spec)), specs, tree, is_leaf=_is_spec)


def spmd(fn, mesh, in_specs, out_specs, mode: str = "shard_map"):
    """`fn` (written for one device's part of the data) as a jitted function of global arrays."""
    if mode == "shard_map":
        # check_vma=False: TFP's custom gradients (Sharded, psum) do not carry JAX's varying-axis types.
        return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False))
    if mode == "pmap":
        return _pmapped(fn, mesh, in_specs, out_specs)
    raise ValueError(f"unknown SPMD mode {mode!r}; use one of {MODES}")


def _pmapped(fn, mesh, in_specs, out_specs):
    """The same program through jax.pmap: split dims become a leading device axis and back."""
    ndev = mesh.devices.size
    devices = list(mesh.devices.flat)
    flat_in, in_tree = jax.tree.flatten(in_specs, is_leaf=_is_spec)
    in_axes = [_split_axis(s) for s in flat_in]
    flat_out, out_tree = jax.tree.flatten(out_specs, is_leaf=_is_spec)
    out_axes = [_split_axis(s) for s in flat_out]

    def per_device(*flat_args):
        out = fn(*jax.tree.unflatten(in_tree, list(flat_args)))
        return tuple(jax.tree.leaves(out))

    mapped = jax.pmap(per_device, axis_name=DATA_AXIS, in_axes=tuple(in_axes),
                      out_axes=tuple(0 if a is None else a for a in out_axes), devices=devices)

    def call(*args):
        flat = jax.tree.leaves(args)
        if len(flat) != len(flat_in):
            raise ValueError("arguments do not match their specs")
        split = []
        for x, a in zip(flat, in_axes):
            x = np.asarray(x) if not isinstance(x, jax.Array) else x
            if a is not None:
                shape = x.shape
                x = x.reshape(shape[:a] + (ndev, shape[a] // ndev) + shape[a + 1:])
            split.append(x)
        outs = mapped(*split)
        merged = []
        for y, a in zip(outs, out_axes):
            if a is None:
                merged.append(y[0])
            else:
                s = y.shape
                merged.append(y.reshape(s[:a] + (s[a] * s[a + 1],) + s[a + 2:]))
        return jax.tree.unflatten(out_tree, merged)

    return call
