"""What the parts of the checker share: the stop-after-an-error exception, limits, words, AST walks."""
from __future__ import annotations

from ...dsl import ast
from .. import ir
from ..ir import Kind, Variable


class Reported(Exception):
    """An expression already reported; stops checking the statement without cascading."""


INT_MAX = 2**31 - 1  # ints are int32 on the device
REAL_MAX = 3.4028234663852886e38  # and reals float32


def signed_literal(e: ir.Expr) -> ir.Expr:
    """`-1` typed as a literal -1 (the grammar reads it as the negation of 1), for slice bounds and type bounds."""
    if isinstance(e, ir.Elementwise) and e.op == "neg" and isinstance(e.args[0], ir.Lit):
        return ir.Lit(e.axes, e.dtype, False, -e.args[0].value)
    return e


def shape_str(dims) -> str:
    return "[" + ", ".join(dims) + "]" if dims else "a scalar"


def has_shape(dims) -> str:
    """`has shape [a, b]`, or `is a scalar`."""
    return f"has shape [{', '.join(dims)}]" if dims else "is a scalar"


def sizes_a_dim(var: Variable) -> bool:
    """A const, or int scalar data: a variable that can give a dim its size."""
    return var.kind == Kind.CONST or (var.kind == Kind.DATA and var.dtype == "int" and not var.phys)


KIND_WORDS = {Kind.DATA: "data", Kind.LATENT: "a random variable", Kind.OBSERVED: "data",
              Kind.DETERMINISTIC: "computed from random variables", Kind.TRANSFORMED: "computed from data",
              Kind.TRACK: "a tracked quantity"}

MAX_DEPTH = 150  # of nested operations in one expression (checking and code generation recurse on them)


def _children(e: ast.Expr) -> list[ast.Expr]:
    if isinstance(e, ast.BinOp):
        return [e.left, e.right]
    if isinstance(e, ast.Neg):
        return [e.operand]
    if isinstance(e, ast.Index):
        return [e.value, *e.indices]
    if isinstance(e, ast.Slice):
        return [x for x in (e.start, e.stop) if x is not None]
    if isinstance(e, ast.Attr):
        return [e.value]
    if isinstance(e, ast.Call):
        return [*e.args, *(k.value for k in e.kwargs)]
    if isinstance(e, ast.Method):
        return [e.value, *e.args, *(k.value for k in e.kwargs)]
    if isinstance(e, ast.ArrayLit):
        return list(e.items)
    if isinstance(e, ast.IfElse):
        return [e.cond, e.then, e.orelse]
    return []


def nesting_depth(e: ast.Expr) -> int:
    """How deeply an expression nests (without recursion: the depth is what is being checked)."""
    best, stack = 0, [(e, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in _children(node))
    return best


def expressions_of(st: ast.Stmt) -> list[ast.Expr]:
    return [x for x in (getattr(st, "value", None), getattr(st, "dist", None)) if isinstance(x, ast.Expr)]


def walk_statements(stmts):
    """Every statement, plates' bodies included, in order."""
    for st in stmts:
        yield st
        if isinstance(st, ast.Plate):
            yield from walk_statements(st.body)
