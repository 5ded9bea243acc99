"""Exact rounding of torch tensors to any :class:`~mperror.formats.FloatFormat`.

:func:`round` returns, in the input's dtype, the values of a format that a rounding mode picks.
It is bit-exact on every input (checked exhaustively against :mod:`mperror.reference`, the
rational-arithmetic oracle, and against torch's own casts where torch has the format).

How the kernel works. A float32 (float64) value is handled through its int32 (int64) bit
pattern ``m``, whose magnitude part is monotonic in the value:

* In the normal range of the target (``|x| >= 2**emin``) the format's values are the patterns
  whose ``d = 24 - p`` (``53 - p``) low bits are zero, so rounding is integer arithmetic: add an
  increment that depends on the mode, then clear the ``d`` low bits. A carry into the exponent
  field is exactly the step to the next binade, and past ``max`` it is detected by comparing
  patterns.
* Below ``2**emin`` the grid spacing is fixed (the subnormal spacing, or ``2**emin`` when the
  format has no subnormals), so the value is scaled to a fixed-point integer with ``G`` guard
  bits and a sticky bit, and the same integer rounding is applied to that integer. (Not for
  formats with subnormals whose ``emin`` is the storage's own, bf16 and tf32 from float32:
  there the storage's subnormal patterns are linear in the value, and the first rule holds.)
* Infinities, NaN and overflow are patched last; the sign is reattached, so ``-0`` stays ``-0``
  and NaN stays NaN (its payload too where this kernel sees the input's own bits; see
  :func:`round` for where it does not).

Nearest even to a format without a native cast (the small OCP formats, custom ones) whose
range float32 holds with room to spare is cheaper still: float32's own rounding of
``|x| + c``, with a shifter ``c`` built from ``|x|``'s exponent bits, lands on the format's
nearest-even value, in the subnormal range as well, and its exact error decides the other
modes, stochastic ones included (:func:`_round_by_addition`; used for those on the FP6 and FP4
formats).

float16 and bfloat16 inputs are widened to float32 (exactly) and narrowed back (exactly, since
the result is representable). float64 inputs are never simply cast to float32 first: that rounds
twice and gets values such as ``bf16(1 + 2**-8 + 2**-40)`` wrong. Either they go through the
int64 kernel, or, for deterministic modes and formats with ``p <= 22``, through a float32 reached
by round-to-odd, which keeps a sticky last bit and provably makes the second rounding exact
(:func:`_float32_detour_is_exact`).

Large CPU tensors are processed in chunks that fit in cache, which makes the eager kernel several
times faster than whole-tensor eager ops (fresh multi-megabyte temporaries cost page faults), and
large enough that torch splits each op across its threads (see ``_CHUNK``).
``compiled=True`` runs the same kernel fused by :func:`torch.compile`; its stochastic modes
compute their random bits inside the fused loop from a counter-based generator (SplitMix64 keyed
by one draw from the generator) instead of reading bits drawn beforehand, so they are
reproducible for a seed but differ from the eager path's bits.
"""

from __future__ import annotations

import builtins
import enum
import functools
import math
import operator
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mperror._checks import is_integer
from mperror.formats import (
    BF16,
    E4M3FN,
    E5M2,
    FP16,
    FloatFormat,
    FormatLike,
    Overflow,
    _holds,
    as_format,
    format_of_dtype,
)

__all__ = ["RoundMode", "round"]

# Chunks of 2**18 values (1 MiB of int32 per temporary) stay in cache and amortise the eager
# ops' per-call overhead, and each op splits them across torch's threads (its grain size is
# 2**15). Measured on 2 cores (10**7 fp16 values): 2**15 gave 116-166 M/s toward zero, 2**18
# 375 (two threads) and about 2**15's rate with the other core busy; 2**20 no better.
_CHUNK = 1 << 18


class RoundMode(str, enum.Enum):
    """Rounding modes. Each member's value is the string accepted in its place.

    With ``x`` between neighbouring format values ``lo < x < hi``:
    """

    #: nearest of ``lo``, ``hi``; a tie goes to the one with an even significand (IEEE default)
    NEAREST_EVEN = "nearest_even"
    #: nearest of ``lo``, ``hi``; a tie goes to the one larger in magnitude
    NEAREST_AWAY = "nearest_away"
    #: largest ``r`` with ``|r| <= |x|``
    TOWARD_ZERO = "toward_zero"
    #: ``hi``: smallest ``r >= x``
    TOWARD_POSITIVE = "toward_positive"
    #: ``lo``: largest ``r <= x``
    TOWARD_NEGATIVE = "toward_negative"
    #: the one of ``lo``, ``hi`` whose significand is odd (round to odd, for exact double rounding)
    ODD = "odd"
    #: ``|hi|``-side neighbour with probability ``(|x| - |lo|) / (|hi| - |lo|)``, else the other
    STOCHASTIC = "stochastic"
    #: either neighbour with probability 1/2
    STOCHASTIC_EQUAL = "stochastic_equal"

    @classmethod
    def parse(cls, mode: RoundMode | str) -> RoundMode:
        """``mode`` as a member; ValueError listing the allowed values otherwise."""
        if isinstance(mode, cls):
            return mode
        try:
            return cls(mode)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"mode must be one of {allowed}; got {mode!r}") from None

    @property
    def is_stochastic(self) -> bool:
        return self in (RoundMode.STOCHASTIC, RoundMode.STOCHASTIC_EQUAL)


@dataclass(frozen=True)
class _Layout:
    """Bit layout of a storage dtype (float32 or float64) and its integer twin."""

    float_dtype: torch.dtype
    int_dtype: torch.dtype
    mantissa_bits: int  # stored fraction bits: 23 or 52
    bias: int

    @property
    def width(self) -> int:
        return self.int_dtype.itemsize * 8

    @property
    def sign(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def magnitude_mask(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def inf_bits(self) -> int:
        return ((1 << (self.width - 1 - self.mantissa_bits)) - 1) << self.mantissa_bits

    @property
    def nan_bits(self) -> int:
        return self.inf_bits | (1 << (self.mantissa_bits - 1))

    def bits_of(self, value: float) -> int:
        """The bit pattern of a non-negative value exactly representable in the layout."""
        return int(torch.tensor(value, dtype=self.float_dtype).view(self.int_dtype).item())


_F32 = _Layout(torch.float32, torch.int32, 23, 127)
_F64 = _Layout(torch.float64, torch.int64, 52, 1023)


@dataclass(frozen=True)
class _Plan:
    """Everything the kernel needs for one (format, mode, random_bits, storage) combination.

    All fields are Python ints or flags, so the kernel has no data-dependent Python control flow
    and can be compiled.
    """

    layout: _Layout
    mode: RoundMode
    drop: int  # low bits cleared in the normal range
    # Precision 1: every normal significand is 1, which is odd, so ties-to-even rounds up and
    # truncation is already odd. (The stored bit above the dropped ones is an exponent bit.)
    significand_always_odd: bool
    random_bits: int | None
    emin_bits: int  # pattern of 2**emin
    max_bits: int  # pattern of fmt.max
    overflow_bits: int  # the policy's value, on overflow and for infinite inputs
    # Fixed-point branch below 2**emin: |x| * 2**(guard - q_exp) as an integer.
    q_exp: int  # exponent of the grid spacing below 2**emin
    q_scale: float  # 2**q_exp
    guard: int  # guard bits of the fixed-point integer
    scale_up: tuple[float, ...]  # factors (powers of two) that form |x| * 2**(guard - q_exp)
    may_underflow: bool  # the scaling can underflow (only when guard < q_exp)
    # Anchored branch below 2**emin: A = 2**(q_exp + p - 1) + |x| lies in a binade whose grid
    # spacing is 2**q_exp, so the normal-range integer rounding applies to it (see
    # _round_small_anchored). None where that is not exact or not representable.
    anchor: float | None
    # The format's grid below 2**emin is the storage's own subnormal grid coarsened by 2**drop
    # (a format with subnormals, p >= 2 and the storage's emin: bf16 and tf32 from float32).
    # Subnormal patterns are then linear in the value, so the normal-range integer rounding is
    # exact for them too, and the fix-up below 2**emin is not needed.
    small_is_linear: bool


@functools.lru_cache(maxsize=512)
def _float32_kernel_holds(fmt: FloatFormat) -> bool:
    """Can the float32 kernel round to ``fmt``? float32 must hold ``fmt``, and ``2**emin`` must
    be a float32 normal number: below ``2**-126`` float32 patterns are subnormal, and clearing
    their low bits is not rounding to ``fmt`` (a format with ``emin < -126`` is rounded in
    float64 instead, whatever the input dtype)."""
    return _holds(_FP32, fmt) and fmt.emin >= _FP32.emin


@functools.lru_cache(maxsize=512)
def _plan(fmt: FloatFormat, mode: RoundMode, random_bits: int | None, layout: _Layout) -> _Plan:
    p = fmt.precision
    max_bits = layout.bits_of(fmt.max)
    overflow_bits = {
        Overflow.INF: layout.inf_bits,
        Overflow.SATURATE: max_bits,
        Overflow.NAN: layout.nan_bits,
    }[fmt.overflow]
    q_exp = fmt.emin - p + 1 if fmt.subnormals else fmt.emin
    # Guard bits: as many as the random integer of the layout supplies (31 for int32 draws, 63 for
    # int64), but the fixed-point integer (< 2**(p - 1 + guard)) must stay below 2**62.
    guard = 31 if layout is _F32 else 62 - p
    shift = guard - q_exp
    scale_up: list[float] = []
    while shift > 0:  # 2**shift may exceed float64's range: split it into representable steps
        step = min(shift, 1000)
        scale_up.append(math.ldexp(1.0, step))
        shift -= step
    if shift < 0:
        scale_up.append(math.ldexp(1.0, shift))
    return _Plan(
        layout=layout,
        mode=mode,
        drop=layout.mantissa_bits + 1 - p,
        significand_always_odd=p == 1,
        random_bits=random_bits,
        emin_bits=layout.bits_of(fmt.smallest_normal),
        max_bits=max_bits,
        overflow_bits=overflow_bits,
        q_exp=q_exp,
        q_scale=math.ldexp(1.0, q_exp),
        guard=guard,
        scale_up=tuple(scale_up),
        may_underflow=guard < q_exp,
        anchor=_anchor(fmt, mode, q_exp, layout),
        small_is_linear=(
            fmt.subnormals and p >= 2 and fmt.emin == format_of_dtype(layout.float_dtype).emin
        ),
    )


def _anchor(fmt: FloatFormat, mode: RoundMode, q_exp: int, layout: _Layout) -> float | None:
    """``A = 2**(q_exp + p - 1)`` if the anchored small-magnitude rounding is exact here.

    It needs: a deterministic mode (stochastic rounding wants more fraction bits than the
    anchored pattern keeps); ``p >= 2`` (``A / 2**q_exp = 2**(p - 1)`` must be even so that
    parities carry over); at least two dropped bits (a round bit above the sticky bit); and ``2A``
    finite in the storage format.
    """
    store = format_of_dtype(layout.float_dtype)
    exponent = q_exp + fmt.precision - 1
    drop = layout.mantissa_bits + 1 - fmt.precision
    if mode.is_stochastic or fmt.precision < 2 or drop < 2 or exponent + 1 > store.emax:
        return None
    return math.ldexp(1.0, exponent)


def _round_integer(
    m: torch.Tensor,
    drop: int,
    plan: _Plan,
    negative: torch.Tensor | None,
    rand: torch.Tensor | None,
    *,
    significand_always_odd: bool = False,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Round non-negative integers ``m`` to multiples of ``2**drop`` by ``plan.mode`` (into
    ``out`` when given, a tensor like ``m`` that is not ``m``: fresh temporaries cost page
    faults on a CPU).

    ``negative`` (the sign of the value ``m`` encodes, as an integer mask: -1 where negative,
    0 elsewhere; bool tensors cost several times an integer op on CPU) is needed by the
    directed modes; ``rand`` (uniform integers with at least ``drop`` random low bits) by the
    stochastic ones. Every mode is "add an increment, clear the low bits": the increment never
    exceeds ``2**drop - 1``, so the result is one of the two neighbouring multiples.
    """
    if drop <= 0:
        return m.clone() if out is None else out.copy_(m)
    mask = (1 << drop) - 1
    keep = -(1 << drop)  # == ~mask: clears the dropped bits
    half = 1 << (drop - 1)
    mode = plan.mode
    if mode is RoundMode.NEAREST_EVEN and not significand_always_odd:
        # half - 1 rounds ties down; the kept part's last bit turns a tie at odd into up.
        inc = torch.bitwise_right_shift(m, drop, out=out).bitwise_and_(1)
        inc += half - 1
    elif mode in (RoundMode.NEAREST_EVEN, RoundMode.NEAREST_AWAY):
        return (m + half) & keep
    elif mode is RoundMode.TOWARD_ZERO:
        return m & keep
    elif mode in (RoundMode.TOWARD_POSITIVE, RoundMode.TOWARD_NEGATIVE):
        assert negative is not None
        away = ~negative if mode is RoundMode.TOWARD_POSITIVE else negative
        inc = away.to(m.dtype) & mask
    elif mode is RoundMode.ODD:
        kept = m & keep
        if significand_always_odd:
            return kept
        # (m & mask) + mask carries into bit `drop` exactly when some dropped bit is set
        return kept | (((m & mask) + mask) & (1 << drop))
    elif mode is RoundMode.STOCHASTIC:
        assert rand is not None
        k = plan.random_bits
        if k is None or k >= drop:
            inc = torch.bitwise_and(rand, mask, out=out)
        else:
            # Few-bit SR: k random bits just below the kept part, the rest of m truncated.
            inc = (rand & ((1 << k) - 1)) << (drop - k)
    else:  # STOCHASTIC_EQUAL
        assert rand is not None
        # Increment 2**drop - 1 with probability 1/2: it carries into the kept bits exactly
        # when some dropped bit is set, so an exact value never moves.
        inc = (rand & 1).mul_(mask)
    inc += m
    return inc.bitwise_and_(keep)


def _round_small(
    m: torch.Tensor, plan: _Plan, negative: torch.Tensor | None, rand: torch.Tensor | None
) -> torch.Tensor:
    """Round magnitudes below ``2**emin`` (patterns ``m``) on the fixed grid ``2**q_exp``.

    The value is scaled to ``F = |x| * 2**(guard - q_exp)``, exactly in float64 (a power-of-two
    scaling that stays inside float64's range), then the integer ``floor(F)`` with the sticky bit
    ``F != floor(F)`` or'ed in is rounded with ``drop = guard``. With ``guard >= 2`` the kept
    bits, the round bit and the sticky bit decide every deterministic mode exactly; stochastic
    rounding sees the fraction to ``guard`` bits with the sticky bit in the last of them, so
    the probability is ``(floor(F') | 1) / 2**guard`` (``F'`` the fraction times
    ``2**guard``) where the fraction has more bits: within ``2**-guard`` of the exact one,
    either way. Few-bit stochastic rounding (``random_bits``) gets no
    sticky bit: it truncates what lies below its bits, here below the ``guard`` bits too.
    """
    layout = plan.layout
    x = m.view(layout.float_dtype).to(torch.float64)
    scaled = x
    for factor in plan.scale_up:
        scaled = scaled * factor
    whole = torch.floor(scaled)
    sticky = scaled != whole
    if plan.may_underflow:
        sticky |= (whole == 0) & (x != 0)
    fixed = whole.to(torch.int64)
    if not (plan.mode is RoundMode.STOCHASTIC and plan.random_bits is not None):
        fixed |= sticky.to(torch.int64)  # few-bit SR truncates what it does not see: no sticky
    wide_rand = None if rand is None else rand.to(torch.int64)
    kept = _round_integer(fixed, plan.guard, plan, negative, wide_rand)
    value = (kept >> plan.guard).to(torch.float64) * plan.q_scale
    return value.to(layout.float_dtype).view(layout.int_dtype)


def _round_small_anchored(
    m: torch.Tensor, plan: _Plan, negative: torch.Tensor | None
) -> torch.Tensor:
    """Round magnitudes below ``2**emin`` through the anchor ``A`` (deterministic modes).

    ``A + |x|`` lies in ``[A, 2A)``, whose grid spacing is ``2**q_exp``, the spacing below
    ``2**emin``; its significand differs from that of ``|x|`` on the small grid by
    ``A / 2**q_exp = 2**(p-1)``, an even number, so every mode decides alike. The sum is formed
    in the integer domain (``|x|``'s significand shifted into ``A``'s binade, with a sticky bit
    for what falls off), rounded with the normal-range integer rounding, and ``A`` subtracted
    in floating point, exactly (both lie in ``[A, 2A]``). Only int ops of the storage width: no
    float64, no gathers. Elements at or above ``2**emin`` give garbage, to be masked off.
    """
    layout = plan.layout
    assert plan.anchor is not None
    anchor_bits = layout.bits_of(plan.anchor)
    exponent = (m >> layout.mantissa_bits).clamp_min_(1)  # float subnormals share exponent 1
    significand = m - ((exponent - 1) << layout.mantissa_bits)
    shift = (anchor_bits >> layout.mantissa_bits) - exponent
    shift.clamp_(0, layout.width - 1)
    kept = significand >> shift
    sticky = (kept << shift) != significand
    kept.bitwise_or_(sticky.to(m.dtype)).add_(anchor_bits)
    rounded = _round_integer(kept, plan.drop, plan, negative, None)
    return (rounded.view(layout.float_dtype) - plan.anchor).view(layout.int_dtype)


def _kernel(
    b: torch.Tensor,
    rand: torch.Tensor | None,
    plan: _Plan,
    *,
    eager: bool,
    out: torch.Tensor | None = None,
    deferred: list[torch.Tensor] | None = None,
    scratch: torch.Tensor | None = None,
) -> torch.Tensor:
    """Round the bit patterns ``b`` (int32/int64, 1-D) and return the result's bit patterns.

    The common case is a few integer ops. Three fix-ups are rarer: magnitudes below
    ``2**emin`` (none where ``plan.small_is_linear``), overflow, and infinite or NaN inputs.
    With ``eager`` each runs only when a cheap integer reduction shows that the chunk needs it,
    and only on the elements that need it (bool-mask ops cost several times an integer op on
    CPU); otherwise, for torch.compile, they are computed everywhere and selected, with no
    data-dependent control flow. A caller that
    passes the list ``deferred`` gets the indices of a few scattered magnitudes below
    ``2**emin`` (at most an eighth of the chunk) appended to it instead, their results left
    wrong, to round them all at once with :func:`_round_small_patterns` (each fix-up costs a
    dozen small ops, whatever its size).
    """
    layout = plan.layout
    # With ``scratch`` (two rows at least as long as ``b``, reused from chunk to chunk) and
    # ``out``, the temporaries and the result take no fresh memory: on a CPU, a fresh tensor of
    # a chunk's size costs page faults, about as much as an operation on it.
    n = b.numel()
    work = (None, None) if scratch is None or out is None else (scratch[0, :n], scratch[1, :n])
    m = torch.bitwise_and(b, layout.magnitude_mask, out=work[0])
    directed = plan.mode in (RoundMode.TOWARD_POSITIVE, RoundMode.TOWARD_NEGATIVE)
    negative = b >> (layout.width - 1) if directed else None  # -1 where negative
    r = _round_integer(
        m,
        plan.drop,
        plan,
        negative,
        rand,
        significand_always_odd=plan.significand_always_odd,
        out=None if work[0] is None else out,
    )
    # Nonzero magnitudes below 2**emin: (m - 1) wraps zero to the top, out of the range.
    if plan.small_is_linear:
        below = None  # the integer rounding above was exact there too
    else:
        below = torch.sub(m, 1, out=work[1]).bitwise_and_(layout.magnitude_mask)
    if not eager:
        if below is not None:
            if plan.anchor is not None:  # integer ops only: cheaper than the float64 fixed point
                small_result = _round_small_anchored(m, plan, negative)
            else:
                small_result = _round_small(m, plan, negative, rand)
            r = torch.where(below < plan.emin_bits - 1, small_result, r)
        r = _fix_overflow_and_specials(m, r, negative, plan)
    elif m.numel():  # the reductions below refuse empty tensors
        if below is not None and int(below.amin()) < plan.emin_bits - 1:
            small = below < plan.emin_bits - 1
            dense = 8 * int(torch.count_nonzero(small)) > small.numel()
            if plan.anchor is not None and dense:
                r = torch.where(small, _round_small_anchored(m, plan, negative), r)
            else:
                index = small.nonzero().squeeze(1)
                if deferred is not None and not dense:  # dense ones now: bounded temporaries
                    deferred.append(index)
                else:
                    sub_neg = None if negative is None else negative[index]
                    sub_rand = None if rand is None else rand[index]
                    r[index] = _round_small(m[index], plan, sub_neg, sub_rand)
        # A magnitude up to max rounds to at most max (a value of the format): only larger
        # ones (infinities and NaNs among them) can need the fix-up.
        if int(m.amax()) > plan.max_bits:
            r = _fix_overflow_and_specials(m, r, negative, plan)
    sign = torch.bitwise_and(b, layout.sign, out=work[1])  # ``below`` is no longer needed
    return torch.bitwise_or(r, sign, out=out) if out is not None else r.bitwise_or_(sign)


def _round_small_patterns(b: torch.Tensor, rand: torch.Tensor | None, plan: _Plan) -> torch.Tensor:
    """The rounded patterns of ``b``, all of magnitude below ``2**emin`` (and nonzero), sign
    included: the fix-up :func:`_kernel` deferred."""
    layout = plan.layout
    directed = plan.mode in (RoundMode.TOWARD_POSITIVE, RoundMode.TOWARD_NEGATIVE)
    negative = b >> (layout.width - 1) if directed else None  # -1 where negative
    r = _round_small(b & layout.magnitude_mask, plan, negative, rand)
    return r.bitwise_or_(b & layout.sign)


def _fix_overflow_and_specials(
    m: torch.Tensor, r: torch.Tensor, negative: torch.Tensor | None, plan: _Plan
) -> torch.Tensor:
    """Patch rounded magnitudes ``r`` beyond ``max``, and results of infinite or NaN inputs."""
    over = r > plan.max_bits
    if plan.mode is RoundMode.TOWARD_ZERO:
        r = r.masked_fill(over, plan.max_bits)
    elif plan.mode in (RoundMode.TOWARD_POSITIVE, RoundMode.TOWARD_NEGATIVE):
        assert negative is not None
        # A directed mode that rounded toward zero at this sign stops at max (IEEE 754).
        toward_zero = (negative if plan.mode is RoundMode.TOWARD_POSITIVE else ~negative) != 0
        r = torch.where(over & toward_zero, plan.max_bits, torch.where(over, plan.overflow_bits, r))
    else:
        r = r.masked_fill(over, plan.overflow_bits)
    # NaN keeps its payload (m itself); an infinity becomes what the policy says. The rounding
    # above may have wrapped a NaN pattern negative, so this test reads m, not r.
    inf_bits = plan.layout.inf_bits
    return torch.where(m >= inf_bits, torch.where(m > inf_bits, m, plan.overflow_bits), r)


@functools.lru_cache(maxsize=512)
def _addition_applies(fmt: FloatFormat, mode: RoundMode) -> bool:
    """Does :func:`_round_by_addition` round float32 values to ``fmt`` by ``mode``, exactly and
    faster than the integer kernel?

    Exact needs: subnormals (below ``2**emin`` the spacing must stay the subnormal one);
    ``2 <= p <= 22`` (the shifter's binade must hold every magnitude of a binade of ``fmt``);
    the largest shifter, ``1.5 * 2**(emax + 1 + 24 - p)`` for inputs clamped to ``2 max``,
    finite in float32; and a smallest spacing of at least ``2**-124``, so that float32
    subnormal inputs, which round to zero whatever the hardware does with them (some flush
    them), never matter. Faster: always for nearest even; for the other modes (a few more
    operations; stochastic ones draw their random bits as the integer kernel does) only where
    ``2**emin >= 1/8`` (the FP6 and FP4 formats), where data of unit scale mostly lie below
    ``2**emin`` and the integer kernel would take its slower fixed-point branch on most chunks.
    (Few-bit stochastic rounding, ``random_bits``, stays with the integer kernel.)
    """
    return (
        (mode is RoundMode.NEAREST_EVEN or fmt.emin >= -3)
        and fmt.subnormals
        and 2 <= fmt.precision <= 22
        and fmt.emax + 1 + 24 - fmt.precision <= _FP32.emax
        and fmt.emin - fmt.precision + 1 >= -124
        and _float32_kernel_holds(fmt)
    )


@functools.lru_cache(maxsize=512)
def _addition_plan(fmt: FloatFormat, mode: RoundMode) -> tuple[_Plan, int, float]:
    """The integer kernel's plan (``2**emin``'s and ``max``'s patterns, the overflow fix-up),
    the format's precision and the clamp ``2 max``: plain constants, so that the compiled
    kernel traces no format and no cache."""
    return _plan(fmt, mode, None, _F32), fmt.precision, 2 * fmt.max


def _round_by_addition(
    x: torch.Tensor,
    fmt: FloatFormat,
    mode: RoundMode,
    rand: torch.Tensor | None = None,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Round float32 ``x`` to ``fmt`` by ``mode`` with float32 additions, into ``out`` when given
    (``rand``: the random integers of a stochastic mode, at least 31 random low bits each).

    For ``|x|`` in the binade ``[2**e, 2**(e+1))``, ``E = max(e, emin)``, the format's spacing
    is ``s = 2**(E - p + 1)`` (in the subnormal range too). The shifter
    ``c = 1.5 * 2**(E + 24 - p)`` (exponent bits of ``|x|``, raised to ``emin``, plus a
    constant) has float32 spacing ``s``, and ``c + |x|`` stays in ``c``'s binade since
    ``|x| < 2**(E+1) <= 2**(E + 23 - p)``. So float32's own rounding of ``t = c + |x|`` picks
    the nearest multiple of ``s``, ties to the even multiple (``c / s = 3 * 2**22`` is even),
    and ``q = t - c`` is that multiple exactly (Sterbenz): the nearest-even value. Its error
    ``|x| - q`` is exact too (Sterbenz again, or ``q = 0``), and decides the other modes:
    truncation is ``q`` less ``s`` where ``q`` rounded up; the magnitude goes up from there when
    the mode and the sign say so (``toward_positive`` / ``toward_negative``), at a tie that
    nearest even rounded down (``nearest_away``); ``odd`` steps ``t``'s pattern back where
    ``q`` rounded up and sets its last bit where inexact (in ``t``'s binade a pattern step is
    ``s``, and the last bit is the parity of the multiple of ``s``, ``c / s`` being even).
    Stochastic rounding goes up from the truncation with probability ``f = frac / s``
    (``frac = |x| - truncation``, exact): with ``R`` the 31 low random bits, up when
    ``R < ceil(f 2**31)`` (``f 2**31 = frac / s * 2**31`` exactly, power-of-two scalings), so
    ``P(up) = ceil(f 2**31) / 2**31``: ``f`` itself when ``f`` has at most 31 bits, otherwise
    above it by less than ``2**-31``, as in the integer kernel; ``stochastic_equal`` goes up
    with probability 1/2 when inexact. Inputs are clamped to ``2 max`` first (overflowing
    either way, without overflowing ``c``); only when some magnitude exceeds ``max`` (or is
    infinite or NaN) does the integer kernel's fix-up patch overflow and specials. The sign
    comes back last by ``copysign``.
    """
    return _addition_kernel(x, rand, *_addition_plan(fmt, mode), out=out, eager=True)


def _addition_kernel(
    x: torch.Tensor,
    rand: torch.Tensor | None,
    plan: _Plan,
    precision: int,
    clamp: float,
    *,
    out: torch.Tensor | None,
    eager: bool,
) -> torch.Tensor:
    """:func:`_round_by_addition` on plain constants (:func:`_addition_plan`). With ``eager``
    the overflow fix-up runs only when some magnitude needs it; otherwise (for torch.compile)
    always, with no data-dependent control flow."""
    # In-place steps where the operand is not needed again (fresh temporaries cost time), and
    # integer masks (0 or -1, from arithmetic shifts of sign bits) instead of bool tensors,
    # which cost several times an integer op on CPU.
    mode = plan.mode
    a = x.abs().clamp_max_(clamp)
    bits = a.view(torch.int32)
    exponent = bits.bitwise_and(_F32.inf_bits).clamp_min_(plan.emin_bits)
    offset = ((24 - precision) << 23) | (1 << 22)
    if mode is RoundMode.NEAREST_EVEN:
        shifter = exponent.add_(offset).view(torch.float32)
        r = torch.add(a, shifter).sub_(shifter)
    else:
        shifter = (exponent + offset).view(torch.float32)
        total = a + shifter
        r = total - shifter
        spacing = exponent.sub_((precision - 1) << 23)  # the pattern of s
        error = (a - r).view(torch.int32)  # exact; +0 where exact, never -0
        rounded_up = error >> 31  # -1 where the error is negative
        if mode not in (RoundMode.TOWARD_ZERO, RoundMode.NEAREST_AWAY, RoundMode.STOCHASTIC):
            inexact = error.bitwise_and(_F32.magnitude_mask).neg_() >> 31  # -1 where nonzero
        if mode is RoundMode.ODD:
            # In t's binade one pattern step is s: step back where q rounded up (truncation),
            # then set the last bit where inexact (the parity of the multiple of s).
            odd = total.view(torch.int32).add_(rounded_up).bitwise_or_(inexact & 1)
            r = odd.view(torch.float32) - shifter
        elif mode is RoundMode.NEAREST_AWAY:
            # a tie that nearest even rounded down: error == s / 2 (pattern s less one binade)
            differs = error ^ (spacing - (1 << 23))
            tie = (differs | -differs) >> 31  # -1 where not a tie
            r += (spacing & ~tie).view(torch.float32)
        else:
            r -= (spacing & rounded_up).view(torch.float32)  # truncation
            if mode is RoundMode.STOCHASTIC:
                assert rand is not None
                # f 2**31 = frac * (2**31 / s), exact: the factor is a power of two, formed
                # from s's exponent bits (s = 2**e has pattern (e + 127) << 23, the factor
                # 2**(31 - e) pattern (285 << 23) - that). A product, not a quotient: Triton
                # may compile float32 division to an approximate instruction.
                factor = ((285 << 23) - spacing).view(torch.float32)
                threshold = (a - r).mul_(factor).ceil_().int()
                up = ((rand & 0x7FFFFFFF) - threshold) >> 31  # -1 where R < threshold
            elif mode is RoundMode.STOCHASTIC_EQUAL:
                assert rand is not None
                up = (rand & 1).neg_() & inexact
            elif mode is RoundMode.TOWARD_ZERO:
                up = None
            else:
                sign = x.view(torch.int32) >> 31  # -1 where x is negative
                up = (sign if mode is RoundMode.TOWARD_NEGATIVE else ~sign) & inexact
            if up is not None:
                r += (spacing & up).view(torch.float32)
    if not eager or (r.numel() and int(bits.amax()) > plan.max_bits):
        directed = mode in (RoundMode.TOWARD_POSITIVE, RoundMode.TOWARD_NEGATIVE)
        m = x.view(torch.int32) & _F32.magnitude_mask
        negative = x.view(torch.int32) >> 31 if directed else None
        r = _fix_overflow_and_specials(m, r.view(torch.int32), negative, plan).view(torch.float32)
    if out is None:
        return torch.copysign(r, x)
    return torch.copysign(r, x, out=out)


def _layout_for(dtype: torch.dtype) -> _Layout:
    return _F64 if dtype == torch.float64 else _F32


_NATIVE_CASTS: dict[FloatFormat, torch.dtype] = {
    FP16: torch.float16,
    BF16: torch.bfloat16,
    E5M2: torch.float8_e5m2,
    E4M3FN: torch.float8_e4m3fn,
}


def _native_cast(fmt: FloatFormat, mode: RoundMode, storage: torch.dtype) -> torch.dtype | None:
    """A torch dtype whose cast from float32 is bit-identical to this rounding, if any.

    torch's float32 -> float16 / bfloat16 / float8_e5m2 / float8_e4m3fn casts round to nearest
    even with these formats' overflow rules (e4m3fn saturating, as torch 2.13 does); the
    exhaustive tests hold them to the reference. float64 inputs never take this path: torch casts
    float64 through float32, which rounds twice. Callers use the cast only where
    :func:`_cast_agrees` on the tensor's device type.
    """
    if storage != torch.float32 or mode is not RoundMode.NEAREST_EVEN:
        return None
    return _NATIVE_CASTS.get(fmt)


@functools.lru_cache(maxsize=32)
def _cast_agrees(fmt: FloatFormat, native: torch.dtype, device_type: str) -> bool:
    """Does torch's float32 -> ``native`` cast on ``device_type`` round to ``fmt`` by nearest
    even on the inputs where implementations part ways? Checked once, against the reference.

    Casts differ between torch versions and devices: until pytorch#178817 (merged April 2026,
    after torch 2.11) the float8_e4m3fn cast gave NaN past 464 instead of saturating to 448, and
    CUDA converts with code of its own. Where the check fails the kernel rounds instead.
    """
    from mperror.reference import round_scalar  # reference imports this module

    top = math.ldexp(1.0, fmt.emax - fmt.precision + 1)  # the spacing at max
    tiny = fmt.smallest_subnormal if fmt.subnormals else fmt.smallest_normal
    one_tie = 1 + math.ldexp(1.0, -fmt.precision)
    probes = torch.tensor(
        [fmt.max, fmt.max + top / 2, fmt.max + top, 4 * fmt.max, math.inf, math.nan, 0.0,
         one_tie, one_tie + math.ldexp(1.0, 1 - fmt.precision), tiny / 2, 1.5 * tiny],
        dtype=torch.float32,
    )  # fmt: skip
    probes = torch.cat([probes, torch.nextafter(probes, probes.new_tensor(math.inf)), -probes])
    got = probes.to(device_type).to(native).float().cpu()
    expected = torch.tensor([round_scalar(v, fmt) for v in probes.tolist()])
    same = got.view(torch.int32) == expected.view(torch.int32)
    return bool((same | (got.isnan() & expected.isnan())).all())


def _check_tensor(x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(
            f"x must be a floating-point or complex tensor (float16, bfloat16, float32, float64, "
            f"complex64, complex128), got {x.dtype}"
        )
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64) and not (
        x.is_complex() and x.dtype in (torch.complex64, torch.complex128)
    ):
        raise TypeError(
            f"x has dtype {x.dtype}; supported: float16, bfloat16, float32, float64, complex64, "
            "complex128"
        )
    return x


def _check_random_bits(random_bits: object, mode: RoundMode) -> int | None:
    if random_bits is None:
        return None
    if mode is not RoundMode.STOCHASTIC:
        raise ValueError(f"random_bits applies to mode 'stochastic' only, got mode {mode.value!r}")
    if not is_integer(random_bits) or random_bits < 1:
        raise ValueError(f"random_bits must be a positive int or None, got {random_bits!r}")
    return operator.index(random_bits)


# Nesting depth, per thread, of mperror's explicit operations (round, mperror.ops, store_):
# while it is positive, an open mperror.emulate block lets every operator through, since these
# define their own arithmetic (rounding x to fp16 inside an emulated bf16 block gives fp16(x)).
_EXPLICIT = threading.local()


def explicit(fn: Callable) -> Callable:
    """``fn`` run as written inside :func:`mperror.emulate` blocks too (see ``_EXPLICIT``)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        depth = getattr(_EXPLICIT, "depth", 0)
        _EXPLICIT.depth = depth + 1
        try:
            return fn(*args, **kwargs)
        finally:
            _EXPLICIT.depth = depth

    return run


@explicit
def round(
    x: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    generator: torch.Generator | None = None,
    random_bits: int | None = None,
    compiled: bool = False,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Round every element of ``x`` to a value of ``fmt``.

    Args:
        x: a float16, bfloat16, float32 or float64 tensor (complex64/complex128: the real and
            imaginary parts are rounded separately), any shape, CPU or CUDA.
        fmt: the target format (a FloatFormat, a preset name such as ``"fp16"``, or a dtype).
        mode: a :class:`RoundMode` or its value string.
        generator: the torch.Generator the stochastic modes draw from (on ``x``'s device);
            ``None`` uses torch's default generator. The same seed gives the same result on the
            same device and chunking.
        random_bits: ``k`` for few-bit stochastic rounding as hardware does it: ``k`` random bits
            are added just below the kept bits and the rest is truncated, so the value goes up with
            probability ``floor(2**k f) / 2**k`` instead of ``f`` (the distance fraction). It is
            biased toward zero by up to ``2**-k`` spacings (exact when ``f`` has at most ``k``
            bits, e.g. whenever ``k`` is at least the number of bits dropped). Below ``2**emin``
            at most ``G`` bits of ``f`` are seen (the guard bits, see below), so there it goes
            up with probability ``floor(2**j f) / 2**j``, ``j = min(k, G)``.
        compiled: run the kernel fused by :func:`torch.compile` (compiled once per format, mode,
            dtype and device, then cached; the first call pays the compilation). Deterministic
            modes give the eager path's values bit for bit (NaN payloads aside: the fused
            kernel replaces torch's float8 casts, and keeps payloads). Stochastic modes draw one
            int64 key from ``generator`` and compute the random bits in the fused kernel:
            element ``i`` gets output ``i + 1`` of SplitMix64 seeded with the key (a
            counter-based stream, no bits written to or read from memory), so the same seed
            gives the same result, but not the eager path's.
        dtype: the dtype of the result (complex for complex ``x``); default ``x``'s dtype. It must
            hold every value of ``fmt``, or ValueError names the narrowest that does (a float16
            tensor rounded to bf16 needs ``dtype=torch.bfloat16`` or wider). Asking for a
            narrower result than the input (float64 in, float32 out) saves a conversion.

    Semantics (the same as :func:`mperror.reference.round_scalar`): signed zeros are kept, NaN
    stays NaN, overflow follows ``fmt.overflow`` (see :class:`~mperror.formats.Overflow`). A NaN's
    payload and sign are kept by the integer kernel on float32 and float64 inputs, and are not
    promised otherwise: torch's widening of float16 and bfloat16 NaNs, the float32 detour of
    float64 inputs and torch's native casts (nearest even to fp16, bf16, e5m2, e4m3fn) may each
    return a NaN of their own, and so may the float64 kernel that formats with ``emin < -126``
    take for float32 inputs (it quiets a signalling NaN). Without subnormals, values below the
    smallest normal are rounded by the mode to the set ``{0, ±2**emin}`` (a tie, ``2**emin / 2``,
    goes to 0 under nearest even and to ``±2**emin`` under nearest away, round-to-odd goes to
    ``±2**emin``, stochastic rounding goes up with probability ``|x| / 2**emin``).

    Stochastic rounding goes up with probability exactly the distance fraction ``f`` in the
    normal range of the format (there ``f`` has at most 23 bits for float32 inputs, 52 for
    float64, and 31, resp. 63, random bits are drawn per element). Below ``2**emin`` the value
    becomes a fixed-point integer with ``G`` guard bits, ``G = 31`` for float32 inputs and
    ``62 - p`` for float64: the probability is exactly ``f`` when ``f`` has at most ``G`` bits
    after the binary point of the spacing, and otherwise differs from ``f`` by less than
    ``2**-G``, either way: ``P(up) = (floor(f 2**G) | 1) / 2**G``, the sticky bit setting the
    last guard bit (for fp16 and a float64 input ``2**-24 + 2**-76``, ``f = 2**-52`` but
    ``P(up) = 2**-51``; for ``2**-24 + 3 * 2**-76``, ``f = 3 * 2**-52`` but ``P(up) = 2**-51``).
    The float32-addition path of the FP6 and FP4 formats goes up with probability
    ``ceil(f 2**31) / 2**31`` instead, never below ``f``.
    bf16 and tf32 from float32 inputs share float32's ``emin``: their ``f`` has at most
    ``24 - p`` bits below ``2**emin`` too, and the probability is exactly ``f``.

    The result has ``x``'s layout (strides) where ``x``'s is dense, as torch's elementwise
    operators give. The gradient, when ``x`` requires one, is passed straight through
    (identity), as in quantisation-aware training.

    >>> x = torch.tensor([1.0, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, -0.0, 70000.0])
    >>> round(x, "fp16")
    tensor([1.0000, 1.0000, 1.0020, -0.0000, inf])
    >>> round(x, "fp16", "toward_zero")[-1].item()
    65504.0
    """
    x = _check_tensor(x)
    fmt = as_format(fmt)
    mode = RoundMode.parse(mode)
    random_bits = _check_random_bits(random_bits, mode)
    dtype = _check_dtype(dtype, x, fmt)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != x.device.type:
            raise ValueError(
                f"generator is on {generator.device} but x is on {x.device}; they must match"
            )
    if x.requires_grad and torch.is_grad_enabled():
        return _StraightThrough.apply(x, fmt, mode, generator, random_bits, compiled, dtype)
    return _round(x.detach(), fmt, mode, generator, random_bits, compiled, dtype)


_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_dtype(dtype: torch.dtype | None, x: torch.Tensor, fmt: FloatFormat) -> torch.dtype:
    """The result dtype: ``x``'s by default; it must be real/complex like ``x`` and hold fmt."""
    if dtype is None:
        dtype = x.dtype
    allowed = tuple(_REAL_OF) if x.is_complex() else _FLOATS
    if dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise ValueError(f"dtype must be one of {names} for a {x.dtype} input, got {dtype}")
    if not _holds(format_of_dtype(_REAL_OF.get(dtype, dtype)), fmt):
        # float64 (complex128) holds every format, so some dtype of x's kind does
        wider = next(d for d in allowed if _holds(format_of_dtype(_REAL_OF.get(d, d)), fmt))
        raise ValueError(_wider_dtype_message(fmt, dtype, wider))
    return dtype


def _round(
    x: torch.Tensor,
    fmt: FloatFormat,
    mode: RoundMode,
    generator: torch.Generator | None,
    random_bits: int | None,
    compiled: bool,
    dtype: torch.dtype,
) -> torch.Tensor:
    # A lazily negated view (``z.conj().imag``) cannot be viewed as integers: resolve it.
    x = x.resolve_neg()
    return _keep_layout(x, _route(fmt, mode, random_bits, compiled, x.dtype, dtype)(x, generator))


def _keep_layout(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``r``, the rounded values of ``x``, laid out as ``x`` is (permuted, channels_last), as
    torch's elementwise operators lay out their results: the kernels work on flattened copies
    and return contiguous tensors. Overlapping layouts (expanded inputs) stay contiguous."""
    if r.stride() == x.stride() or r.numel() <= 1:
        return r
    laid = torch.empty_like(x, dtype=r.dtype)
    return laid.copy_(r) if laid.stride() == x.stride() else r


_Rounder = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


@functools.lru_cache(maxsize=1024)
def _route(
    fmt: FloatFormat,
    mode: RoundMode,
    random_bits: int | None,
    compiled: bool,
    x_dtype: torch.dtype,
    dtype: torch.dtype,
    *,
    native_casts: bool = True,
) -> _Rounder:
    """The rounding of a ``x_dtype`` tensor to ``fmt``, stored in ``dtype``: every decision that
    depends on the arguments alone, taken once (the emulator rounds hundreds of small tensors
    per training step, where these decisions would cost more than the rounding).
    ``native_casts=False`` gives the route that does without torch's casts, taken where a cast
    disagrees with ``fmt`` on the tensor's device."""
    if x_dtype.is_complex:
        real_dtypes = (_REAL_OF[x_dtype], _REAL_OF[dtype])
        real = _route(fmt, mode, random_bits, compiled, *real_dtypes, native_casts=native_casts)

        def complex_parts(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
            return torch.view_as_complex(real(torch.view_as_real(x.resolve_conj()), generator))

        return complex_parts

    # Work in float32 where it holds fmt (float16/bfloat16 widen exactly), else in float64.
    work = (
        torch.float64
        if x_dtype == torch.float64 or not _float32_kernel_holds(fmt)
        else torch.float32
    )
    if fmt == format_of_dtype(work):
        return lambda x, generator: x.to(work).to(dtype, copy=True)
    native = _native_cast(fmt, mode, work) if native_casts else None
    # torch's float8 casts run element by element on CPU; compiled, the fused kernel is faster
    if native is not None and not (compiled and native.itemsize == 1):
        kernel = _route(fmt, mode, random_bits, compiled, x_dtype, dtype, native_casts=False)

        def native_cast(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
            if _cast_agrees(fmt, native, x.device.type):
                return x.to(work).to(native).to(dtype)
            return kernel(x, generator)

        return native_cast
    layout = _layout_for(work)
    if layout is _F64 and _float32_detour_is_exact(fmt, mode):
        if compiled:

            def compiled_detour(x: torch.Tensor, generator: torch.Generator | None):
                flat = x.reshape(-1)
                return _compiled_detour(fmt, mode, x.device.type)(flat).view(x.shape).to(dtype)

            return compiled_detour
        return lambda x, generator: _round_float64_via_odd_float32(x, fmt, mode, dtype)

    if layout is _F32 and random_bits is None and _addition_applies(fmt, mode):
        if compiled:

            def compiled_addition(x: torch.Tensor, generator: torch.Generator | None):
                flat = x.to(work).reshape(-1)
                kernel = _compiled_addition(fmt, mode, x.device.type)
                return kernel(flat, *_stream(mode, generator, x.device)).view(x.shape).to(dtype)

            return compiled_addition

        def by_addition(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
            flat = x.to(work).reshape(-1)
            out = torch.empty_like(flat)
            chunk = _CHUNK if x.device.type == "cpu" else max(1, flat.numel())
            for start in builtins.range(0, flat.numel(), chunk):
                piece = flat[start : start + chunk]
                rand = _draw(piece.view(torch.int32), mode, generator)
                _round_by_addition(piece, fmt, mode, rand, out=out[start : start + chunk])
            return out.view(x.shape).to(dtype)

        return by_addition

    plan = _plan(fmt, mode, random_bits, layout)
    if compiled:

        def compiled_kernel(x: torch.Tensor, generator: torch.Generator | None):
            bits = x.to(work).reshape(-1).view(layout.int_dtype)
            out = _compiled_kernel(plan, x.device.type)(bits, *_stream(mode, generator, x.device))
            return out.view(work).view(x.shape).to(dtype)

        return compiled_kernel

    def eager_kernel(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        bits = x.to(work).reshape(-1).view(layout.int_dtype)  # reshape copies if not contiguous
        out = torch.empty_like(bits)
        chunk = _CHUNK if x.device.type == "cpu" else max(1, bits.numel())
        scratch = bits.new_empty((2, min(chunk, bits.numel())))
        pending: list[tuple[torch.Tensor, torch.Tensor | None]] = []  # deferred small magnitudes
        for start in builtins.range(0, bits.numel(), chunk):
            piece = bits[start : start + chunk]
            rand = _draw(piece, mode, generator)
            found: list[torch.Tensor] = []
            _kernel(
                piece,
                rand,
                plan,
                eager=True,
                out=out[start : start + chunk],
                deferred=found,
                scratch=scratch,
            )
            for index in found:
                pending.append((index + start, None if rand is None else rand[index]))
        if pending:
            index = torch.cat([i for i, _ in pending])
            rand = None if pending[0][1] is None else torch.cat([r for _, r in pending])  # type: ignore[misc]
            out[index] = _round_small_patterns(bits[index], rand, plan)
        return out.view(work).view(x.shape).to(dtype)

    return eager_kernel


_FP32 = format_of_dtype(torch.float32)


@functools.lru_cache(maxsize=512)
def _float32_detour_is_exact(fmt: FloatFormat, mode: RoundMode) -> bool:
    """Is ``round(round_to_odd_float32(x), fmt, mode) == round(x, fmt, mode)`` for every x?

    Yes for every deterministic mode when float32 holds ``fmt`` with two bits to spare at every
    magnitude: ``p <= 22`` in the normal range, and a grid spacing below ``2**emin`` of at least
    ``2**-147`` (four float32 subnormal steps). Then every value of ``fmt`` and every midpoint
    between neighbours is a float32 value, and an inexact round-to-odd result lies strictly
    inside the same float32 interval as ``x`` with an odd last bit, so it is neither a value nor
    a midpoint of ``fmt``: it falls on the same side of each (Boldo and Melquiond, "Emulation of
    FMA and correctly rounded sums: proved algorithms using rounding to odd", IEEE TC 2008).
    Stochastic rounding needs the whole fraction, so it never takes this path; nor does
    round-to-odd for formats reaching float32's top binade (bf16, tf32), where a finite float64
    beyond float32's range becomes float32's max and would round to a finite odd value instead
    of overflowing.
    """
    small_step = fmt.emin - fmt.precision + 1 if fmt.subnormals else fmt.emin
    return (
        not mode.is_stochastic
        and not (mode is RoundMode.ODD and fmt.emax >= _FP32.emax)
        and fmt.precision <= 22
        and _float32_kernel_holds(fmt)
        and small_step >= -147
    )


def _to_float32_odd(x: torch.Tensor) -> torch.Tensor:
    """float64 -> float32 with round-to-odd: truncation toward zero, with the last bit set when
    the conversion is inexact."""
    y = x.float()
    return _odd_from_nearest(x, y, y.double())


def _odd_from_nearest(x: torch.Tensor, y: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
    """The round-to-odd float32 of float64 ``x``, from its nearest-even float32 ``y`` and
    ``back = y.double()``.

    Where the native conversion rounded away from zero the pattern steps back by one, giving
    truncation; then the last bit is set where the conversion was inexact. Bit patterns are
    sign-magnitude and ``back`` has ``x``'s sign, so as int64 patterns ``back > x`` exactly when
    ``|back| > |x|`` (for negative values the pattern is ``-2**63`` plus the magnitude), and
    stepping an int32 pattern down lowers the magnitude. Past float32's range this gives max
    (truncating infinity); subnormals come out right (the conversion rounds them correctly,
    then the same correction applies); a NaN stays a NaN.
    """
    away = torch.gt(back.view(torch.int64), x.view(torch.int64))
    bits = y.view(torch.int32).sub(away.int())
    return bits.bitwise_or_(torch.ne(back, x)).view(torch.float32)


def _round_float64_via_odd_float32(
    x: torch.Tensor, fmt: FloatFormat, mode: RoundMode, dtype: torch.dtype
) -> torch.Tensor:
    """Deterministic rounding of float64 through a round-to-odd float32 (see
    :func:`_float32_detour_is_exact`), the result in ``dtype``: the float32 kernels, native
    casts included, are several times faster than the int64 kernel. On a CPU, where every
    element converts to float32 exactly (sums and products of format values often do), that
    float32 tensor is rounded as it is."""
    plan = _plan(fmt, mode, None, _F32)
    native = _native_cast(fmt, mode, torch.float32)
    if native is not None and not _cast_agrees(fmt, native, x.device.type):
        native = None
    by_addition = _addition_applies(fmt, mode)
    on_cpu = x.device.type == "cpu"

    def rounded(piece: torch.Tensor) -> torch.Tensor:
        y = piece.float()
        back = y.double()
        # torch.equal stops at the first difference; on CUDA it would wait for the device
        if not (on_cpu and torch.equal(back, piece)):
            y = _odd_from_nearest(piece, y, back)
        if native is not None:
            return y.to(native)
        if by_addition:
            return _round_by_addition(y, fmt, mode)
        return _kernel(y.view(torch.int32), None, plan, eager=True).view(torch.float32)

    flat = x.reshape(-1)
    if flat.numel() <= _CHUNK or x.device.type != "cpu":
        return rounded(flat).to(dtype).view(x.shape)
    out = torch.empty(flat.shape, dtype=dtype, device=x.device)
    for start in builtins.range(0, flat.numel(), _CHUNK):
        out[start : start + _CHUNK] = rounded(flat[start : start + _CHUNK])
    return out.view(x.shape)


def _wider_dtype_message(fmt: FloatFormat, dtype: torch.dtype, wider: torch.dtype) -> str:
    """The ValueError's text for a result ``dtype`` that cannot hold ``fmt``; ``wider``, the
    narrowest dtype of the input's kind (real or complex) that can, is the one suggested."""
    return (
        f"the result dtype {dtype} cannot hold every value of {fmt} (precision {fmt.precision}, "
        f"exponents [{fmt.emin}, {fmt.emax}], max {fmt.max}); pass a wider dtype: dtype={wider}"
    )


def _draw(
    bits: torch.Tensor, mode: RoundMode, generator: torch.Generator | None
) -> torch.Tensor | None:
    """Uniform random integers, one per element, of ``bits``' dtype, with at least 31 (int32
    patterns) or 63 (int64 patterns) random low bits for ``stochastic`` and one (bit 0) for
    ``stochastic_equal``; the kernels read only those bits.

    For int32 patterns, one int64 draw (63 random bits) serves two elements, which CPU torch
    generates about 1.4x faster per element than one int32 draw each: the low word has 32 random
    bits, the high word 31. ``stochastic_equal`` gives element ``32 k + 16 h + j`` the bits of
    int32 word ``h`` of int64 draw ``k`` shifted down by ``j`` (``j < 16``): a 32nd of the draws.
    Chunks whose length is a multiple of 32 consume the stream as the whole tensor does.
    """
    if not mode.is_stochastic:
        return None
    n = bits.numel()
    if mode is RoundMode.STOCHASTIC_EQUAL:
        words = torch.empty(((n + 31) // 32, 1), dtype=torch.int64, device=bits.device)
        halves = words.random_(generator=generator).view(torch.int32).view(-1, 2, 1)
        return (halves >> _bit_positions(bits.device)).view(-1)[:n].to(bits.dtype)
    if bits.dtype == torch.int32:
        pairs = torch.empty((n + 1) // 2, dtype=torch.int64, device=bits.device)
        return pairs.random_(generator=generator).view(torch.int32)[:n]
    return torch.empty_like(bits).random_(generator=generator)


@functools.lru_cache(maxsize=8)
def _bit_positions(device: torch.device) -> torch.Tensor:
    return torch.arange(16, dtype=torch.int32, device=device)


# SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA
# 2014): the state advances by the odd constant GAMMA, each output is the state mixed by two
# xor-shift-multiply rounds. Written with int64's wrapping arithmetic; the masks make the right
# shifts logical. Output i depends only on (key, i), so a fused kernel computes its own draws.
_SPLITMIX_GAMMA = 0x9E3779B97F4A7C15 - (1 << 64)
_SPLITMIX_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_SPLITMIX_M2 = 0x94D049BB133111EB - (1 << 64)


def _stream(
    mode: RoundMode, generator: torch.Generator | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | tuple[None, None]:
    """The compiled kernels' random stream: a SplitMix64 key (one int64 drawn from
    ``generator``, on ``device``, so a seed gives the same bits every run) and GAMMA as a 0-d
    tensor, or ``(None, None)`` for a deterministic mode."""
    if not mode.is_stochastic:
        return None, None
    key = torch.empty((), dtype=torch.int64, device=device).random_(generator=generator)
    return key, _gamma(device)


@functools.lru_cache(maxsize=8)
def _gamma(device: torch.device) -> torch.Tensor:
    # A tensor, not a constant, in the traced code: inductor (torch 2.13, CPU) corrupts memory
    # when it folds arange(n) * GAMMA into an index expression and n is not a multiple of 16.
    return torch.tensor(_SPLITMIX_GAMMA, dtype=torch.int64, device=device)


def _counter_bits(
    key: torch.Tensor, gamma: torch.Tensor, n: int, dtype: torch.dtype
) -> torch.Tensor:
    """Outputs 1 to ``n`` of SplitMix64 seeded with ``key`` (the reference generator's first
    ``n`` outputs), as uniform integers with 31 random low bits (``dtype`` int32: the top 31
    bits of each output) or 63 (int64)."""
    z = torch.arange(1, n + 1, dtype=torch.int64, device=key.device) * gamma + key
    z = (z ^ ((z >> 30) & ((1 << 34) - 1))) * _SPLITMIX_M1
    z = (z ^ ((z >> 27) & ((1 << 37) - 1))) * _SPLITMIX_M2
    z = z ^ ((z >> 31) & ((1 << 33) - 1))
    if dtype == torch.int32:
        return (z >> 33).to(torch.int32)
    return z & ((1 << 63) - 1)


def _compile(run, name: str):
    """``run`` fused by torch.compile, its length dynamic and everything else constant.

    The closure's constants (a plan's integers) must be compile-time constants: ``dynamic=True``
    would turn them into symbols and let one graph serve plans it was not built for. Dynamo keeps
    its cache, and its recompilation limit, per code object, so each compiled function gets a code
    object of its own and plans do not evict each other.
    """
    run.__code__ = run.__code__.replace(co_name=name)
    compiled = torch.compile(run, dynamic=False, fullgraph=True)

    def call(*tensors: torch.Tensor | None) -> torch.Tensor:
        for t in tensors:
            if t is not None and t.numel() > 1:  # sizes 0 and 1 are always specialised
                torch._dynamo.mark_dynamic(t, 0)
        return compiled(*tensors)

    return call


@functools.lru_cache(maxsize=64)
def _compiled_kernel(plan: _Plan, device_type: str):
    """The kernel for ``plan``, compiled once per plan and device type."""

    def run(bits: torch.Tensor, key: torch.Tensor | None, gamma: torch.Tensor | None):
        rand = None if key is None else _counter_bits(key, gamma, bits.shape[0], bits.dtype)
        return _kernel(bits, rand, plan, eager=False)

    return _compile(run, f"round_kernel_{_compiled_kernel.cache_info().currsize}")


@functools.lru_cache(maxsize=64)
def _compiled_addition(fmt: FloatFormat, mode: RoundMode, device_type: str):
    """:func:`_round_by_addition` fused, compiled once per format, mode and device type."""
    constants = _addition_plan(fmt, mode)  # computed here, outside the traced code

    def run(x: torch.Tensor, key: torch.Tensor | None, gamma: torch.Tensor | None):
        rand = None if key is None else _counter_bits(key, gamma, x.shape[0], torch.int32)
        return _addition_kernel(x, rand, *constants, out=None, eager=False)

    return _compile(run, f"round_addition_{_compiled_addition.cache_info().currsize}")


@functools.lru_cache(maxsize=64)
def _compiled_detour(fmt: FloatFormat, mode: RoundMode, device_type: str):
    """float64 -> round-to-odd float32 -> ``fmt``, fused (see :func:`_float32_detour_is_exact`).

    Only torch's float16 and bfloat16 conversions are used as native casts here, and only on
    the CPU: those are standard vector conversions in generated C++, while the float8 ones are
    left to the kernel. Inductor's Triton code (CUDA) drops a float32 -> half -> float64 round
    trip inside one kernel (it keeps half intermediates in float32 by default), which would
    skip the rounding: there the kernel rounds instead.
    """
    plan = _plan(fmt, mode, None, _F32)
    native = _native_cast(fmt, mode, torch.float32)
    if native not in (torch.float16, torch.bfloat16) or device_type != "cpu":
        native = None

    def run(x: torch.Tensor) -> torch.Tensor:
        y = _to_float32_odd(x)
        if native is not None:
            return y.to(native).to(torch.float64)
        bits = _kernel(y.view(torch.int32), None, plan, eager=False)
        return bits.view(torch.float32).to(torch.float64)

    return _compile(run, f"round_detour_{_compiled_detour.cache_info().currsize}")


class _StraightThrough(torch.autograd.Function):
    """Rounding forward, identity backward (the straight-through estimator)."""

    @staticmethod
    def forward(ctx, x, fmt, mode, generator, random_bits, compiled, dtype):
        ctx.input_dtype = x.dtype
        return _round(x.detach(), fmt, mode, generator, random_bits, compiled, dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.input_dtype), None, None, None, None, None, None
