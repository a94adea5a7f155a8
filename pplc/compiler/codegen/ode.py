"""`ode_solve` as Python: the right-hand side a local function defined before the statement, the call to the prelude's
`ode_solve` (codegen/prelude_ode.py) with each argument lined up with the solution's plates."""
from __future__ import annotations

from .. import ir
from .names import py


def ode_call(gen, e: ir.OdeSolve) -> str:
    """The call; the right-hand side's `def` waits in `gen.local_defs` until `take_defs` places it."""
    gen.helpers.add("ode_solve")
    rhs = define_rhs(gen, e)
    args = [gen.lift(a, e.axes.plates, len(a.axes.item))[0] for a in e.args]
    ranks = (len(e.args[0].axes.item),) + tuple(len(a.axes.item) for a in e.args[3:])
    options = "".join(f", {k}={v!r}" for k, v in e.options)
    return f"ode_solve({rhs}, {', '.join(args)}, ranks={ranks!r}{options})"


def define_rhs(gen, e: ir.OdeSolve) -> str:
    """The name of a local function for `e`'s right-hand side: the function's own name, with a number after it
    when the same statement solves with it at other shapes (another body)."""
    params = ", ".join(py(p) for p in e.params)
    body = gen.code(e.body)
    name, n = py(e.func), 1
    while True:
        text = f"def {name}({params}):\n    return {body}"
        if gen.local_defs.setdefault(name, text) == text:
            return name
        n += 1
        name = f"{py(e.func)}_{n}"


def take_defs(gen, indent: str) -> list[str]:
    """The lines of the local functions that the code generated since the last call uses, at `indent`."""
    out = [indent + line for text in gen.local_defs.values() for line in text.splitlines()]
    gen.local_defs.clear()
    return out
