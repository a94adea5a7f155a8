"""Checkpoints of a sampling run: the carried state, position, keys, draws so far, config and a fingerprint."""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError
from ..data.bind import hash_chunks
from ..files import save_npz
from .carry import carry_layout

FORMAT = "pplc-checkpoint"
VERSION = 1


# ---------------------------------------------------------------------------------------------------- fingerprint
def fingerprint(program, bound, devices: int, cfg) -> dict:
    """What a checkpoint must agree with to be resumed: the generated program (the model with its consts, not
    its file name), the data arrays, the device count and every sampler setting."""
    source = program.source.split("\n", 1)[-1]  # the first line names the file
    return {"model": hash_chunks(source), "data": bound.fingerprint(), "devices": int(devices),
            "config": {k: v for k, v in dataclasses.asdict(cfg).items()}}


def mismatch(saved: dict, now: dict) -> list[str]:
    """How a checkpoint's fingerprint differs from this run's, in words."""
    out = []
    if saved.get("model") != now["model"]:
        out.append("the model differs (its program or consts changed)")
    if saved.get("data") != now["data"]:
        out.append("the data differ")
    if saved.get("devices") != now["devices"]:
        out.append(f"it was made on {saved.get('devices')} device(s), this run has {now['devices']} "
                   "(resume with the same --devices)")
    old, new = saved.get("config", {}), now["config"]
    diffs = [f"{k.replace('_', '-')} {old.get(k)!r} then, {new.get(k)!r} now" for k in sorted(set(old) | set(new))
             if old.get(k) != new.get(k)]
    if diffs:
        out.append("the sampler settings differ: " + "; ".join(diffs))
    return out


# ---------------------------------------------------------------------------------------------------- state
@dataclasses.dataclass
class State:
    """A sampling run at a block boundary: everything needed to go on with exactly the same draws."""

    iteration: int  # iterations done, warmup first
    carry: list  # the carried state (positions + kernel results), host arrays stacked per device
    keys: np.ndarray  # the per-iteration PRNG keys of the whole run
    warm: dict | None  # warmup statistics so far {name: [iterations, chains]}
    draws: list | None  # latent draws so far, [draws, chains, *local shape] each
    extra: dict | None  # deterministics and tracked quantities so far
    stats: dict | None  # sampling statistics so far
    fingerprint: dict
    info: dict = dataclasses.field(default_factory=dict)  # block size, spmd mode, divergences, ...


def save(path: str, st: State) -> None:
    """Write a checkpoint (one .npz, atomically)."""
    arrays = {f"carry/{i:04d}": np.asarray(x) for i, x in enumerate(st.carry)}
    arrays["keys"] = np.asarray(st.keys)
    for group, tree in (("warm", st.warm), ("extra", st.extra), ("stats", st.stats)):
        for k, v in (tree or {}).items():
            arrays[f"{group}/{k}"] = np.asarray(v)
    for i, x in enumerate(st.draws or []):
        arrays[f"draw/{i:04d}"] = np.asarray(x)
    meta = {"format": FORMAT, "version": VERSION, "iteration": int(st.iteration), "fingerprint": st.fingerprint,
            "info": st.info, "has": {"warm": st.warm is not None, "draws": st.draws is not None}}
    arrays["meta"] = np.array(json.dumps(meta))
    save_npz(path, arrays)


def load(path: str) -> State:
    """Read a checkpoint written by `save`."""
    try:
        with np.load(path, allow_pickle=False) as f:
            files = {k: f[k] for k in f.files}
        meta = json.loads(str(files.pop("meta")))
        if meta.get("format") != FORMAT:
            raise ValueError("not a pplc checkpoint")
    except (OSError, ValueError, KeyError) as e:
        raise PPLError(Diagnostic(f"cannot read the checkpoint {path}: {e}",
                                  hint="start afresh without --resume (the checkpoint will be overwritten)")) from None

    def group(name):
        items = {k[len(name) + 1:]: v for k, v in files.items() if k.startswith(name + "/")}
        return items

    carry = [v for _, v in sorted(group("carry").items())]
    draws = [v for _, v in sorted(group("draw").items())]
    has = meta.get("has", {})
    return State(meta["iteration"], carry, files["keys"], group("warm") if has.get("warm") else None,
                 draws if has.get("draws") else None, group("extra") if has.get("draws") else None,
                 group("stats") if has.get("draws") else None, meta["fingerprint"], meta.get("info", {}))


def check(st: State, path: str, fp: dict, keys: np.ndarray | None = None, carry_like: list | None = None) -> None:
    """Refuse, with a clear message, to resume a checkpoint made for another model, data, device count,
    sampler settings, JAX key scheme or carried-state layout (the last two when `keys`, `carry_like` are given)."""
    why = mismatch(st.fingerprint, fp)
    if not why and keys is not None and not np.array_equal(st.keys, keys):
        why.append("the per-iteration PRNG keys differ (another JAX version or PRNG implementation)")
    if not why and carry_like is not None:
        shapes_then = [(tuple(x.shape), np.asarray(x).dtype.str) for x in st.carry]
        if shapes_then != carry_layout(carry_like):
            why.append("the sampler's carried state has another layout (another pplc version or sampler)")
    if why:
        raise PPLError(Diagnostic(f"cannot resume from {path}: it does not match this run",
                                  notes=tuple(why),
                                  hint="resume with the model, data, --devices and sampler settings it was made "
                                       "with, or drop --resume to start afresh (the checkpoint is then overwritten)"))
