"""Parse .ppl text into the AST, turning Lark's errors into located diagnostics."""
from __future__ import annotations

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from ..grammar import parser
from . import ast
from .diagnostics import Diagnostic, PPLError
from .spans import Source, Span
from .syntax_errors import syntax_diagnostic


def _span(meta_or_tok) -> Span:
    m = meta_or_tok
    return Span(m.line, m.column, m.end_line, m.end_column)


def _tok_span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)


@v_args(meta=True)
class ToAst(Transformer):
    """Lark tree -> frozen AST dataclasses with spans."""

    def __init__(self, source: Source):
        super().__init__()
        self.source = source

    def start(self, meta, items):
        return ast.Program(tuple(i for i in items if i is not None))

    # statements
    def _definition(cls):
        def build(self, meta, items):
            name, *rest = items
            return cls(_span(meta), str(name), _tok_span(name), *rest)
        return build

    data_decl, const_decl, sample_stmt, assign_stmt, track_stmt, param_decl = map(
        _definition, (ast.DataDecl, ast.ConstDecl, ast.Sample, ast.Assign, ast.Track, ast.ParamDecl))

    def def_stmt(self, meta, items):
        name, params, body = items
        return ast.FunctionDef(_span(meta), str(name), _tok_span(name), tuple(params or ()), body)

    def def_params(self, meta, items):
        return [str(i) for i in items]

    def target_stmt(self, meta, items):
        return ast.Target(_span(meta), items[0])

    def plate_stmt(self, meta, items):
        name, sharded, *body = items
        return ast.Plate(_span(meta), str(name), _tok_span(name), sharded is not None, tuple(body))

    def recur_stmt(self, meta, items):
        index, dim, *lines = items
        return ast.Recur(_span(meta), str(index), _tok_span(index), str(dim), _tok_span(dim), tuple(lines))

    def recur_line(self, meta, items):
        name, index, value = items
        return ast.RecurLine(str(name), _tok_span(name), index, value, _span(meta))

    def sharded(self, meta, items):
        return True

    def type(self, meta, items):
        dtype, bounds, dims = items
        return ast.Type(str(dtype), tuple(dims or ()), _span(meta), tuple(bounds or ()))

    def bounds(self, meta, items):
        first, *bounds, last = items
        for tok, want in ((first, "<"), (last, ">")):
            if str(tok) != want:
                raise PPLError(Diagnostic(f"expected `{want}` around the bounds, got `{tok}`", _tok_span(tok),
                                          hint="e.g. `real<lower=0, upper=1>`"), self.source)
        return bounds

    def bound(self, meta, items):
        name, value = items
        return ast.Bound(str(name), value, _span(meta))

    def shape(self, meta, items):
        return list(items)

    def dim_name(self, meta, items):
        return ast.Dim(str(items[0]), None, _tok_span(items[0]))

    def dim_less(self, meta, items):
        return ast.Dim(str(items[0]), None, _span(meta), int(items[1]))

    def dim_int(self, meta, items):
        return ast.Dim(None, int(items[0]), _tok_span(items[0]))

    # expressions
    def compare(self, meta, items):
        left, op, right = items
        return ast.BinOp(_span(meta), str(op), left, right)

    def _bin(op):
        def f(self, meta, items):
            return ast.BinOp(_span(meta), op, items[0], items[1])
        return f

    add, sub, mul, div, matmul, pow = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("@"), _bin("**")

    def neg(self, meta, items):
        return ast.Neg(_span(meta), items[0])

    def index(self, meta, items):
        return ast.Index(_span(meta), items[0], tuple(items[1:]))

    def slice(self, meta, items):
        start, stop = items
        return ast.Slice(_span(meta), start, stop)

    def array_lit(self, meta, items):
        return ast.ArrayLit(_span(meta), tuple(i for i in items if i is not None))

    def if_else(self, meta, items):
        then, cond, orelse = items
        return ast.IfElse(_span(meta), cond, then, orelse)

    def attr(self, meta, items):
        return ast.Attr(_span(meta), items[0], str(items[1]))

    def method(self, meta, items):
        value, name, args = items
        call = self.call(meta, [name, args])
        return ast.Method(_span(meta), value, str(name), _tok_span(name), call.args, call.kwargs)

    def call(self, meta, items):
        func, args = items
        args = args or []
        first_kw = next((i for i, a in enumerate(args) if isinstance(a, ast.Keyword)), len(args))
        late = next((a for a in args[first_kw:] if isinstance(a, ast.Expr)), None)
        if late is not None:
            kw = args[first_kw]
            raise PPLError(Diagnostic("a positional argument cannot follow a keyword argument", late.span,
                                      hint=f"name it too, or move it before `{kw.name} = ...`"), self.source)
        pos = tuple(a for a in args if isinstance(a, ast.Expr))
        kws = tuple(a for a in args if isinstance(a, ast.Keyword))
        return ast.Call(_span(meta), str(func), _tok_span(func), pos, kws)

    def args(self, meta, items):
        return [i for i in items if i is not None]

    def kwarg(self, meta, items):
        name, value = items
        return ast.Keyword(str(name), value, _span(meta))

    def int_lit(self, meta, items):
        return ast.Num(_tok_span(items[0]), int(items[0]), True)

    def float_lit(self, meta, items):
        return ast.Num(_tok_span(items[0]), float(items[0]), False)

    def true_lit(self, meta, items):
        return ast.Bool(_span(meta), True)

    def false_lit(self, meta, items):
        return ast.Bool(_span(meta), False)

    def name(self, meta, items):
        return ast.Name(_tok_span(items[0]), str(items[0]))


def parse(text: str, filename: str = "<string>") -> ast.Program:
    """Parse .ppl source; raise PPLError with located diagnostics on a syntax error."""
    source = Source(text, filename)
    try:
        tree = parser().parse(text)
    except UnexpectedInput as exc:
        raise PPLError(syntax_diagnostic(exc, source), source) from None
    try:
        return ToAst(source).transform(tree)
    except VisitError as exc:  # unwrap once: an error in one of our callbacks
        raise exc.orig_exc from None
    except RecursionError:
        raise PPLError(Diagnostic("an expression is nested too deeply for pplc to parse",
                                  hint="split it into several `NAME = EXPR` statements"), source) from None
