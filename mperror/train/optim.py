"""The optimisers a run can use: torch's Adam, and Adam with Keras's epsilon placement.

The two differ only in where epsilon enters. With ``m``, ``v`` the moment estimates after step
``t`` and ``c1 = 1 - beta1**t``, ``c2 = 1 - beta2**t``:

* ``"adam"`` (torch, and Kingma & Ba's Algorithm 1):
  ``theta -= lr (m / c1) / (sqrt(v / c2) + eps)``;
* ``"adam-keras"`` (TensorFlow's and Keras's Adam, the "epsilon hat" form of Kingma & Ba's
  section 2, which DeepXDE's TensorFlow backend trains with):
  ``theta -= lr (sqrt(c2) / c1) m / (sqrt(v) + eps)``.

Multiplying the Keras step's numerator and denominator by ``1 / sqrt(c2)`` shows it is torch's
step with epsilon ``eps / sqrt(c2)``: :class:`KerasAdam` is :class:`torch.optim.Adam` with that
epsilon set before every step. The two forms agree in exact arithmetic, not bit for bit (torch
divides ``sqrt(v)`` by ``sqrt(c2)`` where Keras scales the learning rate). Keras's epsilon is
``1 / sqrt(c2)`` times larger than torch's early on (31.6x at step 1 for ``beta2 = 0.999``,
1.26x at step 1,000), so its first steps are damped more; the two meet as ``t`` grows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["OPTIMIZERS", "KerasAdam", "check_optimizer", "make_optimizer"]

OPTIMIZERS = ("adam", "adam-keras")


class KerasAdam(torch.optim.Adam):
    """Adam with epsilon added to the root of the uncorrected second moment, as Keras does.

    Takes :class:`torch.optim.Adam`'s arguments (``amsgrad`` and ``capturable`` excepted); see
    the module docstring for the update and its equivalence with torch's.

    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = KerasAdam([w], lr=0.1, eps=1e-3)
    >>> w.grad = torch.tensor([2.0])
    >>> opt.step()
    >>> # step 1: m = 0.2, v = 0.004, so 0.1 (sqrt(0.001) / 0.1) 0.2 / (sqrt(0.004) + 1e-3)
    >>> round(1.0 - w.item(), 6)
    0.098443
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, eps: float = 1e-7, **kwargs) -> None:
        for name in ("amsgrad", "capturable"):
            if kwargs.get(name):
                raise ValueError(f"KerasAdam does not support {name}=True")
        super().__init__(params, lr=lr, eps=eps, **kwargs)
        for group in self.param_groups:
            group["keras_eps"] = group["eps"]

    def step(self, closure=None):
        for group in self.param_groups:
            beta2 = group["betas"][1]
            counts = {_steps(self.state[p]) for p in group["params"] if p.grad is not None}
            if len(counts) > 1:
                # Keras counts iterations once for all variables, torch per parameter; one
                # epsilon per group is Keras's update only while the counts agree.
                raise ValueError(
                    f"KerasAdam needs the parameters of a group that step to have taken equally "
                    f"many steps, got step counts {sorted(counts)} (some had no gradient at "
                    "earlier steps); put them in separate groups"
                )
            t = 1 + max(counts, default=0)
            group["eps"] = group["keras_eps"] / math.sqrt(1.0 - beta2**t)
        return super().step(closure)


def _steps(state: dict) -> int:
    """Steps taken so far by the parameter with optimiser ``state`` (0 before the first)."""
    step = state.get("step")
    return 0 if step is None else int(step)


def check_optimizer(name: object) -> None:
    """Refuse a name that is not one of :data:`OPTIMIZERS`, naming the allowed ones."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_optimizer(
    name: str, params: list[torch.nn.Parameter], *, lr: float, eps: float
) -> torch.optim.Optimizer:
    """The optimiser ``name`` (one of :data:`OPTIMIZERS`) over ``params``."""
    check_optimizer(name)
    adam = KerasAdam if name == "adam-keras" else torch.optim.Adam
    return adam(params, lr=lr, eps=eps)
