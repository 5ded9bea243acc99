"""What ``with mperror.emulate(...)`` does to a torch program: scope, aliasing, mutation, dtypes,
the report, randomness, nesting.

Oracles are named per test; most are "float64 computation rounded once" (``mperror.round`` of
a float64 result computed outside the emulator) or torch's own behaviour without emulation.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

import mperror
from mperror import emulate, formats
from mperror.emulate import OpClass, autocast, classify, pure
from mperror.emulate.mode import _Engine
from mperror.emulate.policy import as_policy
from mperror.formats import FloatFormat
from mperror.reference import round_scalar

OFF_GRID = 1 + 2.0**-20  # a float32 value that no format below fp32 holds


def rounded(x: torch.Tensor, fmt="fp16") -> torch.Tensor:
    """Oracle: the float64 value rounded once, stored in x's dtype."""
    return mperror.round(x.double(), fmt).to(x.dtype)


def test_import_and_exit_leave_torch_alone() -> None:
    """Oracle: torch's own arithmetic outside the block (no mode on the stack)."""
    x = torch.full((3,), OFF_GRID)
    assert _get_current_dispatch_mode_stack() == []
    with emulate("fp16"):
        assert len(_get_current_dispatch_mode_stack()) == 1
        inside = x * 1
    assert _get_current_dispatch_mode_stack() == []
    assert (inside == 1).all()
    assert (x * 1 == OFF_GRID).all()


def test_exception_restores_state() -> None:
    x = torch.full((2,), OFF_GRID)
    with pytest.raises(RuntimeError, match="boom"), emulate("bf16"):
        _ = x + 0
        raise RuntimeError("boom")
    assert _get_current_dispatch_mode_stack() == []
    assert ((x + 0) == OFF_GRID).all()


def test_nesting_innermost_wins() -> None:
    """Oracle: float64 products rounded once to the innermost block's format; the outer block
    neither rounds the inner block's float64 intermediates nor counts them."""
    x = torch.linspace(1, 2, 50) * OFF_GRID
    with emulate("bf16") as outer:
        with emulate("fp16") as inner:
            y16 = x * x
        ybf = x * x
    assert torch.equal(y16, rounded(x.double() * x.double(), "fp16").float())
    assert torch.equal(ybf, rounded(x.double() * x.double(), "bf16").float())
    assert inner.report().ops == {"aten.mul.Tensor": 1}
    assert outer.report().ops == {"aten.mul.Tensor": 1}


def test_explicit_operations_run_as_written_inside_a_block() -> None:
    """Oracle: the same calls outside any block. mperror.round, mperror.ops and store_ define
    their own arithmetic; a block of another format must not round their operators again
    (rounding to fp16 inside a bf16 block gave bf16(fp16(x)), or worse, where the rounding's
    own float32 steps were rounded to bf16)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, generator=gen) * 100, torch.randn(64, generator=gen)
    a, b = torch.randn(8, 16, generator=gen), torch.randn(16, 4, generator=gen)

    def calls(stored: torch.Tensor) -> list[torch.Tensor]:
        mperror.emulate.store_(stored, "fp16")
        return [
            mperror.round(x, "fp16"),
            mperror.round(x, "e4m3fn", "stochastic", generator=torch.Generator().manual_seed(1)),
            mperror.ops.add(x, y, "fp16"),
            mperror.ops.sum(x, "fp16", accumulate="fp32"),
            mperror.ops.matmul(a, b, "fp16"),
            mperror.ops.fft(y, "fp16"),
            stored,
        ]

    native = calls(x.clone())
    for policy in ("bf16", "e4m3fn", autocast("bf16")):
        stored = x.clone()
        with emulate(policy) as em:
            inside = calls(stored)
        for want, got in zip(native, inside, strict=True):
            assert torch.equal(got, want), policy
        assert em.report().ops == {}, policy


def test_block_can_be_reentered_and_report_accumulates() -> None:
    em = emulate("fp16")
    x = torch.ones(4)
    for _ in range(3):
        with em:
            x = x + 1
    assert em.report().ops["aten.add.Tensor"] == 3
    assert em.report().rounded == 12


def test_views_are_returned_untouched() -> None:
    """Views alias their base and are never replaced by rounded copies (oracle: storage
    pointers and torch's view bookkeeping); values seen through them are the base's."""
    base = torch.full((4, 6), OFF_GRID)
    with emulate("fp16"):
        views = [
            base[1:3],
            base[:, 2],
            base.t(),
            base.view(24),
            base.reshape(2, 12),
            base.unsqueeze(0),
            base.transpose(0, 1),
            base.expand(2, 4, 6),
            base.as_strided((2, 2), (6, 1)),
            base.diagonal(),
            base.unfold(1, 2, 2),
            base[None].squeeze(0),
            base.permute(1, 0),
        ]
    for v in views:
        assert v._base is base
        assert v.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()
        assert (v == OFF_GRID).all()
    z = torch.zeros(3, 2)
    with emulate("fp16"):
        c = torch.view_as_complex(z)
        r = torch.view_as_real(c)
    assert r.untyped_storage().data_ptr() == z.untyped_storage().data_ptr()


def test_inplace_ops_write_rounded_results_into_the_same_tensor() -> None:
    """Oracle: each float64 result rounded once (mul_ rounds, then add_ rounds); identity,
    storage and version counter show the mutation happened in place."""
    x0 = torch.linspace(-3, 3, 40) * OFF_GRID
    x = x0.clone()
    ptr, version = x.data_ptr(), x._version
    with emulate("fp16"):
        y = x.mul_(3)
        z = y.add_(0.1)
    assert y is x and z is x
    assert x.data_ptr() == ptr and x._version > version
    assert torch.equal(x, rounded(rounded(x0.double() * 3).double() + 0.1).float())


def test_out_variants_write_into_out_and_resize_it() -> None:
    """Oracle: float64 sum rounded once, stored in out (resized from empty, as torch does)."""
    a = torch.rand(5, 3) * OFF_GRID
    b = torch.rand(5, 3)
    out = torch.empty(0)
    with emulate("bf16"):
        returned = torch.add(a, b, out=out)
    assert returned is out
    assert out.shape == (5, 3)
    assert torch.equal(out, rounded(a.double() + b.double(), "bf16"))


def test_slice_assignment_keeps_the_rest_of_the_tensor() -> None:
    """The copy-returning-emulator bug: writes through slices must land in the preallocated
    tensor. Oracle: float64 products rounded once in the written slices, zeros elsewhere."""
    a = torch.randn(4, 3)
    b = torch.randn(4, 3)
    with emulate("fp16"):
        out = torch.zeros(4, 8)
        out[:, :3] = a * b
        out[:, -2:] = (a[:, :2] + 1) / 3
        out[0, 4] = 0.1
    assert torch.equal(out[:, :3], rounded(a.double() * b.double()).float())
    expected_tail = rounded(rounded(a[:, :2].double() + 1).double() / 3).float()
    assert torch.equal(out[:, -2:], expected_tail)
    assert out[0, 4].item() == mperror.round(torch.tensor(0.1, dtype=torch.float64), "fp16")
    assert (out[1:, 3:6] == 0).all() and out[0, 3] == 0 and out[0, 5] == 0


def test_boolean_mask_assignment_and_index_put() -> None:
    """Oracle: the native masked assignment, with the assigned constant rounded once."""
    x = torch.linspace(-1, 1, 11)
    with emulate("bf16"):
        y = x.clone()
        y[y > 0] = 0.1
        y.index_put_((torch.tensor([0]),), torch.tensor(OFF_GRID))
    expected = torch.where(x > 0, rounded(torch.tensor(0.1), "bf16"), rounded(x, "bf16"))
    expected[0] = 1.0
    assert torch.equal(y, expected)


def test_integer_and_bool_ops_pass_through() -> None:
    """Oracle: the same integer arithmetic without emulation (fp16 cannot hold 2049)."""
    i = torch.arange(2040, 2060)
    with emulate("fp16") as em:
        j = (i * 3 + 7) // 2
        k = i > 2049
        n = torch.nonzero(k)
    assert j.dtype == torch.int64 and torch.equal(j, (torch.arange(2040, 2060) * 3 + 7) // 2)
    assert torch.equal(k, i > 2049) and torch.equal(n, torch.nonzero(i > 2049))
    assert em.report().rounded == 0


def test_complex_results_round_both_parts() -> None:
    """Oracle: the complex128 product, real and imaginary parts each rounded once."""
    z = torch.randn(20, dtype=torch.complex64)
    w = torch.randn(20, dtype=torch.complex64)
    with emulate("fp16"):
        p = z * w
    exact = z.to(torch.complex128) * w.to(torch.complex128)
    assert p.dtype == torch.complex64
    assert torch.equal(p.real, rounded(exact.real).float())
    assert torch.equal(p.imag, rounded(exact.imag).float())


def test_matmul_inputs_are_rounded_before_the_product() -> None:
    """Oracle: inputs rounded to bf16, the product in float64 (exact accumulation), rounded
    once; the bias of addmm (linear) is an input too."""
    a = torch.randn(7, 20) * OFF_GRID
    b = torch.randn(20, 5)
    bias = torch.randn(5) * OFF_GRID
    with emulate("bf16"):
        c = a @ b
        lin = torch.nn.functional.linear(a, b.t(), bias)
    ra, rb, rbias = (rounded(t, "bf16").double() for t in (a, b, bias))
    assert torch.equal(c, rounded(ra @ rb, "bf16").float())
    assert torch.equal(lin, rounded(ra @ rb + rbias, "bf16").float())


def test_elementwise_inputs_are_not_rounded_first() -> None:
    """pure(fmt) rounds results, not the inputs of elementwise operators (only matmul-class
    inputs are rounded): 1 + 2**-20 plus 2**-11 is above the fp16 midpoint 1 + 2**-11."""
    x = torch.tensor([OFF_GRID])
    with emulate("fp16"):
        y = x + 2.0**-11
    assert y.item() == 1 + 2.0**-10


def test_report_counts_overflow_underflow_and_lists_unclassified_ops() -> None:
    """Oracle: hand-counted. 60000 * 2 overflows fp16 (to inf); 2**-20 * 2**-10 underflows to 0
    (below half the smallest subnormal 2**-24); e4m3fn saturates 500 * 1 to 448; the solve is
    an operator without a class, rounded as elementwise."""
    x = torch.tensor([60000.0, 2.0**-20, 1.0, 0.0])
    y = torch.tensor([2.0, 2.0**-10, 1.0, 5.0])
    with emulate("fp16") as em:
        p = x * y
    report = em.report()
    assert p[0].item() == math.inf and p[1].item() == 0.0
    assert (report.rounded, report.overflowed, report.underflowed) == (4, 1, 1)
    with emulate("e4m3fn") as em8:
        q = torch.tensor([500.0, -1000.0, 3.0]) * 1
    assert q.tolist() == [448.0, -448.0, 3.0]
    assert em8.report().overflowed == 2
    a = torch.eye(3) * 2
    with emulate("fp16") as em_solve:
        s = torch.linalg.solve(a, torch.ones(3, 1) * OFF_GRID)
    assert torch.equal(s, torch.full((3, 1), 0.5))
    unclassified = em_solve.report().unclassified
    assert unclassified and all("linalg" in op for op in unclassified)
    text = str(em_solve.report())
    assert "unclassified" in text and "aten.mul.Tensor" in text
    assert em_solve.report().to_dict()["policy"]["name"] == "pure(fp16)"


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("fp16", [1.0, -3.5, 2.0**-20]),  # nothing to count (2**-20 is a subnormal)
        ("fp16", [0.0, -0.0, 1.0, 2.0**-26, -(2.0**-30)]),  # zeros and underflows
        ("fp16", [65504.0, 70000.0, -math.inf, math.nan, 1.0]),  # max is no overflow
        ("e4m3fn", [448.0, -448.0, 3.0]),  # exactly max: saturated nothing
        ("e4m3fn", [449.0, -1000.0, 3.0]),  # saturated, no zero or NaN anywhere
        ("e4m3fn", [450.0, 463.9, 464.0, 470.0, -455.0, -465.0]),  # rounded down, or saturated
        ("fp16", [1.0, 2.0**-26]),  # an underflow, no zero in v
        ("e4m3fn", [449.0, -1000.0, math.inf, math.nan, 0.0, 2.0**-12]),
        ("e4m3fn_nan", [448.0, 470.0, -1000.0, 1.0]),  # the NaN policy
        ("top", [1.7915e308, 1.795e308, -1.796e308, 1.0]),  # saturating, reaching 2**1023
        ("e2m1", [6.0, 6.5, 0.2, -0.25, 0.0]),
    ],
)
def test_tally_counts_match_their_definitions(name: str, values: list[float]) -> None:
    """Oracle: the definitions, counted element by element in Python on the input ``v`` and
    its rounding ``r``: underflowed = nonzero in ``v``, zero in ``r``; overflowed = non-finite
    in ``r`` though finite in ``v``, or, for saturating formats (formats.Overflow), finite in
    ``v`` and above max when rounded to nearest even with the exponent range unbounded above
    (to a multiple of the spacing 2**(e - p + 1) of its binade, in rationals)."""
    if name == "top":
        fmt = FloatFormat(precision=8, emax=1023, has_inf=False, overflow="saturate")
    elif name == "e4m3fn_nan":
        fmt = formats.E4M3FN.replace(overflow="nan")
    else:
        fmt = formats.get(name)
    engine = _Engine(as_policy(fmt), generator=None, compiled=False, count=True)
    v = torch.tensor(values, dtype=torch.float64)
    r = engine._round(v, fmt)
    pairs = list(zip(v.tolist(), r.tolist(), strict=True))
    underflowed = sum(a != 0 and b == 0 for a, b in pairs)
    if fmt.overflow is formats.Overflow.SATURATE:
        overflowed = sum(
            math.isfinite(a) and abs(a) > fmt.max and abs(_unbounded(a, fmt.precision)) > fmt.max
            for a, _ in pairs
        )
    else:
        overflowed = sum(math.isfinite(a) and not math.isfinite(b) for a, b in pairs)
    assert (engine.rounded, engine.underflowed, engine.overflowed) == (
        len(values),
        underflowed,
        overflowed,
    )


def _unbounded(a: float, precision: int) -> Fraction:
    """``a`` (normal) rounded to nearest even at ``precision`` bits, any exponent."""
    spacing = Fraction(2) ** (math.frexp(a)[1] - precision)
    return round(Fraction(a) / spacing) * spacing  # Fraction's round: ties to even


@pytest.mark.parametrize("mode", ["toward_zero", "toward_positive", "toward_negative", "odd"])
def test_saturation_counts_follow_the_mode(mode: str) -> None:
    """Oracle: as above, the reference rounding by ``mode`` with the exponent range unbounded
    above: toward zero, 470 rounds to 448 (no overflow) and 1000 to 960 (overflow); to odd,
    every value here rounds beyond max (450 to 480)."""
    fmt = formats.E4M3FN
    values = [450.0, 470.0, 479.0, 480.0, 1000.0, -470.0, -1000.0, 1.0]
    engine = _Engine(as_policy(pure(fmt, mode=mode)), generator=None, compiled=False, count=True)
    r = engine._round(torch.tensor(values, dtype=torch.float64), fmt)
    assert r.abs().max().item() == fmt.max
    unbounded = FloatFormat(precision=fmt.precision, emax=1000, emin=fmt.emin)
    expected = sum(abs(round_scalar(a, unbounded, mode)) > fmt.max for a in values)
    assert engine.overflowed == expected
    if mode == "toward_zero":  # by hand: 480, 1000 and -1000 (to 960); 479 rounds to 448
        assert expected == 3


def test_casts_into_the_formats_float8_dtype_are_counted() -> None:
    """torch counts no float8 values (count_nonzero has no float8 kernel): the counts widen
    them. Oracle: torch's float8 casts outside the block, which round these to nearest even and
    saturate (e4m3fn) or overflow to inf (e5m2), and the hand count."""
    x = torch.tensor([1.0, 300.0, 2.0**-20, 500.0, 0.0])
    for name, dtype in (("e4m3fn", torch.float8_e4m3fn), ("e5m2", torch.float8_e5m2)):
        with emulate(name) as em:
            y = x.to(dtype)
            z = torch.empty(5, dtype=dtype).copy_(x)
        native = x.to(dtype).float()
        assert torch.equal(y.float(), native) and torch.equal(z.float(), native)
        assert em.report().underflowed == 2  # 2**-20, in each of the two casts


def test_counting_can_be_turned_off() -> None:
    x = torch.tensor([70000.0])
    with emulate("fp16", count=False) as em:
        _ = x * 1
    report = em.report()
    assert not report.counted and report.rounded == 0 and report.ops == {"aten.mul.Tensor": 1}


def test_random_ops_draw_what_they_would_without_emulation() -> None:
    """Oracle: the same seed without emulation, rounded afterwards."""
    torch.manual_seed(3)
    native = [torch.randn(100), torch.rand(50), torch.empty(30).normal_(), torch.randn(8) * 0]
    torch.manual_seed(3)
    with emulate("bf16"):
        emulated = [torch.randn(100), torch.rand(50), torch.empty(30).normal_()]
    for n, e in zip(native, emulated, strict=False):
        assert torch.equal(e, rounded(n, "bf16"))


def test_constants_are_rounded_from_their_float64_value() -> None:
    """Oracle: the reference rounding of the Python float; full(0.1) in float32 first would be
    a double rounding."""
    with emulate("bf16"):
        c = torch.full((3,), 0.1)
        r = torch.arange(0.0, 1.0, 0.25)
    assert c.dtype == torch.float32
    assert (c == mperror.reference.round_scalar(0.1, "bf16")).all()
    assert r.tolist() == [0.0, 0.25, 0.5, 0.75]


_BIG_INT = 2**24 + 2**16 + 1  # float32 rounds it to 2**24 + 2**16, a bf16 midpoint


@pytest.mark.parametrize(
    "convert",
    [
        lambda i: i.float(),
        lambda i: torch.zeros(2).copy_(i),
        lambda i: torch.where(torch.tensor([True, True]), i, torch.zeros(2)),
        lambda i: torch.cat([i, torch.zeros(0)]),
        lambda i: torch.stack([i.float(), torch.zeros(2)])[0],
    ],
    ids=["float", "copy_", "where", "cat", "stack"],
)
def test_integers_are_rounded_from_their_exact_value(convert) -> None:
    """Oracle: the reference rounding of the integer itself; converting it to float32 first
    (torch's kernel) would round twice and give 2**24."""
    i = torch.tensor([_BIG_INT, -_BIG_INT])
    with emulate("bf16"):
        r = convert(i)
    want = mperror.reference.round_scalar(Fraction(_BIG_INT), "bf16")
    assert r.dtype == torch.float32 and r.tolist() == [want, -want]


def test_integer_inputs_with_floating_results_are_rounded() -> None:
    """Oracle: the float64 result rounded once (numpy's float64 -> float16 cast). clamp of an
    integer tensor to a float bound and copysign of integers give float32 results that were
    left unrounded (0.1 stayed float32's 0.100000001, 4097 stayed 4097)."""
    it = torch.tensor([4097, 1, 2049, -3])
    with emulate("fp16") as em:
        results = [it.clamp(max=0.1), it.clamp(min=0.5), torch.copysign(it, -1.0)]
    wants = [
        np.minimum(it.double().numpy(), 0.1),
        np.maximum(it.double().numpy(), 0.5),
        -np.abs(it.double().numpy()),
    ]
    for got, want in zip(results, wants, strict=True):
        assert got.dtype == torch.float32
        assert got.tolist() == want.astype(np.float16).astype(np.float64).tolist()
    assert em.report().rounded == 12


def test_computing_factories_are_rounded_from_float64() -> None:
    """Oracle: float64 linspace rounded once. linspace(-37.96875, 45.96875, 353)[198] is the
    fp16 tie 9.24609375 (rounds to even, 9.25); float32 computes 9.2460928 and that rounded
    down to 9.2421875."""
    with emulate("fp16"):
        y = torch.linspace(-37.96875, 45.96875, 353)
    want = torch.linspace(-37.96875, 45.96875, 353, dtype=torch.float64).numpy()
    assert y.tolist() == want.astype(np.float16).astype(np.float64).tolist()
    assert y[198].item() == 9.25


_NEAR_ONE = 1 - 2.0**-30  # not a float32: float32(c) = 1.0


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("full", lambda x: torch.full((2,), _NEAR_ONE)),
        ("full_like", lambda x: torch.full_like(x, _NEAR_ONE)),
        ("new_full", lambda x: x.new_full((2,), _NEAR_ONE)),
        ("fill_", lambda x: x.clone().fill_(_NEAR_ONE)),
        ("masked_fill", lambda x: x.masked_fill(x > -1, _NEAR_ONE)),
        ("clamp", lambda x: x.clamp(min=_NEAR_ONE)),
        ("where", lambda x: torch.where(x > -1, _NEAR_ONE, x)),
        ("index_fill", lambda x: x.index_fill(0, torch.tensor([0, 1]), _NEAR_ONE)),
        ("hardtanh", lambda x: torch.nn.functional.hardtanh(x + 5, -_NEAR_ONE, _NEAR_ONE)),
    ],
)
def test_scalars_in_exact_operators_are_rounded_once(name, make) -> None:
    """Oracle: the reference rounding of the Python float toward zero, 1 - 2**-11 in fp16.
    Rounded from float32, where 1 - 2**-30 is 1.0, it came out 1.0 (nearest even to fp16
    happens to hide that double rounding; directed modes do not)."""
    x = torch.zeros(2)
    with emulate(pure("fp16", mode="toward_zero")):
        got = make(x)
    expected = mperror.reference.round_scalar(_NEAR_ONE, "fp16", "toward_zero")
    assert expected == 1 - 2.0**-11
    assert got.tolist() == [expected, expected], name


def test_integer_operands_with_a_floating_result_compute_in_float64() -> None:
    """int / int and int * scalar computed in torch's default dtype (float32) first were
    rounded twice (83 of 3,000 p20 quotients wrong). Oracle: Fraction arithmetic rounded once
    by round_scalar; integer results stay integers."""
    p20 = formats.FloatFormat(precision=20, emax=40)
    num, den = torch.arange(1, 301), torch.arange(3001, 3301)
    with emulate(p20):
        quotient = num / den
        total = num + den
    assert quotient.dtype == torch.float32 and total.dtype == torch.int64
    expected = [
        mperror.reference.round_scalar(Fraction(a, b), p20)
        for a, b in zip(num.tolist(), den.tolist(), strict=True)
    ]
    assert quotient.tolist() == expected
    assert torch.equal(total, torch.arange(1, 301) + torch.arange(3001, 3301))
    with emulate(pure("fp16", mode="toward_zero")):
        scaled = torch.tensor([3]) * _NEAR_ONE
    assert scaled.tolist() == [3 - 2.0**-9]  # the fp16 value below 3; float32 gave 3.0


def test_stochastic_rounding_draws_from_the_given_generator() -> None:
    """Oracle: reproducibility under one seed; a different seed differs; torch's global stream
    is untouched (the next torch.rand is what it would be without emulation); the mean of many
    stochastically rounded copies of 1 + 2**-12 (fp16 spacing 2**-10 above 1) is near it."""
    x = torch.full((4000,), 1 + 2.0**-12)
    policy = pure("fp16", mode="stochastic")

    def run(seed: int) -> torch.Tensor:
        with emulate(policy, generator=torch.Generator().manual_seed(seed)):
            return x * 1

    torch.manual_seed(0)
    a = run(1)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), after)
    assert torch.equal(a, run(1)) and not torch.equal(a, run(2))
    assert set(a.unique().tolist()) == {1.0, 1 + 2.0**-10}
    # P(up) = 1/4; the mean of 4000 draws has standard deviation 2**-10 sqrt(3/16 / 4000);
    # 5 of them is the tolerance.
    assert abs(a.double().mean().item() - (1 + 2.0**-12)) < 5 * 2.0**-10 * math.sqrt(3 / 16 / 4000)


def test_output_dtypes_are_the_callers() -> None:
    """Oracle: the dtypes torch returns without emulation, for operators whose output dtype
    is not simply the input's (half_to_float softmax, dtype=, complex FFTs, int inputs, 0-dim
    float64 operands, mixed precisions, reductions with dtype)."""
    x16 = torch.randn(4, 8).half()
    x32 = torch.randn(4, 8)
    i = torch.arange(8)
    cases = [
        lambda: torch.softmax(x16, -1, dtype=torch.float32),
        lambda: torch.log_softmax(x32, -1),
        lambda: x32.sum(dtype=torch.float64),
        lambda: torch.fft.rfft(x32),
        lambda: torch.fft.irfft(torch.fft.rfft(x32.double())),
        lambda: i / 3,
        lambda: x32 * torch.tensor(2.0, dtype=torch.float64),
        lambda: x16 + x32,
        lambda: torch.nn.functional.layer_norm(x16.float(), (8,)),
        lambda: torch.std_mean(x32, dim=0),
        lambda: x32.double().exp(),
        lambda: x16 * 2.5,
        lambda: torch.abs(torch.randn(3, dtype=torch.complex64)),
    ]
    for case in cases:
        torch.manual_seed(0)
        native = case()
        torch.manual_seed(0)
        with emulate("bf16"):
            emulated = case()
        natives = native if isinstance(native, tuple) else (native,)
        emulateds = emulated if isinstance(emulated, tuple) else (emulated,)
        assert [t.dtype for t in emulateds] == [t.dtype for t in natives]


def test_autocast_keeps_its_fp32_list_in_float32() -> None:
    """Oracle: torch's float32 kernels without emulation for exp and softmax (on torch's CUDA
    autocast fp32 list), of float32 and of half inputs alike, which come back float32 as
    autocast returns them; tanh (not on the list) of a half tensor is half, fp16 rounding of
    the float64 result, and of a float32 tensor torch's float32 kernel (CUDA autocast runs an
    operator outside its lists in its inputs' dtype)."""
    x = torch.linspace(-3, 3, 64) * OFF_GRID
    with emulate(autocast("fp16")) as em:
        h = x.half()
        e, eh = torch.exp(x), torch.exp(h)
        s, sh = torch.softmax(x, 0), torch.softmax(h, 0)
        t, th = torch.tanh(x), torch.tanh(h)
    assert h.dtype == th.dtype == torch.float16
    assert eh.dtype == sh.dtype == torch.float32
    assert torch.equal(e, torch.exp(x)) and torch.equal(s, torch.softmax(x, 0))
    assert torch.equal(eh, torch.exp(h.float())) and torch.equal(sh, torch.softmax(h.float(), 0))
    assert torch.equal(t, torch.tanh(x))
    assert torch.equal(th.double(), rounded(torch.tanh(h.double())))
    classes = em.report().op_classes
    assert classes["aten.exp.default"] == "fp32" and classes["aten.tanh.default"] == "elementwise"


def test_autocast_stores_results_in_the_dtypes_cuda_autocast_gives() -> None:
    """Oracle: torch.autocast's rules (its docs, "Autocasting"), which CPU torch.autocast
    follows too: a matmul-class result is half, an operator outside the lists takes the
    widest dtype of its inputs (half + float32 bias is float32), gradients come back in the
    dtype of the tensor they are for (float32 for float32 weights), and float64 tensors are
    never cast. Values: the linear layer's result is fl16 of the float64 product of the
    fp16-rounded inputs, and h + b is the float32 sum of those half values and b."""
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(3, 4), torch.randn(8, 3) * OFF_GRID
    b = torch.randn(4) * OFF_GRID
    with emulate(autocast("fp16")):
        h = layer(x)
        y = h + b
        z = torch.tanh(h)
        y.sum().backward()
        wide = torch.nn.functional.linear(x.double(), layer.weight.double())
    assert (h.dtype, y.dtype, z.dtype, wide.dtype) == (
        torch.float16, torch.float32, torch.float16, torch.float64
    )  # fmt: skip
    assert layer.weight.grad.dtype == layer.bias.grad.dtype == torch.float32
    w16, x16, b16 = (rounded(t.double()) for t in (layer.weight, x, layer.bias))
    assert torch.equal(h.double(), rounded(x16 @ w16.T + b16))
    assert torch.equal(y, (h.float() + b))
    assert torch.equal(wide, x.double() @ layer.weight.double().T)  # float64 stays exact


def test_autocast_fp32_names_are_aten_operators() -> None:
    """Every name in the autocast fp32 set is an ATen operator (a typo would silently keep an
    operator in fmt), and one the emulator sees (autocast() validates them as a user's
    keep_fp32 is validated)."""
    for name in mperror.emulate.AUTOCAST_FP32_OPS:
        assert hasattr(torch.ops.aten, name), name
    autocast("fp16")


def test_autocast_keeps_cdist_in_float32_at_every_size() -> None:
    """Oracle: torch's CUDA autocast fp32 list holds cdist; with p = 2 and more than 25 rows
    torch runs it as _euclidean_dist (not _cdist_forward), which had been rounded to fp16. The
    float32 distance of rows 1 + 2**-11 apart is not an fp16 value."""
    for rows in (5, 30):
        x = torch.zeros(rows, 2)
        y = torch.zeros(rows, 2)
        y[:, 0] = 1 + 2.0**-11
        with emulate(autocast("fp16")):
            d = torch.cdist(x, y)
        assert d.dtype == torch.float32 and torch.all(d == 1 + 2.0**-11), rows


@pytest.mark.parametrize(
    "norm",
    [
        lambda h: torch.linalg.matrix_norm(h, ord=2),
        lambda h: torch.linalg.matrix_norm(h, ord="nuc"),
        lambda h: torch.linalg.norm(h, ord=2),
        lambda h: h.norm(p="nuc"),
        lambda h: torch.norm(h, p="fro"),
    ],
)
def test_autocast_runs_matrix_norms_in_float32(norm) -> None:
    """Oracle: torch's CUDA autocast fp32 list (linalg_matrix_norm, nuclear_norm), which casts
    a half input to float32: the norm of the half values computed in float32, bit for bit.
    These are composites whose own check refuses half inputs before any operator reaches the
    emulator, so the emulator must cast at the function, as autocast does."""
    torch.manual_seed(0)
    h = torch.randn(6, 5).half()
    with emulate(autocast("fp16")):
        result = norm(h)
    expected = norm(h.float())
    assert result.dtype == torch.float32
    assert torch.equal(result, expected)


def test_batch_norm_running_statistics_are_reductions() -> None:
    """Oracle: the exact mean, 1 + 2**-11 (eight rows of 1 and eight of 1 + 2**-10, the latter
    a bf16 and fp32 value's sum): a reduction in fp32 keeps it, the elementwise bf16 format
    would round it to 1 (it had been rounded so, as an unclassified operator)."""
    x = torch.ones(16, 3)
    x[8:] += 2.0**-10
    policy = mperror.emulate.Policy(elementwise="bf16", matmul="bf16", reduction="fp32", fft="bf16")
    with emulate(policy) as em:
        mean, _ = torch.batch_norm_update_stats(x, None, None, 0.1)
        counts = torch.bincount(
            torch.tensor([0, 0, 0]), weights=torch.tensor([1.0, 2**-10, 2**-10])
        )
    assert torch.equal(mean, torch.full((3,), 1 + 2.0**-11))
    assert counts.item() == 1 + 2.0**-9  # bf16 would give 1 + 2**-7 or 1
    assert em.report().unclassified == ()


def test_autocast_rounds_what_its_dtypes_hold() -> None:
    """Oracles: fp16's spacing at 1 is 2**-10 (1 + 2**-12 rounds to 1, float32 keeps it), and
    e4m3fn's values are what mperror.round leaves unchanged. A write into a half tensor rounds
    to the format; one into a float32 tensor is float32 arithmetic; under autocast("e4m3fn")
    the half tensors (float16 holds every e4m3fn value) hold e4m3fn values: a cast to half and
    arithmetic on half tensors round to e4m3fn, while float32 arithmetic stays float32."""
    small = torch.full((3,), 2.0**-12)
    with emulate(autocast("fp16")):
        h = torch.ones(3, dtype=torch.float16)
        h.add_(small)
        x = torch.ones(3)
        x.add_(small)
    assert torch.all(h == 1) and torch.all(x == 1 + 2.0**-12)
    values = torch.linspace(-3, 3, 41) * OFF_GRID
    with emulate(autocast("e4m3fn")):
        cast = values.half()
        product = cast * 1.1
        wide = values * 1.1
        exp = cast.clone().exp_()  # on the fp32 list: computed in float32, written back
    assert torch.equal(exp.double(), mperror.round(torch.exp(cast.float()).double(), "e4m3fn"))
    for t in (cast, product):
        assert t.dtype == torch.float16
        assert torch.equal(mperror.round(t.float(), "e4m3fn"), t.float())
    assert torch.equal(cast.double(), mperror.round(values.double(), "e4m3fn"))
    assert torch.equal(product.double(), mperror.round(cast.double() * 1.1, "e4m3fn"))
    assert wide.dtype == torch.float32 and torch.equal(wide, values * 1.1)


def test_autocast_softmax_keeps_a_dtype_it_is_given() -> None:
    """Oracle: autocast's rule for its "set optional dtype" entries (torch's
    ATen/autocast_mode.h, set_opt_dtype): softmax and log_softmax run in float32 unless the
    call names a dtype, which is kept. softmax(h, dtype=half) is fl16 of the float64 softmax
    of the half values; without a dtype it is torch's float32 softmax of them."""
    h = (torch.linspace(-3, 3, 24) * OFF_GRID).reshape(4, 6).half()
    with emulate(autocast("fp16")):
        plain, named = torch.softmax(h, -1), torch.softmax(h, -1, dtype=torch.float16)
        method = h.log_softmax(-1, torch.float16)
        functional = torch.nn.functional.softmax(h, -1, dtype=torch.float16)
    assert plain.dtype == torch.float32 and torch.equal(plain, torch.softmax(h.float(), -1))
    expected = rounded(torch.softmax(h.double(), -1))
    assert named.dtype == functional.dtype == method.dtype == torch.float16
    assert torch.equal(named.double(), expected) and torch.equal(functional, named)
    assert torch.equal(method.double(), rounded(torch.log_softmax(h.double(), -1)))


def test_autocast_backward_may_run_after_the_block() -> None:
    """Oracle: CPU torch.autocast(bfloat16) with backward outside its block, torch's AMP
    recipe. The casts of linear, matmul, einsum and convolution inputs are autograd's to undo,
    so gradients come back float32 for the float32 weights; the lowered results' backward then
    runs natively (not emulated), as after any block. It had raised a dtype mismatch (half
    gradient, float32 weight). Gradients agree with CPU autocast's within one bf16 spacing
    (the backward passes are the same native kernels; the forward results, each one rounding
    of a product sum, may differ in the last bit)."""

    def run(context):
        torch.manual_seed(0)
        layer, conv = torch.nn.Linear(6, 6), torch.nn.Conv1d(1, 1, 3)
        x, w = torch.randn(3, 6), torch.randn(6, 6)
        with context:
            h = layer(x) @ w
            h = torch.einsum("ij,jk->ik", h, w)
            loss = conv(h[:, None]).float().square().sum()
        loss.backward()
        return [p.grad for p in (*layer.parameters(), *conv.parameters())]

    native = run(torch.autocast("cpu", dtype=torch.bfloat16))
    emulated = run(emulate(autocast("bf16")))
    for got, ref in zip(emulated, native, strict=True):
        assert got.dtype == ref.dtype == torch.float32
        assert torch.all((got - ref).abs() <= ref.abs() * 2.0**-7)


def test_autocast_checkpoint_recomputes_as_a_forward_pass() -> None:
    """Oracle: the same program without checkpointing (CPU torch.autocast gives the two the
    same gradients, bit for bit). The reentrant checkpoint recomputes its function inside the
    backward pass, where the fp32 list had been treated as in a backward formula (layer norm
    and softmax in half), and the gradients differed. The non-reentrant form is refused by
    torch's own check (the documented limitation), not silently different."""
    from torch.utils.checkpoint import CheckpointError, checkpoint

    def run(wrap):
        torch.manual_seed(0)
        layer, norm = torch.nn.Linear(8, 8), torch.nn.LayerNorm(8)
        x = torch.randn(4, 8, requires_grad=True)
        with emulate(autocast("fp16")):
            y = wrap(lambda v: torch.softmax(norm(layer(v)), -1), x)
            y.float().square().sum().backward()
        return [p.grad for p in (*layer.parameters(), *norm.parameters())]

    plain = run(lambda f, x: f(x))
    again = run(lambda f, x: checkpoint(f, x, use_reentrant=True))
    assert all(torch.equal(a, b) for a, b in zip(plain, again, strict=True))
    with pytest.raises(CheckpointError):
        run(lambda f, x: checkpoint(f, x, use_reentrant=False))


@pytest.mark.parametrize(("fmt", "dtype"), [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_autocast_fp32_list_backward_may_run_after_the_block(fmt, dtype) -> None:
    """Oracles: CPU torch.autocast, whose backward after its block runs and gives float32
    weight gradients; for the result dtype CUDA autocast's fp32 list (torch's AMP docs:
    layer_norm, group_norm, softmax, log_softmax, softmin, cross_entropy, nll_loss, normalize
    autocast to float32; CPU autocast runs some of them in its lower dtype). The emulation had
    cast these below autograd, which saved the half input beside a float32 result, and
    torch's backward kernels raised a dtype mismatch after the block."""
    F = torch.nn.functional
    target = torch.tensor([0, 2, 1, 5])
    cases = {
        "layer_norm": lambda h: torch.nn.LayerNorm(6)(h),
        "group_norm": lambda h: torch.nn.GroupNorm(2, 6)(h),
        "softmax": lambda h: torch.softmax(h, -1),
        "log_softmax": lambda h: h.log_softmax(-1),
        "softmin": lambda h: F.softmin(h, -1),
        "cross_entropy": lambda h: F.cross_entropy(h, target),
        "nll_loss": lambda h: F.nll_loss(h, target),
        "normalize": lambda h: F.normalize(h),
    }
    for name, f in cases.items():
        dtypes = []
        for context in (torch.autocast("cpu", dtype=dtype), emulate(autocast(fmt))):
            torch.manual_seed(0)
            layer, x = torch.nn.Linear(6, 6), torch.randn(4, 6)
            with context:
                y = f(layer(x))
            y.float().sum().backward()
            dtypes.append((layer.weight.grad.dtype, layer.bias.grad.dtype))
        assert dtypes[1] == dtypes[0] == (torch.float32,) * 2, name
        assert y.dtype == torch.float32, name


def test_autocast_weight_casts_made_without_grad_are_not_reused() -> None:
    """Oracle: the same program without the no_grad forward. A weight cast made under
    no_grad (an evaluation between training steps) has no grad_fn; reused from the cast cache
    by a later forward of the block, it cut the weights out of the graph: their gradients
    were None, silently. Inference mode alike."""

    def run(evaluate):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        x = torch.randn(5, 2, requires_grad=True)
        with emulate(autocast("fp16")):
            if evaluate is not None:
                with evaluate():
                    net(torch.randn(3, 2))
            (du,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
            du.float().square().sum().backward()
        return [p.grad for p in net.parameters()]

    expected = run(None)
    assert expected[0] is not None  # (the last bias does not enter du: its gradient is None)
    for evaluate in (torch.no_grad, torch.inference_mode):
        got = run(evaluate)
        for a, b in zip(got, expected, strict=True):
            assert (a is None and b is None) or (a is not None and torch.equal(a, b))


def test_autocast_modules_that_call_linear_from_inside_run_backward_after_the_block() -> None:
    """Oracle: CPU torch.autocast(bfloat16), where backward after the block runs and gives
    float32 gradients to every parameter. nn.MultiheadAttention (its Python function is seen
    by the emulator as its parts), the RNN modules (matmuls called from C++) and attention's
    CPU math path (which widens half inputs to float32) had their matmuls lowered below
    autograd with half results, and the backward after the block raised a dtype mismatch.
    Where autograd records such a lowered operator on float32 inputs, its result now keeps
    float32, holding values of the format (checked: rounding to bf16 leaves the projection's
    result unchanged)."""
    torch.manual_seed(0)
    modules = {
        "mha": (torch.nn.MultiheadAttention(8, 2, batch_first=True), lambda m, x: m(x, x, x)[0]),
        "gru": (torch.nn.GRU(8, 8, batch_first=True), lambda m, x: m(x)[0]),
        "lstm": (torch.nn.LSTM(8, 8, batch_first=True), lambda m, x: m(x)[0]),
        "sdpa": (
            torch.nn.Linear(8, 8),
            lambda m, x: torch.nn.functional.scaled_dot_product_attention(m(x), m(x), m(x)),
        ),
    }
    x = torch.randn(2, 5, 8)
    for name, (module, call) in modules.items():
        for context in (torch.autocast("cpu", dtype=torch.bfloat16), emulate(autocast("bf16"))):
            module.zero_grad()
            with context:
                y = call(module, x)
            y.float().square().sum().backward()
            assert all(p.grad.dtype == torch.float32 for p in module.parameters()), name
    with emulate(autocast("bf16")):
        y = modules["mha"][0](x, x, x, need_weights=False)[0].detach()  # its out projection
    assert y.dtype == torch.float32 and torch.equal(mperror.round(y, "bf16"), y)


def test_autocast_runs_parts_of_listed_functions_as_autocast_excludes_them() -> None:
    """Oracle: CUDA autocast runs a listed operator with autocast excluded (its
    ExcludeDispatchKeyGuard): tensordot, on the promote list, of two float32 tensors is the
    plain float32 tensordot (its mm is not lowered); einsum's reduction of half products stays
    half (its sum is not sent to the fp32 list)."""
    torch.manual_seed(0)
    a, b = torch.randn(3, 4) * OFF_GRID, torch.randn(4, 5)
    with emulate(autocast("bf16")):
        dot = torch.tensordot(a, b, dims=1)
        total = torch.einsum("ij->i", a)
    assert dot.dtype == torch.float32 and torch.equal(dot, torch.tensordot(a, b, dims=1))
    assert total.dtype == torch.bfloat16
    expected = mperror.round(mperror.round(a.double(), "bf16").sum(1), "bf16").to(torch.bfloat16)
    assert torch.equal(total, expected)


def test_autocast_casts_a_weight_once_per_block() -> None:
    """Oracle: CPU torch.autocast(bfloat16), whose cast cache casts a float32 leaf that
    requires grad once per region: the gradients of a weight's two uses add up in bfloat16
    at its one cast, so the weight's gradient is a bf16 value, within one bf16 spacing of CPU
    autocast's (which accumulates its products in float32 before rounding). Cast at each use,
    the two half gradients were added in float32, giving no bf16 value."""

    def run(context):
        torch.manual_seed(0)
        w, x = torch.randn(4, 4, requires_grad=True), torch.randn(3, 4)
        with context:
            torch.mm(torch.mm(x, w), w).float().square().sum().backward()
        return w.grad

    native = run(torch.autocast("cpu", dtype=torch.bfloat16))
    emulated = run(emulate(autocast("bf16")))
    assert torch.equal(mperror.round(emulated, "bf16"), emulated)
    assert torch.all((emulated - native).abs() <= native.abs() * 2.0**-7)


def test_autocast_promotes_its_promote_list() -> None:
    """Oracle: torch.autocast's promote list (its docs: addcdiv, addcmul, atan2, bilinear,
    cross, dot, grid_sample, index_put, scatter_add, tensordot run in the widest input type):
    a half and a float32 input give the float32 result of the half values, as plain torch
    computes it on float32 copies. cross had returned half, from its meta kernel."""
    torch.manual_seed(0)
    h, x = torch.randn(4, 3).half(), torch.randn(4, 3) * OFF_GRID
    idx = torch.randint(0, 4, (4, 3))
    with emulate(autocast("fp16")):
        results = (
            torch.linalg.cross(h, x),
            h.scatter_add(0, idx, x),
            torch.addcmul(h, h, x),
            torch.atan2(h, x),
        )
    f = h.float()
    expected = (
        torch.linalg.cross(f, x), f.scatter_add(0, idx, x), torch.addcmul(f, f, x),
        torch.atan2(f, x),
    )  # fmt: skip
    for got, ref in zip(results, expected, strict=True):
        assert got.dtype == torch.float32 and torch.equal(got, ref)


def test_autocast_leaves_what_autocast_does_not_cast() -> None:
    """Oracle: plain torch. Autocast casts neither its promote list (dot, vdot, bilinear) nor
    in-place and out= variants of its lowered operators: on float32 tensors they are float32
    arithmetic. An autocast block inside a pure one is the innermost: what it runs natively,
    the outer block must not round (70000 stays 70000, beyond fp16's max)."""
    torch.manual_seed(0)
    v, a, b = torch.randn(5) * OFF_GRID, torch.randn(3, 4) * OFF_GRID, torch.randn(4, 2)
    bilinear = torch.nn.Bilinear(5, 5, 2)
    with emulate(autocast("bf16")):
        dot, vdot, bil = torch.dot(v, v), torch.vdot(v, v), bilinear(v[None], v[None])
        out = torch.zeros(3, 2).addmm_(a, b)
        into = torch.mm(a, b, out=torch.empty(3, 2))
    with torch.no_grad():
        expected_bil = bilinear(v[None], v[None])
    assert torch.equal(dot, torch.dot(v, v)) and torch.equal(vdot, torch.vdot(v, v))
    assert torch.equal(bil.detach(), expected_bil)
    assert torch.equal(out, torch.zeros(3, 2).addmm_(a, b)) and torch.equal(into, a @ b)
    with emulate(pure("fp16")), emulate(autocast("fp16")):
        s = v + v * 1.1
        big = torch.full((1,), 70000.0)
    assert torch.equal(s, v + v * 1.1) and big.item() == 70000.0


def test_autocast_half_tensors_hold_format_values_from_every_path() -> None:
    """Oracle: mperror.round leaves format values unchanged. Under autocast("e4m3fn") every
    float16 tensor holds e4m3fn values: one a factory makes in half, a sum asked for in half
    (an fp32-list operator with the dtype given), and the gradient an fp32-list backward
    kernel (softmax's) hands to a half tensor. A half attention's log-sum-exp stays float32,
    as its half kernel returns it (oracle: CPU torch's own half kernel)."""
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    with emulate(autocast("e4m3fn")):
        made = torch.randn(5, dtype=torch.float16), torch.full((3,), 0.1, dtype=torch.float16)
        h = torch.nn.functional.linear(x, torch.randn(6, 6)).detach().requires_grad_(True)
        summed = h.sum(-1, dtype=torch.float16)
        torch.softmax(h, -1).square().sum().backward()
    for t in (*made, summed, h.grad):
        assert t.dtype == torch.float16
        assert torch.equal(mperror.round(t.double(), "e4m3fn"), t.double())
    q = torch.randn(1, 2, 4, 8)
    kernel = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    native = kernel(q.half(), q.half(), q.half())
    with emulate(autocast("fp16")):
        emulated = kernel(q, q, q)
    assert [t.dtype for t in emulated] == [t.dtype for t in native] == [
        torch.float16, torch.float32
    ]  # fmt: skip


def test_autocast_dtypes_follow_cpu_torch_autocast() -> None:
    """Oracle: CPU torch.autocast(bfloat16), which casts as CUDA autocast does and agrees with
    its lists on these operators (linear lowered; tanh, mul, add, relu on neither list): the
    dtype of every intermediate, of the loss and of every gradient is the same, and the first
    layer's bfloat16 values are within one bf16 spacing of CPU autocast's (both are one
    rounding of the same product sum; CPU's accumulates in float32)."""

    def run(context):
        torch.manual_seed(0)
        first, second = torch.nn.Linear(3, 8), torch.nn.Linear(8, 2)
        x, scale = torch.randn(16, 3), torch.randn(2)
        with context:
            h = first(x)
            a = torch.tanh(h)
            out = second(a)
            y, z, r = out * scale, out + out * 0.5, torch.relu(out)
            loss = y.float().square().sum() + z.float().square().sum() + r.float().sum()
            loss.backward()
        grads = [p.grad for m in (first, second) for p in m.parameters()]
        return [t.dtype for t in (h, a, out, y, z, r, loss, *grads)], h.float()

    native_dtypes, native_h = run(torch.autocast("cpu", dtype=torch.bfloat16))
    dtypes, h = run(emulate(autocast("bf16")))
    assert dtypes == native_dtypes
    assert dtypes[:3] == [torch.bfloat16] * 3 and dtypes[3] == torch.float32
    assert torch.all((h - native_h).abs() <= native_h.abs() * 2.0**-7)


def test_autocast_backward_sums_round_like_half_gradients() -> None:
    """Autocast is off in backward: the bias gradient autograd sums from a half grad_out is a
    half sum, while a forward sum stays float32. Oracle: fl16 of the float64 sum of the
    (fp16-valued) output gradient, which torch's own CPU autocast also returns; keeping every
    sum in float32 left the bias gradient unrounded."""
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(3, 2), torch.randn(64, 3)
    with emulate(autocast("fp16")) as em:
        out = layer(x)
        out.retain_grad()
        loss = out.float().square().sum()
        loss.backward()
    assert out.grad.dtype == torch.float16
    expected = mperror.round(out.grad.double().sum(0), "fp16").float()
    assert torch.equal(layer.bias.grad, expected)
    # float32's sum is not an fp16 value
    assert not torch.equal(layer.bias.grad, out.grad.float().sum(0))
    assert em.report().op_classes["aten.sum.dim_IntList"] == "reduction in backward"


def test_autocast_composites_on_its_lists_run_as_cuda_autocast_runs_them() -> None:
    """Oracle: torch.autocast's rules and CPU torch.autocast's dtypes. Functions that check
    their inputs' dtypes above the operators the emulator sees (a convolution with a half input
    and a float32 bias, prelu, attention) get autocast's casts first, and so do composites of
    CUDA's fp32 list: rms_norm of half values of 300 (mean of squares 90000, beyond fp16's
    max) computes in float32 and returns float32 ones, as CUDA autocast's rms_norm does; its
    parts in fp16 would have overflowed to a norm of 0."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Conv1d(2, 2, 3), torch.nn.PReLU())
    x, q = torch.randn(1, 1, 8), torch.randn(1, 2, 4, 8)
    with emulate(autocast("fp16")) as em:
        y = net(x)
        a = torch.nn.functional.scaled_dot_product_attention(q, q, q)
        r = torch.nn.functional.rms_norm(torch.full((2, 4), 300.0).half(), (4,))
        loss = torch.nn.functional.l1_loss(y, torch.zeros_like(y))
    with torch.autocast("cpu", dtype=torch.float16):
        native = net(x), torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert (y.dtype, a.dtype) == (native[0].dtype, native[1].dtype) == (torch.float16,) * 2
    assert r.dtype == torch.float32 and torch.equal(r, torch.ones(2, 4))
    assert loss.dtype == torch.float32
    assert em.report().op_classes["aten.pow.Tensor_Scalar"] == "fp32"


def test_half_kernels_with_float32_results_keep_them() -> None:
    """Oracle: plain torch. _weight_norm_interface returns its norms in float32 for bfloat16
    inputs; the emulator's fast path, which assumes results in the inputs' dtype, had
    returned them in bfloat16."""
    v, g = torch.randn(3, 4).bfloat16(), torch.randn(3, 1).bfloat16()
    native = torch._weight_norm_interface(v, g)
    with emulate("bf16"):
        emulated = torch._weight_norm_interface(v, g)
    assert [t.dtype for t in emulated] == [t.dtype for t in native]


def test_gradscaler_bookkeeping_keeps_float32() -> None:
    """GradScaler's scale 2**16 exceeds fp16's max; its update runs natively (oracle: the
    documented doubling after growth_interval good steps)."""
    scale = torch.tensor([65536.0])
    tracker = torch.tensor([0], dtype=torch.int32)
    with emulate("fp16"):
        torch._amp_update_scale_(scale, tracker, torch.tensor([0.0]), 2.0, 0.5, 1)
    assert scale.item() == 131072.0


def test_foreach_ops_round_every_tensor() -> None:
    """Oracle: float64 results rounded once, for each tensor of the list (in-place too)."""
    xs = [torch.rand(3) * OFF_GRID, torch.rand(5)]
    ys = [torch.rand(3), torch.rand(5) * OFF_GRID]
    zs = [x.clone() for x in xs]
    with emulate("bf16"):
        out = torch._foreach_add(xs, ys)
        torch._foreach_mul_(zs, 3.0)
    for o, z, x, y in zip(out, zs, xs, ys, strict=True):
        assert torch.equal(o, rounded(x.double() + y.double(), "bf16").float())
        assert torch.equal(z, rounded(x.double() * 3, "bf16").float())


def test_double_backward_runs_through_the_emulator() -> None:
    """Second derivatives: every tensor autograd produces, in backward and double backward, is
    a value of the format (oracle: FloatFormat.is_representable), and d2/dx2 x**3 = 6x holds to
    the rounding of the few operators involved (a few fp16 spacings)."""
    fmt = formats.FP16
    x = torch.linspace(0.1, 2, 30).requires_grad_(True)
    with emulate(fmt) as em:
        y = (x * x * x).sum()
        (g,) = torch.autograd.grad(y, x, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), x)
    assert fmt.is_representable(g.detach()).all() and fmt.is_representable(h).all()
    exact = 6 * x.detach().double()
    assert ((h.double() - exact).abs() <= 4 * fmt.spacing(exact)).all()
    assert em.report().ops["aten.mul.Tensor"] > 2  # backward and double backward went through


def test_policy_validation_and_format_arguments() -> None:
    with pytest.raises(ValueError, match="compute"):
        pure("fp16", compute="fp16")
    with pytest.raises(ValueError, match="fft_algorithm"):
        pure("fp16", fft_algorithm="fast")
    with pytest.raises(ValueError, match="mode"):
        pure("fp16", mode="nearest")
    with pytest.raises(ValueError, match=r"storage must be one of \('caller', 'autocast'\)"):
        mperror.emulate.Policy(
            elementwise="fp16", matmul="fp16", reduction="fp16", fft="fp16", storage="half"
        )
    with pytest.raises(TypeError, match="keep_fp32"):
        mperror.emulate.Policy(
            elementwise="fp16", matmul="fp16", reduction="fp16", fft="fp16", keep_fp32="exp"
        )
    for names, message in [
        ({"softmax"}, r"'softmax' \(it runs as '_softmax'\)"),
        ({"layer_norm", "exp"}, r"'layer_norm' \(it runs as 'native_layer_norm'\)"),
        ({"expo"}, "unknown: 'expo'"),
        # decomposes into its parts (mm, add, ...): it had been accepted and never applied
        ({"linear"}, r"'linear' \(it runs as its parts\)"),
        ({"matmul"}, r"'matmul' \(it runs as its parts\)"),
        # the in-place variant shares the functional operator's entry: it had been ignored
        ({"exp_"}, r"'exp_' \(name 'exp'\)"),
        # attributes of torch.ops.aten that are no operators had failed with AttributeError
        ({"name"}, "unknown: 'name'"),
        ({"__init__"}, "unknown: '__init__'"),
    ]:
        with pytest.raises(ValueError, match=message):
            mperror.emulate.Policy(
                elementwise="fp16", matmul="fp16", reduction="fp16", fft="fp16", keep_fp32=names
            )
    with pytest.raises(TypeError, match="name must be a str"):  # str(policy) had failed
        mperror.emulate.Policy(
            elementwise="fp16", matmul="fp16", reduction="fp16", fft="fp16", name=5
        )
    with pytest.raises(TypeError, match="policy"):
        emulate(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator"):
        emulate("fp16", generator=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="accumulation"):
        pure("fp16", accumulation=3)  # type: ignore[arg-type]
    assert emulate(torch.bfloat16).policy == pure("bf16")
    assert pure("fp16") == pure(formats.FP16)
    assert pure("fp16").to_dict()["matmul"]["precision"] == 11


def test_classification_of_representative_operators() -> None:
    aten = torch.ops.aten
    expected = {
        aten.add.Tensor: OpClass.ELEMENTWISE,
        aten.add_.Tensor: OpClass.ELEMENTWISE,
        aten.mm.default: OpClass.MATMUL,
        aten.convolution.default: OpClass.MATMUL,
        aten.sum.dim_IntList: OpClass.REDUCTION,
        aten._softmax.default: OpClass.REDUCTION,
        aten._fft_r2c.default: OpClass.FFT,
        aten.slice.Tensor: OpClass.VIEW,
        aten.t_.default: OpClass.VIEW,
        aten.copy_.default: OpClass.DATA,
        aten.normal_.default: OpClass.SOURCE,
        aten.full.default: OpClass.SOURCE,
        aten._local_scalar_dense.default: OpClass.PASS,
        aten.linalg_solve_ex.default: OpClass.UNCLASSIFIED,
        # overloads torch tags no class on: their operator's other overloads say it
        aten.gelu_.default: OpClass.ELEMENTWISE,
        aten.gelu.out: OpClass.ELEMENTWISE,
        aten.rsub.Tensor: OpClass.ELEMENTWISE,
        aten.mul.Scalar_out: OpClass.ELEMENTWISE,
        # operators with no tag at all, classed by what they compute (torch's documentation)
        aten.hardswish.default: OpClass.ELEMENTWISE,
        aten.elu_backward.default: OpClass.ELEMENTWISE,
        aten.unsafe_split.Tensor: OpClass.VIEW,  # GRU gates; views, as split returns
        aten.unsafe_split.Tensor_out: OpClass.DATA,  # copies into out=, not views
        aten.adaptive_max_pool2d.default: OpClass.DATA,  # a selection of input values
        aten.hardtanh_backward.default: OpClass.DATA,  # the gradient or zero
        aten.reflection_pad1d_backward.default: OpClass.REDUCTION,  # adds mirrored gradients
        aten.adaptive_max_pool2d_backward.default: OpClass.REDUCTION,  # windows may overlap
        aten.linear.out: OpClass.MATMUL,
        aten._foreach_norm.Scalar: OpClass.REDUCTION,  # clip_grad_norm_'s norm where foreach runs
        # batch norm's kernels beyond native_batch_norm (cuDNN's, the running statistics,
        # SyncBatchNorm's) are normalisation layers, sums inside; they had no class
        aten.cudnn_batch_norm.default: OpClass.REDUCTION,
        aten.batch_norm_update_stats.default: OpClass.REDUCTION,
        aten.batch_norm_stats.default: OpClass.REDUCTION,
        aten.batch_norm_elemt.default: OpClass.ELEMENTWISE,
        # cuDNN's fused RNN layer: matmul-class like oneDNN's (it had been a source, by its
        # dropout's random tag, and ran on unrounded inputs)
        aten._cudnn_rnn.default: OpClass.MATMUL,
        aten._cudnn_rnn_backward.default: OpClass.MATMUL,
        aten._thnn_fused_lstm_cell.default: OpClass.ELEMENTWISE,  # gates given, no matmul
        aten.bincount.default: OpClass.REDUCTION,  # sums its weights
    }
    for op, cls in expected.items():
        assert classify(op).op_class is cls, op
    assert classify(aten.add_.Tensor).mutated == ((0, "self", False),)
    assert classify(aten.add.out).returns_mutated == (0,)


def test_unclassified_operators_without_floating_results_are_not_listed() -> None:
    """Oracle: the report's definition (operators rounded as elementwise for want of a class).
    isin gives bools, so nothing of it is rounded; linalg.solve's float result is."""
    x = torch.tensor([1.0, 2.0, 3.0])
    with emulate("fp16") as em:
        torch.isin(x, torch.tensor([2.0]))
    assert em.report().unclassified == ()
    assert em.report().op_classes["aten.isin.Tensor_Tensor"] == "unclassified"
    with emulate("fp16") as em:
        torch.linalg.solve(torch.eye(2) * 3, torch.ones(2))
    assert any("linalg" in op for op in em.report().unclassified)


def test_common_layers_run_without_unclassified_operators() -> None:
    """Oracle: the emulator's report. Layers of torch.nn that third-party models use, forward
    and backward, leave no operator without a class (each would otherwise be rounded as
    elementwise whatever it computes, and listed)."""
    torch.manual_seed(0)
    layers = [
        (torch.nn.GRU(4, 8, batch_first=True), torch.randn(2, 5, 4)),
        (torch.nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect"), torch.randn(2, 2, 8)),
        (torch.nn.Conv1d(2, 3, 3, padding=1, padding_mode="replicate"), torch.randn(2, 2, 8)),
        (torch.nn.AdaptiveMaxPool2d(3), torch.randn(2, 2, 7, 7)),
        (torch.nn.Hardswish(), torch.randn(8)),
        (torch.nn.Hardsigmoid(), torch.randn(8)),
        (torch.nn.ELU(), torch.randn(8)),
        (torch.nn.LeakyReLU(), torch.randn(8)),
        (torch.nn.Softplus(), torch.randn(8)),
        (torch.nn.GLU(), torch.randn(2, 8)),
        (torch.nn.LogSigmoid(), torch.randn(8)),
        (torch.nn.Hardtanh(), torch.randn(8)),
        (torch.nn.GELU(), torch.randn(8)),
        (torch.nn.Mish(), torch.randn(8)),
        (torch.nn.Bilinear(3, 3, 2), torch.randn(2, 3)),
        (torch.nn.EmbeddingBag(10, 4, mode="mean"), torch.randint(0, 10, (2, 3))),
        (torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
         torch.randn(2, 3, 8)),
    ]  # fmt: skip
    for layer, x in layers:
        x.requires_grad_(x.is_floating_point())
        with emulate("fp16") as em:
            out = layer(x, x) if isinstance(layer, torch.nn.Bilinear) else layer(x)
            (out[0] if isinstance(out, tuple) else out).square().sum().backward()
        assert em.report().unclassified == (), type(layer).__name__


def test_a_padding_gradient_is_rounded_to_the_reduction_format() -> None:
    """Oracle: torch's reflection padding. The gradient of a reflect-padded input adds the
    gradients of a value and its mirror image (a sum), so under a policy whose reduction
    format is e4m3fn and whose other formats are float32 it holds e4m3fn values: the input
    gradient of sum(w * pad(x)) with w = 1 + 2**-10 (a float32 value, not an e4m3fn one) is
    [w, 2 w, 2 w, w] (pad(x) = [x1, x0, x1, x2, x3, x2]), rounded to [1, 2, 2, 1]; were the
    backward classed elementwise, it would stay in float32."""
    fp32 = formats.get("fp32")
    policy = mperror.emulate.Policy(
        elementwise=fp32, matmul=fp32, reduction=formats.get("e4m3fn"), fft=fp32
    )
    x = torch.zeros(1, 1, 4, requires_grad=True)
    w = torch.full((1, 1, 6), 1 + 2.0**-10)
    with emulate(policy):
        (torch.nn.functional.pad(x, (1, 1), mode="reflect") * w).sum().backward()
    assert x.grad is not None
    assert x.grad.flatten().tolist() == [1.0, 2.0, 2.0, 1.0]


def test_integer_arguments_of_arithmetic_keep_their_dtype() -> None:
    """Class indices stay integers inside the emulated loss (oracle: log_softmax and the mean
    negative log-likelihood, each computed in float64 and rounded once)."""
    x = torch.randn(5, 3)
    target = torch.tensor([0, 2, 1, 1, 0])
    with emulate("fp16"):
        loss = torch.nn.functional.cross_entropy(x, target)
        shifted = torch.randn(4).add_(torch.arange(4))
    log_p = rounded(torch.log_softmax(x.double(), 1))
    assert loss.item() == rounded(-log_p[torch.arange(5), target].mean()).item()
    assert shifted.dtype == torch.float32


@pytest.mark.slow
def test_compiled_rounding_inside_the_emulator() -> None:
    """compiled=True rounds with mperror.round's torch.compile'd kernel (compiled on the first
    call, a few seconds); oracle: the eager emulation, bit for bit."""
    x = torch.randn(300) * OFF_GRID
    y = torch.randn(300)
    with emulate("e2m1", compiled=True, count=False):
        fast = x * y + 1
    with emulate("e2m1", count=False):
        eager = x * y + 1
    assert torch.equal(fast, eager)


def test_batch_norm_updates_its_running_statistics() -> None:
    """native_batch_norm writes running_mean / running_var without saying so in its schema;
    the emulator must still write them back. Oracle: the momentum update computed in float64,
    rounded once to fp16 (the kernel's own float64 mean and variance may differ from these in
    the last float64 bits, so a result one fp16 spacing away is allowed)."""
    bn = torch.nn.BatchNorm1d(4)
    x = torch.randn(16, 4) * 3 + 1
    with emulate("fp16"):
        bn(x)
    xd = x.double()
    mean = rounded(0.1 * xd.mean(0))
    var = rounded(0.9 + 0.1 * xd.var(0, unbiased=True))
    fp16 = formats.FP16
    assert ((bn.running_mean.double() - mean.double()).abs() <= fp16.spacing(mean.double())).all()
    assert ((bn.running_var.double() - var.double()).abs() <= fp16.spacing(var.double())).all()
    assert bn.num_batches_tracked.item() == 1


def test_report_is_json_ready() -> None:
    """The record crosses module boundaries as plain data (oracle: json round trip)."""
    import json

    x = torch.rand(3)
    with emulate(autocast("bf16")) as em:
        _ = torch.exp(x) + x
    data = json.loads(json.dumps(em.report().to_dict()))
    assert data["policy"]["name"] == "autocast(bf16)"
    assert "exp" in data["policy"]["keep_fp32"]
    assert data["op_classes"]["aten.exp.default"] == "fp32"


def test_torch_compiled_user_code_is_emulated() -> None:
    """A torch.compile'd function called inside the block still has its operators emulated
    (oracle: each result rounded once from float64, as the eager emulation gives)."""

    @torch.compile(backend="eager")
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * 2 + 1

    x = torch.randn(50) * OFF_GRID
    with emulate("fp16") as em:
        y = f(x)
    with emulate("fp16"):
        expected = torch.sin(x) * 2 + 1
    assert torch.equal(y, expected)
    assert em.report().ops.get("aten.sin.default") == 1


def test_fp32_working_precision_keeps_copies_and_constants_exact() -> None:
    """compute="fp32" computes arithmetic in float32, but conversions and constants stay exact:
    a float64 value just above an fp16 midpoint converts to the upper neighbour (a float32
    detour would land on the midpoint and tie to even), and full(0.1) is fp16(0.1) (oracle:
    the reference rounding of the exact values)."""
    x = torch.tensor([1 + 2.0**-11 + 2.0**-40], dtype=torch.float64)
    with emulate(pure("fp16", compute="fp32")):
        h = x.half()
        c = torch.full((2,), 0.1)
    assert h.item() == mperror.reference.round_scalar(1 + 2.0**-11 + 2.0**-40, "fp16")
    assert h.item() == 1 + 2.0**-10
    assert (c == mperror.reference.round_scalar(0.1, "fp16")).all()


MUTATIONS = {
    "copy_": lambda t: t.copy_(torch.linspace(-2, 2, t.numel()).reshape(t.shape) * OFF_GRID),
    "fill_": lambda t: t.fill_(0.1),
    "zero_": lambda t: t.zero_(),
    "masked_fill_": lambda t: t.masked_fill_(t > 0, 0.3),
    "scatter_": lambda t: t.scatter_(1, torch.tensor([[0, 2], [1, 3]]), OFF_GRID / 3),
    "index_put_": lambda t: t.index_put_(
        (torch.tensor([0, 0]), torch.tensor([1, 1])),
        torch.tensor([0.7, 0.2], dtype=t.dtype),
        accumulate=True,
    ),
    "addcdiv_": lambda t: t.addcdiv_(torch.ones_like(t), torch.full_like(t, 3.0), value=0.5),
    "clamp_": lambda t: t.clamp_(min=-0.1, max=0.1),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutating_ops_write_the_rounded_result_in_place(name: str) -> None:
    """Oracle: the same mutation without emulation on a float64 copy, rounded once to bf16 (the
    inputs are bf16 values, so each mutation is one operation on them)."""
    start = mperror.round(torch.randn(2, 4, dtype=torch.float64), "bf16")
    expected = start.clone()
    MUTATIONS[name](expected)
    expected = mperror.round(expected, "bf16").float()
    t = start.float()
    ptr = t.data_ptr()
    with emulate("bf16"):
        returned = MUTATIONS[name](t)
    assert returned is t and t.data_ptr() == ptr
    assert torch.equal(t, expected)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")
def test_a_fused_lstm_layer_runs_in_float32_and_its_outputs_are_rounded() -> None:
    """oneDNN's LSTM layer has no float64 kernel. Oracle: torch's own LSTM on fp16-rounded
    weights and input (the layer is matmul-class, so its inputs are rounded first), its output
    rounded to fp16: the same bits. With oneDNN disabled torch runs the LSTM as separate
    operators, each emulated, and no fused kernel appears."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 8, batch_first=True)
    x = torch.randn(2, 5, 4, requires_grad=True)
    with emulate("fp16") as em:
        out, _ = lstm(x)
        out.sum().backward()
    assert em.report().op_classes["aten.mkldnn_rnn_layer.default"] == "matmul/float32 kernel"
    assert x.grad is not None and torch.equal(x.grad, rounded(x.grad))
    reference = torch.nn.LSTM(4, 8, batch_first=True)
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            getattr(reference, name).copy_(rounded(p))
        expected = rounded(reference(rounded(x))[0])
    assert torch.equal(out.detach(), expected)


@pytest.mark.gpu
def test_a_cudnn_lstm_layer_runs_in_float32_and_its_outputs_are_rounded() -> None:
    """As for oneDNN's layer above, on CUDA, where nn.LSTM runs cuDNN's _cudnn_rnn: Oracle:
    torch's LSTM on fp16-rounded weights and input, its output rounded to fp16."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 8, batch_first=True).cuda()
    x = torch.randn(2, 5, 4, device="cuda", requires_grad=True)
    with emulate("fp16") as em:
        out, _ = lstm(x)
        out.sum().backward()
    assert em.report().op_classes["aten._cudnn_rnn.default"] == "matmul/float32 kernel"
    reference = torch.nn.LSTM(4, 8, batch_first=True).cuda()
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            getattr(reference, name).copy_(rounded(p))
        expected = rounded(reference(rounded(x))[0])
    assert torch.equal(out.detach(), expected)
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        with emulate("fp16") as em_split:
            split, _ = lstm(x)
    finally:
        torch.backends.mkldnn.enabled = enabled
    assert not any("mkldnn" in op for op in em_split.report().ops)
    assert torch.equal(split.detach(), rounded(split.detach()))


def test_meta_tensors_pass_with_their_dtype() -> None:
    """A meta tensor has no values to round (torch.func propagates shapes with them): the result
    keeps the dtype the operator returns, also where a second rounding into a storage dtype
    narrower than the format would follow (bf16 values stored in float16). Oracle: the same
    operator on a CPU tensor."""
    for name, dtype in [("fp16", torch.float32), ("bf16", torch.float16), ("fp32", torch.bfloat16)]:
        with emulate(name):
            y = torch.ones(3, device="meta", dtype=dtype) * 0.1
        assert y.is_meta and y.dtype == (torch.ones(3, dtype=dtype) * 0.1).dtype


def test_eval_batch_norm_leaves_its_running_statistics_alone() -> None:
    """Oracle: torch's eval-mode batch norm reads the running statistics and writes nothing; the
    emulator wrote them back rounded (they are written only in training)."""
    bn = torch.nn.BatchNorm1d(4)
    with torch.no_grad():
        bn(torch.randn(16, 4, generator=torch.Generator().manual_seed(0)) * 3 + 0.3)
    bn.eval()
    before = (bn.running_mean.clone(), bn.running_var.clone())
    with emulate("fp16"), torch.no_grad():
        bn(torch.randn(3, 4))
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    bn.train()
    with emulate("fp16"), torch.no_grad():
        bn(torch.randn(3, 4))
    assert torch.equal(bn.running_var, rounded(bn.running_var))  # training writes, rounded


def test_results_keep_the_layout_torch_gives_them() -> None:
    """Oracle: torch's own output strides. An elementwise operator on a permuted tensor keeps
    the permuted layout, and code may view the result accordingly (the emulator's results were
    contiguous, and this view raised); a channels_last convolution stays channels_last."""
    x = torch.randn(3, 4, 5, 2).permute(0, 3, 1, 2)
    with emulate("fp16"):
        y = torch.tanh(x)
        conv = torch.nn.Conv2d(2, 2, 1)(
            torch.randn(1, 2, 4, 4).to(memory_format=torch.channels_last)
        )
    assert y.stride() == torch.tanh(x).stride()
    y.permute(0, 2, 3, 1).view(-1)  # raises unless y has x's layout
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_autocast_leaves_factories_and_grad_scaler_in_float32() -> None:
    """CUDA autocast casts no factory: torch.full((), 65536.0) is float32's 65536 there, not
    fp16's inf. GradScaler makes its scale so, lazily, on the first scale() call: inside the
    emulated autocast every step was skipped for good (inf scale). Oracle: the same loop
    without emulation trains; with it the scale stays finite and the weights move."""
    steps = torch.arange(0.0, 1.0, 0.1)
    with emulate(autocast("fp16")):
        assert torch.full((), 65536.0).item() == 65536.0
        assert torch.equal(torch.arange(0.0, 1.0, 0.1), steps)  # float32's, not fp16's
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    before = model.weight.detach().clone()
    with emulate(autocast("fp16")):
        for _ in range(3):
            scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()
    assert math.isfinite(scaler.get_scale()) and not torch.equal(model.weight, before)


@pytest.mark.parametrize("name", ["fp16", "e4m3fn", "e2m1"])
def test_nextafter_and_nan_to_num_follow_the_format(name: str) -> None:
    """Oracle: the format's sorted finite values (finite_values). nextafter steps to the
    neighbouring value of the format in the direction of other (it moved one float64 step,
    which rounded back), and nan_to_num's default replacements of ±inf are the format's ±max
    (float64's, rounded to inf, they were). In-place and out= variants agree."""
    fmt = formats.get(name)
    values = fmt.finite_values(dtype=torch.float32)
    inner = values[1:-1]
    with emulate(fmt):
        up = torch.nextafter(inner, torch.full_like(inner, math.inf))
        down = inner.clone().nextafter_(torch.full_like(inner, -math.inf))
        out = torch.empty_like(inner)
        torch.nextafter(inner, inner, out=out)
        fixed = torch.nan_to_num(torch.tensor([math.inf, math.nan, -math.inf]))
    assert torch.equal(up, values[2:])  # one zero in the list: nextafter(0, inf) is its next
    assert torch.equal(down, values[:-2])
    assert torch.equal(out, inner)
    assert fixed.tolist() == [fmt.max, 0.0, -fmt.max]


def test_inference_mode_sees_the_same_operators() -> None:
    """Oracle: float64 computation rounded once, with matmul inputs rounded first
    (round(round(x) @ round(w))), and the same code under no_grad. Inference mode (and inference
    tensors) skip the autograd keys, where matmul, einsum and the FFTs decompose; without
    decomposing them the emulator rounded x @ w once and computed the FFTs in one float64 step.
    """
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 16, generator=generator)
    w = torch.randn(16, 5, generator=generator)
    want = rounded(rounded(x).double() @ rounded(w).double()).float()
    policy = pure("fp16", fft_algorithm="staged")
    programs = {
        "matmul": lambda x, w: x @ w,
        "einsum": lambda x, w: torch.einsum("bi,io->bo", x, w),
        "rfft": lambda x, w: torch.view_as_real(torch.fft.rfft(x)),
    }
    for name, program in programs.items():
        with torch.no_grad(), emulate(policy):
            reference = program(x, w)
        with torch.inference_mode(), emulate(policy):
            inside = program(x, w)
        with torch.inference_mode():
            x_inf, w_inf = x.clone(), w.clone()  # inference tensors, used outside the mode
        with emulate(policy):
            outside = program(x_inf, w_inf)
        assert torch.equal(inside, reference) and torch.equal(outside, reference), name
        if name != "rfft":
            assert torch.equal(reference, want), name


def test_report_counts_the_store_into_a_narrower_dtype() -> None:
    """Oracle: hand count. float16 tensors under bf16: 300**2 = 90000 is bf16's 89600, finite,
    and inf in float16; 2**-26 is a bf16 value and 0 in float16 (below its 2**-24). The caller
    gets [inf, 0]: one overflow, one underflow, two values rounded (the store's second
    rounding had not been counted)."""
    x = torch.tensor([300.0, 2.0**-13], dtype=torch.float16)
    with emulate("bf16") as em:
        y = x * x
    assert y.tolist() == [math.inf, 0.0]
    report = em.report()
    assert (report.rounded, report.overflowed, report.underflowed) == (2, 1, 1)


def test_foreach_norm_follows_the_reduction_format() -> None:
    """Oracle: the float64 norm rounded once to the reduction format (bf16), as
    linalg_vector_norm gives under the same policy; _foreach_norm (clip_grad_norm_'s norm on
    devices where foreach kernels run) had been classed elementwise and kept fp32's value."""
    x = torch.arange(1.0, 6.0) / 3
    policy = mperror.emulate.Policy(elementwise="fp32", matmul="fp32", reduction="bf16", fft="fp32")
    want = mperror.round(torch.linalg.vector_norm(x.double()), "bf16").float()
    with emulate(policy):
        (foreach,) = torch._foreach_norm([x])
        plain = torch.linalg.vector_norm(x)
    assert foreach.item() == plain.item() == want.item()


def test_autocast_factories_draw_and_make_what_they_would_without_emulation() -> None:
    """Oracle: the same calls without emulation. CUDA autocast casts no factory: a float64 or
    float16 randn draws as it would (float32's randn draws another stream), and a float64
    constant keeps its float64 value (narrowing the dtype asked for had changed both)."""

    def make() -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(3)
        return [
            torch.randn(50, dtype=torch.float64, generator=g),
            torch.rand(50, dtype=torch.float64, generator=g),
            torch.randn(50, dtype=torch.float16, generator=g),
            torch.full((3,), 0.1, dtype=torch.float64),
            torch.linspace(0, 1, 7, dtype=torch.float64),
        ]

    with emulate(autocast("fp16")):
        inside = make()
    for got, want in zip(inside, make(), strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)


@pytest.mark.parametrize("activation", ["silu", "mish"])
def test_activation_backward_kernels_are_rounded_once(activation: str) -> None:
    """silu_backward and mish_backward have both a CPU kernel and a composite one; autograd
    runs the kernel. Oracles: (1) under pure(fp64) on float64 the gradient is plain torch's,
    bit for bit; (2) under bf16 it is the float64 gradient of the (rounded) input rounded once.
    The emulator had decomposed them into their pieces, each rounded."""
    f = getattr(torch.nn.functional, activation)
    x = torch.randn(200, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def gradient(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().requires_grad_()
        return torch.autograd.grad(f(t).sum(), t)[0]

    want = gradient(x)
    with emulate("fp64"):
        assert torch.equal(gradient(x), want)
    x16 = rounded(x, "bf16")
    with emulate("bf16"):
        got = gradient(x16)
    assert torch.equal(got, rounded(gradient(x16), "bf16"))


def test_sparse_and_nested_tensors_are_refused_by_name() -> None:
    """Oracle: the message. The emulator rounds dense tensors; a sparse gradient
    (nn.Embedding(sparse=True)) or a nested tensor had failed inside torch with a message about
    reshape or NestedTensorImpl sizes."""
    embedding = torch.nn.Embedding(10, 4, sparse=True)
    with pytest.raises(TypeError, match=r"sparse_coo tensor.*sparse=False"), emulate("bf16"):
        embedding(torch.tensor([1, 2, 2])).sum().backward()
    nested = torch.nested.nested_tensor([torch.randn(2, 8), torch.randn(3, 8)], layout=torch.jagged)
    linear = torch.nn.Linear(8, 4)
    with pytest.raises(TypeError, match="nested tensor"), torch.no_grad(), emulate("bf16"):
        linear(nested)
