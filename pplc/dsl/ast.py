"""The .ppl abstract syntax tree: frozen dataclasses, each with its source span."""
from __future__ import annotations

from dataclasses import dataclass

from .spans import Span


# ----------------------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Expr:
    span: Span


@dataclass(frozen=True)
class Num(Expr):
    value: int | float
    is_int: bool


@dataclass(frozen=True)
class Bool(Expr):
    value: bool


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # + - * / ** @ == != < <= > >=
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg(Expr):
    operand: Expr


@dataclass(frozen=True)
class Slice(Expr):
    """`start:stop` inside `x[...]` (either may be absent): the items from start up to, not including, stop."""

    start: Expr | None
    stop: Expr | None


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    indices: tuple[Expr, ...]  # expressions, or Slice


@dataclass(frozen=True)
class Attr(Expr):
    value: Expr
    attr: str


@dataclass(frozen=True)
class Keyword:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Call(Expr):
    func: str
    func_span: Span
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]


@dataclass(frozen=True)
class Method(Expr):
    """`value.method(args)`: a distribution's log density functions, `Normal(0, 1).log_prob(x)`."""

    value: Expr
    method: str
    method_span: Span
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]


@dataclass(frozen=True)
class ArrayLit(Expr):
    """`[a, b, c]`: the values stacked along a new first axis (a dim of as many items)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class IfElse(Expr):
    """`then if cond else orelse` (Python's order), the condition known before sampling."""

    cond: Expr
    then: Expr
    orelse: Expr


# ----------------------------------------------------------------------------- statements
@dataclass(frozen=True)
class Dim:
    """A dim in a type: a name (size from data or a const), a literal size, or a name less a number (`K-1`, the
    dim of a slice such as `x[1:]` of `x: real[K]`)."""

    name: str | None
    size: int | None
    span: Span
    less: int = 0


@dataclass(frozen=True)
class Bound:
    """`lower = EXPR` or `upper = EXPR` in a constrained type (`real<lower=0>`)."""

    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Type:
    dtype: str  # real | int | bool
    dims: tuple[Dim, ...]
    span: Span
    bounds: tuple[Bound, ...] = ()


@dataclass(frozen=True)
class Stmt:
    span: Span


@dataclass(frozen=True)
class Definition(Stmt):
    """A statement that defines a name."""

    name: str
    name_span: Span


@dataclass(frozen=True)
class DataDecl(Definition):
    type: Type


@dataclass(frozen=True)
class ConstDecl(Definition):
    value: Expr


@dataclass(frozen=True)
class Sample(Definition):
    type: Type | None
    dist: Expr  # a Call once checked


@dataclass(frozen=True)
class Assign(Definition):
    value: Expr


@dataclass(frozen=True)
class Track(Definition):
    value: Expr


@dataclass(frozen=True)
class ParamDecl(Definition):
    """`NAME: TYPE` alone: a latent with a flat prior over its declared (constrained) support."""

    type: Type


@dataclass(frozen=True)
class FunctionDef(Definition):
    """`def NAME(PARAMS) = EXPR`: a pure function of the model, inlined at each call (shapes checked there)."""

    params: tuple[str, ...]
    body: Expr


@dataclass(frozen=True)
class Target(Stmt):
    """`target += EXPR`: a term added to the log density."""

    value: Expr


@dataclass(frozen=True)
class Plate(Stmt):
    dim: str
    dim_span: Span
    sharded: bool
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class RecurLine:
    """`x[0] = EXPR` (a first item: `index` a number) or `x[t] = EXPR` (the general item) in a `recur` block."""

    name: str
    name_span: Span
    index: Expr
    value: Expr
    span: Span


@dataclass(frozen=True)
class Recur(Stmt):
    """`recur t in T { ... }`: sequences over dim T, each by its first items and its item `t` from earlier ones."""

    index: str
    index_span: Span
    dim: str
    dim_span: Span
    lines: tuple[RecurLine, ...]


@dataclass(frozen=True)
class Program:
    statements: tuple[Stmt, ...]
