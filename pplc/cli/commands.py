"""The `pplc` subcommands: check, compile, run, optimize, variational, summary, plot, data, predict, recommend."""
from __future__ import annotations

import os
import sys

from .. import api
from ..dsl.diagnostics import Diagnostic, PPLError
from ..runtime import data as data_lib
from ..runtime.devices import distributed
from ..runtime.devices.mesh import is_main_process, request_devices
from ..runtime.output import Fit, loo, plots
from ..runtime.sampling import sizing
from ..runtime.sampling.config import SamplerConfig
from ..runtime.sampling.hostloop import Interrupted
from ..studies import datasets, recommend
from .options import sampler_settings


def describe(model: api.Model) -> str:
    """What `pplc check` prints: variables with shapes, plates, placement and support."""
    ir = model.ir
    lines = [f"{ir.filename}: ok"]

    def shape(v):
        return f"{v.dtype}[{', '.join(v.phys)}]" if v.phys else v.dtype

    rows = []
    for v in ir.variables:
        if v.kind == "const":
            rows.append(("const", v.name, repr(v.const_value), ""))
            continue
        where = "sharded over `" + v.sharded_dim + "`" if v.sharded_dim else "replicated"
        plates = f"plate {', '.join(v.plates)}; " if v.plates else ""
        extra = ""
        if v.dist is not None:
            extra = f"~ {v.dist.spec.name}, support {v.support}"
        rows.append((v.kind, v.name, shape(v), plates + where + ("; " + extra if extra else "")))
    w = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
    for r in rows:
        lines.append(f"  {r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}".rstrip())
    dims = []
    for d in ir.dims:
        derived = f"`{d.base}` less {d.offset}" if (d.offset or 0) >= 0 else f"`{d.base}` plus {-d.offset}"
        how = {"data-scalar": "from the int data scalar", "derived": derived}.get(d.source, "from data shapes")
        size = f" = {d.size}" if d.size is not None else f" ({how})"
        dims.append(f"{d.name}{size}{', sharded over devices' if d.sharded else ''}")
    lines.append("  dims: " + ("; ".join(dims) or "none"))
    return "\n".join(lines)


def parse_consts(items) -> dict:
    """`--const NAME=VALUE` arguments as {name: int or float}."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.isidentifier():
                raise ValueError
            out[name] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise PPLError(Diagnostic(f"--const takes NAME=NUMBER, got `{item}`")) from None
    return out


def _warn(diagnostics) -> None:
    for w in diagnostics:
        print(w.render(None), file=sys.stderr)


def _fit_file(path: str, program=None) -> Fit:
    if not os.path.exists(path):
        raise PPLError(Diagnostic(f"no such fit file: {path}"))
    return Fit.load(path, program=program)


def run_command(args) -> int:
    """Run the parsed command line `args`; the exit status."""
    if args.command == "run":
        out_dir = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(out_dir):  # before the run, not after it
            raise PPLError(Diagnostic(f"cannot write --out {args.out}: there is no folder {out_dir}"))
        if args.devices < 1:
            raise PPLError(Diagnostic(f"--devices must be at least 1 (got {args.devices})",
                                      hint="--devices N splits the sharded plates over N devices; --devices 1 runs "
                                           "the model on one"))
        # Before JAX starts its backend: several processes join (flags, or a Slurm/Open MPI environment).
        distributed.initialize(args.coordinator, args.num_processes, args.process_id, args.devices)
        request_devices(args.devices)
    if args.command in ("optimize", "variational"):
        _writable(args.out)
        request_devices(args.devices)
    if args.command in COMMANDS:
        return COMMANDS[args.command](args)
    model = api.compile_file(args.model, consts=parse_consts(getattr(args, "const", [])))
    _warn(model.warnings)
    return MODEL_COMMANDS[args.command](args, model)


def _check(args, model) -> int:
    print(describe(model))
    if args.data:
        bound = data_lib.bind_program(model.program, args.data)
        _warn(bound.warnings)
        sizes = "; ".join(f"{d} = {n}" for d, n in bound.sizes.items() if not d.isdigit())
        print(f"{args.data}: ok" + (f" ({sizes})" if sizes else ""))
        if args.devices is not None:
            cfg = SamplerConfig.from_options(**sampler_settings(args))
            cfg.validate()
            print(sizing.size(model.program, bound, args.devices, cfg).text())
    elif args.devices is not None:
        raise PPLError(Diagnostic("--devices needs --data: the memory a run needs depends on the data's sizes"))
    return 0


def _compile(args, model) -> int:
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(model.source)
        except OSError as e:
            raise PPLError(Diagnostic(f"cannot write {args.output}: {e.strerror}")) from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(model.source)
    return 0


def _devices_note(args, model) -> None:
    """`--devices N` (N > 1) on a model with no sharded plate: a note that the devices have nothing to split."""
    if args.devices > 1 and not model.ir.sharded_dims:
        print(f"note: {os.path.basename(args.model)} has no sharded plate, so the {args.devices} devices have "
              f"nothing to split: each runs the whole model (--devices 1 does the same work on one)\n"
              f"  hint: `plate DIM sharded over devices {{ ... }}` splits DIM's items over the devices",
              file=sys.stderr)


def _run(args, model) -> int:
    _devices_note(args, model)
    declared = [v.name for v in model.ir.of_kind("data")]
    if args.data is None and declared and not args.prior:
        raise PPLError(Diagnostic(f"{args.model} declares data ({', '.join(f'`{n}`' for n in declared)}): "
                                  "give it with --data FILE", hint="a .npz or Stan-style .json file, arrays by name"))
    main = is_main_process()  # of several processes, process 0 alone writes and prints
    if args.prior:  # prior and prior predictive draws: no sampler, no data needed but the sizes
        fit = model.sample_prior_predictive(args.data, chains=args.chains, draws=args.draws, seed=args.seed)
        if main:
            fit.save(args.out)
            if not args.quiet:
                print(fit.summary())
            print(f"wrote {args.out}", file=sys.stderr)
        return distributed.agree(0)
    try:
        fit = model.sample(args.data, devices=args.devices, spmd=args.spmd, progress=not args.quiet and main,
                           matmul_precision=args.matmul_precision, checkpoint=args.checkpoint,
                           checkpoint_every=args.checkpoint_every, resume=args.resume, block=args.block,
                           **sampler_settings(args))
    except Interrupted as e:
        return distributed.agree(_interrupted(e, args) if main else 130)
    status = 0
    if main:
        try:
            fit.save(args.out)
            if not args.quiet:
                print(fit.summary())
            print(f"wrote {args.out}", file=sys.stderr)
        except Exception:
            distributed.agree(1)  # the others learn of it, then the error is reported here
            raise
    return distributed.agree(status)


def _writable(path: str) -> None:
    """--out in an existing folder, checked before the run."""
    out_dir = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(out_dir):
        raise PPLError(Diagnostic(f"cannot write --out {path}: there is no folder {out_dir}"))


def _needs_data(args, model) -> None:
    declared = [v.name for v in model.ir.of_kind("data")]
    if args.data is None and declared:
        raise PPLError(Diagnostic(f"{args.model} declares data ({', '.join(f'`{n}`' for n in declared)}): "
                                  "give it with --data FILE", hint="a .npz or Stan-style .json file, arrays by name"))
    _devices_note(args, model)


def _optimize(args, model) -> int:
    """`pplc optimize`: the MAP estimate (and the Laplace approximation's draws) written to --out."""
    _needs_data(args, model)
    if args.laplace_out and not args.laplace:
        raise PPLError(Diagnostic("--laplace-out needs --laplace DRAWS"))
    result = model.optimize(args.data, jacobian=args.jacobian, laplace=args.laplace, iterations=args.iterations,
                            seed=args.seed, devices=args.devices, x64=args.x64)
    result.save(args.out)
    if not args.quiet:
        print(result.summary())
    print(f"wrote {args.out}", file=sys.stderr)
    if result.laplace is not None:
        root, ext = os.path.splitext(args.out)
        path = args.laplace_out or f"{root}_laplace{ext if ext in ('.npz', '.nc') else '.npz'}"
        _writable(path)
        result.laplace.save(path)
        print(f"wrote {args.laplace} draws of the Laplace approximation to {path}", file=sys.stderr)
    if not result.converged:
        print(f"warning: L-BFGS did not converge ({result.message})\n  try: more --iterations, another --seed, "
              "or --x64", file=sys.stderr)
    return 0


def _variational(args, model) -> int:
    """`pplc variational`: ADVI's draws written to --out as a fit."""
    _needs_data(args, model)
    result = model.variational(args.data, algorithm=args.algorithm, draws=args.draws, iterations=args.iterations,
                               seed=args.seed, learning_rate=args.learning_rate, grad_samples=args.grad_samples,
                               devices=args.devices, x64=args.x64)
    result.save(args.out)
    if not args.quiet:
        print(result.summary())
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _interrupted(e: Interrupted, args) -> int:
    """Ctrl-C during `pplc run`: the draws so far go to --out (atomically), with a note; exit status 130."""
    fit = e.fit
    if fit is not None and fit.draws and next(iter(fit.draws.values())).shape[1] > 0:
        fit.save(args.out)
        n = next(iter(fit.draws.values())).shape[1]
        print(f"{e.note}\nwrote the {n} draws so far to {args.out}", file=sys.stderr)
    else:
        print(f"{e.note}\nno draws yet: {args.out} not written", file=sys.stderr)
    return 130


def _summary(args) -> int:
    print(_fit_file(args.fit).summary(per_array=args.rows, sort=args.sort))
    return 0


def _loo(args) -> int:
    """`pplc loo`: PSIS-LOO of each fit (ArviZ), and ArviZ's comparison when there are several."""
    print(loo.loo_text(args.fits, var_name=args.var))
    return 0


def _plot(args) -> int:
    paths = plots.plot(_fit_file(args.fit), args.output, elements=args.elements)
    if args.ppc:
        paths += plots.ppc_plot(args.fit, args.output)
    print(f"wrote {len(paths)} plots to {args.output}: " + ", ".join(os.path.basename(p) for p in paths),
          file=sys.stderr)
    return 0


def _data(args) -> int:
    """`pplc data`: MNIST -> OUT (train) and OUT_test; MovieLens -> OUT (watched, meta/ titles and genres)."""
    if args.dataset == "mnist":
        train, test = datasets.load_mnist(args.directory, args.train, args.test)
        datasets.save(args.output, train)
        datasets.save(datasets.test_path(args.output), test)
        print(f"wrote {args.output} ({len(train['labels'])} training images) and {datasets.test_path(args.output)} "
              f"({len(test['labels'])} test images), pixels in [0, 1]", file=sys.stderr)
        return 0
    if args.train is not None or args.test is not None:
        raise PPLError(Diagnostic("--train and --test are options of `pplc data mnist`"))
    ml = datasets.load_movielens(args.directory)
    datasets.save(args.output, ml)
    w = ml["watched"]
    print(f"wrote {args.output} ({ml['meta/dataset']}: watched {w.shape[0]} users x {w.shape[1]} movies, "
          f"{int(w.sum())} watched; titles and first genres under meta/)", file=sys.stderr)
    return 0


def _predict(args, model) -> int:
    """`pplc predict`: a saved fit's posterior predictive on some data."""
    fit = _fit_file(args.fit, model.program)
    pred = fit.predict(data_lib.load(args.data), per_draw=args.per_draw)
    _warn(pred.warnings)
    print(pred.summary())
    if args.output:
        pred.save(args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _recommend(args, model) -> int:
    """`pplc recommend`: a saved fit's top picks for some users of the data it was fitted to."""
    fit = _fit_file(args.fit, model.program)
    users = recommend.recommend(model.program, fit.draws, data_lib.load(args.data), users=args.user,
                                observed=args.observed)
    print("\n\n".join(u.summary() for u in users))
    paths = recommend.write(users, args.output)
    print("wrote " + ", ".join(paths), file=sys.stderr)
    return 0


COMMANDS = {"summary": _summary, "plot": _plot, "data": _data, "loo": _loo}  # on files: no model to compile
MODEL_COMMANDS = {"check": _check, "compile": _compile, "run": _run, "predict": _predict, "recommend": _recommend,
                  "optimize": _optimize, "variational": _variational}
