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
from mperror.reference import round_scalar


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
