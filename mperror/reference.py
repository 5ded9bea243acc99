"""A slow, obviously correct rounding of one number, in exact rational arithmetic.

:func:`round_scalar` is the oracle that tests hold the fast tensor kernel in
:mod:`mperror.rounding` against. It follows the definitions directly: find the two format values
around ``x`` on the format's grid, pick one by the rounding mode, then apply the overflow policy.
No floating-point operation touches the value on the way: exponents come from integer bit
lengths, never from ``log2``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from mperror.formats import FloatFormat, FormatLike, Overflow, as_format
from mperror.rounding import RoundMode, _check_random_bits

__all__ = ["neighbours", "round_scalar"]


def _floor_log2(value: Fraction) -> int:
    """``floor(log2(value))`` for a positive rational, exactly."""
    e = value.numerator.bit_length() - value.denominator.bit_length()
    # 2**e <= value < 2**(e+1) holds after at most one correction either way.
    if Fraction(2) ** e > value:
        e -= 1
    elif Fraction(2) ** (e + 1) <= value:
        e += 1
    return e


def _quantum_exponent(magnitude: Fraction, fmt: FloatFormat) -> int:
    """Exponent of the grid spacing of ``fmt`` at ``magnitude > 0``."""
    e = _floor_log2(magnitude)
    if e >= fmt.emin:
        return e - fmt.precision + 1
    # Below the smallest normal the grid is the subnormal one, or {0, 2**emin} without them.
    return fmt.emin - fmt.precision + 1 if fmt.subnormals else fmt.emin


def neighbours(magnitude: Fraction, fmt: FloatFormat) -> tuple[int, Fraction, Fraction]:
    """Grid decomposition ``magnitude = (k + f) * q`` with integer ``k >= 0`` and ``0 <= f < 1``.

    Returns ``(k, f, q)``: the value below is ``k q`` and the value above ``(k + 1) q``, on the
    grid of the binade that contains ``magnitude``, ignoring the largest finite value. ``k``'s
    parity is the parity of the significand, which ties-to-even and round-to-odd look at.
    """
    if magnitude <= 0:
        raise ValueError(f"magnitude must be positive, got {magnitude}")
    q = Fraction(2) ** _quantum_exponent(magnitude, fmt)
    scaled = magnitude / q
    k = math.floor(scaled)
    return k, scaled - k, q


def round_scalar(
    value: float | Fraction | int,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    draw: float | Fraction | None = None,
    random_bits: int | None = None,
) -> float:
    """Round one number to ``fmt`` by the definition of ``mode``; the result as a Python float.

    Args:
        value: a float (including ``±0``, ``±inf``, NaN), an int, or an exact Fraction.
        fmt: the target format.
        mode: a :class:`~mperror.rounding.RoundMode` or its value string.
        draw: for the stochastic modes, the uniform random number ``U`` in ``[0, 1)``.
        random_bits: for ``stochastic``, the number ``k`` of random bits of few-bit stochastic
            rounding.

    Semantics, for ``|value| = (k + f) q`` (see :func:`neighbours`): the magnitude becomes
    ``k q`` ("down") or ``(k + 1) q`` ("up"). ``stochastic`` goes up when ``U < f``, so with
    probability ``f``; with ``random_bits=k`` it goes up when ``floor(2**k U) < floor(2**k f)``,
    with probability ``floor(2**k f) / 2**k``. ``stochastic_equal`` goes up when ``f > 0`` and
    ``U < 1/2``. A result above ``max`` overflows as :class:`~mperror.formats.Overflow` says.

    >>> round_scalar(1 + 2**-8 + 2**-40, "bf16")  # no double rounding
    1.0078125
    >>> round_scalar(65520.0, "fp16"), round_scalar(65520.0, "fp16", "toward_zero")
    (inf, 65504.0)
    >>> round_scalar(500.0, "e4m3fn"), round_scalar(500.0, FloatFormat(precision=4, emax=8,
    ...     emin=-6, has_inf=False, max_finite=448.0, overflow="nan"))
    (448.0, nan)
    """
    if isinstance(value, bool) or not isinstance(value, (float, int, Fraction)):
        raise TypeError(f"value must be a float, int or Fraction, got {type(value).__name__}")
    fmt = as_format(fmt)
    mode = RoundMode.parse(mode)
    random_bits = _check_random_bits(random_bits, mode)  # the arguments mperror.round takes
    if mode.is_stochastic:
        _uniform(draw)  # checked whether or not this value needs it
    elif draw is not None:
        raise ValueError(f"draw applies to the stochastic modes only, got mode {mode.value!r}")
    if isinstance(value, float) and math.isnan(value):
        return math.nan
    if isinstance(value, float) and math.isinf(value):
        return _infinite(value > 0, fmt)
    exact = Fraction(value)
    negative = exact < 0 or (exact == 0 and math.copysign(1.0, float(value)) < 0)
    sign = -1.0 if negative else 1.0
    if exact == 0:
        return sign * 0.0

    k, f, q = neighbours(abs(exact), fmt)
    up = _goes_up(mode, k, f, negative, draw, random_bits)
    magnitude = (k + 1) * q if up else k * q
    if magnitude > Fraction(fmt.max):
        toward_zero = mode is RoundMode.TOWARD_ZERO or (
            mode is RoundMode.TOWARD_NEGATIVE if not negative else mode is RoundMode.TOWARD_POSITIVE
        )
        if toward_zero or fmt.overflow is Overflow.SATURATE:
            return sign * fmt.max
        return sign * math.inf if fmt.overflow is Overflow.INF else math.nan
    return sign * float(magnitude)


def _goes_up(
    mode: RoundMode,
    k: int,
    f: Fraction,
    negative: bool,
    draw: float | Fraction | None,
    random_bits: int | None,
) -> bool:
    if f == 0:
        return False
    half = Fraction(1, 2)
    match mode:
        case RoundMode.NEAREST_EVEN:
            return f > half or (f == half and k % 2 == 1)
        case RoundMode.NEAREST_AWAY:
            return f >= half
        case RoundMode.TOWARD_ZERO:
            return False
        case RoundMode.TOWARD_POSITIVE:
            return not negative
        case RoundMode.TOWARD_NEGATIVE:
            return negative
        case RoundMode.ODD:
            return k % 2 == 0
        case RoundMode.STOCHASTIC:
            u = _uniform(draw)
            if random_bits is None:
                return u < f
            scale = 2**random_bits
            return math.floor(u * scale) < math.floor(f * scale)
        case RoundMode.STOCHASTIC_EQUAL:
            return _uniform(draw) < half
    raise AssertionError(mode)  # pragma: no cover - the match is exhaustive


def _uniform(draw: float | Fraction | None) -> Fraction:
    if draw is None:
        raise ValueError("draw (a uniform number in [0, 1)) is required by the stochastic modes")
    if isinstance(draw, bool) or not isinstance(draw, (float, int, Fraction)):
        raise TypeError(f"draw must be a float or Fraction in [0, 1), got {type(draw).__name__}")
    if isinstance(draw, float) and not math.isfinite(draw):
        raise ValueError(f"draw must lie in [0, 1), got {draw}")
    u = Fraction(draw)
    if not 0 <= u < 1:
        raise ValueError(f"draw must lie in [0, 1), got {draw}")
    return u


def _infinite(positive: bool, fmt: FloatFormat) -> float:
    sign = 1.0 if positive else -1.0
    if fmt.overflow is Overflow.INF:
        return sign * math.inf
    if fmt.overflow is Overflow.SATURATE:
        return sign * fmt.max
    return math.nan
