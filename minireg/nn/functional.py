"""The pure kernels behind the layers (``torch.nn.functional``'s counterpart).

Each forward function returns its output (and, where backward needs more than the
input, what it needs); each ``*_backward`` function takes the upstream gradient and
returns the gradients.  No Module is involved: these are the equations themselves.
The kernels live in ``minireg/nn/_functional/`` by family and are gathered here (the
normalisation kernels one file per norm, after ``standardize.py``, their shared derivation).
"""

from minireg.nn._functional.batch_norm import *  # noqa: F403
from minireg.nn._functional.dropout import *  # noqa: F403
from minireg.nn._functional.group_norm import *  # noqa: F403
from minireg.nn._functional.instance_norm import *  # noqa: F403
from minireg.nn._functional.layer_norm import *  # noqa: F403
from minireg.nn._functional.layers import *  # noqa: F403
