"""The Python API: compile .ppl text to a Model; evaluate its log density, draw from it, sample it."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from .compiler import ir as ir_lib
from .compiler.check import check
from .compiler.codegen import generate
from .dsl.diagnostics import Diagnostic, PPLError
from .dsl.parse import parse
from .dsl.spans import Source
from .runtime import data as data_lib
from .runtime.data import rows as rows_lib
from .runtime.density import LogDensity
from .runtime.devices import cache as cache_lib
from .runtime.devices import distributed
from .runtime.devices.mesh import is_main_process
from .runtime.fitting import laplace as laplace_lib
from .runtime.fitting import optimize as optimize_lib
from .runtime.fitting import variational as variational_lib
from .runtime.output import Fit
from .runtime.program import Program
from .runtime.sampling import hostloop
from .runtime.sampling.config import SamplerConfig
from .runtime.sampling.run import sample as run_sampler


def _as_data(program: Program, data, allow_missing=False) -> data_lib.BoundData:
    """Data (a BoundData, a file name or arrays by name) checked against the model, with its transformed data
    computed; warnings go to stderr."""
    if isinstance(data, data_lib.BoundData):
        return data
    bound = data_lib.bind_program(program, data, allow_missing=allow_missing)
    for w in bound.warnings:
        print(w.render(None), file=sys.stderr)
    return bound


def _stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress(progress, cfg):
    """A `Progress` for `Model.sample(progress=...)`: True for the default one, or the one given."""
    if progress is True:
        from .runtime.output.progress import Progress

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
    """A compiled model: the checked IR, the generated program (`source`), the compiler's warnings, and the
    runtime's `Program` (the generated program loaded)."""

    ir: ir_lib.Model
    source: str
    warnings: list
    filename: str

    def __post_init__(self):
        self.program = Program.from_source(self.ir, self.source, self.filename)
        self._densities = {}  # (devices, spmd, x64, sizes, data shapes and dtypes) -> LogDensity

    @property
    def module(self):
        """The generated program, loaded as a module."""
        return self.program.module

    @property
    def latents(self) -> list[str]:
        return self.program.latent_names

    # ------------------------------------------------------------------ API
    def sample_prior(self, data, seed: int = 0) -> dict:
        """One joint draw from the prior: every latent, deterministic and observed site (data may omit the
        observed arrays if their dims are known from other data)."""
        import jax

        bound = _as_data(self.program, data, allow_missing=True)
        arrays = bound.with_placeholders(self.ir.inputs)  # observed arrays not given: the prior draws them
        sizes = bound.sizes

        def draw(key, arrays):  # one compiled program (TFP's sampler op by op would compile each op)
            return self.program.by_name(self.program.unsharded_model(arrays, sizes).sample(seed=key))

        terms = {v.name for v in self.ir.of_kind("target")}  # `target +=` sites: no values of their own
        values = {k: np.asarray(v) for k, v in jax.jit(draw)(jax.random.PRNGKey(seed), arrays).items()
                  if k not in terms}
        latents = {n: values[n] for n in self.latents}
        extra = self.module.derived(latents, arrays, bound.sizes, self.program.all_true_masks(bound.sizes), [])
        values.update({k: np.asarray(v) for k, v in extra.items()})
        return values

    def log_density(self, data, devices: int = 1, spmd: str = "shard_map") -> LogDensity:
        """The log density with `data` bound, as pure JAX functions of the latents: `unconstrained(z)` (with the
        log-Jacobian: what a sampler wants; works under jax.jit, jax.grad, jax.vmap), `value_and_grad(z)`
        (compiled once), `constrain`, `unconstrain`, `init(seed)`. `devices` > 1: the sharded program on a mesh
        of that many devices (same values). One is kept per data shape, devices and SPMD mode, so that a second
        call with data of the same shapes reuses its compiled programs."""
        import jax

        bound = _as_data(self.program, data)
        key = (devices, spmd, bool(jax.config.jax_enable_x64), tuple(sorted(bound.sizes.items())),
               tuple(sorted((k, np.shape(a), str(np.asarray(a).dtype)) for k, a in bound.arrays.items())))
        cached = self._densities.get(key)
        if cached is None:
            cached = self._densities[key] = LogDensity(self.program, bound, devices, spmd)
            cached._bound = bound
            return cached
        return cached if cached._bound is bound else cached.with_data(bound)

    def log_prob(self, params: dict, data, devices: int = 1, spmd: str = "shard_map"):
        """The model's log density (constrained scale, no Jacobian) at `params`, with the data split
        over `devices` devices (1: the unsharded model); compiled once per data shape."""
        val, _ = self._evaluate(params, data, devices, False, spmd)
        val = np.asarray(val)
        return float(val) if val.ndim == 0 else val

    def grad_log_prob(self, params: dict, data, devices: int = 1, spmd: str = "shard_map") -> dict:
        """The gradient of `log_prob` with respect to every latent (summed over any leading batch dims); compiled
        once per data shape."""
        _, grad = self._evaluate(params, data, devices, True, spmd)
        return grad

    def _evaluate(self, params: dict, data, devices: int, with_grad: bool, spmd: str = "shard_map"):
        """The log density at `params` and (`with_grad`) its gradient, in one program: `log_prob` and
        `grad_log_prob` at once."""
        return self.log_density(data, devices, spmd).log_prob(params, with_grad)

    def sample(self, data, devices: int = 1, *, spmd: str = "shard_map", progress: bool = False,
               matmul_precision: str | None = None, checkpoint: str | None = None,
               checkpoint_every: int | None = None, resume: bool = False, block: int | None = None,
               coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               **options) -> Fit:
        """Sample the posterior with the data split over `devices` devices. `options` are `SamplerConfig`'s
        fields (chains=4, warmup=1000, draws=1000, sampler="nuts", step_size, leapfrog=10, seed=0,
        target_accept, init="uniform", max_tree_depth=10, metric="diag", x64=False: compute in float64
        throughout, as Stan does; chain_groups=1: G groups of devices, each running chains/G of the chains on its own
        copy of the data, see docs/scaling.md); an unknown name is an error.
        `progress`: True for a progress bar (or a `pplc.runtime.output.progress.Progress`); `checkpoint`: a path
        where the whole sampler state is saved every `checkpoint_every` iterations, `resume` to go on from it
        (the same draws as an uninterrupted run); `block`: iterations per SPMD call. Ctrl-C raises
        `pplc.Interrupted`, whose `fit` holds the draws so far.
        `matmul_precision`: one of MATMUL_PRECISIONS, for the matmuls of the whole run.
        Several processes (hosts): `coordinator` ("HOST:PORT" of process 0), `num_processes`, `process_id` join
        this one to them through `jax.distributed` (before anything else uses JAX; under Slurm or Open MPI JAX
        finds them itself); `devices` then counts this process's devices, the mesh spans all processes, and
        only process 0 shows progress (every process gets the whole Fit). See docs/scaling.md."""
        import contextlib

        import jax

        if "init" in options:
            options["init"] = str(options["init"])
        cfg = SamplerConfig.from_options(**options)
        cfg.validate()
        distributed.initialize(coordinator, num_processes, process_id, devices)
        if not is_main_process():
            progress = False
        with (jax.enable_x64(True) if cfg.x64 else contextlib.nullcontext()):
            # With several processes each reads only its rows of the sharded data (docs/scaling.md).
            bound, mesh, layout = rows_lib.sample_data(self.program, data, devices, cfg.chain_groups, str(cfg.init))
            with matmul_precision_context(matmul_precision):
                try:
                    result = run_sampler(self.program, bound, layout, mesh, cfg, spmd,
                                         log=_stderr_log if progress else None, progress=_progress(progress, cfg),
                                         block=block, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                                         resume=resume)
                except hostloop.Interrupted as e:
                    e.fit = self._fit(*e.result, cfg, bound, notes=[e.note])
                    raise
        return self._fit(*result, cfg, bound)

    def optimize(self, data, *, jacobian: bool = False, laplace: int | None = None, iterations: int = 2000,
                 seed: int = 0, init: dict | None = None, devices: int = 1, spmd: str = "shard_map",
                 x64: bool = False) -> optimize_lib.OptimizeResult:
        """The MAP estimate by L-BFGS (TFP) on the log density over the unconstrained latents, with the data split
        over `devices` devices: the mode over the constrained parameters (no Jacobian, CmdStan's default), or with
        `jacobian` the mode of the density on the unconstrained scale. From uniform(-2, 2) initial values (`seed`)
        or the constrained values `init`. `laplace`: that many draws of the Laplace approximation at the mode
        (`result.laplace`, a Fit; `result.to_arviz()`). `x64`: float64 throughout, as CmdStan. The result holds
        every latent, deterministic and tracked value by name (`result.params`, `result["beta"]`)."""
        import contextlib

        import jax

        with (jax.enable_x64(True) if x64 else contextlib.nullcontext()):
            bound = _as_data(self.program, data)
            ld = self.log_density(bound, devices, spmd)
            name = os.path.basename(self.filename)
            result = optimize_lib.optimize(ld, bound, jacobian, iterations, seed, init, name)
            if laplace:
                result.laplace = laplace_lib.laplace(ld, bound, result, laplace, seed)
        return result

    def variational(self, data, *, algorithm: str = "meanfield", draws: int = 1000, iterations: int = 10000,
                    seed: int = 0, learning_rate: float = 0.05, grad_samples: int = 1, init: dict | None = None,
                    devices: int = 1, spmd: str = "shard_map", x64: bool = False) -> variational_lib.VariationalResult:
        """ADVI: a Gaussian on the unconstrained scale, `algorithm` "meanfield" or "fullrank", fitted by optax's
        Adam to the ELBO (reparameterised gradients, `grad_samples` per iteration), the data split over `devices`
        devices; then `draws` independent draws, constrained (`result.fit`, a Fit; `result.draws`,
        `result.to_arviz()`)."""
        import contextlib

        import jax

        with (jax.enable_x64(True) if x64 else contextlib.nullcontext()):
            bound = _as_data(self.program, data)
            ld = self.log_density(bound, devices, spmd)
            return variational_lib.variational(ld, bound, algorithm, draws, iterations, seed, learning_rate,
                                               grad_samples, init=init, model_name=os.path.basename(self.filename))

    def sample_prior_predictive(self, data=None, chains: int = 4, draws: int = 1000, seed: int = 0) -> Fit:
        """Draws from the prior and the prior predictive (`pplc run --prior`): a Fit whose `draws` are prior draws
        of the latents, deterministics and tracked values and whose `prior_predictive` holds the observed sites'
        draws ([chains, draws, *shape]); `to_arviz()` gives ArviZ's `prior` and `prior_predictive` groups. The
        data may leave out the observed arrays."""
        import time

        from .runtime.replicate import prior_draws

        start = time.time()
        bound = _as_data(self.program, data, allow_missing=True)
        values, predictive = prior_draws(self.program, bound, chains, draws, seed)
        tracks = [v.name for v in self.ir.of_kind("track")]
        observed = {k: np.asarray(bound.arrays[k]) for k in self.module.OBSERVED if k in bound.arrays}
        constant = {k: np.asarray(x) for k, x in bound.arrays.items() if k not in observed}
        dims = {v.name: list(v.phys) for v in self.ir.variables
                if v.name in values or v.name in predictive or v.name in observed}
        meta = {"method": "prior", "config": {"chains": chains, "draws": draws, "seed": seed}, "tracked": tracks,
                "notes": ["prior draws (pplc run --prior): no data enter them"], "model_file": self.filename}
        return Fit(values, {}, {"total_seconds": time.time() - start}, os.path.basename(self.filename),
                   program=self.program, dims=dims, meta=meta, observed=observed, constant=constant,
                   prior_predictive=predictive)

    def _fit(self, draws_, trace, timing, cfg, bound, notes=()) -> Fit:
        """The Fit of a run: tracked quantities moved to the trace; dims, config and observed data kept."""
        import dataclasses

        tracks = [v.name for v in self.ir.of_kind("track")]
        trace.update({k: v for k, v in draws_.items() if k in tracks})
        draws_ = {k: v for k, v in draws_.items() if k not in tracks}
        observed, constant = rows_lib.fit_data(self.program, bound, self.module.OBSERVED)
        dims = {v.name: list(v.phys) for v in self.ir.variables
                if v.name in draws_ or v.name in trace or v.name in observed}
        meta = {"config": dataclasses.asdict(cfg), "tracked": tracks, "notes": list(notes),
                "model_file": self.filename}
        return Fit(draws_, trace, timing, os.path.basename(self.filename), program=self.program, dims=dims,
                   meta=meta, observed=observed, constant=constant)


def compilation_cache(path: str | bool | None = True) -> str | None:
    """Where JAX's persistent compilation cache keeps compiled programs: True for the default folder
    ($PPLC_CACHE_DIR, else $XDG_CACHE_HOME/pplc or ~/.cache/pplc), a folder, or False to run without it (as
    `pplc run --no-cache`). The cache is on by default from the first `compile`; returns the folder or None."""
    return cache_lib.set_cache(path)


def compile(text: str, filename: str = "<string>", consts: dict | None = None) -> Model:  # noqa: A001
    """Compile .ppl source text (`consts` override the model's const values); raises PPLError with
    located diagnostics. Turns JAX's persistent compilation cache on, unless `compilation_cache(False)` was
    called or PPLC_NO_CACHE is set."""
    cache_lib.ensure_default()
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
