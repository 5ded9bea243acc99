"""Policies that hand matrix products, sums and FFTs to mperror.ops: accumulation models and
staged FFTs inside the emulator.

Oracles: hand-derived sums; mperror.ops called directly on the same rounded operands (ops is
tested on its own against scalar replays and Fraction arithmetic); Higham's deterministic
accumulation bound; the overflow of an unnormalised half FFT (REFERENCES section 3).
"""

from __future__ import annotations

import math

import pytest
import torch

import mperror
import mperror.ops
from mperror import emulate, formats
from mperror.emulate import pure
from mperror.ops import Accumulation


def rounded(x: torch.Tensor, fmt) -> torch.Tensor:
    """Oracle: the float64 (complex128) value rounded once."""
    return mperror.round(x.to(torch.complex128 if x.is_complex() else torch.float64), fmt)


def test_sums_follow_the_accumulation_format() -> None:
    """Hand-derived: 1 + 2**-11 is an fp16 tie that rounds to the even 1, so accumulating
    [1, 2**-11 x 4] in fp16 stays at 1; in fp32 it reaches 1 + 2**-9 = 1.001953125, an fp16
    value. The mean divides the accumulated sum by 5 and rounds once: fp16(1/5)."""
    x = torch.tensor([1.0] + [2.0**-11] * 4)
    with emulate(pure("fp16", accumulation="fp16")) as em:
        s16, m16 = x.sum(), x.mean()
    with emulate(pure("fp16", accumulation="fp32")):
        s32 = x.sum()
        rows = torch.stack([x, x]).sum(dim=1, keepdim=True)
    assert s16.item() == 1.0 and s32.item() == 1 + 2.0**-9
    assert m16.item() == mperror.reference.round_scalar(0.2, "fp16")
    assert rows.shape == (2, 1) and (rows == 1 + 2.0**-9).all()
    assert em.report().op_classes["aten.sum.default"] == "reduction/ops"


def test_matmul_and_linear_follow_the_accumulation_model() -> None:
    """Oracle: mperror.ops.matmul on the bf16-rounded operands, accumulating pairwise in bf16;
    linear's bias joins the accumulator and the result is rounded once. Also Higham's bound
    for pairwise summation, |C - AB| <= gamma_(ceil log2 k + 1) |A||B| (one rounding per tree
    level plus the product's), holds."""
    model = Accumulation(fmt="bf16", order="pairwise")
    gen = torch.Generator().manual_seed(0)
    a, b, bias = (
        torch.randn(8, 50, generator=gen),
        torch.randn(50, 6, generator=gen),
        torch.randn(6),
    )
    with emulate(pure("bf16", accumulation=model)):
        c = a @ b
        lin = torch.nn.functional.linear(a, b.t(), bias)
    ra, rb, rbias = rounded(a, "bf16"), rounded(b, "bf16"), rounded(bias, "bf16")
    product = mperror.ops.matmul(ra, rb, "bf16", accumulate=model)
    assert torch.equal(c.double(), product)
    assert torch.equal(lin.double(), rounded(product + rbias, "bf16"))
    u = formats.BF16.unit_roundoff
    levels = math.ceil(math.log2(50)) + 1
    gamma = levels * u / (1 - levels * u)
    exact = ra @ rb
    assert ((c.double() - exact).abs() <= gamma * (ra.abs() @ rb.abs())).all()


def test_an_accumulator_narrower_than_the_format_does_not_round_the_inputs() -> None:
    """Oracle: the documented models by hand. fp32 values into an fp16 accumulator: s_2 =
    fl16((1 + 2**-10) + t) with t = 2**-11 (1 - 2**-13) just under half an fp16 spacing, so
    1 + 2**-10 (rounding t to fp16 first made a tie, to even: 1 + 2**-9). A bf16 accumulator's
    product fl_bf16((1 + 2**-8)**2) = 1 + 2**-7 (rounding the inputs to bf16 first gave 1)."""
    x = torch.tensor([1 + 2.0**-10, 2.0**-11 * (1 - 2.0**-13)])
    a = torch.tensor([[1 + 2.0**-8]])
    with emulate(pure("fp32", accumulation="fp16")):
        total = x.sum()
    with emulate(pure("fp32", accumulation="bf16")):
        product = a @ a
    assert total.item() == 1 + 2.0**-10
    assert product.item() == 1 + 2.0**-7


def test_routed_edge_cases_follow_torch() -> None:
    """Oracle: torch without emulation. An integer dtype= sum converts each element first
    (0 + 0 + 0 = 0; summing in floating point first gave 1); addmm and addmv with alpha = 0
    return beta * bias, an infinite product ignored (0 * inf gave NaN)."""
    x = torch.tensor([0.5, 0.5, 0.75])
    bias, a, b = torch.ones(1, 2), torch.tensor([[1.0, math.inf]]), torch.ones(2, 2)
    with emulate(pure("fp16", accumulation="fp16")):
        total = x.sum(dtype=torch.int64)
        mm = torch.addmm(bias, a, b, alpha=0)
        mv = torch.addmv(bias[0], b, a[0], alpha=0)
    assert total.item() == x.sum(dtype=torch.int64).item() == 0
    assert torch.equal(mm, torch.addmm(bias, a, b, alpha=0))
    assert torch.equal(mv, torch.addmv(bias[0], b, a[0], alpha=0))


def test_reductions_under_a_model_do_not_round_their_inputs() -> None:
    """Oracle: float64 computation rounded once, and the same code without an accumulation
    model. A reduction's inputs are not rounded to the format first (only matmul-class ones
    are): float32 70000 - 60000 sums to 10000 with fp64 or fp32 accumulation as without a
    model (the routed sum had rounded 70000 to fp16's inf first). With the accumulator in the
    format itself (fp16), [1, 2**-11 + 2**-22] sums to fl16(1 + 2**-11 + 2**-22) = 1 + 2**-10,
    the second term entering exactly (rounding it to fp16 first made 2**-11, and then a tie
    that rounds to 1). A mean over dim 0 of a 0-d tensor is the value itself (the routed mean
    had raised IndexError)."""
    x = torch.tensor([70000.0, -60000.0])
    for accumulation in (None, "fp64", "fp32"):
        with emulate(pure("fp16", accumulation=accumulation)):
            total = x.sum()
            mean = torch.tensor(3.0).mean(0)
        assert total.item() == 10000.0, accumulation
        assert mean.item() == 3.0 and mean.dim() == 0, accumulation
    with emulate(pure("fp16", accumulation="fp16")):
        total = torch.tensor([1.0, 2.0**-11 + 2.0**-22]).sum()
    assert total.item() == 1 + 2.0**-10


def test_staged_ffts_scale_by_the_unrounded_factor() -> None:
    """Oracle: hand derivation (as tests/ops' test of the same model): the inverse DFT of
    256 delta on 1024 points is 1/4 everywhere, an e4m3fn value; 1/1024 lies below e4m3fn's
    range, and the routed transform had rounded that factor to 0 first."""
    delta = torch.zeros(1024, dtype=torch.complex64)
    delta[0] = 256.0
    with emulate(pure("e4m3fn", fft_algorithm="staged")):
        signal = torch.fft.ifft(delta)
    assert torch.equal(signal.real, torch.full((1024,), 0.25))


def test_complex_products_run_as_four_real_ones() -> None:
    """Oracle: the four real products accumulated in fp32 by mperror.ops, combined in float64
    and rounded once to fp16 (the model of routed.py)."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(3, 4, 5, dtype=torch.complex64, generator=gen)
    b = torch.randn(3, 5, 2, dtype=torch.complex64, generator=gen)
    with emulate(pure("fp16", accumulation="fp32")):
        c = torch.bmm(a, b)
    ra, rb = rounded(a, "fp16"), rounded(b, "fp16")

    def prod(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mperror.ops.matmul(x.contiguous(), y.contiguous(), "fp32", accumulate="fp32")

    real = prod(ra.real, rb.real) - prod(ra.imag, rb.imag)
    imag = prod(ra.real, rb.imag) + prod(ra.imag, rb.real)
    assert c.dtype == torch.complex64
    assert torch.equal(c.to(torch.complex128), rounded(torch.complex(real, imag), "fp16"))


@pytest.mark.parametrize("mode", ["toward_positive", "toward_negative", "odd"])
def test_a_bias_far_below_the_product_reaches_a_directed_rounding(mode: str) -> None:
    """Oracle: hand rounding of the exact 1 + 2**-100 in bf16 (toward_positive and odd give
    1 + 2**-7, toward_negative 1), which mperror.ops.add also gives. The float64 sum, rounded
    to nearest first, had dropped the bias: 1 in every mode."""
    a, b, bias = torch.ones(1, 1), torch.ones(1, 1), torch.tensor([[2.0**-100]])
    with emulate(pure("bf16", mode=mode, accumulation="fp32")):
        got = torch.addmm(bias, a, b).item()
    expected = 1.0 if mode == "toward_negative" else 1 + 2.0**-7
    assert got == expected
    assert got == mperror.ops.add(torch.ones(1), bias[0], "bf16", mode).item()


def test_complex_parts_combine_exactly_before_a_directed_rounding() -> None:
    """Oracle: hand rounding. (1 + i)(1 + 2**-60 i) = (1 - 2**-60) + (1 + 2**-60) i exactly;
    toward_negative in bf16 gives 1 - 2**-8 and 1. The parts' float64 sums, rounded to
    nearest first, were 1 and 1."""
    a = torch.tensor([[1 + 1j]], dtype=torch.complex64)
    b = torch.tensor([[1 + 2.0**-60 * 1j]], dtype=torch.complex64)
    with emulate(pure("bf16", mode="toward_negative", accumulation="fp32")):
        c = (a @ b).item()
    assert c == complex(1 - 2.0**-8, 1.0)


def test_staged_ffts_are_mperror_ops_transforms() -> None:
    """Oracle: mperror.ops.rfft / irfft called directly (norm "backward": unscaled forward, 1/n
    after the inverse, as cuFFT applies it)."""
    gen = torch.Generator().manual_seed(2)
    x = rounded(torch.randn(3, 16, generator=gen), "fp16").float()
    with emulate(pure("fp16", fft_algorithm="staged")) as em:
        spectrum = torch.fft.rfft(x)
        back = torch.fft.irfft(spectrum, n=16)
    assert torch.equal(spectrum, mperror.ops.rfft(x, "fp16"))
    assert torch.equal(back, mperror.ops.irfft(spectrum, "fp16", n=16))
    assert em.report().op_classes["aten._fft_r2c.default"] == "fft/ops"


@pytest.mark.parametrize("n", [3, 6, 14, 20])
def test_staged_ffts_of_any_length_under_emulation(n: int) -> None:
    """Bluestein's chirp-z (lengths that are not powers of two) run inside the emulator's
    handler, where torch ignores a lazily conjugated operand: every such transform came out
    wrong (relative error about 1). Oracle: torch.fft in float64; with format fp64 the staged
    transforms agree to ~1e-15."""
    x = torch.randn(2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    z = torch.complex(x, x.flip(-1))
    with emulate(pure("fp64", fft_algorithm="staged")):
        got = [torch.fft.fft(z), torch.fft.ifft(z), torch.fft.rfft(x), torch.fft.irfft(z, n=n)]
    want = [torch.fft.fft(z), torch.fft.ifft(z), torch.fft.rfft(x), torch.fft.irfft(z, n=n)]
    for a, b in zip(got, want, strict=True):
        assert float((a - b).abs().max() / b.abs().max()) < 1e-13


def test_staged_fft_overflows_like_a_half_fft() -> None:
    """REFERENCES section 3: a half FFT runs unnormalised and scales afterwards, so it overflows
    unless N max|v| <= 65504 whatever norm says: 1024 points of 100 give 102400 > 65504 in the
    zero bin. The exact emulation (float64, rounded once) returns 100."""
    x = torch.full((1024,), 100.0)
    with emulate(pure("fp16", fft_algorithm="staged")) as em:
        staged = torch.fft.fft(x, norm="forward")
    with emulate("fp16"):
        exact = torch.fft.fft(x, norm="forward")
    assert math.isinf(staged[0].real.item())
    assert exact[0].real.item() == 100.0
    nonfinite = int((~torch.isfinite(torch.view_as_real(staged))).sum())
    assert nonfinite >= 1 and em.report().overflowed == nonfinite


@pytest.mark.parametrize("accumulation", ["fp16", "fp32"])
def test_an_input_overflowing_when_rounded_is_counted_once(accumulation: str) -> None:
    """Oracle: hand count. The sum overflows fp16 once (70000 rounded into an fp16 accumulator,
    or the total 70003 rounded to fp16 after fp32 accumulation); the product rounds its input
    70000 to fp16 first (a matmul-class operand), one overflow whose inf propagates without a
    second."""
    with emulate(pure("fp16", accumulation=accumulation)) as em:
        total = torch.tensor([70000.0, 1.0, 2.0]).sum()
        product = torch.tensor([[70000.0]]) @ torch.tensor([[1.0]])
    assert math.isinf(total.item()) and math.isinf(product.item())
    assert em.report().overflowed == 2  # one input each


def test_out_buffers_of_a_matmul_are_not_rounded_as_operands() -> None:
    """An out= buffer is written, not read: its stale 1e6 (past fp16's max) is no overflow."""
    out, a = torch.full((2, 2), 1e6), torch.ones(2, 2)
    with emulate("fp16") as em:
        torch.mm(a, a, out=out)
    report = em.report()
    assert torch.equal(out, torch.full((2, 2), 2.0))
    assert (report.overflowed, report.rounded) == (0, 12)  # 8 operands, 4 results


def test_fno_layer_under_accumulation_and_staged_ffts_stays_close_to_exact() -> None:
    """A Fourier layer (rfft2, complex einsum into a slice of a zero spectrum, irfft2) with fp32
    accumulation and staged fp16 FFTs, forward and backward: every gradient is a pair of fp16
    values, and the output differs from the exact-accumulation emulation by a few fp16
    roundings of the layer's scale (4 log2(16 * 16) spacings at max|y|: one rounding per FFT
    stage in each of the two transforms)."""
    torch.manual_seed(3)
    w = torch.nn.Parameter(torch.rand(3, 4, 4, 3, dtype=torch.cfloat) / 12)
    x = torch.randn(2, 3, 16, 16)

    def layer(inputs: torch.Tensor) -> torch.Tensor:
        x_ft = torch.fft.rfft2(inputs)
        out_ft = torch.zeros(2, 4, 16, 9, dtype=torch.cfloat)
        out_ft[:, :, :4, :3] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :4, :3], w)
        return torch.fft.irfft2(out_ft, s=(16, 16))

    with emulate(pure("fp16", accumulation="fp32", fft_algorithm="staged")):
        y = layer(x)
        y.square().sum().backward()
    with emulate("fp16"):
        y_exact = layer(x)
    spacing = formats.FP16.spacing(y_exact.abs().max().double().reshape(1)).item()
    assert (y - y_exact).abs().max().item() <= 4 * math.log2(16 * 16) * spacing
    assert w.grad is not None
    assert formats.FP16.is_representable(torch.view_as_real(w.grad)).all()
