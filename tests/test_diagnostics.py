"""User mistakes get located, helpful messages and never a traceback: golden outputs, properties, run errors."""
import os
import re
import shlex

import jax
import pytest

from pplc import cli

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "golden", "bad")
REGEN = os.environ.get("PPLC_REGEN_GOLDEN") == "1"


def _cases():
    stems = set()
    for f in os.listdir(BAD):
        stem, ext = os.path.splitext(f)
        if ext in (".ppl", ".cmd"):
            stems.add(stem)
    return sorted(stems)


def _argv(case):
    cmd = os.path.join(BAD, case + ".cmd")
    if os.path.exists(cmd):
        return shlex.split(open(cmd).read())
    return ["check", case + ".ppl"]


def run_cli(argv, capsys):
    """`pplc ARGV` in this process, as the console script runs it: (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("case", _cases())
def test_golden_bad(case, capsys, monkeypatch):
    """Each mistake in tests/golden/bad gives exactly the expected message and exit status 1.
    Regenerate the expected files with PPLC_REGEN_GOLDEN=1 (then read every one of them)."""
    monkeypatch.chdir(BAD)
    argv = _argv(case)
    jax.devices()  # the backend is up (8 host devices, tests/conftest.py), as it is for any later test
    rc, out, err = run_cli(argv, capsys)
    got = f"$ pplc {shlex.join(argv)}\n{err}[exit status {rc}]\n"
    path = os.path.join(BAD, case + ".err")
    assert rc == 1
    assert "Traceback" not in err and "internal error" not in err
    if REGEN:  # a regenerating run compares nothing: it writes the file and says so
        with open(path, "w") as f:
            f.write(got)
        pytest.skip(f"PPLC_REGEN_GOLDEN=1: wrote {path}; read it, then run again without PPLC_REGEN_GOLDEN")
    assert os.path.exists(path), f"no expected output for {case}: run with PPLC_REGEN_GOLDEN=1"
    assert got == open(path).read()


def _model_cases():
    return [c for c in _cases() if _argv(c) == ["check", c + ".ppl"] and c != "model_not_text"]


@pytest.mark.parametrize("case", _model_cases())
def test_bad_model_location(case, capsys, monkeypatch):
    """`pplc check` on a bad model: exit 1, and every error names the file, a line and a column inside it."""
    monkeypatch.chdir(BAD)
    rc, out, err = run_cli(["check", case + ".ppl"], capsys)
    assert rc == 1 and out == ""
    lines = open(os.path.join(BAD, case + ".ppl")).read().split("\n")
    heads = [ln for ln in err.splitlines() if ": error: " in ln]
    assert heads
    for head in heads:
        m = re.match(rf"{re.escape(case)}\.ppl:(\d+):(\d+): error: \S", head)
        assert m, head
        line, col = int(m.group(1)), int(m.group(2))
        assert 1 <= line <= len(lines) and 1 <= col <= len(lines[line - 1]) + 1, head


# ----------------------------------------------------------------------------- good models
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")


CONFORMANCE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "conformance")  # when present


def _good_models():
    dirs = [EXAMPLES] + ([CONFORMANCE] if os.path.isdir(CONFORMANCE) else [])
    return sorted(os.path.join(d, f) for d in dirs for f in os.listdir(d) if f.endswith(".ppl"))


def _declared_names(statements) -> set[str]:
    """The names a program declares (data, consts, random variables, assignments, tracks), from its AST."""
    from pplc.dsl import ast as A

    names = set()
    for s in statements:
        names |= _declared_names(s.body) if isinstance(s, A.Plate) else {s.name}
    return names


@pytest.mark.parametrize("path", _good_models(), ids=os.path.basename)
def test_good_model_check(path, capsys):
    """`pplc check` on a good model: exit 0, `FILE: ok`, then one row per variable (kind, name, shape with its
    named dims, plates, placement, distribution and support) naming every variable the model declares, and
    the dims with their sizes."""
    import pplc
    from pplc.dsl.parse import parse

    rc, out, err = run_cli(["check", path], capsys)
    assert rc == 0 and err == "", err
    head, *table, dims = out.rstrip("\n").split("\n")
    assert head == f"{path}: ok"
    rows = {}
    for line in table:
        kind, name, *cols = re.split(r" {2,}", line.strip())
        assert line.startswith("  ") and (kind, name) not in rows, line
        rows[kind, name] = cols
    assert {name for _, name in rows} == _declared_names(parse(open(path).read(), path).statements)
    ir = pplc.compile_file(path).ir
    assert list(rows) == [(v.kind, v.name) for v in ir.variables]
    for v in ir.variables:
        cols = rows[v.kind, v.name]
        if v.kind == "const":
            assert cols == [repr(v.const_value)]
            continue
        shape, placement = cols
        assert shape == (f"{v.dtype}[{', '.join(v.phys)}]" if v.phys else v.dtype)
        parts = placement.split("; ")
        assert (parts[0] == f"plate {', '.join(v.plates)}") if v.plates else not parts[0].startswith("plate ")
        assert ("sharded over `" + v.sharded_dim + "`" if v.sharded_dim else "replicated") in parts
        if v.dist is not None:
            assert f"~ {v.dist.spec.name}, support {v.support}" in parts, (v.name, parts)
        else:
            assert not any(p.startswith("~ ") for p in parts), (v.name, parts)
    assert dims.startswith("  dims: ")
    for d in ir.dims:
        assert re.search(rf"(: |; ){re.escape(d.name)}( = {d.size}| \(from )", dims), (d.name, dims)


# ----------------------------------------------------------------------------- hypothesis
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pplc.dsl import ast as A  # noqa: E402
from pplc.dsl.parse import parse  # noqa: E402
from pplc.dsl.pretty import program as pretty_program, without_spans  # noqa: E402
from pplc.dsl.spans import NO_SPAN  # noqa: E402

# PPLC_HYPOTHESIS_PROFILE=fuzz runs 10,000 examples per property (about an hour on two cores); CI runs 200.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("fuzz", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PROFILE = settings.get_profile(os.environ.get("PPLC_HYPOTHESIS_PROFILE", "ci"))

S = NO_SPAN
RESERVED = {"data", "const", "plate", "track", "sharded", "over", "devices", "true", "false", "real", "int", "bool"}
names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in RESERVED)
numbers = st.one_of(
    st.integers(0, 10**6).map(lambda n: A.Num(S, n, True)),
    st.floats(0, 1e30, allow_nan=False, allow_infinity=False).map(lambda x: A.Num(S, x, False)))
atoms = st.one_of(numbers, st.booleans().map(lambda b: A.Bool(S, b)), names.map(lambda n: A.Name(S, n)))


def _compound(inner):
    ops = st.sampled_from(["+", "-", "*", "/", "@", "**", "==", "!=", "<", "<=", ">", ">="])
    kw = st.builds(lambda n, v: A.Keyword(n, v, S), names, inner)
    return st.one_of(
        st.builds(lambda op, a, b: A.BinOp(S, op, a, b), ops, inner, inner),
        st.builds(lambda a: A.Neg(S, a), inner),
        st.builds(lambda a, i: A.Index(S, a, tuple(i)), inner, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda a, n: A.Attr(S, a, n), inner, names),
        st.builds(lambda f, a, k: A.Call(S, f, S, tuple(a), tuple(k)), names, st.lists(inner, max_size=3),
                  st.lists(kw, max_size=2)))


exprs = st.recursive(atoms, _compound, max_leaves=12)
dims = st.one_of(names.map(lambda n: A.Dim(n, None, S)), st.integers(1, 99).map(lambda k: A.Dim(None, k, S)))
types = st.builds(lambda t, d: A.Type(t, tuple(d), S), st.sampled_from(["real", "int", "bool"]),
                  st.lists(dims, max_size=3))
simple_statements = st.one_of(
    st.builds(lambda n, t: A.DataDecl(S, n, S, t), names, types),
    st.builds(lambda n, e: A.ConstDecl(S, n, S, e), names, exprs),
    st.builds(lambda n, t, e: A.Sample(S, n, S, t, e), names, st.none() | types, exprs),
    st.builds(lambda n, e: A.Assign(S, n, S, e), names, exprs),
    st.builds(lambda n, e: A.Track(S, n, S, e), names, exprs))
statements = st.recursive(simple_statements, lambda inner: st.builds(
    lambda d, sh, body: A.Plate(S, d, S, sh, tuple(body)), names, st.booleans(), st.lists(inner, max_size=3)),
    max_leaves=8)
programs = st.lists(statements, max_size=6).map(lambda s: A.Program(tuple(s)))


@settings(PROFILE)
@given(programs)
def test_pretty_round_trip(prog):
    """Pretty-print an AST, parse the text: the same AST, spans aside."""
    text = pretty_program(prog)
    assert without_spans(parse(text, "gen.ppl")) == prog, text


@pytest.mark.parametrize("path", _good_models(), ids=os.path.basename)
def test_pretty_round_trip_examples(path):
    text = open(path).read()
    prog = without_spans(parse(text, path))
    assert without_spans(parse(pretty_program(prog))) == prog


# The fuzz: valid models with tokens inserted, deleted, swapped, duplicated or replaced; `pplc check` must
# answer 0 or 1, never an internal error (3) or a traceback.
SEEDS = [open(p).read() for p in _good_models()] + [
    "data y: real[n]\ndata x: real[n, p]\nconst k = 3\nw: real[p, k] ~ Normal(0, 1)\n"
    "plate n sharded over devices {\n  z = softmax(x @ w)\n  y ~ Normal(sum(z, k), 1)\n}\n"
    "track m = mean(x @ w)\n",
    "data county: int[houses]\ndata radon: real[houses]\nconst counties = 85\n"
    "alpha: real[counties] ~ Normal(0, 10)\nsigma ~ HalfNormal(1)\n"
    "plate houses {\n  radon ~ Normal(alpha[county], sigma)\n}\n",
    "data y: int[n]\np: real[3] ~ Dirichlet(1.5 * exp(-0.5))\nq = p[0] ** 2 - -1 / 2\n"
    "plate n {\n  y ~ Categorical(probs = p)\n}\n",
]
TOKEN = r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+\.?[0-9]*(?:[eE][-+]?[0-9]+)?|\*\*|[=!<>]=|\n|[ \t]+|#[^\n]*|."
VOCAB = sorted({t for s in SEEDS for t in re.findall(TOKEN, s)} | {
    "(", ")", "[", "]", "{", "}", ",", ":", "~", "=", "@", ".", "T", "-", "+", "*", "/", "**", "==", "<", "\n",
    "data", "const", "plate", "track", "sharded", "over", "devices", "real", "int", "bool", "true", "false",
    "0", "1.5", "1e999", "99999999999", "_x", "lambda", "class", "model", "dims", "jnp", "print", "$", "\t",
    "\\\n", "# c", "\r", ";", "'", "μ"})


@st.composite
def mutants(draw):
    tokens = re.findall(TOKEN, draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["insert", "delete", "swap", "duplicate", "replace"]))
        if op == "insert":
            tokens.insert(i, draw(st.sampled_from(VOCAB)))
        elif op == "delete" and len(tokens) > 1:
            del tokens[i]
        elif op == "swap" and i + 1 < len(tokens):
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "replace":
            tokens[i] = draw(st.sampled_from(VOCAB))
    return "".join(tokens)


@settings(PROFILE)
@given(mutants())
def test_fuzz_check_never_crashes(tmp_path_factory, text):
    """`pplc check` (in this process, through `cli.main`) on a mutated model exits 0 or 1, never 3."""
    path = os.path.join(tmp_path_factory.getbasetemp(), "fuzz.ppl")
    with open(path, "w") as f:
        f.write(text)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main(["--debug", "check", path])
    assert rc in (0, 1), f"exit status {rc} for:\n{text}\n{err.getvalue()}"
    assert "Traceback" not in err.getvalue(), text
    if rc == 1:
        assert re.search(r"fuzz\.ppl(:\d+:\d+)?: error: ", err.getvalue()), err.getvalue()


# ----------------------------------------------------------------------------- internal errors, memory
def _raise(exc):
    def f(*args, **kwargs):
        raise exc
    return f


def test_internal_error_without_traceback(capsys, monkeypatch):
    """An unexpected exception: 'internal error', one line, how to report it, exit 3; a traceback only with --debug."""
    import pplc

    monkeypatch.setattr(pplc.api, "compile_file", _raise(RuntimeError("boom\nsecond line")))
    rc, out, err = run_cli(["check", "m.ppl"], capsys)
    assert rc == 3
    assert err.startswith("pplc: internal error: RuntimeError: boom\n")
    assert "report it" in err and "--debug" in err and "Traceback" not in err and "second line" not in err
    rc, out, err = run_cli(["--debug", "check", "m.ppl"], capsys)
    assert rc == 3 and "Traceback (most recent call last)" in err and "pplc: internal error" in err


def test_out_of_memory(capsys, monkeypatch):
    """XLA's RESOURCE_EXHAUSTED: what ran out, a hint, exit 1 (not an internal error)."""
    import pplc

    monkeypatch.setattr(pplc.api, "compile_file", _raise(jax.errors.JaxRuntimeError(
        "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 42949672960 bytes.\nmore detail")))
    rc, out, err = run_cli(["check", "m.ppl"], capsys)
    assert rc == 1
    assert err.startswith("pplc: error: out of memory: the device ran out of memory allocating 40.0 GiB")
    assert "note: XLA: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 42949672960 bytes." in err
    assert "hint: use fewer chains (--chains)" in err and "--devices" in err
    assert "internal error" not in err


def test_other_runtime_errors_are_internal(capsys, monkeypatch):
    import pplc

    monkeypatch.setattr(pplc.api, "compile_file", _raise(jax.errors.JaxRuntimeError("INTERNAL: something")))
    rc, out, err = run_cli(["check", "m.ppl"], capsys)
    assert rc == 3 and "internal error: JaxRuntimeError: INTERNAL: something" in err


# ----------------------------------------------------------------------------- rendering
def test_render_spans_tabs_and_order():
    from pplc.dsl.diagnostics import Diagnostic, DiagnosticSink, PPLError
    from pplc.dsl.spans import Source, Span

    src = Source("a = 1\n\tb = (c +\n  d)\n", "t.ppl")
    d = Diagnostic("multi-line", Span(2, 6, 3, 4), notes=("a note",), hint="a hint")
    assert d.render(src).split("\n") == [
        "t.ppl:2:6: error: multi-line", "  \tb = (c +", "  \t    ^^^^", "  note: a note", "  hint: a hint"]
    sink = DiagnosticSink(src)
    sink.error("second", Span(3, 1, 3, 2))
    sink.warning("first", Span(1, 1, 1, 2))
    sink.error("unplaced")
    with pytest.raises(PPLError) as e:
        sink.raise_if_errors()
    assert [d.message for d in e.value.diagnostics] == ["unplaced", "first", "second"]
    assert Diagnostic("x").render(None) == "pplc: error: x"


def test_lines_are_counted_as_the_parser_counts_them():
    """A form feed or a lone carriage return inside a comment does not shift the line shown with an error."""
    with pytest.raises(Exception) as e:
        parse("mu ~ Normal(0, 1)  # a \x0c b\nx = mu +\n", "t.ppl")
    assert "\n  x = mu +\n" in str(e.value)


# ----------------------------------------------------------------------------- security
NASTY = """\
data lambda: real[n]
data print: real[n]
data print_: real[n]
model ~ HalfNormal(1)
dims ~ Normal(0, 1)
dims_ ~ Normal(0, 1)
class = dims + dims_
jnp = class * 2
plate n {
  print ~ Normal(jnp + lambda, model)
  print_ ~ Normal(dims_, 1)
}
track eval = exp(jnp)
"""


def test_python_names_end_to_end():
    """Data and quantities named like Python keywords, builtins or the generated module's own names compile,
    run, and keep their .ppl names in the data, the draws and the outputs (random variables too: a TFP site
    gets the Python name, and the module's SITE_NAMES maps it; a latent `lambda`: tests/test_language_fixes.py)."""
    import numpy as np

    import pplc
    from pplc.compiler.codegen import py

    m = pplc.compile(NASTY, "nasty.ppl")
    assert set(m.module.DATA) == {"lambda", "print", "print_"}
    assert set(m.module.LATENTS) == {"model", "dims", "dims_"}
    assert set(m.module.DETERMINISTICS) == {"class", "jnp"} and set(m.module.TRACKS) == {"eval"}
    names = ["lambda", "print", "print_", "class", "model", "dims", "dims_", "jnp", "eval"]
    assert len({py(n) for n in names}) == len(names)  # no two .ppl names meet in Python
    data = {"lambda": np.array([0.5, 1.0, 1.5]), "print": np.zeros(3), "print_": np.ones(3)}
    lp = m.log_prob({"model": 1.3, "dims": 0.1, "dims_": -0.2}, data)
    assert np.isfinite(lp)
    draw = m.sample_prior(data, seed=1)
    assert {"model", "dims", "dims_", "class", "jnp", "eval", "print", "print_"} <= set(draw)
    assert np.allclose(draw["class"], draw["dims"] + draw["dims_"])
    assert m.module.SITE_NAMES == {"model": "model_", "dims": "dims_", "dims_": "dims__", "print": "print_",
                                   "print_": "print__"}


def test_generated_names_are_reserved():
    """Every global name of a generated module is one `py()` keeps .ppl names away from."""
    import builtins

    import pplc
    from pplc.compiler.codegen import GENERATED_NAMES

    src = ("data x: real[n, p]\nw: real[p] ~ Flat()\ns ~ HalfFlat()\nplate n sharded over devices {\n"
           "  z ~ Normal(0, s)\n}\nm = mean(x @ w)\nmx = max(x @ w)\nmn = min(x @ w)\nt = sum(x @ w)\n")
    module = pplc.compile(src, "g.ppl").module
    names = {k for k in vars(module) if not k.startswith("__")}
    assert names - GENERATED_NAMES - set(dir(builtins)) == set()


def test_file_names_and_comments_cannot_inject_code():
    """A model's file name and its comments reach the generated module only as inert text."""
    import pplc

    for name in ['a"""\nimport os; os._exit(9)\n""".ppl', "b\rimport os; os._exit(9)\r.ppl", "c\u2028x.ppl"]:
        m = pplc.compile("mu ~ Normal(0, 1)  # \rimport os; os._exit(9)\n", name)
        assert "os._exit" not in "".join(line for line in m.source.splitlines() if not line.lstrip().startswith("#")
                                         and '"""' not in line and "generated by" not in line)
        assert list(m.module.LATENTS) == ["mu"]


def test_no_eval_or_exec_outside_the_program_loader():
    """Only pplc/runtime/program.py calls exec (on generated code); nothing calls eval."""
    import ast as pyast

    root = os.path.join(os.path.dirname(HERE), "pplc")
    calls = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                for node in pyast.walk(pyast.parse(open(path).read())):
                    if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and \
                            node.func.id in ("eval", "exec"):
                        calls.append((os.path.relpath(path, root), node.func.id))
    assert calls == [("runtime/program.py", "exec")]


# ----------------------------------------------------------------------------- non-finite initial values
def test_nonfinite_terms():
    """The sites whose log-density term is not finite, named in model order, with or without a chains dim."""
    import numpy as np

    import pplc
    from pplc.runtime import data as data_lib
    from pplc.runtime.sampling.init import nonfinite_terms

    src = ("data y: real[schools]\ndata sigma: real[schools]\nmu ~ Normal(0, 5)\ntau ~ HalfCauchy(0, 5)\n"
           "plate schools sharded over devices {\n  theta ~ Normal(mu, tau)\n  y ~ Normal(theta, sigma)\n}\n")
    m = pplc.compile(src, "s.ppl")
    p = m.program
    good = data_lib.bind(m.ir, {"y": np.array([28.0, 8.0, -3.0]), "sigma": np.array([15.0, 10.0, 16.0])})
    zero = data_lib.bind(m.ir, {"y": np.array([28.0, 8.0, -3.0]), "sigma": np.array([15.0, 0.0, 16.0])})
    assert nonfinite_terms(p, good, {"mu": 0.0, "tau": 1.0, "theta": np.zeros(3)}) == []
    assert nonfinite_terms(p, good, {"mu": 0.0, "tau": -1.0, "theta": np.zeros(3)}) == ["tau", "theta"]
    chains = {"mu": np.array([0.0, np.nan]), "tau": np.ones(2), "theta": np.zeros((2, 3))}
    assert nonfinite_terms(p, good, chains) == ["mu", "theta"]
    assert nonfinite_terms(p, zero, {"mu": 0.0, "tau": 1.0, "theta": np.zeros(3)}) == ["y"]


def test_more_devices_than_the_accelerator_has(monkeypatch):
    """On an accelerator: how many devices there are, and how to use host CPU devices instead."""
    from pplc.dsl.diagnostics import PPLError
    from pplc.runtime.devices import mesh

    class Gpu:
        platform = "gpu"

    monkeypatch.setattr(jax, "devices", lambda *a: [Gpu()])
    monkeypatch.setattr(jax, "local_devices", lambda *a, **k: [Gpu()])  # this process's devices
    with pytest.raises(PPLError) as e:
        mesh.devices(4)
    assert str(e.value) == (
        "pplc: error: asked for 4 devices, but this process has 1 GPU device\n"
        "  hint: use --devices 1, or run on 4 host CPU devices instead: "
        "JAX_PLATFORMS=cpu pplc run ... --devices 4")


# Data of any shape and kind: binding it to a model gives checked data or a PPLError, never anything else.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 12) | st.integers(-2**70, 2**70) | st.text(max_size=3)
    | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=2),
    max_leaves=12)


@settings(PROFILE)
@given(st.dictionaries(st.sampled_from(["images", "labels", "extra", "label"]), json_values, max_size=4))
def test_fuzz_data_never_crashes(tmp_path_factory, raw):
    import json

    from pplc.dsl.diagnostics import PPLError
    from pplc.runtime import data as data_lib

    model = _logreg()
    try:
        bound = data_lib.bind(model.ir, raw, "fuzz.json")
    except PPLError as e:
        assert all(d.message for d in e.diagnostics)
    else:
        assert set(bound.arrays) == {"images", "labels"}
    path = os.path.join(tmp_path_factory.getbasetemp(), "fuzz.json")  # the JSON loader too
    try:
        text = json.dumps(raw)
    except (ValueError, TypeError):
        return
    loaded = None
    try:
        with open(path, "w") as f:
            f.write(text)
        loaded = data_lib.load(path)
    except PPLError:
        pass
    finally:
        os.remove(path)
    if loaded is not None:
        try:
            data_lib.bind(model.ir, loaded, "fuzz.json")
        except PPLError:
            pass


_LOGREG = []


def _logreg():
    import pplc

    if not _LOGREG:
        _LOGREG.append(pplc.compile(open(os.path.join(BAD, "data_strings.ppl")).read(), "logreg.ppl"))
    return _LOGREG[0]


def test_deep_expressions(tmp_path, capsys):
    """Deep nesting is a located user error (checking and code generation recurse), never a RecursionError."""
    for n, want in [(140, 0), (200, 1), (3000, 1)]:
        path = tmp_path / f"deep{n}.ppl"
        path.write_text("mu ~ Normal(0, 1)\nx = " + " + ".join(["mu"] * n) + "\ny = " + "-" * n + "mu\n")
        rc, out, err = run_cli(["check", str(path)], capsys)
        assert rc == want, err
        if want:
            assert "internal error" not in err
            assert f"deep{n}.ppl:2:5: error: this expression is nested" in err or "nested too deeply" in err
