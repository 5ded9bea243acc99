"""mperror.ops sum / dot / matmul: every accumulation model replayed step by step, and bounds.

Oracles:
1. an independent scalar replay of each documented model: a Python loop over exact
   ``fractions.Fraction`` additions, each rounded by ``mperror.reference.round_scalar``; it must
   match bit for bit, in every deterministic mode;
2. the deterministic error bounds ``gamma_k sum|terms|`` against the exact Fraction result;
3. exact arithmetic (small integers) against torch's own matmul and sum;
4. torch's native CPU float16 matmul, within the deterministic accumulation bound.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mperror
from mperror import formats, ops, testing
from mperror.formats import FloatFormat
from mperror.ops import Accumulation
from mperror.reference import round_scalar
from mperror.rounding import RoundMode

DETERMINISTIC = [m for m in RoundMode if not m.is_stochastic]


def gamma(k: int, u: float) -> float:
    """gamma_k = k u / (1 - k u) (Higham, ASNA eq. 3.8), for k u < 1."""
    assert k * u < 1
    return k * u / (1 - k * u)


def same_bits(got: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    got, expected = got.double(), expected.double()
    equal = (got == expected) & (torch.signbit(got) == torch.signbit(expected))
    return equal | (got.isnan() & expected.isnan())


# -- the scalar replay -----------------------------------------------------------------------


def fl_add(s: float, t: float, fmt: FloatFormat, mode: RoundMode) -> float:
    """One accumulation step: the exact sum rounded once; IEEE signs for exact zeros; float
    arithmetic for infinite or NaN operands (exact there)."""
    if not (math.isfinite(s) and math.isfinite(t)):
        return round_scalar(s + t, fmt, mode)
    exact = Fraction(s) + Fraction(t)
    if exact != 0:
        return round_scalar(exact, fmt, mode)
    if s == 0 and t == 0 and math.copysign(1, s) == math.copysign(1, t):
        return s
    return -0.0 if mode is RoundMode.TOWARD_NEGATIVE else 0.0


def replay(
    terms: list[float], model: Accumulation, acc: FloatFormat, out: FloatFormat, mode: RoundMode
) -> float:
    """The model of mperror.ops.reduce, written as plainly as possible (see its docstring)."""

    def fl(v: float) -> float:
        return round_scalar(v, acc, mode)

    def recursive(ts: list[float]) -> float:
        s = ts[0]
        for t in ts[1:]:
            s = fl_add(s, t, acc, mode)
        return s

    if not terms:
        return 0.0
    if model.chunk is not None:
        k = model.chunk
        chunk_sums = [fl(recursive(terms[i : i + k])) for i in range(0, len(terms), k)]
        s = recursive(chunk_sums)
    elif model.order == "recursive":  # the first term rounded into A; the rest added exactly
        s = recursive([fl(terms[0]), *terms[1:]])
    elif model.order == "pairwise":
        level = [fl(t) for t in terms]
        while len(level) > 1:
            pairs = [fl_add(level[i], level[i + 1], acc, mode) for i in range(0, len(level) - 1, 2)]
            level = pairs + (level[-1:] if len(level) % 2 else [])
        s = level[0]
    else:
        b = model.block
        blocks = [terms[i : i + b] for i in range(0, len(terms), b)]
        s = recursive([recursive([fl(block[0]), *block[1:]]) for block in blocks])
    return round_scalar(s, out, mode)


MODELS = [
    Accumulation(),
    Accumulation(order="pairwise"),
    Accumulation(order="blocked", block=3),
    Accumulation(order="blocked", block=8),
    Accumulation(chunk=4),
    Accumulation(chunk=3, fmt="fp16"),
]
# (input/output format, accumulation format): narrower, equal and wider accumulators.
FORMAT_PAIRS = [("fp16", None), ("bf16", "fp32"), ("e4m3fn", "fp16"), ("fp16", "bf16"),
                ("fp32", None), ("e5m2", "e5m2")]  # fmt: skip


def model_id(model: Accumulation) -> str:
    parts = [model.order, str(model.block or ""), f"chunk{model.chunk}" if model.chunk else ""]
    return "-".join(p for p in [*parts, str(model.fmt or "")] if p)


def with_format(model: Accumulation, acc: str | None) -> Accumulation:
    if acc is None or model.fmt is not None:
        return model
    return Accumulation(fmt=acc, order=model.order, block=model.block, chunk=model.chunk)


def random_values(fmt: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Values of ``fmt`` of both signs over a few binades (float64), some exact repeats."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    x = x * torch.exp2(torch.randint(-4, 5, shape, generator=gen).double())
    return mperror.round(x, fmt)


@pytest.mark.parametrize("model", MODELS, ids=model_id)
@pytest.mark.parametrize(("fmt", "acc"), FORMAT_PAIRS)
def test_dot_matches_scalar_replay(model: Accumulation, fmt: str, acc: str | None) -> None:
    """Oracle: the scalar replay, bit for bit, every deterministic mode; lengths 1..37 and an
    empty dot product, batched over independent outputs."""
    model = with_format(model, acc)
    out = formats.get(fmt)
    acc_fmt = model.format_for(out)
    for n in (0, 1, 2, 5, 16, 37):
        x = random_values(fmt, (3, n), seed=n)
        y = random_values(fmt, (3, n), seed=100 + n)
        for mode in DETERMINISTIC:
            got = ops.dot(x, y, fmt, accumulate=model, mode=mode)
            expected = []
            for row_x, row_y in zip(x.tolist(), y.tolist(), strict=True):
                products = [a * b for a, b in zip(row_x, row_y, strict=True)]  # exact in float
                if model.chunk is None:
                    products = [round_scalar(p, acc_fmt, mode) for p in products]
                expected.append(replay(products, model, acc_fmt, out, mode))
            ok = same_bits(got, torch.tensor(expected, dtype=torch.float64))
            assert ok.all(), (n, mode, got.tolist(), expected)


@pytest.mark.parametrize("model", MODELS, ids=model_id)
@pytest.mark.parametrize(("fmt", "acc"), FORMAT_PAIRS)
def test_sum_matches_scalar_replay(model: Accumulation, fmt: str, acc: str | None) -> None:
    """Oracle: the scalar replay of the sum of the (rounded) inputs, every deterministic mode;
    with an accumulator narrower than the inputs (fp16 into bf16) a term must enter its
    addition exactly, not rounded to the accumulator first."""
    model = with_format(model, acc)
    out = formats.get(fmt)
    x = torch.randn(4, 29, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    for mode in DETERMINISTIC:
        got = ops.sum(x, fmt, dim=1, accumulate=model, mode=mode)
        rounded = mperror.round(x, fmt).tolist()  # inputs are rounded to fmt, to nearest
        expected = [replay(r, model, model.format_for(out), out, mode) for r in rounded]
        assert same_bits(got, torch.tensor(expected, dtype=torch.float64)).all()


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_partial_sums_beyond_float64_overflow_by_the_mode(mode: RoundMode) -> None:
    """Oracle: the scalar replay (exact Fraction sums). A p = 24 accumulator with emax 1022
    summing float64 terms near 1.7e308: the exact partial sum passes float64's range, where
    float64's own sum is inf; toward zero (and toward negative, these being positive) the
    correctly rounded sum is the accumulator's max, not inf."""
    acc = FloatFormat(precision=24, emax=1022)
    x = torch.tensor([1.7e308, 1.7e308, -1.0e308], dtype=torch.float64)
    model = Accumulation(fmt=acc)
    got = ops.sum(x, "fp64", accumulate=model, mode=mode)
    expected = replay(x.tolist(), model, acc, formats.FP64, mode)
    assert same_bits(got, torch.tensor(expected, dtype=torch.float64)).all(), (got, expected)


@settings(max_examples=60)
@given(
    name=st.sampled_from(["e4m3fn", "e5m2", "fp16"]),
    model=st.sampled_from(MODELS),
    mode=st.sampled_from(DETERMINISTIC),
    data=st.data(),
)
def test_sum_replay_property(name: str, model: Accumulation, mode: RoundMode, data) -> None:
    """Oracle: the scalar replay on Hypothesis lists of format values, overflow to inf or
    saturation included (e4m3fn saturates, e5m2 and fp16 overflow to inf)."""
    fmt = formats.get(name)
    values = data.draw(st.lists(testing.value_of(fmt, specials=False), max_size=20))
    x = torch.tensor(values, dtype=torch.float64)
    got = ops.sum(x, fmt, accumulate=model, mode=mode)
    expected = replay(values, model, model.format_for(fmt), fmt, mode)
    assert same_bits(got, torch.tensor(expected, dtype=torch.float64)).all()


# -- deterministic bounds --------------------------------------------------------------------


def normal_range_values(fmt: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Values of ``fmt`` in [2**-4, 12) in magnitude, both signs: their products (>= 2**-8) and
    sums of up to 200 of them (< 2**15) stay in fp16's and bf16's normal range, so the gamma
    bounds (which assume no underflow or overflow) apply."""
    gen = torch.Generator().manual_seed(seed)
    magnitude = (0.5 + torch.rand(shape, generator=gen, dtype=torch.float64)) * torch.exp2(
        torch.randint(-3, 4, shape, generator=gen).double()
    )
    sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).double()
    return mperror.round(sign * magnitude, fmt)


def roundings_per_term(model: Accumulation, n: int) -> int:
    """Most roundings in the accumulation format that any one term of a sum suffers."""
    if model.order == "pairwise":
        return math.ceil(math.log2(n)) if n > 1 else 0
    if model.order == "blocked":
        return (model.block - 1) + (math.ceil(n / model.block) - 1)
    if model.chunk is not None:
        return (model.chunk - 1) + (math.ceil(n / model.chunk) - 1)
    return n - 1


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
@pytest.mark.parametrize(
    "model",
    [Accumulation(), Accumulation(order="pairwise"), Accumulation(order="blocked", block=16)],
    ids=model_id,
)
@pytest.mark.parametrize("n", [10, 100, 200])
def test_error_within_gamma_bound(fmt: str, model: Accumulation, n: int) -> None:
    """Oracle: exact Fraction sums. With accumulation in fmt and round to nearest (no
    underflow: all magnitudes are far above fmt's smallest normal),
    |s^ - s| <= gamma_k sum|x_i| with k = roundings_per_term (k = n - 1 recursive,
    ceil(log2 n) pairwise, (b - 1) + (ceil(n/b) - 1) blocked), and for a dot product
    |d^ - d| <= gamma_(k+1) sum|x_i y_i| (one more rounding: the product's) (Higham, ASNA
    ch. 3-4)."""
    u = formats.get(fmt).unit_roundoff
    k = roundings_per_term(model, n)
    x = normal_range_values(fmt, (20, n), seed=n)
    y = normal_range_values(fmt, (20, n), seed=n + 1)
    sums = ops.sum(x, fmt, dim=1, accumulate=model)
    dots = ops.dot(x, y, fmt, accumulate=model)
    for i in range(20):
        terms = [Fraction(v) for v in x[i].tolist()]
        pairs = zip(x[i].tolist(), y[i].tolist(), strict=True)
        products = [Fraction(a) * Fraction(b) for a, b in pairs]
        abs_sum = sum(abs(t) for t in terms)
        abs_dot = sum(abs(p) for p in products)
        assert abs(Fraction(sums[i].item()) - sum(terms)) <= Fraction(gamma(k, u)) * abs_sum
        assert abs(Fraction(dots[i].item()) - sum(products)) <= Fraction(gamma(k + 1, u)) * abs_dot


@pytest.mark.parametrize("chunk", [4, 8, 16])
def test_block_fma_error_within_bound(chunk: int) -> None:
    """Oracle: exact Fraction dot products. fp16 inputs, exact products, fp32 accumulation in
    chunks of k, one final rounding to fp16: |d^ - d| <= u16 |d| + (1 + u16) gamma_j(u32)
    sum|x_i y_i| with j = (k - 1) + (ceil(n/k) - 1) roundings per term (Blanchard et al. 2020,
    with this model's order), since |fl16(s) - d| <= u16 |s| + |s - d| and
    |s| <= |d| + |s - d|."""
    n = 64
    u16, u32 = formats.FP16.unit_roundoff, formats.FP32.unit_roundoff
    model = Accumulation(chunk=chunk)
    x = normal_range_values("fp16", (20, n), seed=3)
    y = normal_range_values("fp16", (20, n), seed=4)
    got = ops.dot(x, y, "fp16", accumulate=model)
    j = roundings_per_term(model, n)
    for i in range(20):
        pairs = zip(x[i].tolist(), y[i].tolist(), strict=True)
        products = [Fraction(a) * Fraction(b) for a, b in pairs]
        exact = sum(products)
        bound = Fraction(u16) * abs(exact) + Fraction((1 + u16) * gamma(j, u32)) * sum(
            abs(p) for p in products
        )
        assert abs(Fraction(got[i].item()) - exact) <= bound


# -- exact cases and torch -------------------------------------------------------------------


def test_float32_integer_matmul_is_exact() -> None:
    """Oracle: exact integer arithmetic. Entries in [-8, 8) and k = 64: every partial sum is
    an integer below 2**12, so fp32 accumulation (recursive) is exact, as is torch's."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-8, 8, (64, 64), generator=gen).float()
    b = torch.randint(-8, 8, (64, 64), generator=gen).float()
    exact = (a.long() @ b.long()).float()
    got = ops.matmul(a, b, "fp32", accumulate="fp32", order="recursive")
    assert got.dtype == torch.float32
    assert torch.equal(got, exact)
    assert torch.equal(got, a @ b)


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((5, 7), (7, 3)), ((2, 5, 7), (2, 7, 3)), ((2, 1, 5, 7), (3, 7, 4)), ((4, 0), (0, 3))],
)
def test_matmul_shapes_match_torch(shape_a, shape_b) -> None:
    """Oracle: torch.matmul on small integers (exact in fp32 and in float64)."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randint(-4, 4, shape_a, generator=gen).double()
    b = torch.randint(-4, 4, shape_b, generator=gen).double()
    for order, block in (("recursive", None), ("pairwise", None), ("blocked", 2)):
        got = ops.matmul(a, b, "fp32", order=order, block=block)
        assert got.shape == (a @ b).shape and got.dtype == torch.float64
        assert torch.equal(got, a @ b)


def test_fp16_matmul_with_fp32_accumulation_agrees_with_torch() -> None:
    """Oracle: torch's native CPU float16 matmul. Assuming it accumulates in at least fp32
    (products of fp16 values are exact in fp32) and rounds once to fp16, both results C1, C2
    satisfy |C^ - C| <= u16 |C| + (1 + u16) gamma_k(u32) |A||B| (see the block-FMA test), so
    |C1 - C2| <= 2 u16 |C| + 2 (1 + u16) gamma_k(u32) |A||B| entrywise, C the exact product."""
    gen = torch.Generator().manual_seed(2)
    k = 96
    a = torch.randn(24, k, generator=gen).half()
    b = torch.randn(k, 16, generator=gen).half()
    u16, u32 = formats.FP16.unit_roundoff, formats.FP32.unit_roundoff
    ours = ops.matmul(a, b, "fp16", accumulate="fp32").tolist()
    native = (a @ b).tolist()
    rows = [[Fraction(v) for v in row] for row in a.tolist()]
    cols = [[Fraction(v) for v in col] for col in b.t().tolist()]
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            exact = sum(p * q for p, q in zip(row, col, strict=True))
            magnitude = sum(abs(p * q) for p, q in zip(row, col, strict=True))
            bound = (
                2 * Fraction(u16) * abs(exact) + Fraction(2 * (1 + u16) * gamma(k, u32)) * magnitude
            )
            assert abs(Fraction(ours[i][j]) - Fraction(native[i][j])) <= bound
    assert ops.matmul(a, b, "fp16", accumulate="fp32").dtype == torch.float16


@pytest.mark.parametrize(
    ("dim", "keepdim"),
    [(None, False), (None, True), (0, False), (-1, True), ((0, 2), False), ((2, 0), True)],
)
def test_sum_dims_match_torch(dim, keepdim) -> None:
    """Oracle: torch.sum on small integers (exact)."""
    x = torch.randint(-9, 9, (3, 4, 5), generator=torch.Generator().manual_seed(5)).float()
    expected = torch.sum(x, dim=dim, keepdim=keepdim) if dim is not None else x.sum()
    if dim is None and keepdim:
        expected = expected.reshape(1, 1, 1)
    got = ops.sum(x, "fp16", dim=dim, keepdim=keepdim)
    assert got.shape == expected.shape and got.dtype == x.dtype
    assert torch.equal(got, expected)
    assert torch.equal(ops.sum(torch.tensor(2.5), "fp16"), torch.tensor(2.5))


def test_operands_are_rounded_to_fmt_first() -> None:
    """Oracle: the documented contract, dot(x, y) == dot(round(x), round(y))."""
    gen = torch.Generator().manual_seed(6)
    x, y = torch.randn(2, 4, 30, generator=gen)
    rounded = [mperror.round(t, "e4m3fn") for t in (x, y)]
    assert torch.equal(ops.dot(x, y, "e4m3fn"), ops.dot(*rounded, "e4m3fn"))
    assert torch.equal(ops.sum(x, "e4m3fn", dim=1), ops.sum(rounded[0], "e4m3fn", dim=1))


# -- stochastic rounding ---------------------------------------------------------------------


def test_stochastic_sum_is_unbiased_where_nearest_stagnates() -> None:
    """Oracle: s = 1 + 400 * 2**-12. Round to nearest stagnates at 1 (each 2**-12 is a
    quarter of fp16's spacing 2**-10 at 1). Stochastic rounding is unbiased: each step's error
    has mean 0 and standard deviation <= 2**-11 (half the spacing in [1, 2)), so a sum's error
    is a martingale with standard deviation <= sqrt(400) 2**-11, and the mean of 500
    independent sums has standard deviation <= sqrt(400) 2**-11 / sqrt(500); the tolerance
    is 5 of those (2.2e-3, against the 0.098 that stagnation loses)."""
    batch, n = 500, 400
    x = torch.full((batch, n + 1), 2.0**-12, dtype=torch.float64)
    x[:, 0] = 1.0
    exact = 1 + n * 2.0**-12
    assert torch.equal(ops.sum(x[:2], "fp16", dim=1), torch.ones(2, dtype=torch.float64))
    gen = torch.Generator().manual_seed(8)
    got = ops.sum(x, "fp16", dim=1, mode="stochastic", generator=gen)
    tolerance = 5 * math.sqrt(n) * 2.0**-11 / math.sqrt(batch)
    assert abs(got.mean().item() - exact) <= tolerance
    again = ops.sum(x, "fp16", dim=1, mode="stochastic", generator=gen.manual_seed(8))
    assert torch.equal(got, again)


# -- arguments -------------------------------------------------------------------------------


def test_accumulation_record() -> None:
    model = Accumulation(fmt=torch.bfloat16, order="blocked", block=4)
    assert model.fmt is formats.BF16
    assert model.to_dict()["fmt"]["name"] == "bf16"
    assert Accumulation(chunk=8).format_for(formats.FP16) is formats.FP32
    assert Accumulation().format_for(formats.FP16) is formats.FP16


def test_bad_arguments_raise() -> None:
    x = torch.ones(4)
    with pytest.raises(ValueError, match="order must be one of"):
        Accumulation(order="kahan")
    with pytest.raises(ValueError, match="needs block"):
        Accumulation(order="blocked")
    with pytest.raises(ValueError, match="block applies"):
        Accumulation(block=4)
    with pytest.raises(ValueError, match="chunk must be"):
        Accumulation(chunk=0)
    with pytest.raises(ValueError, match="fixes its own order"):
        Accumulation(chunk=4, order="pairwise")
    with pytest.raises(ValueError, match="inside the Accumulation"):
        ops.sum(x, "fp16", accumulate=Accumulation(), order="pairwise")
    with pytest.raises(TypeError, match="accumulate must be"):
        ops.sum(x, "fp16", accumulate=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="accumulate: unknown format 'fp17'"):
        ops.sum(x, "fp16", accumulate="fp17")
    with pytest.raises(ValueError, match=r"fmt: dtype torch\.int32 has no mperror format"):
        ops.add(x, x, torch.int32)
    with pytest.raises(ValueError, match="nearest even"):
        ops.sum(x.double(), "fp16", accumulate="fp64", mode="toward_zero")
    with pytest.raises(ValueError, match="precision <= 51"):
        ops.sum(x, "fp16", accumulate=FloatFormat(precision=52, emax=100))
    with pytest.raises(ValueError, match="precision <= 25"):
        ops.dot(x.double(), x.double(), "fp64", accumulate=Accumulation(chunk=4, fmt="fp64"))
    with pytest.raises(ValueError, match="x and y must broadcast"):
        ops.dot(torch.ones(3), torch.ones(4), "fp16")
    with pytest.raises(ValueError, match="accumulate=None / 'fp64'") as refused:
        ops.dot(x.double(), x.double(), "fp64", accumulate="fp32")
    assert "or be fp64 itself" not in str(refused.value)  # it is fp64
    with pytest.raises(ValueError, match="cannot hold"):
        ops.sum(x.half(), "fp32")
    with pytest.raises(ValueError, match="out of range"):
        ops.sum(x, "fp16", dim=1)
    with pytest.raises(ValueError, match="repeated"):
        ops.sum(torch.ones(2, 2), "fp16", dim=(0, -2))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ops.matmul(x, x, "fp16")
    with pytest.raises(ValueError, match="cannot be multiplied"):
        ops.matmul(torch.ones(2, 3), torch.ones(2, 3), "fp16")
    with pytest.raises(ValueError, match="at least one dimension"):
        ops.dot(torch.tensor(1.0), torch.tensor(1.0), "fp16")


@pytest.mark.gpu
@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_cuda_matches_cpu(model: Accumulation) -> None:
    """Oracle: the CPU result (checked by the scalar replay above), bit for bit: TwoSum,
    round-to-odd and mperror.round are exact on either device."""
    a = random_values("fp16", (2, 9, 33), seed=11)
    b = random_values("fp16", (2, 33, 5), seed=12)
    for mode in ("nearest_even", "toward_negative"):
        cpu = ops.matmul(a, b, "fp16", accumulate=model, mode=mode)
        cuda = ops.matmul(a.cuda(), b.cuda(), "fp16", accumulate=model, mode=mode)
        assert cuda.device.type == "cuda"
        assert same_bits(cuda.cpu(), cpu).all()


def test_empty_dimensions_like_torch() -> None:
    """Oracle: torch.sum, torch.matmul and a row-wise dot on the same empty tensors (shapes,
    and zeros where an empty sum fills an output). A kept dimension of size 0 made sum's
    reshape ambiguous and raise."""
    for shape, dim in [((0, 3), 1), ((2, 0), 0), ((2, 0, 3), (0, 2)), ((0, 4), 0), ((0, 3), None)]:
        x = torch.ones(shape)
        for keepdim in (False, True):
            got = ops.sum(x, "fp16", dim=dim, keepdim=keepdim)
            want = torch.sum(x, dim=dim, keepdim=keepdim)
            assert got.shape == want.shape and torch.equal(got, want), (shape, dim, keepdim)
    for a, b in [((0, 3), (3, 2)), ((2, 3), (3, 0)), ((2, 0), (0, 4))]:
        got = ops.matmul(torch.ones(a), torch.ones(b), "fp16")
        assert torch.equal(got, torch.ones(a) @ torch.ones(b)), (a, b)
    got = ops.dot(torch.ones(0, 3), torch.ones(0, 3), "fp16")
    assert got.shape == (0,)


def test_matmul_blocks_stay_within_their_cap(monkeypatch) -> None:
    """Oracle: the same product computed in one block (the reduction is per output entry, so
    blocking must not change a bit), and the documented cap on a block's terms, here lowered to
    50 so that small batched shapes need blocks: whole batch entries where one fits (3 x 4 x 5
    x 2 = 40 terms per entry), rows of one entry otherwise (6 x 10 x 3 = 180 per entry, 30 per
    row). Blocks had covered every batch entry at once: the cap grew with the batch."""
    from mperror.ops import reduce as module

    cases = [((3, 4, 5), (3, 5, 2)), ((2, 6, 10), (1, 10, 3)), ((20, 1, 2), (2, 3))]
    whole = {}
    for a_shape, b_shape in cases:
        a, b = random_values("fp16", a_shape, seed=1), random_values("fp16", b_shape, seed=2)
        whole[a_shape] = (a, b, ops.matmul(a, b, "fp16", accumulate="fp32"))
    sizes = []
    reduce = module._Plan.reduce

    def spy(self, terms):
        sizes.append(terms.numel())
        return reduce(self, terms)

    monkeypatch.setattr(module, "_MAX_TERMS", 50)
    monkeypatch.setattr(module._Plan, "reduce", spy)
    for a, b, want in whole.values():
        sizes.clear()
        got = ops.matmul(a, b, "fp16", accumulate="fp32")
        assert torch.equal(got, want)
        assert len(sizes) > 1 and max(sizes) <= 50, sizes


def test_blocked_sum_of_negative_zeros_is_negative_zero() -> None:
    """Oracle: IEEE 754, (-0) + (-0) = -0; a block longer than the input must not add a +0."""
    got = ops.sum(torch.tensor([-0.0, -0.0], dtype=torch.float64), "fp16", order="blocked", block=3)
    assert got.item() == 0 and math.copysign(1.0, got.item()) == -1.0
