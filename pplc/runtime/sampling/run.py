"""Sampling a posterior: the run from the per-device programs through the host loop to host arrays."""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError
from ..data.bind import BoundData
from ..data.layout import Layout, Placement
from ..devices import distributed
from ..program import Program
from . import checkpoint as checkpoint_lib
from . import hostloop
from .config import SamplerConfig, float_dtype
from .init import init_chains
from .programs import build, compile_alongside, stacked


def compiled_block_size(program: Program, layout: Layout, cfg: SamplerConfig) -> int:
    """The block size compiled by default: a whole phase, or what fits `hostloop.MAX_BLOCK_BYTES` of outputs; the
    host loop runs blocks of adaptive length up to it (see `hostloop.BlockSizer`)."""
    per_chain = sum(int(np.prod([layout.local[d] for d in v.phys]))
                    for v in program.latents + program.outputs) + 16  # + the statistics
    return hostloop.max_block(cfg.warmup, cfg.draws, cfg.group_chains * per_chain * 8)


def sample(program: Program, bound: BoundData, layout: Layout, mesh, cfg: SamplerConfig, mode: str = "shard_map",
           log=None, block: int | None = None, progress=None, checkpoint: str | None = None,
           checkpoint_every: int | None = None, resume: bool = False):
    """Run the sampler block by block; returns host arrays (padding removed, [chains, draws, ...]),
    the trace and timings. `progress` (an `output.progress.Progress`) shows the run. With `checkpoint` (a path) the whole sampler state is saved every
    `checkpoint_every` iterations (default: a tenth of the run), and `resume` goes on from it with exactly the
    draws of an uninterrupted run. Ctrl-C raises `hostloop.Interrupted`, its `result` what was sampled."""
    latents, outputs = program.latents, program.outputs
    if checkpoint_every is not None and checkpoint_every < 1:
        raise PPLError(Diagnostic(f"--checkpoint-every must be at least 1 (got {checkpoint_every})"))
    if resume and not checkpoint:
        raise PPLError(Diagnostic("--resume needs --checkpoint PATH (the checkpoint to go on from)"))
    if block is not None and block < 1:
        raise PPLError(Diagnostic(f"--block must be at least 1 (got {block})"))
    if mode != "shard_map" and jax.process_count() > 1:
        raise PPLError(Diagnostic("--spmd pmap runs on the devices of one process; several processes need "
                                  "--spmd shard_map (the default)"))
    groups = Placement(program, layout, mesh, mode).groups
    if groups != cfg.chain_groups:
        raise PPLError(Diagnostic(f"--chain-groups {cfg.chain_groups}, but the mesh has {groups} chain groups",
                                  hint="build the mesh with `data.on_mesh(..., groups=cfg.chain_groups)`"))
    if mode != "shard_map" and groups > 1:
        raise PPLError(Diagnostic("--spmd pmap runs on a one-axis mesh; --chain-groups needs --spmd shard_map "
                                  "(the default)"))
    compiled_block = block or compiled_block_size(program, layout, cfg)
    fp = saved = None
    if checkpoint:
        fp = checkpoint_lib.fingerprint(program, bound, layout.ndev, cfg)
        if resume and os.path.exists(checkpoint):
            saved = checkpoint_lib.load(checkpoint)
            checkpoint_lib.check(saved, checkpoint, fp)  # before any tracing: a mismatch is refused at once
        if resume:  # several processes must all go on from the same iteration (or all start afresh)
            found = distributed.gather(-1 if saved is None else saved.iteration)
            if len(set(found)) > 1:
                raise PPLError(Diagnostic(
                    f"cannot resume from {checkpoint}: the processes read different checkpoints (iteration by "
                    f"process, -1 for none: {', '.join(map(str, found))})",
                    hint="every process must read the same checkpoint file: put it on a file system they share"))
    progs = build(program, bound, layout, mesh, cfg, mode, compiled_block)
    if log:
        log(f"sampling: {cfg.chains} chain{'s' if cfg.chains > 1 else ''} x ({cfg.warmup} warmup + {cfg.draws} "
            f"draws), {cfg.describe()}, "
            + (f"{groups} chain groups x " if groups > 1 else "")
            + f"{layout.ndev} device{'s' if layout.ndev > 1 else ''}"
            f"{', float64' if float_dtype() == jnp.float64 else ''}")
    t0 = time.time()
    block_lowered, block_compiled = compile_alongside(progs)
    carry, _ = init_chains(progs, program, bound, layout, cfg, lowered=block_lowered)
    block_fn = block_compiled()
    startup_s = time.time() - t0
    if saved is not None:
        checkpoint_lib.check(saved, checkpoint, fp, progs.keys, carry)
        if log:
            log(f"resuming from {checkpoint} at iteration {saved.iteration} of {cfg.warmup + cfg.draws}")
    elif resume and log:
        log(f"no checkpoint at {checkpoint} yet: starting a new run")

    placement = Placement(program, layout, mesh, mode)

    def place(leaves):
        return placement.place(leaves, [stacked(mesh)] * len(leaves))

    def assemble(res):
        out = {}
        if res.draws is not None:
            for v, x in zip(latents, res.draws):
                out[v.name] = layout.unpad(np.swapaxes(x, 0, 1), v.phys, axis0=2)
            for v in outputs:
                out[v.name] = layout.unpad(np.swapaxes(res.extra[v.name], 0, 1), v.phys, axis0=2)
        trace = {k: np.swapaxes(x, 0, 1) for k, x in (res.stats or {}).items()}
        if res.warm is not None:
            trace.update({f"warmup_{k}": np.swapaxes(x, 0, 1) for k, x in res.warm.items()})
        timing = dict(res.timing, total_s=time.time() - t0, startup_s=startup_s, devices=layout.ndev * groups,
                      chain_groups=groups)
        return out, trace, timing

    try:
        res = hostloop.run(progs, carry, cfg, place=place, progress=progress,
                           checkpoint=checkpoint, checkpoint_every=checkpoint_every, fingerprint=fp, resume=saved,
                           info={"spmd": mode}, startup_s=startup_s, fixed_block=block, block_fn=block_fn)
    except hostloop.Interrupted as e:
        e.result = assemble(e.result)
        raise
    out, trace, timing = assemble(res)
    if log:
        log(f"done in {timing['total_s']:.1f} s: start-up and compilation {startup_s + timing['compile_s']:.1f} s, "
            f"sampling {timing['loop_s']:.1f} s ({timing['leapfrog_per_s']:,.0f} leapfrog steps/s per chain)")
    return out, trace, timing
