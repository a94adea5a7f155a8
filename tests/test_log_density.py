"""`Model.log_density`: the public log density on the unconstrained scale (with the log-Jacobian), checked against
SciPy's closed forms; under jit, grad and vmap; sharded equal to unsharded; compiled once; sampled by BlackJAX's
NUTS to a closed-form posterior. And the persistent compilation cache: same draws from a warm cache, right values
for a changed data shape."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import pplc

SRC = """
data y: real[n]
mu ~ Normal(0, 5)
sigma ~ HalfNormal(2)
plate n sharded over devices {
  s ~ HalfNormal(1)
  y ~ Normal(mu + s, sigma)
}
"""
Y = np.array([0.3, -1.2, 2.0, 0.7, 1.1])
Z = {"mu": 0.4, "sigma": -0.3, "s": np.array([0.1, -0.5, 0.2, 0.3, -1.0])}


@pytest.fixture(scope="module")
def model():
    return pplc.compile(SRC, "ld.ppl")


def softplus(x):
    return np.logaddexp(0.0, x)


def closed_form(z, y=Y):
    """log p(y, mu, sigma, s) at the constrained values + log|d softplus/dz| (TFP's HalfNormal bijector), float64."""
    mu, sigma, s = z["mu"], softplus(z["sigma"]), softplus(np.asarray(z["s"]))
    log_jac = -softplus(-z["sigma"]) - np.sum(softplus(-np.asarray(z["s"])))  # log sigmoid(z)
    return (stats.norm(0, 5).logpdf(mu) + stats.halfnorm(scale=2).logpdf(sigma) + stats.halfnorm.logpdf(s).sum()
            + stats.norm(mu + s, sigma).logpdf(y).sum() + log_jac)


def as_jax(z):
    return {k: jnp.asarray(v) for k, v in z.items()}


def numeric_grad(f, z, eps=1e-6):
    out = {}
    for k, v in z.items():
        v = np.asarray(v, np.float64)
        g = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            up, down = v.copy(), v.copy()
            up[i] += eps
            down[i] -= eps
            g[i] = (f(dict(z, **{k: up})) - f(dict(z, **{k: down}))) / (2 * eps)
        out[k] = g
    return out


@pytest.mark.parametrize("devices", [1, 3])
def test_unconstrained_equals_closed_form(model, devices):
    """Value and gradient (float64) equal SciPy's log density plus the softplus bijector's log-Jacobian, on one
    device and split over 3 (5 items: one padded), under jit and grad."""
    with jax.enable_x64(True):
        ld = model.log_density({"y": Y}, devices=devices)
        z = as_jax(Z)
        assert float(ld.unconstrained(z)) == pytest.approx(closed_form(Z), rel=1e-12)
        val, grad = jax.jit(jax.value_and_grad(ld.unconstrained))(z)
        assert float(val) == pytest.approx(closed_form(Z), rel=1e-12)
        expected = numeric_grad(closed_form, Z)
        for k in Z:
            np.testing.assert_allclose(np.asarray(grad[k]), expected[k], rtol=1e-6, atol=1e-7)
        val2, grad2 = ld.value_and_grad(z)
        assert float(val2) == pytest.approx(float(val), rel=1e-12)
        for k in Z:
            np.testing.assert_allclose(np.asarray(grad2[k]), np.asarray(grad[k]), rtol=1e-12)


@pytest.mark.parametrize("n", [5, 9000])
def test_value_and_grad_uses_the_data_it_was_given_small_or_large(n):
    """`value_and_grad` on one device holds small data as constants of its program and passes larger data
    (over SMALL_DATA_BYTES) as arguments: either way, a second log density of other data of the same shapes gives
    that data's closed form, and extra entries of z are ignored."""
    from pplc.runtime.density import SMALL_DATA_BYTES

    m = pplc.compile(SRC, "ld.ppl")
    rng = np.random.default_rng(n)
    z = {"mu": 0.4, "sigma": -0.3, "s": rng.normal(size=n)}
    with jax.enable_x64(True):
        for shift in (0.0, 1.5):
            y = rng.normal(size=n) + shift
            assert (y.nbytes > SMALL_DATA_BYTES) == (n > 5)
            val, grad = m.log_density({"y": y}).value_and_grad(dict(as_jax(z), extra=jnp.ones(3)))
            assert set(grad) == {"mu", "sigma", "s"}
            assert float(val) == pytest.approx(closed_form(z, y), rel=1e-12)
            fd = (closed_form(dict(z, mu=0.4 + 1e-6), y) - closed_form(dict(z, mu=0.4 - 1e-6), y)) / 2e-6
            assert float(grad["mu"]) == pytest.approx(fd, rel=1e-5)


@pytest.mark.parametrize("devices", [1, 3])
def test_vmap_constrain_unconstrain_init(model, devices):
    ld = model.log_density({"y": Y}, devices=devices)
    zs = {k: jnp.stack([jnp.asarray(v, jnp.float32), jnp.asarray(v, jnp.float32) + 0.5]) for k, v in Z.items()}
    vals = jax.vmap(ld.unconstrained)(zs)
    for i in range(2):
        assert float(vals[i]) == pytest.approx(closed_form({k: np.asarray(v[i], np.float64) for k, v in zs.items()}),
                                               rel=1e-5)
    params = ld.constrain(as_jax(Z))
    np.testing.assert_allclose(np.asarray(params["s"]), softplus(Z["s"]), rtol=1e-6)
    back = ld.unconstrain(params)
    for k in Z:
        np.testing.assert_allclose(np.asarray(back[k]), Z[k], rtol=1e-5, atol=1e-6)
    # the constrained log density (no Jacobian) is Model.log_prob
    lp = model.log_prob({k: np.asarray(v) for k, v in params.items()}, {"y": Y}, devices=devices)
    jac = -softplus(-Z["sigma"]) - np.sum(softplus(-Z["s"]))
    assert lp == pytest.approx(closed_form(Z) - jac, rel=1e-5)
    init = ld.init(seed=2)
    assert {k: np.shape(v) for k, v in init.items()} == {"mu": (), "sigma": (), "s": (5,)}
    assert all(np.all(np.abs(np.asarray(v)) < 2) for v in init.values())
    assert np.isfinite(float(ld.unconstrained(init)))


def test_grad_log_prob_compiles_once(model):
    """A second `grad_log_prob` (other values, other data of the same shapes) does not trace the model again."""
    traces = []
    make_model = model.module.make_model

    def counting(*args, **kwargs):
        traces.append(1)
        return make_model(*args, **kwargs)

    model.module.make_model = counting
    try:
        params = {"mu": 0.1, "sigma": 1.2, "s": np.full(5, 0.5)}
        g1 = model.grad_log_prob(params, {"y": Y})
        model.log_prob(params, {"y": Y})
        n = len(traces)
        assert n > 0
        g2 = model.grad_log_prob(dict(params, mu=0.7), {"y": Y + 1.0})
        model.log_prob(dict(params, mu=0.7), {"y": Y + 1.0})
        assert len(traces) == n, "grad_log_prob traced the model again for data of the same shapes"
        assert float(g1["mu"]) != float(g2["mu"])  # the new values and data were used
        # mu's gradient by hand: -mu/25 + sum(y - mu - s)/sigma^2
        expect = -0.7 / 25 + np.sum(Y + 1.0 - 0.7 - 0.5) / 1.2**2
        assert float(g2["mu"]) == pytest.approx(expect, rel=1e-5)
        model.grad_log_prob(dict(params, s=np.full(6, 0.5)), {"y": np.append(Y, 0.0)})  # a new shape: traced anew
        assert len(traces) > n
    finally:
        model.module.make_model = make_model


def test_blackjax_nuts_samples_the_closed_form_posterior():
    """BlackJAX's NUTS through `log_density(...).unconstrained` gets the conjugate posteriors: mu | y normal,
    tau | x gamma (a positive latent: the Jacobian must be right for the draws to be)."""
    blackjax = pytest.importorskip("blackjax")
    m = pplc.compile("""
data y: real[n]
data x: real[k]
mu ~ Normal(0, 2)
tau ~ Gamma(3, 2)
plate n {
  y ~ Normal(mu, 1)
}
plate k {
  x ~ Normal(0, 1 / sqrt(tau))
}
""", "conjugate.ppl")
    rng = np.random.default_rng(0)
    y, x = rng.normal(1.5, 1.0, 20), rng.normal(0.0, 0.7, 15)
    ld = m.log_density({"y": y, "x": x})
    adapt = blackjax.window_adaptation(blackjax.nuts, ld.unconstrained)
    (state, params), _ = adapt.run(jax.random.PRNGKey(1), ld.init(0), num_steps=200)
    kernel = jax.jit(blackjax.nuts(ld.unconstrained, **params).step)

    def step(state, key):
        state, _ = kernel(key, state)
        return state, state.position

    _, draws = jax.lax.scan(step, state, jax.random.split(jax.random.PRNGKey(2), 1000))
    constrained = jax.vmap(ld.constrain)(draws)
    post_prec = 1 / 4 + len(y)
    mu_mean, mu_sd = y.sum() / post_prec, post_prec ** -0.5
    a, b = 3 + len(x) / 2, 2 + np.sum(x**2) / 2
    for name, mean, sd in [("mu", mu_mean, mu_sd), ("tau", a / b, np.sqrt(a) / b)]:
        d = np.asarray(constrained[name])
        # 1000 draws, ESS several hundred: the mean within 0.2 sd, the sd within 15%
        assert abs(d.mean() - mean) < 0.2 * sd, (name, d.mean(), mean)
        assert d.std() == pytest.approx(sd, rel=0.15), (name, d.std(), sd)


EIGHT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "eight_schools.ppl")


def _cache_hits():
    from jax import monitoring

    hits = []
    monitoring.register_event_listener(lambda e, **kw: hits.append(e) if e.endswith("cache_hits") else None)
    return hits


EIGHT_DATA = {"y": np.array([28.0, 8, -3, 7, -1, 1, 18, 12]), "sigma": np.array([15.0, 10, 16, 11, 9, 11, 10, 18])}


def test_cache_changed_shape_gets_its_own_program(tmp_path):
    """With the persistent cache on, a log density of other data shapes (8 schools, then 6) or dtype is a program
    of its own, with the closed form's values; the same shape again (in-memory caches cleared) comes from disk."""
    hits = _cache_hits()
    previous = pplc.compilation_cache(str(tmp_path))
    try:
        m = pplc.compile_file(EIGHT)
        with jax.enable_x64(True):
            for n in (8, 6, 8):
                jax.clear_caches()
                hits.clear()
                ld = m.log_density({k: v[:n] for k, v in EIGHT_DATA.items()})
                z = {"mu": 1.0, "tau": 0.5, "theta_raw": np.linspace(-1, 1, n)}
                tau = np.exp(0.5)  # HalfCauchy's bijector: exp (log-Jacobian 0.5)
                theta = 1.0 + tau * z["theta_raw"]
                expect = (stats.norm(0, 5).logpdf(1.0) + stats.halfcauchy(scale=5).logpdf(tau) + 0.5
                          + stats.norm.logpdf(z["theta_raw"]).sum()
                          + stats.norm(theta, EIGHT_DATA["sigma"][:n]).logpdf(EIGHT_DATA["y"][:n]).sum())
                assert float(ld.value_and_grad(as_jax(z))[0]) == pytest.approx(expect, rel=1e-12)
            assert hits, "the third log density (a shape seen before) was compiled again, not read from the cache"
        assert os.listdir(tmp_path), "nothing was written to the cache"
    finally:
        pplc.compilation_cache(previous or False)


def test_warm_cache_gives_the_same_draws(tmp_path):
    """A run from a warm cache (in-memory caches cleared, so its programs come from disk) gives the cold run's
    draws."""
    hits = _cache_hits()
    previous = pplc.compilation_cache(str(tmp_path))
    try:
        kw = dict(chains=1, warmup=10, draws=10, seed=3, sampler="hmc", leapfrog=3, metric="unit")
        a = pplc.compile_file(EIGHT).sample(EIGHT_DATA, **kw).draws
        jax.clear_caches()
        hits.clear()
        b = pplc.compile_file(EIGHT).sample(EIGHT_DATA, **kw).draws
        assert hits, "the second run compiled its programs again instead of reading the cache"
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    finally:
        pplc.compilation_cache(previous or False)


def test_no_cache_option_turns_the_cache_off(tmp_path):
    from pplc.cli.options import parser
    from pplc.runtime.devices import cache

    previous = pplc.compilation_cache(str(tmp_path))
    try:
        assert cache.current() == str(tmp_path)
        args = parser().parse_args(["run", "m.ppl", "--data", "d.json", "--no-cache"])
        assert args.no_cache and cache.current() is None and not jax.config.jax_compilation_cache_dir
        assert not parser().parse_args(["run", "m.ppl", "--data", "d.json"]).no_cache
    finally:
        pplc.compilation_cache(previous or False)


def test_default_cache_folder(monkeypatch, tmp_path):
    from pplc.runtime.devices import cache

    monkeypatch.delenv("PPLC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.default_dir() == os.path.join(str(tmp_path), "pplc")
    monkeypatch.setenv("PPLC_CACHE_DIR", str(tmp_path / "c"))
    assert cache.default_dir() == str(tmp_path / "c")
