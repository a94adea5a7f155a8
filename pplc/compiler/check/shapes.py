"""Expressions typed over named dims: broadcasting, `@`, indexing and gathers, reductions, function calls."""
from __future__ import annotations

from ...dsl import ast
from ...dsl.diagnostics import did_you_mean
from .. import ir
from ..distributions import DISTRIBUTIONS
from .base import Reported, has_shape, shape_str
from .dist_args import HMM_FUNCS
from .matrices import MATRIX_FUNCS

ELEMENTWISE_FUNCS = {"exp", "log", "log1p", "expm1", "sqrt", "abs", "sigmoid", "logit", "softplus",
                     "tanh", "square", "lgamma", "log_sigmoid"}
REDUCE_ALL = {"sum", "mean", "max", "min"}
LAST_AXIS_REDUCE = {"logsumexp", "argmax"}
LAST_AXIS_KEEP = {"softmax", "log_softmax"}
FUNCTIONS = ELEMENTWISE_FUNCS | REDUCE_ALL | LAST_AXIS_REDUCE | LAST_AXIS_KEEP | {"dot", "where"} | set(MATRIX_FUNCS)
FUNCTIONS |= HMM_FUNCS  # check/dist_args.py
FUNCTIONS |= {"ode_solve"}  # check/ode.py
ARITH = {"+", "-", "*", "/", "**"}
COMPARE = {"==", "!=", "<", "<=", ">", ">="}


def promote(*dtypes: str) -> str:
    if "real" in dtypes:
        return "real"
    if "int" in dtypes:
        return "int"
    return "bool"


class ExpressionChecker:
    """Types expressions: each gets its dtype, its axes (plate dims, then item dims) and whether it depends on a
    latent; shape errors are reported where they arise."""

    def expr(self, e: ast.Expr, ctx) -> ir.Expr:
        if self.recur is not None and isinstance(e, (ast.Name, ast.Index)):  # inside a `recur` block
            hit = self._recur_ref(e, ctx)
            if hit is not None:
                return hit
        if isinstance(e, ast.Num):
            return ir.Lit(ir.Axes(), "int" if e.is_int else "real", False, self._literal(e))
        if isinstance(e, ast.Bool):
            return ir.Lit(ir.Axes(), "bool", False, e.value)
        if isinstance(e, ast.Name):
            return self._name(e, ctx)
        if isinstance(e, ast.Neg):
            a = self.expr(e.operand, ctx)
            return ir.Elementwise(a.axes, promote(a.dtype, "int"), a.latent, "neg", (a,))
        if isinstance(e, ast.BinOp):
            return self._binop(e, ctx)
        if isinstance(e, ast.Index):
            return self._index(e, ctx)
        if isinstance(e, ast.Attr):
            v = self.expr(e.value, ctx)
            if e.attr != "T":
                self.sink.error(f"unknown attribute `.{e.attr}`; the only one is `.T` (transpose)", e.span)
                raise Reported
            if len(v.axes.item) != 2:
                self.sink.error(f"`.T` transposes a matrix, but this value {has_shape(v.axes.item)}", e.span)
                raise Reported
            return ir.Transpose(ir.Axes(v.axes.plates, v.axes.item[::-1]), v.dtype, v.latent, v)
        if isinstance(e, ast.Call):
            return self._call(e, ctx)
        if isinstance(e, ast.Method):
            return self._method(e, ctx)
        if isinstance(e, ast.ArrayLit):
            return self._array_lit(e, ctx)
        if isinstance(e, ast.IfElse):
            return self._if_else(e, ctx)
        raise AssertionError(e)

    def _exprs(self, exprs, ctx) -> list[ir.Expr]:
        """Check each expression; report the errors of all of them (they are independent) before giving up."""
        out, bad = [], False
        for x in exprs:
            try:
                out.append(self.expr(x, ctx))
            except Reported:
                bad = True
        if bad:
            raise Reported
        return out

    def _text(self, e: ast.Expr) -> str:
        """The source text of an expression (in parentheses unless it is a name or a call)."""
        sp = e.span
        if sp.line != sp.end_line:
            return "(...)"
        text = self.source.line(sp.line)[sp.col - 1:sp.end_col - 1]
        return text if isinstance(e, (ast.Name, ast.Call, ast.Num, ast.Attr, ast.Index)) else f"({text})"

    def _plates_union(self, ctx, *axes):
        have = set().union(*(set(a.plates) for a in axes))
        return tuple(p.dim for p in ctx if p.dim in have)

    def _broadcast(self, a, b, span, what, left="the left side", right="the right side"):
        out = []
        for i in range(1, max(len(a), len(b)) + 1):
            x = a[-i] if i <= len(a) else "1"
            y = b[-i] if i <= len(b) else "1"
            if x != y and x != "1" and y != "1":
                self.sink.error(f"shape mismatch in {what}: {left} {has_shape(a)} and {right} {has_shape(b)}; "
                                f"dim `{x}` does not match dim `{y}`", span,
                                hint="shapes line up from their last dim, as in NumPy: each pair of dims must be "
                                     "the same dim (or one of them 1)")
                raise Reported
            out.append(y if x == "1" else x)
        return tuple(reversed(out))

    def _binop(self, e: ast.BinOp, ctx) -> ir.Expr:
        a, b = self._exprs([e.left, e.right], ctx)
        latent = a.latent or b.latent
        if e.op == "@":
            return self._matmul(e, a, b, ctx)
        item = self._broadcast(a.axes.item, b.axes.item, e.span, f"`{e.op}`")
        axes = ir.Axes(self._plates_union(ctx, a.axes, b.axes), item)
        self._check_one_sharded(axes, e.span, "the result of `" + e.op + "`")
        if e.op in COMPARE:
            dtype = "bool"
        elif e.op in ("/", "**"):
            dtype = "real"
        else:
            dtype = promote(a.dtype, b.dtype, "int")
        return ir.Elementwise(axes, dtype, latent, e.op, (a, b))

    def _matmul(self, e, a, b, ctx):
        ra, rb = len(a.axes.item), len(b.axes.item)
        if ra == 0 or rb == 0 or ra > 2 or rb > 2:
            self.sink.error(f"`@` multiplies vectors and matrices, but the left side {has_shape(a.axes.item)} "
                            f"and the right side {has_shape(b.axes.item)}", e.span,
                            hint="use `*` to multiply by a scalar" if 0 in (ra, rb) else None)
            raise Reported
        ka, kb = a.axes.item[-1], b.axes.item[0]
        if ka != kb:
            fix = None
            left, right = self._text(e.left), self._text(e.right)
            if ra == 2 and a.axes.item[0] == kb:
                fix = f"transpose the left side: `{left}.T @ {right}`"
            elif rb == 2 and b.axes.item[-1] == ka:
                fix = f"transpose the right side: `{left} @ {right}.T`"
            self.sink.error(f"shape mismatch in `@`: {shape_str(a.axes.item)} @ {shape_str(b.axes.item)} would sum "
                            f"dim `{ka}` of the left side against dim `{kb}` of the right side", e.span,
                            hint=fix or "the last dim of the left side must be the first dim of the right side")
            raise Reported
        if self._is_sharded(ka):
            self.sink.error(f"`@` would sum over the sharded dim `{ka}` here, outside its plate", e.span,
                            hint=f"write the sum inside `plate {ka}`, where each item is seen one at a time")
            raise Reported
        item = a.axes.item[:-1] + b.axes.item[1:]
        axes = ir.Axes(self._plates_union(ctx, a.axes, b.axes), item)
        self._check_one_sharded(axes, e.span, "the result of `@`")
        return ir.MatMul(axes, "real", a.latent or b.latent, a, b)

    def _index(self, e: ast.Index, ctx):
        """`x[0]`, `x[idx]` and NumPy's advanced indexing `x[i, j, ...]`: the indices (int literals, integer data)
        take the first item axes, their shapes broadcast together, and their shape replaces the indexed axes."""
        v = self.expr(e.value, ctx)
        if len(e.indices) > len(v.axes.item):
            extra = e.indices[len(v.axes.item)]
            self.sink.error("too many indices: the value is a scalar here" if not v.axes.item else
                            f"too many indices: the value {has_shape(v.axes.item)}", extra.span)
            raise Reported
        if any(isinstance(i, ast.Slice) for i in e.indices):
            return self._subscript(e, v, ctx)
        idx = self._exprs(e.indices, ctx)
        for pos, (node, i) in enumerate(zip(e.indices, idx)):
            self._index_ok(e, node, i, v.axes.item[pos])
        if all(isinstance(i, ir.Lit) for i in idx):  # x[0, 1] is x[0][1]
            for i in idx:
                v = ir.TakeIndex(ir.Axes(v.axes.plates, v.axes.item[1:]), v.dtype, v.latent, v, int(i.value))
            return v
        if v.axes.plates:
            self.sink.error("gather from a value that varies over the enclosing plate is not supported",
                            e.span, hint="index a variable declared outside the plate")
            raise Reported
        arrays = [i for i in idx if not isinstance(i, ir.Lit)]
        rest = v.axes.item[len(idx):]
        if len(idx) == 1:
            (i,) = idx
            axes = ir.Axes(i.axes.plates, i.axes.item + rest)
            self._check_one_sharded(axes, e.span, "the gather")
            return ir.Gather(axes, v.dtype, v.latent, v, i)
        item, before = (), []
        for i, node in zip(idx, e.indices):
            if not isinstance(i, ir.Lit):
                left = f"index `{before[0]}`" if len(before) == 1 else "the indices before it together"
                item = self._broadcast(item, i.axes.item, node.span, "the indices (they broadcast together)",
                                       left, f"index `{self._text(node)}`")
                before.append(self._text(node))
        axes = ir.Axes(self._plates_union(ctx, *(i.axes for i in arrays)), item + rest)
        self._check_one_sharded(axes, e.span, "the gather")
        return ir.MultiIndex(axes, v.dtype, v.latent, v, tuple(idx), len(item))

    def _index_ok(self, e, node, i, dim):
        """One index of `e` (`node`, checked as `i`) into an axis of dim `dim`."""
        if isinstance(i, ir.Lit):
            if i.dtype != "int":
                self.sink.error("an index must be an integer", node.span)
                raise Reported
            size = self.dims[dim].size if dim in self.dims else None
            if size is not None and not -size <= i.value < size:
                self.sink.error(f"index {i.value} is out of range for dim `{dim}` of size {size} "
                                "(indices start at 0)", node.span)
                raise Reported
            if self._is_sharded(dim):
                self.sink.error(f"cannot take one element of the sharded dim `{dim}`: each device holds only "
                                f"its own items of `{dim}`", node.span,
                                hint=f"keep `{dim}` replicated (drop `sharded over devices` from its plate)")
                raise Reported
            return
        if i.dtype != "int" or i.latent:
            why = "depends on a random variable" if i.latent else f"is {i.dtype}"
            iname = node.id if isinstance(node, ast.Name) else "idx"
            self.sink.error(f"an index must be integer data or a whole number, but this one {why}", node.span,
                            hint=f"declare the index array `data {iname}: int[...]`" if not i.latent else None)
            raise Reported
        if isinstance(i, ir.Ref) and i.kind in (ir.Kind.DATA, ir.Kind.TRANSFORMED):  # its values: checked when bound
            self.index_checks.setdefault((i.name, dim), ir.IndexCheck(i.name, dim, node.span))
        if self._is_sharded(dim):
            across = next((d for d in i.axes.all if self._is_sharded(d)), None)
            msg = (f"gather across two sharded plates: the index varies over sharded `{across}` and picks "
                   f"items of sharded `{dim}`") if across else f"gather from the sharded dim `{dim}`"
            self.sink.error(msg + f", but each device holds only its own items of `{dim}`", e.span,
                            hint=f"keep `{dim}` replicated (drop `sharded over devices` from its plate)")
            raise Reported

    def _call(self, e: ast.Call, ctx):
        f = e.func
        if f in self.functions:
            return self._user_call(e, ctx)
        if f == "ode_solve":
            return self._ode_solve(e, ctx)
        if f in DISTRIBUTIONS:
            self.sink.error(f"distribution `{f}` can only follow `~`", e.func_span)
            raise Reported
        if f not in FUNCTIONS:
            self.sink.error(f"unknown function `{f}`", e.func_span, hint=did_you_mean(f, FUNCTIONS))
            raise Reported
        if f in MATRIX_FUNCS:
            return self._matrix_call(e, ctx)
        if f in HMM_FUNCS:
            return self._hmm_call(e, ctx)
        if e.kwargs:
            self.sink.error(f"`{f}` takes no keyword arguments", e.kwargs[0].span)
            raise Reported
        nargs = {"dot": (2, 2), "where": (3, 3)}.get(f, (1, 2) if f in REDUCE_ALL else (1, 1))
        if not nargs[0] <= len(e.args) <= nargs[1]:
            want = str(nargs[0]) if nargs[0] == nargs[1] else f"{nargs[0]} or {nargs[1]}"
            self.sink.error(f"`{f}` takes {want} argument{'s' if nargs[1] > 1 else ''}, got {len(e.args)}", e.span)
            raise Reported
        if f in REDUCE_ALL and len(e.args) == 2:
            d = e.args[1]
            a = self.expr(e.args[0], ctx)
            if not isinstance(d, ast.Name) or d.id not in a.axes.item:
                self.sink.error(f"the second argument of `{f}` names the dim to reduce, one of "
                                f"{', '.join(f'`{x}`' for x in dict.fromkeys(a.axes.item))}" if a.axes.item else
                                f"`{f}` of a scalar has no dim to reduce", d.span)
                raise Reported
            at = tuple(p for p, x in enumerate(a.axes.item) if x == d.id)
            if len(at) > 1:
                self.sink.error(f"`{f}(..., {d.id})` is ambiguous: the value {has_shape(a.axes.item)}, with "
                                f"{len(at)} axes named `{d.id}`", d.span,
                                hint=f"`{f}(...)` without a dim reduces every axis")
                raise Reported
            return self._reduce(f, a, at, e)
        args = self._exprs(e.args, ctx)
        a = args[0]
        if f in ELEMENTWISE_FUNCS:
            return ir.Elementwise(a.axes, "real", a.latent, f, (self.as_real(a),))
        if f == "where":
            item = self._broadcast(self._broadcast(args[0].axes.item, args[1].axes.item, e.span, "`where`"),
                                   args[2].axes.item, e.span, "`where`")
            axes = ir.Axes(self._plates_union(ctx, *(x.axes for x in args)), item)
            self._check_one_sharded(axes, e.span, "the result of `where`")
            return ir.Elementwise(axes, promote(args[1].dtype, args[2].dtype), any(x.latent for x in args), "where",
                                  tuple(args))
        if f in REDUCE_ALL:
            if not a.axes.item:
                if f != "mean":
                    return a
                return ir.Elementwise(a.axes, "real", a.latent, "+", (a, ir.Lit(ir.Axes(), "real", False, 0.0)))
            return self._reduce(f, a, tuple(range(len(a.axes.item))), e)
        if f == "dot":
            b = args[1]
            if not a.axes.item or not b.axes.item or a.axes.item[-1] != b.axes.item[-1]:
                self.sink.error(f"`dot` needs two values with the same last dim, but the left side "
                                f"{has_shape(a.axes.item)} and the right side {has_shape(b.axes.item)}", e.span)
                raise Reported
            prod = self._binop_ir("*", a, b, e.span, ctx)
            return self._reduce("sum", prod, (len(prod.axes.item) - 1,), e)
        if not a.axes.item:
            self.sink.error(f"`{f}` works along the last dim, but its argument is a scalar here", e.span)
            raise Reported
        last = a.axes.item[-1]
        if self._is_sharded(last):
            how = {"logsumexp": "write `log(sum(exp(...)))`, whose sum is taken across devices",
                   "argmax": f"keep `{last}` replicated (drop `sharded over devices` from its plate)"}.get(
                f, f"keep `{last}` replicated (drop `sharded over devices` from its plate)")
            self.sink.error(f"`{f}` along the sharded dim `{last}` cannot be placed: each device holds only its own "
                            f"items of `{last}`, and pplc combines across devices only sums, means, max and min",
                            e.span, hint=how)
            raise Reported
        if f in LAST_AXIS_KEEP:
            return ir.LastAxis(a.axes, "real", a.latent, f, a)
        dtype = "int" if f == "argmax" else "real"
        return ir.Reduce(ir.Axes(a.axes.plates, a.axes.item[:-1]), dtype, a.latent, f, a,
                         (len(a.axes.item) - 1,), None)

    def _binop_ir(self, op, a, b, span, ctx):
        item = self._broadcast(a.axes.item, b.axes.item, span, f"`{op}`")
        axes = ir.Axes(self._plates_union(ctx, a.axes, b.axes), item)
        return ir.Elementwise(axes, promote(a.dtype, b.dtype, "int"), a.latent or b.latent, op, (a, b))

    def _reduce(self, f, a, positions, e):
        """`f` over the item axes of `a` at `positions`."""
        sharded = next((a.axes.item[p] for p in positions if self._is_sharded(a.axes.item[p])), None)
        item = tuple(d for p, d in enumerate(a.axes.item) if p not in positions)
        dtype = "real" if f == "mean" else a.dtype
        return ir.Reduce(ir.Axes(a.axes.plates, item), dtype, a.latent, f, a, tuple(positions), sharded)

    @staticmethod
    def as_real(a: ir.Expr) -> ir.Expr:
        """`a` as a real value (an int or bool literal becomes a real one; anything else is cast)."""
        if a.dtype == "real":
            return a
        if isinstance(a, ir.Lit):
            return ir.Lit(a.axes, "real", False, float(a.value))
        return ir.Elementwise(a.axes, "real", a.latent, "real", (a,))

    def _fill_plates(self, value: ir.Expr, ctx, span) -> ir.Expr:
        """A value declared inside plates gets their dims: broadcast over those it does not vary over."""
        plates = tuple(p.dim for p in ctx)
        if value.axes.plates == plates:
            return value
        axes = ir.Axes(plates, value.axes.item)
        self._check_one_sharded(axes, span, "this value, declared inside the plate" + "s" * (len(plates) > 1))
        return ir.Broadcast(axes, value.dtype, value.latent, value)
