"""The model's log density (and its gradient) at given values, on one device or split over a mesh."""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from ..dsl.diagnostics import Diagnostic, PPLError
from .data.bind import BoundData, dtype_of
from .data.layout import Placement, on_mesh
from .devices import spmd as spmd_lib
from .program import Program


def latent_values(program: Program, params: dict, layout=None) -> list:
    """The latents' values from `params` (by name, constrained), in model order, padded for `layout` if given."""
    out = []
    for v in program.latents:
        if v.name not in params:
            raise PPLError(Diagnostic(f"no value for latent `{v.name}` in params"))
        x = np.asarray(params[v.name], dtype_of("real"))
        if layout is not None:
            x = layout.pad(x, v.phys, axis0=x.ndim - len(v.phys))
        out.append(x)
    return out


def log_density(program: Program, bound: BoundData, params: dict, devices: int = 1, with_grad: bool = False,
                mode: str = "shard_map"):
    """The log density (constrained scale, no Jacobian) at `params` and, `with_grad`, its gradient by latent
    name (None without): the unsharded model for `devices` = 1, else the data split over that many devices."""
    latents = program.latents
    names = [v.name for v in latents]

    def value_and_grad(parts, data, masks, dims, axes):
        def lp(parts):
            return program.pinned(data, dims, masks, axes).unnormalized_log_prob(dict(zip(names, parts)))
        if not with_grad:
            return lp(parts), None
        val, vjp = jax.vjp(lp, parts)
        return val, vjp(jax.numpy.ones_like(val))[0]

    if devices == 1:  # the unsharded model: all the data, no padding, no shard axes
        sizes = bound.sizes
        fn = jax.jit(lambda parts, data, masks: value_and_grad(parts, data, masks, sizes, []))
        val, grad = fn(latent_values(program, params), bound.arrays, program.all_true_masks(sizes))
        grad = None if grad is None else {v.name: np.asarray(g) for v, g in zip(latents, grad)}
        return val, grad
    mesh, layout = on_mesh(program, bound.sizes, devices)
    placement = Placement(program, layout, mesh, mode)
    local, axes = layout.local, placement.shard_axes
    parts = latent_values(program, params, layout)
    lead = [p.ndim - len(v.phys) for p, v in zip(parts, latents)]
    part_specs = placement.latent_specs(lead)
    out_specs = (P(), part_specs if with_grad else None)
    fn = spmd_lib.spmd(lambda p, d, m: value_and_grad(p, d, m, local, axes), mesh,
                       (part_specs, placement.data_specs, placement.mask_specs), out_specs, mode)
    val, grad = fn(parts, placement.data(bound), placement.masks())
    if grad is not None:
        grad = {v.name: layout.unpad(np.asarray(g), v.phys, axis0=k) for v, g, k in zip(latents, grad, lead)}
    return val, grad
