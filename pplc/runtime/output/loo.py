"""Model comparison of saved fits (`pplc loo`): PSIS-LOO of each fit's pointwise log-likelihood, by ArviZ."""
from __future__ import annotations

import os
import warnings

from ...dsl.diagnostics import Diagnostic, PPLError
from .az import arviz


def load_with_log_likelihood(path: str):
    """The InferenceData of an .nc fit, checked to have a `log_likelihood` group."""
    if not str(path).endswith(".nc"):
        raise PPLError(Diagnostic(f"{path}: `pplc loo` reads fits written as ArviZ InferenceData (.nc)",
                                  hint="write the fit with `pplc run ... --out fit.nc` (its log_likelihood group "
                                       "holds the pointwise log-likelihood); in Python, az.loo(fit.to_arviz())"))
    if not os.path.exists(path):
        raise PPLError(Diagnostic(f"no such fit file: {path}"))
    try:
        idata = arviz().from_netcdf(path)
    except (OSError, ValueError) as e:
        raise PPLError(Diagnostic(f"{path} is not an ArviZ InferenceData file (netCDF): "
                                  f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}")) from None
    if "log_likelihood" not in idata.groups():
        raise PPLError(Diagnostic(f"{path} has no log_likelihood group",
                                  hint="`pplc run --out FIT.nc` writes it for models with observed data (unless "
                                       "chains x draws x observations is too large to keep)"))
    return idata


def _variable(idata, path: str, var_name: str | None) -> str:
    names = list(idata.log_likelihood.data_vars)
    if var_name is None:
        if len(names) == 1:
            return names[0]
        raise PPLError(Diagnostic(f"{path} has the log-likelihood of several observed variables "
                                  f"({', '.join(names)}): say which with --var NAME"))
    if var_name not in names:
        raise PPLError(Diagnostic(f"{path} has no log-likelihood of `{var_name}`; it has: {', '.join(names)}"))
    return var_name


def _labels(paths: list) -> list[str]:
    """Each fit's name in the comparison: its file name without .nc, or the whole path when two share one (and
    its place in the list when a path is given twice)."""
    base = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    labels = [b if base.count(b) == 1 else p for b, p in zip(base, paths)]
    return [lb if labels.count(lb) == 1 else f"{lb} ({i + 1})" for i, lb in enumerate(labels)]


def loo_text(paths: list, var_name: str | None = None) -> str:
    """What `pplc loo` prints: for one fit, ArviZ's PSIS-LOO (elpd_loo, p_loo, Pareto k); for several, each
    fit's elpd_loo and ArviZ's `compare` table (ranked by elpd_loo, with differences, their SEs and weights).
    ArviZ's warnings (e.g. large Pareto k) become `warning:` lines."""
    az = arviz()
    idatas = {}
    for label, path in zip(_labels(list(paths)), paths):
        idata = load_with_log_likelihood(path)
        idatas[label] = (idata, _variable(idata, path, var_name))
    lines = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if len(idatas) == 1:
                (label, (idata, var)), = idatas.items()
                lines.append(f"{label} ({var}):")
                lines.append(str(az.loo(idata, var_name=var, pointwise=True)).strip("\n"))
            else:
                for label, (idata, var) in idatas.items():
                    res = az.loo(idata, var_name=var)
                    lines.append(f"{label} ({var}): elpd_loo {res.elpd_loo:.2f} (SE {res.se:.2f}), p_loo {res.p_loo:.2f}")
                var = {v for _, v in idatas.values()}
                table = az.compare({k: i for k, (i, _) in idatas.items()},
                                   var_name=var.pop() if len(var) == 1 else None)
                lines.append("")
                lines.append(table.to_string())
        except (ValueError, TypeError) as e:  # e.g. fits of different data
            raise PPLError(Diagnostic(f"ArviZ cannot compare these fits: {str(e).splitlines()[0][:300]}",
                                      hint="compare fits of the same observations (the same data)")) from None
    seen = set()
    for w in caught:
        msg = " ".join(str(w.message).split())
        if issubclass(w.category, UserWarning) and msg not in seen:  # ArviZ's own; not its libraries' deprecations
            seen.add(msg)
            lines.append(f"warning: {msg}")
    return "\n".join(lines)


__all__ = ["loo_text", "load_with_log_likelihood"]
