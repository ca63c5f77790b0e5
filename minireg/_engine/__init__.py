"""The speed engine: everything that makes minireg fast and that a student can skip.

Read this last.  The kernels (``minireg.optim.adam.adam``, ``minireg.nn.functional.batch_norm``,
...) are textbook NumPy: one line per equation, fresh arrays for intermediates.  This
package holds what makes them fast without changing a single bit of their results:

- ``blocking``: run an elementwise kernel over cache-sized slices, shared among threads,
  with per-thread scratch arrays instead of temporaries;
- in-place *twins* of the kernels that need them, each proven bit-identical to its
  textbook kernel by a property test in ``reference_tests``;
- flat parameter buffers and the optimizers' one-call-per-group fast path.

No kernel imports this package: the bookkeeping around a kernel (``Optimizer.step``, a
module's class, a numerics helper) decides whether to use it.
"""
