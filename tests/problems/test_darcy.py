"""The Darcy finite-difference solver and dataset."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from mperror.problems.darcy import darcy_dataset, solve_darcy, solve_many, subsample

_X, _Y = sp.symbols("x y")
# A smooth coefficient in [1/2, 5/2] and a solution that vanishes on the boundary.
_A = 1 + sp.sin(2 * sp.pi * _X) * sp.cos(sp.pi * _Y) / 2 + _X * _Y
_U = sp.sin(sp.pi * _X) * sp.sin(2 * sp.pi * _Y) * sp.exp(_X)
_F = -(sp.diff(_A * sp.diff(_U, _X), _X) + sp.diff(_A * sp.diff(_U, _Y), _Y))


def _nodal(expr: sp.Expr, n: int) -> np.ndarray:
    x = np.linspace(0, 1, n)
    xx, yy = np.meshgrid(x, x, indexing="ij")  # [i, j] is (x_i, y_j), as solve_darcy reads it
    return np.broadcast_to(sp.lambdify((_X, _Y), expr, "numpy")(xx, yy), xx.shape)


def test_second_order_convergence_on_a_manufactured_solution() -> None:
    """Oracle: u = sin(pi x) sin(2 pi y) e^x with a smooth variable a; f = -div(a grad u) by
    sympy. The max-norm nodal error must fall like h^2: the fitted slope over three grids is
    2 within 0.1 (the harmonic-mean face value equals a at the midpoint up to O(h^2))."""
    sizes = (17, 33, 65)
    errors = []
    for n in sizes:
        u = solve_darcy(_nodal(_A, n), _nodal(_F, n)).numpy()
        errors.append(np.abs(u - _nodal(_U, n)).max())
    slope = np.polyfit(np.log([1 / (n - 1) for n in sizes]), np.log(errors), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.1)
    assert errors[-1] < 1e-2


def test_exact_for_a_biquadratic_solution() -> None:
    """Oracle: the 5-point stencil differentiates quadratics exactly, so with constant a and
    u = x(1-x) y(1-y) the nodal values of u solve the discrete system (to round-off)."""
    n, a = 9, 2.5
    u = _X * (1 - _X) * _Y * (1 - _Y)
    f = -a * (sp.diff(u, _X, 2) + sp.diff(u, _Y, 2))
    solved = solve_darcy(np.full((n, n), a), _nodal(f, n)).numpy()
    np.testing.assert_allclose(solved, _nodal(u, n), rtol=0, atol=1e-14)


def test_axes_are_interchangeable() -> None:
    """Swapping x and y in a and f swaps them in u (the scheme treats both axes alike)."""
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 10, (12, 12))
    f = rng.uniform(-1, 1, (12, 12))
    np.testing.assert_allclose(
        solve_darcy(a.T, f.T).numpy(), solve_darcy(a, f).numpy().T, atol=1e-14
    )


def test_bad_coefficients() -> None:
    with pytest.raises(ValueError, match="a must be finite and positive"):
        solve_darcy(np.zeros((5, 5)))
    with pytest.raises(ValueError, match=r"a must be a square \(n, n\) array with n >= 3"):
        solve_darcy(np.ones((5, 4)))
    # the face values 2ab/(a + b) overflow or underflow out there (a singular factorisation
    # at 1e160, a 1e-5 relative error at 1e-160), and a NaN source gave a NaN solution
    for scale in (1e160, 1e-160):
        with pytest.raises(ValueError, match="scale a and f by the same factor"):
            solve_darcy(np.full((5, 5), scale))
    with pytest.raises(ValueError, match="f must be finite"):
        solve_darcy(np.ones((5, 5)), float("nan"))
    # a row of f had been broadcast over the grid, as if constant along x
    with pytest.raises(ValueError, match=r"f must be a constant or of a's shape \(5, 5\)"):
        solve_darcy(np.ones((5, 5)), np.ones(5))


def test_scaling_a_and_f_together_leaves_u() -> None:
    """Oracle: -div(s a grad u) = s f has the same solution u; s = 2**400 is exact to apply,
    so the two solves see the same linear system up to that power of two."""
    a = np.linspace(1.0, 4.0, 49).reshape(7, 7)
    assert torch.equal(solve_darcy(a * 2.0**400, 2.0**400), solve_darcy(a))


def test_dataset_shapes_values_and_maximum_principle() -> None:
    """Oracles: the construction (a takes only a_low = 3 and a_high = 12; u = 0 on the boundary,
    exactly) and the discrete maximum principle, stated at the check."""
    a, u = darcy_dataset(3, 9, seed=0, fine_resolution=33)
    assert a.shape == u.shape == (3, 9, 9)
    assert a.dtype == u.dtype == torch.float32
    assert set(torch.unique(a).tolist()) <= {3.0, 12.0}
    edges = torch.cat([u[:, 0], u[:, -1], u[:, :, 0], u[:, :, -1]], dim=1)
    assert torch.all(edges == 0)
    # Discrete maximum principle (the matrix is an M-matrix and f = 1 > 0): u > 0 inside.
    assert torch.all(u[:, 1:-1, 1:-1] > 0)
    a64, _ = darcy_dataset(1, 9, seed=0, fine_resolution=33, dtype=torch.float64)
    assert a64.dtype == torch.float64


def test_dataset_obeys_the_dirichlet_principle() -> None:
    """Oracle: u minimises (1/2) u^T A_a u - f^T u with minimum -(1/2) f^T u, and
    3 A_1 <= A_a <= 12 A_1 (every face coefficient is a mean of 3s and 12s), so with f = 1 the
    sum of u lies between those of the constant problems a = 12 and a = 3: S_1 / 12 and S_1 / 3."""
    _, u = darcy_dataset(4, 17, seed=2, fine_resolution=17, dtype=torch.float64)
    s1 = solve_darcy(np.ones((17, 17))).sum().item()
    sums = u.sum((1, 2))
    assert torch.all(sums >= s1 / 12) and torch.all(sums <= s1 / 3)


def test_dataset_reproducible_and_consistent_across_resolutions() -> None:
    a_fine, u_fine = darcy_dataset(2, 33, seed=5, fine_resolution=33)
    a_coarse, u_coarse = darcy_dataset(2, 9, seed=5, fine_resolution=33)
    assert torch.equal(a_coarse, a_fine[:, ::4, ::4]) and torch.equal(u_coarse, u_fine[:, ::4, ::4])
    assert torch.equal(a_coarse, subsample(a_fine, 9))
    again = darcy_dataset(2, 9, seed=5, fine_resolution=33)
    assert torch.equal(again[0], a_coarse) and torch.equal(again[1], u_coarse)
    other = darcy_dataset(2, 9, seed=6, fine_resolution=33)
    assert not torch.equal(other[1], u_coarse)


def test_dataset_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"resolution must be an int r with \(r - 1\) dividing 32"):
        darcy_dataset(1, 10, seed=0, fine_resolution=33)
    with pytest.raises(ValueError, match="fine_resolution must be an int >= 3"):
        darcy_dataset(1, 2, seed=0, fine_resolution=2)
    with pytest.raises(ValueError, match="a_low must be a positive"):
        darcy_dataset(1, 9, seed=0, fine_resolution=33, a_low=0.0)
    with pytest.raises(TypeError, match=r"dtype must be a floating torch\.dtype"):
        darcy_dataset(1, 9, seed=0, fine_resolution=33, dtype=torch.int32)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        darcy_dataset(1, 9, seed=-1, fine_resolution=33)
    with pytest.raises(ValueError, match="forcing must be a finite float"):
        darcy_dataset(1, 9, seed=0, fine_resolution=33, forcing="2")
    with pytest.raises(ValueError, match="a_high must be a positive"):  # True is no 1.0
        darcy_dataset(1, 9, seed=0, fine_resolution=33, a_high=True)


def test_dataset_permeabilities_are_the_float64_values_asked_for() -> None:
    """Oracle: the Python floats 0.1 and 0.03 themselves. They had gone through float32
    (torch.where of two Python scalars makes float32) before the float64 solve."""
    a, _ = darcy_dataset(
        2, 9, seed=0, fine_resolution=33, a_high=0.1, a_low=0.03, dtype=torch.float64
    )
    assert set(a.unique().tolist()) == {0.1, 0.03}


def test_solves_on_threads_are_the_serial_solves() -> None:
    """Oracle: solve_darcy of each sample, one after another. The threads run the same code on
    the same arrays: bit for bit."""
    g = torch.Generator().manual_seed(2)
    a = torch.where(torch.randn(5, 17, 17, generator=g, dtype=torch.float64) > 0, 12.0, 3.0)
    serial = torch.stack([solve_darcy(sample, 2.0) for sample in a])
    assert torch.equal(solve_many(a, 2.0, workers=2), serial)
    assert torch.equal(solve_many(a, 2.0), serial)  # few solves: one thread
    for workers in (0, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            solve_many(a, workers=workers)
