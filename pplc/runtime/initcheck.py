"""Which log-density terms are not finite at given values: what the sampler names when a start fails."""
from __future__ import annotations

import numpy as np


def nonfinite_terms(model, bound, params: dict) -> list[str]:
    """The sites (latent or observed, in model order) whose log-density term is not finite at `params`.

    `model` is a compiled `pplc.Model`, `bound` its checked data (`data.BoundData`) and `params` the
    latents' constrained values by name, each with a leading chains dim (a value without one, shaped as
    the latent itself, is one chain). A term counts as not finite if it is NaN or infinite in any chain.
    The terms come from the unsharded model (all the data, no padding), so a sharded run names the same
    sites as a run on one device."""
    ir = model.ir
    values = {}
    for v in ir.of_kind("latent"):
        x = np.asarray(params[v.name])
        values[v.name] = x[None] if x.ndim == len(v.phys) else x
    masks = {d: np.ones(bound.sizes[d], bool) for d in ir.sharded_dims}
    jd = model.module.make_model(bound.arrays, bound.sizes, masks, [])
    values.update(model.module.observed(bound.arrays))
    parts = jd.log_prob_parts(**values)
    parts = parts._asdict() if hasattr(parts, "_asdict") else dict(parts)
    order = [v.name for v in ir.variables if v.kind in ("latent", "observed")]
    return [name for name in order if name in parts and not np.all(np.isfinite(np.asarray(parts[name])))]
