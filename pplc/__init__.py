"""pplc: a probabilistic programming language compiled to sharded TFP-on-JAX programs."""
__version__ = "0.1.0"

from .api import Model, compile, compile_file  # noqa: E402
from .dsl.diagnostics import Diagnostic, PPLError  # noqa: E402
from .runtime.hostloop import Interrupted  # noqa: E402
from .runtime.output import Fit  # noqa: E402

__all__ = ["compile", "compile_file", "Model", "Fit", "Interrupted", "Diagnostic", "PPLError", "__version__"]
