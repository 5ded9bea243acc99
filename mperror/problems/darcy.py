r"""2-D Darcy flow data for Fourier neural operators (Li et al. 2021's benchmark).

.. math::

    -\nabla \cdot (a \nabla u) = f \ \text{ on } (0, 1)^2, \qquad u = 0 \text{ on the boundary},

with :math:`f = 1` and a piecewise-constant permeability: :math:`a = 12` where a Gaussian random
field :math:`g \sim N(0, (-\Delta + 9 I)^{-2})` (Neumann cosine basis, mean mode zero) is
positive and :math:`a = 3` elsewhere. The operator to learn maps :math:`a` to :math:`u`.

Solver: the 5-point finite-difference scheme on the nodes :math:`(i h, j h)`,
:math:`h = 1/(n-1)`, in flux form with harmonic-mean face coefficients,

.. math::

    \frac{1}{h^2} \sum_{\text{faces } \sigma} a_\sigma\, (u_P - u_{N(\sigma)}) = f_P, \qquad
    a_\sigma = \frac{2 a_P a_N}{a_P + a_N},

a symmetric positive definite system solved by SuperLU (:func:`scipy.sparse.linalg.splu`). The
harmonic mean is the exact face conductivity of two half-cells in series, so fluxes stay right
across the jumps of :math:`a`; for smooth :math:`a` it equals the midpoint value up to
:math:`O(h^2)` and the scheme is second-order accurate.

Resolutions: each sample is solved on one fine grid and subsampled (every ``s``-th node, which
keeps the boundary), so the same seed gives the same sample at every resolution.

>>> a, u = darcy_dataset(2, 9, seed=0, fine_resolution=17)
>>> tuple(a.shape), u.dtype, sorted(set(a.flatten().tolist())) <= [3.0, 12.0]
((2, 9, 9), torch.float32, True)
"""

from __future__ import annotations

import itertools
import math
import operator
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from numpy.typing import ArrayLike

from mperror._checks import is_integer, is_real
from mperror.problems._base import DATA_STREAM, check_seed, generator
from mperror.problems.grf import SpectralGRF, cosine_values_2d, neumann_2d

__all__ = [
    "FIELD",
    "FINE_RESOLUTION",
    "darcy_dataset",
    "periodic_subsample",
    "solve_darcy",
    "solve_many",
    "subsample",
]

#: The field whose sign sets the permeability: ``N(0, (-Laplacian + 9)^-2)``, mean mode zero,
#: 32 x 32 modes. (Only its sign matters, so ``sigma`` is immaterial.)
FIELD = SpectralGRF(alpha=2.0, tau=3.0, sigma=1.0, n_modes=32)
#: The default grid every sample is solved on: 241 nodes per side, so that resolutions
#: 121, 81, 61, 49, 41, 31, 25, 21, 17, ... are exact subsamples.
FINE_RESOLUTION = 241


def solve_darcy(a: ArrayLike, f: ArrayLike | float = 1.0) -> torch.Tensor:
    """The finite-difference solution of ``-div(a grad u) = f``, ``u = 0`` on the boundary.

    Args:
        a: positive permeability at the nodes (array or tensor), shape ``(n, n)``, ``n >= 3``;
            entry ``[i, j]`` is the value at ``x = i / (n - 1)``, ``y = j / (n - 1)``.
        f: the source at the nodes (``(n, n)``) or a constant; boundary entries are unused.

    Returns:
        float64 ``u`` at the nodes, shape ``(n, n)``, zero on the boundary.
    """
    a, f = _as_float64(a), _as_float64(f)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 3:
        raise ValueError(f"a must be a square (n, n) array with n >= 3, got shape {a.shape}")
    if not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise ValueError("a must be finite and positive")
    top, bottom = float(a.max()), float(a.min())
    if not (math.isfinite(2.0 * top * top) and bottom * bottom >= np.finfo(np.float64).tiny):
        # the face values 2 a b / (a + b) form products of two permeabilities
        raise ValueError(
            f"a must lie within about [1e-154, 1e154] (got {bottom:g} to {top:g}): scale a "
            "and f by the same factor, which leaves u unchanged"
        )
    n = a.shape[0]
    if f.shape not in ((), a.shape):
        raise ValueError(f"f must be a constant or of a's shape {a.shape}, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("f must be finite")
    f = np.broadcast_to(f, a.shape)
    h2 = (1.0 / (n - 1)) ** 2
    ax = 2 * a[:-1, :] * a[1:, :] / (a[:-1, :] + a[1:, :])  # face (i, j) - (i + 1, j)
    ay = 2 * a[:, :-1] * a[:, 1:] / (a[:, :-1] + a[:, 1:])  # face (i, j) - (i, j + 1)
    east, west = ax[1:, 1:-1], ax[:-1, 1:-1]
    north, south = ay[1:-1, 1:], ay[1:-1, :-1]
    m = n - 2
    idx = np.arange(m * m).reshape(m, m)
    # Neighbours on the boundary carry u = 0, so their entries are dropped.
    rows = [idx, idx[:-1, :], idx[1:, :], idx[:, :-1], idx[:, 1:]]
    cols = [idx, idx[1:, :], idx[:-1, :], idx[:, 1:], idx[:, :-1]]
    vals = [
        (east + west + north + south) / h2,
        -east[:-1, :] / h2,
        -west[1:, :] / h2,
        -north[:, :-1] / h2,
        -south[:, 1:] / h2,
    ]
    matrix = scipy.sparse.csc_matrix(
        (
            np.concatenate([v.ravel() for v in vals]),
            (np.concatenate([r.ravel() for r in rows]), np.concatenate([c.ravel() for c in cols])),
        ),
        shape=(m * m, m * m),
    )
    u = np.zeros((n, n))
    # splu (the factorisation spsolve runs, the same bits) releases the GIL: see solve_many
    solution = scipy.sparse.linalg.splu(matrix).solve(f[1:-1, 1:-1].ravel())
    u[1:-1, 1:-1] = solution.reshape(m, m)
    return torch.from_numpy(u)


def _as_float64(values: ArrayLike | float) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def subsample(values: torch.Tensor, resolution: int) -> torch.Tensor:
    """Every ``s``-th node along the last two axes, ``s = (n - 1) / (resolution - 1)``."""
    n = values.shape[-1]
    if not (is_integer(resolution) and resolution >= 2 and (n - 1) % (resolution - 1) == 0):
        valid = [r for r in range(2, n + 1) if (n - 1) % (r - 1) == 0]
        raise ValueError(
            f"resolution must be an int r with (r - 1) dividing {n - 1} (fine grid of {n} "
            f"nodes): one of {valid}; got {resolution!r}"
        )
    stride = (n - 1) // (resolution - 1)
    return values[..., ::stride, ::stride]


def periodic_subsample(values: torch.Tensor, points: int) -> torch.Tensor:
    """The ``points x points`` nodes ``(i / points, j / points)``, ``0 <= i, j < points``:
    :func:`subsample` at ``points + 1`` nodes with the last row and column (``x = 1`` and
    ``y = 1``) dropped.

    This is the grid an FFT sees as periodic. The solution is zero on the whole boundary, so
    the dropped nodes equal their periodic images on ``x = 0`` and ``y = 0`` and the periodic
    extension of ``u`` is continuous; ``points`` can be a power of two, as cuFFT's half FFT
    requires, when ``fine_resolution - 1`` is one.

    >>> periodic_subsample(torch.arange(25.0).reshape(5, 5), 2)
    tensor([[ 0.,  2.],
            [10., 12.]])
    """
    if not is_integer(points) or points < 1:
        raise ValueError(f"points must be a positive int, got {points!r}")
    return subsample(values, operator.index(points) + 1)[..., :-1, :-1]


def darcy_dataset(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    stream: int = DATA_STREAM,
    fine_resolution: int = FINE_RESOLUTION,
    field: SpectralGRF = FIELD,
    a_high: float = 12.0,
    a_low: float = 3.0,
    forcing: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Permeabilities ``a`` and solutions ``u``, each ``(n_samples, resolution, resolution)``.

    Args:
        n_samples: number of samples.
        resolution: nodes per side, including the boundary; ``resolution - 1`` must divide
            ``fine_resolution - 1``.
        seed, stream: the random fields are drawn from ``generator(seed, stream)``
            (:func:`mperror.problems._base.generator`; torch's global generator is not
            used). The default stream, ``DATA_STREAM``, is not the one the problems
            initialise their models from (``MODEL_STREAM``), so data and initial weights
            of one seed are independent.
        fine_resolution: nodes per side of the grid every sample is solved on.
        field: the Gaussian random field whose sign picks ``a_high`` (``> 0``) or ``a_low``.
        a_high, a_low: the two permeabilities.
        forcing: the constant source ``f``.
        dtype: dtype of the returned tensors (the solve is float64).
    """
    seed = check_seed(seed)
    if not is_integer(stream):
        raise TypeError(f"stream must be a non-negative int, got {type(stream).__name__}")
    if stream < 0:
        raise ValueError(f"stream must be a non-negative int, got {stream}")
    if not (is_integer(fine_resolution) and fine_resolution >= 3):
        raise ValueError(f"fine_resolution must be an int >= 3, got {fine_resolution!r}")
    if not is_integer(resolution):
        raise ValueError(f"resolution must be an int, got {resolution!r}")
    stream, fine_resolution = operator.index(stream), operator.index(fine_resolution)
    resolution = operator.index(resolution)
    for name, value in (("a_high", a_high), ("a_low", a_low)):
        if not (is_real(value) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite float, got {value!r}")
    if not (is_real(forcing) and math.isfinite(forcing)):
        raise ValueError(f"forcing must be a finite float (the constant source), got {forcing!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    subsample(torch.empty(fine_resolution, fine_resolution), resolution)  # validates early
    coefficients = neumann_2d(field, n_samples, generator=generator(seed, stream), zero_mean=True)
    x = torch.linspace(0.0, 1.0, fine_resolution, dtype=torch.float64)
    g = cosine_values_2d(coefficients, x)
    high, low = (torch.tensor(v, dtype=torch.float64) for v in (a_high, a_low))
    a = torch.where(g > 0, high, low)  # float64 scalars: Python ones would make float32
    u = solve_many(a, forcing)
    return subsample(a, resolution).to(dtype), subsample(u, resolution).to(dtype)


# Samples x nodes from which the solves are spread over threads (16 samples of 65 x 65 nodes):
# below it, the threads cost more than they save.
_PARALLEL_WORK = 2**16


def solve_many(
    a: torch.Tensor, forcing: float = 1.0, *, workers: int | None = None
) -> torch.Tensor:
    """:func:`solve_darcy` of every sample ``a[k]`` (``a``: ``(n_samples, n, n)``), stacked.

    The solves are independent and SuperLU's factorisation releases the GIL, so they run on
    ``workers`` threads (default: one per CPU this process may use, at most 16, when there are
    enough solves to pay for them): the full ``fno-darcy`` data (1,200 solves on 257 x 257
    nodes, a quarter of a second each) take minutes on one core. Each sample is solved by the
    same code either way, so the result does not depend on ``workers``.
    """
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        work = a.shape[0] * a[0].numel() if a.shape[0] else 0
        workers = min(cpus or 1, 16, a.shape[0]) if work >= _PARALLEL_WORK else 1
    if not is_integer(workers) or workers < 1:
        raise ValueError(f"workers must be an int >= 1 or None, got {workers!r}")
    if workers == 1 or a.shape[0] <= 1:
        return torch.stack([solve_darcy(sample, forcing) for sample in a])
    with ThreadPoolExecutor(workers) as pool:
        return torch.stack(list(pool.map(solve_darcy, a, itertools.repeat(forcing))))
