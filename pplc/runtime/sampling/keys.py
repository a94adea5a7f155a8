"""JAX's threefry PRNG keys and uniform draws computed with NumPy: jax.random's bits, no XLA program to compile.

A run needs its keys (per chain group, per iteration) and its uniform initial values before its sampling programs
exist. Computed with jax.random, each is a small XLA program, and XLA's CPU backend takes 0.1 to 1 s to compile a
threefry hash (measured: 30 splits in one program, 3 s), on the path to the first iteration. These are the same
functions on the host, bit for bit (tests/test_startup.py checks them against jax.random): JAX's default PRNG,
threefry2x32 with `jax_threefry_partitionable` (JAX's default since 0.5).
"""
from __future__ import annotations

import math

import jax
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)
_LOW = 0xFFFFFFFF


def threefry2x32(k1, k2, x1, x2) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 hash (20 rounds) of the counter pairs (x1, x2) under the key (k1, k2): uint32 arrays."""
    ks = (np.uint32(k1), np.uint32(k2), np.uint32(k1) ^ np.uint32(k2) ^ _PARITY)
    x0 = np.asarray(x1, np.uint32) + ks[0]
    x1 = np.asarray(x2, np.uint32) + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def prng_key(seed: int) -> np.ndarray:
    """`jax.random.PRNGKey(seed)`: the seed's 64 bits as two uint32 words with 64-bit JAX (`--x64`), its low 32
    bits otherwise (as JAX, which reads the seed as a 32-bit integer then)."""
    seed = int(seed)
    high = (seed >> 32) & _LOW if jax.config.jax_enable_x64 else 0
    return np.array([high, seed & _LOW], np.uint32)


def _counts(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The flat indices 0..n-1 as (high, low) uint32 words (JAX's `iota_2x32_shape`)."""
    i = np.arange(n, dtype=np.uint64)
    return (i >> np.uint64(32)).astype(np.uint32), (i & np.uint64(_LOW)).astype(np.uint32)


def split(key, n: int = 2) -> np.ndarray:
    """`jax.random.split(key, n)`: [n, 2] uint32."""
    b1, b2 = threefry2x32(key[0], key[1], *_counts(n))
    return np.stack([b1, b2], axis=-1)


def fold_in(key, data: int) -> np.ndarray:
    """`jax.random.fold_in(key, data)`."""
    b1, b2 = threefry2x32(key[0], key[1], np.zeros(1, np.uint32), np.array([int(data) & _LOW], np.uint32))
    return np.array([b1[0], b2[0]], np.uint32)


def uniform(key, shape, dtype, minval: float, maxval: float) -> np.ndarray:
    """`jax.random.uniform(key, shape, dtype, minval, maxval)` for float32 and float64."""
    dtype = np.dtype(dtype)
    b1, b2 = threefry2x32(key[0], key[1], *_counts(math.prod(shape)))
    if dtype == np.float32:
        bits, uint, nbits = b1 ^ b2, np.uint32, 32
    elif dtype == np.float64:
        bits, uint, nbits = (b1.astype(np.uint64) << np.uint64(32)) | b2.astype(np.uint64), np.uint64, 64
    else:
        raise TypeError(f"uniform draws of {dtype} are not supported")
    one = np.array(1.0, dtype).view(uint)
    floats = ((bits >> uint(nbits - np.finfo(dtype).nmant)) | one).view(dtype) - dtype.type(1.0)
    lo, hi = dtype.type(minval), dtype.type(maxval)
    return np.maximum(lo, floats * (hi - lo) + lo).reshape(shape)
