"""The `pplc` command line's options: one subcommand each; `pplc run`'s sampler options from `SamplerConfig`."""
from __future__ import annotations

import argparse
import typing

from .._version import __version__
from ..api import MATMUL_PRECISIONS
from ..runtime.devices import cache as cache_lib
from ..runtime.devices.spmd import MODES
from ..runtime.output.summary import PER_ARRAY as ROWS
from ..runtime.sampling.config import SamplerConfig
from ..studies.datasets import DATASETS

# `pplc run`'s option groups, as CmdStan groups them: SamplerConfig's groups, then the run's files and devices.
RUN_GROUPS = {"run": "run", "sampler": "sampler", "adaptation": "adaptation (warmup)", "output": "output",
              "devices": "devices"}
CONST_HELP = "override a const of the model (repeatable)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors as user errors: the usage, one line, exit status 1."""

    def error(self, message):
        self.exit(1, f"{self.prog}: error: {message}\n  hint: `{self.prog} --help` lists the options\n")


class _NoCache(argparse.Action):
    """`--no-cache`: JAX's persistent compilation cache off for this process (before the model compiles)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, True)
        cache_lib.set_cache(False)


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the model (.ppl file)")
    p.add_argument("--const", action="append", default=[], metavar="NAME=VALUE", help=CONST_HELP)


def sampler_options(groups: dict) -> None:
    """One option per `SamplerConfig` field (`--step-size` for `step_size`), with its default, help and
    choices, in the argument group of its `group`."""
    hints = typing.get_type_hints(SamplerConfig)
    for f in SamplerConfig.options():
        meta = f.metadata
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        if kind is bool:
            groups[meta["group"]].add_argument(flag, action="store_true", help=meta["help"])
            continue
        kind = next(t for t in typing.get_args(kind) or (kind,) if t is not type(None))
        text = meta["help"] if "default" in meta["help"] else f"{meta['help']} (default {f.default})"
        groups[meta["group"]].add_argument(flag, type=kind, default=f.default, choices=meta["choices"],
                                           help=text)


def _run_parser(sub) -> None:
    r = sub.add_parser("run", help="sample a model's posterior")
    _model_options(r)
    r.add_argument("--data", help=".npz or Stan-style .json data file (needed when the model declares data)")
    groups = {name: r.add_argument_group(title) for name, title in RUN_GROUPS.items()}
    sampler_options(groups)
    groups["run"].add_argument("--prior", action="store_true",
                               help="draw from the prior and the prior predictive instead of sampling the "
                                    "posterior (--chains x --draws joint draws; the data need only give sizes)")
    out = groups["output"]
    out.add_argument("--out", default="fit.npz",
                     help="output: .npz (default fit.npz), or .nc for ArviZ InferenceData (netCDF); written atomically")
    out.add_argument("--checkpoint", metavar="PATH", help="save the whole sampler state to PATH (.npz) as it runs")
    out.add_argument("--checkpoint-every", type=int, metavar="N",
                     help="iterations between checkpoints (default: a tenth of the run)")
    out.add_argument("--resume", action="store_true",
                     help="go on from --checkpoint PATH (same model, data, devices and settings): the draws are "
                          "those of an uninterrupted run")
    out.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    dev = groups["devices"]
    dev.add_argument("--devices", type=int, default=1, help="devices to split sharded plates over (default 1; "
                     "with several processes, this process's devices: the mesh spans all of them)")
    dev.add_argument("--coordinator", metavar="HOST:PORT",
                     help="several processes (hosts) as one mesh: the address of process 0, with --num-processes "
                          "and --process-id (none needed under Slurm or Open MPI; see docs/scaling.md)")
    dev.add_argument("--num-processes", type=int, metavar="P", help="processes in the run (with --coordinator)")
    dev.add_argument("--process-id", type=int, metavar="I",
                     help="this process's index, 0..P-1 (with --coordinator); process 0 writes the output")
    dev.add_argument("--spmd", default="shard_map", choices=MODES,
                     help="how a program runs over the devices: shard_map (default) or pmap")
    dev.add_argument("--block", type=int, metavar="N",
                     help="iterations per device call (default: adaptive, growing from 1 to about a second of "
                          "work per call; the draws do not depend on it)")
    dev.add_argument("--matmul-precision", default="default", choices=MATMUL_PRECISIONS,
                     help="precision of the run's matmuls (default: the backend's; the seed used tensorfloat32, "
                          "as bfloat16 made HMC diverge)")
    dev.add_argument("--no-cache", action=_NoCache, nargs=0, default=False,
                     help="do not use the persistent compilation cache (default: compiled programs are kept in "
                          "$PPLC_CACHE_DIR, else $XDG_CACHE_HOME/pplc or ~/.cache/pplc, and reused by later runs)")


def _fitting_parsers(sub) -> None:
    """`pplc optimize` (MAP by L-BFGS, a Laplace approximation on request) and `pplc variational` (ADVI)."""
    o = sub.add_parser("optimize", help="the MAP estimate by L-BFGS (as CmdStan's optimize), and on request "
                       "draws of the Laplace approximation at it")
    v = sub.add_parser("variational", help="ADVI: a mean-field or full-rank Gaussian fitted to the posterior on "
                       "the unconstrained scale, and draws of it")
    for p, out in ((o, "map.npz"), (v, "fit.npz")):
        _model_options(p)
        p.add_argument("--data", help=".npz or Stan-style .json data file (needed when the model declares data)")
        p.add_argument("--seed", type=int, default=0, help="random seed: initial values and draws (default 0)")
        p.add_argument("--devices", type=int, default=1, help="devices to split sharded plates over (default 1)")
        p.add_argument("--x64", action="store_true", help="compute in float64 throughout, as CmdStan")
        p.add_argument("--quiet", action="store_true", help="no summary")
    o.add_argument("--out", default="map.npz", help="output .npz: one array per latent and deterministic, shaped "
                   "as declared, and optimize/log_density, optimize/converged, ... (default map.npz)")
    o.add_argument("--jacobian", action="store_true", help="maximise the density on the unconstrained scale "
                   "(log-Jacobian added; default: the mode over the constrained parameters, as CmdStan's default)")
    o.add_argument("--iterations", type=int, default=2000, help="at most N L-BFGS iterations (default 2000)",
                   metavar="N")
    o.add_argument("--laplace", type=int, metavar="DRAWS", help="also DRAWS draws of the Laplace approximation at "
                   "the mode, written as a fit (see --laplace-out)")
    o.add_argument("--laplace-out", metavar="FIT", help="where the Laplace draws go: .npz or .nc, read by `pplc "
                   "summary` and ArviZ (default: --out with _laplace before its extension)")
    v.add_argument("--out", default="fit.npz", help="output: .npz (default fit.npz) or .nc (ArviZ InferenceData), "
                   "the draws as a fit")
    v.add_argument("--algorithm", choices=("meanfield", "fullrank"), default="meanfield",
                   help="meanfield (default: independent normals) or fullrank (a full covariance)")
    v.add_argument("--draws", type=int, default=1000, help="draws of the fitted Gaussian (default 1000)")
    v.add_argument("--iterations", type=int, default=10000, help="Adam iterations (default 10000)", metavar="N")
    v.add_argument("--learning-rate", type=float, default=0.05,
                   help="Adam's step size, cosine-decayed to 1%% over the iterations (default 0.05)")
    v.add_argument("--grad-samples", type=int, default=1,
                   help="Monte Carlo draws per gradient of the ELBO (default 1, as CmdStan)")


def _fit_parsers(sub) -> None:
    s = sub.add_parser("summary", help="print the summary of a saved fit (.npz or .nc): mean, MCSE, sd, quantiles, "
                       "ESS, R-hat, and warnings")
    s.add_argument("fit", help="a fit written by `pplc run --out` (.npz or .nc)")
    s.add_argument("--rows", type=int, default=ROWS,
                   help=f"arrays of up to N elements are shown whole; larger ones by their N elements of largest "
                        f"R-hat (default {ROWS})", metavar="N")
    s.add_argument("--sort", choices=("index", "rhat"), default="index",
                   help="row order within an array: index (default) or rhat (largest first)")

    g = sub.add_parser("plot", help="trace and rank plots of a saved fit, and the traces of tracked quantities, "
                       "log density and step size (PNG)")
    g.add_argument("fit", help="a fit written by `pplc run --out` (.npz or .nc)")
    g.add_argument("-o", "--output", default="plots", help="output folder (default plots)")
    g.add_argument("--elements", type=int, default=6,
                   help="elements plotted per array (worst R-hat first; default 6)")
    g.add_argument("--ppc", action="store_true",
                   help="also ArviZ's posterior predictive check of each observed site (a fit written as .nc)")


def _loo_parser(sub) -> None:
    c = sub.add_parser("loo", help="PSIS-LOO of saved fits (.nc, with their log_likelihood group) and, for more "
                       "than one, ArviZ's comparison of the models")
    c.add_argument("fits", nargs="+", metavar="FIT", help="fits written by `pplc run --out FIT.nc`")
    c.add_argument("--var", metavar="NAME", help="the observed variable whose pointwise log-likelihood is used "
                   "(default: the only one; needed when a model observes several)")


def _predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="posterior predictive of the observed variables on new data")
    p.add_argument("model")
    p.add_argument("--fit", required=True, help="a fit written by `pplc run`")
    p.add_argument("--data", required=True, help="data (.npz or .json); with the observed arrays, accuracies too")
    p.add_argument("-o", "--output", help="write the predictive (mean/NAME, per-draw with --per-draw) to this .npz")
    p.add_argument("--per-draw", action="store_true", help="also keep each draw's predictive")


def _data_parser(sub) -> None:
    d = sub.add_parser("data", help="turn a published data set (MNIST IDX, MovieLens) into model data (.npz)")
    d.add_argument("dataset", choices=DATASETS)
    d.add_argument("directory", help="the folder with the original files")
    d.add_argument("-o", "--output", required=True, help="output .npz (MNIST: the training split; the test "
                   "split goes beside it, NAME_test.npz)")
    d.add_argument("--train", type=int, help="MNIST: keep the first N training examples")
    d.add_argument("--test", type=int, help="MNIST: keep the first N test examples")


def _recommend_parser(sub) -> None:
    c = sub.add_parser("recommend", help="each draw's top unwatched movie for the least and most active users, "
                       "counted by title and genre, with bar charts")
    c.add_argument("model")
    c.add_argument("--fit", required=True, help="a fit written by `pplc run`")
    c.add_argument("--data", required=True, help="the data the model was fitted to (from `pplc data movielens`)")
    c.add_argument("-o", "--output", default="recommendations", help="output folder (default recommendations)")
    c.add_argument("--user", type=int, action="append", help="a user id (repeatable; default: the least and the "
                   "most active users)")
    c.add_argument("--observed", help="the observed [users, movies] site (default: the model's only Bernoulli one)")


def parser() -> argparse.ArgumentParser:
    """The `pplc` argument parser: check, compile, run, summary, plot, data, predict, recommend."""
    ap = ArgumentParser(prog="pplc", description="Compile and run .ppl probabilistic models "
                                 "(TFP on JAX, data-parallel over devices).")
    ap.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")
    ap.add_argument("--version", action="version", version=f"pplc {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="parse and check a model; print its variables, shapes and placement")
    _model_options(c)
    c.add_argument("--data", help="also check a data file (.npz or .json) against the model, without running it")
    c.add_argument("--devices", type=int, metavar="N", help="with --data: print the memory each device needs for "
                   "`pplc run` on N devices in all (with the run's options below; see docs/scaling.md)")
    sampler_options({g: c.add_argument_group(f"{t} (for --devices)") for g, t in RUN_GROUPS.items()})

    c = sub.add_parser("compile", help="write the generated TFP-on-JAX program")
    _model_options(c)
    c.add_argument("-o", "--output", help="output .py file (default: standard output)")

    _run_parser(sub)
    _fitting_parsers(sub)
    _fit_parsers(sub)
    _data_parser(sub)
    _loo_parser(sub)
    _predict_parser(sub)
    _recommend_parser(sub)
    return ap


def sampler_settings(args) -> dict:
    """`pplc run`'s sampler options as `Model.sample` keywords (the `SamplerConfig` fields)."""
    return {f.name: getattr(args, f.name) for f in SamplerConfig.options()}


__all__ = ["ArgumentParser", "parser", "sampler_options", "sampler_settings", "RUN_GROUPS"]
