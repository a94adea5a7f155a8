"""Recurrences (issue 11): `recur t in T { x[0] = ...  x[t] = ... }`, compiled to one `jax.lax.scan`, against
Python loops in NumPy (float64), finite differences, the unsharded model, and their located errors."""
import json
import os

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import pplc
from pplc.dsl.diagnostics import PPLError

from conftest import ROOT, shared_path

settings.register_profile("recurrences", max_examples=12, deadline=None, derandomize=True, database=None)
CONFORMANCE = os.path.join(ROOT, "tests", "conformance")


# ----------------------------------------------------------------------------- random recurrences vs a loop
@st.composite
def recurrences(draw):
    """A block of 1 or 2 sequences (x, z) with 1 or 2 first items, each general item a sum of terms: earlier
    items of either sequence (through tanh or not), the current item of a sequence above, data at t-j, a latent."""
    n, k = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    names = ["x", "z"][:n]
    coef = st.sampled_from([-0.6, -0.3, 0.2, 0.45, 0.7])
    firsts = {s: [(draw(coef), draw(coef)) for _ in range(k)] for s in names}  # c0 + c1 * y[at]
    steps = {}
    for i, s in enumerate(names):
        kinds = ["lag", "data", "latent"] + ["current"] * (i > 0)
        terms = []
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(kinds))
            if kind == "lag":
                terms.append(("lag", draw(st.sampled_from(names)), draw(st.integers(1, k)), draw(coef),
                              draw(st.booleans())))
            elif kind == "data":
                terms.append(("data", draw(st.integers(0, k)), draw(coef)))
            elif kind == "current":
                terms.append(("current", names[draw(st.integers(0, i - 1))], draw(coef)))
            else:
                terms.append(("latent", draw(coef)))
        steps[s] = terms
    return names, k, firsts, steps


def _text(names, k, firsts, steps) -> str:
    lines = ["data y: real[T]", "a ~ Normal(0, 1)", "recur t in T {"]
    for s in names:
        for at, (c0, c1) in enumerate(firsts[s]):
            lines.append(f"  {s}[{at}] = {c0} + {c1} * y[{at}]" + (" + a" if (s, at) == ("x", 0) else ""))
    for s in names:
        parts = []
        for term in steps[s]:
            if term[0] == "lag":
                _, r, lag, c, nonlin = term
                parts.append(f"{c} * tanh({r}[t-{lag}])" if nonlin else f"{c} * {r}[t-{lag}]")
            elif term[0] == "data":
                parts.append(f"{term[2]} * y[t-{term[1]}]" if term[1] else f"{term[2]} * y[t]")
            elif term[0] == "current":
                parts.append(f"{term[2]} * {term[1]}[t]")
            else:
                parts.append(f"{term[1]} * a")
        lines.append(f"  {s}[t] = " + " + ".join(parts))
    return "\n".join(lines + ["}", "y ~ Normal(x, 1)", ""])


def _loop(names, k, firsts, steps, y, a):
    """The same recurrence as a Python loop in NumPy."""
    out = {s: np.zeros(len(y)) for s in names}
    for s in names:
        for at, (c0, c1) in enumerate(firsts[s]):
            out[s][at] = c0 + c1 * y[at] + (a if (s, at) == ("x", 0) else 0.0)
    for t in range(k, len(y)):
        for s in names:
            v = 0.0
            for term in steps[s]:
                if term[0] == "lag":
                    _, r, lag, c, nonlin = term
                    v += c * (np.tanh(out[r][t - lag]) if nonlin else out[r][t - lag])
                elif term[0] == "data":
                    v += term[2] * y[t - term[1]]
                elif term[0] == "current":
                    v += term[2] * out[term[1]][t]
                else:
                    v += term[1] * a
            out[s][t] = v
    return out


@settings(settings.get_profile("recurrences"))
@given(recurrences(), st.integers(3, 9))
def test_a_recurrence_equals_a_python_loop(spec, T):
    model = pplc.compile(_text(*spec), "rec.ppl")
    y = np.random.default_rng(T).normal(size=T)
    with jax.enable_x64(True):
        got = model.module.derived({"a": np.float64(0.37)}, {"y": y}, {"T": T}, {})
    want = _loop(*spec, y, 0.37)
    for s in spec[0]:
        np.testing.assert_allclose(np.asarray(got[s]), want[s], rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- the time-series translations
def _translation(name):
    return pplc.compile_file(os.path.join(CONFORMANCE, name + ".ppl")), shared_path("posteriordb", name, "data.json")


def _garch(p, d):
    y = np.asarray(d["y"], np.float64)
    sigma = np.empty_like(y)
    sigma[0] = d["sigma1"]
    for t in range(1, len(y)):
        sigma[t] = np.sqrt(p["alpha0"] + p["alpha1"] * (y[t - 1] - p["mu"]) ** 2 + p["beta1"] * sigma[t - 1] ** 2)
    return stats.norm.logpdf(y, p["mu"], sigma).sum()  # flat priors: a constant on the constrained scale


def _arma(p, d):
    y = np.asarray(d["y"], np.float64)
    nu, err = np.empty_like(y), np.empty_like(y)
    nu[0] = p["mu"] + p["phi"] * p["mu"]
    err[0] = y[0] - nu[0]
    for t in range(1, len(y)):
        nu[t] = p["mu"] + p["phi"] * y[t - 1] + p["theta"] * err[t - 1]
        err[t] = y[t] - nu[t]
    priors = (stats.norm.logpdf(p["mu"], 0, 10) + stats.norm.logpdf(p["phi"], 0, 2)
              + stats.norm.logpdf(p["theta"], 0, 2) + stats.cauchy.logpdf(p["sigma"], 0, 2.5))
    return stats.norm.logpdf(err, 0, p["sigma"]).sum() + priors


GARCH_POINTS = [dict(mu=0.1, alpha0=0.2, alpha1=0.3, beta1=0.4), dict(mu=-0.4, alpha0=0.9, alpha1=0.1, beta1=0.7),
                dict(mu=0.3, alpha0=0.05, alpha1=0.6, beta1=0.2)]
ARMA_POINTS = [dict(mu=0.3, phi=0.5, theta=-0.2, sigma=1.3), dict(mu=-1.0, phi=-0.3, theta=0.6, sigma=0.4),
               dict(mu=0.0, phi=0.9, theta=0.1, sigma=2.0)]


@pytest.mark.parametrize("name, loop, points", [("garch-garch11", _garch, GARCH_POINTS),
                                                ("arma-arma11", _arma, ARMA_POINTS)])
def test_garch_and_arma_log_densities_are_numpy_loops(name, loop, points):
    """The translations' log densities (float64, constrained scale) equal the Stan programs' loops in NumPy, up
    to one constant (the flat priors' and the half-Cauchy's normalisation)."""
    model, data = _translation(name)
    raw = json.load(open(data))
    with jax.enable_x64(True):
        ours = np.array([model.log_prob({k: np.float64(v) for k, v in p.items()}, data) for p in points])
    theirs = np.array([loop(p, raw) for p in points])
    np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], rtol=1e-9, atol=1e-8)
    assert np.ptp(theirs) > 10.0


def test_the_gradient_through_the_scan_is_finite_differences():
    model, data = _translation("garch-garch11")
    p = {k: np.float64(v) for k, v in GARCH_POINTS[0].items()}
    with jax.enable_x64(True):
        grad = model.grad_log_prob(p, data)
        for k in p:
            h = 1e-6
            up, down = dict(p, **{k: p[k] + h}), dict(p, **{k: p[k] - h})
            fd = (model.log_prob(up, data) - model.log_prob(down, data)) / (2 * h)
            assert float(grad[k]) == pytest.approx(fd, rel=1e-5, abs=1e-6), k


# ----------------------------------------------------------------------------- inside a sharded plate
SERIES = """data y: real[series, T]
mu ~ Normal(0, 1)
alpha0 ~ HalfNormal(1)
alpha1: real<lower=0, upper=1> ~ Uniform(0, 1)
plate series sharded over devices {
  level ~ Normal(0, 1)
  recur t in T {
    h[0] = 1.0
    m[0] = level
    h[t] = sqrt(alpha0 + alpha1 * square(y[t-1] - m[t-1]) + 0.5 * square(h[t-1]))
    m[t] = 0.7 * m[t-1] + 0.3 * y[t-1] + mu
  }
  y ~ Normal(m, h)
}
"""


def _series_loop(p, y):
    lp = stats.norm.logpdf(p["mu"]) + stats.halfnorm.logpdf(p["alpha0"]) + stats.norm.logpdf(p["level"]).sum()
    for i, yi in enumerate(y):
        h, m = np.empty_like(yi), np.empty_like(yi)
        h[0], m[0] = 1.0, p["level"][i]
        for t in range(1, len(yi)):
            h[t] = np.sqrt(p["alpha0"] + p["alpha1"] * (yi[t - 1] - m[t - 1]) ** 2 + 0.5 * h[t - 1] ** 2)
            m[t] = 0.7 * m[t - 1] + 0.3 * yi[t - 1] + p["mu"]
        lp += stats.norm.logpdf(yi, m, h).sum()
    return lp


def test_a_recurrence_in_a_sharded_plate_equals_the_unsharded_model_and_a_loop():
    """5 series on 2 devices (padded to 6): the same log density and gradient as on 1 device, and as the loop."""
    model = pplc.compile(SERIES, "series.ppl")
    rng = np.random.default_rng(3)
    y = rng.normal(size=(5, 7))
    p = {"mu": 0.2, "alpha0": 0.5, "alpha1": 0.3, "level": rng.normal(size=5)}
    one = model.log_prob(p, {"y": y})
    assert one == pytest.approx(_series_loop(p, y), rel=1e-5)
    assert model.log_prob(p, {"y": y}, devices=2) == pytest.approx(one, rel=1e-5)
    g1, g2 = model.grad_log_prob(p, {"y": y}), model.grad_log_prob(p, {"y": y}, devices=2)
    for k in p:
        np.testing.assert_allclose(np.asarray(g2[k]), np.asarray(g1[k]), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- located errors
HEAD = "data y: real[T]\na ~ Normal(0, 1)\n"


@pytest.mark.parametrize("text, where, message", [
    ("data y: real[T]\nplate T sharded over devices {\n  y ~ Normal(0, 1)\n}\nrecur t in T {\n  x[0] = 0\n"
     "  x[t] = x[t-1]\n}\n", "5:12", "cannot run over the sharded dim `T`"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = x[t+1]\n}\n", "5:12", "is a later item"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = y[t+1]\n}\n", "5:12", "is a later item"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = a * x[t-2]\n}\n", "5:14", "reaches 2 items back"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = y[t-2]\n}\n", "5:10", "reaches 2 items back"),
    (HEAD + "data w: real[T, k]\nrecur t in T {\n  x[0] = a\n  x[t] = x[t-1] + w[t]\n}\n", "6:10",
     "every item of a sequence has one shape"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = x[t-1] + y\n}\n", "5:10", "every item of a sequence has one shape"),
    (HEAD + "data u: real[n]\nrecur t in T {\n  x[0] = a\n  x[t] = x[t-1] + u[t]\n}\n", "6:19",
     "goes over the items of dim `T`"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = x[t] + 1\n}\n", "5:10", "is the line being defined"),
    (HEAD + "recur t in T {\n  x[0] = a\n  z[0] = a\n  x[t] = z[t]\n  z[t] = x[t-1]\n}\n", "6:10",
     "is given below (line 7)"),
    (HEAD + "recur t in T {\n  x[t] = a\n}\n", "4:3", "needs the first item"),
    (HEAD + "recur t in T {\n  x[0] = a\n  z[0] = a\n  z[1] = a\n  x[t] = a\n  z[t] = a\n}\n", "6:3",
     "the same number of first items"),
    (HEAD + "recur t in T {\n  x[0] = y[t]\n  x[t] = a\n}\n", "4:12", "`t` has no value here"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = x * 2\n}\n", "5:10", "one item at a time"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = x[t-1] + t\n}\n", "5:19", "the index of the recurrence"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[2 * t] = a\n}\n", "5:5", "a first item"),
    (HEAD + "recur t in T {\n  x[0] = a\n  x[t] = a\n}\nx = 1\n", "7:1", "already defined"),
    (HEAD + "y2 = y\nrecur t in T {\n  y2[0] = a\n  y2[t] = a\n}\n", "5:3", "already defined"),
    (HEAD + "plate T {\n  recur t in T {\n    x[0] = a\n    x[t] = a\n  }\n}\n", "4:14", "inside `plate T`"),
])
def test_recurrence_errors_are_located(text, where, message):
    with pytest.raises(PPLError) as e:
        pplc.compile(text, "m.ppl")
    rendered = e.value.render()
    assert f"m.ppl:{where}: error:" in rendered and message in rendered, rendered


def test_a_later_use_of_a_failed_sequence_is_not_reported_again():
    with pytest.raises(PPLError) as e:
        pplc.compile(HEAD + "recur t in T {\n  x[0] = a\n  x[t] = x[t+1]\n}\ny ~ Normal(x, 1)\n", "m.ppl")
    assert e.value.render().count("error:") == 1


def test_a_recur_block_prints_back_as_it_parses():
    from pplc.dsl import pretty
    from pplc.dsl.parse import parse

    text = open(os.path.join(CONFORMANCE, "arma-arma11.ppl")).read()
    tree = parse(text)
    again = parse(pretty.program(tree))
    assert pretty.without_spans(again) == pretty.without_spans(tree)
    assert "recur t in T {\n  nu[0] = mu + phi * mu\n" in pretty.program(tree)
