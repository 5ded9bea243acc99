"""Hypothesis strategies over any :class:`~mperror.formats.FloatFormat`.

For property tests of code that rounds: draw values of a format (every finite code reachable,
subnormals, signed zeros, specials), exact ties between neighbours and values a few input ulps
either side of them, and values around the overflow threshold. Every strategy yields Python
floats that the requested storage dtype represents exactly, so ``torch.tensor(v, dtype=dtype)``
holds the drawn value.

>>> from hypothesis import given
>>> from mperror.formats import FP16
>>> @given(value_of(FP16))
... def test_fp16_values_round_to_themselves(v):
...     x = torch.tensor([v])
...     assert mperror.round(x, FP16).item() == v or math.isnan(v)
>>> test_fp16_values_round_to_themselves()

Needs the ``hypothesis`` package (the ``test`` extra).
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

import mperror
from mperror.formats import FloatFormat, FormatLike, Overflow, as_format

__all__ = [
    "formats",
    "inputs",
    "near_ties",
    "overflow_values",
    "ties",
    "value_of",
]


def _fits(value: float, dtype: torch.dtype) -> bool:
    if math.isnan(value):
        return True
    return torch.tensor(value, dtype=torch.float64).to(dtype).item() == value


def _significand_and_exponent(fmt: FloatFormat) -> st.SearchStrategy[float]:
    """A non-negative finite value of ``fmt``: zero, a subnormal, or a normal number."""
    p = fmt.precision

    def normal(e: int, m: int) -> float:
        return math.ldexp(m, e - p + 1)

    normals = st.builds(
        normal,
        st.integers(fmt.emin, fmt.emax),
        st.integers(2 ** (p - 1), 2**p - 1),
    ).filter(lambda v: v <= fmt.max)
    parts = [st.just(0.0), normals, st.just(fmt.max), st.just(fmt.smallest_normal)]
    if fmt.subnormals and p > 1:
        subnormal = st.integers(1, 2 ** (p - 1) - 1).map(lambda m: math.ldexp(m, fmt.emin - p + 1))
        parts += [subnormal, st.just(fmt.smallest_subnormal)]
    return st.one_of(*parts)


def _signed(magnitudes: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    return st.builds(lambda v, negative: -v if negative else v, magnitudes, st.booleans())


def value_of(fmt: FormatLike, *, specials: bool = True) -> st.SearchStrategy[float]:
    """Values of ``fmt``, both signs (``-0.0`` included), plus NaN where the format has it
    and ``±inf`` where rounding to it keeps them (overflow policy ``inf``: a format with
    infinities whose policy is ``saturate`` or ``nan`` maps an infinite input to ``±max`` or
    NaN, as :class:`~mperror.formats.Overflow` says, so every value drawn rounds to itself).

    >>> from hypothesis import given
    >>> from mperror.formats import E2M1
    >>> @given(value_of(E2M1, specials=False))
    ... def test_is_a_value(v):
    ...     assert v in set(E2M1.finite_values().tolist())
    >>> test_is_a_value()
    """
    fmt = as_format(fmt)
    values = _signed(_significand_and_exponent(fmt))
    extra: list[float] = []
    if specials and fmt.has_inf and fmt.overflow is Overflow.INF:
        extra += [math.inf, -math.inf]
    if specials and fmt.has_nan:
        extra.append(math.nan)
    return st.one_of(values, st.sampled_from(extra)) if extra else values


def _spacing_above(value: float, fmt: FloatFormat) -> float:
    return fmt.spacing(torch.tensor([value], dtype=torch.float64)).item()


def _next_up(value: float, fmt: FloatFormat) -> float:
    """The neighbour above a non-negative format value, ignoring ``max`` (the virtual next)."""
    if value < fmt.smallest_normal:
        step = fmt.smallest_subnormal if fmt.subnormals else fmt.smallest_normal
        return value + step
    return value + _spacing_above(value, fmt)


def _midpoints_fit(fmt: FloatFormat, dtype: torch.dtype) -> bool:
    """Can ``dtype`` hold midpoints of ``fmt`` (one bit more precision, and range below)?"""
    store = mperror.formats.format_of_dtype(dtype)
    return fmt.precision < store.precision and fmt.emin - fmt.precision >= (
        store.emin - store.precision + 1
    )


def _near_ties_fit(fmt: FloatFormat, dtype: torch.dtype) -> bool:
    """Can ``dtype`` hold values just off the midpoints of ``fmt`` (two bits more precision,
    and range one more bit below)? With one bit to spare every ``dtype`` value near a midpoint
    is a value or a midpoint of ``fmt``: there is nothing in between."""
    store = mperror.formats.format_of_dtype(dtype)
    return fmt.precision + 1 < store.precision and fmt.emin - fmt.precision - 1 >= (
        store.emin - store.precision + 1
    )


def _check_midpoints(fmt: FloatFormat, dtype: torch.dtype) -> None:
    if not _midpoints_fit(fmt, dtype):
        raise ValueError(
            f"dtype {dtype} cannot hold the midpoints of {fmt} (they need precision "
            f"{fmt.precision + 1} down to 2**{fmt.emin - fmt.precision}); pass a wider dtype"
        )


def ties(fmt: FormatLike, *, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[float]:
    """Exact midpoints between neighbouring values of ``fmt`` (both signs), representable in
    ``dtype``; the midpoint between ``max`` and the next value of an unbounded exponent range (the
    overflow tie) is included. ValueError where ``dtype`` cannot hold midpoints of ``fmt`` (one
    bit more precision than ``fmt``, down to half its smallest spacing).
    """
    fmt = as_format(fmt)
    _check_midpoints(fmt, dtype)
    midpoints = (
        _significand_and_exponent(fmt)
        .map(lambda v: (v + _next_up(v, fmt)) / 2)
        .filter(lambda v: _fits(v, dtype))
    )
    return _signed(midpoints)


def near_ties(
    fmt: FormatLike, *, dtype: torch.dtype = torch.float32, ulps: int = 2
) -> st.SearchStrategy[float]:
    """Midpoints of ``fmt`` moved by ``1 .. ulps`` ulps of ``dtype`` either way, keeping
    those that land neither on a value nor on another midpoint of ``fmt`` and stay finite, on
    the tie's side of zero (ValueError where ``dtype`` cannot hold the midpoints, as for
    :func:`ties`, or has no values between them and the format's: one bit to spare)."""
    fmt = as_format(fmt)

    def nudge(v: float, steps: int) -> float:
        x = torch.tensor(v, dtype=dtype)
        toward = torch.tensor(math.copysign(math.inf, steps), dtype=dtype)
        for _ in range(abs(steps)):
            x = torch.nextafter(x, toward)
        return x.item()

    def near(v: float) -> bool:
        """Finite, nonzero, and neither a value nor a midpoint of ``fmt`` (a dtype with one
        bit to spare reaches the next value in one ulp and the next midpoint in two; at the
        ends of its range a nudge gives inf or crosses zero)."""
        if not math.isfinite(v) or v == 0:
            return False
        if abs(v) > fmt.max:  # past the overflow tie's lower neighbour: nothing to land on
            return True
        x = torch.tensor([abs(v)], dtype=torch.float64)
        low = mperror.round(x, fmt, "toward_zero").item()
        high = mperror.round(x, fmt, "toward_positive").item()  # at most max: no overflow
        return low != abs(v) and 2 * abs(v) != low + high

    _check_midpoints(fmt, dtype)
    if not _near_ties_fit(fmt, dtype):
        raise ValueError(
            f"dtype {dtype} holds no values between the midpoints and values of {fmt} (that "
            f"needs precision {fmt.precision + 2} down to 2**{fmt.emin - fmt.precision - 1}); "
            "pass a wider dtype"
        )
    nonzero_steps = st.integers(-ulps, ulps).filter(lambda k: k != 0)
    return st.builds(nudge, ties(fmt, dtype=dtype), nonzero_steps).filter(near)


def overflow_values(
    fmt: FormatLike, *, dtype: torch.dtype = torch.float64
) -> st.SearchStrategy[float]:
    """Values at and past the overflow threshold of ``fmt`` (both signs), representable in
    ``dtype``: ``max``, the next ``dtype`` value above it, the overflow tie
    ``max + spacing/2``, numbers between, beyond, and the largest finite value of ``dtype``
    (ValueError where ``dtype`` does not hold ``max``).
    """
    fmt = as_format(fmt)
    dtype_max = torch.finfo(dtype).max
    if not _fits(fmt.max, dtype):  # beyond dtype's range, or between two of its values
        raise ValueError(
            f"dtype {dtype} cannot hold values at the overflow threshold of {fmt} (its max "
            f"{fmt.max!r} is not a {dtype} value); pass a wider dtype"
        )
    top = math.ldexp(1.0, fmt.emax + 1) if fmt.emax < 1023 else math.inf  # 2**1024 is no float
    threshold = fmt.max + _spacing_above(fmt.max, fmt) / 2  # inf for fp64: filtered below
    # one ulp of dtype above max: where toward_positive, odd and stochastic start to overflow
    just_above = torch.nextafter(
        torch.tensor(fmt.max, dtype=dtype), torch.tensor(math.inf, dtype=dtype)
    ).item()
    candidates = st.one_of(
        st.sampled_from([fmt.max, just_above, threshold, top, dtype_max]),
        st.floats(fmt.max, min(4 * top, dtype_max), allow_nan=False, allow_infinity=False),
    ).map(lambda v: torch.tensor(v, dtype=torch.float64).to(dtype).item())
    return _signed(candidates.filter(lambda v: math.isfinite(v)))


def inputs(fmt: FormatLike, *, dtype: torch.dtype = torch.float32) -> st.SearchStrategy[float]:
    """Everything a rounding to ``fmt`` must get right, as values of ``dtype``: format values,
    ties, near-ties, overflow values, any finite float of ``dtype``, ``±0``, ``±inf`` and NaN.
    Ties and near-ties are left out where ``dtype`` cannot hold them (``fmt`` as precise as
    ``dtype``), overflow values where ``dtype`` does not reach ``fmt.max``.
    """
    fmt = as_format(fmt)
    width = 32 if dtype in (torch.float32, torch.float16, torch.bfloat16) else 64
    anything = st.floats(width=width, allow_nan=True, allow_infinity=True).filter(
        lambda v: _fits(v, dtype)
    )
    parts = [value_of(fmt).filter(lambda v: _fits(v, dtype))]
    if _midpoints_fit(fmt, dtype):  # else fmt is (nearly) dtype itself: no ties to draw
        parts.append(ties(fmt, dtype=dtype))
    if _near_ties_fit(fmt, dtype):
        parts.append(near_ties(fmt, dtype=dtype))
    if _fits(fmt.max, dtype):
        parts.append(overflow_values(fmt, dtype=dtype))
    parts += [anything, st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan])]
    return st.one_of(*parts)


@st.composite
def formats(draw: st.DrawFn, *, max_precision: int = 24, storage: torch.dtype = torch.float32):
    """Arbitrary formats that ``storage`` holds exactly: custom precision and exponent range
    (negative ``emax``, ``emin`` above 1 included), subnormals on or off, any combination of
    infinities and NaN with each overflow policy they allow, and a largest finite value below
    the natural one (reserved top codes, as in e4m3fn)."""
    store = mperror.formats.format_of_dtype(storage)
    p = draw(st.integers(1, min(max_precision, store.precision)))
    emax = draw(st.integers(-8, store.emax))
    lowest = store.emin - store.precision + 1  # the storage's smallest subnormal exponent
    # Every value is a multiple of 2**(emin - p + 1), the lowest binade's spacing (subnormals
    # or not), which the storage must hold; FloatFormat itself takes emin >= -1022.
    floor = max(lowest + p - 1, mperror.formats.FP64.emin)
    emin = draw(
        st.one_of(
            st.integers(max(store.emin, 1 - emax - 20, floor), emax),
            st.integers(floor, min(store.emin, emax)),  # 2**emin a storage subnormal, or its min
        )
    )
    subnormals = draw(st.booleans())
    has_inf = draw(st.booleans())
    has_nan = draw(st.booleans())
    policies = [Overflow.SATURATE]
    if has_inf:
        policies.append(Overflow.INF)
    if has_nan:
        policies.append(Overflow.NAN)
    overflow = draw(st.sampled_from(policies))
    max_finite = None
    if p > 1 and draw(st.booleans()):  # a largest value on the top binade's grid
        steps = draw(st.integers(0, 2 ** (p - 1) - 1))
        max_finite = math.ldexp(2 ** (p - 1) + steps, emax - p + 1)
    return FloatFormat(
        precision=p,
        emax=emax,
        emin=emin,
        subnormals=subnormals,
        has_inf=has_inf,
        has_nan=has_nan,
        max_finite=max_finite,
        overflow=overflow,
    )
