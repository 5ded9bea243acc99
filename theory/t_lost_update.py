"""Machine checks for T-lost-update (theory/T-lost-update.md): when ``fl(w + delta) == w``.

For a value ``w`` of a format and an update ``delta != 0``, only the neighbour of ``w`` in the
direction of ``delta`` matters. With ``gap`` the distance to that neighbour, every rounding mode
keeps ``w`` exactly for ``|delta|`` below a threshold (``gap / 2`` for the nearest modes, ``gap``
for the directed ones and round-to-odd, ``0`` when the mode never returns ``w``); at the threshold
the tie rule decides. This module gives

* the spacing formulas symbolically: ``2**(e-p+1)`` in the binade ``[2**e, 2**(e+1))`` and
  ``2**(e-p)`` just below a power of two ``2**e`` above the smallest normal (the asymmetry);
* the worked example of REFERENCES section 4 (``w = -1/2`` in fp16 moving toward zero);
* :func:`gap_by_enumeration`: the gap found by listing the format's values (from the definition
  ``M * 2**(e-p+1)``), an oracle for the spacing arithmetic of ``mperror.bounds.lost_updates``;
* :func:`threshold`: the per-mode threshold and whether it is inclusive.

Run ``PYTHONPATH=. python theory/t_lost_update.py``; importing prints nothing.
"""

from __future__ import annotations

import bisect
import functools
from fractions import Fraction

import sympy as sp

__all__ = [
    "SPACING",
    "SPACING_BELOW_POWER",
    "format_values",
    "gap_by_enumeration",
    "is_odd",
    "threshold",
    "verify",
    "worked_example",
]

e, p = sp.symbols("e p", integer=True)

#: Spacing of the binade ``[2**e, 2**(e+1))`` (``e >= emin``).
SPACING = 2 ** (e - p + 1)
#: Spacing just below ``2**e`` for ``e > emin``: the binade below, half of :data:`SPACING`.
SPACING_BELOW_POWER = SPACING.subs(e, e - 1)


@functools.lru_cache(maxsize=16)
def format_values(
    precision: int, emin: int, emax: int, subnormals: bool, max_finite: Fraction
) -> tuple[Fraction, ...]:
    """All finite values, ascending, with one zero, from the definition ``M * 2**(e - p + 1)``."""
    positive = []
    if subnormals:
        positive += [
            Fraction(mm) * Fraction(2) ** (emin - precision + 1)
            for mm in range(1, 2 ** (precision - 1))
        ]
    for exp in range(emin, emax + 1):
        for mm in range(2 ** (precision - 1), 2**precision):
            value = Fraction(mm) * Fraction(2) ** (exp - precision + 1)
            if value <= max_finite:
                positive.append(value)
    return (*[-v for v in reversed(positive)], Fraction(0), *positive)


def gap_by_enumeration(values: tuple[Fraction, ...], w: Fraction, direction: int) -> Fraction:
    """Distance from ``w`` to its neighbour in ``direction`` (+1 up, -1 down) in ``values``.

    Beyond the largest finite value the neighbour is the one the exponent range would have had if
    it were unbounded: the last gap of the list repeated (the top binade's spacing).
    """
    i = bisect.bisect_left(values, w)
    if i == len(values) or values[i] != w:
        raise ValueError(f"{w} is not a value of the format")
    j = i + direction
    if 0 <= j < len(values):
        return abs(values[j] - w)
    return values[-1] - values[-2]


def is_odd(w: Fraction, precision: int, emin: int, subnormals: bool, toward_zero: bool) -> bool:
    """Parity of ``w``'s integer significand on the grid the rounding uses next to ``w``.

    ``M = |w| / 2**(e - p + 1)`` in ``w``'s binade (the subnormal quantum below ``2**emin``).
    Without subnormals the values below ``2**emin`` form the grid ``{0, 2**emin}`` of spacing
    ``2**emin``, on which ``2**emin`` is ``1 * 2**emin``: odd when moving toward zero from it.
    """
    a = abs(w)
    if a == 0:
        return False
    smallest_normal = Fraction(2) ** emin
    if not subnormals and a == smallest_normal and toward_zero:
        return True
    if a < smallest_normal:
        quantum = Fraction(2) ** (emin - precision + 1)
    else:
        exp = a.numerator.bit_length() - a.denominator.bit_length()
        if Fraction(2) ** exp > a:
            exp -= 1
        quantum = Fraction(2) ** (exp - precision + 1)
    significand = a / quantum
    assert significand.denominator == 1
    return significand.numerator % 2 == 1


def threshold(
    mode: str, gap: Fraction, direction: int, w: Fraction, odd: bool
) -> tuple[Fraction, bool]:
    """``(t, inclusive)``: ``fl(w + delta) == w`` iff ``|delta| < t``, or ``== t`` when inclusive.

    Valid away from overflow (``w`` not ``+-max`` moving outward). ``direction`` is the sign of
    ``delta``; ``odd`` is :func:`is_odd` for that side.
    """
    outward = w == 0 or (w > 0) == (direction > 0)
    if mode == "nearest_even":
        return gap / 2, not odd
    if mode == "nearest_away":
        return gap / 2, not outward
    if mode == "toward_zero":
        return (gap if outward else Fraction(0)), False
    if mode == "toward_positive":
        return (gap if direction < 0 else Fraction(0)), False
    if mode == "toward_negative":
        return (gap if direction > 0 else Fraction(0)), False
    if mode == "odd":
        return (gap if odd else Fraction(0)), False
    raise ValueError(f"no deterministic threshold for mode {mode!r}")


def worked_example() -> dict[str, sp.Expr]:
    """fp16 (``p = 11``), ``w = -1/2 = -2**-1``: gaps and round-to-nearest thresholds."""
    toward_zero_gap = SPACING_BELOW_POWER.subs({e: -1, p: 11})
    away_gap = SPACING.subs({e: -1, p: 11})
    return {
        "gap_toward_zero": toward_zero_gap,
        "gap_away": away_gap,
        "threshold_toward_zero": toward_zero_gap / 2,
        "threshold_away": away_gap / 2,
    }


def verify() -> None:
    """Assert the formulas against enumeration (the tests call this)."""
    assert sp.simplify(SPACING / SPACING_BELOW_POWER) == 2
    example = worked_example()
    assert example["gap_toward_zero"] == sp.Rational(1, 2**12)
    assert example["threshold_toward_zero"] == sp.Rational(1, 2**13)
    assert example["threshold_away"] == sp.Rational(1, 2**12)
    fp16 = format_values(11, -14, 15, True, Fraction(65504))
    w = Fraction(-1, 2)
    assert gap_by_enumeration(fp16, w, +1) == Fraction(1, 2**12)
    assert gap_by_enumeration(fp16, w, -1) == Fraction(1, 2**11)
    # Every binade of fp16 above the smallest normal: spacing and the power-of-two asymmetry.
    for exp in range(-14, 16):
        power = Fraction(2) ** exp
        spacing = Fraction(2) ** (exp - 10)
        assert gap_by_enumeration(fp16, power, +1) == spacing
        below = spacing / 2 if exp > -14 else spacing
        assert gap_by_enumeration(fp16, power, -1) == below


def main() -> None:
    verify()
    for name, value in worked_example().items():
        print(f"{name}: {value} = {sp.N(value, 6)}")


if __name__ == "__main__":
    main()
