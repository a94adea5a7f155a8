"""A distribution's log density functions in expressions: `Normal(mu, sigma).log_prob(y)`, `.log_cdf`, `.log_survival`."""
from __future__ import annotations

from ...dsl import ast
from ...dsl.diagnostics import did_you_mean
from .. import ir
from ..distributions import DISTRIBUTIONS
from .base import Reported, has_shape
from .dist_args import DIST_METHODS

# .ppl's method -> TFP's, and the distributions that have it (log_cdf and log_survival: those TFP computes).
METHODS = {"log_prob": "log_prob", "log_cdf": "log_cdf", "log_survival": "log_survival_function"}
STAN_NAMES = {"lpdf": "log_prob", "lpmf": "log_prob", "lcdf": "log_cdf", "lccdf": "log_survival",
              "logpdf": "log_prob", "log_pdf": "log_prob", "logcdf": "log_cdf", "logsf": "log_survival",
              "log_ccdf": "log_survival", "log_sf": "log_survival"}


class DistFunctionChecker:
    """Types `DIST(ARGS).log_prob(x)` and the like: the distribution's batch broadcast with the value's shape."""

    def _method(self, e: ast.Method, ctx) -> ir.Expr:
        if not (isinstance(e.value, ast.Call) and e.value.func in DISTRIBUTIONS):
            self.sink.error(f"`.{e.method}(...)` is a method of distributions, as in `Normal(0, 1).log_prob(x)`",
                            e.method_span)
            raise Reported
        if e.method in DIST_METHODS:
            return self._dist_method(e, ctx)
        if e.method not in METHODS:
            alias = STAN_NAMES.get(e.method)
            self.sink.error(f"distributions have no method `{e.method}`; they have "
                            f"{', '.join(f'`{m}`' for m in METHODS)}", e.method_span,
                            hint=f"did you mean `{alias}`?" if alias else did_you_mean(e.method, METHODS))
            raise Reported
        if e.kwargs or len(e.args) != 1:
            self.sink.error(f"`.{e.method}` takes one value (positional), got "
                            f"{len(e.args) + len(e.kwargs)} argument{'s' * (len(e.args) + len(e.kwargs) != 1)}",
                            e.span)
            raise Reported
        dist = self._dist(e.value, ctx)
        spec = dist.spec
        if spec.name in ("Flat", "HalfFlat"):
            self.sink.error(f"{spec.name} is improper: it has no {e.method}", e.value.span)
            raise Reported
        if spec.dimension:  # its size comes from a declared type (`L: cholesky_corr[K] ~ CholeskyLKJ(eta)`)
            self.sink.error(f"pplc has no `{e.method}` of {spec.name} in expressions", e.value.span,
                            hint=f"declare the latent with its prior: `L: cholesky_corr[K] ~ {spec.name}(eta)`")
            raise Reported
        if e.method != "log_prob" and not spec.cdf:
            self.sink.error(f"pplc has no `{e.method}` of {spec.name}", e.method_span,
                            hint="the distributions with a CDF: " + ", ".join(
                                sorted(n for n, d in DISTRIBUTIONS.items() if d.cdf)))
            raise Reported
        (value,) = self._exprs(e.args, ctx)
        if spec.event_rank:
            event = value.axes.item[len(value.axes.item) - spec.event_rank:]
            want = self._event_dims(dist)
            if len(value.axes.item) < spec.event_rank or (want and event != want):
                self.sink.error(f"a value of {spec.name} has shape [{', '.join(want)}] (from its parameters), "
                                f"but this one {has_shape(value.axes.item)}", e.args[0].span)
                raise Reported
            v_batch = value.axes.item[:len(value.axes.item) - spec.event_rank]
        else:
            v_batch = value.axes.item
        item = self._broadcast(dist.batch_item, v_batch, e.span, f"{spec.name}(...).{e.method}",
                               "the distribution's parameters", "the value")
        args = [value] + [x for _, x in dist.params]
        axes = ir.Axes(self._plates_union(ctx, *(x.axes for x in args)), item)
        self._check_one_sharded(axes, e.span, f"the result of `.{e.method}`")
        return ir.DistFunction(axes, "real", any(x.latent for x in args), spec, tuple(n for n, _ in dist.params),
                               tuple(x for _, x in dist.params), METHODS[e.method], self.as_real(value))
