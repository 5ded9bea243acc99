"""The sympy/mpmath derivations in theory/ agree with the constants and formulas in mperror.bounds.

Oracles: theory/fno_bounds.py and theory/fft_bound.py (exact sympy integration, limits and
solveset; mpmath quadrature and bisection at 30 digits, format parameters typed from REFERENCES).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import mpmath
import pytest
import sympy as sp

from mperror.bounds import fft as fftb
from mperror.bounds import fno

THEORY = Path(__file__).parents[2] / "theory"


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fno_theory = _load("mperror_theory_fno_bounds", THEORY / "fno_bounds.py")
fft_theory = _load("mperror_theory_fft_bound", THEORY / "fft_bound.py")


def test_c1_exact() -> None:
    """Oracle: sympy integrates E|U[-1/2, 1/2]| = 2 int_0^(1/2) x dx to exactly 1/4, which the
    code's 0.25 represents exactly."""
    assert fno_theory.c1() == sp.Rational(1, 4)
    assert fno.c_d(1) == float(fno_theory.c1())


def test_c2_exact() -> None:
    """sympy integrates sqrt(x^2 + y^2) over the square to (sqrt 2 + ln(1 + sqrt 2))/6; the code's
    float is that number correctly rounded."""
    c2 = fno_theory.c2()
    assert sp.simplify(c2 - fno_theory.c2_closed_form()) == 0
    assert fno.c_d(2) == float(sp.N(c2, 40))


def test_corner_constant_doubles() -> None:
    """Oracle: sympy integrates sqrt(x^2 + y^2) over the corner cell [0, 1]^2 to exactly 2 c_2
    (a quarter of the centred square, scaled by 2); doubling a float is exact."""
    assert sp.simplify(fno_theory.c2_corner() - 2 * fno_theory.c2()) == 0
    assert fno.c_d(2, "corner") == 2 * fno.c_d(2)


def test_c3_mpmath_two_ways_and_code_rounds_up() -> None:
    """Oracle: two mpmath quadratures (the cube's 48 symmetries at 30 digits, a plain 2-D one at
    15) that agree to 1e-13; the code's float must be the 30-digit value rounded up."""
    reduced = fno_theory.c3_mpmath(dps=30)
    direct = fno_theory.c3_mpmath_direct(dps=15)
    assert abs(reduced - direct) < 1e-13
    assert mpmath.mpf(fno.c_d(3)) >= reduced
    assert fno.c_d(3) - math.ulp(fno.c_d(3)) < reduced


@pytest.mark.parametrize("d", [1, 2, 3])
def test_jensen(d: int) -> None:
    """E||U||^2 = d/12, so c_d <= sqrt(d/12)."""
    assert fno_theory.second_moment() == sp.Rational(1, 12)
    assert fno.c_d(d) <= math.sqrt(d * float(fno_theory.second_moment()))


@pytest.mark.parametrize("grid", ["centred", "corner"])
def test_worst_case_and_ratio_limit(grid: str) -> None:
    """The worst case's error is M/2 (30-digit mpmath sums) and bound/error -> pi (2 pi)."""
    for n in (16, 64):
        assert fno_theory.worst_case_error(n, 3, grid) == pytest.approx(0.5, abs=1e-25)
    limit = fno_theory.worst_case_ratio_limit(grid)
    assert limit == (sp.pi if grid == "centred" else 2 * sp.pi)
    n, w, m = 4096, 3, 1.0
    bound = fno.discretisation_bound(n, w, 2 * math.pi * (n + w) * m, m, grid=grid).bound
    assert bound / (m / 2) == pytest.approx(float(limit), rel=2 * w / n + 1e-12)


@pytest.mark.parametrize("k", range(0, 7))
def test_triangle_coefficients(k: int) -> None:
    """The closed form used in tests/bounds/test_fno.py equals sympy's integral."""
    difference = fno_theory.triangle_coefficient_integral(k) - fno_theory.triangle_coefficient(k)
    assert sp.simplify(difference) == 0


def test_fft_constants() -> None:
    """Oracle: sympy: solveset shows eta_ours <= eta_higham on 0 < u < 1/4; limits give
    1 + 4 sqrt 2 (the code's constant is its correctly rounded float) and 2 + 2 sqrt 2; the
    complex-product lemma's residual expands to 0; d/dx e^x (1 - x) = -x e^x."""
    assert fft_theory.eta_ours_below_higham()
    assert fft_theory.leading_constant() == 1 + 4 * sp.sqrt(2)
    assert float(fft_theory.leading_constant()) == fftb.FFT_ETA_LEADING_CONSTANT
    assert fft_theory.leading_constant_ours() == 2 + 2 * sp.sqrt(2)
    assert fft_theory.complex_product_lemma() == 0
    x = sp.Symbol("x", positive=True)
    assert fft_theory.exp_step() == -x * sp.exp(x)


@pytest.mark.parametrize("name", ["fp16", "bf16", "e5m2", "e4m3fn"])
def test_twiddle_error_matches(name: str) -> None:
    """Oracle: mpmath's sqrt(u^2 + 2 h^2) (h half the subnormal spacing) in theory/fft_bound.py,
    with p, emin and subnormals typed from REFERENCES section 1, not read from mperror."""
    p, emin, subnormals = fft_theory.FORMATS[name]
    expected = fft_theory.twiddle_error(p, emin, subnormals)
    assert fftb.default_twiddle_error(name) == pytest.approx(float(expected), rel=1e-15)


@pytest.mark.parametrize("name", ["fp16", "bf16", "e5m2", "e4m3fn"])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("fft_arithmetic", [False, True])
def test_crossover_matches_independent_mpmath(name: str, d: int, fft_arithmetic: bool) -> None:
    """The package's bisection (or closed form) against a 30-digit mpmath bisection."""
    expected = fno_theory.crossover_log2(name, d=d, fft_arithmetic=fft_arithmetic)
    got = fno.crossover_resolution(1.0, 1.0, name, d=d, fft_arithmetic=fft_arithmetic)
    assert got.log2_resolution == pytest.approx(float(expected), rel=1e-9, abs=1e-9)


def test_layer_bound_matches_sympy_expression() -> None:
    """The package's T-fno-layer formula against the note's expression built in sympy."""
    n, d, m, c_in, c_out, modes = 64, 2, 0.8, 8, 5, 49
    u = 2.0**-11
    r, r_abs = 1.7, 3.1
    for accumulate, u_acc in (("fp16", u), ("fp32", 2.0**-24)):
        for norm in ("rms", "max"):
            got = fno.fourier_layer_bound(
                n, d, m, "fp16", c_in=c_in, c_out=c_out, kept_modes=modes, weight_norm=r,
                weight_abs_norm=r_abs, accumulate=accumulate, norm=norm,
            ).bound  # fmt: skip
            expression, symbols = fno_theory.layer_bound(norm)
            g = math.sqrt(2) * (2 * c_in * u_acc) / (1 - 2 * c_in * u_acc)
            u_out = 0.0 if accumulate == "fp16" else u
            values = {
                "M": m,
                "delta": u * m,
                "rho": fftb.fft_error_bound(n**d, "fp16").bound,
                "r": r,
                "r_abs": r_abs,
                "u": u,
                "g_store": g + u_out * (1 + g),
                "c_in": c_in,
                "m": modes,
            }
            expected = float(expression.subs({symbols[k]: v for k, v in values.items()}))
            assert got == pytest.approx(expected, rel=1e-12)


def test_layer_first_order() -> None:
    """Oracle: the expansion by hand: to first order the rms bound over r sqrt(c_in) M is
    delta/M + rho (input FFT) + rho (output FFT) + (r_abs/r)(u + g_store); sympy's series must
    equal it."""
    sym = fno_theory.layer_bound()[1]
    expected = (
        sym["delta"] / sym["M"]
        + 2 * sym["rho"]
        + sym["r_abs"] / sym["r"] * (sym["u"] + sym["g_store"])
    )
    assert sp.simplify(fno_theory.layer_first_order() - expected) == 0
