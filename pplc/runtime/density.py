"""The model's log density as pure JAX functions: on the unconstrained scale (for samplers), and at given values."""
from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from ..compiler.supports import unconstrained_shape
from ..dsl.diagnostics import Diagnostic, PPLError
from .data.bind import BoundData, dtype_of
from .data.layout import SMALL_DATA_BYTES, Placement, is_small, on_mesh  # noqa: F401 - SMALL_DATA_BYTES: said here too
from .devices import spmd as spmd_lib
from .program import Program
from .sampling.target import target_fn

# On one device `value_and_grad`'s program holds the masks (all true there) as constants, and data of at most
# SMALL_DATA_BYTES too (runtime/data/layout.py). Larger data are arguments (one program for any data of the same
# shapes; no copy inside the program).


def _pad(x, dims, layout, axis0: int):
    """`x` (a JAX value) with the sharded dims of `dims` (from axis `axis0`) padded as `Layout.pad` does: the last
    item repeated. The model masks the padded items out of its log density and its bijectors' Jacobian."""
    if layout is None:
        return x
    width = [(0, 0)] * x.ndim
    for i, d in enumerate(dims):
        if d in layout.padded:
            width[axis0 + i] = (0, layout.padded[d] - x.shape[axis0 + i])
    return jnp.pad(x, width, mode="edge") if any(w for _, w in width) else x


def _unpad(x, dims, layout, axis0: int):
    """`x` (a JAX value) cut back to the true sizes of the sharded dims of `dims` (from axis `axis0`)."""
    for i, d in enumerate(dims):
        if d in layout.padded:
            x = jax.lax.slice_in_dim(x, 0, layout.sizes[d], axis=axis0 + i)
    return x


def _fresh(data: dict) -> dict:
    """Fresh copies of the data at every call: TFP caches bijector results globally, keyed by the input, and a hit
    from another JAX trace (a sampler's while loop) would leak that trace's values (see `target.target_fn`)."""
    return {k: jnp.array(x, copy=True) for k, x in data.items()}


class LogDensity:
    """A model's log density with its data bound, as pure JAX functions of the latents (dicts by name).

    `unconstrained(z)`: the log density on the unconstrained scale plus the log-Jacobian of TFP's default
    event-space bijectors (NumPyro's -potential_energy, BridgeStan's log_density(jacobian=True)), the target
    pplc's own samplers use; it works under jax.jit, jax.grad and jax.vmap. `constrain(z)` / `unconstrain(params)`
    map between the scales, `init(seed)` draws initial values as `pplc run` does (uniform in (-2, 2)).
    `value_and_grad(z)` is `unconstrained` and its gradient, a compiled function giving (value, gradient as a dict
    by latent name): compiled once per data shape; small data on one device once per data, as constants of the
    program (see SMALL_DATA_BYTES), called with no Python in between.
    With `devices` > 1 the density is the sharded program on the mesh (same values; latents at their true sizes).
    """

    def __init__(self, program: Program, bound: BoundData, devices: int = 1, mode: str = "shard_map"):
        if mode not in spmd_lib.MODES:
            raise PPLError(Diagnostic(f"unknown SPMD mode `{mode}`; one of: {', '.join(spmd_lib.MODES)}"))
        self.program, self.devices, self.mode, self.sizes = program, devices, mode, dict(bound.sizes)
        self.names = program.latent_names
        self.layout = self.mesh = self._placement = None
        if devices != 1:  # (fewer than 1: on_mesh's located error)
            self.mesh, self.layout = on_mesh(program, bound.sizes, devices)
            self._placement = Placement(program, self.layout, self.mesh, mode)
        self._sharded_target = self._make_sharded_target()
        self._sharded_plain = self._make_sharded_target(self._target_no_jacobian)
        # Compiled once per data shape (jax.jit keys on the arguments' shapes and dtypes): the data are arguments;
        # on one device the masks (all true) are constants (see SMALL_DATA_BYTES).
        if devices == 1:
            masks = program.all_true_masks(self.sizes)
            self._value_and_grad = jax.jit(jax.value_and_grad(lambda z, data: self._unconstrained(z, data, masks)))
        else:
            self._value_and_grad = jax.jit(jax.value_and_grad(self._unconstrained))
        self._constrained_jit = jax.jit(self._constrained, static_argnums=3)
        self._bind(bound)

    def _bind(self, bound: BoundData) -> None:
        if self._placement is None:
            real = dtype_of("real")
            self.data = {v.name: jnp.asarray(np.asarray(bound.arrays[v.name], real if v.dtype == "real" else None))
                         for v in self.program.data_variables}
            self.masks = self.program.all_true_masks(self.sizes)
        else:
            self.data, self.masks = self._placement.data(bound), self._placement.masks()
        # `value_and_grad` (the class docstring): z restricted to the latents, then the program for these data. An
        # attribute, not a property: a call is the compiled function's dispatch and nothing more.
        names, data, masks, compiled = self.names, self.data, self.masks, self._value_and_grad
        if self.layout is not None:
            self.value_and_grad = lambda z: compiled({n: z[n] for n in names}, data, masks)
        elif not is_small(data):
            self.value_and_grad = lambda z: compiled({n: z[n] for n in names}, data)
        else:  # the data as constants: a program of their own, compiled at its first call
            vg = jax.value_and_grad(lambda z: self._unconstrained(z, data, masks))
            self.value_and_grad = jax.jit(lambda z: vg({n: z[n] for n in names}))

    def with_data(self, bound: BoundData) -> "LogDensity":
        """The same compiled functions with other data of the same shapes (no new compilation; but see
        SMALL_DATA_BYTES: `value_and_grad` with small data on one device compiles for the new data)."""
        other = copy.copy(self)
        other._bind(bound)
        return other

    # ------------------------------------------------------------------ the per-device programs
    def _run(self, lp, parts: list, data, masks, with_grad: bool):
        """`lp(parts, data, masks, dims, axes)` and, `with_grad`, its gradient (of the sum over any leading batch
        dims) on one device, or over the mesh with `parts` padded there and the gradient cut back to true sizes.
        The gradient is taken inside the per-device program, where TFP's `Sharded` sums the replicated latents'
        gradients over the devices (a gradient taken outside a shard_map of it would not be)."""

        def per_device(parts, data, masks, dims, axes):
            if not with_grad:
                return lp(parts, data, masks, dims, axes), None
            val, vjp = jax.vjp(lambda p: lp(p, data, masks, dims, axes), parts)
            return val, vjp(jnp.ones_like(val))[0]

        if self.layout is None:
            return per_device(parts, data, masks, self.sizes, [])
        latents, layout, placement = self.program.latents, self.layout, self._placement
        lead = [p.ndim - len(v.phys) for p, v in zip(parts, latents)]
        padded = [_pad(p, v.phys, layout, k) for p, v, k in zip(parts, latents, lead)]
        local, axes, known = layout.local, placement.shard_axes, layout.known_masks()
        specs = placement.latent_specs(lead)
        fn = spmd_lib.spmd(lambda p, d, m: per_device(p, d, {**m, **known}, local, axes), self.mesh,
                           (specs, placement.data_specs, placement.mask_specs), (P(), specs if with_grad else None),
                           self.mode)
        val, grads = fn(padded, data, masks)
        if grads is not None:  # the padded items' gradients are 0 (masked out): the true items' are the first ones
            grads = [_unpad(g, v.phys, layout, k) for g, v, k in zip(grads, latents, lead)]
        return val, grads

    def _parts(self, z: dict) -> list:
        missing = [n for n in self.names if n not in z]
        if missing:
            raise PPLError(Diagnostic(f"no value for latent `{missing[0]}`", hint=f"latents: {', '.join(self.names)}"))
        return [jnp.asarray(z[n]) for n in self.names]

    def _target(self, parts, data, masks, dims, axes):
        target, _ = target_fn(lambda: self.program.pinned(_fresh(data), dims, masks, axes))
        return target(*parts)

    def _target_no_jacobian(self, parts, data, masks, dims, axes):
        """The log density at the constrained values of unconstrained `parts`, without the log-Jacobian (the
        objective of a MAP estimate on the constrained scale, CmdStan's default `optimize`)."""
        pinned = self.program.pinned(_fresh(data), dims, masks, axes)
        bijector = pinned.experimental_default_event_space_bijector()
        return pinned.unnormalized_log_prob(bijector.forward(type(pinned.dtype)(*parts)))

    def _unconstrained(self, z: dict, data, masks, jacobian: bool = True):
        parts = self._parts(z)
        if self.layout is None:  # one device: JAX differentiates (and batches) the model directly
            lp = self._target if jacobian else self._target_no_jacobian
            return lp(parts, data, masks, self.sizes, [])
        return (self._sharded_target if jacobian else self._sharded_plain)(parts, data, masks)

    def _make_sharded_target(self, lp=None):
        """The sharded target (`lp`: default `_target`) as a function JAX can differentiate: its gradient is the
        per-device one (`_run`)."""
        lp = lp or self._target

        @jax.custom_vjp
        def target(parts, data, masks):
            return self._run(lp, parts, data, masks, False)[0]

        def fwd(parts, data, masks):
            return self._run(lp, parts, data, masks, True)

        def bwd(grads, ct):
            return [ct * g for g in grads], None, None

        target.defvjp(fwd, bwd)
        return target

    def _constrained(self, parts: list, data, masks, with_grad: bool):
        """The log density at constrained values (no Jacobian) and, `with_grad`, its gradient (of the sum over
        any leading batch dims)."""
        def lp(parts, data, masks, dims, axes):
            pinned = self.program.pinned(_fresh(data), dims, masks, axes)
            # the latents in model order, as TFP's structure (its sites are named `lambda_` for a `lambda`)
            return pinned.unnormalized_log_prob(type(pinned.dtype)(*parts))

        return self._run(lp, parts, data, masks, with_grad)

    # ------------------------------------------------------------------ the public functions
    def unconstrained(self, z: dict, jacobian: bool = True):
        """The log density plus log-Jacobian at unconstrained values `z` (arrays by latent name); `jacobian=False`:
        the log density at their constrained values alone (the objective of a MAP on the constrained scale)."""
        return self._unconstrained(z, self.data, self.masks, jacobian)

    def _bijector(self):
        pinned = self.program.pinned(_fresh(self.data) if self.layout is None else self._host_data(),
                                     self.sizes, self.program.all_true_masks(self.sizes), [])
        return pinned, pinned.experimental_default_event_space_bijector()

    def _host_data(self) -> dict:
        """The data at their true sizes (the bijectors do not depend on the data's values, only on their shapes)."""
        out = {}
        for v in self.program.data_variables:
            x = self.data[v.name]
            out[v.name] = self.layout.unpad(np.asarray(x), v.phys) if self.layout is not None else x
        return out

    def constrain(self, z: dict) -> dict:
        """The constrained values of unconstrained `z` (by latent name)."""
        pinned, bijector = self._bijector()
        return dict(zip(self.names, bijector.forward(type(pinned.dtype)(*self._parts(z)))))

    def unconstrain(self, params: dict) -> dict:
        """The unconstrained values of constrained `params` (by latent name)."""
        pinned, bijector = self._bijector()
        return dict(zip(self.names, bijector.inverse(type(pinned.dtype)(*self._parts(params)))))

    def init(self, seed: int = 0) -> dict:
        """Initial unconstrained values, uniform in (-2, 2) as Stan's (and `pplc run`'s) default."""
        keys = jax.random.split(jax.random.PRNGKey(seed), max(1, len(self.names)))
        real = dtype_of("real")
        return {v.name: jax.random.uniform(k, unconstrained_shape(v.support, [self.sizes[d] for d in v.phys]),
                                           real, -2.0, 2.0)
                for v, k in zip(self.program.latents, keys)}

    def log_prob(self, params: dict, with_grad: bool = False):
        """The log density at constrained `params` (no Jacobian; any leading batch dims kept) and, `with_grad`,
        its gradient by latent name (None without); compiled once per shape."""
        latents = self.program.latents
        real = dtype_of("real")
        parts = []
        for v in latents:
            if v.name not in params:
                raise PPLError(Diagnostic(f"no value for latent `{v.name}` in params"))
            parts.append(np.asarray(params[v.name], real))
        val, grad = self._constrained_jit(parts, self.data, self.masks, with_grad)
        if grad is not None:
            grad = {v.name: np.asarray(g) for v, g in zip(latents, grad)}
        return val, grad


def log_density(program: Program, bound: BoundData, params: dict, devices: int = 1, with_grad: bool = False,
                mode: str = "shard_map"):
    """The log density (constrained scale, no Jacobian) at `params` and, `with_grad`, its gradient by latent
    name (None without): the unsharded model for `devices` = 1, else the data split over that many devices.
    (Builds a `LogDensity`; `api.Model` keeps one per data shape so that it compiles once.)"""
    return LogDensity(program, bound, devices, mode).log_prob(params, with_grad)
