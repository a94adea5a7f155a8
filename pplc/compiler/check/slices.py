"""Slices in subscripts: `y[1:]`, `y[:-1]`, `X[:, 1:]`, `A[0, 2:]`, and the dims they derive."""
from __future__ import annotations

from ...dsl import ast
from .. import ir
from .base import Reported, signed_literal


class SliceChecker:
    """Types subscripts with slices: each slice gives its axis a derived dim (`n-1` for `y[1:]` and for `y[:-1]`,
    so lags line up), or a literal one when its size is known."""

    def _slice_bound(self, e: ast.Expr | None, ctx) -> int | None:
        if e is None:
            return None
        x = signed_literal(self.expr(e, ctx))
        if not isinstance(x, ir.Lit) or x.dtype != "int":
            self.sink.error("a slice's start and stop must be whole numbers (literals or consts)", e.span,
                            hint="e.g. `y[1:]`, `y[:-1]`, `x[2:n_max]` with `const n_max = 10`")
            raise Reported
        return int(x.value)

    def _subscript(self, e: ast.Index, v: ir.Expr, ctx) -> ir.Expr:
        items, out_item = [], []
        for pos, node in enumerate(e.indices):
            dim = v.axes.item[pos]
            if isinstance(node, ast.Slice):
                start, stop = self._slice_bound(node.start, ctx), self._slice_bound(node.stop, ctx)
                if self._is_sharded(dim) and (start, stop) != (None, None):
                    self.sink.error(f"cannot slice the sharded dim `{dim}`: each device holds only its own items",
                                    node.span, hint=f"keep `{dim}` replicated (drop `sharded over devices`)")
                    raise Reported
                items.append((start, stop))
                out_item.append(self._sliced_dim(dim, start, stop, node))
                continue
            i = self.expr(node, ctx)
            if not isinstance(i, ir.Lit):
                self.sink.error("a subscript with a slice takes whole numbers and slices only, not index arrays",
                                node.span, hint="gather first (`z = x[idx]`), then slice `z`")
                raise Reported
            self._index_ok(e, node, i, dim)
            items.append(int(i.value))
        axes = ir.Axes(v.axes.plates, tuple(out_item) + v.axes.item[len(e.indices):])
        return ir.Subscript(axes, v.dtype, v.latent, v, tuple(items))

    def _sliced_dim(self, dim: str, start: int | None, stop: int | None, node: ast.Slice) -> str:
        """The dim of `dim`'s items start:stop: literal when its size is known, else `dim-k` (the size less k)."""
        size = self.dims[dim].size if dim in self.dims else None
        if size is not None:
            n = len(range(size)[start:stop])
            if n < 1:
                self.sink.error(f"this slice of dim `{dim}` (size {size}) is empty", node.span)
                raise Reported
            return self._literal_dim(n, node)
        a, b = start or 0, stop
        if a >= 0 and (b is None or b < 0):
            k = a + (-b if b is not None else 0)
            return self._derived_dim(dim, k, node.span)  # check/linalg.py: `n-1`, and `n` for `(n+1)-1`
        if a < 0 and (b is None or b < 0):
            n = (0 if b is None else b) - a
        elif a >= 0 and b is not None and b >= 0:
            n = b - a
        else:
            n = 0
        if n < 1:
            self.sink.error(f"pplc cannot tell the size of this slice of dim `{dim}`", node.span,
                            hint="count both ends from the start (`x[2:5]`) or from the end (`x[-3:]`, `x[1:-1]`)")
            raise Reported
        return self._literal_dim(n, node)

    def _literal_dim(self, n: int, node) -> str:
        self.dims.setdefault(str(n), ir.Dim(str(n), n, "literal", False, node.span))
        return str(n)
