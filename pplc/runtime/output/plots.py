"""Plots of a fit (PNG): ArviZ trace and rank plots per parameter; tracked quantities, log density, step size."""
from __future__ import annotations

import os
import warnings

import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError
from ..files import atomic_write
from .az import arviz
from .summary import element_name, element_stats


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only: no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _chosen_elements(name: str, a: np.ndarray, elements: int) -> dict:
    """Up to `elements` scalar series of an array [chains, draws, *shape] as {label: [chains, draws]}: all of a
    small array, else its elements of largest R-hat (the ones worth looking at)."""
    shape = a.shape[2:]
    idx = list(np.ndindex(*shape))
    if len(idx) > elements:
        rhat = element_stats({name: a})[name]["rhat"]
        order = np.argsort(-np.nan_to_num(rhat.reshape(-1), nan=-np.inf), kind="stable")[:elements]
        idx = [idx[i] for i in sorted(order)]
    return {element_name(name, i): a[(slice(None), slice(None)) + i] for i in idx}


def save_png(fig, path: str, dpi: int = 100) -> str:
    """Write the figure to `path` as a PNG (atomically) and close it; the path."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    pyplot().close(fig)
    return path


def trace_figure(series: dict):
    """ArviZ's trace plot (density and trace per chain) of `series` ({label: [chains, draws]}), one row per
    label in the order given (index order: `w[5, 1]` before `w[33, 8]`; ArviZ alone sorts them as strings)."""
    az = arviz()
    data = az.convert_to_inference_data(dict(series))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ArviZ 0.23 on matplotlib 3.11: not ours to fix
        axes = az.plot_trace(data, var_names=list(series), compact=False,
                             figsize=(12, max(3.0, 2.2 * len(series))), show=False)
    return np.ravel(axes)[0].figure


def parameter_plots(name: str, a: np.ndarray, outdir: str, elements: int = 6) -> list[str]:
    """trace_NAME.png (ArviZ: density and trace per chain) and rank_NAME.png (ArviZ rank histograms per chain)
    for up to `elements` elements of the array `name`."""
    az = arviz()

    plt = pyplot()
    series = _chosen_elements(name, np.asarray(a, float), elements)
    n = len(series)
    fig = trace_figure(series)
    fig.suptitle(f"{name}: trace" + (f" ({n} of {int(np.prod(a.shape[2:]))} elements, worst R-hat)"
                                     if n < int(np.prod(a.shape[2:])) else ""))
    fig.tight_layout()
    out = [save_png(fig, os.path.join(outdir, f"trace_{_safe(name)}.png"))]
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, ax = plt.subplots(rows, cols, figsize=(4.5 * cols, 3 * rows), squeeze=False)
    for k, (label, x) in enumerate(series.items()):
        az.plot_rank(az.convert_to_inference_data({label: x}), ax=ax.flat[k], show=False)
    for extra in ax.flat[n:]:
        extra.set_visible(False)
    fig.suptitle(f"{name}: rank plots (uniform when the chains agree)")
    fig.tight_layout()
    out.append(save_png(fig, os.path.join(outdir, f"rank_{_safe(name)}.png")))
    return out


def series_plot(name: str, values: np.ndarray, outdir: str, warmup: np.ndarray | None = None,
                ylabel: str | None = None, filename: str | None = None, log: bool = False) -> str:
    """One line per chain over the iterations (warmup shaded when given), as the seed plots its traced
    quantities: values [chains, draws] (an array-valued quantity is averaged over its elements)."""
    plt = pyplot()
    values = np.asarray(values, float)
    values = values.reshape(values.shape[:2] + (-1,)).mean(-1)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    start = 0
    if warmup is not None and np.size(warmup):
        warmup = np.asarray(warmup, float)
        warmup = warmup.reshape(warmup.shape[:2] + (-1,)).mean(-1)
        start = warmup.shape[1]
        ax.axvspan(0, start, color="0.92", label="warmup")
        values = np.concatenate([warmup, values], axis=1)
    for c in range(values.shape[0]):
        ax.plot(np.arange(values.shape[1]), values[c], lw=0.8, label=f"chain {c}")
    ax.set_xlabel("iteration" + (" (warmup shaded)" if start else ""))
    ax.set_ylabel(ylabel or name)
    if log and np.all(values[np.isfinite(values)] > 0):
        ax.set_yscale("log")
    ax.set_title(name)
    if values.shape[0] <= 8:
        ax.legend(loc="best", fontsize="small", ncol=min(values.shape[0] + 1, 5))
    fig.tight_layout()
    return save_png(fig, os.path.join(outdir, filename or f"series_{_safe(name)}.png"))


def plot(fit, outdir: str, elements: int = 6) -> list[str]:
    """Every plot of a fit into `outdir`: trace and rank plots per parameter (latents and deterministics), the
    traces of tracked quantities, the log density and the step size. Returns the paths written."""
    if not fit.draws or next(iter(fit.draws.values())).shape[1] < 2:
        raise PPLError(Diagnostic("the fit has fewer than 2 draws: nothing to plot"))
    os.makedirs(outdir, exist_ok=True)
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ArviZ 0.23 on matplotlib 3.11: not ours to fix
        for name, a in fit.draws.items():
            paths += parameter_plots(name, a, outdir, elements)
    tr = fit.trace
    for name in fit.meta.get("tracked", []):
        if name in tr:
            paths.append(series_plot(name, tr[name], outdir, filename=f"track_{_safe(name)}.png"))
    if "log_prob" in tr:
        paths.append(series_plot("log density", tr["log_prob"], outdir, tr.get("warmup_log_prob"),
                                 "log density (unconstrained, with Jacobian)", "log_density.png"))
    if "step_size" in tr:
        paths.append(series_plot("step size", tr["step_size"], outdir, tr.get("warmup_step_size"),
                                 "step size (log scale)", "step_size.png", log=True))
    return paths


def ppc_plot(path: str, outdir: str) -> list[str]:
    """ArviZ's posterior predictive check (`az.plot_ppc`: replicated against observed densities) of a fit written
    as `.nc` by `pplc run --out fit.nc` (its posterior_predictive and observed_data groups), one PNG per site."""
    from .az import arviz

    if not path.endswith(".nc"):
        raise PPLError(Diagnostic(f"--ppc reads a fit written as .nc (with its replicated data), not {path}",
                                  hint="run with `--out fit.nc`"))
    idata = arviz().from_netcdf(path)
    if "posterior_predictive" not in idata.groups() or "observed_data" not in idata.groups():
        raise PPLError(Diagnostic(f"{path} has no replicated data (posterior_predictive group) to check",
                                  hint="the fit needs its model's observed data: `pplc run ... --out fit.nc`"))
    os.makedirs(outdir, exist_ok=True)
    plt = pyplot()
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in idata.posterior_predictive.data_vars:
            if name not in idata.observed_data.data_vars:
                continue
            ax = arviz().plot_ppc(idata, var_names=[name], num_pp_samples=min(100, idata.posterior.sizes["draw"]))
            fig = (ax.ravel()[0] if hasattr(ax, "ravel") else ax).figure
            paths.append(save_png(fig, os.path.join(outdir, f"ppc_{_safe(name)}.png")))
            plt.close(fig)
    return paths
