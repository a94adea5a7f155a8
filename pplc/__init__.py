"""pplc: a probabilistic programming language compiled to sharded TFP-on-JAX programs."""
import os as _os

HOST_DEVICES = 8  # host CPU devices a process gets when it imports pplc before JAX starts (and asked for none)


def _reserve_host_devices(n: int = HOST_DEVICES) -> None:
    """Ask JAX for `n` host CPU devices when its backend has not started and neither `jax_num_cpu_devices` nor
    XLA_FLAGS says how many (then that count stands). JAX fixes the count when its backend starts: with this,
    `devices=4` after a run on one device works in the same process (as in the README's snippet)."""
    import jax

    if "xla_force_host_platform_device_count" in _os.environ.get("XLA_FLAGS", ""):
        return
    if jax.config.jax_num_cpu_devices not in (None, -1):  # the process said how many
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except Exception:  # noqa: BLE001 - the backend has started: the count is fixed (mesh.devices says so)
        pass


_reserve_host_devices()

from ._version import __version__  # noqa: E402
from .api import Model, compilation_cache, compile, compile_file  # noqa: E402
from .dsl.diagnostics import Diagnostic, PPLError  # noqa: E402
from .runtime.output import Fit  # noqa: E402
from .runtime.sampling.hostloop import Interrupted  # noqa: E402

__all__ = ["compile", "compile_file", "compilation_cache", "Model", "Fit", "Interrupted", "Diagnostic", "PPLError", "__version__"]
