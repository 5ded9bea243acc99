"""The training-problem interface: a :class:`Problem` builds a :class:`ProblemInstance`.

A problem is a model, a loss, training data and a reference solution at one of two sizes:
``"quick"`` (trains in seconds on a CPU core; for tests and smoke runs) and ``"full"`` (the
paper's setting). The trainer, not the problem, chooses the precision: the model is built in
float32, and :meth:`ProblemInstance.loss` casts its data to the dtype of the model's first
parameter, so the same instance trains in float32, after ``model.half()``, under
``torch.autocast`` and under an emulation context.
"""

from __future__ import annotations

import abc
import difflib
import math
import operator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from scipy.stats import qmc

from mperror._checks import is_integer
from mperror._records import Record

__all__ = [
    "SIZES",
    "Problem",
    "ProblemInstance",
    "TrainDefaults",
    "check_seed",
    "check_size",
    "evenly_spaced",
    "generator",
    "hammersley",
    "param_dtype",
    "relative_l2",
]

#: The sizes every problem builds: ``"quick"`` for CPU smoke runs, ``"full"`` for the paper's
#: setting.
SIZES = ("quick", "full")


@dataclass(frozen=True, kw_only=True)
class TrainDefaults(Record):
    """The optimiser settings a problem is trained with unless a study overrides them.

    Attributes:
        lr: learning rate.
        iterations: number of optimiser steps (full-batch).
        adam_eps: Adam's epsilon, one value for every precision of a study. (The PINN paper's
            float16 scripts raised it for float16 only, which confounds precision with the
            optimiser; PyTorch's default 1e-8 lies below float16's smallest subnormal 5.96e-8.)
        eval_every: steps between two evaluations of the test error.
        optimizer: ``"adam"`` (torch's) or ``"adam-keras"`` (:mod:`mperror.train.optim`).
    """

    lr: float
    iterations: int
    adam_eps: float
    eval_every: int
    optimizer: str = "adam"


class ProblemInstance(abc.ABC):
    """One built problem: a float32 model on a device, its data, loss and reference solution.

    Attributes:
        name: the problem's registry name.
        size: ``"quick"`` or ``"full"``.
        model: the freshly initialised float32 model (seeded), on the instance's device.
        defaults: the training settings of this size.
        config: everything needed to reproduce the instance (layers, activation, point counts,
            domain, PDE constants, seed, size), as JSON-ready data.

    Optional hooks the trainer calls when an instance defines them (the FNO problems do):
    ``set_model_precision(mode)`` applies a precision mode of the model itself
    (``RunConfig.model_precision``, validated beforehand by the problem's
    ``check_model_precision(mode)``; the problem's ``check_policy(precision, device)``, where
    it has one, refuses a policy that cannot run on the device: the FNO problems refuse mixed
    policies on a CPU, which has no half FFT);
    ``on_step(fraction)`` is called before every step with the share of training done (a
    precision schedule follows it); ``final_metrics(model) -> dict[str, float]`` gives numbers
    for the run's summary (``RunSummary.extra``). A model with precision modes of its own defines
    ``full_precision_()``, which the trainer calls on its float32 evaluation copy.
    """

    name: str
    size: str
    model: torch.nn.Module
    defaults: TrainDefaults
    config: dict[str, Any]

    def __init__(
        self,
        *,
        name: str,
        size: str,
        model: torch.nn.Module,
        defaults: TrainDefaults,
        config: dict[str, Any],
    ) -> None:
        self.name = name
        self.size = size
        self.model = model
        self.defaults = defaults
        self.config = config

    @abc.abstractmethod
    def loss(self, model: torch.nn.Module) -> torch.Tensor:
        """The scalar training loss of ``model``, differentiable with respect to its parameters.

        The data are cast to the dtype of ``model``'s first parameter; derivatives of the model
        with respect to its inputs are taken with ``torch.autograd.grad(..., create_graph=True)``
        so that the trainer can backpropagate through them. No dtype is fixed here: under
        ``torch.autocast`` the loss comes out in whatever dtype autocast gives it.
        """

    @abc.abstractmethod
    def test_error(self, model: torch.nn.Module) -> float:
        """The relative L2 error of ``model`` against the reference solution on the test points.

        The model runs in its own dtype (under ``torch.no_grad``); the error norms are computed
        in float64.
        """

    def __repr__(self) -> str:
        seed = self.config.get("seed")
        return f"<{type(self).__name__} {self.name!r} size={self.size!r} seed={seed}>"


@runtime_checkable
class Problem(Protocol):
    """A training problem: ``build`` returns a fresh :class:`ProblemInstance`.

    ``build(size, seed=..., device=...)`` must be deterministic in ``(size, seed)``: the model's
    initial weights and the training data depend on the seed only (never on torch's global
    random state), so every precision of a study starts from the same weights and data.

    ``revision`` numbers the problem's definition. A change that alters what ``build`` returns
    for some ``(size, seed)`` (data, reference, model, initialisation, loss, defaults) raises
    it; run directories record it, and a study resumed after such a change refuses its older
    runs (training them again with ``replace=True``, ``--replace``) instead of reporting them
    beside runs of the new definition (:func:`mperror.train.run_study`); ``mperror report``
    refuses runs of an older revision. Revision 1 is each problem as it stood when revisions
    were introduced; run directories from before carry none and count as older.
    """

    name: str
    revision: int

    def defaults(self, size: str = "quick") -> TrainDefaults:
        """The training settings of ``size`` (what ``build(size).defaults`` holds)."""
        ...

    def build(
        self, size: str = "quick", *, seed: int = 0, device: str | torch.device = "cpu"
    ) -> ProblemInstance: ...


def check_size(size: object) -> str:
    """``size`` if it is one of :data:`SIZES`, else a ValueError naming the argument."""
    if not isinstance(size, str) or size not in SIZES:
        close = difflib.get_close_matches(str(size), SIZES, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"size must be one of {', '.join(map(repr, SIZES))}, got {size!r}{hint}")
    return size


def check_seed(seed: object) -> int:
    """``seed`` if it is a non-negative int below ``2**64`` (``torch.Generator.manual_seed``
    takes an unsigned 64-bit seed, and the trainer seeds stochastic rounding with it), else a
    TypeError or ValueError naming the argument and the allowed values."""
    if not is_integer(seed):
        raise TypeError(f"seed must be a non-negative int below 2**64, got {type(seed).__name__}")
    seed = operator.index(seed)  # a tensor's comparison with 2**64 would overflow
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a non-negative int below 2**64, got {seed}")
    return seed


#: The streams of :func:`generator` the problems draw from: a model's initial weights, its
#: training data, and a test set that is the same for every seed (drawn from seed 0's test
#: stream, which no training set draws from, so no training seed can reproduce it).
MODEL_STREAM, DATA_STREAM, TEST_STREAM = 0, 1, 2


def generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for the independent random stream ``stream`` of ``seed``.

    Streams (model initialisation, training data, test data, ...: :data:`MODEL_STREAM`,
    :data:`DATA_STREAM`, :data:`TEST_STREAM`) are decorrelated through
    :class:`numpy.random.SeedSequence`, so adding training points never changes the initial
    weights. Sampling on the CPU makes the draws identical on every device.
    """
    state = np.random.SeedSequence(seed, spawn_key=(stream,)).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


def evenly_spaced(n: int) -> torch.Tensor:
    """``i / (n + 1)`` for ``i = 1 .. n``: ``n`` evenly spaced points inside ``(0, 1)``, float64.

    >>> evenly_spaced(3).tolist()
    [0.25, 0.5, 0.75]
    """
    if not is_integer(n) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    n = operator.index(n)
    return torch.arange(1, n + 1, dtype=torch.float64) / (n + 1)


def hammersley(n: int) -> torch.Tensor:
    """The ``n``-point Hammersley set in ``(0, 1)^2`` without its corner point, float64:
    ``(i / (n + 1), phi_2(i))`` for ``i = 1 .. n``, ``phi_2`` the base-2 radical inverse (van
    der Corput's sequence, from ``scipy.stats.qmc.Halton`` unscrambled).

    The same points for every seed, as in DeepXDE, whose default training points (with which
    Hayford et al. 2024 trained their PINNs) are a Hammersley set; DeepXDE's own set (through
    scikit-optimize) has the grid on the last coordinate instead, and version-dependent
    offsets, so this is the same construction, not the same points. The first coordinate is an
    even grid (:func:`evenly_spaced`); with the corner ``(0, 0)`` added back and
    ``n + 1 = 2**k``, the set is a (0, k, 2)-net in base 2: every dyadic box of area ``2**-k``
    holds exactly one point.

    >>> hammersley(3).tolist()
    [[0.25, 0.5], [0.5, 0.25], [0.75, 0.75]]
    """
    first = evenly_spaced(n)  # refuses a bad n by name
    second = torch.from_numpy(qmc.Halton(d=1, scramble=False).random(n + 1)[1:, 0])
    return torch.stack([first, second], dim=1)


def param_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of ``model``'s first parameter: the dtype a loss casts its data to."""
    try:
        return next(model.parameters()).dtype
    except StopIteration:
        raise ValueError("model has no parameters, so its dtype is undefined") from None


def relative_l2(prediction: torch.Tensor, reference: torch.Tensor) -> float:
    """``||prediction - reference||_2 / ||reference||_2`` computed in float64.

    NaN or infinite predictions give NaN or inf, never an exception.
    """
    pred = prediction.detach().to(torch.float64).reshape(-1)
    ref = reference.detach().to(device=pred.device, dtype=torch.float64).reshape(-1)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction has {pred.numel()} values, reference has {ref.numel()}")
    num = torch.linalg.vector_norm(pred - ref).item()
    den = torch.linalg.vector_norm(ref).item()
    return num / den if den > 0 else math.inf
