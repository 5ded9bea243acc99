"""PowerIteration against exact spectra."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from mperror.lipschitz import PowerIteration

from ._problems import (
    F64,
    least_squares,
    poisson_pinn,
    power_iterations,
    quadratic,
    regression,
)

REL = 1e-3

PROBLEMS = {
    "quadratic_pd": lambda: quadratic([10.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.1]),
    "quadratic_indefinite": lambda: quadratic([-10.0, 6.0, 3.0, -2.0, 1.0, 0.5, -0.1, 0.01]),
    "quadratic_split": lambda: quadratic([2.0, -7.0, 4.0, 1.0, 0.5, 3.0], split=2),
    "least_squares": lambda: least_squares()[0],
    "mlp_regression": regression,
    "mlp_pinn_uxx": poisson_pinn,
}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("hvp", ["forward_over_reverse", "double_backward"])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_matches_exact_spectrum(name, hvp):
    """Oracle: max |λ| known by construction (quadratics), ‖A‖₂² (least squares), or
    torch.linalg.eigvalsh of the dense Hessian (MLPs). The number of products comes from the
    convergence bound 1 - μₖ/L <= T r^(2(k-1)) with r from the exact spectrum (see
    ``_problems.power_iterations``); tol=0 makes every run use exactly that many."""
    problem = PROBLEMS[name]()
    k = power_iterations(problem, REL)
    assert k <= 200, f"gap ratio {problem.gap_ratio():.3f} too close to 1 for a fast test"
    est = PowerIteration(max_iter=k, tol=0.0, hvp=hvp, generator=_gen())(
        problem.loss_fn, problem.params
    )
    lam = problem.eigenvalues[0].item()
    assert abs(est.value - abs(lam)) <= REL * abs(lam)
    # μₖ <= L in exact arithmetic; float64 products are good to far better than 1e-12 here.
    assert est.value <= abs(lam) * (1 + 1e-12)
    # The Rayleigh quotient: |λ₁ - ρ| <= 2L tan²θ <= 2L·REL on the same bound, sign included.
    assert abs(est.eigenvalue - lam) <= 2 * REL * abs(lam)
    assert est.evaluations <= k and est.hvp == hvp and est.kind == "estimate"


def test_least_squares_against_matrix_norm():
    """Oracle: L = ‖A‖₂² = torch.linalg.matrix_norm(A, ord=2)² for f = ½‖Ax - b‖²."""
    problem, a = least_squares(m=40, n=10, seed=11)
    want = torch.linalg.matrix_norm(a, ord=2).item() ** 2
    est = PowerIteration(tol=1e-12, generator=_gen())(problem.loss_fn, problem.params)
    assert est.converged
    assert est.value == pytest.approx(want, rel=1e-6)


def test_default_tolerance_converges():
    """Oracle: spectrum known by construction; the default tol is √ε(float64) ≈ 1.5e-8 on H²'s
    relative residual s, and with r = 0.5 the error left is about s² / (2 (1 - r²))."""
    problem = quadratic([10.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.1], seed=3)
    est = PowerIteration(generator=_gen())(problem.loss_fn, problem.params)
    assert est.converged and est.value == pytest.approx(10.0, rel=1e-7)
    assert est.eigenvalue == pytest.approx(10.0, rel=1e-6)
    assert est.residual < 1e-3
    assert 1 <= len(est.history) <= 20 and est.history[-1] == est.value
    # μₖ is a Rayleigh quotient of H² along power iteration: nondecreasing.
    assert all(a <= b * (1 + 1e-14) for a, b in itertools.pairwise(est.history))


def test_plus_minus_tie_still_converges():
    """Oracle: A with eigenvalues 5 and -5 (both dominant). ‖Hv‖ converges at the rate of the
    third eigenvalue (r = 1/5), while the Rayleigh quotient need not settle on ±5."""
    problem = quadratic([5.0, -5.0, 1.0, 0.5, 0.2], seed=4)
    est = PowerIteration(max_iter=60, tol=0.0, generator=_gen())(problem.loss_fn, problem.params)
    assert est.value == pytest.approx(5.0, rel=1e-12)


def test_zero_hessian_returns_zero():
    """Oracle: a linear loss has H = 0, so L = 0 and the first product is 0."""
    w = torch.tensor([1.0, -2.0], dtype=F64, requires_grad=True)
    c = torch.tensor([3.0, 4.0], dtype=F64)
    est = PowerIteration(generator=_gen())(lambda: (c * w).sum(), [w])
    assert est.value == 0.0 and est.converged and est.evaluations == 1


def test_float32_params():
    """Oracle: the same network in float64. Float32 products of a 61-parameter MLP on 16 points
    sum a few hundred terms per entry, relative error ≲ γ_500(2^-24) ≈ 3e-5, so 1e-4 relative."""
    exact = regression()
    single = regression(dtype=torch.float32)
    want = PowerIteration(max_iter=200, tol=0.0, generator=_gen())(exact.loss_fn, exact.params)
    got = PowerIteration(max_iter=200, tol=0.0, generator=_gen())(single.loss_fn, single.params)
    assert got.value == pytest.approx(want.value, rel=1e-4)


def test_small_gap_float32_does_not_stop_early():
    """Oracle: f = ½ xᵀAx in float32 with A's spectrum {1, 0.98, 38 values in [-0.3, 0.3]} by
    construction (A rounded to float32 moves it by ~1e-7). Stopped on H²'s residual
    s <= √ε₃₂, μ is within s² / (2 (1 - r²)) ≈ 1.5e-6 of L (Kato-Temple, class docstring) plus
    the products' float32 error (~1e-6): 1e-4 relative is a wide margin that a stop on the
    increment of μ (which returned 0.980-0.996 here) misses."""
    eigenvalues = [1.0, 0.98, *torch.linspace(-0.3, 0.3, 38).tolist()]
    for seed in range(3):
        problem = quadratic(eigenvalues, seed=seed + 5)
        a = problem.hessian.float()
        x = problem.params[0].detach().float().requires_grad_(True)
        est = PowerIteration(generator=_gen(seed))(lambda a=a, x=x: 0.5 * x @ a @ x, [x])
        assert est.converged, est
        assert est.value == pytest.approx(problem.lipschitz, rel=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"max_iter": 0}, "max_iter"),
        ({"max_iter": 2.5}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"tol": math.inf}, "tol"),
        ({"tol": math.nan}, "tol"),
        ({"tol": 1.0}, "tol"),
        ({"tol": True}, "tol"),
        ({"hvp": "finite_difference"}, "hvp"),
        ({"generator": 3}, "generator"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        PowerIteration(**kwargs)


def test_zero_tolerance_runs_every_product():
    """By the docstring: tol = 0 runs all max_iter products. H = 3 I makes every start vector
    an exact eigenvector, the stopping residual exactly 0, which the test <= 0 had taken as
    converged after two products."""
    x = torch.ones(4, dtype=torch.float64, requires_grad=True)
    est = PowerIteration(max_iter=9, tol=0.0, generator=_gen())(lambda: 1.5 * (x * x).sum(), [x])
    assert est.evaluations == 9 and not est.converged and est.value == 3.0
