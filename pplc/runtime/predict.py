"""Posterior predictive: the observed sites' distributions given each posterior draw, per draw and averaged."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..compiler.supports import SUPPORTS, Support
from ..dsl.diagnostics import Diagnostic, PPLError
from . import data as data_lib
from .files import save_npz
from .loglik import layer_types
from .program import Program

# Work per jitted call: draws x predicted elements (floats) kept under this.
CHUNK_ELEMENTS = 1 << 25


@dataclass
class Prediction:
    """The posterior predictive of a model's observed sites on some data.

    mean: name -> the draw-averaged predictive ([*shape, classes] class probabilities for a Categorical,
      [*shape] probabilities for a Bernoulli, [*shape] means otherwise): Bayesian model averaging.
    per_draw: name -> the same for each draw, [chains, draws, ...] (only when asked for).
    metrics: name -> figures against the observed values, when the data holds them: `bma_accuracy`
      (of the averaged predictive), `single_draw_accuracy` (the average over draws of each draw's
      accuracy), `draw_accuracy` [chains, draws], and `lppd` (log pointwise predictive density, the sum
      over observations of log mean_draws p(y | draw)) with `lppd_mean` per observation."""

    mean: dict
    kind: dict
    per_draw: dict | None = None
    metrics: dict = field(default_factory=dict)
    draws: tuple = ()  # (chains, draws)
    warnings: tuple = ()  # the data's warnings (Diagnostic), for the caller to show

    def summary(self) -> str:
        lines = []
        for name, m in self.mean.items():
            lines.append(f"{name}: predictive {self.kind[name]}, shape {list(m.shape)}, averaged over "
                         f"{self.draws[0]} x {self.draws[1]} draws")
            met = self.metrics.get(name, {})
            if "bma_accuracy" in met:
                acc = met["draw_accuracy"]
                lines.append(f"  accuracy, Bayesian model average: {met['bma_accuracy']:.4f}")
                lines.append(f"  accuracy, single draws: {met['single_draw_accuracy']:.4f} on average "
                             f"(min {acc.min():.4f}, max {acc.max():.4f})")
            if "lppd" in met:
                lines.append(f"  log predictive density: {met['lppd']:.6g} ({met['lppd_mean']:.4f} per observation)")
        return "\n".join(lines)

    def arrays(self) -> dict:
        """Everything as flat named arrays (for an .npz): `mean/NAME`, `per_draw/NAME`, `NAME/METRIC`."""
        out = {f"mean/{k}": v for k, v in self.mean.items()}
        out.update({f"per_draw/{k}": v for k, v in (self.per_draw or {}).items()})
        for k, met in self.metrics.items():
            out.update({f"{k}/{m}": np.asarray(v) for m, v in met.items()})
        return out

    def save(self, path: str) -> None:
        """Write `arrays()` to an .npz file, atomically."""
        save_npz(path, self.arrays())


def site_distribution(dist):
    """The elementwise distribution inside the Sharded / Independent / Masked / Sample wrappers of a site, and how
    many dims the Sample layers add after its batch dims (iid draws of one distribution: `y ~ Poisson(rate)`
    with a scalar `rate` over `y`'s dims)."""
    added = 0
    while isinstance(dist, layer_types()):  # not further: a LogNormal's own inner Normal is not its predictive
        if hasattr(dist, "sample_shape"):  # tfd.Sample
            added += int(np.size(dist.sample_shape))
        dist = dist.distribution
    return dist, added


def flat_draws(latents: list, draws: dict, sizes: dict) -> tuple[tuple, dict]:
    """(chains, draws) and each latent's draws as [chains * draws, *shape], checked against the data's sizes."""
    lead = tuple(np.shape(draws[latents[0].name])[:2]) if latents else (1, 1)
    n_draws = int(np.prod(lead))
    flat = {}
    for v in latents:
        x = np.asarray(draws[v.name], np.float32)
        want = tuple(sizes[d] for d in v.phys)
        if x.shape[:2] != lead or x.shape[2:] != want:
            raise PPLError(Diagnostic(
                f"`{v.name}` in the draws has shape {list(x.shape)} but the data make it [chains, draws, "
                f"{', '.join(f'{d}={sizes[d]}' for d in v.phys)}]",
                hint="the data must have the same sizes as the data the model was fitted to, in every dim of "
                     "a latent"))
        flat[v.name] = x.reshape((n_draws,) + want)
    return lead, flat


def _hits(support, pred, y, xp=np):
    """Whether each prediction is right (the most probable class; a probability above 1/2 for a 1), or None
    for a site predicted by its mean. `xp`: numpy, or jax.numpy inside a jitted function."""
    if support == Support.CATEGORICAL:
        return xp.argmax(pred, axis=-1) == y
    if support == Support.BINARY:
        return (pred > 0.5) == (y > 0)
    return None


def predict(program: Program, draws: dict, data, per_draw: bool = False, chunk: int | None = None) -> Prediction:
    """The posterior predictive of `program`'s observed sites on `data` for posterior `draws`
    (name -> [chains, draws, *shape], as in a Fit). The data may leave out the observed arrays; when it
    has them, accuracies and the log predictive density are computed too. Evaluated on one device with
    the unsharded model, `chunk` draws at a time."""
    import jax
    import jax.numpy as jnp

    ir = program.ir
    latents = program.latents
    observed = program.observed
    missing = [v.name for v in latents if v.name not in draws]
    if missing:
        raise PPLError(Diagnostic(f"the draws have no `{missing[0]}`, a latent of {ir.filename}",
                                  hint="use the fit of this model (pplc run writes every latent)"))
    bound = data_lib.bind_program(program, data, allow_missing=True)
    sizes = bound.sizes
    lead, flat = flat_draws(latents, draws, sizes)
    n_draws = int(np.prod(lead))
    have = {v.name for v in observed if v.name in bound.arrays}
    arrays = bound.with_placeholders(observed)  # so that no site is sampled
    kinds = {v.name: SUPPORTS[Support(v.support)].predict_kind for v in observed}

    def shape_of(v):
        classes = [sizes[v.support_check.classes_dim]] if v.support == Support.CATEGORICAL else []
        return tuple(sizes[d] for d in v.phys), tuple(classes)

    shapes = {v.name: shape_of(v) for v in observed}
    # A multivariate site's last dims are its event (a Multinomial's counts, an MVN's vector): its mean has
    # them, its log density per item does not
    events = {v.name: v.dist.spec.event_rank if v.dist is not None else 0 for v in observed}
    items = {n: s[:len(s) - events[n]] for n, (s, _) in shapes.items()}
    per_elem = max(1, sum(int(np.prod(s + c)) for s, c in shapes.values()))
    if chunk is None:
        chunk = max(1, min(n_draws, CHUNK_ELEMENTS // per_elem))

    def evaluate(values, weights, data, state):
        """Per-draw predictives of a chunk of draws, summed (with `weights`: 0 for padding) into `state`."""
        jd = program.unsharded_model(data, sizes)
        names = list(program.by_name({site: None for site in jd.dtype._fields}))  # .ppl names, in site order
        value = [values[n] if n in values else data[n] for n in names]
        dists, _ = jd.sample_distributions(seed=jax.random.PRNGKey(0), value=value)
        dists = dict(zip(names, dists))
        new, out = {}, {}
        for v in observed:
            shape, classes = shapes[v.name]
            inner, added = site_distribution(dists[v.name])
            b = (weights.shape[0],)

            def spread(x, k=0):  # the Sample layers' dims, before the last k (a Categorical's classes)
                cut = x.ndim - k
                return jnp.reshape(x, x.shape[:cut] + (1,) * added + x.shape[cut:])
            if v.support == Support.CATEGORICAL:
                pred = jnp.broadcast_to(spread(inner.probs_parameter(), 1), b + shape + classes)
            elif v.support == Support.BINARY:
                pred = jnp.broadcast_to(spread(inner.probs_parameter()), b + shape)
            else:
                pred = jnp.broadcast_to(spread(inner.mean(), events[v.name]), b + shape)
            w = weights.reshape(b + (1,) * (pred.ndim - 1))
            s = dict(state[v.name])
            s["sum"] = s["sum"] + jnp.sum(w * pred, axis=0)
            if per_draw:
                out[v.name] = pred
            if v.name in have:
                y = data[v.name]
                if added:  # batch dims of size 1 for the Sample layers' dims: log p of each y
                    inner = inner[(Ellipsis,) + (None,) * added]
                ll = jnp.broadcast_to(inner.log_prob(y), b + items[v.name])
                ll = jnp.where(w.reshape(b + (1,) * len(items[v.name])) > 0, ll, -jnp.inf)
                m = jnp.maximum(s["ll_max"], jnp.max(ll, axis=0))
                s["ll_sum"] = s["ll_sum"] * jnp.exp(s["ll_max"] - m) + jnp.sum(jnp.exp(ll - m), axis=0)
                s["ll_max"] = m
                hit = _hits(v.support, pred, y, jnp)
                if hit is not None:
                    out[v.name + "/accuracy"] = jnp.mean(hit.reshape(b + (-1,)), axis=-1)
            new[v.name] = s
        return new, out

    state = {}
    for v in observed:
        shape, classes = shapes[v.name]
        state[v.name] = {"sum": jnp.zeros(shape + classes, jnp.float32)}
        if v.name in have:
            state[v.name]["ll_max"] = jnp.full(items[v.name], -jnp.inf, jnp.float32)
            state[v.name]["ll_sum"] = jnp.zeros(items[v.name], jnp.float32)
    step = jax.jit(evaluate)
    outs = []
    for start in range(0, n_draws, chunk):
        idx = np.minimum(np.arange(start, start + chunk), n_draws - 1)  # the last chunk repeats its last draw
        weights = (np.arange(start, start + chunk) < n_draws).astype(np.float32)
        values = {k: x[idx] for k, x in flat.items()}
        with warnings.catch_warnings():  # TFP's samplers ask for 64-bit dtypes JAX truncates: not the user's business
            warnings.filterwarnings("ignore", message="Explicitly requested dtype (float|int)64", category=UserWarning)
            state, out = step(values, weights, arrays, state)
        keep = int(weights.sum())
        outs.append({k: np.asarray(x)[:keep] for k, x in out.items()})
    joined = {k: np.concatenate([o[k] for o in outs]) for k in (outs[0] if outs else {})}

    mean = {n: np.asarray(s["sum"]) / n_draws for n, s in state.items()}
    metrics, per = {}, {}
    for v in observed:
        if per_draw:
            per[v.name] = joined[v.name].reshape(lead + joined[v.name].shape[1:])
        if v.name not in have:
            continue
        s = state[v.name]
        lppd = np.log(np.asarray(s["ll_sum"], np.float64) / n_draws) + np.asarray(s["ll_max"], np.float64)
        met = {"lppd": float(lppd.sum()), "lppd_mean": float(lppd.mean())}
        y = np.asarray(arrays[v.name])
        hit = _hits(v.support, mean[v.name], y)
        if hit is not None:
            met["bma_accuracy"] = float(np.mean(hit))
            acc = joined[v.name + "/accuracy"].reshape(lead)
            met["draw_accuracy"] = acc
            met["single_draw_accuracy"] = float(acc.mean())
        metrics[v.name] = met
    return Prediction(mean, kinds, per if per_draw else None, metrics, tuple(int(n) for n in lead),
                      tuple(bound.warnings))
