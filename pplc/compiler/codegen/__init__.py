"""IR to a readable, runnable TFP-on-JAX Python module (the sites' layers come from `compiler.lower`)."""
from __future__ import annotations

from .. import ir
from .format import format_module
from .module import ModuleGen
from .names import GENERATED_NAMES, py, safe_text


def generate(model: ir.Model, source_name: str | None = None) -> str:
    """The generated Python module's source text, formatted by black."""
    return format_module(ModuleGen(model, source_name or model.filename).generate())


__all__ = ["generate", "py", "safe_text", "GENERATED_NAMES"]
