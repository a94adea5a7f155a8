"""Data at the boundary: load .npz/.json, check against the model, bind dim sizes, pad and mask sharded dims."""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from ..compiler import ir
from ..dsl.diagnostics import Diagnostic, PPLError, did_you_mean

DTYPES = {"real": np.float32, "int": np.int32, "bool": np.bool_}
INT_MAX = 2**31 - 1


def dtype_of(kind: str):
    """The numpy dtype of a .ppl data type in this run: reals are float64 under `--x64` (jax_enable_x64)."""
    if kind == "real":
        import jax

        return np.float64 if jax.config.jax_enable_x64 else np.float32
    return DTYPES[kind]


def load(path: str) -> dict[str, np.ndarray]:
    """Read a data file (.npz, or Stan-style .json) into arrays by name; every unreadable entry is reported."""
    if not os.path.exists(path):
        raise PPLError(Diagnostic(f"no such data file: {path}"))
    if os.path.isdir(path):
        raise PPLError(Diagnostic(f"{path} is a folder, not a data file",
                                  hint="data files are .npz (numpy.savez) or .json (one object of named arrays)"))
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise PPLError(Diagnostic(f"cannot read data: {e.strerror}", filename=path)) from None
    ext = os.path.splitext(path)[1].lower()
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip archive: .npz
        return _load_npz(path)
    if head.startswith(b"\x93NUMPY"):
        raise PPLError(Diagnostic("this is a .npy file: one unnamed array, but pplc needs arrays by name",
                                  filename=path, hint="save the arrays by name: np.savez('data.npz', y=y, x=x)"))
    if ext == ".json" or head.lstrip()[:1] == b"{":
        return _load_json(path)
    what = {".csv": "from a CSV file", ".txt": "from a text file", ".npy": "from a damaged .npy file",
            ".npz": "from this .npz file: it is not a zip archive", ".pkl": "from a pickle file",
            ".pickle": "from a pickle file", ".ppl": "from a model file"}.get(
        ext, "from this file: it is neither .npz nor .json")
    raise PPLError(Diagnostic(f"cannot read data {what}", filename=path,
                              hint="data files are .npz (numpy.savez) or .json (one object of named arrays)"))


def _kind_error(name: str, a: np.ndarray) -> str | None:
    """Why an array is not plain numbers, or None."""
    k = a.dtype.kind
    if k in "biuf":
        return None
    what = {"U": "strings", "S": "byte strings", "O": "Python objects", "c": "complex numbers",
            "M": "dates", "m": "time spans", "V": "records (a structured array)"}.get(k, f"values of type {a.dtype}")
    return f"`{name}` holds {what}, not numbers"


def _load_npz(path: str) -> dict[str, np.ndarray]:
    errors, out = [], {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for k in f.files:
                try:
                    a = f[k]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        errors.append(Diagnostic(
                            f"`{k}` is an array of Python objects (dtype object), which pplc does not load",
                            filename=path, hint=f"save it as numbers: np.savez(..., {k}=np.asarray({k}, dtype=float))"))
                    else:
                        errors.append(Diagnostic(f"cannot read `{k}`: {e}", filename=path))
                    continue
                # meta/: what `pplc data` keeps beside the model's data (titles, genres: strings)
                why = None if k.startswith("meta/") and a.dtype.kind in "US" else _kind_error(k, a)
                if why:
                    errors.append(Diagnostic(why, filename=path, hint="data arrays hold numbers (or bools)"))
                    continue
                out[k] = a
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as e:
        raise PPLError(Diagnostic(f"cannot read data: the .npz file is damaged or truncated ({e})",
                                  filename=path, hint="write it again with numpy.savez")) from None
    if errors:
        raise PPLError(errors)
    return out


def _load_json(path: str) -> dict[str, np.ndarray]:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise PPLError(Diagnostic(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", filename=path,
                                  hint="a .json data file is one object of named numbers and nested lists: "
                                       '{"N": 3, "y": [1.5, 2.0, 0.5]}')) from None
    except UnicodeDecodeError:
        raise PPLError(Diagnostic("cannot read data: the file is not text (UTF-8)", filename=path)) from None
    except (OSError, RecursionError) as e:
        raise PPLError(Diagnostic(f"cannot read data: {getattr(e, 'strerror', None) or e}", filename=path)) from None
    if not isinstance(raw, dict):
        raise PPLError(Diagnostic(f"a .json data file holds one object of named values, but this one holds "
                                  f"{'a list' if isinstance(raw, list) else 'a single value'}", filename=path,
                                  hint='e.g. {"N": 3, "y": [1.5, 2.0, 0.5]}'))
    errors, out = [], {}
    for k, v in raw.items():
        try:
            a = np.asarray(v)
        except (ValueError, TypeError, OverflowError):
            errors.append(Diagnostic(f"`{k}` is a ragged nested list: its rows have different lengths",
                                     filename=path, hint="every row of an array has the same length"))
            continue
        if a.dtype.kind == "O":
            has = ("null" if _has(v, type(None)) else "an object" if _has(v, dict) else
                   "an integer too large for 64 bits" if _has(v, int) else "mixed values")
            errors.append(Diagnostic(f"`{k}` holds {has}" + ("" if "too large" in has else ", not numbers"),
                                     filename=path,
                                     hint="data values are numbers, or nested lists of numbers"))
            continue
        why = _kind_error(k, a)
        if why:
            errors.append(Diagnostic(why, filename=path, hint="data values are numbers, or nested lists of numbers"))
            continue
        out[k] = a
    if errors:
        raise PPLError(errors)
    return out


def _has(v, t) -> bool:
    if isinstance(v, t):
        return True
    if isinstance(v, list):
        return any(_has(x, t) for x in v)
    return False


@dataclass(frozen=True)
class BoundData:
    """Checked data: arrays by name in the model's dtypes, and every dim's size."""

    arrays: dict
    sizes: dict  # dim -> size


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


def bind(model: ir.Model, raw: dict, filename: str = "<data>", allow_missing: bool = False) -> BoundData:
    """Check `raw` against the model's data declarations before any tracing; every independent error is
    reported at once, each naming the variable (and the dim)."""
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
    extra = [k for k in raw if k not in declared_names and not str(k).startswith("meta/")]  # meta/: pplc data
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
        why = _kind_error(v.name, a)
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
        for i, (d, n) in enumerate(zip(v.phys, a.shape)):
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
    for d in model.dims:
        if d.name not in sizes and not errors and not allow_missing:
            err(f"the size of dim `{d.name}` is not given by the data")
        elif d.name in sizes and sizes[d.name] < 1:
            err(f"dim `{d.name}` has size {sizes[d.name]} {where.get(d.name, '')}; a dim needs at least one item"
                .replace("  ", " "))
    errors += _check_supports(model, arrays, sizes, filename)
    if errors:
        raise PPLError(warnings + errors)
    for w in warnings:
        import sys
        print(w.render(None), file=sys.stderr)
    return BoundData(arrays, sizes)


def _bound(e) -> float | None:
    """The value of a literal (or const) distribution parameter, else None."""
    return float(e.value) if isinstance(e, ir.Lit) and not isinstance(e.value, bool) else None


def _check_supports(model, arrays, sizes, filename) -> list[Diagnostic]:
    """Observed values must lie in the support of the distribution that observes them."""
    out = []
    for v in model.of_kind("observed"):
        if v.name not in arrays:
            continue
        a = arrays[v.name]
        spec = v.dist.spec
        params = dict(v.dist.params)
        s = v.support
        bad = None
        if s == "binary":
            bad = (a != 0) & (a != 1), "0 or 1"
        elif s == "count":
            bad = a < 0, "counts 0, 1, 2, ..."
        elif s == "bounded_count":
            n = _bound(params.get("total_count"))
            bad = ((a < 0) | (a > n), f"0 to total_count = {n:g}") if n is not None else (a < 0, "counts 0, 1, 2, ...")
        elif s == "categorical":
            logits = params.get("logits") or params.get("probs")
            k_dim = logits.axes.item[-1]
            k = sizes.get(k_dim)
            if k is not None:
                bad = (a < 0) | (a >= k), f"0 to {k - 1}, as dim `{k_dim}` is {k}"
        elif s == "positive":
            if spec.name in ("LogNormal", "Gamma", "InverseGamma"):
                bad = a <= 0, "positive numbers"
            else:
                bad = a < 0, "numbers >= 0"
        elif s == "unit":
            bad = (a <= 0) | (a >= 1), "numbers strictly between 0 and 1"
        elif s == "interval":
            lo, hi = _bound(params.get("low")), _bound(params.get("high"))
            if lo is not None and hi is not None:
                bad = (a < lo) | (a > hi), f"numbers from {lo:g} to {hi:g}"
        elif s == "simplex" and a.ndim:
            rows = np.abs(np.sum(a, axis=-1) - 1) > 1e-3
            neg = np.any(a < 0, axis=-1)
            if np.any(rows | neg):
                idx = tuple(int(i) for i in np.argwhere(rows | neg)[0])
                out.append(Diagnostic(
                    f"`{v.name}` is outside the support of {spec.name}: its values along the last dim must be "
                    f">= 0 and sum to 1, but at index [{', '.join(map(str, idx))}] they sum to "
                    f"{float(np.sum(a[idx])):g}", filename=filename,
                    hint=f"`{v.name} ~ {spec.name}(...)` is at {os.path.basename(model.filename)}:{v.span}"))
            continue
        if bad is not None and np.any(bad[0]):
            out.append(Diagnostic(
                f"`{v.name}` has {_bad_values(bad[0], a, f'value outside the support of {spec.name} ({bad[1]})')}",
                filename=filename, hint=f"`{v.name} ~ {spec.name}(...)` is at "
                                        f"{os.path.basename(model.filename)}:{v.span}"))
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
