"""Sharded = unsharded: for generated models, log_prob and its gradient on 2, 4, 8 devices equal one device's.

A Hypothesis strategy writes valid .ppl models: global latents (scalars and vectors) with several
distributions and supports, latents inside plates, sharded and plain plates (a plain plate nested in a
sharded one too), deterministics, transformed data with a reduction across the sharded dim, a gather
(`beta[g]`), a square matrix (data `P` or latent `Q: real[k, k]`, with `@`, `.T`, `Q.T @ Q`, `diag`), and
Normal / Bernoulli / Poisson / Categorical observations of data arrays. For each model, the test draws
plate sizes that the device count divides or does not (then pplc pads and masks), takes the latents'
values from `Model.sample_prior` (observed values too, so the data lies in the support), optionally
adds a leading batch (chain) dim, and checks the sharded program against the unsharded model (devices=1).

Tolerance (float32): |sharded - unsharded| <= 1e-5 * |unsharded| + 1e-5 * scale, where scale is the
largest magnitude in the compared array (at least 1). Sharding changes the order in which float32 terms
are summed (each device sums its items, then a psum adds the partial sums) and how XLA fuses the
elementwise work (an FMA here, a multiply and an add there), so the two results differ by a few ulps of
the *terms*, not of the result: where terms cancel (a log density near 0, or a gradient element that is a
small sum of large contributions) a pure 1e-5 relative test would fail on rounding alone, hence the
absolute part. Where even that is too tight, because the unsharded float32 value is itself further than
it from the exact one (an ill-conditioned point: in the radon model, y - mu cancels to 1e-2 of mu and the
gradient of sigma_y sums terms 10x its size), the unsharded model is evaluated in float64 too and the
sharded value may differ from the unsharded one by up to 4x the unsharded float32 error (the largest in
the array): sharding must not be less accurate than float32 itself. A bug (a padded item counted, a
missing psum, a replicated gradient summed 8 times) gives errors of order one term, far above either.

Profiles (HYPOTHESIS_PROFILE): "ci" (default; 1 example per case: 8 models, a few minutes of CPU) and
"thorough" (25 examples per case: `HYPOTHESIS_PROFILE=thorough pytest -m slow tests/test_equivalence.py`; expect
half an hour or more). Each run draws new models: the seed is PPLC_EQUIV_SEED, or a random one; the run's summary
and any failure name it, and `PPLC_EQUIV_SEED=<seed> pytest tests/test_equivalence.py` draws the same models again.
The coverage test after the property checks which pieces of the strategy the models of this run had (the
run's summary says), and for each piece that none of them had, that the strategy still writes it; outside the
"ci" profile it also runs the property on such a model (in CI, other runs' seeds draw other pieces). In CI (`-m 'not slow'`) the
property and its coverage test run in an interpreter of their own (`test_the_property_in_a_fresh_interpreter`
says why); `pytest -m slow tests/test_equivalence.py` runs them in this one.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import warnings
from dataclasses import dataclass, field

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import pplc
from conftest import ROOT, note_in_summary

settings.register_profile("ci", max_examples=1, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=25, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SEED = int(os.environ.get("PPLC_EQUIV_SEED") or random.SystemRandom().randrange(2**32))
DREW = f"tests/test_equivalence.py drew its models with PPLC_EQUIV_SEED={SEED} HYPOTHESIS_PROFILE={PROFILE}"
RAN: list[str] = []  # the text of every model the property ran in this session (the coverage test reads it)

RTOL = 1e-5


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """Every case compiles models of its own: drop JAX's compiled programs after each (the process would
    otherwise grow by gigabytes over the file)."""
    yield
    jax.clear_caches()

# ----------------------------------------------------------------------------- the model strategy
# Latent distributions by the support of their values. "{loc}" / "{scale}" are filled with a literal or
# an earlier latent of that kind. Heavy-tailed ones are leaves: nothing depends on their value, so a far
# draw cannot push a Poisson rate or a logit out of float32's range.
REAL_DISTS = ["Normal({loc}, {scale})", "Normal(0, 1)", "Laplace({loc}, 1)", "StudentT(5, {loc}, {scale})",
              "Uniform(-1, 2)"]
POSITIVE_DISTS = ["HalfNormal({scale})", "Exponential(2)", "Gamma(3, 2)", "LogNormal(0, 0.5)",
                  "InverseGamma(3, 2)", "Gamma(4, {scale})"]
LEAF_DISTS = ["Cauchy(0, 1)", "HalfCauchy(0, 2)", "Beta(2, 3)", "Uniform(-2.5, -0.5)", "StudentT(3, 0, 1)"]
OBS_N = ["Normal", "Bernoulli_logits", "Bernoulli_probs", "Poisson_log_rate", "Poisson_rate",
         "Categorical_logits", "Categorical_probs"]
# The pieces of the language the strategy writes, as they appear in a model's text (the coverage test looks for
# each), and the observation a piece needs.
PIECES = ["sharded over devices", "plate m", "plate j", "Dirichlet", "Categorical", "Bernoulli", "Poisson",
          "HalfNormal", "Exponential", "Gamma", "LogNormal", "StudentT", "Beta", "InverseGamma", "Cauchy", "Uniform",
          "Laplace", "eta =", "xc =", "sd =", "data q", "e: real[k]", "  r ~", "  u ~", "beta[g]",
          # issue 10's constructs: bounds, target +=, slices, ordered and multivariate latents
          "real<lower=", "target +=", "[1:]", "ordered[2]", "MultivariateNormalTriL",
          "real[k, k]"]  # a square matrix (data or latent) with `@`, `.T`, `Q.T @ Q`, `diag`
NEEDS_OBS = {"Dirichlet": ("Categorical_probs",), "  r ~": ("Normal",), "[1:]": ("Normal",),
             "beta[g]": ("Normal", "Bernoulli", "Poisson")}


@dataclass
class ModelSpec:
    """A generated model: its source text and how to make its data for given plate sizes."""

    text: str
    k: int  # features: the item dim of x
    classes: int
    has_m: bool = False  # a second plate over `m`
    m_sharded: bool = False
    has_j: bool = False  # a plain plate `j` nested in plate `n`
    j: int = 1
    y_dtype: str = "real"
    z_dtype: str = "real"
    extra: dict = field(default_factory=dict)

    def base_data(self, n: int, m: int, seed: int) -> dict:
        """Every data array, observed ones as zero placeholders (sample_prior replaces them)."""
        rng = np.random.default_rng(seed)
        dtypes = {"real": np.float32, "int": np.int32, "bool": np.bool_}
        data = {"x": rng.uniform(-0.5, 0.5, (n, self.k)).astype(np.float32),
                "y": np.zeros(n, dtypes[self.y_dtype])}
        if "alpha" in self.text:
            data["alpha"] = rng.uniform(1.0, 3.0, self.classes).astype(np.float32)
        if self.has_m:
            data["z"] = np.zeros(m, dtypes[self.z_dtype])
        if self.has_j:
            data["w"] = np.zeros((n, self.j), np.float32)
        if "data q" in self.text:
            data["q"] = np.zeros((), np.float32)
        if "data g" in self.text:
            data["g"] = rng.integers(0, self.k, n).astype(np.int32)
        if "data P" in self.text:
            data["P"] = rng.uniform(-0.5, 0.5, (self.k, self.k)).astype(np.float32)
        return data


def _fill(template: str, draw, locs: list[str], scales: list[str]) -> str:
    loc = draw(st.sampled_from(["0", "0.5", "-1"] + locs))
    scale = draw(st.sampled_from(["1", "0.7", "2"] + scales))
    return template.format(loc=loc, scale=scale)


@st.composite
def model_specs(draw, piece: str | None = None) -> ModelSpec:
    """A valid .ppl model with a plate over the data dim `n` (sharded or not) and the pieces around it; with
    `piece` (one of PIECES), a model that has that piece."""

    def flag(name):  # a coin, or heads for the piece asked for
        return piece == name or draw(st.booleans())

    def pick(options, wants=(piece,)):  # one of the options; one naming the piece asked for, if any does
        return draw(st.sampled_from([o for o in options if any(w and w in o for w in wants)] or options))

    lines: list[str] = []
    obs = pick(OBS_N, NEEDS_OBS.get(piece, (piece,)))
    family = obs.split("_")[0]
    classes = draw(st.integers(2, 4))
    k = draw(st.integers(2 if piece == "[1:]" else 1, 3))
    y_dtype = {"Normal": "real", "Bernoulli": draw(st.sampled_from(["bool", "int"]))}.get(family, "int")
    spec = ModelSpec("", k, classes, y_dtype=y_dtype)

    lines += ["data x: real[n, k]", f"data y: {y_dtype}[n]"]
    if family == "Categorical":
        lines.append(f"const classes = {classes}")
    if obs == "Categorical_probs":
        lines.append("data alpha: real[classes]")
    spec.has_m = flag("plate m")
    if spec.has_m:
        spec.m_sharded = draw(st.booleans())
        spec.z_dtype = draw(st.sampled_from(["real", "int", "bool"]))
        lines.append(f"data z: {spec.z_dtype}[m]")
    spec.has_j = flag("plate j")
    if spec.has_j:
        spec.j = draw(st.integers(1, 3))
        lines.append("data w: real[n, j]")
    has_q = flag("data q")
    if has_q:
        lines.append("data q: real")
    gather = flag("beta[g]")  # an index into the features, one per item of n: `beta[g]` gathers
    if gather:
        lines.append("data g: int[n]")

    # Global scalar latents: a few locations and scales (names a*, s*), and leaves (l*).
    locs: list[str] = []
    scales: list[str] = []
    for i in range(draw(st.integers(1, 2))):
        lines.append(f"s{i} ~ {_fill(pick(POSITIVE_DISTS), draw, [], scales)}")
        scales.append(f"s{i}")
    for i in range(draw(st.integers(1, 2))):
        lines.append(f"a{i} ~ {_fill(pick(REAL_DISTS), draw, locs, scales)}")
        locs.append(f"a{i}")
    for i in range(draw(st.integers(1 if piece in ("Beta", "Cauchy") else 0, 2))):
        lines.append(f"l{i} ~ {pick(LEAF_DISTS)}")
    if has_q:
        lines.append(f"q ~ Normal({draw(st.sampled_from(locs))}, {draw(st.sampled_from(scales))})")
    if flag("real<lower="):  # a bounded latent (its prior truncated), its bound a number or a latent
        bound = draw(st.sampled_from(["0", "-1", locs[0]]))
        upper = draw(st.sampled_from(["", f", upper=({bound} + 3)"]))
        lines.append(f"b0: real<lower={bound}{upper}> ~ {_fill(pick(REAL_DISTS[:3]), draw, locs, scales)}")
        locs.append("b0")
    if flag("ordered[2]"):
        lines.append(f"o: ordered[2] ~ Normal({draw(st.sampled_from(locs))}, 2)")
        locs.append("(o[1] - o[0])")

    # Global vector latents over the features.
    beta = flag("beta[g]") or family != "Categorical"
    if beta:
        if draw(st.booleans()):
            lines.append("lam: real[k] ~ HalfNormal(1)")
            lines.append("beta: real[k] ~ Normal(0, lam)")
        else:
            lines.append(f"beta: real[k] ~ {_fill(pick(REAL_DISTS[:3]), draw, locs, scales)}")
    if obs == "Categorical_logits":
        lines.append("W: real[k, classes] ~ Normal(0, 1)")
        lines.append(f"c: real[classes] ~ Normal(0, {draw(st.sampled_from(['1'] + scales))})")
    if obs == "Categorical_probs":
        lines.append("pi ~ Dirichlet(alpha)")
    square = None
    if flag("real[k, k]"):  # a square matrix, data or latent, used per item below
        square = draw(st.sampled_from(["P", "Q"]))
        if square == "P":
            lines.insert(2, "data P: real[k, k]")
        else:
            lines.append("Q: real[k, k] ~ Normal(0, 0.5)")
        square = draw(st.sampled_from([square, f"{square}.T @ {square}", f"{square} @ {square}.T",
                                       f"{square}.T + diag(rep({scales[0]}, k))"]))

    # Transformed data: centred features, the mean taken across the (possibly sharded) dim n.
    xname = "x"
    if flag("xc ="):
        lines.append("xc = x - mean(x)")
        xname = "xc"
    # A global deterministic used below.
    glob_det = flag("sd =")
    if glob_det:
        lines.append(f"sd = {scales[0]} + 0.5")
        scales.append("sd")

    n_sharded = flag("sharded over devices") or draw(st.booleans())  # sharded three times in four
    lines.append("plate n sharded over devices {" if n_sharded else "plate n {")
    terms = [draw(st.sampled_from(locs))]
    if beta:
        terms.append(draw(st.sampled_from([f"{xname} @ beta", f"dot({xname}, beta)"])))
    if flag("  u ~"):
        lines.append(f"  u ~ {_fill(pick(REAL_DISTS[:3]), draw, locs, scales)}")
        terms.append(draw(st.sampled_from(["u", "0.5 * u", "tanh(u)"])))
    if flag("e: real[k]"):
        e_loc = draw(st.sampled_from(["0", "beta"] if beta else ["0"]))
        lines.append(f"  e: real[k] ~ Normal({e_loc}, 1)")
        terms.append(draw(st.sampled_from([f"{xname} @ e", "mean(e)", f"sum({xname} * e)"])))
    if square:
        terms.append(f"0.3 * dot({xname} @ ({square}), {xname})")
    if draw(st.booleans()):
        terms.append(f"{xname}[0]")
    if k >= 2 and family == "Normal" and flag("[1:]"):  # a slice of the item: dim `k-1`
        terms.append(f"sum({xname}[1:] * {xname}[:-1])")
    if flag("target +="):  # a term per item, summed across devices with padded items left out
        lines.append(f"  target += Normal({draw(st.sampled_from(locs))}, 2).log_prob({xname}[0])")
    if flag("MultivariateNormalTriL"):  # a multivariate latent per item of n (sharded with it)
        lines.append(f"  mv: real[k] ~ MultivariateNormalTriL(rep(0, k), diag(rep({draw(st.sampled_from(scales))}, k)))")
        terms.append("0.3 * mean(mv)")
    if gather and beta:
        terms.append("beta[g]")
    scale = draw(st.sampled_from(scales + ["1.5"]))
    if family == "Normal" and flag("  r ~"):
        lines.append(f"  r ~ {pick(POSITIVE_DISTS[:4]).format(scale='1')}")
        scale = f"{scale} * r" if draw(st.booleans()) else "r"
    pred = " + ".join(terms)
    if flag("eta ="):
        lines.append(f"  eta = {pred}")
        pred = "eta"
    lines.append("  y ~ " + {
        "Normal": f"Normal({pred}, {scale})",
        "Bernoulli_logits": f"Bernoulli(logits = {pred})",
        "Bernoulli_probs": f"Bernoulli(probs = sigmoid({pred}))",
        "Poisson_log_rate": f"Poisson(log_rate = {pred})",
        "Poisson_rate": f"Poisson(rate = exp({pred}))",
        "Categorical_logits": f"Categorical(logits = {xname} @ W + c)",
        "Categorical_probs": "Categorical(probs = pi)",
    }[obs])
    if spec.has_j:
        inner = pred if pred == "eta" else terms[0]
        lines += ["  plate j {", f"    w ~ Normal({inner}, {draw(st.sampled_from(scales))})", "  }"]
    lines.append("}")

    if spec.has_m:
        lines.append("plate m sharded over devices {" if spec.m_sharded else "plate m {")
        lines.append(f"  v ~ Normal({draw(st.sampled_from(locs))}, {draw(st.sampled_from(scales))})")
        lines.append("  z ~ " + {"real": "Normal(v, 1)", "int": "Poisson(log_rate = tanh(v))",
                                 "bool": "Bernoulli(logits = v)"}[spec.z_dtype])
        lines.append("}")
    spec.text = "\n".join(lines) + "\n"
    return spec


# ----------------------------------------------------------------------------- helpers
MOVES = {"real": lambda x: x + 0.3, "positive": lambda x: x * 1.3, "unit": np.sqrt,
         "simplex": lambda x: np.sqrt(x) / np.sum(np.sqrt(x), axis=-1, keepdims=True), "ordered": lambda x: x + 0.3}


def _second_state(model: pplc.Model, params: dict) -> dict:
    """Another point in the support of every latent (a second 'chain'), without another prior draw."""
    return {v.name: MOVES.get(v.support, lambda x: x)(np.asarray(params[v.name], np.float32))
            for v in model.ir.of_kind("latent")}


def value_and_grad(model: pplc.Model, params, data, devices: int, spmd: str):
    """`Model.log_prob` and `Model.grad_log_prob` at once: both run `Model._evaluate`; one compile, not two."""
    val, grad = model._evaluate(params, data, devices, True, spmd)
    return np.asarray(val), grad


class Float64Reference:
    """The unsharded model's log density and gradient in float64 (jax x64), computed on first use only."""

    def __init__(self, model, params, data):
        self.args, self.value = (model, params, data), None

    def __call__(self):
        if self.value is None:
            model, params, data = self.args
            with jax.enable_x64(True):
                val, grad = model._evaluate({k: np.asarray(v, np.float64) for k, v in params.items()}, data, 1,
                                            True, "shard_map")
                self.value = (np.asarray(val, np.float64), {k: np.asarray(g, np.float64) for k, g in grad.items()})
        return self.value


def assert_close(actual, expected, what: str, exact=None):
    """Sharded `actual` equals unsharded `expected` (both float32) within the tolerance of the module docstring;
    `exact()`, when given, is the float64 value, consulted only when the 1e-5 bound fails."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(expected)), f"{what}: the unsharded value is not finite: {expected}"
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    bound = RTOL * np.abs(expected) + RTOL * scale
    if exact is not None and np.any(np.abs(actual - expected) > bound):
        rounding = float(np.max(np.abs(expected - np.asarray(exact(), np.float64))))
        bound = bound + 4 * rounding
        what = f"{what} (the unsharded float32 value is {rounding:.3g} from float64)"
    _assert_within(actual, expected, bound, what)


def _assert_within(actual, expected, bound, what):
    bad = np.abs(actual - expected) > bound
    assert not np.any(bad), (f"{what}: {int(np.sum(bad))} of {bad.size} elements differ by more than the bound; "
                             f"worst {np.max(np.abs(actual - expected)):.3g}, sharded {actual[bad][:5]}, "
                             f"unsharded {expected[bad][:5]}, bound {np.broadcast_to(bound, bad.shape)[bad][:5]}")


def sizes_for(draw, devices: int, divisible: bool) -> int:
    if divisible:
        return devices * draw(st.integers(1, 2))
    return draw(st.integers(1, 2 * devices).filter(lambda n: n % devices))


# ----------------------------------------------------------------------------- the property
CASES = [  # (devices, whether the device count divides plate n, SPMD mode)
    (2, True, "shard_map"), (2, False, "shard_map"),
    (4, True, "shard_map"), (4, False, "shard_map"),
    (8, True, "shard_map"), (8, False, "shard_map"),
    (4, False, "pmap"), (8, True, "pmap"),
]


def check_sharded_equals_unsharded(spec: ModelSpec, draw, devices: int, divisible: bool, spmd: str):
    """The property, for one generated model: its log density and gradient on `devices` equal one device's."""
    RAN.append(spec.text)
    n = sizes_for(draw, devices, divisible)
    m = draw(st.integers(1, 2 * devices), label="m")
    batched = draw(st.booleans(), label="batched")
    seed_ = draw(st.integers(0, 2**16), label="seed")
    model = pplc.compile(spec.text, "generated.ppl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        prior = model.sample_prior(spec.base_data(n, m, seed_), seed=seed_)
    arrays = spec.base_data(n, m, seed_)
    for name in arrays:
        if name in {v.name for v in model.ir.of_kind("observed")}:
            arrays[name] = prior[name]
    params = {name: prior[name] for name in model.latents}
    if batched:
        other = _second_state(model, params)
        params = {k: np.stack([params[k], other[k]]) for k in params}

    ref_val, ref_grad = value_and_grad(model, params, arrays, 1, "shard_map")
    val, grad = value_and_grad(model, params, arrays, devices, spmd)
    exact = Float64Reference(model, params, arrays)

    assert_close(val, ref_val, f"log_prob on {devices} devices ({spmd}), n={n}", lambda: exact()[0])
    assert set(grad) == set(ref_grad)
    for name in ref_grad:
        assert_close(grad[name], ref_grad[name], f"d log_prob / d {name} on {devices} devices ({spmd}), n={n}",
                     lambda name=name: exact()[1][name])


def run_property(examples, case_seed: int, devices: int, divisible: bool, spmd: str, piece: str | None = None):
    """The property on models drawn from `examples` (Hypothesis: shrinking a failure to a small model), seeded
    by `case_seed`; a failure says how to draw the same models again."""

    @seed(case_seed)
    @settings(settings.get_profile(PROFILE), max_examples=examples)
    @given(spec=model_specs(piece), data=st.data())
    def sharded_equals_unsharded(spec, data):
        check_sharded_equals_unsharded(spec, data.draw, devices, divisible, spmd)

    try:
        sharded_equals_unsharded()
    except BaseException as e:
        e.add_note(f"the models of this run: PPLC_EQUIV_SEED={SEED} HYPOTHESIS_PROFILE={PROFILE} "
                   f"pytest tests/test_equivalence.py")
        raise


# The property itself, in this interpreter: by hand (`-m slow`), and in the interpreter of its own that CI starts
# (`test_the_property_in_a_fresh_interpreter`, below).
@pytest.mark.slow
@pytest.mark.parametrize("devices,divisible,spmd", CASES,
                         ids=[f"{d}dev-{'divides' if div else 'padded'}-{m}" for d, div, m in CASES])
def test_sharded_log_prob_and_gradient_equal_unsharded(devices, divisible, spmd):
    case = CASES.index((devices, divisible, spmd))
    note_in_summary(DREW)
    run_property(settings.get_profile(PROFILE).max_examples, SEED * len(CASES) + case, devices, divisible, spmd)


@pytest.mark.slow
def test_the_models_of_this_run_cover_the_language():
    """Which pieces of PIECES the models the property ran in this session (above) had, in the run's summary, and
    a guard against a strategy that silently narrows: for each piece none of them had, the strategy asked for it
    writes it; outside the "ci" profile that model is also run (on 8 devices, padded). In CI the seed changes
    every run, so the pieces a run misses are run by others."""
    missing = [p for p in PIECES if not any(p in text for text in RAN)]
    note_in_summary(f"tests/test_equivalence.py: the models of this run had {len(PIECES) - len(missing)} of the "
                    f"{len(PIECES)} pieces" + (f"; without: {', '.join(missing)}" if missing else ""))
    for i, piece in enumerate(missing):
        if PROFILE == "ci":  # (CI's time): the strategy must still write each piece; other runs' seeds run it
            text = _draw_text(piece, SEED + i)
            assert piece in text, f"the strategy, asked for a model with `{piece}`, wrote:\n{text}"
            continue
        ran = len(RAN)
        run_property(1, SEED * len(CASES) + len(CASES) + i, 8, False, "shard_map", piece)
        assert piece in RAN[ran], f"the strategy, asked for a model with `{piece}`, wrote:\n{RAN[ran]}"


def _draw_text(piece: str, case_seed: int) -> str:
    """The text of one model the strategy writes when asked for `piece` (drawn, not run)."""
    texts = []

    @seed(case_seed)
    @settings(settings.get_profile(PROFILE), max_examples=1)
    @given(spec=model_specs(piece))
    def draw(spec):
        texts.append(spec.text)

    draw()
    return texts[-1]


PROPERTY = [f"tests/test_equivalence.py::{t.__name__}" for t in (test_sharded_log_prob_and_gradient_equal_unsharded,
                                                                  test_the_models_of_this_run_cover_the_language)]


def test_the_property_in_a_fresh_interpreter():
    """The property and its coverage test (above, `slow`) in a Python process of their own, with this run's seed.

    Why a process of their own: in whole-suite CI runs (one process, 2 cores), XLA's CPU compiler crashed with a
    segfault inside the property (in `backend_compile_and_load`) four times, each after ~200 tests had compiled
    their programs in the same process; the property alone, and after test_cli/test_datasets/test_diagnostics
    alone, passed, and dropping JAX's caches between files (tests/conftest.py) did not stop it. The property is
    the suite's heaviest compiler user: `Model.sample_prior` runs TFP's sampler op by op, and each op is an XLA
    program of its own (45 compiles for the radon golden model's prior draw, 205 for mixture_of_supports, against
    1 or 2 for each log density and gradient), so its ~25 models compile thousands of programs after the
    suite's own, with the process at 0.6-1.7 GB. Whatever the process has accumulated by then, a fresh
    interpreter starts without it, as each user's process does; and a crash there, which would end the whole
    suite in-process, fails this one test with the child's own output: its faulthandler stack, Hypothesis'
    falsifying example and the seed that draws the same models again."""
    env = dict(os.environ, PPLC_EQUIV_SEED=str(SEED), HYPOTHESIS_PROFILE=PROFILE)
    cmd = [sys.executable, "-X", "faulthandler", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "-m", "slow",
           *PROPERTY]
    note_in_summary(DREW)
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    out = (r.stdout + r.stderr)[-20000:]
    assert r.returncode == 0, (f"the property failed (exit status {r.returncode}); the same models again: "
                               f"PPLC_EQUIV_SEED={SEED} HYPOTHESIS_PROFILE={PROFILE} pytest -m slow "
                               f"tests/test_equivalence.py\n{out}")
    assert f"{len(CASES) + 1} passed" in r.stdout, f"not every case of the property ran:\n{out}"


# ----------------------------------------------------------------------------- regressions found by the strategy
def test_iid_site_with_a_latent_parameter_keeps_the_plate_shape():
    """`u ~ Normal(mu, 1)` in a plain plate is tfd.Sample over the plate: draws are [n], not [1, n]; the
    density is the closed form (the parameter used to be lifted to [..., 1] under tfd.Sample as well)."""
    model = pplc.compile("data x: real[n]\nmu ~ Normal(0, 1)\nplate n {\n  u ~ Normal(mu, 1)\n"
                         "  x ~ Normal(u, 1)\n}\n", "iid.ppl")
    x = np.array([0.5, -1.0, 2.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        prior = model.sample_prior({"x": x}, seed=3)
    assert prior["u"].shape == (3,) and prior["x"].shape == (3,)
    mu, u = 0.25, np.array([1.0, 2.0, -0.5])
    lp = lambda z, m: -0.5 * (z - m) ** 2 - 0.5 * np.log(2 * np.pi)  # noqa: E731
    expected = lp(mu, 0) + lp(u, mu).sum() + lp(x, u).sum()
    params = {"mu": mu, "u": u}
    assert_close(model.log_prob(params, {"x": x}), expected, "log_prob")
    chains = {"mu": np.array([mu, mu]), "u": np.stack([u, u])}  # a leading chain dim broadcasts
    assert_close(model.log_prob(chains, {"x": x}), [expected, expected], "log_prob of two chains")


def test_negative_literal_parameter_in_a_plate():
    """`Normal(-1, s)` inside a plate: the literal is not indexed like an array (it was `(-1)[..., None]`)."""
    model = pplc.compile("data x: real[n]\ns ~ HalfNormal(1)\nplate n sharded over devices {\n"
                         "  x ~ Normal(-1, s)\n}\n", "neg.ppl")
    x = np.linspace(-2, 1, 5).astype(np.float32)
    s = 0.8
    expected = (np.log(2) - 0.5 * np.log(2 * np.pi) - 0.5 * s ** 2
                + np.sum(-0.5 * ((x + 1) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)))
    for devices in (1, 4):
        assert_close(model.log_prob({"s": s}, {"x": x}, devices=devices), expected, f"{devices} devices")


def test_pmap_without_a_sharded_plate():
    """pmap needs one mapped argument; a model with no sharded plate has none of its own."""
    model = pplc.compile_file(os.path.join(os.path.dirname(__file__), "..", "examples", "eight_schools.ppl"))
    data = {"y": np.array([28, 8, -3, 7, -1, 1, 18, 12], np.float32),
            "sigma": np.array([15, 10, 16, 11, 9, 11, 10, 18], np.float32)}
    params = {"mu": 4.0, "tau": 3.0, "theta_raw": np.linspace(-1, 1, 8)}
    ref_val, ref_grad = value_and_grad(model, params, data, 1, "shard_map")
    val, grad = value_and_grad(model, params, data, 4, "pmap")
    assert_close(val, ref_val, "log_prob")
    for name in ref_grad:
        assert_close(grad[name], ref_grad[name], name)


# ----------------------------------------------------------------------------- the golden models, numerically
GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "good")


def _golden_data(name: str, seed: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    if name == "radon_hierarchical":
        n, counties = 37, 6
        return {"log_radon": np.zeros(n, np.float32), "floor": rng.integers(0, 2, n).astype(np.float32),
                "county": rng.integers(0, counties, n).astype(np.int32), "counties": np.int32(counties)}
    n, features, trials = 29, 3, 2
    return {"x": rng.normal(size=(n, features)).astype(np.float32), "counts": np.zeros(n, np.int32),
            "flags": np.zeros((n, trials), bool), "alpha": np.array([1.5, 2.0, 3.0], np.float32),
            "group": np.zeros(n, np.int32)}


@pytest.mark.parametrize("name", ["radon_hierarchical", "mixture_of_supports"])
def test_golden_models_sharded_equal_unsharded(name):
    """The extra golden models (a gather from a replicated latent by a sharded index; a max across devices in
    transformed data; Dirichlet, Gamma, Beta, LogNormal, StudentT; a plain plate nested in a sharded one) on 8
    devices, their plate padded (37 and 29 items), against one device."""
    model = pplc.compile_file(os.path.join(GOLDEN, f"{name}.ppl"))
    arrays = _golden_data(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        prior = model.sample_prior(arrays, seed=2)
    for v in model.ir.of_kind("observed"):
        arrays[v.name] = prior[v.name]
    params = {k: prior[k] for k in model.latents}
    ref_val, ref_grad = value_and_grad(model, params, arrays, 1, "shard_map")
    val, grad = value_and_grad(model, params, arrays, 8, "shard_map")
    exact = Float64Reference(model, params, arrays)
    assert_close(val, ref_val, "log_prob", lambda: exact()[0])
    for k in ref_grad:
        assert_close(grad[k], ref_grad[k], k, lambda k=k: exact()[1][k])


def test_float64_evaluation_with_literal_priors_and_data():
    """Under x64 a site whose parameters are all literals is float64 too (TFP would make it float32 and then
    refuse to mix it with float64 data: eight schools failed under --x64); the density is the closed form."""
    model = pplc.compile_file(os.path.join(os.path.dirname(__file__), "..", "examples", "eight_schools.ppl"))
    y = np.array([28, 8, -3, 7, -1, 1, 18, 12], np.float64)
    sigma = np.array([15, 10, 16, 11, 9, 11, 10, 18], np.float64)
    mu, tau, raw = 4.0, 3.0, np.linspace(-1, 1, 8)
    norm = lambda x, m, s: -0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)  # noqa: E731
    expected = (norm(mu, 0, 5) + np.log(2 / (np.pi * 5 * (1 + (tau / 5) ** 2))) + norm(raw, 0, 1).sum()
                + norm(y, mu + tau * raw, sigma).sum())
    val, _ = Float64Reference(model, {"mu": mu, "tau": tau, "theta_raw": raw}, {"y": y, "sigma": sigma})()
    assert val.dtype == np.float64
    np.testing.assert_allclose(val, expected, rtol=1e-12)
