"""Issue 10's language fixes, each against a closed form: a model with nothing observed, a latent named like a Python
keyword (`lambda`), statements continued on a line that starts with an operator, the same data observed twice."""

import numpy as np
import pytest
import scipy.stats as st

import pplc
from pplc import cli
from pplc.dsl.diagnostics import PPLError
from pplc.runtime.output import Fit
from pplc.runtime.data import as_bound
from pplc.runtime.predict import predict
from pplc.runtime.sampling.init import nonfinite_terms

Y = np.array([3, 1, 4, 1, 5, 9, 2, 6])
POISSON = """data y: int[n]
lambda ~ Gamma(2, 1)
plate n {
  y ~ Poisson(lambda)
}
"""
PRIOR = """lambda ~ Gamma(3, 2)
mu ~ Normal(1, 2)
"""


def test_a_model_with_nothing_observed_has_the_priors_log_density():
    model = pplc.compile(PRIOR, "prior.ppl")
    params = {"lambda": 1.3, "mu": -0.4}
    want = st.gamma(3, scale=1 / 2).logpdf(1.3) + st.norm(1, 2).logpdf(-0.4)
    for data in (None, {}):
        assert model.log_prob(params, data) == pytest.approx(want, rel=1e-6)
    grad = model.grad_log_prob(params, None)
    assert grad["lambda"] == pytest.approx((3 - 1) / 1.3 - 2, rel=1e-5)
    assert grad["mu"] == pytest.approx(-(-0.4 - 1) / 4, rel=1e-5)


def test_data_used_only_in_parameters_is_a_prior_too():
    model = pplc.compile("data s: real[k]\nmu: real[k] ~ Normal(0, s)\n", "funnel.ppl")
    s, mu = np.array([0.5, 2.0, 3.0]), np.array([0.1, -1.0, 2.5])
    assert model.log_prob({"mu": mu}, {"s": s}) == pytest.approx(st.norm(0, s).logpdf(mu).sum(), rel=1e-6)


def test_pplc_run_samples_a_prior_without_data_and_keeps_the_name_lambda(tmp_path, capsys):
    with open(tmp_path / "prior.ppl", "w") as f:
        f.write(PRIOR)
    out = str(tmp_path / "fit.npz")
    rc = cli.main(["run", str(tmp_path / "prior.ppl"), "--chains", "2", "--warmup", "300", "--draws", "1000",
                   "--out", out, "--quiet"])
    assert rc == 0
    draws = Fit.load(out).draws
    assert set(draws) == {"lambda", "mu"}
    lam, mu = np.asarray(draws["lambda"]).ravel(), np.asarray(draws["mu"]).ravel()
    # Prior means and sds: Gamma(3, rate 2): 1.5, 0.866; Normal(1, 2): 1, 2. About 2000 draws: several MCSEs.
    assert lam.mean() == pytest.approx(1.5, abs=0.15) and lam.std() == pytest.approx(np.sqrt(3) / 2, rel=0.15)
    assert mu.mean() == pytest.approx(1.0, abs=0.35) and mu.std() == pytest.approx(2.0, rel=0.15)


def test_a_latent_named_lambda_works_end_to_end():
    model = pplc.compile(POISSON, "poisson.ppl")
    data = {"y": Y}
    want = st.gamma(2).logpdf(2.5) + st.poisson(2.5).logpmf(Y).sum()
    assert model.log_prob({"lambda": 2.5}, data) == pytest.approx(want, rel=1e-6)
    assert model.grad_log_prob({"lambda": 2.5}, data)["lambda"] == pytest.approx(1 / 2.5 - 1 + Y.sum() / 2.5 - 8)
    assert set(model.sample_prior({"y": Y})) == {"lambda", "y"}
    bound = as_bound(model.ir, data)  # the report of a non-finite start names the .ppl sites
    assert nonfinite_terms(model.program, bound, {"lambda": np.array(-1.0)}) == ["lambda", "y"]
    assert nonfinite_terms(model.program, bound, {"lambda": np.array(1.0)}) == []
    # The posterior predictive for draws of the posterior, Gamma(2 + sum y, rate 1 + n) (sampling `lambda` is in
    # the `pplc run` test above): the predictive mean and the log pointwise predictive density against SciPy.
    lam = np.random.default_rng(1).gamma(2 + Y.sum(), 1 / (1 + len(Y)), size=(2, 50))
    pred = predict(model.program, {"lambda": lam}, data)
    assert pred.mean["y"] == pytest.approx(np.full(8, lam.mean()), rel=1e-5)
    lppd = np.log(np.mean(st.poisson(lam.reshape(-1, 1)).pmf(Y), axis=0)).sum()
    assert pred.metrics["y"]["lppd"] == pytest.approx(lppd, rel=1e-4)


def test_predict_an_iid_site_outside_a_plate():
    """`y ~ Poisson(rate)` with a scalar rate draws every item of `y` (a tfd.Sample): one prediction per item."""
    model = pplc.compile("data y: int[n]\nrate ~ Gamma(2, 1)\ny ~ Poisson(rate)\n", "iid.ppl")
    rate = np.random.default_rng(2).gamma(33, 1 / 9, size=(2, 20))
    pred = predict(model.program, {"rate": rate}, {"y": Y})
    assert pred.mean["y"] == pytest.approx(np.full(8, rate.mean()), rel=1e-5)
    lppd = np.log(np.mean(st.poisson(rate.reshape(-1, 1)).pmf(Y), axis=0)).sum()
    assert pred.metrics["y"]["lppd"] == pytest.approx(lppd, rel=1e-4)


ONE_LINE = """data y: real[n]
data x: real[n]
a ~ Normal(0, 1)
b ~ Normal(0, 1)
plate n {
  m = a + b * x - a * b / 2 + x ** 2 * (x >= 0.5)
  y ~ Normal(m, 1)
}
"""
CONTINUED = """data y: real[n]
data x: real[n]
a ~ Normal(0, 1)
b ~ Normal(0, 1)
plate n {
  m = a
    + b * x   # a comment after a part
    # and a comment line between parts

    - a
    * b / 2 + x
    ** 2
    * (x
    >= 0.5)
  y ~ Normal(m, 1)
}
"""


def test_a_line_that_starts_with_an_operator_continues_the_statement():
    rng = np.random.default_rng(0)
    data = {"y": rng.normal(size=5), "x": rng.uniform(size=5)}
    params = {"a": 0.3, "b": -1.2}
    a, b, x = 0.3, -1.2, data["x"]
    m = a + b * x - a * b / 2 + x ** 2 * (x >= 0.5)
    want = st.norm.logpdf([a, b]).sum() + st.norm(m, 1).logpdf(data["y"]).sum()
    one = pplc.compile(ONE_LINE, "one.ppl").log_prob(params, data)
    assert one == pytest.approx(want, rel=1e-6)
    assert pplc.compile(CONTINUED, "continued.ppl").log_prob(params, data) == one


@pytest.mark.parametrize("text, where", [
    ("data y: real[n]\nmu ~ Normal(0, 1)\ny ~ Normal(mu, 1)\ny ~ Normal(mu, 2)\n", "m.ppl:4:1"),
    ("mu ~ Normal(0, 1)\nx = mu\n  y\n", "m.ppl:3:4"),
])
def test_what_still_fails_is_located_where_it_fails(text, where):
    with pytest.raises(PPLError) as e:
        pplc.compile(text, "m.ppl")
    assert str(e.value).startswith(where)


def test_pplc_run_needs_data_only_when_the_model_declares_some(tmp_path, capsys):
    path = tmp_path / "m.ppl"
    path.write_text("data y: real[n]\nmu ~ Normal(0, 1)\ny ~ Normal(mu, 1)\n")
    rc = cli.main(["run", str(path), "--draws", "10"])
    assert rc == 1 and "declares data (`y`): give it with --data" in capsys.readouterr().err
