"""Writing files atomically: the one atomic writer, and `.npz` files through it."""
from __future__ import annotations

import os
import tempfile

import numpy as np


def atomic_write(path: str, write) -> None:
    """`write(tmp_path)` to a temporary file beside `path`, flushed to disk, then renamed over `path`: a reader
    (or a run killed at any moment) sees the old file or the new one, never half of one."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    base = os.path.basename(path)
    suffix = os.path.splitext(base)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp" + suffix, dir=d)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would (mkstemp makes it private)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_npz(path: str, arrays: dict, compressed: bool = False) -> None:
    """np.savez (or np.savez_compressed) of named arrays, atomically (np.savez would add `.npz` to a name
    without it: the temporary name has it)."""
    savez = np.savez_compressed if compressed else np.savez

    def write(tmp):
        with open(tmp, "wb") as f:
            savez(f, **arrays)
    atomic_write(path, write)


__all__ = ["atomic_write", "save_npz"]
