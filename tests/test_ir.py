"""The checked IR of the example models: kinds, stored layouts with named dims, placement, supports."""
import os

import pplc
from conftest import EXAMPLES


def ir_of(name):
    return pplc.compile_file(os.path.join(EXAMPLES, name)).ir


def table(model):
    return {(v.name, v.kind): (v.phys, v.sharded_dim, v.support) for v in model.variables}


def test_mnist_ir():
    m = ir_of("mnist_logreg.ppl")
    t = table(m)
    assert t[("images", "data")] == (("examples", "pixels"), "examples", "real")
    assert t[("w", "latent")] == (("pixels", "classes"), None, "real")
    assert t[("labels", "observed")] == (("examples",), "examples", "categorical")
    assert t[("accuracy", "track")][0] == ()
    assert m.sharded_dims == ("examples",)
    assert m.dim_map["classes"].size == 10


def test_movielens_ir():
    t = table(ir_of("movielens_mf.ppl"))
    assert t[("user_embedding", "latent")] == (("users", "dim"), "users", "real")
    assert t[("user_bias", "latent")] == (("users",), "users", "real")
    assert t[("movie_embedding", "latent")] == (("movies", "dim"), None, "real")
    assert t[("watched", "observed")] == (("users", "movies"), "users", "binary")


def test_eight_schools_ir():
    t = table(ir_of("eight_schools.ppl"))
    assert t[("tau", "latent")] == ((), None, "positive")
    assert t[("theta_raw", "latent")] == (("schools",), None, "real")
    assert t[("theta", "deterministic")][0] == ("schools",)


def test_view_inside_plate_moves_plate_dim_first():
    # x is stored [pixels, examples]; inside plate examples it is seen per item: [examples | pixels].
    m = pplc.compile(
        "data x: real[pixels, examples]\ndata y: real[examples]\nw: real[pixels] ~ Normal(0, 1)\n"
        "plate examples {\n  y ~ Normal(x @ w, 1)\n}\n", "t.ppl")
    assert 'jnp.einsum("...pe->...ep", x)' in m.source


def test_generated_code_comments_cite_ppl_lines():
    src = pplc.compile_file(os.path.join(EXAMPLES, "movielens_mf.ppl")).source
    assert "# movielens_mf.ppl:9  user_embedding: real[dim] ~ Normal(0, 1)" in src
    assert "tfed.Sharded(" in src and "shard_axis_name=shard_axes" in src


def test_observing_a_computed_quantity_is_a_located_error():
    import pytest

    text = "data w: real[n]\nlog_w = log(w)\nmu ~ Normal(0, 1)\nlog_w ~ Normal(mu, 1)\n"
    with pytest.raises(pplc.PPLError) as e:
        pplc.compile(text, "m.ppl")
    msg = e.value.render()
    assert msg.startswith("m.ppl:4:1: error: `log_w` is computed from data (at 2:1)")
    assert "LogNormal" in msg


# ----------------------------------------------------------------------------- kinds and supports
def checked(text):
    """The IR of a model, from the front end alone (parse and check)."""
    from pplc.compiler.check import check
    from pplc.dsl.parse import parse
    from pplc.dsl.spans import Source

    model, _ = check(parse(text, "m.ppl"), Source(text, "m.ppl"))
    return model


def test_kinds_and_supports_are_string_enums():
    from pplc.compiler import ir
    from pplc.compiler.distributions import DISTRIBUTIONS
    from pplc.compiler.supports import SUPPORTS, Support

    m = checked("data y: real[n]\nmu ~ Normal(0, 1)\ns ~ HalfNormal(1)\ny ~ Normal(mu, s)\nz = mu * 2\n")
    assert [(v.name, v.kind) for v in m.variables] == [
        ("y", ir.Kind.DATA), ("mu", ir.Kind.LATENT), ("s", ir.Kind.LATENT), ("y", ir.Kind.OBSERVED),
        ("z", ir.Kind.DETERMINISTIC)]
    assert [v.name for v in m.of_kind("latent")] == ["mu", "s"]
    assert m.var("s").support is Support.POSITIVE and m.var("s").support == "positive"
    assert repr(m.var("s").support) == "'positive'" and repr(ir.Kind.LATENT) == "'latent'"  # as generated code shows it
    assert f"{m.var('s').kind}" == "latent"
    assert set(SUPPORTS) == set(Support)
    assert all(isinstance(d.support, Support) for d in DISTRIBUTIONS.values())


def test_checker_fills_support_checks_with_literal_and_const_bounds():
    from pplc.compiler.supports import Support, SupportCheck

    m = checked("const hi = 3\nconst classes = 4\n"
                "data u: real[n]\ndata k: int[n]\ndata c: int[n]\ndata x: real[n]\ndata w: int[n]\n"
                "a ~ Normal(0, 1)\nb ~ Uniform(a, 2)\nq: real[classes] ~ HalfNormal(1)\np ~ Dirichlet(q)\n"
                "u ~ Uniform(0.5, hi)\nk ~ Binomial(10, logits = a)\nc ~ Categorical(logits = q)\n"
                "x ~ LogNormal(0, 1)\nw ~ Binomial(hi * 2, probs = 0.5)\n")
    checks = {v.name: v.support_check for v in m.variables if v.kind in ("latent", "observed")}
    assert checks == {
        "a": SupportCheck(Support.REAL),
        "b": SupportCheck(Support.INTERVAL, None, 2.0),  # a latent bound is not known before sampling
        "q": SupportCheck(Support.POSITIVE),  # HalfNormal's support includes 0
        "p": SupportCheck(Support.SIMPLEX),
        "u": SupportCheck(Support.INTERVAL, 0.5, 3.0),  # a const bound is
        "k": SupportCheck(Support.BOUNDED_COUNT, None, 10.0),
        "c": SupportCheck(Support.CATEGORICAL, classes_dim="classes"),
        "x": SupportCheck(Support.POSITIVE, strict=True),
        "w": SupportCheck(Support.BOUNDED_COUNT),  # `hi * 2` is an expression, not a bound
    }
    assert all(v.support_check is None for v in m.variables if v.kind not in ("latent", "observed"))


def test_outside_a_support_mask_and_words():
    import numpy as np

    from pplc.compiler.supports import Support, SupportCheck, outside

    def bad(check, values, sizes=None):
        r = outside(check, np.asarray(values), sizes or {})
        return None if r is None else (r[0].tolist(), r[1])

    assert bad(SupportCheck(Support.BINARY), [0, 1, 2]) == ([False, False, True], "0 or 1")
    assert bad(SupportCheck(Support.COUNT), [-1, 0, 7]) == ([True, False, False], "counts 0, 1, 2, ...")
    assert bad(SupportCheck(Support.BOUNDED_COUNT, None, 5.0), [-1, 5, 6]) == (
        [True, False, True], "0 to total_count = 5")
    assert bad(SupportCheck(Support.BOUNDED_COUNT), [-1, 6]) == ([True, False], "counts 0, 1, 2, ...")
    assert bad(SupportCheck(Support.CATEGORICAL, classes_dim="k"), [0, 2, 3], {"k": 3}) == (
        [False, False, True], "0 to 2, as dim `k` is 3")
    assert bad(SupportCheck(Support.CATEGORICAL, classes_dim="k"), [0, 9]) is None  # size not known
    assert bad(SupportCheck(Support.POSITIVE, strict=True), [0.0, 1.0]) == ([True, False], "positive numbers")
    assert bad(SupportCheck(Support.POSITIVE), [-1.0, 0.0]) == ([True, False], "numbers >= 0")
    assert bad(SupportCheck(Support.UNIT), [0.0, 0.5, 1.0]) == (
        [True, False, True], "numbers strictly between 0 and 1")
    assert bad(SupportCheck(Support.INTERVAL, -1.0, 2.5), [-1.5, -1.0, 2.5, 3.0]) == (
        [True, False, False, True], "numbers from -1 to 2.5")
    assert bad(SupportCheck(Support.INTERVAL, None, 2.0), [9.0]) is None
    rows, _ = bad(SupportCheck(Support.SIMPLEX), [[0.5, 0.5], [0.6, 0.6], [1.2, -0.2], [0.9995, 0.0]])
    assert rows == [False, True, True, False]  # one entry per row: sums to 1 (within 1e-3), none negative
    assert bad(SupportCheck(Support.REAL), [np.inf]) is None


def test_unconstrained_shapes_and_what_supports_mean_to_codegen_and_predict():
    from pplc.compiler.supports import SUPPORTS, Support, unconstrained_shape

    assert unconstrained_shape(Support.SIMPLEX, (3, 4)) == (3, 3)
    assert unconstrained_shape("positive", (3, 4)) == (3, 4)
    assert unconstrained_shape(Support.REAL, ()) == ()
    assert {s: SUPPORTS[s].pad_value for s in Support} == {
        "real": "zero", "positive": "one", "unit": "half", "interval": "mean", "simplex": "mean", "binary": "zero",
        "count": "zero", "bounded_count": "zero", "categorical": "zero"}
    assert {s for s in Support if SUPPORTS[s].predict_kind != "means"} == {"binary", "categorical"}
    assert SUPPORTS[Support.CATEGORICAL].predict_kind == "class probabilities"
