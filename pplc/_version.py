"""The version of pplc (one place: the package, the CLI and generated programs read it here)."""
__version__ = "0.1.0"
