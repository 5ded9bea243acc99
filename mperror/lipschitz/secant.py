"""Secant (difference-quotient) lower estimates of L, along a trajectory or random directions.

A secant ‖∇f(a) - ∇f(b)‖ / ‖a - b‖ equals ‖H̄ s‖ with s = (a - b)/‖a - b‖ and H̄ the Hessian
averaged along the segment, so it is at most the Lipschitz constant on that segment: a *lower*
estimate. Its square is the Rayleigh quotient of H̄² at s, sᵀH̄²s = Σ λᵢ² ⟨s, eᵢ⟩²: an average
of the squared eigenvalues weighted by how much of s lies along each eigenvector. It reaches
L = max |λᵢ| only when s lies along the top eigenvector, and loss Hessians have a few large
outlying eigenvalues over a bulk near zero, so a secant usually sees the bulk.

For a random unit s in n dimensions E⟨s, eᵢ⟩² = 1/n, so the secant is about the root mean square
of the eigenvalues, √(Σλᵢ²/n): with one eigenvalue L and the rest near 0 that is L/√n. Taking
the maximum over k directions barely helps, since ⟨s, e₁⟩² concentrates around 1/n. On a
4,353-parameter PINN, random-direction secants gave 1.2 where the top eigenvalue was 15.1
(REFERENCES.md section 3). Along a gradient-descent trajectory the step -η∇f shrinks the
gradient's component along eᵢ by a factor (1 - ηλᵢ) per step, so the stiff directions are
removed first and the later steps, hence the later secants, lie in low-curvature directions:
on f = ½xᵀAx with step 1/L, every secant after the first equals the curvature of the bulk
(``tests/lipschitz/test_secant.py``). Hayford et al. (2024) estimated L for their Theorem 1 check
in this way; use :class:`~mperror.lipschitz.PowerIteration` or
:class:`~mperror.lipschitz.Lanczos` for the value itself.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from mperror._records import Record
from mperror.lipschitz._params import (
    as_params,
    as_tensors,
    check_generator,
    check_positive_int,
    check_radius,
    flat_gradient,
    flatten,
    norm,
    preserved,
    random_unit,
    set_flat,
)
from mperror.lipschitz._protocol import LipschitzEstimate, LossFn

__all__ = ["Secant", "SecantStatus", "SecantStep", "SecantTracker"]

_HISTORY = 20


class SecantStatus(str, enum.Enum):
    """Why a trajectory step did or did not give a secant."""

    #: L_k = ‖g_k - g_(k-1)‖ / ‖θ_k - θ_(k-1)‖ was computed.
    OK = "ok"
    #: First step since construction or reset(): nothing to compare with; call update() again.
    NO_PREVIOUS = "no_previous_step"
    #: θ_k == θ_(k-1) bit for bit (every update lost to rounding, or a skipped step): the
    #: quotient is undefined and says nothing about L.
    ZERO_STEP = "zero_step"
    #: A value or gradient is inf/NaN (e.g. a loss-scaler overflow step): the step is ignored
    #: and the next one is compared with the last finite snapshot. Also a quotient that
    #: overflows (a tiny step against a large gradient change); that step is kept.
    NONFINITE = "nonfinite"


@dataclass(frozen=True, kw_only=True)
class SecantStep(Record):
    """One trajectory secant.

    Attributes:
        step: how many times update() has been called, this call included.
        status: see :class:`SecantStatus`.
        value: L_k when ``status`` is OK, else ``None``.
        step_norm: ‖θ_k - θ_(k-1)‖ (``None`` without a previous snapshot).
        grad_change_norm: ‖g_k - g_(k-1)‖ (``None`` without a previous snapshot).
    """

    step: int
    status: SecantStatus
    value: float | None
    step_norm: float | None = None
    grad_change_norm: float | None = None


class SecantTracker:
    """The secant L_k = ‖g_k - g_(k-1)‖ / ‖θ_k - θ_(k-1)‖ along a training trajectory.

    This is how Hayford et al. (2024) estimated L for their Theorem 1 check, over the weight
    matrices only; which tensors to include is the caller's choice, e.g.
    ``[p for p in model.parameters() if p.ndim == 2]``. It is a *lower* estimate that can fall
    far below L (see the module docstring).

    Call :meth:`update` once per step, after ``backward()`` and before ``optimizer.step()``, so
    that the gradients belong to the current values. Differences are taken in float64 from the
    stored values: exact for float16, and for float32/bfloat16 whenever old and new values lie
    within a factor 2²⁹ of each other (any realistic step), so lost updates show up as exact
    zero steps.

    Args:
        tensors: the tensors θ to track (distinct, real floating, one device).

    >>> w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> tracker = SecantTracker([w])
    >>> tracker.update([3.0 * w]).status.value
    'no_previous_step'
    >>> w += torch.tensor([0.0, 0.5], dtype=torch.float64)
    >>> tracker.update([3.0 * w]).value
    3.0
    """

    def __init__(self, tensors: Iterable[torch.Tensor]) -> None:
        self.tensors = as_tensors(tensors, argument="tensors")
        self.reset()

    def reset(self) -> None:
        """Forget the trajectory (the next update() has no previous step)."""
        self._previous: tuple[torch.Tensor, torch.Tensor] | None = None
        self._steps = 0
        self._values: list[float] = []

    @property
    def values(self) -> tuple[float, ...]:
        """Every L_k computed so far (OK steps only), oldest first."""
        return tuple(self._values)

    def update(self, grads: Sequence[torch.Tensor | None] | None = None) -> SecantStep:
        """Record the current values and gradients; return the secant against the last step.

        Args:
            grads: the gradients of the tracked tensors, in order; ``None`` reads each tensor's
                ``.grad``. A ``None`` gradient for a tensor the loss does not use counts as 0
                only when passed explicitly.
        """
        if grads is None:
            missing = [i for i, t in enumerate(self.tensors) if t.grad is None]
            if missing:
                raise ValueError(
                    f"tensors[{missing[0]}].grad is None: call backward() before update(), or "
                    "pass grads explicitly"
                )
            grads = [t.grad for t in self.tensors]
        grads = list(grads)
        if len(grads) != len(self.tensors):
            raise ValueError(
                f"grads must have one entry per tracked tensor ({len(self.tensors)}); "
                f"got {len(grads)}"
            )
        for i, (g, t) in enumerate(zip(grads, self.tensors, strict=True)):
            if g is not None and (not isinstance(g, torch.Tensor) or g.shape != t.shape):
                raise ValueError(f"grads[{i}] must be a tensor of shape {tuple(t.shape)}")
        self._steps += 1
        theta = flatten(self.tensors, self.tensors)
        grad = flatten(grads, self.tensors)
        if not (bool(torch.isfinite(theta).all()) and bool(torch.isfinite(grad).all())):
            return SecantStep(step=self._steps, status=SecantStatus.NONFINITE, value=None)
        previous, self._previous = self._previous, (theta, grad)
        if previous is None:
            return SecantStep(step=self._steps, status=SecantStatus.NO_PREVIOUS, value=None)
        step_norm = norm(theta - previous[0])
        change_norm = norm(grad - previous[1])
        if step_norm == 0.0:
            status, value = SecantStatus.ZERO_STEP, None
        elif not math.isfinite(change_norm / step_norm):
            status, value = SecantStatus.NONFINITE, None
        else:
            status, value = SecantStatus.OK, change_norm / step_norm
            self._values.append(value)
        return SecantStep(
            step=self._steps,
            status=status,
            value=value,
            step_norm=step_norm,
            grad_change_norm=change_norm,
        )

    def estimate(self) -> LipschitzEstimate:
        """The largest secant so far as a ``kind="lower"`` estimate."""
        if not self._values:
            raise RuntimeError(
                "no secant recorded yet: update() needs two steps with a nonzero, finite change"
            )
        return LipschitzEstimate(
            value=max(self._values),
            kind="lower",
            method="secant_trajectory",
            evaluations=self._steps,
            converged=None,
            history=tuple(self._values[-_HISTORY:]),
        )


@dataclass(frozen=True, kw_only=True)
class Secant:
    """max over k random unit directions dᵢ of ‖∇f(θ + r dᵢ) - ∇f(θ)‖ / ‖r dᵢ‖: a lower estimate.

    Each quotient lies below the Lipschitz constant of ∇f on any set holding θ and the stored
    point θ + s (θ + r dᵢ rounded to the params' dtype; s is the step divided by, and ‖s‖ may
    exceed r by that rounding, so the set is B(θ, r) itself only up to it), and for small r it
    is ‖H dᵢ‖ ≈ √(Σλⱼ²/n), the root mean square of the eigenvalues, not their maximum (see the
    module docstring for why it underestimates and by how much).

    Possible issues: "lies below" holds for exact gradients. Computed ones carry rounding of
    about ``eps ‖∇f‖`` (``eps`` of the params' dtype), and that divided by r is a noise floor
    under every quotient: where ``eps ‖∇f‖ / r`` is not far below L the estimate can exceed L
    (float32, ``‖∇f‖ ≈ 1000 √n``, L = 0.01 and r = 1e-3 gave 0.1). Take r well above
    ``eps ‖∇f‖ / L``, or estimate in float64.

    Args:
        radius: r, the step length in parameter space (absolute, > 0).
        directions: k, the number of random directions (k + 1 gradient evaluations).
        generator: draws the directions.

    >>> A = torch.diag(torch.tensor([4.0, 4.0], dtype=torch.float64))
    >>> x = torch.ones(2, dtype=torch.float64, requires_grad=True)
    >>> round(Secant(directions=3)(lambda: 0.5 * x @ A @ x, [x]).value, 12)
    4.0
    """

    radius: float = 1e-3
    directions: int = 10
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        check_radius(self.radius)
        directions = check_positive_int(self.directions, argument="directions")
        object.__setattr__(self, "directions", directions)
        check_generator(self.generator)

    def __call__(self, loss_fn: LossFn, params: Sequence[torch.Tensor]) -> LipschitzEstimate:
        params = as_params(params)
        ratios: list[float] = []
        with preserved(params):
            theta = flatten(params, params)
            g0 = flat_gradient(loss_fn, params)
            for _ in range(self.directions):
                d = random_unit(theta.numel(), self.generator, theta.device)
                step = set_flat(params, theta + self.radius * d) - theta
                step_norm = norm(step)
                if step_norm == 0.0:
                    raise ValueError(
                        f"radius={self.radius} is below the params' rounding: the perturbed "
                        "params round back to the same values"
                    )
                change = flat_gradient(loss_fn, params) - g0
                ratios.append(norm(change) / step_norm)
        if not all(math.isfinite(r) for r in ratios):
            raise FloatingPointError("a gradient along a secant is not finite")
        value = max(ratios)
        return LipschitzEstimate(
            value=value,
            kind="lower",
            method="secant",
            evaluations=self.directions + 1,
            converged=None,
            history=tuple(ratios[-_HISTORY:]),
        )
