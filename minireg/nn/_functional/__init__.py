"""Kernels behind minireg.nn.functional, one file per family."""
