"""Print an AST back as .ppl source: parsing the text gives the same AST (spans aside)."""
from __future__ import annotations

import dataclasses
import math

from . import ast
from .spans import NO_SPAN, Span

# Binding power of each expression form, as the grammar nests them (higher binds tighter).
CMP, SUM, PRODUCT, UNARY, POWER, POSTFIX, ATOM = range(1, 8)
LEVEL = {"+": SUM, "-": SUM, "*": PRODUCT, "/": PRODUCT, "@": PRODUCT, "**": POWER}
COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


def _level(e: ast.Expr) -> int:
    if isinstance(e, ast.BinOp):
        return CMP if e.op in COMPARISONS else LEVEL[e.op]
    if isinstance(e, ast.Neg):
        return UNARY
    if isinstance(e, (ast.Index, ast.Attr, ast.Call, ast.Method)):
        return POSTFIX
    return ATOM


def _at(e: ast.Expr, level: int) -> str:
    """`e`, in parentheses if it binds more loosely than `level` needs."""
    text = expr(e)
    return text if _level(e) >= level else f"({text})"


def _number(n: ast.Num) -> str:
    if n.is_int:
        return str(int(n.value))
    v = float(n.value)
    if math.isinf(v):
        return "1e999"  # what the parser reads as infinity
    text = repr(v)
    return text if any(c in text for c in ".e") else text + ".0"


def expr(e: ast.Expr) -> str:
    """The source text of an expression."""
    if isinstance(e, ast.Num):
        return _number(e)
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Neg):
        return "-" + _at(e.operand, UNARY)
    if isinstance(e, ast.BinOp):
        if e.op in COMPARISONS:  # comparisons do not chain: both sides are sums
            return f"{_at(e.left, SUM)} {e.op} {_at(e.right, SUM)}"
        if e.op == "**":  # right-associative: postfix ** unary
            return f"{_at(e.left, POSTFIX)} ** {_at(e.right, UNARY)}"
        level = LEVEL[e.op]  # left-associative
        return f"{_at(e.left, level)} {e.op} {_at(e.right, level + 1)}"
    if isinstance(e, ast.Index):
        return f"{_at(e.value, POSTFIX)}[{', '.join(_subscript(i) for i in e.indices)}]"
    if isinstance(e, ast.Attr):  # `0.T` would read as the number `0.` and then `T`
        value = f"({expr(e.value)})" if isinstance(e.value, ast.Num) else _at(e.value, POSTFIX)
        return f"{value}.{e.attr}"
    if isinstance(e, ast.Method):
        args = [expr(a) for a in e.args] + [f"{k.name} = {expr(k.value)}" for k in e.kwargs]
        return f"{_at(e.value, POSTFIX)}.{e.method}({', '.join(args)})"
    if isinstance(e, ast.Call):
        args = [expr(a) for a in e.args] + [f"{k.name} = {expr(k.value)}" for k in e.kwargs]
        return f"{e.func}({', '.join(args)})"
    if isinstance(e, ast.ArrayLit):
        return f"[{', '.join(expr(i) for i in e.items)}]"
    if isinstance(e, ast.IfElse):  # the whole form is in parentheses wherever it is nested
        return f"({_at(e.then, CMP)} if {_at(e.cond, CMP)} else {expr(e.orelse)})"
    raise TypeError(f"not an expression: {e!r}")


def _subscript(i: ast.Expr) -> str:
    if isinstance(i, ast.Slice):
        return f"{'' if i.start is None else expr(i.start)}:{'' if i.stop is None else expr(i.stop)}"
    return expr(i)


def type_(t: ast.Type) -> str:
    dims = ", ".join((d.name + (f"-{d.less}" if d.less else "")) if d.name is not None else str(d.size)
                     for d in t.dims)
    bounds = ", ".join(f"{b.name}={_at(b.value, POSTFIX)}" for b in t.bounds)
    return t.dtype + (f"<{bounds}>" if t.bounds else "") + (f"[{dims}]" if t.dims else "")


def statement(s: ast.Stmt, indent: str = "") -> list[str]:
    """The lines of one statement (a plate's body indented by two spaces)."""
    if isinstance(s, ast.DataDecl):
        return [f"{indent}data {s.name}: {type_(s.type)}"]
    if isinstance(s, ast.ConstDecl):
        return [f"{indent}const {s.name} = {expr(s.value)}"]
    if isinstance(s, ast.Sample):
        typed = f": {type_(s.type)}" if s.type is not None else ""
        return [f"{indent}{s.name}{typed} ~ {expr(s.dist)}"]
    if isinstance(s, ast.Assign):
        return [f"{indent}{s.name} = {expr(s.value)}"]
    if isinstance(s, ast.Track):
        return [f"{indent}track {s.name} = {expr(s.value)}"]
    if isinstance(s, ast.ParamDecl):
        return [f"{indent}{s.name}: {type_(s.type)}"]
    if isinstance(s, ast.FunctionDef):
        return [f"{indent}def {s.name}({', '.join(s.params)}) = {expr(s.body)}"]
    if isinstance(s, ast.Target):
        return [f"{indent}target += {expr(s.value)}"]
    if isinstance(s, ast.Plate):
        head = f"{indent}plate {s.dim}{' sharded over devices' if s.sharded else ''} {{"
        body = [line for inner in s.body for line in statement(inner, indent + "  ")]
        return [head, *body, f"{indent}}}"]
    if isinstance(s, ast.Recur):
        body = [f"{indent}  {x.name}[{expr(x.index)}] = {expr(x.value)}" for x in s.lines]
        return [f"{indent}recur {s.index} in {s.dim} {{", *body, f"{indent}}}"]
    raise TypeError(f"not a statement: {s!r}")


def program(p: ast.Program) -> str:
    """The source text of a whole program."""
    return "".join(line + "\n" for s in p.statements for line in statement(s))


def without_spans(node):
    """The same AST with every span set to NO_SPAN (to compare ASTs by their content)."""
    if isinstance(node, Span):
        return NO_SPAN
    if isinstance(node, tuple):
        return tuple(without_spans(x) for x in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return dataclasses.replace(node, **{f.name: without_spans(getattr(node, f.name))
                                            for f in dataclasses.fields(node)})
    return node
