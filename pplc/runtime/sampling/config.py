"""The sampler's settings: `SamplerConfig` (the one list of sampler options, their defaults, help and choices)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from ...dsl.diagnostics import Diagnostic, PPLError

SAMPLERS = ("nuts", "hmc")
METRICS = ("diag", "unit")
INITS = ("uniform", "prior", "0", "pathfinder")
INIT_TRIES = 100  # as Stan: draws of initial values before giving up on a non-finite log density
DIVERGENCE = 1000.0  # energy error that counts as a divergence (Stan's and TFP's NUTS threshold)


def option(default, help: str, choices: tuple | None = None, group: str = "sampler"):  # noqa: A002
    """A `SamplerConfig` field: its default, and for the CLI its help text, choices and option group."""
    return field(default=default, metadata={"help": help, "choices": choices, "group": group})


@dataclass(frozen=True)
class SamplerConfig:
    """What `pplc run` and `Model.sample` take: the sampler and its settings. Each field's metadata holds
    its `help`, its `choices` (or None) and its `group` (sampler, adaptation, run), from which the CLI
    builds its options (`--step-size` for `step_size`)."""

    sampler: str = option("nuts", "nuts (default: the No-U-Turn sampler, as Stan) or hmc (fixed --leapfrog steps)",
                          SAMPLERS)
    chains: int = option(4, "independent chains (default 4)", group="run")
    warmup: int = option(1000, "warmup iterations per chain (default 1000)", group="run")
    draws: int = option(1000, "draws per chain after warmup (default 1000)", group="run")
    step_size: float | None = option(None, "initial step size (default 1; Stan's heuristic and dual averaging "
                                           "adapt it in warmup)", group="adaptation")
    leapfrog: int = option(10, "leapfrog steps per HMC iteration (--sampler hmc)")
    target_accept: float | None = option(None, "acceptance the step size is adapted to (default 0.8 for NUTS, "
                                               "0.75 for HMC)", group="adaptation")
    max_tree_depth: int = option(10, "NUTS: at most 2^depth leapfrog steps (default 10)")
    metric: str = option("diag", "mass matrix: diag (default; adapted in Stan's warmup windows) or unit "
                                 "(the identity)", METRICS, group="adaptation")
    seed: int = option(0, "random seed (default 0): the same seed gives the same draws", group="run")
    init: str = option("uniform", "initial values: uniform (default, as Stan: uniform in (-2, 2) on the "
                                  "unconstrained scale), prior (a prior draw; uniform for Flat/HalfFlat), 0 (zeros), "
                                  "pathfinder (draws of multi-path Pathfinder, as CmdStan; needs blackjax)",
                       INITS)
    x64: bool = option(False, "compute in float64 throughout, as Stan (for badly scaled or near-singular "
                              "posteriors; see docs/sampling.md)", group="run")
    chain_groups: int = option(1, "split the devices into G groups (a chains x data mesh), each running "
                                  "--chains/G of the chains with the sharded data split over its own devices "
                                  "(default 1; see docs/scaling.md)", group="devices")

    @classmethod
    def options(cls) -> tuple[dataclasses.Field, ...]:
        """The fields, in order: what the CLI and `Model.sample` take as options."""
        return dataclasses.fields(cls)

    @classmethod
    def from_options(cls, **options) -> "SamplerConfig":
        """A config from keyword options; an unknown option name is a user error naming the known ones."""
        names = [f.name for f in cls.options()]
        unknown = [k for k in options if k not in names]
        if unknown:
            raise PPLError(Diagnostic(f"unknown sampler option `{unknown[0]}`",
                                      hint=f"the options are: {', '.join(names)}"))
        return cls(**options)

    @property
    def group_chains(self) -> int:
        """The chains each chain group runs (all of them with one group)."""
        return self.chains // self.chain_groups

    @property
    def accept_target(self) -> float:
        if self.target_accept is not None:
            return self.target_accept
        return 0.8 if self.sampler == "nuts" else 0.75

    @property
    def initial_step_size(self) -> float:
        return 1.0 if self.step_size is None else float(self.step_size)

    def validate(self) -> None:
        def bad(msg):
            raise PPLError(Diagnostic(msg))
        if self.sampler not in SAMPLERS:
            bad(f"unknown sampler `{self.sampler}`; this version has: {', '.join(SAMPLERS)}")
        if self.metric not in METRICS:
            bad(f"unknown metric `{self.metric}`; one of: {', '.join(METRICS)}")
        if self.chains < 1:
            bad(f"--chains must be at least 1 (got {self.chains})")
        if self.chain_groups < 1 or self.chains % self.chain_groups:
            bad(f"--chain-groups must be at least 1 and divide --chains (got --chain-groups {self.chain_groups}, "
                f"--chains {self.chains}): each group runs --chains/--chain-groups chains")
        if self.warmup < 0 or self.draws < 1:
            bad(f"--warmup must be >= 0 and --draws >= 1 (got {self.warmup} and {self.draws})")
        if self.step_size is not None and not (0 < self.step_size < math.inf):
            bad(f"--step-size must be positive (got {self.step_size})")
        if self.leapfrog < 1:
            bad(f"--leapfrog must be at least 1 (got {self.leapfrog})")
        if not 1 <= self.max_tree_depth <= 30:
            bad(f"--max-tree-depth must lie in 1 .. 30 (got {self.max_tree_depth})")
        if not 0 < self.accept_target < 1:
            bad(f"--target-accept must lie in (0, 1) (got {self.accept_target})")
        if str(self.init) not in INITS:
            bad(f"--init is `uniform`, `prior`, `0` or `pathfinder` (got {self.init})")

    def describe(self) -> str:
        """One line for the log: the sampler and what it adapts."""
        what = (f"NUTS (max tree depth {self.max_tree_depth})" if self.sampler == "nuts"
                else f"HMC ({self.leapfrog} leapfrog steps)")
        metric = "diagonal mass matrix" if self.metric == "diag" else "unit mass matrix"
        return f"{what}, {metric}, target acceptance {self.accept_target:g}"


def float_dtype():
    """The dtype of reals in this run: float64 under `--x64` (jax_enable_x64), float32 otherwise."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


__all__ = ["SamplerConfig", "SAMPLERS", "METRICS", "INITS", "INIT_TRIES", "DIVERGENCE", "float_dtype"]
