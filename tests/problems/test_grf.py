"""The spectral Gaussian random field sampler: laws, evaluation and integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from mperror.problems.grf import (
    SpectralGRF,
    cosine_antiderivative_1d,
    cosine_values_1d,
    cosine_values_2d,
    neumann_1d,
    neumann_2d,
    periodic_1d,
    periodic_values_1d,
)

FIELD = SpectralGRF(alpha=2.0, tau=3.0, sigma=2.0, n_modes=6)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_coefficient_variances_match_the_law() -> None:
    """Each coefficient is N(0, sigma^2 (lambda_k + tau^2)^-alpha).

    With n = 4,000 samples the sample variance has relative standard deviation
    sqrt(2 / (n - 1)) ~ 0.022; 0.12 is 5.4 sigma, for 6 (1-D) or 2 x 7 (periodic) modes.
    """
    n = 4000
    k = torch.arange(FIELD.n_modes, dtype=torch.float64)
    expected = FIELD.sigma**2 * ((math.pi * k) ** 2 + FIELD.tau**2) ** (-FIELD.alpha)
    observed = neumann_1d(FIELD, n, generator=_gen()).var(0)
    torch.testing.assert_close(observed / expected, torch.ones_like(expected), rtol=0, atol=0.12)

    c = periodic_1d(FIELD, n, generator=_gen(), zero_mean=False)
    kp = torch.arange(FIELD.n_modes + 1, dtype=torch.float64)
    var = FIELD.sigma**2 * ((2 * math.pi * kp) ** 2 + FIELD.tau**2) ** (-FIELD.alpha)
    a = c.real * torch.where(kp == 0, 1.0, math.sqrt(2))
    b = -c.imag[:, 1:] * math.sqrt(2)
    torch.testing.assert_close(a.var(0) / var, torch.ones_like(var), rtol=0, atol=0.12)
    torch.testing.assert_close(b.var(0) / var[1:], torch.ones_like(var[1:]), rtol=0, atol=0.12)


def test_zero_mean_switches() -> None:
    """Oracle: the construction: the constant mode's coefficient is the mean, and zero_mean sets
    its standard deviation to 0, so it is exactly 0; a periodic X_0 = a_0 is real because
    sin(0 x) = 0 has no coefficient (b_0 = 0)."""
    assert torch.all(neumann_1d(FIELD, 5, generator=_gen(), zero_mean=True)[:, 0] == 0)
    assert torch.all(neumann_2d(FIELD, 5, generator=_gen(), zero_mean=True)[:, 0, 0] == 0)
    assert torch.all(periodic_1d(FIELD, 5, generator=_gen())[:, 0] == 0)
    assert torch.all(periodic_1d(FIELD, 5, generator=_gen(), zero_mean=False)[:, 0].imag == 0)


def test_shapes_dtypes_and_reproducibility() -> None:
    a = neumann_2d(FIELD, 3, generator=_gen(7))
    assert a.shape == (3, 6, 6) and a.dtype == torch.float64
    assert torch.equal(a, neumann_2d(FIELD, 3, generator=_gen(7)))
    assert not torch.equal(a, neumann_2d(FIELD, 3, generator=_gen(8)))
    p = periodic_1d(FIELD, 3, generator=_gen())
    assert p.shape == (3, 7) and p.dtype == torch.complex128
    assert periodic_values_1d(p, 16).shape == (3, 16)


def test_cosine_values_by_direct_summation() -> None:
    """Oracle: the series sum c_0 + sum_k c_k sqrt 2 cos(k pi x), term by term in Python."""
    c = neumann_1d(FIELD, 2, generator=_gen())
    x = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    values = cosine_values_1d(c, x)
    for s in range(2):
        for i, xi in enumerate(x.tolist()):
            terms = [c[s, 0].item()] + [
                c[s, k].item() * math.sqrt(2) * math.cos(k * math.pi * xi) for k in range(1, 6)
            ]
            assert values[s, i].item() == pytest.approx(math.fsum(terms), abs=1e-14)


def test_cosine_values_2d_by_direct_summation() -> None:
    """Oracle: the double series sum_(k, m) c_km phi_k(x) phi_m(y), term by term in Python and
    summed with math.fsum."""
    c = neumann_2d(FIELD, 1, generator=_gen())[0]
    x = torch.tensor([0.1, 0.55, 0.9], dtype=torch.float64)
    grid = cosine_values_2d(c.unsqueeze(0), x)[0]

    def phi(k: int, t: float) -> float:
        return 1.0 if k == 0 else math.sqrt(2) * math.cos(k * math.pi * t)

    for i, xi in enumerate(x.tolist()):
        for j, yj in enumerate(x.tolist()):
            terms = [c[k, m].item() * phi(k, xi) * phi(m, yj) for k in range(6) for m in range(6)]
            assert grid[i, j].item() == pytest.approx(math.fsum(terms), abs=1e-14)


def test_antiderivative_against_adaptive_quadrature() -> None:
    """Oracle: scipy.integrate.quad of the series, to its own error estimate (+ round-off)."""
    c = neumann_1d(FIELD, 3, generator=_gen())
    y = torch.tensor([0.0, 0.25, 0.6, 1.0], dtype=torch.float64)
    g = cosine_antiderivative_1d(c, y)
    for s in range(3):

        def v(t: float, s: int = s) -> float:
            return cosine_values_1d(c[s : s + 1], torch.tensor([t], dtype=torch.float64)).item()

        for i, yi in enumerate(y.tolist()):
            value, err = quad(v, 0.0, yi, epsabs=1e-13, epsrel=0.0)
            assert err < 1e-10
            assert g[s, i].item() == pytest.approx(value, abs=err + 1e-14)


def test_periodic_values_by_direct_summation() -> None:
    """Oracle: a_0 + sum_k a_k sqrt 2 cos(2 pi k x) + b_k sqrt 2 sin(2 pi k x) in numpy."""
    c = periodic_1d(FIELD, 2, generator=_gen(), zero_mean=False).numpy()
    a = c.real * np.where(np.arange(7) == 0, 1.0, math.sqrt(2))
    b = -c.imag * math.sqrt(2)
    x = np.arange(16) / 16
    k = np.arange(1, 7)
    direct = a[:, :1] + (
        a[:, None, 1:] * math.sqrt(2) * np.cos(2 * np.pi * k * x[:, None])
        + b[:, None, 1:] * math.sqrt(2) * np.sin(2 * np.pi * k * x[:, None])
    ).sum(-1)
    values = periodic_values_1d(torch.from_numpy(c), 16).numpy()
    np.testing.assert_allclose(values, direct, rtol=0, atol=1e-13)


def test_periodic_values_are_consistent_across_resolutions() -> None:
    """Oracle: the truncated series is the sample, so grids that share points (x = j/16 = 4j/64)
    share values, up to the inverse FFTs' round-off. The values themselves are checked by
    direct summation above."""
    c = periodic_1d(FIELD, 2, generator=_gen())
    fine = periodic_values_1d(c, 64)
    torch.testing.assert_close(periodic_values_1d(c, 16), fine[:, ::4], rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="resolution must be an int > 2 \\* n_modes = 12"):
        periodic_values_1d(c, 12)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"alpha": 0.0}, ValueError, "alpha must be finite and > 0"),
        ({"tau": 0.0}, ValueError, "tau must be finite and > 0"),
        ({"sigma": math.inf}, ValueError, "sigma must be finite and > 0"),
        ({"alpha": "2"}, TypeError, "alpha must be a float"),
        ({"n_modes": 0}, ValueError, "n_modes must be a positive int"),
    ],
)
def test_bad_field_parameters(kwargs: dict, error: type, message: str) -> None:
    args = {"alpha": 2.0, "tau": 3.0, "sigma": 1.0, "n_modes": 4} | kwargs
    with pytest.raises(error, match=message):
        SpectralGRF(**args)


def test_bad_sample_count() -> None:
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        neumann_1d(FIELD, 0, generator=_gen())


def test_one_sample_of_periodic_coefficients_is_refused() -> None:
    """A 1-D tensor of coefficients had been read as that many samples of one mode each, its
    values broadcast: refused by name (the docstring's shape is (n, n_modes + 1))."""
    with pytest.raises(ValueError, match=r"coefficients must be a tensor of shape \(n, n_modes"):
        periodic_values_1d(torch.ones(5, dtype=torch.complex128), 16)


def test_antiderivative_follows_the_points_device() -> None:
    """Oracle: its sibling cosine_values_1d, which follows the device of the points; the meta
    device stands in for a GPU (the wavenumbers had been made on the CPU)."""
    c = torch.ones(2, 4, dtype=torch.float64, device="meta")
    y = torch.linspace(0, 1, 3, dtype=torch.float64, device="meta")
    assert cosine_values_1d(c, y).device.type == "meta"
    assert cosine_antiderivative_1d(c, y).device.type == "meta"
