"""Python for check/linalg.py's functions and array literals (`ir.Function`): jnp.linalg, prelude_linalg's helpers."""
from __future__ import annotations

from .. import ir

LINALG_CODE = {"inverse", "log_determinant", "outer", "solve", "triangular_solve", "quad_form", "concat", "stack"}


def linalg_code(gen, e: ir.Function) -> str:
    """The code of `e` (one of LINALG_CODE) in its natural layout [..., plates, item]; `gen` is the ExprGen."""
    plates, rank = e.axes.plates, len(e.axes.item)
    f = e.func
    if f == "inverse":
        return f"jnp.linalg.inv({gen.code(e.args[0])})"
    if f == "log_determinant":
        return f"jnp.linalg.slogdet({gen.code(e.args[0])})[1]"
    if f in ("concat", "stack"):  # each lined up with the result's plates and item rank (less the new axis)
        parts = [gen.lift(a, plates, rank - (f == "stack"))[0] for a in e.args]
        if f == "stack":
            gen.helpers.add("stack_items")
            return f"stack_items({-rank}, {', '.join(parts)})"
        gen.helpers.add("concat")
        return f"concat({', '.join(parts)})"
    a, b = e.args
    gen.helpers.add(f)
    if f == "outer":
        return f"outer({gen.lift(a, plates, 1)[0]}, {gen.lift(b, plates, 1)[0]})"
    b_rank = len(b.axes.item)
    args = f"{gen.lift(a, plates, 2)[0]}, {gen.lift(b, plates, b_rank)[0]}"
    return f"{f}({args}, {'x_rank' if f == 'quad_form' else 'b_rank'}={b_rank})"
