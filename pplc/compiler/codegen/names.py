"""Python names in generated code: .ppl names that would meet a keyword, builtin or generated name, safe text."""
from __future__ import annotations

import builtins
import keyword

# Names the generated module defines or imports (and SUPPORTS and momentum_distribution, which it once did: a
# model keeps its Python names); .ppl names equal to these (or to Python keywords and builtins) get a trailing
# underscore in generated code, and keep their .ppl name everywhere else.
GENERATED_NAMES = {"jax", "jnp", "np", "tfp", "tfd", "tfed", "distribute_lib", "Root", "data", "dims", "masks",
                   "shard_axes", "model", "values", "make_model", "observed", "derived", "main", "psum", "Flat",
                   "HalfFlat", "DATA", "DIMS", "SHARDED_DIMS", "LATENTS", "DETERMINISTICS", "TRACKS", "OBSERVED",
                   "SOURCE", "SUPPORTS", "SITE_NAMES", "argparse", "os", "json", "functools", "sharded_sum",
                   "sharded_mean", "sharded_max", "sharded_min", "momentum_distribution", "pad_value_zero",
                   "pad_value_one", "pad_value_half", "pad_value_mean", "real", "widen", "TRANSFORMED", "transformed_data",
                   "LogDensityTerm", "Bounded", "rep", "log_mix", "gp_exp_quad_cov", "Ordered", "diag", "BernoulliLogits",
                   "recurrence", "masked", "real_items",
                   "outer", "linalg_batch", "solve", "triangular_solve", "quad_form", "concat", "stack_items"}
BUILTINS = set(dir(builtins))


def py(name: str) -> str:
    """The Python identifier of a .ppl name in generated code.

    A name that is a Python keyword or builtin or one of GENERATED_NAMES, with any number of trailing
    underscores, gets one more: `class` -> `class_`, and a .ppl `class_` -> `class__`, so that no two
    .ppl names meet in Python."""
    base = name.rstrip("_")
    if keyword.iskeyword(base) or base in BUILTINS or base in GENERATED_NAMES:
        return name + "_"
    return name


def safe_text(text: str) -> str:
    """User text (a file name, a source line) made safe for a comment or docstring of generated code:
    no line breaks of any kind, quotes or backslashes, which could end the comment or the string."""
    return "".join(c if c.isprintable() and c not in "\"'\\" else "?" for c in text)
