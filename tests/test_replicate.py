"""Replicated data (issue 13's predictive checks): each observed site drawn anew at each posterior draw, in the
ArviZ posterior_predictive group, checked against a conjugate model's closed form."""

import numpy as np
import pytest

import pplc

COUNTS = "data y: int[n]\nlam ~ Gamma(2, 1)\nplate n sharded over devices {\n  y ~ Poisson(lam)\n}\n"
# ... and a Bernoulli site on bool data (as the MovieLens example's `watched`)
POISSON = COUNTS + "data w: bool[m]\np ~ Beta(1, 1)\nplate m {\n  w ~ Bernoulli(probs = p)\n}\n"
W = np.random.default_rng(2).random(30) < 0.3


@pytest.fixture(scope="module")
def fit():
    y = np.random.default_rng(1).poisson(3.0, size=40)
    model = pplc.compile(POISSON, "poisson.ppl")
    return y, model.sample({"y": y, "w": W}, chains=2, warmup=200, draws=300, seed=0, progress=False)


def test_replicated_counts_match_the_posterior_predictive_mean(fit):
    y, f = fit
    rep = f.replicated()["y"]
    assert rep.shape == (2, 300, 40) and rep.dtype == np.int32 and rep.min() >= 0
    # Gamma(2, 1) prior, Poisson likelihood: lam | y ~ Gamma(2 + sum y, 1 + n), and E[mean(y_rep)] = E[lam]
    n, total = len(y), y.sum()
    e_lam, var_lam = (2 + total) / (1 + n), (2 + total) / (1 + n) ** 2
    per_draw = rep.reshape(-1, n).mean(axis=1)
    sd_of_mean = np.sqrt((e_lam / n + var_lam) / 150)  # at least 150 effective draws of 600
    assert abs(per_draw.mean() - e_lam) < 4 * sd_of_mean
    assert per_draw.var() == pytest.approx(e_lam / n + var_lam, rel=0.35)


def test_the_posterior_predictive_group_feeds_arviz_plot_ppc(fit, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import arviz as az

    y, f = fit
    idata = f.to_arviz()
    assert "posterior_predictive" in idata.groups()
    assert idata.posterior_predictive["y"].shape == (2, 300, 40)
    az.plot_ppc(idata)
    matplotlib.pyplot.close("all")


def test_pplc_plot_ppc_draws_the_check_of_a_saved_fit(fit, tmp_path):
    from pplc import cli

    _, f = fit
    path = str(tmp_path / "fit.nc")
    f.save(path)
    out = tmp_path / "plots"
    assert cli.main(["plot", path, "--ppc", "-o", str(out)]) == 0
    assert (out / "ppc_y.png").stat().st_size > 1000
    assert cli.main(["plot", str(tmp_path / "missing.npz"), "--ppc", "-o", str(out)]) != 0

    # The bool site: the .nc holds its observed and replicated values as 0/1 integers, which az.plot_ppc takes (it
    # refuses bool); the replicated mean is the Beta(1 + k, 1 + n - k) posterior's mean.
    from pplc.runtime.output.az import arviz

    idata = arviz().from_netcdf(path)
    assert idata.observed_data["w"].dtype == np.int8 and np.array_equal(idata.observed_data["w"].values, W)
    rep = idata.posterior_predictive["w"].values
    assert rep.dtype == np.int8 and set(np.unique(rep)) <= {0, 1}
    post_mean = (1 + W.sum()) / (2 + W.size)
    assert abs(rep.mean() - post_mean) < 4 * np.sqrt(post_mean * (1 - post_mean) / rep.size + 0.08 ** 2 / 100)
    assert (out / "ppc_w.png").stat().st_size > 1000


def test_prior_and_prior_predictive_draws_match_the_closed_form(tmp_path):
    """`pplc run --prior`: lam ~ Gamma(2, 1) has mean 2 and sd sqrt(2); y_rep's mean is E[lam] too."""
    from pplc import cli

    model = pplc.compile(COUNTS, "poisson.ppl")
    fit = model.sample_prior_predictive({"y": np.zeros(30, int)}, chains=4, draws=500, seed=2)
    lam, y = fit.draws["lam"], fit.prior_predictive["y"]
    assert lam.shape == (4, 500) and y.shape == (4, 500, 30) and y.dtype == np.int32
    assert abs(lam.mean() - 2) < 4 * np.sqrt(2 / 2000) and lam.std() == pytest.approx(np.sqrt(2), rel=0.1)
    assert abs(y.mean() - 2) < 4 * np.sqrt((2 + 2 / 30) / 2000)
    idata = fit.to_arviz()
    assert {"prior", "prior_predictive"} <= set(idata.groups()) and "posterior" not in idata.groups()
    data = tmp_path / "d.json"
    data.write_text('{"y": [1, 2, 3]}')
    out = tmp_path / "prior.npz"
    assert cli.main(["run", str(_write(tmp_path)), "--prior", "--data", str(data),
                     "--draws", "50", "--quiet", "--out", str(out)]) == 0
    saved = pplc.runtime.output.Fit.load(str(out))
    assert saved.prior_predictive["y"].shape == (4, 50, 3) and saved.meta["method"] == "prior"


def _write(tmp_path):
    path = tmp_path / "poisson.ppl"
    path.write_text(COUNTS)
    return path
