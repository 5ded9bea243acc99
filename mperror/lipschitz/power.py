"""Power iteration on Hessian-vector products: L ≈ max |λ(∇²f(θ))|."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mperror.lipschitz._hvp import HessianOperator, HVPMethod, check_hvp_method
from mperror.lipschitz._params import (
    as_params,
    check_generator,
    check_positive_int,
    norm,
    preserved,
    random_unit,
)
from mperror.lipschitz._protocol import LipschitzEstimate, LossFn

__all__ = ["PowerIteration", "default_tolerance"]

_HISTORY = 20


def default_tolerance(params: Sequence[torch.Tensor]) -> float:
    """√ε of the least precise dtype among ``params``: what their products can resolve."""
    eps = max(torch.finfo(p.dtype).eps for p in params)
    return math.sqrt(eps)


@dataclass(frozen=True, kw_only=True)
class PowerIteration:
    """Power iteration v ← Hv / ‖Hv‖ from a random start; value = ‖Hv‖ for the last unit v.

    With H = ∇²f(θ) symmetric, eigenvalues λᵢ, and a start v₀ = Σ cᵢ eᵢ, the k-th product gives
    μₖ = ‖Hᵏv₀‖ / ‖Hᵏ⁻¹v₀‖. Power iteration finds the eigenvalue of largest *magnitude*, which is
    exactly L = ‖H‖₂, whatever its sign. μₖ² is the Rayleigh quotient of H² at vₖ₋₁, so

        0 <= 1 - μₖ² / λ₁² <= T r^(2(k-1)),   r = |λ₂| / |λ₁|,   T = Σ_{|λᵢ|<|λ₁|} cᵢ² / c₁²,

    with |λ₂| the largest magnitude below |λ₁|, and μₖ never exceeds L (in exact arithmetic).
    μₖ rather than the Rayleigh quotient ρₖ = vᵀHv is returned as ``value``: |ρₖ| <= μₖ
    (Cauchy-Schwarz), both tend to L, and μₖ still converges when λ and -λ are both dominant,
    where ρₖ does not. ρₖ is reported as ``eigenvalue`` (meaningful when one sign dominates).
    For a Gaussian start c ~ N(0, I) in n dimensions T is a ratio χ²ₙ₋₁ / χ²₁: c₁² >= 1e-4
    fails with probability about 0.008 (|N(0, 1)| < 0.01), and where it holds and χ²ₙ₋₁ <= 3n
    (all but a tiny probability for n >= 10), T <= 3n·10⁴.

    Args:
        max_iter: most Hessian-vector products.
        tol: stop when |μₖ - μₖ₋₁| <= tol·μₖ; ``None`` uses √ε of the params' least precise
            dtype. μₖ increases monotonically, and with ratio r the error left is about
            (μₖ - μₖ₋₁) r² / (1 - r²): a small gap makes the test stop early, so read
            ``residual`` and, if in doubt, compare with :class:`~mperror.lipschitz.Lanczos`.
        hvp: ``"double_backward"`` (default), ``"forward_over_reverse"`` or ``"auto"`` (see
            :class:`~mperror.lipschitz.HessianOperator`).
        generator: draws the start vector (float64, on the generator's device, then moved).

    Returns a :class:`LipschitzEstimate` with ``kind="estimate"``, ``evaluations`` the number of
    products, ``residual = ‖Hv - ρv‖ / μ`` and ``history`` the last μₖ.

    >>> A = torch.diag(torch.tensor([1.0, -3.0, 2.0], dtype=torch.float64))
    >>> x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    >>> est = PowerIteration(generator=torch.Generator().manual_seed(0))(
    ...     lambda: 0.5 * x @ A @ x, [x])
    >>> round(est.value, 6), round(est.eigenvalue, 6), est.converged
    (3.0, -3.0, True)

    Possible issues: a zero product (H v₀ = 0) returns 0 and stops; for a random start this
    means H = 0. Rounding in H v limits the accuracy to about the products' relative error;
    float16 params may not reach the default tolerance.
    """

    max_iter: int = 500
    tol: float | None = None
    hvp: HVPMethod = "double_backward"
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.max_iter, argument="max_iter")
        if self.tol is not None and not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol must be a float >= 0 or None; got {self.tol!r}")
        check_hvp_method(self.hvp)
        check_generator(self.generator)

    def __call__(self, loss_fn: LossFn, params: Sequence[torch.Tensor]) -> LipschitzEstimate:
        params = as_params(params)
        tol = default_tolerance(params) if self.tol is None else float(self.tol)
        history: list[float] = []
        converged = False
        with preserved(params), HessianOperator(loss_fn, params, self.hvp) as op:
            v = random_unit(op.dim, self.generator, op.device)
            mu_prev = 0.0
            for k in range(1, self.max_iter + 1):
                w = op(v)
                mu = norm(w)
                rho = torch.dot(v, w).item()
                if not math.isfinite(mu):
                    raise FloatingPointError(
                        f"Hessian-vector product {k} is not finite: the loss's second "
                        "derivatives overflow (or are NaN) at these params"
                    )
                history.append(mu)
                if mu == 0.0:
                    converged = True
                    residual = 0.0
                    break
                residual = norm(w - rho * v) / mu
                if k > 1 and abs(mu - mu_prev) <= tol * mu:
                    converged = True
                    break
                v = w / mu
                mu_prev = mu
            return LipschitzEstimate(
                value=mu,
                kind="estimate",
                method="power_iteration",
                evaluations=op.evaluations,
                converged=converged,
                eigenvalue=rho,
                residual=residual,
                history=tuple(history[-_HISTORY:]),
                hvp=op.method_used,
            )
