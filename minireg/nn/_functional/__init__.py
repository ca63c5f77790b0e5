"""Kernels behind minireg.nn.functional, one file per family.

``layers.py`` (linear, activations, losses); the normalisation kernels: ``standardize.py``
(the standardisation every norm shares, and the derivation of its gradient: read it
first), ``batch_norm.py``, ``instance_norm.py``, ``layer_norm.py``, ``group_norm.py``, and
their argument checks in ``norm_checks.py``; ``dropout.py``.
"""
