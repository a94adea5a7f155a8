"""The checked IR: variables with named-dim shapes, plates, placement, support; typed expressions."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..dsl.spans import Span
from .distributions import DistSpec
from .supports import Support, SupportCheck



class Kind(enum.StrEnum):
    """What a named quantity is. Its repr is its string's, as in generated code."""

    DATA = "data"
    CONST = "const"
    LATENT = "latent"
    OBSERVED = "observed"
    DETERMINISTIC = "deterministic"  # computed from latents
    TRANSFORMED = "transformed"  # computed from data and consts
    TRACK = "track"  # recorded with the draws, not used by the model
    TARGET = "target"  # a `target += EXPR` term of the log density

    def __repr__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Axes:
    """A value's layout in its plate context: plate dims (batch, context order), then its item dims.

    Axes are positional: `item` may name a dim twice (`A: real[k, k]`); the names are labels that checking
    compares and messages show, and every node that matches axes does so by position."""

    plates: tuple[str, ...] = ()
    item: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.plates + self.item


# ----------------------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Expr:
    axes: Axes
    dtype: str  # real | int | bool
    latent: bool  # depends on a latent variable


@dataclass(frozen=True)
class Lit(Expr):
    value: float | int | bool


@dataclass(frozen=True)
class Ref(Expr):
    name: str
    phys: tuple[str, ...]  # the variable's stored layout (its declaration plates, then its item dims)
    kind: Kind

    @property
    def source_axes(self) -> tuple[int, ...]:
        """For each axis of the view (`axes.all`), its position in `phys`: the plate axes (a plate's dim appears
        once in `phys`: checking refuses a repeated dim inside a plate over it), then the others in order."""
        at_plates = [self.phys.index(p) for p in self.axes.plates]
        return tuple(at_plates) + tuple(i for i in range(len(self.phys)) if i not in at_plates)


@dataclass(frozen=True)
class Elementwise(Expr):
    op: str  # + - * / ** neg == != < <= > >= and unary functions (exp, log, ...), where
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class MatMul(Expr):
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Reduce(Expr):
    func: str  # sum mean max min logsumexp argmax; cumsum (keeps its axis)
    arg: Expr
    positions: tuple[int, ...]  # the item axes of `arg` reduced, by position (0 is its first item axis)
    sharded_dim: str | None  # reduced dim split across devices: psum/pmax after the local reduce


@dataclass(frozen=True)
class LastAxis(Expr):
    func: str  # softmax log_softmax
    arg: Expr


@dataclass(frozen=True)
class TakeIndex(Expr):
    value: Expr
    index: int  # on the first item dim


@dataclass(frozen=True)
class Gather(Expr):
    value: Expr
    index: Expr  # integer data; gathers the first item dim of value


@dataclass(frozen=True)
class MultiIndex(Expr):
    """NumPy's advanced indexing `value[i, j, ...]` with several indices (int literals or integer data arrays) on
    the first item axes of `value`: the indices broadcast together (lined up with this node's plates and the
    rank of their broadcast item shape), and their shape replaces the indexed axes."""

    value: Expr
    args: tuple[Expr, ...]  # the indices, one per indexed axis
    rank: int  # the item rank of the indices' broadcast shape


@dataclass(frozen=True)
class Subscript(Expr):
    """Basic indexing of the first item axes of `value`: a slice `(start, stop)` keeps its axis (now a shorter
    dim), an integer takes one item and drops its axis: `X[:, 1:]`, `y[:-1]`, `A[0, 2:]`."""

    value: Expr
    items: tuple[tuple[int | None, int | None] | int, ...]


@dataclass(frozen=True)
class Function(Expr):
    """A matrix, vector or Gaussian-process function (`cholesky`, `diag`, `eye`, `rep`, `gp_exp_quad_cov`,
    `log_mix`, check/linalg.py's; `stack` for `[a, b]`) of `args`, with the dims it creates (`eye(N)`, `rep(x, N)`,
    `concat`'s, `[a, b]`'s) in `sizes`."""

    func: str
    args: tuple[Expr, ...]
    sizes: tuple[str, ...]


@dataclass(frozen=True)
class Broadcast(Expr):
    """`value` widened to this node's axes (the plates of the enclosing context it does not vary over)."""

    value: Expr


@dataclass(frozen=True)
class Transpose(Expr):
    value: Expr


@dataclass(frozen=True)
class DistFunction(Expr):
    """A distribution's log density function at `value`: `Normal(mu, sigma).log_prob(y)` (method `log_prob`,
    `log_cdf` or `log_survival_function`), elementwise over the batch."""

    spec: DistSpec
    names: tuple[str, ...]  # the given parameters' TFP keywords
    args: tuple[Expr, ...]  # their values
    method: str
    value: Expr


@dataclass(frozen=True)
class EnumValues(Expr):
    """The values 0, 1, ..., n-1 of a discrete latent summed out by enumeration, along its one dim (`axes.item`)."""


@dataclass(frozen=True)
class SumOut(Expr):
    """`logsumexp` of `arg` over its last plate axis: the values of an enumerated discrete latent (check/enumerate.py)."""

    arg: Expr


@dataclass(frozen=True)
class DistValue(Expr):
    """A distribution as an argument of another (`Normal(mu, sigma)` in `MixtureSameFamily(Categorical(probs =
    w), Normal(mu, sigma))`): its axes are its batch (plates, then item dims); dtype "dist"."""

    spec: DistSpec
    names: tuple[str, ...]  # the given parameters' TFP keywords
    args: tuple[Expr, ...]  # their values


@dataclass(frozen=True)
class DimSize(Expr):
    """The size of dim `dim`, a static int (an HMM's `num_steps`)."""

    dim: str


@dataclass(frozen=True)
class PosteriorMarginals(DistFunction):
    """A hidden Markov model's posterior state probabilities given `value` (`.posterior_marginals(y)`): axes
    [plates, batch, time, states]; or its most likely states (`.posterior_mode(y)`, Viterbi): [plates, batch,
    time]."""


@dataclass(frozen=True)
class Local(Expr):
    """A parameter of a function traced once (an ODE's right-hand side), inside its body."""

    name: str


@dataclass(frozen=True)
class OdeSolve(Expr):
    """`ode_solve(f, y0, t0, ts, a, ...)`: dy/dt = f(t, y, a, ...) from y0 at t0, at times ts (axes: plates, then
    ts's dim and y0's item dims). `body` is f's body typed once for one solve, its parameters as `Local`s."""

    func: str
    params: tuple[str, ...]
    body: Expr
    args: tuple[Expr, ...]  # y0, t0, ts, then the extra arguments
    options: tuple[tuple[str, float | int | bool], ...]  # rtol, atol, max_steps, stiff: as given


@dataclass(frozen=True)
class RecurItem(Expr):
    """Inside a `recur` block, an item of one of its sequences: `x[t-lag]` in a general line (lag 0: `x[t]`, defined
    on a line above), or the first item `x[at]` in a first-item line (`lag` None)."""

    name: str
    lag: int | None
    at: int | None = None


@dataclass(frozen=True)
class AtStep(Expr):
    """Inside a `recur` block's general lines: `value` (whose first item dim is the block's) at item `t - lag`
    (`y[t]`, `y[t-1]`): an input of the scan."""

    value: Expr
    lag: int


@dataclass(frozen=True)
class RecurBlock:
    """A `recur INDEX in DIM` block: its sequences are computed together by one scan over DIM, from `start` first
    items each. `first` and `steps` are its lines in source order: (sequence, first item or None, value, line)."""

    index: str
    dim: str
    names: tuple[str, ...]  # the sequences, in the order of their general lines
    start: int  # the number of first items of each sequence
    first: tuple[tuple[str, int, Expr, int], ...]
    steps: tuple[tuple[str, Expr, int], ...]
    item_ranks: tuple[int, ...]  # per sequence (as `names`), the rank of one item
    lines: tuple[tuple[int, str], ...]  # (line, source text) of the block's head and lines, for comments


@dataclass(frozen=True)
class Recurrence(Expr):
    """The value of sequence `name` of a `recur` block, all its items: its axes are the plates, then the block's
    dim, then the item dims. `args` are all the block's expressions (so that walks over the IR see them)."""

    block: RecurBlock
    name: str
    args: tuple[Expr, ...]


# ----------------------------------------------------------------------------- program
@dataclass(frozen=True)
class Dim:
    """A named dim: its size from a literal, a const, an int data scalar, or data array shapes."""

    name: str
    size: int | None  # known at compile time (literal or const)
    source: str  # literal | const | data-scalar | data | derived
    sharded: bool
    span: Span
    base: str | None = None  # derived (a slice's): the size of dim `base` less `offset` (`y[1:]`: `n-1`)
    offset: int = 0


@dataclass(frozen=True)
class DistCall:
    spec: DistSpec
    params: tuple[tuple[str, Expr], ...]  # given parameters, by TFP keyword
    batch_item: tuple[str, ...]  # item dims of the distribution's batch (without its event dims)
    span: Span
    param_spans: tuple[tuple[str, Span], ...] = ()


@dataclass(frozen=True)
class Variable:
    """One named quantity of the model, in statement order."""

    name: str
    kind: Kind
    dtype: str
    plates: tuple[str, ...]  # the plates it is declared in (outer first)
    phys: tuple[str, ...]  # its stored layout: plate dims then item dims
    span: Span
    line: int
    source_line: str
    dist: DistCall | None = None
    value: Expr | None = None
    const_value: float | int | None = None
    support: Support = Support.REAL
    support_check: SupportCheck | None = None  # for latents and observed sites: what their values must satisfy
    sharded_dim: str | None = None
    latent: bool = False  # latent-dependent (for deterministics); True for latents
    bounds: tuple[Expr | None, Expr | None] | None = None  # a latent's declared (lower, upper): `real<lower=0>`
    data_bounds: tuple[float | None, float | None] | None = None  # data's declared bounds, checked when bound
    order: str | None = None  # `ordered` or `positive_ordered`: a latent increasing along its last dim


@dataclass(frozen=True)
class Plate:
    dim: str
    sharded: bool
    span: Span


@dataclass(frozen=True)
class IndexCheck:
    """Data (declared or transformed) used as an index array into dim `dim`: its values must be in
    0 .. size-1, checked when the data are bound (a gather out of range would silently clamp)."""

    name: str
    dim: str
    span: Span


@dataclass(frozen=True)
class Model:
    """The checked model: what codegen and the runtime need."""

    filename: str
    variables: tuple[Variable, ...]
    dims: tuple[Dim, ...]
    plates: tuple[Plate, ...]
    index_checks: tuple[IndexCheck, ...] = ()

    def var(self, name: str) -> Variable:
        return next(v for v in self.variables if v.name == name)

    def of_kind(self, *kinds: str) -> list[Variable]:
        return [v for v in self.variables if v.kind in kinds]

    @property
    def sharded_dims(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dims if d.sharded)

    @property
    def dim_map(self) -> dict[str, Dim]:
        return {d.name: d for d in self.dims}

    @property
    def inputs(self) -> list[Variable]:
        """What a run takes as data arrays: the declared data, then the values computed from data and consts
        alone (transformed data), computed once before sampling by the generated `transformed_data`."""
        return self.of_kind(Kind.DATA, Kind.TRANSFORMED)

    def data_used_by(self, name: str) -> set[str]:
        """The declared data that variable `name`'s value depends on (through other variables too)."""
        out: set[str] = set()
        todo = [name]
        while todo:
            v = self.var(todo.pop())
            for ref in refs(v.value) if v.value is not None else ():
                if ref.kind == Kind.DATA:
                    out.add(ref.name)
                elif ref.name != v.name:
                    todo.append(ref.name)
        return out


def children(e: Expr) -> list[Expr]:
    """The sub-expressions of `e`."""
    out = list(getattr(e, "args", ()))
    for f in ("left", "right", "arg", "value", "index", "body"):
        sub = getattr(e, f, None)
        if isinstance(sub, Expr):
            out.append(sub)
    return out


def refs(e: Expr) -> list[Ref]:
    """Every reference to a variable in `e`."""
    out, todo = [], [e]
    while todo:
        x = todo.pop()
        if isinstance(x, Ref):
            out.append(x)
        todo.extend(children(x))
    return out
