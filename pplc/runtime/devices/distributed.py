"""Many processes (hosts) as one mesh: `jax.distributed`, from explicit flags or a cluster's environment."""
from __future__ import annotations

import os

from ...dsl.diagnostics import Diagnostic, PPLError
from .mesh import request_devices

HEARTBEAT_S = 30  # a process not heard from for this long is declared dead, and the others stop


def cluster_env() -> str | None:
    """The cluster launcher whose environment JAX detects by itself, when it started several processes: Slurm
    (`srun`) or Open MPI (`mpirun`); None otherwise (one process)."""
    if int(os.environ.get("SLURM_NTASKS", os.environ.get("SLURM_NPROCS", "1")) or 1) > 1 \
            and "SLURM_JOB_ID" in os.environ:
        return "Slurm"
    if int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1:
        return "Open MPI"
    return None


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               devices: int | None = None, heartbeat_s: int = HEARTBEAT_S) -> bool:
    """Join this process to a run of several: `jax.distributed.initialize(coordinator, num_processes,
    process_id)`, or with no arguments under a cluster launcher JAX detects (see `cluster_env`). Must come before
    anything starts JAX's backend; `devices` (this process's device count) is asked of JAX first. CPU devices
    talk over gloo. Does nothing (False) for a single process or when already initialized; True when it joined."""
    import jax

    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise PPLError(Diagnostic("several processes need all of --coordinator HOST:PORT, --num-processes P and "
                                  "--process-id I (or none of them, under Slurm or Open MPI)"))
    if all(given):
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise PPLError(Diagnostic(f"--process-id must be in 0..{num_processes - 1} and --num-processes at "
                                      f"least 1 (got --process-id {process_id}, --num-processes {num_processes})"))
        if ":" not in coordinator:
            raise PPLError(Diagnostic(f"--coordinator must be HOST:PORT (got {coordinator!r})",
                                      hint="the address of process 0, e.g. --coordinator 10.0.0.1:1234"))
    elif cluster_env() is None:
        return False
    if jax.distributed.is_initialized():
        return False
    if devices is not None:
        request_devices(devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = dict(heartbeat_timeout_seconds=int(heartbeat_s))
    if all(given):
        if num_processes == 1:
            return False
        kwargs.update(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    try:
        jax.distributed.initialize(**kwargs)
    except RuntimeError as e:
        raise PPLError(Diagnostic(f"could not join the run of several processes: {str(e).splitlines()[0]}",
                                  hint="start every process with the same --coordinator and --num-processes, "
                                       "each with its own --process-id, before any of them times out")) from None
    return True


def process_count() -> int:
    import jax

    return jax.process_count()


def gather(value: int) -> list[int]:
    """An int from every process, in process order (one process: its own)."""
    import jax

    if jax.process_count() == 1:
        return [int(value)]
    import numpy as np
    from jax.experimental import multihost_utils

    return [int(x) for x in np.ravel(multihost_utils.process_allgather(np.int64(value)))]


def agree(status: int) -> int:
    """The exit status every process of a run ends with: the largest of theirs (one process: its own)."""
    import jax

    if jax.process_count() == 1:
        return status
    import numpy as np
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.int32(status))))
