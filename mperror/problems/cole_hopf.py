r"""Exact solution of the viscous Burgers benchmark by the Cole-Hopf transform.

Burgers' equation :math:`u_t + u u_x = \nu u_{xx}` on the real line with
:math:`u(x, 0) = -\sin(\pi x)` (the PINN benchmark of Raissi et al. 2019 and Hayford et al. 2024,
:math:`\nu = 0.01/\pi`). Because :math:`u_0` is odd about :math:`x = 0` and about
:math:`x = \pm 1`, so is :math:`u(\cdot, t)`, and the whole-line solution satisfies the
benchmark's boundary values :math:`u(\pm 1, t) = 0` on :math:`[-1, 1]`.

Derivation. With :math:`u = -2\nu\,\varphi_x / \varphi`, Burgers' equation becomes the heat
equation :math:`\varphi_t = \nu \varphi_{xx}` with
:math:`\varphi(y, 0) = \exp(-\tfrac{1}{2\nu}\int_0^y u_0) = \exp(\tfrac{1 - \cos \pi y}{2\pi\nu})`,
and any constant factor cancels, so take :math:`f(y) = \exp(-\cos(\pi y) / (2\pi\nu))`. Then

.. math::

    \varphi(x, t) = \int f(y)\, K_t(x - y)\, dy, \qquad
    K_t(s) = \frac{e^{-s^2 / (4\nu t)}}{\sqrt{4\pi\nu t}},

and, since :math:`\varphi_x = \int f'(y) K_t(x - y) dy` with
:math:`f'(y) = f(y) \sin(\pi y) / (2\nu)`,

.. math::

    u(x, t) = -\frac{\int \sin(\pi y)\, f(y)\, K_t(x - y)\, dy}{\int f(y)\, K_t(x - y)\, dy}.

Substituting :math:`y = x - \sqrt{4\nu t}\, z` turns both integrals into
:math:`\int g(z) e^{-z^2} dz`, which Gauss-Hermite quadrature with nodes :math:`z_i` and weights
:math:`w_i` evaluates:

.. math::

    u(x, t) \approx -\frac{\sum_i w_i \sin(\pi y_i) f(y_i)}{\sum_i w_i f(y_i)},
    \qquad y_i = x - \sqrt{4\nu t}\, z_i.

At :math:`\nu = 0.01/\pi`, :math:`f` spans :math:`e^{\pm 50}`; the sums are evaluated with the
shift :math:`\log w_i - \cos(\pi y_i)/(2\pi\nu) - \max_j(\cdot)` (a log-sum-exp) so nothing
overflows, and the ratio is unchanged. At :math:`t = 0` every :math:`y_i = x` and the formula
gives :math:`-\sin(\pi x)` exactly.

Accuracy: the integrand is entire, so Gauss-Hermite converges spectrally. On the 256 x 100
benchmark grid, going from 50 to 100 nodes changes ``u`` by at most 1.8e-7, from 100 to 200 by
4e-15 and from 200 to 400 by 2e-15; the default 256 keeps a margin. The tests compare it
with the modified-Bessel series of the same solution (where that series is well-conditioned)
and with an independent pseudo-spectral solve (:mod:`mperror.problems.burgers1d`, 2,048
points), both to 1e-9.

Away from the benchmark the rule alone can be wrong: in :math:`z` the factor :math:`f` peaks
where :math:`y_i` reaches an odd integer, up to :math:`1/\sqrt{4\nu t}` from the centre, with a
width of about :math:`1/\sqrt{2\pi t}`, so for small :math:`\nu` the peak can lie past the
nodes and for large :math:`t` between them (at :math:`\nu = 3 \cdot 10^{-4}/\pi`, :math:`t =
0.5`, 256 nodes were 0.16 off; at the benchmark's :math:`\nu` and :math:`t = 30`, 4e-3). So
every point with :math:`t > 0` is checked: the rules of ``n`` and ``n + n // 2`` nodes must
agree to 1e-10, and the two outermost nodes on each side carry at most 1e-14 of the weight,
else ValueError (raise ``n_quadrature``); the result is the ``n``-node rule's. The tests
compare points off the benchmark that pass with a trapezoidal rule in :math:`y` (spectrally
accurate for this entire, fast-decaying integrand).

>>> import numpy as np
>>> u = cole_hopf_solution(np.array([-0.5, 0.0, 0.5]), 0.0)
>>> [round(float(v), 12) for v in u]
[1.0, -0.0, -1.0]
"""

from __future__ import annotations

import math
import operator

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import roots_hermite

from mperror._checks import is_integer, is_real

__all__ = ["NU", "cole_hopf_solution"]

#: The benchmark's viscosity, 0.01 / pi.
NU = 0.01 / math.pi


def cole_hopf_solution(
    x: ArrayLike,
    t: ArrayLike,
    *,
    nu: float = NU,
    n_quadrature: int = 256,
    chunk: int = 4096,
) -> np.ndarray:
    """``u(x, t)`` for ``u_t + u u_x = nu u_xx``, ``u(x, 0) = -sin(pi x)``, in float64.

    Args:
        x: positions (any shape; broadcast against ``t``).
        t: times, ``>= 0``.
        nu: the viscosity, ``> 0``; default ``0.01 / pi``.
        n_quadrature: Gauss-Hermite nodes, at least 8 (see the module docstring for the
            accuracy and the check that refuses points the rule does not resolve).
        chunk: points evaluated at once, to bound memory at ``chunk * n_quadrature`` floats.

    Returns:
        A float64 array of the broadcast shape of ``x`` and ``t``.
    """
    if not (is_real(nu) and math.isfinite(nu) and nu > 0):
        raise ValueError(f"nu must be a positive finite float, got {nu!r}")
    if not (is_integer(n_quadrature) and n_quadrature >= 8):
        raise ValueError(f"n_quadrature must be an int >= 8, got {n_quadrature!r}")
    if not (is_integer(chunk) and chunk >= 1):
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    n_quadrature, chunk = operator.index(n_quadrature), operator.index(chunk)
    x_arr, t_arr = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(t, np.float64))
    if not np.all(np.isfinite(x_arr)):
        raise ValueError("x must be finite")
    if not np.all(np.isfinite(t_arr) & (t_arr >= 0)):
        raise ValueError("t must be finite and >= 0")
    finer = n_quadrature + n_quadrature // 2
    rule, check = _rule(n_quadrature), _rule(finer)
    x_flat, t_flat = x_arr.reshape(-1), t_arr.reshape(-1)
    out = np.empty_like(x_flat)
    for start in range(0, x_flat.size, chunk):
        xs = x_flat[start : start + chunk, None]
        ts = t_flat[start : start + chunk, None]
        u, edge = _quadrature(xs, ts, nu, *rule)
        fine, _ = _quadrature(xs, ts, nu, *check)
        # at t = 0 every node is y = x and the rule gives -sin(pi x) whatever n is
        moving = ts[:, 0] > 0
        gap = np.where(moving, np.abs(u - fine), 0.0)
        edge = np.where(moving, edge, 0.0)
        worst = int(np.argmax(np.maximum(gap / _AGREE, edge / _EDGE)))
        if gap[worst] > _AGREE or edge[worst] > _EDGE:
            x0, t0 = float(xs[worst, 0]), float(ts[worst, 0])
            raise ValueError(
                f"n_quadrature={n_quadrature} Gauss-Hermite nodes do not resolve u at x={x0!r}, "
                f"t={t0!r} for nu={nu!r} (the rules of {n_quadrature} and {finer} nodes "
                f"differ by {gap[worst]:.1e}, the outermost nodes carry {edge[worst]:.1e} of "
                "the weight): the integrand "
                "peaks beyond the nodes or between them, as it does for small nu or large t; "
                "raise n_quadrature (it cannot help once the peak lies past about "
                "sqrt(4 nu t) * 26, where the nodes' weights underflow)"
            )
        out[start : start + chunk] = u
    return out.reshape(x_arr.shape)


# The checks every point with t > 0 must pass: the rule of n nodes and that of n + n // 2
# agree to _AGREE, and the two outermost nodes on each side carry at most _EDGE of the
# normalised weight.
_AGREE = 1e-10
_EDGE = 1e-14


def _rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and log-weights (the outermost weights underflow to zero for large
    n: they contribute nothing and are left out)."""
    nodes, weights = roots_hermite(n)
    keep = weights > 0
    return nodes[keep], np.log(weights[keep])


def _quadrature(
    xs: np.ndarray, ts: np.ndarray, nu: float, nodes: np.ndarray, log_w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """u at the rows of ``xs, ts`` by the rule, and the share of each row's weight on the two
    outermost nodes of each side."""
    y = xs - np.sqrt(4.0 * nu * ts) * nodes
    exponent = log_w - np.cos(math.pi * y) / (2.0 * math.pi * nu)
    weight = np.exp(exponent - exponent.max(axis=1, keepdims=True))
    total = weight.sum(1)
    edge = np.maximum(weight[:, :2].max(1), weight[:, -2:].max(1)) / total
    return -(np.sin(math.pi * y) * weight).sum(1) / total, edge
