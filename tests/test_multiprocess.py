"""Several JAX processes as one mesh (jax.distributed over gloo on 127.0.0.1, as the hosts of a cluster): the same
log density, gradient and draws as one process with as many devices; output written once; a dead process stops
the others."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT

import pplc
from pplc.runtime.sampling.carry import to_host

MODEL = os.path.join(EXAMPLES, "movielens_mf.ppl")
RUN = ["--const", "dim=3", "--sampler", "hmc", "--chains", "2", "--warmup", "0", "--draws", "5", "--seed", "3",
       "--step-size", "0.05", "--quiet"]
SAMPLE = dict(sampler="hmc", chains=2, warmup=0, draws=5, seed=3, step_size=0.05)

# Each process: `pplc run` over the mesh of 2 x 4 devices (the CLI's flags start jax.distributed), then the log
# density and its gradient, and a run of 2 chain groups, through the Python API in the same processes; process 0
# saves the log density it got, each process the draws it got.
WORKER = """
import sys
import numpy as np
from pplc.cli import main
import pplc
from pplc.runtime.sampling.carry import to_host
port, pid, data, out, ref = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
status = main(["run", {model!r}, "--data", data, "--out", out, "--devices", "4", "--coordinator",
               f"127.0.0.1:{{port}}", "--num-processes", "2", "--process-id", str(pid)] + {run!r})
from pplc.runtime.data import rows
np.savez(ref + f".read{{pid}}.npz", **{{k + "/" + f: np.asarray(x) for k, r in rows.LAST_READ.items()
                                     for f, x in r.items()}})  # what this process read of the sharded data
model = pplc.compile_file({model!r}, consts={{"dim": 3}})
# Through the Python API, with two chain groups, one per process (each process's 4 devices run one group's chains
# on all the data): every process gets the whole Fit.
fit = model.sample(data, devices=4, chain_groups=2, coordinator=f"127.0.0.1:{{port}}", num_processes=2,
                   process_id=pid, **{sample!r})
np.savez(out + f".groups{{pid}}.npz", **fit.draws)
z = dict(np.load(ref))
lp, grad = model.log_density(data, devices=4).value_and_grad(z)
if pid == 0:
    np.savez(ref + ".out.npz", lp=to_host(lp), **{{k: to_host(g) for k, g in grad.items()}})
sys.exit(status)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, log):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                            start_new_session=True)


def stop(procs):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    d = tmp_path_factory.mktemp("mp")
    data = str(d / "data.npz")
    np.savez(data, watched=np.random.default_rng(1).random((13, 6)) < 0.4)  # 13 users: padded to 16 on 8
    model = pplc.compile_file(MODEL, consts={"dim": 3})
    rng = np.random.default_rng(2)
    z = {"movie_embedding": rng.normal(size=(6, 3)), "movie_bias": rng.normal(size=6),
         "user_embedding": rng.normal(size=(13, 3)), "user_bias": rng.normal(size=13)}
    z = {k: v.astype(np.float32) for k, v in z.items()}
    np.savez(d / "z.npz", **z)
    return d, data, model, z


def test_two_processes_of_four_devices_are_one_process_of_eight(problem):
    d, data, model, z = problem
    script = d / "worker.py"
    script.write_text(WORKER.format(model=MODEL, run=RUN, sample=SAMPLE))
    port = free_port()
    logs = [open(d / f"log{i}.txt", "w+") for i in range(2)]
    procs = [start([str(script), str(port), str(i), data, str(d / f"fit{i}.npz"), str(d / "z.npz")], logs[i])
             for i in range(2)]
    try:
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        stop(procs)
    text = [open(d / f"log{i}.txt").read() for i in range(2)]
    assert codes == [0, 0], "\n".join(t[-3000:] for t in text)
    assert os.path.exists(d / "fit0.npz") and not os.path.exists(d / "fit1.npz")  # process 0 writes, once
    assert "wrote" in text[0] and "wrote" not in text[1]

    # Each process read and held only its half of the 16 padded users: rows 0-7, then 8-15 of which 8-12 are in
    # the file (13 users) and 13-15 copies of the last; one byte per bool, 6 movies per user.
    watched = np.load(data)["watched"]
    for i, (lo, in_file) in enumerate([(0, 8), (8, 5)]):
        read = np.load(d / f"z.npz.read{i}.npz")
        assert list(read["watched/rows"]) == [lo, lo + 8] and list(read["watched/held"]) == [8, 6]
        assert read["watched/bytes_read"] == in_file * 6 * watched.itemsize
    # The output holds the observed data whole, as one process's does (process 0 reads it from the file to write).
    np.testing.assert_array_equal(np.load(d / "fit0.npz")["observed/watched"], watched)

    # One process, 8 devices: the same log density and gradient, and the same first draws.
    lp8, grad8 = model.log_density(data, devices=8).value_and_grad(z)
    got = np.load(d / "z.npz.out.npz")
    np.testing.assert_allclose(got["lp"], to_host(lp8), rtol=1e-5)
    for k in z:
        np.testing.assert_allclose(got[k], to_host(grad8[k]), rtol=1e-4, atol=1e-4, err_msg=k)
    fit8 = model.sample(data, devices=8, **SAMPLE)
    fit = np.load(d / "fit0.npz")
    assert fit8.trace["is_accepted"].any()
    for k, x in fit8.draws.items():
        np.testing.assert_allclose(fit[k], x, rtol=1e-4, atol=1e-4 * np.abs(x).max(), err_msg=k)

    # The API across the two processes, 2 chain groups (one per process): in each process the draws of 2 groups x
    # 4 devices in one process, the two groups' chains apart.
    groups8 = model.sample(data, devices=8, chain_groups=2, **SAMPLE)
    for i in range(2):
        fit = np.load(d / f"fit{i}.npz.groups{i}.npz")
        for k, x in groups8.draws.items():
            np.testing.assert_allclose(fit[k], x, rtol=1e-4, atol=1e-4 * np.abs(x).max(), err_msg=k)
            assert not np.allclose(x[0], x[1]), k


# Process 0 shows progress; the run is far longer than the test waits.
LONG_WORKER = """
import sys
import pplc
port, pid, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
model = pplc.compile_file({model!r}, consts={{"dim": 3}})
model.sample(data, devices=4, sampler="hmc", chains=2, warmup=1000000, draws=10, progress=True, block=1,
             coordinator=f"127.0.0.1:{{port}}", num_processes=2, process_id=pid)
"""


@pytest.mark.slow
def test_a_dead_process_stops_the_other_within_a_minute_naming_it(problem):
    """Through the Python API's keywords: process 1 is killed mid-run; process 0 stops (non-zero) within 60 s
    with JAX's message naming the task that stopped sending heartbeats."""
    d, data, _, _ = problem
    script = d / "long.py"
    script.write_text(LONG_WORKER.format(model=MODEL))
    port = free_port()
    logs = [open(d / f"long{i}.txt", "w+") for i in range(2)]
    procs = [start([str(script), str(port), str(i), data], logs[i]) for i in range(2)]
    try:
        deadline = time.monotonic() + 240
        while "warmup" not in open(d / "long0.txt").read():  # sampling has started in both
            assert time.monotonic() < deadline and procs[0].poll() is None, open(d / "long0.txt").read()[-3000:]
            time.sleep(0.5)
        os.killpg(procs[1].pid, signal.SIGKILL)
        code = procs[0].wait(timeout=60)  # raises TimeoutExpired if it hangs
    finally:
        stop(procs)
    text = open(d / "long0.txt").read()
    assert code != 0
    assert re.search(r"tasks are unhealthy \(stopped sending heartbeats\):\s*1\b", text), text[-3000:]


# `pplc run` in one of two processes, with checkpoints; with a last argument "pause", process 0 stops after
# writing its checkpoint at iteration >= PAUSE_AT (it says so, then waits to be killed), as a job preempted there.
PAUSE_AT = 5
CKPT = dict(sampler="hmc", chains=2, warmup=4, draws=6, seed=5, step_size=0.1)
CKPT_RUN = [f"--{k.replace('_', '-')}={v}" for k, v in CKPT.items()] + ["--checkpoint-every", "5"]
CKPT_WORKER = """
import sys, time
from pplc.cli import main
from pplc.runtime.sampling import checkpoint
port, pid, data, out, ck, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
save = checkpoint.save
def pausing_save(path, state):
    save(path, state)
    if state.iteration >= {pause_at}:
        print("CHECKPOINTED", state.iteration, flush=True)
        time.sleep(600)
if mode == "pause":
    checkpoint.save = pausing_save
sys.exit(main(["run", {model!r}, "--const", "dim=3", "--data", data, "--out", out, "--devices", "4",
               "--coordinator", f"127.0.0.1:{{port}}", "--num-processes", "2", "--process-id", str(pid),
               "--checkpoint", ck] + {run!r} + (["--resume"] if mode == "resume" else [])))
"""


@pytest.mark.slow
def test_a_two_process_run_resumes_from_its_checkpoint_to_the_draws_of_an_uninterrupted_run(problem):
    """Both processes are killed after process 0 wrote the checkpoint at iteration 5 of 10 (warmup included);
    both started again with --resume go on from it, and the draws are those of an uninterrupted run (one process
    of 8 devices, as the first test: the same up to float32 rounding)."""
    d, data, model, _ = problem
    script, ck, out = d / "ckpt.py", str(d / "ck.npz"), str(d / "resumed.npz")
    script.write_text(CKPT_WORKER.format(model=MODEL, run=CKPT_RUN, pause_at=PAUSE_AT))

    def launch(mode, tag):
        port = free_port()
        logs = [open(d / f"{tag}{i}.txt", "w+") for i in range(2)]
        return [start([str(script), str(port), str(i), data, out, ck, mode], logs[i]) for i in range(2)]

    procs = launch("pause", "paused")
    try:
        deadline = time.monotonic() + 300
        while "CHECKPOINTED" not in open(d / "paused0.txt").read():
            assert time.monotonic() < deadline and procs[0].poll() is None, open(d / "paused0.txt").read()[-3000:]
            time.sleep(0.5)
    finally:
        stop(procs)
    assert not os.path.exists(out)
    from pplc.runtime.sampling import checkpoint as ckpt

    assert ckpt.load(ck).iteration == PAUSE_AT
    procs = launch("resume", "resumed")
    try:
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        stop(procs)
    text = [open(d / f"resumed{i}.txt").read() for i in range(2)]
    assert codes == [0, 0], "\n".join(t[-3000:] for t in text)
    assert f"resuming from {ck} at iteration {PAUSE_AT} of 10" in text[0]  # not a fresh start
    assert "wrote" in text[0] and "wrote" not in text[1]
    assert ckpt.load(ck).iteration == 10
    ref = model.sample(data, devices=8, **CKPT)
    fit = np.load(out)
    assert np.all(ref.trace["is_accepted"].any(axis=1))
    for k, x in ref.draws.items():
        np.testing.assert_allclose(fit[k], x, rtol=1e-4, atol=1e-4 * np.abs(x).max(), err_msg=k)


@pytest.mark.parametrize("flags, message", [
    (["--coordinator", "127.0.0.1:1"], "need all of --coordinator HOST:PORT, --num-processes P and --process-id I"),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], "--process-id must be in 0..1"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "--coordinator must be HOST:PORT"),
])
def test_incomplete_or_wrong_process_flags_are_refused_before_anything_starts(problem, capsys, flags, message):
    from pplc.cli import main

    _, data, _, _ = problem
    assert main(["run", MODEL, "--data", data, "--quiet", *flags]) == 1
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ rows, no processes
class _Device:
    def __init__(self, process):
        self.process_index = process


def _fake_mesh(processes, per_process, groups=1):
    """A mesh of `processes` x `per_process` devices as make_mesh lays it out (process 0's first), in groups."""
    from types import SimpleNamespace

    devs = np.array([_Device(p) for p in range(processes) for _ in range(per_process)], dtype=object)
    if groups == 1:
        return SimpleNamespace(shape={"data": devs.size}, axis_names=("data",), devices=devs)
    return SimpleNamespace(shape={"chains": groups, "data": devs.size // groups}, axis_names=("chains", "data"),
                           devices=devs.reshape(groups, -1))


@pytest.mark.parametrize("processes, per_process", [(2, 4), (4, 2), (3, 1), (2, 1), (1, 8)])
def test_each_process_holds_its_share_of_the_padded_rows_and_reads_only_those_in_the_file(processes, per_process):
    from pplc.runtime.data.layout import held_rows, padded_rows, process_positions, read_plan

    ndev = processes * per_process
    for size in range(1, 21):
        padded = -(-size // ndev) * ndev
        whole = np.stack([np.arange(size), -np.arange(size)], axis=1)  # [size, 2]: rows along axis 0
        expected = np.concatenate([whole, np.repeat(whole[-1:], padded - size, axis=0)])  # edge padding
        mesh = _fake_mesh(processes, per_process)
        got = []
        for p in range(processes):
            lo, hi = held_rows(padded, ndev, process_positions(mesh, p))
            assert hi - lo == padded // processes
            a, b = read_plan(size, lo, hi)
            assert 0 <= a < b <= size and b - a == max(1, min(hi, size) - lo)  # the true rows, or the last one
            got.append(padded_rows(whole[a:b], a, lo, hi))
            np.testing.assert_array_equal(padded_rows(whole.T[:, a:b], a, lo, hi, axis=1), expected[lo:hi].T)
        np.testing.assert_array_equal(np.concatenate(got), expected)


def test_with_a_chain_group_per_process_each_process_holds_every_row():
    from pplc.runtime.data.layout import held_rows, process_positions

    mesh = _fake_mesh(2, 4, groups=2)  # each process is one group: the data axis lies within a process
    assert [held_rows(8, 4, process_positions(mesh, p)) for p in (0, 1)] == [(0, 8), (0, 8)]
    mesh = _fake_mesh(2, 4, groups=4)  # 4 groups of 2: two per process
    assert [held_rows(6, 2, process_positions(mesh, p)) for p in (0, 1)] == [(0, 6), (0, 6)]
    mesh = _fake_mesh(4, 1, groups=2)  # a group spans two processes
    assert [held_rows(6, 2, process_positions(mesh, p)) for p in range(4)] == [(0, 3), (3, 6)] * 2


@pytest.mark.parametrize("order", ["C", "F"])
def test_rows_of_an_npz_member_are_read_alone_when_it_is_stored_uncompressed(tmp_path, order):
    from pplc.runtime.data.load import npz_members, read_rows

    x = np.asfortranarray(np.arange(700.0).reshape(100, 7)) if order == "F" else np.arange(700.0).reshape(100, 7)
    for save, stored in ((np.savez, True), (np.savez_compressed, False)):
        path = str(tmp_path / f"x{stored}.npz")
        save(path, x=x, n=np.int32(100))
        m = npz_members(path)
        assert m["x"].shape == (100, 7) and m["n"].shape == () and (m["x"].offset is not None) == stored
        got, nbytes = read_rows(path, m["x"], 0, 30, 45)
        np.testing.assert_array_equal(got, x[30:45])
        if order == "C":  # rows one after another: only theirs are read (compressed: decompressed up to them)
            assert nbytes == (15 if stored else 45) * 7 * 8
        got, _ = read_rows(path, m["x"], 1, 2, 5)
        np.testing.assert_array_equal(got, x[:, 2:5])


def test_a_process_binds_its_rows_of_the_file_as_the_whole_padded_data_holds_them(problem, tmp_path):
    from pplc.runtime.data import rows
    from pplc.runtime.data.layout import layout

    _, data, model, _ = problem
    watched = np.load(data)["watched"]
    whole = layout(model.ir, {"users": 13, "movies": 6}, 8).pad(watched, ("users", "movies"))
    as_json = str(tmp_path / "d.json")
    with open(as_json, "w") as f:
        import json

        json.dump({"watched": watched.astype(int).tolist()}, f)
    for path in (data, as_json):
        for p in (0, 1):
            local = rows.local_rows(model.program, path, _fake_mesh(2, 4), p)
            assert local.sizes["users"] == 13 and local.held == {"watched": (0, 8 * p, 8 * p + 8)}
            np.testing.assert_array_equal(local.arrays["watched"], whole[8 * p:8 * p + 8])
    bad = str(tmp_path / "bad.npz")  # a bad value in process 1's rows only: its process finds it, the other not
    np.savez(bad, watched=np.where(np.arange(13)[:, None] == 11, 2, watched.astype(np.int64)))
    assert rows.local_rows(model.program, bad, _fake_mesh(2, 4), 0).sizes["users"] == 13
    with pytest.raises(pplc.PPLError, match="values other than 0 and 1"):
        rows.local_rows(model.program, bad, _fake_mesh(2, 4), 1)
