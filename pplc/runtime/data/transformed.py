"""Binding data to a program: the data checked, then the transformed data computed once and added."""
from __future__ import annotations

import os

import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError
from ..program import Program
from .bind import BoundData, _check_supports, as_bound, check_indices, dtype_of


def bind_program(program: Program, data, allow_missing: bool = False) -> BoundData:
    """Data (a BoundData, a file name or arrays by name) checked against `program`'s model, with its transformed
    data computed once (the generated `transformed_data`, on all the data) and added to the arrays: from here on
    the runtime treats them as data (padded, split across devices, observed).

    With `allow_missing`, observed data may be absent (a prediction, a prior draw): what is computed from them is
    absent too, and a transformed value that is not itself observed and depends on them is an error."""
    model = program.ir
    bound = as_bound(model, data, allow_missing=allow_missing)
    transformed = model.of_kind("transformed")
    if all(v.name in bound.arrays for v in transformed):
        return bound
    missing = {v.name for v in model.of_kind("data") if v.name not in bound.arrays}
    arrays = bound.with_placeholders(model.of_kind("data"))  # for the computation only
    observed = {v.name for v in program.observed}
    for v in transformed:
        gone = sorted(model.data_used_by(v.name) & missing)
        if gone and v.name not in observed:
            raise PPLError(Diagnostic(
                f"`{v.name}` (at {os.path.basename(model.filename)}:{v.span}) is computed from data `{gone[0]}`, "
                "which the data does not have", hint=f"give `{gone[0]}` in the data"))
    values = program.module.transformed_data(arrays, bound.sizes, program.all_true_masks(bound.sizes))
    out = dict(bound.arrays)
    for v in transformed:
        if not model.data_used_by(v.name) & missing:
            out[v.name] = np.asarray(values[v.name], dtype_of(v.dtype))
    filename = data if isinstance(data, (str, os.PathLike)) else "<data>"
    new = {k: out[k] for k in out if k not in bound.arrays}
    errors = _check_supports(model, {k: new[k] for k in new if k in observed}, bound.sizes, filename)
    errors += check_indices(model, new, bound.sizes, filename)
    if errors:
        raise PPLError(list(bound.warnings) + errors)
    return BoundData(out, bound.sizes, bound.warnings)
