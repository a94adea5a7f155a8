"""The init and block programs stored as serialized StableHLO (`jax.export`): a second run skips tracing them."""
from __future__ import annotations

import dataclasses
import hashlib
import os

import jax
import numpy as np

from ..devices import cache as cache_lib
from ..files import atomic_write

FOLDER = "programs"  # inside the compilation cache's folder
_SOURCE = {}  # the hash of pplc's own source, computed once per process


def _pplc_source() -> str:
    """A hash of every .py file of the installed pplc: a changed pplc (a new version, or a working copy being
    edited) never reuses a program traced by the old one."""
    if "h" not in _SOURCE:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        h = hashlib.sha256()
        for d, dirs, files in sorted(os.walk(root)):
            dirs.sort()
            for f in sorted(files):
                if f.endswith((".py", ".lark")):
                    h.update(f.encode())
                    with open(os.path.join(d, f), "rb") as fh:
                        h.update(fh.read())
        _SOURCE["h"] = h.hexdigest()
    return _SOURCE["h"]


def _describe(x) -> str:
    sharding = getattr(x, "sharding", None)
    spec = getattr(sharding, "spec", None)
    mesh = getattr(sharding, "mesh", None)
    where = (repr(spec), getattr(mesh, "axis_names", None), getattr(mesh, "shape", None),
             [getattr(d, "id", None) for d in getattr(sharding, "device_set", ())] if spec is None else None)
    return f"{np.shape(x)}|{np.result_type(x) if not hasattr(x, 'dtype') else x.dtype}|{where}"


def base_key(program, bound, cfg, mode: str, block: int) -> str | None:
    """What a stored program must agree with, but for its arguments' shapes and placement: the generated module
    (the model and its consts), the data's values (nothing of the data may be a constant of a program), every
    sampler setting but the seed (keys are arguments), the SPMD mode and block size, pplc's source, JAX's and
    TFP's versions, JAX's settings and devices. None when the compilation cache is off (nothing is stored)."""
    if cache_lib.current() is None:
        return None
    from importlib import metadata

    h = hashlib.sha256()
    vers = []
    for pkg in ("jax", "jaxlib", "tfp-nightly", "tensorflow-probability", "numpy"):
        try:
            vers.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "seed"}
    for chunk in (program.source.split("\n", 1)[-1], _pplc_source(), vers, repr(sorted(settings.items())), mode,
                  block, repr(sorted((k, repr(v)) for k, v in jax.config.values.items())), jax.default_backend(),
                  [str(d) for d in jax.devices()]):
        h.update(str(chunk).encode())
        h.update(b"\0")
    h.update(bound.fingerprint().encode())
    return h.hexdigest()


class Store:
    """The stored programs of one run, under a key: `base_key` and the init program's arguments (shapes,
    dtypes, placement), which with it determine the block program's."""

    def __init__(self, base: str, args):
        h = hashlib.sha256(base.encode())
        for leaf in jax.tree.leaves(args):
            h.update(_describe(leaf).encode())
        self.key = h.hexdigest()[:32]
        self.loaded = {}

    def path(self, name: str) -> str:
        return os.path.join(cache_lib.current(), FOLDER, f"{self.key}-{name}.bin")

    def load(self, names) -> bool:
        """Read every one of `names`, or none (the block program can only be traced after the init program)."""
        found = {}
        for name in names:
            try:
                with open(self.path(name), "rb") as f:
                    found[name] = jax.export.deserialize(bytearray(f.read()))
            except Exception:  # noqa: BLE001 - missing, damaged or foreign: traced afresh
                return False
        self.loaded = found
        return True

    def lower(self, fn, args, name: str):
        """`fn` (a jitted function) lowered for `args` (arrays or ShapeDtypeStructs): from the stored program when
        it was loaded, else traced, stored and lowered from what was stored (the first run and the next compile
        the same module: JAX's compilation cache serves the next); traced as before when it cannot be stored
        (a host callback, say)."""
        exp = self.loaded.get(name)
        if exp is None:
            try:
                exp = jax.export.export(fn)(*args)
                blob = exp.serialize()
            except Exception:  # noqa: BLE001 - not exportable: lowered as before
                return fn.lower(*args)

            def write(tmp):
                with open(tmp, "wb") as f:
                    f.write(blob)

            try:
                atomic_write(self.path(name), write)
            except OSError:
                pass
        return jax.jit(exp.call).lower(*args)
