"""The largest gradient difference quotient over random points of a ball: a local lower estimate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mperror.lipschitz._params import (
    as_params,
    check_generator,
    check_positive_int,
    check_radius,
    flat_gradient,
    flatten,
    norm,
    preserved,
    random_ball,
    set_flat,
)
from mperror.lipschitz._protocol import LipschitzEstimate, LossFn

__all__ = ["SampledLocalMax"]

_HISTORY = 20


@dataclass(frozen=True, kw_only=True)
class SampledLocalMax:
    """max over pairs (a, b) of m random points of B(θ, r) of ‖∇f(a) - ∇f(b)‖ / ‖a - b‖.

    The local Lipschitz constant L_r = sup over a ≠ b in the ball B(θ, r) of that quotient is
    what a bound over a neighbourhood of θ needs (Theorem 1 of Hayford et al. 2024 compares
    gradients at θ and at its rounding, within u‖θ‖). Every sampled quotient is at most L_r (up
    to the rounding of the points, below), so the maximum is a lower estimate of L_r; m
    gradient evaluations give m(m-1)/2 quotients. The points are uniform in the ball, and in
    high dimension a - b is close to a random direction, so this shares the secant's blind
    spot: the quotient sees the root mean square of the Hessian's eigenvalues rather than the
    largest (:mod:`mperror.lipschitz.secant`). Its use is where the Hessian changes across the
    ball, e.g. for a radius comparable to ‖θ‖.

    Args:
        radius: r, the ball's radius in parameter space (absolute, > 0).
        points: m >= 2, the number of sampled points (one gradient each).
        generator: draws the points.

    Differences are taken between the points as stored (rounded to the params' dtypes), which
    may lie outside the ball by that rounding: each quotient is at most the Lipschitz constant of
    ∇f on any set holding its two stored points (a ball of radius r plus the rounding of θ + r u,
    not B(θ, r) itself, when r is within a few ulps of θ). ``history`` holds the running maximum
    after each point. A radius so small that every point rounds to the same values raises
    ValueError (no quotient).

    Possible issues: as for :class:`~mperror.lipschitz.secant.Secant`, the gradients' own
    rounding (about ``eps ‖∇f‖``) over the points' distance is a noise floor: in float32 with
    a large gradient and a small radius the maximum can exceed L.

    >>> x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    >>> est = SampledLocalMax(radius=0.5, points=4)(lambda: (x**4).sum() / 4, [x])
    >>> 3 * 0.5**2 <= est.value <= 3 * 1.5**2  # (f')' = 3x² over [0.5, 1.5], mean value theorem
    True
    """

    radius: float = 1e-2
    points: int = 10
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        check_radius(self.radius)
        object.__setattr__(self, "points", check_positive_int(self.points, argument="points"))
        if self.points < 2:
            raise ValueError(f"points must be >= 2 (a quotient needs a pair); got {self.points}")
        check_generator(self.generator)

    def __call__(self, loss_fn: LossFn, params: Sequence[torch.Tensor]) -> LipschitzEstimate:
        params = as_params(params)
        locations: list[torch.Tensor] = []
        gradients: list[torch.Tensor] = []
        running: list[float] = []
        best = 0.0
        compared = False
        with preserved(params):
            theta = flatten(params, params)
            for _ in range(self.points):
                u = random_ball(theta.numel(), self.generator, theta.device)
                a = set_flat(params, theta + self.radius * u)
                ga = flat_gradient(loss_fn, params)
                if not bool(torch.isfinite(ga).all()):
                    raise FloatingPointError(
                        "a gradient in the ball is not finite: shrink radius or check the loss"
                    )
                for b, gb in zip(locations, gradients, strict=True):
                    distance = norm(a - b)
                    if distance > 0.0:
                        compared = True
                        ratio = norm(ga - gb) / distance
                        if not math.isfinite(ratio):
                            raise FloatingPointError(
                                "a gradient difference quotient in the ball overflows"
                            )
                        best = max(best, ratio)
                locations.append(a)
                gradients.append(ga)
                running.append(best)
        if not compared:  # 0 would read as "L >= 0", and as a critical norm of 0
            raise ValueError(
                f"radius={self.radius} is below the params' rounding: every sampled point "
                "rounds back to the same values"
            )
        return LipschitzEstimate(
            value=best,
            kind="lower",
            method="sampled_local_max",
            evaluations=self.points,
            converged=None,
            history=tuple(running[-_HISTORY:]),
        )
