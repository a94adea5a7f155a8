"""Long runs: checkpoints survive SIGKILL and resume to the same draws; Ctrl-C keeps the draws so far;
summaries warn when chains disagree; plots, .nc output, progress lines."""
import contextlib
import io
import json
import os
import select
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import EXAMPLES, TEST_XLA_FLAGS

import pplc
from pplc import cli
from pplc.runtime.sampling import checkpoint as ckpt
from pplc.runtime.sampling import hostloop
from pplc.runtime.output import Fit
from pplc.runtime.output.progress import Progress

MODEL = os.path.join(EXAMPLES, "eight_schools.ppl")
DATA = os.path.join(EXAMPLES, "eight_schools.json")
# A short HMC run; every run below uses the same block size, so the processes share one compiled program
# through JAX's persistent compilation cache.
RUN = [MODEL, "--data", DATA, "--sampler", "hmc", "--leapfrog", "5", "--chains", "2", "--warmup", "40",
       "--draws", "60", "--seed", "3", "--block", "10"]
STOP_AT = 60  # the checkpoint (iteration 60: 20 draws in) after which the runs below are killed or interrupted

# Runs `pplc run` in this process after making checkpoint.save wait, once it has written the checkpoint at
# iteration >= STOP_AT, for a signal: the test then kills or interrupts the run at a known point. SIGINT is
# blocked from the start (so every thread, JAX's too, inherits the block and the signal waits for the pausing
# thread instead of landing in another one), waited for with sigtimedwait after the line is printed (no race
# with a signal that comes early), then raised again for pplc's own handler, as a Ctrl-C at that moment would
# be. SIGINT gets Python's usual handler first, as in a terminal: a child of a background job or of a CI
# runner inherits SIGINT ignored, and would then sample to the end. A child nobody signals (its test died)
# exits after PAUSE_S on its own.
PAUSE_S = 600
PAUSING = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT}})  # in every thread started from here on (JAX's too)
from pplc import cli
from pplc.runtime.sampling import checkpoint
save = checkpoint.save
def pausing_save(path, state):
    save(path, state)
    if state.iteration >= {stop} and not getattr(pausing_save, "done", False):
        pausing_save.done = True
        signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT}})
        print("CHECKPOINTED", state.iteration, flush=True)
        if signal.sigtimedwait({{signal.SIGINT}}, {pause_s}) is None:
            os._exit(99)
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
    e["XLA_FLAGS"] = TEST_XLA_FLAGS  # no device count from outside: `--devices` decides
    return e


def pplc_run(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "pplc", "run", *args], env=env, capture_output=True,
                          text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """An uninterrupted run (no progress, no summary)."""
    out = str(tmp_path_factory.mktemp("ref") / "ref.npz")
    r = pplc_run(RUN + ["--out", out, "--quiet"], env)
    assert r.returncode == 0, r.stderr
    assert "warmup" not in r.stderr and "r_hat" not in r.stdout  # --quiet: no progress, no summary
    return Fit.load(out)


@contextlib.contextmanager
def pausing(args, env, stderr_path):
    """`pplc run ARGS` in a child process paused after its checkpoint at iteration >= STOP_AT: (the process,
    that iteration). Its stderr goes to `stderr_path`. However the test ends, the child does not outlive it."""
    with open(stderr_path, "w") as err:
        p = subprocess.Popen([sys.executable, "-c", PAUSING.format(stop=STOP_AT, pause_s=PAUSE_S), "run", *args],
                             env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        ready = select.select([p.stdout], [], [], PAUSE_S)[0]  # the child's first line: when it has checkpointed
        line = p.stdout.readline() if ready else ""
        if not line.startswith("CHECKPOINTED"):
            p.kill()
            out, _ = p.communicate()
            raise AssertionError(f"no checkpoint: {line}{out}{open(stderr_path).read()}")
        yield p, int(line.split()[1])
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()


def same(a: dict, b: dict, n=None):
    assert sorted(a) == sorted(b)
    for k in a:
        x = a[k] if n is None else a[k][:, :n]
        assert np.array_equal(x, b[k]), k


def test_a_run_killed_after_a_checkpoint_resumes_to_the_draws_of_an_uninterrupted_run(tmp_path, env, reference):
    ck, out = str(tmp_path / "ck.npz"), str(tmp_path / "fit.nc")
    with pausing(RUN + ["--checkpoint", ck, "--checkpoint-every", "20", "--out", out], env,
                 tmp_path / "stderr") as (p, at):
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
    """SIGINT while sampling (sent while the run is paused at a checkpoint, so never too early or too late):
    exit 130, the draws up to the last finished block written to --out with a note, and the checkpoint."""
    ck, out = str(tmp_path / "ck.npz"), str(tmp_path / "fit.npz")
    with pausing(RUN + ["--checkpoint", ck, "--checkpoint-every", "20", "--out", out], env,
                 tmp_path / "stderr") as (p, at):
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=PAUSE_S)
    err = (tmp_path / "stderr").read_text()
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
    # mean, MCSE, sd, quantiles, bulk and tail ESS, R-hat; a large array (over 20) condensed to its 20 worst R-hat
    assert text.splitlines()[1].split() == ["mean", "mcse", "sd", "5%", "50%", "95%", "ess_bulk", "ess_tail", "r_hat"]
    assert "... and 10 more of theta (r_hat <=" in text


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
    def blocks(warmup, draws, n, start=0, every=None):
        out, it = [], start
        while it < warmup + draws:
            phase, k = hostloop.clamp_block(it, n, warmup, warmup + draws, every)
            out.append((phase, it, k))
            it += k
        return out

    assert blocks(25, 30, 10) == [("warmup", 0, 10), ("warmup", 10, 10), ("warmup", 20, 5), ("sampling", 25, 10),
                                  ("sampling", 35, 10), ("sampling", 45, 10)]
    assert blocks(25, 30, 10, start=45) == [("sampling", 45, 10)]
    assert blocks(25, 30, 10, every=15) == [("warmup", 0, 10), ("warmup", 10, 5), ("warmup", 15, 10),
                                            ("sampling", 25, 5), ("sampling", 30, 10), ("sampling", 40, 5),
                                            ("sampling", 45, 10)]  # nor a checkpoint boundary


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


def test_fit_files_are_written_atomically(tmp_path, monkeypatch):
    """Fit.save over an existing file: while the new file is half written, a reader finds the old one whole;
    a save that fails half way (an error, a Ctrl-C) leaves the old file as it was and no temporary file."""
    path = str(tmp_path / "fit.npz")
    old, new = synthetic_fit(False, n=10), synthetic_fit(True, n=10, seed=1)
    old.save(path)
    savez, seen = np.savez, []

    def savez_watched(file, **arrays):  # writes half the file, lets a reader look, then writes the rest
        buf = io.BytesIO()
        savez(buf, **arrays)
        data = buf.getvalue()
        file.write(data[:len(data) // 2])
        file.flush()
        seen.append(Fit.load(path).draws)
        file.write(data[len(data) // 2:])

    monkeypatch.setattr(np, "savez", savez_watched)
    new.save(path)
    assert len(seen) == 1
    same(seen[0], old.draws)
    same(Fit.load(path).draws, new.draws)
    assert os.listdir(tmp_path) == ["fit.npz"]
    with np.load(path) as f:
        assert json.loads(str(f["meta/json"]))["dims"]["theta"] == ["schools"]

    for exc in (OSError("No space left on device"), KeyboardInterrupt()):
        def savez_failing(file, **arrays):
            file.write(b"PK\x03\x04 the first bytes of a zip file")
            raise exc

        monkeypatch.setattr(np, "savez", savez_failing)
        with pytest.raises(type(exc)):
            synthetic_fit(False, n=10, seed=2).save(path)
        same(Fit.load(path).draws, new.draws)
        assert os.listdir(tmp_path) == ["fit.npz"]


def test_block_sizes_grow_from_one_toward_the_target_and_stay_under_the_cap():
    """BlockSizer, fed synthetic timings: adaptive blocks start at 1 and grow by at most GROWTH per call, then
    hold at the size that takes `target_s` at the measured rate (or the cap, if that is smaller); `fixed`
    blocks are `fixed` (under the cap) from the first call on."""
    from pplc.runtime.sampling.hostloop import GROWTH, BlockSizer

    def sizes(cap, seconds_per_iteration, calls=12, target_s=1.0, fixed=None):
        sizer, done, elapsed, out = BlockSizer(cap, fixed, target_s=target_s), 0, 0.0, []
        for i in range(calls):
            n = sizer.next()
            out.append(n)
            done += n
            elapsed += n * seconds_per_iteration(i)
            sizer.observe(done, elapsed)
        return out

    fast = sizes(1000, lambda i: 1e-4)  # 10,000 iterations a second: the cap, reached by growing
    assert fast == [1, GROWTH, GROWTH ** 2, GROWTH ** 3, GROWTH ** 4, 1000] + [1000] * 6
    # (timings in powers of two, so that the rates are exact)
    assert sizes(10_000, lambda i: 2**-7) == [1, 4, 16, 64] + [128] * 8  # 1 s of work is 128 iterations
    assert sizes(10_000, lambda i: 2**-6, target_s=0.5) == [1, 4, 16] + [32] * 9
    assert sizes(10_000, lambda i: 3.0) == [1] * 12  # an iteration costs more than the target: one per call
    # slower iterations later on (a harder region): the blocks shrink toward the rate measured so far
    later = sizes(10_000, lambda i: 2**-10 if i < 6 else 2**-4, calls=30)
    assert later[:6] == [1, 4, 16, 64, 256, 1024] and later[-1] < 2 * 16
    for seq in [fast, later]:
        assert all(1 <= b <= max(1, a * GROWTH) for a, b in zip(seq, seq[1:]))
    assert sizes(1000, lambda i: 1e-4, fixed=10) == [10] * 12
    assert sizes(8, lambda i: 1e-4, fixed=10) == [8] * 12
    sizer = BlockSizer(100)
    sizer.observe(0, 0.0)  # nothing measured yet: no rate
    assert [sizer.next() for _ in range(4)] == [1, 4, 16, 64]
