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
        "count": "zero", "bounded_count": "zero", "categorical": "zero",
        # declared bounds and ordered vectors: Bounded's and Ordered's `mean()`, a point inside (prelude)
        "bounded": "mean", "ordered": "mean",
        # VonMises, the GEV (its mode: its support moves with its parameters), Multinomial (total_count * probs),
        # OrderedLogistic, CholeskyLKJ (the identity)
        "angle": "zero", "extreme": "mode", "count_vector": "mean", "ordinal": "zero", "cholesky_corr": "eye"}
    assert unconstrained_shape(Support.CHOLESKY_CORR, (2, 4, 4)) == (2, 1, 6)  # K (K - 1) / 2, as many dims
    assert {s for s in Support if SUPPORTS[s].predict_kind != "means"} == {"binary", "categorical"}
    assert SUPPORTS[Support.CATEGORICAL].predict_kind == "class probabilities"


# ----------------------------------------------------------------------------- repeated dims and indexing (issue 10)
# Axes are positional: a value may name a dim twice (`A: real[k, k]`). Each case is checked in float64 against
# NumPy (or SciPy for densities), or is a located refusal.
SQUARE = ("data A: real[k, k]\ndata x: real[k, n]\ndata w: real[k]\ndata v: real[n]\ndata s: real\n"
          "data ik: int[m]\ndata jn: int[m]\ndata gk: int[n]\nu ~ Normal(0, 1)\n")


def square_data():
    import numpy as np

    rng = np.random.default_rng(3)
    k, n, m = 3, 4, 5
    return {"A": rng.normal(size=(k, k)), "x": rng.normal(size=(k, n)), "w": rng.normal(size=(k,)),
            "v": rng.normal(size=(n,)), "s": np.float64(0.7), "ik": rng.integers(0, k, m).astype(np.int32),
            "jn": rng.integers(0, n, m).astype(np.int32), "gk": rng.integers(0, k, n).astype(np.int32)}


def value_of(expr, plate=None):
    """`z = expr + 0 * u` (inside `plate`, if given) evaluated by pplc in float64."""
    import jax
    import numpy as np

    body = f"z = {expr} + 0 * u\n"
    text = SQUARE + (f"plate {plate} {{\n  {body}}}\n" if plate else body)
    with jax.enable_x64(True):
        out = pplc.compile(text, "sq.ppl").sample_prior(square_data(), seed=0)
    return np.asarray(out["z"])


def refusal(text):
    import pytest

    with pytest.raises(pplc.PPLError) as e:
        pplc.compile(text, "sq.ppl")
    return e.value.render()


def test_square_matrix_products_are_numpy_matmul():
    import numpy as np

    d = square_data()
    A, x, w = d["A"], d["x"], d["w"]
    for expr, want in [("A @ x", A @ x), ("A @ w", A @ w), ("w @ A", w @ A), ("x.T @ A", x.T @ A),
                       ("A @ A", A @ A), ("x.T @ x", x.T @ x), ("x @ x.T", x @ x.T), ("A.T @ A @ w", A.T @ A @ w)]:
        np.testing.assert_allclose(value_of(expr), want, rtol=1e-12, atol=1e-12, err_msg=expr)
    # inside a plate over n: each item x[:, t] is a vector over k
    np.testing.assert_allclose(value_of("A @ x", "n"), (A @ x).T, rtol=1e-12, err_msg="plate n: A @ x")


def test_reductions_of_a_square_matrix_are_by_position():
    import numpy as np
    from scipy.special import logsumexp

    d = square_data()
    A, w = d["A"], d["w"]
    for expr, want in [("sum(A)", A.sum()), ("mean(A)", A.mean()), ("max(A)", A.max()), ("min(A)", A.min()),
                       ("logsumexp(A)", logsumexp(A, axis=-1)), ("dot(A, w)", (A * w).sum(-1)),
                       ("dot(A, A)", (A * A).sum(-1)), ("softmax(A)", np.exp(A - logsumexp(A, -1, keepdims=True)))]:
        got = value_of(expr)
        assert got.shape == np.shape(want), expr
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=expr)
    msg = refusal(SQUARE + "z = sum(A, k)\n")
    assert msg.startswith("sq.ppl:10:12: error: `sum(..., k)` is ambiguous: the value has shape [k, k]"), msg


def test_indexing_with_several_indices_is_numpy_advanced_indexing():
    import numpy as np

    d = square_data()
    A, x, ik, jn, gk = d["A"], d["x"], d["ik"], d["jn"], d["gk"]
    for expr, want in [("x[ik, jn]", x[ik, jn]), ("A[ik, ik]", A[ik, ik]), ("x[ik, 0]", x[ik, 0]),
                       ("x[0, jn]", x[0, jn]), ("x[1, 2]", x[1, 2]), ("A[gk]", A[gk])]:
        np.testing.assert_allclose(value_of(expr), want, rtol=1e-12, err_msg=expr)
    # inside plates: the indices are seen one item at a time, and broadcast with the others
    np.testing.assert_allclose(value_of("x[ik, jn]", "m"), x[ik, jn], rtol=1e-12)
    np.testing.assert_allclose(value_of("A[gk, ik]", "n"), A[gk[:, None], ik[None, :]], rtol=1e-12)
    np.testing.assert_allclose(value_of("A[gk, 0]", "n"), A[gk, 0], rtol=1e-12)
    # index arrays over different dims do not line up (NumPy fails on shapes (5,) and (4,)): a located error
    msg = refusal(SQUARE + "z = A[ik, gk]\n")
    assert msg.startswith("sq.ppl:10:11: error: shape mismatch in the indices (they broadcast together): index "
                          "`ik` has shape [m] and index `gk` has shape [n]"), msg


def test_a_value_declared_in_a_plate_gets_its_dim_and_literals_are_cast():
    import numpy as np

    d = square_data()
    np.testing.assert_allclose(value_of("s", "n"), np.full(4, d["s"]), rtol=1e-12)
    np.testing.assert_allclose(value_of("w", "n"), np.broadcast_to(d["w"], (4, 3)), rtol=1e-12)
    np.testing.assert_allclose(value_of("sigmoid(2)"), 1 / (1 + np.exp(-2.0)), rtol=1e-12)
    np.testing.assert_allclose(value_of("sigmoid(ik)"), 1 / (1 + np.exp(-d["ik"])), rtol=1e-12)
    np.testing.assert_allclose(value_of("where(2 < 0.5, 2, x)"), d["x"], rtol=1e-12)


def test_repeated_dims_that_cannot_be_placed_are_located_errors():
    msg = refusal(SQUARE + "plate k {\n  z = A + w\n}\n")
    assert msg.startswith("sq.ppl:11:7: error: `A` has shape [k, k]: inside `plate k` it is unclear"), msg
    msg = refusal("data D: real[n, n]\nplate n sharded over devices {\n  mu ~ Normal(0, 1)\n}\n")
    assert msg.startswith("sq.ppl:1:9: error: data `D` would have the sharded dim `n` twice"), msg


def test_square_sites_have_their_exact_density():
    """A [k, k] site with a [k] parameter is widened over both axes (tfd.BatchBroadcast), by position."""
    import jax
    import numpy as np
    from scipy import stats

    from pplc.compiler.lower import BatchBroadcast, lower

    d = square_data()
    text = (SQUARE + "data Y: real[k, k]\nB: real[k, k] ~ Normal(w, 1)\nY ~ Normal(A @ w + B, s)\n")
    m = pplc.compile(text, "sq.ppl")
    assert any(isinstance(layer, BatchBroadcast) for layer in lower(m.ir)["B"].layers)
    data = {**d, "Y": np.random.default_rng(4).normal(size=(3, 3))}
    B = np.random.default_rng(5).normal(size=(3, 3))
    with jax.enable_x64(True):
        got = m.log_prob({"u": np.float64(0.2), "B": B}, data)
    want = (stats.norm.logpdf(0.2) + stats.norm.logpdf(B, d["w"], 1).sum()
            + stats.norm.logpdf(data["Y"], d["A"] @ d["w"] + B, d["s"]).sum())
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_int_total_count_is_cast_to_real():
    """Binomial and NegativeBinomial with int data total_count (every Stan binomial model) against SciPy."""
    import jax
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(6)
    n = rng.integers(1, 20, 6).astype(np.int32)
    y = rng.binomial(n, 0.3).astype(np.int32)
    for dist, logpmf in [("Binomial", lambda p: stats.binom.logpmf(y, n, p)),
                         ("NegativeBinomial", lambda p: stats.nbinom.logpmf(y, n, 1 - p))]:
        text = f"data n: int[m]\ndata y: int[m]\nq ~ Uniform(0, 1)\ny ~ {dist}(n, probs = q)\n"
        m = pplc.compile(text, "b.ppl")
        for x64 in (True, False):
            with jax.enable_x64(x64):
                got = m.log_prob({"q": np.float64(0.3)}, {"n": n, "y": y})
            np.testing.assert_allclose(got, logpmf(0.3).sum(), rtol=1e-12 if x64 else 1e-5, err_msg=dist)


def test_golden_square_matrices_model_has_its_exact_density():
    """tests/golden/good/square_matrices.ppl (X.T @ X, a [k, k] latent, NumPy indexing, int trials) in float64
    against SciPy."""
    import jax
    import numpy as np
    from scipy import special, stats

    model = pplc.compile_file(os.path.join(os.path.dirname(__file__), "golden", "good", "square_matrices.ppl"))
    rng = np.random.default_rng(8)
    n, k, m, c, g = 6, 3, 7, 4, 2
    trials = rng.integers(1, 9, m).astype(np.int32)
    data = {"X": rng.normal(size=(n, k)), "y": rng.normal(size=n), "county": rng.integers(0, c, m).astype(np.int32),
            "group": rng.integers(0, g, m).astype(np.int32), "trials": trials,
            "successes": rng.binomial(trials, 0.4).astype(np.int32), "W": rng.normal(size=(c, g, k))}
    beta, L, sigma = rng.normal(size=k), rng.normal(size=(k, k)), 0.8
    with jax.enable_x64(True):
        got = model.log_prob({"beta": beta, "L": L, "sigma": np.float64(sigma)}, data)
    X, W = data["X"], data["W"]
    logits = (W[data["county"], data["group"]] * beta).sum(-1) + sigma
    want = (stats.norm.logpdf(beta).sum() + stats.norm.logpdf(L, beta[None, :], 1).sum()
            + stats.halfnorm.logpdf(sigma)
            + stats.norm.logpdf(data["y"], X @ (L @ beta) + (L * L).sum(-1)[0], sigma).sum()
            + stats.binom.logpmf(data["successes"], trials, special.expit(logits)).sum())
    np.testing.assert_allclose(got, want, rtol=1e-12)
