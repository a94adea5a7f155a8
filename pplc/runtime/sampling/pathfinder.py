"""`--init pathfinder`: each chain starts at a draw of BlackJAX's Pathfinder, run from its own uniform start."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ...compiler.supports import unconstrained_shape
from ...dsl.diagnostics import Diagnostic, PPLError
from ..data.bind import BoundData
from ..program import Program
from .config import float_dtype
from .target import target_fn

MAXITER = 100  # L-BFGS iterations along each path (BlackJAX's default 30 stops short on badly scaled models)


def require_blackjax():
    """The `blackjax` module, or a user error saying how to install it."""
    try:
        import blackjax
    except ImportError:
        raise PPLError(Diagnostic("--init pathfinder needs BlackJAX, which is not installed",
                                  hint="pip install blackjax (or pip install 'pplc[test]'); or use --init uniform, "
                                       "prior or 0")) from None
    return blackjax


def pathfinder_sampler(program: Program, bound: BoundData):
    """`draw(key, n)`: n initial values on the unconstrained scale (a list of arrays [n, *shape], one per latent),
    each a draw of the best Gaussian along a Pathfinder path (Zhang et al. 2022; BlackJAX) started uniformly in
    (-2, 2), one path per chain, all paths in one compiled program. The unsharded model: the whole data on one
    device."""
    blackjax = require_blackjax()
    real = float_dtype()
    arrays = {k: (np.asarray(a, real) if np.asarray(a).dtype.kind == "f" else np.asarray(a))
              for k, a in bound.arrays.items()}
    sizes, masks = dict(bound.sizes), program.all_true_masks(bound.sizes)
    target, _ = target_fn(lambda: program.pinned({k: jnp.array(x, copy=True) for k, x in arrays.items()}, sizes,
                                                 masks, []))
    shapes = [unconstrained_shape(v.support, [sizes[d] for d in v.phys]) for v in program.latents]
    counts = [math.prod(s) for s in shapes]
    bounds = np.cumsum([0] + counts)

    def unravel(x):  # [..., total] -> one array per latent [..., *shape]
        lead = x.shape[:-1]
        return [jnp.reshape(x[..., a:b], lead + s) for a, b, s in zip(bounds[:-1], bounds[1:], shapes)]

    def log_density(x):
        return target(*unravel(x))

    def one_path(key):
        k_start, k_path, k_draw = jax.random.split(key, 3)
        x0 = jax.random.uniform(k_start, (int(bounds[-1]),), real, -2.0, 2.0)
        state, _ = blackjax.vi.pathfinder.approximate(k_path, log_density, x0, maxiter=MAXITER)
        x = blackjax.vi.pathfinder.sample(k_draw, state)
        return x[0] if isinstance(x, tuple) else x

    paths = jax.jit(jax.vmap(one_path))

    def draw(key, n: int):
        return [np.asarray(p) for p in unravel(paths(jax.random.split(key, n)))]

    return draw
