"""Lanczos (scipy eigsh) against exact spectra."""

from __future__ import annotations

import pytest
import torch

from mperror.lipschitz import Lanczos

from ._problems import F64, least_squares, poisson_pinn, quadratic, regression

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
    torch.linalg.eigvalsh of the dense Hessian (MLPs). ARPACK stops when the Ritz residual is
    <= tol·|θ|, which puts an eigenvalue within tol·|θ| of θ: tol = 1e-8 is far inside REL."""
    problem = PROBLEMS[name]()
    est = Lanczos(tol=1e-8, hvp=hvp, generator=_gen())(problem.loss_fn, problem.params)
    lam = problem.eigenvalues[0].item()
    assert est.converged and est.hvp == hvp and est.kind == "estimate"
    assert abs(est.value - abs(lam)) <= REL * abs(lam)
    assert est.eigenvalue == pytest.approx(lam, rel=REL)
    assert est.residual < 1e-6


def test_pinn_spectrum_is_indefinite_with_negative_top():
    """Oracle: torch.linalg.eigvalsh of the dense Hessian. The PINN's dominant eigenvalue is
    negative (a saddle direction), which is why L must be max |λ|, not max λ."""
    problem = poisson_pinn()
    lam = problem.eigenvalues[0].item()
    assert lam < 0 and problem.eigenvalues.max().item() < abs(lam)
    est = Lanczos(generator=_gen())(problem.loss_fn, problem.params)
    assert est.eigenvalue < 0
    assert est.value == pytest.approx(abs(lam), rel=1e-6)


def test_least_squares_against_svdvals():
    """Oracle: L = σ_max(A)² from torch.linalg.svdvals, f = ½‖Ax - b‖²."""
    problem, a = least_squares(m=50, n=20, seed=12)
    est = Lanczos(generator=_gen())(problem.loss_fn, problem.params)
    assert est.value == pytest.approx(torch.linalg.svdvals(a)[0].item() ** 2, rel=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_problems(n):
    """Oracle: diagonal quadratic, spectrum by construction. n < 3 takes the dense path
    (ARPACK needs k < n); n = 3 is ARPACK's smallest case."""
    diag = torch.tensor([-4.0, 1.5, 0.5][:n], dtype=F64)
    x = torch.ones(n, dtype=F64, requires_grad=True)
    est = Lanczos(generator=_gen())(lambda: 0.5 * (diag * x * x).sum(), [x])
    assert est.value == pytest.approx(4.0, rel=1e-10) and est.eigenvalue < 0


@pytest.mark.parametrize("n", [2, 5])
def test_zero_hessian(n):
    """Oracle: a loss linear in its parameters has Hessian 0, so L = 0 (ARPACK refused the
    zero start vector H v0 and raised)."""
    x = torch.ones(n, dtype=F64, requires_grad=True)
    weights = torch.arange(1.0, n + 1, dtype=F64)
    est = Lanczos(generator=_gen())(lambda: (weights * x).sum(), [x])
    assert est.value == 0.0 and est.residual == 0.0


def test_scalar_parameter():
    """Oracle: f = 3w² + w has f'' = 6 everywhere; a 0-d parameter works like any other."""
    w = torch.tensor(0.7, dtype=F64, requires_grad=True)
    est = Lanczos(generator=_gen())(lambda: 3 * w**2 + w, [w])
    assert est.value == pytest.approx(6.0, rel=1e-12)


def test_counts_products():
    """The record's evaluations are the operator's products, ARPACK's and the residual's."""
    problem = quadratic([10.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    calls = []

    def counting_loss():
        calls.append(1)
        return problem.loss_fn()

    est = Lanczos(hvp="forward_over_reverse", generator=_gen())(counting_loss, problem.params)
    assert est.evaluations == len(calls)
    assert est.evaluations >= 2


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"tol": 0.0}, "tol"),
        ({"tol": float("inf")}, "tol"),
        ({"tol": True}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"ncv": 1}, "ncv"),
        ({"hvp": "exact"}, "hvp"),
        ({"generator": "seed"}, "generator"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        Lanczos(**kwargs)


def test_no_convergence_raises_and_restores():
    """A clustered top of the spectrum (gaps 1e-4) cannot converge in one restart: ARPACK has no
    Ritz pair to return, so Lanczos raises instead of reporting a number, and params survive."""
    problem = quadratic([1.0 - 1e-4 * i for i in range(200)])
    before = problem.params[0].detach().clone()
    with pytest.raises(RuntimeError, match="max_iter"):
        Lanczos(max_iter=1, ncv=3, generator=_gen())(problem.loss_fn, problem.params)
    torch.testing.assert_close(problem.params[0].detach(), before, rtol=0, atol=0)
