"""The .ppl grammar and the factory of its LALR parser (with the bracket-aware post-lexer)."""
from __future__ import annotations

import functools

from lark import Lark, Token

OPEN, CLOSE = {"LPAR", "LSQB"}, {"RPAR", "RSQB"}


class BracketNewlines:
    """Post-lexer: drops newlines inside ( ) and [ ] so expressions can span lines."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        last = None
        for tok in stream:
            if tok.type in OPEN:
                depth += 1
            elif tok.type in CLOSE:
                depth = max(0, depth - 1)
            elif tok.type == "_NL" and depth > 0:
                continue
            last = tok
            yield tok
        if last is not None and last.type != "_NL":
            # Every statement ends with a newline, also the file's last one.
            yield Token.new_borrow_pos("_NL", "\n", last)


# How the parser is built. `cache=True`: Lark keeps the LALR tables in a file in the temp dir, keyed by the grammar,
# these options and the Lark and Python versions (a cached build takes about 7 ms instead of 60-80); when the file
# cannot be read or written, Lark builds the tables afresh. The grammar is free of shift/reduce conflicts and of
# colliding terminals: Lark's `strict=True` accepts it (tests/test_grammar.py), but needs the optional package
# interegular at every build, so it is checked by the tests rather than at run time.
PARSER_OPTIONS = dict(parser="lalr", propagate_positions=True, maybe_placeholders=True, cache=True)


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser of .ppl (built once, positions kept for spans)."""
    return Lark.open_from_package("pplc.grammar", "ppl.lark", postlex=BracketNewlines(), **PARSER_OPTIONS)
