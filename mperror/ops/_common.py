"""Shared plumbing of :mod:`mperror.ops`: argument checks, operands, exact float64 sums.

Every emulated operation evaluates in float64 and rounds once with :func:`mperror.round`. Two
facts make that exact; both are proved here once and cited by the operations.

**The cell lemma.** Let ``fmt`` have precision ``p`` and let ``G`` be the set of its values and of
the midpoints between neighbouring values (the overflow midpoint ``max + spacing/2`` included).
Every deterministic rounding of a real ``x`` to ``fmt`` (each mode, with the overflow policy) is
a function of the sign of ``x`` and of the position of ``|x|`` relative to ``G`` alone: which
member of ``G`` it equals, or which open interval between consecutive members holds it (that
fixes both neighbours, the parity of the lower one, the side of the midpoint, and whether the
result exceeds ``max``). So two reals in the same *G-cell* round alike in every deterministic
mode.

**Round-to-odd (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved
algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008).** Write ``RO53(x)`` for
``x`` when it is a float64 value, else the one of the two float64 numbers around ``x`` whose last
significand bit is odd. If ``p + 1 <= 52`` and every member of ``G`` is a multiple of
``2**-1073``, each member of ``G`` is a float64 value with an even last bit, so it is neither
``RO53(x)`` (when inexact) nor strictly between two consecutive float64 values: ``RO53(x)``
lies in the G-cell of ``x``. Hence ``round(RO53(x), fmt, mode) == round(x, fmt, mode)`` for every
deterministic mode, whenever ``p <= 51``.

:func:`two_sum_to_odd` produces ``RO53(a + b)`` of two float64 values from Knuth's TwoSum: with
``s = RN(a + b)`` and ``e = (a + b) - s`` (exact, no overflow assumed), ``a + b`` lies between
``s`` and its float64 neighbour toward ``e`` (``|e|`` is at most half an ulp of ``s``); float64
significands alternate in parity between neighbours (across binades too), so ``RO53(a + b)`` is
``s`` when ``e == 0`` or ``s`` is odd, and that neighbour otherwise.

Stochastic modes see the float64 value instead of the exact one: the probability of rounding up
is then exact to within ``2**(p - 53)`` (the relative distance of ``RO53(x)`` from ``x`` measured
in ``fmt``'s spacing); it is exact whenever the result is a float64 value (every product, most
sums).
"""

from __future__ import annotations

import functools

import torch

import mperror
from mperror.formats import FP64, FloatFormat, FormatLike, as_format
from mperror.rounding import RoundMode

__all__: list[str] = []

REAL_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

#: Largest precision for which every operation of :mod:`mperror.ops.elementwise` is exact through
#: float64 (division and square root need ``53 >= 2p + 2``; see that module).
ELEMENTWISE_MAX_PRECISION = 25
#: Largest precision an accumulation format may have: the round-to-odd sum needs ``p + 2 <= 53``.
ACCUMULATION_MAX_PRECISION = 51


def real_tensor(x: object, argument: str) -> torch.Tensor:
    """``x`` if it is a real floating-point tensor; TypeError naming ``argument`` otherwise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{argument} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in REAL_DTYPES:
        raise TypeError(
            f"{argument} must be a float16, bfloat16, float32 or float64 tensor, got {x.dtype}"
        )
    return x.detach()


def parse_mode(mode: RoundMode | str) -> RoundMode:
    return RoundMode.parse(mode)


def parse_format(fmt: FormatLike, argument: str = "fmt") -> FloatFormat:
    return as_format(fmt, argument=argument)


@functools.lru_cache(maxsize=256)
def dtype_holds(dtype: torch.dtype, fmt: FloatFormat) -> bool:
    """Can ``dtype`` store every value of ``fmt`` (the test :func:`mperror.round` applies)?"""
    try:
        mperror.round(torch.empty(0, dtype=dtype), fmt)
    except ValueError:
        return False
    return True


def check_output_dtype(dtype: torch.dtype, fmt: FloatFormat) -> torch.dtype:
    """``dtype`` if it holds ``fmt``, else ValueError (a second rounding would be silent)."""
    if not dtype_holds(dtype, fmt):
        raise ValueError(
            f"the result would be stored as {dtype}, which cannot hold every value of {fmt} "
            f"(precision {fmt.precision}, exponents [{fmt.emin}, {fmt.emax}]); pass float64 "
            "inputs"
        )
    return dtype


def operand(x: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """``x`` rounded to ``fmt`` (nearest even) and widened, exactly, to float64."""
    if dtype_holds(x.dtype, fmt):
        return mperror.round(x, fmt).to(torch.float64)
    return mperror.round(x.to(torch.float64), fmt)


def smallest_exponent(fmt: FloatFormat) -> int:
    """``log2`` of the smallest positive value of ``fmt``."""
    return fmt.emin - fmt.precision + 1 if fmt.subnormals else fmt.emin


def is_fp64(fmt: FloatFormat) -> bool:
    return fmt == FP64


def check_accumulation_format(acc: FloatFormat, mode: RoundMode, argument: str) -> bool:
    """Is ``acc`` usable as the format of correctly rounded float64 sums? Returns True for the
    native path (``acc`` is fp64 and the mode is nearest_even: float64 addition *is* the
    rounding); raises ValueError where neither path is exact."""
    if is_fp64(acc):
        if mode is not RoundMode.NEAREST_EVEN:
            raise ValueError(
                f"{argument} fp64 is emulated by native float64 arithmetic, which rounds to "
                f"nearest even only; got mode {mode.value!r}"
            )
        return True
    if acc.precision > ACCUMULATION_MAX_PRECISION or acc.emax > 1022:
        raise ValueError(
            f"{argument} must have precision <= {ACCUMULATION_MAX_PRECISION} and emax <= 1022 "
            f"(sums are rounded through a round-to-odd float64 value), or be fp64; got {acc}"
        )
    if smallest_exponent(acc) - 1 < -1073:
        raise ValueError(
            f"{argument}'s midpoints below 2**-1073 are not float64 values with a spare bit; "
            f"got {acc}"
        )
    return False


def check_product_format(fmt: FloatFormat, argument: str = "fmt") -> None:
    """ValueError unless products, quotients and square roots of ``fmt`` values are exact in
    float64 or lie in float64's normal range (see :mod:`mperror.ops.elementwise`)."""
    if fmt.precision > ELEMENTWISE_MAX_PRECISION:
        raise ValueError(
            f"{argument} must have precision <= {ELEMENTWISE_MAX_PRECISION} to be emulated "
            f"exactly through float64 (53 >= 2p + 2), or be fp64 itself; got {fmt} with "
            f"precision {fmt.precision}"
        )
    low = smallest_exponent(fmt)
    top = fmt.emax + 1  # every finite magnitude is below 2**top
    if 2 * low < -1022 or 2 * top > 1023 or top - low > 1022:
        raise ValueError(
            f"{argument}'s range is too wide for float64 intermediates: products and quotients "
            f"of its values must stay in float64's normal range (needs 2*emax + 2 <= 1023, "
            f"2*log2(smallest) >= -1022, emax + 1 - log2(smallest) <= 1022); got {fmt}"
        )


def two_sum(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Knuth's TwoSum: ``s = RN(a + b)`` and ``e`` with ``s + e == a + b`` exactly (float64,
    round to nearest, no overflow). ``e`` is NaN when ``s`` is infinite or NaN."""
    s = a + b
    b_virtual = s - a
    a_virtual = s - b_virtual
    return s, (a - a_virtual) + (b - b_virtual)


def to_odd(s: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``RO53(s + e)`` for ``s = RN(s + e)``, ``|e| <= ulp(s)/2`` (the TwoSum output)."""
    bits = s.view(torch.int64)
    # NaN errors (from infinite or NaN sums) fail the comparison: s is kept. An inexact s is
    # never zero, and float64 patterns are sign-magnitude, so the neighbour toward e is one
    # pattern up when e has s's sign and one down otherwise.
    move = (e.abs() > 0).logical_and_((bits & 1) == 0)
    away = (bits ^ e.view(torch.int64)) >= 0
    step = torch.where(away, 1, -1).mul_(move)
    return (bits + step).view(torch.float64)


def two_sum_to_odd(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(RO53(a + b), RN(a + b))`` of two float64 tensors; the second is zero exactly when
    ``a + b`` is (used for the sign of exact zeros)."""
    s, e = two_sum(a, b)
    return to_odd(s, e), s


def signed_zero_sum(
    a: torch.Tensor, b: torch.Tensor, rounded: torch.Tensor, exact_sum: torch.Tensor, mode
) -> torch.Tensor:
    """Give exact zero sums ``a + b`` the sign IEEE 754 prescribes for ``mode``.

    Float64 addition (round to nearest) already gives ``+0`` for ``x + (-x)`` and ``-0`` only
    for ``(-0) + (-0)``, which is right for every mode but ``toward_negative``; there an exact
    zero sum is ``-0`` unless both addends are ``+0``. ``-((-a) + (-b))`` computes exactly that.
    """
    if mode is not RoundMode.TOWARD_NEGATIVE:
        return rounded
    return torch.where(exact_sum == 0, -((-a) + (-b)), rounded)


_F64_MAX = torch.finfo(torch.float64).max


def add_rounded(
    a: torch.Tensor,
    b: torch.Tensor,
    fmt: FloatFormat,
    mode: RoundMode,
    generator: torch.Generator | None,
    native: bool,
    *,
    beyond_float64: bool = False,
) -> torch.Tensor:
    """``a + b`` of float64 tensors, rounded once to ``fmt`` (float64 result).

    ``native``: ``fmt`` is fp64 with nearest_even (float64 addition is the rounding). Otherwise
    ``fmt`` must pass :func:`check_accumulation_format`; the sum goes through ``RO53``.
    ``beyond_float64``: finite ``a`` and ``b`` may have a sum beyond float64's range (a
    partial sum near ``2**1022`` plus a float64 term); such a sum becomes float64's ``±max``
    before the rounding, which then overflows by ``mode`` as the exact sum does (``fmt.max``
    is below ``2**1023``): toward zero to ``±fmt.max``, not to the infinity float64 gave.
    """
    if native:
        return a + b
    odd, exact = two_sum_to_odd(a, b)
    if beyond_float64:
        past = exact.isinf() & a.isfinite() & b.isfinite()
        odd = torch.where(past, torch.copysign(torch.full_like(odd, _F64_MAX), exact), odd)
    rounded = mperror.round(odd, fmt, mode, generator=generator)
    return signed_zero_sum(a, b, rounded, exact, mode)


def round_to(
    x: torch.Tensor,
    fmt: FloatFormat,
    mode: RoundMode,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """:func:`mperror.round` with the ops' argument order."""
    return mperror.round(x, fmt, mode, generator=generator)
