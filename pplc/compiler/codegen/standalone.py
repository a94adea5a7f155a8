"""The `main()` of every generated program, as real Python: codegen copies its comments and source."""

import jax
import tensorflow_probability.substrates.jax as tfp

# The generated module defines these above the copied `main`. Here they are placeholders, so that this file
# imports, and reads to linters, as the Python it is.
DATA: dict[str, tuple[str, tuple[str, ...]]] = {}
TRANSFORMED: dict[str, tuple[str, tuple[str, ...]]] = {}
DIMS: dict[str, int | None] = {}
SHARDED_DIMS: tuple[str, ...] = ()
LATENTS: dict[str, tuple[str, ...]] = {}


def _defined_by_the_generated_module(*args, **kwargs):
    raise NotImplementedError("main() runs inside a generated program")


make_model = observed = transformed_data = _defined_by_the_generated_module


# ----------------------------------------------------------------------------------------------------
# Running this file on its own: HMC with dual-averaging step size, the data split over `--devices`
# devices with jax.shard_map, as TFP's "Distributed inference with JAX" does by hand. `pplc run` does
# more (NUTS, checks of the data, diagnostics); this is the plain program.
def main(argv=None):
    import argparse
    import json

    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help=".npz or .json file with the data, by name")
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--leapfrog", type=int, default=10)
    ap.add_argument("--step-size", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fit.npz")
    args = ap.parse_args(argv)
    jax.config.update("jax_num_cpu_devices", args.devices)  # before JAX starts its backend
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P
    from tensorflow_probability.substrates.jax.experimental.mcmc import preconditioning_utils

    if args.data.endswith(".json"):
        with open(args.data) as f:
            raw = {k: np.asarray(v) for k, v in json.load(f).items()}
    else:
        raw = dict(np.load(args.data, allow_pickle=False))
    sizes = {d: s for d, s in DIMS.items() if s is not None}
    for name, (dtype, shape) in DATA.items():
        if not shape:
            if dtype == "int" and name not in sizes:
                sizes[name] = int(raw[name])
            continue
        for d, n in zip(shape, np.shape(raw[name])):
            sizes.setdefault(d, n)
    ndev = args.devices
    padded = {d: -(-sizes[d] // ndev) * ndev for d in SHARDED_DIMS}

    def pad(x, shape):
        x = np.asarray(x)
        for axis, d in enumerate(shape):
            if d in padded:
                widths = [(0, padded[d] - sizes[d]) if a == axis else (0, 0) for a in range(x.ndim)]
                x = np.pad(x, widths, mode="edge")
        return x

    def spec(shape, lead=0):
        return P(*([None] * lead + ["data" if d in padded else None for d in shape]))

    dtypes = {"real": np.float32, "int": np.int32, "bool": np.bool_}
    data = {k: np.asarray(raw[k], dtypes[t]) for k, (t, s) in DATA.items()}
    # Transformed data: computed once, on all the data, then padded and split like the data.
    all_real = {d: np.ones(sizes[d], bool) for d in SHARDED_DIMS}
    data.update({k: np.asarray(v) for k, v in transformed_data(data, sizes, all_real).items()})
    inputs = {**DATA, **TRANSFORMED}
    data = {k: pad(data[k], s) for k, (t, s) in inputs.items()}
    masks = {d: np.arange(padded[d]) < sizes[d] for d in padded}
    local = dict(sizes, **{d: padded[d] // ndev for d in padded})
    mesh = Mesh(np.array(jax.devices()[:ndev]), ("data",))
    axes = ["data"] if padded else []
    names = list(LATENTS)
    # Sharded latents: each device draws its own items' momenta and the kinetic energy is summed across
    # devices, so that every device makes the same accept decision (the seed's MovieLens study).
    sharded = [axes if any(d in SHARDED_DIMS for d in LATENTS[n]) else None for n in names]

    def run(seed, data, masks):
        model = make_model(data, local, masks, axes)
        pinned = model.experimental_pin(observed(data))  # by site name; {} for a prior
        bijector = pinned.experimental_default_event_space_bijector()
        init_seed, seed = jax.random.split(seed)
        state = pinned.sample_unpinned(args.chains, seed=init_seed)
        z = bijector.inverse(state)

        def target(*parts):
            x = bijector.forward(type(z)(*parts))
            return pinned.unnormalized_log_prob(x) + bijector.forward_log_det_jacobian(
                type(z)(*parts)
            )

        if any(sharded):  # momenta as TFP's preconditioned samplers make them, Sharded parts
            momentum = preconditioning_utils.make_momentum_distribution(
                list(z), [args.chains], shard_axis_names=sharded
            )
            kernel = tfp.experimental.mcmc.PreconditionedHamiltonianMonteCarlo(
                target, args.step_size, args.leapfrog, momentum_distribution=momentum
            )
        else:
            kernel = tfp.mcmc.HamiltonianMonteCarlo(target, args.step_size, args.leapfrog)
        kernel = tfp.mcmc.DualAveragingStepSizeAdaptation(kernel, int(0.8 * args.warmup))
        draws, trace = tfp.mcmc.sample_chain(
            args.draws,
            list(z),
            kernel=kernel,
            num_burnin_steps=args.warmup,
            seed=seed,
            trace_fn=lambda _, r: (
                r.inner_results.accepted_results.target_log_prob,
                r.inner_results.accepted_results.step_size,
            ),
        )
        return list(bijector.forward(type(z)(*draws))), trace

    in_specs = (P(), {k: spec(s) for k, (t, s) in inputs.items()}, {d: P("data") for d in padded})
    out_specs = ([spec(LATENTS[n], lead=2) for n in names], (P(), P()))
    spmd = jax.shard_map(run, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    draws, (log_prob, step_size) = jax.jit(spmd)(jax.random.PRNGKey(args.seed), data, masks)
    out = {}
    for n, x in zip(names, draws):
        x = np.swapaxes(np.asarray(x), 0, 1)  # [chains, draws, ...]
        for axis, d in enumerate(LATENTS[n]):
            if d in padded:
                x = np.take(x, np.arange(sizes[d]), axis=axis + 2)
        out[n] = x
    out["trace/log_prob"] = np.swapaxes(np.asarray(log_prob), 0, 1)
    np.savez(args.out, **out)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in out.items()))
