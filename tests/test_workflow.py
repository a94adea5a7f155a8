"""The workflow around sampling: pointwise log-likelihood and LOO, data kept in outputs, the CLI's help, version and
errors, summaries and plots in index order, the progress bar's width, ArviZ's refactor warning, the README."""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import TEST_XLA_FLAGS
from scipy import special, stats

import pplc
from pplc import cli
from pplc.runtime.output import Fit
from pplc.runtime.output import plots, progress
from pplc.runtime.output.az import arviz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
ES_MODEL = os.path.join(EXAMPLES, "eight_schools.ppl")
ES_DATA = os.path.join(EXAMPLES, "eight_schools.json")


def _fit(model, draws, observed, constant=None):
    """A Fit of `model` with given draws (no sampling: the log-likelihood depends on the draws only)."""
    dims = {v.name: list(v.phys) for v in model.ir.variables if v.kind != "const"}
    return Fit(draws, {}, model_name="m", program=model.program, dims=dims, meta={"tracked": []},
               observed=observed, constant=constant or {})


# ---------------------------------------------------------------------------------------------------- log-likelihood
def test_log_likelihood_of_a_normal_model_equals_scipy_at_the_draws():
    model = pplc.compile(textwrap.dedent("""\
        data y: real[n]
        mu ~ Normal(0, 10)
        sigma ~ HalfNormal(5)
        plate n sharded over devices {
          y ~ Normal(mu, sigma)
        }
        """))
    rng = np.random.default_rng(0)
    y = rng.normal(1.0, 2.0, size=13).astype(np.float32)
    draws = {"mu": rng.normal(size=(3, 7)), "sigma": rng.gamma(2.0, size=(3, 7))}
    idata = _fit(model, draws, {"y": y}).to_arviz()
    ll = idata.log_likelihood["y"]
    assert ll.dims == ("chain", "draw", "n")
    want = stats.norm.logpdf(y.astype(np.float64), draws["mu"][..., None], draws["sigma"][..., None])
    np.testing.assert_allclose(ll.values, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(idata.observed_data["y"].values, y)


def test_log_likelihood_per_item_and_element_for_other_supports():
    # per-item loc (Independent), a LogNormal (a TransformedDistribution in TFP: its own log density, not its
    # inner Normal's), Poisson counts, a Categorical over classes, and a Dirichlet (an event dim: one value per item)
    model = pplc.compile(textwrap.dedent("""\
        data x: real[n]
        data z: real[n]
        data k: int[n]
        data c: int[n]
        data p: real[n, 3]
        a ~ Normal(0, 1)
        logits: real[3] ~ Normal(0, 1)
        conc: real[3] ~ Gamma(2, 1)
        plate n {
          x ~ Normal(a * z, 1.5)
          z ~ LogNormal(a, 0.5)
          k ~ Poisson(exp(a + z))
          c ~ Categorical(logits = logits)
          p ~ Dirichlet(conc)
        }
        """))
    rng = np.random.default_rng(1)
    n = 5
    obs = {"x": rng.normal(size=n), "z": rng.lognormal(size=n), "k": rng.poisson(2.0, size=n),
           "c": rng.integers(0, 3, size=n), "p": rng.dirichlet(np.ones(3), size=n)}
    obs = {k: np.asarray(v, np.int32 if k in ("k", "c") else np.float32) for k, v in obs.items()}
    draws = {"a": rng.normal(size=(2, 4)), "logits": rng.normal(size=(2, 4, 3)), "conc": rng.gamma(2.0, size=(2, 4, 3))}
    ll = _fit(model, draws, obs).pointwise_log_likelihood()
    a = draws["a"][..., None]
    o = {k: v.astype(np.float64) for k, v in obs.items()}
    np.testing.assert_allclose(ll["x"], stats.norm.logpdf(o["x"], a * o["z"], 1.5), rtol=1e-10)
    np.testing.assert_allclose(ll["z"], stats.lognorm.logpdf(o["z"], 0.5, scale=np.exp(a)), rtol=1e-10)
    np.testing.assert_allclose(ll["k"], stats.poisson.logpmf(obs["k"], np.exp(a + o["z"])), rtol=1e-10)
    logp = special.log_softmax(draws["logits"], axis=-1)
    np.testing.assert_allclose(ll["c"], np.take_along_axis(logp, np.broadcast_to(obs["c"], (2, 4, n)), -1),
                               rtol=1e-10)
    want = np.array([[[stats.dirichlet.logpdf(o["p"][i] / o["p"][i].sum(), draws["conc"][ch, d])
                       for i in range(n)] for d in range(4)] for ch in range(2)])
    assert ll["p"].shape == (2, 4, n)
    np.testing.assert_allclose(ll["p"], want, rtol=1e-5)


@pytest.fixture(scope="module")
def eight_schools_run(tmp_path_factory):
    """`pplc run` of eight schools over 2 devices (the model has no sharded plate) to .nc, then its Fit saved as
    .npz (the same `Fit.save` that `pplc run --out fit.npz` uses)."""
    d = tmp_path_factory.mktemp("es")
    nc, npz = str(d / "fit.nc"), str(d / "fit.npz")
    code, err = _cli(["run", ES_MODEL, "--data", ES_DATA, "--chains", "2", "--warmup", "150", "--draws", "150",
                      "--devices", "2", "--quiet", "--out", nc])
    assert code == 0, err
    Fit.load(nc).save(npz)
    return {"nc": (nc, err), "npz": (npz, "")}


def _cli(argv):
    """Run `pplc ARGV` in this process: (exit status, stderr)."""
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, err.getvalue()


def test_eight_schools_output_has_log_likelihood_and_data_and_loo_runs(eight_schools_run, capsys):
    az = arviz()
    nc, err = eight_schools_run["nc"]
    assert err.count("nothing to split") == 1  # --devices 2 on a model without a sharded plate: one note
    idata = az.from_netcdf(nc)
    assert {"posterior", "log_likelihood", "observed_data", "constant_data"} <= set(idata.groups())
    data = json.load(open(ES_DATA))
    np.testing.assert_array_equal(idata.observed_data["y"].values, data["y"])
    np.testing.assert_array_equal(idata.constant_data["sigma"].values, data["sigma"])
    theta = idata.posterior["theta"].values
    want = stats.norm.logpdf(np.asarray(data["y"], float), theta, np.asarray(data["sigma"], float))
    np.testing.assert_allclose(idata.log_likelihood["y"].values, want, rtol=1e-6)
    res = az.loo(idata)
    assert np.isfinite(res.elpd_loo) and res.n_data_points == 8
    assert az.compare({"a": idata, "b": idata}).shape[0] == 2
    # a fit loaded from .npz keeps its observed and constant data
    npz, _ = eight_schools_run["npz"]
    back = Fit.load(npz)
    np.testing.assert_array_equal(back.observed["y"], data["y"])
    np.testing.assert_array_equal(back.constant["sigma"], data["sigma"])
    assert "observed_data" in back.to_arviz().groups()
    # pplc loo: one fit, then two (ArviZ's comparison)
    capsys.readouterr()
    assert cli.main(["loo", nc]) == 0
    out = capsys.readouterr().out
    assert "elpd_loo" in out and "Pareto k" in out
    other = os.path.join(os.path.dirname(nc), "other.nc")
    shutil.copy(nc, other)
    assert cli.main(["loo", nc, other]) == 0
    out = capsys.readouterr().out
    assert "elpd_diff" in out and "weight" in out and "other" in out
    assert cli.main(["loo", npz]) == 1
    assert "--out fit.nc" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- the CLI
def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pplc {pplc.__version__}"


def test_every_run_option_has_help_with_its_default():
    from pplc.cli.options import parser

    ap = parser()
    run = next(a for a in ap._subparsers._group_actions[0].choices.items() if a[0] == "run")[1]
    for action in run._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"{action.option_strings} has no help"
        if action.default not in (None, False, [], "==SUPPRESS=="):
            assert "default" in action.help, f"{action.option_strings}: help does not give the default"
    text = run.format_help()
    for flag in ("--chains", "--warmup", "--draws", "--seed", "--spmd", "--leapfrog"):
        assert flag in text


@pytest.mark.parametrize("kind", ["npz", "json"])
def test_summary_of_a_data_file_is_a_clear_error(kind, capsys):
    path = os.path.join(EXAMPLES, "mnist_logreg_sim.npz" if kind == "npz" else "eight_schools.json")
    assert cli.main(["summary", path]) == 1
    err = capsys.readouterr().err
    assert "not a fit" in err and "internal error" not in err


def test_summary_keeps_small_arrays_whole_in_index_order():
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(2, 60, 12))
    theta[1, :, 10] += 5.0  # chains disagree on element 10: the largest R-hat
    fit = Fit({"theta": theta}, {}, meta={"tracked": []})
    rows = [ln.split()[0] for ln in fit.summary().splitlines() if ln.startswith("theta[")]
    assert rows == [f"theta[{i}]" for i in range(12)]
    rows = [ln.split()[0] for ln in fit.summary(sort="rhat").splitlines() if ln.startswith("theta[")]
    assert rows[0] == "theta[10]" and sorted(rows) == sorted(f"theta[{i}]" for i in range(12))
    text = fit.summary(per_array=4)
    rows = [ln.split()[0] for ln in text.splitlines() if ln.startswith("theta[")]
    assert "theta[10]" in rows and len(rows) == 4
    assert rows == sorted(rows, key=lambda r: int(r[6:-1]))  # the chosen ones, in index order
    assert "... and 8 more of theta" in text


def test_trace_plots_order_elements_numerically():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 30, 40, 10))
    for i, j in [(5, 1), (33, 8), (10, 0)]:
        w[1, :, i, j] += 4.0  # the three of largest R-hat
    series = plots._chosen_elements("w", w, 3)
    assert list(series) == ["w[5, 1]", "w[10, 0]", "w[33, 8]"]
    fig = plots.trace_figure(series)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[::2] == ["w[5, 1]", "w[10, 0]", "w[33, 8]"]
    plots.pyplot().close(fig)


def test_progress_bar_uses_the_terminal_width(tmp_path, monkeypatch):
    # stdin a pseudo-terminal that reports no size (rich alone then falls back to 80 columns), stderr 200 wide
    monkeypatch.delenv("COLUMNS", raising=False)
    real = os.get_terminal_size

    def size(fd=1):
        if fd == 0:
            return os.terminal_size((0, 0))
        if fd == stream.fileno():
            return os.terminal_size((200, 50))
        return real(fd)

    with open(tmp_path / "bar", "w") as stream:
        monkeypatch.setattr(os, "get_terminal_size", size)
        p = progress.Progress(100, 100, stream=stream, force_terminal=True)
        assert p._console.width == 200
        p.start()
        p.update(150, "sampling", {"n_leapfrog": np.full((150, 2), 7.0), "step_size": np.full((150, 2), 0.25),
                                   "diverging": np.zeros((150, 2), bool)})
        p.close()
    text = open(tmp_path / "bar").read()
    assert "150/200" in text and "step 0.25" in text and "ETA" in text
    assert max(len(ln) for ln in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).splitlines()) > 80


def test_arviz_refactor_warning_is_not_shown(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "a"), PYTHONWARNINGS="default")
    ours = subprocess.run([sys.executable, "-c", "from pplc.runtime.output.az import arviz; arviz()"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert ours.returncode == 0, ours.stderr
    assert "refactor" not in ours.stderr
    env["XDG_CACHE_HOME"] = str(tmp_path / "b")
    plain = subprocess.run([sys.executable, "-c", "import arviz"], env=env, capture_output=True, text=True, timeout=120)
    if "refactor" not in plain.stderr:
        pytest.skip("this ArviZ version does not warn about its refactor")


def test_predict_prints_no_dtype_truncation_warnings(eight_schools_run, capsys):
    npz, _ = eight_schools_run["npz"]
    capsys.readouterr()
    assert cli.main(["predict", ES_MODEL, "--fit", npz, "--data", ES_DATA]) == 0
    captured = capsys.readouterr()
    assert "y: predictive means" in captured.out
    assert "truncated" not in captured.err and "Explicitly requested dtype" not in captured.err


# ---------------------------------------------------------------------------------------------------- README
def test_more_devices_after_a_computation_on_one(tmp_path):
    # JAX fixes the host device count when its backend starts: importing pplc first asks for 8
    script = tmp_path / "order.py"
    script.write_text(textwrap.dedent(f"""\
        import pplc
        model = pplc.compile_file({ES_MODEL!r})
        params = {{"mu": 1.0, "tau": 2.0, "theta_raw": [0.1 * i for i in range(8)]}}
        one = model.log_prob(params, {ES_DATA!r}, devices=1)
        four = model.log_prob(params, {ES_DATA!r}, devices=4)
        assert abs(one - four) <= 1e-5 * abs(one), (one, four)
        print("ORDER OK")
        """))
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["XLA_FLAGS"] = TEST_XLA_FLAGS  # no device count from outside: the script's own process decides
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ORDER OK" in proc.stdout


@pytest.mark.slow
def test_readme_python_snippet_runs_top_to_bottom(tmp_path):
    text = open(os.path.join(ROOT, "README.md")).read()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "devices=4" in code and "progress=True" in code
    fast = code.replace("warmup=1000, draws=1000", "warmup=100, draws=100")
    assert fast != code  # the snippet's run, shortened for the test
    check = textwrap.dedent("""
        one = model.log_prob(params, "examples/eight_schools.json", devices=1)
        four = model.log_prob(params, "examples/eight_schools.json", devices=4)
        assert abs(one - four) <= 1e-4 * abs(one), (one, four)
        assert np.isfinite(loo.elpd_loo)
        print("SNIPPET OK")
        """)
    script = tmp_path / "snippet.py"
    script.write_text(fast + "\nimport numpy as np\n" + check)
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["XLA_FLAGS"] = TEST_XLA_FLAGS  # no device count from outside: the script's own process decides
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SNIPPET OK" in proc.stdout
