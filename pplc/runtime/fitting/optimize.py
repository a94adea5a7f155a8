"""MAP estimates: optax's L-BFGS on the log density over the unconstrained latents, with or without the Jacobian."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..data.bind import BoundData
from ..density import LogDensity
from ..files import save_npz
from ..output import Fit
from .common import Flat, as_host, require_optax, start, with_outputs

ITERATIONS = 2000  # CmdStan's default `iter` for optimize
HISTORY = 10  # L-BFGS correction pairs (CmdStan's history_size 5; optax's default 10)
PREFIX = "optimize/"  # the .npz keys of the run's information (a .ppl name cannot contain "/")
PATIENCE = 10  # float32: the objective or the parameters still for this many iterations in a row, not one
GRAD_PATIENCE = 50  # float32: ... and the gradient's lowest largest element not halved for this many iterations


def tolerances(dtype) -> dict:
    """CmdStan's L-BFGS stopping rules: the gradient's largest element under 1e-8, a relative change of the
    objective under 1e4 x machine epsilon, a change of every parameter under 1e-8 (relative to the largest); in
    float32 the round-off of the objective and of the parameters sets the floor, and a stall counts only once the
    gradient has stopped falling (`grad_patience`): the line search goes on by slopes (Hager and Zhang's approximate
    Wolfe test) well after the objective's change is below its round-off."""
    eps = float(jnp.finfo(dtype).eps)
    if jnp.dtype(dtype) == jnp.float64:
        return {"grad": 1e-8, "rel_obj": 1e4 * eps, "param": 1e-8, "patience": 1, "grad_patience": 0}
    return {"grad": 1e-8, "rel_obj": eps, "param": eps, "patience": PATIENCE, "grad_patience": GRAD_PATIENCE}


STOPS = ("", "the gradient is below tolerance", "the relative change of the objective is below tolerance",
         "the change of the parameters is below tolerance", "the objective is not finite")


class LBFGSResult(NamedTuple):
    """Where L-BFGS stopped: the position, the objective and its gradient there, iterations, objective evaluations
    (line-search steps), and why it stopped (an index of STOPS; 0: the iteration limit)."""

    position: jax.Array
    objective_value: jax.Array
    objective_gradient: jax.Array
    num_iterations: jax.Array
    num_objective_evaluations: jax.Array
    stop: jax.Array

    @property
    def converged(self) -> bool:
        return 1 <= int(self.stop) <= 3


@dataclass
class OptimizeResult:
    """A MAP estimate: `params` (every latent, deterministic and tracked value by .ppl name, shaped as declared),
    the log density there (`log_density`: with the log-Jacobian when `jacobian`), how L-BFGS stopped, the mode on
    the unconstrained scale, and the Laplace approximation's draws (a `Fit`) when asked for."""

    params: dict
    log_density: float
    converged: bool
    iterations: int
    evaluations: int
    jacobian: bool
    message: str
    unconstrained: dict = field(repr=False, default_factory=dict)
    model_name: str = ""
    grad_norm: float = float("nan")
    laplace: Fit | None = field(default=None, repr=False)
    timing: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.params[name]

    def info(self) -> dict:
        """The run's information, as saved beside the arrays."""
        return {"method": "optimize", "algorithm": "lbfgs", "jacobian": self.jacobian, "converged": self.converged,
                "iterations": self.iterations, "evaluations": self.evaluations, "log_density": self.log_density,
                "grad_norm": self.grad_norm, "message": self.message, "model_name": self.model_name,
                "timing": self.timing}

    def save(self, path: str) -> None:
        """An .npz file (written atomically): one array per latent, deterministic and tracked value by .ppl name,
        shaped as declared; `optimize/log_density`, `optimize/converged`, `optimize/iterations`,
        `optimize/jacobian` and `optimize/json` (all of `info()`)."""
        arrays = dict(self.params)
        arrays.update({PREFIX + "log_density": np.asarray(self.log_density),
                       PREFIX + "converged": np.asarray(self.converged),
                       PREFIX + "iterations": np.asarray(self.iterations),
                       PREFIX + "jacobian": np.asarray(self.jacobian),
                       PREFIX + "json": np.array(json.dumps(self.info()))})
        save_npz(path, arrays)

    def to_arviz(self):
        """The Laplace approximation's draws as ArviZ InferenceData (a MAP estimate alone has no draws)."""
        if self.laplace is None:
            from ...dsl.diagnostics import Diagnostic, PPLError

            raise PPLError(Diagnostic("a MAP estimate has no draws for ArviZ",
                                      hint="ask for the Laplace approximation: laplace=DRAWS (pplc optimize "
                                           "--laplace DRAWS)"))
        return self.laplace.to_arviz()

    def summary(self, per_array: int = 10) -> str:
        """What `pplc optimize` prints: how L-BFGS stopped, the objective, and the estimates."""
        what = ("the mode of the density on the unconstrained scale (with the log-Jacobian)" if self.jacobian else
                "the mode of the density over the constrained parameters (no Jacobian, as CmdStan's default)")
        head = f"{self.model_name or 'model'}: MAP by L-BFGS, {what}"
        state = "converged" if self.converged else "NOT converged"
        lines = [head, f"{state} after {self.iterations} iterations ({self.evaluations} evaluations): {self.message}",
                 f"log density {self.log_density:.6g}, gradient norm {self.grad_norm:.3g}"]
        width = max([len(k) for k in self.params] + [4])
        for name, x in self.params.items():
            x = np.asarray(x)
            if x.size <= per_array:
                text = np.array2string(x, precision=5, separator=", ", max_line_width=120) if x.ndim else f"{x:.6g}"
            else:
                text = (f"shape {list(x.shape)}: min {x.min():.4g}, mean {x.mean():.4g}, max {x.max():.4g} "
                        f"(all of it in the saved .npz)")
            lines.append(f"  {name:<{width}}  {text}")
        return "\n".join(lines)


def _message(res: LBFGSResult, iterations: int) -> str:
    stop = int(res.stop)
    return STOPS[stop] if stop else f"the iteration limit ({iterations}) was reached"


def lbfgs(objective, x0, iterations: int) -> LBFGSResult:
    """Minimise `objective` (flat vector -> scalar, differentiable by JAX) from `x0` by optax's L-BFGS (zoom line
    search, the first step scaled by the gradient's norm), all iterations in one compiled loop, until a stopping
    rule of `tolerances` holds. (TFP's `lbfgs_minimize` stalls in float32 on badly scaled posteriors: its
    Hager-Zhang line search fails from a unit first step, on kidiq's regression at once.)"""
    optax = require_optax()
    tol = tolerances(x0.dtype)
    opt = optax.lbfgs(memory_size=HISTORY)
    value_and_grad = optax.value_and_grad_from_state(objective)

    def body(carry):
        x, state, i, evals, _, still, best, ref, since = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=objective)
        new = optax.apply_updates(x, updates)
        new_value, new_grad = optax.tree.get(state, "value"), optax.tree.get(state, "grad")
        steps = optax.tree.get(state, "num_linesearch_steps")
        change = jnp.abs(value - new_value) <= tol["rel_obj"] * jnp.maximum(jnp.maximum(jnp.abs(value),
                                                                                      jnp.abs(new_value)), 1.0)
        moved = jnp.max(jnp.abs(new - x)) <= tol["param"] * jnp.maximum(jnp.max(jnp.abs(new)), 1.0)
        still = jnp.where(change | moved, still + 1, 0)
        gmax = jnp.max(jnp.abs(new_grad))
        best = jnp.minimum(best, gmax)
        halved = best < 0.5 * ref  # the gradient is still falling: not a stall, however still the objective
        ref, since = jnp.where(halved, best, ref), jnp.where(halved, 0, since + 1)
        stalled = (still >= tol["patience"]) & (since >= tol["grad_patience"])
        stop = jnp.select([~jnp.isfinite(new_value), gmax < tol["grad"], change & stalled, moved & stalled],
                          [4, 1, 2, 3], 0)
        return new, state, i + 1, evals + steps, stop, still, best, ref, since

    def cond(carry):
        return (carry[2] < iterations) & (carry[4] == 0)

    @jax.jit
    def run(x0):
        state = opt.init(x0)
        inf = jnp.asarray(jnp.inf, x0.dtype)
        x, state, i, evals, stop = jax.lax.while_loop(cond, body, (x0, state, 0, 0, 0, 0, inf, inf, 0))[:5]
        value, grad = value_and_grad(x, state=state)
        return LBFGSResult(x, value, grad, i, evals + 1, stop)

    return run(x0)


def optimize(ld: LogDensity, bound: BoundData, jacobian: bool = False, iterations: int = ITERATIONS, seed: int = 0,
             init: dict | None = None, model_name: str = "") -> OptimizeResult:
    """The MAP estimate of the model of `ld` (on one device or sharded: its gradient is psummed over the mesh):
    L-BFGS from uniform(-2, 2) initial values (`seed`) or the constrained values `init`, maximising the log
    density at the constrained values (CmdStan's default), or with `jacobian` the density on the unconstrained
    scale (log-Jacobian added). Stopping rules as CmdStan's (see `tolerances`)."""
    if iterations < 1:
        from ...dsl.diagnostics import Diagnostic, PPLError

        raise PPLError(Diagnostic(f"--iterations must be at least 1 (got {iterations})"))
    t0 = time.time()
    flat = Flat(ld, start(ld, seed, init))
    lp = flat.log_density(ld, jacobian)
    res = lbfgs(lambda x: -lp(x), flat.x0, iterations)
    x = res.position
    z = flat.unravel(x)
    params = with_outputs(ld.program, bound, as_host(jax.jit(ld.constrain)(z)))
    return OptimizeResult(params, float(-res.objective_value), res.converged, int(res.num_iterations),
                          int(res.num_objective_evaluations), jacobian,
                          _message(res, iterations),
                          unconstrained=as_host(z), model_name=model_name,
                          grad_norm=float(jnp.max(jnp.abs(res.objective_gradient))),
                          timing={"total_s": time.time() - t0, "devices": ld.devices})
