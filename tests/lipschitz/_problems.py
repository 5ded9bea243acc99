"""Test problems with an independent oracle for L = max |λ(∇²f)|.

Each problem is a closure loss over leaf tensors (what the estimators see) plus the exact
Hessian, obtained without the code under test: by construction for quadratics and least
squares, and by ``torch.autograd.functional.hessian`` (dense, double reverse mode over a flat
parameter vector) for the networks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

F64 = torch.float64


@dataclass
class Problem:
    name: str
    loss_fn: Callable[[], torch.Tensor]
    params: list[torch.Tensor]
    hessian: torch.Tensor

    @property
    def eigenvalues(self) -> torch.Tensor:
        """Eigenvalues of the exact Hessian, largest magnitude first (torch.linalg.eigvalsh)."""
        values = torch.linalg.eigvalsh(0.5 * (self.hessian + self.hessian.T))
        return values[torch.argsort(values.abs(), descending=True)]

    @property
    def lipschitz(self) -> float:
        return self.eigenvalues.abs().max().item()

    @property
    def dim(self) -> int:
        return sum(p.numel() for p in self.params)

    def gap_ratio(self) -> float:
        """r = |λ₂| / |λ₁|, λ₂ the largest magnitude below |λ₁| (ties with |λ₁| excluded)."""
        mags = self.eigenvalues.abs()
        below = mags[mags < mags[0] * (1 - 1e-9)]
        return 0.0 if below.numel() == 0 else (below[0] / mags[0]).item()


def power_iterations(problem: Problem, rel: float = 1e-3) -> int:
    """Products that bring power iteration's ‖Hv‖ within ``rel`` of L (PowerIteration docstring).

    1 - μₖ/L <= 1 - μₖ²/L² <= T r^(2(k-1)). T = Σ_{i>=2} cᵢ²/c₁² for the Gaussian start is a
    χ²ₙ₋₁/χ²₁ ratio; assuming c₁² >= 1e-4 (fails with probability ≈ 0.008) and χ²ₙ₋₁ <= 3n
    (fails with probability < 1e-3 for n >= 8) gives T <= 3n·10⁴.
    """
    r = problem.gap_ratio()
    if r == 0.0:
        return 2
    bound_t = 3 * problem.dim * 1e4
    return 1 + math.ceil(math.log(bound_t / rel) / (2 * math.log(1 / r)))


def orthogonal(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, dtype=F64, generator=g))
    return q * torch.sign(torch.diagonal(r))


def quadratic(eigenvalues: list[float], *, seed: int = 1, split: int | None = None) -> Problem:
    """f = ½ xᵀAx, A = Q diag(eigenvalues) Qᵀ: Hessian A, spectrum known exactly.

    ``split`` cuts x into two leaf tensors to exercise several params.
    """
    n = len(eigenvalues)
    q = orthogonal(n, seed)
    a = q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ q.T
    a = 0.5 * (a + a.T)
    g = torch.Generator().manual_seed(seed + 100)
    x0 = torch.randn(n, dtype=F64, generator=g)
    if split is None:
        params = [x0.clone().requires_grad_(True)]
    else:
        params = [x0[:split].clone().requires_grad_(True), x0[split:].clone().requires_grad_(True)]

    def loss_fn() -> torch.Tensor:
        x = torch.cat([p.reshape(-1) for p in params])
        return 0.5 * x @ a @ x

    return Problem(f"quadratic{eigenvalues}", loss_fn, params, a)


def least_squares(m: int = 30, n: int = 8, *, seed: int = 2) -> tuple[Problem, torch.Tensor]:
    """f = ½‖Ax - b‖²: Hessian AᵀA, L = ‖A‖₂² (returns the problem and A)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(m, n, dtype=F64, generator=g)
    b = torch.randn(m, dtype=F64, generator=g)
    x = torch.randn(n, dtype=F64, generator=g).requires_grad_(True)

    def loss_fn() -> torch.Tensor:
        return 0.5 * torch.sum((a @ x - b) ** 2)

    return Problem("least_squares", loss_fn, [x], a.T @ a), a


def mlp_params(widths: list[int], *, seed: int, dtype: torch.dtype = F64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    params = []
    for fan_in, fan_out in itertools.pairwise(widths):
        bound = math.sqrt(6 / (fan_in + fan_out))
        w = (2 * torch.rand(fan_out, fan_in, dtype=F64, generator=g) - 1) * bound
        b = 0.1 * torch.randn(fan_out, dtype=F64, generator=g)
        params += [w.to(dtype).requires_grad_(True), b.to(dtype).requires_grad_(True)]
    return params


def mlp(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = x
    for i in range(0, len(params) - 2, 2):
        h = torch.tanh(h @ params[i].T + params[i + 1])
    return h @ params[-2].T + params[-1]


def _dense_hessian(
    loss_of: Callable[[list[torch.Tensor]], torch.Tensor], params: list[torch.Tensor]
) -> torch.Tensor:
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def f(flat: torch.Tensor) -> torch.Tensor:
        pieces, offset = [], 0
        for p in params:
            pieces.append(flat[offset : offset + p.numel()].reshape(p.shape))
            offset += p.numel()
        return loss_of(pieces)

    return torch.autograd.functional.hessian(f, flat0)


def regression(
    widths: list[int] | None = None, *, seed: int = 3, dtype: torch.dtype = F64
) -> Problem:
    """MSE of a tanh MLP fitted to x sin(5x) on 16 points of [-1, 1] (REFERENCES.md section 4)."""
    widths = widths or [1, 6, 6, 1]
    params = mlp_params(widths, seed=seed, dtype=dtype)
    x = torch.linspace(-1, 1, 16, dtype=dtype).reshape(-1, 1)
    y = x * torch.sin(5 * x)

    def loss_of(ps: list[torch.Tensor]) -> torch.Tensor:
        return torch.mean((mlp(ps, x) - y) ** 2)

    hessian = _dense_hessian(loss_of, params) if dtype == F64 else torch.empty(0)
    return Problem(f"regression{widths}", lambda: loss_of(params), params, hessian)


def poisson_pinn(widths: list[int] | None = None, *, seed: int = 4) -> Problem:
    """PINN loss for -u'' = π² sin(πx) on [-1, 1], u(±1) = 0, with u_xx from autograd.

    The loss itself holds second derivatives in x (autograd.grad with create_graph=True), so
    its Hessian in the parameters differentiates through a double backward.
    """
    widths = widths or [1, 6, 6, 1]
    params = mlp_params(widths, seed=seed)
    x_interior = torch.linspace(-0.9, 0.9, 12, dtype=F64).reshape(-1, 1)
    x_boundary = torch.tensor([[-1.0], [1.0]], dtype=F64)

    def loss_of(ps: list[torch.Tensor]) -> torch.Tensor:
        x = x_interior.clone().requires_grad_(True)
        u = mlp(ps, x)
        (u_x,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        (u_xx,) = torch.autograd.grad(u_x.sum(), x, create_graph=True)
        residual = u_xx + math.pi**2 * torch.sin(math.pi * x)
        return torch.mean(residual**2) + torch.mean(mlp(ps, x_boundary) ** 2)

    return Problem(
        f"poisson_pinn{widths}", lambda: loss_of(params), params, _dense_hessian(loss_of, params)
    )
