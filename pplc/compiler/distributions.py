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
    dist_params: tuple[str, ...] = ()  # parameters that are distributions (check/dist_args.py)
    dim_params: tuple[str, ...] = ()  # parameters that are dims (an HMM's num_steps: the time dim of its value)
    support_from: str = ""  # the distribution parameter whose support (and discreteness) is this one's
    observed_only: bool = False  # no latent can be drawn from it
    dimension: bool = False  # the constructor takes the size of the event's last dim first (CholeskyLKJ)
    positive: tuple[str, ...] = ()  # parameters that must be > 0 (checked where literal or const: param_values.py)
    nonnegative: tuple[str, ...] = ()  # parameters that must be >= 0 (the same)

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
    # (the next ten: issue 10's; SkewNormal, OrderedLogistic and CholeskyLKJ are codegen/prelude_dists.py's)
    _d("Weibull", ["concentration", "scale"], required=("concentration", "scale"), cdf=True, support=Support.POSITIVE,
       positive=("concentration", "scale")),
    _d("Logistic", ["loc", "scale"], required=("loc", "scale"), cdf=True, positive=("scale",)),
    _d("SkewNormal", ["loc", "scale", "skewness"], required=("loc", "scale", "skewness"), cdf=True, tfp="SkewNormal",
       positive=("scale",)),
    _d("HalfStudentT", ["df", "loc", "scale"], required=("df", "loc", "scale"), cdf=True, support=Support.POSITIVE,
       positive=("df", "scale")),
    _d("VonMises", ["loc", "concentration"], required=("loc", "concentration"), cdf=True, support=Support.ANGLE,
       nonnegative=("concentration",)),
    _d("GeneralizedExtremeValue", ["loc", "scale", "concentration"], required=("loc", "scale", "concentration"),
       cdf=True, support=Support.EXTREME, positive=("scale",)),
    _d("BetaBinomial", ["total_count", "concentration1", "concentration0"],
       required=("total_count", "concentration1", "concentration0"), discrete=True, support=Support.BOUNDED_COUNT,
       positive=("concentration1", "concentration0"), nonnegative=("total_count",)),
    _d("Multinomial", ["total_count", "logits", "probs"], required=("total_count",), one_of=("logits", "probs"),
       param_event_rank={"logits": 1, "probs": 1}, event_rank=1, discrete=True, support=Support.COUNT_VECTOR,
       nonnegative=("total_count",)),
    _d("OrderedLogistic", ["cutpoints", "loc"], required=("cutpoints", "loc"), param_event_rank={"cutpoints": 1},
       discrete=True, support=Support.ORDINAL, tfp="OrderedLogistic"),
    _d("CholeskyLKJ", ["concentration"], required=("concentration",), event_rank=2, support=Support.CHOLESKY_CORR,
       dimension=True, tfp="CholeskyLKJ", positive=("concentration",)),
    _d("MixtureSameFamily", ["mixture_distribution", "components_distribution"],
       required=("mixture_distribution", "components_distribution"), param_event_rank={"components_distribution": 1},
       dist_params=("mixture_distribution", "components_distribution"), support_from="components_distribution",
       tfp="MixtureSameFamily"),
    _d("HiddenMarkovModel", ["initial_distribution", "transition_distribution", "observation_distribution",
                             "num_steps"], required=("initial_distribution", "transition_distribution",
                                                     "observation_distribution", "num_steps"),
       param_event_rank={"transition_distribution": 1, "observation_distribution": 1}, event_rank=1,
       dist_params=("initial_distribution", "transition_distribution", "observation_distribution"),
       dim_params=("num_steps",), support_from="observation_distribution", observed_only=True,
       tfp="HiddenMarkovModel"),
    _d("Flat", [], tfp="Flat"),
    _d("HalfFlat", [], support=Support.POSITIVE, tfp="HalfFlat"),
]}

# The site of a `target += EXPR` term: its log density is the term, whatever its (pinned) value.
TERM = DistSpec("LogDensityTerm", ("loc",), required=("loc",), tfp="LogDensityTerm")
