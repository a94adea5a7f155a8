"""The .ppl grammar: unambiguous for Lark's strict mode, and the cached parser is the parser."""
import tempfile

import pytest
from lark import Lark
from lark.exceptions import LexError

from conftest import EXAMPLES
from pplc import grammar
from pplc.dsl import parse as parse_module
from pplc.dsl import syntax_errors
from pplc.dsl.diagnostics import PPLError
from pplc.dsl.parse import parse

MISTAKES = ["mu Normal(0, 1)\n", "x: real[3] = 4\n", "data y: real[n + 1]\n", "plate n shared over devices {\n}\n",
            "x = a b\n", "mu ~ Normal(0,,1)\n", "x = (1 +\n", "y ~ Normal(0, 1) = 2\n", "x = 1 }\n"]


def build(**options):
    return Lark.open_from_package("pplc.grammar", "ppl.lark", postlex=grammar.BracketNewlines(),
                                  **{**grammar.PARSER_OPTIONS, **options})


def test_grammar_is_strict():
    """No shift/reduce conflicts (Lark checks them first) and, where interegular is installed, no two terminals
    that match the same text at the same priority."""
    try:
        build(strict=True, cache=False)
    except LexError as e:  # the conflicts passed; the terminal check needs interegular
        assert "interegular" in str(e)


@pytest.fixture
def use_parser(monkeypatch):
    """Parse with a given Lark parser: syntax errors are explained by the LALR states of that parser."""
    def use(p):
        for module in (parse_module, syntax_errors):
            monkeypatch.setattr(module, "parser", lambda: p)
        syntax_errors._example_states.cache_clear()
    yield use
    syntax_errors._example_states.cache_clear()  # (monkeypatch puts `parser` back after this)


def outcomes(texts):
    out = []
    for t in texts:
        try:
            out.append(parse(t, "m.ppl"))
        except PPLError as e:
            out.append(e.render())
    return out


@pytest.mark.parametrize("tempdir", ["fresh", "not writable"])
def test_cached_parser_parses_and_explains_errors_as_a_fresh_one(tempdir, tmp_path, monkeypatch, use_parser):
    texts = [open(f"{EXAMPLES}/{n}.ppl").read() for n in ("eight_schools", "mnist_logreg", "movielens_mf")]
    texts += MISTAKES
    use_parser(build(cache=False))
    want = outcomes(texts)
    # a missing folder: Lark can neither read nor write its cache file there, and builds the tables itself
    where = tmp_path if tempdir == "fresh" else tmp_path / "missing"
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(where))
    first = build()
    assert len(list(tmp_path.glob(".lark_cache_*"))) == (1 if tempdir == "fresh" else 0)
    second = build()  # from the cache file, if there is one
    for p in (first, second):
        use_parser(p)
        assert outcomes(texts) == want
    assert all(isinstance(w, str) for w in want[3:]) and not any(isinstance(w, str) for w in want[:3])
