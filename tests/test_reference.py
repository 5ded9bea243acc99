"""The scalar reference against independent oracles and the peers' known failure cases.

Oracles: numpy's float64 -> float16 cast (correctly rounded to nearest even, unlike torch's and
ml_dtypes', which pass through float32); the definitions of the modes, checked on hand-picked
values (REFERENCES.md section 2 lists where chop, pychop and QPyTorch go wrong).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mperror import formats
from mperror.reference import neighbours, round_scalar
from mperror.rounding import RoundMode


@given(st.floats(width=64, allow_nan=False))
def test_nearest_even_matches_numpy_float16(value: float) -> None:
    """Oracle: numpy's correctly rounded float64 -> float16 cast."""
    with np.errstate(over="ignore"):
        expected = float(np.float64(value).astype(np.float16))
    got = round_scalar(value, "fp16")
    assert got == expected and math.copysign(1, got) == math.copysign(1, expected)


@pytest.mark.parametrize(
    ("value", "mode", "expected"),
    [
        # pychop: [65520, 65536) must overflow to inf, [65536, 131072) must not become 0.
        (65520.0, "nearest_even", math.inf),
        (65535.0, "nearest_even", math.inf),
        (100000.0, "nearest_even", math.inf),
        (65519.99, "nearest_even", 65504.0),
        # QPyTorch rounds ties away from zero: 1 + 2**-11 is a tie that goes to even (1).
        (1 + 2**-11, "nearest_even", 1.0),
        (1 + 3 * 2**-11, "nearest_even", 1 + 2**-9),
        (1 + 2**-11, "nearest_away", 1 + 2**-10),
        # pychop's directed modes are off just below powers of two (exponent from log2).
        (2.0 - 2**-40, "toward_zero", 2.0 - 2**-10),
        (2.0 - 2**-40, "toward_positive", 2.0),
        (-(2.0 - 2**-40), "toward_negative", -2.0),
        # pychop's round-to-odd changes exact values; odd must leave them alone.
        (1.5, "odd", 1.5),
        (1 + 2**-20, "odd", 1 + 2**-10),
        (1 + 2**-10 + 2**-20, "odd", 1 + 2**-10),
        # chop double-rounds at the underflow threshold: (xmins/2, xmins/2 (1 + 2**-p)] -> xmins.
        (2.0**-25 * (1 + 2**-11), "nearest_even", 2.0**-24),
        (2.0**-25, "nearest_even", 0.0),
        # Directed overflow stops at max.
        (1e6, "toward_zero", 65504.0),
        (1e6, "toward_negative", 65504.0),
        (-1e6, "toward_positive", -65504.0),
        (-1e6, "toward_negative", -math.inf),
    ],
)
def test_fp16_pinned_cases(value: float, mode: str, expected: float) -> None:
    """Oracle: IEEE 754 binary16 by hand."""
    assert round_scalar(value, "fp16", mode) == expected


def test_signed_zero_nan_and_infinities_per_policy() -> None:
    """Oracle: IEEE 754 (signs, NaN) and the Overflow policy definitions."""
    assert math.copysign(1, round_scalar(-0.0, "fp16")) == -1
    assert math.copysign(1, round_scalar(-(2.0**-40), "fp16")) == -1
    assert math.isnan(round_scalar(math.nan, "e2m1"))
    assert round_scalar(-math.inf, "fp16", "toward_zero") == -math.inf
    assert round_scalar(math.inf, "e4m3fn") == 448.0
    assert math.isnan(round_scalar(math.inf, formats.E4M3FN.replace(overflow="nan")))
    assert round_scalar(1e9, "e2m1", "toward_positive") == 6.0  # saturating, no inf


def test_no_double_rounding() -> None:
    """Oracle: the exact value 1 + 2**-8 + 2**-40 lies above the bf16 midpoint 1 + 2**-8."""
    assert round_scalar(1 + 2**-8 + 2**-40, "bf16") == 1 + 2**-7
    assert round_scalar(Fraction(1) + Fraction(1, 2**8) + Fraction(1, 2**200), "bf16") == 1 + 2**-7


def test_subnormals_off_rounds_to_zero_or_smallest_normal() -> None:
    """Oracle: the documented set {0, 2**emin} below the smallest normal."""
    fmt = formats.FP16.replace(subnormals=False)
    tie = 2.0**-15
    assert round_scalar(tie, fmt) == 0.0  # ties go to zero (even)
    assert round_scalar(tie, fmt, "nearest_away") == 2.0**-14
    assert round_scalar(2.0**-30, fmt, "odd") == 2.0**-14
    assert round_scalar(2.0**-30, fmt, "toward_zero") == 0.0


def test_stochastic_draws() -> None:
    """Oracle: the mode's definition with the draw given: up iff U < f."""
    k, f, q = neighbours(Fraction(1) + Fraction(1, 4 * 2**10), formats.FP16)
    assert (k, f, q) == (1024, Fraction(1, 4), Fraction(1, 2**10))
    value = 1 + 2**-12
    assert round_scalar(value, "fp16", "stochastic", draw=0.2) == 1 + 2**-10
    assert round_scalar(value, "fp16", "stochastic", draw=0.25) == 1.0
    # Few-bit: with k = 1 bit, floor(2 * 1/4) = 0, so it never goes up.
    assert round_scalar(value, "fp16", "stochastic", draw=0.0, random_bits=1) == 1.0
    assert round_scalar(value, "fp16", "stochastic_equal", draw=0.49) == 1 + 2**-10
    with pytest.raises(ValueError, match="draw"):
        round_scalar(value, "fp16", RoundMode.STOCHASTIC)


def test_bad_arguments_are_refused() -> None:
    """A string or a bool is not a number to round (Fraction("1.5") would parse the string);
    random_bits means nothing outside stochastic rounding (mperror.round refuses it too)."""
    with pytest.raises(TypeError, match="value must be"):
        round_scalar("1.5", "fp16")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be"):
        round_scalar(True, "fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="random_bits"):
        round_scalar(1.5, "fp16", "nearest_even", random_bits=3)
    for bad in (0, -2, True, 2.0):  # 0 had meant "never round up"
        with pytest.raises(ValueError, match="random_bits must be a positive int"):
            round_scalar(1.5, "fp16", "stochastic", draw=0.5, random_bits=bad)


def test_draw_is_checked_whatever_the_value() -> None:
    """The draw is an argument of the stochastic modes: checked even where the value is exact
    (1.0 rounded to fp16 needs no draw, yet draw=5 or none at all had been accepted), refused
    for the deterministic modes (where it had been ignored), and named when it is a NaN or a
    string (Fraction had raised its own error, or parsed the string)."""
    for draw in (None, 5.0, -0.5, math.nan):
        with pytest.raises(ValueError, match="draw"):
            round_scalar(1.0, "fp16", "stochastic", draw=draw)
    with pytest.raises(ValueError, match="draw"):
        round_scalar(math.inf, "fp16", "stochastic_equal", draw=-1.0)
    with pytest.raises(TypeError, match="draw must be a float or Fraction"):
        round_scalar(1.5, "fp16", "stochastic", draw="0.9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="draw applies to the stochastic modes only"):
        round_scalar(1.5, "fp16", "toward_zero", draw=0.5)
    assert round_scalar(1.0, "fp16", "stochastic", draw=Fraction(1, 3)) == 1.0
