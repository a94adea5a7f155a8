"""Data at the boundary: load .npz/.json, check against the model, bind dim sizes, pad and mask sharded dims."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from ..compiler import ir
from ..dsl.diagnostics import Diagnostic, PPLError

DTYPES = {"real": np.float32, "int": np.int32, "bool": np.bool_}


def load(path: str) -> dict[str, np.ndarray]:
    """Read a data file (.npz, or Stan-style .json) into arrays by name."""
    if not os.path.exists(path):
        raise PPLError(Diagnostic(f"no such data file: {path}"))
    try:
        if path.endswith(".json"):
            with open(path) as f:
                raw = json.load(f)
            if not isinstance(raw, dict):
                raise PPLError(Diagnostic("a .json data file holds one object of named values", filename=path))
            out = {}
            for k, v in raw.items():
                a = np.asarray(v)
                if a.dtype.kind not in "biuf":
                    raise PPLError(Diagnostic(f"`{k}` is not numeric (it holds {a.dtype.kind == 'U' and 'strings' or 'mixed values'})",
                                              filename=path, hint="data values are numbers, or nested lists of numbers"))
                out[k] = a
            return out
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except PPLError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise PPLError(Diagnostic("the file holds Python objects (object arrays), not plain numeric arrays",
                                      filename=path, hint="save numeric arrays: np.savez(path, y=np.asarray(y, float))"))
        raise PPLError(Diagnostic(f"cannot read data: {e}", filename=path))
    except (OSError, json.JSONDecodeError, EOFError) as e:
        raise PPLError(Diagnostic(f"cannot read data ({type(e).__name__}: {e})", filename=path,
                                  hint="data files are .npz (numpy.savez) or .json (one object of named arrays)"))


@dataclass(frozen=True)
class BoundData:
    """Checked data: arrays by name in the model's dtypes, and every dim's size."""

    arrays: dict
    sizes: dict  # dim -> size


def bind(model: ir.Model, raw: dict, filename: str = "<data>", allow_missing: bool = False) -> BoundData:
    """Check `raw` against the model's data declarations; errors name the variable and the dim."""
    errors, warnings = [], []
    arrays: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {d.name: d.size for d in model.dims if d.size is not None}
    where: dict[str, str] = {d.name: f"{d.source} {d.name}" for d in model.dims if d.size is not None}
    declared = model.of_kind("data")
    observed_names = {v.name for v in model.of_kind("observed")}

    def err(msg, hint=None):
        errors.append(Diagnostic(msg, filename=filename, hint=hint))

    for v in declared:
        if v.name not in raw:
            if allow_missing and v.name in observed_names:
                continue
            err(f"missing data `{v.name}` (declared {v.dtype}[{', '.join(v.phys)}] at {v.span})")
            continue
        a = np.asarray(raw[v.name])
        if a.dtype.kind not in "biuf":
            err(f"`{v.name}` is not numeric (dtype {a.dtype})")
            continue
        if a.ndim != len(v.phys):
            err(f"`{v.name}` has {a.ndim} dim{'s' if a.ndim != 1 else ''} (shape {list(a.shape)}) but is declared "
                f"with {len(v.phys)}: [{', '.join(v.phys)}]")
            continue
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[0]
            err(f"`{v.name}` has a NaN or infinite value (first at index {list(bad) if a.ndim else 'scalar'})",
                hint="remove or impute missing values before sampling")
            continue
        if v.dtype in ("int", "bool") and a.dtype.kind == "f":
            if not np.all(a == np.round(a)):
                err(f"`{v.name}` is declared {v.dtype} but holds non-integer values")
                continue
        if v.dtype == "bool" and not np.all((a == 0) | (a == 1)):
            err(f"`{v.name}` is declared bool but holds values other than 0 and 1")
            continue
        for d, n in zip(v.phys, a.shape):
            if d in sizes and sizes[d] != n:
                err(f"dim `{d}` is {sizes[d]} in {where[d]} but {n} in `{v.name}`")
            else:
                sizes[d], where[d] = n, f"`{v.name}`"
        arrays[v.name] = a.astype(DTYPES[v.dtype])
        if not v.phys and v.dtype == "int" and v.name in model.dim_map:
            n = int(a)
            d = v.name
            if d in sizes and sizes[d] != n:
                err(f"dim `{d}` is {sizes[d]} in {where[d]} but `{d}` = {n}")
            sizes[d], where[d] = n, f"`{d}`"
    for k in raw:
        if k not in {v.name for v in declared} and not k.startswith("meta/"):  # meta/: titles, ids (pplc data)
            warnings.append(Diagnostic(f"`{k}` is in the data but the model does not declare it; ignored",
                                       severity="warning", filename=filename))
    for d in model.dims:
        if d.name not in sizes and not errors:
            err(f"the size of dim `{d.name}` is not given by the data")
        elif d.name in sizes and sizes[d.name] < 1:
            err(f"dim `{d.name}` has size {sizes[d.name]}; plates and arrays need at least one item")
    if not errors:
        errors += _check_supports(model, arrays, sizes, filename)
    if errors:
        raise PPLError(errors)
    for w in warnings:
        import sys
        print(w.render(None), file=sys.stderr)
    return BoundData(arrays, sizes)


def _check_supports(model, arrays, sizes, filename) -> list[Diagnostic]:
    """Observed values must lie in the support of the distribution that observes them."""
    out = []
    for v in model.of_kind("observed"):
        if v.name not in arrays:
            continue
        a = arrays[v.name]
        s = v.support
        bad = None
        if s == "binary":
            bad = (a != 0) & (a != 1), "Bernoulli values are 0 or 1"
        elif s in ("count", "bounded_count"):
            bad = a < 0, "counts are non-negative integers"
        elif s == "categorical":
            logits = dict(v.dist.params).get("logits") or dict(v.dist.params).get("probs")
            k_dim = logits.axes.item[-1]
            k = sizes.get(k_dim)
            if k is not None:
                bad = (a < 0) | (a >= k), f"Categorical values are 0 .. {k - 1} (dim `{k_dim}` is {k})"
        elif s == "positive":
            bad = a <= 0, "values are positive"
        elif s == "unit":
            bad = (a <= 0) | (a >= 1), "values lie strictly between 0 and 1"
        if bad is not None and np.any(bad[0]):
            idx = np.argwhere(bad[0])[0]
            out.append(Diagnostic(
                f"`{v.name}` has a value outside the support of {v.dist.spec.name}: {a[tuple(idx)]!r} at index "
                f"{list(idx)}; {bad[1]}", filename=filename, hint=f"observed at {model.filename}:{v.span}"))
    return out


@dataclass(frozen=True)
class Layout:
    """How the data is laid out on the mesh: padded sizes of sharded dims, local sizes, masks."""

    ndev: int
    sizes: dict  # true global sizes
    padded: dict  # sharded dim -> padded global size (a multiple of ndev)

    @property
    def local(self) -> dict:
        return dict(self.sizes, **{d: p // self.ndev for d, p in self.padded.items()})

    def masks(self) -> dict:
        return {d: np.arange(p) < self.sizes[d] for d, p in self.padded.items()}

    def pad(self, x, dims, axis0: int = 0):
        """Pad the sharded dims of `x` (dims start at axis `axis0`) by repeating the last item."""
        x = np.asarray(x)
        for i, d in enumerate(dims):
            if d in self.padded and x.shape[axis0 + i] != self.padded[d]:
                width = [(0, 0)] * x.ndim
                width[axis0 + i] = (0, self.padded[d] - x.shape[axis0 + i])
                x = np.pad(x, width, mode="edge")
        return x

    def unpad(self, x, dims, axis0: int = 0):
        x = np.asarray(x)
        for i, d in enumerate(dims):
            if d in self.padded:
                x = np.take(x, np.arange(self.sizes[d]), axis=axis0 + i)
        return x


def layout(model: ir.Model, sizes: dict, ndev: int, sharded: bool = True) -> Layout:
    padded = {d: -(-sizes[d] // ndev) * ndev for d in model.sharded_dims} if sharded else {}
    return Layout(ndev, dict(sizes), padded)
