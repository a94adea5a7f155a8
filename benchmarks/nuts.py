"""The `nuts` figure of `python -m benchmarks`: NUTS time per effective sample, pplc against NumPyro.

Each model runs in both samplers with the same data (posteriordb's, through ../shared/conformance/run.py's
`prepare`), 4 chains, 1000 warmup + 1000 draws, target acceptance 0.8, a diagonal mass matrix adapted in warmup,
float32, on one CPU device:
- pplc: `pplc.compile_file(ppl).sample(data, seed=s, ...)`; the time is its host loop over the sampling blocks
  (`fit.timing["loop_s"]`: from the compiled block program's first call to the last draw on the host; tracing,
  compilation and the initial values are before it). Its blocks compute the deterministics (transformed
  parameters) at every iteration.
- NumPyro: `NUTS(model, target_accept_prob=0.8)` with chains vectorized (as `chain_method="vectorized"`): the
  kernel's `init` (initial values, step-size heuristic) untimed, then one program, compiled ahead (once per model,
  reused for every seed): warmup and draws as two `jax.lax.scan`s of `kernel.sample`, and the draws constrained
  with the model's `numpyro.deterministic` sites (`postprocess_fn`) in the same program. The time is its call.
Before timing, each NumPyro model's potential is checked against pplc's `Model.log_density(data).unconstrained` at
a few points: the difference must be constant (the same posterior on the same unconstrained scale); a model that
fails is dropped and listed. Per model and seed: seconds / the smallest bulk ESS (ArviZ `ess`) over every element
of the parameters, and the ratio pplc / NumPyro; leapfrog steps per draw (mean over chains and draws) and seconds
per leapfrog step (the time over the leapfrog steps of all iterations, warmup included: per chain, the mean over
chains; `per_max`: the most of any chain at each iteration, which the batched chains wait for). Seeds are
interleaved: for each seed, `reps` rounds of both samplers (the one going first alternating), the same draws
each round; the seed's time is each sampler's median over its rounds.

    python -m benchmarks --only nuts [--nuts-seeds 3] [--nuts-models eight_schools,kidiq] [--nuts-iterations 1000]
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
CONFORMANCE = os.path.join(SHARED, "conformance")
POSTERIORDB = os.path.join(SHARED, "posteriordb")

MODELS = {  # name: posteriordb posterior
    "eight_schools": "eight_schools-eight_schools_noncentered", "kidiq": "kidiq-kidscore_momiq",
    "mesquite": "mesquite-mesquite", "blr": "sblri-blr", "dogs": "dogs-dogs", "arK": "arK-arK",
    "nes": "nes1972-nes", "earn_height": "earnings-earn_height", "kilpisjarvi": "kilpisjarvi_mod-kilpisjarvi",
    "garch11": "garch-garch11", "arma11": "arma-arma11", "gp_regr": "gp_pois_regr-gp_regr",
    "low_dim_gauss_mix": "low_dim_gauss_mix-low_dim_gauss_mix",
}


# tests/conformance's .ppl files are Stan's models on posteriordb's data (`real<lower=0>`: exp, as Stan); these two
# use ../shared/conformance's files on `prepare`d data instead (the lag matrix, the running counts built once),
# as NumPyro's models here do.
PREPARED = ("dogs", "arK")


def numpyro_models() -> dict:
    """The same posteriors written plainly in NumPyro (flat priors as improper uniforms with the same supports, as
    the .ppl files' latents without a prior). Each takes the prepared data as keywords."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    numpyro.enable_validation(False)  # (its checks of concrete values only; nothing changes under jit)

    def flat(name, shape=(), support=constraints.real):
        return numpyro.sample(name, dist.ImproperUniform(support, (), shape))

    def eight_schools(y, sigma, **_):
        mu = numpyro.sample("mu", dist.Normal(0, 5))
        tau = numpyro.sample("tau", dist.HalfCauchy(5))
        with numpyro.plate("schools", y.shape[0]):
            theta_trans = numpyro.sample("theta_trans", dist.Normal(0, 1))
            theta = numpyro.deterministic("theta", mu + tau * theta_trans)
            numpyro.sample("y", dist.Normal(theta, sigma), obs=y)

    def kidiq(kid_score, mom_iq, **_):
        beta = flat("beta", (2,))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
        numpyro.sample("kid_score", dist.Normal(beta[0] + beta[1] * mom_iq, sigma), obs=kid_score)

    def mesquite(weight, diam1, diam2, canopy_height, total_height, density, group, **_):
        beta = flat("beta", (7,))
        sigma = flat("sigma", support=constraints.positive)
        mu = (beta[0] + beta[1] * diam1 + beta[2] * diam2 + beta[3] * canopy_height + beta[4] * total_height
              + beta[5] * density + beta[6] * group)
        numpyro.sample("weight", dist.Normal(mu, sigma), obs=weight)

    def blr(X, y, **_):
        beta = numpyro.sample("beta", dist.Normal(0, 10).expand([X.shape[1]]).to_event(1))
        sigma = numpyro.sample("sigma", dist.HalfNormal(10))
        numpyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)

    def dogs(y, n_avoid, n_shock, **_):
        beta = numpyro.sample("beta", dist.Normal(0, 100).expand([3]).to_event(1))
        numpyro.sample("y", dist.Bernoulli(logits=beta[0] + beta[1] * n_avoid + beta[2] * n_shock), obs=y)

    def arK(y, lags, **_):
        alpha = numpyro.sample("alpha", dist.Normal(0, 10))
        beta = numpyro.sample("beta", dist.Normal(0, 10).expand([lags.shape[1]]).to_event(1))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
        numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y)

    def nes(partyid7, real_ideo, race_adj, age_discrete, educ1, gender, income, **_):
        beta = flat("beta", (9,))
        sigma = flat("sigma", support=constraints.positive)
        mu = (beta[0] + beta[1] * real_ideo + beta[2] * race_adj + beta[3] * (age_discrete == 2)
              + beta[4] * (age_discrete == 3) + beta[5] * (age_discrete == 4) + beta[6] * educ1
              + beta[7] * gender + beta[8] * income)
        numpyro.sample("partyid7", dist.Normal(mu, sigma), obs=partyid7)

    def earn_height(earn, height, **_):
        beta = flat("beta", (2,))
        sigma = flat("sigma", support=constraints.positive)
        numpyro.sample("earn", dist.Normal(beta[0] + beta[1] * height, sigma), obs=earn)

    def kilpisjarvi(x, y, pmualpha, psalpha, pmubeta, psbeta, **_):
        alpha = numpyro.sample("alpha", dist.Normal(pmualpha, psalpha))
        beta = numpyro.sample("beta", dist.Normal(pmubeta, psbeta))
        sigma = flat("sigma", support=constraints.positive)
        numpyro.sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)

    def garch11(y, sigma1, **_):
        mu = flat("mu")
        alpha0 = flat("alpha0", support=constraints.positive)
        alpha1 = flat("alpha1", support=constraints.unit_interval)
        beta1 = flat("beta1", support=constraints.interval(0.0, 1.0 - alpha1))

        def step(s, y_prev):
            s = jnp.sqrt(alpha0 + alpha1 * jnp.square(y_prev - mu) + beta1 * jnp.square(s))
            return s, s

        _, rest = jax.lax.scan(step, jnp.asarray(sigma1, y.dtype), y[:-1])
        sigma = numpyro.deterministic("sigma", jnp.concatenate([jnp.full((1,), sigma1, y.dtype), rest]))
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)

    def arma11(y, **_):
        mu = numpyro.sample("mu", dist.Normal(0, 10))
        phi = numpyro.sample("phi", dist.Normal(0, 2))
        theta = numpyro.sample("theta", dist.Normal(0, 2))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))

        def step(err, ys):
            y_prev, y_t = ys
            nu = mu + phi * y_prev + theta * err
            return y_t - nu, (nu, y_t - nu)

        nu0 = mu + phi * mu
        _, (nus, errs) = jax.lax.scan(step, y[0] - nu0, (y[:-1], y[1:]))
        nu = numpyro.deterministic("nu", jnp.concatenate([nu0[None], nus]))
        numpyro.deterministic("err", jnp.concatenate([(y[0] - nu0)[None], errs]))
        numpyro.sample("y", dist.Normal(nu, sigma), obs=y)

    def gp_regr(x, y, **_):
        rho = numpyro.sample("rho", dist.Gamma(25, 4))
        alpha = numpyro.sample("alpha", dist.HalfNormal(2))
        sigma = numpyro.sample("sigma", dist.HalfNormal(1))
        d = x[:, None] - x[None, :]
        cov = numpyro.deterministic("cov", alpha ** 2 * jnp.exp(-0.5 * d ** 2 / rho ** 2) + sigma * jnp.eye(x.shape[0]))
        L = numpyro.deterministic("L_cov", jnp.linalg.cholesky(cov))
        numpyro.sample("y", dist.MultivariateNormal(jnp.zeros_like(x), scale_tril=L), obs=y)

    def low_dim_gauss_mix(y, **_):
        mu = numpyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
        numpyro.factor("mu_prior", jnp.sum(dist.Normal(0, 2).log_prob(mu)))
        sigma = numpyro.sample("sigma", dist.HalfNormal(2).expand([2]).to_event(1))
        theta = numpyro.sample("theta", dist.Beta(5, 5))
        first = jnp.log(theta) + dist.Normal(mu[0], sigma[0]).log_prob(y)
        second = jnp.log1p(-theta) + dist.Normal(mu[1], sigma[1]).log_prob(y)
        numpyro.factor("y", jnp.sum(jnp.logaddexp(first, second)))
        numpyro.deterministic("z_probs", jnp.exp(second - jnp.logaddexp(first, second)))

    return {k: v for k, v in locals().items() if k in MODELS}


def load(name: str):
    """(data, .ppl path) of a model, or None without the shared posteriordb folder."""
    run_py = os.path.join(CONFORMANCE, "run.py")
    posterior = MODELS[name]
    if not os.path.exists(run_py):
        return None
    spec = importlib.util.spec_from_file_location("conformance_run", run_py)
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    with open(os.path.join(POSTERIORDB, posterior, "data.json")) as f:
        raw = json.load(f)
    ours = os.path.join(ROOT, "tests", "conformance", posterior + ".ppl")  # written for posteriordb's data
    if os.path.exists(ours) and name not in PREPARED:
        return raw, ours
    shared = os.path.join(CONFORMANCE, posterior + ".ppl")  # written for the prepared data
    return ((run.prepare(posterior, raw) if posterior in run.PREPARED else raw), shared) if os.path.exists(shared) \
        else None


def as_arrays(data: dict, real=None) -> dict:
    import jax.numpy as jnp
    import numpy as np

    real = real or np.float32
    out = {}
    for k, v in data.items():
        a = np.asarray(v)
        out[k] = (float(a) if a.dtype.kind == "f" else int(a)) if a.ndim == 0 else \
            jnp.asarray(a, real if a.dtype.kind == "f" else np.int32)
    return out


def check_density(model, data, fn, points: int = 4) -> dict:
    """pplc's log density on the unconstrained scale against NumPyro's -potential, in float64, at `points` points
    (pplc's initial values for seeds 0.., shrunk toward 0 by 1/(1+s)): the differences must be one constant."""
    import jax
    import numpy as np
    from numpyro.infer.initialization import init_to_median
    from numpyro.infer.util import initialize_model

    with jax.enable_x64(True):
        ld = model.log_density(data)
        info = initialize_model(jax.random.PRNGKey(0), fn, model_kwargs=as_arrays(data, np.float64),
                                init_strategy=init_to_median())
        diffs, values = [], []
        for s in range(points):
            z = {k: jax.numpy.asarray(v, np.float64) / (1.0 + s) for k, v in ld.init(s).items()}
            p, n = float(ld.unconstrained(z)), -float(info.potential_fn(z))
            diffs.append(p - n)
            values.append(p)
    spread = max(diffs) - min(diffs)
    tol = 1e-6 * (1.0 + max(abs(v) for v in values))
    return {"differences": [float(f"{d:.6g}") for d in diffs], "log_density": [float(f"{v:.6g}") for v in values],
            "spread": spread, "tolerance": tol, "ok": bool(np.isfinite(spread) and spread <= tol)}


def min_ess(draws: dict, names) -> tuple:
    """The smallest bulk ESS (ArviZ) over every element of the named arrays ([chains, draws, ...])."""
    import arviz as az
    import numpy as np

    worst, which = float("inf"), None
    for k in names:
        a = np.asarray(draws[k], float)
        flat = a.reshape(a.shape[0], a.shape[1], -1)
        for j in range(flat.shape[2]):
            e = float(az.ess(flat[:, :, j], method="bulk"))
            if e < worst:
                worst, which = e, f"{k}[{j}]" if flat.shape[2] > 1 else k
    return worst, which


def run_pplc(model, data, seed: int, it: dict) -> tuple:
    import numpy as np

    fit = model.sample(data, chains=it["chains"], warmup=it["warmup"], draws=it["draws"], seed=seed,
                       target_accept=0.8, metric="diag", max_tree_depth=10)
    t, tr = fit.timing, fit.trace
    steps = np.concatenate([np.asarray(tr["warmup_n_leapfrog"], float), np.asarray(tr["n_leapfrog"], float)], 1)
    return fit.draws, {"sampling_s": t["loop_s"], "cpu_s": t["loop_cpu_s"],
                       "leapfrog_per_draw": float(np.mean(tr["n_leapfrog"])),
                       "leapfrogs": float(np.sum(np.mean(steps, 0))), "leapfrogs_max": float(np.sum(np.max(steps, 0))),
                       "divergences": int(np.sum(tr["diverging"])), "step_size": float(np.median(tr["step_size"]))}


class NumPyroRun:
    """NumPyro's NUTS for one model: the program compiled ahead once, called once per seed."""

    def __init__(self, fn, kw, it: dict):
        from numpyro.infer import NUTS

        self.kw, self.it = kw, it
        self.kernel = NUTS(fn, target_accept_prob=0.8, max_tree_depth=10, dense_mass=False)
        self.compiled = None

    def init(self, seed: int):
        import jax

        return self.kernel.init(jax.random.split(jax.random.PRNGKey(seed), self.it["chains"]), self.it["warmup"],
                                init_params=None, model_args=(), model_kwargs=self.kw)

    def run(self, seed: int) -> tuple:
        import jax
        import numpy as np

        state = self.init(seed)
        kw, sample, post = self.kw, self.kernel.sample, self.kernel.postprocess_fn((), self.kw)

        def program(state):
            def warm(s, _):
                s = sample(s, (), kw)
                return s, s.num_steps

            def draw(s, _):
                s = sample(s, (), kw)
                return s, (s.z, s.num_steps, s.diverging, s.adapt_state.step_size)

            state, warm_steps = jax.lax.scan(warm, state, None, length=self.it["warmup"])
            state, (z, steps, div, eps) = jax.lax.scan(draw, state, None, length=self.it["draws"])
            return jax.vmap(jax.vmap(post))(z), warm_steps, steps, div, eps  # the deterministics, in the program

        if self.compiled is None:
            self.compiled = jax.jit(program).lower(state).compile()
        jax.block_until_ready(state)
        t, c = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(self.compiled(state))
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
        draws, warm_steps, steps, div, eps = jax.tree.map(np.asarray, out)
        allsteps = np.concatenate([warm_steps, steps], 0).astype(float)  # [iterations, chains]
        return {k: np.swapaxes(v, 0, 1) for k, v in draws.items()}, {
            "sampling_s": seconds, "cpu_s": cpu, "leapfrog_per_draw": float(np.mean(steps)),
            "leapfrogs": float(np.sum(np.mean(allsteps, 1))), "leapfrogs_max": float(np.sum(np.max(allsteps, 1))),
            "divergences": int(np.sum(div)), "step_size": float(np.median(eps))}


def _summary(info: dict, draws: dict, names) -> dict:
    ess, which = min_ess(draws, names)
    return dict(info, min_ess_bulk=round(ess, 1), min_ess_element=which, s_per_ess=info["sampling_s"] / ess,
                cpu_s_per_ess=info["cpu_s"] / ess, cpu_s_per_leapfrog=info["cpu_s"] / info["leapfrogs"],
                s_per_leapfrog=info["sampling_s"] / info["leapfrogs"],
                s_per_leapfrog_max=info["sampling_s"] / info["leapfrogs_max"])


def measure(seeds: int, spread, models=None, iterations: int = 1000, chains: int = 4, reps: int = 3) -> dict:
    import pplc

    it = {"chains": chains, "warmup": iterations, "draws": iterations}
    npy = numpyro_models()
    rows, dropped = [], []
    for name in models or list(MODELS):
        loaded = load(name)
        if loaded is None:
            dropped.append({"model": name, "why": f"no data: needs {POSTERIORDB}"})
            continue
        data, ppl = loaded
        model = pplc.compile_file(ppl)
        kw = as_arrays(data)
        check = check_density(model, data, npy[name])
        if not check["ok"]:
            dropped.append({"model": name, "why": "NumPyro's log density differs from pplc's", "check": check})
            print(f"nuts {name}: dropped, densities differ {check}", file=sys.stderr, flush=True)
            continue
        names = list(model.latents)
        runner = NumPyroRun(npy[name], kw, it)
        per_seed = []
        for s in range(seeds):
            found, times, cpus = {}, {"pplc": [], "numpyro": []}, {"pplc": [], "numpyro": []}
            for r in range(reps):  # the same draws each time (same seed): only the time differs
                for who in (["pplc", "numpyro"] if (s + r) % 2 == 0 else ["numpyro", "pplc"]):
                    d, info = run_pplc(model, data, s, it) if who == "pplc" else runner.run(s)
                    times[who].append(info["sampling_s"])
                    cpus[who].append(info["cpu_s"])
                    if who not in found:
                        found[who] = (d, info)
            out = {}
            for who, (d, info) in found.items():
                info = dict(info, sampling_s=statistics.median(times[who]), sampling_s_reps=times[who],
                            cpu_s=statistics.median(cpus[who]), cpu_s_reps=cpus[who])
                out[who] = _summary(info, d, names)
            out["ratio"] = out["pplc"]["s_per_ess"] / out["numpyro"]["s_per_ess"]
            out["cpu ratio"] = out["pplc"]["cpu_s_per_ess"] / out["numpyro"]["cpu_s_per_ess"]
            per_seed.append(dict(out, seed=s))
            print(f"nuts {name} seed {s}: ratio {out['ratio']:.2f} (CPU {out['cpu ratio']:.2f}); " + "; ".join(
                f"{w} {out[w]['sampling_s']:.2f} s, ESS {out[w]['min_ess_bulk']:.0f}, "
                f"{out[w]['leapfrog_per_draw']:.1f} lf/draw, {out[w]['s_per_leapfrog'] * 1e6:.1f} us/lf"
                for w in ("pplc", "numpyro")), file=sys.stderr, flush=True)

        def over(key, who=None):
            return spread([(r[who][key] if who else r[key]) for r in per_seed])

        rows.append({"model": name, "posterior": MODELS[name], "ppl": os.path.relpath(ppl, ROOT),
                     "density_check": check, "pplc / NumPyro": over("ratio"), "CPU pplc / NumPyro": over("cpu ratio"),
                     "leapfrog_per_draw": {w: over("leapfrog_per_draw", w) for w in ("pplc", "numpyro")},
                     "s_per_leapfrog": {w: over("s_per_leapfrog", w) for w in ("pplc", "numpyro")},
                     "leapfrog ratio": spread([r["pplc"]["leapfrogs"] / r["numpyro"]["leapfrogs"] for r in per_seed]),
                     "per-leapfrog ratio": spread([r["pplc"]["s_per_leapfrog"] / r["numpyro"]["s_per_leapfrog"]
                                                   for r in per_seed]),
                     "CPU per-leapfrog ratio": spread([r["pplc"]["cpu_s_per_leapfrog"] /
                                                       r["numpyro"]["cpu_s_per_leapfrog"] for r in per_seed]),
                     "ess ratio": spread([r["pplc"]["min_ess_bulk"] / r["numpyro"]["min_ess_bulk"] for r in per_seed]),
                     "seeds": per_seed})
    medians = [r["pplc / NumPyro"]["median"] for r in rows]
    cpu_medians = [r["CPU pplc / NumPyro"]["median"] for r in rows]
    return {"settings": dict(it, seeds=seeds, reps=reps, target_accept=0.8, metric="diag", dtype="float32", devices=1),
            "rows": rows, "dropped": dropped,
            "median over models": round(statistics.median(medians), 4) if medians else None,
            "CPU median over models": round(statistics.median(cpu_medians), 4) if cpu_medians else None}


def render(rec: dict | None, fmt, provenance) -> list:
    if not rec:
        return []
    r = rec["result"]
    st = r["settings"]
    out = ["## NUTS: time per effective sample against NumPyro", "",
           f"Conformance models (posteriordb data), {st['chains']} chains, {st['warmup']} warmup + {st['draws']} "
           f"draws, target acceptance 0.8, diagonal metric, float32, one CPU device, {st['seeds']} seeds, "
           f"{st.get('reps', 1)} interleaved rounds per seed (benchmarks/nuts.py). Seconds of sampling "
           "(compilation and initial values apart; the deterministics computed inside both) over the smallest bulk "
           "ESS of any parameter element, the ratio pplc / NumPyro per seed (each sampler's median time over its "
           "rounds), then the median over seeds [min-max]; below 1 pplc needs less time per effective sample. "
           "`CPU`: the same with the process's CPU time instead of wall time (steadier on a loaded machine). Each "
           "NumPyro model's log density was checked equal to pplc's, up to a constant, in float64, before timing. "
           "Leapfrog steps per draw and the time per leapfrog step (over all iterations, warmup included) tell "
           "sampler behaviour from the cost of a step: ratio = (leapfrog steps ratio x per-step ratio) / ESS ratio.",
           "", "| model | pplc / NumPyro, s per ESS | CPU | leapfrog steps per draw, pplc / NumPyro | "
           "us per leapfrog step, pplc / NumPyro | per-step ratio (CPU) | min ESS ratio |",
           "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lf, sl = row["leapfrog_per_draw"], row["s_per_leapfrog"]
        cpu = fmt(row["CPU pplc / NumPyro"]) if "CPU pplc / NumPyro" in row else "-"
        cstep = fmt(row["CPU per-leapfrog ratio"]) if "CPU per-leapfrog ratio" in row else "-"
        out.append(f"| {row['model']} | {fmt(row['pplc / NumPyro'])} | {cpu} | {lf['pplc']['median']:.1f} / "
                   f"{lf['numpyro']['median']:.1f} | {sl['pplc']['median'] * 1e6:.1f} / "
                   f"{sl['numpyro']['median'] * 1e6:.1f} | {fmt(row['per-leapfrog ratio'])} ({cstep}) | "
                   f"{fmt(row['ess ratio'])} |")
    line = f"Median over the {len(r['rows'])} models of the per-model medians: **{r['median over models']:.2f}**"
    if r.get("CPU median over models") is not None:
        line += f" (CPU time: {r['CPU median over models']:.2f})"
    out += ["", line + "."]
    if r["dropped"]:
        out += ["", "Not in the table: " + "; ".join(f"{d['model']} ({d['why']})" for d in r["dropped"]) + "."]
    above = [row for row in r["rows"] if row["pplc / NumPyro"]["median"] > 1.2]
    if above:
        out += ["", "Above 1.2, the ratio taken apart (medians over seeds; ratio = leapfrog steps x time per step / "
                "ESS):", ""]
        out += [f"- {row['model']}: {row['pplc / NumPyro']['median']:.2f} = leapfrog steps x "
                f"{row['leapfrog ratio']['median']:.2f}, time per step x {row['per-leapfrog ratio']['median']:.2f} "
                f"(CPU x {row['CPU per-leapfrog ratio']['median']:.2f}), smallest ESS x "
                f"{row['ess ratio']['median']:.2f}" for row in above if "CPU per-leapfrog ratio" in row]
    if r.get("notes"):
        out += ["", "Causes (from this run and the checks described):", ""] + [f"- {n}" for n in r["notes"]]
    return out + [""] + provenance(rec) + [""]
