"""Operators the emulator hands to :mod:`mperror.ops`: accumulation models and staged FFTs.

Selected by the policy: ``Policy.accumulation`` (a format or an ``mperror.ops.Accumulation``)
routes matrix products and sums, ``Policy.fft_algorithm="staged"`` routes FFTs. Each function
takes the operator's ATen arguments and returns float64 / complex128 values of the policy's
format, before the emulator stores them in the caller's dtype.

Matrix products (``mm``, ``bmm``, ``mv``, ``dot``, ``addmm``, ``baddbmm``, ``addmv``): the
inputs are rounded to the matmul format ``F`` (as autocast casts them); the products are summed
by the accumulation model into its format ``A`` (:func:`mperror.ops.matmul` with output format
``A``); then ``alpha * P + beta * bias`` is rounded once to ``F``: the bias joins in the
accumulator, as a GEMM with ``beta`` does, and the result leaves in ``F``. The products
``alpha * P`` and ``beta * bias`` are float64 (exact for powers of two such as 1), their sum
exact until the one rounding (round to odd at 53 bits first, which a format of at most 51 bits
then rounds as it would the exact sum). Complex products run as four real ones,
``(ArBr - AiBi) + i (ArBi + AiBr)``, each accumulated by the model, combined in the same way
and rounded once (how half-precision complex contractions run as real einsums); a complex bias
then adds to that combination as rounded to odd: two roundings to odd where the combination was
inexact, which can leave a directed rounding one unit of ``F`` off (the exact three-term sum
is not formed).

Sums and means (``sum``, ``mean``): the inputs, not rounded to ``F`` first (as without a
model), summed by the model into ``A`` (:func:`mperror.ops.sum` with output format fp64; its
accumulator holds values of ``A``: in recursive order the first term enters it rounded to
``A``, each later one exactly, and every partial sum is rounded to ``A``), then ``S`` (or
``S / n``) rounded once to ``F``. Complex inputs: real and imaginary parts separately.

FFTs (``_fft_r2c``, ``_fft_c2c``, ``_fft_c2r``, which every ``torch.fft`` function runs as):
the staged radix-2 transforms of :mod:`mperror.ops.fourier`, every butterfly stage rounded to
the FFT format, one dimension after another, unnormalised; then the normalisation factor
(``1/N`` or ``1/sqrt(N)`` of the whole size, in float64, not rounded to ``F``) multiplies the
result, which is rounded once more, after the transform as cuFFT does (so an unnormalised
intermediate beyond ``F.max`` overflows, whatever ``norm`` says). Inputs that are not values of
``F`` are rounded to it to nearest even, as :func:`mperror.ops.fft` rounds its input, whatever
the policy's mode (a padding operator before the transform rounds with the mode).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

import mperror.ops
import mperror.rounding
from mperror.formats import FP64, FloatFormat, _holds
from mperror.ops import Accumulation, _common
from mperror.rounding import RoundMode

__all__ = ["MATMULS", "REDUCTIONS", "TRANSFORMS", "accumulation_model"]

#: ATen operators whose products follow the policy's accumulation model.
MATMULS = ("mm", "bmm", "mv", "dot", "addmm", "baddbmm", "addmv")
#: ATen reductions that follow it.
REDUCTIONS = ("sum", "mean")
#: ATen FFT operators that the staged transforms replace.
TRANSFORMS = ("_fft_r2c", "_fft_c2c", "_fft_c2r")


def accumulation_model(accumulation: object, fmt: FloatFormat) -> Accumulation:
    """The policy's accumulation as an Accumulation whose format is explicit (for ``fmt``)."""
    model = (
        accumulation if isinstance(accumulation, Accumulation) else Accumulation(fmt=accumulation)
    )
    return dataclasses.replace(model, fmt=model.format_for(fmt))


def _ops_format(model: Accumulation, fmt: FloatFormat) -> FloatFormat:
    """The output format to hand mperror.ops.matmul, which rounds operands to it first: the
    accumulation format ``A`` where ``A`` holds every value of ``fmt`` (the operands, values
    of ``fmt``, pass unchanged and the accumulated value comes back unrounded), else ``fmt``
    itself (rounding the operands to a narrower ``A`` first would be a rounding the model
    does not make; the accumulated value then comes back rounded to ``fmt``)."""
    return model.fmt if _holds(model.fmt, fmt) else fmt


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.complex128 if t.is_complex() else torch.float64).resolve_conj()


def _real_product(
    a: torch.Tensor, b: torch.Tensor, model: Accumulation, out: FloatFormat, mode, generator
) -> torch.Tensor:
    """``a @ b`` (2-D or batched, float64 values of F) accumulated into the model's format
    (``out``: see :func:`_ops_format`)."""
    return mperror.ops.matmul(a, b, out, accumulate=model, mode=mode, generator=generator)


def _product(a, b, model, out, mode, generator, fmt: FloatFormat) -> torch.Tensor:
    if not (a.is_complex() or b.is_complex()):
        return _real_product(a, b, model, out, mode, generator)
    a, b = a.to(torch.complex128), b.to(torch.complex128)

    def prod(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _real_product(x.contiguous(), y.contiguous(), model, out, mode, generator)

    real = _to_odd_sum(prod(a.real, b.real), -prod(a.imag, b.imag), mode, fmt)
    imag = _to_odd_sum(prod(a.real, b.imag), prod(a.imag, b.real), mode, fmt)
    return torch.complex(real, imag)


def _to_odd_sum(
    x: torch.Tensor, y: torch.Tensor, mode: RoundMode, fmt: FloatFormat
) -> torch.Tensor:
    """``x + y`` (float64, or complex128 by parts) rounded to odd at 53 bits, which the caller's
    one rounding to ``fmt`` (at most 51 bits) turns into the exact sum's rounding in every mode
    (a float64 sum rounded to nearest first would lose a term more than 2**53 below the other
    before a directed rounding saw it); exact zero sums signed as ``mode`` says. For a wider
    ``fmt`` (fp64) the float64 sum itself."""
    if fmt.precision > 51:
        return x + y
    if x.is_complex() or y.is_complex():
        x, y = x.to(torch.complex128), y.to(torch.complex128)
        parts = (_to_odd_sum(x.real, y.real, mode, fmt), _to_odd_sum(x.imag, y.imag, mode, fmt))
        return torch.complex(*parts)
    x, y = torch.broadcast_tensors(x, y)
    odd, exact = _common.two_sum_to_odd(x, y)
    return _common.signed_zero_sum(x, y, odd, exact, mode)


def matmul(
    name: str,
    args: tuple,
    kwargs: dict,
    fmt: FloatFormat,
    accumulation: object,
    mode: RoundMode,
    generator: torch.Generator | None,
    round_input: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The unrounded (float64) ``alpha * P + beta * bias`` of a matmul-class operator, ``P``
    accumulated by the model; the caller rounds it to ``fmt`` once."""
    model = accumulation_model(accumulation, fmt)
    out = _ops_format(model, fmt)
    operands = [_wide(round_input(t)) if isinstance(t, torch.Tensor) else t for t in args]
    beta = kwargs.get("beta", 1)
    alpha = kwargs.get("alpha", 1)

    def product_of(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _product(a, b, model, out, mode, generator, fmt)

    if name in ("mm", "bmm"):
        return product_of(operands[0], operands[1])
    if name == "mv":
        return product_of(operands[0], operands[1][:, None])[:, 0]
    if name == "dot":
        return product_of(operands[0][None, :], operands[1][:, None])[0, 0]
    bias, a, b = operands[0], operands[1], operands[2]
    if name == "addmv":
        product = product_of(a, b[:, None])[:, 0]
    else:  # addmm, baddbmm
        product = product_of(a, b)
    if beta == 0:  # torch ignores the bias then, NaN included
        return alpha * product
    if alpha == 0 and name in ("addmm", "addmv"):  # and the product (baddbmm keeps 0 * inf)
        return beta * bias
    return _to_odd_sum(alpha * product, beta * bias, mode, fmt)


def reduction(
    name: str,
    args: tuple,
    kwargs: dict,
    fmt: FloatFormat,
    accumulation: object,
    mode: RoundMode,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The float64 sum (or mean) of a ``sum`` / ``mean`` operator accumulated by the model; the
    caller rounds it to ``fmt`` once. The operand is not rounded to ``fmt`` first (a
    reduction's inputs are not, with a model or without one); the model's accumulator holds
    values of its own format (see the module docstring)."""
    model = accumulation_model(accumulation, fmt)
    x = _wide(args[0])
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if dim is not None and len(dim) == 0:
        dim = None  # torch: an empty dim list reduces everything
    dims = None if dim is None else list(dim)

    def total(values: torch.Tensor) -> torch.Tensor:
        return mperror.ops.sum(
            values,
            FP64,  # operands kept as they are; the partial sums rounded to the model's format
            dim=dims,
            keepdim=keepdim,
            accumulate=model,
            mode=mode,
            generator=generator,
        )

    s = torch.complex(total(x.real), total(x.imag)) if x.is_complex() else total(x)
    if name == "mean":
        # a 0-d tensor takes dim 0 or -1 and holds one value
        count = math.prod(x.shape[d] for d in dims) if dims is not None and x.dim() else x.numel()
        return s / count
    return s


def _scale(
    z: torch.Tensor, factor: float, fmt: FloatFormat, mode: RoundMode, generator
) -> torch.Tensor:
    """``fl(z * factor)``, the product in float64 (ops' convention: the factor is not rounded to
    ``fmt``, where ``1/N`` may underflow)."""
    if factor == 1.0:
        return z
    return mperror.rounding.round(_wide(z) * factor, fmt, mode, generator=generator)


def transform(
    name: str,
    args: tuple,
    fmt: FloatFormat,
    mode: RoundMode,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """A torch FFT operator as staged transforms in ``fmt``; float64 / complex128 values."""
    x = _wide(args[0])
    dims = [d % x.dim() for d in args[1]]
    normalization = args[2]
    options = {"mode": mode, "generator": generator}
    if name == "_fft_r2c":
        onesided = args[3]
        sizes = [x.shape[d] for d in dims]
        first = mperror.ops.rfft if onesided else mperror.ops.fft
        z = first(x, fmt, dim=dims[-1], norm="backward", **options)
        for d in reversed(dims[:-1]):
            z = mperror.ops.fft(z, fmt, dim=d, norm="backward", **options)
    elif name == "_fft_c2c":
        forward = args[3]
        sizes = [x.shape[d] for d in dims]
        step = mperror.ops.fft if forward else mperror.ops.ifft
        unnormalised = "backward" if forward else "forward"
        z = x
        for d in reversed(dims):
            z = step(z, fmt, dim=d, norm=unnormalised, **options)
    else:  # _fft_c2r
        last = args[3]
        sizes = [x.shape[d] for d in dims[:-1]] + [last]
        z = x
        for d in reversed(dims[:-1]):
            z = mperror.ops.ifft(z, fmt, dim=d, norm="forward", **options)
        z = mperror.ops.irfft(z, fmt, n=last, dim=dims[-1], norm="forward", **options)
    n = math.prod(sizes)
    factor = (1.0, 1 / math.sqrt(n), 1 / n)[normalization]
    return _scale(_wide(z), factor, fmt, mode, generator)
