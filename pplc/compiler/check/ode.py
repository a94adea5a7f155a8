"""`ode_solve(f, y0, t0, ts, ...)`: an ODE whose right-hand side is a user function, typed once for one solve."""
from __future__ import annotations

import dataclasses

from ...dsl import ast
from .. import ir
from .base import Reported, _children, has_shape, shape_str

# The options a call may give, as keywords (the defaults are the generated code's `ode_solve`'s, in
# codegen/prelude_ode.py): a number known before sampling each.
OPTIONS = {"rtol": "real", "atol": "real", "max_steps": "int", "stiff": "bool"}
CALL_FORM = "ode_solve(f, y0, t0, ts, ...)"


def rename(e, names: dict):
    """`e` with each name in `names` renamed (a parameter of the right-hand side, to its placeholder)."""
    if isinstance(e, ast.Name):
        return dataclasses.replace(e, id=names[e.id]) if e.id in names else e
    if isinstance(e, tuple):
        return tuple(rename(x, names) for x in e)
    if isinstance(e, (ast.Expr, ast.Keyword)):
        return dataclasses.replace(e, **{f.name: rename(getattr(e, f.name), names)
                                         for f in dataclasses.fields(e) if f.name not in ("span", "name")})
    return e


def localise(e, names: dict):
    """The typed body with each reference to a placeholder made the `Local` parameter it stands for."""
    if isinstance(e, ir.Ref) and e.name in names:
        return ir.Local(e.axes, e.dtype, e.latent, names[e.name])
    changes = {}
    for f in dataclasses.fields(e):
        x = getattr(e, f.name)
        if isinstance(x, ir.Expr):
            changes[f.name] = localise(x, names)
        elif isinstance(x, tuple) and any(isinstance(a, ir.Expr) for a in x):
            changes[f.name] = tuple(localise(a, names) if isinstance(a, ir.Expr) else a for a in x)
    return dataclasses.replace(e, **changes) if changes else e


def name_span(body: ast.Expr, name: str):
    """Where `name` is first used in `body` (None if it is not)."""
    todo = [body]
    while todo:
        x = todo.pop(0)
        if isinstance(x, ast.Name) and x.id == name:
            return x.span
        todo.extend(_children(x))
    return None


class OdeChecker:
    """Types `ode_solve`: the state, times and arguments where it is called (plates and all), and the right-hand
    side's body once, for one solve (its parameters with the item shapes of what is passed)."""

    def _ode_solve(self, e: ast.Call, ctx) -> ir.Expr:
        if len(e.args) < 4:
            self.sink.error(f"`ode_solve` takes the right-hand side, the initial state, the initial time and the "
                            f"output times, then the right-hand side's other arguments: `{CALL_FORM}`; got "
                            f"{len(e.args)} argument{'s' * (len(e.args) != 1)}", e.span)
            raise Reported
        f = self._ode_function(e.args[0])
        extra = e.args[4:]
        if len(f.params) != 2 + len(extra):
            want = len(f.params) - 2
            self.sink.error(f"`{f.name}` takes {len(f.params)} argument{'s' * (len(f.params) != 1)} "
                            f"({', '.join(f.params)}): the time, the state and {max(want, 0)} more, but `ode_solve` "
                            f"passes it the time, the state and {len(extra)} more", e.span,
                            hint=f"the right-hand side is called as `{f.name}(t, y, ...)` with the arguments after "
                                 f"the output times; it is defined at {f.span}")
            raise Reported
        options = self._ode_options(e.kwargs, ctx)
        args = self._exprs(e.args[1:], ctx)
        y0, t0, ts, rest = args[0], args[1], args[2], args[3:]
        self._ode_args_ok(e, y0, t0, ts, rest)
        body = self._ode_body(f, e, y0, rest)
        args = [self.as_real(y0), self.as_real(t0), self.as_real(ts), *map(self.as_real, rest)]
        axes = ir.Axes(self._plates_union(ctx, *(a.axes for a in args)), ts.axes.item + y0.axes.item)
        self._check_one_sharded(axes, e.span, "the solution of `ode_solve`")
        latent = body.latent or any(a.latent for a in args)
        return ir.OdeSolve(axes, "real", latent, f.name, f.params, body, tuple(args), options)

    def _ode_function(self, fn: ast.Expr) -> ast.FunctionDef:
        if isinstance(fn, ast.Name) and fn.id in self.functions:
            f = self.functions[fn.id]
            if len(f.params) >= 2:
                return f
            self.sink.error(f"the right-hand side `{f.name}` must take the time and the state first "
                            f"(`def {f.name}(t, y, ...) = ...`), but it takes {len(f.params)} argument"
                            f"{'s' * (len(f.params) != 1)}", fn.span, hint=f"it is defined at {f.span}")
            raise Reported
        what = (f"`{fn.id}` is a variable, not a function" if isinstance(fn, ast.Name) and fn.id in self.vars
                else "this is not the name of a function")
        self.sink.error(f"the first argument of `ode_solve` is the right-hand side, the name of a function "
                        f"defined with `def`; {what}", fn.span,
                        hint=f"define it, `def f(t, y, theta) = ...` (the derivative of the state y at time t), "
                             f"and call `{CALL_FORM}`")
        raise Reported

    def _ode_options(self, kwargs, ctx) -> tuple:
        out = []
        for k in kwargs:
            if k.name not in OPTIONS:
                self.sink.error(f"`ode_solve` has no option `{k.name}`", k.span,
                                hint="its options are " + ", ".join(f"`{o}`" for o in OPTIONS))
                raise Reported
            if k.name == "stiff":
                self.sink.error("`stiff` is not supported yet: diffrax's implicit solvers (Kvaerno5) do not run inside "
                                "shard_map, where pplc evaluates every model (patrick-kidger/diffrax#765)", k.span,
                                hint="leave it out: the explicit solver (Dormand-Prince, Stan's rk45) solves a stiff "
                                     "system too, with more steps (raise `max_steps` if solves fail)")
                raise Reported
            v = self.expr(k.value, ctx)
            kind = OPTIONS[k.name]
            ok = isinstance(v, ir.Lit) and (v.dtype == "bool" if kind == "bool" else
                                            v.dtype == "int" and v.value >= 1 if kind == "int" else
                                            v.dtype != "bool" and v.value > 0)
            if not ok:
                want = {"bool": "`true` or `false`", "int": "a whole number of at least 1",
                        "real": "a positive number"}[kind]
                self.sink.error(f"`{k.name}` must be {want}, known before sampling (a literal or a const)", k.span)
                raise Reported
            out.append((k.name, float(v.value) if kind == "real" else v.value))
        return tuple(out)

    def _ode_args_ok(self, e: ast.Call, y0, t0, ts, rest) -> None:
        nodes = e.args[1:]
        for node, a, what in [(nodes[1], t0, "the initial time"), (nodes[2], ts, "the output times")]:
            if a.latent:
                self.sink.error(f"{what} of `ode_solve` must be data or numbers, but this one depends on a random "
                                "variable", node.span)
                raise Reported
        if t0.axes.item:
            self.sink.error(f"the initial time of `ode_solve` is a number, but this one {has_shape(t0.axes.item)}",
                            nodes[1].span)
            raise Reported
        if len(ts.axes.item) != 1:
            self.sink.error(f"the output times of `ode_solve` are a vector (`data ts: real[N]`), but this value "
                            f"{has_shape(ts.axes.item)}", nodes[2].span)
            raise Reported
        for node, a in [(nodes[0], y0), (nodes[2], ts)]:
            if a.dtype == "bool":
                self.sink.error("this argument of `ode_solve` is bool; the state and the times are numbers", node.span)
                raise Reported
        for node, a in zip(nodes[:1] + nodes[2:], [y0, ts, *rest]):
            sharded = next((d for d in a.axes.item if self._is_sharded(d)), None)
            if sharded:
                self.sink.error(f"this argument of `ode_solve` has the sharded dim `{sharded}` in each solve's "
                                f"values, but each device holds only its own items of `{sharded}`", node.span,
                                hint=f"solve inside `plate {sharded}`: one solve per item")
                raise Reported

    def _ode_body(self, f: ast.FunctionDef, e: ast.Call, y0: ir.Expr, rest) -> ir.Expr:
        """`f`'s body typed once: the time a real number, the state and other arguments with the item shapes of
        `y0` and `rest` (no plates: one solve sees one item)."""
        if f.name in self.inlining:
            self.sink.error(f"`{f.name}` calls itself (through {' -> '.join(self.inlining + [f.name])})", e.span)
            raise Reported
        placeholders = {p: f"_ode_{i}_{p}" for i, p in enumerate(f.params)}
        latent = any(a.latent for a in (y0, *rest))  # the state at t depends on all of them
        # (every argument is a real inside: the solver differentiates with respect to them)
        values = [(False, ()), (latent, y0.axes.item)] + [(a.latent, a.axes.item) for a in rest]
        for (latent, item), p in zip(values, f.params):
            name = placeholders[p]
            self.vars[name] = ir.Variable(name=name, kind=ir.Kind.DETERMINISTIC, dtype="real", plates=(), phys=item,
                                          span=f.span, line=f.span.line, source_line="", latent=latent)
        self.inlining.append(f.name)
        try:
            body = self.expr(rename(f.body, placeholders), ())
        finally:
            self.inlining.pop()
            for name in placeholders.values():
                del self.vars[name]
        for r in ir.refs(body):
            if r.name in placeholders.values():
                continue
            sharded = next((d for d in r.phys if self._is_sharded(d)), None)
            if r.latent or sharded:
                why = f"has the sharded dim `{sharded}`" if sharded else "depends on random variables"
                self.sink.error(f"the right-hand side `{f.name}` uses `{r.name}`, which {why}; a right-hand side "
                                "sees data, consts and its own arguments only", name_span(f.body, r.name) or e.span,
                                hint=f"pass `{r.name}` as an argument: `def {f.name}({', '.join(f.params)}, "
                                     f"{r.name}) = ...`, `ode_solve({f.name}, y0, t0, ts, ..., {r.name})`")
                raise Reported
        if body.axes.item != y0.axes.item:
            self.sink.error(f"the right-hand side `{f.name}` returns a value of shape {shape_str(body.axes.item)}, "
                            f"but the state has shape {shape_str(y0.axes.item)}: the derivative has the state's "
                            f"shape", e.args[0].span, hint=f"`{f.name}` is defined at {f.span}")
            raise Reported
        return localise(body, {v: p for p, v in placeholders.items()})
