"""Syntax errors explained: what the parser expected, unclosed brackets, and common mistakes by example."""
from __future__ import annotations

import difflib
import functools
import re

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..grammar import parser
from .diagnostics import Diagnostic
from .spans import Source, Span
from .stan_habits import stan_habit

TOKEN_WORDS = {
    "RPAR": "')'", "LPAR": "'('", "RSQB": "']'", "LSQB": "'['", "RBRACE": "'}'", "LBRACE": "'{'",
    "COMMA": "','", "COLON": "':'", "TILDE": "'~'", "EQUAL": "'='", "_NL": "end of line",
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "SCALAR_TYPE": "a type (real, int, bool)",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "AT": "'@'", "DOT": "'.'",
    "COMP_OP": "a comparison", "$END": "end of file", "DATA": "'data'", "CONST": "'const'",
    "PLATE": "'plate'", "TRACK": "'track'", "SHARDED": "'sharded'", "OVER": "'over'",
    "DEVICES": "'devices'", "TRUE": "'true'", "FALSE": "'false'", "__ANON_0": "'**'",
}



def _word(tok: str) -> str:
    return TOKEN_WORDS.get(tok, tok.lower())


def _one_of(words: list[str]) -> str:
    words = sorted(set(words))
    if len(words) > 6:
        return ", ".join(words[:5]) + ", ..."
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _expected(exc: UnexpectedInput) -> str:
    """`expected X, Y or Z` from the tokens the parser would have taken."""
    acc = getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ()
    names = [_word(t) for t in acc if t not in ("_NL", "$END") or len(acc) == 1]
    if not names:
        return ""
    return "expected " + _one_of(names)


def _brackets(source: Source, line: int, col: int):
    """Scan brackets up to (line, col), ignoring comments: (stack of open ones, first unmatched close)."""
    stack: list[tuple[str, int, int]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for ln, text in enumerate(source.lines[:line], start=1):
        for c, ch in enumerate(text, start=1):
            if ln == line and c >= col:
                break
            if ch == "#":
                break
            if ch in "([{":
                stack.append((ch, ln, c))
            elif ch in pairs:
                if stack and stack[-1][0] == pairs[ch]:
                    stack.pop()
                elif stack and ch == "}":  # a '}' closes its plate even with an unclosed '(' inside
                    while stack and stack[-1][0] != "{":
                        stack.pop()
                    if stack:
                        stack.pop()
                elif stack:
                    stack.pop()
    return stack


def _prev_token(source: Source, line: int, col: int) -> str:
    """The text of the token just before (line, col), on that line or an earlier one ('' at the start)."""
    for ln in range(line, 0, -1):
        text = source.line(ln)
        text = text[:col - 1] if ln == line else text
        text = text.split("#", 1)[0].rstrip()
        if text:
            m = re.search(r"(\*\*|[=!<>]=|[A-Za-z_][A-Za-z0-9_]*|[0-9.]+(?:[eE][-+]?[0-9]+)?|\S)$", text)
            return m.group(1) if m else text[-1]
    return ""


# Syntax errors by example (Lark's `match_examples`): each label's snippets fail in the parser state
# where that mistake is made; a new error in the same state gets the label's message.
SYNTAX_EXAMPLES: list[tuple[str, list[str]]] = [
    ("after_name", ["mu Normal(0, 1)\n", "mu 3\n", "mu\n"]),
    ("typed_eq", ["x: real[3] = 4\n", "x: real = 4\n"]),
    ("const_eq", ["const k 3\n", "const k: int = 3\n", "const k ~ Normal(0, 1)\n"]),
    ("track_eq", ["track a ~ Normal(0, 1)\n", "track a\n", "track a: real = 1\n"]),
    ("data_colon", ["data y real[n]\n", "data y\n", "data y = 3\n"]),
    ("keyword_name", ["data ~ Normal(0, 1)\n", "data = 1\n", "const = 1\n", "track = 1\n"]),
    ("type", ["data y: float[n]\n", "data y: [n]\n", "x: vector[n] ~ Normal(0, 1)\n", "data y:\n"]),
    ("dim", ["data y: real[1.5]\n", "data y: real[]\n", "data y: real[n,]\n"]),
    ("dim_after", ["data y: real[n + 1]\n", "data y: real[n m]\n", "data y: real[3 * n]\n"]),
    ("sharded_over", ["plate n sharded {\n}\n", "plate n sharded\n"]),
    ("sharded_devices", ["plate n sharded over {\n}\n", "plate n sharded over\n"]),
    ("plate_dim", ["plate {\n}\n", "plate 3 {\n}\n", "plate\n"]),
    ("plate_brace", ["plate n\n", "plate n shared over devices {\n}\n", "plate n (\n"]),
    ("comparison", ["x = a < b < c\n", "x = a == b == c\n"]),
    ("statement_start", ["+ x\n", "3 ~ Normal(0, 1)\n", "(x) = 1\n", "~ Normal(0, 1)\n", "x = 1\n)\n"]),
    ("argument", ["mu ~ Normal(0,,1)\n", "mu ~ Normal(,1)\n"]),
    ("kwarg_value", ["mu ~ Normal(loc=, scale=1)\n", "mu ~ Normal(loc=)\n"]),
    ("attr", ["x = a.3\n", "x = a.(b)\n"]),
    ("operand", ["x = 1 +\n", "x =\n", "x = 1 **\n", "y ~\n", "x = -\n", "x = a[\n", "x = (\n"]),
    ("operator", ["x = a b\n", "x = 1 2\n", "x = (a) b\n", "x = a(1) b\n", "x = a.T b\n", "x = a[0] b\n"]),
    ("end_of_statement", ["x = 1)\n", "x = a ~ b\n", "y ~ Normal(0, 1) = 2\n"]),
]

CHAR_HINTS = {
    ";": "statements end at the end of the line; no ';' is needed",
    "'": "there are no strings in .ppl", '"': "there are no strings in .ppl",
    "!": "`!=` is 'not equal'; for 'not', write `1 - x` of a bool",
    "&": "there is no `and`: multiply bools instead (`a * b`)", "|": "there is no `or`: use `a + b > 0`",
    "%": "there is no `%`; use `x - n * floor(x / n)` if you need it", "^": "powers are written `**`",
    "$": "names are letters, digits and '_'", "`": "names are written without backquotes",
    "?": "there is no `?:`; use `where(cond, a, b)`",
}


@functools.lru_cache(maxsize=1)
def _example_states() -> list[tuple[str, int, str]]:
    """(label, LALR state, token type) of each example's failure, computed once."""
    out = []
    for label, examples in SYNTAX_EXAMPLES:
        for text in examples:
            try:
                parser().parse(text)
            except UnexpectedToken as ut:
                out.append((label, ut.state.position, ut.token.type))
            except UnexpectedInput:
                pass
    return out


EXPR_START = {"NAME", "INT", "FLOAT", "LPAR"}
BINARY_OPERATORS = {"+", "-", "*", "/", "@", "**", "==", "!=", "<", "<=", ">", ">="}
OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "AT", "__ANON_0", "COMP_OP"}


def _syntax_label(exc: UnexpectedInput) -> str | None:
    """The label of the example that fails like `exc` (same parser state; the same token type first).

    This is Lark's `UnexpectedInput.match_examples`, comparing the LALR state number only: Lark's
    comparison includes the depth of the parser's stack, so an example written as a file's first
    statement would not match the same mistake in a later statement or inside a plate."""
    if not isinstance(exc, UnexpectedToken) or exc.state is None:
        return None
    pos, ttype = exc.state.position, exc.token.type
    same_state = [(label, t) for label, p, t in _example_states() if p == pos]
    for label, t in same_state:
        if t == ttype:
            return label
    if same_state:
        return same_state[0][0]
    acc = set(exc.accepts or ())
    if EXPR_START <= acc:  # wherever a value must come next
        return "operand"
    if ttype in EXPR_START | {"TRUE", "FALSE"} and acc & OPERATORS:
        return "operator"
    return None


# The message and hint of each label whose words need only the token before (`prev`) and the one found (`what`).
LABEL_MESSAGES: dict[str, tuple[str, str | None]] = {
    "after_name": ("expected '~', '=' or ':' after `{prev}`, found {what}",
                   "a statement is `{prev} ~ DIST(...)` (a random variable), `{prev} = EXPR` (a deterministic "
                   "quantity) or `{prev}: real[DIMS] ~ DIST(...)`"),
    "const_eq": ("expected '=' after `const {prev}`, found {what}",
                 "a const is `const {prev} = 10` (its type comes from the value)"),
    "track_eq": ("expected '=' after `track {prev}`, found {what}", "a tracked quantity is `track {prev} = EXPR`"),
    "data_colon": ("expected ':' and a type after `data {prev}`, found {what}",
                   "`data {prev}: real[n]` (the type is real, int or bool, the dims in brackets)"),
    "keyword_name": ("`{prev}` is a keyword and cannot name a variable", "rename it, e.g. `{prev}_`"),
    "dim": ("expected a dim, found {what}; a dim is a name or a whole number", "e.g. `real[n, 3]`"),
    "dim_after": ("expected ',' or ']' after the dim `{prev}`, found {what}",
                  "a dim is a name or a whole number, not an expression; for a computed size, use `const`"),
    "sharded_over": ("expected `sharded over devices`, found {what}",
                     "a sharded plate is `plate DIM sharded over devices {{ ... }}`"),
    "sharded_devices": ("expected `sharded over devices`, found {what}",
                        "a sharded plate is `plate DIM sharded over devices {{ ... }}`"),
    "plate_dim": ("expected the name of a dim after `plate`, found {what}",
                  "a plate is `plate DIM {{ ... }}`, e.g. `plate schools {{`"),
    "comparison": ("comparisons do not chain: `a < b < c` is not allowed",
                   "compare two values at a time, e.g. `(a < b) * (b < c)`"),
    "statement_start": ("a statement cannot start with {what}",
                        "a statement starts with a name (`x ~ ...`, `x = ...`) or with `data`, `const`, `plate` "
                        "or `track`"),
    "argument": ("expected an argument, found {what}", None),
    "kwarg_value": ("expected a value for the keyword argument, found {what}", None),
    "attr": ("expected an attribute name after '.', found {what}", "the only attribute is `.T` (transpose)"),
    "operator": ("unexpected {what} after `{prev}`: an operator is missing between them",
                 "join two values with an operator (+ - * / ** @) or a comparison"),
}


def syntax_diagnostic(exc: UnexpectedInput, source: Source) -> Diagnostic:
    """A person-readable syntax error for one Lark exception."""
    line = exc.line if exc.line and exc.line > 0 else 1
    col = exc.column if exc.column and exc.column > 0 else 1
    if isinstance(exc, UnexpectedCharacters):
        ch = source.line(line)[col - 1: col] or "?"
        hint = CHAR_HINTS.get(ch)
        if hint is None and not ch.isascii() and ch.isalpha():
            hint = "names use ASCII letters, digits and '_'"
        elif hint is None and ch == "\r":
            hint = "a lone carriage return: save the file with Unix (\\n) or Windows (\\r\\n) line ends"
        shown = ch if ch.isprintable() else repr(ch)[1:-1]
        return Diagnostic(f"unexpected character '{shown}'", Span(line, col, line, col + 1),
                          hint=hint or "names are letters, digits and '_'; comments start with '#'")
    tok = getattr(exc, "token", None)
    at_end = isinstance(exc, UnexpectedEOF) or tok is None or tok.type == "$END"
    if at_end:
        lines = source.lines or [""]
        line, col = len(lines), len(lines[-1]) + 1
    # Brackets first: an unclosed one explains whatever the parser stumbled on after it.
    stack = _brackets(source, line, col)
    ttype = "$END" if at_end else tok.type
    if stack:
        ch, ol, oc = stack[-1]
        # (newlines inside ( ) and [ ] are dropped, so an end of line there is the end of the file; a plate's '{'
        # spans lines by design, so only the end of the file shows that it was left open)
        if at_end or (ch in "([" and (ttype == "_NL" or ol < line or ttype == "RBRACE")):
            where = "the end of the file" if at_end or ttype == "_NL" else f"'{tok}' at {line}:{col}"
            return Diagnostic(f"unclosed '{ch}' opened at {ol}:{oc}", Span(ol, oc, ol, oc + 1),
                              notes=(f"still open at {where}",),
                              hint=f"close it with '{ {'(': ')', '[': ']', '{': '}'}[ch] }'")
    habit = None if at_end else stan_habit(source, line)
    if habit is not None:
        return habit
    if ttype in ("RPAR", "RSQB", "RBRACE") and not any(o == {"RPAR": "(", "RSQB": "[", "RBRACE": "{"}[ttype]
                                                        for o, _, _ in stack):
        return Diagnostic(f"unmatched '{tok}': no '{ {'RPAR': '(', 'RSQB': '[', 'RBRACE': '{'}[ttype]}' is open here",
                          Span(line, col, line, col + 1))
    if at_end:
        return Diagnostic("unexpected end of file; " + (_expected(exc) or "the last statement is incomplete"),
                          Span(line, col, line, col + 1))
    width = max(1, len(str(tok))) if tok.type != "_NL" else 1
    span = Span(line, col, line, col + width)
    what = "end of line" if tok.type == "_NL" else f"'{tok}'"
    prev = _prev_token(source, line, col)
    label = _syntax_label(exc)
    expected = _expected(exc)
    msg, hint = f"unexpected {what}" + (f"; {expected}" if expected else ""), None
    if label in LABEL_MESSAGES:
        msg, hint = (t.format(prev=prev, what=what) if t else None for t in LABEL_MESSAGES[label])
    elif label == "typed_eq":
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^=~]*?)\s*=", source.line(line))
        name, typ = (m.group(1), m.group(2)) if m else ("x", "real[n]")
        msg = "a variable with a type is drawn from a distribution: `~` follows the type, not `=`"
        hint = f"`{name}: {typ} ~ Normal(0, 1)`; a deterministic quantity has no type: `{name} = EXPR`"
    elif label == "type":
        msg = (f"unknown type `{tok}`" if tok.type == "NAME" else f"expected a type, found {what}") + \
            "; the types are real, int and bool"
        hint = "e.g. `data y: real[n]`"
    elif label == "plate_brace":
        msg = f"expected '{{' or `sharded over devices` after `plate {prev}`, found {what}" if prev != "plate" \
            else msg
        hint = "a plate is `plate DIM { ... }` or `plate DIM sharded over devices { ... }`"
        if tok.type == "NAME" and difflib.get_close_matches(str(tok), ["sharded"], 1, 0.6):
            hint = "did you mean `sharded over devices`?"
    elif label == "operand":
        if prev == "~":
            msg = f"expected a distribution after '~', found {what}"
            hint = "e.g. `y ~ Normal(0, 1)`"
        else:
            msg = f"expected a value after '{prev}', found {what}"
            if tok.type == "_NL" and prev in BINARY_OPERATORS:
                hint = (f"to go on on the next line, start that line with the operator (`{prev} ...`) "
                        "or put the expression in parentheses")
    elif label == "end_of_statement":
        msg = f"expected the end of the statement, found {what}"
        hint = "one statement per line"
        if tok.type in ("TILDE", "EQUAL"):
            hint = "a statement has one `~` or `=`: `NAME ~ DIST(...)` or `NAME = EXPR`"
    elif tok.type == "RBRACE":
        msg = "expected the end of the line before '}'"
        hint = "put the closing '}' of a plate on its own line"
    return Diagnostic(msg, span, hint=hint)
