"""Checking data against the model's declarations and binding every dim's size, before any tracing."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from ...compiler import ir
from ...compiler.supports import Support, outside
from ...dsl.diagnostics import Diagnostic, PPLError, did_you_mean
from .load import META, kind_error, load

DTYPES = {"real": np.float32, "int": np.int32, "bool": np.bool_}
INT_MAX = 2**31 - 1


def dtype_of(kind: str):
    """The numpy dtype of a .ppl data type in this run: reals are float64 under `--x64` (jax_enable_x64)."""
    if kind == "real":
        import jax

        return np.float64 if jax.config.jax_enable_x64 else np.float32
    return DTYPES[kind]


@dataclass(frozen=True)
class BoundData:
    """Checked data: arrays by name in the model's dtypes, every dim's size, and the warnings of checking
    them (for the caller to show: arrays the model does not declare)."""

    arrays: dict
    sizes: dict  # dim -> size
    warnings: tuple = ()  # Diagnostic warnings

    def with_placeholders(self, variables) -> dict:
        """The arrays, with zeros of the declared shape and dtype for each of `variables` the data leave out
        (observed arrays a prior or predictive draw replaces; data a computation only needs the sizes of)."""
        arrays = dict(self.arrays)
        for v in variables:
            if v.name not in arrays:
                arrays[v.name] = np.zeros([self.sizes[d] for d in v.phys], dtype_of(v.dtype))
        return arrays

    def fingerprint(self) -> str:
        """A hash of the arrays (names, dtypes, shapes, values): what a checkpoint and a stored program must
        agree with."""
        chunks = []
        for name in sorted(self.arrays):
            a = np.ascontiguousarray(self.arrays[name])
            chunks += [name, a.dtype.str, a.shape, a.tobytes()]
        return hash_chunks(*chunks)


def hash_chunks(*chunks) -> str:
    """A short hash of a sequence of bytes or values (each written as text), each ended by a NUL."""
    h = hashlib.sha256()
    for c in chunks:
        h.update(c if isinstance(c, bytes) else str(c).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _decl(v) -> str:
    return f"`data {v.name}: {v.dtype}" + (f"[{', '.join(v.phys)}]`" if v.phys else "`")


def _bad_values(mask: np.ndarray, a: np.ndarray, what: str) -> str:
    """'a WHAT: VALUE at index [i, j]', or 'N WHATs; the first is VALUE at index [i, j]', for `mask`'s entries."""
    idx = tuple(int(i) for i in np.argwhere(mask)[0]) if a.ndim else ()
    n = int(np.sum(mask))
    val = a[idx] if a.ndim else a[()]
    val = val.item() if hasattr(val, "item") else val
    where = f" at index [{', '.join(map(str, idx))}]" if a.ndim else ""
    if n == 1:
        return f"a {what}: {val!r}{where}"
    return f"{n} {what.replace('value', 'values', 1)}; the first is {val!r}{where}"


def _only_observed_through(model: ir.Model) -> set[str]:
    """Data that the model uses only to compute observed transformed data (`earn` of `log_earn = log(earn)`,
    `log_earn ~ ...`): a prediction or a prior draw may go without them, as without observed data."""
    observed = {v.name for v in model.of_kind("observed")}
    feeds = set().union(*(model.data_used_by(n) for n in observed if model.var(n).kind == ir.Kind.TRANSFORMED))
    direct = set()
    for v in model.variables:
        if v.kind == ir.Kind.TRANSFORMED and v.name in observed:
            continue
        exprs = ([v.value] if v.value is not None else []) + ([e for _, e in v.dist.params] if v.dist else [])
        exprs += [b for b in (v.bounds or ()) if b is not None]
        direct |= {r.name for e in exprs for r in ir.refs(e) if r.kind == ir.Kind.DATA}
    return feeds - direct


def bind(model: ir.Model, raw: dict, filename: str = "<data>", allow_missing: bool = False,
         shapes: dict | None = None) -> BoundData:
    """Check `raw` against the model's data declarations before any tracing; every independent error is
    reported at once, each naming the variable (and the dim). Warnings come back in `BoundData.warnings`.
    `shapes`: the whole arrays' shapes by name, when `raw` holds only some rows of them (`rows.py`)."""
    errors, warnings = [], []
    arrays: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {d.name: d.size for d in model.dims if d.size is not None}
    where: dict[str, str] = {}  # dim -> where its size came from, as a phrase
    for d in model.dims:
        if d.source == "const":
            where[d.name] = f"(`const {d.name}` in the model)"
        elif d.source == "literal":
            where[d.name] = "(a literal size in the model)"
    declared = model.of_kind("data")
    declared_names = {v.name for v in declared}
    observed_names = {v.name for v in model.of_kind("observed")}
    observed_names |= _only_observed_through(model)
    extra = [k for k in raw if k not in declared_names and not str(k).startswith(META)]  # meta/: pplc data
    model_at = os.path.basename(model.filename)

    def err(msg, hint=None):
        errors.append(Diagnostic(msg, filename=filename, hint=hint))

    for v in declared:
        if v.name not in raw:
            if allow_missing and v.name in observed_names:
                continue
            close = did_you_mean(v.name, extra)
            err(f"missing data `{v.name}`: the model declares {_decl(v)} at {model_at}:{v.span}",
                hint=f"the data has {close[len('did you mean '):-1]}; is it misspelt?" if close else None)
            continue
        try:
            a = np.asarray(raw[v.name])
        except (ValueError, TypeError, OverflowError):
            err(f"`{v.name}` is a ragged nested list: its rows have different lengths")
            continue
        why = kind_error(v.name, a)
        if why:
            err(why)
            continue
        if a.ndim != len(v.phys):
            if not v.phys:
                err(f"`{v.name}` is declared a scalar ({_decl(v)}) but has shape [{', '.join(map(str, a.shape))}]")
            else:
                err(f"`{v.name}` has {a.ndim} dim{'s' if a.ndim != 1 else ''} (shape [{', '.join(map(str, a.shape))}]) "
                    f"but is declared with {len(v.phys)}: [{', '.join(v.phys)}]",
                    hint=f"the declaration is {_decl(v)} at {model_at}:{v.span}")
            continue
        ok = True  # the sizes of its dims first: they are independent of its values
        for i, (d, n) in enumerate(zip(v.phys, (shapes or {}).get(v.name, a.shape))):
            if d in sizes and sizes[d] != n:
                ok = False
                if d.isdigit():
                    err(f"`{v.name}` has {n} items along its dim {i + 1}, but the model declares {d} "
                        f"({_decl(v)})")
                elif model.dim_map[d].source == "const":
                    err(f"dim `{d}` is {sizes[d]} {where[d]} but {n} in `{v.name}`",
                        hint=f"change the data, or the const: `--const {d}={n}`")
                else:
                    err(f"dim `{d}` is {sizes[d]} {where[d]} but {n} in `{v.name}`")
            elif d not in sizes:
                sizes[d], where[d] = n, f"in `{v.name}`"
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            err(f"`{v.name}` has {_bad_values(~np.isfinite(a), a, 'NaN or infinite value')}",
                hint="pplc has no missing values: remove or impute them before sampling")
            continue
        if v.dtype in ("int", "bool") and a.dtype.kind == "f" and not np.all(a == np.round(a)):
            as_real = _decl(v).replace(f": {v.dtype}", ": real", 1)
            err(f"`{v.name}` is declared {v.dtype} but has {_bad_values(a != np.round(a), a, 'non-integer value')}",
                hint=f"round them, or declare {as_real}" if v.dtype == "int" else None)
            continue
        if v.dtype == "int" and a.dtype.kind in "iuf" and a.size and (a.max() > INT_MAX or a.min() < -INT_MAX - 1):
            err(f"`{v.name}` has {_bad_values((a > INT_MAX) | (a < -INT_MAX - 1), a, 'value too large for int')} "
                "(ints are 32-bit)")
            continue
        if v.dtype == "bool" and not np.all((a == 0) | (a == 1)):
            err(f"`{v.name}` is declared bool but has {_bad_values((a != 0) & (a != 1), a, 'value other than 0 and 1')}")
            continue
        if not ok:
            continue
        arrays[v.name] = a.astype(dtype_of(v.dtype))
        if not v.phys and v.dtype == "int" and v.name in model.dim_map:
            n = int(a)
            d = v.name
            if d in sizes and sizes[d] != n:
                err(f"dim `{d}` is {sizes[d]} {where[d]} but `{d}` = {n}")
            sizes[d], where[d] = n, f"(`{d}` = {n})"
    for k in extra:
        warnings.append(Diagnostic(f"`{k}` is in the data but the model does not declare it; ignored",
                                   severity="warning", filename=filename))
    for d in model.dims:  # a slice's dims: `y[1:]` has `n-1` items
        if d.source == "derived" and d.base in sizes:
            sizes[d.name] = sizes[d.base] - d.offset
    for d in model.dims:
        if d.name not in sizes and not errors and not allow_missing:
            err(f"the size of dim `{d.name}` is not given by the data")
        elif d.name in sizes and sizes[d.name] < 1:
            err(f"dim `{d.name}` has size {sizes[d.name]} {where.get(d.name, '')}; a dim needs at least one item"
                .replace("  ", " "))
    for v in declared:  # `data x: real<lower=0>[n]`
        if v.data_bounds and v.name in arrays:
            low, high = v.data_bounds
            a = arrays[v.name]
            bad = np.zeros(np.shape(a), bool)
            if low is not None:
                bad |= a < low
            if high is not None:
                bad |= a > high
            if np.any(bad):
                words = " and ".join(w for w in (low is not None and f">= {low:g}", high is not None and f"<= {high:g}")
                                     if w)
                err(f"`{v.name}` has {_bad_values(bad, a, 'value outside its declared bounds')}",
                    hint=f"{_decl(v)[1:-1]} is declared {words} at {model_at}:{v.span}")
    errors += _check_supports(model, arrays, sizes, filename)
    errors += check_indices(model, arrays, sizes, filename)
    if errors:
        raise PPLError(warnings + errors)
    return BoundData(arrays, sizes, tuple(warnings))


def _check_supports(model, arrays, sizes, filename) -> list[Diagnostic]:
    """Observed values must lie in the support of the distribution that observes them."""
    out = []
    for v in model.of_kind("observed"):
        if v.name not in arrays or v.support_check is None:
            continue
        a = arrays[v.name]
        found = outside(v.support_check, a, sizes)
        if found is None or not np.any(found[0]):
            continue
        bad, words = found
        name = v.dist.spec.name
        hint = f"`{v.name} ~ {name}(...)` is at {os.path.basename(model.filename)}:{v.span}"
        if v.support_check.support == Support.SIMPLEX:
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            out.append(Diagnostic(
                f"`{v.name}` is outside the support of {name}: its values along the last dim must be "
                f">= 0 and sum to 1, but at index [{', '.join(map(str, idx))}] they sum to "
                f"{float(np.sum(a[idx])):g}", filename=filename, hint=hint))
        else:
            out.append(Diagnostic(
                f"`{v.name}` has {_bad_values(bad, a, f'value outside the support of {name} ({words})')}",
                filename=filename, hint=hint))
    return out


def check_indices(model: ir.Model, arrays: dict, sizes: dict, filename: str) -> list[Diagnostic]:
    """Data used as index arrays must hold indices into their dim, 0 .. size-1 (JAX would clamp the others)."""
    out = []
    for c in model.index_checks:
        a, size = arrays.get(c.name), sizes.get(c.dim)
        if a is None or size is None:
            continue
        bad = (a < 0) | (a >= size)
        if not np.any(bad):
            continue
        one_based = int(np.min(a)) >= 1 and int(np.max(a)) == size
        hint = f"`{c.name}` indexes `{c.dim}` at {os.path.basename(model.filename)}:{c.span}; " + (
            f"Stan's indices start at 1: index with `{c.name}0 = {c.name} - 1`" if one_based else
            f"an index into `{c.dim}` is 0 .. {size - 1}")
        out.append(Diagnostic(f"`{c.name}` has {_bad_values(bad, a, f'value out of range for dim `{c.dim}` of size {size} (indices start at 0)')}",
                              filename=filename, hint=hint))
    return out


def as_bound(model: ir.Model, data, allow_missing: bool = False) -> BoundData:
    """Data given as a BoundData (returned as it is), a file name (.npz or .json) or arrays by name, checked
    against and bound to the model; warnings stay in `BoundData.warnings` for the caller to show."""
    if isinstance(data, BoundData):
        return data
    if isinstance(data, (str, os.PathLike)):
        return bind(model, load(os.fspath(data)), os.fspath(data), allow_missing=allow_missing)
    return bind(model, dict(data or {}), "<data>", allow_missing=allow_missing)  # None: no data
