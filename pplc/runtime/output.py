"""The result of a run: draws and trace, a summary, and the .npz file."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Fit:
    """Draws by name ([chains, draws, *shape], padding removed) and the per-iteration trace."""

    draws: dict
    trace: dict
    timing: dict = field(default_factory=dict)
    model_name: str = ""
    model: object = field(default=None, repr=False, compare=False)  # the compiled Model, when known

    def predict(self, data, per_draw: bool = False):
        """The posterior predictive of the observed sites on `data` (see `pplc.runtime.predict.predict`)."""
        from ..dsl.diagnostics import Diagnostic, PPLError
        from .predict import predict

        if self.model is None:
            raise PPLError(Diagnostic("this fit does not know its model (it was loaded from a file)",
                                      hint="use Fit.load(path, model=pplc.compile_file(...)), or "
                                           "pplc.runtime.predict.predict(model, fit.draws, data)"))
        return predict(self.model, self.draws, data, per_draw=per_draw)

    def save(self, path: str) -> None:
        """Write an .npz (one array per latent and deterministic, `trace/NAME` for the trace), atomically."""
        arrays = dict(self.draws)
        arrays.update({f"trace/{k}": v for k, v in self.trace.items()})
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=d)
        os.close(fd)
        try:
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path: str, model=None) -> "Fit":
        """Read a fit written by `save`; give `model` (a compiled Model) to `predict` with it."""
        with np.load(path, allow_pickle=False) as f:
            draws = {k: f[k] for k in f.files if not k.startswith("trace/")}
            trace = {k[6:]: f[k] for k in f.files if k.startswith("trace/")}
        return cls(draws, trace, model=model)

    def summary(self, max_rows: int = 30) -> str:
        """Mean, sd, 5/50/95% quantiles, split R-hat and bulk ESS per element (largest R-hat first)."""
        from .diagnostics import summary_rows

        rows = summary_rows(self.draws)
        rows.sort(key=lambda r: -np.nan_to_num(r["rhat"], nan=np.inf))
        lines = [f"{'':24} {'mean':>10} {'sd':>9} {'5%':>9} {'50%':>9} {'95%':>9} {'r_hat':>6} {'ess':>7}"]
        for r in rows[:max_rows]:
            lines.append(f"{r['name']:24.24} {r['mean']:10.4g} {r['sd']:9.3g} {r['q5']:9.3g} {r['q50']:9.3g} "
                         f"{r['q95']:9.3g} {r['rhat']:6.3f} {r['ess']:7.0f}")
        if len(rows) > max_rows:
            lines.append(f"... and {len(rows) - max_rows} more elements (sorted by r_hat, worst first)")
        acc = self.trace.get("accept_ratio")
        if acc is not None:
            lines.append(f"mean acceptance {np.mean(acc):.3f}; step size {np.mean(self.trace['step_size'][:, -1]):.3g}")
        return "\n".join(lines)
