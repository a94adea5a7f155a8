"""Sizing a run before it starts: the memory each device needs (data, sampler state, intermediates, draws)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ...compiler.supports import unconstrained_shape
from ..data.bind import BoundData
from ..data.layout import layout as layout_of
from ..devices.mesh import check_groups
from ..program import Program
from .config import SamplerConfig, float_dtype
from .target import target_fn
from .warmup import make_kernel

PIPELINED = 2  # blocks of outputs on a device at once: the one running, and the one the host is fetching


@dataclass(frozen=True)
class Sizing:
    """The memory one device needs for a run, in bytes, by part (see docs/scaling.md, "Sizing")."""

    devices: int  # devices in all
    groups: int  # chain groups
    chains: int  # chains on each device (those of its group)
    data: int  # the device's shard of the sharded data, all of the replicated data, the masks
    latents: int  # one chain's latents (unconstrained, this device's items)
    state: int  # one chain's carried sampler state: latents, gradients, momenta, mass matrix, adaptation
    step: int  # one chain's largest intermediate: XLA's temporaries of one sampler iteration
    block: int  # iterations per device call (the compiled block)
    outputs: int  # one chain's outputs per iteration: draws, deterministics, statistics

    @property
    def draws(self) -> int:
        """The blocks of outputs held on the device."""
        return PIPELINED * self.block * self.chains * self.outputs

    @property
    def total(self) -> int:
        return self.data + self.chains * (2 * self.state + self.step) + self.draws

    def text(self) -> str:
        per = f"{self.devices // self.groups} device{'s' if self.devices // self.groups > 1 else ''}"
        lines = [f"memory per device ({self.devices} device{'s' if self.devices > 1 else ''}"
                 + (f" in {self.groups} chain groups of {per}" if self.groups > 1 else "")
                 + f", {self.chains} chain{'s' if self.chains > 1 else ''} on each): about {_mib(self.total)} "
                 f"({self.total:,} bytes)",
                 f"  data (this device's items, replicated arrays whole)  {_mib(self.data)}",
                 f"  latents                                              {_mib(self.chains * self.latents)}"
                 f"  ({_mib(self.latents)} per chain)",
                 f"  sampler state, in and out of a call                  {_mib(2 * self.chains * self.state)}"
                 f"  (gradients, momenta, mass matrix, adaptation: {_mib(self.state)} per chain)",
                 f"  intermediates of one iteration                       {_mib(self.chains * self.step)}"
                 f"  ({_mib(self.step)} per chain)",
                 f"  draws of {PIPELINED} blocks of {self.block} iterations{' ' * max(1, 25 - len(str(self.block)))}"
                 f"{_mib(self.draws)}"]
        return "\n".join(lines)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 / 10 else f"{n / 2**10:,.1f} KiB"


def _bytes(leaves) -> int:
    return int(sum(np.prod(x.shape, dtype=np.int64) * x.dtype.itemsize for x in jax.tree.leaves(leaves)))


def size(program: Program, bound: BoundData, devices: int, cfg: SamplerConfig, block: int | None = None) -> Sizing:
    """The memory per device of a run of `cfg` on `devices` devices in all (every process's), in
    `cfg.chain_groups` groups: the data's bytes from their shapes, the sampler state's from the kernel's own
    (traced for one chain, at one device's share of the plates), the intermediates from XLA's memory analysis of
    one sampler iteration for one chain, compiled on one device at that share (no mesh needed)."""
    if cfg.x64 and not jax.config.jax_enable_x64:
        with jax.enable_x64(True):
            return size(program, bound, devices, cfg, block)
    groups = cfg.chain_groups
    check_groups(devices, groups)
    per_group = devices // groups
    lay = layout_of(program.ir, bound.sizes, per_group)
    local = lay.local
    real = float_dtype()
    data = {v.name: jax.ShapeDtypeStruct(tuple(local[d] for d in v.phys),
                                         real if v.dtype == "real" else dtype_of_array(bound, v.name))
            for v in program.data_variables}
    masks = {d: jax.ShapeDtypeStruct((local[d],), jnp.bool_) for d in lay.padded}
    latents = program.latents
    z = [jax.ShapeDtypeStruct((1,) + unconstrained_shape(v.support, [local[d] for d in v.phys]), real)
         for v in latents]
    one = dataclasses.replace(cfg, chains=1, chain_groups=1)

    def kernel_at(data, masks, zs):
        fresh = {k: jnp.array(x, copy=True) for k, x in data.items()}  # as `programs.build` (TFP's bijector cache)
        target, _ = target_fn(lambda: program.pinned(fresh, local, masks, []))
        return make_kernel(target, one, list(zs), latents, [], local)

    def bootstrap(data, masks, zs):
        return kernel_at(data, masks, zs).bootstrap_results(list(zs))

    kr = jax.eval_shape(bootstrap, data, masks, z)
    state = _bytes(kr) + _bytes(z)

    def step(zs, kr, key, data, masks):
        return kernel_at(data, masks, zs).one_step(list(zs), kr, seed=key)

    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    analysis = jax.jit(step).lower(z, kr, key, data, masks).compile().memory_analysis()
    temp = int(getattr(analysis, "temp_size_in_bytes", 0) or 0)
    from .run import compiled_block_size

    per_chain = sum(int(np.prod([local[d] for d in v.phys])) for v in latents + program.outputs) + 16
    return Sizing(devices, groups, cfg.group_chains, _bytes(data) + _bytes(masks), _bytes(z), state, temp,
                  block or compiled_block_size(program, lay, cfg), per_chain * np.dtype(real).itemsize)


def dtype_of_array(bound: BoundData, name: str):
    """The dtype a data array has on the devices (ints and booleans as bound)."""
    return np.asarray(bound.arrays[name]).dtype


__all__ = ["Sizing", "size", "PIPELINED"]
