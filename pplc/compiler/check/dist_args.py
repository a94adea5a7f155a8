"""Distributions and dims as arguments: mixtures, hidden Markov models, their posterior marginals, hmm_marginal."""
from __future__ import annotations

import dataclasses

from ...dsl import ast
from .. import ir
from ..distributions import DISTRIBUTIONS, DistSpec
from ..supports import Support
from .base import Reported, has_shape

HMM_FUNCS = {"hmm_marginal", "hmm_hidden_state_prob"}  # (log_omega [T, K], Gamma [K, K], rho [K])
# of a HiddenMarkovModel, given a value: [T, K] state probabilities; [T] the most likely states (Viterbi)
DIST_METHODS = {"posterior_marginals", "posterior_mode"}
EXAMPLES = {"mixture_distribution": "`Categorical(probs = w)`", "initial_distribution": "`Categorical(probs = rho)`",
            "transition_distribution": "`Categorical(probs = Gamma)`"}


def classes_dim(d: ir.DistValue) -> str:
    """The categories dim of a Categorical argument: the last dim of its probs (or logits)."""
    return d.args[0].axes.item[-1]


class DistArgChecker:
    """Binds a distribution's parameters that are distributions (checked as after `~`, each an `ir.DistValue`
    whose axes are its batch) or dims (`ir.DimSize`), and checks how they fit together."""

    def _bind_params(self, spec: DistSpec, names, given, spans, ctx) -> tuple[DistSpec, list]:
        """(the spec, its support from its components' for a mixture or an HMM; the bound parameters)."""
        params, bad = [], False
        for p in names:
            try:
                if p in spec.dist_params:
                    params.append((p, self._dist_value(given[p], ctx, spec, p)))
                elif p in spec.dim_params:
                    params.append((p, self._dim_size(given[p], spec, p)))
                else:
                    # TFP's parameters are real: int data (a Binomial's total_count) is cast to the run's real dtype
                    params.append((p, self.as_real(self._exprs([given[p]], ctx)[0])))
            except Reported:
                bad = True
        if bad:
            raise Reported
        if not spec.dist_params:
            return spec, params
        args = dict(params)
        if spec.name == "MixtureSameFamily":
            self._mixture_fits(spec, args, dict(spans))
        else:
            self._hmm_fits(spec, args, dict(spans))
        inner = args[spec.support_from].spec
        # (values 0..K-1 whose K a mixture's support check cannot see: checked as counts)
        support = Support.COUNT if inner.support in ("categorical", "ordinal") else inner.support
        return dataclasses.replace(spec, support=support, discrete=inner.discrete,
                                   strict_support=inner.strict_support), params

    def _dist_value(self, node: ast.Expr, ctx, owner: DistSpec, pname: str) -> ir.DistValue:
        example = EXAMPLES.get(pname, "`Normal(mu, sigma)`")
        if not (isinstance(node, ast.Call) and node.func in DISTRIBUTIONS):
            self.sink.error(f"{owner.name} {pname} is a distribution, such as {example}", node.span)
            raise Reported
        inner = self._dist(node, ctx)
        spec = inner.spec
        if spec.name in ("Flat", "HalfFlat") or spec.observed_only or spec.event_rank:
            why = "is improper" if spec.name in ("Flat", "HalfFlat") else \
                "draws sequences" if spec.observed_only else "draws vectors"
            self.sink.error(f"{spec.name} {why}: it cannot be the {pname} of {owner.name}", node.span,
                            hint=f"give a distribution of scalars, such as {example}")
            raise Reported
        if pname in EXAMPLES and spec.name != "Categorical":
            self.sink.error(f"the {pname} of {owner.name} is a Categorical, not {spec.name}", node.span,
                            hint=f"write {EXAMPLES[pname]}")
            raise Reported
        args = tuple(x for _, x in inner.params)
        axes = ir.Axes(self._plates_union(ctx, *(x.axes for x in args)), inner.batch_item)
        return ir.DistValue(axes, "dist", any(x.latent for x in args), spec, tuple(n for n, _ in inner.params), args)

    def _dim_size(self, node: ast.Expr, owner: DistSpec, pname: str) -> ir.DimSize:
        dim = self._dim_arg(node, f"{owner.name} {pname}")
        if self._is_sharded(dim):
            self.sink.error(f"the time dim `{dim}` of {owner.name} is sharded: a sequence cannot be split across "
                            "devices", node.span, hint="shard the plate over the sequences instead, with the time "
                            "dim last: `plate series sharded over devices { y ~ HiddenMarkovModel(..., T) }`")
            raise Reported
        return ir.DimSize(ir.Axes(), "int", False, dim)

    def _last_dim_is(self, d: ir.DistValue, k: str, what: str, span, owner: str) -> None:
        if not d.axes.item or d.axes.item[-1] != k:
            self.sink.error(f"the {what} of {owner} has batch shape [{', '.join(d.axes.item)}], but its last dim must "
                            f"be the states dim `{k}`", span,
                            hint=f"one {'component' if owner == 'MixtureSameFamily' else 'distribution'} per "
                                 f"state: parameters with last dim `{k}`, such as `Normal(mu, sigma)` with "
                                 f"`mu: real[{k}]`")
            raise Reported

    def _mixture_fits(self, spec, args, spans) -> None:
        k = classes_dim(args["mixture_distribution"])
        self._last_dim_is(args["components_distribution"], k, "components_distribution", spans[
            "components_distribution"], spec.name)

    def _hmm_fits(self, spec, args, spans) -> None:
        k = classes_dim(args["initial_distribution"])
        trans = args["transition_distribution"]
        if classes_dim(trans) != k:
            self.sink.error(f"the transition_distribution of {spec.name} has categories dim `{classes_dim(trans)}` "
                            f"but the initial_distribution has `{k}`", spans["transition_distribution"])
            raise Reported
        self._last_dim_is(trans, k, "transition_distribution (one row per state)", spans["transition_distribution"],
                          spec.name)
        self._last_dim_is(args["observation_distribution"], k, "observation_distribution",
                          spans["observation_distribution"], spec.name)

    # --- HiddenMarkovModel(...).posterior_marginals(y), .posterior_mode(y)
    def _dist_method(self, e: ast.Method, ctx) -> ir.Expr:
        if e.kwargs or len(e.args) != 1:
            self.sink.error(f"`.{e.method}` takes one value (positional)", e.span)
            raise Reported
        if e.value.func != "HiddenMarkovModel":
            self.sink.error(f"`.{e.method}` is a method of HiddenMarkovModel, not of {e.value.func}", e.method_span)
            raise Reported
        dist = self._dist(e.value, ctx)
        (value,) = self._exprs(e.args, ctx)
        (t,) = self._event_dims(dist)
        if not value.axes.item or value.axes.item[-1] != t:
            self.sink.error(f"the observations of this HiddenMarkovModel have the time dim `{t}` last, but this "
                            f"value {has_shape(value.axes.item)}", e.args[0].span)
            raise Reported
        item = self._broadcast(dist.batch_item, value.axes.item[:-1], e.span, f"HiddenMarkovModel(...).{e.method}",
                               "the distribution's parameters", "the value")
        args = [value] + [x for _, x in dist.params]
        k = classes_dim(dict(dist.params)["initial_distribution"])
        mode = e.method == "posterior_mode"
        axes = ir.Axes(self._plates_union(ctx, *(x.axes for x in args)), item + ((t,) if mode else (t, k)))
        self._check_one_sharded(axes, e.span, f"the result of `.{e.method}`")
        return ir.PosteriorMarginals(axes, "int" if mode else "real", any(x.latent for x in args), dist.spec,
                                     tuple(n for n, _ in dist.params), tuple(x for _, x in dist.params), e.method,
                                     self.as_real(value))

    # --- hmm_marginal(log_omega, Gamma, rho), hmm_hidden_state_prob(...)
    def _hmm_call(self, e: ast.Call, ctx) -> ir.Expr:
        f = e.func
        if e.kwargs or len(e.args) != 3:
            self.sink.error(f"`{f}(log_omega, Gamma, rho)` takes 3 arguments, got {len(e.args) + len(e.kwargs)}",
                            e.span)
            raise Reported
        lo, gamma, rho = (self.as_real(a) for a in self._exprs(e.args, ctx))
        if len(lo.axes.item) != 2:
            self.sink.error(f"the log_omega of `{f}` is [T, K]: each step's log density in each state, but this "
                            f"one {has_shape(lo.axes.item)}", e.args[0].span,
                            hint="compute it inside a plate over the time dim: `plate T { lp = Normal(mu, sigma)."
                                 "log_prob(y) }` gives lp: [T, K] for mu: real[K]")
            raise Reported
        t, k = lo.axes.item
        for node, x, want, what in ((e.args[1], gamma, (k, k), "Gamma (the transition matrix)"),
                                    (e.args[2], rho, (k,), "rho (the initial state probabilities)")):
            if x.axes.item != want:
                self.sink.error(f"the {what} of `{f}` has shape [{', '.join(want)}] (log_omega "
                                f"{has_shape(lo.axes.item)}), but this one {has_shape(x.axes.item)}", node.span)
                raise Reported
        for d in (t, k):
            if self._is_sharded(d):
                self.sink.error(f"the dim `{d}` of `{f}`'s log_omega is sharded: a sequence and its states cannot be "
                                "split across devices", e.args[0].span,
                                hint="shard a plate over the sequences instead")
                raise Reported
        plates = self._plates_union(ctx, lo.axes, gamma.axes, rho.axes)
        item = () if f == "hmm_marginal" else (t, k)
        return ir.Function(ir.Axes(plates, item), "real", any(x.latent for x in (lo, gamma, rho)), f,
                           (lo, gamma, rho), ())
