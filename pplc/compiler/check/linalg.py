"""Linear algebra and building arrays: cumsum, outer, solve, inverse, log_determinant, ..., concat, `[a]`, if/else."""
from __future__ import annotations

import operator

from ...dsl import ast
from .. import ir
from .base import Reported, has_shape

# name -> (min args, max args)
LINALG_FUNCS = {"cumsum": (1, 2), "outer": (2, 2), "dot_self": (1, 1), "quad_form": (2, 2), "inverse": (1, 1),
                "solve": (2, 2), "triangular_solve": (2, 2), "log_determinant": (1, 1), "concat": (2, 64)}
# functions of a square matrix first: what each does, for messages
SQUARE_FIRST = {"quad_form": "takes a square matrix", "inverse": "inverts a square matrix",
                "solve": "solves a square system", "triangular_solve": "solves a (lower) triangular system",
                "log_determinant": "takes the determinant of a square matrix"}
FOLD = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge, "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
        "**": operator.pow, "neg": operator.neg, "real": float}


def fold(e: ir.Expr):
    """The value of an expression of literals and consts (`K > 1`), or None when it is not known when compiling."""
    if isinstance(e, ir.Lit):
        return e.value
    if isinstance(e, ir.Elementwise) and e.op in FOLD and not e.axes.all:
        args = [fold(a) for a in e.args]
        if all(a is not None for a in args):
            try:
                return FOLD[e.op](*args)
            except (ArithmeticError, ValueError, TypeError):  # 1 / 0; a complex power
                return None
    return None


class LinalgChecker:
    """Types the functions of LINALG_FUNCS, array literals and `a if c else b` over named dims."""

    def _linalg_call(self, e: ast.Call, ctx) -> ir.Expr:
        f = e.func
        if f == "cumsum":
            return self._cumsum(e, ctx)
        if f == "concat":
            return self._concat(e, ctx)
        args = [self.as_real(a) for a in self._exprs(e.args, ctx)]
        latent = any(a.latent for a in args)
        plates = self._plates_union(ctx, *(a.axes for a in args))
        a = args[0]
        item = a.axes.item
        if f in ("dot_self", "outer"):
            for node, x in zip(e.args, args):
                if len(x.axes.item) != 1:
                    self.sink.error(f"`{f}` takes vectors, but this argument {has_shape(x.axes.item)}", node.span)
                    raise Reported
            if f == "dot_self":  # a sum of squares: across devices too when the vector is sharded
                return self._reduce("sum", ir.Elementwise(a.axes, "real", a.latent, "square", (a,)), (0,), e)
            axes = ir.Axes(plates, item + args[1].axes.item)
            self._check_one_sharded(axes, e.span, "the result of `outer`")
            return ir.Function(axes, "real", latent, f, tuple(args), ())
        if len(item) != 2 or item[0] != item[1]:
            self.sink.error(f"`{f}` {SQUARE_FIRST[f]}, but its first argument {has_shape(item)}", e.args[0].span,
                            hint="a square matrix has the same dim twice, as `A: real[k, k]`" if len(item) == 2
                            else None)
            raise Reported
        self._not_sharded(f, item, e.span)
        if f == "inverse":
            return ir.Function(a.axes, "real", latent, f, (a,), ())
        if f == "log_determinant":
            return ir.Function(ir.Axes(a.axes.plates, ()), "real", latent, f, (a,), ())
        b = args[1]
        bi = b.axes.item
        what = "the vector" if f == "quad_form" else "the right-hand side"
        if len(bi) not in (1, 2):
            self.sink.error(f"{what} of `{f}` is a vector [{item[1]}] or a matrix [{item[1]}, m], but this one "
                            f"{has_shape(bi)}", e.args[1].span)
            raise Reported
        if bi[0] != item[1]:
            self.sink.error(f"shape mismatch in `{f}`: the matrix {has_shape(item)} and {what} {has_shape(bi)}; "
                            f"dim `{bi[0]}` does not match dim `{item[1]}`", e.span,
                            hint=f"the first dim of {what} must be the matrix's dim `{item[1]}`")
            raise Reported
        self._not_sharded(f, bi, e.span)
        out = bi if f != "quad_form" else (() if len(bi) == 1 else (bi[1], bi[1]))
        return ir.Function(ir.Axes(plates, out), "real", latent, f, (a, b), ())

    def _derived_dim(self, dim: str, less: int, span) -> str:
        """The dim of `less` items fewer than `dim` (more when `less` < 0): `n-1`, `T+1`, or `dim` itself; a
        derived dim's base is never derived (`y[1:][1:]` has `n-2` items, `concat(y[1:], 0)` has `n`)."""
        d = self.dims.get(dim)
        if d is not None and d.source == "derived":
            dim, less = d.base, less + d.offset
        if less == 0:
            return dim
        name = f"{dim}-{less}" if less > 0 else f"{dim}+{-less}"
        self.dims.setdefault(name, ir.Dim(name, None, "derived", False, span, base=dim, offset=less))
        return name

    def _not_sharded(self, f, dims, span):
        d = next((d for d in dims if self._is_sharded(d)), None)
        if d is not None:
            self.sink.error(f"`{f}` works on whole vectors and matrices, but dim `{d}` is sharded: each device "
                            f"holds only its own items of `{d}`", span,
                            hint=f"keep `{d}` replicated (drop `sharded over devices` from its plate)")
            raise Reported

    def _cumsum(self, e: ast.Call, ctx) -> ir.Expr:
        a = self.expr(e.args[0], ctx)
        item = a.axes.item
        if not item:
            self.sink.error("`cumsum` works along a dim, but its argument is a scalar here", e.span)
            raise Reported
        pos = len(item) - 1
        if len(e.args) == 2:
            d = e.args[1]
            at = [p for p, x in enumerate(item) if isinstance(d, ast.Name) and x == d.id]
            if len(at) != 1:
                names = ", ".join(f"`{x}`" for x in dict.fromkeys(item))
                self.sink.error(f"the second argument of `cumsum` names the dim to sum along, one of {names}"
                                if not at else f"`cumsum(..., {d.id})` is ambiguous: the value {has_shape(item)}",
                                d.span, hint="without a dim, `cumsum` sums along the last one" if at else None)
                raise Reported
            pos = at[0]
        self._not_sharded("cumsum", item[pos:pos + 1], e.span)
        dtype = "int" if a.dtype == "bool" else a.dtype
        return ir.Reduce(a.axes, dtype, a.latent, "cumsum", a, (pos,), None)

    def _concat(self, e: ast.Call, ctx) -> ir.Expr:
        """`concat(a, b, ...)` along the last dim (a scalar is one item); the dims before it broadcast."""
        parts = self._exprs(e.args, ctx)
        lead, known, unknown = (), 0, []
        for node, p in zip(e.args, parts):
            item = p.axes.item
            if item:
                lead = self._broadcast(lead, item[:-1], node.span, "`concat` (the dims before the last one)",
                                       "the broadcast of the parts before it", "this one")
            last = item[-1] if item else "1"
            self._not_sharded("concat", (last,), node.span)
            d = self.dims.get(last)
            if last == "1" or (d is not None and d.size is not None):
                known += 1 if last == "1" else d.size
            elif d is not None and d.source == "derived":
                unknown.append((d.base, d.offset, node))
            else:
                unknown.append((last, 0, node))
        if len(unknown) > 1:
            self.sink.error(f"pplc cannot name the size of this concatenation: its parts' last dims "
                            f"{', '.join(f'`{u[0]}`' for u in unknown)} are each sized by the data", e.span,
                            hint="concatenate at most one part sized by the data with parts of known sizes "
                                 "(`concat(y, [0])`, `concat(y[1:], y[:1])`, consts), or join them outside the model")
            raise Reported
        if not unknown:
            dim = self._literal_dim(known, e)
        else:
            base, offset, _ = unknown[0]
            dim = self._derived_dim(base, offset - known, e.span)
        dtype = "real" if any(p.dtype == "real" for p in parts) else "int"
        axes = ir.Axes(self._plates_union(ctx, *(p.axes for p in parts)), lead + (dim,))
        return ir.Function(axes, dtype, any(p.latent for p in parts), "concat", tuple(parts), (dim,))

    def _array_lit(self, e: ast.ArrayLit, ctx) -> ir.Expr:
        """`[a, b, c]`: a new first dim of as many items; the items' shapes broadcast together."""
        items = self._exprs(e.items, ctx)
        item = ()
        for node, x in zip(e.items, items):
            item = self._broadcast(item, x.axes.item, node.span, "`[...]`", "the broadcast of the items before it",
                                   "this item")
        n = self._literal_dim(len(items), e)
        dtypes = {x.dtype for x in items}
        dtype = "real" if "real" in dtypes else "int" if "int" in dtypes else "bool"
        axes = ir.Axes(self._plates_union(ctx, *(x.axes for x in items)), (n,) + item)
        self._check_one_sharded(axes, e.span, "this array")
        return ir.Function(axes, dtype, any(x.latent for x in items), "stack", tuple(items), (n,))

    def _if_else(self, e: ast.IfElse, ctx) -> ir.Expr:
        """`a if c else b`: `c` known before sampling (data, consts); a const one picks its branch when
        compiling, any other is `where` (elementwise; both branches computed)."""
        cond, a, b = self._exprs([e.cond, e.then, e.orelse], ctx)
        if cond.latent:
            self.sink.error("the condition of `... if ... else ...` must be known before sampling (data and "
                            "consts), but this one depends on a random variable", e.cond.span,
                            hint="`where(COND, A, B)` chooses elementwise by a latent condition")
            raise Reported
        if cond.dtype != "bool":
            self.sink.error(f"the condition of `... if ... else ...` is a bool (a comparison), but this one is "
                            f"{cond.dtype}", e.cond.span, hint="e.g. `a if K > 1 else b`")
            raise Reported
        known = fold(cond)
        if known is not None:
            return a if known else b
        item = self._broadcast(self._broadcast(cond.axes.item, a.axes.item, e.span, "`... if ... else ...`",
                                               "the condition", "the first branch"),
                               b.axes.item, e.span, "`... if ... else ...`", "the condition and first branch",
                               "the second branch")
        axes = ir.Axes(self._plates_union(ctx, cond.axes, a.axes, b.axes), item)
        self._check_one_sharded(axes, e.span, "the result of `... if ... else ...`")
        dtype = "real" if "real" in (a.dtype, b.dtype) else "int" if "int" in (a.dtype, b.dtype) else "bool"
        return ir.Elementwise(axes, dtype, a.latent or b.latent, "where", (cond, a, b))
