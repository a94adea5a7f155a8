"""Declared types whose distribution carries the constraint: `simplex[K]` (Dirichlet), `cholesky_corr[K]` (LKJ)."""
from __future__ import annotations

import dataclasses

from ...dsl import ast
from .. import ir
from ..distributions import DISTRIBUTIONS
from .base import Reported, has_shape

# a declared type -> the distribution whose support it is
CARRIED = {"simplex": "Dirichlet", "cholesky_corr": "CholeskyLKJ"}
# Stan's matrix types that pplc spells otherwise or does not have, and what to write instead
MATRIX_TYPES = {
    "cholesky_factor_corr": "Stan's `cholesky_factor_corr[K]` is pplc's `cholesky_corr[K]`",
    "corr_matrix": "pplc has no `corr_matrix`: declare its Cholesky factor `L: cholesky_corr[K] ~ CholeskyLKJ(eta)` "
                   "(the correlation matrix is `L @ L.T`)",
    "cov_matrix": "pplc has no `cov_matrix`: declare a correlation's Cholesky factor `L: cholesky_corr[K] ~ "
                  "CholeskyLKJ(eta)` and scales `tau`, then use `MultivariateNormalTriL(mu, diag(tau) @ L)`",
    "cholesky_factor_cov": "pplc has no `cholesky_factor_cov`: use `diag(tau) @ L` with `L: cholesky_corr[K] ~ "
                           "CholeskyLKJ(eta)`",
}


def constrained_type(chk, s, t: ast.Type | None, dist: ir.DistCall) -> tuple[ast.Type | None, ir.DistCall]:
    """Latent `s` declared with type `t` and drawn from `dist` (Flat for `NAME: TYPE`): a `simplex[K]` or
    `cholesky_corr[K]` type becomes `real[K]` or `real[K, K]` with the distribution that carries the constraint
    (a flat simplex is Dirichlet(1, ..., 1), uniform over the simplex); other types pass as they are."""
    spec = dist.spec
    if t is None:
        if spec.dimension:
            chk.sink.error(f"a draw of {spec.name} is a matrix whose size its parameters do not give", dist.span,
                           hint=f"declare it: `{s.name}: cholesky_corr[K] ~ {spec.name}(...)`")
            raise Reported
        return t, dist
    if t.dtype in MATRIX_TYPES:
        chk.sink.error(f"`{t.dtype}` is not a type of pplc", t.span, hint=MATRIX_TYPES[t.dtype])
        raise Reported
    want = CARRIED.get(t.dtype)
    if want is None:
        if spec.dimension:
            chk.sink.error(f"a draw of {spec.name} is a Cholesky factor of a correlation matrix: declare "
                           f"`{s.name}: cholesky_corr[K]`", t.span)
            raise Reported
        return t, dist
    flat = spec.name == "Flat"
    if len(t.dims) != 1 or t.bounds:
        why = "takes no bounds" if t.bounds and len(t.dims) == 1 else f"has one dim: `{t.dtype}[K]`"
        chk.sink.error(f"a `{t.dtype}` latent {why}", t.span)
        raise Reported
    if flat and want == "CholeskyLKJ":
        chk.sink.error(f"a `cholesky_corr` latent needs a prior: `{s.name}: cholesky_corr[K] ~ CholeskyLKJ(eta)`",
                       t.span, hint="CholeskyLKJ(1) is uniform over correlation matrices")
        raise Reported
    if not flat and spec.name != want:
        chk.sink.error(f"a `{t.dtype}` latent is drawn from {want}, not {spec.name}", dist.span,
                       hint=f"`{s.name}: {t.dtype}[K] ~ {want}(...)`")
        raise Reported
    dims = t.dims * 2 if want == "CholeskyLKJ" else t.dims
    if flat:  # Dirichlet(1, ..., 1): uniform over the simplex
        k = chk._dim(t.dims[0])
        ones = ir.Function(ir.Axes((), (k,)), "real", False, "rep", (ir.Lit(ir.Axes((), ()), "real", False, 1.0),),
                           (k,))
        dist = ir.DistCall(DISTRIBUTIONS[want], (("concentration", ones),), (), dist.span)
    return dataclasses.replace(t, dtype="real", dims=dims), dist


def square_event(chk, dist: ir.DistCall, item: tuple[str, ...], name: str, span) -> None:
    """A value of a distribution sized by its value (CholeskyLKJ) is a square matrix [K, K]."""
    if dist.spec.dimension and (len(item) < 2 or item[-1] != item[-2]):
        chk.sink.error(f"a value of {dist.spec.name} is a square matrix [K, K], but `{name}` {has_shape(item)}",
                       span)
        raise Reported
