"""Secants: lower estimates that can sit far below L (the PINN paper's estimator)."""

from __future__ import annotations

import pytest
import torch

from mperror.lipschitz import PowerIteration, Secant, SecantStatus, SecantTracker

from ._problems import F64, least_squares


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ill_conditioned(n: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """A = diag(1000, 1, ..., 1) (spectrum by construction) and a leaf x."""
    diag = torch.ones(n, dtype=F64)
    diag[0] = 1000.0
    x = torch.randn(n, dtype=F64, generator=_gen(1)).requires_grad_(True)
    return diag, x


def test_random_secant_underestimates_ill_conditioned_quadratic():
    """Oracle: f = ½ xᵀAx, A = diag(1000, 1, ..., 1), n = 1000, so L = 1000 exactly and a secant
    along a unit d is ‖Ad‖ = √(1 + 999999 d₁²) in [1, L]. For d uniform on the sphere n·d₁² is
    about χ²₁, so the secant is typically √(1 + 1000 χ²₁) ≈ 32; reaching L/5 = 200 needs
    χ²₁ >= 40 (probability 2e-10 per direction, 2e-9 for 10). Power iteration gets L."""
    diag, x = _ill_conditioned()

    def loss_fn():
        return 0.5 * (diag * x * x).sum()

    secant = Secant(radius=1e-3, directions=10, generator=_gen())(loss_fn, [x])
    assert secant.kind == "lower" and secant.evaluations == 11
    assert 1.0 - 1e-9 <= secant.value <= 1000.0 * (1 + 1e-9)
    assert secant.value < 1000.0 / 5
    power = PowerIteration(generator=_gen())(loss_fn, [x])
    assert power.value == pytest.approx(1000.0, rel=1e-6)


def test_secant_on_quadratic_is_independent_of_radius():
    """Oracle: for a quadratic the gradient is affine, so the quotient along d is ‖A d‖/‖d‖
    whatever the radius (same seed, same directions), and lies in [σ_min(A)², σ_max(A)²] for
    f = ½‖Ax - b‖² (torch.linalg.svdvals). Rounding: the gradient difference at radius 1e-3
    loses about 3 digits to cancellation, so the two agree to ~1e-12, checked at 1e-9."""
    problem, a = least_squares()
    small = Secant(radius=1e-3, directions=4, generator=_gen(3))(problem.loss_fn, problem.params)
    large = Secant(radius=0.5, directions=4, generator=_gen(3))(problem.loss_fn, problem.params)
    assert small.history == pytest.approx(large.history, rel=1e-9)
    sigma = torch.linalg.svdvals(a)
    for ratio in large.history:
        assert sigma[-1].item() ** 2 * (1 - 1e-12) <= ratio <= sigma[0].item() ** 2 * (1 + 1e-12)


def test_tracker_along_gradient_descent_sees_only_the_bulk():
    """Oracle: closed form of gradient descent on f = ½ xᵀAx, A = diag(1024, 1, ..., 1), step
    2^-10 = 1/L. The first step removes the stiff component exactly (x₁ - 1024·x₁/1024 = 0 in
    binary), so every later step lies in the eigenvalue-1 space and its secant is exactly 1,
    1024 times below L: the trajectory secant of Hayford et al. (2024) reports the bulk. The
    first secant is ‖As₀‖/‖s₀‖ for the first step s₀ = -Ax₀/1024."""
    n = 50
    diag = torch.ones(n, dtype=F64)
    diag[0] = 1024.0
    x0 = torch.randn(n, dtype=F64, generator=_gen(2))
    x = x0.clone().requires_grad_(True)
    tracker = SecantTracker([x])
    steps = []
    for _ in range(6):
        (grad,) = torch.autograd.grad(0.5 * (diag * x * x).sum(), [x])
        steps.append(tracker.update([grad]))
        with torch.no_grad():
            x -= 2.0**-10 * grad
    assert steps[0].status is SecantStatus.NO_PREVIOUS and steps[0].value is None
    assert all(s.status is SecantStatus.OK for s in steps[1:])
    first_step = -(diag * x0) / 1024.0
    want = torch.linalg.vector_norm(diag * first_step) / torch.linalg.vector_norm(first_step)
    assert steps[1].value == pytest.approx(want.item(), rel=1e-12)
    for s in steps[2:]:
        assert s.value == pytest.approx(1.0, rel=1e-12)
    est = tracker.estimate()
    assert est.kind == "lower" and est.value == steps[1].value and est.evaluations == 6


def test_tracker_reads_grad_attribute_and_tracks_a_subset():
    """Oracle: f = ½ Σ cᵢ wᵢ² per tensor has ∇f = c w, so the secant over a subset of tensors is
    the subset's curvature: tracking only w1 (c = 3) gives exactly 3 while w2 has c = 50."""
    w1 = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    w2 = torch.tensor([0.5], dtype=F64, requires_grad=True)
    tracker = SecantTracker([w1])
    values = []
    for _ in range(3):
        w1.grad = w2.grad = None
        (1.5 * (w1 * w1).sum() + 25.0 * (w2 * w2).sum()).backward()
        values.append(tracker.update().value)
        with torch.no_grad():
            w1 -= 0.1 * w1.grad
            w2 -= 0.01 * w2.grad
    assert values[0] is None
    assert values[1:] == [pytest.approx(3.0, rel=1e-12)] * 2


def test_tracker_zero_step_from_lost_float16_update():
    """Oracle: float16 spacing at 1.0 is 2^-10, so subtracting 1e-4 rounds back to 1.0 (a lost
    update, REFERENCES.md section 4): θ_k == θ_(k-1) and the quotient is undefined."""
    w = torch.ones(3, dtype=torch.float16)
    tracker = SecantTracker([w])
    tracker.update([torch.full((3,), 0.5, dtype=torch.float16)])
    w -= 1e-4
    assert torch.equal(w, torch.ones(3, dtype=torch.float16))
    step = tracker.update([torch.full((3,), 0.25, dtype=torch.float16)])
    assert step.status is SecantStatus.ZERO_STEP and step.value is None
    assert step.step_norm == 0.0 and step.grad_change_norm == pytest.approx(0.25 * 3**0.5)
    with pytest.raises(RuntimeError, match="no secant"):
        tracker.estimate()


def test_tracker_skips_nonfinite_steps():
    """Oracle: hand-computed secants on f = ½·4w² (∇f = 4w). A step with an inf gradient (a
    loss-scaler overflow) is reported and skipped; the next secant compares with the last
    finite snapshot, still exactly 4."""
    w = torch.tensor([1.0], dtype=F64)
    tracker = SecantTracker([w])
    tracker.update([4 * w])
    w += 0.5
    assert tracker.update([torch.tensor([float("inf")], dtype=F64)]).status is (
        SecantStatus.NONFINITE
    )
    w += 0.25
    step = tracker.update([4 * w])
    assert step.status is SecantStatus.OK and step.value == 4.0
    assert step.step_norm == 0.75
    tracker.reset()
    assert tracker.update([4 * w]).status is SecantStatus.NO_PREVIOUS
    assert tracker.values == ()


def test_tracker_bad_input_is_named():
    w = torch.ones(2, dtype=F64, requires_grad=True)
    with pytest.raises(TypeError, match="tensors"):
        SecantTracker(w)
    with pytest.raises(ValueError, match="tensors"):
        SecantTracker([])
    tracker = SecantTracker([w])
    with pytest.raises(ValueError, match=r"tensors\[0\]\.grad is None"):
        tracker.update()
    with pytest.raises(ValueError, match="grads"):
        tracker.update([w, w])
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        tracker.update([torch.ones(3, dtype=F64)])


def test_secant_radius_below_rounding_is_named():
    """float16 spacing at 1 is 2^-10: a radius of 1e-6 rounds back to θ."""
    w = torch.ones(2, dtype=torch.float16, requires_grad=True)
    with pytest.raises(ValueError, match="radius"):
        Secant(radius=1e-6)(lambda: (w.float() ** 2).sum(), [w])
    assert torch.equal(w.detach(), torch.ones(2, dtype=torch.float16)) and w.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"radius": 0.0}, "radius"),
        ({"radius": float("nan")}, "radius"),
        ({"radius": "big"}, "radius"),
        ({"directions": 0}, "directions"),
        ({"generator": 1}, "generator"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        Secant(**kwargs)


def test_tracker_overflowing_quotient_is_nonfinite():
    """Oracle: a step from 0 to 1e-300 against a gradient change of 1e10 has quotient 1e310,
    above the float64 maximum 1.8e308: reported as NONFINITE with no value, never as inf."""
    w = torch.zeros(1, dtype=F64)
    tracker = SecantTracker([w])
    tracker.update([torch.zeros(1, dtype=F64)])
    w += 1e-300
    step = tracker.update([torch.full((1,), 1e10, dtype=F64)])
    assert step.status is SecantStatus.NONFINITE and step.value is None
    assert tracker.values == ()
