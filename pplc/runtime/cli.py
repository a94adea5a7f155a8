"""The `pplc` command line: check, compile, run, summary, plot, data, predict, recommend."""
from __future__ import annotations

import argparse
import os
import re
import sys
import traceback

from ..dsl.diagnostics import Diagnostic, PPLError

ISSUES_URL = "the pplc issue tracker"


def _describe(model) -> str:
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
        size = f" = {d.size}" if d.size is not None else f" (from {'the int data scalar' if d.source == 'data-scalar' else 'data shapes'})"
        dims.append(f"{d.name}{size}{', sharded over devices' if d.sharded else ''}")
    lines.append("  dims: " + ("; ".join(dims) or "none"))
    return "\n".join(lines)


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors as user errors: the usage, one line, exit status 1."""

    def error(self, message):
        self.exit(1, f"{self.prog}: error: {message}\n  hint: `{self.prog} --help` lists the options\n")


def _parser() -> argparse.ArgumentParser:
    ap = _ArgumentParser(prog="pplc", description="Compile and run .ppl probabilistic models "
                                 "(TFP on JAX, data-parallel over devices).")
    ap.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")
    sub = ap.add_subparsers(dest="command", required=True)

    const_help = "override a const of the model (repeatable)"
    c = sub.add_parser("check", help="parse and check a model; print its variables, shapes and placement")
    c.add_argument("model")
    c.add_argument("--const", action="append", default=[], metavar="NAME=VALUE", help=const_help)
    c.add_argument("--data", help="also check a data file (.npz or .json) against the model, without running it")

    c = sub.add_parser("compile", help="write the generated TFP-on-JAX program")
    c.add_argument("model")
    c.add_argument("--const", action="append", default=[], metavar="NAME=VALUE", help=const_help)
    c.add_argument("-o", "--output", help="output .py file (default: standard output)")

    r = sub.add_parser("run", help="sample a model's posterior")
    r.add_argument("model")
    r.add_argument("--const", action="append", default=[], metavar="NAME=VALUE", help=const_help)
    r.add_argument("--data", required=True, help=".npz or Stan-style .json data file")
    r.add_argument("--devices", type=int, default=1, help="devices to split sharded plates over (default 1)")
    r.add_argument("--chains", type=int, default=4)
    r.add_argument("--warmup", type=int, default=1000)
    r.add_argument("--draws", type=int, default=1000)
    r.add_argument("--sampler", default="nuts", choices=["nuts", "hmc"],
                   help="nuts (default: the No-U-Turn sampler, as Stan) or hmc (fixed --leapfrog steps)")
    r.add_argument("--leapfrog", type=int, default=10, help="leapfrog steps per HMC iteration (--sampler hmc)")
    r.add_argument("--max-tree-depth", type=int, default=10, help="NUTS: at most 2^depth leapfrog steps (default 10)")
    r.add_argument("--metric", default="diag", choices=["diag", "unit"],
                   help="mass matrix: diag (default; adapted in Stan's warmup windows) or unit (the identity)")
    r.add_argument("--step-size", type=float, default=None,
                   help="initial step size (default 1; Stan's heuristic and dual averaging adapt it in warmup)")
    r.add_argument("--target-accept", type=float, default=None,
                   help="acceptance the step size is adapted to (default 0.8 for NUTS, 0.75 for HMC)")
    r.add_argument("--init", default="uniform", choices=["uniform", "prior", "0"],
                   help="initial values: uniform (default, as Stan: uniform in (-2, 2) on the unconstrained "
                        "scale), prior (a prior draw; uniform for Flat/HalfFlat), 0 (zeros)")
    r.add_argument("--x64", action="store_true",
                   help="compute in float64 throughout, as Stan (for badly scaled or near-singular posteriors; "
                        "see docs/sampling.md)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--spmd", default="shard_map", choices=["shard_map", "pmap"])
    r.add_argument("--out", default="fit.npz",
                   help="output: .npz (default fit.npz), or .nc for ArviZ InferenceData (netCDF); written atomically")
    r.add_argument("--checkpoint", metavar="PATH", help="save the whole sampler state to PATH (.npz) as it runs")
    r.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="iterations between checkpoints (default: a tenth of the run)")
    r.add_argument("--resume", action="store_true",
                   help="go on from --checkpoint PATH (same model, data, devices and settings): the draws are "
                        "those of an uninterrupted run")
    r.add_argument("--block", type=int, metavar="N",
                   help="iterations per device call (default: adaptive, growing from 1 to about a second of "
                        "work per call; the draws do not depend on it)")
    r.add_argument("--matmul-precision", default="default",
                   choices=["default", "bfloat16", "tensorfloat32", "float32", "highest"],
                   help="precision of the run's matmuls (default: the backend's; the seed used tensorfloat32, "
                        "as bfloat16 made HMC diverge)")
    r.add_argument("--quiet", action="store_true", help="no progress bar and no summary")

    s = sub.add_parser("summary", help="print the summary of a saved fit (.npz or .nc): mean, MCSE, sd, quantiles, "
                       "ESS, R-hat, and warnings")
    s.add_argument("fit")
    s.add_argument("--rows", type=int, default=8, help="elements shown per array (worst R-hat first; default 8)")

    g = sub.add_parser("plot", help="trace and rank plots of a saved fit, and the traces of tracked quantities, "
                       "log density and step size (PNG)")
    g.add_argument("fit")
    g.add_argument("-o", "--output", default="plots", help="output folder (default plots)")
    g.add_argument("--elements", type=int, default=6,
                   help="elements plotted per array (worst R-hat first; default 6)")

    d = sub.add_parser("data", help="turn a published data set (MNIST IDX, MovieLens) into model data (.npz)")
    d.add_argument("dataset", choices=["mnist", "movielens"])
    d.add_argument("directory", help="the folder with the original files")
    d.add_argument("-o", "--output", required=True, help="output .npz (MNIST: the training split; the test "
                   "split goes beside it, NAME_test.npz)")
    d.add_argument("--train", type=int, help="MNIST: keep the first N training examples")
    d.add_argument("--test", type=int, help="MNIST: keep the first N test examples")

    p = sub.add_parser("predict", help="posterior predictive of the observed variables on new data")
    p.add_argument("model")
    p.add_argument("--fit", required=True, help="a fit written by `pplc run`")
    p.add_argument("--data", required=True, help="data (.npz or .json); with the observed arrays, accuracies too")
    p.add_argument("-o", "--output", help="write the predictive (mean/NAME, per-draw with --per-draw) to this .npz")
    p.add_argument("--per-draw", action="store_true", help="also keep each draw's predictive")

    c = sub.add_parser("recommend", help="each draw's top unwatched movie for the least and most active users, "
                       "counted by title and genre, with bar charts")
    c.add_argument("model")
    c.add_argument("--fit", required=True, help="a fit written by `pplc run`")
    c.add_argument("--data", required=True, help="the data the model was fitted to (from `pplc data movielens`)")
    c.add_argument("-o", "--output", default="recommendations", help="output folder (default recommendations)")
    c.add_argument("--user", type=int, action="append", help="a user id (repeatable; default: the least and the "
                   "most active users)")
    c.add_argument("--observed", help="the observed [users, movies] site (default: the model's only Bernoulli one)")
    return ap


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


def run_command(args) -> int:
    if args.command == "run":
        from .mesh import request_devices

        out_dir = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(out_dir):  # before the run, not after it
            raise PPLError(Diagnostic(f"cannot write --out {args.out}: there is no folder {out_dir}"))
        if args.devices < 1:
            raise PPLError(Diagnostic(f"--devices must be at least 1 (got {args.devices})",
                                      hint="--devices N splits the sharded plates over N devices; --devices 1 runs "
                                           "the model on one"))

        request_devices(args.devices)  # before JAX starts its backend
    import pplc

    if args.command == "data":
        return _data_command(args)
    if args.command == "summary":
        from .output import Fit

        if not os.path.exists(args.fit):
            raise PPLError(pplc.Diagnostic(f"no such fit file: {args.fit}"))
        print(Fit.load(args.fit).summary(per_array=args.rows))
        return 0
    if args.command == "plot":
        from . import plots
        from .output import Fit

        if not os.path.exists(args.fit):
            raise PPLError(pplc.Diagnostic(f"no such fit file: {args.fit}"))
        paths = plots.plot(Fit.load(args.fit), args.output, elements=args.elements)
        print(f"wrote {len(paths)} plots to {args.output}: " + ", ".join(os.path.basename(p) for p in paths),
              file=sys.stderr)
        return 0
    model = pplc.compile_file(args.model, consts=parse_consts(getattr(args, "const", [])))
    for w in model.warnings:
        print(w.render(None), file=sys.stderr)
    if args.command == "check":
        print(_describe(model))
        if getattr(args, "data", None):
            from . import data as data_lib

            bound = data_lib.bind(model.ir, data_lib.load(args.data), args.data)
            sizes = "; ".join(f"{d} = {n}" for d, n in bound.sizes.items() if not d.isdigit())
            print(f"{args.data}: ok" + (f" ({sizes})" if sizes else ""))
        return 0
    if args.command == "compile":
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
    if args.command in ("predict", "recommend"):
        return _posterior_command(args, model)
    try:
        fit = model.sample(args.data, devices=args.devices, chains=args.chains, warmup=args.warmup,
                           draws=args.draws, sampler=args.sampler, step_size=args.step_size, leapfrog=args.leapfrog,
                           seed=args.seed, target_accept=args.target_accept, init=args.init, spmd=args.spmd,
                           progress=not args.quiet, matmul_precision=args.matmul_precision,
                           max_tree_depth=args.max_tree_depth, metric=args.metric, x64=args.x64,
                           **_run_options(args))
    except pplc.Interrupted as e:
        return _interrupted(e, args)
    fit.save(args.out)
    if not args.quiet:
        print(fit.summary())
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _run_options(args) -> dict:
    """`pplc run`'s options for long runs: checkpoints, resume, block size."""
    return {"checkpoint": args.checkpoint, "checkpoint_every": args.checkpoint_every, "resume": args.resume,
            "block": args.block}


def _interrupted(e, args) -> int:
    """Ctrl-C during `pplc run`: the draws so far go to --out (atomically), with a note; exit status 130."""
    fit = e.fit
    if fit is not None and fit.draws and next(iter(fit.draws.values())).shape[1] > 0:
        fit.save(args.out)
        n = next(iter(fit.draws.values())).shape[1]
        print(f"{e.note}\nwrote the {n} draws so far to {args.out}", file=sys.stderr)
    else:
        print(f"{e.note}\nno draws yet: {args.out} not written", file=sys.stderr)
    return 130


def _data_command(args) -> int:
    """`pplc data`: MNIST -> OUT (train) and OUT_test; MovieLens -> OUT (watched, meta/ titles and genres)."""
    from . import datasets

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


def _posterior_command(args, model) -> int:
    """`pplc predict` and `pplc recommend`: a saved fit's draws with the model and some data."""
    from . import data as data_lib
    from .output import Fit

    if not os.path.exists(args.fit):
        raise PPLError(Diagnostic(f"no such fit file: {args.fit}"))
    fit = Fit.load(args.fit, model=model)
    data = data_lib.load(args.data)
    if args.command == "predict":
        pred = fit.predict(data, per_draw=args.per_draw)
        print(pred.summary())
        if args.output:
            pred.save(args.output)
            print(f"wrote {args.output}", file=sys.stderr)
        return 0
    from . import recommend

    users = recommend.recommend(model, fit.draws, data, users=args.user, observed=args.observed)
    print("\n\n".join(u.summary() for u in users))
    paths = recommend.write(users, args.output)
    print("wrote " + ", ".join(paths), file=sys.stderr)
    return 0


def _out_of_memory(e: BaseException) -> PPLError | None:
    """XLA's RESOURCE_EXHAUSTED (jaxlib's XlaRuntimeError / JaxRuntimeError) as a user-facing error."""
    if type(e).__name__ not in ("XlaRuntimeError", "JaxRuntimeError") or "RESOURCE_EXHAUSTED" not in str(e):
        return None
    text = str(e)
    m = re.search(r"allocate (\d+) bytes", text)
    what = "the device ran out of memory"
    if m:
        what = f"the device ran out of memory allocating {_bytes(int(m.group(1)))}"
    else:
        m = re.search(r"Used ([\d.]+\w?) of ([\d.]+\w?)", text)
        if m:
            what = f"the device ran out of memory: the program needs {m.group(1)} of {m.group(2)}"
    first = next((ln.strip() for ln in text.splitlines() if "RESOURCE_EXHAUSTED" in ln), text.splitlines()[0])
    return PPLError(Diagnostic(
        f"out of memory: {what} (for the sampler's state, the draws kept on the device, or the data)",
        notes=(f"XLA: {first[:300]}",),
        hint="use fewer chains (--chains), keep fewer draws on the device at a time (--block), split the data "
             "over more devices (--devices), or use a smaller data set"))


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def main(argv=None) -> int:
    """Entry point of the `pplc` script; returns (and, as a script, exits with) the status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (1)
        return e.code if isinstance(e.code, int) else 1
    try:
        code = run_command(args)
    except PPLError as e:
        print(e.render(), file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as e:  # noqa: BLE001 - the last line of defence: no traceback for users
        oom = _out_of_memory(e)
        if oom is not None:
            if args.debug:
                traceback.print_exc()
            print(oom.render(), file=sys.stderr)
            return 1
        if args.debug:
            traceback.print_exc()
        lines = str(e).strip().splitlines()
        summary = f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__
        print(f"pplc: internal error: {summary}\n  this is a bug in pplc, not in your model; please report it to "
              f"{ISSUES_URL} with the model, the data shapes and the command line"
              + ("" if args.debug else " (rerun with --debug to print the traceback)"), file=sys.stderr)
        code = 3
    return code


if __name__ == "__main__":
    sys.exit(main())
