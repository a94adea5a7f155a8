"""The host loop over sampling blocks: one SPMD call per block, pipelined; progress, checkpoints, Ctrl-C."""
from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field

import jax
import numpy as np

from ..devices.mesh import is_main_process
from . import checkpoint as ckpt
from .carry import carry_from_host, carry_to_host, to_host


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped sampling. What was sampled up to the last finished block is kept: `result` (the host
    loop's `Run`, then `sampling.sample`'s (draws, trace, timing)) and, from the Python API, `fit`."""

    def __init__(self, note: str, result=None):
        super().__init__(note)
        self.note = note
        self.result = result
        self.fit = None


def cat(parts):
    """Concatenate per-block host outputs (pytrees of [iterations, ...] arrays) along iterations."""
    parts = [p for p in parts if p is not None]
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *parts) if parts else None


@dataclass
class Run:
    """A run's host outputs, concatenated over blocks, each [iterations, chains, ...] (local layout, padded),
    and its timing. `iteration` is how far it got (warmup included)."""

    iteration: int
    warm: dict | None = None
    draws: list | None = None
    extra: dict | None = None
    stats: dict | None = None
    timing: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


TARGET_BLOCK_S = 1.0  # adaptive blocks aim at this much work per device call
GROWTH = 4  # ... growing from 1 iteration by at most this factor per call
MAX_BLOCK_BYTES = 64 * 2**20  # the block size cap: a block's outputs (draws, statistics) in device memory


def max_block(warmup: int, draws: int, bytes_per_iteration: int, budget: int = MAX_BLOCK_BYTES) -> int:
    """The block size to compile: a whole phase, unless a block's outputs would exceed `budget` bytes."""
    return max(1, min(max(warmup, draws), budget // max(1, int(bytes_per_iteration))))


def clamp_block(it: int, n: int, warmup: int, total: int, every: int | None = None) -> tuple[str, int]:
    """The block starting at iteration `it` of at most `n` iterations: (phase, iterations). Blocks never cross
    from warmup into sampling, nor (with checkpoints every `every` iterations) a checkpoint boundary."""
    end = warmup if it < warmup else total
    n = min(n, end - it)
    if every:
        n = min(n, every - it % every)
    return ("warmup" if it < warmup else "sampling"), max(1, n)


class BlockSizer:
    """Iterations per call: `fixed`, or adaptive: from 1, growing by at most GROWTH times per call toward
    TARGET_BLOCK_S seconds of work at the rate measured so far, never above the compiled block size. Small
    first blocks show progress soon whatever an iteration costs; later ones make the per-call overhead
    negligible. The draws do not depend on the block sizes (one PRNG key per iteration). With several
    processes the sizes only grow by GROWTH (no timing: every process must run the same blocks)."""

    def __init__(self, block: int, fixed: int | None = None, target_s: float = TARGET_BLOCK_S):
        self.block, self.fixed, self.target_s = block, fixed, target_s
        self.last = 0
        self.rate = None  # iterations per second

    def next(self) -> int:
        if self.fixed:
            return min(self.fixed, self.block)
        n = 1 if self.last == 0 else self.last * GROWTH
        if self.rate is not None:
            n = min(n, max(1, int(self.rate * self.target_s)))
        self.last = max(1, min(n, self.block))
        return self.last

    def observe(self, iterations: int, seconds: float) -> None:
        if iterations > 0 and seconds > 0:
            self.rate = iterations / seconds


def _count(stats: dict | None, name: str) -> int:
    return int(np.sum(stats[name])) if stats and name in stats else 0


def compile_block(progs, carry):
    """The block program compiled ahead of time (so compilation is timed apart from sampling); under pmap,
    which has no ahead-of-time path here, the program itself (compiled by its first call)."""
    fn = progs.block_fn
    if not hasattr(fn, "lower"):
        return fn
    return fn.lower(*block_args(progs, carry)).compile()


def block_args(progs, carry) -> tuple:
    """The block program's arguments to compile it for (`carry` may be shapes): the key argument is always a
    whole block (the last key repeated when the run is shorter)."""
    keys = progs.keys[:progs.block]
    if keys.shape[0] < progs.block:
        keys = np.concatenate([keys, np.repeat(keys[-1:], progs.block - keys.shape[0], axis=0)])
    return carry, keys, np.int32(progs.block), progs.data, progs.masks


class _StopOnSigint:
    """While sampling, the first Ctrl-C (SIGINT) asks the loop to stop at the next block boundary, where the
    state is whole; a second one interrupts at once. Only in the main thread, and not when SIGINT is ignored."""

    def __init__(self):
        self.requested = False
        self._prev = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            prev = signal.getsignal(signal.SIGINT)
            if prev not in (signal.SIG_IGN, None):
                self._prev = prev
                signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._prev)

    def __exit__(self, *exc):
        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)
        return False


def run(progs, carry, cfg, *, place=None, progress=None, checkpoint: str | None = None,
        checkpoint_every: int | None = None, fingerprint: dict | None = None, resume: ckpt.State | None = None,
        block_fn=None, info: dict | None = None, startup_s: float = 0.0, fixed_block: int | None = None) -> Run:
    """Run the blocks of iterations from the start (or from `resume`, a checked checkpoint) to the end.

    Each block is one SPMD call of up to `progs.block` iterations (`fixed_block` each, or adaptive: see
    `BlockSizer`); the next block is dispatched before the previous one's outputs are fetched,
    so the host's work (fetching, progress, checkpoints) overlaps the device's. `place(host_leaves)` puts a
    carried state read from a checkpoint back on the mesh. Raises `Interrupted` (with the `Run` so far) on
    Ctrl-C, after writing a checkpoint when there is one."""
    B = progs.block
    total = cfg.warmup + cfg.draws
    info = dict(info or {}, block=B)
    parts = {"warm": [], "draws": [], "extra": [], "stats": []}
    start = 0
    if resume is not None:
        start = resume.iteration
        parts["warm"].append(resume.warm)
        parts["draws"].append(resume.draws), parts["extra"].append(resume.extra), parts["stats"].append(resume.stats)
        carry = (place or (lambda x: x))(carry_from_host(resume.carry, resume.info.get("carry_keys", {})))
    committed = {"carry": carry, "iteration": start, "checkpointed": start if resume is not None else -1}
    every = checkpoint_every or max(1, total // 10)
    timing = {"block": B, "start_iteration": start, "calls": 0}

    def write_checkpoint():
        for k in parts:  # keep one concatenated block per kind from now on
            parts[k] = [cat(parts[k])]
        leaves, keys = carry_to_host(committed["carry"])
        st = ckpt.State(committed["iteration"], leaves, progs.keys, parts["warm"][0], parts["draws"][0],
                        parts["extra"][0], parts["stats"][0], fingerprint or {}, dict(info, carry_keys=keys))
        if is_main_process():
            ckpt.save(checkpoint, st)
        committed["checkpointed"] = committed["iteration"]

    leapfrogs = [0.0]

    def commit(pending):
        phase, first, n, new_carry, out = pending
        timing["calls"] += 1
        if phase == "warmup":
            st = jax.tree.map(lambda x: to_host(x)[:n], out[2])
            vals = ext = None
        else:
            vals, ext, st = jax.tree.map(lambda x: to_host(x)[:n], out)  # every process: all processes' rows
        # Commit: the outputs and the state after them, together.
        if phase == "warmup":
            parts["warm"].append(st)
        else:
            parts["draws"].append(vals), parts["extra"].append(ext), parts["stats"].append(st)
        committed["carry"], committed["iteration"] = new_carry, first + n
        if "n_leapfrog" in st:
            leapfrogs[0] += float(np.sum(np.mean(np.asarray(st["n_leapfrog"], float), axis=-1)))
        if progress is not None:
            progress.update(first + n, phase, st)
        it = first + n
        if checkpoint and (it // every > committed["checkpointed"] // every or it == total):
            write_checkpoint()

    tc = time.perf_counter()
    fn = block_fn or compile_block(progs, carry)
    timing["compile_s"] = time.perf_counter() - tc
    if progress is not None:
        progress.compiled(startup_s + timing["compile_s"], "start-up and compilation" if resume is None else
                          f"start-up and compilation (resuming at iteration {start})")
        progress.start(start, divergent=None if resume is None else {
            "warmup": _count(resume.warm, "diverging"), "sampling": _count(resume.stats, "diverging")})
    t_loop, cpu_loop = time.perf_counter(), time.process_time()
    sizer = BlockSizer(B, fixed_block)
    if jax.process_count() > 1:  # every process must run the same blocks: sizes that do not depend on timing
        sizer.observe = lambda iterations, seconds: None
    stop = _StopOnSigint()
    hard = False
    pending = None
    try:
        with stop:
            first = start
            while first < total:
                phase, n = clamp_block(first, sizer.next(), cfg.warmup, total, every if checkpoint else None)
                keys = progs.keys[first:first + B]
                if keys.shape[0] < B:  # the end of the run: pad the keys; iterations past n are skipped
                    keys = np.concatenate([keys, np.repeat(keys[-1:], B - keys.shape[0], axis=0)])
                dispatch_carry = pending[3] if pending is not None else committed["carry"]
                new_carry, out = fn(dispatch_carry, keys, np.int32(n), progs.data, progs.masks)
                if pending is not None:
                    commit(pending)
                    sizer.observe(committed["iteration"] - start, time.perf_counter() - t_loop)
                pending = (phase, first, n, new_carry, out)
                first += n
                if stop.requested:
                    pending = None  # the block in flight is dropped: the state stays at a block boundary
                    break
            if pending is not None and not stop.requested:
                commit(pending)
                pending = None
    except KeyboardInterrupt:
        hard = True
    finally:
        if progress is not None:
            progress.close()
    loop_s = time.perf_counter() - t_loop
    loop_cpu_s = time.process_time() - cpu_loop  # the CPU time of this process's threads (XLA's too)
    done = committed["iteration"] - start
    timing.update(loop_s=loop_s, loop_cpu_s=loop_cpu_s, iterations=done, leapfrogs=leapfrogs[0],
                  leapfrog_per_s=leapfrogs[0] / loop_s if loop_s > 0 else float("nan"))
    if stop.requested or hard:
        it = committed["iteration"]
        where = (f"in warmup at iteration {it} of {cfg.warmup}" if it < cfg.warmup
                 else f"after {it - cfg.warmup} of {cfg.draws} draws")
        note = f"interrupted {where}"
        if checkpoint and committed["checkpointed"] != it and not hard:
            write_checkpoint()
        if checkpoint and committed["checkpointed"] == it:
            note += f"; checkpoint {checkpoint} is at iteration {it} (resume with --resume)"
        result = Run(it, cat(parts["warm"]), cat(parts["draws"]), cat(parts["extra"]), cat(parts["stats"]),
                     timing, [note])
        raise Interrupted(note, result)
    return Run(committed["iteration"], cat(parts["warm"]), cat(parts["draws"]), cat(parts["extra"]),
               cat(parts["stats"]), timing)
