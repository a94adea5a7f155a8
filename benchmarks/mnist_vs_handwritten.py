"""Run time of pplc's compiled MNIST program against the hand-written tutorial program: same data, same HMC.

    python benchmarks/mnist_vs_handwritten.py [--train 10000] [--devices 8] [--reps 5] [--out result.json]

Both sample Bayesian logistic regression (examples/mnist_logreg.ppl; tests/reference_programs.py for the
hand-written program, TFP's distributed-inference tutorial's construction) with HMC: a fixed number of
leapfrog steps, dual-averaging step-size adaptation in warmup, the examples split over `--devices` host
devices with jax.shard_map, training accuracy traced. pplc runs through its runtime (`Model.sample`,
sampler="hmc", metric="unit": no mass matrix, as the tutorial); the time is its sampling loop, `loop_s`,
which leaves out start-up and compilation. The hand-written program is compiled ahead of time
(`.lower().compile()`) and timed on its own, its draws fetched to the host as pplc's are.

The machine may be noisy (shared cores): repetitions are interleaved (pplc, hand-written, then the other
order next time) and the median of the per-repetition ratios pplc / hand-written is the figure; the ratio of
the process's CPU time over the same spans is reported beside it, as it moves less with other processes' load.
JSON goes to
standard output and, with --out, to a file. Data: the first --train MNIST training images from
../shared/data/mnist (IDX .gz) when present, else simulated images of the same shape.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")


def load_mnist(n: int):
    """(images [n, 784] in [0, 1], labels [n]) from the IDX files, or None when they are absent."""
    import numpy as np

    images_path = os.path.join(MNIST, "train-images-idx3-ubyte.gz")
    labels_path = os.path.join(MNIST, "train-labels-idx1-ubyte.gz")
    if not (os.path.exists(images_path) and os.path.exists(labels_path)):
        return None
    with gzip.open(images_path) as f:
        raw = f.read()
    assert int.from_bytes(raw[:4], "big") == 2051, "not an IDX image file"
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float32) / 255.0
    with gzip.open(labels_path) as f:
        raw = f.read()
    assert int.from_bytes(raw[:4], "big") == 2049, "not an IDX label file"
    labels = np.frombuffer(raw, np.uint8, offset=8)[:n].astype(np.int32)
    return images, labels


def simulated(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    images = (rng.random((n, 784)) * (rng.random((n, 784)) < 0.2)).astype(np.float32)
    w = rng.normal(size=(784, 10)) * 0.1
    logits = images @ w
    labels = np.argmax(logits + rng.gumbel(size=logits.shape), axis=-1).astype(np.int32)
    return images, labels


class LoopClock:
    """A progress display for `Model.sample(progress=...)` that shows nothing and reads the process's CPU time
    when the sampling loop starts and ends (the loop only: compilation comes before `start`)."""

    def __init__(self):
        self.cpu_s = None
        self._t0 = None

    def message(self, text):
        pass

    def compiled(self, seconds, what=""):
        pass

    def start(self, iteration=0, divergent=None):
        self._t0 = time.process_time()

    def update(self, iteration, phase, stats=None):
        pass

    def close(self):
        if self._t0 is not None:
            self.cpu_s = time.process_time() - self._t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=10000, help="training images (a prefix of MNIST's 60,000)")
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--leapfrog", type=int, default=50)
    ap.add_argument("--step-size", type=float, default=0.01)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--simulated", action="store_true", help="simulated data even when MNIST is present")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)

    import jax

    jax.config.update("jax_num_cpu_devices", args.devices)
    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import reference_programs as ref

    import pplc

    data = None if args.simulated else load_mnist(args.train)
    source = f"MNIST, first {args.train} training images" if data is not None else \
        f"simulated, {args.train} images of 784 pixels"
    images, labels = data if data is not None else simulated(args.train)
    n = images.shape[0]
    if n % args.devices:  # the hand-written program needs equal shards; pplc would pad
        n -= n % args.devices
        images, labels = images[:n], labels[:n]
    adaptation = max(1, int(0.8 * args.warmup))
    iterations = args.warmup + args.draws

    # ------------------------------------------------------------------ the hand-written program
    hand = ref.mnist_hmc(args.devices, args.draws, args.warmup, args.step_size, args.leapfrog, adaptation)
    key = jax.random.PRNGKey(0)
    init = (jax.random.normal(key, (args.chains, 784, 10)), jax.random.normal(key, (args.chains, 10)))
    t = time.perf_counter()
    hand_compiled = hand.lower(key, init, images, labels).compile()
    hand_compile_s = time.perf_counter() - t

    def run_hand(rep):
        t, c = time.perf_counter(), time.process_time()
        draws, trace = jax.device_get(hand_compiled(jax.random.PRNGKey(rep), init, images, labels))
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c
        assert np.all(np.isfinite(draws[0])), "hand-written draws are not finite"
        return elapsed, {"cpu_s": round(cpu, 4), "accuracy_last": float(np.mean(trace[1][-1]))}

    # ------------------------------------------------------------------ pplc
    model = pplc.compile_file(os.path.join(ROOT, "examples", "mnist_logreg.ppl"))
    arrays = {"images": images, "labels": labels}

    def run_pplc(rep):
        clock = LoopClock()
        fit = model.sample(arrays, devices=args.devices, chains=args.chains, warmup=args.warmup, draws=args.draws,
                           sampler="hmc", leapfrog=args.leapfrog, step_size=args.step_size, metric="unit",
                           seed=rep, progress=clock)
        assert np.all(np.isfinite(fit.draws["w"])), "pplc draws are not finite"
        return fit.timing["loop_s"], {"cpu_s": None if clock.cpu_s is None else round(clock.cpu_s, 4),
                                      "compile_s": fit.timing.get("compile_s"),
                                      "startup_s": fit.timing.get("startup_s"),
                                      "accuracy_last": float(np.mean(fit.trace["accuracy"][:, -1]))}

    run_pplc(0)  # a first run apart: one-time costs of the process (tracing caches, thread pools)
    run_hand(0)
    pplc_s, hand_s, ratios, cpu_ratios, notes = [], [], [], [], []
    for rep in range(1, args.reps + 1):
        order = [("pplc", run_pplc), ("hand", run_hand)]
        if rep % 2 == 0:
            order.reverse()
        times, cpu = {}, {}
        for name, fn in order:
            times[name], info = fn(rep)
            cpu[name] = info["cpu_s"]
            notes.append({"rep": rep, "program": name, "seconds": round(times[name], 4), **info})
        if cpu["pplc"] and cpu["hand"]:
            cpu_ratios.append(cpu["pplc"] / cpu["hand"])
        pplc_s.append(times["pplc"])
        hand_s.append(times["hand"])
        ratios.append(times["pplc"] / times["hand"])
        print(f"rep {rep}: pplc {times['pplc']:.3f} s, hand-written {times['hand']:.3f} s, "
              f"ratio {ratios[-1]:.3f}", file=sys.stderr, flush=True)

    leapfrogs = iterations * args.leapfrog
    result = {
        "benchmark": "mnist_vs_handwritten",
        "data": source, "examples": n, "devices": args.devices, "chains": args.chains,
        "warmup": args.warmup, "draws": args.draws, "leapfrog": args.leapfrog, "step_size": args.step_size,
        "sampler": "HMC, fixed leapfrog steps, dual-averaging step size; pplc metric=unit",
        "platform": jax.devices()[0].platform, "jax": jax.__version__, "reps": args.reps,
        "pplc_s": [round(x, 4) for x in pplc_s], "handwritten_s": [round(x, 4) for x in hand_s],
        "ratios": [round(x, 4) for x in ratios],
        "median_ratio": round(statistics.median(ratios), 4),
        "cpu_time_ratios": [round(x, 4) for x in cpu_ratios],
        "median_cpu_time_ratio": round(statistics.median(cpu_ratios), 4) if cpu_ratios else None,
        "pplc_median_s": round(statistics.median(pplc_s), 4),
        "handwritten_median_s": round(statistics.median(hand_s), 4),
        "pplc_leapfrog_per_s": round(leapfrogs / statistics.median(pplc_s), 1),
        "handwritten_leapfrog_per_s": round(leapfrogs / statistics.median(hand_s), 1),
        "handwritten_compile_s": round(hand_compile_s, 3),
        "runs": notes,
        "target": "median_ratio <= 1.03",
        "note": "median_ratio is of wall time (the figure); CPU time of the process over the same spans is less "
                "sensitive to other processes on a shared machine",
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
