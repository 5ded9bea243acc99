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
    check_tolerance,
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

    Stopping. Two products apart, the iterates give the residual of H²'s Rayleigh quotient
    for free: with w = H v and v = H v' / μ' (v' the iterate before), ``w / μ' = H² v' / μ'²``,
    so s = ‖w / μ' - v'‖ = ‖H² v' - μ'² v'‖ / μ'². For symmetric H² (Kato-Temple), μ'² then
    lies within s² μ'² / g of an eigenvalue of H², g the gap to the rest of its spectrum: about
    s² / (2 (1 - r²)) relative for μ. The test needs no estimate of r, so a small gap does not
    make it stop early (as a test on the increment μₖ - μₖ₋₁ does: with r = 0.98 that stopped
    after about six products, 1-2% short of L, in float32); the residual falls like rᵏ, so a
    small gap costs products instead: about ln(tol) / ln(r) of them.

    Args:
        max_iter: most Hessian-vector products.
        tol: stop when s < tol (``converged=True``); ``None`` uses √ε of the params' least
            precise dtype, which puts μ within about ε / (2 (1 - r²)) of an eigenvalue's
            magnitude. A float in [0, 1); 0 runs all ``max_iter`` products.
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
        object.__setattr__(self, "max_iter", check_positive_int(self.max_iter, argument="max_iter"))
        check_tolerance(self.tol, zero=True)
        check_hvp_method(self.hvp)
        check_generator(self.generator)

    def __call__(self, loss_fn: LossFn, params: Sequence[torch.Tensor]) -> LipschitzEstimate:
        params = as_params(params)
        tol = default_tolerance(params) if self.tol is None else float(self.tol)
        history: list[float] = []
        converged = False
        with preserved(params), HessianOperator(loss_fn, params, self.hvp) as op:
            v = random_unit(op.dim, self.generator, op.device)
            v_before, mu_before = None, 0.0
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
                # H²'s residual at v_before (class docstring, "Stopping")
                # strictly below tol, so that tol = 0 runs every product, as documented
                if v_before is not None and norm(w / mu_before - v_before) < tol:
                    converged = True
                    break
                v_before, mu_before = v, mu
                v = w / mu
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
