"""Distributions as arguments (issues 10 and 11): MixtureSameFamily against SciPy's weighted densities,
HiddenMarkovModel and hmm_marginal against a NumPy forward algorithm, posterior state probabilities against a
NumPy forward-backward and Viterbi, a plate of 13 sequences sharded over 2, 4 and 8 devices against the unsharded
model, located errors for misuse, and the posteriordb HMM translations against the Stan programs' forward loops."""

import json
import os

import jax
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import pplc
from pplc.api import _as_data
from pplc.dsl.diagnostics import PPLError
from pplc.runtime.fitting.common import host_data

from conftest import ROOT, shared_path

RNG = np.random.default_rng(11)


def forward(lo, gamma, rho):
    """log p(y) by the forward algorithm: lo [T, K] per-step log densities, gamma [K, K], rho [K]."""
    a = np.log(rho) + lo[0]
    for t in range(1, len(lo)):
        a = logsumexp(a[:, None] + np.log(gamma), axis=0) + lo[t]
    return logsumexp(a)


def forward_backward(lo, gamma, rho):
    """p(state at t | all of y), [T, K], by the forward-backward algorithm in probabilities (rescaled)."""
    om = np.exp(lo - lo.max(axis=1, keepdims=True))
    t_, k = lo.shape
    alpha, beta = np.zeros((t_, k)), np.ones((t_, k))
    alpha[0] = rho * om[0]
    alpha[0] /= alpha[0].sum()
    for t in range(1, t_):
        alpha[t] = (alpha[t - 1] @ gamma) * om[t]
        alpha[t] /= alpha[t].sum()
    for t in range(t_ - 2, -1, -1):
        beta[t] = gamma @ (om[t + 1] * beta[t + 1])
        beta[t] /= beta[t].sum()
    post = alpha * beta
    return post / post.sum(axis=1, keepdims=True)


def viterbi(lo, gamma, rho):
    """The most likely state sequence [T] given all of y."""
    best, back = np.log(rho) + lo[0], []
    for t in range(1, len(lo)):
        cand = best[:, None] + np.log(gamma)
        back.append(cand.argmax(axis=0))
        best = cand.max(axis=0) + lo[t]
    path = [int(best.argmax())]
    for b in reversed(back):
        path.append(int(b[path[-1]]))
    return np.array(path[::-1])


def derived(model, params, data):
    """The tracked quantities at `params` (unsharded, float64 when x64 is on)."""
    bound = _as_data(model.program, data)
    arrays = host_data(model.program, bound)
    params = {k: np.asarray(v) for k, v in params.items()}
    return model.module.derived(params, arrays, bound.sizes, model.program.all_true_masks(bound.sizes), [])


# ----------------------------------------------------------------------------- mixtures
MIXTURE = """data y: real[n]
w ~ Dirichlet(rep(2, 3))
mu: ordered[3] ~ Normal(0, 5)
sigma: real[3] ~ HalfNormal(2)
z ~ MixtureSameFamily(Categorical(probs = w), LogNormal(mu, sigma))
plate n sharded over devices {
  y ~ MixtureSameFamily(Categorical(probs = w), Normal(mu, sigma))
}
track lp = MixtureSameFamily(Categorical(probs = w), StudentT(4, mu, sigma)).log_prob(y)
"""


def test_a_mixture_is_the_log_of_the_weighted_sum_of_its_components_densities():
    model = pplc.compile(MIXTURE, "mix.ppl")
    assert model.ir.var("z").support == "positive" and model.ir.var("y").support == "real"
    y = RNG.normal(0, 3, 7)
    w, mu, sigma, z = np.array([0.2, 0.5, 0.3]), np.array([-1.0, 0.5, 2.0]), np.array([0.5, 1.0, 2.0]), 1.3
    params = {"w": w, "mu": mu, "sigma": sigma, "z": z}
    want = (st.dirichlet([2, 2, 2]).logpdf(w) + st.norm(0, 5).logpdf(mu).sum()
            + st.halfnorm(scale=2).logpdf(sigma).sum()
            + np.log(np.sum(w * st.lognorm(s=sigma, scale=np.exp(mu)).pdf(z)))
            + np.log(st.norm(mu, sigma).pdf(y[:, None]) @ w).sum())
    with jax.enable_x64(True):
        for devices in (1, 2):  # 7 items over 2 devices: padded
            assert model.log_prob(params, {"y": y}, devices=devices) == pytest.approx(want, rel=1e-10)
        lp = derived(model, params, {"y": y})["lp"]
    np.testing.assert_allclose(lp, np.log(st.t(4, mu, sigma).pdf(y[:, None]) @ w), rtol=1e-10)


def test_observed_values_are_checked_against_the_components_support():
    model = pplc.compile("data y: real[n]\nw ~ Dirichlet(rep(1, 2))\n"
                         "y ~ MixtureSameFamily(Categorical(probs = w), Exponential(rep(1, 2)))\n", "m.ppl")
    with pytest.raises(PPLError) as e:
        model.log_prob({"w": np.array([0.5, 0.5])}, {"y": np.array([1.0, -2.0])})
    assert "outside the support of MixtureSameFamily" in e.value.render()


# ----------------------------------------------------------------------------- hidden Markov models
T, K = 9, 3
HMM = """data y: real[T]
data initial: real[K]
theta: real[K, K] ~ Dirichlet(rep(1, K))
mu: ordered[K] ~ Normal(0, 5)
sigma ~ HalfNormal(2)
y ~ HiddenMarkovModel(Categorical(probs = initial), Categorical(probs = theta), Normal(mu, sigma), T)
plate T {
  lo = Normal(mu, sigma).log_prob(y)
}
track probs = HiddenMarkovModel(Categorical(probs = initial), Categorical(probs = theta), Normal(mu, sigma),
                                T).posterior_marginals(y)
track best = HiddenMarkovModel(Categorical(probs = initial), Categorical(probs = theta), Normal(mu, sigma),
                               T).posterior_mode(y)
track marginal = hmm_marginal(lo, theta, initial)
track probs2 = hmm_hidden_state_prob(lo, theta, initial)
"""


def hmm_params():
    theta = RNG.dirichlet(np.ones(K), size=K)
    return {"theta": theta, "mu": np.array([-2.0, 0.5, 3.0]), "sigma": 1.3}


def test_hmm_log_prob_posterior_marginals_and_mode_match_numpy_forward_backward_and_viterbi():
    model = pplc.compile(HMM, "hmm.ppl")
    params = hmm_params()
    data = {"y": RNG.normal(0, 3, T), "initial": np.array([0.5, 0.3, 0.2])}
    lo = st.norm(params["mu"], params["sigma"]).logpdf(data["y"][:, None])
    like = forward(lo, params["theta"], data["initial"])
    want = (st.norm(0, 5).logpdf(params["mu"]).sum() + st.halfnorm(scale=2).logpdf(params["sigma"])
            + sum(st.dirichlet(np.ones(K)).logpdf(r) for r in params["theta"]) + like)
    post = forward_backward(lo, params["theta"], data["initial"])
    with jax.enable_x64(True):
        assert model.log_prob(params, data) == pytest.approx(want, rel=1e-10)
        out = derived(model, params, data)
    assert float(out["marginal"]) == pytest.approx(like, rel=1e-10)
    for name in ("probs", "probs2"):
        assert out[name].shape == (T, K)
        np.testing.assert_allclose(out[name], post, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(out["best"], viterbi(lo, params["theta"], data["initial"]))


SERIES = """data y: real[series, T]
data y2: real[series, T]
data initial: real[K]
theta: real[K, K] ~ Dirichlet(rep(1, K))
mu: ordered[K] ~ Normal(0, 5)
plate series sharded over devices {
  sigma ~ HalfNormal(2)
  y ~ HiddenMarkovModel(Categorical(probs = initial), Categorical(probs = theta), Normal(mu, sigma), T)
  target += hmm_marginal(Normal(mu, sigma).log_prob(rep(y2, K)), theta, initial)
}
"""


@pytest.fixture(scope="module")
def series():
    """The 13-sequence model, a point, its data, and the unsharded log density and gradient there."""
    model = pplc.compile(SERIES, "series.ppl")
    params = hmm_params()
    params["sigma"] = RNG.uniform(0.5, 2, 13)
    data = {"y": RNG.normal(0, 3, (13, T)), "y2": RNG.normal(0, 3, (13, T)), "initial": np.array([0.5, 0.3, 0.2])}
    return model, params, data, model.log_prob(params, data), model.grad_log_prob(params, data)


def test_a_plate_of_13_sequences_is_the_sum_of_their_forward_algorithms(series):
    """HiddenMarkovModel observing y, hmm_marginal adding y2's term: each sequence's forward algorithm."""
    model, params, data, want, _ = series
    like = sum(forward(st.norm(params["mu"], s).logpdf(y[:, None]), params["theta"], data["initial"])
               for ys in (data["y"], data["y2"]) for y, s in zip(ys, params["sigma"]))
    assert want == pytest.approx(like + st.norm(0, 5).logpdf(params["mu"]).sum()
                                 + st.halfnorm(scale=2).logpdf(params["sigma"]).sum()
                                 + sum(st.dirichlet(np.ones(K)).logpdf(r) for r in params["theta"]), rel=1e-5)


@pytest.mark.parametrize("devices", [2, 4, pytest.param(8, marks=pytest.mark.slow)])
def test_a_plate_of_13_sequences_sharded_over_devices_equals_the_unsharded_model(series, devices):
    model, params, data, want, want_grad = series  # 13 items: padded on every mesh
    assert model.log_prob(params, data, devices=devices) == pytest.approx(want, rel=1e-5)
    got = model.grad_log_prob(params, data, devices=devices)
    for name, g in want_grad.items():
        np.testing.assert_allclose(got[name], g, rtol=1e-5, atol=1e-5 * np.abs(g).max())


# ----------------------------------------------------------------------------- errors
BASE = "data y: real[T]\ndata rho: real[K]\ndata G: real[K, K]\ndata lo: real[T, K]\nmu: real[K] ~ Normal(0, 1)\n"


@pytest.mark.parametrize("text, where, message", [
    ("data m: real[J]\ny ~ HiddenMarkovModel(Categorical(probs = rho), Categorical(probs = G), "
     "Normal(m, 1), T)\n", "7:73", "its last dim must be the states dim `K`"),
    ("plate T sharded over devices {\n  z ~ Normal(0, 1)\n}\ny ~ HiddenMarkovModel(Categorical(probs = rho), "
     "Categorical(probs = G), Normal(mu, 1), T)\n", "9:88", "the time dim `T` of HiddenMarkovModel is sharded"),
    ("x ~ HiddenMarkovModel(Categorical(probs = rho), Categorical(probs = G), Normal(mu, 1), T)\n", "6:5",
     "HiddenMarkovModel is observed only"),
    ("y ~ HiddenMarkovModel(Categorical(probs = rho), Normal(mu, 1), Normal(mu, 1), T)\n", "6:49",
     "is a Categorical, not Normal"),
    ("y ~ MixtureSameFamily(Categorical(probs = rho), Normal(0, 1))\n", "6:49", "its last dim must be"),
    ("y ~ MixtureSameFamily(Categorical(probs = rho), mu)\n", "6:49", "is a distribution, such as"),
    ("target += hmm_marginal(lo, G, mu[0])\n", "6:31", "the rho (the initial state probabilities)"),
    ("target += hmm_marginal(y, G, rho)\n", "6:24", "the log_omega of `hmm_marginal` is [T, K]"),
    ("track p = HiddenMarkovModel(Categorical(probs = rho), Categorical(probs = G), Normal(mu, 1), T)"
     ".posterior_marginals(rho)\n", "6:117", "have the time dim `T` last"),
])
def test_misuse_is_a_located_error(text, where, message):
    with pytest.raises(PPLError) as e:
        pplc.compile(BASE + text, "m.ppl")
    rendered = e.value.render()
    assert f"m.ppl:{where}: error:" in rendered and message in rendered, rendered


# ----------------------------------------------------------------------------- the posteriordb translations
def _stan_hmm(p, d, lo):
    """The Stan programs' forward algorithm: gamma[1, k] = the emission alone (no initial probabilities)."""
    return forward(lo, p["theta"], np.ones(len(p["theta"])))


def _stan_hmm_example(p, d):
    lo = st.norm(p["mu"], 1.0).logpdf(np.asarray(d["y"])[:, None])
    return st.norm(3, 1).logpdf(p["mu"][0]) + st.norm(10, 1).logpdf(p["mu"][1]) + _stan_hmm(p, d, lo)


def _stan_drive(p, d, emission):
    u, v = np.asarray(d["u"])[:, None], np.asarray(d["v"])[:, None]
    lo = emission(u, p["phi"], d.get("tau")) + emission(v, p["lambda"], d.get("rho"))
    priors = sum(st.dirichlet(np.asarray(a, float)).logpdf(r) for a, r in zip(d["alpha"], p["theta"]))
    priors += st.norm([0, 3], 1).logpdf(p["phi"]).sum() + st.norm([0, 3], 1).logpdf(p["lambda"]).sum()
    return priors + _stan_hmm(p, d, lo)


STAN_HMMS = {
    "hmm_example-hmm_example": (_stan_hmm_example, ("mu",)),
    "bball_drive_event_0-hmm_drive_0": (lambda p, d: _stan_drive(p, d, lambda x, r, _: st.expon(scale=1 / r).logpdf(x)),
                                        ("phi", "lambda")),
    "bball_drive_event_1-hmm_drive_1": (lambda p, d: _stan_drive(p, d, lambda x, m, s: st.norm(m, s).logpdf(x)),
                                        ("phi", "lambda")),
}


@pytest.mark.parametrize("name", sorted(STAN_HMMS))
def test_hmm_translation_log_density_is_the_stan_programs_forward_algorithm(name):
    """tests/conformance's HMM translations (HiddenMarkovModel, hmm_marginal) differ from the Stan program's hand
    forward algorithm, in NumPy, by one constant (the uniform initial probabilities) at random points."""
    data = shared_path("posteriordb", name, "data.json")
    raw = json.load(open(data))
    model = pplc.compile_file(os.path.join(ROOT, "tests", "conformance", name + ".ppl"))
    stan, ordered = STAN_HMMS[name]
    rng = np.random.default_rng(3)
    points = [{"theta": rng.dirichlet([3.0, 3.0], size=2), **{o: np.sort(rng.uniform(0.2, 9, 2)) for o in ordered}}
              for _ in range(3)]
    with jax.enable_x64(True):
        ours = [model.log_prob(p, data) for p in points]
    theirs = [stan(p, raw) for p in points]
    diffs = np.asarray(ours) - np.asarray(theirs)
    assert np.all(np.isfinite(diffs)) and np.ptp(theirs) > 1.0
    np.testing.assert_allclose(diffs - diffs[0], 0.0, atol=1e-8 * np.abs(theirs).max())
