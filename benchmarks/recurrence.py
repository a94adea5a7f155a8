"""The `recurrence` figure of `python -m benchmarks`: GARCH(1,1)'s log density and gradient, T = 1,000 to 100,000.

pplc's tests/conformance/garch-garch11.ppl (a `recur` block: one `jax.lax.scan`) against the same model in
NumPyro, written with `jax.lax.scan` (improper uniform priors with the same supports, as the .ppl's flat ones):
value and gradient on the unconstrained scale, one CPU device, float32, jit, compilation apart, interleaved
rounds (run.py's `interleaved`). Time per call should grow about linearly in T (the work is O(T)).
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = os.path.join(ROOT, "tests", "conformance", "garch-garch11.ppl")
SIZES = (1_000, 10_000, 100_000)


def simulated(T: int, seed: int = 0):
    """A GARCH(1,1) series of length T (mu 0.1, alpha0 0.2, alpha1 0.3, beta1 0.5, sigma1 0.5)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, s = np.empty(T), 0.5
    for t in range(T):
        y[t] = 0.1 + s * rng.normal()
        s = np.sqrt(0.2 + 0.3 * (y[t] - 0.1) ** 2 + 0.5 * s ** 2)
    return y.astype(np.float32)


def numpyro_garch(y, sigma1):
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    def flat(support):
        return dist.ImproperUniform(support, (), ())

    mu = numpyro.sample("mu", flat(constraints.real))
    alpha0 = numpyro.sample("alpha0", flat(constraints.positive))
    alpha1 = numpyro.sample("alpha1", flat(constraints.unit_interval))
    beta1 = numpyro.sample("beta1", flat(constraints.interval(0.0, 1.0 - alpha1)))

    def step(s, y_prev):
        s = jnp.sqrt(alpha0 + alpha1 * jnp.square(y_prev - mu) + beta1 * jnp.square(s))
        return s, s

    _, rest = jax.lax.scan(step, jnp.asarray(sigma1, y.dtype), y[:-1])
    sigma = jnp.concatenate([jnp.full((1,), sigma1, y.dtype), rest])
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def measure(reps: int, interleaved, spread) -> list:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pplc

    try:
        from numpyro.infer.util import initialize_model
    except ImportError:
        initialize_model = None
        print("recurrence: NumPyro is not installed, its column is skipped", file=sys.stderr)
    model = pplc.compile_file(MODEL)
    z = {"mu": jnp.float32(0.1), "alpha0": jnp.float32(np.log(0.2)), "alpha1": jnp.float32(-0.8),
         "beta1": jnp.float32(0.1)}  # unconstrained: exp for alpha0, Stan's logit for the intervals
    rows = []
    for T in SIZES:
        y = simulated(T)
        ld = model.log_density({"T": T, "y": y, "sigma1": np.float32(0.5)})
        fns = {"pplc": lambda ld=ld: ld.value_and_grad(z)}
        if initialize_model is not None:
            info = initialize_model(jax.random.PRNGKey(0), numpyro_garch, model_args=(jnp.asarray(y), 0.5))
            nvg = jax.jit(jax.value_and_grad(lambda p, f=info.potential_fn: -f(p)))
            fns["NumPyro"] = lambda f=nvg: f(z)
            pv, nv = float(fns["pplc"]()[0]), float(fns["NumPyro"]()[0])
            if not np.isclose(pv, nv, rtol=1e-4, atol=1e-2):
                raise AssertionError(f"GARCH T={T}: pplc's log density {pv} != NumPyro's {nv}")
        times = interleaved(fns, reps)
        row = {"model": f"GARCH(1,1), T = {T:,}", "T": T, "seconds_per_call": {k: spread(v) for k, v in times.items()}}
        if "NumPyro" in times:
            row["pplc / NumPyro"] = spread([a / b for a, b in zip(times["pplc"], times["NumPyro"])])
        print(f"recurrence T={T}: " + ", ".join(f"{k} {v['median'] * 1e3:.3f} ms"
                                               for k, v in row["seconds_per_call"].items()), file=sys.stderr, flush=True)
        rows.append(row)
    for before, row in zip(rows, rows[1:]):  # how time grows with T, from the size before
        row["growth"] = {name: round(s["median"] / before["seconds_per_call"][name]["median"], 2)
                         for name, s in row["seconds_per_call"].items()}
    return rows


def render(rec: dict | None, fmt, provenance) -> list:
    if not rec:
        return []
    rows = rec["rows"]
    out = ["## Recurrences: GARCH(1,1), O(T)", "",
           "Value and gradient of GARCH(1,1)'s log density (tests/conformance/garch-garch11.ppl, a `recur` block "
           "compiled to one `jax.lax.scan`) on simulated series, one CPU device, float32, jit, compilation apart, "
           "against the same model in NumPyro written with `jax.lax.scan` (`jax.value_and_grad` of "
           "`initialize_model(...).potential_fn`). Ratios below 1: pplc is faster.", "",
           "| series | pplc ms per call | NumPyro ms per call | pplc / NumPyro |", "|---|---|---|---|"]
    for row in rows:
        s = row["seconds_per_call"]
        out.append(f"| {row['model']} | {fmt(s['pplc'], 3, 1e3)} | "
                   f"{fmt(s['NumPyro'], 3, 1e3) if 'NumPyro' in s else '-'} | "
                   f"{fmt(row['pplc / NumPyro']) if 'pplc / NumPyro' in row else '-'} |")
    out += ["", "Time per call, each size against the one before (10 times longer; linear work grows 10 times, and "
            "the fixed cost of a call weighs on the short series):", ""]
    for before, row in zip(rows, rows[1:]):
        out.append(f"- T = {before['T']:,} to {row['T']:,}: "
                   + ", ".join(f"{k} {x:.1f} times" for k, x in row["growth"].items()))
    return out + [""] + provenance(rec) + [""]
