"""Float32 round-off: whether a run's divergences are likely its fault (then --x64 is the fix)."""
from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.2e-7: float32 resolves a value x only to about |x| * EPS32
LOG_DENSITY_RESOLUTION = 0.1  # log-density round-off above this makes energy errors noise
RELATIVE_SD = 1e-5  # a parameter whose sd is below this fraction of its size moves in float32-sized steps


def roundoff_causes(rows: list[dict], trace: dict) -> list[str]:
    """Why float32 round-off is the likely cause of a float32 run's divergences (empty: not likely, or not a
    float32 run, or no divergences). `rows` are summary rows (name, mean, sd); `trace` the run's trace."""
    lp = trace.get("log_prob")
    div = trace.get("diverging")
    if lp is None or div is None or np.asarray(lp).dtype != np.float32 or not np.any(div):
        return []
    causes = []
    lp = np.asarray(lp, float)
    finite = lp[np.isfinite(lp)]
    if finite.size < lp.size:
        causes.append("the log density overflowed to a non-finite value (float32 overflows past 3.4e38, "
                      "exp() past 88)")
    if finite.size and np.median(np.abs(finite)) * EPS32 > LOG_DENSITY_RESOLUTION:
        m = float(np.median(np.abs(finite)))
        causes.append(f"the log density is about {m:.3g} in size, which float32 resolves only to "
                      f"{m * EPS32:.2g}: energy errors are round-off")
    tight = [r for r in rows if np.isfinite(r.get("sd", np.nan)) and r["sd"] > 0
             and r["sd"] < RELATIVE_SD * abs(r["mean"])]
    if tight:
        r = min(tight, key=lambda r: r["sd"] / abs(r["mean"]))
        causes.append(f"{len(tight)} parameter{'s have' if len(tight) > 1 else ' has'} a posterior sd under "
                      f"{RELATIVE_SD:g} of its size (e.g. {r['name']}: mean {r['mean']:.6g}, sd {r['sd']:.3g}), "
                      "below what float32 steps resolve")
    return causes
