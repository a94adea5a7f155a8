"""Randomness that does not depend on the device count: momenta drawn per plate item (keys folded with the item's
global index), padded items without momentum, and the same first draws on 1, 2, 4 and 8 devices."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import EXAMPLES
from jax.sharding import Mesh, PartitionSpec as P
from scipy import stats

import pplc
from pplc.runtime.sampling.momentum import Momentum

N, CHAINS, REST = 7, 2, 3  # 7 items: padded to 8 on 2, 4 and 8 devices


def _draw(ndev, var, seed):
    """Momentum draws and the log density of given momenta, for a part [chains, items, REST] split over `ndev`
    devices (items padded to a multiple of ndev, the padding cut off again)."""
    padded = -(-N // ndev) * ndev
    v = np.concatenate([var, np.repeat(var[:, -1:], padded - N, axis=1)], axis=1)
    mesh = Mesh(np.array(jax.devices()[:ndev]), ("data",))

    def per_device(v, key, p):
        m = Momentum([v], [(1, N)], ("data",))
        return m.sample(seed=key)[0], m.log_prob([p])

    fn = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(None, "data"), P(), P(None, "data")),
                               out_specs=(P(None, "data"), P()), check_vma=False))
    x, lp = fn(jnp.asarray(v), jax.random.PRNGKey(seed), jnp.asarray(v))  # log density at p = var (any values)
    return np.asarray(x), np.asarray(lp)


def test_momenta_are_drawn_per_item_whatever_the_device_count():
    var = np.random.default_rng(0).uniform(0.2, 3.0, (CHAINS, N, REST)).astype(np.float32)
    draws = {n: _draw(n, var, seed=5) for n in (1, 2, 4, 8)}
    x1, lp1 = draws[1]
    assert x1.shape == (CHAINS, N, REST) and np.all(x1 != 0)
    for n in (2, 4, 8):
        x, lp = draws[n]
        np.testing.assert_array_equal(x[:, :N], x1)  # the same numbers, not merely close
        np.testing.assert_array_equal(x[:, N:], 0.0)  # padded items: no momentum
        np.testing.assert_allclose(lp, lp1, rtol=1e-6)  # padded items add nothing to the kinetic energy
    # The distribution is N(0, 1/var) per element (var: the inverse mass matrix), as TFP's preconditioned HMC.
    p = var.astype(np.float64)
    expected = stats.norm.logpdf(p, 0.0, 1.0 / np.sqrt(p)).sum(axis=(1, 2))
    np.testing.assert_allclose(lp1, expected, rtol=1e-5)
    z = x1 * np.sqrt(var)  # standardised draws: about N(0, 1)
    assert abs(z.mean()) < 0.5 and 0.5 < z.std() < 1.5
    assert not np.array_equal(_draw(1, var, seed=6)[0], x1)  # another seed, other draws


@pytest.fixture(scope="module")
def movielens():
    """The MovieLens model (3-dim embeddings) on 13 simulated users (padded to 14 on 2, 16 on 4 and 8 devices)."""
    text = open(f"{EXAMPLES}/movielens_mf.ppl").read()
    model = pplc.compile(text, "movielens_mf.ppl", consts={"dim": 3})
    data = {"watched": np.random.default_rng(1).random((13, 6)) < 0.4}
    return model, data


@pytest.mark.parametrize("sampler", ["hmc", pytest.param("nuts", marks=pytest.mark.slow)])
def test_first_draws_do_not_depend_on_the_device_count(movielens, sampler):
    """HMC from its given step size; NUTS after 3 warmup iterations (Stan's step-size heuristic and dual
    averaging, which draw momenta too)."""
    model, data = movielens
    warmup = 0 if sampler == "hmc" else 3
    fits = {n: model.sample(data, devices=n, sampler=sampler, chains=2, warmup=warmup, draws=5, seed=3,
                            step_size=0.05, max_tree_depth=4)
            for n in (1, 2, 4, 8)}
    ref = fits[1]
    assert np.all(ref.trace["is_accepted"].any(axis=1))  # every chain moves: the draws are not the start
    assert np.ptp(ref.draws["user_bias"], axis=1).min() > 0
    for n in (2, 4, 8):
        for name, x in ref.draws.items():
            y = fits[n].draws[name]
            assert y.shape == x.shape
            # Sums over users are taken in another order on other device counts: float32 rounding, no more.
            np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-4 * np.abs(x).max(), err_msg=f"{name}, {n} devices")
        np.testing.assert_array_equal(fits[n].trace["is_accepted"], ref.trace["is_accepted"])
