"""SampledLocalMax: a lower estimate of the local Lipschitz constant on a ball."""

from __future__ import annotations

import pytest
import torch

from mperror.lipschitz import SampledLocalMax

from ._problems import F64, least_squares


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("x0", "radius"), [(1.0, 0.5), (-2.0, 0.1), (0.0, 1.0)])
def test_one_dimensional_quartic_mean_value_bounds(x0, radius):
    """Oracle: f = x⁴/4 has f'' = 3x². By the mean value theorem each quotient
    (f'(a) - f'(b))/(a - b) is f''(ξ) for some ξ in the ball, so the maximum lies in
    [min f'', max f''] over [x0 - r, x0 + r] (closed form)."""
    x = torch.tensor([x0], dtype=F64, requires_grad=True)
    est = SampledLocalMax(radius=radius, points=20, generator=_gen())(lambda: (x**4).sum() / 4, [x])
    lo, hi = abs(x0) - radius, abs(x0) + radius
    f2_min = 0.0 if lo <= 0 else 3 * lo**2
    f2_max = 3 * hi**2
    assert f2_min * (1 - 1e-12) <= est.value <= f2_max * (1 + 1e-12)
    assert est.kind == "lower" and est.evaluations == 20 and est.converged is None
    assert list(est.history) == sorted(est.history) and est.history[-1] == est.value


def test_quadratic_is_below_l():
    """Oracle: f = ½‖Ax - b‖² has the constant Hessian AᵀA, so every quotient is ‖AᵀA s‖ for a
    unit s, at most L = σ_max(A)² (torch.linalg.svdvals) and at least σ_min(A)²."""
    problem, a = least_squares()
    est = SampledLocalMax(radius=2.0, points=6, generator=_gen())(problem.loss_fn, problem.params)
    sigma = torch.linalg.svdvals(a)
    assert sigma[-1].item() ** 2 * (1 - 1e-12) <= est.value <= sigma[0].item() ** 2 * (1 + 1e-12)


def test_separable_quartic_upper_bound():
    """Oracle: f = Σ xᵢ⁴/4 has ∇²f = diag(3xᵢ²); on the ball B(θ, r) every |xᵢ| <= ‖θ‖_∞ + r, so
    every quotient is at most 3(‖θ‖_∞ + r)² (mean value theorem for the gradient map)."""
    theta = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=F64)
    x = theta.clone().requires_grad_(True)
    est = SampledLocalMax(radius=0.3, points=8, generator=_gen())(lambda: (x**4).sum() / 4, [x])
    assert 0 < est.value <= 3 * (2.0 + 0.3) ** 2


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"radius": -1.0}, "radius"),
        ({"points": 1}, "points"),
        ({"points": True}, "points"),
        ({"generator": object()}, "generator"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        SampledLocalMax(**kwargs)


def test_radius_below_the_rounding_is_refused():
    """Oracle: float32 params at 1 with radius 1e-12, below half an ulp of 1 (2**-24): every
    point rounds back to 1, no pair differs, and no quotient exists (0 had been returned as a
    lower estimate, and a critical norm of 0 follows from it)."""
    y = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="below the params' rounding"):
        SampledLocalMax(radius=1e-12, points=4)(lambda: 3 * (y**2).sum(), [y])
