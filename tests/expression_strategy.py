"""Expressions over named dims: a tree, a NumPy reference evaluator for it, and a Hypothesis strategy.

Used by tests/test_expressions.py. The generated expression is written into a model (MODEL_HEAD, then
`z = <EXPR>`, optionally inside `plate n { ... }` or `plate k { ... }`) and evaluated twice: by pplc
(`sample_prior(...)["z"]`) and by `evaluate` below, with NumPy semantics on the same arrays.

The reference semantics (docs/language.md, read the NumPy way):
- every value carries a tuple of dim names; elementwise ops broadcast by aligning trailing dims, which
  must have the same name (or be absent);
- `a @ b` is np.matmul; the contracted dims must have the same name;
- `.T` reverses the dims of a matrix;
- `sum/mean/max/min(x)` reduce every dim; `sum(x, d)` reduces the axis named `d` (every axis named `d`
  when the name is repeated, as in `A: real[k, k]`);
- `logsumexp`, `softmax`, `log_softmax` work along the last axis; `dot(a, b)` is `sum(a * b, last axis)`;
- `cumsum(x)` (last axis), `cumsum(x, d)`, `outer(a, b)`, `dot_self(x)`, `inverse`, `solve`,
  `triangular_solve` (the lower triangle), `log_determinant`, `quad_form` (of `G = a @ a.T + 2 * eye(d)`, a
  well-conditioned square matrix) are NumPy/SciPy's; `concat(a, b)` joins last axes (a scalar is one item; the
  new dim is named as pplc names it: `k+2`, `3`; two data-sized parts are not strict: pplc cannot size them);
  `[a, b]` stacks along a new first dim `2` (a dim named `1` broadcasts, as in NumPy); `(a if c else b)` is
  `np.where` for a data condition, the branch itself for a literal one, and not strict for a latent one;
- `x[0]`, `x[i]`, `x[i, j]`, `x[i, 0]` are NumPy (advanced) indexing from the first axis: the index
  arrays broadcast together (by name) and their dims replace the indexed ones (`x[i, j]` is pointwise);
- inside `plate d`, every array with dim `d` is seen one item at a time (every axis named `d` indexed
  at the item); the deterministic declared inside gets a leading dim `d`.

A value is `strict` when it uses only what docs/language.md documents plainly; pplc must then accept it.
Non-strict values (a reduction over a repeated dim, `mean(x, d)`, two-index forms, indexing a computed
value, a gather from a value that varies over the enclosing plate, `.T` of a vector, last-dim functions
of a scalar, `dot` with a scalar, a plate over a repeated dim) may be rejected
with a located error, but if pplc accepts them its value must be NumPy's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from hypothesis import strategies as st

# ----------------------------------------------------------------------------- the model around the expression
DATA_DECLS = [  # name, dtype, dims, for int arrays: the dim whose positions they hold
    ("A", "real", ("k", "k"), None),
    ("x", "real", ("k", "n"), None),
    ("w", "real", ("k",), None),
    ("v", "real", ("n",), None),
    ("s", "real", (), None),
    ("ik", "int", ("m",), "k"),  # positions along k, one per item of m
    ("jn", "int", ("m",), "n"),  # positions along n, one per item of m
    ("gk", "int", ("n",), "k"),  # positions along k, one per item of n
    ("hm", "int", ("k",), "m"),  # positions along m, one per item of k
    ("t", "int", (), "*"),  # a position valid along every dim (< min(K, N, M))
]
DIMS = ("k", "n", "m")
REAL_LEAVES = ["A", "x", "w", "v", "s", "u"]
INDEX_RANGE = {name: rng for name, dtype, _, rng in DATA_DECLS if dtype == "int"}


def model_head() -> str:
    lines = []
    for name, dtype, dims, _ in DATA_DECLS:
        lines.append(f"data {name}: {dtype}[{', '.join(dims)}]" if dims else f"data {name}: {dtype}")
    lines.append("u ~ Normal(0, 1)")
    return "\n".join(lines) + "\n"


MODEL_HEAD = model_head()


def make_data(sizes: dict, seed: int) -> dict:
    """Random float32 data (uniform in [-1, 1]) and in-range int32 index arrays."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, dtype, dims, rng_dim in DATA_DECLS:
        shape = tuple(sizes[d] for d in dims)
        if dtype == "real":
            out[name] = rng.uniform(-1, 1, shape).astype(np.float32)
        else:
            hi = min(sizes.values()) if rng_dim == "*" else sizes[rng_dim]
            out[name] = rng.integers(0, hi, shape).astype(np.int32)
    return out


# ----------------------------------------------------------------------------- the expression tree
@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Lit:
    value: float | int


@dataclass(frozen=True)
class Neg:
    a: object


@dataclass(frozen=True)
class Bin:
    op: str  # + - * / ** @ > <
    a: object
    b: object


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple
    dim: str | None = None  # sum(x, dim)


@dataclass(frozen=True)
class T:
    a: object


@dataclass(frozen=True)
class Index:
    a: object
    idx: tuple  # of Lit(int) and Name(int data)


@dataclass(frozen=True)
class Arr:
    items: tuple  # `[a, b, ...]`


@dataclass(frozen=True)
class IfElse:
    cond: object
    a: object
    b: object


def show(e) -> str:
    """The .ppl text, fully parenthesized (so the printer does not depend on operator precedence)."""
    if isinstance(e, Name):
        return e.name
    if isinstance(e, Lit):
        return repr(e.value)
    if isinstance(e, Neg):
        return f"(-{show(e.a)})"
    if isinstance(e, Bin):
        return f"({show(e.a)} {e.op} {show(e.b)})"
    if isinstance(e, Call):
        args = [show(a) for a in e.args] + ([e.dim] if e.dim else [])
        return f"{e.fn}({', '.join(args)})"
    if isinstance(e, T):
        return f"{_postfix(e.a)}.T"
    if isinstance(e, Index):
        return f"{_postfix(e.a)}[{', '.join(show(i) for i in e.idx)}]"
    if isinstance(e, Arr):
        return f"[{', '.join(show(i) for i in e.items)}]"
    if isinstance(e, IfElse):
        return f"({show(e.a)} if {show(e.cond)} else {show(e.b)})"
    raise TypeError(e)


def _postfix(e) -> str:
    s = show(e)
    return s if isinstance(e, (Name, Call, T, Index, Arr)) or s.startswith("(") else f"({s})"


def names_in(e) -> set:
    if isinstance(e, Name):
        return {e.name}
    if isinstance(e, Lit):
        return set()
    if isinstance(e, (Neg, T)):
        return names_in(e.a)
    if isinstance(e, Bin):
        return names_in(e.a) | names_in(e.b)
    if isinstance(e, Call):
        return set().union(*(names_in(a) for a in e.args))
    if isinstance(e, Index):
        return names_in(e.a).union(*(names_in(i) for i in e.idx))
    if isinstance(e, (Arr, IfElse)):
        return set().union(*(names_in(c) for c in children(e)))
    raise TypeError(e)


def size(e) -> int:
    if isinstance(e, (Name, Lit)):
        return 1
    if isinstance(e, (Neg, T)):
        return 1 + size(e.a)
    if isinstance(e, Bin):
        return 1 + size(e.a) + size(e.b)
    if isinstance(e, Call):
        return 1 + sum(size(a) for a in e.args)
    if isinstance(e, Index):
        return 1 + size(e.a) + sum(size(i) for i in e.idx)
    if isinstance(e, (Arr, IfElse)):
        return 1 + sum(size(c) for c in children(e))
    raise TypeError(e)


# ----------------------------------------------------------------------------- the NumPy reference
class Invalid(Exception):
    """The expression has no NumPy-semantics value (a dim mismatch, a reduction over a missing dim, ...)."""


class OutOfRange(Exception):
    """An index falls outside its dim: a generator mistake, not a property of the expression."""


@dataclass
class Val:
    value: np.ndarray
    dims: tuple
    strict: bool = True
    dtype: str = "real"  # real, int, bool
    varies: bool = False  # inside a plate: depends on the item


def broadcast_dims(*dims_list) -> tuple:
    out: list = []
    for dims in dims_list:
        for pos in range(1, len(dims) + 1):
            if pos > len(out):
                out.insert(0, dims[-pos])
            elif out[-pos] == "1":  # a literal dim of one item (`[u]`) broadcasts, as pplc's does
                out[-pos] = dims[-pos]
            elif out[-pos] != dims[-pos] and dims[-pos] != "1":
                raise Invalid(f"cannot broadcast {list(dims)} with {list(out)}: `{dims[-pos]}` vs `{out[-pos]}`")
    return tuple(out)


def dim_size(sizes: dict, d: str) -> int:
    """The size of dim `d`: a data dim's, a literal one's (`3`), a derived one's (`k+2`, `k-1`)."""
    if d.isdigit():
        return int(d)
    if "|" in d:  # a concatenation pplc cannot size (`k|n`)
        return sum(dim_size(sizes, p) for p in d.split("|"))
    for sign in "+-":
        if sign in d:
            base, off = d.split(sign)
            return sizes[base] + (int(off) if sign == "+" else -int(off))
    return sizes[d]


def concat_dim(dims: list) -> tuple[str, bool]:
    """The dim pplc names for the joined last dims `dims`, and whether pplc can size it (one data dim at most)."""
    if any("|" in d for d in dims):
        return "|".join(dims), False
    known, unknown = 0, []
    for d in dims:
        if d.isdigit():
            known += int(d)
            continue
        base, off = d, 0
        for sign in "+-":
            if sign in d:
                base, o = d.split(sign)
                off = int(o) if sign == "+" else -int(o)
        unknown.append((base, off))
    if len(unknown) > 1:
        return "|".join(dims), False
    if not unknown:
        return str(known), True
    base, off = unknown[0]
    off += known
    return (base if off == 0 else f"{base}+{off}" if off > 0 else f"{base}-{-off}"), True


class Env:
    """Values of the names (float64 or float32 reals), the dim sizes, and (in a plate) the plate dim."""

    def __init__(self, data: dict, sizes: dict, u: float, ftype=np.float64, plate: str | None = None,
                 item: int = 0):
        self.sizes, self.ftype, self.plate = sizes, ftype, plate
        self.vals: dict[str, Val] = {}
        self.cache: dict = {}
        for name, dtype, dims, _ in DATA_DECLS:
            arr = np.asarray(data[name])
            arr = arr.astype(ftype) if dtype == "real" else arr.astype(np.int64)
            strict = True
            if plate is not None and plate in dims:  # seen one item at a time: every axis named `plate`
                axes = [a for a, d in enumerate(dims) if d == plate]
                strict = len(axes) == 1
                sl = tuple(item if d == plate else slice(None) for d in dims)
                arr = arr[sl]
                dims = tuple(d for d in dims if d != plate)
            self.vals[name] = Val(np.asarray(arr), dims, strict, dtype, plate is not None and plate in
                                  [d for n, _, ds, _ in DATA_DECLS if n == name for d in ds])
        self.vals["u"] = Val(np.asarray(u, ftype), ())

    def items(self) -> int:
        return self.sizes[self.plate] if self.plate else 1


UNARY = {
    "exp": np.exp, "tanh": np.tanh, "abs": np.abs, "square": np.square,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "softplus": lambda a: np.logaddexp(0, a),
    "log_sigmoid": lambda a: -np.logaddexp(0, -a),
}
REDUCE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}


def _lse(a, axis):
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def _softmax(a):
    e = np.exp(a - np.max(a, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def apply(e, kids: list[Val], env: Env) -> Val:
    """The value of node `e` from its children's values (the reference semantics, one node)."""
    val = _apply(e, kids, env)
    val.varies = any(k.varies for k in kids)
    return val


def _apply(e, kids: list[Val], env: Env) -> Val:
    ft = env.ftype
    strict = all(k.strict for k in kids)
    if isinstance(e, Neg):
        (a,) = kids
        return Val(-a.value, a.dims, strict)
    if isinstance(e, Bin) and e.op in "+-*/**<>":
        a, b = kids
        dims = broadcast_dims(a.dims, b.dims)
        x, y = a.value.astype(ft), b.value.astype(ft)
        val = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power,
               ">": np.greater, "<": np.less}[e.op](x, y)
        return Val(np.asarray(val), dims, strict, "bool" if e.op in "<>" else "real")
    if isinstance(e, Bin) and e.op == "@":
        a, b = kids
        if not a.dims or not b.dims:
            raise Invalid("`@` of a scalar")
        ad = a.dims if len(a.dims) > 1 else ("_row",) + a.dims
        bd = b.dims if len(b.dims) > 1 else b.dims + ("_col",)
        if ad[-1] != bd[-2]:
            raise Invalid(f"`@` contracts `{ad[-1]}` with `{bd[-2]}`")
        dims = broadcast_dims(ad[:-2], bd[:-2]) + (ad[-2], bd[-1])
        dims = tuple(d for d in dims if d not in ("_row", "_col"))
        strict = strict and len(a.dims) <= 2 and len(b.dims) <= 2  # pplc's `@` is of vectors and matrices
        return Val(np.asarray(np.matmul(a.value.astype(ft), b.value.astype(ft))), dims, strict)
    if isinstance(e, T):
        (a,) = kids
        return Val(a.value.T, a.dims[::-1], strict and len(a.dims) == 2, a.dtype)
    if isinstance(e, Call) and e.fn in UNARY:
        (a,) = kids
        return Val(np.asarray(UNARY[e.fn](a.value.astype(ft))), a.dims, strict)
    if isinstance(e, Call) and e.fn in REDUCE:
        (a,) = kids
        x = a.value.astype(ft)
        if e.dim is None:
            return Val(np.asarray(REDUCE[e.fn](x)), (), strict)
        axes = tuple(i for i, d in enumerate(a.dims) if d == e.dim)
        if not axes:
            raise Invalid(f"`{e.fn}(.., {e.dim})` of a value with dims {list(a.dims)}")
        dims = tuple(d for d in a.dims if d != e.dim)
        strict = strict and e.dim.isidentifier()  # a literal or derived dim (`2`, `k+1`) has no name to give
        return Val(np.asarray(REDUCE[e.fn](x, axis=axes)), dims, strict and len(axes) == 1 and e.fn == "sum")
    if isinstance(e, Call) and e.fn in ("logsumexp", "softmax", "log_softmax"):
        (a,) = kids
        x = a.value.astype(ft)
        if not a.dims:  # a scalar: the one-element case, which pplc may also reject
            val = {"logsumexp": x, "softmax": np.ones_like(x), "log_softmax": np.zeros_like(x)}[e.fn]
            return Val(np.asarray(val), (), False)
        if e.fn == "logsumexp":
            return Val(np.asarray(_lse(x, -1)), a.dims[:-1], strict)
        sm = _softmax(x)
        return Val(sm if e.fn == "softmax" else x - _lse(x, -1)[..., None], a.dims, strict)
    if isinstance(e, Call) and e.fn == "dot":
        a, b = kids
        dims = broadcast_dims(a.dims, b.dims)
        prod = a.value.astype(ft) * b.value.astype(ft)
        if not dims:
            return Val(np.asarray(prod), (), False)
        return Val(np.asarray(np.sum(prod, axis=-1)), dims[:-1], strict and bool(a.dims) and bool(b.dims))
    if isinstance(e, Call) and e.fn == "where":
        c, a, b = kids
        dims = broadcast_dims(c.dims, a.dims, b.dims)
        return Val(np.asarray(np.where(c.value, a.value.astype(ft), b.value.astype(ft))), dims, strict)
    if isinstance(e, Index):
        base, *idx = kids
        if len(idx) > len(base.dims):
            raise Invalid(f"{len(idx)} indices into a value with dims {list(base.dims)}")
        for i, d in zip(idx, base.dims):
            if i.dtype != "int":
                raise Invalid("a real index")
            if i.value.size and (np.min(i.value) < 0 or np.max(i.value) >= dim_size(env.sizes, d)):
                raise OutOfRange(f"index {i.value} along `{d}` of size {dim_size(env.sizes, d)}")
        dims = broadcast_dims(*(i.dims for i in idx)) + base.dims[len(idx):]
        val = base.value[tuple(i.value for i in idx)]
        # pplc documents `x[0]` and `x[idx]` of a name; a gather from a value that varies over the plate is
        # rejected by design ("index a variable declared outside the plate")
        strict = strict and len(idx) == 1 and isinstance(e.a, Name) and not (base.varies and isinstance(e.idx[0], Name))
        return Val(np.asarray(val), dims, strict, base.dtype)
    return _apply_more(e, kids, env, strict)


def _apply_more(e, kids: list[Val], env: Env, strict: bool) -> Val:
    """The linear algebra, `concat`, `[a, b]` and `(a if c else b)` (issue 10's functions)."""
    ft = env.ftype
    if isinstance(e, Call) and e.fn == "eye":
        return Val(np.eye(dim_size(env.sizes, e.dim), dtype=ft), (e.dim, e.dim), strict)
    if isinstance(e, Call) and e.fn == "cumsum":
        (a,) = kids
        axes = [len(a.dims) - 1] if e.dim is None else [i for i, d in enumerate(a.dims) if d == e.dim]
        if len(axes) != 1 or not a.dims:
            raise Invalid(f"`cumsum` along {e.dim or 'the last dim'} of dims {list(a.dims)}")
        strict = strict and (e.dim is None or e.dim.isidentifier())  # (as for `sum(x, d)`)
        return Val(np.cumsum(a.value.astype(ft), axis=axes[0]), a.dims, strict)
    if isinstance(e, Call) and e.fn in ("outer", "dot_self"):
        if any(len(k.dims) != 1 for k in kids):
            raise Invalid(f"`{e.fn}` of dims {[list(k.dims) for k in kids]}")
        x = [k.value.astype(ft) for k in kids]
        if e.fn == "dot_self":
            return Val(np.asarray(np.sum(x[0] * x[0])), (), strict)
        return Val(np.outer(x[0], x[1]), kids[0].dims + kids[1].dims, strict)
    if isinstance(e, Call) and e.fn in ("inverse", "log_determinant", "solve", "triangular_solve", "quad_form"):
        a = kids[0]
        if len(a.dims) != 2 or a.dims[0] != a.dims[1]:
            raise Invalid(f"`{e.fn}` of a matrix with dims {list(a.dims)}")
        m = a.value.astype(ft)
        if e.fn == "inverse":
            return Val(np.linalg.inv(m), a.dims, strict)
        if e.fn == "log_determinant":
            return Val(np.asarray(np.linalg.slogdet(m)[1]), (), strict)
        b = kids[1]
        if len(b.dims) not in (1, 2) or b.dims[0] != a.dims[1]:
            raise Invalid(f"`{e.fn}` of dims {list(a.dims)} and {list(b.dims)}")
        v = b.value.astype(ft)
        if e.fn == "solve":
            return Val(np.linalg.solve(m, v), b.dims, strict)
        if e.fn == "triangular_solve":
            return Val(sla.solve_triangular(np.tril(m), v, lower=True).astype(ft), b.dims, strict)
        return Val(np.asarray(v.T @ m @ v), () if len(b.dims) == 1 else (b.dims[1], b.dims[1]), strict)
    if isinstance(e, Call) and e.fn == "concat":
        lead = broadcast_dims(*(k.dims[:-1] for k in kids))
        dim, sized = concat_dim([k.dims[-1] if k.dims else "1" for k in kids])
        parts = [np.reshape(k.value, (1,)) if not k.dims else k.value for k in kids]
        shape = tuple(dim_size(env.sizes, d) for d in lead)
        val = np.concatenate([np.broadcast_to(p, shape + p.shape[-1:]).astype(ft) for p in parts], axis=-1)
        return Val(val, lead + (dim,), strict and sized)
    if isinstance(e, Arr):
        dims = broadcast_dims(*(k.dims for k in kids))
        vals = np.broadcast_arrays(*(k.value for k in kids))
        dtype = "real" if any(k.dtype == "real" for k in kids) else "int"
        return Val(np.stack(vals).astype(ft if dtype == "real" else np.int64), (str(len(kids)),) + dims, strict, dtype)
    if isinstance(e, IfElse):
        c, a, b = kids
        if _folds(e.cond):  # pplc resolves it when compiling: Python's semantics, only the branch taken counts
            x = a if bool(c.value) else b
            return Val(x.value, x.dims, strict, x.dtype)
        dims = broadcast_dims(c.dims, a.dims, b.dims)
        latent = "u" in names_in(e.cond)  # a latent condition: pplc refuses it
        return Val(np.asarray(np.where(c.value, a.value.astype(ft), b.value.astype(ft))), dims,
                   strict and not latent)
    raise TypeError(e)


def _folds(e) -> bool:
    """Whether pplc computes `e` when compiling (literals and arithmetic on them: check/linalg.py's `fold`)."""
    if isinstance(e, Lit):
        return True
    if isinstance(e, Neg):
        return _folds(e.a)
    return isinstance(e, Bin) and e.op in ("+", "-", "*", "/", "**", "<", ">") and _folds(e.a) and _folds(e.b)


def children(e) -> list:
    if isinstance(e, (Neg, T)):
        return [e.a]
    if isinstance(e, Bin):
        return [e.a, e.b]
    if isinstance(e, Call):
        return list(e.args)
    if isinstance(e, Index):
        return [e.a, *e.idx]
    if isinstance(e, Arr):
        return list(e.items)
    if isinstance(e, IfElse):
        return [e.cond, e.a, e.b]
    return []


def evaluate(e, env: Env) -> Val:
    """The value of `e` (memoized per env by node identity: the strategy shares subtrees)."""
    hit = env.cache.get(id(e))
    if hit is not None and hit[0] is e:
        return hit[1]
    val = _evaluate(e, env)
    env.cache[id(e)] = (e, val)
    return val


def _evaluate(e, env: Env) -> Val:
    if isinstance(e, Name):
        return env.vals[e.name]
    if isinstance(e, Lit):
        return Val(np.asarray(e.value, env.ftype if isinstance(e.value, float) else np.int64), (),
                   True, "real" if isinstance(e.value, float) else "int")
    with np.errstate(all="ignore"):
        return apply(e, [evaluate(c, env) for c in children(e)], env)


def reference(e, data: dict, sizes: dict, u: float, plate: str | None, ftype=np.float64) -> Val:
    """The value of `z = e` (stacked over the plate's items inside a plate); raises Invalid."""
    if plate is None:
        return evaluate(e, Env(data, sizes, u, ftype))
    items = [evaluate(e, Env(data, sizes, u, ftype, plate, t)) for t in range(sizes[plate])]
    return Val(np.stack([np.asarray(v.value) for v in items]), (plate,) + items[0].dims,
               all(v.strict for v in items), items[0].dtype)


# ----------------------------------------------------------------------------- the strategy
@dataclass
class Case:
    expr: object
    sizes: dict
    plate: str | None
    seed: int
    item_term: bool = True  # in a plate, make z depend on the item when the expression does not


    @property
    def text(self) -> str:
        rhs, names = show(self.expr), names_in(self.expr)
        if "u" not in names:  # a deterministic is kept in the output only if it depends on a latent
            rhs = f"{rhs} + 0 * u"
        item = {"n": "v", "k": "w"}.get(self.plate)
        if item and self.item_term and not names & {name for name, _, dims, _ in DATA_DECLS if self.plate in dims}:
            rhs = f"{rhs} + 0 * {item}"  # depends on the plate's item (pplc drops the plate dim otherwise)
        if self.plate:
            return f"{MODEL_HEAD}plate {self.plate} {{\n  z = {rhs}\n}}\n"
        return f"{MODEL_HEAD}z = {rhs}\n"

    @property
    def data(self) -> dict:
        return make_data(self.sizes, self.seed)


OPS = ["elementwise", "elementwise", "matmul", "matmul", "gram", "T", "reduce", "reduce", "reduce_dim", "reduce_dim",
       "last_dim", "dot", "unary", "neg", "pow", "div", "index_lit", "gather", "gather", "index2",
       "index_mixed", "where", "vector_fn", "cumsum_dim", "linalg", "linalg", "concat", "array", "ifelse"]
LINALG = ["inverse", "log_determinant", "solve", "triangular_solve", "quad_form"]


def _index_options(base: Val, pos: int, env: Env) -> list:
    """Indices valid along axis `pos` of `base`: literals in range, int data holding positions of that dim."""
    d = base.dims[pos]
    opts = [Lit(0)]
    if dim_size(env.sizes, d) > 1:
        opts.append(Lit(dim_size(env.sizes, d) - 1))
    opts += [Name(name) for name, rng_dim in INDEX_RANGE.items() if rng_dim in (d, "*")]
    return opts


def _options(draw, op: str, first: list, pool: list, leaves: int, wild: bool, env: Env) -> list:
    """Candidate nodes for one step: `op` applied to operands from the pool (the first from `first`)."""
    out = []
    if op in ("elementwise", "matmul", "dot"):
        o = draw(st.sampled_from(["+", "-", "*"])) if op == "elementwise" else op
        for a in first:
            for b in pool:
                for x, y in ((a, b), (b, a)):
                    out.append(Call("dot", (x, y)) if o == "dot" else Bin("@" if o == "matmul" else o, x, y))
    elif op in ("T", "unary", "neg", "pow", "reduce", "last_dim"):
        fns = {"T": [None], "unary": list(UNARY), "neg": [None], "pow": [2, 3], "reduce": list(REDUCE),
               "last_dim": ["logsumexp", "softmax", "log_softmax"]}[op]
        fn = draw(st.sampled_from(fns))
        for a in first:
            rank = len(evaluate(a, env).dims)
            if (op == "T" and rank != 2 or op == "last_dim" and rank == 0) and not wild:
                continue
            out.append({"T": lambda: T(a), "neg": lambda: Neg(a), "pow": lambda: Bin("**", a, Lit(fn))}
                       .get(op, lambda: Call(fn, (a,)))())
    elif op == "gram":  # a.T @ a, a @ a.T: repeated dims in the result
        for a in first:
            if len(evaluate(a, env).dims) == 2 or wild:
                out += [Bin("@", T(a), a), Bin("@", a, T(a))]
    elif op == "div":  # a / (1.5 + square(b)): division, without dividing by ~0
        for a in first:
            for b in pool:
                out.append(Bin("/", a, Bin("+", Lit(1.5), Call("square", (b,)))))
    elif op == "reduce_dim":
        fn = "sum" if draw(st.integers(0, 3)) else draw(st.sampled_from(["mean", "max", "min"]))
        for a in first:
            for d in (DIMS if wild else sorted(set(evaluate(a, env).dims))):
                out.append(Call(fn, (a,), d))
    elif op in ("index_lit", "gather", "index2", "index_mixed"):
        for a in first:
            base = evaluate(a, env)
            if base.dtype != "real" or not base.dims:
                if wild:
                    out.append(Index(a, (Lit(0),)))
                continue
            o0 = _index_options(base, 0, env)
            if op == "index_lit":
                out += [Index(a, (i,)) for i in o0 if isinstance(i, Lit)]
            elif op == "gather":
                out += [Index(a, (i,)) for i in o0 if isinstance(i, Name)]
            elif len(base.dims) >= 2:
                o1 = _index_options(base, 1, env)
                for i in o0:
                    for j in o1:
                        arrays = isinstance(i, Name) + isinstance(j, Name)
                        if arrays == (2 if op == "index2" else 1):
                            out.append(Index(a, (i, j)))
            elif wild:
                out.append(Index(a, (o0[-1], o0[-1])))
    elif op in ("vector_fn", "cumsum_dim", "linalg", "concat", "array", "ifelse"):
        out += _more_options(draw, op, first, pool, leaves, wild, env)
    elif op == "where":  # where(a > b, c, d)
        cmp = draw(st.sampled_from([">", "<"]))
        for a in first:
            for b in pool[:leaves]:
                cond = Bin(cmp, a, b)
                if _value(cond, env) is None:
                    continue
                for c in (a, b):
                    for d in pool:
                        out.append(Call("where", (cond, c, d)))
    return out


def _more_options(draw, op: str, first: list, pool: list, leaves: int, wild: bool, env: Env) -> list:
    """_options for issue 10's functions, `[a, b]` and `(a if c else b)`."""
    out: list = []
    dims = {id(a): evaluate(a, env).dims for a in first + pool}
    if op == "vector_fn":
        fn = draw(st.sampled_from(["cumsum", "outer", "dot_self"]))
        for a in first + (pool[:leaves] if fn == "dot_self" else []):  # (the leaves have vectors)
            if fn == "outer":
                out += [Call(fn, (a, b)) for b in pool if wild or len(dims[id(a)]) == len(dims[id(b)]) == 1]
            elif wild or len(dims[id(a)]) == 1 or (fn == "cumsum" and dims[id(a)]):
                out.append(Call(fn, (a,)))
    elif op == "cumsum_dim":
        for a in first:
            out += [Call("cumsum", (a,), d) for d in (DIMS if wild else sorted(set(dims[id(a)])))]
    elif op == "linalg":  # of G = a @ a.T + 2 * eye(d), symmetric positive definite: a well-conditioned matrix
        fn = draw(st.sampled_from(LINALG))
        for a in first:
            da = dims[id(a)]
            square = len(da) == 2 and da[0] == da[1]
            if not square and not wild:
                continue
            g = Bin("+", Bin("@", a, T(a)), Bin("*", Lit(2.0), Call("eye", (), da[0]))) if square else a
            if fn in ("inverse", "log_determinant"):
                out.append(Call(fn, (g,)))
                continue
            out += [Call(fn, (g, b)) for b in pool if wild or (square and dims[id(b)] and len(dims[id(b)]) <= 2
                                                               and dims[id(b)][0] == da[0])]
    elif op == "concat":
        for a in first:
            for b in pool:
                out += [Call("concat", (a, b)), Call("concat", (b, a))]
    elif op == "array":
        for a in first:
            for b in pool:
                out += [Arr((a, b)), Arr((b, a, b))]
    elif op == "ifelse":  # (c if a > b else d): a data condition, a literal one, or (not strict) a latent one
        cmp = draw(st.sampled_from([">", "<"]))
        for a in first:
            for b in pool[:leaves]:
                cond = Bin(cmp, a, b)
                if _value(cond, env) is None:
                    continue
                for c in (a, b):
                    out += [IfElse(cond, c, d) for d in pool]
    return out


def _value(e, env):
    try:
        return evaluate(e, env)
    except Invalid:
        return None


@st.composite
def cases(draw, max_ops: int = 6) -> Case:
    """A model case: sizes, data seed, optionally a plate, and an expression built in up to `max_ops` steps.
    Each step applies an operation to earlier nodes, chosen among those NumPy gives a value (one step in ten
    ignores that: the expression is then most likely invalid, and ends there)."""
    sizes = {d: draw(st.integers(1, 4), label=f"size {d}") for d in DIMS}
    plate = draw(st.sampled_from([None, None, None, None, "n", "k"]), label="plate")
    seed = draw(st.integers(0, 2**16), label="data seed")
    env = Env(make_data(sizes, seed), sizes, 0.3, plate=plate)  # validity depends on dims only
    pool: list = [Name(n) for n in REAL_LEAVES] + [Lit(0.5), Lit(2)]
    leaves = len(pool)
    last = None
    for _ in range(draw(st.integers(1, max_ops), label="ops")):
        op = draw(st.sampled_from(OPS), label="op")
        wild = draw(st.integers(0, 11), label="wild") == 0
        # the newest node is the first operand most of the time, so the final expression is a deep one
        first = [last] if last is not None and draw(st.integers(0, 3)) else pool
        good = []
        for node in _options(draw, op, first, pool, leaves, wild, env):
            try:
                val = evaluate(node, env)
            except Invalid:
                val = None
            except OutOfRange:
                continue
            if val is not None or wild:
                good.append((node, val))
        if not good:
            continue
        node, val = draw(st.sampled_from(good), label="node")
        if val is None:  # invalid: nothing built on it can be valid, so it is the expression
            return Case(node, sizes, plate, seed)
        pool.append(node)
        last = node
    return Case(last if last is not None else draw(st.sampled_from(pool)), sizes, plate, seed)
