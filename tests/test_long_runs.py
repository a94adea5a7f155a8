"""Long runs: checkpoints survive SIGKILL and resume to the same draws; Ctrl-C keeps the draws so far;
summaries warn when chains disagree; plots, .nc output, progress lines."""
import io
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import EXAMPLES

import pplc
from pplc.runtime import checkpoint as ckpt
from pplc.runtime import cli, hostloop
from pplc.runtime.output import Fit
from pplc.runtime.progress import Progress

MODEL = os.path.join(EXAMPLES, "eight_schools.ppl")
DATA = os.path.join(EXAMPLES, "eight_schools.json")
# A short HMC run; every run below uses the same block size, so the processes share one compiled program
# through JAX's persistent compilation cache.
RUN = [MODEL, "--data", DATA, "--sampler", "hmc", "--leapfrog", "5", "--chains", "2", "--warmup", "40",
       "--draws", "60", "--seed", "3", "--block", "10"]
STOP_AT = 60  # the checkpoint (iteration 60: 20 draws in) after which the runs below are killed or interrupted

# Runs `pplc run` in this process after making checkpoint.save wait, once it has written the checkpoint at
# iteration >= STOP_AT, for a signal: the test then kills or interrupts the run at a known point. SIGINT is
# blocked before the line is printed and waited for with sigwait (no race with a signal that comes early),
# then raised again for pplc's own handler, as a Ctrl-C at that moment would be.
PAUSING = """
import signal, sys
from pplc.runtime import checkpoint, cli
save = checkpoint.save
def pausing_save(path, state):
    save(path, state)
    if state.iteration >= {stop} and not getattr(pausing_save, "done", False):
        pausing_save.done = True
        signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT}})
        print("CHECKPOINTED", state.iteration, flush=True)
        signal.sigwait({{signal.SIGINT}})
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})
        signal.raise_signal(signal.SIGINT)
checkpoint.save = pausing_save
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    e = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", PYTHONUNBUFFERED="1")
    e.pop("XLA_FLAGS", None)
    return e


def pplc_run(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "pplc.runtime.cli", "run", *args], env=env, capture_output=True,
                          text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """An uninterrupted run (no progress, no summary)."""
    out = str(tmp_path_factory.mktemp("ref") / "ref.npz")
    r = pplc_run(RUN + ["--out", out, "--quiet"], env)
    assert r.returncode == 0, r.stderr
    assert "warmup" not in r.stderr and "r_hat" not in r.stdout  # --quiet: no progress, no summary
    return Fit.load(out)


def start_pausing(args, env):
    p = subprocess.Popen([sys.executable, "-c", PAUSING.format(stop=STOP_AT), "run", *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("CHECKPOINTED"):
        p.kill()
        raise AssertionError(f"no checkpoint: {line}{p.stdout.read()}{p.stderr.read()}")
    return p, int(line.split()[1])


def same(a: dict, b: dict, n=None):
    assert sorted(a) == sorted(b)
    for k in a:
        x = a[k] if n is None else a[k][:, :n]
        assert np.array_equal(x, b[k]), k


def test_a_run_killed_after_a_checkpoint_resumes_to_the_draws_of_an_uninterrupted_run(tmp_path, env, reference):
    ck, out = str(tmp_path / "ck.npz"), str(tmp_path / "fit.nc")
    p, at = start_pausing(RUN + ["--checkpoint", ck, "--checkpoint-every", "20", "--out", out], env)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL and not os.path.exists(out)
    state = ckpt.load(ck)
    assert state.iteration == at == STOP_AT and state.draws[0].shape[0] == STOP_AT - 40
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp.npz")]  # written atomically
    r = pplc_run(RUN + ["--checkpoint", ck, "--checkpoint-every", "20", "--resume", "--out", out], env)
    assert r.returncode == 0, r.stderr
    assert f"resuming from {ck} at iteration {STOP_AT} of 100" in r.stderr
    assert "sampling 100/100" in r.stderr  # plain progress lines (not a terminal)
    fit = Fit.load(out)  # ArviZ InferenceData, netCDF
    same(fit.draws, reference.draws)
    same(fit.trace, reference.trace)
    assert ckpt.load(ck).iteration == 100

    # A checkpoint is refused for another run, with a message that says why (before anything is compiled).
    model = pplc.compile_file(MODEL)
    with pytest.raises(pplc.PPLError) as e:
        model.sample(DATA, chains=2, warmup=40, draws=60, sampler="hmc", leapfrog=5, seed=4, checkpoint=ck,
                     resume=True)
    msg = e.value.render()
    assert "does not match this run" in msg and "seed 3 then, 4 now" in msg and "--resume" in msg


def test_ctrl_c_writes_the_draws_so_far_to_out_with_a_note(tmp_path, env, reference):
    ck, out = str(tmp_path / "ck.npz"), str(tmp_path / "fit.npz")
    p, at = start_pausing(RUN + ["--checkpoint", ck, "--checkpoint-every", "20", "--out", out], env)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    n = at - 40
    assert f"interrupted after {n} of 60 draws" in err and f"wrote the {n} draws so far to {out}" in err
    fit = Fit.load(out)
    assert fit.draws["theta"].shape == (2, n, 8)
    same(reference.draws, fit.draws, n)  # the first n draws of the uninterrupted run
    assert any("interrupted" in note for note in fit.meta["notes"])
    assert "note: interrupted" in fit.summary()
    assert ckpt.load(ck).iteration == at


# ---------------------------------------------------------------------------------------------------- summary
def synthetic_fit(disagree: bool, n=1000, seed=0, **trace):
    rng = np.random.default_rng(seed)
    shift = np.arange(4)[:, None] * (1.0 if disagree else 0.0)
    draws = {"mu": rng.normal(size=(4, n)) + shift,
             "theta": rng.normal(size=(4, n, 30)) + shift[..., None]}
    return Fit(draws, dict(trace), meta={"config": {"sampler": "nuts", "warmup": 100, "max_tree_depth": 10}},
               dims={"mu": [], "theta": ["schools"]})


def test_summary_warns_when_chains_disagree_and_not_when_they_agree():
    good = synthetic_fit(False).summary()
    assert "warning" not in good
    bad = synthetic_fit(True)
    text = bad.summary()
    assert "warning: R-hat above 1.01 for 31 of 31 elements" in text and "try: run longer" in text
    assert [w.kind for w in bad.warnings()] == ["rhat", "ess"]
    # mean, MCSE, sd, quantiles, bulk and tail ESS, R-hat; a large array condensed, worst R-hat first
    assert text.splitlines()[1].split() == ["mean", "mcse", "sd", "5%", "50%", "95%", "ess_bulk", "ess_tail", "r_hat"]
    assert "... and 22 more of theta (r_hat <=" in text


def test_summary_warns_about_divergences_tree_depth_and_energy():
    rng = np.random.default_rng(1)
    div = np.zeros((4, 1000), bool)
    div[1, 5] = True
    depth = np.full((4, 1000), 3)
    depth[2, :50] = 10
    energy = np.cumsum(rng.normal(size=(4, 1000)), axis=1)  # a random walk: E-BFMI near 0
    fit = synthetic_fit(False, diverging=div, tree_depth=depth, energy=energy)
    kinds = [w.kind for w in fit.warnings()]
    assert kinds == ["divergences", "treedepth", "ebfmi"]
    text = fit.summary()
    assert "1 of 4000 iterations after warmup ended with a divergence" in text and "--target-accept" in text
    assert "50 of 4000 iterations after warmup hit the maximum tree depth (10" in text
    assert "E-BFMI below 0.3 in chains 0 (" in text
    healthy = synthetic_fit(False, diverging=np.zeros((4, 1000), bool), tree_depth=np.full((4, 1000), 3),
                            energy=rng.normal(size=(4, 1000)))
    assert healthy.warnings() == []


def test_pplc_summary_of_a_saved_fit(tmp_path, capsys):
    path = str(tmp_path / "fit.npz")
    synthetic_fit(True).save(path)
    assert cli.main(["summary", path]) == 0
    assert "R-hat above 1.01" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------- outputs
def test_nc_output_is_arviz_inference_data(tmp_path):
    import arviz as az

    rng = np.random.default_rng(2)
    fit = Fit({"w": rng.normal(size=(2, 50, 3, 3))},
              {"log_prob": rng.normal(size=(2, 50)), "accept_ratio": rng.uniform(size=(2, 50)),
               "warmup_log_prob": rng.normal(size=(2, 20)), "accuracy": rng.uniform(size=(2, 50))},
              {"loop_s": 1.0}, "m.ppl", dims={"w": ["dim", "dim"], "accuracy": [], "y": ["n"]},
              meta={"tracked": ["accuracy"]}, observed={"y": np.arange(5)})
    path = str(tmp_path / "fit.nc")
    fit.save(path)
    idata = az.from_netcdf(path)
    assert {"posterior", "sample_stats", "observed_data", "warmup_sample_stats"} <= set(idata.groups())
    assert idata.posterior["w"].dims == ("chain", "draw", "dim", "dim_1")
    assert "accuracy" in idata.posterior and "lp" in idata.sample_stats and "acceptance_rate" in idata.sample_stats
    assert list(idata.observed_data["y"].values) == list(range(5))
    back = Fit.load(path)
    same(back.draws, fit.draws)
    same(back.trace, fit.trace)
    assert back.model_name == "m.ppl" and back.meta["tracked"] == ["accuracy"]


# ---------------------------------------------------------------------------------------------------- plots
def test_pplc_plot_writes_png_files_with_content(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(3)
    fit = Fit({"mu": rng.normal(size=(4, 200)), "theta": rng.normal(size=(4, 200, 10))},
              {"log_prob": -rng.gamma(5, size=(4, 200)), "step_size": np.full((4, 200), 0.3),
               "warmup_log_prob": -rng.gamma(5, size=(4, 50)) * 3, "warmup_step_size": rng.uniform(0.1, 1, (4, 50)),
               "accuracy": rng.uniform(0.8, 0.9, size=(4, 200))},
              meta={"tracked": ["accuracy"]})
    src = str(tmp_path / "fit.npz")
    fit.save(src)
    outdir = str(tmp_path / "plots")
    assert cli.main(["plot", src, "-o", outdir]) == 0
    names = sorted(os.listdir(outdir))
    assert names == ["log_density.png", "rank_mu.png", "rank_theta.png", "step_size.png", "trace_mu.png",
                     "trace_theta.png", "track_accuracy.png"]
    for name in names:
        img = mpimg.imread(os.path.join(outdir, name))
        h, w = img.shape[:2]
        assert h >= 250 and w >= 400, (name, img.shape)
        ink = np.mean(np.any(img[..., :3] < 0.9, axis=-1))  # the share of pixels that are not (near) white
        assert 0.01 < ink < 0.9, (name, ink)
        assert img[..., :3].std() > 0.05, name


# ---------------------------------------------------------------------------------------------------- pieces
def test_blocks_never_cross_from_warmup_into_sampling():
    blocks = list(hostloop.schedule(25, 30, 10))
    assert blocks == [("warmup", 0, 10), ("warmup", 10, 10), ("warmup", 20, 5), ("sampling", 25, 10),
                      ("sampling", 35, 10), ("sampling", 45, 10)]
    assert list(hostloop.schedule(25, 30, 10, start=45)) == [("sampling", 45, 10)]


def test_progress_lines_on_a_non_terminal():
    stream = io.StringIO()
    p = Progress(100, 100, stream=stream)
    assert not p.terminal
    p.compiled(2.5)
    p.start()
    for it in range(20, 201, 20):
        phase = "warmup" if it <= 100 else "sampling"
        p.update(it, phase, {"diverging": np.ones((20, 2), bool) if it == 40 else np.zeros((20, 2), bool),
                             "n_leapfrog": np.full((20, 2), 7), "step_size": np.full((20, 2), 0.25)})
    p.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "start-up and compilation: 2.5 s"
    assert lines[1].startswith("warmup 20/200 (10%)") and "leapfrog/s" in lines[1] and "ETA" in lines[1]
    assert "40 divergent" in lines[2] and "step 0.25" in lines[2]
    assert lines[-1].startswith("sampling 200/200 (100%)") and "0 divergent" in lines[-1] and "done" in lines[-1]


def test_progress_bar_on_a_terminal_and_quiet():
    stream = io.StringIO()
    p = Progress(10, 10, stream=stream, force_terminal=True)
    p.start()
    p.update(10, "warmup", {"n_leapfrog": np.full((10, 2), 3)})
    p.update(20, "sampling", {"n_leapfrog": np.full((10, 2), 3)})
    p.close()
    assert "20/20" in stream.getvalue() and "sampling" in stream.getvalue()
    quiet = io.StringIO()
    p = Progress(10, 10, stream=quiet, enabled=False)
    p.start()
    p.update(20, "sampling", {})
    p.close()
    assert quiet.getvalue() == ""


def test_fit_files_are_written_atomically(tmp_path):
    path = str(tmp_path / "fit.npz")
    synthetic_fit(False, n=10).save(path)
    synthetic_fit(True, n=10).save(path)  # over an existing file
    assert os.listdir(tmp_path) == ["fit.npz"]
    with np.load(path) as f:
        assert json.loads(str(f["meta/json"]))["dims"]["theta"] == ["schools"]
