"""The result of a run: draws and trace, a summary, ArviZ InferenceData, and the .npz / .nc files."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError
from .. import loglik
from ..files import atomic_write, save_npz
from ..predict import Prediction, predict
from ..program import Program
from .summary import PER_ARRAY, SummaryWarning, fit_warnings, summary_text

# Trace names and ArviZ's sample_stats names (as PyMC, NumPyro and CmdStanPy write them).
ARVIZ_STATS = {"log_prob": "lp", "accept_ratio": "acceptance_rate", "n_leapfrog": "n_steps"}
FROM_ARVIZ_STATS = {v: k for k, v in ARVIZ_STATS.items()}


def _outcomes(arrays: dict) -> dict:
    """Observed or replicated values for ArviZ: bool outcomes as 0/1 integers (az.plot_ppc takes integers or
    reals only; pplc reads 0/1 back as bool data)."""
    return {k: np.asarray(v).astype(np.int8) if np.asarray(v).dtype == bool else np.asarray(v)
            for k, v in (arrays or {}).items()}


@dataclass
class Fit:
    """Draws by name ([chains, draws, *shape], padding removed) and the per-iteration trace."""

    draws: dict
    trace: dict
    timing: dict = field(default_factory=dict)
    model_name: str = ""
    program: Program | None = field(default=None, repr=False, compare=False)  # the model's program, when known
    dims: dict = field(default_factory=dict)  # variable -> its dim names (draws, tracked and observed arrays)
    meta: dict = field(default_factory=dict)  # config, tracked names, notes (e.g. an interrupted run)
    observed: dict = field(default_factory=dict, repr=False)  # the observed data, when known (for ArviZ)
    constant: dict = field(default_factory=dict, repr=False)  # the other data, when known (ArviZ's constant_data)
    log_likelihood: dict | None = field(default=None, repr=False)  # name -> [chains, draws, *shape], when computed
    # A prior run (`pplc run --prior`, meta["method"] == "prior"): `draws` are prior draws, and these the observed
    # sites' prior predictive draws, name -> [chains, draws, *shape].
    prior_predictive: dict = field(default_factory=dict, repr=False)

    def predict(self, data, per_draw: bool = False) -> Prediction:
        """The posterior predictive of the observed sites on `data` (see `pplc.runtime.predict.predict`)."""
        if self.program is None:
            raise PPLError(Diagnostic("this fit does not know its model (it was loaded from a file)",
                                      hint="use Fit.load(path, program=pplc.compile_file(...).program), or "
                                           "pplc.runtime.predict.predict(model.program, fit.draws, data)"))
        return predict(self.program, self.draws, data, per_draw=per_draw)

    def save(self, path: str) -> None:
        """Write the fit, atomically (a temporary file renamed over `path`): `.nc` as ArviZ InferenceData
        (netCDF, needs h5netcdf), anything else as .npz (one array per latent and deterministic, `trace/NAME`
        for the trace, `meta/json` for timing, dims, config and notes)."""
        if str(path).endswith(".nc"):
            idata = self.to_arviz()
            atomic_write(path, lambda tmp: idata.to_netcdf(tmp))
            return
        arrays = dict(self.draws)
        arrays.update({f"trace/{k}": v for k, v in self.trace.items()})
        arrays.update({f"observed/{k}": np.asarray(v) for k, v in self.observed.items()})
        arrays.update({f"constant/{k}": np.asarray(v) for k, v in self.constant.items()})
        arrays.update({f"prior_predictive/{k}": np.asarray(v) for k, v in self.prior_predictive.items()})
        arrays["meta/json"] = np.array(json.dumps(self._meta_json()))
        save_npz(path, arrays)

    def _meta_json(self) -> dict:
        def plain(x):
            if isinstance(x, dict):
                return {str(k): plain(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [plain(v) for v in x]
            if isinstance(x, (np.generic,)):
                return x.item()
            return x
        return plain({"model_name": self.model_name, "timing": self.timing, "dims": self.dims, "meta": self.meta})

    @classmethod
    def load(cls, path: str, program: Program | None = None) -> Fit:
        """Read a fit written by `save` (.npz or .nc); give `program` (a compiled Model's) to `predict` with it."""
        if str(path).endswith(".nc"):
            from .az import arviz

            try:
                idata = arviz().from_netcdf(path)
            except (OSError, ValueError) as e:
                raise PPLError(Diagnostic(f"{path} is not an ArviZ InferenceData file (netCDF): "
                                          f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}")) from None
            return cls.from_arviz(idata, program=program)
        if not str(path).endswith(".npz"):  # a data file (.json), a .npy, ...: not what a run writes
            kind = "a data file?" if str(path).endswith(".json") else "it is neither .npz nor .nc"
            raise PPLError(Diagnostic(f"{path} is not a fit file ({kind})",
                                      hint="`pplc summary` and `pplc plot` read what `pplc run --out FIT` writes "
                                           "(FIT.npz or FIT.nc)"))
        try:
            f = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise PPLError(Diagnostic(f"{path} is not a fit file (.npz or .nc): {str(e).splitlines()[0][:200]}",
                                      hint="`pplc summary` and `pplc plot` read what `pplc run --out` writes")) from None
        with f:
            if not hasattr(f, "files") or "meta/json" not in f.files:
                raise PPLError(Diagnostic(
                    f"{path} is not a fit written by pplc (it has no meta/json: a data file?)",
                    hint="`pplc summary` and `pplc plot` read what `pplc run --out FIT` writes, not the data"))
            groups = ("trace/", "meta/", "observed/", "constant/", "prior_predictive/")
            draws = {k: f[k] for k in f.files if not k.startswith(groups)}
            trace = {k[6:]: f[k] for k in f.files if k.startswith("trace/")}
            observed = {k[9:]: f[k] for k in f.files if k.startswith("observed/")}
            constant = {k[9:]: f[k] for k in f.files if k.startswith("constant/")}
            prior_pred = {k[17:]: f[k] for k in f.files if k.startswith("prior_predictive/")}
            meta = json.loads(str(f["meta/json"]))
        return cls(draws, trace, meta.get("timing", {}), meta.get("model_name", ""), program=program,
                   dims=meta.get("dims", {}), meta=meta.get("meta", {}), observed=observed, constant=constant,
                   prior_predictive=prior_pred)

    # ------------------------------------------------------------------ ArviZ
    def pointwise_log_likelihood(self) -> dict:
        """log p(y_i | draw) of every observed site y, per element i, at every draw: name -> [chains, draws,
        *shape] (float64; see `pplc.runtime.loglik`). Computed once (needs the model's program and its data),
        or as loaded from an .nc file; {} when neither (or when too large to keep: over loglik.MAX_ELEMENTS)."""
        if self.log_likelihood is None:
            self.log_likelihood = {}
            if self.program is not None and self.observed and self.draws:
                lead = int(np.prod(np.shape(next(iter(self.draws.values())))[:2]))
                if lead * sum(np.size(v) for v in self.observed.values()) <= loglik.MAX_ELEMENTS:
                    data = dict(self.constant, **self.observed)
                    self.log_likelihood = loglik.pointwise_log_likelihood(self.program, self.draws, data)
        return self.log_likelihood

    def replicated(self, seed: int = 0) -> dict:
        """Replicated data (posterior predictive draws) of every observed site: name -> [chains, draws, *shape]
        (see `pplc.runtime.replicate`); {} without the model's program and data, or when too large to keep."""
        if self.program is None or not self.observed or not self.draws:
            return {}
        lead = int(np.prod(np.shape(next(iter(self.draws.values())))[:2]))
        if lead * sum(np.size(v) for v in self.observed.values()) > loglik.MAX_ELEMENTS:
            return {}
        from ..replicate import replicate

        return replicate(self.program, self.draws, dict(self.constant, **self.observed), seed=seed)

    def to_arviz(self):
        """An ArviZ InferenceData: `posterior` (latents, deterministics and tracked quantities), `sample_stats`
        (lp, acceptance_rate, step_size, n_steps, diverging, tree_depth, energy, ...), `warmup_sample_stats`,
        `log_likelihood` (pointwise, per observed element: for `az.loo`, `az.waic`, `az.compare`),
        `posterior_predictive` (replicated data: for `az.plot_ppc`), and
        `observed_data` and `constant_data` when the fit knows its data."""
        from .az import arviz

        az = arviz()

        if self.meta.get("method") == "prior":
            return self._prior_to_arviz(az)
        tracked = [k for k in self.meta.get("tracked", []) if k in self.trace]
        posterior = dict(self.draws)
        posterior.update({k: self.trace[k] for k in tracked})
        stats = {ARVIZ_STATS.get(k, k): v for k, v in self.trace.items()
                 if not k.startswith("warmup_") and k not in tracked}
        warm = {ARVIZ_STATS.get(k[7:], k[7:]): v for k, v in self.trace.items() if k.startswith("warmup_")}
        known = set(posterior) | set(self.observed) | set(self.constant)
        dims = {k: _unique_dims(d) for k, d in self.dims.items() if k in known}
        attrs = {"inference_library": "pplc", "pplc_meta": json.dumps(self._meta_json())}
        kwargs = {}
        if warm:
            kwargs = {"warmup_sample_stats": warm, "save_warmup": True}
        ll = self.pointwise_log_likelihood()
        idata = az.from_dict(posterior=posterior, sample_stats=stats or None,
                             observed_data=_outcomes(self.observed) or None,
                             constant_data={k: np.asarray(v) for k, v in self.constant.items()} or None,
                             dims=dims, attrs=attrs, **kwargs)
        rep = self.replicated()
        if rep:  # y_rep: the observed sites drawn anew at each posterior draw (az.plot_ppc)
            rep = _outcomes(rep)
            idata.add_groups(posterior_predictive=az.dict_to_dataset(
                rep, dims={k: dims[k] for k in rep if k in dims and len(dims[k]) == np.ndim(rep[k]) - 2}))
        if ll:  # its own dims: an observed site's, less any event dims (a Dirichlet's last)
            ll_dims = {k: dims.get(k, [])[:np.ndim(v) - 2] for k, v in ll.items()}
            ll_dims = {k: d for k, d in ll_dims.items() if len(d) == np.ndim(ll[k]) - 2}
            idata.add_groups(log_likelihood=az.dict_to_dataset(ll, dims=ll_dims))
        return idata

    def _prior_to_arviz(self, az):
        """A prior run as InferenceData: `prior` and `prior_predictive` groups (and the data)."""
        known = set(self.draws) | set(self.prior_predictive) | set(self.observed) | set(self.constant)
        dims = {k: _unique_dims(d) for k, d in self.dims.items() if k in known}
        return az.from_dict(prior=dict(self.draws), prior_predictive=_outcomes(self.prior_predictive) or None,
                            observed_data=_outcomes(self.observed) or None,
                            constant_data={k: np.asarray(v) for k, v in self.constant.items()} or None, dims=dims,
                            attrs={"inference_library": "pplc", "pplc_meta": json.dumps(self._meta_json())})

    @classmethod
    def from_arviz(cls, idata, program: Program | None = None) -> Fit:
        """The Fit of an InferenceData written by `to_arviz` (other InferenceData: posterior and sample_stats)."""
        def arrays(group):
            if not hasattr(idata, group):
                return {}
            ds = getattr(idata, group)
            return {k: np.asarray(ds[k].values) for k in ds.data_vars}

        attrs = dict(getattr(idata, "attrs", None) or {})
        meta = json.loads(attrs["pplc_meta"]) if "pplc_meta" in attrs else {}
        info = meta.get("meta", {})
        tracked = set(info.get("tracked", []))
        post = arrays("posterior") or arrays("prior")
        order = list(meta.get("dims", {}))  # the model's order (netCDF lists variables sorted)
        post = dict(sorted(post.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
        draws = {k: v for k, v in post.items() if k not in tracked}
        trace = {k: v for k, v in post.items() if k in tracked}
        trace.update({FROM_ARVIZ_STATS.get(k, k): v for k, v in arrays("sample_stats").items()})
        trace.update({"warmup_" + FROM_ARVIZ_STATS.get(k, k): v for k, v in arrays("warmup_sample_stats").items()})
        ll = arrays("log_likelihood")
        return cls(draws, trace, meta.get("timing", {}), meta.get("model_name", ""), program=program,
                   dims=meta.get("dims", {}), meta=info, observed=arrays("observed_data"),
                   constant=arrays("constant_data"), log_likelihood=ll or None,
                   prior_predictive=arrays("prior_predictive"))

    def summary(self, per_array: int = PER_ARRAY, sort: str = "index") -> str:
        """Per parameter element: mean, MCSE, sd, 5/50/95% quantiles, bulk and tail ESS and rank-normalised split
        R-hat (ArviZ); arrays of more than `per_array` elements condensed to their `per_array` elements of largest
        R-hat; rows in index order (`sort="rhat"`: largest R-hat first); then the run's throughput and warnings
        (R-hat, ESS, divergences, tree depth, E-BFMI), each with what to try."""
        return summary_text(self, per_array=per_array, sort=sort)

    def warnings(self) -> list[SummaryWarning]:
        """The summary's warnings (kind, message, hint)."""
        return fit_warnings(self) if self.draws else []


def _unique_dims(dims) -> list:
    """Dim names for xarray, which needs them distinct within a variable: a repeated one gets a suffix."""
    out = []
    for d in dims:
        name, k = d, 1
        while name in out:
            name, k = f"{d}_{k}", k + 1
        out.append(name)
    return out
