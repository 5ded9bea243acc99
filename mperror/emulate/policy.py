"""What an emulated program computes in: the :class:`Policy` record and its presets.

A policy names, per class of operation (:class:`OpClass`), the format its results are rounded
to, the rounding mode, how matmuls and reductions accumulate, how FFTs are computed, and a set of
ATen operators left in float32. The emulator (:func:`mperror.emulate`) reads nothing else: no
global state, no torch setting.

Presets: :func:`pure` (every operation in one format) and :func:`autocast` (torch's CUDA
autocast op lists, so that a CPU run stands in for CUDA mixed-precision numerics).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from mperror._records import Record
from mperror.formats import FloatFormat, FormatLike, _holds, as_format, format_of_dtype
from mperror.ops import Accumulation
from mperror.rounding import RoundMode

__all__ = [
    "AUTOCAST_FP32_OPS",
    "OpClass",
    "Policy",
    "autocast",
    "pure",
]


class OpClass(str, enum.Enum):
    """How the emulator treats an ATen operator. The value string names the class in reports."""

    #: returns an alias of an input (view, reshape-as-view, detach...): returned untouched
    VIEW = "view"
    #: no floating-point values to round (metadata, ``.item()``, ``empty``, ``zero_``, ...)
    PASS = "pass"
    #: values are copies or selections of inputs or constants (clone, cat, index, where, relu,
    #: comparisons...): run natively, which is exact, then rounded
    DATA = "data"
    #: random numbers and factories (randn, normal_, dropout, full, arange...): run natively, so
    #: that they draw what they would without emulation, then rounded
    SOURCE = "source"
    #: pointwise arithmetic (``torch.Tag.pointwise``, ``_foreach_*``): float64, rounded once
    ELEMENTWISE = "elementwise"
    #: mm, bmm, addmm, baddbmm, convolution, ... (autocast's lower-precision list): inputs rounded
    #: to the format first, products summed, the result rounded once
    MATMUL = "matmul"
    #: sums, means, norms, softmax, normalisation layers, losses: float64, rounded once
    REDUCTION = "reduction"
    #: ``_fft_r2c``, ``_fft_c2c``, ``_fft_c2r``: complex128, rounded once
    FFT = "fft"
    #: bookkeeping that must keep its own precision (GradScaler's ``_amp_*`` ops): native
    NATIVE = "native"
    #: anything else with floating-point values (linear algebra, ...): rounded as elementwise
    #: and listed in the report
    UNCLASSIFIED = "unclassified"


_COMPUTE = ("fp64", "fp32")
_STORAGE = ("caller", "autocast")


@functools.lru_cache(maxsize=64)
def _cast_dtype(fmt: FloatFormat) -> torch.dtype:
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        if _holds(format_of_dtype(dtype), fmt):
            return dtype
    return torch.float64


_FFT_ALGORITHMS = ("exact", "staged")


@dataclass(frozen=True, kw_only=True)
class Policy(Record):
    """The precision of every operation of an emulated program.

    Args:
        elementwise: format of elementwise results and of data-movement, random and
            unclassified operations.
        matmul: format of matmul-class operations (:attr:`OpClass.MATMUL`): their floating
            inputs are rounded to it first, as autocast casts them, and the result is rounded
            to it once.
        reduction: format of reduction results (sum, mean, softmax, norms, losses...).
        fft: format of FFT results.
        mode: the rounding mode of every rounding (a :class:`~mperror.RoundMode` or its value);
            the stochastic modes draw from the generator given to :func:`mperror.emulate`.
        accumulation: ``None`` (the default) sums products and reduction terms in float64 and
            rounds the result once: "exact accumulation" for practical purposes (products of two
            ``p <= 26`` bit values are exact in float64, and the float64 sum's error, at most
            ``gamma_n(2**-53) sum|terms|``, is far below one rounding to the format; it still
            decides the rounding where the exact sum lies that close to a value or midpoint of
            the format, which the directed modes meet whenever terms far apart are summed: see
            :mod:`mperror.emulate.mode`). A format
            (the accumulation format, recursive order) or an :class:`mperror.ops.Accumulation`
            (format, order, block, block-FMA chunk) routes ``mm``, ``bmm``, ``mv``, ``dot``,
            ``addmm``, ``baddbmm``, ``addmv``, ``sum`` and ``mean`` (their functional
            overloads) through :mod:`mperror.ops`, whose models round every partial sum (see
            :mod:`mperror.emulate.routed`); convolutions, in-place and ``out=`` variants and
            the other matmul-class operators keep exact accumulation.
        fft_algorithm: ``"exact"`` (complex128, rounded once) or ``"staged"``: every torch.fft
            transform runs as :mod:`mperror.ops`' staged radix-2 FFTs, each butterfly stage
            rounded to the FFT format.
        keep_fp32: ATen operator names (overload packets, ``"exp"``, ``"_softmax"``, ...; any
            collection, stored as a sorted tuple) that run in float32: inputs converted to
            float32, torch's float32 kernel, output rounded to float32 only; a factory (an
            operator without tensor arguments: ``randn``, ``full``) runs as without emulation,
            in the dtype asked for, so random ones draw what they would. In-place variants
            (``"exp_"``) follow their base name. A name that is no ATen operator, or one that
            decomposes above the emulator (``"softmax"``, which runs as ``"_softmax"``), is
            refused with ValueError.
        keep_fp32_backward: the operators that run in float32 while autograd runs a backward
            pass (``None``, the default: those of ``keep_fp32``); the others of ``keep_fp32``
            then run in the policy's formats. :func:`autocast` needs this: CUDA autocast is off
            in backward, so a ``sum`` that autograd runs on a half gradient (a bias gradient)
            returns half, while a forward ``sum`` runs in float32.
        storage: where results are stored. ``"caller"`` (the default): in the dtype the
            operator returns without emulation, every floating result rounded to its class's
            format. ``"autocast"``: as ``torch.autocast`` stores them: matmul-class results in
            :attr:`cast_dtype` (the narrowest of float16, bfloat16, float32 that holds the
            matmul format), the ``keep_fp32`` operators' results in float32, and every other
            operator's in the dtype torch's type promotion gives it, rounded to the format of
            that dtype: :attr:`cast_dtype` results to the class's format, wider ones (float32,
            float64) as torch's kernels of that dtype compute them, which the emulator then
            runs natively where no input or result has :attr:`cast_dtype`. So an operator
            outside autocast's lists runs in the widest dtype of its inputs, as on CUDA, and
            gradients reach float32 weights through autograd's own casts. Functions on
            autocast's lists that torch composes in Python (linear, matmul, einsum,
            convolutions, attention, the composite losses, ...) get autocast's input casts
            before they run, a weight cast once per block (see :func:`autocast`).
        compute: the precision the emulator computes in before rounding. ``"fp64"`` (default)
            makes ``+ - * /`` and ``sqrt`` on format values correctly rounded in every mode for
            every format of precision ``p <= 25`` (see :mod:`mperror.emulate.mode`: float64
            holds ``2p + 2`` bits, and sums under the non-nearest modes go through a
            round-to-odd float64 sum). ``"fp32"`` runs torch's float32 kernels and rounds their
            result, which is faster and loses exactness: double rounding is innocuous only for
            ``p <= 11`` (``24 >= 2p + 2``) under the nearest modes, and then only for correctly
            rounded float32 operations (``+ - * /``; sums of values far apart are not exact
            under the directed modes); torch's CPU float32 ``sqrt``, transcendental functions,
            fused ops (addcmul)
            and float32 reductions and matmuls (float32 accumulation in a blocked order) carry
            float32 errors into the result; FFTs run in complex64.
        name: a label for reports; it takes no part in equality.

    >>> p = pure("bf16")
    >>> p.matmul.name, p.mode.value, p.accumulation
    ('bf16', 'nearest_even', None)
    >>> "exp" in autocast("fp16").keep_fp32, autocast("fp16").matmul.name
    (True, 'fp16')
    """

    elementwise: FloatFormat
    matmul: FloatFormat
    reduction: FloatFormat
    fft: FloatFormat
    mode: RoundMode = RoundMode.NEAREST_EVEN
    accumulation: FloatFormat | Accumulation | None = None
    fft_algorithm: str = "exact"
    keep_fp32: tuple[str, ...] = ()
    keep_fp32_backward: tuple[str, ...] | None = None
    compute: str = "fp64"
    storage: str = "caller"
    name: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        for field in ("elementwise", "matmul", "reduction", "fft"):
            value = getattr(self, field)
            object.__setattr__(self, field, as_format(value, argument=field))
        object.__setattr__(self, "mode", RoundMode.parse(self.mode))
        if isinstance(self.accumulation, (str, FloatFormat, torch.dtype)):
            object.__setattr__(
                self, "accumulation", as_format(self.accumulation, argument="accumulation")
            )
        elif self.accumulation is not None and not isinstance(self.accumulation, Accumulation):
            raise TypeError(
                "accumulation must be None (exact accumulation), a format (FloatFormat, preset "
                "name or dtype) or an mperror.ops.Accumulation; got "
                f"{type(self.accumulation).__name__}"
            )
        if self.fft_algorithm not in _FFT_ALGORITHMS:
            raise ValueError(
                f"fft_algorithm must be one of {_FFT_ALGORITHMS}, got {self.fft_algorithm!r}"
            )
        if self.compute not in _COMPUTE:
            raise ValueError(f"compute must be one of {_COMPUTE}, got {self.compute!r}")
        if self.storage not in _STORAGE:
            raise ValueError(f"storage must be one of {_STORAGE}, got {self.storage!r}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        object.__setattr__(self, "keep_fp32", _op_names(self.keep_fp32, "keep_fp32"))
        if self.keep_fp32_backward is not None:
            names = _op_names(self.keep_fp32_backward, "keep_fp32_backward")
            object.__setattr__(self, "keep_fp32_backward", names)

    @property
    def cast_dtype(self) -> torch.dtype:
        """The narrowest of float16, bfloat16, float32 and float64 that holds every value of
        the matmul format: where ``storage="autocast"`` keeps matmul-class results.

        >>> pure("e4m3fn").cast_dtype, pure("bf16").cast_dtype, pure("tf32").cast_dtype
        (torch.float16, torch.bfloat16, torch.float32)
        """
        return _cast_dtype(self.matmul)

    def format_of(self, op_class: OpClass) -> FloatFormat:
        """The format results of ``op_class`` are rounded to."""
        if op_class is OpClass.MATMUL:
            return self.matmul
        if op_class is OpClass.REDUCTION:
            return self.reduction
        if op_class is OpClass.FFT:
            return self.fft
        return self.elementwise

    def __str__(self) -> str:
        if self.name:
            return self.name
        formats = {self.elementwise, self.matmul, self.reduction, self.fft}
        body = (
            str(self.elementwise)
            if len(formats) == 1
            else f"elementwise={self.elementwise}, matmul={self.matmul}, "
            f"reduction={self.reduction}, fft={self.fft}"
        )
        return f"Policy({body}, mode={self.mode.value}, compute={self.compute})"


def pure(
    fmt: FormatLike,
    *,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    accumulation: FormatLike | Accumulation | None = None,
    fft_algorithm: str = "exact",
    compute: str = "fp64",
) -> Policy:
    """Every operation in ``fmt``: each floating-point result rounded to ``fmt`` once.

    >>> str(pure("fp16"))
    'pure(fp16)'
    """
    fmt = as_format(fmt)
    return Policy(
        elementwise=fmt,
        matmul=fmt,
        reduction=fmt,
        fft=fmt,
        mode=mode,
        accumulation=accumulation,
        fft_algorithm=fft_algorithm,
        compute=compute,
        name=f"pure({fmt})",
    )


def _op_names(value: Any, field: str) -> tuple[str, ...]:
    """``value`` checked as a collection of ATen operator names the emulator sees, as a sorted
    tuple (hashable, order-free equality, JSON-ready in to_dict())."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(
            f"{field} must be a collection of ATen op names such as {{'exp', '_softmax'}}, "
            f"got {value!r}"
        )
    names = list(value)
    bad = [repr(n) for n in names if not isinstance(n, str) or not n]
    if bad:
        raise TypeError(f"{field} must hold non-empty op names (str), got {', '.join(bad)}")
    # getattr, not hasattr: the namespace has attributes that are no operators ("name")
    unknown = [
        n
        for n in names
        if not isinstance(getattr(torch.ops.aten, n, None), torch._ops.OpOverloadPacket)
    ]
    if unknown:
        raise ValueError(
            f"{field} names must be ATen operators (torch.ops.aten.NAME); unknown: "
            f"{', '.join(map(repr, unknown))}"
        )
    inplace = [n for n in names if n.endswith("_") and hasattr(torch.ops.aten, n.rstrip("_"))]
    if inplace:
        listed = ", ".join(f"{n!r} (name {n.rstrip('_')!r})" for n in inplace)
        raise ValueError(
            f"{field} takes functional operator names; in-place and out= variants follow "
            f"their functional operator: {listed}"
        )
    unseen = [n for n in names if _decomposes(n)]
    if unseen:
        listed = ", ".join(
            f"{n!r} (it runs as {k!r})" if (k := _kernel_of(n)) else f"{n!r} (it runs as its parts)"
            for n in unseen
        )
        raise ValueError(
            f"{field} names operators the emulator never sees: they decompose above it, "
            f"into the operators to name instead: {listed}"
        )
    return tuple(sorted(set(names)))


# Dispatch keys of kernels that dense CPU or CUDA tensors can reach (anything else, such as
# nested-tensor or oneDNN-layout kernels, leaves a composite operator decomposing for them).
_DENSE_KEYS = ("CPU", "CUDA", "CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional")


@functools.lru_cache(maxsize=1024)
def _decomposes(name: str) -> bool:
    """Does ``name`` always decompose above the emulator on this build: every functional
    overload CompositeImplicitAutograd, none with a kernel for dense tensors?"""
    packet = getattr(torch.ops.aten, name)
    seen = False
    for overload in packet.overloads():
        if overload == "out" or overload.endswith("_out"):
            continue
        try:
            qualified = getattr(packet, overload).name()
        except RuntimeError:  # an overload the registry lists but cannot resolve
            continue
        has = functools.partial(torch._C._dispatch_has_kernel_for_dispatch_key, qualified)
        if not has("CompositeImplicitAutograd") or any(has(key) for key in _DENSE_KEYS):
            return False
        seen = True
    return seen


def _kernel_of(name: str) -> str | None:
    """The ATen operator that ``name``, an operator that decomposes above the emulator
    (:func:`_decomposes`), runs as where it has a ``_name`` or ``native_name`` twin: softmax
    into _softmax, layer_norm into native_layer_norm. ``None`` otherwise (it runs as its
    parts)."""
    return next((k for k in (f"_{name}", f"native_{name}") if hasattr(torch.ops.aten, k)), None)


# torch's CUDA autocast op lists, from pytorch/pytorch aten/src/ATen/autocast_mode.h (the macros
# AT_FORALL_LOWER_PRECISION_FP, AT_FORALL_FP32, AT_FORALL_FP32_SET_OPT_DTYPE and the
# fp32_append_dtype norm overloads, registered for AutocastCUDA in autocast_mode.cpp) and the
# table "CUDA Ops that can autocast to float16 / float32" in torch's docs (docs/source/amp.rst).
# Autocast wraps operators above autograd, before composite operators decompose; the emulator
# sees ATen operators below autograd. The names below are the ATen operators those entries run
# as on CPU: layer_norm -> native_layer_norm, softmax -> _softmax, nll_loss -> nll_loss_forward,
# cdist -> _cdist_forward, ...; plus the backward kernels of those forward kernels, because
# under CUDA autocast their inputs are float32 tensors and their backward runs in float32 too.
# Entries that are composite on every backend (cosine_similarity, l1_loss, kl_div,
# poisson_nll_loss, cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss,
# triplet_margin_loss, frobenius_norm, nuclear_norm, linalg_matrix_norm) are seen as their
# parts: the parts on this list run in float32, the rest on the dtypes they are given; under
# storage="autocast" the emulator also casts the inputs of these composites (and of
# torch.linalg.norm and torch.norm, whose matrix paths run linalg_matrix_norm and
# nuclear_norm; and of rms_norm, a composite on CPU in torch 2.13: pow, mean, add, rsqrt, mul;
# _fused_rms_norm, listed, where a backend has it) to float32 before they run, as autocast
# does (mode.py's _AUTOCAST_FUNCTIONS).
_AUTOCAST_FP32_FORWARD = (
    # AT_FORALL_FP32
    "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
    "reciprocal", "rsqrt", "sinh", "tan", "pow", "softplus", "native_layer_norm",
    "native_group_norm", "nll_loss_forward", "nll_loss2d_forward", "smooth_l1_loss",
    "huber_loss", "mse_loss", "multilabel_margin_loss_forward", "soft_margin_loss",
    "multi_margin_loss", "binary_cross_entropy_with_logits", "dist", "_pdist_forward",
    "_cdist_forward", "renorm", "logsumexp", "upsample_nearest1d", "_upsample_nearest_exact1d",
    "upsample_nearest2d", "_upsample_nearest_exact2d", "upsample_nearest3d",
    "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
    "_upsample_bilinear2d_aa", "upsample_trilinear3d", "upsample_bicubic2d",
    "_upsample_bicubic2d_aa",
    # AT_FORALL_FP32_SET_OPT_DTYPE and the norm overloads (fp32_append_dtype)
    "prod", "_softmax", "_log_softmax", "cumprod", "cumsum", "linalg_vector_norm", "sum",
    "norm",
    # cdist (AT_FORALL_FP32) as it runs for p = 2 beyond 25 rows (or with
    # compute_mode="use_mm_for_euclid_dist")
    "_euclidean_dist",
    # rms_norm (AT_FORALL_FP32), as the fused kernel it runs as where one exists (added below
    # where this build has one)
)  # fmt: skip
if not _decomposes("_fused_rms_norm"):  # a fused kernel on this build (CUDA, MPS, ...)
    _AUTOCAST_FP32_FORWARD += ("_fused_rms_norm",)
_AUTOCAST_FP32_BACKWARD = (
    "softplus_backward", "native_layer_norm_backward", "native_group_norm_backward",
    "nll_loss_backward", "nll_loss2d_backward", "smooth_l1_loss_backward",
    "huber_loss_backward", "mse_loss_backward", "multilabel_margin_loss_backward",
    "soft_margin_loss_backward", "multi_margin_loss_backward", "_pdist_backward",
    "_cdist_backward", "_softmax_backward_data", "_log_softmax_backward_data",
    "upsample_nearest1d_backward", "_upsample_nearest_exact1d_backward",
    "upsample_nearest2d_backward", "_upsample_nearest_exact2d_backward",
    "upsample_nearest3d_backward", "_upsample_nearest_exact3d_backward",
    "upsample_linear1d_backward", "upsample_bilinear2d_backward",
    "_upsample_bilinear2d_aa_backward", "upsample_trilinear3d_backward",
    "upsample_bicubic2d_backward", "_upsample_bicubic2d_aa_backward",
    "_fused_rms_norm_backward",
)  # fmt: skip

# Factories (no tensor input): autocast casts no factory, so their results stay float32 (or the
# dtype asked for); rounded to fmt, GradScaler's scale, made lazily by torch.full((), 65536.0),
# became fp16's inf, and every step was skipped.
_AUTOCAST_FACTORIES = (
    "full", "ones", "arange", "linspace", "logspace", "eye", "scalar_tensor", "rand", "randn",
)  # fmt: skip

#: ATen operators that :func:`autocast` keeps in float32 (torch's CUDA autocast fp32 lists, and
#: the factories, which autocast never casts).
AUTOCAST_FP32_OPS: tuple[str, ...] = tuple(
    sorted(_AUTOCAST_FP32_FORWARD + _AUTOCAST_FP32_BACKWARD + _AUTOCAST_FACTORIES)
)


def autocast(
    fmt: FormatLike = "fp16",
    *,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    accumulation: FormatLike | Accumulation | None = None,
    fft_algorithm: str = "exact",
    compute: str = "fp64",
) -> Policy:
    """torch's CUDA autocast, emulated: matmuls and convolutions in ``fmt``, its fp32 list in
    float32, everything else in the widest dtype of its inputs.

    torch.autocast on CUDA casts the floating inputs (all but float64 ones) of its
    ``lower_precision_fp`` operators (mm, bmm, addmm, baddbmm, addmv, addr, convolutions, prelu,
    attention; what ``linear``, ``matmul`` and ``einsum`` decompose into) to its dtype: here
    they are :attr:`OpClass.MATMUL` with format ``fmt``, their inputs rounded first, and their
    results are stored in :attr:`Policy.cast_dtype` (float16 for fp16 and for the FP8, FP6 and
    FP4 formats, bfloat16 for bf16), as autocast returns them. The functions on its lists that
    torch composes in Python (linear, matmul, einsum, the convolutions, attention, the RNN
    cells; the layer and group norms, softmax, log_softmax, softmin, the losses, ``normalize``,
    ``cdist``, cosine similarity and ``rms_norm`` of the fp32 list) get those casts first, above
    autograd, a float32 weight cast once per block as autocast's cast cache does (a cast made
    with grad enabled; one made under ``no_grad`` or inference mode is not kept): autograd
    undoes them, so a backward pass may run inside the block (emulated) or after it (natively,
    as in torch's AMP recipe). Their parts run as CUDA runs them, with autocast excluded: inside
    a lowered function the fp32 list's operators keep the dtype they get (einsum's sum of half
    products stays half), and inside an fp32 or promote function nothing is lowered (tensordot
    of float32 tensors is float32). Its fp32 list (exp, log, pow, softmax, log_softmax, layer
    and group norm, sum, prod, cumsum, norms, logsumexp, losses, upsampling; see
    :data:`AUTOCAST_FP32_OPS`) runs in float32 and returns float32 (softmax and log_softmax
    called with a ``dtype`` keep it, as autocast does), and the floating inputs of its promote
    list (addcdiv, addcmul, atan2, bilinear, cross, dot, grid_sample, index_put, scatter_add,
    tensordot) are cast to the widest dtype among them; factories (``full``, ``arange``,
    ``randn``, ...; autocast casts none) run as without emulation (one asked to make the cast
    dtype makes values of ``fmt``). Every other operator runs on the dtypes it is given
    (``storage="autocast"``, see :class:`Policy`): ``h + bias`` with ``h`` a half result and
    ``bias`` a float32 tensor returns float32, ``tanh(h)`` returns half, rounded to ``fmt``;
    operators on float32 tensors alone run natively. Autograd casts each gradient to the dtype
    of the tensor it is for, so gradients of half results are half and the float32 weights get
    float32 gradients, as under CUDA autocast; CUDA autocast is off in backward, so the fp32
    list's backward kernels (``mse_loss_backward``, ...) run in float32 and the rest on the
    dtypes they are given (a bias gradient's ``sum`` of a half gradient returns half).

    Where this differs from CUDA autocast: operators on float32 values compute with torch's CPU
    kernels, and half ones in float64 rounded once (CUDA's kernels round inside transcendental
    functions and accumulate matmuls in their own order). A format without a 16-bit dtype (tf32)
    keeps its results in float32, and then every float32 result is rounded to it. CPU torch has
    no half FFT: an FFT of a half tensor is refused, as on a CPU without emulation (CUDA's half
    FFT takes power-of-two sizes only). A listed function called from C++, or from inside
    another torch function (``nn.MultiheadAttention``'s ``multi_head_attention_forward``, the
    RNN modules, attention's CPU math path, which widens half inputs to float32), is seen as its
    parts, each treated as above: the lowered operators' casts are then the emulator's, below
    autograd, and where autograd records such an operator on an input of another floating dtype
    that requires grad, its result keeps that dtype (values of ``fmt``), so that a backward pass
    after the block runs (a multi-head attention's output is then float32 where CUDA autocast's
    is half; without grad it is half). A ``softmax`` called with a ``dtype`` from C++ returns
    float32, where autocast keeps the dtype asked for. ``torch.autocast(..., enabled=False)``
    inside the block is not seen: the region is emulated as the rest. Forward-mode tangents are
    not cast (a lowered layer's tangent can be float32 while its result is half).
    ``torch.is_autocast_enabled()`` is False inside the block, so code that branches on it
    (``torch.amp.custom_fwd``) runs as without autocast; so do the RNN modules' input checks
    (``nn.LSTM`` given a half input, a lowered layer's result, raises torch's dtype
    ValueError, which real autocast skips: give them float32 inputs). Activation checkpointing
    (``torch.utils.checkpoint``): the reentrant form recomputes its forward function as a
    forward pass and gives the gradients of the same program without checkpointing; the
    non-reentrant form raises torch's CheckpointError, because the autograd engine does not
    carry the Python-level casts into the recomputation.

    >>> p = autocast("bf16")
    >>> p.matmul.name, "_softmax" in p.keep_fp32, "mean" in p.keep_fp32, p.cast_dtype
    ('bf16', True, False, torch.bfloat16)
    """
    fmt = as_format(fmt)
    return Policy(
        elementwise=fmt,
        matmul=fmt,
        reduction=fmt,
        fft=fmt,
        mode=mode,
        accumulation=accumulation,
        fft_algorithm=fft_algorithm,
        keep_fp32=AUTOCAST_FP32_OPS,
        keep_fp32_backward=tuple(sorted(_AUTOCAST_FP32_BACKWARD + _AUTOCAST_FACTORIES)),
        compute=compute,
        storage="autocast",
        name=f"autocast({fmt})",
    )


def as_policy(policy: Policy | FormatLike, *, argument: str = "policy") -> Policy:
    """A Policy as is; a format-like argument means ``pure(fmt)``."""
    if isinstance(policy, Policy):
        return policy
    try:
        return pure(as_format(policy, argument=argument))
    except TypeError:
        raise TypeError(
            f"{argument} must be a Policy (see mperror.emulate.pure / autocast) or a format "
            f"(a FloatFormat, a preset name such as 'fp16', or a torch dtype); "
            f"got {type(policy).__name__}"
        ) from None
