"""The Python API: compile .ppl text to a Model; evaluate its log density, draw from it, sample it."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .compiler import ir
from .compiler.check import check
from .compiler.codegen import generate
from .dsl.diagnostics import Diagnostic, PPLError
from .dsl.parse import parse
from .dsl.spans import Source
from .runtime import data as data_lib
from .runtime import hostloop
from .runtime.output import Fit
from .runtime.program import load_module, module_name


def _as_data(model: ir.Model, data, allow_missing=False) -> data_lib.BoundData:
    if isinstance(data, data_lib.BoundData):
        return data
    filename = "<data>"
    if isinstance(data, (str, os.PathLike)):
        filename = str(data)
        data = data_lib.load(filename)
    return data_lib.bind(model, dict(data), filename, allow_missing=allow_missing)


def _progress(progress, cfg):
    """A `Progress` for `Model.sample(progress=...)`: True for the default one, or the one given."""
    if progress is True:
        from .runtime.progress import Progress

        return Progress(cfg.warmup, cfg.draws)
    return progress or None


MATMUL_PRECISIONS = ("default", "bfloat16", "tensorfloat32", "float32", "highest")


def matmul_precision_context(name: str | None):
    """A context in which JAX matmuls run at `name` (None or "default": the backend's own choice;
    "tensorfloat32" is what the seed used, its TPUs' bfloat16 default made HMC diverge)."""
    import contextlib

    import jax

    if name is None or name == "default":
        return contextlib.nullcontext()
    if name not in MATMUL_PRECISIONS:
        raise PPLError(Diagnostic(f"unknown matmul precision `{name}`; one of: {', '.join(MATMUL_PRECISIONS)}"))
    return jax.default_matmul_precision(name)


@dataclass
class Model:
    """A compiled model: the checked IR, the generated program (`source`) and that program loaded."""

    ir: ir.Model
    source: str
    warnings: list
    filename: str

    def __post_init__(self):
        self.module = load_module(self.source, module_name(self.filename))

    # ------------------------------------------------------------------ helpers
    @property
    def latents(self) -> list[str]:
        return [v.name for v in self.ir.of_kind("latent")]

    def _params(self, params: dict, layout=None) -> list:
        out = []
        for v in self.ir.of_kind("latent"):
            if v.name not in params:
                raise PPLError(Diagnostic(f"no value for latent `{v.name}` in params"))
            x = np.asarray(params[v.name], data_lib.dtype_of("real"))
            if layout is not None:
                x = layout.pad(x, v.phys, axis0=x.ndim - len(v.phys))
            out.append(x)
        return out

    # ------------------------------------------------------------------ API
    def sample_prior(self, data, seed: int = 0) -> dict:
        """One joint draw from the prior: every latent, deterministic and observed site (data may omit the
        observed arrays if their dims are known from other data)."""
        import jax

        bound = _as_data(self.ir, data, allow_missing=True)
        arrays = dict(bound.arrays)
        for v in self.ir.of_kind("data"):  # observed arrays not given: placeholders, the prior draws them
            arrays.setdefault(v.name, np.zeros([bound.sizes[d] for d in v.phys], data_lib.DTYPES[v.dtype]))
        masks = {d: np.ones(bound.sizes[d], bool) for d in self.ir.sharded_dims}
        jd = self.module.make_model(arrays, bound.sizes, masks, [])
        draw = jd.sample(seed=jax.random.PRNGKey(seed))
        values = {k: np.asarray(v) for k, v in draw._asdict().items()}
        latents = {n: values[n] for n in self.latents}
        extra = self.module.derived(latents, arrays, bound.sizes, masks, [])
        values.update({k: np.asarray(v) for k, v in extra.items()})
        return values

    def _spmd_setup(self, bound, devices):
        from .runtime import mesh as mesh_lib

        mesh_lib.request_devices(devices)
        mesh = mesh_lib.make_mesh(devices)
        layout = data_lib.layout(self.ir, bound.sizes, devices)
        return mesh, layout

    def _evaluate(self, params, data, devices, with_grad, mode="shard_map"):
        """The log density at constrained `params` (and its gradient), on 1 device or split over several."""
        import jax
        from jax.sharding import PartitionSpec as P

        from .runtime import spmd as spmd_lib
        from .runtime.sampling import spec_of

        bound = _as_data(self.ir, data)
        latents = self.ir.of_kind("latent")
        names = [v.name for v in latents]

        def value_and_grad(parts, data, masks, dims, axes):
            def lp(parts):
                jd = self.module.make_model(data, dims, masks, axes)
                pinned = jd.experimental_pin(**self.module.observed(data))
                return pinned.unnormalized_log_prob(dict(zip(names, parts)))
            if not with_grad:
                return lp(parts), None
            val, vjp = jax.vjp(lp, parts)
            return val, vjp(jax.numpy.ones_like(val))[0]

        if devices == 1:  # the unsharded model: all the data, no padding, no shard axes
            sizes = bound.sizes
            masks = {d: np.ones(sizes[d], bool) for d in self.ir.sharded_dims}
            fn = jax.jit(lambda parts, data, masks: value_and_grad(parts, data, masks, sizes, []))
            val, grad = fn(self._params(params), bound.arrays, masks)
            grad = None if grad is None else {v.name: np.asarray(g) for v, g in zip(latents, grad)}
            return val, grad
        mesh, layout = self._spmd_setup(bound, devices)
        local = layout.local
        axes = ["data"] if layout.padded else []
        parts = self._params(params, layout)
        lead = [p.ndim - len(v.phys) for p, v in zip(parts, latents)]
        part_specs = [spec_of(v.phys, layout, lead=k) for v, k in zip(latents, lead)]
        data_specs = {v.name: spec_of(v.phys, layout) for v in self.ir.of_kind("data")}
        mask_specs = {d: P("data") for d in layout.padded}
        out_specs = (P(), part_specs if with_grad else None)
        fn = spmd_lib.spmd(lambda p, d, m: value_and_grad(p, d, m, local, axes), mesh,
                           (part_specs, data_specs, mask_specs), out_specs, mode)
        arrays = {v.name: layout.pad(bound.arrays[v.name], v.phys) for v in self.ir.of_kind("data")}
        val, grad = fn(parts, arrays, layout.masks())
        if grad is not None:
            grad = {v.name: layout.unpad(np.asarray(g), v.phys, axis0=k) for v, g, k in zip(latents, grad, lead)}
        return val, grad

    def log_prob(self, params: dict, data, devices: int = 1, spmd: str = "shard_map"):
        """The model's log density (constrained scale, no Jacobian) at `params`, with the data split
        over `devices` devices (1: the unsharded model)."""
        val, _ = self._evaluate(params, data, devices, False, spmd)
        val = np.asarray(val)
        return float(val) if val.ndim == 0 else val

    def grad_log_prob(self, params: dict, data, devices: int = 1, spmd: str = "shard_map") -> dict:
        """The gradient of `log_prob` with respect to every latent (summed over any leading batch dims)."""
        _, grad = self._evaluate(params, data, devices, True, spmd)
        return grad

    def sample(self, data, devices: int = 1, chains: int = 4, warmup: int = 1000, draws: int = 1000,
               sampler: str = "nuts", step_size: float | None = None, leapfrog: int = 10, seed: int = 0,
               target_accept: float | None = None, init: str = "uniform", spmd: str = "shard_map",
               progress: bool = False, matmul_precision: str | None = None, max_tree_depth: int = 10,
               metric: str = "diag", x64: bool = False, checkpoint: str | None = None,
               checkpoint_every: int | None = None, resume: bool = False, block: int | None = None) -> Fit:
        """Sample the posterior with the data split over `devices` devices; see `SamplerConfig`.
        `progress`: True for a progress bar (or a `pplc.runtime.progress.Progress`); `checkpoint`: a path where
        the whole sampler state is saved every `checkpoint_every` iterations, `resume` to go on from it (the
        same draws as an uninterrupted run); `block`: iterations per SPMD call. Ctrl-C raises
        `pplc.Interrupted`, whose `fit` holds the draws so far.
        `matmul_precision`: one of MATMUL_PRECISIONS, for the matmuls of the whole run; `x64`: compute in
        float64 throughout (as Stan does)."""
        import contextlib

        import jax

        from .runtime import sampling

        cfg = sampling.SamplerConfig(sampler=sampler, chains=chains, warmup=warmup, draws=draws,
                                     step_size=step_size, leapfrog=leapfrog, target_accept=target_accept,
                                     seed=seed, init=str(init), max_tree_depth=max_tree_depth, metric=metric,
                                     x64=x64)
        cfg.validate()
        with (jax.enable_x64(True) if x64 else contextlib.nullcontext()):
            bound = _as_data(self.ir, data)
            mesh, layout = self._spmd_setup(bound, devices)
            with matmul_precision_context(matmul_precision):
                try:
                    result = sampling.sample(self, bound, layout, mesh, cfg, spmd,
                                             log=sampling.stderr_log if progress else None,
                                             progress=_progress(progress, cfg), block=block, checkpoint=checkpoint,
                                             checkpoint_every=checkpoint_every, resume=resume)
                except hostloop.Interrupted as e:
                    e.fit = self._fit(*e.result, cfg, bound, notes=[e.note])
                    raise
        return self._fit(*result, cfg, bound)

    def _fit(self, draws_, trace, timing, cfg, bound, notes=()) -> Fit:
        """The Fit of a run: tracked quantities moved to the trace; dims, config and observed data kept."""
        import dataclasses

        tracks = [v.name for v in self.ir.of_kind("track")]
        trace.update({k: v for k, v in draws_.items() if k in tracks})
        draws_ = {k: v for k, v in draws_.items() if k not in tracks}
        observed = {k: np.asarray(bound.arrays[k]) for k in self.module.OBSERVED if k in bound.arrays}
        dims = {v.name: list(v.phys) for v in self.ir.variables
                if v.name in draws_ or v.name in trace or v.name in observed}
        meta = {"config": dataclasses.asdict(cfg), "tracked": tracks, "notes": list(notes),
                "model_file": self.filename}
        return Fit(draws_, trace, timing, os.path.basename(self.filename), model=self, dims=dims, meta=meta,
                   observed=observed)


def compile(text: str, filename: str = "<string>", consts: dict | None = None) -> Model:  # noqa: A001
    """Compile .ppl source text (`consts` override the model's const values); raises PPLError with
    located diagnostics."""
    source = Source(text, filename)
    program = parse(text, filename)
    model, warnings = check(program, source, consts)
    return Model(model, generate(model, filename), warnings, filename)


def compile_file(path: str, consts: dict | None = None) -> Model:
    """Compile a .ppl file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise PPLError(Diagnostic(f"cannot read {path}: {e.strerror}")) from None
    except UnicodeDecodeError:
        raise PPLError(Diagnostic(f"cannot read {path}: it is not a text file (UTF-8)",
                                  hint="a model is a .ppl text file")) from None
    return compile(text, path, consts)
