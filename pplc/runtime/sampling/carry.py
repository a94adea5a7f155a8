"""The sampler's carried state on the host: its leaves as host arrays (typed PRNG keys as key data) and back."""
from __future__ import annotations

import jax
import numpy as np


def to_host(x) -> np.ndarray:
    """A (possibly multi-process) global array as one host array."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(jax.device_get(x))
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _is_key(x) -> bool:
    return jax.numpy.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)


def carry_to_host(carry) -> tuple[list, dict]:
    """The carried state as host arrays, typed PRNG keys as their key data: (leaves, {index: key impl})."""
    leaves, keys = [], {}
    for i, x in enumerate(carry):
        if _is_key(x):
            keys[str(i)] = str(jax.random.key_impl(x))
            x = jax.random.key_data(x)
        leaves.append(to_host(x))
    return leaves, keys


def carry_from_host(leaves, keys: dict) -> list:
    """The inverse of `carry_to_host` (host arrays, typed keys rewrapped)."""
    return [jax.random.wrap_key_data(np.asarray(x), impl=keys[str(i)]) if str(i) in keys else np.asarray(x)
            for i, x in enumerate(leaves)]


def carry_layout(carry) -> list:
    """(shape, dtype) of each host leaf of the carried state, as `carry_to_host` would give, without a transfer."""
    out = []
    for x in carry:
        if _is_key(x):
            x = jax.eval_shape(jax.random.key_data, x)
        out.append((tuple(x.shape), np.dtype(x.dtype).str))
    return out
