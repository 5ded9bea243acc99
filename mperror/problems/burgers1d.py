r"""Periodic viscous Burgers data for Fourier neural operators (Li et al. 2021's benchmark).

.. math::

    u_t + u u_x = \nu u_{xx} \quad \text{on the periodic } [0, 1), \qquad
    u(\cdot, 0) = u_0 \sim N\big(0, 625 (-\Delta + 25 I)^{-2}\big),

and the operator to learn maps :math:`u_0` to :math:`u(\cdot, 1)`.

Solver: Fourier pseudo-spectral in space, :math:`\hat u_k' = -\nu (2\pi k)^2 \hat u_k
- \tfrac{i}{2} (2\pi k) \widehat{(u^2)}_k`, with the stiff diagonal part integrated exactly by
ETDRK4 (Cox and Matthews 2002; the phi-functions evaluated by contour integrals as in Kassam and
Trefethen 2005) and the quadratic term dealiased by the 2/3 rule (the field is truncated to
wavenumbers ``|k| < n/3`` before squaring and the product is truncated again). The mode
``k = 0`` is untouched by both terms, so the mean is conserved to round-off. Everything runs in
float64, batched over samples, with :mod:`scipy.fft` (single-threaded: torch's threaded FFT
is many times slower on these small transforms when the cores are shared).

Resolutions: every sample is solved on one fine grid and subsampled, so the same seed gives
the same sample at every resolution (``u`` at ``x_j = j / resolution``), which a zero-shot
super-resolution check needs.

>>> u0, u1 = burgers1d_dataset(2, 64, seed=0, fine_resolution=512)
>>> tuple(u0.shape), u1.dtype
((2, 64), torch.float32)
"""

from __future__ import annotations

import math
import operator

import numpy as np
import scipy.fft
import torch

from mperror._checks import is_integer, is_real
from mperror.problems._base import DATA_STREAM, check_seed, generator
from mperror.problems.grf import SpectralGRF, periodic_1d, periodic_values_1d

__all__ = [
    "FIELD",
    "FINE_RESOLUTION",
    "burgers1d_dataset",
    "default_step",
    "solve_periodic_burgers",
    "subsample",
]

#: Initial-condition law of Li et al. (2021): ``N(0, 625 (-Laplacian + 25)^-2)``, mean zero,
#: truncated at wavenumber 128 (standard deviation there is 1.0e-4 of mode 1's).
FIELD = SpectralGRF(alpha=2.0, tau=5.0, sigma=25.0, n_modes=128)
#: The default grid every sample is solved on.
FINE_RESOLUTION = 1024


def solve_periodic_burgers(
    u0: torch.Tensor, *, nu: float, t_final: float, dt: float | None = None
) -> torch.Tensor:
    """``u(., t_final)`` for ``u_t + u u_x = nu u_xx`` on ``[0, 1)`` from ``u0``.

    Args:
        u0: initial values at ``x_j = j / n``, shape ``(batch, n)`` (or ``(n,)``), ``n`` even.
        nu: viscosity, ``> 0``.
        t_final: end time, ``>= 0``.
        dt: time step, adjusted down so that it divides ``t_final``; by default
            :func:`default_step` (from ``max|u0|``, which bounds ``max|u|`` for all later times
            by the maximum principle).

    Returns:
        float64 values at the same points, shape of ``u0``.
    """
    if not (is_real(nu) and math.isfinite(nu) and nu > 0):
        raise ValueError(f"nu must be a positive finite float, got {nu!r}")
    if not (is_real(t_final) and math.isfinite(t_final) and t_final >= 0):
        raise ValueError(f"t_final must be a finite float >= 0, got {t_final!r}")
    if not isinstance(u0, torch.Tensor):
        raise TypeError(f"u0 must be a torch.Tensor, got {type(u0).__name__}")
    if u0.ndim not in (1, 2) or u0.shape[-1] < 4 or u0.shape[-1] % 2:
        raise ValueError(
            f"u0 must have shape (batch, n) or (n,) with n even >= 4, got {tuple(u0.shape)}"
        )
    u = np.atleast_2d(u0.detach().to(device="cpu", dtype=torch.float64).numpy())
    if not np.all(np.isfinite(u)):
        raise ValueError("u0 must be finite")
    n = u.shape[-1]
    if t_final == 0:
        return torch.from_numpy(u.reshape(u0.shape))
    if dt is None:
        dt = default_step(n, nu=nu, u_max=float(np.abs(u).max()))
    elif not (is_real(dt) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite float or None, got {dt!r}")
    steps = max(1, math.ceil(t_final / dt - 1e-9))
    h = t_final / steps

    index = np.arange(n // 2 + 1)
    k = 2 * math.pi * index
    keep = 3 * index < n  # Orszag's 2/3 rule: |k| < n/3 (a kept n/3 would alias onto -n/3)
    g = -0.5j * k * keep

    def nonlinear(v: np.ndarray) -> np.ndarray:
        w = scipy.fft.irfft(v * keep, n=n)
        return g * scipy.fft.rfft(w * w)

    e, e2, q, f1, f2, f3 = _etdrk4_coefficients(-nu * k**2, h)
    v = scipy.fft.rfft(u)
    for _ in range(steps):
        nv = nonlinear(v)
        a = e2 * v + q * nv
        na = nonlinear(a)
        b = e2 * v + q * na
        nb = nonlinear(b)
        c = e2 * a + q * (2 * nb - nv)
        nc = nonlinear(c)
        v = e * v + f1 * nv + 2 * f2 * (na + nb) + f3 * nc
    return torch.from_numpy(scipy.fft.irfft(v, n=n).reshape(u0.shape))


def default_step(n: int, *, nu: float, u_max: float) -> float:
    """A time step for ETDRK4 on ``n`` points with viscosity ``nu`` and ``max|u| = u_max``.

    The nonlinear term is explicit, so every retained wavenumber ``k <= 2 pi n / 3`` must either
    turn by at most ``c = 1/4`` radian per step (``k u_max h <= c``) or be damped by the exact
    exponential (``nu k^2 h >= 1``). The wavenumbers left by the second condition are
    ``k < (nu h)^(-1/2)``, which meet the first when ``h <= c^2 nu / u_max^2``; so
    ``h = max(c / (k_max u_max), c^2 nu / u_max^2)``, capped at ``0.1 / (2 pi u_max)`` so that
    the lowest mode still takes ten steps per radian (accuracy, not stability). At ``nu = 0.1``
    and ``n = 1024`` this agrees with a step four times smaller to about 1e-9 (absolute).
    """
    u_max = max(u_max, 1e-12)
    c = 0.25
    k_max = 2 * math.pi * (n / 3)
    stable = max(c / (k_max * u_max), c**2 * nu / u_max**2)
    return min(stable, 0.1 / (2 * math.pi * u_max))


def _etdrk4_coefficients(linear: np.ndarray, h: float, n_contour: int = 32) -> tuple:
    """ETDRK4's ``e^(Lh)``, ``e^(Lh/2)`` and weights for a real diagonal ``L``.

    The phi-functions cancel catastrophically near ``Lh = 0``; averaging them over a circle of
    radius 1 around each ``Lh`` (Cauchy's integral formula) avoids it.
    """
    lh = linear * h
    theta = 2 * math.pi * (np.arange(n_contour) + 0.5) / n_contour
    z = lh[:, None] + np.exp(1j * theta)[None, :]
    ez, ez2 = np.exp(z), np.exp(z / 2)
    q = h * ((ez2 - 1) / z).mean(1).real
    f1 = h * ((-4 - z + ez * (4 - 3 * z + z * z)) / z**3).mean(1).real
    f2 = h * ((2 + z + ez * (z - 2)) / z**3).mean(1).real
    f3 = h * ((-4 - 3 * z - z * z + ez * (4 - z)) / z**3).mean(1).real
    return np.exp(lh), np.exp(lh / 2), q, f1, f2, f3


def subsample(values: torch.Tensor, resolution: int) -> torch.Tensor:
    """Every ``n / resolution``-th value along the last axis (``x_j = j / resolution``)."""
    n = values.shape[-1]
    if not (is_integer(resolution) and resolution >= 1 and n % resolution == 0):
        raise ValueError(
            f"resolution must be a positive int dividing the fine resolution {n}, "
            f"got {resolution!r}"
        )
    return values[..., :: n // operator.index(resolution)]


def burgers1d_dataset(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    stream: int = DATA_STREAM,
    nu: float = 0.1,
    t_final: float = 1.0,
    fine_resolution: int = FINE_RESOLUTION,
    field: SpectralGRF = FIELD,
    dt: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial values ``u0`` (GRF) and ``u1 = u(., t_final)``, each ``(n_samples, resolution)``.

    Args:
        n_samples: number of samples.
        resolution: grid points per sample; must divide ``fine_resolution``.
        seed, stream: the initial conditions are drawn from ``generator(seed, stream)``
            (:func:`mperror.problems._base.generator`; torch's global generator is not
            used). The default stream, ``DATA_STREAM``, is not the one the problems
            initialise their models from (``MODEL_STREAM``), so data and initial weights
            of one seed are independent.
        nu: viscosity (Li et al. 2021 use 0.1).
        t_final: the output time.
        fine_resolution: the grid every sample is solved on; even, ``> 2 * field.n_modes``.
        field: the initial-condition law (periodic, mean zero).
        dt: see :func:`solve_periodic_burgers`.
        dtype: dtype of the returned tensors (the solve is float64).
    """
    seed = check_seed(seed)
    if not is_integer(stream):
        raise TypeError(f"stream must be a non-negative int, got {type(stream).__name__}")
    if stream < 0:
        raise ValueError(f"stream must be a non-negative int, got {stream}")
    if not (is_integer(fine_resolution) and fine_resolution % 2 == 0):
        raise ValueError(f"fine_resolution must be an even int, got {fine_resolution!r}")
    stream, fine_resolution = operator.index(stream), operator.index(fine_resolution)
    if fine_resolution <= 2 * field.n_modes:
        raise ValueError(
            f"fine_resolution must exceed 2 * field.n_modes = {2 * field.n_modes} so that every "
            f"mode lies below the Nyquist wavenumber, got {fine_resolution}; pass a larger "
            "fine_resolution or a field with fewer modes"
        )
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if not is_integer(resolution):
        raise ValueError(f"resolution must be an int, got {resolution!r}")
    resolution = operator.index(resolution)
    subsample(torch.empty(fine_resolution), resolution)  # validates resolution early
    coefficients = periodic_1d(field, n_samples, generator=generator(seed, stream), zero_mean=True)
    u0 = periodic_values_1d(coefficients, fine_resolution)
    u1 = solve_periodic_burgers(u0, nu=nu, t_final=t_final, dt=dt)
    return subsample(u0, resolution).to(dtype), subsample(u1, resolution).to(dtype)
