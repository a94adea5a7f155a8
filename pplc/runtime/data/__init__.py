"""Data at the boundary: read files (`load`), check and bind them to a model (`bind`), lay them out on a mesh."""
from .bind import DTYPES, BoundData, as_bound, bind, dtype_of
from .layout import Layout, Placement, layout, on_mesh, spec_of
from .load import META, load
from .transformed import bind_program

__all__ = ["DTYPES", "META", "BoundData", "as_bound", "bind", "dtype_of", "Layout", "Placement", "layout", "on_mesh", "spec_of", "load",
           "bind_program"]
