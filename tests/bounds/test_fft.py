"""Tests for mperror.bounds.fft (T-fft-higham): constants, the bound against an emulated fp16 FFT,
and the overflow condition against float16 arithmetic."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest

from mperror.bounds import fft as fftb
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
theory = _load("mperror_theory_fft_bound", Path(__file__).parents[2] / "theory" / "fft_bound.py")

FORMATS = ["fp32", "fp16", "bf16", "e5m2", "e4m3fn"]


# Constants.


@pytest.mark.parametrize("name", FORMATS)
def test_eta_matches_mpmath(name: str) -> None:
    """Oracle: theory/fft_bound.py's mpmath eta, from REFERENCES' format table, not mperror."""
    expected = theory.eta_value(name)
    got = fftb.fft_eta(name)
    if expected == mpmath.inf:
        assert got == math.inf
    else:
        assert got == pytest.approx(float(expected), rel=1e-14)


def test_eta_without_twiddle_error_is_sqrt2_gamma4() -> None:
    """Oracle: the formula eta = mu + gamma_4 (sqrt 2 + mu) at mu = 0, in exact-ish mpmath."""
    u = mpmath.mpf(2) ** -11
    expected = 4 * u / (1 - 4 * u) * mpmath.sqrt(2)
    assert fftb.fft_eta("fp16", twiddle_error=0.0) == pytest.approx(float(expected), rel=1e-15)


def test_leading_constant_is_one_plus_four_sqrt2() -> None:
    """Oracle: sympy limit of eta/u with mu = u (theory/fft_bound.py)."""
    assert float(theory.leading_constant()) == fftb.FFT_ETA_LEADING_CONSTANT


@pytest.mark.parametrize("name", ["fp16", "bf16", "e5m2", "e4m3fn"])
@pytest.mark.parametrize("log2_n", [1, 2, 7, 11])
def test_default_twiddle_error_bounds_rounded_twiddles(name: str, log2_n: int) -> None:
    """Oracle: every twiddle exp(-2 pi i k/N) in 30-digit mpmath, rounded to the format by
    mperror.round from float64 and checked, with mpmath, to be a nearest format value (its two
    neighbours, found by directed rounding of the float64 next values, are no closer)."""
    import torch

    import mperror

    def rounded(values: np.ndarray, mode: str = "nearest_even") -> np.ndarray:
        return mperror.round(torch.from_numpy(values), name, mode).numpy()

    n = 2**log2_n
    with mpmath.workdps(30):
        exact = [mpmath.expjpi(mpmath.mpf(-2 * k) / n) for k in range(n)]
        parts = [p for z in exact for p in (z.real, z.imag)]
        near = rounded(np.array([float(p) for p in parts]))
        if name == "fp16":  # a second, independent rounding: numpy's cast
            assert np.array_equal(near, emu.round_fp16(np.array([float(p) for p in parts])))
        up = rounded(np.nextafter(near, np.inf), "toward_positive")
        down = rounded(np.nextafter(near, -np.inf), "toward_negative")
        for part, r, hi, lo in zip(parts, near, up, down, strict=True):
            assert abs(part - r) <= min(abs(part - hi), abs(part - lo))
        errors = [abs(mpmath.mpc(near[2 * k], near[2 * k + 1]) - exact[k]) for k in range(n)]
    worst = max(errors)
    assert worst <= fftb.default_twiddle_error(name)
    if n >= 2**11:  # not idle: among 2048 twiddles some error comes within a factor 2 of u
        assert worst > 0.5 * as_format(name).unit_roundoff


# The bound's shape.


def test_bound_formula_and_monotonicity() -> None:
    """Oracle: t eta / (1 - t eta) typed from the theorem; the bound grows with N."""
    eta = fftb.fft_eta("fp16")
    previous = -1.0
    for t in range(0, 25):
        r = fftb.fft_error_bound(2**t, "fp16")
        assert r.theorem == "T-fft-higham"
        assert r.bound == (0.0 if t == 0 else t * eta / (1 - t * eta))
        assert r.bound > previous
        previous = r.bound


@pytest.mark.parametrize(
    ("name", "n", "vacuous"),
    [
        ("fp16", 2**20, False),
        ("bf16", 2**18, False),
        ("bf16", 2**19, True),
        ("e4m3fn", 2, True),
        ("e5m2", 2, True),
        ("e4m3fn", 1, False),
    ],
)
def test_vacuous(name: str, n: int, vacuous: bool) -> None:
    """Oracle: the table of theory/fft-bound.md (rho < 1 iff t eta < 1/2)."""
    assert fftb.fft_error_bound(n, name).vacuous is vacuous


def test_infinite_when_t_eta_reaches_one() -> None:
    """Oracle: e5m2 has gamma_4 = 4u/(1 - 4u) = 1, so eta > 1 and t eta >= 1 at t = 1."""
    r = fftb.fft_error_bound(2, "e5m2")
    assert r.bound == math.inf and r.vacuous


def test_per_mode_bound_is_rho_times_max() -> None:
    """Oracle: rho M by hand for N = 4 with exact twiddles (mu = 0)."""
    u = 2.0**-11
    eta = 4 * u / (1 - 4 * u) * math.sqrt(2)
    r = fftb.fft_forward_mode_bound(4, 3.0, "fp16", twiddle_error=0.0)
    assert r.bound == 2 * eta / (1 - 2 * eta) * 3.0
    assert fftb.fft_forward_mode_bound(4, 0.0, "fp16").bound == 0.0


def test_numpy_scalars_are_numbers() -> None:
    """Oracle: the same call with Python scalars (numpy's integers and floats had been refused
    with messages that contradicted the value given)."""
    assert fftb.fft_error_bound(np.int64(8), "fp16") == fftb.fft_error_bound(8, "fp16")
    got = fftb.fft_forward_mode_bound(np.int32(8), np.float32(1.0), "fp16").bound
    assert got == fftb.fft_forward_mode_bound(8, 1.0, "fp16").bound
    assert fftb.fft_overflows(np.int64(4096), np.float64(16.0), "fp16")
    with pytest.raises(ValueError):
        fftb.fft_error_bound(np.bool_(True), "fp16")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: fftb.fft_error_bound(3, "fp16"), ValueError),
        (lambda: fftb.fft_error_bound(0, "fp16"), ValueError),
        (lambda: fftb.fft_error_bound(True, "fp16"), ValueError),
        (lambda: fftb.fft_error_bound(4, "fp17"), ValueError),
        (lambda: fftb.fft_error_bound(4, 16), TypeError),
        (lambda: fftb.fft_error_bound(4, "fp16", twiddle_error=-1.0), ValueError),
        (lambda: fftb.fft_forward_mode_bound(4, math.nan, "fp16"), ValueError),
        (lambda: fftb.fft_forward_mode_bound(4, "1", "fp16"), TypeError),
        (lambda: fftb.fft_overflows(0, 1.0, "fp16"), ValueError),
        (lambda: fftb.fft_overflows(4, -1.0, "fp16"), ValueError),
    ],
)
def test_bad_arguments(call, error) -> None:
    with pytest.raises(error):
        call()


# The bound against an emulated FFT (fp16 and bf16).


_EMULATED_CASES = [
    ("fp16", (16,)),
    ("fp16", (128,)),
    ("fp16", (1024,)),
    ("fp16", (4096,)),
    ("fp16", (32, 32)),
    ("fp16", (64, 64)),
    ("fp16", (8, 8, 8)),
    ("bf16", (16,)),
    ("bf16", (512,)),
    ("bf16", (32, 32)),
]


def _random_complex(shape, seed, rnd) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rnd(rng.uniform(-1, 1, shape)), rnd(rng.uniform(-1, 1, shape))


@pytest.mark.parametrize(("name", "shape"), _EMULATED_CASES)
def test_bound_holds_for_emulated_fft(name: str, shape: tuple[int, ...]) -> None:
    """Oracle: float64 numpy FFT of the same format-valued input (error ~1e-16 relative, far
    below the bound); the computed FFT rounds every operation to the format
    (tests/bounds/emulated_fft.py; numpy's cast for fp16, mperror.round for bf16)."""
    rnd = emu.round_fp16 if name == "fp16" else emu.rounder(name)
    re, im = _random_complex(shape, sum(shape), rnd)
    axes = tuple(range(len(shape)))
    got_re, got_im = emu.fft(re, im, rnd, axes=axes)
    got = got_re + 1j * got_im
    x = re + 1j * im
    exact = np.fft.fftn(x)
    n_total = x.size

    relative = np.linalg.norm(got - exact) / np.linalg.norm(exact)
    normwise = fftb.fft_error_bound(n_total, name).check(relative)
    assert normwise.holds and not normwise.vacuous, normwise

    # componentwise form: |y^_i - y_i| <= rho ||x||_1
    rho = normwise.bound
    assert np.abs(got - exact).max() <= rho * np.abs(x).sum()

    # per-mode form of the forward-normalised transform (division by N is exact)
    per_mode = np.abs(got / n_total - exact / n_total).max()
    assert fftb.fft_forward_mode_bound(n_total, np.abs(x).max(), name).check(per_mode).holds


def test_inverse_transform_obeys_the_same_bound() -> None:
    """Oracle: numpy's float64 inverse FFT (unnormalised: ifft(norm="forward"))."""
    re, im = _random_complex((2048,), 7, emu.round_fp16)
    got_re, got_im = emu.fft(re, im, emu.round_fp16, inverse=True)
    exact = np.fft.ifft(re + 1j * im, norm="forward")
    relative = np.linalg.norm(got_re + 1j * got_im - exact) / np.linalg.norm(exact)
    assert fftb.fft_error_bound(2048, "fp16").check(relative).holds


# T-fno-prec (b): rounded samples and fp16 FFT arithmetic, per mode.


@pytest.mark.parametrize(("n", "d"), [(16, 1), (256, 1), (1024, 1), (16, 2), (64, 2)])
def test_fft_precision_bound_holds_for_emulated_fp16(n: int, d: int) -> None:
    """mperror.bounds.fno.fft_precision_bound: the computed forward-normalised fp16 FFT of the
    fp16-rounded samples against the float64 DFT of the exact samples (the oracle)."""
    from mperror.bounds.fno import fft_precision_bound

    rng = np.random.default_rng(n + d)
    grid = np.meshgrid(*[np.arange(n) / n] * d, indexing="ij")
    v = sum(np.sin(2 * np.pi * (k + 1) * g + rng.uniform(0, 6)) for k, g in enumerate(grid)) / d
    v = v + 0.1 * rng.standard_normal(v.shape)
    m = float(np.abs(v).max())
    rounded = emu.round_fp16(v)
    got_re, got_im = emu.fft(rounded, np.zeros_like(rounded), emu.round_fp16, axes=tuple(range(d)))
    got = (got_re + 1j * got_im) / v.size
    exact = np.fft.fftn(v, norm="forward")
    observed = np.abs(got - exact).max()
    result = fft_precision_bound(n, d, m, "fp16").check(observed)
    assert result.holds, result


# Overflow.


_FP16_VALUES = [1.0, 1 - 2.0**-11, 0.5, 1.5, 0.375, 3.0, 2.0**-10, 65504.0 / 2**14]


@pytest.mark.parametrize("log2_n", range(10, 18))
@pytest.mark.parametrize("value", _FP16_VALUES)
def test_fft_overflows_agrees_with_float16_dc_sum(log2_n: int, value: float) -> None:
    """Oracle: the DC output of a radix-2 FFT is the pairwise sum (twiddle 1 on that path),
    computed here in float16 by numpy; it overflows to inf exactly when N v > 65504, since every
    partial sum 2^k v of an fp16 value v is exact until it leaves the range."""
    assert float(np.float16(value)) == value
    n = 2**log2_n
    dc = emu.cascade_sum(np.full(n, value))
    assert bool(np.isinf(dc)) is fftb.fft_overflows(n, value, "fp16")


def test_tanh_bounded_input_128_squared_safe_256_squared_not() -> None:
    """Oracle: numpy float16 tanh(5) is exactly 1.0 (tanh 5 > 1 - 2^-12, the rounding tie to the
    even 1.0), and the float16 DC sums of 128^2 and 256^2 such values."""
    one = np.tanh(np.float16(5.0))
    assert one == np.float16(1.0)
    m = float(one)
    assert not fftb.fft_overflows(128**2, m, "fp16")
    assert not np.isinf(emu.cascade_sum(np.full(128**2, one)))
    assert fftb.fft_overflows(256**2, m, "fp16")
    assert np.isinf(emu.cascade_sum(np.full(256**2, one)))
    # the largest fp16 value below 1 just fits: 65536 (1 - 2^-11) = 65504
    below_one = 1 - 2.0**-11
    assert not fftb.fft_overflows(256**2, below_one, "fp16")
    assert emu.cascade_sum(np.full(256**2, below_one)) == np.float16(65504.0)


@pytest.mark.parametrize("name", ["fp16", "bf16", "e5m2", "e4m3fn"])
def test_fft_overflows_threshold(name: str) -> None:
    """Oracle: N max_abs against fmt.max from REFERENCES' format table."""
    fmt = as_format(name)
    n = 1024
    assert not fftb.fft_overflows(n, fmt.max / n, name)
    assert fftb.fft_overflows(n, fmt.max / n * (1 + 2.0**-20), name)


@pytest.mark.parametrize("name", ["fp16", "bf16"])
@pytest.mark.parametrize("n", [64, 1024])
def test_bound_holds_for_mperror_ops_fft(name: str, n: int) -> None:
    """T-fft-higham against the package's staged FFT (mperror.ops.fft: every butterfly stage
    rounded to ``fmt``, twiddles rounded, unnormalised). Oracle: float64 FFT of the same
    format values."""
    import torch

    import mperror
    from mperror import ops

    rng = np.random.default_rng(n)
    x = torch.tensor(rng.uniform(-1, 1, n) + 1j * rng.uniform(-1, 1, n), dtype=torch.complex128)
    x = mperror.round(x, name)  # the theorem is about the arithmetic on format values
    got = ops.fft(x, name).to(torch.complex128)
    exact = torch.fft.fft(x)
    relative = float(torch.linalg.vector_norm(got - exact) / torch.linalg.vector_norm(exact))
    assert fftb.fft_error_bound(n, name).check(relative).holds


def test_overflow_condition_is_exact_for_any_size() -> None:
    """Oracle: exact integer arithmetic. N = 1024**110 points times 1.0 exceeds fp32's max (the
    float64 product had raised OverflowError converting N); 2**1100 points of 2**-1100 make 1."""
    assert fftb.fft_overflows(1024**110, 1.0, "fp32")
    assert not fftb.fft_overflows(2**1100, 2.0**-1100, "fp16")


# From a mutation review: edges no test had pinned.


def test_forward_mode_bound_of_a_zero_input_is_zero() -> None:
    """Oracle: the transform of zeros is computed exactly, whatever the factor (infinite for
    e5m2 at N = 4: a NaN had been possible from inf * 0)."""
    assert fftb.fft_forward_mode_bound(4, 0.0, "e5m2").bound == 0.0


def test_forward_mode_bound_is_vacuous_where_its_factor_reaches_one() -> None:
    """Oracle: the relative factor itself: vacuous exactly when it is >= 1 (bf16 at 2**20)."""
    r = fftb.fft_forward_mode_bound(2**19, 1.0, "bf16")
    assert (fftb.fft_relative_factor(2**19, "bf16") >= 1) == r.vacuous
    assert fftb.fft_forward_mode_bound(2**20, 1.0, "bf16").vacuous
