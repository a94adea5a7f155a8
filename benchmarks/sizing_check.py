"""Sizing check: `pplc check --devices N`'s memory per device against a real run's, on MNIST and MovieLens 1M.

    python benchmarks/sizing_check.py [--only mnist,movielens] [--train 60000] [--devices 8] [--out sizing.json]

For each data set: the figure `pplc check MODEL --data D --devices N <options>` prints (its bytes), then a
short real run, `pplc run MODEL --data D --devices N <the same options> --warmup 3 --draws 3 --no-cache`, on N
host CPU devices, whose device buffers are the process's own memory. What the run's devices take is measured
from the process's resident memory (Linux /proc/self/status): its peak from the moment the run starts building
its programs (the data file read and checked on the host) to the end of the sampling loop, less its resident
memory at that moment (the peak is reset there through /proc/self/clear_refs). The same is measured for a
baseline run on a tiny slice of the same data (8 rows; MovieLens also 8 movies): same model, same options, so
the same Python, JAX, compiled code and compiler memory, and next to no data. Then

    measured per device = (growth of the run - growth of the baseline) / N

The host copies of the data (what `pplc run` reads before it builds anything) fall outside both growths. For
the record the script also gives the whole process's peak of both runs (what `/usr/bin/time -v` reports) and
that naive difference, which also counts the host copies and, in the baseline, the summary and the writing of
the output after sampling (their peak comes then, when the large run's device memory is already freed).
JSON goes to standard output and, with --out, to a file. Data: ../shared/data/{mnist,movielens-1m}
(`--shared DIR` for another place).

Internal: `--measure -- ARGS...` runs `pplc ARGS...` in this process and prints its memory figures as JSON.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
TINY = 8  # rows (and for MovieLens columns) of the baseline's data

# The data sets and the run's options: the tutorial's samplers (HMC, unit mass matrix; MNIST 1 chain,
# MovieLens 2 chains), fewer leapfrog steps (the memory of an HMC iteration does not depend on them).
CASES = {
    "mnist": dict(model="examples/mnist_logreg.ppl", folder="mnist",
                  options=["--chains", "1", "--sampler", "hmc", "--leapfrog", "10", "--metric", "unit"]),
    "movielens": dict(model="examples/movielens_mf.ppl", folder="movielens-1m",
                      options=["--chains", "2", "--sampler", "hmc", "--leapfrog", "10", "--metric", "unit"]),
}
ITERATIONS = ["--warmup", "3", "--draws", "3"]


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (the peak resident memory) to the current resident memory


def measure(args: list[str]) -> dict:
    """Run `pplc ARGS` in this process; the resident memory at the start of `sampling.run.build` (after the
    data are read and bound), the peak from then to the end of the host loop, and the peaks before and after."""
    from pplc.cli import main
    from pplc.runtime.sampling import hostloop
    from pplc.runtime.sampling import run as run_mod

    out = {}
    build, loop = run_mod.build, hostloop.run

    def build_hook(*a, **k):
        out["peak_before"] = _status("VmHWM")
        out["start"] = _status("VmRSS")
        _reset_peak()
        return build(*a, **k)

    def loop_hook(*a, **k):
        try:
            return loop(*a, **k)
        finally:
            out["peak_run"] = _status("VmHWM")
            _reset_peak()

    run_mod.build, hostloop.run = build_hook, loop_hook
    rc = main(args)
    out["peak_after"] = _status("VmHWM")
    out["rc"] = rc
    out["growth"] = out["peak_run"] - out["start"]
    out["peak"] = max(out["peak_before"], out["peak_run"], out["peak_after"])
    return out


def _measured(model: str, data: str, devices: int, options: list[str], tmp: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--measure", "--", "run", model, "--data", data,
           "--devices", str(devices), *options, *ITERATIONS, "--no-cache", "--out", os.path.join(tmp, "fit.npz")]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def figure(model: str, data: str, devices: int, options: list[str]) -> int:
    """The bytes per device `pplc check --devices` prints."""
    import re

    cmd = [sys.executable, "-m", "pplc", "check", model, "--data", data, "--devices", str(devices), *options,
           *ITERATIONS]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    got = re.search(r"memory per device .*\(([\d,]+) bytes\)", p.stdout)
    if p.returncode != 0 or not got:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return int(got.group(1).replace(",", ""))


def make_data(name: str, shared: str, tmp: str, train: int | None) -> tuple[str, str]:
    """The data set's .npz and its tiny slice's, written under `tmp`."""
    import numpy as np

    from pplc.studies import datasets

    folder = os.path.join(shared, CASES[name]["folder"])
    if name == "mnist":
        arrays, _ = datasets.load_mnist(folder, train=train, test=1)
        tiny = {k: v[:TINY] for k, v in arrays.items()}
    else:
        arrays = {k: v for k, v in datasets.load_movielens(folder).items() if not k.startswith("meta/")}
        tiny = {"watched": arrays["watched"][:TINY, :TINY]}
    full_path, tiny_path = os.path.join(tmp, f"{name}.npz"), os.path.join(tmp, f"{name}_tiny.npz")
    np.savez(full_path, **arrays)
    np.savez(tiny_path, **tiny)
    return full_path, tiny_path


def check(name: str, devices: int = 8, shared: str = SHARED, train: int | None = None) -> dict:
    """Figure and measurement for one data set (see the module's docstring)."""
    case = CASES[name]
    model = os.path.join(ROOT, case["model"])
    with tempfile.TemporaryDirectory() as tmp:
        full, tiny = make_data(name, shared, tmp, train)
        printed = figure(model, full, devices, case["options"])
        run = _measured(model, full, devices, case["options"], tmp)
        base = _measured(model, tiny, devices, case["options"], tmp)
    per_device = (run["growth"] - base["growth"]) / devices
    return {"data": name if name != "mnist" else f"mnist ({train or 60000} training images)",
            "command": f"pplc run {case['model']} --data D --devices {devices} {' '.join(case['options'])} "
                       f"{' '.join(ITERATIONS)} --no-cache",
            "figure_bytes": printed, "measured_bytes": round(per_device), "ratio": printed / per_device,
            "run": run, "baseline": base,
            "naive_per_device_bytes": round((run["peak"] - base["peak"]) / devices)}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure"]:
        rest = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        print(json.dumps(measure(rest)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="mnist,movielens")
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--train", type=int, default=60000, help="MNIST training images (default: all 60,000)")
    ap.add_argument("--shared", default=SHARED, help="the folder with mnist/ and movielens-1m/")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    rows = []
    for name in args.only.split(","):
        row = check(name, args.devices, args.shared, args.train)
        print(f"{row['data']}: figure {row['figure_bytes'] / 2**20:.1f} MiB, measured "
              f"{row['measured_bytes'] / 2**20:.1f} MiB per device, ratio {row['ratio']:.2f}", file=sys.stderr)
        rows.append(row)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "load": os.getloadavg()[0]},
              "devices": args.devices, "rows": rows}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
