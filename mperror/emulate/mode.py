"""``with mperror.emulate(policy): ...``: run any torch code as if computed in a chosen format.

The emulator is a :class:`~torch.utils._python_dispatch.TorchDispatchMode`: it sees every ATen
operator below autograd, so the operators autograd runs in backward and double backward go
through it as well as the forward ones, and so do those of torch.func's transforms (vmap,
forward-mode jvp, hessian; the primitives they run on meta tensors to propagate shapes carry no
values and pass untouched). For each operator it looks up (once, cached per
``OpOverload``) its :class:`~mperror.emulate.policy.OpClass` and then:

* views and metadata operators run natively and are returned untouched (aliasing preserved);
* data-movement operators (clone, cat, index, where, relu, comparisons, ...) run natively, which
  is exact, and their floating outputs are rounded;
* random operators and factories run natively (so they draw exactly what they would without
  emulation) and their outputs are rounded;
* arithmetic (elementwise, matmul-class, reductions, FFTs, anything unclassified) runs in the
  working precision, float64 by default: floating inputs are converted to float64 (complex to
  complex128), matmul-class inputs first rounded to the policy's matmul format, dtype arguments
  widened; every floating output is rounded once to the policy format of the operator's class
  and stored in the dtype the operator would have returned without emulation;
* operators named in ``policy.keep_fp32`` run in float32;
* with ``policy.storage == "autocast"`` (:func:`~mperror.emulate.autocast`) results are stored
  as torch.autocast stores them: matmul-class results in the policy's ``cast_dtype`` (half),
  ``keep_fp32`` results in float32, everything else in the dtype torch gives it, rounded to
  the format of that dtype; an operator with no tensor of the cast dtype (nor the dtype as an
  argument) runs natively, as torch's kernels run it without autocast; and the functions on
  autocast's lists that torch composes in Python (linear, matmul, einsum, convolutions,
  prelu, attention, the RNN cells, the composite losses of the fp32 list) get autocast's input
  casts first, above autograd, through a TorchFunctionMode that acts while its block is the
  innermost one (a float32 weight cast once per block, as autocast's cast cache does);
* a fused kernel torch has for float32 and bfloat16 only (oneDNN's LSTM layer, which
  ``nn.LSTM`` runs on a CPU) runs in float32, its inputs and outputs rounded (it is
  matmul-class) but not the gates inside. With torch's global switch
  ``torch.backends.mkldnn.enabled = False`` torch runs the LSTM as separate operators, each
  emulated;
* attention runs as torch's math backend computes it: while a block is open, torch's fused
  attention kernels (flash, memory-efficient, cuDNN), which have no float64 version on a GPU,
  and the one-operator fast path of ``nn.MultiheadAttention`` and
  ``nn.TransformerEncoderLayer`` are switched off (process-wide torch settings, restored when
  the last block closes), so attention reaches the emulator as its separate operators (the
  scaled ``q k^T`` products, softmax, the product with ``v``), each emulated by its class, on
  every device. A fused kernel a user selects inside the block (``sdpa_kernel``) is emulated as
  one matmul-class operator where torch has it in float64 (on a CPU);
* with ``policy.accumulation`` or ``policy.fft_algorithm="staged"``, matrix products, sums and
  FFTs are computed by :mod:`mperror.ops` (see :mod:`mperror.emulate.routed`);
* mutated arguments (in-place and ``out=`` variants) receive the rounded result in place, and the
  operator returns them, as the native operator does. The whole result is rounded: on a tensor
  holding values outside the format (made outside the block), ``index_put_`` or
  ``masked_fill_`` also rounds the elements it did not write, while a slice assignment writes
  through a view and rounds the slice only.

Exactness of the default working precision. A result computed in float64 and rounded once to a
format of precision ``p`` is the correctly rounded exact result whenever float64 computes it
exactly, or, for the nearest modes, correctly rounded with at least ``2p + 2`` bits (then the
second rounding is innocuous: Figueroa, "When is double rounding innocuous?", SIGNUM 1995). For
values of a format with ``p <= 25``, in every deterministic mode:

* ``*`` is exact in float64 (at most ``2p`` bits; any float32 inputs too);
* ``/`` and ``sqrt`` are correctly rounded: their exact results stay more than a float64 ulp
  away from every value and midpoint of the format (the separation lemma of
  :mod:`mperror.ops.elementwise`);
* ``+ -`` (``add``, ``sub``, ``rsub``, in place too, ``alpha`` a power of two): under the
  nearest modes the float64 sum is correctly rounded by Figueroa's theorem; under the other
  modes a float64 sum of values far apart is not enough (``1 + 2**-100`` is 1.0 in float64,
  and bf16's correctly rounded sum toward positive is ``1 + 2**-7``), so they are computed as
  the round-to-odd float64 sum from TwoSum and then rounded, which is exact in every mode and
  for any operands (:func:`_exact_sum`; exact zero sums take IEEE's sign, ``-0`` toward
  negative);
* fused operators (addcmul, addcdiv, lerp, ``add`` with another ``alpha``) are evaluated in
  float64 and rounded once: correctly rounded whenever float64 evaluates them exactly (small
  exponent spread, as for fp16 values and power-of-two scalars); otherwise the float64 result
  can land on a value of the format (which misleads the directed modes) or on a midpoint (which
  misleads the nearest ones) when the exact result lies within a float64 ulp of it, and then is
  one spacing off. :func:`mperror.ops.fma` is the correctly rounded fused multiply-add;
* transcendental functions: torch's float64 kernels are accurate to about one float64 ulp, so
  the rounded result is the correctly rounded one unless the exact value lies within that
  distance of a midpoint of the format, and never more than one spacing of the format off;
* matmuls and reductions sum in float64 ("exact accumulation": see
  :class:`~mperror.emulate.Policy`): within ``gamma_n(2**-53)`` of the exact sum, which
  rounds to the correctly rounded one except where the exact sum lies that close to a value or
  a midpoint of the format. The directed modes meet that case whenever terms far apart are
  summed (``[1, 2**-100]`` sums to 1.0 in float64, so toward positive to 1.0 and not to
  bf16's ``1 + 2**-7``). A policy with an ``accumulation`` format routes sums and matrix
  products through :mod:`mperror.ops` instead, where every partial sum is correctly rounded
  to that format by ``mode``.

Operands that are not values of the format (tensors made outside the block, Python scalars,
which enter at full float64 precision) are outside the statements above, where they are
stated for values of the format: ``x * 0.1`` is rounded by float64 first, and under the
nearest modes a float64 sum with an operand far below the other can land on a midpoint of the
format that the exact sum is not on (float32 ``1 + 2**-11`` plus ``2**-60`` gives 1.0 under
fp16, whose correctly rounded sum is ``1 + 2**-10``; float64 holds the exact sum of two
float32 values whose exponents differ by at most 28, and then the sum is correctly rounded).
In the directed and odd modes sums stay correctly rounded, through the round-to-odd sum.
(:mod:`mperror.ops` rounds its operands to the format first, then computes correctly rounded
results of those.) Integer tensors that
become floating values (``.float()``, ``copy_``, ``where``, ``cat``, ``stack``, and integer-only
operators with floating results such as ``clamp`` to a float bound or ``copysign``) convert
to float64 first, exactly up to ``2**53``, and are rounded once from there; so are the values
factories compute (``linspace``, ``logspace``, the window functions).

Known gaps: ``torch.tensor([0.1])`` inside a block reaches the emulator as a view of Python
data and keeps its float32 value until an operator rounds it (as tensors made outside do);
GradScaler's unscale (``_amp_foreach_non_finite_check_and_unscale_``) runs natively, so under a
pure policy the unscaled gradients are not rounded to the format; ``rrelu`` in training mode
multiplies by its noise natively before the noise is rounded, so its output and its gradient
use slightly different slopes.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import mperror.rounding
from mperror import formats
from mperror._checks import is_real
from mperror.emulate import routed
from mperror.emulate.classify import OpInfo, classify
from mperror.emulate.policy import _DENSE_KEYS, OpClass, Policy, as_policy
from mperror.emulate.report import EmulationReport
from mperror.formats import FloatFormat, FormatLike, Overflow, format_of_dtype
from mperror.ops._common import to_odd, two_sum
from mperror.rounding import _EXPLICIT, RoundMode

__all__ = ["Emulation", "emulate"]

# Depth of emulation handlers running in this thread. A handler's own torch calls reach the
# modes further out on torch's mode stack; an outer emulation must let them through untouched,
# or it would round the inner emulation's float64 intermediates (innermost wins).
_ACTIVE = threading.local()

_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
# Exact data operators on real tensors that compute (hypot, a division) on complex ones.
_COMPLEX_ARITHMETIC = frozenset({"abs", "sgn"})
_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def emulate(
    policy: Policy | FormatLike,
    *,
    generator: torch.Generator | None = None,
    compiled: bool = False,
    count: bool = True,
) -> Emulation:
    """A context manager that runs torch code as if computed under ``policy``.

    Args:
        policy: a :class:`~mperror.emulate.Policy`, or a format (``"fp16"``, a FloatFormat, a
            dtype), which means ``pure(fmt)``.
        generator: the torch.Generator stochastic rounding draws from (on the device of the
            tensors). ``None`` uses torch's default generator, which then also shifts the
            program's own random numbers; pass one to keep them apart.
        compiled: round with ``mperror.round(..., compiled=True)``, the fused kernel (the first
            call per format, mode and dtype compiles it, 5-20 s). Its per-call cost is about the
            eager one on tensors of a few thousand values; it pays off on large tensors only.
            Stochastic modes then use the fused kernel's own random stream (see the
            ``compiled`` argument of :func:`mperror.round`), not the eager path's bits.
        count: collect the value counts of :meth:`Emulation.report` (a few reductions per
            operator); operator counts are always kept.

    Inside the block every floating-point ATen operator is emulated (see the module docstring
    for what each class of operator does, and for exactly which results are correctly rounded).
    Importing mperror changes nothing; the emulation is active only inside the block, on the
    thread that entered it (autograd's backward pass, run from inside the block, included);
    nested blocks work, the innermost winning; an exception leaves it as entered. The block can
    be entered again later: the report accumulates. Under ``torch.inference_mode`` (and on
    inference tensors) the same operators are emulated as with autograd on: composite operators
    (matmul, einsum, the FFTs), which torch decomposes at the autograd keys that inference mode
    skips, are decomposed by the emulator.

    >>> import torch, mperror
    >>> x = torch.tensor([1.0, 2.0**-11, 70000.0])
    >>> with mperror.emulate("fp16") as em:
    ...     y = (x + 1) * 2
    >>> y.tolist(), y.dtype
    ([4.0, 2.0, inf], torch.float32)
    >>> em.report().overflowed
    1
    """
    return Emulation(as_policy(policy), generator=generator, compiled=compiled, count=count)


class Emulation:
    """The context manager :func:`emulate` returns; :meth:`report` summarises what ran."""

    def __init__(
        self,
        policy: Policy,
        *,
        generator: torch.Generator | None = None,
        compiled: bool = False,
        count: bool = True,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a Policy, got {type(policy).__name__}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        for flag, value in (("compiled", compiled), ("count", count)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, got {value!r}")
        self.policy = policy
        self._engine = _Engine(policy, generator=generator, compiled=compiled, count=count)
        self._blocks: list[contextlib.ExitStack] = []  # one per entry, innermost last

    def __enter__(self) -> Emulation:
        # Entered in order, left in reverse (also when entering fails part way).
        with contextlib.ExitStack() as stack:
            _FUSED_KERNELS.switch_off()
            stack.callback(_FUSED_KERNELS.restore)
            if self._engine.cast is not None:
                stack.enter_context(_AutocastFunctions(self._engine))
            stack.enter_context(_Mode(self._engine))
            blocks = _innermost()
            blocks.append(self._engine)
            stack.callback(blocks.pop)
            self._blocks.append(stack.pop_all())
        return self

    def __exit__(self, *exc: object) -> None:
        self._blocks.pop().__exit__(*exc)

    def report(self) -> EmulationReport:
        """Operator counts and what rounding did so far (see :class:`EmulationReport`)."""
        return self._engine.report()


class _FusedKernelSwitches:
    """torch's fused attention kernels, off while any emulation block is open in the process.

    torch's flash, memory-efficient and cuDNN attention kernels have no float64 version on a
    GPU, and the fast path of ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer``
    (eval mode without autograd) runs a whole layer as one operator, which would be rounded
    once at its end. With them off, torch computes attention with its math backend, as
    separate operators the emulator sees. The switches are process-wide torch settings: the
    first block to open saves them, the last to close restores them (a count under a lock, so
    blocks on several threads, closing in any order, leave them as they were); meanwhile other
    threads' attention also takes the math backend.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._saved: list[bool] = []

    @staticmethod
    def _switches() -> list[tuple[Callable[[], bool], Callable[[bool], None], bool]]:
        """(read, write, value inside a block) for each switch this torch has (cuDNN attention
        and the MHA fast-path switch are younger than some torch versions mperror runs on)."""
        names = [
            ("cuda", "flash_sdp_enabled", "enable_flash_sdp", False),
            ("cuda", "mem_efficient_sdp_enabled", "enable_mem_efficient_sdp", False),
            ("cuda", "cudnn_sdp_enabled", "enable_cudnn_sdp", False),
            ("cuda", "math_sdp_enabled", "enable_math_sdp", True),
            ("mha", "get_fastpath_enabled", "set_fastpath_enabled", False),
        ]
        switches = []
        for module, read, write, value in names:
            backend = getattr(torch.backends, module, None)
            if hasattr(backend, read) and hasattr(backend, write):
                switches.append((getattr(backend, read), getattr(backend, write), value))
        return switches

    def switch_off(self) -> None:
        with self._lock:
            if self._open == 0:
                switches = self._switches()
                self._saved = [get() for get, _, _ in switches]
                for _, put, value in switches:
                    put(value)
            self._open += 1

    def restore(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0:
                for (_, put, _), value in zip(self._switches(), self._saved, strict=True):
                    put(value)


_FUSED_KERNELS = _FusedKernelSwitches()


def _checkpoint_codes() -> frozenset:
    """The code of torch.utils.checkpoint's recomputations of a forward function: the
    reentrant CheckpointFunction.backward and the non-reentrant recompute_fn (empty where this
    torch has other names, and then a recomputation counts as backward)."""
    import types

    import torch.utils.checkpoint as checkpoint

    codes = set()
    function = getattr(checkpoint, "CheckpointFunction", None)
    if function is not None:
        codes.add(function.backward.__code__)
    generator = getattr(checkpoint, "_checkpoint_without_reentrant_generator", None)
    if generator is not None:
        codes.update(
            c
            for c in generator.__code__.co_consts
            if isinstance(c, types.CodeType) and c.co_name == "recompute_fn"
        )
    return frozenset(codes)


_RECOMPUTE_CODES = _checkpoint_codes()
# Where a backward pass starts in Python: a frame of these above an operator, before any
# recomputation's, means autograd runs the operator as part of a backward formula.
_BACKWARD_CODES = frozenset({torch.autograd.backward.__code__, torch.autograd.grad.__code__})


def _recomputing() -> bool:
    """Is the operator running (inside a backward pass) as part of torch.utils.checkpoint's
    recomputation of a forward function, which autocast runs as a forward pass? The Python
    frames above it are searched up to the first backward call or recomputation."""
    if not _RECOMPUTE_CODES:
        return False
    frame = sys._getframe(2)
    for _ in range(200):
        if frame is None:
            return False
        code = frame.f_code
        if code in _RECOMPUTE_CODES:
            return True
        if code in _BACKWARD_CODES:
            return False
        frame = frame.f_back
    return False


# The engines of the emulation blocks open in this thread, innermost last.
_BLOCKS = threading.local()


def _innermost() -> list:
    blocks = getattr(_BLOCKS, "engines", None)
    if blocks is None:
        blocks = _BLOCKS.engines = []
    return blocks


# Functions whose inputs storage="autocast" casts before they run, as torch.autocast does: they
# check their inputs' dtypes, or decompose into parts autocast would not all cast, above the
# operators the emulator sees. "lower": CUDA autocast's lower-precision list (a convolution's
# half input and float32 bias, prelu, attention, the RNN cells); "fp32": composites on its fp32
# list (losses, cosine similarity, rms_norm), whose parts are not all on it; "dtype" and
# "promote": below.
_AUTOCAST_LOWER_FUNCTIONS = (
    "conv1d", "conv2d", "conv3d", "conv_tbc", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "prelu", "scaled_dot_product_attention", "lstm_cell", "gru_cell",
    "rnn_tanh_cell", "rnn_relu_cell", "linear", "matmul", "mm", "bmm", "addmm", "baddbmm",
    "addbmm", "addmv", "addr", "mv", "chain_matmul", "einsum",
)  # fmt: skip
# ... and the Tensor methods and torch.linalg functions of the same list (the matmul-class
# operators the emulator sees are lowered too; cast here, above autograd, the casts are
# autograd's to undo, so a backward run after the block closes gets matching dtypes)
_AUTOCAST_LOWER_METHODS = (
    "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm", "addbmm", "addmv",
    "addr", "mv",
)  # fmt: skip
_AUTOCAST_LOWER_LINALG = ("matmul", "multi_dot", "vecdot")
_AUTOCAST_FP32_FUNCTIONS = (
    "cosine_similarity", "l1_loss", "kl_div", "poisson_nll_loss", "cosine_embedding_loss",
    "hinge_embedding_loss", "margin_ranking_loss", "triplet_margin_loss", "rms_norm",
    "layer_norm", "group_norm", "cross_entropy", "nll_loss", "mse_loss", "smooth_l1_loss",
    "huber_loss", "soft_margin_loss", "multilabel_margin_loss", "multi_margin_loss",
    "binary_cross_entropy_with_logits", "normalize", "cdist", "pdist", "norm", "nuclear_norm",
    "frobenius_norm",
)  # fmt: skip
# linalg_matrix_norm (the fp32 list) is composite: its check refuses half inputs before any
# operator reaches the emulator, as torch.linalg.norm's and torch.norm's matrix paths do
_AUTOCAST_FP32_LINALG = ("matrix_norm", "norm")


def _functions(names: tuple[str, ...], target: str) -> dict[Any, str]:
    """The functions of torch.nn.functional (else torch) of those names that this torch has."""
    found = {}
    for name in names:
        f = getattr(torch.nn.functional, name, None) or getattr(torch, name, None)
        if f is not None:
            found[f] = target
    return found


# softmax, log_softmax and softmin (the fp32 list's "set optional dtype" entries that reach the
# emulator as _softmax / _log_softmax, without their dtype argument): autocast computes them in
# float32 unless the call names a dtype, which it keeps.
_AUTOCAST_DTYPE_FUNCTIONS = ("softmax", "log_softmax", "softmin")
# autocast's "promote" list: floating inputs cast to the widest dtype among them first
_AUTOCAST_PROMOTE_FUNCTIONS = (
    "addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "vdot", "grid_sample",
    "index_put", "scatter_add", "tensordot",
)  # fmt: skip
_AUTOCAST_PROMOTE_METHODS = (
    "addcdiv", "addcmul", "atan2", "cross", "dot", "vdot", "index_put", "scatter_add",
)  # fmt: skip
_AUTOCAST_FUNCTIONS: dict[Any, str] = {
    **_functions(_AUTOCAST_LOWER_FUNCTIONS, "lower"),
    **{getattr(torch.Tensor, name): "lower" for name in _AUTOCAST_LOWER_METHODS},
    **{
        getattr(torch.linalg, name): "lower"
        for name in _AUTOCAST_LOWER_LINALG
        if hasattr(torch.linalg, name)
    },
    **_functions(_AUTOCAST_FP32_FUNCTIONS, "fp32"),
    **{getattr(torch.linalg, name): "fp32" for name in _AUTOCAST_FP32_LINALG},
    torch.Tensor.norm: "fp32",
    **_functions(_AUTOCAST_PROMOTE_FUNCTIONS, "promote"),
    **{
        getattr(torch, name): "promote"
        for name in _AUTOCAST_PROMOTE_FUNCTIONS
        if hasattr(torch, name)
    },
    **{getattr(torch.Tensor, name): "promote" for name in _AUTOCAST_PROMOTE_METHODS},
    **({torch.linalg.cross: "promote"} if hasattr(torch.linalg, "cross") else {}),
    **_functions(_AUTOCAST_DTYPE_FUNCTIONS, "dtype"),
    **{getattr(torch, name): "dtype" for name in _AUTOCAST_DTYPE_FUNCTIONS if hasattr(torch, name)},
    **{
        getattr(torch.Tensor, name): "dtype"
        for name in _AUTOCAST_DTYPE_FUNCTIONS
        if hasattr(torch.Tensor, name)
    },
}


class _AutocastFunctions(torch.overrides.TorchFunctionMode):
    """storage="autocast": the casts torch.autocast makes before the functions of
    :data:`_AUTOCAST_FUNCTIONS` (floating inputs but float64 ones, to the cast dtype or to
    float32), while its block is the innermost one open. Like autocast's cast cache, a
    float32 leaf that requires grad (a weight) is cast once per block (with grad enabled) and
    the cast reused, so the gradients of its uses add up in the cast dtype before autograd
    casts them back."""

    def __init__(self, engine: _Engine) -> None:
        super().__init__()
        self.engine = engine
        self.cache: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}

    def __exit__(self, *exc: object) -> None:
        self.cache.clear()
        return super().__exit__(*exc)

    def _cast(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        # Only casts autograd records: one made under no_grad or inference mode has no
        # grad_fn, and reused in a later forward it would cut the weight out of the graph.
        cached = (
            t.dtype is torch.float32
            and t.is_leaf
            and t.requires_grad
            and torch.is_grad_enabled()
            and not torch.is_inference_mode_enabled()
        )
        if cached and dtype is not torch.float32:
            hit = self.cache.get(id(t))
            if hit is not None and hit[0] is t and hit[1] == t._version and hit[2].dtype is dtype:
                return hit[2]
            r = t.to(dtype)
            self.cache[id(t)] = (t, t._version, r)
            return r
        return t.to(dtype)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = _AUTOCAST_FUNCTIONS.get(func)
        if target is None or getattr(_EXPLICIT, "depth", 0):
            return func(*args, **kwargs)
        blocks = _innermost()
        if (
            not blocks
            or blocks[-1] is not self.engine
            or kwargs.get("out") is not None  # autocast leaves out= variants alone
        ):
            return func(*args, **kwargs)
        if target == "dtype":
            named = kwargs.get("dtype") is not None or any(isinstance(a, torch.dtype) for a in args)
            if named:  # the fp32-list kernel it runs as keeps that dtype
                return _excluded(func, args, kwargs, keep_dtype=True)
            target = "fp32"  # cast above autograd, so that a backward after the block agrees
        if target == "lower":
            dtype = self.engine.cast
        elif target == "fp32":
            dtype = torch.float32
        else:  # "promote": the widest floating dtype among the inputs
            dtypes = {
                t.dtype
                for a in itertools.chain(args, kwargs.values())
                for t in (a if isinstance(a, (list, tuple)) else (a,))
                if isinstance(t, torch.Tensor) and t.is_floating_point()
            }
            dtype = functools.reduce(torch.promote_types, dtypes) if dtypes else None

        def cast(t: torch.Tensor) -> torch.Tensor:
            if t.is_floating_point() and t.dtype not in (torch.float64, dtype):
                return self._cast(t, dtype)
            return t

        if dtype is not None:
            args = _map_tensors(cast, args)
            kwargs = {k: _map_tensors(cast, v) for k, v in kwargs.items()}
        # autocast runs a listed operator with autocast excluded: the parts of a lowered
        # function run on the dtypes they get (einsum's sum of half products stays half), and
        # those of an fp32 or promote function are not lowered (a tensordot's mm, a cdist's)
        if target == "lower":
            return _excluded(func, args, kwargs, keep_dtype=True)
        return _excluded(func, args, kwargs, unlowered=True)


def _excluded(func, args, kwargs, **flags: bool):
    """``func`` run with the thread's ``_BLOCKS`` flags set (``keep_dtype``: the fp32 list's
    operators run on the dtypes they get; ``unlowered``: matmul-class operators are not
    lowered), the outer values restored after."""
    outer = {name: getattr(_BLOCKS, name, False) for name in flags}
    for name, value in flags.items():
        setattr(_BLOCKS, name, value)
    try:
        return func(*args, **kwargs)
    finally:
        for name, value in outer.items():
            setattr(_BLOCKS, name, value)


class _Mode(TorchDispatchMode):
    def __init__(self, engine: _Engine) -> None:
        super().__init__()
        self.engine = engine

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            return self._dispatch(func, args, kwargs)
        except Exception as error:
            layouts = {
                "nested" if t.is_nested else str(t.layout)
                for t in _leaves([args, list(kwargs.values())])
                if isinstance(t, torch.Tensor) and (t.is_nested or t.layout is not torch.strided)
            }
            if not layouts or isinstance(error, _NotDense):
                raise
            raise _not_dense(", ".join(sorted(layouts)), func) from error

    def _dispatch(self, func, args, kwargs):
        composite = _COMPOSITE.get(func)
        if composite is None:
            composite = _COMPOSITE[func] = _decomposes_here(func)
        if composite:
            # Such operators (matmul, einsum, fft_rfft, ...) decompose at the autograd keys,
            # which inference mode (and inference tensors) skip: decompose them here, so the
            # emulator sees the same ATen operators as with autograd on.
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        return self.engine.dispatch(func, args, kwargs)


class _NotDense(TypeError):
    """A tensor of a layout the emulator does not handle (sparse, nested)."""


def _not_dense(layout: str, func: Any = None) -> _NotDense:
    where = "" if func is None else f" (operator {func})"
    return _NotDense(
        f"mperror.emulate handles dense (strided) tensors only, and met a {layout} tensor"
        f"{where}: run that part outside the block, or use dense tensors (nn.Embedding with"
        " sparse=False; padded batches instead of torch.nested)"
    )


def _decomposes_here(func) -> bool:
    """Does ``func`` reach the mode only where torch skipped its decomposition: a
    CompositeImplicitAutograd kernel and no kernel for dense tensors? (silu_backward has both:
    with autograd on it reaches the mode whole, and must under inference mode too.)"""
    name = func.name()
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    return has(name, "CompositeImplicitAutograd") and not any(has(name, k) for k in _DENSE_KEYS)


# operator -> whether the mode decomposes it (_decomposes_here)
_COMPOSITE: dict[Any, bool] = {}


_FAST_DTYPES = (torch.float32, torch.float64)
_KEEP, _ROUND, _WIDEN = "keep", "round", "widen"  # what _round does for a (format, dtype)
# How an entry is handled: natively, in the working precision, natively then rounded (data,
# sources), in float32, by mperror.ops, or in float32 then rounded (kernels without float64);
# and which fast path its shape allows.
_NATIVE, _WIDE, _DATA, _SOURCE, _FP32 = "native", "wide", "data", "source", "fp32"
_ROUTED, _NARROW = "routed", "narrow"
# A keep_fp32 operator in forward under storage="autocast": inputs cast to float32, as
# autocast casts them, and its results returned as torch's kernel gives them.
_CAST32 = "cast32"

# Fused kernels torch has for float32 and bfloat16 only (oneDNN's LSTM layer, which nn.LSTM
# runs on a CPU when oneDNN is enabled), and the fused RNN layers of cuDNN and MIOpen (a whole
# layer in one call, like oneDNN's): computed in float32 from rounded inputs, their outputs
# rounded once.
_FLOAT32_KERNELS = frozenset(
    {
        "mkldnn_rnn_layer", "mkldnn_rnn_layer_backward", "_cudnn_rnn", "_cudnn_rnn_backward",
        "miopen_rnn", "miopen_rnn_backward",
    }
)  # fmt: skip
# Matmul-class operators on CUDA autocast's "promote" list or on none (bilinear's _trilinear):
# under storage="autocast" they run on the dtypes they are given, their inputs not cast.
_PROMOTED = frozenset({"dot", "vdot", "_trilinear"})
_FUNCTIONAL, _INPLACE = "functional", "inplace"


class _Entry:
    """How one operator is handled under one policy (built once per operator)."""

    __slots__ = ("calls", "floating", "fmt", "impl", "info", "kind", "round_inputs", "shape")

    def __init__(
        self,
        info: OpInfo,
        kind: str,
        fmt: FloatFormat | None,
        round_inputs: bool,
        impl: Callable | None = None,
    ):
        self.info = info
        self.kind = kind
        self.fmt = fmt
        self.round_inputs = round_inputs
        self.impl = impl  # computes in place of the operator (same arguments), or None
        self.calls = 0
        self.floating = False  # an unclassified operator has given a floating result
        # Operators the fast paths handle: functional ones whose output dtype follows their
        # inputs', and in-place methods (self written and returned).
        if info.simple:
            self.shape = _FUNCTIONAL
        elif (
            info.mutated == ((0, "self", False),)
            and info.returns_mutated == (0,)
            and not info.dtype_args
        ):
            self.shape = _INPLACE
        else:
            self.shape = None


# The overloads the routes take (functional ones; in-place and out= variants, convolutions and
# the other matmul-class operators keep exact accumulation).
_ROUTED_OVERLOADS = {
    **{(name, "default"): routed.MATMULS for name in routed.MATMULS},
    ("sum", "default"): routed.REDUCTIONS,
    ("sum", "dim_IntList"): routed.REDUCTIONS,
    ("mean", "default"): routed.REDUCTIONS,
    ("mean", "dim"): routed.REDUCTIONS,
    **{(name, "default"): routed.TRANSFORMS for name in routed.TRANSFORMS},
}


# Sums and differences whose float64 evaluation a directed mode must not see rounded to nearest.
_SUM_OVERLOADS = {
    (f"aten::{name}", overload)
    for name in ("add", "add_", "sub", "sub_", "rsub")
    for overload in ("Tensor", "Scalar")
}


def _exact_sum(func, name: str, toward_negative: bool) -> Callable:
    """``func`` (add, sub or rsub, functional or in place) on float64 arguments, computed as
    ``RO53`` of the exact result: TwoSum gives ``s + e == x + y`` exactly, and ``s`` moved one
    float64 step toward ``e`` when ``e != 0`` and ``s``'s last bit is even (round to odd, as in
    :func:`mperror.ops.add`). By Boldo and Melquiond's theorem (``p + 2 <= 53``) one rounding
    of that value to a ``p``-bit format is the correctly rounded sum in every mode; the float64
    sum alone is not (``1 + 2**-100`` is 1.0 in float64, which toward positive keeps, while
    bf16's correctly rounded result is ``1 + 2**-7``). Exact zero sums get IEEE's sign for
    ``toward_negative``. Arguments the trick does not cover (integer or complex tensors, an
    ``alpha`` other than a power of two) are computed by ``func`` itself."""
    negate = name in ("sub", "rsub")
    inplace = func._schema.arguments[0].alias_info is not None

    def operand(v, like: torch.Tensor):
        if isinstance(v, torch.Tensor):
            return v if v.dtype is torch.float64 else None
        if not is_real(v):
            return None
        if isinstance(v, int) and abs(v) > 2**53:
            return None
        return torch.tensor(float(v), dtype=torch.float64, device=like.device)

    def run(a, b, *, alpha=1):
        first, second = (b, a) if name == "rsub" else (a, b)
        factor = -alpha if negate else alpha
        like = a if isinstance(a, torch.Tensor) else b
        x, y = operand(first, like), operand(second, like)
        exact_factor = (
            is_real(factor)
            and factor != 0
            and math.isfinite(factor)
            and abs(math.frexp(factor)[0]) == 0.5
        )
        if x is None or y is None or not exact_factor:
            return func(a, b, alpha=alpha)
        y = y * factor if factor != 1 else y  # a power of two: exact
        s, e = two_sum(x, y)
        odd = to_odd(s, e)
        if toward_negative:
            odd = torch.where(s == 0, -((-x) + (-y)), odd)
        if inplace:
            return a.copy_(odd)
        return odd

    return run


def _format_aware(func, name: str, fmt: FloatFormat) -> Callable:
    """``nan_to_num`` or ``nextafter`` (any overload) as the format has them: computed on a wide
    copy, their defaults would be the wide dtype's (``nan_to_num``'s ``±inf`` become float64's
    largest value, which rounds to inf; ``nextafter(1, 2)`` moves one float64 step, which
    rounds back to 1). Here ``±inf`` become the format's ``±max``, and ``nextafter`` steps to
    the neighbouring value of the format (the float64 step rounded toward ``other``)."""
    if name == "nan_to_num":

        def nan_to_num(a, nan=None, posinf=None, neginf=None, **kwargs):
            posinf = fmt.max if posinf is None else posinf
            neginf = -fmt.max if neginf is None else neginf
            return func(a, nan, posinf, neginf, **kwargs)

        return nan_to_num
    inplace = func._schema.arguments[0].alias_info is not None

    def nextafter(a, b, **kwargs):
        y = torch.nextafter(a, b)
        if formats._holds(format_of_dtype(y.dtype), fmt):
            up = mperror.rounding.round(y, fmt, RoundMode.TOWARD_POSITIVE)
            down = mperror.rounding.round(y, fmt, RoundMode.TOWARD_NEGATIVE)
            y = torch.where(b > a, up, torch.where(b < a, down, y))
        target = kwargs.get("out", a if inplace else None)
        return y if target is None else target.copy_(y)

    return nextafter


_FORMAT_AWARE = frozenset({"nan_to_num", "nextafter"})


class _Engine:
    """The per-emulation state: policy, one entry per operator, counters."""

    def __init__(
        self,
        policy: Policy,
        *,
        generator: torch.Generator | None,
        compiled: bool,
        count: bool,
    ) -> None:
        self.policy = policy
        self.mode: RoundMode = policy.mode
        self.generator = generator
        self.compiled = compiled
        self.count = count
        self.real, self.complex = (
            (torch.float64, torch.complex128)
            if policy.compute == "fp64"
            else (torch.float32, torch.complex64)
        )
        self._keep_fp32 = frozenset(policy.keep_fp32)
        # storage="autocast": the dtype of the low-precision tensors (None: the caller's dtypes)
        self.cast = policy.cast_dtype if policy.storage == "autocast" else None
        backward = policy.keep_fp32_backward
        self._keep_fp32_backward = None if backward is None else frozenset(backward)
        self.entries: dict[Any, _Entry] = {}
        # Entries for operators run by autograd's backward, when the policy treats them apart.
        self.backward_entries: dict[Any, _Entry] = {}
        self._plans: dict[tuple, tuple] = {}  # (id(fmt), dtype, out dtype) -> _plan(...)
        self.rounded = 0
        self.overflowed = 0
        self.underflowed = 0

    def entry(self, func, *, backward: bool = False) -> _Entry:
        info = classify(func)
        cls = info.op_class
        if cls in (OpClass.VIEW, OpClass.PASS, OpClass.NATIVE):
            return _Entry(info, _NATIVE, None, False)
        if info.name in (self._keep_fp32_backward if backward else self._keep_fp32):
            # A factory computes nothing from inputs: narrowing the dtype it is asked for would
            # change what it makes (and which random numbers it draws), as autocast never does.
            if info.factory:  # storage="autocast": rounded where made in the cast dtype
                if self.cast is None:
                    return _Entry(info, _NATIVE, None, False)
                return _Entry(info, _SOURCE, self.policy.elementwise, False)
            kind = _CAST32 if self.cast is not None and not backward else _FP32
            return _Entry(info, kind, None, False)
        route = _ROUTED_OVERLOADS.get((info.name, func._overloadname))
        if route is not None and (
            (route is routed.TRANSFORMS and self.policy.fft_algorithm == "staged")
            or (route is not routed.TRANSFORMS and self.policy.accumulation is not None)
        ):
            return _Entry(info, _ROUTED, self.policy.format_of(cls), self._lowered(info))
        if info.name in _FLOAT32_KERNELS:
            return _Entry(info, _NARROW, self.policy.format_of(cls), self._lowered(info))
        if cls is OpClass.SOURCE:
            return _Entry(info, _SOURCE, self.policy.elementwise, False)
        if cls is OpClass.DATA:
            return _Entry(info, _DATA, self.policy.elementwise, False)
        fmt = self.policy.format_of(cls)
        lowered = self._lowered(info)
        impl = None
        if (
            (func._schema.name, func._overloadname) in _SUM_OVERLOADS
            and self.mode not in (RoundMode.NEAREST_EVEN, RoundMode.NEAREST_AWAY)
            and self.real is torch.float64
            and fmt.precision + 2 <= 53
        ):
            impl = _exact_sum(func, info.name, self.mode is RoundMode.TOWARD_NEGATIVE)
        elif info.name in _FORMAT_AWARE:
            impl = _format_aware(func, info.name, fmt)
        return _Entry(info, _WIDE, fmt, lowered, impl)

    def _casts_results(self) -> bool:
        """Does the lowered operator running now return its results in the cast dtype (see
        :func:`_records_uncast` for when it keeps the dtype autograd expects)?"""
        return self.cast is not None and not getattr(_ACTIVE, "keep_caller", False)

    def _lowered(self, info: OpInfo) -> bool:
        """Are the operator's inputs rounded to the matmul format first (matmul-class), and,
        under storage="autocast", its results stored in the cast dtype? Autocast casts neither
        its promote list (dot products) nor in-place and out= variants: under it those run on
        the dtypes they are given."""
        if info.op_class is not OpClass.MATMUL:
            return False
        return self.cast is None or not (info.name in _PROMOTED or info.mutated)

    def dispatch(self, func, args: tuple, kwargs: dict):
        if getattr(_ACTIVE, "depth", 0) or getattr(_EXPLICIT, "depth", 0):
            return func(*args, **kwargs)
        entries = self.entries
        if (
            self._keep_fp32_backward is not None
            and torch._C._current_autograd_node() is not None
            and not (torch.is_grad_enabled() and _recomputing())  # recomputations enable grad
        ):
            entries = self.backward_entries  # autograd is running a backward pass
        entry = entries.get(func)
        if entry is None:
            backward = entries is self.backward_entries
            entry = entries[func] = self.entry(func, backward=backward)
        entry.calls += 1
        kind = entry.kind
        _ACTIVE.depth = 1  # an outer emulation lets this one's torch calls through, native too
        try:
            if kind is _NATIVE:
                return func(*args, **kwargs)
            cast = self.cast
            if cast is not None and kind is not _CAST32:
                # As under torch.autocast: matmuls on float64 tensors alone stay float64, and
                # any other operator with no tensor (nor dtype argument) of the cast dtype runs
                # as torch's kernels run it.
                if entry.round_inputs and not getattr(_BLOCKS, "unlowered", False):
                    lowered = _castable(args, kwargs)
                    # Lowered below autograd (a call the Python-level casts did not see, from
                    # C++ or inside another function) where autograd records it: the result
                    # keeps the dtype autograd expects, its values those of the format. (Not
                    # in a checkpoint's recomputation, which autograd runs without the
                    # Python-level casts, and whose backward runs in the block: it lowers as
                    # the forward pass's casts did.)
                    _ACTIVE.keep_caller = (
                        lowered and _records_uncast(args, kwargs, cast) and not _recomputing()
                    )
                else:
                    lowered = _touches(args, kwargs, cast)
                if not lowered:
                    return func(*args, **kwargs)
            if kind is _CAST32:
                if getattr(_BLOCKS, "keep_dtype", False):  # softmax(..., dtype=...): as given
                    if not _touches(args, kwargs, cast):
                        return func(*args, **kwargs)
                    fmt = self.policy.format_of(entry.info.op_class)
                    return self._wide(entry.info, fmt, False, func, args, kwargs)
                return self._autocast_fp32(entry.info, func, args, kwargs)
            if kind is _WIDE:
                result = self._wide_entry(entry, func, args, kwargs)
                if entry.info.op_class is OpClass.UNCLASSIFIED and not entry.floating:
                    entry.floating = _has_floating(result)
                return result
            if kind is _DATA:
                return self._data(entry, func, args, kwargs)
            if kind is _SOURCE:
                return self._source(entry.info, func, args, kwargs)
            if kind is _ROUTED:
                return self._routed(entry, func, args, kwargs)
            if kind is _NARROW:
                return self._wide(
                    entry.info, entry.fmt, entry.round_inputs, func, args, kwargs, narrow=True
                )
            return self._float32(entry.info, func, args, kwargs)
        finally:
            _ACTIVE.depth = 0
            _ACTIVE.keep_caller = False

    # -- handlers ----------------------------------------------------------------------------

    def _wide_entry(self, entry: _Entry, func, args, kwargs):
        """An operator computed in the working precision, by the fast paths where they apply."""
        shape = entry.shape
        compute = func if entry.impl is None else entry.impl
        if shape is not None:
            dtype = _uniform_float(args, kwargs)
            if dtype is not None:
                if shape is _FUNCTIONAL:
                    return self._wide_fast(entry, dtype, compute, args, kwargs)
                return self._inplace_fast(entry, dtype, compute, args, kwargs)
        return self._wide(
            entry.info, entry.fmt, entry.round_inputs, func, args, kwargs, compute=compute
        )

    def _wide_fast(self, entry: _Entry, dtype: torch.dtype, func, args, kwargs):
        """The common case: tensors of one real dtype (float32 or float64), nothing mutated;
        then each floating output has that dtype (its complex twin if complex), or the cast
        dtype for a matmul under storage="autocast"."""
        real = self.real
        fmt = entry.fmt
        # Every floating tensor has this dtype (integer and bool tensors keep theirs).
        if entry.round_inputs:
            wargs = [
                self._round(a.detach(), fmt, real).to(real)
                if isinstance(a, torch.Tensor) and a.dtype is dtype
                else a
                for a in args
            ]
        elif dtype is real:
            wargs = args
        else:
            wargs = [
                a.to(real) if isinstance(a, torch.Tensor) and a.dtype is dtype else a for a in args
            ]
        out = func(*wargs, **kwargs)
        if entry.round_inputs and self._casts_results():
            if isinstance(out, tuple):  # a half attention's log-sum-exp stays float32
                dtypes = self._lowered_dtypes(func, args, kwargs, out)
                return tuple(
                    self._finish(o, fmt, dtype if d is None else d)
                    for o, d in zip(out, dtypes, strict=True)
                )
            dtype = self.cast  # autocast returns matmul-class results in its dtype
        if isinstance(out, torch.Tensor):
            return self._finish(out, fmt, dtype)
        if isinstance(out, tuple):
            return tuple(self._finish(o, fmt, dtype) for o in out)
        return out

    def _inplace_fast(self, entry: _Entry, dtype: torch.dtype, func, args, kwargs):
        """An in-place method on tensors of one real dtype: computed in the working precision,
        its rounded value written into ``self``."""
        real = self.real
        fmt = entry.fmt
        target = args[0]
        if dtype is real and not entry.round_inputs:
            func(*args, **kwargs)  # already in the working precision: compute in place
            plain = target.detach()
            target_fmt, mode = self._target(fmt, plain.dtype)
            r = self._round(plain, target_fmt, mode=mode)
            if r is not plain:
                target.copy_(r)
            return target
        if entry.round_inputs:
            wargs = [
                self._round(a.detach(), fmt, real).to(real)
                if isinstance(a, torch.Tensor) and a.dtype is dtype
                else a
                for a in args
            ]
        else:
            wargs = [
                a.to(real) if isinstance(a, torch.Tensor) and a.dtype is dtype else a for a in args
            ]
        if wargs[0] is target:  # .to() returned the tensor itself; keep self unmodified
            wargs[0] = target.detach().clone()
        func(*wargs, **kwargs)
        target.copy_(self._store(wargs[0], fmt, target.dtype))
        return target

    def _finish(self, v: Any, fmt: FloatFormat, dtype: torch.dtype) -> Any:
        """Round a working-precision output and store it in ``dtype`` (or its complex twin)."""
        if not isinstance(v, torch.Tensor):
            return v
        if v.is_complex():
            return self._store(v, fmt, _COMPLEX_OF[dtype])
        if v.is_floating_point():
            return self._store(v, fmt, dtype)
        return v

    def _wide(
        self,
        info: OpInfo,
        fmt: FloatFormat,
        round_inputs: bool,
        func,
        args,
        kwargs,
        *,
        exact: bool = False,
        narrow: bool = False,
        compute: Callable | None = None,
    ):
        """Compute in the working precision (float64 when ``exact``, float32 when ``narrow``),
        round every floating output to ``fmt`` once (``compute``: what computes in place of
        ``func``)."""
        if exact:
            real, cplx = torch.float64, torch.complex128
        elif narrow:
            real, cplx = torch.float32, torch.complex64
        else:
            real, cplx = self.real, self.complex
        # A pointwise operator on integer tensors alone with a floating result (int / int,
        # int * 0.1) would compute in torch's default dtype: its operands are widened instead.
        integers_too = (
            torch.Tag.pointwise in func.tags
            and not _float_dtypes(args, kwargs, info)
            and any(
                d is not None and (d.is_floating_point or d.is_complex)
                for d in self._caller_dtypes(func, args, kwargs, None)
            )
        )

        def widen(t: torch.Tensor, operand: bool = True) -> torch.Tensor:
            if not (t.is_floating_point() or t.is_complex()):
                return t.to(real) if integers_too else t
            if round_inputs and operand:
                t = self._round(t.detach(), fmt)
            target = cplx if t.is_complex() else real
            return t.to(target) if t.dtype != target else t.detach()

        def widen_output(t: torch.Tensor) -> torch.Tensor:
            return widen(t, operand=False)

        # out= buffers are written, never read: not rounded as operands (nor counted).
        outputs = {name for pos, name, _ in info.mutated if func._schema.arguments[pos].kwarg_only}
        wargs = _map_tensors(widen, args)
        wkwargs = {
            k: _map_tensors(widen_output if k in outputs else widen, v) for k, v in kwargs.items()
        }
        for pos, name in info.dtype_args:
            if name in wkwargs:
                wkwargs[name] = _widen_dtype(wkwargs[name], real, cplx)
            elif pos < len(wargs):
                wargs = (*wargs[:pos], _widen_dtype(wargs[pos], real, cplx), *wargs[pos + 1 :])
        out = (func if compute is None else compute)(*wargs, **wkwargs)
        if round_inputs and self._casts_results():
            callers = self._lowered_dtypes(func, args, kwargs, out)
        else:
            callers = self._caller_dtypes(func, args, kwargs, out)
        for orig, wide in _mutated_pairs(info, args, kwargs, wargs, wkwargs):
            if orig.shape != wide.shape:
                orig.resize_(wide.shape)  # out= variants resize their output
            orig.copy_(self._store(wide, fmt, orig.dtype))
        return self._results(info, args, kwargs, out, callers, fmt)

    def _float32(self, info: OpInfo, func, args, kwargs):
        """Run in float32 (torch's float32 kernel); outputs are float32 values."""
        dtypes = _float_dtypes(args, kwargs, info)
        if dtypes <= {torch.float32, torch.complex64}:
            return func(*args, **kwargs)

        def narrow(t: torch.Tensor) -> torch.Tensor:
            if t.is_complex():
                return t.to(torch.complex64)
            return t.to(torch.float32) if t.is_floating_point() else t

        wargs = _map_tensors(narrow, args)
        wkwargs = {k: _map_tensors(narrow, v) for k, v in kwargs.items()}
        for pos, name in info.dtype_args:
            if name in wkwargs:
                wkwargs[name] = _widen_dtype(wkwargs[name], torch.float32, torch.complex64)
            elif pos < len(wargs):
                narrowed = _widen_dtype(wargs[pos], torch.float32, torch.complex64)
                wargs = (*wargs[:pos], narrowed, *wargs[pos + 1 :])
        out = func(*wargs, **wkwargs)
        callers = iter(self._caller_dtypes(func, args, kwargs, out))
        return self._float32_results(info, args, kwargs, wargs, wkwargs, out, callers)

    def _autocast_fp32(self, info: OpInfo, func, args, kwargs):
        """A ``keep_fp32`` operator in forward under storage="autocast", as torch.autocast runs
        it: floating inputs other than float64 ones cast to float32, torch's kernel, and its
        results as the kernel returns them (float32; a mutated argument of the cast dtype gets
        them rounded to the elementwise format)."""

        def cast(t: torch.Tensor) -> torch.Tensor:
            if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
                return t.to(torch.float32)
            return t

        wargs = _map_tensors(cast, args)
        wkwargs = {k: _map_tensors(cast, v) for k, v in kwargs.items()}
        out = func(*wargs, **wkwargs)
        return self._float32_results(info, args, kwargs, wargs, wkwargs, out, None)

    def _float32_results(self, info: OpInfo, args, kwargs, wargs, wkwargs, out, callers):
        """A float32 kernel's results: written back into the arguments it mutated, returned
        in the caller's dtypes (``callers``, an iterator over the output leaves; ``None``: as
        the kernel returns them); a result or mutated argument of the cast dtype
        (storage="autocast") holds values of the elementwise format."""

        def store(v: torch.Tensor, d: torch.dtype | None) -> torch.Tensor:
            if d is None:
                return v
            if d is self.cast:
                return self._store(v, self.policy.elementwise, d)
            return v.to(d)

        for orig, wide in _mutated_pairs(info, args, kwargs, wargs, wkwargs):
            if wide is not orig:
                if orig.shape != wide.shape:
                    orig.resize_(wide.shape)
                orig.copy_(store(wide, orig.dtype))
        returns = _top_level(info, out)
        results = []
        for j, value in enumerate(returns):
            k = info.returns_mutated[j] if j < len(info.returns_mutated) else None
            if k is not None:
                results.append(_mutated_arg(info, k, args, kwargs))
                if callers is not None:
                    _skip(callers, value)
            else:
                results.append(_map_leaves(store, value, callers))
        return _pack(info, out, results)

    def _data(self, entry: _Entry, func, args, kwargs):
        """Exact operators run natively in the caller's dtype; then their results are rounded."""
        info = entry.info
        dtype = _uniform_dtype(args, kwargs, info)
        if dtype is None:
            out = func(*args, **kwargs)
            if info.mutated or not (isinstance(out, torch.Tensor) and _is_float(out)):
                return out
            # Integer tensors, floating result (clamp to a float scalar, copysign): computed
            # again with the integers in float64 (exact up to 2**53), rounded once, stored in
            # the dtype torch gives.
            wide = func(
                *_map_tensors(_integers_to_float64, args),
                **{k: _map_tensors(_integers_to_float64, v) for k, v in kwargs.items()},
            )
            return self._store(wide, entry.fmt, out.dtype)
        fmt = entry.fmt
        if dtype is _MIXED or (dtype in _REAL_OF and info.name in _COMPLEX_ARITHMETIC):
            # Copies between dtypes, or scalars the tensors' dtype cannot hold: float64 keeps
            # them exact whatever the working precision. And |z|, z/|z| of complex z are
            # arithmetic, not selections: computed in complex128, rounded once.
            return self._wide(info, fmt, False, func, args, kwargs, exact=True)
        out = func(*args, **kwargs)
        if not info.mutated and isinstance(out, torch.Tensor):
            return self._store(out, fmt, out.dtype) if _is_float(out) else out
        return self._round_native(info, fmt, args, kwargs, out)

    def _source(self, info: OpInfo, func, args, kwargs):
        """Random operators and factories: native, then rounded."""
        fmt = self.policy.elementwise
        out = func(*args, **kwargs)
        if (
            info.factory
            and info.dtype_args
            and isinstance(out, torch.Tensor)
            and (out.is_floating_point() or out.is_complex())
            and torch.Tag.nondeterministic_seeded not in func.tags
            and (info.name in _COMPUTING_FACTORIES or not _scalars_exact(args, kwargs, out.dtype))
        ):
            # A constant such as full(size, 0.1) must be rounded from its float64 value, not
            # from its float32 one, and so must a factory's own arithmetic (linspace's start +
            # i * step): recompute it wide, then round once.
            pos, name = info.dtype_args[0]
            wide = torch.complex128 if out.is_complex() else torch.float64
            if name in kwargs or pos >= len(args):
                out = func(*args, **{**kwargs, name: wide})
            else:
                out = func(*args[:pos], wide, *args[pos + 1 :], **kwargs)
            return self._store(out, fmt, _dtype_of(out, kwargs.get(name), args, pos))
        return self._round_native(info, fmt, args, kwargs, out)

    def _routed(self, entry: _Entry, func, args, kwargs):
        """An operator computed by mperror.ops (see :mod:`mperror.emulate.routed`), its result
        rounded once more to the class's format and stored in the caller's dtype."""
        info = entry.info
        requested = kwargs.get("dtype")
        integer_result = isinstance(requested, torch.dtype) and not (
            requested.is_floating_point or requested.is_complex
        )
        if integer_result or not _float_dtypes(args, kwargs, info):
            # sum(x, dtype=int64) converts every element first: exact, natively
            return func(*args, **kwargs)
        fmt = entry.fmt
        policy = self.policy

        rounded_nonfinite = False

        def round_input(t: torch.Tensor) -> torch.Tensor:
            nonlocal rounded_nonfinite
            r = self._round(t.detach(), fmt)
            if self.count and not rounded_nonfinite:
                rounded_nonfinite = not bool(torch.isfinite(r).all())
            return r

        if info.name in routed.TRANSFORMS:
            value = routed.transform(info.name, args, fmt, self.mode, self.generator)
        elif info.name in routed.MATMULS:
            value = routed.matmul(
                info.name, args, kwargs, fmt, policy.accumulation, self.mode, self.generator,
                round_input,
            )  # fmt: skip
        else:  # a reduction's inputs are not rounded first, as on the unrouted path
            value = routed.reduction(
                info.name, args, kwargs, fmt, policy.accumulation, self.mode, self.generator
            )
        if self.count and not rounded_nonfinite:
            # Overflow inside mperror.ops surfaces as non-finite results of finite inputs (an
            # input that overflowed when rounded was counted then, not again here).
            inputs = [t for t in args if isinstance(t, torch.Tensor) and _is_float(t)]
            if all(bool(torch.isfinite(t).all()) for t in inputs):
                parts = torch.view_as_real(value) if value.is_complex() else value
                self.overflowed += parts.numel() - int(torch.count_nonzero(parts.isfinite()))
        if entry.round_inputs and self._casts_results():
            (caller,) = self._lowered_dtypes(func, args, kwargs, value)
        else:
            (caller,) = self._caller_dtypes(func, args, kwargs, value)
        return self._store(value, fmt, caller)

    def _round_native(self, info: OpInfo, fmt: FloatFormat, args, kwargs, out):
        for k in range(len(info.mutated)):
            arg = _mutated_arg(info, k, args, kwargs)
            for t in arg if isinstance(arg, (list, tuple)) else (arg,):
                if _is_float(t):
                    plain = t.detach()
                    target_fmt, mode = self._target(fmt, plain.dtype)
                    r = self._round(plain, target_fmt, mode=mode)
                    if r is not plain:
                        t.copy_(r)
        returns = _top_level(info, out)
        results = []
        for j, value in enumerate(returns):
            k = info.returns_mutated[j] if j < len(info.returns_mutated) else None
            if k is not None:
                results.append(_mutated_arg(info, k, args, kwargs))
            else:
                results.append(_map_leaves(lambda v, _: self._store(v, fmt, v.dtype), value, None))
        return _pack(info, out, results)

    def _results(self, info: OpInfo, args, kwargs, out, callers: tuple, fmt: FloatFormat):
        it = iter(callers)
        returns = _top_level(info, out)
        results = []
        for j, value in enumerate(returns):
            k = info.returns_mutated[j] if j < len(info.returns_mutated) else None
            if k is not None:
                results.append(_mutated_arg(info, k, args, kwargs))
                _skip(it, value)
            else:
                results.append(
                    _map_leaves(lambda v, d: v if d is None else self._store(v, fmt, d), value, it)
                )
        return _pack(info, out, results)

    # -- rounding ----------------------------------------------------------------------------

    def _round(
        self,
        v: torch.Tensor,
        fmt: FloatFormat,
        dtype: torch.dtype | None = None,
        mode: RoundMode | None = None,
    ) -> torch.Tensor:
        """``v`` rounded to ``fmt`` (by ``mode``, default the policy's), in ``dtype`` where
        that holds ``fmt`` (default ``v``'s dtype), else in float64 (complex128); ``v`` itself
        when every value of its dtype is a value of ``fmt`` and no other dtype is asked for."""
        mode = mode or self.mode
        key = (id(fmt), v.dtype, dtype, mode)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(fmt, v.dtype, dtype or v.dtype, mode)
        action, rounder, narrow_rounder, out = plan
        if action is _KEEP:
            return v
        if v.layout is not torch.strided:
            raise _not_dense(str(v.layout))
        if v.is_meta:  # no values (torch.func's shape propagation): only the dtype follows
            return v.to(out)
        if action is _WIDEN:
            v = v.to(torch.complex128 if v.is_complex() else torch.float64)
        if v.is_complex():
            v = v.resolve_conj()  # autograd passes lazily conjugated views; round needs values
        elif narrow_rounder is not None:
            # Many float64 results (products and sums of format values) are float32 values:
            # then rounding the equal float32 tensor gives the same result, through the much
            # cheaper float32 kernel. torch.equal stops at the first element that differs, so
            # the test costs little when it fails. (The float32 detour of deterministic modes
            # makes this test itself.)
            narrow = v.float()
            if torch.equal(narrow.double(), v):
                v, rounder = narrow, narrow_rounder
        # torch's operators keep their inputs' layout, which later views may rely on
        r = mperror.rounding._keep_layout(v, rounder(v, self.generator))
        if self.count:
            self._tally(v, r, fmt, mode)
        return r

    def _plan(
        self, fmt: FloatFormat, dtype: torch.dtype, out: torch.dtype, mode: RoundMode
    ) -> tuple:
        """(action, rounder from the working dtype, rounder from float32 or None, the rounded
        result's dtype) for a ``dtype`` tensor whose rounded values are wanted in ``out``."""
        part = _REAL_OF.get(dtype, dtype)
        if _holds(fmt, part) and out is dtype:
            return _KEEP, None, None, dtype
        if _holds_dtype(part, fmt):
            action, work = _ROUND, dtype
        else:
            action, work = _WIDEN, torch.complex128 if dtype.is_complex else torch.float64
        if out.is_complex != work.is_complex or not _holds_dtype(_REAL_OF.get(out, out), fmt):
            out = work

        def route(d: torch.dtype) -> Callable:
            return mperror.rounding._route(fmt, mode, None, self.compiled, d, out)

        narrow = None
        if (
            work is torch.float64
            and _holds_dtype(torch.float32, fmt)
            and not mperror.rounding._float32_detour_is_exact(fmt, mode)
        ):
            narrow = route(torch.float32)
        return action, route(work), narrow, out

    def _target(self, fmt: FloatFormat, dtype: torch.dtype) -> tuple[FloatFormat, RoundMode]:
        """The format and mode a result stored in ``dtype`` is rounded to: ``fmt`` and the
        policy's mode, except under storage="autocast" for a floating dtype other than the
        cast dtype, whose own format it is then rounded to (to nearest, as its kernels do)."""
        cast = self.cast
        part = _REAL_OF.get(dtype, dtype)
        if (
            cast is None
            or part is cast
            or not part.is_floating_point
            or getattr(_ACTIVE, "keep_caller", False)
        ):
            return fmt, self.mode
        return format_of_dtype(part), RoundMode.NEAREST_EVEN

    def _store(self, v: torch.Tensor, fmt: FloatFormat, dtype: torch.dtype) -> torch.Tensor:
        """``v`` rounded to ``fmt`` (see :meth:`_target`) and stored in ``dtype``."""
        fmt, mode = self._target(fmt, dtype)
        r = self._round(v, fmt, dtype, mode)
        if r.dtype is dtype:
            return r
        part = _REAL_OF.get(dtype, dtype)
        if r.is_meta:
            return r.to(dtype)
        if part.is_floating_point and not _holds_dtype(part, fmt):
            # The storage dtype is narrower than the format: a second rounding, done exactly,
            # and counted (its overflows and underflows are the ones the caller sees).
            store = format_of_dtype(part)
            stored = mperror.rounding.round(r, store, mode, generator=self.generator)
            if self.count:  # the same values rounded once more: not counted twice as rounded
                self._tally(r, stored, store, mode, values=False)
            r = stored
        return r.to(dtype)

    def _tally(
        self,
        v: torch.Tensor,
        r: torch.Tensor,
        fmt: FloatFormat,
        mode: RoundMode,
        *,
        values: bool = True,
    ) -> None:
        """Count rounded, overflowed and underflowed values with a few float reductions.

        Rounding keeps zeros zero and non-finite values non-finite (a saturating format maps
        infinities to ``±max``), so differences of counts are counts of transitions. A finite
        sum shows that nothing is non-finite; only otherwise are non-finite values counted.
        """
        if v.is_complex():
            v, r = torch.view_as_real(v), torch.view_as_real(r)
        if r.dtype.itemsize == 1:  # torch has no float8 reductions: widen (exactly)
            r = r.float()
        if v.dtype.itemsize == 1:
            v = v.float()
        if values:  # False for a second rounding of values already counted
            self.rounded += r.numel()
        nonzero = int(torch.count_nonzero(r))
        if nonzero < r.numel():  # else v had no zeros either, and nothing underflowed
            self.underflowed += int(torch.count_nonzero(v)) - nonzero
        if fmt.overflow is Overflow.SATURATE:
            if v.numel() and not float(v.abs().max()) <= fmt.max:
                self.overflowed += _saturated(v, fmt, mode)
        elif not math.isfinite(float(r.sum())):
            nonfinite_r = r.numel() - int(torch.count_nonzero(r.isfinite()))
            nonfinite_v = v.numel() - int(torch.count_nonzero(v.isfinite()))
            self.overflowed += nonfinite_r - nonfinite_v

    # -- output dtypes -----------------------------------------------------------------------

    def _caller_dtypes(self, func, args, kwargs, out) -> tuple:
        """The dtype of each output leaf as the operator returns it without emulation."""
        cache = _DTYPE_CACHE.setdefault(func, {})
        key = _signature(args, kwargs)
        dtypes = cache.get(key)
        if dtypes is None:
            dtypes = cache[key] = _meta_dtypes(func, args, kwargs)
        if dtypes is _GUESS:
            return tuple(_guess_dtype(leaf, args, kwargs) for leaf in _leaves(out))
        return dtypes

    def _lowered_dtypes(self, func, args, kwargs, out) -> tuple:
        """The dtype of each output leaf of a matmul-class operator under storage="autocast":
        what its kernel returns for inputs cast as autocast casts them (real floating ones but
        float64 to the cast dtype): a half attention's log-sum-exp stays float32."""
        cast = self.cast

        def meta(t: torch.Tensor) -> torch.Tensor:
            if t.is_floating_point() and t.dtype is not torch.float64:
                return torch.empty_strided(t.shape, t.stride(), dtype=cast, device="meta")
            return t

        margs = _map_tensors(meta, args)
        mkwargs = {k: _map_tensors(meta, v) for k, v in kwargs.items()}
        return self._caller_dtypes(func, margs, mkwargs, out)

    # -- report ------------------------------------------------------------------------------

    def report(self) -> EmulationReport:
        ops: dict[str, int] = {}
        classes: dict[str, str] = {}
        unclassified = set()
        for entries, suffix in ((self.entries, ""), (self.backward_entries, " in backward")):
            for func, entry in entries.items():
                name = str(func)
                ops[name] = ops.get(name, 0) + entry.calls
                cls = entry.info.op_class
                if entry.kind in (_FP32, _CAST32):
                    label = "fp32"
                elif entry.kind is _ROUTED:
                    label = f"{cls.value}/ops"
                elif entry.kind is _NARROW:
                    label = f"{cls.value}/float32 kernel"
                else:
                    label = cls.value
                if name not in classes:
                    classes[name] = f"{label}{suffix}"
                elif label != classes[name]:
                    classes[name] += f"; {label}{suffix}"
                if cls is OpClass.UNCLASSIFIED and entry.floating:  # isin's bools: nothing rounded
                    unclassified.add(name)
        return EmulationReport(
            policy=self.policy.to_dict(),
            ops=ops,
            op_classes=classes,
            unclassified=tuple(sorted(unclassified)),
            counted=self.count,
            rounded=self.rounded,
            overflowed=self.overflowed,
            underflowed=self.underflowed,
        )


def _saturated(v: torch.Tensor, fmt: FloatFormat, mode: RoundMode) -> int:
    """How many finite values of ``v`` overflow when rounded to the saturating ``fmt`` by
    ``mode``: those whose rounding as if the exponent range were unbounded exceeds ``max``
    (:class:`~mperror.formats.Overflow`); e4m3fn rounds 450 to 448 without overflowing, and
    470 (nearest 480) to 448 by saturation. A stochastic rounding of a value beyond ``max`` may
    have gone either way, and which is not kept: every such value counts.

    The values are halved (exactly: they exceed ``max``, far from the subnormals) and rounded to
    the format's natural extension (every code finite, with inf): one binade above ``max / 2``
    holds their unbounded rounding, and what lies past it overflows either way. Halving keeps
    this within float64 for formats reaching its top binade (``emax`` 1023)."""
    beyond = v[(v.abs() > fmt.max) & v.isfinite()]
    if mode.is_stochastic or not beyond.numel():
        return beyond.numel()
    natural = fmt.replace(max_finite=None, has_inf=True, has_nan=True, overflow=None)
    half = mperror.rounding.round(beyond.double() / 2, natural, mode)
    return int(torch.count_nonzero(half.abs() > fmt.max / 2))


def _has_floating(result: Any) -> bool:
    """Does an operator's result hold a floating or complex tensor?"""
    if isinstance(result, torch.Tensor):
        return result.is_floating_point() or result.is_complex()
    if isinstance(result, (tuple, list)):
        return any(_has_floating(r) for r in result)
    return False


def _uniform_float(args: tuple, kwargs: dict) -> torch.dtype | None:
    """float32 or float64 when that is the dtype of every floating tensor argument and there
    are no complex tensors, tensor lists or dtype-like keyword arguments; else None.
    (float16 and bfloat16 stay out: some kernels return float32 results for them, such as
    _weight_norm_interface's norms.)"""
    dtype = None
    for a in args:
        if isinstance(a, torch.Tensor):
            d = a.dtype
            if d.is_floating_point:
                if dtype is None:
                    dtype = d
                elif d is not dtype:
                    return None
            elif d.is_complex:
                return None
        elif isinstance(a, (list, tuple)):
            for e in a:
                if isinstance(e, torch.Tensor):
                    return None
    for a in kwargs.values():
        if isinstance(a, (torch.Tensor, torch.dtype, list, tuple)):
            return None
    return dtype if dtype in _FAST_DTYPES else None


# -- formats and dtypes --------------------------------------------------------------------


def _touches(args, kwargs, dtype: torch.dtype) -> bool:
    """Does an operator take a tensor of ``dtype`` (alone or in a list), or ``dtype`` itself
    as an argument?"""
    for a in itertools.chain(args, kwargs.values()):
        if isinstance(a, torch.Tensor):
            if a.dtype is dtype:
                return True
        elif a is dtype:
            return True
        elif isinstance(a, (list, tuple)):
            for e in a:
                if isinstance(e, torch.Tensor) and e.dtype is dtype:
                    return True
    return False


def _records_uncast(args, kwargs, cast: torch.dtype) -> bool:
    """Will autograd record this operator with an input autocast's Python-level casts did not
    reach (a floating tensor other than float64 and the cast dtype that requires grad)? Its
    gradient formula then expects results of that dtype: a half result would fail a backward
    pass run after the block, on torch's own kernels."""
    if not torch.is_grad_enabled():
        return False
    for a in itertools.chain(args, kwargs.values()):
        for t in a if isinstance(a, (list, tuple)) else (a,):
            if (
                isinstance(t, torch.Tensor)
                and t.requires_grad
                and t.is_floating_point()
                and t.dtype not in (torch.float64, cast)
            ):
                return True
    return False


def _castable(args, kwargs) -> bool:
    """Does an operator take a real floating tensor that autocast would cast (any but
    float64)?"""
    for a in itertools.chain(args, kwargs.values()):
        for t in a if isinstance(a, (list, tuple)) else (a,):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64:
                return True
    return False


@functools.lru_cache(maxsize=256)
def _holds(fmt: FloatFormat, dtype: torch.dtype) -> bool:
    """Is every finite value of ``dtype`` a value of ``fmt`` (so rounding changes nothing)?"""
    if not dtype.is_floating_point:
        return True
    try:
        return formats._holds(fmt, format_of_dtype(dtype))
    except ValueError:
        return True


@functools.lru_cache(maxsize=256)
def _holds_dtype(dtype: torch.dtype, fmt: FloatFormat) -> bool:
    """Can ``dtype`` store every value of ``fmt``?"""
    try:
        return formats._holds(format_of_dtype(dtype), fmt)
    except ValueError:
        return True


def _widen_dtype(value: Any, real: torch.dtype, cplx: torch.dtype) -> Any:
    if isinstance(value, torch.dtype):
        if value.is_complex:
            return cplx
        if value.is_floating_point:
            return real
    return value


def _is_float(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex())


def _float_dtypes(args, kwargs, info: OpInfo) -> set[torch.dtype]:
    found = set()
    for a in itertools.chain(args, kwargs.values()):
        if isinstance(a, torch.Tensor):
            if a.is_floating_point() or a.is_complex():
                found.add(a.dtype)
        elif isinstance(a, (list, tuple)):
            found.update(x.dtype for x in a if _is_float(x))
    for pos, name in info.dtype_args:
        d = kwargs.get(name, args[pos] if pos < len(args) else None)
        if isinstance(d, torch.dtype) and (d.is_floating_point or d.is_complex):
            found.add(d)
    return found


_MIXED = object()
_EXACT_INT = {torch.float64: 2**53, torch.float32: 2**24, torch.float16: 2**11,
              torch.bfloat16: 2**8}  # fmt: skip


def _uniform_dtype(args, kwargs, info: OpInfo):
    """The one floating dtype of an operator's tensors, if its native kernel is exact: no second
    floating dtype (conversions between them round), and every Python number representable in
    it. ``None`` when there is no floating tensor; ``_MIXED`` otherwise."""
    dtypes = _float_dtypes(args, kwargs, info)
    if not dtypes:
        return None
    if len(dtypes) > 1 or (info.name in _CONVERTING and _integer_values(args, kwargs)):
        return _MIXED
    (dtype,) = dtypes
    if dtype.is_complex:
        return _MIXED if dtype != torch.complex128 and _has_scalars(args, kwargs) else dtype
    return dtype if _scalars_exact(args, kwargs, dtype) else _MIXED


# Factories that compute their values (not copies of their arguments): float32 arithmetic
# then the format's rounding would round twice (linspace(-37.96875, 45.96875, 353)[198] is the
# fp16 tie 9.24609375, 9.2460928 in float32, which rounds down).
_COMPUTING_FACTORIES = frozenset(
    {"linspace", "logspace", "hann_window", "hamming_window", "blackman_window",
     "bartlett_window", "kaiser_window"}
)  # fmt: skip


# Data operators whose integer tensor arguments are values that become floating values (not
# indices): their native kernels convert them to the floating dtype, rounding large integers
# (2**24 + 1 in float32) before the format's rounding would; float64 holds them up to 2**53.
_CONVERTING = frozenset({"_to_copy", "copy_", "copy", "where", "cat", "stack"})


def _is_integer_tensor(t: object) -> bool:
    """An integer tensor (not a bool one): its values become floats in a floating result."""
    return (
        isinstance(t, torch.Tensor)
        and not (t.is_floating_point() or t.is_complex())
        and t.dtype is not torch.bool
    )


def _integer_values(args, kwargs) -> bool:
    """Is an integer (not bool) tensor among the arguments, alone or in a list?"""
    return any(
        _is_integer_tensor(a)
        or (isinstance(a, (list, tuple)) and any(_is_integer_tensor(t) for t in a))
        for a in itertools.chain(args, kwargs.values())
    )


def _integers_to_float64(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float64) if _is_integer_tensor(t) else t


def _has_scalars(args, kwargs) -> bool:
    return any(isinstance(a, (float, complex)) for a in itertools.chain(args, kwargs.values()))


def _scalars_exact(args, kwargs, dtype: torch.dtype) -> bool:
    """Does ``dtype`` hold every Python number among the arguments exactly?"""
    limit = _EXACT_INT.get(_REAL_OF.get(dtype, dtype), 0)
    for a in itertools.chain(args, kwargs.values()):
        if isinstance(a, bool):
            continue
        if isinstance(a, int):
            if abs(a) > limit:
                return False
        elif isinstance(a, float):
            if not _float_exact(a, dtype):
                return False
        elif isinstance(a, complex) and dtype != torch.complex128:
            return False
    return True


def _float_exact(value: float, dtype: torch.dtype) -> bool:
    if dtype in (torch.float64, torch.complex128):
        return True
    if dtype in (torch.float32, torch.complex64):
        try:
            return struct.unpack("f", struct.pack("f", value))[0] == value
        except OverflowError:
            return True
    return False


def _dtype_of(out: torch.Tensor, requested: Any, args, pos: int) -> torch.dtype:
    if isinstance(requested, torch.dtype):
        return requested
    if pos < len(args) and isinstance(args[pos], torch.dtype):
        return args[pos]
    default = torch.get_default_dtype()
    return _COMPLEX_OF[default] if out.is_complex() else default


# -- argument and output plumbing ----------------------------------------------------------


def _map_tensors(f: Callable[[torch.Tensor], torch.Tensor], value: Any) -> Any:
    """Apply ``f`` to the tensors in ``value`` (an argument, a tuple of arguments, or a list)."""
    if isinstance(value, torch.Tensor):
        return f(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(f, v) for v in value)
    return value


def _mutated_arg(info: OpInfo, k: int, args, kwargs) -> Any:
    pos, name, _ = info.mutated[k]
    if name in kwargs:
        return kwargs[name]
    return args[pos] if pos < len(args) else None


# Batch norms whose running statistics (written, undeclared; see classify) are written only
# in training: the argument ``training`` is their sixth.
_TRAINING_WRITES = frozenset({"native_batch_norm", "cudnn_batch_norm", "miopen_batch_norm"})


def _mutated_pairs(info: OpInfo, args, kwargs, wargs, wkwargs) -> Iterator[tuple]:
    """(original, working copy) for every tensor an operator writes to."""
    if info.name in _TRAINING_WRITES and not (args[5] if len(args) > 5 else kwargs["training"]):
        return  # an evaluation reads the running statistics and writes nothing
    for k in range(len(info.mutated)):
        orig = _mutated_arg(info, k, args, kwargs)
        wide = _mutated_arg(info, k, wargs, wkwargs)
        if orig is None:
            continue
        if isinstance(orig, (list, tuple)):
            for o, w in zip(orig, wide, strict=True):
                if _is_float(o):
                    yield o, w
        elif _is_float(orig):
            yield orig, wide


def _top_level(info: OpInfo, out: Any) -> list:
    """The operator's returns as a list, one entry per schema return."""
    if len(info.returns_mutated) == 1:
        return [out]
    if out is None:
        return []
    return list(out)


def _pack(info: OpInfo, out: Any, results: list) -> Any:
    if len(info.returns_mutated) == 1:
        return results[0]
    if out is None:
        return None
    return type(out)(results) if isinstance(out, (tuple, list)) else results


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _skip(it: Iterator, value: Any) -> None:
    for _ in _leaves(value):
        next(it, None)


def _map_leaves(f: Callable[[torch.Tensor, Any], Any], value: Any, dtypes: Iterator | None):
    """Apply ``f(leaf, caller_dtype)`` to the floating tensors of an output (nested lists and
    tuples), consuming one caller dtype per leaf from ``dtypes``."""
    if isinstance(value, (list, tuple)):
        return type(value)(_map_leaves(f, v, dtypes) for v in value)
    dtype = next(dtypes, None) if dtypes is not None else None
    if _is_float(value):
        return f(value, dtype) if dtypes is not None else f(value, value.dtype)
    return value


# -- what the operator would return without emulation: meta tensors, cached -----------------

_DTYPE_CACHE: dict[Any, dict[tuple, Any]] = {}
_GUESS = object()


def _signature(args, kwargs) -> tuple:
    """What the output dtypes of an operator depend on: the dtypes of its tensors (and whether
    they are zero-dimensional, which type promotion treats apart), the types of its numbers,
    its dtype arguments, and torch's default dtype."""
    key: list = [torch.get_default_dtype()]
    for a in args:
        _signature_item(a, key)
    for name, a in kwargs.items():
        key.append(name)
        _signature_item(a, key)
    return tuple(key)


def _signature_item(a: Any, key: list) -> None:
    if isinstance(a, torch.Tensor):
        key.append(a.dtype)
        key.append(a.dim() == 0)
    elif isinstance(a, (list, tuple)):
        key.append(len(a))
        for x in a:
            if isinstance(x, torch.Tensor):
                key.append(x.dtype)
                key.append(x.dim() == 0)
            else:
                key.append(type(x))
    elif isinstance(a, torch.dtype):
        key.append(a)
    else:
        key.append(type(a))


def _to_meta(a: Any) -> Any:
    if isinstance(a, torch.Tensor):
        return torch.empty_strided(a.shape, a.stride(), dtype=a.dtype, device="meta")
    if isinstance(a, torch.device):
        return torch.device("meta")
    if isinstance(a, (list, tuple)):
        return type(a)(_to_meta(x) for x in a)
    return a


def _meta_dtypes(func, args, kwargs) -> Any:
    try:
        out = func(*_to_meta(args), **{k: _to_meta(v) for k, v in kwargs.items()})
    except Exception:  # no meta kernel (data-dependent shapes, some linear algebra)
        return _GUESS
    return tuple(leaf.dtype if isinstance(leaf, torch.Tensor) else None for leaf in _leaves(out))


def _guess_dtype(leaf: Any, args, kwargs) -> torch.dtype | None:
    """Type promotion over the floating inputs, for operators without a meta kernel."""
    if not _is_float(leaf):
        return None
    requested = kwargs.get("dtype")
    if isinstance(requested, torch.dtype):
        return requested
    full, zero_dim = [], []
    for a in itertools.chain(args, kwargs.values()):
        for t in a if isinstance(a, (list, tuple)) else (a,):
            if _is_float(t):
                (zero_dim if t.dim() == 0 else full).append(t.dtype)
    candidates = full or zero_dim or [torch.get_default_dtype()]
    dtype = functools.reduce(torch.promote_types, candidates)
    if leaf.is_complex() and not dtype.is_complex:
        return _COMPLEX_OF.get(dtype, torch.complex64)
    if not leaf.is_complex() and dtype.is_complex:
        return _REAL_OF[dtype]
    return dtype
