"""Prelude helpers for linear algebra and building arrays (outer, solve, quad_form, concat, `[a, b]`), copied too."""

import jax
import jax.numpy as jnp


def outer(a, b):
    """The outer product [..., m, n] of the vectors `a` ([..., m]) and `b` ([..., n])."""
    return a[..., :, None] * b[..., None, :]


def linalg_batch(a, b, b_rank):
    """Matrix `a` ([..., k, k]) and `b` (its last `b_rank` axes its own) with their leading axes broadcast."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    batch = jnp.broadcast_shapes(a.shape[:-2], b.shape[:b.ndim - b_rank])
    return jnp.broadcast_to(a, batch + a.shape[-2:]), jnp.broadcast_to(b, batch + b.shape[b.ndim - b_rank:])


def solve(a, b, b_rank=1):
    """a^-1 b (Stan's mdivide_left) for a vector `b` ([..., k], b_rank 1) or a matrix ([..., k, m], b_rank 2)."""
    a, b = linalg_batch(a, b, b_rank)
    if b_rank == 1:
        return jnp.linalg.solve(a, b[..., None])[..., 0]
    return jnp.linalg.solve(a, b)


def triangular_solve(a, b, b_rank=1):
    """a^-1 b for a lower triangular `a` (Stan's mdivide_left_tri_low), `b` a vector or a matrix."""
    a, b = linalg_batch(a, b, b_rank)
    if b_rank == 1:
        return jax.scipy.linalg.solve_triangular(a, b[..., None], lower=True)[..., 0]
    return jax.scipy.linalg.solve_triangular(a, b, lower=True)


def quad_form(a, x, x_rank=1):
    """x' a x: a scalar for a vector `x` ([..., k]), an [..., m, m] matrix for a matrix `x` ([..., k, m])."""
    a, x = linalg_batch(a, x, x_rank)
    if x_rank == 1:
        return jnp.einsum("...i,...ij,...j->...", x, a, x)
    return jnp.einsum("...ia,...ij,...jb->...ab", x, a, x)


def concat(*parts):
    """The parts joined along their last axis (a scalar is one item); the axes before it broadcast."""
    parts = [jnp.asarray(p) for p in parts]
    parts = [p.reshape(1) if p.ndim == 0 else p for p in parts]
    dtype = jnp.result_type(*parts)
    batch = jnp.broadcast_shapes(*(p.shape[:-1] for p in parts))
    return jnp.concatenate([jnp.broadcast_to(p, batch + p.shape[-1:]).astype(dtype) for p in parts], axis=-1)


def stack_items(axis, *items):
    """`[a, b, c]`: the items (broadcast together) stacked along a new axis at `axis` (from the end)."""
    items = jnp.broadcast_arrays(*(jnp.asarray(x) for x in items))
    return jnp.stack(items, axis=axis)


# name -> (helper, the helpers it calls), in the order they are written into a generated module
LINALG_HELPERS = {
    "outer": (outer, ()),
    "linalg_batch": (linalg_batch, ()),
    "solve": (solve, ("linalg_batch",)),
    "triangular_solve": (triangular_solve, ("linalg_batch",)),
    "quad_form": (quad_form, ("linalg_batch",)),
    "concat": (concat, ()),
    "stack_items": (stack_items, ()),
}
