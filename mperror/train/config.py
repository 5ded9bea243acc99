"""The configuration of one training run: a problem, a precision policy, a seed and settings.

Every field is recorded with the run (``config.json``), so two runs of a study differ in the
fields the study sweeps and nothing else.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

from mperror import problems
from mperror._checks import is_integer, is_real
from mperror._records import Record
from mperror.problems._base import TrainDefaults, check_seed, check_size
from mperror.train.optim import check_optimizer
from mperror.train.precision import BACKENDS, parse

__all__ = ["RunConfig"]


def _positive_int(value: object, name: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not is_integer(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _positive_float(value: object, name: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not (is_real(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite int or float > 0, got {value!r}")


def _as_used(data: dict[str, Any]) -> object:
    """A stored config's ``init_scale`` as its run used it (see :meth:`RunConfig.from_dict`);
    anything unreadable is left for the constructor to refuse by name."""
    scale = data.get("init_scale")
    if not is_real(scale):  # None, or anything the constructor refuses by name
        return scale
    try:
        scaler = parse(data["policy"], backend=data.get("backend", "auto")).grad_scaler
    except (KeyError, TypeError, ValueError):
        return scale
    if not scaler:
        return None
    stored = float(torch.tensor(scale, dtype=torch.float32))
    return stored if math.isfinite(stored) and stored > 0 else scale


@dataclass(frozen=True, kw_only=True)
class RunConfig(Record):
    """One training run.

    Attributes:
        problem: a registered problem name (:func:`mperror.problems.names`).
        policy: a precision policy string (:mod:`mperror.train.precision`).
        seed: the seed of the problem's weights and data and of stochastic rounding.
        size: ``"quick"`` or ``"full"`` (the problem's size; it also sets the defaults below).
        iterations, lr, adam_eps, eval_every: ``None`` takes the problem's defaults for
            ``size``; Adam's epsilon is one value for every policy of a study.
        optimizer: ``"adam"`` (torch's) or ``"adam-keras"`` (epsilon where Keras puts it;
            :mod:`mperror.train.optim`); ``None`` takes the problem's default.
        cosine_every: steps between two comparisons of the run's gradient with the float32
            gradient at the same weights (``None``: ``eval_every``).
        init_scale: GradScaler's initial scale (``+scaler`` policies); ``None`` chooses
            ``2**floor(log2(fmt.max / (64 max(1, loss_0))))``, at most ``2**16``, so the
            scaled first loss stays 64 times below the format's largest value (torch's default
            ``2**16`` exceeds float16's max 65504, and the gradient seeded into a float16 loss
            is the scale itself: step 1 always overflows, whatever the loss). The resolved
            config (``config.json``) records the scale chosen. A given value must be a float32
            value in float32's normal range (GradScaler stores it in float32), and is refused
            for a policy without ``+scaler``.
        backend: ``"auto"``, ``"native"`` or ``"emulated"`` (see :mod:`mperror.train.precision`;
            ``"emulated"`` is refused for ``fp32``, which always runs natively).
        model_precision: for problems whose model has precision modes of its own (the Fourier
            neural operators: ``"full"``, ``"half"``, ``"mixed"``, a schedule, ...), the mode;
            ``None`` for the others. The problem validates it when the run is built.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    """

    problem: str
    policy: str
    seed: int = 0
    size: str = "quick"
    iterations: int | None = None
    lr: float | None = None
    adam_eps: float | None = None
    optimizer: str | None = None
    eval_every: int | None = None
    cosine_every: int | None = None
    init_scale: float | None = None
    backend: str = "auto"
    model_precision: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        problems.get(self.problem)  # ValueError with the closest name
        parse(self.policy, backend=self.backend)  # ValueError listing the policies
        object.__setattr__(self, "seed", check_seed(self.seed))
        check_size(self.size)
        for name in ("iterations", "eval_every", "cosine_every"):
            value = getattr(self, name)
            _positive_int(value, name, allow_none=True)
            if value is not None:
                object.__setattr__(self, name, operator.index(value))
        for name in ("lr", "adam_eps", "init_scale"):
            _positive_float(getattr(self, name), name, allow_none=True)
        if self.init_scale is not None:
            self._check_init_scale()
        if self.optimizer is not None:
            check_optimizer(self.optimizer)
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.model_precision is not None and not isinstance(self.model_precision, str):
            raise TypeError(
                f"model_precision must be a str or None, got {type(self.model_precision).__name__}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")

    def _check_init_scale(self) -> None:
        if not parse(self.policy, backend=self.backend).grad_scaler:
            raise ValueError(
                f"init_scale applies to '+scaler' policies only (GradScaler's initial scale); "
                f"policy {self.policy!r} has no scaler: leave init_scale None"
            )
        # GradScaler keeps its scale as a float32 tensor: a value it would round (to 0 or inf
        # at the ends) is refused, not changed.
        f32 = torch.finfo(torch.float32)
        if not (f32.tiny <= self.init_scale <= f32.max) or float(
            torch.tensor(self.init_scale, dtype=torch.float32)
        ) != float(self.init_scale):
            raise ValueError(
                f"init_scale must be a float32 value in [{f32.tiny}, {f32.max}] (GradScaler "
                f"stores the scale in float32), e.g. a power of two; got {self.init_scale!r}"
            )

    @property
    def run_id(self) -> str:
        """The run's directory name: problem, size, policy and seed (the swept fields), with the
        backend, model precision and optimizer where they were asked for."""
        policy = parse(self.policy, backend=self.backend).name.replace("+", "_")
        backend = "" if self.backend == "auto" else f"-{self.backend}"
        model = "" if self.model_precision is None else f"-{self.model_precision}"
        model = model.replace("+", "_")
        optimizer = "" if self.optimizer is None else f"-{self.optimizer}"
        return f"{self.problem}-{self.size}-{policy}{backend}{model}{optimizer}-seed{self.seed}"

    def resolved(self, defaults: TrainDefaults) -> RunConfig:
        """This config with every ``None``/``"auto"`` replaced by the value the run uses.

        ``defaults`` are the built problem's (``instance.defaults``).
        """
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        eval_every = self.eval_every or defaults.eval_every
        return replace(
            self,
            policy=parse(self.policy, backend=self.backend).name,
            iterations=self.iterations or defaults.iterations,
            lr=self.lr or defaults.lr,
            adam_eps=self.adam_eps or defaults.adam_eps,
            optimizer=self.optimizer or defaults.optimizer,
            eval_every=eval_every,
            cosine_every=self.cosine_every or eval_every,
            backend=parse(self.policy, backend=self.backend).resolve(device).backend,
            device=device,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The config ``to_dict`` wrote; unknown keys are refused by name.

        A config written before ``init_scale`` was checked reads as the run used it: on a
        policy without ``+scaler`` (the run ignored it) as ``None``, on a ``+scaler`` policy as
        the float32 value GradScaler stored.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown RunConfig fields {unknown}; known: {sorted(known)}")
        return cls(**{**data, "init_scale": _as_used(data)})
