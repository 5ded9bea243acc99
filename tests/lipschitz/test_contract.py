"""The LipschitzEstimator contract, checked for every estimator in the registry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.autograd.forward_ad as fwad

from mperror.lipschitz import (
    ESTIMATORS,
    KINDS,
    Lanczos,
    LipschitzEstimate,
    LipschitzEstimator,
    PowerIteration,
)

from ._problems import F64, poisson_pinn, regression

NAMES = sorted(ESTIMATORS)

# Small settings keep the contract fast; the accuracy tests live next to each estimator.
SETTINGS = {
    "power": {"max_iter": 30},
    "lanczos": {},
    "secant": {"directions": 3},
    "sampled": {"points": 3},
}


def _make(name, seed=0, **extra):
    return ESTIMATORS[name](
        generator=torch.Generator().manual_seed(seed), **SETTINGS[name], **extra
    )


def _snapshot(params):
    return [(p.detach().clone(), p.requires_grad) for p in params]


def _assert_untouched(params, snapshot):
    for p, (value, requires_grad) in zip(params, snapshot, strict=True):
        assert torch.equal(p.detach().view(torch.int64), value.view(torch.int64))
        assert p.requires_grad == requires_grad
        assert p.grad is None
        assert fwad.unpack_dual(p).tangent is None


def test_registry_covers_the_estimators():
    assert set(ESTIMATORS) == set(SETTINGS)
    for name in NAMES:
        assert isinstance(ESTIMATORS[name](), LipschitzEstimator)
    assert PowerIteration in ESTIMATORS.values() and Lanczos in ESTIMATORS.values()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("make", [regression, poisson_pinn], ids=["regression", "pinn"])
def test_returns_a_finite_positive_estimate_and_restores_params(name, make):
    """Oracle for the value's range: torch.linalg.eigvalsh of the dense Hessian. Every method's
    value is a Rayleigh/Ritz value or a secant, so at most L (plus a float64 margin: the
    secants' radius 1e-3 moves the Hessian by O(1e-3) relative; 1e-2 covers it)."""
    problem = make()
    before = _snapshot(problem.params)
    est = _make(name)(problem.loss_fn, problem.params)
    assert isinstance(est, LipschitzEstimate)
    assert math.isfinite(est.value) and est.value > 0
    assert est.kind in KINDS and isinstance(est.method, str) and est.evaluations >= 1
    assert est.value <= problem.lipschitz * (1 + 1e-2)
    assert isinstance(est.to_dict(), dict)
    _assert_untouched(problem.params, before)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fail_on", [1, 3])
def test_restores_params_when_loss_raises(name, fail_on):
    """The loss raises on its n-th call, after the estimator has written dual numbers or
    perturbed values into params and after the loss switched requires_grad off. Power and
    Lanczos use forward-over-reverse here, which calls the loss for every product and writes
    dual numbers (double backward calls it once)."""
    problem = regression()
    before = _snapshot(problem.params)
    calls = []

    def loss_fn():
        calls.append(1)
        if len(calls) == fail_on:
            problem.params[0].requires_grad_(False)
            raise _Boom
        return problem.loss_fn()

    extra = {"hvp": "forward_over_reverse"} if name in ("power", "lanczos") else {}
    with pytest.raises(_Boom):
        _make(name, **extra)(loss_fn, problem.params)
    _assert_untouched(problem.params, before)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result(name):
    problem = regression()
    first = _make(name, seed=7)(problem.loss_fn, problem.params)
    second = _make(name, seed=7)(problem.loss_fn, problem.params)
    assert first == second


@pytest.mark.parametrize("name", NAMES)
def test_global_generator_when_none(name):
    """generator=None draws from torch's global CPU generator, so torch.manual_seed decides."""
    problem = regression()
    results = []
    for _ in range(2):
        torch.manual_seed(5)
        results.append(ESTIMATORS[name](**SETTINGS[name])(problem.loss_fn, problem.params))
    assert results[0] == results[1]


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_are_named(name):
    problem = regression()
    est = _make(name)
    with pytest.raises(ValueError, match="params must contain at least one tensor"):
        est(problem.loss_fn, [])
    with pytest.raises(TypeError, match="params must be a sequence of tensors"):
        est(problem.loss_fn, problem.params[0])
    with pytest.raises(TypeError, match=r"params\[1\] must be a torch.Tensor"):
        est(problem.loss_fn, [problem.params[0], 1.0])
    empty = torch.zeros(0, 3, dtype=F64, requires_grad=True)  # a tensor, but no values
    with pytest.raises(ValueError, match="params must hold at least one value"):
        est(lambda: (empty**2).sum(), [empty])
    frozen = torch.ones(3, dtype=F64)
    with pytest.raises(ValueError, match=r"params\[0\] must have requires_grad=True"):
        est(lambda: (frozen**2).sum(), [frozen])
    with pytest.raises(ValueError, match=r"params\[1\] is the same tensor as params\[0\]"):
        est(problem.loss_fn, [problem.params[0], problem.params[0]])
    x = torch.ones(3, dtype=F64, requires_grad=True)
    with pytest.raises(ValueError, match=r"params\[0\] must be a leaf"):
        est(problem.loss_fn, [2 * x])
    with pytest.raises(TypeError, match=r"params\[0\] must have a real floating dtype"):
        est(problem.loss_fn, [torch.ones(3, dtype=torch.complex128, requires_grad=True)])
    with pytest.raises(ValueError, match="loss_fn"):
        est(lambda: x**2, [x])
    with pytest.raises(TypeError, match="loss_fn"):
        est(lambda: 1.0, [x])
    with pytest.raises(ValueError, match="loss_fn"):
        est(lambda: (x.detach() ** 2).sum(), [x])
    with pytest.raises(ValueError, match="loss_fn"):
        est(lambda: (x**2).sum() * float("nan"), [x])
    with pytest.raises(TypeError, match="loss_fn must be a callable"):
        est(None, [x])
    assert x.requires_grad and torch.equal(x.detach(), torch.ones(3, dtype=F64))


@pytest.mark.parametrize("name", NAMES)
def test_loss_independent_of_params_is_refused(name):
    """A loss computed from other tensors than params (a copy of the model, say) has no
    gradient with respect to them: every piece of autograd.grad is None. Read as zeros it gave
    L = 0, which makes any bound that needs L hold without checking anything; it must be an
    error naming loss_fn (oracle: the loss's true L for the intended tensor, 2, is not 0)."""
    used = torch.ones(3, dtype=F64, requires_grad=True)
    copy = used.detach().clone().requires_grad_(True)
    with pytest.raises(ValueError, match=r"loss_fn\(\) does not depend on any tensor in params"):
        _make(name)(lambda: (used**2).sum(), [copy])
    assert _make(name)(lambda: (used**2).sum(), [used]).value == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [2, 5])
def test_nonfinite_derivatives_raise(name, size):
    """f = 10³⁰⁸ Σ w³ at w = (1, 0.5, ...) is finite (1.125e308 for two) but its gradient
    3·10³⁰⁸ w² and Hessian 6·10³⁰⁸ w overflow float64 near w₀ = 1: every estimator must
    refuse, not return a NaN or a max that skipped the infinities. Five parameters take
    Lanczos to ARPACK (two are diagonalised densely), which had failed with its own error."""
    start = torch.tensor([1.0, 0.5, 0.25, 0.125, 0.0625][:size], dtype=F64)
    w = start.clone().requires_grad_(True)
    with pytest.raises(FloatingPointError):
        _make(name)(lambda: 1e308 * (w**3).sum(), [w])
    assert torch.equal(w.detach(), start)


@pytest.mark.parametrize("name", NAMES)
def test_estimates_inside_no_grad(name):
    """Oracle: the same estimate outside the block. The estimators differentiate the loss
    themselves, so torch.no_grad() around the call must not matter (it had made every loss
    look like one without a graph)."""
    problem = regression()
    want = _make(name)(problem.loss_fn, problem.params).value
    with torch.no_grad():
        got = _make(name)(problem.loss_fn, problem.params).value
    assert got == want


@pytest.mark.parametrize("name", NAMES)
def test_huge_but_finite_curvature(name):
    """Oracle: f = 10³⁰⁷ Σ w³ at w = (1, 0.5) has H = diag(6, 3)·10³⁰⁷ (closed form), so
    L = 6e307: norms of such vectors overflow if squared naively, and must not. Sampling
    estimators stay at or below L (the Hessian grows along w₀, so allow their 1e-2 radius)."""
    w = torch.tensor([1.0, 0.5], dtype=F64, requires_grad=True)
    est = _make(name)(lambda: 1e307 * (w**3).sum(), [w])
    assert math.isfinite(est.value) and est.value <= 6e307 * 1.03
    if est.kind == "estimate":
        assert est.value == pytest.approx(6e307, rel=1e-6)
