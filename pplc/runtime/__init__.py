"""Running compiled models: devices, data, SPMD entry, sampling, diagnostics, output, CLI."""
