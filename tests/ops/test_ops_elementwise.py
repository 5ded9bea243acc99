"""mperror.ops elementwise arithmetic: exhaustive and property tests against exact arithmetic.

Oracle: the exact result as a ``fractions.Fraction`` rounded by ``mperror.reference.round_scalar``
(the readable rational rounding). Square roots are decided exactly by comparing the squares of
the format's values and midpoints with the Fraction operand. Specials (infinities, NaN, division
by zero) and the signs of exact zeros follow IEEE 754, written out below. Exhaustive over every
pair (fma: every triple) of tiny formats, Hypothesis for fp16 and bf16.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mperror
from mperror import formats, ops, testing
from mperror.formats import FloatFormat
from mperror.reference import round_scalar
from mperror.rounding import RoundMode

DETERMINISTIC = [m for m in RoundMode if not m.is_stochastic]
BINARY = ["add", "sub", "mul", "div"]
# A tiny IEEE-style format with infinities, NaN and subnormals, to cover the specials.
TINY_IEEE = FloatFormat(precision=3, emax=3, name="tiny_ieee")


def same_bits(got: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Elementwise: equal values with equal signs (so -0 != +0), or both NaN."""
    got, expected = got.double(), expected.double()
    equal = (got == expected) & (torch.signbit(got) == torch.signbit(expected))
    return equal | (got.isnan() & expected.isnan())


def assert_same(got: torch.Tensor, expected: torch.Tensor, *inputs: torch.Tensor) -> None:
    ok = same_bits(got, expected)
    if not ok.all():
        i = int((~ok).nonzero()[0])
        args = ", ".join(repr(t.reshape(-1)[i].item()) for t in inputs)
        raise AssertionError(
            f"{int((~ok).sum())} mismatches; first: ({args}) got {got.reshape(-1)[i].item()!r} "
            f"expected {expected.reshape(-1)[i].item()!r}"
        )


# -- the oracle ------------------------------------------------------------------------------


def _zero_sum_sign(x: float, y: float, mode: RoundMode) -> float:
    """IEEE 754 6.3: an exact zero sum x + y is +0, or -0 under roundTowardNegative, except
    that (+0) + (+0) = +0 and (-0) + (-0) = -0 in every mode."""
    if x == 0 and y == 0 and math.copysign(1, x) == math.copysign(1, y):
        return x
    return -0.0 if mode is RoundMode.TOWARD_NEGATIVE else 0.0


def _ieee_float64(op: str, args: tuple[float, ...]) -> float:
    """The float64 IEEE result, used only where it is exact: specials and signed zeros."""
    t = [torch.tensor(a, dtype=torch.float64) for a in args]
    result = {
        "add": lambda: t[0] + t[1],
        "sub": lambda: t[0] - t[1],
        "mul": lambda: t[0] * t[1],
        "div": lambda: t[0] / t[1],
        "sqrt": lambda: torch.sqrt(t[0]),
        "fma": lambda: t[0] * t[1] + t[2],
    }[op]()
    return result.item()


def expected_value(op: str, args: tuple[float, ...], fmt: FloatFormat, mode: RoundMode) -> float:
    """The correctly rounded result of ``op`` on format values ``args``, by the definitions."""
    if not all(math.isfinite(a) for a in args) or (op == "div" and args[1] == 0):
        return round_scalar(_ieee_float64(op, args), fmt, mode)  # inf or NaN, exactly
    exact = [Fraction(a) for a in args]
    if op == "sqrt":
        return sqrt_reference(args[0], fmt, mode)
    value = {
        "add": lambda: exact[0] + exact[1],
        "sub": lambda: exact[0] - exact[1],
        "mul": lambda: exact[0] * exact[1],
        "div": lambda: exact[0] / exact[1],
        "fma": lambda: exact[0] * exact[1] + exact[2],
    }[op]()
    if value != 0:
        return round_scalar(value, fmt, mode)
    if op in ("mul", "div"):
        return math.copysign(0.0, args[0]) * math.copysign(1.0, args[1])
    if op == "fma":
        return _zero_sum_sign(args[0] * args[1], args[2], mode)  # format products are exact
    return _zero_sum_sign(args[0], args[1] if op == "add" else -args[1], mode)


@functools.lru_cache(maxsize=8)
def _values_and_squares(fmt: FloatFormat) -> tuple[list[Fraction], list[Fraction]]:
    values = [Fraction(v) for v in fmt.finite_values().tolist() if v >= 0]
    return values, [v * v for v in values]


def sqrt_reference(a: float, fmt: FloatFormat, mode: RoundMode) -> float:
    """The correctly rounded square root, decided exactly.

    With ``lo <= sqrt(a) < hi`` neighbouring format values (``lo**2 <= a < hi**2``) and
    ``mid = (lo + hi) / 2``, comparing ``a`` with ``lo**2`` and ``mid**2`` places ``sqrt(a)`` in
    one cell of the format's values-and-midpoints; every deterministic rounding depends only on
    that cell, so rounding any point strictly inside it gives the answer.
    """
    if math.isnan(a) or a < 0:
        return math.nan
    if a == 0 or math.isinf(a):
        return round_scalar(a, fmt, mode)
    values, squares = _values_and_squares(fmt)
    target = Fraction(a)
    i = bisect.bisect_right(squares, target) - 1
    lo = values[i]
    if squares[i] == target:
        return round_scalar(lo, fmt, mode)
    hi = values[i + 1]  # sqrt(a) <= sqrt(max) < max, so hi exists
    mid = (lo + hi) / 2
    if target < mid * mid:
        inside = (lo + mid) / 2
    elif target > mid * mid:
        inside = (mid + hi) / 2
    else:
        inside = mid
    return round_scalar(inside, fmt, mode)


def run_op(op: str, tensors: list[torch.Tensor], fmt, mode, **kwargs) -> torch.Tensor:
    return getattr(ops, op)(*tensors, fmt, mode, **kwargs)


def all_values(fmt: FloatFormat, dtype=torch.float64) -> torch.Tensor:
    """Every value of ``fmt``: finite ones, -0, and inf/NaN where the format has them."""
    extra = [-0.0]
    if fmt.has_inf:
        extra += [math.inf, -math.inf]
    if fmt.has_nan:
        extra.append(math.nan)
    return torch.cat([fmt.finite_values(dtype=dtype), torch.tensor(extra, dtype=dtype)])


def check(op: str, columns: list[torch.Tensor], fmt: FloatFormat, modes=DETERMINISTIC) -> None:
    rows = list(zip(*(c.tolist() for c in columns), strict=True))
    for mode in modes:
        got = run_op(op, columns, fmt, mode)
        expected = torch.tensor(
            [expected_value(op, r, fmt, mode) for r in rows], dtype=columns[0].dtype
        )
        assert_same(got, expected, *columns)


# -- exhaustive ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [formats.E2M1, formats.E3M2, TINY_IEEE], ids=str)
@pytest.mark.parametrize("op", BINARY)
def test_binary_ops_exhaustive(fmt: FloatFormat, op: str) -> None:
    """Oracle: Fraction result + round_scalar, every pair of values (signed zeros, specials),
    every deterministic mode."""
    values = all_values(fmt)
    x, y = torch.cartesian_prod(values, values).unbind(1)
    check(op, [x, y], fmt)


@pytest.mark.parametrize("op", BINARY)
def test_binary_ops_e4m3fn_subset(op: str) -> None:
    """Oracle as above; e4m3fn's 254 finite values against a strided fifth of them."""
    fmt = formats.E4M3FN
    values = all_values(fmt)
    x, y = torch.cartesian_prod(values, values[::5]).unbind(1)
    check(op, [x, y], fmt, modes=[RoundMode.NEAREST_EVEN, RoundMode.TOWARD_NEGATIVE])


@pytest.mark.parametrize("fmt", [formats.E2M1, formats.E3M2, formats.E4M3FN, TINY_IEEE], ids=str)
def test_sqrt_exhaustive(fmt: FloatFormat) -> None:
    """Oracle: the exact square comparison of sqrt_reference, every value, every mode."""
    check("sqrt", [all_values(fmt)], fmt)


def test_fma_exhaustive() -> None:
    """Oracle: Fraction x*y + z rounded once; every triple of e2m1 values, every mode."""
    values = all_values(formats.E2M1)
    x, y, z = torch.cartesian_prod(values, values, values).unbind(1)
    check("fma", [x, y, z], formats.E2M1)


@pytest.mark.parametrize("fmt", [formats.E3M2, TINY_IEEE], ids=str)
def test_fma_sample(fmt: FloatFormat) -> None:
    """Oracle as above, on 4,000 random triples of values (specials included for tiny_ieee)."""
    values = all_values(fmt)
    gen = torch.Generator().manual_seed(1)
    picks = torch.randint(len(values), (3, 4000), generator=gen)
    check("fma", [values[i] for i in picks], fmt)


def test_fma_sums_needing_more_than_53_bits() -> None:
    """Oracle: Fraction arithmetic. x*y + z where float64 cannot hold the exact sum (a tiny z
    against a large product), so RN53 alone would give the wrong directed rounding or a false
    tie: these are the cases the round-to-odd step exists for."""
    fmt = formats.FP32
    big = [1.0, 1.0 + 2.0**-23, -(2.0 - 2.0**-23), 3.0 * 2.0**100]
    tiny = [2.0**-149, -(2.0**-149), 2.0**-100, -(2.0**-60) * 3]
    rows = [(a, b, c) for a, b in itertools.product(big, big) for c in tiny]
    # Exact ties of fp32 perturbed below float64's resolution.
    rows += [(1.0, 1.0 + 2.0**-23, 2.0**-24 * sign + 2.0**-149) for sign in (1, -1)]
    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24, an fp32 tie, moved below it by 2**-149.
    rows += [(1.0 + 2.0**-12, 1.0 + 2.0**-12, -(2.0**-149))]
    columns = [torch.tensor(c, dtype=torch.float32) for c in zip(*rows, strict=True)]
    check("fma", columns, fmt)


@pytest.mark.parametrize("op", ["add", "sub"])
def test_fp32_sums_beyond_float64(op: str) -> None:
    """Oracle: Fraction arithmetic. fp32 operands whose exact sum needs more than 53 bits:
    the float64 sum rounds, and only round-to-odd keeps the directed modes right."""
    x = torch.tensor([1.0, -1.0, 2.0**100, 1.0 + 2.0**-23, 2.0**-149], dtype=torch.float32)
    y = torch.tensor([2.0**-149, 2.0**-149, -(2.0**-100), -(2.0**-126), -(2.0**20)])
    check(op, [x, y], formats.FP32)


# -- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fp16", "bf16"])
@settings(max_examples=40)
@given(data=st.data())
def test_16_bit_formats_property(name: str, data) -> None:
    """Oracle: Fraction + round_scalar (sqrt: the exact square comparison) on Hypothesis
    draws of fp16/bf16 values, specials included, every op and deterministic mode."""
    fmt = formats.get(name)
    rows = data.draw(st.lists(st.tuples(*[testing.value_of(fmt)] * 3), min_size=1, max_size=8))
    columns = [torch.tensor(c, dtype=torch.float32) for c in zip(*rows, strict=True)]
    for op in BINARY:
        check(op, columns[:2], fmt)
    check("sqrt", columns[:1], fmt)
    check("fma", columns, fmt)


@settings(max_examples=60)
@given(fmt=testing.formats(max_precision=12), data=st.data())
def test_custom_formats_property(fmt: FloatFormat, data) -> None:
    """Oracle: Fraction + round_scalar on random formats (with and without subnormals,
    infinities, NaN; saturating or not) that satisfy the range condition."""
    try:
        ops.add(torch.zeros(1), torch.zeros(1), fmt)
    except ValueError:
        return  # the format's range is too wide for the float64 lemmas: refused, as documented
    rows = data.draw(st.lists(st.tuples(*[testing.value_of(fmt)] * 3), min_size=1, max_size=8))
    columns = [torch.tensor(c, dtype=torch.float32) for c in zip(*rows, strict=True)]
    for op in ["add", "mul", "div"]:
        check(op, columns[:2], fmt)
    check("fma", columns, fmt)


# -- pinned examples -------------------------------------------------------------------------


def test_sqrt_pinned_example_from_references() -> None:
    """Oracle: sqrt(0.25 - 2**-13) lies just below the fp16 midpoint 0.5 - 2**-13 (Taylor:
    0.5 - 2**-13 - 2**-28 - ...), so the correct fp16 result is 0.5 - 2**-12 (0.49976) and the
    correct fp32 one 0x1.ffdffep-2; sqrt_reference decides the fp16 case exactly too. torch's
    CPU float32 sqrt returns the midpoint 0x1.ffep-2 itself, which then rounds to 0.5."""
    x = torch.tensor([0.25 - 2.0**-13])
    assert ops.sqrt(x, "fp16").item() == 0.5 - 2.0**-12
    assert ops.sqrt(x, "fp16").item() == sqrt_reference(x.item(), formats.FP16, "nearest_even")
    assert ops.sqrt(x, "fp32").item() == float.fromhex("0x1.ffdffep-2")
    assert ops.sqrt(x.double(), "fp32").item() == float.fromhex("0x1.ffdffep-2")
    if torch.sqrt(x).item() == float.fromhex("0x1.ffep-2"):  # torch's kernel on this machine
        assert mperror.round(torch.sqrt(x), "fp16").item() == 0.5


# -- stochastic modes ------------------------------------------------------------------------

# P(up) estimated from n = 40,000 draws: standard deviation sqrt(f (1 - f) / n) <= 0.0025; five
# of them as the tolerance makes a false failure less likely than 6e-7.
N_DRAWS = 40_000


def test_stochastic_add_probability() -> None:
    """Oracle: 1 + 2**-13 lies 1/8 of the fp16 spacing 2**-10 above 1, so SR goes up with
    probability 1/8 exactly (the float64 sum is exact)."""
    x = torch.ones(N_DRAWS)
    y = torch.full((N_DRAWS,), 2.0**-13)
    r = ops.add(x, y, "fp16", "stochastic", generator=torch.Generator().manual_seed(2))
    assert ((r == 1.0) | (r == 1.0 + 2.0**-10)).all()
    assert abs((r > 1).double().mean().item() - 1 / 8) <= 5 * math.sqrt(1 / 8 * 7 / 8 / N_DRAWS)


@pytest.mark.parametrize("mode", ["stochastic", "stochastic_equal"])
@pytest.mark.parametrize("op", ["add", "mul", "div", "sqrt", "fma"])
def test_stochastic_results_are_neighbours(op: str, mode: str) -> None:
    """Oracle: a stochastic rounding is one of the two directed roundings (each checked
    exhaustively above)."""
    gen = torch.Generator().manual_seed(4)
    args = [torch.rand(500, generator=gen) + 0.1 for _ in range({"sqrt": 1, "fma": 3}.get(op, 2))]
    r = run_op(op, args, "bf16", mode, generator=gen)
    down = run_op(op, args, "bf16", "toward_negative")
    up = run_op(op, args, "bf16", "toward_positive")
    assert ((r == down) | (r == up)).all()


# -- operands, dtypes, errors ----------------------------------------------------------------


def test_operands_are_rounded_to_nearest_first() -> None:
    """Oracle: the documented contract op(x, y) == op(round(x), round(y))."""
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(2, 300, generator=gen)
    rx, ry = mperror.round(x, "e4m3fn"), mperror.round(y, "e4m3fn")
    for op in BINARY:
        for mode in ("nearest_even", "toward_zero"):
            assert_same(run_op(op, [x, y], "e4m3fn", mode), run_op(op, [rx, ry], "e4m3fn", mode))


@pytest.mark.parametrize(
    ("dtype", "fmt"),
    [(torch.float32, "fp16"), (torch.float64, "bf16"), (torch.float16, "e4m3fn"),
     (torch.bfloat16, "e5m2"), (torch.float32, "fp32")],
)  # fmt: skip
def test_dtype_in_dtype_out(dtype: torch.dtype, fmt: str) -> None:
    """Oracle: the same values computed from float64 operands."""
    gen = torch.Generator().manual_seed(5)
    x, y = (torch.rand(2, 50, generator=gen) + 0.5).to(dtype)
    for op in BINARY:
        got = run_op(op, [x, y], fmt, "nearest_even")
        assert got.dtype == dtype
        assert_same(got, run_op(op, [x.double(), y.double()], fmt, "nearest_even"))
    assert ops.sqrt(x, fmt).dtype == dtype
    assert ops.fma(x, y, x, fmt).dtype == dtype


def test_broadcasting_and_promotion() -> None:
    """Oracle: elementwise results on explicitly expanded float64 operands."""
    x = torch.rand(3, 1, dtype=torch.float32)
    y = torch.rand(4, dtype=torch.float64)
    got = ops.mul(x, y, "fp16")
    assert got.shape == (3, 4) and got.dtype == torch.float64
    assert_same(got, ops.mul(x.double().expand(3, 4), y.expand(3, 4), "fp16"))


def test_fp64_is_native_float64() -> None:
    """Oracle: IEEE float64 arithmetic is correctly rounded binary64."""
    gen = torch.Generator().manual_seed(6)
    x, y = torch.randn(2, 100, dtype=torch.float64, generator=gen)
    assert torch.equal(ops.add(x, y, "fp64"), x + y)
    assert torch.equal(ops.div(x, y, "fp64"), x / y)
    assert torch.equal(ops.sqrt(x.abs(), "fp64"), x.abs().sqrt())


def test_bad_arguments_raise() -> None:
    x = torch.ones(2)
    with pytest.raises(ValueError, match="precision <= 25"):
        ops.add(x.double(), x.double(), FloatFormat(precision=30, emax=100))
    with pytest.raises(ValueError, match="range is too wide"):
        ops.mul(x.double(), x.double(), FloatFormat(precision=8, emax=600))
    with pytest.raises(ValueError, match="nearest even"):
        ops.add(x.double(), x.double(), "fp64", "toward_zero")
    with pytest.raises(ValueError, match="fused"):
        ops.fma(x.double(), x.double(), x.double(), "fp64")
    with pytest.raises(ValueError, match="cannot hold"):
        ops.add(x.half(), x.half(), "fp32")
    with pytest.raises(ValueError, match="cannot hold"):
        ops.add(x, x, "fp64")
    with pytest.raises(TypeError, match="y must be"):
        ops.add(x, torch.ones(2, dtype=torch.int64), "fp16")
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        ops.sqrt(2.0, "fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be one of"):
        ops.add(x, x, "fp16", "nearest")
    with pytest.raises(ValueError, match="unknown format"):
        ops.add(x, x, "fp7")
    # torch's own broadcasting error had named "tensor a" and "tensor b"
    with pytest.raises(ValueError, match=r"mul: the operands' shapes do not broadcast: x \(2,\)"):
        ops.mul(x, torch.ones(3), "fp16")
    with pytest.raises(ValueError, match=r"fma: .* z \(4,\)"):
        ops.fma(x, x, torch.ones(4), "fp16")


@pytest.mark.gpu
@pytest.mark.parametrize("op", [*BINARY, "sqrt", "fma"])
def test_cuda_matches_cpu(op: str) -> None:
    """Oracle: the CPU results (checked exhaustively above), bit for bit: every step is an
    IEEE float64 operation or mperror.round, both exact on either device."""
    values = all_values(formats.E3M2)
    columns = list(torch.cartesian_prod(values, values, values[::7]).unbind(1))
    arity = {"sqrt": 1, "fma": 3}.get(op, 2)
    for mode in DETERMINISTIC:
        cpu = run_op(op, columns[:arity], "e3m2", mode)
        cuda = run_op(op, [c.cuda() for c in columns[:arity]], "e3m2", mode)
        assert cuda.device.type == "cuda"
        assert_same(cuda.cpu(), cpu, *columns[:arity])
