r"""DeepONet for the antiderivative operator :math:`G(v)(y) = \int_0^y v(s)\, ds` on ``[0, 1]``.

Input functions are Gaussian random fields in the cosine basis (:mod:`mperror.problems.grf`),
:math:`v = \sum_{k<K} c_k \phi_k` with :math:`\phi_0 = 1`, :math:`\phi_k = \sqrt 2 \cos(k\pi s)`
and :math:`c_k \sim N(0, \sigma^2 (\pi^2 k^2 + \tau^2)^{-\alpha})`. The reference is the exact
antiderivative of that truncated series,
:math:`c_0 y + \sum_{k\ge1} c_k \sqrt 2 \sin(k\pi y)/(k\pi)`: no quadrature, so its only
error is float64 round-off.

The network is an unstacked DeepONet: a branch MLP maps the ``m`` sensor values
:math:`v(x_1), \dots, v(x_m)` to ``p`` coefficients, a trunk MLP maps ``y`` to ``p`` basis
values, and :math:`G(v)(y) \approx \langle \text{branch}(v), \text{trunk}(y)\rangle + b_0`.
The training loss is the mean over functions of the relative L2 error on the evaluation grid:
Hayford et al. (2024) needed it in float16 because the mean squared error overflowed
(REFERENCES.md section 4). The sizes below are ours (the paper's DeepONet sizes are not
recorded in REFERENCES.md); they are stored in ``config``.

>>> inst = DeepONetAntiderivative().build("quick", seed=0)
>>> inst.config["n_sensors"], inst.config["n_train_functions"]
(100, 200)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mperror.problems._base import (
    ProblemInstance,
    TrainDefaults,
    check_seed,
    check_size,
    generator,
    param_dtype,
)
from mperror.problems._nets import MLP
from mperror.problems.grf import (
    SpectralGRF,
    cosine_antiderivative_1d,
    cosine_values_1d,
    neumann_1d,
)

__all__ = ["FIELD", "DeepONet", "DeepONetAntiderivative", "DeepONetInstance", "relative_errors"]

#: The input-function law: constant mode of unit standard deviation (sigma = tau^alpha), mode
#: ``k`` with standard deviation ``25 / (pi^2 k^2 + 25)``; 32 modes.
FIELD = SpectralGRF(alpha=2.0, tau=5.0, sigma=25.0, n_modes=32)
_N_SENSORS = 100
_N_EVAL = 100
_WIDTH = 40
# (training functions, test functions) per size.
_FUNCTIONS = {"quick": (200, 200), "full": (1000, 1000)}
_DEFAULTS = {
    "quick": TrainDefaults(lr=1e-3, iterations=2000, adam_eps=1e-5, eval_every=100),
    "full": TrainDefaults(lr=1e-3, iterations=10_000, adam_eps=1e-5, eval_every=100),
}


class DeepONet(nn.Module):
    """Unstacked DeepONet: ``branch(v) @ trunk(y).T + b0``, shape ``(n_functions, n_points)``.

    The branch's output layer is linear; the trunk's is followed by the activation too (as in
    DeepXDE). The scalar bias ``b0`` starts at zero. It is the first parameter (a module's own
    parameters come before its submodules'), whose dtype a loss reads: cast the whole model
    (``model.to(dtype)``), as the trainer does, not the branch and trunk alone.
    """

    def __init__(
        self,
        branch_layers: Sequence[int],
        trunk_layers: Sequence[int],
        activation: str = "tanh",
        *,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        if branch_layers[-1] != trunk_layers[-1]:
            raise ValueError(
                "branch_layers and trunk_layers must end in the same width p, got "
                f"{branch_layers[-1]} and {trunk_layers[-1]}"
            )
        self.branch = MLP(branch_layers, activation, generator=generator)
        self.trunk = MLP(trunk_layers, activation, generator=generator, activate_last=True)
        self.bias = nn.Parameter(torch.zeros((), dtype=torch.float32))

    def forward(self, sensors: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.branch(sensors) @ self.trunk(y).T + self.bias


def relative_errors(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-function relative L2 errors ``||pred_i - target_i|| / ||target_i||`` along dim 1."""
    return torch.linalg.vector_norm(prediction - target, dim=1) / torch.linalg.vector_norm(
        target, dim=1
    )


class DeepONetInstance(ProblemInstance):
    """Mean relative L2 error over training functions; test error likewise over test functions."""

    def __init__(
        self,
        *,
        sensors_train: torch.Tensor,
        g_train: torch.Tensor,
        sensors_test: torch.Tensor,
        g_test: torch.Tensor,
        y: torch.Tensor,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sensors_train, self.g_train = sensors_train, g_train
        self.sensors_test, self.g_test = sensors_test, g_test
        self.y = y

    def loss(self, model: nn.Module) -> torch.Tensor:
        dtype = param_dtype(model)
        prediction = model(self.sensors_train.to(dtype), self.y.to(dtype))
        return relative_errors(prediction, self.g_train.to(dtype)).mean()

    def test_error(self, model: nn.Module) -> float:
        """The mean over test functions of the per-function relative L2 error (float64)."""
        dtype = param_dtype(model)
        with torch.no_grad():
            prediction = model(self.sensors_test.to(dtype), self.y.to(dtype))
        errors = relative_errors(prediction.to(torch.float64), self.g_test)
        return errors.mean().item()


class DeepONetAntiderivative:
    """The antiderivative operator learned by an unstacked DeepONet.

    Both sizes: ``m = 100`` equispaced sensors on ``[0, 1]``, 100 equispaced evaluation points
    ``y`` (the same for every function), branch [100, 40, 40] and trunk [1, 40, 40] tanh,
    Glorot-uniform weights, Adam with learning rate 1e-3 and epsilon 1e-5, full batch.
    ``"full"``: 1,000 training and 1,000 test functions, 10,000 iterations; ``"quick"``: 200 and
    200, 2,000 iterations. Training functions depend on the seed; test functions do not, so test
    errors of different seeds are comparable.
    """

    name = "deeponet"
    revision = 1

    def defaults(self, size: str = "quick") -> TrainDefaults:
        """The training settings of ``size``, without building the problem."""
        return _DEFAULTS[check_size(size)]

    def build(
        self, size: str = "quick", *, seed: int = 0, device: str | torch.device = "cpu"
    ) -> DeepONetInstance:
        size = check_size(size)
        seed = check_seed(seed)
        n_train, n_test = _FUNCTIONS[size]
        x = torch.linspace(0.0, 1.0, _N_SENSORS, dtype=torch.float64)
        y = torch.linspace(0.0, 1.0, _N_EVAL, dtype=torch.float64)
        coef_train = neumann_1d(FIELD, n_train, generator=generator(seed, 1))
        coef_test = neumann_1d(FIELD, n_test, generator=generator(0, 2))
        branch = (_N_SENSORS, _WIDTH, _WIDTH)
        trunk = (1, _WIDTH, _WIDTH)
        model = DeepONet(branch, trunk, "tanh", generator=generator(seed, 0))
        config = {
            "problem": self.name,
            "size": size,
            "seed": seed,
            "operator": "G(v)(y) = int_0^y v(s) ds on [0, 1]",
            "input_functions": "cosine-basis GRF N(0, sigma^2 (-Laplacian + tau^2)^-alpha)",
            "grf": FIELD.to_dict(),
            "n_sensors": _N_SENSORS,
            "sensors": "equispaced on [0, 1] including the endpoints",
            "n_eval_points": _N_EVAL,
            "eval_points": "equispaced on [0, 1] including the endpoints, shared by all functions",
            "n_train_functions": n_train,
            "n_test_functions": n_test,
            "test_functions": "drawn from a seed-independent stream",
            "branch_layers": list(branch),
            "trunk_layers": list(trunk),
            "activation": "tanh",
            "initializer": "glorot_uniform, zero bias",
            "reference": "exact antiderivative of the truncated cosine series, float64",
            "loss": "mean over functions of the relative L2 error",
            "test_error": "mean over test functions of the relative L2 error",
        }
        return DeepONetInstance(
            name=self.name,
            size=size,
            model=model.to(device),
            defaults=_DEFAULTS[size],
            config=config,
            sensors_train=cosine_values_1d(coef_train, x).to(device),
            g_train=cosine_antiderivative_1d(coef_train, y).to(device),
            sensors_test=cosine_values_1d(coef_test, x).to(device),
            g_test=cosine_antiderivative_1d(coef_test, y).to(device),
            y=y.unsqueeze(1).to(device),
        )
