"""Staged FFTs in a low-precision format: every butterfly stage rounded, as a half FFT stores it.

Model (power-of-two sizes ``N = 2**t``): radix-2 decimation-in-time Cooley-Tukey. The input is
rounded to ``fmt`` (real and imaginary parts, round to nearest even) and put in bit-reversed
order (exact); then ``t`` stages each compute every butterfly of the stage,

    ``y_top = a + w b``,  ``y_bottom = a - w b``

in float64 complex arithmetic from ``fmt`` values (the products are exact for ``p <= 26``, so the
float64 evaluation errs by at most two float64 roundings, about ``2**-52`` relative) and round
the whole stage's output to ``fmt`` with ``mode`` (real and imaginary parts separately). The
rounding is of the float64 value, not of the exact butterfly: in a format whose values span
more than float64's 53 bits (bf16, tf32, fp32; not fp16 or the FP8 formats) a term more than
``2**53`` below another is lost first, so a directed or odd rounding can be one unit off the
correctly rounded butterfly, and a nearest one can double-round. The
twiddle factors ``w = exp(∓2πi j/N)`` are computed in float64 (angles reduced exactly to
``[0, π/4]`` by symmetry) and rounded to ``fmt`` once, to nearest even, as a library stores its
tables; they are cached per ``(N, fmt, device, direction)``.

Normalisation: torch's ``norm`` (``"backward"``: none on the forward transform, ``1/N`` on the
inverse; ``"forward"``: the reverse; ``"ortho"``: ``1/sqrt(N)`` both ways). By default it is
applied *after* the unnormalised transform, as torch does with cuFFT's half transforms: the
result times the factor is rounded to ``fmt`` once (the factor is not itself rounded to ``fmt``:
torch scales a half transform in float32 arithmetic, and ``1/N`` may lie below the format's
range, e.g. ``2**-10`` in e4m3fn; the product is evaluated in float64, exactly when the factor
is a power of two, as ``1/N`` is for power-of-two sizes). So the model overflows, as a real half
FFT does, whenever an intermediate exceeds ``fmt.max``, e.g. for a constant input ``v`` with
``N |v| > 65504`` in fp16, whatever ``norm`` says. ``scale_first=True`` multiplies the input by
the factor (and rounds) before the transform instead, which avoids that overflow.

Other sizes use Bluestein's chirp-z algorithm, every step in ``fmt``: with the chirp ``d_m =
exp(±πi m²/N)`` (float64, rounded to ``fmt`` once), ``a = fl(x · conj(d))``, zero-padded to ``M``,
the least power of two ``>= 2N - 1``; ``A`` = the staged transform of ``a``; ``P = fl(A · B)`` with
``B = fl(DFT_M(b) / M)`` precomputed in float64 and rounded once (``b`` the chirp wrapped around;
the float64 DFT's error, about ``1e-16 max|B|``, stays where an exact entry is 0 and the format
reaches that far, as bf16 and fp32 do); ``q`` = the staged unnormalised inverse of ``P``; ``X =
fl(q[:N] · conj(d))``. No half FFT library supports these sizes (cuFFT's half FFT needs powers of
two), so this is a model of the arithmetic only. Its intermediates are not the radix-2 transform's:
the overflow threshold above (``N |v| > 65504`` for a constant input in fp16) is exact for powers
of two only, and a Bluestein size may overflow just below it (N = 100, ``v = 655``: the rounding
errors of the chirp products carry an intermediate past 65520).

``rfft`` is the complex transform of the real input, first ``N//2 + 1`` bins. ``irfft`` extends
its input to the full Hermitian spectrum (imaginary parts of the zero and Nyquist bins dropped, as
torch does), runs the staged inverse transform and returns the real part, then scales. ``fftn``
runs the unnormalised 1-D transforms along each dimension in turn and scales once, by the
factor of the whole size ``N = ∏ n_i`` (``1/N`` or ``1/sqrt(N)`` in float64).

Accuracy (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., Thm 24.2): for the
radix-2 transform, ``||ŷ - y||_2 / ||y||_2 <= t η / (1 - t η)`` with ``η = μ + γ_4 (√2 + μ)``, ``μ``
the twiddle error, ``t = log2 N``. This model's stage error (one rounding per component of the
exact butterfly with rounded twiddles, ``<= √2 (μ + u (1 + μ))`` times the stage's norm) is within
the theorem's per-stage allowance ``√2 η``, so the bound holds here, up to the float64 evaluation.

Non-finite values propagate as torch's complex128 arithmetic gives them, so an overflow shows
as ``inf`` or NaN (a product with an infinite part can come out NaN in both parts, where the
textbook product keeps an ``inf``). ``fmt = fp64`` is plain float64 arithmetic (round to nearest
only). Outputs are complex64 for float16/bfloat16/float32/complex64 inputs and complex128 for
float64/complex128 (irfft: float32 or float64), which must hold ``fmt``. No autograd graph.
"""

from __future__ import annotations

import builtins
import functools
import math
import operator
from collections.abc import Sequence

import torch

from mperror import rounding
from mperror._checks import is_integer
from mperror.formats import FloatFormat, FormatLike
from mperror.ops import _common
from mperror.rounding import RoundMode, explicit

__all__ = ["fft", "fftn", "ifft", "irfft", "rfft"]

NORMS = (None, "backward", "forward", "ortho")
_COMPLEX_DTYPES = (torch.complex64, torch.complex128)


class _Setting:
    """The checked arguments shared by every transform of one call."""

    def __init__(
        self,
        fmt: FormatLike,
        norm: str | None,
        mode: RoundMode | str,
        generator: torch.Generator | None,
        scale_first: bool,
    ) -> None:
        self.fmt = _common.parse_format(fmt)
        self.mode = _common.parse_mode(mode)
        if _common.is_fp64(self.fmt) and self.mode is not RoundMode.NEAREST_EVEN:
            raise ValueError(
                "fmt fp64 is emulated by native float64 arithmetic, which rounds to nearest "
                f"even; got mode {self.mode.value!r}"
            )
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(map(repr, NORMS))}; got {norm!r}")
        if not isinstance(scale_first, bool):
            raise TypeError(f"scale_first must be a bool, got {type(scale_first).__name__}")
        self.norm = norm or "backward"
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        self.generator = generator
        self.scale_first = scale_first
        self.via_float32 = _common.dtype_holds(torch.float32, self.fmt)
        # Deterministic modes of formats float32 holds with bits to spare: one rounding to
        # odd float32, then float32's kernel (a native cast for nearest even to fp16, bf16, ...)
        self.odd_detour = self.via_float32 and rounding._float32_detour_is_exact(
            self.fmt, self.mode
        )

    def round(self, z: torch.Tensor) -> torch.Tensor:
        """Round float64 or complex128 ``z`` to ``fmt`` by ``mode``.

        Where float32 holds ``fmt`` the result is stored as float32 (complex64): the next
        stage's float64 arithmetic reads it exactly, at half the memory traffic. Deterministic
        modes go through a round-to-odd float32 (exact: the argument of
        :func:`mperror.rounding._float32_detour_is_exact`), which needs no inspection of the
        values: about twice as fast as casting to float32 and repairing the double-rounding
        midpoints. Stochastic modes round the elements that float32 represents exactly (about 3
        in 4 butterfly results in fp16) from float32, which :func:`mperror.round` does several
        times faster, and the others from float64. Same values, less time.
        """
        if not self.via_float32:
            return _common.round_to(z, self.fmt, self.mode, self.generator)
        parts = torch.view_as_real(z) if z.is_complex() else z
        wide = parts.reshape(-1)
        if self.odd_detour:
            # float64 in, float32 out: mperror.round takes the round-to-odd detour itself
            rounded = rounding.round(wide, self.fmt, self.mode, dtype=torch.float32)
        else:
            narrow = wide.to(torch.float32)
            inexact = torch.ne(narrow, wide).nonzero().squeeze(1)  # NaN and overflow included
            rounded = _common.round_to(narrow, self.fmt, self.mode, self.generator)
            if inexact.numel():
                exact = _common.round_to(wide[inexact], self.fmt, self.mode, self.generator)
                rounded[inexact] = exact.to(torch.float32)
        rounded = rounded.view(parts.shape)
        return torch.view_as_complex(rounded) if z.is_complex() else rounded

    def factor(self, n: int, inverse: bool) -> float:
        """The normalisation factor of a transform of ``n`` points (torch's convention)."""
        if self.norm == "ortho":
            return 1 / math.sqrt(n)
        scaled = "backward" if inverse else "forward"
        return 1 / n if self.norm == scaled else 1.0

    def scale(self, z: torch.Tensor, factor: float) -> torch.Tensor:
        """``fl(z · factor)``, the product evaluated in float64 (module docstring)."""
        if factor == 1.0:
            return z
        wide = z.to(torch.complex128 if z.is_complex() else torch.float64)
        return self.round(wide * factor)


# -- inputs and outputs ----------------------------------------------------------------------


def _check_input(x: object, *, real_only: bool = False) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    allowed = _common.REAL_DTYPES + (() if real_only else _COMPLEX_DTYPES)
    if x.dtype not in allowed:
        kinds = "a real" if real_only else "a real or complex"
        raise TypeError(f"x must be {kinds} floating-point tensor, got {x.dtype}")
    return x.detach()


def _component_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for float64/complex128 inputs, float32 otherwise (as torch.fft promotes)."""
    return torch.float64 if x.dtype in (torch.float64, torch.complex128) else torch.float32


def _complex_dtype(real: torch.dtype) -> torch.dtype:
    return torch.complex128 if real == torch.float64 else torch.complex64


def _to_fmt(x: torch.Tensor, setting: _Setting) -> torch.Tensor:
    """``x`` as complex128 with both parts rounded to ``fmt`` (nearest even)."""
    z = x.to(torch.complex128)
    return _common.round_to(z, setting.fmt, RoundMode.NEAREST_EVEN, None)


def _resize(z: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """Trim or zero-pad ``z`` to length ``n`` along ``dim``, as torch.fft does."""
    length = z.shape[dim]
    if n == length:
        return z
    if n < length:
        return z.narrow(dim, 0, n)
    pad = list(z.shape)
    pad[dim] = n - length
    return torch.cat([z, z.new_zeros(pad)], dim=dim)


def _dim(dim: int, ndim: int) -> int:
    if not is_integer(dim):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    dim = operator.index(dim)
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


def _length(n: int | None, default: int, argument: str = "n") -> int:
    if n is None:
        if default < 1:
            raise ValueError(
                f"the transform length follows from x's shape as {default}, not a positive "
                f"int (an empty dimension, or irfft of a single bin): pass {argument}"
            )
        return default
    if not is_integer(n) or operator.index(n) < 1:
        raise ValueError(f"{argument} must be a positive int (the transform length), got {n!r}")
    return operator.index(n)


# -- tables ----------------------------------------------------------------------------------


def _cos_sin_pi(numerator: torch.Tensor, denominator: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos(π k/den)`` and ``sin(π k/den)`` for integers ``k`` (int64), in float64.

    The angle is reduced exactly, in integers, to ``[0, π/4]`` (``k mod 2 den``; ``π + θ``
    negates both; ``π - θ`` negates the cosine; ``π/2 - θ`` swaps them), so float64's ``cos``
    and ``sin`` only see small arguments, and ``0``, ``π/2``, ``π`` give exact zeros and ones.
    """
    den = 2 * denominator  # work with angles π j / den, j = 2k, to keep π/2 - θ integral
    j = (2 * numerator) % (2 * den)
    negate_both = j >= den
    j = torch.where(negate_both, j - den, j)
    negate_cos = 2 * j > den
    j = torch.where(negate_cos, den - j, j)
    swap = 4 * j > den
    j = torch.where(swap, den - 2 * j, 2 * j)  # now the angle is π j / (2 den) <= π/4
    angle = math.pi * (j.to(torch.float64) / (2 * den))
    c, s = torch.cos(angle), torch.sin(angle)
    c, s = torch.where(swap, s, c), torch.where(swap, c, s)
    c = torch.where(negate_cos ^ negate_both, -c, c)
    s = torch.where(negate_both, -s, s)
    return c, s


@functools.lru_cache(maxsize=64)
def _twiddles(
    n: int, fmt: FloatFormat, device: torch.device, inverse: bool
) -> tuple[torch.Tensor, ...]:
    """Per stage (half-size ``h = 1, 2, ..., n/2``), the twiddles ``exp(∓2πi j/(2h))``,
    ``j < h``, rounded to ``fmt`` (complex128)."""
    j = torch.arange(n // 2, dtype=torch.int64)
    c, s = _cos_sin_pi(j, n // 2)  # angle 2π j / n
    sign = 1.0 if inverse else -1.0
    table = torch.complex(c, sign * s)
    table = _common.round_to(table, fmt, RoundMode.NEAREST_EVEN, None).to(device)
    stages = []
    h = 1
    while h < n:
        stages.append(table[:: n // (2 * h)].contiguous())
        h *= 2
    return tuple(stages)


@functools.lru_cache(maxsize=64)
def _bit_reversal(n: int, device: torch.device) -> torch.Tensor:
    bits = n.bit_length() - 1
    index = torch.arange(n, dtype=torch.int64)
    reversed_index = torch.zeros_like(index)
    for b in builtins.range(bits):
        reversed_index |= ((index >> b) & 1) << (bits - 1 - b)
    return reversed_index.to(device)


@functools.lru_cache(maxsize=32)
def _chirp(
    n: int, fmt: FloatFormat, device: torch.device, inverse: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bluestein's tables: the chirp ``d_m = exp(±πi m²/n)`` (``+`` forward), ``m < n``, and
    ``B = DFT_M(b) / M`` of the wrapped chirp, each rounded to ``fmt`` once. With ``jk = (j² +
    k² - (k - j)²) / 2``, ``X_k = conj(d_k) Σ_j (x_j conj(d_j)) d_(k-j)``."""
    m = torch.arange(n, dtype=torch.int64)
    c, s = _cos_sin_pi((m * m) % (2 * n), n)
    d = torch.complex(c, (-1.0 if inverse else 1.0) * s)
    size = 1 << (2 * n - 2).bit_length()
    wrapped = torch.zeros(size, dtype=torch.complex128)
    wrapped[:n] = d
    wrapped[size - n + 1 :] = d[1:].flip(0)
    spectrum = torch.fft.fft(wrapped) / size
    rounded = [_common.round_to(t, fmt, RoundMode.NEAREST_EVEN, None) for t in (d, spectrum)]
    return rounded[0].to(device), rounded[1].to(device)


# -- the transforms --------------------------------------------------------------------------


def _radix2(z: torch.Tensor, setting: _Setting, inverse: bool) -> torch.Tensor:
    """Unnormalised staged DFT of the rows of ``z`` (``(B, N)``, ``N = 2**t``, values of
    ``fmt``); each stage is evaluated in complex128."""
    rows, n = z.shape
    if n == 1:
        return z
    x = z.index_select(1, _bit_reversal(n, z.device))
    # One buffer for every stage's unrounded output: the rounding returns a new tensor.
    out = torch.empty(x.shape, dtype=torch.complex128, device=x.device)
    for w in _twiddles(n, setting.fmt, z.device, inverse):
        h = w.shape[0]
        pairs = x.view(rows, n // (2 * h), 2, h)
        t = pairs[:, :, 1] * w
        halves = out.view(rows, n // (2 * h), 2, h)
        torch.add(pairs[:, :, 0], t, out=halves[:, :, 0])
        torch.sub(pairs[:, :, 0], t, out=halves[:, :, 1])
        x = setting.round(out)
    return x


def _bluestein(z: torch.Tensor, setting: _Setting, inverse: bool) -> torch.Tensor:
    """Unnormalised DFT of the rows of ``z`` for any ``N``, by chirp-z in ``fmt``."""
    rows, n = z.shape
    d, spectrum = _chirp(n, setting.fmt, z.device, inverse)
    size = spectrum.shape[0]
    a = torch.zeros(rows, size, dtype=torch.complex128, device=z.device)
    # conj_physical, not the lazy conj(): inside a TorchDispatchMode handler (mperror.emulate
    # routes FFTs here) torch multiplies by d itself when handed a lazily conjugated view.
    d_conj = torch.conj_physical(d)
    a[:, :n] = setting.round(z * d_conj)
    product = setting.round(_radix2(a, setting, inverse=False) * spectrum)
    q = _radix2(product, setting, inverse=True)
    return setting.round(q[:, :n] * d_conj)


def _unnormalised(z: torch.Tensor, dim: int, setting: _Setting, inverse: bool) -> torch.Tensor:
    """The staged DFT of complex128 ``z`` along ``dim``, no normalisation."""
    moved = z.movedim(dim, -1)
    shape = moved.shape
    rows = moved.reshape(-1, shape[-1])
    n = shape[-1]
    transform = _radix2 if n & (n - 1) == 0 else _bluestein
    return transform(rows, setting, inverse).reshape(shape).movedim(-1, dim)


def _transform(
    z: torch.Tensor, dims: Sequence[int], setting: _Setting, inverse: bool
) -> torch.Tensor:
    """Normalised staged transform of ``z`` (values of fmt) over ``dims``."""
    # One factor for the whole size, as torch and the emulated torch.fft compute it: the
    # product of per-dimension factors is not it (1/sqrt(2) 1/sqrt(8) is 0.25 less an ulp).
    factor = setting.factor(math.prod(z.shape[d] for d in dims), inverse)
    if setting.scale_first:
        z = setting.scale(z, factor)
    for d in dims:
        z = _unnormalised(z, d, setting, inverse)
    return z if setting.scale_first else setting.scale(z, factor)


def _output(z: torch.Tensor, real: torch.dtype) -> torch.Tensor:
    return z.to(_complex_dtype(real))


@explicit
def fft(
    x: torch.Tensor,
    fmt: FormatLike,
    n: int | None = None,
    dim: int = -1,
    norm: str | None = None,
    *,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    generator: torch.Generator | None = None,
    scale_first: bool = False,
) -> torch.Tensor:
    """Staged 1-D discrete Fourier transform in ``fmt`` (arguments as :func:`torch.fft.fft`).

    Args:
        x: real or complex input; its values are first rounded to ``fmt``.
        fmt: the format of every stored intermediate and of the result.
        n, dim, norm: as :func:`torch.fft.fft`.
        mode, generator: the rounding mode of every stage (and its random source).
        scale_first: apply the ``norm`` factor before the transform instead of after it (the
            default, after, is what cuFFT does and overflows like it).

    >>> fft(torch.ones(4), "fp16")
    tensor([4.+0.j, 0.+0.j, 0.+0.j, 0.+0.j])
    >>> fft(torch.full((1024,), 100.0), "fp16", norm="forward")[0]  # 102400 > 65504
    tensor(inf+nanj)
    >>> fft(torch.full((1024,), 100.0), "fp16", norm="forward", scale_first=True)[0]
    tensor(100.+0.j)
    """
    x = _check_input(x)
    setting = _Setting(fmt, norm, mode, generator, scale_first)
    real = _common.check_output_dtype(_component_dtype(x), setting.fmt)
    d = _dim(dim, x.dim())
    z = _resize(_to_fmt(x, setting), _length(n, x.shape[d]), d)
    return _output(_transform(z, [d], setting, inverse=False), real)


@explicit
def ifft(
    x: torch.Tensor,
    fmt: FormatLike,
    n: int | None = None,
    dim: int = -1,
    norm: str | None = None,
    *,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    generator: torch.Generator | None = None,
    scale_first: bool = False,
) -> torch.Tensor:
    """Staged 1-D inverse transform in ``fmt`` (as :func:`torch.fft.ifft`; see :func:`fft`).

    >>> ifft(torch.tensor([4.0, 0, 0, 0]), "fp16")
    tensor([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """
    x = _check_input(x)
    setting = _Setting(fmt, norm, mode, generator, scale_first)
    real = _common.check_output_dtype(_component_dtype(x), setting.fmt)
    d = _dim(dim, x.dim())
    z = _resize(_to_fmt(x, setting), _length(n, x.shape[d]), d)
    return _output(_transform(z, [d], setting, inverse=True), real)


@explicit
def rfft(
    x: torch.Tensor,
    fmt: FormatLike,
    n: int | None = None,
    dim: int = -1,
    norm: str | None = None,
    *,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    generator: torch.Generator | None = None,
    scale_first: bool = False,
) -> torch.Tensor:
    """Staged transform of a real input, the ``n//2 + 1`` non-negative frequencies (as
    :func:`torch.fft.rfft`; computed as the complex transform, see :func:`fft`).

    >>> rfft(torch.tensor([1.0, 2.0, 3.0, 4.0]), "fp16")
    tensor([10.+0.j, -2.+2.j, -2.+0.j])
    """
    x = _check_input(x, real_only=True)
    setting = _Setting(fmt, norm, mode, generator, scale_first)
    real = _common.check_output_dtype(_component_dtype(x), setting.fmt)
    d = _dim(dim, x.dim())
    length = _length(n, x.shape[d])
    z = _resize(_to_fmt(x, setting), length, d)
    full = _transform(z, [d], setting, inverse=False)
    return _output(full.narrow(d, 0, length // 2 + 1), real)


@explicit
def irfft(
    x: torch.Tensor,
    fmt: FormatLike,
    n: int | None = None,
    dim: int = -1,
    norm: str | None = None,
    *,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    generator: torch.Generator | None = None,
    scale_first: bool = False,
) -> torch.Tensor:
    """Inverse of :func:`rfft`: a real signal of length ``n`` (default ``2 (m - 1)`` for ``m``
    input bins) from its half spectrum, as :func:`torch.fft.irfft`. The input is trimmed or
    zero-padded to ``n//2 + 1`` bins and extended by Hermitian symmetry (the imaginary parts of
    the zero and Nyquist bins are ignored); the staged complex inverse runs on the full
    spectrum and its real part is returned (then scaled).

    >>> irfft(torch.tensor([10.0 + 0j, -2 + 2j, -2]), "fp16")
    tensor([1., 2., 3., 4.])
    """
    x = _check_input(x)
    setting = _Setting(fmt, norm, mode, generator, scale_first)
    real = _common.check_output_dtype(_component_dtype(x), setting.fmt)
    d = _dim(dim, x.dim())
    length = _length(n, 2 * (x.shape[d] - 1))
    half = _resize(_to_fmt(x, setting), length // 2 + 1, d).movedim(d, -1)
    last = length // 2 if length % 2 == 0 else None
    real_bins = [0] if last is None else [0, last]
    half = half.clone()
    half[..., real_bins] = half[..., real_bins].real.to(torch.complex128)
    mirrored = torch.conj_physical(half[..., 1 : (length + 1) // 2].flip(-1))  # see _bluestein
    spectrum = torch.cat([half, mirrored], dim=-1)
    factor = setting.factor(length, inverse=True)
    if setting.scale_first:
        spectrum = setting.scale(spectrum, factor)
    signal = _unnormalised(spectrum, -1, setting, inverse=True).real
    if not setting.scale_first:
        signal = setting.scale(signal, factor)
    return signal.movedim(-1, d).to(real)


@explicit
def fftn(
    x: torch.Tensor,
    fmt: FormatLike,
    s: Sequence[int] | int | None = None,
    dim: Sequence[int] | int | None = None,
    norm: str | None = None,
    *,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    generator: torch.Generator | None = None,
    scale_first: bool = False,
) -> torch.Tensor:
    """Staged N-D transform in ``fmt`` (as :func:`torch.fft.fftn`): the unnormalised 1-D
    transforms along each of ``dim`` in turn, then one scaling by the factor of the whole size
    (``1/N`` or ``1/sqrt(N)``, ``N`` the product of the lengths, as ``norm`` says). As in
    torch, ``s`` and ``dim`` may be single ints, and a size of -1 in ``s`` keeps that
    dimension's length.

    >>> fftn(torch.ones(2, 4), "bf16")
    tensor([[8.+0.j, 0.+0.j, 0.+0.j, 0.+0.j],
            [0.+0.j, 0.+0.j, 0.+0.j, 0.+0.j]])
    """
    x = _check_input(x)
    setting = _Setting(fmt, norm, mode, generator, scale_first)
    real = _common.check_output_dtype(_component_dtype(x), setting.fmt)
    s = [s] if is_integer(s) else s  # one int is one size / dimension, as in torch
    dim = [dim] if is_integer(dim) else dim
    for name, value in (("s", s), ("dim", dim)):
        if value is not None and (not isinstance(value, Sequence) or isinstance(value, str)):
            raise TypeError(f"{name} must be None, an int or a sequence of ints, got {value!r}")
    if dim is None:
        count = x.dim() if s is None else len(s)
        if count > x.dim():
            raise ValueError(
                f"s has {count} sizes but x has only {x.dim()} dimensions; "
                "pass at most x.dim() sizes, or dim as well"
            )
        dims = list(builtins.range(x.dim() - count, x.dim()))
    else:
        dims = [_dim(d, x.dim()) for d in dim]
        if len(set(dims)) != len(dims):
            raise ValueError(f"dim has repeated dimensions: {dim!r}")
    if s is None:
        sizes = [x.shape[d] for d in dims]
    else:
        if len(s) != len(dims):
            raise ValueError(f"s and dim must have the same length; got {len(s)} and {len(dims)}")
        # -1 keeps the dimension's size, as in torch
        sizes = [
            _length(x.shape[d] if is_integer(size) and size == -1 else size, x.shape[d], "s")
            for size, d in zip(s, dims, strict=True)
        ]
    z = _to_fmt(x, setting)
    for d, size in zip(dims, sizes, strict=True):
        z = _resize(z, size, d)
    return _output(_transform(z, dims, setting, inverse=False), real)
