"""How each random site is built from TFP distributions, decided once as frozen data that codegen renders."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from . import ir
from .supports import SUPPORTS, Support


COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
# Sites whose TFP log_prob costs more than it needs to, and the prelude's subclass that computes the same value
# cheaper (by distribution and the parameters given).
FASTER = {("Bernoulli", ("logits",)): "BernoulliLogits"}


def is_literal(e: ir.Expr) -> bool:
    """An expression of literals only, such as `-1` or `1 / 2`: a Python number in generated code."""
    if isinstance(e, ir.Lit):
        return True
    return isinstance(e, ir.Elementwise) and e.op in ("+", "-", "*", "/", "**", "neg", *COMPARISONS) and all(
        is_literal(a) for a in e.args)


class ParamForm(enum.StrEnum):
    """How a distribution parameter appears in the constructor call."""

    REAL = "real"  # every parameter of the site is a literal: `real(...)`, an array of the run's real dtype
    LITERAL = "literal"  # a literal beside parameters that are not: a Python float
    AS_IS = "as_is"  # an iid site (`tfd.Sample` adds the batch dims): the expression as it is
    LIFTED = "lifted"  # lined up with the site's batch: size-1 axes added up to [..., plates, item of `rank`]
    DIM = "dim"  # the size of dim `dim` (CholeskyLKJ's `dimension`, from the value's last dim)


@dataclass(frozen=True)
class Param:
    """One given parameter of a site's distribution."""

    name: str  # TFP's keyword
    expr: ir.Expr
    form: ParamForm
    plates: tuple[str, ...] = ()  # LIFTED: the plates it lines up with
    rank: int = 0  # LIFTED: the item rank it lines up with (the batch's, plus the parameter's event rank)
    dim: str = ""  # DIM: the dim whose size it is


# ----------------------------------------------------------------------------- layers, innermost first
@dataclass(frozen=True)
class Sample:
    """`tfd.Sample`: iid draws over these dims (no parameter varies over them)."""

    shape: tuple[str, ...]


@dataclass(frozen=True)
class BatchBroadcast:
    """`tfd.BatchBroadcast`: the batch widened to these dims (some parameter does not vary over all of them)."""

    shape: tuple[str, ...]


@dataclass(frozen=True)
class Masked:
    """`tfd.Masked`: padded items of the sharded `dim` left out; `pad_value` (zero, one, half, mean) is what
    TFP puts at them, a fixed point of the support where the log density is finite."""

    dim: str
    layout: tuple[str, ...]  # the batch dims the mask lines up with (right-aligned)
    pad_value: str


@dataclass(frozen=True)
class Independent:
    """`tfd.Independent`: the last `ndims` batch dims become event dims."""

    ndims: int


@dataclass(frozen=True)
class Sharded:
    """`tfed.Sharded`: the site's log density is summed across the devices of the shard axes."""


Layer = Sample | BatchBroadcast | Masked | Independent | Sharded


@dataclass(frozen=True)
class Site:
    """A random site of the model: the distribution, its parameters and the layers around it."""

    name: str
    binds: bool  # a latent: the coroutine binds its value
    constructor: str  # the distribution's constructor in generated code
    params: tuple[Param, ...]
    positional: bool  # the parameters are given in TFP's order: no keywords needed
    layers: tuple[Layer, ...]  # innermost first
    root: bool  # no parameter depends on a latent: `Root(...)` in the coroutine
    bounds: tuple[Param | None, Param | None] | None = None  # declared (low, high): `Bounded(dist, low, high)`
    normalize: bool = False  # bounded: the log density renormalised over the bounds (truncation, as Stan)
    order: str | None = None  # `ordered`/`positive_ordered`: the site wrapped in `Ordered(...)`


def lower_site(v: ir.Variable) -> Site:
    """The layers of latent or observed `v`. The distribution's batch covers [plates, item] (less its event
    dims); those become event dims: iid sites through `tfd.Sample`, others through `tfd.Independent` (with
    `tfd.BatchBroadcast` when no parameter varies over some batch dim, and `tfd.Masked` and `tfed.Sharded`
    when the site's stored layout has a sharded dim)."""
    dist = v.dist
    spec = dist.spec
    batch = v.phys[:len(v.phys) - spec.event_rank] if spec.event_rank else v.phys
    brank = len(batch) - len(v.plates)
    given = [p for p, _ in dist.params]
    positional = not spec.one_of and given == list(spec.params[:len(given)])
    bound_exprs = [("low", v.bounds[0]), ("high", v.bounds[1])] if v.bounds else []
    covered = set()  # the positions of the batch axes that some parameter (or bound) varies over
    for pname, e in list(dist.params) + [(b, e) for b, e in bound_exprs if e is not None]:
        r = spec.param_event_rank.get(pname, 0)
        covered |= {v.plates.index(p) for p in e.axes.plates}
        p_item = e.axes.item[:len(e.axes.item) - r] if r else e.axes.item
        # item axes line up from the last one (a `1` axis does not vary)
        covered |= {len(batch) - 1 - i for i, d in enumerate(reversed(p_item)) if d == batch[len(batch) - 1 - i]}
    sharded = v.sharded_dim is not None
    iid = not sharded and not covered  # tfd.Sample adds the batch dims, so parameters stay unlifted
    # Literal parameters only: TFP makes such a distribution float32 whatever the run's dtype, so they go
    # through `real` (the run's real dtype; float64 under --x64, where data and latents are float64).
    literal_only = all(is_literal(e) for _, e in dist.params)
    params = []
    for pname, e in dist.params:
        if literal_only:
            params.append(Param(pname, e, ParamForm.REAL))
        elif isinstance(e, ir.Lit):
            params.append(Param(pname, e, ParamForm.LITERAL))
        elif iid:
            params.append(Param(pname, e, ParamForm.AS_IS))
        else:
            params.append(Param(pname, e, ParamForm.LIFTED, v.plates, brank + spec.param_event_rank.get(pname, 0)))
    if spec.dimension:  # first, as TFP's CholeskyLKJ(dimension, concentration)
        params.insert(0, Param("dimension", None, ParamForm.DIM, dim=v.phys[-1]))
    layers: list[Layer] = []
    if iid:
        if batch:
            layers.append(Sample(batch))
    else:
        if len(covered) < len(batch):
            layers.append(BatchBroadcast(batch))
        if sharded:
            layers.append(Masked(v.sharded_dim, batch, SUPPORTS[Support(v.support)].pad_value))
        if batch:
            layers.append(Independent(len(batch)))
        if sharded:
            layers.append(Sharded())
    bounds = None
    if v.bounds:
        def bound(e):
            if e is None:
                return None
            if isinstance(e, ir.Lit):
                return Param("", e, ParamForm.LITERAL)
            return Param("", e, ParamForm.AS_IS) if iid or is_literal(e) else Param("", e, ParamForm.LIFTED, v.plates, brank)
        bounds = (bound(v.bounds[0]), bound(v.bounds[1]))
    latent_inputs = [e for _, e in dist.params] + [e for _, e in bound_exprs if e is not None]
    constructor = FASTER.get((spec.name, tuple(given)), spec.constructor)
    return Site(v.name, v.kind == ir.Kind.LATENT, constructor, tuple(params), positional, tuple(layers),
                root=not any(e.latent for e in latent_inputs), bounds=bounds,
                normalize=bool(v.bounds) and spec.cdf and _cuts_support(spec.support, v.bounds), order=v.order)


def _cuts_support(support: Support, bounds) -> bool:
    """Whether declared bounds cut into the prior's support: `real<lower=0> ~ LogNormal(...)` does not (nothing to
    renormalise, and the CDF's log at the support's end would give a nan gradient)."""
    low_end, high_end = {Support.POSITIVE: (0.0, None), Support.UNIT: (0.0, 1.0)}.get(support, (None, None))

    def beyond(e, end, below):
        return e is None or (end is not None and isinstance(e, ir.Lit) and (e.value <= end if below else e.value >= end))

    return not (beyond(bounds[0], low_end, True) and beyond(bounds[1], high_end, False))


def lower(model: ir.Model) -> dict[str, Site]:
    """Every random site of `model` (latents and observed sites), by name, in statement order."""
    return {v.name: lower_site(v) for v in model.variables if v.dist is not None}
