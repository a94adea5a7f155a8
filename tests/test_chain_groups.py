"""A chains x data mesh (`--chain-groups`): each group of devices runs its own chains on its own copy of the sharded
data; the log density is the unsharded model's; the draws of group g are those of the same group on other devices."""
import re

import numpy as np
import pytest
from scipy import stats

import pplc
from pplc.cli import main
from pplc.runtime.output.az import arviz

# Small on purpose (compilation dominates): a replicated latent and a sharded plate of 7 items (padded to 8 per
# group of 2 devices).
MODEL = """
data y: real[groups]
tau ~ HalfNormal(1)
plate groups sharded over devices {
  theta ~ Normal(0, tau)
  y ~ Normal(theta, 1)
}
"""
RUN = dict(sampler="hmc", warmup=0, draws=5, seed=3, step_size=0.1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`pplc run` on 4 devices as 2 groups x 2, and the same seed through the API on 2 groups x 1 device and on 1
    device with one group's chains."""
    d = tmp_path_factory.mktemp("groups")
    data, path = d / "data.npz", d / "small.ppl"
    np.savez(data, y=np.random.default_rng(1).normal(size=7))
    path.write_text(MODEL)
    out = d / "fit.npz"
    args = ["run", str(path), "--data", str(data), "--out", str(out), "--devices", "4",
            "--chain-groups", "2", "--chains", "4"] + [f"--{k.replace('_', '-')}={v}" for k, v in RUN.items()]
    model = pplc.compile_file(str(path))
    return dict(model=model, data=str(data), path=str(path), args=args, out=str(out),
                one_device_per_group=lambda: model.sample(str(data), devices=2, chains=4, chain_groups=2, **RUN),
                plain=lambda: model.sample(str(data), devices=1, chains=2, **RUN))


@pytest.fixture(scope="module")
def cli_run(runs):
    import contextlib
    import io

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(runs["args"]) == 0
    return pplc.Fit.load(runs["out"]), text.getvalue()


def test_groups_run_their_own_chains_and_the_summary_sees_all_of_them(cli_run):
    fit, text = cli_run
    x = fit.draws["theta"]
    assert x.shape == (4, 5, 7)
    assert np.all(fit.trace["is_accepted"].any(axis=1))  # every chain moves
    # Groups draw from their own keys: their chains differ from the first draw on (so do chains within a group).
    assert np.abs(x[:2, 0] - x[2:, 0]).min() > 0 and np.abs(x[0] - x[1]).min() > 0
    assert "4 chains x 5 draws" in text
    row = re.search(r"^theta\[0\]\s+(\S+)(?:\s+\S+){7}\s+(\S+)\s*$", text, re.M)
    assert row, text
    a = fit.draws["theta"][..., 0]
    np.testing.assert_allclose(float(row.group(1)), a.mean(), rtol=2e-3, atol=1e-3)  # pooled over 4 chains
    az = arviz()
    rhat4 = float(az.rhat(az.convert_to_dataset({"x": a}), method="rank")["x"])
    rhat2 = float(az.rhat(az.convert_to_dataset({"x": a[:2]}), method="rank")["x"])
    assert abs(rhat4 - rhat2) > 0.01  # the check below can tell 4 chains from one group's 2
    np.testing.assert_allclose(float(row.group(2)), rhat4, atol=1e-3)


def test_log_density_on_a_two_by_two_mesh_is_the_models(runs, cli_run):
    """The sampler's log density (unconstrained, with the Jacobian) at every draw of every chain of the 2 x 2 run
    is the model's, in closed form (SciPy): tau = softplus(u), so the Jacobian is d tau / du = 1 - exp(-tau)."""
    fit, _ = cli_run
    y = np.load(runs["data"])["y"].astype(np.float64)
    tau, theta = fit.draws["tau"].astype(np.float64), fit.draws["theta"].astype(np.float64)
    lp = (stats.halfnorm.logpdf(tau) + stats.norm.logpdf(theta, 0, tau[..., None]).sum(-1)
          + stats.norm.logpdf(y, theta, 1).sum(-1) + np.log(-np.expm1(-tau)))
    assert np.ptp(lp) > 0.1  # the draws move through the posterior
    np.testing.assert_allclose(fit.trace["log_prob"], lp, rtol=1e-4, atol=1e-4)


def test_a_group_draws_the_same_on_other_devices_and_group_0_is_the_plain_run(runs, cli_run):
    """What the design guarantees: group g's random numbers come from the seed's key folded with g (group 0: the
    seed's key), at the plate's true size, so group g draws the same on 2 x 2 as on 2 x 1 devices, and group 0
    the same as a run of one group (its chains) on one device, up to float32 rounding of sums."""
    fit, _ = cli_run
    other, plain = runs["one_device_per_group"](), runs["plain"]()
    for name, x in fit.draws.items():
        tol = dict(rtol=1e-4, atol=1e-4 * np.abs(x).max())
        np.testing.assert_allclose(other.draws[name], x, **tol, err_msg=name)
        np.testing.assert_allclose(plain.draws[name], x[:2], **tol, err_msg=name)
    np.testing.assert_array_equal(other.trace["is_accepted"], fit.trace["is_accepted"])


@pytest.mark.parametrize("extra, message", [
    (["--devices", "4", "--chain-groups", "3", "--chains", "3"],
     "--chain-groups 3 does not divide the 4 devices of this run"),
    (["--devices", "4", "--chain-groups", "2", "--chains", "3"], "--chain-groups must be at least 1 and divide "
                                                                 "--chains"),
    (["--devices", "4", "--chain-groups", "2", "--chains", "4", "--spmd", "pmap"], "--chain-groups needs --spmd "
                                                                                  "shard_map"),
])
def test_groups_that_do_not_fit_are_refused(runs, capsys, extra, message):
    args = ["run", runs["path"], "--data", runs["data"], "--quiet", "--warmup", "0", "--draws", "1"]
    assert main(args + extra) == 1
    err = capsys.readouterr().err
    assert message in err, err
