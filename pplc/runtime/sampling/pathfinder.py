"""`--init pathfinder`: the chains start at draws of multi-path Pathfinder (BlackJAX's paths), importance-resampled."""
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
PATHS = 16  # paths from uniform starts (at least; one per chain with more chains)
ELBO_DRAWS = 25  # draws per iteration of a path to choose its best Gaussian (Stan's num_elbo_draws)
PATH_DRAWS = 100  # draws of each path's Gaussian offered to the importance resampling


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
    """`draw(key, n)`: n initial values on the unconstrained scale (a list of arrays [n, *shape], one per latent)
    from multi-path Pathfinder (Zhang et al. 2022), as CmdStan's pathfinder: max(PATHS, n) paths (BlackJAX's), each
    from a uniform start in (-2, 2), each giving PATH_DRAWS draws of its best Gaussian; n of all those draws are
    picked without replacement with probabilities proportional to their importance weights p / q, so paths that
    end in a minor local mode get next to none (lotka_volterra: 3 of 12 paths reach the main mode, the others end
    30 or more nats lower: docs/sampling.md). The paths run one after another in one compiled program (a batch of
    paths runs at its slowest path's pace). The unsharded model: the whole data on one device."""
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

    def log_density(x):  # x: [..., total] (leading dims: a batch, as the sampler's chains)
        return target(*unravel(x))

    def one_path(key):
        k_start, k_path, k_draw = jax.random.split(key, 3)
        x0 = jax.random.uniform(k_start, (int(bounds[-1]),), real, -2.0, 2.0)
        state, _ = blackjax.vi.pathfinder.approximate(k_path, log_density, x0, num_samples=ELBO_DRAWS,
                                                      maxiter=MAXITER)
        xs, log_q = blackjax.vi.pathfinder.sample(k_draw, state, PATH_DRAWS)
        return xs, log_density(xs) - log_q

    def pick(key, n: int):
        k_paths, k_pick = jax.random.split(key)
        xs, log_w = jax.lax.map(one_path, jax.random.split(k_paths, max(PATHS, n)))
        xs, log_w = xs.reshape(-1, xs.shape[-1]), log_w.reshape(-1)
        log_w = jnp.where(jnp.isfinite(log_w), log_w, -jnp.inf)  # a failed solve, say: never picked first
        # n draws without replacement, each with probability proportional to its weight (Gumbel top-n)
        order = jnp.argsort(-(log_w + jax.random.gumbel(k_pick, log_w.shape, log_w.dtype)))
        return xs[order[:n]]

    picked = jax.jit(pick, static_argnums=1)

    def draw(key, n: int):
        return [np.asarray(p) for p in unravel(picked(key, n))]

    return draw
