"""Devices: the mesh of accelerators (or host CPUs) and the one SPMD entry over it."""
