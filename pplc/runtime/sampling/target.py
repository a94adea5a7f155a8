"""The sampler's target: the log density on the unconstrained scale (Jacobian added) and the map back."""
from __future__ import annotations



def target_fn(make_pinned, padding=None):
    """The log density on the unconstrained scale (TFP's default event-space bijectors, Jacobian added) plus
    `padding(parts)` when given, and the map from unconstrained parts to constrained values.

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
