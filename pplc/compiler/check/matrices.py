"""Matrix, vector and Gaussian-process functions: cholesky, diag, eye, rep, gp_exp_quad_cov, log_mix (and linalg's)."""
from __future__ import annotations

from ...dsl import ast
from .. import ir
from .base import Reported, has_shape
from .linalg import LINALG_FUNCS, LinalgChecker

# name -> (min args, max args)
MATRIX_FUNCS = {"cholesky": (1, 1), "diag": (1, 1), "eye": (1, 1), "rep": (2, 2), "gp_exp_quad_cov": (3, 3),
                "log_mix": (3, 3), **LINALG_FUNCS}


class MatrixChecker(LinalgChecker):
    """Types the functions of MATRIX_FUNCS: their shapes over named dims, checked at each call."""

    def _dim_arg(self, node: ast.Expr, f: str) -> str:
        """An argument that names a dim (`eye(N)`, `rep(0, N)`), or a whole number."""
        if isinstance(node, ast.Num) and node.is_int and node.value > 0:
            name = str(node.value)
            self.dims.setdefault(name, ir.Dim(name, node.value, "literal", False, node.span))
            return name
        if isinstance(node, ast.Name) and (node.id in self.dims or node.id in self.vars):
            return self._dim(ast.Dim(node.id, None, node.span))
        self.sink.error(f"the size argument of `{f}` is a dim (a name, such as `N`) or a whole number", node.span)
        raise Reported

    def _matrix_call(self, e: ast.Call, ctx) -> ir.Expr:
        f = e.func
        lo, hi = MATRIX_FUNCS[f]
        if e.kwargs or not lo <= len(e.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} or {hi}" if hi == lo + 1 else f"{lo} or more"
            self.sink.error(f"`{f}` takes {want} argument{'s' * (hi > 1)}, got {len(e.args) + len(e.kwargs)}",
                            e.span)
            raise Reported
        if f in LINALG_FUNCS:
            return self._linalg_call(e, ctx)
        if f == "eye":
            n = self._dim_arg(e.args[0], f)
            return ir.Function(ir.Axes((), (n, n)), "real", False, f, (), (n,))
        if f == "rep":
            n = self._dim_arg(e.args[1], f)
            (x,) = self._exprs(e.args[:1], ctx)
            return ir.Function(ir.Axes(x.axes.plates, x.axes.item + (n,)), "real", x.latent, f, (self.as_real(x),),
                               (n,))
        args = [self.as_real(a) for a in self._exprs(e.args, ctx)]
        latent = any(a.latent for a in args)
        plates = self._plates_union(ctx, *(a.axes for a in args))
        if f == "log_mix":
            item = ()
            for node, a in zip(e.args, args):
                item = self._broadcast(item, a.axes.item, node.span, "`log_mix`")
            return ir.Function(ir.Axes(plates, item), "real", latent, f, tuple(args), ())
        a = args[0]
        item = a.axes.item
        if f == "cholesky":
            if len(item) != 2 or item[0] != item[1]:
                self.sink.error(f"`cholesky` factors a square matrix, but its argument {has_shape(item)}", e.span)
                raise Reported
            return ir.Function(a.axes, "real", latent, f, (a,), ())
        if f == "diag":
            if len(item) != 1:
                self.sink.error(f"`diag` makes a diagonal matrix from a vector, but its argument {has_shape(item)}",
                                e.span)
                raise Reported
            return ir.Function(ir.Axes(a.axes.plates, item * 2), "real", latent, f, (a,), ())
        # gp_exp_quad_cov(x, alpha, rho): alpha^2 exp(-|x_i - x_j|^2 / (2 rho^2)), x: [n] or [n, d]
        if len(item) not in (1, 2):
            self.sink.error(f"`gp_exp_quad_cov` takes points as a vector [n] or a matrix [n, d], but its first "
                            f"argument {has_shape(item)}", e.args[0].span)
            raise Reported
        for node, b in zip(e.args[1:], args[1:]):
            if b.axes.item:
                self.sink.error(f"the magnitude and length scale of `gp_exp_quad_cov` are scalars, but this one "
                                f"{has_shape(b.axes.item)}", node.span)
                raise Reported
        return ir.Function(ir.Axes(plates, (item[0], item[0])), "real", latent, f, tuple(args), ())
