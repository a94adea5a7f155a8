"""A run's outputs: the `Fit` and its files, summaries and warnings, plots, and progress reports."""
from .fit import Fit

__all__ = ["Fit"]
