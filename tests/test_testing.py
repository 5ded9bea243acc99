"""The Hypothesis strategies of ``mperror.testing``: each draws what it promises, for every
format and dtype it accepts, and refuses what it cannot draw.

Oracles: the formats' definitions (values, midpoints, the lowest binade's spacing) checked by
exact arithmetic on the drawn floats, and torch's own float casts for what a dtype holds.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from mperror import formats, testing
from mperror.reference import neighbours, round_scalar


def _held(value: float, dtype: torch.dtype) -> bool:
    return torch.tensor(value, dtype=torch.float64).to(dtype).item() == value


@settings(max_examples=300, deadline=None)
@given(data=st.data(), storage=st.sampled_from([torch.float32, torch.float64]))
def test_formats_are_held_by_their_storage(data, storage) -> None:
    """Every drawn format's smallest spacing, 2**(emin - p + 1) (the lowest binade's, with or
    without subnormals), its smallest normal's upper neighbour and its max are values of the
    storage (drawing had raised for float64 storage, emin below -1022, and drawn formats
    float32 could not hold without subnormals)."""
    fmt = data.draw(testing.formats(storage=storage))
    step = math.ldexp(1.0, fmt.emin - fmt.precision + 1)
    for value in (step, fmt.smallest_normal + step, fmt.max):
        assert _held(value, storage), (fmt, value)


def test_overflow_values_of_fp64_and_wide_ranges() -> None:
    """A format with emax = 1023 has no float 2**(emax + 1): drawing had raised OverflowError.
    Every draw is finite and at least the format's max."""
    for fmt in (formats.FP64, formats.FloatFormat(precision=20, emax=1023)):
        for _ in range(2):
            v = find(testing.overflow_values(fmt), lambda v: True)
            assert math.isfinite(v) and abs(v) >= fmt.max
        find(testing.inputs(fmt, dtype=torch.float64), lambda v: True)


def test_inputs_for_float64_include_near_ties() -> None:
    """Oracle: exact midpoints from round_scalar's neighbours: a near-tie is within a few
    float64 ulps of an e4m3fn midpoint without being one (float64 inputs had drawn exact ties
    in their place)."""
    fmt = formats.E4M3FN

    def near_tie(v: float) -> bool:
        if not math.isfinite(v) or v == 0 or abs(v) > fmt.max:
            return False
        down = round_scalar(Fraction(v), fmt, "toward_zero")
        up = round_scalar(Fraction(v), fmt, "toward_positive" if v > 0 else "toward_negative")
        midpoint = (down + up) / 2
        return (
            down != up
            and Fraction(v) != midpoint
            and abs(Fraction(v) - midpoint) <= (4 * Fraction(math.ulp(v)))
        )

    find(testing.inputs(fmt, dtype=torch.float64), near_tie, settings=settings(max_examples=2000))


def test_inputs_for_a_dtype_narrower_than_the_format() -> None:
    """float16 data rounded to bf16 (mperror.round accepts it with a float32 result): no
    overflow values exist in float16 (65504 < bf16's max), and drawing had raised."""
    v = find(testing.inputs(formats.BF16, dtype=torch.float16), lambda v: math.isfinite(v))
    assert _held(v, torch.float16)
    with pytest.raises(ValueError, match="cannot hold values at the overflow threshold"):
        testing.overflow_values(formats.BF16, dtype=torch.float16)


def test_ties_refused_where_the_dtype_cannot_hold_them() -> None:
    """fp32's midpoints need 25 bits: float32 holds none (the strategy filtered everything
    out and Hypothesis failed its health check)."""
    with pytest.raises(ValueError, match="cannot hold the midpoints"):
        testing.near_ties(formats.FP32)
    with pytest.raises(ValueError, match="cannot hold the midpoints"):
        testing.ties(formats.FP16, dtype=torch.float16)
    find(testing.inputs(formats.FP32, dtype=torch.float32), lambda v: True)


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        (formats.FloatFormat(precision=22, emax=127), torch.float32),  # ties at float32's top
        (formats.FloatFormat(precision=6, emax=127), torch.bfloat16),
        (formats.FloatFormat(precision=2, emax=7, emin=-146), torch.float32),  # and bottom
        (formats.FP16, torch.float32),
    ],
)
def test_near_ties_are_near_ties(fmt, dtype) -> None:
    """Oracle: the reference's neighbours, exactly. A near-tie is finite, nonzero, and neither
    a value nor a midpoint of the format (at the dtype's ends a nudge had given inf or crossed
    zero)."""

    @settings(max_examples=150, deadline=None, database=None)
    @given(testing.near_ties(fmt, dtype=dtype))
    def check(v: float) -> None:
        assert math.isfinite(v) and v != 0
        if abs(v) <= fmt.max:
            _, f, _ = neighbours(abs(Fraction(v)), fmt)
            assert f not in (0, Fraction(1, 2)), (v, f)

    check()


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        (formats.FloatFormat(precision=23, emax=127), torch.float32),
        (formats.FloatFormat(precision=7, emax=127), torch.bfloat16),
        (formats.FloatFormat(precision=2, emax=7, emin=-147), torch.float32),
    ],
)
def test_near_ties_refused_with_one_bit_to_spare(fmt, dtype) -> None:
    """A dtype with one bit to spare has no value strictly between a midpoint and a format
    value: one ulp had landed on a value, two on the next tie."""
    with pytest.raises(ValueError, match="holds no values between the midpoints"):
        testing.near_ties(fmt, dtype=dtype)
    testing.ties(fmt, dtype=dtype)  # the ties themselves it holds


def test_overflow_values_include_the_next_value_above_max() -> None:
    """Where toward_positive, odd and stochastic rounding start to overflow: one float32 ulp
    above fp16's max and e4m3fn's (drawn in float64 and cast, it had never come up), and a
    format whose max float16 does not hold is refused, not silently left out."""
    assert find(
        testing.overflow_values(formats.FP16, dtype=torch.float32), lambda v: v == 65504.00390625
    )
    assert find(
        testing.overflow_values(formats.E4M3FN, dtype=torch.float32),
        lambda v: v == float(torch.nextafter(torch.tensor(448.0), torch.tensor(math.inf))),
    )
    with pytest.raises(ValueError, match=r"is not a torch\.float16 value"):
        testing.overflow_values(formats.FloatFormat(precision=12, emax=14), dtype=torch.float16)


@pytest.mark.parametrize(
    "kind",
    [
        lambda f: f.max < f.replace(max_finite=None).max,  # reserved top codes (e4m3fn)
        lambda f: f.has_inf and not f.has_nan,
        lambda f: f.has_inf and f.overflow is formats.Overflow.SATURATE,
        lambda f: f.emax < 0,
        lambda f: f.emin > 1,
    ],
    ids=["reduced-max", "inf-without-nan", "saturating-with-inf", "negative-emax", "emin-above-1"],
)
def test_formats_reach_every_kind_of_format(kind) -> None:
    """Each kind FloatFormat accepts is drawn (none of these had been, in 3,000 draws)."""
    assert kind(find(testing.formats(), kind, settings=settings(database=None)))
