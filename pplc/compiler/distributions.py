"""The distributions .ppl knows: TFP's names, parameters in TFP's order, supports."""
from __future__ import annotations

from dataclasses import dataclass, field

from .supports import Support


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
    support: Support = Support.REAL
    strict_support: bool = False  # a positive support excludes 0 (the log density is -inf there)
    tfp: str = ""  # the constructor in generated code
    cdf: bool = False  # TFP computes its log_cdf and log_survival_function (truncation to bounds is normalised)

    @property
    def constructor(self) -> str:
        return self.tfp or f"tfd.{self.name}"


def _d(name, params, **kw):
    return DistSpec(name, tuple(params), **kw)


DISTRIBUTIONS: dict[str, DistSpec] = {d.name: d for d in [
    _d("Normal", ["loc", "scale"], required=("loc", "scale"), cdf=True),
    _d("HalfNormal", ["scale"], required=("scale",), cdf=True, support=Support.POSITIVE),
    _d("Cauchy", ["loc", "scale"], required=("loc", "scale"), cdf=True),
    _d("HalfCauchy", ["loc", "scale"], required=("loc", "scale"), cdf=True, support=Support.POSITIVE),
    _d("StudentT", ["df", "loc", "scale"], required=("df", "loc", "scale"), cdf=True),
    _d("LogNormal", ["loc", "scale"], required=("loc", "scale"), cdf=True, support=Support.POSITIVE, strict_support=True),
    _d("Exponential", ["rate"], required=("rate",), cdf=True, support=Support.POSITIVE),
    _d("Gamma", ["concentration", "rate"], required=("concentration", "rate"), cdf=True, support=Support.POSITIVE,
       strict_support=True),
    _d("InverseGamma", ["concentration", "scale"], required=("concentration", "scale"), cdf=True, support=Support.POSITIVE,
       strict_support=True),
    _d("Beta", ["concentration1", "concentration0"], required=("concentration1", "concentration0"), cdf=True,
       support=Support.UNIT),
    _d("Uniform", ["low", "high"], required=("low", "high"), cdf=True, support=Support.INTERVAL),
    _d("Laplace", ["loc", "scale"], required=("loc", "scale"), cdf=True),
    _d("Bernoulli", ["logits", "probs"], one_of=("logits", "probs"), discrete=True, support=Support.BINARY),
    _d("Binomial", ["total_count", "logits", "probs"], required=("total_count",), one_of=("logits", "probs"),
       discrete=True, support=Support.BOUNDED_COUNT),
    _d("Poisson", ["rate", "log_rate"], one_of=("rate", "log_rate"), discrete=True, support=Support.COUNT),
    _d("Categorical", ["logits", "probs"], one_of=("logits", "probs"),
       param_event_rank={"logits": 1, "probs": 1}, discrete=True, support=Support.CATEGORICAL),
    _d("NegativeBinomial", ["total_count", "logits", "probs"], required=("total_count",),
       one_of=("logits", "probs"), discrete=True, support=Support.COUNT),
    _d("Dirichlet", ["concentration"], required=("concentration",), param_event_rank={"concentration": 1},
       event_rank=1, support=Support.SIMPLEX),
    _d("MultivariateNormalTriL", ["loc", "scale_tril"], required=("loc", "scale_tril"),
       param_event_rank={"loc": 1, "scale_tril": 2}, event_rank=1),
    _d("Flat", [], tfp="Flat"),
    _d("HalfFlat", [], support=Support.POSITIVE, tfp="HalfFlat"),
]}

# The site of a `target += EXPR` term: its log density is the term, whatever its (pinned) value.
TERM = DistSpec("LogDensityTerm", ("loc",), required=("loc",), tfp="LogDensityTerm")
