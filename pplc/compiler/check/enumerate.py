"""Discrete latents summed out by enumeration: `z ~ Categorical(theta)` inside a plate, one value per item.

The latent becomes its values, `arange(K)` along a dim of its own (transformed data, so the sampler never sees
it). Statements of the same plate item that use it are checked with that dim as one more (last) plate, so each
is computed for every value at once. Its prior term, the observed sites and `target +=` terms that depend on it
become one `target +=` site per item: log p(y_n) = logsumexp_k [log p(z_n = k) + log p(y_n | z_n = k)]
(`ir.SumOut`), and the posterior probabilities of the values are tracked as `<z>_probs` [plates, values]."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...dsl import ast
from ...dsl.spans import Span
from .. import ir
from ..distributions import TERM
from ..supports import Support
from .base import Reported, _children, has_shape, walk_statements


@dataclass
class Enumerated:
    """One discrete latent summed out: its values' dim, the plates it is drawn in, log p(z = k)."""

    name: str
    dim: str
    plates: tuple[str, ...]
    prior: ir.Expr  # log p(z = k): varies over `dim` (a plate while checking the statements that use it)
    span: Span
    observed: list[str] = field(default_factory=list)


class EnumerationChecker:
    """Sums discrete latents out: the latent's values, the context of the statements using it, the marginal."""

    def _groups(self) -> dict[str, Enumerated]:
        if not hasattr(self, "_enumerated"):
            self._enumerated: dict[str, Enumerated] = {}  # by the dim of the values
        return self._enumerated

    def _enum_error(self, msg, span, hint=None):
        self.sink.error(msg, span, hint=hint or "see docs/language.md, \"Discrete latents\", for what can be "
                        "summed out")
        raise Reported

    # ------------------------------------------------------------------ `z ~ Categorical(...)`
    def _enumerated_latent(self, s, ctx, dist: ir.DistCall, t) -> None:
        spec, groups = dist.spec, self._groups()
        plates = tuple(p.dim for p in ctx)
        size, base = self._enumerated_size(s, dist)
        inner = next((groups[d] for d in plates if d in groups), None)
        if inner is not None:
            self._enum_error(f"`{s.name}` would be a second discrete latent in one plate item, its distribution "
                             f"depending on `{inner.name}` (at {inner.span}); pplc sums out one per item",
                             dist.span)
        if not ctx:
            self._enum_error(f"`{s.name}` would be a discrete latent ({spec.name}) outside plates; pplc sums "
                             "discrete latents out one plate item at a time", dist.span,
                             hint=f"put it inside a plate (one value per item), or declare `data {s.name}: int` "
                                  "to observe it")
        other = next((g for g in groups.values() if g.plates == plates[:len(g.plates)]
                      or plates == g.plates[:len(plates)]), None)
        if other is not None:
            self._enum_error(f"`{s.name}` would be a second discrete latent in one item of plate "
                             f"`{plates[-1] if len(plates) <= len(other.plates) else other.plates[-1]}` "
                             f"(`{other.name}` is at {other.span}); pplc sums out one discrete latent per item",
                             s.span)
        if t is not None and (t.dtype != "int" or t.dims or t.bounds):
            self._enum_error(f"a discrete latent is declared `int` (one value per plate item), not "
                             f"`{self.source.line(t.span.line)[t.span.col - 1:t.span.end_col - 1]}`", t.span)
        if dist.batch_item:
            self._enum_error(f"the parameters of {spec.name} give `{s.name}` shape [{', '.join(dist.batch_item)}] "
                             "in each plate item; pplc sums out one discrete value per item", dist.span,
                             hint="index the parameters down to one item, or open a plate over the extra dim")
        dim = s.name
        while dim in self.dims or dim in self.data_decl_dims:
            dim += "_values"
        if base is None:
            self.dims[dim] = ir.Dim(dim, size, "literal", False, s.span)
        else:
            self.dims[dim] = ir.Dim(dim, None, "derived", False, s.span, base=base, offset=0)
        values = ir.EnumValues(ir.Axes((), (dim,)), "int", False)
        self._define(self._var(s, s.name, ir.Kind.TRANSFORMED, "int", (), (dim,), value=values), s.name_span)
        ref = self.as_real(ir.Ref(ir.Axes((dim,), ()), "int", False, s.name, (dim,), ir.Kind.TRANSFORMED))
        args = tuple(e for _, e in dist.params)
        order = plates + (dim,)
        have = {p for a in args for p in a.axes.plates} | {dim}
        prior = ir.DistFunction(ir.Axes(tuple(d for d in order if d in have), ()), "real",
                                any(a.latent for a in args), spec, tuple(n for n, _ in dist.params), args,
                                "log_prob", ref)
        groups[dim] = Enumerated(s.name, dim, plates, prior, s.span)

    def _enumerated_size(self, s, dist: ir.DistCall) -> tuple[int | None, str | None]:
        """The number of values of `dist` (known now), or the dim whose size it is."""
        spec, params = dist.spec, dict(dist.params)
        if spec.support == Support.BINARY:
            return 2, None
        if spec.support == Support.CATEGORICAL:
            k = (params.get("logits") or params.get("probs")).axes.item[-1]
            if self._is_sharded(k):
                self._enum_error(f"the categories of `{s.name}` are the sharded dim `{k}`", dist.span)
            size = self.dims[k].size if k in self.dims else None
            return (size, None) if size is not None else (None, k)
        n = params.get("total_count")
        if spec.support == Support.BOUNDED_COUNT and isinstance(n, ir.Lit) and float(n.value).is_integer():
            return int(n.value) + 1, None
        why = ("its total_count is not a number known when compiling" if spec.support == Support.BOUNDED_COUNT
               else "its values are unbounded" if spec.support == Support.COUNT
               else f"pplc does not enumerate the values of {spec.name}")
        self._enum_error(f"`{s.name}` would be a discrete latent ({spec.name}), but {why}: pplc sums out discrete "
                         "latents with finitely many values (Bernoulli, Categorical, Binomial with a literal "
                         "total_count)", dist.span, hint=f"declare `data {s.name}: int` to observe it")

    # ------------------------------------------------------------------ statements that use it
    def _enumeration_context(self, stmt, ctx):
        """`ctx`, with the dim of the values of the discrete latent that `stmt` uses (directly or through values
        computed from it) as one more plate; errors where the use is outside the latent's plate item."""
        groups = self._groups()
        if not groups or isinstance(stmt, ast.Plate):
            return ctx
        names, todo = set(), [e for e in (getattr(stmt, "value", None), getattr(stmt, "dist", None))
                              if isinstance(e, ast.Expr)]
        while todo:
            e = todo.pop()
            if isinstance(e, ast.Name):
                names.add(e.id)
            if isinstance(e, ast.Call) and e.func in self.functions:
                todo.append(self.functions[e.func].body)
            todo.extend(_children(e))
        hit = {}
        for n in sorted(names):
            var = self.vars.get(n)
            for d in var.phys if var is not None else ():
                if d in groups:
                    hit.setdefault(d, n)
        if not hit:
            return ctx
        plates = tuple(p.dim for p in ctx)
        for d, n in hit.items():
            g = groups[d]
            via = "" if n == g.name else f" (through `{n}`)"
            if plates[:len(g.plates)] != g.plates:
                self._enum_error(f"this statement uses the discrete latent `{g.name}`{via}, which is summed out "
                                 f"per item of plate `{g.plates[-1]}` (at {g.span}): only statements of that "
                                 "plate's items can use it", stmt.span,
                                 hint=f"use `{g.name}_probs`, its posterior probabilities, after sampling")
            if len(plates) > len(g.plates):
                self._enum_error(f"this statement uses the discrete latent `{g.name}`{via} inside plate "
                                 f"`{plates[-1]}`, nested in the plate `{g.plates[-1]}` it is drawn in; pplc "
                                 "sums it out with statements directly in its own plate", stmt.span,
                                 hint=f"give the data the inner dim as an item dim (`y ~ ...` with y of shape "
                                      f"[{plates[-1]}] per item of `{g.plates[-1]}`)")
        if len(hit) > 1:
            a, b = (groups[d].name for d in hit)
            self._enum_error(f"this statement uses two discrete latents, `{a}` and `{b}`; pplc sums out one per "
                             "plate item", stmt.span)
        (d,) = hit
        return ctx + (ir.Plate(d, False, groups[d].span),)

    def _enumerated_observation(self, s, ctx, dist: ir.DistCall, data: ir.Variable) -> bool:
        """`y ~ D(...)` where D depends on a summed-out latent: a `target +=` term of its log density, for every
        value of the latent (False: `ctx` has no such latent, the site is an ordinary one)."""
        groups = self._groups()
        enum = [p.dim for p in ctx if p.dim in groups]
        if not enum:
            return False
        g = groups[enum[0]]
        plates = tuple(p.dim for p in ctx if p.dim not in groups)
        spec = dist.spec
        if s.type is not None:
            self.sink.error(f"`{s.name}` is data; its type is already known", s.type.span)
            raise Reported
        if any(s.name in h.observed for h in groups.values()):
            self.sink.error(f"`{s.name}` is already observed; each data array is observed once", s.name_span)
            raise Reported
        view = self._view(data, ctx, s.name_span)
        missing = [d for d in plates if d not in view.plates]
        if missing:
            self.sink.error(f"`{s.name}` is observed inside plate `{missing[0]}` but has no dim `{missing[0]}` "
                            f"(it {has_shape(data.phys)})", s.name_span)
            raise Reported
        if spec.discrete and data.dtype == "real":
            self.sink.error(f"{spec.name} observes integers, but `{s.name}` is declared real", s.name_span)
            raise Reported
        self._match_batch(dist, view.item, s.name, s.dist.span, plates)
        value = ir.Ref(view, data.dtype, data.latent, data.name, data.phys, data.kind)
        v_batch = view.item[:len(view.item) - spec.event_rank] if spec.event_rank else view.item
        args = [value] + [x for _, x in dist.params]
        axes = ir.Axes(self._plates_union(ctx, *(x.axes for x in args)), v_batch)
        term = ir.DistFunction(axes, "real", any(x.latent for x in args), spec, tuple(n for n, _ in dist.params),
                               tuple(x for _, x in dist.params), "log_prob", self.as_real(value))
        g.observed.append(s.name)
        self._term_site(s, f"{s.name}_given_{g.name}", ctx, term)
        return True

    def _term_site(self, s, name, ctx, value: ir.Expr) -> None:
        """A `target +=` site of `value` (summed into the latent's marginal by `_sum_out`)."""
        phys = tuple(p.dim for p in ctx)
        value = self._fill_plates(value, ctx, s.span)
        dist = ir.DistCall(TERM, (("loc", value),), value.axes.item, s.span)
        self.order.append(self._var(s, name, ir.Kind.TARGET, "real", phys, phys + value.axes.item, dist=dist,
                                    latent=value.latent))

    # ------------------------------------------------------------------ after the last statement
    def _sum_out(self) -> None:
        """Each summed-out latent's terms (its prior, the observed sites and `target +=` terms using it) as one
        `target +=` site of the logsumexp over its values, and `<z>_probs`, the values' posterior probabilities."""
        for g in self._groups().values():
            uses = [v for v in self.order if g.dim in v.phys and v.name != g.name]
            for v in uses:
                if g.dim not in v.plates:  # its values seen as an item dim: not a statement of its plate item
                    self.sink.error(f"`{v.name}` uses the discrete latent `{g.name}` (at {g.span}) where pplc cannot "
                                    "sum it out", v.span, hint="use it in `~`, `=` and `target +=` statements "
                                    "directly in its plate (docs/language.md, \"Discrete latents\")")
                elif v.kind == ir.Kind.LATENT:
                    self.sink.error(f"`{v.name}` is a continuous latent that depends on the discrete latent "
                                    f"`{g.name}` (at {g.span}); pplc sums out discrete latents that only data "
                                    "and values computed from them depend on", v.span,
                                    hint="see docs/language.md, \"Discrete latents\"")
            again = [v for v in self.order if v.kind == ir.Kind.OBSERVED and v.name in g.observed]
            for v in again:
                self.sink.error(f"`{v.name}` is already observed (given `{g.name}`); each data array is observed "
                                "once", v.span)
            if self.sink.has_errors:
                continue
            terms = [v for v in uses if v.kind == ir.Kind.TARGET]
            self._replace_terms(g, terms)

    def _replace_terms(self, g: Enumerated, terms: list[ir.Variable]) -> None:
        order = g.plates + (g.dim,)
        joint = g.prior
        for v in terms:
            e = v.dist.params[0][1]
            if e.axes.item:
                e = self._reduce("sum", e, tuple(range(len(e.axes.item))), None)
            have = set(joint.axes.plates) | set(e.axes.plates)
            joint = ir.Elementwise(ir.Axes(tuple(d for d in order if d in have), ()), "real",
                                   joint.latent or e.latent, "+", (joint, e))
        if joint.axes.plates[-1:] != (g.dim,):
            raise AssertionError(joint.axes)
        marginal = ir.SumOut(ir.Axes(joint.axes.plates[:-1], ()), "real", joint.latent, joint)
        z = self.vars[g.name]
        taken = {getattr(st, "name", None) for st in walk_statements(self.program.statements)} | set(self.vars)
        name = f"{g.name}_marginal"
        while name in taken:
            name += "_"
        probs = f"{g.name}_probs"
        if probs in taken:
            self.sink.error(f"`{probs}` is taken: the posterior probabilities of the values of `{g.name}` are "
                            "reported under this name", g.span, hint=f"rename the model's `{probs}`")
            return
        sharded = next((d for d in g.plates if self._is_sharded(d)), None)
        value = marginal if marginal.axes.plates == g.plates else ir.Broadcast(
            ir.Axes(g.plates, ()), "real", marginal.latent, marginal)
        dist = ir.DistCall(TERM, (("loc", value),), (), z.dist.span if z.dist else z.span)
        target = ir.Variable(name, ir.Kind.TARGET, "real", g.plates, g.plates, z.span, z.line, z.source_line,
                             dist=dist, support=Support.REAL, sharded_dim=sharded, latent=value.latent)
        full = joint if joint.axes.plates == order else ir.Broadcast(ir.Axes(order, ()), "real", joint.latent, joint)
        diff = ir.Elementwise(full.axes, "real", full.latent, "-", (full, marginal))
        track = ir.Variable(probs, ir.Kind.TRACK, "real", g.plates, order, z.span, z.line, z.source_line,
                            value=ir.Elementwise(full.axes, "real", full.latent, "exp", (diff,)),
                            sharded_dim=sharded, latent=full.latent)
        at = max([self.order.index(v) for v in terms] + [self.order.index(z)])
        rest = [v for v in self.order[at + 1:]]
        head = [v for v in self.order[:at + 1] if not any(v is t for t in terms)]
        self.order[:] = head + [target, track] + rest
        self.vars[name], self.vars[probs] = target, track
