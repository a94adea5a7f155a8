"""The posteriordb translations in tests/conformance: a few cheap ones checked against their data.json, and log densities against the Stan programs in SciPy."""
import json
import os

import jax
import numpy as np
import pytest
from scipy import stats

import pplc
from pplc.cli import main as pplc_main

from conftest import ROOT, shared_path

MODELS = os.path.join(ROOT, "tests", "conformance")


def _model(name):
    return os.path.join(MODELS, name + ".ppl")


def _data(name):
    return shared_path("posteriordb", name, "data.json")


# cheap translations that each exercise something different: transformed data observed (log_earn), Stan's sd(),
# indicator columns from int data, a design matrix and dims sized by int data scalars, a latent vector with a
# transformed parameter
CHECKED = ["earnings-logearn_interaction_z", "kidiq_with_mom_work-kidscore_mom_work", "sblri-blr",
           "eight_schools-eight_schools_noncentered"]


@pytest.mark.parametrize("name", CHECKED)
def test_translation_checks_against_its_unchanged_data(name, capsys):
    """`pplc check MODEL --data data.json` accepts the posterior's data.json as posteriordb ships it, and binds
    every size the Stan program's data block declares."""
    data = _data(name)
    raw = json.load(open(data))
    assert pplc_main(["check", _model(name), "--data", data]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"{data}: ok" in text
    for size in ("N", "D", "J"):
        if size in raw and f"data {size}: int" in open(_model(name)).read():
            assert f"{size} = {raw[size]}" in text


def _stan_logearn_interaction_z(p, d):
    """Stan's logearn_interaction_z.stan in SciPy: flat priors, log_earn ~ normal(mu, sigma)."""
    h = np.asarray(d["height"], np.float64)
    male = np.asarray(d["male"], np.float64)
    z = (h - h.mean()) / h.std(ddof=1)
    b = p["beta"]
    mu = b[0] + b[1] * z + b[2] * male + b[3] * z * male
    return stats.norm.logpdf(np.log(np.asarray(d["earn"], np.float64)), mu, p["sigma"]).sum()


def _stan_eight_schools_noncentered(p, d):
    """Stan's eight_schools_noncentered.stan in SciPy (sigma > 0: cauchy(0, 5) is half-Cauchy up to a constant)."""
    theta = p["theta_trans"] * p["tau"] + p["mu"]
    return (stats.norm.logpdf(p["theta_trans"], 0, 1).sum() + stats.norm.logpdf(p["mu"], 0, 5)
            + stats.cauchy.logpdf(p["tau"], 0, 5) + stats.norm.logpdf(d["y"], theta, d["sigma"]).sum())


def _draw_logearn_interaction_z(rng):
    return {"beta": rng.normal([6.0, 0.1, 0.4, 0.05], 0.3), "sigma": rng.uniform(0.5, 2.0)}


def _draw_eight_schools_noncentered(rng):
    return {"theta_trans": rng.normal(size=8), "mu": rng.normal(0, 5), "tau": rng.uniform(0.1, 10)}


@pytest.mark.parametrize("name, stan, draw", [
    ("earnings-logearn_interaction_z", _stan_logearn_interaction_z, _draw_logearn_interaction_z),
    ("eight_schools-eight_schools_noncentered", _stan_eight_schools_noncentered, _draw_eight_schools_noncentered),
])
def test_translation_log_density_is_the_stan_programs(name, stan, draw):
    """The compiled translation's log density (float64, constrained scale) differs from the Stan program's,
    written in SciPy, by the same constant at random parameter points."""
    data = _data(name)
    raw = json.load(open(data))
    model = pplc.compile_file(_model(name))
    rng = np.random.default_rng(10)
    points = [draw(rng) for _ in range(3)]
    with jax.enable_x64(True):
        ours = [model.log_prob({k: np.asarray(v, np.float64) for k, v in p.items()}, data) for p in points]
    theirs = [stan(p, raw) for p in points]
    diffs = np.asarray(ours) - np.asarray(theirs)
    assert np.all(np.isfinite(diffs))
    np.testing.assert_allclose(diffs - diffs[0], 0.0, atol=1e-6 * max(1.0, np.abs(theirs).max()))
    # and the density does change between the points (the comparison is not of constants)
    assert np.ptp(theirs) > 1.0
