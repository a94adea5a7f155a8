"""pplc: a probabilistic programming language compiled to sharded TFP-on-JAX programs."""
from ._version import __version__
from .api import Model, compile, compile_file
from .dsl.diagnostics import Diagnostic, PPLError
from .runtime.output import Fit
from .runtime.sampling.hostloop import Interrupted

__all__ = ["compile", "compile_file", "Model", "Fit", "Interrupted", "Diagnostic", "PPLError", "__version__"]
