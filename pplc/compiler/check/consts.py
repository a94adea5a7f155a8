"""Consts: folding their expressions (numbers, other consts, arithmetic) and checking number literals."""
from __future__ import annotations

import math

from ...dsl import ast
from .. import ir
from .base import INT_MAX, KIND_WORDS, REAL_MAX, Reported
from .shapes import ARITH


class ConstChecker:
    """`const` declarations (with `--const` overrides) and number literals within the device's int32 and float32."""

    def _const(self, s: ast.ConstDecl, ctx):
        self._declaration_ok(s, ctx, "const")
        if s.name in self.dims and self.dims[s.name].source == "data":
            first_use = self.dim_first_use.get(s.name, self.dims[s.name].span)
            self.sink.error(f"`{s.name}` is used as a dim (at {first_use}) "
                            f"before this const gives its size", s.name_span,
                            hint=f"move `const {s.name} = ...` above its first use")
            raise Reported
        value = self._const_value(s.value, s.name)
        if s.name in self.const_overrides:  # `--const NAME=VALUE` on the command line
            value = self.const_overrides.pop(s.name)
            if isinstance(value, float) and not abs(value) <= REAL_MAX:
                self.sink.error(f"--const {s.name}={value}: a const must be a finite number", s.name_span)
                raise Reported
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_MAX:
            self.sink.error(f"const `{s.name}` is {value}, larger than the largest int ({INT_MAX})", s.value.span,
                            hint="ints are 32-bit on the device; for a large real value write a real, e.g. `1e10`")
            raise Reported
        dtype = "int" if isinstance(value, int) and not isinstance(value, bool) else "real"
        self._define(self._var(s, s.name, ir.Kind.CONST, dtype, (), (), const_value=value), s.name_span)

    def _const_value(self, e: ast.Expr, cname: str):
        """The value of a const's expression: numbers, other consts, + - * / ** and unary minus."""
        hint = f"a const is a number, another const, or arithmetic on them; for a value computed from data " \
               f"or random variables write `{cname} = EXPR` (no `const`)"
        if isinstance(e, ast.Num):
            return self._literal(e)
        if isinstance(e, ast.Name):
            var = self.vars.get(e.id)
            if var is not None and var.kind == ir.Kind.CONST:
                return var.const_value
            if var is None:
                self._name(e, ())  # unknown, or defined later: reported there
                raise Reported
            self.sink.error(f"const `{cname}` is not constant: `{e.id}` is {KIND_WORDS.get(var.kind, var.kind)}",
                            e.span, hint=hint)
            raise Reported
        if isinstance(e, ast.Neg):
            return -self._const_value(e.operand, cname)
        if isinstance(e, ast.BinOp) and e.op in ARITH:
            a, b = self._const_value(e.left, cname), self._const_value(e.right, cname)
            return self._const_arith(e, a, b, cname)
        what = {ast.Call: "a function call", ast.Index: "an index", ast.Bool: "a bool", ast.Attr: "`.T`"}.get(
            type(e), "this operation")
        if isinstance(e, ast.Call):
            what = f"a call of `{e.func}`"
        elif isinstance(e, ast.BinOp):
            what = f"`{e.op}`"
        self.sink.error(f"const `{cname}` is not constant: {what} is not allowed in a const", e.span, hint=hint)
        raise Reported

    def _const_arith(self, e: ast.BinOp, a, b, cname: str):
        def bad(msg):
            self.sink.error(f"const `{cname}`: {msg}", e.span)
            raise Reported
        if e.op == "/" and b == 0:
            sp = e.right.span
            text = self.source.line(sp.line)[sp.col - 1:sp.end_col - 1] if sp.line == sp.end_line else "the divisor"
            self.sink.error(f"const `{cname}` divides by zero: `{text.strip('()')}` is 0", e.span)
            raise Reported
        if e.op == "**":
            if a == 0 and b < 0:
                bad("zero to a negative power")
            if a < 0 and isinstance(b, float) and not b.is_integer():
                bad(f"a negative number to a fractional power, ({a}) ** {b}, is not a real number")
            if abs(a) > 1 and b * math.log2(abs(a)) > 128:
                bad(f"{a} ** {b} is too large")
        try:
            r = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                 "**": lambda: a ** b}[e.op]()
        except (OverflowError, ZeroDivisionError, ValueError):
            bad(f"the value of `{e.op}` is not a finite number")
        if isinstance(r, float) and not abs(r) <= REAL_MAX:
            bad("the value is too large for a real (the largest is about 3.4e38)")
        if isinstance(r, int) and abs(r) > 2**127:
            bad("the value is too large")
        return r

    def _literal(self, e: ast.Num):
        """A number literal, checked against the device's int32 and float32 ranges."""
        text = self.source.line(e.span.line)[e.span.col - 1:e.span.end_col - 1] if e.span.line == e.span.end_line \
            else str(e.value)
        if e.is_int and e.value > INT_MAX:
            self.sink.error(f"the integer {text} is larger than the largest int ({INT_MAX})", e.span,
                            hint="ints are 32-bit on the device; for a large real value write a real, e.g. `1e10`")
            raise Reported
        if not e.is_int and not abs(e.value) <= REAL_MAX:
            self.sink.error(f"the number {text} is too large for a real (the largest is about 3.4e38)", e.span)
            raise Reported
        return e.value
