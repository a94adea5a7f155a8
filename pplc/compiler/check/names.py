"""Names: definitions in order, reserved names, references to variables, dims by name."""
from __future__ import annotations

from ...dsl import ast
from ...dsl.diagnostics import did_you_mean
from ...dsl.spans import Span
from .. import ir
from ..distributions import DISTRIBUTIONS
from .base import KIND_WORDS, Reported
from .shapes import FUNCTIONS


class NameChecker:
    """Defines each name once, resolves references to them, and turns dim names into the IR's dims."""

    def _define(self, var: ir.Variable, span: Span) -> None:
        if var.name in self.vars:
            prev = self.vars[var.name]
            self.sink.error(f"`{var.name}` is already defined (at {prev.span})", span,
                            hint="each name is defined once: give this one another name")
            raise Reported
        self.vars[var.name] = var
        self.order.append(var)

    def _declaration_ok(self, s: ast.DataDecl | ast.ConstDecl, ctx, what: str) -> None:
        """A `data` or `const` declaration is at the top level and its name is not reserved."""
        if ctx:
            self.sink.error(f"`{what}` declarations belong at the top level, outside plates", s.span)
            raise Reported
        if not self._name_ok(s.name, s.name_span):
            raise Reported

    def _name_ok(self, name: str, span: Span) -> bool:
        if name.startswith("_"):
            self.sink.error(f"names starting with '_' are reserved (`{name}`)", span)
            return False
        if name in DISTRIBUTIONS or name in FUNCTIONS:
            what = "distribution" if name in DISTRIBUTIONS else "function"
            self.sink.error(f"`{name}` is the name of a built-in {what}",
                            span, hint=f"choose another name, e.g. `{name.lower()}_`")
            return False
        return True

    def _var(self, stmt, name, kind, dtype, plates, phys, **kw) -> ir.Variable:
        return ir.Variable(name=name, kind=kind, dtype=dtype, plates=plates, phys=phys, span=stmt.span,
                           line=stmt.span.line, source_line=self.source.line(stmt.span.line).strip(), **kw)

    def _name(self, e: ast.Name, ctx) -> ir.Expr:
        var = self.vars.get(e.id)
        if var is None and e.id in self.failed:
            raise Reported  # its definition had an error, reported there
        if var is None:
            later = self._defined_later(e.id)
            if later:
                self.sink.error(f"`{e.id}` is used before it is defined (at {later})", e.span,
                                hint="move its definition above this line")
            elif e.id in self.dims:
                self.sink.error(f"`{e.id}` is a dim, not a value", e.span)
            elif e.id in DISTRIBUTIONS:
                self.sink.error(f"distribution `{e.id}` can only follow `~`", e.span)
            else:
                self.sink.error(f"unknown name `{e.id}`", e.span,
                                hint=did_you_mean(e.id, [*self.vars, *self.failed]))
            raise Reported
        if var.kind == ir.Kind.CONST:
            return ir.Lit(ir.Axes(), var.dtype, False, var.const_value)
        if var.kind == ir.Kind.TRACK:
            self.sink.error(f"`{e.id}` is a tracked quantity; tracked values cannot be used in the model", e.span)
            raise Reported
        if var.kind == ir.Kind.OBSERVED:
            var = next(v for v in reversed(self.order)
                       if v.name == e.id and v.kind in (ir.Kind.DATA, ir.Kind.TRANSFORMED))
        view = self._view(var, ctx, e.span)
        return ir.Ref(view, var.dtype, var.latent, var.name, var.phys, var.kind)

    def _defined_later(self, name):
        def walk(stmts):
            for s in stmts:
                if isinstance(s, ast.Plate):
                    r = walk(s.body)
                    if r:
                        return r
                elif getattr(s, "name", None) == name:
                    return s.name_span
            return None
        return walk(self.program.statements)

    def _dim(self, d: ast.Dim) -> str:
        if d.less:  # `K-1`: as the dim of `x[1:]` for `x: real[K]`
            base = self._dim(ast.Dim(d.name, None, d.span))
            return self._sliced_dim(base, d.less, None, d)
        if d.size is not None:
            name = str(d.size)
            self.dims.setdefault(name, ir.Dim(name, d.size, "literal", False, d.span))
            return name
        name = d.name
        if name in self.dims:
            return name
        if name in self.failed:
            raise Reported
        self.dim_first_use.setdefault(name, d.span)
        var = self.vars.get(name)
        if var is not None and var.kind == ir.Kind.CONST:
            if not isinstance(var.const_value, int) or var.const_value < 1:
                self.sink.error(f"dim `{name}` needs a positive integer size, but const `{name}` is "
                                f"{var.const_value}", d.span)
                raise Reported
            dim = ir.Dim(name, var.const_value, "const", False, d.span)
        elif var is not None and var.kind == ir.Kind.DATA and var.dtype == "int" and not var.phys:
            dim = ir.Dim(name, None, "data-scalar", name in self.sharded, d.span)
        elif var is not None:
            self._not_a_dim(name, var, d.span)
            raise Reported
        else:
            dim = ir.Dim(name, None, "data", name in self.sharded, d.span)
        self.dims[name] = dim
        return name

    def _not_a_dim(self, name: str, var: ir.Variable, span: Span) -> None:
        if var.kind == ir.Kind.DATA and not var.phys:
            self.sink.error(f"`{name}` is {var.dtype} data, not a dim", span,
                            hint=f"a dim's size is a whole number: declare `data {name}: int`")
        elif var.kind == ir.Kind.DATA:
            dims = ", ".join(f"`{d}`" for d in var.phys)
            self.sink.error(f"`{name}` is a data array, not a dim", span,
                            hint=f"its dim{'s are' if len(var.phys) > 1 else ' is'} {dims}")
        else:
            self.sink.error(f"`{name}` is {KIND_WORDS.get(var.kind, var.kind)}, not a dim", span,
                            hint="a dim is a name whose size comes from the data, a `const`, or a whole number")
