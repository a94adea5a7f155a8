"""Sampling on the mesh: settings, Stan's warmup around TFP's NUTS/HMC, the per-device programs, the host loop."""
