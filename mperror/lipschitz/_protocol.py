"""The contract every Lipschitz estimator meets, and the record it returns."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch

from mperror._records import Record

__all__ = ["KINDS", "Kind", "LipschitzEstimate", "LipschitzEstimator", "LossFn"]

#: A closure that recomputes a scalar loss from the live tensors in ``params`` on every call.
LossFn = Callable[[], torch.Tensor]

Kind = Literal["lower", "estimate"]
#: ``"lower"``: provably at most the gradient's Lipschitz constant on the region the estimator
#: looked at (in exact arithmetic), with no claim of getting close to it. ``"estimate"``: converges
#: to ``‖∇²f(θ)‖₂`` at the point itself as the iteration proceeds (Rayleigh and Ritz values never
#: exceed it in exact arithmetic, so this is not an upper bound either).
KINDS: tuple[Kind, ...] = ("lower", "estimate")


@dataclass(frozen=True, kw_only=True)
class LipschitzEstimate(Record):
    """What an estimator found for the Lipschitz constant L of a loss gradient.

    For a C² loss f, L = sup ‖∇²f‖₂ over the region of interest, and ‖∇²f(θ)‖₂ = max |λᵢ| over
    the Hessian's eigenvalues at θ. **No estimator here is a certified upper bound**: power
    iteration and Lanczos approach ‖∇²f(θ)‖₂ from below at one point; secants and sampled
    quotients are lower estimates of the local constant. A bound that needs L (Theorem 1 of
    Hayford et al. 2024) is only as safe as the estimate fed to it.

    Attributes:
        value: the estimate of L (finite, >= 0).
        kind: ``"lower"`` or ``"estimate"`` (see :data:`KINDS`).
        method: which estimator produced it, e.g. ``"power_iteration"``.
        evaluations: Hessian-vector products (power, Lanczos) or gradient evaluations
            (secant, sampled) spent.
        converged: whether an iterative method met its tolerance; ``None`` for sampling
            estimators, which have no convergence test.
        eigenvalue: the signed dominant eigenvalue where the method finds one (its Rayleigh or
            Ritz value), else ``None``.
        residual: ``‖Hv - λv‖ / value`` for the returned unit vector v where the method has one:
            small means v is close to an eigenvector (not necessarily the dominant one).
        history: the last few iterates or running values (at most 20), oldest first.
        hvp: the Hessian-vector product actually used (``"forward_over_reverse"`` or
            ``"double_backward"``), ``None`` for gradient-only estimators.
    """

    value: float
    kind: Kind
    method: str
    evaluations: int
    converged: bool | None
    eigenvalue: float | None = None
    residual: float | None = None
    history: tuple[float, ...] = ()
    hvp: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}")
        if not (math.isfinite(self.value) and self.value >= 0.0):
            raise ValueError(f"value must be finite and >= 0; got {self.value!r}")


@runtime_checkable
class LipschitzEstimator(Protocol):
    """Estimates the Lipschitz constant of ∇loss at the current parameters.

    Contract, checked for every registered estimator by ``tests/lipschitz/test_contract.py``:

    - Called as ``estimator(loss_fn, params)``. ``loss_fn()`` takes no arguments and recomputes a
      one-element floating tensor from the live tensors in ``params`` each time it is called (no
      graph or derived tensor cached between calls); it may itself differentiate, e.g. a PINN
      residual built with ``torch.autograd.grad(..., create_graph=True)``. It must be a
      deterministic function of ``params`` with no side effects: a model in eval mode, no
      dropout masks drawn per call, no batch-norm running statistics updated. Every estimator
      calls it many times, at points other than the current one; a fresh dropout mask per call
      makes a secant measure the masks' difference, not the gradient's change (quotients
      thousands of times L), and a batch-norm layer in train mode would record statistics of
      the perturbed points.
    - ``params`` is a non-empty sequence (or iterable) of distinct leaf tensors with a real
      floating dtype, ``requires_grad=True`` and one device, e.g. ``list(model.parameters())``.
      L is taken with respect to their concatenation.
    - Returns a :class:`LipschitzEstimate` with a finite ``value >= 0``.
    - Leaves every tensor in ``params`` as it found it: bitwise-equal values and the same
      ``requires_grad``, also when ``loss_fn`` raises. Gradients come from
      ``torch.autograd.grad``, so ``.grad`` is never touched. Writing to a tensor bumps its
      version counter, so an autograd graph that saved ``params`` before the call may not be
      usable after it: call estimators between optimiser steps, not between forward and
      backward.
    - Randomness comes only from the estimator's ``generator`` argument (torch's global CPU
      generator when it is ``None``): the same seed gives the same result.
    - Bad input raises ``TypeError`` or ``ValueError`` naming the argument (``params``,
      ``loss_fn``, or the constructor argument); a loss that depends on none of ``params`` is
      refused (its L would read as 0).
    """

    def __call__(self, loss_fn: LossFn, params: Sequence[torch.Tensor]) -> LipschitzEstimate: ...
