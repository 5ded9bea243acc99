r"""The diffusion PINN of Hayford et al. (2024)'s Theorem 1 validation run.

PDE on :math:`x \in [-1, 1]`, :math:`t \in [0, 1]`:

.. math::

    u_t = u_{xx} - e^{-t} \left(\sin(\pi x) - \pi^2 \sin(\pi x)\right),

with exact solution :math:`u = \sin(\pi x) e^{-t}` (then :math:`u_t = -\sin(\pi x) e^{-t}` and
:math:`u_{xx} = -\pi^2 \sin(\pi x) e^{-t}`, so the right-hand side is
:math:`-\pi^2 \sin(\pi x) e^{-t} - e^{-t}\sin(\pi x) + \pi^2 e^{-t}\sin(\pi x) = u_t`). The
initial condition :math:`u(x, 0) = \sin(\pi x)` and the boundary values :math:`u(\pm 1, t) = 0`
are built into the network: :math:`u = t (1 - x^2) N(x, t) + \sin(\pi x)`, so the loss is the
mean squared PDE residual alone (REFERENCES.md section 4).

>>> inst = Diffusion().build("quick", seed=0)
>>> inst.config["n_interior"], inst.config["n_test"]
(500, 10000)
"""

from __future__ import annotations

import math
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
    relative_l2,
)
from mperror.problems._nets import MLP

__all__ = ["Diffusion", "DiffusionInstance", "HardConstrained", "exact", "residual", "source"]

_LAYERS = (2, 32, 32, 32, 1)
_N_INTERIOR = 500
_N_TEST_PER_AXIS = 100  # a 100 x 100 grid: the paper's 10,000 test points
_DEFAULTS = {
    "quick": TrainDefaults(lr=1e-3, iterations=500, adam_eps=1e-5, eval_every=25),
    "full": TrainDefaults(lr=1e-3, iterations=2000, adam_eps=1e-5, eval_every=10),
}


def exact(xt: torch.Tensor) -> torch.Tensor:
    """The exact solution ``sin(pi x) exp(-t)`` at points ``xt[:, 0] = x``, ``xt[:, 1] = t``."""
    x, t = xt[:, 0:1], xt[:, 1:2]
    return torch.sin(math.pi * x) * torch.exp(-t)


def source(xt: torch.Tensor) -> torch.Tensor:
    """The forcing ``-exp(-t) (sin(pi x) - pi^2 sin(pi x))`` of ``u_t = u_xx + source``."""
    x, t = xt[:, 0:1], xt[:, 1:2]
    s = torch.sin(math.pi * x)
    return -torch.exp(-t) * (s - math.pi**2 * s)


def residual(u_of: nn.Module, xt: torch.Tensor, forcing: torch.Tensor) -> torch.Tensor:
    """``u_t - u_xx - forcing`` at ``xt`` (a leaf that requires grad), by double backward.

    ``u_of`` maps ``(n, 2)`` points to ``(n, 1)`` values; the derivatives keep their graph
    (``create_graph=True``) so the residual can be backpropagated to ``u_of``'s parameters.
    """
    u = u_of(xt)
    du = torch.autograd.grad(u, xt, torch.ones_like(u), create_graph=True)[0]
    u_x, u_t = du[:, 0:1], du[:, 1:2]
    u_xx = torch.autograd.grad(u_x, xt, torch.ones_like(u_x), create_graph=True)[0][:, 0:1]
    return u_t - u_xx - forcing


class HardConstrained(nn.Module):
    """``u(x, t) = t (1 - x^2) N(x, t) + sin(pi x)``: exact initial and boundary values."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        x, t = xt[:, 0:1], xt[:, 1:2]
        return t * (1 - x * x) * self.net(xt) + torch.sin(math.pi * x)


class DiffusionInstance(ProblemInstance):
    """Mean squared PDE residual on the interior points; test error on a 100 x 100 grid."""

    def __init__(
        self,
        *,
        xt_interior: torch.Tensor,
        forcing: torch.Tensor,
        xt_test: torch.Tensor,
        u_test: torch.Tensor,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.xt_interior, self.forcing = xt_interior, forcing
        self.xt_test, self.u_test = xt_test, u_test

    def loss(self, model: nn.Module) -> torch.Tensor:
        dtype = param_dtype(model)
        xt = self.xt_interior.detach().to(dtype).requires_grad_(True)
        r = residual(model, xt, self.forcing.to(dtype))
        return (r * r).mean()

    def test_error(self, model: nn.Module) -> float:
        with torch.no_grad():
            prediction = model(self.xt_test.to(param_dtype(model)))
        return relative_l2(prediction, self.u_test)


class Diffusion:
    """The diffusion PINN with hard-constrained initial and boundary values.

    Both sizes use the paper's 500 interior points (uniform random, seeded), 10,000 test points
    (a 100 x 100 grid including the edges), MLP [2, 32, 32, 32, 1] tanh with Glorot-uniform
    weights, Adam with learning rate 1e-3; ``"full"`` runs the paper's 2,000 iterations,
    ``"quick"`` the first 500 (where the paper sees the gradient norm above
    Theorem 1's threshold). Adam's epsilon is 1e-5 at both sizes and every precision.
    """

    name = "diffusion"
    revision = 1

    def defaults(self, size: str = "quick") -> TrainDefaults:
        """The training settings of ``size``, without building the problem."""
        return _DEFAULTS[check_size(size)]

    def build(
        self, size: str = "quick", *, seed: int = 0, device: str | torch.device = "cpu"
    ) -> DiffusionInstance:
        size = check_size(size)
        seed = check_seed(seed)
        low = torch.tensor([-1.0, 0.0], dtype=torch.float64)
        high = torch.tensor([1.0, 1.0], dtype=torch.float64)
        unit = torch.rand(_N_INTERIOR, 2, generator=generator(seed, 1), dtype=torch.float64)
        xt_interior = low + (high - low) * unit
        x = torch.linspace(-1.0, 1.0, _N_TEST_PER_AXIS, dtype=torch.float64)
        t = torch.linspace(0.0, 1.0, _N_TEST_PER_AXIS, dtype=torch.float64)
        xt_test = torch.cartesian_prod(x, t)
        model = HardConstrained(MLP(_LAYERS, "tanh", generator=generator(seed, 0)))
        config = {
            "problem": self.name,
            "size": size,
            "seed": seed,
            "pde": "u_t = u_xx - exp(-t) (sin(pi x) - pi^2 sin(pi x))",
            "exact_solution": "sin(pi x) exp(-t)",
            "domain": {"x": [-1.0, 1.0], "t": [0.0, 1.0]},
            "output_transform": "u = t (1 - x^2) N(x, t) + sin(pi x)",
            "layers": list(_LAYERS),
            "activation": "tanh",
            "initializer": "glorot_uniform, zero bias",
            "n_interior": _N_INTERIOR,
            "interior_points": "uniform random on the domain, seeded",
            "n_test": xt_test.shape[0],
            "test_points": f"{_N_TEST_PER_AXIS} x {_N_TEST_PER_AXIS} grid including the edges",
            "loss": "mean squared PDE residual",
            "test_error": "relative L2 error against the exact solution on the test points",
        }
        return DiffusionInstance(
            name=self.name,
            size=size,
            model=model.to(device),
            defaults=_DEFAULTS[size],
            config=config,
            xt_interior=xt_interior.to(device),
            forcing=source(xt_interior).to(device),
            xt_test=xt_test.to(device),
            u_test=exact(xt_test).to(device),
        )
