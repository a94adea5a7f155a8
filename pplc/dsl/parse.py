"""Parse .ppl text into the AST, turning Lark's errors into located diagnostics."""
from __future__ import annotations

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..grammar import parser
from . import ast
from .diagnostics import Diagnostic, PPLError
from .spans import Source, Span

TOKEN_WORDS = {
    "RPAR": "')'", "LPAR": "'('", "RSQB": "']'", "LSQB": "'['", "RBRACE": "'}'", "LBRACE": "'{'",
    "COMMA": "','", "COLON": "':'", "TILDE": "'~'", "EQUAL": "'='", "_NL": "end of line",
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "SCALAR_TYPE": "a type (real, int, bool)",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "AT": "'@'", "DOT": "'.'",
    "COMP_OP": "a comparison", "$END": "end of file", "DATA": "'data'", "CONST": "'const'",
    "PLATE": "'plate'", "TRACK": "'track'", "SHARDED": "'sharded'", "OVER": "'over'",
    "DEVICES": "'devices'", "TRUE": "'true'", "FALSE": "'false'", "__ANON_0": "'**'",
}


def _span(meta_or_tok) -> Span:
    m = meta_or_tok
    return Span(m.line, m.column, m.end_line, m.end_column)


def _tok_span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)


@v_args(meta=True)
class ToAst(Transformer):
    """Lark tree -> frozen AST dataclasses with spans."""

    def start(self, meta, items):
        return ast.Program(tuple(i for i in items if i is not None))

    # statements
    def data_decl(self, meta, items):
        name, typ = items
        return ast.DataDecl(_span(meta), str(name), _tok_span(name), typ)

    def const_decl(self, meta, items):
        name, value = items
        return ast.ConstDecl(_span(meta), str(name), _tok_span(name), value)

    def sample_stmt(self, meta, items):
        name, typ, dist = items
        return ast.Sample(_span(meta), str(name), _tok_span(name), typ, dist)

    def assign_stmt(self, meta, items):
        name, value = items
        return ast.Assign(_span(meta), str(name), _tok_span(name), value)

    def track_stmt(self, meta, items):
        name, value = items
        return ast.Track(_span(meta), str(name), _tok_span(name), value)

    def plate_stmt(self, meta, items):
        name, sharded, *body = items
        return ast.Plate(_span(meta), str(name), _tok_span(name), sharded is not None, tuple(body))

    def sharded(self, meta, items):
        return True

    def type(self, meta, items):
        dtype, dims = items
        return ast.Type(str(dtype), tuple(dims or ()), _span(meta))

    def shape(self, meta, items):
        return list(items)

    def dim_name(self, meta, items):
        return ast.Dim(str(items[0]), None, _tok_span(items[0]))

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

    def attr(self, meta, items):
        return ast.Attr(_span(meta), items[0], str(items[1]))

    def call(self, meta, items):
        func, args = items
        args = args or []
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


def _expected(exc: UnexpectedInput) -> str:
    names = sorted({TOKEN_WORDS.get(t, t.lower()) for t in getattr(exc, "expected", ()) or ()
                    if not t.startswith("__ANON") or t in TOKEN_WORDS})
    if not names:
        return ""
    if len(names) > 6:
        names = names[:6] + ["..."]
    return "expected " + ", ".join(names)


def _open_bracket(source: Source, line: int, col: int) -> tuple[str, int, int] | None:
    """The innermost bracket still open at (line, col), ignoring comments."""
    stack = []
    for ln, text in enumerate(source.text.splitlines()[:line], start=1):
        for c, ch in enumerate(text, start=1):
            if ln == line and c >= col:
                break
            if ch == "#":
                break
            if ch in "([{":
                stack.append((ch, ln, c))
            elif ch in ")]}" and stack:
                stack.pop()
    return stack[-1] if stack else None


def syntax_diagnostic(exc: UnexpectedInput, source: Source) -> Diagnostic:
    """A person-readable syntax error for one Lark exception."""
    line, col = max(exc.line, 1) if exc.line != -1 else 1, max(exc.column, 1) if exc.column != -1 else 1
    if isinstance(exc, UnexpectedCharacters):
        ch = source.line(line)[col - 1: col] or "?"
        return Diagnostic(f"unexpected character '{ch}'", Span(line, col, line, col + 1),
                          hint="names are letters, digits and '_'; comments start with '#'")
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = source.text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        opened = _open_bracket(source, line, col + 1)
        if opened:
            ch, ol, oc = opened
            return Diagnostic(f"unclosed '{ch}' opened at {ol}:{oc}", Span(ol, oc, ol, oc + 1))
        return Diagnostic("unexpected end of file; " + _expected(exc), Span(line, col, line, col + 1))
    tok = exc.token
    width = max(1, len(str(tok))) if tok.type != "_NL" else 1
    span = Span(line, col, line, col + width)
    what = "end of line" if tok.type == "_NL" else f"'{tok}'"
    if tok.type in ("_NL", "RBRACE"):
        opened = _open_bracket(source, line, col)
        if opened and opened[0] in "([":
            ch, ol, oc = opened
            return Diagnostic(f"unclosed '{ch}' opened at {ol}:{oc}", Span(ol, oc, ol, oc + 1))
    expected = _expected(exc)
    hint = None
    if tok.type == "EQUAL" and "TILDE" in (exc.expected or ()):
        hint = "a typed variable is drawn from a distribution: `x: real[n] ~ Normal(0, 1)`"
    elif tok.type == "NAME" and str(tok) in ("sharded",):
        hint = "write `plate DIM sharded over devices { ... }`"
    elif tok.type == "LBRACE":
        hint = "a plate is `plate DIM { ... }` or `plate DIM sharded over devices { ... }`"
    return Diagnostic(f"unexpected {what}" + (f"; {expected}" if expected else ""), span, hint=hint)


def parse(text: str, filename: str = "<string>") -> ast.Program:
    """Parse .ppl source; raise PPLError with located diagnostics on a syntax error."""
    source = Source(text, filename)
    try:
        tree = parser().parse(text)
    except UnexpectedInput as exc:
        raise PPLError(syntax_diagnostic(exc, source), source) from None
    try:
        return ToAst().transform(tree)
    except VisitError as exc:  # unwrap once: an error in one of our callbacks
        raise exc.orig_exc from None
