"""pplc's NUTS against NumPyro's NUTS on the same posteriors: seconds per effective sample, JSON out.

    python benchmarks/nuts_vs_numpyro.py [--models eight_schools,kidiq,...] [--chains 4] [--warmup 1000]
        [--draws 1000] [--devices 1] [--x64] [--out benchmarks/results/nuts_vs_numpyro.json]

Each model runs in both with the same chains, warmup, draws and target acceptance (0.8), a diagonal mass matrix
adapted in warmup, and the same data (posteriordb's, built by ../shared/conformance/run.py's `prepare`; eight
schools from examples/ when ../shared is absent). Reported per model and sampler: the sampling time without
compilation (pplc: its block loop; NumPyro: its NUTS kernel in one scan, compiled ahead), the compilation and
start-up time, the smallest bulk ESS over all parameter elements (ArviZ), seconds per effective
sample (sampling time / smallest bulk ESS), leapfrog steps per draw and divergences. NumPyro chains run
vectorized on one device, as pplc batches its chains. NumPyro is not a dependency of pplc: without it, its
column is skipped with a message. CPU timings depend on what else runs on the machine; compare within one run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
SHARED = os.path.join(ROOT, "..", "shared")
CONFORMANCE = os.path.join(SHARED, "conformance")
POSTERIORDB = os.path.join(SHARED, "posteriordb")

# name: (posteriordb posterior, .ppl file (in ../shared/conformance, else tests/conformance))
MODELS = {
    "eight_schools": "eight_schools-eight_schools_noncentered",
    "kidiq": "kidiq-kidscore_momiq",
    "mesquite": "mesquite-mesquite",
    "blr": "sblri-blr",
    "dogs": "dogs-dogs",
    "arK": "arK-arK",
    "nes": "nes1972-nes",
}


# ---------------------------------------------------------------------------------------------------- NumPyro
def numpyro_models():
    """The same posteriors written in NumPyro (Flat/HalfFlat as improper uniforms, as in the .ppl files)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    def flat(name, shape=()):
        return numpyro.sample(name, dist.ImproperUniform(constraints.real, (), shape))

    def half_flat(name):
        return numpyro.sample(name, dist.ImproperUniform(constraints.positive, (), ()))

    def eight_schools(y, sigma):
        mu = numpyro.sample("mu", dist.Normal(0, 5))
        tau = numpyro.sample("tau", dist.HalfCauchy(5))
        with numpyro.plate("schools", y.shape[0]):
            theta_trans = numpyro.sample("theta_trans", dist.Normal(0, 1))
            numpyro.deterministic("theta", mu + tau * theta_trans)
            numpyro.sample("y", dist.Normal(mu + tau * theta_trans, sigma), obs=y)

    def kidiq(kid_score, mom_iq):
        beta = flat("beta", (2,))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
        numpyro.sample("kid_score", dist.Normal(beta[0] + beta[1] * mom_iq, sigma), obs=kid_score)

    def mesquite(weight, diam1, diam2, canopy_height, total_height, density, group):
        beta = flat("beta", (7,))
        sigma = half_flat("sigma")
        mu = (beta[0] + beta[1] * diam1 + beta[2] * diam2 + beta[3] * canopy_height + beta[4] * total_height
              + beta[5] * density + beta[6] * group)
        numpyro.sample("weight", dist.Normal(mu, sigma), obs=weight)

    def blr(X, y):
        beta = numpyro.sample("beta", dist.Normal(0, 10).expand([X.shape[1]]).to_event(1))
        sigma = numpyro.sample("sigma", dist.HalfNormal(10))
        numpyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)

    def dogs(y, n_avoid, n_shock):
        beta = numpyro.sample("beta", dist.Normal(0, 100).expand([3]).to_event(1))
        numpyro.sample("y", dist.Bernoulli(logits=beta[0] + beta[1] * n_avoid + beta[2] * n_shock), obs=y)

    def arK(y, lags):
        alpha = numpyro.sample("alpha", dist.Normal(0, 10))
        beta = numpyro.sample("beta", dist.Normal(0, 10).expand([lags.shape[1]]).to_event(1))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
        numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y)

    def nes(partyid7, real_ideo, race_adj, age_discrete, educ1, gender, income):
        beta = flat("beta", (9,))
        sigma = half_flat("sigma")
        mu = (beta[0] + beta[1] * real_ideo + beta[2] * race_adj + beta[3] * (age_discrete == 2)
              + beta[4] * (age_discrete == 3) + beta[5] * (age_discrete == 4) + beta[6] * educ1
              + beta[7] * gender + beta[8] * income)
        numpyro.sample("partyid7", dist.Normal(mu, sigma), obs=partyid7)

    del jnp
    return {"eight_schools": eight_schools, "kidiq": kidiq, "mesquite": mesquite, "blr": blr, "dogs": dogs,
            "arK": arK, "nes": nes}


def run_numpyro(fn, data, args, x64):
    """NumPyro's NUTS kernel, chains vectorized, warmup and draws in one compiled scan (compiled ahead, so the
    sampling time excludes compilation, as pplc's does); MCMC.run would recompile its loop on every call."""
    import jax
    import numpy as np
    from numpyro.infer import NUTS

    real = np.float64 if x64 else np.float32
    kw = {k: jax.numpy.asarray(v, real if np.asarray(v).dtype.kind == "f" else np.int32) for k, v in data.items()}
    kernel = NUTS(fn, target_accept_prob=0.8, max_tree_depth=10)  # diagonal mass matrix, adapted in warmup
    t = time.perf_counter()
    state = kernel.init(jax.random.split(jax.random.PRNGKey(args.seed), args.chains), args.warmup,
                        model_kwargs=kw)
    sample = kernel.sample  # vectorized over chains by init, given one key per chain

    def run(state):
        def body(s, _):
            s = sample(s, (), kw)
            return s, (s.z, s.num_steps, s.diverging)
        return jax.lax.scan(body, state, None, length=args.warmup + args.draws)[1]

    compiled = jax.jit(run).lower(state).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    z, steps, div = jax.block_until_ready(compiled(state))
    sampling = time.perf_counter() - t
    z = jax.tree.map(lambda x: x[args.warmup:], z)  # [draws, chains, ...]
    post = kernel.postprocess_fn((), kw)
    draws = jax.vmap(jax.vmap(post))(z)
    draws = {k: np.swapaxes(np.asarray(v), 0, 1) for k, v in draws.items()}
    return draws, {"sampling_s": sampling, "compile_s": compile_s,
                   "leapfrog_per_draw": float(np.mean(np.asarray(steps)[args.warmup:])),
                   "divergences": int(np.sum(np.asarray(div)[args.warmup:]))}


# ---------------------------------------------------------------------------------------------------- pplc
def run_pplc(ppl, data, args):
    import pplc

    model = pplc.compile_file(ppl)
    fit = model.sample(data, devices=args.devices, chains=args.chains, warmup=args.warmup, draws=args.draws,
                       seed=args.seed, x64=args.x64)
    t = fit.timing
    import numpy as np

    return fit.draws, {"sampling_s": t.get("loop_s", t.get("total_s")),
                       "compile_s": t.get("compile_s", 0.0) + t.get("startup_s", 0.0),
                       "leapfrog_per_draw": float(np.mean(fit.trace["n_leapfrog"])),
                       "divergences": int(np.sum(fit.trace["diverging"]))}


def min_ess(draws, names=None):
    """The smallest bulk ESS over every element of the given arrays ([chains, draws, ...])."""
    import arviz as az
    import numpy as np

    worst, which = float("inf"), None
    for k, a in draws.items():
        if names is not None and k not in names:
            continue
        a = np.asarray(a, float)
        flat = a.reshape(a.shape[0], a.shape[1], -1)
        for j in range(flat.shape[2]):
            e = float(az.ess(flat[:, :, j], method="bulk"))
            if e < worst:
                worst, which = e, f"{k}[{j}]" if flat.shape[2] > 1 else k
    return worst, which


def load_data(posterior):
    """(data, .ppl path) for a posteriordb posterior, or None when the shared folder is absent."""
    run_py = os.path.join(CONFORMANCE, "run.py")
    if not os.path.exists(run_py):
        return None
    spec = importlib.util.spec_from_file_location("conformance_run", run_py)
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    with open(os.path.join(POSTERIORDB, posterior, "data.json")) as f:
        data = run.prepare(posterior, json.load(f))
    for d in (CONFORMANCE, os.path.join(ROOT, "tests", "conformance")):
        p = os.path.join(d, posterior + ".ppl")
        if os.path.exists(p):
            return data, p
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, from: " + ", ".join(MODELS))
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=1, help="pplc's devices (NumPyro runs on one)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--x64", action="store_true", help="float64 in both")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "nuts_vs_numpyro.json"))
    args = ap.parse_args(argv)

    from pplc.runtime.devices.mesh import request_devices

    request_devices(args.devices)
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    try:
        npy = numpyro_models()
    except ImportError as e:
        npy = None
        print(f"NumPyro is not installed ({e}); its column is skipped (pip install numpyro)", file=sys.stderr)
    results = []
    for name in [m for m in args.models.split(",") if m]:
        loaded = load_data(MODELS[name])
        if loaded is None and name == "eight_schools":
            with open(os.path.join(ROOT, "examples", "eight_schools.json")) as f:
                loaded = json.load(f), os.path.join(ROOT, "examples", "eight_schools.ppl")
        if loaded is None:
            print(f"{name}: skipped, needs {POSTERIORDB} (the shared posteriordb data)", file=sys.stderr)
            continue
        data, ppl = loaded
        row = {"model": name, "posterior": MODELS[name], "chains": args.chains, "warmup": args.warmup,
               "draws": args.draws, "x64": args.x64}
        draws, info = run_pplc(ppl, data, args)
        names = set(draws)
        ess, which = min_ess(draws)
        row["pplc"] = dict(info, devices=args.devices, min_ess_bulk=ess, min_ess_element=which,
                           s_per_ess=info["sampling_s"] / ess)
        if npy is not None:
            ndraws, ninfo = run_numpyro(npy[name], data, args, args.x64)
            if name == "eight_schools" and "theta_raw" in names:  # examples/ names it theta_raw
                ndraws["theta_raw"] = ndraws.pop("theta_trans")
            ness, nwhich = min_ess(ndraws, names)
            row["numpyro"] = dict(ninfo, min_ess_bulk=ness, min_ess_element=nwhich,
                                  s_per_ess=ninfo["sampling_s"] / ness)
            row["pplc_over_numpyro_s_per_ess"] = row["pplc"]["s_per_ess"] / row["numpyro"]["s_per_ess"]
        results.append(row)
        line = (f"{name:14} pplc {row['pplc']['s_per_ess'] * 1e3:8.2f} ms/ESS (ESS {ess:6.0f}, "
                f"{row['pplc']['sampling_s']:6.1f} s + {row['pplc']['compile_s']:5.1f} s compile)")
        if "numpyro" in row:
            n = row["numpyro"]
            line += (f" | numpyro {n['s_per_ess'] * 1e3:8.2f} ms/ESS (ESS {n['min_ess_bulk']:6.0f}, "
                     f"{n['sampling_s']:6.1f} s + {n['compile_s']:5.1f} s compile) | ratio "
                     f"{row['pplc_over_numpyro_s_per_ess']:.2f}")
        print(line, flush=True)
    out = {"benchmark": "nuts_vs_numpyro", "device": jax.devices()[0].platform, "jax": jax.__version__,
           "numpyro": None if npy is None else __import__("numpyro").__version__, "results": results}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
