"""Convergence diagnostics by ArviZ (rank-normalised split R-hat, bulk and tail ESS, MCSE, E-BFMI), the
summary table, and the warnings a summary gives, each with what to try."""
from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass

import numpy as np

RHAT_MAX = 1.01  # Vehtari et al. (2021)
ESS_PER_CHAIN_MIN = 100  # bulk and tail ESS under 100 per chain: estimates too noisy to trust
EBFMI_MIN = 0.3
COLUMNS = ("mean", "mcse", "sd", "q5", "q50", "q95", "ess_bulk", "ess_tail", "rhat")
HEADERS = ("mean", "mcse", "sd", "5%", "50%", "95%", "ess_bulk", "ess_tail", "r_hat")


def element_stats(draws: dict) -> dict:
    """Per array in `draws` ([chains, draws, *shape]): {column: array of its element shape} for COLUMNS.
    Mean, sd and quantiles from the pooled draws; MCSE, bulk and tail ESS and rank-normalised split R-hat
    from ArviZ (NaN where undefined: fewer than 4 draws, or a constant element)."""
    from .az import arviz

    az = arviz()

    out = {}
    for name, a in draws.items():
        a = np.asarray(a, np.float64)
        if a.ndim < 2 or a.shape[1] == 0:
            continue
        shape = a.shape[2:]
        pooled = a.reshape((-1,) + shape)
        q5, q50, q95 = np.quantile(pooled, [0.05, 0.5, 0.95], axis=0)
        row = {"mean": pooled.mean(0), "sd": pooled.std(0, ddof=1) if pooled.shape[0] > 1 else np.full(shape, np.nan),
               "q5": q5, "q50": q50, "q95": q95}
        if a.shape[1] >= 4:
            ds = az.convert_to_dataset({"x": a})
            with _warnings.catch_warnings(), np.errstate(all="ignore"):
                _warnings.simplefilter("ignore")
                row["rhat"] = np.asarray(az.rhat(ds, method="rank")["x"].values, float)
                row["ess_bulk"] = np.asarray(az.ess(ds, method="bulk")["x"].values, float)
                row["ess_tail"] = np.asarray(az.ess(ds, method="tail")["x"].values, float)
                row["mcse"] = np.asarray(az.mcse(ds, method="mean")["x"].values, float)
            constant = np.all(a == a[:1, :1], axis=(0, 1))
            for k in ("rhat", "ess_bulk", "ess_tail", "mcse"):
                row[k] = np.where(constant, np.nan, row[k])
        else:
            for k in ("rhat", "ess_bulk", "ess_tail", "mcse"):
                row[k] = np.full(shape, np.nan)
        out[name] = {k: np.reshape(np.asarray(v, float), shape) for k, v in row.items()}
    return out


def element_name(name: str, idx: tuple) -> str:
    return name + (f"[{', '.join(map(str, idx))}]" if idx else "")


def summary_rows(draws: dict) -> list[dict]:
    """One row per scalar element of every array in `draws` ([chains, draws, *shape]), in index order."""
    rows = []
    for name, st in element_stats(draws).items():
        shape = st["mean"].shape
        for idx in np.ndindex(*shape):
            r = {"name": element_name(name, idx), "array": name, "index": idx}
            r.update({k: float(st[k][idx]) for k in COLUMNS})
            r["ess"] = r["ess_bulk"]
            rows.append(r)
    return rows


def _worst_first(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: -np.nan_to_num(r["rhat"], nan=-np.inf))


# ---------------------------------------------------------------------------------------------------- warnings
@dataclass(frozen=True)
class SummaryWarning:
    """A problem the summary found, and what to try."""

    kind: str  # rhat, ess, divergences, float32, treedepth, ebfmi
    message: str
    hint: str

    def render(self) -> str:
        return f"warning: {self.message}\n  try: {self.hint}"


def _post_warmup(trace: dict, name: str):
    x = trace.get(name)
    return None if x is None else np.asarray(x)


def check(rows: list[dict], trace: dict, chains: int, max_tree_depth: int | None = None,
          sampler: str | None = None) -> list[SummaryWarning]:
    """The warnings for a run: R-hat > 1.01, low bulk/tail ESS, divergences, tree-depth saturation, low E-BFMI
    (the last three only where the trace has them: NUTS's diverging, tree_depth, energy)."""
    out = []
    with_rhat = [r for r in rows if np.isfinite(r["rhat"])]
    bad = [r for r in with_rhat if r["rhat"] > RHAT_MAX]
    if bad:
        w = max(bad, key=lambda r: r["rhat"])
        out.append(SummaryWarning(
            "rhat", f"R-hat above {RHAT_MAX} for {len(bad)} of {len(with_rhat)} elements (worst: {w['name']} "
            f"{w['rhat']:.3f}): the chains disagree, they have not converged to one distribution",
            "run longer (--warmup and --draws); look at the trace and rank plots (`pplc plot`) for chains stuck "
            "in different modes; reparameterise (e.g. non-centred) or give weakly informative priors"))
    need = ESS_PER_CHAIN_MIN * chains
    with_ess = [r for r in rows if np.isfinite(r["ess_bulk"]) and np.isfinite(r["ess_tail"])]
    low = [r for r in with_ess if min(r["ess_bulk"], r["ess_tail"]) < need]
    if low:
        w = min(low, key=lambda r: min(r["ess_bulk"], r["ess_tail"]))
        which = "bulk" if w["ess_bulk"] <= w["ess_tail"] else "tail"
        out.append(SummaryWarning(
            "ess", f"bulk or tail ESS below {need} ({ESS_PER_CHAIN_MIN} per chain) for {len(low)} of {len(with_ess)} "
            f"elements (lowest: {w['name']}, {which} ESS {min(w['ess_bulk'], w['ess_tail']):.0f}): means, "
            "quantiles and their MCSE are not reliable yet",
            "run more draws (--draws); " + ("use NUTS (--sampler nuts) or more leapfrog steps; " if sampler == "hmc"
                                            else "") + "reparameterise strongly correlated parameters"))
    div = _post_warmup(trace, "diverging")
    if div is not None and div.size and np.sum(div) > 0:
        n = int(np.sum(div))
        out.append(SummaryWarning(
            "divergences", f"{n} of {div.size} iterations after warmup ended with a divergence "
            f"({100.0 * n / div.size:.1f}%): the sampler met curvature its step size cannot follow, and the draws "
            "may be biased",
            "raise --target-accept (e.g. 0.95, a smaller step size); reparameterise funnels (non-centred "
            "hierarchical models); check the priors for scales far from the data"))
        from ..sampling.precision import roundoff_causes

        causes = roundoff_causes(rows, trace)
        if causes:
            out.append(SummaryWarning(
                "float32", "float32 round-off is the likely cause of the divergences: " + "; ".join(causes),
                "rerun with --x64 (float64 throughout, as Stan computes); or rescale the data and parameters "
                "to order 1 (see docs/sampling.md)"))
    depth = _post_warmup(trace, "tree_depth")
    if depth is not None and depth.size and max_tree_depth:
        n = int(np.sum(depth >= max_tree_depth))
        if n:
            out.append(SummaryWarning(
                "treedepth", f"{n} of {depth.size} iterations after warmup hit the maximum tree depth "
                f"({max_tree_depth}, {100.0 * n / depth.size:.1f}%): trajectories were cut short, so the sampler "
                "explores slowly",
                "raise --max-tree-depth; reparameterise for a better-conditioned posterior (rescale parameters, "
                "non-centred forms); a longer warmup adapts the mass matrix better"))
    energy = _post_warmup(trace, "energy")
    if energy is not None and energy.ndim == 2 and energy.shape[1] >= 3:
        low_chains = [(i, b) for i, b in enumerate(ebfmi(energy)) if np.isfinite(b) and b < EBFMI_MIN]
        if low_chains:
            out.append(SummaryWarning(
                "ebfmi", f"E-BFMI below {EBFMI_MIN} in chain{'s' if len(low_chains) > 1 else ''} "
                + ", ".join(f"{i} ({b:.2f})" for i, b in low_chains)
                + ": momentum resampling barely moves the energy, so the sampler explores the tails poorly",
                "reparameterise (heavy tails, funnels); a longer warmup (--warmup) for a better mass matrix; "
                "check for parameters whose scales differ by orders of magnitude"))
    return out


def ebfmi(energy) -> np.ndarray:
    """E-BFMI per chain (ArviZ) of an energy trace [chains, draws]."""
    from .az import arviz

    az = arviz()

    with _warnings.catch_warnings(), np.errstate(all="ignore"):
        _warnings.simplefilter("ignore")
        return np.asarray(az.bfmi(np.asarray(energy, float)), float)


# ---------------------------------------------------------------------------------------------------- text
def _fmt(x: float, width: int, kind: str) -> str:
    if not np.isfinite(x):
        return f"{'nan':>{width}}"
    if kind == "ess":
        return f"{x:>{width}.0f}"
    if kind == "rhat":
        return f"{x:>{width}.3f}"
    return f"{x:>{width}.4g}"


PER_ARRAY = 20  # arrays of up to this many elements are shown whole


def table(fit_draws: dict, tracked: dict | None = None, per_array: int = PER_ARRAY, name_width: int = 22,
          sort: str = "index"):
    """The summary table (lines) and its rows: arrays in order, small ones (up to `per_array` elements) in full,
    larger ones condensed to their `per_array` elements of largest R-hat and "... and N more"; rows within an
    array in index order (`sort="rhat"`: largest R-hat first)."""
    widths = (10, 8, 9, 9, 9, 9, 8, 8, 6)
    kinds = ("num",) * 6 + ("ess", "ess", "rhat")
    head = f"{'':{name_width}} " + " ".join(f"{h:>{w}}" for h, w in zip(HEADERS, widths))
    lines = [head]
    groups = [(fit_draws, "")] + ([(tracked, " (tracked)")] if tracked else [])
    all_rows = []
    for draws, label in groups:
        rows = summary_rows(draws)
        all_rows += rows
        by_array = {}
        for r in rows:
            by_array.setdefault(r["array"], []).append(r)
        for name, rs in by_array.items():
            shown = rs if len(rs) <= per_array else _worst_first(rs)[:per_array]
            shown = _worst_first(shown) if sort == "rhat" else sorted(shown, key=lambda r: r["index"])
            for r in shown:
                nm = (r["name"] + label)
                nm = nm if len(nm) <= name_width else nm[:name_width - 1] + "~"
                lines.append(f"{nm:{name_width}} " + " ".join(_fmt(r[c], w, k) for c, w, k in zip(COLUMNS, widths, kinds)))
            if len(rs) > len(shown):
                rest = _worst_first(rs)[per_array:]
                rh = [r["rhat"] for r in rest if np.isfinite(r["rhat"])]
                es = [min(r["ess_bulk"], r["ess_tail"]) for r in rest if np.isfinite(r["ess_bulk"])]
                tail = (f" (r_hat <= {max(rh):.3f}, ess >= {min(es):.0f})" if rh and es else "")
                lines.append(f"  ... and {len(rest)} more of {name}{tail}")
    return lines, all_rows


def summary_text(fit, per_array: int = PER_ARRAY, sort: str = "index") -> str:
    """What `pplc summary` and the end of `pplc run` print: the run, the table, throughput and warnings."""
    meta = fit.meta or {}
    cfg = meta.get("config", {})
    tracked_names = [k for k in meta.get("tracked", []) if k in fit.trace]
    lines = []
    chains = ndraws = None
    for a in fit.draws.values():
        chains, ndraws = np.shape(a)[:2]
        break
    head = fit.model_name or "fit"
    if chains is not None:
        head += f": {chains} chain{'s' if chains != 1 else ''} x {ndraws} draws"
        if meta.get("method") == "prior":
            head += ", prior draws"
        elif cfg:
            head += f" (after {cfg.get('warmup')} warmup), {cfg.get('sampler', '?').upper()}"
        if fit.timing.get("devices"):
            d = fit.timing["devices"]
            head += f", {d} device{'s' if d != 1 else ''}"
    lines.append(head)
    for note in meta.get("notes", []):
        lines.append(f"note: {note}")
    if chains is None or ndraws == 0:
        lines.append("no draws")
        return "\n".join(lines)
    tlines, rows = table(fit.draws, {k: fit.trace[k] for k in tracked_names}, per_array, sort=sort)
    lines += tlines
    lines += _run_lines(fit)
    lines += [w.render() for w in fit_warnings(fit, rows)]
    return "\n".join(lines)


def fit_warnings(fit, rows: list[dict] | None = None) -> list[SummaryWarning]:
    """The warnings of a fit with draws (`rows`: its summary rows, draws then tracked, when already computed)."""
    chains = next(iter(fit.draws.values())).shape[0]
    if rows is None:
        tracked = {k: fit.trace[k] for k in fit.meta.get("tracked", []) if k in fit.trace}
        rows = summary_rows(dict(fit.draws, **tracked))
    cfg = fit.meta.get("config", {})
    depth = cfg.get("max_tree_depth") if cfg.get("sampler", "nuts") == "nuts" else None
    return check(rows, fit.trace, chains, depth, cfg.get("sampler"))


def _run_lines(fit) -> list[str]:
    t, tr = fit.timing or {}, fit.trace
    out = []
    if t.get("loop_s") is not None:
        s = f"throughput: {t.get('leapfrog_per_s', float('nan')):,.0f} leapfrog steps (gradient evaluations) per " \
            f"second per chain over {t['loop_s']:.1f} s of sampling"
        if t.get("start_iteration"):
            s += f" (resumed at iteration {t['start_iteration']})"
        comp = t.get("compile_s", 0.0) + t.get("startup_s", 0.0)
        s += f"; start-up and compilation {comp:.1f} s"
        out.append(s)
    bits = []
    if "accept_ratio" in tr:
        bits.append(f"mean acceptance {np.mean(tr['accept_ratio']):.3f}")
    if "step_size" in tr and np.size(tr["step_size"]):
        bits.append(f"step size {np.mean(np.asarray(tr['step_size'])[:, -1]):.3g}")
    if "diverging" in tr:
        bits.append(f"{int(np.sum(tr['diverging']))} divergent")
    if "n_leapfrog" in tr:
        bits.append(f"{np.mean(tr['n_leapfrog']):.1f} leapfrog steps per draw")
    if bits:
        out.append("sampler: " + ", ".join(bits))
    return out
