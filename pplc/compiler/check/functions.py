"""User functions: `def name(a, b) = EXPR` at the top level, inlined at each call and checked there."""
from __future__ import annotations

import dataclasses

from ...dsl import ast
from .base import Reported

MAX_INLINE_DEPTH = 20  # calls of user functions within user functions


def substitute(e, mapping: dict):
    """`e` with every name in `mapping` replaced by its expression (keyword names and dims untouched)."""
    if isinstance(e, ast.Name):
        return mapping.get(e.id, e)
    if isinstance(e, tuple):
        return tuple(substitute(x, mapping) for x in e)
    if isinstance(e, (ast.Expr, ast.Keyword)):
        return dataclasses.replace(e, **{f.name: substitute(getattr(e, f.name), mapping)
                                         for f in dataclasses.fields(e) if f.name not in ("span", "name")})
    return e


class FunctionChecker:
    """Defines user functions and expands their calls: the body with the arguments in place of the parameters,
    typed where it is called (so one function serves scalars, vectors and plate items alike)."""

    def _function_def(self, s: ast.FunctionDef, ctx):
        if ctx:
            self.sink.error("functions are defined at the top level, outside plates", s.span)
            raise Reported
        if not self._name_ok(s.name, s.name_span):
            raise Reported
        if s.name in self.functions or s.name in self.vars:
            self.sink.error(f"`{s.name}` is already defined", s.name_span)
            raise Reported
        twice = next((p for i, p in enumerate(s.params) if p in s.params[:i]), None)
        if twice:
            self.sink.error(f"parameter `{twice}` is named twice", s.span)
            raise Reported
        self.functions[s.name] = s

    def _user_call(self, e: ast.Call, ctx):
        f = self.functions[e.func]
        if e.kwargs or len(e.args) != len(f.params):
            self.sink.error(f"`{f.name}` takes {len(f.params)} argument{'s' * (len(f.params) != 1)} "
                            f"({', '.join(f.params)}), got {len(e.args) + len(e.kwargs)}", e.span,
                            hint=f"it is defined at {f.span}")
            raise Reported
        if self.inlining.count(f.name) or len(self.inlining) >= MAX_INLINE_DEPTH:
            self.sink.error(f"`{f.name}` calls itself (through {' -> '.join(self.inlining + [f.name])}); functions "
                            "are inlined, so they cannot recurse", e.span, hint="write a recurrence instead")
            raise Reported
        self.inlining.append(f.name)
        try:
            return self.expr(substitute(f.body, dict(zip(f.params, e.args))), ctx)
        finally:
            self.inlining.pop()
