"""Tests for mperror.bounds.fno: T-fno-disc against functions with known Fourier coefficients,
T-fno-prec against rounded samples, the crossover, and T-fno-layer against an emulated fp16 layer.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest
from scipy.special import iv

from mperror.bounds import fno
from mperror.formats import as_format


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


emu = _load("mperror_tests_emulated_fft", Path(__file__).with_name("emulated_fft.py"))

NS_1D = [16, 32, 64, 128, 256, 512, 1024]
NS_2D = [16, 32, 64, 128]
GRIDS = ["centred", "corner"]
# |cos t exp(sin t)| peaks where cos^2 t = sin t, i.e. sin t = GOLDEN and cos t = sqrt(GOLDEN)
GOLDEN = (math.sqrt(5) - 1) / 2
EXP_SIN_LIPSCHITZ = 2 * math.pi * math.sqrt(GOLDEN) * math.exp(GOLDEN)  # max |d/dx exp(sin 2 pi x)|


def _nodes(n: int, grid: str) -> np.ndarray:
    return (np.arange(n) + (0.5 if grid == "centred" else 0.0)) / n


def _dft_coefficient(samples: np.ndarray, w: tuple[int, ...], grid: str) -> complex:
    """v^_n(w): the forward-normalised FFT, the centred grid's phase removed (midpoint rule)."""
    n = samples.shape[0]
    value = np.fft.fftn(samples, norm="forward")[tuple(k % n for k in w)]
    if grid == "centred":
        value *= np.exp(-1j * np.pi * sum(w) / n)
    return complex(value)


def _exp_sin_coefficient(k: int) -> complex:
    """exp(sin 2 pi x) = sum_k (-i)^k I_k(1) exp(2 pi i k x) (Jacobi-Anger)."""
    return complex((-1j) ** k * iv(abs(k), 1.0))


def _triangle_coefficient(k: int) -> float:
    """|x - 1/2| on [0, 1): 1/4 at 0, 1/(pi^2 k^2) for odd k, 0 for even k != 0."""
    if k == 0:
        return 0.25
    return 0.0 if k % 2 == 0 else 1 / (math.pi**2 * k**2)


# c_d.


def test_c_d_exact_and_documented_values() -> None:
    """Oracle: mpmath at 30 digits for (sqrt 2 + ln(1 + sqrt 2))/6 and for c_3
    (theory/fno_bounds.py computes c_3 from its exact inner integral)."""
    assert fno.c_d(1) == 0.25
    with mpmath.workdps(30):
        c2 = (mpmath.sqrt(2) + mpmath.log(1 + mpmath.sqrt(2))) / 6
        c3 = mpmath.mpf("0.480295978227526479712553975697")
    assert abs(mpmath.mpf(fno.c_d(2)) - c2) <= math.ulp(fno.c_d(2)) / 2  # correctly rounded
    assert mpmath.mpf(fno.c_d(3)) >= c3  # rounded up: still an upper bound
    assert fno.c_d(3) - math.ulp(fno.c_d(3)) < c3


@pytest.mark.parametrize("d", range(1, 9))
def test_c_d_below_jensen_and_corner_doubles(d: int) -> None:
    """Oracle: Jensen, E||U|| <= sqrt(d/12); corner grids double the constant."""
    assert fno.c_d(d) <= math.sqrt(d / 12)
    assert fno.c_d(d, "corner") == 2 * fno.c_d(d)
    if d >= 4:
        assert fno.c_d(d) == math.sqrt(d / 12)


@pytest.mark.parametrize("d", [2, 4])
def test_c_d_against_monte_carlo(d: int) -> None:
    """Oracle: a Monte Carlo mean of ||U[-1/2, 1/2]^d|| from 400,000 samples. The norm lies in
    [0, sqrt(d)/2], so its standard deviation is below sqrt(d)/4 and the mean's below
    sqrt(d)/4/632 < 0.0008; 5 standard errors is 0.004."""
    rng = np.random.default_rng(d)
    mean = np.linalg.norm(rng.uniform(-0.5, 0.5, (400_000, d)), axis=1).mean()
    assert fno.c_d(d) >= mean - 0.004
    if d == 2:  # exact there
        assert abs(fno.c_d(d) - mean) < 0.004


# T-fno-disc: functions with known coefficients.


@pytest.mark.parametrize("grid", GRIDS)
def test_discretisation_bound_exp_sin_1d(grid: str) -> None:
    """Oracle: the Bessel coefficients of exp(sin 2 pi x); M = e, L = 2 pi sqrt(g) e^g."""
    for n in NS_1D:
        samples = np.exp(np.sin(2 * np.pi * _nodes(n, grid)))
        for w in (0, 1, 3, 7):
            error = abs(_dft_coefficient(samples, (w,), grid) - _exp_sin_coefficient(w))
            result = fno.discretisation_bound(n, w, EXP_SIN_LIPSCHITZ, math.e, grid=grid)
            assert result.check(error).holds
            # smooth: the aliased tail, led by I_(n-w)(1) + I_(n+w)(1) ~ 2^-n/n!, decays far
            # faster than 1/n; 1.1 covers the further aliases, 1e-14 float64 round-off
            assert error <= 1.1 * (iv(n - w, 1.0) + iv(n + w, 1.0)) + 1e-14


@pytest.mark.parametrize("grid", GRIDS)
def test_discretisation_bound_triangle_wave_and_order_two(grid: str) -> None:
    """Oracle: the closed-form coefficients of |x - 1/2| (checked in sympy by
    tests/theory/test_theory_fno.py); M = 1/2, L = 1. Observed order: the error at odd w is the
    aliased tail sum_(m != 0) (+-1)^m / (pi^2 (w + n m)^2) ~ C / n^2, C = 1/3 (corner) or
    1/6 (centred), so the fitted log-log slope is -2 where the bound's is -1."""
    errors = []
    for n in NS_1D:
        samples = np.abs(_nodes(n, grid) - 0.5)
        for w in (0, 1, 2, 3, 5):
            error = abs(_dft_coefficient(samples, (w,), grid) - _triangle_coefficient(w))
            assert fno.discretisation_bound(n, w, 1.0, 0.5, grid=grid).check(error).holds
            if w == 1:
                errors.append(error)
    slope = np.polyfit(np.log(NS_1D), np.log(errors), 1)[0]
    assert abs(slope - (-2)) < 0.02
    leading = 1 / 3 if grid == "corner" else 1 / 6
    assert NS_1D[-1] ** 2 * errors[-1] == pytest.approx(leading, rel=1e-3)


@pytest.mark.parametrize("grid", GRIDS)
def test_poisson_kernel_geometric_convergence(grid: str) -> None:
    """Oracle: the Poisson kernel (1 - r^2)/(1 - 2r cos 2 pi x + r^2) = sum_k r^|k| e^(2 pi i k x),
    whose aliased error at 0 <= w < n is (r^w + r^-w) r^n / (1 - r^n) on corner grids and
    -(r^w + r^-w) r^n / (1 + r^n) on centred grids (geometric series). Fitted rate vs r."""
    r, w = 0.8, 2
    m = (1 + r) / (1 - r)
    lipschitz = 2 * math.pi * 2 * r / (1 - r) ** 2  # 2 pi sum |k| r^|k| >= max |v'|
    ns = [16, 24, 32, 40, 48, 56, 64]
    errors = []
    for n in ns:
        x = _nodes(n, grid)
        samples = (1 - r * r) / (1 - 2 * r * np.cos(2 * np.pi * x) + r * r)
        signed = _dft_coefficient(samples, (w,), grid) - r**w
        if grid == "corner":
            expected = (r**w + r**-w) * r**n / (1 - r**n)
        else:
            expected = -(r**w + r**-w) * r**n / (1 + r**n)
        # float64 FFT round-off is ~1e-15 m; the smallest error here is ~1e-6
        assert signed.real == pytest.approx(expected, rel=1e-7)
        assert abs(signed.imag) < 1e-13
        assert fno.discretisation_bound(n, w, lipschitz, m, grid=grid).check(abs(signed)).holds
        errors.append(abs(signed))
    rate = math.exp(np.polyfit(ns, np.log(errors), 1)[0])
    assert rate == pytest.approx(r, rel=0.01)


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("w", [1, 3])
def test_worst_case_attains_half_m(grid: str, w: int) -> None:
    """Oracle: v = M sin(2 pi (n + w) x) has v^(w) = 0 and |v^_n(w)| = M/2 exactly (its samples
    are +-M sin(2 pi w x_j)); L = 2 pi (n + w) M. Tolerance: float64 rounds the argument
    2 pi (n + w) x_j (< 6500) with error < 1e-12, and sin is 1-Lipschitz, so 1e-10 M is safe."""
    m = 2.5
    for n in NS_1D:
        samples = m * np.sin(2 * np.pi * (n + w) * _nodes(n, grid))
        error = abs(_dft_coefficient(samples, (w,), grid))
        assert error == pytest.approx(m / 2, abs=1e-10 * m)
        result = fno.discretisation_bound(n, w, 2 * math.pi * (n + w) * m, m, grid=grid)
        assert result.check(error).holds
        # tight up to pi (centred) or 2 pi (corner), plus the 2w/n of the Lipschitz constant
        factor = math.pi if grid == "centred" else 2 * math.pi
        assert result.bound / error <= factor * (1 + 2 * w / n) * (1 + 1e-9)
        assert result.bound / error >= factor * (1 - 1e-9)


def _hermitian(coefficients: np.ndarray) -> np.ndarray:
    """(a + conj(a(-k)))/2 for coefficients indexed by k = -K..K on every axis: a real field."""
    flipped = np.conj(coefficients[tuple(slice(None, None, -1) for _ in coefficients.shape)])
    return (coefficients + flipped) / 2


@pytest.mark.parametrize("grid", GRIDS)
def test_random_fourier_series_1d(grid: str) -> None:
    """Oracle: a field built from 97 known coefficients (|k| <= 48, decaying like |k|^-1.5), its
    samples evaluated in float64; M = sum |a_k|, L = 2 pi sum |k| |a_k| bound |v| and |v'|. The
    exact aliasing form v^_n(w) = sum_m (+-1)^m a_(w + n m) is checked too."""
    rng = np.random.default_rng(1)
    cutoff = 48
    ks = np.arange(-cutoff, cutoff + 1)
    raw = (rng.standard_normal(ks.size) + 1j * rng.standard_normal(ks.size)) / (1 + abs(ks)) ** 1.5
    a = _hermitian(raw)
    m = float(np.abs(a).sum())
    lipschitz = float(2 * np.pi * (np.abs(ks) * np.abs(a)).sum())
    for n in NS_1D:
        x = _nodes(n, grid)
        samples = (np.exp(2j * np.pi * np.outer(x, ks)) @ a).real
        for w in (0, 1, 5, 17, 40):
            approx = _dft_coefficient(samples, (w,), grid)
            exact = a[w + cutoff]
            assert (
                fno.discretisation_bound(n, w, lipschitz, m, grid=grid)
                .check(abs(approx - exact))
                .holds
            )
            aliases = [j for j in range(-2 * cutoff, 2 * cutoff + 1) if abs(w + n * j) <= cutoff]
            sign = (lambda j: (-1) ** j) if grid == "centred" else (lambda j: 1)
            aliased = sum(sign(j) * a[w + n * j + cutoff] for j in aliases)
            assert abs(approx - aliased) < 1e-12 * m


@pytest.mark.parametrize("grid", GRIDS)
def test_random_fourier_series_2d(grid: str) -> None:
    """Oracle: a real 2-D field from 21 x 21 known coefficients, evaluated as E1 A E2^T in float64;
    M = sum |a_k|, L = 2 pi sum ||k|| |a_k|."""
    rng = np.random.default_rng(2)
    cutoff = 10
    ks = np.arange(-cutoff, cutoff + 1)
    k1, k2 = np.meshgrid(ks, ks, indexing="ij")
    norms = np.sqrt(k1**2 + k2**2)
    raw = (rng.standard_normal(norms.shape) + 1j * rng.standard_normal(norms.shape)) / (
        1 + norms
    ) ** 2
    a = _hermitian(raw)
    m = float(np.abs(a).sum())
    lipschitz = float(2 * np.pi * (norms * np.abs(a)).sum())
    for n in NS_2D:
        e = np.exp(2j * np.pi * np.outer(_nodes(n, grid), ks))
        samples = (e @ a @ e.T).real
        for w in [(0, 0), (1, 2), (-3, 7), (9, -10)]:
            approx = _dft_coefficient(samples, w, grid)
            exact = a[w[0] + cutoff, w[1] + cutoff]
            result = fno.discretisation_bound(n, w, lipschitz, m, 2, grid=grid)
            assert result.check(abs(approx - exact)).holds


@pytest.mark.parametrize("grid", GRIDS)
def test_products_2d(grid: str) -> None:
    """Oracle: coefficients of separable products: exp(sin 2 pi x1) exp(sin 2 pi x2) (Bessel)
    with M = e^2, L = sqrt 2 e max|d/dx exp(sin 2 pi x)|; |x1 - 1/2| |x2 - 1/2| with M = 1/4,
    L = 1/sqrt 2 (|grad| = sqrt(|x2 - 1/2|^2 + |x1 - 1/2|^2))."""
    cases = [
        (lambda t: np.exp(np.sin(2 * np.pi * t)), _exp_sin_coefficient, math.e**2,
         math.sqrt(2) * math.e * EXP_SIN_LIPSCHITZ),
        (lambda t: np.abs(t - 0.5), _triangle_coefficient, 0.25, 1 / math.sqrt(2)),
    ]  # fmt: skip
    for factor, coefficient, m, lipschitz in cases:
        for n in NS_2D:
            line = factor(_nodes(n, grid))
            samples = np.outer(line, line)
            for w in [(0, 0), (1, 2), (3, 0), (5, 5)]:
                approx = _dft_coefficient(samples, w, grid)
                exact = coefficient(w[0]) * coefficient(w[1])
                result = fno.discretisation_bound(n, w, lipschitz, m, 2, grid=grid)
                assert result.check(abs(approx - exact)).holds


def test_discretisation_bound_by_hand_and_vacuous() -> None:
    """Oracle: c_1 (L + 2 pi |w| M)/n typed by hand; vacuous once the bound reaches 2M."""
    r = fno.discretisation_bound(8, 2, 3.0, 0.5)
    assert r.bound == 0.25 * (3.0 + 2 * math.pi * 2 * 0.5) / 8
    assert r.theorem == "T-fno-disc" and not r.vacuous
    assert fno.discretisation_bound(1, 5, 0.0, 1.0).vacuous  # (1/4) 10 pi >= 2
    corner = fno.discretisation_bound(8, (1, 1), 0.0, 1.0, 2, grid="corner")
    assert corner.bound == pytest.approx(2 * fno.c_d(2) * 2 * math.pi * math.sqrt(2) / 8, rel=1e-15)


def test_numpy_scalars_are_numbers() -> None:
    """Oracle: the same call with Python scalars."""
    want = fno.discretisation_bound(16, (1, 2), 1.0, 1.0, 2).bound
    got = fno.discretisation_bound(np.int64(16), (np.int64(1), 2), np.float32(1), 1.0, 2).bound
    assert got == want
    assert fno.discretisation_bound(16, np.int64(2), 0.0, 1.0).bound == (
        fno.discretisation_bound(16, 2, 0.0, 1.0).bound
    )


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: fno.discretisation_bound(0, 0, 1.0, 1.0), ValueError),
        (lambda: fno.discretisation_bound(8, 1, 1.0, 1.0, 2), ValueError),
        (lambda: fno.discretisation_bound(8, (1, 2), 1.0, 1.0, 1), ValueError),
        (lambda: fno.discretisation_bound(8, (1.0,), 1.0, 1.0, 1), ValueError),
        (lambda: fno.discretisation_bound(8, "1", 1.0, 1.0, 1), TypeError),
        (lambda: fno.discretisation_bound(8, 0, -1.0, 1.0), ValueError),
        (lambda: fno.discretisation_bound(8, 0, 1.0, 1.0, grid="vertex"), ValueError),
        (lambda: fno.c_d(0), ValueError),
        (lambda: fno.input_rounding_bound(1.0, "e4m3"), ValueError),
        (lambda: fno.fft_precision_bound(12, 1, 1.0, "fp16"), ValueError),
        (lambda: fno.crossover_resolution(0.0, 1.0, "fp16"), ValueError),
        (lambda: fno.crossover_resolution(1.0, 1.0, "fp16", fft_arithmetic=1), TypeError),
    ],
)
def test_bad_arguments(call, error) -> None:
    with pytest.raises(error):
        call()


# T-fno-prec (a): rounding the samples.


def _round(name: str):
    """A float64 -> format rounding that is correctly rounded (round to nearest even)."""
    if name == "fp16":
        return emu.round_fp16  # numpy's float64 -> float16 cast (REFERENCES section 2)
    return emu.rounder(name)  # mperror.round, which rounds float64 once


@pytest.mark.parametrize("name", ["fp16", "bf16", "e5m2", "e4m3fn"])
@pytest.mark.parametrize(("n", "d"), [(16, 1), (128, 1), (1024, 1), (16, 2), (128, 2)])
def test_input_rounding_bound_holds(name: str, n: int, d: int) -> None:
    """Oracle: the float64 DFT of the exactly rounded samples against that of the samples.
    Samples in [-3, 3] fit every format (e4m3fn's subnormals below 2^-6 have absolute error
    <= 2^-10 < u M)."""
    rnd = _round(name)
    rng = np.random.default_rng(n * d)
    v = rng.uniform(-3, 3, (n,) * d)
    m = float(np.abs(v).max())
    observed = np.abs(np.fft.fftn(rnd(v), norm="forward") - np.fft.fftn(v, norm="forward")).max()
    result = fno.input_rounding_bound(m, name).check(observed)
    assert result.holds and result.bound == as_format(name).unit_roundoff * m


def test_input_rounding_bound_is_attained() -> None:
    """Oracle: samples 1 + 2^-11 - 2^-30, just below the tie between 1 and 1 + 2^-10, all round
    down to 1 (numpy fp16 cast), so the DC error is 2^-11 - 2^-30 against u M = 2^-11 M."""
    v = np.full(64, 1 + 2.0**-11 - 2.0**-30)
    observed = abs(
        np.fft.fft(emu.round_fp16(v), norm="forward")[0] - np.fft.fft(v, norm="forward")[0]
    )
    result = fno.input_rounding_bound(float(v.max()), "fp16").check(observed)
    assert result.holds and result.ratio > 0.999


def test_input_rounding_bound_subnormal_and_overflow() -> None:
    """Oracle: fp16 half subnormal spacing 2^-25 below 2^-14; numpy fp16 cast of tiny samples."""
    tiny = 2.0**-20
    r = fno.input_rounding_bound(tiny, "fp16")
    assert r.bound == 2.0**-25
    v = np.random.default_rng(3).uniform(-tiny, tiny, 4096)
    assert np.abs(emu.round_fp16(v) - v).max() <= r.bound
    big = fno.input_rounding_bound(70000.0, "fp16")
    assert big.bound == math.inf and big.vacuous


def test_fft_precision_bound_by_hand() -> None:
    """Oracle: u M + rho (M + u M) typed from the theorem; inf where N (M + delta) > 65504."""
    from mperror.bounds.fft import fft_eta

    u = 2.0**-11
    eta = fft_eta("fp16")
    r = fno.fft_precision_bound(64, 1, 2.0, "fp16")
    assert r.bound == pytest.approx(u * 2 + 6 * eta / (1 - 6 * eta) * (2 + 2 * u), rel=1e-15)
    assert fno.fft_precision_bound(128, 2, 1.0, "fp16").bound < math.inf
    overflow = fno.fft_precision_bound(256, 2, 1.0, "fp16")
    assert overflow.bound == math.inf and overflow.vacuous
    assert fno.fft_precision_bound(4, 1, 1.0, "e4m3fn").vacuous


# Crossover.


@pytest.mark.parametrize(
    ("name", "expected"), [("fp16", 512.0), ("bf16", 64.0), ("e5m2", 2.0), ("e4m3fn", 4.0)]
)
def test_crossover_closed_form(name: str, expected: float) -> None:
    """Oracle: n* = c_1 L / (u M) = (1/4) / 2^-p by hand, L = M = 1, w = 0."""
    r = fno.crossover_resolution(1.0, 1.0, name, fft_arithmetic=False)
    assert r.resolution == expected and r.power_of_two == int(expected)
    assert r.method == "closed form"


@pytest.mark.parametrize("name", ["fp16", "bf16", "e5m2", "e4m3fn"])
@pytest.mark.parametrize(("d", "w"), [(1, 0), (1, 3), (2, (1, 0))])
@pytest.mark.parametrize("fft_arithmetic", [False, True])
def test_crossover_brackets_the_public_bounds(name, d, w, fft_arithmetic) -> None:
    """Oracle: the public bounds at the reported power of two and at half of it."""
    lipschitz, m = 2.0, 1.0
    r = fno.crossover_resolution(lipschitz, m, name, d=d, w=w, fft_arithmetic=fft_arithmetic)

    def precision(n: int) -> float:
        if fft_arithmetic:
            return fno.fft_precision_bound(n, d, m, name).bound
        return fno.input_rounding_bound(m, name).bound

    def discretisation(n: int) -> float:
        return fno.discretisation_bound(n, w, lipschitz, m, d).bound

    p = r.power_of_two
    assert precision(p) >= discretisation(p)
    if p > 1:
        assert precision(p // 2) < discretisation(p // 2)
    assert r.discretisation_bound == pytest.approx(discretisation(p), rel=1e-12)
    assert r.precision_bound == pytest.approx(precision(p), rel=1e-12)
    assert 2 ** (math.log2(p) - 1) < r.resolution <= p or r.resolution == p == 1


# T-fno-layer against an emulated fp16 / bf16 layer.


def _exact_layer(a, weights, kept, axes):
    spectrum = np.fft.fftn(a, axes=axes, norm="forward")
    out = np.zeros((weights.shape[1], *a.shape[1:]), dtype=complex)
    for index, k in enumerate(kept):
        out[(slice(None), *k)] = weights[index] @ spectrum[(slice(None), *k)]
    return np.fft.ifftn(out, axes=axes, norm="forward")  # "forward": no scaling on the inverse


def _emulated_layer(a, weights, kept, axes, rnd, rnd_acc):
    """Every operation rounded: input, FFT, 1/N (exact), weights, the length-2 c_in real dot
    products (recursive, in the accumulation format), the stored result, the inverse FFT."""
    n_total = math.prod(a.shape[1:])
    c_out, c_in = weights.shape[1:]
    re, im = emu.fft(rnd(a), np.zeros_like(a), rnd, axes=axes)
    re, im = rnd(re / n_total), rnd(im / n_total)
    ar = np.stack([re[(slice(None), *k)] for k in kept])  # (m, c_in)
    ai = np.stack([im[(slice(None), *k)] for k in kept])
    wr, wi = rnd(weights.real), rnd(weights.imag)  # (m, c_out, c_in)
    yr = np.zeros((len(kept), c_out))
    yi = np.zeros((len(kept), c_out))
    for c in range(c_in):
        yr = rnd_acc(yr + rnd_acc(wr[:, :, c] * ar[:, None, c]))
        yr = rnd_acc(yr - rnd_acc(wi[:, :, c] * ai[:, None, c]))
        yi = rnd_acc(yi + rnd_acc(wr[:, :, c] * ai[:, None, c]))
        yi = rnd_acc(yi + rnd_acc(wi[:, :, c] * ar[:, None, c]))
    yr, yi = rnd(yr), rnd(yi)
    padded_re = np.zeros((c_out, *a.shape[1:]))
    padded_im = np.zeros((c_out, *a.shape[1:]))
    for index, k in enumerate(kept):
        padded_re[(slice(None), *k)] = yr[index]
        padded_im[(slice(None), *k)] = yi[index]
    out_re, out_im = emu.fft(padded_re, padded_im, rnd, axes=axes, inverse=True)
    return out_re + 1j * out_im


_LAYER_CASES = [
    (fmt, accumulate, n, d, k_max)
    for fmt, accumulate in [("fp16", "fp16"), ("fp16", "fp32"), ("bf16", "fp32")]
    for n, d, k_max in [(64, 1, 7), (256, 1, 12), (16, 2, 2), (32, 2, 4)]
]


@pytest.mark.parametrize(("fmt", "accumulate", "n", "d", "k_max"), _LAYER_CASES)
def test_fourier_layer_bound_holds_for_emulated_layer(fmt, accumulate, n, d, k_max) -> None:
    """Oracle: the same layer in float64 (numpy FFTs and matrix products) on the exact input."""
    rng = np.random.default_rng(n + d)
    c_in, c_out = 6, 4
    axes = tuple(range(1, d + 1))
    a = rng.uniform(-1, 1, (c_in,) + (n,) * d)
    kept = [tuple((j - k_max) % n for j in mode) for mode in np.ndindex(*[2 * k_max + 1] * d)]
    weights = (rng.standard_normal((len(kept), c_out, c_in)) +
               1j * rng.standard_normal((len(kept), c_out, c_in))) / math.sqrt(c_in)  # fmt: skip
    # float64 norms of a few small matrices, nudged up so they stay upper bounds
    r = max(np.linalg.norm(w, 2) for w in weights) * (1 + 1e-12)
    r_abs = max(np.linalg.norm(np.abs(w), 2) for w in weights) * (1 + 1e-12)
    rnd_acc = emu.round_fp16 if accumulate == "fp16" else emu.round_fp32

    got = _emulated_layer(a, weights, kept, axes, _round(fmt), rnd_acc)
    exact = _exact_layer(a, weights, kept, axes)
    diff = got - exact
    rms = math.sqrt(float((np.abs(diff) ** 2).sum()) / n**d)
    worst = float(np.abs(diff).max())
    assert worst > 0  # the emulation does round

    common = {
        "c_in": c_in,
        "c_out": c_out,
        "kept_modes": len(kept),
        "weight_norm": r,
        "weight_abs_norm": r_abs,
        "accumulate": accumulate,
    }
    m = float(np.abs(a).max())
    rms_bound = fno.fourier_layer_bound(n, d, m, fmt, **common).check(rms)
    max_bound = fno.fourier_layer_bound(n, d, m, fmt, norm="max", **common).check(worst)
    assert rms_bound.holds and not rms_bound.vacuous, rms_bound
    assert max_bound.holds, max_bound
    # the default r_abs = sqrt(min(c_in, c_out)) r is an upper bound of the measured one
    default = fno.fourier_layer_bound(n, d, m, fmt, **{**common, "weight_abs_norm": None})
    assert default.bound >= rms_bound.bound


def test_fourier_layer_bound_structure() -> None:
    """Oracle: the theorem's structure: the max form is sqrt(m) = 3 times the rms form;
    N (M + delta) > 65504 gives inf; e4m3fn's FFT factor is infinite, so the bound is vacuous."""
    common = {"c_in": 4, "c_out": 4, "kept_modes": 9, "weight_norm": 1.0}
    rms = fno.fourier_layer_bound(64, 2, 1.0, "fp16", **common)
    worst = fno.fourier_layer_bound(64, 2, 1.0, "fp16", norm="max", **common)
    assert worst.bound == pytest.approx(3 * rms.bound, rel=1e-15)
    assert fno.fourier_layer_bound(256, 2, 1.0, "fp16", **common).bound == math.inf
    assert fno.fourier_layer_bound(64, 2, 1.0, "e4m3fn", **common).vacuous
    assert rms.theorem == "T-fno-layer"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"accumulate": "bf16"}, ValueError),
        ({"weight_abs_norm": 0.5}, ValueError),
        ({"kept_modes": 65}, ValueError),
        ({"norm": "l2"}, ValueError),
        ({"c_in": 0}, ValueError),
        ({"accumulate": 32}, TypeError),
    ],
)
def test_fourier_layer_bad_arguments(changes, error) -> None:
    arguments = {"c_in": 4, "c_out": 4, "kept_modes": 9, "weight_norm": 1.0} | changes
    with pytest.raises(error):
        fno.fourier_layer_bound(64, 1, 1.0, "fp16", **arguments)


def test_crossover_edge_cases() -> None:
    """Oracles: the bounds themselves and the reference rounding. e2m1's FFT bound is infinite
    (u = 1/4), but at n = 1 there is no FFT arithmetic: the precision bound is the input
    rounding u M = 1/4, which meets the discretisation bound c_1 K = 1/4 (it had been NaN).
    An fp64 sample 1.5 * 2**-1074 rounds with error 2**-1075: the input-rounding bound of
    subnormal samples is at least that (it had been 0). Bounds of very different sizes cross
    far beyond float64's range of n without an exception."""
    r = fno.crossover_resolution(1.0, 1.0, "e2m1")
    assert r.power_of_two == 1 and r.precision_bound == 0.25 == r.discretisation_bound
    assert Fraction(fno.input_rounding_bound(1e-320, "fp64").bound) >= Fraction(1, 2**1075)
    assert math.isinf(fno.fft_precision_bound(2**10, 110, 1.0, "fp32").bound)  # had raised
    far = fno.crossover_resolution(1e300, 1e-300, "fp64")
    assert far.resolution == math.inf and far.log2_resolution > 1024


# From a mutation review: defaults, overflow checks and thresholds no test had pinned.


def test_layer_bound_default_weight_abs_norm_is_sqrt_min_channels_times_r() -> None:
    """Oracle: the docstring's default, sqrt(min(c_in, c_out)) r = 2 for 6 and 4 channels."""
    common = {"c_in": 6, "c_out": 4, "kept_modes": 9, "weight_norm": 1.0}
    default = fno.fourier_layer_bound(64, 1, 1.0, "fp16", **common).bound
    assert (
        default == fno.fourier_layer_bound(64, 1, 1.0, "fp16", weight_abs_norm=2.0, **common).bound
    )


@pytest.mark.parametrize(
    ("n", "modes", "r", "r_abs"), [(1, 1, 60000.0, 66000.0), (16, 9, 30000.0, 30000.0)]
)
def test_layer_bound_is_infinite_where_the_layer_can_overflow(n, modes, r, r_abs) -> None:
    """Oracle: hand arithmetic against fp16's max 65504: the contraction's absolute sum
    (1 + u) 66000 and the output's sqrt(9) 30000 = 90000 both pass it."""
    bound = fno.fourier_layer_bound(
        n, 1, 1.0, "fp16", c_in=1, c_out=1, kept_modes=modes, weight_norm=r, weight_abs_norm=r_abs
    )
    assert bound.bound == math.inf


def test_discretisation_bound_at_exactly_2m_is_vacuous() -> None:
    """Oracle: hand arithmetic, c_1 L / n = 8 / 4 = 2 = 2 M: no better than the trivial
    bound |c| + |c_n| <= 2 M, so vacuous (>=)."""
    r = fno.discretisation_bound(1, 0, 8.0, 1.0)
    assert r.bound == 2.0 and r.vacuous


def test_layer_bound_vacuous_at_r_sqrt_c_in_m() -> None:
    """Oracle: the docstring's threshold, r sqrt(c_in) M = 1 * 2 * 1 for c_in = 4."""
    common = {"c_in": 4, "c_out": 4, "kept_modes": 1, "weight_norm": 1.0}
    r = fno.fourier_layer_bound(1, 1, 1.0, "fp16", input_error=1.5, **common)
    assert r.bound >= 2.0 and r.vacuous


def test_crossover_stays_below_where_the_fft_overflows() -> None:
    """Oracle: the public bounds at the reported resolution and at half of it (L = 1e4 puts
    the crossing where the 2-D FFT's headroom matters; the bracket test used L = 2)."""
    p = fno.crossover_resolution(1e4, 1.0, "fp16", d=2).power_of_two
    assert (
        fno.fft_precision_bound(p, 2, 1.0, "fp16").bound
        >= fno.discretisation_bound(p, (0, 0), 1e4, 1.0, 2).bound
    )
    if p > 1:
        half = p // 2
        assert (
            fno.fft_precision_bound(half, 2, 1.0, "fp16").bound
            < fno.discretisation_bound(half, (0, 0), 1e4, 1.0, 2).bound
        )
