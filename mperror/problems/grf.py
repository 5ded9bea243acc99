r"""Gaussian random fields by spectral sampling, shared by the DeepONet and FNO data.

A field with covariance operator :math:`\sigma^2 (-\Delta + \tau^2 I)^{-\alpha}` is a sum of the
Laplacian's orthonormal eigenfunctions :math:`\phi_k` (eigenvalues :math:`\lambda_k`) with
independent coefficients :math:`\xi_k \sim N(0, \sigma^2 (\lambda_k + \tau^2)^{-\alpha})`. The
sum is truncated to ``n_modes`` wavenumbers per dimension, and the truncated sum *is* the
sample: its values, derivatives and integrals are then exact (no interpolation), and the same
coefficients evaluated on grids of different resolutions agree at shared points.

Two bases:

- Neumann (cosine) on :math:`[0, 1]^d`: :math:`\phi_0 = 1`,
  :math:`\phi_k(x) = \sqrt 2 \cos(k\pi x)`, :math:`\lambda = \pi^2 |k|^2`,
  and products of these in 2-D (Li et al. 2021's Darcy fields).
- Periodic on :math:`[0, 1)`: :math:`\sqrt 2 \cos(2\pi k x)`, :math:`\sqrt 2 \sin(2\pi k x)`,
  :math:`\lambda = (2\pi k)^2`, plus the constant (Li et al. 2021's Burgers initial data).

Coefficients are drawn in float64 on the CPU from an explicit :class:`torch.Generator`.

>>> field = SpectralGRF(alpha=2.0, tau=3.0, sigma=1.0, n_modes=4)
>>> coef = neumann_1d(field, 2, generator=torch.Generator().manual_seed(0))
>>> coef.shape, coef.dtype
(torch.Size([2, 4]), torch.float64)
>>> zero = torch.tensor(0.0, dtype=torch.float64)
>>> round(float(field.std(zero)), 12)  # sigma (0 + tau^2)^(-alpha/2) = 1/9
0.111111111111
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch

from mperror._checks import is_integer, is_real
from mperror._records import Record

__all__ = [
    "SpectralGRF",
    "cosine_antiderivative_1d",
    "cosine_values_1d",
    "cosine_values_2d",
    "neumann_1d",
    "neumann_2d",
    "periodic_1d",
    "periodic_values_1d",
]


@dataclass(frozen=True, kw_only=True)
class SpectralGRF(Record):
    """The law ``N(0, sigma^2 (-Laplacian + tau^2)^(-alpha))``, truncated to ``n_modes``.

    Attributes:
        alpha: smoothness exponent, ``> 0``.
        tau: inverse length scale, ``> 0``.
        sigma: amplitude, ``> 0``.
        n_modes: wavenumbers kept per dimension (``0 .. n_modes - 1`` for the cosine basis,
            ``0 .. n_modes`` for the periodic one).
    """

    alpha: float
    tau: float
    sigma: float
    n_modes: int

    def __post_init__(self) -> None:
        for name in ("alpha", "tau", "sigma"):
            value = getattr(self, name)
            if not is_real(value):
                raise TypeError(f"{name} must be a float, got {type(value).__name__}")
            # tau = 0 would give the constant mode (lambda = 0) infinite variance.
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        if not is_integer(self.n_modes) or self.n_modes < 1:
            raise ValueError(f"n_modes must be a positive int, got {self.n_modes!r}")
        object.__setattr__(self, "n_modes", operator.index(self.n_modes))

    def std(self, eigenvalue: torch.Tensor) -> torch.Tensor:
        """The coefficient standard deviation ``sigma (lambda + tau^2)^(-alpha/2)``."""
        return self.sigma * (eigenvalue + self.tau**2) ** (-self.alpha / 2)


def neumann_1d(
    field: SpectralGRF, n_samples: int, *, generator: torch.Generator, zero_mean: bool = False
) -> torch.Tensor:
    """Cosine coefficients ``(n_samples, n_modes)`` of samples on ``[0, 1]``.

    ``zero_mean`` sets the constant mode to zero (every sample then integrates to 0).
    """
    k = torch.arange(field.n_modes, dtype=torch.float64)
    std = field.std((math.pi * k) ** 2)
    if zero_mean:
        std[0] = 0.0
    xi = torch.randn(_count(n_samples), field.n_modes, generator=generator, dtype=torch.float64)
    return xi * std


def neumann_2d(
    field: SpectralGRF, n_samples: int, *, generator: torch.Generator, zero_mean: bool = False
) -> torch.Tensor:
    """Cosine coefficients ``(n_samples, n_modes, n_modes)`` of samples on ``[0, 1]^2``."""
    k = torch.arange(field.n_modes, dtype=torch.float64)
    std = field.std(math.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2))
    if zero_mean:
        std[0, 0] = 0.0
    shape = (_count(n_samples), field.n_modes, field.n_modes)
    return torch.randn(shape, generator=generator, dtype=torch.float64) * std


def periodic_1d(
    field: SpectralGRF, n_samples: int, *, generator: torch.Generator, zero_mean: bool = True
) -> torch.Tensor:
    """Complex coefficients ``(n_samples, n_modes + 1)`` of periodic samples on ``[0, 1)``.

    Entry ``k`` holds ``X_k = (a_k - i b_k) / sqrt 2`` for the sample
    ``a_0 + sum_k a_k sqrt 2 cos(2 pi k x) + b_k sqrt 2 sin(2 pi k x)``, so that
    ``v(x) = X_0 + 2 Re sum_(k >= 1) X_k exp(2 pi i k x)`` (see :func:`periodic_values_1d`).
    """
    n = _count(n_samples)
    k = torch.arange(field.n_modes + 1, dtype=torch.float64)
    std = field.std((2 * math.pi * k) ** 2)
    a = torch.randn(n, field.n_modes + 1, generator=generator, dtype=torch.float64) * std
    b = torch.randn(n, field.n_modes + 1, generator=generator, dtype=torch.float64) * std
    b[:, 0] = 0.0
    if zero_mean:
        a[:, 0] = 0.0
    scale = torch.full_like(k, 1 / math.sqrt(2))
    scale[0] = 1.0
    return torch.complex(a, -b) * scale


def cosine_values_1d(coefficients: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_k c_k phi_k(x)`` for coefficients ``(n, K)`` at points ``x`` of shape ``(m,)``."""
    return coefficients @ _cosine_basis(coefficients.shape[-1], x).T


def cosine_antiderivative_1d(coefficients: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``int_0^y sum_k c_k phi_k(s) ds`` at points ``y``, exactly.

    The antiderivative is ``c_0 y + sum_(k>=1) c_k sqrt 2 sin(k pi y) / (k pi)``.
    """
    y = y.to(torch.float64)
    k = torch.arange(1, coefficients.shape[-1], dtype=torch.float64, device=y.device)
    primitive = math.sqrt(2) * torch.sin(math.pi * k * y[:, None]) / (math.pi * k)
    basis = torch.cat([y[:, None], primitive], dim=1)
    return coefficients @ basis.T


def cosine_values_2d(coefficients: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Values ``(n, m, m)`` on the tensor grid ``x x x`` of coefficients ``(n, K, K)``.

    Entry ``[s, i, j]`` is the sample ``s`` at ``(x_i, x_j)``.
    """
    basis = _cosine_basis(coefficients.shape[-1], x)
    return basis @ coefficients @ basis.T


def periodic_values_1d(coefficients: torch.Tensor, resolution: int) -> torch.Tensor:
    """Values ``(n, resolution)`` at ``x_j = j / resolution`` of :func:`periodic_1d` coefficients.

    Exact (an inverse real FFT of the coefficients), provided every wavenumber lies below the
    Nyquist wavenumber: ``n_modes < resolution / 2``.
    """
    if not isinstance(coefficients, torch.Tensor) or coefficients.ndim != 2:
        raise ValueError(
            "coefficients must be a tensor of shape (n, n_modes + 1) (one row per sample), "
            f"got {getattr(coefficients, 'shape', type(coefficients).__name__)}"
        )
    n_modes = coefficients.shape[-1] - 1
    if not (is_integer(resolution) and 2 * n_modes < resolution):
        raise ValueError(
            f"resolution must be an int > 2 * n_modes = {2 * n_modes}, got {resolution!r}"
        )
    resolution = operator.index(resolution)
    shape = (coefficients.shape[0], resolution // 2 + 1)
    spectrum = torch.zeros(shape, dtype=torch.complex128, device=coefficients.device)
    spectrum[:, : n_modes + 1] = coefficients
    return torch.fft.irfft(spectrum, n=resolution, norm="forward")


def _cosine_basis(n_modes: int, x: torch.Tensor) -> torch.Tensor:
    x = x.to(torch.float64)
    k = torch.arange(n_modes, dtype=torch.float64, device=x.device)
    basis = math.sqrt(2) * torch.cos(math.pi * x[:, None] * k)
    basis[:, 0] = 1.0
    return basis


def _count(n_samples: object) -> int:
    if not is_integer(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    return operator.index(n_samples)
