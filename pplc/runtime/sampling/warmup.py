"""Stan's windowed warmup around TFP's preconditioned NUTS/HMC: windows, mass-matrix and step-size adaptation."""
from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import tensorflow_probability.substrates.jax as tfp
from tensorflow_probability.substrates.jax.internal import unnest

from . import momentum as momentum_lib
from .config import DIVERGENCE, SamplerConfig


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


class WarmupResults(collections.namedtuple("WarmupResults",
                                            ["inner_results", "step", "count", "mean", "m2", "restart"])):
    """Kernel results of `WindowedAdaptation`: the dual-averaging kernel's results, the iteration index, a
    per-chain running (Welford) mean and sum of squared deviations of every unconstrained state part, and whether
    the step size restarts (Stan's heuristic, dual averaging afresh) before the next step."""

    __slots__ = ()


class WindowedAdaptation(tfp.mcmc.TransitionKernel):
    """Stan's warmup around TFP's DualAveragingStepSizeAdaptation(Preconditioned NUTS or HMC).

    Every warmup iteration adapts the step size (dual averaging, one step size per chain). In the slow windows
    the per-chain variance of each unconstrained element is accumulated; at a window's end it becomes the
    inverse mass matrix (regularised as Stan: n/(n+5) var + 1e-3 * 5/(n+5)), the step size is re-initialised
    with Stan's heuristic and dual averaging restarts, so that it ends, as in Stan, with the last warmup
    iteration. After warmup nothing changes. Sharded parts keep sharded variances and sharded momenta.

    The heuristic also runs before the first step (with a warmup), as Stan's does after initialisation. Each
    restart is done at the start of the iteration after it is due, from the same state and results: the sampling
    program holds the heuristic once (compiling it costs more than the rest of the start-up program), and no
    separate program runs it at the start."""

    def __init__(self, inner_kernel, target, warmup: int, adapt_metric: bool, find_step: bool,
                 name="windowed_adaptation", momentum=None):
        self._inner = inner_kernel
        self._momentum = momentum  # put in the results at bootstrap (TFP's NUTS drops a given one when copied)
        self._target = target
        self._warmup = int(warmup)
        start, ends = warmup_windows(self._warmup) if adapt_metric else (self._warmup, [])
        self._start, self._ends = start, ends
        self._find_step = find_step
        self._parameters = dict(inner_kernel=inner_kernel, target=target, warmup=warmup,
                                adapt_metric=adapt_metric, find_step=find_step, name=name, momentum=momentum)

    @property
    def parameters(self):
        return self._parameters

    @property
    def inner_kernel(self):
        return self._inner

    @property
    def is_calibrated(self):
        return True

    def bootstrap_results(self, init_state):
        inner = self._inner.bootstrap_results(list(init_state))
        if self._momentum is not None:
            inner = set_momentum_distribution(inner, self._momentum)
        zeros = [jnp.zeros_like(x) for x in init_state]
        return WarmupResults(inner, jnp.zeros([], jnp.int32), jnp.zeros([], init_state[0].dtype), zeros,
                             [jnp.zeros_like(x) for x in init_state], jnp.asarray(self._warmup > 0))

    def one_step(self, current_state, previous_kernel_results, seed=None):
        kr = previous_kernel_results
        step_seed, restart_seed = jax.random.split(seed)
        i = kr.step
        inner = kr.inner_results
        if self._warmup > 0:
            inner = jax.lax.cond(kr.restart & (i < self._warmup),
                                 lambda r: self.restart_step_size(list(current_state), r, restart_seed,
                                                                  remaining=self._warmup - i),
                                 lambda r: r, inner)
        state, inner = self._inner.one_step(list(current_state), inner, seed=step_seed)
        if not self._ends:
            return state, kr._replace(inner_results=inner, step=i + 1, restart=jnp.zeros_like(kr.restart))
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
            momentum = momentum_lib.update(unnest.get_innermost(inner, "momentum_distribution"), var)
            inner = set_momentum_distribution(inner, momentum)
            zeros = [jnp.zeros_like(x) for x in mean]
            return inner, jnp.zeros_like(count), zeros, [jnp.zeros_like(x) for x in m2]

        inner, count, mean, m2 = jax.lax.cond(at_end, end_window, lambda a: a, (inner, count, mean, m2))
        return state, WarmupResults(inner, i + 1, count, mean, m2, at_end)

    def restart_step_size(self, state, dassa_results, seed, remaining):
        """Stan's step-size restart: the heuristic from the current step size, then dual averaging afresh
        (its shrinkage target 10x the new step size), finishing after `remaining` iterations."""
        dassa = self._inner
        inner = dassa_results.inner_results
        step = dassa_results.new_step_size
        if self._find_step:
            step = find_reasonable_step_size(self._target, state, inner, step, seed)
        inner = dassa.step_size_setter_fn(inner, step)
        restarted = dassa._bootstrap_from_inner_results(state, inner)  # noqa: SLF001 - as TFP's own windowed kernel
        return restarted._replace(num_adaptation_steps=jnp.asarray(remaining, jnp.int32))


def set_momentum_distribution(results, momentum):
    """Put a new momentum distribution everywhere the innermost kernel results hold one."""
    results = unnest.replace_innermost(results, momentum_distribution=momentum)
    proposed = unnest.get_innermost(results, "proposed_results", default=None)
    if proposed is not None and hasattr(proposed, "momentum_distribution"):
        results = unnest.replace_innermost(results, proposed_results=proposed._replace(
            momentum_distribution=momentum))
    return results


def per_chain(eps, x):
    """A per-chain value [chains] shaped to broadcast against a state part [chains, ...]."""
    return jnp.reshape(eps, eps.shape + (1,) * (x.ndim - 1))


def find_reasonable_step_size(target, state, inner, step, seed, max_tries=60):
    """Stan's `init_stepsize`, per chain: from the current step size, one leapfrog step with fresh momenta;
    double it while the acceptance exp(-dH) stays above 0.8, or halve it while it stays below, stopping at the
    first step size where that flips. Returns step sizes shaped like `step`. Nothing here sums across devices:
    the momentum distribution's sharded parts and the target already do."""
    momentum = unnest.get_innermost(inner, "momentum_distribution")
    lp0 = unnest.get_innermost(inner, "target_log_prob")
    g0 = unnest.get_innermost(inner, "grads_target_log_prob")
    eps0 = jnp.reshape(step[0], lp0.shape)
    kinetic = lambda *p: -momentum.log_prob(list(p))  # noqa: E731
    log08 = jnp.log(jnp.asarray(0.8, lp0.dtype))

    def delta_h(eps, key):
        p = list(momentum.sample(seed=key))
        h0 = -lp0 + kinetic(*p)
        p_half = [pi + 0.5 * per_chain(eps, pi) * gi for pi, gi in zip(p, g0)]
        v = jax.grad(lambda *q: jnp.sum(kinetic(*q)), argnums=tuple(range(len(p_half))))(*p_half)
        z1 = [zi + per_chain(eps, zi) * vi for zi, vi in zip(state, v)]
        lp1, vjp = jax.vjp(target, *z1)
        g1 = vjp(jnp.ones_like(lp1))
        p1 = [pi + 0.5 * per_chain(eps, pi) * gi for pi, gi in zip(p_half, g1)]
        h1 = -lp1 + kinetic(*p1)
        h1 = jnp.where(jnp.isnan(h1), jnp.inf, h1)
        return h0 - h1

    k0, key = jax.random.split(seed)

    # One loop, so that the program holds one leapfrog step (its target and gradient) rather than two: iteration 0
    # tries the current step size with key k0 and sets the direction (up while the acceptance is above 0.8, down
    # while below); each later one, with the next key of the chain split from `key`, tries the current size and
    # either stops the chain (the acceptance crossed 0.8) or doubles or halves it. As Stan, the first size is tried
    # twice (for the direction, then in the loop).
    def cond(c):
        i, _, done, _, _ = c
        return (i <= max_tries) & ~jnp.all(done)

    def body(c):
        i, eps, done, key, direction = c
        first = i == 0
        key_next, k = jax.random.split(key)
        k, key = jnp.where(first, k0, k), jnp.where(first, key, key_next)
        dh = delta_h(eps, k)
        direction = jnp.where(first, jnp.where(dh > log08, 1.0, -1.0).astype(lp0.dtype), direction)
        stop = ((direction > 0) & ~(dh > log08)) | ((direction < 0) & ~(dh < log08))
        done = done | (stop & ~first)
        eps = jnp.where(done | first, eps, jnp.where(direction > 0, 2.0 * eps, 0.5 * eps))
        return i + 1, eps, done, key, direction

    _, eps, _, _, _ = jax.lax.while_loop(cond, body, (0, eps0, jnp.zeros(lp0.shape, bool), key,
                                                       jnp.zeros_like(lp0)))
    eps = jnp.where(jnp.isfinite(eps) & (eps > 0), eps, eps0)
    return [jnp.reshape(eps, s.shape).astype(s.dtype) for s in step]


def shard_axis_names(latents, axes):
    """Per unconstrained part: the mesh axes it is split over (sharded latents), or None."""
    if not axes:
        return None
    names = [list(axes) if v.sharded_dim is not None else None for v in latents]
    return names if any(names) else None


def make_kernel(target, cfg: SamplerConfig, state, latents, axes, sizes=None):
    """Preconditioned NUTS or HMC (TFP) with per-chain dual-averaging step size, inside Stan's windowed warmup.
    The momenta are drawn per plate item (`momentum.Momentum`: the same on any device count; padded items of
    sharded plates, beyond their true `sizes`, get none); the NUTS U-turn criterion sums over devices for
    sharded parts."""
    shard_axes = shard_axis_names(latents, axes)
    momentum = momentum_lib.make(list(state), latents, list(axes) if shard_axes else [], sizes or {})
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
    if cfg.sampler == "nuts":
        # The adaptation rebuilds NUTS from its parameters, which leave the momentum distribution out: given again,
        # so that NUTS's bootstrap uses it rather than building (and tracing) a TFP one that is then replaced.
        dassa.inner_kernel.momentum_distribution = momentum
    return WindowedAdaptation(dassa, target, cfg.warmup, adapt_metric=cfg.metric == "diag",
                              find_step=True, momentum=momentum)

