"""ArviZ, imported without its once-a-day FutureWarning about its coming refactor (not the user's business)."""
from __future__ import annotations

import warnings

REFACTOR_WARNING = r"\s*ArviZ is undergoing a major refactor"  # the start of that one warning's message


def arviz():
    """The `arviz` module; importing it here hides exactly ArviZ's refactor FutureWarning, nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=REFACTOR_WARNING, category=FutureWarning)
        import arviz as az
    return az
