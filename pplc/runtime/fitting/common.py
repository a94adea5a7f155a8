"""What the fitting methods share: latents as one flat vector, deterministic quantities, draws as a `Fit`."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ...dsl.diagnostics import Diagnostic, PPLError
from ..data.bind import BoundData, dtype_of
from ..density import LogDensity
from ..output import Fit
from ..program import Program


class Flat:
    """The unconstrained latents (a dict by name) as one flat vector and back, for optimizers and Gaussians."""

    def __init__(self, ld: LogDensity, z: dict):
        self.names = list(ld.names)
        self.x0, self._unravel = ravel_pytree({n: jnp.asarray(z[n]) for n in self.names})
        self.size = int(self.x0.shape[0])

    def unravel(self, x) -> dict:
        return self._unravel(x)

    def log_density(self, ld: LogDensity, jacobian: bool = True):
        """x -> the log density at the unconstrained latents of the flat vector x (with or without the Jacobian)."""
        return lambda x: ld.unconstrained(self.unravel(x), jacobian)


def require_optax():
    """The `optax` module (L-BFGS for `optimize`, Adam for `variational`), or a user error saying how to get it."""
    try:
        import optax
    except ImportError:
        raise PPLError(Diagnostic("pplc optimize and pplc variational need optax, which is not installed",
                                  hint="pip install optax")) from None
    return optax


def host_data(program: Program, bound: BoundData) -> dict:
    """The data at their true sizes on the host, reals in this run's dtype (for the unsharded model)."""
    real = dtype_of("real")
    return {v.name: np.asarray(bound.arrays[v.name], real if v.dtype == "real" else None)
            for v in program.data_variables}


def with_outputs(program: Program, bound: BoundData, params: dict, lead: int = 0) -> dict:
    """Constrained latents by name (with `lead` leading batch dims) and the model's deterministic and tracked
    quantities at them (the unsharded model), all as NumPy arrays in model order."""
    sizes = dict(bound.sizes)
    latents = {n: jnp.asarray(params[n]) for n in program.latent_names}
    batch = np.shape(latents[program.latent_names[0]])[:lead] if latents else ()
    extra = program.module.derived(latents, host_data(program, bound), sizes, program.all_true_masks(sizes), [])
    out = {}
    for v in program.ir.variables:
        if v.name in latents:
            out[v.name] = np.asarray(latents[v.name])
        elif v.name in extra:  # latent-free quantities get the batch dims too
            shape = tuple(batch) + tuple(sizes[d] for d in v.phys)
            out[v.name] = np.asarray(jnp.broadcast_to(extra[v.name], shape))
    return out


def draws_fit(program: Program, bound: BoundData, params: dict, trace: dict, model_name: str, meta: dict,
              timing: dict | None = None) -> Fit:
    """A `Fit` of independent draws (one chain): constrained latents by name `[draws, *shape]` (deterministics
    added), `trace` arrays `[draws]`; `meta` holds the method and notes. `pplc summary` and ArviZ read it."""
    values = with_outputs(program, bound, params, lead=1)
    tracks = [v.name for v in program.ir.of_kind("track")]
    draws = {k: v[None] for k, v in values.items() if k not in tracks}
    trace = {k: np.asarray(v)[None] for k, v in trace.items()}
    trace.update({k: values[k][None] for k in tracks if k in values})
    observed_names = set(getattr(program.module, "OBSERVED", ()))
    observed = {k: np.asarray(bound.arrays[k]) for k in observed_names if k in bound.arrays}
    constant = {k: np.asarray(x) for k, x in bound.arrays.items() if k not in observed}
    dims = {v.name: list(v.phys) for v in program.ir.variables
            if v.name in draws or v.name in trace or v.name in observed}
    meta = dict(meta, tracked=tracks, model_file=program.filename)
    return Fit(draws, trace, dict(timing or {}), os.path.basename(program.filename), program=program, dims=dims,
               meta=meta, observed=observed, constant=constant)


def unsharded(ld: LogDensity, bound: BoundData) -> LogDensity:
    """`ld` itself on one device, else the same model and data on one device (for what a sharded density does not
    give: Hessians)."""
    return ld if ld.devices == 1 else LogDensity(ld.program, bound, 1, ld.mode)


def start(ld: LogDensity, seed: int, init: dict | None) -> dict:
    """Initial unconstrained values: uniform in (-2, 2) as Stan's default (`seed`), or the constrained values
    `init` (by latent name) mapped to the unconstrained scale."""
    if init is None:
        return ld.init(seed)
    missing = [n for n in ld.names if n not in init]
    if missing:
        raise PPLError(Diagnostic(f"no initial value for latent `{missing[0]}`",
                                  hint=f"init takes constrained values of every latent: {', '.join(ld.names)}"))
    real = dtype_of("real")
    z = ld.unconstrain({n: jnp.asarray(np.asarray(init[n], real)) for n in ld.names})
    bad = [n for n in ld.names if not np.all(np.isfinite(np.asarray(z[n])))]
    if bad:
        raise PPLError(Diagnostic(f"the initial value of `{bad[0]}` lies outside its support"))
    return z


def quiet_summary(fit: Fit) -> str:
    """`fit.summary()` without ArviZ's log line that one chain is too few for R-hat (the draws are independent)."""
    import logging

    log = logging.getLogger("arviz")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return fit.summary()
    finally:
        log.setLevel(level)


def as_host(tree):
    """A pytree of JAX arrays as NumPy arrays."""
    return jax.tree.map(np.asarray, tree)
