"""The speed engine: everything that makes minireg fast and that a student can skip.

Step 8 of the reading path, the last.  The kernels (``minireg.optim.adam.adam``,
``minireg.nn.functional.batch_norm``, ...) are textbook NumPy: one line per equation,
fresh arrays for intermediates.  This package makes them fast without changing a single
bit of their results:

- ``blocking``: run an elementwise kernel over cache-sized slices, shared among threads
  (``minireg.set_num_threads``), with per-thread scratch arrays instead of temporaries;
- ``optim_twins``, ``norm_twins``: in-place *twins* of the optimizer and normalisation
  kernels, each proven bit-identical to its textbook kernel by a property test
  (``reference_tests/test_engine_twins.py``, ``test_norm_twins.py``);
- ``optim``: the optimizers' fast step -- the blocked twins, and one kernel call for a
  whole group that lies in flat buffers;
- ``flat``: flat parameter buffers (``minireg.nn.utils.flatten_parameters``) and the one
  place that recognises them;
- ``clip``: gradient norms and scaling over a flat gradient buffer, on threads;
- ``norms``: the float64-accurate sums behind the normalisation statistics;
- ``random_bits``: dropout's Bernoulli mask from as few random bits as it needs.

No kernel imports this package: the bookkeeping around a kernel (``Optimizer.step``, a
layer's class, a ``minireg.numerics`` helper) decides whether to use it.
"""
