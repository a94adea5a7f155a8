"""Recommendations as the seed computes them: each draw's top-ranked unwatched movie, counted, and plotted."""
from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..dsl.diagnostics import Diagnostic, PPLError
from ..runtime import data as data_lib
from ..runtime.output.az import arviz
from ..runtime.output.plots import pyplot, save_png
from ..runtime.predict import CHUNK_ELEMENTS, flat_draws, predict, site_distribution
from ..runtime.program import Program
from .datasets import META

HIGH_RHAT = 1.01  # above this the chains disagree (Vehtari et al. 2021's threshold, as `pplc run`'s warning)


@dataclass
class UserPicks:
    """One user's recommendations: for each posterior draw, the unwatched movie of highest predicted
    probability under that draw."""

    label: str  # "least active", "most active", or "user ID"
    index: int  # row of the watch matrix
    user_id: int  # MovieLens id (the row + 1 when the data has no ids)
    watched: int  # how many movies the user watched
    picks: np.ndarray  # [chains, draws] column of the pick
    titles: list  # the pick's title, per column
    genres: list  # the pick's first genre, per column
    popular_unseen: list = field(default_factory=list)  # the 10 most-watched movies the user has not seen
    logit_stats: dict | None = None  # R-hat and bulk ESS of the user's logits (`logit_diagnostics`), or None

    @property
    def who(self) -> str:
        """"least active user 19", or "user 19" for a user asked for by id."""
        return self.label if self.label.startswith("user ") else f"{self.label} user {self.user_id}"

    def by_title(self) -> list[tuple[str, int]]:
        return Counter(self.titles[j] for j in self.picks.ravel()).most_common()

    def by_genre(self) -> list[tuple[str, int]]:
        return Counter(self.genres[j] for j in self.picks.ravel()).most_common()

    def distinct_per_chain(self) -> list[int]:
        return [len(set(row.tolist())) for row in self.picks]

    def summary(self, top: int = 10) -> str:
        n = self.picks.size
        titles = self.by_title()
        lines = [f"{self.who} ({self.watched} movies watched): {len(titles)} distinct top "
                 f"picks over {n} draws ({self.picks.shape[0]} chains; distinct per chain: "
                 f"{', '.join(map(str, self.distinct_per_chain()))})"]
        lines += [f"  {c:5d}  {t}" for t, c in titles[:top]]
        if len(titles) > top:
            lines.append(f"  ... and {len(titles) - top} more titles")
        lines.append("  first genres: " + ", ".join(f"{g} {c}" for g, c in self.by_genre()))
        st = self.logit_stats
        if st:
            lines.append(f"  logits of the {st['movies']} unwatched movies over all {st['chains']} chains: R-hat worst "
                         f"{st['rhat_max']:.3f} ({st['rhat_worst_title']}), median {st['rhat_median']:.3f}; bulk ESS "
                         f"worst {st['ess_bulk_min']:.0f}, median {st['ess_bulk_median']:.0f}")
            agree = f"  R-hat at most {HIGH_RHAT}: the chains agree on this user's logits"
            lines.append(f"  R-hat above {HIGH_RHAT} for {st['rhat_above']} movies: the chains disagree, so the spread "
                         "of picks comes from which chain a draw is in, not only from the posterior within a chain"
                         if st["rhat_above"] else agree)
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"label": self.label, "row": self.index, "user_id": self.user_id, "watched": self.watched,
                "draws": int(self.picks.size), "distinct": len(self.by_title()),
                "distinct_per_chain": self.distinct_per_chain(),
                "by_title": self.by_title(), "by_genre": self.by_genre(),
                "popular_unseen": self.popular_unseen, "logit_stats": self.logit_stats}


def _site(program: Program, name: str | None):
    """The observed [users, movies] site to recommend from: `name`, or the model's only 2-d binary one."""
    sites = [v for v in program.observed if len(v.phys) == 2 and (name is None or v.name == name)]
    if name is None:
        sites = [v for v in sites if v.support == "binary"]
    if len(sites) != 1:
        raise PPLError(Diagnostic(
            f"{program.ir.filename}: " + (f"no 2-d observed site `{name}`" if name else
                                        f"{len(sites)} 2-d Bernoulli sites; say which with --observed"),
            hint="recommendations rank the columns (movies) of an observed [users, movies] watch matrix"))
    return sites[0]


def _slice(program: Program, draws: dict, data: dict, dim: str, i: int) -> tuple[dict, dict]:
    """The draws and data restricted to item `i` of dim `dim` (kept as a dim of size 1)."""
    d_out, x_out = {}, {}
    for v in program.latents:
        x = draws[v.name]
        x_out[v.name] = np.take(x, [i], axis=2 + v.phys.index(dim)) if dim in v.phys else x
    for v in program.data_variables:
        if v.name in data:
            a = np.asarray(data[v.name])
            d_out[v.name] = np.take(a, [i], axis=v.phys.index(dim)) if dim in v.phys else a
    return x_out, d_out


def top_picks(program: Program, draws: dict, data: dict, row: int, observed: str | None = None) -> np.ndarray:
    """For each draw, the column (movie) of highest predictive probability among those the user in `row`
    has not watched: [chains, draws]. The probabilities are the model's own (its observed site's
    Bernoulli, evaluated for that user alone)."""
    site = _site(program, observed)
    x, d = _slice(program, draws, data, site.phys[0], row)
    pred = predict(program, x, d, per_draw=True).per_draw[site.name][:, :, 0, :]  # [chains, draws, movies]
    seen = np.asarray(data[site.name][row], bool)
    return np.argmax(np.where(seen, -np.inf, pred), axis=-1)


def user_logits(program: Program, draws: dict, data: dict, row: int, observed: str | None = None,
                chunk: int | None = None) -> np.ndarray | None:
    """The model's own logits (its linear predictor) of the observed Bernoulli site for the user in `row`,
    under each draw: [chains, draws, movies]; None when the site's distribution has no logits. Evaluated
    like `predict`: the unsharded model for that user alone, `chunk` draws at a time."""
    import jax
    import jax.numpy as jnp

    site = _site(program, observed)
    x, d = _slice(program, draws, data, site.phys[0], row)
    bound = data_lib.bind_program(program, d, allow_missing=True)
    lead, flat = flat_draws(program.latents, x, bound.sizes)
    arrays = bound.with_placeholders(program.observed)
    shape = tuple(bound.sizes[k] for k in site.phys)
    n_draws = int(np.prod(lead))
    chunk = chunk or max(1, min(n_draws, CHUNK_ELEMENTS // max(1, int(np.prod(shape)))))

    def evaluate(values, data):
        jd = program.unsharded_model(data, bound.sizes)
        names = list(program.by_name({s: None for s in jd.dtype._fields}))
        dists, _ = jd.sample_distributions(seed=jax.random.PRNGKey(0),
                                           value=[values[n] if n in values else data[n] for n in names])
        inner, added = site_distribution(dict(zip(names, dists))[site.name])
        if not hasattr(inner, "logits_parameter"):
            return None
        z = inner.logits_parameter()
        z = jnp.reshape(z, z.shape + (1,) * added)  # the Sample layers' dims (iid draws of one Bernoulli)
        return jnp.broadcast_to(z, (chunk,) + shape)

    step = jax.jit(evaluate)
    parts = []
    for start in range(0, n_draws, chunk):
        idx = np.minimum(np.arange(start, start + chunk), n_draws - 1)  # the last chunk repeats its last draw
        z = step({k: v[idx] for k, v in flat.items()}, arrays)
        if z is None:
            return None
        parts.append(np.asarray(z)[: min(chunk, n_draws - start)])
    return np.concatenate(parts).reshape(lead + shape)[:, :, 0, :]


def logit_diagnostics(logits: np.ndarray, seen: np.ndarray, titles: list) -> dict | None:
    """Rank-normalised split R-hat and bulk ESS (ArviZ) of each unwatched movie's logit over all chains
    ([chains, draws, movies]), summarised: the worst and the median over the movies. None under 4 draws.
    Logits are identified, unlike the embeddings, which rotate freely: a high R-hat is chains that
    disagree about what the model predicts."""
    unseen = np.flatnonzero(~np.asarray(seen, bool))
    a = np.asarray(logits, np.float64)[:, :, unseen]
    if a.shape[1] < 4 or not unseen.size:
        return None
    az = arviz()
    ds = az.convert_to_dataset({"logit": a})
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        rhat = np.asarray(az.rhat(ds, method="rank")["logit"].values, float)
        ess = np.asarray(az.ess(ds, method="bulk")["logit"].values, float)
    constant = np.all(a == a[:1, :1], axis=(0, 1))
    rhat, ess = np.where(constant, np.nan, rhat), np.where(constant, np.nan, ess)
    if np.all(np.isnan(rhat)):
        return None
    worst = int(np.nanargmax(rhat))
    return {"movies": int(unseen.size), "chains": int(a.shape[0]), "draws": int(a.shape[1]),
            "rhat_max": float(np.nanmax(rhat)), "rhat_median": float(np.nanmedian(rhat)),
            "rhat_worst_title": titles[unseen[worst]], "rhat_above": int(np.sum(rhat > HIGH_RHAT)),
            "ess_bulk_min": float(np.nanmin(ess)), "ess_bulk_median": float(np.nanmedian(ess))}


def recommend(program: Program, draws: dict, data: dict, users=None, observed: str | None = None) -> list[UserPicks]:
    """The seed's study: top picks for the least and the most active users (or for `users`, MovieLens ids
    when the data has `meta/user_ids`, rows otherwise), with titles and first genres from `meta/`, and the R-hat
    and bulk ESS of each user's logits over all chains (`logit_diagnostics`)."""
    site = _site(program, observed)
    w = np.asarray(data[site.name], bool)
    n_users, n_movies = w.shape
    ids = np.asarray(data.get(META + "user_ids", np.arange(1, n_users + 1)))
    titles = [str(t) for t in data.get(META + "titles", [f"movie {j}" for j in range(n_movies)])]
    genres = [str(g) for g in data.get(META + "genres", ["unknown"] * n_movies)]
    counts = w.sum(axis=1)
    if users is None:
        chosen = [("least active", int(np.argmin(counts))), ("most active", int(np.argmax(counts)))]
    else:
        chosen = []
        for u in users:
            rows = np.flatnonzero(ids == int(u))
            if len(rows) != 1:
                raise PPLError(Diagnostic(f"no user {u} in the data (ids run from {ids.min()} to {ids.max()})"))
            chosen.append((f"user {u}", int(rows[0])))
    popularity = w.sum(axis=0)
    out = []
    for label, row in chosen:
        picks = top_picks(program, draws, data, row, site.name)
        unseen = [j for j in np.argsort(-popularity, kind="stable") if not w[row, j]][:10]
        logits = user_logits(program, draws, data, row, site.name)
        stats = None if logits is None else logit_diagnostics(logits, w[row], titles)
        out.append(UserPicks(label, row, int(ids[row]), int(counts[row]), picks, titles, genres,
                             [titles[j] for j in unseen], stats))
    return out


def plot(user: UserPicks, path: str, top: int = 15) -> None:
    """A PNG with two bar charts: the user's recommended titles (the `top` most frequent) and first genres."""
    plt = pyplot()
    titles = user.by_title()
    genres = user.by_genre()
    shown = titles[:top]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 0.35 * max(len(shown), len(genres)) + 1.6),
                               gridspec_kw={"width_ratios": [3, 2]})
    a.barh([t if len(t) <= 48 else t[:46] + "..." for t, _ in shown][::-1], [c for _, c in shown][::-1],
           color="tab:blue")
    a.set_xlabel(f"draws (of {user.picks.size})")
    a.set_title(f"top pick, by title ({len(titles)} distinct" + (f"; {top} shown)" if len(titles) > top else ")"))
    b.barh([g for g, _ in genres][::-1], [c for _, c in genres][::-1], color="tab:orange")
    b.set_xlabel(f"draws (of {user.picks.size})")
    b.set_title("top pick, by first genre")
    fig.suptitle(f"Recommendations for {'the ' if user.label != user.who else ''}{user.who} "
                 f"({user.watched} movies watched)")
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def write(users: list[UserPicks], directory: str) -> list[str]:
    """Write `summary.txt`, `recommendations.json` and one PNG per user into `directory`; the paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for u in users:
        p = os.path.join(directory, u.label.replace(" ", "_") + ".png")
        plot(u, p)
        paths.append(p)
    p = os.path.join(directory, "summary.txt")
    with open(p, "w") as f:
        f.write("\n\n".join(u.summary() for u in users) + "\n")
    paths.append(p)
    p = os.path.join(directory, "recommendations.json")
    with open(p, "w") as f:
        json.dump([u.to_json() for u in users], f, indent=1)
    paths.append(p)
    return paths
