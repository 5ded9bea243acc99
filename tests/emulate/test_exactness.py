"""Emulated arithmetic is correctly rounded: each result against an oracle that never uses the
emulator.

Oracles: exact rational arithmetic (``fractions.Fraction``) rounded by the reference
``round_scalar``; mpmath at 200 bits for sqrt and the transcendental functions, rounded the same
way; numpy's float64 -> float16 cast (correct, unlike torch's, which goes through float32) applied
to a float64 computation, as an independent second oracle for fp16.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import torch

import mperror
from mperror import emulate, formats
from mperror.reference import round_scalar

# p <= 25 formats of every kind: IEEE-like, no infinities (saturating), custom precision.
FORMATS = {
    "fp16": formats.FP16,
    "bf16": formats.BF16,
    "e5m2": formats.E5M2,
    "e4m3fn": formats.E4M3FN,
    "p20": formats.FloatFormat(precision=20, emax=40, name="p20"),
    "p25": formats.FloatFormat(precision=25, emax=100, name="p25"),
}


def format_values(fmt: formats.FloatFormat, n: int, seed: int) -> torch.Tensor:
    """n values of ``fmt`` (float64 storage) spread over its whole range, both signs, plus the
    edge values: zeros, the smallest subnormal and normal, max, and 1."""
    gen = torch.Generator().manual_seed(seed)
    lo = math.log2(fmt.smallest_subnormal)
    hi = math.log2(fmt.max)
    exponents = torch.rand(n, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    signs = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    x = mperror.round(signs * torch.exp2(exponents), fmt, "toward_zero")
    edges = torch.tensor(
        [0.0, -0.0, fmt.smallest_subnormal, fmt.smallest_normal, fmt.max, 1.0, -1.0],
        dtype=torch.float64,
    )
    return torch.cat([edges, x])


def mp_fraction(value: mpmath.mpf) -> Fraction:
    """An mpmath binary float as the exact Fraction it is."""
    mantissa, exponent = value.man_exp  # |value| = mantissa * 2**exponent
    return int(mpmath.sign(value)) * Fraction(int(mantissa)) * Fraction(2) ** int(exponent)


def exact_rounded(values, fmt) -> torch.Tensor:
    return torch.tensor([round_scalar(v, fmt) for v in values], dtype=torch.float64)


def same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Equal values with equal signs, or both NaN."""
    a, b = a.double(), b.double()
    return ((a == b) & (torch.signbit(a) == torch.signbit(b))) | (a.isnan() & b.isnan())


def fraction_op(op: str, x: float, y: float, mode: str = "nearest_even"):
    """The exact result of ``x op y`` as a Fraction, or a float for IEEE special cases (zero
    signs as IEEE 754 gives them in ``mode``)."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return {"add": x + y, "sub": x - y, "mul": x * y}.get(op, math.nan)
    fx, fy = Fraction(x), Fraction(y)
    if op == "add":
        exact = fx + fy
    elif op == "sub":
        exact = fx - fy
    elif op == "mul":
        exact = fx * fy
    else:
        if fy == 0:
            return x / y if x != 0 else math.nan  # never reached: y != 0 below
        exact = fx / fy
    if exact == 0:
        # IEEE signs of exact zeros in round-to-nearest: x*y and x/y take the product of signs;
        # x + (-x) is +0, and -0 + -0 is -0.
        if op in ("mul", "div"):
            return math.copysign(0.0, x) * math.copysign(1.0, y)
        second = y if op == "add" else -y
        if mode == "toward_negative":  # x + (-x) is -0; +0 only when both are +0
            both_positive = math.copysign(1.0, x) > 0 and math.copysign(1.0, second) > 0
            return 0.0 if both_positive else -0.0
        both_negative = math.copysign(1.0, x) < 0 and math.copysign(1.0, second) < 0
        return -0.0 if both_negative else 0.0
    return exact


DETERMINISTIC = ["nearest_even", "nearest_away", "toward_zero", "toward_positive"]
DETERMINISTIC += ["toward_negative", "odd"]


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("storage", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_basic_ops_are_correctly_rounded(name: str, op: str, storage: torch.dtype, mode) -> None:
    """Oracle: Fraction arithmetic on the inputs, rounded once by round_scalar in ``mode``.
    Inputs are values of the format (as the emulator's own results are), in float32 or float64
    storage, spread over the whole range: sums of bf16 values far apart need more than float64's
    53 bits (1 + 2**-100 is 1.0 in float64, yet rounds up to 1 + 2**-7 toward positive)."""
    fmt = FORMATS[name]
    if storage == torch.float32 and not mperror.emulate.mode._holds_dtype(storage, fmt):
        pytest.skip(f"float32 cannot store {name}")
    x = format_values(fmt, 300, seed=1)
    y = format_values(fmt, 300, seed=2).flip(0)
    if op == "div":
        y = torch.where(y == 0, torch.ones_like(y), y)
    xs, ys = x.to(storage), y.to(storage)
    with emulate(mperror.emulate.pure(fmt, mode=mode)):
        got = {"add": xs + ys, "sub": xs - ys, "mul": xs * ys, "div": xs / ys}[op]
    assert got.dtype == storage
    expected = torch.tensor(
        [
            e if isinstance(e, float) else round_scalar(e, fmt, mode)
            for e in (
                fraction_op(op, a, b, mode) for a, b in zip(x.tolist(), y.tolist(), strict=True)
            )
        ],
        dtype=torch.float64,
    )
    ok = same(got, expected)
    assert ok.all(), (x[~ok][:3], y[~ok][:3], got[~ok][:3], expected[~ok][:3])


@pytest.mark.parametrize("mode", ["toward_positive", "toward_negative", "toward_zero", "odd"])
def test_every_form_of_sum_is_correctly_rounded(mode: str) -> None:
    """In-place, ``alpha``, reversed and Python-scalar sums too. Oracle: Fraction arithmetic,
    rounded once by round_scalar (values compared; zero signs are the basic test's)."""
    fmt = formats.BF16
    x = format_values(fmt, 200, seed=8).float()
    y = format_values(fmt, 200, seed=9).flip(0).float()
    with emulate(mperror.emulate.pure(fmt, mode=mode)):
        got = {
            "add_": x.clone().add_(y),
            "sub_": x.clone().sub_(y, alpha=2),
            "alpha": torch.add(x, y, alpha=-0.25),
            "rsub": torch.rsub(x, y),
            "scalar": x + 2.0**-100,
            "rscalar": 3.0 - x,
        }
    fx = [Fraction(v) for v in x.tolist()]
    fy = [Fraction(v) for v in y.tolist()]
    exact = {
        "add_": [a + b for a, b in zip(fx, fy, strict=True)],
        "sub_": [a - 2 * b for a, b in zip(fx, fy, strict=True)],
        "alpha": [a - b / 4 for a, b in zip(fx, fy, strict=True)],
        "rsub": [b - a for a, b in zip(fx, fy, strict=True)],
        "scalar": [a + Fraction(1, 2**100) for a in fx],
        "rscalar": [3 - a for a in fx],
    }
    for key, values in exact.items():
        expected = torch.tensor([round_scalar(v, fmt, mode) for v in values], dtype=torch.float64)
        assert torch.equal(got[key].double(), expected), key


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_sqrt_is_correctly_rounded(name: str) -> None:
    """Oracle: mpmath sqrt at 200 bits, rounded by round_scalar (an exact square root is never
    a midpoint of the format, so 200 bits decide every rounding)."""
    fmt = FORMATS[name]
    x = format_values(fmt, 400, seed=3).abs()
    with emulate(fmt):
        got = torch.sqrt(x)
    with mpmath.workprec(200):
        expected = exact_rounded(
            [mp_fraction(mpmath.sqrt(mpmath.mpf(v))) if v else 0.0 for v in x.tolist()], fmt
        )
    assert same(got, expected).all()


@pytest.mark.parametrize("name", ["fp16", "p20"])
def test_complex_abs_and_sgn_are_rounded_once(name: str) -> None:
    """|z| and z/|z| of complex z are arithmetic (they were run natively in complex64 as if
    selections, then rounded: 652 of 20,000 p20 results wrong). Oracle: mpmath at 200 bits,
    rounded by round_scalar; torch's complex128 abs is within a float64 ulp, so at most one
    value in a thousand may sit close enough to a midpoint to differ (the transcendental rule),
    and by one spacing at most."""
    fmt = FORMATS[name]
    gen = torch.Generator().manual_seed(11)
    parts = mperror.round(torch.randn(2, 2000, generator=gen, dtype=torch.float64), fmt)
    z = torch.complex(parts[0], parts[1]).to(torch.complex64)
    with emulate(fmt):
        magnitude, unit = torch.abs(z), torch.sgn(z)
    with mpmath.workprec(200):
        exact = [
            mpmath.hypot(a, b) for a, b in zip(parts[0].tolist(), parts[1].tolist(), strict=True)
        ]
        expected = exact_rounded([mp_fraction(m) for m in exact], fmt)
        real = exact_rounded(
            [mp_fraction(mpmath.mpf(a) / m) for a, m in zip(parts[0].tolist(), exact, strict=True)],
            fmt,
        )
    for got, want in ((magnitude, expected), (unit.real, real)):
        wrong = ~same(got, want)
        assert int(wrong.sum()) <= len(want) // 1000
        assert ((got.double() - want).abs() <= fmt.spacing(want)).all()


def test_fp16_against_numpy_everywhere() -> None:
    """Oracle: numpy's float64 -> float16 cast of the float64 result (correctly rounded; for fp16
    inputs float64 holds + - * exactly and / sqrt to 53 >= 2 * 11 + 2 bits, so one cast is the
    correctly rounded result). Every positive fp16 value against a shuffled copy."""
    codes = torch.arange(0, 0x7C00, dtype=torch.int16).view(torch.float16).float()
    x = torch.cat([codes, -codes])
    y = x[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(4))]
    y = torch.where(y == 0, torch.ones_like(y), y)
    with emulate("fp16"):
        got = [x + y, x - y, x * y, x / y, torch.sqrt(x.abs())]
    xd, yd = x.double().numpy(), y.double().numpy()
    with np.errstate(over="ignore"):
        expected = [xd + yd, xd - yd, xd * yd, xd / yd, np.sqrt(np.abs(xd))]
        for g, e in zip(got, expected, strict=True):
            e16 = torch.from_numpy(e.astype(np.float16).astype(np.float32))
            assert same(g, e16).all()


def test_fused_ops_round_once() -> None:
    """Oracle: Fraction arithmetic. addcmul(s, a, b, value=2**-3) = s + 2**-3 a b and
    lerp(s, e, 1/2) = s + (e - s)/2 with fp16 inputs are exact in float64 (22-bit products,
    power-of-two scalars, sums of fp16 values within float64's range of exactness), so the
    emulated result is the exact value rounded once, not a rounding per step."""
    fmt = formats.FP16
    s = format_values(fmt, 200, seed=5).clamp(-1000, 1000)
    a = format_values(fmt, 200, seed=6).clamp(-30, 30)
    b = format_values(fmt, 200, seed=7).clamp(-30, 30)
    s, a, b = s.float(), a.float(), b.float()
    with emulate(fmt):
        fused = torch.addcmul(s, a, b, value=2.0**-3)
        mid = torch.lerp(s, a, 0.5)
    exact_fused = [
        Fraction(si) + Fraction(1, 8) * Fraction(ai) * Fraction(bi)
        for si, ai, bi in zip(s.tolist(), a.tolist(), b.tolist(), strict=True)
    ]
    exact_mid = [
        Fraction(si) + (Fraction(ai) - Fraction(si)) / 2
        for si, ai in zip(s.tolist(), a.tolist(), strict=True)
    ]
    # Values only: a Fraction has no signed zero (lerp(-0, -0, w) is -0).
    assert torch.equal(fused.double(), exact_rounded(exact_fused, fmt))
    assert torch.equal(mid.double(), exact_rounded(exact_mid, fmt))


TRANSCENDENTAL = {
    "exp": (torch.exp, mpmath.exp, (-17.0, 11.0)),
    "tanh": (torch.tanh, mpmath.tanh, (-8.0, 8.0)),
    "sin": (torch.sin, mpmath.sin, (-50.0, 50.0)),
    "log": (torch.log, mpmath.log, (2.0**-20, 60000.0)),
    "sigmoid": (torch.sigmoid, lambda v: 1 / (1 + mpmath.exp(-v)), (-20.0, 20.0)),
}


@pytest.mark.parametrize("fn", sorted(TRANSCENDENTAL))
@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_transcendental_functions_agree_with_mpmath(fn: str, name: str) -> None:
    """Oracle: mpmath at 200 bits rounded by round_scalar, on 2,000 format values.

    Computing in float64 (error about one float64 ulp, 2**-52 relative) and rounding once gives
    the correctly rounded value unless the exact value lies within that distance of a midpoint
    of the format: for values not specially placed, probability about 2**-52 / 2**-p per value
    (2**-41 for fp16), so the expected number of disagreements here is 0. The assertion allows
    one in a thousand, and no disagreement may exceed one spacing of the format."""
    torch_fn, mp_fn, (lo, hi) = TRANSCENDENTAL[fn]
    fmt = formats.get(name)
    gen = torch.Generator().manual_seed(8)
    x = mperror.round(torch.rand(2000, generator=gen, dtype=torch.float64) * (hi - lo) + lo, fmt)
    with emulate(fmt):
        got = torch_fn(x.float()).double()
    with mpmath.workprec(200):
        expected = exact_rounded([mp_fraction(mp_fn(mpmath.mpf(v))) for v in x.tolist()], fmt)
    wrong = ~same(got, expected)
    assert int(wrong.sum()) <= len(x) // 1000
    spacing = fmt.spacing(expected)
    assert ((got - expected).abs() <= spacing).all()


def test_compute_fp32_is_exact_for_basic_ops_but_not_sqrt() -> None:
    """compute="fp32" (the documented trade): + - * / of fp16 values in float32 are correctly
    rounded (24 >= 2 * 11 + 2 bits: innocuous double rounding), checked against numpy as above;
    sqrt is not, because torch's CPU float32 sqrt is not correctly rounded: the REFERENCES
    example sqrt(0.25 - 2**-13) comes out 0.5 instead of the correctly rounded 0.49976 (oracle:
    mpmath, and the default fp64 working precision)."""
    codes = torch.arange(0x0400, 0x7C00, 7, dtype=torch.int16).view(torch.float16).float()
    y = codes.flip(0)
    fast = mperror.emulate.pure("fp16", compute="fp32")
    with emulate(fast):
        got = [codes + y, codes - y, codes * y, codes / y]
    cd, yd = codes.double().numpy(), y.double().numpy()
    with np.errstate(over="ignore"):
        for g, e in zip(got, [cd + yd, cd - yd, cd * yd, cd / yd], strict=True):
            assert same(g, torch.from_numpy(e.astype(np.float16).astype(np.float32))).all()
    x = torch.tensor([0.25 - 2.0**-13])
    with emulate(fast):
        wrong = torch.sqrt(x)
    with emulate("fp16"):
        right = torch.sqrt(x)
    with mpmath.workprec(200):
        oracle = round_scalar(mp_fraction(mpmath.sqrt(mpmath.mpf(0.25 - 2.0**-13))), "fp16")
    assert right.item() == oracle == 2047 * 2.0**-12
    assert wrong.item() == 0.5
