"""Issue 10's distributions (Weibull, Logistic, SkewNormal, HalfStudentT, VonMises, GeneralizedExtremeValue,
BetaBinomial, Multinomial, OrderedLogistic, CholeskyLKJ) and the constrained types `simplex[K]` and
`cholesky_corr[K]`: each log density against SciPy's (or NumPy's) closed form in float64, on one device and on a
padded sharded plate over two; each continuous latent's bijector into its support with the numeric log-Jacobian;
located errors for misuse."""

import jax
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import betaln, expit

import pplc
from pplc.dsl.diagnostics import PPLError

RNG = np.random.default_rng(11)
N = 7  # over 2 devices: padded


def log_prob(model, params, data, devices):
    with jax.enable_x64(True):
        return float(model.log_prob({k: np.asarray(v, np.float64) for k, v in params.items()}, data,
                                    devices=devices))


CONTINUOUS = """data y_wei: real[n]
data y_log: real[n]
data y_skew: real[n]
data y_half: real[n]
data y_vm: real[n]
data y_gev: real[n]
k ~ Gamma(2, 1)
mu ~ Normal(0, 1)
s ~ HalfNormal(2)
alpha ~ Normal(0, 3)
nu ~ Gamma(3, 1)
kappa ~ Exponential(1)
xi ~ Normal(0, 0.2)
plate n sharded over devices {
  y_wei ~ Weibull(k, s)
  y_log ~ Logistic(mu, s)
  y_skew ~ SkewNormal(mu, s, alpha)
  y_half ~ HalfStudentT(nu, 0, s)
  y_vm ~ VonMises(mu, kappa)
  y_gev ~ GeneralizedExtremeValue(mu, s, xi)
}
"""


def test_continuous_distributions_match_scipy_on_any_mesh():
    model = pplc.compile(CONTINUOUS, "continuous.ppl")
    p = {"k": 1.7, "mu": 0.4, "s": 1.3, "alpha": -2.5, "nu": 3.5, "kappa": 2.2, "xi": 0.15}
    data = {"y_wei": RNG.weibull(1.7, N) * 1.3, "y_log": RNG.logistic(0.4, 1.3, N), "y_skew": RNG.normal(0, 2, N),
            "y_half": np.abs(RNG.standard_t(3.5, N)) * 1.3, "y_vm": RNG.vonmises(0.4, 2.2, N),
            "y_gev": RNG.gumbel(0.4, 1.3, N)}
    want = (st.gamma(2).logpdf(1.7) + st.norm().logpdf(0.4) + st.halfnorm(scale=2).logpdf(1.3)
            + st.norm(0, 3).logpdf(-2.5) + st.gamma(3).logpdf(3.5) + st.expon().logpdf(2.2)
            + st.norm(0, 0.2).logpdf(0.15)
            + st.weibull_min(1.7, scale=1.3).logpdf(data["y_wei"]).sum()
            + st.logistic(0.4, 1.3).logpdf(data["y_log"]).sum()
            + st.skewnorm(-2.5, 0.4, 1.3).logpdf(data["y_skew"]).sum()
            + (np.log(2) + st.t(3.5, 0, 1.3).logpdf(data["y_half"])).sum()  # HalfStudentT: twice t on [loc, inf)
            + st.vonmises(2.2, loc=0.4).logpdf(data["y_vm"]).sum()
            + st.genextreme(-0.15, 0.4, 1.3).logpdf(data["y_gev"]).sum())  # SciPy's shape c is -xi
    for devices in (1, 2):
        assert log_prob(model, p, data, devices) == pytest.approx(want, rel=1e-9)


DISCRETE = """data trials: int[n]
data successes: int[n]
data counts: int[n, K]
data rating: int[n]
data x: real[n]
data R: int
a ~ Gamma(2, 1)
b ~ Gamma(2, 1)
theta: simplex[K] ~ Dirichlet(rep(2, K))
beta ~ Normal(0, 1)
c: ordered[R-1] ~ Normal(0, 5)
plate n sharded over devices {
  successes ~ BetaBinomial(trials, a, b)
  counts ~ Multinomial(sum(counts), probs = theta)
  rating ~ OrderedLogistic(c, beta * x)
}
"""


def test_discrete_distributions_match_scipy_on_any_mesh():
    model = pplc.compile(DISCRETE, "discrete.ppl")
    K, R = 3, 4
    theta, c = np.array([0.2, 0.5, 0.3]), np.array([-1.0, 0.2, 1.5])
    trials = RNG.integers(1, 9, N)
    counts = np.stack([RNG.multinomial(t, theta) for t in RNG.integers(1, 6, N)])
    x = RNG.normal(size=N)
    data = {"trials": trials, "successes": RNG.binomial(trials, 0.4), "counts": counts,
            "rating": RNG.integers(0, R, N), "x": x, "R": R}
    p = {"a": 1.5, "b": 2.5, "theta": theta, "beta": 0.7, "c": c}
    # OrderedLogistic (outcomes 0..R-1): P(y > k) = sigmoid(eta - c[k]), so P(y = k) = P(y > k-1) - P(y > k)
    above = np.concatenate([np.ones((N, 1)), expit(0.7 * x[:, None] - c[None, :]), np.zeros((N, 1))], axis=1)
    p_rating = above[np.arange(N), data["rating"]] - above[np.arange(N), data["rating"] + 1]
    want = (st.gamma(2).logpdf([1.5, 2.5]).sum() + st.dirichlet([2, 2, 2]).logpdf(theta)
            + st.norm().logpdf(0.7) + st.norm(0, 5).logpdf(c).sum()
            + st.betabinom(trials, 1.5, 2.5).logpmf(data["successes"]).sum()
            + sum(st.multinomial(row.sum(), theta).logpmf(row) for row in counts)
            + np.log(p_rating).sum())
    assert K == counts.shape[1]
    for devices in (1, 2):
        assert log_prob(model, p, data, devices) == pytest.approx(want, rel=1e-9)


LKJ = """data y: real[n, K]
mu: real[K] ~ Normal(0, 5)
tau: real[K] ~ HalfNormal(2)
const eta = 2.5
L: cholesky_corr[K] ~ CholeskyLKJ(eta)
plate n sharded over devices {
  y ~ MultivariateNormalTriL(mu, diag(tau) @ L)
}
"""


def lkj_cholesky_logpdf(L, eta):
    """The LKJ density of a correlation matrix's Cholesky factor (Stan's lkj_corr_cholesky): the normalising
    constant of Lewandowski, Kurowicka and Joe (2009), eq. 16, and sum_k (K - k - 1 + 2 eta - 2) log L_kk
    (k from 0)."""
    K = L.shape[-1]
    log_c = sum((2 * eta - 2 + K - k) * (K - k) * np.log(2) + (K - k) * betaln(eta + (K - k - 1) / 2,
                                                                                eta + (K - k - 1) / 2)
                for k in range(1, K))
    return -log_c + sum((K - k - 1 + 2 * eta - 2) * np.log(L[k, k]) for k in range(K))


def test_lkj_density_with_a_multivariate_normal_in_a_sharded_plate():
    model = pplc.compile(LKJ, "lkj.ppl")
    K = 3
    corr = np.array([[1.0, 0.4, -0.2], [0.4, 1.0, 0.3], [-0.2, 0.3, 1.0]])
    L = np.linalg.cholesky(corr)
    p = {"mu": np.array([0.1, -0.3, 0.5]), "tau": np.array([0.8, 1.4, 0.6]), "L": L}
    cov = np.diag(p["tau"]) @ corr @ np.diag(p["tau"])
    y = RNG.multivariate_normal(p["mu"], cov, N)
    want = (st.norm(0, 5).logpdf(p["mu"]).sum() + st.halfnorm(scale=2).logpdf(p["tau"]).sum()
            + lkj_cholesky_logpdf(L, 2.5) + st.multivariate_normal(p["mu"], cov).logpdf(y).sum())
    assert y.shape == (N, K)
    for devices in (1, 2):
        assert log_prob(model, p, {"y": y}, devices) == pytest.approx(want, rel=1e-9)
    # the gradient too: the multivariate site is split over the items of the padded plate, L replicated
    with jax.enable_x64(True):
        grads = [model.grad_log_prob(p, {"y": y}, devices=d) for d in (1, 2)]
    for name in p:
        assert np.asarray(grads[1][name]) == pytest.approx(np.asarray(grads[0][name]), rel=1e-9, abs=1e-12)


LATENTS = """w ~ Weibull(2, 1)
lo ~ Logistic(0, 1)
sk ~ SkewNormal(0, 1, 2)
h ~ HalfStudentT(3, 0, 1)
v ~ VonMises(0.5, 1)
g ~ GeneralizedExtremeValue(0, 1, 0.3)
theta: simplex[3]
L: cholesky_corr[3] ~ CholeskyLKJ(1.5)
"""
IN_SUPPORT = {"w": lambda x: x > 0, "h": lambda x: x > 0, "v": lambda x: -np.pi <= x <= np.pi,
              "g": lambda x: 1 + 0.3 * x > 0, "lo": np.isfinite, "sk": np.isfinite,
              "theta": lambda x: np.all(x > 0) and abs(x.sum() - 1) < 1e-12,
              "L": lambda x: (np.allclose(np.triu(x, 1), 0) and np.allclose((x * x).sum(-1), 1)
                              and np.all(np.diag(x) > 0))}


def free(name, x):
    """The coordinates a latent's density is over: a simplex's first K-1, a Cholesky factor's below-diagonal
    (Stan's and TFP's measures)."""
    if name == "theta":
        return x[..., :-1]
    if name == "L":
        return x[..., np.tril_indices(3, -1)[0], np.tril_indices(3, -1)[1]]
    return x


def test_each_continuous_latent_maps_into_its_support_with_the_numeric_log_jacobian():
    model = pplc.compile(LATENTS, "latents.ppl")
    with jax.enable_x64(True):
        ld = model.log_density({})
        z0 = {k: np.asarray(v, np.float64) for k, v in ld.init(0).items()}
        assert z0["L"].shape == (1, 3) and z0["theta"].shape == (2,)  # K (K - 1) / 2 and K - 1 numbers

        @jax.jit  # (TFP's bijectors of a joint distribution, built eagerly, take a minute)
        def constrain_and_jacobians(z):
            jac = jax.jacfwd(lambda u: {n: free(n, x_n) for n, x_n in ld.constrain(u).items()})(z)
            return ld.constrain(z), {n: jac[n][n] for n in z}  # each latent's own block (literal parameters)

        unconstrain = jax.jit(ld.unconstrain)
        for z in (z0, {k: 1 - 1.5 * v for k, v in z0.items()}):
            x, jac = constrain_and_jacobians(z)
            x = {k: np.asarray(v) for k, v in x.items()}
            for name, ok in IN_SUPPORT.items():
                assert ok(x[name]), (name, x[name])
            log_jacobian = sum(np.linalg.slogdet(np.asarray(j).reshape(z[n].size, z[n].size))[1]
                               for n, j in jac.items())
            # TFP measures the simplex by its area in R^K: sqrt(K) times the volume of its first K-1 coordinates
            log_jacobian += 0.5 * np.log(3)
            want = float(model.log_prob(x, {})) + log_jacobian
            assert float(ld.value_and_grad(z)[0]) == pytest.approx(want, rel=1e-9)
            back = unconstrain(x)
            assert all(np.allclose(back[k], z[k]) for k in z)


def test_a_flat_simplex_is_uniform_and_skew_normal_draws_follow_its_cdf():
    flat = pplc.compile("theta: simplex[4]\n", "flat.ppl")
    a, b = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.7, 0.1, 0.1, 0.1])
    assert log_prob(flat, {"theta": a}, {}, 1) == pytest.approx(log_prob(flat, {"theta": b}, {}, 1), rel=1e-12)
    from pplc.compiler.codegen.prelude_dists import SkewNormal

    with jax.enable_x64(True):
        d = SkewNormal(np.float64(0.4), 1.3, -2.5)
        draws = np.asarray(jax.jit(lambda k: d.sample(4000, seed=k))(jax.random.PRNGKey(0)))
        assert float(d.mean()) == pytest.approx(st.skewnorm(-2.5, 0.4, 1.3).mean(), rel=1e-12)
        # (through TFP's Owen's T, good to about 1e-7 in the tails)
        assert np.asarray(d.log_cdf(draws[:50])) == pytest.approx(st.skewnorm(-2.5, 0.4, 1.3).logcdf(draws[:50]),
                                                                  rel=1e-5)
    assert st.kstest(draws, st.skewnorm(-2.5, 0.4, 1.3).cdf).pvalue > 1e-3


def test_the_cheaper_bernoulli_logits_equals_tfps_over_extreme_logits():
    """The log density pplc emits for observed `Bernoulli(logits = ...)` (prelude.BernoulliLogits: one exp and one
    log1p per item) equals TFP's Bernoulli and SciPy's in float64 to 1e-6 relative from logits -1e4 to 1e4, and its
    gradient is y - sigmoid(logits)."""
    import tensorflow_probability.substrates.jax as tfp

    from pplc.compiler.codegen.prelude import BernoulliLogits

    logits = np.concatenate([-np.logspace(-8, 4, 60), [0.0], np.logspace(-8, 4, 60)])
    with jax.enable_x64(True):
        for y in (0, 1):
            ys, x = np.full(logits.shape, y), jax.numpy.asarray(logits)  # (a NumPy array would be taken as float32)
            ours = np.asarray(BernoulliLogits(logits=x).log_prob(ys))
            tfps = np.asarray(tfp.distributions.Bernoulli(logits=x).log_prob(ys))
            np.testing.assert_allclose(ours, tfps, rtol=1e-6, atol=1e-300)
            scipy = np.where(y == 1, -np.logaddexp(0, -logits), -np.logaddexp(0, logits))  # log expit, log(1 - expit)
            np.testing.assert_allclose(ours, scipy, rtol=1e-12, atol=1e-300)
            grad = np.asarray(jax.grad(lambda v: BernoulliLogits(logits=v).log_prob(ys).sum())(x))
            exact = expit(-logits) if y == 1 else -expit(logits)  # y - sigmoid(logits), without cancelling
            np.testing.assert_allclose(grad, exact, rtol=1e-12, atol=1e-300)


def test_observed_values_outside_the_new_supports_are_refused():
    model = pplc.compile(DISCRETE, "discrete.ppl")
    data = {"trials": np.array([3, 4]), "successes": np.array([1, 5]), "counts": np.array([[1, 2, 0], [0, 0, 1]]),
            "rating": np.array([0, 4]), "x": np.zeros(2), "R": 4}
    p = {"a": 1.0, "b": 1.0, "theta": np.ones(3) / 3, "beta": 0.0, "c": np.array([-1.0, 0.0, 1.0])}
    with pytest.raises(PPLError) as e:
        model.log_prob(p, data)
    text = e.value.render()
    assert "`rating` has a value outside the support of OrderedLogistic (0 to 3, as dim `R-1` of the cutpoints" \
        in text, text


def test_support_checks_of_count_vectors_and_cholesky_factors():
    from pplc.compiler.supports import Support, SupportCheck, outside

    bad, words = outside(SupportCheck(Support.COUNT_VECTOR, high=3.0),
                         np.array([[1, 2, 0], [2, 2, 0], [-1, 4, 0]]), {})
    assert bad.any(axis=-1).tolist() == [False, True, True] and "summing to total_count = 3" in words
    L = np.linalg.cholesky(np.array([[1.0, 0.5], [0.5, 1.0]]))
    bad, _ = outside(SupportCheck(Support.CHOLESKY_CORR), np.stack([L, 2 * L, L.T]), {})
    assert bad.shape == (3, 2, 2) and bad.any(axis=(-2, -1)).tolist() == [False, True, True]


@pytest.mark.parametrize("text, where, message", [
    ("L ~ CholeskyLKJ(2)\n", "1:5", "declare it: `L: cholesky_corr[K] ~ CholeskyLKJ(...)`"),
    ("data y: real[3]\ntheta: simplex[K] ~ Normal(0, 1)\n", "2:21", "a `simplex` latent is drawn from Dirichlet"),
    ("S: cov_matrix[3] ~ Normal(0, 1)\n", "1:4", "`cov_matrix` is not a type of pplc"),
    ("L: cholesky_corr[3]\n", "1:4", "a `cholesky_corr` latent needs a prior"),
    ("L: real[3, 2] ~ CholeskyLKJ(2)\n", "1:4", "declare `L: cholesky_corr[K]`"),
    ("data x: real[n]\ny ~ OrderedLogistic(1.0, x)\n", "2:21", "cutpoints needs a last dim over the event"),
    ("data y: real[3]\nz = CholeskyLKJ(2).log_prob(y)\n", "2:5", "no `log_prob` of CholeskyLKJ"),
    ("x ~ Weibull(-1, 2)\n", "1:13", "Weibull concentration must be > 0, but it is -1"),
    ("const eta = 0\nL: cholesky_corr[3] ~ CholeskyLKJ(eta)\n", "2:35", "CholeskyLKJ concentration must be > 0"),
])
def test_misuse_is_a_located_error(text, where, message):
    with pytest.raises(PPLError) as e:
        pplc.compile(text, "m.ppl")
    rendered = e.value.render()
    assert f"m.ppl:{where}: error:" in rendered and message in rendered, rendered
