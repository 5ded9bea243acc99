"""The periodic pseudo-spectral Burgers solver and the FNO Burgers dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import ive

from mperror.problems.burgers1d import (
    burgers1d_dataset,
    default_step,
    solve_periodic_burgers,
    subsample,
)


def _sine_solution(x: np.ndarray, t: float, nu: float, n_terms: int = 200) -> np.ndarray:
    """Exact solution for u0 = sin(2 pi x) on the periodic [0, 1), by Cole-Hopf.

    phi0 = exp(-(1/2nu) int_0^x u0) is proportional to exp(z cos 2 pi x) with z = 1/(4 pi nu),
    = I_0(z) + 2 sum_k I_k(z) cos(2 pi k x); the heat flow damps mode k by exp(-nu (2 pi k)^2 t),
    and u = -2 nu phi_x / phi = 8 pi nu sum_k k I_k e^(..) sin(2 pi k x) / phi. (``ive`` scales
    every I_k by the same e^-z, which cancels.)
    """
    z = 1 / (4 * math.pi * nu)
    k = np.arange(1, n_terms)
    weight = ive(k, z) * np.exp(-nu * (2 * math.pi * k) ** 2 * t)
    num = 8 * math.pi * nu * (k * weight * np.sin(2 * math.pi * k * x[:, None])).sum(1)
    den = ive(0, z) + 2 * (weight * np.cos(2 * math.pi * k * x[:, None])).sum(1)
    return num / den


@pytest.mark.parametrize(("nu", "n", "t_final"), [(0.1, 64, 1.0), (0.02, 256, 0.5)])
def test_matches_the_exact_sine_solution(nu: float, n: int, t_final: float) -> None:
    """Oracle: the Cole-Hopf/Bessel closed form above; measured agreement 3e-11 and 1.3e-10."""
    x = np.arange(n) / n
    u = solve_periodic_burgers(torch.from_numpy(np.sin(2 * np.pi * x)), nu=nu, t_final=t_final)
    assert u.dtype == torch.float64 and u.shape == (n,)
    np.testing.assert_allclose(u.numpy(), _sine_solution(x, t_final, nu), rtol=0, atol=1e-9)


def test_heat_limit_for_small_amplitude() -> None:
    """For u0 = eps sin(2 pi x) the nonlinear term is O(eps^2): u = eps e^(-4 pi^2 nu t) sin(2 pi x)
    up to about eps^2 * 2 pi * t = 6e-12 at eps = 1e-6, t = 1."""
    x = np.arange(32) / 32
    eps, nu = 1e-6, 0.5
    u = solve_periodic_burgers(torch.from_numpy(eps * np.sin(2 * np.pi * x)), nu=nu, t_final=1.0)
    heat = eps * math.exp(-4 * math.pi**2 * nu) * np.sin(2 * np.pi * x)
    np.testing.assert_allclose(u.numpy(), heat, rtol=0, atol=1e-11)


@pytest.mark.parametrize("n", [48, 96])
def test_two_thirds_rule_drops_mode_n_over_3(n: int) -> None:
    """Orszag's rule keeps |k| < n/3 only. For u0 = cos(2 pi (n/3) x) the dealiased nonlinear
    term is then zero, so u decays as the heat equation's cos mode, e^(-nu (2 pi n/3)^2 t),
    exactly (to round-off). Keeping k = n/3 aliased u0**2's mode 2n/3 onto it."""
    x = np.arange(n) / n
    m = n // 3
    u0 = np.cos(2 * np.pi * m * x)
    nu, t = 1e-4, 0.01
    u = solve_periodic_burgers(torch.from_numpy(u0), nu=nu, t_final=t)
    heat = math.exp(-nu * (2 * math.pi * m) ** 2 * t) * u0
    np.testing.assert_allclose(u.numpy(), heat, rtol=0, atol=1e-12)


def test_mean_is_conserved() -> None:
    """The k = 0 mode sees neither term, so the mean is conserved to round-off."""
    u0, _ = burgers1d_dataset(4, 128, seed=0, fine_resolution=512, dtype=torch.float64)
    u0 = u0 + torch.tensor([[0.0], [0.3], [-0.7], [1.1]], dtype=torch.float64)
    u1 = solve_periodic_burgers(u0, nu=0.1, t_final=1.0)
    torch.testing.assert_close(u1.mean(1), u0.mean(1), rtol=0, atol=1e-14)


def test_galilean_invariance() -> None:
    """Oracle: if u solves Burgers, so does u(x - c t, t) + c. With c = 1/4, t = 1 and 64
    points the shift is 16 points. Both runs use one fixed step so that their time errors
    (~1e-10 at this step) are alike; 1e-8 leaves room for them."""
    x = np.arange(64) / 64
    u0 = torch.from_numpy(np.sin(2 * np.pi * x) + 0.5 * np.cos(6 * np.pi * x))
    c = 0.25
    u = solve_periodic_burgers(u0, nu=0.05, t_final=1.0, dt=2e-3)
    moved = solve_periodic_burgers(u0 + c, nu=0.05, t_final=1.0, dt=2e-3)
    torch.testing.assert_close(moved, torch.roll(u, 16) + c, rtol=0, atol=1e-8)


def test_zero_time_and_batching() -> None:
    """Oracle: the definition u(., 0) = u0, returned unchanged. Batching has no independent
    oracle: each row is its own problem, so the batched solve must match the one-sample solve
    (a self-consistency check; measured identical)."""
    x = torch.rand(3, 16, dtype=torch.float64)
    torch.testing.assert_close(solve_periodic_burgers(x, nu=0.1, t_final=0.0), x)
    batch = solve_periodic_burgers(x, nu=0.1, t_final=0.1, dt=1e-2)
    one = solve_periodic_burgers(x[1], nu=0.1, t_final=0.1, dt=1e-2)
    torch.testing.assert_close(batch[1], one, rtol=0, atol=1e-15)


def test_default_step() -> None:
    """Hand computation: at nu = 0.1, u_max = 2, n = 64 the diffusive bound
    (1/4)^2 * 0.1 / 4 = 1/640 beats the advective 0.25 / (2 pi (64/3) * 2) and is below the cap
    0.1 / (4 pi)."""
    assert default_step(64, nu=0.1, u_max=2.0) == pytest.approx(1 / 640, rel=1e-15)
    assert default_step(64, nu=100.0, u_max=2.0) == pytest.approx(0.1 / (4 * math.pi), rel=1e-15)


def test_dataset_shapes_and_dtypes() -> None:
    u0, u1 = burgers1d_dataset(3, 64, seed=0, fine_resolution=512)
    assert u0.shape == u1.shape == (3, 64)
    assert u0.dtype == u1.dtype == torch.float32
    assert torch.isfinite(u1).all()
    f0, f1 = burgers1d_dataset(3, 512, seed=0, fine_resolution=512, dtype=torch.float64)
    # Zero-mean initial data stay zero-mean on the fine grid. (Not on a coarse one: modes 64
    # and 128 alias onto the mean of 64 points.)
    assert f0.mean(1).abs().max() < 1e-15 and f1.mean(1).abs().max() < 1e-15
    # Viscosity damps: the maximum principle gives max|u1| <= max|u0|.
    assert torch.all(f1.abs().amax(1) <= f0.abs().amax(1))


def test_dataset_reproducible_and_consistent_across_resolutions() -> None:
    fine = burgers1d_dataset(2, 512, seed=3, fine_resolution=512)
    coarse = burgers1d_dataset(2, 32, seed=3, fine_resolution=512)
    assert torch.equal(coarse[0], fine[0][:, ::16]) and torch.equal(coarse[1], fine[1][:, ::16])
    assert torch.equal(coarse[1], subsample(fine[1], 32))
    assert torch.equal(burgers1d_dataset(2, 32, seed=3, fine_resolution=512)[1], coarse[1])
    assert not torch.equal(burgers1d_dataset(2, 32, seed=4, fine_resolution=512)[1], coarse[1])


def test_dataset_bad_arguments() -> None:
    with pytest.raises(ValueError, match="resolution must be a positive int dividing"):
        burgers1d_dataset(1, 100, seed=0, fine_resolution=512)
    with pytest.raises(ValueError, match=r"fine_resolution must exceed 2 \* field\.n_modes = 256"):
        burgers1d_dataset(1, 64, seed=0, fine_resolution=128)
    with pytest.raises(ValueError, match="fine_resolution must be an even int"):
        burgers1d_dataset(1, 1, seed=0, fine_resolution=513)
    with pytest.raises(ValueError, match="nu must be a positive"):
        solve_periodic_burgers(torch.zeros(8), nu=0.0, t_final=1.0)
    with pytest.raises(ValueError, match="u0 must have shape"):
        solve_periodic_burgers(torch.zeros(7), nu=0.1, t_final=1.0)
    with pytest.raises(ValueError, match="dt must be a positive"):
        solve_periodic_burgers(torch.zeros(8), nu=0.1, t_final=1.0, dt=-1.0)
    for name in ("nu", "t_final", "dt"):  # a bool is no number (True had run as 1.0)
        args = {"nu": 0.1, "t_final": 1.0, "dt": 0.1, name: True}
        with pytest.raises(ValueError, match=f"{name} must be a"):
            solve_periodic_burgers(torch.zeros(8), **args)
