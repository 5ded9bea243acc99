"""Binary floating-point formats as data.

A :class:`FloatFormat` is a frozen description of a number system: precision ``p`` (significand
bits including the implicit bit), exponent range ``[emin, emax]``, whether it has subnormals,
infinities and NaN, its largest finite value and what happens on overflow. Derived quantities are
named as :class:`torch.finfo` names them (``eps``, ``max``, ``tiny``, ``smallest_normal``, ...),
plus the unit roundoff ``u = 2**-p`` of round-to-nearest.

Every finite value of a format is ``M * 2**(e - p + 1)`` with an integer significand ``M``:
``2**(p-1) <= M < 2**p`` and ``emin <= e <= emax`` for normal numbers, ``0 <= M < 2**(p-1)`` and
``e = emin`` for subnormals (and zero), and never above ``max``.

Presets are module constants (:data:`FP16`, :data:`BF16`, ...) and can be looked up by name with
:func:`get`, which also accepts aliases (``"half"``, ``"bfloat16"``, ``"float8_e4m3fn"``, ...):

>>> get("half").max
65504.0
>>> get("e4m3fn").max, get("e4m3fn").smallest_subnormal == 2.0**-9
(448.0, True)
>>> FloatFormat(precision=5, emax=7).emin
-6
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from mperror._checks import is_integer

__all__ = [
    "BF16",
    "E2M1",
    "E2M3",
    "E3M2",
    "E4M3FN",
    "E5M2",
    "FP16",
    "FP32",
    "FP64",
    "PRESETS",
    "TF32",
    "FloatFormat",
    "FormatLike",
    "Overflow",
    "as_format",
    "format_of_dtype",
    "get",
    "names",
]


class Overflow(str, enum.Enum):
    """What a rounding does with a value whose magnitude lies beyond the largest finite value.

    The test is made after rounding as if the exponent range were unbounded above: a result
    larger than ``max`` overflows. A mode that rounded toward zero at that sign (``toward_zero``;
    ``toward_negative`` for positive values; ``toward_positive`` for negative ones) gives ``±max``
    under every policy, as IEEE 754 prescribes for directed rounding. Other modes give the policy's
    value, which also applies to infinite inputs in formats without infinities.
    """

    #: ``±inf`` (IEEE 754); infinite inputs stay infinite. Needs a format with infinities.
    INF = "inf"
    #: ``±max``; infinite inputs become ``±max`` too (torch's float8_e4m3fn cast, OCP MX).
    SATURATE = "saturate"
    #: NaN; infinite inputs become NaN too (ml_dtypes' float8_e4m3fn). Needs a format with NaN.
    NAN = "nan"


@dataclass(frozen=True, kw_only=True)
class FloatFormat:
    """A binary floating-point format.

    Args:
        precision: ``p``, significand bits including the implicit leading bit; 1 to 53.
        emax: largest exponent of a normal number.
        emin: smallest exponent of a normal number; defaults to ``1 - emax`` (IEEE 754).
        subnormals: whether the values between 0 and ``2**emin`` exist. Without them, the
            representable values below ``2**emin`` are ``±0`` only, and every rounding mode rounds
            a value below ``2**emin`` to ``±0`` or ``±2**emin`` (see :func:`mperror.round`).
        has_inf: whether ``±inf`` exist.
        has_nan: whether NaN exists. A format without NaN has no code for a NaN input (or
            ``0/0``): rounding returns NaN anyway, which is then not a value of the format
            (:meth:`is_representable` is False), so the error stays visible.
        max_finite: the largest finite value, when the top codes are reserved for NaN
            (float8_e4m3fn: 448 instead of 480); defaults to ``(2 - 2**(1-p)) * 2**emax``.
        overflow: an :class:`Overflow` policy or its value string; defaults to ``"inf"`` when the
            format has infinities and ``"saturate"`` otherwise.
        name: a label for printing; it takes no part in equality.

    All formats fit inside float64 (``p <= 53``, ``-1022 <= emin``, ``emax <= 1023``), since mperror
    computes in float64 and rounds once.
    """

    precision: int
    emax: int
    emin: int = None  # type: ignore[assignment]  # None means 1 - emax; normalised to int
    subnormals: bool = True
    has_inf: bool = True
    has_nan: bool = True
    max_finite: float = None  # type: ignore[assignment]  # None means the natural maximum
    overflow: Overflow = None  # type: ignore[assignment]  # None: INF with inf, else SATURATE
    name: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        p = self.precision
        if not is_integer(p) or not 1 <= p <= 53:
            raise ValueError(f"precision must be an int in [1, 53] (float64 has 53), got {p!r}")
        if not is_integer(self.emax):
            raise ValueError(f"emax must be an int, got {self.emax!r}")
        if self.emin is not None and not is_integer(self.emin):
            raise ValueError(f"emin must be an int or None, got {self.emin!r}")
        # numpy or tensor integers become plain ints (equality, hashing and JSON need them)
        p = operator.index(p)
        object.__setattr__(self, "precision", p)
        object.__setattr__(self, "emax", operator.index(self.emax))
        emin = 1 - self.emax if self.emin is None else operator.index(self.emin)
        if self.emax > 1023:
            raise ValueError(f"emax must be <= 1023 (float64's), got {self.emax}")
        if emin < -1022:
            raise ValueError(f"emin must be >= -1022 (float64's), got {emin}")
        if self.emax < emin:
            raise ValueError(f"emax must be >= emin, got emax={self.emax} < emin={emin}")
        for flag in ("subnormals", "has_inf", "has_nan"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        if self.subnormals and emin - p + 1 < -1074:
            raise ValueError(
                f"the smallest subnormal 2**{emin - p + 1} is below float64's 2**-1074; "
                "raise emin or pass subnormals=False"
            )
        object.__setattr__(self, "emin", emin)

        natural_max = math.ldexp(2.0**p - 1.0, self.emax - p + 1)
        max_finite = natural_max if self.max_finite is None else self.max_finite
        if not (is_integer(max_finite) or isinstance(max_finite, float)):
            raise ValueError(f"max_finite must be a float or None, got {self.max_finite!r}")
        try:
            max_finite = float(max_finite)
        except OverflowError:  # an int beyond float64's range
            raise ValueError(f"max_finite must be a finite float, got {max_finite!r}") from None
        if not (math.ldexp(1.0, self.emax) <= max_finite <= natural_max):
            raise ValueError(
                f"max_finite must lie in [2**emax, (2 - 2**(1-p)) * 2**emax] = "
                f"[{math.ldexp(1.0, self.emax)!r}, {natural_max!r}], got {max_finite!r}"
            )
        if not _on_grid(max_finite, p):
            raise ValueError(f"max_finite={max_finite!r} is not a {p}-bit floating-point value")
        object.__setattr__(self, "max_finite", max_finite)

        if self.overflow is None:
            policy = Overflow.INF if self.has_inf else Overflow.SATURATE
        else:
            try:
                policy = Overflow(self.overflow)
            except ValueError:
                allowed = ", ".join(repr(o.value) for o in Overflow)
                raise ValueError(
                    f"overflow must be one of {allowed} or None, got {self.overflow!r}"
                ) from None
        if policy is Overflow.INF and not self.has_inf:
            raise ValueError("overflow='inf' needs has_inf=True; use 'saturate' or 'nan'")
        if policy is Overflow.NAN and not self.has_nan:
            raise ValueError("overflow='nan' needs has_nan=True; use 'saturate'")
        object.__setattr__(self, "overflow", policy)

    # -- derived quantities, named as torch.finfo names them -------------------------------

    @property
    def eps(self) -> float:
        """Distance from 1 to the next larger value, ``2**(1 - p)``."""
        return math.ldexp(1.0, 1 - self.precision)

    @property
    def unit_roundoff(self) -> float:
        """``u = 2**-p``: the relative error bound of round-to-nearest in the normal range."""
        return math.ldexp(1.0, -self.precision)

    @property
    def max(self) -> float:
        """Largest finite value."""
        return self.max_finite

    @property
    def min(self) -> float:
        """Most negative finite value, ``-max``."""
        return -self.max_finite

    @property
    def smallest_normal(self) -> float:
        """``2**emin``."""
        return math.ldexp(1.0, self.emin)

    @property
    def tiny(self) -> float:
        """Alias of :attr:`smallest_normal`, as in :class:`torch.finfo`."""
        return self.smallest_normal

    @property
    def smallest_subnormal(self) -> float:
        """Smallest positive value: ``2**(emin - p + 1)``, or ``2**emin`` without subnormals."""
        if not self.subnormals:
            return self.smallest_normal
        return math.ldexp(1.0, self.emin - self.precision + 1)

    @property
    def resolution(self) -> float:
        """``10**-floor(-log10(eps))``, the decimal resolution as :class:`torch.finfo` gives it."""
        return 10.0 ** -math.floor(-math.log10(self.eps))

    @property
    def exponent_bits(self) -> int:
        """Width of the exponent field of the usual encoding.

        The field holds one code per normal binade, one for zero and subnormals, and one more when
        infinities or NaNs take a whole exponent code (IEEE style). A format whose NaN lives in
        the top binade (float8_e4m3fn, signalled by a reduced ``max_finite``) needs no extra code.
        """
        codes = self.emax - self.emin + 2
        natural_max = math.ldexp(2.0**self.precision - 1.0, self.emax - self.precision + 1)
        if self.has_inf or (self.has_nan and self.max_finite == natural_max):
            codes += 1
            if self.precision == 1 and self.has_inf and self.has_nan:
                codes += 1  # no fraction bits: inf and NaN cannot share an exponent code
        return max(1, math.ceil(math.log2(codes)))

    @property
    def bits(self) -> int:
        """Total width of the usual encoding: sign, exponent field and ``p - 1`` fraction bits."""
        return 1 + self.exponent_bits + self.precision - 1

    # -- tensor helpers ----------------------------------------------------------------------

    def spacing(self, x: torch.Tensor) -> torch.Tensor:
        """Distance between the two format values around ``x`` (the ulp at ``x``), elementwise.

        For ``2**e <= |x| < 2**(e+1)`` with ``e >= emin`` it is ``2**(e - p + 1)`` (beyond
        ``emax`` the top binade's spacing is kept); below ``2**emin`` it is the subnormal spacing
        ``2**(emin - p + 1)``, or ``2**emin`` without subnormals. ``±inf`` and NaN give NaN. The
        exponent comes from :func:`torch.frexp`, never from ``log2``, which rounds up just below
        powers of two. The result has ``x``'s dtype, which must hold every spacing of the format
        (ValueError otherwise: ``FP32.spacing`` of a float16 tensor would give 0 below float16's
        range).

        >>> FP16.spacing(torch.tensor([1.0, -0.5, 65504.0, 0.0], dtype=torch.float64))
        tensor([9.7656e-04, 4.8828e-04, 3.2000e+01, 5.9605e-08], dtype=torch.float64)
        """
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {_describe(x)}")
        if x.dtype.itemsize == 1:  # torch's frexp and ldexp take no float8
            raise TypeError(f"x must be float16, bfloat16, float32 or float64, got {x.dtype}")
        small_quantum = self.emin - self.precision + 1 if self.subnormals else self.emin
        store = format_of_dtype(x.dtype)
        lowest = min(small_quantum, self.emin - self.precision + 1)
        highest = max(small_quantum, self.emax - self.precision + 1)
        if lowest < store.emin - store.precision + 1 or highest > store.emax:
            raise ValueError(
                f"x's dtype {x.dtype} cannot hold the spacings of {self} (2**{lowest} to "
                f"2**{highest}); pass a wider tensor, e.g. float64"
            )
        _, exponent = torch.frexp(x)  # |x| = mant * 2**exponent with mant in [0.5, 1)
        e = (exponent.to(torch.int64) - 1).clamp(max=self.emax)
        quantum = e - self.precision + 1
        # Below 2**emin (zero included: frexp gives it exponent 0) the grid is fixed.
        below = x.abs() < self.smallest_normal
        quantum = torch.where(below, small_quantum, quantum)
        out = torch.ldexp(torch.ones_like(x), quantum.to(x.dtype))
        return torch.where(torch.isfinite(x), out, torch.full_like(x, math.nan))

    def is_representable(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise: is ``x`` a value of this format? NaN and ``±inf`` count where they exist.

        >>> FP16.is_representable(torch.tensor([1.0, 1.0 + 2.0**-11, 65504.0, 65520.0]))
        tensor([ True, False,  True, False])
        """
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {_describe(x)}")
        wide = x.to(torch.float64)
        finite = torch.isfinite(wide)
        safe = torch.where(finite, wide, 0.0)
        on_grid = torch.remainder(safe, self.spacing(safe)) == 0
        ok = finite & on_grid & (safe.abs() <= self.max_finite)
        if self.has_inf:
            ok |= torch.isinf(wide)
        if self.has_nan:
            ok |= torch.isnan(wide)
        return ok

    def finite_values(self, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """All finite values, sorted ascending, with a single zero (``+0.0``).

        Only for formats of at most 16 bits (65,536 codes); wider formats raise ValueError.

        >>> E2M1.finite_values(dtype=torch.float32)
        tensor([-6.0000, -4.0000, -3.0000, -2.0000, -1.5000, -1.0000, -0.5000,  0.0000,  0.5000,
                 1.0000,  1.5000,  2.0000,  3.0000,  4.0000,  6.0000])
        """
        if self.bits > 16:
            raise ValueError(
                f"finite_values enumerates formats of at most 16 bits; {self} has {self.bits}"
            )
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        if not _holds(format_of_dtype(dtype), self):
            raise ValueError(
                f"dtype {dtype} cannot hold every value of {self}; pass a wider dtype "
                "(float64 holds every format)"
            )
        positive = torch.tensor(list(self._positive_values()), dtype=torch.float64)
        values = torch.cat([-positive.flip(0), torch.zeros(1, dtype=torch.float64), positive])
        return values.to(dtype)

    def _positive_values(self) -> Iterator[float]:
        p = self.precision
        if self.subnormals:
            for m in range(1, 2 ** (p - 1)):
                yield math.ldexp(m, self.emin - p + 1)
        for e in range(self.emin, self.emax + 1):
            for m in range(2 ** (p - 1), 2**p):
                value = math.ldexp(m, e - p + 1)
                if value > self.max_finite:
                    return
                yield value

    # -- conveniences ------------------------------------------------------------------------

    def replace(self, **changes: Any) -> FloatFormat:
        """A copy with some fields changed, e.g. ``E4M3FN.replace(overflow="nan")``.

        Fields that hold their default (``emin = 1 - emax``, the natural largest value, the
        overflow policy ``has_inf`` implies) are derived again from the changed fields unless
        given, so ``FP16.replace(precision=12).max`` is 65520 as for a new format, not fp16's
        65504; fields set to anything else (e4m3fn's ``emin`` and ``max_finite``) are kept. The
        name is dropped unless given, since the result is a different format.

        >>> FP16.replace(precision=12).max, E4M3FN.replace(precision=4).max
        (65520.0, 448.0)
        """
        changes.setdefault("name", "")
        natural_max = math.ldexp(2.0**self.precision - 1.0, self.emax - self.precision + 1)
        defaults = {
            "emin": (self.emin == 1 - self.emax),
            "max_finite": (self.max_finite == natural_max),
            "overflow": (self.overflow is (Overflow.INF if self.has_inf else Overflow.SATURATE)),
        }
        for name, is_default in defaults.items():
            if is_default:
                changes.setdefault(name, None)
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        if self.name:
            return self.name
        return repr(self)

    def describe(self) -> dict[str, Any]:
        """The primary fields and the derived values, as plain Python values (for reports)."""
        return {
            "name": self.name,
            "precision": self.precision,
            "emin": self.emin,
            "emax": self.emax,
            "subnormals": self.subnormals,
            "has_inf": self.has_inf,
            "has_nan": self.has_nan,
            "overflow": self.overflow.value,
            "bits": self.bits,
            "max": self.max,
            "smallest_normal": self.smallest_normal,
            "smallest_subnormal": self.smallest_subnormal,
            "eps": self.eps,
            "unit_roundoff": self.unit_roundoff,
        }


def _on_grid(value: float, precision: int) -> bool:
    mantissa, _ = math.frexp(value)  # value = mantissa * 2**exp, mantissa in [0.5, 1)
    scaled = math.ldexp(mantissa, precision)
    return scaled == math.floor(scaled)


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor"
    return type(x).__name__


FP64 = FloatFormat(precision=53, emax=1023, name="fp64")
FP32 = FloatFormat(precision=24, emax=127, name="fp32")
TF32 = FloatFormat(precision=11, emax=127, emin=-126, name="tf32")
FP16 = FloatFormat(precision=11, emax=15, name="fp16")
BF16 = FloatFormat(precision=8, emax=127, name="bf16")
E5M2 = FloatFormat(precision=3, emax=15, name="e5m2")
E4M3FN = FloatFormat(
    precision=4,
    emax=8,
    emin=-6,
    has_inf=False,
    max_finite=448.0,
    overflow=Overflow.SATURATE,
    name="e4m3fn",
)
E3M2 = FloatFormat(precision=3, emax=4, emin=-2, has_inf=False, has_nan=False, name="e3m2")
E2M3 = FloatFormat(precision=4, emax=2, emin=0, has_inf=False, has_nan=False, name="e2m3")
E2M1 = FloatFormat(precision=2, emax=2, emin=0, has_inf=False, has_nan=False, name="e2m1")

#: The preset formats by canonical name.
PRESETS: dict[str, FloatFormat] = {
    f.name: f for f in (FP64, FP32, TF32, FP16, BF16, E5M2, E4M3FN, E3M2, E2M3, E2M1)
}

_ALIASES: dict[str, str] = {
    "float64": "fp64",
    "double": "fp64",
    "binary64": "fp64",
    "float32": "fp32",
    "single": "fp32",
    "float": "fp32",
    "binary32": "fp32",
    "tensorfloat32": "tf32",
    "float16": "fp16",
    "half": "fp16",
    "binary16": "fp16",
    "bfloat16": "bf16",
    "float8_e5m2": "e5m2",
    "fp8_e5m2": "e5m2",
    "float8_e4m3fn": "e4m3fn",
    "fp8_e4m3fn": "e4m3fn",
    "float6_e3m2fn": "e3m2",
    "fp6_e3m2": "e3m2",
    "float6_e2m3fn": "e2m3",
    "fp6_e2m3": "e2m3",
    "float4_e2m1fn": "e2m1",
    "fp4_e2m1": "e2m1",
    "fp4": "e2m1",
}

_AMBIGUOUS: dict[str, str] = {
    "e4m3": "'e4m3' names several formats (OCP e4m3fn with max 448, IEEE-like ones with max 240 "
    "or 480); use 'e4m3fn', or build the one you mean with FloatFormat(...)",
    "fp8": "'fp8' is ambiguous; use 'e5m2' or 'e4m3fn'",
    "fp6": "'fp6' is ambiguous; use 'e3m2' or 'e2m3'",
}

_DTYPE_FORMATS: dict[torch.dtype, FloatFormat] = {
    torch.float64: FP64,
    torch.float32: FP32,
    torch.float16: FP16,
    torch.bfloat16: BF16,
    torch.float8_e5m2: E5M2,
    torch.float8_e4m3fn: E4M3FN,
}

#: Anything accepted where a format is expected.
FormatLike = FloatFormat | str | torch.dtype


def names() -> list[str]:
    """Canonical preset names followed by their aliases."""
    return [*PRESETS, *_ALIASES]


def get(name: str) -> FloatFormat:
    """The preset format called ``name`` (canonical name or alias, case-insensitive).

    >>> get("binary16") is FP16
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in PRESETS:
        return PRESETS[key]
    if key in _AMBIGUOUS:
        raise ValueError(f"unknown format {name!r}: {_AMBIGUOUS[key]}")
    close = difflib.get_close_matches(key, names(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown format {name!r}{hint} Known: {', '.join(PRESETS)} (and aliases)")


def _holds(store: FloatFormat, fmt: FloatFormat) -> bool:
    """Does every finite value of ``fmt`` have an exact representation in ``store``?

    Every value of ``fmt`` is a multiple of ``2**(emin - p + 1)``, the spacing of its lowest
    binade, with or without subnormals (``2**emin (1 + 2**(1 - p))`` is a normal value). A
    ``store`` with subnormals holds such multiples down to its own smallest spacing; one
    without holds only its normal numbers, so ``fmt`` must then have none below them.
    """
    if fmt.precision > store.precision or fmt.emax > store.emax or fmt.max > store.max:
        return False
    if store.subnormals:
        return fmt.emin - fmt.precision >= store.emin - store.precision
    return not fmt.subnormals and fmt.emin >= store.emin


def format_of_dtype(dtype: torch.dtype) -> FloatFormat:
    """The format of a torch floating-point dtype (float64, float32, float16, bfloat16, float8)."""
    try:
        return _DTYPE_FORMATS[dtype]
    except KeyError:
        known = ", ".join(str(d) for d in _DTYPE_FORMATS)
        raise ValueError(f"dtype {dtype} has no mperror format; known: {known}") from None


def as_format(fmt: FormatLike, *, argument: str = "fmt") -> FloatFormat:
    """Coerce a format argument: a FloatFormat as is, a preset name, or a torch dtype."""
    if isinstance(fmt, FloatFormat):
        return fmt
    if isinstance(fmt, (str, torch.dtype)):
        try:
            return get(fmt) if isinstance(fmt, str) else format_of_dtype(fmt)
        except ValueError as error:  # the message, prefixed with the argument's name
            raise ValueError(f"{argument}: {error}") from None
    raise TypeError(
        f"{argument} must be a FloatFormat, a preset name such as 'fp16', or a torch dtype; "
        f"got {type(fmt).__name__}"
    )
