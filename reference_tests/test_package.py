"""The package itself: numpy-only import, the public names of API.md, typing marker."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

import pytest

import minireg

API = {
    "minireg": ["Parameter", "manual_seed"],
    "minireg.optim": [
        "Optimizer",
        "SGD",
        "Adagrad",
        "Adadelta",
        "RMSprop",
        "Adam",
        "AdamW",
        "NAdam",
        "RAdam",
    ],
    "minireg.optim.lr_scheduler": [
        "LRScheduler",
        "LambdaLR",
        "MultiplicativeLR",
        "StepLR",
        "MultiStepLR",
        "ConstantLR",
        "LinearLR",
        "ExponentialLR",
        "PolynomialLR",
        "CosineAnnealingLR",
        "CosineAnnealingWarmRestarts",
        "OneCycleLR",
        "CyclicLR",
        "SequentialLR",
        "ChainedScheduler",
        "ReduceLROnPlateau",
    ],
    "minireg.nn.init": [
        "calculate_gain",
        "uniform_",
        "normal_",
        "trunc_normal_",
        "constant_",
        "ones_",
        "zeros_",
        "eye_",
        "dirac_",
        "xavier_uniform_",
        "xavier_normal_",
        "kaiming_uniform_",
        "kaiming_normal_",
        "orthogonal_",
        "sparse_",
        "calculate_fan_in_and_fan_out",
    ],
    "minireg.nn": [
        "Module",
        "Linear",
        "ReLU",
        "LeakyReLU",
        "Sigmoid",
        "Tanh",
        "Identity",
        "Flatten",
        "Sequential",
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "LayerNorm",
        "GroupNorm",
        "InstanceNorm1d",
        "InstanceNorm2d",
        "Dropout",
        "Dropout2d",
        "MSELoss",
        "L1Loss",
        "CrossEntropyLoss",
        "BCEWithLogitsLoss",
        "Parameter",
    ],
    "minireg.nn.functional": ["batch_norm", "layer_norm", "group_norm", "instance_norm", "dropout"],
    "minireg.nn.utils": [
        "clip_grad_norm_",
        "clip_grad_value_",
        "get_total_norm",
        "clip_grads_with_norm_",
    ],
    "minireg.regularization": ["L1", "L2", "ElasticNet"],
}


@pytest.mark.parametrize("module", sorted(API))
def test_public_names_of_api_md_exist(module):
    mod = importlib.import_module(module)
    missing = [name for name in API[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lacks {missing}"


def test_import_minireg_needs_numpy_alone():
    code = (
        "import sys, minireg, minireg.nn.functional, minireg.optim.lr_scheduler;"
        "heavy = sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('torch', 'matplotlib', 'scipy'));"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_ships_py_typed():
    assert (pathlib.Path(minireg.__file__).parent / "py.typed").is_file()
