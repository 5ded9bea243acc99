"""Second opinion: torch's native float16 / bfloat16 CPU kernels against the emulator.

torch's CPU half and bfloat16 kernels widen their inputs to float32, compute in float32 and
round the result to the format once. Where that is correctly rounded they must agree with the
emulator bit for bit; where it is not, every disagreement is explained below and checked against
mpmath (200 bits, rounded by the reference ``round_scalar``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest
import torch

import mperror
from mperror import emulate, formats
from mperror.reference import round_scalar

NATIVE = {"fp16": torch.float16, "bf16": torch.bfloat16}


def all_values(name: str) -> torch.Tensor:
    """Every finite value of the format, both signs, as float32."""
    fmt = formats.get(name)
    codes = torch.arange(0, 2**15, dtype=torch.int32).to(torch.int16).view(NATIVE[name])
    x = codes.float()
    x = x[x.isfinite() & (x.abs() <= fmt.max)]
    return torch.cat([x, -x])


def same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.double(), b.double()
    return ((a == b) & (torch.signbit(a) == torch.signbit(b))) | (a.isnan() & b.isnan())


def mp_fraction(value: mpmath.mpf) -> Fraction:
    mantissa, exponent = value.man_exp  # |value| = mantissa * 2**exponent
    return int(mpmath.sign(value)) * Fraction(int(mantissa)) * Fraction(2) ** int(exponent)


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_basic_ops_agree_with_native_kernels_everywhere(name: str) -> None:
    """Every value of the format against a shuffled copy. The native kernels compute + - * / in
    float32 and round once; for inputs of p <= 11 bits float32's 24 >= 2p + 2 bits make that
    second rounding innocuous (Figueroa 1995), so native and emulated results must be equal."""
    x = all_values(name)
    y = x[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(1))]
    y = torch.where(y == 0, torch.ones_like(y), y)
    dt = NATIVE[name]
    with emulate(name):
        got = [x + y, x - y, x * y, x / y]
    xn, yn = x.to(dt), y.to(dt)
    for g, n in zip(got, [xn + yn, xn - yn, xn * yn, xn / yn], strict=True):
        assert same(g, n.float()).all()


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_sqrt_agrees_with_native_and_float32_sqrt_does_not(name: str) -> None:
    """torch's native half/bfloat16 sqrt agrees with the emulator on every value. Rounding
    torch's float32 sqrt (what compute="fp32" would do) does not always: torch's CPU float32
    sqrt is not correctly rounded (REFERENCES section 3), and the emulator, computing in float64,
    is right wherever they differ (oracle: mpmath)."""
    x = all_values(name).abs().unique()
    with emulate(name):
        got = torch.sqrt(x)
    assert same(got, torch.sqrt(x.to(NATIVE[name])).float()).all()
    via_float32 = mperror.round(torch.sqrt(x), name)
    differ = ~same(got, via_float32)
    with mpmath.workprec(200):
        for v, g in zip(x[differ].tolist(), got[differ].tolist(), strict=True):
            assert g == round_scalar(mp_fraction(mpmath.sqrt(mpmath.mpf(v))), name)


FUNCTIONS = {
    "exp": (torch.exp, mpmath.exp),
    "tanh": (torch.tanh, mpmath.tanh),
    "sin": (torch.sin, mpmath.sin),
    "log1p": (torch.log1p, mpmath.log1p),
    "sigmoid": (torch.sigmoid, lambda v: 1 / (1 + mpmath.exp(-v))),
}


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_transcendental_disagreements_with_native_are_native_errors(fn: str) -> None:
    """fp16 values in [-10, 10]. torch's native half kernels round a float32 approximation
    (error up to a few float32 ulps), so they can round the wrong way when the exact value is
    within a few 2**-24 of an fp16 midpoint: a few values in ten thousand. Wherever native and
    emulated results differ, the emulated one is the correctly rounded value (oracle: mpmath)
    and the two are one spacing apart."""
    torch_fn, mp_fn = FUNCTIONS[fn]
    x = all_values("fp16")
    x = x[(x.abs() <= 10) & ((x > -1) if fn == "log1p" else True)]
    with emulate("fp16"):
        got = torch_fn(x)
    native = torch_fn(x.half()).float()
    differ = ~same(got, native)
    assert int(differ.sum()) <= x.numel() // 1000
    fmt = formats.FP16
    with mpmath.workprec(200):
        for v, g, n in zip(
            x[differ].tolist(), got[differ].tolist(), native[differ].tolist(), strict=True
        ):
            assert g == round_scalar(mp_fraction(mp_fn(mpmath.mpf(v))), fmt)
            spacing = fmt.spacing(torch.tensor([g], dtype=torch.float64)).item()
            assert abs(g - n) <= spacing


def gamma(n: int, u: float) -> float:
    """gamma_n = n u / (1 - n u) (Higham, Accuracy and Stability of Numerical Algorithms, 3.1)."""
    assert n * u < 1
    return n * u / (1 - n * u)


@pytest.mark.parametrize("name", sorted(NATIVE))
@pytest.mark.parametrize("k", [16, 300])
def test_matmul_agrees_with_native_within_the_accumulation_bound(name: str, k: int) -> None:
    """Native CPU half/bfloat16 matmul accumulates the exact products of format values in
    float32 and rounds to the format; the emulator accumulates in float64 and rounds once.

    Theorem (Higham, Thm 3.5): a dot product of length k accumulated in precision u_acc has
    |fl(a.b) - a.b| <= gamma_k(u_acc) |a|.|b|. So with C = AB, E the native accumulation error,
    |E| <= gamma_k(2**-24) |A||B|, and one final rounding of unit roundoff u on each side:
        |native - emulated| <= u |C + E| + |E| + u |C| + (float64 error)
                            <= (2u + (1 + u) gamma_k(2**-24) + gamma_k(2**-53)) |A||B|,
    using |C| <= |A||B|. Also checked: both lie within that bound of the exact product."""
    fmt = formats.get(name)
    gen = torch.Generator().manual_seed(k)
    a = mperror.round(torch.randn(40, k, generator=gen), fmt)
    b = mperror.round(torch.randn(k, 24, generator=gen), fmt)
    with emulate(fmt):
        emulated = a @ b
    native = (a.to(NATIVE[name]) @ b.to(NATIVE[name])).float()
    u = fmt.unit_roundoff
    scale = a.abs().double() @ b.abs().double()
    bound = (2 * u + (1 + u) * gamma(k, 2.0**-24) + gamma(k, 2.0**-53)) * scale
    assert ((native.double() - emulated.double()).abs() <= bound).all()
    exact = a.double() @ b.double()
    one_side = (u + (1 + u) * gamma(k, 2.0**-24)) * scale
    assert ((native.double() - exact).abs() <= one_side).all()
    assert ((emulated.double() - exact).abs() <= u * exact.abs() + gamma(k, 2.0**-53) * scale).all()
    assert math.isfinite(float(bound.max()))
