"""Statements that define variables: data declarations, `~` (latent or observed) and assignments."""
from __future__ import annotations

import dataclasses

from ...dsl import ast
from .. import ir
from ..supports import Support
from .arguments import support_check
from .base import Reported, has_shape
from .constrained import constrained_type


class StatementChecker:
    """Builds the IR variable of each `data`, `~`, `NAME = EXPR` and `track` statement."""

    def _data(self, s: ast.DataDecl, ctx):
        self._declaration_ok(s, ctx, "data")
        if s.type.dtype not in ("real", "int", "bool"):
            self.sink.error(f"`{s.type.dtype}` is a type of latents; data are real, int or bool", s.type.span,
                            hint="declare the data `real[...]`")
            raise Reported
        phys = tuple(self._dim(d) for d in s.type.dims)
        self._check_one_sharded(ir.Axes((), phys), s.type.span, f"data `{s.name}`")
        sharded = next((d for d in phys if self._is_sharded(d)), None)
        var = self._var(s, s.name, ir.Kind.DATA, s.type.dtype, (), phys, sharded_dim=sharded,
                        data_bounds=self._data_bounds(s) if s.type.bounds else None)
        self._define(var, s.name_span)

    def _assign(self, s, ctx, what):
        if not self._name_ok(s.name, s.name_span):
            raise Reported
        value = self._fill_plates(self.expr(s.value, ctx), ctx, s.value.span)
        if what == "track":
            kind = ir.Kind.TRACK
        else:
            kind = ir.Kind.DETERMINISTIC if value.latent else ir.Kind.TRANSFORMED
        plates = tuple(p.dim for p in ctx)
        sharded = next((d for d in value.axes.all if self._is_sharded(d)), None)
        self._define(self._var(s, s.name, kind, value.dtype, plates, value.axes.all, value=value,
                               sharded_dim=sharded, latent=value.latent), s.name_span)

    def _sample(self, s: ast.Sample, ctx):
        plates = tuple(p.dim for p in ctx)
        existing = self.vars.get(s.name)
        if existing is not None and existing.kind not in (ir.Kind.DATA, ir.Kind.TRANSFORMED):
            if existing.kind == ir.Kind.DETERMINISTIC:
                self.sink.error(f"`{s.name}` is a deterministic quantity (defined at {existing.span}); only data "
                                "or a new random variable can follow `~`", s.name_span,
                                hint="give the random variable a new name")
            else:
                self.sink.error(f"`{s.name}` is already defined (at {existing.span})", s.name_span)
            raise Reported
        first = next((v for v in self.order if v.name == s.name and v.kind == ir.Kind.OBSERVED), None)
        if first is not None:
            self.sink.error(f"`{s.name}` is already observed (at {first.span}); each data array is observed once",
                            s.name_span, hint="Stan would add both terms; pplc observes each data array with one "
                            "distribution (one site per name): keep one `~`, or declare a copy of the data under "
                            "another name and observe that")
            raise Reported
        if existing is None and not self._name_ok(s.name, s.name_span):
            raise Reported
        dist = self._dist(s.dist, ctx)
        spec = dist.spec
        if existing is not None and self._enumerated_observation(s, ctx, dist, existing):
            return  # given a summed-out discrete latent: a term of its marginal (check/enumerate.py)
        if existing is not None:  # observed
            if s.type is not None:
                self.sink.error(f"`{s.name}` is data (declared at {existing.span}); its type is already known",
                                s.type.span, hint=f"write `{s.name} ~ ...`")
                raise Reported
            view = self._view(existing, ctx, s.name_span)
            missing = [d for d in plates if d not in view.plates]
            if missing:
                self.sink.error(f"`{s.name}` is observed inside plate `{missing[0]}` but has no dim `{missing[0]}` "
                                f"(it {has_shape(existing.phys)})", s.name_span,
                                hint=f"observe it outside the plate, or declare it with the dim `{missing[0]}`")
                raise Reported
            if spec.discrete and existing.dtype == "real":
                self.sink.error(f"{spec.name} observes integers, but `{s.name}` is declared real "
                                f"(at {existing.span})", s.name_span,
                                hint=f"declare it `data {s.name}: int[...]`")
                raise Reported
            if not spec.discrete and existing.dtype == "bool":
                self.sink.error(f"{spec.name} is continuous, but `{s.name}` is declared bool", s.name_span,
                                hint=f"observe a bool with Bernoulli, or declare `data {s.name}: real[...]`")
                raise Reported
            item = view.item
            self._match_batch(dist, item, s.name, s.dist.span, plates)
            phys = plates + item
            self._check_one_sharded(ir.Axes(plates, item), s.span, f"`{s.name}`")
            sharded = next((d for d in phys if self._is_sharded(d)), None)
            var = self._var(s, s.name, ir.Kind.OBSERVED, existing.dtype, plates, phys, dist=dist,
                            support=spec.support, support_check=support_check(dist), sharded_dim=sharded)
            # The observed site replaces the data entry in order; the data stays as it was declared.
            self.order.append(var)
            return
        self._latent(s, ctx, dist, s.type)

    def _latent(self, s, ctx, dist: ir.DistCall, t):
        """The latent `s.name` drawn from `dist`, declared with type `t` (None: its shape from the distribution)."""
        plates = tuple(p.dim for p in ctx)
        spec = dist.spec
        if spec.observed_only:
            self.sink.error(f"{spec.name} is observed only: `{s.name}` would be a latent drawn from it", dist.span,
                            hint=f"declare `data {s.name}: real[...]` to observe it")
            raise Reported
        if spec.discrete:  # summed out per plate item (check/enumerate.py): HMC and NUTS never see it
            self._enumerated_latent(s, ctx, dist, t)
            return
        t, dist = constrained_type(self, s, t, dist)  # `simplex[K]`, `cholesky_corr[K]`: as `real[...]`
        spec = dist.spec
        order = None
        if t is not None and t.dtype in ("ordered", "positive_ordered"):
            order = t.dtype
            if not t.dims or t.bounds or any(self._is_sharded(p) for p in plates) or spec.event_rank:
                why = ("needs a dim: `ordered[K]`" if not t.dims else "takes no bounds" if t.bounds else
                       "cannot be inside a sharded plate" if spec.event_rank == 0 else
                       f"cannot be drawn from {spec.name}")
                self.sink.error(f"an `{order}` latent {why}", t.span)
                raise Reported
            t = dataclasses.replace(t, dtype="real")
        if t is not None:
            if t.dtype != "real":
                self.sink.error(f"latent `{s.name}` must be real (it is declared {t.dtype})", t.span)
                raise Reported
            item = tuple(self._dim(d) for d in t.dims)
            in_ctx = [d for d in item if d in plates]
            if in_ctx:
                self.sink.error(f"`{s.name}` is declared inside plate `{in_ctx[0]}` and already gets dim "
                                f"`{in_ctx[0]}` from it; give the shape of one item", t.span)
                raise Reported
            self._match_batch(dist, item, s.name, dist.span, plates)
        else:
            item = dist.batch_item + self._event_dims(dist)
        bounds, support = None, spec.support
        if t is not None and t.bounds:
            if spec.event_rank:
                self.sink.error(f"{spec.name} draws vectors ({spec.support.value}); bounds apply to scalar "
                                "distributions", t.span, hint="drop the bounds")
                raise Reported
            bounds, support = self._bounds(t, ctx, item, f"`{s.name}`"), Support.BOUNDED
        if order:
            support = Support.ORDERED
        phys = plates + item
        self._check_one_sharded(ir.Axes(plates, item), s.span, f"`{s.name}`")
        if spec.event_rank and any(self._is_sharded(d) for d in item[len(item) - spec.event_rank:]):
            self.sink.error(f"the event dim of {spec.name} cannot be sharded", s.span)
            raise Reported
        sharded = next((d for d in phys if self._is_sharded(d)), None)
        self._define(self._var(s, s.name, ir.Kind.LATENT, "real", plates, phys, dist=dist, support=support,
                               support_check=support_check(dist), sharded_dim=sharded, latent=True, bounds=bounds,
                               order=order),
                     s.name_span)
