"""Stan's blocks in pplc's form (issue 10): transformed data (computed once, observed, used as an index), bounds on
declared types, latents declared without a prior, `target +=`, and a distribution's log density functions, each
against SciPy's closed forms, on one device and on a padded sharded mesh."""

import numpy as np
import pytest
import scipy.stats as st

import pplc
from pplc.dsl.diagnostics import PPLError

RNG = np.random.default_rng(7)
N = 7  # 7 items over 2 or 3 devices: padded
EARN = np.exp(RNG.normal(1, 0.5, N))
HEIGHT = RNG.normal(66, 3, N)

LOGEARN = """data N: int
data earn: real[N]
data height: real[N]
beta: real[2] ~ Normal(0, 10)
sigma ~ HalfNormal(5)
log_earn = log(earn)
height_mean = mean(height)
plate N sharded over devices {
  z = height - height_mean
  log_earn ~ Normal(beta[0] + beta[1] * z, sigma)
}
"""


def test_observed_transformed_data_has_the_closed_form_density_on_any_mesh():
    model = pplc.compile(LOGEARN, "logearn.ppl")
    params = {"beta": np.array([0.3, 0.1]), "sigma": 1.3}
    data = {"N": N, "earn": EARN, "height": HEIGHT}
    want = (st.norm(0, 10).logpdf(params["beta"]).sum() + st.halfnorm(scale=5).logpdf(1.3)
            + st.norm(0.3 + 0.1 * (HEIGHT - HEIGHT.mean()), 1.3).logpdf(np.log(EARN)).sum())
    for devices in (1, 2, 3):
        assert model.log_prob(params, data, devices=devices) == pytest.approx(want, rel=1e-5)


def test_transformed_data_is_computed_once_by_transformed_data_and_read_by_the_model():
    src = pplc.compile(LOGEARN, "logearn.ppl").source
    make_model = src[src.index("def make_model"):src.index("def observed")]
    transformed = src[src.index("def transformed_data"):src.index("def make_model")]
    assert "jnp.log(earn)" in transformed and "jnp.log" not in make_model
    assert 'z = data["z"]' in make_model and 'return {"log_earn": data["log_earn"]}' in src


def test_a_transformed_integer_index_converts_stan_indices():
    text = ("data y: real[n]\ndata group: int[n]\ndata groups: int\ngroup0 = group - 1\n"
            "plate groups {\n  a ~ Normal(0, 1)\n}\nplate n sharded over devices {\n  y ~ Normal(a[group0], 1)\n}\n")
    model = pplc.compile(text, "g.ppl")
    group = np.array([1, 3, 2, 3, 1, 1, 2])  # 1-based, as Stan's data
    y = RNG.normal(size=7)
    a = np.array([0.5, -1.0, 2.0])
    want = st.norm(0, 1).logpdf(a).sum() + st.norm(a[group - 1], 1).logpdf(y).sum()
    for devices in (1, 2):
        got = model.log_prob({"a": a}, {"y": y, "group": group, "groups": 3}, devices=devices)
        assert got == pytest.approx(want, rel=1e-5)


def test_observed_transformed_values_are_checked_against_the_support():
    model = pplc.compile("data k: int[n]\nk0 = k - 1\nrate ~ Gamma(2, 1)\nk0 ~ Poisson(rate)\n", "p.ppl")
    with pytest.raises(PPLError) as e:
        model.log_prob({"rate": 1.0}, {"k": np.array([1, 0, 2])})
    assert "`k0` has a value outside the support of Poisson" in e.value.render()


def test_prior_draws_without_the_observed_data_and_a_located_error_for_what_needs_it():
    model = pplc.compile(LOGEARN, "logearn.ppl")
    draw = model.sample_prior({"N": N, "height": HEIGHT}, seed=1)
    assert draw["log_earn"].shape == (N,) and np.all(np.isfinite(draw["log_earn"]))
    needs_y = pplc.compile("data n: int\ndata y: real[n]\nybar = mean(y)\nmu ~ Normal(ybar, 1)\ny ~ Normal(mu, 1)\n",
                           "m.ppl")
    with pytest.raises(PPLError) as e:
        needs_y.sample_prior({"n": 3}, seed=0)
    assert "`ybar` (at m.ppl:3:1) is computed from data `y`, which the data does not have" in e.value.render()


BOUNDS = """data y: real[n]
mu ~ Normal(0, 5)
sigma: real<lower=0> ~ Normal(1, 2)
p: real<lower=0.1, upper=0.9>
nu: real<upper=3>[2] ~ Cauchy(0, 1)
scale: real<lower=mu> ~ Exponential(1)
plate n sharded over devices {
  y ~ Normal(mu, sigma * scale)
}
"""


def test_bounds_truncate_the_prior_as_stan_does():
    model = pplc.compile(BOUNDS, "bounds.ppl")
    y = RNG.normal(size=5)
    params = {"mu": 0.4, "sigma": 1.7, "p": 0.3, "nu": np.array([0.2, -1.0]), "scale": 1.1}
    want = (st.norm(0, 5).logpdf(0.4) + st.norm(1, 2).logpdf(1.7) - st.norm(1, 2).logsf(0)
            + st.cauchy().logpdf(params["nu"]).sum() - 2 * st.cauchy().logcdf(3)
            + st.expon().logpdf(1.1) - st.expon().logsf(0.4)  # a bound that is a latent: normalised too
            + st.norm(0.4, 1.7 * 1.1).logpdf(y).sum())
    for devices in (1, 2):
        assert model.log_prob(params, {"y": y}, devices=devices) == pytest.approx(want, rel=1e-5)


def test_bounded_latents_map_to_their_bounds_with_stans_transforms():
    """The unconstrained scale is Stan's: sigma = exp(z), p = 0.1 + 0.8 sigmoid(z), nu = 3 - exp(z),
    scale = mu + exp(z); the log density there adds each transform's log-Jacobian."""
    model = pplc.compile(BOUNDS, "bounds.ppl")
    y = RNG.normal(size=5)
    ld = model.log_density({"y": y})
    z = {"mu": np.float32(0.4), "sigma": np.float32(0.3), "p": np.float32(-0.7),
         "nu": np.array([1.2, -2.0], np.float32), "scale": np.float32(0.5)}
    x = {k: np.asarray(v) for k, v in ld.constrain(z).items()}
    sig = 1 / (1 + np.exp(0.7))
    assert x["sigma"] == pytest.approx(np.exp(0.3), rel=1e-5)
    assert x["p"] == pytest.approx(0.1 + 0.8 * sig, rel=1e-5)
    assert x["nu"] == pytest.approx(3 - np.exp(z["nu"]), rel=1e-5)
    assert x["scale"] == pytest.approx(0.4 + np.exp(0.5), rel=1e-5)
    log_jacobian = 0.3 + np.log(0.8 * sig * (1 - sig)) + z["nu"].sum() + 0.5
    want = model.log_prob(x, {"y": y}) + log_jacobian
    assert float(ld.unconstrained(z)) == pytest.approx(want, rel=1e-5)


def test_data_bounds_are_checked_when_the_data_are_bound():
    model = pplc.compile("data N: int<lower=1>\ndata y: real<lower=0>[N]\nmu ~ Normal(0, 1)\n"
                         "y ~ Normal(mu, 1)\n", "b.ppl")
    with pytest.raises(PPLError) as e:
        model.log_prob({"mu": 0.0}, {"N": 3, "y": np.array([1.0, -2.0, 3.0])})
    assert "`y` has a value outside its declared bounds: -2.0 at index [1]" in e.value.render()


TARGET = """data y: real[n]
data c: real
mu ~ Normal(0, 5)
sigma: real<lower=0>
target += StudentT(3, 0, 10).log_prob(sigma) - StudentT(3, 0, 10).log_survival(0)
target += -0.5 * mu ** 2
plate n sharded over devices {
  target += Normal(mu, sigma).log_prob(y)
  target += 0.1 * mu
}
target += Normal(mu, sigma).log_cdf(c)
"""


def test_target_terms_add_to_the_log_density_per_item_and_across_devices():
    model = pplc.compile(TARGET, "target.ppl")
    y = RNG.normal(size=5)
    params = {"mu": 0.4, "sigma": 1.7}
    want = (st.norm(0, 5).logpdf(0.4) + st.t(3, 0, 10).logpdf(1.7) - st.t(3, 0, 10).logsf(0) - 0.5 * 0.16
            + st.norm(0.4, 1.7).logpdf(y).sum() + 5 * 0.1 * 0.4 + st.norm(0.4, 1.7).logcdf(0.2))
    for devices in (1, 2, 3):
        assert model.log_prob(params, {"y": y, "c": 0.2}, devices=devices) == pytest.approx(want, rel=1e-5)
    grad = model.grad_log_prob(params, {"y": y, "c": 0.2})
    h = 1e-2
    up = model.log_prob({**params, "mu": 0.4 + h}, {"y": y, "c": 0.2})
    down = model.log_prob({**params, "mu": 0.4 - h}, {"y": y, "c": 0.2})
    assert grad["mu"] == pytest.approx((up - down) / (2 * h), rel=2e-2)


@pytest.mark.slow
def test_a_target_only_model_samples_its_density():
    # the standard normal written as a target term: mean 0, sd 1
    model = pplc.compile("x: real\ntarget += -0.5 * x ** 2\n", "t.ppl")
    fit = model.sample(None, chains=4, warmup=300, draws=500, seed=0, progress=False)
    assert abs(fit.draws["x"].mean()) < 0.15 and abs(fit.draws["x"].std() - 1) < 0.15


@pytest.mark.parametrize("text, where, message", [
    ("theta: real<lower=0>[3] ~ Dirichlet(a)\n", "1:8", "bounds apply to scalar distributions"),
    ("sigma: real<low=0> ~ Normal(0, 1)\n", "1:13", "unknown bound `low`"),
    ("p: real<lower=1, upper=0>\n", "1:18", "the bounds are empty"),
    ("x: real\ntarget += exp(1).log_prob(x)\n", "2:18", "is a method of distributions"),
    ("x: real\ntarget += Normal(0, 1).lpdf(x)\n", "2:24", "have no method `lpdf`"),
    ("x: real\ntarget += Poisson(3).log_cdf(x)\n", "2:22", "no `log_cdf` of Poisson"),
    ("data v: real[k]\nx: real[m]\ntarget += Normal(v, 1).log_prob(x)\n", "3:11", "shape mismatch"),
])
def test_block_errors_are_located(text, where, message):
    if "Dirichlet" in text:
        text = "data a: real[3]\n" + text
        where = "2:8"
    with pytest.raises(PPLError) as e:
        pplc.compile(text, "m.ppl")
    rendered = e.value.render()
    assert f"m.ppl:{where}: error:" in rendered and message in rendered, rendered


# ----------------------------------------------------------------------------- slices, matrices, GPs, ordered
SLICES = """data y: real[T]
data X: real[N, K]
data Y: real[N]
mu ~ Normal(0, 1)
rho ~ Normal(0, 1)
b: real[K-1] ~ Normal(0, 1)
Xc = X[:, 1:] - mean(X[:, 1:], N)
y_next = y[1:]
y_next ~ Normal(mu + rho * y[:-1], 1)
Y ~ Normal(mu + Xc @ b, 1)
track first = X[0, 1:]
"""


def test_slices_lag_series_and_drop_columns():
    model = pplc.compile(SLICES, "slices.ppl")
    y, X, Y = RNG.normal(size=6), RNG.normal(size=(5, 4)), RNG.normal(size=5)
    params = {"mu": 0.2, "rho": 0.5, "b": np.array([0.1, -0.2, 0.3])}
    Xc = X[:, 1:] - X[:, 1:].mean(0)
    want = (st.norm().logpdf([0.2, 0.5]).sum() + st.norm().logpdf(params["b"]).sum()
            + st.norm(0.2 + 0.5 * y[:-1], 1).logpdf(y[1:]).sum() + st.norm(0.2 + Xc @ params["b"], 1).logpdf(Y).sum())
    assert model.log_prob(params, {"y": y, "X": X, "Y": Y}) == pytest.approx(want, rel=1e-5)


GP = """data N: int
data x: real[N]
data y: real[N]
data k: int[N]
rho: real<lower=0> ~ Gamma(25, 4)
alpha: real<lower=0> ~ Normal(0, 2)
sigma: real<lower=0> ~ Normal(0, 1)
f_tilde: real[N] ~ Normal(0, 1)
L = cholesky(gp_exp_quad_cov(x, alpha, rho) + diag(rep(1e-10, N)))
k ~ Poisson(log_rate = L @ f_tilde)
y ~ MultivariateNormalTriL(rep(0, N), cholesky(gp_exp_quad_cov(x, alpha, rho) + sigma * eye(N)))
"""


def test_gaussian_process_functions_and_a_multivariate_normal_match_scipy():
    model = pplc.compile(GP, "gp.ppl")
    n = 6
    x, y, k = np.linspace(-2, 2, n), RNG.normal(size=n), RNG.poisson(2, size=n)
    params = {"rho": 1.3, "alpha": 0.8, "sigma": 0.6, "f_tilde": RNG.normal(size=n)}
    cov = 0.8 ** 2 * np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / 1.3 ** 2)
    f = np.linalg.cholesky(cov + 1e-10 * np.eye(n)) @ params["f_tilde"]
    want = (st.gamma(25, scale=1 / 4).logpdf(1.3) + st.norm(0, 2).logpdf(0.8) - st.norm(0, 2).logsf(0)
            + st.norm().logpdf(0.6) - st.norm().logsf(0) + st.norm().logpdf(params["f_tilde"]).sum()
            + st.poisson(np.exp(f)).logpmf(k).sum()
            + st.multivariate_normal(np.zeros(n), cov + 0.6 * np.eye(n)).logpdf(y))
    assert model.log_prob(params, {"N": n, "x": x, "y": y, "k": k}) == pytest.approx(want, rel=1e-4)


MIXTURE = """data y: real[N]
mu: ordered[2] ~ Normal(0, 2)
sigma: real<lower=0>[2] ~ Normal(0, 2)
theta: real<lower=0, upper=1> ~ Beta(5, 5)
plate N sharded over devices {
  target += log_mix(theta, Normal(mu[0], sigma[0]).log_prob(y), Normal(mu[1], sigma[1]).log_prob(y))
}
"""


def test_an_ordered_mixture_with_log_mix_matches_scipy_on_any_mesh():
    model = pplc.compile(MIXTURE, "mix.ppl")
    y = RNG.normal(size=N)
    params = {"mu": np.array([-0.5, 1.0]), "sigma": np.array([0.7, 1.1]), "theta": 0.4}
    want = (st.norm(0, 2).logpdf(params["mu"]).sum() + (st.norm(0, 2).logpdf(params["sigma"])
                                                           - st.norm(0, 2).logsf(0)).sum()
            + st.beta(5, 5).logpdf(0.4) + np.logaddexp(np.log(0.4) + st.norm(-0.5, 0.7).logpdf(y),
                                                       np.log(0.6) + st.norm(1.0, 1.1).logpdf(y)).sum())
    for devices in (1, 2):
        assert model.log_prob(params, {"y": y}, devices=devices) == pytest.approx(want, rel=1e-5)
    ld = model.log_density({"y": y})
    x = ld.constrain({"mu": np.array([0.3, -2.0], np.float32), "sigma": np.zeros(2, np.float32),
                      "theta": np.float32(0)})
    assert np.asarray(x["mu"]) == pytest.approx([0.3, 0.3 + np.exp(-2.0)], rel=1e-5)  # Stan's ordered transform


@pytest.mark.parametrize("text, where, message", [
    ("data y: real[T]\ndata n: int\nz = y[0:n]\n", "3:9", "start and stop must be whole numbers"),
    ("data y: real[T]\nz = y[-2:3]\n", "2:7", "cannot tell the size of this slice"),
    ("data y: real[3]\nz = y[3:]\n", "2:7", "this slice of dim `3` (size 3) is empty"),
    ("data A: real[n, m]\nL = cholesky(A)\n", "2:5", "factors a square matrix"),
    ("data y: real[n]\nmu: ordered ~ Normal(0, 1)\n", "2:5", "needs a dim"),
    ("data y: ordered[n]\n", "1:9", "is a type of latents"),
])
def test_slice_and_matrix_errors_are_located(text, where, message):
    with pytest.raises(PPLError) as e:
        pplc.compile(text, "m.ppl")
    rendered = e.value.render()
    assert f"m.ppl:{where}: error:" in rendered and message in rendered, rendered


BOUNDED_IN_SHARDED_PLATE = """data y: real[S]
mu ~ Normal(0, 1)
plate S sharded over devices {
  rate: real<lower=0> ~ LogNormal(mu, 1)
  y ~ Normal(rate, 1)
}
"""


def test_a_bounded_latent_in_a_sharded_plate_has_the_closed_form_density_and_a_finite_gradient():
    """Regressions: a bounded latent per item of a sharded plate (the Bounded wrapper inside tfed.Sharded, which
    needs a composite tensor), and a bound at the end of the prior's support (lower=0 on a LogNormal: nothing
    to renormalise; the CDF's log at 0 had a nan gradient)."""
    model = pplc.compile(BOUNDED_IN_SHARDED_PLATE, "bounded_plate.ppl")
    y = np.array([0.5, 1.0, 2.0])
    params = {"mu": 0.3, "rate": np.array([0.7, 1.2, 2.5])}
    want = (st.norm().logpdf(0.3) + st.lognorm(1, scale=np.exp(0.3)).logpdf(params["rate"]).sum()
            + st.norm(params["rate"], 1).logpdf(y).sum())
    for devices in (1, 2):  # 3 items on 2 devices: one padded
        assert model.log_prob(params, {"y": y}, devices=devices) == pytest.approx(want, rel=1e-5)
        grads = model.grad_log_prob(params, {"y": y}, devices=devices)
        assert all(np.all(np.isfinite(np.asarray(g))) for g in grads.values())


def test_a_mixture_of_two_families_by_log_mix_is_the_closed_form():
    """Components of different families (Stan's `log_mix` of two lpdfs, docs/language.md): per item, summed
    across devices with a padded sharded plate, equal to SciPy's density in float64."""
    from scipy import stats
    from scipy.special import logsumexp

    model = pplc.compile("data y: real[n]\ntheta ~ Beta(2, 2)\nmu ~ Normal(0, 5)\nsigma ~ HalfNormal(2)\n"
                         "tau ~ HalfNormal(2)\nplate n sharded over devices {\n"
                         "  target += log_mix(theta, Normal(mu, sigma).log_prob(y), StudentT(3, mu, tau).log_prob(y))\n"
                         "}\n", "mix.ppl")
    y = np.array([0.3, -1.2, 4.0, 0.8, 2.2])
    p = {"theta": 0.3, "mu": 0.5, "sigma": 1.3, "tau": 0.7}
    mix = logsumexp([np.log(0.3) + stats.norm.logpdf(y, 0.5, 1.3), np.log(0.7) + stats.t.logpdf(y, 3, 0.5, 0.7)],
                    axis=0)
    ref = (stats.beta.logpdf(0.3, 2, 2) + stats.norm.logpdf(0.5, 0, 5) + stats.halfnorm.logpdf(1.3, scale=2)
           + stats.halfnorm.logpdf(0.7, scale=2) + mix.sum())
    for devices in (1, 2):  # 5 items: padded to 6 on 2 devices
        assert float(model.log_prob(p, {"y": y}, devices=devices)) == pytest.approx(ref, rel=1e-6), devices
