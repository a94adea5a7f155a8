"""Test setup: 8 host CPU devices (before JAX starts its backend), a temporary compilation cache, paths, the
shared-data skip, and lines for the run's summary."""
import atexit
import os
import shutil
import tempfile

import jax

jax.config.update("jax_num_cpu_devices", 8)

# pplc keeps compiled programs in a user cache folder by default: the tests use one of their own (and so do the
# `pplc` processes they start, which inherit the environment), never the user's.
_CACHE = tempfile.mkdtemp(prefix="pplc-test-cache-")
os.environ["PPLC_CACHE_DIR"] = _CACHE
# ... and leave it off unless a test turns it on (tests/test_log_density.py does, in a folder of its own): the
# suite compiles hundreds of programs once each, and writing them all to disk only costs time.
os.environ.setdefault("PPLC_NO_CACHE", "1")
atexit.register(shutil.rmtree, _CACHE, True)

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


_SUMMARY: list[str] = []  # lines for the end of the run (printed with -q too), e.g. the seed a random test drew


def note_in_summary(line: str) -> None:
    """Print `line` (once) at the end of the run: how to draw a random test's examples again, pass or fail."""
    if line not in _SUMMARY:
        _SUMMARY.append(line)


def pytest_terminal_summary(terminalreporter):
    for line in _SUMMARY:
        terminalreporter.write_line(line)


def shared_path(*parts):
    """A path under ../shared, or skip the test with a clear message when it is absent."""
    p = os.path.join(SHARED, *parts)
    if not os.path.exists(p):
        pytest.skip(f"needs {p} (the project's shared data, not shipped with pplc)")
    return p


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test file, drop JAX's in-memory caches of traced and compiled programs: the suite compiles
    thousands of programs in one process, and keeping them all makes it grow by gigabytes (XLA's CPU compiler
    crashed inside the equivalence property after test_diagnostics' hundreds of models)."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()
