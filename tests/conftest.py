"""Test setup: 8 host CPU devices (before JAX starts its backend), paths, and the shared-data skip."""
import os

import jax

jax.config.update("jax_num_cpu_devices", 8)

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


def shared_path(*parts):
    """A path under ../shared, or skip the test with a clear message when it is absent."""
    p = os.path.join(SHARED, *parts)
    if not os.path.exists(p):
        pytest.skip(f"needs {p} (the project's shared data, not shipped with pplc)")
    return p
