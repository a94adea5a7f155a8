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

# The suite's programs are small and most run for well under a second after a compile of several: XLA's CPU
# compiler at optimisation level 0 halves the suite's compile time (the MNIST example on 8 devices: 10.6 s of
# start-up against 5.4 s, with 0.2 s against 0.3 s of sampling). The values are the same programs' (to
# rounding); PPLC_TEST_XLA_OPT=1 runs the tests with XLA's default optimisation, as users' runs have. Set before
# JAX starts its backend; the `pplc` processes the tests start inherit it.
TEST_XLA_FLAGS = ("" if os.environ.get("PPLC_TEST_XLA_OPT") == "1" else
                  "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), TEST_XLA_FLAGS]).strip()

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


_SUMMARY: list[str] = []  # lines for the end of the run (printed with -q too), e.g. the seed a random test drew
_NOTES: list[str] = []  # this process's lines, not yet attached to a test report


def note_in_summary(line: str) -> None:
    """Print `line` (once) at the end of the run: how to draw a random test's examples again, pass or fail. The
    line travels in the test's report, so that it reaches the run's summary from pytest-xdist's workers too."""
    _NOTES.append(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.user_properties.extend(("pplc_summary", line) for line in _NOTES)
    _NOTES.clear()


def pytest_runtest_logreport(report):
    for key, line in report.user_properties:
        if key == "pplc_summary" and line not in _SUMMARY:
            _SUMMARY.append(line)


def pytest_terminal_summary(terminalreporter):
    for line in _SUMMARY:
        terminalreporter.write_line(line)


def pytest_configure(config):
    """One seed for the run's random models, drawn here, so that pytest-xdist's workers (which inherit the
    environment) all draw the same ones."""
    if not hasattr(config, "workerinput") and not os.environ.get("PPLC_EQUIV_SEED"):
        import random

        os.environ["PPLC_EQUIV_SEED"] = str(random.SystemRandom().randrange(2**32))


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one test process per core, at most 4 (each holds JAX's compiled programs, ~1-2 GB)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def pplc_in_process(*args):
    """`pplc ARGS` run in this process (no interpreter and JAX start-up, ~3 s of CPU each): a
    subprocess.CompletedProcess with its exit status and what it printed, as `subprocess.run(..., text=True)` gives.
    `python -m pplc` itself is tested in tests/test_cli.py."""
    import contextlib
    import io
    import subprocess

    from pplc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(["pplc", *args], code, out.getvalue(), err.getvalue())


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
