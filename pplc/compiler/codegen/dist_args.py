"""Distributions and dims as arguments in generated code: mixtures' components, HMMs, posterior marginals."""
from __future__ import annotations

from .. import ir
from ..lower import is_literal

ATOM = 6  # exprs.PREC["atom"]: a call binds tightest


class DistArgGen:
    """ExprGen's part for `ir.DistValue`, `ir.DimSize`, `ir.PosteriorMarginals` and the hmm_ functions."""

    def lift_dist_arg(self, e: ir.DistValue | ir.DimSize, plates, rank) -> tuple[str, int]:
        """A distribution argument whose batch lines up with [..., plates, item of `rank` dims]: each of its
        parameters lifted so (a distribution cannot be indexed); a dim's size as it is."""
        if isinstance(e, ir.DimSize):
            return self.dim(e.dim), ATOM
        return self._dist_call(e.spec, e.names, e.args, plates, rank), ATOM

    def _dist_call(self, spec, names, args, plates, rank) -> str:
        params = []
        for name, a in zip(names, args):
            if plates is None:
                code = self.code(a)
            else:
                code = self.lift(a, plates, rank + spec.param_event_rank.get(name, 0))[0]
            if is_literal(a):  # (TFP would make a distribution of Python numbers float32 under --x64 too)
                self.helpers.add("real")
                code = f"real({code})"
            params.append(f"{name}={code}")
        if "." not in spec.constructor:  # the prelude's
            self.helpers.add(spec.constructor)
        return f"{spec.constructor}({', '.join(params)})"

    def _DistValue(self, e: ir.DistValue):
        return self._dist_call(e.spec, e.names, e.args, None, 0), ATOM

    def _DimSize(self, e: ir.DimSize):
        return self.dim(e.dim), ATOM

    def _PosteriorMarginals(self, e: ir.PosteriorMarginals):
        mode = e.method == "posterior_mode"  # [..., time], else [..., time, states]
        plates, rank = e.axes.plates, len(e.axes.item) - (1 if mode else 2)  # the batch's rank
        hmm = self._dist_call(e.spec, e.names, e.args, plates, rank)
        value = self.lift(e.value, plates, rank + 1)[0]
        return f"{hmm}.{e.method}({value})" + ("" if mode else ".probs_parameter()"), ATOM

    def hmm_function(self, e: ir.Function):
        """hmm_marginal(log_omega [T, K], Gamma [K, K], rho [K]) and hmm_hidden_state_prob: the prelude's."""
        plates = e.axes.plates
        lo, gamma, rho = e.args
        self.helpers.add(e.func)
        args = [self.lift(lo, plates, 2)[0], self.lift(gamma, plates, 2)[0], self.lift(rho, plates, 1)[0]]
        return f"{e.func}({', '.join(args)})", ATOM
