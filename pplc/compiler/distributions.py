"""The distributions .ppl knows: TFP's names, parameters in TFP's order, supports."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DistSpec:
    """One distribution: its TFP constructor parameters and the support of its values."""

    name: str
    params: tuple[str, ...]  # in TFP's constructor order (positional arguments map here)
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()  # exactly one of these must be given (logits | probs)
    param_event_rank: dict = field(default_factory=dict)  # e.g. Categorical logits: 1
    event_rank: int = 0  # rank of one value (Dirichlet: 1)
    discrete: bool = False
    support: str = "real"  # real positive unit interval simplex binary count categorical bounded_count
    tfp: str = ""  # the constructor in generated code

    @property
    def constructor(self) -> str:
        return self.tfp or f"tfd.{self.name}"


def _d(name, params, **kw):
    return DistSpec(name, tuple(params), **kw)


DISTRIBUTIONS: dict[str, DistSpec] = {d.name: d for d in [
    _d("Normal", ["loc", "scale"], required=("loc", "scale")),
    _d("HalfNormal", ["scale"], required=("scale",), support="positive"),
    _d("Cauchy", ["loc", "scale"], required=("loc", "scale")),
    _d("HalfCauchy", ["loc", "scale"], required=("loc", "scale"), support="positive"),
    _d("StudentT", ["df", "loc", "scale"], required=("df", "loc", "scale")),
    _d("LogNormal", ["loc", "scale"], required=("loc", "scale"), support="positive"),
    _d("Exponential", ["rate"], required=("rate",), support="positive"),
    _d("Gamma", ["concentration", "rate"], required=("concentration", "rate"), support="positive"),
    _d("InverseGamma", ["concentration", "scale"], required=("concentration", "scale"), support="positive"),
    _d("Beta", ["concentration1", "concentration0"], required=("concentration1", "concentration0"),
       support="unit"),
    _d("Uniform", ["low", "high"], required=("low", "high"), support="interval"),
    _d("Laplace", ["loc", "scale"], required=("loc", "scale")),
    _d("Bernoulli", ["logits", "probs"], one_of=("logits", "probs"), discrete=True, support="binary"),
    _d("Binomial", ["total_count", "logits", "probs"], required=("total_count",), one_of=("logits", "probs"),
       discrete=True, support="bounded_count"),
    _d("Poisson", ["rate", "log_rate"], one_of=("rate", "log_rate"), discrete=True, support="count"),
    _d("Categorical", ["logits", "probs"], one_of=("logits", "probs"),
       param_event_rank={"logits": 1, "probs": 1}, discrete=True, support="categorical"),
    _d("NegativeBinomial", ["total_count", "logits", "probs"], required=("total_count",),
       one_of=("logits", "probs"), discrete=True, support="count"),
    _d("Dirichlet", ["concentration"], required=("concentration",), param_event_rank={"concentration": 1},
       event_rank=1, support="simplex"),
    _d("Flat", [], tfp="Flat"),
    _d("HalfFlat", [], support="positive", tfp="HalfFlat"),
]}

SUPPORT_WORDS = {
    "real": "the real line", "positive": "positive reals", "unit": "the interval (0, 1)",
    "interval": "the interval (low, high)", "simplex": "the simplex", "binary": "0 or 1",
    "count": "non-negative integers", "categorical": "0, 1, ..., K-1",
    "bounded_count": "0, 1, ..., total_count",
}
