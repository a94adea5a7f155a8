"""A distribution's literal and const parameters checked against their ranges (`Weibull(-1, 2)`), where they are."""
from __future__ import annotations

from .. import ir
from ..distributions import DistSpec
from .base import Reported, signed_literal


def literal_value(e: ir.Expr) -> float | None:
    """The number a parameter is when it is a literal or a const (`-1` and int literals cast to real too)."""
    if isinstance(e, ir.Elementwise) and e.op == "real":  # an int literal cast to real
        e = e.args[0]
    e = signed_literal(e)
    if isinstance(e, ir.Lit) and not isinstance(e.value, bool):
        return float(e.value)
    return None


def check_param_values(chk, spec: DistSpec, params, spans: dict) -> None:
    """Each literal (or const) parameter of `spec` named in its `positive` (> 0) or `nonnegative` (>= 0) lies in
    its range: a located error otherwise (TFP would give NaN densities, not an error)."""
    for name, e in params:
        value = literal_value(e)
        if value is None:
            continue
        if name in spec.positive and not value > 0:
            chk.sink.error(f"{spec.name} {name} must be > 0, but it is {value:g}", spans[name])
            raise Reported
        if name in spec.nonnegative and not value >= 0:
            chk.sink.error(f"{spec.name} {name} must be >= 0, but it is {value:g}", spans[name])
            raise Reported
