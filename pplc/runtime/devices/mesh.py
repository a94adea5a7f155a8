"""Devices and the device mesh: N accelerators, or N host CPU devices when there are none."""
from __future__ import annotations

import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError

DATA_AXIS = "data"
CHAINS_AXIS = "chains"  # the mesh axis of chain groups (`--chain-groups`), only on a mesh of more than one group


def request_devices(n: int) -> None:
    """Ask JAX for at least `n` host CPU devices; must run before JAX starts its backend to take effect."""
    import jax

    if n < 1:
        raise PPLError(Diagnostic(f"--devices must be at least 1 (got {n})"))
    try:
        current = jax.config.jax_num_cpu_devices
        if current is None or current < n:  # never lower what the process (or a test) asked for
            jax.config.update("jax_num_cpu_devices", n)
    except Exception:  # the backend is already up; we check the count in `devices`
        pass


def devices(n: int):
    """The first `n` devices of this process, or a clear error saying how many there are and how to get more."""
    import jax

    if n < 1:
        raise PPLError(Diagnostic(f"--devices must be at least 1 (got {n})"))
    have = jax.local_devices()
    if len(have) < n:
        kind = have[0].platform.upper()
        hint = (f"JAX started with {len(have)} host devices before pplc could ask for {n}: in a fresh process "
                f"`pplc run --devices {n}` gets them, or set XLA_FLAGS=--xla_force_host_platform_device_count={n}"
                if kind == "CPU" else
                f"use --devices {len(have)}{' or fewer' if len(have) > 1 else ''}, or run on {n} host CPU devices "
                f"instead: "
                f"JAX_PLATFORMS=cpu pplc run ... --devices {n}")
        raise PPLError(Diagnostic(f"asked for {n} devices, but this process has {len(have)} {kind} device"
                                  f"{'s' if len(have) != 1 else ''}", hint=hint))
    return have[:n]


def global_devices(n: int) -> list:
    """The first `n` devices of every process, process by process (one process: `devices(n)`). Every process
    must ask for the same `n`; the mesh's data axis then runs over process 0's devices, then process 1's."""
    import jax

    if jax.process_count() == 1:
        return devices(n)
    devices(n)  # this process has enough
    out = []
    for p in range(jax.process_count()):
        mine = sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)
        if len(mine) < n:
            raise PPLError(Diagnostic(f"asked for {n} devices per process, but process {p} has {len(mine)}"))
        out += mine[:n]
    return out


def make_mesh(n: int, groups: int = 1):
    """The mesh over `n` devices of each process (all processes of a multi-process run): one axis (`data`, that
    sharded plates are split over), or with `groups` > 1 two, (`chains`, `data`) of shape (groups, devices per
    group): group g is the g-th run of consecutive devices (process 0's first), and runs its own chains."""
    from jax.sharding import Mesh

    devs = global_devices(n)
    if groups == 1:
        return Mesh(np.array(devs), (DATA_AXIS,))
    check_groups(len(devs), groups)
    return Mesh(np.array(devs).reshape(groups, len(devs) // groups), (CHAINS_AXIS, DATA_AXIS))


def check_groups(ndev: int, groups: int) -> None:
    """A clear error unless `groups` chain groups split `ndev` devices into groups of equal size."""
    if groups < 1 or ndev % groups:
        fits = [g for g in range(1, ndev + 1) if ndev % g == 0]
        raise PPLError(Diagnostic(f"--chain-groups {groups} does not divide the {ndev} devices of this run "
                                  f"into groups of equal size",
                                  hint=f"with {ndev} devices, --chain-groups is one of {', '.join(map(str, fits))} "
                                       f"(each group: devices / groups devices)"))


def groups_of(mesh) -> int:
    """The number of chain groups of a mesh (1 on a one-axis mesh)."""
    return int(mesh.shape[CHAINS_AXIS]) if CHAINS_AXIS in mesh.axis_names else 1


def is_main_process() -> bool:
    """Whether this is JAX process 0 (the one that prints and writes files)."""
    try:
        import jax

        return jax.process_index() == 0
    except Exception:  # noqa: BLE001 - no backend yet: a single process
        return True
