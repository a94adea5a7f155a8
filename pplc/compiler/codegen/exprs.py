"""IR expressions as Python source in their natural layout [..., plates, item]."""
from __future__ import annotations

from .. import ir
from ..lower import COMPARISONS, is_literal
from .dist_args import DistArgGen
from .linalg import LINALG_CODE, linalg_code
from .names import py
from .ode import ode_call

FUNC_CODE = {
    "exp": "jnp.exp", "log": "jnp.log", "log1p": "jnp.log1p", "expm1": "jnp.expm1", "sqrt": "jnp.sqrt",
    "abs": "jnp.abs", "sigmoid": "jax.nn.sigmoid", "logit": "jax.scipy.special.logit",
    "softplus": "jax.nn.softplus", "tanh": "jnp.tanh", "square": "jnp.square",
    "lgamma": "jax.scipy.special.gammaln", "log_sigmoid": "jax.nn.log_sigmoid", "where": "jnp.where",
    "softmax": "jax.nn.softmax", "log_softmax": "jax.nn.log_softmax", "real": "real",
}
# Python precedence of what we emit (higher binds tighter).
PREC = {"cmp": 1, "+": 2, "-": 2, "*": 3, "/": 3, "@": 3, "neg": 4, "**": 5, "atom": 6}


def number(value, dtype: str) -> str:
    """A literal in generated code, one form for each dtype: `True`, `2`, `2.0`."""
    if dtype == "bool":
        return repr(bool(value))
    if dtype == "int":
        return str(int(value))
    return repr(float(value))


def letters(dims) -> list[str]:
    """One einsum letter per axis, by position (a dim named twice gets two letters): the dim's first letter
    when free, else the next free one."""
    out: list[str] = []
    for d in dims:
        cands = [c for c in d.lower() if c.isalpha()] + list("abcdefghijklmnopqrstuvwxyz")
        out.append(next(c for c in cands if c not in out))
    return out


def parens(code_prec: tuple[str, int], tighter_than: int) -> str:
    """The code, in parentheses unless its precedence is above `tighter_than`."""
    code, prec = code_prec
    return code if prec > tighter_than else f"({code})"


class ExprGen(DistArgGen):
    """Lowers IR expressions to Python source in their natural layout: [..., plates, item]."""

    def __init__(self, model: ir.Model):
        self.model = model
        self.helpers: set[str] = set()  # the prelude's reductions across devices that the code uses
        self.step_locals: dict = {}  # in a `recur` block's step function: its items' local names (recurrences.py)
        self.local_defs: dict[str, str] = {}  # functions the code uses (an ODE's right-hand side), by name

    def dim(self, name: str) -> str:
        d = self.model.dim_map.get(name)
        if d is not None and d.source == "literal":
            return str(d.size)
        if d is not None and d.source == "derived":
            return f"({self.dim(d.base)} - {d.offset})"
        return f"dims[{name!r}]"

    def shape(self, dims) -> str:
        return "[" + ", ".join(self.dim(d) for d in dims) + "]"

    def code(self, e: ir.Expr) -> str:
        return self.gen(e)[0]

    def gen(self, e: ir.Expr) -> tuple[str, int]:
        """(code, precedence)."""
        return getattr(self, "_" + type(e).__name__)(e)

    def lift(self, e: ir.Expr, plates: tuple[str, ...], rank: int) -> tuple[str, int]:
        """`e` with size-1 axes added so that it lines up with [..., plates, item of `rank` dims]."""
        if isinstance(e, (ir.DistValue, ir.DimSize)):  # a distribution or a dim as an argument (dist_args.py)
            return self.lift_dist_arg(e, plates, rank)
        code, prec = self.gen(e)
        if is_literal(e):  # a Python number in generated code: it broadcasts as it is, and cannot be indexed
            return code, prec
        idx = [":" if p in e.axes.plates else "None" for p in plates]
        idx += ["None"] * (rank - len(e.axes.item)) + [":"] * len(e.axes.item)
        if "None" not in idx:
            return code, prec
        return f"{parens((code, prec), PREC['atom'] - 1)}[..., {', '.join(idx)}]", PREC["atom"]

    def mask(self, dim: str, layout: tuple[str, ...]) -> str:
        """The validity mask of sharded `dim`, shaped to line up with `layout` (right-aligned)."""
        after = len(layout) - layout.index(dim) - 1
        m = f"masks[{dim!r}]"
        return m if after == 0 else f"{m}[:{', None' * after}]"

    # --- nodes
    def _Lit(self, e: ir.Lit):
        negative = e.dtype != "bool" and e.value < 0
        return number(e.value, e.dtype), PREC["neg"] if negative else PREC["atom"]

    def _Ref(self, e: ir.Ref):
        name = py(e.name)
        order = e.source_axes
        if order == tuple(range(len(e.phys))):
            return name, PREC["atom"]
        ls = letters(e.phys)
        src = "".join(ls)
        dst = "".join(ls[p] for p in order)
        return f"jnp.einsum('...{src}->...{dst}', {name})", PREC["atom"]

    def _Elementwise(self, e: ir.Elementwise):
        plates, rank = e.axes.plates, len(e.axes.item)
        args = [self.lift(a, plates, rank) for a in e.args]
        if e.op in ("+", "-", "*", "/"):
            p = PREC[e.op]
            return f"{parens(args[0], p - 1)} {e.op} {parens(args[1], p)}", p
        if e.op == "**":
            return f"{parens(args[0], PREC['**'])}**{parens(args[1], PREC['neg'] - 1)}", PREC["**"]
        if e.op in COMPARISONS:
            return f"{parens(args[0], PREC['cmp'])} {e.op} {parens(args[1], PREC['cmp'])}", PREC["cmp"]
        if e.op == "neg":
            return f"-{parens(args[0], PREC['neg'] - 1)}", PREC["neg"]
        if e.op == "real":
            self.helpers.add("real")
        return f"{FUNC_CODE[e.op]}({', '.join(c for c, _ in args)})", PREC["atom"]

    def _MatMul(self, e: ir.MatMul):
        # Axes by position: each plate one letter (a plate's dim is one axis), each item axis its own letter,
        # the last item axis of the left side shared with the first of the right side (the one summed).
        lp, li = e.left.axes.plates, e.left.axes.item
        rp, ri = e.right.axes.plates, e.right.axes.item
        plates = e.axes.plates
        ls = letters(plates + li + ri[1:])
        pl = dict(zip(plates, ls))
        left_item = ls[len(plates):len(plates) + len(li)]
        right_item = left_item[-1:] + ls[len(plates) + len(li):]
        left = "".join([pl[p] for p in lp] + left_item)
        right = "".join([pl[p] for p in rp] + right_item)
        out = "".join([pl[p] for p in plates] + left_item[:-1] + right_item[1:])
        return (f"jnp.einsum('...{left},...{right}->...{out}', {self.code(e.left)}, {self.code(e.right)})",
                PREC["atom"])

    def _Reduce(self, e: ir.Reduce):
        item = e.arg.axes.item
        axes = tuple(p - len(item) for p in e.positions)
        ax = str(axes[0]) if len(axes) == 1 else str(axes)
        x = self.code(e.arg)
        if e.func == "argmax":
            return f"jnp.argmax({x}, axis={ax})", PREC["atom"]
        if e.func == "logsumexp":
            return f"jax.scipy.special.logsumexp({x}, axis={ax})", PREC["atom"]
        if e.sharded_dim is None:
            return f"jnp.{e.func}({x}, axis={ax})", PREC["atom"]
        m = self.mask(e.sharded_dim, e.arg.axes.all)
        self.helpers.add(f"sharded_{e.func}")
        if e.func == "mean":
            others = [self.dim(item[p]) for p in e.positions if item[p] != e.sharded_dim]
            extra = f", n_other={' * '.join(others)}" if others else ""
            return f"sharded_mean({x}, {m}, {ax}, shard_axes{extra})", PREC["atom"]
        return f"sharded_{e.func}({x}, {m}, {ax}, shard_axes)", PREC["atom"]

    def _LastAxis(self, e: ir.LastAxis):
        return f"{FUNC_CODE[e.func]}({self.code(e.arg)}, axis=-1)", PREC["atom"]

    def _TakeIndex(self, e: ir.TakeIndex):
        rest = len(e.value.axes.item) - 1
        idx = ", ".join(["...", str(e.index)] + [":"] * rest)
        return f"{parens(self.gen(e.value), PREC['atom'] - 1)}[{idx}]", PREC["atom"]

    def _Gather(self, e: ir.Gather):
        axis = -len(e.value.axes.item)
        return f"jnp.take({self.code(e.value)}, {self.code(e.index)}, axis={axis})", PREC["atom"]

    def _MultiIndex(self, e: ir.MultiIndex):
        idx = [self.lift(i, e.axes.plates, e.rank)[0] for i in e.args]
        idx += [":"] * (len(e.value.axes.item) - len(e.args))
        return f"{parens(self.gen(e.value), PREC['atom'] - 1)}[..., {', '.join(idx)}]", PREC["atom"]

    def _Subscript(self, e: ir.Subscript):
        idx = [str(i) if isinstance(i, int) else ":".join("" if b is None else str(b) for b in i) for i in e.items]
        idx += [":"] * (len(e.value.axes.item) - len(e.items))
        return f"{parens(self.gen(e.value), PREC['atom'] - 1)}[..., {', '.join(idx)}]", PREC["atom"]

    def _Function(self, e: ir.Function):
        plates, rank = e.axes.plates, len(e.axes.item)
        if e.func in LINALG_CODE:
            return linalg_code(self, e), PREC["atom"]
        if e.func.startswith("hmm_"):
            return self.hmm_function(e)
        if e.func == "eye":
            return f"jnp.eye({self.dim(e.sizes[0])}, dtype=jnp.result_type(float))", PREC["atom"]
        if e.func == "rep":
            self.helpers.add("rep")
            return f"rep({self.code(e.args[0])}, {self.dim(e.sizes[0])})", PREC["atom"]
        if e.func == "cholesky":
            return f"jnp.linalg.cholesky({self.code(e.args[0])})", PREC["atom"]
        self.helpers.add(e.func)
        if e.func == "diag":
            return f"diag({self.code(e.args[0])})", PREC["atom"]
        if e.func == "log_mix":
            return f"log_mix({', '.join(self.lift(a, plates, rank)[0] for a in e.args)})", PREC["atom"]
        x, alpha, rho = e.args  # gp_exp_quad_cov
        point_rank = len(x.axes.item)
        args = [self.lift(x, plates, point_rank)[0]] + [self.lift(a, plates, 2)[0] for a in (alpha, rho)]
        return f"gp_exp_quad_cov({', '.join(args)}, point_rank={point_rank})", PREC["atom"]

    def _Broadcast(self, e: ir.Broadcast):
        plates, item = e.axes.plates, e.axes.item
        x = self.lift(e.value, plates, len(item))[0]
        self.helpers.add("widen")
        return f"widen({x}, {self.shape(plates + item)})", PREC["atom"]

    def _DistFunction(self, e: ir.DistFunction):
        plates, rank = e.axes.plates, len(e.axes.item)
        params = []
        for name, a in zip(e.names, e.args):
            code = self.lift(a, plates, rank + e.spec.param_event_rank.get(name, 0))[0]
            if is_literal(a):  # (TFP would make a distribution of Python numbers float32 under --x64 too)
                self.helpers.add("real")
                code = f"real({code})"
            params.append(f"{name}={code}")
        value = self.lift(e.value, plates, rank + e.spec.event_rank)[0]
        if "." not in e.spec.constructor:  # the prelude's (SkewNormal, OrderedLogistic)
            self.helpers.add(e.spec.constructor)
        return f"{e.spec.constructor}({', '.join(params)}).{e.method}({value})", PREC["atom"]

    def _Transpose(self, e: ir.Transpose):
        return f"jnp.swapaxes({self.code(e.value)}, -1, -2)", PREC["atom"]

    def _EnumValues(self, e: ir.EnumValues):  # the values of an enumerated discrete latent
        return f"jnp.arange({self.dim(e.axes.item[0])})", PREC["atom"]

    def _SumOut(self, e: ir.SumOut):  # logsumexp over the values of an enumerated latent: the arg's last plate axis
        axis = -1 - len(e.arg.axes.item)
        return f"jax.scipy.special.logsumexp({self.code(e.arg)}, axis={axis})", PREC["atom"]

    def _RecurItem(self, e: ir.RecurItem):  # `x[t-1]`, `y[t]` inside a `recur` block: a local of its step function
        return self.step_locals[e], PREC["atom"]

    _AtStep = _RecurItem

    def _OdeSolve(self, e: ir.OdeSolve):
        return ode_call(self, e), PREC["atom"]

    def _Local(self, e: ir.Local):
        return py(e.name), PREC["atom"]
