"""MCMC kernels from TFP (NUTS, HMC) with Stan's windowed warmup, the unconstrained target, initial values,
and per-iteration sampler statistics."""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_probability.substrates.jax as tfp
from tensorflow_probability.substrates.jax.experimental.mcmc import preconditioning_utils
from tensorflow_probability.substrates.jax.internal import distribute_lib, unnest

from ..dsl.diagnostics import Diagnostic, PPLError

SAMPLERS = ("nuts", "hmc")
METRICS = ("diag", "unit")
INITS = ("uniform", "prior", "0")
FLAT = ("Flat", "HalfFlat")  # improper priors: nothing to draw an initial value from
INIT_TRIES = 100  # as Stan: draws of initial values before giving up on a non-finite log density
STATS = ("log_prob", "accept_ratio", "is_accepted", "step_size", "n_leapfrog", "diverging", "energy")
NUTS_STATS = STATS + ("tree_depth",)
DIVERGENCE = 1000.0  # energy error that counts as a divergence (Stan's and TFP's NUTS threshold)


def float_dtype():
    """The dtype of reals in this run: float64 under `--x64` (jax_enable_x64), float32 otherwise."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


@dataclass(frozen=True)
class SamplerConfig:
    """What `pplc run` and `Model.sample` take: the sampler and its settings."""

    sampler: str = "nuts"
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    step_size: float | None = None  # the initial step size (None: 1, then Stan's heuristic and adaptation)
    leapfrog: int = 10  # HMC only
    target_accept: float | None = None  # None: 0.8 for NUTS (Stan), 0.75 for HMC (the seed's)
    max_tree_depth: int = 10  # NUTS only
    metric: str = "diag"  # diag: a diagonal mass matrix adapted in Stan's windows; unit: the identity
    seed: int = 0
    init: str = "uniform"  # uniform (-2, 2) on the unconstrained scale, as Stan; "prior"; or "0"
    x64: bool = False

    @property
    def accept_target(self) -> float:
        if self.target_accept is not None:
            return self.target_accept
        return 0.8 if self.sampler == "nuts" else 0.75

    @property
    def initial_step_size(self) -> float:
        return 1.0 if self.step_size is None else float(self.step_size)

    def validate(self) -> None:
        def bad(msg):
            raise PPLError(Diagnostic(msg))
        if self.sampler not in SAMPLERS:
            bad(f"unknown sampler `{self.sampler}`; this version has: {', '.join(SAMPLERS)}")
        if self.metric not in METRICS:
            bad(f"unknown metric `{self.metric}`; one of: {', '.join(METRICS)}")
        if self.chains < 1:
            bad(f"--chains must be at least 1 (got {self.chains})")
        if self.warmup < 0 or self.draws < 1:
            bad(f"--warmup must be >= 0 and --draws >= 1 (got {self.warmup} and {self.draws})")
        if self.step_size is not None and not (0 < self.step_size < math.inf):
            bad(f"--step-size must be positive (got {self.step_size})")
        if self.leapfrog < 1:
            bad(f"--leapfrog must be at least 1 (got {self.leapfrog})")
        if not 1 <= self.max_tree_depth <= 30:
            bad(f"--max-tree-depth must lie in 1 .. 30 (got {self.max_tree_depth})")
        if not 0 < self.accept_target < 1:
            bad(f"--target-accept must lie in (0, 1) (got {self.accept_target})")
        if str(self.init) not in INITS:
            bad(f"--init is `uniform`, `prior` or `0` (got {self.init})")

    def describe(self) -> str:
        """One line for the log: the sampler and what it adapts."""
        what = (f"NUTS (max tree depth {self.max_tree_depth})" if self.sampler == "nuts"
                else f"HMC ({self.leapfrog} leapfrog steps)")
        metric = "diagonal mass matrix" if self.metric == "diag" else "unit mass matrix"
        return f"{what}, {metric}, target acceptance {self.accept_target:g}"


# ---------------------------------------------------------------------------------------------------- warmup
def warmup_windows(warmup: int, init_buffer: int = 75, term_buffer: int = 50, base_window: int = 25):
    """Stan's warmup schedule: (first iteration of the first slow window, iterations after which a slow window
    ends and the mass matrix is updated). Slow windows double in size; the last one stretches to the
    terminal buffer. Short warmups shrink to 15% / 75% / 10% as Stan does; under 20 iterations, none."""
    if warmup < 20:
        return warmup, []
    if init_buffer + base_window + term_buffer > warmup:
        init_buffer, term_buffer = int(0.15 * warmup), int(0.1 * warmup)
        base_window = warmup - init_buffer - term_buffer
    slow_end = warmup - term_buffer
    ends, start, size = [init_buffer + base_window], init_buffer + base_window, base_window
    while ends[-1] < slow_end:
        size *= 2
        end = start + size
        if end + 2 * size > slow_end:  # the next window would not fit: this one runs to the terminal buffer
            end = slow_end
        ends.append(end)
        start = end
    return init_buffer, ends


class WarmupResults(collections.namedtuple("WarmupResults", ["inner_results", "step", "count", "mean", "m2"])):
    """Kernel results of `WindowedAdaptation`: the dual-averaging kernel's results, the iteration index, and a
    per-chain running (Welford) mean and sum of squared deviations of every unconstrained state part."""

    __slots__ = ()


class WindowedAdaptation(tfp.mcmc.TransitionKernel):
    """Stan's warmup around TFP's DualAveragingStepSizeAdaptation(Preconditioned NUTS or HMC).

    Every warmup iteration adapts the step size (dual averaging, one step size per chain). In the slow windows
    the per-chain variance of each unconstrained element is accumulated; at a window's end it becomes the
    inverse mass matrix (regularised as Stan: n/(n+5) var + 1e-3 * 5/(n+5)), the step size is re-initialised
    with Stan's heuristic and dual averaging restarts, so that it ends, as in Stan, with the last warmup
    iteration. After warmup nothing changes. Sharded parts keep sharded variances and Sharded momenta."""

    def __init__(self, inner_kernel, target, warmup: int, adapt_metric: bool, find_step: bool,
                 shard_axes=None, name="windowed_adaptation"):
        self._inner = inner_kernel
        self._target = target
        self._warmup = int(warmup)
        start, ends = warmup_windows(self._warmup) if adapt_metric else (self._warmup, [])
        self._start, self._ends = start, ends
        self._find_step = find_step
        self._shard_axes = shard_axes
        self._parameters = dict(inner_kernel=inner_kernel, target=target, warmup=warmup,
                                adapt_metric=adapt_metric, find_step=find_step, shard_axes=shard_axes, name=name)

    @property
    def parameters(self):
        return self._parameters

    @property
    def inner_kernel(self):
        return self._inner

    @property
    def is_calibrated(self):
        return True

    @property
    def windows(self):
        return self._start, list(self._ends)

    def bootstrap_results(self, init_state):
        inner = self._inner.bootstrap_results(list(init_state))
        zeros = [jnp.zeros_like(x) for x in init_state]
        return WarmupResults(inner, jnp.zeros([], jnp.int32), jnp.zeros([], init_state[0].dtype), zeros,
                             [jnp.zeros_like(x) for x in init_state])

    def one_step(self, current_state, previous_kernel_results, seed=None):
        kr = previous_kernel_results
        step_seed, restart_seed = jax.random.split(seed)
        state, inner = self._inner.one_step(list(current_state), kr.inner_results, seed=step_seed)
        i = kr.step
        if not self._ends:
            return state, kr._replace(inner_results=inner, step=i + 1)
        # Welford's update within the slow windows (one estimate per chain and element).
        in_window = (i >= self._start) & (i < self._ends[-1])
        count = kr.count + in_window.astype(kr.count.dtype)
        mean, m2 = [], []
        for x, mu, s in zip(state, kr.mean, kr.m2):
            d = x - mu
            mu_new = mu + d / jnp.maximum(count, 1)
            mean.append(jnp.where(in_window, mu_new, mu))
            m2.append(jnp.where(in_window, s + d * (x - mu_new), s))
        at_end = jnp.any(i + 1 == jnp.asarray(self._ends, jnp.int32))

        def end_window(args):
            inner, count, mean, m2 = args
            n = count
            var = [(n / (n + 5.0)) * (s / jnp.maximum(n - 1.0, 1.0)) + 1e-3 * (5.0 / (n + 5.0)) for s in m2]
            momentum = preconditioning_utils.update_momentum_distribution(
                unnest.get_innermost(inner, "momentum_distribution"), var)
            inner = set_momentum_distribution(inner, momentum)
            inner = self.restart_step_size(state, inner, restart_seed, remaining=self._warmup - (i + 1))
            zeros = [jnp.zeros_like(x) for x in mean]
            return inner, jnp.zeros_like(count), zeros, [jnp.zeros_like(x) for x in m2]

        inner, count, mean, m2 = jax.lax.cond(at_end, end_window, lambda a: a, (inner, count, mean, m2))
        return state, WarmupResults(inner, i + 1, count, mean, m2)

    def restart_step_size(self, state, dassa_results, seed, remaining):
        """Stan's step-size restart: the heuristic from the current step size, then dual averaging afresh
        (its shrinkage target 10x the new step size), finishing after `remaining` iterations."""
        dassa = self._inner
        inner = dassa_results.inner_results
        step = dassa_results.new_step_size
        if self._find_step:
            step = find_reasonable_step_size(self._target, state, inner, step, seed, self._shard_axes)
        inner = dassa.step_size_setter_fn(inner, step)
        restarted = dassa._bootstrap_from_inner_results(state, inner)  # noqa: SLF001 - as TFP's own windowed kernel
        return restarted._replace(num_adaptation_steps=jnp.asarray(remaining, jnp.int32))

    def initialize(self, state, kr, seed):
        """After bootstrap: Stan's step-size heuristic (when there is a warmup), dual averaging over all of it."""
        if self._warmup == 0:
            return kr
        inner = self.restart_step_size(list(state), kr.inner_results, seed, remaining=self._warmup)
        return kr._replace(inner_results=inner)


def set_momentum_distribution(results, momentum):
    """Put a new momentum distribution everywhere the innermost kernel results hold one."""
    results = unnest.replace_innermost(results, momentum_distribution=momentum)
    proposed = unnest.get_innermost(results, "proposed_results", default=None)
    if proposed is not None and hasattr(proposed, "momentum_distribution"):
        results = unnest.replace_innermost(results, proposed_results=proposed._replace(
            momentum_distribution=momentum))
    return results


def _per_chain(eps, x):
    """A per-chain value [chains] shaped to broadcast against a state part [chains, ...]."""
    return jnp.reshape(eps, eps.shape + (1,) * (x.ndim - 1))


def find_reasonable_step_size(target, state, inner, step, seed, shard_axes=None, max_tries=60):
    """Stan's `init_stepsize`, per chain: from the current step size, one leapfrog step with fresh momenta;
    double it while the acceptance exp(-dH) stays above 0.8, or halve it while it stays below, stopping at the
    first step size where that flips. Returns step sizes shaped like `step`."""
    del shard_axes  # the momentum distribution's Sharded parts and the target already sum across devices
    momentum = unnest.get_innermost(inner, "momentum_distribution")
    lp0 = unnest.get_innermost(inner, "target_log_prob")
    g0 = unnest.get_innermost(inner, "grads_target_log_prob")
    eps0 = jnp.reshape(step[0], lp0.shape)
    kinetic = lambda *p: -momentum.log_prob(list(p))  # noqa: E731
    log08 = jnp.log(jnp.asarray(0.8, lp0.dtype))

    def delta_h(eps, key):
        p = list(momentum.sample(seed=key))
        h0 = -lp0 + kinetic(*p)
        p_half = [pi + 0.5 * _per_chain(eps, pi) * gi for pi, gi in zip(p, g0)]
        v = jax.grad(lambda *q: jnp.sum(kinetic(*q)), argnums=tuple(range(len(p_half))))(*p_half)
        z1 = [zi + _per_chain(eps, zi) * vi for zi, vi in zip(state, v)]
        lp1, vjp = jax.vjp(target, *z1)
        g1 = vjp(jnp.ones_like(lp1))
        p1 = [pi + 0.5 * _per_chain(eps, pi) * gi for pi, gi in zip(p_half, g1)]
        h1 = -lp1 + kinetic(*p1)
        h1 = jnp.where(jnp.isnan(h1), jnp.inf, h1)
        return h0 - h1

    k0, key = jax.random.split(seed)
    direction = jnp.where(delta_h(eps0, k0) > log08, 1.0, -1.0).astype(lp0.dtype)

    def cond(c):
        i, _, done, _ = c
        return (i < max_tries) & ~jnp.all(done)

    def body(c):
        i, eps, done, key = c
        key, k = jax.random.split(key)
        dh = delta_h(eps, k)
        stop = ((direction > 0) & ~(dh > log08)) | ((direction < 0) & ~(dh < log08))
        done = done | stop
        eps = jnp.where(done, eps, jnp.where(direction > 0, 2.0 * eps, 0.5 * eps))
        return i + 1, eps, done, key

    _, eps, _, _ = jax.lax.while_loop(cond, body, (0, eps0, jnp.zeros(lp0.shape, bool), key))
    eps = jnp.where(jnp.isfinite(eps) & (eps > 0), eps, eps0)
    return [jnp.reshape(eps, s.shape).astype(s.dtype) for s in step]


# ---------------------------------------------------------------------------------------------------- target
def unconstrained_shape(var, sizes) -> tuple[int, ...]:
    """A latent's shape on the unconstrained scale (a simplex loses one element)."""
    shape = [sizes[d] for d in var.phys]
    if var.support == "simplex":
        shape[-1] -= 1
    return tuple(shape)


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


# ---------------------------------------------------------------------------------------------------- kernel
def shard_axis_names(latents, axes):
    """Per unconstrained part: the mesh axes it is split over (sharded latents), or None."""
    if not axes:
        return None
    names = [list(axes) if v.sharded_dim is not None else None for v in latents]
    return names if any(names) else None


def make_kernel(target, cfg: SamplerConfig, state, latents, axes):
    """Preconditioned NUTS or HMC (TFP) with per-chain dual-averaging step size, inside Stan's windowed warmup.
    The momentum distribution is TFP's preconditioning one (Sharded parts for sharded latents); the NUTS U-turn
    criterion sums over devices for sharded parts."""
    shard_axes = shard_axis_names(latents, axes)
    lp_shape = state[0].shape[:1]
    momentum = preconditioning_utils.make_momentum_distribution(
        list(state), lp_shape, [jnp.ones_like(x) for x in state], shard_axis_names=shard_axes)
    step = [jnp.full(x.shape[:1] + (1,) * (x.ndim - 1), cfg.initial_step_size, x.dtype) for x in state]
    if cfg.sampler == "nuts":
        inner = tfp.experimental.mcmc.PreconditionedNoUTurnSampler(
            target, step, max_tree_depth=cfg.max_tree_depth, max_energy_diff=DIVERGENCE,
            momentum_distribution=momentum, experimental_shard_axis_names=shard_axes)
    else:
        inner = tfp.experimental.mcmc.PreconditionedHamiltonianMonteCarlo(
            target, step, cfg.leapfrog, momentum_distribution=momentum, store_parameters_in_results=True)
        if shard_axes:
            inner = inner.experimental_with_shard_axes(shard_axes)
    # Dual averaging ends with the warmup (with none, the step size never changes).
    dassa = tfp.mcmc.DualAveragingStepSizeAdaptation(
        inner, num_adaptation_steps=cfg.warmup, target_accept_prob=cfg.accept_target)
    return WindowedAdaptation(dassa, target, cfg.warmup, adapt_metric=cfg.metric == "diag",
                              find_step=True, shard_axes=shard_axes)


# ---------------------------------------------------------------------------------------------------- stats
def stat_names(cfg: SamplerConfig):
    return NUTS_STATS if cfg.sampler == "nuts" else STATS


def _innermost(kr):
    """The proposal kernel's results (NUTS), or the Metropolis-Hastings results around HMC's."""
    return kr.inner_results.inner_results


def stats(kr, cfg: SamplerConfig, padding=None, state=None) -> dict:
    """Per-iteration sampler statistics, each [chains]: log density (unconstrained, Jacobian included, as
    Stan's lp__), acceptance statistic, step size, leapfrog steps (and NUTS tree depth), divergence, energy."""
    r = _innermost(kr)
    pad = padding(state) if padding is not None else 0.0
    if cfg.sampler == "nuts":
        lp = r.target_log_prob
        momentum = r.momentum_distribution
        # TFP's `energy` is lp - kinetic energy, with the kinetic energy's normalising constant.
        zeros = [jnp.zeros_like(x) for x in state]
        energy = -r.energy + momentum.log_prob(zeros) + pad
        n = r.leapfrogs_taken.astype(jnp.int32)
        depth = sum((n >= 2 ** k).astype(jnp.int32) for k in range(cfg.max_tree_depth + 1))
        out = {"accept_ratio": jnp.exp(jnp.minimum(r.log_accept_ratio, 0.0)), "is_accepted": r.is_accepted,
               "n_leapfrog": n, "tree_depth": depth, "diverging": r.has_divergence, "step": r.step_size}
    else:
        acc, prop = r.accepted_results, r.proposed_results
        lp = acc.target_log_prob
        momentum = acc.momentum_distribution
        p = [jnp.where(_per_chain(r.is_accepted, f), f, m0) for f, m0 in zip(prop.final_momentum,
                                                                             prop.initial_momentum)]
        zeros = [jnp.zeros_like(x) for x in p]
        energy = -lp - momentum.log_prob(p) + momentum.log_prob(zeros) + pad
        lar = r.log_accept_ratio
        out = {"accept_ratio": jnp.exp(jnp.minimum(lar, 0.0)), "is_accepted": r.is_accepted,
               "n_leapfrog": jnp.full(lp.shape, cfg.leapfrog, jnp.int32),
               "diverging": ~(lar > -DIVERGENCE), "step": acc.step_size}
    step = out.pop("step")
    out["step_size"] = jnp.reshape(step[0], lp.shape)
    out["log_prob"] = lp - pad
    out["energy"] = energy
    return out


def initial_log_prob(kr, padding=None, state=None):
    r = _innermost(kr)
    lp = r.target_log_prob if hasattr(r, "target_log_prob") else r.accepted_results.target_log_prob
    return lp - (padding(state) if padding is not None else 0.0)


def initial_grads(kr):
    r = _innermost(kr)
    return r.grads_target_log_prob if hasattr(r, "grads_target_log_prob") else r.accepted_results.grads_target_log_prob


def step_size_of(kr):
    """The step size the next iteration will use, [chains]."""
    dassa = kr.inner_results
    s = dassa.new_step_size[0]
    return jnp.reshape(s, s.shape[:1])


# ---------------------------------------------------------------------------------------------------- inits
def initial_values(latents, sizes, cfg: SamplerConfig, key, prior=None, chains=None) -> list[np.ndarray]:
    """Initial unconstrained values, [chains, *shape] at the true (unpadded) sizes: uniform in (-2, 2) as
    Stan, zeros (`--init 0`), or a prior draw (`--init prior`: `prior(key)` gives unconstrained parts;
    latents with an improper Flat/HalfFlat prior fall back to uniform)."""
    chains = cfg.chains if chains is None else chains
    dtype = float_dtype()
    out = []
    k_prior, k_unif = jax.random.split(key)
    drawn = prior(k_prior, chains) if (cfg.init == "prior" and prior is not None) else None
    keys = jax.random.split(k_unif, max(1, len(latents)))
    for j, (v, k) in enumerate(zip(latents, keys)):
        shape = (chains,) + unconstrained_shape(v, sizes)
        if str(cfg.init) == "0":
            out.append(np.zeros(shape, dtype))
        elif drawn is not None and not is_flat(v):
            out.append(np.asarray(drawn[j], dtype).reshape(shape))
        else:
            out.append(np.asarray(jax.random.uniform(k, shape, dtype, -2.0, 2.0)))
    return out


def is_flat(var) -> bool:
    """Whether a latent has an improper prior (nothing to draw from)."""
    return var.dist is not None and var.dist.spec.name in FLAT
