"""Start-up: the keys and initial values computed on the host are jax.random's bits; the sampling programs
stored beside the compilation cache (runtime/sampling/exported.py) are read by a second run and give the draws of
traced ones."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import pplc
from pplc.runtime.devices import cache
from pplc.runtime.sampling import exported
from pplc.runtime.sampling import keys as keys_lib
from pplc.runtime.sampling.init import uniform_draws
from pplc.runtime.sampling.programs import group_keys, run_keys

HERE = os.path.dirname(os.path.abspath(__file__))
EIGHT = os.path.join(os.path.dirname(HERE), "examples", "eight_schools.ppl")
EIGHT_DATA = {"y": np.array([28.0, 8, -3, 7, -1, 1, 18, 12]), "sigma": np.array([15.0, 10, 16, 11, 9, 11, 10, 18])}


@pytest.mark.parametrize("seed,groups", [(0, 1), (7, 3), (2**33 + 5, 2), (2**31 + 9, 1)])
def test_start_keys_are_the_op_by_op_bits(seed, groups):
    """`run_keys` and `uniform_draws` (NumPy on the host, keys.py) give what jax.random gives, as pplc drew them
    before: per group split(key, 3) into (initial values, iterations, unused), split(iterations key, n), and from
    the first split(init) into (prior, uniform), one key per latent, uniform(-2, 2)."""
    base = jax.random.PRNGKey(seed)
    split = [jax.random.split(k, 3) for k in [base] + [jax.random.fold_in(base, g) for g in range(1, groups)]]
    for got, want in zip(group_keys(seed, groups), [base] + [jax.random.fold_in(base, g) for g in range(1, groups)]):
        np.testing.assert_array_equal(got, want)
    init, keys = run_keys(keys_lib.prng_key(seed), groups, 40)
    np.testing.assert_array_equal(init, np.stack([np.asarray(s[0]) for s in split]))
    np.testing.assert_array_equal(keys, np.stack([np.asarray(jax.random.split(s[1], 40)) for s in split], axis=1))
    shapes = ((4,), (4, 8), (4, 3, 2), ())
    for s in split:
        k_prior, k_unif = jax.random.split(s[0])
        expect = [jax.random.uniform(k, shape, np.float32, -2.0, 2.0)
                  for k, shape in zip(jax.random.split(k_unif, len(shapes)), shapes)]
        got_prior, got = uniform_draws(np.asarray(s[0]), shapes, np.dtype(np.float32))
        np.testing.assert_array_equal(got_prior, k_prior)
        for a, b in zip(got, expect):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_host_keys_are_jax_random_in_64_bit_mode():
    """With --x64: the seed's 64 bits make the key, and uniform float64 draws take 64 random bits: both as
    jax.random (a fresh process: 64-bit mode is set before JAX starts)."""
    code = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from pplc.runtime.sampling import keys as K
for seed in (0, 5, 2**33 + 5, 2**62 + 11):
    key = jax.random.PRNGKey(seed)
    assert (np.asarray(key) == K.prng_key(seed)).all(), seed
    assert (np.asarray(jax.random.fold_in(key, 2**31 + 7)) == K.fold_in(K.prng_key(seed), 2**31 + 7)).all()
    for dtype in (np.float32, np.float64):
        want = np.asarray(jax.random.uniform(key, (3, 700), dtype, -2.0, 2.0))
        got = K.uniform(K.prng_key(seed), (3, 700), dtype, -2.0, 2.0)
        assert got.dtype == want.dtype and (got == want).all(), (seed, dtype)
print("same")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(HERE))
    assert out.returncode == 0 and out.stdout.strip() == "same", out.stderr[-2000:]


def test_stored_programs_are_read_and_give_the_traced_draws(tmp_path, monkeypatch):
    """With the cache on, the first run stores its init and block programs and the second (in-memory caches
    cleared) reads both instead of tracing them; both give the draws of a run without the cache (programs traced
    as before). Other data values are another key: nothing of the data is read from a stored program."""
    pytest.importorskip("flatbuffers")  # jax.export's serialization
    loads = []
    load = exported.Store.load
    monkeypatch.setattr(exported.Store, "load", lambda self, names: loads.append(load(self, names)) or loads[-1])
    kw = dict(chains=2, warmup=10, draws=10, seed=3, sampler="hmc", leapfrog=3)
    previous = cache.current()
    pplc.compilation_cache(False)
    try:
        traced = pplc.compile_file(EIGHT).sample(EIGHT_DATA, **kw).draws
        assert loads == []  # no cache, nothing stored or read
        pplc.compilation_cache(str(tmp_path))
        runs = []
        for _ in range(2):
            jax.clear_caches()
            runs.append(pplc.compile_file(EIGHT).sample(EIGHT_DATA, **kw).draws)
        stored = sorted(os.listdir(tmp_path / exported.FOLDER))
        assert loads == [False, True] and len(stored) == 2 and stored[0].endswith("-block.bin")
        for run in runs:
            for k in traced:
                np.testing.assert_array_equal(run[k], traced[k])
        other = dict(EIGHT_DATA, y=EIGHT_DATA["y"] + 1.0)
        pplc.compile_file(EIGHT).sample(other, **kw)
        assert loads[-1] is False and len(os.listdir(tmp_path / exported.FOLDER)) == 4
    finally:
        pplc.compilation_cache(previous or False)
