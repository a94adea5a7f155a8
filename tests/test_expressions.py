"""No silent wrong answer: generated expressions over named dims, pplc against a NumPy reference.

tests/expression_strategy.py builds expressions (elementwise arithmetic and broadcasts, `@`, `.T`,
`x.T @ x`, `sum/mean/max/min` with and without a dim, `logsumexp`, `softmax`, `log_softmax`, `dot`,
`where`, `x[0]`, gathers `x[i]`, `x[i, j]`, `x[i, 0]`, values with repeated dims such as
`A: real[k, k]`; `cumsum`, `outer`, `dot_self`, `inverse`, `solve`, `triangular_solve`, `log_determinant`,
`quad_form`, `eye`, `concat`, array literals `[a, b]`, `(a if c else b)`) and writes each into a model

    data A: real[k, k]
    data x: real[k, n]
    ... (more data: see expression_strategy.DATA_DECLS)
    u ~ Normal(0, 1)
    z = <EXPR>                      (or inside `plate n { ... }` / `plate k { ... }`)

with random data. The property:
- pplc accepts the expression: `sample_prior(data)["z"]` has NumPy's shape and value (float32 tolerance
  below), and NumPy gives it a value at all (an expression NumPy rejects, such as `x + w` with
  x: [k, n], w: [k], must be rejected);
- pplc rejects it: a `pplc.PPLError` whose location (`expr.ppl:LINE:COL`) lies inside the model text,
  and (for the plainly documented forms, `strict` in the strategy) NumPy rejects it too;
- nothing else (a ValueError from JAX, a crash) escapes.

Tolerance: |pplc - numpy64| <= 1e-4 * |numpy64| + 1e-5 * scale + 4 * |numpy32 - numpy64|, scale being the
largest magnitude in the value (at least 1), numpy32 the same reference evaluated in float32 (so an
ill-conditioned expression gets the slack its own float32 rounding needs). Bugs differ by O(1).

Profiles (PPLC_HYPOTHESIS_PROFILE): "ci" (default: 100 random examples, 10-45 s on two cores, most of it
shrinking the first failure found; the seed is printed, PPLC_HYPOTHESIS_SEED=<n> replays it) and "thorough"
(10,000 examples, every distinct failure reported: `PPLC_HYPOTHESIS_PROFILE=thorough pytest
tests/test_expressions.py -k agree`, by hand; expect an hour or more on one core).
"""
from __future__ import annotations

import os
import random
import re
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis.errors import InvalidArgument

import pplc
from expression_strategy import (Arr, Bin, Call, Case, IfElse, Index, Invalid, Lit, Name, OutOfRange, T, cases,
                                 reference, show)

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=False, print_blob=True,
                          report_multiple_bugs=False,  # shrink the first failure only: a failing run stays short
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=10_000, deadline=None, derandomize=False, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("PPLC_HYPOTHESIS_PROFILE", "ci")
SEED = int(os.environ.get("PPLC_HYPOTHESIS_SEED", random.randrange(2**32)))

print(f"test_expressions: PPLC_HYPOTHESIS_SEED={SEED} ({PROFILE} profile)", file=sys.stderr)

pytestmark = pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")

LOCATION = re.compile(r"expr\.ppl:(\d+):(\d+)")


def _located(err: pplc.PPLError, text: str) -> bool:
    """The error names a line and column inside `text`."""
    lines = text.splitlines()
    for line, col in LOCATION.findall(str(err)):
        line, col = int(line), int(col)
        if 1 <= line <= len(lines) and 1 <= col <= len(lines[line - 1]) + 1:
            return True
    return False


def _note(message: str) -> None:
    try:
        note(message)
    except InvalidArgument:  # not inside a Hypothesis test (test_minimal_case)
        pass


def check(case: Case) -> None:
    """The property, for one case (raises AssertionError with the model, pplc's answer and NumPy's)."""
    text, data = case.text, case.data
    _note(f"model:\n{text}sizes {case.sizes}, data seed {case.seed}")
    try:
        model = pplc.compile(text, "expr.ppl")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model.sample_prior(data, seed=0)
        z = np.asarray(out["z"])
    except pplc.PPLError as err:
        assert _located(err, text), f"pplc's error has no location inside the model:\n{err}\nmodel:\n{text}"
        try:
            ref = reference(case.expr, data, case.sizes, 0.0, case.plate)
        except (Invalid, OutOfRange):
            return
        assert not ref.strict, (f"pplc rejects `{show(case.expr)}`, which NumPy evaluates to dims "
                                f"{list(ref.dims)}:\n{err}")
        return
    except Exception as err:  # noqa: BLE001 - anything but a PPLError is a crash
        raise AssertionError(f"pplc crashes (not a PPLError) on `{show(case.expr)}`: "
                             f"{type(err).__name__}: {err}") from err

    u = float(out["u"])
    try:
        ref = reference(case.expr, data, case.sizes, u, case.plate)
    except Invalid as why:
        raise AssertionError(f"pplc accepts `{show(case.expr)}`, which has no NumPy value ({why}); "
                             f"pplc's z (shape {z.shape}):\n{z}") from None
    expected = np.asarray(ref.value, np.float64)
    if not np.all(np.isfinite(expected)):
        return  # an overflow in the generated arithmetic: nothing to compare
    assert z.shape == expected.shape, (f"`{show(case.expr)}`: pplc's z has shape {z.shape}, NumPy's "
                                       f"{expected.shape} (dims {list(ref.dims)}); pplc:\n{z}\nNumPy:\n{expected}")
    r32 = np.asarray(reference(case.expr, data, case.sizes, u, case.plate, np.float32).value, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    rounding = float(np.max(np.abs(r32 - expected))) if expected.size else 0.0
    if not np.isfinite(rounding):  # float32 itself overflows here: only the shape is compared
        rounding = np.inf
    bound = 1e-4 * np.abs(expected) + 1e-5 * scale + 4 * rounding
    actual = z.astype(np.float64)
    bad = ~(np.abs(actual - expected) <= bound)
    assert not np.any(bad), (f"`{show(case.expr)}`: {int(np.sum(bad))} of {bad.size} elements of z differ from "
                             f"NumPy (dims {list(ref.dims)}); pplc:\n{z}\nNumPy:\n{expected}")


@seed(SEED)
@settings(settings.get_profile(PROFILE))
@given(case=cases())
def test_expressions_agree_with_numpy(case):
    note(f"PPLC_HYPOTHESIS_SEED={SEED} replays this run")
    check(case)


# ----------------------------------------------------------------------------- the strategy's reach
def test_strategy_reaches_every_form():
    """The strategy generates every form it claims (a guard against a generator that silently narrows)."""
    from expression_strategy import children

    seen: set = set()

    def walk(e):
        if isinstance(e, Bin):
            seen.add(e.op)
            if e.op == "@" and isinstance(e.a, T) and e.a.a == e.b:
                seen.add("X.T @ X")
        if isinstance(e, T):
            seen.add(".T")
        if isinstance(e, Call):
            seen.add(e.fn + (", dim" if e.dim else ""))
        if isinstance(e, Index):
            seen.add("index " + ",".join("lit" if isinstance(i, Lit) else "array" for i in e.idx))
        if isinstance(e, Name) and e.name == "A":
            seen.add("A[k, k]")
        if isinstance(e, Arr):
            seen.add("[a, b]")
        if isinstance(e, IfElse):
            seen.add("if else")
        for c in children(e):
            walk(c)

    @settings(max_examples=400, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def collect(case):
        walk(case.expr)
        if case.plate:
            seen.add(f"plate {case.plate}")
        try:
            reference(case.expr, case.data, case.sizes, 0.0, case.plate)
            seen.add("valid")
        except Invalid:
            seen.add("invalid")

    collect()
    wanted = {"+", "-", "*", "/", "**", "@", ".T", "sum", "mean", "max", "min", "sum, dim", "logsumexp",
              "softmax", "dot", "where", "index lit", "index array", "index array,array", "index array,lit",
              "A[k, k]", "X.T @ X", "plate n", "plate k", "valid", "invalid", "cumsum", "cumsum, dim", "outer",
              "dot_self", "inverse", "solve", "triangular_solve", "log_determinant", "quad_form", "eye, dim", "concat",
              "[a, b]", "if else"}
    assert not wanted - seen, f"the strategy never generated: {sorted(wanted - seen)}"


# ----------------------------------------------------------------------------- minimal cases found by the property
A, X, W, V, S, IK, JN, GK = (Name(n) for n in ("A", "x", "w", "v", "s", "ik", "jn", "gk"))
G = Bin("+", Bin("@", A, T(A)), Bin("*", Lit(2.0), Call("eye", (), "k")))  # a well-conditioned square matrix
MINIMAL = {  # name: (expression, plate); k=3, n=4, m=2. Each one a distinct failure kind when found (or a
    # neighbour that worked, to keep it working)
    "A @ x": (Bin("@", A, X), None),  # a matrix product with a repeated dim: diag(A) * x
    "A @ w": (Bin("@", A, W), None),
    "w @ A": (Bin("@", W, A), None),
    "x.T @ A": (Bin("@", T(X), A), None),
    "x[gk] @ v": (Bin("@", Index(X, (GK,)), V), None),  # [n, n] @ [n]
    "plate n: A @ x": (Bin("@", A, X), "n"),
    "A @ A": (Bin("@", A, A), None),  # a product whose result has a repeated dim: a crash in einsum
    "x.T @ x": (Bin("@", T(X), X), None),
    "x @ x.T": (Bin("@", X, T(X)), None),
    "sum(A)": (Call("sum", (A,)), None),  # a full reduction of a repeated dim: a crash
    "max(A)": (Call("max", (A,)), None),
    "sum(A, k)": (Call("sum", (A,), "k"), None),  # one axis reduced, typed as a scalar
    "logsumexp(A)": (Call("logsumexp", (A,)), None),  # along the first k, not the last dim
    "dot(A, w)": (Call("dot", (A, W)), None),
    "sum(dot(A, A))": (Call("sum", (Call("dot", (A, A)),)), None),  # dot typed as a scalar
    "x[ik, jn]": (Index(X, (IK, JN)), None),  # two index arrays: both gather on the first dim
    "A[ik, ik]": (Index(A, (IK, IK)), None),
    "x[ik, 0]": (Index(X, (IK, Lit(0))), None),
    "A[ik, gk]": (Index(A, (IK, GK)), None),  # index arrays over different dims: accepted, NaN
    "sum(A, k) + A": (Bin("+", Call("sum", (A,), "k"), A), None),  # ... so this one is [k, k, k]
    "sigmoid(2)": (Call("sigmoid", (Lit(2),)), None),  # an int literal into a float-only function: a crash
    "where(2 < 0.5, 2, x)": (Call("where", (Bin("<", Lit(2), Lit(0.5)), Lit(2), X)), None),  # a crash
    "plate n: s": (S, "n"),  # a deterministic in a plate that does not use the item: no plate dim
    "w @ x": (Bin("@", W, X), None),
    "x.T @ w": (Bin("@", T(X), W), None),
    "A[gk]": (Index(A, (GK,)), None),
    "softmax(A)": (Call("softmax", (A,)), None),
    "plate n: A[gk]": (Index(A, (GK,)), "n"),
    "plate k: A + x.T": (Bin("+", A, T(X)), "k"),
    # issue 10's functions
    "solve(G, x)": (Call("solve", (G, X)), None),  # G = A @ A.T + 2 * eye(k)
    "plate n: quad_form(G, w)": (Call("quad_form", (G, W)), "n"),
    "cumsum(x, k)": (Call("cumsum", (X,), "k"), None),
    "concat(w, [s, u]) + concat(w, [u, 2])": (Bin("+", Call("concat", (W, Arr((S, Name("u"))))),
                                                   Call("concat", (W, Arr((Name("u"), Lit(2)))))), None),
    "concat(w, v)": (Call("concat", (W, V)), None),  # two data-sized dims: refused
    "concat(x, s)": (Call("concat", (X, S)), None),
    "[w, s] @ A": (Bin("@", Arr((W, S)), A), None),  # a [2, k] matrix
    "(x if v > s else 2)": (IfElse(Bin(">", V, S), X, Lit(2)), None),
    "(w if 2 > 0.5 else v)": (IfElse(Bin(">", Lit(2), Lit(0.5)), W, V), None),  # resolved: `v` never counts
    "(w if u > 0.5 else s)": (IfElse(Bin(">", Name("u"), Lit(0.5)), W, S), None),  # a latent condition: refused
    "outer(w, v) - x": (Bin("-", Call("outer", (W, V)), X), None),
}


@pytest.mark.parametrize("name", list(MINIMAL))
def test_minimal_case(name):
    expr, plate = MINIMAL[name]
    check(Case(expr, {"k": 3, "n": 4, "m": 2}, plate, 7, item_term=False))
