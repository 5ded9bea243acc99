"""Correctly rounded elementwise arithmetic in any format of precision ``p <= 25``.

``add, sub, mul, div, sqrt`` and ``fma`` return, for operands that are values of ``fmt``, the
exact result rounded once to ``fmt`` by ``mode``: what an IEEE 754 unit of that format would
return. Each evaluates in float64 and rounds once with :func:`mperror.round`; why that is exact
depends on the operation (``G`` and the *cell lemma* are defined in :mod:`mperror.ops._common`:
two reals in the same cell of ``fmt``'s values-and-midpoints round alike in every deterministic
mode).

* ``mul``: the product of two ``p``-bit numbers has at most ``2p <= 50`` bits, so float64 holds
  it exactly (the range condition below keeps it normal); one rounding remains.
* ``add``, ``sub`` and ``fma``: a sum can need far more than 53 bits (``1 + 2**-100``), so the
  float64 sum alone is not enough for the directed modes. TwoSum gives ``s + e == x`` exactly
  and ``RO53(x)`` (round-to-odd at 53 bits) follows from the sign of ``e``; by Boldo and
  Melquiond's theorem ``RO53(x)`` lies in the cell of ``x`` since ``p + 2 <= 53``. For ``fma``
  the product ``x*y`` is first formed exactly (``2p <= 53``), then ``RO53(x*y + z)`` likewise.
* ``div`` and ``sqrt``: the classic double-rounding theorem (Figueroa, "When is double rounding
  innocuous?", ACM SIGNUM Newsletter 30(3), 1995; formalised with underflow by Roux, J.
  Formalized Reasoning 7, 2014) says: for ``p``-bit operands, rounding the exact result to
  nearest at ``q`` bits and then to nearest at ``p`` bits equals one rounding to nearest at
  ``p`` bits for ``+ - * /`` when ``q >= 2p + 1`` and for ``sqrt`` when ``q >= 2p + 2``
  (Priest's example ``2**2k (1 - 2**-p)`` fails at ``q = 2p + 1``), provided the ``q``-bit
  intermediate neither overflows nor underflows. It covers round to nearest only; here float64
  (``q = 53 >= 2p + 2`` for ``p <= 25``) is used for every deterministic mode through the
  stronger separation lemma below.

**Separation lemma.** Let ``x = a/b`` or ``x = sqrt(a)`` with ``a, b`` nonzero ``p``-bit numbers,
``p <= 25``, and ``t`` any number with at most ``p + 1`` significant bits (every member of
``G``). If ``x != t`` then ``|x - t| > 2**-53 |x| >= |RN53(x) - x|``; if ``x == t`` then
``RN53(x) == x``. So ``RN53(x)``, the float64 result, lies in the cell of ``x``. Proof, scaling by
powers of two (which maps ``p``-bit numbers to ``p``-bit numbers and commutes with RN53 in
float64's normal range) so that ``1 <= x < 2``: the members of ``G`` near ``x`` are then
multiples of ``2**-p`` in ``[1, 2]`` (those below 1 are at most ``1 - 2**-(p+1)``, far from
``x``). *Division*: scale ``b`` into ``[1, 2)``, so ``a = x b`` lies in ``[1, 4)``; both are
multiples of ``2**(1-p)``. Then ``a - b t`` is a multiple of ``2**(1-2p)``, and if it is nonzero,
``|x - t| = |a - b t| / b > 2**(1-2p) / 2 = 2**-2p >= 2**-50``. *Square root*: ``a = x**2``
lies in ``[1, 4)`` and is a multiple of ``2**(1-p)``, ``t**2`` a multiple of ``2**-2p``, so a
nonzero ``a - t**2`` is at least ``2**-2p`` and ``|x - t| = |a - t**2| / (x + t) > 2**-2p / 4
>= 2**-52`` (``x < 2``, ``t <= 2``). Both exceed ``2**-53 >= |RN53(x) - x|``. ∎

Operands. Every operand is first rounded to ``fmt`` with round-to-nearest-even, as storing it in
``fmt`` would: an operand that is already a value of ``fmt`` (the intended use) passes
unchanged, and ``op(x, y) == op(round(x), round(y))`` in general. The operation's own rounding
uses ``mode``.

Range. The lemmas need the exact products and quotients of ``fmt`` values inside float64's
normal range: ``2*emax + 2 <= 1023``, ``2*log2(smallest) >= -1022`` and ``emax + 1 -
log2(smallest) <= 1022``. Every preset of precision at most 25 (fp32, tf32, fp16, bf16, the FP8,
FP6 and FP4 formats) qualifies; other formats raise ValueError. ``fmt = fp64`` is accepted for
``add, sub, mul, div, sqrt`` with ``mode="nearest_even"`` only: float64 arithmetic is then the
correctly rounded operation itself.

Specials follow IEEE 754 in float64 and then :func:`mperror.round`: ``x/0`` and ``inf``
operands give ``±inf`` or NaN, which a format without infinities maps by its overflow policy
(``±max`` when saturating); ``sqrt`` of a negative number is NaN. Exact zero sums are ``+0``
except in ``toward_negative``, where they are ``-0`` unless both addends are ``+0`` (IEEE 754
section 6.3). Stochastic modes: see :mod:`mperror.ops._common` (probabilities exact to
``2**(p-53)``).

Results are in the operands' promoted dtype, which must hold ``fmt``; no autograd graph is
recorded.

>>> x = torch.tensor([0.25 - 2.0**-13])
>>> sqrt(x, "fp16").item()  # torch's float32 sqrt gives 0x1.ffep-2, which rounds to 0.5
0.499755859375
>>> add(torch.tensor([1.0]), torch.tensor([-(2.0**-20)]), "fp16", "toward_zero").item()
0.99951171875
"""

from __future__ import annotations

import torch

from mperror.formats import FloatFormat, FormatLike
from mperror.ops import _common
from mperror.rounding import RoundMode, explicit

__all__ = ["add", "div", "fma", "mul", "sqrt", "sub"]


def _setup(
    tensors: dict[str, torch.Tensor], fmt: FormatLike, mode: RoundMode | str, op: str
) -> tuple[list[torch.Tensor], FloatFormat, RoundMode, torch.dtype, bool]:
    """Checked float64 operands (rounded to fmt, broadcast), fmt, mode, result dtype, native."""
    checked = {name: _common.real_tensor(t, name) for name, t in tensors.items()}
    fmt = _common.parse_format(fmt)
    mode = _common.parse_mode(mode)
    if _common.is_fp64(fmt):
        if op == "fma" or mode is not RoundMode.NEAREST_EVEN:
            raise ValueError(
                f"fmt fp64 is emulated by native float64 arithmetic, which rounds to nearest "
                f"even and has no fused multiply-add; got {op} with mode {mode.value!r} (use "
                f"a format of precision <= {_common.ELEMENTWISE_MAX_PRECISION})"
            )
        native = True
    else:
        _common.check_product_format(fmt)
        native = False
    values = list(checked.values())
    try:
        torch.broadcast_shapes(*(t.shape for t in values))
    except RuntimeError:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in checked.items())
        raise ValueError(f"{op}: the operands' shapes do not broadcast: {shapes}") from None
    dtype = values[0].dtype
    for t in values[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    _common.check_output_dtype(dtype, fmt)
    operands = torch.broadcast_tensors(*(_common.operand(t, fmt) for t in values))
    return list(operands), fmt, mode, dtype, native


def _finish(
    value: torch.Tensor,
    fmt: FloatFormat,
    mode: RoundMode,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    native: bool,
) -> torch.Tensor:
    """Round a float64 result that lies in the cell of the exact one (or is exact)."""
    rounded = value if native else _common.round_to(value, fmt, mode, generator)
    return rounded.to(dtype)


@explicit
def add(
    x: torch.Tensor,
    y: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x + y`` correctly rounded to ``fmt`` (``RO53`` of the TwoSum, then one rounding).

    >>> add(torch.tensor([1.0]), torch.tensor([2.0**-11]), "fp16").item()  # a tie, to even
    1.0
    """
    (a, b), fmt, mode, dtype, native = _setup({"x": x, "y": y}, fmt, mode, "add")
    return _common.add_rounded(a, b, fmt, mode, generator, native).to(dtype)


@explicit
def sub(
    x: torch.Tensor,
    y: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x - y`` correctly rounded to ``fmt``: ``x + (-y)``, as IEEE 754 defines it."""
    (a, b), fmt, mode, dtype, native = _setup({"x": x, "y": y}, fmt, mode, "sub")
    return _common.add_rounded(a, -b, fmt, mode, generator, native).to(dtype)


@explicit
def mul(
    x: torch.Tensor,
    y: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x * y`` correctly rounded to ``fmt`` (the float64 product is exact)."""
    (a, b), fmt, mode, dtype, native = _setup({"x": x, "y": y}, fmt, mode, "mul")
    return _finish(a * b, fmt, mode, generator, dtype, native)


@explicit
def div(
    x: torch.Tensor,
    y: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x / y`` correctly rounded to ``fmt`` (float64 quotient: separation lemma)."""
    (a, b), fmt, mode, dtype, native = _setup({"x": x, "y": y}, fmt, mode, "div")
    return _finish(a / b, fmt, mode, generator, dtype, native)


@explicit
def sqrt(
    x: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``sqrt(x)`` correctly rounded to ``fmt`` (float64 root: separation lemma).

    torch's CPU float32 kernel returns ``0x1.ffep-2`` here (not correctly rounded):

    >>> sqrt(torch.tensor([0.25 - 2.0**-13]), "fp32").item().hex()
    '0x1.ffdffe0000000p-2'
    """
    (a,), fmt, mode, dtype, native = _setup({"x": x}, fmt, mode, "sqrt")
    return _finish(torch.sqrt(a), fmt, mode, generator, dtype, native)


@explicit
def fma(
    x: torch.Tensor,
    y: torch.Tensor,
    z: torch.Tensor,
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x * y + z`` with a single rounding to ``fmt`` (fused multiply-add).

    Method and proof: ``P = x*y`` is exact in float64 (``2p <= 50`` bits, normal by the range
    condition). TwoSum gives ``S = RN53(P + z)`` and ``E`` with ``S + E == P + z`` exactly.
    ``V = RO53(P + z)`` is ``S`` when ``E == 0`` or ``S`` has an odd last bit, else the float64
    neighbour of ``S`` toward ``E``; by the round-to-odd theorem (``p + 2 <= 53``) ``V`` lies in
    the same cell of ``fmt``'s values and midpoints as ``P + z``, so ``round(V, fmt, mode)`` is
    the correctly rounded fused result for every deterministic mode. An exact zero result
    takes the IEEE sign of ``P + z``.

    >>> x, y, z = torch.tensor([1 + 2.0**-10]), torch.tensor([1 - 2.0**-10]), torch.tensor([-1.0])
    >>> fma(x, y, z, "fp16").item() == -(2.0**-20), add(mul(x, y, "fp16"), z, "fp16").item()
    (True, 0.0)
    """
    (a, b, c), fmt, mode, dtype, _ = _setup({"x": x, "y": y, "z": z}, fmt, mode, "fma")
    return _common.add_rounded(a * b, c, fmt, mode, generator, False).to(dtype)
