"""Convergence diagnostics by ArviZ: rank-normalised split R-hat, bulk and tail ESS, MCSE."""
from __future__ import annotations

import numpy as np


def summary_rows(draws: dict) -> list[dict]:
    """One row per scalar element of every array in `draws` ([chains, draws, *shape])."""
    import arviz as az

    rows = []
    for name, a in draws.items():
        a = np.asarray(a, float)
        flat = a.reshape(a.shape[0], a.shape[1], -1)
        for j in range(flat.shape[2]):
            idx = np.unravel_index(j, a.shape[2:]) if a.ndim > 2 else ()
            x = flat[:, :, j]
            constant = np.all(x == x.flat[0])
            enough = x.shape[1] >= 4 and not constant
            rows.append({
                "name": name + (f"[{', '.join(map(str, idx))}]" if idx else ""),
                "mean": x.mean(), "sd": x.std(ddof=1) if x.size > 1 else np.nan,
                "q5": np.quantile(x, 0.05), "q50": np.quantile(x, 0.5), "q95": np.quantile(x, 0.95),
                "rhat": float(az.rhat(x, method="rank")) if enough else np.nan,
                "ess": float(az.ess(x, method="bulk")) if enough else np.nan,
                "ess_tail": float(az.ess(x, method="tail")) if enough else np.nan,
                "mcse": float(az.mcse(x, method="mean")) if enough else np.nan,
            })
    return rows
