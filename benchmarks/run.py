"""pplc's benchmarks, one entry: measure, write JSON, render docs/benchmarks.md.

    python -m benchmarks [--only gradient,startup] [--reps 7] [--startup-reps 3]
    python -m benchmarks --render          # docs/benchmarks.md from the JSON already written

Figures (each kept with its machine, command, versions, date and the machine's load):
  gradient  value and gradient of the log density, one CPU device, float32, jit: pplc's
            `Model.log_density(...).value_and_grad` against a hand-written program (tests/reference_programs.py's
            TFP programs for MNIST and MovieLens; plain JAX for eight schools) and NumPyro's potential_fn when
            NumPyro is installed. Eight schools, MNIST 10,000 x 784 x 10, MovieLens 100K 943 x 1682, dim 20.
  recurrence  GARCH(1,1)'s value and gradient at T = 1,000 and 10,000, pplc against NumPyro's scan
            (benchmarks/recurrence.py; not in the default --only).
  scaling   value and gradient, and HMC leapfrog steps/s, on 1, 2, 4, 8 host devices (MNIST 10k, MovieLens 100K);
  memory    peak memory per device against the data it holds (benchmarks/scaling.py; neither in the default --only).
  nuts      NUTS time per effective sample, pplc against NumPyro, on conformance models, 3 seeds interleaved
            (benchmarks/nuts.py; not in the default --only: about half an hour).
  startup   eight schools from launch to the first sampling iteration, pplc against NumPyro, a first run (empty
            compilation cache) and a second (the cache of an earlier run): benchmarks/startup.py.
Repetitions are interleaved (the order rotates every round); the figure is the median over rounds with the
[min-max] spread. Results merge into benchmarks/results/benchmarks.json (a rerun of one figure replaces it).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nuts as nuts_figure  # noqa: E402
import recurrence  # noqa: E402
import scaling as scaling_figures  # noqa: E402
import startup as startup_figure  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "benchmarks.json")
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform(), "python": platform.python_version()}


def versions() -> dict:
    from importlib import metadata

    out = {}
    for pkg in ("pplc", "jax", "jaxlib", "tfp-nightly", "numpyro", "blackjax"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def load() -> list:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def spread(xs) -> dict:
    return {"median": round(statistics.median(xs), 6), "min": round(min(xs), 6), "max": round(max(xs), 6),
            "n": len(xs)}


def record(name: str, result: dict, argv) -> dict:
    return {"figure": name, "command": "python -m benchmarks " + " ".join(argv), "machine": machine(),
            "versions": versions(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **result}


# ------------------------------------------------------------------------------------------------ gradient
def interleaved(fns: dict, reps: int, min_s: float = 0.2) -> dict:
    """Seconds per call of each zero-argument function (already compiled), over `reps` interleaved rounds: each
    round runs every function for about `min_s`, in an order that rotates from round to round."""
    import jax

    per = {}
    for name, fn in fns.items():  # calls per round: about min_s of work each
        jax.block_until_ready(fn())
        t = time.perf_counter()
        jax.block_until_ready(fn())
        per[name] = max(1, int(min_s / max(time.perf_counter() - t, 1e-6)))
    names = list(fns)
    times = {n: [] for n in names}
    for r in range(reps):
        for n in names[r % len(names):] + names[:r % len(names)]:
            fn, k = fns[n], per[n]
            t = time.perf_counter()
            for _ in range(k):
                out = fn()
            jax.block_until_ready(out)
            times[n].append((time.perf_counter() - t) / k)
    return times


def eight_schools():
    import jax.numpy as jnp
    import numpy as np
    from jax.scipy import stats as jst

    y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12], np.float32)
    sigma = np.array([15.0, 10, 16, 11, 9, 11, 10, 18], np.float32)

    def hand(z):  # the same target as pplc's: tau = exp(z) (TFP's HalfCauchy bijector), its log-Jacobian z
        tau = jnp.exp(z["tau"])
        theta = z["mu"] + tau * z["theta_raw"]
        return (jst.norm.logpdf(z["mu"], 0.0, 5.0) + jst.cauchy.logpdf(tau, 0.0, 5.0) + jnp.log(2.0)
                + z["tau"] + jnp.sum(jst.norm.logpdf(z["theta_raw"]))
                + jnp.sum(jst.norm.logpdf(y, theta, sigma)))

    def numpyro_model():
        import numpyro
        import numpyro.distributions as dist

        mu = numpyro.sample("mu", dist.Normal(0, 5))
        tau = numpyro.sample("tau", dist.HalfCauchy(5))
        with numpyro.plate("schools", 8):
            theta_raw = numpyro.sample("theta_raw", dist.Normal(0, 1))
            numpyro.sample("y", dist.Normal(mu + tau * theta_raw, sigma), obs=y)

    z = {"mu": np.float32(1.0), "tau": np.float32(0.5), "theta_raw": np.linspace(-1, 1, 8).astype(np.float32)}
    return "eight schools", os.path.join(ROOT, "examples", "eight_schools.ppl"), {"y": y, "sigma": sigma}, z, \
        hand, numpyro_model


def mnist(n: int = 10000):
    import jax
    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import mnist_vs_handwritten as mv
    import reference_programs as ref

    data = mv.load_mnist(n)
    what = f"MNIST {n} x 784 x 10" if data is not None else f"simulated MNIST-shaped {n} x 784 x 10"
    images, labels = data if data is not None else mv.simulated(n)
    vg = ref.mnist_value_and_grad(1)
    on_device = jax.device_put((images, labels))  # as pplc's data: on the device once, not sent at every call

    def hand(z):
        return vg((z["w"], z["b"]), on_device)

    def numpyro_model():
        import numpyro
        import numpyro.distributions as dist

        w = numpyro.sample("w", dist.Normal(0, 1).expand([784, 10]).to_event(2))
        b = numpyro.sample("b", dist.Normal(0, 1).expand([10]).to_event(1))
        with numpyro.plate("examples", images.shape[0]):
            numpyro.sample("labels", dist.Categorical(logits=images @ w + b), obs=labels)

    rng = np.random.default_rng(0)
    z = {"w": (0.01 * rng.normal(size=(784, 10))).astype(np.float32), "b": np.zeros(10, np.float32)}
    return what, os.path.join(ROOT, "examples", "mnist_logreg.ppl"), {"images": images, "labels": labels}, z, \
        ("value_and_grad", hand), numpyro_model


def movielens(dim: int = 20):
    import jax
    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import reference_programs as ref

    directory = os.path.join(SHARED, "movielens-100k")
    if os.path.exists(os.path.join(directory, "u.data")):
        from pplc.studies.datasets import load_movielens

        watched, what = load_movielens(directory)["watched"], "MovieLens 100K"
    else:
        rng = np.random.default_rng(0)
        watched, what = rng.random((943, 1682)) < 0.063, "simulated MovieLens-100K-shaped"
    users, movies = watched.shape
    vg = ref.movielens_value_and_grad(1, dim, movies)
    on_device = jax.device_put(watched)

    def hand(z):
        return vg((z["user_embedding"], z["user_bias"], z["movie_embedding"], z["movie_bias"]), on_device)

    def numpyro_model():
        import numpyro
        import numpyro.distributions as dist

        V = numpyro.sample("movie_embedding", dist.Normal(0, 1).expand([movies, dim]).to_event(2))
        v = numpyro.sample("movie_bias", dist.Normal(0, 1).expand([movies]).to_event(1))
        U = numpyro.sample("user_embedding", dist.Normal(0, 1).expand([users, dim]).to_event(2))
        u = numpyro.sample("user_bias", dist.Normal(0, 1).expand([users]).to_event(1))
        numpyro.sample("watched", dist.Bernoulli(logits=U @ V.T + u[:, None] + v[None, :]).to_event(2),
                       obs=watched.astype(np.float32))

    rng = np.random.default_rng(0)
    z = {"movie_embedding": 0.1 * rng.normal(size=(movies, dim)), "movie_bias": 0.1 * rng.normal(size=movies),
         "user_embedding": 0.1 * rng.normal(size=(users, dim)), "user_bias": 0.1 * rng.normal(size=users)}
    z = {k: v.astype(np.float32) for k, v in z.items()}
    return f"{what} {users} x {movies}, dim {dim}", os.path.join(ROOT, "examples", "movielens_mf.ppl"), \
        {"watched": watched}, z, ("value_and_grad", hand), numpyro_model


def gradient(reps: int) -> list:
    import jax
    import numpy as np

    import pplc

    try:
        import numpyro  # noqa: F401
        from numpyro.infer.util import initialize_model
    except ImportError:
        initialize_model = None
    rows = []
    for make in (eight_schools, mnist, movielens):
        what, path, data, z, hand, numpyro_model = make()
        model = pplc.compile_file(path)
        ld = model.log_density(data)
        zj = {k: jax.numpy.asarray(v) for k, v in z.items()}
        fns = {"pplc": lambda ld=ld, zj=zj: ld.value_and_grad(zj)}
        if isinstance(hand, tuple):  # already a value-and-gradient program
            fns["hand-written"] = lambda h=hand[1], zj=zj: h(zj)
        else:
            hvg = jax.jit(jax.value_and_grad(hand))
            fns["hand-written"] = lambda h=hvg, zj=zj: h(zj)
        pv, hv = float(fns["pplc"]()[0]), float(fns["hand-written"]()[0])
        if not np.isclose(pv, hv, rtol=1e-4, atol=1e-2):
            raise AssertionError(f"{what}: pplc's log density {pv} != the hand-written {hv}")
        if initialize_model is not None:
            info = initialize_model(jax.random.PRNGKey(0), numpyro_model)
            nvg = jax.jit(jax.value_and_grad(info.potential_fn))
            fns["NumPyro"] = lambda f=nvg, zj=zj: f(zj)
        times = interleaved(fns, reps)
        row = {"model": what, "seconds_per_call": {k: spread(v) for k, v in times.items()}}
        for other in fns:
            if other != "pplc":
                row[f"pplc / {other}"] = spread([a / b for a, b in zip(times["pplc"], times[other])])
        print(f"{what}: " + ", ".join(f"{k} {v['median']:.3f}" for k, v in row.items() if " / " in k),
              file=sys.stderr, flush=True)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ rendering
def _fmt(s: dict, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    return (f"{s['median'] * scale:.{digits}f}{unit} [{s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f}]")


def _provenance(rec: dict) -> list:
    m, v = rec["machine"], rec["versions"]
    return [f"- command: `{rec['command']}`; date {rec['date']}",
            f"- machine: {m['cpu']}, {m['cores']} cores, {m['system']}; load average at start {rec.get('load_start')}, "
            f"at end {rec.get('load_end')} (a machine shared with other jobs: read the spread, not only the median)",
            "- versions: " + ", ".join(f"{k} {x}" for k, x in v.items())]


def render(results: dict) -> str:
    out = ["# Benchmarks", "",
           "Made by `python -m benchmarks` (benchmarks/run.py), which writes benchmarks/results/benchmarks.json "
           "and this page; `python -m benchmarks --render` rebuilds the page from the JSON. Every figure is the "
           "median over interleaved rounds, with the [min-max] spread over rounds.", ""]
    g = results.get("gradient")
    if g:
        out += ["## Value and gradient of the log density", "",
                "One CPU device, float32, jit, compilation apart. pplc: `model.log_density(data).value_and_grad(z)`; "
                "hand-written: tests/reference_programs.py's TFP programs (MNIST, MovieLens; written as TFP's "
                "distributed-inference tutorial), plain JAX for eight schools; NumPyro: `jax.value_and_grad` of "
                "`initialize_model(...).potential_fn`. Ratios below 1: pplc is faster. On one device pplc's program "
                "holds the padding masks, and data of at most 64 KiB, as constants (as NumPyro's closure holds its "
                "data); observed `Bernoulli(logits=...)` costs one exp and one log1p per item, its gradient none "
                "more (compiler/codegen/prelude.py `BernoulliLogits`). Eight schools is a call of a few microseconds "
                "for all three programs: JAX's dispatch, not the model, sets it.", ""]
        others = [k for k in g["rows"][0] if " / " in k]
        out += ["| model | pplc ms per call | " + " | ".join(others) + " |",
                "|---|---|" + "---|" * len(others)]
        for row in g["rows"]:
            out.append(f"| {row['model']} | {_fmt(row['seconds_per_call']['pplc'], 3, 1e3)} | "
                       + " | ".join(_fmt(row[k]) if k in row else "-" for k in others) + " |")
        out += [""] + _provenance(g) + [""]
    out += recurrence.render(results.get("recurrence"), _fmt, _provenance)
    out += startup_figure.render(results.get("startup"), _fmt, _provenance)
    out += nuts_figure.render(results.get("nuts"), _fmt, _provenance)
    out += scaling_figures.render(results.get("scaling"), results.get("memory"), _fmt, _provenance)
    return "\n".join(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="gradient,startup",
                    help="comma-separated: gradient, startup, recurrence, nuts, scaling, memory")
    ap.add_argument("--reps", type=int, default=7, help="interleaved rounds of the gradient figures (default 7)")
    ap.add_argument("--startup-reps", type=int, default=3, help="rounds of the start-up figure (default 3)")
    ap.add_argument("--nuts-seeds", type=int, default=3, help="seeds of the nuts figure (default 3)")
    ap.add_argument("--nuts-models", default="", help="models of the nuts figure (default: all of benchmarks/nuts.py)")
    ap.add_argument("--nuts-reps", type=int, default=3, help="nuts: rounds per seed, median time (default 3)")
    ap.add_argument("--nuts-iterations", type=int, default=1000, help="nuts: warmup and draws each (default 1000)")
    ap.add_argument("--scaling-rounds", type=int, default=3, help="rounds of the scaling figure (default 3)")
    ap.add_argument("--render", action="store_true", help="only render docs/benchmarks.md from the JSON")
    ap.add_argument("--json", default=RESULTS)
    ap.add_argument("--doc", default=DOC)
    args = ap.parse_args(argv)
    results = {}
    if os.path.exists(args.json):
        with open(args.json) as f:
            results = json.load(f)
    if not args.render:
        for name in [x.strip() for x in args.only.split(",") if x.strip()]:
            start = load()
            if name == "gradient":
                res = {"rows": gradient(args.reps)}
            elif name == "recurrence":
                res = {"rows": recurrence.measure(args.reps, interleaved, spread)}
            elif name == "startup":
                res = {"result": startup_figure.measure(args.startup_reps, spread)}
            elif name == "nuts":
                res = {"result": nuts_figure.measure(args.nuts_seeds, spread, args.nuts_models.split(",") if
                                                     args.nuts_models else None, args.nuts_iterations,
                                                     reps=args.nuts_reps)}
            elif name == "scaling":
                res = scaling_figures.measure_scaling(args.scaling_rounds, spread)
            elif name == "memory":
                res = scaling_figures.measure_memory()
            else:
                ap.error(f"unknown figure {name}")
            results[name] = record(name, dict(res, load_start=start, load_end=load()), argv)
            os.makedirs(os.path.dirname(args.json), exist_ok=True)
            if os.path.exists(args.json):  # keep the figures another run wrote meanwhile
                with open(args.json) as f:
                    results = dict(json.load(f), **{name: results[name]})
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
                f.write("\n")
    with open(args.doc, "w") as f:
        f.write(render(results))
    print(f"wrote {args.json} and {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
