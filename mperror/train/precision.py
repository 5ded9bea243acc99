"""Precision policies of a training run: where the weights live and how the arithmetic rounds.

A policy is named by a string, the one swept field of a study (every other hyper-parameter is
shared):

=================  ===========================================================================
``fp32``           float32 weights and arithmetic (TF32 pinned off on CUDA).
``fp16``, ``bf16`` pure low precision: the model and Adam's state in torch.float16 /
                   torch.bfloat16, native kernels (CPU or CUDA). Same as ``pure-fp16``.
``pure-FMT``       any mperror format FMT (``pure-e4m3fn``, ``pure-e5m2``, ...): forward and
                   backward under ``mperror.emulate(pure(FMT))``, Adam's arithmetic in float32,
                   the weights stored in FMT after every step (``mperror.emulate.store_``).
``mixed-FMT``      float32 master weights, compute in FMT: ``torch.autocast`` on CUDA for fp16 /
                   bf16, else ``mperror.emulate(autocast(FMT))`` (torch's CUDA autocast lists,
                   emulated), which is what a CPU run uses to stand in for CUDA numerics.
``...+scaler``     (mixed policies) with ``torch.amp.GradScaler`` dynamic loss scaling.
=================  ===========================================================================

``backend`` chooses between real low-precision kernels (``"native"``) and mperror's emulation
(``"emulated"``); ``"auto"`` takes native kernels where they give the intended numerics (pure
fp16/bf16 everywhere, mixed fp16/bf16 on CUDA) and emulation elsewhere. CPU ``torch.autocast``
runs exp, softmax and sums in low precision where CUDA keeps them in float32, so it is used
only when asked for (``backend="native"`` on CPU). ``fp32`` has no low-precision arithmetic:
it runs natively, and ``backend="emulated"`` with it is refused rather than ignored (a run id
ending in ``-emulated`` would name numerics the run did not have).

>>> p = parse("mixed-fp16+scaler")
>>> p.kind, p.fmt.name, p.grad_scaler, p.resolve("cpu").backend
('mixed', 'fp16', True, 'emulated')
>>> parse("fp16").resolve("cpu").backend, parse("pure-e4m3fn").resolve("cpu").backend
('native', 'emulated')
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

import mperror.emulate
from mperror import formats
from mperror._records import Record
from mperror.formats import FloatFormat

__all__ = ["BACKENDS", "KINDS", "Precision", "examples", "parse"]

#: ``"fp32"``, ``"pure"`` (weights in the format) and ``"mixed"`` (float32 master weights).
KINDS = ("fp32", "pure", "mixed")
#: How the low-precision arithmetic runs.
BACKENDS = ("auto", "native", "emulated")
_NATIVE_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
_SCALER = "+scaler"


def examples() -> tuple[str, ...]:
    """Policy names a study typically sweeps (any ``pure-FMT`` / ``mixed-FMT`` also works)."""
    return ("fp32", "fp16", "bf16", "mixed-fp16", "mixed-fp16+scaler", "mixed-bf16")


@dataclass(frozen=True, kw_only=True)
class Precision(Record):
    """A parsed precision policy (see the module docstring).

    Attributes:
        name: the policy string it was parsed from, normalised (``"mixed-fp16+scaler"``).
        kind: one of :data:`KINDS`.
        fmt: the compute format (fp32 for ``kind="fp32"``); its ``u`` enters Theorem 1.
        grad_scaler: dynamic loss scaling with ``torch.amp.GradScaler`` (mixed only).
        backend: one of :data:`BACKENDS`; :meth:`resolve` turns ``"auto"`` into the other two.
    """

    name: str
    kind: str
    fmt: FloatFormat
    grad_scaler: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.fmt, FloatFormat):
            raise TypeError(
                f"fmt must be a FloatFormat (mperror.formats.get(name) makes one), got "
                f"{type(self.fmt).__name__}"
            )
        if not isinstance(self.grad_scaler, bool):
            raise TypeError(f"grad_scaler must be a bool, got {type(self.grad_scaler).__name__}")
        if not formats._holds(formats.FP32, self.fmt):
            raise ValueError(
                f"fmt must be a format float32 holds (the float32 baseline is the widest), "
                f"got {self.fmt}"
            )
        if (self.kind == "fp32") != (self.fmt == formats.FP32):
            raise ValueError(
                f"kind 'fp32' goes with fmt fp32 and only with it, got kind {self.kind!r} and "
                f"fmt {self.fmt}"
            )
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.grad_scaler and self.kind != "mixed":
            raise ValueError(
                f"policy {self.name!r}: GradScaler ('+scaler') needs float32 master weights, "
                "i.e. a mixed-FMT policy (torch refuses to unscale float16 gradients)"
            )
        if self.kind == "fp32" and self.backend == "emulated":
            raise ValueError(
                f"policy {self.name!r}: backend 'emulated' (--backend) has nothing to emulate, "
                "float32 arithmetic always runs natively; use backend 'auto' or 'native' for "
                "fp32 (a separate run into the same --out), 'emulated' for the other policies"
            )
        if self.backend == "native" and self.kind != "fp32" and self.fmt.name not in _NATIVE_DTYPES:
            raise ValueError(
                f"policy {self.name!r}: backend 'native' needs fp16 or bf16 (torch has no other "
                "low-precision training kernels); use backend 'emulated' or 'auto'"
            )

    def describe(self) -> dict[str, object]:
        """JSON-ready fields (the format by name)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "fmt": self.fmt.name,
            "grad_scaler": self.grad_scaler,
            "backend": self.backend,
        }

    def resolve(self, device: str | torch.device) -> Precision:
        """This policy with ``backend="auto"`` replaced by what runs on ``device``."""
        if self.backend != "auto" or self.kind == "fp32":
            return self if self.kind != "fp32" else replace(self, backend="native")
        native = self.fmt.name in _NATIVE_DTYPES and (
            self.kind == "pure" or torch.device(device).type == "cuda"
        )
        return replace(self, backend="native" if native else "emulated")

    @property
    def param_dtype(self) -> torch.dtype:
        """The dtype the model's parameters are kept in."""
        if self.kind == "pure" and self.backend == "native":
            return _NATIVE_DTYPES[self.fmt.name]
        return torch.float32

    @property
    def stores_weights(self) -> FloatFormat | None:
        """The format the trainer rounds the float32 weights to after each step, if any."""
        return self.fmt if self.kind == "pure" and self.backend == "emulated" else None

    @contextlib.contextmanager
    def compute(
        self, device: torch.device, generator: torch.Generator | None = None
    ) -> Iterator[mperror.emulate.Emulation | None]:
        """The context the forward and backward passes run in (the emulation, when there is one).

        ``backend`` must be resolved (see :meth:`resolve`).
        """
        if self.backend == "auto":
            raise ValueError("resolve(device) the policy before running it")
        if self.kind == "fp32" or (self.kind == "pure" and self.backend == "native"):
            yield None
        elif self.backend == "native":
            with torch.autocast(device.type, dtype=_NATIVE_DTYPES[self.fmt.name]):
                yield None
        else:
            policy = (mperror.emulate.pure if self.kind == "pure" else mperror.emulate.autocast)(
                self.fmt
            )
            with mperror.emulate(policy, generator=generator) as emulation:
                yield emulation


def parse(policy: str | Precision, *, backend: str = "auto") -> Precision:
    """The :class:`Precision` a policy string names; ValueError lists what is allowed."""
    if isinstance(policy, Precision):
        return policy if backend == "auto" else replace(policy, backend=backend)
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a str such as 'mixed-fp16', got {type(policy).__name__}")
    text = policy.strip().lower()
    grad_scaler = text.endswith(_SCALER)
    body = text[: -len(_SCALER)] if grad_scaler else text
    if body in ("fp32", "float32"):
        kind, fmt_name = "fp32", "fp32"
    elif body.startswith(("pure-", "mixed-")):
        kind, fmt_name = body.split("-", 1)
    elif body in _NATIVE_DTYPES:
        kind, fmt_name = "pure", body
    else:
        close = difflib.get_close_matches(text, examples(), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown policy {policy!r}{hint} Allowed: fp32, fp16, bf16, pure-FMT, mixed-FMT "
            f"(FMT a format preset: {', '.join(formats.PRESETS)}), optionally with '+scaler' "
            "on a mixed policy"
        )
    try:
        fmt = formats.get(fmt_name)
    except ValueError as error:
        raise ValueError(f"policy {policy!r}: {error}") from None
    if kind != "fp32" and fmt.name == "fp32":
        kind = "fp32"
    if fmt.name == "fp64":
        raise ValueError(f"policy {policy!r}: fp64 is wider than the float32 baseline")
    name = ("fp32" if kind == "fp32" else f"{kind}-{fmt.name}") + (_SCALER if grad_scaler else "")
    if kind == "pure" and fmt.name in _NATIVE_DTYPES:
        name = fmt.name + (_SCALER if grad_scaler else "")
    return Precision(name=name, kind=kind, fmt=fmt, grad_scaler=grad_scaler, backend=backend)
