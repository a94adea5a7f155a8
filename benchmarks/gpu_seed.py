"""The seed's two studies at its full settings on one accelerator: leapfrog steps/s, accuracies, recommendations.

    python benchmarks/gpu_seed.py --data DIR [--out DIR]          # full settings, one GPU (about 5 minutes)
    python benchmarks/gpu_seed.py --data DIR --scale tiny         # a CPU smoke check of the same script

DIR holds the shared data's `mnist/` and `movielens-1m/` folders (default: ../shared/data, then shared/data, then
.data). MovieLens may not be redistributed: on a machine that gets a copy of the working tree, put the data in an
ignored folder (e.g. `.data/`) and carry it; never commit it.

Study 1 (MNIST, Bayesian logistic regression): 60,000 training images, HMC with step size 0.01 adapted by dual
averaging, 100 leapfrog steps, 1000 warmup + 1000 draws, one chain, tensorfloat32 matmuls; then the Bayesian
model average and the average single-draw accuracy on the 10,000 test images (seed on 8 TPU cores: 0.9264 and
0.9189; the seed's program on one H100: 3,348 leapfrog steps/s).
Study 2 (MovieLens 1M, matrix factorisation): the 6040 x 3706 watch matrix, preconditioned HMC with sharded
momenta, step size 0.01 adapted, 100 leapfrog steps, 2 chains, 1000 warmup + 500 draws, tensorfloat32; then each
draw's top unwatched movie for the least and most active users (the seed's program on one H200: 1,120
leapfrog steps/s).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

SCALES = {
    # name: MNIST (train, test, warmup, draws, leapfrog), MovieLens (dataset, warmup, draws, leapfrog, chains)
    "full": dict(mnist=(60_000, 10_000, 1000, 1000, 100), movielens=("movielens-1m", 1000, 500, 100, 2)),
    "tiny": dict(mnist=(2_000, 1_000, 20, 20, 10), movielens=("movielens-100k", 10, 10, 5, 2)),
}


def _data_dir(arg):
    for d in ([arg] if arg else [os.path.join(ROOT, "..", "shared", "data"), os.path.join(ROOT, "shared", "data"),
                                 os.path.join(ROOT, ".data")]):
        if d and os.path.isdir(os.path.join(d, "mnist")):
            return d
    sys.exit("no data: pass --data DIR (a folder with mnist/ and movielens-1m/)")


def _rate(fit, iters, leapfrog):
    """Leapfrog steps per second per chain (as the seed counts them): over the whole run, compilation
    included, and pplc's own figure over the sampling loop alone (`leapfrog_per_s`, compilation excluded)."""
    t = fit.timing
    total = float(t.get("total_s", float("nan")))
    return iters * leapfrog / total, float(t.get("leapfrog_per_s", float("nan"))), total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder with mnist/ and movielens-1m/ (or movielens-100k/ for --scale tiny)")
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--devices", type=int, default=1, help="devices to shard over (default 1: one GPU)")
    ap.add_argument("--matmul-precision", default="tensorfloat32")
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_seed_out"), help="folder for the bar charts")
    ap.add_argument("--only", choices=["mnist", "movielens"], help="run one study only")
    args = ap.parse_args(argv)

    from pplc.runtime.devices.mesh import request_devices

    request_devices(args.devices)  # host devices, for a CPU smoke check; before JAX starts its backend
    import jax
    import numpy as np

    import pplc
    from pplc.studies import datasets, recommend

    data_dir = _data_dir(args.data)
    scale = SCALES[args.scale]
    t_start = time.time()
    print(f"pplc seed studies, scale {args.scale}: {jax.devices()[0].device_kind} x{args.devices} "
          f"({jax.default_backend()}), jax {jax.__version__}, matmul precision {args.matmul_precision}", flush=True)
    hmc = dict(sampler="hmc", metric="unit", step_size=0.01, init="prior", matmul_precision=args.matmul_precision)

    if args.only in (None, "mnist"):
        n_train, n_test, warmup, draws, leapfrog = scale["mnist"]
        t0 = time.time()
        train, test = datasets.load_mnist(os.path.join(data_dir, "mnist"), n_train, n_test)
        model = pplc.compile_file(os.path.join(ROOT, "examples", "mnist_logreg.ppl"))
        fit = model.sample(train, devices=args.devices, chains=1, warmup=warmup, draws=draws, leapfrog=leapfrog,
                           seed=0, **hmc)
        t1 = time.time()
        pred = fit.predict(test)
        met = pred.metrics["labels"]
        overall, steady, run_s = _rate(fit, warmup + draws, leapfrog)
        print(f"\n[MNIST] {n_train} training images, {warmup} + {draws} iterations x {leapfrog} leapfrog steps, 1 chain")
        print(f"[MNIST] sampling {run_s:.1f} s (with compilation; {t1 - t0:.1f} s with loading); leapfrog steps/s: "
              f"{overall:.0f} overall, {steady:.0f} in the sampling loop; acceptance {np.mean(fit.trace['accept_ratio']):.3f}, "
              f"step size {float(np.mean(fit.trace['step_size'][:, -1])):.4g}")
        print(f"[MNIST] test accuracy on {n_test} images: Bayesian model average {met['bma_accuracy']:.4f}, "
              f"single draws {met['single_draw_accuracy']:.4f} on average (predictive: {time.time() - t1:.1f} s)",
              flush=True)

    if args.only in (None, "movielens"):
        name, warmup, draws, leapfrog, chains = scale["movielens"]
        t0 = time.time()
        data = datasets.load_movielens(os.path.join(data_dir, name))
        model = pplc.compile_file(os.path.join(ROOT, "examples", "movielens_mf.ppl"))
        fit = model.sample(data, devices=args.devices, chains=chains, warmup=warmup, draws=draws,
                           leapfrog=leapfrog, seed=0, **hmc)
        t1 = time.time()
        users = recommend.recommend(model.program, fit.draws, data)
        paths = recommend.write(users, args.out)
        overall, steady, run_s = _rate(fit, warmup + draws, leapfrog)
        w = data["watched"]
        print(f"\n[MovieLens] {name}: {w.shape[0]} users x {w.shape[1]} movies, {chains} chains x ({warmup} + {draws})"
              f" iterations x {leapfrog} leapfrog steps")
        print(f"[MovieLens] sampling {run_s:.1f} s (with compilation; {t1 - t0:.1f} s with loading); leapfrog "
              f"steps/s per chain: {overall:.0f} overall, {steady:.0f} in the sampling loop; acceptance "
              f"{np.mean(fit.trace['accept_ratio']):.3f}")
        for u in users:
            print("[MovieLens] " + u.summary(top=5).replace("\n", "\n[MovieLens] "))
        print(f"[MovieLens] recommendations {time.time() - t1:.1f} s; wrote {', '.join(paths)}", flush=True)
    print(f"\ntotal {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
