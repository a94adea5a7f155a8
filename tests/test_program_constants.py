"""What the programs hold as constants, and that the numbers stay the same. Masks known while tracing (NumPy arrays:
the dims with nothing padded, every dim on one device) leave the selects out of the generated model (prelude `masked`,
`real_items`), with the density unchanged: the closed form, the same value as with the masks as traced arrays, and
padded items still left out when a NumPy mask has some. Small data on one device are constants of the sampler's
programs (runtime/data/layout.py SMALL_DATA_BYTES): the same draws as with the data as arguments."""
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import pplc

SRC = """
data x: real[N]
data y: real[N]
mu ~ Normal(0, 1)
sigma ~ Gamma(2, 1)
plate N sharded over devices {
  y ~ Normal(mu + x, sigma)
}
"""
N = 7


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=N).astype(np.float32), rng.normal(size=N).astype(np.float32)
    return pplc.compile(SRC).program, x, y


def _log_prob(program, x, y, mask, mu=0.3, sigma=1.7):
    pinned = program.pinned({"x": x, "y": y}, {"N": len(x)}, {"N": mask}, [])
    return pinned.unnormalized_log_prob(jnp.float32(mu), jnp.float32(sigma))


def _selects_over_items(fn, *args) -> int:
    """The select operations (jnp.where) on arrays with an item dim of size N in `fn`'s program, sub-programs too."""
    def count(jaxpr):
        n = 0
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "select_n" and N in getattr(eqn.outvars[0].aval, "shape", ()):
                n += 1
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                n += count(sub)
        return n
    return count(jax.make_jaxpr(fn)(*args).jaxpr)


def test_a_known_mask_gives_the_closed_form_with_no_select(setup):
    program, x, y = setup
    known = np.ones(N, bool)
    want = (stats.norm.logpdf(0.3) + stats.gamma.logpdf(1.7, 2)
            + stats.norm.logpdf(y, 0.3 + x, 1.7).sum())
    np.testing.assert_allclose(float(_log_prob(program, x, y, known)), want, rtol=1e-5)
    traced = jax.jit(lambda m: _log_prob(program, x, y, m))(jnp.asarray(known))
    np.testing.assert_allclose(float(traced), want, rtol=1e-5)
    # The same density as a program: with the mask an argument it has selects over the items, known it has none
    # (the value and its gradient alike).
    grad = jax.grad(lambda mu, m: _log_prob(program, x, y, m, mu))
    assert _selects_over_items(grad, 0.3, jnp.asarray(known)) > 0
    assert _selects_over_items(lambda mu: grad(mu, known), 0.3) == 0


def test_a_numpy_mask_with_padded_items_still_leaves_them_out(setup):
    program, x, y = setup
    # two padded items that would change the density if counted: far from their means
    xp, yp = np.append(x, [1e6, 1e6]).astype(np.float32), np.append(y, [50.0, 50.0]).astype(np.float32)
    mask = np.arange(N + 2) < N
    np.testing.assert_allclose(float(_log_prob(program, xp, yp, mask)), float(_log_prob(program, x, y, np.ones(N, bool))),
                               rtol=1e-5)


def test_small_data_as_constants_give_the_draws_of_data_as_arguments(setup, monkeypatch):
    """NUTS on one device with the data (a few hundred bytes) held as constants of the programs, and the same run with
    them as the programs' arguments: the same draws and log densities."""
    import pplc.runtime.sampling.programs as programs_lib

    _, x, y = setup
    model, data = pplc.compile(SRC), {"x": x, "y": y}
    assert programs_lib.is_small(data)
    kw = dict(chains=2, warmup=30, draws=20, seed=4)
    held = model.sample(data, **kw)
    monkeypatch.setattr(programs_lib, "is_small", lambda arrays: False)
    passed = model.sample(data, **kw)
    for k in ("mu", "sigma"):
        np.testing.assert_allclose(held.draws[k], passed.draws[k], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(held.trace["log_prob"], passed.trace["log_prob"], rtol=1e-6)


@pytest.mark.parametrize("func", ["sum", "mean", "max", "min"])
def test_a_reduction_across_devices_of_a_latent_value_in_the_model_is_refused_and_a_track_of_it_is_not(func):
    """Its value would be right and its gradient wrong on several devices (TFP's cross-device sum keeps gradients
    local: `sum(abs(x) + sigma)` over 7 items split over 2 devices gave d/dsigma 8.416 against 8.346): refused where
    the log density uses it, with the line; fine in a `track` or a value nothing in the model uses (computed after
    sampling)."""
    used = SRC.replace("y ~ Normal(mu + x, sigma)", f"y ~ Normal(mu + x / s, sigma)").replace(
        "plate N sharded", f"s = {func}(abs(x) + sigma)\nplate N sharded")
    with pytest.raises(pplc.PPLError) as err:
        pplc.compile(used, "m.ppl")
    assert f"m.ppl:6:1: error: `{func}` across the devices of the sharded dim `N`" in str(err.value)
    pplc.compile(SRC + f"track s = {func}(abs(x) + sigma)\nunused = {func}(abs(x) + sigma)\n", "m.ppl")
