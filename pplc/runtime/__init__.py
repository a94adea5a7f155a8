"""Running compiled models: devices, data, the log density, sampling, predictions, outputs."""
