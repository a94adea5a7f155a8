"""Stan's blocks in pplc's form: bounds on declared types, latents declared without a prior, `target +=` terms."""
from __future__ import annotations

from ...dsl import ast
from .. import ir
from ..distributions import DISTRIBUTIONS, TERM
from ..supports import Support
from .base import Reported, has_shape, signed_literal, walk_statements

BOUND_NAMES = ("lower", "upper")


class BlockChecker:
    """Checks bounds (`real<lower=0, upper=1>`), `NAME: TYPE` latents and `target += EXPR`."""

    def _bounds(self, t: ast.Type, ctx, item: tuple[str, ...], what: str) -> tuple[ir.Expr | None, ir.Expr | None]:
        """The lower and upper bounds of declared type `t` (None where absent), each broadcasting to the plates
        `ctx` and the item dims `item` of the value it bounds."""
        got: dict[str, ir.Expr] = {}
        for b in t.bounds:
            if b.name not in BOUND_NAMES:
                self.sink.error(f"unknown bound `{b.name}`; a type takes `lower` and `upper`", b.span,
                                hint="e.g. `real<lower=0>`, `real<lower=0, upper=1>`")
                raise Reported
            if b.name in got:
                self.sink.error(f"`{b.name}` is given twice", b.span)
                raise Reported
            e = signed_literal(self.expr(b.value, ctx))
            if e.dtype == "bool":
                self.sink.error(f"the {b.name} bound of {what} must be a number, not a bool", b.value.span)
                raise Reported
            if len(e.axes.item) > len(item) or any(a != d and a != "1" for a, d in zip(e.axes.item[::-1], item[::-1])):
                self.sink.error(f"the {b.name} bound {has_shape(e.axes.item)} but {what} {has_shape(item)}",
                                b.value.span, hint="a bound is a scalar, or broadcasts to the value's shape")
                raise Reported
            got[b.name] = self.as_real(e)
        low, high = got.get("lower"), got.get("upper")
        if isinstance(low, ir.Lit) and isinstance(high, ir.Lit) and not low.value < high.value:
            span = next(b.span for b in t.bounds if b.name == "upper")
            self.sink.error(f"the bounds are empty: lower = {low.value:g} is not below upper = {high.value:g}", span)
            raise Reported
        return low, high

    def _data_bounds(self, s: ast.DataDecl) -> tuple[float | None, float | None]:
        """A data declaration's bounds: numbers (literals or consts), checked against the data when bound."""
        if not s.type.bounds:
            return None, None
        low, high = self._bounds(s.type, (), tuple(d.name or str(d.size) for d in s.type.dims), f"`{s.name}`")
        for b, e in zip(BOUND_NAMES, (low, high)):
            if e is not None and not isinstance(e, ir.Lit):
                span = next(x.value.span for x in s.type.bounds if x.name == b)
                self.sink.error(f"the {b} bound of data `{s.name}` must be a number (a literal or a const)", span)
                raise Reported
        return (None if low is None else float(low.value)), (None if high is None else float(high.value))

    def _param(self, s: ast.ParamDecl, ctx):
        """`NAME: TYPE`: a latent with a flat (improper) prior over its declared support."""
        if s.name in self.vars:
            self.sink.error(f"`{s.name}` is already defined (at {self.vars[s.name].span})", s.name_span,
                            hint="a data array is observed with `~`; a declared latent needs a new name")
            raise Reported
        dist = ir.DistCall(DISTRIBUTIONS["Flat"], (), (), s.type.span)
        self._latent(s, ctx, dist, s.type)

    def _target(self, s: ast.Target, ctx):
        """`target += EXPR`: the sum of EXPR (per item inside plates) added to the log density; a site of its own
        (named `target_<line>_<col>`, with `_` added while a name of the program has it: TFP's site names cannot
        start with `_`) whose log density is the term."""
        value = self._fill_plates(self.as_real(self.expr(s.value, ctx)), ctx, s.value.span)
        plates = tuple(p.dim for p in ctx)
        phys = value.axes.all
        self._check_one_sharded(value.axes, s.value.span, "the term")
        sharded = next((d for d in phys if self._is_sharded(d)), None)
        dist = ir.DistCall(TERM, (("loc", value),), value.axes.item, s.value.span)
        taken = {getattr(st, "name", None) for st in walk_statements(self.program.statements)}
        name = f"target_{s.span.line}_{s.span.col}"
        while name in taken:
            name += "_"
        var = self._var(s, name, ir.Kind.TARGET, "real", plates, phys, dist=dist, support=Support.REAL,
                        sharded_dim=sharded, latent=value.latent)
        self.vars[name] = var
        self.order.append(var)
