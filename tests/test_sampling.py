"""NUTS and HMC with Stan's windowed warmup: windows, sharded mass matrices, initial values, sampler statistics,
device counts and SPMD modes, float64, and posteriordb conformance (a cheap subset here, all of it when slow)."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, shared_path
from jax.sharding import Mesh, PartitionSpec as P
from tensorflow_probability.substrates.jax.internal import distribute_lib, unnest

import pplc
from pplc.runtime.sampling import init as init_lib
from pplc.runtime.sampling.config import SamplerConfig, float_dtype
from pplc.runtime.sampling.stats import NUTS_STATS
from pplc.runtime.sampling.warmup import make_kernel, warmup_windows

HIER = """
# Hierarchical normal means, non-centred; groups (and their effects) sharded over devices
data y: real[groups]
mu ~ Normal(0, 2)
tau ~ HalfNormal(1)
plate groups sharded over devices {
  z ~ Normal(0, 1)
  theta = mu + tau * z
  y ~ Normal(theta, 0.5)
}
"""
HIER_Y = [1.2, -0.3, 0.8, 2.1, 0.4, -1.0, 0.9]  # 7 groups: padded to 8 on 4 devices


def test_warmup_windows_are_stans():
    # 1000 iterations: init buffer 75, slow windows 25, 50, 100, 200 and 500 (the last stretched), term buffer 50.
    assert warmup_windows(1000) == (75, [100, 150, 250, 450, 950])
    assert warmup_windows(2000) == (75, [100, 150, 250, 450, 850, 1950])
    # Too short for the default buffers: 15% / 75% / 10%, one slow window.
    assert warmup_windows(100) == (15, [90])
    assert warmup_windows(150) == (75, [100])
    assert warmup_windows(10) == (10, [])  # under 20 iterations: no mass-matrix adaptation


@pytest.mark.parametrize("sampler", ["nuts", "hmc"])
def test_the_step_size_heuristic_runs_before_the_first_step_and_after_each_window(sampler):
    """Stan's step-size heuristic runs in the sampling program: before the first step (from the initial step
    size, 1e-4 here, far below a standard normal's ~1) and before the step after each slow window's end, and only
    with a warmup; the restart flag is set at a window's end and cleared by the next step."""
    def target(x):
        return -0.5 * jnp.sum(x * x, axis=-1)

    def first_steps(warmup, n):
        cfg = SamplerConfig(sampler=sampler, leapfrog=3, chains=2, warmup=warmup, step_size=1e-4)
        z = [jnp.zeros([2, 3])]
        kernel = make_kernel(target, cfg, z, [type("V", (), {"sharded_dim": None, "phys": ("d",)})()], [], {})
        kr = kernel.bootstrap_results(z)
        out = [bool(kr.restart)]
        one_step = jax.jit(lambda z, kr, seed: kernel.one_step(z, kr, seed=seed))
        for i in range(n):
            z, kr = one_step(z, kr, jax.random.PRNGKey(i))
            step = np.asarray(unnest.get_innermost(kr.inner_results, "step_size")[0]).ravel()
            out.append((step, bool(kr.restart)))
        return out

    start, ends = warmup_windows(40)  # (6, [36]): one slow window ending after iteration 35
    with_warmup = first_steps(40, ends[0] + 1)
    assert with_warmup[0] is True  # due before the first step
    assert np.all(with_warmup[1][0] > 0.05) and not with_warmup[1][1]  # the heuristic ran: ~1, not 1e-4
    assert [r for _, r in with_warmup[1:]] == [False] * (ends[0] - 1) + [True, False]  # set at the end, then done
    without = first_steps(0, 2)
    assert without[0] is False and all(np.allclose(s, 1e-4) for s, _ in without[1:])


def test_mass_matrix_of_a_sharded_latent_stays_sharded_and_is_estimated_per_device():
    """Preconditioned HMC in the windowed warmup on 2 devices: a replicated latent `a` (sd 3) and a latent `b`
    sharded over devices (sds 0.4 .. 2.5, each device holding its own items). After the slow windows the
    momentum distribution's part for `b` is still sharded, and each device's inverse mass matrix is the
    variance of its own items; the replicated part is the same on every device."""
    n, chains, warmup = 8, 2, 200  # slow windows [75, 100) and [100, 150), then a terminal buffer
    assert warmup_windows(warmup) == (75, [100, 150])
    scales = np.geomspace(0.4, 2.5, n)
    mesh = Mesh(np.array(jax.devices()[:2]), ("data",))
    latents = [type("V", (), {"sharded_dim": None, "phys": ()})(),
               type("V", (), {"sharded_dim": "n", "phys": ("n",)})()]
    cfg = SamplerConfig(sampler="hmc", leapfrog=4, chains=chains, warmup=warmup)
    kinds = {}

    def run(scales, key):
        def target(a, b):
            lp_b = distribute_lib.psum(jnp.sum(-0.5 * (b / scales) ** 2, axis=-1), ["data"])
            return -0.5 * (a / 3.0) ** 2 + lp_b

        z = [jnp.zeros([chains]), jnp.zeros([chains, scales.shape[0]])]
        kernel = make_kernel(target, cfg, z, latents, ["data"], {"n": n})
        kr = kernel.bootstrap_results(z)  # (the step-size heuristic runs in the first step)

        def step(c, k):
            return kernel.one_step(*c, seed=k), None

        (z, kr), _ = jax.lax.scan(step, (z, kr), jax.random.split(key, warmup))
        md = unnest.get_innermost(kr.inner_results, "momentum_distribution")
        kinds["parts"] = md.sharded
        return md.var[0][None], md.var[1]

    fn = jax.jit(jax.shard_map(run, mesh=mesh, in_specs=(P("data"), P()), out_specs=(P("data"), P(None, "data")),
                               check_vma=False))
    var_a, var_b = (np.asarray(x) for x in fn(scales, jax.random.PRNGKey(0)))
    assert kinds["parts"][0] is None and kinds["parts"][1] == (1, n)  # replicated; items on axis 1 of [chains, n]
    assert np.array_equal(var_a[0], var_a[1]), "the replicated part's mass matrix differs across devices"
    assert var_b.shape == (chains, n)
    ratio = var_b / scales ** 2  # 50 draws in the last window: the estimate is rough, but on each item's scale
    assert np.all((ratio > 0.25) & (ratio < 4)), ratio
    assert np.all(var_b[:, n // 2:].mean(1) > 4 * var_b[:, :n // 2].mean(1))  # device 1's items are 6x wider
    assert np.all(np.abs(var_a[0] / 9.0 - 1) < 0.9), var_a


def test_init_nonfinite_start_names_the_term(tmp_path):
    model = pplc.compile("data y: real[n]\na ~ Normal(0, 1)\nplate n {\n  y ~ Uniform(a, a + 1)\n}\n", "bad.ppl")
    with pytest.raises(pplc.PPLError) as e:
        model.sample({"y": [0.5, 100.0]}, chains=2, warmup=10, draws=10)
    msg = e.value.render()
    assert "not finite at the initial values of chains 0, 1" in msg and "100 draws" in msg
    assert "non-finite: y" in msg


def test_init_prior_draws_from_the_prior_and_uniform_for_flat_priors():
    model = pplc.compile("data y: real[n]\nm ~ Normal(100, 0.1)\ns ~ HalfFlat()\nb ~ Flat()\n"
                         "plate n {\n  y ~ Normal(m + b, s)\n}\n", "flat.ppl")
    bound = pplc.api._as_data(model.program, {"y": [1.0, 2.0]})
    latents = model.program.latents
    prior = init_lib.prior_sampler(model.program, bound)
    cfg = SamplerConfig(chains=50, init="prior")
    m, s, b = init_lib.initial_values(latents, bound.sizes, cfg, jax.random.PRNGKey(0), prior)
    assert m.shape == (50,) and np.all(np.abs(m - 100) < 1)  # from Normal(100, 0.1)
    for flat in (s, b):  # uniform (-2, 2) on the unconstrained scale
        assert np.all(np.abs(flat) < 2) and flat.std() > 0.5
    zero = init_lib.initial_values(latents, bound.sizes, SamplerConfig(init="0", chains=3), jax.random.PRNGKey(0))
    assert all(np.array_equal(z, np.zeros(3)) for z in zero)


def test_sample_options_are_sampler_config_fields():
    """`Model.sample` takes SamplerConfig's fields by name, with its defaults; a misspelt option is an error
    naming it, before any data is read."""
    model = pplc.compile("data y: real\nm ~ Normal(0, 1)\ny ~ Normal(m, 1)\n", "one.ppl")
    with pytest.raises(pplc.PPLError) as e:
        model.sample({"y": 0.5}, chain=2)
    assert "unknown sampler option `chain`" in e.value.render() and "chains" in e.value.render()
    cfg = SamplerConfig.from_options(chains=2, init="0")
    assert (cfg.chains, cfg.warmup, cfg.draws, cfg.sampler, cfg.init) == (2, 1000, 1000, "nuts", "0")
    for f in SamplerConfig.options():
        assert f.metadata["help"], f.name
    assert dict((f.name, f.metadata["choices"]) for f in SamplerConfig.options())["sampler"] == ("nuts", "hmc")


@pytest.fixture(scope="module")
def hier():
    return pplc.compile(HIER, "hier.ppl")


def test_nuts_with_sharded_latents_same_posterior_on_1_and_4_devices(hier):
    """NUTS with a sharded latent (`z`, padded from 7 to 8 items on 4 devices): the same posterior as on one
    device, and sampler statistics per draw."""
    fits = {d: hier.sample({"y": HIER_Y}, devices=d, chains=4, warmup=250, draws=400, seed=2) for d in (1, 4)}
    for d, fit in fits.items():
        tr = fit.trace
        for k in NUTS_STATS:
            assert tr[k].shape == (4, 400), (d, k)
        n, depth = tr["n_leapfrog"], tr["tree_depth"]
        assert np.all((n >= 2 ** (depth - 1)) & (n < 2 ** depth))
        assert np.all(tr["step_size"] == tr["step_size"][:, :1]), "the step size changed after warmup"
        assert not np.array_equal(tr["step_size"][0], tr["step_size"][1])  # one step size per chain
        assert np.all(np.isfinite(tr["energy"])) and tr["diverging"].dtype == bool
        assert 0.7 < np.mean(tr["accept_ratio"]) < 0.99
        assert np.mean(tr["diverging"]) < 0.02
        assert fit.draws["theta"].shape == (4, 400, 7) and fit.draws["z"].shape == (4, 400, 7)
    a, b = fits[1].draws, fits[4].draws
    for name in ("mu", "tau", "theta"):
        x, y = a[name].reshape(1600, -1), b[name].reshape(1600, -1)
        sd = x.std(0)
        assert np.all(np.abs(x.mean(0) - y.mean(0)) < 0.25 * sd), name  # ~ 4 MC standard errors at ESS ~400
        assert np.all(np.abs(y.std(0) / sd - 1) < 0.2), name


SCALED = """
# Badly scaled: posterior sds about 7 and 0.07 (a unit mass matrix needs step sizes below the smaller)
data y: real[n]
wide ~ Normal(0, 10)
narrow ~ Normal(0, 0.1)
plate n sharded over devices {
  y ~ Normal(0.1 * wide + 10 * narrow, 1)
}
"""


def test_hmc_adapts_a_mass_matrix_float64_and_shard_map_equals_pmap():
    """HMC (fixed leapfrog steps) with the diagonal mass matrix adapted in warmup, in float64 (--x64), with
    data sharded over 2 devices: shard_map and pmap give the same draws, and the badly scaled posterior is
    right (it is Gaussian: its moments are known in closed form)."""
    model = pplc.compile(SCALED, "scaled.ppl")
    y = np.linspace(0, 2, 5)
    fits = {m: model.sample({"y": y}, devices=2, sampler="hmc", leapfrog=8, chains=2, warmup=300, draws=500,
                            seed=4, spmd=m, x64=True) for m in ("shard_map", "pmap")}
    a, b = fits["shard_map"], fits["pmap"]
    assert a.draws["wide"].dtype == np.float64 and a.trace["log_prob"].dtype == np.float64
    for k in ("wide", "narrow"):
        np.testing.assert_allclose(a.draws[k], b.draws[k], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.trace["step_size"], b.trace["step_size"], rtol=1e-9)
    assert np.all(a.trace["n_leapfrog"] == 8) and "tree_depth" not in a.trace
    # With the identity, stability needs a step below the narrow sd (0.07); with the adapted mass matrix the
    # step is on the whitened scale.
    assert np.all(a.trace["step_size"][:, -1] > 0.2), a.trace["step_size"][:, -1]
    # Exact posterior: Gaussian with precision diag(1e-2, 1e2) + 5 v v^T, v = (0.1, 10).
    v = np.array([0.1, 10.0])
    cov = np.linalg.inv(np.diag([1e-2, 1e2]) + 5 * np.outer(v, v))
    mean, sd = cov @ (v * y.sum()), np.sqrt(np.diag(cov))
    for i, k in enumerate(("wide", "narrow")):
        x = a.draws[k].ravel()
        assert abs(x.std() / sd[i] - 1) < 0.2, (k, x.std(), sd[i])
        assert abs(x.mean() - mean[i]) < 0.3 * sd[i], (k, x.mean(), mean[i])
    assert float_dtype() == jnp.float32  # float64 only for that run: float32 stays the default


def _conformance(*args, timeout=1800):
    run = shared_path("conformance", "run.py")
    return subprocess.run([sys.executable, run, *args], capture_output=True, text=True, timeout=timeout)


def test_conformance_subset_matches_posteriordb():
    """Two posteriordb posteriors at CI size (2 chains x 300 + 300, 3 devices with padding), same tolerance:
    a flat prior and a sharded plate (kidiq) and a badly scaled regression with Flat/HalfFlat (mesquite)."""
    p = _conformance("kidiq-kidscore_momiq", "mesquite-mesquite", "--devices", "3", "--chains", "2",
                     "--warmup", "300", "--draws", "300")
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2/2 posteriors match the reference" in p.stdout


@pytest.mark.slow
@pytest.mark.parametrize("devices", [1, 4])
def test_conformance_full(devices):
    """All of ../shared/conformance (4 chains x 1000 + 1000 each), as its README runs it."""
    p = _conformance("--devices", str(devices), timeout=3600)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr


# Our own translations of posteriordb's posteriors in ../shared/posteriordb (tests/conformance), reading each
# posterior's data.json unchanged.
OWN = os.path.join(ROOT, "tests", "conformance")


@pytest.mark.slow
@pytest.mark.parametrize("devices", [1, 4])
def test_conformance_own_translations(devices):
    p = _conformance("--models", OWN, "--raw-data", "--devices", str(devices), timeout=4 * 3600)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr


def test_summary_blames_float32_round_off_only_when_it_is_likely():
    from pplc.runtime.output import summary as diagnostics

    rows = [{"name": "b", "mean": 2e6, "sd": 3.0, "rhat": 1.0, "ess_bulk": 900.0, "ess_tail": 900.0}]
    div = np.zeros((2, 50), bool)
    div[0, 3] = True
    big = {"log_prob": np.full((2, 50), -3e6, np.float32), "diverging": div}
    w = {x.kind: x for x in diagnostics.check(rows, big, 2)}
    assert "float32" in w and "--x64" in w["float32"].hint
    assert "float32 resolves only to 0.36" in w["float32"].message and "b: mean 2e+06, sd 3" in w["float32"].message
    assert "float32" not in {x.kind for x in diagnostics.check(rows, dict(big, diverging=div & False), 2)}
    as64 = dict(big, log_prob=big["log_prob"].astype(np.float64))
    assert "float32" not in {x.kind for x in diagnostics.check(rows, as64, 2)}
    ordinary = [dict(rows[0], mean=1.0)]
    small = dict(big, log_prob=np.full((2, 50), -40.0, np.float32))
    assert "float32" not in {x.kind for x in diagnostics.check(ordinary, small, 2)}
