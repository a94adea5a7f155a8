"""Discrete latents summed out by enumeration (issue 11): a Categorical-labelled Gaussian mixture and a
Bernoulli-occupancy model against their hand-marginalised log densities (SciPy, float64), the posterior label
probabilities against Bayes' rule in NumPy, a plate of 13 mixture items sharded over 2, 4 and 8 devices against
the unsharded model, and located errors for the structures pplc does not sum out."""

import jax
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import pplc
from pplc.api import _as_data
from pplc.dsl.diagnostics import PPLError
from pplc.runtime.fitting.common import host_data

RNG = np.random.default_rng(7)


def derived(model, params, data):
    """The tracked quantities at `params` (unsharded)."""
    bound = _as_data(model.program, data)
    arrays = host_data(model.program, bound)
    return model.module.derived(params, arrays, bound.sizes, model.program.all_true_masks(bound.sizes), [])


# ----------------------------------------------------------------------------- a labelled Gaussian mixture
MIXTURE = """data y: real[n]
w ~ Dirichlet(rep(2, 3))
mu: ordered[3] ~ Normal(0, 5)
sigma: real<lower=0>[3] ~ HalfNormal(2)
plate n sharded over devices {
  z ~ Categorical(probs = w)
  m = mu[z]
  y ~ Normal(m, sigma[z])
}
"""
W, MU, SIGMA = np.array([0.2, 0.5, 0.3]), np.array([-1.0, 0.5, 2.0]), np.array([0.5, 1.0, 2.0])


def mixture_joint(y, w=W, mu=MU, sigma=SIGMA):
    """log p(z_n = k) + log p(y_n | z_n = k), [n, K]."""
    return np.log(w) + st.norm(mu, sigma).logpdf(y[:, None])


@pytest.fixture(scope="module")
def mixture():
    return pplc.compile(MIXTURE, "mix.ppl")


def test_the_enumerated_mixture_is_the_hand_marginalised_density(mixture):
    assert "z" not in mixture.latents and mixture.ir.var("z").kind == "transformed"
    y = RNG.normal(0, 3, 7)
    params = {"w": W, "mu": MU, "sigma": SIGMA}
    want = (st.dirichlet([2, 2, 2]).logpdf(W) + st.norm(0, 5).logpdf(MU).sum()
            + st.halfnorm(scale=2).logpdf(SIGMA).sum() + logsumexp(mixture_joint(y), axis=1).sum())
    with jax.enable_x64(True):
        for devices in (1, 2):  # 7 items over 2 devices: one padded
            assert mixture.log_prob(params, {"y": y}, devices=devices) == pytest.approx(want, rel=1e-10)
        out = derived(mixture, params, {"y": y})
    joint = mixture_joint(y)  # Bayes' rule: p(z_n = k | y_n) = w_k N(y_n | k) / sum_j w_j N(y_n | j)
    np.testing.assert_allclose(out["z_probs"], np.exp(joint - logsumexp(joint, axis=1, keepdims=True)), rtol=1e-10)
    assert mixture.ir.var("z_probs").phys == ("n", "z")


def test_target_terms_that_use_the_latent_are_summed_out_with_it(mixture):
    """`target += ...` given z joins z's marginal: the same density as `y ~ ...` given z."""
    text = MIXTURE.replace("y ~ Normal(m, sigma[z])", "target += Normal(m, sigma[z]).log_prob(y)")
    model = pplc.compile(text, "mix_target.ppl")
    y = RNG.normal(0, 3, 5)
    params = {"w": W, "mu": MU, "sigma": SIGMA}
    with jax.enable_x64(True):
        assert model.log_prob(params, {"y": y}) == pytest.approx(mixture.log_prob(params, {"y": y}), rel=1e-12)


@pytest.mark.parametrize("devices", [2, 4, pytest.param(8, marks=pytest.mark.slow)])
def test_a_plate_of_13_enumerated_items_sharded_over_devices_equals_the_unsharded_model(mixture, devices):
    y = RNG.normal(0, 2, 13)
    params = {"w": np.array([0.3, 0.3, 0.4], np.float32), "mu": np.array([-1.5, 0.2, 1.0], np.float32),
              "sigma": np.array([0.8, 1.1, 0.6], np.float32)}
    want = mixture.log_prob(params, {"y": y})
    assert mixture.log_prob(params, {"y": y}, devices=devices) == pytest.approx(want, rel=1e-5)
    grad, want_grad = mixture.grad_log_prob(params, {"y": y}, devices=devices), mixture.grad_log_prob(params, {"y": y})
    for k in params:
        np.testing.assert_allclose(grad[k], want_grad[k], rtol=1e-5, atol=1e-6 * np.abs(want_grad[k]).max())


# ----------------------------------------------------------------------------- a Bernoulli latent (occupancy)
OCCUPANCY = """data y: int[sites, visits]
psi ~ Beta(2, 2)
p ~ Beta(2, 2)
plate sites sharded over devices {
  present ~ Bernoulli(probs = psi)
  y ~ Bernoulli(probs = where(present == 1, p, 0))
}
"""


def test_a_bernoulli_latent_is_summed_out_as_by_hand():
    """A site-occupancy model (capture-recapture's alive/dead state): a site never seen may be empty."""
    model = pplc.compile(OCCUPANCY, "occupancy.ppl")
    y = (RNG.uniform(size=(9, 4)) < 0.3).astype(int)
    y[:3] = 0
    psi, p = 0.6, 0.35
    seen = y.sum(axis=1)
    present = np.log(psi) + st.binom(1, p).logpmf(y).sum(axis=1)  # log p(present) + log p(y | present)
    absent = np.where(seen == 0, np.log1p(-psi), -np.inf)
    want = st.beta(2, 2).logpdf(psi) + st.beta(2, 2).logpdf(p) + np.logaddexp(present, absent).sum()
    with jax.enable_x64(True):
        assert model.log_prob({"psi": psi, "p": p}, {"y": y}) == pytest.approx(want, rel=1e-8)
        grad = model.grad_log_prob({"psi": psi, "p": p}, {"y": y}, devices=2)
        out = derived(model, {"psi": np.asarray(psi), "p": np.asarray(p)}, {"y": y})
    assert all(np.isfinite(g) for g in grad.values())
    # p(present | y) by Bayes' rule: 1 where the site was seen, psi (1-p)^V / (psi (1-p)^V + 1 - psi) where not
    want_present = np.where(seen > 0, 1.0, psi * (1 - p) ** 4 / (psi * (1 - p) ** 4 + 1 - psi))
    # (TFP's Bernoulli(probs=...) log_prob is accurate to ~1e-8 only, under x64 too)
    np.testing.assert_allclose(out["present_probs"][:, 1], want_present, rtol=1e-6)


# ----------------------------------------------------------------------------- what pplc does not sum out
BASE = "data y: real[n]\ndata g: int[n]\nmu: real[2] ~ Normal(0, 1)\ntheta ~ Beta(1, 1)\n"


@pytest.mark.parametrize("text, where, message", [
    ("z ~ Bernoulli(probs = theta)\n", "5:5", "outside plates"),
    ("plate n {\n  z ~ Bernoulli(probs = theta)\n  u ~ Bernoulli(probs = theta)\n}\n", "7:3",
     "second discrete latent in one item of plate `n`"),
    ("plate n {\n  z ~ Bernoulli(probs = theta)\n  u ~ Bernoulli(probs = where(z == 1, 0.5, theta))\n}\n", "7:7",
     "second discrete latent in one plate item"),
    ("plate n {\n  z ~ Bernoulli(probs = theta)\n  x ~ Normal(mu[z], 1)\n  y ~ Normal(x, 1)\n}\n", "7:3",
     "`x` is a continuous latent that depends on the discrete latent `z`"),
    ("plate n {\n  z ~ Bernoulli(probs = theta)\n  y ~ Normal(mu[z], 1)\n}\ntrack t = z\n", "9:1",
     "summed out per item of plate `n`"),
    ("data x: real[n, k]\nplate n {\n  z ~ Bernoulli(probs = theta)\n  plate k {\n    x ~ Normal(mu[z], 1)\n"
     "  }\n}\n", "9:5", "nested in the plate `n`"),
    ("plate n {\n  z ~ Poisson(3)\n}\n", "6:7", "its values are unbounded"),
    ("plate n {\n  z ~ Bernoulli(probs = rep(theta, 2))\n}\n", "6:7", "one discrete value per item"),
    ("plate n {\n  z ~ Bernoulli(probs = theta)\n}\nz_probs ~ Normal(0, 1)\n", "6:3", "`z_probs` is taken"),
])
def test_unsupported_structures_are_located_errors(text, where, message):
    with pytest.raises(PPLError) as e:
        pplc.compile(BASE + text, "m.ppl")
    rendered = e.value.render()
    assert f"m.ppl:{where}: error:" in rendered and message in rendered, rendered
