"""Tests for mperror.bounds.gd: Theorem 1, its trace checker, and lost-update prediction.

Theorem 1 is checked on quadratics (``L`` = the largest eigenvalue, known by construction) and on
a small tanh MLP whose Hessian is computed exactly by ``torch.func.hessian`` and
``torch.linalg.eigvalsh``; the parameters are rounded with ``mperror.round``. Lost updates are
checked against what rounding really does: numpy's float16 cast (an independent implementation)
exhaustively for fp16, and ``mperror.round`` for every format and deterministic mode.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mperror
from mperror.bounds import (
    CRITICAL_FACTOR,
    CRITICAL_FACTOR_SHARP,
    DescentCheck,
    Regime,
    check_descent,
    cosine_distance_bound,
    critical_gradient_norm,
    descent_bound,
    gradient_perturbation,
    guaranteed_decrease,
    lost_update_probability,
    lost_updates,
)
from mperror.formats import E4M3FN, FP16, PRESETS, FloatFormat
from mperror.rounding import RoundMode
from mperror.testing import formats, value_of

DETERMINISTIC = [m for m in RoundMode if not m.is_stochastic]
THEOREM_FORMATS = ["fp16", "bf16", "e4m3fn"]


# -- Theorem 1 on quadratics --------------------------------------------------------------------


def _quadratic(seed: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``A = Q diag(lam) Q^T`` with ``Q`` a signed permutation (exactly orthogonal), so the
    largest eigenvalue ``L`` is known exactly; ``b`` random."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.rand(dim, generator=g, dtype=torch.float64) * 9 + 1
    perm = torch.randperm(dim, generator=g)
    signs = torch.randint(0, 2, (dim,), generator=g).to(torch.float64) * 2 - 1
    q = torch.eye(dim, dtype=torch.float64)[perm] * signs
    a = q @ torch.diag(lam) @ q.T
    b = torch.randn(dim, generator=g, dtype=torch.float64) * 5
    return a, b, float(lam.max())


@pytest.mark.parametrize("name", THEOREM_FORMATS)
@pytest.mark.parametrize("seed", range(8))
def test_theorem1_on_quadratics(name: str, seed: int) -> None:
    """Oracle: f(x) = x^T A x / 2 - b^T x in float64 with the exact L; theta~ = round(theta)."""
    fmt = mperror.formats.get(name)
    dim = 2 + seed
    a, b, lip = _quadratic(seed, dim)

    def f(x: torch.Tensor) -> float:
        return float(x @ a @ x / 2 - b @ x)

    theta = torch.randn(
        dim, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64
    )
    theta_t = mperror.round(theta, fmt)
    assert float((theta_t - theta).norm()) <= fmt.unit_roundoff * float(theta.norm())
    g, g_t = a @ theta - b, a @ theta_t - b
    delta = gradient_perturbation(lip, float(theta.norm()), fmt)
    assert float((g_t - g).norm()) <= delta  # the theorem's hypothesis, from L-smoothness
    theta_next = theta - g_t / lip
    change = f(theta_next) - f(theta)
    for sharp in (False, True):
        bound = descent_bound(float(g.norm()), delta, lip, sharp=sharp)
        assert bound.check(change).holds, (sharp, change, bound.bound)


def test_sharp_decrease_is_attained() -> None:
    """Oracle: exact rationals. For f = L/2 ||x||**2 and any e with ||e|| = delta the decrease
    is exactly (g**2 - delta**2) / (2L): the sharp form cannot be improved, the published form
    is strictly weaker (by 2 g delta / L)."""
    lip = Fraction(3)
    theta = [Fraction(2), Fraction(-1)]
    g = [lip * t for t in theta]
    delta = Fraction(1, 4)
    e = [delta * Fraction(3, 5), delta * Fraction(4, 5)]  # a 3-4-5 triangle: ||e|| = delta
    nxt = [t - (gi + ei) / lip for t, gi, ei in zip(theta, g, e, strict=True)]

    def f(x: list[Fraction]) -> Fraction:
        return lip / 2 * sum(v * v for v in x)

    g_sq = sum(v * v for v in g)
    assert f(theta) - f(nxt) == (g_sq - delta**2) / (2 * lip)
    gn = math.sqrt(g_sq)
    assert guaranteed_decrease(gn, float(delta), float(lip), sharp=True) == pytest.approx(
        float((g_sq - delta**2) / (2 * lip)), rel=1e-15
    )
    assert guaranteed_decrease(gn, float(delta), float(lip)) < float(f(theta) - f(nxt))


# -- Theorem 1 on a small MLP -------------------------------------------------------------------


def _mlp_problem(seed: int):
    """A [2, 6, 1] tanh MLP with a mean-squared loss on 16 fixed points, as a function of the
    flat parameter vector (25 parameters), in float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(16, 2, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.sin(3 * x[:, :1]) * x[:, 1:]
    shapes = [(6, 2), (6,), (1, 6), (1,)]
    sizes = [math.prod(s) for s in shapes]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, sizes)
        w1, b1, w2, b2 = (p.reshape(s) for p, s in zip(parts, shapes, strict=True))
        out = torch.tanh(x @ w1.T + b1) @ w2.T + b2
        return ((out - y) ** 2).mean()

    theta = torch.randn(sum(sizes), generator=g, dtype=torch.float64)
    return loss, theta


def _hessian_norm(loss, point: torch.Tensor) -> float:
    hessian = torch.func.hessian(loss)(point)
    return float(torch.linalg.eigvalsh(hessian).abs().max())


def _segment_max(loss, start: torch.Tensor, end: torch.Tensor, points: int = 11) -> float:
    return max(_hessian_norm(loss, start + t * (end - start)) for t in torch.linspace(0, 1, points))


@pytest.mark.parametrize("name", THEOREM_FORMATS)
@pytest.mark.parametrize("seed", range(3))
def test_theorem1_on_mlp(name: str, seed: int) -> None:
    """Oracle: exact Hessians (autograd) and their spectral norms (eigvalsh) along the segments
    [theta, theta~] and [theta, theta+]; L is their maximum over 11 points per segment, raised
    until the step 1/L stays inside the region it was measured on. The loss change and the
    gradients are computed in float64 at theta and at theta~ = round(theta).

    The grid maximum stands in for the supremum: between grid points the Hessian norm moves by
    O(segment length x third derivative), far below the slack checked below (the published bound
    has 2 g delta / L of slack beyond the sharp one, which itself holds with the exact ||e||).
    """
    fmt = mperror.formats.get(name)
    loss, theta = _mlp_problem(seed)
    theta_t = mperror.round(theta, fmt)
    assert float((theta_t - theta).norm()) <= fmt.unit_roundoff * float(theta.norm())
    grad = torch.func.grad(loss)
    g, g_t = grad(theta), grad(theta_t)
    lip = max(_hessian_norm(loss, theta), _segment_max(loss, theta, theta_t))
    for _ in range(10):
        theta_next = theta - g_t / lip
        on_path = _segment_max(loss, theta, theta_next)
        if on_path <= lip:
            break
        lip = on_path
    else:
        pytest.fail("L did not settle")
    delta = gradient_perturbation(lip, float(theta.norm()), fmt)
    error = float((g_t - g).norm())
    assert error <= delta
    change = float(loss(theta_next) - loss(theta))
    g_norm = float(g.norm())
    assert change <= -guaranteed_decrease(g_norm, error, lip, sharp=True)
    for sharp in (False, True):
        assert descent_bound(g_norm, delta, lip, sharp=sharp).check(change).holds


# -- direction ----------------------------------------------------------------------------------


@settings(max_examples=max(50, settings.default.max_examples))
@given(
    dim=st.integers(2, 8),
    seed=st.integers(0, 2**31 - 1),
    ratio=st.floats(0.0, 0.999),
    scale=st.floats(0.01, 1.0),
)
def test_cosine_bounds_hold(dim: int, seed: int, ratio: float, scale: float) -> None:
    """Oracle: float64 cosine of g and g + e for random g, e with ||e|| = scale * delta,
    delta = ratio * ||g||: 1 - cos <= sharp bound <= published bound."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(dim, generator=gen, dtype=torch.float64)
    e = torch.randn(dim, generator=gen, dtype=torch.float64)
    g_norm = float(g.norm())
    delta = ratio * g_norm
    e = e / e.norm() * delta * scale
    cos = float(g @ (g + e)) / (g_norm * float((g + e).norm()))
    sharp = cosine_distance_bound(g_norm, delta, sharp=True)
    published = cosine_distance_bound(g_norm, delta)
    assert 1 - cos <= sharp.bound * (1 + 1e-9) + 1e-15  # float64 rounding of 1 - cos only
    assert sharp.bound <= published.bound


def test_cosine_sharp_bound_is_attained() -> None:
    """Oracle: the tangent perturbation e = g sin(a) (-sin a, cos a), sin a = delta/g, gives
    1 - cos = 1 - sqrt(1 - (delta/g)**2) (theory/t1_gd.py derives it symbolically)."""
    gn, delta = 5.0, 3.0
    sin_a = delta / gn
    cos_a = math.sqrt(1 - sin_a**2)
    g = torch.tensor([gn, 0.0], dtype=torch.float64)
    e = gn * sin_a * torch.tensor([-sin_a, cos_a], dtype=torch.float64)
    assert float(e.norm()) == pytest.approx(delta, rel=1e-15)
    cos = float(g @ (g + e)) / (gn * float((g + e).norm()))
    assert 1 - cos == pytest.approx(cosine_distance_bound(gn, delta, sharp=True).bound, rel=1e-12)


def test_cosine_sharp_bound_for_tiny_ratios() -> None:
    """Oracle: mpmath at 50 digits of 1 - sqrt(1 - r**2). Computed as written in float64 it
    cancelled: 0.0 at r = 5e-9 (below the true bound), 122% high at r = 1e-8."""
    mpmath.mp.dps = 50
    for r in (5e-9, 1e-8, 1e-7, 1e-4, 0.3, 0.999):
        exact = 1 - mpmath.sqrt(1 - mpmath.mpf(r) ** 2)
        got = cosine_distance_bound(1.0, r, sharp=True).bound
        assert abs(mpmath.mpf(got) / exact - 1) < 1e-14, r
    with pytest.raises(TypeError, match="sharp"):
        cosine_distance_bound(1.0, 2.0, sharp="yes")  # type: ignore[arg-type]


def test_cosine_vacuous_when_delta_passes_g() -> None:
    """Oracle: e = -2g (||e|| = 2||g||) reverses the gradient: 1 - cos = 2, the trivial bound.
    At delta = g both forms give 1 and hold: <g, g~> >= g**2 - g delta = 0, so g~ is at most
    orthogonal to g; it had been called vacuous. Brute force over ||e|| = g = 1 in the plane,
    g = (1, 0), e = (cos phi, sin phi): 1 - cos = 1 - cos(phi / 2) approaches 1 as phi -> pi.
    A zero gradient has no direction to keep."""
    r = cosine_distance_bound(1.0, 2.0)
    assert r.vacuous and r.bound == 2.0 and r.check(2.0).holds
    phi = torch.linspace(0.0, math.pi * (1 - 1e-9), 10_001, dtype=torch.float64)
    tilde = torch.stack([1 + phi.cos(), phi.sin()])
    worst = (1 - tilde[0] / tilde.norm(dim=0)).max().item()
    assert 0.99 < worst <= 1.0
    for sharp in (False, True):
        at = cosine_distance_bound(1.0, 1.0, sharp=sharp)
        assert at.bound == 1.0 and not at.vacuous
    assert cosine_distance_bound(0.0, 0.0).vacuous


def test_critical_norm_and_decrease_values() -> None:
    """Oracle: the closed forms, with powers of two so every float operation is exact."""
    u = 2.0**-11
    assert critical_gradient_norm(4.0, 0.5, "fp16") == CRITICAL_FACTOR * u * 2.0
    assert critical_gradient_norm(4.0, 0.5, "fp16", sharp=True) == CRITICAL_FACTOR_SHARP * u * 2.0
    # At the critical norm, the published decrease is exactly half the exact-gradient decrease.
    g = CRITICAL_FACTOR
    assert guaranteed_decrease(g, 1.0, 1.0) == pytest.approx(g * g / 4, rel=1e-14)
    with pytest.raises(ValueError, match="lipschitz must be > 0"):
        guaranteed_decrease(1.0, 0.1, 0.0)
    with pytest.raises(ValueError, match="theta_norm must be finite"):
        critical_gradient_norm(1.0, math.nan, "fp16")
    assert descent_bound(1.0, 1.0, 1.0).vacuous  # 1 - 4 - 1 < 0


# -- check_descent ------------------------------------------------------------------------------


def test_check_descent_by_hand() -> None:
    """Oracle: hand-computed regimes. u = 2**-11, L = 1, ||theta|| = 2**11: critical norm
    (4 + 3 sqrt 2) ~ 8.24 (published) and sqrt 2 ~ 1.41 (sharp)."""
    g = [20.0, 5.0, 9.0, 5.0, 5.0, 1.0, 1.0, 30.0]
    loss = [8.0, 7.0, 7.5, 6.0, 6.0, math.nan, 5.0, 4.0]
    c = check_descent(g, [1.0] * 8, [2.0**11] * 8, loss, "fp16", window=2)
    assert [r is Regime.CRITICAL_ZONE for r in c.regime] == [
        False, True, False, True, True, True, True, False,
    ]  # fmt: skip
    assert c.decreased == (True, False, True, False, None, None, True, None)
    assert c.entry_step == 3  # steps 3 and 4 are the first two consecutive critical steps
    assert c.violations == ()  # step 2 (guaranteed) decreased
    assert (c.guaranteed_decreased, c.critical_decreased, c.critical_not_decreased) == (2, 1, 2)
    assert check_descent(g, [1.0] * 8, [2.0**11] * 8, loss, "fp16").entry_step == 1
    assert check_descent(g, [1.0] * 8, [2.0**11] * 8, loss, "fp16", window=5).entry_step is None
    sharp = check_descent(g, [1.0] * 8, [2.0**11] * 8, loss, "fp16", window=2, sharp=True)
    assert sharp.entry_step == 5 and sharp.factor == CRITICAL_FACTOR_SHARP
    longer = check_descent(g, [1.0] * 8, [2.0**11] * 8, loss, "fp16", horizon=3)
    assert longer.decreased[:3] == (True, True, None)  # loss[3] < loss[0], loss[4] < loss[1]
    json.dumps(c.to_dict())  # the record is JSON-ready (regimes as strings)
    assert c.to_dict()["regime"][0] == "progress guaranteed"


def test_check_descent_nan_lipschitz_and_errors() -> None:
    c = check_descent([1.0, 1.0], [math.nan, 1.0], [1.0, 1.0], [1.0, 0.5], "fp16")
    assert c.regime[0] is None and c.regime[1] is Regime.PROGRESS_GUARANTEED
    with pytest.raises(ValueError, match="same length"):
        check_descent([1.0], [1.0, 2.0], [1.0], [1.0], "fp16")
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        check_descent([1.0], [1.0], [1.0], [1.0], "fp16", window=0)


def test_check_descent_steps_outside_the_theorem_get_no_regime() -> None:
    """Theorem 1 needs L > 0 (step 1/L) and promises a decrease of (g^2 - ...)/(2L) >= 0 only:
    L = 0, a stationary point with critical norm 0 (theta = 0), and non-finite norms get no
    regime, so an unchanged loss there is no violation (it was counted as one)."""
    c = check_descent(
        [1.0, 0.0, math.inf, 1.0, 1.0],
        [0.0, 1.0, 1.0, math.inf, 1.0],
        [1.0, 0.0, 1.0, 1.0, 1.0],
        [1.0, 1.0, 1.0, 1.0, 1.0],
        "fp16",
    )
    assert c.regime[:4] == (None, None, None, None) and c.violations == ()
    assert c.regime[4] is Regime.PROGRESS_GUARANTEED  # g = 1 >= 4.02e-3
    for series in range(3):
        args = [[1.0], [1.0], [1.0], [1.0]]
        args[series] = [-1.0]
        with pytest.raises(ValueError, match=">= 0"):
            check_descent(*args, "fp16")


def test_check_descent_threshold_beyond_float64() -> None:
    """Oracle: the definition: with L ||theta|| = 1e600 the critical norm is beyond float64's
    range, so any finite gradient norm lies below it: the critical zone (it had overflowed
    with a RuntimeWarning and given no regime)."""
    result = check_descent([1.0], [1e300], [1e300], [1.0], "fp32")
    assert result.regime == (Regime.CRITICAL_ZONE,)


def test_check_descent_on_gradient_descent_trace() -> None:
    """Oracle: Theorem 1 itself. Gradient descent with step 1/L (L exact) on a quadratic, fp32
    master weights in float64 and the gradient evaluated at the fp16-rounded weights: every step
    the checker marks "progress guaranteed" must decrease the loss, and the iteration, which
    stalls where the gradient is of the size of the rounding noise, must enter the critical zone.
    """
    a, b, lip = _quadratic(3, 5)
    b = b * 100  # a minimiser of norm ~ 50: its rounding noise u L ||theta*|| ~ 0.2

    def f(x: torch.Tensor) -> float:
        return float(x @ a @ x / 2 - b @ x)

    theta = torch.zeros(5, dtype=torch.float64)
    g_log, norm_log, loss_log = [], [], []
    for _ in range(300):
        g_log.append(float((a @ theta - b).norm()))
        norm_log.append(float(theta.norm()))
        loss_log.append(f(theta))
        theta = theta - (a @ mperror.round(theta, FP16) - b) / lip
    c = check_descent(g_log, [lip] * 300, norm_log, loss_log, FP16)
    assert isinstance(c, DescentCheck)
    assert c.violations == ()
    assert c.guaranteed_decreased > 0 and c.entry_step is not None
    sharp = check_descent(g_log, [lip] * 300, norm_log, loss_log, FP16, sharp=True)
    assert sharp.violations == () and sharp.entry_step >= c.entry_step


# -- lost updates -------------------------------------------------------------------------------

# Multiples of the gap to the neighbour: inside, the tie, either side of it, the neighbour itself
# and beyond. (1/2 +- 2**-20 keeps w + delta exact in float64 for formats of <= 24 bits.)
MULTIPLES = [0.5 - 2.0**-20, 0.5, 0.5 + 2.0**-20, 1 - 2.0**-20, 1.0, 1.5]


def _gaps_from_list(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaps to the neighbours of every value of a sorted exhaustive list (with -0.0 and +0.0);
    beyond +-max the top binade's spacing."""
    up = np.empty_like(v)
    down = np.empty_like(v)
    up[:-1] = np.diff(v)
    up[-1] = v[-1] - v[-2]
    down[1:] = np.diff(v)
    down[0] = v[1] - v[0]
    zero = v == 0
    up[zero] = down[zero] = v[v > 0].min()  # -0.0 and +0.0 sit next to each other in the list
    return up, down


def _gaps_from_reference(v: np.ndarray, fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """Gaps from the rational oracle's grid (mperror.reference.neighbours) just above and just
    below each magnitude, for formats too large to list."""
    up, down = [], []
    for value in v.tolist():
        magnitude = abs(Fraction(value))
        nudge = magnitude / 2**80 if magnitude else Fraction(1, 2**1100)
        above = mperror.reference.neighbours(magnitude + nudge, fmt)[2]
        below = mperror.reference.neighbours(magnitude - nudge, fmt)[2] if magnitude else above
        away, toward = float(above), float(below)
        up.append(away if value >= 0 else toward)
        down.append(toward if value > 0 else away)
    return np.array(up), np.array(down)


def _grid_cases(
    fmt: FloatFormat, sample: np.ndarray | None = None, keep: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``w`` of ``fmt`` with deltas that are MULTIPLES of the gap to each neighbour.

    Formats of <= 16 bits: every value (and -0.0), or the positions ``keep`` of that sorted list,
    with gaps read off the full list. Larger formats: the values ``sample``, with gaps from the
    rational oracle's grid. Never from the spacing arithmetic under test.
    """
    if fmt.bits <= 16:
        v = np.sort(np.concatenate([fmt.finite_values().numpy(), [-0.0]]))
        up, down = _gaps_from_list(v)
        if keep is not None:
            v, up, down = v[keep], up[keep], down[keep]
    else:
        assert sample is not None
        v = np.sort(sample)
        up, down = _gaps_from_reference(v, fmt)
    ws, ds = [], []
    for k in MULTIPLES:
        ws += [v, v]
        ds += [k * up, -k * down]
    return torch.from_numpy(np.concatenate(ws)), torch.from_numpy(np.concatenate(ds))


def test_lost_updates_fp16_exhaustive_against_numpy() -> None:
    """Oracle: numpy's float64 -> float16 cast (correctly rounded, ties to even), applied to the
    exact sum w + delta, for every fp16 value and every neighbour gap multiple."""
    w, d = _grid_cases(FP16)
    exact = w + d
    assert torch.equal(exact - w, d)  # the float64 sums are exact
    with np.errstate(over="ignore"):
        rounded = exact.numpy().astype(np.float16).astype(np.float64)
    real = torch.from_numpy(rounded == w.numpy()) & (d != 0)
    predicted = lost_updates(w, d, FP16)
    assert torch.equal(predicted, real)
    assert int(predicted.sum()) > 100_000  # the check is not vacuous


@pytest.mark.parametrize("mode", DETERMINISTIC, ids=lambda m: m.value)
@pytest.mark.parametrize("name", list(PRESETS))
def test_lost_updates_match_rounding(name: str, mode: RoundMode) -> None:
    """Oracle: mperror.round of the exact float64 sum w + delta (every value of 8-bit formats;
    binade edges and a sixteenth of the rest for 16-bit ones; 1000 sampled values and the edges
    otherwise, fp64 through the rational oracle round_scalar since w + delta is no float64)."""
    fmt = PRESETS[name]
    if fmt.bits <= 8:
        w, d = _grid_cases(fmt)
    elif fmt.bits <= 16:
        # Every 16th value, plus two values on each side of every power of two (binade edges,
        # the subnormal boundary, zero) and the ends of the range; fp16 round-to-nearest-even is
        # checked exhaustively against numpy above.
        count = len(fmt.finite_values()) + 1
        every = np.sort(np.concatenate([fmt.finite_values().numpy(), [-0.0]]))
        mantissa, _ = np.frexp(np.abs(every))
        edges = np.flatnonzero((mantissa == 0.5) | (every == 0))
        near = np.clip(np.concatenate([edges + k for k in range(-2, 3)]), 0, count - 1)
        ends = [0, 1, 2, count - 3, count - 2, count - 1]
        w, d = _grid_cases(fmt, keep=np.union1d(np.union1d(np.arange(0, count, 16), near), ends))
    else:
        gen = torch.Generator().manual_seed(5)
        raw = torch.randn(1000, generator=gen, dtype=torch.float64)
        raw = raw * 2.0 ** torch.randint(-40, 40, (1000,), generator=gen).to(torch.float64)
        edges = [fmt.max, -fmt.max, fmt.smallest_normal, fmt.smallest_subnormal, 1.0, -1.0, 0.0]
        values = np.concatenate([mperror.round(raw, fmt).numpy(), edges])
        w, d = _grid_cases(fmt, sample=np.unique(values[np.isfinite(values)]))
    if fmt.precision > 24:
        sample = torch.randperm(w.numel(), generator=torch.Generator().manual_seed(6))[:3000]
        w, d = w[sample], d[sample]
        real = torch.tensor(
            [
                mperror.reference.round_scalar(Fraction(wi) + Fraction(di), fmt, mode) == wi
                for wi, di in zip(w.tolist(), d.tolist(), strict=True)
            ]
        )
    else:
        exact = w + d
        assert torch.equal(exact - w, d)
        real = mperror.round(exact, fmt, mode) == w
    real = real & (d != 0)
    assert torch.equal(lost_updates(w, d, fmt, mode), real)


@settings(max_examples=max(100, settings.default.max_examples))
@given(data=st.data(), mode=st.sampled_from(DETERMINISTIC))
def test_lost_updates_any_format(data: st.DataObject, mode: RoundMode) -> None:
    """Oracle: mperror.round on arbitrary formats (precision 1 and up, with and without
    subnormals, every overflow policy), w a value of the format, delta a multiple of the
    spacing at w or an arbitrary float; w + delta exact in float64."""
    fmt = data.draw(formats(max_precision=12))
    w = data.draw(value_of(fmt, specials=False))
    spacing = fmt.spacing(torch.tensor([w], dtype=torch.float64)).item()
    delta = data.draw(
        st.one_of(
            st.sampled_from(
                [k * s for k in MULTIPLES for s in (spacing, -spacing, spacing / 2, -spacing / 2)]
            ),
            st.floats(-4 * spacing, 4 * spacing, allow_nan=False),
            st.floats(allow_nan=False, allow_infinity=False, width=32),
        )
    )
    assume(Fraction(w) + Fraction(delta) == Fraction(w + delta))
    wt, dt = torch.tensor([w], dtype=torch.float64), torch.tensor([delta], dtype=torch.float64)
    real = bool(mperror.round(wt + dt, fmt, mode).item() == w) and delta != 0
    assert bool(lost_updates(wt, dt, fmt, mode).item()) == real


def test_lost_updates_worked_example() -> None:
    """Oracle: REFERENCES section 4: w = -0.5 in fp16 moving toward zero, threshold 2**-13."""
    w = torch.full((4,), -0.5)
    d = torch.tensor([2.0**-13, 2.0**-13 + 2.0**-24, 2.0**-14, 2.0**-12])
    assert lost_updates(w, d, "fp16").tolist() == [True, False, True, False]
    assert lost_updates(w, d, "fp16", "nearest_away").tolist() == [True, False, True, False]
    assert lost_updates(w, d, "fp16", "toward_zero").tolist() == [False] * 4  # moves toward 0


def test_lost_updates_edge_cases() -> None:
    """Oracle: the contract (delta = 0 is no update; NaN or infinite inputs give False) and fp16's
    gaps by hand: 2**-12 is below half the spacing 2**-10 above 1, and 2**-26 below half the
    smallest subnormal 2**-24 (fl gives -0.0 == 0)."""
    w = torch.tensor([1.0, 1.0, math.inf, 1.0, 0.0])
    d = torch.tensor([0.0, math.nan, 1.0, 2.0**-12, -(2.0**-26)])
    assert lost_updates(w, d, "fp16").tolist() == [False, False, False, True, True]
    assert lost_updates(torch.tensor(1.0), torch.tensor([2.0**-12, 1.0]), "fp16").shape == (2,)
    with pytest.raises(ValueError, match="w must hold values of fp16"):
        lost_updates(torch.tensor([0.1]), torch.tensor([1.0]), "fp16")
    with pytest.raises(ValueError, match="use lost_update_probability"):
        lost_updates(torch.tensor([1.0]), torch.tensor([1.0]), "fp16", "stochastic")
    with pytest.raises(ValueError, match="mode must be one of"):
        lost_updates(torch.tensor([1.0]), torch.tensor([1.0]), "fp16", "nearest")
    with pytest.raises(TypeError, match="delta must be a real floating-point tensor"):
        lost_updates(torch.tensor([1.0]), [1.0], "fp16")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "w", "delta", "mode", "expected"),
    [
        (FP16, 1.0, 2.0**-12, "stochastic", 0.75),  # gap 2**-10 above 1
        (FP16, 1.0, 2.0**-11, "stochastic", 0.5),
        (FP16, 1.0, -(2.0**-12), "stochastic", 0.5),  # gap 2**-11 below 1
        (FP16, 1.0, 3 * 2.0**-12, "stochastic", 0.25),
        (FP16, 1.0, 2.0**-10, "stochastic", 0.0),  # lands on the neighbour
        (FP16, 65504.0, 8.0, "stochastic", 0.75),  # overflow to inf otherwise
        (E4M3FN, 448.0, 16.0, "stochastic", 1.0),  # saturates back to 448
        (FP16, 1.0, 2.0**-12, "stochastic_equal", 0.5),
    ],
)
def test_lost_update_probability_frequency(
    fmt: FloatFormat, w: float, delta: float, mode: str, expected: float
) -> None:
    """Oracle: the frequency of fl(w + delta) == w over 20,000 stochastic roundings by
    mperror.round. Hoeffding: |frequency - p| >= t has probability <= 2 exp(-2 N t**2); with
    N = 20,000 and t = 0.02 that is 2 e**-16 ~ 2e-7. (The kernel's 31/63 random bits shift p by
    < 2**-31, negligible.)"""
    wt, dt = torch.tensor([w], dtype=torch.float64), torch.tensor([delta], dtype=torch.float64)
    p = lost_update_probability(wt, dt, fmt, mode).item()
    assert p == expected
    draws = 20_000
    x = torch.full((draws,), w + delta, dtype=torch.float64)
    generator = torch.Generator().manual_seed(7)
    frequency = float((mperror.round(x, fmt, mode, generator=generator) == w).double().mean())
    assert abs(frequency - p) < 0.02


def test_lost_update_probability_deterministic_modes() -> None:
    """Oracle: fp16's spacing 2**-10 above 1, by hand: 1 + 2**-12 rounds back to 1 (probability 1)
    and 1 + 2**-10 is the neighbour (probability 0)."""
    w, d = torch.tensor([1.0, 1.0]), torch.tensor([2.0**-12, 2.0**-10])
    assert lost_update_probability(w, d, FP16, "nearest_even").tolist() == [1.0, 0.0]


def test_huge_norms_give_the_limits_not_nan() -> None:
    """Oracle: exact rational arithmetic. g = delta = 1e160: the sharp decrease (g**2 -
    delta**2) / 2L is 0, the published one -(g**2 + ...)/2 is below -1e320 (so no decrease
    is guaranteed: vacuous, bound inf); 2 delta / (g + delta) for g = 1.7e308, delta = 1e308
    is 2/2.7. Each had been NaN (inf - inf, inf / inf)."""
    assert guaranteed_decrease(1e160, 1e160, 1.0, sharp=True) == 0.0
    published = descent_bound(1e160, 1e160, 1.0)
    assert published.bound == math.inf and published.vacuous
    want = 2 * Fraction(1e308) / (Fraction(1.7e308) + Fraction(1e308))
    assert cosine_distance_bound(1.7e308, 1e308).bound == pytest.approx(float(want), rel=1e-15)
    assert guaranteed_decrease(3.0, 1.0, 2.0, sharp=True) == 2.0  # (9 - 1) / 4, unscaled
    # a subnormal L: g**2 / 2L = 1e-540 / 2e-313 overflows no intermediate in rationals
    want = Fraction(1e-270) ** 2 / (2 * Fraction(1e-313))
    assert guaranteed_decrease(1e-270, 0.0, 1e-313, sharp=True) == float(want)
    assert guaranteed_decrease(1e10, 0.0, 1e308) == float(Fraction(1e10) ** 2 / Fraction(1e308) / 2)


# From a mutation review: edges no test had pinned.


def test_gradient_at_exactly_the_critical_norm_makes_progress() -> None:
    """Oracle: Theorem 1's statement, g >= the critical norm (not >): progress guaranteed."""
    c = critical_gradient_norm(1.0, 1.0, "fp16", sharp=True)
    result = check_descent([c], [1.0], [1.0], [1.0], "fp16", sharp=True)
    assert result.regime[0].value == "progress guaranteed"


def test_a_zero_guaranteed_decrease_is_vacuous() -> None:
    """Oracle: the docstring, a bound that guarantees no decrease is vacuous (<= 0)."""
    assert descent_bound(1.0, 1.0, 1.0, sharp=True).vacuous


def test_lost_update_toward_zero_from_the_smallest_normal_without_subnormals() -> None:
    """Oracle: mperror.round of w + delta. Without subnormals the value below 2**emin is 0, so
    the gap toward zero is 2**emin itself: -0.45 * 2**-6 is lost, -0.55 * 2**-6 is not."""
    nosub = FloatFormat(precision=4, emax=7, subnormals=False)
    w = torch.tensor([2.0**-6, 2.0**-6], dtype=torch.float64)
    delta = torch.tensor([-0.45 * 2.0**-6, -0.55 * 2.0**-6], dtype=torch.float64)
    expected = (mperror.round(w + delta, nosub) == w).tolist()
    assert expected == [True, False]
    assert lost_updates(w, delta, nosub).tolist() == expected
