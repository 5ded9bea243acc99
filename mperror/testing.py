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
    """Values of ``fmt``, both signs (``-0.0`` included), plus inf/NaN where the format has them.

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
    if specials and fmt.has_inf:
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
    """Midpoints of ``fmt`` moved by ``1 .. ulps`` ulps of ``dtype`` either way (ValueError
    where ``dtype`` cannot hold the midpoints, as for :func:`ties`)."""
    fmt = as_format(fmt)

    def nudge(v: float, steps: int) -> float:
        x = torch.tensor(v, dtype=dtype)
        toward = torch.tensor(math.copysign(math.inf, steps), dtype=dtype)
        for _ in range(abs(steps)):
            x = torch.nextafter(x, toward)
        return x.item()

    _check_midpoints(fmt, dtype)
    nonzero_steps = st.integers(-ulps, ulps).filter(lambda k: k != 0)
    return st.builds(nudge, ties(fmt, dtype=dtype), nonzero_steps)


def overflow_values(
    fmt: FormatLike, *, dtype: torch.dtype = torch.float64
) -> st.SearchStrategy[float]:
    """Values at and past the overflow threshold of ``fmt`` (both signs), representable in
    ``dtype``: ``max``, the overflow tie ``max + spacing/2``, numbers between, beyond, and the
    largest finite value of ``dtype``.
    """
    fmt = as_format(fmt)
    dtype_max = torch.finfo(dtype).max
    if dtype_max < fmt.max:
        raise ValueError(
            f"dtype {dtype} cannot hold values at the overflow threshold of {fmt} (max "
            f"{fmt.max!r} > {dtype_max!r}); pass a wider dtype"
        )
    top = math.ldexp(1.0, fmt.emax + 1) if fmt.emax < 1023 else math.inf  # 2**1024 is no float
    threshold = fmt.max + _spacing_above(fmt.max, fmt) / 2  # inf for fp64: filtered below
    candidates = st.one_of(
        st.sampled_from([fmt.max, threshold, top, dtype_max]),
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
        parts += [ties(fmt, dtype=dtype), near_ties(fmt, dtype=dtype)]
    if torch.finfo(dtype).max >= fmt.max:
        parts.append(overflow_values(fmt, dtype=dtype))
    parts += [anything, st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan])]
    return st.one_of(*parts)


@st.composite
def formats(draw: st.DrawFn, *, max_precision: int = 24, storage: torch.dtype = torch.float32):
    """Arbitrary formats that ``storage`` holds exactly (custom precision, range and flags)."""
    store = mperror.formats.format_of_dtype(storage)
    p = draw(st.integers(1, min(max_precision, store.precision)))
    emax = draw(st.integers(0, store.emax))
    lowest = store.emin - store.precision + 1  # the storage's smallest subnormal exponent
    # Every value is a multiple of 2**(emin - p + 1), the lowest binade's spacing (subnormals
    # or not), which the storage must hold; FloatFormat itself takes emin >= -1022.
    floor = max(lowest + p - 1, mperror.formats.FP64.emin)
    emin = draw(
        st.one_of(
            st.integers(max(store.emin, 1 - emax - 20), min(emax, 1)),
            st.integers(floor, store.emin),  # 2**emin a subnormal of the storage, or its min
        )
    )
    subnormals = draw(st.booleans())
    has_inf = draw(st.booleans())
    has_nan = has_inf or draw(st.booleans())
    policies = [Overflow.INF] if has_inf else [Overflow.SATURATE]
    if has_nan and not has_inf:
        policies.append(Overflow.NAN)
    overflow = draw(st.sampled_from(policies))
    return FloatFormat(
        precision=p,
        emax=emax,
        emin=emin,
        subnormals=subnormals,
        has_inf=has_inf,
        has_nan=has_nan,
        overflow=overflow,
    )
