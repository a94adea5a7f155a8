"""Golden tests of the generated code: `pplc compile` output equals tests/golden/good/<name>.py, byte for byte.

The models are the three examples (examples/<name>.ppl) and the extra models beside their golden files
(tests/golden/good/<name>.ppl). After an intended change to code generation, rewrite the files with

    PPLC_REGEN_GOLDEN=1 pytest tests/test_golden_codegen.py

and read the diff: it is the change users will see in their generated programs.
"""
import difflib
import os

import pytest

from pplc import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden", "good")
EXAMPLES = ["eight_schools", "mnist_logreg", "movielens_mf"]
EXTRA = sorted(f[:-4] for f in os.listdir(GOLDEN) if f.endswith(".ppl"))
MODELS = {**{n: os.path.join("examples", f"{n}.ppl") for n in EXAMPLES},
          **{n: os.path.join("tests", "golden", "good", f"{n}.ppl") for n in EXTRA}}
REGEN = os.environ.get("PPLC_REGEN_GOLDEN") == "1"
MAX_LINE = 120  # generated programs are for reading: no line of the model's code is longer than this


def compiled(name, tmp_path, monkeypatch) -> str:
    """The output of `pplc compile <model> -o <file>`, run from the repository root as a user would."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / f"{name}.py"
    assert cli.main(["compile", MODELS[name], "-o", str(out)]) == 0
    return out.read_text()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_generated_code_equals_golden(name, tmp_path, monkeypatch):
    text = compiled(name, tmp_path, monkeypatch)
    path = os.path.join(GOLDEN, f"{name}.py")
    if REGEN:
        with open(path, "w") as f:
            f.write(text)
        pytest.skip(f"regenerated {path}: read its diff (a regenerating run compares nothing)")
    assert os.path.exists(path), f"no golden file {path}; create it with PPLC_REGEN_GOLDEN=1"
    with open(path) as f:
        golden = f.read()
    if text != golden:
        diff = "".join(difflib.unified_diff(golden.splitlines(True), text.splitlines(True), f"golden/{name}.py",
                                            "pplc compile", n=2))
        pytest.fail(f"generated code differs from {path} (rerun with PPLC_REGEN_GOLDEN=1 if intended):\n{diff}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_golden_file_is_a_valid_program_with_short_lines(name):
    """Each golden file compiles as Python, and its model code (everything above the standalone `main`) keeps
    its lines short enough to read (comments quoting a .ppl line aside)."""
    path = os.path.join(GOLDEN, f"{name}.py")
    with open(path) as f:
        text = f.read()
    compile(text, path, "exec")
    model_part = text.split("\ndef main(", 1)[0]
    long = [(i + 1, len(line)) for i, line in enumerate(model_part.splitlines())
            if len(line) > MAX_LINE and not line.lstrip().startswith("#")]  # comments quote the .ppl source
    assert not long, f"{name}.py: lines longer than {MAX_LINE} characters (line, length): {long}"


# ----------------------------------------------------------------------------- lowering: how sites are built
def _sites(text: str, name: str = "m.ppl") -> dict:
    import pplc
    from pplc.compiler.lower import lower

    return lower(pplc.compile(text, name).ir)


def test_lowered_layers_of_the_seed_models():
    from pplc.compiler.lower import Independent, Masked, ParamForm, Sample, Sharded

    with open(os.path.join(ROOT, "examples", "mnist_logreg.ppl")) as f:
        sites = _sites(f.read())
    w, labels = sites["w"], sites["labels"]
    assert (w.layers, w.root, w.binds) == ((Sample(("pixels", "classes")),), True, True)
    assert [(p.name, p.form) for p in w.params] == [("loc", ParamForm.REAL), ("scale", ParamForm.REAL)]
    assert labels.layers == (Masked("examples", ("examples",), "zero"), Independent(1), Sharded())
    assert (labels.root, labels.binds, labels.positional) == (False, False, False)
    (logits,) = labels.params  # lined up with [..., examples, classes]: the plate and Categorical's event dim
    assert (logits.name, logits.form, logits.plates, logits.rank) == ("logits", ParamForm.LIFTED, ("examples",), 1)


def test_lowered_layers_widen_mask_and_keep_iid_sites_unlifted():
    from pplc.compiler.lower import BatchBroadcast, Independent, Masked, ParamForm, Sample, Sharded

    sites = _sites("data a: real[k]\ndata x: real[n, t]\nconst f = 3\nnu ~ HalfNormal(1)\n"
                   "c: real[f] ~ StudentT(nu, 0, 1)\nw ~ Dirichlet(a)\n"
                   "plate n sharded over devices {\n  s ~ HalfNormal(1)\n  u ~ Beta(2, 2)\n"
                   "  plate t {\n    v ~ Uniform(0, nu)\n  }\n}\n")
    c = sites["c"]
    assert c.layers == (Sample(("f",)),) and not c.root  # nu is a latent
    assert [p.form for p in c.params] == [ParamForm.AS_IS, ParamForm.LITERAL, ParamForm.LITERAL]
    assert sites["w"].layers == () and sites["w"].params[0].form == ParamForm.AS_IS  # Dirichlet's event dim
    assert sites["s"].layers == (BatchBroadcast(("n",)), Masked("n", ("n",), "one"), Independent(1), Sharded())
    assert sites["u"].layers[1] == Masked("n", ("n",), "half")  # a fixed point inside (0, 1)
    v = sites["v"]  # no parameter varies over [n, t]: widened to it, the mask lined up with n of [n, t]
    assert v.layers == (BatchBroadcast(("n", "t")), Masked("n", ("n", "t"), "mean"), Independent(2), Sharded())
    assert [(p.form, p.plates, p.rank) for p in v.params] == [(ParamForm.LITERAL, (), 0),
                                                              (ParamForm.LIFTED, ("n", "t"), 0)]


# ----------------------------------------------------------------------------- what the generated module holds
@pytest.mark.parametrize("name", sorted(MODELS))
def test_golden_module_defines_only_what_it_uses(name):
    """Every helper, table and class the module defines at top level is used by its code or read by the
    runtime; dead code (the old SUPPORTS table and momentum_distribution) is gone."""
    import ast

    with open(os.path.join(GOLDEN, f"{name}.py")) as f:
        tree = ast.parse(f.read())
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    entry_points = {"make_model", "observed", "derived", "main"}  # called by the runtime or by `python prog.py`
    assert entry_points <= defined
    assert defined - entry_points <= loaded, defined - entry_points - loaded
    assert {"SUPPORTS", "momentum_distribution"}.isdisjoint(defined | loaded)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_golden_literals_have_one_form(name):
    """Float literals are written `2.0`, never `2.`: ints `2`, the parameters of literal-only sites `real(2.0)`."""
    import io
    import tokenize

    with open(os.path.join(GOLDEN, f"{name}.py")) as f:
        numbers = [t.string for t in tokenize.generate_tokens(io.StringIO(f.read()).readline)
                   if t.type == tokenize.NUMBER]
    assert numbers and all(not s.endswith(".") and not s.startswith(".") for s in numbers), numbers


def test_prelude_helpers_are_copied_from_their_source():
    """The helpers in a generated module are the functions of codegen/prelude.py, letter for letter, and only
    those it calls: a Flat prior brings `real`, a sharded mean its helper and a pad value per support."""
    import inspect

    import pplc
    from pplc.compiler.codegen import prelude

    src = pplc.compile("data x: real[n]\ns ~ HalfFlat()\nplate n sharded over devices {\n  y ~ Normal(0, s)\n}\n"
                       "track m = mean(x)\n", "p.ppl").source
    for used in ("real", "HalfFlat", "pad_value_zero", "sharded_mean"):
        assert inspect.getsource(prelude.HELPERS[used][0]) in src, used
    for unused in ("Flat", "pad_value_one", "sharded_sum", "sharded_max"):
        assert f"\ndef {unused}(" not in src and f"\nclass {unused}(" not in src, unused


def test_prelude_reductions_and_pad_values():
    """The prelude's functions on one device (no shard axes): padded items left out, pad values in the support."""
    import jax.numpy as jnp
    import numpy as np
    import tensorflow_probability.substrates.jax as tfp

    from pplc.compiler.codegen import prelude

    x = jnp.array([[1.0, 5.0, -2.0], [3.0, 4.0, 9.0]])
    mask = jnp.array([True, True, False])
    assert np.allclose(prelude.sharded_sum(x, mask, -1, []), [6.0, 7.0])
    assert np.allclose(prelude.sharded_mean(x, mask, -1, []), [3.0, 3.5])
    assert np.allclose(prelude.sharded_mean(x, mask[None, :], (-2, -1), [], n_other=2), 13.0 / 4)
    assert np.allclose(prelude.sharded_max(x, mask, -1, []), [5.0, 4.0])
    assert np.allclose(prelude.sharded_min(x, mask, -1, []), [1.0, 3.0])
    tfd = tfp.distributions
    assert float(prelude.pad_value_half(tfd.Beta(2.0, 3.0))) == 0.5
    assert float(prelude.pad_value_one(tfd.Gamma(2.0, 1.0))) == 1.0
    assert float(prelude.pad_value_mean(tfd.Uniform(-1.0, 3.0))) == 1.0
    assert prelude.real(2).dtype == jnp.result_type(float)


def test_formatting_is_cached_by_source_text():
    from pplc.compiler.codegen import format as fmt

    text = "x  =  {'a':1}\n"
    before = fmt.format_module.cache_info().hits
    assert fmt.format_module(text) == fmt.format_module(text) == 'x = {"a": 1}\n'
    assert fmt.format_module.cache_info().hits == before + 1
