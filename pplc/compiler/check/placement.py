"""Plates and placement: which dims are sharded across devices, and what can be placed on a mesh."""
from __future__ import annotations

from ...dsl import ast
from ...dsl.diagnostics import did_you_mean
from ...dsl.spans import Span
from .. import ir
from .base import Reported, has_shape, sizes_a_dim


class PlacementChecker:
    """Opens plates, and keeps every value split across devices along one sharded dim at most."""

    def _collect_plates(self, stmts, in_sharded=False):
        """The dims of sharded plates, before any statement is checked: a dim is sharded everywhere or nowhere."""
        for s in stmts:
            if isinstance(s, ast.Plate):
                # (a sharded plate in a sharded plate is reported in `_plate`, its dim left replicated)
                if s.sharded and not in_sharded:
                    self.sharded.setdefault(s.dim, s.dim_span)
                self._collect_plates(s.body, in_sharded or s.sharded)

    def _is_sharded(self, dim: str) -> bool:
        return dim in self.sharded

    def _check_one_sharded(self, axes: ir.Axes, span: Span, what: str):
        twice = next((d for d in axes.all if self._is_sharded(d) and axes.all.count(d) > 1), None)
        if twice:
            self.sink.error(f"{what} would have the sharded dim `{twice}` twice; a value can be split across "
                            "devices along one axis only", span,
                            hint=f"keep `{twice}` replicated (drop `sharded over devices` from its plate)")
            raise Reported
        sh = sorted({d for d in axes.all if self._is_sharded(d)})
        if len(sh) > 1:
            self.sink.error(f"{what} would have two sharded dims, `{sh[0]}` and `{sh[1]}`; a value can be split "
                            "across devices along one dim only", span,
                            hint="shard one of the plates only, or keep the two apart")
            raise Reported

    def _view(self, var: ir.Variable, ctx, span: Span | None = None) -> ir.Axes:
        """How `var` is seen inside the plates `ctx`: the plate axes of its stored layout, then its other axes."""
        cdims = [p.dim for p in ctx]
        twice = next((d for d in cdims if var.phys.count(d) > 1), None)
        if twice:
            self.sink.error(f"`{var.name}` {has_shape(var.phys)}: inside `plate {twice}` it is unclear which of its "
                            f"axes named `{twice}` is the plate's", span or var.span,
                            hint=f"compute what the plate needs from `{var.name}` above the plate (e.g. "
                                 f"`{var.name}_w = {var.name} @ w`), and use that inside")
            raise Reported
        return ir.Axes(tuple(d for d in cdims if d in var.phys), tuple(d for d in var.phys if d not in cdims))

    def _plate(self, s: ast.Plate, ctx):
        bad = False
        if s.dim in (p.dim for p in ctx):
            outer = next(p for p in ctx if p.dim == s.dim)
            self.sink.error(f"plate `{s.dim}` is already open here (at {outer.span})", s.dim_span,
                            hint="a plate over a dim cannot be nested in a plate over the same dim")
            bad = True
        if s.sharded and any(p.sharded for p in ctx):
            outer = next(p for p in ctx if p.sharded)
            self.sink.error(f"sharded plate `{s.dim}` inside sharded plate `{outer.dim}`: only one plate can be "
                            "split across devices at a time", s.dim_span,
                            notes=(f"`{outer.dim}` is sharded at {outer.span}",),
                            hint="drop `sharded over devices` from one of them")
            bad = True
        if s.dim in self.sharded and not s.sharded:
            self.sink.error(f"plate `{s.dim}` is sharded at {self.sharded[s.dim]} but not here; a dim is split "
                            "across devices everywhere or nowhere", s.dim_span,
                            hint="add `sharded over devices` here too")
            bad = True
        if s.dim not in self.dims and s.dim in self.failed:
            bad = True  # its declaration had an error, reported there
        elif s.dim not in self.dims and s.dim in self.vars and not sizes_a_dim(self.vars[s.dim]):
            self._not_a_dim(s.dim, self.vars[s.dim], s.dim_span)
            bad = True
        elif s.dim not in self.dims and s.dim not in self.vars:
            hint = did_you_mean(s.dim, [d for d in self.dims if not d.isdigit()])
            self.sink.error(f"plate over unknown dim `{s.dim}`: no data declared above has a dim `{s.dim}`",
                            s.dim_span, hint=hint or f"declare the data first (`data y: real[{s.dim}]`), or give the "
                            f"size: `const {s.dim} = 10`")
            bad = True
        elif s.dim not in self.dims:
            self._dim(ast.Dim(s.dim, None, s.dim_span))
        if bad:
            self._poison(s.body)
            return
        plate = ir.Plate(s.dim, s.sharded, s.dim_span)
        self.plates.append(plate)
        for inner in s.body:
            self._stmt(inner, ctx + (plate,))

    def _check_cross_device_reductions(self, variables) -> None:
        """Refuse a sum, mean, max or min across the devices of a sharded dim of a value that depends on a latent,
        where the log density uses it (in a site's parameters, a `target +=` term, or a value they use); a value
        only recorded with the draws (a `track`, a deterministic nothing uses) may have one. Its value is right,
        but TFP's cross-device sum keeps each device's gradient local, so the gradient with respect to the latents
        would be wrong whenever the plate is split: a wrong posterior, not an error."""
        by_name = {v.name: v for v in variables}
        todo = [v for v in variables if v.dist is not None or v.kind == ir.Kind.TARGET]
        seen = {v.name for v in todo}
        while todo:
            v = todo.pop()
            roots = [v.value] if v.value is not None else []
            roots += [e for _, e in v.dist.params] if v.dist is not None else []
            roots += [b for b in v.bounds or () if b is not None]
            bad = None
            for x in (x for e in roots for x in _walk(e)):
                if isinstance(x, ir.Reduce) and x.sharded_dim is not None and x.arg.latent and bad is None:
                    bad = x
                if isinstance(x, ir.Ref) and x.name not in seen and x.name in by_name:
                    seen.add(x.name)
                    todo.append(by_name[x.name])
            if bad is not None:
                self.sink.error(f"`{bad.func}` across the devices of the sharded dim `{bad.sharded_dim}` of a value "
                                f"that depends on a latent: pplc cannot give its gradient when `{bad.sharded_dim}` is "
                                "split, and the sampler needs it", v.span,
                                hint=f"drop `sharded over devices` from the plate of `{bad.sharded_dim}`, or compute "
                                     "the reduction from data alone (a `track` of it is fine)")


def _walk(e):
    """`e` and every expression inside it (any field of an IR node that holds expressions)."""
    todo = [e]
    while todo:
        x = todo.pop()
        yield x
        for value in vars(x).values():
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                if isinstance(item, ir.Expr):
                    todo.append(item)
                elif isinstance(item, tuple):
                    todo.extend(y for y in item if isinstance(y, ir.Expr))

