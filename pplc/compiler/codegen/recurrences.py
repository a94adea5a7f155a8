"""A `recur` block as Python: its first items, a local `step` function, and one scan by the prelude's `recurrence`."""
from __future__ import annotations

import dataclasses

from .. import ir
from .names import GENERATED_NAMES, py, safe_text


def _step_nodes(e: ir.Expr) -> list[ir.Expr]:
    """The `x[t-k]` and `y[t-j]` nodes of a step expression, in order (not looking inside a `y[t-j]`'s array)."""
    out, todo = [], [e]
    while todo:
        n = todo.pop(0)
        if isinstance(n, (ir.RecurItem, ir.AtStep)):
            out.append(n)
            continue
        for f in dataclasses.fields(n):
            val = getattr(n, f.name)
            for sub in (val if isinstance(val, tuple) else (val,)):
                for s in (sub if isinstance(sub, tuple) else (sub,)):
                    if isinstance(s, ir.Expr):
                        todo.append(s)
    return out


def _lagged(base: str, lag: int) -> str:
    return f"{base}_t" if lag == 0 else f"{base}_prev" + (str(lag) if lag > 1 else "")


def recurrence_lines(gen, v: ir.Variable, ind: str) -> list[str]:
    """The lines that compute every sequence of `v`'s block (at its first sequence; none at the others)."""
    block = v.value.block
    if v.name != block.names[0]:
        return []
    x = gen.x
    taken = {py(u.name) for u in gen.model.variables} | GENERATED_NAMES

    def fresh(base: str) -> str:
        name = base
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    def comment(line: int, text: str) -> str:
        return f"# {gen.src}:{line}  {safe_text(text)}"

    k, names = block.start, block.names
    step, carry, x_t = fresh("step"), fresh("carry"), fresh("x_t")
    seq_locals = {(n, lag): fresh(_lagged(py(n), lag)) for n in names for lag in range(k, -1, -1)}
    first_locals = {(n, at): fresh(f"{py(n)}_{at}") for n, at, _, _ in block.first}
    inputs: dict[ir.AtStep, str] = {}
    for _, e, _ in block.steps:
        for node in _step_nodes(e):
            if isinstance(node, ir.AtStep) and node not in inputs:
                base = py(node.value.name) if isinstance(node.value, ir.Ref) else f"input{len(inputs) + 1}"
                inputs[node] = fresh(_lagged(base, node.lag))
    # the step function: one item t of every sequence, from the carried items t-k..t-1 and the inputs at t
    carried = [seq_locals[(n, lag)] for n in names for lag in range(k, 0, -1)]
    after = [seq_locals[(n, lag)] for n in names for lag in range(k - 1, -1, -1)]
    head, text = block.lines[0]
    out = [ind + comment(head, text + f"  (one scan: {', '.join(names)})"), f"{ind}def {step}({carry}, {x_t}):",
           f"{ind}    {', '.join(carried)}{',' * (len(carried) == 1)} = {carry}"]
    if inputs:
        out.append(f"{ind}    {', '.join(inputs.values())}{',' * (len(inputs) == 1)} = {x_t}")
    lines = dict(block.lines)
    x.step_locals = {**{node: name for node, name in inputs.items()}}
    for n, e, line in block.steps:
        for node in _step_nodes(e):
            if isinstance(node, ir.RecurItem):
                x.step_locals[node] = seq_locals[(node.name, node.lag)]
        out += [f"{ind}    " + comment(line, lines[line]), f"{ind}    {seq_locals[(n, 0)]} = {x.code(e)}"]
    out.append(f"{ind}    return {', '.join(after)}{',' * (len(after) == 1)}")
    out.append("")
    # the first items, in their lines' order (each may use those above it)
    for n, at, e, line in block.first:
        x.step_locals = {node: first_locals[(node.name, node.at)] for node in _step_nodes(e)
                         if isinstance(node, ir.RecurItem)}
        out += [ind + comment(line, lines[line]), f"{ind}{first_locals[(n, at)]} = {x.code(e)}"]
    x.step_locals = {}
    # the scan: inputs with the block's dim first, from item k - lag on
    xs = []
    for node in inputs:
        r = len(node.value.axes.item)
        code = x.code(node.value)
        plain = (isinstance(node.value, ir.Ref) and node.value.kind in (ir.Kind.DATA, ir.Kind.TRANSFORMED)
                 and r == len(node.value.phys))
        if not plain:
            code = f"jnp.moveaxis({code}, {-r}, 0)"
        xs.append(f"{code}[{k}:]" if node.lag == 0 else f"{code}[{k - node.lag or ''}:-{node.lag}]")
    plates = v.plates
    var = {u.name: u for u in gen.model.variables}
    shapes = [x.shape(plates + tuple(var[n].phys[len(plates) + 1:])) for n in names]
    axes = [str(-1 - r) for r in block.item_ranks]
    first = [first_locals[(n, at)] for n in names for at in range(k)]

    def tup(items):
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    x.helpers.add("recurrence")
    targets = ", ".join(py(n) for n in names) + ("," if len(names) == 1 else "")
    out.append(f"{ind}{targets} = recurrence({step}, {tup(first)}, {tup(xs)}, {x.dim(block.dim)} - {k}, "
               f"shapes={tup(shapes)}, axes={tup(axes)})")
    return out
