"""A Fourier neural operator whose spectral convolutions run in full, half or mixed precision.

The network is Li et al.'s FNO (ICLR 2021): a pointwise lifting to ``width`` channels, blocks
``v -> gelu(K v + W v)`` with ``K`` a spectral convolution (FFT, multiply the lowest modes by
learnt complex weights, inverse FFT) and ``W`` a pointwise linear map, and a pointwise
projection; 1-D or 2-D, on periodic grids of any resolution fine enough that every kept mode
lies below the grid's Nyquist frequency (the weights act on modes, so a model trained at one
resolution evaluates at others: zero-shot super-resolution; :class:`SpectralConv`).

Precision (Tu et al., ICLR 2024), a :class:`SpectralPrecision` per model, changed at any time
with :meth:`FNO.set_precision`; everything outside the spectral convolutions stays float32:

* ``full``: float32 FFT, contraction and inverse FFT.
* ``half``: the forward FFT, the weight contraction and the inverse FFT in the half format.
* ``mixed``: the forward FFT in float32; the contraction and the inverse FFT in half.
* ``+tanh``: ``tanh`` applied to the input of every spectral convolution (Tu et al.'s
  stabiliser: with ``|v| <= 1`` an unnormalised forward FFT of ``N <= 65504`` points cannot
  overflow fp16; the contraction and the inverse FFT that follow it are not covered, and can
  overflow in ``half`` and ``mixed``: experiments/RESULTS.md). It changes the function the
  network computes, so it holds in every mode and a precision schedule keeps it throughout.

Each mode is *native* (torch's CUDA half FFT: fp16 only, power-of-two grids, as cuFFT requires)
or *emulated* (:func:`mperror.emulate` with the staged FFT of :mod:`mperror.ops`, every
butterfly stage rounded to the format; any format, any device, any grid). The emulated half
spectral convolution is one autograd node whose backward pass is emulated too, as the native
half backward runs in half. ``"auto"`` picks native where it exists.

The complex contraction ``out[b,o,k] = sum_i x[b,i,k] w[i,o,k]`` runs as one real einsum
``"bikc,cde,iokd->boke"`` over the real and imaginary parts (``c``, ``d``, ``e``) with a
constant sign tensor, along the path :mod:`opt_einsum` (the field's standard for contraction
paths) optimises; :meth:`SpectralConv.contraction` reports the path and its largest
intermediate.

Overflow: the model counts the forward passes in which a spectral convolution's output held inf
or NaN (:attr:`FNO.overflow_events`; an overflowing half FFT shows there before the loss turns
NaN) and keeps the largest ``|v|`` its FFTs saw (:attr:`FNO.spectral_input_max`, NaN once an
FFT input held a NaN), the ``M`` of the overflow condition ``N M <= fmt.max``.

>>> import torch
>>> model = FNO(dim=1, width=8, modes=(4,), layers=2)
>>> model(torch.zeros(3, 1, 32)).shape
torch.Size([3, 1, 32])
>>> model.set_precision("half+tanh"); str(model.precision)
'half-fp16+tanh'
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

import mperror.emulate
from mperror import formats
from mperror._checks import is_integer, is_real
from mperror.formats import FloatFormat, as_format

if TYPE_CHECKING:
    import opt_einsum

__all__ = [
    "BACKENDS",
    "FNO",
    "MODES",
    "PrecisionSchedule",
    "SpectralConv",
    "SpectralPrecision",
    "parse_model_precision",
]

MODES = ("full", "half", "mixed")
BACKENDS = ("auto", "native", "emulated")
_EQUATION = "bikc,cde,iokd->boke"


def _sign_tensor() -> torch.Tensor:
    """``S[c, d, e]``: (a + ib)(x + iy) = (ax - by) + i(ay + bx) as sum_cd S[c,d,e] z_c w_d."""
    s = torch.zeros(2, 2, 2)
    s[0, 0, 0], s[1, 1, 0], s[0, 1, 1], s[1, 0, 1] = 1.0, -1.0, 1.0, 1.0
    return s


@dataclass(frozen=True)
class SpectralPrecision:
    """How the spectral convolutions compute: ``mode`` (:data:`MODES`), the half format
    ``fmt``, the ``tanh`` stabiliser and the ``backend`` (:data:`BACKENDS`).

    Written ``MODE[-FMT][+tanh]``: ``"full"``, ``"half"``, ``"mixed-bf16+tanh"``,
    ``"half-e4m3fn"`` (see :func:`parse_model_precision`).
    """

    mode: str = "full"
    fmt: FloatFormat = dataclasses.field(default_factory=lambda: as_format("fp16"))
    tanh: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if not isinstance(self.tanh, bool):
            raise TypeError(f"tanh must be a bool (True or False), got {self.tanh!r}")
        object.__setattr__(self, "fmt", as_format(self.fmt, argument="fmt"))

    def __str__(self) -> str:
        body = "full" if self.mode == "full" else f"{self.mode}-{self.fmt.name}"
        return body + ("+tanh" if self.tanh else "")

    def native(self, device: torch.device, grid: Sequence[int]) -> bool:
        """Whether this precision runs natively on ``device`` for ``grid``: CUDA, fp16, every
        grid size a power of two (cuFFT's half FFT); ``full`` is always native."""
        if self.mode == "full":
            return True
        possible = (
            device.type == "cuda"
            and self.fmt.name == "fp16"
            and all(n > 0 and n & (n - 1) == 0 for n in grid)
        )
        if self.backend == "native" and not possible:
            raise ValueError(
                f"backend='native' needs CUDA, fmt fp16 and power-of-two grids (cuFFT's half "
                f"FFT); got device {device.type}, fmt {self.fmt.name}, grid {tuple(grid)}: "
                "use backend='emulated' or 'auto'"
            )
        return possible and self.backend != "emulated"


_SHARE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class PrecisionSchedule:
    """Precision modes over training: ``stages`` are ``(mode, share)`` pairs whose shares sum
    to 1, e.g. Tu et al.'s ``(("half", 0.25), ("mixed", 0.5), ("full", 0.25))``. Step ``k`` of
    ``n`` runs in the mode at ``k / n``: a run of fewer steps than a stage needs skips it (the
    default schedule reaches ``full`` only from 4 steps on).

    >>> PrecisionSchedule().mode_at(0.3), PrecisionSchedule().mode_at(0.8)
    ('mixed', 'full')
    """

    stages: tuple[tuple[str, float], ...] = (("half", 0.25), ("mixed", 0.5), ("full", 0.25))

    def __post_init__(self) -> None:
        def stage_ok(stage: object) -> bool:
            if not isinstance(stage, tuple) or len(stage) != 2:
                return False
            mode, share = stage
            return mode in MODES and is_real(share) and math.isfinite(share) and share > 0

        if not isinstance(self.stages, tuple) or not self.stages:
            raise ValueError(f"stages must be a non-empty tuple of pairs, got {self.stages!r}")
        if not all(stage_ok(stage) for stage in self.stages):
            raise ValueError(
                f"stages must be (mode, share) pairs with mode in {MODES} and share a finite "
                f"float > 0, got {self.stages!r}"
            )
        total = math.fsum(s for _, s in self.stages)
        if abs(total - 1.0) > _SHARE_TOLERANCE:
            raise ValueError(f"stages' shares must sum to 1, got {total!r}")

    def mode_at(self, fraction: float) -> str:
        """The mode at ``fraction`` (0 <= fraction <= 1) of training; a stage's end belongs
        to the next stage. Ends are the running sums of the shares, compared within the 1e-12
        the shares' total is allowed: decimal shares split where their decimals say (0.1 + 0.2
        is 0.30000000000000004 in float64, and 3/10 of training is the third stage's start)."""
        if not (is_real(fraction) and 0.0 <= fraction <= 1.0):
            raise ValueError(f"fraction must be a float in [0, 1], got {fraction!r}")
        shares = [share for _, share in self.stages]
        for i, (mode, _) in enumerate(self.stages):
            if fraction < math.fsum(shares[: i + 1]) - _SHARE_TOLERANCE:
                return mode
        return self.stages[-1][0]


def parse_model_precision(text: str) -> tuple[SpectralPrecision, PrecisionSchedule | None]:
    """``"MODE[-FMT][+tanh]"`` as a precision, with ``MODE`` one of :data:`MODES` or
    ``"schedule"`` (the default :class:`PrecisionSchedule`; its precision starts in its first
    mode).

    >>> p, s = parse_model_precision("schedule-bf16+tanh")
    >>> str(p), s.stages[0]
    ('half-bf16+tanh', ('half', 0.25))
    """
    if not isinstance(text, str):
        raise TypeError(f"model precision must be a str, got {type(text).__name__}")
    body, plus, suffix = text.strip().lower().partition("+")
    if plus and suffix != "tanh":
        raise ValueError(f"model precision: the only suffix is '+tanh', got {text!r}")
    mode, dash, fmt = body.partition("-")
    allowed = (*MODES, "schedule")
    if mode not in allowed:
        raise ValueError(
            f"model precision must be MODE[-FMT][+tanh] with MODE in {allowed}, got {text!r}"
        )
    if mode == "full" and dash:
        raise ValueError(f"model precision 'full' takes no format, got {text!r}")
    if dash and not fmt:
        raise ValueError(
            f"model precision: a '-' must be followed by a format FMT, one of "
            f"{', '.join(formats.PRESETS)} (or no '-' for fp16), got {text!r}"
        )
    schedule = PrecisionSchedule() if mode == "schedule" else None
    first = schedule.stages[0][0] if schedule else mode
    return SpectralPrecision(first, as_format(fmt or "fp16", argument="model precision"),
                             tanh=bool(plus)), schedule  # fmt: skip


@functools.lru_cache(maxsize=64)
def _expression(x_shape: tuple[int, ...], w_shape: tuple[int, ...]):
    # imported where used, so that importing mperror works where opt_einsum is missing (a bare
    # GPU machine), and only the FNO's contractions need it
    import opt_einsum

    return opt_einsum.contract_expression(_EQUATION, x_shape, (2, 2, 2), w_shape)


class _EmulatedBlock(torch.autograd.Function):
    """``fn(*inputs)`` under an emulation policy, forward and backward, to any order (one
    autograd node; ``fn`` returns a tensor or a tuple of tensors).

    The forward pass keeps the emulated graph of ``fn``, and a plain backward differentiates it
    under the policy (``retain_graph``, so a retained outer graph can be differentiated again).
    When a graph of the backward itself is asked for (double backward: Hessian-vector products,
    a PINN-style loss on derivatives), the vector-Jacobian product runs as an emulated block of
    its own, recomputing ``fn``: its derivatives are emulated in turn.
    """

    @staticmethod
    def forward(ctx, fn: Callable, policy, *inputs: torch.Tensor):
        leaves = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
        with torch.enable_grad(), mperror.emulate(policy, count=False):
            out = fn(*leaves)
        outs = out if isinstance(out, tuple) else (out,)
        ctx.graph = (leaves, outs)
        ctx.fn, ctx.policy = fn, policy
        ctx.save_for_backward(*inputs)
        detached = tuple(o.detach() for o in outs)
        return detached if isinstance(out, tuple) else detached[0]

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        needs = ctx.needs_input_grad[2:]
        if torch.is_grad_enabled():  # create_graph: the backward must be differentiable
            inputs = ctx.saved_tensors
            fn, count = ctx.fn, len(inputs)

            def vjp(*args: torch.Tensor) -> tuple[torch.Tensor, ...]:
                return _vjp(fn, args[:count], args[count:], needs, create_graph=True)

            found = iter(_EmulatedBlock.apply(vjp, ctx.policy, *inputs, *grads))
        else:
            leaves, outs = ctx.graph
            with mperror.emulate(ctx.policy, count=False):
                found = iter(_vjp(None, leaves, grads, needs, outs=outs))
        return (None, None, *(next(found) if need else None for need in needs))


def _vjp(fn, inputs, grads, needs, *, create_graph: bool = False, outs=None):
    """The gradients of ``fn(*inputs)`` (or of ``outs``, already computed from ``inputs``)
    against ``grads`` for the inputs that ``needs`` marks, zeros where one is unused."""
    wanted = [t for t, need in zip(inputs, needs, strict=True) if need]
    if outs is None:
        with torch.enable_grad():
            out = fn(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
    # An output that depends on no input needing a gradient (a constant first-order gradient,
    # from a loss linear in the layer) contributes nothing; autograd refuses it.
    live = [(o, g) for o, g in zip(outs, grads, strict=True) if o.requires_grad]
    found = (
        torch.autograd.grad(
            [o for o, _ in live],
            wanted,
            [g for _, g in live],
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=True,
        )
        if live
        else (None,) * len(wanted)
    )
    return tuple(
        torch.zeros_like(t) if g is None else g for t, g in zip(wanted, found, strict=True)
    )


def _positive_index(m: object) -> bool:
    """``m`` is an integer >= 1 (:func:`mperror._checks.is_integer`: not a bool or float)."""
    return is_integer(m) and operator.index(m) >= 1  # type: ignore[arg-type]


def _count(name: str, value: object) -> int:
    """``value`` as a Python int if it is an integer >= 1 (Python, numpy or 0-d torch; not a
    bool), else a TypeError (not an integer) or ValueError (below 1) naming ``name``."""
    if not is_integer(value):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    count = operator.index(value)  # type: ignore[arg-type]
    if count < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {count}")
    return count


def _modes(modes: object) -> tuple[int, ...]:
    """``modes`` as a tuple of 1 or 2 Python ints >= 1, else a TypeError (not a sequence) or
    ValueError naming ``modes``."""
    try:
        found = None if isinstance(modes, (str, bytes)) else tuple(modes)  # type: ignore[arg-type]
    except TypeError:  # not iterable: an int, a 0-d tensor, ...
        found = None
    if found is None:
        raise TypeError(
            "modes must be a sequence of 1 or 2 positive ints, one per grid dimension, such "
            f"as (12,) or (12, 12), got {modes!r}"
        )
    if len(found) not in (1, 2) or not all(_positive_index(m) for m in found):
        raise ValueError(f"modes must be 1 or 2 positive ints, got {found!r}")
    return tuple(operator.index(m) for m in found)


class SpectralConv(nn.Module):
    """``v -> irfft(R . rfft(v))`` on the lowest ``modes`` (per dimension) of a 1-D or 2-D grid.

    Weights ``R`` (complex, stored as real and imaginary float32 parts) have shape
    ``(in, out, *kept)`` with ``kept = (m,)`` in 1-D and ``(2 m1, m2)`` in 2-D (the positive
    and negative frequencies of the first axis). Scaled as Li et al.: uniform on ``[0, 1/(in
    out))``. ``channels_in``, ``channels_out`` and every mode count are ints >= 1.

    Grids: every kept frequency ``k`` must lie strictly below the grid's Nyquist frequency,
    ``|k| < n / 2``, so an axis of ``n`` points takes ``m <= (n + 1) // 2`` modes (1-D, and the
    last axis in 2-D: frequencies ``0 .. m - 1``) and ``m <= (n - 1) // 2`` along the first axis
    in 2-D (frequencies ``-m .. m - 1``); a coarser grid is refused. The Nyquist coefficient of
    an even grid stands for several functions at once (``cos(pi n x)`` plus any multiple of
    ``sin(pi n x)``, which vanishes on the grid; in 2-D the frequencies ``+n/2`` and ``-n/2`` of
    the first axis), so a layer keeping it maps functions that agree on the grid to outputs that
    disagree on a finer one, and zero-shot super-resolution stops being consistent. (Li et
    al.'s reference code allows modes up to the Nyquist frequency; at the resolutions one
    trains at, ``m`` is far below it.)
    """

    def __init__(
        self, channels_in: int, channels_out: int, modes: Sequence[int], *, generator=None
    ) -> None:
        super().__init__()
        channels_in = _count("channels_in", channels_in)
        channels_out = _count("channels_out", channels_out)
        self.modes = _modes(modes)
        kept = self.modes if len(self.modes) == 1 else (2 * self.modes[0], self.modes[1])
        scale = 1.0 / (channels_in * channels_out)
        shape = (channels_in, channels_out, *kept, 2)
        self.weight = nn.Parameter(scale * torch.rand(shape, generator=generator))
        self.register_buffer("signs", _sign_tensor(), persistent=False)
        #: The largest ``|v|`` an FFT of this layer has seen (after the stabiliser): the ``M``
        #: of the overflow condition ``N M <= fmt.max``; NaN from the first input holding a NaN
        #: on (the largest ``|v|`` is undefined then), until it is reset by assignment.
        self.input_max = 0.0

    @property
    def dim(self) -> int:
        return len(self.modes)

    def _check_grid(self, grid: Sequence[int]) -> None:
        for axis, (n, m) in enumerate(zip(grid, self.modes, strict=True)):
            # Frequencies 0 .. m-1 on the last (rfft) axis, -m .. m-1 on the first of 2-D; all
            # strictly below n/2 (the class docstring says why the Nyquist one is excluded).
            limit = (n + 1) // 2 if axis == self.dim - 1 else (n - 1) // 2
            if m > limit:
                raise ValueError(
                    f"a grid of {tuple(grid)} points keeps at most {limit} modes along axis "
                    f"{axis} (every kept frequency below the Nyquist frequency {n}/2), but the "
                    f"layer has modes {self.modes}: use a finer grid"
                )

    def _truncate(self, spectrum: torch.Tensor) -> torch.Tensor:
        """The kept modes of an rfft spectrum, as a real tensor ``(..., *kept, 2)``."""
        if self.dim == 1:
            return torch.view_as_real(spectrum[..., : self.modes[0]])
        m1, m2 = self.modes
        low = torch.view_as_real(spectrum[..., :m1, :m2])
        high = torch.view_as_real(spectrum[..., -m1:, :m2])
        return torch.cat([low, high], dim=-3)

    def _expand(self, kept: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """Zero-fill the kept modes (real ``(..., *kept, 2)``) to the full rfft spectrum."""
        last = grid[-1] // 2 + 1 - self.modes[-1]
        if self.dim == 1:
            full = F.pad(kept, (0, 0, 0, last))
        else:
            m1 = self.modes[0]
            gap = kept.new_zeros((*kept.shape[:-3], grid[0] - 2 * m1, *kept.shape[-2:]))
            full = torch.cat([kept[..., :m1, :, :], gap, kept[..., m1:, :, :]], dim=-3)
            full = F.pad(full, (0, 0, 0, last))
        return torch.view_as_complex(full.contiguous())

    def contract(self, kept: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``out[b,o,k] = sum_i x[b,i,k] w[i,o,k]`` in complex arithmetic, as one real einsum.

        ``kept``: ``(batch, in, *kept, 2)``; the result ``(batch, out, *kept, 2)``.
        """
        # einsum letters: b batch, i in, o out, k the (flattened) modes, c/d/e real-imaginary
        x = kept.flatten(2, -2)
        w = weight.flatten(2, -2)
        signs = self.signs.to(dtype=x.dtype)
        out = _expression(tuple(x.shape), tuple(w.shape))(x, signs, w, backend="torch")
        return out.reshape(*out.shape[:2], *kept.shape[2:])

    def contraction(self, batch: int) -> opt_einsum.contract.PathInfo:
        """opt_einsum's path for ``batch`` inputs: ``.path``, ``.largest_intermediate``
        (values), ``.opt_cost`` (floating-point operations, as opt_einsum counts them: per
        pairwise step the product of the sizes of every index involved, times 2 when the step
        sums an index, a multiply and an add; so twice the real multiply-adds here).

        >>> info = SpectralConv(6, 6, (5,)).contraction(batch=8)
        >>> [step[2] for step in info.contraction_list]
        ['iokd,cde->iokce', 'iokce,bikc->boke']
        >>> info.opt_cost == 2 * (6 * 6 * 5 * 2 * 2 * 2 + 8 * 6 * 6 * 5 * 2 * 2)
        True
        """
        kept = math.prod(self.weight.shape[2:-1])
        x = (_count("batch", batch), self.weight.shape[0], kept, 2)
        w = (self.weight.shape[0], self.weight.shape[1], kept, 2)
        import opt_einsum  # as in _expression

        return opt_einsum.contract_path(_EQUATION, x, (2, 2, 2), w, shapes=True)[1]

    def forward(self, v: torch.Tensor, precision: SpectralPrecision) -> torch.Tensor:
        if not isinstance(precision, SpectralPrecision):
            raise TypeError(
                "precision must be a SpectralPrecision (e.g. SpectralPrecision('half')), got "
                f"{type(precision).__name__}"
            )
        channels = self.weight.shape[0]
        if not isinstance(v, torch.Tensor) or v.dim() != self.dim + 2 or v.shape[1] != channels:
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(
                f"v must be (batch, {channels} channels, *grid) with a {self.dim}-D grid, "
                f"got {shape}"
            )
        grid = tuple(v.shape[-self.dim :])
        self._check_grid(grid)
        if v.dtype == torch.bfloat16 or (v.dtype == torch.float16 and v.device.type == "cpu"):
            raise TypeError(
                f"the spectral convolution got a {v.dtype} input on {v.device.type}, where torch "
                "has no FFT for it (no bfloat16 FFT anywhere, float16 only on CUDA): keep the "
                "model in float32 and choose the spectral precision with FNO.set_precision"
            )
        dims = tuple(range(-self.dim, 0))
        if precision.tanh:
            v = torch.tanh(v)
        seen = float(v.detach().abs().amax())  # NaN if v holds one: amax propagates it
        # max(old, nan) keeps old: a NaN is recorded (and kept) explicitly instead.
        nan = math.isnan(seen) or math.isnan(self.input_max)
        self.input_max = math.nan if nan else max(self.input_max, seen)
        if precision.mode == "full":
            kept = self._truncate(torch.fft.rfftn(v, dim=dims))
            return torch.fft.irfftn(self._expand(self.contract(kept, self.weight), grid), s=grid)
        if precision.native(v.device, grid):
            return self._native(v, grid, dims, precision.mode)
        return self._emulated(v, grid, dims, precision)

    def _native(self, v, grid, dims, mode: str) -> torch.Tensor:
        if mode == "half":
            spectrum = torch.fft.rfftn(v.half(), dim=dims)
        else:
            spectrum = torch.fft.rfftn(v, dim=dims).to(torch.complex32)
        out = self.contract(self._truncate(spectrum), self.weight.half())
        return torch.fft.irfftn(self._expand(out, grid), s=grid).float()

    def _emulated(self, v, grid, dims, precision: SpectralPrecision) -> torch.Tensor:
        policy = mperror.emulate.pure(precision.fmt, fft_algorithm="staged")

        def rest(kept: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            return torch.fft.irfftn(self._expand(self.contract(kept, weight), grid), s=grid)

        if precision.mode == "mixed":  # forward FFT in float32, outside the emulation
            kept = self._truncate(torch.fft.rfftn(v, dim=dims))
            return _EmulatedBlock.apply(rest, policy, kept, self.weight)

        def whole(v: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            return rest(self._truncate(torch.fft.rfftn(v, dim=dims)), weight)

        return _EmulatedBlock.apply(whole, policy, v, self.weight)


class FNO(nn.Module):
    """Li et al.'s Fourier neural operator on a 1-D or 2-D periodic grid.

    Input ``(batch, in_channels, *grid)``; the grid coordinates ``x_j = j / n`` are appended as
    channels; output ``(batch, out_channels, *grid)``.

    Args:
        dim: 1 or 2.
        width: channels of the hidden blocks, an int >= 1.
        modes: kept modes per dimension, a sequence of ``dim`` ints >= 1 (``(12,)``,
            ``(12, 12)``; a bare int is refused, not read as one count per dimension). A grid
            must keep every mode below its Nyquist frequency (:class:`SpectralConv`).
        layers: number of Fourier blocks, an int >= 1.
        in_channels, out_channels: of the data, ints >= 1.
        generator: the generator the initial weights are drawn from (``None``: a fresh one
            seeded 0); building the model never touches torch's global random state.
        precision: the initial :class:`SpectralPrecision` or its string.
    """

    def __init__(
        self,
        *,
        dim: int,
        width: int,
        modes: Sequence[int],
        layers: int,
        in_channels: int = 1,
        out_channels: int = 1,
        generator: torch.Generator | None = None,
        precision: SpectralPrecision | str = "full",
    ) -> None:
        super().__init__()
        if not is_integer(dim) or dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim!r}")
        dim = operator.index(dim)
        modes = _modes(modes)
        if len(modes) != dim:
            raise ValueError(f"modes must hold dim={dim} ints, got {modes!r}")
        width, layers = _count("width", width), _count("layers", layers)
        in_channels = _count("in_channels", in_channels)
        out_channels = _count("out_channels", out_channels)
        g = torch.Generator().manual_seed(0) if generator is None else generator
        self.dim = dim
        self.in_channels = in_channels
        self.lift = self._pointwise(in_channels + dim, width, g)
        self.spectral = nn.ModuleList(
            SpectralConv(width, width, modes, generator=g) for _ in range(layers)
        )
        self.pointwise = nn.ModuleList(self._pointwise(width, width, g) for _ in range(layers))
        self.project = nn.Sequential(
            self._pointwise(width, 4 * width, g),
            nn.GELU(),
            self._pointwise(4 * width, out_channels, g),
        )
        self.precision = SpectralPrecision()
        self.overflow_events = 0
        self.set_precision(precision)

    def _pointwise(self, fan_in: int, fan_out: int, g: torch.Generator) -> nn.Module:
        kind = nn.Conv1d if self.dim == 1 else nn.Conv2d
        conv = nn.utils.skip_init(kind, fan_in, fan_out, 1, dtype=torch.float32)
        bound = 1.0 / math.sqrt(fan_in)  # the range of torch's default initialisation
        with torch.no_grad():
            conv.weight.uniform_(-bound, bound, generator=g)
            conv.bias.uniform_(-bound, bound, generator=g)
        return conv

    def set_precision(self, precision: SpectralPrecision | str) -> None:
        """Set the spectral precision (a :class:`SpectralPrecision` or ``MODE[-FMT][+tanh]``;
        ``"schedule"`` is the trainer's business, see :func:`parse_model_precision`)."""
        if isinstance(precision, str):
            precision, schedule = parse_model_precision(precision)
            if schedule is not None:
                raise ValueError(
                    "set_precision takes one mode; a schedule's modes are set by the trainer"
                )
        if not isinstance(precision, SpectralPrecision):
            raise TypeError(
                f"precision must be a SpectralPrecision or str, got {type(precision).__name__}"
            )
        self.precision = precision

    def set_mode(self, mode: str) -> None:
        """Keep the format and stabiliser, change the mode (a schedule's step)."""
        self.precision = dataclasses.replace(self.precision, mode=mode)

    def full_precision_(self) -> FNO:
        """This model in mode ``full`` (same weights, same stabiliser); returns ``self``."""
        self.set_mode("full")
        return self

    @property
    def spectral_input_max(self) -> float:
        """The largest ``|v|`` any spectral convolution's FFT has seen so far; NaN once any
        of them has seen a NaN (:attr:`SpectralConv.input_max`)."""
        seen = [layer.input_max for layer in self.spectral]
        return math.nan if any(math.isnan(m) for m in seen) else max(seen)

    def _grid(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[2:]
        axes = [torch.arange(n, dtype=x.dtype, device=x.device) / n for n in shape]
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack(mesh).expand(x.shape[0], self.dim, *shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(
                f"x must be a real floating tensor, got "
                f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}"
            )
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must be (batch, {self.in_channels}, *grid) with a {self.dim}-D grid (the "
                f"model's in_channels={self.in_channels}), got {tuple(x.shape)}"
            )
        v = self.lift(torch.cat([x, self._grid(x)], dim=1))
        overflowed = False
        for k, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            s = spectral(v, self.precision)
            overflowed = overflowed or not bool(torch.isfinite(s).all())
            v = pointwise(v) + s
            if k < len(self.spectral) - 1:
                v = F.gelu(v)
        self.overflow_events += int(overflowed)
        return self.project(v)
