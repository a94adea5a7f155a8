"""Block overhead of the host loop: the same run as one block per phase vs pplc's default blocks (JSON out).

Each configuration is built and compiled once; then the sampling loop (`hostloop.run`, with plain progress
lines written to memory, as a non-terminal gets them) is timed in interleaved repetitions, so that drifts of
the machine's load hit all alike. Reported: the median time of each, the median of the per-repetition
ratios (default / one block), the overhead that ratio implies, and the overhead per extra call; also, for
comparison, blocks of a fixed size (`--fixed`, 100 by default: pplc's first default). Compilation
is not in the timed loop (it is reported apart, as `pplc run` does). The draws of both are checked equal.

    python benchmarks/block_overhead.py --out block_overhead.json
    python benchmarks/block_overhead.py --model examples/mnist_logreg.ppl --data examples/mnist_logreg_sim.npz \
        --sampler hmc --leapfrog 10 --warmup 200 --draws 200 --out mnist_block_overhead.json
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "examples", "eight_schools.ppl"))
    ap.add_argument("--data", default=os.path.join(ROOT, "examples", "eight_schools.json"))
    ap.add_argument("--sampler", default="nuts")
    ap.add_argument("--leapfrog", type=int, default=10)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--fixed", type=int, default=100,
                    help="also time blocks of this fixed size (0: no; 100 was pplc's first default)")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="block_overhead.json")
    args = ap.parse_args(argv)

    from pplc.runtime.devices.mesh import request_devices

    request_devices(args.devices)
    import jax
    import numpy as np

    import pplc
    from pplc.api import _as_data
    from pplc.runtime.data import on_mesh
    from pplc.runtime.sampling import hostloop
    from pplc.runtime.sampling.config import SamplerConfig
    from pplc.runtime.sampling.init import init_chains
    from pplc.runtime.sampling.programs import build
    from pplc.runtime.sampling.run import compiled_block_size
    from pplc.runtime.output.progress import Progress

    model = pplc.compile_file(args.model)
    bound = _as_data(model.ir, args.data)
    mesh, layout = on_mesh(model.program, bound.sizes, args.devices)
    cfg = SamplerConfig(sampler=args.sampler, chains=args.chains, warmup=args.warmup, draws=args.draws,
                        leapfrog=args.leapfrog, seed=args.seed)
    whole = max(args.warmup, args.draws)
    default = compiled_block_size(model.program, layout, cfg)
    # name: (compiled block size, iterations per call: fixed, or None for pplc's adaptive default)
    configs = {"one_block_per_phase": (whole, whole), "default": (default, None)}
    if args.fixed:
        configs[f"fixed_{args.fixed}"] = (args.fixed, args.fixed)
    built = {}
    for name, (block, fixed) in configs.items():
        t = time.perf_counter()
        progs = build(model.program, bound, layout, mesh, cfg, block=block)
        carry, _ = init_chains(progs, model.program, bound, layout, cfg)
        fn = hostloop.compile_block(progs, carry)
        built[name] = (progs, carry, fn, time.perf_counter() - t, fixed)
        print(f"{name}: block {block}{' (adaptive calls)' if fixed is None else ''}, built and compiled in "
              f"{built[name][3]:.1f} s", file=sys.stderr)

    def once(name):
        progs, carry, fn, _, fixed = built[name]
        progress = Progress(cfg.warmup, cfg.draws, stream=io.StringIO())
        t = time.perf_counter()
        res = hostloop.run(progs, carry, cfg, progress=progress, block_fn=fn, fixed_block=fixed)
        return time.perf_counter() - t, res

    first = {name: once(name)[1] for name in configs}  # a warm-up pass of each; also the draws to compare
    same = all(np.array_equal(a, b) for name in configs
               for a, b in zip(first[name].draws, first["one_block_per_phase"].draws))
    times = {name: [] for name in configs}
    calls = {name: [] for name in configs}
    ratios = {name: [] for name in configs if name != "one_block_per_phase"}
    for rep in range(args.reps):
        order = list(configs) if rep % 2 == 0 else list(reversed(configs))  # interleaved, alternating order
        got = {name: once(name) for name in order}
        for name in configs:
            times[name].append(got[name][0])
            calls[name].append(got[name][1].timing["calls"])
        for name in ratios:
            ratios[name].append(got[name][0] / got["one_block_per_phase"][0])
    med = {name: statistics.median(v) for name, v in times.items()}
    ratio = statistics.median(ratios["default"])
    calls = {name: statistics.median(v) for name, v in calls.items()}
    extra_calls = calls["default"] - calls["one_block_per_phase"]
    result = {
        "benchmark": "block_overhead",
        "model": os.path.relpath(args.model, ROOT), "data": os.path.relpath(args.data, ROOT),
        "sampler": args.sampler, "leapfrog": args.leapfrog if args.sampler == "hmc" else None,
        "chains": args.chains, "warmup": args.warmup, "draws": args.draws, "devices": args.devices,
        "device": f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind})", "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "configs": {k: {"compiled_block": b, "iterations_per_call": f or "adaptive"} for k, (b, f) in configs.items()},
        "calls_median": calls, "reps": args.reps,
        "times_s": times, "median_s": med, "ratios_to_one_block": ratios,
        "median_ratio": ratio, "overhead_pct": 100.0 * (ratio - 1.0),
        "median_ratio_by_config": {k: statistics.median(v) for k, v in ratios.items()},
        "overhead_per_call_ms": 1e3 * (med["default"] - med["one_block_per_phase"]) / max(extra_calls, 1),
        "overhead_per_call_ms_by_config": {
            k: 1e3 * (med[k] - med["one_block_per_phase"]) / max(calls[k] - calls["one_block_per_phase"], 1)
            for k in ratios},
        "iterations_per_s": (cfg.warmup + cfg.draws) / med["one_block_per_phase"],
        "same_draws": bool(same),
        "compile_s": {name: b[3] for name, b in built.items()},
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in ("configs", "calls_median", "median_s", "median_ratio", "overhead_pct",
                                               "median_ratio_by_config", "overhead_per_call_ms",
                                               "overhead_per_call_ms_by_config", "same_draws")},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
