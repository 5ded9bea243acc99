"""Gradient descent in low precision: Theorem 1 of Hayford et al. (2024) and lost updates.

Theorem 1 (reconstructed, theory/T1-gd-mixed-precision.md): for an ``L``-smooth loss whose
gradient is evaluated at the rounded parameters ``theta~`` (``|theta~_i - theta_i| <= u
|theta_i|``), the gradient error is at most ``delta = u L ||theta||``, and one gradient-descent
step of size ``1/L`` decreases the loss by at least ``(g**2 - 4 g delta - delta**2) / (2L)``. It
keeps at least half the exact-gradient decrease while ``g >= (4 + 3 sqrt 2) delta``, the
*critical gradient norm*; below it the rounding of the parameters can eat the progress.

Lost updates (theory/T-lost-update.md): an update ``w -> w + delta`` is lost when
``fl(w + delta) == w``. :func:`lost_updates` predicts it exactly from the spacing of the format
around ``w``; :func:`lost_update_probability` gives the probability under stochastic rounding.
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from mperror._checks import is_integer
from mperror._records import Record
from mperror.bounds._checks import real_array
from mperror.bounds._result import BoundResult
from mperror.formats import FloatFormat, FormatLike, Overflow, as_format
from mperror.rounding import RoundMode

__all__ = [
    "CRITICAL_FACTOR",
    "CRITICAL_FACTOR_SHARP",
    "DescentCheck",
    "Regime",
    "check_descent",
    "cosine_distance_bound",
    "critical_gradient_norm",
    "descent_bound",
    "gradient_perturbation",
    "guaranteed_decrease",
    "lost_update_probability",
    "lost_updates",
]

#: ``4 + 3 sqrt 2``: the positive root of ``c**2 - 8 c - 2 = 0`` (published descent bound,
#: half of the exact-gradient decrease).
CRITICAL_FACTOR = 4 + 3 * math.sqrt(2)
#: ``sqrt 2``: the same target from the sharp one-step identity (``c**2 - 2 = 0``).
CRITICAL_FACTOR_SHARP = math.sqrt(2)

_THEOREM = "T1-gd-mixed-precision"


def _nonnegative(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    value = float(value)
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def _positive(value: object, name: str) -> float:
    value = _nonnegative(value, name)
    if value == 0.0:
        raise ValueError(f"{name} must be > 0, got 0")
    return value


def _sharp(sharp: object) -> bool:
    if not isinstance(sharp, bool):
        raise TypeError(f"sharp must be a bool, got {type(sharp).__name__}")
    return sharp


def gradient_perturbation(lipschitz: float, theta_norm: float, fmt: FormatLike) -> float:
    """``delta = u L ||theta||``: how far rounding the parameters can move the gradient.

    Symbols: ``L`` -> ``lipschitz``, ``||theta||`` -> ``theta_norm`` (Euclidean norm of all
    parameters), ``u`` -> ``fmt.unit_roundoff``.

    Inequality::

        ||grad L(theta~) - grad L(theta)|| <= L ||theta~ - theta|| <= u L ||theta||

    Assumptions: ``grad L`` is ``L``-Lipschitz on the segment ``[theta, theta~]``; every
    parameter is rounded to nearest in ``fmt`` without underflow (``|theta~_i - theta_i| <=
    u |theta_i|``); the gradient at ``theta~`` is otherwise exact.

    >>> gradient_perturbation(4.0, 2.0, "fp16") == 8 * 2.0**-11  # u L ||theta||
    True

    Reference: Hayford, Goldman-Wetzler, Wang and Lu (2024), Theorem 1 (reconstructed);
    theory/T1-gd-mixed-precision.md (``T1-gd-mixed-precision.perturbation``).

    Possible issues: parameters below the smallest normal round with an absolute, not relative,
    error; the rounding errors of the forward and backward passes themselves are not modelled.
    """
    lip = _nonnegative(lipschitz, "lipschitz")
    norm = _nonnegative(theta_norm, "theta_norm")
    return as_format(fmt).unit_roundoff * lip * norm


def critical_gradient_norm(
    lipschitz: float, theta_norm: float, fmt: FormatLike, *, sharp: bool = False
) -> float:
    """The gradient norm below which Theorem 1 no longer guarantees half the exact decrease.

    ``(4 + 3 sqrt 2) u L ||theta||`` (published), or ``sqrt(2) u L ||theta||`` with
    ``sharp=True`` (from the exact one-step identity; see :func:`guaranteed_decrease`).

    Symbols: ``L`` -> ``lipschitz``, ``||theta||`` -> ``theta_norm``, ``u`` ->
    ``fmt.unit_roundoff``, ``g = ||grad L(theta)||``, ``delta = u L ||theta||``.

    Inequality::

        g >= (4 + 3 sqrt 2) delta  =>  L(theta) - L(theta+) >= g**2 / (4L)

    for the step ``theta+ = theta - grad L(theta~) / L`` (half of the ``g**2 / (2L)`` that the
    exact gradient guarantees).

    Assumptions: those of :func:`gradient_perturbation` and :func:`guaranteed_decrease`.

    >>> critical_gradient_norm(1.0, 1.0, "fp16") == (4 + 3 * math.sqrt(2)) * 2.0**-11  # 4.02e-3
    True

    Reference: Hayford et al. (2024), Theorem 1 (reconstructed) and the validation figure, which
    plots ``||grad L||`` against ``(4 + 3 sqrt 2) / 2**11 * L ||theta||``;
    theory/T1-gd-mixed-precision.md (``T1-gd-mixed-precision.critical``).

    Possible issues: it is a sufficient condition from a worst-case bound: below it progress
    is not guaranteed, not ruled out. The published constant is about 5.8 times the sharp one.
    An ``L`` estimated by secants along the trajectory (as in the paper's figure) is a lower
    estimate of the true smoothness constant, which makes the threshold optimistic.
    """
    factor = CRITICAL_FACTOR_SHARP if _sharp(sharp) else CRITICAL_FACTOR
    return factor * gradient_perturbation(lipschitz, theta_norm, fmt)


def _to_float(value: Fraction) -> float:
    """``value`` correctly rounded to a float; beyond float64's range, the infinity of its
    sign."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def guaranteed_decrease(
    grad_norm: float, delta: float, lipschitz: float, *, sharp: bool = False
) -> float:
    """Lower bound on ``L(theta) - L(theta+)`` after one perturbed gradient step of size ``1/L``.

    ``(g**2 - 4 g delta - delta**2) / (2L)`` (published), or ``(g**2 - delta**2) / (2L)`` with
    ``sharp=True``. Negative values mean no decrease is guaranteed.

    Symbols: ``g`` -> ``grad_norm`` (``||grad L(theta)||``), ``delta`` -> ``delta`` (a bound on
    ``||g~ - g||``, e.g. :func:`gradient_perturbation`), ``L`` -> ``lipschitz``.

    Inequality (descent lemma; ``e = g~ - g``, ``||e|| <= delta``)::

        L(theta+) <= L(theta) - <g, g~>/L + ||g~||**2/(2L)
                   = L(theta) - (g**2 - ||e||**2)/(2L)
                  <= L(theta) - (g**2 - delta**2)/(2L)
                  <= L(theta) - (g**2 - 4 g delta - delta**2)/(2L)

    The middle equality is exact: the cross terms ``<g, e>`` cancel for the step ``1/L``. The
    published form bounds ``-<g, g~> <= -g**2 + g delta`` and ``||g~||**2 <= (g + delta)**2``
    separately, which costs ``4 g delta``; it is valid, not sharp. The sharp form is attained
    (quadratic ``L/2 ||x||**2``, any ``e`` of norm ``delta``).

    Assumptions: ``L`` bounds the Hessian norm on the segment ``[theta, theta+]`` (``L``-smooth
    loss); ``theta+ = theta - g~ / L`` is applied exactly (fp32 master weights).

    >>> guaranteed_decrease(10.0, 1.0, 1.0)  # (100 - 40 - 1) / 2
    29.5
    >>> guaranteed_decrease(10.0, 1.0, 1.0, sharp=True)  # (100 - 1) / 2
    49.5

    Reference: Hayford et al. (2024), Theorem 1 (reconstructed); Nesterov, *Lectures on Convex
    Optimization* (2018), Lemma 1.2.3 (descent lemma); theory/T1-gd-mixed-precision.md
    (``T1-gd-mixed-precision.descent``).

    Possible issues: it describes plain gradient descent with step exactly ``1/L``; Adam and
    other step sizes are not covered. With ``delta >= g`` (sharp) or ``g <= (2 + sqrt 5) delta``
    (published) it guarantees nothing.
    """
    g = _nonnegative(grad_norm, "grad_norm")
    d = _nonnegative(delta, "delta")
    lip = _positive(lipschitz, "lipschitz")
    # In rationals, rounded once at the end: no intermediate overflows or underflows (g =
    # delta = 1e160 gave inf - inf = NaN; a subnormal L overflowed the quotient).
    g, d = Fraction(g), Fraction(d)
    core = g * g - d * d if _sharp(sharp) else g * g - 4 * g * d - d * d
    return _to_float(core / (2 * Fraction(lip)))


def descent_bound(
    grad_norm: float, delta: float, lipschitz: float, *, sharp: bool = False
) -> BoundResult:
    """Theorem 1 as a checkable record: an upper bound on the loss change ``L(theta+) - L(theta)``.

    ``bound = -guaranteed_decrease(...)``, so ``.check(loss_after - loss_before)`` holds when the
    step decreased the loss at least as much as guaranteed.

    Symbols, inequality and assumptions: :func:`guaranteed_decrease`.

    >>> r = descent_bound(10.0, 1.0, 1.0)
    >>> r.bound, r.check(-30.0).holds, r.check(-29.0).holds
    (-29.5, True, False)

    Reference: theory/T1-gd-mixed-precision.md (``T1-gd-mixed-precision.descent``).

    Possible issues: ``vacuous`` when the bound allows the loss to increase (``bound >= 0``).
    """
    decrease = guaranteed_decrease(grad_norm, delta, lipschitz, sharp=sharp)
    form = "sharp (g^2 - delta^2)/(2L)" if sharp else "published (g^2 - 4 g delta - delta^2)/(2L)"
    return BoundResult(
        theorem=f"{_THEOREM}.descent",
        bound=-decrease,
        vacuous=decrease <= 0.0,
        assumptions=(
            "loss L-smooth on the segment [theta, theta+] (Hessian norm <= L)",
            "||grad L(theta~) - grad L(theta)|| <= delta",
            "one gradient-descent step theta+ = theta - grad L(theta~)/L, applied exactly",
            f"form: {form}",
        ),
    )


def cosine_distance_bound(grad_norm: float, delta: float, *, sharp: bool = False) -> BoundResult:
    """Bound on ``1 - cos(angle(g~, g))``: how far rounding can turn the gradient's direction.

    ``2 delta / (g + delta)`` (published), or ``1 - sqrt(1 - (delta / g)**2)`` with
    ``sharp=True``; both for ``delta <= g`` (at ``delta = g`` both are 1: ``g~`` is at most
    orthogonal to ``g``). For ``delta > g`` (or ``g = 0``) the perturbed gradient can point
    anywhere (even backwards) and the bound is the trivial 2 (vacuous).

    Symbols: ``g`` -> ``grad_norm``, ``delta`` -> ``delta`` (``||g~ - g|| <= delta``).

    Inequality::

        cos(angle) = <g, g~> / (g ||g~||) >= (g**2 - g delta) / (g (g + delta))
        =>  1 - cos(angle) <= 2 delta / (g + delta)

    The sharp form: ``g~`` lies in the ball of radius ``delta`` around ``g``, so the angle is at
    most ``arcsin(delta / g)``, attained by a ``g~`` tangent to the ball. The sharp bound is
    smaller for every ``0 < delta < g`` (``~ delta**2 / (2 g**2)`` against ``~ 2 delta / g``).

    >>> cosine_distance_bound(3.0, 1.0).bound  # 2 / 4
    0.5
    >>> round(cosine_distance_bound(5.0, 3.0, sharp=True).bound, 12)  # 1 - sqrt(1 - 9/25) = 1/5
    0.2

    Reference: Hayford et al. (2024), companion bound to Theorem 1 (reconstructed);
    theory/T1-gd-mixed-precision.md (``T1-gd-mixed-precision.cosine``).

    Possible issues: vacuous for ``delta > g``, i.e. inside the region where Theorem 1 gives
    nothing either.
    """
    g = _nonnegative(grad_norm, "grad_norm")
    d = _nonnegative(delta, "delta")
    sharp = _sharp(sharp)
    if d > g or g == 0:  # at d = g the bound is 1, not vacuous: <g, g~> >= g**2 - g d = 0
        bound, vacuous = 2.0, True
    elif sharp:
        ratio = d / g
        # 1 - sqrt(1 - r**2) without the cancellation (it lost every digit for r < 1e-8)
        bound, vacuous = ratio * ratio / (1.0 + math.sqrt(1.0 - ratio * ratio)), False
    else:  # 2 d / (g + d), in rationals (g + d may overflow), rounded once
        bound, vacuous = _to_float(2 * Fraction(d) / (Fraction(g) + Fraction(d))), False
    return BoundResult(
        theorem=f"{_THEOREM}.cosine",
        bound=bound,
        vacuous=vacuous,
        assumptions=("||g~ - g|| <= delta", "valid for delta <= g; trivial (2) otherwise"),
    )


# -- checking a training trace ------------------------------------------------------------------


class Regime(str, enum.Enum):
    """What Theorem 1 predicts at one step of a trace."""

    #: ``g >= c u L ||theta||``: a step ``1/L`` keeps at least half the exact-gradient decrease.
    PROGRESS_GUARANTEED = "progress guaranteed"
    #: ``g < c u L ||theta||``: the parameters' rounding may cancel the progress; keep fp32
    #: master weights (or a wider format) from here on, or stop training.
    CRITICAL_ZONE = "critical zone"

    @property
    def advice(self) -> str:
        """What to do about it."""
        if self is Regime.PROGRESS_GUARANTEED:
            return "low-precision parameters are fine at this gradient norm"
        return (
            "the gradient is within the rounding noise of the parameters: keep fp32 master "
            "weights, widen the format, or stop"
        )


@dataclass(frozen=True, kw_only=True)
class DescentCheck(Record):
    """Theorem 1's prediction against what a recorded trace did, step by step.

    Attributes:
        theorem: ``"T1-gd-mixed-precision"``.
        fmt: name of the format whose ``u`` was used.
        unit_roundoff: that ``u``.
        factor: the ``c`` of the critical norm ``c u L ||theta||`` (``4 + 3 sqrt 2`` or
            ``sqrt 2``).
        window: the run length that defines :attr:`entry_step`.
        horizon: the look-ahead (in steps) that defines :attr:`decreased`.
        critical_norm: per step, ``c u L_k ||theta_k||`` (NaN where ``L_k`` or the norm is NaN).
        regime: per step, the :class:`Regime`, or ``None`` where the critical norm is NaN.
        decreased: per step ``k``, ``loss[k + horizon] < loss[k]``; ``None`` for the last
            ``horizon`` steps and where a loss is NaN.
        entry_step: the first step ``k`` with ``regime == CRITICAL_ZONE`` at every step of
            ``k .. k + window - 1`` (all inside the trace), or ``None``.
        violations: steps in :attr:`Regime.PROGRESS_GUARANTEED` whose loss did not decrease.
            For a gradient-descent run with step ``1/L`` and a true ``L`` these contradict the
            theorem; for Adam or secant estimates of ``L`` they are observations, not
            contradictions.
        guaranteed_decreased, guaranteed_not_decreased, critical_decreased,
        critical_not_decreased: counts of the four (regime, observed) combinations.
    """

    theorem: str
    fmt: str
    unit_roundoff: float
    factor: float
    window: int
    horizon: int
    critical_norm: tuple[float, ...]
    regime: tuple[Regime | None, ...]
    decreased: tuple[bool | None, ...]
    entry_step: int | None
    violations: tuple[int, ...]
    guaranteed_decreased: int
    guaranteed_not_decreased: int
    critical_decreased: int
    critical_not_decreased: int


def _series(values: object, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        if values.is_complex() or values.dtype is torch.bool:
            raise TypeError(f"{name} must be a sequence of real numbers, got {values.dtype}")
        values = values.detach().to(device="cpu", dtype=torch.float64).numpy()
    array = real_array(values, name)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per step), got shape {array.shape}")
    return array


def _window(value: object, name: str) -> int:
    if not is_integer(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return operator.index(value)


def check_descent(
    grad_norm: Sequence[float],
    lipschitz: Sequence[float],
    theta_norm: Sequence[float],
    loss: Sequence[float],
    fmt: FormatLike,
    *,
    window: int = 1,
    horizon: int = 1,
    sharp: bool = False,
) -> DescentCheck:
    """Compare Theorem 1's regime at every step of a training trace with what the loss did.

    Args:
        grad_norm: per step ``k``, ``g_k = ||grad L(theta_k)||``.
        lipschitz: per step, the estimate ``L_k`` of the smoothness constant (NaN allowed, e.g.
            at step 0 of a secant estimate: that step gets no regime; so do steps with a
            non-finite ``g_k``, ``L_k`` or ``||theta_k||``, with ``L_k = 0``, where the step
            ``1/L`` does not exist, and with ``g_k`` and the critical norm both 0, a stationary
            point where the theorem promises a decrease of 0). Negative values of any of the
            three series raise ValueError.
        theta_norm: per step, ``||theta_k||`` over the parameters that are rounded.
        loss: per step, ``L(theta_k)``.
        fmt: the format the parameters are rounded to (its ``u`` enters the critical norm).
        window: ``w`` in the definition of the entry step: the gradient *enters the critical
            zone* at the first step ``k`` such that steps ``k, ..., k + w - 1`` all exist and are
            all in the critical zone (``g_j < c u L_j ||theta_j||``). ``window=1`` takes the first
            critical step; larger windows ignore brief dips.
        horizon: ``h``: step ``k`` *decreased* when ``loss[k + h] < loss[k]``.
        sharp: use the sharp factor ``sqrt 2`` instead of the published ``4 + 3 sqrt 2``.

    All series must have the same length. Returns a :class:`DescentCheck`.

    >>> c = check_descent([1.0, 1e-3, 1e-4], [1.0] * 3, [1.0] * 3, [3.0, 2.0, 2.5], "fp16")
    >>> [r.value for r in c.regime], c.decreased, c.entry_step  # critical norm ~ 4.02e-3
    (['progress guaranteed', 'critical zone', 'critical zone'], (True, False, None), 1)

    Reference: Hayford et al. (2024), Theorem 1 and its validation figure (gradient norm against
    ``(4 + 3 sqrt 2) / 2**11 * L ||theta||``); theory/T1-gd-mixed-precision.md.

    Possible issues: the theorem covers gradient descent with step ``1/L``; on Adam traces the
    regime is a diagnostic, and "guaranteed but not decreased" steps are not contradictions.
    """
    f = as_format(fmt)
    g = _series(grad_norm, "grad_norm")
    lip = _series(lipschitz, "lipschitz")
    norm = _series(theta_norm, "theta_norm")
    values = _series(loss, "loss")
    lengths = {len(g), len(lip), len(norm), len(values)}
    if len(lengths) != 1:
        raise ValueError(
            "grad_norm, lipschitz, theta_norm and loss must have the same length, got "
            f"{len(g)}, {len(lip)}, {len(norm)}, {len(values)}"
        )
    window = _window(window, "window")
    horizon = _window(horizon, "horizon")
    factor = CRITICAL_FACTOR_SHARP if _sharp(sharp) else CRITICAL_FACTOR
    steps = len(g)

    for name, series in (("grad_norm", g), ("lipschitz", lip), ("theta_norm", norm)):
        if (series < 0).any():  # NaN compares False: allowed
            k = int(np.argmax(series < 0))
            raise ValueError(
                f"{name} must be >= 0 (a norm, a Lipschitz constant), got {series[k]} at step {k}"
            )
    with np.errstate(over="ignore"):  # a threshold beyond float64's range is inf: any g is below
        critical = factor * f.unit_roundoff * lip * norm
    regime: list[Regime | None] = []
    for gk, lk, nk, ck in zip(g, lip, norm, critical, strict=True):
        measured = math.isfinite(gk) and math.isfinite(lk) and math.isfinite(nk)
        if not measured or lk == 0 or gk == ck == 0:
            # Not measured or not finite; L = 0 (no step 1/L); or a stationary point where the
            # theorem promises a decrease of 0: no regime.
            regime.append(None)
        else:
            regime.append(Regime.PROGRESS_GUARANTEED if gk >= ck else Regime.CRITICAL_ZONE)

    decreased: list[bool | None] = []
    for k in range(steps):
        if k + horizon >= steps or math.isnan(values[k]) or math.isnan(values[k + horizon]):
            decreased.append(None)
        else:
            decreased.append(bool(values[k + horizon] < values[k]))

    entry = None
    run = 0
    for k, r in enumerate(regime):
        run = run + 1 if r is Regime.CRITICAL_ZONE else 0
        if run == window:
            entry = k - window + 1
            break

    counts = {(r, d): 0 for r in Regime for d in (True, False)}
    for r, d in zip(regime, decreased, strict=True):
        if r is not None and d is not None:
            counts[(r, d)] += 1
    violations = tuple(
        k
        for k, (r, d) in enumerate(zip(regime, decreased, strict=True))
        if r is Regime.PROGRESS_GUARANTEED and d is False
    )
    return DescentCheck(
        theorem=_THEOREM,
        fmt=str(f),
        unit_roundoff=f.unit_roundoff,
        factor=factor,
        window=window,
        horizon=horizon,
        critical_norm=tuple(float(c) for c in critical),
        regime=tuple(regime),
        decreased=tuple(decreased),
        entry_step=entry,
        violations=violations,
        guaranteed_decreased=counts[(Regime.PROGRESS_GUARANTEED, True)],
        guaranteed_not_decreased=counts[(Regime.PROGRESS_GUARANTEED, False)],
        critical_decreased=counts[(Regime.CRITICAL_ZONE, True)],
        critical_not_decreased=counts[(Regime.CRITICAL_ZONE, False)],
    )


# -- lost updates -------------------------------------------------------------------------------


def _update_pair(
    w: torch.Tensor, delta: torch.Tensor, fmt: FloatFormat
) -> tuple[torch.Tensor, torch.Tensor]:
    for name, t in (("w", w), ("delta", delta)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a real floating-point tensor, got {type(t).__name__}")
    w64, d64 = torch.broadcast_tensors(w.detach().double(), delta.detach().double())
    finite_w = torch.isfinite(w64)
    if not bool(fmt.is_representable(torch.where(finite_w, w64, 0.0)).all()):
        raise ValueError(f"w must hold values of {fmt} (round it first)")
    return w64, d64


def _gaps(w: torch.Tensor, d: torch.Tensor, fmt: FloatFormat) -> tuple[torch.Tensor, ...]:
    """``(a, gap, outward, odd, at_max)`` for each ``(w, delta)``; ``w`` finite values of fmt.

    ``gap``: distance from ``w`` to its neighbour on ``delta``'s side (beyond ``max``: the
    neighbour an unbounded exponent range would have). ``odd``: the parity of ``|w| / gap``, the
    significand of ``w`` on the grid of the binade that ``w + delta`` falls in, which is what
    ties-to-even and round-to-odd look at.
    """
    safe = torch.where(torch.isfinite(w), w, 0.0)
    a = d.abs()
    magnitude = safe.abs()
    outward = (magnitude == 0) | ((safe > 0) == (d > 0))
    spacing = fmt.spacing(safe)
    mantissa, _ = torch.frexp(magnitude)  # magnitude = mantissa * 2**exponent, mantissa in [0.5, 1)
    power_of_two = mantissa == 0.5
    above_smallest = magnitude > fmt.smallest_normal
    inward_gap = torch.where(power_of_two & above_smallest, spacing / 2, spacing)
    if not fmt.subnormals:
        # Without subnormals the neighbour of 2**emin toward zero is 0.
        inward_gap = torch.where(magnitude == fmt.smallest_normal, magnitude, inward_gap)
    gap = torch.where(outward, spacing, inward_gap)
    significand = torch.where(magnitude == 0, 0.0, magnitude / gap)
    odd = torch.remainder(significand, 2) == 1
    at_max = outward & (magnitude == fmt.max)
    return a, gap, outward, odd, at_max


def _stays_at_max(mode: RoundMode, w: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """Whether an overflow from ``w = +-max`` moving outward gives ``w`` back."""
    if fmt.overflow is Overflow.SATURATE or mode is RoundMode.TOWARD_ZERO:
        return torch.ones_like(w, dtype=torch.bool)
    if mode is RoundMode.TOWARD_NEGATIVE:
        return w > 0
    if mode is RoundMode.TOWARD_POSITIVE:
        return w < 0
    return torch.zeros_like(w, dtype=torch.bool)


def lost_updates(
    w: torch.Tensor,
    delta: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
) -> torch.Tensor:
    """Which updates ``w -> w + delta`` are lost: ``delta != 0`` and ``fl(w + delta) == w``.

    Predicted exactly from the spacing of ``fmt`` around ``w``, without rounding anything.

    Symbols: ``w`` -> ``w`` (values of ``fmt``), ``delta`` -> ``delta`` (broadcast together),
    ``gap`` the distance from ``w`` to its neighbour in the direction of ``delta``, ``M =
    |w| / gap`` (``w``'s significand on that side's grid), *outward* = moving away from zero
    (or ``w = 0``).

    Rule (``a = |delta| > 0``)::

        nearest_even     a < gap/2, or a = gap/2 and M even
        nearest_away     a < gap/2, or a = gap/2 and moving toward zero
        toward_zero      outward and a < gap
        toward_positive  delta < 0 and a < gap
        toward_negative  delta > 0 and a < gap
        odd              a < gap and M odd

    ``gap`` is the format's spacing ``2**(e-p+1)`` at ``w`` (``2**e <= |w| < 2**(e+1)``), except
    toward zero from a power of two ``|w| = 2**e > 2**emin``, where it is half that (the binade
    below), and toward zero from ``2**emin`` without subnormals, where it is ``2**emin``. At
    ``w = +-max`` moving outward, an overflow gives ``w`` back when the format saturates or the
    mode rounds toward zero at that sign, so every such update is lost then.

    Assumptions: ``w`` holds values of ``fmt`` (ValueError otherwise); the sum ``w + delta`` is
    exact before the one rounding (e.g. an fp32 master-weight update rounded to fp16 storage, or
    an update in the format's own arithmetic). Infinite or NaN ``w`` or ``delta`` give False.

    >>> w = torch.tensor([-0.5, -0.5, -0.5, -0.5])  # fp16: 2**-12 above -0.5, 2**-11 below
    >>> lost_updates(w, torch.tensor([2.0**-13, 1.3e-4, -2.0**-12, -2.5e-4]), "fp16")
    tensor([ True, False,  True, False])

    Reference: Hayford et al. (2024), the lost-update threshold (REFERENCES.md section 4);
    IEEE 754-2019, §4.3;
    theory/T-lost-update.md (``T-lost-update``).

    Possible issues: for the stochastic modes no update is surely lost: use
    :func:`lost_update_probability`. When ``w + delta`` is itself computed in low precision
    (e.g. ``delta`` rounded first), predict on the rounded ``delta``.
    """
    f = as_format(fmt)
    mode = RoundMode.parse(mode)
    if mode.is_stochastic:
        raise ValueError(
            f"mode {mode.value!r} is random: use lost_update_probability for the chance of a loss"
        )
    w64, d64 = _update_pair(w, delta, f)
    a, gap, outward, odd, at_max = _gaps(w64, d64, f)
    twice = 2.0 * a  # exact (or inf far beyond any gap): compare 2a with gap, never a with gap/2
    if mode is RoundMode.NEAREST_EVEN:
        lost = (twice < gap) | ((twice == gap) & ~odd)
    elif mode is RoundMode.NEAREST_AWAY:
        lost = (twice < gap) | ((twice == gap) & ~outward)
    elif mode is RoundMode.TOWARD_ZERO:
        lost = outward & (a < gap)
    elif mode is RoundMode.TOWARD_POSITIVE:
        lost = (d64 < 0) & (a < gap)
    elif mode is RoundMode.TOWARD_NEGATIVE:
        lost = (d64 > 0) & (a < gap)
    else:  # ODD
        lost = odd & (a < gap)
    lost = lost | (at_max & _stays_at_max(mode, w64, f))
    valid = torch.isfinite(w64) & torch.isfinite(d64) & (d64 != 0)
    return lost & valid


def lost_update_probability(
    w: torch.Tensor,
    delta: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.STOCHASTIC,
) -> torch.Tensor:
    """Probability that the update ``w -> w + delta`` is lost, ``P(fl(w + delta) == w)``.

    Symbols and ``gap`` as in :func:`lost_updates`; ``a = |delta| > 0``.

    Rule::

        stochastic        1 - a / gap  if a < gap, else 0
        stochastic_equal  1/2          if a < gap, else 0
        deterministic     0 or 1, as lost_updates says

    At ``w = +-max`` moving outward in a saturating format the probability is 1 (the overflow
    saturates back to ``w``).

    Assumptions: as :func:`lost_updates`; stochastic rounding with exact probabilities (no
    few-bit ``random_bits``). Returns a float64 tensor.

    >>> lost_update_probability(torch.tensor([1.0]), torch.tensor([2.0**-12]), "fp16")  # 1 - 1/4
    tensor([0.7500], dtype=torch.float64)

    Reference: Connolly, Higham and Mary (2021), §2 (stochastic rounding);
    theory/T-lost-update.md (``T-lost-update.stochastic``).

    Possible issues: ``mperror.round``'s stochastic rounding draws 31 or 63 random bits, so its
    frequency can differ from this probability by ``2**-31`` (or less); with ``random_bits=k``
    it differs by up to ``2**-k``.
    """
    f = as_format(fmt)
    mode = RoundMode.parse(mode)
    if not mode.is_stochastic:
        return lost_updates(w, delta, f, mode).to(torch.float64)
    w64, d64 = _update_pair(w, delta, f)
    a, gap, _, _, at_max = _gaps(w64, d64, f)
    inside = a < gap
    if mode is RoundMode.STOCHASTIC:
        probability = torch.where(inside, 1.0 - a / gap, 0.0)
    else:
        probability = torch.where(inside, 0.5, 0.0)
    if f.overflow is Overflow.SATURATE:
        probability = torch.where(at_max, 1.0, probability)
    valid = torch.isfinite(w64) & torch.isfinite(d64) & (d64 != 0)
    return torch.where(valid, probability, 0.0)
