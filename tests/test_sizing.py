"""Sizing: `pplc check --data D --devices N` prints the memory each device needs, close to what the run's own
compiled programs take on the mesh (XLA's buffer assignment of the block program, per device)."""
import contextlib
import io
import os
import re
import sys

import numpy as np
import pytest

import pplc
from pplc.cli import main
from pplc.runtime import data as data_lib
from pplc.runtime.sampling import hostloop, programs
from pplc.runtime.sampling import run as run_lib
from pplc.runtime.sampling.config import SamplerConfig
from pplc.runtime.sampling.init import init_chains

from conftest import ROOT, shared_path

# Logistic regression with its examples split over the devices: data, a latent matrix and per-example
# intermediates all count.
MODEL = """
data x: real[examples, features]
data y: int[examples]
const classes = 5
w: real[features, classes] ~ Normal(0, 1)
plate examples sharded over devices {
  y ~ Categorical(logits = x @ w)
}
"""
RUN = dict(sampler="hmc", leapfrog=3, chains=4, warmup=10, draws=10, chain_groups=2)


def measured(model, data, devices, cfg):
    """Per device, at the peak of a run: the block program's arguments (data, state, keys), outputs and
    temporaries (XLA's memory analysis of the program the run compiles), plus the previous block's outputs
    that the host is still fetching."""
    bound = data_lib.bind(model.ir, data)
    mesh, layout = data_lib.on_mesh(model.program, bound.sizes, devices, cfg.chain_groups)
    block = run_lib.compiled_block_size(model.program, layout, cfg)
    progs = programs.build(model.program, bound, layout, mesh, cfg, "shard_map", block)
    carry, _ = init_chains(progs, model.program, bound, layout, cfg)
    m = hostloop.compile_block(progs, carry).memory_analysis()
    carry_bytes = sum(x.nbytes for x in carry) // devices
    return (m.argument_size_in_bytes + 2 * m.output_size_in_bytes - carry_bytes + m.temp_size_in_bytes
            - m.alias_size_in_bytes)


def test_the_printed_memory_per_device_is_what_the_run_takes(tmp_path):
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(3001, 40)).astype(np.float32), "y": rng.integers(0, 5, 3001)}
    np.savez(tmp_path / "d.npz", **data)
    (tmp_path / "m.ppl").write_text(MODEL)
    text = io.StringIO()
    args = [f"--{k.replace('_', '-')}={v}" for k, v in RUN.items()]
    with contextlib.redirect_stdout(text):
        assert main(["check", str(tmp_path / "m.ppl"), "--data", str(tmp_path / "d.npz"), "--devices", "4",
                     *args]) == 0
    out = text.getvalue()
    got = re.search(r"memory per device \(4 devices in 2 chain groups of 2 devices, 2 chains on each\): about "
                    r"\S+ \S+ \(([\d,]+) bytes\)", out)
    assert got, out
    printed = int(got.group(1).replace(",", ""))
    model = pplc.compile(MODEL, "m.ppl")
    real = measured(model, data, 4, SamplerConfig(**RUN))
    x_bytes = 1501 * 40 * 4  # a group's 2 devices hold 1501 examples each: the data alone
    assert real > 2 * x_bytes  # the state, intermediates and draws count, not only the data
    assert 0.75 < printed / real < 1.33, (printed, real, out)


def test_devices_without_data_and_groups_that_do_not_fit_are_refused(tmp_path, capsys):
    (tmp_path / "m.ppl").write_text(MODEL)
    np.savez(tmp_path / "d.npz", x=np.zeros((6, 2), np.float32), y=np.zeros(6, int))
    assert main(["check", str(tmp_path / "m.ppl"), "--devices", "4"]) == 1
    assert "--devices needs --data" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "m.ppl"), "--data", str(tmp_path / "d.npz"), "--devices", "4",
                 "--chain-groups", "3", "--chains", "3"]) == 1
    assert "--chain-groups 3 does not divide the 4 devices" in capsys.readouterr().err


@pytest.mark.slow
def test_the_printed_memory_is_within_a_quarter_of_a_real_mnist_run_on_8_devices():
    """Issue 12: on the 60,000 MNIST training images over 8 host devices, the figure `pplc check` prints is within
    25% of what a real `pplc run` takes per device, measured from the process's resident memory (less that of
    the same run on 8 images: Python, JAX, the compiler; see benchmarks/sizing_check.py). About 4 minutes."""
    shared = os.path.dirname(shared_path("data", "mnist", "train-images-idx3-ubyte.gz"))
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import sizing_check
    finally:
        sys.path.remove(os.path.join(ROOT, "benchmarks"))
    row = sizing_check.check("mnist", devices=8, shared=os.path.dirname(shared))
    images = 60000 // 8 * 784 * 4  # one device's images
    assert row["run"]["rc"] == 0 and row["baseline"]["rc"] == 0
    assert row["measured_bytes"] > images  # the devices' data are in the measurement
    assert 0.75 <= row["figure_bytes"] / row["measured_bytes"] <= 1.25, row
