"""End to end: generated programs run on their own (in a fresh Python, which asks for its 8 host devices before
JAX starts), and `pplc run` samples the examples on 8 devices (in this process, which has them: tests/conftest.py).
Small warmup and draws: the point is that the programs run on 8 devices and produce finite draws that move, with
every output in its documented shape, not the quality of the posterior.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import pplc_in_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
DEVICES = 8


def _run(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def _moves(x: np.ndarray, what: str):
    """Finite, and not one value repeated over the draws of every chain."""
    assert np.all(np.isfinite(x)), f"{what} has non-finite draws"
    assert np.any(np.abs(np.diff(x, axis=1)) > 0), f"{what} never changes from draw to draw"


# The two seed models: (example, data file, latents and their shapes at that data)
SEED_MODELS = {
    "mnist_logreg": ("mnist_logreg_sim.npz", {"w": (16, 10), "b": (10,)}),
    "movielens_mf": ("movielens_mf_sim.npz", {"movie_embedding": (40, 20), "movie_bias": (40,),
                                              "user_embedding": (60, 20), "user_bias": (60,)}),
}


@pytest.mark.parametrize("name", sorted(SEED_MODELS))
def test_generated_program_runs_on_its_own(tmp_path, name):
    """`pplc compile X -o x.py && python x.py --data ... --devices 8`: the program needs nothing from pplc."""
    data, shapes = SEED_MODELS[name]
    program = tmp_path / f"{name}_tfp.py"
    assert pplc_in_process("compile", os.path.join(EXAMPLES, f"{name}.ppl"), "-o", program).returncode == 0
    out = tmp_path / "fit.npz"
    chains, draws = 2, 10
    # Run from the temporary folder with a plain interpreter: no pplc import is involved.
    _run([sys.executable, str(program), "--data", os.path.join(EXAMPLES, data), "--devices", str(DEVICES),
          "--chains", str(chains), "--warmup", "20", "--draws", str(draws), "--leapfrog", "5",
          "--out", str(out)], cwd=str(tmp_path))
    assert "import pplc" not in program.read_text()
    with np.load(out) as f:
        fit = {k: f[k] for k in f.files}
    for latent, shape in shapes.items():
        assert fit[latent].shape == (chains, draws) + shape, latent
        _moves(fit[latent], latent)
    assert fit["trace/log_prob"].shape == (chains, draws)
    _moves(fit["trace/log_prob"], "trace/log_prob")


# `pplc run` on the three examples: (example, data file, {latent or deterministic: shape})
RUNS = {
    "eight_schools": ("eight_schools.json", {"mu": (), "tau": (), "theta_raw": (8,), "theta": (8,)}),
    "mnist_logreg": ("mnist_logreg_sim.npz", {"w": (16, 10), "b": (10,)}),
    "movielens_mf": ("movielens_mf_sim.npz", SEED_MODELS["movielens_mf"][1]),
}


# Eight schools has no sharded plate: its run over several devices is tests/test_workflow.py's (2 devices); here on
# 8 only in the slow profile.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "eight_schools" else n
                                  for n in sorted(RUNS)])
def test_pplc_run_samples_the_example_on_8_devices(tmp_path, name):
    data, shapes = RUNS[name]
    out = tmp_path / "fit.npz"
    chains, draws = 2, 12
    # Eight schools' funnel needs more than 30 warmup iterations for a step size that HMC's 5 steps accept
    # (seed 1: acceptance 0.04 after 30, a chain that never moves; 0.81 after 100)
    warmup = "100" if name == "eight_schools" else "30"
    r = pplc_in_process("run", os.path.join(EXAMPLES, f"{name}.ppl"), "--data", os.path.join(EXAMPLES, data),
                        "--devices", DEVICES, "--chains", chains, "--warmup", warmup, "--draws", draws,
                        "--sampler", "hmc", "--leapfrog", "5", "--seed", "1", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(out) as f:
        fit = {k: f[k] for k in f.files}
    for site, shape in shapes.items():
        assert fit[site].shape == (chains, draws) + shape, (site, fit[site].shape)
        _moves(fit[site], site)
    for stat in ("log_prob", "step_size", "accept_ratio"):
        assert fit[f"trace/{stat}"].shape == (chains, draws), stat
        assert np.all(np.isfinite(fit[f"trace/{stat}"])), stat
    _moves(fit["trace/log_prob"], "trace/log_prob")
    assert np.all((fit["trace/accept_ratio"] >= 0) & (fit["trace/accept_ratio"] <= 1))
    assert np.all(fit["trace/step_size"] > 0)
    if name == "mnist_logreg":  # the tracked accuracy is in the trace, a fraction of the examples
        acc = fit["trace/accuracy"]
        assert acc.shape == (chains, draws) and np.all((acc >= 0) & (acc <= 1))
        assert np.all(np.abs(acc * 1000 - np.round(acc * 1000)) < 1e-3)  # k / 1000 examples
