"""The persistent compilation cache: JAX's own, in a user cache folder, so that a second run skips compilation."""
from __future__ import annotations

import os

ENV_DIR = "PPLC_CACHE_DIR"  # the cache folder (default: $XDG_CACHE_HOME/pplc, or ~/.cache/pplc)
ENV_OFF = "PPLC_NO_CACHE"  # set (to anything but "" or "0") to leave the cache off
# Every program is kept (JAX's default keeps only those that took over a second): a threshold would make what is
# cached depend on the machine's load, and a run of eight schools compiles about a dozen programs in all.
MIN_COMPILE_S = 0.0

_state = {"chosen": False, "dir": None}


def default_dir() -> str:
    """The cache folder: $PPLC_CACHE_DIR, else $XDG_CACHE_HOME/pplc, else ~/.cache/pplc."""
    if os.environ.get(ENV_DIR):
        return os.path.abspath(os.path.expanduser(os.environ[ENV_DIR]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pplc")


def _apply(path: str | None, min_compile_s: float = MIN_COMPILE_S) -> None:
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    jax.config.update("jax_compilation_cache_dir", path)
    if path is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_s)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # any size (0 means JAX's default)
    cc.reset_cache()  # JAX reads the folder at its next compilation, even if it has compiled before
    _state["dir"] = path


def set_cache(path: str | bool | None = True, min_compile_s: float = MIN_COMPILE_S) -> str | None:
    """Choose the cache: True (the default folder, `default_dir`), a folder, or False/None (no cache); programs
    that compile faster than `min_compile_s` are not kept. Returns the folder in use, or None. An explicit choice
    holds for the rest of the process."""
    _state["chosen"] = True
    if path is True:
        path = default_dir()
    path = os.path.abspath(os.path.expanduser(path)) if path else None
    if path is not None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:  # a read-only home: run without the cache rather than fail
            path = None
    _apply(path, min_compile_s)
    return path


def ensure_default() -> str | None:
    """Turn the cache on in the default folder, unless a choice was made (`set_cache`, `--no-cache`), PPLC_NO_CACHE
    is set, or JAX's own `jax_compilation_cache_dir` is already set (the user's choice: kept)."""
    if _state["chosen"]:
        return _state["dir"]
    import jax

    _state["chosen"] = True
    if os.environ.get(ENV_OFF, "") not in ("", "0"):
        return None
    if jax.config.jax_compilation_cache_dir:
        _state["dir"] = jax.config.jax_compilation_cache_dir
        return _state["dir"]
    return set_cache(True)


def current() -> str | None:
    """The cache folder in use (None: no cache)."""
    return _state["dir"]


__all__ = ["set_cache", "ensure_default", "current", "default_dir"]
