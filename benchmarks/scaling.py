"""The `scaling` and `memory` figures of `python -m benchmarks`: 1, 2, 4, 8 host devices, and memory per device.

scaling  MNIST 10,000 x 784 x 10 and MovieLens 100K (943 x 1682, dim 20), on N = 1, 2, 4, 8 host CPU devices:
         the time per call of `model.log_density(data, devices=N).value_and_grad(z)` (run.py's `interleaved` inside
         the process: the median of its rounds), and the leapfrog steps per second per chain of a short HMC run,
         `model.sample(data, devices=N, sampler="hmc", chains=4, warmup=0, metric="unit", step_size=..., leapfrog=10)`
         (the Fit's `timing["leapfrog_per_s"]`: the line `throughput:` of `pplc run`'s summary; sampling loop only,
         compilation apart). Each N is a fresh process (the device count is fixed before JAX starts:
         `jax.config.update("jax_num_cpu_devices", N)`); rounds run every N once, in an order that rotates from
         round to round; the speed-up of N is taken within a round against that round's N = 1, then the median and
         [min-max] over rounds. N host devices share the machine's cores: see render()'s note.
memory   MNIST (10,000 and 60,000 training images) and MovieLens (100K and 1M), on N devices: the peak memory per
         device of a short `pplc run` (HMC: sizing_check.py's options and method, whose functions this calls:
         the run's growth in resident memory less a baseline run's on an 8-row slice, divided by N), against the
         bytes of data each device holds (pplc's layout, as `pplc check` counts them: its shard of every sharded data
         array, padded, every replicated array whole, the padding masks); beside it XLA's memory analysis of the
         run's compiled block program, and `pplc check --devices N`'s own figure and breakdown. MNIST 10,000 and
         MovieLens 100K on N = 1, 2, 4, 8, MNIST 60,000 and MovieLens 1M on 1 and 8 (about 15 minutes on 2 cores).
Data from ../shared/data (run.py's loaders); where absent, simulated data of the same shapes, said in the figure.

    python -m benchmarks --only scaling [--scaling-rounds 3]        python -m benchmarks --only memory
    python benchmarks/scaling.py --child N          # internal: one process of the scaling figure (JSON)
    python benchmarks/scaling.py --measure -- ARGS  # internal: `pplc ARGS` measured (JSON)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DEVICES = (1, 2, 4, 8)
# HMC of the scaling figure: fixed step sizes (no warmup), unit metric, 10 leapfrog steps, 4 chains.
HMC = {"mnist": dict(step_size=0.001, draws=20), "movielens": dict(step_size=0.01, draws=12)}
TIMEOUT_S = 900


# ------------------------------------------------------------------------------------------------ scaling
def child(n: int, reps: int) -> dict:
    """One process of the scaling figure: N host devices, both models (run in this process, JSON printed)."""
    import jax

    jax.config.update("jax_num_cpu_devices", n)
    sys.path.insert(0, HERE)
    import numpy as np

    import pplc
    import run as bench

    assert len(jax.devices()) == n, jax.devices()
    out = {}
    for key, make in (("mnist", bench.mnist), ("movielens", bench.movielens)):
        what, path, data, z, _, _ = make()
        model = pplc.compile_file(path)
        ld = model.log_density(data, devices=n)
        zj = {k: jax.numpy.asarray(v) for k, v in z.items()}
        t = time.perf_counter()
        value = float(ld.value_and_grad(zj)[0])
        compile_s = time.perf_counter() - t
        times = bench.interleaved({"vg": lambda ld=ld, zj=zj: ld.value_and_grad(zj)}, reps)["vg"]
        fit = model.sample(data, devices=n, sampler="hmc", chains=4, warmup=0, leapfrog=10, metric="unit",
                           seed=0, **HMC[key])
        tm = fit.timing
        out[key] = {"model": what, "value": value, "vg_compile_s": compile_s,
                    "vg_seconds": float(np.median(times)), "vg_rounds": times,
                    "leapfrog_per_s": tm["leapfrog_per_s"], "loop_s": tm["loop_s"], "leapfrogs": tm["leapfrogs"],
                    "hmc_compile_s": tm.get("compile_s"),
                    "accept": float(np.mean(fit.trace["accept_ratio"])) if "accept_ratio" in fit.trace else None}
        print(f"  N={n} {key}: vg {out[key]['vg_seconds'] * 1e3:.2f} ms, {tm['leapfrog_per_s']:.0f} leapfrog/s",
              file=sys.stderr, flush=True)
    return out


def _run_child(n: int, reps: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(n), "--reps", str(reps)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure_scaling(rounds: int, spread, reps: int = 5) -> dict:
    """`rounds` rounds of fresh processes, one per N (the order rotating per round); the figure's rows."""
    got = {n: [] for n in DEVICES}
    for r in range(rounds):
        order = DEVICES[r % len(DEVICES):] + DEVICES[:r % len(DEVICES)]
        for n in order:
            t = time.perf_counter()
            got[n].append(_run_child(n, reps))
            print(f"scaling round {r + 1}/{rounds}, N={n}: {time.perf_counter() - t:.0f} s, load "
                  f"{os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    rows = []
    for key in ("mnist", "movielens"):
        row = {"model": got[1][0][key]["model"], "devices": {}}
        ref_value = got[1][0][key]["value"]
        for n in DEVICES:
            rs = [g[key] for g in got[n]]
            ones = [g[key] for g in got[1]]
            row["devices"][str(n)] = {
                "vg_seconds": spread([x["vg_seconds"] for x in rs]),
                "vg_speedup": spread([a["vg_seconds"] / b["vg_seconds"] for a, b in zip(ones, rs)]),
                "leapfrog_per_s": spread([x["leapfrog_per_s"] for x in rs]),
                "leapfrog_speedup": spread([b["leapfrog_per_s"] / a["leapfrog_per_s"] for a, b in zip(ones, rs)]),
                "value_rel_diff": max(abs(x["value"] - ref_value) / abs(ref_value) for x in rs),
                "accept": [x["accept"] for x in rs], "rounds": rs}
        rows.append(row)
    return {"rows": rows, "rounds": rounds, "reps_in_process": reps, "hmc": HMC}


# ------------------------------------------------------------------------------------------------ memory
def _check_breakdown(model: str, data: str, n: int, options: list[str]) -> dict:
    """`pplc check MODEL --data D --devices N OPTIONS` (sizing_check's options and iterations), in this process:
    pplc's `sizing.size`, the function the command prints, for its parts in bytes (the printed text rounds them)."""
    import dataclasses

    import sizing_check as sc
    from pplc import compile_file
    from pplc.cli.options import parser, sampler_settings
    from pplc.runtime import data as data_lib
    from pplc.runtime.sampling import sizing
    from pplc.runtime.sampling.config import SamplerConfig

    args = parser().parse_args(["check", model, "--data", data, "--devices", str(n), *options, *sc.ITERATIONS])
    cfg = SamplerConfig.from_options(**sampler_settings(args))
    program = compile_file(model).program
    s = sizing.size(program, data_lib.bind_program(program, data), n, cfg)
    parts = {k: int(v) for k, v in dataclasses.asdict(s).items()}
    return dict(parts, total=int(s.total), draws=int(s.draws), text=s.text().splitlines(),
                parts_on_device={"data": int(s.data), "latents": int(s.chains * s.latents),
                                 "state": int(2 * s.chains * s.state), "intermediates": int(s.chains * s.step),
                                 "draws": int(s.draws)})


def _datasets(shared: str, tmp: str, sizes: dict) -> list:
    """(label, case, full .npz, tiny .npz, simulated?) of each data set; sizing_check's data writer for
    the files it knows (MNIST with `train` images, MovieLens 1M), the same slicing for MovieLens 100K."""
    import numpy as np

    import sizing_check as sc
    from pplc.studies import datasets as ds

    out = []
    for train in sizes.get("mnist", ()):
        if os.path.exists(os.path.join(shared, "mnist", "train-images-idx3-ubyte.gz")):
            full, tiny = sc.make_data("mnist", shared, tmp, train)
            os.rename(full, full := os.path.join(tmp, f"mnist{train}.npz"))
            sim = False
        else:  # simulated data of the same shape
            sys.path.insert(0, HERE)
            import mnist_vs_handwritten as mv

            images, labels = mv.simulated(train)
            full, tiny = os.path.join(tmp, f"mnist{train}.npz"), os.path.join(tmp, "mnist_tiny.npz")
            np.savez(full, images=images, labels=labels)
            np.savez(tiny, images=images[:sc.TINY], labels=labels[:sc.TINY])
            sim = True
        out.append((f"MNIST {train:,} x 784 x 10", "mnist", full, tiny, sim))
    for folder in sizes.get("movielens", ()):
        path = os.path.join(shared, folder)
        present = os.path.exists(os.path.join(path, "u.data" if folder.endswith("100k") else "ratings_uir.dat.gz"))
        if present:
            watched = ds.load_movielens(path)["watched"]
        else:  # simulated data of the same shape and density
            shape = (943, 1682) if folder.endswith("100k") else (6040, 3706)
            watched = np.random.default_rng(0).random(shape) < (0.063 if folder.endswith("100k") else 0.045)
        full, tiny = os.path.join(tmp, f"{folder}.npz"), os.path.join(tmp, "movielens_tiny.npz")
        np.savez(full, watched=watched)
        np.savez(tiny, watched=watched[:sc.TINY, :sc.TINY])
        label = "MovieLens " + ("100K" if folder.endswith("100k") else "1M")
        out.append((f"{label} {watched.shape[0]:,} x {watched.shape[1]:,}, dim 20", "movielens", full, tiny,
                    not present))
    return out


def measure_run(args: list[str]) -> dict:
    """sizing_check's `measure` of `pplc ARGS` in this process, plus XLA's memory analysis of the run's compiled
    block program (per device: its arguments, outputs and temporaries, less what outputs alias arguments)."""
    sys.path.insert(0, HERE)
    import sizing_check as sc
    from pplc.runtime.sampling import hostloop

    xla, loop = {}, hostloop.run

    def loop_hook(*a, **k):
        fn = k.get("block_fn")
        if fn is not None and hasattr(fn, "memory_analysis"):
            m = fn.memory_analysis()
            xla.update({f: int(getattr(m, f"{f}_size_in_bytes")) for f in ("argument", "output", "temp", "alias")})
        phases["peak_to_loop"] = sc._status("VmHWM")  # building, compiling, the init program: until the loop
        phases["rss_at_loop"] = sc._status("VmRSS")
        sc._reset_peak()  # from here sizing_check's peak_run is the loop's alone
        return loop(*a, **k)

    phases = {}
    hostloop.run = loop_hook  # sizing_check.measure wraps what it finds here
    out = sc.measure(args)
    out["xla_block"] = xla
    if "peak_to_loop" in phases:  # the same growth as sizing_check's, and where its peak came
        out["growth_to_loop"] = phases["peak_to_loop"] - out["start"]
        out["growth_loop"] = out["peak_run"] - out["start"]
        out["rss_at_loop"] = phases["rss_at_loop"] - out["start"]  # what stays from building and compiling
        out["growth"] = max(out["growth_to_loop"], out["growth_loop"])
    return out


def _measured(model: str, data: str, n: int, options: list[str], tmp: str) -> dict:
    import sizing_check as sc

    cmd = [sys.executable, os.path.abspath(__file__), "--measure", "--", "run", model, "--data", data, "--devices",
           str(n), *options, *sc.ITERATIONS, "--no-cache", "--out", os.path.join(tmp, "fit.npz")]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure_memory(shared: str = SHARED, plan: dict | None = None) -> dict:
    """Measured peak per device, data per device, and `pplc check`'s figure, for each data set and N in `plan`."""
    sys.path.insert(0, HERE)
    import sizing_check as sc

    plan = plan or {"MNIST 10,000": DEVICES, "MNIST 60,000": (1, 8), "MovieLens 100K": DEVICES,
                    "MovieLens 1M": (1, 8)}
    rows, baselines = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = _datasets(shared, tmp, {"mnist": (10000, 60000), "movielens": ("movielens-100k", "movielens-1m")})
        for what, case, full, tiny, sim in sets:
            ns = next((v for k, v in plan.items() if what.startswith(k)), ())
            model, options = os.path.join(ROOT, sc.CASES[case]["model"]), sc.CASES[case]["options"]
            for n in ns:
                t = time.perf_counter()
                if (case, n) not in baselines:  # the same model and options: one baseline per model and N
                    baselines[case, n] = _measured(model, tiny, n, options, tmp)
                base = baselines[case, n]
                run = _measured(model, full, n, options, tmp)
                check = _check_breakdown(model, full, n, options)
                per_device = (run["growth"] - base["growth"]) / n
                row = {"data": what, "simulated": sim, "devices": n, "measured_bytes": round(per_device),
                       "data_bytes": check.get("data"), "ratio": per_device / check["data"],
                       "xla_block_bytes": sum(run["xla_block"].get(f, 0) for f in ("argument", "output", "temp"))
                       - run["xla_block"].get("alias", 0),
                       "check": check, "check_over_data": check["total"] / check["data"],
                       "run": run, "baseline": base,
                       "command": f"pplc run {sc.CASES[case]['model']} --data D --devices {n} {' '.join(options)} "
                                  f"{' '.join(sc.ITERATIONS)} --no-cache"}
                print(f"memory {what} N={n}: measured {per_device / 2**20:.1f} MiB, data "
                      f"{check['data'] / 2**20:.2f} MiB, ratio {row['ratio']:.2f}, check {check['total'] / 2**20:.1f}"
                      f" MiB ({time.perf_counter() - t:.0f} s, load {os.getloadavg()[0]:.2f})",
                      file=sys.stderr, flush=True)
                rows.append(row)
    return {"rows": rows}


# ------------------------------------------------------------------------------------------------ rendering
def _mib(b) -> str:
    return f"{b / 2**20:,.1f}" if b >= 2**20 else f"{b / 2**20:,.2f}"


def _memory_note(rows: list) -> list:
    """Whether the 1.5x goal is met, per data set, and where the memory beyond the data goes (from the rows)."""
    out, sets = [], {}
    for r in rows:
        sets.setdefault(r["data"].split(" ")[0], []).append(r)
    for name, rs in sets.items():
        xla = [r["xla_block_bytes"] / r["data_bytes"] for r in rs]
        chk = [r["check_over_data"] for r in rs]
        meas = [r["ratio"] for r in rs]
        met = max(xla) <= 1.5 and max(chk) <= 1.5
        out.append(f"- **{name}: the 1.5x goal is {'met' if met else 'not met'}** by XLA's figure "
                   f"({min(xla):.2f}-{max(xla):.2f} times the data) and `pplc check`'s ({min(chk):.2f}-{max(chk):.2f});"
                   f" measured {min(meas):.2f}-{max(meas):.2f}"
                   + (f" (above 1.5 in {sum(m > 1.5 for m in meas)} of {len(meas)} rows: see the last note)."
                      if met and max(meas) > 1.5 else "."))
    ml = [r for r in rows if r["data"].startswith("MovieLens")]
    if ml:
        r = max(ml, key=lambda r: r["data_bytes"])
        per_cell = r["check"]["step"] / r["data_bytes"]  # bools: a byte of data is a (user, movie) cell
        arrays = r["check"]["state"] / r["check"]["latents"]
        out.append(f"- MovieLens: `watched` is one byte per (user, movie) cell, and every chain's log density and "
                   f"gradient make float32 arrays of the device's users x movies (the logits, and the Bernoulli's "
                   f"temporaries in the gradient): XLA's temporaries of one iteration are {per_cell:.0f} bytes per "
                   f"cell per chain ({r['data']}, N = {r['devices']}), so {r['check']['chains']} chains' "
                   f"intermediates alone are about {r['check']['chains'] * per_cell:.0f} times the data. The sampler "
                   f"state (TFP's kernel results and the latents: {arrays:.0f} latent-sized arrays per chain, "
                   "counted in and out of a call) and two blocks of draws add the rest. No setting of this model "
                   "reaches 1.5x: a single float32 logits array per chain is already 4 times a bool datum. What would "
                   "shrink it: the "
                   "likelihood summed over blocks of movies (a scan, its gradient recomputed per block), so that the "
                   "temporaries are the device's users x a block instead of x all movies.")
    out.append("- MNIST: the data are float32 images, and what a chain adds (the logits, 10 per image, their "
               "gradient temporaries, the 784 x 10 weights' sampler state) is small against them; the ratio grows as "
               "N shrinks each device's share, since the state and the draws do not shrink.")
    out.append("- The measured column is the noisiest: its baseline (the same run on an 8-row slice) is compiled "
               "for other shapes, and the process's compile memory and allocator differ between the two by tens to "
               "hundreds of MiB, large against the per-device data of the small sets (MNIST 10,000, MovieLens 100K), "
               "small against MNIST 60,000's. XLA's column counts the program's own buffers exactly.")
    return out + [""]


def render(scaling: dict | None, memory: dict | None, fmt, provenance) -> list:
    out = []
    if scaling:
        out += ["## Scaling over host devices (read with the core count in mind)", "",
                "Value and gradient of the log density (`model.log_density(data, devices=N).value_and_grad(z)`, "
                "ms per call, compilation apart) and the leapfrog steps per second per chain of a short HMC run "
                "(`model.sample(data, devices=N, sampler=\"hmc\", chains=4, warmup=0, leapfrog=10, metric=\"unit\")`"
                ", fixed step size, the sampling loop only: the `throughput:` of `pplc run`'s summary), on N host "
                "CPU devices, float32; each N a fresh process, rounds interleaved over N (the order rotating), "
                "speed-ups taken within a round against N = 1.", ""]
        for row in scaling["rows"]:
            out += [f"**{row['model']}**", "",
                    "| devices | ms per value and gradient | speed-up | leapfrog steps/s per chain | speed-up |",
                    "|---|---|---|---|---|"]
            for n, d in row["devices"].items():
                out.append(f"| {n} | {fmt(d['vg_seconds'], 2, 1e3)} | {fmt(d['vg_speedup'])} | "
                           f"{fmt(d['leapfrog_per_s'], 0)} | {fmt(d['leapfrog_speedup'])} |")
            out.append("")
        cores = scaling["machine"]["cores"]
        out += [f"How to read it: this machine has {cores} cores. N host devices are N XLA CPU devices in one "
                f"process, sharing those {cores} cores; and one device already runs its large operations (the "
                "matmuls) on several threads of XLA's pool, so N = 1 is not a one-core baseline. On 2 cores the "
                "figure can show what splitting costs or saves on one machine: the per-device programs, the "
                "padding, the sums across devices, a dispatch per device (a speed-up near 1: splitting is free; "
                "below 1: its overhead). It cannot show how pplc scales on N accelerators or N cores: a speed-up "
                "above 2 is out of reach here, and no figure here predicts 8 GPUs. The machine was shared with "
                "other jobs (the load averages below, on 2 cores): only differences larger than the spreads mean "
                "anything. The values of the log density agree across N to float32 rounding (`value_rel_diff` in "
                "the JSON).", ""]
        last = str(max(int(n) for n in scaling["rows"][0]["devices"]))
        out += [f"- {row['model']}, N = {last} against N = 1: value and gradient "
                f"{row['devices'][last]['vg_speedup']['median']:.2f}, HMC leapfrog steps "
                f"{row['devices'][last]['leapfrog_speedup']['median']:.2f}" for row in scaling["rows"]]
        out += ["- A model whose replicated latents are large against each device's share (MovieLens: the movies' "
                "embeddings, whose gradient is summed across the devices, against 943 / N users per device) pays "
                "the most for splitting here, with no extra core to pay it back.", ""]
        out += [scaling.get("note", ""), ""] if scaling.get("note") else []
        out += provenance(scaling) + [""]
    if memory:
        out += ["## Peak memory per device against the data it holds (goal: at most 1.5x)", "",
                "A short `pplc run` (HMC, unit metric, 10 leapfrog steps; MNIST 1 chain, MovieLens 2 chains; 3 "
                "warmup iterations and 3 draws) on N host CPU devices. *Measured*: as benchmarks/sizing_check.py "
                "(docs/scaling.md), the growth of the process's peak resident memory from the start of building "
                "the programs to the end of sampling, less that of the same run on an 8-row slice of the data "
                "(MovieLens 8 x 8), divided by N. *XLA*: XLA's memory analysis of the run's own compiled block "
                "program, per device (arguments, outputs and temporaries of one call, less aliased outputs). *Data "
                "per device*: pplc's layout as `pplc check` counts it: the device's rows of each sharded array, "
                "padded to a multiple of N (reals float32, bools 1 byte, ints 4 bytes), every replicated "
                "array whole, the padding masks (1 byte per row). *pplc check*: `pplc check --devices N` with the "
                "run's options (runtime/sampling/sizing.py), and its parts for all chains of a device.",
                "", "| data | N | data per device MiB | measured MiB | measured / data | XLA MiB | XLA / data | "
                "pplc check MiB | check / data | check's parts MiB: latents, state (in and out), intermediates, "
                "draws |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in memory["rows"]:
            c, d = r["check"], r["data_bytes"]
            out.append(f"| {r['data']}{' (simulated)' if r['simulated'] else ''} | {r['devices']} | {_mib(d)} | "
                       f"{_mib(r['measured_bytes'])} | {r['ratio']:.2f} | {_mib(r['xla_block_bytes'])} | "
                       f"{r['xla_block_bytes'] / d:.2f} | {_mib(c['total'])} | {c['total'] / d:.2f} | "
                       + ", ".join(_mib(c["parts_on_device"][k])
                                   for k in ("latents", "state", "intermediates", "draws"))
                       + " |")
        out += [""] + _memory_note(memory["rows"]) + provenance(memory) + [""]
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure"]:
        print(json.dumps(measure_run(argv[2:] if argv[1:2] == ["--"] else argv[1:])))
        return 0
    if argv[:1] == ["--child"]:
        reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 5
        print(json.dumps(child(int(argv[1]), reps)))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
