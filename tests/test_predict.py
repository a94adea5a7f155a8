"""Posterior predictive: per-draw and averaged distributions of observed sites, against numpy, and the CLI."""
import json
import os

import numpy as np
import pytest
from conftest import EXAMPLES, pplc_in_process
from scipy.special import expit, logsumexp, softmax

import pplc
from pplc.runtime.output import Fit
from pplc.runtime.predict import predict


@pytest.fixture(scope="module")
def mnist():
    model = pplc.compile_file(os.path.join(EXAMPLES, "mnist_logreg.ppl"))
    data = dict(np.load(os.path.join(EXAMPLES, "mnist_logreg_sim.npz")))
    rng = np.random.default_rng(0)
    pixels = data["images"].shape[1]
    draws = {"w": rng.normal(size=(2, 3, pixels, 10)).astype(np.float32),
             "b": rng.normal(size=(2, 3, 10)).astype(np.float32)}
    return model, data, draws


@pytest.mark.parametrize("chunk", [None, 4, 1])
def test_categorical_predictive_against_numpy(mnist, chunk):
    model, data, draws = mnist
    pred = predict(model.program, draws, data, per_draw=True, chunk=chunk)
    probs = softmax(np.einsum("ep,cspk->csek", data["images"], draws["w"]) + draws["b"][:, :, None, :], axis=-1)
    assert pred.kind["labels"] == "class probabilities" and pred.draws == (2, 3)
    np.testing.assert_allclose(pred.per_draw["labels"], probs, atol=2e-6)
    np.testing.assert_allclose(pred.mean["labels"], probs.mean(axis=(0, 1)), atol=2e-6)
    met = pred.metrics["labels"]
    y = data["labels"]
    acc = (probs.argmax(-1) == y).mean(-1)
    np.testing.assert_allclose(met["draw_accuracy"], acc, atol=1e-6)
    assert met["single_draw_accuracy"] == pytest.approx(acc.mean())
    assert met["bma_accuracy"] == pytest.approx(np.mean(probs.mean(axis=(0, 1)).argmax(-1) == y))
    ll = np.log(np.take_along_axis(probs, y[None, None, :, None], axis=-1)[..., 0]).reshape(6, -1)
    assert met["lppd"] == pytest.approx((logsumexp(ll, axis=0) - np.log(6)).sum(), rel=1e-5)


def test_predict_without_observed_values_and_on_new_sizes(mnist):
    model, data, draws = mnist
    new = {"images": data["images"][:7]}  # 7 new examples, labels unknown
    pred = predict(model.program, draws, new)
    assert pred.mean["labels"].shape == (7, 10) and pred.per_draw is None and pred.metrics == {}
    np.testing.assert_allclose(pred.mean["labels"].sum(-1), 1, atol=1e-5)
    with pytest.raises(pplc.PPLError, match="`w` in the draws has shape"):
        predict(model.program, draws, {"images": data["images"][:, :10]})
    with pytest.raises(pplc.PPLError, match="the draws have no `b`"):
        predict(model.program, {"w": draws["w"]}, new)


def test_bernoulli_and_normal_predictives():
    rng = np.random.default_rng(1)
    model = pplc.compile_file(os.path.join(EXAMPLES, "movielens_mf.ppl"))
    data = dict(np.load(os.path.join(EXAMPLES, "movielens_mf_sim.npz")))
    u, m = data["watched"].shape
    dr = {"movie_embedding": rng.normal(size=(1, 4, m, 20)), "movie_bias": rng.normal(size=(1, 4, m)),
          "user_embedding": rng.normal(size=(1, 4, u, 20)), "user_bias": rng.normal(size=(1, 4, u))}
    pred = predict(model.program, dr, data, chunk=3)
    p = expit(np.einsum("csmd,csud->csum", dr["movie_embedding"], dr["user_embedding"])
              + dr["user_bias"][..., None] + dr["movie_bias"][:, :, None, :])
    assert pred.kind["watched"] == "probabilities"
    np.testing.assert_allclose(pred.mean["watched"], p.mean(axis=(0, 1)), atol=1e-5)
    assert pred.metrics["watched"]["single_draw_accuracy"] == pytest.approx(((p > 0.5) == data["watched"]).mean())

    model = pplc.compile_file(os.path.join(EXAMPLES, "eight_schools.ppl"))
    with open(os.path.join(EXAMPLES, "eight_schools.json")) as f:
        data = json.load(f)
    dr = {"mu": rng.normal(size=(2, 5)), "tau": np.abs(rng.normal(size=(2, 5))), "theta_raw": rng.normal(size=(2, 5, 8))}
    pred = predict(model.program, dr, data)
    theta = dr["mu"][..., None] + dr["tau"][..., None] * dr["theta_raw"]
    assert pred.kind["y"] == "means"
    np.testing.assert_allclose(pred.mean["y"], theta.mean(axis=(0, 1)), rtol=1e-5, atol=1e-6)
    assert "bma_accuracy" not in pred.metrics["y"] and np.isfinite(pred.metrics["y"]["lppd"])


MULTIVARIATE = """
const K = 3
data counts: int[n, K]
data total: int[n]
data x: real[m, K]
theta ~ Dirichlet(rep(1.0, K))
mu ~ Normal(0, 1)
L: cholesky_corr[K] ~ CholeskyLKJ(2)
plate n {
  counts ~ Multinomial(total, probs=theta)
}
plate m {
  x ~ MultivariateNormalTriL(rep(mu, K), L)
}
"""


def test_multivariate_observed_sites_predict_their_means_and_log_density():
    """Multinomial and MultivariateNormalTriL observed in plates: the predictive mean has the event dim, the log
    predictive density is per item (over the event), both as SciPy computes them from the same draws."""
    from scipy import stats

    rng = np.random.default_rng(3)
    model = pplc.compile(MULTIVARIATE, "mv.ppl")
    n, m, k = 5, 4, 3
    data = {"counts": rng.multinomial(7, [0.2, 0.3, 0.5], size=n), "total": np.full(n, 7),
            "x": rng.normal(size=(m, k))}
    theta = rng.dirichlet(np.ones(k), size=(2, 3))
    mu = rng.normal(size=(2, 3))
    a = rng.normal(size=(2, 3, k, k)) * 0.3 + np.eye(k) * 2
    L = np.linalg.cholesky(a @ np.swapaxes(a, -1, -2))
    L = L / np.linalg.norm(L, axis=-1, keepdims=True)  # rows of unit length: a correlation factor
    pred = predict(model.program, {"theta": theta, "mu": mu, "L": L}, data, chunk=4)
    np.testing.assert_allclose(pred.mean["counts"], 7 * np.broadcast_to(theta.mean((0, 1)), (n, k)), rtol=1e-5)
    np.testing.assert_allclose(pred.mean["x"], np.full((m, k), mu.mean()), rtol=1e-5, atol=1e-6)
    lik_c = np.array([[stats.multinomial.logpmf(data["counts"], 7, theta[c, d]) for d in range(3)] for c in range(2)])
    lik_x = np.array([[stats.multivariate_normal.logpdf(data["x"], np.full(k, mu[c, d]), L[c, d] @ L[c, d].T)
                       for d in range(3)] for c in range(2)])
    for name, lik in (("counts", lik_c), ("x", lik_x)):  # [chains, draws, items]
        lppd = logsumexp(lik.reshape(6, -1), axis=0) - np.log(6)
        assert pred.metrics[name]["lppd"] == pytest.approx(lppd.sum(), rel=1e-4), name
        assert pred.metrics[name]["lppd_mean"] == pytest.approx(lppd.mean(), rel=1e-4), name


def test_fit_predict_and_cli(tmp_path):
    model = pplc.compile_file(os.path.join(EXAMPLES, "mnist_logreg.ppl"))
    data = os.path.join(EXAMPLES, "mnist_logreg_sim.npz")
    fit = model.sample(data, devices=2, chains=2, warmup=40, draws=20, sampler="hmc", leapfrog=5, seed=0,
                       matmul_precision="highest")
    assert fit.program is model.program
    pred = fit.predict(data)
    met = pred.metrics["labels"]
    assert met["draw_accuracy"].shape == (2, 20) and 0.3 < met["single_draw_accuracy"] <= 1
    # the tracked training accuracy of each draw is the predictive's single-draw accuracy on the same data
    np.testing.assert_allclose(met["draw_accuracy"], fit.trace["accuracy"], atol=1e-6)
    path = str(tmp_path / "fit.npz")
    fit.save(path)
    with pytest.raises(pplc.PPLError, match="does not know its model"):
        Fit.load(path).predict(data)
    assert Fit.load(path, program=model.program).predict(data).metrics["labels"]["bma_accuracy"] == met["bma_accuracy"]
    r = pplc_in_process("predict", os.path.join(EXAMPLES, "mnist_logreg.ppl"), "--fit", path, "--data", data,
                        "-o", str(tmp_path / "pred.npz"), "--per-draw")
    assert r.returncode == 0, r.stderr
    assert f"accuracy, Bayesian model average: {met['bma_accuracy']:.4f}" in r.stdout
    with np.load(tmp_path / "pred.npz") as f:
        assert f["per_draw/labels"].shape == (2, 20, 1000, 10) and f["mean/labels"].shape == (1000, 10)


def test_matmul_precision_is_checked():
    model = pplc.compile_file(os.path.join(EXAMPLES, "eight_schools.ppl"))
    with pytest.raises(pplc.PPLError, match="unknown matmul precision `fp8`"):
        model.sample(os.path.join(EXAMPLES, "eight_schools.json"), chains=1, warmup=2, draws=2, sampler="hmc",
                     matmul_precision="fp8")
    r = pplc_in_process("run", os.path.join(EXAMPLES, "eight_schools.ppl"), "--data",
                        os.path.join(EXAMPLES, "eight_schools.json"), "--matmul-precision", "fp8")
    assert r.returncode == 1 and "fp8" in r.stderr and "tensorfloat32" in r.stderr  # a usage error: exit 1
