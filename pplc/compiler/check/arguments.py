"""A distribution's arguments: positional and keyword binding, aliases, required and one-of, batch shapes."""
from __future__ import annotations

from ...dsl import ast
from ...dsl.diagnostics import did_you_mean
from ...dsl.spans import Span
from .. import ir
from ..distributions import DISTRIBUTIONS
from ..supports import Support, SupportCheck
from .base import Reported, has_shape
from .constrained import square_event
from .param_values import check_param_values
from .shapes import FUNCTIONS

# Parameter names from Stan, PyMC and textbooks, and TFP's names for them.
PARAM_ALIASES = {"mean": "loc", "mu": "loc", "location": "loc", "sd": "scale", "sigma": "scale", "std": "scale",
                 "stddev": "scale", "lambda": "rate", "lam": "rate", "beta": "rate", "alpha": "concentration",
                 "shape": "concentration", "p": "probs", "prob": "probs", "theta": "probs", "n": "total_count",
                 "N": "total_count", "nu": "df", "lower": "low", "upper": "high", "lb": "low", "ub": "high"}


def _bound(e: ir.Expr | None) -> float | None:
    """The value of a literal (or const) distribution parameter, else None."""
    return float(e.value) if isinstance(e, ir.Lit) and not isinstance(e.value, bool) else None


def support_check(dist: ir.DistCall) -> SupportCheck:
    """What a value of `dist` must satisfy: its support, with the bounds and the classes dim the model fixes."""
    spec, params = dist.spec, dict(dist.params)
    low = high = classes_dim = None
    if spec.support in (Support.BOUNDED_COUNT, Support.COUNT_VECTOR):
        high = _bound(params.get("total_count"))
    elif spec.support == Support.INTERVAL:
        low, high = _bound(params.get("low")), _bound(params.get("high"))
    elif spec.support == Support.CATEGORICAL:
        classes_dim = (params.get("logits") or params.get("probs")).axes.item[-1]
    elif spec.support == Support.ORDINAL:  # K-1 cutpoints: outcomes 0..K-1
        classes_dim = params["cutpoints"].axes.item[-1]
    return SupportCheck(spec.support, low, high, classes_dim, spec.strict_support)


class ArgumentChecker:
    """Binds `Dist(...)` after `~` to its TFP parameters and checks their shapes against the variable's."""

    def _dist(self, e: ast.Expr, ctx) -> ir.DistCall:
        if not isinstance(e, ast.Call):
            self.sink.error("expected a distribution after `~`, such as `Normal(0, 1)`", e.span)
            raise Reported
        spec = DISTRIBUTIONS.get(e.func)
        if spec is None:
            hint = did_you_mean(e.func, DISTRIBUTIONS) or "the distributions are " + ", ".join(sorted(DISTRIBUTIONS))
            msg = f"`{e.func}` is a function, not a distribution" if e.func in FUNCTIONS else \
                f"unknown distribution `{e.func}`"
            self.sink.error(msg, e.func_span, hint=hint)
            raise Reported
        given: dict[str, ast.Expr] = {}
        spans: dict[str, Span] = {}
        if len(e.args) > len(spec.params):
            self.sink.error(f"{spec.name} takes at most {len(spec.params)} positional argument"
                            f"{'s' if len(spec.params) != 1 else ''} ({', '.join(spec.params) or 'none'}), "
                            f"got {len(e.args)}", e.args[len(spec.params)].span,
                            hint=f"{spec.name}({', '.join(spec.params)})")
            raise Reported
        for pname, a in zip(spec.params, e.args):
            given[pname] = a
            spans[pname] = a.span
        for kw in e.kwargs:
            if kw.name not in spec.params:
                alias = PARAM_ALIASES.get(kw.name)
                if alias in spec.params:
                    hint = f"did you mean `{alias}`? pplc uses TFP's names: {spec.name}({', '.join(spec.params)})"
                else:
                    hint = did_you_mean(kw.name, spec.params) or \
                        f"its parameters are {', '.join(spec.params) or 'none'}: {spec.name}({', '.join(spec.params)})"
                self.sink.error(f"{spec.name} has no parameter `{kw.name}`", kw.span, hint=hint)
                raise Reported
            if kw.name in given:
                how = "by position and by name" if kw.name in spec.params[:len(e.args)] else "twice by name"
                self.sink.error(f"{spec.name} parameter `{kw.name}` is given twice ({how})", kw.span)
                raise Reported
            given[kw.name] = kw.value
            spans[kw.name] = kw.span
        missing = [p for p in spec.required if p not in given]
        if missing:
            self.sink.error(f"{spec.name} is missing its parameter{'s' if len(missing) > 1 else ''} "
                            f"{' and '.join(f'`{m}`' for m in missing)}", e.span,
                            hint=f"{spec.name}({', '.join(spec.params)})")
            raise Reported
        if spec.one_of:
            chosen = [p for p in spec.one_of if p in given]
            if len(chosen) != 1:
                self.sink.error(f"{spec.name} takes exactly one of {' or '.join(f'`{p}`' for p in spec.one_of)}"
                                + (", not both" if len(chosen) > 1 else ""), e.span,
                                hint=f"give one of them: {spec.name}({spec.one_of[0]} = ...) or "
                                     f"{spec.name}({spec.one_of[1]} = ...)")
                raise Reported
        names = [p for p in spec.params if p in given]
        spec, params = self._bind_params(spec, names, given, spans, ctx)  # (dist_args.py: distributions, dims too)
        check_param_values(self, spec, params, spans)  # literal and const parameters in their ranges
        batch, first = (), None
        for pname, pe in params:
            r = spec.param_event_rank.get(pname, 0)
            if r and len(pe.axes.item) < r:
                what = "the categories" if spec.name == "Categorical" else "the event"
                self.sink.error(f"{spec.name} {pname} needs a last dim over {what}, but it is a scalar",
                                spans[pname])
                raise Reported
            p_item = pe.axes.item[:len(pe.axes.item) - r] if r else pe.axes.item
            batch = self._broadcast(batch, p_item, spans[pname], f"the parameters of {spec.name}",
                                    f"`{first}`", f"`{pname}`")
            first = first or pname
        return ir.DistCall(spec, tuple(params), batch, e.span, tuple(spans.items()))

    def _event_dims(self, dist: ir.DistCall) -> tuple[str, ...]:
        spec = dist.spec
        if not spec.event_rank:
            return ()
        for name in spec.dim_params:  # an HMM's num_steps: the time dim of its value
            return (dict(dist.params)[name].dim,)
        for name, e in dist.params:
            if spec.param_event_rank.get(name):
                return e.axes.item[len(e.axes.item) - spec.event_rank:]
        return ()

    def _match_batch(self, dist: ir.DistCall, item: tuple[str, ...], name: str, span: Span, plates=()):
        """The distribution's batch must broadcast to the variable's item shape (less its event dims)."""
        spec = dist.spec
        square_event(self, dist, item, name, span)  # CholeskyLKJ's [K, K]
        want = item[:len(item) - spec.event_rank] if spec.event_rank else item
        if spec.event_rank:
            ev = self._event_dims(dist)
            have = item[len(item) - spec.event_rank:]
            if ev and ev != have:
                self.sink.error(f"a draw of {spec.name} has shape [{', '.join(ev)}] (from its parameters) but "
                                f"`{name}` {has_shape(item)}", span)
                raise Reported
        for pname, e in dist.params:
            r = spec.param_event_rank.get(pname, 0)
            p_item = e.axes.item[:len(e.axes.item) - r] if r else e.axes.item
            if len(p_item) > len(want) or any(a != b and a != "1" for a, b in zip(reversed(p_item), reversed(want))):
                full = e.axes.item
                inside = (f" (one item of plate{'s' if len(plates) > 1 else ''} "
                          f"{', '.join(f'`{p}`' for p in plates)})") if plates else ""
                self.sink.error(f"{spec.name} {pname} {has_shape(full)} but `{name}` {has_shape(item)}{inside}",
                                dict(dist.param_spans).get(pname, span),
                                hint="the parameters must broadcast to the variable's shape"
                                     + (": inside a plate, both are seen one plate item at a time" if plates else ""))
                raise Reported
