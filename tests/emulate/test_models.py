"""Unmodified models under emulation: an FNO spectral convolution written the common way
(rfft2, slice-assignment into a preallocated zero spectrum, irfft2) and a PINN MLP whose loss
takes second derivatives with ``torch.autograd.grad(create_graph=True)``; attention (torch's
own, and its layers in eval mode), with the switches the emulator turns off while a block is open.
"""

from __future__ import annotations

import copy

import pytest
import torch

import mperror
from mperror import emulate, formats


class SpectralConv2d(torch.nn.Module):
    """A Fourier layer as FNO code commonly writes it: keep the lowest modes of rfft2, mix
    channels with complex weights, write them into a zero spectrum through slices."""

    def __init__(self, cin: int, cout: int, modes1: int, modes2: int) -> None:
        super().__init__()
        self.cout, self.modes1, self.modes2 = cout, modes1, modes2
        scale = 1 / (cin * cout)
        shape = (cin, cout, modes1, modes2)
        self.w1 = torch.nn.Parameter(scale * torch.rand(shape, dtype=torch.cfloat))
        self.w2 = torch.nn.Parameter(scale * torch.rand(shape, dtype=torch.cfloat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m1, m2 = self.modes1, self.modes2
        x_ft = torch.fft.rfft2(x)
        out_ft = torch.zeros(
            x.shape[0], self.cout, x.size(-2), x.size(-1) // 2 + 1, dtype=x_ft.dtype
        )
        out_ft[:, :, :m1, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m1, :m2], self.w1)
        out_ft[:, :, -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m1:, :m2], self.w2)
        return torch.fft.irfft2(out_ft, s=(x.size(-2), x.size(-1)))


def spectral_conv_by_hand(layer: SpectralConv2d, x: torch.Tensor, fmt) -> torch.Tensor:
    """The emulator's arithmetic written out: each ATen operator the layer runs (_fft_r2c, bmm
    inside einsum with inputs rounded first, copy_ into the spectrum, _fft_c2r) computed in
    float64/complex128 and rounded once with mperror.round."""

    def r(t: torch.Tensor) -> torch.Tensor:
        return mperror.round(t, fmt)

    m1, m2 = layer.modes1, layer.modes2
    x_ft = r(torch.fft.rfft2(x.double()))
    w1, w2 = (r(w.detach().to(torch.complex128)) for w in (layer.w1, layer.w2))
    out_ft = torch.zeros(
        x.shape[0], layer.cout, x.size(-2), x.size(-1) // 2 + 1, dtype=torch.complex128
    )
    out_ft[:, :, :m1, :m2] = r(torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m1, :m2], w1))
    out_ft[:, :, -m1:, :m2] = r(torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m1:, :m2], w2))
    return r(torch.fft.irfft2(out_ft, s=(x.size(-2), x.size(-1)))).float()


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_fno_spectral_convolution_matches_the_hand_emulation(name: str) -> None:
    """Oracle: the same layer with every operator computed in float64 and rounded once by hand.
    A copy-returning emulator (one that replaced the slices of out_ft by rounded copies) would
    leave out_ft zero and the output zero."""
    torch.manual_seed(1)
    layer = SpectralConv2d(3, 4, 4, 3)
    x = torch.randn(2, 3, 16, 16)
    with emulate(name) as em:
        y = layer(x)
    expected = spectral_conv_by_hand(layer, x, name)
    assert y.dtype == torch.float32
    assert y.abs().max() > 0
    assert torch.equal(y, expected)
    ops = em.report().ops
    assert ops["aten.copy_.default"] == 2 and ops["aten._fft_c2r.default"] == 1


def test_fno_backward_runs_in_the_format() -> None:
    """Gradients of the complex weights come from emulated backward operators (an rfft and two
    bmm per weight): every gradient is a pair of fp16 values (oracle: is_representable), and
    within a few fp16 roundings of the float64 gradient (oracle: the same layer in float64;
    a few operations each rounded to u = 2**-11, so 30 u is a loose but failing bound)."""
    torch.manual_seed(2)
    layer = SpectralConv2d(2, 2, 3, 3)
    x = torch.randn(1, 2, 8, 8)
    exact = copy.deepcopy(layer)
    for name in ("w1", "w2"):  # (Module.to(complex128) warns that complex modules are new)
        wide = getattr(layer, name).detach().to(torch.complex128)
        setattr(exact, name, torch.nn.Parameter(wide))
    exact(x.double()).square().mean().backward()
    with emulate("fp16") as em:
        layer(x).square().mean().backward()
    fp16 = formats.FP16
    for w, w64 in ((layer.w1, exact.w1), (layer.w2, exact.w2)):
        assert w.grad is not None and w.grad.dtype == torch.cfloat
        assert fp16.is_representable(torch.view_as_real(w.grad)).all()
        error = float((w.grad.to(torch.complex128) - w64.grad).abs().max())
        assert 0 < error <= 30 * fp16.unit_roundoff * float(w64.grad.abs().max())
    assert em.report().ops["aten._fft_r2c.default"] >= 2  # forward and irfft2's backward


def pinn_mlp(width: int = 16) -> torch.nn.Module:
    torch.manual_seed(3)
    return torch.nn.Sequential(
        torch.nn.Linear(2, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, 1),
    )


def pinn_loss_and_grads(model: torch.nn.Module, points: torch.Tensor):
    """A Burgers-type residual u_t + u u_x - 0.1 u_xx: second derivatives through
    autograd.grad(create_graph=True), then the gradient of the loss (double backward)."""
    x = points.clone().requires_grad_(True)
    u = model(x)
    (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    u_x, u_t = du[:, 0], du[:, 1]
    (d2u,) = torch.autograd.grad(u_x.sum(), x, create_graph=True)
    residual = u_t + u[:, 0] * u_x - 0.1 * d2u[:, 0]
    loss = (residual**2).mean()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return loss, grads


@pytest.mark.parametrize("name", ["fp32", "fp16", "bf16"])
def test_pinn_second_derivatives_under_emulation(name: str) -> None:
    """Oracles: (1) every gradient is a value of the format (is_representable): the backward
    and double-backward operators went through the emulator; (2) the float64 computation of the
    same model: the loss and every gradient agree to 10 u relative (normwise). A few dozen
    roundings of relative size u lie on each path and their errors mostly cancel; the measured
    ratio is 1 to 4 u for all three formats, whose u spans 2**-24 to 2**-8. Skipped roundings
    would show as a much smaller error for bf16, corrupted values as a much larger one."""
    fmt = formats.get(name)
    model = pinn_mlp()
    points = torch.rand(64, 2, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with emulate(fmt) as em:
        loss, grads = pinn_loss_and_grads(model, points)
    ref_loss, ref_grads = pinn_loss_and_grads(copy.deepcopy(model).double(), points.double())
    u = fmt.unit_roundoff
    assert abs(loss.item() - ref_loss.item()) <= 10 * u * abs(ref_loss.item())
    for g, ref in zip(grads, ref_grads, strict=True):
        assert g.dtype == torch.float32
        assert fmt.is_representable(g).all()
        assert (g.double() - ref).norm() <= 10 * u * ref.norm()
    ops = em.report().ops
    assert ops["aten.tanh_backward.default"] > 0 and ops["aten.mm.default"] > 0


def test_pinn_under_a_format_that_changes_nothing_is_bit_identical() -> None:
    """Oracle: the native float64 run. Under pure(fp64) on a float64 model every rounding is the
    identity, so any difference would come from the emulator's plumbing (aliasing, in-place
    writes, dtypes) through forward, backward and double backward."""
    model = pinn_mlp().double()
    points = torch.rand(32, 2, dtype=torch.float64) * 2 - 1
    ref_loss, ref_grads = pinn_loss_and_grads(model, points)
    with emulate("fp64"):
        loss, grads = pinn_loss_and_grads(model, points)
    assert loss.item() == ref_loss.item()
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads, strict=True))


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_pinn_laplacian_through_torch_func_under_emulation(name: str) -> None:
    """torch.func's Laplacian (vmap of hessian, forward over reverse mode; the PINN codes that
    use functorch write it so). Oracles: (1) every value is one of the format; (2) the float64
    computation of the same model agrees to 10 u relative (normwise), as the autograd PINN test
    above; (3) the per-point evaluation (a loop over row views, no vmap) gives the same bits: a
    point's result does not depend on its batch. torch.func runs primitives on meta tensors and
    builds tangents with the primal's memory layout, both of which the emulator must leave be."""
    from torch.func import functional_call, hessian, vmap

    fmt = formats.get(name)
    model = pinn_mlp()
    points = torch.rand(16, 2, generator=torch.Generator().manual_seed(5)) * 2 - 1

    def laplacian(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        params = dict(net.named_parameters())

        def u(p: dict, xi: torch.Tensor) -> torch.Tensor:
            return functional_call(net, p, (xi,)).squeeze()

        return vmap(lambda xi: torch.trace(hessian(u, argnums=1)(params, xi)))(x)

    with emulate(fmt):
        batched = laplacian(model, points)
        single = torch.stack(
            [torch.trace(torch.func.hessian(model)(xi).squeeze()) for xi in points]
        )
    reference = laplacian(copy.deepcopy(model).double(), points.double())
    assert fmt.is_representable(batched).all()
    assert (
        batched.detach().double() - reference
    ).norm() <= 10 * fmt.unit_roundoff * reference.norm()
    assert torch.equal(batched, single)


def _attention_step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor):
    """Scaled dot-product attention (torch's own), its output and the gradients of a loss."""
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    grads = torch.autograd.grad((out * out).sum(), (q, k, v))
    return out.detach(), grads


def _attention_inputs(device: str = "cpu") -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(11)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    mask = torch.rand(5, 5, generator=g) > 0.2
    mask.fill_diagonal_(True)  # every query sees at least itself
    return tuple(t.to(device) for t in (q, k, v, mask))


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_attention_is_emulated_operator_by_operator(name: str) -> None:
    """scaled_dot_product_attention under emulation, forward and backward. Oracles: (1) the
    report: the products and the softmax were emulated as such, and no fused attention kernel
    (which has no float64 version on a GPU) reached the emulator; (2) every value is one of the
    format; (3) the float64 computation agrees to 10 u relative (normwise), as for the PINN
    above (a handful of roundings on each path); (4) torch's attention switches read as before
    the block, after it and after an exception inside it."""
    fmt = formats.get(name)
    q, k, v, mask = _attention_inputs()
    before = _attention_switches()
    with emulate(fmt) as em:
        out, grads = _attention_step(q, k, v, mask)
    ref_out, ref_grads = _attention_step(q.double(), k.double(), v.double(), mask)
    ops = em.report().ops
    assert ops["aten.bmm.default"] > 0
    assert any("softmax" in op for op in ops)
    assert not [op for op in ops if "attention" in op]
    u = fmt.unit_roundoff
    for got, ref in zip((out, *grads), (ref_out, *ref_grads), strict=True):
        assert got.dtype == torch.float32
        assert fmt.is_representable(got).all()
        assert (got.double() - ref).norm() <= 10 * u * ref.norm()
    assert _attention_switches() == before
    with pytest.raises(RuntimeError, match="inside"), emulate(fmt):
        raise RuntimeError("inside")
    assert _attention_switches() == before


@pytest.mark.gpu
def test_attention_on_cuda_matches_the_cpu_emulation() -> None:
    """Oracle: the CPU emulation of the same inputs, bit for bit. Each operator is computed in
    float64 on both devices (summation orders differ, by a few float64 units in the last place)
    and rounded once to fp16, so a result differs only where a float64 value falls within those
    few units of an fp16 rounding boundary: probability about 2**-40 per value. Without the
    math backend, CUDA's fused attention kernels would be asked for float64 and refuse."""
    on_cpu, on_gpu = _attention_inputs(), _attention_inputs("cuda")
    with emulate("fp16"):
        out, grads = _attention_step(*on_cpu)
        out_gpu, grads_gpu = _attention_step(*on_gpu)
    for got, ref in zip((out_gpu, *grads_gpu), (out, *grads), strict=True):
        assert torch.equal(got.cpu(), ref)


@pytest.mark.gpu
def test_autocast_emulation_follows_cuda_autocast() -> None:
    """Oracle: torch.autocast("cuda", float16) itself, on a model whose operators span its
    lists (linear and matmul lowered; exp, softmax, layer norm, sum and the loss in float32;
    tanh, mul, add on neither): the dtype of every intermediate, of the loss and of every
    gradient is the same under emulate(autocast("fp16")) on the GPU, and the first layer's
    half result is within one fp16 spacing of CUDA's (both round the same product sum once;
    CUDA's accumulates in float32). Later values are not compared: a one-spacing difference
    inside tanh (CUDA's rounds in float32 first) moves everything after it."""

    def run(context):
        torch.manual_seed(0)
        first, second = torch.nn.Linear(8, 16), torch.nn.Linear(16, 4)
        norm = torch.nn.LayerNorm(16)
        first, second, norm = first.cuda(), second.cuda(), norm.cuda()
        x, bias = torch.randn(32, 8, device="cuda"), torch.randn(4, device="cuda")
        with context:
            h = first(x)
            a = torch.tanh(h) * 0.5 + h
            n = norm(a)
            out = second(n)
            y = out + bias
            p = torch.softmax(out, -1)
            e = torch.exp(out)
            g = out @ out.T
            loss = torch.nn.functional.mse_loss(y, torch.zeros_like(y)) + p.sum() + e.sum()
            loss = loss + g.sum()
            loss.backward()
        grads = [t.grad for m in (first, second, norm) for t in m.parameters()]
        results = (h, a, n, out, y, p, e, g, loss)
        return [t.dtype for t in (*results, *grads)], results

    native_dtypes, native = run(torch.autocast("cuda", dtype=torch.float16))
    dtypes, emulated = run(emulate(mperror.emulate.autocast("fp16")))
    assert dtypes == native_dtypes
    assert dtypes[0] == torch.float16 and dtypes[4] == torch.float32  # h; out + float32 bias
    h, ref = emulated[0].float(), native[0].float()
    spacing = torch.clamp(ref.abs(), min=2.0**-14) * 2.0**-10
    assert torch.all((h - ref).abs() <= spacing)


def _attention_switches() -> tuple[bool, ...]:
    cuda = torch.backends.cuda
    return (
        cuda.flash_sdp_enabled(),
        cuda.mem_efficient_sdp_enabled(),
        cuda.cudnn_sdp_enabled(),
        cuda.math_sdp_enabled(),
        torch.backends.mha.get_fastpath_enabled(),
    )


def test_attention_switches_survive_blocks_on_two_threads() -> None:
    """Oracle: the switches as read before. Two threads open blocks and close them in the
    order they opened them (the first closes first); saving and restoring per block had left
    the fused kernels off for the whole process."""
    import threading

    before = _attention_switches()
    opened = [threading.Event(), threading.Event()]
    close = [threading.Event(), threading.Event()]
    inside: list[tuple[bool, ...]] = []

    def block(k: int) -> None:
        with emulate("bf16"):
            opened[k].set()
            inside.append(_attention_switches())
            close[k].wait(10)

    threads = [threading.Thread(target=block, args=(k,)) for k in (0, 1)]
    threads[0].start()
    opened[0].wait(10)
    threads[1].start()
    opened[1].wait(10)
    close[0].set()
    threads[0].join(10)
    assert _attention_switches() == inside[0]  # one block still open: still off
    close[1].set()
    threads[1].join(10)
    assert inside == [(False, False, False, True, False)] * 2
    assert _attention_switches() == before


@pytest.mark.parametrize("layer", ["mha", "encoder"])
def test_eval_attention_layers_are_emulated_operator_by_operator(layer: str) -> None:
    """Oracle: the same layer with autograd on, where torch never takes its fast path. In eval
    mode without autograd, nn.MultiheadAttention and nn.TransformerEncoderLayer run as one
    fused operator, which was rounded once at its end (and had no class)."""
    torch.manual_seed(0)
    if layer == "mha":
        module = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()

        def run(x: torch.Tensor) -> torch.Tensor:
            return module(x, x, x, need_weights=False)[0]
    else:
        module = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        module.eval()

        def run(x: torch.Tensor) -> torch.Tensor:
            return module(x)

    x = torch.randn(2, 5, 8)
    with emulate("bf16") as em:
        want = run(x)
        with torch.no_grad():
            got = run(x)
    assert torch.equal(got, want.detach())
    assert em.report().unclassified == ()
