"""Hessian-vector products: forward-over-reverse against double backward and dense Hessians."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwad

from mperror.lipschitz import HVP_METHODS, HessianOperator

from ._problems import F64, poisson_pinn, quadratic, regression

# Round-off tolerance for comparing two float64 evaluations of the same H v: each entry is a sum
# of at most a few thousand rounded products here (61 parameters, 12 + 2 points, 3 layers, two
# derivatives in x), each evaluation order gives an error below γ_m ≈ m·2^-53 ≈ 1e-13 of the sum
# of the terms' magnitudes, which stays within 100x of max |Hv| on these problems: 1e-11.
ROUND_OFF = 1e-11


def _vector(dim: int, seed: int) -> torch.Tensor:
    return torch.randn(dim, dtype=F64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("make", [regression, poisson_pinn], ids=["regression", "pinn"])
def test_forward_over_reverse_equals_double_backward(make):
    """Oracle: the two HVP methods, and H v with H from torch.autograd.functional.hessian."""
    problem = make()
    v = _vector(problem.dim, 5)
    with HessianOperator(problem.loss_fn, problem.params, "forward_over_reverse") as op:
        forward = op(v)
    with HessianOperator(problem.loss_fn, problem.params, "double_backward") as op:
        double = op(v)
    dense = problem.hessian @ v
    scale = dense.abs().max()
    torch.testing.assert_close(forward, double, rtol=0, atol=ROUND_OFF * scale)
    torch.testing.assert_close(forward, dense, rtol=0, atol=ROUND_OFF * scale)
    torch.testing.assert_close(double, dense, rtol=0, atol=ROUND_OFF * scale)
    assert forward.dtype == F64 and forward.shape == (problem.dim,)


@pytest.mark.parametrize("method", HVP_METHODS)
def test_operator_leaves_params_alone(method):
    """After products, params carry no tangent, keep their bits and requires_grad."""
    problem = poisson_pinn()
    before = [p.detach().clone() for p in problem.params]
    with HessianOperator(problem.loss_fn, problem.params, method) as op:
        for seed in range(3):
            op(_vector(problem.dim, seed))
        assert op.evaluations == 3
        assert op.method_used == ("forward_over_reverse" if method == "auto" else method)
    for p, b in zip(problem.params, before, strict=True):
        assert fwad.unpack_dual(p).tangent is None
        assert p.requires_grad and p.grad is None
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=0)


def test_unused_parameter_gives_zero_rows():
    """Oracle: f = Σx³ has H = diag(6x) on x and a zero row for a parameter it never uses
    (torch.autograd.grad returns None for it; both methods must turn that into zeros)."""
    x = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    unused = torch.tensor([3.0], dtype=F64, requires_grad=True)
    for method in ("forward_over_reverse", "double_backward"):
        with HessianOperator(lambda: (x**3).sum(), [x, unused], method) as op:
            hv = op(torch.tensor([1.0, 1.0, 1.0], dtype=F64))
        torch.testing.assert_close(hv, torch.tensor([6.0, 12.0, 0.0], dtype=F64))


class _TanhWithoutJvp(torch.autograd.Function):
    """tanh with a backward formula but no forward-mode (jvp) rule."""

    @staticmethod
    def forward(ctx, w):
        t = torch.tanh(w)
        ctx.save_for_backward(t)
        return t

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved_tensors
        return grad * (1 - t * t)


def test_auto_falls_back_to_double_backward():
    """Oracle: f = Σ tanh(w)², f'' = 2(1 - t²)(1 - 3t²) with t = tanh w (closed form)."""
    w = torch.tensor([0.3, -1.2, 2.0], dtype=F64, requires_grad=True)

    def loss_fn():
        return (_TanhWithoutJvp.apply(w) ** 2).sum()

    ones = torch.ones(3, dtype=F64)
    with (
        HessianOperator(loss_fn, [w], "forward_over_reverse") as op,
        pytest.raises(NotImplementedError, match="jvp"),
    ):
        op(ones)
    assert fwad.unpack_dual(w).tangent is None
    with HessianOperator(loss_fn, [w], "auto") as op:
        hv = op(ones)
        assert op.method_used == "double_backward"
        assert "jvp" in op.fallback_reason
    t = torch.tanh(w.detach())
    torch.testing.assert_close(hv, 2 * (1 - t**2) * (1 - 3 * t**2))


def test_no_grad_work_is_seen_by_forward_mode_only():
    """Oracle: f = c·Σw with c = ‖w‖² computed under torch.no_grad (closed form). Reverse mode
    sees the gradient c·1 with c constant, so double backward gives H = 0; forward mode tracks c
    too, giving the derivative of the computed gradient map, (2 w·v) 1."""
    w = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)

    def loss_fn():
        with torch.no_grad():
            c = (w * w).sum()
        return c * w.sum()

    v = torch.tensor([1.0, 0.0], dtype=F64)
    with HessianOperator(loss_fn, [w], "double_backward") as op:
        torch.testing.assert_close(op(v), torch.zeros(2, dtype=F64))
    with HessianOperator(loss_fn, [w], "forward_over_reverse") as op:
        torch.testing.assert_close(op(v), torch.full((2,), 2.0, dtype=F64))


def test_two_tensor_params_are_concatenated():
    """Oracle: the quadratic's A (known by construction) times v, x split into two leaves."""
    problem = quadratic([3.0, -2.0, 1.0, 0.5], split=1)
    v = _vector(4, 9)
    for method in ("forward_over_reverse", "double_backward"):
        with HessianOperator(problem.loss_fn, problem.params, method) as op:
            torch.testing.assert_close(op(v), problem.hessian @ v, rtol=ROUND_OFF, atol=0)


def test_bad_method_is_named():
    problem = quadratic([1.0, 2.0])
    with pytest.raises(ValueError, match="hvp must be one of"):
        HessianOperator(problem.loss_fn, problem.params, "finite_difference")


def test_auto_falls_back_when_loss_uses_forward_ad_itself():
    """Oracle: f = Σ w³ has H = diag(6w) (closed form). PyTorch refuses nested dual levels, so a
    loss that opens its own cannot run forward-over-reverse; "auto" switches to double backward."""
    w = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)

    def loss_fn():
        with fwad.dual_level():
            pass
        return (w**3).sum()

    ones = torch.ones(2, dtype=F64)
    with (
        HessianOperator(loss_fn, [w], "forward_over_reverse") as op,
        pytest.raises(RuntimeError, match="Nested forward mode"),
    ):
        op(ones)
    with HessianOperator(loss_fn, [w], "auto") as op:
        torch.testing.assert_close(op(ones), torch.tensor([6.0, 12.0], dtype=F64))
        assert op.method_used == "double_backward" and "Nested" in op.fallback_reason
