"""The `startup` figure of `python -m benchmarks`: eight schools from launch to the first sampling iteration, pplc
against NumPyro, with an empty compilation cache (a first run) and with the cache of an earlier run (a second run).

Each run is a fresh process timed by this one from its launch (`subprocess.Popen`) to a line the child prints
when its first sampling iteration is about to run; the child is then stopped (what comes after is sampling).
- pplc: `python -m pplc run examples/eight_schools.ppl --data examples/eight_schools.json` (the defaults: 4
  chains, 1000 warmup + 1000 draws), PPLC_CACHE_DIR an empty folder (first run) or the folder of an earlier run
  (second run). The mark is pplc's own line `start-up and compilation: X s`, printed once the block program is
  compiled, right before the first block of iterations is dispatched (X, pplc's own figure, is kept too: it
  counts from the initial values on, after the imports, the front end and the tracing of the programs).
- NumPyro: the same non-centred model and data, `MCMC(NUTS(model), num_warmup=1000, num_samples=1000,
  num_chains=4, chain_method="vectorized", progress_bar=False).run(...)`, its NUTS kernel's `sample` calling
  `jax.debug.callback` at the start of each iteration: the mark is the first call (the start of the first
  warmup iteration, after NumPyro's initialisation and the compilation of its sampling loop). First run: JAX
  without a persistent cache (NumPyro's default); second run: JAX's persistent compilation cache in a folder an
  earlier run filled (`jax_compilation_cache_dir`, every program kept).
- `python -c "import pplc"` in the same rounds: the floor of any pplc run (Python, JAX, TFP).
Rounds are interleaved (the order of the five rotates every round); figures are medians with [min-max] over
rounds, and the ratios are taken within a round.

    python -m benchmarks --only startup [--startup-reps 5]
    python benchmarks/startup.py [--reps 5]            # print the JSON only
"""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = os.path.join("examples", "eight_schools.ppl")
DATA = os.path.join("examples", "eight_schools.json")
PPLC = ["-m", "pplc", "run", MODEL, "--data", DATA]
PPLC_MARK = re.compile(r"start-up and compilation: ([0-9.]+) s")
NUMPYRO_MARK = re.compile(r"^FIRST ITERATION")
TIMEOUT_S = 300

NUMPYRO_CHILD = r'''
import json, os, sys
import jax
cache = os.environ.get("STARTUP_JAX_CACHE")
if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

with open(sys.argv[1]) as f:
    d = json.load(f)
y, sigma = np.asarray(d["y"], np.float32), np.asarray(d["sigma"], np.float32)


def model(sigma, y):
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    with numpyro.plate("schools", len(y)):
        theta_raw = numpyro.sample("theta_raw", dist.Normal(0, 1))
        theta = numpyro.deterministic("theta", mu + tau * theta_raw)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


seen = []


def mark(i):
    if not seen:
        seen.append(i)
        print("FIRST ITERATION", flush=True)


class Marked(NUTS):
    def sample(self, state, model_args, model_kwargs):
        jax.debug.callback(mark, state.i)
        return super().sample(state, model_args, model_kwargs)


mcmc = MCMC(Marked(model), num_warmup=1000, num_samples=1000, num_chains=4, chain_method="vectorized",
            progress_bar=False)
mcmc.run(jax.random.PRNGKey(0), sigma, y)
'''


def launch(args, env, mark, timeout=TIMEOUT_S):
    """Seconds from launching `python ARGS` to its first output line matching `mark`, and the match; the child
    is stopped there."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail = []
    try:
        for line in proc.stdout:
            m = mark.search(line)
            if m:
                return time.perf_counter() - t, m
            tail = (tail + [line])[-20:]
            if time.perf_counter() - t > timeout:
                break
        raise RuntimeError(f"no mark from {' '.join(args[:4])}...; its last lines:\n{''.join(tail)}")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PPLC_NO_CACHE", "PPLC_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR", "XLA_FLAGS")}
    env.update(extra)
    return env


def _spread(xs) -> dict:
    return {"median": round(statistics.median(xs), 4), "min": round(min(xs), 4), "max": round(max(xs), 4),
            "n": len(xs)}


def measure(reps: int, spread=_spread) -> dict:
    """The figure: seconds from launch to the first sampling iteration (see the module's docstring)."""
    work = tempfile.mkdtemp(prefix="pplc-startup-")
    pplc_warm, numpyro_warm = os.path.join(work, "pplc-warm"), os.path.join(work, "numpyro-warm")
    child = os.path.join(work, "numpyro_eight_schools.py")
    with open(child, "w") as f:
        f.write(NUMPYRO_CHILD)
    out = os.path.join(work, "fit.npz")
    numpyro_args = [child, os.path.join(ROOT, DATA)]
    reported = {"pplc first": [], "pplc second": []}

    def pplc(cache):
        s, m = launch(PPLC + ["--out", out], _env(PPLC_CACHE_DIR=cache), PPLC_MARK)
        return s, float(m.group(1))

    def first_pplc(r):
        cache = os.path.join(work, f"pplc-cold{r}")
        try:
            s, x = pplc(cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        reported["pplc first"].append(x)
        return s

    def second_pplc(r):
        s, x = pplc(pplc_warm)
        reported["pplc second"].append(x)
        return s

    runs = {
        "pplc first": first_pplc,
        "pplc second": second_pplc,
        "NumPyro first": lambda r: launch(numpyro_args, _env(), NUMPYRO_MARK)[0],
        "NumPyro second": lambda r: launch(numpyro_args, _env(STARTUP_JAX_CACHE=numpyro_warm), NUMPYRO_MARK)[0],
        "import pplc": lambda r: launch(["-c", "import pplc; print('IMPORTED', flush=True)"], _env(),
                                        re.compile("IMPORTED"))[0],
    }
    try:
        pplc(pplc_warm)  # fill the caches of the second runs
        launch(numpyro_args, _env(STARTUP_JAX_CACHE=numpyro_warm), NUMPYRO_MARK)
        names = list(runs)
        times = {n: [] for n in names}
        for r in range(reps):
            for n in names[r % len(names):] + names[:r % len(names)]:
                times[n].append(runs[n](r))
            print(f"start-up round {r}: " + ", ".join(f"{n} {times[n][-1]:.1f} s" for n in names), file=sys.stderr,
                  flush=True)
        entries = {"pplc": len(os.listdir(pplc_warm)), "NumPyro": len(os.listdir(numpyro_warm))}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def ratio(a, b):
        return spread([x / y for x, y in zip(times[a], times[b])])

    return {"pplc": "python " + " ".join(PPLC) + " --out FIT", "seconds": {n: spread(v) for n, v in times.items()},
            "pplc reported": {n: spread(v) for n, v in reported.items()},
            "pplc first / NumPyro first": ratio("pplc first", "NumPyro first"),
            "pplc first / pplc second": ratio("pplc first", "pplc second"),
            "pplc second / NumPyro second": ratio("pplc second", "NumPyro second"),
            "NumPyro first / NumPyro second": ratio("NumPyro first", "NumPyro second"),
            "cache entries": entries}


def render(rec, fmt, provenance) -> list:
    """The section of docs/benchmarks.md (`fmt` and `provenance` are run.py's)."""
    if not rec:
        return []
    r = rec["result"]
    if "seconds" not in r:  # a record of the earlier figure (whole runs, cold and warm): not shown
        return []
    s = r["seconds"]
    out = ["## Start-up: launch to the first sampling iteration", "",
           "Eight schools, each run a fresh process timed from its launch to the start of its first sampling "
           "iteration (benchmarks/startup.py says how each marks it), then stopped. First run: an empty "
           "compilation cache (pplc) or none (NumPyro's default); second run: the cache an earlier run filled "
           "(pplc's own, on by default; JAX's persistent cache set by hand for NumPyro). "
           f"pplc: `{r['pplc']}`, PPLC_CACHE_DIR set to each folder; NumPyro: `MCMC(NUTS(model), num_warmup=1000, "
           "num_samples=1000, num_chains=4, chain_method=\"vectorized\")`. Seconds, median [min-max] over rounds.",
           "", "| | first run s | second run s | first / second |", "|---|---|---|---|",
           f"| pplc | {fmt(s['pplc first'], 1)} | {fmt(s['pplc second'], 1)} | {fmt(r['pplc first / pplc second'])} |",
           f"| NumPyro | {fmt(s['NumPyro first'], 1)} | {fmt(s['NumPyro second'], 1)} | "
           f"{fmt(r['NumPyro first / NumPyro second'])} |",
           f"| pplc / NumPyro | {fmt(r['pplc first / NumPyro first'])} | {fmt(r['pplc second / NumPyro second'])} "
           "| |", "",
           f"`python -c \"import pplc\"` in the same rounds: {fmt(s['import pplc'], 1)} s (the floor of any pplc run). "
           f"pplc's own `start-up and compilation` line (from the initial values on): first "
           f"{fmt(r['pplc reported']['pplc first'], 1)} s, second {fmt(r['pplc reported']['pplc second'], 1)} s. "
           f"Cache entries after one run: pplc {r['cache entries']['pplc']}, NumPyro {r['cache entries']['NumPyro']}.",
           "",
           "A second pplc run reads its init and block programs as stored StableHLO (runtime/sampling/exported.py: "
           "no tracing) and their compiled code from JAX's cache. A first run traces them, then compiles the block "
           "program in a thread while the init program compiles and runs. The keys and the uniform initial values "
           "are computed on the host (runtime/sampling/keys.py: jax.random's threefry bits in NumPy; XLA's CPU "
           "backend takes 0.1-1 s to compile each threefry hash), and the init program only evaluates the starting "
           "points (Stan's step-size heuristic runs in the block program, before the first step), so what is left "
           "of a first run is mostly XLA compiling the block program (TFP's NUTS, the heuristic, the "
           "deterministics). Earlier figures: with a small program each for the keys and the initial values and "
           "the heuristic in the init program (2026-12-03 01:17, 5 rounds, load 5-7), pplc / NumPyro first run "
           "1.42 [1.42-1.52]; before the block program was compiled beside the init program (3 rounds, load 5-14): "
           "pplc / NumPyro first run 1.35 [1.26-1.56], pplc first / second 2.85 [2.26-3.00].", ""]
    return out + provenance(rec) + [""]


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    print(json.dumps(measure(ap.parse_args().reps), indent=2))
