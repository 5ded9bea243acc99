"""mperror.bounds' constants against the derivations in theory/ (T-gamma, T-prob, T1, lost updates).

Each theory script derives its constants in sympy (or by walking explicit evaluation trees, or by
listing a format's values); these tests assert that the code uses exactly those. Where the code
evaluates a transcendental expression (exp, sqrt, log) in float64 the comparison is against a
50-digit mpmath evaluation of the sympy expression, with a tolerance derived from the number of
float64 roundings in the code's formula; everywhere else the comparison is exact.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
import torch

import theory.t1_gd as t1
import theory.t_gamma as tg
import theory.t_lost_update as tl
import theory.t_prob as tp
from mperror.bounds import (
    CRITICAL_FACTOR,
    CRITICAL_FACTOR_SHARP,
    block_fma_bound,
    block_fma_depth,
    blocked_sum_bound,
    cosine_distance_bound,
    critical_gradient_norm,
    failure_probability,
    gamma,
    gamma_tilde,
    guaranteed_decrease,
    lambda_for_probability,
    lost_updates,
    summation_depth,
)
from mperror.formats import PRESETS, FloatFormat
from mperror.rounding import RoundMode

ULP = 2.0**-52  # float64 spacing at 1


def _mp(expr: sp.Expr) -> float:
    """50-digit evaluation of a closed sympy expression."""
    with mpmath.workdps(50):
        return float(mpmath.mpf(str(sp.N(expr, 50))))


@pytest.mark.parametrize("module", [tg, tp, t1, tl], ids=lambda m: m.__name__)
def test_derivations_hold(module) -> None:
    """Oracle: sympy. Every identity and count each theory script states."""
    module.verify()


# -- T-gamma ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fp16", "bf16", "e4m3fn", "fp32", "tf32"])
def test_gamma_equals_sympy_exactly(name: str) -> None:
    """Oracle: T-gamma's GAMMA with u = 2**-p, an exact rational rounded once to float64."""
    fmt = PRESETS[name]
    unit = sp.Rational(1, 2**fmt.precision)
    for count in {1, 2, 3, 10, 99, 2 ** (fmt.precision - 1), 2**fmt.precision - 1}:
        if count >= 2**fmt.precision:
            continue
        assert gamma(count, fmt) == float(tg.GAMMA.subs({tg.n: count, tg.u: unit}))
    assert gamma(tg.infinite_from(fmt.precision), fmt) == math.inf
    assert (
        gamma(tg.vacuous_from(fmt.precision), fmt)
        >= 1
        > gamma(tg.vacuous_from(fmt.precision) - 1, fmt)
    )


def test_summation_depths_equal_tree_counts() -> None:
    """Oracle: the worst rounding count found by walking each algorithm's evaluation tree."""
    for count in range(1, 34):
        assert summation_depth(count) == tg.recursive_depth(count)
        assert summation_depth(count, "pairwise") == tg.pairwise_depth(count)
        for block in range(1, 10):
            inner, outer = tg.blocked_depth(count, block)
            assert summation_depth(count, "blocked", block=block) == inner + outer


@pytest.mark.parametrize("internal", ["any", "c_last", "exact"])
def test_block_fma_depths_equal_tree_counts(internal: str) -> None:
    """Oracle: block-FMA evaluation trees (every internal order enumerated for "any")."""
    for count in range(1, 7):
        for block in range(1, 5):
            assert block_fma_depth(count, block, internal) == tg.block_fma_depth(
                count, block, internal
            )


def test_two_format_and_block_fma_coefficients() -> None:
    """Oracle: T-gamma's two_format_coefficient and BLOCK_FMA_COEFFICIENT in exact rationals.

    The code forms (1 + a)(1 + b) - 1 in float64: a and b are correctly rounded, the two sums
    with 1 and the product each round once (values below 4, half an ulp <= 2**-52), and
    subtracting 1 is exact, so the absolute error is below 2**-51.
    """
    x = [1.0] * 100
    r = blocked_sum_bound(x, "fp16", 10, outer_fmt="fp32")
    exact = tg.two_format_coefficient(9, sp.Rational(1, 2**11), 9, sp.Rational(1, 2**24))
    assert abs(r.bound / 100 - float(exact)) <= 2.0**-51
    ones = torch.ones(1, 64, dtype=torch.float64)
    for internal in ("any", "c_last", "exact"):
        e = block_fma_bound(ones, ones.T, 8, internal=internal)
        depth = tg.block_fma_depth(64, 8, internal) if internal != "any" else 63
        coefficient = tg.BLOCK_FMA_COEFFICIENT.subs(
            {tg.m: depth, tg.u_in: sp.Rational(1, 2**11), tg.u_acc: sp.Rational(1, 2**24)}
        )
        assert abs(e.coefficient - float(coefficient)) <= 2.0**-51


# -- T-prob -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fp16", "bf16", "e4m3fn"])
@pytest.mark.parametrize("stochastic", [False, True])
def test_gamma_tilde_and_probability_match_sympy(name: str, stochastic: bool) -> None:
    """Oracle: T-prob's GAMMA_TILDE, FAILURE and lambda_vacuous at 50 digits (mpmath).

    gamma~: sqrt, two products, a quotient and a sum round, so the argument x of expm1 carries
    a relative error below 2 ulps, which expm1 multiplies by its condition number
    x e**x / (e**x - 1) (about 1 for small x, x for large), plus 1 ulp of its own. The failure
    probability: the exponent carries ~1.5 ulps, multiplied by its magnitude, plus 2 ulps for
    exp and the doubling. lambda_vacuous: sqrt, log, quotient: 4 ulps.
    """
    fmt = PRESETS[name]
    unit = sp.Rational(2 if stochastic else 1, 2**fmt.precision)
    for count, lam in ((4, 1.0), (100, 3.5), (1000, 6.25)):
        expected = _mp(tp.GAMMA_TILDE.subs({tp.n: count, tp.u: unit, tp.lam: sp.Float(lam, 50)}))
        u = float(unit)
        x = lam * math.sqrt(count) * u + count * u * u / (1 - u)
        condition = x * math.exp(x) / math.expm1(x)
        assert gamma_tilde(count, fmt, lam, stochastic=stochastic) == pytest.approx(
            expected, rel=(2 * condition + 1) * ULP
        )
        argument = lam * lam * (1 - float(unit)) ** 2 / 2
        probability = _mp(tp.dot_failure(count).subs({tp.u: unit, tp.lam: sp.Float(lam, 50)}))
        if probability < 1:
            tolerance = (1.5 * argument + 2) * ULP
            got = failure_probability(lam, fmt, terms=count, stochastic=stochastic)
            assert got == pytest.approx(probability, rel=tolerance)
    vacuous = _mp(tp.lambda_vacuous(1, unit))
    assert lambda_for_probability(1.0, fmt, stochastic=stochastic) == pytest.approx(
        vacuous, rel=4 * ULP
    )


# -- T1 -----------------------------------------------------------------------------------------


def test_critical_factors_equal_sympy_roots() -> None:
    """Oracle: the positive roots that theory/t1_gd.py solves for, rounded once to float64."""
    assert float(t1.CRITICAL_FACTOR) == CRITICAL_FACTOR
    assert float(t1.CRITICAL_FACTOR_SHARP) == CRITICAL_FACTOR_SHARP
    # The validation figure's constant (u = 2**-11): exact, u L ||theta|| being a power of two.
    published = t1.validation_constants(11)["published"]
    assert critical_gradient_norm(1.0, 1.0, "fp16") == float(published)
    # The values quoted in theory/T1-gd-mixed-precision.md: (4 + 3 sqrt 2) / 2**11
    # = 8.2426407 / 2048 = 4.02473e-3, and the earlier version's (2 + sqrt 6) / 2**11
    # = 4.4494897 / 2048 = 2.17260e-3 (REFERENCES section 4), both to the 5 digits quoted.
    assert critical_gradient_norm(1.0, 1.0, "fp16") == pytest.approx(4.0247e-3, rel=1e-4)
    assert float(t1.validation_constants(11)["earlier"]) == pytest.approx(2.1726e-3, rel=1e-4)
    for lip, norm in ((0.25, 8.0), (64.0, 2.0**-5)):
        expected = t1.CRITICAL_FACTOR * sp.Rational(1, 2**8) * sp.nsimplify(lip * norm)
        assert critical_gradient_norm(lip, norm, "bf16") == float(expected)


@pytest.mark.parametrize(("g", "delta", "lip"), [(10, 1, 1), (1000, 7, 4), (3, 5, 0.5)])
def test_decrease_equals_sympy(g: int, delta: int, lip: float) -> None:
    """Oracle: DECREASE and DECREASE_SHARP at small integers and dyadic L, where every float
    operation of the code is exact."""
    values = {t1.g: g, t1.delta: delta, t1.lip: sp.nsimplify(lip)}
    assert guaranteed_decrease(g, delta, lip) == float(t1.DECREASE.subs(values))
    assert guaranteed_decrease(g, delta, lip, sharp=True) == float(t1.DECREASE_SHARP.subs(values))


def test_cosine_bounds_equal_sympy() -> None:
    """Oracle: COSINE_BOUND (one rounding: exact) and COSINE_BOUND_SHARP at 50 digits (three
    roundings inside a sqrt, then 1 - sqrt: 8 ulps of the result cover it for delta/g <= 0.9)."""
    for g, delta in ((3, 1), (5, 3), (10, 9), (7, 2)):
        values = {t1.g: g, t1.delta: delta}
        assert cosine_distance_bound(g, delta).bound == float(t1.COSINE_BOUND.subs(values))
        sharp = _mp(t1.COSINE_BOUND_SHARP.subs(values))
        assert cosine_distance_bound(g, delta, sharp=True).bound == pytest.approx(
            sharp, rel=8 * ULP / sharp
        )


# -- T-lost-update ------------------------------------------------------------------------------


def test_worked_example_thresholds() -> None:
    """Oracle: theory/t_lost_update.worked_example (sympy): fp16, w = -1/2."""
    example = tl.worked_example()
    toward = float(example["threshold_toward_zero"])
    away = float(example["threshold_away"])
    assert toward == 2.0**-13 and away == 2.0**-12
    w = torch.full((4,), -0.5, dtype=torch.float64)
    d = torch.tensor(
        [toward, math.nextafter(toward, 1), -away, -math.nextafter(away, 1)], dtype=torch.float64
    )
    # Ties go to -0.5, whose significand 1024 is even.
    assert lost_updates(w, d, "fp16").tolist() == [True, False, True, False]


def _small_format_values(fmt: FloatFormat) -> tuple[Fraction, ...]:
    return tl.format_values(fmt.precision, fmt.emin, fmt.emax, fmt.subnormals, Fraction(fmt.max))


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "e3m2", "e2m3", "e2m1"])
@pytest.mark.parametrize("mode", [m for m in RoundMode if not m.is_stochastic], ids=str)
def test_lost_update_thresholds_match_enumeration(name: str, mode: RoundMode) -> None:
    """Oracle: theory/t_lost_update: gaps by listing every value of the format, parity of the
    significand on the side's grid, and the per-mode threshold; the code must call an update
    lost exactly below (or at, when inclusive) the threshold, for every value and direction
    (outward moves at +-max excluded: overflow is tested against rounding in test_gd)."""
    fmt = PRESETS[name]
    values = _small_format_values(fmt)
    ws, ds, expected = [], [], []
    for w in values:
        for direction in (1, -1):
            outward = w == 0 or (w > 0) == (direction > 0)
            if outward and abs(w) == Fraction(fmt.max):
                continue
            gap = tl.gap_by_enumeration(values, w, direction)
            toward_zero = not outward
            odd = tl.is_odd(w, fmt.precision, fmt.emin, fmt.subnormals, toward_zero)
            t, inclusive = tl.threshold(mode.value, gap, direction, w, odd)
            for a in (t * Fraction(3, 4), t, t * Fraction(5, 4), gap / 2, gap):
                if a == 0:
                    continue
                ws.append(float(w))
                ds.append(float(direction * a))
                expected.append(a < t or (a == t and inclusive))
    got = lost_updates(
        torch.tensor(ws, dtype=torch.float64), torch.tensor(ds, dtype=torch.float64), fmt, mode
    )
    assert got.tolist() == expected
