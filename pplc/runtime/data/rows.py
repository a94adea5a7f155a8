"""Data in a run of several processes: each process reads and holds only its rows of the sharded arrays."""
from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ...dsl.diagnostics import PPLError
from ..devices import distributed
from ..devices import mesh as mesh_lib
from ..devices.mesh import DATA_AXIS
from ..program import Program
from .layout import held_rows, layout, on_mesh, padded_rows, process_positions, read_plan
from .bind import BoundData, bind, dtype_of, hash_chunks
from .load import META, load, npz_members, read_rows, read_whole
from .transformed import bind_program

# What this process last read for its rows: name -> {"shape": the whole array's, "rows": (lo, hi) of the padded
# dim, "held": the shape held, "bytes_read": bytes of values read from the file}. For tests and reports.
LAST_READ: dict = {}


@dataclass(frozen=True)
class LocalData(BoundData):
    """Bound data of which the sharded arrays hold this process's rows only, padded (`held`: name -> (axis, lo,
    hi) of the padded dim); replicated arrays are whole. `digest` is the same in every process (checkpoints)."""

    held: dict = field(default_factory=dict)
    source: str = ""
    digest: str = ""

    def fingerprint(self) -> str:
        """The data's hash, the same in every process (each holds other rows)."""
        return hash_chunks(self.digest)


def sample_data(program: Program, data, devices: int, groups: int = 1, init: str = "uniform"):
    """The data, mesh and layout of a sampling run: (bound, mesh, layout). With several processes and a data
    file, every process reads only its rows of the sharded arrays (`LocalData`) when the file and model allow
    (see docs/scaling.md); otherwise, and always with one process, the data whole as `bind_program` reads them."""
    import jax

    path = os.fspath(data) if isinstance(data, (str, os.PathLike)) else None
    if (not jax.distributed.is_initialized() or path is None or init in ("prior", "pathfinder")
            or not program.ir.sharded_dims):
        bound = _whole(program, data)
        return (bound, *on_mesh(program, bound.sizes, devices, groups))
    mesh_lib.request_devices(devices)
    mesh = mesh_lib.make_mesh(devices, groups)
    try:
        local = local_rows(program, path, mesh)
        status = 0 if local is not None else 1
    except PPLError:  # reported as one process reports it: every process reads the file whole below
        local, status = None, 2
    except Exception:  # noqa: BLE001 - any other failure: the whole file, with its usual messages
        local, status = None, 1
    if max(distributed.gather(status)) == 0:
        digests = distributed.gather(int(local.digest, 16))  # the same fingerprint of the data in every process
        local = LocalData(local.arrays, local.sizes, local.warnings, local.held, local.source,
                          hashlib.sha256(str(digests).encode()).hexdigest()[:15])
        for w in local.warnings:
            print(w.render(None), file=sys.stderr)
        bound = local
    else:
        LAST_READ.clear()
        bound = _whole(program, data)
    return bound, mesh, layout(program.ir, bound.sizes, int(mesh.shape[DATA_AXIS]))


def _whole(program: Program, data) -> BoundData:
    bound = data if isinstance(data, BoundData) else bind_program(program, data)
    if not isinstance(data, BoundData):
        for w in bound.warnings:
            print(w.render(None), file=sys.stderr)
    return bound


def local_rows(program: Program, path: str, mesh, process: int | None = None) -> LocalData | None:
    """This process's rows of the sharded data arrays of `path` (padded as the whole run pads them), the other
    arrays whole, checked and bound; None when the file or the model needs the data whole (a .json file is read
    whole and then cut; transformed data computed from sharded data need all rows)."""
    model = program.ir
    sharded = set(model.sharded_dims)
    declared = model.of_kind("data")
    split = {v.name: (v.phys.index(d), d) for v in declared for d in v.phys if d in sharded}
    if any(sum(d in sharded for d in v.phys) > 1 for v in program.data_variables):
        return None
    for v in model.of_kind("transformed"):
        if set(v.phys) & sharded or model.data_used_by(v.name) & set(split):
            return None
    members = npz_members(path) if not path.lower().endswith(".json") else None
    if members is None:  # .json (or an archive read whole): parsed whole, only the rows kept
        raw = load(path)
        shapes = {k: np.shape(a) for k, a in raw.items()}

        def read(name, axis, a, b):
            return np.take(raw[name], np.arange(a, b), axis=axis), np.asarray(raw[name]).nbytes  # parsed whole
    else:
        shapes = {k: m.shape for k, m in members.items()}
        if any(m.dtype.kind not in "biuf" for k, m in members.items() if not k.startswith(META)):
            return None

        def read(name, axis, a, b):
            return read_rows(path, members[name], axis, a, b)
    sizes = _sizes(model, shapes, path, raw if members is None else None)
    lay = layout(model, sizes, int(mesh.shape[DATA_AXIS]))
    lo_hi = {d: held_rows(lay.padded[d], lay.ndev, process_positions(mesh, process))
             for d in lay.padded}
    local, held = {}, {}
    LAST_READ.clear()
    for v in declared:
        if v.name not in shapes:
            continue
        if v.name in split and len(shapes[v.name]) == len(v.phys):
            axis, d = split[v.name]
            lo, hi = lo_hi[d]
            a, b = read_plan(shapes[v.name][axis], lo, hi)
            block, nbytes = read(v.name, axis, a, b)
            local[v.name] = padded_rows(block, a, lo, hi, axis)
            held[v.name] = (axis, lo, hi)
            LAST_READ[v.name] = {"shape": tuple(shapes[v.name]), "rows": (lo, hi),
                                 "held": local[v.name].shape, "bytes_read": int(nbytes)}
        else:
            local[v.name] = _whole_array(path, v.name, raw if members is None else None)
    names = {v.name for v in declared}
    local.update({k: np.empty(0) for k in shapes if k not in names and not k.startswith(META)})  # warned of
    bound = bind_program(program, bind(model, local, path, shapes=shapes))
    h = hashlib.sha256()
    for name in sorted(bound.arrays):
        a = np.ascontiguousarray(bound.arrays[name])
        h.update(f"{name}{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return LocalData(bound.arrays, bound.sizes, bound.warnings, held, path, h.hexdigest()[:15])


def _whole_array(path: str, name: str, raw: dict | None = None):
    if raw is not None:
        return raw[name]
    with np.load(path, allow_pickle=False) as f:
        return f[name]


def _sizes(model, shapes: dict, path: str, raw: dict | None) -> dict:
    """The true size of every sharded dim, as `bind` will find it: from the model (a const or literal), from a
    scalar int data named after it, or from the first declared array along it (the headers only)."""
    out = {}
    for d in model.sharded_dims:
        dim = model.dim_map[d]
        if dim.size is not None:
            out[d] = int(dim.size)
            continue
        if d in shapes and not shapes[d]:
            out[d] = int(_whole_array(path, d, raw))
            continue
        for v in model.of_kind("data"):
            if d in v.phys and v.name in shapes and len(shapes[v.name]) == len(v.phys):
                out[d] = int(shapes[v.name][v.phys.index(d)])
                break
    return out


class FileArrays(Mapping):
    """Arrays by name, some of them read whole from the data file only when asked for (the output of a run of
    several processes: process 0 reads them when it writes the fit; the others never do)."""

    def __init__(self, have: dict, later: dict, path: str):
        self._have, self._later, self._path = dict(have), dict(later), path  # later: name -> dtype

    def __getitem__(self, k):
        if k not in self._have and k in self._later:
            self._have[k] = np.asarray(read_whole(self._path, k)).astype(self._later.pop(k))
        return self._have[k]

    def __iter__(self):
        return iter(list(self._have) + list(self._later))

    def __len__(self):
        return len(self._have) + len(self._later)


def fit_data(program: Program, bound: BoundData, observed_names) -> tuple[Mapping, Mapping]:
    """The observed and the other data a Fit keeps: as bound, or for `LocalData` the sharded arrays read whole
    from the file when the Fit is written or asked for them."""
    observed = {k: np.asarray(bound.arrays[k]) for k in observed_names if k in bound.arrays}
    constant = {k: np.asarray(x) for k, x in bound.arrays.items() if k not in observed}
    held = getattr(bound, "held", None)
    if not held:
        return observed, constant
    kinds = {v.name: dtype_of(v.dtype) for v in program.data_variables}

    def split(arrays):
        return FileArrays({k: x for k, x in arrays.items() if k not in held},
                          {k: kinds[k] for k in arrays if k in held}, bound.source)
    return split(observed), split(constant)
