"""The precision-aware FNO: full mode against a textbook implementation, emulated modes against
torch's float32 FFT and against fp16's unit roundoff, overflow against N M <= max, schedules,
the contraction path, bad input."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mperror
from mperror import formats
from mperror.bounds.fft import fft_overflows
from mperror.models import FNO, PrecisionSchedule, SpectralConv, SpectralPrecision
from mperror.models import parse_model_precision as parse


def _model(dim: int = 1, **kw) -> FNO:
    modes = (5,) if dim == 1 else (4, 3)
    return FNO(
        dim=dim, width=6, modes=modes, layers=2, generator=torch.Generator().manual_seed(1), **kw
    )


def _input(dim: int, batch: int = 3, n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, *(n,) * dim, generator=g)


def _textbook_spectral(layer: SpectralConv, v: torch.Tensor) -> torch.Tensor:
    """Li et al.'s spectral convolution, complex arithmetic, preallocated output spectrum."""
    w = torch.view_as_complex(layer.weight.detach().contiguous())
    if layer.dim == 1:
        (m,) = layer.modes
        v_ft = torch.fft.rfft(v)
        out = torch.zeros(*v_ft.shape[:1], w.shape[1], v_ft.shape[-1], dtype=v_ft.dtype)
        out[..., :m] = torch.einsum("bik,iok->bok", v_ft[..., :m], w)
        return torch.fft.irfft(out, n=v.shape[-1])
    m1, m2 = layer.modes
    v_ft = torch.fft.rfft2(v)
    out = torch.zeros(v_ft.shape[0], w.shape[1], *v_ft.shape[-2:], dtype=v_ft.dtype)
    out[..., :m1, :m2] = torch.einsum("bixy,ioxy->boxy", v_ft[..., :m1, :m2], w[..., :m1, :])
    out[..., -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", v_ft[..., -m1:, :m2], w[..., m1:, :])
    return torch.fft.irfft2(out, s=v.shape[-2:])


def _textbook_fno(model: FNO, x: torch.Tensor) -> torch.Tensor:
    v = model.lift(torch.cat([x, model._grid(x)], dim=1))
    for k, (spectral, pointwise) in enumerate(zip(model.spectral, model.pointwise, strict=True)):
        v = pointwise(v) + _textbook_spectral(spectral, v)
        if k < len(model.spectral) - 1:
            v = F.gelu(v)
    return model.project(v)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


@pytest.mark.parametrize("dim", [1, 2])
def test_full_matches_the_textbook_fno(dim: int) -> None:
    """Oracle: Li et al.'s complex-arithmetic spectral convolution written out here; both are
    float32, so they agree to a few float32 roundings (u = 6e-8)."""
    model, x = _model(dim), _input(dim)
    with torch.no_grad():
        assert _relative(model(x), _textbook_fno(model, x)) < 1e-5


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("mode", ["half", "mixed"])
def test_emulated_in_fp32_matches_torch_fft(dim: int, mode: str) -> None:
    """Oracle: torch's float32 FFT (the full mode). The emulated path in format fp32 runs the
    staged FFT and the einsum rounded to float32, a different algorithm for the same function:
    outputs and every parameter gradient agree to float32 accuracy."""
    x = _input(dim)
    full, emulated = _model(dim), _model(dim, precision=SpectralPrecision(mode, "fp32"))
    out_full, out_emulated = full(x), emulated(x)
    assert _relative(out_emulated, out_full) < 1e-5
    out_full.square().sum().backward()
    out_emulated.square().sum().backward()
    for a, b in zip(emulated.parameters(), full.parameters(), strict=True):
        assert _relative(a.grad, b.grad) < 1e-4


@pytest.mark.parametrize("mode", ["half", "mixed"])
def test_emulated_modes_have_second_derivatives(mode: str) -> None:
    """Double backward through an emulated spectral convolution: a Hessian-vector product (what
    mperror.lipschitz computes) and a second backward of a retained graph. Oracle: the full
    mode's, to float32 accuracy, with fp32 as the emulated format (the first backward freed the
    emulated graph, so both raised; without create_graph inside, the product came out 16% off)."""
    x, y = _input(1), _input(1, seed=5)
    full, emulated = _model(), _model(precision=SpectralPrecision(mode, "fp32"))
    directions = [torch.randn(p.shape, generator=torch.Generator().manual_seed(k))
                  for k, p in enumerate(full.parameters())]  # fmt: skip

    def hvp(model: FNO) -> torch.Tensor:
        params = list(model.parameters())
        grads = torch.autograd.grad((model(x) - y).square().mean(), params, create_graph=True)
        inner = sum((g * d).sum() for g, d in zip(grads, directions, strict=True))
        return torch.cat([h.flatten() for h in torch.autograd.grad(inner, params)])

    assert _relative(hvp(emulated), hvp(full)) < 1e-5
    loss = (emulated(x) - y).square().mean()
    loss.backward(retain_graph=True)
    first = [p.grad.clone() for p in emulated.parameters()]
    loss.backward()
    for p, g in zip(emulated.parameters(), first, strict=True):
        assert torch.equal(p.grad, 2 * g)


@pytest.mark.parametrize("mode", ["half", "mixed"])
def test_a_loss_linear_in_the_layer_has_a_zero_hessian(mode: str) -> None:
    """Oracle: calculus. sum(c * layer(v)) is linear in the weights, so its Hessian-vector
    product is 0 (the full mode's first-order gradient is a constant, without a graph); the
    emulated block keeps a graph for its gradient, and its double backward raised on it."""
    layer = _model().spectral[0]
    # the layer's 6 input channels (a 1-channel input had been broadcast over them)
    v, c = _input(1).expand(-1, 6, -1).contiguous(), _input(1, seed=5)
    (g_full,) = torch.autograd.grad(
        (layer(v, SpectralPrecision("full")) * c).sum(), layer.weight, create_graph=True
    )
    assert not g_full.requires_grad
    loss = (layer(v, SpectralPrecision(mode, "fp16")) * c).sum()
    (g,) = torch.autograd.grad(loss, layer.weight, create_graph=True)
    direction = torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(3))
    (h,) = torch.autograd.grad((g * direction).sum(), layer.weight, allow_unused=True)
    assert h is None or torch.count_nonzero(h) == 0


@pytest.mark.parametrize("mode", ["half", "mixed"])
def test_fp16_modes_round_at_fp16_size(mode: str) -> None:
    """Oracle: fp16's unit roundoff u = 2^-11. The spectral output of an fp16 mode differs from
    full precision by more than u/100 (it was rounded) and less than 20 u (a few roundings,
    log2 N = 4 FFT stages, a contraction of 6 terms); its weight gradient likewise, because the
    backward pass is emulated too."""
    u = formats.get("fp16").unit_roundoff
    layer = _model().spectral[0]
    v = _input(1, n=16).expand(3, 6, 16).contiguous() + torch.linspace(0, 1, 6)[:, None]
    v.requires_grad_(True)
    full = layer(v, SpectralPrecision("full"))
    half = layer(v, SpectralPrecision(mode, "fp16"))
    assert u / 100 < _relative(half, full) < 20 * u
    (g_full,) = torch.autograd.grad(full.square().sum(), layer.weight)
    (g_half,) = torch.autograd.grad(half.square().sum(), layer.weight)
    assert u / 100 < _relative(g_half, g_full) < 50 * u
    # Oracle for "the backward pass is emulated": the weight gradient leaves the emulated
    # contraction's backward, so every value is an fp16 value (the float32 one is not).
    assert torch.equal(mperror.round(g_half, "fp16"), g_half)
    assert not torch.equal(mperror.round(g_full, "fp16"), g_full)


def test_mixed_keeps_the_forward_fft_in_float32() -> None:
    """Oracle: the definition of mixed. With bf16 (u = 2^-8) the mixed output is closer to full
    than the half output, whose forward FFT also rounds every stage; and mixed equals the half
    computation applied to the float32 spectrum, which is what the emulated block receives."""
    layer = _model().spectral[0]
    v = _input(1, batch=4, n=32).expand(4, 6, 32).contiguous()
    full = layer(v, SpectralPrecision("full"))
    mixed = layer(v, SpectralPrecision("mixed", "bf16"))
    half = layer(v, SpectralPrecision("half", "bf16"))
    assert _relative(mixed, full) < _relative(half, full)


def test_unstabilised_half_overflows_exactly_when_predicted() -> None:
    """Oracle: fft_overflows (N M > fmt.max) on the FFT's largest input M. A constant input of
    1e5 makes the lifted field large: the 16-point fp16 FFT overflows (inf, counted); tanh
    bounds M by 1, so N M = 16 <= 65504 and nothing overflows."""
    x = torch.full((2, 1, 16), 1e5)
    plain, stable = _model(precision="half"), _model(precision="half+tanh")
    with torch.no_grad():
        plain(x)
        stable(x)
    fp16 = formats.get("fp16")
    # M of the first layer, whose FFT overflowed; the later layers' inputs held its inf and NaN
    # (so the model-wide maximum is NaN: test_input_max_records_a_nan).
    assert fft_overflows(16, plain.spectral[0].input_max, fp16)
    assert math.isnan(plain.spectral_input_max)
    assert plain.overflow_events == 1
    assert stable.spectral_input_max <= 1.0
    assert not fft_overflows(16, stable.spectral_input_max, fp16)
    assert stable.overflow_events == 0
    with torch.no_grad():
        small = _model(precision="half")
        small(_input(1))
    assert not fft_overflows(16, small.spectral_input_max, fp16)
    assert small.overflow_events == 0


def test_contraction_path_and_its_largest_intermediate() -> None:
    """Oracle: opt_einsum's contract_path for the same shapes, and by hand: the naive
    single-step contraction costs more than the optimised path."""
    layer = _model().spectral[0]
    info = layer.contraction(batch=8)
    assert len(info.path) == 2 and info.opt_cost < info.naive_cost
    kept = 5
    sizes = {6 * 6 * kept * 2 * 2, 8 * 6 * kept * 2 * 2, 8 * 6 * kept * 2, 8 * 6 * kept * 2 * 2}
    assert info.largest_intermediate in sizes


def test_schedule() -> None:
    """Oracle: the stage boundaries by hand (25% / 50% / 25%)."""
    s = PrecisionSchedule()
    assert [s.mode_at(f) for f in (0.0, 0.2499, 0.25, 0.7499, 0.75, 1.0)] == [
        "half",
        "half",
        "mixed",
        "mixed",
        "full",
        "full",
    ]
    with pytest.raises(ValueError, match="sum to 1"):
        PrecisionSchedule((("half", 0.5), ("full", 0.25)))
    with pytest.raises(ValueError, match="stages must be"):
        PrecisionSchedule((("quarter", 1.0),))
    with pytest.raises(ValueError, match="fraction"):
        s.mode_at(1.5)
    # a bool share, a str share, a three-part stage: accepted, or torch/Python errors before
    for stages in ((("half", True),), (("half", "1"),), (("half", 0.5, 1), ("full", 0.5))):
        with pytest.raises(ValueError, match="stages must be"):
            PrecisionSchedule(stages)
    for fraction in (True, "0.5"):
        with pytest.raises(ValueError, match="fraction must be a float"):
            s.mode_at(fraction)
    # decimal shares: 0.1 + 0.2 is 0.30000000000000004 in float64, and 3 of 10 steps had
    # counted as the second stage (three steps of it, six of the last, not two and seven)
    decimal = PrecisionSchedule((("half", 0.1), ("mixed", 0.2), ("full", 0.7)))
    steps = [decimal.mode_at(k / 10) for k in range(10)]
    assert steps.count("half") == 1 and steps.count("mixed") == 2 and steps.count("full") == 7


def test_parse_model_precision() -> None:
    p, s = parse("mixed-bf16+tanh")
    assert (p.mode, p.fmt.name, p.tanh, s) == ("mixed", "bf16", True, None)
    assert str(parse("full+tanh")[0]) == "full+tanh"
    assert parse("schedule")[1] == PrecisionSchedule()
    for bad, message in [
        ("half+clip", "only suffix"),
        ("quarter", "MODE"),
        ("full-bf16", "takes no format"),
        ("half-fp17", "fp17"),
        ("half-", "'-' must be followed by a format FMT, one of fp64, fp32"),  # was fp16
        ("mixed-+tanh", "'-' must be followed by a format FMT"),  # was mixed-fp16+tanh
        ("schedule-", "'-' must be followed by a format FMT"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse(bad)
    with pytest.raises(TypeError, match="str"):
        parse(3)


def test_set_precision_and_full_copy() -> None:
    model = _model(precision="half-e4m3fn+tanh")
    assert str(model.precision) == "half-e4m3fn+tanh"
    model.set_mode("mixed")
    assert str(model.precision) == "mixed-e4m3fn+tanh"
    assert str(model.full_precision_().precision) == "full+tanh"
    with pytest.raises(ValueError, match="schedule"):
        model.set_precision("schedule")
    with pytest.raises(TypeError, match="SpectralPrecision"):
        model.set_precision(16)


def test_bad_input() -> None:
    model = _model()
    with pytest.raises(ValueError, match="keeps at most 2 modes"):
        model(torch.zeros(1, 1, 4))  # 4 points keep frequencies 0, 1 < 4/2; the layer has 5
    with pytest.raises(ValueError, match=r"x must be \(batch, 1, \*grid\) with a 1-D grid"):
        model(torch.zeros(1, 16))
    # 3 channels for 1: torch's error had counted the appended grid channel (4 for 2)
    with pytest.raises(ValueError, match="in_channels=1"):
        model(torch.zeros(2, 3, 16))
    with pytest.raises(TypeError, match=r"x must be a real floating tensor, got torch\.int64"):
        model(torch.zeros(2, 1, 16, dtype=torch.int64))  # had run, float32 out
    with pytest.raises(TypeError, match="x must be a real floating tensor, got list"):
        model([[0.0] * 16])
    with pytest.raises(TypeError, match="no FFT for it"):
        model.half()(torch.zeros(1, 1, 16, dtype=torch.float16))
    with pytest.raises(ValueError, match="backend='native' needs CUDA"):
        _model(precision=SpectralPrecision("half", backend="native"))(_input(1))
    for kwargs, message in [
        ({"dim": 3, "modes": (2, 2, 2)}, "dim must be 1 or 2"),
        ({"dim": 1, "modes": (2, 2)}, "modes must hold"),
        ({"dim": 1, "modes": (2,), "width": 0}, "width"),
        ({"dim": 1, "modes": (4.9,)}, "modes must be 1 or 2 positive ints"),
        ({"dim": 1, "modes": (True,)}, "modes must be 1 or 2 positive ints"),
    ]:
        args = {"width": 4, "layers": 1, **kwargs}
        with pytest.raises(ValueError, match=message):
            FNO(**args)
    with pytest.raises(ValueError, match="mode must be one of"):
        SpectralPrecision("quarter")
    layer = SpectralConv(3, 3, (2, 2))
    for batch in (0, -2, 2.5, "4"):  # the reported sizes had been 0, -24, 48, 48
        with pytest.raises((TypeError, ValueError), match="batch must be a positive int"):
            layer.contraction(batch)
    with pytest.raises(TypeError, match="precision must be a SpectralPrecision"):
        layer(torch.zeros(1, 3, 8, 8), "half")
    for shape in ((2, 3, 8), (3, 8, 8), (2, 4, 8, 8)):  # 1-D input, no batch, 4 channels
        with pytest.raises(ValueError, match=r"v must be \(batch, 3 channels, \*grid\)"):
            layer(torch.zeros(shape), SpectralPrecision())
    # numpy and torch integers are integers (operator.index), stored as Python ints
    for m in (np.int64(4), torch.tensor(4)):
        modes = FNO(dim=1, width=4, layers=1, modes=(m,)).spectral[0].modes
        assert modes == (4,) and type(modes[0]) is int


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: SpectralConv(0, 4, (2,)), ValueError, r"channels_in must be a positive int"),
        (lambda: SpectralConv(4, -1, (2,)), ValueError, r"channels_out must be a positive int"),
        (lambda: SpectralConv(2.0, 4, (2,)), TypeError, r"channels_in must be a positive int"),
        (lambda: SpectralConv(4, 4, 2), TypeError, r"modes must be a sequence of 1 or 2"),
        (lambda: _fno(modes=4), TypeError, r"modes must be a sequence of 1 or 2"),
        (lambda: _fno(modes="4"), TypeError, r"modes must be a sequence of 1 or 2"),
        (lambda: _fno(in_channels=-1), ValueError, r"in_channels must be a positive int"),
        (lambda: _fno(in_channels=0), ValueError, r"in_channels must be a positive int"),
        (lambda: _fno(out_channels=0), ValueError, r"out_channels must be a positive int"),
        (lambda: _fno(in_channels=2.5), TypeError, r"in_channels must be a positive int"),
        (lambda: _fno(in_channels=True), TypeError, r"in_channels must be a positive int"),
        (lambda: _fno(width=4.0), TypeError, r"width must be a positive int"),
        (lambda: _fno(layers=0), ValueError, r"layers must be a positive int"),
        (lambda: _fno(dim=True), ValueError, r"dim must be 1 or 2"),
        (lambda: SpectralPrecision("half", tanh="no"), TypeError, r"tanh must be a bool"),
        (lambda: SpectralPrecision("half", tanh=1), TypeError, r"tanh must be a bool"),
    ],
)
def test_bad_arguments_are_refused_by_name(build, error, message) -> None:
    """Oracle: the documented domains (ints >= 1, a sequence of ``dim`` modes, a bool
    stabiliser). Before, these raised ZeroDivisionError, "'int' object is not iterable" or a
    torch "groups" error, or were accepted (zero channels; tanh="no" meaning tanh on)."""
    with pytest.raises(error, match=message):
        build()


def _fno(**kwargs) -> FNO:
    return FNO(**{"dim": 1, "width": 4, "modes": (2,), "layers": 1, **kwargs})


def test_contraction_cost_is_in_flops() -> None:
    """Oracle: the real multiply-adds of the reported path counted by hand (per pairwise step,
    the product of the sizes of every index it involves); opt_einsum counts a multiply and an
    add as two floating-point operations (the docstring had called the cost multiply-adds, half
    the number)."""
    info = SpectralConv(6, 6, (5,)).contraction(batch=8)
    sizes = {"b": 8, "i": 6, "o": 6, "k": 5, "c": 2, "d": 2, "e": 2}
    multiply_adds = sum(
        math.prod(sizes[c] for c in set(step[2].replace(",", "").split("->")[0]))
        for step in info.contraction_list
    )
    assert multiply_adds == 6 * 6 * 5 * 2 * 2 * 2 + 8 * 6 * 6 * 5 * 2 * 2
    assert info.opt_cost == 2 * multiply_adds


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("n", [7, 8])
def test_every_accepted_grid_gives_consistent_super_resolution(dim: int, n: int) -> None:
    """Oracle: a spectral convolution is one operator on functions, so for an input exact on
    both grids (cos and sin of 2 pi k.x, |k_i| <= n/2, on n and 2n points) its output on n
    points equals its output on 2n points at the shared points; checked for every modes the
    n-point grid accepts. Layers keeping the Nyquist frequency n/2 of an even grid were
    accepted and broke it: sin(2 pi 4 x) vanishes on 8 points, not on 16; in 2-D the 8-point
    grid's row -4 stands for the 16-point grid's +4 and -4 (0.65 apart for cos(2 pi (4x + y))
    with modes (4, 3)). Full mode, float32: one wave through one weight |R| <= sqrt(2) gives
    outputs of size <= 1.5 (measured 1.14), a few float32 roundings of which differ by about
    1e-7 (measured 2.4e-7); 1e-5 is 40x that and far below a broken 0.1."""
    shape = (n // 2 + 1,) * dim if dim == 1 else (n // 2 + 1, n // 2 + 1)
    waves = [(k,) for k in range(n // 2 + 1)] if dim == 1 else [
        (k1, k2) for k1 in range(-(n // 2), n // 2 + 1) for k2 in range(n // 2 + 1)
    ]  # fmt: skip

    def inputs(points: int) -> torch.Tensor:
        x = torch.arange(points, dtype=torch.float64) / points
        grid = torch.meshgrid(*(x,) * dim, indexing="ij")
        phase = [
            2 * math.pi * sum(k * g for k, g in zip(wave, grid, strict=True)) for wave in waves
        ]
        return torch.stack([f(p) for p in phase for f in (torch.cos, torch.sin)])[:, None].float()

    coarse_in, fine_in = inputs(n), inputs(2 * n)
    accepted = []
    for modes in np.ndindex(*shape):
        modes = tuple(m + 1 for m in modes)
        layer = SpectralConv(1, 1, modes, generator=torch.Generator().manual_seed(0))
        try:
            with torch.no_grad():
                coarse = layer(coarse_in, SpectralPrecision("full"))
        except ValueError as refused:
            assert "below the Nyquist frequency" in str(refused)
            continue
        with torch.no_grad():
            fine = layer(fine_in, SpectralPrecision("full"))[(...,) + (slice(None, None, 2),) * dim]
        torch.testing.assert_close(coarse, fine, rtol=0, atol=1e-5, msg=f"modes {modes}")
        accepted.append(modes)
    # the largest accepted modes: every frequency below n/2 (first axis of 2-D: -m .. m - 1)
    largest = ((n + 1) // 2,) if dim == 1 else ((n - 1) // 2, (n + 1) // 2)
    assert accepted == [tuple(m + 1 for m in ms) for ms in np.ndindex(*largest)]


def test_input_max_records_a_nan() -> None:
    """Oracle: IEEE 754 maximum semantics as torch.amax implements them: the largest |v| of a set
    holding a NaN is NaN. Python's max(old, nan) returns old, so the recorded value stopped
    updating, and FNO.spectral_input_max depended on the order of the layers."""
    model = _model()
    x = _input(1)
    with torch.no_grad():
        model(x)
        assert math.isfinite(model.spectral_input_max) and model.spectral_input_max > 0
        x[0, 0, 3] = math.nan
        model(x)
        assert all(math.isnan(layer.input_max) for layer in model.spectral)
        assert math.isnan(model.spectral_input_max)
        model(_input(1))  # finite again: the NaN stays recorded
        assert math.isnan(model.spectral_input_max)
    for values in ([math.nan, 1.0], [1.0, math.nan]):
        for layer, value in zip(model.spectral, values, strict=True):
            layer.input_max = value
        assert math.isnan(model.spectral_input_max)


def test_build_leaves_the_global_generator_alone() -> None:
    state = torch.get_rng_state()
    FNO(dim=2, width=4, modes=(2, 2), layers=1)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.gpu
def test_native_half_matches_emulated_half_statistically() -> None:
    """Oracle: the emulated half spectral convolution (CPU model of cuFFT's fp16 arithmetic).
    Native cuFFT and the emulation round differently (cuFFT's radix and twiddles are not the
    staged radix-2 model), so they agree statistically: both within a few u of full precision,
    and within a few u of each other."""
    u = formats.get("fp16").unit_roundoff
    layer = _model().spectral[0].cuda()
    v = _input(1, batch=8, n=64).expand(8, 6, 64).contiguous().cuda()
    full = layer(v, SpectralPrecision("full"))
    native = layer(v, SpectralPrecision("half", backend="native"))
    emulated = layer(v, SpectralPrecision("half", backend="emulated"))
    assert native.dtype == emulated.dtype == torch.float32
    assert native.device.type == "cuda"
    for out in (native, emulated):
        assert u / 100 < _relative(out, full) < 20 * u  # rounded, and by a few u only
    assert _relative(native, emulated) < 40 * u


def test_importing_mperror_needs_no_opt_einsum(tmp_path) -> None:
    """Oracle: a fresh interpreter in which ``import opt_einsum`` fails (a module of that name
    raising ImportError shadows the real one) still imports mperror and rounds; only the FNO's
    contractions need opt_einsum. A GPU machine without network may lack it, and the top-level
    import had made every GPU test fail at collection."""
    (tmp_path / "opt_einsum.py").write_text("raise ImportError('opt_einsum is blocked')\n")
    root = Path(mperror.__file__).resolve().parents[1]
    code = (
        "import torch, mperror; from mperror.models import FNO; "
        "print(mperror.round(torch.tensor([0.1]), 'fp16').item())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.0999755859375"
